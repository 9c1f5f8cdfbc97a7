/* refit: command line, subcommand table and exit codes. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/check.h"
#include "refit/config.h"
#include "refit/daemon.h"
#include "refit/engine.h"
#include "refit/fleet.h"
#include "refit/log.h"
#include "refit/migrate.h"
#include "refit/models.h"
#include "refit/journal.h"
#include "refit/notify.h"
#include "refit/op.h"
#include "refit/registry.h"
#include "refit/semver.h"
#include "refit/update.h"

extern char **environ;

/* A command's own options; global ones (--config, --state-dir, ...) go with every command. */
enum {
	OPT_JSON = 1 << 0,
	OPT_DRY_RUN = 1 << 1,
	OPT_ALL = 1 << 2,
	OPT_RESTORE_DATA = 1 << 3,
	OPT_TO = 1 << 4,
};

/* Options given on the command line. */
struct opts {
	unsigned given;          /* OPT_* seen */
	const char *spelled[5];  /* how each OPT_* was written, by bit index */
	const char *config;
	const char *flag_value[5]; /* state-dir, docker-host, scope, log-format, log-level */
	bool json;
	bool help;
	bool dry_run;
	bool all;
	bool restore_data;
	const char *to; /* update --to TAG */
	const char *cmd;
	char **args;
	size_t nargs;
	char **fleet_argv; /* `refit fleet ...`: the words after fleet, parsed by fleet_main */
	int fleet_argc;
	const char *before_fleet; /* the first option given before `fleet`, refused */
};

/* Global options that set a configuration key. */
static const struct {
	const char *flag;
	const char *key;
} flag_keys[5] = {
	{ "state-dir", "state_dir" }, { "docker-host", "docker_host" }, { "scope", "scope" },
	{ "log-format", "log_format" }, { "log-level", "log_level" },
};

static struct opts opts;

static const char global_help[] =
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
static int load_config(struct refit_config *cfg, struct refit_err *e)
{
	if (config_load(cfg, opts.config, environ, e) < 0)
		return -1;
	for (size_t i = 0; i < 5; i++) {
		char origin[32];

		if (!opts.flag_value[i])
			continue;
		snprintf(origin, sizeof(origin), "--%s", flag_keys[i].flag);
		if (config_set(cfg, flag_keys[i].key, opts.flag_value[i], origin, e) < 0) {
			config_free(cfg);
			return -1;
		}
	}
	return 0;
}

/* Configure logging from CFG. */
static void setup_logging(const struct refit_config *cfg)
{
	log_setup(log_level_parse(cfg->log_level), strcmp(cfg->log_format, "json") == 0);
}

/* Print a check result as a table. */
static void print_check_table(const struct check_result *r)
{
	int wn = 4, ws = 6, wi = 5;

	for (size_t i = 0; i < r->n; i++) {
		const struct check_entry *c = &r->v[i];
		int n = (int)strlen(c->name), s = (int)strlen(c->status), im = c->image ? (int)strlen(c->image) : 1;

		wn = n > wn ? n : wn;
		ws = s > ws ? s : ws;
		wi = im > wi ? im : wi;
	}
	printf("%-*s  %-*s  %-*s  %-12s  %s\n", wn, "NAME", ws, "STATUS", wi, "IMAGE", "CURRENT", "LATEST");
	for (size_t i = 0; i < r->n; i++) {
		const struct check_entry *c = &r->v[i];
		char a[24], b[24];

		printf("%-*s  %-*s  %-*s  %-12s  %s\n", wn, c->name, ws, c->status, wi, c->image ? c->image : "-",
		       registry_digest_short(c->current_digest, a), registry_digest_short(c->latest_digest, b));
		if (c->error)
			printf("%-*s  error: %s\n", wn, "", c->error);
		if (c->target_image)
			printf("%-*s  moves to tag %s (%s)\n", wn, "", c->target_tag, c->target_image);
		else if (c->target_tag)
			printf("%-*s  stays on tag %s (no higher tag to move to)\n", wn, "", c->target_tag);
	}
	if (r->n == 0)
		printf("(no managed containers)\n");
}

