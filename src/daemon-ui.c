/*
 * The dashboard: server-rendered pages at GET / and /ui/..., its assets
 * (compiled in from ui/), the login session, its buttons (the API's own
 * operations) and the event stream GET /api/v1/events.
 */
#include <dirent.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "refit/api-request.h"
#include "refit/base.h"
#include "refit/engine.h"
#include "refit/version.h"
#include "refit/events.h"
#include "refit/hold.h"
#include "refit/journal-record.h"
#include "refit/journal.h"
#include "refit/log.h"
#include "refit/ui.h"
#include "daemon-ui-internal.h"
#include "ui-assets.h" /* generated from ui/ by the Makefile */

#define COOKIE "refit_session"
#define HISTORY_SHOWN 100
#define SSE_KEEPALIVE_MS 10000 /* under the API's idle timeout */
#define CSP "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " \
	    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"

struct ui {
	struct api *api;
	const struct refit_config *cfg;
	pthread_rwlock_t *cfg_lock;
	struct ops *ops;
	struct sessions *sessions;
	struct ui_fleet *fleet;
	atomic_bool stopping;
};

/*
 * The buttons, each one of the API's operations. A button is one line here
 * (and its form in the page): NAME is the form's "action", BODY and PARAMS
 * the API body it stands for (checked by api_parse as the API checks it),
 * KIND the operation queued (NULL: pause or resume; "release": done at once,
 * as POST /api/v1/release does), CONFIRM the question asked first (%s: the
 * container), or NULL.
 */
struct ui_action {
	const char *name;
	const char *label;
	enum api_body body;
	const char *params; /* JSON; "%s" is the container's name */
	const char *kind;
	const char *confirm;
};

static const struct ui_action actions[] = {
	{ "check", "Check now", BODY_UPDATE, "{\"dry_run\":true}", "update", NULL },
	{ "update-all", "Update all", BODY_UPDATE, "{}", "update", "Update every container that has a newer image?" },
	{ "update", "Update", BODY_UPDATE, "{\"containers\":[%s]}", "update", "Update %s to its newer image?" },
	{ "rollback", "Roll back", BODY_ROLLBACK, "{\"containers\":[%s]}", "rollback",
	  "Roll %s back to the image it ran before its last change?" },
	{ "release", "Release", BODY_RELEASE, "{\"containers\":[%s]}", "release",
	  "Release the hold on %s? A later pass may update it to that digest again." },
	{ "pause", "Pause updates", BODY_UPDATE, NULL, NULL, NULL },
	{ "resume", "Resume updates", BODY_UPDATE, NULL, NULL, NULL },
};

/* TMPL with its "%s" (if any) replaced by S, into OUT. */
static void fill(char *out, size_t len, const char *tmpl, const char *s)
{
	const char *at = strstr(tmpl, "%s");

	if (at)
		snprintf(out, len, "%.*s%s%s", (int)(at - tmpl), tmpl, s, at + 2);
	else
		snprintf(out, len, "%s", tmpl);
}

static const struct ui_action *action_named(const char *name)
{
	for (size_t i = 0; name && i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(actions[i].name, name) == 0)
			return &actions[i];
	return NULL;
}

struct ui *ui_new(struct api *a, const struct refit_config *cfg, pthread_rwlock_t *cfg_lock, struct ops *ops)
{
	struct ui *u = calloc(1, sizeof(*u));

	if (!u || !(u->sessions = sessions_new()) || !(u->fleet = ui_fleet_new())) {
		if (u)
			sessions_free(u->sessions);
		free(u);
		return NULL;
	}
	u->api = a;
	u->cfg = cfg;
	u->cfg_lock = cfg_lock;
	u->ops = ops;
	events_reset(); /* a daemon's stream starts empty and open */
	return u;
}

void ui_free(struct ui *u)
{
	if (!u)
		return;
	ui_fleet_free(u->fleet);
	sessions_free(u->sessions);
	free(u);
}

void ui_token_changed(struct ui *u)
{
	if (u)
		sessions_clear(u->sessions);
}

void ui_stop(struct ui *u)
{
	if (u) {
		atomic_store(&u->stopping, true);
		ui_fleet_stop(u->fleet); /* before the API stops: a host of the fleet may be this daemon */
	}
	events_close();
}

bool ui_owns(const char *url)
{
	return strcmp(url, "/") == 0 || strcmp(url, "/login") == 0 || strcmp(url, "/logout") == 0 ||
	       strncmp(url, "/ui/", 4) == 0 || strcmp(url, "/api/v1/events") == 0;
}

/* ---- answers */

/* The headers every dashboard answer carries. */
static void secure_headers(struct MHD_Response *r)
{
	MHD_add_response_header(r, "Content-Security-Policy", CSP);
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Cache-Control", "no-store");
}

/* Queue BODY (LEN bytes, copied) as TYPE with CODE; LOCATION and COOKIE headers when given. */
static enum MHD_Result answer(struct MHD_Connection *c, unsigned code, const char *type, const char *body, size_t len,
			      const char *location, const char *cookie, const char *timing)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	secure_headers(r);
	MHD_add_response_header(r, "Content-Type", type);
	if (location)
		MHD_add_response_header(r, "Location", location);
	if (cookie)
		MHD_add_response_header(r, "Set-Cookie", cookie);
	if (timing)
		MHD_add_response_header(r, "Server-Timing", timing);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result ui_answer_json(struct MHD_Connection *c, unsigned code, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	enum MHD_Result ret;

	json_decref(j);
	if (!s)
		return answer(c, 500, "application/json", "{\"error\":\"out of memory\"}", 25, NULL, NULL, NULL);
	ret = answer(c, code, "application/json", s, strlen(s), NULL, NULL, NULL);
	free(s);
	return ret;
}

enum MHD_Result ui_answer_page(struct MHD_Connection *c, unsigned code, struct ui_buf *b, const char *timing)
{
	enum MHD_Result ret;

	if (b->oom) {
		ui_buf_free(b);
		return answer(c, 500, "text/plain", "out of memory\n", 14, NULL, NULL, NULL);
	}
	ret = answer(c, code, "text/html; charset=utf-8", b->s, b->len, NULL, NULL, timing);
	ui_buf_free(b);
	return ret;
}

enum MHD_Result ui_redirect(struct MHD_Connection *c, const char *to, const char *cookie)
{
	return answer(c, 303, "text/plain", "", 0, to, cookie, NULL);
}

