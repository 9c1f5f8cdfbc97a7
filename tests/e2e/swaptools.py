"""Helpers shared by the swap tests (test_update.py, test_update_failures.py,
test_crash_recovery.py, test_rollback.py): images with a chosen command,
entrypoint and HEALTHCHECK, per-test networks / volumes / bind dirs, and
runners and checks for `refit update`, `rollback` and `history`.

Conventions are the harness's: every image, container, network and volume
made here carries ``refit-test.run=<run id>`` and is removed at teardown
(containers, networks, volumes after each test; images, by their exact tags
and then by ID when they carry this run's label, at the end of the session).
Containers also carry ``refit-swaptest.owner=<scope>``, which refit copies to
the replacements it creates, so teardown also finds the ones refit made
(temporary ``NAME-refit-old-...`` / ``NAME-refit-new-...`` copies included).

Fixtures are defined here and imported by the test modules:
``swap_images`` (one SwapImages per session), ``common_pairs`` (the (v1, v2)
image pairs of COMMON_PAIRS, built once, in parallel) and ``swapenv`` (per
test).  refit is run by run_refit(), which reads its output as bytes (refit
printing freed memory must not crash the test), fails on any ASan / UBSan
report, and sets ASAN_OPTIONS=detect_stack_use_after_return=1 unless the
environment sets ASAN_OPTIONS.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import traceback
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import (DOCKER_SOCK, RUN_LABEL, Engine, HarnessError, Image, Refit, digest_only, docker,
                     docker_inspect, remove_containers, wait_for)

OWNER_LABEL = "refit-swaptest.owner"

# The default command: idles, exits at once on SIGTERM (PID 1 in a container
# ignores signals it does not handle; `wait` lets the trap run immediately).
LOOP_CMD = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"]
# busybox httpd serving /www (a copy of /version as /www/version) on 8080.
HTTPD_CMD = ["/bin/sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait $!"]
HTTP_PORT = 8080

# Fast swaps: min_uptime 1 s, a 20 s health timeout, 3 s to stop.
FAST_CONFIG = "min_uptime: 1\nhealth_timeout: 20\nstop_timeout: 3\n"

# The crash hook's steps, per strategy, and the first step past the health gate.
STEPS = {
    "recreate": ["creating", "stopping", "renaming", "starting", "health", "removing-old"],
    "blue-green": ["creating", "starting", "health", "joining", "cutover"],
    "alias": ["creating", "starting", "health", "joining", "cutover"],
}
PAST_GATE = {"removing-old", "cutover"}


# --------------------------------------------------------------------------
# images

def make_exiting(factory, registry, repo, tag):
    """An image (FROM the factory's base) whose command exits at once."""
    ref = registry.ref(repo, tag)
    ctx = os.path.join(factory.dir, "ctx-exiting-%s" % uuid.uuid4().hex[:8])
    os.makedirs(ctx)
    with open(os.path.join(ctx, "version"), "w") as f:
        f.write("exiting %s\n" % uuid.uuid4().hex)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM %s\nCMD %s\nCOPY version /version\n"
                % (factory.base(), json.dumps(["/bin/sh", "-c", "echo bye; exit 3"])))
    try:
        image_id = factory._docker_build(ctx, ref)
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    return Image(registry, repo, tag, image_id, factory.push(ref, config_dir=registry.push_config))


def stale_pair(factory, registry, v1, v2, hint, repo=None, tag="latest"):
    """(v1, v2) of a new repository named after HINT (or REPO:TAG) without a
    build: v1's and then v2's image pushed under REPO:TAG, the host's tag put
    back on v1 (a host that has not pulled yet)."""
    repo = repo or factory.unique_repo(hint)
    ref = registry.ref(repo, tag)
    with factory.lock:
        factory.tags.append(ref)
    docker("tag", v1.id, ref)
    d1 = factory.push(ref, config_dir=registry.push_config)
    docker("tag", v2.id, ref)
    d2 = factory.push(ref, config_dir=registry.push_config)
    docker("tag", v1.id, ref)
    assert d1 != d2
    return Image(registry, repo, tag, v1.id, d1), Image(registry, repo, tag, v2.id, d2)


