/*
 * The dashboard's fleet page (/ui/fleet): the hosts of fleet.hosts, asked as
 * `refit fleet status` asks them, and a rollout over them that the daemon
 * runs as `refit fleet rollout` would, one at a time, its progress and
 * report kept for the page.
 */
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "refit/base.h"
#include "refit/events.h"
#include "refit/fleet.h"
#include "refit/journal-record.h"
#include "refit/log.h"
#include "refit/semver.h"
#include "refit/ui.h"
#include "daemon-ui-internal.h"

#define LINES_KEPT 200 /* progress lines of the running (or last) rollout */
#define LINE_MAX_LEN 300
#define REFRESH "3"    /* seconds, the page's refresh while a rollout runs */

struct ui_fleet {
	pthread_mutex_t lock;
	pthread_t thread;
	bool joinable; /* a thread was started and not joined */
	bool running;
	atomic_bool stopping;
	time_t started, ended;
	struct fleet_hosts hosts; /* the running rollout's (its thread's) */
	struct fleet_rollout_opts o;
	char target[129];
	char lines[LINES_KEPT][LINE_MAX_LEN];
	size_t nlines; /* every line said; the last LINES_KEPT are kept */
	json_t *report; /* the last rollout's, as refit fleet rollout --json prints it */
};

struct ui_fleet *ui_fleet_new(void)
{
	struct ui_fleet *f = calloc(1, sizeof(*f));

	if (f)
		pthread_mutex_init(&f->lock, NULL);
	return f;
}

void ui_fleet_stop(struct ui_fleet *f)
{
	if (!f)
		return;
	atomic_store(&f->stopping, true);
	pthread_mutex_lock(&f->lock);
	if (f->joinable) {
		pthread_t t = f->thread;

		f->joinable = false;
		pthread_mutex_unlock(&f->lock);
		pthread_join(t, NULL);
		return;
	}
	pthread_mutex_unlock(&f->lock);
}

