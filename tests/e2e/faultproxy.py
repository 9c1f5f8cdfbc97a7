"""A fault-injecting HTTP proxy on 127.0.0.1 for refit's end-to-end tests.

FaultProxy forwards GET and HEAD to an upstream HTTP server on loopback (a
harness Registry, or the harness's TokenServer) and, for requests that match
a rule, misbehaves instead:

    proxy = FaultProxy(upstream_port).start()
    proxy.add(path_re=r"^/v2/myrepo/manifests/", status=500)              # always
    proxy.add(path_re=..., status=429, headers={"Retry-After": "1"}, times=1)
    proxy.add(path_re=..., hang=True)          # never answers (until stop)
    proxy.add(path_re=..., reset=True)         # RST: SO_LINGER 0, close
    proxy.add(path_re=..., truncate=True)      # Content-Length > what is sent
    proxy.add(path_re=..., body=b"garbage")    # the upstream's headers, this body
    proxy.add(path_re=..., drop_headers=["Docker-Content-Digest"])
    proxy.add(path_re=..., set_headers={"Docker-Content-Digest": "sha256:..."})
    proxy.silent_tls.set()   # a connection that opens with a TLS handshake
                             # gets no answer until the client gives up

A rule matches on the method (None: any; a string or a set) and a regular
expression searched in the request target with its query string,
percent-decoded (so a token request's scope "repository:a/b:pull" can be
matched as written).  `times` limits how often a rule fires (None: always);
the first rule that matches and has not run out applies.  `clear()` removes
every rule.

Every request is logged as a dict (t: time.monotonic(), method, path, the
decoded target, action: "forward" or the fault, status sent or None);
`mark()` / `entries(since=, method=, path_re=)` / `count(...)` read it.

Everything listens on 127.0.0.1 only and talks to 127.0.0.1 only.
"""

import http.client
import http.server
import re
import socket
import struct
import threading
import time
import urllib.parse

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-authorization", "proxy-authenticate"}


class Rule:
    def __init__(self, method=None, path_re=None, times=None, status=None, headers=None,
                 hang=False, hang_seconds=120.0, reset=False, truncate=False, body=None,
                 drop_headers=(), set_headers=None):
        if isinstance(method, str):
            method = {method}
        self.methods = set(method) if method else None
        self.rx = re.compile(path_re) if path_re else None
        self.left = times
        self.status = status
        self.headers = dict(headers or {})
        self.hang = hang
        self.hang_seconds = hang_seconds
        self.reset = reset
        self.truncate = truncate
        self.body = body
        self.drop = {h.lower() for h in drop_headers}
        self.set = dict(set_headers or {})
        self.fired = 0

    def matches(self, method, target):
        if self.left is not None and self.left <= 0:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return self.rx is None or bool(self.rx.search(target))

    @property
    def action(self):
        if self.hang:
            return "hang"
        if self.reset:
            return "reset"
        if self.status is not None:
            return "status-%d" % self.status
        if self.truncate:
            return "truncate"
        if self.body is not None:
            return "body"
        return "rewrite"


