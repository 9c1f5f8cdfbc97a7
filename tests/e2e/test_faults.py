"""A misbehaving registry (issue "faults"): 5xx, 429 with Retry-After, a
registry that never answers, connection resets, truncated and garbage
bodies, a Docker-Content-Digest that does not match, a token endpoint that
fails, and a pull that fails.

Each test has two stale containers on two repositories of the same registry
host, both reached through faultproxy.FaultProxy (on 127.0.0.1), and only
the first repository's requests are faulted.  For each fault: `refit check
--json` / `refit update --json` report the faulted container with an error
that names the problem, the exit code is SPEC.md's (1: a container could
not be updated; 3: a registry could not be reached), the faulted container
is not touched (same container ID, same image, still running, never
restarted, no copy left) and the other container is updated.

Staleness is cheap: per module, v1 and v2 of each repository are built and
pushed once and v1 is pulled through the proxy (so its RepoDigests name the
proxy).  Each test then gets a fresh tag: the registry's TAG is v2's
manifest (a PUT of the same bytes), the host's TAG is v1.

refit's registry client (src/registry.c) retries a manifest request twice
after a 5xx, a 429 or a cut connection (waits of 1 s then 2 s, or the
Retry-After when it is at most 10 s), and has fixed timeouts (README: 10 s
connect, 30 s per request; no config key).
"""

import hashlib
import itertools
import json
import os
import re
import time
import types
import urllib.request

import pytest

from faultproxy import FaultProxy
from harness import Image, Registry, docker, write_docker_config
from swaptools import inspect, leftovers, pending_ops, run_refit

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
BOGUS_DIGEST = "sha256:" + hashlib.sha256(b"refit fault test: no such manifest").hexdigest()
_TAGS = itertools.count(1)
# Fast swaps (the health gate is not what these tests are about): running is healthy.
SWAP_CONFIG = "min_uptime: 0\nhealth_timeout: 20\nstop_timeout: 3\n"


# --------------------------------------------------------------------------
# the world: images, registries, proxies (per module)

class Repo:
    """One repository with v1 (on the host, pulled via the proxy) and v2
    (the registry's manifest for every staged tag)."""

    def __init__(self, name, v1, v2, manifest, media_type):
        self.name = name
        self.v1 = v1
        self.v2 = v2
        self.manifest = manifest          # v2's manifest bytes
        self.media_type = media_type


class World:
    def __init__(self, factory, registry, via, auth_scope=None):
        self.factory = factory
        self.registry = registry          # where manifests are PUT
        self.via = via                    # the host name containers use
        self.repos = {}
        self.auth_scope = auth_scope      # token registry: callable(repo) -> token

    def manifest_path(self, key, ref="[^/]+"):
        return r"^/v2/%s/manifests/%s" % (re.escape(self.repos[key].name), ref)

    def stage(self, key, tag):
        """The registry's TAG -> v2, the host's via/repo:TAG -> v1; returns the reference."""
        repo = self.repos[key]
        headers = {"Content-Type": repo.media_type}
        if self.auth_scope:
            headers["Authorization"] = "Bearer " + self.auth_scope(repo.name)
        req = urllib.request.Request("%s/v2/%s/manifests/%s" % (self.registry.url, repo.name, tag),
                                     data=repo.manifest, method="PUT", headers=headers)
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers.get("Docker-Content-Digest") == repo.v2.digest
        ref = "%s/%s:%s" % (self.via, repo.name, tag)
        with self.factory.lock:
            self.factory.tags.append(ref)      # removed at the session's cleanup
        docker("tag", repo.v1.id, ref)
        return ref


