/* libFuzzer target: container create bodies from arbitrary container and image inspect JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/engine-spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort unless OUT (from a successful build at API) has the shape the engine takes. */
static void check_output(const struct spec_output *out, json_t *container, const char *api)
{
	json_t *endpoints = json_object_get(json_object_get(out->create, "NetworkingConfig"), "EndpointsConfig");
	const char *k;
	json_t *v;
	size_t i;
	char *text;

	if (!json_is_object(out->create) || !json_is_array(out->connect) ||
	    !json_is_object(json_object_get(out->create, "HostConfig")) ||
	    strcmp(json_string_value(json_object_get(out->create, "Image")), "repo:tag") != 0)
		abort();
	if (strcmp(spec_network_mode(container), "default") != 0 &&
	    (json_object_get(out->create, "NetworkingConfig") || json_array_size(out->connect) != 0))
		abort();
	if (strcmp(api, "1.44") == 0 ? json_array_size(out->connect) != 0 : json_object_size(endpoints) > 1)
		abort();
	json_object_foreach(endpoints, k, v) {
		if (!json_is_object(v) || (strcmp(k, "bridge") == 0 && json_object_get(v, "Aliases")))
			abort();
	}
	json_array_foreach(out->connect, i, v) {
		if (!json_is_string(json_object_get(v, "Network")) ||
		    !json_is_object(json_object_get(v, "EndpointConfig")))
			abort();
	}
	text = json_dumps(out->create, JSON_COMPACT);
	if (!text)
		abort();
	free(text);
}

/* Build at API from CONTAINER and IMAGE; check the result and that the inputs did not change. */
static void run(json_t *container, json_t *image, const char *api)
{
	struct spec_input in = { container, image, "repo:tag", api, "alias" };
	struct spec_output out = { 0 };
	struct refit_err e = { 0 };
	json_t *c0 = container ? json_deep_copy(container) : NULL;
	json_t *i0 = image ? json_deep_copy(image) : NULL;

	if (spec_build(&in, &out, &e) == 0) {
		check_output(&out, container, api);
	} else {
		if (out.create || out.connect || e.kind != ERR_FAILED || !e.msg[0] ||
		    !memchr(e.msg, '\0', sizeof(e.msg)))
			abort();
	}
	if ((container && !json_equal(c0, container)) || (image && !json_equal(i0, image)))
		abort();
	spec_output_free(&out);
	json_decref(c0);
	json_decref(i0);
}

/* DATA is a container inspect, a NUL byte, then an image inspect (optional). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t clen = nul ? (size_t)(nul - data) : size;
	json_t *container = json_loadb((const char *)data, clen, JSON_DECODE_ANY, NULL);
	json_t *image = nul ? json_loadb((const char *)nul + 1, size - clen - 1, JSON_DECODE_ANY, NULL) : NULL;

	run(container, image, "1.41");
	run(container, image, "1.44");
	(void)spec_fixed_host_ports(container);
	(void)spec_fixed_host_ports(image);
	(void)spec_network_mode(image);
	json_decref(container);
	json_decref(image);
	return 0;
}
