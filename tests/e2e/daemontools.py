"""`refit daemon` for the end-to-end tests: a Daemon started on a free
loopback port with its own state dir, config file, token and scope, and a
curl client for its management API.

    d = Daemon(refit_bin, workdir, scope="e2e-...", token="...", config_extra="...")
    d.start()                      # waits for GET /health
    st, hdrs, body = d.curl("POST", "/api/v1/update", body={"containers": [n]})
    rec = d.wait_op(body_json["operation"])
    d.stop()                       # SIGTERM; asserts exit code 0

The daemon's stderr goes to a file (d.stderr_text()); a sanitizer report in
it fails stop().  Every HTTP request is made by curl (the real client) on
127.0.0.1 only.  Nothing here touches a process it did not start.
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid

from harness import SCRUB_ENV, HarnessError, engine_env, free_port, wait_for
from swaptools import sanitizer_report

CURL = "/usr/bin/curl"

# A cron schedule that does not fire during a test (midnight on January 1st):
# with a schedule and no update_on_start the daemon runs no pass at start,
# so only the test's requests change anything.
NEVER = "0 0 1 1 *"

BASE_CONFIG = "min_uptime: 1\nhealth_timeout: 15\nstop_timeout: 3\n"


class Response:
    """One HTTP answer: status, headers (lower-case names, last one wins),
    body (text); .json() parses the body."""

    def __init__(self, status, headers, body, args):
        self.status = status
        self.headers = headers
        self.body = body
        self.args = args

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError("not JSON (%s): %r\n%s" % (e, self.body[:2000], self.describe()))

    def __iter__(self):
        return iter((self.status, self.headers, self.body))

    def describe(self):
        return "$ %s\n-> %s %r %s" % (" ".join(self.args), self.status, self.headers,
                                      self.body[:3000])

    __repr__ = describe


def parse_headers(text):
    """curl -D output -> (status, {name: value}); the last block counts
    (after a `100 Continue`)."""
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    if not blocks:
        return None, {}
    lines = blocks[-1].split("\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers


def curl(method, url, token=None, body=None, headers=(), max_time=60, workdir="/tmp",
         raw_auth=None):
    """One request with curl.  body: dict/list (sent as JSON), str or bytes
    (sent as is, Content-Type application/json unless headers say else)."""
    hdr_file = os.path.join(workdir, "curl-headers-%s" % uuid.uuid4().hex[:8])
    args = [CURL, "-sS", "-X", method, "--max-time", str(max_time), "-D", hdr_file]
    hdrs = list(headers)
    if token is not None:
        hdrs.append("Authorization: Bearer %s" % token)
    if raw_auth is not None:
        hdrs.append("Authorization: %s" % raw_auth)
    data = None
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        if not any(h.lower().startswith("content-type:") for h in hdrs):
            hdrs.append("Content-Type: application/json")
        args += ["--data-binary", "@-"]
    for h in hdrs:
        args += ["-H", h]
    args.append(url)
    try:
        p = subprocess.run(args, input=data if data is not None else b"", capture_output=True,
                           timeout=max_time + 10)
        try:
            with open(hdr_file) as f:
                status, headers_out = parse_headers(f.read())
        except FileNotFoundError:
            status, headers_out = None, {}
    finally:
        if os.path.exists(hdr_file):
            os.unlink(hdr_file)
    shown = [a if not a.startswith("Authorization: Bearer ") else "Authorization: Bearer ***"
             for a in args]
    if p.returncode != 0 or status is None:
        raise AssertionError("curl failed (rc=%d): %s\n%s" % (p.returncode, " ".join(shown),
                                                              p.stderr.decode(errors="replace")))
    return Response(status, headers_out, p.stdout.decode("utf-8", "backslashreplace"), shown)


def new_token():
    return "e2e-" + uuid.uuid4().hex   # 36 characters


class Daemon:
    """One `refit daemon`.  config_extra: YAML appended to the generated
    file (state_dir, api.listen, api.token, scope, schedule, fast health
    gate); api_extra: lines added to the api: section.  env: variables added (None removes).  wrapper: run the
    binary through `sh -c 'export WATCHDOG_PID=$$; exec ...'` (the PID is
    known only once the process exists)."""

    def __init__(self, binary, workdir, scope=None, token=None, config_extra="", env=None,
                 schedule=NEVER, base_config=BASE_CONFIG, watchdog_pid=False, args=(),
                 api_extra=""):
        self.binary = binary
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.state_dir = os.path.join(self.dir, "state")
        os.makedirs(self.state_dir, exist_ok=True)
        self.config_path = os.path.join(self.dir, "refit-daemon.yml")
        self.docker_config = os.path.join(self.dir, "docker-config-empty")
        os.makedirs(self.docker_config, exist_ok=True)
        self.scope = scope
        self.token = new_token() if token is None else token
        self.config_extra = config_extra
        self.schedule = schedule
        self.base_config = base_config
        self.env_extra = dict(env or {})
        self.watchdog_pid = watchdog_pid
        self.args = list(args)
        self.api_extra = api_extra
        self.port = None
        self.proc = None
        self.starts = 0
        self.stderr_path = None
        self.stderr_paths = []
        self.rc = None

    # ---- configuration
    def config_text(self, scope="__default__", extra=None, token="__default__", listen=None):
        scope = self.scope if scope == "__default__" else scope
        token = self.token if token == "__default__" else token
        lines = ["# refit daemon e2e", "state_dir: %s" % self.state_dir,
                 "api:", "  listen: %s" % (listen or "127.0.0.1:%d" % self.port)]
        if token:
            lines.append("  token: %s" % token)
        lines += ["  " + x for x in self.api_extra.splitlines() if x.strip()]
        if scope:
            lines.append("scope: %s" % scope)
        if self.schedule:
            lines.append('schedule: "%s"' % self.schedule)
        extra = self.config_extra if extra is None else extra
        given = {x.split(":", 1)[0] for x in extra.splitlines() if ":" in x}
        # extra wins over the base settings (a key given twice is an error)
        base = [x for x in self.base_config.splitlines() if x.split(":", 1)[0] not in given]
        return "\n".join(lines + base) + "\n" + extra

    def write_config(self, text):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)

    def env(self):
        e = {k: v for k, v in os.environ.items()
             if not (k.startswith("REFIT_") or k.startswith("WATCHTOWER_") or k in SCRUB_ENV
                     or k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"))}
        e["DOCKER_CONFIG"] = self.docker_config
        engine_env(e, self.config_path)
        e.setdefault("ASAN_OPTIONS", "detect_stack_use_after_return=1")
        for k, v in self.env_extra.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        return e

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # ---- lifecycle
    def launch(self, config_text=None):
        """Start the process (no waiting).  Returns the Popen."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if self.port is None:
            self.port = free_port()
        self.write_config(config_text if config_text is not None else self.config_text())
        self.starts += 1
        self.stderr_path = os.path.join(self.dir, "daemon-%d.stderr" % self.starts)
        self.stderr_paths.append(self.stderr_path)
        cmd = [self.binary, "daemon", "--config", self.config_path] + self.args
        if self.watchdog_pid:
            cmd = ["/bin/sh", "-c", 'export WATCHDOG_PID=$$; exec "$@"', "sh"] + cmd
        self._err = open(self.stderr_path, "wb")
        for attempt in range(40):
            try:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._err,
                                             stderr=self._err, env=self.env(), cwd=self.dir)
                break
            except (PermissionError, FileNotFoundError, OSError):
                # the binary is being relinked by a concurrent `make`
                if attempt == 39:
                    raise
                time.sleep(0.25)
        self.rc = None
        return self.proc

    def start(self, timeout=30, config_text=None):
        """Launch and wait until GET /health answers 200 (the API listens)."""
        for attempt in range(3):
            self.launch(config_text)
            try:
                self.wait_health(timeout)
                return self
            except HarnessError:
                if self.proc.poll() is not None and "cannot listen" in self.stderr_text() \
                        and attempt < 2 and config_text is None:
                    self.port = None     # somebody took the port: another one
                    continue
                raise AssertionError("refit daemon did not answer /health (rc=%s)\n%s"
                                     % (self.proc.poll(), self.stderr_text()[-6000:]))
        raise AssertionError("unreachable")

    def wait_health(self, timeout=30):
        def up():
            if self.proc.poll() is not None:
                raise HarnessError("exited")
            r = self.curl("GET", "/health", token=None, max_time=3)
            return r.status == 200
        try:
            wait_for(up, timeout, interval=0.1, what="refit daemon /health")
        except HarnessError:
            raise

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        assert self.alive(), "the daemon is not running\n" + self.stderr_text()[-4000:]
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout=60):
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError("refit daemon did not exit within %ss\n%s"
                                 % (timeout, self.stderr_text()[-6000:]))
        finally:
            self._err.close()
        return self.rc

    def stop(self, timeout=60, expect=0):
        """SIGTERM; waits; asserts the exit code and that no sanitizer spoke."""
        self.signal(signal.SIGTERM)
        rc = self.wait_exit(timeout)
        self.check_sanitizer()
        if expect is not None:
            assert rc == expect, "refit daemon exited %s, not %s\n%s" % (
                rc, expect, self.stderr_text()[-6000:])
        return rc

    def kill(self):
        """Teardown: stop it if a test left it running (this process only)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "_err", None):
            self._err.close()

    def check_sanitizer(self):
        report = sanitizer_report(self.all_stderr())
        assert not report, "sanitizer report from refit daemon:\n%s" % report

    # ---- output
    def stderr_text(self):
        """stderr of the current (last) run."""
        if not self.stderr_path:
            return ""
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "backslashreplace")

    def all_stderr(self):
        out = []
        for p in self.stderr_paths:
            with open(p, "rb") as f:
                out.append(f.read().decode("utf-8", "backslashreplace"))
        return "".join(out)

    def wait_log(self, needle, timeout=15, since=0):
        """Waits until NEEDLE appears in stderr (of this run) after offset SINCE."""
        wait_for(lambda: needle in self.stderr_text()[since:], timeout, interval=0.1,
                 what="%r in the daemon's log" % needle)

    def log_mark(self):
        return len(self.stderr_text())

    # ---- the API
    def curl(self, method, path, token="__default__", body=None, headers=(), max_time=60,
             raw_auth=None):
        token = self.token if token == "__default__" else token
        return curl(method, self.url + path, token=token, body=body, headers=headers,
                    max_time=max_time, workdir=self.dir, raw_auth=raw_auth)

    def get_json(self, path, status=200):
        r = self.curl("GET", path)
        assert r.status == status, r.describe()
        return r.json()

    def post_json(self, path, body=None, status=None):
        r = self.curl("POST", path, body=body)
        if status is not None:
            assert r.status == status, r.describe()
        return r

    def submit(self, path, body):
        """POST that must answer 202 {"operation": ID, "state": "queued"}; the ID."""
        r = self.curl("POST", path, body=body)
        assert r.status == 202, r.describe()
        j = r.json()
        assert j.get("state") == "queued" and isinstance(j.get("operation"), str), r.describe()
        return j["operation"]

    def op(self, op_id):
        return self.get_json("/api/v1/operations/%s" % op_id)

    def wait_op(self, op_id, timeout=60, states=("succeeded", "failed", "interrupted")):
        """Polls GET /api/v1/operations/ID until its state is one of STATES."""
        last = [None]

        def done():
            last[0] = self.op(op_id)
            return last[0].get("state") in states
        try:
            wait_for(done, timeout, interval=0.2, what="operation %s" % op_id)
        except HarnessError:
            raise AssertionError("operation %s not finished after %ss: %r\n%s"
                                 % (op_id, timeout, last[0], self.stderr_text()[-4000:]))
        return last[0]

    def metrics_text(self):
        r = self.curl("GET", "/metrics")
        assert r.status == 200, r.describe()
        return r.body


def port_accepts(port, timeout=0.5):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex(("127.0.0.1", port)) == 0


def raw_http(port, data, timeout=5.0, head_only=False):
    """Send DATA (bytes) on a fresh connection to 127.0.0.1:PORT; returns
    (what arrived, seconds until the first byte or None).  head_only: stop
    at the end of the first response head (a `100 Continue` included)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        t0 = time.monotonic()
        s.sendall(data)
        got = b""
        first = None
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                if first is None:
                    first = time.monotonic() - t0
                got += chunk
                if b"\r\n\r\n" in got:
                    head, _, rest = got.partition(b"\r\n\r\n")
                    if head_only:
                        return got, first
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            if len(rest) >= int(line.split(b":")[1]):
                                return got, first
        except socket.timeout:
            pass
        return got, first


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's notification
    socket (NOTIFY_SOCKET): every field that arrives is kept as
    (monotonic time, "KEY=VALUE").  on_ready(field) may return a note kept
    with it (third item), e.g. whether the API listened at READY=1."""

    def __init__(self, path, on_field=None):
        self.path = path
        self.msgs = []
        self._on_field = on_field
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(path)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._listen, daemon=True)
        self._th.start()

    def _listen(self):
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536).decode("utf-8", "replace")
            except socket.timeout:
                continue
            except OSError:
                return
            t = time.monotonic()
            for field in data.split("\n"):
                if field:
                    note = self._on_field(field) if self._on_field else None
                    self.msgs.append((t, field, note))

    def fields(self, since=0):
        return [f for _, f, _ in self.msgs[since:]]

    def times(self, field, since=0):
        return [t for t, f, _ in self.msgs[since:] if f == field]

    def statuses(self, since=0):
        return [f[len("STATUS="):] for f in self.fields(since) if f.startswith("STATUS=")]

    def watchdog_gaps(self, after):
        """The gaps between WATCHDOG=1 pings after monotonic time AFTER, and
        from the last one to now."""
        dogs = [t for t, f, _ in self.msgs if f == "WATCHDOG=1" and t > after]
        return [b - a for a, b in zip(dogs, dogs[1:])] + ([time.monotonic() - dogs[-1]] if dogs else [])

    def close(self):
        self._stop.set()
        self._th.join(timeout=5)
        self._sock.close()
