"""The Debian package under a real systemd.

`make deb`'s package is installed with `apt-get install ./refit_*.deb` into
a Debian 12 root booted with systemd as PID 1 (systemdhost.py: mmdebstrap,
docker import, the host's Docker socket bind-mounted, the host's network).
Its Depends come from Debian's packages through the machine's mirror; its
Recommends (docker.io) are not installed: the container must not run a
dockerd of its own, so docker.service is a stand-in that only checks that
the host's socket answers (systemdhost.DOCKER_STUB_UNIT) and the docker
group has the host socket's GID.  Everything refit does inside happens on
the host's engine, to containers of this test's scope.

The tests run in file order on one booted machine (module fixture); each
writes /etc/refit/refit.yml for its own scope and leaves no drop-in behind.
Skipped, with the reason, when the machine cannot build the root or start
a systemd container.
"""

import fcntl
import glob
import os
import re
import subprocess
import time

import pytest

import systemdhost
from daemontools import NEVER, curl, new_token
from harness import EngineEvents, HarnessError, free_port, wait_for
from swaptools import inspect, list_containers, stale_pair

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
# ignores SIGTERM (PID 1 without a trap): `docker stop` waits the whole stop timeout
SLOW_STOP_CMD = ["/bin/sh", "-c", "while :; do sleep 1; done"]
DROPIN_DIR = "/etc/systemd/system/refit.service.d"
STATE_DIR = "/var/lib/refit"
# ExecReload= is `refit reload $MAINPID`, which waits for the daemon's
# answer: a refused configuration fails the reload job.
RELOAD_REFUSAL_FAILS_JOB = True
# Left out of the before/after comparison of the file system: apt's and
# dpkg's own records, logs, systemd's runtime state, the mounted package.
SNAPSHOT = ("find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp "
            "-o -path /var/lib/apt -o -path /var/cache -o -path /var/log -o -path /var/lib/dpkg "
            "-o -path /var/lib/systemd -o -path /pkg \\) -prune -o -print | sort")


# --------------------------------------------------------------------------
# fixtures

# A run that tests the package elsewhere (CI: the normal suite; the package is
# a normal build, not the sanitizer's) names the reason here, and every test
# of this file is skipped with it, counted and named.
ELSEWHERE = os.environ.get("E2E_PACKAGE_ELSEWHERE")
if ELSEWHERE:
    pytestmark = pytest.mark.skip(reason="the package is tested elsewhere in this run: %s" % ELSEWHERE)


