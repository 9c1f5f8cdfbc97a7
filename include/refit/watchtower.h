/*
 * Watchtower's flags and WATCHTOWER_* variables, read with Watchtower's
 * meaning: one table (src/watchtower.c) serves the variables, the
 * command-line flags of a Watchtower invocation (`refit --interval 30
 * --cleanup`) and `refit watchtower --help`.
 */
#ifndef REFIT_WATCHTOWER_H
#define REFIT_WATCHTOWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "refit/config.h"
#include "refit/error.h"

#define WT_MAX_GIVEN 256 /* flags on one command line */

/* One flag as given on the command line: the table's entry and its value ("true" for a bare flag). */
struct wt_given {
	int setting; /* index into the table */
	const char *value;
};

/* A Watchtower invocation as parsed: what it asked beyond configuration keys. */
struct watchtower {
	bool run_once;     /* --run-once, -R, WATCHTOWER_RUN_ONCE: one pass, then exit */
	bool rollback;     /* --rollback: with run-once, roll back instead of updating */
	bool health_check; /* --health-check: ask the running daemon whether it is alive */
	bool help;
	struct wt_given given[WT_MAX_GIVEN];
	size_t ngiven;
	char **names; /* positional container names (borrowed from argv) */
	size_t nnames;
};

/*
 * Is ARGV (from word 1) a Watchtower invocation: no word for which
 * IS_COMMAND (refit's command table) is true, and at least one flag that
 * only Watchtower has (--interval, -c, --run-once...)? `refit watchtower ...`
 * always is one.
 */
bool watchtower_invocation(int argc, char **argv, bool (*is_command)(const char *word));

/*
 * Parse ARGV from word FIRST as Watchtower's command line into WT. Unknown
 * flags (neither Watchtower's nor refit's --config, --state-dir) are
 * ERR_USAGE; refit's --config value goes to *CONFIG.
 */
int watchtower_parse(struct watchtower *wt, int argc, char **argv, int first, const char **config,
		     struct refit_err *e);

/*
 * Apply the WATCHTOWER_* variables (and Watchtower's DOCKER_* ones) of ENVP
 * to CFG. A WATCHTOWER_ variable that Watchtower does not have is one
 * warning (cfg->warnings); so is one that refit cannot honour.
 */
int watchtower_apply_env(struct refit_config *cfg, char *const *envp, struct refit_err *e);

/* Apply the flags WT holds to CFG (after the variables: flags win, as in Watchtower). */
int watchtower_apply_flags(struct refit_config *cfg, const struct watchtower *wt, struct refit_err *e);

/*
 * Make the legacy notification settings (--notifications email|slack|
 * msteams|gotify and their variables) into shoutrrr URLs as Watchtower
 * does, in CFG's notifications (those of an earlier call replaced), and
 * Watchtower's title from --notification-title-tag / -hostname. ERR_USAGE
 * when a service lacks what its URL needs.
 */
int watchtower_notify_finish(struct refit_config *cfg, struct refit_err *e);

/* Watchtower's defaults where they differ from refit's: every container, every scope, no hooks. */
void watchtower_defaults(struct refit_config *cfg);

/* Was WATCHTOWER_RUN_ONCE set in ENVP? (A Watchtower invocation then runs one pass.) */
bool watchtower_env_run_once(char *const *envp);

/* Print the table: every flag, its variable and what refit does with it. */
void watchtower_print_help(FILE *f);

/* The number of settings in the table, and the long name and short letter of setting I (tests). */
size_t watchtower_settings(void);
const char *watchtower_setting_flag(size_t i, char *short_flag, bool *takes_value);

#endif
