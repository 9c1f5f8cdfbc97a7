"""`refit update`: successful swaps (SPEC.md: Swapping, History).

Every setting and every kind of volume survives a recreate; each strategy's
success path; blue-green keeps serving under load; blue-green with fixed
host ports falls back to recreate; a container moved by `alias` can be
updated again; the containers that depend on a swapped one stop for its
swap and run again after it."""

import calendar
import re
import time

import pytest

from harness import EngineEvents, HarnessError, docker, free_port, wait_for
from swaptools import (GOOD, HTTPD_CMD, LOOP_CMD, aliases, container_ip, exec_out, hist_for,
                       history, http_get, inspect, leftovers, load_counts, load_loop, load_stop,
                       nc_get, pending_ops, read_data, same_digest, serving, update, write_data)
from swaptools import common_pairs, swap_images, swapenv  # noqa: F401 (fixtures)

STRATEGIES = ["recreate", "blue-green", "alias"]


def mounts_view(ins):
    """Mounts as comparable tuples (volume by name, bind by source)."""
    out = set()
    for m in ins.get("Mounts") or []:
        out.add((m.get("Type"), m.get("Name") or "", m.get("Source") if m.get("Type") == "bind"
                 else "", m.get("Destination").rstrip("/"), m.get("RW")))
    return out


def endpoint_view(ins, net, ids):
    ep = ins["NetworkSettings"]["Networks"][net]
    return {"IPAMConfig": {k: v for k, v in (ep.get("IPAMConfig") or {}).items() if v},
            "IPAddress": ep.get("IPAddress"),
            "Aliases": aliases(ins, net, drop_ids=ids)}