/* Print {"KEY": VALUE} as indented JSON; VALUE is borrowed. */
static void print_json(const char *key, json_t *value)
{
	json_t *root = json_pack("{s:O}", key, value);
	char *txt = root ? json_dumps(root, JSON_INDENT(2)) : NULL;

	if (txt)
		printf("%s\n", txt);
	free(txt);
	json_decref(root);
}

/* Print a pass's result as JSON or as a table. */
static void print_result(const struct check_result *res)
{
	if (opts.json) {
		json_t *j = check_result_json(res);
		char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;

		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(j);
	} else {
		print_check_table(res);
	}
}

/* Print a migration's result ({"migrations":[...]}) as JSON or as a table. */
static void print_migrations(json_t *result, bool dry_run)
{
	size_t i;
	json_t *m;

	if (opts.json) {
		char *txt = json_dumps(result, JSON_INDENT(2));

		if (txt)
			printf("%s\n", txt);
		free(txt);
		return;
	}
	printf("%-24s  %-24s  %-11s  %s\n", "FROM", "TO", "STATUS", "IMAGE");
	json_array_foreach(json_object_get(result, "migrations"), i, m) {
		const char *err = json_string_value(json_object_get(m, "error"));
		const char *bk = json_string_value(json_object_get(m, "backup"));

		printf("%-24s  %-24s  %-11s  %s%s\n", json_string_value(json_object_get(m, "from")),
		       json_string_value(json_object_get(m, "to")), json_string_value(json_object_get(m, "status")),
		       json_string_value(json_object_get(m, "image")) ? json_string_value(json_object_get(m, "image")) : "-",
		       json_is_true(json_object_get(m, "preserve_data")) && dry_run ? " (volumes backed up first)" : "");
		if (bk)
			printf("%26s backup: %s\n", "", bk);
		if (err)
			printf("%26s error: %s\n", "", err);
	}
	if (dry_run)
		printf("(dry run: nothing was changed)\n");
}

/* Open the engine, and the registry client when REG is non-NULL; print why not. */
static int open_clients(struct refit_config *cfg, struct engine **en, struct registry **reg)
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

/*
 * Run RQ through op_run(), as the daemon does, and print its result; the
 * notifications op_run() sent are waited for at exit (notify_flush).
 */
static int run_op(struct refit_config *cfg, const struct op_request *rq)
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

/* `refit update`: one update pass now. */
static int cmd_update(struct refit_config *cfg)
{
	struct op_request rq = { .kind = OP_UPDATE, .names = opts.args, .nnames = opts.nargs,
				 .dry_run = opts.dry_run, .to_tag = opts.to };

	if (opts.to && (opts.nargs == 0 || !tag_valid(opts.to))) {
		fprintf(stderr, "refit update: %s\n", opts.nargs == 0 ? "--to TAG needs the names of the containers to move"
								    : "--to: not a tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})");
		return ERR_USAGE;
	}
	return run_op(cfg, &rq);
}

/* `refit rollback`: back to the image and configuration before the last update. */
static int cmd_rollback(struct refit_config *cfg)
{
	struct op_request rq = { .kind = OP_ROLLBACK, .names = opts.args, .nnames = opts.nargs, .all = opts.all,
				 .restore_data = opts.restore_data };

	if (!opts.all && opts.nargs == 0) {
		fprintf(stderr, "refit rollback: name the containers, or --all\n");
		return ERR_USAGE;
	}
	return run_op(cfg, &rq);
}

/* `refit migrate FILE`: rename (and move to a new image) the containers FILE names, through the alias strategy. */
static int cmd_migrate(struct refit_config *cfg)
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

