/* Unit tests: the fleet's hosts file and the API answers it reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "refit/fleet.h"

#define TOK "0123456789abcdef-token"

static int parse(const char *y, struct fleet_hosts *h, struct refit_err *e)
{
	memset(e, 0, sizeof(*e));
	return fleet_hosts_parse(y, strlen(y), "hosts.yml", h, e);
}

/* The parse fails with a message containing each of the NULL-terminated strings. */
static void refused(const char *y, ...)
{
	struct fleet_hosts h;
	struct refit_err e;
	va_list ap;
	const char *want;

	assert_int_equal(parse(y, &h, &e), -1);
	assert_int_equal(e.kind, 2);
	assert_null(h.v);
	va_start(ap, y);
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (!strstr(e.msg, want))
			fail_msg("\"%s\" not in \"%s\"", want, e.msg);
	}
	va_end(ap);
}

static void test_good(void **state)
{
	struct fleet_hosts h;
	struct refit_err e;
	const char *y = "# fleet\n"
			"hosts:\n"
			"  - name: orchestrator1\n"
			"    url: http://orchestrator1.example.com:8010\n"
			"    token: " TOK "\n"
			"  - name: web-2.eu\n"
			"    url: https://[::1]:8443/refit/\n"
			"    token_file: /etc/refit/fleet/web2.token\n"
			"    ca_file: /etc/refit/ca.pem\n"
			"    timeout: 900\n"
			"    connect_timeout: 5\n";

	(void)state;
	assert_int_equal(parse(y, &h, &e), 0);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.v[0].name, "orchestrator1");
	assert_string_equal(h.v[0].url, "http://orchestrator1.example.com:8010");
	assert_string_equal(h.v[0].token, TOK);
	assert_null(h.v[0].token_file);
	assert_int_equal(h.v[0].timeout, 0);
	assert_int_equal(h.v[0].line, 3);
	assert_string_equal(h.v[1].url, "https://[::1]:8443/refit"); /* trailing slash dropped */
	assert_null(h.v[1].token);                                   /* read later */
	assert_string_equal(h.v[1].token_file, "/etc/refit/fleet/web2.token");
	assert_int_equal(h.v[1].token_file_line, 8);
	assert_string_equal(h.v[1].ca_file, "/etc/refit/ca.pem");
	assert_int_equal(h.v[1].timeout, 900);
	assert_int_equal(h.v[1].connect_timeout, 5);
	fleet_hosts_free(&h);
}

