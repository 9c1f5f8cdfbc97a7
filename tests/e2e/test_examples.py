"""The files in examples/ do what examples/README.md says.

- examples/docker-compose.yml is a valid compose file, and refit reads the
  labels of its services as the comments say (run as a compose project with
  the images swapped for test images and the scopes for the test's own);
- the deploy job of examples/github-actions/build-and-deploy.yml, its shell
  steps run as GitHub Actions would run them (bash, with the secrets in the
  environment and GITHUB_OUTPUT), drives a real `refit daemon` through curl
  and jq: it passes when refit updated the container and fails when refit
  rolled it back.
"""

import os
import re
import shutil
import subprocess

import json

import pytest
import yaml

from daemontools import Daemon
from harness import RUN_LABEL
from swaptools import COMMON_PAIRS, inspect
from swaptools import swap_images  # noqa: F401 (fixture)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXAMPLES = os.path.join(ROOT, "examples")
WORKFLOW = os.path.join(EXAMPLES, "github-actions", "build-and-deploy.yml")
COMPOSE = os.path.join(EXAMPLES, "docker-compose.yml")


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


# --------------------------------------------------------------------------
# the workflow

def deploy_steps():
    wf = load(WORKFLOW)
    steps = wf["jobs"]["deploy"]["steps"]
    assert [s.get("id") for s in steps][:1] == ["trigger"], steps
    return steps


def expand(text, values):
    """GitHub's ${{ ... }} expressions, from VALUES; an unknown one fails the test."""
    def one(m):
        key = m.group(1).strip()
        assert key in values, "the workflow uses ${{ %s }}, which this test does not provide" % key
        return values[key]
    return re.sub(r"\$\{\{([^}]*)\}\}", one, text)


def run_deploy(tmp_path, daemon, container):
    """Run the deploy job's steps in order as the runner would; returns
    (exit code of the first failing step or 0, its output)."""
    need = [shutil.which("bash"), shutil.which("curl"), shutil.which("jq")]
    if not all(need):
        pytest.skip("bash, curl and jq are needed (make deps installs jq)")
    outputs = {}
    values = {"secrets.REFIT_URL": daemon.url, "secrets.REFIT_TOKEN": daemon.token}
    log = []
    for i, step in enumerate(deploy_steps()):
        values.update({"steps.trigger.outputs.%s" % k: v for k, v in outputs.items()})
        script = expand(step["run"], values)
        # the job names the production container; here it is the test's
        script = script.replace('"containers":["orchestrator"]', '"containers":["%s"]' % container)
        gh_out = os.path.join(str(tmp_path), "github-output-%d" % i)
        open(gh_out, "w").close()
        env = {"PATH": os.environ["PATH"], "GITHUB_OUTPUT": gh_out}
        env.update({k: expand(str(v), values) for k, v in (step.get("env") or {}).items()})
        # GitHub runs `run:` with `bash -e {0}`
        p = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True,
                           timeout=300)
        log.append("--- step %s: rc %d\n%s%s" % (step.get("name"), p.returncode, p.stdout, p.stderr))
        assert daemon.token not in p.stdout, "a step printed the token"
        if p.returncode != 0:
            return p.returncode, "\n".join(log)
        with open(gh_out) as f:
            for line in f.read().splitlines():
                k, _, v = line.partition("=")
                outputs[k] = v
    return 0, "\n".join(log)


def test_workflow_builds_latest_and_sha_tags():
    wf = load(WORKFLOW)
    build = wf["jobs"]["build"]
    push = [s for s in build["steps"] if "build-push-action" in s.get("uses", "")]
    assert len(push) == 1
    tags = [t.strip() for t in push[0]["with"]["tags"].splitlines() if t.strip()]
    assert tags == ["${{ env.IMAGE }}:latest", "${{ env.IMAGE }}:${{ github.sha }}"], tags
    assert wf["env"]["IMAGE"].startswith("ghcr.io/")
    assert wf["jobs"]["deploy"]["needs"] == "build"


