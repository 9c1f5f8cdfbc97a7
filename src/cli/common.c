/* What the commands share: the options as parsed, the configuration they load, the operation runner. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "refit/log.h"
#include "refit/watchtower.h"

extern char **environ;

struct opts opts;

const struct flag_key flag_keys[FLAG_KEYS] = {
	{ "state-dir", "state_dir" }, { "docker-host", "docker_host" }, { "scope", "scope" },
	{ "log-format", "log_format" }, { "log-level", "log_level" },
};

const char global_help[] =
	"Global options:\n"
	"  --config FILE        configuration file (default " CONFIG_DEFAULT_PATH " when present)\n"
	"  --state-dir DIR      where refit keeps its state (default /var/lib/refit)\n"
	"  --docker-host URL    unix:///var/run/docker.sock or tcp://HOST:PORT\n"
	"  --scope NAME         manage only containers labelled refit.scope=NAME\n"
	"  --log-format text|json, --log-level error|warn|info|debug\n"
	"\n"
	"Exit codes: 0 success, 1 some container failed, 2 usage or configuration error,\n"
	"3 the Docker engine or a registry could not be reached.\n";

/* Load defaults, file, environment, then the command-line flags. */
int load_config(struct refit_config *cfg, struct refit_err *e)
{
	if (watchtower_opts) { /* Watchtower's defaults, the file, the variables, then its flags */
		if (config_load_watchtower(cfg, opts.config, environ, e) < 0)
			return -1;
		if (watchtower_apply_flags(cfg, watchtower_opts, e) < 0 || config_finish(cfg, e) < 0) {
			config_free(cfg);
			return -1;
		}
		return 0;
	}
	if (config_load(cfg, opts.config, environ, e) < 0)
		return -1;
	for (size_t i = 0; i < FLAG_KEYS; i++) {
		char origin[32];

		if (!opts.flag_value[i])
			continue;
		snprintf(origin, sizeof(origin), "--%s", flag_keys[i].flag);
		if (config_set(cfg, flag_keys[i].key, opts.flag_value[i], origin, e) < 0) {
			config_free(cfg);
			return -1;
		}
	}
	if (config_finish(cfg, e) < 0) {
		config_free(cfg);
		return -1;
	}
	return 0;
}

/* Open the engine, and the registry client when REG is non-NULL; print why not. */
int open_clients(struct refit_config *cfg, struct engine **en, struct registry **reg)
{
	struct refit_err e = { 0 };

	*en = NULL;
	if (engine_open(en, cfg->docker_host, &e) < 0 || (reg && registry_new(reg, cfg, &e) < 0)) {
		fprintf(stderr, "refit: %s\n", e.msg);
		engine_close(*en);
		return e.kind ? e.kind : ERR_FAILED;
	}
	return 0;
}

int check_pass(struct refit_config *cfg, struct check_result *res)
{
	struct engine *en;
	struct registry *reg = NULL;
	struct refit_err e = { 0 };
	int code = open_clients(cfg, &en, &reg);

	if (code)
		return code;
	if (check_run(en, reg, cfg, opts.args, opts.nargs, res, &e) < 0) {
		fprintf(stderr, "refit: %s\n", e.msg);
		code = e.kind ? e.kind : ERR_FAILED;
	} else {
		log_debug("registry requests: %lu ping, %lu token, %lu manifest", registry_stats(reg)->ping,
			  registry_stats(reg)->token, registry_stats(reg)->manifest);
	}
	registry_free(reg);
	engine_close(en);
	return code;
}

/*
 * Run RQ through op_run(), as the daemon does, and print its result; the
 * notifications op_run() sent are waited for at exit (notify_flush).
 */
int run_op(struct refit_config *cfg, const struct op_request *rq)
{
	struct op_outcome out;
	int code = op_run(cfg, NULL, rq, &out);

	if (!out.result) {
		fprintf(stderr, "refit: %s\n", out.err.msg);
	} else if (rq->kind == OP_MIGRATE) {
		print_migrations(out.result, rq->dry_run);
	} else {
		print_result(&out.res);
	}
	fflush(stdout); /* a waiting reader has the result while notifications are delivered */
	op_outcome_free(&out);
	return code;
}
