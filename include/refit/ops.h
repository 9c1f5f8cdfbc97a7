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
 * under CFG_LOCK (read side) for the length of an operation, and a reload
 * takes the write side. The paused state is read from state_dir/paused.
 */
int ops_start(struct ops **ret, struct refit_config *cfg, pthread_rwlock_t *cfg_lock, struct refit_err *e);

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

/* Wait until operation ID has finished, at most TIMEOUT seconds; its record (new reference). */
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

/* Stop if not stopped yet, and free. NULL-safe. */
void ops_free(struct ops *o);

#endif
