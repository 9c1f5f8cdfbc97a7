/* Unit tests for WWW-Authenticate challenge parsing (src/registry-challenge.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "refit/challenge.h"

struct valid_case {
	const char *in;
	enum challenge_scheme scheme;
	const char *realm, *service, *scope, *error; /* NULL when absent */
};

static const struct valid_case valid_cases[] = {
	{ "Bearer realm=\"https://ghcr.io/token\",service=\"ghcr.io\","
	  "scope=\"repository:user/image:pull\"",
	  CHALLENGE_BEARER, "https://ghcr.io/token", "ghcr.io", "repository:user/image:pull", NULL },
	{ "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
	  "scope=\"repository:library/nginx:pull\",error=\"insufficient_scope\"",
	  CHALLENGE_BEARER, "https://auth.docker.io/token", "registry.docker.io",
	  "repository:library/nginx:pull", "insufficient_scope" },
	{ "Basic realm=\"Registry Realm\"", CHALLENGE_BASIC, "Registry Realm", NULL, NULL, NULL },
	{ "basic realm=x", CHALLENGE_BASIC, "x", NULL, NULL, NULL },
	{ "Basic", CHALLENGE_BASIC, NULL, NULL, NULL, NULL },
	{ "BASIC   ", CHALLENGE_BASIC, NULL, NULL, NULL, NULL },
	{ "Bearer realm=http://127.0.0.1:5001/token , service = \"reg\"", CHALLENGE_BEARER,
	  "http://127.0.0.1:5001/token", "reg", NULL, NULL },
	{ "Bearer realm=\"r\",scope=\"repository:a:pull,push\"", CHALLENGE_BEARER, "r", NULL,
	  "repository:a:pull,push", NULL },
	{ "Negotiate, Basic realm=\"x\"", CHALLENGE_BASIC, "x", NULL, NULL, NULL },
	{ "Negotiate abc123==, Basic realm=\"x\"", CHALLENGE_BASIC, "x", NULL, NULL, NULL },
	{ "Negotiate a/b+c~d.e_f-== , Basic realm=x", CHALLENGE_BASIC, "x", NULL, NULL, NULL },
	/* Bearer is preferred wherever it stands */
	{ "Basic realm=\"b\", Bearer realm=\"t\",service=\"s\"", CHALLENGE_BEARER, "t", "s", NULL,
	  NULL },
	{ "Bearer realm=\"t\", Basic realm=\"b\"", CHALLENGE_BEARER, "t", NULL, NULL, NULL },
	/* a realm-less Bearer is unusable; Basic is the fallback */
	{ "Bearer service=\"s\", Basic realm=\"b\"", CHALLENGE_BASIC, "b", NULL, NULL, NULL },
	{ "Bearer realm=\"\", Basic", CHALLENGE_BASIC, NULL, NULL, NULL, NULL },
	/* the first of several Bearers, the first of repeated parameters */
	{ "Bearer realm=\"one\", Bearer realm=\"two\"", CHALLENGE_BEARER, "one", NULL, NULL, NULL },
	{ "Bearer realm=\"one\", realm=\"two\"", CHALLENGE_BEARER, "one", NULL, NULL, NULL },
	/* case-insensitive scheme and parameter names, values kept as sent */
	{ "bEaReR REALM=\"https://X/token\",Service=Reg,SCOPE=\"a\",Error=E", CHALLENGE_BEARER,
	  "https://X/token", "Reg", "a", "E" },
	/* backslash escapes inside quoted strings */
	{ "Bearer realm=\"a\\\"b\\\\c\\d\"", CHALLENGE_BEARER, "a\"b\\cd", NULL, NULL, NULL },
	/* unknown parameters and schemes are ignored, empty list elements tolerated */
	{ "Bearer realm=\"r\",foo=bar,x=\"y,z\",service=\"s\"", CHALLENGE_BEARER, "r", "s", NULL,
	  NULL },
	{ " , Bearer realm=r ,, service=s ,", CHALLENGE_BEARER, "r", "s", NULL, NULL },
	{ "Digest realm=\"d\", qop=\"auth\", nonce=\"n\", Basic realm=\"b\"", CHALLENGE_BASIC, "b",
	  NULL, NULL, NULL },
	/* Basic keeps only its realm */
	{ "Basic realm=\"b\", service=\"s\", charset=\"UTF-8\"", CHALLENGE_BASIC, "b", NULL, NULL,
	  NULL },
	{ "Bearer\trealm=\"t\"\t,\tservice=\"s\"\r\n", CHALLENGE_BEARER, "t", "s", NULL, NULL },
	{ "Bearer realm=\"caf\xc3\xa9\"", CHALLENGE_BEARER, "caf\xc3\xa9", NULL, NULL, NULL },
};

struct invalid_case {
	const char *in;
	const char *msg; /* a piece the message must contain */
};

