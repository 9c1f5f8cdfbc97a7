/* Configuration: built-in defaults, YAML file, REFIT_* and WATCHTOWER_* variables, flags. */
#ifndef REFIT_CONFIG_H
#define REFIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "refit/error.h"

#define CONFIG_DEFAULT_PATH "/etc/refit/refit.yml"
#define CONFIG_MAX_FILE (1u << 20)
#define CONFIG_MAX_STRING 4096
#define CONFIG_MAX_LIST 256

struct strv {
	char **v;
	size_t n;
};

/* Credentials for one registry host, from the config's registry_auth map. */
struct registry_cred {
	char *registry; /* "ghcr.io", "127.0.0.1:5000" */
	char *username;
	char *password;
};

struct refit_config {
	char *docker_host;
	long poll_interval; /* seconds */
	char *schedule;
	bool label_enable;
	char *scope;
	char *strategy;
	long health_timeout; /* seconds */
	long min_uptime;     /* seconds */
	long stop_timeout;   /* seconds */
	bool cleanup;
	long keep_previous;
	bool include_stopped;
	bool revive_stopped;
	bool monitor_only;
	bool no_pull;
	bool update_on_start;
	struct strv insecure_registries;
	char *registry_ca_file;
	long registry_timeout; /* seconds, one registry request */
	long concurrency;
	long registry_page_size; /* tags asked for per tags/list page */
	char *state_dir;
	char *api_listen;
	char *api_token;
	char *api_token_file;
	struct strv notifications;
	char *log_format;
	char *log_level;
	char *swarm;
	char *models_endpoint;
	struct strv models_names;
	long models_interval;
	long models_timeout; /* seconds without data before a model transfer is abandoned */
	long backup_max_bytes; /* a migration's volume backup, all its tars together */
	long backup_retention; /* backups kept per container */
	struct registry_cred *creds;
	size_t ncreds;
};

/* Fill CFG with the built-in defaults. */
int config_init(struct refit_config *cfg, struct refit_err *e);

void config_free(struct refit_config *cfg);

/*
 * Apply a YAML document held in BUF (LEN bytes); NAME is used in messages
 * ("NAME:LINE: KEY: ..."). Unknown keys, wrong types and out-of-range values
 * are ERR_USAGE. On failure CFG may hold some of the file's values: callers
 * discard it.
 */
int config_load_buffer(struct refit_config *cfg, const char *buf, size_t len,
		       const char *name, struct refit_err *e);

/* Read and apply PATH (at most CONFIG_MAX_FILE bytes). */
int config_load_file(struct refit_config *cfg, const char *path, struct refit_err *e);

/*
 * Apply WATCHTOWER_* equivalents, then REFIT_* variables (refit's win), from
 * ENVP (NULL-terminated "NAME=value" strings).
 */
int config_load_env(struct refit_config *cfg, char *const *envp, struct refit_err *e);

/* Set KEY ("scope", "api.listen") from a string; ORIGIN names it in errors ("--scope"). */
int config_set(struct refit_config *cfg, const char *key, const char *value,
	       const char *origin, struct refit_err *e);

/*
 * Defaults, then FILE (or CONFIG_DEFAULT_PATH when it exists and FILE is
 * NULL), then ENVP. Flags are applied by the caller with config_set().
 */
int config_load(struct refit_config *cfg, const char *file, char *const *envp, struct refit_err *e);

/* Registry credentials configured for HOST, or NULL. */
const struct registry_cred *config_cred(const struct refit_config *cfg, const char *host);

#endif