class FaultProxy:
    """GET/HEAD proxy in front of 127.0.0.1:UPSTREAM_PORT with fault rules."""

    def __init__(self, upstream_port, name="fault-proxy"):
        self.upstream_port = upstream_port
        self.name = name
        self.lock = threading.Lock()
        self.rules = []
        self.log = []
        self.stopping = threading.Event()
        self.silent_tls = threading.Event()
        self.httpd = None
        self.port = None

    # ---- lifecycle
    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # keep pytest output quiet
                pass

            def handle(self):
                if not (proxy.silent_tls.is_set() and proxy._tls_held(self.connection)):
                    super().handle()

            def do_GET(self):
                proxy._handle(self, "GET")

            def do_HEAD(self):
                proxy._handle(self, "HEAD")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True,
                         name=self.name).start()
        return self

    def stop(self):
        self.stopping.set()          # hanging requests end now
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    # ---- addresses (as harness.Registry names them)
    def hostname(self, host=None):
        return "%s:%d" % (host or "127.0.0.1", self.port)

    @property
    def host(self):
        return self.hostname()

    @property
    def url(self):
        return "http://" + self.host

    def ref(self, repo, tag="latest", host=None):
        return "%s/%s:%s" % (self.hostname(host), repo, tag)

    # ---- rules
    def add(self, **kw):
        r = Rule(**kw)
        with self.lock:
            self.rules.append(r)
        return r

    def clear(self):
        with self.lock:
            self.rules = []
        self.silent_tls.clear()

    def _rule_for(self, method, target):
        with self.lock:
            for r in self.rules:
                if r.matches(method, target):
                    if r.left is not None:
                        r.left -= 1
                    r.fired += 1
                    return r
        return None

    # ---- the log
    def mark(self):
        with self.lock:
            return len(self.log)

    def entries(self, since=0, method=None, path_re=None):
        rx = re.compile(path_re) if path_re else None
        if isinstance(method, str):
            method = {method}
        with self.lock:
            out = list(self.log[since:])
        return [e for e in out
                if (method is None or e["method"] in method)
                and (rx is None or rx.search(e["target"]))]

    def count(self, method=None, path_re=None, since=0):
        return len(self.entries(since, method, path_re))

    def _record(self, method, path, target, action, status):
        with self.lock:
            self.log.append({"t": time.monotonic(), "method": method, "path": path,
                             "target": target, "action": action, "status": status})

    # ---- serving
    def _tls_held(self, conn):
        """If CONN opens with a TLS record (a ClientHello), logs it as method
        "TLS" and holds it unanswered until the client closes it (or the
        proxy stops); True then."""
        try:
            if conn.recv(1, socket.MSG_PEEK) != b"\x16":
                return False
        except OSError:
            return False
        self._record("TLS", "", "", "silent-tls", None)
        conn.settimeout(0.5)
        while not self.stopping.is_set():
            try:
                if not conn.recv(4096):
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        return True

    def _handle(self, req, method):
        target = urllib.parse.unquote(req.path)
        rule = self._rule_for(method, target)
        action = rule.action if rule else "forward"
        if rule and rule.hang:
            self._record(method, req.path, target, action, None)
            self.stopping.wait(rule.hang_seconds)
            req.close_connection = True
            return
        if rule and rule.reset:
            self._record(method, req.path, target, action, None)
            self._reset(req)
            return
        if rule and rule.status is not None:
            body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}\n'
            self._record(method, req.path, target, action, rule.status)
            req.send_response(rule.status)
            req.send_header("Content-Type", "application/json")
            for k, v in rule.headers.items():
                req.send_header(k, v)
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            if method != "HEAD":
                req.wfile.write(body)
            return
        try:
            status, headers, body, length = self._upstream(req, method)
        except OSError as e:
            self._record(method, req.path, target, "upstream-error %s" % e, 502)
            req.send_error(502, "upstream: %s" % e)
            return
        if rule:
            headers = [(k, v) for k, v in headers
                       if k.lower() not in rule.drop and k not in rule.set]
            headers += list(rule.set.items())
            if rule.body is not None and method != "HEAD":
                body = rule.body
                length = len(body)
        self._record(method, req.path, target, action, status)
        req.send_response(status)
        for k, v in headers:
            req.send_header(k, v)
        req.send_header("Content-Length", str(length))
        if rule and rule.truncate and method != "HEAD":
            req.send_header("Connection", "close")
            req.end_headers()
            req.wfile.write(body[:len(body) // 2])
            req.wfile.flush()
            req.close_connection = True
            return
        req.end_headers()
        if method != "HEAD":
            req.wfile.write(body)

    def _upstream(self, req, method):
        """(status, headers without hop-by-hop and length, body, length)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        try:
            conn.putrequest(method, req.path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", self.host)
            # every header line, repeated ones too (Docker sends one Accept per type)
            for k, v in req.headers.items():
                if k.lower() not in HOP and k.lower() != "host":
                    conn.putheader(k, v)
            conn.endheaders()
            r = conn.getresponse()
            body = r.read()
            hdrs = r.getheaders()
        finally:
            conn.close()
        out = [(k, v) for k, v in hdrs if k.lower() not in HOP and k.lower() != "content-length"]
        if method == "HEAD":
            length = dict((k.lower(), v) for k, v in hdrs).get("content-length", "0")
        else:
            length = len(body)
        return r.status, out, body, length

    @staticmethod
    def _reset(req):
        """Abort the connection: SO_LINGER {on, 0} makes close() send RST."""
        sock = req.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        req.close_connection = True
        # the read buffer (a makefile) holds a reference to the socket: close
        # it first, so that close() below really closes (and resets) now; the
        # writer is no makefile and is left for the handler to close
        try:
            req.rfile.close()
        except OSError:
            pass
        sock.close()
