"""`refit check`: finding updates, and changing nothing while doing so (SPEC.md:
Command line, Which containers, Finding updates)."""

import re

from harness import EngineEvents, digest_only, docker, docker_inspect, refit_version

MANIFESTS = r"^/v2/.+/manifests/"
BLOBS = r"^/v2/.+/blobs/"


def assert_entry(res, name, containers, img, status, latest=None):
    """The check entry for NAME: status, id, image, digests."""
    c = res[name]
    assert c.get("status") == status, "status of %s\n%s" % (name, res.describe())
    cid = containers.inspect(name)["Id"]
    assert isinstance(c.get("id"), str) and len(c["id"]) >= 12 and cid.startswith(c["id"]), \
        "id %r is not container %s\n%s" % (c.get("id"), cid, res.describe())
    assert c.get("image") == img.ref, res.describe()
    assert digest_only(c.get("current_digest")) == img.digest, res.describe()
    if latest is not None:
        assert digest_only(c.get("latest_digest")) == latest, res.describe()
    return c


def test_up_to_date_right_after_run(refit, shared_images, containers, scoped, scope):
    img = shared_images[0]
    name = containers.run(img, labels=scoped())
    res = refit.check_json(scope)
    assert res.rc == 0, res.describe()
    assert res.names == {name}, res.describe()
    c = assert_entry(res, name, containers, img, "up-to-date", latest=img.digest)
    assert c.get("strategy") == "recreate", res.describe()
    assert not c.get("error"), res.describe()


def test_registry_requests_carry_the_version(refit, refit_bin, shared_images, containers, scoped,
                                             scope, plain_registry):
    """The User-Agent of registry requests is refit/VERSION, the version
    `refit version` prints (the registry's access log records it)."""
    name = containers.run(shared_images[1], labels=scoped())
    mark = plain_registry.mark()
    res = refit.check_json(scope)
    assert res.rc == 0 and res.names == {name}, res.describe()
    agent = '"refit/%s"' % refit_version(refit_bin)
    lines = [e["line"] for e in plain_registry.access_entries(mark)
             if re.match(MANIFESTS, e["path"])]
    assert lines and all(line.rstrip().endswith(agent) for line in lines), (agent, lines)


def test_update_available_and_check_changes_nothing(refit, plain_registry, image_factory,
                                                    containers, scoped, scope):
    img = image_factory.make(plain_registry, healthcheck=True)
    running = containers.run(img, labels=scoped())
    other = containers.run(img, labels=scoped())
    new = image_factory.publish_new_version(img, healthcheck=True)
    names = [running, other]
    docker("stop", "-t", "5", other)    # a stopped one is not selected by default

    before = containers.snapshot(names)
    tag_before = docker_inspect(img.ref, "image")["Id"]
    local_before = sorted(docker("images", "-q", "--no-trunc", "-a", "--filter",
                                 "reference=%s" % img.name).split())
    mark = plain_registry.mark()
    with EngineEvents() as engine_events:
        res = refit.check_json(scope)

    assert res.rc == 0, res.describe()
    assert res.names == {running}, "stopped containers are not checked by default\n" + \
        res.describe()
    assert_entry(res, running, containers, img, "update-available", latest=new.digest)

    # nothing changed on the host
    assert containers.snapshot(names) == before
    assert docker_inspect(img.ref, "image")["Id"] == tag_before == img.id
    assert sorted(docker("images", "-q", "--no-trunc", "-a", "--filter",
                         "reference=%s" % img.name).split()) == local_before
    assert docker("inspect", "--type", "image", new.id, check=False).strip() in ("", "[]"), \
        "check pulled the new image"
    # ... the engine saw no pull, tag, create, start, stop, rename or removal
    ids = {before[n][0] for n in names} | {img.id, new.id}
    evs = [e for e in engine_events.events()
           if e.get("id") in ids or img.name in (e.get("id") or "") or
           img.name in str(e.get("Actor", {}).get("Attributes", {}).get("name", ""))]
    changing = [e for e in evs if not (e.get("Action") or "").startswith(
        ("exec_", "health_status"))]
    assert changing == [], "engine events during check: %r" % changing
    # ... and the registry served no blob, one manifest request for the reference
    assert plain_registry.count("GET", BLOBS, since=mark) == 0
    assert plain_registry.count(None, r"^/v2/%s/manifests/" % re.escape(img.repo),
                                since=mark) == 1


def test_thirty_containers_five_images_five_manifest_requests(refit, plain_registry,
                                                              shared_images, containers,
                                                              scoped, scope):
    """Half of them running, half created and never started (include_stopped
    selects those too; creating is much cheaper than starting)."""
    imgs = shared_images
    assert len(imgs) == 5
    names = containers.run_many([{"image": imgs[i % 5], "labels": scoped(), "hint": "many",
                                  "extra": ["--network", "none"]}
                                 for i in range(15)], workers=6)
    names += [containers.create(imgs[i % 5], labels=scoped(), hint="many",
                                extra=["--network", "none"]) for i in range(15, 30)]
    by_name = {n: imgs[i % 5] for i, n in enumerate(names)}
    mark = plain_registry.mark()
    res = refit.check_json(scope, config="include_stopped: true\n")
    assert res.rc == 0, res.describe()
    assert res.names == set(names), res.describe()
    assert len(res.list) == 30, "each container exactly once\n" + res.describe()
    for n, img in by_name.items():
        c = res[n]
        assert c.get("status") == "up-to-date", res.describe()
        assert digest_only(c.get("latest_digest")) == img.digest
        assert digest_only(c.get("current_digest")) == img.digest
    total = plain_registry.count({"HEAD", "GET"}, MANIFESTS, since=mark)
    per_repo = [plain_registry.count({"HEAD", "GET"},
                                     r"^/v2/%s/manifests/" % re.escape(i.repo), since=mark)
                for i in imgs]
    assert (total, per_repo) == (5, [1] * 5), \
        "one manifest request per distinct reference; access log:\n%s" % "\n".join(
            e["line"] for e in plain_registry.access_entries(mark))
    assert plain_registry.count("GET", BLOBS, since=mark) == 0


