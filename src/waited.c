/*
 * Time a thread spends waiting on others. A swap's wall time minus what its
 * thread waited (engine requests, health probes and timers) is refit's own
 * overhead for it.
 */
#include <time.h>
#include <unistd.h>

#include "refit/waited.h"

static _Thread_local double waited;

double waited_seconds(void)
{
	return waited;
}

void waited_start(struct timespec *t0)
{
	clock_gettime(CLOCK_MONOTONIC, t0);
}

void waited_stop(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	waited += (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

void waited_sleep_ms(long ms)
{
	struct timespec t0;

	waited_start(&t0);
	usleep((useconds_t)ms * 1000);
	waited_stop(&t0);
}
