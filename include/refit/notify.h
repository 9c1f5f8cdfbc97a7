/* Notifications after a pass: shoutrrr-style URLs, payloads, and delivery off the swap path. */
#ifndef REFIT_NOTIFY_H
#define REFIT_NOTIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/config.h"

#define NOTIFY_MAX_URL 2048
#define NOTIFY_MAX_HEADERS 4
#define NOTIFY_TIMEOUT 10      /* seconds per request */
#define NOTIFY_ATTEMPTS 3      /* tries per URL; waits of 1 s, 2 s between them */
#define NOTIFY_MAX_INFLIGHT 32 /* deliveries at once; more are dropped with a log line */
#define NOTIFY_EXIT_WAIT 15    /* seconds a command waits for deliveries before it exits */

enum notify_kind { NOTIFY_GENERIC, NOTIFY_SLACK, NOTIFY_DISCORD, NOTIFY_NTFY, NOTIFY_GOTIFY };

/*
 * One parsed notification URL. `url`, `user`, `password` and `token` may
 * hold secrets and are never logged; `name` ("ntfy 127.0.0.1:8080") is what
 * log lines say.
 */
struct notify_target {
	enum notify_kind kind;
	char url[NOTIFY_MAX_URL + 128]; /* http:// or https:// address to POST to */
	char name[300];                 /* kind and host[:port] only */
	char user[256];                 /* ntfy Basic auth */
	char password[256];
	bool has_auth;
	char token[256];                /* gotify application token (X-Gotify-Key) */
	char title[256];                /* title parameter, "" for the default */
	char username[128];             /* slack botname / discord username */
	char avatar[512];               /* discord avatar URL */
	char tags[256];                 /* ntfy tags */
	int priority;                   /* gotify 0..10, ntfy 1..5; -1 unset */
};

/*
 * Parse a shoutrrr-style URL: generic+https://HOST/PATH, generic+http://...,
 * generic://... (https; ?disabletls=yes for http), slack://[BOT@]A/B/C or
 * slack://hook:A-B-C@webhook, discord://TOKEN@ID, ntfy://[USER:PASS@]HOST/TOPIC,
 * gotify://HOST[/PATH]/TOKEN. On failure returns -1, *WHY gets a static
 * reason that never quotes the URL (it may hold tokens), and RET is zeroed.
 */
int notify_url_parse(const char *url, struct notify_target *ret, const char **why);

/* Overwrite RET's secrets. */
void notify_target_clear(struct notify_target *t);

/*
 * refit's generic payload for a pass whose result is RESULT ({"containers":
 * [...]} as `refit update --json` prints it; borrowed): {"host", "kind",
 * "operation"?, "containers":[{"name","image","old_digest","new_digest",
 * "outcome","error"?}], "summary"} with only the containers updated, rolled
 * back or failed. NULL when there is none (nothing to say). KIND is
 * "update" or "rollback"; OP_ID may be NULL.
 */
json_t *notify_payload(const char *host, const char *kind, const char *op_id, json_t *result);

/*
 * The payload for a model pass whose result is RESULT ({"models":[...]} as
 * `refit models --json` prints it; borrowed): {"host", "kind":"models",
 * "time", "models":[{"name","old_digest","new_digest","outcome","error"?}],
 * "summary"} with only the models updated or failed; NULL when there is none.
 */
json_t *notify_models_payload(const char *host, json_t *result);

/* What to POST for one target. */
struct notify_message {
	char *body;
	size_t len;
	const char *content_type;
	char headers[NOTIFY_MAX_HEADERS][320]; /* "Name: value" */
	size_t nheaders;
};

/* Build T's request from PAYLOAD (borrowed): JSON for generic, Slack, Discord, Gotify; text for ntfy. */
int notify_render(const struct notify_target *t, json_t *payload, struct notify_message *ret);

void notify_message_free(struct notify_message *m);

/*
 * After a pass: when RESULT lists something updated, rolled back or failed,
 * send it to every URL in CFG's notifications, each on a thread of its own
 * (timeouts, NOTIFY_ATTEMPTS tries on network errors, 5xx and 429). Returns
 * at once; failures are logged with the target's name only. CFG and RESULT
 * are borrowed for the call.
 */
void notify_pass(const struct refit_config *cfg, const char *kind, const char *op_id, json_t *result);

/* After a model pass: as notify_pass, to URLS, for RESULT ({"models":[...]}; borrowed). */
void notify_models(const struct strv *urls, json_t *result);

/*
 * Wait until every delivery has ended, at most TIMEOUT seconds; those still
 * running then are abandoned (logged) and stop within about a second.
 */
void notify_flush(int timeout);

#endif
