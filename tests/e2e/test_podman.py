"""refit against Podman's Docker-compatible API (podmanhost.py: Debian's podman
with netavark, `podman system service`, a store of the module's own).

The images are built by the run's Docker engine and pushed to the run's
plain registry; Podman pulls them from there, as a Podman host pulls from
any registry.  The containers are made with the podman CLI (labels, a
network alias, a named and an anonymous volume, --cpus, a device, ulimits,
an environment variable: what Podman's inspect reports in its own way), and
refit is pointed at Podman's socket by docker_host.  Checked: check,
update with every strategy (data kept, the alias answering the new
version), a failed gate rolled back, a manual rollback, and a kill at every
journaled step recovered by the next run.
"""

import json
import os
import subprocess
import time
import urllib.request
import uuid

import pytest

from harness import digest_only, wait_for
from podmanhost import Podman, Unavailable
from swaptools import STEPS

HTTP_PORT = 8080
SERVE = ("mkdir -p /www && cp /version /www/version && trap 'exit 0' TERM; "
         "httpd -f -p %d -h /www & wait $!" % HTTP_PORT)
CRASH = "REFIT_TEST_CRASH_AT"

# A run that tests refit on Podman elsewhere (CI's sanitizer suite: the
# normal suite does) names the reason here; every test is skipped with it.
ELSEWHERE = os.environ.get("E2E_PODMAN_ELSEWHERE")
if ELSEWHERE:
    pytestmark = pytest.mark.skip(reason="refit on Podman is tested elsewhere in this run: %s" % ELSEWHERE)
VOLS = ("/data", "/anon")


@pytest.fixture(scope="module")
def podman(run_id):
    try:
        pm = Podman(run_id)
    except Unavailable as exc:
        pytest.skip(str(exc))
    pm.start()
    try:
        yield pm
    finally:
        pm.stop()


@pytest.fixture(scope="module")
def pm_net(podman):
    name = "refit-e2e-net-%s" % podman.run_id
    podman.cli("network", "create", "--subnet", "10.%d.1.0/24" % podman.pool, name)
    return name


