/* `refit history`: what was changed, when, from which digest to which, and how it ended. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "refit/journal-record.h"
#include "refit/journal.h"

static int run_history(struct refit_config *cfg)
{
	json_t *hist, *out = json_array(), *r;
	size_t i;

	if (opts.nargs > 1) {
		fprintf(stderr, "refit history: at most one container or model name\n");
		json_decref(out);
		return ERR_USAGE;
	}
	hist = journal_history(cfg->state_dir, opts.nargs ? opts.args[0] : NULL);
	json_array_foreach(hist, i, r) {
		json_array_append_new(out, journal_public(r));
	}
	if (opts.json) {
		print_json("history", out);
	} else {
		printf("%-20s  %-20s  %-8s  %-11s  %-10s  %-12s  %s\n", "FINISHED", "CONTAINER", "KIND", "OUTCOME",
		       "STRATEGY", "FROM", "TO");
		json_array_foreach(out, i, r) {
			char a[24], b[24];
			const char *err = jr_str(r, JR_ERROR);

			printf("%-20s  %-20s  %-8s  %-11s  %-10s  %-12s  %s\n",
			       jr_str(r, JR_FINISHED) ? jr_str(r, JR_FINISHED) : "-",
			       jr_str(r, JR_CONTAINER) ? jr_str(r, JR_CONTAINER) :
			       jr_str(r, JR_MODEL) ? jr_str(r, JR_MODEL) : "-",
			       jr_str(r, JR_KIND) ? jr_str(r, JR_KIND) : "-",
			       jr_str(r, JR_OUTCOME) ? jr_str(r, JR_OUTCOME) : "-",
			       jr_str(r, JR_STRATEGY) ? jr_str(r, JR_STRATEGY) : "-",
			       registry_digest_short(jr_str(r, JR_OLD_DIGEST), a),
			       registry_digest_short(jr_str(r, JR_NEW_DIGEST), b));
			if (err)
				printf("%22s error: %s\n", "", err);
		}
	}
	json_decref(hist);
	json_decref(out);
	return 0;
}

const struct command cmd_history = {
	.name = "history",
	.run = run_history,
	.takes_names = true,
	.options = OPT_JSON,
	.usage = "refit history [--json] [NAME]",
	.help = "What refit changed, when, from which digest to which, and how it ended.\n"
		"Model pulls that updated a model or failed are listed with kind \"model\".\n",
};
