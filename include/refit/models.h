/* The model updater: pulls the configured Ollama models and reports which changed. */
#ifndef REFIT_MODELS_H
#define REFIT_MODELS_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "refit/config.h"
#include "refit/error.h"

#define MODELS_CONNECT_TIMEOUT 10 /* seconds to connect to the endpoint */

struct ops;

/* What one model pass needs, copied out of the configuration (a reload cannot change it mid-pass). */
struct models_settings {
	char *endpoint;           /* without a trailing '/' */
	struct strv names;
	long timeout;             /* seconds without data before a transfer is abandoned */
	char *state_dir;          /* history; NULL: not recorded */
	struct strv notifications;
};

int models_settings_copy(struct models_settings *s, const struct refit_config *cfg);

void models_settings_free(struct models_settings *s);

/* The outcome for one model. */
struct model_result {
	char *name;
	char *old_digest; /* "sha256:HEX" before the pull, NULL when not installed */
	char *new_digest; /* after the pull, NULL when not listed */
	const char *status; /* "updated", "up-to-date", "failed" */
	char error[512];
	double seconds;
	bool abandoned; /* cut short by SIGTERM: failed, but says nothing about the model */
};

struct models_result {
	struct model_result *v;
	size_t n;
	bool unreachable; /* the endpoint could not be reached at all */
};

/*
 * One pass: for each model, its digest from /api/tags, POST /api/pull
 * (streamed, read line by line), then /api/tags again. Results go to
 * RES, the history in state_dir (updated and failed models), the metrics and
 * the notifications. Returns -1 only for out of memory.
 */
int models_run(const struct models_settings *s, struct models_result *res, struct refit_err *e);

/* Exit code of a pass: 0 all ok, 1 a model failed, 3 the endpoint unreachable. */
int models_exit_code(const struct models_result *res);

/* {"endpoint", "models":[{"name","status","old_digest","new_digest","error"?,"seconds"}]} (new reference). */
json_t *models_result_json(const struct models_settings *s, const struct models_result *res);

void models_result_free(struct models_result *res);

/* Abandon transfers in progress and passes not yet begun (SIGTERM). */
void models_request_stop(void);

/*
 * The daemon's model job: a thread that runs a pass now, then every
 * models.interval, while models.names is not empty; a pass due while updates
 * are paused (OPS) is skipped. CFG is read under CFG_LOCK only to copy the
 * settings, so a long pull never holds up a reload or the container passes.
 */
struct models_job;

int models_job_start(struct models_job **ret, struct refit_config *cfg, pthread_rwlock_t *cfg_lock, struct ops *ops,
		     struct refit_err *e);

/* Stop the job (a transfer in progress is abandoned) and free it. NULL-safe. */
void models_job_stop(struct models_job *job);

#endif
