/*
 * Per-thread account of time spent waiting on others: engine requests,
 * probes, timers; and the engine slots of an update pass.
 */
#ifndef REFIT_WAITED_H
#define REFIT_WAITED_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

/* Seconds this thread has spent waiting so far (monotonic clock). */
double waited_seconds(void);

/* Add the time since *T0 (CLOCK_MONOTONIC, taken by waited_start) to this thread's account. */
void waited_stop(const struct timespec *t0);

/* Take the start of a wait. */
void waited_start(struct timespec *t0);

/* Sleep MS milliseconds, counted as waiting. */
void waited_sleep_ms(long ms);

/*
 * The engine slots of an update pass: `concurrency` of them. A thread that
 * takes engine steps (pull, stop, create, start, remove) holds one; a
 * thread that only waits (a health gate, a drain, another thread's pull)
 * lets it go, so waits overlap without limit while engine work stays
 * bounded. Threads not bound to slots (a single rollback, recovery) take
 * none and are never held up.
 */
struct slots {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	long free;
	long urgent; /* threads of swaps under way waiting for a slot: served first */
	unsigned long tickets, serving; /* swaps that would start: served in the order they asked */
};

void slots_init(struct slots *s, long n);
void slots_destroy(struct slots *s);

/* This thread takes its slots from S from now on (NULL: none). */
void slot_bind(struct slots *s);

/*
 * Wait for a slot (time counted as waiting); URGENT: a swap under way,
 * served before new ones. New ones are served first come, first served.
 */
void slot_take(bool urgent);

/* Give the slot back. */
void slot_give(void);

/* Before a wait: give the slot back; true when one was held. */
bool slot_pause(void);

/* After it: take a slot again, urgently, when slot_pause gave one back. */
void slot_resume(bool was);

#endif
