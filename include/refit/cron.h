/* Cron schedules: 5 fields, or Watchtower's 6 with seconds first; next time in local time (TZ). */
#ifndef REFIT_CRON_H
#define REFIT_CRON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "refit/error.h"

#define CRON_MAX 256 /* longest accepted expression */

struct cron {
	uint64_t sec;   /* bits 0..59 */
	uint64_t min;   /* bits 0..59 */
	uint32_t hour;  /* bits 0..23 */
	uint32_t dom;   /* bits 1..31 */
	uint16_t month; /* bits 1..12 */
	uint8_t dow;    /* bits 0..6, Sunday 0 */
	bool dom_star;  /* day of month was "*" or "?" */
	bool dow_star;  /* day of week was "*" or "?" */
};

/*
 * Parse S: "m h dom mon dow", "s m h dom mon dow", or @yearly, @annually,
 * @monthly, @weekly, @daily, @midnight, @hourly. Fields take *, ?, numbers,
 * ranges a-b, steps (star-slash-n, a-b/n), lists, and JAN-DEC / SUN-SAT names
 * (7 is Sunday too). -1 with E (ERR_USAGE) naming the bad field.
 */
int cron_parse(const char *s, struct cron *ret, struct refit_err *e);

/*
 * The first time strictly after AFTER that matches, in local time (the TZ
 * variable decides); day of month and day of week match either one when
 * both are restricted, as cron does. (time_t)-1 when nothing matches within
 * five years (e.g. February 30th).
 */
time_t cron_next(const struct cron *c, time_t after);

#endif
