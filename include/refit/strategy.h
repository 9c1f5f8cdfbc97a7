/* Swapping a container for its replacement: recreate, blue-green and alias, journaled. */
#ifndef REFIT_STRATEGY_H
#define REFIT_STRATEGY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/check.h"
#include "refit/config.h"
#include "refit/engine.h"
#include "refit/error.h"
#include "refit/journal.h"

struct swap_request {
	const char *kind;         /* "update" or "rollback" */
	const char *name;         /* the container's name */
	json_t *old;              /* its inspect (borrowed) */
	json_t *old_image;        /* inspect of its image, or NULL when gone (borrowed) */
	const char *old_digest;   /* repo digest of its image, or NULL */
	const char *image;        /* Config.Image of the replacement: the tag reference */
	const char *new_image_id; /* the local image the replacement must run */
	const char *new_digest;   /* its repo digest, or NULL */
	const char *strategy;     /* the strategy asked for: label, configuration or history record */
	const char *rename_to;    /* the new name asked for (label refit.rename-to, migration, rollback), or NULL */
	json_t *spec;             /* build the replacement from this inspect instead of OLD (rollback), or NULL */
	json_t *spec_image;       /* the image inspect that goes with SPEC, or NULL */
	const char *backup;       /* migrate: the directory of the volume backup taken first, or NULL */
};

/* How a swap runs, decided once by swap_plan(). */
struct swap_plan {
	const char *strategy;  /* the one that runs: a name from the strategy table */
	const char *rename_to; /* the name the replacement ends under when it is not the old one's, else NULL */
	const char *reason;    /* why STRATEGY is not the one asked for, or NULL */
	bool downtime;         /* the old container stops before its replacement serves */
};

struct swap_result {
	enum entry_status outcome; /* ENTRY_UPDATED; ENTRY_ROLLED_BACK (the old one back as it was); ENTRY_FAILED (not restored) */
	const char *strategy; /* the one used (blue-green falls back to recreate on fixed host ports) */
	char new_id[65];
	char error[512];
};

/* The strategy named NAME as the table spells it, or NULL when there is none of that name. */
const char *strategy_known(const char *name);

/* The strategies' names, ", "-separated, into BUF: for messages. */
void strategy_names(char *buf, size_t len);

/*
 * Decide how RQ's container is swapped, the one place that does: from the
 * strategy and new name asked for and the old container's inspect. An
 * alias swap needs a valid new name; an alias to the name the container
 * already has swaps it in place (blue-green); a rollback of a renamed
 * container goes back to its old name (alias); blue-green where two
 * copies cannot run at once (a fixed host port, IP or MAC) or nothing is
 * running becomes recreate. 0, or -1 with E when it cannot be swapped.
 */
int swap_plan(const struct swap_request *rq, struct swap_plan *plan, struct refit_err *e);

/*
 * Replace a container as RQ says and PLAN decided, journaling every step in J before it is
 * taken. Returns 0 when the replacement passed the health gate and the old
 * container is gone; 1 when it failed and the old container is back under
 * its name, running as before; -1 when even that failed (RES says why).
 * Nothing is changed when the first journal write fails.
 */
int swap_run(struct engine *en, struct journal *j, const struct refit_config *cfg, const struct swap_request *rq,
	     const struct swap_plan *plan, struct swap_result *res);

/*
 * Finish or undo the interrupted operation REC from J's pending records:
 * before the health gate passed, the old container is restored; after, the
 * swap is completed. Returns as swap_run.
 */
int swap_recover(struct engine *en, struct journal *j, const struct refit_config *cfg, json_t *rec,
		 struct swap_result *res);

#endif
