"""Docker Swarm services (docs/swarm.md): opted-in services are updated
through Swarm's service update with the new digest pinned, followed until
Swarm says how it ended; a failing new image is rolled back by Swarm and
reported rolled-back; task containers are never swapped as containers;
`refit rollback SERVICE` uses Swarm's rollback.

Swarm runs on a private dockerd of the module's own (privateengine.py), so
that making a swarm and leaving it never disturbs the shared engine: on the
shared one both briefly break name resolution on every user-defined network.
The images come from the session's registry on loopback.  Every service
carries the run label and a scope of its own."""

import json
import os
import random
import socket
import subprocess
import uuid

import pytest

from harness import RUN_LABEL, HarnessError, free_port, wait_for, write_docker_config
from privateengine import private_engine

FAST = {"refit.swarm.monitor": "1", "refit.swarm.delay": "0", "refit.swarm.timeout": "240"}


def free_udp_port():
    """A UDP port Swarm accepts for VXLAN (1024-49151) that nothing holds."""
    for _ in range(100):
        port = random.randint(20000, 49151)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
        return port
    raise HarnessError("no free UDP port")


class Swarm:
    """A single-node swarm on a private dockerd."""

    def __init__(self, engine):
        self.engine = engine
        self.host = "unix://" + engine.sock

    def docker(self, *args, check=True, timeout=120):
        p = self.engine.docker(*args, check=check, timeout=timeout)
        return p.stdout.decode()

    def inspect(self, obj, kind=None):
        args = ["inspect"] + (["--type", kind] if kind else []) + [obj]
        return json.loads(self.docker(*args))[0]


@pytest.fixture(scope="module")
def swarm(engine):
    gen = private_engine("swarm")
    sw = Swarm(next(gen))
    # Swarm's docker_gwbridge would otherwise take the host's interface of
    # that name, which the shared engine may have: this one has a bridge of its own
    gw = "refitgw" + uuid.uuid4().hex[:8]
    try:
        sw.docker("network", "create", "--subnet", "10.%d.%d.0/24" % (random.randint(100, 250),
                                                                      random.randint(0, 255)),
                  "--opt", "com.docker.network.bridge.name=" + gw,
                  "--opt", "com.docker.network.bridge.enable_icc=false",
                  "--opt", "com.docker.network.bridge.enable_ip_masquerade=false",
                  "docker_gwbridge")
        # its own ports, so that a swarm of the shared engine (2377, 4789) is no obstacle
        sw.docker("swarm", "init", "--advertise-addr", "127.0.0.1",
                  "--listen-addr", "127.0.0.1:%d" % free_port(),
                  "--data-path-port", str(free_udp_port()), timeout=60)
        yield sw
    finally:
        # the tasks' containers go with their services
        try:
            wait_for(lambda: not sw.docker("ps", "-aq", "--filter", "label=com.docker.swarm.service.id",
                                           check=False).strip(),
                     60, 0.5, "the services' task containers removed")
        except HarnessError as exc:
            print("swarm teardown: %s" % exc)
        gen.close()
        subprocess.run(["ip", "link", "del", gw], capture_output=True)


@pytest.fixture
def refit(refit, swarm):
    """The session's refit runner, talking to the swarm's engine."""
    base_env = refit.base_env
    refit.base_env = lambda: dict(base_env(), DOCKER_HOST=swarm.host)
    return refit


@pytest.fixture(scope="module")
def v1_images(image_factory, plain_registry):
    """One first version per test, built at once: {hint: Image}."""
    hints = ["ok", "bad", "task", "crash"]
    made = image_factory.make_many([{"registry": plain_registry,
                                     "repo": image_factory.unique_repo("swarm-" + h)} for h in hints])
    return dict(zip(hints, made))


