/* Notification delivery: one detached thread per URL, bounded retries, a bounded wait at exit. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "refit/http.h"
#include "refit/log.h"
#include "refit/notify.h"

#define NOTIFY_CONNECT_TIMEOUT 5
#define NOTIFY_MAX_RESPONSE (64 * 1024)
#define NOTIFY_ABANDON_WAIT 5 /* seconds abandoned deliveries get to stop */

/* Deliveries in flight, and the signal that tells them to give up. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* inflight went down, or abandon went up; waits on CLOCK_MONOTONIC */
	pthread_once_t once;
	unsigned inflight;
	bool abandon;
} sender = { .lock = PTHREAD_MUTEX_INITIALIZER, .once = PTHREAD_ONCE_INIT };

/* Make the condition variable wait on the monotonic clock (a wall-clock jump bounds nothing). */
static void sender_init(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&sender.changed, &a);
	pthread_condattr_destroy(&a);
}

/* SECONDS from now on the clock the condition variable waits on. */
static struct timespec deadline(int seconds)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += seconds;
	return ts;
}

/* One URL's message, owned by its thread. */
struct delivery {
	struct notify_target t;
	struct notify_message m;
};

static bool abandoned(void)
{
	bool a;

	pthread_mutex_lock(&sender.lock);
	a = sender.abandon;
	pthread_mutex_unlock(&sender.lock);
	return a;
}

/* libcurl's progress callback: a non-zero return aborts the transfer. */
static int abort_check(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	return abandoned();
}

/* Wait SECONDS unless the deliveries are abandoned first; true when they are. */
static bool pause_or_abandon(int seconds)
{
	struct timespec until = deadline(seconds);
	bool a;

	pthread_mutex_lock(&sender.lock);
	while (!sender.abandon && pthread_cond_timedwait(&sender.changed, &sender.lock, &until) != ETIMEDOUT)
		;
	a = sender.abandon;
	pthread_mutex_unlock(&sender.lock);
	return a;
}

/* POST D's message once; *STATUS gets the HTTP status (0 without an answer). */
static CURLcode post_once(struct delivery *d, long *status, char errbuf[CURL_ERROR_SIZE])
{
	struct http_response r = { 0 };
	struct curl_slist *hdrs = NULL, *nh;
	char ct[128];
	CURL *h = curl_easy_init();
	CURLcode rc = CURLE_OUT_OF_MEMORY;

	*status = 0;
	errbuf[0] = '\0';
	if (!h)
		return rc;
	snprintf(ct, sizeof(ct), "Content-Type: %s", d->m.content_type);
	hdrs = curl_slist_append(NULL, ct);
	if (hdrs && (nh = curl_slist_append(hdrs, "Expect:")) != NULL)
		hdrs = nh;
	for (size_t i = 0; hdrs && i < d->m.nheaders; i++)
		if ((nh = curl_slist_append(hdrs, d->m.headers[i])) != NULL)
			hdrs = nh;
	if (!hdrs)
		goto out;
	curl_easy_setopt(h, CURLOPT_URL, d->t.url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)NOTIFY_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)NOTIFY_CONNECT_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "refit/" REFIT_VERSION);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, d->m.body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)d->m.len);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, abort_check);
	if (d->t.has_auth) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, d->t.user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, d->t.password);
	}
	http_attach(h, &r, NOTIFY_MAX_RESPONSE);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	if (rc != CURLE_OK && !errbuf[0])
		snprintf(errbuf, CURL_ERROR_SIZE, "%s", http_strerror(rc, &r, NULL));
	if (r.too_large && rc == CURLE_WRITE_ERROR && *status >= 200 && *status < 300)
		rc = CURLE_OK; /* delivered; only the answer was long */
out:
	curl_slist_free_all(hdrs);
	http_response_free(&r);
	curl_easy_cleanup(h);
	return rc;
}

/* A delivery thread: NOTIFY_ATTEMPTS tries with waits of 1 s, 2 s; logs the outcome. */
static void *deliver(void *arg)
{
	struct delivery *d = arg;
	char errbuf[CURL_ERROR_SIZE], why[CURL_ERROR_SIZE + 32] = "";
	int attempt;
	bool sent = false;

	for (attempt = 1; attempt <= NOTIFY_ATTEMPTS; attempt++) {
		long status;
		CURLcode rc;

		if (attempt > 1 && pause_or_abandon(1 << (attempt - 2)))
			break;
		rc = post_once(d, &status, errbuf);
		if (rc == CURLE_OK && status >= 200 && status < 300) {
			sent = true;
			break;
		}
		if (rc == CURLE_ABORTED_BY_CALLBACK)
			break;
		if (rc != CURLE_OK)
			snprintf(why, sizeof(why), "%s", errbuf);
		else
			snprintf(why, sizeof(why), "HTTP %ld", status);
		if (rc == CURLE_OK && status < 500 && status != 429) {
			attempt++; /* the receiver said no: asking again would not help */
			break;
		}
		if (attempt < NOTIFY_ATTEMPTS)
			log_debug("notification to %s: %s; trying again", d->t.name, why);
	}
	if (sent)
		log_info("notification sent to %s%s", d->t.name, attempt > 1 ? " (after retrying)" : "");
	else if (abandoned())
		log_warn("notification to %s abandoned: refit is exiting%s%s", d->t.name, why[0] ? "; last error: " : "",
			 why);
	else
		log_warn("notification to %s failed after %d attempt%s: %s", d->t.name, attempt - 1,
			 attempt - 1 == 1 ? "" : "s", why);
	notify_target_clear(&d->t);
	notify_message_free(&d->m);
	free(d);
	pthread_mutex_lock(&sender.lock); /* the thread's last use of anything shared */
	sender.inflight--;
	pthread_cond_broadcast(&sender.changed);
	pthread_mutex_unlock(&sender.lock);
	return NULL;
}

