"""How refit asks registries (SPEC.md: Finding updates): Accept for indexes
and manifest lists, GET + SHA-256 where HEAD gives no Docker-Content-Digest,
errors from the registry, no-pull, credentials' keys in config.json."""

import json
import re
import urllib.request

import pytest

from harness import docker_inspect, Image, RegistryProxy, digest_only, write_docker_config


@pytest.mark.parametrize("sorts", ["first", "last"], ids=["index-sorts-first",
                                                          "index-sorts-last"])
@pytest.mark.parametrize("oci", [False, True], ids=["docker-manifest-list", "oci-index"])
def test_index_digest_is_compared(oci, sorts, refit, plain_registry, image_factory,
                                  containers, scoped, scope):
    """A container from a multi-platform tag: its image's RepoDigests hold the
    index digest and the platform manifest's digest (the engine lists them
    sorted: both orders are tried); the registry answers HEAD with the index
    digest when asked with the index media types in Accept."""
    img = image_factory.make(plain_registry)
    idx = image_factory.make_index(img, "multi", oci=oci, sorts=sorts)
    name = containers.run(idx.ref, labels=scoped())
    rds = docker_inspect(idx.ref, "image")["RepoDigests"]
    mine = [r.split("@")[1] for r in rds if r.startswith(img.name + "@")]
    assert set(mine) == {img.digest, idx.digest}
    mark = plain_registry.mark()
    res = refit.check_json(scope)
    assert res.rc == 0, res.describe()
    assert res.statuses() == {name: "up-to-date"}, "%s\nRepoDigests: %s\nindex: %s" % (
        res.describe(), rds, idx.digest)
    assert digest_only(res[name].get("latest_digest")) == idx.digest, res.describe()
    assert plain_registry.count({"HEAD", "GET"}, r"^/v2/%s/manifests/" % re.escape(img.repo),
                                since=mark) == 1

    # the tag moves to an index of new content
    nxt = image_factory.make(plain_registry, repo=img.repo, tag="next")
    new_idx = image_factory.make_index(nxt, "multi", oci=oci, pull=False)
    res = refit.check_json(scope)
    assert res.rc == 0, res.describe()
    assert res.statuses() == {name: "update-available"}, res.describe()
    assert digest_only(res[name].get("latest_digest")) == new_idx.digest, res.describe()


def test_head_without_digest_falls_back_to_get(refit, plain_registry, image_factory,
                                               containers, scoped, scope):
    img = image_factory.make(plain_registry)
    proxy = RegistryProxy(plain_registry, strip_head_digest=True).start()
    try:
        via = Image(proxy, img.repo, img.tag, image_factory.pull(proxy.ref(img.repo)),
                    img.digest)
        name = containers.run(via.ref, labels=scoped())
        mark = proxy.mark()
        res = refit.check_json(scope)
        assert res.rc == 0, res.describe()
        assert res.statuses() == {name: "up-to-date"}, "%s\npushed %s, RepoDigests %s\n%s" % (
            res.describe(), img.digest, docker_inspect(img.id, "image")["RepoDigests"],
            proxy.log[mark:])
        assert digest_only(res[name].get("latest_digest")) == img.digest, res.describe()
        assert proxy.count("GET", "/manifests/", since=mark) == 1, proxy.log[mark:]
        assert proxy.count(None, "/manifests/", since=mark) <= 2, proxy.log[mark:]
        assert proxy.count("GET", "/blobs/", since=mark) == 0, proxy.log[mark:]

        new = image_factory.publish_new_version(img)
        res = refit.check_json(scope)
        assert res.rc == 0, res.describe()
        assert res.statuses() == {name: "update-available"}, res.describe()
        assert digest_only(res[name].get("latest_digest")) == new.digest, res.describe()
    finally:
        proxy.stop()


