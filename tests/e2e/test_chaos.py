"""Random SIGKILLs during real passes (docs/chaos.md).

A small fleet: containers over three images and every strategy (recreate,
blue-green, alias), each with a named and an anonymous volume holding data,
on a user network with aliases, a "vpn" provider with a consumer on its
network namespace (network_mode: container:), and one container that is
migrated to a new name again and again.  Each round pushes new versions,
starts something and SIGKILLs it at a random moment: `refit update` (the
CLI), the daemon's scheduled pass (from its start: its recovery included),
`refit rollback` or `refit migrate`.  The journal's pending records are read
at the moment of the kill (which step each kill hit).  Most rounds then run
`refit update` to recover and check that every container exists exactly
once and runs; the others leave the recovery to the next round's run.  At
the end a last version is pushed and one clean pass runs: every container
is on the newest version of its image, its data are what was written, the
consumer is on the provider's namespace, and nothing of the run is left.

The seed is printed (and chosen at random unless REFIT_CHAOS_SEED gives it);
REFIT_CHAOS_KILLS sets the number of kills (default 4, a few minutes).  The
table of journal steps hit is printed at the end (pytest -s shows it)."""

import collections
import json
import os
import random
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from daemontools import Daemon
from swaptools import (GOOD, config_text, exec_out, inspect, leftovers, list_containers,
                       pending_ops, run_refit, serving)
from swaptools import swap_images, swapenv  # noqa: F401 (fixtures)
from swaptools import OWNER_LABEL

KILLS = int(os.environ.get("REFIT_CHAOS_KILLS", "4"))
SEED = int(os.environ.get("REFIT_CHAOS_SEED") or random.SystemRandom().randrange(1 << 31))
BLOB = 48 * 1024          # bytes of data per volume
VOLS = ("/data", "/anon")  # the named volume, the anonymous one
CONSUMER_PORT = 8081


class Fleet:
    """The logical containers: each has the names it may be found under
    (the alias strategy and a rollback move a container between two names,
    a migration to a new one) and the repository its image comes from."""

    def __init__(self):
        self.items = {}     # key -> {"names": [...], "repo": key, "data": {path: sha}}

    def add(self, key, names, repo):
        self.items[key] = {"names": list(names), "repo": repo, "data": {}}

    def current(self, key):
        """The one name the container is under now; fails unless exactly one exists."""
        found = [n for n in self.items[key]["names"] if inspect(n)]
        assert len(found) == 1, "%s: containers %r of %r" % (key, found, self.items[key]["names"])
        return found[0]


def sha_and_size(name, path):
    out = exec_out(name, "sha256sum %s/blob 2>/dev/null; wc -c < %s/blob 2>/dev/null" % (path, path),
                   check=False).split()
    return (out[0], int(out[2])) if len(out) >= 3 else (None, 0)


def journal_steps(state_dir):
    """(kind, step) of every pending journal record (the journal at the kill)."""
    d = os.path.join(state_dir, "ops")
    steps = []
    for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        try:
            with open(os.path.join(d, f)) as fh:
                rec = json.load(fh)
            steps.append((rec.get("kind") or "?", rec.get("step") or "(begun)"))
        except (OSError, ValueError):
            steps.append(("?", "(unreadable)"))
    return steps


def kill_after(proc, delay):
    """SIGKILL PROC (our own child) DELAY seconds from now, unless it ended; True when it was killed."""
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        return True


