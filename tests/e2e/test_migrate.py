"""`refit migrate FILE` and the API's migration_config (SPEC.md: Migrations):
each entry runs the alias strategy (new name, optional new image, settings,
env, networks and volumes carried, the old name kept as a network alias,
health gate, old container removed); a failure leaves the old container
running with its ID; preserve_data backs up every volume (tar + SHA-256 +
manifest) and `refit rollback --restore-data` puts it back; --dry-run and a
backup over backup_max_bytes change nothing; the seed's docker-compose
revamp (neurosync_s1 -> avatar_controller, autogen_agent -> agent_coordinator)
with a client that keeps calling the old names."""

import hashlib
import io
import json
import os
import tarfile
import uuid

import pytest

from daemontools import Daemon
from harness import RUN_LABEL, Engine, docker, wait_for
from swaptools import (GOOD, OWNER_LABEL, aliases, config_text, exec_out, history,
                       inspect, leftovers, nc_get, pending_ops, read_data, run_refit, write_data)
from swaptools import common_pairs, swap_images, swapenv  # noqa: F401 (fixtures)

COMMAND = "/api/v1/management/orchestrator/update/command"
PATHS = ["/data", "/anon", "/imgvol"]   # named, anonymous (-v /anon), the image's VOLUME


def migrate(refit, scope, path, *args, extra_config="", timeout=150):
    """refit migrate --json ...: (RunResult, parsed JSON or None)."""
    res = run_refit(refit, "migrate", "--json", "--scope", scope, *args, path,
                    config=config_text(refit, extra_config), timeout=timeout)
    data = None
    if res.rc in (0, 1) and res.stdout.strip():
        data = json.loads(res.stdout)
    return res, data


