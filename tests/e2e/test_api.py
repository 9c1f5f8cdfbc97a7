"""`refit daemon` and its management API (SPEC.md: Management API, Daemon;
docs/api.md), end to end: the real binary as a daemon on a loopback port,
requests made with curl, real containers swapped on a real engine.

Every daemon has its own state dir, config file, token and scope (see
daemontools.Daemon); with a schedule that does not fire during the test, a
daemon changes nothing unless a request asks it to.
"""

import base64
import json
import math
import os
import re
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from swaptools import make_exiting, stale_pair

from daemontools import Daemon, NotifySocket, new_token, port_accepts, raw_http
from harness import RUN_LABEL, EngineEvents, free_port, refit_version, wait_for
from swaptools import engine_get, inspect, list_containers, same_digest

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
COMMAND = "/api/v1/management/orchestrator/update/command"
# ignores SIGTERM (PID 1 without a trap): `docker stop` waits the whole stop timeout
SLOW_STOP_CMD = ["/bin/sh", "-c", "while :; do sleep 1; done"]

# One stale image per key: its own repository, v1 on the host, v2 pushed
# under the same tag.  "bad": v2's command exits at once.
PAIRS = ["sync-a", "sync-b", "bad", "cmd-a", "cmd-b", "api-a", "api-b", "pause", "term", "reload", "killed"]


# --------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def base_pair(image_factory, plain_registry):
    """Builds on the plain registry: v1, v2, v3, and a "bad" one whose
    command exits at once (it never passes the health gate)."""
    repo = image_factory.unique_repo("api-base")
    with ThreadPoolExecutor(max_workers=4) as ex:
        bad = ex.submit(make_exiting, image_factory, plain_registry, repo, "bad")
        good = image_factory.make_many([{"registry": plain_registry, "repo": repo, "tag": t}
                                        for t in ("latest", "v2", "v3")])
        return tuple(good) + (bad.result(),)


@pytest.fixture(scope="module")
def pairs(image_factory, plain_registry, base_pair):
    """{key: (v1, v2)}: v1 running material on the host, v2 the registry's
    newer image under the same reference (made in parallel, once)."""
    v1, v2, v3, bad = base_pair
    # api-b's new image differs from api-a's: one pass swaps both, and
    # refit pulls each new digest only once (see test_same_new_digest_...)
    newer = {"bad": bad, "api-b": v3}
    with ThreadPoolExecutor(max_workers=4) as ex:
        futs = {k: ex.submit(stale_pair, image_factory, plain_registry, v1,
                             newer.get(k, v2), "api-" + k) for k in PAIRS}
        return {k: f.result() for k, f in futs.items()}



# --------------------------------------------------------------------------
# helpers

def repo_digests(image_id):
    status, data = engine_get("/images/%s/json" % image_id)
    assert status == 200, "image %s: %s" % (image_id, status)
    return data.get("RepoDigests") or []


class On:
    """on(name, image): NAME exists, runs, and is on IMAGE (its ID and its
    repo digest); false values say what was seen instead."""

    def __init__(self, ok, seen):
        self.ok = ok
        self.seen = seen

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return "<%s: %s>" % ("on" if self.ok else "NOT on", self.seen)


def on(name, image):
    ins = inspect(name)
    if ins is None:
        return On(False, "no container %s" % name)
    digests = repo_digests(ins["Image"])
    ok = (ins["State"]["Running"] and ins["Image"] == image.id and
          "%s@%s" % (image.name, image.digest) in digests)
    return On(ok, "%s running=%s image=%s (want %s) digests=%s (want %s@%s)" % (
        name, ins["State"]["Running"], ins["Image"], image.id, digests, image.name,
        image.digest))


def entries(rec):
    """An operation record's per-container results, by name."""
    res = rec.get("result") or {}
    assert isinstance(res.get("containers"), list), "no result.containers in %r" % rec
    return {c["name"].lstrip("/"): c for c in res["containers"]}


def statuses(rec):
    return {n: c.get("status") for n, c in entries(rec).items()}


def check_record(rec, op_id, kind, state):
    assert rec.get("id") == op_id and rec.get("kind") == kind and rec.get("state") == state, rec
    for k in ("created", "started", "finished"):
        assert ISO.match(rec.get(k) or ""), "%s: %r" % (k, rec)
    assert rec["created"] <= rec["started"] <= rec["finished"], rec


def exact_named(name):
    """Containers (all states) called exactly NAME."""
    return [(i, n) for i, n in list_containers(name=[name]) if n == name]


# --------------------------------------------------------------------------
# Prometheus text format (0.0.4), parsed strictly

