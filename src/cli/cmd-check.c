/* `refit check`: which managed containers have a newer image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "refit/log.h"

static int run_check(struct refit_config *cfg)
{
	struct engine *en;
	struct registry *reg = NULL;
	struct check_result res;
	struct refit_err e = { 0 };
	int code = open_clients(cfg, &en, &reg);

	if (code)
		return code;
	if (check_run(en, reg, cfg, opts.args, opts.nargs, &res, &e) < 0) {
		fprintf(stderr, "refit: %s\n", e.msg);
		registry_free(reg);
		engine_close(en);
		return e.kind ? e.kind : ERR_FAILED;
	}
	for (size_t i = 0; i < opts.nargs; i++) {
		bool found = false;

		for (size_t j = 0; j < res.n && !found; j++)
			found = strcmp(res.v[j].name, opts.args[i]) == 0;
		if (!found)
			fprintf(stderr, "refit: %s: no such container managed here (check its labels, scope and state)\n",
				opts.args[i]);
	}
	print_result(&res);
	log_debug("registry requests: %lu ping, %lu token, %lu manifest", registry_stats(reg)->ping,
		  registry_stats(reg)->token, registry_stats(reg)->manifest);
	code = check_exit_code(&res);
	check_result_free(&res);
	registry_free(reg);
	engine_close(en);
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
