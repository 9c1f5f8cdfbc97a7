"""pytest fixtures for refit's end-to-end tests.

Session: the Docker engine (started here only if nothing answers on
/var/run/docker.sock), three registries (plain HTTP with an access log, a
Bearer-token registry with its token server, HTTPS + htpasswd), an image
factory.  Per test: a refit runner with its own state dir and config, a unique
scope, a container helper.  See README.md in this directory.
"""

import itertools
import os
import time
import shutil
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import (Containers, Engine, ImageFactory, Refit, Registry,  # noqa: E402
                     TLSMaterial, TokenServer, RUN_LABEL)
from daemontools import Daemon  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
REFIT_BIN = os.path.abspath(os.environ.get("REFIT_BIN") or os.path.join(REPO_ROOT, "refit"))

_RUN_ID = uuid.uuid4().hex[:10]
_SCOPES = itertools.count(1)


def pytest_report_header(config):
    return ["refit binary: %s%s" % (REFIT_BIN, "" if os.path.exists(REFIT_BIN) else " (missing)"),
            "refit-test.run=%s" % _RUN_ID,
            "engine: E2E_ENGINE=%s on %s" % (harness.ENGINE, harness.DOCKER_SOCK)]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "engines(*kinds, reason): the test runs only on these E2E_ENGINE kinds, "
        "and is skipped on the others saying which it needs and why")


def pytest_collection_modifyitems(config, items):
    """@pytest.mark.engines("20.10", "26", reason="..."): skipped, with the reason, on other engines."""
    for item in items:
        for m in item.iter_markers("engines"):
            if harness.ENGINE not in m.args:
                item.add_marker(pytest.mark.skip(reason="needs E2E_ENGINE=%s (this run: %s): %s" % (
                    " or ".join(m.args), harness.ENGINE, m.kwargs.get("reason", "no reason given"))))


# --------------------------------------------------------------------------
# session

@pytest.fixture(scope="session")
def run_id():
    return _RUN_ID


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("refit-e2e"))


@pytest.fixture(scope="session")
def engine():
    return Engine().ensure()   # left running: see Engine


@pytest.fixture(scope="session")
def labels(run_id):
    """labels({"refit.enable": "true"}, **more) -> dict with the run label added."""
    def make(extra=None, **kw):
        d = {RUN_LABEL: run_id}
        d.update(extra or {})
        d.update(kw)
        return d
    return make


@pytest.fixture(scope="session")
def image_factory(engine, run_id, session_dir):
    f = ImageFactory(run_id, session_dir)
    yield f
    harness.sweep_run_objects(run_id)   # containers first, or images stay in use
    f.cleanup()


@pytest.fixture(scope="session")
def registry_factory(engine, session_dir):
    """registry_factory(name) -> a started extra plain registry (stopped at end)."""
    started = []

    def make(name, kind="plain", **kw):
        r = Registry(session_dir, "%s-%d" % (name, len(started)), kind=kind, **kw).start()
        started.append(r)
        return r
    yield make
    for r in started:
        r.stop()


@pytest.fixture(scope="session")
def plain_registry(registry_factory):
    return registry_factory("plain")


@pytest.fixture(scope="session")
def shared_images(image_factory, plain_registry):
    """Five images on the plain registry that no test republishes: use them
    where a test only needs an image that stays up to date."""
    return image_factory.make_many([{"registry": plain_registry,
                                     "repo": image_factory.unique_repo("shared")}
                                    for _ in range(5)])


@pytest.fixture(scope="session")
def token_server(session_dir):
    ts = TokenServer(session_dir).start()
    yield ts
    ts.stop()


@pytest.fixture(scope="session")
def token_registry(engine, session_dir, token_server):
    reg = Registry(session_dir, "token", kind="token", token_server=token_server,
                   username=token_server.username, password=token_server.password).start()
    reg.login()
    yield reg
    reg.stop()


class Target:
    """One running container on an image nobody republishes, in a scope of
    its own: for tests that only read (credentials, key forms, ...)."""

    def __init__(self, image, name, scope):
        self.image = image
        self.name = name
        self.scope = scope


@pytest.fixture(scope="session")
def token_target(token_registry, image_factory, run_id, labels):
    scope = "e2e-%s-token-target" % run_id
    c = Containers(run_id, "refit-e2e-%s-tt" % run_id)
    img = image_factory.make(token_registry, repo=image_factory.unique_repo("token-target"))
    name = c.run(img, labels=labels({"refit.enable": "true", "refit.scope": scope}))
    yield Target(img, name, scope)
    c.remove_all()


@pytest.fixture(scope="session")
def tls_material(session_dir):
    return TLSMaterial(session_dir)


