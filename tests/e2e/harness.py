"""End-to-end harness for refit: a real dockerd, real registries, real images.

Everything here talks to 127.0.0.1 only.  Every container, image, network and
volume that the harness creates carries the label ``refit-test.run=<run id>``
and teardown removes only those (plus the exact tags it created), because the
Docker engine is shared with other work.
"""

import atexit
import base64
import datetime
import fcntl
import hashlib
import http.server
import json
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import engines

RUN_LABEL = "refit-test.run"
# The run's engine (E2E_ENGINE, see engines.py): the machine's, or a private one
# whose socket every docker command and every refit of the run is pointed at.
ENGINE = engines.KIND
DOCKER_SOCK = engines.run_socket()
if engines.kind_is_private():
    os.environ["DOCKER_HOST"] = "unix://" + DOCKER_SOCK
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
REGISTRY_BIN = "/usr/bin/docker-registry"
BUSYBOX = "/bin/busybox"

# Docker's manifest media types, as a registry client asks for them.
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


class HarnessError(RuntimeError):
    pass


# Processes this harness started (registries; dockerd when it had to), killed
# at interpreter exit should a fixture finalizer not have run.
_CHILDREN = set()


def _kill_children():
    for p in list(_CHILDREN):
        if p.poll() is None:
            p.kill()


atexit.register(_kill_children)


# --------------------------------------------------------------------------
# small utilities

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_closed(port):
    """True when nothing accepts connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def wait_for(predicate, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # noqa: BLE001 - waiting on flaky startup
            last_exc = exc
        time.sleep(interval)
    raise HarnessError("timed out after %ss waiting for %s (last error: %r)"
                       % (timeout, what, last_exc))


def run_cmd(args, check=True, timeout=120, input=None, env=None):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                       input=input, env=env)
    if check and p.returncode != 0:
        raise HarnessError("command failed (rc=%d): %s\nstdout:\n%s\nstderr:\n%s"
                           % (p.returncode, " ".join(args), p.stdout, p.stderr))
    return p


def refit_version(binary):
    """The version a refit binary reports (`refit version`'s first line,
    "refit VERSION"), without asking an engine."""
    p = subprocess.run([binary, "version", "--docker-host", "unix:///nonexistent/docker.sock"],
                       capture_output=True, text=True, timeout=30)
    m = re.match(r"refit (\S+)\n", p.stdout)
    if not m:
        raise HarnessError("no version from %s version:\n%s%s" % (binary, p.stdout, p.stderr))
    return m.group(1)


def stop_process(proc, grace=10):
    """SIGTERM to PROC (a Popen) if it still runs; SIGKILL after GRACE s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)


def docker(*args, check=True, timeout=120, input=None, config_dir=None):
    cmd = [DOCKER]
    if config_dir:
        cmd += ["--config", str(config_dir)]
    cmd += [str(a) for a in args]
    return run_cmd(cmd, check=check, timeout=timeout, input=input).stdout


def docker_inspect(obj, kind=None):
    args = ["inspect"]
    if kind:
        args += ["--type", kind]
    out = docker(*args, obj)
    return json.loads(out)[0]


def digest_only(value):
    """'repo@sha256:x' or 'sha256:x' -> 'sha256:x' (None stays None)."""
    if value is None:
        return None
    return value.split("@", 1)[-1]


# --------------------------------------------------------------------------
# the Docker engine

def engine_ping(sock_path=DOCKER_SOCK, timeout=2.0):
    """GET /_ping on the engine's unix socket; True when it answers OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock_path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        first = data.split(b"\r\n", 1)[0]
        return b" 200 " in first + b" "
    except OSError:
        return False


class Engine:
    """Makes sure dockerd answers; starts it when nobody runs it.

    Several test sessions come up at once (pytest-xdist workers, and the
    sanitizer suite beside the normal one), so starting the engine is
    serialised by a lock file: one session starts dockerd and waits for it
    while the others wait on the lock, then find it answering.  Two dockerds
    started together break each other: the second unlinks the first one's
    socket before it finds the first one's containerd holding the metadata
    database, and exits, leaving a socket nobody listens on.

    A dockerd started here is left running when the session ends: the
    engine is shared, and another session (or the sanitizer run after this
    one) may be using it by then.  Stopping it would pull the engine from
    under them."""

    PID_FILE = "/var/run/docker.pid"
    CONTAINERD_PID_FILE = "/var/run/docker/containerd/containerd.pid"
    LOCK_FILE = "/run/lock/refit-e2e-engine.lock"
    LOG_PATH = "/tmp/refit-e2e-dockerd.log"


    @staticmethod
    def _live_pid(path, comm):
        """The PID in the file at path when it names a live process called comm, else None."""
        try:
            with open(path) as f:
                pid = int(f.read().strip() or 0)
            with open("/proc/%d/comm" % pid) as f:
                return pid if pid > 0 and f.read().strip() == comm else None
        except (OSError, ValueError):
            return None

    def _clear_stale(self):
        """Removes pid files left by a killed engine whose PIDs now name other
        processes: dockerd would refuse to start over the first, and adopt a
        stranger as its containerd from the second."""
        for path, comm in ((self.PID_FILE, "dockerd"), (self.CONTAINERD_PID_FILE, "containerd")):
            if os.path.exists(path) and self._live_pid(path, comm) is None:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    def log_tail(self, lines=15):
        try:
            with open(self.LOG_PATH, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError as exc:
            return "(no log: %s)" % exc

    def __init__(self):
        self.kind = ENGINE
        self.sock = DOCKER_SOCK

    def ensure(self, timeout=90):
        if engines.kind_is_private():
            return self._ensure_private(timeout)
        if engine_ping():
            return self
        os.makedirs(os.path.dirname(self.LOCK_FILE), exist_ok=True)
        with open(self.LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)     # released when the file closes
            if engine_ping():
                return self
            if self._live_pid(self.PID_FILE, "dockerd") is None:    # else: one is coming up
                self._clear_stale()
                dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
                with open(self.LOG_PATH, "ab") as log:
                    subprocess.Popen([dockerd], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                wait_for(engine_ping, timeout, interval=0.5,
                         what="dockerd to answer on %s" % DOCKER_SOCK)
            except HarnessError:
                raise HarnessError("dockerd did not come up; the end of %s:\n%s"
                                   % (self.LOG_PATH, self.log_tail()))
        return self

    def _ensure_private(self, timeout):
        """The run's private engine answers: started here (and left running
        for the run's other sessions; `harness.py engine-stop` ends it) when
        it does not, under a lock so that two sessions never start two."""
        if engine_ping(self.sock):
            return self
        root = engines.run_root()
        os.makedirs(root, exist_ok=True)
        with open(root + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if engine_ping(self.sock):
                return self
            from privateengine import PrivateEngine
            try:
                net = engines.run_network() or engines.Network(
                    hashlib.sha256(root.encode()).hexdigest()[:10], engines.pick_pool(root))
                net.up()
                net.save(os.path.join(root, "network.json"))
                PrivateEngine(root, net, engines.kind()).start(timeout=timeout, detached=True)
            except (engines.EngineError, HarnessError) as exc:
                raise HarnessError("the run's engine (E2E_ENGINE=%s) did not come up: %s" % (ENGINE, exc))
        return self

    def stop_private(self):
        """Stop the run's private engine (if it runs), its bridge and chain, and remove its root."""
        from privateengine import PrivateEngine
        root = engines.run_root()
        net = engines.run_network()
        if net is None:
            return False
        PrivateEngine(root, net, None).stop_by_pidfile()
        net.down()
        subprocess.run(["rm", "-rf", root], capture_output=True)
        return True

    def api_version(self):
        return docker("version", "--format", "{{.Server.APIVersion}}").strip()

    def server_version(self):
        return docker("version", "--format", "{{.Server.Version}}").strip()

    def network_prefix(self):
        """A random /24 prefix ("10.A.B") for a test's own network on this engine."""
        net = engines.run_network() if engines.kind_is_private() else None
        if net:
            return net.prefix()
        return "10.%d.%d" % (random.randint(100, 250), random.randint(0, 255))


