/* Lifecycle hooks through engine exec, with time limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "refit/hooks.h"
#include "refit/select.h"

#define HOOK_MAX_TIMEOUT 3600L

/* The hook's time limit in seconds from its labels. */
static long hook_timeout(json_t *labels, const char *kind, struct refit_err *e)
{
	char key[96];
	const char *v;
	char *end;
	long n;

	snprintf(key, sizeof(key), "refit.hook.%s-timeout", kind);
	v = json_string_value(json_object_get(labels, key));
	if (v) {
		n = strtol(v, &end, 10);
		if (end != v && *end == 'm' && !end[1] && n <= HOOK_MAX_TIMEOUT / 60)
			n *= 60, end++;
		else if (end != v && *end == 's' && !end[1])
			end++;
		if (end == v || *end || n < 1 || n > HOOK_MAX_TIMEOUT)
			return err_set(e, ERR_FAILED, "label %s: expected 1..%ld seconds, \"30s\" or \"2m\"", key,
				       HOOK_MAX_TIMEOUT);
		return n;
	}
	snprintf(key, sizeof(key), "com.centurylinklabs.watchtower.lifecycle.%s-timeout", kind);
	v = json_string_value(json_object_get(labels, key));
	if (v) {
		n = strtol(v, &end, 10);
		if (end == v || *end || n < 0 || n > HOOK_MAX_TIMEOUT / 60)
			return err_set(e, ERR_FAILED, "label %s: expected minutes (0..60)", key);
		return n == 0 ? HOOK_MAX_TIMEOUT : n * 60; /* Watchtower: 0 means no limit */
	}
	return HOOK_DEFAULT_TIMEOUT;
}

/* Hook KIND's command in LABELS: refit.hook.KIND, else Watchtower's; NULL when none. */
static const char *hook_command(json_t *labels, const char *kind)
{
	char key[96];
	const char *cmd;

	snprintf(key, sizeof(key), "refit.hook.%s", kind);
	cmd = json_string_value(json_object_get(labels, key));
	if (!cmd) {
		snprintf(key, sizeof(key), "com.centurylinklabs.watchtower.lifecycle.%s", kind);
		cmd = json_string_value(json_object_get(labels, key));
	}
	return cmd && *cmd ? cmd : NULL;
}

bool hook_declared(json_t *labels, const char *kind)
{
	return hook_command(labels, kind) != NULL;
}

int hook_run(struct engine *en, json_t *labels, const char *kind, const char *id, struct refit_err *e)
{
	const char *cmd = hook_command(labels, kind), *exec_id;
	char path[160];
	json_t *body, *ans = NULL;
	long timeout;
	struct timespec t0, now;

	if (!cmd)
		return 0;
	if (strlen(cmd) > LABEL_MAX_VALUE)
		return err_set(e, ERR_FAILED, "hook %s: command longer than %d bytes", kind, LABEL_MAX_VALUE);
	timeout = hook_timeout(labels, kind, e);
	if (timeout < 0)
		return -1;
	body = json_pack("{s:[s,s,s], s:b, s:b}", "Cmd", "sh", "-c", cmd, "AttachStdout", 0, "AttachStderr", 0);
	snprintf(path, sizeof(path), "/containers/%s/exec", id);
	if (!body || engine_call(en, "POST", path, body, 0, &ans, NULL, e) < 0) {
		json_decref(body);
		err_prefix(e, "hook %s: ", kind);
		return -1;
	}
	json_decref(body);
	exec_id = json_string_value(json_object_get(ans, "Id"));
	if (!exec_id || strlen(exec_id) > 64) {
		json_decref(ans);
		return err_set(e, ERR_FAILED, "hook %s: the engine gave no exec Id", kind);
	}
	snprintf(path, sizeof(path), "/exec/%s/start", exec_id);
	body = json_pack("{s:b, s:b}", "Detach", 1, "Tty", 0);
	if (!body || engine_call(en, "POST", path, body, 0, NULL, NULL, e) < 0) {
		json_decref(body);
		json_decref(ans);
		err_prefix(e, "hook %s: ", kind);
		return -1;
	}
	json_decref(body);
	snprintf(path, sizeof(path), "/exec/%s/json", exec_id);
	json_decref(ans);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		json_t *st = NULL;
		int code;

		if (engine_get_json(en, path, &st, e) < 0) {
			err_prefix(e, "hook %s: ", kind);
			return -1;
		}
		if (!json_is_true(json_object_get(st, "Running"))) {
			code = (int)json_integer_value(json_object_get(st, "ExitCode"));
			json_decref(st);
			return code;
		}
		json_decref(st);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= timeout)
			return err_set(e, ERR_FAILED, "hook %s: still running after %ld s", kind, timeout);
		usleep(200000);
	}
}
