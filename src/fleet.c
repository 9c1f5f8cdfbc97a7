/* refit fleet rollout / status: many hosts driven through their management APIs. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/api-request.h"
#include "refit/args.h"
#include "refit/fleet.h"
#include "refit/registry.h"
#include "refit/semver.h"
#include "refit/version.h"

#define DEFAULT_TIMEOUT 600       /* seconds for a host's operation */
#define DEFAULT_CONNECT_TIMEOUT 10
#define REQUEST_TIMEOUT 30        /* seconds for one request (at most) */
#define POLL_MS 500
#define POLL_FAILURES 10          /* requests for an operation's state that may fail in a row */
#define STATUS_THREADS 16
#define COMMAND_PATH "/api/v1/management/orchestrator/update/command"

const char fleet_usage[] = "refit fleet rollout|status --hosts FILE [options]";

const char fleet_help[] =
	"Drive many hosts' refit daemons through their management APIs.\n"
	"\n"
	"  refit fleet rollout --hosts FILE [--canary N] [--batch N] [--target-version TAG]\n"
	"                      [--rollback-on-failure] [--timeout S] [--connect-timeout S] [--json]\n"
	"      Update the hosts in the file's order: the first N canaries one after another,\n"
	"      then the rest in batches of up to N hosts at once (default --canary 0\n"
	"      --batch 1). Each host: trigger an update pass, follow its operation to the end,\n"
	"      then GET /health. A host fails when it cannot be reached, refuses the token,\n"
	"      its operation fails or any container failed or was rolled back, or /health is\n"
	"      not ok. The first failure halts the rollout (a running batch finishes); with\n"
	"      --rollback-on-failure every host this rollout changed is rolled back (exactly\n"
	"      the containers it changed there). --timeout: seconds for each host's operation\n"
	"      (default 600), --connect-timeout: seconds to connect (default 10); the hosts\n"
	"      file's timeout/connect_timeout win for their host.\n"
	"\n"
	"  refit fleet status --hosts FILE [--json]\n"
	"      Each host's health, version, paused state and containers (image, digest).\n"
	"\n"
	"FILE (YAML):\n"
	"  hosts:\n"
	"    - name: web1\n"
	"      url: https://web1.example.com:8010\n"
	"      token_file: /etc/refit/fleet/web1.token   # or token: ...\n"
	"      ca_file: /etc/refit/fleet/ca.pem          # optional, https only\n"
	"      timeout: 900                              # optional\n"
	"\n"
	"Progress goes to stdout (to stderr with --json), then a table, or one JSON object\n"
	"with --json. Exit codes: 0 every host succeeded (status: every host answered),\n"
	"1 a host failed or could not be reached, 2 usage or hosts file error.\n";

/* What the command line asked. */
struct fleet_opts {
	struct fleet_rollout_opts run; /* what the hosts are asked with (the dashboard's rollout gives it whole) */
	const char *hosts_file;
	bool json;
};

/* One host's part in a rollout. */
struct hrun {
	struct fleet_host *h;
	struct fleet_ctx *ctx;
	size_t stage;
	bool canary;
	bool started;
	bool ok;
	char result[24]; /* succeeded, failed, not-started */
	char error[600];
	char op_id[17];
	struct fleet_op op;
	double seconds;
	/* rollback */
	bool rb_wanted;
	char rb_result[24]; /* rolled-back, rollback-failed */
	char rb_error[600];
	char rb_id[17];
	struct fleet_op rb;
	/* status */
	bool reachable;
	char health_err[300];
	char version[64];
	bool paused;
};

struct fleet_ctx {
	struct fleet_opts o;
	struct fleet_hosts hosts; /* borrowed: freed by whoever loaded it */
	struct hrun *runs;
	FILE *progress;
	bool tty;
	size_t done;
	bool halted, rolled; /* a rollout's end */
	pthread_mutex_t lock;
};

/* An HTTP answer, bounded. */
struct answer {
	long status;
	char *body;
	size_t len;
	bool too_large;
	char curl_err[CURL_ERROR_SIZE];
};

static bool stopping(const struct fleet_ctx *c)
{
	return c->o.run.stopping && c->o.run.stopping(c->o.run.arg);
}