static void test_refused(void **state)
{
	(void)state;
	refused("hosts:\n  - name: a\n    url: http://a:1\n    token: " TOK "\n    tokn: x\n", "hosts.yml:5:",
		"hosts[0].tokn", "unknown key", NULL);
	refused("hosts:\n  - name: a\n    url: http://a:1\n    token: " TOK "\n  - name: a\n    url: http://b\n    token: " TOK "\n",
		"hosts.yml:5:", "hosts[1].name", "already", "line 2", NULL);
	refused("hosts:\n  - name: a\n    url: http://a:1\n    url: http://b\n    token: " TOK "\n", "hosts.yml:4:",
		"url: given twice", NULL);
	refused("hosts:\n  - name: a\n    url: ftp://a\n    token: " TOK "\n", "hosts.yml:3:", "hosts[0].url", NULL);
	refused("hosts:\n  - name: a\n    url: http://a\n    token: short\n", "hosts.yml:4:", "hosts[0].token", NULL);
	refused("hosts:\n  - name: a\n    url: http://a\n", "hosts.yml:2:", "exactly one of token and token_file", NULL);
	refused("hosts:\n  - name: a\n    url: http://a\n    token: " TOK "\n    token_file: /x\n", "exactly one", NULL);
	refused("hosts:\n  - url: http://a\n    token: " TOK "\n", "name is missing", NULL);
	refused("hosts:\n  - name: a\n    token: " TOK "\n", "url is missing", NULL);
	refused("hosts:\n  - name: a\n    url: http://a\n    token: " TOK "\n    ca_file: /ca\n", "hosts.yml:5:",
		"ca_file: only for an https url", NULL);
	refused("hosts:\n  - name: a\n    url: http://a\n    token: " TOK "\n    timeout: 0\n", "hosts.yml:5:",
		"hosts[0].timeout", "1..86400", NULL);
	refused("hosts:\n  - name: a\n    url: http://a\n    token: " TOK "\n    connect_timeout: 10s\n",
		"hosts[0].connect_timeout", NULL);
	refused("hosts:\n  - name: -a\n    url: http://a\n    token: " TOK "\n", "hosts[0].name", NULL);
	refused("hosts:\n  - name: [a]\n    url: http://a\n    token: " TOK "\n", "hosts[0].name: expected a value",
		NULL);
	refused("hosts: []\n", "hosts.yml:1:", "at least one host", NULL);
	refused("hosts: {}\n", "at least one host", NULL);
	refused("hosts:\n  - just-a-string\n", "hosts.yml:2:", "hosts[0]: expected a mapping", NULL);
	refused("other: 1\n", "hosts.yml:1:", "other: unknown key", NULL);
	refused("- a\n", "expected a mapping with the key hosts", NULL);
	refused("", "expected a mapping", NULL);
	refused("hosts: [\n", "hosts.yml:", NULL);
	refused("hosts:\n  - name: a\n    url: http://a\n    token: " TOK "\nhosts: []\n", "hosts.yml:5:", "given twice",
		NULL);
}

static void test_aliases_and_limits(void **state)
{
	char *big;
	size_t len = FLEET_MAX_FILE + 10;

	(void)state;
	/* the same host twice through an alias is a duplicate name */
	refused("hosts:\n  - &h\n    name: a\n    url: http://a\n    token: " TOK "\n  - *h\n", "already", NULL);
	big = malloc(len + 1);
	assert_non_null(big);
	memset(big, '#', len);
	big[len] = '\0';
	refused(big, "larger than", NULL);
	free(big);
}

static void test_urls(void **state)
{
	(void)state;
	assert_true(fleet_url_valid("http://a"));
	assert_true(fleet_url_valid("http://127.0.0.1:8010"));
	assert_true(fleet_url_valid("https://h.example.com:443/prefix/x"));
	assert_true(fleet_url_valid("http://[::1]:8010"));
	assert_false(fleet_url_valid("http://"));
	assert_false(fleet_url_valid("http://a:0"));
	assert_false(fleet_url_valid("http://a:65536"));
	assert_false(fleet_url_valid("http://a:"));
	assert_false(fleet_url_valid("http://user:pw@a"));
	assert_false(fleet_url_valid("http://a/x?y=1"));
	assert_false(fleet_url_valid("http://a/x#f"));
	assert_false(fleet_url_valid("http://a b"));
	assert_false(fleet_url_valid("http://[]"));
	assert_false(fleet_url_valid("unix:///var/run/docker.sock"));
	assert_false(fleet_url_valid("HTTP://a"));
}