# --------------------------------------------------------------------------
# TLS material (openssl command line)

class TLSMaterial:
    """A CA and a server certificate for 127.0.0.1 / localhost (and NAMES,
    more DNS names the certificate is also for)."""

    def __init__(self, workdir, names=()):
        self.dir = os.path.join(workdir, "tls")
        os.makedirs(self.dir, exist_ok=True)
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.ca_pem = os.path.join(self.dir, "ca.pem")
        self.server_key = os.path.join(self.dir, "server.key")
        self.server_csr = os.path.join(self.dir, "server.csr")
        self.server_crt = os.path.join(self.dir, "server.crt")
        ext = os.path.join(self.dir, "server.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost%s\n" % "".join(",DNS:" + n for n in names) +
                    "basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n")
        run_cmd(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                 "-keyout", self.ca_key, "-out", self.ca_pem, "-days", "3",
                 "-subj", "/CN=refit-test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        run_cmd(["openssl", "req", "-newkey", "rsa:2048", "-nodes",
                 "-keyout", self.server_key, "-out", self.server_csr,
                 "-subj", "/CN=localhost"])
        run_cmd(["openssl", "x509", "-req", "-in", self.server_csr,
                 "-CA", self.ca_pem, "-CAkey", self.ca_key, "-CAcreateserial",
                 "-out", self.server_crt, "-days", "3", "-extfile", ext])

    def ssl_context(self):
        return ssl.create_default_context(cafile=self.ca_pem)


# --------------------------------------------------------------------------
# token server (ghcr.io-style Bearer tokens, RS256 with x5c)

