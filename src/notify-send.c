/* Notification delivery: one detached thread per URL, bounded retries, a bounded wait at exit. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "refit/http.h"
#include "refit/log.h"
#include "refit/notify.h"
#include "refit/version.h"

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
	char mx_token[512]; /* matrix: the access token of this delivery's login */
	char mx_txn[48];    /* matrix: the transaction ID's stem (the same on a retry: sent once) */
	bool mx_logged_in;
};

/* What one try of a step came to. */
enum step {
	STEP_SENT,
	STEP_RETRY,   /* no answer, 5xx, 429: worth another try */
	STEP_REFUSED, /* the receiver said no: another try would not help */
	STEP_ABORTED, /* refit is exiting */
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

/*
 * For tests only: REFIT_TEST_NOTIFY_CONNECT_TO (libcurl CONNECT_TO entries,
 * space-separated, e.g. "api.telegram.org:443:127.0.0.1:8443") sends a
 * service's fixed host to a local receiver, and REFIT_TEST_NOTIFY_CA is the CA
 * file its certificate is checked against.
 */
static void test_redirect(CURL *h, struct curl_slist **to)
{
	const char *v = getenv("REFIT_TEST_NOTIFY_CONNECT_TO"), *ca = getenv("REFIT_TEST_NOTIFY_CA");
	char entry[256];

	while (v && *v) {
		size_t n = strcspn(v, " ");
		struct curl_slist *nt;

		if (n && n < sizeof(entry)) {
			memcpy(entry, v, n);
			entry[n] = '\0';
			if ((nt = curl_slist_append(*to, entry)) != NULL)
				*to = nt;
		}
		v += n + (v[n] == ' ');
	}
	if (*to)
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, *to);
	if (ca && *ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca);
}

/* True when an answer of T's service says it was refused despite a 2xx (Slack's and Telegram's {"ok":false}). */
static bool refused(const struct notify_target *t, const struct http_response *r)
{
	json_t *j, *ok;
	bool no;

	if (!(t->kind == NOTIFY_SLACK && t->slack_bot) && t->kind != NOTIFY_TELEGRAM)
		return false;
	j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
	ok = json_object_get(j, "ok");
	no = !json_is_true(ok);
	json_decref(j);
	return no;
}

/*
 * One HTTP request of D's: METHOD to URL with BODY (LEN bytes, NULL: none)
 * of type CTYPE and the extra header lines HDR (NHDR); the answer in *R.
 */
static CURLcode http_once(struct delivery *d, const char *method, const char *url, const char *body, size_t len,
			  const char *ctype, const char (*hdr)[640], size_t nhdr, struct http_response *r, long *status,
			  char errbuf[CURL_ERROR_SIZE])
{
	struct curl_slist *to = NULL, *hdrs = NULL, *nh;
	char ct[128];
	CURL *h = curl_easy_init();
	CURLcode rc = CURLE_OUT_OF_MEMORY;

	*status = 0;
	errbuf[0] = '\0';
	if (!h)
		return rc;
	snprintf(ct, sizeof(ct), "Content-Type: %s", ctype ? ctype : "application/json");
	hdrs = curl_slist_append(NULL, ct);
	if (hdrs && (nh = curl_slist_append(hdrs, "Expect:")) != NULL)
		hdrs = nh;
	for (size_t i = 0; hdrs && i < nhdr; i++)
		if ((nh = curl_slist_append(hdrs, hdr[i])) != NULL)
			hdrs = nh;
	if (!hdrs)
		goto out;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)NOTIFY_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)NOTIFY_CONNECT_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_USERAGENT, refit_user_agent);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	if (strcmp(method, "POST") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	test_redirect(h, &to);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, abort_check);
	if (d->t.has_auth && d->t.kind != NOTIFY_MATRIX) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, d->t.user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, d->t.password);
	}
	http_attach(h, r, NOTIFY_MAX_RESPONSE);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	if (rc != CURLE_OK && !errbuf[0])
		snprintf(errbuf, CURL_ERROR_SIZE, "%s", http_strerror(rc, r, NULL));
	if (r->too_large && rc == CURLE_WRITE_ERROR && *status >= 200 && *status < 300)
		rc = CURLE_OK; /* delivered; only the answer was long */
out:
	curl_slist_free_all(to);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return rc;
}

