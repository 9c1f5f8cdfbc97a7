/* What the strategies share: the swap in progress and the journaled engine steps. */
#ifndef REFIT_SWAP_INTERNAL_H
#define REFIT_SWAP_INTERNAL_H

#include <stdbool.h>

#include "refit/health.h"
#include "refit/strategy.h"

struct swap {
	struct engine *en;
	struct journal *j;
	const struct refit_config *cfg;
	json_t *rec;        /* the journal record (owned) */
	const char *name;   /* borrowed from rec */
	const char *old_id; /* borrowed from rec */
	bool was_running;
	bool written;       /* the record is in the journal (a step was journaled) */
	struct health_opts health;
};

struct strategy_ops {
	const char *name;
	/* Take the steps; on failure swap_undo(). 0 updated, 1 rolled back, -1 not restored. */
	int (*run)(struct swap *s, struct refit_err *e);
	/*
	 * The step past the health gate: a swap interrupted at it is completed
	 * by swap_recover(), one interrupted before it is undone.
	 */
	const char *commit_step;
	bool downtime;     /* the old container stops before the replacement serves */
	bool takes_new_name; /* the replacement ends under the record's new_name */
	bool internal;     /* chosen by refit only (handover): not a name for the configuration or labels */
};

extern const struct strategy_ops strategy_recreate;
extern const struct strategy_ops strategy_blue_green;
extern const struct strategy_ops strategy_alias;
extern const struct strategy_ops strategy_handover;

/*
 * Undo after a failure: the old container back under its name, as it was
 * (swap_restore_old). 1, or -1 when even that failed (E then says both).
 */
int swap_undo(struct swap *s, struct refit_err *e);

/*
 * The names of a swap that sets the old container aside (recreate,
 * handover): ASIDE gets NAME-refit-old-ID, TEMP the replacement's
 * NAME-refit-new-ID; both noted, and "creating" journaled. 0, or -1 with
 * nothing changed.
 */
int swap_aside_names(struct swap *s, char aside[300], char temp[300], struct refit_err *e);

/* Journal STEP before taking it. */
int swap_step(struct swap *s, const char *step, struct refit_err *e);

/*
 * Record KEY = VALUE; it reaches the journal with the next step (nothing
 * on the engine changes between a note and that step, or what the note
 * names is found again by a name the record already holds).
 */
int swap_note(struct swap *s, const char *key, const char *value, struct refit_err *e);

const char *swap_get(struct swap *s, const char *key);

/*
 * Create the replacement as NAME (EXTRA_ALIAS on user networks), note its
 * ID (journaled with the next step: until then it is found by NAME and its
 * refit.operation label), check its image. HOLD: it joins its networks without their aliases
 * (and without EXTRA_ALIAS) until swap_join.
 */
int swap_create(struct swap *s, const char *name, const char *extra_alias, bool hold, struct refit_err *e);

/* Give a replacement created with HOLD its aliases: reconnect it to each of those networks with them. */
int swap_join(struct swap *s, struct refit_err *e);

int swap_start(struct swap *s, const char *id, struct refit_err *e);

/* Stop with the container's stop signal (label) and timeout. */
int swap_stop(struct swap *s, const char *id, struct refit_err *e);

int swap_rename(struct swap *s, const char *id, const char *name, struct refit_err *e);

/*
 * Removes container ID; a missing one is not an error. OWN_VOLUMES: also
 * the anonymous volumes the engine made for it (never a volume it mounts by
 * name, so never one carried over from the old container): true only for a
 * replacement being discarded.
 */
int swap_remove(struct swap *s, const char *id, bool own_volumes, struct refit_err *e);

/* Take the old container out of its user-defined networks (and so their DNS). */
int swap_disconnect_old(struct swap *s, struct refit_err *e);

/* ID of the container named NAME into ID: 2 found and made by this operation, 1 found, 0 none, -1 error. */
int swap_find(struct swap *s, const char *name, char id[65], struct refit_err *e);

/*
 * Put the old container back: remove the replacement (by recorded ID and by
 * the names it may carry), give the old one its name, start it if it was
 * running. 1 when restored, -1 when not.
 */
int swap_restore_old(struct swap *s, struct refit_err *e);

/* Finish a swap whose replacement passed: remove the old one, replacement under FINAL_NAME, running. */
int swap_complete(struct swap *s, const char *final_name, struct refit_err *e);

#endif
