/* Unit tests: the Engine API version refit speaks with what an engine's /version gives (src/engine.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "refit/engine.h"

/* Every engine from 1.40 to 1.56 is spoken to in its own newest version; newer ones in 1.56. */
static void test_negotiate(void **state)
{
	static const struct {
		const char *api, *min, *want;
	} rows[] = {
		{ "1.40", "1.12", "1.40" }, /* Docker 19.03 */
		{ "1.41", "1.12", "1.41" }, /* Debian 12's 20.10 */
		{ "1.43", "1.12", "1.43" }, /* 24.0 */
		{ "1.44", "1.12", "1.44" }, /* 25.0 */
		{ "1.45", "1.24", "1.45" }, /* 26.1, Debian 13 */
		{ "1.47", "1.24", "1.47" }, /* 27 */
		{ "1.48", "1.24", "1.48" }, /* 28.0 */
		{ "1.51", "1.24", "1.51" }, /* 28.3 */
		{ "1.52", "1.44", "1.52" }, /* 29.0: refuses anything below 1.44 */
		{ "1.53", "1.44", "1.53" },
		{ "1.56", "1.44", "1.56" },
		{ "1.57", "1.44", "1.56" }, /* newer than refit knows: refit's newest */
		{ "1.60", "1.56", "1.56" },
		{ "2.0", "1.44", "1.56" },
		{ "1.41", NULL, "1.41" }, /* no MinAPIVersion given */
		{ "1.41", "", "1.41" },
		{ "1.41", "junk", "1.41" },
	};
	char out[16];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct refit_err e = { 0 };

		memset(out, 0, sizeof(out));
		if (engine_negotiate(rows[i].api, rows[i].min, out, sizeof(out), &e) != 0)
			fail_msg("%s/%s: %s", rows[i].api, rows[i].min ? rows[i].min : "-", e.msg);
		assert_string_equal(out, rows[i].want);
	}
}

/* Too old, refusing every version refit speaks, or no usable version: an error that says which. */
static void test_negotiate_refused(void **state)
{
	static const struct {
		const char *api, *min, *says;
	} rows[] = {
		{ "1.39", "1.12", "refit needs 1.40 or newer" },
		{ "1.25", NULL, "refit needs 1.40 or newer" },
		{ "1.60", "1.57", "accepts API 1.57 and newer only; refit speaks up to 1.56" },
		{ NULL, NULL, "no usable ApiVersion" },
		{ "", "1.44", "no usable ApiVersion" },
		{ "1.41abc", NULL, "no usable ApiVersion" },
		{ " 1.41", NULL, "no usable ApiVersion" },
		{ "+1.41", NULL, "no usable ApiVersion" },
		{ "1.-41", NULL, "no usable ApiVersion" },
		{ "1", NULL, "no usable ApiVersion" },
		{ "1.", NULL, "no usable ApiVersion" },
		{ "1.41.0", NULL, "no usable ApiVersion" },
		{ "100000.1", NULL, "no usable ApiVersion" },
		{ "1.99999", NULL, "no usable ApiVersion" },
	};
	char out[16];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct refit_err e = { 0 };

		if (engine_negotiate(rows[i].api, rows[i].min, out, sizeof(out), &e) != -1)
			fail_msg("%s/%s accepted", rows[i].api ? rows[i].api : "-", rows[i].min ? rows[i].min : "-");
		if (!strstr(e.msg, rows[i].says))
			fail_msg("%s: %s, want %s", rows[i].api ? rows[i].api : "-", e.msg, rows[i].says);
		assert_int_equal(e.kind, ERR_FAILED);
	}
}

/* The version goes into every request path: it must fit the buffer it is given. */
static void test_negotiate_small_buffer(void **state)
{
	char out[5];
	struct refit_err e = { 0 };

	(void)state;
	assert_int_equal(engine_negotiate("1.41", NULL, out, 4, &e), -1);
	assert_int_equal(engine_negotiate("1.41", NULL, out, sizeof(out), &e), 0);
}

/* The image store read from /info: DriverStatus as dockerd 26.1 gives it on each store. */
static void test_info_store(void **state)
{
	static const struct {
		const char *info;
		bool containerd;
	} rows[] = {
		{ "{\"Driver\":\"overlayfs\",\"DriverStatus\":[[\"driver-type\",\"io.containerd.snapshotter.v1\"]]}",
		  true },
		{ "{\"Driver\":\"overlay2\",\"DriverStatus\":[[\"Backing Filesystem\",\"extfs\"],"
		  "[\"Supports d_type\",\"true\"],[\"Using metacopy\",\"false\"],[\"Native Overlay Diff\",\"true\"],"
		  "[\"userxattr\",\"false\"]]}",
		  false },
		{ "{\"Driver\":\"overlay2\"}", false },
		{ "{\"DriverStatus\":null}", false },
		{ "{\"DriverStatus\":[\"driver-type\",\"io.containerd.snapshotter.v1\"]}", false },
		{ "{\"DriverStatus\":[[\"driver-type\"],[1,2],{},[\"driver-type\",\"io.containerd.snapshotter.v2\"]]}",
		  false },
		{ "[]", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		json_t *j = json_loads(rows[i].info, JSON_DECODE_ANY, NULL);

		assert_non_null(j);
		if (engine_info_containerd_store(j) != rows[i].containerd)
			fail_msg("%s: not %d", rows[i].info, rows[i].containerd);
		json_decref(j);
	}
	assert_false(engine_info_containerd_store(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_negotiate),
		cmocka_unit_test(test_negotiate_refused),
		cmocka_unit_test(test_negotiate_small_buffer),
		cmocka_unit_test(test_info_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