class Env:
    """One test's containers on Podman and its refit."""

    def __init__(self, podman, refit, registry, factory, scope, net, client):
        self.last_diag = ""
        self.pm = podman
        self.client = client
        self.refit = refit
        self.registry = registry
        self.factory = factory
        self.scope = scope
        self.net = net
        self.config = ("docker_host: %s\nstate_dir: %s\ninsecure_registries: [%s]\n"
                       "min_uptime: 1\nhealth_timeout: 20\nstop_timeout: 3\n"
                       % (podman.docker_host, refit.state_dir, registry.hostname(None)))

    def image(self, hint):
        return self.factory.make(self.registry, self.factory.unique_repo(hint))

    def new_version(self, image):
        return self.factory.publish_new_version(image)

    def run(self, image, name, strategy="recreate", extra_labels=None):
        labels = {"refit.enable": "true", "refit.scope": self.scope, "refit.strategy": strategy}
        labels.update(extra_labels or {})
        args = ["run", "-d", "--name", name, "--network", self.net, "--network-alias", name + "-svc",
                "-v", "%s-data:/data" % name, "-v", "/anon", "--cpus", "0.5",
                "--device", "/dev/null:/dev/refit-null", "--ulimit", "nofile=2048:4096",
                "--ulimit", "nproc=4096:4096", "-e", "KEEP=kept"]
        for k, v in labels.items():
            args += ["--label", "%s=%s" % (k, v)]
        self.pm.cli(*args, image.ref, "/bin/sh", "-c", SERVE)
        return name

    def refit_run(self, *args, env=None):
        return self.refit.run(*args, config=self.config, env=env, timeout=120)

    def check(self):
        res = self.refit.run("check", "--json", "--scope", self.scope, config=self.config, timeout=120)
        assert res.rc in (0, 1), res.describe()
        return {c["name"]: c for c in json.loads(res.stdout)["containers"]}, res

    def update(self, *names, env=None):
        return self.refit_run("update", "--scope", self.scope, *names, env=env)

    def ip(self, name):
        ins = self.pm.inspect(name)
        for net in (ins["NetworkSettings"].get("Networks") or {}).values():
            if net.get("IPAddress"):
                return net["IPAddress"]
        raise AssertionError("%s has no address: %r" % (name, ins["NetworkSettings"]))

    def serving(self, name):
        """What NAME's httpd answers for /version, from the host to its address."""
        got = [None]

        def probe():
            try:
                with urllib.request.urlopen("http://%s:%d/version" % (self.ip(name), HTTP_PORT), timeout=2) as r:
                    got[0] = r.read().decode().strip()
                return r.status == 200
            except (OSError, AssertionError):
                return False
        wait_for(probe, 20, 0.2, "%s to answer HTTP" % name)
        return got[0]

    def by_alias(self, name, check=True):
        """What the network alias NAME-svc answers, asked from the client container on the network."""
        out = self.pm.cli("exec", self.client, "/bin/sh", "-c",
                          "printf 'GET /version HTTP/1.0\\r\\n\\r\\n' | nc -w 3 %s-svc %d" % (name, HTTP_PORT),
                          check=check)
        return out.strip().splitlines()[-1] if out.strip() else ""

    def by_alias_settled(self, name, want, timeout=15):
        """by_alias asked until it answers WANT: aardvark-dns drops a removed
        container's address when it reloads, a moment after the engine's
        answer (docs/engines.md); None when it never did within TIMEOUT."""
        deadline = time.monotonic() + timeout
        got = ""
        while time.monotonic() < deadline:
            got = self.by_alias(name, check=False)
            if got == want:
                return want
            time.sleep(0.2)
        # what the name resolves to, beside the containers' addresses, for the failure's message
        look = subprocess.run(["podman", "exec", self.client, "nslookup", "%s-svc" % name], env=self.pm.env(),
                              capture_output=True, text=True, timeout=30)
        self.last_diag = "last answer %r; nslookup %s-svc: %s%s; containers: %s" % (
            got, name, look.stdout.strip(), look.stderr.strip(),
            self.pm.cli("ps", "-a", "--format", "{{.Names}} {{.Networks}} {{.Status}}", check=False).strip())
        return None

    def write_data(self, name):
        texts = {p: "%s %s" % (p, uuid.uuid4().hex[:8]) for p in VOLS}
        self.pm.cli("exec", name, "/bin/sh", "-c", " && ".join("echo '%s' > %s/f" % (t, p) for p, t in texts.items()))
        return texts

    def read_data(self, name):
        return {p: self.pm.cli("exec", name, "cat", "%s/f" % p).strip() for p in VOLS}

    def leftovers(self, name):
        return [n for n in self.pm.names() if n.startswith(name + "-refit-")]

    def pending_ops(self):
        d = os.path.join(self.refit.state_dir, "ops")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


@pytest.fixture(scope="module")
def pm_client(podman, pm_net, plain_registry, image_factory):
    """A container on the network that asks the others by their aliases (podman exec:
    a `podman run` of a container that exits waits for conmon here, 20 s)."""
    img = image_factory.make(plain_registry, image_factory.unique_repo("pm-client"))
    name = "refit-e2e-client-%s" % podman.run_id
    podman.cli("run", "-d", "--name", name, "--network", pm_net, img.ref, "/bin/sh", "-c",
               "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done")
    return name


@pytest.fixture
def pm(podman, pm_net, pm_client, refit, plain_registry, image_factory, scope):
    e = Env(podman, refit, plain_registry, image_factory, scope, pm_net, pm_client)
    yield e
    for n in podman.names():
        if n.startswith(scope[:20]):
            podman.cli("rm", "-f", "-v", "-t", "0", n, check=False)


def cname(pm, hint):
    return "%s-%s" % (pm.scope[:20], hint)


def assert_kept(pm, name, data, alias):
    """Data, the alias, the settings Podman reports in its own way, and a fresh HOSTNAME."""
    assert pm.read_data(name) == data
    ins = pm.pm.inspect(name)
    hc = ins["HostConfig"]
    assert hc["NanoCpus"] == 500000000, hc
    limits = {u["Name"].lower().replace("rlimit_", ""): (u["Soft"], u["Hard"]) for u in hc["Ulimits"]}
    assert limits.get("nofile") == (2048, 4096), hc["Ulimits"]
    assert [d["PathInContainer"] for d in hc["Devices"]] == ["/dev/refit-null"], hc["Devices"]
    env = ins["Config"]["Env"]
    assert "KEEP=kept" in env, env
    hostname = pm.pm.cli("exec", name, "hostname").strip()
    assert pm.pm.cli("exec", name, "/bin/sh", "-c", "echo $HOSTNAME").strip() == hostname, env
    aliases = ins["NetworkSettings"]["Networks"][pm.net].get("Aliases") or []
    assert alias + "-svc" in aliases, aliases