static void test_token_files(void **state)
{
	char dir[] = "/tmp/refit-test-fleet-XXXXXX", tf[128], yaml[512], hf[128];
	struct fleet_hosts h;
	struct refit_err e = { 0 };
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(tf, sizeof(tf), "%s/tok", dir);
	f = fopen(tf, "w");
	assert_non_null(f);
	fputs(TOK "  \nsecond line\n", f);
	fclose(f);
	snprintf(hf, sizeof(hf), "%s/hosts.yml", dir);
	snprintf(yaml, sizeof(yaml), "hosts:\n  - name: a\n    url: http://a\n    token_file: %s\n", tf);
	f = fopen(hf, "w");
	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
	assert_int_equal(fleet_hosts_load(hf, &h, &e), 0);
	assert_string_equal(h.v[0].token, TOK); /* the first line, trimmed */
	fleet_hosts_free(&h);

	/* unreadable: named with file, line and key */
	snprintf(yaml, sizeof(yaml), "hosts:\n  - name: a\n    url: http://a\n    token_file: %s/missing\n", dir);
	f = fopen(hf, "w");
	fputs(yaml, f);
	fclose(f);
	assert_int_equal(fleet_hosts_load(hf, &h, &e), -1);
	assert_int_equal(e.kind, 2);
	assert_non_null(strstr(e.msg, "hosts.yml:4: hosts[0].token_file: cannot read"));

	/* a token file whose first line is too short */
	f = fopen(tf, "w");
	fputs("short\n", f);
	fclose(f);
	snprintf(yaml, sizeof(yaml), "hosts:\n  - name: a\n    url: http://a\n    token_file: %s\n", tf);
	f = fopen(hf, "w");
	fputs(yaml, f);
	fclose(f);
	assert_int_equal(fleet_hosts_load(hf, &h, &e), -1);
	assert_non_null(strstr(e.msg, "hosts[0].token_file"));
	assert_null(strstr(e.msg, "short")); /* never the token's text */

	/* an unreadable ca_file */
	snprintf(yaml, sizeof(yaml), "hosts:\n  - name: a\n    url: https://a\n    token: " TOK "\n    ca_file: %s/noca\n",
		 dir);
	f = fopen(hf, "w");
	fputs(yaml, f);
	fclose(f);
	assert_int_equal(fleet_hosts_load(hf, &h, &e), -1);
	assert_non_null(strstr(e.msg, "hosts.yml:5: hosts[0].ca_file"));
	assert_int_equal(fleet_hosts_load("/nonexistent/hosts.yml", &h, &e), -1);
	assert_int_equal(e.kind, 2);
	unlink(tf);
	unlink(hf);
	rmdir(dir);
}

static void test_op_answers(void **state)
{
	struct fleet_op op;
	char id[17];
	struct refit_err er = { 0 };
	const char *err = er.msg;
	const char *done = "{\"id\":\"0123456789abcdef\",\"kind\":\"update\",\"state\":\"succeeded\",\"result\":{\"containers\":["
			   "{\"name\":\"app\",\"image\":\"r/a:latest\",\"status\":\"updated\",\"current_digest\":\"sha256:11\",\"latest_digest\":\"sha256:22\"},"
			   "{\"name\":\"b\",\"status\":\"up-to-date\"},"
			   "{\"name\":\"cache\",\"status\":\"rolled-back\",\"error\":\"not healthy\\u0007\"}]}}";

	(void)state;
	assert_int_equal(fleet_parse_op(done, strlen(done), false, &op, &er), 0);
	assert_string_equal(op.state, "succeeded");
	assert_int_equal(op.n, 3);
	assert_int_equal(op.changed, 1);
	assert_int_equal(op.failed, 1);
	assert_string_equal(op.v[0].old_digest, "sha256:11");
	assert_string_equal(op.v[0].new_digest, "sha256:22");
	assert_string_equal(op.v[0].image, "r/a:latest");
	assert_string_equal(op.v[2].error, "not healthy?"); /* cleaned for printing */
	fleet_op_free(&op);
	/* the same record read as a rollback: rolled-back is the success */
	assert_int_equal(fleet_parse_op(done, strlen(done), true, &op, &er), 0);
	assert_int_equal(op.changed, 1);
	assert_int_equal(op.failed, 0);
	fleet_op_free(&op);

	assert_int_equal(fleet_parse_op("{\"state\":\"running\"}", strlen("{\"state\":\"running\"}"), false, &op, &er), 0);
	assert_int_equal(op.n, 0);
	fleet_op_free(&op);
	assert_int_equal(fleet_parse_op("{\"state\":\"weird\"}", strlen("{\"state\":\"weird\"}"), false, &op, &er), -1);
	assert_int_equal(fleet_parse_op("[1]", strlen("[1]"), false, &op, &er), -1);
	assert_int_equal(fleet_parse_op("{\"state\":\"failed\",\"result\":{\"containers\":[{\"name\":1}]}}", strlen("{\"state\":\"failed\",\"result\":{\"containers\":[{\"name\":1}]}}"), false,
					&op, &er), -1);
	assert_int_equal(fleet_parse_op("{\"state\":\"failed\",\"result\":7}", strlen("{\"state\":\"failed\",\"result\":7}"), false, &op, &er), -1);
	assert_int_equal(fleet_parse_op("{\"state\":\"failed\",\"error\":5}", strlen("{\"state\":\"failed\",\"error\":5}"), false, &op, &er), -1);
	assert_int_equal(fleet_parse_op("{\"state\":", strlen("{\"state\":"), false, &op, &er), -1);
	{
		/* an updated container's name goes back in a rollback: it must be a container name */
		static const char bad_name[] = "{\"state\":\"succeeded\",\"result\":{\"containers\":"
					       "[{\"name\":\"../x y\",\"status\":\"updated\"}]}}";

		assert_int_equal(fleet_parse_op(bad_name, strlen(bad_name), false, &op, &er), -1);
		assert_non_null(strstr(err, "no valid container name"));
	}

	assert_int_equal(fleet_parse_accepted("{\"operation\":\"0123456789abcdef\",\"state\":\"queued\"}", strlen("{\"operation\":\"0123456789abcdef\",\"state\":\"queued\"}"), id), 0);
	assert_string_equal(id, "0123456789abcdef");
	assert_int_equal(fleet_parse_accepted("{\"operation\":\"../../etc\"}", strlen("{\"operation\":\"../../etc\"}"), id), -1);
	assert_int_equal(fleet_parse_accepted("{}", strlen("{}"), id), -1);
}

