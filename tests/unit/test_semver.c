/* Unit tests: version order, constraints, refit.track rules, tags/list bodies and Link headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "refit/semver.h"
#include "refit/tags.h"

/* Sign of an int. */
static int sign(int v)
{
	return (v > 0) - (v < 0);
}

static void test_parse(void **state)
{
	static const struct {
		const char *s;
		bool ok;
		unsigned long long ma, mi, pa;
		const char *pre;
	} rows[] = {
		{ "1.2.3", true, 1, 2, 3, "" },
		{ "v1.2.3", true, 1, 2, 3, "" },
		{ "V10.20.30", true, 10, 20, 30, "" },
		{ "0.0.0", true, 0, 0, 0, "" },
		{ "2.1.0-rc.1", true, 2, 1, 0, "rc.1" },
		{ "1.0.0-alpha-beta.0.x", true, 1, 0, 0, "alpha-beta.0.x" },
		{ "1.0.0+build.5", true, 1, 0, 0, "" },
		{ "1.0.0-rc.1+build.5", true, 1, 0, 0, "rc.1" },
		{ "1.2", false, 0, 0, 0, NULL },
		{ "1", false, 0, 0, 0, NULL },
		{ "latest", false, 0, 0, 0, NULL },
		{ "01.2.3", false, 0, 0, 0, NULL },
		{ "1.02.3", false, 0, 0, 0, NULL },
		{ "1.2.3-", false, 0, 0, 0, NULL },
		{ "1.2.3-rc..1", false, 0, 0, 0, NULL },
		{ "1.2.3-01", false, 0, 0, 0, NULL },
		{ "1.2.3+", false, 0, 0, 0, NULL },
		{ "1.2.3_4", false, 0, 0, 0, NULL },
		{ "vv1.2.3", false, 0, 0, 0, NULL },
		{ "1.2.3.4", false, 0, 0, 0, NULL },
		{ "", false, 0, 0, 0, NULL },
		{ "9999999999999999999.0.0", false, 0, 0, 0, NULL }, /* too many digits */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct semver v;
		int rc = semver_parse(rows[i].s, &v);

		if (rc != (rows[i].ok ? 0 : -1))
			fail_msg("semver_parse(\"%s\") = %d", rows[i].s, rc);
		if (!rows[i].ok)
			continue;
		assert_true(v.major == rows[i].ma && v.minor == rows[i].mi && v.patch == rows[i].pa);
		assert_string_equal(v.pre, rows[i].pre);
	}
	assert_int_equal(semver_parse(NULL, NULL), -1);
}

