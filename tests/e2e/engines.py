"""The Docker engines the end-to-end suite runs against (E2E_ENGINE).

    E2E_ENGINE=20.10          Debian 12's dockerd 20.10 (API 1.41), the machine's engine on
                              /var/run/docker.sock (the default)
    E2E_ENGINE=26             Debian 13's dockerd 26.1.5 (API 1.45) with Debian 12's containerd
                              and runc: a private engine of the run (below)
    E2E_ENGINE=26-containerd  the same dockerd on the containerd image store (daemon.json
                              features.containerd-snapshotter) with Debian 13's containerd 1.7.24

Debian 13's packages come from debpkg.py (fetched and unpacked once under
build/debpkg/).  A private engine of the run has its own socket, data root,
exec root, pidfile and containerd under build/e2e-engine/<kind>/, a bridge of
its own and an address pool of its own (10.X.0.0/16, X free on this host),
and runs with --iptables=false, so it never touches the rules of the
machine's engine.  Its containers still reach each other: where br_netfilter
sends bridged traffic through FORWARD and another dockerd set that chain's
policy to DROP, a chain of the engine's own (REFIT-E2E-<tag>, jumped to from
the top of FORWARD) accepts traffic from the pool to the pool, and nothing
else; it goes when the engine stops.  Published ports go through
docker-proxy, so no NAT rule is needed either.
"""

import hashlib
import json
import os
import random
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("REFIT_BUILD_DIR") or os.path.join(REPO_ROOT, "build")

KINDS = ("20.10", "26", "26-containerd")
KIND = os.environ.get("E2E_ENGINE") or "20.10"
if KIND not in KINDS:
    raise SystemExit("E2E_ENGINE=%s: expected one of %s" % (KIND, ", ".join(KINDS)))

SHARED_SOCK = "/var/run/docker.sock"


class EngineError(RuntimeError):
    pass


