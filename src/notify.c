/* Notifications: shoutrrr-style URLs, the pass payload, each service's message (pure: notify-send.c sends). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/check.h"
#include "refit/notify.h"

#define NOTIFY_ERROR_MAX 300 /* bytes of a container's error in a text message */

/* A piece of the URL being parsed (not NUL-terminated). */
struct span {
	const char *p;
	size_t n;
};

/* A URL split as RFC 3986 does, the pieces still encoded. */
struct url_parts {
	char scheme[24]; /* lowercased */
	bool has_userinfo, has_pass;
	struct span user, pass, host, port, path, query;
	bool has_port, has_query;
};

/* State of one parse, for the parameter handlers. */
struct parse_ctx {
	struct notify_target *t;
	bool plain;  /* http instead of https */
	void *extra; /* the service's own parse state */
};

/* True when the N bytes at S are letters, digits or in EXTRA. */
static bool all_of(const char *s, size_t n, const char *extra)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c && strchr(extra, c))))
			return false;
	}
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Copy the N bytes at S into DST (CAP bytes) with %XX decoded, and '+' as a
 * space when PLUS (query strings). -1 on a bad escape, a decoded control
 * character (no header or JSON injection) or overflow.
 */
static int pct_decode(const char *s, size_t n, bool plus, char *dst, size_t cap)
{
	size_t j = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3)
				return -1;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		} else if (plus && c == '+') {
			c = ' ';
		}
		if (c < 0x20 || c == 0x7f || j + 1 >= cap)
			return -1;
		dst[j++] = (char)c;
	}
	if (cap == 0)
		return -1;
	dst[j] = '\0';
	return 0;
}

/* Copy the span into DST (CAP bytes) as it is; false when it does not fit. */
static bool span_copy(struct span s, char *dst, size_t cap)
{
	if (s.n >= cap)
		return false;
	memcpy(dst, s.p, s.n);
	dst[s.n] = '\0';
	return true;
}

static bool span_is(struct span s, const char *word)
{
	return s.n == strlen(word) && strncasecmp(s.p, word, s.n) == 0;
}

/* Split URL into its parts; a static reason on failure. */
static const char *url_split(const char *url, struct url_parts *u)
{
	size_t len = strlen(url);
	const char *sep, *auth, *auth_end, *hp, *at = NULL, *q, *end;

	memset(u, 0, sizeof(*u));
	if (len == 0 || len > NOTIFY_MAX_URL)
		return "expected a URL of 1 to 2048 bytes";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];

		if (c <= 0x20 || c >= 0x7f)
			return "spaces, control and non-ASCII characters must be percent-encoded";
		if (c == '#')
			return "a fragment (#...) is not allowed";
	}
	sep = strstr(url, "://");
	if (!sep || sep == url || (size_t)(sep - url) >= sizeof(u->scheme) || !all_of(url, (size_t)(sep - url), "+.-"))
		return "expected SCHEME://..., e.g. generic+https://HOST/PATH or ntfy://HOST/TOPIC";
	for (size_t i = 0; url + i < sep; i++)
		u->scheme[i] = (char)((url[i] >= 'A' && url[i] <= 'Z') ? url[i] - 'A' + 'a' : url[i]);
	end = url + len;
	auth = sep + 3;
	auth_end = auth + strcspn(auth, "/?");
	if (strcmp(u->scheme, "slack") == 0) {
		/* shoutrrr's slack://hook:A/B/C@webhook: the token may hold '/', up to the last '@' before the query */
		const char *q0 = auth + strcspn(auth, "?"), *last = NULL;

		for (const char *p = auth; p < q0; p++)
			if (*p == '@')
				last = p;
		if (last && last >= auth_end)
			auth_end = last + 1 + strcspn(last + 1, "/?");
	}
	for (const char *p = auth; p < auth_end; p++)
		if (*p == '@')
			at = p;
	hp = auth;
	if (at) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));

		u->has_userinfo = true;
		u->user = (struct span){ auth, (size_t)((colon ? colon : at) - auth) };
		if (colon) {
			u->has_pass = true;
			u->pass = (struct span){ colon + 1, (size_t)(at - colon - 1) };
		}
		hp = at + 1;
	}
	if (hp < auth_end && *hp == '[') {
		const char *close = memchr(hp, ']', (size_t)(auth_end - hp));

		if (!close)
			return "unterminated [IPv6] address";
		u->host = (struct span){ hp, (size_t)(close + 1 - hp) };
		if (close + 1 < auth_end) {
			if (close[1] != ':')
				return "unexpected text after the [IPv6] address";
			u->has_port = true;
			u->port = (struct span){ close + 2, (size_t)(auth_end - close - 2) };
		}
	} else {
		const char *colon = NULL;

		for (const char *p = hp; p < auth_end; p++)
			if (*p == ':')
				colon = p;
		u->host = (struct span){ hp, (size_t)((colon ? colon : auth_end) - hp) };
		if (colon) {
			u->has_port = true;
			u->port = (struct span){ colon + 1, (size_t)(auth_end - colon - 1) };
		}
	}
	if (u->has_port) {
		long port = 0;

		if (u->port.n == 0 || u->port.n > 5)
			return "expected a port of 1 to 65535";
		for (size_t i = 0; i < u->port.n; i++) {
			if (u->port.p[i] < '0' || u->port.p[i] > '9')
				return "expected a port of 1 to 65535";
			port = port * 10 + (u->port.p[i] - '0');
		}
		if (port < 1 || port > 65535)
			return "expected a port of 1 to 65535";
	}
	q = memchr(auth_end, '?', (size_t)(end - auth_end));
	u->path = (struct span){ auth_end, (size_t)((q ? q : end) - auth_end) };
	if (q) {
		u->has_query = true;
		u->query = (struct span){ q + 1, (size_t)(end - q - 1) };
	}
	return NULL;
}

/* A host name or address as written in a URL: name, IPv4, or [IPv6]. */
static bool host_valid(struct span h)
{
	if (h.n == 0 || h.n > 253)
		return false;
	if (h.p[0] == '[')
		return h.n > 2 && h.p[h.n - 1] == ']' && all_of(h.p + 1, h.n - 2, ":.") &&
		       memchr(h.p + 1, ':', h.n - 2) != NULL;
	return all_of(h.p, h.n, ".-_") && h.p[0] != '.' && h.p[0] != '-';
}

/* "host[:port]" of U into DST. */
static void host_port(const struct url_parts *u, char *dst, size_t cap)
{
	snprintf(dst, cap, "%.*s%s%.*s", (int)u->host.n, u->host.p, u->has_port ? ":" : "", (int)u->port.n,
		 u->port.p);
}

/* Copy a parameter value into DST (CAP bytes); false when too long. */
static bool put(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);

	if (n >= cap)
		return false;
	memcpy(dst, v, n + 1);
	return true;
}

/* Parse "yes/no/true/false/1/0" into *RET. */
static bool parse_yes(const char *v, bool *ret)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1")) {
		*ret = true;
		return true;
	}
	if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0")) {
		*ret = false;
		return true;
	}
	return false;
}

/* A decimal integer MIN..MAX. */
static bool parse_int(const char *v, int min, int max, int *ret)
{
	long n = 0;

	if (!*v || strlen(v) > 3)
		return false;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		n = n * 10 + (*p - '0');
	}
	if (n < min || n > max)
		return false;
	*ret = (int)n;
	return true;
}

/* True when S is valid UTF-8 (what JSON bodies need). */
static bool utf8_valid(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

typedef const char *(*param_fn)(struct parse_ctx *c, const char *key, const char *value);

/* What a parameter handler returns for a parameter refit does not use: noted, never an error. */
static const char unknown_param[] = "unknown parameter";

/* Add KEY to T's list of parameters refit does not use (names only, bounded). */
static void note_unknown(struct notify_target *t, const char *key)
{
	size_t n = strlen(t->unknown);

	if (n + strlen(key) + 8 >= sizeof(t->unknown)) {
		if (n + 5 < sizeof(t->unknown) && (n < 3 || strcmp(t->unknown + n - 3, "...")))
			strcat(t->unknown, n ? ", ..." : "...");
		return;
	}
	snprintf(t->unknown + n, sizeof(t->unknown) - n, "%s%s", n ? ", " : "", key);
}

/* Hand each KEY=VALUE of the query (decoded) to FN; the first reason it gives, or NULL. */
static const char *each_param(struct span q, struct parse_ctx *c, param_fn fn)
{
	const char *p = q.p, *end = q.p + q.n;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *eq, *why;
		char key[64], value[NOTIFY_MAX_URL + 1];

		if (!amp)
			amp = end;
		if (amp == p) {
			p++;
			continue;
		}
		eq = memchr(p, '=', (size_t)(amp - p));
		if (pct_decode(p, (size_t)((eq ? eq : amp) - p), true, key, sizeof(key)) < 0 ||
		    pct_decode(eq ? eq + 1 : amp, eq ? (size_t)(amp - eq - 1) : 0, true, value, sizeof(value)) < 0 ||
		    !utf8_valid(value))
			return "a parameter is badly encoded, has control characters, is not UTF-8 or is too long";
		why = fn(c, key, value);
		if (why == unknown_param)
			note_unknown(c->t, key);
		else if (why)
			return why;
		p = amp < end ? amp + 1 : end;
	}
	return NULL;
}

