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
