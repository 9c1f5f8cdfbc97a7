"""Held digests and the cooldown (docs/swapping.md: Held digests, Cooldown).

A digest whose swap was rolled back (here: its HEALTHCHECK never passes) is
held for that container in state_dir: later passes report it `held`, do not
pull it or swap again, `--force` tries it once, `refit release` clears the
hold, and a new digest from the registry ends it by itself. A digest newer
than the container's cooldown is reported `cooldown` with the time it
becomes eligible, is not pulled, and is taken once that time has come.
Everything runs against the real engine and registry."""

import json
import os
import time

from swaptools import FAST_CONFIG, history, inspect

CONFIG = "state_dir: {state}\n" + FAST_CONFIG


def config(refit, extra=""):
    return CONFIG.format(state=refit.state_dir) + extra


def update(refit, scope, *names, extra=(), env=None, cfg=""):
    res = refit.run("update", "--json", "--scope", scope, *extra, *names, config=config(refit, cfg),
                    env=env, timeout=180)
    try:
        data = {c["name"]: c for c in json.loads(res.stdout)["containers"]}
    except (ValueError, KeyError):
        raise AssertionError(res.describe())
    return res, data


def holds(refit):
    path = os.path.join(refit.state_dir, "digests.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)["holds"]


def updates_of(refit, name):
    return [r for r in history(refit, name) if r.get("kind") == "update"]


def test_rolled_back_digest_is_held_until_released_or_replaced(image_factory, plain_registry, containers,
                                                              scoped, scope, refit):
    v1 = image_factory.make(plain_registry, repo=image_factory.unique_repo("hold"), healthcheck=True)
    name = containers.run(v1, labels=scoped(), hint="held")
    old_id = inspect(name)["Id"]
    bad = image_factory.publish_new_version(v1, healthcheck="false")

    res, out = update(refit, scope)
    assert res.rc == 1, res.describe()
    assert out[name]["status"] == "rolled-back", res.describe()
    assert out[name].get("held") is True, res.describe()
    assert "held" in out[name]["error"], res.describe()
    assert holds(refit)[name]["digest"] == bad.digest
    assert inspect(name)["Id"] == old_id

    # check, status and the next pass say held; nothing is pulled or swapped again
    chk = refit.check_json(scope=scope, config=config(refit))
    assert chk.rc == 0, chk.describe()
    assert chk[name]["status"] == "held", chk.describe()
    assert chk[name]["held_since"].endswith("Z")
    st = refit.run("status", "--json", "--scope", scope, config=config(refit))
    assert json.loads(st.stdout)["containers"][0]["status"] == "held", st.describe()
    n_updates = len(updates_of(refit, name))
    res, out = update(refit, scope)
    assert res.rc == 0, res.describe()
    assert out[name]["status"] == "held", res.describe()
    assert len(updates_of(refit, name)) == n_updates, "a held digest was swapped again"
    assert inspect(name)["Id"] == old_id

    # --force tries once anyway: rolled back again, and held again
    res, out = update(refit, scope, name, extra=("--force",))
    assert res.rc == 1 and out[name]["status"] == "rolled-back", res.describe()
    assert len(updates_of(refit, name)) == n_updates + 1
    assert holds(refit)[name]["digest"] == bad.digest
    r = refit.run("update", "--force", "--scope", scope, config=config(refit))
    assert r.rc == 2 and "--force needs the names" in r.stderr, r.describe()

    # release: the next check offers the digest again
    r = refit.run("release", name, "nosuch", config=config(refit))
    assert r.rc == 0, r.describe()
    assert "%s: released" % name in r.stdout and "nosuch: no digest held" in r.stdout, r.describe()
    assert name not in holds(refit)
    chk = refit.check_json(scope=scope, config=config(refit))
    assert chk[name]["status"] == "update-available", chk.describe()
    r = refit.run("release", config=config(refit))
    assert r.rc == 2, r.describe()

    # held again, then a good version: the hold ends by itself and the update goes through
    res, out = update(refit, scope)
    assert out[name]["status"] == "rolled-back" and name in holds(refit), res.describe()
    good = image_factory.publish_new_version(bad, healthcheck=True)
    res, out = update(refit, scope)
    assert res.rc == 0 and out[name]["status"] == "updated", res.describe()
    assert name not in holds(refit)
    assert inspect(name)["Image"] == good.id


def test_manual_rollback_holds_and_never_blocks_a_rollback(image_factory, plain_registry, containers, scoped,
                                                            scope, refit):
    v1 = image_factory.make(plain_registry, repo=image_factory.unique_repo("hold-rb"))
    name = containers.run(v1, labels=scoped(), hint="rb")
    v2 = image_factory.publish_new_version(v1)
    res, out = update(refit, scope)
    assert out[name]["status"] == "updated", res.describe()
    r = refit.run("rollback", "--json", "--scope", scope, name, config=config(refit), timeout=120)
    assert r.rc == 0, r.describe()
    assert holds(refit)[name]["digest"] == v2.digest
    assert inspect(name)["Image"] == v1.id
    chk = refit.check_json(scope=scope, config=config(refit))
    assert chk[name]["status"] == "held", chk.describe()
    # forced onto the held digest, then rolled back again: a hold never stands in a rollback's way
    res, out = update(refit, scope, name, extra=("--force",))
    assert out[name]["status"] == "updated", res.describe()
    assert name not in holds(refit), "on the held digest now: the hold is over"
    r = refit.run("rollback", "--scope", scope, name, config=config(refit), timeout=120)
    assert r.rc == 0, r.describe()
    assert inspect(name)["Image"] == v1.id


def test_cooldown_waits_from_first_seen(image_factory, plain_registry, containers, scoped, scope, refit):
    v1 = image_factory.make(plain_registry, repo=image_factory.unique_repo("cool"))
    label = containers.run(v1, labels=scoped({"refit.cooldown": "6s"}), hint="cool")
    wt = containers.run(v1, labels=scoped({"com.centurylinklabs.watchtower.cooldown-delay": "1h"}), hint="wt")
    plain = containers.run(v1, labels=scoped(), hint="plain")
    badlabel = containers.run(v1, labels=scoped({"refit.cooldown": "tomorrow"}), hint="bad")
    image_factory.publish_new_version(v1)
    ids = {n: inspect(n)["Id"] for n in (label, wt, plain)}

    t0 = time.time()
    chk = refit.check_json(scope=scope, config=config(refit))
    assert chk[label]["status"] == "cooldown", chk.describe()
    assert chk[wt]["status"] == "cooldown", chk.describe()
    assert chk[plain]["status"] == "update-available", chk.describe()
    assert chk[badlabel]["status"] == "error" and "refit.cooldown" in chk[badlabel]["error"], chk.describe()
    eligible = chk[label]["eligible_at"]
    # the configuration's cooldown (REFIT_COOLDOWN) holds back the unlabelled one
    res, out = update(refit, scope, env={"REFIT_COOLDOWN": "1h"})
    assert out[label]["status"] == "cooldown" and out[wt]["status"] == "cooldown", res.describe()
    assert out[plain]["status"] == "cooldown", res.describe()
    assert out[label]["eligible_at"] == eligible, "first seen by the first pass, not by each"
    assert all(inspect(n)["Id"] == i for n, i in ids.items()), "nothing is pulled or swapped in its cooldown"

    time.sleep(max(0, t0 + 7 - time.time()))
    res, out = update(refit, scope)
    assert out[label]["status"] == "updated", res.describe()
    assert out[plain]["status"] == "updated", res.describe()
    assert out[wt]["status"] == "cooldown", res.describe()
    assert inspect(wt)["Id"] == ids[wt]
    # --force takes it at once
    res, out = update(refit, scope, wt, extra=("--force",))
    assert out[wt]["status"] == "updated", res.describe()


def test_api_reports_held_counts_it_and_releases(image_factory, plain_registry, containers, scoped, scope,
                                                 refit_bin, tmp_path):
    from daemontools import Daemon

    v1 = image_factory.make(plain_registry, repo=image_factory.unique_repo("hold-api"), healthcheck=True)
    name = containers.run(v1, labels=scoped(), hint="api")
    bad = image_factory.publish_new_version(v1, healthcheck="false")
    d = Daemon(refit_bin, os.path.join(str(tmp_path), "d"), scope=scope)
    d.start()
    try:
        rec = d.wait_op(d.submit("/api/v1/update", {}), timeout=120)
        entry = [c for c in rec["result"]["containers"] if c["name"] == name][0]
        assert entry["status"] == "rolled-back" and entry.get("held") is True, rec
        rec = d.wait_op(d.submit("/api/v1/update", {}), timeout=120)
        entry = [c for c in rec["result"]["containers"] if c["name"] == name][0]
        assert entry["status"] == "held", rec
        assert "refit_containers_held 1" in d.metrics_text()
        got = {c["name"]: c for c in d.get_json("/api/v1/containers")["containers"]}
        assert got[name]["status"] == "held", got

        # bad bodies change nothing
        for body in ({}, {"containers": "x"}, {"all": 1}, {"containers": [name], "dry_run": True}):
            d.post_json("/api/v1/release", body=body, status=400)
        d.post_json("/api/v1/update", body={"force": True}, status=400)
        with open(os.path.join(d.state_dir, "digests.json")) as f:
            assert json.load(f)["holds"][name]["digest"] == bad.digest

        r = d.post_json("/api/v1/release", body={"containers": [name]}, status=200)
        assert r.json() == {"released": [name]}, r.describe()
        got = {c["name"]: c for c in d.get_json("/api/v1/containers")["containers"]}
        assert got[name]["status"] == "update-available", got
        r = d.post_json("/api/v1/release", body={"all": True}, status=200)
        assert r.json() == {"released": []}, r.describe()
    finally:
        d.stop()
