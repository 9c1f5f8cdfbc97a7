/* Unit tests for image reference parsing and normalisation (src/imageref.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "refit/imageref.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX32 "0123456789abcdef0123456789abcdef"

struct valid_case {
	const char *in;
	const char *domain, *path, *tag, *digest; /* tag and digest may be NULL */
	const char *repo, *str, *host;
};

static const struct valid_case valid_cases[] = {
	{ "nginx", "docker.io", "library/nginx", "latest", NULL, "docker.io/library/nginx",
	  "docker.io/library/nginx:latest", "registry-1.docker.io" },
	{ "nginx:1.25", "docker.io", "library/nginx", "1.25", NULL, "docker.io/library/nginx",
	  "docker.io/library/nginx:1.25", "registry-1.docker.io" },
	{ "library/nginx", "docker.io", "library/nginx", "latest", NULL,
	  "docker.io/library/nginx", "docker.io/library/nginx:latest", "registry-1.docker.io" },
	{ "docker.io/nginx", "docker.io", "library/nginx", "latest", NULL,
	  "docker.io/library/nginx", "docker.io/library/nginx:latest", "registry-1.docker.io" },
	{ "index.docker.io/nginx", "docker.io", "library/nginx", "latest", NULL,
	  "docker.io/library/nginx", "docker.io/library/nginx:latest", "registry-1.docker.io" },
	{ "index.docker.io/library/nginx:alpine", "docker.io", "library/nginx", "alpine", NULL,
	  "docker.io/library/nginx", "docker.io/library/nginx:alpine", "registry-1.docker.io" },
	{ "docker.io/library/foo/bar", "docker.io", "library/foo/bar", "latest", NULL,
	  "docker.io/library/foo/bar", "docker.io/library/foo/bar:latest",
	  "registry-1.docker.io" },
	{ "localhost/foo", "localhost", "foo", "latest", NULL, "localhost/foo",
	  "localhost/foo:latest", "localhost" },
	{ "localhost:5000/foo:bar", "localhost:5000", "foo", "bar", NULL, "localhost:5000/foo",
	  "localhost:5000/foo:bar", "localhost:5000" },
	{ "127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", "latest", NULL, "127.0.0.1:5000/a/b",
	  "127.0.0.1:5000/a/b:latest", "127.0.0.1:5000" },
	{ "[::1]:5000/a:1", "[::1]:5000", "a", "1", NULL, "[::1]:5000/a", "[::1]:5000/a:1",
	  "[::1]:5000" },
	{ "[::1]/a", "[::1]", "a", "latest", NULL, "[::1]/a", "[::1]/a:latest", "[::1]" },
	{ "[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000",
	  "library/debian", "latest", NULL, "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
	  "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest", "[fc00:1:2:3:4:5:6:7]:5000" },
	{ "ghcr.io/its-define/avatar-controller:latest", "ghcr.io",
	  "its-define/avatar-controller", "latest", NULL, "ghcr.io/its-define/avatar-controller",
	  "ghcr.io/its-define/avatar-controller:latest", "ghcr.io" },
	{ "a/b@sha256:" HEX64, "docker.io", "a/b", NULL, "sha256:" HEX64, "docker.io/a/b",
	  "docker.io/a/b@sha256:" HEX64, "registry-1.docker.io" },
	{ "a:1@sha256:" HEX64, "docker.io", "library/a", "1", "sha256:" HEX64,
	  "docker.io/library/a", "docker.io/library/a:1@sha256:" HEX64, "registry-1.docker.io" },
	{ "a@sha384:" HEX64 HEX32, "docker.io", "library/a", NULL, "sha384:" HEX64 HEX32,
	  "docker.io/library/a", "docker.io/library/a@sha384:" HEX64 HEX32,
	  "registry-1.docker.io" },
	{ "a@sha512:" HEX64 HEX64, "docker.io", "library/a", NULL, "sha512:" HEX64 HEX64,
	  "docker.io/library/a", "docker.io/library/a@sha512:" HEX64 HEX64,
	  "registry-1.docker.io" },
	{ "a--b", "docker.io", "library/a--b", "latest", NULL, "docker.io/library/a--b",
	  "docker.io/library/a--b:latest", "registry-1.docker.io" },
	{ "a__b", "docker.io", "library/a__b", "latest", NULL, "docker.io/library/a__b",
	  "docker.io/library/a__b:latest", "registry-1.docker.io" },
	{ "docker---rules/dock__er.x_y-z", "docker.io", "docker---rules/dock__er.x_y-z", "latest",
	  NULL, "docker.io/docker---rules/dock__er.x_y-z",
	  "docker.io/docker---rules/dock__er.x_y-z:latest", "registry-1.docker.io" },
	{ "localhost", "docker.io", "library/localhost", "latest", NULL,
	  "docker.io/library/localhost", "docker.io/library/localhost:latest",
	  "registry-1.docker.io" },
	{ "localhost:5000", "docker.io", "library/localhost", "5000", NULL,
	  "docker.io/library/localhost", "docker.io/library/localhost:5000",
	  "registry-1.docker.io" },
	{ "index.docker.io", "docker.io", "library/index.docker.io", "latest", NULL,
	  "docker.io/library/index.docker.io", "docker.io/library/index.docker.io:latest",
	  "registry-1.docker.io" },
	{ "foo.com:5000", "docker.io", "library/foo.com", "5000", NULL,
	  "docker.io/library/foo.com", "docker.io/library/foo.com:5000",
	  "registry-1.docker.io" },
	{ "foo.com/bar:5000", "foo.com", "bar", "5000", NULL, "foo.com/bar", "foo.com/bar:5000",
	  "foo.com" },
	{ "192.168.0.1", "docker.io", "library/192.168.0.1", "latest", NULL,
	  "docker.io/library/192.168.0.1", "docker.io/library/192.168.0.1:latest",
	  "registry-1.docker.io" },
	{ "xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", "latest", NULL,
	  "xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo:latest", "xn--n3h.com:18080" },
	{ "test-com:8080/foo", "test-com:8080", "foo", "latest", NULL, "test-com:8080/foo",
	  "test-com:8080/foo:latest", "test-com:8080" },
	{ "test_com/foo", "docker.io", "test_com/foo", "latest", NULL, "docker.io/test_com/foo",
	  "docker.io/test_com/foo:latest", "registry-1.docker.io" },
	/* Docker: an upper-case first component is taken for a domain. */
	{ "Foo/bar", "Foo", "bar", "latest", NULL, "Foo/bar", "Foo/bar:latest", "Foo" },
	{ "FOO/bar:v1", "FOO", "bar", "v1", NULL, "FOO/bar", "FOO/bar:v1", "FOO" },
	{ "Docker.io/foo", "Docker.io", "foo", "latest", NULL, "Docker.io/foo",
	  "Docker.io/foo:latest", "Docker.io" },
	{ "docker.io/" HEX64, "docker.io", "library/" HEX64, "latest", NULL,
	  "docker.io/library/" HEX64, "docker.io/library/" HEX64 ":latest",
	  "registry-1.docker.io" },
	{ HEX64 ":v1", "docker.io", "library/" HEX64, "v1", NULL, "docker.io/library/" HEX64,
	  "docker.io/library/" HEX64 ":v1", "registry-1.docker.io" },
	{ "busybox:Latest_1.2-x", "docker.io", "library/busybox", "Latest_1.2-x", NULL,
	  "docker.io/library/busybox", "docker.io/library/busybox:Latest_1.2-x",
	  "registry-1.docker.io" },
	{ "a:_", "docker.io", "library/a", "_", NULL, "docker.io/library/a",
	  "docker.io/library/a:_", "registry-1.docker.io" },
	{ "1", "docker.io", "library/1", "latest", NULL, "docker.io/library/1",
	  "docker.io/library/1:latest", "registry-1.docker.io" },
};