/* An HTTP try's outcome: sent on 2xx, again on no answer, 5xx or 429; WHY says what went wrong. */
static enum step http_step(CURLcode rc, long status, const char *errbuf, char *why, size_t whylen)
{
	if (rc == CURLE_OK && status >= 200 && status < 300)
		return STEP_SENT;
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		return STEP_ABORTED;
	if (rc != CURLE_OK)
		snprintf(why, whylen, "%s", errbuf);
	else
		snprintf(why, whylen, "HTTP %ld", status);
	return rc == CURLE_OK && status < 500 && status != 429 ? STEP_REFUSED : STEP_RETRY;
}

/* POST body I of D's message (0: body, then more[I-1]). */
static enum step post_step(struct delivery *d, size_t i, char *why, size_t whylen)
{
	const char *body = i == 0 ? d->m.body : d->m.more[i - 1];
	struct http_response r = { 0 };
	char errbuf[CURL_ERROR_SIZE];
	long status;
	CURLcode rc = http_once(d, "POST", d->t.url, body, i == 0 ? d->m.len : strlen(body), d->m.content_type,
				d->m.headers, d->m.nheaders, &r, &status, errbuf);

	if (rc == CURLE_OK && status >= 200 && status < 300 && refused(&d->t, &r))
		status = 400; /* {"ok":false}: refused, not worth asking again */
	http_response_free(&r);
	return http_step(rc, status, errbuf, why, whylen);
}

/* libcurl's upload reader over a mail in memory. */
struct mail_reader {
	const char *p;
	size_t left;
};

static size_t mail_read(char *buf, size_t size, size_t n, void *arg)
{
	struct mail_reader *m = arg;
	size_t k = size * n < m->left ? size * n : m->left;

	memcpy(buf, m->p, k);
	m->p += k;
	m->left -= k;
	return k;
}

/* Mail I of D's message (to recipient items[I]) through libcurl's SMTP: STARTTLS or TLS as the URL says. */
static enum step smtp_step(struct delivery *d, size_t i, char *why, size_t whylen)
{
	const char *body = i == 0 ? d->m.body : d->m.more[i - 1];
	struct mail_reader mr = { body, strlen(body) };
	struct curl_slist *rcpt = NULL, *to = NULL;
	char errbuf[CURL_ERROR_SIZE] = "", addr[160];
	static const char *const mech[] = { NULL, "AUTH=PLAIN", "AUTH=CRAM-MD5", "AUTH=XOAUTH2" };
	CURL *h = curl_easy_init();
	CURLcode rc = CURLE_OUT_OF_MEMORY;
	long code = 0;

	snprintf(addr, sizeof(addr), "<%s>", d->t.items[i]);
	if (h && (rcpt = curl_slist_append(NULL, addr)) != NULL) {
		curl_easy_setopt(h, CURLOPT_URL, d->t.url);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
		curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)NOTIFY_TIMEOUT);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)NOTIFY_CONNECT_TIMEOUT);
		if (d->t.smtp_tls == SMTP_TLS_TRY || d->t.smtp_tls == SMTP_TLS_STARTTLS)
			curl_easy_setopt(h, CURLOPT_USE_SSL,
					 (long)(d->t.smtp_tls == SMTP_TLS_TRY ? CURLUSESSL_TRY : CURLUSESSL_ALL));
		snprintf(addr, sizeof(addr), "<%s>", d->t.from);
		curl_easy_setopt(h, CURLOPT_MAIL_FROM, addr);
		curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
		if (d->t.smtp_auth != SMTP_AUTH_NONE) {
			curl_easy_setopt(h, CURLOPT_USERNAME, d->t.user);
			if (d->t.smtp_auth == SMTP_AUTH_OAUTH2)
				curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, d->t.password);
			else
				curl_easy_setopt(h, CURLOPT_PASSWORD, d->t.password);
			curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS, mech[d->t.smtp_auth]);
		}
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, mail_read);
		curl_easy_setopt(h, CURLOPT_READDATA, &mr);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)mr.left);
		test_redirect(h, &to);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, abort_check);
		rc = curl_easy_perform(h);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	}
	curl_slist_free_all(rcpt);
	curl_slist_free_all(to);
	curl_easy_cleanup(h);
	if (rc == CURLE_OK)
		return STEP_SENT;
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		return STEP_ABORTED;
	snprintf(why, whylen, "%s%s", errbuf[0] ? errbuf : curl_easy_strerror(rc), code >= 500 ? " (refused)" : "");
	/* 5xx is the server's final no (a wrong password, an unknown recipient); 4xx and no answer may pass */
	return code >= 500 || rc == CURLE_LOGIN_DENIED || rc == CURLE_USE_SSL_FAILED ? STEP_REFUSED : STEP_RETRY;
}

