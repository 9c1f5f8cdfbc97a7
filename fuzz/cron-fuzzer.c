/* libFuzzer target: cron schedules, and their next time. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "refit/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[CRON_MAX + 2];
	struct cron c;
	struct refit_err e = { 0 };
	time_t t;

	if (size > CRON_MAX + 1)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (cron_parse(buf, &c, &e) < 0)
		return 0;
	t = cron_next(&c, 1795000000);
	if (t != (time_t)-1 && t <= 1795000000)
		__builtin_trap(); /* the next time is always later */
	return 0;
}
