"""Which containers a check sees: opt-in labels, scopes, names (SPEC.md: Which
containers; Labels - both namespaces, refit's wins)."""

import pytest

from harness import Containers

R_EN = "refit.enable"
W_EN = "com.centurylinklabs.watchtower.enable"
R_SC = "refit.scope"
W_SC = "com.centurylinklabs.watchtower.scope"


@pytest.fixture(scope="module")
def table_scope(run_id):
    return "e2e-%s-table" % run_id


@pytest.fixture
def scope(table_scope):
    return table_scope


@pytest.fixture(scope="module")
def table(shared_images, engine, run_id, labels, table_scope):
    """The label table, all on one image, made once for this module.
    Returns (names by key, other scope)."""
    scope = table_scope
    containers = Containers(run_id, "refit-e2e-%s-table" % run_id)
    img = shared_images[0]
    other = scope + "-other"
    rows = {
        "r_true":        {R_EN: "true", R_SC: scope},
        "w_true":        {W_EN: "true", W_SC: scope},
        "r_false":       {R_EN: "false", R_SC: scope},
        "no_label":      {R_SC: scope},
        "r_wins_true":   {R_EN: "true", W_EN: "false", R_SC: scope},
        "r_wins_false":  {R_EN: "false", W_EN: "true", R_SC: scope},
        "w_false":       {W_EN: "false", W_SC: scope},
        "other_scope":   {W_EN: "true", R_SC: other},
        "r_scope_wins":  {R_EN: "true", R_SC: scope, W_SC: other},
        "r_scope_loses": {R_EN: "true", R_SC: other, W_SC: scope},
        "unscoped_on":   {R_EN: "true"},
        "unscoped_none": {},
        "unscoped_off":  {W_EN: "false"},
    }
    try:
        names = dict(zip(rows, containers.run_many(
            [{"image": img, "labels": labels(v), "hint": k.replace("_", "-")}
             for k, v in rows.items()])))
        yield names, other
    finally:
        containers.remove_all()


def picked(res, names, keys):
    inv = {v: k for k, v in names.items()}
    got = {inv.get(n, n) for n in res.names}
    assert got == set(keys), "expected %s, got %s\n%s" % (sorted(keys), sorted(got),
                                                          res.describe())


def test_scope_with_label_enable_default(refit, table, scope):
    names, _ = table
    res = refit.check_json(scope)
    assert res.rc == 0, res.describe()
    picked(res, names, {"r_true", "w_true", "r_wins_true", "r_scope_wins"})
    assert set(res.statuses().values()) == {"up-to-date"}, res.describe()


def test_scope_with_label_enable_false(refit, table, scope):
    names, _ = table
    res = refit.check_json(scope, config="label_enable: false\n")
    assert res.rc == 0, res.describe()
    picked(res, names, {"r_true", "w_true", "no_label", "r_wins_true", "r_scope_wins"})


def test_other_scope(refit, table):
    names, other = table
    res = refit.check_json(other)
    assert res.rc == 0, res.describe()
    picked(res, names, {"other_scope", "r_scope_loses"})


@pytest.mark.parametrize("how", ["config", "REFIT_SCOPE", "WATCHTOWER_SCOPE"])
def test_scope_from_config_and_environment(how, refit, table, scope):
    names, _ = table
    if how == "config":
        res = refit.check_json(config="scope: %s\n" % scope)
    else:
        res = refit.check_json(env={how: scope})
    assert res.rc == 0, res.describe()
    picked(res, names, {"r_true", "w_true", "r_wins_true", "r_scope_wins"})


@pytest.mark.parametrize("how", ["config", "REFIT_LABEL_ENABLE", "WATCHTOWER_LABEL_ENABLE"])
def test_label_enable_from_config_and_environment(how, refit, table, scope):
    names, _ = table
    if how == "config":
        res = refit.check_json(scope, config="label_enable: false\n")
    else:
        res = refit.check_json(scope, env={how: "false"})
    assert res.rc == 0, res.describe()
    picked(res, names, {"r_true", "w_true", "no_label", "r_wins_true", "r_scope_wins"})


def _unscoped_selected(res, names, named_keys):
    """Unscoped runs are narrowed by NAMES: nothing else may appear; named
    containers that are not selected may at most be listed as skipped."""
    named = {names[k] for k in named_keys}
    assert res.names <= named, "unnamed containers listed\n" + res.describe()
    inv = {v: k for k, v in names.items()}
    return {inv[n] for n, st in res.statuses().items() if st != "skipped"}


def test_unscoped_run_narrowed_by_names(refit, table):
    names, _ = table
    keys = ["r_true", "w_true", "unscoped_on", "unscoped_none", "unscoped_off", "other_scope"]
    res = refit.check_json(names=[names[k] for k in keys])
    assert res.rc == 0, res.describe()
    assert _unscoped_selected(res, names, keys) == {"unscoped_on"}, res.describe()
    assert res[names["unscoped_on"]].get("status") == "up-to-date", res.describe()


def test_unscoped_run_label_enable_false(refit, table):
    names, _ = table
    keys = ["r_true", "unscoped_on", "unscoped_none", "unscoped_off", "r_false"]
    res = refit.check_json(names=[names[k] for k in keys], config="label_enable: false\n")
    assert res.rc == 0, res.describe()
    assert _unscoped_selected(res, names, keys) == {"unscoped_on", "unscoped_none"}, \
        res.describe()


def test_precedence_file_then_environment_then_flag(refit, table, scope):
    """Config file, then REFIT_* variables, then flags; later wins."""
    names, other = table
    mine = {"r_true", "w_true", "r_wins_true", "r_scope_wins"}
    theirs = {"other_scope", "r_scope_loses"}
    res = refit.check_json(config="scope: %s\n" % other, env={"REFIT_SCOPE": scope})
    assert res.rc == 0, res.describe()
    picked(res, names, mine)
    res = refit.check_json(scope, config="scope: %s\n" % other, env={"REFIT_SCOPE": other})
    assert res.rc == 0, res.describe()
    picked(res, names, mine)
    res = refit.check_json(config="scope: %s\n" % scope, env={"WATCHTOWER_SCOPE": other})
    assert res.rc == 0, res.describe()
    picked(res, names, theirs)


def test_scope_with_names_outside_it(refit, table, scope):
    """NAMES narrow the scope's set; they never widen it."""
    names, _ = table
    keys = ["r_true", "other_scope", "unscoped_on", "r_false"]
    res = refit.check_json(scope, names=[names[k] for k in keys])
    assert res.rc == 0, res.describe()
    assert _unscoped_selected(res, names, keys) == {"r_true"}, res.describe()
