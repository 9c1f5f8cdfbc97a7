"""The management API under a hostile client (issue "bad input"):
slowloris-style partial requests, connection floods, oversized headers,
invalid UTF-8 and NUL bytes, deeply nested JSON.  The daemon must keep
serving /health, keep its threads and memory bounded, answer bad input with
a 4xx, and still update containers; and exit 0 on SIGTERM afterwards
(Daemon.stop asserts that, and that no sanitizer spoke).

docs/api.md's limits: 128 connections, 64 per client address, 15 s idle
timeout, 32 KiB request memory per connection, a thread per connection,
64 KiB bodies.

Source addresses.  The per-address limit (64) means that 64 hostile
connections from 127.0.0.1 also lock out every other client on 127.0.0.1;
that is the limit working, not the daemon failing.  The whole of 127.0.0.0/8
is loopback on Linux, so the hostile sockets bind 127.0.0.1 (or .3, .4, ...)
and the legitimate client (curl --interface) comes from 127.0.0.2: what the
tests prove is that a hostile *address* cannot take the API away from
*another* address, which is what the limits promise.
"""

import json
import os
import select
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from daemontools import CURL, Daemon
from swaptools import inspect

COMMAND = "/api/v1/management/orchestrator/update/command"
IDLE_TIMEOUT = 15          # docs/api.md: "15 s idle timeout"
PER_ADDRESS = 64           # docs/api.md: "64 per address"
CONNECTIONS = 128          # docs/api.md: "At most 128 connections"
LEGIT = "127.0.0.2"        # the well-behaved client's source address
NOTHING_QUEUED = {"running": None, "queued": 0, "paused": False, "last": None}


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def stale_image(image_factory, plain_registry):
    """(v1, v2): v1 on the host under REPO:latest, v2 the registry's newer
    image under the same reference (not pulled yet)."""
    v1 = image_factory.make(plain_registry, repo=image_factory.unique_repo("hostile"))
    v2 = image_factory.publish_new_version(v1)
    return v1, v2


# --------------------------------------------------------------------------
# helpers

class Answer:
    def __init__(self, status, body, elapsed, rc, err, args):
        self.status, self.body, self.elapsed, self.rc, self.err = status, body, elapsed, rc, err
        self.args = args

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError("not JSON: %r" % self)

    def __repr__(self):
        return "$ %s\n-> rc=%s status=%s in %.2fs: %r %s" % (
            " ".join(self.args), self.rc, self.status, self.elapsed, self.body[:1500],
            self.err[:500])


def curl_from(d, src, method, path, token=True, body=None, max_time=5):
    """One request with curl from source address SRC (curl --interface)."""
    args = [CURL, "-sS", "--interface", src, "-X", method, "--max-time", str(max_time),
            "-o", "-", "-w", "\n%{http_code}"]
    shown = list(args)
    if token:
        args += ["-H", "Authorization: Bearer %s" % d.token]
        shown += ["-H", "Authorization: Bearer ***"]
    data = b""
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        shown += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    args.append(d.url + path)
    shown.append(d.url + path)
    t0 = time.monotonic()
    p = subprocess.run(args, input=data, capture_output=True, timeout=max_time + 10)
    elapsed = time.monotonic() - t0
    out = p.stdout.decode("utf-8", "backslashreplace")
    body_text, _, code = out.rpartition("\n")
    status = int(code) if code.isdigit() and code != "000" else None
    return Answer(status, body_text, elapsed, p.returncode, p.stderr.decode(errors="replace"),
                  shown)


def health_from(d, src=LEGIT, within=2.0):
    """GET /health from SRC answers 200 {"status": "ok"} within WITHIN s."""
    r = curl_from(d, src, "GET", "/health", token=False, max_time=within + 3)
    assert r.status == 200 and r.json().get("status") == "ok", r
    assert r.elapsed <= within, "GET /health took %.2fs (at most %ss)\n%r" % (
        r.elapsed, within, r)
    return r


