/* Unit tests: token answers, credential helper answers, docker config.json lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "refit/auth.h"

static void test_token_parse(void **state)
{
	static const struct {
		const char *body;
		const char *token;
		long expires;
	} ok[] = {
		{ "{\"token\":\"abc\",\"expires_in\":300}", "abc", 300 },
		{ "{\"access_token\":\"xyz\"}", "xyz", 60 },
		{ "{\"token\":\"\",\"access_token\":\"t2\",\"expires_in\":0}", "t2", 60 },
		{ "{\"token\":\"t\",\"expires_in\":99999999}", "t", 86400 },
		{ "{\"token\":\"t\",\"expires_in\":\"300\"}", "t", 60 },
	};
	static const char *const bad[] = {
		"", "null", "[]", "{}", "{\"token\":5}", "{\"token\":\"a b\"}", "{\"token\":\"a\\nb\"}", "{\"token\":\"x\"",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char *t = NULL;
		long exp = 0;
		struct refit_err e = { 0 };

		assert_int_equal(auth_token_parse(ok[i].body, strlen(ok[i].body), &t, &exp, &e), 0);
		assert_string_equal(t, ok[i].token);
		assert_int_equal(exp, ok[i].expires);
		free(t);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *t = NULL;
		long exp = 0;
		struct refit_err e = { 0 };

		if (auth_token_parse(bad[i], strlen(bad[i]), &t, &exp, &e) != -1)
			fail_msg("accepted bad token answer %zu", i);
		assert_null(t);
		assert_true(e.msg[0] != '\0');
	}
}

static void test_token_access(void **state)
{
	/* payload {"sub":"ci","access":[a/b pull, c *, d push]}: base64url without padding */
	const char *jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSIsImFjY2VzcyI6W3sidHlwZSI6InJlcG9zaXRvcnkiLCJuYW1lIjoiYS9iIiwiYWN0aW9ucyI6WyJwdWxsIl19LHsidHlwZSI6InJlcG9zaXRvcnkiLCJuYW1lIjoiYyIsImFjdGlvbnMiOlsiKiJdfSx7InR5cGUiOiJyZXBvc2l0b3J5IiwibmFtZSI6ImQiLCJhY3Rpb25zIjpbInB1c2giXX1dfQ.c2ln";
	static const char *const opaque[] = {
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2ln", /* a JWT without an access claim */
		"djE6cmVmaXQ6MTIzNDU2", "a.b", "a..b", "a.!!!!.b", "a.e.b", "a.eyJ9.b", "",
	};
	json_t *access = auth_token_access(jwt);

	(void)state;
	assert_non_null(access);
	assert_int_equal(auth_access_grants(access, "repository:a/b:pull"), 1);
	assert_int_equal(auth_access_grants(access, "repository:c:pull"), 1);
	assert_int_equal(auth_access_grants(access, "repository:d:pull"), 0);
	assert_int_equal(auth_access_grants(access, "repository:a:pull"), 0);
	assert_int_equal(auth_access_grants(access, "repository:a/b/c:pull"), 0);
	assert_int_equal(auth_access_grants(access, "registry:catalog:*"), 0);
	assert_int_equal(auth_access_grants(access, "nonsense"), 0);
	json_decref(access);
	assert_int_equal(auth_access_grants(NULL, "repository:a/b:pull"), -1);
	for (size_t i = 0; i < sizeof(opaque) / sizeof(opaque[0]); i++)
		if (auth_token_access(opaque[i]))
			fail_msg("an access claim read from %s", opaque[i]);
}

static void test_helper_parse(void **state)
{
	struct cred c = { 0 };
	struct refit_err e = { 0 };
	const char *a = "{\"ServerURL\":\"ghcr.io\",\"Username\":\"u\",\"Secret\":\"s\"}";
	const char *b = "{\"Username\":\"<token>\",\"Secret\":\"refresh\"}";

	(void)state;
	assert_int_equal(auth_helper_parse(a, strlen(a), &c, &e), 0);
	assert_string_equal(c.username, "u");
	assert_string_equal(c.password, "s");
	cred_free(&c);
	assert_int_equal(auth_helper_parse(b, strlen(b), &c, &e), 0);
	assert_null(c.username);
	assert_string_equal(c.identity_token, "refresh");
	cred_free(&c);
	assert_int_equal(auth_helper_parse("{\"Username\":1}", 14, &c, &e), -1);
	assert_int_equal(auth_helper_parse("credentials not found", 21, &c, &e), -1);
}

