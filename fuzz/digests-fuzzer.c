/*
 * libFuzzer target: state_dir/digests.json (held digests, first-seen times)
 * as refit reads it back. Whatever the file holds, the answer is the
 * checked shape, within its bounds, and reading it again gives the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/hold.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = hold_parse((const char *)data, size), *again, *v;
	const char *k;
	char *text;

	if (!json_is_object(json_object_get(doc, "holds")) || !json_is_object(json_object_get(doc, "seen")) ||
	    json_object_size(json_object_get(doc, "holds")) > HOLD_MAX ||
	    json_object_size(json_object_get(doc, "seen")) > SEEN_MAX)
		__builtin_trap();
	json_object_foreach(json_object_get(doc, "holds"), k, v) {
		const char *d = json_string_value(json_object_get(v, "digest"));

		if (!d || strlen(d) != 71 || !json_is_integer(json_object_get(v, "since")))
			__builtin_trap();
	}
	text = json_dumps(doc, JSON_COMPACT);
	if (!text)
		__builtin_trap();
	again = hold_parse(text, strlen(text)); /* what refit writes, it reads back unchanged */
	if (!json_equal(doc, again))
		__builtin_trap();
	json_decref(again);
	free(text);
	json_decref(doc);
	return 0;
}
