/* `refit check`: which managed containers have a newer image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int run_check(struct refit_config *cfg)
{
	struct check_result res;
	int code = check_pass(cfg, &res);

	if (code)
		return code;
	for (size_t i = 0; i < opts.nargs; i++) {
		bool found = false;

		for (size_t j = 0; j < res.n && !found; j++)
			found = strcmp(res.v[j].name, opts.args[i]) == 0;
		if (!found)
			fprintf(stderr, "refit: %s: no such container managed here (check its labels, scope and state)\n",
				opts.args[i]);
	}
	print_result(&res);
	code = check_exit_code(&res);
	check_result_free(&res);
	return code;
}

const struct command cmd_check = {
	.name = "check",
	.run = run_check,
	.takes_names = true,
	.options = OPT_JSON,
	.usage = "refit check [--json] [NAME...]",
	.help = "Say which managed containers have a newer image in their registry. Changes\n"
		"nothing and pulls nothing. --json prints {\"containers\":[...]}.\n",
};
