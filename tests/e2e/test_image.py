"""The container image (Dockerfile, `make image`) run as containrrr/watchtower is run.

The image is built by `make image` under tags of this run, on base images
of this run: scripts/image-base makes debian:bookworm and -slim from
Debian's packages (mmdebstrap, docker import; the tarballs are cached
under build/image-base/), labelled with the run id like the image and its
build stage, and all removed afterwards.  The updater container shares the
host's network (the test registry is on 127.0.0.1) and gets the host's
Docker socket, as `docker run -v /var/run/docker.sock:/var/run/docker.sock`
gives it to Watchtower.
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest

from harness import DOCKER, DOCKER_SOCK, RUN_LABEL, HarnessError, docker, free_port, wait_for
from swaptools import inspect, stale_pair

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
WT_ENABLE = "com.centurylinklabs.watchtower.enable"
WT_SCOPE = "com.centurylinklabs.watchtower.scope"


# The image, its build stage and its bases carry the run label (the run's own
# sweep finds them) and PART_LABEL: the teardown removes by PART_LABEL only,
# never by the run label, which the other workers' test images carry too.
PART_LABEL = "refit-test.part"


def run_images(part):
    out = docker("images", "-a", "-q", "--no-trunc", "--filter", "label=%s=%s" % (PART_LABEL, part),
                 check=False)
    return list(dict.fromkeys(out.split()))


@pytest.fixture(scope="module")
def image(run_id, engine):
    """The image's reference (NAME:latest) as `make image` built it."""
    if not shutil.which("mmdebstrap"):
        pytest.skip("mmdebstrap is not installed (make deps-pkg): no base image can be made here")
    name = "refit-e2e-%s-image" % run_id
    bases = ["refit-e2e-%s-base:bookworm" % run_id, "refit-e2e-%s-base:bookworm-slim" % run_id]
    part = "image-%s" % run_id
    labels = ["%s=%s" % (RUN_LABEL, run_id), "%s=%s" % (PART_LABEL, part)]
    env = dict(os.environ, IMAGE_BASE_LABEL=" ".join(labels))
    try:
        p = subprocess.run(["make", "-C", REPO_ROOT, "image", "IMAGE=" + name, "IMAGE_BASE=" + bases[0],
                            "IMAGE_RUNTIME_BASE=" + bases[1],
                            "IMAGE_BUILD_FLAGS=" + " ".join("--label " + lb for lb in labels)],
                           capture_output=True, text=True, timeout=1800, env=env)
        assert p.returncode == 0, "make image failed:\n%s\n%s" % (p.stdout[-4000:], p.stderr[-4000:])
        yield name + ":latest"
    finally:
        tags = [t for t in docker("images", "--format", "{{.Repository}}:{{.Tag}}", name,
                                  check=False).split()]
        if tags:
            docker("rmi", *tags, check=False)
        # the build stage's images and the bases inherit the run label from the bases
        for _ in range(5):
            left = run_images(part)
            if not left:
                break
            docker("rmi", "-f", *left, check=False)
        docker("rmi", *bases, check=False)


@pytest.fixture
def stale(image_factory, plain_registry, shared_images):
    def make(hint):
        v1 = shared_images[0]
        v2 = shared_images[1]
        return stale_pair(image_factory, plain_registry, v1, v2, "img-" + hint)
    return make


@pytest.fixture
def updaters(run_id):
    """updaters(image, *args, detach=, extra=, network=) runs the image as a
    container of this run (the host's socket; the host's network unless
    told: the test registry is on 127.0.0.1); removed afterwards."""
    names = []

    def run(image, *args, detach=False, extra=(), timeout=180, network="host"):
        name = "refit-e2e-%s-updater-%d" % (run_id, len(names))
        names.append(name)
        cmd = [DOCKER, "run", "--name", name, "--label", "%s=%s" % (RUN_LABEL, run_id),
               "--network", network, "-v", "%s:/var/run/docker.sock" % DOCKER_SOCK]
        cmd += list(extra) + (["-d"] if detach else []) + [image] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return name, p
    yield run
    for n in names:
        docker("rm", "-f", "-v", n, check=False)


