"""Notifications (SPEC.md: Notifications; docs/configuration.md): after a
pass that changed or failed something, refit POSTs to the configured URLs.

The receivers are small HTTP servers on 127.0.0.1 started by the tests
(generic JSON, ntfy and gotify forms, with ?scheme=http / ?disabletls=yes);
Slack and Discord differ only in the body, checked by the unit tests.  Each
test swaps a real container on a real registry: an update, a bad version
rolled back, a rollback, a daemon pass; a receiver that fails twice before
it answers (retried), one that refuses (not retried) and one that never
answers (the update's result is out at once and refit exits within its
bounded wait)."""

import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
import uuid

import pytest

from harness import HTTPReceiver, digest_only, free_port, wait_for
from swaptools import (case_refit, config_text, rollback, same_digest,
                       sanitizer_report, update)
from swaptools import common_pairs, swap_images, swapenv  # noqa: F401 (fixtures)

# refit waits this long for deliveries before it exits (NOTIFY_EXIT_WAIT).
EXIT_WAIT = 15


class Receiver(HTTPReceiver):
    """An HTTP server on 127.0.0.1 that records every request.  answers:
    {path: [status, ...]} - the statuses given in turn for that path (the
    last one repeats); 200 for any other path."""

    def __init__(self, answers=None):
        self.answers = {k: list(v) for k, v in (answers or {}).items()}

        def answer(req):  # called under the receiver's lock
            todo = self.answers.get(req["path"].split("?")[0])
            return (todo.pop(0) if len(todo) > 1 else todo[0]) if todo else 200, {}
        super().__init__(None, answer)

    def url(self, scheme, path):
        return "%s127.0.0.1:%d%s" % (scheme, self.port, path)


