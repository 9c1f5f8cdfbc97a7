/* Management API: routes, bearer auth, bounded bodies, JSON answers. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/api-request.h"
#include "refit/api.h"
#include "refit/check.h"
#include "refit/hold.h"
#include "refit/journal.h"
#include "refit/log.h"
#include "refit/metrics.h"
#include "daemon-ui-internal.h"
#include "refit/version.h"

#define API_CONNECTIONS 128
#define API_PER_IP 64
#define API_TIMEOUT 15       /* seconds a connection may stay idle */
#define API_SYNC_TIMEOUT 3600 /* POST /v1/update waits at most this long */
#define AUTH_SLOTS 64
#define AUTH_FREE_FAILS 5    /* failed attempts per address before answers slow down */

struct auth_slot {
	char addr[INET6_ADDRSTRLEN];
	unsigned fails;
	time_t last;
};

/*
 * One open connection, for the request deadline: a request must be complete
 * (headers and body) within API_TIMEOUT of the connection opening or of the
 * previous answer, however slowly its bytes trickle in.
 */
struct conn_slot {
	bool used;
	bool waiting; /* for a request to be complete */
	int fd;
	time_t since;
};

struct api {
	struct MHD_Daemon *mhd;
	pthread_mutex_t conn_lock;
	struct conn_slot conns[API_CONNECTIONS];
	pthread_t watchdog;
	bool watchdog_started;
	atomic_bool stopping;
	const struct refit_config *cfg;
	pthread_rwlock_t *cfg_lock; /* read side held while a request uses CFG */
	struct ops *ops;
	unsigned char token_hash[32];
	bool has_token;
	pthread_mutex_t auth_lock;
	struct auth_slot slots[AUTH_SLOTS];
	struct ui *ui; /* the dashboard */
	pthread_mutex_t reg_lock;  /* one GET /api/v1/containers pass at a time, with REG */
	struct registry *reg;      /* kept across those passes: connections and tokens */
	struct engine *en;         /* and its engine connection, until a pass fails (docker_host read anew then) */
};

/* Per-request state: the body as it arrives. */
struct req {
	char *body;
	size_t len;
	bool too_large;
};

/* Queue a response with BODY (copied) and status CODE. */
/* Answer BODY; TIMING, when given, is a Server-Timing header. */
static enum MHD_Result reply_timed(struct MHD_Connection *c, unsigned code, const char *type, const char *body,
				   const char *timing)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (timing)
		MHD_add_response_header(r, "Server-Timing", timing);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type, const char *body)
{
	return reply_timed(c, code, type, body, NULL);
}

/*
 * Answer JSON (stolen). CHECK_MS >= 0: a Server-Timing header says how long
 * gathering it took and how long its encoding did (as the dashboard's page
 * says its own, for make bench-daemon).
 */
static enum MHD_Result reply_json_timed(struct MHD_Connection *c, unsigned code, json_t *j, double check_ms)
{
	struct timespec t0;
	char *s, timing[96];
	enum MHD_Result ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s)
		return reply(c, 500, "application/json", "{\"error\":\"out of memory\"}\n");
	snprintf(timing, sizeof(timing), "check;dur=%.2f, encode;dur=%.3f", check_ms, mono_since(&t0) * 1000);
	ret = reply_timed(c, code, "application/json", s, check_ms >= 0 ? timing : NULL);
	free(s);
	return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned code, json_t *j)
{
	return reply_json_timed(c, code, j, -1);
}

/* Answer {"error": MSG}; bytes of MSG outside printable ASCII (it may quote the client) become '?'. */
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned code, const char *msg)
{
	char safe[512];
	size_t i;

	for (i = 0; msg[i] && i < sizeof(safe) - 1; i++)
		safe[i] = (unsigned char)msg[i] >= 0x20 && (unsigned char)msg[i] < 0x7f ? msg[i] : '?';
	safe[i] = '\0';
	return reply_json(c, code, json_pack("{s:s}", "error", safe));
}