struct invalid_case {
	const char *in;
	const char *msg; /* a piece the message must contain */
};

static const struct invalid_case invalid_cases[] = {
	{ "", "empty" },
	{ "Foo", "must be lowercase" },
	{ "foo/Bar", "must be lowercase" },
	{ "example.com/Foo", "must be lowercase" },
	{ "docker.io/docker/Docker", "must be lowercase" },
	{ "nginX:latest", "must be lowercase" },
	{ HEX64, "64-byte hexadecimal" },
	{ "a/b@sha256:" HEX32, "digest" },
	{ "a@sha256:" HEX64 "0", "digest" },
	{ "a@sha256:XYZ", "digest" },
	{ "a@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "digest" },
	{ "a@SHA256:" HEX64, "digest" },
	{ "a@md5:" HEX32, "unsupported digest algorithm" },
	{ "a@sha256+b64.x-y_z:" HEX64, "unsupported digest algorithm" },
	{ "a@sha256:abc", "too short" },
	{ "a@sha256-:" HEX64, "digest" },
	{ "a@sha256" HEX64, "digest" },
	{ "a@:" HEX64, "digest" },
	{ "a@sha256:" HEX64 "@sha256:" HEX64, "digest" },
	{ "a:", "empty tag" },
	{ "a@", "empty digest" },
	{ "a:tag@", "empty digest" },
	{ ":tag", "missing repository name" },
	{ "@sha256:" HEX64, "missing repository name" },
	{ "example.com/:tag", "missing repository name" },
	{ "a:b:c", "tag" },
	{ "a:-b", "tag" },
	{ "a:.b", "tag" },
	{ "a:b/c", "domain" },
	{ "a//b", "repository name" },
	{ "a/b/", "repository name" },
	{ "/a", "repository name" },
	{ "-a", "repository name" },
	{ "a-", "repository name" },
	{ "a___b", "repository name" },
	{ "a+b", "repository name" },
	{ "____/____", "repository name" },
	{ "_docker/_docker", "repository name" },
	{ "dock..er/docker", "domain" },
	{ "dock_.er/docker", "domain" },
	{ "dock-.er/docker", "domain" },
	{ "docker-/docker", "repository name" },
	{ "-docker/docker", "repository name" },
	{ "docker///docker", "repository name" },
	{ "docker.io/docker///docker", "repository name" },
	{ "https://github.com/docker/docker", "domain" },
	{ "-docker.io/docker/docker", "domain" },
	{ "[fc00::1]", "" },
	{ "[fc00::1]:5000", "" },
	{ "fc00::1:5000/debian", "domain" },
	{ "[fe80::1%eth0]:5000/debian", "domain" },
	{ "[2001:db8:3:4::192.0.2.33]:5000/debian", "domain" },
	{ "[]:5000/a", "domain" },
	{ "[::1/a", "domain" },
	{ "localhost:/foo", "domain" },
	{ "foo.com:5a/bar", "domain" },
	{ "foo..com/bar", "domain" },
	{ "foo-.com/bar", "domain" },
	{ "a_b.c/d", "domain" },
	{ "a b", "whitespace" },
	{ " nginx", "whitespace" },
	{ "nginx ", "whitespace" },
	{ "nginx\n", "whitespace" },
	{ "nginx\t:1", "whitespace" },
	{ "ngi\x01nx", "control" },
	{ "ngi\xc3\xa9nx", "non-ASCII" },
	{ "a@b.c/d", "domain" },
};

/* Fail with INPUT named unless GOT equals WANT (both may be NULL). */
static void check_str(const char *input, const char *what, const char *want, const char *got)
{
	if (!want && !got)
		return;
	if (!want || !got || strcmp(want, got) != 0)
		fail_msg("\"%s\": %s is \"%s\", want \"%s\"", input, what, got ? got : "(null)",
			 want ? want : "(null)");
}

/* Fail unless R is all zeroes. */
static void check_zeroed(const char *input, const struct imageref *r)
{
	if (r->domain || r->path || r->tag || r->digest)
		fail_msg("\"%s\": result not zeroed after failure", input);
}

/* Every valid reference parses to the expected fields and forms. */
static void test_valid_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
		const struct valid_case *c = &valid_cases[i];
		struct refit_err e = { 0 };
		struct imageref r;
		char *repo, *str;

		if (imageref_parse(c->in, &r, &e) != 0)
			fail_msg("\"%s\": unexpected failure: %s", c->in, e.msg);
		check_str(c->in, "domain", c->domain, r.domain);
		check_str(c->in, "path", c->path, r.path);
		check_str(c->in, "tag", c->tag, r.tag);
		check_str(c->in, "digest", c->digest, r.digest);
		repo = imageref_repository(&r);
		str = imageref_string(&r);
		check_str(c->in, "repository", c->repo, repo);
		check_str(c->in, "string", c->str, str);
		check_str(c->in, "registry host", c->host, imageref_registry_host(&r));
		free(repo);
		free(str);
		imageref_free(&r);
		check_zeroed(c->in, &r);
	}
}