def test_tag_gone_from_registry(refit, plain_registry, image_factory, containers, scoped,
                                scope):
    img = image_factory.make(plain_registry)
    name = containers.run(img, labels=scoped())
    req = urllib.request.Request("%s/v2/%s/manifests/%s" % (plain_registry.url, img.repo,
                                                            img.digest), method="DELETE")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 202
    res = refit.check_json(scope)
    assert res.statuses() == {name: "error"}, res.describe()
    assert re.search(r"404|not found|unknown", res[name].get("error") or "", re.I), \
        res.describe()
    assert res.rc == 1, "the registry was reached; the container failed\n" + res.describe()


@pytest.mark.parametrize("label", ["refit.no-pull", "com.centurylinklabs.watchtower.no-pull"])
def test_no_pull_compares_with_local_image(label, refit, plain_registry, image_factory,
                                           containers, scoped, scope):
    stale, fresh = image_factory.make_many([{"registry": plain_registry},
                                            {"registry": plain_registry}])
    # stale: the local tag moved on (a newer image is on the host already)
    on_stale = containers.run(stale, labels=scoped({label: "true"}))
    newer = image_factory.publish_new_version(stale, keep_local_tag=False)
    # fresh: the registry has something newer, the host does not
    on_fresh = containers.run(fresh, labels=scoped({label: "true"}))
    image_factory.publish_new_version(fresh)
    mark = plain_registry.mark()
    res = refit.check_json(scope)
    assert res.rc == 0, res.describe()
    assert res.statuses() == {on_stale: "update-available", on_fresh: "up-to-date"}, \
        res.describe()
    latest = res[on_stale].get("latest_digest")
    assert digest_only(latest) == newer.digest or latest == newer.id, res.describe()
    assert plain_registry.count(None, r"^/v2/.+/manifests/", since=mark) == 0, \
        "no-pull asks no registry"


@pytest.mark.parametrize("key", ["http://{host}", "https://{host}", "https://{host}/v2/"])
def test_config_json_auth_key_forms(key, refit, token_target, token_registry, token_server,
                                    tmp_path):
    """docker login may store the key with a scheme or a path; Docker finds it."""
    t = token_target
    cfg = write_docker_config(str(tmp_path / "dc"), auths={
        key.format(host=token_registry.host): (token_server.username, token_server.password)})
    res = refit.check_json(t.scope, env={"DOCKER_CONFIG": cfg})
    assert res.rc == 0, res.describe()
    assert res.statuses() == {t.name: "up-to-date"}, res.describe()


def test_config_json_written_by_docker_login(refit, token_target, token_registry):
    """The config.json that `docker login` itself wrote works as it is."""
    t = token_target
    with open("%s/config.json" % token_registry.docker_config) as f:
        written = json.load(f)
    assert token_registry.host in written.get("auths", {})
    res = refit.check_json(t.scope, env={"DOCKER_CONFIG": token_registry.docker_config})
    assert res.rc == 0, res.describe()
    assert res.statuses() == {t.name: "up-to-date"}, res.describe()


def test_lookups_run_concurrently(refit, plain_registry, image_factory, containers, scoped,
                                  scope):
    """Five references behind a registry that takes 1 s per manifest: with
    concurrency 8 several are asked at once."""
    delay = 1.0
    imgs = image_factory.make_many([{"registry": plain_registry} for _ in range(5)])
    proxy = RegistryProxy(plain_registry, strip_head_digest=False).start()
    try:
        names = []
        for img in imgs:
            image_factory.pull(proxy.ref(img.repo))
            names.append(containers.run(proxy.ref(img.repo), labels=scoped()))
        proxy.manifest_delay = delay
        proxy.max_active = 0
        mark = proxy.mark()
        res = refit.check_json(scope, config="concurrency: 8\n")
        assert res.rc == 0, res.describe()
        assert res.statuses() == {n: "up-to-date" for n in names}, res.describe()
        assert proxy.count(None, "/manifests/", since=mark) == 5, proxy.log[mark:]
        assert proxy.max_active >= 3, "at most %d manifest requests at once" % proxy.max_active
    finally:
        proxy.stop()
