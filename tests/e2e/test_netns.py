"""network_mode dependents (docs/swapping.md: Depends-on): a "vpn" provider
and two consumers on `network_mode: container:vpn`, each serving HTTP on its
own port through the provider's network namespace. When the provider is
replaced, both consumers are recreated onto the new provider (new IDs,
`container:<new ID>`, running, journaled as swaps) and a client on the
user network reaches them through the provider's alias before and after."""

import json
import os

from harness import docker, wait_for
from swaptools import FAST_CONFIG, history, inspect
from swaptools import swapenv  # noqa: F401 (fixture)


def probe(client, port):
    """What the client gets for /version from vpn:PORT (nc: busybox wget is not used in these images)."""
    out = docker("exec", client, "sh", "-c",
                 "printf 'GET /version HTTP/1.0\\r\\n\\r\\n' | nc -w 3 vpn %d 2>&1" % port, check=False)
    probe.last = out = out.replace("\r\n", "\n")
    head, _, body = out.partition("\n\n")
    return body.strip() if " 200 " in head.split("\n", 1)[0] else None


def reaches(client, port, want, timeout=20):
    got = [None]

    def ok():
        got[0] = probe(client, port)
        return got[0] == want
    try:
        wait_for(ok, timeout, interval=0.3, what="vpn:%d" % port)
    except Exception:
        raise AssertionError("vpn:%d answered %r, expected %r" % (port, getattr(probe, "last", None), want))


def vpn_and_app(swapenv, image_factory, plain_registry, hint):
    """A "vpn" provider (recreate) on a user network, one consumer serving on
    8081 in its namespace, a client on the network: (vpn_img, app_img, vpn,
    app, client)."""
    vpn_img = image_factory.make(plain_registry, repo=image_factory.unique_repo(hint))
    app_img = image_factory.make(plain_registry, repo=image_factory.unique_repo(hint + "-app"))
    net, _ = swapenv.network()
    vpn = swapenv.run(vpn_img, swapenv.managed({"refit.strategy": "recreate"}), hint="vpn",
                      extra=["--network", net, "--network-alias", "vpn"])
    app = swapenv.run(app_img, swapenv.managed(), hint="app", extra=["--network", "container:" + vpn],
                      cmd=["/bin/sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8081 -h / & wait $!"])
    client = swapenv.run(app_img, swapenv.labels(), hint="client", extra=["--network", net])
    return vpn_img, app_img, vpn, app, client


def test_consumers_follow_their_provider(swapenv, image_factory, plain_registry, refit):
    vpn_img = image_factory.make(plain_registry, repo=image_factory.unique_repo("vpn"))
    app_img = image_factory.make(plain_registry, repo=image_factory.unique_repo("vpn-app"))
    net, _ = swapenv.network()
    vpn = swapenv.run(vpn_img, swapenv.managed({"refit.strategy": "recreate"}), hint="vpn",
                      extra=["--network", net, "--network-alias", "vpn"])
    consumers = {}
    for port in (8081, 8082):
        consumers[port] = swapenv.run(
            app_img, swapenv.managed(), hint="app%d" % port, extra=["--network", "container:" + vpn],
            cmd=["/bin/sh", "-c", "trap 'exit 0' TERM; httpd -f -p %d -h / & wait $!" % port])
    client = swapenv.run(app_img, swapenv.labels(), hint="client", extra=["--network", net])
    version = docker("exec", consumers[8081], "cat", "/version").strip()
    for port in consumers:
        reaches(client, port, version)
    old_vpn = inspect(vpn)["Id"]
    old_ids = {p: inspect(c)["Id"] for p, c in consumers.items()}

    image_factory.publish_new_version(vpn_img)
    res = refit.run("update", "--scope", swapenv.scope,
                    config="state_dir: %s\n%s" % (refit.state_dir, FAST_CONFIG), timeout=180)
    assert res.rc == 0, res.describe()
    new_vpn = inspect(vpn)["Id"]
    assert new_vpn != old_vpn, res.describe()
    for port, name in consumers.items():
        ins = inspect(name)
        assert ins["Id"] != old_ids[port], "%s was not recreated\n%s" % (name, res.describe())
        assert ins["HostConfig"]["NetworkMode"] == "container:" + new_vpn, ins["HostConfig"]["NetworkMode"]
        assert ins["State"]["Running"], ins["State"]
        recs = [r for r in history(refit, name) if r.get("kind") == "follow"]
        assert recs and recs[-1].get("outcome") == "updated", recs
        reaches(client, port, version)
    assert docker("ps", "-a", "-q", "--filter", "name=refit-old", "--filter",
                  "label=refit.scope=%s" % swapenv.scope).strip() == ""

    # rolled back by hand: the consumers follow the provider back
    res = refit.run("rollback", "--scope", swapenv.scope, vpn,
                    config="state_dir: %s\n%s" % (refit.state_dir, FAST_CONFIG), timeout=180)
    assert res.rc == 0, res.describe()
    back = inspect(vpn)["Id"]
    assert back != new_vpn
    for port, name in consumers.items():
        ins = inspect(name)
        assert ins["HostConfig"]["NetworkMode"] == "container:" + back, ins["HostConfig"]["NetworkMode"]
        assert ins["State"]["Running"], ins["State"]
        reaches(client, port, version)