static const char *slack_param(struct parse_ctx *c, const char *k, const char *v)
{
	if (!strcasecmp(k, "title"))
		return put(c->t->title, sizeof(c->t->title), v) ? NULL : "slack: title is too long";
	if (!strcasecmp(k, "botname") || !strcasecmp(k, "username"))
		return put(c->t->username, sizeof(c->t->username), v) ? NULL : "slack: botname is too long";
	if (!strcasecmp(k, "color"))
		return put(c->t->color, sizeof(c->t->color), v) ? NULL : "slack: color is too long";
	if (!strcasecmp(k, "icon") || !strcasecmp(k, "icon_emoji") || !strcasecmp(k, "icon_url"))
		return put(c->t->icon, sizeof(c->t->icon), v) ? NULL : "slack: icon is too long";
	if (!strcasecmp(k, "thread_ts")) {
		if (!*v || strspn(v, "0123456789.") != strlen(v))
			return "slack: thread_ts is a message timestamp (digits and '.')";
		return put(c->t->thread, sizeof(c->t->thread), v) ? NULL : "slack: thread_ts is too long";
	}
	return unknown_param;
}

static const char *discord_param(struct parse_ctx *c, const char *k, const char *v)
{
	if (!strcasecmp(k, "title"))
		return put(c->t->title, sizeof(c->t->title), v) ? NULL : "discord: title is too long";
	if (!strcasecmp(k, "username"))
		return put(c->t->username, sizeof(c->t->username), v) ? NULL : "discord: username is too long";
	if (!strcasecmp(k, "avatar") || !strcasecmp(k, "avatarurl")) {
		if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0)
			return "discord: avatar must be an http(s) URL";
		return put(c->t->avatar, sizeof(c->t->avatar), v) ? NULL : "discord: avatar is too long";
	}
	if (!strcasecmp(k, "color") || !strcasecmp(k, "colorerror") || !strcasecmp(k, "colorwarn") ||
	    !strcasecmp(k, "colorinfo") || !strcasecmp(k, "colordebug")) {
		const char *h = strncasecmp(v, "0x", 2) == 0 ? v + 2 : (*v == '#' ? v + 1 : v);
		char *end;
		long n;

		if (!*h || strlen(h) > 6 || !all_of(h, strlen(h), ""))
			return "discord: a color is hexadecimal, e.g. 0x50D9ff";
		n = strtol(h, &end, 16);
		if (*end)
			return "discord: a color is hexadecimal, e.g. 0x50D9ff";
		if (!strcasecmp(k, "color"))
			c->t->discord_color = n;
		else if (!strcasecmp(k, "colorerror"))
			c->t->discord_color_error = n;
		return NULL; /* warn, info and debug colours: refit's messages have no such levels */
	}
	if (!strcasecmp(k, "splitlines"))
		return parse_yes(v, &c->t->split_lines) ? NULL : "discord: splitlines must be yes or no";
	if (!strcasecmp(k, "thread_id")) {
		if (!*v || strlen(v) > 32 || !all_of(v, strlen(v), "") || strspn(v, "0123456789") != strlen(v))
			return "discord: thread_id is a number";
		return put(c->t->thread, sizeof(c->t->thread), v) ? NULL : "discord: thread_id is too long";
	}
	return unknown_param;
}

static const char *ntfy_param(struct parse_ctx *c, const char *k, const char *v)
{
	static const char *const names[] = { "min", "low", "default", "high", "max", NULL };

	if (!strcasecmp(k, "title"))
		return put(c->t->title, sizeof(c->t->title), v) ? NULL : "ntfy: title is too long";
	if (!strcasecmp(k, "tags"))
		return put(c->t->tags, sizeof(c->t->tags), v) ? NULL : "ntfy: tags are too long";
	if (!strcasecmp(k, "scheme")) {
		if (strcasecmp(v, "http") && strcasecmp(v, "https"))
			return "ntfy: scheme must be http or https";
		c->plain = !strcasecmp(v, "http");
		return NULL;
	}
	if (!strcasecmp(k, "priority")) {
		for (int i = 0; names[i]; i++)
			if (!strcasecmp(v, names[i])) {
				c->t->priority = i + 1;
				return NULL;
			}
		if (!strcasecmp(v, "urgent")) {
			c->t->priority = 5;
			return NULL;
		}
		return parse_int(v, 1, 5, &c->t->priority) ? NULL :
			"ntfy: priority must be 1 to 5 or min, low, default, high, max, urgent";
	}
	return unknown_param;
}

static const char *gotify_param(struct parse_ctx *c, const char *k, const char *v)
{
	bool yes;

	if (!strcasecmp(k, "title"))
		return put(c->t->title, sizeof(c->t->title), v) ? NULL : "gotify: title is too long";
	if (!strcasecmp(k, "priority"))
		return parse_int(v, 0, 10, &c->t->priority) ? NULL : "gotify: priority must be 0 to 10";
	if (!strcasecmp(k, "disabletls")) {
		if (!parse_yes(v, &yes))
			return "gotify: disabletls must be yes or no";
		c->plain = yes;
		return NULL;
	}
	return unknown_param;
}

static const char *generic_param(struct parse_ctx *c, const char *k, const char *v)
{
	bool yes;

	if (!strcasecmp(k, "disabletls")) {
		if (!parse_yes(v, &yes))
			return "generic: disabletls must be yes or no";
		c->plain = yes;
	}
	return NULL; /* the others are the receiver's: passed on */
}

/*
 * slack://[BOT@]A/B/C (legacy), slack://hook:A-B-C@webhook (webhook; the
 * parts may also be separated by '/' or ','), slack://xoxb:A-B-C@CHANNEL
 * (bot token: chat.postMessage).
 */
static const char *parse_slack(struct parse_ctx *c, const struct url_parts *u)
{
	static const char *const form =
		"slack: expected slack://hook:TOKEN-A-TOKEN-B-TOKEN-C@webhook, slack://xoxb:TOKEN@CHANNEL or slack://TOKEN-A/TOKEN-B/TOKEN-C";
	struct notify_target *t = c->t;
	struct span tok[3];

	if (u->has_pass) {
		const char *p, *end;
		int n = 0;
		bool bot = span_is(u->user, "xoxb") || span_is(u->user, "xoxp");

		if (!bot && !span_is(u->user, "hook"))
			return form;
		if (u->has_port || (u->path.n && !(u->path.n == 1 && u->path.p[0] == '/')))
			return form;
		if (!bot && !span_is(u->host, "webhook"))
			return form;
		p = u->pass.p;
		end = p + u->pass.n;
		while (n < 3) {
			const char *sep = p;

			while (sep < end && *sep != '-' && *sep != '/' && *sep != ',')
				sep++;
			if (n < 2 && sep == end)
				return form;
			tok[n] = (struct span){ p, (size_t)((n < 2 ? sep : end) - p) };
			n++;
			p = sep < end ? sep + 1 : end;
		}
		if (bot) {
			if (u->host.n == 0 || u->host.n >= sizeof(t->channel) || !all_of(u->host.p, u->host.n, "_-"))
				return "slack: the channel is its ID, e.g. C001CH4NN3L";
			for (int i = 0; i < 3; i++)
				if (tok[i].n == 0 || tok[i].n > 128 || !all_of(tok[i].p, tok[i].n, ""))
					return form;
			span_copy(u->host, t->channel, sizeof(t->channel));
			snprintf(t->token, sizeof(t->token), "%.4s-%.*s-%.*s-%.*s", u->user.p, (int)tok[0].n, tok[0].p,
				 (int)tok[1].n, tok[1].p, (int)tok[2].n, tok[2].p);
			t->slack_bot = true;
			snprintf(t->url, sizeof(t->url), "https://slack.com/api/chat.postMessage");
			snprintf(t->name, sizeof(t->name), "slack slack.com");
			return u->has_query ? each_param(u->query, c, slack_param) : NULL;
		}
	} else {
		const char *slash;

		if (u->has_port || u->path.n < 2 || u->path.p[0] != '/')
			return form;
		tok[0] = u->host;
		tok[1].p = u->path.p + 1;
		slash = memchr(tok[1].p, '/', (size_t)(u->path.p + u->path.n - tok[1].p));
		if (!slash)
			return form;
		tok[1].n = (size_t)(slash - tok[1].p);
		tok[2].p = slash + 1;
		tok[2].n = (size_t)(u->path.p + u->path.n - tok[2].p);
		if (tok[2].n && tok[2].p[tok[2].n - 1] == '/')
			tok[2].n--;
		if (u->has_userinfo && pct_decode(u->user.p, u->user.n, false, t->username, sizeof(t->username)) < 0)
			return "slack: bad bot name";
	}
	for (int i = 0; i < 3; i++)
		if (tok[i].n == 0 || tok[i].n > 128 || !all_of(tok[i].p, tok[i].n, "_"))
			return form;
	snprintf(t->url, sizeof(t->url), "https://hooks.slack.com/services/%.*s/%.*s/%.*s", (int)tok[0].n, tok[0].p,
		 (int)tok[1].n, tok[1].p, (int)tok[2].n, tok[2].p);
	snprintf(t->name, sizeof(t->name), "slack hooks.slack.com");
	return u->has_query ? each_param(u->query, c, slack_param) : NULL;
}

/* Split the comma-separated V into T's items (at most NOTIFY_MAX_ITEMS, each checked by OK). */
static const char *put_items(struct notify_target *t, const char *v, bool (*ok)(const char *item), const char *bad)
{
	const char *p = v;

	t->nitems = 0;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n) {
			if (t->nitems >= NOTIFY_MAX_ITEMS)
				return "at most 16 chats or devices per URL";
			if (n >= sizeof(t->items[0]))
				return bad;
			memcpy(t->items[t->nitems], p, n);
			t->items[t->nitems][n] = '\0';
			if (!ok(t->items[t->nitems]))
				return bad;
			t->nitems++;
		}
		p += n;
		if (*p)
			p++;
	}
	return NULL;
}