/* `refit history`: what was changed, when, from which digest to which, and how it ended. */
static int cmd_history(struct refit_config *cfg)
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
			const char *err = json_string_value(json_object_get(r, "error"));

			printf("%-20s  %-20s  %-8s  %-11s  %-10s  %-12s  %s\n",
			       json_string_value(json_object_get(r, "finished")) ? json_string_value(json_object_get(r, "finished")) : "-",
			       json_string_value(json_object_get(r, "container")) ? json_string_value(json_object_get(r, "container")) :
			       json_string_value(json_object_get(r, "model")) ? json_string_value(json_object_get(r, "model")) : "-",
			       json_string_value(json_object_get(r, "kind")) ? json_string_value(json_object_get(r, "kind")) : "-",
			       json_string_value(json_object_get(r, "outcome")) ? json_string_value(json_object_get(r, "outcome")) : "-",
			       json_string_value(json_object_get(r, "strategy")) ? json_string_value(json_object_get(r, "strategy")) : "-",
			       registry_digest_short(json_string_value(json_object_get(r, "old_digest")), a),
			       registry_digest_short(json_string_value(json_object_get(r, "new_digest")), b));
			if (err)
				printf("%22s error: %s\n", "", err);
		}
	}
	json_decref(hist);
	json_decref(out);
	return 0;
}

/* `refit status`: managed containers, their digest, strategy, last change and pending update. */
static int cmd_status(struct refit_config *cfg)
{
	struct engine *en;
	struct registry *reg = NULL;
	struct check_result res;
	struct refit_err e = { 0 };
	json_t *hist, *out = json_array();
	int code = open_clients(cfg, &en, &reg);

	if (code) {
		json_decref(out);
		return code;
	}
	if (check_run(en, reg, cfg, opts.args, opts.nargs, &res, &e) < 0) {
		fprintf(stderr, "refit: %s\n", e.msg);
		registry_free(reg);
		engine_close(en);
		json_decref(out);
		return e.kind ? e.kind : ERR_FAILED;
	}
	hist = journal_history(cfg->state_dir, NULL);
	for (size_t i = 0; i < res.n; i++) {
		const struct check_entry *c = &res.v[i];
		json_t *last = NULL, *o;

		for (size_t k = json_array_size(hist); k-- > 0 && !last;) {
			json_t *r = json_array_get(hist, k);
			const char *n = json_string_value(json_object_get(r, "container"));
			const char *nn = json_string_value(json_object_get(r, "new_name"));

			if ((n && strcmp(n, c->name) == 0) || (nn && strcmp(nn, c->name) == 0))
				last = journal_public(r);
		}
		o = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:o, s:o, s:s?}", "name", c->name, "id", c->id, "image",
			      c->image, "digest", c->current_digest, "strategy", c->strategy, "last_update",
			      last ? last : json_null(), "pending_update",
			      c->update_available < 0 ? json_null() : json_boolean(c->update_available), "error", c->error);
		if (o)
			json_array_append_new(out, o);
	}
	if (opts.json) {
		print_json("containers", out);
	} else {
		size_t i;
		json_t *o;

		printf("%-24s  %-12s  %-10s  %-8s  %-20s  %s\n", "NAME", "DIGEST", "STRATEGY", "PENDING", "LAST CHANGE", "IMAGE");
		json_array_foreach(out, i, o) {
			char d[24];
			json_t *last = json_object_get(o, "last_update"), *p = json_object_get(o, "pending_update");
			char when[64];

			snprintf(when, sizeof(when), "%s %s",
				 json_string_value(json_object_get(last, "finished")) ? json_string_value(json_object_get(last, "finished")) : "-",
				 json_string_value(json_object_get(last, "outcome")) ? json_string_value(json_object_get(last, "outcome")) : "");
			printf("%-24s  %-12s  %-10s  %-8s  %-20s  %s\n", json_string_value(json_object_get(o, "name")),
			       registry_digest_short(json_string_value(json_object_get(o, "digest")), d),
			       json_string_value(json_object_get(o, "strategy")) ? json_string_value(json_object_get(o, "strategy")) : "-",
			       json_is_null(p) ? "?" : json_is_true(p) ? "yes" : "no", when,
			       json_string_value(json_object_get(o, "image")) ? json_string_value(json_object_get(o, "image")) : "-");
		}
	}
	json_decref(hist);
	json_decref(out);
	code = check_exit_code(&res);
	check_result_free(&res);
	registry_free(reg);
	engine_close(en);
	return code;
}