@pytest.fixture
def services(swarm, run_id):
    """services.create(image, scope, labels, container_labels) -> name; removed at teardown."""
    made = []

    class Services:
        def create(self, image_ref, labels=None, container_labels=None, extra=(), cli=()):
            name = "refit-e2e-%s-svc-%s" % (run_id, uuid.uuid4().hex[:6])
            args = list(cli) + ["service", "create", "--detach", "--quiet", "--name", name,
                    "--label", "%s=%s" % (RUN_LABEL, run_id),
                    "--container-label", "%s=%s" % (RUN_LABEL, run_id),
                    "--stop-grace-period", "2s", "--update-monitor", "1s"]
            for k, v in (labels or {}).items():
                args += ["--label", "%s=%s" % (k, v)]
            for k, v in (container_labels or {}).items():
                args += ["--container-label", "%s=%s" % (k, v)]
            args += list(extra) + [image_ref]
            made.append(name)
            swarm.docker(*args, timeout=120)   # callers wait for the task they need
            return name

    yield Services()
    if made:
        swarm.docker("service", "rm", *made, check=False, timeout=60)


def spec_image(sw, name):
    return sw.inspect(name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def running_task_containers(sw, name):
    """Container inspects of the service's running tasks."""
    ids = sw.docker("ps", "-q", "--no-trunc", "--filter",
                    "label=com.docker.swarm.service.name=%s" % name).split()
    return [sw.inspect(i, "container") for i in ids]


def wait_single_task_on(sw, name, image, timeout=180):
    """Wait until exactly one running task, on IMAGE's ID; returns its container inspect."""
    def ok():
        cs = running_task_containers(sw, name)
        return cs[0] if len(cs) == 1 and cs[0]["Image"] == image.id else None
    wait_for(ok, timeout, 0.5, "%s running one task on %s" % (name, image.id[:19]))
    return ok()


def labels_for(scope, **more):
    d = {"refit.enable": "true", "refit.scope": scope}
    d.update(FAST)
    d.update(more)
    return d


def update_json(refit, scope, *names, config=None):
    res = refit.run("update", "--json", "--scope", scope, *names, config=config, timeout=400)
    try:
        data = json.loads(res.stdout)
    except ValueError:
        raise AssertionError(res.describe())
    return res, {c["name"]: c for c in data["containers"]}


def test_service_updated_to_new_digest(refit, swarm, scope, services, image_factory, v1_images):
    v1 = v1_images["ok"]
    name = services.create(v1.ref, labels=labels_for(scope))
    assert spec_image(swarm, name) == "%s@%s" % (v1.ref, v1.digest)
    wait_single_task_on(swarm, name, v1)

    chk = refit.check_json(scope=scope)
    assert chk[name]["kind"] == "service" and chk[name]["status"] == "up-to-date", chk.describe()
    assert chk[name]["current_digest"] == v1.digest

    v2 = image_factory.publish_new_version(v1)
    chk = refit.check_json(scope=scope)
    assert chk[name]["status"] == "update-available", chk.describe()
    assert chk[name]["latest_digest"] == v2.digest
    assert spec_image(swarm, name) == "%s@%s" % (v1.ref, v1.digest)   # check changes nothing

    res, out = update_json(refit, scope)
    assert res.rc == 0, res.describe()
    assert out[name]["kind"] == "service" and out[name]["status"] == "updated", res.describe()
    assert out[name]["current_digest"] == v1.digest and out[name]["latest_digest"] == v2.digest

    svc = swarm.inspect(name)
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "%s@%s" % (v1.ref, v2.digest)
    assert svc["UpdateStatus"]["State"] == "completed"
    uc = svc["Spec"]["UpdateConfig"]
    assert (uc["FailureAction"], uc["Order"], uc["Parallelism"], uc["Monitor"], uc.get("Delay", 0)) == \
        ("rollback", "start-first", 1, 1 * 10**9, 0)
    task = wait_single_task_on(swarm, name, v2)
    assert task["Config"]["Image"] == "%s@%s" % (v1.ref, v2.digest)

    hist = json.loads(refit.run("history", "--json", name).stdout)["history"]
    assert [(h["kind"], h["outcome"], h["old_digest"], h["new_digest"], h["strategy"]) for h in hist] == \
        [("update", "updated", v1.digest, v2.digest, "swarm")]
    assert "old_spec" not in hist[0]

    # now up to date; `refit rollback SERVICE` is Swarm's rollback to the previous spec
    res, out = update_json(refit, scope)
    assert res.rc == 0 and out[name]["status"] == "up-to-date", res.describe()
    rb = refit.run("rollback", "--json", "--scope", scope, name, timeout=400)
    assert rb.rc == 0, rb.describe()
    entry = json.loads(rb.stdout)["containers"][0]
    assert (entry["name"], entry["kind"], entry["status"]) == (name, "service", "rolled-back"), rb.describe()
    assert spec_image(swarm, name) == "%s@%s" % (v1.ref, v1.digest)
    wait_single_task_on(swarm, name, v1)
    hist = json.loads(refit.run("history", "--json", name).stdout)["history"]
    assert [(h["kind"], h["outcome"]) for h in hist] == [("update", "updated"), ("rollback", "updated")]


def test_service_on_a_token_registry_is_pulled_with_the_checks_credentials(
        refit, swarm, scope, services, image_factory, token_registry, token_server, tmp_path):
    """A service whose image is on a registry with token auth: the update
    sends X-Registry-Auth from the credentials the check used, so the node
    pulls the new digest. The service itself holds no credentials (made
    without --with-registry-auth, its first image put on the node by a
    pull of the CLI's own), so without the header Swarm could not pull
    and would roll the update back."""
    v1 = image_factory.make(token_registry, repo=image_factory.unique_repo("swarm-auth"))
    swarm.docker("--config", token_registry.docker_config, "pull", v1.ref, timeout=120)
    name = services.create("%s@%s" % (v1.ref, v1.digest), labels=labels_for(scope),
                           extra=["--no-resolve-image"])
    wait_single_task_on(swarm, name, v1)
    v2 = image_factory.publish_new_version(v1)
    creds = write_docker_config(str(tmp_path / "dc"), auths={
        token_registry.host: (token_server.username, token_server.password)})
    mark = token_server.mark()
    res = refit.run("update", "--json", "--scope", scope, env={"DOCKER_CONFIG": creds}, timeout=400)
    out = {c["name"]: c for c in json.loads(res.stdout)["containers"]}
    assert res.rc == 0 and out[name]["status"] == "updated", res.describe()
    assert spec_image(swarm, name) == "%s@%s" % (v1.ref, v2.digest)
    task = wait_single_task_on(swarm, name, v2)
    assert task["Config"]["Image"] == "%s@%s" % (v1.ref, v2.digest)
    # the check's token and the node's pull both authenticated at the token server
    assert token_server.count(since=mark, ok=True, repository=v1.repo) >= 2
    assert token_server.count(since=mark, ok=False) == 0


def test_failing_new_image_rolled_back_by_swarm(refit, swarm, scope, services, image_factory, v1_images):
    v1 = v1_images["bad"]
    name = services.create(v1.ref, labels=labels_for(scope))
    wait_single_task_on(swarm, name, v1)
    bad = image_factory.publish_new_version(v1, healthcheck="false")

    res, out = update_json(refit, scope)
    assert res.rc == 1, res.describe()
    assert out[name]["status"] == "rolled-back", res.describe()
    assert "rolled back" in out[name]["error"], res.describe()
    svc = swarm.inspect(name)
    assert svc["UpdateStatus"]["State"] == "rollback_completed"
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "%s@%s" % (v1.ref, v1.digest)
    task = wait_single_task_on(swarm, name, v1)
    assert task["Image"] != bad.id
    hist = json.loads(refit.run("history", "--json", name).stdout)["history"]
    assert [(h["kind"], h["outcome"], h["new_digest"]) for h in hist] == \
        [("update", "rolled-back", bad.digest)]


def test_task_containers_are_not_swapped(refit, swarm, scope, services, image_factory, v1_images):
    """A service without refit labels whose tasks carry refit.enable and the
    scope (ContainerSpec.Labels): the container pass leaves the task alone;
    with swarm: false an opted-in service is ignored; a service with an
    invalid refit.swarm.* label fails and is not changed."""
    v1 = v1_images["task"]
    plain = services.create(v1.ref, container_labels={"refit.enable": "true", "refit.scope": scope})
    opted = services.create(v1.ref, labels=labels_for(scope))
    invalid = services.create(v1.ref, labels=labels_for(scope, **{"refit.swarm.order": "sideways"}))
    task = wait_single_task_on(swarm, plain, v1)
    wait_single_task_on(swarm, opted, v1)
    wait_single_task_on(swarm, invalid, v1)
    invalid_version = swarm.inspect(invalid)["Version"]["Index"]
    assert task["Config"]["Labels"]["refit.enable"] == "true"
    image_factory.publish_new_version(v1)

    res, out = update_json(refit, scope, config="state_dir: %s\nswarm: false\n" % refit.state_dir)
    assert res.rc == 0, res.describe()
    assert out == {}, res.describe()   # neither the task container nor the service

    res, out = update_json(refit, scope)
    assert res.rc == 1, res.describe()
    assert set(out) == {opted, invalid} and out[opted]["status"] == "updated", res.describe()
    assert out[invalid]["status"] == "failed" and "refit.swarm.order" in out[invalid]["error"], res.describe()
    assert swarm.inspect(invalid)["Version"]["Index"] == invalid_version
    assert spec_image(swarm, invalid) == "%s@%s" % (v1.ref, v1.digest)
    assert task["Name"].lstrip("/") not in out
    after = running_task_containers(swarm, plain)
    assert [c["Id"] for c in after] == [task["Id"]]          # same container, not recreated
    assert after[0]["Image"] == v1.id
    assert spec_image(swarm, plain) == "%s@%s" % (v1.ref, v1.digest)
    assert not any(h.get("container") == task["Name"].lstrip("/")
                   for h in json.loads(refit.run("history", "--json").stdout)["history"])


def test_killed_while_following_is_recorded_by_the_next_run(refit, swarm, scope, services, image_factory,
                                                            v1_images):
    """refit killed while Swarm rolls out: Swarm carries on, the record stays
    in the journal, and the next run records how the rollout ended."""
    v1 = v1_images["crash"]
    name = services.create(v1.ref, labels=labels_for(scope))
    wait_single_task_on(swarm, name, v1)
    v2 = image_factory.publish_new_version(v1)
    res = refit.run("update", "--json", "--scope", scope, env={"REFIT_TEST_CRASH_AT": "swarm-rolling-out"},
                    timeout=400)
    assert res.rc == -9, res.describe()
    ops = os.path.join(refit.state_dir, "ops")
    pending = [json.load(open(os.path.join(ops, f))) for f in os.listdir(ops)]
    assert [(p["container"], p["step"], p["strategy"]) for p in pending] == \
        [(name, "rolling-out", "swarm")]
    assert spec_image(swarm, name) == "%s@%s" % (v1.ref, v2.digest)
    wait_for(lambda: swarm.inspect(name).get("UpdateStatus", {}).get("State") == "completed",
             180, 0.5, "Swarm finishing the rollout on its own")
    res, out = update_json(refit, scope)
    assert res.rc == 0, res.describe()
    assert out[name]["status"] == "up-to-date", res.describe()
    hist = json.loads(refit.run("history", "--json", name).stdout)["history"]
    assert [(h["kind"], h["outcome"], h["new_digest"], h.get("recovered")) for h in hist] == \
        [("update", "updated", v2.digest, True)], hist
    assert os.listdir(ops) == []
    wait_single_task_on(swarm, name, v2)
