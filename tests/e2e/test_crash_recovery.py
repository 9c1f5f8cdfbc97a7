"""Crash safety (SPEC.md: History, rollback, crash safety).

REFIT_TEST_CRASH_AT=STEP makes refit SIGKILL itself right after journaling
STEP.  The next `refit update` (or `refit rollback`) first finishes or undoes
the interrupted swap: killed before the health gate passed, the old container
is restored (and the update then runs again); killed at removing-old /
cutover, the swap is completed.  Either way the container ends under its
name, running, with its data, no temporary copy left and the journal's
pending directory (state_dir/ops) empty.

Each strategy is one test that runs all of its steps at once, one container,
scope and state dir per step (the swaps mostly wait: stop, health gate,
drain), and reports every step that went wrong."""

import json
import os

import pytest

from swaptools import (PAST_GATE, STEPS, case_refit, hist_for, history, inspect, leftovers,
                       pending_ops, read_data, rollback, run_cases, same_digest, serving,
                       update, write_data)
from swaptools import common_pairs, swap_images, swapenv  # noqa: F401 (fixtures)

CRASH = "REFIT_TEST_CRASH_AT"
VOLS = ["/data", "/anon", "/imgvol"]      # named, anonymous, the image's VOLUME


@pytest.fixture
def crash_pair(common_pairs):
    """v1 local, v2 in the registry; every case starts from v1 again."""
    return common_pairs["good"]


def start_case(swapenv, refit_bin, tmp_path, scope, strategy, step, idx, image, net):
    """A managed httpd on NET with a named and an anonymous volume holding
    data, in its own scope, with its own refit state dir."""
    r = case_refit(refit_bin, tmp_path, "%s-%s" % (strategy, step))
    case_scope = "%s-%d" % (scope, idx)
    vol = swapenv.volume("c%d" % idx)
    name = swapenv.name("%s-%d" % (strategy[:2], idx))
    target = name + "-v2" if strategy == "alias" else name
    labels = swapenv.labels({"refit.enable": "true", "refit.scope": case_scope,
                             "refit.strategy": strategy})
    if strategy == "alias":
        labels["refit.rename-to"] = target
    swapenv.run(image, labels, name=name, extra=[
        "--network", net, "--network-alias", "svc-%d" % idx,
        "-v", "%s:/data" % vol, "-v", "/anon"])
    return r, case_scope, name, target


def crash_and_recover(r, case_scope, name, target, strategy, step, v1, v2):
    """Returns a line of what happened; raises AssertionError when wrong."""
    assert serving(name) == "good v1"
    data = write_data(name, VOLS)
    old = inspect(name)

    res = update(r, case_scope, env={CRASH: step})
    assert res.rc == -9, "refit was not killed at %s\n%s" % (step, res.describe())
    ops = pending_ops(r)
    assert len(ops) == 1 and ops[0].endswith(".json"), "ops after the crash: %r" % ops
    with open(os.path.join(r.state_dir, "ops", ops[0])) as f:
        rec = json.load(f)
    assert rec.get("step") == step and rec.get("container") == name, rec.get("step")
    crash_state = sorted({n for n in [name, target] if inspect(n)}) + leftovers(name)

    res = update(r, case_scope)
    assert res.rc == 0, res.describe()
    final = target
    cur = inspect(final)
    assert cur is not None, "nothing under %s after recovery\n%s" % (final, res.describe())
    assert cur["State"]["Running"] and not cur["State"]["Restarting"], cur["State"]
    if strategy == "alias":
        assert inspect(name) is None, "alias: the old name is still a container"
    assert leftovers(name) == [] and leftovers(target) == [], \
        "copies left: %r" % (leftovers(name) + leftovers(target))
    assert pending_ops(r) == [], "ops not empty: %r" % pending_ops(r)
    recs = hist_for(history(r), name)
    assert recs and recs[0].get("id") == rec.get("id"), recs
    first = recs[0]
    assert first.get("recovered") is True, first
    assert first.get("step") == step, first
    want = "updated" if step in PAST_GATE else "rolled-back"
    assert first.get("outcome") == want, "interrupted at %s: outcome %s, expected %s" % (
        step, first.get("outcome"), want)
    if step in PAST_GATE:
        # finished as it was: the replacement created before the crash
        assert first.get("new_id") == cur["Id"], (first.get("new_id"), cur["Id"])
        assert [x.get("outcome") for x in recs] == ["updated"], recs
        assert cur["Image"] == v2.id and serving(final) == "good v2"
    else:
        # the old container itself was restored, then updated again
        assert [(x.get("kind"), x.get("outcome")) for x in recs] == \
            [("update", "rolled-back"), ("update", "updated")], recs
        assert recs[1].get("old_id") == old["Id"], "the restored container is not the old one"
        assert recs[1].get("new_id") == cur["Id"]
        assert same_digest(recs[1].get("new_digest"), v2.digest)
        assert cur["Image"] == v2.id and serving(final) == "good v2"
    assert read_data(final, VOLS) == data, "data lost"
    res.assert_clean_output()
    return "after the crash %r; recovered: %s" % (crash_state, want)


@pytest.mark.parametrize("strategy", list(STEPS))
def test_killed_at_every_step(strategy, refit_bin, tmp_path, scope, swapenv, crash_pair,
                              swap_images):
    v1, v2 = crash_pair
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    steps = STEPS[strategy]
    cases = {}
    for i, step in enumerate(steps):
        r, cs, name, target = start_case(swapenv, refit_bin, tmp_path, scope, strategy, step, i,
                                         v1, net)
        cases["%s@%s" % (strategy, step)] = (
            lambda r=r, cs=cs, name=name, target=target, step=step:
            crash_and_recover(r, cs, name, target, strategy, step, v1, v2))
    run_cases(cases)


def test_rollback_finishes_the_interrupted_update_first(refit_bin, tmp_path, scope, swapenv,
                                                        crash_pair, swap_images):
    """Killed at removing-old, then `refit rollback NAME`: the interrupted
    update is completed first (history: updated, recovered), then rolled
    back to v1 with the data."""
    v1, v2 = crash_pair
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    r, cs, name, _ = start_case(swapenv, refit_bin, tmp_path, scope, "recreate",
                                "removing-old", 0, v1, net)
    assert serving(name) == "good v1"
    data = write_data(name, VOLS)
    res = update(r, cs, env={CRASH: "removing-old"})
    assert res.rc == -9, res.describe()
    assert len(pending_ops(r)) == 1

    res = rollback(r, cs, name)
    assert res.rc == 0, res.describe()
    cur = inspect(name)
    assert cur is not None and cur["State"]["Running"] and cur["Image"] == v1.id
    assert serving(name) == "good v1"
    assert read_data(name, VOLS) == data
    assert leftovers(name) == [] and pending_ops(r) == []
    recs = hist_for(history(r), name)
    assert [(x.get("kind"), x.get("outcome"), bool(x.get("recovered"))) for x in recs] == \
        [("update", "updated", True), ("rollback", "updated", False)], recs
    assert res.statuses() == {name: "rolled-back"}, res.describe()
    res.assert_clean_output()