/* `refit check`: which managed containers have a newer image. */
static int cmd_check(struct refit_config *cfg)
{
	struct engine *en = NULL;
	struct registry *reg = NULL;
	struct check_result res;
	struct refit_err e = { 0 };
	int code;

	if (engine_open(&en, cfg->docker_host, &e) < 0 || registry_new(&reg, cfg, &e) < 0) {
		fprintf(stderr, "refit: %s\n", e.msg);
		engine_close(en);
		return e.kind ? e.kind : ERR_FAILED;
	}
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
	if (opts.json) {
		json_t *j = check_result_json(&res);
		char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;

		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(j);
	} else {
		print_check_table(&res);
	}
	log_debug("registry requests: %lu ping, %lu token, %lu manifest", registry_stats(reg)->ping,
		  registry_stats(reg)->token, registry_stats(reg)->manifest);
	code = check_exit_code(&res);
	check_result_free(&res);
	registry_free(reg);
	engine_close(en);
	return code;
}

/* `refit version`: refit's version and the negotiated Docker API version. */
static int cmd_version(struct refit_config *cfg)
{
	struct engine *en = NULL;
	struct refit_err e = { 0 };

	printf("refit %s\n", REFIT_VERSION);
	if (engine_open(&en, cfg->docker_host, &e) < 0) {
		printf("Docker engine: not reachable (%s)\n", e.msg);
		return e.kind ? e.kind : ERR_FAILED;
	}
	printf("Docker engine %s, API %s\n", engine_server_version(en), engine_api_version(en));
	engine_close(en);
	return 0;
}

/* `refit models`: one model pass now. */
static int cmd_models(struct refit_config *cfg)
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

/* `refit daemon`: the service. */
static int cmd_daemon(struct refit_config *cfg)
{
	return daemon_run(cfg, load_config);
}

static const struct command {
	const char *name;
	int (*run)(struct refit_config *cfg);
	bool takes_names;
	unsigned options; /* OPT_* it takes */
	const char *usage;
	const char *help;
} commands[] = {
	{ "daemon", cmd_daemon, false, 0, "refit daemon",
	  "Run as a service: check the managed containers every poll_interval and log\n"
	  "what has an update. SIGTERM or SIGINT stops it; SIGHUP reloads the configuration.\n"
	  "With models.names set it also pulls those Ollama models at start and every\n"
	  "models.interval (see refit models).\n" },
	{ "check", cmd_check, true, OPT_JSON, "refit check [--json] [NAME...]",
	  "Say which managed containers have a newer image in their registry. Changes\n"
	  "nothing and pulls nothing. --json prints {\"containers\":[...]}.\n" },
	{ "update", cmd_update, true, OPT_DRY_RUN | OPT_JSON | OPT_TO, "refit update [--dry-run] [--json] [--to TAG] [NAME...]",
	  "One update pass now: every managed container with a newer image is pulled\n"
	  "(exactly the digest found) and swapped with its strategy; the old one is kept\n"
	  "until the new one passes the health gate and is restored when it does not.\n"
	  "Containers labelled refit.track=semver[:CONSTRAINT] or regex:PATTERN move to\n"
	  "the highest matching tag. --to TAG moves the named containers to TAG of their\n"
	  "repository (checked to exist first; if it is missing for any, none moves).\n"
	  "--dry-run only says what would be updated. Exit code 1 when a container could\n"
	  "not be updated (it is left on its working version).\n" },
	{ "rollback", cmd_rollback, true, OPT_ALL | OPT_RESTORE_DATA | OPT_JSON,
	  "refit rollback NAME... | --all [--restore-data] [--json]",
	  "Put containers back on the image and configuration they had before their last\n"
	  "update (the image by ID while it is here, else pulled by digest), through the\n"
	  "same strategy and health gate. A migrated container (named by its new or its\n"
	  "old name) goes back to its old name and image. --restore-data also puts back\n"
	  "the volume backup its migration took (preserve_data), each tar checked against\n"
	  "its SHA-256 first.\n" },
	{ "migrate", cmd_migrate, true, OPT_DRY_RUN | OPT_JSON, "refit migrate FILE [--dry-run] [--json]",
	  "Rename containers, optionally onto a new image, as FILE says\n"
	  "(migrations: [{from, to, image, preserve_data, rollback_on_failure}]); each\n"
	  "through the alias strategy: the new container keeps the old one's settings,\n"
	  "volumes and networks, answers to the old name as a network alias, passes the\n"
	  "health gate, then the old one is removed. A failure leaves the old container\n"
	  "running as it was. preserve_data backs up every volume first (see\n"
	  "docs/migrations.md). --dry-run prints the plan and changes nothing.\n" },
	{ "status", cmd_status, true, OPT_JSON, "refit status [--json] [NAME...]",
	  "The managed containers: image, digest, strategy, last change and whether an\n"
	  "update is pending (asks the registries, like check).\n" },
	{ "history", cmd_history, true, OPT_JSON, "refit history [--json] [NAME]",
	  "What refit changed, when, from which digest to which, and how it ended.\n"
	  "Model pulls that updated a model or failed are listed with kind \"model\".\n" },
	{ "models", cmd_models, false, OPT_JSON, "refit models [--json]",
	  "One model pass now: each Ollama model in models.names (OLLAMA_MODELS) is\n"
	  "pulled from models.endpoint and reported updated (its digest changed),\n"
	  "up-to-date or failed; updated and failed ones go to the history and the\n"
	  "notifications. --json prints {\"endpoint\",\"models\":[...]}. Exit code 1 when\n"
	  "a model failed, 3 when the endpoint cannot be reached.\n" },
	{ "fleet", NULL, false, 0, fleet_usage, fleet_help },
	{ "version", cmd_version, false, 0, "refit version",
	  "Print refit's version and the Docker API version negotiated with the engine.\n" },
};