class TokenServer:
    """Issues registry tokens to HTTP Basic clients; counts what it served.

    GET /token?service=...&scope=repository:NAME:pull[,push]&account=...
    (and the OAuth2 POST form, grant_type=password) -> 200
    {"token","access_token","expires_in":300,"issued_at"}; 401 without valid
    credentials.  `served` counts successful token requests per scope string.

    Several scopes in one request (`scope=A&scope=B`, or space-separated in
    one field) are granted together, as Docker distribution's token spec
    says.  Two switches make it behave like registries that do not:
    `multi_scope = False` refuses a request with more than one scope (400),
    and `withhold` (a set of repository names) leaves those repositories out
    of the access claim of a token asked for several scopes (granted fewer
    than asked, as Docker Hub does for repositories the account cannot pull).
    """

    def __init__(self, workdir, service="refit-test", issuer="refit-test-issuer",
                 username="ci", password=None):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.dir = os.path.join(workdir, "token-server")
        os.makedirs(self.dir, exist_ok=True)
        self.service = service
        self.issuer = issuer
        self.username = username
        self.password = password or uuid.uuid4().hex
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "refit-test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(name).issuer_name(name)
                .public_key(self.key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        self.cert_der_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.cert_path = os.path.join(self.dir, "token-signer.pem")
        with open(self.cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        self.key_pem = self.key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
        self.lock = threading.Lock()
        self.log = []           # every request: dict(method, scopes, ok, account, user)
        self.multi_scope = True
        self.withhold = set()
        self.httpd = None
        self.thread = None

    # ---- lifecycle
    def start(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # keep pytest output quiet
                pass

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                server._handle(self, u.path, urllib.parse.parse_qs(u.query), "GET")

            def do_POST(self):
                u = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                q = urllib.parse.parse_qs(u.query)
                for k, v in urllib.parse.parse_qs(body).items():
                    q.setdefault(k, []).extend(v)
                server._handle(self, u.path, q, "POST")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.realm = "http://127.0.0.1:%d/token" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    # ---- accounting
    def mark(self):
        with self.lock:
            return len(self.log)

    def requests(self, since=0):
        with self.lock:
            return list(self.log[since:])

    def count(self, scope=None, since=0, ok=True, repository=None):
        """Requests since `since` (a mark) that asked for `scope` (exact) or
        for any scope on `repository`; ok=True: served, False: refused, None: both."""
        n = 0
        for r in self.requests(since):
            if ok is not None and r["ok"] != ok:
                continue
            if scope is not None and scope not in r["scopes"]:
                continue
            if repository is not None and not any(
                    s.startswith("repository:%s:" % repository) for s in r["scopes"]):
                continue
            n += 1
        return n

    def served_per_scope(self, since=0):
        counts = {}
        for r in self.requests(since):
            if r["ok"]:
                for s in r["scopes"] or ["<none>"]:
                    counts[s] = counts.get(s, 0) + 1
        return counts

    # ---- the protocol
    @staticmethod
    def parse_scope(scope):
        """'repository:a/b:pull,push' -> ('repository', 'a/b', ['pull','push'])"""
        typ, rest = scope.split(":", 1)
        name, actions = rest.rsplit(":", 1)
        return typ, name, [a for a in actions.split(",") if a]

    def _credentials(self, req, q):
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                return user, pw
            except Exception:  # noqa: BLE001
                return None, None
        if q.get("grant_type", [""])[0] == "password":
            return q.get("username", [None])[0], q.get("password", [None])[0]
        return None, None

    def _reply(self, req, status, obj, extra_headers=()):
        body = json.dumps(obj).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        for k, v in extra_headers:
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(body)

    def _handle(self, req, path, q, method):
        import jwt

        scopes = []
        for s in q.get("scope", []):
            scopes.extend(x for x in s.split(" ") if x)
        user, pw = self._credentials(req, q)
        ok = (path == "/token" and user == self.username and pw == self.password)
        entry = {"method": method, "path": path, "scopes": scopes, "ok": ok,
                 "user": user, "account": q.get("account", [None])[0],
                 "service": q.get("service", [None])[0], "time": time.time()}
        with self.lock:
            self.log.append(entry)
        if path != "/token":
            return self._reply(req, 404, {"errors": [{"code": "NOT_FOUND"}]})
        if not ok:
            return self._reply(req, 401, {"errors": [{"code": "UNAUTHORIZED",
                                                      "message": "bad credentials"}]},
                               [("WWW-Authenticate", 'Basic realm="refit-test-token"')])
        if len(scopes) > 1 and not self.multi_scope:
            entry["ok"] = False
            return self._reply(req, 400, {"errors": [{"code": "UNSUPPORTED",
                                                      "message": "one scope per request"}]})
        access = []
        for s in scopes:
            try:
                typ, name, actions = self.parse_scope(s)
            except ValueError:
                continue
            if len(scopes) > 1 and name in self.withhold:
                continue
            access.append({"type": typ, "name": name, "actions": actions})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user, "aud": self.service,
                  "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        token = jwt.encode(claims, self.key_pem, algorithm="RS256",
                           headers={"x5c": [self.cert_der_b64]})
        if isinstance(token, bytes):
            token = token.decode()
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        self._reply(req, 200, {"token": token, "access_token": token, "expires_in": 300,
                               "issued_at": issued.strftime("%Y-%m-%dT%H:%M:%SZ")})


# --------------------------------------------------------------------------
# registries (Debian's docker-registry, distribution 2.8)

ACCESS_RE = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+)[^"]*" (\d{3}) ')


class Registry:
    """One docker-registry process on a free 127.0.0.1 port.

    kind: "plain" (HTTP, no auth), "token" (HTTP, Bearer tokens from a
    TokenServer), "tls" (HTTPS, htpasswd Basic auth).
    """

    def __init__(self, workdir, name, kind="plain", token_server=None, tls=None,
                 username=None, password=None):
        self.name = name
        self.kind = kind
        self.dir = os.path.join(workdir, "registry-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.storage = os.path.join(self.dir, "storage")
        self.config_path = os.path.join(self.dir, "config.yml")
        self.access_log = os.path.join(self.dir, "access.log")    # stdout: combined log
        self.app_log = os.path.join(self.dir, "registry.log")     # stderr: logrus
        self.docker_config = os.path.join(self.dir, "docker-config")  # for docker login
        os.makedirs(self.docker_config, exist_ok=True)
        self.token_server = token_server
        self.tls = tls
        self.username = username
        self.password = password
        self.proc = None
        self.port = None
        self.htpasswd = None
        if kind == "tls":
            self.htpasswd = os.path.join(self.dir, "htpasswd")
            out = run_cmd(["htpasswd", "-Bbn", username, password]).stdout
            with open(self.htpasswd, "w") as f:
                f.write(out.strip() + "\n")

    # ---- addresses
    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def scheme(self):
        return "https" if self.kind == "tls" else "http"

    @property
    def url(self):
        return "%s://%s" % (self.scheme, self.host)

    def hostname(self, host=None):
        """127.0.0.1:PORT, or e.g. localhost:PORT with host="localhost"."""
        return "%s:%d" % (host or "127.0.0.1", self.port)

    def ref(self, repo, tag="latest", host=None):
        return "%s/%s:%s" % (self.hostname(host), repo, tag)

    # ---- lifecycle
    def _config_text(self):
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  formatter: text",
            "  accesslog:",
            "    disabled: false",
            "storage:",
            "  filesystem:",
            "    rootdirectory: %s" % self.storage,
            "  delete:",
            "    enabled: true",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            "  addr: 127.0.0.1:%d" % self.port,
            "  secret: %s" % uuid.uuid4().hex,
        ]
        if self.kind == "tls":
            lines += ["  tls:",
                      "    certificate: %s" % self.tls.server_crt,
                      "    key: %s" % self.tls.server_key]
        if self.kind == "token":
            ts = self.token_server
            lines += ["auth:",
                      "  token:",
                      "    realm: %s" % ts.realm,
                      "    service: %s" % ts.service,
                      "    issuer: %s" % ts.issuer,
                      "    rootcertbundle: %s" % ts.cert_path]
        elif self.kind == "tls":
            lines += ["auth:",
                      "  htpasswd:",
                      "    realm: refit-test-basic",
                      "    path: %s" % self.htpasswd]
        return "\n".join(lines) + "\n"

    def start(self, timeout=30):
        for attempt in range(5):
            self.port = self.port if (self.port and attempt == 0) else free_port()
            with open(self.config_path, "w") as f:
                f.write(self._config_text())
            self._out = open(self.access_log, "ab")
            self._err = open(self.app_log, "ab")
            self.proc = subprocess.Popen([REGISTRY_BIN, "serve", self.config_path],
                                         stdout=self._out, stderr=self._err,
                                         start_new_session=True)
            _CHILDREN.add(self.proc)
            try:
                wait_for(lambda: self.proc.poll() is None and self._answers(), timeout,
                         what="registry %s on %s" % (self.name, self.host))
                return self
            except HarnessError:
                self._kill()
                with open(self.app_log, errors="replace") as f:
                    tail = f.read()[-2000:]
                if "address already in use" in tail and attempt < 4:
                    continue
                raise HarnessError("registry %s failed to start:\n%s" % (self.name, tail))
        raise HarnessError("registry %s: no free port" % self.name)

    def _answers(self):
        status, _, _ = self.request("GET", "/v2/", auth=False, timeout=2)
        return status in (200, 401)

    def _kill(self):
        if self.proc is not None:
            stop_process(self.proc)
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f:
                f.close()

    def stop(self):
        """Stops the process; the port is then closed (nothing listening)."""
        self._kill()
        self.proc = None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- talking to it directly (for harness checks)
    def _ssl_context(self, verify=True):
        if self.kind != "tls":
            return None
        if verify:
            return self.tls.ssl_context()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def request(self, method, path, headers=None, auth=True, timeout=10, verify=True,
                scope=None):
        """(status, headers, body).  auth=True adds what this registry needs
        (Basic for tls, a Bearer token for token)."""
        hdrs = dict(headers or {})
        if auth and self.kind == "tls":
            hdrs["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % (self.username, self.password)).encode()).decode()
        if auth and self.kind == "token":
            tok = self.token_server_token(scope or "registry:catalog:*")
            hdrs["Authorization"] = "Bearer " + tok
        req = urllib.request.Request(self.url + path, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout,
                                        context=self._ssl_context(verify)) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def token_server_token(self, scope, username=None, password=None):
        ts = self.token_server
        q = urllib.parse.urlencode({"service": ts.service, "scope": scope})
        req = urllib.request.Request(ts.realm + "?" + q, headers={
            "Authorization": "Basic " + base64.b64encode(
                ("%s:%s" % (username or ts.username, password or ts.password)).encode()
            ).decode()})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())["token"]

    def manifest_digest(self, repo, tag):
        """Docker-Content-Digest of repo:tag as the registry answers HEAD."""
        status, headers, _ = self.request(
            "HEAD", "/v2/%s/manifests/%s" % (repo, tag),
            headers={"Accept": MANIFEST_ACCEPT}, scope="repository:%s:pull" % repo)
        if status != 200:
            raise HarnessError("HEAD manifest %s:%s -> %s" % (repo, tag, status))
        for k, v in headers.items():
            if k.lower() == "docker-content-digest":
                return v
        raise HarnessError("no Docker-Content-Digest for %s:%s" % (repo, tag))

    # ---- docker login (token and tls registries)
    def login(self, host=None):
        if self.kind == "plain":
            return
        docker("login", "-u", self.username, "--password-stdin", self.hostname(host),
               input=self.password, config_dir=self.docker_config, timeout=60)

    @property
    def push_config(self):
        return None if self.kind == "plain" else self.docker_config

    # ---- access log accounting
    def mark(self):
        """A position in the access log; count(since=mark) sees what came after."""
        try:
            return os.path.getsize(self.access_log)
        except FileNotFoundError:
            return 0

    def access_entries(self, since=0):
        with open(self.access_log, "rb") as f:
            f.seek(since)
            data = f.read().decode("utf-8", "replace")
        out = []
        for line in data.splitlines():
            m = ACCESS_RE.match(line)
            if m:
                out.append({"method": m.group(1), "path": m.group(2),
                            "status": int(m.group(3)), "line": line})
        return out

    def _count_now(self, since, method, path_re, status):
        rx = re.compile(path_re) if path_re else None
        methods = None
        if method is not None:
            methods = {method} if isinstance(method, str) else set(method)
        n = 0
        for e in self.access_entries(since):
            if methods is not None and e["method"] not in methods:
                continue
            if rx is not None and not rx.search(e["path"]):
                continue
            if status is not None and e["status"] != status:
                continue
            n += 1
        return n

    def count(self, method=None, path_re=None, since=0, status=None, settle=0.4,
              timeout=3.0):
        """Requests in the access log since `since` matching method (str, a set
        of them, or None for any), path regex and status.  The registry writes
        a line after the response is sent, so this polls until the number has
        been stable for `settle` seconds."""
        deadline = time.monotonic() + timeout
        last = self._count_now(since, method, path_re, status)
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            n = self._count_now(since, method, path_re, status)
            if n != last:
                last, stable_since = n, time.monotonic()
            elif time.monotonic() - stable_since >= settle:
                break
        return last


# --------------------------------------------------------------------------
# a read-only proxy in front of a plain registry (GET/HEAD), to make a
# registry that behaves differently: e.g. no Docker-Content-Digest on HEAD

class RegistryProxy:
    """Forwards GET and HEAD to UPSTREAM (a plain Registry).  With
    strip_head_digest, HEAD answers carry no Docker-Content-Digest (as some
    registries and caches do), so a client must GET and hash the body.
    `log` records (method, path, status)."""

    HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
           "proxy-authorization", "proxy-authenticate"}

    def __init__(self, upstream, strip_head_digest=True, manifest_delay=0.0):
        self.upstream = upstream
        self.strip_head_digest = strip_head_digest
        self.manifest_delay = manifest_delay   # seconds before answering a manifest request
        self.active = 0                        # manifest requests being answered now
        self.max_active = 0
        self.lock = threading.Lock()
        self.log = []
        self.httpd = None

    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_GET(self):
                proxy._forward(self, "GET")

            def do_HEAD(self):
                proxy._forward(self, "HEAD")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def hostname(self, host=None):
        return "%s:%d" % (host or "127.0.0.1", self.port)

    @property
    def host(self):
        return self.hostname()

    def ref(self, repo, tag="latest", host=None):
        return "%s/%s:%s" % (self.hostname(host), repo, tag)

    push_config = None

    def mark(self):
        with self.lock:
            return len(self.log)

    def count(self, method=None, path_re=None, since=0):
        rx = re.compile(path_re) if path_re else None
        with self.lock:
            entries = self.log[since:]
        return sum(1 for m, p, _ in entries
                   if (method is None or m == method) and (rx is None or rx.search(p)))

    def _forward(self, req, method):
        manifest = "/manifests/" in req.path
        if manifest:
            with self.lock:
                self.active += 1
                self.max_active = max(self.max_active, self.active)
        try:
            if manifest and self.manifest_delay:
                time.sleep(self.manifest_delay)
            self._forward2(req, method)
        finally:
            if manifest:
                with self.lock:
                    self.active -= 1

    def _forward2(self, req, method):
        import http.client
        # every header line, repeated ones too (Docker sends one Accept per type)
        headers = [(k, v) for k, v in req.headers.items()
                   if k.lower() not in self.HOP and k.lower() != "host"]
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream.port, timeout=30)
        try:
            conn.putrequest(method, req.path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", self.host)
            for k, v in headers:
                conn.putheader(k, v)
            conn.endheaders()
            r = conn.getresponse()
            body = r.read()
            status = r.status
            out = [(k, v) for k, v in r.getheaders() if k.lower() not in self.HOP]
        finally:
            conn.close()
        if method == "HEAD" and self.strip_head_digest and "/manifests/" in req.path:
            out = [(k, v) for k, v in out if k.lower() != "docker-content-digest"]
        with self.lock:
            self.log.append((method, req.path, status))
        req.send_response(status)
        for k, v in out:
            if k.lower() == "content-length":
                continue
            req.send_header(k, v)
        if method == "HEAD":
            # keep the upstream's length for HEAD (there is no body here)
            length = dict((k.lower(), v) for k, v in r.getheaders()).get("content-length", "0")
            req.send_header("Content-Length", length)
        else:
            req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if method != "HEAD":
            req.wfile.write(body)


# --------------------------------------------------------------------------
# images

class Image:
    def __init__(self, registry, repo, tag, image_id, digest, host=None):
        self.registry = registry
        self.repo = repo
        self.tag = tag
        self.id = image_id
        self.digest = digest
        self.host = host          # None: 127.0.0.1

    @property
    def ref(self):
        return self.registry.ref(self.repo, self.tag, self.host)

    @property
    def name(self):
        """host:port/repo (no tag)"""
        return "%s/%s" % (self.registry.hostname(self.host), self.repo)

    @property
    def pinned_ref(self):
        return "%s@%s" % (self.name, self.digest)

    def __repr__(self):
        return "Image(%s %s %s)" % (self.ref, self.id[:19], self.digest)


# PID 1 ignores SIGTERM unless it traps it; `sleep & wait` lets the trap run at once.
CMD_LOOP = "trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done"


class ImageFactory:
    """Builds FROM-scratch busybox images with unique content and pushes them."""

    def __init__(self, run_id, workdir, workers=4):
        self.run_id = run_id
        self.dir = os.path.join(workdir, "images")
        os.makedirs(self.dir, exist_ok=True)
        self.lock = threading.Lock()
        self.counter = 0
        self.tags = []        # every tag this factory created (exact strings)
        self.ids = set()      # every image ID it built
        self.workers = workers
        self.busybox = BUSYBOX
        self.base_lock = threading.Lock()
        self.bases = {}
        self.base_ids = set()

    def _next(self):
        with self.lock:
            self.counter += 1
            return self.counter

    def unique_repo(self, hint="img"):
        return "e2e-%s/%s-%d" % (self.run_id, re.sub(r"[^a-z0-9-]", "-", hint.lower()),
                                 self._next())

    def _docker_build(self, ctx, tag, label=False):
        """docker build CTX -t TAG; with label the run label is set (the
        bases: what is built FROM them inherits it, and a --label on every
        build would cost the engine one more container per build)."""
        args = ["--label", "%s=%s" % (RUN_LABEL, self.run_id)] if label else []
        out = docker("build", "-q", *args, "-t", tag, ctx, timeout=180)
        image_id = out.strip().splitlines()[-1].strip()
        with self.lock:
            self.tags.append(tag)
            self.ids.add(image_id)
        return image_id

    def base(self, healthcheck=False):
        """The session's base image (busybox, the CMD loop, and with
        healthcheck a passing HEALTHCHECK), built once; versions are built
        FROM it, which keeps each build to two cheap steps."""
        key = "health" if healthcheck else "plain"
        with self.base_lock:
            if key in self.bases:
                return self.bases[key]
            ctx = os.path.join(self.dir, "base-" + key)
            os.makedirs(ctx, exist_ok=True)
            shutil.copy(self.busybox, os.path.join(ctx, "busybox"))
            lines = ["FROM scratch",
                     "COPY busybox /bin/busybox",
                     'RUN ["/bin/busybox","--install","-s","/bin"]']
            if healthcheck:
                lines.append("HEALTHCHECK --interval=1s --timeout=2s --retries=3 "
                             "CMD test -f /version")
            lines.append("CMD %s" % json.dumps(["/bin/sh", "-c", CMD_LOOP]))
            with open(os.path.join(ctx, "Dockerfile"), "w") as f:
                f.write("\n".join(lines) + "\n")
            tag = "refit-e2e-base-%s:%s" % (self.run_id, key)
            image_id = self._docker_build(ctx, tag, label=True)
            with self.lock:
                self.base_ids.add(image_id)
            shutil.rmtree(ctx, ignore_errors=True)
            self.bases[key] = tag
            return tag

    def build(self, tag, healthcheck=None, content=None):
        """docker build of a new version (a unique /version file); returns
        the image ID.  healthcheck: None, True (a passing check) or a shell
        command string."""
        base = self.base(healthcheck is True)
        n = self._next()
        ctx = os.path.join(self.dir, "ctx-%d" % n)
        os.makedirs(ctx)
        with open(os.path.join(ctx, "version"), "w") as f:
            f.write(content or "refit-e2e %s %d %s\n" % (self.run_id, n, uuid.uuid4().hex))
        # settings first and the one COPY last: the settings' steps come from
        # the build cache after the first build, so a version costs one step
        lines = ["FROM " + base]
        if healthcheck and healthcheck is not True:
            lines.append("HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD %s"
                         % healthcheck)
        lines.append("COPY version /version")
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("\n".join(lines) + "\n")
        try:
            return self._docker_build(ctx, tag)
        finally:
            shutil.rmtree(ctx, ignore_errors=True)

    def push(self, ref, config_dir=None):
        """docker push; returns the digest the registry now has for ref."""
        out = docker("push", ref, config_dir=config_dir, timeout=180)
        tag = ref.rsplit(":", 1)[1]
        m = re.search(r"^%s: digest: (sha256:[0-9a-f]{64})" % re.escape(tag), out, re.M)
        if m:
            return m.group(1)
        name = ref.rsplit(":", 1)[0]
        for rd in json.loads(docker("inspect", "--format", "{{json .RepoDigests}}", ref)):
            if rd.startswith(name + "@"):
                return rd.split("@", 1)[1]
        raise HarnessError("no digest for pushed %s:\n%s" % (ref, out))

    def make(self, registry, repo=None, tag="latest", healthcheck=None, content=None,
             host=None):
        """Build + tag registry/repo:tag + push.  Returns an Image.  host:
        how the registry is named in the reference (default 127.0.0.1)."""
        repo = repo or self.unique_repo()
        ref = registry.ref(repo, tag, host)
        image_id = self.build(ref, healthcheck=healthcheck, content=content)
        digest = self.push(ref, config_dir=registry.push_config)
        return Image(registry, repo, tag, image_id, digest, host)

    def make_many(self, specs):
        """specs: list of dicts of make() kwargs; built in parallel."""
        with ThreadPoolExecutor(max_workers=self.workers) as ex:
            futs = [ex.submit(self.make, **s) for s in specs]
            return [f.result() for f in futs]

    def publish_new_version(self, image, healthcheck=None, keep_local_tag=True,
                            drop_local=True):
        """Pushes different content under the same repo:tag.  The registry's
        digest changes.  With keep_local_tag the local tag points back at the
        old image afterwards, and with drop_local the new image is removed
        from the host: the host looks like one that has not pulled yet.
        Returns the new Image (same ref, new id and digest)."""
        new_id = self.build(image.ref, healthcheck=healthcheck)
        new_digest = self.push(image.ref, config_dir=image.registry.push_config)
        if new_digest == image.digest:
            raise HarnessError("new version of %s has the same digest" % image.ref)
        if keep_local_tag:
            docker("tag", image.id, image.ref)
            if drop_local:
                docker("rmi", "-f", new_id)
        return Image(image.registry, image.repo, image.tag, new_id, new_digest, image.host)

    def pull(self, ref, config_dir=None):
        """docker pull REF (from one of our registries or proxies); the tag
        is removed at cleanup.  Returns the image ID."""
        with self.lock:
            self.tags.append(ref)
        docker("pull", ref, config_dir=config_dir, timeout=180)
        return docker_inspect(ref, "image")["Id"]

    def make_index(self, image, tag, oci=False, pull=True, sorts=None):
        """Pushes an image index for IMAGE (one linux/amd64 entry) as
        repo:TAG - a Docker manifest list, or an OCI index - and pulls it,
        so that the host has repo:TAG with the index digest among its
        RepoDigests, as after pulling a multi-platform image.  Plain
        registries only.  The engine lists RepoDigests sorted, so
        sorts="first"/"last" picks a byte-different index whose digest sorts
        before/after the image's own manifest digest.  Returns an Image whose
        digest is the index's."""
        reg = image.registry
        # an engine on the containerd image store pushes OCI manifests
        status, headers, body = reg.request(
            "GET", "/v2/%s/manifests/%s" % (image.repo, image.digest),
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                               "application/vnd.oci.image.manifest.v1+json"})
        if status != 200:
            raise HarnessError("GET manifest %s: %s" % (image.pinned_ref, status))
        entry_type = {k.lower(): v for k, v in dict(headers).items()}.get(
            "content-type", "application/vnd.docker.distribution.manifest.v2+json")
        mt = ("application/vnd.oci.image.index.v1+json" if oci else
              "application/vnd.docker.distribution.manifest.list.v2+json")
        index = {"schemaVersion": 2, "mediaType": mt, "manifests": [{
            "mediaType": entry_type,
            "digest": image.digest, "size": len(body),
            "platform": {"architecture": "amd64", "os": "linux"}}]}
        base = json.dumps(index, indent=2).encode()
        for pad in range(64):
            data = base + b"\n" * pad
            d = "sha256:" + hashlib.sha256(data).hexdigest()
            if sorts is None or (d < image.digest) == (sorts == "first"):
                break
        req = urllib.request.Request("%s/v2/%s/manifests/%s" % (reg.url, image.repo, tag),
                                     data=data, method="PUT", headers={"Content-Type": mt})
        with urllib.request.urlopen(req, timeout=10) as r:
            digest = r.headers.get("Docker-Content-Digest")
        if digest != "sha256:" + hashlib.sha256(data).hexdigest():
            raise HarnessError("index digest %s" % digest)
        ref = reg.ref(image.repo, tag, image.host)
        if not pull:
            return Image(reg, image.repo, tag, None, digest, image.host)
        image_id = self.pull(ref)
        # the containerd image store names an image by what the tag points at: here the index
        want = digest if engines.kind().containerd_store else image.id
        if image_id != want:
            raise HarnessError("pulled index resolves to %s, not %s" % (image_id, want))
        return Image(reg, image.repo, tag, image_id, digest, image.host)

    def cleanup(self):
        """Removes exactly the tags created, then the images built (by ID,
        each labelled with this run's id)."""
        tags = sorted(set(self.tags))
        for i in range(0, len(tags), 50):
            docker("rmi", *tags[i:i + 50], check=False, timeout=120)
        out = docker("images", "-q", "--no-trunc", "-a", "--filter",
                     "label=%s=%s" % (RUN_LABEL, self.run_id), check=False)
        labelled = set(out.split())
        # only IDs we built AND that carry our label; the bases last (children first)
        for group in (self.ids - self.base_ids, self.base_ids):
            victims = sorted(i for i in group if i in labelled)
            for i in range(0, len(victims), 50):
                docker("rmi", "-f", *victims[i:i + 50], check=False, timeout=120)


