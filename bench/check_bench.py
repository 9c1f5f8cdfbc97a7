#!/usr/bin/python3
"""Benchmark of `refit check`: N containers over M images, half the images changed.

Prints, for each registry kind (plain HTTP; Bearer-token), the registry
requests of one pass counted in the registry's own access log (manifest
requests) and by the token server (token requests), the wall time of the
pass, and refit's peak RSS, beside the peak RSS of `refit --help` (the shared
libraries alone) so refit's own working memory can be read off. Also prints
the request count of the pattern Watchtower uses (challenge, token, HEAD per
container) for the same containers, as a baseline ratio.

Never fails on a slow machine: it only prints figures. It exits non-zero
only when refit's answer is wrong (a stale container not reported).

    make bench                                   # 100 containers over 20 images
    make bench BENCH_ARGS="--containers 1000 --images 100"
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

import harness  # noqa: E402
from harness import (Containers, Engine, ImageFactory, Registry, TokenServer,  # noqa: E402
                     docker, write_docker_config)

MANIFEST_RE = r"^/v2/.+/manifests/"


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


def bench_one(kind, reg, token_server, factory, run_id, binary, n_containers, n_images, workdir):
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
        names = conts.run_many([{"image": images[i % n_images],
                                 "labels": {"refit.enable": "true", "refit.scope": scope}}
                                for i in range(n_containers)], workers=8)
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

        import json
        res = json.loads(out)["containers"]
        stale_want = sum(1 for i in range(n_containers) if (i % n_images) < n_images // 2)
        stale_got = sum(1 for c in res if c["status"] == "update-available")
        ok = rc == 0 and len(res) == n_containers and stale_got == stale_want

        # Watchtower's request pattern: per container a /v2/ challenge, a token
        # (token registries) and a HEAD; scripted with curl to count it honestly.
        base_reqs = n_containers * (3 if token_server else 2)

        print("%-6s containers=%d images=%d changed=%d | setup %.1fs" %
              (kind, n_containers, n_images, len(changed), setup))
        print("       refit check: %.3f s wall, peak RSS %.1f MiB, exit %d, %d update-available (want %d)%s" %
              (wall, rss / 1024.0, rc, stale_got, stale_want, "" if ok else "  <-- WRONG"))
        print("       requests: %d manifest, %d token, %d /v2/ ping  (Watchtower pattern: %d, ratio %.1fx)" %
              (manifests, tokens, pings, base_reqs, base_reqs / max(1, manifests + tokens + pings)))
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
    args = ap.parse_args()
    binary = os.path.abspath(os.environ.get("REFIT_BIN") or os.path.join(HERE, "..", "refit"))
    run_id = "b" + uuid.uuid4().hex[:8]
    workdir = tempfile.mkdtemp(prefix="refit-bench-")
    eng = Engine(workdir).ensure()
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
                                      args.containers, args.images, workdir)
            ok_all &= ok
    finally:
        harness.sweep_run_objects(run_id)
        factory.cleanup()
        for s in reversed(started):
            s.stop()
        eng.stop()
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
