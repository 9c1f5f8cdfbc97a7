/* `refit models`: one model pass now. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "refit/models.h"

static int run_models(struct refit_config *cfg)
{
	struct models_settings s;
	struct models_result res;
	struct refit_err e = { 0 };
	json_t *j;
	int code;

	if (models_settings_copy(&s, cfg) < 0) {
		fprintf(stderr, "refit: out of memory\n");
		return ERR_FAILED;
	}
	if (s.names.n == 0)
		fprintf(stderr, "refit: no models configured (models.names, REFIT_MODELS_NAMES or OLLAMA_MODELS)\n");
	if (models_run(&s, &res, &e) < 0) {
		fprintf(stderr, "refit: %s\n", e.msg);
		models_settings_free(&s);
		return ERR_FAILED;
	}
	if (opts.json) {
		char *txt;

		j = models_result_json(&s, &res);
		txt = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) : NULL;
		if (txt)
			printf("%s\n", txt);
		free(txt);
		json_decref(j);
	} else {
		int wn = 5;

		for (size_t i = 0; i < res.n; i++)
			wn = (int)strlen(res.v[i].name) > wn ? (int)strlen(res.v[i].name) : wn;
		printf("%-*s  %-10s  %-12s  %s\n", wn, "MODEL", "STATUS", "OLD", "NEW");
		for (size_t i = 0; i < res.n; i++) {
			const struct model_result *m = &res.v[i];
			char a[24], b[24];

			printf("%-*s  %-10s  %-12s  %s\n", wn, m->name, m->status, registry_digest_short(m->old_digest, a),
			       registry_digest_short(m->new_digest, b));
			if (m->error[0])
				printf("%-*s  error: %s\n", wn, "", m->error);
		}
	}
	fflush(stdout);
	code = models_exit_code(&res);
	models_result_free(&res);
	models_settings_free(&s);
	return code;
}

const struct command cmd_models = {
	.name = "models",
	.run = run_models,
	.takes_names = false,
	.options = OPT_JSON,
	.usage = "refit models [--json]",
	.help = "One model pass now: each Ollama model in models.names (OLLAMA_MODELS) is\n"
		"pulled from models.endpoint and reported updated (its digest changed),\n"
		"up-to-date or failed; updated and failed ones go to the history and the\n"
		"notifications. --json prints {\"endpoint\",\"models\":[...]}. Exit code 1 when\n"
		"a model failed, 3 when the endpoint cannot be reached.\n",
};