# --------------------------------------------------------------------------
# containers

class Containers:
    """docker run / docker create with the run label; removes what it made."""

    def __init__(self, run_id, prefix):
        self.run_id = run_id
        self.prefix = prefix
        self.names = []
        self.lock = threading.Lock()
        self.counter = 0

    def _name(self, hint):
        with self.lock:
            self.counter += 1
            return "%s-%s-%d" % (self.prefix, hint, self.counter)

    def _args(self, image, name, labels, extra, cmd):
        args = ["--name", name, "--label", "%s=%s" % (RUN_LABEL, self.run_id)]
        for k, v in (labels or {}).items():
            args += ["--label", "%s=%s" % (k, v)]
        args += list(extra or [])
        args.append(image.ref if isinstance(image, Image) else image)
        args += list(cmd or [])
        return args

    def run(self, image, labels=None, name=None, hint="c", extra=(), cmd=()):
        """docker run -d; returns the container name."""
        name = name or self._name(hint)
        with self.lock:
            self.names.append(name)
        docker("run", "-d", *self._args(image, name, labels, extra, cmd), timeout=120)
        return name

    def create(self, image, labels=None, name=None, hint="c", extra=(), cmd=()):
        name = name or self._name(hint)
        with self.lock:
            self.names.append(name)
        docker("create", *self._args(image, name, labels, extra, cmd), timeout=120)
        return name

    def run_many(self, specs, workers=4):
        """specs: list of run() kwargs dicts; started in parallel; names in order."""
        with ThreadPoolExecutor(max_workers=workers) as ex:
            futs = [ex.submit(self.run, **s) for s in specs]
            return [f.result() for f in futs]

    def inspect(self, name):
        return docker_inspect(name, "container")

    def snapshot(self, names):
        """name -> (container id, image id, state status, started at)."""
        out = {}
        for n in names:
            c = self.inspect(n)
            out[n] = (c["Id"], c["Image"], c["State"]["Status"], c["State"]["StartedAt"])
        return out

    def remove_all(self):
        with self.lock:
            names = list(self.names)
            self.names = []
        chunks = [names[i:i + 8] for i in range(0, len(names), 8)]
        with ThreadPoolExecutor(max_workers=4) as ex:
            list(ex.map(remove_containers, chunks))


