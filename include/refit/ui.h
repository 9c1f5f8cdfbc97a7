/*
 * The dashboard's parsers of outside input and its HTML output: the
 * application/x-www-form-urlencoded bodies its forms post, the Cookie
 * header, and text escaped for HTML. Bounded and strict: a malformed or
 * oversized input is refused whole, never half read.
 */
#ifndef REFIT_UI_H
#define REFIT_UI_H

#include <stdbool.h>
#include <stddef.h>

#include "refit/error.h"

#define UI_FORM_MAX_FIELDS 16
#define UI_FORM_MAX_NAME 32
#define UI_FORM_MAX_VALUE 1024
#define UI_FORM_MAX_BODY 8192
#define UI_COOKIE_MAX 4096

struct ui_form {
	size_t n;
	char name[UI_FORM_MAX_FIELDS][UI_FORM_MAX_NAME + 1];
	char value[UI_FORM_MAX_FIELDS][UI_FORM_MAX_VALUE + 1];
};

/*
 * Parse BODY (LEN bytes, not NUL-terminated) as "a=1&b=x%20y": names are
 * [A-Za-z0-9_-], values are %-decoded ('+' is a space) and must be UTF-8
 * text without control characters. -1 with E set when malformed, too long,
 * with too many fields, or a name given twice.
 */
int ui_form_parse(const char *body, size_t len, struct ui_form *f, struct refit_err *e);

/* The value of field NAME, or NULL. */
const char *ui_form_get(const struct ui_form *f, const char *name);

/*
 * The value of cookie NAME in the Cookie header HDR ("a=1; b=2") into OUT
 * (LEN bytes with the NUL): 1 found, 0 absent, -1 when the header is
 * malformed or too long, or the value does not fit. Values are cookie-octets
 * (RFC 6265), optionally quoted.
 */
int ui_cookie_get(const char *hdr, const char *name, char *out, size_t len);

/* A growing text buffer for pages; on out of memory it stays failed (oom) and the page is an error. */
struct ui_buf {
	char *s;
	size_t len, cap;
	bool oom;
};

void ui_buf_put(struct ui_buf *b, const char *s, size_t n);
void ui_buf_puts(struct ui_buf *b, const char *s);
void ui_buf_printf(struct ui_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* S with & < > " ' escaped (NULL as nothing); bytes that are not valid UTF-8 become U+FFFD. */
void ui_buf_html(struct ui_buf *b, const char *s);
void ui_buf_free(struct ui_buf *b);

#endif
