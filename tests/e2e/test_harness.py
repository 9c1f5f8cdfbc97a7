"""Tests of the harness itself: they need no refit binary.

If one of these fails, the refit tests' results mean nothing.
"""

import base64
import json
import time
import urllib.error
import urllib.request

import pytest

import engines
import harness
from harness import docker, docker_inspect


def test_engine_answers(engine):
    """The run's engine is the one E2E_ENGINE names: its API version, its image store."""
    assert harness.engine_ping(engine.sock)
    kind = engines.kind()
    assert engine.api_version() == kind.api, (engine.kind, engine.server_version())
    driver = docker("info", "--format", "{{json .DriverStatus}}")
    assert ("io.containerd.snapshotter" in driver) == kind.containerd_store, driver


def test_containers_reach_each_other(engine, image_factory, plain_registry, containers, labels):
    """Containers of the run's engine talk to each other, on its default bridge and on a
    network of a test's own (a private engine's pool passes FORWARD through its own chain)."""
    img = image_factory.make(plain_registry, repo=image_factory.unique_repo("reach"))
    net = "refit-e2e-reach-%s" % labels()[harness.RUN_LABEL]
    docker("network", "create", "--label", "%s=%s" % (harness.RUN_LABEL, labels()[harness.RUN_LABEL]),
           "--subnet", engine.network_prefix() + ".0/24", net)
    try:
        for where in ((), ("--network", net)):
            server = containers.run(img, labels=labels(), hint="srv", extra=list(where),
                                    cmd=["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/"])
            client = containers.run(img, labels=labels(), hint="cli", extra=list(where))
            ip = [n["IPAddress"] for n in docker_inspect(server)["NetworkSettings"]["Networks"].values()][0]
            # busybox-static's wget crashes in a scratch image (no NSS files): nc speaks HTTP here
            out = harness.run_cmd([harness.DOCKER, "exec", client, "/bin/busybox", "sh", "-c",
                                   "printf 'GET /version HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 5 %s 8080"
                                   % ip], check=False)
            assert out.stdout.startswith("HTTP/1.") and " 200 " in out.stdout.split("\n")[0], \
                (where, ip, out.stdout, out.stderr)
    finally:
        containers.remove_all()
        docker("network", "rm", net, check=False)


def test_plain_registry_push_and_access_log_counting(plain_registry, image_factory):
    img = image_factory.make(plain_registry, repo=image_factory.unique_repo("harness"))
    assert img.digest.startswith("sha256:") and len(img.digest) == 71
    assert plain_registry.manifest_digest(img.repo, img.tag) == img.digest

    mark = plain_registry.mark()
    for _ in range(3):
        plain_registry.request("HEAD", "/v2/%s/manifests/%s" % (img.repo, img.tag),
                               headers={"Accept": harness.MANIFEST_ACCEPT})
    plain_registry.request("GET", "/v2/%s/manifests/%s" % (img.repo, img.tag),
                           headers={"Accept": harness.MANIFEST_ACCEPT})
    man = json.loads(plain_registry.request(
        "GET", "/v2/%s/manifests/%s" % (img.repo, img.tag),
        headers={"Accept": harness.MANIFEST_ACCEPT})[2])
    plain_registry.request("GET", "/v2/%s/blobs/%s" % (img.repo, man["config"]["digest"]))
    manifests = r"^/v2/.+/manifests/"
    assert plain_registry.count("HEAD", manifests, since=mark) == 3
    assert plain_registry.count("GET", manifests, since=mark) == 2
    assert plain_registry.count(None, manifests, since=mark) == 5
    assert plain_registry.count({"HEAD", "GET"}, manifests, since=mark) == 5
    assert plain_registry.count("GET", r"^/v2/.+/blobs/", since=mark) == 1
    assert plain_registry.count(None, None, since=plain_registry.mark()) == 0


def test_image_factory_new_version_keeps_local_tag(plain_registry, image_factory):
    old = image_factory.make(plain_registry, repo=image_factory.unique_repo("newver"))
    new = image_factory.publish_new_version(old)
    assert new.digest != old.digest and new.id != old.id
    assert plain_registry.manifest_digest(old.repo, old.tag) == new.digest
    # the host still has the old image under the tag
    assert docker_inspect(old.ref, "image")["Id"] == old.id
    assert "%s@%s" % (old.name, old.digest) in docker_inspect(old.id, "image")["RepoDigests"]
    # ... and does not have the new one (a pull would have to fetch it)
    assert docker("images", "-q", "--no-trunc", "--filter", "reference=%s" % old.name).split() \
        == [old.id]
    assert docker("inspect", new.id, check=False).strip() in ("", "[]")


