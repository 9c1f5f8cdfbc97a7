/* The journal: durable intent and outcome records in state_dir, and the lock. */
#ifndef REFIT_JOURNAL_H
#define REFIT_JOURNAL_H

#include <jansson.h>

#include "refit/error.h"

#define JOURNAL_MAX_RECORD (16u << 20)
#define HISTORY_MAX_BYTES (8u << 20)

struct journal;

/*
 * Open STATE_DIR (created 0700 when missing) and take its lock, so one
 * refit at a time changes containers from it; waits up to WAIT_SECONDS for
 * another holder. ERR_FAILED when the directory cannot be made or written.
 */
int journal_open(struct journal **ret, const char *state_dir, int wait_seconds, struct refit_err *e);

void journal_close(struct journal *j);

/* A fresh random operation id (16 hex digits) into BUF. */
void journal_new_id(char buf[17]);

/*
 * Write REC (an object with a string "id") as the in-flight record of its
 * operation: temp file, fsync, rename, fsync of the directory. Nothing may be
 * changed on the engine unless this succeeded.
 */
int journal_write(struct journal *j, json_t *rec, struct refit_err *e);

/*
 * Journal REC at STEP (its "step") before the step is taken. Tests of
 * crash recovery name a step in REFIT_TEST_CRASH_AT ("swarm-STEP" for a
 * service's record) to be killed, as SIGKILL would, right after it is
 * journaled.
 */
int journal_step(struct journal *j, json_t *rec, const char *step, struct refit_err *e);

/* Append REC to the history (fsync'd), then drop its in-flight record. */
int journal_finish(struct journal *j, json_t *rec, struct refit_err *e);

/*
 * Append REC to STATE_DIR's history without the state directory's lock (a
 * record of something that changed no container: a model pull). Appends are
 * ordered by STATE_DIR/history.lock.
 */
int journal_append(const char *state_dir, json_t *rec, struct refit_err *e);

/* The in-flight records left by interrupted runs (new reference; an array). */
json_t *journal_pending(struct journal *j);

/*
 * History records, oldest first (new reference; an array), of container NAME
 * (under its name or as an alias migration's new name), or of model NAME
 * (records with "kind":"model"), or of all when NAME is NULL. Read without
 * the lock by `history` and `status`.
 */
json_t *journal_history(const char *state_dir, const char *name);

/* REC without the inspects it keeps for rollbacks, as users and the API see it (new reference). */
json_t *journal_public(json_t *rec);

#endif
