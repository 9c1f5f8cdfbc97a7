"""A private dockerd for the end-to-end tests: its own socket, data root,
exec root and pidfile, on a bridge the test makes with `ip link` (never
`--bridge none`, which deletes the host's docker0)."""

import os
import shutil
import signal
import subprocess
import json

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
