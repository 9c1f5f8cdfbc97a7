/* libFuzzer target: migration files (refit migrate FILE). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "refit/base.h"
#include "refit/migrate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct migration_plan plan;
	struct refit_err e = { 0 };

	if (migrate_parse((const char *)data, size, "fuzz.yml", &plan, &e) < 0) {
		/* Every failure explains itself and leaves nothing behind. */
		if (e.msg[0] == '\0' || plan.v || plan.n)
			__builtin_trap();
		return 0;
	}
	if (plan.n == 0 || plan.n > MIGRATE_MAX_ENTRIES)
		__builtin_trap();
	for (size_t i = 0; i < plan.n; i++) {
		/* Accepted entries are valid, distinct names. */
		if (!container_name_valid(plan.v[i].from) || !container_name_valid(plan.v[i].to) ||
		    strcmp(plan.v[i].from, plan.v[i].to) == 0)
			__builtin_trap();
		for (size_t k = 0; k < i; k++)
			if (strcmp(plan.v[k].to, plan.v[i].to) == 0 || strcmp(plan.v[k].from, plan.v[i].from) == 0)
				__builtin_trap();
	}
	migrate_plan_free(&plan);
	return 0;
}