static void test_basic(void **state)
{
	char *b = auth_basic("ci", "p@ss:word");

	(void)state;
	assert_string_equal(b, "Y2k6cEBzczp3b3Jk");
	free(b);
}

/* Write a config.json into a fresh DOCKER_CONFIG directory. */
static void docker_config(char *dir, const char *json)
{
	char path[300];
	FILE *f;

	strcpy(dir, "/tmp/refit-unit-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(json, f);
	fclose(f);
	setenv("DOCKER_CONFIG", dir, 1);
}

static void remove_config(const char *dir)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/config.json", dir);
	unlink(path);
	rmdir(dir);
}

static void test_lookup(void **state)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };
	struct cred c = { 0 };
	char dir[64];

	(void)state;
	unsetenv("REPO_USER");
	unsetenv("REPO_PASS");
	assert_int_equal(config_init(&cfg, &e), 0);
	/* "dTE6cDE=" is u1:p1 and "aHViOmh1YnB3" is hub:hubpw */
	docker_config(dir, "{\"auths\":{\"https://127.0.0.1:5000/v1/\":{\"auth\":\"dTE6cDE=\"},"
			   "\"https://index.docker.io/v1/\":{\"auth\":\"aHViOmh1YnB3\"},"
			   "\"other.example\":{\"username\":\"o\",\"password\":\"op\"}}}");
	assert_int_equal(auth_lookup(&cfg, "127.0.0.1:5000", &c, &e), 1);
	assert_string_equal(c.username, "u1");
	assert_string_equal(c.password, "p1");
	cred_free(&c);
	assert_int_equal(auth_lookup(&cfg, "docker.io", &c, &e), 1);
	assert_string_equal(c.username, "hub");
	cred_free(&c);
	assert_int_equal(auth_lookup(&cfg, "other.example", &c, &e), 1);
	assert_string_equal(c.password, "op");
	cred_free(&c);
	assert_int_equal(auth_lookup(&cfg, "ghcr.io", &c, &e), 0);

	/* REPO_USER/REPO_PASS are the fallback for every registry. */
	setenv("REPO_USER", "ru", 1);
	setenv("REPO_PASS", "rp", 1);
	assert_int_equal(auth_lookup(&cfg, "ghcr.io", &c, &e), 1);
	assert_string_equal(c.username, "ru");
	cred_free(&c);
	unsetenv("REPO_USER");
	unsetenv("REPO_PASS");
	remove_config(dir);

	/* A broken config.json is an error, not "no credentials". */
	docker_config(dir, "{\"auths\": ");
	assert_int_equal(auth_lookup(&cfg, "ghcr.io", &c, &e), -1);
	assert_non_null(strstr(e.msg, "config.json"));
	remove_config(dir);

	/* A helper that is not installed is an error naming it. */
	docker_config(dir, "{\"credHelpers\":{\"ghcr.io\":\"refit-unit-missing\"}}");
	assert_int_equal(auth_lookup(&cfg, "ghcr.io", &c, &e), -1);
	assert_non_null(strstr(e.msg, "docker-credential-refit-unit-missing"));
	assert_int_equal(auth_lookup(&cfg, "quay.io", &c, &e), 0);
	remove_config(dir);
	docker_config(dir, "{\"credHelpers\":{\"ghcr.io\":\"../evil\"}}");
	assert_int_equal(auth_lookup(&cfg, "ghcr.io", &c, &e), -1);
	assert_non_null(strstr(e.msg, "not valid"));
	remove_config(dir);
	unsetenv("DOCKER_CONFIG");
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_parse),
		cmocka_unit_test(test_token_access),
		cmocka_unit_test(test_helper_parse),
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