/* Did the page's script ask (it wants JSON answers)? */
bool ui_wants_json(struct MHD_Connection *c)
{
	const char *acc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");

	return acc && strncmp(acc, "application/json", 16) == 0;
}

/* Is the connection behind TLS (a proxy that says so)? Then the cookie is Secure. */
static bool behind_tls(struct MHD_Connection *c)
{
	const char *p = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-Proto");
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_PROTOCOL);

	return (p && strcasecmp(p, "https") == 0) || (ci && ci->tls_session);
}

/* ---- the page's frame */

void ui_page_start(struct ui_buf *b, const char *title, const struct who *w, const char *refresh)
{
	ui_buf_puts(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		       "<meta name=\"color-scheme\" content=\"light dark\">");
	if (refresh)
		ui_buf_printf(b, "<meta http-equiv=\"refresh\" content=\"%s\">", refresh);
	if (w && w->session)
		ui_buf_printf(b, "<meta name=\"csrf\" content=\"%s\">", w->csrf);
	/* the rows' confirmation questions, once a page ("%s": the container) */
	for (size_t i = 0; w && (w->session || w->bearer) && i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (actions[i].confirm && strstr(actions[i].params, "%s")) {
			ui_buf_printf(b, "<meta name=\"q-%s\" content=\"", actions[i].name);
			ui_buf_html(b, actions[i].confirm);
			ui_buf_puts(b, "\">");
		}
	}
	ui_buf_puts(b, "<title>");
	ui_buf_html(b, title);
	ui_buf_puts(b, " · refit</title><link rel=\"stylesheet\" href=\"/ui/dashboard.css\">"
		       "<script src=\"/ui/dashboard.js\" defer></script></head><body><header><h1>refit</h1>");
	if (w && (w->session || w->bearer)) {
		ui_buf_puts(b, "<nav><a href=\"/\">Containers</a><a href=\"/ui/history\">History</a>"
			       "<a href=\"/ui/fleet\">Fleet</a></nav>");
		if (w->session)
			ui_buf_printf(b, "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" "
					 "value=\"%s\"><button>Log out</button></form>", w->csrf);
	}
	/* the form every row's buttons post (form="act"): the CSRF token once, not once a row */
	ui_buf_printf(b, "</header><main><form id=\"act\" class=\"act\" method=\"post\" action=\"/ui/action\">"
			 "<input type=\"hidden\" name=\"csrf\" value=\"%s\"></form>", w && w->session ? w->csrf : "");
}

void ui_page_end(struct ui_buf *b)
{
	ui_buf_printf(b, "</main><footer class=\"mute\"><p>refit %s</p></footer></body></html>\n", refit_version);
}

/* A button of the bar posting ACTION (for no container) in a form of its own with the session's CSRF token. */
static void button(struct ui_buf *b, const struct who *w, const char *action)
{
	const struct ui_action *a = action_named(action);

	if (!a)
		return;
	ui_buf_puts(b, "<form class=\"act\" method=\"post\" action=\"/ui/action\"");
	if (a->confirm) {
		ui_buf_puts(b, " data-confirm=\"");
		ui_buf_html(b, a->confirm);
		ui_buf_puts(b, "\"");
	}
	ui_buf_printf(b, "><input type=\"hidden\" name=\"csrf\" value=\"%s\">"
			 "<input type=\"hidden\" name=\"action\" value=\"%s\">", w->session ? w->csrf : "", action);
	ui_buf_printf(b, "<button%s data-action=\"%s\">%s</button></form>", a->confirm ? " class=\"danger\"" : "",
		      action, a->label);
}

/*
 * A row's button: part of the page's form "act", posting do=ACTION:NAME (and
 * restore-NAME=yes when its box is ticked); the question is the page's
 * q-ACTION, asked by the script, or by the confirmation page without it.
 */
static void row_button(struct ui_buf *b, const char *action, const char *name, bool restore)
{
	const struct ui_action *a = action_named(action);

	if (!a)
		return;
	if (restore) {
		ui_buf_puts(b, "<label><input form=\"act\" type=\"checkbox\" name=\"restore-");
		ui_buf_html(b, name);
		ui_buf_puts(b, "\" value=\"yes\"> restore data</label>");
	}
	ui_buf_printf(b, "<button form=\"act\" name=\"do\"%s value=\"%s:", a->confirm ? " class=\"danger\"" : "", action);
	ui_buf_html(b, name);
	ui_buf_printf(b, "\">%s</button>", a->label);
}

/* ---- what the page shows */

struct view {
	json_t *containers; /* as GET /api/v1/containers: the "containers" array (owned by ROOT) */
	json_t *root;
	json_t *hist;       /* history, oldest first */
	json_t *health;     /* name -> the engine's state text */
	bool paused;
	char err[600];
	double check_ms;
};

/* The engine's word on each container's state and health: "running (healthy)", "exited", ... */
static json_t *health_of(const struct refit_config *cfg)
{
	struct engine *en = NULL;
	struct refit_err e = { 0 };
	json_t *list = NULL, *out = json_object(), *c;
	size_t i;

	if (!out || engine_open(&en, cfg->docker_host, &e) < 0 ||
	    engine_get_json(en, "/containers/json?all=1", &list, &e) < 0) {
		engine_close(en);
		return out;
	}
	json_array_foreach(list, i, c) {
		const char *name = json_string_value(json_array_get(json_object_get(c, "Names"), 0));
		const char *state = json_string_value(json_object_get(c, "State"));
		const char *status = json_string_value(json_object_get(c, "Status"));
		const char *h = !status ? NULL : strstr(status, "(healthy)") ? "healthy" :
			       strstr(status, "(unhealthy)") ? "unhealthy" : strstr(status, "(health: starting)") ? "starting" : NULL;
		char text[96];

		if (!name)
			continue;
		snprintf(text, sizeof(text), "%s%s%s%s", state ? state : "?", h ? " (" : "", h ? h : "", h ? ")" : "");
		json_object_set_new(out, name[0] == '/' ? name + 1 : name, json_string(text));
	}
	json_decref(list);
	engine_close(en);
	return out;
}

/* The order of the table: what needs a look first. */
static int status_rank(const char *s)
{
	static const char *const order[] = { "error", "failed", "rolled-back", "update-available", "held",
					     "updated", "pinned", "monitor-only", "up-to-date", "skipped" };

	for (size_t i = 0; s && i < sizeof(order) / sizeof(order[0]); i++)
		if (strcmp(order[i], s) == 0)
			return (int)i;
	return 0; /* unknown: first */
}