/* A telegram chat: @channel_name, or a (negative) chat ID, each optionally ":THREAD-ID". */
static bool telegram_chat_ok(const char *v)
{
	const char *colon = strchr(v, ':');
	size_t n = colon ? (size_t)(colon - v) : strlen(v);

	if (colon && (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 12))
		return false;
	if (v[0] == '@')
		return n >= 2 && n <= 33 && all_of(v + 1, n - 1, "_");
	if (v[0] == '-')
		v++, n--;
	return n >= 1 && n <= 20 && strspn(v, "0123456789") >= n;
}

static const char *telegram_param(struct parse_ctx *c, const char *k, const char *v)
{
	if (!strcasecmp(k, "chats") || !strcasecmp(k, "channels"))
		return put_items(c->t, v, telegram_chat_ok,
				 "telegram: a chat is @channel or a chat ID (optionally :THREAD-ID)");
	if (!strcasecmp(k, "title"))
		return put(c->t->title, sizeof(c->t->title), v) ? NULL : "telegram: title is too long";
	if (!strcasecmp(k, "notification"))
		return parse_yes(v, &c->t->notification) ? NULL : "telegram: notification must be yes or no";
	if (!strcasecmp(k, "preview"))
		return parse_yes(v, &c->t->preview) ? NULL : "telegram: preview must be yes or no";
	if (!strcasecmp(k, "parsemode")) {
		static const char *const modes[] = { "None", "Markdown", "HTML", "MarkdownV2", NULL };

		for (int i = 0; modes[i]; i++)
			if (!strcasecmp(v, modes[i])) {
				snprintf(c->t->parse_mode, sizeof(c->t->parse_mode), "%s", i ? modes[i] : "");
				return NULL;
			}
		return "telegram: parsemode must be None, HTML, Markdown or MarkdownV2";
	}
	return unknown_param;
}

/* telegram://BOT-ID:TOKEN@telegram?chats=@channel,123 -> POST https://api.telegram.org/botBOT-ID:TOKEN/sendMessage. */
static const char *parse_telegram(struct parse_ctx *c, const struct url_parts *u)
{
	static const char *const form = "telegram: expected telegram://BOT-ID:TOKEN@telegram?chats=@CHANNEL,CHAT-ID";
	struct notify_target *t = c->t;
	const char *why;

	if (!u->has_pass || !span_is(u->host, "telegram") || u->has_port ||
	    (u->path.n && !(u->path.n == 1 && u->path.p[0] == '/')))
		return form;
	if (u->user.n == 0 || u->user.n > 20 || strspn(u->user.p, "0123456789") < u->user.n || u->pass.n == 0 ||
	    u->pass.n > 100 || !all_of(u->pass.p, u->pass.n, "_-"))
		return "telegram: the token is BOT-ID:KEY as @BotFather gives it";
	if (u->has_query && (why = each_param(u->query, c, telegram_param)) != NULL)
		return why;
	if (t->nitems == 0)
		return "telegram: name at least one chat (?chats=@channel,CHAT-ID)";
	snprintf(t->token, sizeof(t->token), "%.*s:%.*s", (int)u->user.n, u->user.p, (int)u->pass.n, u->pass.p);
	snprintf(t->url, sizeof(t->url), "https://api.telegram.org/bot%s/sendMessage", t->token);
	snprintf(t->name, sizeof(t->name), "telegram api.telegram.org");
	return NULL;
}

/* A pushover device name. */
static bool pushover_device_ok(const char *v)
{
	return *v && strlen(v) <= 25 && all_of(v, strlen(v), "_-");
}

static const char *pushover_param(struct parse_ctx *c, const char *k, const char *v)
{
	if (!strcasecmp(k, "devices"))
		return put_items(c->t, v, pushover_device_ok, "pushover: a device name is up to 25 letters, digits, '_' or '-'");
	if (!strcasecmp(k, "title"))
		return put(c->t->title, sizeof(c->t->title), v) ? NULL : "pushover: title is too long";
	if (!strcasecmp(k, "priority")) {
		int p;

		if (!strcmp(v, "-2") || !strcmp(v, "-1"))
			p = -(v[1] - '0');
		else if (!parse_int(v, 0, 1, &p))
			return "pushover: priority must be -2, -1, 0 or 1";
		c->t->priority = p;
		c->t->has_priority = true;
		return NULL;
	}
	if (!strcasecmp(k, "encryptionkey") || !strcasecmp(k, "key"))
		return "pushover: end-to-end encryption (encryptionkey) is not supported: refit would send in clear";
	return unknown_param;
}

/* pushover://shoutrrr:API-TOKEN@USER-KEY/?devices=a,b -> POST https://api.pushover.net/1/messages.json (a form). */
static const char *parse_pushover(struct parse_ctx *c, const struct url_parts *u)
{
	struct notify_target *t = c->t;
	const char *why;

	if (!u->has_pass || u->has_port || (u->path.n && !(u->path.n == 1 && u->path.p[0] == '/')))
		return "pushover: expected pushover://shoutrrr:API-TOKEN@USER-KEY/";
	if (u->pass.n == 0 || u->pass.n > 64 || !all_of(u->pass.p, u->pass.n, ""))
		return "pushover: the API token is letters and digits";
	if (u->host.n == 0 || u->host.n > 64 || !all_of(u->host.p, u->host.n, ""))
		return "pushover: the user key is letters and digits";
	if (u->has_query && (why = each_param(u->query, c, pushover_param)) != NULL)
		return why;
	span_copy(u->pass, t->token, sizeof(t->token));
	span_copy(u->host, t->user, sizeof(t->user));
	snprintf(t->url, sizeof(t->url), "https://api.pushover.net/1/messages.json");
	snprintf(t->name, sizeof(t->name), "pushover api.pushover.net");
	return NULL;
}

static const char *teams_param(struct parse_ctx *c, const char *k, const char *v)
{
	if (!strcasecmp(k, "title"))
		return put(c->t->title, sizeof(c->t->title), v) ? NULL : "teams: title is too long";
	if (!strcasecmp(k, "color"))
		return put(c->t->color, sizeof(c->t->color), v) ? NULL : "teams: color is too long";
	if (!strcasecmp(k, "host"))
		return put(c->t->url, sizeof(c->t->url), v) ? NULL : "teams: host is too long";
	return unknown_param;
}

/* True when HOST (N bytes) ends with SUFFIX. */
static bool ends_with(const char *host, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n > k && strncasecmp(host + n - k, suffix, k) == 0;
}

/* A Power Automate workflow URL, as shoutrrr's teams service accepts: https://NAME.logic.azure.com/.../workflows/... or NAME.environment.api.powerplatform.com. */
static bool teams_workflow_ok(const char *v)
{
	struct url_parts w;
	bool azure = false;

	if (strncmp(v, "https://", 8) != 0 || url_split(v, &w) != NULL || w.has_userinfo || !host_valid(w.host))
		return false;
	for (size_t i = 0; i + 13 <= w.host.n; i++)
		if (strncasecmp(w.host.p + i, ".logic.azure.", 13) == 0 || (i + 12 == w.host.n &&
		    strncasecmp(w.host.p + i, ".logic.azure", 12) == 0))
			azure = true;
	if (!azure && !ends_with(w.host.p, w.host.n, ".environment.api.powerplatform.com"))
		return false;
	for (size_t i = 0; i + 11 <= w.path.n; i++)
		if (strncmp(w.path.p + i, "/workflows/", 11) == 0)
			return true;
	return false;
}

/*
 * teams://?host=WORKFLOW-URL (Power Automate, an Adaptive Card) or the legacy
 * teams://GROUP@TENANT/ALTID/GROUPOWNER?host=NAME.webhook.office.com (an
 * Office 365 connector, a MessageCard).
 */
static const char *parse_teams(struct parse_ctx *c, const struct url_parts *u)
{
	struct notify_target *t = c->t;
	const char *why;

	if (u->has_query && (why = each_param(u->query, c, teams_param)) != NULL)
		return why;
	if (!u->has_userinfo && u->host.n == 0 && !u->has_port && u->path.n <= 1) {
		struct url_parts w;

		if (!t->url[0])
			return "teams: expected teams://?host=WORKFLOW-URL (the Power Automate URL, percent-encoded)";
		if (!teams_workflow_ok(t->url))
			return "teams: host must be a Power Automate workflow URL (https://...logic.azure.com/.../workflows/...)";
		url_split(t->url, &w);
		host_port(&w, t->name + 6, sizeof(t->name) - 6);
		memcpy(t->name, "teams ", 6);
		return NULL;
	} else {
		struct span path = u->path, alt, owner;
		const char *slash;
		char host[256];

		if (!u->has_userinfo || u->has_pass || u->has_port || path.n < 2 || path.p[0] != '/')
			return "teams: expected teams://?host=WORKFLOW-URL or teams://GROUP@TENANT/ALTID/GROUPOWNER?host=HOST";
		if (path.p[path.n - 1] == '/')
			path.n--;
		slash = memchr(path.p + 1, '/', path.n - 1);
		if (!slash)
			return "teams: expected teams://GROUP@TENANT/ALTID/GROUPOWNER?host=HOST";
		alt = (struct span){ path.p + 1, (size_t)(slash - path.p - 1) };
		owner = (struct span){ slash + 1, (size_t)(path.p + path.n - slash - 1) };
		if (u->user.n == 0 || u->user.n > 64 || !all_of(u->user.p, u->user.n, "-") || u->host.n == 0 ||
		    u->host.n > 64 || !all_of(u->host.p, u->host.n, "-") || alt.n == 0 || alt.n > 64 ||
		    !all_of(alt.p, alt.n, "") || owner.n == 0 || owner.n > 64 || !all_of(owner.p, owner.n, "-"))
			return "teams: GROUP, TENANT, ALTID and GROUPOWNER are the IDs of the webhook URL";
		if (strlen(t->url) >= sizeof(host))
			return "teams: host must be the webhook's host name, e.g. example.webhook.office.com";
		snprintf(host, sizeof(host), "%.255s", t->url[0] ? t->url : "outlook.office.com");
		if (!host_valid((struct span){ host, strlen(host) }) || host[0] == '[')
			return "teams: host must be the webhook's host name, e.g. example.webhook.office.com";
		snprintf(t->url, sizeof(t->url), "https://%s/%s/%.*s@%.*s/IncomingWebhook/%.*s/%.*s", host,
			 strcmp(host, "outlook.office.com") ? "webhookb2" : "webhook", (int)u->user.n, u->user.p,
			 (int)u->host.n, u->host.p, (int)alt.n, alt.p, (int)owner.n, owner.p);
		snprintf(t->name, sizeof(t->name), "teams %.200s", host);
		t->legacy_teams = true;
		return NULL;
	}
}

