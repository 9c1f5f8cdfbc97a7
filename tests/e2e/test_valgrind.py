"""refit under valgrind's memcheck: one update pass that swaps a container,
and a daemon that answers its API and stops on SIGTERM. Any memory error,
and any definite or indirect leak at exit, makes valgrind exit 99.

The unit tests get the same treatment from `make valgrind`. A binary built
with AddressSanitizer cannot run under valgrind: for the sanitizer suite
these tests are skipped (LeakSanitizer checks leaks there at every exit).
"""

import os
import shutil
import stat

import pytest

from daemontools import Daemon
from swaptools import history, inspect, serving, update
from swaptools import common_pairs, swap_images, swapenv  # noqa: F401 (fixtures)
from harness import Refit

VALGRIND = shutil.which("valgrind")
ERROR_EXIT = 99


def sanitized(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


@pytest.fixture
def memcheck(refit_bin, tmp_path):
    """A wrapper that runs the refit under test in valgrind's memcheck."""
    if not VALGRIND:
        pytest.skip("valgrind is not installed (make deps installs it)")
    if sanitized(refit_bin):
        pytest.skip("an AddressSanitizer build does not run under valgrind")
    path = os.path.join(str(tmp_path), "refit-memcheck")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec %s -q --error-exitcode=%d --leak-check=full "
                "--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect "
                "--track-fds=no %s \"$@\"\n" % (VALGRIND, ERROR_EXIT, refit_bin))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def test_update_pass_is_memcheck_clean(memcheck, tmp_path, scope, swapenv, common_pairs,
                                       swap_images):
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    name = swapenv.run(v1, swapenv.managed(), hint="vg")
    refit = Refit(memcheck, os.path.join(str(tmp_path), "vg"))
    res = update(refit, scope, timeout=300)
    assert res.rc == 0, "exit %d (%d means valgrind found errors or leaks)\n%s" % (
        res.rc, ERROR_EXIT, res.describe())
    assert res[name].get("status") == "updated", res.describe()
    ins = inspect(name)
    assert ins["Image"] == v2.id
    # the replacement carries the operation that made it (what an undo goes by)
    recs = [r for r in history(refit, name) if r.get("outcome") == "updated"]
    assert recs and ins["Config"]["Labels"].get("refit.operation") == recs[-1]["id"], (
        ins["Config"]["Labels"], recs)
    assert serving(name) == "good v2"


def test_daemon_is_memcheck_clean(memcheck, tmp_path, scope):
    d = Daemon(memcheck, os.path.join(str(tmp_path), "vgd"), scope=scope)
    try:
        d.start(timeout=120)
        assert d.get_json("/api/v1/history") == {"history": []}
        r = d.post_json("/api/v1/pause", status=200)
        assert r.json() == {"paused": True}
        assert d.curl("GET", "/metrics").status == 200
        assert d.curl("POST", "/api/v1/update", body={"nope": 1}).status == 400
        rc = d.stop(timeout=120, expect=None)
        assert rc == 0, "exit %d (%d means valgrind found errors or leaks)\n%s" % (
            rc, ERROR_EXIT, d.stderr_text()[-8000:])
    finally:
        d.kill()