static const char *bare(const char *name)
{
	return name && name[0] == '/' ? name + 1 : name ? name : "";
}

static int by_status_then_name(const void *x, const void *y)
{
	json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
	int d = status_rank(jr_str(a, "status")) - status_rank(jr_str(b, "status"));

	return d ? d : strcmp(bare(jr_str(a, "name")), bare(jr_str(b, "name")));
}

/* Gather what the page shows; -1 with V->err when the containers cannot be listed. */
static int view_load(struct ui *u, struct view *v, bool with_containers)
{
	struct timespec t0;

	memset(v, 0, sizeof(*v));
	v->paused = ops_paused(u->ops);
	pthread_rwlock_rdlock(u->cfg_lock);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (with_containers) {
		v->root = api_containers_json(u->api, v->err, sizeof(v->err));
		v->health = health_of(u->cfg);
	}
	v->hist = journal_history(u->cfg->state_dir, NULL);
	pthread_rwlock_unlock(u->cfg_lock);
	v->check_ms = mono_since(&t0) * 1000;
	if (!v->hist)
		v->hist = json_array();
	if (with_containers && v->root) {
		json_t *arr = json_object_get(v->root, "containers");
		size_t n = json_array_size(arr);
		json_t **sorted = calloc(n + 1, sizeof(*sorted));

		if (sorted) {
			for (size_t i = 0; i < n; i++)
				sorted[i] = json_incref(json_array_get(arr, i));
			qsort(sorted, n, sizeof(*sorted), by_status_then_name);
			json_array_clear(arr);
			for (size_t i = 0; i < n; i++)
				json_array_append_new(arr, sorted[i]);
			free(sorted);
		}
		v->containers = arr;
	}
	return with_containers && !v->root ? -1 : 0;
}

static void view_free(struct view *v)
{
	json_decref(v->root);
	json_decref(v->hist);
	json_decref(v->health);
}

/* <span class="status s-CLS">TEXT</span>, and ERR after it when there is one (all escaped). */
void ui_status(struct ui_buf *b, const char *cls, const char *text, const char *err)
{
	ui_buf_puts(b, "<span class=\"status s-");
	ui_buf_html(b, cls);
	ui_buf_puts(b, "\">");
	ui_buf_html(b, text);
	ui_buf_puts(b, "</span>");
	if (err) {
		ui_buf_puts(b, "<span class=\"err\">");
		ui_buf_html(b, err);
		ui_buf_puts(b, "</span>");
	}
}

/* A digest as its first 12 hex digits; with FULL the whole one in the title. */
static void digest_as(struct ui_buf *b, const char *d, bool full)
{
	if (!d || !*d) {
		ui_buf_puts(b, "<span class=\"mute\">—</span>");
		return;
	}
	ui_buf_puts(b, "<span class=\"digest\"");
	if (full) {
		ui_buf_puts(b, " title=\"");
		ui_buf_html(b, d);
		ui_buf_puts(b, "\"");
	}
	ui_buf_puts(b, ">");
	if (strncmp(d, "sha256:", 7) == 0 && strlen(d) > 19) {
		char shortd[13];

		snprintf(shortd, sizeof(shortd), "%.12s", d + 7);
		ui_buf_html(b, shortd);
	} else {
		ui_buf_html(b, d);
	}
	ui_buf_puts(b, "</span>");
}

static void digest(struct ui_buf *b, const char *d)
{
	digest_as(b, d, true);
}

/* Seconds between two ISO times of a record, or -1. */
static long duration(json_t *rec)
{
	struct tm a = { 0 }, z = { 0 };
	const char *s = jr_str(rec, JR_STARTED), *f = jr_str(rec, JR_FINISHED);
	const char *ea, *ez;

	if (!s || !f)
		return -1;
	ea = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &a);
	ez = strptime(f, "%Y-%m-%dT%H:%M:%SZ", &z);
	if (!ea || !ez || *ea || *ez)
		return -1;
	return (long)(timegm(&z) - timegm(&a));
}

/* "when kind: outcome (from → to, N s)" of a history record; FULL: the digests' titles too. */
static void change(struct ui_buf *b, json_t *rec, bool full)
{
	long secs = duration(rec);
	const char *outcome = jr_str(rec, JR_OUTCOME);

	if (!rec) {
		ui_buf_puts(b, "<span class=\"mute\">none</span>");
		return;
	}
	ui_buf_puts(b, "<time>");
	ui_buf_html(b, jr_str(rec, JR_FINISHED) ? jr_str(rec, JR_FINISHED) : jr_str(rec, JR_STARTED));
	ui_buf_puts(b, "</time> ");
	ui_buf_html(b, jr_str(rec, JR_KIND));
	ui_buf_puts(b, ": ");
	ui_status(b, outcome ? outcome : "busy", outcome ? outcome : "in progress", NULL);
	ui_buf_puts(b, " ");
	digest_as(b, jr_str(rec, JR_OLD_DIGEST), full);
	ui_buf_puts(b, " → ");
	digest_as(b, jr_str(rec, JR_NEW_DIGEST), full);
	if (secs >= 0)
		ui_buf_printf(b, " <span class=\"mute\">(%ld s)</span>", secs);
	if (jr_str(rec, JR_ERROR)) {
		ui_buf_puts(b, "<span class=\"err\">");
		ui_buf_html(b, jr_str(rec, JR_ERROR));
		ui_buf_puts(b, "</span>");
	}
}

/* Is the last change one a rollback undoes? */
static bool can_roll_back(json_t *last)
{
	const char *kind = jr_str(last, JR_KIND);

	return last && jr_outcome(last) == ENTRY_UPDATED && kind &&
	       (strcmp(kind, "update") == 0 || strcmp(kind, "migrate") == 0);
}