class SwapImages:
    """FROM-scratch busybox images with a chosen CMD / ENTRYPOINT /
    HEALTHCHECK.  One local base image holds busybox and its applets (as
    symlinks: no RUN step); every image is FROM it with its own /version
    (also /www/version) and a nonce, so builds and pushes are small.

    One instance per session (see the swap_images fixture): pairs() caches
    (v1, v2) by key, so modules share them; a test that uses a pair first
    puts the host back on v1 (back_to)."""

    def __init__(self, factory, run_id, workdir, workers=4):
        self.factory = factory
        self.run_id = run_id
        self.dir = os.path.join(workdir, "swap-images-%s" % uuid.uuid4().hex[:8])
        self.lock = threading.Lock()
        self.base_lock = threading.Lock()
        self.counter = 0
        self.tags = []
        self.ids = set()
        self.cache = {}
        self.base_id = None
        self.workers = workers
        os.makedirs(self.dir)

    def _next(self):
        with self.lock:
            self.counter += 1
            return self.counter

    def unique_repo(self, hint):
        return self.factory.unique_repo("swap-" + hint)

    def _docker_build(self, ref, ctx, label=False):
        """docker build; with label the run label is set (the base only:
        the images FROM it inherit it)."""
        with self.lock:
            self.tags.append(ref)
        args = ["--label", "%s=%s" % (RUN_LABEL, self.run_id)] if label else []
        out = docker("build", "-q", *args, "-t", ref, ctx, timeout=180)
        image_id = out.strip().splitlines()[-1].strip()
        with self.lock:
            self.ids.add(image_id)
        shutil.rmtree(ctx, ignore_errors=True)
        return image_id

    def base(self):
        """The local base image (busybox, applets, /www, /tmp); its ID."""
        with self.base_lock:
            if self.base_id:
                return self.base_id
            ctx = os.path.join(self.dir, "ctx-base")
            root = os.path.join(ctx, "rootfs")
            for d in ("bin", "www", "tmp"):
                os.makedirs(os.path.join(root, d))
            shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
            for a in os.popen("/bin/busybox --list").read().split():
                if a != "busybox":
                    os.symlink("busybox", os.path.join(root, "bin", a))
            with open(os.path.join(ctx, "Dockerfile"), "w") as f:
                f.write("FROM scratch\nCOPY rootfs/ /\n")
            self.base_ref = "refit-swaptest-base-%s:latest" % self.run_id
            self.base_id = self._docker_build(self.base_ref, ctx, label=True)
            return self.base_id

    def build(self, ref, version, cmd=None, entrypoint=None, healthcheck=None,
              volumes=(), env=None):
        """docker build -t REF; returns the image ID.  version: text of
        /version (and /www/version).  healthcheck: None, True (passes),
        False (always fails) or a command."""
        self.base()
        n = self._next()
        ctx = os.path.join(self.dir, "ctx-%d" % n)
        files = os.path.join(ctx, "files")
        os.makedirs(os.path.join(files, "www"))
        for path in ("version", "www/version"):
            with open(os.path.join(files, path), "w") as f:
                f.write("%s\n" % version)
        with open(os.path.join(files, "nonce"), "w") as f:
            f.write("%s %d %s\n" % (self.run_id, n, uuid.uuid4().hex))
        # settings first, then one COPY: after the first build of a kind the
        # settings' steps come from the build cache, so a version costs one step
        lines = ["FROM %s" % self.base_ref]
        for k, v in (env or {}).items():
            lines.append("ENV %s=%s" % (k, json.dumps(v)))
        for v in volumes:
            lines.append("VOLUME %s" % json.dumps([v]))
        if healthcheck is not None:
            check = {True: "test -f /version", False: "false"}.get(healthcheck, healthcheck)
            lines.append("HEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD %s" % check)
        if entrypoint is not None:
            lines.append("ENTRYPOINT %s" % json.dumps(entrypoint))
        lines.append("CMD %s" % json.dumps(cmd or LOOP_CMD))
        lines.append("COPY files/ /")
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("\n".join(lines) + "\n")
        return self._docker_build(ref, ctx)

    def make(self, registry, repo=None, tag="latest", version="v1", **kw):
        """Build and push REGISTRY/REPO:TAG; returns a harness Image."""
        repo = repo or self.unique_repo("img")
        ref = registry.ref(repo, tag)
        image_id = self.build(ref, version, **kw)
        digest = self.factory.push(ref, config_dir=registry.push_config)
        return Image(registry, repo, tag, image_id, digest)

    def publish(self, image, version="v2", keep_local=False, **kw):
        """New content under IMAGE's repo:tag, pushed; the host's tag is put
        back on IMAGE and the new image removed locally (a host that has not
        pulled yet) unless keep_local.  Returns the new Image."""
        ref = image.ref
        new_id = self.build(ref, version, **kw)
        digest = self.factory.push(ref, config_dir=image.registry.push_config)
        assert digest != image.digest
        docker("tag", image.id, ref)
        if not keep_local:
            docker("rmi", new_id)
        return Image(image.registry, image.repo, image.tag, new_id, digest)

    def make_pair(self, registry, hint, old=None, new=None):
        """(v1, v2) of a new repository: v1 local, v2 only in the registry;
        /version says '<hint> v1' / '<hint> v2'."""
        v1 = self.make(registry, repo=self.unique_repo(hint), version="%s v1" % hint,
                       **(old or {}))
        v2 = self.publish(v1, version="%s v2" % hint, **(new or {}))
        return v1, v2

    def pairs(self, registry, specs):
        """{key: (hint, old_kwargs, new_kwargs)} -> {key: (v1, v2)}; built in
        parallel, and only once per session per key (and registry)."""
        todo = {k: v for k, v in specs.items() if (registry.host, k) not in self.cache}
        if todo:
            self.base()
            with ThreadPoolExecutor(max_workers=self.workers) as ex:
                futs = {k: ex.submit(self.make_pair, registry, h, o, n)
                        for k, (h, o, n) in todo.items()}
                for k, f in futs.items():
                    self.cache[(registry.host, k)] = f.result()
        return {k: self.cache[(registry.host, k)] for k in specs}

    @staticmethod
    def back_to(image):
        """Point IMAGE's tag at IMAGE again on this host (after an update
        pulled and tagged the newer one)."""
        docker("tag", image.id, image.ref)

    def cleanup(self):
        tags = sorted(set(self.tags))
        if tags:
            docker("rmi", *tags, check=False, timeout=120)
        out = docker("images", "-q", "--no-trunc", "--filter",
                     "label=%s=%s" % (RUN_LABEL, self.run_id), check=False)
        mine = {i.split(":")[-1] for i in self.ids}
        victims = [i for i in out.split() if i.split(":")[-1] in mine]
        # the derived images before the base
        base = (self.base_id or "").split(":")[-1]
        victims.sort(key=lambda i: i.split(":")[-1] == base)
        for i in range(0, len(victims), 50):
            docker("rmi", "-f", *victims[i:i + 50], check=False, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)