def test_engine_events_see_the_block_and_nothing_before(plain_registry, image_factory,
                                                       containers, labels):
    img = image_factory.make(plain_registry)
    with harness.EngineEvents() as first:
        name = containers.run(img, labels=labels())
        cid = containers.inspect(name)["Id"]
    with harness.EngineEvents() as second:
        harness.docker("stop", "-t", "5", name)
    mine = [[e.get("Action") for e in evs.events() if e.get("id") == cid]
            for evs in (first, second)]
    assert "create" in mine[0] and "start" in mine[0], mine
    assert "stop" in mine[1] and "create" not in mine[1] and "start" not in mine[1], mine


def test_parallel_builds_have_distinct_digests(plain_registry, image_factory):
    imgs = image_factory.make_many([{"registry": plain_registry} for _ in range(3)])
    assert len({i.digest for i in imgs}) == 3
    assert len({i.id for i in imgs}) == 3


def test_healthcheck_image_becomes_healthy_and_stops_fast(plain_registry, image_factory,
                                                          containers, labels):
    img = image_factory.make(plain_registry, healthcheck=True)
    name = containers.run(img, labels=labels())
    c = containers.inspect(name)
    assert c["Config"]["Labels"][harness.RUN_LABEL] == labels()[harness.RUN_LABEL]
    harness.wait_for(lambda: containers.inspect(name)["State"].get("Health", {})
                     .get("Status") == "healthy", 20, 0.5, "healthy")
    t = time.monotonic()
    docker("stop", "-t", "10", name)
    assert time.monotonic() - t < 5, "the CMD loop must exit on SIGTERM"
    assert containers.inspect(name)["State"]["ExitCode"] == 0


def test_token_registry_requires_token(token_registry, token_server):
    status, headers, _ = token_registry.request("GET", "/v2/", auth=False)
    assert status == 401
    www = {k.lower(): v for k, v in headers.items()}["www-authenticate"]
    assert www.startswith("Bearer ")
    assert 'realm="%s"' % token_server.realm in www
    assert 'service="refit-test"' in www


