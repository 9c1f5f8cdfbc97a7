"""`refit rollback` and `refit history` (SPEC.md: History, rollback, crash
safety): back to the previous digest with the data, also when the previous
image is gone from the host (pulled again by digest); the history records
every update and rollback with its outcome."""

import re

import pytest

from harness import docker
from swaptools import (GOOD, hist_for, history, inspect, leftovers, pending_ops,
                       read_data, rollback, run_refit, same_digest, serving, update,
                       write_data)
from swaptools import common_pairs, swap_images, swapenv  # noqa: F401 (fixtures)

STRATEGIES = ["recreate", "blue-green", "alias"]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def rb_pairs(common_pairs, swap_images, plain_registry):
    """The session's pairs, and "gone" (its v1 is deleted by a test)."""
    pairs = dict(common_pairs)
    pairs.update(swap_images.pairs(plain_registry, {"gone": ("gone", GOOD, GOOD)}))
    return pairs


def start(swapenv, image, strategy, hint):
    net, _ = swapenv.network()
    vol = swapenv.volume()
    name = swapenv.name(hint)
    target = name + "-v2" if strategy == "alias" else name
    labels = {"refit.strategy": strategy}
    if strategy == "alias":
        labels["refit.rename-to"] = target
    swapenv.run(image, swapenv.managed(labels), name=name,
                extra=["--network", net, "--network-alias", "websvc",
                       "-v", "%s:/data" % vol, "-v", "/anon"])
    return name, target


def digests_of(image_id):
    return docker("inspect", "--format", "{{json .RepoDigests}}", image_id)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_rollback_after_good_update(strategy, refit, scope, swapenv, rb_pairs, swap_images):
    v1, v2 = rb_pairs["good"]
    swap_images.back_to(v1)
    name, target = start(swapenv, v1, strategy, "rb")
    assert serving(name) == "good v1"
    data = write_data(name, ["/data", "/anon"])
    res = update(refit, scope)
    assert res.rc == 0 and res[name].get("status") == "updated", res.describe()
    assert serving(target) == "good v2"
    updated = inspect(target)

    res = rollback(refit, scope, target)
    assert res.rc == 0, res.describe()
    cur = inspect(name)
    assert cur is not None, "nothing under %s after the rollback\n%s" % (name, res.describe())
    assert cur["Id"] != updated["Id"] and cur["State"]["Running"]
    assert cur["Image"] == v1.id and cur["Config"]["Image"] == v1.ref
    assert "%s@%s" % (v1.name, v1.digest) in digests_of(cur["Image"])
    assert serving(name) == "good v1"
    assert read_data(name, ["/data", "/anon"]) == data
    if strategy == "alias":
        assert inspect(target) is None, "alias rollback: %s is still there" % target
    assert inspect(updated["Id"]) is None
    assert leftovers(name) == [] and leftovers(target) == []
    assert swapenv.mine() == [cur["Id"]]
    assert pending_ops(refit) == []
    recs = history(refit)
    assert [(r.get("kind"), r.get("outcome")) for r in recs] == \
        [("update", "updated"), ("rollback", "updated")], recs
    rb = recs[1]
    assert rb.get("old_id") == updated["Id"] and rb.get("new_id") == cur["Id"], rb
    assert same_digest(rb.get("old_digest"), v2.digest), rb
    assert same_digest(rb.get("new_digest"), v1.digest), rb
    # the JSON says so too (checked last: the swap itself is what matters most)
    assert res.statuses() == {name if strategy != "alias" else target: "rolled-back"}, \
        res.describe()
    res.assert_clean_output()