/* One row of the table. */
static void row(struct ui_buf *b, const struct view *v, const struct who *w, json_t *c)
{
	const char *name = bare(jr_str(c, "name")), *status = jr_str(c, "status"), *kind = jr_str(c, "kind");
	json_t *last = jr_last_change(v->hist, name);
	bool service = kind && strcmp(kind, "service") == 0;

	ui_buf_puts(b, "<tr data-name=\"");
	ui_buf_html(b, name);
	ui_buf_puts(b, "\" data-status=\"");
	ui_buf_html(b, status);
	ui_buf_puts(b, "\"><td><a href=\"/ui/container?name=");
	ui_buf_html(b, name); /* names are [A-Za-z0-9_.-]: nothing to %-escape */
	ui_buf_puts(b, "\">");
	ui_buf_html(b, name);
	ui_buf_puts(b, "</a>");
	if (service)
		ui_buf_puts(b, " <span class=\"mute\">(service)</span>");
	ui_buf_puts(b, "</td><td><code>");
	ui_buf_html(b, jr_str(c, "image"));
	ui_buf_puts(b, "</code></td><td class=\"current\">");
	digest(b, jr_str(c, "current_digest"));
	ui_buf_puts(b, "</td><td class=\"latest\">");
	if (jr_str(c, "target_tag")) {
		ui_buf_puts(b, "tag <code>");
		ui_buf_html(b, jr_str(c, "target_tag"));
		ui_buf_puts(b, "</code> ");
	}
	if (jr_str(c, "latest_digest") && jr_str(c, "current_digest") &&
	    strcmp(jr_str(c, "latest_digest"), jr_str(c, "current_digest")) == 0)
		ui_buf_puts(b, "<span class=\"mute\">same</span>");
	else
		digest(b, jr_str(c, "latest_digest"));
	ui_buf_puts(b, "</td><td>");
	ui_status(b, status, status, jr_str(c, "error"));
	ui_buf_puts(b, "</td><td>");
	ui_buf_html(b, jr_str(c, "strategy"));
	ui_buf_puts(b, "</td><td>");
	ui_buf_html(b, service ? "service" : json_string_value(json_object_get(v->health, name)));
	ui_buf_puts(b, "</td><td>");
	change(b, last, false);
	ui_buf_puts(b, "</td><td><div class=\"acts\">");
	if (status && strcmp(status, "update-available") == 0)
		row_button(b, "update", name, false);
	if (status && strcmp(status, "held") == 0)
		row_button(b, "release", name, false);
	if (can_roll_back(last))
		row_button(b, "rollback", name, jr_str(last, JR_BACKUP) != NULL);
	ui_buf_puts(b, "</div></td></tr>\n");
}

static bool shown(json_t *c, const char *filter)
{
	const char *s = jr_str(c, "status");

	if (!filter || !s)
		return true;
	if (strcmp(filter, "pending") == 0)
		return strcmp(s, "update-available") == 0 || strcmp(s, "held") == 0;
	if (strcmp(filter, "errors") == 0)
		return strcmp(s, "error") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "rolled-back") == 0;
	return true;
}

/* The filter asked for (?filter=pending|errors), or NULL for all. */
static const char *filter_of(struct MHD_Connection *c)
{
	const char *f = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "filter");

	return f && (strcmp(f, "pending") == 0 || strcmp(f, "errors") == 0) ? f : NULL;
}

static void rows(struct ui_buf *b, const struct view *v, const struct who *w, const char *filter)
{
	json_t *c;
	size_t i, n = 0;

	json_array_foreach(v->containers, i, c) {
		if (shown(c, filter)) {
			row(b, v, w, c);
			n++;
		}
	}
	if (n == 0)
		ui_buf_printf(b, "<tr><td colspan=\"9\" class=\"mute\">%s</td></tr>\n",
			      filter ? "no container matches this filter" : "no managed containers");
}

static const char *const columns = "<th>Name</th><th>Image</th><th>Current</th><th>Latest</th><th>Status</th>"
				   "<th>Strategy</th><th>Health</th><th>Last change</th><th>Actions</th>";

static void main_page(struct ui_buf *b, const struct view *v, const struct who *w, const char *filter)
{
	static const char *const filters[][2] = { { NULL, "all" }, { "pending", "pending" }, { "errors", "errors" } };

	ui_page_start(b, "containers", w, NULL);
	ui_buf_printf(b, "<p class=\"state\" id=\"state\">%s</p><div class=\"bar\">",
		      v->paused ? "⏸ Updates are paused: scheduled and requested updates wait (rollbacks still run)."
				: "▶ Updates are running on schedule.");
	button(b, w, "check");
	button(b, w, "update-all");
	button(b, w, v->paused ? "resume" : "pause");
	ui_buf_puts(b, "</div><p id=\"live\" role=\"status\" aria-live=\"polite\"></p><nav class=\"filters\" "
		       "aria-label=\"filter\">");
	for (size_t i = 0; i < 3; i++) {
		bool cur = (!filter && !filters[i][0]) || (filter && filters[i][0] && strcmp(filter, filters[i][0]) == 0);

		ui_buf_printf(b, "<a href=\"/%s%s\"%s>%s</a>", filters[i][0] ? "?filter=" : "",
			      filters[i][0] ? filters[i][0] : "", cur ? " aria-current=\"page\"" : "", filters[i][1]);
	}
	ui_buf_puts(b, "</nav>");
	if (v->err[0]) {
		ui_buf_puts(b, "<p class=\"msg bad\">The containers cannot be listed: ");
		ui_buf_html(b, v->err);
		ui_buf_puts(b, "</p>");
	}
	ui_buf_printf(b, "<div class=\"table\"><table><thead><tr>%s</tr></thead><tbody id=\"rows\">\n", columns);
	rows(b, v, w, filter);
	ui_buf_puts(b, "</tbody></table></div>");
	ui_page_end(b);
}

