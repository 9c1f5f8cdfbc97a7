"""Registry auth and TLS (SPEC.md: Finding updates - Auth, TLS)."""

import os
import re

import pytest

from harness import digest_only, write_cred_helper, write_docker_config, read_helper_log


def _actions(scope):
    return scope.rsplit(":", 1)[1].split(",")


def test_token_auth_from_config_json_one_token_per_registry(
        refit, token_registry, token_server, image_factory, containers, scoped, scope, tmp_path):
    a, b = image_factory.make_many([{"registry": token_registry},
                                    {"registry": token_registry}])
    # a second tag of repository a: another reference, the same token scope
    a2 = image_factory.make(token_registry, repo=a.repo, tag="other")
    on_a = [containers.run(a, labels=scoped()) for _ in range(3)]
    on_a2 = containers.run(a2, labels=scoped())
    on_b = containers.run(b, labels=scoped())
    cfg = write_docker_config(str(tmp_path / "dc"), auths={
        token_registry.host: (token_server.username, token_server.password)})
    mark = token_server.mark()
    res = refit.check_json(scope, env={"DOCKER_CONFIG": cfg})
    assert res.rc == 0, res.describe()
    assert res.statuses() == {n: "up-to-date" for n in on_a + [on_a2, on_b]}, res.describe()
    for n in on_a:
        assert digest_only(res[n].get("latest_digest")) == a.digest
    assert digest_only(res[on_a2].get("latest_digest")) == a2.digest
    assert digest_only(res[on_b].get("latest_digest")) == b.digest
    reqs = token_server.requests(mark)
    assert len(reqs) == 1 and reqs[0]["ok"], \
        "one token request for both repositories, with valid credentials: %r" % reqs
    assert reqs[0]["service"] == token_server.service, reqs
    for img in (a, b):
        scopes = [s for s in reqs[0]["scopes"] if s.startswith("repository:%s:" % img.repo)]
        assert len(scopes) == 1, reqs
        assert "pull" in _actions(scopes[0]) and "push" not in _actions(scopes[0]), reqs


@pytest.fixture
def token_server_mode(token_server):
    """The token server's multi-scope switches, put back after the test."""
    yield token_server
    token_server.multi_scope = True
    token_server.withhold = set()


def _two_repositories(image_factory, token_registry, containers, scoped):
    a, b = image_factory.make_many([{"registry": token_registry},
                                    {"registry": token_registry}])
    return a, b, containers.run(a, labels=scoped()), containers.run(b, labels=scoped())


def test_multi_scope_refused_falls_back_to_one_token_per_repository(
        refit, token_registry, token_server_mode, image_factory, containers, scoped, scope, tmp_path):
    ts = token_server_mode
    a, b, on_a, on_b = _two_repositories(image_factory, token_registry, containers, scoped)
    new_b = image_factory.publish_new_version(b)
    cfg = write_docker_config(str(tmp_path / "dc"), auths={token_registry.host: (ts.username, ts.password)})
    ts.multi_scope = False
    mark = ts.mark()
    res = refit.check_json(scope, env={"DOCKER_CONFIG": cfg})
    assert res.rc == 0, res.describe()
    assert res.statuses() == {on_a: "up-to-date", on_b: "update-available"}, res.describe()
    assert digest_only(res[on_b].get("latest_digest")) == new_b.digest
    reqs = ts.requests(mark)
    refused = [r for r in reqs if not r["ok"]]
    served = [r for r in reqs if r["ok"]]
    assert len(refused) == 1 and len(refused[0]["scopes"]) == 2, reqs
    assert sorted(len(r["scopes"]) for r in served) == [1, 1], reqs
    assert ts.count(since=mark, repository=a.repo, ok=True) == 1, reqs
    assert ts.count(since=mark, repository=b.repo, ok=True) == 1, reqs


