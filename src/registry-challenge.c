/* WWW-Authenticate challenges from registries, parsed per RFC 7235. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "refit/base.h"
#include "refit/challenge.h"

#define QUOTE_MAX 32 /* header characters quoted in error messages */

/* A cursor over the header value. */
struct lexer {
	const char *p;
};

/* True for RFC 7230 tchar: the characters of a token. */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* True for the characters of an RFC 7235 token68, apart from its trailing '='. */
static bool is_token68_char(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("-._~+/", c) != NULL;
}

/*
 * True for a character of an unquoted parameter value. Registries send
 * realm=http://host:port/token unquoted, which a strict token would cut at
 * the ':', so any visible character but ',', '"' and '\' is taken.
 */
static bool is_value_char(unsigned char c)
{
	return c > 0x20 && c != 0x7f && c != ',' && c != '"' && c != '\\';
}

/* True for optional whitespace; CR and LF are tolerated as a caller may leave them. */
static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skip optional whitespace. */
static void skip_ows(struct lexer *lx)
{
	while (is_ows((unsigned char)*lx->p))
		lx->p++;
}

/* Return the length of the token at P (0 when there is none). */
static size_t token_len(const char *p)
{
	size_t n = 0;

	while (is_tchar((unsigned char)p[n]))
		n++;
	return n;
}

/*
 * If a token68 (as in "Negotiate abc==") stands at the cursor, followed only
 * by whitespace and then ',' or the end, skip it: refit has no use for it.
 */
static void skip_token68(struct lexer *lx)
{
	const char *q = lx->p;

	if (!is_token68_char((unsigned char)*q))
		return;
	while (is_token68_char((unsigned char)*q))
		q++;
	while (*q == '=')
		q++;
	while (is_ows((unsigned char)*q))
		q++;
	if (*q == ',' || *q == '\0')
		lx->p = q;
}

/* Set E to "out of memory" and return -1. */
static int oom(struct refit_err *e)
{
	return err_set(e, ERR_FAILED, "out of memory");
}

/*
 * Read a parameter value (quoted string with backslash escapes, or an
 * unquoted run) into a new string in *OUT; OUT may be NULL to only skip it.
 */
