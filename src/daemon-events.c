/* The event bus behind GET /api/v1/events: one bounded ring, readers with their own position. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "refit/base.h"
#include "refit/events.h"
#include "refit/journal-record.h"

struct events_sub {
	bool used;
	uint64_t next;   /* seq of the next frame to send */
	size_t off;      /* bytes of that frame already sent */
	bool dropped;    /* fell behind: the "dropped" frame goes next, then the end */
	char *note;      /* that frame */
	size_t note_off;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *ring[EVENTS_RING]; /* frame of seq S at S % EVENTS_RING */
	uint64_t seq;            /* last published; frames first..seq are in the ring */
	bool closed;
	char pass[17];           /* the operation running, or "" */
	struct events_sub subs[EVENTS_SUBSCRIBERS];
	/* what the daemon is doing, in words, for the status hook (systemd's STATUS=) */
	void (*status_hook)(const char *text);
	char kind[16];           /* the running operation's kind */
	unsigned long passes;    /* operations begun since the daemon started */
	size_t total, done;      /* containers the running pass swaps, and finished */
	char last[160];          /* the last container and step */
} bus = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* Tell the status hook what the daemon is doing now; takes the lock. */
static void status_say(void)
{
	void (*hook)(const char *text);
	char text[400];

	pthread_mutex_lock(&bus.lock);
	hook = bus.status_hook;
	if (!bus.pass[0])
		snprintf(text, sizeof(text), "idle%s%s", bus.last[0] ? "; last: " : "", bus.last);
	else if (bus.total)
		snprintf(text, sizeof(text), "pass %lu (%s %s): %zu of %zu done%s%s", bus.passes, bus.kind, bus.pass,
			 bus.done, bus.total, bus.last[0] ? "; " : "", bus.last);
	else
		snprintf(text, sizeof(text), "pass %lu (%s %s)%s%s", bus.passes, bus.kind, bus.pass,
			 bus.last[0] ? ": " : "", bus.last);
	pthread_mutex_unlock(&bus.lock);
	if (hook)
		hook(text);
}

/* Note for the status that container NAME reached STEP (NAME may be NULL). */
static void status_step(const char *name, const char *step, bool finished)
{
	pthread_mutex_lock(&bus.lock);
	if (!bus.status_hook) {
		pthread_mutex_unlock(&bus.lock);
		return;
	}
	if (finished)
		bus.done++;
	snprintf(bus.last, sizeof(bus.last), "%.80s: %.60s", name ? name : "?", step);
	pthread_mutex_unlock(&bus.lock);
	status_say();
}

void events_status_hook(void (*hook)(const char *text))
{
	pthread_mutex_lock(&bus.lock);
	bus.status_hook = hook;
	pthread_mutex_unlock(&bus.lock);
	status_say();
}

void events_pass_size(size_t n)
{
	pthread_mutex_lock(&bus.lock);
	bus.total = n;
	bus.done = 0;
	pthread_mutex_unlock(&bus.lock);
	status_say();
}

/* The oldest seq still in the ring (under the lock). */
static uint64_t oldest(void)
{
	return bus.seq >= EVENTS_RING ? bus.seq - EVENTS_RING + 1 : 1;
}

/* "id: SEQ\nevent: TYPE\ndata: JSON\n\n" (malloc'd), or NULL. */
static char *frame(uint64_t seq, const char *type, json_t *data)
{
	char *j = json_dumps(data, JSON_COMPACT | JSON_ENSURE_ASCII), *f = NULL;

	if (j && strlen(j) > EVENTS_MAX_FRAME) {
		/* a result too large for one event: the summary only */
		json_t *small = json_pack("{s:O?, s:O?, s:O?, s:O?, s:b}", "seq", json_object_get(data, "seq"),
					  "operation", json_object_get(data, "operation"), "kind",
					  json_object_get(data, "kind"), "state", json_object_get(data, "state"),
					  "truncated", 1);

		free(j);
		j = small ? json_dumps(small, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
		json_decref(small);
	}
	if (j && asprintf(&f, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)seq, type, j) < 0)
		f = NULL;
	free(j);
	return f;
}