/* discord://TOKEN@ID -> https://discord.com/api/webhooks/ID/TOKEN. */
static const char *parse_discord(struct parse_ctx *c, const struct url_parts *u)
{
	static const char *const form = "discord: expected discord://TOKEN@WEBHOOK-ID";
	struct notify_target *t = c->t;
	const char *why;

	if (!u->has_userinfo || u->has_pass || u->has_port || u->user.n == 0 || u->user.n > 200 ||
	    !all_of(u->user.p, u->user.n, "_-.") || u->host.n == 0 || u->host.n > 32 ||
	    !all_of(u->host.p, u->host.n, "") ||
	    (u->path.n && !(u->path.n == 1 && u->path.p[0] == '/') && !span_is(u->path, "/raw")))
		return form;
	if (span_is(u->path, "/raw"))
		note_unknown(t, "/raw"); /* shoutrrr's json=yes: the message as the JSON payload; refit sends its embeds */
	for (size_t i = 0; i < u->host.n; i++)
		if (u->host.p[i] < '0' || u->host.p[i] > '9')
			return "discord: the webhook ID is a number (discord://TOKEN@WEBHOOK-ID)";
	if (u->has_query && (why = each_param(u->query, c, discord_param)) != NULL)
		return why;
	snprintf(t->url, sizeof(t->url), "https://discord.com/api/webhooks/%.*s/%.*s%s%s", (int)u->host.n, u->host.p,
		 (int)u->user.n, u->user.p, t->thread[0] ? "?thread_id=" : "", t->thread);
	snprintf(t->name, sizeof(t->name), "discord discord.com");
	return NULL;
}

/* ntfy://[USER:PASS@]HOST[:PORT]/TOPIC -> POST https://HOST[:PORT]/TOPIC (ntfy.sh when HOST is empty). */
static const char *parse_ntfy(struct parse_ctx *c, const struct url_parts *u)
{
	static const char *const form = "ntfy: expected ntfy://[USER:PASSWORD@]HOST[:PORT]/TOPIC";
	struct notify_target *t = c->t;
	struct span topic = { u->path.p + 1, u->path.n ? u->path.n - 1 : 0 };
	char hp[300];
	const char *why;

	if (u->path.n < 2 || u->path.p[0] != '/')
		return form;
	if (topic.p[topic.n - 1] == '/')
		topic.n--;
	if (topic.n == 0 || topic.n > 64 || !all_of(topic.p, topic.n, "_-"))
		return "ntfy: the topic is 1 to 64 letters, digits, '_' or '-'";
	if (u->host.n == 0 && u->has_port)
		return form;
	if (u->host.n && !host_valid(u->host))
		return "ntfy: invalid host";
	if (u->has_userinfo) {
		if (pct_decode(u->user.p, u->user.n, false, t->user, sizeof(t->user)) < 0 ||
		    (u->has_pass && pct_decode(u->pass.p, u->pass.n, false, t->password, sizeof(t->password)) < 0))
			return "ntfy: bad user or password";
		t->has_auth = true;
	}
	if (u->has_query && (why = each_param(u->query, c, ntfy_param)) != NULL)
		return why;
	if (u->host.n)
		host_port(u, hp, sizeof(hp));
	else
		snprintf(hp, sizeof(hp), "ntfy.sh");
	snprintf(t->url, sizeof(t->url), "%s://%s/%.*s", c->plain ? "http" : "https", hp, (int)topic.n, topic.p);
	snprintf(t->name, sizeof(t->name), "ntfy %.290s", hp);
	return NULL;
}

/* gotify://HOST[:PORT][/PATH]/TOKEN -> POST https://HOST[:PORT][/PATH]/message, token in X-Gotify-Key. */
static const char *parse_gotify(struct parse_ctx *c, const struct url_parts *u)
{
	static const char *const form = "gotify: expected gotify://HOST[:PORT][/PATH]/TOKEN";
	struct notify_target *t = c->t;
	struct span path = u->path, token;
	const char *slash = NULL, *why;
	char hp[300];

	if (u->has_userinfo)
		return form;
	if (!host_valid(u->host))
		return "gotify: invalid host";
	if (path.n && path.p[path.n - 1] == '/')
		path.n--;
	if (path.n < 2 || path.p[0] != '/')
		return form;
	for (size_t i = 0; i < path.n; i++)
		if (path.p[i] == '/')
			slash = path.p + i;
	token = (struct span){ slash + 1, (size_t)(path.p + path.n - slash - 1) };
	if (token.n == 0 || token.n >= sizeof(t->token) || !all_of(token.p, token.n, "._-"))
		return "gotify: the token is letters, digits, '.', '_' or '-'";
	for (const char *p = path.p; p < slash; p++)
		if (*p == '/' ? !(p + 1 < slash && p[1] != '/') : !all_of(p, 1, "._~-"))
			return "gotify: bad path";
	if (u->has_query && (why = each_param(u->query, c, gotify_param)) != NULL)
		return why;
	span_copy(token, t->token, sizeof(t->token));
	host_port(u, hp, sizeof(hp));
	snprintf(t->url, sizeof(t->url), "%s://%s%.*s/message", c->plain ? "http" : "https", hp,
		 (int)(slash - path.p), path.p);
	snprintf(t->name, sizeof(t->name), "gotify %.290s", hp);
	return NULL;
}

/* generic+https://..., generic+http://..., generic://... (https unless ?disabletls=yes): refit's JSON. */
static const char *parse_generic(struct parse_ctx *c, const struct url_parts *u, const char *url)
{
	struct notify_target *t = c->t;
	const char *rest = strstr(url, "://") + 3, *why;
	char hp[300];

	if (!host_valid(u->host))
		return "generic: invalid host";
	if (strcmp(u->scheme, "generic") == 0) {
		/* shoutrrr's form: its own disabletls parameter is taken out, the rest passed on. */
		const char *p = u->query.p, *end = u->has_query ? u->query.p + u->query.n : p; /* p is NULL without a query */
		size_t n;

		if (u->has_query && (why = each_param(u->query, c, generic_param)) != NULL)
			return why;
		n = (size_t)snprintf(t->url, sizeof(t->url), "%s://%.*s", c->plain ? "http" : "https",
				     (int)(u->path.p + u->path.n - rest), rest);
		while (u->has_query && p < end) {
			const char *amp = memchr(p, '&', (size_t)(end - p));

			if (!amp)
				amp = end;
			if (amp > p && !(strncasecmp(p, "disabletls", 10) == 0 && (p + 10 == amp || p[10] == '=')) &&
			    n < sizeof(t->url))
				n += (size_t)snprintf(t->url + n, sizeof(t->url) - n, "%c%.*s",
						      strchr(t->url, '?') ? '&' : '?', (int)(amp - p), p);
			p = amp < end ? amp + 1 : end;
		}
	} else {
		snprintf(t->url, sizeof(t->url), "%s://%s", strcmp(u->scheme, "generic+http") == 0 ? "http" : "https",
			 rest);
	}
	host_port(u, hp, sizeof(hp));
	snprintf(t->name, sizeof(t->name), "generic %.290s", hp);
	return NULL;
}

/* A mail address as SMTP's envelope takes it: LOCAL@DOMAIN, printable ASCII, no spaces, brackets, quotes or commas. */
static bool mail_address_ok(const char *v)
{
	const char *at = strrchr(v, '@');
	size_t n = strlen(v);

	if (n < 3 || n > 127 || !at || at == v || !at[1] || strchr(v, '@') != at)
		return false;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("<>()[]\\,;:\"", *p))
			return false;
	return host_valid((struct span){ at + 1, strlen(at + 1) });
}

/* SMTP's state of one parse: the parameters read before the URL's parts are checked. */
struct smtp_parse {
	int encryption; /* 0 None, 1 ExplicitTLS, 2 ImplicitTLS, 3 Auto */
	int auth;       /* -1 Unknown, else enum notify_smtp_auth */
	bool starttls;
};

/* shoutrrr's '+' in an address comes out of the query as a space: put it back (its FixEmailTags). */
static void plus_back(char *v)
{
	for (; *v; v++)
		if (*v == ' ')
			*v = '+';
}