def test_multi_scope_granting_fewer_scopes_asks_the_rest_alone(
        refit, token_registry, token_server_mode, image_factory, containers, scoped, scope, tmp_path):
    ts = token_server_mode
    a, b, on_a, on_b = _two_repositories(image_factory, token_registry, containers, scoped)
    cfg = write_docker_config(str(tmp_path / "dc"), auths={token_registry.host: (ts.username, ts.password)})
    ts.withhold = {b.repo}
    mark = ts.mark()
    res = refit.check_json(scope, env={"DOCKER_CONFIG": cfg})
    assert res.rc == 0, res.describe()
    assert res.statuses() == {on_a: "up-to-date", on_b: "up-to-date"}, res.describe()
    reqs = ts.requests(mark)
    assert len(reqs) == 2 and all(r["ok"] for r in reqs), reqs
    assert len(reqs[0]["scopes"]) == 2, reqs
    assert [s.rsplit(":", 1)[0] for s in reqs[1]["scopes"]] == ["repository:" + b.repo], \
        "the repository the first token left out is asked alone: %r" % reqs


def test_token_auth_update_available(refit, token_registry, token_server, image_factory,
                                     containers, scoped, scope, tmp_path):
    img = image_factory.make(token_registry)
    name = containers.run(img, labels=scoped())
    new = image_factory.publish_new_version(img)
    cfg = write_docker_config(str(tmp_path / "dc"), auths={
        token_registry.host: (token_server.username, token_server.password)})
    res = refit.check_json(scope, env={"DOCKER_CONFIG": cfg})
    assert res.rc == 0, res.describe()
    assert res[name].get("status") == "update-available", res.describe()
    assert digest_only(res[name].get("latest_digest")) == new.digest
    assert digest_only(res[name].get("current_digest")) == img.digest


def test_wrong_password_is_that_containers_error(refit, token_registry, token_server,
                                                 shared_images, image_factory, containers,
                                                 scoped, scope, tmp_path):
    tok_img, plain_img = image_factory.make(token_registry), shared_images[3]
    bad = containers.run(tok_img, labels=scoped())
    good = containers.run(plain_img, labels=scoped())
    cfg = write_docker_config(str(tmp_path / "dc"), auths={
        token_registry.host: (token_server.username, "wrong-" + token_server.password)})
    mark = token_server.mark()
    res = refit.check_json(scope, env={"DOCKER_CONFIG": cfg})
    assert res.statuses() == {bad: "error", good: "up-to-date"}, res.describe()
    err = res[bad].get("error") or ""
    assert re.search(r"401|unauthori[sz]ed", err, re.I), res.describe()
    assert res.rc == 1, "a container failed: exit 1\n" + res.describe()
    assert token_server.count(since=mark, ok=False) >= 1
    assert token_server.count(since=mark, ok=True) == 0


def test_no_credentials_is_an_error(refit, token_target):
    t = token_target
    res = refit.check_json(t.scope)     # DOCKER_CONFIG: an empty directory
    assert res.statuses() == {t.name: "error"}, res.describe()
    assert re.search(r"401|unauthori[sz]ed|credential|denied", res[t.name].get("error") or "",
                     re.I), res.describe()
    assert res.rc == 1, res.describe()


def test_repo_user_repo_pass(refit, token_target, token_server):
    t = token_target
    mark = token_server.mark()
    res = refit.check_json(t.scope, env={"REPO_USER": token_server.username,
                                         "REPO_PASS": token_server.password})
    assert res.rc == 0, res.describe()
    assert res.statuses() == {t.name: "up-to-date"}, res.describe()
    assert digest_only(res[t.name].get("latest_digest")) == t.image.digest
    assert token_server.count(since=mark, repository=t.image.repo) == 1


