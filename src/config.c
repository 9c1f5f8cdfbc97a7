/* Configuration: a table of keys, each settable from YAML, the environment and flags. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "refit/base.h"
#include "refit/config.h"
#include "refit/cron.h"
#include "refit/fsutil.h"
#include "refit/log.h"
#include "refit/notify.h"
#include "refit/ollama.h"
#include "refit/strategy.h"
#include "refit/tags.h"
#include "refit/watchtower.h"
#include "refit/yamlfile.h"

enum key_type { K_STR, K_BOOL, K_SECONDS, K_INT, K_LIST, K_ENUM };

struct key {
	const char *name;
	enum key_type type;
	size_t off;
	long min, max;
	const char *const *choices; /* K_ENUM */
	int (*check)(const char *value, const char **why);
};

static const char *const log_formats[] = { "text", "json", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const swarm_modes[] = { "auto", "true", "false", NULL };

#define YEAR (366L * 24 * 3600)
#define OFF(f) offsetof(struct refit_config, f)

static int check_strategy(const char *v, const char **why);
static int check_docker_host(const char *v, const char **why);
static int check_listen(const char *v, const char **why);
static int check_scope(const char *v, const char **why);
static int check_schedule(const char *v, const char **why);
static int check_path(const char *v, const char **why);
static int check_notification(const char *v, const char **why);
static int check_model(const char *v, const char **why);
static int check_endpoint(const char *v, const char **why);
static int check_container_name(const char *v, const char **why);

static const struct key keys[] = {
	{ "docker_host", K_STR, OFF(docker_host), 0, 0, NULL, check_docker_host },
	{ "poll_interval", K_SECONDS, OFF(poll_interval), 1, YEAR, NULL, NULL },
	{ "schedule", K_STR, OFF(schedule), 0, 0, NULL, check_schedule },
	{ "label_enable", K_BOOL, OFF(label_enable), 0, 0, NULL, NULL },
	{ "scope", K_STR, OFF(scope), 0, 0, NULL, check_scope },
	{ "strategy", K_STR, OFF(strategy), 0, 0, NULL, check_strategy },
	{ "health_timeout", K_SECONDS, OFF(health_timeout), 1, 3600, NULL, NULL },
	{ "min_uptime", K_SECONDS, OFF(min_uptime), 0, 3600, NULL, NULL },
	{ "stop_timeout", K_SECONDS, OFF(stop_timeout), 0, 3600, NULL, NULL },
	{ "cleanup", K_BOOL, OFF(cleanup), 0, 0, NULL, NULL },
	{ "keep_previous", K_INT, OFF(keep_previous), 0, 100, NULL, NULL },
	{ "include_stopped", K_BOOL, OFF(include_stopped), 0, 0, NULL, NULL },
	{ "revive_stopped", K_BOOL, OFF(revive_stopped), 0, 0, NULL, NULL },
	{ "monitor_only", K_BOOL, OFF(monitor_only), 0, 0, NULL, NULL },
	{ "no_pull", K_BOOL, OFF(no_pull), 0, 0, NULL, NULL },
	{ "update_on_start", K_BOOL, OFF(update_on_start), 0, 0, NULL, NULL },
	{ "disable_containers", K_LIST, OFF(disable_containers), 0, 0, NULL, check_container_name },
	{ "include_restarting", K_BOOL, OFF(include_restarting), 0, 0, NULL, NULL },
	{ "lifecycle_hooks", K_BOOL, OFF(lifecycle_hooks), 0, 0, NULL, NULL },
	{ "insecure_registries", K_LIST, OFF(insecure_registries), 0, 0, NULL, NULL },
	{ "registry_ca_file", K_STR, OFF(registry_ca_file), 0, 0, NULL, check_path },
	{ "registry_timeout", K_SECONDS, OFF(registry_timeout), 1, 600, NULL, NULL },
	{ "concurrency", K_INT, OFF(concurrency), 1, 64, NULL, NULL },
	{ "registry_page_size", K_INT, OFF(registry_page_size), 1, 1000, NULL, NULL },
	{ "state_dir", K_STR, OFF(state_dir), 0, 0, NULL, check_path },
	{ "api.listen", K_STR, OFF(api_listen), 0, 0, NULL, check_listen },
	{ "api.token", K_STR, OFF(api_token), 0, 0, NULL, NULL },
	{ "api.token_file", K_STR, OFF(api_token_file), 0, 0, NULL, check_path },
	{ "api.session_ttl", K_SECONDS, OFF(api_session_ttl), 1, 30 * 86400, NULL, NULL },
	{ "fleet.hosts", K_STR, OFF(fleet_hosts), 0, 0, NULL, check_path },
	{ "notifications", K_LIST, OFF(notifications), 0, 0, NULL, check_notification },
	{ "log_format", K_ENUM, OFF(log_format), 0, 0, log_formats, NULL },
	{ "log_level", K_ENUM, OFF(log_level), 0, 0, log_levels, NULL },
	{ "swarm", K_ENUM, OFF(swarm), 0, 0, swarm_modes, NULL },
	{ "models.endpoint", K_STR, OFF(models_endpoint), 0, 0, NULL, check_endpoint },
	{ "models.names", K_LIST, OFF(models_names), 0, 0, NULL, check_model },
	{ "models.interval", K_SECONDS, OFF(models_interval), 60, YEAR, NULL, NULL },
	{ "models.timeout", K_SECONDS, OFF(models_timeout), 1, 3600, NULL, NULL },
	{ "backup_max_bytes", K_INT, OFF(backup_max_bytes), 1024, 1L << 40, NULL, NULL },
	{ "backup_retention", K_INT, OFF(backup_retention), 1, 100, NULL, NULL },
	{ "cooldown", K_SECONDS, OFF(cooldown), 0, YEAR, NULL, NULL },
};

/* Sections whose keys are written nested in YAML ("api: {listen: ...}"). */
static const char *const sections[] = { "api", "fleet", "models", NULL };

/* Variables of other tools that set a key (Watchtower's are src/watchtower.c's). */
static const struct {
	const char *var;
	const char *key;
} other_env[] = {
	{ "OLLAMA_MODELS", "models.names" },
	{ "UPDATE_INTERVAL", "models.interval" },
};

/* Check a docker_host value's scheme. */
static int check_docker_host(const char *v, const char **why)
{
	if (strncmp(v, "unix:///", 8) == 0 || strncmp(v, "tcp://", 6) == 0)
		return 0;
	*why = "expected unix:///path or tcp://host:port";
	return -1;
}

/* Check "host:port" or "[v6]:port" with a port in range. */
static int check_listen(const char *v, const char **why)
{
	const char *colon = strrchr(v, ':');
	char *end;
	long port;

	*why = "expected HOST:PORT, e.g. 127.0.0.1:8010";
	if (!colon || colon == v)
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 1 || port > 65535)
		return -1;
	return 0;
}