def test_image_is_debian_slim_with_refit_as_entrypoint(image):
    ins = json.loads(docker("image", "inspect", image))[0]
    cfg = ins["Config"]
    assert cfg["Entrypoint"] == ["/usr/bin/refit"], cfg
    assert cfg["Cmd"] == ["watchtower"], cfg
    version = cfg["Labels"]["org.opencontainers.image.version"]
    out = docker("run", "--rm", "--label", "%s=%s" % (RUN_LABEL, cfg["Labels"][RUN_LABEL]),
                 "--entrypoint", "/bin/sh", image, "-c",
                 "refit version --docker-host unix:///nonexistent | head -1; "
                 "dpkg-query -W -f='${Package}\\n' | sort; id refit; stat -c '%U %a' /var/lib/refit")
    assert out.startswith("refit %s\n" % version), out
    pkgs = set(out.split("\n"))
    # the runtime libraries and CA certificates; no compiler, no headers
    for p in ("ca-certificates", "libcurl4", "libjansson4", "libmicrohttpd12", "libyaml-0-2"):
        assert p in pkgs, out
    assert not [p for p in pkgs if p.endswith("-dev") or p in ("gcc", "make", "cpp", "binutils")], out
    # a refit user (non-root runs) owning the state directory
    assert re.search(r"^uid=999\(refit\)", out, re.M) and re.search(r"^refit 770$", out, re.M), out


def test_watchtower_flags_run_once_label_enable_update_a_scoped_container(
        image, updaters, containers, stale, scope, labels):
    v1, v2 = stale("once")
    w1, w2 = stale("optout")
    enabled = containers.run(v1, labels=labels({WT_ENABLE: "true", WT_SCOPE: scope}), hint="img-on")
    plain = containers.run(w1, labels=labels({WT_SCOPE: scope}), hint="img-off")
    name, p = updaters(image, "--run-once", "--label-enable", "--scope", scope)
    assert p.returncode == 0, "rc %d\n%s%s" % (p.returncode, p.stdout, p.stderr)
    assert docker("inspect", "-f", "{{.State.ExitCode}}", name).strip() == "0"
    ins = inspect(enabled)
    assert ins["State"]["Running"] and ins["Image"] == v2.id, (ins["Image"], v2.id, p.stderr)
    assert inspect(plain)["Image"] == w1.id, "a container without the enable label was changed"
    assert "%s: updated" % enabled in p.stdout + p.stderr, p.stdout + p.stderr


def test_watchtower_daemon_flags_and_a_clean_stop(image, updaters, scope):
    # its own network: the API's default 127.0.0.1:8010 is the container's
    # loopback, not the host's (the scope is empty: no registry is asked)
    name, p = updaters(image, "--interval", "30", "--cleanup", "--scope", scope, detach=True,
                       network="bridge")
    assert p.returncode == 0, p.stderr

    def logs():
        p = subprocess.run([DOCKER, "logs", name], capture_output=True, text=True)
        return p.stdout + p.stderr
    try:
        wait_for(lambda: "updating every 30 s" in logs(), 60, interval=0.3, what="the daemon's start")
    except HarnessError:
        raise AssertionError("no start in the log: %r\n%s" % (inspect(name)["State"], logs()))
    assert inspect(name)["State"]["Running"]
    t0 = time.monotonic()
    docker("stop", "-t", "20", name)
    assert time.monotonic() - t0 < 15
    st = inspect(name)["State"]
    assert st["ExitCode"] == 0, (st, logs())
    assert "stopped" in logs()


def test_runs_as_the_refit_user_with_the_socket_group(image, updaters, containers, stale, scope,
                                                      labels):
    v1, v2 = stale("user")
    c = containers.run(v1, labels=labels({WT_ENABLE: "true", WT_SCOPE: scope}), hint="img-user")
    gid = os.stat(DOCKER_SOCK).st_gid
    name, p = updaters(image, "--run-once", "--label-enable", "--scope", scope,
                       extra=["--user", "refit", "--group-add", str(gid)])
    assert p.returncode == 0, "rc %d\n%s%s" % (p.returncode, p.stdout, p.stderr)
    assert inspect(c)["Image"] == v2.id, p.stdout + p.stderr


# --------------------------------------------------------------------------
# self-update: refit's own container handed over to its replacement

