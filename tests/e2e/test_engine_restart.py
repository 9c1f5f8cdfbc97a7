"""The Docker engine restarts in the middle of a swap.

The test runs a dockerd of its own (private socket, data root and exec
root, its own bridge interface made by the test, no iptables, so it touches
nothing of the shared engine; `--bridge none` would not do: a dockerd
started that way deletes the host's docker0),
pulls a stale image into it, and starts a container that ignores its stop
signal (refit.stop-signal=SIGUSR1), so that refit's swap sits in its stop
step for several seconds. While it does, the test restarts that dockerd.
refit must report the container as not updated (or finish it), and its
next run must leave exactly one container under the name, running, with
its volume's data, on the new image, with nothing pending in the journal.
"""

import json
import os
import subprocess
import time
import uuid

import pytest

from privateengine import private_engine

from harness import RUN_LABEL, Refit, wait_for
from swaptools import run_refit
from swaptools import common_pairs, swap_images  # noqa: F401 (fixtures)



@pytest.fixture
def engine2(engine):
    yield from private_engine("engine")


def test_engine_restart_mid_swap(refit_bin, tmp_path, engine2, scope, common_pairs, swap_images):
    v1, v2 = common_pairs["good"]
    swap_images.back_to(v1)
    # the stale image: v1 pulled by its digest and tagged as the registry's tag (which is v2 now)
    engine2.docker("pull", v1.pinned_ref)
    engine2.docker("tag", v1.pinned_ref, v1.ref)
    name = "refit-e2e-restart-" + uuid.uuid4().hex[:6]
    engine2.docker("run", "-d", "--name", name, "--network", "none", "--restart", "unless-stopped",
                   "-v", "refitdata:/data", "--label", "%s=private" % RUN_LABEL,
                   "--label", "refit.enable=true", "--label", "refit.scope=" + scope,
                   "--label", "refit.stop-signal=SIGUSR1", v1.ref)
    nonce = uuid.uuid4().hex
    engine2.docker("exec", name, "sh", "-c", "echo %s > /data/kept" % nonce)
    assert engine2.inspect(name)["Image"] == v1.id

    refit = Refit(refit_bin, os.path.join(str(tmp_path), "r"))
    config = ("state_dir: %s\ndocker_host: unix://%s\nstop_timeout: 8\nmin_uptime: 1\n"
              "health_timeout: 20\n" % (refit.state_dir, engine2.sock))
    ops = os.path.join(refit.state_dir, "ops")

    def stopping():
        for f in os.listdir(ops) if os.path.isdir(ops) else []:
            try:
                with open(os.path.join(ops, f)) as fh:
                    if json.load(fh).get("step") == "stopping":
                        return True
            except (OSError, ValueError):
                pass
        return False

    # refit's first run, in the background; the engine goes away under it
    refit.write_config(config)
    env = refit.base_env()
    first = subprocess.Popen([refit.binary, "update", "--json", "--config", refit.config_path,
                              "--scope", scope], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        wait_for(lambda: stopping() or first.poll() is not None, 60, interval=0.1,
                 what="refit's swap to reach its stop step")
        if first.poll() is not None:
            out, err = first.communicate()
            raise AssertionError("refit ended before its stop step (exit %d):\n%s\n%s"
                                 % (first.returncode, out.decode()[-3000:], err.decode()[-3000:]))
        time.sleep(1.0)
        engine2.stop()
        time.sleep(1.0)
        engine2.start()
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    first_json = json.loads(out or b"{}")
    statuses = {c["name"]: c.get("status") for c in first_json.get("containers", [])}
    print("first run: exit %d, %r\n%s" % (first.returncode, statuses, err.decode()[-3000:]))
    # it either reports the container as not updated, or it managed to finish
    assert first.returncode != 0 or statuses.get(name) == "updated", (first.returncode, statuses)

    # the next run finishes or undoes what the first one left, then updates
    res = run_refit(refit, "update", "--json", "--scope", scope, config=config, timeout=180)
    assert res.rc == 0, res.describe()
    names = [n for n in engine2.names() if n.startswith(name)]
    assert names == [name], names
    ins = engine2.inspect(name)
    assert ins["State"]["Running"], ins["State"]
    assert ins["Image"] == v2.id, (ins["Image"], v2.id)
    got = engine2.docker("exec", name, "cat", "/data/kept").stdout.decode().strip()
    assert got == nonce
    assert not (os.path.isdir(ops) and os.listdir(ops)), os.listdir(ops)