class Silent:
    """Accepts connections on 127.0.0.1 and never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)

    def stop(self):
        self.stopped.set()
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture
def receiver():
    made = []

    def make(answers=None):
        r = Receiver(answers)
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop()


def short(digest):
    return digest_only(digest).split(":", 1)[1][:12]


def notify_config(*urls):
    return "notifications:\n" + "".join("  - \"%s\"\n" % u for u in urls)


def one_json(req):
    assert req["headers"].get("Content-Type", "").startswith("application/json"), req["headers"]
    return json.loads(req["body"])


def test_update_notifies_every_kind(refit, scope, swapenv, common_pairs, swap_images, receiver):
    """A container updated: the generic hook gets refit's JSON (name, image,
    old and new digest, outcome), ntfy a text message with its Title and
    Priority headers, gotify its JSON with the token in X-Gotify-Key; the
    token is not in the log.  A second pass with nothing to do sends nothing;
    a rollback sends kind "rollback"."""
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    name = swapenv.run(v1, swapenv.managed(), hint="notify")
    rx = receiver()
    token = "Agot%s" % uuid.uuid4().hex[:12]
    cfg = notify_config(rx.url("generic+http://", "/hook?src=refit"),
                        rx.url("ntfy://", "/refit-topic?scheme=http&title=Deploys&priority=high"),
                        rx.url("gotify://", "/gotify/%s?disabletls=yes" % token))

    res = update(refit, scope, extra_config=cfg)
    assert res.rc == 0, res.describe()
    assert res[name]["status"] == "updated", res.describe()

    hook = rx.got("/hook")
    assert len(hook) == 1, (rx.requests, res.describe())
    assert hook[0]["path"] == "/hook?src=refit"
    p = one_json(hook[0])
    assert p["kind"] == "update" and p["host"] == socket.gethostname(), p
    assert p["summary"].endswith("update: 1 updated"), p
    assert [c["name"] for c in p["containers"]] == [name], p
    c = p["containers"][0]
    assert c["outcome"] == "updated" and "error" not in c, c
    assert c["image"] == v1.ref, c
    assert same_digest(c["old_digest"], v1.digest) and same_digest(c["new_digest"], v2.digest), c
    assert hook[0]["headers"].get("User-Agent", "").startswith("refit/")

    ntfy = rx.got("/refit-topic")
    assert len(ntfy) == 1, rx.requests
    assert ntfy[0]["headers"].get("Title") == "Deploys"
    assert ntfy[0]["headers"].get("Priority") == "4"
    text = ntfy[0]["body"].decode()
    assert "%s: updated %s -> %s" % (name, short(v1.digest), short(v2.digest)) in text, text

    got = rx.got("/gotify/message")
    assert len(got) == 1, rx.requests
    assert got[0]["headers"].get("X-Gotify-Key") == token
    g = one_json(got[0])
    assert g["priority"] == 5 and g["title"].startswith("refit on "), g
    assert name in g["message"], g
    assert token not in res.res.stderr, "the gotify token was logged\n" + res.describe()
    assert "notification sent to gotify 127.0.0.1:%d" % rx.port in res.res.stderr, res.describe()

    # nothing to do: nothing sent
    before = len(rx.requests)
    res = update(refit, scope, extra_config=cfg)
    assert res.rc == 0 and res[name]["status"] == "up-to-date", res.describe()
    assert len(rx.requests) == before, rx.requests[before:]

    # a rollback is a change too
    res = rollback(refit, scope, name, extra_config=notify_config(rx.url("generic+http://", "/rb")))
    assert res.rc == 0 and res[name]["status"] == "rolled-back", res.describe()
    rb = rx.got("/rb")
    assert len(rb) == 1, rx.requests
    p = one_json(rb[0])
    assert p["kind"] == "rollback", p
    c = p["containers"][0]
    assert c["name"] == name and c["outcome"] == "rolled-back", c
    assert same_digest(c["old_digest"], v2.digest) and same_digest(c["new_digest"], v1.digest), c


def test_failed_update_notifies_rollback_and_error(refit, scope, swapenv, common_pairs, swap_images,
                                                   receiver):
    """The new version never gets healthy: the update is rolled back, and the
    notification says so with the error; the exit code is the update's (1)."""
    v1, v2 = common_pairs["unhealthy"]
    swap_images.back_to(v1)
    name = swapenv.run(v1, swapenv.managed(), hint="notify-bad")
    rx = receiver()

    res = update(refit, scope, extra_config=notify_config(rx.url("generic+http://", "/hook"),
                                                         rx.url("ntfy://", "/bad?scheme=http")))
    assert res.rc == 1, res.describe()
    assert res[name]["status"] == "rolled-back", res.describe()
    hook = rx.got("/hook")
    assert len(hook) == 1, rx.requests
    p = one_json(hook[0])
    c = p["containers"][0]
    assert c["name"] == name and c["outcome"] == "rolled-back", c
    assert "unhealthy" in c["error"].lower(), c
    assert c["error"] == res[name]["error"]
    assert same_digest(c["old_digest"], v1.digest) and same_digest(c["new_digest"], v2.digest), c
    assert p["summary"].endswith("update: 1 rolled back"), p
    text = rx.got("/bad")[0]["body"].decode()
    assert "%s: update to %s failed, rolled back to %s" % (name, short(v2.digest), short(v1.digest)) in text, text


def test_retry_on_5xx_and_no_retry_on_4xx(refit, scope, swapenv, common_pairs, swap_images, receiver):
    """A receiver that answers 500 twice, then 200, gets the same message
    three times (waits of 1 s and 2 s); one that answers 404 is asked once.
    The update itself succeeded either way."""
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    name = swapenv.run(v1, swapenv.managed(), hint="notify-retry")
    rx = receiver({"/flaky": [500, 500, 200], "/gone": [404]})

    res = update(refit, scope, extra_config=notify_config(rx.url("generic+http://", "/flaky"),
                                                         rx.url("generic+http://", "/gone")))
    assert res.rc == 0 and res[name]["status"] == "updated", res.describe()
    flaky = rx.got("/flaky")
    assert len(flaky) == 3, rx.requests
    assert flaky[0]["body"] == flaky[1]["body"] == flaky[2]["body"]
    assert one_json(flaky[2])["containers"][0]["name"] == name
    gaps = [b["time"] - a["time"] for a, b in zip(flaky, flaky[1:])]
    assert 0.8 <= gaps[0] < 5 and 1.8 <= gaps[1] < 6, gaps
    assert "notification sent to generic 127.0.0.1:%d (after retrying)" % rx.port in res.res.stderr, \
        res.describe()
    assert len(rx.got("/gone")) == 1, rx.requests
    assert "failed after 1 attempt: HTTP 404" in res.res.stderr, res.describe()


