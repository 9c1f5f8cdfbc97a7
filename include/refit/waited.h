/* Per-thread account of time spent waiting on others: engine requests, probes, timers. */
#ifndef REFIT_WAITED_H
#define REFIT_WAITED_H

#include <time.h>

/* Seconds this thread has spent waiting so far (monotonic clock). */
double waited_seconds(void);

/* Add the time since *T0 (CLOCK_MONOTONIC, taken by waited_start) to this thread's account. */
void waited_stop(const struct timespec *t0);

/* Take the start of a wait. */
void waited_start(struct timespec *t0);

/* Sleep MS milliseconds, counted as waiting. */
void waited_sleep_ms(long ms);

#endif