/* One progress line: "[done/total] host: text" on a terminal, "host: text" otherwise. */
static void progress(struct hrun *r, bool finished, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void progress(struct hrun *r, bool finished, const char *fmt, ...)
{
	struct fleet_ctx *c = r->ctx;
	char msg[800];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&c->lock);
	if (finished)
		c->done++;
	if (c->o.run.progress) {
		c->o.run.progress(c->o.run.arg, r->h->name, msg);
	} else if (c->progress) {
		if (c->tty)
			fprintf(c->progress, "[%zu/%zu] %s: %s\n", c->done, c->hosts.n, r->h->name, msg);
		else
			fprintf(c->progress, "%s: %s\n", r->h->name, msg);
		fflush(c->progress);
	}
	pthread_mutex_unlock(&c->lock);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n;
	char *b;

	if (a->len + len > FLEET_MAX_ANSWER) {
		a->too_large = true;
		return 0; /* ends the transfer */
	}
	if (!(b = realloc(a->body, a->len + len + 1)))
		return 0;
	memcpy(b + a->len, p, len);
	a->len += len;
	b[a->len] = '\0';
	a->body = b;
	return len;
}

/* libcurl's progress call: a transfer ends when refit stops (the daemon's rollout). */
static int on_xfer(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	return stopping(arg) ? 1 : 0;
}

static void answer_free(struct answer *a)
{
	free(a->body);
	memset(a, 0, sizeof(*a));
}

/*
 * METHOD URL+PATH with BODY (JSON, or NULL) and the host's token (unless
 * NO_AUTH). TIMEOUT: seconds for the whole request. 0 with A filled when an
 * answer came (any status); -1 with A->curl_err when none did.
 */
