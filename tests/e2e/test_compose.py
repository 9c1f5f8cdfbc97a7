"""A docker-compose (v1) service with refit's labels is checked like any
container."""

from harness import RUN_LABEL, digest_only, docker

COMPOSE = """version: "2.4"
services:
  app:
    image: %(image)s
    labels:
      refit.enable: "true"
      refit.scope: "%(scope)s"
      %(run_label)s: "%(run)s"
  helper:
    image: %(image)s
    labels:
      refit.enable: "false"
      refit.scope: "%(scope)s"
      %(run_label)s: "%(run)s"
networks:
  default:
    labels:
      %(run_label)s: "%(run)s"
"""


def test_compose_service(refit, compose, plain_registry, image_factory, scope, run_id):
    img = image_factory.make(plain_registry)
    proj = compose(COMPOSE % {"image": img.ref, "scope": scope, "run": run_id,
                              "run_label": RUN_LABEL})
    proj.cmd("up", "-d")
    ids = docker("ps", "-q", "--no-trunc", "--filter",
                 "label=com.docker.compose.project=%s" % proj.name,
                 "--filter", "label=com.docker.compose.service=app").split()
    assert len(ids) == 1
    name = docker("inspect", "--format", "{{.Name}}", ids[0]).strip().lstrip("/")

    res = refit.check_json(scope)
    assert res.rc == 0, res.describe()
    assert res.names == {name}, res.describe()
    c = res[name]
    assert c.get("status") == "up-to-date", res.describe()
    assert ids[0].startswith(c.get("id") or "-"), res.describe()
    assert c.get("image") == img.ref, res.describe()

    new = image_factory.publish_new_version(img)
    res = refit.check_json(scope)
    assert res.rc == 0, res.describe()
    assert res.statuses() == {name: "update-available"}, res.describe()
    assert digest_only(res[name].get("latest_digest")) == new.digest
    assert digest_only(res[name].get("current_digest")) == img.digest