static void test_order(void **state)
{
	/* Each row: A, B, and the sign of cmp(A, B). */
	static const struct {
		const char *a, *b;
		int want;
	} rows[] = {
		{ "1.10.0", "1.2.0", 1 },  /* numeric, not lexical */
		{ "1.2.10", "1.2.9", 1 },
		{ "10.0.0", "9.9.9", 1 },
		{ "2.0.0", "1.99.99", 1 },
		{ "1.2.3", "v1.2.3", 0 },  /* the v prefix does not count */
		{ "1.2.3+a", "1.2.3+b", 0 }, /* build metadata does not count */
		{ "1.0.0", "1.0.0-rc.1", 1 }, /* a release is above its pre-releases */
		{ "1.0.0-alpha", "1.0.0-alpha.1", -1 },
		{ "1.0.0-alpha.1", "1.0.0-alpha.beta", -1 }, /* numeric below alphanumeric */
		{ "1.0.0-alpha.beta", "1.0.0-beta", -1 },
		{ "1.0.0-beta", "1.0.0-beta.2", -1 },
		{ "1.0.0-beta.2", "1.0.0-beta.11", -1 }, /* numeric identifiers by value */
		{ "1.0.0-beta.11", "1.0.0-rc.1", -1 },
		{ "1.0.0-rc.1", "1.0.0", -1 },
		{ "2.1.0-rc.1", "2.0.0", 1 },
		{ "2.1.0-rc.1", "2.1.0", -1 },
		{ "1.0.0-rc.1", "1.0.0-rc.1", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct semver a, b;

		assert_int_equal(semver_parse(rows[i].a, &a), 0);
		assert_int_equal(semver_parse(rows[i].b, &b), 0);
		if (sign(semver_cmp(&a, &b)) != rows[i].want || sign(semver_cmp(&b, &a)) != -rows[i].want)
			fail_msg("cmp(%s, %s) = %d, want %d", rows[i].a, rows[i].b, semver_cmp(&a, &b), rows[i].want);
	}
}

static void test_ranges(void **state)
{
	static const struct {
		const char *range, *version;
		bool match;
	} rows[] = {
		{ "^2", "2.0.0", true },       { "^2", "2.9.9", true },        { "^2", "3.0.0", false },
		{ "^2", "1.9.9", false },      { "^2.3", "2.3.0", true },      { "^2.3", "2.2.9", false },
		{ "^2.3", "2.99.0", true },    { "^2.3.4", "2.3.3", false },   { "^2.3.4", "2.3.4", true },
		{ "^0.3", "0.3.9", true },     { "^0.3", "0.4.0", false },     { "^0.0.3", "0.0.3", true },
		{ "^0.0.3", "0.0.4", false },  { "^0", "0.9.0", true },        { "^0", "1.0.0", false },
		{ "^v2", "2.1.0", true },      { "~2.3", "2.3.7", true },      { "~2.3", "2.4.0", false },
		{ "~2.3.4", "2.3.3", false },  { "~2.3.4", "2.3.9", true },    { "~2", "2.9.0", true },
		{ "~2", "3.0.0", false },      { "2.x", "2.5.1", true },       { "2.x", "3.0.0", false },
		{ "2.X", "2.0.0", true },      { "2.*", "1.0.0", false },      { "2.3.x", "2.3.9", true },
		{ "2.3.x", "2.4.0", false },   { "2", "2.7.0", true },         { "2.3", "2.3.1", true },
		{ "2.3", "2.4.0", false },     { "1.2.3", "1.2.3", true },     { "1.2.3", "1.2.4", false },
		{ "=1.2.3", "1.2.3", true },   { "2.x.x", "2.1.1", true },     { "^2", "2.1.0-rc.1", true },
		{ "^2", "3.0.0-rc.1", false },
	};
	static const char *const bad[] = { "", "^", "~", "x", "*", "2.", "^2.x", "2.x.1", "1.2.3.4", "a.b",
					   "^-1", "1.2.3-rc.1", ">=2", "2 || 3", "^02", NULL };

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct semver_range r;
		struct semver v;
		struct refit_err er = { 0 };
		const char *err = er.msg;

		if (semver_range_parse(rows[i].range, &r, &er) < 0)
			fail_msg("range \"%s\": %s", rows[i].range, err);
		assert_int_equal(semver_parse(rows[i].version, &v), 0);
		if (semver_range_match(&r, &v) != rows[i].match)
			fail_msg("%s in %s: want %d", rows[i].version, rows[i].range, rows[i].match);
	}
	for (size_t i = 0; bad[i]; i++) {
		struct semver_range r;
		struct refit_err er = { 0 };
		const char *err = er.msg;

		if (semver_range_parse(bad[i], &r, &er) == 0)
			fail_msg("range \"%s\" was accepted", bad[i]);
		assert_non_null(strstr(err, "constraint"));
	}
}

/* The tag a rule picks from CURRENT among TAGS (NULL-terminated), or NULL; "!" + error when it cannot apply. */
static const char *pick(const char *rule, const char *current, const char *const *tags, char *buf, size_t len)
{
	struct track_rule r;
	struct refit_err er = { 0 };
	const char *err = er.msg;
	size_t n = 0;
	long i;

	while (tags[n])
		n++;
	if (track_parse(rule, &r, &er) < 0)
		fail_msg("rule %s: %s", rule, err);
	i = track_pick(&r, current, (char *const *)tags, n, &er);
	track_free(&r);
	if (i == -2) {
		snprintf(buf, len, "!%.300s", err);
		return buf;
	}
	return i >= 0 ? tags[i] : NULL;
}