@pytest.mark.parametrize("kind", ["good", "unhealthy"])
def test_workflow_deploy_job_drives_refit(kind, refit_bin, tmp_path, engine, scope, scoped,
                                          containers, swap_images, plain_registry):
    """good: the new image passes the gate, refit updates the container and
    the job passes.  unhealthy: refit rolls the container back, and the job
    fails, so the pipeline shows the failed deploy."""
    # only the pair this case needs (shared with other tests of the session that ask for it)
    v1, v2 = swap_images.pairs(plain_registry, {kind: COMMON_PAIRS[kind]})[kind]
    name = containers.run(v1.ref, labels=scoped(), hint="gha-" + kind)
    old_id = inspect(name)["Id"]
    d = Daemon(refit_bin, os.path.join(str(tmp_path), "d"), scope=scope,
               config_extra="health_timeout: 5\n")
    try:
        d.start()
        rc, log = run_deploy(tmp_path, d, name)
        ins = inspect(name)
        if kind == "good":
            assert rc == 0, log
            assert ins["Image"] == v2.id and ins["Id"] != old_id, log
            assert '"state": "succeeded"' in log, log
        else:
            assert rc != 0, "the job passed although refit rolled back:\n" + log
            assert "rolled-back" in log, log
            assert ins["Id"] == old_id and ins["Image"] == v1.id and ins["State"]["Running"], log
        d.stop()
    finally:
        d.kill()


# --------------------------------------------------------------------------
# the compose file

def test_compose_example_is_valid_for_docker_compose(tmp_path):
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose not installed")
    p = subprocess.run(["docker-compose", "-f", COMPOSE, "config", "-q"], capture_output=True,
                       text=True, timeout=60, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr


def test_compose_example_labels_as_refit_reads_them(refit, compose, image_factory, plain_registry,
                                                   run_id, scope):
    """The seed's services with their labels unchanged but for the scope
    (the test's own instead of production/staging), their images replaced
    by test images and their fixed host ports dropped: `refit check` of the
    production scope lists exactly the four production services, with the
    status the comments in the file promise."""
    doc = load(COMPOSE)
    svc = doc["services"]
    assert set(svc) == {"orchestrator", "neurosync_s1", "autogen_agent", "vtuber-ollama",
                        "staging-orchestrator"}
    # neurosync_s1 runs v1.4.0 and tracks semver:^1: v1.5.0 is its target, never v2.0.0
    track_repo = image_factory.unique_repo("neurosync")
    tags = ("v1.4.0", "v1.5.0", "v2.0.0")
    others = ("orchestrator", "autogen_agent", "vtuber-ollama", "staging-orchestrator")
    built = image_factory.make_many(
        [{"registry": plain_registry, "repo": track_repo, "tag": t} for t in tags] +
        [{"registry": plain_registry, "repo": image_factory.unique_repo(n)} for n in others])
    images = dict(zip(others, built[len(tags):]))
    images["neurosync_s1"] = built[0]
    # a new build of autogen_agent's tag: an update is available for it
    autogen_new = image_factory.publish_new_version(images["autogen_agent"])
    # and of vtuber-ollama's, which is monitor-only
    image_factory.publish_new_version(images["vtuber-ollama"])

    for name, s in svc.items():
        s["image"] = images[name].ref
        s.pop("ports", None)
        labels = s["labels"]
        for k in list(labels):
            if k.endswith(".scope"):
                labels[k] = {"production": scope, "staging": scope + "-staging"}[labels[k]]
        labels[RUN_LABEL] = run_id
    project = compose(yaml.safe_dump(doc))
    project.cmd("up", "-d")

    res = refit.run("check", "--json", "--scope", scope, timeout=120)
    assert res.rc == 0, res.describe()
    got = {c["name"]: c for c in json.loads(res.stdout)["containers"]}
    by_service = {}
    for name, c in got.items():
        m = re.match(r"^%s_(.+)_1$" % re.escape(project.name), name)
        assert m, "refit listed a container of another project: %s" % name
        by_service[m.group(1)] = c
    assert set(by_service) == {"orchestrator", "neurosync_s1", "autogen_agent", "vtuber-ollama"}, \
        res.describe()
    assert by_service["orchestrator"]["status"] == "up-to-date", by_service
    assert by_service["orchestrator"]["strategy"] == "recreate", by_service
    n = by_service["neurosync_s1"]
    assert n["status"] == "update-available" and n.get("target_tag") == "v1.5.0", n
    assert n["strategy"] == "blue-green", n
    a = by_service["autogen_agent"]
    assert a["status"] == "update-available", a
    assert a["latest_digest"].endswith(autogen_new.digest.split(":")[-1]), a
    assert a["strategy"] == "blue-green", a
    assert by_service["vtuber-ollama"]["status"] == "monitor-only", by_service

    # the staging daemon's view: only the staging orchestrator
    res = refit.run("check", "--json", "--scope", scope + "-staging", timeout=120)
    names = [c["name"] for c in json.loads(res.stdout)["containers"]]
    assert names == ["%s_staging-orchestrator_1" % project.name], res.describe()