# Images every swap test may use: the same pairs, built once per session.
GOOD = dict(cmd=HTTPD_CMD, volumes=["/imgvol"])
COMMON_PAIRS = {
    "good": ("good", GOOD, GOOD),
    # its VOLUME /fresh is one the old version lacks: the engine makes a
    # volume for the replacement alone (test_update_failures.py)
    "unhealthy": ("unhealthy", GOOD, dict(GOOD, healthcheck=False, volumes=["/imgvol", "/fresh"])),
    "exits": ("exits", GOOD, dict(GOOD, cmd=["/bin/sh", "-c", "echo bye; exit 3"])),
    "no-entrypoint": ("no-entrypoint", GOOD, dict(GOOD, entrypoint=["/nonexistent/app"])),
    "again": ("again", GOOD, GOOD),     # test_update.py publishes a v3 of its own
}

_POOL = {"images": None, "users": 0}
_POOL_LOCK = threading.Lock()


@pytest.fixture(scope="session")
def swap_images(image_factory, run_id, session_dir):
    """The session's SwapImages (each module that imports this fixture gets
    its own fixture instance, all of them the same object; the last one
    torn down removes the images)."""
    with _POOL_LOCK:
        if _POOL["images"] is None:
            _POOL["images"] = SwapImages(image_factory, run_id, session_dir)
        _POOL["users"] += 1
        imgs = _POOL["images"]
    yield imgs
    with _POOL_LOCK:
        _POOL["users"] -= 1
        last = _POOL["users"] == 0
        if last:
            _POOL["images"] = None
    if last:
        imgs.cleanup()


