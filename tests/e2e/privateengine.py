"""A private dockerd for the end-to-end tests: its own socket, data root,
exec root and pidfile, on a bridge the test makes with `ip link` (never
`--bridge none`, which deletes the host's docker0)."""

import json
import os
import random
import shutil
import signal
import subprocess
import uuid

import pytest

from harness import HarnessError, wait_for

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
DOCKER = shutil.which("docker") or "/usr/bin/docker"


class PrivateEngine:
    """A dockerd on its own socket, data root and exec root."""

    def __init__(self, root, bridge):
        self.root = root
        self.bridge = bridge
        self.sock = os.path.join(root, "docker.sock")
        self.log = os.path.join(root, "dockerd.log")
        self.proc = None
        os.makedirs(root, exist_ok=True)

    def start(self, timeout=60):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [DOCKERD, "--host", "unix://" + self.sock, "--data-root", os.path.join(self.root, "data"),
                 "--exec-root", os.path.join(self.root, "exec"), "--pidfile", os.path.join(self.root, "pid"),
                 "--bridge", self.bridge, "--iptables=false", "--ip-masq=false", "--ip-forward=false"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: self.proc.poll() is None and self.docker("version", check=False).returncode == 0,
                 timeout, interval=0.3, what="the private dockerd")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

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
    """Generator for a fixture: a started PrivateEngine under
    /tmp/refit-e2e-NAME-<tag> on a bridge made here with `ip link`; at the
    end every container of it removed, dockerd stopped, its directories and
    its bridge gone.  Skips where a private dockerd cannot run (not root, no
    bridge)."""
    if os.geteuid() != 0:
        pytest.skip("a private dockerd needs root")
    tag = uuid.uuid4().hex[:8]
    root = os.path.join("/tmp", "refit-e2e-%s-%s" % (name, tag))
    bridge = "refit" + tag
    subnet = "10.%d.%d" % (random.randint(100, 250), random.randint(0, 255))
    made = subprocess.run("ip link add %s type bridge && ip addr add %s.1/24 dev %s && ip link set %s up"
                          % (bridge, subnet, bridge, bridge), shell=True, capture_output=True, text=True)
    if made.returncode != 0:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        pytest.skip("cannot make a bridge for a private dockerd: %s" % made.stderr.strip())
    e = PrivateEngine(root, bridge)
    try:
        e.start()
    except HarnessError as exc:
        e.stop()
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        pytest.skip("cannot start a private dockerd: %s" % exc)
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
            subprocess.run(["ip", "link", "del", bridge], capture_output=True)