/* The normalised form of every valid reference parses to itself. */
static void test_roundtrip(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
		struct refit_err e = { 0 };
		struct imageref r;
		char *str;

		assert_int_equal(imageref_parse(valid_cases[i].str, &r, &e), 0);
		str = imageref_string(&r);
		assert_non_null(str);
		check_str(valid_cases[i].str, "string again", valid_cases[i].str, str);
		free(str);
		imageref_free(&r);
	}
}

/* Every invalid reference fails with ERR_USAGE, a message and a zeroed result. */
static void test_invalid_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
		const struct invalid_case *c = &invalid_cases[i];
		struct refit_err e = { 0 };
		struct imageref r;

		memset(&r, 0xa5, sizeof(r));
		if (imageref_parse(c->in, &r, &e) != -1) {
			char *str = imageref_string(&r);

			fail_msg("\"%s\": accepted as \"%s\"", c->in, str ? str : "?");
		}
		check_zeroed(c->in, &r);
		if (e.kind != ERR_USAGE)
			fail_msg("\"%s\": error kind %d", c->in, e.kind);
		if (!e.msg[0] || !strstr(e.msg, c->msg))
			fail_msg("\"%s\": message \"%s\" lacks \"%s\"", c->in, e.msg, c->msg);
	}
}

/* Fill BUF with PREFIX, N copies of C and SUFFIX; return BUF. */
static char *repeat(char *buf, const char *prefix, char c, size_t n, const char *suffix)
{
	size_t pn = strlen(prefix);

	memcpy(buf, prefix, pn);
	memset(buf + pn, c, n);
	strcpy(buf + pn + n, suffix);
	return buf;
}

