/*
 * libFuzzer target: the engine's container and image lists as a check pass
 * reads them (GET /containers/json and GET /images/json answers), and the
 * container list as an update pass reads it (every listed ID managed).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "refit/depends.h"
#include "refit/lists.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *list = json_loadb((const char *)data, size, 0, NULL), *c, *idx = NULL, *want, *all, *netns;
	struct refit_err e = { 0 };
	size_t i;

	if (!list)
		return 0;
	json_array_foreach(list, i, c) {
		struct listed_container lc;

		if (lists_container(c, &lc, &e) < 0)
			continue;
		/* what is accepted is what refit relies on */
		if (!lc.id || strlen(lc.id) != 64 || !lc.name || strchr(lc.name, '/') ||
		    (lc.image && strncmp(lc.image, "sha256:", 7) == 0) || (lc.labels && !json_is_object(lc.labels)))
			__builtin_trap();
	}
	if (lists_image_index(list, &idx, &e) == 0) {
		json_array_foreach(list, i, c) {
			const char *id = json_string_value(json_object_get(c, "Id"));
			json_t *d = id ? lists_image_digests(idx, id) : NULL;

			if (d && !json_is_array(d))
				__builtin_trap();
		}
		(void)lists_image_by_tag(idx, "docker.io/library/busybox:latest");
	} else if (idx) {
		__builtin_trap();
	}
	json_decref(idx);
	want = json_object();
	json_array_foreach(list, i, c) {
		const char *id = json_string_value(json_object_get(c, "Id"));

		if (id)
			json_object_set_new(want, id, json_true());
	}
	if (lists_pass_view(list, want, &all, &netns, &e) == 0) {
		const char *name;
		json_t *view;

		if (!json_is_object(all) || !json_is_array(netns))
			__builtin_trap();
		json_object_foreach(all, name, view) {
			json_t *deps = depends_of(view, all);

			if (!json_is_array(json_object_get(json_object_get(view, "HostConfig"), "Links")) || !deps)
				__builtin_trap();
			json_decref(deps);
		}
		json_decref(all);
		json_decref(netns);
	} else if (all || netns) {
		__builtin_trap();
	}
	json_decref(want);
	json_decref(list);
	return 0;
}
