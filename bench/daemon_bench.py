#!/usr/bin/python3
"""Benchmark of `refit daemon`: memory after start, CPU while idle, GET /health under load.

Starts the daemon as systemd would (a notify socket, WATCHDOG_USEC as the
shipped unit's WatchdogSec=120s) on a free loopback port, with its own
state_dir in a temporary directory, an API token, a scope that matches no
container and a poll_interval of a year, then prints:

- the time to the first /health answer and to READY=1;
- its RSS right after start (VmRSS from /proc/PID/status, with the anonymous
  and file-backed parts), beside the target of at most 4 MiB;
- the CPU time it used (utime + stime from /proc/PID/stat) and its context
  switches over an idle period (--idle, default 60 s), and the watchdog pings;
- GET /health from `wrk --latency` in a second process (--load seconds, for
  each of --connections): requests/s, p50 and p99 latency, socket errors,
  and the daemon's RSS and thread count during and after the load.

The API accepts at most 64 connections per client address (128 in all), and
every wrk connection comes from 127.0.0.1: a run with more than 64 has the
others closed on arrival, and wrk counts them as socket errors.

Then, with --dashboard N (default 100; 0 skips it), the dashboard: a second
daemon manages N containers (created from 20 images of a local registry
the harness starts, not started: include_stopped, so that 100 of them cost
the shared machine nothing), one update pass gives every row a last change,
half the images get a newer version, and GET / (the page, after the login
form) and GET /api/v1/containers (the same data as JSON) are each asked
--rounds times in turn: bytes, wall time at the client, and the daemon's
own Server-Timing (check: the registry check, engine state and history;
render: the HTML, encode: the JSON), beside the targets of a page under
100 KiB rendered in under 50 ms.

Never fails on a slow machine: it only prints figures. It exits non-zero only
when the daemon dies, does not come up, answers /health with anything but 200,
or does not exit 0 on SIGTERM.

    make bench-daemon
    make bench-daemon BENCH_ARGS="--idle 10 --load 5 --connections 64"
    make bench-daemon BENCH_ARGS="--idle 0 --load 0 --dashboard 100 --rounds 20"
"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BIN = os.path.join(HERE, "..", "refit")
RSS_TARGET_KIB = 4096
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Failure(Exception):
    """The daemon did something a benchmark must not accept."""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid):
    """{field: value} of /proc/PID/status (kB fields as ints)."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            v = v.strip()
            m = re.match(r"^(\d+) kB$", v)
            out[k] = int(m.group(1)) if m else v
    return out


def cpu_ticks(pid):
    """utime + stime of the whole process, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # fields 14 and 15 of stat(5)


def ctxt_switches(pid):
    """Voluntary + involuntary context switches summed over all threads."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass   # the thread ended meanwhile
    return total


def mib(kib):
    return "%.1f MiB" % (kib / 1024.0)


def get(url, timeout=2.0):
    """(status, body) of GET url; status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


class Notify:
    """A systemd notify socket: records READY=1 and WATCHDOG=1 with their times."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.ready_at = None
        self.watchdog = 0
        self.messages = []
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(4096).decode(errors="replace")
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            for line in data.splitlines():
                self.messages.append((now, line))
                if line == "READY=1" and self.ready_at is None:
                    self.ready_at = now
                elif line == "WATCHDOG=1":
                    self.watchdog += 1

    def close(self):
        self._stop = True
        self._t.join(2)
        self.sock.close()


class Sampler:
    """Samples the daemon's VmRSS and thread count every INTERVAL seconds."""

    def __init__(self, pid, interval=0.1):
        self.pid, self.interval = pid, interval
        self.rss, self.threads = [], []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                st = proc_status(self.pid)
                self.rss.append(st["VmRSS"])
                self.threads.append(int(st["Threads"]))
            except (OSError, KeyError, ValueError):
                return
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._t.join(2)


