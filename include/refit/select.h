/* Which containers refit manages: opt-in labels, scope, names, per-container modes. */
#ifndef REFIT_SELECT_H
#define REFIT_SELECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/config.h"
#include "refit/error.h"

#define LABEL_MAX_VALUE 1024
#define SELECT_COOLDOWN_MAX (366L * 24 * 3600)

/*
 * Value of label refit.SUFFIX, else com.centurylinklabs.watchtower.SUFFIX
 * (refit's wins where both are set); NULL when neither is set or the value
 * is longer than LABEL_MAX_VALUE. LABELS is the engine's Labels object.
 */
const char *label_get(json_t *labels, const char *suffix);

/* A boolean label as Go's strconv.ParseBool reads it: 1 true, 0 false, -1 unset or invalid. */
int label_bool(json_t *labels, const char *suffix);

/* Whether the container's refit.scope is the configured scope ("none" and
 * an empty or missing label are both unscoped). */
bool select_in_scope(const struct refit_config *cfg, json_t *labels);

/*
 * Does this refit manage the container? Opt-in (label_enable) or opt-out,
 * scope (an unscoped refit manages only unscoped containers; a scope label
 * of "" or "none" means unscoped), running or include_stopped, and NAMES
 * (when NNAMES > 0, only those names).
 */
bool select_container(const struct refit_config *cfg, json_t *labels, const char *name, bool running,
		      char *const *names, size_t nnames);

/* Report only (config monitor_only or the monitor-only label)? */
bool select_monitor_only(const struct refit_config *cfg, json_t *labels);

/* Compare with local images only (config no_pull or the no-pull label)? */
bool select_no_pull(const struct refit_config *cfg, json_t *labels);

/* The container's strategy: the refit.strategy label, else the config's; NULL when the label is invalid. */
const char *select_strategy(const struct refit_config *cfg, json_t *labels);

/*
 * How long a new digest waits after refit first saw it: label
 * refit.cooldown, else com.centurylinklabs.watchtower.cooldown-delay, else
 * the configuration's cooldown, into *RET. -1 with E (and *RET the
 * configuration's) when the label is not a duration.
 */
int select_cooldown(const struct refit_config *cfg, json_t *labels, long *ret, struct refit_err *e);

#endif