/* The history records, newest first, at most HISTORY_SHOWN; of NAME only when given. */
static void history_table(struct ui_buf *b, json_t *hist, const char *name)
{
	size_t n = json_array_size(hist), shown_n = 0;

	ui_buf_puts(b, "<div class=\"table\"><table><thead><tr><th>Finished</th><th>Container</th><th>Kind</th>"
		       "<th>Outcome</th><th>From</th><th>To</th><th>Duration</th></tr></thead><tbody>\n");
	for (size_t i = n; i > 0 && shown_n < HISTORY_SHOWN; i--) {
		json_t *r = json_array_get(hist, i - 1);
		const char *who = jr_str(r, JR_MODEL) ? jr_str(r, JR_MODEL) : jr_final_name(r);
		const char *outcome = jr_str(r, JR_OUTCOME);
		long secs = duration(r);

		if (name && !jr_concerns(r, name))
			continue;
		shown_n++;
		ui_buf_puts(b, "<tr><td data-label=\"Finished\">");
		ui_buf_html(b, jr_str(r, JR_FINISHED));
		ui_buf_puts(b, "</td><td data-label=\"Container\">");
		ui_buf_html(b, who);
		ui_buf_puts(b, "</td><td data-label=\"Kind\">");
		ui_buf_html(b, jr_str(r, JR_KIND));
		ui_buf_puts(b, "</td><td data-label=\"Outcome\">");
		ui_status(b, outcome, outcome, jr_str(r, JR_ERROR));
		ui_buf_puts(b, "</td><td data-label=\"From\">");
		digest(b, jr_str(r, JR_OLD_DIGEST));
		ui_buf_puts(b, "</td><td data-label=\"To\">");
		digest(b, jr_str(r, JR_NEW_DIGEST));
		ui_buf_puts(b, "</td><td data-label=\"Duration\">");
		if (secs >= 0)
			ui_buf_printf(b, "%ld s", secs);
		ui_buf_puts(b, "</td></tr>\n");
	}
	if (shown_n == 0)
		ui_buf_puts(b, "<tr><td colspan=\"7\" class=\"mute\">no changes yet</td></tr>\n");
	ui_buf_puts(b, "</tbody></table></div>");
}