def to_ms(text):
    m = re.match(r"^([\d.]+)(us|ms|s|m)$", text)
    if not m:
        return None
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def parse_wrk(out):
    """Figures from wrk --latency output."""
    res = {"rps": None, "p50": None, "p99": None, "requests": None,
           "connect": 0, "read": 0, "write": 0, "timeout": 0, "non2xx": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, out, re.M)
        if m:
            res[key] = to_ms(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    if m:
        res["requests"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["connect"], res["read"], res["write"], res["timeout"] = map(int, m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    return res


def check_alive(proc, what):
    if proc.poll() is not None:
        raise Failure("the daemon exited with %s %s" % (proc.returncode, what))


def load_run(proc, url, connections, seconds, threads):
    """One wrk run; prints its figures; raises Failure on error answers or a dead daemon."""
    threads = max(1, min(threads, connections))
    sampler = Sampler(proc.pid)
    p = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds,
                        "--timeout", "5s", "--latency", url],
                       capture_output=True, text=True, timeout=seconds + 60)
    sampler.stop()
    check_alive(proc, "during the load with %d connections" % connections)
    if p.returncode != 0:
        raise Failure("wrk failed (exit %d): %s" % (p.returncode, (p.stderr or p.stdout).strip()))
    w = parse_wrk(p.stdout)
    time.sleep(1.0)   # the connections' threads end
    after = proc_status(proc.pid)
    status, _ = get(url)
    print("load: wrk, %d threads, %d connections, %d s, GET /health: %s req/s, p50 %s, p99 %s (%s requests)"
          % (threads, connections, seconds,
             "%.0f" % w["rps"] if w["rps"] is not None else "?",
             "%.2f ms" % w["p50"] if w["p50"] is not None else "?",
             "%.2f ms" % w["p99"] if w["p99"] is not None else "?",
             w["requests"] if w["requests"] is not None else "?"))
    errors = w["connect"] + w["read"] + w["write"] + w["timeout"]
    if errors:
        note = ""
        if connections > 64:
            note = " (the API keeps at most 64 connections per client address and closes the others)"
        print("      socket errors: connect %d, read %d, write %d, timeout %d%s"
              % (w["connect"], w["read"], w["write"], w["timeout"], note))
    print("      daemon RSS during the load: peak %s (%d samples), threads peak %d; after: %s, %s threads"
          % (mib(max(sampler.rss)) if sampler.rss else "?", len(sampler.rss),
             max(sampler.threads) if sampler.threads else 0, mib(after["VmRSS"]), after["Threads"]))
    if w["non2xx"]:
        raise Failure("%d answers to GET /health were not 2xx/3xx" % w["non2xx"])
    if status != 200:
        raise Failure("GET /health after the load answered %s" % (status or "nothing"))
    return w


def timing_of(header):
    """{name: ms} of a Server-Timing header ("check;dur=1.2, render;dur=0.3")."""
    out = {}
    for part in (header or "").split(","):
        m = re.match(r"^\s*([a-z]+);dur=([\d.]+)\s*$", part)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def fetch(port, path, headers, method="GET", body=None):
    """(status, headers {lower: value}, body bytes, wall ms) of one request on a fresh connection."""
    import http.client
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    wall = (time.monotonic() - t0) * 1000
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data, wall


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else float("nan")


def dashboard_bench(binary, n, rounds, tmp):
    """The page for N containers against the same data as JSON; prints the figures."""
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
    import harness
    from harness import Containers, Engine, ImageFactory, Registry

    run_id = "b" + secrets.token_hex(4)
    Engine().ensure()
    factory = ImageFactory(run_id, tmp, workers=4)
    reg = Registry(tmp, "bench-dash")
    conts = Containers(run_id, "refit-bench-dash-%s" % run_id)
    scope = "bench-dash-" + run_id
    proc = None
    try:
        reg.start()
        n_images = min(20, n)
        t0 = time.monotonic()
        images = factory.make_many([{"registry": reg, "repo": factory.unique_repo("dash")}
                                    for _ in range(n_images)])
        specs = [{"image": images[i % n_images], "hint": "c",
                  "labels": {"refit.enable": "true", "refit.scope": scope}} for i in range(n)]
        with ThreadPoolExecutor(max_workers=8) as ex:
            list(ex.map(lambda sp: conts.create(**sp), specs))
        for img in images:   # every container has a newer version for the first pass
            factory.publish_new_version(img)
        port, token = free_port(), secrets.token_hex(24)
        state = os.path.join(tmp, "dash-state")
        cfg = os.path.join(tmp, "dash.yml")
        with open(cfg, "w") as f:
            f.write("scope: %s\ninclude_stopped: true\npoll_interval: 31536000\nstate_dir: %s\n"
                    "min_uptime: 0\napi:\n  listen: 127.0.0.1:%d\n  token: %s\n" % (scope, state, port, token))
        log = open(os.path.join(tmp, "dash-daemon.log"), "wb")
        proc = subprocess.Popen([binary, "--config", cfg, "daemon"], stdout=log, stderr=log,
                                start_new_session=True,
                                env={k: v for k, v in os.environ.items() if not k.startswith(("REFIT_", "WATCHTOWER_"))})
        auth = {"Authorization": "Bearer " + token}
        deadline = time.monotonic() + 30
        while get("http://127.0.0.1:%d/health" % port, timeout=1)[0] != 200:
            check_alive(proc, "at start (dashboard)")
            if time.monotonic() > deadline:
                raise Failure("the dashboard daemon did not answer /health within 30 s")
            time.sleep(0.05)
        # one pass: every row gets a last change; then half the images move on again
        st, _, body, _ = fetch(port, "/api/v1/update", dict(auth, **{"Content-Type": "application/json"}),
                               "POST", b"{}")
        if st != 202:
            raise Failure("POST /api/v1/update answered %d: %s" % (st, body[:200]))
        op = json.loads(body)["operation"]
        while True:
            check_alive(proc, "during the dashboard's update pass")
            _, _, body, _ = fetch(port, "/api/v1/operations/" + op, auth)
            rec = json.loads(body)
            if rec.get("state") in ("succeeded", "failed"):
                break
            time.sleep(0.5)
        updated = sum(1 for c in (rec.get("result") or {}).get("containers", []) if c.get("status") == "updated")
        for img in images[: n_images // 2]:
            factory.publish_new_version(img)
        setup = time.monotonic() - t0
        st, hdrs, _, _ = fetch(port, "/login", {"Content-Type": "application/x-www-form-urlencoded"}, "POST",
                               ("token=" + token).encode())
        m = re.match(r"refit_session=([0-9a-f]+);", hdrs.get("set-cookie", ""))
        if st != 303 or not m:
            raise Failure("the login form answered %d without a session cookie" % st)
        cookie = {"Cookie": "refit_session=" + m.group(1)}
        page, api = [], []
        for _ in range(rounds):
            check_alive(proc, "while the dashboard was asked")
            st, hdrs, body, wall = fetch(port, "/", cookie)
            if st != 200 or b'id="rows"' not in body:
                raise Failure("GET / answered %d without the table" % st)
            rows = body.count(b"<tr data-name=")
            page_body = body
            page.append((len(body), wall, timing_of(hdrs.get("server-timing"))))
            st, hdrs, body, wall = fetch(port, "/api/v1/containers", auth)
            if st != 200:
                raise Failure("GET /api/v1/containers answered %d" % st)
            entries = len(json.loads(body)["containers"])
            api.append((len(body), wall, timing_of(hdrs.get("server-timing"))))
        with open(os.path.join(tmp, "dashboard.html"), "wb") as f:
            f.write(page_body)
        with open(os.path.join(tmp, "containers.json"), "wb") as f:
            f.write(body)
        statuses = {}
        for c in (rec.get("result") or {}).get("containers", []):
            statuses[c.get("status")] = statuses.get(c.get("status"), 0) + 1
        if rows != n or entries != n:
            raise Failure("the page has %d rows and the API %d entries, not %d" % (rows, entries, n))
        pending = body.count(b'"status":"update-available"')

        def line(what, xs, key):
            size = xs[-1][0]
            return ("%-22s %7.1f KiB (%d bytes, %.0f bytes a container); wall %6.1f ms median, %6.1f max; "
                    "daemon: check %6.1f ms median, %s %6.2f ms median, %6.2f max"
                    % (what, size / 1024.0, size, size / float(n), median([x[1] for x in xs]), max(x[1] for x in xs),
                       median([x[2].get("check", float("nan")) for x in xs]), key,
                       median([x[2].get(key, float("nan")) for x in xs]), max(x[2].get(key, 0) for x in xs)))
        print("dashboard: %d containers (created, not started) over %d images, %d updated by one pass %s, "
              "%d pending; %d rounds (setup %.0f s)"
              % (n, n_images, updated, json.dumps(statuses, sort_keys=True), pending, rounds, setup))
        print("  " + line("GET / (the page)", page, "render"))
        print("  " + line("GET /api/v1/containers", api, "encode"))
        psize, prender = page[-1][0], median([x[2].get("render", 0) for x in page])
        print("  page size target < 100 KiB: %s; render target < 50 ms: %s; the page is %.1fx the JSON's bytes"
              % ("met" if psize < 100 * 1024 else "NOT met", "met" if prender < 50 else "NOT met",
                 psize / float(api[-1][0])))
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        try:
            harness.sweep_run_objects(run_id)
            factory.cleanup()
        except Exception as e:  # noqa: BLE001 -- a slow shared engine: the figures are out already
            print("note: cleanup of run %s incomplete (%s); its images are labelled %s=%s"
                  % (run_id, e.__class__.__name__, harness.RUN_LABEL, run_id))
        reg.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--idle", type=float, default=60, help="seconds of idle CPU measurement (default 60)")
    ap.add_argument("--load", type=int, default=10, help="seconds of each wrk run (default 10)")
    ap.add_argument("--connections", default="64",
                    help="wrk connections, a comma-separated list of runs (default 64)")
    ap.add_argument("--wrk-threads", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (log, state)")
    ap.add_argument("--dashboard", type=int, default=100,
                    help="containers for the dashboard's page (default 100; 0: no dashboard figures)")
    ap.add_argument("--rounds", type=int, default=10, help="requests of the page and of the JSON (default 10)")
    args = ap.parse_args()
    conns = [int(c) for c in args.connections.split(",") if c.strip()]

    binary = os.path.abspath(os.environ.get("REFIT_BIN") or DEFAULT_BIN)
    if not os.access(binary, os.X_OK):
        print("refit binary not found: %s (run make, or set REFIT_BIN)" % binary, file=sys.stderr)
        return 2
    version = (subprocess.run([binary, "version"], capture_output=True, text=True, timeout=60).stdout
               .splitlines() or ["refit ?"])[0]
    tmp = tempfile.mkdtemp(prefix="refit-daemon-bench-")
    port = free_port()
    token = secrets.token_hex(24)
    scope = "bench-nomatch-" + secrets.token_hex(6)
    state = os.path.join(tmp, "state")
    cfg = os.path.join(tmp, "refit.yml")
    with open(cfg, "w") as f:
        f.write("scope: %s\npoll_interval: 31536000\nstate_dir: %s\n"
                "api:\n  listen: 127.0.0.1:%d\n  token: %s\n" % (scope, state, port, token))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REFIT_", "WATCHTOWER_", "NOTIFY_", "WATCHDOG_", "LISTEN_"))
           and k not in ("DOCKER_HOST", "REPO_USER", "REPO_PASS")}
    notify = Notify(os.path.join(tmp, "notify.sock"))
    env["NOTIFY_SOCKET"] = notify.path
    env["WATCHDOG_USEC"] = str(120 * 1000000)   # the shipped unit's WatchdogSec=120s
    log_path = os.path.join(tmp, "daemon.log")
    url = "http://127.0.0.1:%d/health" % port

    print("machine: Linux %s, %d CPUs; %s: %s" % (os.uname().release, os.cpu_count() or 0, version, binary))
    print("daemon: api 127.0.0.1:%d with a token, scope %s (matches no container), poll_interval 1 year, "
          "state_dir %s" % (port, scope, state))
    log = open(log_path, "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "--config", cfg, "daemon"], stdout=log, stderr=log, env=env,
                            start_new_session=True)
    code = 0
    try:
        # Up: the first /health answer, then READY=1 (after the journal check).
        health_at = None
        while time.monotonic() - t0 < 30:
            check_alive(proc, "at start (log: %s)" % log_path)
            status, body = get(url, timeout=1)
            if status:
                if status != 200:
                    raise Failure("GET /health answered %d at start" % status)
                health_at = time.monotonic()
                json.loads(body)
                break
            time.sleep(0.01)
        if health_at is None:
            raise Failure("no answer on %s within 30 s (log: %s)" % (url, log_path))
        st = proc_status(proc.pid)
        while notify.ready_at is None and time.monotonic() - t0 < 10:
            check_alive(proc, "at start")
            time.sleep(0.01)
        print("start: /health answered after %.0f ms; READY=1 %s"
              % ((health_at - t0) * 1000,
                 "after %.0f ms" % ((notify.ready_at - t0) * 1000) if notify.ready_at
                 else "not sent within 10 s (the engine is not reachable: the daemon retries every 30 s)"))
        rss = st["VmRSS"]
        print("RSS right after start: %s (VmRSS %d kB: anonymous %s, file-backed %s, shared memory %s), "
              "%s threads -- target <= %s: %s"
              % (mib(rss), rss, mib(st.get("RssAnon", 0)), mib(st.get("RssFile", 0)),
                 mib(st.get("RssShmem", 0)), st["Threads"], mib(RSS_TARGET_KIB),
                 "met" if rss <= RSS_TARGET_KIB else "not met (%s above)" % mib(rss - RSS_TARGET_KIB)))
        time.sleep(1.0)   # let the start-up pass finish
        check_alive(proc, "after start")
        st = proc_status(proc.pid)
        print("RSS after the start-up pass: %s (anonymous %s), %s threads"
              % (mib(st["VmRSS"]), mib(st.get("RssAnon", 0)), st["Threads"]))

        # Idle.
        c0, s0, w0 = cpu_ticks(proc.pid), ctxt_switches(proc.pid), notify.watchdog
        i0 = time.monotonic()
        time.sleep(args.idle)
        check_alive(proc, "while idle")
        c1, s1, w1 = cpu_ticks(proc.pid), ctxt_switches(proc.pid), notify.watchdog
        span = time.monotonic() - i0
        cpu = (c1 - c0) / CLK_TCK
        print("idle %.0f s: CPU %.3f s (utime+stime, %d ticks of 1/%d s) = %.3f%% of one CPU; "
              "%d context switches; %d watchdog pings"
              % (span, cpu, c1 - c0, CLK_TCK, 100.0 * cpu / span, s1 - s0, w1 - w0))

        # Load.
        if args.load <= 0:
            print("load: skipped (--load 0)")
        elif not shutil.which("wrk"):
            print("load: skipped, wrk is not installed (apt-get install wrk, or make deps)")
        else:
            for c in conns:
                load_run(proc, url, c, args.load, args.wrk_threads)
        st = proc_status(proc.pid)
        print("RSS at the end: %s (anonymous %s), %s threads" % (mib(st["VmRSS"]), mib(st.get("RssAnon", 0)),
                                                                st["Threads"]))
        with open(log_path, "rb") as f:
            text = f.read().decode(errors="replace")
        if "cannot reach the Docker engine" in text:
            print("note: the Docker engine was not reachable; the daemon retried every 30 s meanwhile")
    except Failure as e:
        print("FAILED: %s" % e)
        code = 1
    finally:
        if proc.poll() is None:
            t = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
                print("stop: SIGTERM -> exit %d after %.0f ms" % (proc.returncode, (time.monotonic() - t) * 1000))
                if proc.returncode != 0:
                    print("FAILED: the daemon did not exit 0 on SIGTERM")
                    code = 1
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                print("FAILED: the daemon did not stop within 30 s of SIGTERM")
                code = 1
        log.close()
        notify.close()
        if code == 0 and args.dashboard > 0:
            try:
                dashboard_bench(binary, args.dashboard, max(1, args.rounds), tmp)
            except Failure as e:
                print("FAILED: %s" % e)
                code = 1
        if code or args.keep:
            print("log and state kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
