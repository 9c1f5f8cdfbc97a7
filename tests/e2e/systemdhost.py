"""A Debian 12 machine with systemd as PID 1, in a container of the shared
engine, for testing the Debian package the way it is installed.

The root file system is made by `mmdebstrap --variant=minbase` from the
machine's own Debian mirror (its apt sources, read only) and cached as a
tarball under build/systemdhost/; `docker import` turns it into an image
labelled with the run id, removed again by remove().  The container shares
the host's network namespace (the machine's mirror, the test registries and
the daemon's API on 127.0.0.1 are reachable from both sides) and has the
host's Docker socket bind-mounted: what refit does inside happens on the
host's engine.

    host = SystemdHost(run_id, workdir)
    host.boot()                      # waits for `systemctl is-system-running`
    host.sh("apt-get install -y ./refit.deb")
    host.systemctl("enable", "--now", "refit")
    host.remove()

Boot options.  The brief of such a test is `docker run --privileged`; this
engine runs with a capability bounding set that lacks CAP_SYS_RESOURCE, so
a privileged container (every capability) cannot be created ("unable to
apply caps").  The container gets every capability the engine has
(`--cap-add ALL`, with `--cap-drop` of those the bounding set lacks where the
engine's ALL still names them: missing_caps()) but those that act on the whole
host (HOST_WIDE_CAPS: the network is the host's), no seccomp or AppArmor profile,
its own cgroup namespace and tmpfs on /run and /run/lock: what systemd
needs to boot.

The image has no dockerd and must not start one: the unit docker.service
is replaced by a oneshot that only checks that the bind-mounted socket
answers GET /_ping (refit.service Requires= it), and the `docker` group is
made with the GID of the host socket's group, as docker.io would on a
real machine.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import time

import debpkg
from harness import DOCKER, DOCKER_SOCK, RUN_LABEL, HarnessError, docker, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.path.join(os.environ.get("REFIT_BUILD_DIR") or os.path.join(REPO_ROOT, "build"),
                         "systemdhost")
SUITE = "bookworm"
# systemd and D-Bus for systemctl; curl for the stub docker.service and
# for talking to the API from inside; procps for ps.
INCLUDE = ("systemd", "systemd-sysv", "dbus", "curl", "ca-certificates", "procps")

# The engine's socket, checked by the stand-in for docker.service.
DOCKER_STUB_UNIT = """\
[Unit]
Description=Docker engine of the host (its socket is bind-mounted; no dockerd here)

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/curl -sSf --max-time 5 --unix-socket /var/run/docker.sock http://docker/_ping

[Install]
WantedBy=multi-user.target
"""


# Capabilities whose effect reaches past the container, which shares the
# host's network namespace and kernel: none of them is needed to boot
# systemd or run refit.service, and without them nothing in the container
# can change the host's interfaces (docker0), clock or kernel modules.
HOST_WIDE_CAPS = ("NET_ADMIN", "SYS_TIME", "SYS_MODULE", "SYS_RAWIO", "SYSLOG", "WAKE_ALARM",
                  "MAC_ADMIN", "MAC_OVERRIDE")

# Linux capabilities by number (capability.h), for reading a bounding set.
CAP_NAMES = ("CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
             "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
             "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
             "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
             "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
             "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
             "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE")


def missing_caps():
    """The capabilities this host's bounding set lacks (SYS_RESOURCE on this
    machine and in CI): dockerd 20.10's `--cap-add ALL` names them and then
    cannot apply them, so they are dropped again there."""
    try:
        with open("/proc/self/status") as f:
            bnd = int([l.split()[1] for l in f if l.startswith("CapBnd:")][0], 16)
    except (OSError, IndexError, ValueError):
        return ["SYS_RESOURCE"]
    return [name for bit, name in enumerate(CAP_NAMES) if not bnd >> bit & 1]


class Unavailable(Exception):
    """The machine cannot provide a systemd container (the reason says why)."""


def _mmdebstrap_sources():
    """apt lines for mmdebstrap: the machine's main mirror, SUITE and its updates."""
    try:
        uri = debpkg.machine_mirror()
    except debpkg.DebError as exc:
        raise Unavailable(str(exc))
    return ["deb %s %s main" % (uri, s) for s in (SUITE, SUITE + "-updates")]