static int http(const struct fleet_ctx *c, const struct fleet_host *h, const char *method, const char *path,
		const char *body, bool no_auth, long timeout, struct answer *a)
{
	CURL *k = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char url[FLEET_MAX_URL + 128], auth[FLEET_MAX_TOKEN + 32];
	CURLcode rc;

	memset(a, 0, sizeof(*a));
	if (!k) {
		snprintf(a->curl_err, sizeof(a->curl_err), "out of memory");
		return -1;
	}
	snprintf(url, sizeof(url), "%s%s", h->url, path);
	if (!no_auth) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", h->token);
		hdr = curl_slist_append(hdr, auth);
		explicit_bzero(auth, sizeof(auth));
	}
	if (body)
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Accept: application/json");
	curl_easy_setopt(k, CURLOPT_URL, url);
	curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(k, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(k, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(k, CURLOPT_USERAGENT, refit_fleet_user_agent);
	curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT, h->connect_timeout ? h->connect_timeout : c->o.run.connect_timeout);
	curl_easy_setopt(k, CURLOPT_TIMEOUT, timeout < 1 ? 1L : timeout);
	curl_easy_setopt(k, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(k, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_file)
		curl_easy_setopt(k, CURLOPT_CAINFO, h->ca_file);
	curl_easy_setopt(k, CURLOPT_ERRORBUFFER, a->curl_err);
	if (c->o.run.stopping) {
		curl_easy_setopt(k, CURLOPT_XFERINFOFUNCTION, on_xfer);
		curl_easy_setopt(k, CURLOPT_XFERINFODATA, (void *)c);
		curl_easy_setopt(k, CURLOPT_NOPROGRESS, 0L);
	}
	curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(k, CURLOPT_WRITEDATA, a);
	if (body) {
		curl_easy_setopt(k, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(k, CURLOPT_POSTFIELDS, "");
	}
	rc = curl_easy_perform(k);
	curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &a->status);
	curl_easy_cleanup(k);
	curl_slist_free_all(hdr); /* the header with the token: libcurl's copy is freed with it */
	if (a->too_large) {
		snprintf(a->curl_err, sizeof(a->curl_err), "answer larger than %u bytes", FLEET_MAX_ANSWER);
		return -1;
	}
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		snprintf(a->curl_err, sizeof(a->curl_err), "refit stopped before the answer");
	if (rc != CURLE_OK) {
		if (!a->curl_err[0])
			snprintf(a->curl_err, sizeof(a->curl_err), "%s", curl_easy_strerror(rc));
		return -1;
	}
	if (!a->body && !(a->body = calloc(1, 1))) {
		snprintf(a->curl_err, sizeof(a->curl_err), "out of memory");
		return -1;
	}
	return 0;
}

/* Why an answer with an unexpected status is one, into OUT. */
static void explain_status(const struct answer *a, const char *what, char *out, size_t outlen)
{
	char msg[300];

	fleet_parse_error(a->body, a->len, msg, sizeof(msg));
	if (a->status == 401)
		snprintf(out, outlen, "%s: 401 unauthorized: the host refused the token (check token/token_file)", what);
	else
		snprintf(out, outlen, "%s: HTTP %ld%s%s", what, a->status, msg[0] ? ": " : "", msg);
}

static long host_timeout(const struct hrun *r)
{
	return r->h->timeout ? r->h->timeout : r->ctx->o.run.timeout;
}

/* Seconds left until DEADLINE, at most REQUEST_TIMEOUT, at least 1. */
static long left(double deadline)
{
	double l = deadline - mono_seconds();

	return l > REQUEST_TIMEOUT ? REQUEST_TIMEOUT : l < 1 ? 1 : (long)l;
}

/*
 * POST BODY to PATH (an operation: 202 {"operation": ID}) and follow the
 * operation to its end or DEADLINE; the record into OP. -1 with ERR when
 * there is no finished record.
 */
static int run_operation(struct hrun *r, const char *what, const char *path, const char *body, bool rollback,
			 double deadline, char id[17], struct fleet_op *op, char *err, size_t errlen)
{
	struct fleet_ctx *c = r->ctx;
	struct answer a;
	char last[16] = "", opath[64];
	struct refit_err pe = { 0 };
	int failures = 0;

	if (http(c, r->h, "POST", path, body, false, left(deadline), &a) < 0) {
		snprintf(err, errlen, "%s: unreachable: %s", what, a.curl_err);
		answer_free(&a);
		return -1;
	}
	if (a.status != 202 || fleet_parse_accepted(a.body, a.len, id) < 0) {
		if (a.status == 202)
			snprintf(err, errlen, "%s: the answer names no operation", what);
		else
			explain_status(&a, what, err, errlen);
		answer_free(&a);
		return -1;
	}
	answer_free(&a);
	progress(r, false, "%s: operation %s queued", what, id);
	snprintf(opath, sizeof(opath), "/api/v1/operations/%s", id);
	for (;;) {
		if (stopping(c)) {
			snprintf(err, errlen, "%s: refit stopped following operation %s (it may still be running there)",
				 what, id);
			return -1;
		}
		if (mono_seconds() > deadline) {
			snprintf(err, errlen, "%s: operation %s did not finish within %ld s (it may still be running there)",
				 what, id, host_timeout(r));
			return -1;
		}
		if (http(c, r->h, "GET", opath, NULL, false, left(deadline), &a) < 0) {
			if (++failures >= POLL_FAILURES) {
				snprintf(err, errlen, "%s: operation %s: host unreachable: %s", what, id, a.curl_err);
				answer_free(&a);
				return -1;
			}
		} else if (a.status != 200) {
			explain_status(&a, what, err, errlen);
			if (a.status == 404)
				snprintf(err, errlen, "%s: operation %s is gone from the host (did its daemon restart?)", what, id);
			answer_free(&a);
			return -1;
		} else {
			failures = 0;
			if (fleet_parse_op(a.body, a.len, rollback, op, &pe) < 0) {
				snprintf(err, errlen, "%s: operation %s: %s", what, id, pe.msg);
				answer_free(&a);
				return -1;
			}
			if (strcmp(op->state, "succeeded") == 0 || strcmp(op->state, "failed") == 0 ||
			    strcmp(op->state, "interrupted") == 0) {
				answer_free(&a);
				return 0;
			}
			if (strcmp(op->state, last) != 0) {
				snprintf(last, sizeof(last), "%s", op->state);
				if (strcmp(last, "queued") != 0)
					progress(r, false, "%s: operation %s %s", what, id, last);
			}
			fleet_op_free(op);
		}
		answer_free(&a);
		usleep(POLL_MS * 1000);
	}
}

/* The first failed container of OP as "NAME: STATUS: ERROR" into OUT. */
static void first_failure(const struct fleet_op *op, bool rollback, char *out, size_t outlen)
{
	for (size_t i = 0; i < op->n; i++) {
		const char *st = op->v[i].status;

		if (strcmp(st, "failed") == 0 || (!rollback && strcmp(st, "rolled-back") == 0)) {
			snprintf(out, outlen, "%s %s%s%s", op->v[i].name, st, op->v[i].error ? ": " : "",
				 op->v[i].error ? op->v[i].error : "");
			return;
		}
	}
	snprintf(out, outlen, "%s", op->error ? op->error : "no reason given");
}

/* One host of a rollout: trigger, follow, health. */
static void *rollout_host(void *arg)
{
	struct hrun *r = arg;
	double t0 = mono_seconds(), deadline = t0 + (double)host_timeout(r);
	json_t *body = json_pack("{s:s}", "action", "trigger");
	char *text, why[400], version[64];
	struct refit_err pe = { 0 };
	struct answer a;
	bool paused;

	r->started = true;
	if (r->ctx->o.run.target_version)
		json_object_set_new(body, "target_version", json_string(r->ctx->o.run.target_version));
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	progress(r, false, "triggering an update%s%s (%s %zu)", r->ctx->o.run.target_version ? " to " : "",
		 r->ctx->o.run.target_version ? r->ctx->o.run.target_version : "", r->canary ? "canary" : "batch",
		 r->canary ? r->stage + 1 : r->stage + 1 - (size_t)r->ctx->o.run.canary);
	if (!text) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		goto out;
	}
	if (run_operation(r, "update", COMMAND_PATH, text, false, deadline, r->op_id, &r->op, r->error,
			  sizeof(r->error)) < 0)
		goto out;
	if (r->op.failed || strcmp(r->op.state, "succeeded") != 0) {
		first_failure(&r->op, false, why, sizeof(why));
		snprintf(r->error, sizeof(r->error), "operation %s %s: %s", r->op_id,
			 r->op.failed ? "had a container failing" : "failed", why);
		goto out;
	}
	progress(r, false, "operation %s succeeded (%zu changed); checking /health", r->op_id, r->op.changed);
	if (http(r->ctx, r->h, "GET", "/health", NULL, true, left(deadline), &a) < 0) {
		snprintf(r->error, sizeof(r->error), "health: unreachable: %s", a.curl_err);
	} else if (a.status != 200) {
		explain_status(&a, "health", r->error, sizeof(r->error));
	} else if (fleet_parse_health(a.body, a.len, version, sizeof(version), &paused, &pe) < 0) {
		snprintf(r->error, sizeof(r->error), "health: %s", pe.msg);
	} else {
		r->ok = true;
	}
	answer_free(&a);
out:
	free(text);
	r->seconds = mono_seconds() - t0;
	snprintf(r->result, sizeof(r->result), "%s", r->ok ? "succeeded" : "failed");
	if (r->ok)
		progress(r, true, "succeeded in %.1f s: %zu container%s changed", r->seconds, r->op.changed,
			 r->op.changed == 1 ? "" : "s");
	else
		progress(r, true, "FAILED after %.1f s: %s", r->seconds, r->error);
	return NULL;
}

