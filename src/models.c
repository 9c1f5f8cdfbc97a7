/* The model updater: /api/tags, a streamed /api/pull, /api/tags again; history, metrics, notifications. */
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "refit/base.h"
#include "refit/http.h"
#include "refit/journal.h"
#include "refit/log.h"
#include "refit/metrics.h"
#include "refit/models.h"
#include "refit/notify.h"
#include "refit/ollama.h"
#include "refit/ops.h"
#include "refit/version.h"

static atomic_bool stop_requested;

void models_request_stop(void)
{
	atomic_store(&stop_requested, true);
}

/* Copy the strings of SRC into DST. */
static int strv_copy(struct strv *dst, const struct strv *src)
{
	dst->n = 0;
	dst->v = calloc(src->n + 1, sizeof(char *));
	if (!dst->v)
		return -1;
	for (size_t i = 0; i < src->n; i++) {
		dst->v[i] = strdup(src->v[i]);
		if (!dst->v[i])
			return -1;
		dst->n++;
	}
	return 0;
}

static void strv_clear(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

int models_settings_copy(struct models_settings *s, const struct refit_config *cfg)
{
	size_t n;

	memset(s, 0, sizeof(*s));
	s->endpoint = strdup(cfg->models_endpoint ? cfg->models_endpoint : "http://127.0.0.1:11434");
	s->state_dir = cfg->state_dir ? strdup(cfg->state_dir) : NULL;
	s->timeout = cfg->models_timeout > 0 ? cfg->models_timeout : 300;
	if (!s->endpoint || (cfg->state_dir && !s->state_dir) || strv_copy(&s->names, &cfg->models_names) < 0 ||
	    strv_copy(&s->notifications, &cfg->notifications) < 0) {
		models_settings_free(s);
		return -1;
	}
	n = strlen(s->endpoint);
	while (n > 0 && s->endpoint[n - 1] == '/')
		s->endpoint[--n] = '\0';
	return 0;
}

void models_settings_free(struct models_settings *s)
{
	if (!s)
		return;
	free(s->endpoint);
	free(s->state_dir);
	strv_clear(&s->names);
	strv_clear(&s->notifications);
	s->endpoint = s->state_dir = NULL;
}

/* Abort a transfer once a stop is requested. */
static int xfer_check(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	return atomic_load(&stop_requested) ? 1 : 0;
}

/* A handle for URL with refit's bounds: connect timeout, no data for TIMEOUT seconds aborts. */
static CURL *handle_for(const char *url, long timeout, char errbuf[CURL_ERROR_SIZE])
{
	CURL *h = curl_easy_init();

	if (!h)
		return NULL;
	errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout < MODELS_CONNECT_TIMEOUT ? timeout : (long)MODELS_CONNECT_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, timeout);
	curl_easy_setopt(h, CURLOPT_USERAGENT, refit_user_agent);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xfer_check);
	return h;
}

/* Describe a failed transfer; a stall says so in words. */
static void transfer_error(char *dst, size_t cap, const char *what, CURLcode rc, const struct http_response *r,
			   const char *errbuf, long timeout)
{
	if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(dst, cap, "%s: timed out (no data for %ld s, or no connection within %d s)", what, timeout,
			 MODELS_CONNECT_TIMEOUT);
	else if (rc == CURLE_ABORTED_BY_CALLBACK)
		snprintf(dst, cap, "%s: abandoned (refit is stopping)", what);
	else
		snprintf(dst, cap, "%s: %s", what, http_strerror(rc, r, errbuf));
}

/*
 * GET /api/tags into RET. 0, or -1 with ERR filled; *UNREACHABLE is set when
 * the endpoint could not be reached at all.
 */
