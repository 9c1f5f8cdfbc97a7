#!/usr/bin/python3
"""Benchmark of `refit check`: N containers over M images, half the images changed.

Prints, for each registry kind (plain HTTP; Bearer-token), the registry
requests of one pass counted in the registry's own access log (manifest
requests) and by the token server (token requests), the wall time of the
pass, and refit's peak RSS, beside the peak RSS of `refit --help` (the shared
libraries alone) so refit's own working memory can be read off. Also prints
the request count of the pattern Watchtower uses (challenge, token, HEAD per
container) for the same containers, as a baseline ratio.

The floor, measured in the same run: Python doing only what the pass must
(the same container and image list calls on the engine's socket, one token
request with every repository's scope, the same HEADs at the same
concurrency over kept-alive connections), and refit's ratio to it: once for
`refit check` (a new process: connections, Swarm state and tokens learned
anew) and once warm, in a running `refit daemon` (GET /api/v1/containers,
the median of 5 passes after a first). The daemon's private (anonymous)
memory is read from /proc/PID/smaps_rollup before them, during two more
passes (not timed: the reading itself slows the process it reads) and
after them.

Never fails on a slow machine: it only prints figures. It exits non-zero
only when refit's answer is wrong (a stale container not reported).

    make bench                                   # 100 containers over 20 images
    make bench BENCH_ARGS="--containers 1000 --images 100 --no-start"
"""

import argparse
import http.client
import json
import os
import secrets
import socket
import statistics
import threading
import urllib.parse
import urllib.request
import subprocess
import sys
import tempfile
import time
import uuid
import base64
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

import harness  # noqa: E402
from harness import (Containers, Engine, ImageFactory, Registry, TokenServer,  # noqa: E402
                     write_docker_config)

MANIFEST_RE = r"^/v2/.+/manifests/"
CONCURRENCY = 8   # refit's default
LABEL_LISTS = ["/containers/json?all=1&filters=" + urllib.parse.quote(json.dumps({"label": [k]}))
               for k in ("refit.enable", "com.centurylinklabs.watchtower.enable")]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def engine_api():
    c = UnixHTTPConnection(harness.DOCKER_SOCK)
    c.request("GET", "/version")
    v = json.loads(c.getresponse().read())["ApiVersion"]
    c.close()
    return v


def floor(reg, token_server, images, api):
    """Seconds for the bare work of one check pass, done by Python: (total, lists, token, HEADs)."""
    local = threading.local()
    t0 = time.monotonic()
    eng = UnixHTTPConnection(harness.DOCKER_SOCK)
    for path in LABEL_LISTS + ["/images/json"]:
        eng.request("GET", "/v%s%s" % (api, path))
        r = eng.getresponse()
        json.loads(r.read())
    eng.close()
    t_lists = time.monotonic()
    auth = {}
    if token_server:
        q = urllib.parse.urlencode([("service", token_server.service)] +
                                   [("scope", "repository:%s:pull" % i.repo) for i in images])
        basic = base64.b64encode(("%s:%s" % (token_server.username, token_server.password)).encode())
        req = urllib.request.Request(token_server.realm + "?" + q,
                                     headers={"Authorization": "Basic " + basic.decode()})
        with urllib.request.urlopen(req, timeout=10) as r:
            auth = {"Authorization": "Bearer " + json.loads(r.read())["token"]}
    t_token = time.monotonic()

    def head(img):
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = http.client.HTTPConnection(reg.host, timeout=10)
        c.request("HEAD", "/v2/%s/manifests/%s" % (img.repo, img.tag),
                  headers=dict(auth, Accept=harness.MANIFEST_ACCEPT))
        r = c.getresponse()
        r.read()
        if r.status != 200 or not r.getheader("Docker-Content-Digest"):
            raise RuntimeError("floor: HEAD %s answered %d" % (img.repo, r.status))

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as ex:
        list(ex.map(head, images))
    t1 = time.monotonic()
    return t1 - t0, t_lists - t0, t_token - t_lists, t1 - t_token