def test_every_setting_and_volume_survive(refit, scope, swapenv, common_pairs, swap_images):
    """Env, labels, two user networks with aliases and static IPs, a port on
    127.0.0.1, restart policy, memory limit, named + anonymous + image
    volumes and a bind mount: all kept, field by field, with their data."""
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    net1, p1 = swapenv.network("a")
    net2, p2 = swapenv.network("b")
    vol = swapenv.volume("named")
    bind = swapenv.bind_dir()
    port = free_port()
    ip1, ip2 = p1 + ".10", p2 + ".20"
    labels = swapenv.managed({"app.tier": "backend", "app.note": "a b=c, d"})
    name = swapenv.run(v1, labels, hint="full", extra=[
        "--env", "APP_MODE=prod", "--env", "GREETING=hello world",
        "--hostname", "custom-host",
        "--network", net1, "--ip", ip1, "--network-alias", "svc-a", "--network-alias", "svc-a2",
        "-p", "127.0.0.1:%d:8080" % port,
        "--restart", "unless-stopped",
        "--memory", "64m",
        "-v", "%s:/named" % vol, "-v", "/anon", "-v", "%s:/bind" % bind,
    ])
    docker("network", "connect", "--alias", "svc-b", "--ip", ip2, net2, name)
    paths = ["/named", "/anon", "/bind", "/imgvol"]
    data = write_data(name, paths)
    old = inspect(name)
    assert http_get("http://127.0.0.1:%d/version" % port)[1].strip() == "good v1"

    res = update(refit, scope)
    assert res.rc == 0, res.describe()
    e = res[name]
    assert e.get("status") == "updated", res.describe()
    assert e.get("strategy") == "recreate", res.describe()
    assert same_digest(e.get("current_digest"), v1.digest), res.describe()
    assert same_digest(e.get("latest_digest"), v2.digest), res.describe()
    assert not e.get("error"), res.describe()

    new = inspect(name)
    assert new is not None, "no container named %s after the update" % name
    assert new["Id"] != old["Id"]
    assert e.get("id") and new["Id"].startswith(e["id"]), res.describe()
    assert inspect(old["Id"]) is None, "the old container is still there"
    assert leftovers(name) == []
    # the new digest, while Config.Image stays the tag reference
    assert new["Config"]["Image"] == v1.ref
    assert new["Image"] == v2.id
    assert "%s@%s" % (v1.name, v2.digest) in docker("inspect", "--format",
                                                    "{{json .RepoDigests}}", new["Image"])
    # Config, field by field
    assert sorted(new["Config"]["Env"]) == sorted(old["Config"]["Env"])
    assert "APP_MODE=prod" in new["Config"]["Env"] and "GREETING=hello world" in new["Config"]["Env"]
    # the same labels, plus the operation that made the replacement
    labels = dict(new["Config"]["Labels"])
    assert re.fullmatch(r"[0-9a-f]{16}", labels.pop("refit.operation", "")), new["Config"]["Labels"]
    assert labels == old["Config"]["Labels"]
    assert new["Config"]["Hostname"] == "custom-host"
    assert new["Config"]["Cmd"] == HTTPD_CMD
    assert new["Config"].get("Healthcheck") == old["Config"].get("Healthcheck")
    assert new["Config"].get("ExposedPorts") == old["Config"].get("ExposedPorts")
    # HostConfig
    for key in ("PortBindings", "RestartPolicy", "Memory", "MemorySwap", "NetworkMode", "Binds"):
        assert new["HostConfig"].get(key) == old["HostConfig"].get(key), key
    assert new["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert new["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert new["HostConfig"]["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1",
                                                               "HostPort": str(port)}]}
    # networks: the same ones, static addresses and aliases
    assert sorted(new["NetworkSettings"]["Networks"]) == sorted(old["NetworkSettings"]["Networks"])
    ids = (old["Id"], new["Id"])
    for net in (net1, net2):
        assert endpoint_view(new, net, ids) == endpoint_view(old, net, ids), net
    assert new["NetworkSettings"]["Networks"][net1]["IPAddress"] == ip1
    assert new["NetworkSettings"]["Networks"][net2]["IPAddress"] == ip2
    assert set(aliases(new, net1, ids)) >= {"svc-a", "svc-a2"}
    assert "svc-b" in aliases(new, net2, ids)
    # mounts: the same named volume, the same anonymous volumes, the same bind
    assert mounts_view(new) == mounts_view(old)
    kinds = sorted((m["Type"], m["Destination"]) for m in old["Mounts"])
    assert kinds == [("bind", "/bind"), ("volume", "/anon"), ("volume", "/imgvol"),
                     ("volume", "/named")], kinds
    # running, serving the new version on the published port, data read back
    assert new["State"]["Running"] and new["RestartCount"] == 0
    assert http_get("http://127.0.0.1:%d/version" % port)[1].strip() == "good v2"
    assert read_data(name, paths) == data
    assert pending_ops(refit) == []
    recs = hist_for(history(refit), name)
    assert [r.get("outcome") for r in recs] == ["updated"], recs
    r = recs[0]
    assert r.get("kind") == "update" and r.get("strategy") == "recreate"
    assert r.get("old_id") == old["Id"] and r.get("new_id") == new["Id"], r
    assert same_digest(r.get("old_digest"), v1.digest) and same_digest(r.get("new_digest"), v2.digest)
    assert r.get("image") == v1.ref
    res.assert_clean_output()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_success(strategy, refit, scope, swapenv, common_pairs, swap_images):
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    vol = swapenv.volume()
    name = swapenv.name("web")
    target = name + "-v2" if strategy == "alias" else name
    extra = {"refit.strategy": strategy}
    if strategy == "alias":
        extra["refit.rename-to"] = target
    swapenv.run(v1, swapenv.managed(extra), name=name, extra=[
        "--network", net, "--network-alias", "websvc", "-v", "%s:/data" % vol, "-v", "/anon"])
    client = swapenv.run(v1, swapenv.labels(), hint="client", extra=["--network", net],
                         cmd=LOOP_CMD)
    data = write_data(name, ["/data", "/anon"])
    old = inspect(name)
    assert serving(name) == "good v1"
    assert nc_get(client, name)[1] == "good v1"

    t0 = time.monotonic()
    res = update(refit, scope)
    took = time.monotonic() - t0
    assert res.rc == 0, res.describe()
    e = res[name]
    assert e.get("status") == "updated", res.describe()
    assert e.get("strategy") == strategy, res.describe()

    new = inspect(target)
    assert new is not None and new["Id"] != old["Id"], res.describe()
    assert new["State"]["Running"] and new["Image"] == v2.id
    assert new["Name"] == "/" + target
    assert inspect(old["Id"]) is None, "old container still there"
    if strategy == "alias":
        assert inspect(name) is None, "alias: nothing may be left under the old name"
    assert leftovers(name) == [] and leftovers(target) == []
    assert serving(target) == "good v2"
    assert read_data(target, ["/data", "/anon"]) == data
    ids = (old["Id"], new["Id"])
    # the service alias, and (alias) the old name, resolve to the new one
    assert "websvc" in aliases(new, net, ids)
    assert nc_get(client, "websvc")[1] == "good v2"
    assert nc_get(client, name)[1] == "good v2"
    if strategy == "alias":
        assert name in aliases(new, net, ids)
    # only one container of this scope remains: the new one
    assert set(swapenv.mine()) == {new["Id"], inspect(client)["Id"]}
    assert pending_ops(refit) == []
    recs = hist_for(history(refit), name)
    assert [(r.get("kind"), r.get("outcome"), r.get("strategy")) for r in recs] == \
        [("update", "updated", strategy)], recs
    assert recs[0].get("new_id") == new["Id"]
    if strategy == "alias":
        assert recs[0].get("new_name") == target
        # the container's history under the name it has now
        assert [r.get("id") for r in history(refit, target)] == [recs[0].get("id")], \
            "refit history %s does not show the migration that named it" % target
    res.assert_clean_output()
    print("%s swap took %.1fs" % (strategy, took))