void events_publish(const char *type, json_t *data)
{
	char now[ISO_TIME_LEN], *f;
	uint64_t seq;

	if (!json_is_object(data)) {
		json_decref(data);
		return;
	}
	iso_now(now);
	pthread_mutex_lock(&bus.lock);
	if (bus.closed) {
		pthread_mutex_unlock(&bus.lock);
		json_decref(data);
		return;
	}
	seq = bus.seq + 1;
	json_object_set_new(data, "seq", json_integer((json_int_t)seq));
	json_object_set_new(data, "type", json_string(type));
	json_object_set_new(data, "time", json_string(now));
	if (bus.pass[0] && !json_object_get(data, "operation"))
		json_object_set_new(data, "operation", json_string(bus.pass));
	f = frame(seq, type, data);
	if (f) {
		free(bus.ring[seq % EVENTS_RING]);
		bus.ring[seq % EVENTS_RING] = f;
		bus.seq = seq;
		pthread_cond_broadcast(&bus.cond);
	}
	pthread_mutex_unlock(&bus.lock);
	json_decref(data);
}

void events_pass(const char *op_id, const char *kind, const char *state, const char *error, json_t *result)
{
	json_t *d = json_pack("{s:s, s:s, s:s}", "operation", op_id, "kind", kind, "state", state);

	if (!d)
		return;
	if (error && *error)
		json_object_set_new(d, "error", json_string(error));
	if (result)
		json_object_set(d, "result", result);
	pthread_mutex_lock(&bus.lock);
	snprintf(bus.pass, sizeof(bus.pass), "%s", strcmp(state, "running") == 0 ? op_id : "");
	if (bus.pass[0]) {
		bus.passes++;
		bus.total = bus.done = 0;
		bus.last[0] = '\0';
		snprintf(bus.kind, sizeof(bus.kind), "%s", kind);
	} else {
		snprintf(bus.last, sizeof(bus.last), "%.15s %.16s %.10s%s%.100s", kind, op_id, state,
			 error && *error ? ": " : "", error && *error ? error : "");
	}
	pthread_mutex_unlock(&bus.lock);
	events_publish("pass", d);
	status_say();
}

void events_step_name(const char *name, const char *step)
{
	events_publish("step", json_pack("{s:s, s:s}", "container", name ? name : "", "step", step));
	status_step(name, step, false);
}

/* The fields of a journal record an event carries. */
static json_t *from_record(json_t *rec)
{
	static const char *const keys[] = { JR_KIND, JR_CONTAINER, JR_NEW_NAME, JR_MODEL, JR_STRATEGY, JR_TARGET,
					    JR_IMAGE, JR_OLD_DIGEST, JR_NEW_DIGEST, JR_OUTCOME, JR_ERROR,
					    JR_STARTED, JR_FINISHED };
	json_t *d = json_object(), *v;
	const char *id = jr_str(rec, JR_ID);

	if (!d)
		return NULL;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((v = json_object_get(rec, keys[i])) && !json_is_null(v))
			json_object_set(d, keys[i], v);
	if (id) /* the record's own id; "operation" is the daemon's pass it belongs to */
		json_object_set_new(d, "record", json_string(id));
	return d;
}

void events_step(json_t *rec, const char *step)
{
	json_t *d = from_record(rec);

	if (d) {
		json_object_set_new(d, "step", json_string(step));
		events_publish("step", d);
	}
	status_step(jr_str(rec, JR_CONTAINER), step, false);
}

void events_finished(json_t *rec)
{
	const char *outcome = jr_str(rec, JR_OUTCOME);

	events_publish("container", from_record(rec));
	status_step(jr_str(rec, JR_CONTAINER), outcome ? outcome : "finished", true);
}

struct events_sub *events_subscribe(uint64_t last_id)
{
	struct events_sub *s = NULL;