/* Roll back exactly the containers this rollout changed on one host. */
static void *rollback_host(void *arg)
{
	struct hrun *r = arg;
	double deadline = mono_seconds() + (double)host_timeout(r);
	json_t *names, *body = NULL;
	char *text = NULL, why[400];

	progress(r, false, "rolling back %zu container%s", r->op.changed, r->op.changed == 1 ? "" : "s");
	if (r->op.changed <= API_MAX_NAMES && (names = json_array())) { /* what one rollback request may name */
		for (size_t i = 0; i < r->op.n; i++)
			if (strcmp(r->op.v[i].status, "updated") == 0)
				json_array_append_new(names, json_string(r->op.v[i].name));
		body = json_pack("{s:o}", "containers", names);
		text = body ? json_dumps(body, JSON_COMPACT) : NULL;
		json_decref(body);
	}
	if (r->op.changed > API_MAX_NAMES) {
		snprintf(r->rb_error, sizeof(r->rb_error),
			 "%zu containers changed, more than one rollback may name (%d): roll back on the host", r->op.changed,
			 API_MAX_NAMES);
	} else if (!text) {
		snprintf(r->rb_error, sizeof(r->rb_error), "out of memory");
	} else if (run_operation(r, "rollback", "/api/v1/rollback", text, true, deadline, r->rb_id, &r->rb,
				 r->rb_error, sizeof(r->rb_error)) == 0) {
		if (strcmp(r->rb.state, "succeeded") == 0 && r->rb.changed == r->op.changed && !r->rb.failed) {
			snprintf(r->rb_result, sizeof(r->rb_result), "rolled-back");
		} else {
			first_failure(&r->rb, true, why, sizeof(why));
			snprintf(r->rb_error, sizeof(r->rb_error), "rollback operation %s: %s", r->rb_id, why);
		}
	}
	free(text);
	if (!r->rb_result[0]) {
		snprintf(r->rb_result, sizeof(r->rb_result), "rollback-failed");
		progress(r, false, "ROLLBACK FAILED: %s", r->rb_error);
	} else {
		progress(r, false, "rolled back (operation %s)", r->rb_id);
	}
	return NULL;
}

/* Run FN on each of RUNS[0..N) at once, a thread each; wait for all. */
static void run_parallel(struct hrun **runs, size_t n, void *(*fn)(void *))
{
	pthread_t *t = calloc(n + 1, sizeof(*t));
	bool *started = calloc(n + 1, sizeof(*started));

	for (size_t i = 0; i < n; i++) {
		pthread_attr_t attr;

		if (t && started) {
			pthread_attr_init(&attr);
			pthread_attr_setstacksize(&attr, 512 * 1024);
			started[i] = pthread_create(&t[i], &attr, fn, runs[i]) == 0;
			pthread_attr_destroy(&attr);
		}
		if (!t || !started || !started[i])
			fn(runs[i]); /* no thread: run it here */
	}
	for (size_t i = 0; t && started && i < n; i++)
		if (started[i])
			pthread_join(t[i], NULL);
	free(t);
	free(started);
}

