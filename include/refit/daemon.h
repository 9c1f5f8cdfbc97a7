/* `refit daemon`: the long-running service loop. */
#ifndef REFIT_DAEMON_H
#define REFIT_DAEMON_H

#include "refit/config.h"

/*
 * Run check passes every poll_interval until SIGTERM or SIGINT (exit 0).
 * SIGHUP reloads the configuration through RELOAD; a bad one is logged and
 * the old one kept. Returns the process exit code.
 */
int daemon_run(struct refit_config *cfg, int (*reload)(struct refit_config *cfg, struct refit_err *e));

#endif
