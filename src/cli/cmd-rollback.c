/* `refit rollback`: back to the image and configuration before the last update. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int run_rollback(struct refit_config *cfg)
{
	struct op_request rq = { .kind = OP_ROLLBACK, .names = opts.args, .nnames = opts.nargs, .all = opts.all,
				 .restore_data = opts.restore_data };

	if (!opts.all && opts.nargs == 0) {
		fprintf(stderr, "refit rollback: name the containers, or --all\n");
		return ERR_USAGE;
	}
	return run_op(cfg, &rq);
}

const struct command cmd_rollback = {
	.name = "rollback",
	.run = run_rollback,
	.takes_names = true,
	.options = OPT_ALL | OPT_RESTORE_DATA | OPT_JSON,
	.usage = "refit rollback NAME... | --all [--restore-data] [--json]",
	.help = "Put containers back on the image and configuration they had before their last\n"
		"update (the image by ID while it is here, else pulled by digest), through the\n"
		"same strategy and health gate. A migrated container (named by its new or its\n"
		"old name) goes back to its old name and image. --restore-data also puts back\n"
		"the volume backup its migration took (preserve_data), each tar checked against\n"
		"its SHA-256 first.\n",
};