ANON_VOLUME = re.compile(r"^[0-9a-f]{64}$")


def remove_containers(refs):
    """`docker rm -f -v REFS`, then the anonymous volumes they mounted.
    `rm -v` removes only the volumes the engine made for that container
    itself; refit's replacement mounts the old container's anonymous volumes
    by name, so without this every swapped container would leave them
    behind.  A volume still in use elsewhere is refused by the engine and
    stays.  Only names of the engine's anonymous form (64 hex digits) are
    taken, and the tests mount no volume of that form that they did not
    make."""
    refs = list(refs)
    if not refs:
        return
    out = docker("inspect", "--type", "container", "--format",
                 '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}', *refs,
                 check=False)
    anon = sorted({v for v in out.split() if ANON_VOLUME.match(v)})
    docker("rm", "-f", "-v", *refs, check=False, timeout=120)
    if anon:
        docker("volume", "rm", *anon, check=False, timeout=120)


class EngineEvents:
    """The engine's events while a `with` block runs, read as they happen
    (`docker events` streaming).  Asking afterwards with --since/--until is
    not enough: the engine answers that from a buffer of its last 256
    events, and on an engine shared by busy test sessions (each health
    probe alone makes three exec events) the buffer turns over within
    seconds.  events() may be called inside the block and after it.

    The stream is proven live at both ends with a sentinel: a volume of
    its own, created and removed.  The block starts only once the stream
    has delivered the first one's creation, and events() after the block
    has everything up to the second one's (the engine sends events in
    order)."""

    WAIT = 60       # seconds for a sentinel to come through

    def __init__(self, kinds=("container", "image")):
        self.kinds = set(kinds)
        self.seen = []
        self.failure = None
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.proc = None
        self.reader = None
        self.done = False
        self.sentinel = "refit-evsync-%s" % uuid.uuid4().hex[:12]

    def __enter__(self):
        # --since: whatever happens between this stamp and the subscription
        # is replayed from the engine's buffer
        args = [DOCKER, "events", "--since", "%.6f" % time.time(), "--format", "{{json .}}"]
        for k in self.kinds | {"volume"}:
            args += ["--filter", "type=%s" % k]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            self._sync("%s-begin" % self.sentinel)
        except BaseException:
            self._close()
            raise
        return self

    def _read(self):
        try:
            for line in self.proc.stdout:
                if line.strip():
                    ev = json.loads(line)
                    with self.arrived:
                        self.seen.append(ev)
                        self.arrived.notify_all()
        except Exception as e:  # noqa: BLE001 - handed to events()
            with self.arrived:
                self.failure = "reading docker events: %r" % e
                self.arrived.notify_all()

    def _sentinel_seen(self, name):
        return any(e.get("Type") == "volume" and e.get("Action") == "create"
                   and e.get("Actor", {}).get("ID") == name for e in self.seen)

    def _sync(self, name):
        """Creates and removes volume NAME; returns once the stream has
        delivered its creation."""
        docker("volume", "create", "--label", "%s=%s" % (RUN_LABEL, self.sentinel), name)
        try:
            deadline = time.monotonic() + self.WAIT
            with self.arrived:
                while not self._sentinel_seen(name):
                    left = deadline - time.monotonic()
                    if self.failure or self.proc.poll() is not None or left <= 0:
                        raise AssertionError("docker events did not deliver %s: %s" % (
                            name, self.failure or self.proc.poll()))
                    self.arrived.wait(min(left, 0.5))
        finally:
            docker("volume", "rm", name, check=False)

    def events(self):
        with self.lock:
            if self.failure:
                raise AssertionError(self.failure)
            running = self.done or self.proc.poll() is None
            out = [e for e in self.seen
                   if e.get("Type") in self.kinds
                   and not e.get("Actor", {}).get("ID", "").startswith(self.sentinel)]
        if not running:
            raise AssertionError("docker events stopped (exit %s): %s" % (
                self.proc.returncode, self.proc.stderr.read().strip()))
        return out

    def __exit__(self, exc_type, *_):
        try:
            if exc_type is None:
                self._sync("%s-end" % self.sentinel)
                self.events()       # raises if the stream had failed
        finally:
            self._close()
        return False

    def _close(self):
        self.done = True
        stop_process(self.proc)
        self.reader.join(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()


class HTTPReceiver:
    """An HTTP(S) server on 127.0.0.1 that records every request as
    {"method", "path", "headers", "host", "body", "time"}; ANSWER(req) gives
    (status, JSON-able body) for each (default 200 {}).  With TLS (a
    TLSMaterial) it speaks HTTPS with the server certificate."""

    def __init__(self, tls=None, answer=None):
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                req = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                       "host": self.headers.get("Host"), "body": self.rfile.read(n), "time": time.monotonic()}
                with outer.lock:
                    outer.requests.append(req)
                    status, body = answer(req) if answer else (200, {})
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            do_GET = do_POST = do_PUT = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls.server_crt, tls.server_key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def got(self, path=None):
        """The requests (to PATH, without its query, when given), oldest first."""
        with self.lock:
            return [r for r in self.requests if path is None or r["path"].split("?")[0] == path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def sweep_run_objects(run_id):
    """Removes every container, network and volume labelled with this run."""
    flt = "label=%s=%s" % (RUN_LABEL, run_id)
    remove_containers(docker("ps", "-aq", "--filter", flt, check=False).split())
    nets = docker("network", "ls", "-q", "--filter", flt, check=False).split()
    if nets:
        docker("network", "rm", *nets, check=False)
    vols = docker("volume", "ls", "-q", "--filter", flt, check=False).split()
    if vols:
        docker("volume", "rm", "-f", *vols, check=False)


# --------------------------------------------------------------------------
# docker config.json and credential helpers for refit

def write_docker_config(path, auths=None, cred_helpers=None, creds_store=None):
    """auths: {host: (user, password)}.  Returns the directory (for DOCKER_CONFIG)."""
    os.makedirs(path, exist_ok=True)
    cfg = {}
    if auths is not None:
        cfg["auths"] = {h: {"auth": base64.b64encode(("%s:%s" % up).encode()).decode()}
                        for h, up in auths.items()}
    if cred_helpers is not None:
        cfg["credHelpers"] = cred_helpers
    if creds_store is not None:
        cfg["credsStore"] = creds_store
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f)
    return path