/* Print the overview of all commands. */
static void usage(FILE *f)
{
	fprintf(f, "usage: refit [global options] COMMAND [options]\n\n"
		   "refit keeps containers on the newest image of their reference.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s\n", commands[i].usage);
	fprintf(f, "  help [COMMAND]\n\n%s", global_help);
}

/* Note option BIT, written as SPELLED, as given. */
static void given(unsigned bit, const char *spelled)
{
	opts.given |= bit;
	for (size_t k = 0; k < ARRAY_SIZE(opts.spelled); k++)
		if (bit == 1u << k && !opts.spelled[k])
			opts.spelled[k] = spelled;
}

/* The first option given that COMMAND does not take, or NULL. */
static const char *foreign_option(unsigned takes)
{
	for (size_t k = 0; k < ARRAY_SIZE(opts.spelled); k++)
		if ((opts.given & ~takes) & (1u << k))
			return opts.spelled[k];
	return NULL;
}

/* Split argv into global options, the command and its arguments. */
static int parse_args(int argc, char **argv)
{
	bool no_more = false;

	opts.args = calloc((size_t)argc, sizeof(char *));
	if (!opts.args)
		return -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		char name[32];
		size_t n;
		bool known = false;

		if (opts.cmd && strcmp(opts.cmd, "fleet") == 0) { /* the rest is fleet_main's */
			opts.fleet_argv = argv + i;
			opts.fleet_argc = argc - i;
			return 0;
		}
		if (!opts.cmd && !opts.before_fleet && a[0] == '-' && strcmp(a, "-") != 0 && strcmp(a, "--") != 0)
			opts.before_fleet = a; /* an error only when the command is fleet */
		if (no_more || a[0] != '-' || strcmp(a, "-") == 0) {
			if (!opts.cmd)
				opts.cmd = a;
			else
				opts.args[opts.nargs++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			no_more = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			opts.help = true;
			continue;
		}
		if (strcmp(a, "--json") == 0) {
			opts.json = true;
			given(OPT_JSON, a);
			continue;
		}
		if (strcmp(a, "--dry-run") == 0) {
			opts.dry_run = true;
			given(OPT_DRY_RUN, a);
			continue;
		}
		if (strcmp(a, "--all") == 0) {
			opts.all = true;
			given(OPT_ALL, a);
			continue;
		}
		if (strcmp(a, "--restore-data") == 0) {
			opts.restore_data = true;
			given(OPT_RESTORE_DATA, a);
			continue;
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "refit: unknown option %s (see refit --help)\n", a);
			return -1;
		}
		n = strcspn(a + 2, "=");
		if (n >= sizeof(name)) {
			fprintf(stderr, "refit: unknown option %.40s... (see refit --help)\n", a);
			return -1;
		}
		memcpy(name, a + 2, n);
		name[n] = '\0';
		if (a[2 + n] == '=')
			val = a + 3 + n;
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			fprintf(stderr, "refit: --%s needs a value\n", name);
			return -1;
		}
		if (strcmp(name, "config") == 0) {
			opts.config = val;
			known = true;
		}
		if (strcmp(name, "to") == 0) {
			opts.to = val;
			given(OPT_TO, "--to");
			known = true;
		}
		for (size_t k = 0; k < 5; k++) {
			if (strcmp(name, flag_keys[k].flag) == 0) {
				opts.flag_value[k] = val;
				known = true;
			}
		}
		if (!known) {
			fprintf(stderr, "refit: unknown option %s (see refit --help)\n", a);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	struct refit_config cfg;
	struct refit_err e = { 0 };
	int code;

	if (parse_args(argc, argv) < 0)
		return ERR_USAGE;
	if (!opts.cmd || strcmp(opts.cmd, "help") == 0) {
		const char *topic = opts.cmd ? (opts.nargs ? opts.args[0] : NULL) : NULL;

		for (size_t i = 0; topic && i < sizeof(commands) / sizeof(commands[0]); i++)
			if (strcmp(commands[i].name, topic) == 0)
				cmd = &commands[i];
		if (cmd) {
			printf("usage: %s\n\n%s\n%s", cmd->usage, cmd->help, global_help);
		} else {
			usage(opts.cmd || opts.help ? stdout : stderr);
		}
		free(opts.args);
		return opts.cmd || opts.help ? 0 : ERR_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, opts.cmd) == 0)
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "refit: unknown command '%s' (see refit --help)\n", opts.cmd);
		free(opts.args);
		return ERR_USAGE;
	}
	if (!cmd->run) { /* fleet: its own options; needs no configuration, engine or state */
		/* a global option before `fleet` (--dry-run, --json, ...) would
		 * otherwise be dropped without a word: refuse it */
		if (opts.before_fleet && !opts.help) {
			fprintf(stderr, "refit fleet: %s: options go after 'fleet rollout' or 'fleet status'\n",
				opts.before_fleet);
			free(opts.args);
			return ERR_USAGE;
		}
		curl_global_init(CURL_GLOBAL_DEFAULT);
		if (opts.help)
			code = printf("usage: %s\n\n%s", fleet_usage, fleet_help) < 0;
		else
			code = fleet_main(opts.fleet_argc, opts.fleet_argv);
		curl_global_cleanup();
		free(opts.args);
		return code;
	}
	if (opts.help) {
		printf("usage: %s\n\n%s\n%s", cmd->usage, cmd->help, global_help);
		free(opts.args);
		return 0;
	}
	if (foreign_option(cmd->options)) {
		fprintf(stderr, "refit %s: option %s does not apply to this command (see refit help %s)\n", cmd->name,
			foreign_option(cmd->options), cmd->name);
		free(opts.args);
		return ERR_USAGE;
	}
	if (!cmd->takes_names && opts.nargs > 0) {
		fprintf(stderr, "refit %s: unexpected argument '%s'\n", cmd->name, opts.args[0]);
		free(opts.args);
		return ERR_USAGE;
	}
	if (load_config(&cfg, &e) < 0) {
		fprintf(stderr, "refit: %s\n", e.msg);
		free(opts.args);
		return ERR_USAGE;
	}
	setup_logging(&cfg);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	code = cmd->run(&cfg);
	notify_flush(NOTIFY_EXIT_WAIT); /* the pass's result is out; its notifications get a bounded wait */
	config_free(&cfg);
	curl_global_cleanup();
	free(opts.args);
	return code;
}
