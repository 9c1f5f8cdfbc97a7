/* `refit daemon`: the long-running service loop. */
#ifndef REFIT_DAEMON_H
#define REFIT_DAEMON_H

#include "refit/config.h"

/*
 * `refit reload PID` asks for an answer: it queues SIGHUP (sigqueue) with
 * RELOAD_ASK as its value, and the daemon answers with SIGUSR1 whose value
 * is RELOAD_APPLIED (the new configuration is taken, at once or when the
 * running pass ends) or RELOAD_REFUSED (the running one is kept; why is in
 * STATUS= and the log). A plain SIGHUP gets no answer.
 */
#define RELOAD_ASK 0x72666c64 /* "rfld" */
#define RELOAD_APPLIED 0
#define RELOAD_REFUSED 1

/*
 * Run check passes every poll_interval until SIGTERM or SIGINT (exit 0).
 * SIGHUP reloads the configuration through RELOAD, never waiting for the
 * running pass (the new one takes over at the pass boundary); a bad one is
 * logged, said in STATUS= and the old one kept. Returns the process exit code.
 */
int daemon_run(struct refit_config *cfg, int (*reload)(struct refit_config *cfg, struct refit_err *e));

#endif
