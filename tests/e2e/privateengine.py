"""A private dockerd for the end-to-end tests: its own socket, data root,
exec root, pidfile and daemon.json, on a bridge, address pool and FORWARD
chain of its own (engines.Network), of the run's engine kind (E2E_ENGINE:
the dockerd that kind names, never just whatever `dockerd` is on PATH)."""

import json
import os
import signal
import subprocess
import time
import uuid

import pytest

import engines
from harness import DOCKER, HarnessError, wait_for


HOST_BRIDGE = "docker0"


def _host_bridge_up():
    """True when the machine's engine's bridge exists (a private engine must never delete it)."""
    return subprocess.run(["ip", "link", "show", HOST_BRIDGE], capture_output=True).returncode == 0


class PrivateEngine:
    """A dockerd of KIND (engines.Kind) on its own socket, data root and exec
    root, with NETWORK (engines.Network) for its bridge and pool."""

    def __init__(self, root, network, kind):
        self.root = root
        self.network = network
        self.bridge = network.bridge
        self.kind = kind
        self.sock = os.path.join(root, "docker.sock")
        self.log = os.path.join(root, "dockerd.log")
        self.pidfile = os.path.join(root, "pid")
        self.proc = None
        os.makedirs(root, exist_ok=True)

    def _clear_stale(self):
        """Pid files of a killed engine whose PIDs name other processes by now:
        dockerd would refuse the first and adopt a stranger as its containerd."""
        for path, comm in ((self.pidfile, "dockerd"),
                           (os.path.join(self.root, "exec", "containerd", "containerd.pid"), "containerd")):
            try:
                with open(path) as f:
                    pid = int(f.read().strip() or 0)
                with open("/proc/%d/comm" % pid) as f:
                    if f.read().strip() == comm:
                        continue
            except (OSError, ValueError):
                pass
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def start(self, timeout=60, detached=False):
        """Start dockerd and wait until it answers.  DETACHED: not a child this
        process waits for (the run's engine outlives the session that started it)."""
        self._clear_stale()
        host_bridge = _host_bridge_up()
        config = os.path.join(self.root, "daemon.json")
        with open(config, "w") as f:      # never the machine's /etc/docker/daemon.json
            json.dump(self.kind.daemon_json, f)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.kind.dockerd, "--host", "unix://" + self.sock, "--config-file", config,
                 "--data-root", os.path.join(self.root, "data"),
                 "--exec-root", os.path.join(self.root, "exec"), "--pidfile", self.pidfile]
                + self.network.dockerd_args(),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env=self.kind.env())
        try:
            wait_for(lambda: self.proc.poll() is None and self.docker("version", check=False).returncode == 0,
                     timeout, interval=0.3, what="the private dockerd %s" % self.kind.name)
        except HarnessError as exc:
            raise HarnessError("%s; the end of %s:\n%s" % (exc, self.log, self.log_tail()))
        if host_bridge and not _host_bridge_up():
            raise HarnessError("the private dockerd %s deleted the host's %s (a flag of dockerd_args?); "
                               "remake it: ip link add %s type bridge && ip addr add 172.17.0.1/16 dev %s "
                               "&& ip link set %s up" % ((self.kind.name,) + (HOST_BRIDGE,) * 4))
        if detached:
            self.proc = None

    def log_tail(self, lines=15):
        try:
            with open(self.log, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError as exc:
            return "(no log: %s)" % exc

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def stop_by_pidfile(self, timeout=60):
        """Stop the dockerd named by the pidfile (one this process did not start)."""
        try:
            with open(self.pidfile) as f:
                pid = int(f.read().strip() or 0)
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() != "dockerd":
                    return
        except (OSError, ValueError):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and os.path.exists("/proc/%d" % pid):
            time.sleep(0.2)
        if os.path.exists("/proc/%d" % pid):
            os.kill(pid, signal.SIGKILL)

    def docker(self, *args, check=True, input=None, timeout=120):
        p = subprocess.run([DOCKER, "-H", "unix://" + self.sock] + list(args), capture_output=True,
                           input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise HarnessError("docker -H %s %s: %s" % (self.sock, " ".join(args), p.stderr.decode()[-2000:]))
        return p

    def inspect(self, name):
        return json.loads(self.docker("inspect", name).stdout)[0]

    def names(self):
        out = self.docker("ps", "-a", "--format", "{{.Names}}").stdout.decode()
        return sorted(out.split())


def private_engine(name):
    """Generator for a fixture: a started PrivateEngine of the run's kind under
    /tmp/refit-e2e-NAME-<tag> on a bridge, pool and chain of its own; at the
    end every container of it removed, dockerd stopped, its directories,
    bridge and chain gone.  Skips where a private dockerd cannot run (not
    root, no bridge)."""
    if os.geteuid() != 0:
        pytest.skip("a private dockerd needs root")
    tag = uuid.uuid4().hex[:8]
    root = os.path.join("/tmp", "refit-e2e-%s-%s" % (name, tag))
    try:
        kind = engines.kind()
        net = engines.Network(tag, engines.pick_pool())
        net.up()
    except engines.EngineError as exc:
        pytest.skip("cannot make a private dockerd's network: %s" % exc)
    e = PrivateEngine(root, net, kind)
    try:
        e.start()
    except HarnessError as exc:
        e.stop()
        net.down()
        pytest.skip("cannot start a private dockerd (%s): %s" % (kind.name, exc))
    try:
        yield e
    finally:
        try:
            if e.proc is None:
                e.start()
            ids = e.docker("ps", "-aq", check=False).stdout.decode().split()
            if ids:
                e.docker("rm", "-f", "-v", *ids, check=False)
        finally:
            e.stop()
            subprocess.run(["rm", "-rf", root], capture_output=True)
            net.down()
