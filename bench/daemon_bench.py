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

Never fails on a slow machine: it only prints figures. It exits non-zero only
when the daemon dies, does not come up, answers /health with anything but 200,
or does not exit 0 on SIGTERM.

    make bench-daemon
    make bench-daemon BENCH_ARGS="--idle 10 --load 5 --connections 64"
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--idle", type=float, default=60, help="seconds of idle CPU measurement (default 60)")
    ap.add_argument("--load", type=int, default=10, help="seconds of each wrk run (default 10)")
    ap.add_argument("--connections", default="64",
                    help="wrk connections, a comma-separated list of runs (default 64)")
    ap.add_argument("--wrk-threads", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (log, state)")
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
        if not shutil.which("wrk"):
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
        if code or args.keep:
            print("log and state kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