def proc_status(pid):
    """(threads, VmRSS in KiB) of PID."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return int(out["Threads"]), int(out["VmRSS"].split()[0])


def wait_threads(d, at_most, timeout=10):
    """Waits until the daemon has at most AT_MOST threads; returns the count."""
    deadline = time.monotonic() + timeout
    while True:
        n, _ = proc_status(d.proc.pid)
        if n <= at_most or time.monotonic() > deadline:
            return n
        time.sleep(0.1)


def nothing_queued(d, src=LEGIT):
    """No operation was queued or run, and the history is empty."""
    r = curl_from(d, src, "POST", COMMAND, body={"action": "status"})
    assert r.status == 200 and r.json() == NOTHING_QUEUED, r
    r = curl_from(d, src, "GET", "/api/v1/history")
    assert r.status == 200 and r.json() == {"history": []}, r


def raw_exchange(port, data, timeout=5.0):
    """Sends DATA on a fresh connection and reads until the daemon closes
    it (or TIMEOUT).  Returns (bytes received, closed by the daemon?)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((LEGIT, 0))
        s.connect(("127.0.0.1", port))
        got = b""
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass       # refused while we were still sending: read what came back
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return got, True
                got += chunk
        except ConnectionResetError:
            return got, True
        except socket.timeout:
            return got, False


def status_of(raw):
    """The status code of a raw HTTP/1.x answer, or None."""
    parts = raw.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1].isdigit():
        return int(parts[1])
    return None