def private_kib(pid):
    """(Anonymous, Private_Clean + Private_Dirty) KiB of process PID."""
    vals = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                vals[parts[0][:-1]] = int(parts[1])
    return vals.get("Anonymous", 0), vals.get("Private_Clean", 0) + vals.get("Private_Dirty", 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def warm_passes(binary, scope, env, workdir, kind, passes=5):
    """Start `refit daemon` (no scheduled pass) and time GET /api/v1/containers.

    Returns (first seconds, [warm seconds], answer of the last timed pass,
    memory dict); 2 more passes run, untimed, for the memory peak."""
    port, token = free_port(), secrets.token_hex(16)
    state = os.path.join(workdir, "daemon-state-" + kind)
    cfg = os.path.join(workdir, "daemon-%s.yml" % kind)
    with open(cfg, "w") as f:
        f.write("scope: %s\nschedule: \"0 0 1 1 *\"\nupdate_on_start: false\nstate_dir: %s\n"
                "api:\n  listen: 127.0.0.1:%d\n  token: %s\n" % (scope, state, port, token))
    log = open(os.path.join(workdir, "daemon-%s.log" % kind), "wb")
    proc = subprocess.Popen([binary, "--config", cfg, "daemon"], stdout=log, stderr=log, env=env,
                            start_new_session=True)
    mem = {}
    try:
        url = "http://127.0.0.1:%d" % port
        for _ in range(500):
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.02)
        time.sleep(0.5)
        mem["idle_before"] = private_kib(proc.pid)

        def one_pass():
            req = urllib.request.Request(url + "/api/v1/containers",
                                         headers={"Authorization": "Bearer " + token})
            t0 = time.monotonic()
            with urllib.request.urlopen(req, timeout=120) as r:
                got = r.read()
            return time.monotonic() - t0, got

        # timed alone: reading smaps_rollup walks the daemon's page tables
        # under its memory map lock, and would slow the passes it measures
        times, body = [], None
        for _ in range(passes + 1):
            t, body = one_pass()
            times.append(t)
        # then two more passes for the memory peak, sampled every 2 ms
        peak = [0, 0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    a, p = private_kib(proc.pid)
                except OSError:
                    return
                peak[0], peak[1] = max(peak[0], a), max(peak[1], p)
                time.sleep(0.002)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        for _ in range(2):
            one_pass()
        stop.set()
        th.join()
        mem["peak"] = tuple(peak)
        time.sleep(1.0)
        mem["idle_after"] = private_kib(proc.pid)
        return times[0], times[1:], json.loads(body)["containers"], mem
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def run_measured(argv, env):
    """Run argv; returns (rc, stdout, wall seconds, peak RSS KiB).

    Peak RSS comes from GNU time, a small C program, so the figure is refit's
    and not that of a forked Python interpreter."""
    with tempfile.NamedTemporaryFile("r") as rss_file:
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-o", rss_file.name, "-f", "%M"] + argv,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        wall = time.monotonic() - t0
        rss = int(rss_file.read().strip().splitlines()[-1])
    return p.returncode, p.stdout, wall, rss


def heap_peak(argv, env):
    """Peak heap bytes (malloc'd, with allocator overhead) of one run under valgrind's massif."""
    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run(["valgrind", "--tool=massif", "--massif-out-file=" + out.name] + argv,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        peak, heap = 0, 0
        for line in out.read().splitlines():
            if line.startswith("mem_heap_B="):
                heap = int(line.split("=")[1])
            elif line.startswith("mem_heap_extra_B="):
                peak = max(peak, heap + int(line.split("=")[1]))
    return peak


def bench_one(kind, reg, token_server, factory, run_id, binary, n_containers, n_images, workdir,
              no_start=False):
    scope = "bench-%s-%s" % (run_id, kind)
    conts = Containers(run_id, "refit-bench-%s-%s" % (run_id, kind))
    env = dict(os.environ)
    cfgdir = os.path.join(workdir, "dockercfg-" + kind)
    os.makedirs(cfgdir, exist_ok=True)
    if reg.username:
        write_docker_config(cfgdir,
                            auths={reg.host: (reg.username, reg.password)})
    env["DOCKER_CONFIG"] = cfgdir
    try:
        t0 = time.monotonic()
        images = factory.make_many([{"registry": reg, "repo": factory.unique_repo("bench")}
                                    for _ in range(n_images)])
        specs = [{"image": images[i % n_images],
                  "labels": {"refit.enable": "true", "refit.scope": scope}}
                 for i in range(n_containers)]
        if no_start:
            # created, never started: no process per container, so 1000 of
            # them fit beside other work; refit reads them with include_stopped
            env["REFIT_INCLUDE_STOPPED"] = "true"
            with ThreadPoolExecutor(max_workers=8) as ex:
                list(ex.map(lambda sp: conts.create(**sp), specs))
        else:
            conts.run_many(specs, workers=8)
        changed = images[: n_images // 2]
        for img in changed:
            factory.publish_new_version(img)
        setup = time.monotonic() - t0

        # The pass being measured.
        mark = reg.mark()
        tmark = token_server.mark() if token_server else 0
        rc, out, wall, rss = run_measured(
            [binary, "--scope", scope, "--state-dir", workdir, "check", "--json"], env)
        manifests = reg.count(path_re=MANIFEST_RE, since=mark)
        pings = reg.count(path_re=r"^/v2/$", since=mark)
        tokens = token_server.count(since=tmark) if token_server else 0
        heap = heap_peak([binary, "--scope", scope, "check", "--json"], env)

        res = json.loads(out)["containers"]
        stale_want = sum(1 for i in range(n_containers) if (i % n_images) < n_images // 2)
        stale_got = sum(1 for c in res if c["status"] == "update-available")
        ok = rc == 0 and len(res) == n_containers and stale_got == stale_want

        # The floor, then refit warm in a daemon, then the floor again (the machine is shared).
        api = engine_api()
        floors = [floor(reg, token_server, images, api) for _ in range(3)]
        wmark = reg.mark()
        wtmark = token_server.mark() if token_server else 0
        first, warm, wres, mem = warm_passes(binary, scope, env, workdir, kind)
        # the first pass, the warm ones and the two the memory sampler watched
        w_manifests = reg.count(path_re=MANIFEST_RE, since=wmark) / (len(warm) + 3)
        w_tokens = (token_server.count(since=wtmark) if token_server else 0) / (len(warm) + 3)
        floors += [floor(reg, token_server, images, api) for _ in range(3)]
        parts = [statistics.median(f[k] for f in floors) for k in range(1, 4)]
        floors = [f[0] for f in floors]
        fl = statistics.median(floors)
        wmed = statistics.median(warm)
        wstale = sum(1 for c in wres if c.get("update_available") is True)
        ok = ok and len(wres) == n_containers and wstale == stale_want

        # Watchtower's request pattern, one container at a time: a /v2/
        # challenge, a token (token registries) and a HEAD, scripted with curl.
        bmark = reg.mark()
        base_wall = watchtower_baseline(reg, token_server, images, n_containers)
        base_reqs = reg.count(since=bmark) + (n_containers if token_server else 0)

        print("%-6s containers=%d%s images=%d changed=%d | setup %.1fs" %
              (kind, n_containers, " (created, not started)" if no_start else "", n_images,
               len(changed), setup))
        print("       refit check: %.3f s wall, peak RSS %.1f MiB (heap peak %.0f KiB), exit %d, "
              "%d update-available (want %d)%s" %
              (wall, rss / 1024.0, heap / 1024.0, rc, stale_got, stale_want, "" if ok else "  <-- WRONG"))
        print("       requests: %d manifest, %d token, %d /v2/ ping" % (manifests, tokens, pings))
        print("       floor (Python: %d list calls, %s%d HEADs at %d at once): median %.3f s (%.3f-%.3f); "
              "lists %.3f s, token %.3f s, HEADs %.3f s" %
              (len(LABEL_LISTS) + 1, "1 token request, " if token_server else "", n_images, CONCURRENCY,
               fl, min(floors), max(floors), parts[0], parts[1], parts[2]))
        print("       refit check (new process): %.3f s = %.1fx the floor" % (wall, wall / fl))
        print("       refit daemon, GET /api/v1/containers: first %.3f s, warm median %.3f s (%.3f-%.3f) "
              "= %.1fx the floor; per pass %.0f manifest, %.1f token requests; %d update-available%s" %
              (first, wmed, min(warm), max(warm), wmed / fl, w_manifests, w_tokens, wstale,
               "" if wstale == stale_want and len(wres) == n_containers else "  <-- WRONG"))
        print("       daemon private memory (Anonymous / Private_*): idle %.1f / %.1f MiB, "
              "peak during the passes %.1f / %.1f MiB, idle after %.1f / %.1f MiB" %
              tuple(x / 1024.0 for x in mem["idle_before"] + mem["peak"] + mem["idle_after"]))
        print("       one-at-a-time baseline (curl, Watchtower's pattern): %d requests, %.3f s "
              "-> refit needs %.1fx fewer requests, %.1fx less time" %
              (base_reqs, base_wall, base_reqs / max(1, manifests + tokens + pings), base_wall / wall))
        return ok, wall, rss
    finally:
        conts.remove_all()


def watchtower_baseline(reg, token_server, images, n_containers):
    """Time the sequential per-container pattern with curl: challenge, token, HEAD."""
    t0 = time.monotonic()
    for i in range(n_containers):
        img = images[i % len(images)]
        subprocess.run(["curl", "-s", "-o", "/dev/null", reg.url + "/v2/"], check=False)
        hdr = []
        if token_server:
            tok = reg.token_server_token("repository:%s:pull" % img.repo)
            hdr = ["-H", "Authorization: Bearer " + tok]
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-I"] + hdr +
                       ["-H", "Accept: " + harness.MANIFEST_ACCEPT,
                        "%s/v2/%s/manifests/%s" % (reg.url, img.repo, img.tag)], check=False)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--containers", type=int, default=100)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--kinds", default="plain,token")
    ap.add_argument("--no-start", action="store_true",
                    help="create the containers without starting them (refit runs with "
                         "include_stopped): for 1000 containers on a small shared machine")
    args = ap.parse_args()
    binary = os.path.abspath(os.environ.get("REFIT_BIN") or os.path.join(HERE, "..", "refit"))
    run_id = "b" + uuid.uuid4().hex[:8]
    workdir = tempfile.mkdtemp(prefix="refit-bench-")
    Engine().ensure()
    factory = ImageFactory(run_id, workdir, workers=4)
    started = []
    ok_all = True
    try:
        _, _, _, rss_libs = run_measured([binary, "--help"], dict(os.environ))
        print("machine: %s, %d CPUs; refit: %s" % (os.uname().release, os.cpu_count(), binary))
        print("refit --help peak RSS (shared libraries, no work): %.1f MiB" % (rss_libs / 1024.0))
        for kind in args.kinds.split(","):
            ts = None
            if kind == "token":
                ts = TokenServer(workdir, username="bench", password=uuid.uuid4().hex)
                ts.start()
                started.append(ts)
                reg = Registry(workdir, "bench-token", kind="token", token_server=ts,
                               username="bench", password=ts.password)
            else:
                reg = Registry(workdir, "bench-plain")
            reg.start()
            started.append(reg)
            if kind == "token":
                reg.login()
            ok, wall, rss = bench_one(kind, reg, ts, factory, run_id, binary,
                                      args.containers, args.images, workdir, args.no_start)
            ok_all &= ok
    finally:
        harness.sweep_run_objects(run_id)
        factory.cleanup()
        for s in reversed(started):
            s.stop()
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
