/* Errors: a fixed-size message and the exit-code class it maps to. */
#ifndef REFIT_ERROR_H
#define REFIT_ERROR_H

/* Error classes; the values are refit's exit codes. */
enum refit_err_kind {
	ERR_NONE = 0,
	ERR_FAILED = 1,      /* an operation on one container or image failed */
	ERR_USAGE = 2,       /* bad command line or configuration */
	ERR_UNREACHABLE = 3, /* engine or registry could not be reached */
};

struct refit_err {
	enum refit_err_kind kind;
	char msg[512];
};

/* Fill E (which may be NULL) and return -1, so callers can `return err_set(...)`. */
int err_set(struct refit_err *e, enum refit_err_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend context ("pull x: ") to the message already in E. */
void err_prefix(struct refit_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void err_clear(struct refit_err *e);

#endif