static void test_pick(void **state)
{
	static const char *const tags[] = { "latest", "1.2.0", "1.10.0", "1.9.3", "2.0.0", "2.1.0-rc.1", "v2.0.1",
					    "3.0.0-beta.1", "1.2.0-rc.1", "edge", "1.11.0",
					    "1.12.0+build.7" /* '+' is not in Docker tags: ignored */, NULL };
	static const struct {
		const char *rule, *current, *want;
	} rows[] = {
		{ "semver", "1.2.0", "v2.0.1" },            /* highest release, v prefix allowed */
		{ "semver:^1", "1.2.0", "1.11.0" },  /* 1.11 > 1.10 > 1.9 numerically */
		{ "semver:~1.9", "1.9.0", "1.9.3" },
		{ "semver:1.10.x", "1.2.0", "1.10.0" },
		{ "semver:^2", "1.2.0", "v2.0.1" },
		{ "semver:^3", "1.2.0", NULL },             /* only a pre-release: not for a release */
		{ "semver", "v2.0.1", NULL },               /* nothing higher */
		{ "semver:^1", "2.0.0", NULL },             /* never a downgrade */
		{ "semver", "2.1.0-rc.0", "3.0.0-beta.1" },  /* pre-releases for a pre-release */
		{ "semver:^2", "2.1.0-rc.0", "2.1.0-rc.1" },
		{ "semver:1.2.0", "1.2.0", NULL },          /* exact: already there */
		{ "semver:2.0.0", "1.2.0", "2.0.0" },
		{ "digest", "1.2.0", NULL },
		{ "regex:^1\\.", "1.2.0", "1.11.0" }, /* matches by version order */
		{ "regex:^1\\.(2|9)\\.", "1.2.0", "1.9.3" },
		{ "regex:^2", "1.2.0", "2.0.0" },           /* v2.0.1 does not match ^2 */
		{ "regex:^(edge|latest)$", "latest", "edge" }, /* not versions: the registry's order, forward */
		{ "regex:^(edge|latest)$", "edge", NULL },
		{ "regex:^1\\.", "latest", "1.11.0" },
	};
	static const char *const only_odd[] = { "b", "a", "c", NULL };
	char buf[400];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *got = pick(rows[i].rule, rows[i].current, tags, buf, sizeof(buf));

		if ((got == NULL) != (rows[i].want == NULL) || (got && strcmp(got, rows[i].want) != 0))
			fail_msg("%s from %s: got %s, want %s", rows[i].rule, rows[i].current, got ? got : "(stay)",
				 rows[i].want ? rows[i].want : "(stay)");
	}
	/* semver tracking of a tag that is not a version: a clear error */
	assert_string_equal(pick("semver", "latest", tags, buf, sizeof(buf)),
			    "!refit.track=semver: the current tag \"latest\" is not a version (MAJOR.MINOR.PATCH)");
	/* no current tag (pinned by digest only): the highest release */
	assert_string_equal(pick("semver", NULL, tags, buf, sizeof(buf)), "v2.0.1");
	/* registry order for non-versions; the current one not listed: the last match */
	assert_string_equal(pick("regex:^[a-c]$", "z", only_odd, buf, sizeof(buf)), "c");
	assert_null(pick("regex:^[a-c]$", "c", only_odd, buf, sizeof(buf)));
	assert_string_equal(pick("regex:^[a-c]$", "a", only_odd, buf, sizeof(buf)), "c");
	/* invalid tags from a registry are never candidates */
	{
		static const char *const odd[] = { "9.9.9 ", "-9.0.0", "1.3.0", NULL };

		assert_string_equal(pick("semver", "1.2.0", odd, buf, sizeof(buf)), "1.3.0");
	}
}

