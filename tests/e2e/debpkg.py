"""Debian packages of another release, unpacked under the build directory.

A private apt configuration (its own sources list, lists, cache and status,
all under build/debpkg/) that takes the machine's own mirrors from
/etc/apt/sources.list.d/debian.sources (or sources.list) with the suite
renamed, so the machine's apt sources are never changed.  `apt-get
download` fetches a package, `dpkg -x` unpacks it under
build/debpkg/root/<package>_<version>/; both are skipped when already done.

    python3 tests/e2e/debpkg.py fetch trixie docker.io docker-compose containerd
    python3 tests/e2e/debpkg.py path trixie docker-compose   # prints the unpacked root
    python3 tests/e2e/debpkg.py mirror     # the machine's Debian mirror (make image, systemdhost.py)
"""

import glob
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
BASE = os.path.join(os.environ.get("REFIT_BUILD_DIR") or os.path.join(REPO_ROOT, "build"), "debpkg")
LIST_MAX_AGE = 7 * 86400   # seconds before the package lists are read again


class DebError(Exception):
    pass


def _machine_mirrors():
    """(uri, signed_by) pairs of the machine's main Debian archive entries."""
    out = []
    deb822 = "/etc/apt/sources.list.d/debian.sources"
    if os.path.exists(deb822):
        with open(deb822) as f:
            for stanza in f.read().split("\n\n"):
                fields = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.startswith("#"):
                        k, v = line.split(":", 1)
                        fields[k.strip()] = v.strip()
                suites = fields.get("Suites", "").split()
                if fields.get("Types", "").split()[:1] == ["deb"] and any(
                        not re.search(r"-(security|updates|backports)$", s) for s in suites):
                    for uri in fields.get("URIs", "").split():
                        out.append((uri, None))
    if not out and os.path.exists("/etc/apt/sources.list"):
        with open("/etc/apt/sources.list") as f:
            for line in f:
                m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)\s", line)
                if m and not re.search(r"-(security|updates|backports)$", m.group(2)):
                    out.append((m.group(1), None))
    if not out:
        raise DebError("no Debian mirror in the machine's apt sources")
    return out[:1]


def machine_mirror():
    """The URI of the machine's main Debian archive (its apt sources, read only)."""
    return _machine_mirrors()[0][0]


def _apt_opts(suite):
    d = os.path.join(BASE, suite)
    return d, ["-o", "Dir::Etc::sourcelist=" + os.path.join(d, "sources.list"),
               "-o", "Dir::Etc::sourceparts=-",
               "-o", "Dir::State=" + os.path.join(d, "state"),
               "-o", "Dir::State::status=" + os.path.join(d, "state", "status"),
               "-o", "Dir::Cache=" + os.path.join(d, "cache"),
               "-o", "APT::Default-Release=" + suite,
               "-o", "Debug::NoLocking=1"]


def _run(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise DebError("%s: %s" % (" ".join(cmd[:3]), (p.stderr or p.stdout)[-1500:]))
    return p.stdout


def update(suite):
    """Write the private sources list for SUITE and read its package lists (at most weekly)."""
    d, opts = _apt_opts(suite)
    for sub in ("state/lists/partial", "cache/archives/partial", "debs"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    status = os.path.join(d, "state", "status")
    if not os.path.exists(status):
        open(status, "w").close()
    sources = os.path.join(d, "sources.list")
    text = "".join("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n"
                   % (uri, suite) for uri, _ in _machine_mirrors())
    stamp = os.path.join(d, "updated")
    old = open(sources).read() if os.path.exists(sources) else None
    if old != text:
        with open(sources, "w") as f:
            f.write(text)
    import time
    if old == text and os.path.exists(stamp) and time.time() - os.path.getmtime(stamp) < LIST_MAX_AGE \
            and glob.glob(os.path.join(d, "state", "lists", "*Packages*")):
        return
    _run(["apt-get"] + opts + ["-qq", "update"])
    open(stamp, "w").close()


def unpacked(suite, package):
    """The directory PACKAGE of SUITE is unpacked in, or None when not fetched yet."""
    hits = sorted(glob.glob(os.path.join(BASE, suite, "root", package + "_*", ".done")))
    return os.path.dirname(hits[-1]) if hits else None


def fetch(suite, package):
    """Download and unpack PACKAGE of SUITE (once); returns the unpacked root.
    Two fetches at once (xdist workers, or .ci/run's two suites, which share
    build/) take turns on a lock, so the second finds the package unpacked
    rather than unpacking it again under the first one's feet."""
    have = unpacked(suite, package)
    if have:
        return have
    import fcntl
    os.makedirs(BASE, exist_ok=True)
    with open(os.path.join(BASE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return unpacked(suite, package) or _fetch(suite, package)


def _fetch(suite, package):
    update(suite)
    d, opts = _apt_opts(suite)
    debs = os.path.join(d, "debs")
    _run(["apt-get"] + opts + ["-qq", "download", "%s/%s" % (package, suite)], cwd=debs)
    found = sorted(glob.glob(os.path.join(debs, package + "_*.deb")))
    if not found:
        raise DebError("apt-get download %s/%s left no .deb" % (package, suite))
    deb = found[-1]
    version = os.path.basename(deb)[len(package) + 1:-len(".deb")]
    root = os.path.join(d, "root", "%s_%s" % (package, version))
    os.makedirs(root, exist_ok=True)
    _run(["dpkg", "-x", deb, root])
    open(os.path.join(root, ".done"), "w").close()
    return root


def main(argv):
    if argv == ["mirror"]:
        try:
            print(machine_mirror())
        except DebError as exc:
            sys.stderr.write("debpkg: %s\n" % exc)
            return 1
        return 0
    if len(argv) < 3 or argv[0] not in ("fetch", "path"):
        sys.stderr.write(__doc__)
        return 2
    suite = argv[1]
    for pkg in argv[2:]:
        try:
            root = fetch(suite, pkg) if argv[0] == "fetch" else unpacked(suite, pkg)
        except DebError as exc:
            sys.stderr.write("debpkg: %s\n" % exc)
            return 1
        if not root:
            sys.stderr.write("debpkg: %s/%s is not fetched\n" % (pkg, suite))
            return 1
        print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
