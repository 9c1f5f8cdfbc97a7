/* One check pass: which managed containers have a newer image. Changes nothing. */
#ifndef REFIT_CHECK_H
#define REFIT_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "refit/config.h"
#include "refit/engine.h"
#include "refit/error.h"
#include "refit/registry.h"

/* What a pass says of one container or service. */
enum entry_status {
	ENTRY_UNSET = 0,        /* not decided yet: reported as error */
	ENTRY_UP_TO_DATE,
	ENTRY_UPDATE_AVAILABLE,
	ENTRY_PINNED,           /* its reference names a digest */
	ENTRY_MONITOR_ONLY,
	ENTRY_SKIPPED,
	ENTRY_ERROR,            /* the check failed for it */
	ENTRY_UPDATED,          /* an update pass swapped it (a rollback: put it back) */
	ENTRY_ROLLED_BACK,      /* its swap failed and the old container is back as it was */
	ENTRY_FAILED,           /* it could not be swapped, or not restored */
	ENTRY_HELD,             /* the registry's digest is the one held after its rollback: not pulled */
	ENTRY_COOLDOWN,         /* the registry's digest is newer than its cooldown: not pulled yet */
	_ENTRY_STATUS_MAX,
	_ENTRY_STATUS_INVALID = -1,
};

/* The status's name in JSON, tables and notifications ("up-to-date", ...); and back (_INVALID for another). */
const char *entry_status_to_string(enum entry_status s);
enum entry_status entry_status_from_string(const char *s);

/*
 * What S means for counting a pass's changes: ENTRY_UPDATED,
 * ENTRY_ROLLED_BACK, ENTRY_FAILED (failed, error or never decided), or
 * _ENTRY_STATUS_INVALID when nothing happened to it (up-to-date, pending,
 * pinned, monitor-only, held, cooldown, skipped).
 */
enum entry_status entry_status_change(enum entry_status s);

struct check_entry {
	char *name;
	char *id;
	char *image;          /* Config.Image as the container was created */
	char *image_id;       /* the container's local image ID */
	char *current_digest; /* repo digest of the container's image, NULL if unknown */
	char *latest_digest;  /* what the registry (or, with no-pull, the local tag) has */
	enum entry_status status;
	const char *strategy;
	const char *kind;     /* NULL: a container; "service": a Swarm service (id is the service's) */
	int update_available; /* 1, 0, or -1 unknown */
	bool no_pull;         /* compared with the local tag only: an update needs no pull */
	double swap_seconds;  /* wall time of its swap, when one ran */
	double overhead_seconds; /* of which refit's own work: not waiting on the engine, probes or timers */
	int err_kind;
	char *error;
	char *target_tag;     /* tracked (refit.track) or moved (--to): the tag it goes to, or stays on */
	char *target_image;   /* the reference it moves to ("repo:TAG"), NULL when it stays on its own */
	long cooldown;        /* seconds a new digest waits (label or configuration) */
	time_t held_since;    /* ENTRY_HELD: when its digest was held */
	time_t eligible_at;   /* ENTRY_COOLDOWN: when its digest may be pulled */
	bool held;            /* this pass held its digest (after its rollback) */
	char *renamed_to;     /* its swap moved it to this name (refit.rename-to), or NULL */
};

struct check_result {
	struct check_entry *v;
	size_t n;
	size_t lookups; /* distinct references asked of registries */
};

/*
 * Check the containers CFG selects (narrowed by NAMES when NNAMES > 0):
 * one registry lookup per distinct reference, concurrent. Per-container
 * problems go into the entry; -1 only when the engine cannot be listed.
 */
int check_run(struct engine *en, struct registry *reg, const struct refit_config *cfg, char *const *names,
	      size_t nnames, struct check_result *ret, struct refit_err *e);

/*
 * check_run, and with TO_TAG (a valid tag) the named containers move to
 * that tag of their repository: their target is checked to exist (a missing
 * tag is the entry's error, naming the tag and the container). Both tell
 * held digests and digests in their cooldown apart from updates (see
 * hold_check, include/refit/hold.h).
 */
int check_run_to(struct engine *en, struct registry *reg, const struct refit_config *cfg, char *const *names,
		 size_t nnames, const char *to_tag, struct check_result *ret, struct refit_err *e);

/* check_run_to; with FORCE (named containers only) no digest is held back by a hold or a cooldown. */
int check_run_hold(struct engine *en, struct registry *reg, const struct refit_config *cfg, char *const *names,
		   size_t nnames, const char *to_tag, bool force, struct check_result *ret, struct refit_err *e);

/* The reference an entry's swap runs: its target when it moves, else its own image. */
const char *check_entry_image(const struct check_entry *c);

void check_result_free(struct check_result *r);

/* {"containers":[...]} as `refit check --json` prints it (new reference). */
json_t *check_result_json(const struct check_result *r);

/* 0, or 1 when an entry failed, or 3 when a registry could not be reached. */
int check_exit_code(const struct check_result *r);

#endif