@pytest.fixture(scope="module")
def deb():
    """The package: REFIT_DEB, or `make deb` of this checkout (one at a time:
    two suites of one checkout share build/deb)."""
    path = os.environ.get("REFIT_DEB")
    if not path:
        if not (subprocess.run(["sh", "-c", "command -v dpkg-buildpackage && command -v dh"],
                               capture_output=True).returncode == 0):
            pytest.skip("make deb needs dpkg-dev and debhelper (make deps-pkg)")
        os.makedirs(os.path.join(REPO_ROOT, "build"), exist_ok=True)
        with open(os.path.join(REPO_ROOT, "build", "deb.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            p = subprocess.run(["make", "-C", REPO_ROOT, "deb"], capture_output=True, text=True,
                               timeout=900)
        assert p.returncode == 0, "make deb failed:\n%s%s" % (p.stdout[-3000:], p.stderr[-3000:])
        found = [f for f in glob.glob(os.path.join(REPO_ROOT, "build", "deb", "refit_*_*.deb"))]
        assert len(found) == 1, found
        path = found[0]
    version = subprocess.run(["dpkg-deb", "-f", path, "Version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    return path, version


@pytest.fixture(scope="module")
def machine(run_id, engine, deb, tmp_path_factory):
    """The booted machine with the package installed; .before is the file
    list of before the install."""
    path, _ = deb
    host = systemdhost.SystemdHost(run_id, tmp_path_factory.mktemp("systemdhost"))
    try:
        host.boot(mounts=[(os.path.dirname(path), "/pkg", "ro")])
    except systemdhost.Unavailable as exc:
        host.remove()
        pytest.skip("no systemd machine here: %s" % exc)
    try:
        host.before = host.sh(SNAPSHOT).stdout.splitlines()
        host.sh("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                "--no-install-recommends /pkg/%s" % os.path.basename(path), timeout=600)
        yield host
    finally:
        host.remove()


@pytest.fixture(scope="module")
def base_pair(image_factory, plain_registry):
    repo = image_factory.unique_repo("pkg-base")
    return tuple(image_factory.make_many([{"registry": plain_registry, "repo": repo, "tag": t}
                                          for t in ("latest", "v2")]))


@pytest.fixture
def stale(image_factory, plain_registry, base_pair):
    """stale(hint) -> (v1, v2): v1 on the host, v2 in the registry under its reference."""
    return lambda hint: stale_pair(image_factory, plain_registry, base_pair[0], base_pair[1],
                                   "pkg-" + hint)


class Service:
    """refit.service in MACHINE and its API (on the host's loopback)."""

    def __init__(self, machine):
        self.m = machine
        self.port = free_port()
        self.token = new_token()

    def config_text(self, scope, extra=""):
        return ("# written by test_package.py\n"
                "api:\n  listen: 127.0.0.1:%d\n  token: %s\n"
                "scope: %s\nschedule: \"%s\"\nmin_uptime: 1\nhealth_timeout: 15\n%s"
                % (self.port, self.token, scope, NEVER, extra))

    def configure(self, scope, extra=""):
        self.m.write_file("/etc/refit/refit.yml", self.config_text(scope, extra))

    def curl(self, method, path, body=None, token="__default__", max_time=30):
        return curl(method, "http://127.0.0.1:%d%s" % (self.port, path),
                    token=self.token if token == "__default__" else token, body=body,
                    max_time=max_time, workdir=self.m.dir)

    def health(self):
        r = self.curl("GET", "/health", token=None, max_time=5)
        assert r.status == 200, r.describe()
        return r.json()

    def managed(self):
        r = self.curl("GET", "/api/v1/containers")
        assert r.status == 200, r.describe()
        return {c["name"].lstrip("/") for c in r.json()["containers"]}

    def submit_update(self, names):
        r = self.curl("POST", "/api/v1/update", body={"containers": list(names)})
        assert r.status == 202, r.describe()
        return r.json()["operation"]

    def wait_op(self, op_id, timeout=90):
        last = [None]

        def done():
            last[0] = self.curl("GET", "/api/v1/operations/%s" % op_id).json()
            return last[0].get("state") in ("succeeded", "failed")
        try:
            wait_for(done, timeout, interval=0.3, what="operation %s" % op_id)
        except HarnessError:
            raise AssertionError("operation %s: %r\n%s" % (op_id, last[0], self.journal()[-4000:]))
        return last[0]

    def props(self, *names):
        return self.m.show("refit.service", *names)

    def main_pid(self):
        return int(self.props("MainPID")["MainPID"])

    def journal(self, since=None):
        return self.m.journal("refit.service", since=since)

    def dropin(self, name, text):
        self.m.write_file("%s/%s.conf" % (DROPIN_DIR, name), "[Service]\n" + text)
        self.m.systemctl("daemon-reload")

    def drop_dropins(self):
        self.m.sh("rm -rf %s && systemctl daemon-reload" % DROPIN_DIR)

    def ops_pending(self):
        return self.m.sh("ls -A %s/ops 2>/dev/null || true" % STATE_DIR).stdout.split()


@pytest.fixture(scope="module")
def service(machine):
    return Service(machine)


@pytest.fixture
def svc(service):
    """The service for one test: its drop-ins removed afterwards, and the
    daemon left running (started again when the test stopped it)."""
    yield service
    service.drop_dropins()


def running_on(name, image):
    ins = inspect(name)
    return ins is not None and ins["State"]["Running"] and ins["Image"] == image.id


def exactly_one(name):
    named = [n for _, n in list_containers(name=[name]) if n == name]
    return len(named) == 1 and not [n for _, n in list_containers(name=[name + "-refit-"])]


def wait_stop_sent(events, container_id):
    def sent():
        return any(e.get("Action") == "kill" and e.get("id", e.get("Actor", {}).get("ID")) == container_id
                   for e in events.events())
    wait_for(sent, 30, interval=0.2, what="refit to stop %s" % container_id[:12])


# --------------------------------------------------------------------------
# install, start, the API

def test_install_leaves_the_service_enabled_and_stopped(machine, deb):
    _, version = deb
    assert machine.systemctl("is-enabled", "refit", check=False).stdout.strip() == "enabled"
    assert machine.systemctl("is-active", "refit", check=False).stdout.strip() == "inactive"
    out = machine.sh("dpkg-query -W -f='${Version} ${Status}' refit").stdout
    assert out == "%s install ok installed" % version, out
    conffiles = machine.sh("dpkg-query -W -f='${Conffiles}' refit").stdout
    assert "/etc/refit/refit.yml" in conffiles, conffiles
    assert machine.sh("getent passwd refit").stdout.startswith("refit:")
    # the Depends came from Debian's packages (nothing but the .deb was given)
    for lib in ("libcurl4", "libjansson4", "libmicrohttpd12", "libyaml-0-2"):
        assert "install ok installed" in machine.sh("dpkg-query -W -f='${Status}' %s" % lib).stdout
    assert machine.sh("dpkg-query -W -f='${Status}' docker.io 2>&1 || true").stdout.find(
        "install ok installed") < 0, "Recommends were installed"


def test_enable_now_is_active_once_ready_and_health_answers(machine, svc, deb, scope):
    _, version = deb
    svc.configure(scope)
    p = machine.systemctl("enable", "--now", "refit")
    # Type=notify: `systemctl start` returned once READY=1 came, so the API answers at once
    assert machine.systemctl("is-active", "refit", check=False).stdout.strip() == "active", p
    assert svc.props("Type")["Type"] == "notify"
    h = svc.health()
    shown = machine.sh("refit version --docker-host unix:///nonexistent/sock | head -1").stdout
    assert shown.split()[1] == h.get("version"), (shown, h)
    # the package's version is the same one in Debian's form (0.2.0-3-gHASH: 0.2.0+3.gHASH)
    assert re.sub(r"[-+.~]", "", version) == re.sub(r"[-+.~]", "", h["version"]), (version, h)
    log = svc.journal()
    daemon_line = log.find("refit %s daemon" % h["version"])
    started = log.find("Started refit")
    assert 0 <= daemon_line < started, log


def test_api_update_changes_a_container_on_the_host_engine(machine, svc, scope, scoped, containers,
                                                           stale):
    v1, v2 = stale("api")
    name = containers.run(v1, labels=scoped(), hint="pkg-api")
    svc.configure(scope)
    machine.systemctl("restart", "refit")
    assert svc.managed() == {name}
    rec = svc.wait_op(svc.submit_update([name]))
    assert rec["state"] == "succeeded", rec
    assert running_on(name, v2), inspect(name)
    assert exactly_one(name)
    assert svc.ops_pending() == []


def test_start_is_ready_only_after_recovery(machine, svc, scope, scoped, containers, stale):
    """SIGKILL of the daemon in the middle of a swap leaves a journal record;
    `systemctl start` returns (READY=1) only once it is finished or undone."""
    v1, v2 = stale("recover")
    name = containers.run(v1, labels=scoped(), hint="pkg-rec", cmd=SLOW_STOP_CMD)
    old_id = inspect(name)["Id"]
    svc.configure(scope, "stop_timeout: 5\n")
    machine.systemctl("restart", "refit")
    with EngineEvents(kinds=("container",)) as events:
        svc.submit_update([name])
        wait_stop_sent(events, old_id)
    assert svc.ops_pending(), "no journal record while the swap runs"
    machine.systemctl("kill", "--kill-who=main", "--signal=SIGKILL", "refit")
    wait_for(lambda: svc.props("ActiveState")["ActiveState"] != "active", 20, interval=0.2,
             what="refit.service to leave active")
    machine.systemctl("stop", "refit")   # no automatic restart: this test starts it
    assert svc.ops_pending(), "the killed daemon left no journal record"
    cursor = machine.cursor()
    machine.systemctl("start", "refit")
    # start returned: the journal is clean and the container whole
    assert svc.ops_pending() == []
    assert exactly_one(name)
    ins = inspect(name)
    assert ins["State"]["Running"] and ins["Image"] in (v1.id, v2.id), ins["State"]
    log = svc.journal(since=cursor)
    assert re.search(r"recovered 1 interrupted operation.*\n(.*\n)*.*Started refit", log), log


# --------------------------------------------------------------------------
# reload

def test_reload_applies_a_new_configuration(machine, svc, scope, scoped, containers, base_pair,
                                            labels):
    other = scope + "-b"
    a = containers.run(base_pair[1], labels=scoped(), hint="pkg-hup-a")
    b = containers.run(base_pair[1], labels=labels({"refit.enable": "true", "refit.scope": other}),
                       hint="pkg-hup-b")
    svc.configure(scope)
    machine.systemctl("restart", "refit")
    pid = svc.main_pid()
    assert svc.managed() == {a}
    cursor = machine.cursor()
    svc.configure(other)
    p = machine.systemctl("reload", "refit", check=False)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: "configuration reloaded" in svc.journal(since=cursor), 15, interval=0.2,
             what="the reload to be logged")
    assert svc.managed() == {b}
    assert svc.main_pid() == pid


def bad_reload(machine, svc, scope):
    """Starts refit on SCOPE, writes a configuration with an unknown key and
    reloads: (the systemctl result, the daemon's PID before the reload)."""
    svc.configure(scope)
    machine.systemctl("restart", "refit")
    pid = svc.main_pid()
    svc.m.write_file("/etc/refit/refit.yml", svc.config_text(scope + "-x", "no_such_key: 1\n"))
    return machine.systemctl("reload", "refit", check=False), pid


def test_reload_of_a_bad_configuration_keeps_the_running_one(machine, svc, scope, scoped,
                                                             containers, base_pair):
    a = containers.run(base_pair[1], labels=scoped(), hint="pkg-bad")
    cursor = machine.cursor()
    _, pid = bad_reload(machine, svc, scope)
    wait_for(lambda: "keeping the running configuration" in svc.journal(since=cursor), 15,
             interval=0.2, what="the refusal to be logged")
    assert "no_such_key" in svc.journal(since=cursor)
    assert svc.props("ActiveState")["ActiveState"] == "active"
    assert svc.main_pid() == pid
    svc.health()
    assert svc.managed() == {a}


@pytest.mark.xfail(not RELOAD_REFUSAL_FAILS_JOB, strict=True,
                   reason="ExecReload= sends SIGHUP and returns: a refused configuration is logged "
                          "but `systemctl reload` succeeds (set RELOAD_REFUSAL_FAILS_JOB once the "
                          "reload job waits for the daemon's answer)")
def test_reload_of_a_bad_configuration_fails_the_job(machine, svc, scope):
    p, _ = bad_reload(machine, svc, scope)
    assert p.returncode != 0, "systemctl reload succeeded on a refused configuration"


# --------------------------------------------------------------------------
# stop, watchdog

def test_stop_during_a_swap_waits_for_it(machine, svc, scope, scoped, containers, stale):
    v1, v2 = stale("stop")
    name = containers.run(v1, labels=scoped(), hint="pkg-stop", cmd=SLOW_STOP_CMD)
    old_id = inspect(name)["Id"]
    svc.configure(scope, "stop_timeout: 5\n")
    machine.systemctl("restart", "refit")
    with EngineEvents(kinds=("container",)) as events:
        svc.submit_update([name])
        wait_stop_sent(events, old_id)
        t0 = time.monotonic()
    cursor = machine.cursor()
    assert inspect(old_id)["State"]["Running"], "the slow container stopped at once"
    machine.systemctl("stop", "refit", timeout=300)
    waited = time.monotonic() - t0
    props = svc.props("ActiveState", "Result")
    assert props == {"ActiveState": "inactive", "Result": "success"}, props
    assert waited >= 3, "systemctl stop returned after %.1f s, before the swap could end" % waited
    log = svc.journal(since=cursor)
    assert "finishing the swaps in progress" in log, log
    assert re.search(r"%s: (updated|rolled-back)" % re.escape(name), log), log
    assert not re.search(r"(?i)killing|timed out|SIGKILL", log), log
    assert svc.ops_pending() == []
    assert exactly_one(name)
    ins = inspect(name)
    assert ins["State"]["Running"] and ins["Image"] in (v1.id, v2.id), ins["State"]
    machine.systemctl("start", "refit")


def test_short_watchdog_never_kills_an_idle_or_busy_daemon(machine, svc, scope, scoped, containers,
                                                           stale):
    v1, v2 = stale("dog")
    name = containers.run(v1, labels=scoped(), hint="pkg-dog", cmd=SLOW_STOP_CMD)
    svc.dropin("watchdog", "WatchdogSec=2s\n")
    svc.configure(scope, "stop_timeout: 6\n")
    machine.systemctl("restart", "refit")
    assert svc.props("WatchdogUSec")["WatchdogUSec"] in ("2s", "2000000")
    pid = svc.main_pid()
    restarts = svc.props("NRestarts")["NRestarts"]
    cursor = machine.cursor()
    time.sleep(7)                                   # idle: three and a half periods
    assert svc.main_pid() == pid
    rec = svc.wait_op(svc.submit_update([name]))    # busy: a swap of 6 s and more
    assert rec["state"] == "succeeded", rec
    assert running_on(name, v2)
    props = svc.props("MainPID", "NRestarts", "ActiveState")
    assert props == {"MainPID": str(pid), "NRestarts": restarts, "ActiveState": "active"}, props
    log = svc.journal(since=cursor)
    assert "atchdog" not in log, log


# --------------------------------------------------------------------------
# User=refit

def test_user_refit_drop_in_reaches_the_socket_through_its_group(machine, svc, scope, scoped,
                                                                 containers, stale):
    v1, v2 = stale("user")
    name = containers.run(v1, labels=scoped(), hint="pkg-user")
    svc.dropin("user", "User=refit\n")
    svc.configure(scope)
    machine.systemctl("restart", "refit")
    pid = svc.main_pid()
    status = machine.sh("cat /proc/%d/status" % pid).stdout
    uid = machine.sh("id -u refit").stdout.strip()
    assert re.search(r"^Uid:\s+%s\s" % uid, status, re.M), status
    groups = re.search(r"^Groups:\s*(.*)$", status, re.M).group(1).split()
    assert str(systemdhost.socket_gid()) in groups, groups
    assert machine.sh("stat -c %%U %s" % STATE_DIR).stdout.strip() == "refit"
    svc.health()
    rec = svc.wait_op(svc.submit_update([name]))
    assert rec["state"] == "succeeded", rec
    assert running_on(name, v2)
    svc.drop_dropins()
    machine.systemctl("restart", "refit")
    assert machine.sh("cat /proc/%d/status" % svc.main_pid()).stdout.find("Uid:\t0\t") >= 0


# --------------------------------------------------------------------------
# the journal, purge

def test_journal_shows_no_hardening_refusals(machine, svc):
    """The unit's sandbox never got in refit's way: no process of it killed
    by the system-call filter (SIGSYS), nothing refused by the read-only
    file system or permissions, in all that the tests above made it do."""
    refit_log = machine.journal("refit.service")
    assert re.search(r"refit \S+ daemon", refit_log), refit_log[-2000:]
    bad = [line for line in refit_log.splitlines()
           if re.search(r"SIGSYS|status=31/SYS|Bad system call|EROFS|Read-only file system|EACCES|"
                        r"Permission denied|Operation not permitted", line)]
    assert not bad, "\n".join(bad)


def test_purge_removes_what_install_added(machine, svc):
    machine.systemctl("stop", "refit")
    machine.sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq --autoremove refit", timeout=300)
    after = machine.sh(SNAPSHOT).stdout.splitlines()
    added = sorted(set(after) - set(machine.before))
    removed = sorted(set(machine.before) - set(after))
    assert added == [] and removed == [], "added %r\nremoved %r" % (added, removed)
    assert machine.sh("getent passwd refit; getent group refit", check=False).stdout == ""
    assert "could not be found" in machine.systemctl("status", "refit", check=False).stderr