static int fetch_tags(const struct models_settings *s, struct ollama_tags *ret, bool *unreachable, char *err,
		      size_t errlen)
{
	struct http_response r = { 0 };
	char url[2200], errbuf[CURL_ERROR_SIZE];
	const char *why;
	CURL *h;
	CURLcode rc;
	int out = -1;

	memset(ret, 0, sizeof(*ret));
	*unreachable = false;
	snprintf(url, sizeof(url), "%s/api/tags", s->endpoint);
	h = handle_for(url, s->timeout, errbuf);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	curl_easy_setopt(h, CURLOPT_TIMEOUT, s->timeout + MODELS_CONNECT_TIMEOUT);
	http_attach(h, &r, OLLAMA_MAX_TAGS);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
	if (rc != CURLE_OK) {
		*unreachable = http_unreachable(rc) && r.status == 0;
		transfer_error(err, errlen, *unreachable ? "endpoint unreachable: GET /api/tags" : "GET /api/tags", rc,
			       &r, errbuf, s->timeout);
	} else if (r.status != 200) {
		snprintf(err, errlen, "GET /api/tags: HTTP status %ld", r.status);
	} else if (ollama_tags_parse(r.body, r.len, ret, &why) < 0) {
		snprintf(err, errlen, "GET /api/tags: %s", why);
	} else {
		out = 0;
	}
	http_response_free(&r);
	curl_easy_cleanup(h);
	return out;
}

/* State of one pull's transfer. */
struct pull {
	CURL *h;
	const char *name;
	struct ollama_stream stream;
	char last_status[128];
	int last_tenth; /* last download progress logged, in tenths */
};

/* Log progress at debug level: each new status, and downloads by tenths. */
static void on_progress(void *ctx, const struct ollama_progress *p)
{
	struct pull *pl = ctx;

	if (p->is_error)
		return;
	if (strcmp(p->status, pl->last_status) != 0) {
		snprintf(pl->last_status, sizeof(pl->last_status), "%s", p->status);
		pl->last_tenth = -1;
		log_debug("model %s: %s", pl->name, p->status);
	}
	if (p->total > 0 && p->completed >= 0 && p->completed <= p->total) {
		int tenth = (int)(p->completed * 10 / p->total);

		if (tenth != pl->last_tenth) {
			pl->last_tenth = tenth;
			log_debug("model %s: %s %lld of %lld bytes", pl->name, p->digest[0] ? p->digest : p->status,
				  p->completed, p->total);
		}
	}
}

/* Feed each chunk to the line parser; a failed stream ends the transfer. */
static size_t pull_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct pull *pl = userdata;
	size_t n = size * nmemb;

	if (ollama_stream_feed(&pl->stream, ptr, n) == OLLAMA_STREAM_FAILED)
		return 0;
	return n;
}

/* Headers are not needed; their size is bounded all the same. */
static size_t pull_header(char *buf, size_t size, size_t nitems, void *userdata)
{
	size_t *total = userdata, n = size * nitems;

	*total += n;
	return *total > HTTP_MAX_HEADER_BYTES ? 0 : n;
}