METRIC_RE = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_RE = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(r"^(%s)(?:\{((?:%s)(?:,(?:%s))*,?)?\})? (\S+)(?: (-?\d+))?$"
                       % (METRIC_RE, LABEL_RE, LABEL_RE))
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_value(v, where):
    if v in ("+Inf", "Inf"):
        return math.inf
    if v == "-Inf":
        return -math.inf
    if v == "NaN":
        return math.nan
    assert re.match(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$", v), "bad value %r: %s" % (v, where)
    return float(v)


def parse_labels(text):
    out = {}
    for m in re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"', text or ""):
        assert m.group(1) not in out, "label %s twice" % m.group(1)
        out[m.group(1)] = m.group(2)
    return out


class Metrics:
    """families: name -> {"type", "help", "samples": [(sample name, labels, value)]}."""

    def __init__(self, text):
        self.text = text
        self.families = {}
        assert text.endswith("\n"), "the exposition does not end with a newline"
        current = None
        closed = set()
        seen = set()
        for n, line in enumerate(text.split("\n")[:-1], 1):
            where = "line %d: %r" % (n, line)
            assert line.strip(), "empty line: " + where
            if line.startswith("#"):
                m = re.match(r"^# (HELP|TYPE) (%s) (.*)$" % METRIC_RE, line)
                if not m:
                    assert not line.startswith(("# HELP", "# TYPE")), "malformed: " + where
                    continue
                kind, name, rest = m.groups()
                fam = self.families.setdefault(name, {"type": None, "help": None, "samples": []})
                assert name not in closed, "%s after its samples ended: %s" % (kind, where)
                if kind == "HELP":
                    assert fam["help"] is None, "second HELP: " + where
                    assert rest.strip(), "empty HELP: " + where
                    fam["help"] = rest
                else:
                    assert fam["type"] is None, "second TYPE: " + where
                    assert not fam["samples"], "TYPE after samples: " + where
                    assert rest in TYPES, "unknown type: " + where
                    fam["type"] = rest
                if current and current != name:
                    closed.add(current)
                current = name
                continue
            m = SAMPLE_RE.match(line)
            assert m, "not a sample line: " + where
            sname, labels_text, value, _ts = m.groups()
            fname = self.family_of(sname)
            assert fname, "sample without a TYPE: " + where
            if current != fname:
                assert fname not in closed, "samples of %s are not together: %s" % (fname, where)
                if current:
                    closed.add(current)
                current = fname
            labels = parse_labels(labels_text)
            key = (sname, tuple(sorted(labels.items())))
            assert key not in seen, "duplicate sample: " + where
            seen.add(key)
            v = parse_value(value, where)
            fam = self.families[fname]
            if fam["type"] == "counter":
                assert v >= 0 and not math.isnan(v), "negative counter: " + where
            self.families[fname]["samples"].append((sname, labels, v))
        for name, fam in self.families.items():
            assert fam["type"], "%s has HELP but no TYPE" % name
            assert fam["help"], "%s has no HELP" % name
            assert fam["samples"], "%s has no samples" % name
            if fam["type"] == "histogram":
                self._check_histogram(name, fam)

    def family_of(self, sname):
        if sname in self.families and self.families[sname]["type"] not in ("histogram", "summary"):
            return sname
        for suffix in ("_bucket", "_sum", "_count"):
            base = sname[:-len(suffix)]
            if sname.endswith(suffix) and self.families.get(base, {}).get("type") == "histogram":
                return base
        return None

    @staticmethod
    def _check_histogram(name, fam):
        buckets, sums, counts = [], [], []
        for sname, labels, v in fam["samples"]:
            if sname == name + "_bucket":
                assert set(labels) == {"le"}, "%s bucket labels %r" % (name, labels)
                buckets.append((parse_value(labels["le"], name), v))
            elif sname == name + "_sum":
                sums.append(v)
            else:
                assert sname == name + "_count", sname
                counts.append(v)
        assert len(sums) == 1 and len(counts) == 1, "%s: one _sum and one _count" % name
        assert buckets and buckets[-1][0] == math.inf, "%s: no +Inf bucket last" % name
        les = [b[0] for b in buckets]
        assert les == sorted(les) and len(set(les)) == len(les), "%s: le not increasing" % name
        vals = [b[1] for b in buckets]
        assert vals == sorted(vals), "%s: buckets not cumulative %r" % (name, buckets)
        assert vals[-1] == counts[0], "%s: +Inf bucket %s != _count %s" % (name, vals[-1],
                                                                         counts[0])
        assert all(float(x).is_integer() for x in vals + counts), name
        assert sums[0] >= 0 and (counts[0] > 0 or sums[0] == 0), "%s: _sum %s" % (name, sums[0])

    def value(self, sname, **labels):
        fam = self.families.get(self.family_of(sname) or sname)
        assert fam, "no metric %s in\n%s" % (sname, self.text)
        got = [v for n, lab, v in fam["samples"] if n == sname and lab == labels]
        assert len(got) == 1, "%s%r: %r" % (sname, labels, got)
        return got[0]

    def type_of(self, name):
        return self.families[name]["type"]


def metrics(d):
    return Metrics(d.metrics_text())


def test_metrics_parser_rejects_bad_text():
    """The strict parser itself (so that the daemon tests can trust it)."""
    good = ("# HELP a_total A.\n# TYPE a_total counter\na_total 3\n"
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
            "h_sum 1.5\nh_count 2\n")
    m = Metrics(good)
    assert m.value("a_total") == 3 and m.value("h_count") == 2
    bad = [
        good.replace("a_total 3", "a_total three"),                      # value
        good.replace("# TYPE a_total counter\n", ""),                     # no TYPE
        good.replace("h_count 2", "h_count 3"),                          # +Inf != count
        good.replace('h_bucket{le="1"} 1', 'h_bucket{le="1"} 3'),        # not cumulative
        good.replace('{le="+Inf"}', '{le="2"}'),                          # no +Inf
        good + "a_total 4\n",                                             # duplicate, split
        good.replace("a_total 3", "a_total{x=y} 3"),                      # label syntax
        good.replace("a_total 3", "a_total -1"),                          # negative counter
        good.rstrip("\n"),                                                # no final newline
    ]
    for text in bad:
        with pytest.raises(AssertionError):
            Metrics(text)


# --------------------------------------------------------------------------
# 1, 2: endpoints, authentication, request errors

def test_health_is_open_and_everything_else_needs_the_token(daemons, scope):
    d = daemons(scope=scope).start()
    r = d.curl("GET", "/health", token=None)
    assert r.status == 200 and r.headers.get("content-type", "").startswith("application/json"), \
        r.describe()
    h = r.json()
    assert h.get("status") == "ok" and h.get("paused") is False, h
    assert h.get("version") == refit_version(d.binary), h     # what `refit version` says
    # a wrong token does not matter on /health
    assert d.curl("GET", "/health", token="wrong-" + d.token).status == 200

    # the right token: each read-only endpoint answers
    r = d.curl("GET", "/metrics")
    assert r.status == 200 and r.headers.get("content-type", "").startswith("text/plain"), \
        r.describe()
    Metrics(r.body)
    r2 = d.curl("GET", "/v1/metrics")
    assert r2.status == 200 and Metrics(r2.body).families.keys() == Metrics(r.body).families.keys()
    assert d.get_json("/api/v1/history") == {"history": []}
    assert d.get_json("/api/v1/containers") == {"containers": []}   # nothing in this scope

    # five refused requests (the sixth would be answered late)
    refused = [
        d.curl("GET", "/metrics", token=None),                                # no header
        d.curl("GET", "/api/v1/history", token=d.token[:-1]),                 # a prefix
        d.curl("POST", "/api/v1/pause", token=d.token + "x"),                 # longer
        d.curl("POST", "/v1/update", token=None, raw_auth="Basic " +
               base64.b64encode(("x:" + d.token).encode()).decode()),         # Basic
        d.curl("POST", COMMAND, token=new_token(), body={"action": "pause"}),  # another
    ]
    for r in refused:
        assert r.status == 401, r.describe()
        assert "error" in r.json(), r.describe()
    # ... and none of them did anything
    assert d.curl("GET", "/health", token=None).json()["paused"] is False
    assert not os.path.exists(os.path.join(d.state_dir, "paused"))
    m = metrics(d)
    assert m.value("refit_passes_total") == 0 and m.value("refit_paused") == 0
    # after 5 failures within a minute, the next 401 comes late; the right token does not
    t0 = time.monotonic()
    r = d.curl("GET", "/api/v1/history", token="nope-nope-nope-nope")
    late = time.monotonic() - t0
    assert r.status == 401 and late >= 0.9, "6th failure answered in %.2fs" % late
    t0 = time.monotonic()
    assert d.curl("GET", "/api/v1/history").status == 200
    assert time.monotonic() - t0 < 0.9
    d.stop()


def test_request_errors(daemons, scope):
    d = daemons(scope=scope).start()

    def err(method, path, status, body=None, headers=(), token="__default__"):
        r = d.curl(method, path, body=body, headers=headers, token=token)
        assert r.status == status, r.describe()
        e = r.json().get("error")
        assert isinstance(e, str) and e, r.describe()
        return r, e

    # 413: a body over 64 KiB (its Content-Length says so)
    big = json.dumps({"containers": ["a" * 100] * 700})
    assert len(big) > 64 * 1024
    _, e = err("POST", "/api/v1/update", 413, body=big)
    assert "64 KiB" in e
    # exactly 64 KiB is fine as far as size goes (then 400: not JSON we know)
    _, e = err("POST", "/api/v1/update", 400, body="[" + " " * (64 * 1024 - 2) + "]")
    assert "object" in e
    # 400 with a message that names the problem
    _, e = err("POST", "/api/v1/update", 400, body='{"containers": [')
    assert "invalid JSON" in e
    _, e = err("POST", "/api/v1/update", 400, body={"containerz": ["x"]})
    assert "containerz" in e and "unknown field" in e
    _, e = err("POST", "/api/v1/update", 400, body={"dry_run": "yes"})
    assert "dry_run" in e
    _, e = err("POST", "/api/v1/update", 400, body={"containers": ["../etc/passwd"]})
    assert "containers" in e
    _, e = err("POST", "/api/v1/update", 400, body='{"dry_run": true, "dry_run": false}')
    assert "invalid JSON" in e
    _, e = err("POST", COMMAND, 400, body={"action": "explode"})
    assert "action" in e and "trigger" in e
    _, e = err("POST", COMMAND, 400, body={"containers": ["web"]})
    assert "action" in e and "missing" in e
    _, e = err("POST", COMMAND, 400, body={"action": "trigger", "target_version": "v2/x"})
    assert "target_version" in e and "tag" in e
    _, e = err("POST", COMMAND, 400, body={"action": "rollback",
                                           "migration_config": {"rename_containers": True}})
    assert "migration_config" in e and "trigger" in e
    _, e = err("POST", COMMAND, 400, body={"action": "trigger", "migration_config": {
        "rename_containers": False, "rename_map": {"aa": "bb"}}})
    assert "rename_containers" in e
    _, e = err("POST", COMMAND, 400, body={"action": "trigger",
                                           "migration_config": {"rollback_on_failure": False}})
    assert "rollback_on_failure" in e
    _, e = err("POST", COMMAND, 400, body={"action": "status", "migration_config": {"zz": 1}})
    assert 'unknown field "zz"' in e
    _, e = err("POST", "/api/v1/rollback", 400, body={})
    assert "all" in e
    _, e = err("POST", "/v1/update?image=%20bad%20ref", 400)
    assert "image" in e
    # rollback_on_failure: true is accepted (the status action changes nothing)
    r = d.curl("POST", COMMAND, body={"action": "status",
                                      "migration_config": {"rollback_on_failure": True}})
    assert r.status == 200, r.describe()
    # 415: not JSON
    _, e = err("POST", "/api/v1/update", 415, body="containers=x",
               headers=["Content-Type: application/x-www-form-urlencoded"])
    assert "json" in e.lower()
    # 405 with Allow
    for method, path, allow in [("GET", "/api/v1/update", "POST"), ("POST", "/health", "GET"),
                                ("DELETE", "/api/v1/operations/0123456789abcdef", "GET"),
                                ("PUT", COMMAND, "POST"), ("PUT", "/v1/update", "GET, POST")]:
        r, _ = err(method, path, 405, body={} if method in ("POST", "PUT") else None)
        assert r.headers.get("allow") == allow, r.describe()
    # 404: an unknown operation, an ID that is not one, an unknown path
    _, e = err("GET", "/api/v1/operations/0123456789abcdef", 404)
    assert "operation" in e
    err("GET", "/api/v1/operations/nothex", 404)
    err("GET", "/api/v1/operations/", 404)
    err("GET", "/api/v2/things", 404)
    # nothing was queued or run by any of that
    st = d.post_json(COMMAND, {"action": "status"}, status=200).json()
    assert st == {"running": None, "queued": 0, "paused": False, "last": None}, st
    assert metrics(d).value("refit_passes_total") == 0
    d.stop()


def test_oversized_body_is_refused_before_it_is_sent(daemons, scope):
    """docs/api.md: "a larger Content-Length is answered 413 without reading
    the body": the headers alone get the answer, and a client that asks
    `Expect: 100-continue` is not invited to send 10 MiB."""
    d = daemons(scope=scope).start()
    head = ("POST /api/v1/update HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
            "Content-Length: 10485760\r\n" % d.token)
    try:
        got, _ = raw_http(d.port, (head + "Expect: 100-continue\r\n\r\n").encode(),
                          timeout=3, head_only=True)
        assert got.startswith(b"HTTP/1.1 413"), \
            "Expect: 100-continue with 10 MiB announced: %r" % got[:200]
        got, _ = raw_http(d.port, (head + "\r\n").encode(), timeout=3, head_only=True)
        assert got.startswith(b"HTTP/1.1 413"), \
            "no 413 within 3 s for the headers alone: %r" % got[:200]
    finally:
        assert d.alive()
        d.stop()


def without_summary(rec):
    """/v1/update's answer less what it adds to the operation's record."""
    return {k: v for k, v in rec.items()
            if k not in ("summary", "timing", "timestamp", "api_version", "operation")}


# --------------------------------------------------------------------------
# 1, 6: Watchtower's synchronous POST /v1/update, and /metrics counting it

def test_watchtower_update_answers_when_done_and_metrics_count_it(
        daemons, scope, scoped, containers, pairs, base_pair):
    a1, a2 = pairs["sync-a"]
    b1, b2 = pairs["sync-b"]
    x1, _ = pairs["bad"]
    a, b, bad, fresh = containers.run_many([
        dict(image=a1, labels=scoped(), hint="sync-a"), dict(image=b1, labels=scoped(), hint="sync-b"),
        dict(image=x1, labels=scoped(), hint="sync-bad"),
        dict(image=base_pair[1], labels=scoped(), hint="sync-fresh")])
    b_id, bad_id, fresh_id = inspect(b)["Id"], inspect(bad)["Id"], inspect(fresh)["Id"]
    d = daemons(scope=scope).start()

    m = metrics(d)
    for name in ("refit_containers_scanned_total", "refit_containers_updated_total",
                 "refit_containers_failed_total", "refit_containers_rolled_back_total",
                 "refit_passes_total", "refit_passes_skipped_total", "watchtower_scans_total",
                 "watchtower_scans_skipped"):
        assert m.type_of(name) == "counter" and m.value(name) == 0, name
    for name in ("refit_paused", "watchtower_containers_scanned", "watchtower_containers_updated",
                 "watchtower_containers_failed"):
        assert m.type_of(name) == "gauge" and m.value(name) == 0, name
    for name in ("refit_pass_duration_seconds", "refit_swap_duration_seconds"):
        assert m.type_of(name) == "histogram" and m.value(name + "_count") == 0, name
    for kind in ("ping", "token", "manifest"):
        assert m.value("refit_registry_requests_total", kind=kind) == 0

    # ?image= narrows the pass to the containers of that repository
    r = d.curl("POST", "/v1/update?image=%s" % a1.name)
    assert r.status == 200, r.describe()
    assert on(a, a2), "the answer came before %s was updated" % a    # checked at once
    assert inspect(b)["Id"] == b_id and on(b, b1), "%s changed: not one of the images" % b
    assert inspect(bad)["Id"] == bad_id
    rec = r.json()
    assert rec.get("kind") == "update" and rec.get("state") == "succeeded", rec
    assert statuses(rec) == {a: "updated"}, rec
    assert same_digest(entries(rec)[a].get("latest_digest"), a2.digest), rec
    assert same_digest(entries(rec)[a].get("current_digest"), a1.digest), rec
    assert d.op(rec["id"]) == without_summary(rec)     # the record GET /api/v1/operations/ID gives
    assert rec["operation"] == rec["id"] and rec["api_version"] == "v1"
    assert rec["summary"] == {"scanned": 1, "updated": 1, "failed": 0, "rolled_back": 0, "skipped": 0}, rec
    assert rec["timing"]["duration_ms"] >= 1000 and rec["timing"]["duration"].endswith("s"), rec
    a_id = inspect(a)["Id"]
    m = metrics(d)
    assert m.value("refit_containers_updated_total") == 1
    assert m.value("refit_containers_scanned_total") == 1
    assert m.value("refit_passes_total") == 1 and m.value("watchtower_scans_total") == 1
    assert m.value("watchtower_containers_updated") == 1
    assert m.value("watchtower_containers_scanned") == 1
    assert m.value("refit_pass_duration_seconds_count") == 1
    assert m.value("refit_pass_duration_seconds_sum") >= 1     # a health gate of 1 s
    assert m.value("refit_swap_duration_seconds_count") == 1
    assert m.value("refit_registry_requests_total", kind="manifest") == 1

    # the whole scope: one updated, one rolled back (its new image's command
    # exits), two current: 500, once all of it is done
    r = d.curl("POST", "/v1/update", max_time=120)
    assert r.status == 500, "a pass with a failed container: " + r.describe()
    assert on(b, b2), "the answer came before %s was updated" % b
    assert inspect(bad)["Id"] == bad_id and on(bad, x1), "%s not restored" % bad
    assert inspect(a)["Id"] == a_id and inspect(fresh)["Id"] == fresh_id
    rec = r.json()
    assert rec.get("state") == "failed" and rec.get("error"), rec
    assert statuses(rec) == {a: "up-to-date", b: "updated", bad: "rolled-back",
                             fresh: "up-to-date"}, rec
    assert d.op(rec["id"]) == without_summary(rec)
    assert rec["summary"] == {"scanned": 4, "updated": 1, "failed": 1, "rolled_back": 1, "skipped": 0}, rec

    m = metrics(d)
    assert m.value("refit_containers_scanned_total") == 5
    assert m.value("refit_containers_updated_total") == 2
    assert m.value("refit_containers_rolled_back_total") == 1
    assert m.value("refit_containers_failed_total") == 1
    assert m.value("refit_passes_total") == 2 and m.value("watchtower_scans_total") == 2
    assert m.value("watchtower_containers_scanned") == 4
    assert m.value("watchtower_containers_updated") == 1
    assert m.value("watchtower_containers_failed") == 1
    assert m.value("refit_pass_duration_seconds_count") == 2
    assert m.value("refit_swap_duration_seconds_count") == 3   # the rolled-back one too
    # one manifest request per distinct reference and pass
    assert m.value("refit_registry_requests_total", kind="manifest") == 5
    assert m.value("refit_registry_requests_total", kind="token") == 0   # a plain registry
    assert m.value("refit_passes_skipped_total") == 0

    # paused: 409, no pass
    assert d.post_json("/api/v1/pause", status=200).json() == {"paused": True}
    assert metrics(d).value("refit_paused") == 1
    r = d.curl("POST", "/v1/update")
    assert r.status == 409 and "paused" in r.json().get("error", ""), r.describe()
    assert metrics(d).value("refit_passes_total") == 2
    d.stop()


# --------------------------------------------------------------------------
# 4: the seed's command

def test_command_trigger_status_pause_resume(daemons, scope, scoped, containers, pairs,
                                             base_pair):
    c1, c2 = pairs["cmd-a"]
    e1, e2 = pairs["cmd-b"]
    one, two, fresh = containers.run_many([
        dict(image=c1, labels=scoped(), hint="cmd-1"), dict(image=e1, labels=scoped(), hint="cmd-2"),
        dict(image=base_pair[1], labels=scoped(), hint="cmd-fresh")])
    two_id, fresh_id = inspect(two)["Id"], inspect(fresh)["Id"]
    d = daemons(scope=scope).start()

    # trigger, narrowed to one container
    op = d.submit(COMMAND, {"action": "trigger", "containers": [one]})
    rec = d.wait_op(op)
    check_record(rec, op, "update", "succeeded")
    assert rec.get("params", {}).get("containers") == [one], rec
    assert statuses(rec) == {one: "updated"}, rec
    assert same_digest(entries(rec)[one].get("latest_digest"), c2.digest), rec
    assert on(one, c2)
    assert inspect(two)["Id"] == two_id and on(two, e1), "a container that was not named changed"

    st = d.post_json(COMMAND, {"action": "status"}, status=200).json()
    assert st.get("running") is None and st.get("queued") == 0 and st.get("paused") is False, st
    assert (st.get("last") or {}).get("id") == op and st["last"].get("state") == "succeeded", st

    # trigger, the whole scope
    op2 = d.submit(COMMAND, {"action": "trigger"})
    assert op2 != op
    rec = d.wait_op(op2)
    check_record(rec, op2, "update", "succeeded")
    assert statuses(rec) == {one: "up-to-date", two: "updated", fresh: "up-to-date"}, rec
    assert same_digest(entries(rec)[two].get("latest_digest"), e2.digest), rec
    assert on(two, e2) and inspect(fresh)["Id"] == fresh_id
    assert d.post_json(COMMAND, {"action": "status"}, status=200).json()["last"]["id"] == op2

    # pause and resume through the command
    r = d.post_json(COMMAND, {"action": "pause"}, status=200)
    assert r.json() == {"paused": True}, r.describe()
    assert d.curl("GET", "/health", token=None).json()["paused"] is True
    r = d.post_json(COMMAND, {"action": "trigger"}, status=409)
    assert "paused" in r.json().get("error", ""), r.describe()
    assert d.post_json(COMMAND, {"action": "status"}, status=200).json()["paused"] is True
    r = d.post_json(COMMAND, {"action": "resume"}, status=200)
    assert r.json() == {"paused": False}, r.describe()
    assert d.curl("GET", "/health", token=None).json()["paused"] is False
    d.stop()


# --------------------------------------------------------------------------
# 1, 5: /api/v1/update, /api/v1/containers, /api/v1/history, rollback

def test_api_update_history_and_rollback(daemons, scope, scoped, containers, pairs):
    a1, a2 = pairs["api-a"]
    b1, b2 = pairs["api-b"]
    a, b = containers.run_many([dict(image=a1, labels=scoped(), hint="api-a"),
                                dict(image=b1, labels=scoped(), hint="api-b")])
    a_id = inspect(a)["Id"]
    d = daemons(scope=scope).start()

    # the containers as the registries say
    got = {c["name"].lstrip("/"): c for c in d.get_json("/api/v1/containers")["containers"]}
    assert set(got) == {a, b}, got
    assert got[a].get("status") == "update-available", got[a]
    assert same_digest(got[a].get("latest_digest"), a2.digest), got[a]

    # a dry run changes nothing
    op = d.submit("/api/v1/update", {"containers": [a], "dry_run": True})
    rec = d.wait_op(op)
    check_record(rec, op, "update", "succeeded")
    assert statuses(rec) == {a: "update-available"}, rec
    assert inspect(a)["Id"] == a_id and on(a, a1)

    op = d.submit("/api/v1/update", {"containers": [a, b]})
    rec = d.wait_op(op)
    check_record(rec, op, "update", "succeeded")
    assert rec.get("params") == {"containers": [a, b]}, rec
    assert statuses(rec) == {a: "updated", b: "updated"}, rec
    for name, (v1, v2) in ((a, (a1, a2)), (b, (b1, b2))):
        e = entries(rec)[name]
        assert same_digest(e.get("current_digest"), v1.digest), e
        assert same_digest(e.get("latest_digest"), v2.digest), e
        assert on(name, v2), "%s is not on the new image: %r" % (name, on(name, v2))
    got = {c["name"].lstrip("/"): c for c in d.get_json("/api/v1/containers")["containers"]}
    assert got[a].get("status") == "up-to-date" and got[b].get("status") == "up-to-date", got
    hist = d.get_json("/api/v1/history")["history"]
    assert sorted((h.get("container"), h.get("kind"), h.get("outcome")) for h in hist) == \
        sorted([(a, "update", "updated"), (b, "update", "updated")]), hist
    assert not any("old_inspect" in h for h in hist), "history shows the kept inspects"

    # rollbacks still run while updates are paused
    assert d.post_json("/api/v1/pause", status=200).json() == {"paused": True}
    assert d.curl("POST", "/api/v1/update", body={"containers": [a]}).status == 409
    op = d.submit("/api/v1/rollback", {"containers": [a]})
    rec = d.wait_op(op)
    check_record(rec, op, "rollback", "succeeded")
    assert statuses(rec) == {a: "rolled-back"}, rec
    assert on(a, a1), "%s is not back on the previous digest" % a
    assert on(b, b2), "%s was rolled back too" % b
    # the command's rollback, narrowed to one container
    op = d.submit(COMMAND, {"action": "rollback", "containers": [b]})
    rec = d.wait_op(op)
    check_record(rec, op, "rollback", "succeeded")
    assert statuses(rec) == {b: "rolled-back"}, rec
    assert on(b, b1) and on(a, a1)
    hist = d.get_json("/api/v1/history")["history"]
    assert [(h.get("container"), h.get("kind"), h.get("outcome")) for h in hist[2:]] == \
        [(a, "rollback", "updated"), (b, "rollback", "updated")], hist
    assert d.post_json("/api/v1/resume", status=200).json() == {"paused": False}
    assert len(exact_named(a)) == 1 and len(exact_named(b)) == 1
    d.stop()


def test_unreachable_engine_is_exit_code_3_in_the_operation(daemons, scope, refit):
    """The daemon's operations run the commands' code path: an engine that
    cannot be reached fails the operation with the exit code `refit update`
    (and rollback) exits with, 3."""
    dead = "unix:///nonexistent/docker.sock"
    d = daemons(scope=scope, config_extra="docker_host: %s\n" % dead).start()
    for path, body in (("/api/v1/update", {}), ("/api/v1/rollback", {"all": True}),
                       ("/api/v1/rollback", {"containers": ["web1"], "restore_data": True})):
        rec = d.wait_op(d.submit(path, body))
        assert rec["state"] == "failed" and rec["exit_code"] == 3, rec
        assert "cannot reach the Docker engine" in rec["error"], rec
    res = refit.run("update", "--docker-host", dead)
    assert res.rc == 3, res.describe()
    d.stop()


def test_same_new_digest_under_two_tags(daemons, scope, scoped, containers, image_factory,
                                        plain_registry, base_pair):
    """app:latest and app:stable both move to one new release (the same
    manifest digest): one pass must put both containers on it."""
    v1, v2 = base_pair[0], base_pair[1]
    repo = image_factory.unique_repo("api-twotags")
    # one after the other: two pushes of the same blobs into one repository
    # at once race in the registry ("blob unknown to registry")
    la, st = (stale_pair(image_factory, plain_registry, v1, v2, "x", repo=repo, tag=t)
              for t in ("latest", "stable"))
    assert la[1].digest == st[1].digest
    a = containers.run(la[0], labels=scoped(), hint="tag-latest")
    b = containers.run(st[0], labels=scoped(), hint="tag-stable")
    d = daemons(scope=scope).start()
    try:
        r = d.curl("POST", "/v1/update")
        assert r.status == 200 and statuses(r.json()) == {a: "updated", b: "updated"}, \
            r.describe()
        for name, new in ((a, la[1]), (b, st[1])):
            assert on(name, new), "reported updated, not on the new image: %r" % on(name, new)
    finally:
        d.stop()


# --------------------------------------------------------------------------
# 3: pause blocks scheduled and triggered updates, across a restart

def test_pause_blocks_updates_and_survives_restart(daemons, scope, scoped, containers, pairs):
    p1, p2 = pairs["pause"]
    d = daemons(scope=scope, schedule=None, config_extra="poll_interval: 1\n").start()
    assert d.post_json("/api/v1/pause", status=200).json() == {"paused": True}
    assert os.path.exists(os.path.join(d.state_dir, "paused"))
    # the stale container appears only now: no pass can have seen it unpaused
    name = containers.run(p1, labels=scoped(), hint="paused")
    cid = inspect(name)["Id"]

    def skipped():
        return metrics(d).value("refit_passes_skipped_total")
    s0 = skipped()      # passes skipped from here on saw the stale container
    wait_for(lambda: skipped() >= s0 + 1, 15, interval=0.2, what="a skipped pass")
    m = metrics(d)
    assert m.value("refit_paused") == 1 and m.value("watchtower_scans_skipped") >= 1
    assert inspect(name)["Id"] == cid and on(name, p1)
    for path, body in [(COMMAND, {"action": "trigger"}), ("/api/v1/update", {}),
                       ("/v1/update", None)]:
        r = d.curl("POST", path, body=body)
        assert r.status == 409 and "paused" in r.json().get("error", ""), r.describe()
    d.stop()

    # the same state dir: still paused
    d.start()
    h = d.curl("GET", "/health", token=None).json()
    assert h["paused"] is True, h
    wait_for(lambda: skipped() >= 2, 15, interval=0.2, what="two skipped passes after restart")
    assert metrics(d).value("refit_containers_updated_total") == 0
    r = d.curl("POST", COMMAND, body={"action": "trigger", "containers": [name]})
    assert r.status == 409, r.describe()
    assert inspect(name)["Id"] == cid and on(name, p1), "updated while paused"

    # resume: the next scheduled pass updates it
    assert d.post_json("/api/v1/resume", status=200).json() == {"paused": False}
    assert not os.path.exists(os.path.join(d.state_dir, "paused"))
    wait_for(lambda: on(name, p2), 30, interval=0.3, what="%s updated after resume" % name)
    assert len(exact_named(name)) == 1
    d.stop()


# --------------------------------------------------------------------------
# 7: SIGTERM in the middle of a swap

def test_sigterm_during_a_slow_swap_leaves_one_consistent_container(
        daemons, scope, scoped, containers, pairs, run_id):
    t1, t2 = pairs["term"]
    name = containers.run(t1, labels=scoped(), hint="term", cmd=SLOW_STOP_CMD)
    old_id = inspect(name)["Id"]
    d = daemons(scope=scope, config_extra="stop_timeout: 4\n").start()

    with EngineEvents(kinds=("container",)) as engine_events:
        op = d.submit("/api/v1/update", {"containers": [name]})

        def stop_sent():
            return any(e.get("Action") == "kill"
                       and e.get("id", e.get("Actor", {}).get("ID")) == old_id
                       for e in engine_events.events())
        wait_for(stop_sent, 20, interval=0.3, what="refit to stop %s" % name)
        assert inspect(old_id)["State"]["Running"], "the slow container stopped at once"
        d.signal(signal.SIGTERM)         # while `docker stop` waits for the timeout
    rc = d.wait_exit(timeout=60)
    d.check_sanitizer()
    assert rc == 0, "exit %s\n%s" % (rc, d.stderr_text()[-4000:])

    named = exact_named(name)
    assert len(named) == 1, "containers called %s: %r" % (name, named)
    ins = inspect(name)
    assert ins["State"]["Running"], "%s is not running: %r" % (name, ins["State"])
    assert ins["Image"] in (t1.id, t2.id), ins["Image"]
    assert ins["Config"]["Cmd"] == SLOW_STOP_CMD
    mine = list_containers(label=["%s=%s" % (RUN_LABEL, run_id), "refit.scope=%s" % scope])
    assert [n for _, n in mine if "-refit-" in n] == [], "refit's temporary copies: %r" % mine
    assert sorted(n for _, n in mine) == [name], mine
    ops_dir = os.path.join(d.state_dir, "ops")
    assert not os.path.isdir(ops_dir) or os.listdir(ops_dir) == [], \
        "the journal still holds %r" % os.listdir(ops_dir)
    # the signal came in the middle of the swap, which was then finished or undone
    log = d.stderr_text()
    sig = re.search(r"signal (Terminated|SIGTERM|TERM)\b", log)
    m = re.search(r"%s: (updated|rolled-back)" % re.escape(name), log)
    assert sig and m and sig.start() < m.start(), "signal and outcome out of order:\n" + log
    if m.group(1) == "updated":
        assert on(name, t2), on(name, t2)
    else:
        assert ins["Id"] == old_id and on(name, t1), on(name, t1)
    assert op in log


def test_operations_answer_after_a_restart(daemons, scope, scoped, containers, pairs, run_id):
    """Operation IDs survive the daemon: one that finished answers as it
    ended; one that a SIGKILL cut in the middle of its health gate answers
    "interrupted", and the journal's recovery at the next start puts the
    container right (one container, running, on the old or the new image)."""
    k1, k2 = pairs["killed"]
    name = containers.run(k1, labels=scoped(), hint="killed")
    d = daemons(scope=scope, config_extra="min_uptime: 20\n").start()
    done = d.submit("/api/v1/update", {"containers": [name], "dry_run": True})
    assert d.wait_op(done)["state"] == "succeeded"
    op = d.submit("/api/v1/update", {"containers": [name]})
    wait_for(lambda: d.op(op)["state"] != "queued", 30, interval=0.2, what="operation %s to run" % op)
    time.sleep(5)                       # pulled, swapped, inside the 20 s gate
    assert d.op(op)["state"] == "running", d.op(op)
    d.proc.kill()                       # SIGKILL: no record of the end is written
    d.wait_exit(timeout=20)
    with open(os.path.join(d.state_dir, "operations.json")) as f:
        kept = {r["id"]: r["state"] for r in json.load(f)}
    assert kept.get(op) == "running" and kept.get(done) == "succeeded", kept

    d.start()
    rec = d.op(op)
    assert rec["state"] == "interrupted" and "stopped while it ran" in rec["error"], rec
    assert rec["kind"] == "update" and rec["params"]["containers"] == [name], rec
    assert ISO.match(rec["finished"]), rec
    assert d.op(done)["state"] == "succeeded"
    assert d.get_json("/api/v1/operations/%s" % op) == d.wait_op(op)   # finished: no waiting
    # the journal's recovery ran before READY; the container is whole
    d.wait_log("recovered", timeout=30)
    wait_for(lambda: len(exact_named(name)) == 1 and inspect(name)["State"]["Running"], 30,
             interval=0.3, what="%s whole again" % name)
    assert inspect(name)["Image"] in (k1.id, k2.id)
    mine = list_containers(label=["%s=%s" % (RUN_LABEL, run_id), "refit.scope=%s" % scope])
    assert sorted(n for _, n in mine) == [name], mine
    # a new operation is kept beside the old ones, and a restart keeps it all
    again = d.submit("/api/v1/update", {"containers": [name], "dry_run": True})
    assert d.wait_op(again)["state"] == "succeeded"
    d.stop()
    d.start()
    assert d.op(op)["state"] == "interrupted" and d.op(again)["state"] == "succeeded"
    d.stop()


def test_a_damaged_operations_file_is_set_aside(daemons, scope):
    """operations.json that is not what refit writes: the daemon starts,
    says so, and answers 404 for IDs it cannot know."""
    d = daemons(scope=scope)
    for text in ("{not json", json.dumps({"id": "x"}),
                 json.dumps([{"id": "../../etc", "kind": "update", "state": "running",
                              "created": "x"}, 5, None])):
        with open(os.path.join(d.state_dir, "operations.json"), "w") as f:
            f.write(text)
        d.start()
        assert d.curl("GET", "/api/v1/operations/0123456789abcdef").status == 404
        d.stop()
    assert "operations of the earlier run not read" in d.all_stderr()


# --------------------------------------------------------------------------
# 8: SIGHUP

def test_sighup_reloads_the_configuration(daemons, scope, scoped, containers, base_pair,
                                          labels):
    other = scope + "-b"
    a = containers.run(base_pair[1], labels=scoped(), hint="hup-a")
    b = containers.run(base_pair[1], labels=labels({"refit.enable": "true",
                                                        "refit.scope": other}), hint="hup-b")
    d = daemons(scope=scope).start()

    def managed():
        return {c["name"].lstrip("/") for c in d.get_json("/api/v1/containers")["containers"]}
    assert managed() == {a}

    # another scope
    mark = d.log_mark()
    d.write_config(d.config_text(scope=other))
    d.signal(signal.SIGHUP)
    d.wait_log("configuration reloaded", since=mark)
    assert managed() == {b}

    # a bad file: logged, the running configuration kept, still serving
    mark = d.log_mark()
    d.write_config(d.config_text(scope=scope, extra="no_such_key: 1\n"))
    d.signal(signal.SIGHUP)
    d.wait_log("keeping the running configuration", since=mark)
    log = d.stderr_text()[mark:]
    assert "no_such_key" in log and d.config_path in log, log
    assert d.alive()
    assert d.curl("GET", "/health", token=None).status == 200
    assert managed() == {b}

    # api.listen needs a restart: kept, and said so
    mark = d.log_mark()
    d.write_config(d.config_text(scope=scope, listen="127.0.0.1:%d" % free_port()))
    d.signal(signal.SIGHUP)
    d.wait_log("keeping the running configuration", since=mark)
    assert "api.listen" in d.stderr_text()[mark:]
    assert managed() == {b}

    # label_enable: false takes every container of the scope but those that opt out
    c = containers.run(base_pair[1], labels=labels({"refit.scope": other}), hint="hup-c")
    assert managed() == {b}
    mark = d.log_mark()
    d.write_config(d.config_text(scope=other, extra="label_enable: false\n"))
    d.signal(signal.SIGHUP)
    d.wait_log("configuration reloaded", since=mark)
    assert managed() == {b, c}
    d.stop()


def test_sighup_applies_a_new_api_token(daemons, scope):
    """A rotated api.token is what a reload is for: after SIGHUP the new
    token is accepted and the old one refused (api.listen is the only API
    setting documented to need a restart)."""
    d = daemons(scope=scope).start()
    old = d.token
    new = new_token()
    mark = d.log_mark()
    d.write_config(d.config_text(token=new))
    d.signal(signal.SIGHUP)
    d.wait_log("configuration reloaded", since=mark)
    try:
        assert d.curl("GET", "/api/v1/history", token=new).status == 200, \
            "the new token is refused after the reload"
        assert d.curl("GET", "/api/v1/history", token=old).status == 401, \
            "the old token still works after the reload"
    finally:
        d.stop()


# --------------------------------------------------------------------------
# 9: systemd notification

def test_ready_and_watchdog_on_notify_socket(daemons, scope, tmp_path):
    d = daemons(scope=scope, watchdog_pid=True,
                env={"NOTIFY_SOCKET": os.path.join(str(tmp_path), "notify.sock"),
                     "WATCHDOG_USEC": "2000000"})
    ns = NotifySocket(d.env_extra["NOTIFY_SOCKET"],
                      on_field=lambda f: port_accepts(d.port) if f == "READY=1" else None)
    msgs = ns.msgs
    try:
        d.launch()
        wait_for(lambda: any(f == "READY=1" for _, f, _ in msgs), 20, interval=0.05,
                 what="READY=1")
        t_ready, _, listening = next(m for m in msgs if m[1] == "READY=1")
        assert listening, "READY=1 came before the API listened on %d" % d.port
        assert d.curl("GET", "/health", token=None).status == 200
        # WATCHDOG=1 at least every WATCHDOG_USEC/2
        wait_for(lambda: sum(1 for t, f, _ in msgs if f == "WATCHDOG=1" and t > t_ready) >= 3,
                 10, interval=0.1, what="three WATCHDOG=1")
        dogs = [t for t, f, _ in msgs if f == "WATCHDOG=1" and t > t_ready]
        gaps = [b - a for a, b in zip(dogs, dogs[1:])]
        assert all(g < 1.9 for g in gaps), "watchdog pings too far apart: %r" % gaps
        assert ns.statuses()[-1].startswith("idle"), ns.statuses()
        # a reload says RELOADING=1 then READY=1 again
        n = len(msgs)
        d.signal(signal.SIGHUP)
        wait_for(lambda: any(f == "READY=1" for _, f, _ in msgs[n:]), 10, interval=0.05,
                 what="READY=1 after SIGHUP")
        fields = [f for _, f, _ in msgs[n:]]
        assert "RELOADING=1" in fields and \
            fields.index("RELOADING=1") < fields.index("READY=1"), fields
        # systemd 253+ wants the monotonic clock with RELOADING=1 (in microseconds)
        mono = [f for f in fields if f.startswith("MONOTONIC_USEC=")]
        assert mono and abs(int(mono[0].split("=")[1]) / 1e6 - time.monotonic()) < 10, fields
        n = len(msgs)
        d.stop()
        time.sleep(0.3)
        assert "STOPPING=1" in [f for _, f, _ in msgs[n:]], msgs[n:]
    finally:
        ns.close()


def reload_cli(refit_bin, pid, timeout=30):
    """`refit reload PID` as the unit's ExecReload runs it: (rc, seconds, stderr)."""
    t0 = time.monotonic()
    p = subprocess.run([refit_bin, "reload", str(pid)], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, time.monotonic() - t0, p.stderr


def test_reload_during_a_long_health_gate(daemons, scope, scoped, containers, pairs,
                                          refit_bin, tmp_path):
    """A reload in the middle of a pass (a 12 s health gate) never waits
    for it: RELOADING=1 / READY=1 at once, `refit reload` answers at once,
    WATCHDOG=1 (every 1 s at WATCHDOG_USEC=2 s) keeps coming, the swap
    completes and the new configuration takes over after it. STATUS= says
    which pass and container. A refused configuration then fails `refit
    reload` (exit 2) with the reason in STATUS=, and nothing changes."""
    r1, r2 = pairs["reload"]
    name = containers.run(r1, labels=scoped(), hint="reload")
    d = daemons(scope=scope, watchdog_pid=True, config_extra="min_uptime: 12\n",
                env={"NOTIFY_SOCKET": os.path.join(str(tmp_path), "notify-reload.sock"),
                     "WATCHDOG_USEC": "2000000"})
    ns = NotifySocket(d.env_extra["NOTIFY_SOCKET"])
    try:
        d.start()
        t_start = time.monotonic()
        op = d.submit("/api/v1/update", {"containers": [name]})
        # the gate: the new container runs, refit waits min_uptime
        wait_for(lambda: any(name in s and "health" in s for s in ns.statuses()), 30,
                 interval=0.1, what="STATUS= naming %s at its health gate" % name)
        st = [s for s in ns.statuses() if name in s and "health" in s][0]
        assert st.startswith("pass ") and op in st and "update" in st and "of 1" in st, st
        # a new configuration: the pass's log level changes to debug
        mark = d.log_mark()
        n = len(ns.msgs)
        d.write_config(d.config_text(extra="min_uptime: 12\nlog_level: debug\n"))
        rc, took, err = reload_cli(refit_bin, d.proc.pid)
        assert rc == 0 and took < 5, (rc, took, err)
        assert d.op(op)["state"] == "running", "the pass ended before the reload was tested"
        # the datagrams were sent before the answer; the listener may not have read them yet
        wait_for(lambda: "READY=1" in ns.fields(n), 5, interval=0.05, what="READY=1 after the reload")
        fields = ns.fields(n)
        assert "RELOADING=1" in fields and "READY=1" in fields[fields.index("RELOADING=1"):], fields
        assert any("takes over when the running pass ends" in s for s in ns.statuses(n)), \
            ns.statuses(n)
        assert "configuration reloaded" not in d.stderr_text()[mark:], "applied in the middle of the pass"
        rec = d.wait_op(op, timeout=60)
        assert rec["state"] == "succeeded", rec
        assert on(name, r2)
        d.wait_log("configuration reloaded", since=mark)
        log = d.stderr_text()[mark:]
        assert log.index("operation %s" % op) < log.index("configuration reloaded"), log
        gaps = ns.watchdog_gaps(t_start)
        assert len(gaps) >= 10 and max(gaps) < 1.9, "watchdog pings too far apart: %r" % gaps
        wait_for(lambda: ns.statuses()[-1].startswith("idle"), 10, interval=0.1,
                 what="STATUS=idle after the pass")
        assert op in ns.statuses()[-1] and "succeeded" in ns.statuses()[-1], ns.statuses()[-1]

        # a refused configuration: systemctl reload's job fails, the reason in STATUS=
        mark = d.log_mark()
        n = len(ns.msgs)
        d.write_config(d.config_text(extra="poll_interval: banana\n"))
        rc, took, err = reload_cli(refit_bin, d.proc.pid)
        assert rc == 2 and took < 5 and "refused" in err, (rc, took, err)
        wait_for(lambda: any(s.startswith("reload refused") for s in ns.statuses(n)), 5, interval=0.05,
                 what="STATUS=reload refused")
        refused = [s for s in ns.statuses(n) if s.startswith("reload refused")]
        assert refused and "poll_interval" in refused[0], ns.statuses(n)
        assert "READY=1" in ns.fields(n)
        time.sleep(1)
        assert "configuration reloaded" not in d.stderr_text()[mark:]
        # nothing applied: the running configuration (debug level, same token) stays
        assert d.curl("GET", "/api/v1/history").status == 200
        # a plain SIGHUP (kill -HUP) still reloads, and gets no signal back
        d.write_config(d.config_text(extra="min_uptime: 12\n"))
        mark = d.log_mark()
        d.signal(signal.SIGHUP)
        d.wait_log("configuration reloaded", since=mark)
        d.stop()
    finally:
        ns.close()


def test_no_watchdog_for_another_pid(daemons, scope, tmp_path):
    """WATCHDOG_USEC meant for another process (WATCHDOG_PID not ours):
    READY=1, but no watchdog pings."""
    sock_path = os.path.join(str(tmp_path), "notify2.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(0.2)
    d = daemons(scope=scope, env={"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "400000",
                                  "WATCHDOG_PID": "1"})
    try:
        d.start()
        fields = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                fields += sock.recv(4096).decode().split("\n")
            except socket.timeout:
                pass
        assert "READY=1" in fields and "WATCHDOG=1" not in fields, fields
        d.stop()
    finally:
        sock.close()


# --------------------------------------------------------------------------
# 10: JSON logs, and no secrets in them

def _decoded_blobs(text):
    """Every base64 / base64url run of 16+ characters in TEXT, decoded."""
    out = []
    for m in re.finditer(r"[A-Za-z0-9+/_-]{16,}={0,2}", text):
        s = m.group(0).rstrip("=")
        for alt in (s, s.replace("-", "+").replace("_", "/")):
            try:
                out.append(base64.b64decode(alt + "=" * (-len(alt) % 4), validate=False)
                           .decode("latin-1"))
            except ValueError:
                pass
    return out


def test_json_logs_carry_no_secrets(daemons, scope, scoped, containers, image_factory, base_pair,
                                    token_registry, token_server):
    v1, v2 = stale_pair(image_factory, token_registry, base_pair[0], base_pair[1], "api-json")
    name = containers.run(v1, labels=scoped(), hint="json")
    d = daemons(scope=scope, config_extra="log_format: json\nlog_level: debug\n",
                env={"REPO_USER": token_server.username, "REPO_PASS": token_server.password})
    d.start()
    mark = token_server.mark()
    r = d.curl("POST", "/v1/update")
    assert r.status == 200 and statuses(r.json()) == {name: "updated"}, r.describe()
    assert on(name, v2)
    assert token_server.count(since=mark, ok=True) >= 1, "no token was fetched"
    # refit itself fetched a bearer token (so there was one it could have logged)
    assert metrics(d).value("refit_registry_requests_total", kind="token") >= 1
    assert d.curl("GET", "/metrics", token="x" * 20).status == 401        # a warning
    assert d.curl("POST", COMMAND, body={"action": "nope"}).status == 400
    d.stop()

    text = d.stderr_text()
    lines = text.splitlines()
    assert len(lines) >= 5, text
    levels = set()
    for line in lines:
        try:
            o = json.loads(line)
        except ValueError:
            raise AssertionError("a log line that is not JSON: %r" % line)
        assert isinstance(o, dict), line
        msg = o.get("msg", o.get("message"))
        assert o.get("level") in ("error", "warn", "info", "debug"), line
        assert isinstance(msg, str) and msg.strip(), line
        levels.add(o["level"])
    assert {"debug", "info", "warn"} <= levels, levels
    secrets = {"the API token": d.token, "the registry password": token_server.password}
    basic = base64.b64encode(("%s:%s" % (token_server.username,
                                         token_server.password)).encode()).decode()
    assert basic not in text, "the registry's Basic credentials are in the log"
    assert "eyJ" not in text, "a JWT (registry bearer token) is in the log"
    blobs = _decoded_blobs(text)
    for what, secret in secrets.items():
        assert secret not in text, "%s is in the log" % what
        assert not any(secret in b for b in blobs), "%s is in the log, base64-encoded" % what


# --------------------------------------------------------------------------
# 11 and the token's sources

def test_refuses_a_non_loopback_address_without_a_token(daemons, scope):
    d = daemons(scope=scope, token="")
    port = free_port()
    d.port = port
    d.launch(d.config_text(token="", listen="0.0.0.0:%d" % port))
    rc = d.wait_exit(timeout=20)
    assert rc == 2, "exit %s\n%s" % (rc, d.stderr_text())
    assert "loopback" in d.stderr_text() and "token" in d.stderr_text(), d.stderr_text()
    # a token that is too short is no token
    d.launch(d.config_text(token="short-token", listen="0.0.0.0:%d" % port))
    rc = d.wait_exit(timeout=20)
    assert rc == 2 and "16" in d.stderr_text(), d.stderr_text()


def test_token_sources_and_no_token_on_loopback(daemons, scope, tmp_path):
    # no token on loopback: it runs, /health answers, everything else is 401
    d = daemons(scope=scope, token="", sub="none").start()
    assert d.curl("GET", "/health", token=None).status == 200
    for tok in (None, "anything-anything-anything"):
        r = d.curl("GET", "/api/v1/history", token=tok)
        assert r.status == 401, r.describe()
    r = d.curl("POST", "/api/v1/pause", token=None)
    assert r.status == 401 and not os.path.exists(os.path.join(d.state_dir, "paused"))
    d.stop()

    # api.token_file, then Watchtower's variable
    tok = new_token()
    tf = os.path.join(str(tmp_path), "api.token")
    with open(tf, "w") as f:
        f.write(tok + "\n")
    d = daemons(scope=scope, token="", sub="file", api_extra="token_file: %s" % tf)
    d.start()
    assert d.curl("GET", "/api/v1/history", token=tok).status == 200
    assert d.curl("GET", "/api/v1/history", token=tok[:-1]).status == 401
    d.stop()

    tok = new_token()
    d = daemons(scope=scope, token="", sub="wt", env={"WATCHTOWER_HTTP_API_TOKEN": tok})
    d.start()
    assert d.curl("GET", "/api/v1/history", token=tok).status == 200
    d.stop()


def test_token_file_first_line(daemons, scope, tmp_path):
    tok = new_token()
    tf = os.path.join(str(tmp_path), "api.token")
    with open(tf, "w") as f:
        f.write(tok + "\n# rotated 2024-01-01 by ops\n")
    d = daemons(scope=scope, token="", api_extra="token_file: %s" % tf)
    d.start()
    try:
        r = d.curl("GET", "/api/v1/history", token=tok)
        assert r.status == 200, "the file's first line is refused: " + r.describe()
    finally:
        d.stop()


def test_api_containers_asked_ahead_are_this_passs_answers(daemons, scope, scoped, containers, image_factory,
                                                            plain_registry):
    """A daemon's GET /api/v1/containers asks the registry again for the
    references of its pass before while the engine lists the containers:
    the answers are still this pass's. A digest published between two
    passes is seen by the second; a container on a reference the first
    pass did not know is looked up too; each reference is asked once a
    pass."""
    one = image_factory.make(plain_registry, repo=image_factory.unique_repo("ahead-a"))
    two = image_factory.make(plain_registry, repo=image_factory.unique_repo("ahead-b"))
    a = containers.run(one, labels=scoped(), hint="ahead-a")
    d = daemons(scope=scope).start()

    def passes():
        return {c["name"].lstrip("/"): c for c in d.get_json("/api/v1/containers")["containers"]}

    got = passes()
    assert got[a].get("status") == "up-to-date", got[a]
    new = image_factory.publish_new_version(one)
    mark = plain_registry.mark()
    got = passes()
    assert got[a].get("status") == "update-available", got[a]
    assert same_digest(got[a].get("latest_digest"), new.digest), got[a]
    assert plain_registry.count(method="HEAD", path_re=r"^/v2/.+/manifests/", since=mark) == 1
    # a container on a reference no pass asked for yet
    b = containers.run(two, labels=scoped(), hint="ahead-b")
    mark = plain_registry.mark()
    got = passes()
    assert got[b].get("status") == "up-to-date", got[b]
    assert got[a].get("status") == "update-available", got[a]
    assert plain_registry.count(method="HEAD", path_re=r"^/v2/.+/manifests/", since=mark) == 2
    d.stop()