def test_killed_while_a_follower_is_recreated(swapenv, image_factory, plain_registry, refit):
    """SIGKILL in the middle of a follower's recreate (after the provider was
    replaced): its old container can never run again (its namespace went with
    the old provider), so the next run swaps it again onto the new provider
    instead of putting back what cannot start."""
    vpn_img, app_img, vpn, app, client = vpn_and_app(swapenv, image_factory, plain_registry, "vpn-k")
    version = docker("exec", app, "cat", "/version").strip()
    reaches(client, 8081, version)
    old_app = inspect(app)["Id"]
    image_factory.publish_new_version(vpn_img)
    config = "state_dir: %s\n%s" % (refit.state_dir, FAST_CONFIG)
    res = refit.run("update", "--scope", swapenv.scope, config=config, timeout=180,
                    env={"REFIT_TEST_CRASH_AT": "follow:starting"})
    assert res.rc == -9, res.describe()
    pending = os.listdir(os.path.join(refit.state_dir, "ops"))
    assert len(pending) == 1, pending
    res = refit.run("update", "--scope", swapenv.scope, config=config, timeout=180)
    assert res.rc == 0, res.describe()
    assert "its old network namespace is gone" in res.stderr, res.describe()
    assert os.listdir(os.path.join(refit.state_dir, "ops")) == []
    ins = inspect(app)
    new_vpn = inspect(vpn)["Id"]
    assert ins["Id"] != old_app and ins["State"]["Running"], ins["State"]
    assert ins["HostConfig"]["NetworkMode"] == "container:" + new_vpn, ins["HostConfig"]["NetworkMode"]
    reaches(client, 8081, version)
    assert docker("ps", "-a", "-q", "--filter", "name=%s-refit" % app).strip() == ""


def test_killed_while_the_provider_swaps_its_followers_run_again(swapenv, image_factory, plain_registry,
                                                                 refit):
    """SIGKILL in the middle of the provider's swap, its followers stopped for
    it: the next run's recovery puts the provider back and starts them again
    (they were left stopped), and its pass then swaps the provider and moves
    them onto the new one, running."""
    vpn_img, app_img, vpn, app, client = vpn_and_app(swapenv, image_factory, plain_registry, "vpn-s")
    version = docker("exec", app, "cat", "/version").strip()
    image_factory.publish_new_version(vpn_img)
    config = "state_dir: %s\n%s" % (refit.state_dir, FAST_CONFIG)
    res = refit.run("update", "--scope", swapenv.scope, config=config, timeout=180,
                    env={"REFIT_TEST_CRASH_AT": "update:starting"})
    assert res.rc == -9, res.describe()
    assert not inspect(app)["State"]["Running"], "the follower was not stopped for the swap"
    with open(os.path.join(refit.state_dir, "stopped-dependents.json")) as f:
        assert app in json.load(f)
    res = refit.run("rollback", "--scope", swapenv.scope, "--all", config=config, timeout=180)
    assert "started again" in res.stderr, res.describe()
    assert inspect(app)["State"]["Running"]
    assert not os.path.exists(os.path.join(refit.state_dir, "stopped-dependents.json"))
    res = refit.run("update", "--scope", swapenv.scope, config=config, timeout=180)
    assert res.rc == 0, res.describe()
    ins = inspect(app)
    assert ins["State"]["Running"], ins["State"]
    assert ins["HostConfig"]["NetworkMode"] == "container:" + inspect(vpn)["Id"]
    reaches(client, 8081, version)