def test_check_update_check(pm):
    img = pm.image("pm-check")
    name = pm.run(img, cname(pm, "check"))
    got, res = pm.check()
    assert got[name]["status"] == "up-to-date", res.describe()
    v2 = pm.new_version(img)
    # the host pulls the tag first: Podman then keeps no RepoDigests for the
    # image the container runs; its digest still comes from the image list
    pm.pm.cli("pull", "-q", img.ref)
    got, res = pm.check()
    assert got[name]["status"] == "update-available", res.describe()
    assert digest_only(got[name].get("current_digest")) == img.digest, got[name]
    assert digest_only(got[name].get("latest_digest")) == v2.digest, got[name]
    res = pm.update()
    assert res.rc == 0, res.describe()
    got, res = pm.check()
    assert got[name]["status"] == "up-to-date", res.describe()
    assert digest_only(got[name].get("current_digest")) == v2.digest, got[name]


@pytest.mark.parametrize("strategy", ["recreate", "blue-green", "alias"])
def test_update_every_strategy(pm, strategy):
    img = pm.image("pm-" + strategy)
    name = cname(pm, strategy[:5])
    target = name + "-v2" if strategy == "alias" else name
    pm.run(img, name, strategy, {"refit.rename-to": target} if strategy == "alias" else None)
    before = pm.serving(name)
    assert pm.by_alias(name) == before
    data = pm.write_data(name)
    pm.new_version(img)
    res = pm.update()
    assert res.rc == 0, res.describe()
    after = pm.serving(target)
    assert after != before, (before, after)
    assert pm.by_alias_settled(name, after) == after, pm.last_diag
    assert pm.leftovers(name) == [] and pm.pending_ops() == [], (pm.pm.names(), res.describe())
    if strategy == "alias":
        assert pm.pm.inspect(name) is None, pm.pm.names()
    assert_kept(pm, target, data, name)


def test_failed_gate_rolls_back(pm):
    img = pm.image("pm-gate")
    name = pm.run(img, cname(pm, "gate"), extra_labels={"refit.health": "http://:%d/nothing" % HTTP_PORT,
                                                        "refit.health-timeout": "3"})
    before = pm.serving(name)
    data = pm.write_data(name)
    old_id = pm.pm.inspect(name)["Id"]
    pm.new_version(img)
    res = pm.update()
    assert res.rc == 1 and "rolled-back" in res.stdout, res.describe()
    assert pm.pm.inspect(name)["Id"] == old_id
    assert pm.serving(name) == before
    assert pm.read_data(name) == data
    assert pm.leftovers(name) == [] and pm.pending_ops() == []


def test_manual_rollback(pm):
    img = pm.image("pm-rollback")
    name = pm.run(img, cname(pm, "rollback"))
    before = pm.serving(name)
    data = pm.write_data(name)
    pm.new_version(img)
    assert pm.update().rc == 0
    assert pm.serving(name) != before
    res = pm.refit_run("rollback", "--scope", pm.scope, name)
    assert res.rc == 0, res.describe()
    assert pm.serving(name) == before
    assert_kept(pm, name, data, name)


CASES = [(s, step) for s in ("recreate", "blue-green", "alias") for step in STEPS[s]]


@pytest.mark.parametrize("strategy,step", CASES, ids=["%s@%s" % c for c in CASES])
def test_killed_at_every_step(pm, strategy, step):
    img = pm.image("pm-crash")
    name = cname(pm, "k")
    target = name + "-v2" if strategy == "alias" else name
    pm.run(img, name, strategy, {"refit.rename-to": target} if strategy == "alias" else None)
    before = pm.serving(name)
    data = pm.write_data(name)
    pm.new_version(img)
    res = pm.update(env={CRASH: step})
    assert res.rc == -9, "refit was not killed at %s\n%s" % (step, res.describe())
    assert len(pm.pending_ops()) == 1, pm.pending_ops()
    res = pm.update()
    assert res.rc == 0, res.describe()
    assert pm.pending_ops() == [], pm.pending_ops()
    assert pm.leftovers(name) == [] and pm.leftovers(target) == [], pm.pm.names()
    ins = pm.pm.inspect(target)
    assert ins and ins["State"]["Running"], pm.pm.names()
    if strategy == "alias":
        assert pm.pm.inspect(name) is None, pm.pm.names()
    assert pm.serving(target) != before
    assert_kept(pm, target, data, name)