/* A strategy from the strategy table. */
static int check_strategy(const char *v, const char **why)
{
	static _Thread_local char msg[160];
	char names[128];

	if (strategy_known(v))
		return 0;
	strategy_names(names, sizeof(names));
	snprintf(msg, sizeof(msg), "expected one of %s", names);
	*why = msg;
	return -1;
}

/* Scopes are short words: letters, digits, '.', '_', '-'; "*" is every scope. */
static int check_scope(const char *v, const char **why)
{
	size_t n = strlen(v);

	*why = "expected 1 to 128 letters, digits, '.', '_' or '-' (or \"*\" for every scope)";
	if (strcmp(v, "*") == 0)
		return 0;
	if (n == 0 || n > 128)
		return -1;
	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			return -1;
	return 0;
}

/* A cron expression: 5 fields, or 6 with seconds first, or an @ form. */
static int check_schedule(const char *v, const char **why)
{
	struct cron c;

	*why = "expected a cron expression of 5 fields (or 6 with seconds first), or @daily etc.";
	return cron_parse(v, &c, NULL);
}

/* Paths are absolute or relative file names without control characters. */
static int check_path(const char *v, const char **why)
{
	*why = "expected a file or directory path";
	if (!*v)
		return -1;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20)
			return -1;
	return 0;
}