static json_t *changes_json(const struct fleet_op *op)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < op->n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s?, s:s, s:s?, s:s?, s:s?}", "name", op->v[i].name, "image",
						     op->v[i].image, "status", op->v[i].status, "old_digest",
						     op->v[i].old_digest, "new_digest", op->v[i].new_digest, "error",
						     op->v[i].error));
	return arr;
}

static void print_json_obj(json_t *root)
{
	char *s = root ? json_dumps(root, JSON_INDENT(2)) : NULL;

	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(root);
}

/* A rollout's report, as `refit fleet rollout --json` prints it. */
static json_t *rollout_json(const struct fleet_ctx *c)
{
	json_t *hosts = json_array();

	for (size_t i = 0; i < c->hosts.n; i++) {
		struct hrun *r = &c->runs[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s?, s:s?, s:f, s:I, s:o}", "name", r->h->name, "url",
				      r->h->url, "role", r->canary ? "canary" : "batch", "stage",
				      (json_int_t)r->stage + 1, "result", r->result, "error",
				      r->error[0] ? r->error : NULL, "operation", r->op_id[0] ? r->op_id : NULL,
				      "seconds", (double)(long)(r->seconds * 10 + 0.5) / 10, "changed", (json_int_t)r->op.changed, "containers",
				      changes_json(&r->op));

		if (o)
			json_object_set_new(o, "rollback",
					    r->rb_wanted ? json_pack("{s:s, s:s?, s:s?, s:o}", "result", r->rb_result,
								     "operation", r->rb_id[0] ? r->rb_id : NULL,
								     "error", r->rb_error[0] ? r->rb_error : NULL,
								     "containers", changes_json(&r->rb))
							 : json_null());
		json_array_append_new(hosts, o);
	}
	return json_pack("{s:s, s:b, s:o}", "result", c->halted ? "failed" : "succeeded", "rolled_back", c->rolled,
			 "hosts", hosts);
}

static void rollout_report(struct fleet_ctx *c)
{
	bool all_ok = !c->halted, rolled = c->rolled;

	if (c->o.json) {
		print_json_obj(rollout_json(c));
		return;
	}
	{
		int wn = 4;

		for (size_t i = 0; i < c->hosts.n; i++)
			wn = (int)strlen(c->hosts.v[i].name) > wn ? (int)strlen(c->hosts.v[i].name) : wn;
		printf("\n%-*s  %-11s  %-7s  %-15s  %7s  %s\n", wn, "HOST", "RESULT", "CHANGED", "ROLLBACK", "TIME",
		       "CONTAINERS (old \u2192 new)");
		for (size_t i = 0; i < c->hosts.n; i++) {
			struct hrun *r = &c->runs[i];
			char tm[32], line[600] = "-";
			bool first = true;

			snprintf(tm, sizeof(tm), r->started ? "%.1fs" : "-", r->seconds);
			for (size_t k = 0; k < r->op.n || first; k++) {
				if (k < r->op.n) {
					char a[16], b[16];
					const struct fleet_change *ch = &r->op.v[k];

					if (strcmp(ch->status, "up-to-date") == 0 || strcmp(ch->status, "skipped") == 0)
						continue;
					snprintf(line, sizeof(line), "%s %s %s \u2192 %s", ch->name, ch->status,
						 registry_digest_short(ch->old_digest, a), registry_digest_short(ch->new_digest, b));
				} else if (!first) {
					break;
				}
				if (first)
					printf("%-*s  %-11s  %-7zu  %-15s  %7s  %s\n", wn, r->h->name, r->result, r->op.changed,
					       r->rb_wanted ? r->rb_result : "-", tm, line);
				else
					printf("%-*s  %-11s  %-7s  %-15s  %7s  %s\n", wn, "", "", "", "", "", line);
				first = false;
			}
		}
		for (size_t i = 0; i < c->hosts.n; i++) {
			struct hrun *r = &c->runs[i];

			if (r->error[0])
				printf("%s: %s\n", r->h->name, r->error);
			if (r->rb_error[0])
				printf("%s: rollback: %s\n", r->h->name, r->rb_error);
		}
		printf("rollout %s%s\n", all_ok ? "succeeded" : "FAILED",
		       rolled ? ", the hosts it changed were rolled back" : "");
	}
}

