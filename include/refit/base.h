/*
 * What every module shares: array length, cleanup attributes, the clocks,
 * the one container-name rule and a printable quote of outside input.
 */
#ifndef REFIT_BASE_H
#define REFIT_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Cleanup on scope exit (GCC and clang): `_cleanup_(json_decrefp) json_t *j = NULL;` (jansson's json_decrefp). */
#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
	free(*(void **)p);
}

#define ISO_TIME_LEN 32

/* Now, UTC, ISO 8601 to the second ("2026-12-01T23:09:30Z"); returns BUF. */
char *iso_now(char buf[ISO_TIME_LEN]);

/* The same for T. */
char *iso_time(time_t t, char buf[ISO_TIME_LEN]);

/* The monotonic clock: seconds (fractional), milliseconds, whole seconds. */
double mono_seconds(void);
long long mono_ms(void);
time_t mono_s(void);

/* Seconds on the monotonic clock since T0. */
double mono_since(const struct timespec *t0);

/*
 * A Docker container name, as the engine accepts one:
 * [a-zA-Z0-9][a-zA-Z0-9_.-]+ (two characters at least), at most 128.
 */
#define CONTAINER_NAME_MAX 128
bool container_name_valid(const char *name);

/*
 * A bounded, printable copy of outside input S for an error message: at
 * most MAX characters, others as \xHH, "..." when cut. BUF holds
 * QUOTE_SIZE(MAX) bytes. Returns BUF.
 */
/*
 * Format a path (file or engine request) into BUF of LEN bytes: 0, or -1
 * when it does not fit (BUF is then ""): a path is never cut silently.
 */
int path_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Grow *BUF (capacity *CAP; MIN the first capacity) to hold NEED bytes,
 * doubling: 0, or -1 when out of memory (*BUF and *CAP unchanged).
 */
int buf_reserve(char **buf, size_t *cap, size_t need, size_t min);

#define QUOTE_SIZE(max) ((max) * 4 + 4)
const char *quote_input(const char *s, size_t max, char *buf);

/* The value of variable NAME in ENVP (NAME=value strings, NULL-ended), or NULL. */
const char *env_lookup(char *const *envp, const char *name);

#endif