@pytest.fixture(scope="session")
def tls_registry(engine, session_dir, tls_material):
    reg = Registry(session_dir, "tls", kind="tls", tls=tls_material,
                   username="tlsuser", password=uuid.uuid4().hex).start()
    # dockerd treats 127.0.0.0/8 as insecure, i.e. skips verification over
    # HTTPS, so it needs no CA.  Should that ever change, give the engine the
    # CA for exactly this registry and take it away again afterwards.
    certs_dir = None
    try:
        reg.login()
    except harness.HarnessError:
        certs_dir = "/etc/docker/certs.d/%s" % reg.host
        os.makedirs(certs_dir, exist_ok=False)
        shutil.copy(tls_material.ca_pem, os.path.join(certs_dir, "ca.crt"))
        reg.login()
    reg.login(host="localhost")   # images may also be named localhost:PORT/...
    reg.engine_certs_dir = certs_dir
    yield reg
    reg.stop()
    if certs_dir:
        shutil.rmtree(certs_dir, ignore_errors=True)


# --------------------------------------------------------------------------
# per test

@pytest.fixture
def scope(request, run_id):
    """A scope name no other test (or other session) uses."""
    return "e2e-%s-%d" % (run_id, next(_SCOPES))


@pytest.fixture
def scoped(scope, labels):
    """Labels of an opted-in container in this test's scope (+ extra)."""
    def make(extra=None, **kw):
        d = {"refit.enable": "true", "refit.scope": scope}
        d.update(extra or {})
        d.update(kw)
        return labels(d)
    return make


@pytest.fixture
def containers(engine, run_id):
    c = Containers(run_id, "refit-e2e-%s" % run_id)
    yield c
    c.remove_all()


_BIN_SEEN = []


@pytest.fixture
def refit_bin():
    # once seen, a missing binary is being relinked by a concurrent `make`:
    # give it a few seconds
    for _ in range(40 if _BIN_SEEN else 1):
        if os.path.isfile(REFIT_BIN) and os.access(REFIT_BIN, os.X_OK):
            _BIN_SEEN.append(True)
            return REFIT_BIN
        time.sleep(0.25)
    pytest.skip("refit binary not built: %s (set REFIT_BIN or run make)" % REFIT_BIN)


@pytest.fixture
def refit(refit_bin, tmp_path, engine):
    return Refit(refit_bin, str(tmp_path))


def _compose_projects(run_id, tmp_path, argv, env=None, tag=""):
    """The compose(text) factory for a client run as ARGV (with ENV), and its project list."""
    projects = []

    class Project:
        def __init__(self, text):
            self.name = "refite2e%s%s%d" % (run_id, tag, len(projects))
            self.file = os.path.join(str(tmp_path), "docker-compose%s-%d.yml" % (tag, len(projects)))
            with open(self.file, "w") as f:
                f.write(text)

        def cmd(self, *args, check=True):
            return harness.run_cmd(argv + ["-p", self.name, "-f", self.file] + list(args),
                                   check=check, timeout=180, env=env)

    def make(text):
        p = Project(text)
        projects.append(p)
        return p
    return make, projects


@pytest.fixture
def compose(engine, run_id, tmp_path):
    """compose(text) -> project; `docker-compose` (v1, Debian 12's); `down` at teardown."""
    make, projects = _compose_projects(run_id, tmp_path, ["docker-compose"])
    yield make
    for p in projects:
        p.cmd("down", "--volumes", "--remove-orphans", check=False)


@pytest.fixture(scope="session")
def compose_v2_plugin():
    """Path of Debian 13's docker-compose 2.x CLI plugin (fetched once into build/), or skip."""
    import debpkg
    try:
        root = debpkg.fetch("trixie", "docker-compose")
    except debpkg.DebError as exc:
        pytest.skip("docker compose v2 (Debian 13's docker-compose) cannot be fetched: %s" % exc)
    return os.path.join(root, "usr", "libexec", "docker", "cli-plugins", "docker-compose")


@pytest.fixture
def compose_v2(engine, run_id, tmp_path, compose_v2_plugin):
    """compose_v2(text) -> project run with `docker compose` (v2) through a
    DOCKER_CONFIG of the test's own holding the plugin; `down` at teardown."""
    cfg = os.path.join(str(tmp_path), "docker-config")
    os.makedirs(os.path.join(cfg, "cli-plugins"), exist_ok=True)
    plugin = os.path.join(cfg, "cli-plugins", "docker-compose")
    if not os.path.exists(plugin):
        os.symlink(compose_v2_plugin, plugin)
    env = dict(os.environ, DOCKER_CONFIG=cfg)
    make, projects = _compose_projects(run_id, tmp_path, [harness.DOCKER, "compose"], env, "v")
    make.env = env
    yield make
    for p in projects:
        p.cmd("down", "--volumes", "--remove-orphans", check=False)


@pytest.fixture
def daemons(refit_bin, tmp_path, engine):
    """daemons(scope=..., sub=DIR, **Daemon kwargs) -> a Daemon (not started,
    its directory tmp_path/DIR, d0, d1... by default); any still running at
    teardown get SIGTERM (each by its own PID)."""
    made = []

    def make(scope=None, sub=None, **kw):
        d = Daemon(refit_bin, os.path.join(str(tmp_path), sub or "d%d" % len(made)),
                   scope=scope, **kw)
        made.append(d)
        return d
    yield make
    for d in made:
        d.kill()