CRED_HELPER = r'''#!/usr/bin/python3
# docker-credential-%(name)s: test credential helper (logs every call)
import json, sys
LOG = %(log)r
HOST = %(host)r
USER = %(user)r
SECRET = %(secret)r
action = sys.argv[1] if len(sys.argv) > 1 else ""
data = sys.stdin.read()
with open(LOG, "a") as f:
    f.write(json.dumps({"action": action, "input": data}) + "\n")
if action == "get":
    server = data.strip()
    if HOST in server:
        print(json.dumps({"ServerURL": server, "Username": USER, "Secret": SECRET}))
        sys.exit(0)
    print("credentials not found in native keychain")
    sys.exit(1)
if action == "list":
    print(json.dumps({HOST: USER}))
    sys.exit(0)
sys.exit(0)
'''


def write_cred_helper(bindir, name, log, host, user, secret):
    os.makedirs(bindir, exist_ok=True)
    path = os.path.join(bindir, "docker-credential-" + name)
    with open(path, "w") as f:
        f.write(CRED_HELPER % {"name": name, "log": log, "host": host,
                               "user": user, "secret": secret})
    os.chmod(path, 0o755)
    return path


def read_helper_log(log):
    try:
        with open(log) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


# --------------------------------------------------------------------------
# the refit binary

