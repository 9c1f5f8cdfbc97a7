/* libFuzzer target: the fleet's hosts file (YAML). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "refit/fleet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fleet_hosts h;
	struct refit_err e = { 0 };

	if (fleet_hosts_parse((const char *)data, size, "fuzz.yml", &h, &e) < 0) {
		if (e.msg[0] == '\0' || h.v || h.n)
			__builtin_trap(); /* every failure explains itself and leaves nothing */
		return 0;
	}
	if (h.n == 0 || h.n > FLEET_MAX_HOSTS)
		__builtin_trap();
	for (size_t i = 0; i < h.n; i++) {
		const struct fleet_host *x = &h.v[i];

		/* accepted hosts are complete and valid */
		if (!x->name || !x->url || !fleet_url_valid(x->url) || (!x->token == !x->token_file) ||
		    strlen(x->name) > FLEET_MAX_NAME || x->timeout < 0 || x->timeout > 86400 || x->connect_timeout < 0 ||
		    x->connect_timeout > 300)
			__builtin_trap();
		for (size_t k = 0; k < i; k++)
			if (strcmp(h.v[k].name, x->name) == 0)
				__builtin_trap();
	}
	fleet_hosts_free(&h);
	return 0;
}
