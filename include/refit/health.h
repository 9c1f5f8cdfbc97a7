/* The health gate: a new container proves itself before the old one is let go. */
#ifndef REFIT_HEALTH_H
#define REFIT_HEALTH_H

#include <jansson.h>

#include "refit/config.h"
#include "refit/engine.h"
#include "refit/error.h"

enum health_mode { HEALTH_AUTO = 0, HEALTH_DOCKER, HEALTH_RUNNING, HEALTH_HTTP };

struct health_opts {
	enum health_mode mode;
	long timeout;    /* seconds for HEALTHCHECK or HTTP to pass */
	long min_uptime; /* seconds of running without a restart */
	int http_port;
	char http_path[256];
};

/*
 * Read the gate for a container from the config and its labels
 * (refit.health, refit.health-timeout, refit.min-uptime). -1 with E set
 * when a label is malformed.
 */
int health_opts_from(const struct refit_config *cfg, json_t *labels, struct health_opts *ret, struct refit_err *e);

/*
 * Wait until container ID passes: HEALTHCHECK healthy (mode docker, or auto
 * when the container has one), or running with an unchanged restart count
 * for min_uptime (running, or auto without a HEALTHCHECK), or an HTTP 2xx
 * from PORT/PATH on the container's address (http; it must keep running
 * too). -1 with E saying why when it exits, restarts, turns unhealthy or the
 * time runs out. The HEALTHCHECK status is read every 100 ms; min_uptime is
 * looked at every 500 ms and the moment it is reached. The thread's engine
 * slot (waited.h) is given back while it waits.
 */
int health_wait(struct engine *en, const char *id, const struct health_opts *o, struct refit_err *e);

#endif
