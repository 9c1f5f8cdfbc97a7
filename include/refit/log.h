/* Logging to stderr: text lines with a level, or JSON lines. */
#ifndef REFIT_LOG_H
#define REFIT_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Parse "error|warn|info|debug"; -1 when unknown. */
int log_level_parse(const char *s);

void log_setup(int level, bool json);

/* Log one message. Callers never pass secrets (tokens, passwords, auth headers). */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
