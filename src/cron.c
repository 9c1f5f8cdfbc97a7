/* Cron expressions and their next firing time. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "refit/cron.h"

struct field {
	const char *name;
	int lo, hi;
	const char *const *names; /* names for lo.. (NULL: numbers only) */
};

static const char *const months[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
				      "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL };
static const char *const days[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL };

static const struct field fields[6] = {
	{ "second", 0, 59, NULL }, { "minute", 0, 59, NULL },	{ "hour", 0, 23, NULL },
	{ "day of month", 1, 31, NULL }, { "month", 1, 12, months }, { "day of week", 0, 7, days },
};

/* A number or a name of field F at *P; advances *P. */
static int field_value(const struct field *f, const char **p, int *ret)
{
	const char *s = *p;

	if (isdigit((unsigned char)*s)) {
		long v = 0;

		while (isdigit((unsigned char)*s) && v <= 1000)
			v = v * 10 + (*s++ - '0');
		if (v < f->lo || v > f->hi)
			return -1;
		*ret = (int)v;
		*p = s;
		return 0;
	}
	for (int i = 0; f->names && f->names[i]; i++) {
		if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
			*ret = i + (f->lo == 1 ? 1 : 0);
			*p = s + 3;
			return 0;
		}
	}
	return -1;
}

/* Parse one field's text (LEN bytes at S) into a bit set. */
static int field_parse(const struct field *f, const char *s, size_t len, uint64_t *bits, bool *star)
{
	char buf[CRON_MAX + 1];
	char *save = NULL;

	if (len == 0 || len > CRON_MAX)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,"))
		return -1; /* strtok_r would skip the empty item */
	*bits = 0;
	*star = strcmp(buf, "*") == 0 || strcmp(buf, "?") == 0;
	for (char *part = strtok_r(buf, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
		const char *p = part;
		int lo, hi, step = 1;

		if (*p == '*' || *p == '?') {
			lo = f->lo;
			hi = f->hi;
			p++;
		} else {
			if (field_value(f, &p, &lo) < 0)
				return -1;
			hi = lo;
			if (*p == '-') {
				p++;
				if (field_value(f, &p, &hi) < 0 || hi < lo)
					return -1;
			}
		}
		if (*p == '/') {
			char *end;
			long st;

			p++;
			st = strtol(p, &end, 10);
			if (end == p || st < 1 || st > f->hi + 1)
				return -1;
			step = (int)st;
			p = end;
			if (lo == hi && part[0] != '*' && part[0] != '?')
				hi = f->hi; /* "5/15" means from 5 to the end */
		}
		if (*p)
			return -1;
		for (int v = lo; v <= hi; v += step)
			*bits |= 1ULL << v;
	}
	return *bits ? 0 : -1;
}

int cron_parse(const char *s, struct cron *ret, struct refit_err *e)
{
	static const struct {
		const char *name;
		const char *expr;
	} macros[] = {
		{ "@yearly", "0 0 0 1 1 *" }, { "@annually", "0 0 0 1 1 *" }, { "@monthly", "0 0 0 1 * *" },
		{ "@weekly", "0 0 0 * * 0" }, { "@daily", "0 0 0 * * *" },    { "@midnight", "0 0 0 * * *" },
		{ "@hourly", "0 0 * * * *" },
	};
	const char *starts[7];
	size_t lens[7], n = 0, first;
	uint64_t bits[6];
	bool stars[6];
	struct cron c = { 0 };

	if (!s || strlen(s) > CRON_MAX)
		return err_set(e, ERR_USAGE, "schedule: expected at most %d characters", CRON_MAX);
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '@') {
		for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
			if (strcmp(s, macros[i].name) == 0)
				return cron_parse(macros[i].expr, ret, e);
		return err_set(e, ERR_USAGE, "schedule \"%.40s\": unknown @ form", s);
	}
	for (const char *p = s; *p;) {
		size_t len = strcspn(p, " \t");

		if (n == 7)
			break;
		starts[n] = p;
		lens[n++] = len;
		p += len;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	if (n != 5 && n != 6)
		return err_set(e, ERR_USAGE, "schedule \"%.60s\": expected 5 fields (or 6 with seconds first), got %zu",
			       s, n);
	first = n == 6 ? 0 : 1;
	bits[0] = 1; /* five fields: at second 0 */
	stars[0] = false;
	for (size_t i = 0; i < n; i++) {
		const struct field *f = &fields[first + i];

		if (field_parse(f, starts[i], lens[i], &bits[first + i], &stars[first + i]) < 0)
			return err_set(e, ERR_USAGE, "schedule \"%.60s\": bad %s field \"%.*s\"", s, f->name,
				       (int)(lens[i] > 40 ? 40 : lens[i]), starts[i]);
	}
	c.sec = bits[0];
	c.min = bits[1];
	c.hour = (uint32_t)bits[2];
	c.dom = (uint32_t)bits[3];
	c.month = (uint16_t)bits[4];
	c.dow = (uint8_t)((bits[5] | (bits[5] >> 7)) & 0x7f); /* 7 is Sunday too */
	c.dom_star = stars[3];
	c.dow_star = stars[5];
	*ret = c;
	return 0;
}

/* Does the day of TM match, with cron's either-or rule? */
static bool day_matches(const struct cron *c, const struct tm *tm)
{
	bool dom = c->dom & (1U << tm->tm_mday), dow = c->dow & (1U << tm->tm_wday);

	if (c->dom_star || c->dow_star)
		return dom && dow;
	return dom || dow;
}

time_t cron_next(const struct cron *c, time_t after)
{
	struct tm tm;
	time_t t = after + 1;
	int year_limit;

	localtime_r(&t, &tm);
	year_limit = tm.tm_year + 5;
	/* Walk up field by field; each jump lands on the start of the next candidate unit. */
	for (int guard = 0; guard < 100000; guard++) {
		if (tm.tm_year > year_limit)
			return (time_t)-1;
		if (!(c->month & (1U << (tm.tm_mon + 1)))) {
			tm.tm_mon++;
			tm.tm_mday = 1;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		} else if (!day_matches(c, &tm)) {
			tm.tm_mday++;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		} else if (!(c->hour & (1U << tm.tm_hour))) {
			tm.tm_hour++;
			tm.tm_min = tm.tm_sec = 0;
		} else if (!(c->min & (1ULL << tm.tm_min))) {
			tm.tm_min++;
			tm.tm_sec = 0;
		} else if (!(c->sec & (1ULL << tm.tm_sec))) {
			tm.tm_sec++;
		} else {
			return mktime(&tm);
		}
		tm.tm_isdst = -1;
		t = mktime(&tm); /* normalise (month and day overflow, DST) */
		if (t == (time_t)-1)
			return (time_t)-1;
		localtime_r(&t, &tm);
	}
	return (time_t)-1;
}
