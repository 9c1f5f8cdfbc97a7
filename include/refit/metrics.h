/* Prometheus metrics of passes, containers and registry requests. */
#ifndef REFIT_METRICS_H
#define REFIT_METRICS_H

#include <stdbool.h>

#include "refit/check.h"
#include "refit/registry.h"

/* Count one finished pass of KIND ("update", "rollback", "check") that took SECONDS. */
void metrics_pass(const char *kind, const struct check_result *res, double seconds);

/* Count one swap that took SECONDS. */
void metrics_swap(double seconds);

/* A scheduled pass not run (paused). */
void metrics_skipped(void);

/* Count one model pass: models pulled, updated (digest changed), failed. */
void metrics_models(unsigned long checked, unsigned long updated, unsigned long failed);

/* A scheduled model pass not run (paused). */
void metrics_models_skipped(void);

/* Registry requests sent by a client, as totals since its start. */
void metrics_registry(const struct registry_stats *now);

/* The exposition text (malloc'd): HELP/TYPE lines, refit_* and Watchtower's names. */
char *metrics_render(bool paused);

#endif