static int read_value(struct lexer *lx, char **out, struct refit_err *e)
{
	const char *start = lx->p;
	size_t n = 0, i;
	char *s;

	if (*lx->p != '"') {
		while (is_value_char((unsigned char)lx->p[n]))
			n++;
		if (n == 0)
			return err_set(e, ERR_FAILED, "WWW-Authenticate: parameter value missing");
		lx->p += n;
		if (!out)
			return 0;
		s = malloc(n + 1);
		if (!s)
			return oom(e);
		memcpy(s, start, n);
		s[n] = '\0';
		*out = s;
		return 0;
	}

	/* measure and check the quoted string first */
	for (i = 1;; i++) {
		unsigned char c = (unsigned char)start[i];

		if (c == '\0')
			return err_set(e, ERR_FAILED, "WWW-Authenticate: unterminated quoted string");
		if (c == '"')
			break;
		if (c == '\\') {
			c = (unsigned char)start[++i];
			if (c == '\0')
				return err_set(e, ERR_FAILED,
					       "WWW-Authenticate: unterminated quoted string");
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return err_set(e, ERR_FAILED,
				       "WWW-Authenticate: control character in quoted string");
		n++;
	}
	lx->p = start + i + 1;
	if (!out)
		return 0;
	s = malloc(n + 1);
	if (!s)
		return oom(e);
	n = 0;
	for (i = 1; start[i] != '"'; i++) {
		if (start[i] == '\\')
			i++;
		s[n++] = start[i];
	}
	s[n] = '\0';
	*out = s;
	return 0;
}

/* Free the strings of C and zero it. */
void challenge_free(struct challenge *c)
{
	if (!c)
		return;
	free(c->realm);
	free(c->service);
	free(c->scope);
	free(c->error);
	memset(c, 0, sizeof(*c));
}

/* Map a scheme token of length N to the schemes refit speaks. */
static enum challenge_scheme scheme_of(const char *p, size_t n)
{
	if (n == 6 && strncasecmp(p, "bearer", 6) == 0)
		return CHALLENGE_BEARER;
	if (n == 5 && strncasecmp(p, "basic", 5) == 0)
		return CHALLENGE_BASIC;
	return CHALLENGE_NONE;
}

/* Return the field of C that parameter NAME (length N) fills, or NULL to ignore it. */
static char **field_of(struct challenge *c, const char *name, size_t n)
{
	if (c->scheme == CHALLENGE_NONE)
		return NULL;
	if (n == 5 && strncasecmp(name, "realm", 5) == 0)
		return &c->realm;
	if (c->scheme != CHALLENGE_BEARER)
		return NULL;
	if (n == 7 && strncasecmp(name, "service", 7) == 0)
		return &c->service;
	if (n == 5 && strncasecmp(name, "scope", 5) == 0)
		return &c->scope;
	if (n == 5 && strncasecmp(name, "error", 5) == 0)
		return &c->error;
	return NULL;
}

/*
 * Parse the auth-params of one challenge into CUR, stopping before the token
 * that starts the next challenge (left at *NEXT_SCHEME, length *NEXT_LEN)
 * or at the end.
 */
static int parse_params(struct lexer *lx, struct challenge *cur, const char **next_scheme,
			size_t *next_len, struct refit_err *e)
{
	char q[QUOTE_SIZE(QUOTE_MAX)];

	*next_scheme = NULL;
	*next_len = 0;
	skip_ows(lx);
	skip_token68(lx);
	for (;;) {
		const char *name, *after;
		char **field;
		size_t n;

		while (*lx->p == ',' || is_ows((unsigned char)*lx->p))
			lx->p++;
		if (*lx->p == '\0')
			return 0;
		name = lx->p;
		n = token_len(name);
		if (n == 0)
			return err_set(e, ERR_FAILED, "WWW-Authenticate: unexpected character at \"%s\"",
				       quote_input(name, QUOTE_MAX, q));
		after = name + n;
		while (*after == ' ' || *after == '\t')
			after++;
		if (*after != '=') {
			/* a token not followed by '=' starts the next challenge */
			*next_scheme = name;
			*next_len = n;
			lx->p = name + n;
			return 0;
		}
		lx->p = after + 1;
		while (*lx->p == ' ' || *lx->p == '\t')
			lx->p++;
		field = field_of(cur, name, n);
		if (field && *field)
			field = NULL; /* a repeated parameter: the first one counts */
		if (read_value(lx, field, e) < 0)
			return -1;
		skip_ows(lx);
		if (*lx->p == '\0')
			return 0;
		if (*lx->p != ',')
			return err_set(e, ERR_FAILED, "WWW-Authenticate: expected ',' at \"%s\"",
				       quote_input(lx->p, QUOTE_MAX, q));
	}
}

/* Parse VALUE, keeping the best challenge (Bearer with a realm, else Basic); see challenge.h. */
int challenge_parse(const char *value, struct challenge *ret, struct refit_err *e)
{
	struct challenge best = { 0 }, cur;
	struct lexer lx;
	const char *scheme;
	size_t n;
	bool realmless_bearer = false;

	if (!ret)
		return err_set(e, ERR_FAILED, "WWW-Authenticate: no result");
	memset(ret, 0, sizeof(*ret));
	if (!value)
		return err_set(e, ERR_FAILED, "WWW-Authenticate: missing");
	if (strnlen(value, CHALLENGE_MAX + 1) > CHALLENGE_MAX)
		return err_set(e, ERR_FAILED, "WWW-Authenticate: longer than %d characters",
			       CHALLENGE_MAX);
	lx.p = value;
	while (*lx.p == ',' || is_ows((unsigned char)*lx.p))
		lx.p++;
	if (*lx.p == '\0')
		return err_set(e, ERR_FAILED, "WWW-Authenticate: empty");
	scheme = lx.p;
	n = token_len(scheme);
	if (n == 0)
		return err_set(e, ERR_FAILED, "WWW-Authenticate: expected an auth scheme");
	lx.p += n;
	if (*lx.p == '=' || ((*lx.p == ' ' || *lx.p == '\t') && lx.p[strspn(lx.p, " \t")] == '='))
		return err_set(e, ERR_FAILED, "WWW-Authenticate: parameter without an auth scheme");

	while (scheme) {
		memset(&cur, 0, sizeof(cur));
		cur.scheme = scheme_of(scheme, n);
		if (parse_params(&lx, &cur, &scheme, &n, e) < 0) {
			challenge_free(&cur);
			challenge_free(&best);
			return -1;
		}
		if (cur.scheme == CHALLENGE_BEARER && (!cur.realm || !*cur.realm)) {
			realmless_bearer = true;
			challenge_free(&cur);
		} else if ((cur.scheme == CHALLENGE_BEARER && best.scheme != CHALLENGE_BEARER) ||
			   (cur.scheme == CHALLENGE_BASIC && best.scheme == CHALLENGE_NONE)) {
			challenge_free(&best);
			best = cur;
		} else {
			challenge_free(&cur);
		}
	}
	if (best.scheme == CHALLENGE_NONE) {
		if (realmless_bearer)
			return err_set(e, ERR_FAILED, "WWW-Authenticate: Bearer challenge without realm");
		return err_set(e, ERR_FAILED, "WWW-Authenticate: no Basic or Bearer challenge");
	}
	*ret = best;
	return 0;
}
