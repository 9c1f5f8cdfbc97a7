"""The seed's fleet call as written (SPEC.md: Management API; docs/api.md).

Three `refit daemon`s, each with a scope and an API port of its own and one
token for the fleet, manage the seed's services (orchestrator, neurosync_s1,
autogen_agent, vtuber-ollama, with the labels of examples/docker-compose.yml)
on the shared engine. The seed's Python loop, taken from docs/api.md as it
stands there, is run with Debian's python3-requests against the three hosts:
`{"action":"trigger","target_version":"v2-latest","migration_config":
{"rename_containers":true,"preserve_data":true,"rollback_on_failure":true}}`.
Every host must answer 202, move its containers to the tag v2-latest (the
monitor-only one stays), back their volumes up first and keep their data;
the one host where neurosync_s1 declares refit.rename-to renames it, the
others rename nothing. Then the seed's `curl -s http://localhost:$port/health
| jq .` loop reads every host's health.
"""

import json
import os
import re
import subprocess

import pytest

from daemontools import Daemon, new_token
from harness import RUN_LABEL
from swaptools import exec_out, inspect, read_data, write_data
from swaptools import swapenv  # noqa: F401 (fixture)

HERE = os.path.dirname(os.path.abspath(__file__))
API_MD = os.path.join(os.path.dirname(os.path.dirname(HERE)), "docs", "api.md")
SERVICES = ("orchestrator", "neurosync_s1", "autogen_agent", "vtuber-ollama")
PYTHON = "/usr/bin/python3"     # Debian's, with python3-requests


def seed_loop():
    """The Python block of docs/api.md that starts with the seed's comment."""
    with open(API_MD, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"```python\n(# Update all orchestrators in the fleet\n.*?)```", text, re.S)
    assert m, "docs/api.md has no ```python block with the seed's fleet loop"
    return m.group(1)


@pytest.fixture
def hosts(refit_bin, tmp_path, engine):
    made = []
    token = new_token()

    def make(scope):
        d = Daemon(refit_bin, os.path.join(str(tmp_path), "host%d" % len(made)), scope=scope,
                   token=token)
        made.append(d)
        return d
    yield make
    for d in made:
        d.kill()


def seed_containers(swapenv, images, scope, tag, rename_to=None):
    """One host's seed services in SCOPE (names end in TAG); {service: name}."""
    net, _ = swapenv.network("vtuber-" + tag)
    names = {s: swapenv.name("%s-%s" % (s, tag)) for s in SERVICES}
    data_vol = swapenv.volume("neurosync-data-" + tag)
    models_vol = swapenv.volume("ollama-models-" + tag)
    common = {RUN_LABEL: swapenv.run_id, "refit.min-uptime": "1"}
    labels = {
        "orchestrator": {"refit.enable": "true", "refit.scope": scope, "refit.strategy": "recreate"},
        "neurosync_s1": {"refit.enable": "true", "refit.scope": scope, "refit.strategy": "blue-green",
                         "refit.depends-on": names["orchestrator"]},
        "autogen_agent": {"com.centurylinklabs.watchtower.enable": "true",
                          "com.centurylinklabs.watchtower.scope": scope,
                          "refit.strategy": "blue-green"},
        "vtuber-ollama": {"refit.enable": "true", "refit.scope": scope, "refit.monitor-only": "true"},
    }
    if rename_to:
        labels["neurosync_s1"]["refit.rename-to"] = rename_to
    extra = {
        "orchestrator": ["--network", net],
        "neurosync_s1": ["--network", net, "--network-alias", "neurosync", "-v", data_vol + ":/data"],
        "autogen_agent": ["--network", net, "-v", "/var/lib/autogen"],
        "vtuber-ollama": ["--network", net, "-v", models_vol + ":/root/.ollama"],
    }
    for s in SERVICES:
        labels[s].update(common)
        swapenv.containers.run(images[s][0], labels=labels[s], name=names[s], extra=extra[s])
    return names, net


DATA = {"neurosync_s1": ["/data"], "autogen_agent": ["/var/lib/autogen"],
        "vtuber-ollama": ["/root/.ollama"]}


