"""A small local server that follows Ollama's documented API, for the model
updater's end-to-end tests (Ollama itself cannot be installed on the test
machine: it needs its binary and model downloads from the internet).

Only what refit uses, as docs/api.md of the Ollama project documents it:

- GET /api/tags -> {"models": [{"name", "model", "modified_at", "size",
  "digest" (64 hex digits), "details"}]}: the models installed here;
- POST /api/pull {"model": NAME, "stream": true} -> NDJSON progress lines
  ({"status":"pulling manifest"}, {"status":"pulling <layer>","digest",
  "total","completed"}, {"status":"verifying sha256 digest"}, {"status":
  "writing manifest"}, {"status":"success"}), or {"error": "..."} for a
  model the "library" does not have.  The body is sent chunked (HTTP/1.1)
  or close-delimited (no length, the connection closes), as `framing` says.

State: `installed` {name: digest} (what /api/tags lists) and `library`
{name: digest} (what a pull would fetch).  A pull copies the library's
digest into `installed`, so a test makes a pull change a digest by changing
the library.  Knobs per model (`faults[name]`): ("error", MSG) an error
line after the manifest; ("http", STATUS, MSG) an HTTP error with a JSON
body; ("stall", SECONDS) progress, then silence; ("garbage",) a line that is
not JSON; ("oversized", BYTES) one line of that many bytes; ("nosuccess",)
the stream ends without success.  Names are compared as Ollama does:
":latest" when no tag is given.  Every request is logged in `requests`.
Listens on 127.0.0.1 only.
"""

import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def norm(name):
    """Ollama's form of a model name: with a tag."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else name + ":latest"


def new_digest():
    return hashlib.sha256(os.urandom(16)).hexdigest()


class OllamaServer:
    def __init__(self, installed=None, library=None, framing="chunked"):
        self.installed = {norm(k): v for k, v in (installed or {}).items()}
        self.library = {norm(k): v for k, v in (library or {}).items()}
        self.faults = {}
        self.framing = framing
        self.requests = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_GET(self):
                with outer.lock:
                    outer.requests.append(("GET", self.path, None))
                if self.path != "/api/tags":
                    return self._json(404, {"error": "not found"})
                with outer.lock:
                    models = [{"name": n, "model": n, "modified_at": "2026-11-26T00:00:00Z",
                               "size": 1234, "digest": d,
                               "details": {"format": "gguf", "family": "llama"}}
                              for n, d in sorted(outer.installed.items())]
                self._json(200, {"models": models})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with outer.lock:
                    outer.requests.append(("POST", self.path, body))
                if self.path != "/api/pull":
                    return self._json(404, {"error": "not found"})
                if not isinstance(body, dict) or not isinstance(body.get("model"), str):
                    return self._json(400, {"error": "model is required"})
                outer._pull(self, norm(body["model"]))

            def _json(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass   # a client that hung up (refit abandoning a stream) is not news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # ---- the pull stream
    def _pull(self, h, name):
        fault = self.faults.get(name)
        if fault and fault[0] == "http":
            data = json.dumps({"error": fault[2]}).encode()
            h.send_response(fault[1])
            h.send_header("Content-Type", "application/json; charset=utf-8")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        h.send_response(200)
        h.send_header("Content-Type", "application/x-ndjson")
        if self.framing == "chunked":
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()

        def send(obj_or_bytes):
            data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else \
                (json.dumps(obj_or_bytes) + "\n").encode()
            if self.framing == "chunked":
                h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                h.wfile.write(data)
            h.wfile.flush()

        try:
            send({"status": "pulling manifest"})
            with self.lock:
                target = self.library.get(name)
            if target is None:
                send({"error": "pull model manifest: file does not exist"})
            elif fault and fault[0] == "error":
                send({"error": fault[1]})
            elif fault and fault[0] == "garbage":
                send(b"<html>502 Bad Gateway</html>\n")
                send({"status": "success"})
            elif fault and fault[0] == "oversized":
                send(b'{"status":"' + b"x" * fault[1] + b'"}\n')
                send({"status": "success"})
            else:
                layer = "sha256:" + hashlib.sha256(target.encode()).hexdigest()
                total = 4 * 1024 * 1024
                # one line in two pieces: the reader must join them
                line = (json.dumps({"status": "pulling %s" % layer[7:19], "digest": layer,
                                    "total": total, "completed": 0}) + "\n").encode()
                send(line[:17])
                send(line[17:])
                for done in (total // 2, total):
                    send({"status": "pulling %s" % layer[7:19], "digest": layer,
                          "total": total, "completed": done})
                if fault and fault[0] == "stall":
                    self.stopping.wait(fault[1])
                    return
                send({"status": "verifying sha256 digest"})
                send({"status": "writing manifest"})
                if fault and fault[0] == "nosuccess":
                    pass
                else:
                    with self.lock:
                        self.installed[name] = target
                    send({"status": "success"})
            if self.framing == "chunked":
                h.wfile.write(b"0\r\n\r\n")
                h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass   # refit gave up on the stream

    # ---- for the tests
    def pulls(self):
        with self.lock:
            return [b for m, p, b in self.requests if m == "POST" and p == "/api/pull"]

    def tags_requests(self):
        with self.lock:
            return sum(1 for m, p, b in self.requests if m == "GET" and p == "/api/tags")

    def digest(self, name):
        with self.lock:
            return self.installed.get(norm(name))

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