static int rollout(struct fleet_ctx *c)
{
	size_t n = c->hosts.n, i = 0, stage = 0;
	struct hrun **group = calloc(n + 1, sizeof(*group));
	bool halted = false, rolled = false;

	if (!group)
		return ERR_FAILED;
	while (i < n && !halted && !stopping(c)) {
		size_t g = 0, take = stage < (size_t)c->o.run.canary ? 1 : (size_t)c->o.run.batch;

		for (; g < take && i < n; g++, i++) {
			c->runs[i].stage = stage;
			c->runs[i].canary = stage < (size_t)c->o.run.canary;
			group[g] = &c->runs[i];
		}
		run_parallel(group, g, rollout_host);
		for (size_t k = 0; k < g; k++)
			halted |= !group[k]->ok;
		stage++;
	}
	for (; i < n; i++) {
		c->runs[i].stage = stage;
		c->runs[i].canary = false;
		progress(&c->runs[i], true, stopping(c) ? "not started: refit stopped" : "not started: the rollout halted");
		halted = true;
	}
	if (halted && c->o.run.rollback && !stopping(c)) {
		size_t g = 0;

		for (i = 0; i < n; i++)
			if (c->runs[i].started && c->runs[i].op.changed > 0) {
				c->runs[i].rb_wanted = true;
				group[g++] = &c->runs[i];
			}
		if (g) {
			run_parallel(group, g, rollback_host);
			rolled = true;
			for (i = 0; i < g; i++)
				rolled &= strcmp(group[i]->rb_result, "rolled-back") == 0;
		}
	}
	free(group);
	c->halted = halted; /* every host ran and succeeded unless it halted */
	c->rolled = rolled;
	return halted ? ERR_FAILED : 0;
}

/* One host's status: health, then the containers. */
static void *status_host(void *arg)
{
	struct hrun *r = arg;
	double deadline = mono_seconds() + REQUEST_TIMEOUT * 4;
	struct answer a;
	struct refit_err pe = { 0 };

	if (http(r->ctx, r->h, "GET", "/health", NULL, true, left(deadline), &a) < 0) {
		snprintf(r->error, sizeof(r->error), "unreachable: %s", a.curl_err);
		answer_free(&a);
		return NULL;
	}
	r->reachable = true;
	if (a.status != 200)
		explain_status(&a, "health", r->health_err, sizeof(r->health_err));
	else if (fleet_parse_health(a.body, a.len, r->version, sizeof(r->version), &r->paused, &pe) < 0)
		snprintf(r->health_err, sizeof(r->health_err), "%.290s", pe.msg);
	answer_free(&a);
	if (http(r->ctx, r->h, "GET", "/api/v1/containers", NULL, false, left(deadline), &a) < 0)
		snprintf(r->error, sizeof(r->error), "containers: %s", a.curl_err);
	else if (a.status != 200)
		explain_status(&a, "containers", r->error, sizeof(r->error));
	else if (fleet_parse_containers(a.body, a.len, &r->op, &pe) < 0)
		snprintf(r->error, sizeof(r->error), "containers: %s", pe.msg);
	else
		r->ok = !r->health_err[0];
	answer_free(&a);
	return NULL;
}

/* Ask every host, 16 at once: 0, or ERR_FAILED when one did not answer or is not ok. */
static int status_run(struct fleet_ctx *c)
{
	struct hrun *group[STATUS_THREADS];
	int code = 0;

	for (size_t i = 0; i < c->hosts.n;) {
		size_t g = 0;

		while (g < STATUS_THREADS && i < c->hosts.n)
			group[g++] = &c->runs[i++];
		run_parallel(group, g, status_host);
	}
	for (size_t i = 0; i < c->hosts.n; i++)
		if (!c->runs[i].ok)
			code = ERR_FAILED;
	return code;
}

/* The hosts' status, as `refit fleet status --json` prints it. */
static json_t *status_json(const struct fleet_ctx *c)
{
	json_t *hosts = json_array();

	for (size_t i = 0; i < c->hosts.n; i++) {
		struct hrun *r = &c->runs[i];

		json_array_append_new(
			hosts, json_pack("{s:s, s:s, s:b, s:s, s:s?, s:o, s:o, s:s?}", "name", r->h->name, "url", r->h->url,
					 "reachable", r->reachable,
					 "health", !r->reachable ? "unreachable" : r->health_err[0] ? "not ok" : "ok",
					 "version", r->version[0] ? r->version : NULL, "paused",
					 r->reachable ? json_boolean(r->paused) : json_null(), "containers",
					 changes_json(&r->op), "error",
					 r->error[0] ? r->error : r->health_err[0] ? r->health_err : NULL));
	}
	return json_pack("{s:o}", "hosts", hosts);
}

