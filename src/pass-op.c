/* op_run(): the one path of an operation, for the CLI and the daemon alike. */
#include <stdio.h>
#include <string.h>

#include "refit/base.h"
#include "refit/engine.h"
#include "refit/handover.h"
#include "refit/journal.h"
#include "refit/log.h"
#include "refit/metrics.h"
#include "refit/notify.h"
#include "refit/op.h"
#include "refit/update.h"

static const char *const op_kind_names[_OP_KIND_MAX] = {
	[OP_UPDATE] = "update",
	[OP_ROLLBACK] = "rollback",
	[OP_MIGRATE] = "migrate",
};

const char *op_kind_to_string(enum op_kind k)
{
	return k >= 0 && k < _OP_KIND_MAX ? op_kind_names[k] : NULL;
}

enum op_kind op_kind_from_string(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(op_kind_names); i++)
		if (strcmp(op_kind_names[i], s) == 0)
			return (enum op_kind)i;
	return _OP_KIND_INVALID;
}

/* Fail OUT as a whole with E's message; the exit code is E's class (1 when it has none). */
static int op_fail(struct op_outcome *out, const struct refit_err *e)
{
	out->err = *e;
	out->exit_code = e->kind > ERR_NONE ? e->kind : ERR_FAILED;
	if (!out->err.kind)
		out->err.kind = ERR_FAILED;
	return out->exit_code;
}

/* The exit code of a finished update or rollback pass. */
static int pass_exit_code(const struct op_request *rq, const struct check_result *res)
{
	int code;

	if (rq->kind == OP_UPDATE && rq->dry_run)
		return check_exit_code(res);
	code = update_exit_code(res, rq->kind == OP_ROLLBACK ? _ENTRY_STATUS_INVALID : ENTRY_ROLLED_BACK);
	/* A container whose engine or registry could not be reached is the unreachable class. */
	for (size_t i = 0; i < res->n; i++)
		if (res->v[i].err_kind == ERR_UNREACHABLE)
			code = ERR_UNREACHABLE;
	return code;
}

int op_run(const struct refit_config *cfg, struct registry **reg, const struct op_request *rq,
	   struct op_outcome *out)
{
	struct registry *own_reg = NULL, **r = reg ? reg : &own_reg;
	struct engine *en = NULL;
	struct journal *j = NULL;
	struct refit_err e = { 0 };
	const char *kind = op_kind_to_string(rq->kind);
	struct timespec t0;
	int rc;

	memset(out, 0, sizeof(*out));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!kind) {
		err_set(&e, ERR_USAGE, "unknown operation");
		return op_fail(out, &e);
	}
	if (handover_done()) {
		err_set(&e, ERR_FAILED, "refit is handing over to its replacement: this one runs no more operations");
		return op_fail(out, &e);
	}
	if (engine_open(&en, cfg->docker_host, &e) < 0)
		goto fail;
	if (rq->kind == OP_UPDATE && !*r && registry_new(r, cfg, &e) < 0)
		goto fail;
	if (!rq->dry_run) {
		if (journal_open(&j, cfg->state_dir, 120, &e) < 0) {
			char why[sizeof(e.msg)];

			snprintf(why, sizeof(why), "%s", e.msg);
			err_set(&e, ERR_FAILED, "%.400s (refit changes nothing it cannot journal)", why);
			goto fail;
		}
		if (update_recover(en, j, cfg) < 0) {
			err_set(&e, ERR_FAILED, "an interrupted operation could not be finished; see the log");
			goto fail;
		}
	}
	switch (rq->kind) {
	case OP_MIGRATE:
		if (migrate_check(en, cfg, rq->plan, rq->plan_source, &e) < 0) {
			if (!e.kind)
				e.kind = ERR_USAGE;
			goto fail;
		}
		out->exit_code = migrate_run(en, j, cfg, rq->plan, rq->dry_run, &out->result);
		if (!rq->dry_run && out->result) { /* told like an update: what was migrated, rolled back, failed */
			json_t *as_pass = migrate_notify_result(out->result);

			notify_pass(cfg, kind, rq->id, as_pass);
			json_decref(as_pass);
		}
		if (out->exit_code != 0)
			err_set(&out->err, out->exit_code, "some containers could not be migrated");
		goto done;
	case OP_ROLLBACK:
		rc = update_rollback_data(en, j, cfg, rq->names, rq->nnames, rq->all, rq->restore_data, &out->res, &e);
		break;
	case OP_UPDATE:
		rc = update_run_to(en, *r, j, cfg, rq->names, rq->nnames,
				   &(struct update_options){ .to_tag = rq->to_tag, .dry_run = rq->dry_run,
							     .force = rq->force, .preserve_data = rq->preserve_data,
							     .rename = rq->rename },
				   &out->res, &e);
		break;
	default:
		rc = err_set(&e, ERR_USAGE, "unknown operation");
		break;
	}
	if (rc < 0)
		goto fail;
	metrics_pass(kind, &out->res, mono_since(&t0));
	for (size_t i = 0; i < out->res.n; i++)
		if (out->res.v[i].swap_seconds > 0)
			metrics_swap(out->res.v[i].swap_seconds);
	if (*r)
		metrics_registry(registry_stats(*r));
	out->result = check_result_json(&out->res);
	if (!rq->dry_run && out->result)
		notify_pass(cfg, kind, rq->id, out->result); /* sent on threads of their own: the pass is done */
	out->exit_code = pass_exit_code(rq, &out->res);
	if (out->exit_code != 0)
		err_set(&out->err, out->exit_code, "some containers could not be %s",
			rq->kind == OP_ROLLBACK ? "rolled back" : rq->dry_run ? "checked" : "updated");
	goto done;
fail:
	op_fail(out, &e);
done:
	journal_close(j);
	engine_close(en);
	registry_free(own_reg);
	return out->exit_code;
}

void op_outcome_free(struct op_outcome *out)
{
	if (!out)
		return;
	check_result_free(&out->res);
	json_decref(out->result);
	out->result = NULL;
}