/* A container name, by the engine's rule. */
static int check_container_name(const char *v, const char **why)
{
	*why = "expected a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)";
	return container_name_valid(v) ? 0 : -1;
}

/* Mark with '\n' each comma of T that is followed by SCHEME:// (another URL). */
static void split_urls(char *t)
{
	for (char *p = strchr(t, ','); p; p = strchr(p + 1, ',')) {
		size_t n = strspn(p + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");

		if (n && strncmp(p + 1 + n, "://", 3) == 0)
			*p = '\n';
	}
}

static int strv_push(struct strv *s, const char *v);

/* Push each '\n'-separated piece of T onto S. */
static int strv_push_split(struct strv *s, char *t)
{
	char *save = NULL;

	for (char *p = strtok_r(t, "\n", &save); p; p = strtok_r(NULL, "\n", &save))
		if (strv_push(s, p) < 0)
			return -1;
	return 0;
}

/* A notification URL refit can send to (see notify_url_parse). */
static int check_notification(const char *v, const char **why)
{
	struct notify_target t;
	int rc = notify_url_parse(v, &t, why);

	if (rc == 0 && t.unknown[0]) /* one line at load; the names only, never a value */
		log_warn("notifications: %s: parameters refit does not use, ignored: %s", t.name, t.unknown);
	notify_target_clear(&t);
	return rc;
}

/* An Ollama model name (see ollama_name_valid). */
static int check_model(const char *v, const char **why)
{
	return ollama_name_valid(v, why);
}

/* The Ollama endpoint: http(s)://HOST[:PORT][/PATH], no query, fragment, spaces or control characters. */
static int check_endpoint(const char *v, const char **why)
{
	const char *host = strncmp(v, "http://", 7) == 0 ? v + 7 : strncmp(v, "https://", 8) == 0 ? v + 8 : NULL;

	*why = "expected http://HOST:PORT or https://HOST:PORT[/PATH], e.g. http://127.0.0.1:11434";
	if (!host || !*host || *host == '/' || strlen(v) > 2048)
		return -1;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("?#\\\"", *p))
			return -1;
	return 0;
}

/*
 * Run K's check on item IDX (from 0) of a list. The message names the item
 * by position and never quotes it: notification URLs carry tokens.
 */
static int list_item_check(const struct key *k, const char *v, size_t idx, const char *where, struct refit_err *e)
{
	const char *why = "invalid value";

	if (!k->check || k->check(v, &why) == 0)
		return 0;
	return err_set(e, ERR_USAGE, "%s: item %zu: %s", where, idx + 1, why);
}

int config_parse_bool(const char *v, bool *ret)
{
	/* YAML's words and Go's ParseBool's (Watchtower's flags and variables) */
	static const char *const yes[] = { "true", "yes", "on", "1", "t", NULL };
	static const char *const no[] = { "false", "no", "off", "0", "f", NULL };

	for (int i = 0; yes[i]; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -1;
}

/* Parse "90", "90s", "5m", "1h30m", "2d" into seconds, bounded by MAX. */
int config_parse_seconds(const char *v, long max, long *ret)
{
	long total = 0;
	const char *p = v;

	if (!*p)
		return -1;
	while (*p) {
		char *end;
		long n, unit = 1;

		if (!isdigit((unsigned char)*p))
			return -1;
		errno = 0;
		n = strtol(p, &end, 10);
		if (errno || n > max)
			return -1;
		p = end;
		if (*p == 'd') {
			unit = 24 * 3600;
			p++;
		} else if (*p == 'h') {
			unit = 3600;
			p++;
		} else if (*p == 'm') {
			unit = 60;
			p++;
		} else if (*p == 's') {
			p++;
		} else if (*p) {
			return -1;
		} else if (p != end || total) {
			return -1; /* a bare number only on its own */
		}
		if (n > (max - total) / unit)
			return -1;
		total += n * unit;
	}
	*ret = total;
	return 0;
}

/* Parse a decimal integer with nothing after it. */
static int parse_long(const char *v, long *ret)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end)
		return -1;
	*ret = n;
	return 0;
}