static void test_track_parse(void **state)
{
	static const char *const good[] = { "digest", "semver", "semver:^2", "semver:~2.3", "semver:2.x",
					    "regex:^v?[0-9]+\\.[0-9]+$", "regex:^v[0-9]{1,3}(\\.[0-9]+)*(-[a-z]+)?$",
					    "regex:^a\\++$", "regex:^[+*]+$", "", NULL };
	static const struct {
		const char *s, *msg;
	} bad[] = {
		{ "semver:", "constraint" },
		{ "semver:^x", "constraint" },
		{ "semvar", "is not digest, semver" },
		{ "regex:", "1 to 256 bytes" },
		{ "regex:(", "regex" },
		{ "regex:[a-", "regex" },
		{ "SEMVER", "is not digest" },
		/* glibc's regcomp copies a subexpression per "+" and per count: bounded before it runs */
		{ "regex:^(edge|latest++++++++++++++++++++++++++++++++++++++++++++++++)$", "may not follow" },
		{ "regex:a*+", "may not follow" },
		{ "regex:a{2}{3}", "may not follow" },
		{ "regex:(a{16}){16}", "at most one {m,n}" },
		{ "regex:a{17}", "counts up to 16" },
		{ "regex:a{2,}", "counts up to 16" },
		{ "regex:((((a)+)+)+)+", "at most three repeated groups" },
	};
	char big[400];

	(void)state;
	for (size_t i = 0; good[i]; i++) {
		struct track_rule r;
		struct refit_err er = { 0 };
		const char *err = er.msg;

		if (track_parse(good[i], &r, &er) < 0)
			fail_msg("\"%s\": %s", good[i], err);
		track_free(&r);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct track_rule r;
		struct refit_err er = { 0 };
		const char *err = er.msg;

		if (track_parse(bad[i].s, &r, &er) == 0)
			fail_msg("\"%s\" was accepted", bad[i].s);
		if (!strstr(err, bad[i].msg) || !strstr(err, "refit.track"))
			fail_msg("\"%s\": message \"%s\" lacks \"%s\"", bad[i].s, err, bad[i].msg);
	}
	/* the pattern length is bounded */
	memcpy(big, "regex:", 6);
	memset(big + 6, 'a', 300);
	big[306] = '\0';
	{
		struct track_rule r;
		struct refit_err er = { 0 };
		const char *err = er.msg;

		assert_int_equal(track_parse(big, &r, &er), -1);
		assert_non_null(strstr(err, "256"));
	}
}

static void test_tag_valid(void **state)
{
	char long_tag[200];

	(void)state;
	assert_true(tag_valid("1.2.3"));
	assert_true(tag_valid("v2-latest"));
	assert_true(tag_valid("_x"));
	assert_false(tag_valid(""));
	assert_false(tag_valid(".x"));
	assert_false(tag_valid("-x"));
	assert_false(tag_valid("a/b"));
	assert_false(tag_valid("a b"));
	assert_false(tag_valid("a:b"));
	assert_false(tag_valid("a@b"));
	assert_false(tag_valid(NULL));
	memset(long_tag, 'a', 128);
	long_tag[128] = '\0';
	assert_true(tag_valid(long_tag));
	long_tag[128] = 'a';
	long_tag[129] = '\0';
	assert_false(tag_valid(long_tag));
}

static void test_tags_body(void **state)
{
	struct tag_list l = { 0 };
	struct refit_err er = { 0 };
	const char *err = er.msg;
	const char *b1 = "{\"name\":\"a/b\",\"tags\":[\"1.0.0\",\"latest\",\"bad tag\",5,\"../x\",\"2.0.0\"]}";
	const char *b2 = "{\"name\":\"a/b\",\"tags\":null}";

	(void)state;
	assert_int_equal(tags_parse_body(b1, strlen(b1), &l, &er), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0], "1.0.0");
	assert_string_equal(l.v[1], "latest");
	assert_string_equal(l.v[2], "2.0.0");
	assert_int_equal(tags_parse_body(b2, strlen(b2), &l, &er), 0); /* an empty page */
	assert_int_equal(l.n, 3);
	assert_int_equal(tags_parse_body("[1]", 3, &l, &er), -1);
	assert_non_null(strstr(err, "object"));
	assert_int_equal(tags_parse_body("{\"tags\":\"x\"}", 12, &l, &er), -1);
	assert_non_null(strstr(err, "tags"));
	assert_int_equal(tags_parse_body("{", 1, &l, &er), -1);
	assert_int_equal(tags_parse_body("", 0, &l, &er), -1);
	assert_false(l.truncated);
	tag_list_free(&l);
	assert_int_equal(l.n, 0);
}

