"""Version tracking (docs/version-tracking.md): `refit.track` rules, tags
listed from the real registry (with Link pagination through a paging proxy,
as Debian's docker-registry 2.8 answers every tag at once), `refit update
--to TAG` and the API's target_version.

One repository holds 1.2.0, 1.9.0, 1.10.0, 2.0.0 and 2.1.0-rc.1 (each its own
image) and 30 more tags 0.1.N of the 1.2.0 manifest that fill pages."""

import hashlib
import json
import os
import re
import urllib.parse
import urllib.request

import pytest

from daemontools import Daemon
from harness import RegistryProxy
from swaptools import FAST_CONFIG, history, inspect

COMMAND = "/api/v1/management/orchestrator/update/command"
VERSIONS = ["1.2.0", "1.9.0", "1.10.0", "2.0.0", "2.1.0-rc.1"]
FILLERS = ["0.1.%d" % i for i in range(30)]
V2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def put_tag(registry, repo, src_tag, new_tag):
    """Tag an existing manifest again in the registry (a PUT of the same body)."""
    url = "%s/v2/%s/manifests/%s" % (registry.url, repo, src_tag)
    req = urllib.request.Request(url, headers={"Accept": V2_MANIFEST})
    with urllib.request.urlopen(req, timeout=10) as r:
        body, ctype = r.read(), r.headers["Content-Type"]
    req = urllib.request.Request("%s/v2/%s/manifests/%s" % (registry.url, repo, new_tag), data=body,
                                 method="PUT", headers={"Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201
    return "sha256:" + hashlib.sha256(body).hexdigest()


class PagingProxy(RegistryProxy):
    """The plain registry behind a proxy that answers tags/list in pages of
    ?n= tags (sorted, after ?last=) with a Link header to the next page, as
    distribution 3, Docker Hub and ghcr.io do.  Everything else is forwarded."""

    def _forward2(self, req, method):
        u = urllib.parse.urlsplit(req.path)
        if not u.path.endswith("/tags/list") or method != "GET":
            return super()._forward2(req, method)
        q = urllib.parse.parse_qs(u.query)
        with urllib.request.urlopen(self.upstream.url + u.path, timeout=10) as r:
            data = json.loads(r.read())
        tags = sorted(data.get("tags") or [])
        if "last" in q:
            tags = [t for t in tags if t > q["last"][0]]
        n = int(q["n"][0]) if "n" in q else len(tags)
        page, rest = tags[:n], tags[n:]
        body = json.dumps({"name": data["name"], "tags": page}).encode()
        with self.lock:
            self.log.append((method, req.path, 200))
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        if rest:
            req.send_header("Link", '<%s?n=%d&last=%s>; rel="next"'
                            % (u.path, n, urllib.parse.quote(page[-1])))
        req.end_headers()
        req.wfile.write(body)


@pytest.fixture(scope="module")
def tagged(image_factory, plain_registry):
    """{tag: Image} of one repository on the plain registry, fillers included."""
    repo = image_factory.unique_repo("track")
    imgs = image_factory.make_many([{"registry": plain_registry, "repo": repo, "tag": t}
                                    for t in VERSIONS])
    out = {i.tag: i for i in imgs}
    for t in FILLERS:
        put_tag(plain_registry, repo, "1.2.0", t)
    return out


@pytest.fixture(scope="module")
def paging_proxy(plain_registry):
    p = PagingProxy(plain_registry, strip_head_digest=False).start()
    yield p
    p.stop()


def config(refit, extra=""):
    return "state_dir: %s\n%s%s" % (refit.state_dir, FAST_CONFIG, extra)


def run_json(refit, *args, extra=""):
    res = refit.run(*args, config=config(refit, extra), timeout=150)
    data = None
    if res.stdout.strip().startswith("{"):
        data = {c["name"]: c for c in json.loads(res.stdout)["containers"]}
    return res, data


def image_of(name):
    ins = inspect(name)
    assert ins is not None, "%s is gone" % name
    return ins["Config"]["Image"], ins["Image"], ins["Id"]


def test_track_rules_pick_and_move(refit, scope, scoped, containers, tagged):
    """semver, semver:^1 and regex: end on 2.0.0, 1.10.0 and 1.9.0 (numeric
    order, no pre-release, never a downgrade); digest stays; a bad rule is that
    container's error and changes nothing; history records both references."""
    base = tagged["1.2.0"]
    repo = base.name
    names = {
        "semver": containers.run(base, labels=scoped({"refit.track": "semver"}), hint="sv"),
        "caret": containers.run(base, labels=scoped({"refit.track": "semver:^1"}), hint="caret"),
        "regex": containers.run(base, labels=scoped({"refit.track": r"regex:^1\.(2|9)\."}), hint="re"),
        "digest": containers.run(tagged["1.9.0"], labels=scoped(), hint="dg"),
        "top": containers.run(tagged["2.0.0"], labels=scoped({"refit.track": "semver:~2"}), hint="top"),
        "bad": containers.run(base, labels=scoped({"refit.track": "semver:^x"}), hint="bad"),
    }
    before = {k: image_of(n) for k, n in names.items()}

    chk = refit.check_json(scope=scope, config=config(refit))
    assert chk.rc == 1, chk.describe()   # the bad rule
    want = {"semver": "2.0.0", "caret": "1.10.0", "regex": "1.9.0"}
    for k, tag in want.items():
        e = chk[names[k]]
        assert e["status"] == "update-available", chk.describe()
        assert e["target_tag"] == tag, chk.describe()
        assert e["target_image"] == "%s:%s" % (repo, tag), chk.describe()
        assert e["latest_digest"] == tagged[tag].digest, chk.describe()
    assert chk[names["digest"]]["status"] == "up-to-date", chk.describe()
    assert "target_tag" not in chk[names["digest"]], chk.describe()
    assert chk[names["top"]]["status"] == "up-to-date", chk.describe()   # 2.1.0-rc.1 is not for a release
    assert chk[names["top"]]["target_tag"] == "2.0.0", chk.describe()
    bad = chk[names["bad"]]
    assert bad["status"] == "error" and "refit.track" in bad["error"] and "^x" in bad["error"], chk.describe()
    # the text table says where they go
    res = refit.run("check", "--scope", scope, config=config(refit))
    assert re.search(r"moves to tag 2\.0\.0 \(%s:2\.0\.0\)" % re.escape(repo), res.stdout), res.describe()

    res, out = run_json(refit, "update", "--json", "--scope", scope)
    assert res.rc == 1, res.describe()   # the bad rule failed; the others moved
    for k, tag in want.items():
        assert out[names[k]]["status"] == "updated", res.describe()
        img, img_id, cid = image_of(names[k])
        assert img == "%s:%s" % (repo, tag), res.describe()
        assert img_id == tagged[tag].id, res.describe()
        assert cid != before[k][2]
    assert out[names["bad"]]["status"] == "failed", res.describe()
    for k in ("bad", "digest", "top"):
        assert image_of(names[k]) == before[k], "%s changed\n%s" % (k, res.describe())

    rec = [r for r in history(refit) if r.get("container") == names["semver"]]
    assert rec and rec[-1]["outcome"] == "updated", rec
    assert rec[-1]["image"] == "%s:2.0.0" % repo and rec[-1]["old_image"] == base.ref, rec[-1]
    assert rec[-1]["old_digest"] == base.digest and rec[-1]["new_digest"] == tagged["2.0.0"].digest

    # nothing higher now: they stay, and say on which tag
    chk = refit.check_json(scope=scope, config=config(refit), names=[names[k] for k in want])
    assert chk.rc == 0, chk.describe()
    for k, tag in want.items():
        assert chk[names[k]]["status"] == "up-to-date" and chk[names[k]]["target_tag"] == tag, chk.describe()


def test_pinned_container_with_a_rule_moves(refit, scope, scoped, containers, tagged):
    """image@sha256 is pinned, but a version rule says where to go."""
    base = tagged["1.2.0"]
    pinned = containers.run(base.pinned_ref, labels=scoped(), hint="pin")
    ruled = containers.run("%s:1.2.0@%s" % (base.name, base.digest),
                           labels=scoped({"refit.track": "semver:^1"}), hint="pinrule")
    chk = refit.check_json(scope=scope, config=config(refit))
    assert chk[pinned]["status"] == "pinned", chk.describe()
    assert chk[ruled]["status"] == "update-available" and chk[ruled]["target_tag"] == "1.10.0", chk.describe()
    res, out = run_json(refit, "update", "--json", "--scope", scope)
    assert res.rc == 0, res.describe()
    assert image_of(ruled)[:2] == ("%s:1.10.0" % base.name, tagged["1.10.0"].id)
    assert image_of(pinned)[0] == base.pinned_ref


def test_update_to_tag(refit, scope, scoped, containers, tagged, shared_images):
    """--to moves the named containers after checking the tag exists; a
    missing tag (for any of them) changes nothing and exits 1 naming the tag
    and the container; --to without names or with a bad tag is a usage error."""
    base = tagged["1.2.0"]
    a = containers.run(base, labels=scoped(), hint="to-a")
    b = containers.run(base.pinned_ref, labels=scoped(), hint="to-b")
    other = containers.run(shared_images[0], labels=scoped(), hint="to-other")
    before = {n: image_of(n) for n in (a, b, other)}

    res = refit.run("update", "--to", "1.10.0", config=config(refit))
    assert res.rc == 2 and "--to" in res.stderr, res.describe()
    res = refit.run("update", "--to", "bad/tag", a, config=config(refit))
    assert res.rc == 2 and "tag" in res.stderr, res.describe()
    res = refit.run("check", "--to", "1.10.0", a, config=config(refit))
    assert res.rc == 2, res.describe()

    # a tag that does not exist
    res, out = run_json(refit, "update", "--json", "--scope", scope, "--to", "9.9.9", a)
    assert res.rc == 1, res.describe()
    assert "9.9.9" in out[a]["error"] and a in out[a]["error"], res.describe()
    assert image_of(a) == before[a]
    # missing for one of two: neither moves
    res, out = run_json(refit, "update", "--json", "--scope", scope, "--to", "1.9.0", a, other)
    assert res.rc == 1, res.describe()
    assert out[other]["status"] == "failed" and "1.9.0" in out[other]["error"], res.describe()
    assert out[a]["status"] == "skipped", res.describe()
    assert image_of(a) == before[a] and image_of(other) == before[other]
    # a name not managed here: nothing moves
    res, _ = run_json(refit, "update", "--json", "--scope", scope, "--to", "1.9.0", a, "no-such-container-x")
    assert res.rc == 1 and "no-such-container-x" in res.stderr, res.describe()
    assert image_of(a) == before[a]
    # dry run: says, changes nothing
    res, out = run_json(refit, "update", "--json", "--dry-run", "--scope", scope, "--to", "1.9.0", a)
    assert res.rc == 0 and out[a]["status"] == "update-available" and out[a]["target_tag"] == "1.9.0", \
        res.describe()
    assert image_of(a) == before[a]

    # an existing tag, a downgrade included (explicit), and a pinned container unpinned
    res, out = run_json(refit, "update", "--json", "--scope", scope, "--to", "1.9.0", a, b)
    assert res.rc == 0, res.describe()
    for n in (a, b):
        assert out[n]["status"] == "updated", res.describe()
        assert image_of(n)[:2] == ("%s:1.9.0" % base.name, tagged["1.9.0"].id)
    res, out = run_json(refit, "update", "--json", "--scope", scope, "--to", "1.2.0", a)
    assert res.rc == 0 and out[a]["status"] == "updated", res.describe()
    assert image_of(a)[:2] == (base.ref, base.id)
    assert image_of(other) == before[other]


def test_pagination(refit, scope, scoped, containers, tagged, paging_proxy, image_factory):
    """35 tags in pages of 10: refit follows the Link header to the last
    page, where 2.0.0 is, with ?n= from registry_page_size."""
    base = tagged["1.2.0"]
    ref = paging_proxy.ref(base.repo, "1.2.0")
    image_factory.pull(ref)
    name = containers.run(ref, labels=scoped({"refit.track": "semver"}), hint="page")
    mark = paging_proxy.mark()
    chk = refit.check_json(scope=scope, config=config(refit, "registry_page_size: 10\n"))
    assert chk.rc == 0, chk.describe()
    assert chk[name]["target_tag"] == "2.0.0", chk.describe()
    assert chk[name]["latest_digest"] == tagged["2.0.0"].digest, chk.describe()
    with paging_proxy.lock:
        pages = [p for m, p, _ in paging_proxy.log[mark:] if "/tags/list" in p]
    assert len(pages) == 4, pages
    assert all("n=10" in p for p in pages), pages
    assert sum("last=" in p for p in pages) == 3, pages

    # one page of 1000 holds them all; the default (100) too
    mark = paging_proxy.mark()
    chk = refit.check_json(scope=scope, config=config(refit, "registry_page_size: 1000\n"))
    assert chk[name]["target_tag"] == "2.0.0", chk.describe()
    with paging_proxy.lock:
        pages = [p for m, p, _ in paging_proxy.log[mark:] if "/tags/list" in p]
    assert pages == ["/v2/%s/tags/list?n=1000" % base.repo], pages
    res = refit.run("check", config="state_dir: %s\nregistry_page_size: 0\n" % refit.state_dir)
    assert res.rc == 2 and "registry_page_size" in res.stderr, res.describe()


def test_api_target_version(refit_bin, tmp_path, scope, scoped, containers, tagged):
    """target_version in the fleet command (action trigger) and in POST
    /api/v1/update moves the containers; a missing tag fails the operation
    and changes nothing; target_version with another action is a 400."""
    base = tagged["1.2.0"]
    name = containers.run(base, labels=scoped(), hint="api")
    d = Daemon(refit_bin, os.path.join(str(tmp_path), "d"), scope=scope)
    d.start()
    try:
        op = d.submit(COMMAND, {"action": "trigger", "target_version": "1.10.0", "containers": [name]})
        rec = d.wait_op(op, timeout=90)
        assert rec["state"] == "succeeded", rec
        assert image_of(name)[:2] == ("%s:1.10.0" % base.name, tagged["1.10.0"].id)
        entry = [c for c in rec["result"]["containers"] if c["name"] == name][0]
        assert entry["status"] == "updated" and entry["target_tag"] == "1.10.0", rec

        before = image_of(name)
        op = d.submit(COMMAND, {"action": "trigger", "target_version": "0.0.404", "containers": [name]})
        rec = d.wait_op(op, timeout=90)
        assert rec["state"] == "failed", rec
        assert "0.0.404" in json.dumps(rec["result"]), rec
        assert image_of(name) == before

        op = d.submit("/api/v1/update", {"containers": [name], "target_version": "2.0.0"})
        rec = d.wait_op(op, timeout=90)
        assert rec["state"] == "succeeded", rec
        assert image_of(name)[:2] == ("%s:2.0.0" % base.name, tagged["2.0.0"].id)

        for body in ({"action": "status", "target_version": "1.0.0"},
                     {"action": "trigger", "target_version": "a/b"},
                     {"action": "trigger", "target_version": ""},
                     {"action": "trigger", "target_version": 3}):
            r = d.curl("POST", COMMAND, body=body)
            assert r.status == 400 and "target_version" in r.json()["error"], r.describe()
        assert image_of(name)[:2] == ("%s:2.0.0" % base.name, tagged["2.0.0"].id)
    finally:
        d.stop()