/* The path may have 255 characters, counting Docker Hub's library/ prefix. */
static void test_name_length(void **state)
{
	struct refit_err e = { 0 };
	struct imageref r;
	char buf[600];

	(void)state;
	/* "library/" + 247 = 255 */
	assert_int_equal(imageref_parse(repeat(buf, "", 'a', 247, ""), &r, &e), 0);
	assert_int_equal(strlen(r.path), 255);
	imageref_free(&r);
	assert_int_equal(imageref_parse(repeat(buf, "", 'a', 248, ""), &r, &e), -1);
	assert_non_null(strstr(e.msg, "255"));
	check_zeroed(buf, &r);
	assert_int_equal(imageref_parse(repeat(buf, "", 'a', 256, ""), &r, &e), -1);
	check_zeroed(buf, &r);
	assert_int_equal(imageref_parse(repeat(buf, "example.com/", 'a', 255, ""), &r, &e), 0);
	assert_int_equal(strlen(r.path), 255);
	imageref_free(&r);
	assert_int_equal(imageref_parse(repeat(buf, "example.com/", 'a', 256, ""), &r, &e), -1);
	assert_non_null(strstr(e.msg, "255"));
	check_zeroed(buf, &r);
}

/* A tag may have 128 characters, not 129. */
static void test_tag_length(void **state)
{
	struct refit_err e = { 0 };
	struct imageref r;
	char buf[300];

	(void)state;
	assert_int_equal(imageref_parse(repeat(buf, "a:", 't', 128, ""), &r, &e), 0);
	assert_int_equal(strlen(r.tag), 128);
	imageref_free(&r);
	assert_int_equal(imageref_parse(repeat(buf, "a:", 't', 129, ""), &r, &e), -1);
	assert_int_equal(e.kind, ERR_USAGE);
	assert_non_null(strstr(e.msg, "tag"));
	check_zeroed(buf, &r);
}