class RefitResult:
    def __init__(self, args, rc, stdout, stderr):
        self.args = args
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def __iter__(self):
        return iter((self.rc, self.stdout, self.stderr))

    def describe(self):
        return ("$ %s\nrc=%s\n--- stdout\n%s\n--- stderr\n%s"
                % (" ".join(self.args), self.rc, self.stdout[-6000:], self.stderr[-6000:]))

    def __repr__(self):
        return self.describe()


class CheckResult(RefitResult):
    def __init__(self, res):
        super().__init__(res.args, res.rc, res.stdout, res.stderr)
        try:
            self.data = json.loads(res.stdout)
        except ValueError as e:
            raise AssertionError("refit check --json did not print JSON (%s)\n%s"
                                 % (e, res.describe()))
        assert isinstance(self.data, dict) and isinstance(self.data.get("containers"), list), \
            "check --json: no 'containers' list\n" + res.describe()
        self.list = self.data["containers"]
        self.containers = {}
        for c in self.list:
            assert isinstance(c, dict) and "name" in c, "bad container entry %r\n%s" % (
                c, res.describe())
            self.containers[c["name"].lstrip("/")] = c

    @property
    def names(self):
        return set(self.containers)

    def __getitem__(self, name):
        assert name in self.containers, "%s not in check output\n%s" % (name, self.describe())
        return self.containers[name]

    def statuses(self):
        return {n: c.get("status") for n, c in self.containers.items()}


