"""docker compose v2 (Debian 13's 2.26, a CLI plugin fetched by the harness)
keeps owning what refit updated (SPEC.md: Swapping, Compose).

The seed's services (examples/docker-compose.yml: orchestrator,
neurosync_s1, autogen_agent, vtuber-ollama) with their Watchtower and refit
labels and the test's scopes are started with `docker compose up -d`; new
images are pushed; `refit update` swaps them; a second `docker compose up
-d` must then recreate nothing (the engine's events and the container IDs
say so), `docker compose config --hash` is what it was, and `docker compose
ps` lists every service running.
"""

import json
import os
import time

import yaml

from harness import RUN_LABEL, docker
from swaptools import update

HERE = os.path.dirname(os.path.abspath(__file__))
COMPOSE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples", "docker-compose.yml")
SERVICES = ("orchestrator", "neurosync_s1", "autogen_agent", "vtuber-ollama")


def seed_project(image_factory, plain_registry, scope, run_id):
    """The example's production services on test images; returns (compose YAML, images by service)."""
    with open(COMPOSE, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    doc.pop("version", None)          # compose v2 warns that it is obsolete
    svc = {k: v for k, v in doc["services"].items() if k in SERVICES}
    assert set(svc) == set(SERVICES), doc["services"].keys()
    doc["services"] = svc
    built = image_factory.make_many([{"registry": plain_registry,
                                      "repo": image_factory.unique_repo(n)} for n in SERVICES])
    images = dict(zip(SERVICES, built))
    for name, s in svc.items():
        s["image"] = images[name].ref
        s.pop("ports", None)                 # fixed host ports: not on a shared test host
        labels = s["labels"]
        for k in list(labels):
            if k.endswith(".scope"):
                labels[k] = scope
        # the test images serve no HTTP and follow no semver tags: a short
        # running gate instead of the example's /health probe, the tag as is
        labels.pop("refit.health", None)
        labels.pop("refit.track", None)
        labels["refit.min-uptime"] = "1"
        labels[RUN_LABEL] = run_id
    doc["networks"] = {"vtuber": {"labels": {RUN_LABEL: run_id}}}
    doc["volumes"] = {k: {"labels": {RUN_LABEL: run_id}} for k in doc.get("volumes") or {}}
    return yaml.safe_dump(doc), images


def project_containers(project):
    """{service: (container ID, image ID)} of PROJECT's containers (running or not)."""
    out = docker("ps", "-a", "-q", "--no-trunc", "--filter",
                 "label=com.docker.compose.project=%s" % project.name).split()
    res = {}
    for cid in out:
        ins = json.loads(docker("inspect", cid))[0]
        res[ins["Config"]["Labels"]["com.docker.compose.service"]] = (ins["Id"], ins["Image"], ins)
    return res


def compose_events(project, since, until):
    """The engine's container events of PROJECT between the two times, as (action, service)."""
    out = docker("events", "--since", "%.3f" % since, "--until", "%.3f" % until,
                 "--filter", "type=container",
                 "--filter", "label=com.docker.compose.project=%s" % project.name,
                 "--format", "{{json .}}")
    evs = []
    for line in out.splitlines():
        e = json.loads(line)
        evs.append((e.get("Action") or e.get("status"), e.get("Actor", {}).get("ID") or e.get("id"),
                    e.get("Actor", {}).get("Attributes", {}).get("com.docker.compose.service")))
    return evs


def test_compose_v2_recreates_nothing_refit_updated(refit, compose_v2, image_factory, plain_registry,
                                                   scope, run_id):
    text, images = seed_project(image_factory, plain_registry, scope, run_id)
    project = compose_v2(text)
    project.cmd("up", "-d")
    hash_before = project.cmd("config", "--hash", "*").stdout
    before = project_containers(project)
    assert set(before) == set(SERVICES), before.keys()
    for svc, (_, image_id, ins) in before.items():
        assert ins["Config"]["Labels"]["com.docker.compose.image"] == image_id, svc

    new = {s: image_factory.publish_new_version(images[s]) for s in SERVICES}
    res = update(refit, scope)
    assert res.rc == 0, res.describe()
    after = project_containers(project)
    # vtuber-ollama is monitor-only: refit leaves it alone
    for svc in ("orchestrator", "neurosync_s1", "autogen_agent"):
        cid, image_id, ins = after[svc]
        assert cid != before[svc][0] and image_id == new[svc].id, (svc, res.describe())
        labels = ins["Config"]["Labels"]
        assert labels["com.docker.compose.image"] == new[svc].id, (svc, labels)
        old_labels = before[svc][2]["Config"]["Labels"]
        for k, v in old_labels.items():
            if k.startswith("com.docker.compose.") and k != "com.docker.compose.image":
                assert labels.get(k) == v, (svc, k, labels.get(k), v)
        assert ins["Name"] == before[svc][2]["Name"], svc
    assert after["vtuber-ollama"][0] == before["vtuber-ollama"][0]

    time.sleep(1.1)    # the events of refit's own swap end before this window opens
    since = time.time()
    up = project.cmd("up", "-d")
    until = time.time() + 0.5
    again = project_containers(project)
    assert {s: v[0] for s, v in again.items()} == {s: v[0] for s, v in after.items()}, up.stderr
    ids = {v[0] for v in after.values()}
    evs = [e for e in compose_events(project, since, until)
           if e[0] == "create" or (e[1] in ids and e[0] in ("destroy", "kill", "stop", "die"))]
    assert evs == [], (evs, up.stderr)
    assert project.cmd("config", "--hash", "*").stdout == hash_before

    ps = _ps_json(project)
    assert {p["Service"]: p["State"] for p in ps} == {s: "running" for s in SERVICES}, ps


def _ps_json(project):
    """`docker compose ps --format json`: a JSON array (2.20 and before) or one object a line."""
    out = project.cmd("ps", "--format", "json").stdout.strip()
    if out.startswith("["):
        return json.loads(out)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_compose_v1_keeps_labels_and_ps(refit, compose, image_factory, plain_registry, scope, run_id):
    """docker-compose 1.29 (Debian 12's): after a swap the container keeps
    every com.docker.compose.* label and `docker-compose ps` lists it
    running under its service (v1 recreates it at its next `up`: its config
    hash includes the image ID; see docs/swapping.md)."""
    text, images = seed_project(image_factory, plain_registry, scope, run_id)
    doc = yaml.safe_load(text)
    doc["version"] = "2.4"
    project = compose(yaml.safe_dump(doc))
    project.cmd("up", "-d")
    before = project_containers(project)
    new = image_factory.publish_new_version(images["orchestrator"])
    res = update(refit, scope)
    assert res.rc == 0, res.describe()
    after = project_containers(project)
    cid, image_id, ins = after["orchestrator"]
    assert cid != before["orchestrator"][0] and image_id == new.id, res.describe()
    old = before["orchestrator"][2]["Config"]["Labels"]
    got = ins["Config"]["Labels"]
    assert {k: v for k, v in got.items() if k.startswith("com.docker.compose.")} == \
        {k: v for k, v in old.items() if k.startswith("com.docker.compose.")}
    ps = project.cmd("ps").stdout
    line = [ln for ln in ps.splitlines() if ins["Name"].lstrip("/") in ln]
    assert line and " Up " in " %s " % line[0], ps
