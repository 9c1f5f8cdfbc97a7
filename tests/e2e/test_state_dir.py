"""A state directory refit cannot write: it changes no container.

refit journals every step before it takes it. On a read-only state_dir it
cannot even take its lock; on a full one the first journal write fails.
Either way the stale container must be left exactly as it was, the run
must say why and exit 1, and once the directory is writable again the next
run updates the container with nothing left over.

The state directory is a small tmpfs the test mounts (root only) under its
own tmp dir and unmounts at the end.
"""

import os
import subprocess

import pytest

from harness import Refit
from swaptools import inspect, leftovers, pending_ops, update
from swaptools import common_pairs, swap_images, swapenv  # noqa: F401 (fixtures)


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs at tmp_path/fs; unmounted afterwards."""
    path = os.path.join(str(tmp_path), "fs")
    os.makedirs(path)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "refit-e2e-state", path],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (%s)" % p.stderr.strip())
    yield path
    subprocess.run(["umount", "-l", path], capture_output=True)


def stale_on(fs, refit_bin, tmp_path, swapenv, common_pairs, swap_images, hint):
    """A stale container, its inspect, v2, and a refit whose state_dir is FS/state."""
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    name = swapenv.run(v1, swapenv.managed(), hint=hint)
    state = os.path.join(fs, "state")
    os.makedirs(state)
    refit = Refit(refit_bin, os.path.join(str(tmp_path), "runner"))
    refit.state_dir = state
    return name, inspect(name), v2, refit


def unchanged(name, before):
    now = inspect(name)
    assert now["Id"] == before["Id"] and now["Image"] == before["Image"], (now["Id"], now["Image"])
    assert now["State"]["Running"] and now["State"]["StartedAt"] == before["State"]["StartedAt"]


def test_read_only_state_dir_changes_nothing(refit_bin, tmp_path, small_fs, scope, swapenv,
                                             common_pairs, swap_images):
    name, before, v2, refit = stale_on(small_fs, refit_bin, tmp_path, swapenv, common_pairs, swap_images,
                                       "ro")
    subprocess.run(["mount", "-o", "remount,ro", small_fs], check=True)
    res = update(refit, scope)
    assert res.rc == 1, res.describe()
    assert "read-only" in res.res.stderr.lower() or "read-only" in res.res.stdout.lower(), res.describe()
    unchanged(name, before)
    assert not leftovers(name)

    subprocess.run(["mount", "-o", "remount,rw", small_fs], check=True)
    res = update(refit, scope)
    assert res.rc == 0 and res[name].get("status") == "updated", res.describe()
    assert inspect(name)["Image"] == v2.id


def test_full_state_dir_changes_nothing(refit_bin, tmp_path, small_fs, scope, swapenv,
                                       common_pairs, swap_images):
    name, before, v2, refit = stale_on(small_fs, refit_bin, tmp_path, swapenv, common_pairs, swap_images,
                                       "full")
    # the lock exists already (a state dir refit has used); then the disk fills up
    open(os.path.join(refit.state_dir, "lock"), "w").close()
    filler = os.path.join(small_fs, "filler")
    subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=4k"], capture_output=True)
    assert os.statvfs(small_fs).f_bavail == 0

    res = update(refit, scope)
    assert res.rc == 1, res.describe()
    assert res[name].get("status") == "failed", res.describe()
    assert "no space left" in res[name].get("error", "").lower(), res.describe()
    unchanged(name, before)
    assert not leftovers(name)
    assert not pending_ops(refit)

    os.unlink(filler)
    res = update(refit, scope)
    assert res.rc == 0 and res[name].get("status") == "updated", res.describe()
    assert inspect(name)["Image"] == v2.id
    assert not pending_ops(refit)
