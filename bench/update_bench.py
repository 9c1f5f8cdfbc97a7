#!/usr/bin/python3
"""Benchmark of `refit update`: workload W1 beside the engine's own floor, per-strategy overhead, swaps under load.

W1: N running containers (default 100) over M images (20), half the
images changed (50 stale containers), each with an anonymous volume. The
same stale containers are replaced, in turn and R times (--repeat), by:

  floor      the engine alone: a Python thread pool (refit's concurrency,
             8) over the Engine API socket, each image pulled once as its
             first container needs it, then inspect, stop, remove, create,
             start; no gate, no journal, no data kept
  cli-8      the docker CLI, 8 containers at once: docker pull, stop,
             rm -v, run -d
  cli-50     the same, 50 at once
  refit-mu5  refit update with min_uptime 5 (the default), recreate
  refit-mu1  min_uptime 1
  refit-mu0  min_uptime 0

Each prints the pass's wall time, refit's ratio to the floor, the pulls the
registry served, the downtime per container from the engine's events (die
of the old container -> start of its replacement), refit's own overhead per
swap (`overhead_seconds`), its peak RSS and peak private (anonymous) RSS
(sampled from /proc/PID/smaps_rollup every 20 ms), and whether every
replacement kept the old container's anonymous volume.

Then, as before, refit's overhead per swap for each strategy and, under
load, the requests a client looping on the service's alias lost across
blue-green swaps beside recreate swaps.

Only prints figures; exits non-zero only when an answer is wrong.

    make bench-update
    make bench-update BENCH_ARGS="--repeat 3 --per-strategy 0 --load-swaps 0"
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

import harness  # noqa: E402
from harness import (DOCKER, DOCKER_SOCK, RUN_LABEL, Containers, Engine, EngineEvents, ImageFactory,  # noqa: E402
                     Registry, docker, wait_for)
from swaptools import COMMON_PAIRS, SwapEnv, SwapImages, load_counts, load_loop, load_stop  # noqa: E402

MIN_UPTIME = 1
CONCURRENCY = 8


class RssSampler:
    """Peak RSS and peak anonymous (private) RSS of process PID, in kB."""

    def __init__(self, pid):
        self.pid = pid
        self.rss = self.anon = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        path = "/proc/%d/smaps_rollup" % self.pid
        while not self.done.is_set():
            try:
                with open(path) as f:
                    for line in f:
                        k, _, v = line.partition(":")
                        if k == "Rss":
                            self.rss = max(self.rss, int(v.split()[0]))
                        elif k == "Anonymous":
                            self.anon = max(self.anon, int(v.split()[0]))
            except (OSError, ValueError):
                pass
            self.done.wait(0.02)

    def stop(self):
        self.done.set()
        self.thread.join()


def run_update(binary, scope, workdir, concurrency, min_uptime=MIN_UPTIME, state=None):
    """refit update --json in SCOPE: (exit code, containers, wall s, peak RSS kB, peak anonymous kB)."""
    cfg = os.path.join(workdir, "bench-%s-%d.yml" % (scope, min_uptime))
    with open(cfg, "w") as f:
        f.write("min_uptime: %d\nhealth_timeout: 60\nstop_timeout: 5\nconcurrency: %d\n" % (min_uptime, concurrency))
    state = state or os.path.join(workdir, "state-" + scope)
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "--config", cfg, "--scope", scope, "--state-dir", state, "update", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = RssSampler(p.pid)
    out, _ = p.communicate()
    wall = time.monotonic() - t0
    sampler.stop()
    return p.returncode, json.loads(out or b'{"containers":[]}')["containers"], wall, sampler.rss, sampler.anon


def setup(factory, conts, reg, scope, n_containers, n_images, labels=None):
    images = factory.make_many([{"registry": reg, "repo": factory.unique_repo("ub")} for _ in range(n_images)])
    lab = {"refit.enable": "true", "refit.scope": scope}
    lab.update(labels or {})
    conts.run_many([{"image": images[i % n_images], "labels": lab} for i in range(n_containers)], workers=8)
    for img in images[: max(1, n_images // 2)]:
        factory.publish_new_version(img)
    return sum(1 for i in range(n_containers) if (i % n_images) < max(1, n_images // 2))


# --------------------------------------------------------------------------
# W1 beside the engine's floor

class _Unix(http.client.HTTPConnection):
    def __init__(self, timeout=300):
        super().__init__("docker", timeout=timeout)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(DOCKER_SOCK)
        self.sock = s


class EngineClient:
    """One connection to the Engine API per thread, as refit's workers have."""

    def __init__(self):
        self.local = threading.local()

    def call(self, method, path, body=None):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = _Unix()
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            out = r.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            raise
        if r.status >= 400:
            raise RuntimeError("%s %s: %d %s" % (method, path, r.status, out[:200]))
        try:
            return json.loads(out) if out else None
        except ValueError:
            return out   # a progress stream (a pull): one JSON object a line