def rootfs_tarball():
    """The cached mmdebstrap tarball (made when missing; about 30 s).  One
    builder at a time (a lock file); the name carries a hash of the
    package list and sources, so a change makes a new one."""
    if not shutil.which("mmdebstrap"):
        raise Unavailable("mmdebstrap is not installed (make deps-pkg installs it)")
    sources = _mmdebstrap_sources()
    key = hashlib.sha256(("\n".join(INCLUDE + tuple(sources))).encode()).hexdigest()[:12]
    os.makedirs(BUILD_DIR, exist_ok=True)
    path = os.path.join(BUILD_DIR, "debian12-systemd-%s.tar" % key)
    with open(os.path.join(BUILD_DIR, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(path):
            return path
        tmp = path + ".tmp"
        cmd = ["mmdebstrap", "--variant=minbase", "--format=tar", "--include=" + ",".join(INCLUDE),
               SUITE, tmp] + sources
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                           stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise Unavailable("mmdebstrap failed (rc=%d): %s" % (p.returncode,
                                                                (p.stderr or p.stdout)[-1500:]))
        os.replace(tmp, path)
    return path


def socket_gid(path=DOCKER_SOCK):
    return os.stat(path).st_gid


class SystemdHost:
    def __init__(self, run_id, workdir, hint="systemd"):
        self.run_id = run_id
        self.dir = str(workdir)
        self.name = "refit-e2e-%s-%s" % (run_id, hint)
        self.image = "refit-e2e-%s-%s:latest" % (run_id, hint)
        self.imported = False
        self.started = False

    def import_image(self):
        tar = rootfs_tarball()
        p = subprocess.run([DOCKER, "import", "--change", "LABEL %s=%s" % (RUN_LABEL, self.run_id),
                            "--change", 'CMD ["/sbin/init"]', tar, self.image],
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise Unavailable("docker import of %s failed: %s" % (tar, p.stderr.strip()[-800:]))
        self.imported = True

    def boot(self, mounts=(), timeout=90):
        """Import (when not yet), start the container and wait until systemd
        says the system is running; then the docker.service stand-in and the
        docker group.  mounts: (host path, container path[, "ro"]) triples."""
        if not self.imported:
            self.import_image()
        args = [DOCKER, "run", "-d", "--name", self.name, "--label", "%s=%s" % (RUN_LABEL, self.run_id),
                "--cap-add", "ALL"] + \
               [x for cap in HOST_WIDE_CAPS for x in ("--cap-drop", cap)] + [
                "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                "--cgroupns=private", "--network", "host", "--hostname", "refit-systemd-test",
                "--tmpfs", "/run", "--tmpfs", "/run/lock",
                "-v", "%s:/var/run/docker.sock" % DOCKER_SOCK]
        for m in mounts:
            args += ["-v", ":".join(m)]
        args += [self.image, "/sbin/init"]
        # dockerd 20.10's ALL is every capability it knows, so those missing here
        # are dropped; dockerd 26's ALL is the bounding set's and it refuses to
        # drop one it lacks ("invalid CapDrop"): then it is asked without them.
        drops = [x for cap in missing_caps() for x in ("--cap-drop", cap)]
        p = subprocess.run(args[:-2] + drops + args[-2:], capture_output=True, text=True, timeout=120)
        if p.returncode != 0 and drops and "invalid CapDrop" in p.stderr:
            docker("rm", "-f", self.name, check=False)
            p = subprocess.run(args, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            # the engine refused to create it (nothing of ours runs)
            docker("rm", "-f", self.name, check=False)
            raise Unavailable("the engine cannot start a systemd container: %s" % p.stderr.strip()[-800:])
        self.started = True
        state = [None]

        def up():
            r = self.sh("systemctl is-system-running", check=False, timeout=10)
            state[0] = r.stdout.strip()
            return state[0] in ("running", "degraded")
        try:
            wait_for(up, timeout, interval=0.5, what="systemd to boot")
        except HarnessError:
            raise HarnessError("systemd did not come up (%s)\n%s" % (state[0], self.logs()))
        self.write_file("/etc/systemd/system/docker.service", DOCKER_STUB_UNIT)
        self.sh("groupadd --system --gid %d docker && systemctl daemon-reload && "
                "systemctl enable --now docker.service" % socket_gid())
        return self

    # ---- inside
    def sh(self, script, check=True, timeout=120, user=None):
        """Runs SCRIPT with /bin/sh -c in the container; a CompletedProcess."""
        args = [DOCKER, "exec"] + (["-u", user] if user else []) + [self.name, "/bin/sh", "-c", script]
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise HarnessError("in %s (rc=%d): %s\nstdout:\n%s\nstderr:\n%s"
                               % (self.name, p.returncode, script, p.stdout[-3000:], p.stderr[-3000:]))
        return p

    def systemctl(self, *args, check=True, timeout=120):
        return self.sh("systemctl --no-pager " + " ".join(args), check=check, timeout=timeout)

    def show(self, unit, *props):
        """{property: value} of `systemctl show UNIT -p ...`."""
        out = self.systemctl("show", unit, *["-p " + p for p in props]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def write_file(self, path, text, mode=0o644):
        """Writes TEXT to PATH inside (through a file under workdir and docker cp)."""
        local = os.path.join(self.dir, "cp-%d" % time.monotonic_ns())
        with open(local, "w") as f:
            f.write(text)
        os.chmod(local, mode)
        self.sh("mkdir -p '%s'" % os.path.dirname(path))
        docker("cp", local, "%s:%s" % (self.name, path))
        self.sh("chown root:root '%s'" % path)
        os.unlink(local)

    def cursor(self):
        """The journal's current cursor (for journal(since=))."""
        out = self.sh("journalctl -n 0 --show-cursor --no-pager").stdout
        for line in out.splitlines():
            if line.startswith("-- cursor: "):
                return line[len("-- cursor: "):].strip()
        return None

    def journal(self, unit=None, since=None):
        """The journal's text (short-monotonic form), of UNIT alone when given,
        after the cursor SINCE when given."""
        cmd = "journalctl --no-pager -o short-monotonic"
        if unit:
            cmd += " -u %s" % unit
        if since:
            cmd += " --after-cursor '%s'" % since
        return self.sh(cmd).stdout

    def logs(self):
        return docker("logs", "--tail", "60", self.name, check=False)

    def remove(self):
        if self.started:
            docker("rm", "-f", "-v", self.name, check=False)
            self.started = False
        if self.imported:
            docker("rmi", self.image, check=False)
            self.imported = False