static bool recipient_ok(const char *v)
{
	char a[128];

	snprintf(a, sizeof(a), "%s", v);
	plus_back(a);
	return mail_address_ok(a);
}

static const char *smtp_param(struct parse_ctx *c, const char *k, const char *v)
{
	struct smtp_parse *sp = c->extra;
	static const char *const enc[] = { "None", "ExplicitTLS", "ImplicitTLS", "Auto", NULL };
	static const char *const auth[] = { "None", "Plain", "CRAMMD5", "OAuth2", NULL };
	bool yes;

	if (!strcasecmp(k, "fromaddress") || !strcasecmp(k, "from")) {
		if (!put(c->t->from, sizeof(c->t->from), v))
			return "smtp: fromaddress is too long";
		plus_back(c->t->from);
		return mail_address_ok(c->t->from) ? NULL : "smtp: fromaddress is not a mail address (LOCAL@DOMAIN)";
	}
	if (!strcasecmp(k, "toaddresses") || !strcasecmp(k, "to")) {
		const char *why = put_items(c->t, v, recipient_ok, "smtp: toaddresses are mail addresses (LOCAL@DOMAIN), separated by ','");

		for (size_t i = 0; !why && i < c->t->nitems; i++)
			plus_back(c->t->items[i]);
		return why;
	}
	if (!strcasecmp(k, "fromname"))
		return put(c->t->from_name, sizeof(c->t->from_name), v) && !strpbrk(v, "<>\"\\") ? NULL :
			"smtp: fromname is at most 127 bytes without <, >, \" or \\";
	if (!strcasecmp(k, "subject") || !strcasecmp(k, "title"))
		return put(c->t->title, sizeof(c->t->title), v) ? NULL : "smtp: subject is too long";
	if (!strcasecmp(k, "encryption")) {
		for (int i = 0; enc[i]; i++)
			if (!strcasecmp(v, enc[i])) {
				sp->encryption = i;
				return NULL;
			}
		return "smtp: encryption must be Auto, None, ExplicitTLS or ImplicitTLS";
	}
	if (!strcasecmp(k, "auth")) {
		if (!strcasecmp(v, "Unknown")) {
			sp->auth = -1;
			return NULL;
		}
		for (int i = 0; auth[i]; i++)
			if (!strcasecmp(v, auth[i])) {
				sp->auth = i;
				return NULL;
			}
		return "smtp: auth must be None, Plain, CRAMMD5, OAuth2 or Unknown";
	}
	if (!strcasecmp(k, "usestarttls") || !strcasecmp(k, "starttls"))
		return parse_yes(v, &sp->starttls) ? NULL : "smtp: usestarttls must be yes or no";
	if (!strcasecmp(k, "usehtml")) {
		if (!parse_yes(v, &yes))
			return "smtp: usehtml must be yes or no";
		return yes ? unknown_param : NULL; /* refit's mail is plain text */
	}
	if (!strcasecmp(k, "clienthost")) {
		if (!*v || strlen(v) > 253 || !host_valid((struct span){ v, strlen(v) }) || v[0] == '[')
			return "smtp: clienthost is a host name (or auto)";
		return put(c->t->channel, sizeof(c->t->channel), v) ? NULL : "smtp: clienthost is too long";
	}
	return unknown_param;
}

/*
 * smtp://[USER[:PASSWORD]@]HOST[:PORT]/?fromaddress=A&toaddresses=B,C&... ->
 * libcurl's SMTP to HOST:PORT (25 unless given), one mail per recipient.
 */
static const char *parse_smtp(struct parse_ctx *c, const struct url_parts *u)
{
	struct notify_target *t = c->t;
	struct smtp_parse sp = { 3, -1, true };
	long port = 25;
	char host[256];
	const char *why;

	if (!host_valid(u->host) || u->host.n >= sizeof(host))
		return "smtp: expected smtp://[USER:PASSWORD@]HOST[:PORT]/?fromaddress=FROM&toaddresses=TO";
	if (u->path.n && !(u->path.n == 1 && u->path.p[0] == '/'))
		return "smtp: expected smtp://[USER:PASSWORD@]HOST[:PORT]/?fromaddress=FROM&toaddresses=TO (no path)";
	if (u->has_userinfo &&
	    (pct_decode(u->user.p, u->user.n, false, t->user, sizeof(t->user)) < 0 ||
	     (u->has_pass && pct_decode(u->pass.p, u->pass.n, false, t->password, sizeof(t->password)) < 0)))
		return "smtp: bad user or password";
	c->extra = &sp;
	why = u->has_query ? each_param(u->query, c, smtp_param) : NULL;
	c->extra = NULL;
	if (why)
		return why;
	if (!t->from[0])
		return "smtp: fromaddress is missing (?fromaddress=FROM)";
	if (!t->nitems)
		return "smtp: toaddresses is missing (?toaddresses=A,B)";
	if (u->has_port)
		port = strtol(u->port.p, NULL, 10);
	t->smtp_auth = sp.auth < 0 ? (t->user[0] ? SMTP_AUTH_PLAIN : SMTP_AUTH_NONE) : (enum notify_smtp_auth)sp.auth;
	if (t->smtp_auth != SMTP_AUTH_NONE && !t->user[0])
		return "smtp: an auth other than None needs a user (smtp://USER:PASSWORD@HOST/)";
	t->has_auth = t->smtp_auth != SMTP_AUTH_NONE;
	if (sp.encryption == 2 || (sp.encryption == 3 && port == 465))
		t->smtp_tls = SMTP_TLS_IMPLICIT;
	else if (!sp.starttls)
		t->smtp_tls = SMTP_TLS_NONE;
	else
		t->smtp_tls = sp.encryption == 1 ? SMTP_TLS_STARTTLS : SMTP_TLS_TRY;
	span_copy(u->host, host, sizeof(host));
	if (!strcasecmp(t->channel, "auto") && (gethostname(t->channel, sizeof(t->channel) - 1) < 0 ||
						 !host_valid((struct span){ t->channel, strlen(t->channel) })))
		snprintf(t->channel, sizeof(t->channel), "localhost"); /* shoutrrr's fallback */
	snprintf(t->url, sizeof(t->url), "%s://%s:%ld/%s", t->smtp_tls == SMTP_TLS_IMPLICIT ? "smtps" : "smtp", host,
		 port, t->channel[0] ? t->channel : "localhost");
	snprintf(t->name, sizeof(t->name), "smtp %s:%ld", host, port);
	return NULL;
}

/* A Matrix room: !ID:SERVER or #ALIAS:SERVER (shoutrrr puts '#' before a bare alias), no '/' or spaces. */
static bool matrix_room_ok(const char *v)
{
	size_t n = strlen(v);

	if (n < 2 || n > 126 || (v[0] != '!' && v[0] != '#'))
		return false;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '/' || *p == '?')
			return false;
	return true;
}

static const char *matrix_param(struct parse_ctx *c, const char *k, const char *v)
{
	bool yes;

	if (!strcasecmp(k, "rooms") || !strcasecmp(k, "room")) {
		char rooms[NOTIFY_MAX_ITEMS * 130], *o = rooms;

		/* a room without '!' or '#' is an alias: '#' first, as shoutrrr does */
		for (const char *p = v; *p && o < rooms + sizeof(rooms) - 3; p++) {
			if ((p == v || p[-1] == ',') && *p != ',' && *p != '!' && *p != '#')
				*o++ = '#';
			*o++ = *p;
		}
		*o = '\0';
		if (strlen(v) * 2 + 2 > sizeof(rooms))
			return "matrix: at most 16 rooms per URL";
		return put_items(c->t, rooms, matrix_room_ok, "matrix: a room is !ID:SERVER or #ALIAS:SERVER");
	}
	if (!strcasecmp(k, "title"))
		return put(c->t->title, sizeof(c->t->title), v) ? NULL : "matrix: title is too long";
	if (!strcasecmp(k, "disabletls")) {
		if (!parse_yes(v, &yes))
			return "matrix: disableTLS must be yes or no";
		c->plain = yes;
		return NULL;
	}
	return unknown_param;
}

/*
 * matrix://USER:PASSWORD@HOST[:PORT]/?rooms=... (m.login.password) or
 * matrix://:ACCESS-TOKEN@HOST/ -> the client API at https://HOST[:PORT]
 * (http with disableTLS=yes); without rooms, every room the user has joined.
 */
static const char *parse_matrix(struct parse_ctx *c, const struct url_parts *u)
{
	struct notify_target *t = c->t;
	char hp[300], secret[256];
	const char *why;

	if (!u->has_pass || u->pass.n == 0 || !host_valid(u->host) ||
	    (u->path.n && !(u->path.n == 1 && u->path.p[0] == '/')))
		return "matrix: expected matrix://USER:PASSWORD@HOST[:PORT]/?rooms=!ID:SERVER,#ALIAS:SERVER (or matrix://:TOKEN@HOST/)";
	if (pct_decode(u->user.p, u->user.n, false, t->user, sizeof(t->user)) < 0 ||
	    pct_decode(u->pass.p, u->pass.n, false, secret, sizeof(secret)) < 0 || !utf8_valid(t->user) ||
	    !utf8_valid(secret))
		return "matrix: bad user or password";
	if (u->has_query && (why = each_param(u->query, c, matrix_param)) != NULL) {
		explicit_bzero(secret, sizeof(secret));
		return why;
	}
	if (t->user[0]) {
		memcpy(t->password, secret, sizeof(secret));
	} else if (!all_of(secret, strlen(secret), "-._~+/=")) {
		explicit_bzero(secret, sizeof(secret));
		return "matrix: an access token is letters, digits and -._~+/=";
	} else {
		memcpy(t->token, secret, sizeof(secret));
	}
	explicit_bzero(secret, sizeof(secret));
	host_port(u, hp, sizeof(hp));
	snprintf(t->url, sizeof(t->url), "%s://%s", c->plain ? "http" : "https", hp);
	snprintf(t->name, sizeof(t->name), "matrix %.290s", hp);
	return NULL;
}