/* Start a detached delivery thread for D, which it then owns; false when it could not start. */
static bool start_delivery(struct delivery *d)
{
	pthread_attr_t attr;
	pthread_t th;
	bool ok;

	pthread_once(&sender.once, sender_init);
	pthread_mutex_lock(&sender.lock);
	if (sender.inflight >= NOTIFY_MAX_INFLIGHT) {
		pthread_mutex_unlock(&sender.lock);
		log_warn("notification to %s dropped: %d deliveries are already in flight", d->t.name,
			 NOTIFY_MAX_INFLIGHT);
		return false;
	}
	sender.inflight++;
	pthread_mutex_unlock(&sender.lock);
	ok = pthread_attr_init(&attr) == 0;
	if (ok) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		ok = pthread_create(&th, &attr, deliver, d) == 0;
		pthread_attr_destroy(&attr);
	}
	if (!ok) {
		log_warn("notification to %s dropped: cannot start a thread", d->t.name);
		pthread_mutex_lock(&sender.lock);
		sender.inflight--;
		pthread_cond_broadcast(&sender.changed);
		pthread_mutex_unlock(&sender.lock);
	}
	return ok;
}

/* Send PAYLOAD (borrowed) to every URL in URLS, each on a thread of its own. */
static void send_payload(const struct strv *urls, json_t *payload)
{
	for (size_t i = 0; i < urls->n; i++) {
		struct delivery *d = calloc(1, sizeof(*d));
		const char *why = NULL;

		if (!d) {
			log_warn("notifications: out of memory");
			break;
		}
		if (notify_url_parse(urls->v[i], &d->t, &why) < 0) {
			log_warn("notifications: item %zu: %s", i + 1, why); /* checked at load: not reached */
			free(d);
			continue;
		}
		if (notify_render(&d->t, payload, &d->m) < 0) {
			log_warn("notification to %s: cannot build the message", d->t.name);
		} else if (start_delivery(d)) {
			continue; /* the thread owns it now */
		}
		notify_target_clear(&d->t);
		notify_message_free(&d->m);
		free(d);
	}
}

/* This host's name into HOST (CAP bytes), "unknown" when it has none. */
static void host_name(char *host, size_t cap)
{
	host[0] = '\0';
	if (gethostname(host, cap - 1) < 0 || !host[0])
		snprintf(host, cap, "unknown");
	host[cap - 1] = '\0';
}

void notify_pass(const struct refit_config *cfg, const char *kind, const char *op_id, json_t *result)
{
	char host[256];
	json_t *payload;

	if (!cfg->notifications.n || !result)
		return;
	host_name(host, sizeof(host));
	payload = notify_payload(host, kind, op_id, result);
	if (!payload)
		return; /* nothing changed or failed */
	send_payload(&cfg->notifications, payload);
	json_decref(payload);
}

void notify_models(const struct strv *urls, json_t *result)
{
	char host[256];
	json_t *payload;

	if (!urls->n || !result)
		return;
	host_name(host, sizeof(host));
	payload = notify_models_payload(host, result);
	if (!payload)
		return; /* every model up to date */
	send_payload(urls, payload);
	json_decref(payload);
}

void notify_flush(int timeout)
{
	struct timespec until = deadline(timeout);

	pthread_once(&sender.once, sender_init);
	pthread_mutex_lock(&sender.lock);
	if (sender.inflight) {
		while (sender.inflight && pthread_cond_timedwait(&sender.changed, &sender.lock, &until) != ETIMEDOUT)
			;
	}
	if (sender.inflight) {
		unsigned n = sender.inflight;

		sender.abandon = true;
		pthread_cond_broadcast(&sender.changed);
		pthread_mutex_unlock(&sender.lock);
		log_warn("%u notification%s not delivered within %d s; giving up", n, n == 1 ? "" : "s", timeout);
		pthread_mutex_lock(&sender.lock);
		until = deadline(NOTIFY_ABANDON_WAIT);
		while (sender.inflight && pthread_cond_timedwait(&sender.changed, &sender.lock, &until) != ETIMEDOUT)
			;
	}
	sender.abandon = false;
	pthread_mutex_unlock(&sender.lock);
}
