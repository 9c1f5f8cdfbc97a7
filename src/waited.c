/*
 * Time a thread spends waiting on others. A swap's wall time minus what its
 * thread waited (engine requests, health probes and timers) is refit's own
 * overhead for it. And the engine slots of an update pass: a thread holds
 * one while it takes engine steps, and lets it go while it only waits.
 */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "refit/waited.h"

static _Thread_local double waited;
static _Thread_local struct slots *bound; /* the pass's slots this thread takes, or NULL */
static _Thread_local bool holding;

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

void slots_init(struct slots *s, long n)
{
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->free = n > 0 ? n : 1;
	s->urgent = 0;
	s->tickets = s->serving = 0;
}

void slots_destroy(struct slots *s)
{
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
}

void slot_bind(struct slots *s)
{
	bound = s;
	holding = false;
}

void slot_take(bool urgent)
{
	struct timespec t0;

	if (!bound || holding)
		return;
	waited_start(&t0);
	pthread_mutex_lock(&bound->lock);
	if (urgent) {
		/* A swap under way goes before one that would start. */
		bound->urgent++;
		while (bound->free == 0)
			pthread_cond_wait(&bound->cond, &bound->lock);
		bound->urgent--;
	} else {
		/* Swaps that would start go in the order they asked. */
		unsigned long ticket = bound->tickets++;

		while (bound->free == 0 || bound->urgent > 0 || bound->serving != ticket)
			pthread_cond_wait(&bound->cond, &bound->lock);
		bound->serving++;
		pthread_cond_broadcast(&bound->cond); /* the next ticket may find a slot free too */
	}
	bound->free--;
	pthread_mutex_unlock(&bound->lock);
	waited_stop(&t0);
	holding = true;
}

void slot_give(void)
{
	if (!bound || !holding)
		return;
	pthread_mutex_lock(&bound->lock);
	bound->free++;
	pthread_cond_broadcast(&bound->cond);
	pthread_mutex_unlock(&bound->lock);
	holding = false;
}

bool slot_pause(void)
{
	bool was = holding;

	slot_give();
	return was;
}

void slot_resume(bool was)
{
	if (was)
		slot_take(true);
}