static void status_report(struct fleet_ctx *c)
{
	if (c->o.json) {
		print_json_obj(status_json(c));
		return;
	}
	{
		int wn = 4, wc = 9, wi = 5;

		for (size_t i = 0; i < c->hosts.n; i++) {
			wn = (int)strlen(c->hosts.v[i].name) > wn ? (int)strlen(c->hosts.v[i].name) : wn;
			for (size_t k = 0; k < c->runs[i].op.n; k++) {
				const struct fleet_change *ch = &c->runs[i].op.v[k];

				wc = (int)strlen(ch->name) > wc ? (int)strlen(ch->name) : wc;
				wi = ch->image && (int)strlen(ch->image) > wi ? (int)strlen(ch->image) : wi;
			}
		}
		printf("%-*s  %-11s  %-8s  %-6s  %-*s  %-*s  %-12s  %s\n", wn, "HOST", "HEALTH", "VERSION", "PAUSED", wc,
		       "CONTAINER", wi, "IMAGE", "DIGEST", "STATUS");
		for (size_t i = 0; i < c->hosts.n; i++) {
			struct hrun *r = &c->runs[i];

			if (!r->reachable) {
				printf("%-*s  %s\n", wn, r->h->name, r->error);
				continue;
			}
			for (size_t k = 0; k < r->op.n || k == 0; k++) {
				const struct fleet_change *ch = k < r->op.n ? &r->op.v[k] : NULL;
				char d[16];

				printf("%-*s  %-11s  %-8s  %-6s  %-*s  %-*s  %-12s  %s\n", wn, k ? "" : r->h->name,
				       k ? "" : r->health_err[0] ? "NOT OK" : "ok", k ? "" : r->version[0] ? r->version : "-",
				       k ? "" : r->paused ? "yes" : "no", wc, ch ? ch->name : "(none)", wi,
				       ch && ch->image ? ch->image : "-", ch ? registry_digest_short(ch->old_digest, d) : "-",
				       ch ? ch->status : "-");
			}
			if (r->health_err[0])
				printf("%-*s  health: %s\n", wn, "", r->health_err);
			if (r->error[0])
				printf("%-*s  %s\n", wn, "", r->error);
		}
	}
}

/* Make C's runs for its hosts: 0, or -1 out of memory. */
static int ctx_start(struct fleet_ctx *c)
{
	if (!(c->runs = calloc(c->hosts.n + 1, sizeof(*c->runs))))
		return -1;
	for (size_t i = 0; i < c->hosts.n; i++) {
		c->runs[i].h = &c->hosts.v[i];
		c->runs[i].ctx = c;
		snprintf(c->runs[i].result, sizeof(c->runs[i].result), "not-started");
	}
	pthread_mutex_init(&c->lock, NULL);
	return 0;
}

static void ctx_end(struct fleet_ctx *c)
{
	for (size_t i = 0; i < c->hosts.n; i++) {
		fleet_op_free(&c->runs[i].op);
		fleet_op_free(&c->runs[i].rb);
	}
	pthread_mutex_destroy(&c->lock);
	free(c->runs);
	c->runs = NULL;
}

json_t *fleet_status(const struct fleet_hosts *hosts, long connect_timeout)
{
	struct fleet_ctx c = { .o.run.connect_timeout = connect_timeout > 0 ? connect_timeout : DEFAULT_CONNECT_TIMEOUT,
			       .hosts = *hosts };
	json_t *j;

	if (ctx_start(&c) < 0)
		return NULL;
	status_run(&c);
	j = status_json(&c);
	ctx_end(&c);
	return j;
}

json_t *fleet_rollout(const struct fleet_hosts *hosts, const struct fleet_rollout_opts *o)
{
	struct fleet_ctx c = { .o.run = *o, .hosts = *hosts };
	json_t *j;

	if (c.o.run.batch <= 0)
		c.o.run.batch = 1;
	if (c.o.run.timeout <= 0)
		c.o.run.timeout = DEFAULT_TIMEOUT;
	if (c.o.run.connect_timeout <= 0)
		c.o.run.connect_timeout = DEFAULT_CONNECT_TIMEOUT;
	if (ctx_start(&c) < 0)
		return NULL;
	rollout(&c);
	j = rollout_json(&c);
	ctx_end(&c);
	return j;
}

/* A whole number within MIN..MAX for option NAME, or -1 (said on stderr). */
static long number(const char *name, const char *v, long min, long max)
{
	char *end;
	long n;

	errno = 0;
	n = v ? strtol(v, &end, 10) : 0;
	if (!v || errno || end == v || *end || n < min || n > max) {
		fprintf(stderr, "refit fleet: --%s: expected a whole number %ld..%ld, got \"%.32s\"\n", name, min, max,
			v ? v : "");
		return -1;
	}
	return n;
}

/* The options of refit fleet (rollout and status), read with the scanner refit's own commands use. */
enum { F_HELP = 1, F_JSON, F_ROLLBACK, F_HOSTS, F_CANARY, F_BATCH, F_TIMEOUT, F_CONNECT_TIMEOUT, F_TARGET };

