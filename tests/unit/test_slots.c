/* Unit tests: the engine slots of an update pass (bounded engine work, waits without a slot). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "refit/waited.h"

struct bound_run {
	struct slots slots;
	atomic_int holding, most;
	int rounds;
};

/* Take a slot, hold it a little (counting how many hold one at once), give it back; ROUNDS times. */
static void *taker(void *arg)
{
	struct bound_run *r = arg;

	slot_bind(&r->slots);
	for (int i = 0; i < r->rounds; i++) {
		int now;

		slot_take(false);
		now = atomic_fetch_add(&r->holding, 1) + 1;
		for (int m = atomic_load(&r->most); now > m && !atomic_compare_exchange_weak(&r->most, &m, now);)
			;
		usleep(2000);
		atomic_fetch_sub(&r->holding, 1);
		slot_give();
	}
	slot_bind(NULL);
	return NULL;
}

static void test_bounded(void **state)
{
	struct bound_run r = { .rounds = 5 };
	pthread_t t[12];

	(void)state;
	slots_init(&r.slots, 3);
	for (size_t i = 0; i < 12; i++)
		assert_int_equal(pthread_create(&t[i], NULL, taker, &r), 0);
	for (size_t i = 0; i < 12; i++)
		pthread_join(t[i], NULL);
	assert_true(atomic_load(&r.most) >= 1);
	assert_true(atomic_load(&r.most) <= 3);
	assert_int_equal(r.slots.free, 3);
	slots_destroy(&r.slots);
}

struct order_run {
	struct slots slots;
	pthread_mutex_t lock;
	char order[4];
	int n;
};

static void record(struct order_run *r, char who)
{
	pthread_mutex_lock(&r->lock);
	r->order[r->n++] = who;
	pthread_mutex_unlock(&r->lock);
}

static void *newcomer(void *arg)
{
	struct order_run *r = arg;

	slot_bind(&r->slots);
	slot_take(false);
	record(r, 'n');
	slot_give();
	return NULL;
}

/* A swap past its gate wants its slot back. */
static void *returning(void *arg)
{
	struct order_run *r = arg;

	slot_bind(&r->slots);
	slot_take(true);
	record(r, 'u');
	slot_give();
	return NULL;
}

/* S's urgent waiters (TICKETS false) or tickets handed out, read under its lock. */
static unsigned long slots_read(struct slots *s, bool tickets)
{
	unsigned long n;

	pthread_mutex_lock(&s->lock);
	n = tickets ? s->tickets : (unsigned long)s->urgent;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void test_under_way_first(void **state)
{
	struct order_run r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	pthread_t u, n;

	(void)state;
	slots_init(&r.slots, 1);
	slot_bind(&r.slots);
	slot_take(false); /* the one slot is this thread's */
	assert_int_equal(pthread_create(&u, NULL, returning, &r), 0);
	while (slots_read(&r.slots, false) == 0)
		usleep(1000);
	assert_int_equal(pthread_create(&n, NULL, newcomer, &r), 0);
	usleep(20000);
	slot_give();
	pthread_join(u, NULL);
	pthread_join(n, NULL);
	assert_int_equal(r.n, 2);
	assert_memory_equal(r.order, "un", 2);
	slot_bind(NULL);
	slots_destroy(&r.slots);
}

static void test_wait_gives_the_slot(void **state)
{
	struct order_run r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	pthread_t n;

	(void)state;
	slots_init(&r.slots, 1);
	slot_bind(&r.slots);
	slot_take(false);
	assert_true(slot_pause()); /* a health gate: another swap takes engine steps meanwhile */
	assert_int_equal(pthread_create(&n, NULL, newcomer, &r), 0);
	pthread_join(n, NULL);
	assert_int_equal(r.n, 1);
	slot_resume(true);
	assert_int_equal(r.slots.free, 0);
	slot_give();
	assert_int_equal(r.slots.free, 1);
	slot_bind(NULL);
	slots_destroy(&r.slots);
}

struct fifo_arg {
	struct order_run *r;
	char who;
};

static void *queued(void *arg)
{
	struct fifo_arg *a = arg;

	slot_bind(&a->r->slots);
	slot_take(false);
	record(a->r, a->who);
	usleep(1000);
	slot_give();
	return NULL;
}

/* Swaps that would start are served in the order they asked, whichever thread wakes first. */
static void test_new_ones_first_come_first_served(void **state)
{
	struct order_run r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct fifo_arg a[3] = { { &r, 'a' }, { &r, 'b' }, { &r, 'c' } };
	pthread_t t[3];

	(void)state;
	slots_init(&r.slots, 1);
	slot_bind(&r.slots);
	slot_take(false); /* ticket 0 */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_create(&t[i], NULL, queued, &a[i]), 0);
		while (slots_read(&r.slots, true) < (unsigned long)i + 2)
			usleep(1000);
	}
	slot_give();
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(r.n, 3);
	assert_memory_equal(r.order, "abc", 3);
	assert_int_equal(r.slots.free, 1);
	slot_bind(NULL);
	slots_destroy(&r.slots);
}

static void test_unbound(void **state)
{
	(void)state;
	slot_bind(NULL);
	slot_take(false); /* a rollback or a recovery: no slots, never held up */
	assert_false(slot_pause());
	slot_resume(false);
	slot_give();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_under_way_first),
		cmocka_unit_test(test_wait_gives_the_slot),
		cmocka_unit_test(test_new_ones_first_come_first_served),
		cmocka_unit_test(test_unbound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