def test_receiver_never_answers(refit, scope, swapenv, common_pairs, swap_images):
    """A receiver that accepts and never answers: the update's result is
    printed as soon as the pass is done, the exit code is the update's, and
    refit gives up on the notification within its bounded wait."""
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    name = swapenv.run(v1, swapenv.managed(), hint="notify-silent")
    silent = Silent()
    try:
        refit.write_config(config_text(refit, notify_config(
            "generic+http://127.0.0.1:%d/hook" % silent.port)))
        cmd = [refit.binary, "update", "--config", refit.config_path, "--state-dir", refit.state_dir,
               "--json", "--scope", scope]
        env = refit.base_env()
        env.setdefault("ASAN_OPTIONS", "detect_stack_use_after_return=1")
        lines = []
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=refit.dir)
        printed = None
        for raw in p.stdout:
            lines.append(raw.decode())
            if raw.rstrip(b"\n") == b"}":    # the end of the JSON document
                printed = time.monotonic()
        _, err = p.communicate(timeout=120)
        exited = time.monotonic()
        err = err.decode(errors="replace")
        out = "".join(lines)
        desc = "rc=%s\n--- stdout\n%s\n--- stderr\n%s" % (p.returncode, out, err)
        assert sanitizer_report(err) is None, desc
        assert p.returncode == 0, desc
        assert printed is not None, desc
        entry = {c["name"]: c for c in json.loads(out)["containers"]}[name]
        assert entry["status"] == "updated", desc
        assert silent.conns, "refit never connected to the receiver\n" + desc
        # the result came out before the wait, and the wait is bounded
        assert exited - printed <= EXIT_WAIT + 6, (printed - t0, exited - printed, desc)
        assert exited - printed >= EXIT_WAIT - 2, (printed - t0, exited - printed, desc)
        assert "not delivered within %d s" % EXIT_WAIT in err, desc
    finally:
        silent.stop()


def test_daemon_pass_notifies_with_operation(refit_bin, tmp_path, scope, swapenv, common_pairs,
                                             swap_images, receiver):
    """`refit daemon` runs a pass at start (poll_interval); its notification
    carries the operation's id, which the API knows."""
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    name = swapenv.run(v1, swapenv.managed(), hint="notify-daemon")
    rx = receiver()
    r = case_refit(refit_bin, tmp_path, "daemon")
    port = free_port()
    token = uuid.uuid4().hex
    r.write_config(config_text(r, "poll_interval: 1h\napi:\n  listen: 127.0.0.1:%d\n  token: %s\n%s"
                                  % (port, token, notify_config(rx.url("generic+http://", "/hook")))))
    log = open(os.path.join(str(tmp_path), "daemon.log"), "wb")
    p = subprocess.Popen([r.binary, "daemon", "--config", r.config_path, "--state-dir", r.state_dir,
                          "--scope", scope], stdout=log, stderr=subprocess.STDOUT, env=r.base_env(),
                         cwd=r.dir)

    def daemon_log():
        with open(os.path.join(str(tmp_path), "daemon.log"), "rb") as f:
            return f.read().decode(errors="replace")
    try:
        wait_for(lambda: rx.got("/hook") or p.poll() is not None, 120, interval=0.3,
                 what="the daemon's notification")
        assert p.poll() is None, daemon_log()
        hook = rx.got("/hook")
        assert len(hook) == 1, (rx.requests, daemon_log())
        payload = one_json(hook[0])
        c = payload["containers"][0]
        assert c["name"] == name and c["outcome"] == "updated", payload
        assert same_digest(c["old_digest"], v1.digest) and same_digest(c["new_digest"], v2.digest), c
        op = payload.get("operation")
        assert op, payload
        rec = {}

        def finished():
            req = urllib.request.Request("http://127.0.0.1:%d/api/v1/operations/%s" % (port, op),
                                         headers={"Authorization": "Bearer %s" % token})
            with urllib.request.urlopen(req, timeout=10) as resp:
                rec.update(json.loads(resp.read()))
            return rec.get("state") not in ("queued", "running")
        wait_for(finished, 60, interval=0.3, what="operation %s to finish" % op)
        assert rec.get("id") == op and rec.get("state") == "succeeded", rec
    finally:
        p.terminate()
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
    text = daemon_log()
    assert sanitizer_report(text) is None, text
    assert p.returncode == 0, text
