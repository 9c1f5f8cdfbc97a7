/*
 * libFuzzer target: state_dir/operations.json (the daemon's operation
 * records) as the daemon reads it back at start. Whatever the file holds,
 * the answer is bounded, every record has the checked shape and has ended,
 * and reading what refit would write again gives the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/ops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *recs = ops_parse((const char *)data, size), *again, *r;
	char *text;
	size_t i;

	if (!recs)
		return 0;
	if (!json_is_array(recs) || json_array_size(recs) > OPS_KEEP + OPS_MAX_QUEUED)
		__builtin_trap();
	json_array_foreach(recs, i, r) {
		const char *id = json_string_value(json_object_get(r, "id"));
		const char *st = json_string_value(json_object_get(r, "state"));

		if (!id || strlen(id) != 16 || !st ||
		    (strcmp(st, "succeeded") != 0 && strcmp(st, "failed") != 0 && strcmp(st, "interrupted") != 0))
			__builtin_trap();
	}
	text = json_dumps(recs, JSON_COMPACT);
	if (!text)
		__builtin_trap();
	again = ops_parse(text, strlen(text)); /* every record has ended: read back unchanged */
	if (!json_equal(recs, again))
		__builtin_trap();
	json_decref(again);
	free(text);
	json_decref(recs);
	return 0;
}