@pytest.mark.parametrize("variant", ["credHelpers", "credsStore"])
def test_credential_helper(variant, refit, token_target, token_registry, token_server,
                           tmp_path):
    t = token_target
    bindir = str(tmp_path / "bin")
    log = str(tmp_path / "helper.log")
    write_cred_helper(bindir, "refittest", log, token_registry.host,
                      token_server.username, token_server.password)
    if variant == "credHelpers":
        cfg = write_docker_config(str(tmp_path / "dc"),
                                  cred_helpers={token_registry.host: "refittest"})
    else:
        cfg = write_docker_config(str(tmp_path / "dc"), creds_store="refittest")
    mark = token_server.mark()
    res = refit.check_json(t.scope, env={"DOCKER_CONFIG": cfg,
                                         "PATH": bindir + ":" + os.environ.get("PATH", "")})
    calls = read_helper_log(log)
    assert any(c["action"] == "get" and token_registry.host in c["input"] for c in calls), \
        "credential helper not asked (calls: %r)\n%s" % (calls, res.describe())
    assert res.rc == 0, res.describe()
    assert res.statuses() == {t.name: "up-to-date"}, res.describe()
    assert token_server.count(since=mark, repository=t.image.repo, ok=True) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_tls_registry_with_ca_file(host, refit, tls_registry, tls_material, image_factory,
                                   containers, scoped, scope, tmp_path):
    img = image_factory.make(tls_registry, host=host)
    name = containers.run(img, labels=scoped())
    new = image_factory.publish_new_version(img)
    cfg = write_docker_config(str(tmp_path / "dc"), auths={
        tls_registry.hostname(host): (tls_registry.username, tls_registry.password)})
    mark = tls_registry.mark()
    res = refit.check_json(scope, env={"DOCKER_CONFIG": cfg},
                           config="registry_ca_file: %s\n" % tls_material.ca_pem)
    assert res.rc == 0, res.describe()
    assert res.statuses() == {name: "update-available"}, res.describe()
    assert digest_only(res[name].get("latest_digest")) == new.digest
    assert tls_registry.count({"HEAD", "GET"}, r"^/v2/%s/manifests/" % re.escape(img.repo),
                              since=mark, status=200) == 1


def test_tls_registry_without_ca_file_fails_verification(refit, tls_registry, image_factory,
                                                         containers, scoped, scope, tmp_path):
    img = image_factory.make(tls_registry)
    name = containers.run(img, labels=scoped())
    cfg = write_docker_config(str(tmp_path / "dc"), auths={
        tls_registry.host: (tls_registry.username, tls_registry.password)})
    mark = tls_registry.mark()
    res = refit.check_json(scope, env={"DOCKER_CONFIG": cfg})
    assert res.rc != 0, res.describe()
    assert res.statuses() == {name: "error"}, res.describe()
    assert re.search(r"certificate|tls|ssl|x509|verif", res[name].get("error") or "", re.I), \
        res.describe()
    # it never fell back to sending credentials over plain HTTP or unverified TLS
    assert tls_registry.count(None, r"^/v2/%s/" % re.escape(img.repo), since=mark) == 0


def test_tls_registry_basic_auth_from_repo_user(refit, tls_registry, tls_material, image_factory,
                                                containers, scoped, scope):
    img = image_factory.make(tls_registry)
    name = containers.run(img, labels=scoped())
    res = refit.check_json(scope, config="registry_ca_file: %s\n" % tls_material.ca_pem,
                           env={"REPO_USER": tls_registry.username,
                                "REPO_PASS": tls_registry.password})
    assert res.rc == 0, res.describe()
    assert res.statuses() == {name: "up-to-date"}, res.describe()
    assert digest_only(res[name].get("latest_digest")) == img.digest


def test_token_request_split_when_the_url_would_grow_too_long(
        refit, token_registry, token_server, image_factory, containers, scoped, scope, tmp_path):
    # 16 repositories with names of ~240 characters: their scopes do not fit one 4 KiB URL
    imgs = image_factory.make_many([
        {"registry": token_registry,
         "repo": image_factory.unique_repo("long-" + "x" * 210)} for _ in range(16)])
    names = [containers.run(i, labels=scoped()) for i in imgs]
    cfg = write_docker_config(str(tmp_path / "dc"), auths={
        token_registry.host: (token_server.username, token_server.password)})
    mark = token_server.mark()
    res = refit.check_json(scope, env={"DOCKER_CONFIG": cfg})
    assert res.rc == 0, res.describe()
    assert res.statuses() == {n: "up-to-date" for n in names}, res.describe()
    reqs = token_server.requests(mark)
    assert all(r["ok"] for r in reqs), reqs
    asked = [s for r in reqs for s in r["scopes"]]
    assert sorted(asked) == sorted("repository:%s:pull" % i.repo for i in imgs), \
        "every repository asked once: %r" % reqs
    # which request goes first depends on which job reached its token first
    # (a job alone at that moment asks for its own scope only: [1, 15] under load)
    assert len(reqs) == 2 and max(len(r["scopes"]) for r in reqs) >= 8, \
        "split into two requests, one with as many scopes as fit: %r" % [len(r["scopes"]) for r in reqs]