/* Inputs beyond IMAGEREF_MAX are refused, and the message quotes only a prefix. */
static void test_input_bound(void **state)
{
	struct refit_err e = { 0 };
	struct imageref r;
	char buf[IMAGEREF_MAX + 64];
	size_t dn;

	(void)state;
	/* a long but valid domain: 63-character labels */
	strcpy(buf, "");
	for (dn = 0; dn + 64 <= IMAGEREF_MAX - 20; dn += 64)
		repeat(buf + dn, "", 'd', 63, ".");
	strcpy(buf + dn, "com/x");
	assert_int_equal(imageref_parse(buf, &r, &e), 0);
	imageref_free(&r);

	repeat(buf, "", 'a', IMAGEREF_MAX + 1, "");
	assert_int_equal(imageref_parse(buf, &r, &e), -1);
	assert_non_null(strstr(e.msg, "1024"));
	assert_true(strlen(e.msg) < 200);
	check_zeroed(buf, &r);

	/* exactly IMAGEREF_MAX, but ":latest" would push it over */
	memset(buf, 0, sizeof(buf));
	for (dn = 0; dn + 64 <= IMAGEREF_MAX - 10; dn += 64)
		repeat(buf + dn, "", 'd', 63, ".");
	repeat(buf + dn, "", 'e', IMAGEREF_MAX - dn - 2, "/x");
	assert_int_equal(strlen(buf), IMAGEREF_MAX);
	assert_int_equal(imageref_parse(buf, &r, &e), -1);
	assert_non_null(strstr(e.msg, "normalised"));
	check_zeroed(buf, &r);
	/* the same with a tag is fine */
	buf[IMAGEREF_MAX - 4] = '\0';
	strcat(buf, "/x:1");
	assert_int_equal(strlen(buf), IMAGEREF_MAX);
	assert_int_equal(imageref_parse(buf, &r, &e), 0);
	imageref_free(&r);
}

/* Messages escape control bytes and quotes from the input. */
static void test_message_quoting(void **state)
{
	struct refit_err e = { 0 };
	struct imageref r;

	(void)state;
	assert_int_equal(imageref_parse("a\"b\x1b[0m", &r, &e), -1);
	assert_null(strchr(e.msg, '\x1b'));
	assert_non_null(strstr(e.msg, "a\\x22b\\x1b"));
}

/* NULL arguments are refused or ignored, never dereferenced. */
static void test_null_safety(void **state)
{
	struct refit_err e = { 0 };
	struct imageref r;

	(void)state;
	assert_int_equal(imageref_parse(NULL, &r, &e), -1);
	assert_int_equal(e.kind, ERR_USAGE);
	check_zeroed("NULL", &r);
	assert_int_equal(imageref_parse("nginx", NULL, &e), -1);
	assert_int_equal(imageref_parse("nginx", &r, NULL), 0);
	imageref_free(&r);
	assert_int_equal(imageref_parse("Nginx", &r, NULL), -1);
	imageref_free(NULL);
	assert_null(imageref_repository(NULL));
	assert_null(imageref_string(NULL));
	assert_null(imageref_registry_host(NULL));
	memset(&r, 0, sizeof(r));
	assert_null(imageref_string(&r));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_table),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_invalid_table),
		cmocka_unit_test(test_name_length),
		cmocka_unit_test(test_tag_length),
		cmocka_unit_test(test_input_bound),
		cmocka_unit_test(test_message_quoting),
		cmocka_unit_test(test_null_safety),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