static void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* Append a copy of V; bounded by CONFIG_MAX_LIST. */
static int strv_push(struct strv *s, const char *v)
{
	char **nv;

	if (s->n >= CONFIG_MAX_LIST)
		return -1;
	nv = realloc(s->v, (s->n + 1) * sizeof(*nv));
	if (!nv)
		return -1;
	s->v = nv;
	s->v[s->n] = strdup(v);
	if (!s->v[s->n])
		return -1;
	s->n++;
	return 0;
}

static const struct key *key_find(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* Replace the string at *SLOT with a copy of V. */
static int set_string(char **slot, const char *v)
{
	char *c = strdup(v);

	if (!c)
		return -1;
	free(*slot);
	*slot = c;
	return 0;
}

/* Set one scalar value of key K; WHERE prefixes errors ("file:3: poll_interval"). */
static int key_set(struct refit_config *cfg, const struct key *k, const char *v,
		   const char *where, struct refit_err *e)
{
	void *slot = (char *)cfg + k->off;
	const char *why = NULL;
	long n;
	bool b;

	if (strlen(v) > CONFIG_MAX_STRING)
		return err_set(e, ERR_USAGE, "%s: value longer than %d bytes", where, CONFIG_MAX_STRING);
	if (k->off == OFF(api_listen))
		cfg->api_listen_set = true;
	switch (k->type) {
	case K_BOOL:
		if (config_parse_bool(v, &b) < 0)
			return err_set(e, ERR_USAGE, "%s: expected true or false, got \"%.64s\"", where, v);
		*(bool *)slot = b;
		return 0;
	case K_SECONDS:
		if (config_parse_seconds(v, k->max, &n) < 0 || n < k->min)
			return err_set(e, ERR_USAGE,
				       "%s: expected a duration of %ld to %ld seconds (\"90\", \"5m\", \"1h30m\", \"2d\"), got \"%.64s\"",
				       where, k->min, k->max, v);
		*(long *)slot = n;
		return 0;
	case K_INT:
		if (parse_long(v, &n) < 0)
			return err_set(e, ERR_USAGE, "%s: expected an integer, got \"%.64s\"", where, v);
		if (n < k->min || n > k->max)
			return err_set(e, ERR_USAGE, "%s: %ld is out of range %ld..%ld", where, n, k->min, k->max);
		*(long *)slot = n;
		return 0;
	case K_ENUM:
		for (int i = 0; k->choices[i]; i++)
			if (strcmp(v, k->choices[i]) == 0)
				return set_string(slot, v) < 0 ? err_set(e, ERR_FAILED, "out of memory") : 0;
		{
			char list[256] = "";

			for (int i = 0; k->choices[i]; i++) {
				strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
				strncat(list, k->choices[i], sizeof(list) - strlen(list) - 1);
			}
			return err_set(e, ERR_USAGE, "%s: expected one of %s, got \"%.64s\"", where, list, v);
		}
	case K_STR:
		if (k->check && k->check(v, &why) < 0)
			return err_set(e, ERR_USAGE, "%s: %s, got \"%.64s\"", where, why, v);
		return set_string(slot, v) < 0 ? err_set(e, ERR_FAILED, "out of memory") : 0;
	case K_LIST: {
		/* From a string: items separated by commas or whitespace. */
		struct strv *s = slot, nv = { 0 };
		char *copy = strdup(v), *save = NULL;

		if (!copy)
			return err_set(e, ERR_FAILED, "out of memory");
		for (char *t = strtok_r(copy, k->check == check_notification ? " \t\n" : ", \t\n", &save); t;
		     t = strtok_r(NULL, k->check == check_notification ? " \t\n" : ", \t\n", &save)) {
			if (k->check == check_notification)
				split_urls(t); /* "URL,URL": a comma only ends a URL before SCHEME:// (queries hold commas) */
			if (strv_push_split(&nv, t) < 0) {
				free(copy);
				strv_free(&nv);
				return err_set(e, ERR_USAGE, "%s: more than %d items", where, CONFIG_MAX_LIST);
			}
		}
		free(copy);
		for (size_t i = 0; i < nv.n; i++) {
			if (list_item_check(k, nv.v[i], i, where, e) < 0) {
				strv_free(&nv);
				return -1;
			}
		}
		strv_free(s);
		*s = nv;
		return 0;
	}
	}
	return err_set(e, ERR_FAILED, "%s: unhandled key type", where);
}

int config_init(struct refit_config *cfg, struct refit_err *e)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->poll_interval = 86400;
	cfg->label_enable = true;
	cfg->health_timeout = 60;
	cfg->min_uptime = 5;
	cfg->stop_timeout = 10;
	cfg->keep_previous = 1;
	cfg->concurrency = 8;
	cfg->registry_timeout = 30;
	cfg->registry_page_size = TAGS_DEFAULT_PAGE;
	cfg->models_interval = 86400;
	cfg->models_timeout = 300;
	cfg->backup_max_bytes = 1L << 30;
	cfg->backup_retention = 3;
	cfg->lifecycle_hooks = true;
	cfg->scheduled_passes = true;
	cfg->api_session_ttl = 43200;
	if (set_string(&cfg->docker_host, "unix:///var/run/docker.sock") < 0 ||
	    set_string(&cfg->strategy, "recreate") < 0 ||
	    set_string(&cfg->state_dir, "/var/lib/refit") < 0 ||
	    set_string(&cfg->api_listen, "127.0.0.1:8010") < 0 ||
	    set_string(&cfg->log_format, "text") < 0 || set_string(&cfg->log_level, "info") < 0 ||
	    set_string(&cfg->swarm, "auto") < 0 ||
	    set_string(&cfg->models_endpoint, "http://127.0.0.1:11434") < 0) {
		config_free(cfg);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	return 0;
}

void config_free(struct refit_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		void *slot = (char *)cfg + keys[i].off;

		if (keys[i].type == K_STR || keys[i].type == K_ENUM) {
			free(*(char **)slot);
			*(char **)slot = NULL;
		} else if (keys[i].type == K_LIST) {
			strv_free(slot);
		}
	}
	for (size_t i = 0; i < cfg->ncreds; i++) {
		free(cfg->creds[i].registry);
		free(cfg->creds[i].username);
		free(cfg->creds[i].password);
	}
	free(cfg->creds);
	cfg->creds = NULL;
	cfg->ncreds = 0;
	free(cfg->wt_api.token);
	free(cfg->wt_api.listen);
	cfg->wt_api.token = cfg->wt_api.listen = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(cfg->wt_notify); i++) {
		if (cfg->wt_notify[i])
			explicit_bzero(cfg->wt_notify[i], strlen(cfg->wt_notify[i])); /* passwords, hook URLs */
		free(cfg->wt_notify[i]);
		cfg->wt_notify[i] = NULL;
	}
	strv_free(&cfg->wt_notify_urls);
	free(cfg->notify_title);
	cfg->notify_title = NULL;
	strv_free(&cfg->warnings);
}