class W1:
    """N containers over M images, half the images changed; the stale ones
    are put back on the old image between runs."""

    def __init__(self, factory, reg, run_id, n_containers, n_images):
        self.factory, self.reg = factory, reg
        self.scope = "ub-%s-w1" % run_id
        self.labels = {"refit.enable": "true", "refit.scope": self.scope, RUN_LABEL: run_id}
        self.conts = Containers(run_id, "refit-ub-%s-w1" % run_id)
        # a network of its own: the default bridge is shared with every other user of the engine
        self.net = "refit-ub-%s-w1" % run_id
        docker("network", "create", "--label", "%s=%s" % (RUN_LABEL, run_id), self.net)
        self.extra = ["--network", self.net, "-v", "/anon"]
        self.v1 = factory.make_many([{"registry": reg, "repo": factory.unique_repo("w1")} for _ in range(n_images)])
        self.image_of = {}
        specs = []
        for i in range(n_containers):
            name = "refit-ub-%s-w1-%d" % (run_id, i)
            self.image_of[name] = i % n_images
            specs.append({"image": self.v1[i % n_images], "labels": dict(self.labels), "name": name,
                          "extra": self.extra})
        self.conts.run_many(specs, workers=8)
        changed = max(1, n_images // 2)
        self.v2 = [factory.publish_new_version(img) for img in self.v1[:changed]]
        self.stale = sorted(n for n, i in self.image_of.items() if i < changed)

    def anon_volumes(self):
        out = docker("inspect", "--type", "container", "--format",
                     '{{.Name}} {{range .Mounts}}{{if eq .Destination "/anon"}}{{.Name}}{{end}}{{end}}', *self.stale)
        return dict(line.lstrip("/").split(" ", 1) for line in out.splitlines() if " " in line)

    def images(self):
        out = docker("inspect", "--type", "container", "--format", "{{.Name}} {{.Image}}", *self.stale)
        return dict(line.lstrip("/").split(" ", 1) for line in out.splitlines() if " " in line)

    def reset(self):
        """The stale containers again on v1, freshly run; v2 gone from the host."""
        harness.remove_containers(self.stale)
        for img, new in zip(self.v1, self.v2):
            docker("tag", img.id, img.ref)
            docker("rmi", "-f", new.id, check=False)
        specs = [{"image": self.v1[self.image_of[n]], "labels": dict(self.labels), "name": n,
                  "extra": self.extra} for n in self.stale]
        with ThreadPoolExecutor(max_workers=8) as ex:
            list(ex.map(lambda sp: docker("run", "-d", "--name", sp["name"],
                                          *sum((["--label", "%s=%s" % kv] for kv in sp["labels"].items()), []),
                                          *sp["extra"], sp["image"].ref, timeout=120), specs))

    def ok(self):
        want = {n: self.v2[self.image_of[n]].id for n in self.stale}
        return self.images() == want

    def cleanup(self):
        harness.remove_containers(self.stale + [n for n in self.image_of if n not in self.stale])
        docker("network", "rm", self.net, check=False)


def floor_api(w1, concurrency):
    """The same recreates through the Engine API, CONCURRENCY threads, no gate; each image pulled once."""
    client = EngineClient()
    pulled, lock = {}, threading.Lock()

    def pull(idx):
        with lock:
            ev = pulled.get(idx)
            mine = ev is None
            if mine:
                ev = pulled[idx] = threading.Event()
        if mine:
            img = w1.v1[idx]
            repo, tag = img.ref.rsplit(":", 1)
            try:
                out = client.call("POST", "/images/create?fromImage=%s&tag=%s" % (
                    urllib.parse.quote(repo, safe=""), tag))
                if b'"error"' in (out if isinstance(out, bytes) else json.dumps(out).encode()):
                    ev.error = "pull %s: %s" % (img.ref, out[-300:])
            except Exception as e:  # noqa: BLE001 - handed to every container of the image
                ev.error = "pull %s: %s" % (img.ref, e)
            finally:
                ev.set()
        ev.wait()
        if getattr(ev, "error", None):
            raise RuntimeError(ev.error)

    def recreate(name):
        idx = w1.image_of[name]
        pull(idx)
        client.call("GET", "/containers/%s/json" % name)
        client.call("POST", "/containers/%s/stop?t=10" % name)
        client.call("DELETE", "/containers/%s?v=1" % name)
        new = client.call("POST", "/containers/create?name=%s" % name,
                          {"Image": w1.v1[idx].ref, "Labels": w1.labels, "HostConfig": {"NetworkMode": w1.net},
                           "Volumes": {"/anon": {}}})
        client.call("POST", "/containers/%s/start" % new["Id"])

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as ex:
        list(ex.map(recreate, w1.stale))
    return time.monotonic() - t0


def floor_cli(w1, at_once):
    """The same with the docker CLI, AT_ONCE containers at a time: pull, stop, rm -v, run -d."""
    def recreate(name):
        ref = w1.v1[w1.image_of[name]].ref
        subprocess.run([DOCKER, "pull", "-q", ref], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([DOCKER, "stop", "-t", "10", name], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([DOCKER, "rm", "-v", name], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([DOCKER, "run", "-d", "--name", name] + w1.extra +
                       sum((["--label", "%s=%s" % kv] for kv in w1.labels.items()), []) + [ref],
                       check=True, stdout=subprocess.DEVNULL)

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=at_once) as ex:
        list(ex.map(recreate, w1.stale))
    return time.monotonic() - t0


def downtimes(events, names):
    """Seconds from the old container's die to its replacement's start, per name (engine event times)."""
    out = []
    for n in names:
        mine = [e for e in events if e.get("Actor", {}).get("Attributes", {}).get("name") == n]
        die = next((e["timeNano"] for e in mine if e.get("Action") == "die"), None)
        start = next((e["timeNano"] for e in mine if e.get("Action") == "start" and die and e["timeNano"] > die),
                     None)
        if die and start:
            out.append((start - die) / 1e9)
    return sorted(out)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def w1_runs(binary, w1, reg, workdir, repeat):
    modes = ["floor", "refit-mu5", "refit-mu1", "refit-mu0", "cli-8", "cli-50"]
    got = {m: [] for m in modes}
    ok = True
    first = True
    for r in range(repeat):
        for mode in modes:
            if not first:
                w1.reset()
            first = False
            before = w1.anon_volumes()
            mark = reg.mark()
            row = {"overhead": [], "rss": 0, "anon": 0, "kept": None}
            with EngineEvents(kinds=("container",)) as ev:
                if mode == "floor":
                    row["wall"] = floor_api(w1, CONCURRENCY)
                    good = True
                elif mode.startswith("cli-"):
                    row["wall"] = floor_cli(w1, int(mode[4:]))
                    good = True
                else:
                    mu = int(mode[len("refit-mu"):])
                    state = os.path.join(workdir, "state-w1-%d-%s" % (r, mode))
                    rc, res, row["wall"], row["rss"], row["anon"] = run_update(binary, w1.scope, workdir,
                                                                             CONCURRENCY, mu, state)
                    upd = [c for c in res if c.get("status") == "updated"]
                    row["overhead"] = sorted(c.get("overhead_seconds", 0) * 1000 for c in upd)
                    good = rc == 0 and len(upd) == len(w1.stale)
                    after = w1.anon_volumes()
                    row["kept"] = all(before.get(n) and after.get(n) == before[n] for n in w1.stale)
                    good &= row["kept"]
            row["down"] = downtimes(ev.events(), w1.stale)
            row["pulls"] = reg.count(method="GET", path_re=r"^/v2/.+/manifests/", since=mark)
            good &= w1.ok()
            ok &= good
            got[mode].append(row)
            print("W1 run %d %-10s %5.1f s  pulls %3d  downtime median %.2f s (max %.2f, %d seen)%s%s%s" % (
                r + 1, mode, row["wall"], row["pulls"], med(row["down"]), max(row["down"] or [0]), len(row["down"]),
                "  overhead/swap median %.1f ms" % med(row["overhead"]) if row["overhead"] else "",
                "  peak RSS %.1f MiB, private %.1f MiB, anonymous volumes kept: %s" % (
                    row["rss"] / 1024.0, row["anon"] / 1024.0, "yes" if row["kept"] else "NO")
                if mode.startswith("refit") else "",
                "" if good else "  <-- WRONG"), flush=True)
    floor = [x["wall"] for x in got["floor"]]
    print("\nW1 summary over %d run(s): %d containers, %d stale, concurrency %d (median, min-max)" % (
        repeat, len(w1.image_of), len(w1.stale), CONCURRENCY))
    print("| pass | wall time | ratio to floor | pulls | downtime median | overhead/swap median | peak private RSS |")
    print("|---|---|---|---|---|---|---|")
    for mode in modes:
        rows = got[mode]
        walls = [x["wall"] for x in rows]
        ratios = [x["wall"] / f for x, f in zip(rows, floor)]
        downs = [med(x["down"]) for x in rows]
        over = [med(x["overhead"]) for x in rows if x["overhead"]]
        print("| %s | %.1f s (%.1f-%.1f) | %.2f (%.2f-%.2f) | %d | %.2f s (%.2f-%.2f) | %s | %s |" % (
            mode, med(walls), min(walls), max(walls), med(ratios), min(ratios), max(ratios),
            rows[-1]["pulls"], med(downs), min(downs), max(downs),
            "%.1f ms (%.1f-%.1f)" % (med(over), min(over), max(over)) if over else "",
            "%.1f MiB" % (max(x["anon"] for x in rows) / 1024.0) if mode.startswith("refit") else ""))
    return ok


def under_load(binary, factory, reg, run_id, workdir, rounds):
    """Swap a served container ROUNDS times per strategy while a client on
    its network asks its alias in a loop; print lost requests and the
    longest gap between answers."""
    images = SwapImages(factory, run_id, workdir)
    v1, _ = images.pairs(reg, {"good": COMMON_PAIRS["good"]})["good"]
    ok = True
    try:
        for strategy in ("recreate", "blue-green"):
            scope = "ub-%s-load-%s" % (run_id, strategy)
            env = SwapEnv(run_id, scope, workdir, Containers(run_id, "refit-ul-%s" % run_id))
            lost, total, gaps = [], 0, []
            try:
                net, _ = env.network("load")
                for _ in range(rounds):
                    images.back_to(v1)
                    name = env.run(v1, env.managed({"refit.strategy": strategy}), hint="svc",
                                   extra=["--network", net, "--network-alias", "loadsvc"])
                    client = env.run(v1, env.labels(), hint="client", extra=["--network", net],
                                     cmd=["/bin/sh", "-c", load_loop("loadsvc")])
                    wait_for(lambda: load_counts(client)[0] >= 10, 40, interval=0.2, what="first requests")
                    rc, res, _, _, _ = run_update(binary, scope, workdir, 8)
                    if rc != 0 or [c.get("status") for c in res] != ["updated"]:
                        print("%-10s under load: the swap did not succeed (exit %d)  <-- WRONG" % (strategy, rc))
                        ok = False
                    b0 = load_counts(client)[1]
                    wait_for(lambda: load_counts(client)[1] >= b0 + 10, 40, interval=0.2, what="answers from v2")
                    a, b, f, gap = load_stop(client)
                    lost.append(f)
                    total += a + b + f
                    gaps.append(gap)
                    harness.remove_containers([name, client])
                print("%-10s under load: %d swaps, %d requests, lost per swap %s (total %d); "
                      "longest gap between answers %.2f s" %
                      (strategy, rounds, total, lost, sum(lost), max(gaps) if gaps else 0.0))
            finally:
                env.cleanup()
    finally:
        images.cleanup()
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--containers", type=int, default=100)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=1, help="W1 runs of every pass")
    ap.add_argument("--per-strategy", type=int, default=20, help="swaps per strategy (0: none)")
    ap.add_argument("--load-swaps", type=int, default=5, help="swaps under load per strategy (0: none)")
    args = ap.parse_args()
    binary = os.path.abspath(os.environ.get("REFIT_BIN") or os.path.join(HERE, "..", "refit"))
    run_id = "u" + uuid.uuid4().hex[:8]
    workdir = tempfile.mkdtemp(prefix="refit-ubench-")
    Engine().ensure()
    factory = ImageFactory(run_id, workdir, workers=4)
    reg = Registry(workdir, "ubench")
    reg.start()
    ok = True
    try:
        print("machine: %s, %d CPUs, load average %s; refit: %s" % (
            os.uname().release, os.cpu_count(), " ".join("%.2f" % x for x in os.getloadavg()), binary), flush=True)
        if args.containers > 0:
            w1 = W1(factory, reg, run_id, args.containers, args.images)
            try:
                ok &= w1_runs(binary, w1, reg, workdir, args.repeat)
            finally:
                w1.cleanup()
            print("load average after W1: %s" % " ".join("%.2f" % x for x in os.getloadavg()), flush=True)
        for strategy in ("recreate", "blue-green", "alias") if args.per_strategy > 0 else ():
            scope = "ub-%s-%s" % (run_id, strategy)
            conts = Containers(run_id, "refit-ub-%s-%s" % (run_id, strategy))
            try:
                n = args.per_strategy
                if strategy != "alias":
                    stale = setup(factory, conts, reg, scope, n, 1, {"refit.strategy": strategy})
                else:
                    img = factory.make(reg, repo=factory.unique_repo("ua"))
                    for i in range(n):
                        new_name = "refit-ub-%s-alias-new-%d" % (run_id, i)
                        conts.run(img, labels={"refit.enable": "true", "refit.scope": scope,
                                               "refit.strategy": "alias", "refit.rename-to": new_name})
                        conts.names.append(new_name)   # removed at teardown under its new name
                    factory.publish_new_version(img)
                    stale = n
                rc, res, wall, _, _ = run_update(binary, scope, workdir, 8)
                done = [c for c in res if c.get("swap_seconds") and c["status"] == "updated"]
                swaps = sorted(c["swap_seconds"] * 1000 for c in done)
                over = sorted(c.get("overhead_seconds", 0) * 1000 for c in done)
                good = rc == 0 and len(swaps) == stale
                ok &= good
                if over:
                    print("%-10s %d swaps in %.1f s wall (concurrency 8): swap median %.0f ms (gate %d s); "
                          "refit's own overhead per swap median %.1f ms, max %.1f ms "
                          "(swap time minus the time waiting on the engine, probes and timers)%s" %
                          (strategy, len(swaps), wall, swaps[len(swaps) // 2], MIN_UPTIME,
                           over[len(over) // 2], over[-1], "" if good else "  <-- WRONG"), flush=True)
                else:
                    print("%-10s no swap measured (exit %d)  <-- WRONG" % (strategy, rc))
            finally:
                conts.remove_all()
        if args.load_swaps > 0:
            ok &= under_load(binary, factory, reg, run_id, workdir, args.load_swaps)
    finally:
        harness.sweep_run_objects(run_id)
        factory.cleanup()
        reg.stop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