static const struct invalid_case invalid_cases[] = {
	{ "", "empty" },
	{ "   ", "empty" },
	{ ",", "empty" },
	{ "Bearer realm=\"https://ghcr.io/token", "unterminated" },
	{ "Bearer realm=\"x\\", "unterminated" },
	{ "Bearer realm=\"x\", scope=\"y", "unterminated" },
	{ "Negotiate x=\"open", "unterminated" },
	{ "Bearer realm=\"a\x01\"", "control" },
	{ "Bearer service=x, realm=", "value missing" },
	{ "Bearer service=x, realm=,scope=y", "value missing" },
	{ "Bearer service=x, realm= ", "value missing" },
	{ "Bearer realm=", "without realm" }, /* "realm=" alone reads as a token68 */
	{ "Bearer realm=\"x\" service=\"y\"", "expected ','" },
	{ "Bearer realm=\"x\"junk", "expected ','" },
	{ "Bearer =x", "without an auth scheme" },
	{ "Bearer realm=x, =y", "unexpected character" },
	{ "Bearer \"x\"", "unexpected character" },
	{ "realm=\"x\"", "without an auth scheme" },
	{ "realm = x", "without an auth scheme" },
	{ "\"Bearer\"", "expected an auth scheme" },
	{ "Negotiate", "no Basic or Bearer" },
	{ "Negotiate abc==, Digest realm=x", "no Basic or Bearer" },
	{ "Bearer", "without realm" },
	{ "Bearer service=\"s\"", "without realm" },
	{ "Bearer realm=\"\"", "without realm" },
};

/* Fail with INPUT named unless GOT equals WANT (both may be NULL). */
static void check_str(const char *input, const char *what, const char *want, const char *got)
{
	if (!want && !got)
		return;
	if (!want || !got || strcmp(want, got) != 0)
		fail_msg("'%s': %s is \"%s\", want \"%s\"", input, what, got ? got : "(null)",
			 want ? want : "(null)");
}

/* Fail unless C is all zeroes. */
static void check_zeroed(const char *input, const struct challenge *c)
{
	if (c->scheme != CHALLENGE_NONE || c->realm || c->service || c->scope || c->error)
		fail_msg("'%s': result not zeroed", input);
}

/* Every valid header value gives the expected challenge. */
static void test_valid_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
		const struct valid_case *v = &valid_cases[i];
		struct refit_err e = { 0 };
		struct challenge c;

		if (challenge_parse(v->in, &c, &e) != 0)
			fail_msg("'%s': unexpected failure: %s", v->in, e.msg);
		if (c.scheme != v->scheme)
			fail_msg("'%s': scheme %d, want %d", v->in, (int)c.scheme, (int)v->scheme);
		check_str(v->in, "realm", v->realm, c.realm);
		check_str(v->in, "service", v->service, c.service);
		check_str(v->in, "scope", v->scope, c.scope);
		check_str(v->in, "error", v->error, c.error);
		challenge_free(&c);
		check_zeroed(v->in, &c);
	}
}

/* Every invalid header value fails with a message and a zeroed result. */
static void test_invalid_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
		const struct invalid_case *v = &invalid_cases[i];
		struct refit_err e = { 0 };
		struct challenge c;

		memset(&c, 0xa5, sizeof(c));
		if (challenge_parse(v->in, &c, &e) != -1)
			fail_msg("'%s': accepted", v->in);
		check_zeroed(v->in, &c);
		if (e.kind != ERR_FAILED)
			fail_msg("'%s': error kind %d", v->in, e.kind);
		if (!strstr(e.msg, v->msg))
			fail_msg("'%s': message \"%s\" lacks \"%s\"", v->in, e.msg, v->msg);
	}
}

/* Values up to CHALLENGE_MAX are taken, longer ones refused. */
static void test_length_bound(void **state)
{
	static char buf[CHALLENGE_MAX + 2];
	struct refit_err e = { 0 };
	struct challenge c;
	size_t pre = strlen("Bearer realm=\"");

	(void)state;
	memcpy(buf, "Bearer realm=\"", pre);
	memset(buf + pre, 'r', CHALLENGE_MAX - pre - 1);
	buf[CHALLENGE_MAX - 1] = '"';
	buf[CHALLENGE_MAX] = '\0';
	assert_int_equal(challenge_parse(buf, &c, &e), 0);
	assert_int_equal(strlen(c.realm), CHALLENGE_MAX - pre - 1);
	challenge_free(&c);

	buf[CHALLENGE_MAX - 1] = 'r';
	buf[CHALLENGE_MAX] = '"';
	buf[CHALLENGE_MAX + 1] = '\0';
	assert_int_equal(challenge_parse(buf, &c, &e), -1);
	assert_non_null(strstr(e.msg, "longer than"));
	check_zeroed("long", &c);
}

/* Messages show a bounded, escaped piece of the header. */
static void test_message_quoting(void **state)
{
	struct refit_err e = { 0 };
	struct challenge c;

	(void)state;
	assert_int_equal(challenge_parse("Bearer realm=\"x\" \x1b[2Jjunkjunkjunkjunkjunkjunkjunkjunkjunk",
					 &c, &e), -1);
	assert_null(strchr(e.msg, '\x1b'));
	assert_non_null(strstr(e.msg, "\\x1b[2J"));
	assert_non_null(strstr(e.msg, "..."));
}

/* NULL arguments are refused or ignored, never dereferenced. */
static void test_null_safety(void **state)
{
	struct refit_err e = { 0 };
	struct challenge c;

	(void)state;
	assert_int_equal(challenge_parse(NULL, &c, &e), -1);
	check_zeroed("NULL", &c);
	assert_int_equal(challenge_parse("Basic", NULL, &e), -1);
	assert_int_equal(challenge_parse("Basic realm=x", &c, NULL), 0);
	challenge_free(&c);
	assert_int_equal(challenge_parse("Basic realm=\"x", &c, NULL), -1);
	challenge_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_table),
		cmocka_unit_test(test_invalid_table),
		cmocka_unit_test(test_length_bound),
		cmocka_unit_test(test_message_quoting),
		cmocka_unit_test(test_null_safety),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
