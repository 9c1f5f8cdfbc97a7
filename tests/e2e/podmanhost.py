"""Podman's Docker-compatible API as refit's engine, for test_podman.py.

`podman system service --time=0 unix://ROOT/podman.sock` (it needs no
systemd) on a store of the test's own: graph root, run root, volumes,
networks and temporary files all under ROOT, named by containers.conf and
storage.conf files handed to it in CONTAINERS_CONF and
CONTAINERS_STORAGE_CONF, so the machine's own Podman store (if any) is never
touched.  The settings the sandbox needs:

- `default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]`: without them
  runc cannot set Podman's default rlimits here;
- a registries.conf (CONTAINERS_REGISTRIES_CONF) that marks the test
  registries on 127.0.0.1 insecure (plain HTTP);
- netavark with aardvark-dns (Debian's packages), whose networks resolve
  aliases (CNI without the dnsname plugin has no DNS at all), on an address
  pool free on this host (engines.pick_pool);
- `cgroup_manager = "cgroupfs"` and `events_logger = "file"`: no systemd.

Podman runs HEALTHCHECKs from systemd timers, which do not exist without
systemd as PID 1: a container's health stays `starting`, so the tests gate
on `running` (no HEALTHCHECK) or an HTTP probe.  The podman CLI is run on
the same store (same environment) to make the containers, as a Podman user
would; refit only ever talks to the socket.
"""

import json
import os
import shutil
import signal
import socket
import subprocess

import engines
from harness import HarnessError, wait_for


class Unavailable(Exception):
    pass


def _ping(sock):
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect(sock)
        s.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
        data = s.recv(256)
        s.close()
        return data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0]
    except OSError:
        return False


class Podman:
    def __init__(self, run_id):
        for tool in ("podman", "netavark", "conmon"):
            if not shutil.which(tool) and not os.path.exists("/usr/lib/podman/" + tool):
                raise Unavailable("%s is not installed (make deps installs podman, netavark, aardvark-dns)" % tool)
        self.run_id = run_id
        # short: the socket's path must fit in sun_path
        self.root = "/tmp/refit-e2e-podman-%s" % run_id
        self.sock = os.path.join(self.root, "podman.sock")
        self.pool = engines.pick_pool("podman-" + run_id)
        self.proc = None

    @property
    def docker_host(self):
        return "unix://" + self.sock

    def env(self):
        e = dict(os.environ)
        e.pop("DOCKER_HOST", None)
        e.update(CONTAINERS_CONF=os.path.join(self.root, "containers.conf"),
                 CONTAINERS_STORAGE_CONF=os.path.join(self.root, "storage.conf"),
                 CONTAINERS_REGISTRIES_CONF=os.path.join(self.root, "registries.conf"))
        return e

    def start(self):
        os.makedirs(self.root, exist_ok=True)
        r = self.root
        with open(os.path.join(r, "storage.conf"), "w") as f:
            f.write('[storage]\ndriver = "overlay"\ngraphroot = "%s/storage"\nrunroot = "%s/run"\n' % (r, r))
        with open(os.path.join(r, "containers.conf"), "w") as f:
            f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
                    '[engine]\ntmp_dir = "%s/tmp"\nstatic_dir = "%s/libpod"\nvolume_path = "%s/volumes"\n'
                    'events_logger = "file"\ncgroup_manager = "cgroupfs"\n'
                    '[network]\nnetwork_backend = "netavark"\nnetwork_config_dir = "%s/networks"\n'
                    'default_network = "refit-e2e-%s"\ndefault_subnet = "10.%d.0.0/24"\n'
                    % (r, r, r, r, self.run_id, self.pool))
        with open(os.path.join(r, "registries.conf"), "w") as f:
            f.write('unqualified-search-registries = []\n[[registry]]\nlocation = "127.0.0.1"\ninsecure = true\n')
        self.log = open(os.path.join(r, "service.log"), "w")
        self.proc = subprocess.Popen(["podman", "system", "service", "--time=0", self.docker_host],
                                     env=self.env(), stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            wait_for(lambda: self.proc.poll() is None and _ping(self.sock), 30, 0.2, "podman's socket")
        except HarnessError:
            self.stop()
            raise
        return self

    def cli(self, *args, check=True, timeout=120):
        p = subprocess.run(["podman"] + [str(a) for a in args], env=self.env(), capture_output=True,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise HarnessError("podman %s: rc=%d\n%s%s" % (" ".join(map(str, args)), p.returncode,
                                                             p.stdout, p.stderr))
        return p.stdout

    def inspect(self, name):
        p = subprocess.run(["podman", "container", "inspect", name], env=self.env(), capture_output=True,
                           text=True, timeout=60)
        if p.returncode != 0:
            return None
        return json.loads(p.stdout)[0]

    def names(self):
        return sorted(self.cli("ps", "-a", "--format", "{{.Names}}").split())

    def stop(self):
        """Everything of the store removed, the service stopped, ROOT gone."""
        try:
            if self.proc and self.proc.poll() is None:
                self.cli("rm", "-a", "-f", "-v", "-t", "0", check=False, timeout=120)
                self.cli("pod", "rm", "-a", "-f", check=False)
                self.cli("network", "prune", "-f", check=False)
                self.cli("volume", "prune", "-f", check=False)
            self.cli("system", "reset", "-f", check=False, timeout=120)
        finally:
            if self.proc and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(5)
            if getattr(self, "log", None):
                self.log.close()
            subprocess.run(["sh", "-c", "grep ' %s/' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r umount -l"
                            % self.root], check=False)
            shutil.rmtree(self.root, ignore_errors=True)