int notify_matrix_path(const char *room, const char *txn, char *dst, size_t cap)
{
	size_t j = 0;
	int n;

	n = snprintf(dst, cap, "/_matrix/client/r0/rooms/");
	if (n < 0 || (size_t)n >= cap)
		return -1;
	j = (size_t)n;
	for (const unsigned char *p = (const unsigned char *)room; *p; p++) {
		if (j + 4 >= cap)
			return -1;
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~!:@", *p))
			dst[j++] = (char)*p;
		else
			j += (size_t)sprintf(dst + j, "%%%02X", *p);
	}
	n = snprintf(dst + j, cap - j, "/send/m.room.message/%s", txn);
	return n < 0 || (size_t)n >= cap - j ? -1 : 0;
}

void notify_target_clear(struct notify_target *t)
{
	explicit_bzero(t, sizeof(*t));
	t->priority = -1;
	t->discord_color = 0x50D9ff; /* shoutrrr's defaults */
	t->discord_color_error = 0xd60510;
	t->split_lines = true;
	t->notification = true;
	t->preview = true;
}

int notify_url_parse(const char *url, struct notify_target *ret, const char **why)
{
	struct url_parts u;
	struct parse_ctx c = { ret, false, NULL };
	const char *reason;

	notify_target_clear(ret);
	reason = url ? url_split(url, &u) : "expected a URL";
	if (!reason) {
		if (!strcmp(u.scheme, "generic+https") || !strcmp(u.scheme, "generic+http") ||
		    !strcmp(u.scheme, "generic")) {
			ret->kind = NOTIFY_GENERIC;
			reason = parse_generic(&c, &u, url);
		} else if (!strcmp(u.scheme, "slack")) {
			ret->kind = NOTIFY_SLACK;
			reason = parse_slack(&c, &u);
		} else if (!strcmp(u.scheme, "discord")) {
			ret->kind = NOTIFY_DISCORD;
			reason = parse_discord(&c, &u);
		} else if (!strcmp(u.scheme, "ntfy")) {
			ret->kind = NOTIFY_NTFY;
			reason = parse_ntfy(&c, &u);
		} else if (!strcmp(u.scheme, "gotify")) {
			ret->kind = NOTIFY_GOTIFY;
			reason = parse_gotify(&c, &u);
		} else if (!strcmp(u.scheme, "telegram")) {
			ret->kind = NOTIFY_TELEGRAM;
			reason = parse_telegram(&c, &u);
		} else if (!strcmp(u.scheme, "pushover")) {
			ret->kind = NOTIFY_PUSHOVER;
			reason = parse_pushover(&c, &u);
		} else if (!strcmp(u.scheme, "teams")) {
			ret->kind = NOTIFY_TEAMS;
			reason = parse_teams(&c, &u);
		} else if (!strcmp(u.scheme, "smtp")) {
			ret->kind = NOTIFY_SMTP;
			reason = parse_smtp(&c, &u);
		} else if (!strcmp(u.scheme, "matrix")) {
			ret->kind = NOTIFY_MATRIX;
			reason = parse_matrix(&c, &u);
		} else {
			reason = "unsupported scheme (supported: generic+https, generic+http, generic, slack, discord, ntfy, gotify, telegram, pushover, teams, smtp, matrix)";
		}
	}
	if (reason) {
		notify_target_clear(ret);
		if (why)
			*why = reason;
		return -1;
	}
	return 0;
}

/* Short form of a digest for text: 12 hex digits, or "?" when unknown. */
static void short_digest(const char *d, char buf[16])
{
	const char *colon = d ? strchr(d, ':') : NULL;

	snprintf(buf, 16, "%.12s", d ? (colon ? colon + 1 : d) : "?");
}

json_t *notify_payload(const char *host, const char *kind, const char *op_id, json_t *result)
{
	json_t *list = json_array(), *c, *out;
	size_t i, updated = 0, rolled = 0, failed = 0;
	char summary[320], part[64], when[32];
	time_t now = time(NULL);

	if (!list)
		return NULL;
	json_array_foreach(json_object_get(result, "containers"), i, c) {
		const char *error = json_string_value(json_object_get(c, "error"));
		enum entry_status st = entry_status_from_string(json_string_value(json_object_get(c, "status")));
		const char *outcome;
		json_t *o;

		st = entry_status_change(st);
		if (st == _ENTRY_STATUS_INVALID)
			continue; /* nothing happened to it */
		updated += st == ENTRY_UPDATED;
		rolled += st == ENTRY_ROLLED_BACK;
		failed += st == ENTRY_FAILED;
		outcome = entry_status_to_string(st);
		o = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s, s:s?}", "name",
			      json_string_value(json_object_get(c, "name")), "image",
			      json_string_value(json_object_get(c, "image")), "old_digest",
			      json_string_value(json_object_get(c, "current_digest")), "new_digest",
			      json_string_value(json_object_get(c, "latest_digest")), "outcome", outcome, "strategy",
			      json_string_value(json_object_get(c, "strategy")));
		if (o && error)
			json_object_set_new(o, "error", json_string(error));
		if (o && json_is_string(json_object_get(c, "from"))) /* a migration: the name it had */
			json_object_set(o, "from", json_object_get(c, "from"));
		if (o)
			json_array_append_new(list, o);
	}
	if (json_array_size(list) == 0) {
		json_decref(list);
		return NULL;
	}
	snprintf(summary, sizeof(summary), "refit on %s: %s:", host,
		 strcmp(kind, "rollback") == 0 ? "rollback" : strcmp(kind, "migrate") == 0 ? "migration" : "update");
	if (updated) {
		snprintf(part, sizeof(part), " %zu updated,", updated);
		strncat(summary, part, sizeof(summary) - strlen(summary) - 1);
	}
	if (rolled) {
		snprintf(part, sizeof(part), " %zu rolled back,", rolled);
		strncat(summary, part, sizeof(summary) - strlen(summary) - 1);
	}
	if (failed) {
		snprintf(part, sizeof(part), " %zu failed,", failed);
		strncat(summary, part, sizeof(summary) - strlen(summary) - 1);
	}
	summary[strlen(summary) - 1] = '\0'; /* the last comma */
	iso_time(now, when);
	out = json_pack("{s:s, s:s, s:s, s:o, s:s}", "host", host, "kind", kind, "time", when, "containers", list,
			"summary", summary);
	if (out && op_id)
		json_object_set_new(out, "operation", json_string(op_id));
	return out;
}

json_t *notify_models_payload(const char *host, json_t *result)
{
	json_t *list = json_array(), *m, *out;
	size_t i, updated = 0, failed = 0;
	char summary[320], when[32];
	time_t now = time(NULL);

	if (!list)
		return NULL;
	json_array_foreach(json_object_get(result, "models"), i, m) {
		const char *status = json_string_value(json_object_get(m, "status"));
		const char *error = json_string_value(json_object_get(m, "error"));
		json_t *o;

		if (!status || (strcmp(status, "updated") != 0 && strcmp(status, "failed") != 0))
			continue; /* up to date: nothing happened to it */
		if (!strcmp(status, "updated"))
			updated++;
		else
			failed++;
		o = json_pack("{s:s?, s:s?, s:s?, s:s}", "name", json_string_value(json_object_get(m, "name")),
			      "old_digest", json_string_value(json_object_get(m, "old_digest")), "new_digest",
			      json_string_value(json_object_get(m, "new_digest")), "outcome", status);
		if (o && error)
			json_object_set_new(o, "error", json_string(error));
		if (o)
			json_array_append_new(list, o);
	}
	if (json_array_size(list) == 0) {
		json_decref(list);
		return NULL;
	}
	if (updated && failed)
		snprintf(summary, sizeof(summary), "refit on %s: models: %zu updated, %zu failed", host, updated, failed);
	else
		snprintf(summary, sizeof(summary), "refit on %s: models: %zu %s", host, updated ? updated : failed,
			 updated ? "updated" : "failed");
	iso_time(now, when);
	out = json_pack("{s:s, s:s, s:s, s:o, s:s}", "host", host, "kind", "models", "time", when, "models", list,
			"summary", summary);
	return out;
}

/* A growing text buffer bounded by CAP bytes; past it lines are counted, not kept. */
struct text {
	char *buf;
	size_t len, cap;
	size_t dropped;
};

/* Append one line; false when it no longer fits. */
static bool text_line(struct text *t, const char *line)
{
	size_t n = strlen(line);

	if (t->dropped || t->len + n + 2 > t->cap) {
		t->dropped++;
		return false;
	}
	if (t->len)
		t->buf[t->len++] = '\n';
	memcpy(t->buf + t->len, line, n + 1);
	t->len += n;
	return true;
}

/* Copy ERR into DST (CAP bytes) on one line, cut at a UTF-8 character boundary. */
static void one_line(const char *err, char *dst, size_t cap)
{
	size_t n = 0;

	for (; err[n] && n + 1 < cap; n++)
		dst[n] = (err[n] == '\n' || err[n] == '\r' || err[n] == '\t') ? ' ' : err[n];
	if (err[n])
		while (n > 0 && ((unsigned char)dst[n] & 0xc0) == 0x80)
			n--;
	dst[n] = '\0';
}