def test_rollback_pulls_the_removed_image_by_digest(refit, scope, swapenv, rb_pairs,
                                                    swap_images, plain_registry):
    v1, v2 = rb_pairs["gone"]
    swap_images.back_to(v1)
    name, _ = start(swapenv, v1, "recreate", "gone")
    assert serving(name) == "gone v1"
    data = write_data(name, ["/data", "/anon"])
    res = update(refit, scope)
    assert res.rc == 0 and res[name].get("status") == "updated", res.describe()
    # the old image leaves the host (only this test's image, by its ID)
    users = docker("ps", "-aq", "--filter", "ancestor=%s" % v1.id).split()
    assert users == [], "v1 still used by %r" % users
    docker("rmi", v1.id)
    assert docker("image", "inspect", v1.id, check=False).strip() in ("", "[]")
    mark = plain_registry.mark()

    res = rollback(refit, scope, name)
    assert res.rc == 0, res.describe()
    cur = inspect(name)
    assert cur is not None and cur["State"]["Running"], res.describe()
    assert cur["Image"] == v1.id, "not the previous image"
    assert "%s@%s" % (v1.name, v1.digest) in digests_of(cur["Image"])
    assert serving(name) == "gone v1"
    assert read_data(name, ["/data", "/anon"]) == data
    assert leftovers(name) == [] and pending_ops(refit) == []
    # pulled by digest from the registry
    assert plain_registry.count("GET", r"^/v2/%s/manifests/%s$" % (re.escape(v1.repo), v1.digest),
                                since=mark) >= 1
    assert res.statuses() == {name: "rolled-back"}, res.describe()


def test_history_records_outcomes(refit, scope, swapenv, rb_pairs, swap_images):
    """A good update, a failed one (rolled back) and a rollback (--all), as
    `refit history --json [NAME]` shows them."""
    a1, a2 = rb_pairs["good"]
    b1, b2 = rb_pairs["unhealthy"]
    swap_images.back_to(a1)
    swap_images.back_to(b1)
    a, _ = start(swapenv, a1, "recreate", "ha")
    b, _ = start(swapenv, b1, "blue-green", "hb")
    a_old, b_old = inspect(a), inspect(b)
    serving(a)
    serving(b)

    res = update(refit, scope)
    assert res.rc == 1, res.describe()
    assert res.statuses() == {a: "updated", b: "rolled-back"}, res.describe()
    a_new = inspect(a)
    res = rollback(refit, scope, "--all")
    assert res.rc == 0, res.describe()
    assert inspect(a)["Image"] == a1.id and inspect(b)["Id"] == b_old["Id"]
    never = run_refit(refit, "rollback", "--json", b)   # b never updated
    assert never.rc == 1, never.describe()

    recs = history(refit)
    # one pass updates a and b in any order; the rollback comes last
    seen = [(r.get("container"), r.get("kind"), r.get("outcome")) for r in recs]
    assert sorted(seen[:2]) == sorted([(a, "update", "updated"), (b, "update", "rolled-back")]) \
        and seen[2:] == [(a, "rollback", "updated")], recs
    for r in recs:
        for key in ("id", "kind", "container", "strategy", "step", "old_id", "old_digest",
                    "new_digest", "image", "outcome", "started", "finished"):
            assert r.get(key), "history record without %s: %r" % (key, r)
        assert ISO.match(r["started"]) and ISO.match(r["finished"]), r
        assert r["started"] <= r["finished"]
        assert not any(k in r for k in ("old_inspect", "old_image_inspect", "spec_inspect")), \
            "history --json shows the kept inspects: %r" % sorted(r)
    ua, ub, ra = hist_for(recs, a, "update")[0], hist_for(recs, b)[0], recs[2]
    assert ua["strategy"] == "recreate" and ua.get("temp_name", "").startswith(a + "-refit-old-")
    assert ua["old_id"] == a_old["Id"] and ua["new_id"] == a_new["Id"]
    assert same_digest(ua["old_digest"], a1.digest) and same_digest(ua["new_digest"], a2.digest)
    assert ua["image"] == a1.ref and not ua.get("error")
    assert ub["strategy"] == "blue-green" and ub.get("temp_name", "").startswith(b + "-refit-new-")
    assert ub["old_id"] == b_old["Id"] and "unhealthy" in (ub.get("error") or "")
    assert same_digest(ub["new_digest"], b2.digest)
    assert ra["old_id"] == a_new["Id"] and ra["new_id"] == inspect(a)["Id"]
    assert same_digest(ra["old_digest"], a2.digest) and same_digest(ra["new_digest"], a1.digest)
    assert len({r["id"] for r in recs}) == 3
    # narrowed by name
    assert [r["id"] for r in history(refit, a)] == [ua["id"], ra["id"]]
    assert [r["id"] for r in history(refit, b)] == [ub["id"]]
    # the table
    text = run_refit(refit, "history")
    assert text.rc == 0 and a in text.stdout and b in text.stdout and "rolled-back" in text.stdout, \
        text.describe()
