"""Unreachable engine or registry, and configuration errors (SPEC.md: exit codes;
Configuration: an unknown key, a wrong type or an out-of-range value names the
file, line and key)."""

import re

import pytest

from harness import digest_only, port_is_closed


def test_registry_down(refit, registry_factory, shared_images, image_factory, containers,
                       scoped, scope):
    down_reg = registry_factory("down")
    down_img = image_factory.make(down_reg)
    ok_img = shared_images[4]
    down = containers.run(down_img, labels=scoped())
    ok = containers.run(ok_img, labels=scoped())
    down_reg.stop()
    assert port_is_closed(down_reg.port)
    res = refit.check_json(scope, timeout=60)
    assert res.statuses() == {down: "error", ok: "up-to-date"}, res.describe()
    assert res[down].get("error"), res.describe()
    assert digest_only(res[ok].get("latest_digest")) == ok_img.digest
    assert res.rc == 3, "a registry could not be reached: exit 3\n" + res.describe()


@pytest.mark.parametrize("how", ["flag", "DOCKER_HOST", "config"])
def test_engine_down(how, refit, scope):
    url = "unix:///nonexistent/docker.sock"
    if how == "flag":
        res = refit.run("check", "--json", "--scope", scope, "--docker-host", url, timeout=30)
    elif how == "DOCKER_HOST":
        res = refit.run("check", "--json", "--scope", scope, env={"DOCKER_HOST": url},
                        timeout=30)
    else:
        res = refit.run("check", "--json", "--scope", scope, config="docker_host: %s\n" % url,
                        timeout=30)
    assert res.rc == 3, res.describe()
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, "one clear line on stderr\n" + res.describe()
    assert re.search(r"nonexistent/docker\.sock|docker|engine", lines[0], re.I), res.describe()


def _stderr_names(res, *needles):
    for n in needles:
        assert n in res.stderr, "stderr does not name %r\n%s" % (n, res.describe())


LINE = r"(line\s*%d\b|:%d\b)"


@pytest.mark.parametrize("text,key,line", [
    ("poll_interval: 60\nlabel_enable: true\nbogus_key: 1\n", "bogus_key", 3),
    ("api:\n  listen: 127.0.0.1:8010\n  bogus_nested: 1\n", "bogus_nested", 3),
], ids=["top-level", "nested"])
def test_config_unknown_key(text, key, line, refit, scope):
    res = refit.run("check", "--json", "--scope", scope, config=text)
    assert res.rc == 2, res.describe()
    _stderr_names(res, refit.config_path, key)
    assert re.search(LINE % (line, line), res.stderr), "line %d\n%s" % (line, res.describe())


@pytest.mark.parametrize("text,key,line", [
    ("label_enable: true\npoll_interval: [1, 2]\n", "poll_interval", 2),
    ("poll_interval: abc\n", "poll_interval", 1),
    ("scope: x\nlabel_enable: sometimes\n", "label_enable", 2),
    ("log_level: info\ninsecure_registries: {a: 1}\n", "insecure_registries", 2),
], ids=["list-for-int", "string-for-int", "not-a-bool", "map-for-list"])
def test_config_wrong_type(text, key, line, refit, scope):
    res = refit.run("check", "--json", "--scope", scope, config=text)
    assert res.rc == 2, res.describe()
    _stderr_names(res, refit.config_path, key)
    assert re.search(LINE % (line, line), res.stderr), "line %d\n%s" % (line, res.describe())


@pytest.mark.parametrize("text,key,line", [
    ("poll_interval: -5\n", "poll_interval", 1),
    ("label_enable: true\nstrategy: sideways\n", "strategy", 2),
    ("log_format: xml\n", "log_format", 1),
], ids=["negative-interval", "unknown-strategy", "unknown-log-format"])
def test_config_out_of_range(text, key, line, refit, scope):
    res = refit.run("check", "--json", "--scope", scope, config=text)
    assert res.rc == 2, res.describe()
    _stderr_names(res, refit.config_path, key)
    assert re.search(LINE % (line, line), res.stderr), "line %d\n%s" % (line, res.describe())


@pytest.mark.parametrize("var,value", [
    ("REFIT_POLL_INTERVAL", "abc"),
    ("REFIT_POLL_INTERVAL", "-5"),
    ("REFIT_LABEL_ENABLE", "sometimes"),
    ("WATCHTOWER_POLL_INTERVAL", "soon"),
])
def test_bad_environment_variable(var, value, refit, scope):
    res = refit.run("check", "--json", "--scope", scope, env={var: value})
    assert res.rc == 2, res.describe()
    _stderr_names(res, var)


def test_missing_config_file(refit, scope, tmp_path):
    missing = str(tmp_path / "no-such.yml")
    res = refit.run("check", "--json", "--scope", scope, "--config", missing, globals=False)
    assert res.rc == 2, res.describe()
    _stderr_names(res, missing)


def test_unknown_option_and_subcommand(refit, scope):
    res = refit.run("check", "--json", "--scope", scope, "--no-such-option")
    assert res.rc == 2, res.describe()
    assert "--no-such-option" in res.stderr, res.describe()
    res = refit.run("no-such-subcommand", globals=False)
    assert res.rc == 2, res.describe()
    assert "no-such-subcommand" in res.stderr, res.describe()


def test_valid_config_is_accepted(refit, scope):
    """Guards the tests above: the same keys with good values pass."""
    res = refit.run("check", "--json", "--scope", scope, config=(
        "poll_interval: 60\nlabel_enable: true\nstrategy: recreate\nlog_format: json\n"
        "insecure_registries: []\napi:\n  listen: 127.0.0.1:8010\n"))
    assert res.rc == 0, res.describe()
    assert res.stdout.strip().startswith("{"), res.describe()


@pytest.mark.parametrize("text", [
    "schedule: \"0 0 4 * * *\"\n",        # Watchtower's 6 fields, with seconds
    "schedule: \"30 4 * * 1-5\"\n",        # classic 5 fields
    "poll_interval: 90\n",
    "poll_interval: 5m\n",
], ids=["cron6", "cron5", "seconds", "duration"])
def test_schedule_and_interval_accepted(text, refit, scope):
    res = refit.run("check", "--json", "--scope", scope, config=text)
    assert res.rc == 0, res.describe()
    assert res.stdout.strip() and '"containers"' in res.stdout, res.describe()


@pytest.mark.parametrize("text", [
    "schedule: \"every day\"\n",
    "schedule: \"61 * * * *\"\n",
    "schedule: \"* * * * * * * *\"\n",
], ids=["words", "minute-61", "eight-fields"])
def test_bad_schedule(text, refit, scope):
    res = refit.run("check", "--json", "--scope", scope, config=text)
    assert res.rc == 2, res.describe()
    _stderr_names(res, refit.config_path, "schedule")


def test_empty_selection(refit, scope):
    res = refit.check_json(scope)
    assert res.rc == 0, res.describe()
    assert res.data == {"containers": []}, res.describe()
