"""`refit fleet rollout` and `refit fleet status` (SPEC.md: Fleet; docs/fleet.md),
end to end: several real `refit daemon`s, each with its own API port, token,
state dir and scope, most on the shared engine and one on a second, private
dockerd (own socket, data root, exec root and a bridge this module makes with
`ip link`, as tests/e2e/test_engine_restart.py does; never `--bridge none`).
The fleet command talks to them over HTTP on 127.0.0.1 only.

Every host has one opted-in container on an image of its own repository: v1
runs, v2 is the registry's newer image under the same tag (for the failing
host, v2's command exits at once, so it never passes the health gate).
"""

import json
import os
import re
import socket
import ssl
import threading
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from swaptools import make_exiting, stale_pair

from privateengine import private_engine

from daemontools import Daemon, new_token
from harness import (RUN_LABEL, docker, docker_inspect, free_port, refit_version, remove_containers,
                     wait_for)

SLOW_STOP_CMD = ["/bin/sh", "-c", "while :; do sleep 1; done"]


# --------------------------------------------------------------------------
# the second engine (the pattern of test_engine_restart.py)

@pytest.fixture(scope="module")
def engine2(engine):
    """One private dockerd for the module (see privateengine.py)."""
    yield from private_engine("fleet-engine")


# --------------------------------------------------------------------------
# images

@pytest.fixture(scope="module")
def builds(image_factory, plain_registry):
    """(v1, v2, bad): three builds, made once."""
    repo = image_factory.unique_repo("fleet-base")
    with ThreadPoolExecutor(max_workers=3) as ex:
        bad = ex.submit(make_exiting, image_factory, plain_registry, repo, "bad")
        v1, v2 = image_factory.make_many([{"registry": plain_registry, "repo": repo, "tag": t}
                                          for t in ("v1", "v2")])
        return v1, v2, bad.result()


def short(digest):
    return digest.split(":", 1)[1][:12]


# --------------------------------------------------------------------------
# hosts

class Host:
    """One fleet host: a refit daemon with a scope of its own and one
    opted-in container in that scope, on the shared engine or on ENGINE2."""

    def __init__(self, name, daemon, pair, engine2=None):
        self.name = name
        self.daemon = daemon
        self.v1, self.v2 = pair
        self.engine2 = engine2
        self.container = None

    def docker(self, *args):
        if self.engine2:
            return self.engine2.docker(*args).stdout.decode()
        return docker(*args)

    def inspect(self):
        if self.engine2:
            return self.engine2.inspect(self.container)
        return docker_inspect(self.container, "container")

    def repo_digests(self, image_id):
        if self.engine2:
            return self.engine2.inspect(image_id)["RepoDigests"]
        return docker_inspect(image_id, "image")["RepoDigests"]

    def history(self):
        return self.daemon.get_json("/api/v1/history")["history"]


