/*
 * The command line's shared parts: the options as parsed, a command's
 * entry (each src/cli/cmd-NAME.c defines one), the output helpers and the
 * operation runner the commands share.
 */
#ifndef REFIT_CLI_H
#define REFIT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "refit/check.h"
#include "refit/config.h"
#include "refit/engine.h"
#include "refit/error.h"
#include "refit/op.h"
#include "refit/registry.h"

/* Global options that set a configuration key: --state-dir sets state_dir, ... */
#define FLAG_KEYS 5
struct flag_key {
	const char *flag;
	const char *key;
};
extern const struct flag_key flag_keys[FLAG_KEYS];

/* A command's own options; global ones (--config, --state-dir, ...) go with every command. */
enum {
	OPT_JSON = 1 << 0,
	OPT_DRY_RUN = 1 << 1,
	OPT_ALL = 1 << 2,
	OPT_RESTORE_DATA = 1 << 3,
	OPT_TO = 1 << 4,
	OPT_FORCE = 1 << 5,
};

/* Options given on the command line. */
struct opts {
	unsigned given;          /* OPT_* seen */
	const char *spelled[6];  /* how each OPT_* was written, by bit index */
	const char *config;
	const char *flag_value[FLAG_KEYS]; /* state-dir, docker-host, scope, log-format, log-level */
	bool json;
	bool help;
	bool dry_run;
	bool all;
	bool restore_data;
	bool force;     /* update --force */
	const char *to; /* update --to TAG */
	const char *cmd;
	char **args;
	size_t nargs;
	char **fleet_argv; /* `refit fleet ...`: the words after fleet, parsed by fleet_main */
	int fleet_argc;
	const char *before_fleet; /* the first option given before `fleet`, refused */
};

/* What main() parsed; read by the commands. */
extern struct opts opts;

struct command {
	const char *name;
	int (*run)(struct refit_config *cfg); /* NULL: fleet, which parses its own words */
	bool takes_names;
	unsigned options; /* OPT_* it takes */
	const char *usage;
	const char *help;
	bool no_config; /* run without loading the configuration (CFG NULL) */
};

extern const struct command cmd_daemon, cmd_check, cmd_update, cmd_rollback, cmd_migrate, cmd_status, cmd_history, cmd_models, cmd_release, cmd_reload, cmd_version;

/* The global options and exit codes, printed under every command's help. */
extern const char global_help[];

/* A Watchtower invocation (cmd-watchtower.c): ARGV from word FIRST holds Watchtower's flags. */
int watchtower_main(int argc, char **argv, int first);

/* Its flags, once parsed (load_config applies them), or NULL for refit's own commands. */
struct watchtower;
extern const struct watchtower *watchtower_opts;

/* Load defaults, file, environment, then the command-line flags into CFG. */
int load_config(struct refit_config *cfg, struct refit_err *e);

/* Open the engine, and the registry client when REG is non-NULL; print why not. Returns 0 or the exit code. */
int open_clients(struct refit_config *cfg, struct engine **en, struct registry **reg);

/* A check pass over the containers named (all when none): 0 with RES, or the exit code (said on stderr). */
int check_pass(struct refit_config *cfg, struct check_result *res);

/* Run RQ through op_run(), as the daemon does, and print its result; the exit code. */
int run_op(struct refit_config *cfg, const struct op_request *rq);

/* output.c: a check result as a table; {"KEY": VALUE} as JSON; a pass's or a migration's result, --json or not. */
void print_check_table(const struct check_result *r);
void print_json(const char *key, json_t *value);
void print_result(const struct check_result *res);
void print_migrations(json_t *result, bool dry_run);

#endif