/* State of one YAML load, for messages. */
struct yload {
	struct refit_config *cfg;
	yaml_document_t *doc;
	const char *name;
	struct refit_err *e;
};

static const char *node_scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* True when the scalar is YAML's null ("", "~", "null") written plain. */
static bool node_is_null(yaml_node_t *n)
{
	const char *s = node_scalar(n);

	return s && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0);
}

/* Read a file from the config's registry_auth password_file. */
static int read_secret_file(const char *path, char **ret)
{
	char buf[4097];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0 || (size_t)n >= sizeof(buf) - 1)
		return -1;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	*ret = strdup(buf);
	return *ret ? 0 : -1;
}

/* registry_auth: {HOST: {username, password | password_file}}. */
static int load_registry_auth(struct yload *y, yaml_node_t *map)
{
	struct refit_err *e = y->e;

	if (map->type != YAML_MAPPING_NODE)
		return err_set(e, ERR_USAGE, "%s:%lu: registry_auth: expected a mapping of registry hosts",
			       y->name, yfile_line(map));
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(y->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(y->doc, p->value);
		const char *host = node_scalar(kn);
		struct registry_cred c = { 0 }, *nc;

		if (!host || !*host || strlen(host) > 255 || !vn || vn->type != YAML_MAPPING_NODE)
			return err_set(e, ERR_USAGE, "%s:%lu: registry_auth: expected HOST: {username, password}",
				       y->name, yfile_line(kn));
		if (y->cfg->ncreds >= CONFIG_MAX_LIST)
			return err_set(e, ERR_USAGE, "%s:%lu: registry_auth: too many registries",
				       y->name, yfile_line(kn));
		c.registry = strdup(host);
		for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top; q++) {
			yaml_node_t *fk = yaml_document_get_node(y->doc, q->key);
			yaml_node_t *fv = yaml_document_get_node(y->doc, q->value);
			const char *f = node_scalar(fk), *v = node_scalar(fv);
			char **slot = NULL;
			int rc = 0;

			if (f && strcmp(f, "username") == 0)
				slot = &c.username;
			else if (f && (strcmp(f, "password") == 0 || strcmp(f, "password_file") == 0))
				slot = &c.password;
			if (!slot || !v || strlen(v) > CONFIG_MAX_STRING) {
				rc = err_set(e, ERR_USAGE, "%s:%lu: registry_auth.%s.%s: %s", y->name,
					     yfile_line(fk), host, f ? f : "?",
					     slot ? "expected a string" :
						    "unknown key (username, password, password_file)");
			} else if (strcmp(f, "password_file") == 0) {
				free(*slot);
				*slot = NULL;
				if (read_secret_file(v, slot) < 0)
					rc = err_set(e, ERR_USAGE, "%s:%lu: registry_auth.%s.password_file: cannot read %s",
						     y->name, yfile_line(fv), host, v);
			} else {
				free(*slot);
				*slot = strdup(v);
			}
			if (rc < 0) {
				free(c.registry);
				free(c.username);
				free(c.password);
				return -1;
			}
		}
		if (!c.username || !c.password) {
			free(c.registry);
			free(c.username);
			free(c.password);
			return err_set(e, ERR_USAGE, "%s:%lu: registry_auth.%s: needs username and password",
				       y->name, yfile_line(kn), host);
		}
		nc = realloc(y->cfg->creds, (y->cfg->ncreds + 1) * sizeof(*nc));
		if (!nc) {
			free(c.registry);
			free(c.username);
			free(c.password);
			return err_set(e, ERR_FAILED, "out of memory");
		}
		y->cfg->creds = nc;
		nc[y->cfg->ncreds++] = c;
	}
	return 0;
}