static void test_health_and_errors(void **state)
{
	char v[64], msg[64];
	struct refit_err er = { 0 };
	const char *err = er.msg;
	bool paused;
	const char *ok = "{\"status\":\"ok\",\"version\":\"0.1.0\",\"paused\":true}";

	(void)state;
	assert_int_equal(fleet_parse_health(ok, strlen(ok), v, sizeof(v), &paused, &er), 0);
	assert_string_equal(v, "0.1.0");
	assert_true(paused);
	assert_int_equal(fleet_parse_health("{\"status\":\"degraded\"}", strlen("{\"status\":\"degraded\"}"), v, sizeof(v), &paused, &er), -1);
	assert_non_null(strstr(err, "degraded"));
	assert_int_equal(fleet_parse_health("<html>", strlen("<html>"), v, sizeof(v), &paused, &er), -1);
	fleet_parse_error("{\"error\":\"updates are paused\"}", strlen("{\"error\":\"updates are paused\"}"), msg, sizeof(msg));
	assert_string_equal(msg, "updates are paused");
	fleet_parse_error("nope", strlen("nope"), msg, sizeof(msg));
	assert_string_equal(msg, "");
}

static void test_containers_answer(void **state)
{
	struct fleet_op op;
	struct refit_err er = { 0 };
	const char *body = "{\"containers\":[{\"name\":\"x\",\"id\":\"abc\",\"image\":\"r/x:1\",\"current_digest\":\"sha256:aa\","
			   "\"latest_digest\":\"sha256:aa\",\"status\":\"up-to-date\",\"strategy\":\"recreate\"}]}";

	(void)state;
	assert_int_equal(fleet_parse_containers(body, strlen(body), &op, &er), 0);
	assert_int_equal(op.n, 1);
	assert_string_equal(op.v[0].image, "r/x:1");
	assert_string_equal(op.v[0].old_digest, "sha256:aa");
	fleet_op_free(&op);
	assert_int_equal(fleet_parse_containers("{\"containers\":{}}", strlen("{\"containers\":{}}"), &op, &er), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_aliases_and_limits),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_token_files),
		cmocka_unit_test(test_op_answers),
		cmocka_unit_test(test_health_and_errors),
		cmocka_unit_test(test_containers_answer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