/*
 * Decode %HH escapes in a path or query value, in place, but leave %00 as it
 * is: a NUL would cut the C string short and change what the request names.
 */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char *w = s;

	(void)cls;
	(void)c;
	for (const char *r = s; *r; r++) {
		unsigned v;

		if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2]) &&
		    sscanf(r + 1, "%2x", &v) == 1 && v != 0) {
			*w++ = (char)v;
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

/* The connection's slot (see conn_slot), or NULL. */
static struct conn_slot *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* Mark C's request complete (WAITING false) or its connection ready for the next one. */
static void conn_mark(struct api *a, struct MHD_Connection *c, bool waiting)
{
	struct conn_slot *slot = conn_of(c);

	if (!slot)
		return;
	pthread_mutex_lock(&a->conn_lock);
	slot->waiting = waiting;
	slot->since = mono_s();
	pthread_mutex_unlock(&a->conn_lock);
}

/* libmicrohttpd's connection callback: a slot from open to close. */
static void connection_event(void *cls, struct MHD_Connection *c, void **socket_context,
			     enum MHD_ConnectionNotificationCode toe)
{
	struct api *a = cls;

	pthread_mutex_lock(&a->conn_lock);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

		for (size_t i = 0; ci && i < API_CONNECTIONS; i++) {
			if (!a->conns[i].used) {
				a->conns[i] = (struct conn_slot){ .used = true, .waiting = true, .fd = ci->connect_fd,
								  .since = mono_s() };
				*socket_context = &a->conns[i];
				break;
			}
		}
	} else if (*socket_context) {
		((struct conn_slot *)*socket_context)->used = false;
		*socket_context = NULL;
	}
	pthread_mutex_unlock(&a->conn_lock);
}

/* Cut connections whose request is not complete within API_TIMEOUT (slow clients holding threads). */
static void *conn_watchdog(void *arg)
{
	struct api *a = arg;

	while (!atomic_load(&a->stopping)) {
		time_t now = mono_s();

		pthread_mutex_lock(&a->conn_lock);
		for (size_t i = 0; i < API_CONNECTIONS; i++) {
			struct conn_slot *slot = &a->conns[i];

			if (slot->used && slot->waiting && now - slot->since > API_TIMEOUT) {
				shutdown(slot->fd, SHUT_RDWR); /* its thread sees the end and closes it */
				slot->since = now;
			}
		}
		pthread_mutex_unlock(&a->conn_lock);
		usleep(250000);
	}
	return NULL;
}

/* SHA-256 of S, for constant-time comparison of tokens of any length. */
static void token_hash(const char *s, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	EVP_Digest(s, len, out, &n, EVP_sha256(), NULL);
}

/* The client's address as text. */
static void client_addr(struct MHD_Connection *c, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	buf[0] = '\0';
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf, (socklen_t)len);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf, (socklen_t)len);
}

/* Failed attempts from ADDR recently (and count this one when FAILED). */
static unsigned auth_failures(struct api *a, const char *addr, bool failed)
{
	time_t now = time(NULL);
	struct auth_slot *slot = NULL, *oldest = &a->slots[0];
	unsigned n;

	pthread_mutex_lock(&a->auth_lock);
	for (int i = 0; i < AUTH_SLOTS; i++) {
		if (strcmp(a->slots[i].addr, addr) == 0)
			slot = &a->slots[i];
		if (a->slots[i].last < oldest->last)
			oldest = &a->slots[i];
	}
	if (!slot && failed) {
		slot = oldest;
		snprintf(slot->addr, sizeof(slot->addr), "%s", addr);
		slot->fails = 0;
	}
	if (slot && now - slot->last > 60)
		slot->fails = 0; /* a minute of quiet forgives */
	if (slot && failed) {
		slot->fails++;
		slot->last = now;
	}
	n = slot ? slot->fails : 0;
	pthread_mutex_unlock(&a->auth_lock);
	return n;
}