/* Apply one KEY: VALUE pair of the document, NAME already joined with its section. */
static int load_pair(struct yload *y, const char *name, yaml_node_t *kn, yaml_node_t *vn)
{
	const struct key *k = key_find(name);
	char where[512];

	snprintf(where, sizeof(where), "%s:%lu: %s", y->name, yfile_line(kn), name);
	if (!k)
		return err_set(y->e, ERR_USAGE, "%s: unknown key", where);
	if (node_is_null(vn))
		return err_set(y->e, ERR_USAGE, "%s: missing value", where);
	if (k->type == K_LIST && vn->type == YAML_SEQUENCE_NODE) {
		struct strv *s = (void *)((char *)y->cfg + k->off), nv = { 0 };

		for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top; it++) {
			yaml_node_t *in = yaml_document_get_node(y->doc, *it);
			const char *v = node_scalar(in);
			char at[512];

			if (!v || strlen(v) > CONFIG_MAX_STRING || strv_push(&nv, v) < 0) {
				strv_free(&nv);
				return err_set(y->e, ERR_USAGE, "%s: expected a list of at most %d strings",
					       where, CONFIG_MAX_LIST);
			}
			snprintf(at, sizeof(at), "%s:%lu: %s", y->name, yfile_line(in), name); /* the item's line */
			if (list_item_check(k, v, nv.n - 1, at, y->e) < 0) {
				strv_free(&nv);
				return -1;
			}
		}
		strv_free(s);
		*s = nv;
		return 0;
	}
	if (vn->type != YAML_SCALAR_NODE)
		return err_set(y->e, ERR_USAGE, "%s: expected %s, got a %s", where,
			       k->type == K_LIST ? "a list" : "a single value",
			       vn->type == YAML_MAPPING_NODE ? "mapping" : "list");
	return key_set(y->cfg, k, node_scalar(vn), where, y->e);
}