def test_blue_green_under_load(refit, scope, swapenv, common_pairs, swap_images):
    """A client on the same network asks the service alias in a loop (nc
    resolves it anew for each request) across the swap. No request fails
    while the replacement starts, passes its gate and joins the names; at
    cutover at most the one request whose address was resolved in the
    milliseconds before the old container left the network may be lost
    (Docker drops the DNS record and the interface in one call; see
    docs/swapping.md). The gate is 3 s of uptime, so that a failure can be
    placed on refit's timeline."""
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    name = swapenv.run(v1, swapenv.managed({"refit.strategy": "blue-green",
                                            "refit.min-uptime": "3"}),
                       hint="lb", extra=["--network", net, "--network-alias", "loadsvc"])
    client = swapenv.run(v1, swapenv.labels(), hint="loadclient", extra=["--network", net],
                         cmd=["/bin/sh", "-c", load_loop("loadsvc")])

    def counts():
        return load_counts(client)[:3]

    def wait_counts(i, n, what):
        # the client forks a handful of processes per request: on a loaded
        # machine ten answers can take a while, so wait long and say why
        before = counts()
        try:
            wait_for(lambda: counts()[i] >= before[i] + n, 120, interval=0.3, what=what)
        except HarnessError as e:
            raise AssertionError("%s\ncounts (v1, v2, failed) before %s, now %s\nclient failures:\n%s\n"
                                 "client's answer now: %s\nclient log:\n%s\nservice: %s" % (
                                     e, before, counts(), exec_out(client, "cat /tmp/fails", check=False),
                                     exec_out(client, "nslookup loadsvc 127.0.0.11 2>&1; printf 'GET /version "
                                              "HTTP/1.0\\r\\n\\r\\n' | nc -w 3 loadsvc 8080 2>&1",
                                              check=False),
                                     docker("logs", "--tail", "20", client, check=False),
                                     inspect(name)["State"])) from e
        return before

    wait_counts(0, 10, "the client's first requests")

    old_ip = container_ip(inspect(name))
    res = update(refit, scope, env={"REFIT_LOG_LEVEL": "debug"})
    assert res.rc == 0, res.describe()
    assert res[name].get("status") == "updated", res.describe()
    assert res[name].get("strategy") == "blue-green", res.describe()
    new_ip = container_ip(inspect(name))
    wait_counts(1, 10, "requests after the swap")
    a, b, f, _ = load_stop(client)
    print("blue-green under load: %d requests (%d to v1, %d to v2), %d failed"
          % (a + b + f, a, b, f))
    steps = [x for x in res.res.stderr.splitlines() if name in x]
    cutover = [x.split()[0] for x in steps if x.rstrip().endswith(": cutover")]
    assert len(cutover) == 1, "\n".join(steps)
    cut_at = calendar.timegm(time.strptime(cutover[0], "%Y-%m-%dT%H:%M:%SZ"))
    starts = []
    if f:
        # when, on refit's clock: uptime (the client's) to wall time
        with open("/proc/uptime") as up:
            offset = time.time() - float(up.read().split()[0])
        lines = []
        for line in exec_out(client, "cat /tmp/fails", check=False).splitlines():
            span, _, rest = line.partition(" ")
            t0, _, t1 = span.partition("-")
            starts.append(float(t0) + offset)
            lines.append("%s .. %s %s" % (
                time.strftime("%H:%M:%S", time.gmtime(float(t0) + offset)) +
                ".%02d" % (int(float(t0) * 100) % 100),
                time.strftime("%H:%M:%S", time.gmtime(float(t1) + offset)), rest))
        # the log has whole seconds: a loss before the cutover second is the replacement's fault
        assert f == 1 and len(starts) == 1 and starts[0] >= cut_at, (
            "%d of %d requests failed across the swap (old %s, new %s):\n%s\n"
            "refit's timeline:\n%s" % (f, a + b + f, old_ip, new_ip, "\n".join(lines),
                                        "\n".join(steps)))
    assert a >= 10 and b >= 10
    assert serving(name) == "good v2"
    res.assert_clean_output()


