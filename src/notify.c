/* Notifications: shoutrrr-style URLs, the pass payload, each service's message (pure: notify-send.c sends). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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
	bool plain; /* http instead of https */
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

/* Hand each KEY=VALUE of the query (decoded) to FN; the first reason it gives, or NULL. */
static const char *each_param(struct span q, struct parse_ctx *c, param_fn fn)
{
	const char *p = q.p, *end = q.p + q.n;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *eq, *why;
		char key[64], value[512];

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
		if (why)
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
	return "slack: unknown parameter (supported: title, botname, username)";
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
	return "discord: unknown parameter (supported: title, username, avatar)";
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
	return "ntfy: unknown parameter (supported: scheme, title, priority, tags)";
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
	return "gotify: unknown parameter (supported: title, priority, disabletls)";
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

/* slack://[BOT@]A/B/C or slack://hook:A-B-C@webhook -> https://hooks.slack.com/services/A/B/C. */
static const char *parse_slack(struct parse_ctx *c, const struct url_parts *u)
{
	static const char *const form =
		"slack: expected slack://[BOTNAME@]TOKEN-A/TOKEN-B/TOKEN-C or slack://hook:TOKEN-A-TOKEN-B-TOKEN-C@webhook";
	struct notify_target *t = c->t;
	struct span tok[3];

	if (u->has_pass) {
		const char *p, *end;
		int n = 0;

		if (span_is(u->user, "xoxb") || span_is(u->user, "xoxp"))
			return "slack: only webhook URLs are supported, not bot API tokens";
		if (!span_is(u->user, "hook") || !span_is(u->host, "webhook") || u->has_port ||
		    (u->path.n && !(u->path.n == 1 && u->path.p[0] == '/')))
			return form;
		p = u->pass.p;
		end = p + u->pass.n;
		while (n < 3) {
			const char *dash = memchr(p, '-', (size_t)(end - p));

			if (n < 2 && !dash)
				return form;
			tok[n] = (struct span){ p, (size_t)((n < 2 ? dash : end) - p) };
			n++;
			p = dash ? dash + 1 : end;
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

/* discord://TOKEN@ID -> https://discord.com/api/webhooks/ID/TOKEN. */
static const char *parse_discord(struct parse_ctx *c, const struct url_parts *u)
{
	static const char *const form = "discord: expected discord://TOKEN@WEBHOOK-ID";
	struct notify_target *t = c->t;

	if (!u->has_userinfo || u->has_pass || u->has_port || u->user.n == 0 || u->user.n > 200 ||
	    !all_of(u->user.p, u->user.n, "_-.") || u->host.n == 0 || u->host.n > 32 ||
	    !all_of(u->host.p, u->host.n, "") || (u->path.n && !(u->path.n == 1 && u->path.p[0] == '/')))
		return form;
	for (size_t i = 0; i < u->host.n; i++)
		if (u->host.p[i] < '0' || u->host.p[i] > '9')
			return "discord: the webhook ID is a number (discord://TOKEN@WEBHOOK-ID)";
	snprintf(t->url, sizeof(t->url), "https://discord.com/api/webhooks/%.*s/%.*s", (int)u->host.n, u->host.p,
		 (int)u->user.n, u->user.p);
	snprintf(t->name, sizeof(t->name), "discord discord.com");
	return u->has_query ? each_param(u->query, c, discord_param) : NULL;
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

void notify_target_clear(struct notify_target *t)
{
	explicit_bzero(t, sizeof(*t));
	t->priority = -1;
}

int notify_url_parse(const char *url, struct notify_target *ret, const char **why)
{
	struct url_parts u;
	struct parse_ctx c = { ret, false };
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
		} else {
			reason = "unsupported scheme (supported: generic+https, generic+http, generic, slack, discord, ntfy, gotify)";
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
		if (o)
			json_array_append_new(list, o);
	}
	if (json_array_size(list) == 0) {
		json_decref(list);
		return NULL;
	}
	snprintf(summary, sizeof(summary), "refit on %s: %s:", host, strcmp(kind, "rollback") == 0 ? "rollback" : "update");
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
	case NOTIFY_SLACK:
		if (!(text = text_message(payload, t->title, 3000)))
			break;
		o = json_pack("{s:s}", "text", text);
		if (o && t->username[0])
			json_object_set_new(o, "username", json_string(t->username));
		rc = json_body(ret, o);
		break;
	case NOTIFY_DISCORD:
		if (!(text = text_message(payload, t->title, 1900))) /* Discord takes at most 2000 characters */
			break;
		o = json_pack("{s:s}", "content", text);
		if (o && t->username[0])
			json_object_set_new(o, "username", json_string(t->username));
		if (o && t->avatar[0])
			json_object_set_new(o, "avatar_url", json_string(t->avatar));
		rc = json_body(ret, o);
		break;
	case NOTIFY_GOTIFY:
		if (!(text = text_message(payload, NULL, 8000)))
			break;
		o = json_pack("{s:s, s:s, s:i}", "title", title, "message", text, "priority",
			      t->priority >= 0 ? t->priority : 5);
		rc = json_body(ret, o);
		add_header(ret, "X-Gotify-Key", t->token);
		break;
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
	explicit_bzero(m, sizeof(*m)); /* the headers may hold a token */
}
