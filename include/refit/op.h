/*
 * One operation (an update pass, a rollback, a migration) run the same way
 * whoever asked: `refit update|rollback|migrate` and the daemon's operation
 * queue both call op_run(), so locking, recovery, metrics, notifications
 * and the exit code cannot differ between them.
 */
#ifndef REFIT_OP_H
#define REFIT_OP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/check.h"
#include "refit/config.h"
#include "refit/error.h"
#include "refit/migrate.h"
#include "refit/registry.h"

enum op_kind {
	OP_UPDATE,
	OP_ROLLBACK,
	OP_MIGRATE,
	_OP_KIND_MAX,
	_OP_KIND_INVALID = -1,
};

/* "update", "rollback", "migrate"; and back (_OP_KIND_INVALID for another name). */
const char *op_kind_to_string(enum op_kind k);
enum op_kind op_kind_from_string(const char *s);

struct op_request {
	enum op_kind kind;
	const char *id;          /* the daemon's operation id, for notifications; NULL from the CLI */
	char *const *names;      /* the containers named, or none for all */
	size_t nnames;
	bool all;                /* rollback: every container with an update to undo */
	bool dry_run;            /* update, migrate: say what would change, change nothing */
	bool restore_data;       /* rollback: also the volume backup its migration took */
	const char *to_tag;      /* update: move the named containers to this tag */
	bool force;              /* update: the named containers try a held digest, or one in its cooldown, anyway */
	bool preserve_data;      /* update: back up each container's volumes before its swap */
	bool rename;             /* update: containers that declare refit.rename-to move to that name */
	const struct migration_plan *plan; /* migrate */
	const char *plan_source; /* migrate: the plan's file name for messages, or NULL */
};

struct op_outcome {
	int exit_code;           /* 0; 1 a container failed; 2 refused (bad plan); 3 engine or registry unreachable */
	struct refit_err err;    /* why the operation as a whole failed (exit_code != 0), or empty */
	struct check_result res; /* update, rollback: every container's outcome */
	json_t *result;          /* {"containers":[...]} or {"migrations":[...]} (owned), or NULL */
};

/*
 * Run RQ with CFG: open the engine (and the registry client *REG, kept
 * across calls when REG is given), take the state directory's lock and
 * finish what an interrupted run left (unless dry-run), run, record
 * metrics, send the notifications, and fill OUT. Returns OUT->exit_code.
 */
int op_run(const struct refit_config *cfg, struct registry **reg, const struct op_request *rq,
	   struct op_outcome *out);

void op_outcome_free(struct op_outcome *out);

#endif