static const struct arg_opt fleet_options[] = {
	{ "help", false, F_HELP, "-h" },
	{ "json", false, F_JSON, NULL },
	{ "rollback-on-failure", false, F_ROLLBACK, NULL },
	{ "hosts", true, F_HOSTS, NULL },
	{ "canary", true, F_CANARY, NULL },
	{ "batch", true, F_BATCH, NULL },
	{ "timeout", true, F_TIMEOUT, NULL },
	{ "connect-timeout", true, F_CONNECT_TIMEOUT, NULL },
	{ "target-version", true, F_TARGET, NULL },
};

int fleet_main(int argc, char **argv)
{
	struct fleet_ctx c = { .o.run = { .batch = 1, .timeout = DEFAULT_TIMEOUT, .connect_timeout = DEFAULT_CONNECT_TIMEOUT } };
	struct refit_err e = { 0 };
	const char *sub = argc > 0 ? argv[0] : NULL;
	struct args a;
	const char *val;
	bool is_rollout;
	int code, id;

	if (!sub) {
		fprintf(stderr, "usage: %s (see refit fleet --help)\n", fleet_usage);
		return ERR_USAGE;
	}
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
		printf("usage: %s\n\n%s", fleet_usage, fleet_help);
		return 0;
	}
	if (strcmp(sub, "rollout") != 0 && strcmp(sub, "status") != 0) {
		if (sub[0] == '-')
			fprintf(stderr, "refit fleet: name rollout or status before the options (see refit fleet --help)\n");
		else
			fprintf(stderr, "refit fleet: unknown subcommand '%.64s' (rollout or status; see refit fleet --help)\n",
				sub);
		return ERR_USAGE;
	}
	is_rollout = strcmp(sub, "rollout") == 0;
	signal(SIGPIPE, SIG_IGN); /* a peer closing a TLS connection must not end the rollout */
	args_init(&a, argc, argv, 1);
	while ((id = args_next(&a, fleet_options, ARRAY_SIZE(fleet_options), &val)) != ARG_DONE) {
		bool rollout_only = id == F_ROLLBACK || id == F_CANARY || id == F_BATCH || id == F_TIMEOUT ||
				    id == F_TARGET;

		if (id == ARG_WORD) {
			fprintf(stderr, "refit fleet %s: unexpected argument '%.64s' (see refit fleet --help)\n", sub, val);
			return ERR_USAGE;
		}
		if (id < 0 || (rollout_only && !is_rollout)) {
			fprintf(stderr, "refit fleet %s: unknown option or missing value: %.64s (see refit fleet --help)\n",
				sub, a.word);
			return ERR_USAGE;
		}
		switch (id) {
		case F_HELP:
			printf("usage: %s\n\n%s", fleet_usage, fleet_help);
			return 0;
		case F_JSON:
			c.o.json = true;
			break;
		case F_ROLLBACK:
			c.o.run.rollback = true;
			break;
		case F_HOSTS:
			c.o.hosts_file = val;
			break;
		case F_CANARY:
			if ((c.o.run.canary = number("canary", val, 0, FLEET_MAX_HOSTS)) < 0)
				return ERR_USAGE;
			break;
		case F_BATCH:
			if ((c.o.run.batch = number("batch", val, 1, FLEET_MAX_HOSTS)) < 0)
				return ERR_USAGE;
			break;
		case F_TIMEOUT:
			if ((c.o.run.timeout = number("timeout", val, 1, 86400)) < 0)
				return ERR_USAGE;
			break;
		case F_CONNECT_TIMEOUT:
			if ((c.o.run.connect_timeout = number("connect-timeout", val, 1, 300)) < 0)
				return ERR_USAGE;
			break;
		case F_TARGET:
			if (!tag_valid(val)) {
				fprintf(stderr, "refit fleet: --target-version: \"%.64s\" is not an image tag\n", val);
				return ERR_USAGE;
			}
			c.o.run.target_version = val;
			break;
		default:
			break;
		}
	}
	if (!c.o.hosts_file) {
		fprintf(stderr, "refit fleet %s: --hosts FILE is required\n", sub);
		return ERR_USAGE;
	}
	if (fleet_hosts_load(c.o.hosts_file, &c.hosts, &e) < 0) {
		fprintf(stderr, "refit fleet: %s\n", e.msg);
		return e.kind == ERR_FAILED ? ERR_FAILED : ERR_USAGE;
	}
	if (ctx_start(&c) < 0) {
		fleet_hosts_free(&c.hosts);
		return ERR_FAILED;
	}
	c.progress = c.o.json ? stderr : stdout;
	c.tty = isatty(fileno(c.progress));
	if (is_rollout) {
		code = rollout(&c);
		rollout_report(&c);
	} else {
		code = status_run(&c);
		status_report(&c);
	}
	fflush(stdout);
	ctx_end(&c);
	fleet_hosts_free(&c.hosts);
	return code;
}
