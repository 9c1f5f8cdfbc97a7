/* Docker Swarm services: opted-in services checked like containers and updated through Swarm. */
#ifndef REFIT_SWARM_H
#define REFIT_SWARM_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/check.h"
#include "refit/config.h"
#include "refit/engine.h"
#include "refit/error.h"
#include "refit/journal.h"

#define SWARM_MAX_SERVICES 2000
#define SWARM_MAX_NAME 255
#define SWARM_STATE_TTL 600 /* seconds an answer of GET /info about Swarm is kept */

/* How Swarm rolls out one update, from the refit.swarm.* labels or the defaults. */
struct swarm_update_config {
	long parallelism;         /* tasks updated at once; 0: all (refit.swarm.parallelism, default 1) */
	long delay;               /* seconds between batches (refit.swarm.delay, default 5) */
	long monitor;             /* seconds each new task is watched for failure (refit.swarm.monitor, default 10) */
	double max_failure_ratio; /* failures tolerated during the update (refit.swarm.max-failure-ratio, default 0) */
	const char *order;        /* "start-first" (default) or "stop-first" (refit.swarm.order) */
	const char *failure_action; /* "rollback" (default) or "pause" (refit.swarm.failure-action) */
	long timeout;             /* seconds refit follows the rollout (refit.swarm.timeout, default 600) */
};

/* refit's view of one service from GET /services. */
struct swarm_service {
	char *id;
	char *name;
	unsigned long long version; /* Version.Index: the next update must name it */
	char *image;   /* Spec.TaskTemplate.ContainerSpec.Image without its digest ("repo:tag"), or as is when only a digest */
	char *digest;  /* the digest the spec is pinned to, NULL when none */
	bool pinned;   /* only a digest, no tag: reported, never changed */
	json_t *labels; /* Spec.Labels (own reference; an empty object when none) */
	char *error;    /* from swarm_collect: why it cannot be checked, or NULL */
};

/* Is a container with these labels a task of a Swarm service (never swapped as a container)? */
bool swarm_is_task(json_t *labels);

/* Does GET /info's answer say this engine is an active Swarm manager? */
bool swarm_info_manager(json_t *info);

/*
 * Parse one element of GET /services into *RET. A service with no name or
 * ID, or an image that is not a reference, is ERR_FAILED with the reason;
 * *RET then keeps what was read (ID, name, labels) for the report. Free
 * *RET with swarm_service_free either way.
 */
int swarm_service_parse(json_t *svc, struct swarm_service *ret, struct refit_err *e);

void swarm_service_free(struct swarm_service *s);

/* The rollout settings of a service with Spec.Labels LABELS; ERR_USAGE naming the label when one is invalid. */
int swarm_update_config_parse(json_t *labels, struct swarm_update_config *ret, struct refit_err *e);

/*
 * A copy of service spec SPEC with TaskTemplate.ContainerSpec.Image set to
 * IMAGE and UpdateConfig / RollbackConfig from UC (new reference), or NULL
 * when SPEC has no TaskTemplate.ContainerSpec.
 */
json_t *swarm_spec_for_update(json_t *spec, const char *image, const struct swarm_update_config *uc);

/* Where a rollout stands, from a service's UpdateStatus. */
enum swarm_state {
	SWARM_NONE,        /* no UpdateStatus, or one from before (its StartedAt is BEFORE) */
	SWARM_RUNNING,     /* updating or rollback_started */
	SWARM_COMPLETED,   /* completed */
	SWARM_ROLLED_BACK, /* rollback_completed */
	SWARM_PAUSED,      /* paused or rollback_paused */
};

/*
 * The state of the rollout that started after the one whose StartedAt was
 * BEFORE (NULL: none). *MSG, when non-NULL, points at UpdateStatus.Message
 * (borrowed from SVC) or NULL.
 */
enum swarm_state swarm_update_state(json_t *svc, const char *before, const char **msg);

/*
 * Is Swarm on for this pass: the config's swarm is true or auto and the
 * engine is an active manager? 1 yes, 0 no, -1 when /info cannot be read.
 * The engine's answer is kept SWARM_STATE_TTL seconds (GET /info is costly
 * for the engine), and asked again sooner when GET /services fails.
 */
int swarm_enabled(struct engine *en, const struct refit_config *cfg, struct refit_err *e);

/*
 * The services CFG selects (labels on the service spec, scope, NAMES), when
 * Swarm is on; *N = 0 otherwise. -1 only when the engine cannot be reached.
 */
int swarm_collect(struct engine *en, const struct refit_config *cfg, char *const *names, size_t nnames,
		  struct swarm_service **ret, size_t *n, struct refit_err *e);

void swarm_services_free(struct swarm_service *v, size_t n);

/*
 * Update every service entry of RES (kind "service") whose status is
 * update-available: the new digest pinned, UpdateConfig from its labels,
 * then the rollout followed. Statuses become updated, rolled-back or
 * failed; each is journaled and kept in the history. STOP: start no more.
 */
void swarm_update_pass(struct engine *en, struct journal *j, const struct refit_config *cfg,
		       struct check_result *res, const atomic_bool *stop);

/*
 * `refit rollback NAME` for a service: when NAME is a service this refit
 * manages (Swarm on), Swarm's own rollback to its previous spec, followed
 * and journaled; one entry is appended to RES (RES->v has room). With ALL,
 * only when REC (its last update in the history, or NULL) says refit
 * updated it. 1 when NAME was a service (handled), 0 when not.
 */
int swarm_rollback_entry(struct engine *en, struct journal *j, const struct refit_config *cfg, const char *name,
			 bool all, json_t *rec, struct check_result *res);

/* Is REC (a journal record) a service's? */
bool swarm_record(json_t *rec);

/* Finish a service's record an interrupted run left: the rollout's state now decides the outcome. */
int swarm_recover(struct engine *en, struct journal *j, json_t *rec);

#endif