/* A Matrix API call of D's: METHOD to the server's PATH with BODY (NULL: "{}"); the answer's JSON in *ANSWER. */
static enum step matrix_call(struct delivery *d, const char *method, const char *path, const char *body,
			     json_t **answer, char *why, size_t whylen)
{
	char url[NOTIFY_MAX_URL + 512], auth[1][640], errbuf[CURL_ERROR_SIZE];
	struct http_response r = { 0 };
	long status;
	CURLcode rc;
	enum step st;

	snprintf(url, sizeof(url), "%s%s", d->t.url, path);
	snprintf(auth[0], sizeof(auth[0]), "Authorization: Bearer %s", d->mx_token);
	rc = http_once(d, method, url, body ? body : (strcmp(method, "GET") ? "{}" : NULL),
		       body ? strlen(body) : 2, "application/json", auth, d->mx_token[0] ? 1 : 0, &r, &status, errbuf);
	st = http_step(rc, status, errbuf, why, whylen);
	if (answer)
		*answer = st == STEP_SENT && r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
	if (st == STEP_SENT && answer && !*answer) {
		snprintf(why, whylen, "HTTP %ld with an answer that is not JSON", status);
		st = STEP_REFUSED;
	}
	explicit_bzero(auth, sizeof(auth));
	http_response_free(&r);
	return st;
}

/* Matrix: log in with m.login.password (when a user is given), and list the joined rooms when none are named. */
static enum step matrix_login_step(struct delivery *d, size_t i, char *why, size_t whylen)
{
	json_t *a = NULL, *rooms;
	enum step st;
	char *body;

	if (d->t.user[0] && !d->mx_logged_in) {
		json_t *b = json_pack("{s:s, s:{s:s, s:s}, s:s}", "type", "m.login.password", "identifier", "type",
				      "m.id.user", "user", d->t.user, "password", d->t.password);

		body = b ? json_dumps(b, JSON_COMPACT) : NULL;
		json_decref(b);
		if (!body)
			return STEP_REFUSED;
		st = matrix_call(d, "POST", "/_matrix/client/r0/login", body, &a, why, whylen);
		explicit_bzero(body, strlen(body));
		free(body);
		if (st != STEP_SENT)
			return st;
		if (!json_is_string(json_object_get(a, "access_token")) ||
		    strlen(json_string_value(json_object_get(a, "access_token"))) >= sizeof(d->mx_token)) {
			json_decref(a);
			snprintf(why, whylen, "the login's answer has no access_token");
			return STEP_REFUSED;
		}
		snprintf(d->mx_token, sizeof(d->mx_token), "%s", json_string_value(json_object_get(a, "access_token")));
		d->mx_logged_in = true;
		json_decref(a);
		a = NULL;
	}
	if (d->t.nitems)
		return STEP_SENT;
	if ((st = matrix_call(d, "GET", "/_matrix/client/r0/joined_rooms", NULL, &a, why, whylen)) != STEP_SENT)
		return st;
	rooms = json_object_get(a, "joined_rooms");
	for (size_t k = 0; k < json_array_size(rooms) && d->t.nitems < NOTIFY_MAX_ITEMS; k++) {
		const char *id = json_string_value(json_array_get(rooms, k));

		if (id && *id == '!' && strlen(id) < sizeof(d->t.items[0]) && !strchr(id, '/'))
			snprintf(d->t.items[d->t.nitems++], sizeof(d->t.items[0]), "%s", id);
	}
	json_decref(a);
	if (!d->t.nitems) {
		snprintf(why, whylen, "the user has joined no room, and the URL names none (?rooms=)");
		return STEP_REFUSED;
	}
	return STEP_SENT;
}

/* Matrix room I: join it (an alias resolves to its ID), then PUT the message with a transaction ID. */
static enum step matrix_room_step(struct delivery *d, size_t i, char *why, size_t whylen)
{
	const char *room = d->t.items[i];
	char path[600], id[256], txn[80];
	json_t *a = NULL;
	enum step st;