/* The readable message: the summary, then one line per container, at most CAP bytes. */
static char *text_message(json_t *payload, const char *heading, size_t cap)
{
	struct text t = { malloc(cap + 1), 0, cap - 32, 0 }; /* room kept for "(N more)" */
	const char *kind = json_string_value(json_object_get(payload, "kind"));
	const char *summary = json_string_value(json_object_get(payload, "summary"));
	bool rollback = kind && !strcmp(kind, "rollback");
	json_t *c;
	size_t i;

	if (!t.buf)
		return NULL;
	t.buf[0] = '\0';
	if (heading && *heading)
		text_line(&t, heading);
	text_line(&t, summary ? summary : "refit");
	json_array_foreach(json_object_get(payload, json_object_get(payload, "models") ? "models" : "containers"), i, c) {
		const char *name = json_string_value(json_object_get(c, "name"));
		const char *outcome = json_string_value(json_object_get(c, "outcome"));
		const char *err = json_string_value(json_object_get(c, "error"));
		char line[NOTIFY_ERROR_MAX + 512], from[16], to[16], e[NOTIFY_ERROR_MAX + 1] = "";

		if (!name)
			name = "?";
		if (!outcome)
			outcome = "failed";
		short_digest(json_string_value(json_object_get(c, "old_digest")), from);
		short_digest(json_string_value(json_object_get(c, "new_digest")), to);
		if (err)
			one_line(err, e, sizeof(e));
		if (!strcmp(outcome, "updated"))
			snprintf(line, sizeof(line), "- %.200s: updated %s -> %s", name, from, to);
		else if (!strcmp(outcome, "rolled-back") && !rollback)
			snprintf(line, sizeof(line), "- %.200s: update to %s failed, rolled back to %s%s%s", name, to,
				 from, *e ? ": " : "", e);
		else if (!strcmp(outcome, "rolled-back"))
			snprintf(line, sizeof(line), "- %.200s: rolled back %s -> %s", name, from, to);
		else
			snprintf(line, sizeof(line), "- %.200s: failed (%s -> %s)%s%s", name, from, to, *e ? ": " : "",
				 e);
		text_line(&t, line);
	}
	if (t.dropped) {
		char more[32];

		snprintf(more, sizeof(more), "(%zu more)", t.dropped);
		t.dropped = 0;
		t.cap = cap;
		text_line(&t, more);
	}
	return t.buf;
}

/* Add header "NAME: VALUE" to M. */
static void add_header(struct notify_message *m, const char *name, const char *value)
{
	if (m->nheaders < NOTIFY_MAX_HEADERS)
		snprintf(m->headers[m->nheaders++], sizeof(m->headers[0]), "%s: %s", name, value);
}

/* Dump O into M's body (O is consumed). */
static int json_body(struct notify_message *m, json_t *o)
{
	m->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!m->body)
		return -1;
	m->len = strlen(m->body);
	m->content_type = "application/json";
	return 0;
}

/* Append to the JSON array ARR one item per line of TEXT made by MAKE, at most MAX (the rest joined to the last). */
static void lines_to(json_t *arr, const char *text, size_t max, json_t *(*make)(const char *line, const void *arg),
		     const void *arg)
{
	const char *p = text;

	while (*p) {
		size_t n = json_array_size(arr) + 1 >= max ? strlen(p) : strcspn(p, "\n");
		char *line = strndup(p, n);

		if (!line)
			return;
		if (*line)
			json_array_append_new(arr, make(line, arg));
		free(line);
		p += n;
		if (*p == '\n')
			p++;
	}
}

static json_t *slack_attachment(const char *line, const void *arg)
{
	const struct notify_target *t = arg;
	json_t *o = json_pack("{s:s}", "text", line);

	if (o && t->color[0])
		json_object_set_new(o, "color", json_string(t->color));
	return o;
}

static json_t *discord_embed(const char *line, const void *arg)
{
	return json_pack("{s:s, s:I}", "description", line, "color", (json_int_t) * (const long *)arg);
}

static json_t *teams_block(const char *line, const void *arg)
{
	return json_pack("{s:s, s:s, s:b}", "type", "TextBlock", "text", line, "wrap", 1);
}

/* Teams' Adaptive Card colour names from shoutrrr's colour words. */
static const char *teams_color(const char *c)
{
	static const char *const map[][2] = { { "red", "attention" }, { "danger", "attention" },
					      { "attention", "attention" }, { "orange", "warning" },
					      { "yellow", "warning" }, { "warning", "warning" }, { "warn", "warning" },
					      { "green", "good" }, { "good", "good" }, { "success", "good" },
					      { "blue", "accent" }, { "accent", "accent" }, { "dark", "dark" },
					      { "light", "light" } };

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcasecmp(c, map[i][0]))
			return map[i][1];
	return "default";
}

/* TEXT with HTML's special characters escaped (malloc'd). */
static char *html_escape(const char *text)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = text; *p; p++)
		n += *p == '&' ? 5 : (*p == '<' || *p == '>') ? 4 : *p == '"' ? 6 : 1;
	if (!(out = o = malloc(n + 1)))
		return NULL;
	for (const char *p = text; *p; p++) {
		const char *e = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '"' ? "&quot;" : NULL;

		if (e) {
			memcpy(o, e, strlen(e));
			o += strlen(e);
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/* TEXT with the characters Telegram's Markdown (V2 when V2) treats as markup escaped with '\' (malloc'd). */
static char *markdown_escape(const char *text, bool v2)
{
	const char *special = v2 ? "_*[]()~`>#+-=|{}.!\\" : "_*`[";
	char *out = malloc(strlen(text) * 2 + 1), *o = out;

	if (!out)
		return NULL;
	for (const char *p = text; *p; p++) {
		if (strchr(special, *p))
			*o++ = '\\';
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

/* The text Telegram shows: TITLE in bold, then TEXT, in T's parse mode (HTML when a title needs it); malloc'd. */
static char *telegram_text(const struct notify_target *t, const char *title, const char *text, const char **mode)
{
	bool md = !strncmp(t->parse_mode, "Markdown", 8), v2 = !strcmp(t->parse_mode, "MarkdownV2");
	char *et, *eh, *out;
	size_t n;

	*mode = t->parse_mode[0] ? t->parse_mode : (*title ? "HTML" : NULL);
	if (!*mode)
		return strdup(text);
	et = md ? markdown_escape(text, v2) : html_escape(text);
	eh = md ? markdown_escape(title, v2) : html_escape(title);
	n = (et ? strlen(et) : 0) + (eh ? strlen(eh) : 0) + 16;
	out = et && eh ? malloc(n) : NULL;
	if (out && *title)
		snprintf(out, n, md ? "*%s*\n%s" : "<b>%s</b>\n%s", eh, et);
	else if (out)
		snprintf(out, n, "%s", et);
	free(et);
	free(eh);
	return out;
}

/* Append KEY=VALUE, form-encoded, to the growing buffer *BUF (of *LEN bytes); false when out of memory. */
static bool form_add(char **buf, size_t *len, const char *key, const char *value)
{
	size_t need = *len + strlen(key) + strlen(value) * 3 + 3;
	char *b = realloc(*buf, need), *o;

	if (!b)
		return false;
	*buf = b;
	o = b + *len;
	if (*len)
		*o++ = '&';
	o += sprintf(o, "%s=", key);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p))
			*o++ = (char)*p;
		else
			o += sprintf(o, "%%%02X", *p);
	}
	*o = '\0';
	*len = (size_t)(o - b);
	return true;
}

/* V as a mail header's text: as it is when ASCII, else RFC 2047's =?UTF-8?B?...?= (malloc'd). */
static char *mime_word(const char *v)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(v);
	bool ascii = true;
	char *out, *o;

	for (const char *p = v; *p; p++)
		if ((unsigned char)*p >= 0x80)
			ascii = false;
	if (ascii)
		return strdup(v);
	if (!(out = o = malloc(n * 4 / 3 + 32)))
		return NULL;
	o += sprintf(o, "=?UTF-8?B?");
	for (size_t i = 0; i < n; i += 3) {
		unsigned a = (unsigned char)v[i], b = i + 1 < n ? (unsigned char)v[i + 1] : 0,
			 c = i + 2 < n ? (unsigned char)v[i + 2] : 0;

		*o++ = b64[a >> 2];
		*o++ = b64[((a & 3) << 4) | (b >> 4)];
		*o++ = i + 1 < n ? b64[((b & 15) << 2) | (c >> 6)] : '=';
		*o++ = i + 2 < n ? b64[c & 63] : '=';
	}
	strcpy(o, "?=");
	return out;
}

/*
 * One mail to TO: shoutrrr's headers (Subject, Date, To, From "NAME <ADDR>",
 * MIME-Version, Content-Type text/plain UTF-8), then TEXT with CRLF line ends.
 */
static char *smtp_mail(const struct notify_target *t, const char *to, const char *subject, const char *text)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	char date[64], *subj = mime_word(subject), *name = mime_word(t->from_name), *out = NULL, *o;
	time_t now = time(NULL);
	struct tm tm;
	size_t lines = 1, cap;

	gmtime_r(&now, &tm);
	snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
		 months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	cap = strlen(text) + lines + 1024 + strlen(to) + (subj ? strlen(subj) : 0) + (name ? strlen(name) : 0) +
	      strlen(t->from);
	if (subj && name && (out = o = malloc(cap)) != NULL) {
		o += sprintf(o, "Subject: %s\r\nDate: %s\r\nTo: %s\r\nFrom: %s%s<%s>\r\nMIME-Version: 1.0\r\n"
				"Content-Type: text/plain; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
			     subj, date, to, name, *name ? " " : "", t->from);
		for (const char *p = text; *p; p++) {
			if (*p == '\n')
				*o++ = '\r';
			*o++ = *p;
		}
		strcpy(o, "\r\n");
	}
	free(subj);
	free(name);
	return out;
}

