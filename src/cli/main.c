/* refit: the command table, the option parser and dispatch; each command lives in src/cli/cmd-NAME.c. */
#include <curl/curl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "refit/args.h"
#include "refit/base.h"
#include "refit/fleet.h"
#include "refit/log.h"
#include "refit/notify.h"
#include "refit/watchtower.h"

static const struct command cmd_fleet = { "fleet", NULL, false, 0, fleet_usage, fleet_help, false };

static const struct command *const commands[] = {
	&cmd_daemon, &cmd_check, &cmd_update, &cmd_rollback, &cmd_migrate, &cmd_status,
	&cmd_history, &cmd_models, &cmd_release, &cmd_reload, &cmd_fleet, &cmd_version,
};

/* Is WORD one of refit's command words (help included)? */
static bool is_command(const char *word)
{
	if (strcmp(word, "help") == 0)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(word, commands[i]->name) == 0)
			return true;
	return false;
}

/* Configure logging from CFG. */
static void setup_logging(const struct refit_config *cfg)
{
	log_setup(log_level_parse(cfg->log_level), strcmp(cfg->log_format, "json") == 0);
}

/* Print the overview of all commands. */
static void usage(FILE *f)
{
	fprintf(f, "usage: refit [global options] COMMAND [options]\n\n"
		   "refit keeps containers on the newest image of their reference.\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %s\n", commands[i]->usage);
	fprintf(f, "  help [COMMAND]\n"
		   "  refit watchtower [FLAGS] [NAME...]  (or refit FLAGS...: Watchtower's command line)\n\n%s",
		global_help);
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

/* Every option of refit's commands; which command takes which is each command's .options. */
enum {
	ID_HELP = 1,
	ID_JSON,
	ID_DRY_RUN,
	ID_ALL,
	ID_RESTORE_DATA,
	ID_TO,
	ID_FORCE,
	ID_CONFIG,
	ID_FLAG_KEY, /* ID_FLAG_KEY + k: flag_keys[k] */
};

static const struct arg_opt options[] = {
	{ "help", false, ID_HELP, "-h" },
	{ "json", false, ID_JSON, NULL },
	{ "dry-run", false, ID_DRY_RUN, NULL },
	{ "all", false, ID_ALL, NULL },
	{ "restore-data", false, ID_RESTORE_DATA, NULL },
	{ "to", true, ID_TO, NULL },
	{ "force", false, ID_FORCE, NULL },
	{ "config", true, ID_CONFIG, NULL },
	{ "state-dir", true, ID_FLAG_KEY + 0, NULL },
	{ "docker-host", true, ID_FLAG_KEY + 1, NULL },
	{ "scope", true, ID_FLAG_KEY + 2, NULL },
	{ "log-format", true, ID_FLAG_KEY + 3, NULL },
	{ "log-level", true, ID_FLAG_KEY + 4, NULL },
};

/* Split argv into global options, the command and its arguments; -1 (said on stderr) on a bad word. */
static int parse_args(int argc, char **argv)
{
	struct args a;
	const char *val;
	int id;

	opts.args = calloc((size_t)argc, sizeof(char *));
	if (!opts.args)
		return -1;
	args_init(&a, argc, argv, 1);
	while ((id = args_next(&a, options, ARRAY_SIZE(options), &val)) != ARG_DONE) {
		if (id != ARG_WORD && !opts.cmd && !opts.before_fleet)
			opts.before_fleet = a.word; /* an error only when the command is fleet */
		switch (id) {
		case ARG_WORD:
			if (opts.cmd) {
				opts.args[opts.nargs++] = (char *)val;
				break;
			}
			opts.cmd = val;
			if (strcmp(val, "fleet") == 0) { /* the rest is fleet_main's */
				opts.fleet_argc = args_rest(&a, &opts.fleet_argv);
				return 0;
			}
			break;
		case ARG_UNKNOWN:
			fprintf(stderr, "refit: unknown option %.64s (see refit --help)\n", val);
			return -1;
		case ARG_NO_VALUE:
			fprintf(stderr, "refit: %.64s needs a value\n", val);
			return -1;
		case ARG_BAD_VALUE:
			fprintf(stderr, "refit: %.64s: this option takes no value\n", val);
			return -1;
		case ID_HELP:
			opts.help = true;
			break;
		case ID_JSON:
			opts.json = true;
			given(OPT_JSON, val);
			break;
		case ID_DRY_RUN:
			opts.dry_run = true;
			given(OPT_DRY_RUN, val);
			break;
		case ID_ALL:
			opts.all = true;
			given(OPT_ALL, val);
			break;
		case ID_RESTORE_DATA:
			opts.restore_data = true;
			given(OPT_RESTORE_DATA, val);
			break;
		case ID_TO:
			opts.to = val;
			given(OPT_TO, "--to");
			break;
		case ID_FORCE:
			opts.force = true;
			given(OPT_FORCE, val);
			break;
		case ID_CONFIG:
			opts.config = val;
			break;
		default:
			if (id >= ID_FLAG_KEY && id < ID_FLAG_KEY + FLAG_KEYS)
				opts.flag_value[id - ID_FLAG_KEY] = val;
			break;
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

	/*
	 * refit's threads (an update pass has one per swap under way, most of
	 * them waiting on a health gate) allocate little and briefly: two
	 * malloc arenas instead of one per thread keep the private memory
	 * from growing with them.
	 */
	mallopt(M_ARENA_MAX, 2);
	if (watchtower_invocation(argc, argv, is_command)) /* refit --interval 30 --cleanup, as a Watchtower container runs */
		return watchtower_main(argc, argv, argc > 1 && strcmp(argv[1], "watchtower") == 0 ? 2 : 1);
	if (parse_args(argc, argv) < 0)
		return ERR_USAGE;
	if (!opts.cmd || strcmp(opts.cmd, "help") == 0) {
		const char *topic = opts.cmd ? (opts.nargs ? opts.args[0] : NULL) : NULL;

		for (size_t i = 0; topic && i < ARRAY_SIZE(commands); i++)
			if (strcmp(commands[i]->name, topic) == 0)
				cmd = commands[i];
		if (cmd) {
			printf("usage: %s\n\n%s\n%s", cmd->usage, cmd->help, global_help);
		} else {
			usage(opts.cmd || opts.help ? stdout : stderr);
		}
		free(opts.args);
		return opts.cmd || opts.help ? 0 : ERR_USAGE;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i]->name, opts.cmd) == 0)
			cmd = commands[i];
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
	if (cmd->no_config) {
		code = cmd->run(NULL);
		free(opts.args);
		return code;
	}
	if (load_config(&cfg, &e) < 0) {
		fprintf(stderr, "refit: %s\n", e.msg);
		free(opts.args);
		return ERR_USAGE;
	}
	setup_logging(&cfg);
	for (size_t i = 0; i < cfg.warnings.n; i++)
		log_warn("%s", cfg.warnings.v[i]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	code = cmd->run(&cfg);
	notify_flush(NOTIFY_EXIT_WAIT); /* the pass's result is out; its notifications get a bounded wait */
	config_free(&cfg);
	curl_global_cleanup();
	free(opts.args);
	return code;
}