def refit_versions(image, image_factory, registry, hint, *variants):
    """The image pushed as REPO:latest (v1, on the host), then each variant
    (a Dockerfile line added FROM it) pushed over the same tag; the host's
    tag is put back on v1, the variants left only in the registry (a host
    that has not pulled yet). Returns [(id, digest)] for v1 and each."""
    ref = registry.ref(image_factory.unique_repo(hint), "latest")
    docker("tag", image, ref)
    image_factory.tags.append(ref)
    out = [(docker_inspect_id(ref), image_factory.push(ref, config_dir=registry.push_config))]
    for i, line in enumerate(variants):
        ctx = os.path.join(image_factory.dir, "%s-v%d" % (hint, i + 2))
        os.makedirs(ctx, exist_ok=True)
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("FROM %s\nLABEL refit-test.version=v%d\n%s\n" % (out[0][0], i + 2, line))
        docker("build", "-q", "-t", ref, ctx, timeout=300)
        image_factory.ids.add(docker_inspect_id(ref))
        out.append((docker_inspect_id(ref), image_factory.push(ref, config_dir=registry.push_config)))
    docker("tag", out[0][0], ref)
    for vid, _ in out[1:]:
        docker("rmi", vid, check=False)
    return ref, out


def docker_inspect_id(ref):
    return docker("image", "inspect", "-f", "{{.Id}}", ref).strip()


@pytest.fixture
def self_updater(run_id, scope):
    """self_updater(ref, env=) runs REF as refit's own managed container
    (Watchtower's flags: --interval 2 --label-enable --scope SCOPE, its
    enable and scope labels, the host's network and socket, a state volume
    of this run); returns its name and ID. Everything of that name (and its
    aside names) is removed afterwards."""
    made = []

    def run(ref, env=()):
        name = "refit-e2e-%s-self-%d" % (run_id, len(made))
        vol = name + "-state"
        docker("volume", "create", "--label", "%s=%s" % (RUN_LABEL, run_id), vol)
        made.append((name, vol))
        # its API on a port of its own: the host's network is shared with every other refit of the machine
        env = list(env) + ["REFIT_API_LISTEN=127.0.0.1:%d" % free_port()]
        args = ["run", "-d", "--name", name, "--label", "%s=%s" % (RUN_LABEL, run_id),
                "--label", "%s=true" % WT_ENABLE, "--label", "%s=%s" % (WT_SCOPE, scope),
                "--network", "host", "-v", "%s:/var/run/docker.sock" % DOCKER_SOCK,
                "-v", "%s:/var/lib/refit" % vol]
        for e in env:
            args += ["-e", e]
        cid = docker(*(args + [ref, "--interval", "2", "--label-enable", "--scope", scope])).strip()
        return name, cid
    yield run
    for name, vol in made:
        left = docker("ps", "-aq", "--filter", "name=^/%s(-refit-(old|new)-[0-9a-f]{8})?$" % name,
                      check=False).split()
        if left:
            docker("rm", "-f", *left, check=False)
        docker("volume", "rm", "-f", vol, check=False)


def named(name):
    """The containers whose name is NAME or one of its swap names: {name: inspect}."""
    ids = docker("ps", "-aq", "--filter", "name=^/%s(-refit-(old|new)-[0-9a-f]{8})?$" % name).split()
    return {i["Name"].lstrip("/"): i for i in (inspect(x) for x in ids)}


def logs_of(cid):
    p = subprocess.run([DOCKER, "logs", cid], capture_output=True, text=True)
    return p.stdout + p.stderr


def waited(pred, timeout, what, name):
    """wait_for PRED; on a timeout, fail with the state and the log of every
    container under NAME (and its swap names)."""
    try:
        wait_for(pred, timeout, interval=0.3, what=what)
    except HarnessError:
        now = named(name)
        raise AssertionError("timed out after %ds waiting for %s: %r\n%s" % (
            timeout, what, {k: (v["Image"][:19], v["State"]["Status"], v["State"]["ExitCode"]) for k, v in now.items()},
            "\n".join("--- %s\n%s" % (k, logs_of(v["Id"])) for k, v in now.items())))