def test_seed_fleet_loop_moves_three_hosts_to_v2_latest(hosts, swapenv, image_factory, plain_registry,
                                                       scope, tmp_path):
    # the seed's images: "latest" runs, "v2-latest" is the version the loop asks for
    repos = {s: image_factory.unique_repo("its-define/" + s) for s in SERVICES}
    built = image_factory.make_many([{"registry": plain_registry, "repo": repos[s], "tag": t}
                                     for s in SERVICES for t in ("latest", "v2-latest")])
    images = {s: (built[2 * i], built[2 * i + 1]) for i, s in enumerate(SERVICES)}

    fleet = []
    for i in range(3):
        hscope = "%s-h%d" % (scope, i)
        rename_to = swapenv.name("avatar_controller-h0") if i == 0 else None
        names, net = seed_containers(swapenv, images, hscope, "h%d" % i, rename_to)
        if rename_to:
            swapenv.containers.names.append(rename_to)   # removed at teardown under its new name
        d = hosts(hscope)
        fleet.append((d, names, net, rename_to))
    for d, *_ in fleet:
        d.start()
    before = {}
    for d, names, _, _ in fleet:
        for s, paths in DATA.items():
            before[names[s]] = write_data(names[s], paths)

    # the seed's loop, as docs/api.md shows it, with this fleet's endpoints
    loop = seed_loop()
    endpoints = "".join('    "http://localhost:%d",\n' % d.port for d, *_ in fleet)
    loop, n = re.subn(r"fleet_endpoints = \[\n.*?\n\]", "fleet_endpoints = [\n%s]" % endpoints, loop,
                      flags=re.S)
    assert n == 1, loop
    loop += "    print(json.dumps({'endpoint': endpoint, 'status': response.status_code, " \
            "'answer': response.json()}))\n"
    script = os.path.join(str(tmp_path), "seed_fleet.py")
    with open(script, "w") as f:
        f.write("import json\n" + loop)
    run = subprocess.run([PYTHON, script], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "REFIT_API_TOKEN": fleet[0][0].token})
    assert run.returncode == 0, (run.stdout, run.stderr)
    answers = [json.loads(x) for x in run.stdout.splitlines()]
    assert [a["endpoint"] for a in answers] == ["http://localhost:%d" % d.port for d, *_ in fleet]
    for a in answers:
        assert a["status"] == 202 and a["answer"].get("state") == "queued", answers

    for (d, names, net, rename_to), a in zip(fleet, answers):
        rec = d.wait_op(a["answer"]["operation"], timeout=240)
        assert rec["state"] == "succeeded", json.dumps(rec, indent=1)
        assert rec["kind"] == "update", rec
        assert rec["params"] == {"target_version": "v2-latest", "rename_containers": True,
                                 "preserve_data": True}, rec
        got = {e["name"].lstrip("/"): e for e in rec["result"]["containers"]}
        assert {n: e["status"] for n, e in got.items()} == {
            names["orchestrator"]: "updated", names["neurosync_s1"]: "updated",
            names["autogen_agent"]: "updated", names["vtuber-ollama"]: "skipped"}, rec
        for s in ("orchestrator", "neurosync_s1", "autogen_agent"):
            e = got[names[s]]
            assert e["target_tag"] == "v2-latest", e
            assert e.get("renamed_to") == (rename_to if s == "neurosync_s1" else None), e
            now = rename_to if (s == "neurosync_s1" and rename_to) else names[s]
            ins = inspect(now)
            assert ins and ins["State"]["Running"], (now, ins and ins["State"])
            assert ins["Image"] == images[s][1].id, (s, ins["Image"], images[s][1])
            assert ins["Config"]["Image"] == images[s][1].ref, ins["Config"]["Image"]
            if s in DATA:
                assert read_data(now, DATA[s]) == before[names[s]], s
        # the monitor-only one is reported, never changed
        ollama = inspect(names["vtuber-ollama"])
        assert ollama["Image"] == images["vtuber-ollama"][0].id
        assert read_data(names["vtuber-ollama"], DATA["vtuber-ollama"]) == before[names["vtuber-ollama"]]
        if rename_to:
            # renamed through the alias strategy: the old name answers on its network
            assert inspect(names["neurosync_s1"]) is None
            aliases = inspect(rename_to)["NetworkSettings"]["Networks"][net]["Aliases"] or []
            assert names["neurosync_s1"] in aliases and "neurosync" in aliases, aliases
            assert exec_out(names["orchestrator"], "ping -c1 -W2 %s >/dev/null && echo ok"
                            % names["neurosync_s1"]).strip() == "ok"
        else:
            assert inspect(names["neurosync_s1"])["Name"] == "/" + names["neurosync_s1"]
        # preserve_data: one verified backup per container with volumes, in the journal
        backups = {h["container"]: h.get("backup") for h in d.get_json("/api/v1/history")["history"]}
        for s in ("neurosync_s1", "autogen_agent"):
            b = backups.get(names[s])
            assert b and os.path.isfile(os.path.join(b, "manifest.json")), (s, backups)
            with open(os.path.join(b, "manifest.json")) as f:
                assert [v["mount_point"] for v in json.load(f)["volumes"]] == DATA[s]
        assert not backups.get(names["orchestrator"]), backups   # no volumes: nothing to back up

    # the backup is what a rollback with restore_data puts back
    d, names, _, _ = fleet[1]
    exec_out(names["autogen_agent"], "echo changed > /var/lib/autogen/data")
    op = d.submit("/api/v1/rollback", {"containers": [names["autogen_agent"]], "restore_data": True})
    rec = d.wait_op(op, timeout=120)
    assert rec["state"] == "succeeded", json.dumps(rec, indent=1)
    assert inspect(names["autogen_agent"])["Image"] == images["autogen_agent"][0].id
    assert read_data(names["autogen_agent"], DATA["autogen_agent"]) == before[names["autogen_agent"]]

    # the seed's health loop, on each host's API port
    ports = " ".join(str(d.port) for d, *_ in fleet)
    out = subprocess.run(["bash", "-c", "for port in %s; do\n  curl -s http://localhost:$port/health | jq .\ndone"
                          % ports], capture_output=True, text=True, timeout=60, check=True).stdout
    dec, pos, health = json.JSONDecoder(), 0, []
    while out[pos:].strip():
        pos += len(out[pos:]) - len(out[pos:].lstrip())
        obj, pos = dec.raw_decode(out, pos)
        health.append(obj)
    assert len(health) == 3, out
    for h in health:
        assert h["status"] == "ok" and h["paused"] is False and h["version"], h
    assert "\n  \"status\": \"ok\"," in out, out    # jq's layout, as the seed reads it
    for d, *_ in fleet:
        d.stop()