def raw_post(d, path, body, ctype=b"application/json"):
    """A POST with exactly these bytes (path and body), authorized; the
    daemon's answer as (status, parsed JSON body or None, raw)."""
    req = (b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
           d.token.encode() + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: " +
           str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    got, closed = raw_exchange(d.port, req, timeout=10)
    head, _, payload = got.partition(b"\r\n\r\n")
    try:
        j = json.loads(payload)
    except ValueError:
        j = None
    return status_of(got), j, got


class Slowloris:
    """N connections from SRC, each sending a partial request one byte every
    INTERVAL seconds (half start at the request line, half after a complete
    request line and Host header), never finishing it.  A background thread
    trickles and notes when the daemon closes each connection (EOF or
    reset)."""

    LINE = b"GET /api/v1/history HTTP/1.1\r\n"
    HEADER = b"Host: 127.0.0.1\r\nX-Slowloris: "

    def __init__(self, port, n, src="127.0.0.1", interval=2.0):
        self.port, self.n, self.src, self.interval = port, n, src, interval
        self.socks = []
        self.pending = []          # bytes still to trickle, per socket
        self.last_sent = []        # monotonic time of the last byte sent, per socket
        self.closed = {}           # index -> monotonic time the daemon closed it
        self.received = {}         # index -> bytes the daemon sent (it should send none)
        self.trickling = True
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.thread = None
        self.opened = None         # monotonic time the first connection was opened

    def __enter__(self):
        self.opened = time.monotonic()
        try:
            for i in range(self.n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((self.src, 0))
                s.settimeout(3)
                s.connect(("127.0.0.1", self.port))   # the kernel completes the handshake
                s.setblocking(False)
                self.socks.append(s)
                # half trickle the request line, half the header after Host
                self.pending.append(bytearray((self.LINE + self.HEADER if i % 2 == 0 else
                                               self.HEADER) + b"a" * 100000))
                self.last_sent.append(None)
                if i % 2 == 1:
                    s.send(self.LINE)
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _run(self):
        next_send = 0.0
        while not self.stop_flag.is_set():
            now = time.monotonic()
            with self.lock:
                live = [i for i in range(len(self.socks)) if i not in self.closed]
                if self.trickling and now >= next_send:
                    for i in live:
                        try:
                            self.socks[i].send(bytes(self.pending[i][:1]))
                            del self.pending[i][:1]
                            self.last_sent[i] = now
                        except BlockingIOError:
                            pass
                        except OSError:
                            self.closed[i] = now
                    next_send = now + self.interval
                live = [i for i in live if i not in self.closed]
            if not live:
                time.sleep(0.05)
                continue
            readable, _, _ = select.select([self.socks[i] for i in live], [], [], 0.1)
            now = time.monotonic()
            with self.lock:
                for s in readable:
                    i = self.socks.index(s)
                    try:
                        data = s.recv(65536)
                    except OSError:
                        data = b""
                    if data:
                        self.received[i] = self.received.get(i, b"") + data
                    else:
                        self.closed[i] = now

    def stop_trickling(self):
        with self.lock:
            self.trickling = False

    def open_count(self):
        with self.lock:
            return self.n - len(self.closed)

    def snapshot(self):
        with self.lock:
            return dict(self.closed), list(self.last_sent), dict(self.received)

    def wait_closed(self, timeout):
        deadline = time.monotonic() + timeout
        while self.open_count() > 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.open_count() == 0

    def close(self):
        self.stop_flag.set()
        if self.thread:
            self.thread.join(timeout=5)
        for s in self.socks:
            s.close()


def flood(port, sources, per_source):
    """PER_SOURCE non-blocking connections from each address in SOURCES,
    opened at once; returns the sockets."""
    socks = []
    try:
        for src in sources:
            for _ in range(per_source):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.bind((src, 0))
                s.connect_ex(("127.0.0.1", port))
                socks.append(s)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def closed_by_daemon(socks, wait=1.0):
    """How many of SOCKS the daemon has closed (EOF or reset) after WAIT s."""
    time.sleep(wait)
    readable, _, _ = select.select(socks, [], [], 0.2)
    n = 0
    for s in readable:
        try:
            if s.recv(1024) == b"":
                n += 1
        except BlockingIOError:
            pass
        except OSError:
            n += 1
    return n


# --------------------------------------------------------------------------
# 1: slowloris

def test_slowloris_does_not_take_the_api_from_other_addresses(daemons, scope):
    """100 connections from 127.0.0.1 trickle partial requests one byte
    every 2 s.  The daemon holds at most 64 of them (its per-address limit;
    the rest are closed at once) in as many threads; meanwhile /health and an
    authorized GET from 127.0.0.2 answer in well under 2 s, while a new
    client on 127.0.0.1 itself is locked out (the limit is per address).
    The daemon closes every held connection about 15 s after it opened (a
    request must be complete by then, however its bytes trickle), and its
    threads go back."""
    d = daemons(scope=scope).start()
    base_threads, _ = proc_status(d.proc.pid)
    opened = time.monotonic()
    with Slowloris(d.port, 100, src="127.0.0.1", interval=2.0) as sl:
        time.sleep(1.5)
        held = sl.open_count()
        assert PER_ADDRESS - 4 <= held <= PER_ADDRESS, \
            "%d of 100 connections from one address held (limit %d)" % (held, PER_ADDRESS)
        threads, _ = proc_status(d.proc.pid)
        assert threads <= base_threads + PER_ADDRESS + 4, \
            "%d threads with %d slow connections (%d at start)" % (threads, held, base_threads)
        # the legitimate client, three times during the trickle
        for _ in range(3):
            health_from(d)
            r = curl_from(d, LEGIT, "GET", "/api/v1/history")
            assert r.status == 200 and r.json() == {"history": []}, r
            assert r.elapsed <= 2.0, r
            time.sleep(1.0)
        # the hostile address itself is at its limit: the per-address limit
        # is what keeps 127.0.0.2 free, hence the second address above
        r = curl_from(d, "127.0.0.1", "GET", "/health", token=False, max_time=3)
        assert r.status is None, "a 65th connection from 127.0.0.1 was served: %r" % r
        closed_before, last_sent, _ = sl.snapshot()
        assert all(last_sent[i] is not None for i in range(sl.n) if i not in closed_before), \
            "some held connection got no byte yet"

        # each held connection is closed ~15 s after it opened: the request deadline
        sl.stop_trickling()
        assert sl.wait_closed(IDLE_TIMEOUT + 8), \
            "%d slow connections still open %ds after they opened" % (
                sl.open_count(), IDLE_TIMEOUT + 8)
        closed, last_sent, received = sl.snapshot()
        ages = sorted(closed[i] - opened for i in closed if i not in closed_before)
        assert ages and IDLE_TIMEOUT - 1 <= ages[0] and ages[-1] <= IDLE_TIMEOUT + 5, \
            "closed %.1f..%.1fs after they opened (request deadline %ds)" % (
                ages[0], ages[-1], IDLE_TIMEOUT)
        assert not received, "the daemon answered incomplete requests: %r" % (
            list(received.items())[:3],)
    assert wait_threads(d, base_threads + 1) <= base_threads + 1
    health_from(d, "127.0.0.1")      # the address is free again
    d.stop()


def test_slowloris_from_two_addresses_is_cut_off_after_the_timeout(daemons, scope):
    """128 trickling connections, 64 from each of 127.0.0.3 and 127.0.0.4,
    fill the daemon's connection limit: for a while nobody else gets in.  A
    request that has not finished its headers within the idle timeout
    (15 s) is not a live request; by then (+5 s) the daemon must have cut
    the trickling connections and answer /health from 127.0.0.2 again."""
    d = daemons(scope=scope).start()
    with Slowloris(d.port, PER_ADDRESS, src="127.0.0.3", interval=2.0) as a, \
            Slowloris(d.port, PER_ADDRESS, src="127.0.0.4", interval=2.0) as b:
        t0 = time.monotonic()
        time.sleep(1.0)
        assert a.open_count() + b.open_count() >= CONNECTIONS - 8
        last = None
        while time.monotonic() - t0 < IDLE_TIMEOUT + 5:
            last = curl_from(d, LEGIT, "GET", "/health", token=False, max_time=2)
            if last.status == 200:
                break
        assert last is not None and last.status == 200, \
            "no /health for %.0fs while %d+%d connections trickle: %r" % (
                time.monotonic() - t0, a.open_count(), b.open_count(), last)
    d.stop()


def settle(d, base_threads, rnd):
    """After a flood: the daemon's threads go back to where they were."""
    n = wait_threads(d, base_threads + 1)
    assert n <= base_threads + 1, "round %d: %d threads after the flood (%d at start)" % (
        rnd, n, base_threads)


# --------------------------------------------------------------------------
# 2: connection flood

def test_connection_flood_is_bounded_and_recovers(daemons, scope):
    """200 connections at once from 127.0.0.1: the daemon keeps 64 (one
    thread each) and closes the other 136 at once; /health from 127.0.0.2
    answers meanwhile.  Then 200 from four other addresses (over the
    128-connection limit): at most 128 threads more.  Each time, once the
    clients go, the threads go too; RSS stays within a bound and does not
    grow from one round to the next (a sanitizer build keeps a small
    quarantine here, or freed memory would look like growth)."""
    d = daemons(scope=scope, env={"ASAN_OPTIONS": "detect_stack_use_after_return=1:"
                                                  "quarantine_size_mb=4"}).start()
    pid = d.proc.pid
    base_threads, base_rss = proc_status(pid)
    rss_after = []
    for rnd in range(2):
        socks = flood(d.port, ["127.0.0.1"], 200)
        try:
            refused = closed_by_daemon(socks)
            threads, rss = proc_status(pid)
            assert refused >= 200 - PER_ADDRESS, \
                "round %d: only %d of 200 connections from one address closed" % (rnd, refused)
            assert threads <= base_threads + PER_ADDRESS + 4, \
                "round %d: %d threads (%d at start)" % (rnd, threads, base_threads)
            assert rss - base_rss <= 64 * 1024, "round %d: RSS %d KiB (was %d)" % (
                rnd, rss, base_rss)
            health_from(d)
            assert d.alive()
        finally:
            for s in socks:
                s.close()
        settle(d, base_threads, rnd)
        health_from(d, "127.0.0.1")

        # over the global limit, from four addresses
        socks = flood(d.port, ["127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"], 50)
        try:
            time.sleep(1.5)
            threads, rss = proc_status(pid)
            assert threads <= base_threads + CONNECTIONS + 4, \
                "round %d: %d threads with 200 connections (limit %d)" % (
                    rnd, threads, CONNECTIONS)
            assert rss - base_rss <= 96 * 1024, "round %d: RSS %d KiB (was %d)" % (
                rnd, rss, base_rss)
            assert d.alive()
        finally:
            for s in socks:
                s.close()
        settle(d, base_threads, rnd)
        health_from(d)
        health_from(d, "127.0.0.3")
        rss_after.append(proc_status(pid)[1])
    # a second round costs (nearly) nothing more: nothing is kept per connection
    assert rss_after[1] - rss_after[0] <= 8 * 1024, \
        "RSS after round 1: %d KiB, after round 2: %d KiB (start %d)" % (
            rss_after[0], rss_after[1], base_rss)
    r = curl_from(d, LEGIT, "GET", "/api/v1/history")
    assert r.status == 200 and r.json() == {"history": []}, r
    d.stop()


# --------------------------------------------------------------------------
# 3: oversized headers

def test_oversized_headers_are_refused(daemons, scope):
    """A 64 KiB header line, 5000 headers, a 64 KiB URL, a 40 KB
    Authorization value: each is answered 431/414 (or 400/413) and the
    connection closed, within the 32 KiB of request memory; a request whose
    headers fit is still served."""
    d = daemons(scope=scope).start()
    get = b"GET /api/v1/history HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    auth = b"Authorization: Bearer " + d.token.encode() + b"\r\n"
    cases = [
        ("a 64 KiB header line", get + auth + b"X-Big: " + b"a" * 65536 + b"\r\n\r\n"),
        ("5000 headers", get + auth + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) +
         b"\r\n"),
        ("a 64 KiB URL", b"GET /health?" + b"a" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("a 40 KB Authorization", get + b"Authorization: Bearer " + b"t" * 40000 +
         b"\r\n\r\n"),
        ("a 64 KiB header name", get + auth + b"X" * 65536 + b": v\r\n\r\n"),
        ("a 64 KiB header without a line end", get + auth + b"X-Big: " + b"a" * 65536),
    ]
    for what, req in cases:
        got, closed = raw_exchange(d.port, req, timeout=5)
        st = status_of(got)
        assert st in (400, 413, 414, 431) or (st is None and closed and not got), \
            "%s: %r (closed: %s)" % (what, got[:300], closed)
        assert closed, "%s: answered %s but the connection stays open" % (what, st)
        assert d.alive(), "%s: the daemon died\n%s" % (what, d.stderr_text()[-3000:])
        health_from(d)
    # all of them at once, 20 of each
    with ThreadPoolExecutor(max_workers=24) as ex:
        got = list(ex.map(lambda c: raw_exchange(d.port, c[1], timeout=10), cases * 20))
    for (what, _), (raw, closed) in zip(cases * 20, got):
        assert status_of(raw) in (400, 413, 414, 431, None) and closed, (what, raw[:200])
    # headers that fit (a 20 KB header) are fine
    got, _ = raw_exchange(d.port, get + auth + b"X-Fits: " + b"a" * 20000 +
                          b"\r\nConnection: close\r\n\r\n")
    assert status_of(got) == 200 and got.endswith(b'{"history":[]}'), got[:300]
    health_from(d)
    d.stop()


# --------------------------------------------------------------------------
# 4: invalid UTF-8 and NUL bytes

BAD_BODIES = [
    (b"/api/v1/update", b'{"containers": ["a\xff\xfe"]}'),
    (b"/api/v1/update", b'{"containers": ["\xc0\xaf"]}'),                # overlong '/'
    (b"/api/v1/update", b'{"containers": ["\xed\xa0\x80"]}'),            # a surrogate
    (b"/api/v1/update", b'{"containers": ["\xf4\x90\x80\x80"]}'),        # > U+10FFFF
    (b"/api/v1/update", b'{"containers": ["ab\xe2\x82"]}'),              # truncated
    (b"/api/v1/update", b'{"containers": ["\\ud800"]}'),                 # lone escape
    (b"/api/v1/update", b'{"contai\xffners": ["a"]}'),
    (b"/api/v1/update", b'{"containers": ["a\x00b"]}'),
    (b"/api/v1/update", b'{"containers": ["a\\u0000b"]}'),
    (b"/api/v1/update", b'\x00{"containers": ["a"]}'),
    (b"/api/v1/update", b'{"containers": ["a"]}\x00'),
    (b"/api/v1/update", b'{"dry_run": true}\x00{"containers": ["x"]}'),
    (b"/api/v1/update", b'\xef\xbb\xbf{"dry_run": true}'),
    (b"/api/v1/update", b'\xff\xfe{\x00}\x00'),                          # UTF-16
    (b"/api/v1/rollback", b'{"all": true, "\xff": 1}'),
    (COMMAND.encode(), b'{"action": "trig\xffger"}'),
    (COMMAND.encode(), b'{"action": "trigger\x00"}'),
    (COMMAND.encode(), b'{"action": "trigger\\u0000"}'),
    (COMMAND.encode(), b'{"action": "trigger", "containers": ["\xff"]}'),
    (COMMAND.encode(), b'{"action": "trigger", "x\x00": 1}'),
    (COMMAND.encode(), b'{"action": "trigger", "migration_config": {"\xfe": true}}'),
    (COMMAND.encode(), b'{"action": "trigger", "target_version": "v\xff"}'),
]


def test_invalid_utf8_and_nul_in_bodies_are_400(daemons, scope):
    """Bodies of POST /api/v1/update, /api/v1/rollback and the fleet command
    with invalid UTF-8 or NUL bytes (raw or \\u0000) in strings, keys and
    around the document: 400 {"error": ...}, nothing queued, daemon alive."""
    d = daemons(scope=scope).start()
    for path, body in BAD_BODIES:
        st, j, raw = raw_post(d, path, body)
        assert st == 400 and isinstance(j, dict) and isinstance(j.get("error"), str) \
            and j["error"], "%s %r: %r" % (path, body[:80], raw[:400])
        assert d.alive()
    # invalid bytes in the path: an unknown endpoint, not a crash
    for path in (b"/api/v1/update%ff", b"/api/v1/upd\xffate", b"/v1/update%ff%fe",
                 b"/api/v1/%00update"):
        st, j, raw = raw_post(d, path, b"{}")
        assert st == 404 and isinstance(j, dict) and j.get("error"), "%r: %r" % (path, raw[:300])
    r = curl_from(d, LEGIT, "GET", "/api/v1/operations/%ff%fe%00%c3")
    assert r.status == 404 and r.json().get("error"), r
    # the valid part of the same queries is fine (the daemon answers 400 on a bad ref)
    r = curl_from(d, LEGIT, "POST", "/v1/update?image=%20bad%20ref")
    assert r.status == 400 and r.json().get("error"), r
    nothing_queued(d)
    health_from(d)
    d.stop()


def test_invalid_utf8_in_the_query_is_400(daemons, scope):
    """POST /v1/update?image=%ff%fe (and an image name of valid UTF-8 that
    the 64-byte quote in the message cuts in the middle of a character):
    400 with an error, nothing queued."""
    d = daemons(scope=scope).start()
    for query in ("image=%ff%fe", "image=busybox%ff", "image=a" + "%C3%A9" * 40):
        r = curl_from(d, LEGIT, "POST", "/v1/update?" + query)
        assert r.status == 400 and "image" in r.json().get("error", ""), r
    nothing_queued(d)
    d.stop()


def test_long_non_ascii_unknown_field_is_400(daemons, scope):
    """An unknown field whose (valid UTF-8) name is longer than the 64
    bytes the message quotes: 400 naming it, not 500."""
    d = daemons(scope=scope).start()
    key = "a" + "\u00e9" * 40                   # byte 64 is inside an 'é'
    for path, body in (("/api/v1/update", {key: 1}),
                       (COMMAND, {"action": "status", "migration_config": {key: True}})):
        r = curl_from(d, LEGIT, "POST", path, body=body)
        assert r.status == 400 and "unknown field" in r.json().get("error", ""), r
    nothing_queued(d)
    d.stop()


def test_nul_in_the_url_is_refused(daemons, scope):
    """POST /v1/update?image=a%00b names no image refit can honour: 400,
    no update pass.  POST /api/v1/update%00x is no endpoint: 404 (or 400),
    nothing queued."""
    d = daemons(scope=scope).start()
    failures = []
    r = curl_from(d, LEGIT, "POST", "/v1/update?image=a%00b")
    if not (r.status == 400 and "image" in r.json().get("error", "")):
        failures.append(r)
    for path in ("/api/v1/update%00x", "/api/v1/update%00"):
        r = curl_from(d, LEGIT, "POST", path, body={"containers": ["nothing-here"]})
        if r.status not in (400, 404):
            failures.append(r)
    assert not failures, "\n".join(map(repr, failures))
    nothing_queued(d)
    d.stop()


# --------------------------------------------------------------------------
# 5: deep nesting

def test_deeply_nested_json_is_400(daemons, scope):
    """10000 nested arrays or objects (within 64 KiB), at the top and inside
    the fields refit reads, to every body-taking endpoint, also 16 at once
    (each connection has a 256 KiB thread stack): 400 with an error, no
    crash, no sanitizer report, nothing queued."""
    d = daemons(scope=scope).start()
    n = 10000
    bodies = [
        b"[" * n + b"]" * n,
        b'{"a":' * n + b"1" + b"}" * n,
        b"[{" * (n // 2) + b"}]" * (n // 2),
        b'{"containers":' + b"[" * n + b"]" * n + b"}",
        b'{"dry_run":' + b'{"x":' * n + b"1" + b"}" * n + b"}",
        b'{"containers":["a",' + b"[" * n,                          # never closed
        b'{"action":"status","migration_config":{"rename_map":' + b'{"a":' * n + b"1" +
        b"}" * n + b"}}",
        b'{"action":"status","containers":' + b"[" * n + b"]" * n + b"}",
    ]
    paths = [b"/api/v1/update", b"/api/v1/rollback", COMMAND.encode()]
    for body in bodies:
        assert len(body) <= 64 * 1024, len(body)
        for path in paths:
            st, j, raw = raw_post(d, path, body)
            assert st == 400 and isinstance(j, dict) and j.get("error"), \
                "%s %r...: %r" % (path, body[:40], raw[:300])
            assert d.alive(), d.stderr_text()[-4000:]
    with ThreadPoolExecutor(max_workers=16) as ex:
        got = list(ex.map(lambda b: raw_post(d, b"/api/v1/update", b), bodies * 4))
    for body, (st, j, raw) in zip(bodies * 4, got):
        assert st == 400, "%r...: %r" % (body[:40], raw[:300])
    nothing_queued(d)
    health_from(d)
    d.stop()


# --------------------------------------------------------------------------
# 6: an update under slowloris

def test_update_happens_while_slowloris_holds_connections(daemons, scope, scoped, containers,
                                                         stale_image):
    """While 100 slowloris connections from 127.0.0.1 trickle (64 held), a
    stale container is updated by POST /api/v1/update from 127.0.0.2: the
    operation reaches succeeded and the container runs the new image, and
    the slow connections stay held until it has (or until the 15 s request
    deadline cuts them, as designed, when the update takes longer on a busy
    host).  Then SIGTERM with 64 slow connections open: exit 0, promptly."""
    v1, v2 = stale_image
    name = containers.run(v1, labels=scoped(), hint="hostile")
    assert inspect(name)["Image"] == v1.id
    d = daemons(scope=scope).start()
    with Slowloris(d.port, 100, src="127.0.0.1", interval=2.0) as sl:
        time.sleep(1.0)
        assert sl.open_count() >= PER_ADDRESS - 4
        r = curl_from(d, LEGIT, "POST", "/api/v1/update", body={"containers": [name]})
        assert r.status == 202 and r.json().get("state") == "queued", r
        op = r.json()["operation"]
        deadline = time.monotonic() + 90
        rec = None
        while time.monotonic() < deadline:
            r = curl_from(d, LEGIT, "GET", "/api/v1/operations/%s" % op)
            assert r.status == 200, r
            rec = r.json()
            if rec.get("state") in ("succeeded", "failed"):
                break
            time.sleep(0.3)
        done = time.monotonic()
        assert rec and rec.get("state") == "succeeded", "operation %s: %r\n%s" % (
            op, rec, d.stderr_text()[-4000:])
        got = {c["name"].lstrip("/"): c.get("status") for c in rec["result"]["containers"]}
        assert got == {name: "updated"}, rec
        ins = inspect(name)
        assert ins["State"]["Running"] and ins["Image"] == v2.id, \
            "%s: running=%s image=%s (want %s)" % (name, ins["State"]["Running"],
                                                   ins["Image"], v2.id)
        health_from(d)
        # the hostile clients were there the whole time: none of the held
        # ones was cut before the update was done or their deadline came
        closed, _, _ = sl.snapshot()
        until = min(done, sl.opened + IDLE_TIMEOUT - 1)
        held = sl.n - sum(1 for t in closed.values() if t < until)
        assert held >= PER_ADDRESS - 4, \
            "only %d slow connections held until %.1f s after opening" % (held, until - sl.opened)
    # fresh ones from another address (the first may have met their deadline)
    with Slowloris(d.port, PER_ADDRESS, src="127.0.0.5", interval=2.0) as fresh:
        time.sleep(1.0)
        assert fresh.open_count() >= PER_ADDRESS - 4
        t0 = time.monotonic()
        d.stop(timeout=30)
        assert time.monotonic() - t0 < 10, "SIGTERM took %.1fs with slow connections open" % (
            time.monotonic() - t0)