@pytest.fixture
def fleet(refit_bin, tmp_path, engine, image_factory, plain_registry, builds, run_id, scope):
    """fleet(n, bad=(indexes), private=(indexes)) -> [Host] started in
    parallel; containers and daemons are removed / stopped at teardown."""
    made = []
    v1, v2, bad = builds

    def make(n, bad_hosts=(), private=(), engine2=None, slow_stop=()):
        def one(i):
            name = "host%d" % (i + 1)
            pair = stale_pair(image_factory, plain_registry, v1, bad if i in bad_hosts else v2,
                              "fleet-" + name)
            e2 = engine2 if i in private else None
            extra = "docker_host: unix://%s\n" % e2.sock if e2 else ""
            d = Daemon(refit_bin, os.path.join(str(tmp_path), name), scope="%s-%s" % (scope, name),
                       config_extra=extra)
            h = Host(name, d, pair, e2)
            h.container = "refit-e2e-%s-fleet-%s-%s" % (run_id, name, uuid.uuid4().hex[:6])
            run = ["run", "-d", "--name", h.container, "--label", "%s=%s" % (RUN_LABEL, run_id),
                   "--label", "refit.enable=true", "--label", "refit.scope=" + d.scope]
            if e2:
                # the private engine pulls v1 by digest from the test registry, tagged as the reference
                e2.docker("pull", pair[0].pinned_ref)
                e2.docker("tag", pair[0].pinned_ref, pair[0].ref)
                run += ["--network", "none"]
            # slow_stop: PID 1 without a TERM trap, so every stop waits the whole stop_timeout
            h.docker(*(run + [pair[0].ref] + (SLOW_STOP_CMD if i in slow_stop else [])))
            made.append(h)
            d.start()
            return h
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=6) as ex:
            hosts = list(ex.map(one, range(n)))
        print("%d hosts ready in %.1fs" % (n, time.monotonic() - t0))
        for h in hosts:
            ins = h.inspect()
            assert ins["Image"] == h.v1.id and ins["State"]["Running"], (h.name, ins["State"])
        return hosts
    yield make

    def remove(h):
        h.daemon.kill()
        if h.engine2:
            h.engine2.docker("rm", "-f", "-v", h.container, check=False)
        else:
            remove_containers([h.container])
    with ThreadPoolExecutor(max_workers=6) as ex:
        list(ex.map(remove, made))


def write_hosts(path, hosts, tokens=None, extra=None):
    """The hosts file: each host with its URL and token (every other one through token_file)."""
    lines = ["# refit fleet e2e", "hosts:"]
    for i, h in enumerate(hosts):
        name, url, token = (h.name, h.daemon.url, h.daemon.token) if isinstance(h, Host) else h
        token = (tokens or {}).get(name, token)
        lines += ["  - name: %s" % name, "    url: %s" % url]
        if i % 2:
            tf = os.path.join(os.path.dirname(path), "%s.token" % name)
            with open(tf, "w") as f:
                f.write(token + "\n")
            lines.append("    token_file: %s" % tf)
        else:
            lines.append("    token: %s" % token)
        lines += ["    " + x for x in (extra or {}).get(name, [])]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


class Run:
    def __init__(self, args, p):
        self.args = args
        self.rc = p.returncode
        self.out = p.stdout.decode("utf-8", "backslashreplace")
        self.err = p.stderr.decode("utf-8", "backslashreplace")

    def describe(self):
        return "$ %s\n-> exit %s\n--- stdout\n%s\n--- stderr\n%s" % (" ".join(self.args), self.rc,
                                                                    self.out[-6000:], self.err[-4000:])

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise AssertionError("not JSON (%s)\n%s" % (e, self.describe()))


def fleet_cmd(refit_bin, *args, timeout=600):
    cmd = [refit_bin, "fleet"] + [str(a) for a in args]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REFIT_", "WATCHTOWER_"))}
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
    r = Run(cmd, p)
    print("%s: %.1fs" % (" ".join(cmd[1:3]), time.monotonic() - t0))
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in r.err, r.describe()
    return r


def no_tokens(run, hosts, extra=()):
    """No token of any host (nor EXTRA) appears in what the fleet printed."""
    for t in [h.daemon.token for h in hosts] + list(extra):
        assert t not in run.out and t not in run.err, "a token was printed\n" + run.describe()


def row(out, host):
    """The table row of HOST (split on runs of spaces)."""
    for line in out.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0] == host:
            return cells
    raise AssertionError("no table row for %s in\n%s" % (host, out))


