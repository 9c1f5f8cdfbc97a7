"""A Watchtower host moving to refit unchanged (SPEC.md: Watchtower
compatibility; docs/migrating-from-watchtower.md): refit run with
Watchtower's command line (`refit --run-once --cleanup --label-enable
NAME`, `refit --interval 2 --http-api-update --http-api-token T`), its
variables, and its API as its clients call it (GET /v1/update with a
Bearer token), against the real engine and registry.

Every run names its containers or a scope of its own: a Watchtower
invocation without --scope manages every scope, so none is run here
without names or a scope.
"""

import os
import signal
import subprocess
import time

import pytest

from daemontools import curl
from harness import free_port, wait_for
from swaptools import inspect, stale_pair

WT_ENABLE = "com.centurylinklabs.watchtower.enable"
WT_SCOPE = "com.centurylinklabs.watchtower.scope"
FAST = "min_uptime: 1\nhealth_timeout: 15\nstop_timeout: 3\n"


@pytest.fixture(scope="module")
def base(image_factory, plain_registry):
    repo = image_factory.unique_repo("wt-base")
    return image_factory.make_many([{"registry": plain_registry, "repo": repo, "tag": t}
                                    for t in ("v1", "v2")])


def pair(image_factory, plain_registry, base, hint, tag="latest"):
    return stale_pair(image_factory, plain_registry, base[0], base[1], hint, tag=tag)


def image_id(name):
    return inspect(name)["Image"]


def wt_labels(labels, scope=None, enable=True):
    d = {WT_ENABLE: "true" if enable else "false"}
    if scope:
        d[WT_SCOPE] = scope
    return labels(d)


def config(refit, extra=""):
    given = {x.split(":", 1)[0] for x in extra.splitlines()}
    base = "".join(x + "\n" for x in FAST.splitlines() if x.split(":", 1)[0] not in given)
    return refit.write_config("state_dir: %s\n%s%s" % (refit.state_dir, base, extra))


class WatchtowerProcess:
    """`refit ARGS` (a Watchtower command line) as a long-running process."""

    def __init__(self, refit, args, env=None):
        self.refit = refit
        e = refit.base_env()
        e.update(env or {})
        self.stderr_path = os.path.join(refit.dir, "wt-%d.stderr" % time.monotonic_ns())
        self.err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([refit.binary] + [str(a) for a in args], env=e,
                                     stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err,
                                     cwd=refit.dir)

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        return self.proc.returncode


@pytest.fixture
def procs():
    made = []
    yield made
    for p in made:
        p.stop()


def wait_api(port, proc, timeout=30):
    def up():
        assert proc.proc.poll() is None, "refit exited:\n" + proc.stderr()
        try:
            return curl("GET", "http://127.0.0.1:%d/livez" % port, max_time=2).status == 200
        except AssertionError:
            return False
    wait_for(up, timeout, interval=0.1, what="refit's API on port %d" % port)


# --------------------------------------------------------------------------

def test_run_once_cleanup_label_enable_updates_the_named_container_only(
        refit, containers, labels, image_factory, plain_registry, base):
    a1, a2 = pair(image_factory, plain_registry, base, "wt-once-a")
    b1, b2 = pair(image_factory, plain_registry, base, "wt-once-b")
    a = containers.run(a1, labels=wt_labels(labels), hint="wt-a")
    b = containers.run(b1, labels=wt_labels(labels), hint="wt-b")
    off = containers.run(a1, labels=wt_labels(labels, enable=False), hint="wt-off")
    b_id = inspect(b)["Id"]
    cfg = config(refit)
    r = refit.run("--run-once", "--cleanup", "--label-enable", "--config", cfg, a, off)
    assert r.rc == 0, r.describe()
    assert image_id(a) == a2.id, r.describe()
    assert image_id(off) == a1.id, "enable=false with --label-enable: " + r.describe()
    assert inspect(b)["Id"] == b_id and image_id(b) == b1.id, "not named: " + r.describe()
    assert "updated" in r.stdout and a in r.stdout, r.describe()
    # the same answer `refit update` gives for the same container: nothing left to do
    r2 = refit.run("update", "--json", a, config="state_dir: %s\nlabel_enable: false\nscope: \"*\"\n"
                   % refit.state_dir)
    assert r2.rc == 0 and '"up-to-date"' in r2.stdout, r2.describe()


def test_run_once_rollback_puts_the_scope_back(refit, containers, labels, image_factory,
                                               plain_registry, base, scope):
    a1, a2 = pair(image_factory, plain_registry, base, "wt-rb-a")
    b1, b2 = pair(image_factory, plain_registry, base, "wt-rb-b")
    other = scope + "-other"
    a = containers.run(a1, labels=wt_labels(labels, scope), hint="wt-rb-a")
    b = containers.run(b1, labels=wt_labels(labels, scope), hint="wt-rb-b")
    c = containers.run(a1, labels=wt_labels(labels, other), hint="wt-rb-other")
    cfg = config(refit)
    r = refit.run("-R", "-e", "--scope", scope, "--config", cfg)
    assert r.rc == 0 and image_id(a) == a2.id and image_id(b) == b2.id, r.describe()
    r = refit.run("-R", "-e", "--scope", other, "--config", cfg)
    assert r.rc == 0 and image_id(c) == a2.id, r.describe()
    # the seed's emergency line
    r = refit.run("--run-once", "--label-enable", "--scope", scope, "--rollback", "--config", cfg)
    assert r.rc == 0, r.describe()
    assert image_id(a) == a1.id and image_id(b) == b1.id, r.describe()
    assert image_id(c) == a2.id, "another scope was rolled back: " + r.describe()
    r = refit.run("--rollback", "--scope", scope, "--config", cfg)
    assert r.rc == 2 and "--run-once" in r.stderr, r.describe()


