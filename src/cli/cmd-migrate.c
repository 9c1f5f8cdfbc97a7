/* `refit migrate FILE`: rename (and move to a new image) the containers FILE names, through the alias strategy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "refit/migrate.h"

static int run_migrate(struct refit_config *cfg)
{
	struct migration_plan plan;
	struct refit_err e = { 0 };
	struct op_request rq = { .kind = OP_MIGRATE, .dry_run = opts.dry_run, .plan = &plan };
	int code;

	if (opts.nargs != 1) {
		fprintf(stderr, "refit migrate: expected one migration file (see refit help migrate)\n");
		return ERR_USAGE;
	}
	if (migrate_load_file(opts.args[0], &plan, &e) < 0) {
		fprintf(stderr, "refit: %s\n", e.msg);
		return e.kind ? e.kind : ERR_USAGE;
	}
	rq.plan_source = opts.args[0];
	code = run_op(cfg, &rq);
	migrate_plan_free(&plan);
	return code;
}

const struct command cmd_migrate = {
	.name = "migrate",
	.run = run_migrate,
	.takes_names = true,
	.options = OPT_DRY_RUN | OPT_JSON,
	.usage = "refit migrate FILE [--dry-run] [--json]",
	.help = "Rename containers, optionally onto a new image, as FILE says\n"
		"(migrations: [{from, to, image, preserve_data, rollback_on_failure}]); each\n"
		"through the alias strategy: the new container keeps the old one's settings,\n"
		"volumes and networks, answers to the old name as a network alias, passes the\n"
		"health gate, then the old one is removed. A failure leaves the old container\n"
		"running as it was. preserve_data backs up every volume first (see\n"
		"docs/migrations.md). --dry-run prints the plan and changes nothing.\n",
};