/* The in-flight journal records of NAME (read without the lock: a snapshot). */
static void in_progress(struct ui_buf *b, const char *state_dir, const char *name)
{
	char dir[4200];
	DIR *d;
	struct dirent *de;
	bool any = false;

	snprintf(dir, sizeof(dir), "%s/ops", state_dir);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		char path[4500];
		json_t *rec, *pub;
		char *text;
		size_t len = strlen(de->d_name);

		if (len != 21 || strcmp(de->d_name + 16, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		rec = json_load_file(path, 0, NULL);
		if (!rec || !jr_concerns(rec, name)) {
			json_decref(rec);
			continue;
		}
		pub = journal_public(rec);
		text = pub ? json_dumps(pub, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
		ui_buf_puts(b, "<h3>In progress: step ");
		ui_buf_html(b, jr_str(rec, JR_STEP));
		ui_buf_puts(b, "</h3><pre>");
		ui_buf_html(b, text);
		ui_buf_puts(b, "</pre>");
		free(text);
		json_decref(pub);
		json_decref(rec);
		any = true;
	}
	if (d)
		closedir(d);
	if (!any)
		ui_buf_puts(b, "<p class=\"mute\">No change of it is in progress.</p>");
}

/* Is NAME a container or service name as the engine spells them? */
static bool valid_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return n > 0 && n <= 255 &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static enum MHD_Result container_page(struct ui *u, struct MHD_Connection *c, const struct who *w)
{
	const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "name");
	struct ui_buf b = { 0 };
	struct view v;
	json_t *found = NULL, *x;
	size_t i;

	if (!valid_name(name)) {
		ui_page_start(&b, "no such container", w, NULL);
		ui_buf_puts(&b, "<p class=\"msg bad\">No such container.</p>");
		ui_page_end(&b);
		return ui_answer_page(c, 404, &b, NULL);
	}
	view_load(u, &v, true);
	json_array_foreach(v.containers, i, x) {
		if (strcmp(bare(jr_str(x, "name")), name) == 0)
			found = x;
	}
	ui_page_start(&b, name, w, NULL);
	ui_buf_puts(&b, "<h2>");
	ui_buf_html(&b, name);
	ui_buf_puts(&b, "</h2>");
	if (found) {
		ui_buf_printf(&b, "<div class=\"table\"><table><thead><tr>%s</tr></thead><tbody id=\"rows\">\n", columns);
		row(&b, &v, w, found);
		ui_buf_puts(&b, "</tbody></table></div>");
	} else {
		ui_buf_puts(&b, "<p class=\"msg\">refit does not manage a container of this name now.</p>");
	}
	ui_buf_puts(&b, "<p id=\"live\" role=\"status\" aria-live=\"polite\"></p><h2>Journal</h2>");
	pthread_rwlock_rdlock(u->cfg_lock);
	in_progress(&b, u->cfg->state_dir, name);
	pthread_rwlock_unlock(u->cfg_lock);
	ui_buf_puts(&b, "<h2>History</h2>");
	history_table(&b, v.hist, name);
	ui_page_end(&b);
	view_free(&v);
	return ui_answer_page(c, found ? 200 : 404, &b, NULL);
}

static enum MHD_Result history_page(struct ui *u, struct MHD_Connection *c, const struct who *w)
{
	struct ui_buf b = { 0 };
	struct view v;

	view_load(u, &v, false);
	ui_page_start(&b, "history", w, NULL);
	ui_buf_printf(&b, "<h2>History</h2><p class=\"mute\">The last %d changes of containers, services and models, "
			  "newest first.</p>", HISTORY_SHOWN);
	history_table(&b, v.hist, NULL);
	ui_page_end(&b);
	view_free(&v);
	return ui_answer_page(c, 200, &b, NULL);
}

/* GET /ui/op/ID: the operation's state; refreshes itself until it has ended. */
static enum MHD_Result operation_page(struct ui *u, struct MHD_Connection *c, const struct who *w, const char *id)
{
	struct ui_buf b = { 0 };
	json_t *rec = strlen(id) == 16 && strspn(id, "0123456789abcdef") == 16 ? ops_get(u->ops, id) : NULL;
	const char *state = jr_str(rec, "state");
	bool done = state && (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
			      strcmp(state, "interrupted") == 0);
	json_t *res, *x;
	size_t i;

	ui_page_start(&b, "operation", w, rec && !done ? "2" : NULL);
	if (!rec) {
		ui_buf_puts(&b, "<p class=\"msg bad\">No such operation.</p>");
		ui_page_end(&b);
		return ui_answer_page(c, 404, &b, NULL);
	}
	ui_buf_printf(&b, "<h2>Operation <code>%s</code></h2><dl><dt>kind</dt><dd>", id);
	ui_buf_html(&b, jr_str(rec, "kind"));
	ui_buf_printf(&b, "</dd><dt>state</dt><dd><span class=\"status s-%s\" id=\"op-state\">",
		      !done ? "busy" : strcmp(state, "succeeded") == 0 ? "updated" : "failed");
	ui_buf_html(&b, state);
	ui_buf_puts(&b, "</span></dd>");
	if (jr_str(rec, "error")) {
		ui_buf_puts(&b, "<dt>error</dt><dd class=\"err\">");
		ui_buf_html(&b, jr_str(rec, "error"));
		ui_buf_puts(&b, "</dd>");
	}
	ui_buf_puts(&b, "</dl>");
	res = json_object_get(json_object_get(rec, "result"), "containers");
	if (json_array_size(res)) {
		ui_buf_puts(&b, "<div class=\"table\"><table><thead><tr><th>Container</th><th>Status</th><th>From</th>"
				"<th>To</th></tr></thead><tbody>");
		json_array_foreach(res, i, x) {
			ui_buf_puts(&b, "<tr><td>");
			ui_buf_html(&b, bare(jr_str(x, "name")));
			ui_buf_puts(&b, "</td><td>");
			ui_status(&b, jr_str(x, "status"), jr_str(x, "status"), jr_str(x, "error"));
			ui_buf_puts(&b, "</td><td>");
			digest(&b, jr_str(x, "current_digest"));
			ui_buf_puts(&b, "</td><td>");
			digest(&b, jr_str(x, "latest_digest"));
			ui_buf_puts(&b, "</td></tr>");
		}
		ui_buf_puts(&b, "</tbody></table></div>");
	}
	if (!done)
		ui_buf_puts(&b, "<p class=\"mute\">This page refreshes until the operation ends.</p>");
	ui_buf_puts(&b, "<p><a href=\"/\">Back to the containers</a></p>");
	ui_page_end(&b);
	json_decref(rec);
	return ui_answer_page(c, 200, &b, NULL);
}

/* ---- login */

static enum MHD_Result login_page(struct MHD_Connection *c, unsigned code, const char *msg)
{
	struct ui_buf b = { 0 };

	ui_page_start(&b, "log in", NULL, NULL);
	ui_buf_puts(&b, "<form class=\"login\" method=\"post\" action=\"/login\"><h2>Log in</h2>");
	if (msg) {
		ui_buf_puts(&b, "<p class=\"msg bad\" id=\"login-error\">");
		ui_buf_html(&b, msg);
		ui_buf_puts(&b, "</p>");
	}
	ui_buf_puts(&b, "<label for=\"token\">API token (api.token)</label><input id=\"token\" name=\"token\" "
			"type=\"password\" autocomplete=\"current-password\" required><button>Log in</button></form>");
	ui_page_end(&b);
	return ui_answer_page(c, code, &b, NULL);
}

static enum MHD_Result login(struct ui *u, struct MHD_Connection *c, const struct ui_form *f)
{
	const char *token = ui_form_get(f, "token");
	char id[SESSION_ID_LEN + 1], csrf[SESSION_ID_LEN + 1], cookie[256];
	long ttl;

	if (!token || !*token || !api_token_ok(u->api, c, token))
		return login_page(c, 401, "That is not the API token.");
	pthread_rwlock_rdlock(u->cfg_lock);
	ttl = u->cfg->api_session_ttl;
	pthread_rwlock_unlock(u->cfg_lock);
	if (sessions_create(u->sessions, ttl, id, csrf) < 0)
		return login_page(c, 500, "No random numbers for a session; try again.");
	snprintf(cookie, sizeof(cookie), COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%ld%s", id, ttl,
		 behind_tls(c) ? "; Secure" : "");
	OPENSSL_cleanse(id, sizeof(id));
	log_info("dashboard: login (%u sessions)", sessions_count(u->sessions));
	return ui_redirect(c, "/", cookie);
}

/* ---- buttons */

/* Answer an action: JSON for the page's script, else a page (or the operation's page). */
static enum MHD_Result action_answer(struct MHD_Connection *c, const struct who *w, unsigned code, json_t *j)
{
	struct ui_buf b = { 0 };
	const char *op = jr_str(j, "operation"), *err = jr_str(j, "error");

	if (ui_wants_json(c) || w->bearer)
		return ui_answer_json(c, code, j);
	if (op) {
		char to[64];

		snprintf(to, sizeof(to), "/ui/op/%s", op);
		json_decref(j);
		return ui_redirect(c, to, NULL);
	}
	if (!err) {
		json_decref(j);
		return ui_redirect(c, "/", NULL);
	}
	ui_page_start(&b, "refused", w, NULL);
	ui_buf_puts(&b, "<p class=\"msg bad\" id=\"refused\">Refused: ");
	ui_buf_html(&b, err);
	ui_buf_puts(&b, "</p><p><a href=\"/\">Back to the containers</a></p>");
	ui_page_end(&b);
	json_decref(j);
	return ui_answer_page(c, code, &b, NULL);
}

/* The confirmation page of a destructive action posted without confirm=yes (the script asks in the browser). */
static enum MHD_Result confirm_page(struct MHD_Connection *c, const struct who *w, const struct ui_action *a,
				    const char *name, bool restore)
{
	struct ui_buf b = { 0 };
	char q[600];

	fill(q, sizeof(q), a->confirm, name ? name : "");
	ui_page_start(&b, "confirm", w, NULL);
	ui_buf_puts(&b, "<h2>");
	ui_buf_html(&b, q);
	ui_buf_printf(&b, "</h2><form method=\"post\" action=\"/ui/action\"><input type=\"hidden\" name=\"csrf\" "
			  "value=\"%s\"><input type=\"hidden\" name=\"action\" value=\"%s\"><input type=\"hidden\" "
			  "name=\"confirm\" value=\"yes\">", w->csrf, a->name);
	if (name) {
		ui_buf_puts(&b, "<input type=\"hidden\" name=\"container\" value=\"");
		ui_buf_html(&b, name);
		ui_buf_puts(&b, "\">");
	}
	if (restore)
		ui_buf_puts(&b, "<input type=\"hidden\" name=\"restore_data\" value=\"yes\"><p>The data volumes are "
				"restored from the backup taken before the change.</p>");
	ui_buf_printf(&b, "<button class=\"danger\">%s</button> <a class=\"button\" href=\"/\">Cancel</a></form>",
		      a->label);
	ui_page_end(&b);
	return ui_answer_page(c, 200, &b, NULL);
}

/*
 * The action a form asks for: "action" (and "container"), or a row's
 * button "do" = ACTION:NAME; RESTORE when "restore_data" is yes or the
 * row's box (restore-NAME) is ticked. NULL when there is no such action.
 */
static const struct ui_action *action_of(const struct ui_form *f, char *name, size_t len, bool *restore)
{
	const char *doit = ui_form_get(f, "do"), *given = ui_form_get(f, "container"), *rd;
	const char *colon = doit ? strchr(doit, ':') : NULL;
	const struct ui_action *a;
	char act[32], key[160];

	name[0] = '\0';
	if (doit && !ui_form_get(f, "action")) {
		if (!colon || (size_t)(colon - doit) >= sizeof(act) || strlen(colon + 1) >= len)
			return NULL;
		snprintf(act, sizeof(act), "%.*s", (int)(colon - doit), doit);
		snprintf(name, len, "%s", colon + 1);
		a = action_named(act);
	} else {
		a = action_named(ui_form_get(f, "action"));
		if (given)
			snprintf(name, len, "%s", given);
	}
	rd = ui_form_get(f, "restore_data");
	snprintf(key, sizeof(key), "restore-%.128s", name);
	*restore = (rd && strcmp(rd, "yes") == 0) || (name[0] && ui_form_get(f, key));
	return a;
}

/* fleet.hosts now (malloc'd), or NULL. */
static char *fleet_hosts_file(struct ui *u)
{
	char *s;

	pthread_rwlock_rdlock(u->cfg_lock);
	s = u->cfg->fleet_hosts ? strdup(u->cfg->fleet_hosts) : NULL;
	pthread_rwlock_unlock(u->cfg_lock);
	return s;
}

static enum MHD_Result action(struct ui *u, struct MHD_Connection *c, const struct who *w, const struct ui_form *f)
{
	char given[256];
	bool restore = false;
	const struct ui_action *a = action_of(f, given, sizeof(given), &restore);
	const char *name = given[0] ? given : NULL, *confirm = ui_form_get(f, "confirm");
	struct api_request ar = { 0 };
	struct refit_err e = { 0 };
	char body[1024], quoted[600], id[17];
	json_t *q;
	char *qs;

	if (ui_form_get(f, "action") && strcmp(ui_form_get(f, "action"), "fleet-rollout") == 0) {
		char *hosts = fleet_hosts_file(u);
		enum MHD_Result ret = ui_fleet_rollout(u->fleet, hosts, c, w, f);

		free(hosts);
		return ret;
	}
	if (!a)
		return action_answer(c, w, 400, json_pack("{s:s}", "error", "no such action"));
	if (!a->kind) {
		if (ops_set_paused(u->ops, strcmp(a->name, "pause") == 0, &e) < 0)
			return action_answer(c, w, 500, json_pack("{s:s}", "error", e.msg));
		log_info("dashboard: updates %s", strcmp(a->name, "pause") == 0 ? "paused" : "resumed");
		return action_answer(c, w, 200, json_pack("{s:b}", "paused", strcmp(a->name, "pause") == 0));
	}
	if (strstr(a->params, "%s") && !name)
		return action_answer(c, w, 400, json_pack("{s:s}", "error", "which container?"));
	if (a->confirm && !(confirm && strcmp(confirm, "yes") == 0) && !w->bearer)
		return confirm_page(c, w, a, name, restore);
	/* The API's body for it, checked as the API checks it. */
	q = json_string(name ? name : "");
	qs = q ? json_dumps(q, JSON_ENCODE_ANY) : NULL;
	json_decref(q);
	snprintf(quoted, sizeof(quoted), "%s", qs ? qs : "\"\"");
	free(qs);
	fill(body, sizeof(body), a->params, quoted);
	if (api_parse(a->body, body, strlen(body), &ar, &e) < 0)
		return action_answer(c, w, 400, json_pack("{s:s}", "error", e.msg));
	if (restore && a->body == BODY_ROLLBACK)
		json_object_set_new(ar.params, "restore_data", json_true());
	if (a->body == BODY_RELEASE) {
		json_t *released = NULL;
		int rc;

		pthread_rwlock_rdlock(u->cfg_lock);
		rc = hold_release_params(u->cfg->state_dir, ar.params, &released, &e);
		pthread_rwlock_unlock(u->cfg_lock);
		json_decref(ar.params);
		if (rc < 0)
			return action_answer(c, w, 500, json_pack("{s:s}", "error", e.msg));
		log_info("dashboard: released the hold on %s (%zu cleared)", name, json_array_size(released));
		return action_answer(c, w, 200, json_pack("{s:o}", "released", released));
	}
	if (ops_submit(u->ops, a->kind, ar.params, id, &e) < 0) {
		json_decref(ar.params);
		if (strcmp(e.msg, "paused") == 0)
			return action_answer(c, w, 409, json_pack("{s:s}", "error",
								  "updates are paused: press Resume updates first"));
		return action_answer(c, w, 409, json_pack("{s:s}", "error", strcmp(e.msg, "busy") == 0 ?
						"too many operations waiting; try again later" : e.msg));
	}
	json_decref(ar.params);
	log_info("dashboard: %s%s%s queued as %s", a->name, name ? " " : "", name ? name : "", id);
	return action_answer(c, w, 202, json_pack("{s:s, s:s}", "operation", id, "state", "queued"));
}

/* ---- the event stream */

struct stream {
	struct events_sub *sub;
	struct ui *ui;
	bool greeted;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	static const char hello[] = "retry: 2000\n: refit events\n\n";

	(void)pos;
	if (!s->greeted && max >= sizeof(hello)) {
		s->greeted = true;
		memcpy(buf, hello, sizeof(hello) - 1);
		return (ssize_t)sizeof(hello) - 1;
	}
	for (;;) {
		ssize_t n = events_read(s->sub, buf, max, SSE_KEEPALIVE_MS);

		if (n < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (n > 0)
			return n;
		if (max < 16)
			continue;
		memcpy(buf, ": keepalive\n\n", 13); /* a quiet stream stays open, and a gone client is noticed */
		return 13;
	}
}

static void stream_free(void *cls)
{
	struct stream *s = cls;

	events_unsubscribe(s->sub);
	free(s);
}

static enum MHD_Result events_stream(struct ui *u, struct MHD_Connection *c)
{
	const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
	struct stream *s;
	struct MHD_Response *r;
	enum MHD_Result ret;
	uint64_t from = 0;

	if (last) {
		if (strlen(last) > 19 || strspn(last, "0123456789") != strlen(last) || !*last)
			return ui_answer_json(c, 400, json_pack("{s:s}", "error", "Last-Event-ID: expected a number"));
		from = strtoull(last, NULL, 10);
	}
	if (atomic_load(&u->stopping))
		return ui_answer_json(c, 503, json_pack("{s:s}", "error", "stopping"));
	s = calloc(1, sizeof(*s));
	if (!s)
		return MHD_NO;
	s->ui = u;
	s->sub = events_subscribe(from);
	if (!s->sub) {
		free(s);
		return ui_answer_json(c, 503, json_pack("{s:s}", "error", "too many event streams open; try again later"));
	}
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
	if (!r) {
		stream_free(s);
		return MHD_NO;
	}
	secure_headers(r);
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "X-Accel-Buffering", "no");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- dispatch */

static enum MHD_Result asset(struct MHD_Connection *c, const char *url)
{
	if (strcmp(url, "/ui/dashboard.css") == 0)
		return answer(c, 200, "text/css; charset=utf-8", (const char *)dashboard_css, dashboard_css_len, NULL,
			      NULL, NULL);
	return answer(c, 200, "text/javascript; charset=utf-8", (const char *)dashboard_js, dashboard_js_len, NULL,
		      NULL, NULL);
}

/* Who is asking: the session cookie, else a bearer token (checked only when one is sent). */
static void identify(struct ui *u, struct MHD_Connection *c, struct who *w)
{
	const char *hdr = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Cookie");
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");

	memset(w, 0, sizeof(*w));
	if (hdr && ui_cookie_get(hdr, COOKIE, w->id, sizeof(w->id)) == 1 && sessions_find(u->sessions, w->id, w->csrf))
		w->session = true;
	else if (auth)
		w->bearer = api_authorized(u->api, c);
}

/* Does a posted page come from this dashboard? Origin, when the browser sends it, names our Host. */
static bool same_origin(struct MHD_Connection *c)
{
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	const char *o;

	if (!origin || strcmp(origin, "null") == 0)
		return true; /* not said (no-referrer makes browsers send "null"): the CSRF token decides */
	if (!host)
		return false;
	o = strncmp(origin, "http://", 7) == 0 ? origin + 7 : strncmp(origin, "https://", 8) == 0 ? origin + 8 : NULL;
	return o && strcmp(o, host) == 0;
}

static enum MHD_Result method_not_allowed(struct MHD_Connection *c, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	static const char msg[] = "{\"error\":\"method not allowed\"}";

	r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	secure_headers(r);
	MHD_add_response_header(r, "Allow", allow);
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, 405, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result get(struct ui *u, struct MHD_Connection *c, const char *url, const struct who *w)
{
	if (strcmp(url, "/") == 0 || strcmp(url, "/ui/rows") == 0) {
		const char *filter = filter_of(c);
		struct ui_buf b = { 0 };
		struct timespec t0;
		struct view v;
		char timing[128];
		enum MHD_Result ret;

		view_load(u, &v, true);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (strcmp(url, "/") == 0)
			main_page(&b, &v, w, filter);
		else
			rows(&b, &v, w, filter);
		snprintf(timing, sizeof(timing), "check;dur=%.2f, render;dur=%.3f", v.check_ms, mono_since(&t0) * 1000);
		view_free(&v);
		ret = ui_answer_page(c, 200, &b, timing);
		return ret;
	}
	if (strcmp(url, "/ui/history") == 0)
		return history_page(u, c, w);
	if (strcmp(url, "/ui/container") == 0)
		return container_page(u, c, w);
	if (strncmp(url, "/ui/op/", 7) == 0)
		return operation_page(u, c, w, url + 7);
	if (strcmp(url, "/api/v1/events") == 0)
		return events_stream(u, c);
	if (strcmp(url, "/ui/fleet") == 0) {
		char *hosts = fleet_hosts_file(u);
		enum MHD_Result ret = ui_fleet_page(u->fleet, hosts, c, w);

		free(hosts);
		return ret;
	}
	return ui_answer_json(c, 404, json_pack("{s:s}", "error", "no such page"));
}

enum MHD_Result ui_handle(struct ui *u, struct MHD_Connection *c, const char *url, const char *method,
			  const char *body, size_t len, bool too_large)
{
	bool post = strcmp(method, "POST") == 0;
	bool posts = strcmp(url, "/login") == 0 || strcmp(url, "/logout") == 0 || strcmp(url, "/ui/action") == 0;
	struct ui_form f = { 0 };
	struct refit_err e = { 0 };
	struct who w;

	if (strcmp(url, "/ui/dashboard.css") == 0 || strcmp(url, "/ui/dashboard.js") == 0) /* no secrets in them */
		return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ? asset(c, url) :
											method_not_allowed(c, "GET");
	if (posts != post)
		return method_not_allowed(c, posts ? "POST" : "GET");
	if (!post && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return method_not_allowed(c, "GET");
	identify(u, c, &w);
	if (post) {
		const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");

		if (too_large || len > UI_FORM_MAX_BODY)
			return ui_answer_json(c, 413, json_pack("{s:s}", "error", "form larger than 8 KiB"));
		if (!same_origin(c))
			return ui_answer_json(c, 403, json_pack("{s:s}", "error", "posted from another site"));
		if (len > 0 && (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0))
			return ui_answer_json(c, 415, json_pack("{s:s}", "error",
							     "send the form as application/x-www-form-urlencoded"));
		if (ui_form_parse(body ? body : "", len, &f, &e) < 0)
			return ui_answer_json(c, 400, json_pack("{s:s}", "error", e.msg));
		if (strcmp(url, "/login") == 0)
			return login(u, c, &f);
	}
	if (!w.session && !w.bearer) {
		if (strcmp(url, "/") == 0 && !post)
			return login_page(c, 200, NULL);
		return ui_answer_json(c, 401, json_pack("{s:s}", "error", "log in at / or send the bearer token"));
	}
	if (post && w.session) { /* a change from the page: its CSRF token, bound to the session */
		const char *got = ui_form_get(&f, "csrf");

		if (!got || strlen(got) != SESSION_ID_LEN || CRYPTO_memcmp(got, w.csrf, SESSION_ID_LEN) != 0)
			return ui_answer_json(c, 403, json_pack("{s:s}", "error", "missing or wrong CSRF token: reload the page"));
	}
	if (strcmp(url, "/logout") == 0) {
		char cookie[128];

		if (w.session)
			sessions_drop(u->sessions, w.id);
		snprintf(cookie, sizeof(cookie), COOKIE "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0%s",
			 behind_tls(c) ? "; Secure" : "");
		return ui_redirect(c, "/", cookie);
	}
	if (post)
		return action(u, c, &w, &f);
	return get(u, c, url, &w);
}
