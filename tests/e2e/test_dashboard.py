"""The dashboard (GET /, /ui/...) and the event stream GET /api/v1/events
(SPEC.md: Dashboard, Management API; docs/dashboard.md), over HTTP: the
real daemon, real engine and registry, requests made with http.client.
"""

import http.client
import json
import os
import re
import signal
import socket
import threading
import time
import urllib.parse

import pytest

from daemontools import Daemon
from harness import free_port, wait_for
from swaptools import inspect, make_exiting, stale_pair



def request(d, method, path, body=None, headers=None, timeout=30):
    """(status, headers {lower: value}, body text)."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=timeout)
    hdrs = dict(headers or {})
    if isinstance(body, dict):
        body = urllib.parse.urlencode(body)
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    c.request(method, path, body=body, headers=hdrs)
    r = c.getresponse()
    text = r.read().decode("utf-8", "replace")
    out = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, out, text


def login(d, token=None, headers=None):
    st, h, body = request(d, "POST", "/login", {"token": token or d.token}, headers)
    assert st == 303, (st, h, body)
    cookie = h["set-cookie"]
    sid = re.match(r"refit_session=([0-9a-f]{64});", cookie)
    assert sid, cookie
    return cookie, {"Cookie": "refit_session=" + sid.group(1)}


def csrf_of(page):
    m = re.search(r'<meta name="csrf" content="([0-9a-f]{64})">', page)
    assert m, page[:2000]
    return m.group(1)


def test_login_session_cookie_and_csrf(daemons, scope):
    d = daemons(scope=scope, api_extra="session_ttl: 3").start()
    # nothing but the login form without a session
    st, h, body = request(d, "GET", "/")
    assert st == 200 and 'action="/login"' in body and "<table" not in body, body
    assert h["content-security-policy"].startswith("default-src 'self'"), h
    assert "unsafe-inline" not in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY" and h["referrer-policy"] == "no-referrer", h
    for path in ("/ui/history", "/ui/rows", "/ui/container?name=x", "/api/v1/events", "/ui/op/0123456789abcdef"):
        st, _, body = request(d, "GET", path)
        assert st == 401, (path, st, body)
    st, _, _ = request(d, "POST", "/ui/action", {"action": "pause"})
    assert st == 401
    assert request(d, "GET", "/health")[0] == 200
    # a wrong token does not log in
    st, h, body = request(d, "POST", "/login", {"token": "wrong-" + d.token})
    assert st == 401 and "set-cookie" not in h and "not the API token" in body, (st, h)
    # the right one does: the cookie's flags
    cookie, jar = login(d)
    assert "; HttpOnly" in cookie and "; SameSite=Strict" in cookie and "; Path=/" in cookie, cookie
    assert "Secure" not in cookie, cookie
    assert "Secure" in login(d, headers={"X-Forwarded-Proto": "https"})[0]
    st, h, page = request(d, "GET", "/", headers=jar)
    assert st == 200 and 'id="rows"' in page, page[:2000]
    assert "<script>" not in page and '<script src="/ui/dashboard.js"' in page   # no inline script
    csrf = csrf_of(page)
    # a change without the CSRF token (or with another) is refused and changes nothing
    for form in ({"action": "pause"}, {"action": "pause", "csrf": "0" * 64}):
        st, _, body = request(d, "POST", "/ui/action", form, jar)
        assert st == 403 and "CSRF" in body, (st, body)
    assert d.get_json("/health")["paused"] is False
    # another site's page cannot post it either
    st, _, _ = request(d, "POST", "/ui/action", {"action": "pause", "csrf": csrf},
                       dict(jar, Origin="http://evil.example"))
    assert st == 403
    st, h, _ = request(d, "POST", "/ui/action", {"action": "pause", "csrf": csrf}, jar)
    assert st == 303 and d.get_json("/health")["paused"] is True, (st, h)
    # while paused, Update is refused and the page says why
    st, _, body = request(d, "POST", "/ui/action", {"action": "update-all", "csrf": csrf,
                                                     "confirm": "yes"}, jar)
    assert st == 409 and "paused" in body and 'id="refused"' in body, (st, body)
    st, _, body = request(d, "POST", "/ui/action", {"action": "update-all", "csrf": csrf, "confirm": "yes"},
                          dict(jar, Accept="application/json"))
    assert st == 409 and "paused" in json.loads(body)["error"]
    # a destructive action without confirm=yes asks first
    st, _, body = request(d, "POST", "/ui/action", {"action": "update-all", "csrf": csrf}, jar)
    assert st == 200 and 'name="confirm" value="yes"' in body, body
    # malformed forms are refused whole
    for raw in ("action=%zz", "a=1&a=2", "csrf=" + csrf + "&action=pa%00use", "noequals"):
        st, _, body = request(d, "POST", "/ui/action", raw,
                              dict(jar, **{"Content-Type": "application/x-www-form-urlencoded"}))
        assert st == 400, (raw, st, body)
    # the session expires on the server
    time.sleep(4)
    st, _, body = request(d, "GET", "/", headers=jar)
    assert 'action="/login"' in body and 'id="rows"' not in body
    assert request(d, "GET", "/ui/history", headers=jar)[0] == 401
    # logging out ends a session
    _, jar = login(d)
    csrf = csrf_of(request(d, "GET", "/", headers=jar)[2])
    st, h, _ = request(d, "POST", "/logout", {"csrf": csrf}, jar)
    assert st == 303 and "Max-Age=0" in h["set-cookie"]
    assert request(d, "GET", "/ui/history", headers=jar)[0] == 401
    d.stop()


class Stream(threading.Thread):
    """Reads GET /api/v1/events until it ends: events as (type, data)."""

    def __init__(self, d, headers):
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=120)
        self.conn.request("GET", "/api/v1/events", headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()
        assert self.resp.getheader("Content-Type") == "text/event-stream"
        self.events = []
        self.ended = None
        self.start()

    def run(self):
        typ, data = None, None
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    typ = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line == "" and typ:
                    self.events.append((typ, data))
                    typ, data = None, None
            self.ended = "eof"
        except Exception as e:       # noqa: BLE001 -- the test says what it was
            self.ended = "error: %r" % e


def summary(events):
    out = []
    for typ, d in events:
        if typ == "pass":
            out.append(("pass", d["kind"], d["state"]))
        elif typ == "step":
            out.append(("step", d.get("container"), d["step"]))
        elif typ == "container":
            out.append(("container", d.get("container"), d.get("kind"), d.get("outcome")))
    return out


def test_events_of_an_update_a_rollback_and_sigterm(daemons, scope, scoped, containers, image_factory,
                                                    plain_registry):
    repo = image_factory.unique_repo("dash-ev")
    v1, v2 = image_factory.make_many([{"registry": plain_registry, "repo": repo, "tag": t}
                                      for t in ("latest", "v2")])
    bad = make_exiting(image_factory, plain_registry, repo, "bad")
    g1, g2 = stale_pair(image_factory, plain_registry, v1, v2, "dash-good")
    b1, b2 = stale_pair(image_factory, plain_registry, v1, bad, "dash-bad")
    good, failing = containers.run_many([dict(image=g1, labels=scoped(), hint="dash-good"),
                                         dict(image=b1, labels=scoped(), hint="dash-bad")])
    d = daemons(scope=scope).start()
    s = Stream(d, {"Authorization": "Bearer " + d.token})
    op = d.submit("/api/v1/update", {"containers": [good, failing]})
    d.wait_op(op, timeout=120)
    op2 = d.submit("/api/v1/rollback", {"containers": [good]})
    d.wait_op(op2, timeout=120)
    wait_for(lambda: sum(1 for t, e in s.events if t == "pass" and e["state"] != "running") >= 2, 20,
             what="both passes' end events")
    ev = summary(s.events)
    seqs = [e["seq"] for _, e in s.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    assert ev[0] == ("pass", "update", "running"), ev
    first_end = ev.index(("pass", "update", "succeeded")) if ("pass", "update", "succeeded") in ev \
        else ev.index(("pass", "update", "failed"))
    upd = ev[:first_end + 1]
    for name in (good, failing):
        mine = [x for x in upd if x[1] == name]
        steps = [x[2] for x in mine if x[0] == "step"]
        assert steps[0] == "pulling", mine
        assert "creating" in steps and "starting" in steps and "health" in steps, mine
        assert steps.index("creating") < steps.index("starting") < steps.index("health"), mine
        assert mine[-1][0] == "container", mine          # the outcome comes after its steps
    assert [x for x in upd if x[0] == "container" and x[1] == good][-1][3] == "updated", upd
    assert [x for x in upd if x[0] == "container" and x[1] == failing][-1][3] == "rolled-back", upd
    rb = ev[first_end + 1:]
    assert rb[0] == ("pass", "rollback", "running"), rb
    assert ("container", good, "rollback", "updated") in rb, rb
    assert rb[-1] == ("pass", "rollback", "succeeded"), rb
    assert all(e.get("operation") == op for t, e in s.events[:first_end + 1]), s.events[:first_end + 1]
    # Last-Event-ID replays what came after it
    st, h, _ = request(d, "GET", "/api/v1/events", headers={"Last-Event-ID": "x",
                                                              "Authorization": "Bearer " + d.token})
    assert st == 400
    again = Stream(d, {"Authorization": "Bearer " + d.token, "Last-Event-ID": str(seqs[-3])})
    wait_for(lambda: len(again.events) >= 2, 10, what="replayed events")
    assert [e["seq"] for _, e in again.events[:2]] == seqs[-2:]
    # SIGTERM ends the streams cleanly (the chunked body's end), and the daemon exits 0
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    s.join(20)
    again.join(20)
    assert s.ended == "eof" and again.ended == "eof", (s.ended, again.ended)
    assert d.wait_exit(30) == 0 and time.monotonic() - t0 < 20
    d.check_sanitizer()
    assert inspect(good) is not None


def test_event_stream_needs_a_session_or_the_token_and_does_not_starve_the_api(daemons, scope):
    d = daemons(scope=scope).start()
    assert request(d, "GET", "/api/v1/events", headers={"Authorization": "Bearer wrong-token-xxxxxxxx"})[0] == 401
    _, jar = login(d)
    streams = [Stream(d, jar) for _ in range(16)]
    st, _, body = request(d, "GET", "/api/v1/events", headers=jar)
    assert st == 503 and "too many" in body, (st, body)
    # the API still answers while every stream is open
    assert d.get_json("/health")["status"] == "ok"
    assert "history" in d.get_json("/api/v1/history")
    for s in streams:
        s.conn.close()
    d.stop()
    assert all(s.ended is not None for s in streams)


def test_release_button_clears_a_hold(daemons, scope, scoped, containers, image_factory, plain_registry):
    """A held row offers Release: a confirmation step first, the session's
    CSRF token always, and then the hold is gone (POST /api/v1/release's
    work): the row is pending again, and nothing else changed."""
    repo = image_factory.unique_repo("dash-rel")
    v1 = image_factory.make(plain_registry, repo=repo, tag="latest")
    bad = make_exiting(image_factory, plain_registry, repo, "bad")
    b1, b2 = stale_pair(image_factory, plain_registry, v1, bad, "dash-rel-held")
    held, other = containers.run_many([dict(image=b1, labels=scoped(), hint="dash-rel-held"),
                                       dict(image=v1, labels=scoped(), hint="dash-rel-other")])
    d = daemons(scope=scope).start()
    rec = d.wait_op(d.submit("/api/v1/update", {"containers": [held]}), timeout=120)
    assert rec["result"]["containers"][0]["status"] == "rolled-back", rec
    held_id = inspect(held)["Id"]

    def status_of(name):
        return {c["name"].lstrip("/"): c["status"] for c in d.get_json("/api/v1/containers")["containers"]}[name]
    assert status_of(held) == "held"

    _, jar = login(d)
    page = request(d, "GET", "/", headers=jar)[2]
    csrf = csrf_of(page)
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr data-name="([^"]+)".*?</tr>', page, re.S)}
    assert 'data-status="held"' in rows[held], rows[held]
    assert '<button form="act" name="do" class="danger" value="release:%s">Release</button>' % held in rows[held], \
        rows[held]
    assert '<meta name="q-release" content="Release the hold on %s?' in page, page[:3000]
    assert 'value="release:' not in rows[other], rows[other]      # only held rows offer it
    assert '<form id="act" class="act" method="post" action="/ui/action"><input type="hidden" name="csrf" ' \
        'value="%s"></form>' % csrf in page
    form = {"do": "release:" + held, "csrf": csrf}
    # without the CSRF token (or with another session's) nothing is released
    for bad_form in (dict(form, csrf=""), dict(form, csrf="0" * 64)):
        st, _, body = request(d, "POST", "/ui/action", dict(bad_form, confirm="yes"), jar)
        assert st == 403 and "CSRF" in body, (st, body)
    # the bearer token alone is no session: the browser's cookie is what it needs
    st, _, _ = request(d, "POST", "/ui/action", dict(form, confirm="yes"))
    assert st == 401
    # without confirm=yes it asks first
    st, _, body = request(d, "POST", "/ui/action", form, jar)
    assert st == 200 and 'name="confirm" value="yes"' in body and "Release the hold on" in body, body
    assert status_of(held) == "held"
    # confirmed: released, and the row leaves held
    st, _, body = request(d, "POST", "/ui/action", dict(form, confirm="yes"), dict(jar, Accept="application/json"))
    assert st == 200 and json.loads(body) == {"released": [held]}, (st, body)
    assert status_of(held) == "update-available"
    fresh = request(d, "GET", "/ui/rows", headers=jar)[2]
    mine = re.search(r'<tr data-name="%s".*?</tr>' % re.escape(held), fresh, re.S).group(0)
    assert 'data-status="update-available"' in mine and 'value="release:' not in mine, mine
    assert 'value="update:%s"' % held in mine, mine
    # without JavaScript: a redirect back to the table; nothing left to release is no error
    st, h, _ = request(d, "POST", "/ui/action", dict(form, confirm="yes"), jar)
    assert st == 303 and h["location"] == "/", (st, h)
    # an invalid name is refused as the API refuses it
    st, _, body = request(d, "POST", "/ui/action", dict(form, do="release:../x", confirm="yes"), jar)
    assert st == 400 and "containers" in body, (st, body)
    # the form's own fields (action, container) say the same as the row's button
    st, _, body = request(d, "POST", "/ui/action", {"action": "release", "container": held, "csrf": csrf,
                                                     "confirm": "yes"}, dict(jar, Accept="application/json"))
    assert st == 200 and json.loads(body) == {"released": []}, (st, body)
    assert inspect(held)["Id"] == held_id, "a release changed the container"
    assert "dashboard: released the hold on %s" % held in d.stderr_text()
    d.stop()


def wait_rollout(d, jar, timeout=180):
    """The fleet page's JSON once its rollout has finished."""
    got = {}

    def done():
        st, _, body = request(d, "GET", "/ui/fleet", headers=dict(jar, Accept="application/json"), timeout=120)
        assert st == 200, (st, body)
        got["j"] = json.loads(body)
        return got["j"]["rollout"]["state"] == "finished"
    wait_for(done, timeout, what="the fleet page's rollout to finish")
    return got["j"]