class Kind:
    """How to run one engine kind: its dockerd, the PATH it finds containerd,
    runc, docker-proxy and docker-init on, and its daemon.json."""

    def __init__(self, name):
        self.name = name
        self.api = {"20.10": "1.41"}.get(name, "1.45")
        self.containerd_store = name == "26-containerd"
        self.path = []
        self.daemon_json = {}
        if name == "20.10":
            self.dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
            return
        import debpkg
        try:
            docker = debpkg.fetch("trixie", "docker.io")
            self.path = [os.path.join(docker, "usr", "sbin"), os.path.join(docker, "usr", "bin")]
            if self.containerd_store:
                containerd = debpkg.fetch("trixie", "containerd")
                self.path.insert(0, os.path.join(containerd, "usr", "bin"))
                self.daemon_json = {"features": {"containerd-snapshotter": True}}
        except debpkg.DebError as exc:
            raise EngineError("engine %s: Debian 13's packages cannot be fetched: %s" % (name, exc))
        self.dockerd = os.path.join(docker, "usr", "sbin", "dockerd")

    @property
    def private(self):
        """True when this kind runs as a private engine of the run, not the machine's."""
        return self.name != "20.10"

    def env(self):
        """The environment dockerd runs in."""
        e = dict(os.environ)
        e.pop("DOCKER_HOST", None)
        e["PATH"] = ":".join(self.path + [e.get("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin"])
        return e


_KINDS = {}


def kind_is_private(name=None):
    """True when the engine kind NAME (default: the run's) is a private engine of the run."""
    return (name or KIND) != "20.10"


def kind(name=None):
    """The Kind NAME (default: the run's, E2E_ENGINE), made once."""
    name = name or KIND
    if name not in _KINDS:
        _KINDS[name] = Kind(name)
    return _KINDS[name]


def run_root(name=None):
    """Where the run's private engine of kind NAME lives: build/e2e-engine/NAME, or a
    directory under /tmp named after it when the socket path would be too long."""
    name = name or KIND
    root = os.path.join(BUILD, "e2e-engine", name)
    if len(os.path.join(root, "docker.sock")) > 100:
        root = "/tmp/refit-e2e-engine-%s-%s" % (name, hashlib.sha256(root.encode()).hexdigest()[:8])
    return root


def run_socket(name=None):
    """The socket of the run's engine of kind NAME (default: E2E_ENGINE)."""
    name = name or KIND
    return SHARED_SOCK if name == "20.10" else os.path.join(run_root(name), "docker.sock")


def _sh(args, check=True):
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise EngineError("%s: %s" % (" ".join(args), (p.stderr or p.stdout).strip()[-500:]))
    return p


def _pool_free(x):
    """True when nothing on this host routes to or holds an address in 10.X.0.0/16."""
    out = _sh(["ip", "-4", "route", "show", "table", "all"], check=False).stdout
    out += _sh(["ip", "-4", "-o", "addr", "show"], check=False).stdout
    return (" 10.%d." % x) not in " " + out.replace("/", " ").replace("\n", " \n ")


def pick_pool(seed=None):
    """A second octet X in 20..99 whose 10.X.0.0/16 is free here (tests' own
    networks take 10.100-250.*): from SEED's hash first, else at random."""
    xs = list(range(20, 100))
    if seed is not None:
        start = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(xs)
        xs = xs[start:] + xs[:start]
    else:
        random.shuffle(xs)
    for x in xs:
        if _pool_free(x):
            return x
    raise EngineError("no free 10.X.0.0/16 address pool for a private engine")


class Network:
    """A private engine's bridge (made with `ip link`: never `--bridge none`,
    which deletes the host's docker0), its pool, and its FORWARD chain."""

    def __init__(self, tag, x):
        self.tag = tag
        self.x = x
        self.bridge = "rfe" + tag[:12]
        self.pool = "10.%d.0.0/16" % x
        self.chain = "REFIT-E2E-" + tag[:12]

    def prefix(self):
        """A random /24 prefix of the pool for a test's own network ("10.X.N")."""
        return "10.%d.%d" % (self.x, random.randint(1, 254))

    def up(self):
        if _sh(["ip", "link", "show", self.bridge], check=False).returncode != 0:
            made = subprocess.run("ip link add %s type bridge && ip addr add 10.%d.0.1/24 dev %s && "
                                  "ip link set %s up" % (self.bridge, self.x, self.bridge, self.bridge),
                                  shell=True, capture_output=True, text=True)
            if made.returncode != 0:
                _sh(["ip", "link", "del", self.bridge], check=False)
                raise EngineError("cannot make bridge %s: %s" % (self.bridge, made.stderr.strip()))
        if shutil.which("iptables") is None:
            return
        rule = ["-s", self.pool, "-d", self.pool, "-j", "ACCEPT"]
        if _sh(["iptables", "-w", "-n", "-L", self.chain], check=False).returncode != 0:
            _sh(["iptables", "-w", "-N", self.chain])
        if _sh(["iptables", "-w", "-C", self.chain] + rule, check=False).returncode != 0:
            _sh(["iptables", "-w", "-A", self.chain] + rule)
        if _sh(["iptables", "-w", "-C", "FORWARD", "-j", self.chain], check=False).returncode != 0:
            _sh(["iptables", "-w", "-I", "FORWARD", "1", "-j", self.chain])

    def down(self):
        if shutil.which("iptables"):
            while _sh(["iptables", "-w", "-D", "FORWARD", "-j", self.chain], check=False).returncode == 0:
                pass
            _sh(["iptables", "-w", "-F", self.chain], check=False)
            _sh(["iptables", "-w", "-X", self.chain], check=False)
        _sh(["ip", "link", "del", self.bridge], check=False)

    def dockerd_args(self):
        # No --default-address-pool (nor default-address-pools in daemon.json):
        # with pools set and live-restore off, every start after the first
        # clears the stale "bridge" network and calls removeDefaultBridgeInterface(),
        # which deletes the host's docker0 whatever --bridge names.  Tests'
        # networks give their subnets from the pool (prefix()) instead: a
        # network made without one (compose's default) gets one of dockerd's
        # default pools, which the machine's engine uses too, and traffic on
        # it goes astray (test_migrate.py's compose file gives its subnet).
        return ["--bridge", self.bridge, "--iptables=false", "--ip-masq=false", "--ip-forward=false"]

    def save(self, path):
        with open(path, "w") as f:
            json.dump({"tag": self.tag, "x": self.x}, f)

    @classmethod
    def load(cls, path):
        try:
            with open(path) as f:
                d = json.load(f)
            return cls(d["tag"], int(d["x"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def run_network(name=None):
    """The Network of the run's private engine of kind NAME while it runs, else None."""
    return Network.load(os.path.join(run_root(name), "network.json"))
