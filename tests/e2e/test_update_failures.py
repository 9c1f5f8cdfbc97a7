"""`refit update` when the new version is bad (SPEC.md: Swapping, Health
gate): a HEALTHCHECK that always fails, a command that exits at once, an
ENTRYPOINT the engine cannot start.  For each strategy: exit 1, status
rolled-back, and the old version serving again - the same container (ID),
under its name, running, with its networks, aliases, port and data, no copy
left, the journal's pending dir empty and the history saying rolled-back.
The volume the engine made for the failed replacement alone (the unhealthy
image's extra VOLUME) is removed with it; the old one's volumes are kept.

Each kind of bad image is one test; its three strategies run at once (one
container, scope and state dir each) and every strategy that went wrong is
reported."""

import pytest

from harness import EngineEvents, docker, free_port
from swaptools import (LOOP_CMD, aliases, case_refit, hist_for, history, http_get, inspect,
                       leftovers, pending_ops, read_data, run_cases, same_digest,
                       scope_containers, serving, update, write_data)
from swaptools import common_pairs, swap_images, swapenv  # noqa: F401 (fixtures)

STRATEGIES = ["recreate", "blue-green", "alias"]
# The new image of each pair (swaptools.COMMON_PAIRS): "unhealthy" has a
# HEALTHCHECK that always fails; "exits" a command that exits at once (code
# 3); "no-entrypoint" an ENTRYPOINT that does not exist, so the engine cannot
# start it.  Words expected in the error:
KINDS = {
    "unhealthy": ("unhealthy",),
    "exits": ("exit",),
    "no-entrypoint": ("start",),
}


def run_service(swapenv, image, strategy, hint, scope, port=None):
    """A managed httpd container on a user network (alias websvc) with a
    named and an anonymous volume holding data; recreate also publishes a
    port on 127.0.0.1.  Returns (name, rename target, network)."""
    net, _ = swapenv.network()
    vol = swapenv.volume()
    name = swapenv.name(hint)
    target = name + "-v2" if strategy == "alias" else name
    labels = swapenv.labels({"refit.enable": "true", "refit.scope": scope,
                             "refit.strategy": strategy})
    if strategy == "alias":
        labels["refit.rename-to"] = target
    extra = ["--network", net, "--network-alias", "websvc",
             "-v", "%s:/data" % vol, "-v", "/anon"]
    if port:
        extra += ["-p", "127.0.0.1:%d:8080" % port]
    swapenv.run(image, labels, name=name, extra=extra)
    return name, target, net


def volumes_mounted_into(container_id, events):
    """Names of the volumes the engine mounted into CONTAINER_ID, from its
    volume EVENTS."""
    return {ev["Actor"]["ID"] for ev in events
            if ev.get("Action") == "mount"
            and ev["Actor"].get("Attributes", {}).get("container") == container_id}


