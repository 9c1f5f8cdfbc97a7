#!/usr/bin/python3
"""Benchmark of `refit update`: N containers over M images, half the images changed.

Prints, for a pass over the stale containers: wall time with refit's
concurrency (default 8) beside the same pass one container at a time
(concurrency 1), the pulls the engine made (manifest fetches by digest in the
registry's access log), refit's peak RSS; and refit's own overhead per swap
for each strategy (`overhead_seconds` in `refit update --json`: the swap's
wall time minus what its thread spent waiting on the engine, health probes
and timers); and, under load, the requests a client looping on
the service's alias lost across blue-green swaps beside recreate swaps,
with the longest gap between two answers.

Only prints figures; exits non-zero only when refit's answer is wrong.

    make bench-update
    make bench-update BENCH_ARGS="--containers 100 --images 20"
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

import harness  # noqa: E402
from harness import Containers, Engine, ImageFactory, Registry, wait_for  # noqa: E402
from swaptools import COMMON_PAIRS, SwapEnv, SwapImages, load_counts, load_loop, load_stop  # noqa: E402

MIN_UPTIME = 1


def run_update(binary, scope, workdir, concurrency):
    cfg = os.path.join(workdir, "bench-%s.yml" % scope)
    with open(cfg, "w") as f:
        f.write("min_uptime: %d\nhealth_timeout: 60\nstop_timeout: 5\nconcurrency: %d\n" % (MIN_UPTIME, concurrency))
    state = os.path.join(workdir, "state-" + scope)
    with tempfile.NamedTemporaryFile("r") as rss_file:
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-o", rss_file.name, "-f", "%M", binary, "--config", cfg,
                            "--scope", scope, "--state-dir", state, "update", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wall = time.monotonic() - t0
        rss = int(rss_file.read().strip().splitlines()[-1])
    return p.returncode, json.loads(p.stdout or b'{"containers":[]}')["containers"], wall, rss


def setup(factory, conts, reg, scope, n_containers, n_images, labels=None):
    images = factory.make_many([{"registry": reg, "repo": factory.unique_repo("ub")} for _ in range(n_images)])
    lab = {"refit.enable": "true", "refit.scope": scope}
    lab.update(labels or {})
    conts.run_many([{"image": images[i % n_images], "labels": lab} for i in range(n_containers)], workers=8)
    for img in images[: max(1, n_images // 2)]:
        factory.publish_new_version(img)
    return sum(1 for i in range(n_containers) if (i % n_images) < max(1, n_images // 2))


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
                    rc, res, _, _ = run_update(binary, scope, workdir, 8)
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
    ap.add_argument("--per-strategy", type=int, default=20)
    ap.add_argument("--load-swaps", type=int, default=5, help="swaps under load per strategy")
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
        print("machine: %s, %d CPUs; refit: %s" % (os.uname().release, os.cpu_count(), binary))
        for conc in (8, 1):
            scope = "ub-%s-c%d" % (run_id, conc)
            conts = Containers(run_id, "refit-ub-%s-c%d" % (run_id, conc))
            try:
                stale = setup(factory, conts, reg, scope, args.containers, args.images)
                mark = reg.mark()
                rc, res, wall, rss = run_update(binary, scope, workdir, conc)
                pulls = reg.count(method="GET", path_re=r"^/v2/.+/manifests/sha256:", since=mark)
                updated = sum(1 for c in res if c["status"] == "updated")
                good = rc == 0 and updated == stale
                ok &= good
                print("update pass, concurrency %d: %d containers, %d stale -> %d updated in %.1f s; "
                      "%d pulls by digest; peak RSS %.1f MiB%s" %
                      (conc, args.containers, stale, updated, wall, pulls, rss / 1024.0, "" if good else "  <-- WRONG"))
            finally:
                conts.remove_all()
        for strategy in ("recreate", "blue-green", "alias"):
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
                rc, res, wall, rss = run_update(binary, scope, workdir, 8)
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
                           over[len(over) // 2], over[-1], "" if good else "  <-- WRONG"))
                else:
                    print("%-10s no swap measured (exit %d)  <-- WRONG" % (strategy, rc))
            finally:
                conts.remove_all()
        ok &= under_load(binary, factory, reg, run_id, workdir, args.load_swaps)
    finally:
        harness.sweep_run_objects(run_id)
        factory.cleanup()
        reg.stop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