def test_self_update_hands_over_to_the_new_image(image, image_factory, plain_registry, self_updater):
    """refit's own stale container finishes its pass, starts its
    replacement beside it, and the replacement, once ready, takes the lock,
    removes the old container and runs: one refit under the name, on v2."""
    ref, ((v1, _), (v2, _)) = refit_versions(image, image_factory, plain_registry, "self-good", "")
    name, old = self_updater(ref)

    def swapped():
        now = named(name)
        return list(now) == [name] and now[name]["Image"] == v2 and now[name]["State"]["Running"]
    waited(swapped, 150, "the replacement alone under the name", name)
    new = named(name)[name]["Id"]
    assert new != old
    waited(lambda: "updating every 2 s" in logs_of(new), 60, "the replacement's daemon", name)
    log = logs_of(new)
    assert "standing by to take over from %s" % old[:12] in log, log
    assert "took over from %s" % old[:12] in log, log
    # its settings came along: labels, the state volume, the flags
    ins = inspect(new)
    assert ins["Config"]["Labels"][WT_ENABLE] == "true" and ins["HostConfig"]["NetworkMode"] == "host", ins
    assert any(m["Destination"] == "/var/lib/refit" and m["Type"] == "volume" for m in ins["Mounts"]), ins["Mounts"]
    assert ins["Args"][-5:] == ["--interval", "2", "--label-enable", "--scope", ins["Config"]["Labels"][WT_SCOPE]], \
        ins["Args"]
    # the next passes find it up to date: no second handover
    time.sleep(5)
    assert list(named(name)) == [name] and named(name)[name]["Id"] == new
    hist = docker("exec", new, "refit", "history", "--json", name)
    recs = json.loads(hist)["history"]
    assert [r["outcome"] for r in recs if r.get("strategy") == "handover"] == ["updated"], recs


def test_self_update_to_a_bad_version_keeps_the_old_one_and_holds(image, image_factory, plain_registry,
                                                                  self_updater):
    """A replacement that exits before it is ready is removed; the old refit
    gets its name back, runs on, and holds the digest: no second try."""
    ref, ((v1, _), (v2, d2)) = refit_versions(image, image_factory, plain_registry, "self-bad",
                                              'ENTRYPOINT ["/bin/false"]')
    name, old = self_updater(ref)
    waited(lambda: "the replacement exited (code 1) before it was ready" in logs_of(old), 150, "the failed handover",
           name)
    waited(lambda: list(named(name)) == [name], 60, "the old one alone under its name", name)
    time.sleep(6)  # three more passes
    now = named(name)
    assert list(now) == [name] and now[name]["Id"] == old and now[name]["State"]["Running"], now
    assert not docker("ps", "-aq", "--filter", "ancestor=%s" % v2, check=False).split()
    holds = json.loads(docker("exec", old, "cat", "/var/lib/refit/digests.json"))["holds"]
    assert holds[name]["digest"] == d2, holds
    log = logs_of(old)
    assert log.count("rolled-back (handover)") == 1, log


def test_self_update_old_side_killed_while_standing_by(image, image_factory, plain_registry, self_updater):
    """SIGKILL of the old refit while its replacement stands by: the
    replacement takes the lock the old one no longer holds, finishes the
    journal record and runs; nothing is left under an aside name."""
    ref, ((v1, _), (v2, _)) = refit_versions(image, image_factory, plain_registry, "self-killold", "")
    name, old = self_updater(ref, env=["REFIT_TEST_STANDBY_DELAY=15"])

    def standing_by():
        return any(v["Image"] == v2 and v["State"]["Running"] for v in named(name).values())
    waited(standing_by, 150, "the replacement standing by", name)
    assert "waiting up to" not in logs_of(old)  # still before its ready mark
    docker("kill", "-s", "KILL", old)
    waited(lambda: list(named(name)) == [name] and named(name)[name]["Image"] == v2, 90,
           "the replacement alone under the name", name)
    new = named(name)[name]["Id"]
    waited(lambda: "updating every 2 s" in logs_of(new), 60, "the replacement's daemon", name)
    log = logs_of(new)
    assert "finishing an operation interrupted at step standing-by" in log, log
    assert "took over from %s" % old[:12] in log, log


def test_self_update_replacement_killed_while_standing_by(image, image_factory, plain_registry, self_updater):
    """SIGKILL of the replacement while it stands by: the old refit sees it
    gone, removes it, takes its name back and holds the digest."""
    ref, ((v1, _), (v2, d2)) = refit_versions(image, image_factory, plain_registry, "self-killnew", "")
    name, old = self_updater(ref, env=["REFIT_TEST_STANDBY_DELAY=30"])
    found = {}

    def standing_by():
        for v in named(name).values():
            if v["Image"] == v2 and v["State"]["Running"]:
                found["id"] = v["Id"]
        return "id" in found
    waited(standing_by, 150, "the replacement standing by", name)
    docker("kill", "-s", "KILL", found["id"])
    waited(lambda: list(named(name)) == [name] and named(name)[name]["Id"] == old, 90,
           "the old one back under its name", name)
    assert named(name)[name]["State"]["Running"]
    log = logs_of(old)
    assert "the replacement exited (code 137) before it was ready" in log, log
    holds = json.loads(docker("exec", old, "cat", "/var/lib/refit/digests.json"))["holds"]
    assert holds[name]["digest"] == d2, holds