def bad_update_case(r, scope, strategy, kind, v1, v2, name, target, net, port):
    assert serving(name) == "%s v1" % kind
    data = write_data(name, ["/data", "/anon", "/imgvol"])
    old = inspect(name)

    with EngineEvents(kinds=("volume",)) as volume_events:
        res = update(r, scope)
    assert res.rc == 1, res.describe()
    e = res[name]
    assert e.get("status") == "rolled-back", res.describe()
    assert e.get("strategy") == strategy, res.describe()
    assert same_digest(e.get("current_digest"), v1.digest), res.describe()
    assert same_digest(e.get("latest_digest"), v2.digest), res.describe()
    err = (e.get("error") or "").lower()
    assert any(w in err for w in KINDS[kind]), "error should say %r\n%s" % (
        KINDS[kind], res.describe())

    cur = inspect(name)
    assert cur is not None, "nothing under %s after the rollback\n%s" % (name, res.describe())
    assert cur["Id"] == old["Id"], "not the old container under the name"
    assert cur["State"]["Running"], cur["State"]
    assert cur["Image"] == v1.id
    if strategy != "recreate":
        # blue-green and alias never stop the old one
        assert cur["State"]["StartedAt"] == old["State"]["StartedAt"], \
            "%s stopped the old container" % strategy
    assert serving(name) == "%s v1" % kind
    if port:
        assert http_get("http://127.0.0.1:%d/version" % port)[1].strip() == "%s v1" % kind
        assert cur["HostConfig"]["PortBindings"] == old["HostConfig"]["PortBindings"]
    assert sorted(cur["NetworkSettings"]["Networks"]) == sorted(old["NetworkSettings"]["Networks"])
    assert aliases(cur, net) == aliases(old, net) and "websvc" in aliases(cur, net)
    assert read_data(name, ["/data", "/anon", "/imgvol"]) == data
    assert leftovers(name) == []
    if strategy == "alias":
        assert inspect(target) is None, "the failed replacement %s is still there" % target
    assert scope_containers(scope) == [old["Id"]], "copies left: %r" % scope_containers(scope)
    assert pending_ops(r) == []
    recs = hist_for(history(r), name)
    assert [(x.get("kind"), x.get("outcome"), x.get("strategy")) for x in recs] == \
        [("update", "rolled-back", strategy)], recs
    assert recs[0].get("old_id") == old["Id"] and recs[0].get("error"), recs
    if kind == "unhealthy":
        new_id = recs[0].get("new_id")
        assert new_id and new_id != old["Id"], recs
        kept = {m["Name"] for m in cur["Mounts"] if m["Type"] == "volume"}
        fresh = volumes_mounted_into(new_id, volume_events.events()) - kept
        assert fresh, "no volume of the replacement's own seen (its VOLUME /fresh)"
        left = [v for v in fresh if docker("volume", "inspect", v, check=False).strip() != "[]"]
        assert left == [], "the failed replacement's own volumes were left: %r" % left
    res.assert_clean_output()
    return "rolled back: %s" % e.get("error")


@pytest.mark.parametrize("kind", list(KINDS))
def test_bad_new_version_is_rolled_back(kind, refit_bin, tmp_path, scope, swapenv,
                                        common_pairs, swap_images):
    v1, v2 = common_pairs[kind]
    swap_images.back_to(v1)
    cases = {}
    for i, strategy in enumerate(STRATEGIES):
        cs = "%s-%d" % (scope, i)
        port = free_port() if strategy == "recreate" else None
        name, target, net = run_service(swapenv, v1, strategy, "%s-%s" % (kind, strategy[:2]),
                                        cs, port=port)
        r = case_refit(refit_bin, tmp_path, strategy)
        cases["%s/%s" % (kind, strategy)] = (
            lambda r=r, cs=cs, strategy=strategy, name=name, target=target, net=net, port=port:
            bad_update_case(r, cs, strategy, kind, v1, v2, name, target, net, port))
    run_cases(cases)


def test_alias_target_name_taken(refit, scope, swapenv, common_pairs, swap_images):
    """The engine refuses to create the replacement (its new name belongs to
    another container): the old one keeps serving, and the other container
    - which refit did not create - is left alone."""
    v1, _ = common_pairs["unhealthy"]
    swap_images.back_to(v1)
    name, target, net = run_service(swapenv, v1, "alias", "taken", scope)
    bystander = swapenv.run(v1, swapenv.labels(), name=target, cmd=LOOP_CMD)
    by_id = inspect(bystander)["Id"]
    old = inspect(name)
    assert serving(name) == "unhealthy v1"

    res = update(refit, scope)
    assert res.rc == 1, res.describe()
    assert res[name].get("status") == "rolled-back", res.describe()
    cur = inspect(name)
    assert cur is not None and cur["Id"] == old["Id"] and cur["State"]["Running"]
    assert serving(name) == "unhealthy v1"
    by = inspect(target)
    assert by is not None and by["Id"] == by_id, \
        "refit removed %s, a container it did not create\n%s" % (target, res.describe())
    assert leftovers(name) == []
    assert pending_ops(refit) == []
