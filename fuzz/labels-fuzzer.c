/*
 * libFuzzer target: container label values as refit reads them. The input is
 * lines of KEY=VALUE (the Labels of one container); refit's selection,
 * strategy, health gate and dependency readers must judge any of them
 * without crashing, and agree with themselves.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/config.h"
#include "refit/depends.h"
#include "refit/health.h"
#include "refit/select.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT 16384

/* Labels from "k=v\n" lines; a line that is not UTF-8 is dropped, as the engine's JSON would never carry it. */
static json_t *labels_from(const char *text)
{
	json_t *labels = json_object();
	const char *p = text;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		const char *eq = memchr(p, '=', n);

		if (eq && eq > p) {
			char *k = strndup(p, (size_t)(eq - p));
			json_t *v = json_stringn(eq + 1, n - (size_t)(eq - p) - 1);

			if (k && v) { /* set_new takes V even when it fails (a key that is not UTF-8) */
				(void)json_object_set_new(labels, k, v);
				v = NULL;
			}
			json_decref(v);
			free(k);
		}
		p += n + (nl != NULL);
	}
	return labels;
}

static void judge(const struct refit_config *cfg, json_t *labels)
{
	struct health_opts h;
	struct refit_err e = { 0 };
	const char *strategy = select_strategy(cfg, labels);
	const char *scope = label_get(labels, "scope");
	bool mine = select_container(cfg, labels, "fuzzed", true, NULL, 0);

	if (strategy && strcmp(strategy, "recreate") != 0 && strcmp(strategy, "blue-green") != 0 &&
	    strcmp(strategy, "alias") != 0)
		__builtin_trap(); /* only the three strategies ever come out */
	if (scope && strlen(scope) > LABEL_MAX_VALUE)
		__builtin_trap();
	/* a scoped refit never takes a container whose scope label names another scope */
	if (mine && cfg->scope && scope && *scope && strcmp(scope, "none") != 0 && strcmp(scope, cfg->scope) != 0)
		__builtin_trap();
	(void)select_monitor_only(cfg, labels);
	(void)select_no_pull(cfg, labels);
	(void)label_bool(labels, "enable");
	if (health_opts_from(cfg, labels, &h, &e) == 0) {
		if (h.timeout < 1 || h.timeout > 3600 || h.min_uptime < 0 || h.min_uptime > 3600)
			__builtin_trap();
		if (h.mode == HEALTH_HTTP && (h.http_port < 1 || h.http_port > 65535 ||
					      memchr(h.http_path, '\0', sizeof(h.http_path)) == NULL))
			__builtin_trap();
	} else if (!e.msg[0]) {
		__builtin_trap(); /* a refusal always says why */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct refit_config plain, scoped;
	static int ready;
	struct refit_err e = { 0 };
	char *text;
	json_t *labels, *all, *deps, *names, *order;

	if (!ready) {
		if (config_init(&plain, &e) < 0 || config_init(&scoped, &e) < 0 ||
		    config_set(&scoped, "scope", "prod", "fuzz", &e) < 0 ||
		    config_set(&scoped, "label_enable", "false", "fuzz", &e) < 0)
			abort();
		ready = 1;
	}
	if (size > MAX_INPUT)
		return 0;
	text = strndup((const char *)data, size);
	if (!text)
		return 0;
	labels = labels_from(text);
	free(text);
	judge(&plain, labels);
	judge(&scoped, labels);

	/* dependencies: the fuzzed container among three others it may name */
	all = json_pack("{s:{s:s, s:{s:O}, s:{}}, s:{s:s, s:{s:{}}, s:{}}, s:{s:s, s:{s:{}}, s:{}}}",
			"app", "Name", "/app", "Config", "Labels", labels, "HostConfig",
			"db", "Name", "/db", "Config", "Labels", "HostConfig",
			"cache", "Name", "/cache", "Config", "Labels", "HostConfig");
	if (all) {
		deps = depends_of(json_object_get(all, "app"), all);
		if (!json_is_array(deps) || json_array_size(deps) > DEPENDS_MAX)
			__builtin_trap();
		names = json_pack("[sss]", "app", "db", "cache");
		order = depends_order(names, all);
		if (json_array_size(order) != 3) /* every name comes out once, cycles or not */
			__builtin_trap();
		json_decref(order);
		json_decref(names);
		json_decref(deps);
		json_decref(all);
	}
	json_decref(labels);
	return 0;
}
