/* Lifecycle hooks: commands from labels run inside a container through the engine's exec. */
#ifndef REFIT_HOOKS_H
#define REFIT_HOOKS_H

#include <jansson.h>
#include <stdbool.h>

#include "refit/engine.h"
#include "refit/error.h"

#define HOOK_SKIP 75 /* EX_TEMPFAIL from pre-update: leave this container alone this time */
#define HOOK_DEFAULT_TIMEOUT 60L

/*
 * Run hook KIND ("pre-check", "pre-update", "post-update", "post-check")
 * of a container whose labels are LABELS, in container ID, as `sh -c CMD`:
 * refit.hook.KIND, else com.centurylinklabs.watchtower.lifecycle.KIND. Its
 * time limit is refit.hook.KIND-timeout (seconds, "30s", "2m") or
 * Watchtower's lifecycle.KIND-timeout (minutes), default 60 s. Returns the
 * command's exit code (0 when there is no hook), or -1 with E set when it
 * could not be run or did not finish in time.
 */
int hook_run(struct engine *en, json_t *labels, const char *kind, const char *id, struct refit_err *e);

/* Whether LABELS declare hook KIND (what hook_run would run). */
bool hook_declared(json_t *labels, const char *kind);

#endif
