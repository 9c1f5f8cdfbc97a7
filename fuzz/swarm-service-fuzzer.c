/* libFuzzer target: Swarm answers (a service, a service list, /info) and refit.swarm.* labels. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/swarm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort unless a parsed service has the shape refit relies on. */
static void check_service(const struct swarm_service *sv)
{
	if (!sv->id || !sv->name || !sv->image || !json_is_object(sv->labels) || strlen(sv->name) > SWARM_MAX_NAME)
		abort();
	if (sv->pinned && !sv->digest)
		abort();
	if (!sv->pinned && strchr(sv->image, '@'))
		abort();
	if (sv->digest && strncmp(sv->digest, "sha", 3) != 0)
		abort();
}

/* Everything refit does with one service answer SVC. */
static void one(json_t *svc)
{
	struct swarm_service sv;
	struct swarm_update_config uc;
	struct refit_err e = { 0 };
	json_t *copy = json_deep_copy(svc), *spec;
	const char *msg;

	if (swarm_service_parse(svc, &sv, &e) == 0)
		check_service(&sv);
	else if (e.kind != ERR_FAILED || !e.msg[0] || !memchr(e.msg, '\0', sizeof(e.msg)))
		abort();
	swarm_service_free(&sv);
	if (swarm_update_config_parse(json_object_get(json_object_get(svc, "Spec"), "Labels"), &uc, &e) == 0) {
		if (uc.parallelism < 0 || uc.parallelism > 1000 || uc.delay < 0 || uc.delay > 3600 || uc.monitor < 1 ||
		    uc.monitor > 3600 || uc.timeout < 10 || uc.timeout > 86400 || !(uc.max_failure_ratio >= 0) ||
		    uc.max_failure_ratio > 1 || !uc.order || !uc.failure_action)
			abort();
		spec = swarm_spec_for_update(json_object_get(svc, "Spec"), "repo:tag@sha256:00", &uc);
		if (spec && (!json_is_object(json_object_get(spec, "UpdateConfig")) ||
			     !json_is_object(json_object_get(spec, "RollbackConfig"))))
			abort();
		json_decref(spec);
	} else if (e.kind != ERR_USAGE) {
		abort();
	}
	(void)swarm_update_state(svc, "2024-01-01T00:00:00Z", &msg);
	(void)swarm_update_state(svc, NULL, NULL);
	(void)swarm_is_task(json_object_get(svc, "Labels"));
	(void)swarm_is_task(svc);
	(void)swarm_info_manager(svc);
	if (copy && !json_equal(copy, svc))
		abort(); /* nothing changes its input */
	json_decref(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL), *v;
	size_t i;

	if (!j)
		return 0;
	if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			if (i >= 64)
				break;
			one(v);
		}
	} else {
		one(j);
	}
	json_decref(j);
	return 0;
}
