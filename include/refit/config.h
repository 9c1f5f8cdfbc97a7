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
	long api_session_ttl; /* seconds a dashboard login lasts */
	char *fleet_hosts;    /* the dashboard's fleet page: a hosts file as refit fleet reads it */
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
	struct strv disable_containers; /* names never managed (Watchtower's --disable-containers) */
	bool include_restarting;        /* a restarting container is managed as a running one */
	bool lifecycle_hooks;           /* run the hooks of containers' labels (Watchtower: off by default) */
	/* Watchtower's HTTP API settings: its variables and flags only, no YAML key. */
	struct {
		bool update;         /* --http-api-update: passes only when asked, unless periodic_polls */
		bool metrics;        /* --http-api-metrics */
		bool periodic_polls; /* --http-api-periodic-polls */
		char *token;         /* --http-api-token: used when api.token is not set; any length */
		char *listen;        /* the fork's --http-api-host/--http-api-port, "HOST:PORT" */
	} wt_api;
	/* Watchtower's legacy notification settings (--notifications email...): variables and flags only. */
	char *wt_notify[24];         /* by watchtower.c's index; NULL: not given */
	struct strv wt_notify_urls;  /* the URLs built from them, also in notifications */
	char *notify_title;          /* Watchtower's "[TAG] Watchtower updates on HOST" for URLs without a title */
	bool api_listen_set;   /* api.listen was given (file, variable or flag) */
	bool scheduled_passes; /* false: no pass on poll_interval or schedule (config_finish) */
	struct strv warnings;  /* settings accepted but honoured differently: said once after loading */
	long cooldown;         /* seconds a digest waits after refit first saw it; 0: none */
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

/*
 * Settle what depends on several sources, after the last of them: with
 * Watchtower's HTTP API asked for and no api.listen, the API listens where
 * Watchtower's does (0.0.0.0:8080); its API-update mode without periodic
 * polls has no scheduled passes.
 */
int config_finish(struct refit_config *cfg, struct refit_err *e);

/*
 * As config_load, for a Watchtower invocation: Watchtower's defaults
 * (watchtower_defaults) come first, under the file and the variables.
 */
int config_load_watchtower(struct refit_config *cfg, const char *file, char *const *envp, struct refit_err *e);

/* Add a warning to CFG (said once: a repeated one is dropped). */
/* Add URL to CFG's notifications after checking it (errors name ORIGIN); drop one that is there. */
int config_add_notification(struct refit_config *cfg, const char *url, const char *origin, struct refit_err *e);
void config_drop_notification(struct refit_config *cfg, const char *url);

/* Append a copy of V to S (bounded); -1 when full or out of memory. */
int config_remember(struct strv *s, const char *v);

void config_warn(struct refit_config *cfg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A duration as configuration keys and labels take it: "90" (seconds), or
 * units in order of size ("2d", "1h30m", "45s"), at most MAX seconds.
 */
int config_parse_seconds(const char *v, long max, long *ret);

/* A boolean as YAML and Go write it: true/yes/on/1/t, false/no/off/0/f (any case); -1 otherwise. */
int config_parse_bool(const char *v, bool *ret);

/* Registry credentials configured for HOST, or NULL. */
const struct registry_cred *config_cred(const struct refit_config *cfg, const char *host);

#endif