/* Walk the top-level mapping (and the nested sections). */
static int load_mapping(struct yload *y, yaml_node_t *map, const char *section)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(y->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(y->doc, p->value);
		const char *k = node_scalar(kn);
		char name[160];
		bool is_section = false;

		if (!k || !vn || strlen(k) > 64)
			return err_set(y->e, ERR_USAGE, "%s:%lu: keys must be short strings", y->name,
				       yfile_line(kn));
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			const char *prev = node_scalar(yaml_document_get_node(y->doc, q->key));

			if (prev && strcmp(prev, k) == 0)
				return err_set(y->e, ERR_USAGE, "%s:%lu: %s%s%s: key given twice", y->name,
					       yfile_line(kn), section ? section : "", section ? "." : "", k);
		}
		snprintf(name, sizeof(name), "%s%s%s", section ? section : "", section ? "." : "", k);
		if (!section && strcmp(k, "registry_auth") == 0) {
			if (load_registry_auth(y, vn) < 0)
				return -1;
			continue;
		}
		for (int i = 0; !section && sections[i]; i++)
			is_section |= strcmp(k, sections[i]) == 0;
		if (is_section) {
			if (vn->type != YAML_MAPPING_NODE)
				return err_set(y->e, ERR_USAGE, "%s:%lu: %s: expected a mapping", y->name,
					       yfile_line(kn), k);
			if (load_mapping(y, vn, k) < 0)
				return -1;
			continue;
		}
		if (load_pair(y, name, kn, vn) < 0)
			return -1;
	}
	return 0;
}

int config_load_buffer(struct refit_config *cfg, const char *buf, size_t len, const char *name,
		       struct refit_err *e)
{
	yaml_document_t doc;
	yaml_node_t *root;
	int rc = 0;

	if (yfile_load(buf, len, CONFIG_MAX_FILE, name, &doc, e) < 0)
		return -1;
	root = yaml_document_get_root_node(&doc);
	if (root && !node_is_null(root)) {
		struct yload y = { cfg, &doc, name, e };

		if (root->type != YAML_MAPPING_NODE)
			rc = err_set(e, ERR_USAGE, "%s:%lu: expected a mapping of keys", name, yfile_line(root));
		else
			rc = load_mapping(&y, root, NULL);
	}
	yaml_document_delete(&doc);
	return rc;
}

int config_load_file(struct refit_config *cfg, const char *path, struct refit_err *e)
{
	char *buf;
	size_t got;
	int rc;

	if (fs_read_file(path, CONFIG_MAX_FILE, &buf, &got, e) < 0)
		return -1;
	rc = config_load_buffer(cfg, buf, got, path, e);
	free(buf);
	return rc;
}

