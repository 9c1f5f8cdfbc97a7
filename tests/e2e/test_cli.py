"""`refit version`, `--help` (SPEC.md: Command line)."""

import os
import re
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def built_version():
    """What scripts/version says now (git describe, or VERSION), without the
    -dirty mark: the tree may have been touched since the binary was built."""
    p = subprocess.run(["sh", os.path.join(HERE, "..", "..", "scripts", "version")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def clean(v):
    return re.sub(r"-dirty$", "", v)


def test_version(refit, engine):
    res = refit.run("version")
    assert res.rc == 0, res.describe()
    m = re.match(r"refit (\S+)\n", res.stdout)
    assert m, res.describe()
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", m.group(1)), res.describe()
    assert clean(m.group(1)) == clean(built_version()), res.describe()
    api = engine.api_version()   # 1.41 on Debian 12's dockerd 20.10
    assert re.search(r"(?<![\d.])%s(?![\d])" % re.escape(api), res.stdout), \
        "negotiated API version %s not printed\n%s" % (api, res.describe())


def test_version_engine_down(refit):
    res = refit.run("version", "--docker-host", "unix:///nonexistent/docker.sock", timeout=30)
    assert res.stdout.startswith("refit %s" % clean(built_version())), \
        "refit's own version even without an engine\n" + res.describe()
    assert res.rc in (0, 3), res.describe()


def test_version_script_forms(tmp_path):
    """scripts/version: a tag's describe, the Debian form of each, and the
    VERSION file of a tarball when there is no checkout."""
    root = os.path.join(HERE, "..", "..")
    src = tmp_path / "src"
    src.mkdir()
    (src / "scripts").mkdir()
    with open(os.path.join(root, "scripts", "version")) as f:
        (src / "scripts" / "version").write_text(f.read())
    (src / "VERSION").write_text("0.3.0\n")

    def ver(*args):
        p = subprocess.run(["sh", str(src / "scripts" / "version")] + list(args),
                           capture_output=True, text=True, timeout=30, cwd=str(tmp_path))
        return p.returncode, p.stdout.strip(), p.stderr

    assert ver() == (0, "0.3.0", "")                        # a tarball: no checkout
    git = ["git", "-C", str(src), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "one"], check=True)
    subprocess.run(git + ["tag", "v0.2.0"], check=True)
    assert ver() == (0, "0.2.0", "")
    assert ver("--debian")[1] == "0.2.0"
    (src / "more").write_text("x\n")
    subprocess.run(git + ["add", "more"], check=True)
    subprocess.run(git + ["commit", "-qm", "two"], check=True)
    rc, v, _ = ver()
    assert re.fullmatch(r"0\.2\.0-1-g[0-9a-f]{7,}", v), v
    assert re.fullmatch(r"0\.2\.0\+1\.g[0-9a-f]{7,}", ver("--debian")[1])
    (src / "more").write_text("changed\n")
    assert ver()[1] == v + "-dirty"
    assert ver("--debian")[1].endswith(".dirty")
    subprocess.run(git + ["commit", "-qam", "three"], check=True)
    subprocess.run(git + ["tag", "v0.3.0-rc1"], check=True)
    assert ver() == (0, "0.3.0-rc1", "")
    assert ver("--debian")[1] == "0.3.0~rc1"                # sorts before 0.3.0
    (src / "VERSION").write_text("not a version; rm -rf /\n")
    subprocess.run(["rm", "-rf", str(src / ".git")], check=True)
    rc, v, err = ver()
    assert rc == 1 and v == "" and "no version" in err


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