def test_fleet_page_lists_the_hosts_and_rolls_out(daemons, scope, containers, labels, image_factory,
                                                  plain_registry, tmp_path):
    """With fleet.hosts, /ui/fleet asks every host as `refit fleet status`
    does (health, version, paused, pending) and its Roll out form runs
    `refit fleet rollout` in the daemon: confirmation first, the session's
    CSRF token always, one rollout at a time, its progress and report on
    the page. A host that does not answer is shown as such and fails the
    rollout; without fleet.hosts the page says how to set one."""
    repo = image_factory.unique_repo("dash-fleet")
    v1, v2 = image_factory.make_many([{"registry": plain_registry, "repo": repo, "tag": t}
                                      for t in ("v1", "v2")])
    hosts, names, pairs = [], [], []
    for i in (1, 2):
        hs = "%s-h%d" % (scope, i)
        pair = stale_pair(image_factory, plain_registry, v1, v2, "dash-fleet-h%d" % i)
        names.append(containers.run(image=pair[0], hint="dash-fleet-h%d" % i,
                                    labels=labels({"refit.enable": "true", "refit.scope": hs})))
        pairs.append(pair)
        hosts.append(daemons(scope=hs, sub="host%d" % i).start())
    dead = free_port()
    hosts_file = tmp_path / "fleet.yml"
    hosts_file.write_text("hosts:\n" + "".join(
        "  - name: host%d\n    url: http://127.0.0.1:%d\n    token: %s\n" % (i + 1, h.port, h.token)
        for i, h in enumerate(hosts)) +
        "  - name: gone\n    url: http://127.0.0.1:%d\n    token: %s\n    connect_timeout: 2\n"
        % (dead, "x" * 20))
    # the dashboard's own daemon manages nothing (a scope no container has)
    d = daemons(scope=scope + "-dash", sub="dash", config_extra="fleet:\n  hosts: %s\n" % hosts_file).start()

    # without a session or the token: nothing
    assert request(d, "GET", "/ui/fleet")[0] == 401
    _, jar = login(d)
    st, _, page = request(d, "GET", "/ui/fleet", headers=jar, timeout=60)
    assert st == 200, (st, page[:2000])
    assert '<a href="/ui/fleet">Fleet</a>' in page
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr data-host="([^"]+)".*?</tr>', page, re.S)}
    assert sorted(rows) == ["gone", "host1", "host2"], rows
    for i, name in enumerate(names):
        row = rows["host%d" % (i + 1)]
        assert '<span class="status s-up-to-date">ok</span>' in row, row
        assert '<td data-label="Pending">1</td>' in row and name in row and "update-available" in row, row
        assert '<td data-label="Paused">no</td>' in row, row
    assert "unreachable" in rows["gone"] and "s-error" in rows["gone"], rows["gone"]
    csrf = csrf_of(page)
    assert 'name="action" value="fleet-rollout"' in page and 'data-confirm="Roll out' in page, page
    form = {"action": "fleet-rollout", "csrf": csrf, "canary": "1", "batch": "2"}
    # refused whole: no CSRF token, bad numbers, a bad tag; nothing started
    st, _, body = request(d, "POST", "/ui/action", dict(form, csrf="", confirm="yes"), jar)
    assert st == 403 and "CSRF" in body, (st, body)
    for bad, why in (({"batch": "0"}, "batch"), ({"canary": "x"}, "canary"),
                     ({"target_version": "no/tag"}, "target_version")):
        st, _, body = request(d, "POST", "/ui/action", dict(form, confirm="yes", **bad),
                              dict(jar, Accept="application/json"))
        assert st == 400 and why in json.loads(body)["error"], (bad, st, body)
    # without confirm=yes it asks first, carrying the form's values
    st, _, body = request(d, "POST", "/ui/action", form, jar)
    assert st == 200 and "Roll out an update to the 3 hosts of the fleet?" in body, body
    assert 'name="confirm" value="yes"' in body and 'name="canary" value="1"' in body and \
        'name="batch" value="2"' in body, body
    j = json.loads(request(d, "GET", "/ui/fleet", headers=dict(jar, Accept="application/json"), timeout=60)[2])
    assert j["rollout"]["state"] == "none", j["rollout"]
    for n, (p1, _) in zip(names, pairs):
        assert inspect(n)["Image"] == p1.id
    # confirmed: it runs in the daemon; the page follows it
    st, h, _ = request(d, "POST", "/ui/action", dict(form, confirm="yes"), jar)
    assert st == 303 and h["location"] == "/ui/fleet", (st, h)
    st, _, body = request(d, "POST", "/ui/action", dict(form, confirm="yes"), dict(jar, Accept="application/json"))
    if st != 409:   # the first may have ended already (it is short): then this is a second one
        assert st == 202, (st, body)
    else:
        assert "a rollout is running" in json.loads(body)["error"], body
    j = wait_rollout(d, jar)
    rep = j["rollout"]["report"]
    assert rep["result"] == "failed" and rep["rolled_back"] is False, rep
    by = {x["name"]: x for x in rep["hosts"]}
    assert by["host1"]["role"] == "canary" and by["host1"]["result"] == "succeeded", by
    assert by["host2"]["result"] == "succeeded" and by["gone"]["result"] == "failed", by
    assert "unreachable" in by["gone"]["error"], by["gone"]
    assert any(line.startswith("host1: ") for line in j["rollout"]["lines"]), j["rollout"]["lines"]
    for n, (_, p2) in zip(names, pairs):
        wait_for(lambda: inspect(n)["Image"] == p2.id, 30, what="%s on v2" % n)
    page = request(d, "GET", "/ui/fleet", headers=jar, timeout=60)[2]
    assert 'id="rollout-result"' in page and "rollout failed" in page and 'id="rollout-lines"' in page, page
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr data-host="([^"]+)".*?</tr>', page, re.S)}
    assert '<td data-label="Pending">0</td>' in rows["host1"], rows["host1"]
    # a hosts file that stops parsing is said on the page, the form gone
    hosts_file.write_text("hosts:\n  - name: a\n    url: ftp://x\n    token: %s\n" % ("y" * 20))
    page = request(d, "GET", "/ui/fleet", headers=jar)[2]
    assert 'id="fleet-error"' in page and ":3: hosts[0].url" in page and 'value="fleet-rollout"' not in page, page
    st, _, body = request(d, "POST", "/ui/action", dict(form, confirm="yes"), dict(jar, Accept="application/json"))
    assert st == 400 and "url" in json.loads(body)["error"], (st, body)
    # a daemon without fleet.hosts says how to set one
    _, jar1 = login(hosts[0])
    st, _, page = request(hosts[0], "GET", "/ui/fleet", headers=jar1)
    assert st == 200 and 'id="no-fleet"' in page and "fleet.hosts" in page, page
    st, _, body = request(hosts[0], "GET", "/ui/fleet", headers={"Authorization": "Bearer " + hosts[0].token})
    assert st == 404 and "fleet.hosts" in json.loads(body)["error"], (st, body)
    # SIGTERM with a finished rollout: a clean exit
    d.signal(signal.SIGTERM)
    assert d.wait_exit(30) == 0
    d.check_sanitizer()