class TLSProxy:
    """HTTPS on 127.0.0.1 in front of a daemon's HTTP API (refit's API has no
    TLS of its own; a reverse proxy gives it one): the test CA's certificate
    for 127.0.0.1, every connection forwarded byte for byte."""

    def __init__(self, tls, upstream_port):
        self.upstream = upstream_port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(tls.server_crt, tls.server_key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self.failed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            c.settimeout(30)
            t = self.ctx.wrap_socket(c, server_side=True)
            self.handshakes += 1
        except (OSError, ssl.SSLError):
            self.failed += 1
            c.close()
            return
        u = socket.create_connection(("127.0.0.1", self.upstream), timeout=30)

        def pump(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        th = threading.Thread(target=pump, args=(u, t), daemon=True)
        th.start()
        pump(t, u)
        th.join(30)
        t.close()
        u.close()

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------
# tests

def test_rollout_canary_then_batches(refit_bin, tmp_path, fleet, engine2):
    """Six hosts (the sixth on the private engine), --canary 1 --batch 2: every
    container ends on its new digest; the canary finishes before any other
    host starts, and each batch finishes before the next one starts."""
    hosts = fleet(6, private=(5,), engine2=engine2)
    before = {h.name: h.inspect()["Id"] for h in hosts}
    hf = write_hosts(os.path.join(str(tmp_path), "hosts.yml"), hosts)
    r = fleet_cmd(refit_bin, "rollout", "--hosts", hf, "--canary", "1", "--batch", "2")
    assert r.rc == 0, r.describe()
    no_tokens(r, hosts)
    for h in hosts:
        ins = h.inspect()
        assert ins["Image"] == h.v2.id, (h.name, r.describe())
        assert ins["State"]["Running"], h.name
        assert ins["Id"] != before[h.name], h.name
        assert "%s@%s" % (h.v2.name, h.v2.digest) in h.repo_digests(ins["Image"]), h.name
        hist = [x for x in h.history() if x.get("container") == h.container]
        assert [(x["outcome"], x["old_digest"], x["new_digest"]) for x in hist] == \
            [("updated", h.v1.digest, h.v2.digest)], (h.name, hist)
    # the final table: one row per host, the container's old -> new digest
    for h in hosts:
        cells = row(r.out, h.name)
        assert cells[1] == "succeeded" and cells[2] == "1", cells
        assert cells[4].endswith("s"), cells
        assert cells[5] == "%s updated %s \u2192 %s" % (h.container, short(h.v1.digest), short(h.v2.digest)), cells
    assert "rollout succeeded" in r.out
    # the order: progress lines, one per state change
    lines = r.out.splitlines()

    def first(prefix):
        for i, line in enumerate(lines):
            if line.startswith(prefix):
                return i
        raise AssertionError("no line %r\n%s" % (prefix, r.describe()))
    done = {h.name: first("%s: succeeded in" % h.name) for h in hosts}
    began = {h.name: first("%s: triggering an update" % h.name) for h in hosts}
    assert "(canary 1)" in lines[began["host1"]]
    assert "(batch 1)" in lines[began["host2"]] and "(batch 3)" in lines[began["host6"]]
    stages = [["host1"], ["host2", "host3"], ["host4", "host5"], ["host6"]]
    for prev, nxt in zip(stages, stages[1:]):
        assert max(done[n] for n in prev) < min(began[n] for n in nxt), r.out
    # nothing left to do: a second rollout changes nothing, as JSON
    r2 = fleet_cmd(refit_bin, "rollout", "--hosts", hf, "--batch", "6", "--json")
    assert r2.rc == 0, r2.describe()
    j = r2.json()
    assert j["result"] == "succeeded" and j["rolled_back"] is False
    assert [x["name"] for x in j["hosts"]] == [h.name for h in hosts]
    for x, h in zip(j["hosts"], hosts):
        assert x["result"] == "succeeded" and x["changed"] == 0 and x["rollback"] is None, x
        assert x["url"] == h.daemon.url and re.match(r"^[0-9a-f]{16}$", x["operation"]), x
        assert [(c["name"], c["status"]) for c in x["containers"]] == [(h.container, "up-to-date")], x
        assert h.inspect()["Image"] == h.v2.id


def test_rollout_halts_and_rolls_back(refit_bin, tmp_path, fleet, engine2):
    """host3's new image never gets healthy: the rollout halts there; host4
    and host5 are not touched; host1 and host2 (already changed) are rolled
    back to the old digest with --rollback-on-failure."""
    hosts = fleet(5, bad_hosts=(2,), private=(4,), engine2=engine2)
    before = {h.name: h.inspect()["Id"] for h in hosts}
    hf = write_hosts(os.path.join(str(tmp_path), "hosts.yml"), hosts)
    r = fleet_cmd(refit_bin, "rollout", "--hosts", hf, "--canary", "1", "--batch", "2",
                  "--rollback-on-failure", "--json")
    assert r.rc == 1, r.describe()
    no_tokens(r, hosts)
    j = r.json()
    res = {x["name"]: x for x in j["hosts"]}
    assert j["result"] == "failed" and j["rolled_back"] is True, j
    # host1 (canary) and host2 (same batch as host3) changed, then rolled back
    for h in hosts[:2]:
        x = res[h.name]
        assert x["result"] == "succeeded" and x["changed"] == 1, x
        assert x["containers"][0]["old_digest"] == h.v1.digest and x["containers"][0]["new_digest"] == h.v2.digest
        assert x["rollback"]["result"] == "rolled-back", x
        assert [(c["name"], c["status"]) for c in x["rollback"]["containers"]] == [(h.container, "rolled-back")]
        ins = h.inspect()
        assert ins["Image"] == h.v1.id and ins["State"]["Running"], (h.name, ins["Image"])
        assert "%s@%s" % (h.v1.name, h.v1.digest) in h.repo_digests(ins["Image"])
        kinds = [(x["kind"], x["outcome"]) for x in h.history() if x.get("container") == h.container]
        assert kinds == [("update", "updated"), ("rollback", "updated")], (h.name, kinds)
    # host3: its swap failed, refit restored the old container itself; nothing to roll back
    x3 = res["host3"]
    assert x3["result"] == "failed" and x3["changed"] == 0 and x3["rollback"] is None, x3
    assert "rolled-back" in x3["error"] and hosts[2].container in x3["error"], x3
    assert x3["containers"][0]["status"] == "rolled-back"
    ins3 = hosts[2].inspect()
    assert ins3["Image"] == hosts[2].v1.id and ins3["State"]["Running"]
    # host4 and host5 (the private engine): never asked
    for h in hosts[3:]:
        x = res[h.name]
        assert x["result"] == "not-started" and x["operation"] is None and x["rollback"] is None, x
        ins = h.inspect()
        assert ins["Id"] == before[h.name] and ins["Image"] == h.v1.id, h.name
        assert h.history() == [], h.name
        ops = h.daemon.post_json("/api/v1/management/orchestrator/update/command", {"action": "status"},
                                 status=200).json()
        assert ops["last"] is None and ops["running"] is None, ops
    # progress went to stderr, one line per change; the halt is said
    assert "host3: FAILED" in r.err and "host4: not started" in r.err, r.err
    assert "host1: rolled back" in r.err and "host2: rolled back" in r.err, r.err


def test_unreachable_host_and_wrong_token(refit_bin, tmp_path, fleet):
    """A closed port: the host fails as unreachable and the hosts after it
    are not touched.  A wrong token (401): the host fails saying so, without
    printing the token, and nothing changes there."""
    hosts = fleet(3)
    closed = free_port()
    gone = ("gone", "http://127.0.0.1:%d" % closed, new_token())
    hf = write_hosts(os.path.join(str(tmp_path), "hosts.yml"), [hosts[0], gone, hosts[1]],
                     extra={"gone": ["connect_timeout: 3"]})
    before = hosts[1].inspect()["Id"]
    r = fleet_cmd(refit_bin, "rollout", "--hosts", hf)
    assert r.rc == 1, r.describe()
    no_tokens(r, hosts, extra=[gone[2]])
    assert row(r.out, "host1")[1] == "succeeded"
    assert row(r.out, "gone")[1] == "failed"
    assert row(r.out, "host2")[1] == "not-started"
    assert re.search(r"^gone: update: unreachable: .*127\.0\.0\.1.*%d" % closed, r.out, re.M), r.out
    assert "rollout FAILED" in r.out
    assert hosts[0].inspect()["Image"] == hosts[0].v2.id
    ins = hosts[1].inspect()
    assert ins["Id"] == before and ins["Image"] == hosts[1].v1.id
    assert hosts[1].history() == []

    # host2 with a wrong token, host3 beside it in the same batch
    wrong = new_token()
    hf = write_hosts(os.path.join(str(tmp_path), "hosts2.yml"), hosts[1:], tokens={"host2": wrong})
    r = fleet_cmd(refit_bin, "rollout", "--hosts", hf, "--batch", "2", "--json")
    assert r.rc == 1, r.describe()
    no_tokens(r, hosts, extra=[wrong])
    x = {h["name"]: h for h in r.json()["hosts"]}
    assert x["host3"]["result"] == "succeeded" and x["host3"]["changed"] == 1
    assert x["host2"]["result"] == "failed" and x["host2"]["operation"] is None
    assert "401" in x["host2"]["error"] and "token" in x["host2"]["error"], x["host2"]
    ins = hosts[1].inspect()
    assert ins["Id"] == before and ins["Image"] == hosts[1].v1.id and hosts[1].history() == []
    assert hosts[2].inspect()["Image"] == hosts[2].v2.id
    assert "host2: FAILED" in r.err and "401" in r.err


def test_status_table_and_json(refit_bin, tmp_path, fleet, engine2):
    """fleet status: each host's health, version, paused state, its containers
    with image and digest; an unreachable host is a row saying so (exit 1)."""
    hosts = fleet(2, private=(1,), engine2=engine2)
    hosts[1].daemon.post_json("/api/v1/pause", status=200)
    hf = write_hosts(os.path.join(str(tmp_path), "hosts.yml"), hosts)
    r = fleet_cmd(refit_bin, "status", "--hosts", hf)
    assert r.rc == 0, r.describe()
    no_tokens(r, hosts)
    header = row(r.out, "HOST")
    assert header == ["HOST", "HEALTH", "VERSION", "PAUSED", "CONTAINER", "IMAGE", "DIGEST", "STATUS"], header
    for h, paused in zip(hosts, ("no", "yes")):
        cells = row(r.out, h.name)
        assert cells == [h.name, "ok", refit_version(refit_bin), paused, h.container, h.v1.ref, short(h.v1.digest),
                         "update-available"], cells

    closed = free_port()
    hf2 = write_hosts(os.path.join(str(tmp_path), "hosts2.yml"),
                      hosts + [("gone", "http://127.0.0.1:%d" % closed, new_token())])
    r = fleet_cmd(refit_bin, "status", "--hosts", hf2, "--json")
    assert r.rc == 1, r.describe()
    j = r.json()
    x = {h["name"]: h for h in j["hosts"]}
    assert x["gone"]["reachable"] is False and x["gone"]["health"] == "unreachable"
    assert "unreachable" in x["gone"]["error"] and x["gone"]["containers"] == []
    for h, paused in zip(hosts, (False, True)):
        y = x[h.name]
        assert y["reachable"] and y["health"] == "ok" and y["version"] == refit_version(refit_bin) and y["paused"] is paused, y
        assert [(c["name"], c["image"], c["old_digest"]) for c in y["containers"]] == \
            [(h.container, h.v1.ref, h.v1.digest)], y
    r = fleet_cmd(refit_bin, "status", "--hosts", hf2)
    assert r.rc == 1
    assert re.search(r"^gone\s+unreachable: ", r.out, re.M), r.out


def test_host_timeout(refit_bin, tmp_path, fleet):
    """A host's operation that outlasts its timeout (hosts file) fails the
    host, saying so, and halts the rollout; the daemon is left to finish."""
    host = fleet(1, slow_stop=(0,))[0]
    later = ("later", "http://127.0.0.1:%d" % free_port(), new_token())
    hf = write_hosts(os.path.join(str(tmp_path), "hosts.yml"), [host, later], extra={"host1": ["timeout: 1"]})
    t0 = time.monotonic()
    r = fleet_cmd(refit_bin, "rollout", "--hosts", hf, "--timeout", "120")
    took = time.monotonic() - t0
    assert r.rc == 1, r.describe()
    assert re.search(r"^host1: update: operation [0-9a-f]{16} did not finish within 1 s", r.out, re.M), r.out
    assert row(r.out, "later")[1] == "not-started", r.out
    assert took < 3 + 5, took   # the stop alone takes stop_timeout (3 s) on that host
    # the operation goes on there: it ends with the container updated
    wait_for(lambda: [x["outcome"] for x in host.history()] == ["updated"], 60, interval=0.3,
             what="host1's update to finish")
    assert host.inspect()["Image"] == host.v2.id


def test_https_with_ca_file(refit_bin, tmp_path, fleet, tls_material):
    """An https URL is verified: with the CA in ca_file the host answers
    (status and a rollout through TLS); without it, the host is unreachable
    for a certificate problem and nothing changes."""
    host = fleet(1)[0]
    proxy = TLSProxy(tls_material, host.daemon.port)
    try:
        url = "https://127.0.0.1:%d" % proxy.port
        bare = write_hosts(os.path.join(str(tmp_path), "bare.yml"), [("tls", url, host.daemon.token)])
        r = fleet_cmd(refit_bin, "rollout", "--hosts", bare)
        assert r.rc == 1, r.describe()
        assert re.search(r"^tls: update: unreachable: .*(certificate|SSL)", r.out, re.M | re.I), r.out
        # the proxy's side of the refused handshake may end a moment after refit's
        wait_for(lambda: proxy.failed >= 1, 10, what="the proxy to see the refused handshake")
        assert proxy.handshakes == 0
        assert host.inspect()["Image"] == host.v1.id and host.history() == []

        good = write_hosts(os.path.join(str(tmp_path), "tls.yml"), [("tls", url, host.daemon.token)],
                           extra={"tls": ["ca_file: %s" % tls_material.ca_pem]})
        r = fleet_cmd(refit_bin, "status", "--hosts", good)
        assert r.rc == 0, r.describe()
        assert row(r.out, "tls")[:5] == ["tls", "ok", refit_version(refit_bin), "no", host.container], r.out
        r = fleet_cmd(refit_bin, "rollout", "--hosts", good)
        assert r.rc == 0, r.describe()
        no_tokens(r, [host])
        assert row(r.out, "tls")[1:3] == ["succeeded", "1"], r.out
        assert host.inspect()["Image"] == host.v2.id
        assert proxy.handshakes >= 4
    finally:
        proxy.close()


def test_global_options_before_fleet_are_refused(refit_bin, tmp_path):
    """`refit --dry-run fleet rollout ...` would otherwise roll out for real:
    an option before `fleet` is a usage error, and nothing is contacted."""
    hosts = write_hosts(os.path.join(str(tmp_path), "h.yml"), [("a", "http://127.0.0.1:1", new_token())])
    for opt in ("--dry-run", "--json"):
        p = subprocess.run([refit_bin, opt, "fleet", "rollout", "--hosts", hosts], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 2 and p.stdout == "", (p.returncode, p.stdout, p.stderr)
        assert "refit fleet: %s: options go after 'fleet rollout' or 'fleet status'" % opt in p.stderr, p.stderr
    p = subprocess.run([refit_bin, "--help", "fleet", "rollout", "--hosts", hosts], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("usage: refit fleet"), (p.returncode, p.stdout, p.stderr)


def test_hosts_file_errors(refit_bin, tmp_path):
    """Usage and hosts-file errors: exit 2 naming the file, the line and the key."""
    d = str(tmp_path)
    tok = new_token()

    def bad(text, *want):
        p = os.path.join(d, "bad-%s.yml" % uuid.uuid4().hex[:6])
        with open(p, "w") as f:
            f.write(text)
        r = fleet_cmd(refit_bin, "rollout", "--hosts", p)
        assert r.rc == 2, r.describe()
        for w in want:
            assert w.replace("FILE", p) in r.err, r.describe()
        assert tok not in r.err + r.out
        assert r.out == ""
    bad("hosts:\n  - name: a\n    url: http://127.0.0.1:1\n    token: %s\n    tokn: x\n" % tok,
        "FILE:5: hosts[0].tokn: unknown key")
    bad("hosts:\n  - name: a\n    url: http://127.0.0.1:1\n    token: %s\n  - name: a\n    url: http://b\n"
        "    token: %s\n" % (tok, tok), "FILE:5: hosts[1].name: a is already the name of the host on line 2")
    bad("hosts:\n  - name: a\n    url: http://u:p@127.0.0.1:1\n    token: %s\n" % tok, "FILE:3: hosts[0].url")
    bad("hosts:\n  - name: a\n    url: http://127.0.0.1:1\n    token_file: %s/nope\n" % d,
        "FILE:4: hosts[0].token_file: cannot read")
    r = fleet_cmd(refit_bin, "rollout")
    assert r.rc == 2 and "--hosts FILE is required" in r.err
    r = fleet_cmd(refit_bin, "rollout", "--hosts", "/nonexistent/h.yml")
    assert r.rc == 2 and "/nonexistent/h.yml" in r.err
    r = fleet_cmd(refit_bin, "rollout", "--hosts", "x", "--batch", "0")
    assert r.rc == 2 and "--batch" in r.err
    r = fleet_cmd(refit_bin, "explode")
    assert r.rc == 2
    r = fleet_cmd(refit_bin, "--help")
    assert r.rc == 0 and "refit fleet rollout" in r.out and "--rollback-on-failure" in r.out


def test_rollout_to_a_target_version(refit_bin, tmp_path, fleet, image_factory, plain_registry):
    """--target-version TAG: each host moves its containers to TAG of their
    repository (the daemon's target_version). A tag that does not exist
    fails the first host with a message naming it, changes nothing there,
    and the rollout stops before the next host."""
    hosts = fleet(2)
    refs = {}
    for h in hosts:
        ref = plain_registry.ref(h.v1.repo, "release-2")
        with image_factory.lock:
            image_factory.tags.append(ref)
        docker("tag", h.v2.id, ref)
        image_factory.push(ref, config_dir=plain_registry.push_config)
        docker("rmi", ref)   # only the tag goes: this engine has not pulled release-2
        refs[h.name] = ref
    hf = write_hosts(os.path.join(str(tmp_path), "hosts.yml"), hosts)
    ids = {h.name: h.inspect()["Id"] for h in hosts}

    r = fleet_cmd(refit_bin, "rollout", "--hosts", hf, "--target-version", "no-such-tag")
    assert r.rc == 1, r.describe()
    assert "no-such-tag" in r.out, r.describe()
    assert row(r.out, "host2")[1] == "not-started", r.out
    for h in hosts:
        ins = h.inspect()
        assert ins["Id"] == ids[h.name] and ins["Image"] == h.v1.id, (h.name, r.describe())

    r = fleet_cmd(refit_bin, "rollout", "--hosts", hf, "--target-version", "release-2", "--json")
    assert r.rc == 0, r.describe()
    for h in hosts:
        ins = h.inspect()
        assert ins["Image"] == h.v2.id, (h.name, r.describe())
        assert ins["Config"]["Image"] == refs[h.name], (h.name, ins["Config"]["Image"])
        assert ins["State"]["Running"]