def test_killed_after_the_provider_passed_its_gate_followers_are_moved_by_recovery(
        swapenv, image_factory, plain_registry, refit):
    """SIGKILL once the provider's swap is past its gate (removing-old), before
    its followers were moved: the next run's recovery finishes the provider's
    swap and then moves its followers onto the new provider (they were
    stopped for the swap; they run again there), as the cut pass would have."""
    vpn_img, app_img, vpn, app, client = vpn_and_app(swapenv, image_factory, plain_registry, "vpn-c")
    version = docker("exec", app, "cat", "/version").strip()
    old_vpn, old_app = inspect(vpn)["Id"], inspect(app)["Id"]
    image_factory.publish_new_version(vpn_img)
    config = "state_dir: %s\n%s" % (refit.state_dir, FAST_CONFIG)
    res = refit.run("update", "--scope", swapenv.scope, config=config, timeout=180,
                    env={"REFIT_TEST_CRASH_AT": "update:removing-old"})
    assert res.rc == -9, res.describe()
    assert len(os.listdir(os.path.join(refit.state_dir, "ops"))) == 1
    res = refit.run("update", "--scope", swapenv.scope, config=config, timeout=180)
    assert res.rc == 0, res.describe()
    assert os.listdir(os.path.join(refit.state_dir, "ops")) == []
    new_vpn = inspect(vpn)["Id"]
    assert new_vpn != old_vpn, res.describe()
    ins = inspect(app)
    assert ins["Id"] != old_app, "the follower was not recreated\n%s" % res.describe()
    assert ins["HostConfig"]["NetworkMode"] == "container:" + new_vpn, ins["HostConfig"]["NetworkMode"]
    assert ins["State"]["Running"], "%s\n%s" % (ins["State"], res.describe())
    recs = [r for r in history(refit, app) if r.get("kind") == "follow"]
    assert recs and recs[-1].get("outcome") == "updated", recs
    reaches(client, 8081, version)


def test_follower_recovered_after_its_tag_moved_runs_what_the_tag_names(
        swapenv, image_factory, plain_registry, refit):
    """SIGKILL during a follower's recreate, and its tag moved before the next
    run (a newer image pulled under it): its old container can never run
    again, so the recovery recreates it from what the tag names now instead
    of refusing the create for the moved tag and leaving it stopped."""
    vpn_img, app_img, vpn, app, client = vpn_and_app(swapenv, image_factory, plain_registry, "vpn-t")
    image_factory.publish_new_version(vpn_img)
    config = "state_dir: %s\n%s" % (refit.state_dir, FAST_CONFIG)
    res = refit.run("update", "--scope", swapenv.scope, config=config, timeout=180,
                    env={"REFIT_TEST_CRASH_AT": "follow:starting"})
    assert res.rc == -9, res.describe()
    newer = image_factory.publish_new_version(app_img, keep_local_tag=False)
    res = refit.run("update", "--scope", swapenv.scope, config=config, timeout=180)
    assert res.rc == 0, res.describe()
    assert "names %s now" % newer.id[:19] in res.stderr, res.describe()
    assert os.listdir(os.path.join(refit.state_dir, "ops")) == []
    ins = inspect(app)
    assert ins["Image"] == newer.id and ins["State"]["Running"], (ins["Image"], ins["State"])
    assert ins["HostConfig"]["NetworkMode"] == "container:" + inspect(vpn)["Id"]
    reaches(client, 8081, docker("exec", app, "cat", "/version").strip())


def test_follower_keeps_its_image_when_its_tag_names_another(swapenv, image_factory, plain_registry, refit):
    """A follower whose tag names another local image (built here, or pulled
    by a pass cut short) while the follower itself is up to date: moved onto
    the new provider, it runs its own image still, and the tag names what it
    named before. (Created from the tag, it got the other image, the check
    refused it, and its old container could not start again: its provider
    was gone. Found by tests/e2e/test_chaos.py.)"""
    vpn_img, app_img, vpn, app, client = vpn_and_app(swapenv, image_factory, plain_registry, "vpn-k")
    other = image_factory.build(app_img.ref)  # the tag names a local build; the registry still serves app's
    assert other != app_img.id
    image_factory.publish_new_version(vpn_img)
    config = "state_dir: %s\n%s" % (refit.state_dir, FAST_CONFIG)
    res = refit.run("update", "--scope", swapenv.scope, "--json", config=config, timeout=180)
    assert res.rc == 0, res.describe()
    assert "recreated onto the new" in res.stderr, res.describe()
    assert os.listdir(os.path.join(refit.state_dir, "ops")) == []
    ins = inspect(app)
    assert ins["Image"] == app_img.id and ins["State"]["Running"], (ins["Image"], ins["State"], res.describe())
    assert ins["HostConfig"]["NetworkMode"] == "container:" + inspect(vpn)["Id"]
    assert docker("image", "inspect", "-f", "{{.Id}}", app_img.ref).strip() == other
    reaches(client, 8081, docker("exec", app, "cat", "/version").strip())