	pthread_mutex_lock(&bus.lock);
	for (size_t i = 0; !bus.closed && i < EVENTS_SUBSCRIBERS; i++) {
		if (!bus.subs[i].used) {
			s = &bus.subs[i];
			*s = (struct events_sub){ .used = true, .next = bus.seq + 1 };
			if (last_id > 0 && last_id <= bus.seq) {
				s->next = last_id + 1;
				if (s->next < oldest())
					s->dropped = true; /* said first, then the ring from its start */
			}
			break;
		}
	}
	if (s && s->dropped) {
		if (asprintf(&s->note, "event: dropped\ndata: {\"type\":\"dropped\",\"missed_from\":%llu}\n\n",
			     (unsigned long long)s->next) < 0)
			s->note = NULL;
		s->next = oldest();
		s->dropped = false;
	}
	pthread_mutex_unlock(&bus.lock);
	return s;
}

/* Copy what is left of TEXT from *OFF into BUF; true when it is all sent. */
static bool copy_out(const char *text, size_t *off, char *buf, size_t max, size_t *n)
{
	size_t len = strlen(text) - *off, k = len < max ? len : max;

	memcpy(buf, text + *off, k);
	*off += k;
	*n = k;
	return k == len;
}

ssize_t events_read(struct events_sub *s, char *buf, size_t max, int wait_ms)
{
	struct timespec until;
	size_t n = 0;
	ssize_t ret;

	if (max == 0)
		return 0;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&bus.lock);
	for (;;) {
		if (s->note) {
			if (copy_out(s->note, &s->note_off, buf, max, &n)) {
				free(s->note);
				s->note = NULL;
				s->note_off = 0;
				if (s->dropped) {
					ret = (ssize_t)n;
					s->next = UINT64_MAX; /* the end next time */
					break;
				}
			}
			ret = (ssize_t)n;
			break;
		}
		if (s->next == UINT64_MAX) {
			ret = -1;
			break;
		}
		if (s->next <= bus.seq) {
			if (s->next < oldest()) {
				/* a whole ring behind: say so and end, never hold the writers */
				s->dropped = true;
				if (asprintf(&s->note, "event: dropped\ndata: {\"type\":\"dropped\",\"missed_from\":%llu}\n\n",
					     (unsigned long long)s->next) < 0) {
					ret = -1;
					break;
				}
				s->off = 0;
				continue;
			}
			if (copy_out(bus.ring[s->next % EVENTS_RING], &s->off, buf, max, &n)) {
				s->next++;
				s->off = 0;
			}
			ret = (ssize_t)n;
			break;
		}
		if (bus.closed) {
			ret = -1;
			break;
		}
		if (pthread_cond_timedwait(&bus.cond, &bus.lock, &until) == ETIMEDOUT) {
			ret = 0;
			break;
		}
	}
	pthread_mutex_unlock(&bus.lock);
	return ret;
}

void events_unsubscribe(struct events_sub *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&bus.lock);
	free(s->note);
	*s = (struct events_sub){ 0 };
	pthread_mutex_unlock(&bus.lock);
}

void events_close(void)
{
	pthread_mutex_lock(&bus.lock);
	bus.closed = true;
	pthread_cond_broadcast(&bus.cond);
	pthread_mutex_unlock(&bus.lock);
}

void events_reset(void)
{
	pthread_mutex_lock(&bus.lock);
	for (size_t i = 0; i < EVENTS_RING; i++) {
		free(bus.ring[i]);
		bus.ring[i] = NULL;
	}
	bus.seq = 0;
	bus.closed = false;
	bus.pass[0] = '\0';
	bus.passes = bus.total = bus.done = 0;
	bus.last[0] = '\0';
	pthread_mutex_unlock(&bus.lock);
}

unsigned events_subscribers(void)
{
	unsigned n = 0;

	pthread_mutex_lock(&bus.lock);
	for (size_t i = 0; i < EVENTS_SUBSCRIBERS; i++)
		n += bus.subs[i].used;
	pthread_mutex_unlock(&bus.lock);
	return n;
}