def test_blue_green_with_fixed_port_falls_back_to_recreate(refit, scope, swapenv, common_pairs,
                                                          swap_images):
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    port = free_port()
    name = swapenv.run(v1, swapenv.managed({"refit.strategy": "blue-green"}), hint="bgport",
                       extra=["-p", "127.0.0.1:%d:8080" % port])
    res = update(refit, scope)
    assert res.rc == 0, res.describe()
    assert res[name].get("status") == "updated", res.describe()
    assert res[name].get("strategy") == "recreate", res.describe()
    assert http_get("http://127.0.0.1:%d/version" % port)[1].strip() == "good v2"
    assert leftovers(name) == []
    recs = hist_for(history(refit), name)
    assert [(r.get("outcome"), r.get("strategy")) for r in recs] == [("updated", "recreate")]


def test_blue_green_keeps_static_ip(refit, scope, swapenv, common_pairs, swap_images):
    """Blue-green on a network where the container has a static address:
    the old and the new one cannot hold it at once, yet the update must
    succeed (the spec keeps static addresses) and the address be kept."""
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    net, prefix = swapenv.network()
    ip = prefix + ".42"
    name = swapenv.run(v1, swapenv.managed({"refit.strategy": "blue-green"}), hint="bgip",
                       extra=["--network", net, "--ip", ip])
    old = inspect(name)
    res = update(refit, scope)
    new = inspect(name)
    assert new is not None and new["State"]["Running"], res.describe()
    assert leftovers(name) == []
    assert res.rc == 0 and res[name].get("status") == "updated", res.describe()
    assert new["Id"] != old["Id"] and new["Image"] == v2.id
    assert new["NetworkSettings"]["Networks"][net]["IPAddress"] == ip
    assert new["NetworkSettings"]["Networks"][net]["IPAMConfig"]["IPv4Address"] == ip


def test_alias_container_updates_again(refit, scope, swapenv, swap_images, common_pairs):
    """After an alias migration the container lives under its new name (and
    still carries refit.rename-to): the next new image updates it too."""
    v1, v2 = common_pairs["again"]
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    name = swapenv.name("mig")
    target = name + "-new"
    swapenv.run(v1, swapenv.managed({"refit.strategy": "alias", "refit.rename-to": target}),
                name=name, extra=["--network", net])
    res = update(refit, scope)
    assert res.rc == 0 and res[name].get("status") == "updated", res.describe()
    assert serving(target) == "again v2"
    v3 = swap_images.publish(v2, version="again v3", **GOOD)
    res = update(refit, scope)
    assert res.rc == 0, res.describe()
    assert res[target].get("status") == "updated", res.describe()
    assert inspect(target) is not None and serving(target) == "again v3"
    assert inspect(target)["Image"] == v3.id
    assert leftovers(target) == [] and leftovers(name) == []



def _event_times(ev, name, action):
    return [e["timeNano"] for e in ev.events()
            if e.get("Action") == action and e.get("Actor", {}).get("Attributes", {}).get("name") == name]


def test_dependents_stop_for_the_swap_and_run_again(refit, scope, swapenv, common_pairs, swap_images,
                                                     plain_registry):
    """An up-to-date container that names a stale one in refit.depends-on is
    stopped before the stale one stops and started after its replacement
    starts (the engine's events say the order), and runs again afterwards,
    the same container; a container linked to the stale one (--link, which
    the pass reads from the engine's container list) is stopped before it
    too."""
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    steady = swap_images.make(plain_registry, repo=swap_images.unique_repo("steady"), version="steady v1",
                              **GOOD)
    db = swapenv.run(v1, swapenv.managed(), hint="db")
    worker = swapenv.run(steady, swapenv.managed({"refit.depends-on": db}), hint="worker")
    web = swapenv.run(steady, swapenv.managed(), hint="web", extra=["--link", "%s:database" % db])
    assert inspect(web)["HostConfig"]["Links"] == ["/%s:/%s/database" % (db, web)]
    old_worker = inspect(worker)["Id"]

    with EngineEvents(kinds=("container",)) as ev:
        res = update(refit, scope)
    assert res[db].get("status") == "updated", res.describe()
    assert res[worker].get("status") == "up-to-date", res.describe()
    db_die, db_start = _event_times(ev, db, "die"), _event_times(ev, db, "start")
    assert len(db_die) == 1 and len(db_start) == 1, res.describe()
    die, start = _event_times(ev, worker, "die"), _event_times(ev, worker, "start")
    assert len(die) == 1 and len(start) == 1, res.describe()
    assert die[0] < db_die[0], "%s was not stopped before %s" % (worker, db)
    assert start[0] > db_start[0], "%s was not started after the new %s" % (worker, db)
    assert inspect(worker)["Id"] == old_worker and inspect(worker)["State"]["Running"]
    assert inspect(db)["Image"] == v2.id
    # the linked one: stopped first, as a dependent (its link follows the
    # old container, so the engine refuses to start it again: docs/architecture.md)
    die = _event_times(ev, web, "die")
    assert len(die) == 1 and die[0] < db_die[0], res.describe()