/* Is TOKEN (NULL: none given) the API token? Repeated failures are answered slowly. */
bool api_token_ok(struct api *a, struct MHD_Connection *c, const char *token)
{
	unsigned char got[32];
	char addr[INET6_ADDRSTRLEN];
	unsigned fails;

	if (token) {
		bool ok;

		token_hash(token, strlen(token), got);
		pthread_mutex_lock(&a->auth_lock); /* a reload may be replacing the token */
		ok = a->has_token && CRYPTO_memcmp(got, a->token_hash, sizeof(got)) == 0;
		pthread_mutex_unlock(&a->auth_lock);
		if (ok)
			return true;
	}
	client_addr(c, addr, sizeof(addr));
	fails = auth_failures(a, addr, true);
	if (fails > AUTH_FREE_FAILS)
		sleep(fails - AUTH_FREE_FAILS > 5 ? 5 : fails - AUTH_FREE_FAILS);
	log_warn("api: unauthorized request from %s", addr);
	return false;
}

/* Is the request's bearer token right? */
bool api_authorized(struct api *a, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");

	return api_token_ok(a, c, h && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL);
}

/* GET /api/v1/containers: as `refit status --json`. */
json_t *api_containers_json(struct api *a, char *err, size_t errlen)
{
	struct check_result res;
	struct refit_err e = { 0 };
	json_t *out = NULL;

	pthread_mutex_lock(&a->reg_lock);
	if ((!a->en && engine_open(&a->en, a->cfg->docker_host, &e) < 0) ||
	    (!a->reg && registry_new(&a->reg, a->cfg, &e) < 0) || check_run(a->en, a->reg, a->cfg, NULL, 0, &res, &e) < 0) {
		snprintf(err, errlen, "%s", e.msg);
		engine_close(a->en); /* the next pass connects anew (an engine restarted, or another version) */
		a->en = NULL;
	} else {
		out = check_result_json(&res);
		check_result_free(&res);
	}
	pthread_mutex_unlock(&a->reg_lock);
	malloc_trim(0); /* the pass's memory back to the system, not kept by this thread's arena */
	return out;
}

/* Queue an operation and answer 202 {"operation": ID}, or why not. */
static enum MHD_Result submit(struct api *a, struct MHD_Connection *c, const char *kind, json_t *params)
{
	struct refit_err e = { 0 };
	char id[17];

	if (ops_submit(a->ops, kind, params, id, &e) < 0) {
		if (strcmp(e.msg, "paused") == 0)
			return reply_error(c, 409, "updates are paused (POST /api/v1/resume)");
		if (strcmp(e.msg, "busy") == 0)
			return reply_error(c, 409, "too many operations waiting; try again later");
		return reply_error(c, 503, e.msg);
	}
	return reply_json(c, 202, json_pack("{s:s, s:s}", "operation", id, "state", "queued"));
}

/* Pause or resume, and say the state. */
static enum MHD_Result set_paused(struct api *a, struct MHD_Connection *c, bool paused)
{
	struct refit_err e = { 0 };

	if (ops_set_paused(a->ops, paused, &e) < 0)
		return reply_error(c, 500, e.msg);
	log_info("api: updates %s", paused ? "paused" : "resumed");
	return reply_json(c, 200, json_pack("{s:b}", "paused", paused));
}

/* History without the inspects kept for rollbacks. */
json_t *api_history_json(struct api *a)
{
	json_t *hist = journal_history(a->cfg->state_dir, NULL), *out = json_array(), *r;
	size_t i;

	json_array_foreach(hist, i, r) {
		json_array_append_new(out, journal_public(r));
	}
	json_decref(hist);
	return json_pack("{s:o}", "history", out);
}

/*
 * Watchtower's answer to /v1/update: the operation's record REC (stolen)
 * with the counts of the pass's outcomes, its duration and the operation's
 * ID beside it.
 */