def engine_env(env, config_path=None):
    """ENV pointed at the run's engine: DOCKER_HOST for a private one, unless
    the config file at CONFIG_PATH names a docker_host of its own (the
    variable would win over it)."""
    if engines.kind_is_private():
        try:
            with open(config_path) as f:
                own = any(re.match(r"\s*docker_host\s*:", ln) for ln in f)
        except (OSError, TypeError):
            own = False
        if not own:
            env["DOCKER_HOST"] = "unix://" + DOCKER_SOCK
    return env


SCRUB_ENV = ("DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
             "DOCKER_API_VERSION", "REPO_USER", "REPO_PASS")


class Refit:
    """Runs the refit binary with a per-test state dir and config file."""

    def __init__(self, binary, workdir):
        self.binary = binary
        self.dir = workdir
        self.state_dir = os.path.join(workdir, "state")
        self.config_path = os.path.join(workdir, "refit.yml")
        self.docker_config = os.path.join(workdir, "docker-config-empty")
        os.makedirs(self.state_dir, exist_ok=True)
        os.makedirs(self.docker_config, exist_ok=True)
        self.history = []

    def base_env(self):
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith("REFIT_") or k.startswith("WATCHTOWER_") or k in SCRUB_ENV)}
        env["DOCKER_CONFIG"] = self.docker_config
        return engine_env(env, self.config_path)

    def write_config(self, text=None):
        """The per-test config file.  text=None: a minimal valid file."""
        if text is None:
            text = "# refit e2e config\nstate_dir: %s\n" % self.state_dir
        with open(self.config_path, "w") as f:
            f.write(text)
        return self.config_path

    def available(self):
        return os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)

    def run(self, *args, config=None, env=None, timeout=90, globals=True, input=None):
        """refit ARGS.  With globals, `--config FILE --state-dir DIR` go right
        after the subcommand.  config: YAML text for the per-test config
        file (None: minimal).  env: overrides; a None value removes a
        variable.  Returns RefitResult (unpacks to rc, stdout, stderr)."""
        args = [str(a) for a in args]
        cmd = [self.binary]
        if globals and args and not args[0].startswith("-"):
            self.write_config(config)
            cmd += [args[0], "--config", self.config_path, "--state-dir", self.state_dir]
            cmd += args[1:]
        else:
            cmd += args
        e = self.base_env()
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        try:
            for attempt in range(40):
                try:
                    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                       env=e, input=input, cwd=self.dir)
                    break
                except (PermissionError, FileNotFoundError, OSError) as exc:
                    # the binary is being relinked by a concurrent `make`
                    if attempt == 39 or isinstance(exc, subprocess.SubprocessError):
                        raise
                    time.sleep(0.25)
            res = RefitResult(cmd, p.returncode, p.stdout, p.stderr)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            raise AssertionError("refit timed out after %ss: %s\nstdout:\n%s\nstderr:\n%s"
                                 % (timeout, " ".join(cmd), out, err))
        self.history.append(res)
        return res

    def check_json(self, scope=None, names=(), config=None, env=None, extra=(), timeout=90):
        """refit check --json [--scope SCOPE] [extra] [NAMES]; parsed."""
        args = ["check", "--json"]
        if scope is not None:
            args += ["--scope", scope]
        args += list(extra)
        args += list(names)
        return CheckResult(self.run(*args, config=config, env=env, timeout=timeout))


if __name__ == "__main__":
    # `python3 tests/e2e/harness.py engine`: the engine up before the test
    # sessions start (make e2e), so a failure to start it is one clear error.
    # `python3 tests/e2e/harness.py engine-stop`: a private engine of the run stopped.
    import sys
    if sys.argv[1:] == ["engine-stop"]:
        if Engine().stop_private():
            print("engine %s stopped" % ENGINE)
        sys.exit(0)
    if sys.argv[1:] != ["engine"]:
        sys.exit("usage: harness.py engine|engine-stop")
    try:
        e = Engine().ensure()
    except HarnessError as exc:
        sys.exit(str(exc))
    print("dockerd %s (API %s, E2E_ENGINE=%s) answers on %s"
          % (e.server_version(), e.api_version(), ENGINE, DOCKER_SOCK))