static void test_tags_cap(void **state)
{
	struct tag_list l = { 0 };
	size_t cap = 2000 * 12 + 64;
	char *body = malloc(cap);
	struct refit_err er = { 0 };
	size_t len = 0;

	(void)state;
	assert_non_null(body);
	len += (size_t)snprintf(body + len, cap - len, "{\"tags\":[");
	for (int i = 0; i < 2000; i++)
		len += (size_t)snprintf(body + len, cap - len, "%s\"1.0.%d\"", i ? "," : "", i);
	len += (size_t)snprintf(body + len, cap - len, "]}");
	/* Six pages of 2000: the list stops at TAGS_MAX_TOTAL and says it was cut. */
	for (int p = 0; p < 6; p++)
		assert_int_equal(tags_parse_body(body, len, &l, &er), 0);
	assert_int_equal(l.n, TAGS_MAX_TOTAL);
	assert_true(l.truncated);
	assert_string_equal(l.v[TAGS_MAX_TOTAL - 1], "1.0.1999");
	tag_list_free(&l);
	/* a page larger than TAGS_MAX_BODY is refused */
	assert_int_equal(tags_parse_body(body, TAGS_MAX_BODY + 1, &l, &er), -1);
	free(body);
}

static void test_link(void **state)
{
	static const struct {
		const char *hdr, *want; /* want NULL: no next page; "!": an error */
	} rows[] = {
		{ "</v2/a/b/tags/list?last=1.9&n=10>; rel=\"next\"", "/v2/a/b/tags/list?last=1.9&n=10" },
		{ "</v2/x/tags/list?n=10&last=b>;rel=next", "/v2/x/tags/list?n=10&last=b" },
		{ "<https://r.example/v2/x/tags/list?last=b>; rel=\"next\"", "https://r.example/v2/x/tags/list?last=b" },
		{ "</p>; rel=\"prev\", </n>; rel=\"next\"", "/n" },
		{ "</p>; rel=\"prev\"", NULL },
		{ "</n>; title=\"a, b; c\"; rel=\"other next\"", "/n" },
		{ "</n>; REL=\"NEXT\"", "/n" },
		{ "</n>; rel=\"nextish\"", NULL },
		{ "", NULL },
		{ "</n>; rel", NULL },
		{ "/n; rel=next", "!" },
		{ "</n; rel=next", "!" },
		{ "</n>; rel=\"next", "!" },
		{ "</n>; =next", "!" },
		{ "</n>; rel=next junk", "!" },
		{ "<>; rel=next", "!" },
		{ "<ftp://x/y>; rel=next", "!" },
		{ "<javascript:alert(1)>; rel=next", "!" },
		{ "</a\tb>; rel=next", "!" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *next = (char *)"unset";
		struct refit_err er = { 0 };
		const char *err = er.msg;
		int rc = tags_parse_link(rows[i].hdr, &next, &er);

		if (rows[i].want && strcmp(rows[i].want, "!") == 0) {
			if (rc != -1 || next)
				fail_msg("Link \"%s\" was accepted", rows[i].hdr);
			assert_true(err[0]);
			continue;
		}
		if (rc != 0)
			fail_msg("Link \"%s\": %s", rows[i].hdr, err);
		if ((next == NULL) != (rows[i].want == NULL) || (next && strcmp(next, rows[i].want) != 0))
			fail_msg("Link \"%s\": got %s, want %s", rows[i].hdr, next ? next : "(none)",
				 rows[i].want ? rows[i].want : "(none)");
		free(next);
	}
	{
		char *next = NULL;
		struct refit_err er = { 0 };
		char *big = malloc(3000);

		assert_non_null(big);
		memset(big, 'a', 2600);
		memcpy(big, "</", 2);
		snprintf(big + 2600, 400, ">; rel=next");
		assert_int_equal(tags_parse_link(big, &next, &er), -1); /* next page reference too long */
		assert_null(next);
		free(big);
		assert_int_equal(tags_parse_link(NULL, &next, &er), 0);
		assert_null(next);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),     cmocka_unit_test(test_order),      cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_pick),      cmocka_unit_test(test_track_parse), cmocka_unit_test(test_tag_valid),
		cmocka_unit_test(test_tags_body), cmocka_unit_test(test_tags_cap),   cmocka_unit_test(test_link),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
