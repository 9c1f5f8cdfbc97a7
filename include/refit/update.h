/* Update and rollback passes: check, pull, swap, journal; and recovery of interrupted ones. */
#ifndef REFIT_UPDATE_H
#define REFIT_UPDATE_H

#include <stdbool.h>

#include "refit/check.h"
#include "refit/journal.h"
#include "refit/registry.h"

/*
 * Pull REF's repository at DIGEST, or at REF's tag ("latest" when it has
 * none) when DIGEST is NULL, with the configured credentials for its
 * registry.
 */
int update_pull(struct engine *en, const struct refit_config *cfg, const struct imageref *ref, const char *digest,
		struct refit_err *e);

/*
 * Finish or undo every operation an interrupted run left in J. Returns the
 * number of records handled, or -1 when one could not be resolved (the
 * record stays for the next run).
 */
int update_recover(struct engine *en, struct journal *j, const struct refit_config *cfg);

/*
 * One update pass over the containers CFG selects (narrowed by NAMES): the
 * check, then for each stale container a pull of exactly the digest found
 * and a swap with its strategy. RES holds one entry per container with
 * status updated, rolled-back, failed, up-to-date or skipped. With DRY_RUN
 * nothing is pulled or changed and statuses are the check's. -1 when the
 * engine cannot be listed.
 */
int update_run(struct engine *en, struct registry *reg, struct journal *j, const struct refit_config *cfg,
	       char *const *names, size_t nnames, bool dry_run, struct check_result *res, struct refit_err *e);

/* How an update pass runs beyond the containers it covers. */
struct update_options {
	const char *to_tag;  /* move the containers to this tag of their repository, or NULL */
	bool dry_run;
	bool force;          /* named containers try a held digest, or one in its cooldown, anyway */
	bool preserve_data;  /* back up each container's volumes before its swap (restorable on rollback) */
	bool rename;         /* a container that declares refit.rename-to moves to that name (alias strategy) */
};

/*
 * update_run as O says. With O->to_tag (a valid tag) the containers move to
 * that tag of their repository. All or nothing: when a named container is
 * not managed here (-1) or its repository has no such tag (that entry
 * "failed", the others "skipped"), no container is changed. A digest held
 * after its rollback, or in its cooldown, is reported and not pulled; with
 * O->force (named containers) it is tried anyway, once: rolled back again,
 * it is held again. With O->rename a container whose refit.rename-to names
 * another name is swapped onto that name even when up to date; with
 * O->preserve_data a container whose backup fails is left as it was.
 */
int update_run_to(struct engine *en, struct registry *reg, struct journal *j, const struct refit_config *cfg,
		  char *const *names, size_t nnames, const struct update_options *o, struct check_result *res,
		  struct refit_err *e);

/*
 * Put each named container (or, with ALL, every container with an update
 * in the history) back on the image and configuration it had before its
 * last update, through its strategy and the health gate. RES as update_run.
 */
int update_rollback(struct engine *en, struct journal *j, const struct refit_config *cfg, char *const *names,
		    size_t nnames, bool all, struct check_result *res, struct refit_err *e);

/*
 * update_rollback; with RESTORE_DATA also the volume backup its migration
 * took (preserve_data): every tar is checked against its SHA-256 in the
 * manifest before anything changes, and put back into the volumes after
 * the container is back (the entry fails when there is no backup).
 */
int update_rollback_data(struct engine *en, struct journal *j, const struct refit_config *cfg, char *const *names,
			 size_t nnames, bool all, bool restore_data, struct check_result *res, struct refit_err *e);

/*
 * From now on, passes start no new swap or pull: swaps in progress finish
 * (or are undone) as usual, containers not yet begun are "skipped". For a
 * daemon that was asked to stop. Safe from any thread.
 */
void update_request_stop(void);

/* 1 when any entry failed, has no status, or has status ALSO_FAILED (_ENTRY_STATUS_INVALID: none); else 0. */
int update_exit_code(const struct check_result *res, enum entry_status also_failed);

#endif