	if (notify_matrix_path(room, "x", path, sizeof(path)) < 0)
		return STEP_REFUSED;
	/* POST /join/ROOM: the path's room part, made by the same encoder */
	{
		char *send = strstr(path, "/send/m.room.message/");
		char join[600];

		*send = '\0';
		snprintf(join, sizeof(join), "/_matrix/client/r0/join/%s", path + strlen("/_matrix/client/r0/rooms/"));
		if ((st = matrix_call(d, "POST", join, "{}", &a, why, whylen)) != STEP_SENT)
			return st;
	}
	if (!json_is_string(json_object_get(a, "room_id")) ||
	    strlen(json_string_value(json_object_get(a, "room_id"))) >= sizeof(id)) {
		json_decref(a);
		snprintf(why, whylen, "joining a room answered no room_id");
		return STEP_REFUSED;
	}
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(a, "room_id")));
	json_decref(a);
	snprintf(txn, sizeof(txn), "%s-%zu", d->mx_txn, i);
	if (notify_matrix_path(id, txn, path, sizeof(path)) < 0) {
		snprintf(why, whylen, "the room's ID is too long");
		return STEP_REFUSED;
	}
	st = matrix_call(d, "PUT", path, d->m.body, &a, why, whylen);
	json_decref(a);
	return st;
}

typedef enum step (*step_fn)(struct delivery *d, size_t i, char *why, size_t whylen);

/* Run STEP for item I: NOTIFY_ATTEMPTS tries with waits of 1 s, 2 s; *ATTEMPTS gets the tries made. */
static bool deliver_one(struct delivery *d, step_fn step, size_t i, int *attempts, char *why, size_t whylen)
{
	int attempt;
	bool sent = false;

	for (attempt = 1; attempt <= NOTIFY_ATTEMPTS; attempt++) {
		enum step st;

		if (attempt > 1 && pause_or_abandon(1 << (attempt - 2)))
			break;
		st = step(d, i, why, whylen);
		if (st == STEP_SENT) {
			sent = true;
			break;
		}
		if (st == STEP_ABORTED)
			break;
		if (st == STEP_REFUSED) {
			attempt++; /* the receiver said no: asking again would not help */
			break;
		}
		if (attempt < NOTIFY_ATTEMPTS)
			log_debug("notification to %s: %s; trying again", d->t.name, why);
	}
	*attempts = attempt;
	return sent;
}

/* A delivery thread: each body of the message in turn (Telegram: one per chat; smtp: per recipient; matrix: per room). */
static void *deliver(void *arg)
{
	struct delivery *d = arg;
	char why[CURL_ERROR_SIZE + 64] = "";
	int attempt = 1;
	bool sent = true;

	if (d->t.kind == NOTIFY_MATRIX) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		snprintf(d->mx_txn, sizeof(d->mx_txn), "refit-%lld%09ld-%d", (long long)now.tv_sec, now.tv_nsec,
			 (int)getpid());
		snprintf(d->mx_token, sizeof(d->mx_token), "%s", d->t.token);
		sent = deliver_one(d, matrix_login_step, 0, &attempt, why, sizeof(why));
		for (size_t i = 0; sent && i < d->t.nitems; i++)
			sent = deliver_one(d, matrix_room_step, i, &attempt, why, sizeof(why));
		if (d->mx_logged_in) { /* the login made a device: end it (once, best effort) */
			char ignored[64];

			(void)matrix_call(d, "POST", "/_matrix/client/r0/logout", "{}", NULL, ignored, sizeof(ignored));
		}
	} else {
		step_fn step = d->t.kind == NOTIFY_SMTP ? smtp_step : post_step;

		for (size_t i = 0; sent && i < d->m.nmore + 1; i++)
			sent = deliver_one(d, step, i, &attempt, why, sizeof(why));
	}
	if (sent)
		log_info("notification sent to %s%s", d->t.name, attempt > 1 ? " (after retrying)" : "");
	else if (abandoned())
		log_warn("notification to %s abandoned: refit is exiting%s%s", d->t.name, why[0] ? "; last error: " : "",
			 why);
	else
		log_warn("notification to %s failed after %d attempt%s: %s", d->t.name, attempt - 1,
			 attempt - 1 == 1 ? "" : "s", why);
	explicit_bzero(d->mx_token, sizeof(d->mx_token));
	notify_target_clear(&d->t);
	notify_message_free(&d->m);
	free(d);
	/*
	 * OpenSSL's per-thread state (its error queue after a TLS session) is
	 * otherwise freed only when the thread has exited, which may be after
	 * a command that waited for it (notify_flush) has exited: free it now.
	 */
	OPENSSL_thread_stop();
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

/* Send PAYLOAD (borrowed) to every URL in URLS, each on a thread of its own; TITLE (or NULL) for those without one. */
static void send_payload(const struct strv *urls, const char *title, json_t *payload)
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
		if (title && *title && !d->t.title[0])
			snprintf(d->t.title, sizeof(d->t.title), "%s", title);
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
	send_payload(&cfg->notifications, cfg->notify_title, payload);
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
	send_payload(urls, NULL, payload);
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