static json_t *watchtower_summary(json_t *rec, const char *id, long long ms)
{
	json_int_t scanned = 0, updated = 0, failed = 0, rolled_back = 0, skipped = 0;
	json_t *entry;
	char when[ISO_TIME_LEN], took[32];
	size_t i;

	json_array_foreach(json_object_get(json_object_get(rec, "result"), "containers"), i, entry) {
		enum entry_status st = entry_status_from_string(json_string_value(json_object_get(entry, "status")));

		scanned++;
		rolled_back += st == ENTRY_ROLLED_BACK;
		if (st == ENTRY_UPDATED)
			updated++;
		else if (st == ENTRY_ROLLED_BACK || st == ENTRY_FAILED)
			failed++;
		else if (st != ENTRY_UP_TO_DATE)
			skipped++; /* pending, pinned, monitor-only, skipped, or its check failed */
	}
	snprintf(took, sizeof(took), "%lld.%03llds", ms / 1000, ms % 1000);
	json_object_set_new(rec, "summary",
			    json_pack("{s:I, s:I, s:I, s:I, s:I}", "scanned", scanned, "updated", updated, "failed",
				      failed, "rolled_back", rolled_back, "skipped", skipped));
	json_object_set_new(rec, "timing", json_pack("{s:I, s:s}", "duration_ms", (json_int_t)ms, "duration", took));
	json_object_set_new(rec, "timestamp", json_string(iso_now(when)));
	json_object_set_new(rec, "api_version", json_string("v1"));
	json_object_set_new(rec, "operation", json_string(id));
	return rec;
}

/* Is an update pass running or waiting? */
static bool update_busy(struct api *a)
{
	json_t *st = ops_status(a->ops);
	bool busy = json_is_string(json_object_get(st, "running")) ||
		    json_integer_value(json_object_get(st, "queued")) > 0;

	json_decref(st);
	return busy;
}

/*
 * GET or POST /v1/update, as Watchtower's clients call it: ?image=a,b
 * (repository, or repository:tag), ?container=a,b (names), ?async=true (202
 * at once). A full pass while another runs is 429 with Retry-After, as the
 * Watchtower fork does; a targeted one waits its turn.
 */