/* POST /api/pull for NAME, the answer read line by line. 0 on success, else -1 with ERR. */
static int pull_model(const struct models_settings *s, const char *name, char *err, size_t errlen)
{
	struct pull pl = { .name = name, .last_tenth = -1 };
	struct curl_slist *hdrs = NULL, *nh;
	char url[2200], errbuf[CURL_ERROR_SIZE], *body = NULL;
	size_t hdr_total = 0;
	json_t *req = json_pack("{s:s, s:b}", "model", name, "stream", 1);
	long status = 0;
	CURLcode rc;
	int out = -1;

	snprintf(url, sizeof(url), "%s/api/pull", s->endpoint);
	ollama_stream_init(&pl.stream, on_progress, &pl);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (hdrs && (nh = curl_slist_append(hdrs, "Expect:")) != NULL)
		hdrs = nh;
	pl.h = body && hdrs ? handle_for(url, s->timeout, errbuf) : NULL;
	if (!pl.h) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	curl_easy_setopt(pl.h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(pl.h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(pl.h, CURLOPT_WRITEFUNCTION, pull_write);
	curl_easy_setopt(pl.h, CURLOPT_WRITEDATA, &pl);
	curl_easy_setopt(pl.h, CURLOPT_HEADERFUNCTION, pull_header);
	curl_easy_setopt(pl.h, CURLOPT_HEADERDATA, &hdr_total);
	rc = curl_easy_perform(pl.h);
	curl_easy_getinfo(pl.h, CURLINFO_RESPONSE_CODE, &status);
	if (pl.stream.state == OLLAMA_STREAM_FAILED) {
		if (status >= 300)
			snprintf(err, errlen, "pull: HTTP status %ld: %s", status, pl.stream.error);
		else
			snprintf(err, errlen, "pull: %s", pl.stream.error);
	} else if (rc != CURLE_OK && !(rc == CURLE_PARTIAL_FILE && pl.stream.state == OLLAMA_STREAM_SUCCESS)) {
		transfer_error(err, errlen, "pull", rc, NULL, hdr_total > HTTP_MAX_HEADER_BYTES ? "headers too large" : errbuf,
			       s->timeout);
	} else if (status < 200 || status >= 300) {
		ollama_stream_end(&pl.stream); /* an error body is one line, perhaps without a newline */
		snprintf(err, errlen, "pull: HTTP status %ld%s%s", status, pl.stream.remote_error ? ": " : "",
			 pl.stream.remote_error ? pl.stream.error : "");
	} else if (ollama_stream_end(&pl.stream) != OLLAMA_STREAM_SUCCESS) {
		snprintf(err, errlen, "pull: %s", pl.stream.error);
	} else {
		out = 0;
	}
done:
	ollama_stream_free(&pl.stream);
	curl_easy_cleanup(pl.h);
	curl_slist_free_all(hdrs);
	free(body);
	return out;
}

/* Record M (updated or failed) in the history. */
static void record(const struct models_settings *s, const struct model_result *m, const char *started)
{
	struct refit_err e = { 0 };
	char id[17], now[32];
	json_t *rec;

	if (!s->state_dir || strcmp(m->status, "up-to-date") == 0 || m->abandoned)
		return; /* nothing happened, or refit cut it short: not the model's outcome */
	journal_new_id(id);
	iso_now(now);
	rec = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:s, s:s}", "id", id, "kind", "model", "model", m->name,
			"endpoint", s->endpoint, "old_digest", m->old_digest, "new_digest", m->new_digest, "outcome",
			m->status, "started", started, "finished", now);
	if (rec && m->error[0])
		json_object_set_new(rec, "error", json_string(m->error));
	if (!rec || journal_append(s->state_dir, rec, &e) < 0)
		log_error("model %s: not recorded in the history: %s", m->name, rec ? e.msg : "out of memory");
	json_decref(rec);
}

/* Set M's digest slot from the model's entry in T. */
static void take_digest(char **slot, const struct ollama_tags *t, const char *name)
{
	const struct ollama_model *om = ollama_tags_find(t, name);

	free(*slot);
	*slot = om && om->digest ? strdup(om->digest) : NULL;
}