def _get_manifest(registry, repo, digest, token=None):
    headers = {"Accept": MANIFEST_V2}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request("%s/v2/%s/manifests/%s" % (registry.url, repo, digest),
                                 headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read(), r.headers.get("Content-Type")


@pytest.fixture(scope="module")
def built(image_factory, plain_registry):
    """v1 and v2 of repositories a (faulted) and b (healthy) on the plain
    registry."""
    names = {k: image_factory.unique_repo("fault-" + k) for k in ("a", "b")}
    specs = [{"registry": plain_registry, "repo": names[k], "tag": t}
             for k in sorted(names) for t in ("v1", "v2")]
    imgs = iter(image_factory.make_many(specs))
    out = {}
    for k in sorted(names):
        v1, v2 = next(imgs), next(imgs)
        assert v1.digest != v2.digest
        out[k] = (names[k], v1, v2)
    return out


@pytest.fixture(scope="module")
def plain_world(built, image_factory, plain_registry):
    proxy = FaultProxy(plain_registry.port, name="registry-fault-proxy").start()
    w = World(image_factory, plain_registry, proxy.host)
    w.proxy = proxy
    for k, (name, v1, v2) in built.items():
        assert image_factory.pull(proxy.ref(name, "v1")) == v1.id
        body, mt = _get_manifest(plain_registry, name, v2.digest)
        w.repos[k] = Repo(name, v1, v2, body, mt)
    yield w
    proxy.stop()


@pytest.fixture(scope="module")
def token_world(built, image_factory, token_server, tmp_path_factory):
    """A Bearer-token registry whose realm is a FaultProxy in front of the
    harness's TokenServer; a and b pushed to it."""
    tproxy = FaultProxy(token_server.port, name="token-fault-proxy").start()
    shim = types.SimpleNamespace(realm="%s/token" % tproxy.url, service=token_server.service,
                                 issuer=token_server.issuer, cert_path=token_server.cert_path,
                                 username=token_server.username, password=token_server.password)
    reg = Registry(str(tmp_path_factory.mktemp("fault-token")), "fault-token", kind="token",
                   token_server=shim, username=token_server.username,
                   password=token_server.password).start()
    try:
        reg.login()

        def token(repo):
            return reg.token_server_token("repository:%s:pull,push" % repo)

        w = World(image_factory, reg, reg.host, auth_scope=token)
        w.proxy = tproxy
        w.docker_config = write_docker_config(
            str(tmp_path_factory.mktemp("fault-token-dc")),
            auths={reg.host: (token_server.username, token_server.password)})
        for k in ("a", "b"):
            name, v1, v2 = built[k]
            pushed = []
            for v in (v1, v2):
                ref = reg.ref(name, "v1" if v is v1 else "v2")
                with image_factory.lock:
                    image_factory.tags.append(ref)
                docker("tag", v.id, ref)
                # (the same image may get another digest on another registry)
                pushed.append(Image(reg, name, ref.rsplit(":", 1)[1], v.id,
                                    image_factory.push(ref, config_dir=reg.docker_config)))
            body, mt = _get_manifest(reg, name, pushed[1].digest, token(name))
            w.repos[k] = Repo(name, pushed[0], pushed[1], body, mt)
        yield w
    finally:
        reg.stop()
        tproxy.stop()


@pytest.fixture(autouse=True)
def _no_rules_left(request):
    """Every test starts and ends with proxies that only forward."""
    worlds = [request.getfixturevalue(n) for n in ("plain_world", "token_world")
              if n in request.fixturenames]
    for w in worlds:
        w.proxy.clear()
    yield
    for w in worlds:
        w.proxy.clear()


# --------------------------------------------------------------------------
# helpers

class Pair:
    """Two stale containers: `bad` on repository a (faulted) and `good` on b."""

    def __init__(self, world, containers, scoped):
        tag = "t%d-%s" % (next(_TAGS), os.urandom(3).hex())
        self.world = world
        self.bad_repo = world.repos["a"]
        self.good_repo = world.repos["b"]
        refs = (world.stage("a", tag), world.stage("b", tag))
        self.bad, self.good = containers.run_many([
            {"image": refs[0], "labels": scoped(), "hint": "faulted"},
            {"image": refs[1], "labels": scoped(), "hint": "healthy"}])
        self.before = {n: inspect(n) for n in (self.bad, self.good)}

    def assert_bad_untouched(self, res):
        old, cur = self.before[self.bad], inspect(self.bad)
        assert cur is not None, "%s is gone\n%s" % (self.bad, res.describe())
        assert cur["Id"] == old["Id"], "%s was replaced\n%s" % (self.bad, res.describe())
        assert cur["Image"] == old["Image"] == self.bad_repo.v1.id, \
            "%s is on another image\n%s" % (self.bad, res.describe())
        assert cur["State"]["Running"], cur["State"]
        assert cur["State"]["StartedAt"] == old["State"]["StartedAt"], \
            "%s was stopped and started again\n%s" % (self.bad, res.describe())
        assert cur["RestartCount"] == old["RestartCount"]
        assert leftovers(self.bad) == [], res.describe()

    def assert_good_updated(self, res):
        old, cur = self.before[self.good], inspect(self.good)
        assert cur is not None, "%s is gone\n%s" % (self.good, res.describe())
        assert cur["Id"] != old["Id"], "%s was not replaced\n%s" % (self.good, res.describe())
        assert cur["Image"] == self.good_repo.v2.id, res.describe()
        assert cur["State"]["Running"], cur["State"]
        assert leftovers(self.good) == [], res.describe()


class Run:
    """A refit run with --json: rc, the entries by name (whatever the rc)."""

    def __init__(self, res, seconds):
        self.res = res
        self.rc = res.rc
        self.seconds = seconds
        self.entries = {}
        try:
            data = json.loads(res.stdout)
        except ValueError as e:
            raise AssertionError("no JSON on stdout (%s)\n%s" % (e, res.describe()))
        assert isinstance(data.get("containers"), list), res.describe()
        for c in data["containers"]:
            self.entries[c["name"].lstrip("/")] = c

    def __getitem__(self, name):
        assert name in self.entries, "%s not in the output\n%s" % (name, self.describe())
        return self.entries[name]

    def error(self, name):
        return self[name].get("error") or ""

    def statuses(self):
        return {n: c.get("status") for n, c in self.entries.items()}

    def describe(self):
        return "%s\n(%.1f s)" % (self.res.describe(), self.seconds)


def refit_json(refit, command, scope, env=None, timeout=120):
    config = "# fault e2e\nstate_dir: %s\n%s" % (refit.state_dir, SWAP_CONFIG)
    t0 = time.monotonic()
    res = run_refit(refit, command, "--json", "--scope", scope, config=config, env=env,
                    timeout=timeout)
    return Run(res, time.monotonic() - t0)


def check_reports(refit, scope, pair, error_re, rc, env=None):
    """`refit check --json`: the faulted container is an error naming the
    problem, the other one has its update; nothing changes."""
    res = refit_json(refit, "check", scope, env=env)
    assert res.statuses() == {pair.bad: "error", pair.good: "update-available"}, res.describe()
    assert re.search(error_re, res.error(pair.bad), re.I), \
        "error should match %r\n%s" % (error_re, res.describe())
    assert pair.world.via in res.error(pair.bad), "the error should name the registry\n" + \
        res.describe()
    assert res.rc == rc, res.describe()
    for n in (pair.bad, pair.good):
        assert inspect(n)["Id"] == pair.before[n]["Id"], "check changed %s" % n
    return res


def update_reports(refit, scope, pair, error_re, rc, env=None, timeout=120):
    """`refit update --json`: the faulted container failed with an error
    naming the problem and is untouched; the other one is updated."""
    res = refit_json(refit, "update", scope, env=env, timeout=timeout)
    assert res.statuses() == {pair.bad: "failed", pair.good: "updated"}, res.describe()
    pair.assert_bad_untouched(res)
    pair.assert_good_updated(res)
    assert re.search(error_re, res.error(pair.bad), re.I), \
        "error should match %r\n%s" % (error_re, res.describe())
    assert not res[pair.good].get("error"), res.describe()
    assert res.rc == rc, res.describe()
    assert pending_ops(refit) == [], res.describe()
    return res


def gaps(entries):
    return [b["t"] - a["t"] for a, b in zip(entries, entries[1:])]


# --------------------------------------------------------------------------
# manifest requests that fail, every time

NOT_MANIFEST = b"<html><body>502 Bad Gateway (not a manifest)</body></html>\n"

# id -> (rules for repository a: [(method, ref regex, Rule kwargs)], error regex, exit code)
PERSISTENT = {
    "http-500": ([(None, None, {"status": 500})], r"\b500\b", 1),
    # (a 429 with a short Retry-After: test_transient_fault_is_retried)
    "429-retry-after-3600": ([(None, None, {"status": 429,
                                            "headers": {"Retry-After": "3600"}})],
                             r"\b429\b.*too many", 1),
    "connection-reset": ([(None, None, {"reset": True})], r"reset|recv failure", 1),
    # HEAD without Docker-Content-Digest: refit GETs the body and hashes it
    "truncated-body": ([("HEAD", None, {"drop_headers": ["Docker-Content-Digest"]}),
                        ("GET", None, {"truncate": True})],
                       r"transfer closed|bytes remaining|partial|truncat", 1),
    "garbage-body-with-digest": ([("HEAD", None, {"drop_headers": ["Docker-Content-Digest"]}),
                                  ("GET", None, {"body": NOT_MANIFEST})],
                                 r"Docker-Content-Digest .*does not match", 1),
    "digest-header-mismatch": ([("HEAD", None, {"drop_headers": ["Docker-Content-Digest"]}),
                                ("GET", None, {"set_headers": {
                                    "Docker-Content-Digest": BOGUS_DIGEST}})],
                               r"Docker-Content-Digest .*does not match", 1),
}


@pytest.mark.parametrize("fault", sorted(PERSISTENT))
def test_persistent_manifest_fault(fault, refit, plain_world, containers, scoped, scope):
    """Every manifest request for repository a fails in the same way: check
    and update report a with an error naming the problem (exit 1: the
    registry answered), a is untouched, b is updated; refit gives up within
    a few requests (no retry storm) and a few seconds (a Retry-After of an
    hour is not waited for within the pass, nor cut short by a retry)."""
    rules, error_re, rc = PERSISTENT[fault]
    w, proxy = plain_world, plain_world.proxy
    pair = Pair(w, containers, scoped)
    for method, ref, kw in rules:
        proxy.add(method=method, path_re=w.manifest_path("a", ref or "t"), **kw)

    check_reports(refit, scope, pair, error_re, rc)
    mark = proxy.mark()
    res = update_reports(refit, scope, pair, error_re, rc)

    faulted = proxy.entries(mark, path_re=w.manifest_path("a", "t"))
    assert 1 <= len(faulted) <= 6, "requests for the faulted tag: %r" % faulted
    assert res.seconds < 30, "a registry that answers at once must not cost %.1f s" % res.seconds
    if fault.startswith("429"):
        after = int(rules[0][2]["headers"]["Retry-After"])
        too_soon = [g for g in gaps(faulted) if g < min(after, 30) - 0.1]
        assert not too_soon, "retried before Retry-After: %r" % gaps(faulted)
    # b's requests were answered as usual
    assert proxy.count(path_re=w.manifest_path("b", "t"), since=mark) >= 1


# --------------------------------------------------------------------------
# transient faults: what an operator expects to be retried

TRANSIENT = {
    "single-500": {"status": 500, "times": 1},
    "single-429-retry-after-1": {"status": 429, "headers": {"Retry-After": "1"}, "times": 1},
}


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
def test_transient_fault_is_retried(fault, refit, plain_world, containers, scoped, scope):
    """One 500, or one 429 with Retry-After: 1, then the registry answers
    again: refit retries within the pass (not before the Retry-After, when
    one is given) and finds a's update.  (check runs the same lookups as
    update.)"""
    w, proxy = plain_world, plain_world.proxy
    pair = Pair(w, containers, scoped)
    kw = TRANSIENT[fault]
    proxy.add(path_re=w.manifest_path("a", "t"), **kw)
    mark = proxy.mark()
    res = refit_json(refit, "check", scope)
    faulted = proxy.entries(mark, path_re=w.manifest_path("a", "t"))
    assert len(faulted) >= 2, "no retry after %s: %r\n%s" % (fault, faulted, res.describe())
    if "Retry-After" in kw.get("headers", {}):
        assert gaps(faulted)[0] >= 0.9, "retried before Retry-After: %r" % gaps(faulted)
    assert res.statuses() == {pair.bad: "update-available", pair.good: "update-available"}, \
        res.describe()
    assert res[pair.bad].get("latest_digest", "").endswith(pair.bad_repo.v2.digest), \
        res.describe()
    assert res.rc == 0, res.describe()


# --------------------------------------------------------------------------
# a registry that never answers

def test_manifest_request_hangs(refit, plain_world, containers, scoped, scope):
    """Repository a's manifest requests are accepted and never answered:
    refit gives up after its request timeout (registry_timeout, here 4 s
    instead of the default 30), reports a as timed out with exit 3 (a
    registry could not be reached), leaves a alone and still updates b."""
    w, proxy = plain_world, plain_world.proxy
    pair = Pair(w, containers, scoped)
    proxy.add(path_re=w.manifest_path("a", "t"), hang=True, hang_seconds=90)
    mark = proxy.mark()
    res = update_reports(refit, scope, pair, r"tim(e|ed) ?out", 3, timeout=90,
                         env={"REFIT_REGISTRY_TIMEOUT": "4"})
    # at most three attempts of 4 s each, and the pass's own work
    assert res.seconds < 25, "refit waited %.1f s for a registry that never answers" % res.seconds
    assert 1 <= proxy.count(path_re=w.manifest_path("a", "t"), since=mark) <= 3


def test_tls_handshake_without_answer_falls_back_to_http(refit, plain_world, containers,
                                                         scoped, scope):
    """refit speaks TLS first to a registry on loopback and falls back to
    plain HTTP when the server answers the handshake in plain HTTP.  A
    handshake that gets no answer at all until the connect timeout (10 s)
    falls back too: refit's own side of it can be that slow (under valgrind
    on a busy host), and a plain HTTP registry must not become unreachable
    for it."""
    w, proxy = plain_world, plain_world.proxy
    pair = Pair(w, containers, scoped)
    proxy.silent_tls.set()
    mark = proxy.mark()
    res = refit_json(refit, "check", scope, timeout=90)
    assert proxy.count(method="TLS", since=mark) >= 1, "refit never tried TLS"
    assert res.statuses() == {pair.bad: "update-available", pair.good: "update-available"}, \
        res.describe()
    assert res.rc == 0, res.describe()
    assert proxy.count(method={"GET", "HEAD"}, path_re=w.manifest_path("a", "t"),
                       since=mark) >= 1, "no manifest request over plain HTTP"


# --------------------------------------------------------------------------
# wrong digests and bodies that refit cannot check itself

def test_wrong_digest_on_head_fails_at_pull(refit, plain_world, containers, scoped, scope):
    """HEAD answers a Docker-Content-Digest that is not the tag's manifest
    (refit cannot check a HEAD): refit may believe it and try to pull that
    digest, but the pull fails and a is left alone; b is updated."""
    w, proxy = plain_world, plain_world.proxy
    pair = Pair(w, containers, scoped)
    proxy.add(method="HEAD", path_re=w.manifest_path("a", "t"),
              set_headers={"Docker-Content-Digest": BOGUS_DIGEST})
    mark = proxy.mark()
    res = update_reports(refit, scope, pair, r"%s|manifest unknown|not found" % BOGUS_DIGEST, 1)
    assert res[pair.bad].get("latest_digest", "").endswith(BOGUS_DIGEST), res.describe()
    # the engine asked the registry for that digest, through the proxy
    assert proxy.count("GET", w.manifest_path("a", re.escape(BOGUS_DIGEST)), since=mark) >= 1


def _garbage_without_digest(proxy, w):
    proxy.add(method="HEAD", path_re=w.manifest_path("a", "t"),
              drop_headers=["Docker-Content-Digest"])
    proxy.add(method="GET", path_re=w.manifest_path("a", "t"),
              drop_headers=["Docker-Content-Digest"], body=NOT_MANIFEST)


def test_garbage_body_without_digest_changes_nothing(refit, plain_world, containers, scoped,
                                                     scope):
    """HEAD has no Docker-Content-Digest and GET answers 200 with an HTML
    page and no digest either: whatever refit makes of it, a is not
    changed and b is updated."""
    w, proxy = plain_world, plain_world.proxy
    pair = Pair(w, containers, scoped)
    _garbage_without_digest(proxy, w)
    res = refit_json(refit, "update", scope)
    assert res.statuses() == {pair.bad: "failed", pair.good: "updated"}, res.describe()
    assert res.error(pair.bad), res.describe()
    assert res.rc == 1, res.describe()
    pair.assert_bad_untouched(res)
    pair.assert_good_updated(res)


def test_garbage_body_without_digest_is_an_error(refit, plain_world, containers, scoped,
                                                 scope):
    """The same HTML page: it is not a manifest, so `refit check` says
    error (naming the manifest), not update-available with the page's hash
    as the latest digest."""
    w, proxy = plain_world, plain_world.proxy
    pair = Pair(w, containers, scoped)
    _garbage_without_digest(proxy, w)
    check_reports(refit, scope, pair, r"manifest", 1)


# --------------------------------------------------------------------------
# the token endpoint fails

TOKEN_FAULTS = {
    "http-500": ({"status": 500}, r"token.*\b500\b"),
    "garbage-body": ({"body": NOT_MANIFEST}, r"token"),
}


@pytest.mark.parametrize("fault", sorted(TOKEN_FAULTS))
def test_token_endpoint_fails(fault, refit, token_world, containers, scoped, scope):
    """The token server fails for repository a's scope only: a is reported
    with an error about its token, exit 1; b (its own token) is updated."""
    w, proxy = token_world, token_world.proxy
    pair = Pair(w, containers, scoped)
    kw, error_re = TOKEN_FAULTS[fault]
    proxy.add(path_re=r"^/token\?.*scope=repository:%s:" % re.escape(w.repos["a"].name), **kw)
    env = {"DOCKER_CONFIG": w.docker_config}
    mark = proxy.mark()
    check_reports(refit, scope, pair, error_re, 1, env=env)
    assert proxy.count(path_re=re.escape(w.repos["a"].name), since=mark) >= 1, \
        "refit never asked the token endpoint for a: %r" % proxy.entries(mark)
    update_reports(refit, scope, pair, error_re, 1, env=env)


# --------------------------------------------------------------------------
# the pull itself fails

def _pull_pair(w, proxy, containers, scoped, refit, scope, **fault):
    """Stale a and b; the engine's GET of a's new manifest (by digest: no
    test pulls a's v2 through the proxy) fails; the check (HEAD of the tag)
    still goes through."""
    pair = Pair(w, containers, scoped)
    proxy.add(method="GET", path_re=w.manifest_path("a", "sha256:"), **fault)
    res = refit_json(refit, "check", scope)
    assert res.statuses() == {pair.bad: "update-available", pair.good: "update-available"}, \
        res.describe()
    return pair


def test_pull_fails(refit, plain_world, containers, scoped, scope):
    """The engine's pull of a's new digest through the proxy gets a 500: a is
    reported failed with an error about its pull and left alone; b is
    updated."""
    w, proxy = plain_world, plain_world.proxy
    pair = _pull_pair(w, proxy, containers, scoped, refit, scope, status=500)
    mark = proxy.mark()
    update_reports(refit, scope, pair, r"^pull .*%s" % re.escape(pair.bad_repo.v2.digest), 1)
    # the engine did try, through the proxy
    assert proxy.count("GET", w.manifest_path("a", "sha256:"), since=mark) >= 1


def test_pull_error_names_the_cause(refit, plain_world, containers, scoped, scope):
    """The registry resets the engine's connection during the pull: the error
    says so (the engine answers 500 {"message": "... connection reset by
    peer"}), not only that the pull failed."""
    w, proxy = plain_world, plain_world.proxy
    pair = _pull_pair(w, proxy, containers, scoped, refit, scope, reset=True)
    update_reports(refit, scope, pair, r"^pull .*connection reset", 1)
