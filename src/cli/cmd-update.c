/* `refit update`: one update pass now. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "refit/semver.h"

static int run_update(struct refit_config *cfg)
{
	struct op_request rq = { .kind = OP_UPDATE, .names = opts.args, .nnames = opts.nargs,
				 .dry_run = opts.dry_run, .to_tag = opts.to, .force = opts.force };

	if (opts.to && (opts.nargs == 0 || !tag_valid(opts.to))) {
		fprintf(stderr, "refit update: %s\n", opts.nargs == 0 ? "--to TAG needs the names of the containers to move"
								    : "--to: not a tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})");
		return ERR_USAGE;
	}
	if (opts.force && opts.nargs == 0) {
		fprintf(stderr, "refit update: --force needs the names of the containers to try\n");
		return ERR_USAGE;
	}
	return run_op(cfg, &rq);
}

const struct command cmd_update = {
	.name = "update",
	.run = run_update,
	.takes_names = true,
	.options = OPT_DRY_RUN | OPT_JSON | OPT_TO | OPT_FORCE,
	.usage = "refit update [--dry-run] [--json] [--to TAG] [--force] [NAME...]",
	.help = "One update pass now: every managed container with a newer image is pulled\n"
		"(exactly the digest found) and swapped with its strategy; the old one is kept\n"
		"until the new one passes the health gate and is restored when it does not.\n"
		"Containers labelled refit.track=semver[:CONSTRAINT] or regex:PATTERN move to\n"
		"the highest matching tag. --to TAG moves the named containers to TAG of their\n"
		"repository (checked to exist first; if it is missing for any, none moves).\n"
		"A digest held after its rollback, or still in its cooldown, is not pulled;\n"
		"--force tries it anyway for the named containers, once (rolled back again,\n"
		"it is held again). --dry-run only says what would be updated. Exit code 1 when a container could\n"
		"not be updated (it is left on its working version).\n",
};