def write_plan(tmp_path, entries, name="migration.yml"):
    lines = ["migrations:"]
    for e in entries:
        first = True
        for k, v in e.items():
            v = ("true" if v else "false") if isinstance(v, bool) else v
            lines.append("%s%s: %s" % ("  - " if first else "    ", k, v))
            first = False
    path = os.path.join(str(tmp_path), name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def start_app(swapenv, image, hint, net, extra=()):
    """A managed httpd container with a named volume on /data, an anonymous
    one on /anon (and the image's /imgvol), env MIGRATE_ENV, on NET."""
    vol = swapenv.volume()
    name = swapenv.name(hint)
    swapenv.run(image, swapenv.managed(), name=name,
                extra=["--network", net, "-e", "MIGRATE_ENV=kept-%s" % hint,
                       "-v", "%s:/data" % vol, "-v", "/anon"] + list(extra))
    wait_for(lambda: (inspect(name) or {}).get("State", {}).get("Running"), 15,
             what="%s to run" % name)
    return name, vol


def peer(swapenv, image, net):
    """An unmanaged container on NET to call the others by name."""
    name = swapenv.name("peer-%s" % uuid.uuid4().hex[:4])
    swapenv.run(image, swapenv.labels(), name=name, extra=["--network", net])
    return name


def mounts_by_dest(ins):
    return {m["Destination"]: m for m in ins["Mounts"]}


def backups_dir(refit):
    return os.path.join(refit.state_dir, "backups")


def backup_entries(refit):
    d = backups_dir(refit)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_migration_carries_data_env_and_old_name(refit, scope, swapenv, common_pairs, swap_images,
                                                 tmp_path):
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    name, vol = start_app(swapenv, v1, "old", net)
    target = swapenv.name("new")
    client = peer(swapenv, v1, net)
    old = inspect(name)
    data = write_data(name, PATHS)
    assert nc_get(client, name)[1] == "good v1"

    plan = write_plan(tmp_path, [{"from": name, "to": target, "image": v2.ref}])
    res, out = migrate(refit, scope, plan)
    assert res.rc == 0, res.describe()
    [m] = out["migrations"]
    assert m["status"] == "migrated" and m["from"] == name and m["to"] == target, out

    assert inspect(name) is None, "the old container is still there"
    new = inspect(target)
    assert new and new["State"]["Running"] and new["Id"] == m["new_id"]
    assert new["Image"] == v2.id and new["Config"]["Image"] == v2.ref
    assert "MIGRATE_ENV=kept-old" in new["Config"]["Env"]
    # every volume carried: the same named and anonymous volumes, with their data
    om, nm = mounts_by_dest(old), mounts_by_dest(new)
    for p in PATHS:
        assert nm[p]["Name"] == om[p]["Name"], (p, om[p], nm[p])
    assert nm["/data"]["Name"] == vol
    assert read_data(target, PATHS) == data
    # the old name is an alias on the network: a peer still reaches it
    assert name in aliases(new, net)
    assert nc_get(client, name) == ("HTTP/1.1 200 OK", "good v2")
    assert nc_get(client, target)[1] == "good v2"
    assert leftovers(name) == [] and leftovers(target) == []
    assert sorted(swapenv.mine()) == sorted([new["Id"], inspect(client)["Id"]])
    assert pending_ops(refit) == []
    [rec] = history(refit)
    assert rec["kind"] == "migrate" and rec["outcome"] == "updated" and rec["strategy"] == "alias"
    assert rec["container"] == name and rec["new_name"] == target and rec["old_id"] == old["Id"]
    # a second run of the same file finds the work done
    res, out = migrate(refit, scope, plan)
    assert res.rc == 0 and out["migrations"][0]["status"] == "migrated", res.describe()
    assert inspect(target)["Id"] == new["Id"]


def test_failed_migration_leaves_the_old_container(refit, scope, swapenv, common_pairs,
                                                   swap_images, tmp_path):
    v1, v2 = common_pairs["unhealthy"]
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    name, _ = start_app(swapenv, v1, "fail", net)
    target = swapenv.name("fail-new")
    old = inspect(name)
    data = write_data(name, PATHS)

    plan = write_plan(tmp_path, [{"from": name, "to": target, "image": v2.ref,
                                  "rollback_on_failure": True}])
    res, out = migrate(refit, scope, plan)
    assert res.rc == 1, res.describe()
    [m] = out["migrations"]
    assert m["status"] == "rolled-back" and "unhealthy" in m["error"], out
    cur = inspect(name)
    assert cur["Id"] == old["Id"] and cur["State"]["Running"]
    assert cur["Image"] == v1.id and cur["Name"] == "/" + name
    assert inspect(target) is None
    assert read_data(name, PATHS) == data
    assert swapenv.mine() == [old["Id"]], "leftovers"
    assert leftovers(name) == [] and leftovers(target) == [] and pending_ops(refit) == []
    assert backup_entries(refit) == []
    [rec] = history(refit)
    assert rec["kind"] == "migrate" and rec["outcome"] == "rolled-back"


def test_preserve_data_backup_and_restore(refit, scope, swapenv, common_pairs, swap_images,
                                          tmp_path):
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    name, vol = start_app(swapenv, v1, "bk", net)
    target = swapenv.name("bk-new")
    old = inspect(name)
    data = write_data(name, PATHS)

    plan = write_plan(tmp_path, [{"from": name, "to": target, "image": v2.ref,
                                  "preserve_data": True}])
    res, out = migrate(refit, scope, plan)
    assert res.rc == 0, res.describe()
    [m] = out["migrations"]
    assert m["status"] == "migrated", out
    bdir = m["backup"]
    assert os.path.dirname(bdir) == backups_dir(refit)
    with open(os.path.join(bdir, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["container"] == name and manifest["container_id"] == old["Id"]
    vols = {v["mount_point"]: v for v in manifest["volumes"]}
    assert set(vols) == set(PATHS), manifest
    om = mounts_by_dest(old)
    for p, v in vols.items():
        assert v["volume"] == om[p]["Name"]
        assert v["anonymous"] == (p != "/data")
        with open(os.path.join(bdir, v["file"]), "rb") as f:
            blob = f.read()
        assert len(blob) == v["size"] and hashlib.sha256(blob).hexdigest() == v["sha256"], v
        with tarfile.open(fileobj=io.BytesIO(blob)) as t:
            member = t.extractfile("%s/data" % p.lstrip("/"))
            assert member.read().decode().strip() == data[p]
    assert os.stat(bdir).st_mode & 0o777 == 0o700

    # written after the migration: replaced by the restore
    later = write_data(target, PATHS)
    assert later != data
    exec_out(target, "echo late > /data/extra")
    res = run_refit(refit, "rollback", "--json", "--scope", scope, "--restore-data", name,
                    config=config_text(refit))
    assert res.rc == 0, res.describe()
    cur = inspect(name)
    assert cur and cur["State"]["Running"] and cur["Image"] == v1.id
    assert inspect(target) is None
    assert mounts_by_dest(cur)["/data"]["Name"] == vol
    assert read_data(name, PATHS) == data, "the pre-migration data is not back"
    assert exec_out(name, "ls /data").split() == ["data"]
    assert pending_ops(refit) == []
    # a tar that no longer matches its manifest is refused before anything changes
    res, out = migrate(refit, scope, plan)
    assert res.rc == 0, res.describe()
    moved = inspect(target)
    bdir2 = out["migrations"][0]["backup"]
    tarname = json.load(open(os.path.join(bdir2, "manifest.json")))["volumes"][0]["file"]
    with open(os.path.join(bdir2, tarname), "ab") as f:
        f.write(b"tampered")
    res = run_refit(refit, "rollback", "--json", "--scope", scope, "--restore-data", target,
                    config=config_text(refit))
    assert res.rc == 1 and "does not match its manifest" in res.stdout, res.describe()
    assert inspect(target)["Id"] == moved["Id"] and inspect(name) is None


def test_dry_run_changes_nothing(refit, scope, swapenv, common_pairs, swap_images, tmp_path):
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    name, _ = start_app(swapenv, v1, "dry", net)
    target = swapenv.name("dry-new")
    old = inspect(name)
    had_v2 = docker("image", "inspect", v2.id, check=False).strip() not in ("", "[]")
    plan = write_plan(tmp_path, [{"from": name, "to": target, "image": v2.ref,
                                  "preserve_data": True}])
    res, out = migrate(refit, scope, plan, "--dry-run")
    assert res.rc == 0, res.describe()
    [m] = out["migrations"]
    assert m["status"] == "planned" and m["image"] == v2.ref and m["volumes"] == 3, out
    text = run_refit(refit, "migrate", "--dry-run", "--scope", scope, plan,
                     config=config_text(refit))
    assert text.rc == 0 and name in text.stdout and "nothing was changed" in text.stdout
    cur = inspect(name)
    assert cur["Id"] == old["Id"] and cur["State"]["StartedAt"] == old["State"]["StartedAt"]
    assert inspect(target) is None and cur["Image"] == v1.id
    assert swapenv.mine() == [old["Id"]]
    assert backup_entries(refit) == [] and pending_ops(refit) == [] and history(refit) == []
    # v2 was not pulled
    assert (docker("image", "inspect", v2.id, check=False).strip() not in ("", "[]")) == had_v2


def test_backup_over_the_limit_stops_the_migration(refit, scope, swapenv, common_pairs,
                                                    swap_images, tmp_path):
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    name, _ = start_app(swapenv, v1, "big", net)
    target = swapenv.name("big-new")
    exec_out(name, "dd if=/dev/zero of=/data/big bs=1024 count=256 2>/dev/null")
    old = inspect(name)
    plan = write_plan(tmp_path, [{"from": name, "to": target, "preserve_data": True}])
    res, out = migrate(refit, scope, plan, extra_config="backup_max_bytes: 65536\n")
    assert res.rc == 1, res.describe()
    [m] = out["migrations"]
    assert m["status"] == "failed" and "backup_max_bytes" in m["error"], out
    cur = inspect(name)
    assert cur["Id"] == old["Id"] and cur["State"]["Running"]
    assert cur["State"]["StartedAt"] == old["State"]["StartedAt"]
    assert inspect(target) is None and swapenv.mine() == [old["Id"]]
    assert backup_entries(refit) == [], "a partial backup was left"
    assert pending_ops(refit) == [] and history(refit) == []


def test_file_errors_change_nothing(refit, scope, swapenv, common_pairs, swap_images, tmp_path):
    v1, _ = common_pairs["good"]
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    name, _ = start_app(swapenv, v1, "err", net)
    other = peer(swapenv, v1, net)
    before = sorted(swapenv.mine())

    def bad(text, *needles, rc=2):
        path = os.path.join(str(tmp_path), "bad-%s.yml" % uuid.uuid4().hex[:6])
        with open(path, "w") as f:
            f.write(text)
        res = run_refit(refit, "migrate", "--scope", scope, path, config=config_text(refit))
        assert res.rc == rc, res.describe()
        for n in (path,) + needles:
            assert n in res.stderr, (n, res.describe())
        return res

    bad("migrations:\n  - from: %s\n    to: x-new\n    colour: red\n" % name, ":4:", "colour")
    bad("migrations:\n  - from: %s\n    to: same\n  - from: %s-b\n    to: same\n" % (name, name),
        ":4:", "to", "two containers")
    bad("migrations:\n  - from: %s\n    to: %s\n" % (name, other), ":2:", "to",
        "already the name of another container")
    bad("migrations:\n  - from: %s\n    to: 'bad/name'\n" % name, ":3:", "to")
    bad("migrations:\n  - from: %s\n    to: fine\n    image: 'UPPER::bad'\n" % name, ":4:", "image")
    bad("migrations:\n  - from: nosuch-%s\n    to: fine\n" % uuid.uuid4().hex[:6], ":2:", "from",
        "no container")
    bad("migrations:\n  - from: %s\n    to: fine\n    rollback_on_failure: false\n" % name,
        ":4:", "rollback_on_failure")
    bad("migrations: []\n", ":1:", "at least one")
    bad("migrations:\n" + "".join("  - {from: a%d, to: b%d}\n" % (i, i) for i in range(65)),
        "at most 64")
    with open(os.path.join(str(tmp_path), "huge.yml"), "w") as f:
        f.write("#" * (300 * 1024))
    bad(open(os.path.join(str(tmp_path), "huge.yml")).read(), "at most")
    assert sorted(swapenv.mine()) == before and pending_ops(refit) == []


@pytest.fixture
def daemon(refit_bin, tmp_path, engine):
    made = []

    def make(**kw):
        d = Daemon(refit_bin, os.path.join(str(tmp_path), "daemon"), **kw)
        made.append(d)
        return d
    yield make
    for d in made:
        d.kill()


def test_api_migration(daemon, scope, swapenv, common_pairs, swap_images):
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    name, _ = start_app(swapenv, v1, "api", net)
    target = swapenv.name("api-new")
    client = peer(swapenv, v1, net)
    old = inspect(name)
    data = write_data(name, PATHS)
    d = daemon(scope=scope).start()
    # strict validation: nothing queued
    for body, needle in [
            ({"rename_containers": True, "rename_map": {name: "bad/name"}}, "rename_map"),
            ({"rename_containers": True, "rename_map": {name: 7}}, "rename_map"),
            ({"rename_containers": False, "rename_map": {name: target}}, "rename_containers"),
            ({"rename_containers": True,
              "rename_map": {"a%d" % i: "b%d" % i for i in range(65)}}, "at most 64"),
            ({"rename_containers": True, "rename_map": {name: target}, "colour": 1}, "colour")]:
        r = d.curl("POST", COMMAND, body={"action": "trigger", "migration_config": body})
        assert r.status == 400 and needle in r.json()["error"], r.describe()
    op = d.submit(COMMAND, {"action": "trigger", "migration_config": {
        "rename_containers": True, "rename_map": {name: target}, "preserve_data": True,
        "rollback_on_failure": True}})
    rec = d.wait_op(op, timeout=90)
    assert rec["state"] == "succeeded", rec
    [m] = rec["result"]["migrations"]
    assert m["status"] == "migrated" and m["to"] == target and m.get("backup"), rec
    new = inspect(target)
    assert inspect(name) is None and new["State"]["Running"] and new["Image"] == v1.id
    assert read_data(target, PATHS) == data
    assert nc_get(client, name)[1] == "good v1"
    with open(os.path.join(m["backup"], "manifest.json")) as f:
        assert {v["mount_point"] for v in json.load(f)["volumes"]} == set(PATHS)
    hist = d.get_json("/api/v1/history")["history"]
    assert [(h["kind"], h["container"], h.get("new_name")) for h in hist] == \
        [("migrate", name, target)], hist
    assert "old_inspect" not in hist[0]
    # an unknown container: the operation fails, nothing changes
    op = d.submit(COMMAND, {"action": "trigger", "migration_config": {
        "rename_containers": True, "rename_map": {"nosuch-" + uuid.uuid4().hex[:6]: "x-y"}}})
    rec = d.wait_op(op)
    assert rec["state"] == "failed" and "no container" in rec["error"], rec
    assert inspect(target)["Id"] == new["Id"]
    d.stop()
    assert old["Id"] != new["Id"]


def test_api_rollback_restores_data(daemon, scope, swapenv, common_pairs, swap_images):
    """POST /api/v1/rollback with "restore_data": true puts the migration's
    volume backup back, as `refit rollback --restore-data` does."""
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    name, vol = start_app(swapenv, v1, "apird", net)
    target = swapenv.name("apird-new")
    data = write_data(name, PATHS)
    d = daemon(scope=scope).start()
    op = d.submit(COMMAND, {"action": "trigger", "migration_config": {
        "rename_containers": True, "rename_map": {name: target}, "preserve_data": True}})
    rec = d.wait_op(op, timeout=90)
    assert rec["state"] == "succeeded" and rec["exit_code"] == 0, rec
    later = write_data(target, PATHS)
    assert later != data
    r = d.curl("POST", "/api/v1/rollback", body={"containers": [target], "restore_data": "yes"})
    assert r.status == 400 and "restore_data" in r.json()["error"], r.describe()
    op = d.submit("/api/v1/rollback", {"containers": [target], "restore_data": True})
    rec = d.wait_op(op, timeout=90)
    assert rec["state"] == "succeeded" and rec["exit_code"] == 0, rec
    assert rec["params"] == {"containers": [target], "restore_data": True}, rec
    cur = inspect(name)
    assert cur and cur["State"]["Running"] and cur["Image"] == v1.id
    assert inspect(target) is None
    assert mounts_by_dest(cur)["/data"]["Name"] == vol
    assert read_data(name, PATHS) == data, "the pre-migration data is not back"
    d.stop()


COMPOSE = """version: "2.4"
services:
  neurosync_s1:
    image: %(neuro)s
    container_name: neurosync_s1-%(sfx)s
    labels: &labels
      refit.enable: "true"
      refit.scope: "%(scope)s"
      %(run_label)s: "%(run)s"
      %(owner_label)s: "%(scope)s"
    volumes:
      - neuro-data:/data
      - /anon
  autogen_agent:
    image: %(agent)s
    container_name: autogen_agent-%(sfx)s
    labels: *labels
    volumes:
      - /anon
  client:
    image: %(neuro)s
    container_name: revamp-client-%(sfx)s
    labels:
      %(run_label)s: "%(run)s"
      %(owner_label)s: "%(scope)s"
volumes:
  neuro-data:
    labels:
      %(run_label)s: "%(run)s"
networks:
  default:
    labels:
      %(run_label)s: "%(run)s"
    ipam:
      config:
        - subnet: %(subnet)s
"""


def test_seed_revamp_with_compose(refit, compose, scope, swapenv, swap_images, plain_registry,
                                  run_id, tmp_path):
    """The seed's example: neurosync_s1 and autogen_agent (a docker-compose
    project) become avatar_controller and agent_coordinator on new images in
    one file; a client container that calls the old names keeps working."""
    mk = swap_images.make
    neuro = mk(plain_registry, repo=swap_images.unique_repo("neurosync"), version="neurosync",
               **GOOD)
    agent = mk(plain_registry, repo=swap_images.unique_repo("autogen"), version="autogen", **GOOD)
    avatar = mk(plain_registry, repo=swap_images.unique_repo("its-define/avatar-controller"),
                version="avatar-controller", **GOOD)
    coord = mk(plain_registry, repo=swap_images.unique_repo("its-define/agent-coordinator"),
               version="agent-coordinator", **GOOD)
    sfx = uuid.uuid4().hex[:6]
    # a subnet of the engine's own: a second engine's default pools overlap the machine's
    proj = compose(COMPOSE % {"neuro": neuro.ref, "agent": agent.ref, "scope": scope, "sfx": sfx,
                              "run": run_id, "run_label": RUN_LABEL, "owner_label": OWNER_LABEL,
                              "subnet": Engine().network_prefix() + ".0/24"})
    proj.cmd("up", "-d")
    old_n, old_a = "neurosync_s1-%s" % sfx, "autogen_agent-%s" % sfx
    client = "revamp-client-%s" % sfx
    wait_for(lambda: nc_get(client, "neurosync_s1")[1] == "neurosync", 60, interval=0.3,
             what="the client to reach neurosync_s1")
    assert nc_get(client, "autogen_agent")[1] == "autogen"
    data = write_data(old_n, ["/data", "/anon"])

    # the shipped example, with this test's names and images
    here = os.path.dirname(os.path.abspath(__file__))
    example = open(os.path.join(here, "..", "..", "examples", "migration.yml")).read()
    assert "neurosync_s1" in example and "avatar_controller" in example
    text = (example.replace("ghcr.io/its-define/avatar-controller:latest", avatar.ref)
            .replace("ghcr.io/its-define/agent-coordinator:latest", coord.ref)
            .replace("neurosync_s1", old_n).replace("autogen_agent", old_a)
            .replace("avatar_controller", "avatar_controller-" + sfx)
            .replace("agent_coordinator", "agent_coordinator-" + sfx))
    plan = os.path.join(str(tmp_path), "revamp.yml")
    with open(plan, "w") as f:
        f.write(text)
    res, out = migrate(refit, scope, plan)
    assert res.rc == 0, res.describe()
    assert [(m["from"], m["to"], m["status"]) for m in out["migrations"]] == [
        (old_n, "avatar_controller-" + sfx, "migrated"),
        (old_a, "agent_coordinator-" + sfx, "migrated")], out
    ctl, crd = inspect("avatar_controller-" + sfx), inspect("agent_coordinator-" + sfx)
    assert ctl["Image"] == avatar.id and crd["Image"] == coord.id
    assert inspect(old_n) is None and inspect(old_a) is None
    assert read_data("avatar_controller-" + sfx, ["/data", "/anon"]) == data
    # the client calls the old names (service and container names) and gets the new services
    for host, body in [("neurosync_s1", "avatar-controller"), (old_n, "avatar-controller"),
                       ("autogen_agent", "agent-coordinator"), (old_a, "agent-coordinator")]:
        assert nc_get(client, host) == ("HTTP/1.1 200 OK", body), host
    assert all(m.get("backup") for m in out["migrations"])


@pytest.mark.parametrize("step", ["health", "cutover"])
def test_crash_mid_migration_is_recovered(step, refit, scope, swapenv, common_pairs, swap_images,
                                          tmp_path):
    """Killed (SIGKILL) once STEP is journaled: the next run finishes the
    migration past the gate, or puts the old container back before it."""
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    name, _ = start_app(swapenv, v1, "crash-" + step, net)
    target = swapenv.name("crash-%s-new" % step)
    old = inspect(name)
    data = write_data(name, PATHS)
    plan = write_plan(tmp_path, [{"from": name, "to": target, "image": v2.ref}])
    res = run_refit(refit, "migrate", "--json", "--scope", scope, plan,
                    config=config_text(refit), env={"REFIT_TEST_CRASH_AT": step})
    assert res.rc == -9, res.describe()
    assert len(pending_ops(refit)) == 1
    # any refit command that changes containers recovers first; a dry run of
    # the same file then shows the state it left
    res = run_refit(refit, "rollback", "--scope", scope, "nosuch-" + uuid.uuid4().hex[:6],
                    config=config_text(refit))
    assert pending_ops(refit) == [], res.describe()
    if step == "cutover":
        assert inspect(name) is None
        new = inspect(target)
        assert new["State"]["Running"] and new["Image"] == v2.id
        assert read_data(target, PATHS) == data
    else:
        cur = inspect(name)
        assert cur["Id"] == old["Id"] and cur["State"]["Running"] and inspect(target) is None
        assert read_data(name, PATHS) == data
    assert leftovers(name) == [] and leftovers(target) == []
    [rec] = history(refit)
    assert rec["kind"] == "migrate" and rec.get("recovered") is True
    assert rec["outcome"] == ("updated" if step == "cutover" else "rolled-back")


def test_migration_notifies_like_an_update(refit, scope, swapenv, common_pairs, swap_images,
                                           tmp_path):
    """A migration that ran is told to the notification URLs as an update
    is: kind "migrate", the container under its new name with the name it
    had, its outcome; a dry run and a second run of the same file (already
    migrated, nothing changed) send nothing."""
    from test_notify import Receiver
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    net, _ = swapenv.network()
    name, _ = start_app(swapenv, v1, "told", net)
    target = swapenv.name("told-new")
    rx = Receiver()
    try:
        cfg = "notifications:\n  - \"%s\"\n" % rx.url("generic+http://", "/hook")
        plan = write_plan(tmp_path, [{"from": name, "to": target, "image": v2.ref}])
        res, _ = migrate(refit, scope, plan, "--dry-run", extra_config=cfg)
        assert res.rc == 0, res.describe()
        assert rx.got("/hook") == []
        res, out = migrate(refit, scope, plan, extra_config=cfg)
        assert res.rc == 0 and out["migrations"][0]["status"] == "migrated", res.describe()
        wait_for(lambda: rx.got("/hook"), 15, interval=0.2, what="the migration's notification")
        [req] = rx.got("/hook")
        p = json.loads(req["body"])
        assert p["kind"] == "migrate" and p["summary"].endswith("migration: 1 updated"), p
        [c] = p["containers"]
        assert (c["name"], c["from"], c["outcome"], c["image"]) == (target, name, "updated", v2.ref), c
        res, out = migrate(refit, scope, plan, extra_config=cfg)   # already migrated
        assert res.rc == 0, res.describe()
        assert len(rx.got("/hook")) == 1, rx.requests
    finally:
        rx.stop()