@pytest.fixture(scope="session")
def common_pairs(swap_images, plain_registry):
    """{key: (v1, v2)} for COMMON_PAIRS, on the plain registry."""
    return swap_images.pairs(plain_registry, COMMON_PAIRS)


# --------------------------------------------------------------------------
# per test: networks, volumes, bind dirs, containers

class SwapEnv:
    def __init__(self, run_id, scope, workdir, containers):
        self.run_id = run_id
        self.scope = scope
        self.workdir = workdir
        self.containers = containers
        self.networks = []
        self.volumes = []
        self.short = uuid.uuid4().hex[:6]

    def labels(self, extra=None, **kw):
        d = {RUN_LABEL: self.run_id, OWNER_LABEL: self.scope}
        d.update(extra or {})
        d.update(kw)
        return d

    def managed(self, extra=None, **kw):
        """Labels of a container refit manages in this test's scope."""
        d = self.labels({"refit.enable": "true", "refit.scope": self.scope})
        d.update(extra or {})
        d.update(kw)
        return d

    def network(self, hint="net", subnet=True):
        """A user-defined bridge network (with a random /24 when subnet);
        returns (name, prefix) with prefix like '10.231.7' (or None)."""
        name = "swapnet-%s-%s-%d" % (self.short, hint, len(self.networks))
        for _ in range(20):
            prefix = Engine().network_prefix() if subnet else None
            args = ["network", "create", "--label", "%s=%s" % (RUN_LABEL, self.run_id),
                    "--label", "%s=%s" % (OWNER_LABEL, self.scope)]
            if prefix:
                args += ["--subnet", prefix + ".0/24"]
            out = docker(*args, name, check=False)
            if out.strip():
                self.networks.append(name)
                return name, prefix
        raise HarnessError("could not create network %s" % name)

    def volume(self, hint="vol"):
        name = "swapvol-%s-%s-%d" % (self.short, hint, len(self.volumes))
        docker("volume", "create", "--label", "%s=%s" % (RUN_LABEL, self.run_id),
               "--label", "%s=%s" % (OWNER_LABEL, self.scope), name)
        self.volumes.append(name)
        return name

    def bind_dir(self, hint="bind"):
        path = os.path.join(self.workdir, "%s-%s" % (hint, uuid.uuid4().hex[:6]))
        os.makedirs(path)
        os.chmod(path, 0o777)
        return path

    def name(self, hint):
        return "swap-%s-%s-%s" % (self.run_id, self.short, hint)

    def run(self, image, labels, name=None, hint="c", extra=(), cmd=()):
        """docker run -d with the run and owner labels; returns the name."""
        lab = dict(labels)
        lab.setdefault(OWNER_LABEL, self.scope)
        return self.containers.run(image, labels=lab, name=name or self.name(hint),
                                   extra=extra, cmd=cmd)

    def mine(self):
        """IDs of every container of this test (refit's copies included)."""
        return sorted(i for i, _ in list_containers(label=[
            "%s=%s" % (RUN_LABEL, self.run_id), "%s=%s" % (OWNER_LABEL, self.scope)]))

    def cleanup(self):
        remove_containers(self.mine())
        for n in self.networks:
            docker("network", "rm", n, check=False)
        if self.volumes:
            docker("volume", "rm", "-f", *self.volumes, check=False)


@pytest.fixture
def swapenv(run_id, scope, tmp_path, containers, engine):
    env = SwapEnv(run_id, scope, str(tmp_path), containers)
    yield env
    env.cleanup()


# --------------------------------------------------------------------------
# refit

