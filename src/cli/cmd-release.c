/* `refit release`: clear the hold on a digest that was rolled back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "refit/base.h"
#include "refit/hold.h"

static int run_release(struct refit_config *cfg)
{
	struct refit_err e = { 0 };
	json_t *released = NULL, *v;
	size_t i;

	if (!opts.all && opts.nargs == 0) {
		fprintf(stderr, "refit release: name the containers, or --all\n");
		return ERR_USAGE;
	}
	for (i = 0; i < opts.nargs; i++)
		if (!container_name_valid(opts.args[i])) {
			fprintf(stderr, "refit release: '%.128s' is not a container name\n", opts.args[i]);
			return ERR_USAGE;
		}
	if (hold_release(cfg->state_dir, opts.args, opts.nargs, opts.all, &released, &e) < 0) {
		fprintf(stderr, "refit release: %s\n", e.msg);
		return ERR_FAILED;
	}
	if (opts.json) {
		print_json("released", released);
	} else {
		json_array_foreach(released, i, v) {
			printf("%s: released (the next pass tries its digest again)\n", json_string_value(v));
		}
		for (size_t k = 0; k < opts.nargs; k++) {
			bool hit = false;

			json_array_foreach(released, i, v) {
				hit |= strcmp(json_string_value(v), opts.args[k]) == 0;
			}
			if (!hit)
				printf("%s: no digest held\n", opts.args[k]);
		}
		if (opts.all && json_array_size(released) == 0)
			printf("(no digest held)\n");
	}
	json_decref(released);
	return 0;
}

const struct command cmd_release = {
	.name = "release",
	.run = run_release,
	.takes_names = true,
	.options = OPT_ALL | OPT_JSON,
	.usage = "refit release NAME... | --all [--json]",
	.help = "Clear the hold on the digest a container was rolled back from (its health gate\n"
		"failed, its replacement was refused, or it was rolled back by hand), so the next\n"
		"pass pulls and tries it again. A hold also ends by itself when the registry\n"
		"serves another digest. A name with no hold is said, not an error.\n",
};
