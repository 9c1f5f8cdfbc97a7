/* Selection of managed containers from their labels and the config. */
#include <stdio.h>
#include <string.h>

#include "refit/select.h"
#include "refit/strategy.h"

#define REFIT_PREFIX "refit."
#define WATCHTOWER_PREFIX "com.centurylinklabs.watchtower."

/* Value of one label key, bounded. */
static const char *label_raw(json_t *labels, const char *prefix, const char *suffix)
{
	char key[128];
	const char *v;

	snprintf(key, sizeof(key), "%s%s", prefix, suffix);
	v = json_string_value(json_object_get(labels, key));
	return v && strlen(v) <= LABEL_MAX_VALUE ? v : NULL;
}

const char *label_get(json_t *labels, const char *suffix)
{
	const char *v = label_raw(labels, REFIT_PREFIX, suffix);

	return v ? v : label_raw(labels, WATCHTOWER_PREFIX, suffix);
}

int label_bool(json_t *labels, const char *suffix)
{
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True", NULL };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False", NULL };
	const char *v = label_get(labels, suffix);

	for (int i = 0; v && yes[i]; i++) {
		if (strcmp(v, yes[i]) == 0)
			return 1;
		if (strcmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

/* The container's scope, "" when unscoped. */
static const char *label_scope(json_t *labels)
{
	const char *s = label_get(labels, "scope");

	return !s || strcmp(s, "none") == 0 ? "" : s;
}

bool select_in_scope(const struct refit_config *cfg, json_t *labels)
{
	if (cfg->scope && strcmp(cfg->scope, "*") == 0)
		return true; /* every scope (Watchtower without --scope) */
	const char *want = cfg->scope && strcmp(cfg->scope, "none") != 0 ? cfg->scope : "";

	return strcmp(label_scope(labels), want) == 0;
}

bool select_container(const struct refit_config *cfg, json_t *labels, const char *name, bool running,
		      char *const *names, size_t nnames)
{
	int enable = label_bool(labels, "enable");

	if (cfg->label_enable ? enable != 1 : enable == 0)
		return false;
	if (!select_in_scope(cfg, labels))
		return false;
	if (!running && !cfg->include_stopped)
		return false;
	for (size_t i = 0; i < cfg->disable_containers.n; i++)
		if (strcmp(cfg->disable_containers.v[i], name) == 0)
			return false;
	if (nnames == 0)
		return true;
	for (size_t i = 0; i < nnames; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

bool select_monitor_only(const struct refit_config *cfg, json_t *labels)
{
	int v = label_bool(labels, "monitor-only");

	return v == 1 || (v == -1 && cfg->monitor_only);
}

bool select_no_pull(const struct refit_config *cfg, json_t *labels)
{
	int v = label_bool(labels, "no-pull");

	return v == 1 || (v == -1 && cfg->no_pull);
}

const char *select_strategy(const struct refit_config *cfg, json_t *labels)
{
	const char *v = label_raw(labels, REFIT_PREFIX, "strategy");

	return v ? strategy_known(v) : cfg->strategy;
}

int select_cooldown(const struct refit_config *cfg, json_t *labels, long *ret, struct refit_err *e)
{
	const char *v = label_raw(labels, REFIT_PREFIX, "cooldown");
	const char *name = "refit.cooldown";

	if (!v) {
		v = label_raw(labels, WATCHTOWER_PREFIX, "cooldown-delay");
		name = "com.centurylinklabs.watchtower.cooldown-delay";
	}
	*ret = cfg->cooldown;
	if (!v)
		return 0;
	if (config_parse_seconds(v, SELECT_COOLDOWN_MAX, ret) < 0) {
		*ret = cfg->cooldown;
		return err_set(e, ERR_FAILED, "label %s: expected a duration of at most 366 days (\"90\", \"12h\", \"7d\"), got \"%.40s\"",
			       name, v);
	}
	return 0;
}
