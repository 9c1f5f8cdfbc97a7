"""`refit version`, `--help` (SPEC.md: Command line)."""

import os
import re

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def makefile_version():
    try:
        with open(os.path.join(HERE, "..", "..", "Makefile")) as f:
            m = re.search(r"^VERSION\s*:?=\s*(\S+)", f.read(), re.M)
            return m.group(1) if m else None
    except OSError:
        return None


def test_version(refit, engine):
    res = refit.run("version")
    assert res.rc == 0, res.describe()
    want = makefile_version()
    if want:
        assert want in res.stdout, res.describe()
    else:
        assert re.search(r"\d+\.\d+\.\d+", res.stdout), res.describe()
    api = engine.api_version()   # 1.41 on Debian 12's dockerd 20.10
    assert re.search(r"(?<![\d.])%s(?![\d])" % re.escape(api), res.stdout), \
        "negotiated API version %s not printed\n%s" % (api, res.describe())


def test_version_engine_down(refit):
    res = refit.run("version", "--docker-host", "unix:///nonexistent/docker.sock", timeout=30)
    want = makefile_version() or ""
    assert want in res.stdout, "refit's own version even without an engine\n" + res.describe()
    assert res.rc in (0, 3), res.describe()


@pytest.mark.parametrize("args,needles", [
    (["--help"], ["check", "update", "rollback", "version"]),
    (["check", "--help"], ["--json"]),
    (["update", "--help"], ["--dry-run"]),
    (["version", "--help"], []),
])
def test_help(args, needles, refit):
    res = refit.run(*args, globals=False)
    assert res.rc == 0, res.describe()
    text = res.stdout + res.stderr
    assert text.strip(), res.describe()
    for n in needles:
        assert n in text, "%r not in help\n%s" % (n, res.describe())
    assert "usage" in text.lower(), res.describe()


@pytest.mark.parametrize("args,option", [
    (["history", "--dry-run", "--restore-data"], "--dry-run"),
    (["history", "--restore-data"], "--restore-data"),
    (["check", "--all"], "--all"),
    (["status", "--dry-run"], "--dry-run"),
    (["version", "--json"], "--json"),
    (["daemon", "--json"], "--json"),
    (["check", "--to", "v2"], "--to"),
    (["migrate", "--restore-data", "plan.yml"], "--restore-data"),
    (["rollback", "--dry-run", "--all"], "--dry-run"),
])
def test_an_option_of_another_command_is_refused(args, option, refit):
    """Each command takes its own options: one it does not take is exit 2
    naming it, before any configuration, engine or state is touched."""
    res = refit.run(*args)
    assert res.rc == 2, res.describe()
    assert option in res.stderr and args[0] in res.stderr, res.describe()
    assert res.stdout == "", res.describe()


def test_commands_still_take_their_own_options(refit):
    for args in (["history", "--json"], ["help", "rollback"], ["rollback", "--help"]):
        res = refit.run(*args)
        assert res.rc == 0, res.describe()
    assert "--json" in refit.run("rollback", "--help").stdout


def test_unreachable_engine_is_exit_3_for_every_operation(refit):
    """update, rollback and migrate run one code path (op_run): an engine
    that cannot be reached is exit code 3 for each of them."""
    dead = "unix:///nonexistent/docker.sock"
    plan = os.path.join(refit.state_dir, "..", "unreachable-plan.yml")
    with open(plan, "w") as f:
        f.write("migrations:\n  - {from: web1, to: web2}\n")
    for args in (["update"], ["rollback", "--all"], ["rollback", "web1"], ["migrate", plan]):
        res = refit.run(args[0], "--docker-host", dead, *args[1:])
        assert res.rc == 3, res.describe()
        assert "cannot reach the Docker engine" in res.stderr, res.describe()
