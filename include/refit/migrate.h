/* Migrations: containers renamed (and moved to a new image) through the alias strategy, with volume backups. */
#ifndef REFIT_MIGRATE_H
#define REFIT_MIGRATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/config.h"
#include "refit/engine.h"
#include "refit/error.h"
#include "refit/journal.h"

#define MIGRATE_MAX_FILE (256u * 1024)
#define MIGRATE_MAX_ENTRIES 64

struct migration {
	char *from;
	char *to;
	char *image; /* NULL: the container's own image */
	bool preserve_data;
	unsigned long line; /* of the entry in its file, for messages (0 from the API) */
};

struct migration_plan {
	struct migration *v;
	size_t n;
};

/*
 * Parse a migration file held in BUF (LEN bytes, at most MIGRATE_MAX_FILE):
 * `migrations: [{from, to, image?, preserve_data?, rollback_on_failure?}]`,
 * 1 to MIGRATE_MAX_ENTRIES entries. Unknown keys, wrong types, invalid names
 * or image references, a name used twice (as a `from` or a `to`), a `to`
 * equal to a `from` and `rollback_on_failure: false` are ERR_USAGE naming
 * NAME, the line and the key. On success the caller frees PLAN.
 */
int migrate_parse(const char *buf, size_t len, const char *name, struct migration_plan *plan, struct refit_err *e);

/* Read PATH (a regular file of at most MIGRATE_MAX_FILE bytes) and parse it. */
int migrate_load_file(const char *path, struct migration_plan *plan, struct refit_err *e);

/*
 * The API's migration_config: {"rename_containers", "rename_map" {old: new},
 * "preserve_data", "rollback_on_failure"}, checked as a file is; PLAN as
 * migrate_parse. Without a rename_map (or with an empty one) PLAN is empty:
 * the caller renames the containers that declare refit.rename-to instead.
 * ERR_USAGE with a sentence for the client.
 */
int migrate_from_json(json_t *mc, struct migration_plan *plan, struct refit_err *e);

/* The plan as JSON: [{"from","to","image"?,"preserve_data"}] (new reference). */
json_t *migrate_plan_json(const struct migration_plan *plan);

void migrate_plan_free(struct migration_plan *plan);

/*
 * Check PLAN against the engine before anything changes: each `from`
 * exists and this refit may manage it (scope), each `to` is free (or is
 * the container itself, already migrated). ERR_USAGE naming SOURCE (file
 * name, or NULL) and the entry's line; ERR_UNREACHABLE when the engine is.
 */
int migrate_check(struct engine *en, const struct refit_config *cfg, const struct migration_plan *plan,
		  const char *source, struct refit_err *e);

/*
 * Run PLAN: for each entry, pull its image, back up its volumes when asked
 * (state_dir/backups/ID/), then swap it through the alias strategy, journaled
 * in J. With DRY_RUN (J may be NULL) nothing is pulled or changed.
 * *RESULT gets {"migrations":[{"from","to","status","id"?,"new_id"?,"image",
 * "backup"?,"error"?}]} with status migrated, rolled-back, failed or planned.
 * Returns the exit code: 0, 1 (an entry failed; its container was left as
 * it was) or 3 (the engine could not be reached).
 */
int migrate_run(struct engine *en, struct journal *j, const struct refit_config *cfg,
		const struct migration_plan *plan, bool dry_run, json_t **result);

/*
 * RESULT of migrate_run as a pass's result for the notifications:
 * {"containers":[{"name": TO, "from": FROM, "image", "status", "error"?,
 * "strategy": "migrate"}]}, migrated entries "updated"; those that changed
 * nothing (planned, already migrated) left out. New reference, or NULL.
 */
json_t *migrate_notify_result(json_t *result);

/*
 * Back up every volume (named and anonymous) of the container INS into
 * state_dir/backups/OPID/: one tar per volume through the engine's archive
 * endpoint, streamed to disk with its SHA-256, fsync'd, and manifest.json.
 * The whole backup is bounded by backup_max_bytes; on any failure nothing
 * is left behind. DIR gets the backup's directory.
 */
int backup_take(struct engine *en, const struct refit_config *cfg, json_t *ins, const char *opid, char *dir,
		size_t dirlen, struct refit_err *e);

/* Read DIR/manifest.json and check every tar's size and SHA-256 against it; *MANIFEST gets it. */
int backup_verify(const char *dir, json_t **manifest, struct refit_err *e);

/*
 * Put the verified backup MANIFEST (in DIR) back into the volumes of the
 * running container ID: each volume's mount point is emptied (an exec of
 * sh/rm in the container), the tar is extracted into the mount's parent,
 * and the container is restarted.
 */
int backup_restore(struct engine *en, const char *dir, json_t *manifest, const char *id, struct refit_err *e);

/* Remove the oldest backups of container NAME beyond backup_retention. */
void backup_prune(const struct refit_config *cfg, const char *name);

#endif