/* One model: tags before (PROBE for the first), pull, tags after. */
static void run_one(const struct models_settings *s, const char *name, const struct ollama_tags *probe,
		    struct model_result *m)
{
	struct ollama_tags before = { 0 }, after = { 0 };
	const struct ollama_model *was;
	struct timespec t0;
	char started[32];
	bool unreachable;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	iso_now(started);
	m->status = "failed";
	if (atomic_load(&stop_requested)) {
		snprintf(m->error, sizeof(m->error), "not pulled: refit is stopping");
		goto out;
	}
	if (!probe && fetch_tags(s, &before, &unreachable, m->error, sizeof(m->error)) < 0)
		goto out;
	if (!probe)
		probe = &before;
	was = ollama_tags_find(probe, name);
	take_digest(&m->old_digest, probe, name);
	if (was && !was->digest)
		log_warn("model %s: the endpoint lists it without a valid digest", name);
	log_info("model %s: pulling from %s", name, s->endpoint);
	if (pull_model(s, name, m->error, sizeof(m->error)) < 0)
		goto out;
	if (fetch_tags(s, &after, &unreachable, m->error, sizeof(m->error)) < 0)
		goto out;
	take_digest(&m->new_digest, &after, name);
	if (!ollama_tags_find(&after, name))
		snprintf(m->error, sizeof(m->error), "the pull succeeded but /api/tags does not list the model");
	else if (!m->new_digest)
		snprintf(m->error, sizeof(m->error), "/api/tags lists the model without a valid digest");
	else if (m->old_digest && strcmp(m->old_digest, m->new_digest) == 0)
		m->status = "up-to-date";
	else
		m->status = "updated";
	if (strcmp(m->status, "failed") != 0)
		m->error[0] = '\0';
out:
	m->seconds = mono_since(&t0);
	m->abandoned = strcmp(m->status, "failed") == 0 && atomic_load(&stop_requested);
	if (strcmp(m->status, "failed") == 0)
		log_error("model %s: failed: %s", name, m->error);
	else
		log_info("model %s: %s (%.19s -> %.19s)", name, m->status, m->old_digest ? m->old_digest : "none",
			 m->new_digest ? m->new_digest : "none");
	record(s, m, started);
	ollama_tags_free(&before);
	ollama_tags_free(&after);
}

int models_run(const struct models_settings *s, struct models_result *res, struct refit_err *e)
{
	struct ollama_tags probe = { 0 };
	char probe_err[512] = "";
	unsigned long updated = 0, failed = 0;
	bool reached = true, unreachable = false;
	json_t *j;

	memset(res, 0, sizeof(*res));
	res->v = calloc(s->names.n + 1, sizeof(*res->v));
	if (!res->v)
		return err_set(e, ERR_FAILED, "out of memory");
	if (s->names.n && fetch_tags(s, &probe, &unreachable, probe_err, sizeof(probe_err)) < 0)
		reached = false;
	res->unreachable = unreachable;
	for (size_t i = 0; i < s->names.n; i++) {
		struct model_result *m = &res->v[res->n++];
		char started[32];

		m->name = strdup(s->names.v[i]);
		if (!m->name) {
			res->n--;
			models_result_free(res);
			return err_set(e, ERR_FAILED, "out of memory");
		}
		if (reached) {
			run_one(s, m->name, i == 0 ? &probe : NULL, m);
		} else {
			/* The first /api/tags failed: nothing is pulled. */
			iso_now(started);
			m->status = "failed";
			m->abandoned = atomic_load(&stop_requested);
			snprintf(m->error, sizeof(m->error), "%s", probe_err);
			log_error("model %s: failed: %s", m->name, m->error);
			record(s, m, started);
		}
		updated += strcmp(m->status, "updated") == 0;
		failed += strcmp(m->status, "failed") == 0;
	}
	ollama_tags_free(&probe);
	metrics_models(res->n, updated, failed);
	/* Models cut short by SIGTERM say nothing about themselves: not notified. */
	j = models_result_json(s, res);
	for (size_t i = res->n; j && i-- > 0;)
		if (res->v[i].abandoned)
			json_array_remove(json_object_get(j, "models"), i);
	notify_models(&s->notifications, j);
	json_decref(j);
	return 0;
}

int models_exit_code(const struct models_result *res)
{
	if (res->unreachable)
		return ERR_UNREACHABLE;
	for (size_t i = 0; i < res->n; i++)
		if (strcmp(res->v[i].status, "failed") == 0)
			return ERR_FAILED;
	return 0;
}

json_t *models_result_json(const struct models_settings *s, const struct models_result *res)
{
	json_t *list = json_array();

	for (size_t i = 0; list && i < res->n; i++) {
		const struct model_result *m = &res->v[i];
		json_t *o = json_pack("{s:s, s:s, s:s?, s:s?, s:f}", "name", m->name, "status", m->status, "old_digest",
				      m->old_digest, "new_digest", m->new_digest, "seconds",
				      (double)(long)(m->seconds * 1000) / 1000);

		if (o && m->error[0])
			json_object_set_new(o, "error", json_string(m->error));
		if (o)
			json_array_append_new(list, o);
	}
	return list ? json_pack("{s:s, s:o}", "endpoint", s->endpoint, "models", list) : NULL;
}