void ui_fleet_free(struct ui_fleet *f)
{
	if (!f)
		return;
	ui_fleet_stop(f);
	json_decref(f->report);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* ---- the rollout's thread */

static void on_progress(void *arg, const char *host, const char *line)
{
	struct ui_fleet *f = arg;

	pthread_mutex_lock(&f->lock);
	snprintf(f->lines[f->nlines % LINES_KEPT], LINE_MAX_LEN, "%s: %s", host, line);
	f->nlines++;
	pthread_mutex_unlock(&f->lock);
	log_info("fleet rollout: %s: %s", host, line);
	events_publish("fleet", json_pack("{s:s, s:s}", "host", host, "line", line));
}

static bool on_stopping(void *arg)
{
	struct ui_fleet *f = arg;

	return atomic_load(&f->stopping);
}

static void *rollout_thread(void *arg)
{
	struct ui_fleet *f = arg;
	json_t *report = fleet_rollout(&f->hosts, &f->o);
	const char *result = jr_str(report, "result");

	log_info("fleet rollout: %s", result ? result : "ended without a report (out of memory)");
	events_publish("fleet", json_pack("{s:s}", "state", result ? result : "failed"));
	pthread_mutex_lock(&f->lock);
	json_decref(f->report);
	f->report = report;
	f->running = false;
	f->ended = time(NULL);
	fleet_hosts_free(&f->hosts);
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* ---- the page */

static void clock_of(char *out, size_t len, time_t t)
{
	struct tm tm;

	if (t && gmtime_r(&t, &tm))
		strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
	else
		snprintf(out, len, "-");
}

/* A cell of TEXT (escaped), "-" when NULL. */
static void cell(struct ui_buf *b, const char *text)
{
	ui_buf_puts(b, "<td>");
	ui_buf_html(b, text ? text : "-");
	ui_buf_puts(b, "</td>");
}

static void status_table(struct ui_buf *b, json_t *status)
{
	json_t *hosts = json_object_get(status, "hosts"), *h, *c;
	size_t i, k;

	ui_buf_puts(b, "<div class=\"table\"><table><thead><tr><th>Host</th><th>Health</th><th>Version</th>"
		       "<th>Paused</th><th>Pending</th><th>Containers</th></tr></thead><tbody id=\"fleet-hosts\">\n");
	json_array_foreach(hosts, i, h) {
		const char *health = jr_str(h, "health"), *err = jr_str(h, "error");
		json_t *cs = json_object_get(h, "containers");
		size_t pending = 0;
		bool ok = health && strcmp(health, "ok") == 0;

		json_array_foreach(cs, k, c)
			pending += jr_str(c, "status") && strcmp(jr_str(c, "status"), "update-available") == 0;
		ui_buf_puts(b, "<tr data-host=\"");
		ui_buf_html(b, jr_str(h, "name"));
		ui_buf_puts(b, "\"><td data-label=\"Host\">");
		ui_buf_html(b, jr_str(h, "name"));
		ui_buf_puts(b, "<br><code class=\"mute\">");
		ui_buf_html(b, jr_str(h, "url"));
		ui_buf_puts(b, "</code></td><td data-label=\"Health\">");
		ui_status(b, ok ? "up-to-date" : "error", health ? health : "unknown", err);
		ui_buf_puts(b, "</td><td data-label=\"Version\">");
		ui_buf_html(b, jr_str(h, "version") ? jr_str(h, "version") : "-");
		ui_buf_printf(b, "</td><td data-label=\"Paused\">%s</td><td data-label=\"Pending\">%zu</td>"
				 "<td data-label=\"Containers\">",
			      json_is_true(json_object_get(h, "paused"))    ? "yes"
			      : json_is_false(json_object_get(h, "paused")) ? "no"
									    : "-",
			      pending);
		if (!json_array_size(cs))
			ui_buf_puts(b, "<span class=\"mute\">none</span>");
		json_array_foreach(cs, k, c) {
			ui_buf_puts(b, k ? "<br>" : "");
			ui_buf_html(b, jr_str(c, "name"));
			ui_buf_puts(b, " ");
			ui_status(b, jr_str(c, "status"), jr_str(c, "status"), NULL);
		}
		ui_buf_puts(b, "</td></tr>\n");
	}
	ui_buf_puts(b, "</tbody></table></div>");
}

/* The status class of a host's rollout RESULT: succeeded, failed, not-started. */
static const char *result_class(const char *result)
{
	if (result && strcmp(result, "succeeded") == 0)
		return "updated";
	return result && strcmp(result, "failed") == 0 ? "failed" : "busy";
}

static void report_table(struct ui_buf *b, json_t *report)
{
	json_t *hosts = json_object_get(report, "hosts"), *h;
	const char *result = jr_str(report, "result");
	size_t i;

	ui_buf_printf(b, "<p id=\"rollout-result\"><span class=\"status s-%s\">rollout %s</span>%s</p>",
		      result_class(result ? result : "failed"), result ? result : "failed",
		      json_is_true(json_object_get(report, "rolled_back")) ? ", the hosts it changed were rolled back" : "");
	ui_buf_puts(b, "<div class=\"table\"><table><thead><tr><th>Host</th><th>Role</th><th>Result</th>"
		       "<th>Changed</th><th>Time</th><th>Rollback</th></tr></thead><tbody id=\"rollout-hosts\">\n");
	json_array_foreach(hosts, i, h) {
		json_t *rb = json_object_get(h, "rollback");
		char changed[24], secs[32];

		snprintf(changed, sizeof(changed), "%lld", (long long)json_integer_value(json_object_get(h, "changed")));
		snprintf(secs, sizeof(secs), "%.1f s", json_real_value(json_object_get(h, "seconds")));
		ui_buf_puts(b, "<tr data-rollout-host=\"");
		ui_buf_html(b, jr_str(h, "name"));
		ui_buf_puts(b, "\">");
		cell(b, jr_str(h, "name"));
		cell(b, jr_str(h, "role"));
		ui_buf_puts(b, "<td>");
		ui_status(b, result_class(jr_str(h, "result")), jr_str(h, "result"), jr_str(h, "error"));
		ui_buf_puts(b, "</td>");
		cell(b, changed);
		cell(b, secs);
		cell(b, json_is_object(rb) ? jr_str(rb, "result") : NULL);
		ui_buf_puts(b, "</tr>\n");
	}
	ui_buf_puts(b, "</tbody></table></div>");
}

/* The rollout's state, as the page's JSON says it (under F's lock). */
static json_t *rollout_json(struct ui_fleet *f)
{
	json_t *lines = json_array();
	size_t first = f->nlines > LINES_KEPT ? f->nlines - LINES_KEPT : 0;

	for (size_t i = first; i < f->nlines; i++)
		json_array_append_new(lines, json_string(f->lines[i % LINES_KEPT]));
	return json_pack("{s:s, s:o, s:o, s:o, s:O?}", "state", f->running ? "running" : f->report ? "finished" : "none",
			 "started", f->started ? json_integer((json_int_t)f->started) : json_null(), "ended",
			 f->ended ? json_integer((json_int_t)f->ended) : json_null(), "lines", lines, "report", f->report);
}

/* The rollout section: its form, or the running one's progress; the last one's report. */
static void rollout_section(struct ui_buf *b, struct ui_fleet *f, const struct who *w, bool can_start)
{
	size_t first = f->nlines > LINES_KEPT ? f->nlines - LINES_KEPT : 0;
	char when[64];

	ui_buf_puts(b, "<h2>Rollout</h2>");
	if (f->running) {
		clock_of(when, sizeof(when), f->started);
		ui_buf_printf(b, "<p class=\"state\" id=\"rollout-state\">A rollout is running since %s "
				 "(canary %ld, batch %ld%s%s%s). This page refreshes until it ends.</p>",
			      when, f->o.canary, f->o.batch, f->target[0] ? ", to " : "", f->target,
			      f->o.rollback ? ", rollback on failure" : "");
	} else if (can_start) {
		ui_buf_puts(b, "<form class=\"act fleet\" method=\"post\" action=\"/ui/action\" data-confirm=\"Roll out "
			       "an update to every host of the fleet?\">");
		ui_buf_printf(b, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
				 "<input type=\"hidden\" name=\"action\" value=\"fleet-rollout\">"
				 "<label>Canaries <input type=\"number\" name=\"canary\" min=\"0\" max=\"%d\" value=\"0\"></label>"
				 "<label>Batch <input type=\"number\" name=\"batch\" min=\"1\" max=\"%d\" value=\"1\"></label>"
				 "<label>Target version <input name=\"target_version\" maxlength=\"128\" "
				 "placeholder=\"(the tags they run)\"></label>"
				 "<label><input type=\"checkbox\" name=\"rollback_on_failure\" value=\"yes\"> roll back on "
				 "failure</label><button class=\"danger\" data-action=\"fleet-rollout\">Roll out</button></form>",
			      w->session ? w->csrf : "", FLEET_MAX_HOSTS, FLEET_MAX_HOSTS);
	}
	if (f->nlines) {
		ui_buf_puts(b, "<pre id=\"rollout-lines\">");
		for (size_t i = first; i < f->nlines; i++) {
			ui_buf_html(b, f->lines[i % LINES_KEPT]);
			ui_buf_puts(b, "\n");
		}
		ui_buf_puts(b, "</pre>");
	}
	if (!f->running && f->report) {
		clock_of(when, sizeof(when), f->ended);
		ui_buf_printf(b, "<p class=\"mute\">The last rollout ended %s.</p>", when);
		report_table(b, f->report);
	}
}

enum MHD_Result ui_fleet_page(struct ui_fleet *f, const char *hosts_file, struct MHD_Connection *c,
			      const struct who *w)
{
	struct fleet_hosts h = { 0 };
	struct refit_err e = { 0 };
	json_t *status = NULL, *j;
	struct ui_buf b = { 0 };
	bool loaded = false, running;

	if (!hosts_file) {
		if (ui_wants_json(c) || w->bearer)
			return ui_answer_json(c, 404, json_pack("{s:s}", "error", "no fleet: fleet.hosts is not set"));
		ui_page_start(&b, "fleet", w, NULL);
		ui_buf_puts(&b, "<h2>Fleet</h2><p class=\"msg\" id=\"no-fleet\">No fleet is configured. Set "
				"<code>fleet.hosts</code> to a hosts file, as <code>refit fleet</code> reads it, and this "
				"page shows every host's health, version and pending updates and rolls an update out "
				"over them.</p>");
		ui_page_end(&b);
		return ui_answer_page(c, 200, &b, NULL);
	}
	if (fleet_hosts_load(hosts_file, &h, &e) == 0) {
		loaded = true;
		status = fleet_status(&h, 0);
		fleet_hosts_free(&h);
	}
	pthread_mutex_lock(&f->lock);
	running = f->running;
	if (ui_wants_json(c) || w->bearer) {
		j = json_pack("{s:s, s:s?, s:O?, s:o}", "hosts_file", hosts_file, "error", loaded ? NULL : e.msg, "status",
			      status, "rollout", rollout_json(f));
		pthread_mutex_unlock(&f->lock);
		json_decref(status);
		return ui_answer_json(c, j ? 200 : 500, j ? j : json_pack("{s:s}", "error", "out of memory"));
	}
	ui_page_start(&b, "fleet", w, running ? REFRESH : NULL);
	ui_buf_puts(&b, "<h2>Fleet</h2><p class=\"mute\">Hosts of <code>");
	ui_buf_html(&b, hosts_file);
	ui_buf_puts(&b, "</code>, asked now.</p>");
	if (!loaded) {
		ui_buf_puts(&b, "<p class=\"msg bad\" id=\"fleet-error\">The hosts file cannot be read: ");
		ui_buf_html(&b, e.msg);
		ui_buf_puts(&b, "</p>");
	} else if (!status) {
		ui_buf_puts(&b, "<p class=\"msg bad\" id=\"fleet-error\">The hosts cannot be asked: out of memory</p>");
	} else {
		status_table(&b, status);
	}
	rollout_section(&b, f, w, loaded);
	pthread_mutex_unlock(&f->lock);
	json_decref(status);
	ui_page_end(&b);
	return ui_answer_page(c, 200, &b, NULL);
}

/* ---- the rollout button */

/* Form field NAME as a whole number MIN..MAX (DEF when absent or empty): 0, or -1 with WHY. */
static int form_number(const struct ui_form *form, const char *name, long min, long max, long def, long *ret,
		       char *why, size_t whylen)
{
	const char *v = ui_form_get(form, name);
	char *end;

	*ret = def;
	if (!v || !*v)
		return 0;
	errno = 0;
	*ret = strtol(v, &end, 10);
	if (errno || end == v || *end || *ret < min || *ret > max) {
		snprintf(why, whylen, "%s: expected a whole number %ld..%ld", name, min, max);
		return -1;
	}
	return 0;
}

static bool form_yes(const struct ui_form *form, const char *name)
{
	const char *v = ui_form_get(form, name);

	return v && (strcmp(v, "yes") == 0 || strcmp(v, "on") == 0 || strcmp(v, "true") == 0);
}

static enum MHD_Result refused(struct MHD_Connection *c, const struct who *w, unsigned code, const char *why)
{
	struct ui_buf b = { 0 };

	if (ui_wants_json(c) || w->bearer)
		return ui_answer_json(c, code, json_pack("{s:s}", "error", why));
	ui_page_start(&b, "refused", w, NULL);
	ui_buf_puts(&b, "<p class=\"msg bad\" id=\"refused\">Refused: ");
	ui_buf_html(&b, why);
	ui_buf_puts(&b, "</p><p><a href=\"/ui/fleet\">Back to the fleet</a></p>");
	ui_page_end(&b);
	return ui_answer_page(c, code, &b, NULL);
}

/* Without JavaScript: the question, and the same form again with confirm=yes. */
static enum MHD_Result confirm_page(struct MHD_Connection *c, const struct who *w, const struct fleet_rollout_opts *o,
				    const char *target, size_t nhosts)
{
	struct ui_buf b = { 0 };

	ui_page_start(&b, "confirm", w, NULL);
	ui_buf_printf(&b, "<h2>Roll out an update to the %zu host%s of the fleet?</h2><p>Canaries %ld, then batches of "
			  "%ld%s.</p><form method=\"post\" action=\"/ui/action\">"
			  "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
			  "<input type=\"hidden\" name=\"action\" value=\"fleet-rollout\">"
			  "<input type=\"hidden\" name=\"confirm\" value=\"yes\">"
			  "<input type=\"hidden\" name=\"canary\" value=\"%ld\"><input type=\"hidden\" name=\"batch\" "
			  "value=\"%ld\"><input type=\"hidden\" name=\"rollback_on_failure\" value=\"%s\">"
			  "<input type=\"hidden\" name=\"target_version\" value=\"",
		      nhosts, nhosts == 1 ? "" : "s", o->canary, o->batch,
		      o->rollback ? "; the hosts it changed are rolled back when one fails" : "", w->csrf, o->canary,
		      o->batch, o->rollback ? "yes" : "no");
	ui_buf_html(&b, target); /* checked by tag_valid: only tag characters */
	ui_buf_puts(&b, "\"><button class=\"danger\">Roll out</button> <a class=\"button\" href=\"/ui/fleet\">Cancel</a>"
			"</form>");
	if (target[0]) {
		ui_buf_puts(&b, "<p>Every host moves to the tag <code>");
		ui_buf_html(&b, target);
		ui_buf_puts(&b, "</code></p>");
	}
	ui_page_end(&b);
	return ui_answer_page(c, 200, &b, NULL);
}

enum MHD_Result ui_fleet_rollout(struct ui_fleet *f, const char *hosts_file, struct MHD_Connection *c,
				 const struct who *w, const struct ui_form *form)
{
	struct fleet_rollout_opts o = { 0 };
	struct fleet_hosts h = { 0 };
	struct refit_err e = { 0 };
	const char *target = ui_form_get(form, "target_version"), *confirm = ui_form_get(form, "confirm");
	char why[200], since[64];
	pthread_attr_t attr;
	int rc;

	if (!hosts_file)
		return refused(c, w, 404, "no fleet: fleet.hosts is not set");
	if (form_number(form, "canary", 0, FLEET_MAX_HOSTS, 0, &o.canary, why, sizeof(why)) < 0 ||
	    form_number(form, "batch", 1, FLEET_MAX_HOSTS, 1, &o.batch, why, sizeof(why)) < 0)
		return refused(c, w, 400, why);
	if (target && !*target)
		target = NULL;
	if (target && (strlen(target) > 128 || !tag_valid(target)))
		return refused(c, w, 400, "target_version: not an image tag");
	o.rollback = form_yes(form, "rollback_on_failure");
	if (fleet_hosts_load(hosts_file, &h, &e) < 0)
		return refused(c, w, 400, e.msg);
	if (!(confirm && strcmp(confirm, "yes") == 0) && !w->bearer) {
		enum MHD_Result ret = confirm_page(c, w, &o, target ? target : "", h.n);

		fleet_hosts_free(&h);
		return ret;
	}
	pthread_mutex_lock(&f->lock);
	if (f->running || atomic_load(&f->stopping)) {
		clock_of(since, sizeof(since), f->started);
		pthread_mutex_unlock(&f->lock);
		fleet_hosts_free(&h);
		snprintf(why, sizeof(why), f->running ? "a rollout is running (since %s): wait for its end" :
							"refit is stopping", since);
		return refused(c, w, 409, why);
	}
	if (f->joinable) { /* the last rollout's thread has ended (running is false) */
		pthread_join(f->thread, NULL);
		f->joinable = false;
	}
	snprintf(f->target, sizeof(f->target), "%s", target ? target : "");
	o.target_version = f->target[0] ? f->target : NULL;
	o.progress = on_progress;
	o.stopping = on_stopping;
	o.arg = f;
	f->o = o;
	f->hosts = h;
	f->nlines = 0;
	f->started = time(NULL);
	f->ended = 0;
	f->running = true;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	rc = pthread_create(&f->thread, &attr, rollout_thread, f);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		f->running = false;
		fleet_hosts_free(&f->hosts);
		pthread_mutex_unlock(&f->lock);
		return refused(c, w, 500, "cannot start the rollout's thread");
	}
	f->joinable = true;
	pthread_mutex_unlock(&f->lock);
	log_info("dashboard: fleet rollout started over %zu hosts (canary %ld, batch %ld%s%s)", h.n, o.canary, o.batch,
		 o.target_version ? ", to " : "", o.target_version ? o.target_version : "");
	if (ui_wants_json(c) || w->bearer)
		return ui_answer_json(c, 202, json_pack("{s:s, s:I}", "rollout", "running", "hosts", (json_int_t)h.n));
	return ui_redirect(c, "/ui/fleet", NULL);
}
