/* Notifications after a pass: shoutrrr-style URLs, payloads, and delivery off the swap path. */
#ifndef REFIT_NOTIFY_H
#define REFIT_NOTIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/config.h"

#define NOTIFY_MAX_URL 2048
#define NOTIFY_MAX_HEADERS 4
#define NOTIFY_MAX_ITEMS 16     /* chats or devices named by one URL */
#define NOTIFY_TIMEOUT 10      /* seconds per request */
#define NOTIFY_ATTEMPTS 3      /* tries per URL; waits of 1 s, 2 s between them */
#define NOTIFY_MAX_INFLIGHT 32 /* deliveries at once; more are dropped with a log line */
#define NOTIFY_EXIT_WAIT 15    /* seconds a command waits for deliveries before it exits */

enum notify_kind {
	NOTIFY_GENERIC,
	NOTIFY_SLACK,
	NOTIFY_DISCORD,
	NOTIFY_NTFY,
	NOTIFY_GOTIFY,
	NOTIFY_TELEGRAM,
	NOTIFY_PUSHOVER,
	NOTIFY_TEAMS,
	NOTIFY_SMTP,
	NOTIFY_MATRIX,
};

/* smtp://: how the session is encrypted (shoutrrr's encryption and usestarttls). */
enum notify_smtp_tls {
	SMTP_TLS_NONE,     /* plain: usestarttls=no */
	SMTP_TLS_TRY,      /* STARTTLS when the server offers it (encryption=Auto or None with usestarttls) */
	SMTP_TLS_STARTTLS, /* STARTTLS required (encryption=ExplicitTLS) */
	SMTP_TLS_IMPLICIT, /* TLS from the first byte (encryption=ImplicitTLS, or Auto on port 465) */
};

/* smtp://: the AUTH mechanism (shoutrrr's auth). */
enum notify_smtp_auth {
	SMTP_AUTH_NONE,
	SMTP_AUTH_PLAIN,
	SMTP_AUTH_CRAMMD5,
	SMTP_AUTH_OAUTH2, /* XOAUTH2, the password is the bearer token */
};

/*
 * One parsed notification URL. `url`, `user`, `password` and `token` may
 * hold secrets and are never logged; `name` ("ntfy 127.0.0.1:8080") is what
 * log lines say.
 */
struct notify_target {
	enum notify_kind kind;
	char url[NOTIFY_MAX_URL + 128]; /* http:// or https:// address to POST to (smtp: smtp[s]://HOST:PORT/EHLO-NAME; matrix: the server's base) */
	char name[300];                 /* kind and host[:port] only */
	char user[256];                 /* ntfy Basic auth, smtp and matrix login */
	char password[256];
	bool has_auth;
	char token[256];                /* gotify application token (X-Gotify-Key); matrix access token without a user */
	char title[256];                /* title parameter, "" for the default */
	char username[128];             /* slack botname / discord username */
	char avatar[512];               /* discord avatar URL */
	char tags[256];                 /* ntfy tags */
	int priority;                   /* gotify 0..10, ntfy 1..5, pushover -2..1; -1 unset (pushover: 0) */
	bool has_priority;
	char color[32];                 /* slack / teams colour, as given */
	char icon[512];                 /* slack icon: an emoji name or an http(s) URL */
	char channel[128];              /* slack chat.postMessage channel; smtp: the EHLO name (clienthost) */
	bool slack_bot;                 /* slack: chat.postMessage with a bot token (Bearer in token) */
	char thread[64];                /* slack thread_ts, discord thread_id */
	long discord_color, discord_color_error;
	bool split_lines;               /* discord: one embed per line (shoutrrr's default) */
	bool notification, preview;     /* telegram: inverse of disable_notification / disable_web_page_preview */
	char parse_mode[16];            /* telegram: "", "HTML", "Markdown", "MarkdownV2" */
	char items[NOTIFY_MAX_ITEMS][128]; /* telegram chats, pushover devices, smtp recipients, matrix rooms */
	size_t nitems;
	bool legacy_teams;              /* teams: an Office 365 connector URL (MessageCard) */
	char from[128];                 /* smtp: the envelope sender (fromaddress) */
	char from_name[128];            /* smtp: the From header's name (fromname) */
	enum notify_smtp_tls smtp_tls;
	enum notify_smtp_auth smtp_auth;
	char unknown[256];              /* parameters refit does not use, ", "-separated (names only) */
};

/*
 * Parse a shoutrrr-style URL: generic+https://HOST/PATH, generic+http://...,
 * generic://... (https; ?disabletls=yes for http), slack://[BOT@]A/B/C or
 * slack://hook:A-B-C@webhook, discord://TOKEN@ID, ntfy://[USER:PASS@]HOST/TOPIC,
 * gotify://HOST[/PATH]/TOKEN, telegram://, pushover://, teams://,
 * smtp://[USER:PASS@]HOST[:PORT]/?fromaddress=&toaddresses=a,b and
 * matrix://[USER:]PASSWORD@HOST[:PORT]/?rooms=!ID,#ALIAS. On failure returns -1, *WHY gets a static
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

/*
 * What to POST for one target: BODY, then each of MORE (telegram: one body
 * per chat), to the same URL. smtp: one whole mail per recipient (items[i]),
 * headers and CRLF lines; matrix: the m.room.message content, the same for
 * every room.
 */
struct notify_message {
	char *body;
	size_t len;
	char *more[NOTIFY_MAX_ITEMS - 1];
	size_t nmore;
	const char *content_type;
	char headers[NOTIFY_MAX_HEADERS][640]; /* "Name: value" */
	size_t nheaders;
};

/*
 * Build T's request from PAYLOAD (borrowed): JSON for generic, Slack, Discord,
 * Gotify, Telegram (one body per chat), Teams and Matrix; text for ntfy; a
 * form for Pushover; mails for smtp.
 */
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

/* The Matrix API path that sends m.room.message to ROOM (an ID) with transaction TXN, ROOM percent-encoded. */
int notify_matrix_path(const char *room, const char *txn, char *dst, size_t cap);

/*
 * Wait until every delivery has ended, at most TIMEOUT seconds; those still
 * running then are abandoned (logged) and stop within about a second.
 */
void notify_flush(int timeout);

#endif
