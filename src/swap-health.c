/* Health gate: HEALTHCHECK status, uptime without restarts, or an HTTP probe. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/health.h"
#include "refit/select.h"
#include "refit/waited.h"

#define POLL_MS 250        /* an HTTP probe */
#define HEALTHCHECK_POLL_MS 100 /* the engine's HEALTHCHECK status */
#define UPTIME_POLL_MS 500 /* a running container's restarts, until its min_uptime is reached */

/* Parse a duration label: seconds, or "30s", "2m". */
static int label_seconds(json_t *labels, const char *name, long max, long *ret, struct refit_err *e)
{
	const char *v = json_string_value(json_object_get(labels, name));
	char *end;
	long n;

	if (!v)
		return 0;
	n = strtol(v, &end, 10);
	if (end != v && *end == 'm' && end[1] == '\0' && n <= max / 60)
		n *= 60, end++;
	else if (end != v && *end == 's' && end[1] == '\0')
		end++;
	if (end == v || *end || n < 0 || n > max)
		return err_set(e, ERR_FAILED, "label %s: expected seconds (0..%ld), \"30s\" or \"2m\", got \"%.40s\"",
			       name, max, v);
	*ret = n;
	return 0;
}

int health_opts_from(const struct refit_config *cfg, json_t *labels, struct health_opts *ret, struct refit_err *e)
{
	const char *h = json_string_value(json_object_get(labels, "refit.health"));

	memset(ret, 0, sizeof(*ret));
	ret->timeout = cfg->health_timeout;
	ret->min_uptime = cfg->min_uptime;
	if (label_seconds(labels, "refit.health-timeout", 3600, &ret->timeout, e) < 0 ||
	    label_seconds(labels, "refit.min-uptime", 3600, &ret->min_uptime, e) < 0)
		return -1;
	if (ret->timeout < 1)
		ret->timeout = 1;
	if (!h)
		return 0;
	if (strcmp(h, "docker") == 0) {
		ret->mode = HEALTH_DOCKER;
	} else if (strcmp(h, "running") == 0) {
		ret->mode = HEALTH_RUNNING;
	} else if (strncmp(h, "http://:", 8) == 0) {
		char *end;
		long port = strtol(h + 8, &end, 10);

		if (end == h + 8 || port < 1 || port > 65535 || (*end && *end != '/') || strlen(end) >= sizeof(ret->http_path))
			return err_set(e, ERR_FAILED, "label refit.health: expected http://:PORT/PATH, got \"%.60s\"", h);
		for (const char *p = end; *p; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
				return err_set(e, ERR_FAILED, "label refit.health: the path has spaces or control characters");
		ret->mode = HEALTH_HTTP;
		ret->http_port = (int)port;
		snprintf(ret->http_path, sizeof(ret->http_path), "%s", *end ? end : "/");
	} else {
		return err_set(e, ERR_FAILED, "label refit.health: expected docker, running or http://:PORT/PATH, got \"%.60s\"",
			       h);
	}
	return 0;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
	(void)p;
	(void)u;
	return s * n;
}

/* One HTTP probe of the container's first network address; true on 2xx. */
static bool http_probe(json_t *ins, const struct health_opts *o)
{
	json_t *nets = json_object_get(json_object_get(ins, "NetworkSettings"), "Networks"), *n;
	const char *key, *ip = NULL;
	char url[512];
	long status = 0;
	struct timespec t0;
	CURLcode rc;
	CURL *c;

	json_object_foreach(nets, key, n) {
		const char *a = json_string_value(json_object_get(n, "IPAddress"));

		if (a && *a && strspn(a, "0123456789.") == strlen(a)) {
			ip = a;
			break;
		}
	}
	if (!ip || !(c = curl_easy_init()))
		return false;
	snprintf(url, sizeof(url), "http://%s:%d%s", ip, o->http_port, o->http_path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 2L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	waited_start(&t0);
	rc = curl_easy_perform(c);
	waited_stop(&t0);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return status >= 200 && status < 300;
}

/* The gate's loop (health_wait without the slot). */
static int health_gate(struct engine *en, const char *id, const struct health_opts *o, struct refit_err *e)
{
	long long start = mono_ms(), running_since = -1, deadline;
	long restarts0 = -1;
	enum health_mode mode = o->mode;
	deadline = start + 1000LL * (o->timeout > o->min_uptime + 5 ? o->timeout : o->min_uptime + 5);
	for (;;) {
		json_t *ins = NULL, *state, *health;
		const char *hs;
		long restarts;
		bool running;

		if (engine_container_inspect(en, id, &ins, e) <= 0)
			return -1;
		state = json_object_get(ins, "State");
		health = json_object_get(state, "Health");
		hs = json_string_value(json_object_get(health, "Status"));
		if (hs && !*hs)
			hs = NULL; /* Podman: Health {"Status": ""} on a container with no HEALTHCHECK */
		restarts = (long)json_integer_value(json_object_get(ins, "RestartCount"));
		running = json_is_true(json_object_get(state, "Running")) &&
			  !json_is_true(json_object_get(state, "Restarting"));
		if (mode == HEALTH_AUTO)
			mode = hs ? HEALTH_DOCKER : HEALTH_RUNNING;
		if (restarts0 < 0)
			restarts0 = restarts;
		if (restarts != restarts0) {
			json_decref(ins);
			return err_set(e, ERR_FAILED, "health: the new container restarted (%ld times)", restarts - restarts0);
		}
		if (!running) {
			long code = (long)json_integer_value(json_object_get(state, "ExitCode"));
			const char *st = json_string_value(json_object_get(state, "Status"));

			/* ST lives in INS: use it before letting INS go. */
			err_set(e, ERR_FAILED, "health: the new container is %s (exit code %ld)", st ? st : "not running", code);
			json_decref(ins);
			return -1;
		}
		if (running_since < 0)
			running_since = mono_ms();
		if (mode == HEALTH_DOCKER) {
			if (!hs) {
				json_decref(ins);
				return err_set(e, ERR_FAILED, "health: refit.health=docker but the image has no HEALTHCHECK");
			}
			if (strcmp(hs, "healthy") == 0) {
				json_decref(ins);
				return 0;
			}
			if (strcmp(hs, "unhealthy") == 0) {
				json_t *log = json_object_get(health, "Log");
				const char *out = json_string_value(
					json_object_get(json_array_get(log, json_array_size(log) - 1), "Output"));

				err_set(e, ERR_FAILED, "health: the new container is unhealthy%s%.200s", out ? ": " : "",
					out ? out : "");
				json_decref(ins);
				return -1;
			}
		} else if (mode == HEALTH_HTTP) {
			if (http_probe(ins, o)) {
				json_decref(ins);
				return 0;
			}
		} else if (mono_ms() - running_since >= 1000LL * o->min_uptime) {
			json_decref(ins);
			return 0;
		}
		json_decref(ins);
		if (mono_ms() >= deadline)
			return err_set(e, ERR_FAILED, "health: not %s within %ld s",
				       mode == HEALTH_DOCKER ? "healthy" : mode == HEALTH_HTTP ? "answering 2xx" : "up",
				       o->timeout);
		if (mode == HEALTH_DOCKER) {
			waited_sleep_ms(HEALTHCHECK_POLL_MS);
		} else if (mode == HEALTH_HTTP) {
			waited_sleep_ms(POLL_MS);
		} else {
			/* Looked at every UPTIME_POLL_MS, and once more the moment min_uptime is reached. */
			long long left = running_since + 1000LL * o->min_uptime - mono_ms();

			waited_sleep_ms(left < 1 ? 1 : left < UPTIME_POLL_MS ? (long)left : UPTIME_POLL_MS);
		}
	}
}

int health_wait(struct engine *en, const char *id, const struct health_opts *o, struct refit_err *e)
{
	/* Waiting is not engine work: the pass's slot goes to another swap meanwhile. */
	bool slot = slot_pause();
	int rc = health_gate(en, id, o, e);

	slot_resume(slot);
	return rc;
}