class RunResult:
    """One refit run: rc, stdout, stderr (decoded; bytes that are not UTF-8
    are shown as \\xNN and flagged in `not_utf8`)."""

    def __init__(self, args, rc, out, err):
        self.args = args
        self.rc = rc
        self.not_utf8 = []
        self.stdout = self._text(out, "stdout")
        self.stderr = self._text(err, "stderr")

    def _text(self, data, what):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.not_utf8.append(what)
            return data.decode("utf-8", "backslashreplace")

    def __iter__(self):
        return iter((self.rc, self.stdout, self.stderr))

    def describe(self):
        return ("$ %s\nrc=%s\n--- stdout\n%s\n--- stderr\n%s"
                % (" ".join(self.args), self.rc, self.stdout[-6000:], self.stderr[-6000:]))

    __repr__ = describe


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


def sanitizer_report(text):
    """The sanitizer report in TEXT (ASan, LSan, UBSan), or None."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if any(m in line for m in SANITIZER_MARKERS):
            start = i
            while start > 0 and lines[start - 1].startswith("="):
                start -= 1
            return "\n".join(lines[start:])
    return None


def run_refit(refit, *args, config=None, env=None, timeout=150):
    """refit ARGS as the harness's Refit.run does (--config and --state-dir
    after the subcommand, the per-test environment), but never fails on
    output that is not UTF-8: that is reported by the checks instead."""
    args = [str(a) for a in args]
    refit.write_config(config if config is not None else config_text(refit))
    cmd = [refit.binary, args[0], "--config", refit.config_path,
           "--state-dir", refit.state_dir] + args[1:]
    e = refit.base_env()
    # Under ASan, also catch use of a returned function's stack (off by
    # default); ASAN_OPTIONS in the environment wins.  Ignored by other builds.
    e.setdefault("ASAN_OPTIONS", "detect_stack_use_after_return=1")
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = str(v)
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, env=e, cwd=refit.dir)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("refit timed out after %ss: %s\n%r\n%r"
                             % (timeout, " ".join(cmd), exc.stdout, exc.stderr))
    res = RunResult(cmd, p.returncode, p.stdout, p.stderr)
    report = sanitizer_report(res.stderr)
    if report:
        raise AssertionError("sanitizer report from %s:\n%s" % (" ".join(cmd), report))
    return res


class SwapResult:
    """`refit update|rollback --json`: rc, the entries by name."""

    def __init__(self, res):
        self.res = res
        self.rc = res.rc
        self.entries = {}
        self.list = []
        if res.rc in (0, 1) and res.stdout.strip():
            try:
                data = json.loads(res.stdout)
            except ValueError as e:
                raise AssertionError("no JSON on stdout (%s)\n%s" % (e, res.describe()))
            assert isinstance(data.get("containers"), list), res.describe()
            self.list = data["containers"]
            for c in self.list:
                self.entries[c["name"].lstrip("/")] = c

    def __getitem__(self, name):
        assert name in self.entries, "%s not in the output\n%s" % (name, self.describe())
        return self.entries[name]

    def describe(self):
        return self.res.describe()

    def statuses(self):
        return {n: c.get("status") for n, c in self.entries.items()}

    def assert_clean_output(self):
        """Everything refit printed is text (not, say, freed memory)."""
        assert not self.res.not_utf8, \
            "refit printed bytes that are not UTF-8 on %s\n%s" % (
                " and ".join(self.res.not_utf8), self.describe())


def config_text(refit, extra=""):
    return "# swap e2e\nstate_dir: %s\n%s%s" % (refit.state_dir, FAST_CONFIG, extra)


def update(refit, scope, *names, env=None, extra_config="", timeout=150):
    return SwapResult(run_refit(refit, "update", "--json", "--scope", scope, *names,
                                config=config_text(refit, extra_config), env=env,
                                timeout=timeout))


def rollback(refit, scope, *names, env=None, extra_config="", timeout=150):
    return SwapResult(run_refit(refit, "rollback", "--json", "--scope", scope, *names,
                                config=config_text(refit, extra_config), env=env,
                                timeout=timeout))


def history(refit, name=None):
    args = ["history", "--json"] + ([name] if name else [])
    res = run_refit(refit, *args)
    assert res.rc == 0 and not res.not_utf8, res.describe()
    try:
        data = json.loads(res.stdout)
    except ValueError as e:
        raise AssertionError("history --json is not JSON (%s)\n%s" % (e, res.describe()))
    assert isinstance(data.get("history"), list), res.describe()
    return data["history"]


def pending_ops(refit):
    d = os.path.join(refit.state_dir, "ops")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


# --------------------------------------------------------------------------
# containers

class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("docker", timeout=timeout)
        self.sock_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.sock_path)
        self.sock = s


def engine_get(path):
    """GET PATH on the engine's socket (read-only, cheaper than the CLI):
    (status, parsed JSON or None)."""
    conn = _UnixHTTPConnection(DOCKER_SOCK)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    try:
        return r.status, json.loads(body) if body else None
    except ValueError:
        return r.status, None


def inspect(name_or_id):
    """The inspect of a container, or None when there is none."""
    status, data = engine_get("/containers/%s/json" % urllib.parse.quote(name_or_id, safe=""))
    if status == 404:
        return None
    assert status == 200, "inspect %s: %s %r" % (name_or_id, status, data)
    return data


def list_containers(**filters):
    """IDs and names of containers (all states) matching engine FILTERS,
    e.g. label=["a=b"], name=["x"]: [(id, name)]."""
    q = urllib.parse.quote(json.dumps(filters))
    status, data = engine_get("/containers/json?all=1&filters=%s" % q)
    assert status == 200, "container list: %s %r" % (status, data)
    return [(c["Id"], (c.get("Names") or ["/"])[0].lstrip("/")) for c in data]


def leftovers(name):
    """Names of containers called NAME-refit-... (refit's temporary copies)."""
    return sorted(n for _, n in list_containers(name=["%s-refit-" % name])
                  if n.startswith(name + "-refit-"))


def container_ip(ins):
    for net in (ins["NetworkSettings"].get("Networks") or {}).values():
        if net.get("IPAddress"):
            return net["IPAddress"]
    raise AssertionError("container %s has no IP address" % ins["Name"])


def http_get(url, timeout=3):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def serving(name, timeout=20):
    """What NAME's httpd answers for /version (from the host, to its IP)."""
    last = [None]

    def probe():
        ins = inspect(name)
        status, body = http_get("http://%s:%d/version" % (container_ip(ins), HTTP_PORT))
        last[0] = body.strip() if status == 200 else None
        return last[0] is not None
    wait_for(probe, timeout, interval=0.2, what="%s to answer HTTP" % name)
    return last[0]


def load_loop(alias):
    """Shell for a client container that asks ALIAS for /version in a loop
    (nc resolves the name anew for each request) until /tmp/stop exists:
    /tmp/counts holds "v1 v2 failed longest-gap-seconds", /tmp/fails a line
    per failure (uptime span, answer, what DNS said), /tmp/done marks the end.
    A request is given 5 s in all: nc's -w bounds the connect, not a
    connection that was accepted and then went silent (one in flight to the
    old container when it leaves the network), which would stop the loop."""
    return (
        "trap 'exit 0' TERM; a=0; b=0; f=0; gap=0; "
        "req() { printf 'GET /version HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc -w 3 %s 8080; }; "
        "until req | grep -q ' 200 '; do sleep 0.2; done; last=$(cut -d' ' -f1 /proc/uptime); "
        "while [ ! -f /tmp/stop ]; do "
        "t=$(cut -d' ' -f1 /proc/uptime); r=$(req); ok=1; "
        "case \"$r\" in "
        "'HTTP/1.'?' 200 '*'good v1'*) a=$((a+1));; "
        "'HTTP/1.'?' 200 '*'good v2'*) b=$((b+1));; "
        "*) ok=0; f=$((f+1)); echo \"$t-$(cut -d' ' -f1 /proc/uptime) [$r] now: "
        "$(nslookup %s 127.0.0.11 2>&1 | grep -A9 '^Name' | grep '^Address' | tr '\\n' ' ')\" "
        ">> /tmp/fails;; esac; "
        "if [ $ok = 1 ]; then now=$(cut -d' ' -f1 /proc/uptime); "
        "gap=$(awk \"BEGIN { g = $now - $last; print (g > $gap) ? g : $gap }\"); last=$now; fi; "
        "echo \"$a $b $f $gap\" > /tmp/counts.new; mv /tmp/counts.new /tmp/counts; "
        "done; touch /tmp/done; while :; do sleep 1 & wait $!; done" % (alias, alias))


def load_counts(client):
    """(v1 answers, v2 answers, failures, longest gap between answers in s) of a load_loop client."""
    out = exec_out(client, "cat /tmp/counts 2>/dev/null", check=False).split()
    return (int(out[0]), int(out[1]), int(out[2]), float(out[3])) if len(out) == 4 else (0, 0, 0, 0.0)


def load_stop(client):
    exec_out(client, "touch /tmp/stop")
    wait_for(lambda: exec_out(client, "test -f /tmp/done && echo y", check=False).strip() == "y",
             10, what="the load client to stop")
    return load_counts(client)


def exec_out(name, script, check=True):
    return docker("exec", name, "sh", "-c", script, check=check)


def nc_get(client, host, path="/version", port=HTTP_PORT):
    """HTTP GET from inside CLIENT (busybox nc; Docker DNS resolves HOST)."""
    script = ("printf 'GET %s HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' | nc -w 3 %s %d"
              % (path, host, port))
    out = docker("exec", client, "sh", "-c", script, check=False)
    out = out.replace("\r\n", "\n")     # (text mode may have done so already)
    head, _, body = out.partition("\n\n")
    return head.split("\n", 1)[0].strip(), body.strip()


def write_data(name, paths):
    """Write '<path> data <nonce>' into PATH/data for each PATH; returns {path: text}."""
    texts = {p: "%s data %s" % (p, uuid.uuid4().hex[:8]) for p in paths}
    exec_out(name, " && ".join("echo '%s' > %s/data" % (t, p) for p, t in texts.items()))
    return texts


def read_data(name, paths):
    """{path: text of PATH/data} as NAME sees it now (one exec)."""
    out = exec_out(name, "; ".join("cat %s/data 2>/dev/null; echo '@@'" % p for p in paths),
                   check=False)
    parts = out.split("@@\n")
    return {p: (parts[i].strip() if i < len(parts) else None) for i, p in enumerate(paths)}


def image_repo_digests(image_id):
    return docker_inspect(image_id, "image").get("RepoDigests") or []


def short_ids(*ids):
    return {i[:12] for i in ids if i}


def aliases(ins, net, drop_ids=()):
    """The user aliases of INS on NET (the engine's short-ID aliases left out)."""
    got = ((ins["NetworkSettings"]["Networks"].get(net) or {}).get("Aliases")) or []
    drop = short_ids(ins["Id"], *drop_ids)
    return sorted(a for a in got if a not in drop)


def wait_running(name, timeout=15):
    wait_for(lambda: (inspect(name) or {}).get("State", {}).get("Running"), timeout,
             interval=0.2, what="%s to run" % name)


def hist_for(records, container, kind=None):
    return [r for r in records if r.get("container") == container and
            (kind is None or r.get("kind") == kind)]


def same_digest(a, b):
    return digest_only(a) == digest_only(b)


def wait_file(name, path, pred, timeout, what):
    wait_for(lambda: pred(exec_out(name, "cat %s 2>/dev/null" % path, check=False)),
             timeout, interval=0.3, what=what)


def scope_containers(scope):
    """IDs of the containers labelled refit.scope=SCOPE."""
    return sorted(i for i, _ in list_containers(label=["refit.scope=%s" % scope]))


def case_refit(refit_bin, tmp_path, key):
    """A refit runner with its own state dir and config (one per case)."""
    return Refit(refit_bin, os.path.join(str(tmp_path), key))


def run_cases(cases):
    """{label: callable} run at once (each swap mostly waits: stop, health
    gate, drain); prints each case's line and fails listing every case that
    raised, with its traceback."""
    def one(item):
        label, fn = item
        try:
            return True, "%s: %s" % (label, fn() or "ok")
        except Exception:  # noqa: BLE001 - reported per case below
            return False, "%s FAILED:\n%s" % (label, traceback.format_exc())

    with ThreadPoolExecutor(max_workers=len(cases)) as ex:
        results = list(ex.map(one, cases.items()))
    for ok, line in results:
        print(line if ok else line.splitlines()[0])
    failed = [line for ok, line in results if not ok]
    assert not failed, "%d of %d cases failed:\n\n%s" % (len(failed), len(cases),
                                                         "\n\n".join(failed))