/* True when PAYLOAD lists a failure (Discord's error colour). */
static bool payload_failed(json_t *payload)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(payload, json_object_get(payload, "models") ? "models" : "containers"), i, c) {
		const char *o = json_string_value(json_object_get(c, "outcome"));

		if (o && strcmp(o, "updated") != 0)
			return true;
	}
	return false;
}

int notify_render(const struct notify_target *t, json_t *payload, struct notify_message *ret)
{
	char title[300], *text = NULL, prio[16];
	json_t *o;
	int rc = -1;

	memset(ret, 0, sizeof(*ret));
	if (t->title[0])
		snprintf(title, sizeof(title), "%s", t->title);
	else
		snprintf(title, sizeof(title), "refit on %.200s",
			 json_string_value(json_object_get(payload, "host")) ?
				 json_string_value(json_object_get(payload, "host")) : "?");
	switch (t->kind) {
	case NOTIFY_GENERIC:
		return json_body(ret, json_incref(payload));
	case NOTIFY_SLACK: {
		/* shoutrrr's layout: the title as text, one attachment (with the colour) per line */
		json_t *atts = json_array();

		if (!atts || !(text = text_message(payload, NULL, 3000))) {
			json_decref(atts);
			break;
		}
		lines_to(atts, text, 100, slack_attachment, t);
		o = json_pack("{s:s, s:o}", "text", title, "attachments", atts);
		if (o && t->username[0])
			json_object_set_new(o, "username", json_string(t->username));
		if (o && t->icon[0])
			json_object_set_new(o, strncmp(t->icon, "http://", 7) && strncmp(t->icon, "https://", 8) ?
				"icon_emoji" : "icon_url", json_string(t->icon));
		if (o && t->thread[0])
			json_object_set_new(o, "thread_ts", json_string(t->thread));
		if (o && t->slack_bot)
			json_object_set_new(o, "channel", json_string(t->channel));
		rc = json_body(ret, o);
		if (t->slack_bot && ret->nheaders < NOTIFY_MAX_HEADERS)
			snprintf(ret->headers[ret->nheaders++], sizeof(ret->headers[0]), "Authorization: Bearer %s",
				 t->token);
		break;
	}
	case NOTIFY_DISCORD: {
		long color = payload_failed(payload) ? t->discord_color_error : t->discord_color;

		if (!(text = text_message(payload, NULL, t->split_lines ? 3800 : 1900)))
			break;
		if (t->split_lines) { /* shoutrrr's default: one embed per line, at most 10, the title on the first */
			json_t *embeds = json_array();

			lines_to(embeds, text, 10, discord_embed, &color);
			if (json_array_size(embeds) && *title)
				json_object_set_new(json_array_get(embeds, 0), "title", json_string(title));
			o = json_pack("{s:o}", "embeds", embeds);
		} else if (*title) {
			o = json_pack("{s:[{s:s, s:s, s:I}]}", "embeds", "title", title, "description", text, "color",
				      (json_int_t)color);
		} else {
			o = json_pack("{s:s}", "content", text);
		}
		if (o && t->username[0])
			json_object_set_new(o, "username", json_string(t->username));
		if (o && t->avatar[0])
			json_object_set_new(o, "avatar_url", json_string(t->avatar));
		rc = json_body(ret, o);
		break;
	}
	case NOTIFY_TELEGRAM: {
		const char *mode;
		char *shown;

		if (!(text = text_message(payload, NULL, 3500))) /* Telegram takes at most 4096 characters */
			break;
		if (!(shown = telegram_text(t, title, text, &mode)))
			break;
		rc = 0;
		for (size_t i = 0; i < t->nitems && rc == 0; i++) {
			char chat[128], *colon, *body;
			json_t *b;

			snprintf(chat, sizeof(chat), "%s", t->items[i]);
			colon = strchr(chat, ':');
			if (colon)
				*colon = '\0';
			b = json_pack("{s:s, s:s, s:b, s:b}", "chat_id", chat, "text", shown, "disable_web_page_preview",
				      !t->preview, "disable_notification", !t->notification);
			if (b && colon)
				json_object_set_new(b, "message_thread_id", json_integer(atoll(colon + 1)));
			if (b && mode)
				json_object_set_new(b, "parse_mode", json_string(mode));
			body = b ? json_dumps(b, JSON_COMPACT) : NULL;
			json_decref(b);
			if (!body)
				rc = -1;
			else if (i == 0)
				ret->body = body, ret->len = strlen(body);
			else
				ret->more[ret->nmore++] = body;
		}
		ret->content_type = "application/json";
		free(shown);
		break;
	}
	case NOTIFY_PUSHOVER: {
		char *form = NULL, devices[NOTIFY_MAX_ITEMS * 128 + 16] = "";
		size_t len = 0;

		if (!(text = text_message(payload, NULL, 1000))) /* Pushover takes at most 1024 characters */
			break;
		for (size_t i = 0; i < t->nitems; i++)
			snprintf(devices + strlen(devices), sizeof(devices) - strlen(devices), "%s%s", i ? "," : "",
				 t->items[i]);
		snprintf(prio, sizeof(prio), "%d", t->has_priority ? t->priority : 0);
		if (form_add(&form, &len, "token", t->token) && form_add(&form, &len, "user", t->user) &&
		    form_add(&form, &len, "message", text) && (!*title || form_add(&form, &len, "title", title)) &&
		    (!t->nitems || form_add(&form, &len, "device", devices)) &&
		    form_add(&form, &len, "priority", prio)) {
			ret->body = form;
			ret->len = len;
			ret->content_type = "application/x-www-form-urlencoded";
			rc = 0;
		} else {
			free(form);
		}
		break;
	}
	case NOTIFY_TEAMS: {
		json_t *blocks = json_array();

		if (!blocks || !(text = text_message(payload, NULL, 8000))) {
			json_decref(blocks);
			break;
		}
		if (t->legacy_teams) { /* an Office 365 connector: a MessageCard */
			json_decref(blocks);
			o = json_pack("{s:s, s:s, s:s}", "@type", "MessageCard", "@context", "http://schema.org/extensions",
				      "text", text);
			if (o && *title)
				json_object_set_new(o, "title", json_string(title));
			if (o && t->color[0])
				json_object_set_new(o, "themeColor", json_string(t->color[0] == '#' ? t->color + 1 : t->color));
			rc = json_body(ret, o);
			break;
		}
		if (*title)
			json_array_append_new(blocks, json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "TextBlock", "text",
								title, "weight", "Bolder", "size", "Medium", "color",
								teams_color(t->color)));
		lines_to(blocks, text, 200, teams_block, NULL);
		o = json_pack("{s:s, s:[{s:s, s:n, s:{s:s, s:s, s:s, s:o}}]}", "type", "message", "attachments",
			      "contentType", "application/vnd.microsoft.card.adaptive", "contentUrl", "content", "$schema",
			      "http://adaptivecards.io/schemas/adaptive-card.json", "type", "AdaptiveCard", "version",
			      "1.2", "body", blocks);
		rc = json_body(ret, o);
		break;
	}
	case NOTIFY_GOTIFY:
		if (!(text = text_message(payload, NULL, 8000)))
			break;
		o = json_pack("{s:s, s:s, s:i}", "title", title, "message", text, "priority",
			      t->priority >= 0 ? t->priority : 5);
		rc = json_body(ret, o);
		add_header(ret, "X-Gotify-Key", t->token);
		break;
	case NOTIFY_SMTP:
		if (!(text = text_message(payload, NULL, 60000)))
			break;
		rc = 0;
		for (size_t i = 0; i < t->nitems && rc == 0; i++) {
			char *mail = smtp_mail(t, t->items[i], title, text);

			if (!mail)
				rc = -1;
			else if (i == 0)
				ret->body = mail, ret->len = strlen(mail);
			else
				ret->more[ret->nmore++] = mail;
		}
		ret->content_type = "message/rfc822";
		break;
	case NOTIFY_MATRIX: {
		/* shoutrrr sends the message as m.text; the title (when any) is its first line */
		if (!(text = text_message(payload, *title ? title : NULL, 30000)))
			break;
		o = json_pack("{s:s, s:s}", "msgtype", "m.text", "body", text);
		rc = json_body(ret, o);
		break;
	}
	case NOTIFY_NTFY:
		if (!(text = text_message(payload, NULL, 3900))) /* ntfy's default message limit is 4096 bytes */
			break;
		ret->body = text;
		ret->len = strlen(text);
		ret->content_type = "text/plain; charset=utf-8";
		text = NULL;
		add_header(ret, "Title", title);
		if (t->priority > 0) {
			snprintf(prio, sizeof(prio), "%d", t->priority);
			add_header(ret, "Priority", prio);
		}
		if (t->tags[0])
			add_header(ret, "Tags", t->tags);
		rc = 0;
		break;
	}
	free(text);
	if (rc < 0)
		notify_message_free(ret);
	return rc;
}

void notify_message_free(struct notify_message *m)
{
	if (!m)
		return;
	free(m->body);
	for (size_t i = 0; i < m->nmore; i++)
		free(m->more[i]);
	explicit_bzero(m, sizeof(*m)); /* the headers may hold a token */
}
