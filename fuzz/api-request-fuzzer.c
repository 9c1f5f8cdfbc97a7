/* libFuzzer target: management API bodies and Watchtower's ?image= and ?container= queries. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/api-request.h"
#include "refit/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct refit_err er = { 0 };
	char *err = er.msg, *q;
	json_t *images = NULL;

	for (int k = BODY_COMMAND; k <= BODY_RELEASE; k++) {
		struct api_request r;

		err[0] = '\0';
		if (api_parse((enum api_body)k, (const char *)data, size, &r, &er) == 0) {
			/* Accepted bodies become params with only known keys. */
			if (!json_is_object(r.params) || json_object_size(r.params) > 3)
				__builtin_trap();
			json_decref(r.params);
		} else if (!err[0]) {
			__builtin_trap(); /* every refusal explains itself */
		}
	}
	q = malloc(size + 1);
	if (!q)
		return 0;
	memcpy(q, data, size);
	q[size] = '\0';
	if (api_parse_images(q, &images, &er) == 0)
		json_decref(images);
	er.msg[0] = '\0';
	images = api_parse_names(q, &er);
	if (images) {
		/* accepted: names only, each by the engine's rule */
		for (size_t i = 0; i < json_array_size(images); i++)
			if (!container_name_valid(json_string_value(json_array_get(images, i))))
				__builtin_trap();
		json_decref(images);
	} else if (!er.msg[0]) {
		__builtin_trap();
	}
	free(q);
	return 0;
}
