/* Unit tests: cron expressions and their next time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "refit/cron.h"

/* Seconds since the epoch of a UTC date. */
static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s };

	return timegm(&tm);
}

static void test_next(void **state)
{
	static const struct {
		const char *expr;
		int from[6];
		int want[6];
	} cases[] = {
		{ "* * * * *", { 2026, 11, 26, 10, 0, 30 }, { 2026, 11, 26, 10, 1, 0 } },
		{ "0 4 * * *", { 2026, 11, 26, 10, 0, 0 }, { 2026, 11, 27, 4, 0, 0 } },
		{ "0 0 4 * * *", { 2026, 11, 26, 3, 59, 59 }, { 2026, 11, 26, 4, 0, 0 } }, /* Watchtower's form */
		{ "*/15 * * * *", { 2026, 11, 26, 10, 7, 0 }, { 2026, 11, 26, 10, 15, 0 } },
		{ "30 */10 * * * *", { 2026, 11, 26, 10, 0, 31 }, { 2026, 11, 26, 10, 10, 30 } },
		{ "0 9 * * MON-FRI", { 2026, 11, 28, 12, 0, 0 }, { 2026, 11, 30, 9, 0, 0 } }, /* Sat -> Mon */
		{ "0 0 1 JAN *", { 2026, 11, 26, 0, 0, 0 }, { 2027, 1, 1, 0, 0, 0 } },
		{ "0 0 * * 7", { 2026, 11, 26, 0, 0, 0 }, { 2026, 11, 29, 0, 0, 0 } }, /* 7 is Sunday */
		{ "0 0 13 * 5", { 2026, 11, 26, 0, 0, 0 }, { 2026, 11, 27, 0, 0, 0 } }, /* 13th OR Friday */
		{ "0 0 29 2 *", { 2026, 3, 1, 0, 0, 0 }, { 2028, 2, 29, 0, 0, 0 } },
		{ "5/20 * * * *", { 2026, 11, 26, 10, 6, 0 }, { 2026, 11, 26, 10, 25, 0 } },
		{ "0 12 * * ?", { 2026, 11, 26, 12, 0, 0 }, { 2026, 11, 27, 12, 0, 0 } },
		{ "@hourly", { 2026, 11, 26, 10, 0, 0 }, { 2026, 11, 26, 11, 0, 0 } },
		{ "@daily", { 2026, 12, 31, 23, 0, 0 }, { 2027, 1, 1, 0, 0, 0 } },
		{ "1,2,3 0 * * *", { 2026, 11, 26, 0, 1, 0 }, { 2026, 11, 26, 0, 2, 0 } },
	};

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cron c;
		struct refit_err e = { 0 };
		const int *f = cases[i].from, *w = cases[i].want;
		time_t got;

		if (cron_parse(cases[i].expr, &c, &e) < 0)
			fail_msg("%s: %s", cases[i].expr, e.msg);
		got = cron_next(&c, utc(f[0], f[1], f[2], f[3], f[4], f[5]));
		if (got != utc(w[0], w[1], w[2], w[3], w[4], w[5]))
			fail_msg("%s: got %lld, want %lld", cases[i].expr, (long long)got,
				 (long long)utc(w[0], w[1], w[2], w[3], w[4], w[5]));
	}
}

static void test_tz(void **state)
{
	struct cron c;
	struct refit_err e = { 0 };

	(void)state;
	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	assert_int_equal(cron_parse("0 4 * * *", &c, &e), 0);
	/* 04:00 in Berlin in winter is 03:00 UTC. */
	assert_int_equal(cron_next(&c, utc(2026, 11, 26, 12, 0, 0)), utc(2026, 11, 27, 3, 0, 0));
	setenv("TZ", "UTC", 1);
	tzset();
}

static void test_never(void **state)
{
	struct cron c;
	struct refit_err e = { 0 };

	(void)state;
	assert_int_equal(cron_parse("0 0 30 2 *", &c, &e), 0);
	assert_int_equal(cron_next(&c, utc(2026, 1, 1, 0, 0, 0)), (time_t)-1);
}

static void test_errors(void **state)
{
	static const char *const bad[] = {
		"", "* * * *", "* * * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *", "* * * 13 *",
		"* * * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *", "* * * FOO *", "1,,2 * * * *", "@often",
		"-1 * * * *", "*/ * * * *", "1-2-3 * * * *", "0 0 * * MONDAY",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cron c;
		struct refit_err e = { 0 };

		if (cron_parse(bad[i], &c, &e) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(e.kind, ERR_USAGE);
		assert_non_null(strstr(e.msg, "schedule"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_tz),
		cmocka_unit_test(test_never),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