def test_fleet_rollout_ends_with_the_daemon(daemons, scope, tmp_path):
    """SIGTERM while the page's rollout waits on a host that accepted the
    connection and says nothing: the daemon stops following it (no more
    hosts started, the request abandoned) and exits 0 at once, not after
    the request's 30 s."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(silent.accept()) for _ in range(8)], daemon=True).start()
    hosts_file = tmp_path / "fleet.yml"
    hosts_file.write_text("hosts:\n  - name: silent\n    url: http://127.0.0.1:%d\n    token: %s\n"
                          "  - name: never\n    url: http://127.0.0.1:%d\n    token: %s\n"
                          % (silent.getsockname()[1], "s" * 20, silent.getsockname()[1], "n" * 20))
    d = daemons(scope=scope, config_extra="fleet:\n  hosts: %s\n" % hosts_file).start()
    bearer = {"Authorization": "Bearer " + d.token}
    st, _, body = request(d, "POST", "/ui/action", {"action": "fleet-rollout"}, bearer)   # the token: no question
    assert st == 202 and json.loads(body) == {"rollout": "running", "hosts": 2}, (st, body)
    wait_for(lambda: held, 10, what="the rollout's request to the silent host")
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.wait_exit(20) == 0
    took = time.monotonic() - t0
    assert took < 10, took
    log = d.stderr_text()
    assert "fleet rollout: never: not started: refit stopped" in log, log[-3000:]
    d.check_sanitizer()
    silent.close()
