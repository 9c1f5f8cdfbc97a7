/* Operations: passes the daemon runs one at a time, queued by the schedule and the API. */
#ifndef REFIT_OPS_H
#define REFIT_OPS_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "refit/config.h"
#include "refit/error.h"

#define OPS_KEEP 100      /* finished operations remembered */
#define OPS_MAX_QUEUED 32 /* waiting operations accepted */

struct ops;

/*
 * Start the worker. CFG is the daemon's configuration; the worker reads it
 * under CFG_LOCK (read side) for the length of an operation, and puts a
 * reloaded one in place (write side) between operations. The paused state
 * is read from state_dir/paused; the records of the operations from
 * state_dir/operations.json, where they are kept durably at each change of
 * state (those an earlier run had not finished are "interrupted").
 */
int ops_start(struct ops **ret, struct refit_config *cfg, pthread_rwlock_t *cfg_lock, struct refit_err *e);

/* Call FN(ARG) in the worker each time a reloaded configuration has taken over. */
void ops_on_config(struct ops *o, void (*fn)(void *arg), void *arg);

/*
 * The text of state_dir/operations.json as read back at start: the last
 * OPS_KEEP + OPS_MAX_QUEUED records that are objects with a 16-hex-digit
 * "id" and string "kind", "state" and "created" (64 characters at most),
 * those that had not finished marked "interrupted" (with "error" and
 * "finished"). NULL when it is not a JSON array. New reference.
 */
json_t *ops_parse(const char *buf, size_t len);

/*
 * Queue KIND: "update" (PARAMS: {"containers":[...], "dry_run":bool}),
 * "rollback" ({"containers":[...]} or {"all":true}), or "scheduled" (an
 * update pass from the schedule, skipped while paused). PARAMS is borrowed.
 * ID gets the operation's id. ERR_FAILED with "paused" when updates are
 * paused (rollbacks are not); "busy" when OPS_MAX_QUEUED are waiting.
 */
int ops_submit(struct ops *o, const char *kind, json_t *params, char id[17], struct refit_err *e);

/* The operation's record (new reference), or NULL for an unknown ID. */
json_t *ops_get(struct ops *o, const char *id);

/* Wait until operation ID has finished (succeeded, failed or interrupted), at most TIMEOUT seconds; its record (new reference). */
json_t *ops_wait(struct ops *o, const char *id, int timeout);

bool ops_paused(struct ops *o);

/* Pause or resume updates; the state is kept in state_dir/paused across restarts. */
int ops_set_paused(struct ops *o, bool paused, struct refit_err *e);

/* {"running": ID or null, "queued": N, "paused": bool, "last": record or null} (new reference). */
json_t *ops_status(struct ops *o);

/*
 * Stop: queued operations are dropped (failed, "daemon stopping"); the one
 * running finishes its swaps (never left half done); then the worker ends.
 * Records stay readable until ops_free.
 */
void ops_stop(struct ops *o);

/*
 * A reloaded configuration FRESH (malloc'd, stolen) takes the running one's
 * place at the next operation boundary: at once when none runs, else when
 * the running operation ends (before the next begins); a later one before
 * then replaces it. Never waits. True when no operation was running.
 */
bool ops_reconfigure(struct ops *o, struct refit_config *fresh);

/* Is a reloaded configuration waiting for the boundary? */
bool ops_reload_pending(struct ops *o);

/* How many reloaded configurations have taken over so far. */
unsigned long ops_config_generation(struct ops *o);

/* Stop if not stopped yet, and free. NULL-safe. */
void ops_free(struct ops *o);

#endif