def test_http_api_update_without_periodic_polls_updates_only_when_asked(
        refit, containers, labels, image_factory, plain_registry, base, scope, procs):
    a1, a2 = pair(image_factory, plain_registry, base, "wt-api")
    name = containers.run(a1, labels=wt_labels(labels, scope), hint="wt-api")
    port = free_port()
    p = WatchtowerProcess(refit, ["--interval", "2", "--http-api-update", "--http-api-token",
                                  "mytoken", "--label-enable", "--scope", scope,
                                  "--http-api-host", "127.0.0.1", "--http-api-port", port,
                                  "--config", config(refit)])
    procs.append(p)
    wait_api(port, p)
    url = "http://127.0.0.1:%d" % port
    # no scheduled pass: three intervals later the container is as it was
    time.sleep(6.5)
    assert image_id(name) == a1.id, "a scheduled pass ran:\n" + p.stderr()
    assert curl("GET", url + "/v1/update").status == 401
    assert curl("GET", url + "/v1/update", token="wrongtoken").status == 401
    # GET, as Watchtower's docs show it, with its short token
    r = curl("GET", url + "/v1/update", token="mytoken", max_time=120)
    assert r.status == 200, r.describe()
    body = r.json()
    assert body["summary"] == {"scanned": 1, "updated": 1, "failed": 0, "rolled_back": 0,
                               "skipped": 0}, body
    assert body["operation"] and body["timing"]["duration_ms"] > 0, body
    assert image_id(name) == a2.id
    # the answer describes a finished pass: the operation says the same
    op = curl("GET", url + "/api/v1/operations/" + body["operation"], token="mytoken").json()
    assert op["state"] == "succeeded" and op["exit_code"] == 0, op
    err = p.stderr()
    short = [x for x in err.splitlines() if "shorter than 16 characters" in x]
    assert len(short) == 1, err
    assert "no scheduled passes" in err, err
    assert p.stop() == 0, p.stderr()


def test_http_api_periodic_polls_turns_the_schedule_back_on(
        refit, containers, labels, image_factory, plain_registry, base, scope, procs):
    a1, a2 = pair(image_factory, plain_registry, base, "wt-polls")
    name = containers.run(a1, labels=wt_labels(labels, scope), hint="wt-polls")
    port = free_port()
    p = WatchtowerProcess(refit, ["-i", "2", "--http-api-update", "--http-api-periodic-polls",
                                  "--http-api-port", port, "--http-api-host", "127.0.0.1",
                                  "--scope", scope, "--config", config(refit)],
                          env={"WATCHTOWER_HTTP_API_TOKEN": "a-watchtower-token-long-enough"})
    procs.append(p)
    wait_for(lambda: image_id(name) == a2.id, 60, interval=0.5,
             what="a scheduled pass to update %s\n" % name)
    # passes run every 2 s: a targeted request waits its turn (a full one may be 429)
    r = curl("POST", "http://127.0.0.1:%d/v1/update?async=true&container=%s" % (port, name),
             token="a-watchtower-token-long-enough")
    assert r.status == 202 and r.json()["operation"], r.describe()
    assert "shorter than 16" not in p.stderr()
    assert p.stop() == 0, p.stderr()


def test_full_update_while_one_runs_is_429_with_retry_after(
        refit, containers, labels, image_factory, plain_registry, base, scope, procs):
    a1, a2 = pair(image_factory, plain_registry, base, "wt-busy-a")
    b1, b2 = pair(image_factory, plain_registry, base, "wt-busy-b")
    a = containers.run(a1, labels=wt_labels(labels, scope), hint="wt-busy-a")
    b = containers.run(b1, labels=wt_labels(labels, scope), hint="wt-busy-b")
    port = free_port()
    p = WatchtowerProcess(refit, ["--http-api-update", "--http-api-port", port, "--http-api-host",
                                  "127.0.0.1", "--scope", scope, "--config",
                                  config(refit, "min_uptime: 4\n")],
                          env={"WATCHTOWER_HTTP_API_TOKEN": "tok"})
    procs.append(p)
    wait_api(port, p)
    url = "http://127.0.0.1:%d" % port
    r = curl("POST", url + "/v1/update?async=true", token="tok")
    assert r.status == 202, r.describe()
    busy = curl("POST", url + "/v1/update", token="tok")
    assert busy.status == 429 and busy.headers.get("retry-after") == "30", busy.describe()
    assert "already running" in busy.json()["error"]
    op = r.json()["operation"]
    wait_for(lambda: curl("GET", url + "/api/v1/operations/" + op, token="tok").json()["state"]
             in ("succeeded", "failed"), 120, interval=0.5, what="the async pass")
    assert image_id(a) == a2.id and image_id(b) == b2.id
    assert p.stop() == 0, p.stderr()