def test_token_server_refuses_bad_credentials(token_server):
    mark = token_server.mark()
    for auth in (None, ("ci", "wrong"), ("other", token_server.password)):
        hdrs = {}
        if auth:
            hdrs["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % auth).encode()).decode()
        req = urllib.request.Request(token_server.realm + "?service=refit-test&scope="
                                     "repository:x:pull", headers=hdrs)
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(req, timeout=5)
        assert ei.value.code == 401
    assert token_server.count(since=mark, ok=False) == 3
    assert token_server.count(since=mark, ok=True) == 0


def test_token_registry_login_push_and_pull_flow(token_registry, token_server, image_factory):
    # docker login happened in the fixture (through the engine); push now
    mark = token_server.mark()
    img = image_factory.make(token_registry, repo=image_factory.unique_repo("tok"))
    assert token_server.count(since=mark, repository=img.repo) >= 1
    assert any("push" in s for r in token_server.requests(mark) for s in r["scopes"])
    # the token flow by hand: a pull token, then HEAD the manifest
    m2 = token_server.mark()
    assert token_registry.manifest_digest(img.repo, img.tag) == img.digest
    assert token_server.count(scope="repository:%s:pull" % img.repo, since=m2) == 1
    assert token_server.served_per_scope(m2) == {"repository:%s:pull" % img.repo: 1}
    # a token for another repository does not open this one
    status, _, _ = token_registry.request(
        "HEAD", "/v2/%s/manifests/latest" % img.repo,
        scope="repository:someone-else:pull")
    assert status == 401


def test_token_is_rs256_with_x5c(token_registry, token_server):
    tok = token_registry.token_server_token("repository:a/b:pull")
    header = json.loads(base64.urlsafe_b64decode(tok.split(".")[0] + "=="))
    assert header["alg"] == "RS256" and len(header["x5c"]) == 1
    claims = json.loads(base64.urlsafe_b64decode(tok.split(".")[1] + "=="))
    assert claims["aud"] == "refit-test" and claims["iss"] == "refit-test-issuer"
    assert claims["access"] == [{"type": "repository", "name": "a/b", "actions": ["pull"]}]
    assert claims["exp"] - claims["iat"] == 300


def test_tls_registry_push_and_verify(tls_registry, tls_material, image_factory):
    img = image_factory.make(tls_registry, repo=image_factory.unique_repo("tls"))
    assert tls_registry.manifest_digest(img.repo, img.tag) == img.digest
    # without credentials: 401 Basic
    status, headers, _ = tls_registry.request("GET", "/v2/", auth=False)
    assert status == 401
    assert {k.lower(): v for k, v in headers.items()}["www-authenticate"].startswith("Basic ")
    # without the CA: certificate verification fails
    import ssl
    with pytest.raises((ssl.SSLError, urllib.error.URLError)):
        urllib.request.urlopen(tls_registry.url + "/v2/", timeout=5)
    # the certificate names 127.0.0.1 and localhost
    ctx = tls_material.ssl_context()
    for host in ("127.0.0.1", "localhost"):
        req = urllib.request.Request("https://%s:%d/v2/" % (host, tls_registry.port))
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(req, timeout=5, context=ctx)
        assert ei.value.code == 401


def test_tls_registry_by_localhost_name(tls_registry, image_factory):
    img = image_factory.make(tls_registry, host="localhost")
    assert img.ref.startswith("localhost:%d/" % tls_registry.port)
    assert tls_registry.manifest_digest(img.repo, img.tag) == img.digest


def test_stopped_registry_port_is_closed(registry_factory, image_factory, containers, labels):
    reg = registry_factory("harness-stop")
    img = image_factory.make(reg)
    name = containers.run(img, labels=labels())
    reg.stop()
    assert harness.port_is_closed(reg.port)
    assert containers.inspect(name)["State"]["Running"]


def test_cred_helper_script(tmp_path, token_registry, token_server):
    log = str(tmp_path / "helper.log")
    path = harness.write_cred_helper(str(tmp_path / "bin"), "refittest", log,
                                     token_registry.host, "ci", token_server.password)
    p = harness.run_cmd([path, "get"], input=token_registry.host)
    out = json.loads(p.stdout)
    assert out["Username"] == "ci" and out["Secret"] == token_server.password
    p = harness.run_cmd([path, "get"], input="example.invalid", check=False)
    assert p.returncode == 1
    assert [e["action"] for e in harness.read_helper_log(log)] == ["get", "get"]


def test_compose_available(compose, plain_registry, image_factory, labels, run_id):
    img = image_factory.make(plain_registry)
    proj = compose(COMPOSE_MINI % {"image": img.ref, "run": run_id})
    proj.cmd("up", "-d")
    out = docker("ps", "-q", "--filter", "label=com.docker.compose.project=%s" % proj.name)
    assert len(out.split()) == 1
    nets = docker("network", "ls", "-q", "--filter", "label=%s=%s" % (harness.RUN_LABEL, run_id))
    assert nets.split(), "compose network carries the run label"


COMPOSE_MINI = """version: "2.4"
services:
  app:
    image: %(image)s
    labels:
      refit-test.run: "%(run)s"
networks:
  default:
    labels:
      refit-test.run: "%(run)s"
"""


@pytest.mark.engines("20.10", "26", reason="on the containerd image store dockerd's pull through this "
                     "proxy fails (containerd 1.7's resolver); refit's own GET fallback is tested through it "
                     "on the classic store")
def test_proxy_strips_head_digest(plain_registry, image_factory):
    img = image_factory.make(plain_registry)
    proxy = harness.RegistryProxy(plain_registry).start()
    try:
        pulled = image_factory.pull(proxy.ref(img.repo, img.tag))
        assert pulled == img.id
        rds = docker_inspect(img.id, "image")["RepoDigests"]
        assert "%s/%s@%s" % (proxy.host, img.repo, img.digest) in rds
        req = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (
            proxy.host, img.repo, img.tag), method="HEAD",
            headers={"Accept": harness.MANIFEST_ACCEPT})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200 and r.headers.get("Docker-Content-Digest") is None
        req = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (
            proxy.host, img.repo, img.tag), headers={"Accept": harness.MANIFEST_ACCEPT})
        with urllib.request.urlopen(req, timeout=5) as r:
            import hashlib
            assert "sha256:" + hashlib.sha256(r.read()).hexdigest() == img.digest
        assert proxy.count("HEAD", "/manifests/") >= 1
    finally:
        proxy.stop()


@pytest.mark.parametrize("oci", [False, True], ids=["docker-list", "oci-index"])
def test_image_index(oci, plain_registry, image_factory):
    img = image_factory.make(plain_registry)
    idx = image_factory.make_index(img, "multi", oci=oci)
    # the classic store names the image by its config; the containerd store by the index
    assert idx.digest != img.digest
    assert idx.id == (idx.digest if engines.kind().containerd_store else img.id)
    rds = docker_inspect(idx.ref, "image")["RepoDigests"]
    assert "%s@%s" % (img.name, idx.digest) in rds
    assert plain_registry.manifest_digest(img.repo, "multi") == idx.digest
