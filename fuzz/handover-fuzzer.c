/* libFuzzer target: state_dir's handover.json, and /proc/self/mountinfo as refit reads its own container's ID from it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "refit/handover.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *h = handover_parse((const char *)data, size);
	char id[65];

	if (h) {
		const char *from = json_string_value(json_object_get(h, "from"));
		const char *to = json_string_value(json_object_get(h, "to"));

		/* what reaches engine paths: two different IDs of 64 hex digits */
		if (!from || !to || strlen(from) != 64 || strlen(to) != 64 || strspn(from, "0123456789abcdef") != 64 ||
		    strcmp(from, to) == 0)
			__builtin_trap();
		json_decref(h);
	}
	if (handover_id_from_mountinfo((const char *)data, size, id) == 0 &&
	    (strlen(id) != 64 || strspn(id, "0123456789abcdef") != 64))
		__builtin_trap();
	return 0;
}