int config_load_env(struct refit_config *cfg, char *const *envp, struct refit_err *e)
{
	if (watchtower_apply_env(cfg, envp, e) < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(other_env); i++) {
		const char *v = env_lookup(envp, other_env[i].var);

		if (v && *v && key_set(cfg, key_find(other_env[i].key), v, other_env[i].var, e) < 0)
			return -1;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char var[96] = "REFIT_";
		size_t j = strlen(var);
		const char *v;

		for (const char *p = keys[i].name; *p && j < sizeof(var) - 1; p++)
			var[j++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
		var[j] = '\0';
		v = env_lookup(envp, var);
		if (v && key_set(cfg, &keys[i], v, var, e) < 0)
			return -1;
	}
	return 0;
}

int config_set(struct refit_config *cfg, const char *key, const char *value, const char *origin,
	       struct refit_err *e)
{
	const struct key *k = key_find(key);

	if (!k)
		return err_set(e, ERR_USAGE, "%s: unknown configuration key %s", origin, key);
	return key_set(cfg, k, value, origin, e);
}

/* Defaults (Watchtower's too when WATCHTOWER is set), FILE, then ENVP. */
static int load(struct refit_config *cfg, const char *file, char *const *envp, bool watchtower, struct refit_err *e)
{
	if (config_init(cfg, e) < 0)
		return -1;
	if (watchtower)
		watchtower_defaults(cfg);
	if (!file && access(CONFIG_DEFAULT_PATH, F_OK) == 0)
		file = CONFIG_DEFAULT_PATH;
	if ((file && config_load_file(cfg, file, e) < 0) || config_load_env(cfg, envp, e) < 0 ||
	    config_finish(cfg, e) < 0) {
		config_free(cfg);
		return -1;
	}
	return 0;
}

int config_load(struct refit_config *cfg, const char *file, char *const *envp, struct refit_err *e)
{
	return load(cfg, file, envp, false, e);
}

int config_load_watchtower(struct refit_config *cfg, const char *file, char *const *envp, struct refit_err *e)
{
	return load(cfg, file, envp, true, e);
}

int config_finish(struct refit_config *cfg, struct refit_err *e)
{
	bool wt_api = cfg->wt_api.update || cfg->wt_api.metrics;

	if (watchtower_notify_finish(cfg, e) < 0)
		return -1;
	cfg->scheduled_passes = !cfg->wt_api.update || cfg->wt_api.periodic_polls;
	if (cfg->wt_api.token && strlen(cfg->wt_api.token) < 16 && !cfg->api_token && !cfg->api_token_file)
		config_warn(cfg, "the Watchtower API token is shorter than 16 characters: anyone who can reach "
				 "the API may guess it (refit's own api.token needs 16)");
	if (!cfg->api_listen_set &&
	    set_string(&cfg->api_listen, wt_api ? (cfg->wt_api.listen ? cfg->wt_api.listen : "0.0.0.0:8080") :
						  "127.0.0.1:8010") < 0)
		return err_set(e, ERR_FAILED, "out of memory");
	return 0;
}

int config_add_notification(struct refit_config *cfg, const char *url, const char *origin, struct refit_err *e)
{
	const char *why = NULL;

	if (check_notification(url, &why) < 0)
		return err_set(e, ERR_USAGE, "%s: %s", origin, why); /* never the URL: it holds secrets */
	if (strv_push(&cfg->notifications, url) < 0)
		return err_set(e, ERR_USAGE, "%s: more than %d notification URLs", origin, CONFIG_MAX_LIST);
	return 0;
}

void config_drop_notification(struct refit_config *cfg, const char *url)
{
	for (size_t i = 0; i < cfg->notifications.n; i++)
		if (strcmp(cfg->notifications.v[i], url) == 0) {
			free(cfg->notifications.v[i]);
			memmove(cfg->notifications.v + i, cfg->notifications.v + i + 1,
				(cfg->notifications.n - i - 1) * sizeof(char *));
			cfg->notifications.n--;
			return;
		}
}

int config_remember(struct strv *s, const char *v)
{
	return strv_push(s, v);
}

void config_warn(struct refit_config *cfg, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < cfg->warnings.n; i++)
		if (strcmp(cfg->warnings.v[i], msg) == 0)
			return;
	(void)strv_push(&cfg->warnings, msg); /* past CONFIG_MAX_LIST, later warnings are dropped */
}

const struct registry_cred *config_cred(const struct refit_config *cfg, const char *host)
{
	for (size_t i = 0; i < cfg->ncreds; i++)
		if (strcasecmp(cfg->creds[i].registry, host) == 0)
			return &cfg->creds[i];
	return NULL;
}