def test_mixed_updates_in_one_pass(refit, plain_registry, image_factory, containers, scoped,
                                   scope):
    a, b = image_factory.make_many([{"registry": plain_registry}, {"registry": plain_registry}])
    na = containers.run(a, labels=scoped())
    nb = containers.run(b, labels=scoped())
    new_b = image_factory.publish_new_version(b)
    res = refit.check_json(scope)
    assert res.rc == 0, res.describe()
    assert res.statuses() == {na: "up-to-date", nb: "update-available"}, res.describe()
    assert digest_only(res[nb].get("latest_digest")) == new_b.digest
    assert digest_only(res[na].get("latest_digest")) == a.digest


def test_pinned_by_digest(refit, plain_registry, image_factory, containers, scoped, scope):
    img = image_factory.make(plain_registry)
    pinned = containers.run(img.pinned_ref, labels=scoped())
    tagged = containers.run(img, labels=scoped())
    image_factory.publish_new_version(img)
    res = refit.check_json(scope)
    assert res.rc == 0, res.describe()
    assert res.statuses() == {pinned: "pinned", tagged: "update-available"}, res.describe()
    assert res[pinned].get("image") == img.pinned_ref
    assert digest_only(res[pinned].get("current_digest")) == img.digest


def test_monitor_only_labels(refit, plain_registry, image_factory, containers, scoped, scope):
    img = image_factory.make(plain_registry)
    mo_refit = containers.run(img, labels=scoped({"refit.monitor-only": "true"}))
    mo_wt = containers.run(img, labels=scoped(
        {"com.centurylinklabs.watchtower.monitor-only": "true"}))
    # refit's label wins over Watchtower's
    not_mo = containers.run(img, labels=scoped(
        {"refit.monitor-only": "false", "com.centurylinklabs.watchtower.monitor-only": "true"}))
    plain = containers.run(img, labels=scoped())
    new = image_factory.publish_new_version(img)
    res = refit.check_json(scope)
    assert res.rc == 0, res.describe()
    assert res.statuses() == {mo_refit: "monitor-only", mo_wt: "monitor-only",
                              not_mo: "update-available", plain: "update-available"}, \
        res.describe()
    # monitor-only still reports what the registry has
    for n in (mo_refit, mo_wt):
        assert digest_only(res[n].get("latest_digest")) == new.digest, res.describe()
        assert digest_only(res[n].get("current_digest")) == img.digest, res.describe()


def test_monitor_only_config(refit, plain_registry, image_factory, containers, scoped, scope):
    img = image_factory.make(plain_registry)
    name = containers.run(img, labels=scoped())
    image_factory.publish_new_version(img)
    res = refit.check_json(scope, config="monitor_only: true\n")
    assert res.rc == 0, res.describe()
    assert res.statuses() == {name: "monitor-only"}, res.describe()
    res = refit.check_json(scope, env={"WATCHTOWER_MONITOR_ONLY": "true"})
    assert res.rc == 0, res.describe()
    assert res.statuses() == {name: "monitor-only"}, res.describe()


def test_include_stopped(refit, shared_images, containers, scoped, scope):
    img = shared_images[2]
    running = containers.run(img, labels=scoped())
    created = containers.create(img, labels=scoped())
    res = refit.check_json(scope)
    assert res.rc == 0 and res.names == {running}, res.describe()
    res = refit.check_json(scope, config="include_stopped: true\n")
    assert res.rc == 0, res.describe()
    assert res.statuses() == {running: "up-to-date", created: "up-to-date"}, res.describe()
    res = refit.check_json(scope, env={"WATCHTOWER_INCLUDE_STOPPED": "true"})
    assert res.rc == 0, res.describe()
    assert res.statuses() == {running: "up-to-date", created: "up-to-date"}, res.describe()


def test_names_narrow_the_set(refit, shared_images, containers, scoped, scope):
    img = shared_images[1]
    a, b, c = (containers.run(img, labels=scoped()) for _ in range(3))
    res = refit.check_json(scope, names=[a, c])
    assert res.rc == 0, res.describe()
    assert res.names == {a, c}, res.describe()


def test_check_human_output(refit, plain_registry, image_factory, containers, scoped, scope):
    img = image_factory.make(plain_registry)
    name = containers.run(img, labels=scoped())
    image_factory.publish_new_version(img)
    res = refit.run("check", "--scope", scope)
    assert res.rc == 0, res.describe()
    assert name in res.stdout, res.describe()
    assert "update" in res.stdout.lower(), res.describe()
