/* The dashboard's form and cookie parsers and its HTML-escaping buffer. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refit/ui.h"

/* Length of the valid UTF-8 sequence at S (N bytes left), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t k;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		k = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		k = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		k = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0; /* overlong, out of range, surrogate */
	return k;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decode S[0..N) into OUT (CAP bytes with the NUL); -1 when malformed or too long. */
static int form_decode(const char *s, size_t n, bool name, char *out, size_t cap, const char **why)
{
	size_t w = 0;

	for (size_t r = 0; r < n; r++) {
		int c = (unsigned char)s[r];

		if (c == '%') {
			if (r + 2 >= n || hexval(s[r + 1]) < 0 || hexval(s[r + 2]) < 0) {
				*why = "bad %-escape";
				return -1;
			}
			c = hexval(s[r + 1]) * 16 + hexval(s[r + 2]);
			r += 2;
		} else if (c == '+') {
			c = ' ';
		} else if (c < 0x21 || c > 0x7e) {
			*why = "a byte outside the form encoding";
			return -1;
		}
		if (name && !(isalnum(c) || c == '_' || c == '-')) {
			*why = "a field name outside [A-Za-z0-9_-]";
			return -1;
		}
		if (c < 0x20 || c == 0x7f) {
			*why = "a control character";
			return -1;
		}
		if (w + 1 >= cap) {
			*why = name ? "a field name too long" : "a value longer than 1024 bytes";
			return -1;
		}
		out[w++] = (char)c;
	}
	out[w] = '\0';
	for (size_t i = 0; i < w;) {
		size_t k = utf8_len((const unsigned char *)out + i, w - i);

		if (!k) {
			*why = "a value that is not UTF-8";
			return -1;
		}
		i += k;
	}
	return 0;
}

int ui_form_parse(const char *body, size_t len, struct ui_form *f, struct refit_err *e)
{
	const char *why = NULL;
	size_t pos = 0;

	f->n = 0;
	if (len > UI_FORM_MAX_BODY)
		return err_set(e, ERR_USAGE, "form: larger than %d bytes", UI_FORM_MAX_BODY);
	while (pos < len) {
		const char *field = body + pos, *amp = memchr(field, '&', len - pos), *eq;
		size_t flen = amp ? (size_t)(amp - field) : len - pos;

		pos += flen + (amp ? 1 : 0);
		if (flen == 0)
			continue; /* "a=1&&b=2" */
		if (f->n == UI_FORM_MAX_FIELDS)
			return err_set(e, ERR_USAGE, "form: more than %d fields", UI_FORM_MAX_FIELDS);
		eq = memchr(field, '=', flen);
		if (!eq || eq == field)
			return err_set(e, ERR_USAGE, "form: a field without a name=value");
		if (form_decode(field, (size_t)(eq - field), true, f->name[f->n], sizeof(f->name[0]), &why) < 0 ||
		    form_decode(eq + 1, flen - (size_t)(eq - field) - 1, false, f->value[f->n], sizeof(f->value[0]),
				&why) < 0)
			return err_set(e, ERR_USAGE, "form: %s", why);
		for (size_t i = 0; i < f->n; i++)
			if (strcmp(f->name[i], f->name[f->n]) == 0)
				return err_set(e, ERR_USAGE, "form: field %s given twice", f->name[f->n]);
		f->n++;
	}
	return 0;
}

const char *ui_form_get(const struct ui_form *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->name[i], name) == 0)
			return f->value[i];
	return NULL;
}

/* RFC 6265 cookie-octet. */
static bool cookie_octet(int c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
	       (c >= 0x5d && c <= 0x7e);
}

/* RFC 7230 token character (a cookie's name). */
static bool token_char(int c)
{
	return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

int ui_cookie_get(const char *hdr, const char *name, char *out, size_t len)
{
	size_t hlen = strnlen(hdr, UI_COOKIE_MAX + 1), nlen = strlen(name);
	const char *p = hdr, *end;
	int found = 0;

	if (hlen > UI_COOKIE_MAX || len == 0)
		return -1;
	end = hdr + hlen;
	while (p < end) {
		const char *n0, *v0;
		size_t nl, vl;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == end)
			break;
		n0 = p;
		while (p < end && token_char((unsigned char)*p))
			p++;
		nl = (size_t)(p - n0);
		if (nl == 0 || p == end || *p != '=')
			return -1;
		p++;
		v0 = p;
		if (p < end && *p == '"') {
			p++;
			v0 = p;
			while (p < end && cookie_octet((unsigned char)*p))
				p++;
			if (p == end || *p != '"')
				return -1;
			vl = (size_t)(p - v0);
			p++;
		} else {
			while (p < end && cookie_octet((unsigned char)*p))
				p++;
			vl = (size_t)(p - v0);
		}
		if (!found && nl == nlen && memcmp(n0, name, nl) == 0) {
			if (vl + 1 > len)
				return -1;
			memcpy(out, v0, vl);
			out[vl] = '\0';
			found = 1; /* the first one counts (the most specific path, RFC 6265 5.4) */
		}
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == end)
			break;
		if (*p != ';')
			return -1;
		p++;
	}
	return found;
}

void ui_buf_put(struct ui_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->s, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void ui_buf_puts(struct ui_buf *b, const char *s)
{
	ui_buf_put(b, s, strlen(s));
}

void ui_buf_printf(struct ui_buf *b, const char *fmt, ...)
{
	char small[512], *big = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		ui_buf_put(b, small, (size_t)n);
		return;
	}
	va_start(ap, fmt);
	n = vasprintf(&big, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	ui_buf_put(b, big, (size_t)n);
	free(big);
}

void ui_buf_html(struct ui_buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0, run = 0;

	for (size_t i = 0; i < n;) {
		const char *rep = NULL;
		size_t k = utf8_len((const unsigned char *)s + i, n - i);

		switch (s[i]) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default:
			if (!k)
				rep = "\xef\xbf\xbd";
			else if ((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t')
				rep = "\xef\xbf\xbd";
			break;
		}
		if (rep) {
			ui_buf_put(b, s + i - run, run);
			ui_buf_puts(b, rep);
			run = 0;
			i += k ? k : 1;
		} else {
			run += k;
			i += k;
		}
	}
	ui_buf_put(b, s ? s + n - run : "", run);
}

void ui_buf_free(struct ui_buf *b)
{
	free(b->s);
	*b = (struct ui_buf){ 0 };
}