void models_result_free(struct models_result *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->n; i++) {
		free(res->v[i].name);
		free(res->v[i].old_digest);
		free(res->v[i].new_digest);
	}
	free(res->v);
	res->v = NULL;
	res->n = 0;
}

/* The daemon's model job. */
struct models_job {
	struct refit_config *cfg;
	pthread_rwlock_t *cfg_lock;
	struct ops *ops;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* waits on CLOCK_MONOTONIC */
	bool stopping;
};

/* Wait SECONDS or until the job stops; true when stopping. */
static bool job_sleep(struct models_job *job, long seconds)
{
	struct timespec until;
	bool stopping;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += seconds;
	pthread_mutex_lock(&job->lock);
	while (!job->stopping && pthread_cond_timedwait(&job->wake, &job->lock, &until) == 0)
		;
	stopping = job->stopping;
	pthread_mutex_unlock(&job->lock);
	return stopping;
}

/* A pass now, then one every models.interval; the settings are copied afresh for each. */
static void *job_main(void *arg)
{
	struct models_job *job = arg;

	for (;;) {
		struct models_settings s;
		struct models_result res;
		struct refit_err e = { 0 };
		long interval;
		int copied;

		pthread_rwlock_rdlock(job->cfg_lock);
		copied = models_settings_copy(&s, job->cfg);
		interval = job->cfg->models_interval;
		pthread_rwlock_unlock(job->cfg_lock);
		if (copied < 0) {
			log_error("model pass: out of memory");
		} else if (s.names.n == 0) {
			log_debug("model pass: no models configured");
		} else if (ops_paused(job->ops)) {
			metrics_models_skipped();
			log_info("model pass skipped: updates are paused");
		} else if (models_run(&s, &res, &e) < 0) {
			log_error("model pass: %s", e.msg);
		} else {
			size_t up = 0, failed = 0;

			for (size_t i = 0; i < res.n; i++) {
				up += strcmp(res.v[i].status, "updated") == 0;
				failed += strcmp(res.v[i].status, "failed") == 0;
			}
			if (atomic_load(&stop_requested))
				log_info("model pass cut short: refit is stopping");
			else
				log_info("model pass: %zu model%s, %zu updated, %zu failed; next in %ld s", res.n,
					 res.n == 1 ? "" : "s", up, failed, interval);
			models_result_free(&res);
		}
		if (copied == 0)
			models_settings_free(&s);
		if (job_sleep(job, interval > 0 ? interval : 86400))
			break;
	}
	return NULL;
}

int models_job_start(struct models_job **ret, struct refit_config *cfg, pthread_rwlock_t *cfg_lock, struct ops *ops,
		     struct refit_err *e)
{
	struct models_job *job = calloc(1, sizeof(*job));
	pthread_condattr_t ca;

	if (!job)
		return err_set(e, ERR_FAILED, "out of memory");
	job->cfg = cfg;
	job->cfg_lock = cfg_lock;
	job->ops = ops;
	pthread_mutex_init(&job->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&job->wake, &ca);
	pthread_condattr_destroy(&ca);
	atomic_store(&stop_requested, false);
	if (pthread_create(&job->thread, NULL, job_main, job) != 0) {
		pthread_mutex_destroy(&job->lock);
		pthread_cond_destroy(&job->wake);
		free(job);
		return err_set(e, ERR_FAILED, "cannot start the model job's thread");
	}
	*ret = job;
	return 0;
}

void models_job_stop(struct models_job *job)
{
	if (!job)
		return;
	models_request_stop();
	pthread_mutex_lock(&job->lock);
	job->stopping = true;
	pthread_cond_broadcast(&job->wake);
	pthread_mutex_unlock(&job->lock);
	pthread_join(job->thread, NULL);
	pthread_mutex_destroy(&job->lock);
	pthread_cond_destroy(&job->wake);
	free(job);
}