def test_image_filter_without_tag_is_the_repository_with_a_tag_exact(
        refit, containers, labels, image_factory, plain_registry, base, scope, procs):
    a1, a2 = pair(image_factory, plain_registry, base, "wt-img", tag="v1")
    name = containers.run(a1, labels=wt_labels(labels, scope), hint="wt-img")
    repo = inspect(name)["Config"]["Image"].rsplit(":", 1)[0]
    port = free_port()
    p = WatchtowerProcess(refit, ["--http-api-update", "--http-api-port", port, "--http-api-host",
                                  "127.0.0.1", "--http-api-token", "tok", "--scope", scope,
                                  "--config", config(refit)])
    procs.append(p)
    wait_api(port, p)
    url = "http://127.0.0.1:%d" % port
    r = curl("GET", url + "/v1/update?image=%s:v9" % repo, token="tok", max_time=120)
    assert r.status == 200 and r.json()["summary"]["scanned"] == 0, r.describe()
    assert image_id(name) == a1.id
    r = curl("GET", url + "/v1/update?image=%s" % repo, token="tok", max_time=120)
    assert r.status == 200 and r.json()["summary"]["updated"] == 1, r.describe()
    assert image_id(name) == a2.id
    r = curl("GET", url + "/v1/update?container=..bad", token="tok")
    assert r.status == 400, r.describe()
    assert p.stop() == 0, p.stderr()


def test_livez_readyz_and_health_check(refit, tmp_path, procs):
    port = free_port()
    cfg = config(refit)
    p = WatchtowerProcess(refit, ["--http-api-metrics", "--http-api-token", "tok", "--http-api-host",
                                  "127.0.0.1", "--http-api-port", port, "--scope", "wt-nothing",
                                  "--config", cfg])
    procs.append(p)
    wait_api(port, p)
    url = "http://127.0.0.1:%d" % port
    assert curl("GET", url + "/livez").status == 200
    r = curl("GET", url + "/readyz")
    assert r.status == 200 and r.json()["status"] == "ready", r.describe()
    env = {"WATCHTOWER_HTTP_API_METRICS": "true", "WATCHTOWER_HTTP_API_HOST": "127.0.0.1",
           "WATCHTOWER_HTTP_API_PORT": str(port), "WATCHTOWER_HTTP_API_TOKEN": "tok"}
    r = refit.run("--health-check", "--config", cfg, env=env)
    assert r.rc == 0, r.describe()
    assert p.stop() == 0, p.stderr()
    r = refit.run("--health-check", "--config", cfg, env=env)
    assert r.rc == 1, r.describe()

    # an engine that cannot be reached: alive, not ready
    port2 = free_port()
    p2 = WatchtowerProcess(refit, ["-H", "unix://%s/no-engine.sock" % tmp_path, "--http-api-update",
                                   "--http-api-token", "tok", "--http-api-host", "127.0.0.1",
                                   "--http-api-port", port2, "--config", cfg])
    procs.append(p2)
    wait_api(port2, p2)
    assert curl("GET", "http://127.0.0.1:%d/livez" % port2).status == 200
    r = curl("GET", "http://127.0.0.1:%d/readyz" % port2)
    assert r.status == 503 and r.json()["status"] == "unavailable" and r.json()["error"], \
        r.describe()
    assert p2.stop() == 0, p2.stderr()


def test_unknown_variable_and_unhonoured_flag_are_one_warning_each(refit):
    cfg = config(refit)
    r = refit.run("--run-once", "--remove-volumes", "--scope", "wt-none", "--config", cfg,
                  env={"WATCHTOWER_NO_SUCH_THING": "1", "WATCHTOWER_NO_STARTUP_MESSAGE": "true"})
    assert r.rc == 0, r.describe()
    lines = r.stderr.splitlines()
    assert len([x for x in lines if "WATCHTOWER_NO_SUCH_THING" in x]) == 1, r.describe()
    assert len([x for x in lines if "--remove-volumes" in x and "never removes" in x]) == 1, \
        r.describe()
    assert not [x for x in lines if "NO_STARTUP_MESSAGE" in x], r.describe()
    # a flag neither Watchtower nor refit has is a usage error
    r = refit.run("--interval", "30", "--no-such-flag", "--config", cfg)
    assert r.rc == 2 and "--no-such-flag" in r.stderr, r.describe()
    # Watchtower's own refusal: interval and schedule together is a warning here
    r = refit.run("-R", "-i", "30", "-s", "0 0 4 * * *", "--scope", "wt-none", "--config", cfg)
    assert r.rc == 0 and "the schedule is used" in r.stderr, r.describe()
    r = refit.run("watchtower", "--help")
    assert r.rc == 0 and "--http-api-periodic-polls" in r.stdout, r.describe()