def test_random_kills_lose_nothing(refit, refit_bin, swapenv, swap_images, plain_registry, tmp_path):
    rnd = random.Random(SEED)
    print("\nchaos: seed %d (REFIT_CHAOS_SEED=%d to replay), %d kills" % (SEED, SEED, KILLS))
    scope = swapenv.scope
    cfg = config_text(refit, "concurrency: 3\n")
    version = {}

    # three images, each with a version counter: /version says "<repo> v<N>"
    imgs = {}

    def first(repo):
        return swap_images.make(plain_registry, repo=swap_images.unique_repo("chaos-" + repo),
                                version="%s v1" % repo, **GOOD)
    with ThreadPoolExecutor(max_workers=3) as ex:
        for repo, img in zip("abc", ex.map(first, "abc")):
            imgs[repo] = img
            version[repo] = 1

    def push_new(repos):
        def one(repo):
            version[repo] += 1
            swap_images.build(imgs[repo].ref, "%s v%d" % (repo, version[repo]), **GOOD)
            swap_images.factory.push(imgs[repo].ref, config_dir=plain_registry.push_config)
        with ThreadPoolExecutor(max_workers=3) as ex:
            list(ex.map(one, repos))

    net, _ = swapenv.network("chaos")
    fleet = Fleet()
    specs = [("rec1", "recreate", "a"), ("rec2", "recreate", "b"), ("bg1", "blue-green", "a"),
             ("bg2", "blue-green", "c"), ("al", "alias", "b"), ("mig", "blue-green", "c"),
             ("vpn", "recreate", "a")]
    for i, (key, strategy, repo) in enumerate(specs):
        name = swapenv.name("chaos-" + key)
        labels = swapenv.managed({"refit.strategy": strategy})
        names = [name]
        if strategy == "alias":
            labels["refit.rename-to"] = name + "-new"
            names.append(name + "-new")
        vol = swapenv.volume(key)
        extra = ["--network", net, "--network-alias", "svc-%s" % key, "-v", "%s:/data" % vol,
                 "-v", "/anon"]
        if key == "vpn":
            extra += ["--network-alias", "vpn"]
        swapenv.run(imgs[repo], labels, name=name, extra=extra)
        if key == "mig":
            names += ["%s-m%d" % (name, k) for k in range(1, KILLS + 2)]
        fleet.add(key, names, repo)
    # the consumer: on the provider's network namespace, its own httpd on 8081
    cname = swapenv.name("chaos-consumer")
    swapenv.run(imgs["c"], swapenv.managed(), name=cname,
                extra=["--network", "container:" + fleet.current("vpn")],
                cmd=["/bin/sh", "-c", "trap 'exit 0' TERM; httpd -f -p %d -h /www & wait $!" % CONSUMER_PORT])
    fleet.add("consumer", [cname], "c")
    for key, it in fleet.items.items():
        if key == "consumer":
            continue
        name = fleet.current(key)
        exec_out(name, " && ".join("head -c %d /dev/urandom > %s/blob" % (BLOB, p) for p in VOLS))
        it["data"] = {p: sha_and_size(name, p) for p in VOLS}
        it["anon"] = [m["Name"] for m in inspect(name)["Mounts"] if m["Destination"] == "/anon"]

    def check_whole(when, res):
        """Every container once, running; no copy of refit's left; the journal empty."""
        why = "%s\n%s" % (when, res.describe())
        for key in fleet.items:
            name = fleet.current(key)
            st = inspect(name)["State"]
            assert st["Running"], "%s (%s): %s is not running: %r" % (why, key, name, st)
            assert leftovers(name) == [], "%s: copies of %s left: %r" % (why, name, leftovers(name))
        left = {f: journal_steps(refit.state_dir) for f in pending_ops(refit)}
        assert not left, "%s: the journal holds %r" % (why, left)

    def update_run(env=None):
        return run_refit(refit, "update", "--json", "--scope", scope, config=cfg, env=env, timeout=300)

    # one clean pass to learn how long a pass of every container takes
    push_new("abc")
    t0 = time.monotonic()
    res = update_run()
    span = time.monotonic() - t0
    assert res.rc == 0, res.describe()
    check_whole("first pass", res)
    print("chaos: a pass of %d containers takes %.1f s" % (len(fleet.items), span))

    def popen(*args):
        refit.write_config(cfg)
        cmd = [refit.binary, args[0], "--config", refit.config_path, "--state-dir", refit.state_dir] + \
            list(args[1:])
        e = refit.base_env()
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=e,
                                cwd=refit.dir)

    steps = collections.Counter()
    kinds = collections.Counter()
    rows = []
    d = Daemon(refit_bin, os.path.join(str(tmp_path), "daemon"), scope=scope, schedule=None,
               config_extra="concurrency: 3\npoll_interval: 3600\n")
    d.state_dir = refit.state_dir          # one journal for the CLI and the daemon
    kills = 0
    while kills < KILLS:
        what = rnd.choice(["update", "update", "daemon", "daemon", "rollback", "migrate"])
        if what != "rollback":
            push_new(rnd.choice("abc"))     # a third of the fleet is stale
        delay = rnd.uniform(0.05, min(span * 0.5, 12.0))
        if what in ("rollback", "migrate") and pending_ops(refit):
            # mid-swap two copies may exist: the names to act on are known once it is whole
            res = update_run()
            assert res.rc in (0, 1), res.describe()
            check_whole("recovered before a %s round" % what, res)
        if what == "update":
            proc = popen("update", "--scope", scope)
        elif what == "daemon":
            proc = d.launch()
        elif what == "rollback":
            keys = rnd.sample([k for k in fleet.items if k != "consumer"], 2)
            proc = popen("rollback", "--scope", scope, *[fleet.current(k) for k in keys])
        else:
            src = fleet.current("mig")
            names = fleet.items["mig"]["names"]
            dst = names[names.index(src) + 1]
            plan = os.path.join(str(tmp_path), "plan-%d.yml" % kills)
            with open(plan, "w") as f:
                f.write("migrations:\n  - from: %s\n    to: %s\n" % (src, dst))
            proc = popen("migrate", "--scope", scope, plan)
        killed = kill_after(proc, delay)
        if what == "daemon":
            d._err.close()
        at = journal_steps(refit.state_dir) if killed else []
        if not killed:
            rows.append((what, "%.2f" % delay, "(ended before the kill)"))
            continue
        kills += 1
        kinds[what] += 1
        for k, s in at or [("-", "(no swap in progress)")]:
            steps["%s %s" % (k, s) if k != "-" else s] += 1
        rows.append((what, "%.2f" % delay, ", ".join("%s %s" % ks for ks in at) or "(no swap in progress)"))
        if rnd.random() < 0.35:       # else the next round's run recovers first
            res = update_run()
            assert res.rc in (0, 1), res.describe()
            check_whole("after kill %d (%s at %.2f s, journal %r)" % (kills, what, delay, at), res)

    # the end: a last version of every image, one clean pass
    push_new("abc")
    res = update_run()
    assert res.rc == 0, res.describe()
    if any(c.get("status") != "updated" and c.get("status") != "up-to-date"
           for c in json.loads(res.stdout)["containers"]):
        res = update_run()          # a hold from a rollback round lifts with the new digest
    check_whole("the end", res)

    missing = duplicated = stopped = lost = 0
    for key, it in fleet.items.items():
        found = [n for n in it["names"] if inspect(n)]
        missing += not found
        duplicated += max(0, len(found) - 1)
        if not found:
            continue
        ins = inspect(found[0])
        stopped += not ins["State"]["Running"]
        if key == "consumer":
            continue
        assert serving(found[0]) == "%s v%d" % (it["repo"], version[it["repo"]]), key
        for p in VOLS:
            sha, size = sha_and_size(found[0], p)
            if sha != it["data"][p][0]:
                lost += it["data"][p][1]
        assert [m["Name"] for m in ins["Mounts"] if m["Destination"] == "/anon"] == it["anon"], key
    # the consumer: newest version, on the provider's namespace
    cons = inspect(fleet.current("consumer"))
    vpn = inspect(fleet.current("vpn"))
    assert cons["HostConfig"]["NetworkMode"] in ("container:" + vpn["Id"], "container:" + vpn["Name"].lstrip("/")), \
        (cons["HostConfig"]["NetworkMode"], vpn["Id"])
    assert exec_out(fleet.current("consumer"), "cat /version").strip() == "c v%d" % version["c"]
    # nothing of the run left: the fleet's containers only
    mine = sorted(n for _, n in list_containers(label=["%s=%s" % (OWNER_LABEL, scope)]))
    assert mine == sorted(fleet.current(k) for k in fleet.items), mine

    print("chaos: seed %d, %d kills (%s)" % (SEED, kills, ", ".join("%s %d" % kv for kv in sorted(kinds.items()))))
    print("chaos: missing %d, duplicated %d, stopped %d, volume bytes lost %d" % (missing, duplicated, stopped, lost))
    print("chaos: kills per journal step (kind step)")
    for s, n in sorted(steps.items(), key=lambda kv: (-kv[1], kv[0])):
        print("  %-32s %3d" % (s, n))
    print("chaos: rounds (what, seconds to the kill, journal at the kill)")
    for r in rows:
        print("  %-9s %6s  %s" % r)
    with open(os.path.join(str(tmp_path), "chaos-table.txt"), "w") as f:
        json.dump({"seed": SEED, "kills": kills, "kinds": kinds, "steps": steps, "rows": rows,
                   "missing": missing, "duplicated": duplicated, "stopped": stopped, "lost": lost}, f)
    assert (missing, duplicated, stopped, lost) == (0, 0, 0, 0)
