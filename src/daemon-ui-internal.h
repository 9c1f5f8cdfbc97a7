/* Between the management API and the dashboard it serves (daemon-api.c, daemon-ui*.c, daemon-session.c). */
#ifndef REFIT_DAEMON_UI_INTERNAL_H
#define REFIT_DAEMON_UI_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/config.h"
#include "refit/ops.h"

struct api;

/* What daemon-api.c lends the dashboard. */

/* Is TOKEN the API token? A wrong one counts as a failed attempt of C's address (answers slow down). */
bool api_token_ok(struct api *a, struct MHD_Connection *c, const char *token);

/* Does C carry a right "Authorization: Bearer" header? (A wrong or missing one counts as a failure.) */
bool api_authorized(struct api *a, struct MHD_Connection *c);

/* As GET /api/v1/containers answers (new reference), or NULL with ERR set; under the configuration's read lock. */
json_t *api_containers_json(struct api *a, char *err, size_t errlen);

/* As GET /api/v1/history answers: {"history":[...]} (new reference); under the read lock. */
json_t *api_history_json(struct api *a);

/* Login sessions (daemon-session.c). */

#define SESSIONS_MAX 64
#define SESSION_ID_LEN 64 /* hex digits of 32 random bytes */

struct sessions;

struct sessions *sessions_new(void);
void sessions_free(struct sessions *s);

/* A new session for TTL seconds: its id and its CSRF token (hex, NUL-terminated); the oldest is forgotten when full. */
int sessions_create(struct sessions *s, long ttl, char id[SESSION_ID_LEN + 1], char csrf[SESSION_ID_LEN + 1]);

/* Is ID a live session? Its CSRF token into CSRF. */
bool sessions_find(struct sessions *s, const char *id, char csrf[SESSION_ID_LEN + 1]);

void sessions_drop(struct sessions *s, const char *id);
void sessions_clear(struct sessions *s);
unsigned sessions_count(struct sessions *s);

/* The dashboard (daemon-ui.c). */

/* Who asks: a session (with its CSRF token), a script with the bearer token, or nobody. */
struct who {
	bool session;
	bool bearer;
	char id[SESSION_ID_LEN + 1];
	char csrf[SESSION_ID_LEN + 1];
};

struct ui_buf;

/* A page's head, header and navigation (REFRESH: seconds of a meta refresh, or NULL), and its end. */
void ui_page_start(struct ui_buf *b, const char *title, const struct who *w, const char *refresh);
void ui_page_end(struct ui_buf *b);

/* <span class="status s-CLS">TEXT</span>, then ERR in its own span when not NULL (all escaped). */
void ui_status(struct ui_buf *b, const char *cls, const char *text, const char *err);

/* Answer page B (freed) with CODE; TIMING: a Server-Timing header or NULL. */
enum MHD_Result ui_answer_page(struct MHD_Connection *c, unsigned code, struct ui_buf *b, const char *timing);

/* Answer J (stolen) as JSON with CODE. */
enum MHD_Result ui_answer_json(struct MHD_Connection *c, unsigned code, json_t *j);

/* 303 to TO, with COOKIE (a Set-Cookie value) or NULL. */
enum MHD_Result ui_redirect(struct MHD_Connection *c, const char *to, const char *cookie);

/* Did the page's script ask (it wants JSON answers)? */
bool ui_wants_json(struct MHD_Connection *c);

struct ui;

struct ui *ui_new(struct api *a, const struct refit_config *cfg, pthread_rwlock_t *cfg_lock, struct ops *ops);
void ui_free(struct ui *u);

/* Does the dashboard answer URL (/, /login, /logout, /ui/..., /api/v1/events)? */
bool ui_owns(const char *url);

/* Answer a complete request for one of ui_owns' URLs; BODY is what was posted (LEN bytes), TOO_LARGE when cut. */
enum MHD_Result ui_handle(struct ui *u, struct MHD_Connection *c, const char *url, const char *method,
			  const char *body, size_t len, bool too_large);

/* The fleet page (daemon-ui-fleet.c): the hosts of fleet.hosts and a rollout over them. */

struct ui_fleet;
struct ui_form;

struct ui_fleet *ui_fleet_new(void);

/* Stop following the running rollout (no more hosts are started) and wait for its thread. */
void ui_fleet_stop(struct ui_fleet *f);
void ui_fleet_free(struct ui_fleet *f);

/* GET /ui/fleet: HOSTS_FILE (fleet.hosts, or NULL) asked now, and the rollout's state. */
enum MHD_Result ui_fleet_page(struct ui_fleet *f, const char *hosts_file, struct MHD_Connection *c,
			      const struct who *w);

/* The form's action fleet-rollout: confirmed, a rollout over HOSTS_FILE starts on a thread of its own. */
enum MHD_Result ui_fleet_rollout(struct ui_fleet *f, const char *hosts_file, struct MHD_Connection *c,
				 const struct who *w, const struct ui_form *form);

/* The API token changed: every login ends. */
void ui_token_changed(struct ui *u);

/* The daemon stops: event streams end. */
void ui_stop(struct ui *u);

#endif
