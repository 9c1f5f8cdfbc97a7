/* Error messages that callers wrap with context on the way up. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "refit/error.h"

int err_set(struct refit_err *e, enum refit_err_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return -1;
	e->kind = kind;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

void err_prefix(struct refit_err *e, const char *fmt, ...)
{
	char head[256], old[sizeof(e->msg)];
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	/* HEAD and as much of the old message as fits: a message may be cut, never overrun */
	{
		size_t h = strnlen(head, sizeof(head) - 1), o = strnlen(old, sizeof(old) - 1);

		if (h + o > sizeof(e->msg) - 1)
			o = sizeof(e->msg) - 1 - h;
		memcpy(e->msg, head, h);
		memcpy(e->msg + h, old, o);
		e->msg[h + o] = '\0';
	}
}

void err_clear(struct refit_err *e)
{
	if (!e)
		return;
	e->kind = ERR_NONE;
	e->msg[0] = '\0';
}