static enum MHD_Result watchtower_update(struct api *a, struct MHD_Connection *c)
{
	const char *img = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "image");
	const char *names = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "container");
	const char *async = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "async");
	json_t *params = NULL, *rec;
	struct refit_err e = { 0 };
	char id[17];
	long long t0 = mono_ms();
	unsigned code;

	if (img && api_parse_images(img, &params, &e) < 0)
		return reply_error(c, 400, e.msg);
	if (names) {
		json_t *arr = api_parse_names(names, &e);

		if (!arr) {
			json_decref(params);
			return reply_error(c, 400, e.msg);
		}
		if (!params)
			params = json_object();
		json_object_set_new(params, "containers", arr);
	}
	if (ops_paused(a->ops)) { /* said before "busy": a paused daemon's passes are skipped ones */
		json_decref(params);
		return reply_error(c, 409, "updates are paused");
	}
	if (!img && !names && update_busy(a)) {
		static const char body[] = "{\"error\":\"another update is already running\",\"api_version\":\"v1\"}";
		struct MHD_Response *r;
		enum MHD_Result ret;

		json_decref(params);
		r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
		if (!r)
			return MHD_NO;
		MHD_add_response_header(r, "Content-Type", "application/json");
		MHD_add_response_header(r, "Retry-After", "30");
		ret = MHD_queue_response(c, 429, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (ops_submit(a->ops, "update", params, id, &e) < 0) {
		json_decref(params);
		return reply_error(c, 409, strcmp(e.msg, "paused") == 0 ? "updates are paused" : e.msg);
	}
	json_decref(params);
	if (async && strcmp(async, "true") == 0)
		return reply_json(c, 202, json_pack("{s:s, s:s}", "operation", id, "state", "queued"));
	rec = ops_wait(a->ops, id, API_SYNC_TIMEOUT);
	if (!rec)
		return reply_error(c, 500, "operation lost");
	code = strcmp(json_string_value(json_object_get(rec, "state")), "succeeded") == 0 ? 200 : 500;
	return reply_json(c, code, watchtower_summary(rec, id, mono_ms() - t0));
}

/* POST /api/v1/release: clear held digests at once (no operation: it changes no container). */
static enum MHD_Result release(struct api *a, struct MHD_Connection *c, struct req *rq)
{
	struct api_request ar;
	struct refit_err e = { 0 };
	json_t *released = NULL;

	if (api_parse(BODY_RELEASE, rq->body ? rq->body : "", rq->len, &ar, &e) < 0)
		return reply_error(c, 400, e.msg);
	if (hold_release_params(a->cfg->state_dir, ar.params, &released, &e) < 0) {
		json_decref(ar.params);
		return reply_error(c, 500, e.msg);
	}
	json_decref(ar.params);
	log_info("api: released %zu held digest(s)", json_array_size(released));
	return reply_json(c, 200, json_pack("{s:o}", "released", released));
}

/* The routes that take a body. */
static enum MHD_Result route_post(struct api *a, struct MHD_Connection *c, const char *url, struct req *rq)
{
	struct api_request ar;
	struct refit_err pe = { 0 };

	if (strcmp(url, "/api/v1/pause") == 0 || strcmp(url, "/api/v1/resume") == 0)
		return set_paused(a, c, strcmp(url, "/api/v1/pause") == 0);
	if (strcmp(url, "/api/v1/release") == 0)
		return release(a, c, rq);
	if (strcmp(url, "/api/v1/update") == 0 || strcmp(url, "/api/v1/rollback") == 0 ||
	    strcmp(url, "/api/v1/management/orchestrator/update/command") == 0) {
		enum api_body kind = strcmp(url, "/api/v1/update") == 0 ? BODY_UPDATE :
				     strcmp(url, "/api/v1/rollback") == 0 ? BODY_ROLLBACK : BODY_COMMAND;
		enum MHD_Result ret;

		if (api_parse(kind, rq->body ? rq->body : "", rq->len, &ar, &pe) < 0)
			return reply_error(c, 400, pe.msg);
		switch (ar.action) {
		case ACT_TRIGGER:
			ret = submit(a, c, json_object_get(ar.params, "migrations") ? "migrate" : "update", ar.params);
			break;
		case ACT_ROLLBACK:
			ret = submit(a, c, "rollback", ar.params);
			break;
		case ACT_PAUSE:
		case ACT_RESUME:
			ret = set_paused(a, c, ar.action == ACT_PAUSE);
			break;
		default:
			ret = reply_json(c, 200, ops_status(a->ops));
			break;
		}
		json_decref(ar.params);
		return ret;
	}
	return reply_error(c, 404, "no such endpoint");
}

/* The routes without a body. */
static enum MHD_Result route_get(struct api *a, struct MHD_Connection *c, const char *url)
{
	char err[600] = "";

	if (strcmp(url, "/metrics") == 0 || strcmp(url, "/v1/metrics") == 0) {
		char *text = metrics_render(ops_paused(a->ops));
		enum MHD_Result ret;

		if (!text)
			return reply_error(c, 500, "out of memory");
		ret = reply(c, 200, "text/plain; version=0.0.4", text);
		free(text);
		return ret;
	}
	if (strcmp(url, "/api/v1/containers") == 0) {
		struct timespec t0;
		enum MHD_Result ret;
		json_t *j;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		j = api_containers_json(a, err, sizeof(err));
		ret = j ? reply_json_timed(c, 200, j, mono_since(&t0) * 1000) : reply_error(c, 502, err);
		malloc_trim(0); /* again, now that the answer's JSON and its text are freed too (MHD has a copy) */
		return ret;
	}
	if (strcmp(url, "/api/v1/history") == 0)
		return reply_json(c, 200, api_history_json(a));
	if (strncmp(url, "/api/v1/operations/", 19) == 0) {
		const char *id = url + 19;
		json_t *rec;

		if (strlen(id) != 16 || strspn(id, "0123456789abcdef") != 16)
			return reply_error(c, 404, "no such operation");
		rec = ops_get(a->ops, id);
		return rec ? reply_json(c, 200, rec) : reply_error(c, 404, "no such operation");
	}
	return reply_error(c, 404, "no such endpoint");
}

/* Is METHOD one of WANT ("GET", "GET, POST")? */
static bool method_allowed(const char *want, const char *method)
{
	size_t n = strlen(method);

	for (const char *p = want; (p = strstr(p, method)) != NULL; p += n)
		if ((p == want || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
			return true;
	return false;
}

/* GET /readyz: 200 while the engine answers (its /version, in a speakable API), else 503 with why. */
static enum MHD_Result readyz(struct api *a, struct MHD_Connection *c)
{
	struct engine *en = NULL;
	struct refit_err e = { 0 };
	int rc;

	pthread_rwlock_rdlock(a->cfg_lock);
	rc = engine_open(&en, a->cfg->docker_host, &e);
	pthread_rwlock_unlock(a->cfg_lock);
	engine_close(en);
	if (rc < 0)
		return reply_json(c, 503, json_pack("{s:s, s:s}", "status", "unavailable", "error", e.msg));
	return reply_json(c, 200, json_pack("{s:s}", "status", "ready"));
}

/* Which methods a path takes, or NULL for an unknown path. */
static const char *allowed_method(const char *url)
{
	static const struct {
		const char *path;
		const char *method;
	} routes[] = {
		{ "/health", "GET" },
		{ "/livez", "GET" },
		{ "/readyz", "GET" },
		{ "/metrics", "GET" },
		{ "/v1/metrics", "GET" },
		{ "/api/v1/containers", "GET" },
		{ "/api/v1/history", "GET" },
		{ "/v1/update", "GET, POST" },
		{ "/api/v1/update", "POST" },
		{ "/api/v1/rollback", "POST" },
		{ "/api/v1/pause", "POST" },
		{ "/api/v1/release", "POST" },
		{ "/api/v1/resume", "POST" },
		{ "/api/v1/management/orchestrator/update/command", "POST" },
	};

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(url, routes[i].path) == 0)
			return routes[i].method;
	return strncmp(url, "/api/v1/operations/", 19) == 0 ? "GET" : NULL;
}

/* libmicrohttpd's request callback: called for the headers, for each body chunk, and at the end. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct api *a = cls;
	struct req *rq = *con_cls;
	const char *want = allowed_method(url);

	(void)version;
	if (!rq) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");

		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*con_cls = rq;
		/* Refuse an oversized body before reading any of it (no 100 Continue either). */
		if (cl && strtoull(cl, NULL, 10) > API_MAX_BODY) {
			rq->too_large = true;
			return reply_error(c, 413, "body larger than 64 KiB");
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!rq->too_large && rq->len + *upload_data_size <= API_MAX_BODY) {
			char *p = realloc(rq->body, rq->len + *upload_data_size + 1);

			if (!p)
				return MHD_NO;
			rq->body = p;
			memcpy(rq->body + rq->len, upload_data, *upload_data_size);
			rq->len += *upload_data_size;
			rq->body[rq->len] = '\0';
		} else {
			rq->too_large = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	conn_mark(a, c, false); /* the request is complete: the deadline stops */
	if (ui_owns(url)) /* the dashboard and its event stream: a session or the token */
		return ui_handle(a->ui, c, url, method, rq->body, rq->len, rq->too_large);
	if (!want)
		return reply_error(c, 404, "no such endpoint");
	if (!method_allowed(want, method)) {
		struct MHD_Response *r;
		enum MHD_Result ret;
		const char *msg = "{\"error\":\"method not allowed\"}";

		r = MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_PERSISTENT);
		if (!r)
			return MHD_NO;
		MHD_add_response_header(r, "Allow", want);
		MHD_add_response_header(r, "Content-Type", "application/json");
		ret = MHD_queue_response(c, 405, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (strcmp(url, "/livez") == 0) /* the process answers */
		return reply_json(c, 200, json_pack("{s:s}", "status", "ok"));
	if (strcmp(url, "/readyz") == 0)
		return readyz(a, c);
	if (strcmp(url, "/health") == 0)
		return reply_json(c, 200, json_pack("{s:s, s:s, s:b}", "status", "ok", "version", refit_version, "paused",
						    ops_paused(a->ops)));
	if (!api_authorized(a, c))
		return reply_error(c, 401, "missing or wrong bearer token");
	if (rq->too_large)
		return reply_error(c, 413, "body larger than 64 KiB");
	if (strcmp(url, "/v1/update") == 0) /* waits for its pass: outside the configuration lock */
		return watchtower_update(a, c);
	if (strcmp(method, "POST") == 0) {
		const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
		enum MHD_Result ret;

		if (rq->len > 0 && (!ct || strncasecmp(ct, "application/json", 16) != 0))
			return reply_error(c, 415, "send the body as application/json");
		pthread_rwlock_rdlock(a->cfg_lock);
		ret = route_post(a, c, url, rq);
		pthread_rwlock_unlock(a->cfg_lock);
		return ret;
	} else {
		enum MHD_Result ret;

		pthread_rwlock_rdlock(a->cfg_lock);
		ret = route_get(a, c, url);
		pthread_rwlock_unlock(a->cfg_lock);
		return ret;
	}
}

/* Free a request's state when its connection is done with it. */
static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)toe;
	conn_mark(cls, c, true); /* the next request on this connection has its own deadline */
	if (rq) {
		free(rq->body);
		free(rq);
	}
	*con_cls = NULL;
}

/* Is HOST (from api.listen) a loopback address? */
static bool loopback_host(const char *host)
{
	return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 || strcmp(host, "localhost") == 0;
}

/* The host part of api.listen LISTEN ("HOST:PORT" or "[V6]:PORT") into HOST; -1 when malformed. */
static int listen_host(const char *listen, char *host, size_t len)
{
	const char *colon = strrchr(listen, ':');

	if (!colon || (size_t)(colon - listen) >= len)
		return -1;
	snprintf(host, len, "%.*s", (int)(colon - listen), listen);
	if (host[0] == '[') { /* [::1]:8010 */
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	return 0;
}

static bool loopback_listen(const char *listen)
{
	char host[256];

	return listen_host(listen, host, sizeof(host)) == 0 && loopback_host(host);
}

/*
 * The API token of CFG (api.token, else the first line of api.token_file,
 * else Watchtower's token of any length) hashed into HASH; *HAS says
 * whether there is one. -1 with E set when the file cannot be read or
 * refit's own token is too short.
 */
static int load_token(const struct refit_config *cfg, unsigned char hash[32], bool *has, struct refit_err *e)
{
	const char *t = cfg->api_token;
	char buf[4097];
	int rc = 0;

	*has = false;
	if (!t && cfg->api_token_file) {
		int fd = open(cfg->api_token_file, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

		if (fd >= 0)
			close(fd);
		if (n < 0)
			return err_set(e, ERR_USAGE, "api.token_file %s: %s", cfg->api_token_file, strerror(errno));
		buf[n] = '\0';
		buf[strcspn(buf, "\r\n")] = '\0'; /* the first line */
		n = (ssize_t)strlen(buf);
		while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
			buf[--n] = '\0';
		t = buf;
	}
	if ((!t || !*t) && cfg->wt_api.token && *cfg->wt_api.token) {
		token_hash(cfg->wt_api.token, strlen(cfg->wt_api.token), hash); /* config_finish warned if short */
		*has = true;
	} else if (t && *t) {
		if (strlen(t) < 16)
			rc = err_set(e, ERR_USAGE, "api token: use at least 16 characters");
		else {
			token_hash(t, strlen(t), hash);
			*has = true;
		}
	}
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/* CFG's token as load_token gives it, refused when there is none and api.listen is not loopback. */
static int token_for(const struct refit_config *cfg, unsigned char hash[32], bool *has, struct refit_err *e)
{
	if (load_token(cfg, hash, has, e) < 0)
		return -1;
	if (!*has && !loopback_listen(cfg->api_listen))
		return err_set(e, ERR_USAGE, "api.listen %s is not a loopback address: set api.token (or api.token_file, or Watchtower's http-api-token) first",
			       cfg->api_listen);
	return 0;
}

void api_config_changed(struct api *a)
{
	pthread_mutex_lock(&a->reg_lock);
	registry_free(a->reg); /* credentials, insecure_registries, concurrency: read anew */
	a->reg = NULL;
	engine_close(a->en); /* docker_host */
	a->en = NULL;
	pthread_mutex_unlock(&a->reg_lock);
}

int api_reload_token(struct api *a, const struct refit_config *cfg, struct refit_err *e)
{
	unsigned char hash[32];
	bool has;

	if (token_for(cfg, hash, &has, e) < 0)
		return -1;
	pthread_mutex_lock(&a->auth_lock);
	if (has != a->has_token || CRYPTO_memcmp(hash, a->token_hash, sizeof(hash)) != 0)
		ui_token_changed(a->ui); /* a new token ends the dashboard's logins */
	memcpy(a->token_hash, hash, sizeof(hash));
	a->has_token = has;
	pthread_mutex_unlock(&a->auth_lock);
	explicit_bzero(hash, sizeof(hash));
	return 0;
}

int api_start(struct api **ret, const struct refit_config *cfg, pthread_rwlock_t *cfg_lock, struct ops *ops,
	      struct refit_err *e)
{
	struct api *a = calloc(1, sizeof(*a));
	struct sockaddr_storage ss = { 0 };
	const char *colon = strrchr(cfg->api_listen, ':');
	char host[256];
	long port;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;

	if (!a)
		return err_set(e, ERR_FAILED, "out of memory");
	a->cfg = cfg;
	a->cfg_lock = cfg_lock;
	a->ops = ops;
	pthread_mutex_init(&a->auth_lock, NULL);
	pthread_mutex_init(&a->reg_lock, NULL);
	pthread_mutex_init(&a->conn_lock, NULL);
	if (!colon || listen_host(cfg->api_listen, host, sizeof(host)) < 0) {
		free(a);
		return err_set(e, ERR_USAGE, "api.listen %s: expected HOST:PORT", cfg->api_listen);
	}
	port = strtol(colon + 1, NULL, 10);
	if (token_for(cfg, a->token_hash, &a->has_token, e) < 0 || !(a->ui = ui_new(a, cfg, cfg_lock, ops))) {
		if (!a->ui && e && !e->msg[0])
			err_set(e, ERR_FAILED, "out of memory");
		free(a);
		return -1;
	}
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		flags |= MHD_USE_IPv6;
	} else {
		free(a);
		return err_set(e, ERR_USAGE, "api.listen %s: the host must be an IP address", cfg->api_listen);
	}
	a->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, a, MHD_OPTION_SOCK_ADDR, &ss,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				  (unsigned)API_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_TIMEOUT,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_NOTIFY_COMPLETED,
				  completed, a, MHD_OPTION_NOTIFY_CONNECTION, connection_event, a,
				  MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_THREAD_STACK_SIZE,
				  (size_t)(256 * 1024), MHD_OPTION_END);
	if (!a->mhd) {
		ui_free(a->ui);
		free(a);
		return err_set(e, ERR_FAILED, "api: cannot listen on %s: %s", cfg->api_listen, strerror(errno));
	}
	a->watchdog_started = pthread_create(&a->watchdog, NULL, conn_watchdog, a) == 0;
	if (!a->watchdog_started)
		log_warn("api: no request deadline (cannot start its thread): slow clients are cut only when idle");
	log_info("api: listening on %s%s", cfg->api_listen, a->has_token ? "" : " (no token: loopback only)");
	*ret = a;
	return 0;
}

void api_stop(struct api *a)
{
	if (!a)
		return;
	atomic_store(&a->stopping, true);
	if (a->watchdog_started)
		pthread_join(a->watchdog, NULL);
	ui_stop(a->ui); /* event streams end before their connections are closed */
	MHD_stop_daemon(a->mhd);
	ui_free(a->ui);
	pthread_mutex_destroy(&a->auth_lock);
	registry_free(a->reg);
	engine_close(a->en);
	pthread_mutex_destroy(&a->reg_lock);
	pthread_mutex_destroy(&a->conn_lock);
	explicit_bzero(a->token_hash, sizeof(a->token_hash));
	free(a);
}
