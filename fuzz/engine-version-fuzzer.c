/* libFuzzer target: an engine's /version answer, and the API version refit speaks with it;
 * the same bytes as an /info answer, for the image store. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "refit/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *v = json_loadb((const char *)data, size, 0, NULL);
	struct refit_err e = { 0 };
	char out[16];

	if (!v)
		return 0;
	if (engine_negotiate(json_string_value(json_object_get(v, "ApiVersion")),
			     json_string_value(json_object_get(v, "MinAPIVersion")), out, sizeof(out), &e) == 0) {
		/* what goes into every request path: digits, one dot, digits */
		size_t n = strspn(out, "0123456789.");

		if (n != strlen(out) || !strchr(out, '.') || strchr(out, '.') != strrchr(out, '.'))
			__builtin_trap();
	}
	(void)engine_info_containerd_store(v);
	json_decref(v);
	return 0;
}
