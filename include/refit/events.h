/*
 * The event bus: what the daemon's passes are doing, step by step, for
 * GET /api/v1/events (Server-Sent Events) and the dashboard. Publishing
 * never waits on a reader: events go into one bounded ring (EVENTS_RING),
 * each reader keeps its own position in it, and a reader that falls a
 * whole ring behind is dropped (its stream ends; it reconnects with
 * Last-Event-ID and is told what it missed by a "dropped" event).
 */
#ifndef REFIT_EVENTS_H
#define REFIT_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EVENTS_RING 512         /* events kept for readers (and for Last-Event-ID) */
#define EVENTS_SUBSCRIBERS 16   /* open streams at once */
#define EVENTS_MAX_FRAME 16384  /* one event's text at most; a larger one is cut to its summary */

/*
 * Publish one event of TYPE ("pass", "step", "container") with DATA
 * (stolen; an object). "seq", "time" and, while a pass runs, "operation"
 * are added.
 */
void events_publish(const char *type, json_t *data);

/* A pass begins (STATE "running") or ends ("succeeded", "failed"); ERROR and RESULT (borrowed) may be NULL. */
void events_pass(const char *op_id, const char *kind, const char *state, const char *error, json_t *result);

/* Container NAME reached STEP outside the journal (e.g. "pulling", "draining"). */
void events_step_name(const char *name, const char *step);

/* The journal record REC (borrowed) is about to take STEP. */
void events_step(json_t *rec, const char *step);

/* The journal record REC (borrowed) has finished: its outcome, digests and error. */
void events_finished(json_t *rec);

/*
 * HOOK (NULL: none) is told, in a line of words, what the daemon is doing
 * whenever a pass begins or ends or a container reaches a step: "idle; last:
 * ...", "pass N (KIND ID): I of M done; NAME: STEP". It runs on the thread
 * that published, outside the bus's lock. The daemon sends it as STATUS=.
 */
void events_status_hook(void (*hook)(const char *text));

/* The running pass swaps N containers (for the status's "I of N"). */
void events_pass_size(size_t n);

struct events_sub;

/*
 * A reader from the event after LAST_ID (0: from now on; a LAST_ID older
 * than the ring starts with a "dropped" event). NULL when
 * EVENTS_SUBSCRIBERS are open or the bus is closed.
 */
struct events_sub *events_subscribe(uint64_t last_id);

/*
 * Copy the reader's next bytes (whole SSE frames "id: N\nevent: T\ndata: J\n\n",
 * a frame larger than MAX across calls) into BUF, waiting up to WAIT_MS for
 * one. Returns the count, 0 when nothing came, -1 at the end (the bus closed
 * and everything read, or the reader dropped and told so).
 */
ssize_t events_read(struct events_sub *s, char *buf, size_t max, int wait_ms);

void events_unsubscribe(struct events_sub *s); /* NULL-safe */

/* Readers see the end once they have read what is there; publishing stops. */
void events_close(void);

/* Open again (after events_close) and forget every event: for tests. */
void events_reset(void);

/* Readers open now. */
unsigned events_subscribers(void);

#endif
