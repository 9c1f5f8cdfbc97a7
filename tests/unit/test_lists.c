/* Unit tests: the engine's container and image lists as a check pass reads them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "refit/lists.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define IMG "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define IMG2 "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"

static json_t *load(const char *s)
{
	json_t *j = json_loads(s, 0, NULL);

	assert_non_null(j);
	return j;
}

static void test_container(void **state)
{
	/* a link alias listed first: the container's own name is the one with a single slash */
	json_t *c = load("{\"Id\":\"" ID "\",\"Names\":[\"/front/db\",\"/db\"],\"Image\":\"127.0.0.1:5000/db:1\","
			 "\"ImageID\":\"" IMG "\",\"State\":\"running\",\"Status\":\"Up 2 hours (healthy)\","
			 "\"Labels\":{\"refit.enable\":\"true\"},\"HostConfig\":{\"NetworkMode\":\"default\"}}");
	struct listed_container lc;
	struct refit_err e = { 0 };

	(void)state;
	assert_int_equal(lists_container(c, &lc, &e), 0);
	assert_string_equal(lc.id, ID);
	assert_string_equal(lc.name, "db");
	assert_string_equal(lc.image, "127.0.0.1:5000/db:1");
	assert_string_equal(lc.image_id, IMG);
	assert_string_equal(lc.state, "running");
	assert_string_equal(json_string_value(json_object_get(lc.labels, "refit.enable")), "true");
	json_decref(c);
}

static void test_container_image_id_in_place_of_reference(void **state)
{
	static const char *const images[] = { "\"" IMG "\"", "\"" IMG2 "\"", "\"\"", "null" };
	struct listed_container lc;
	struct refit_err e = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++) {
		char buf[600];
		json_t *c;

		snprintf(buf, sizeof(buf), "{\"Id\":\"" ID "\",\"Names\":[\"/web\"],\"Image\":%s,\"ImageID\":\"" IMG "\"}",
			 images[i]);
		c = load(buf);
		assert_int_equal(lists_container(c, &lc, &e), 0);
		assert_null(lc.image); /* the caller inspects for Config.Image */
		assert_null(lc.labels);
		assert_null(lc.state);
		json_decref(c);
	}
}

static void test_container_rejected(void **state)
{
	static const char *const bad[] = {
		"[]",
		"{\"Names\":[\"/web\"]}",
		"{\"Id\":\"0123\",\"Names\":[\"/web\"]}",
		"{\"Id\":\"" ID "\"}",
		"{\"Id\":\"" ID "\",\"Names\":[\"/a/b\"]}",
		"{\"Id\":\"" ID "\",\"Names\":[\"/-bad\"]}",
		"{\"Id\":\"" ID "\",\"Names\":[\"web\"]}",
		"{\"Id\":\"" ID "\",\"Names\":[\"/web\"],\"Labels\":[\"x\"]}",
		"{\"Id\":\"" ID "\",\"Names\":[\"/web\"],\"Image\":7}",
		"{\"Id\":\"" ID "\",\"Names\":[\"/web\"],\"Image\":\"a\\nb\"}",
		"{\"Id\":\"" ID "\",\"Names\":[\"/web\"],\"ImageID\":\"sha256:xyz\"}",
		"{\"Id\":\"" ID "\",\"Names\":[\"/web\"],\"State\":{\"Running\":true}}",
	};
	struct listed_container lc;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct refit_err e = { 0 };
		json_t *c = load(bad[i]);

		if (lists_container(c, &lc, &e) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_true(e.msg[0] != '\0');
		json_decref(c);
	}
}

static void test_image_index(void **state)
{
	json_t *list = load("[{\"Id\":\"" IMG "\",\"RepoTags\":[\"127.0.0.1:5000/web:1\",\"busybox\"],"
			    "\"RepoDigests\":[\"127.0.0.1:5000/web@" D1 "\"]},"
			    "{\"Id\":\"" IMG2 "\",\"RepoTags\":null,\"RepoDigests\":null},"
			    "{\"Id\":\"nothex\",\"RepoTags\":[\"x:1\"]},"
			    "{\"Id\":\"" ID "\",\"RepoTags\":[\"<none>:<none>\"],\"RepoDigests\":[7]},"
			    "{\"RepoTags\":[\"y:1\"]}]");
	json_t *idx = NULL, *d;
	struct refit_err e = { 0 };

	(void)state;
	assert_int_equal(lists_image_index(list, &idx, &e), 0);
	d = lists_image_digests(idx, IMG);
	assert_int_equal(json_array_size(d), 1);
	assert_string_equal(json_string_value(json_array_get(d, 0)), "127.0.0.1:5000/web@" D1);
	assert_int_equal(json_array_size(lists_image_digests(idx, IMG2)), 0);
	assert_non_null(lists_image_digests(idx, IMG2)); /* listed, no digests: pulled never */
	assert_null(lists_image_digests(idx, ID));         /* unreadable: inspected instead */
	assert_null(lists_image_digests(idx, "nothex"));
	assert_string_equal(lists_image_by_tag(idx, "127.0.0.1:5000/web:1"), IMG);
	assert_string_equal(lists_image_by_tag(idx, "docker.io/library/busybox:latest"), IMG);
	assert_null(lists_image_by_tag(idx, "x:1"));
	assert_null(lists_image_by_tag(idx, "docker.io/library/y:1"));
	json_decref(idx);
	json_decref(list);
}

/*
 * Podman: an image whose tag moved on has no RepoDigests, but its list entry
 * has the digest it was pulled as ("Digest") and its names ("History"), as
 * Podman 4.3 answers; the digest counts for each repository named there,
 * once. A Digest that is not a sha256 digest is not used.
 */
static void test_image_index_podman(void **state)
{
	json_t *list = load("[{\"Id\":\"" IMG "\",\"RepoTags\":null,\"RepoDigests\":[],\"Digest\":\"" D1 "\","
			    "\"History\":[\"127.0.0.1:5000/web:1\",\"127.0.0.1:5000/web:old\",\"other:2\",\"::\"]},"
			    "{\"Id\":\"" IMG2 "\",\"RepoDigests\":[\"127.0.0.1:5000/web@" D1 "\"],\"Digest\":\"" D1 "\","
			    "\"History\":[\"127.0.0.1:5000/web:1\"]},"
			    "{\"Id\":\"" ID "\",\"RepoDigests\":[],\"Digest\":\"md5:0123\",\"History\":[\"a:1\"]}]");
	json_t *idx = NULL, *d;
	struct refit_err e = { 0 };

	(void)state;
	assert_int_equal(lists_image_index(list, &idx, &e), 0);
	d = lists_image_digests(idx, IMG);
	assert_int_equal(json_array_size(d), 2);
	assert_string_equal(json_string_value(json_array_get(d, 0)), "127.0.0.1:5000/web@" D1);
	assert_string_equal(json_string_value(json_array_get(d, 1)), "docker.io/library/other@" D1);
	assert_int_equal(json_array_size(lists_image_digests(idx, IMG2)), 1);
	assert_int_equal(json_array_size(lists_image_digests(idx, ID)), 0);
	json_decref(idx);
	json_decref(list);
}

static void test_image_index_rejected(void **state)
{
	json_t *obj = load("{\"Id\":\"" IMG "\"}"), *idx = (json_t *)1;
	struct refit_err e = { 0 };

	(void)state;
	assert_int_equal(lists_image_index(obj, &idx, &e), -1);
	assert_null(idx);
	assert_int_equal(lists_image_index(NULL, &idx, &e), -1);
	json_decref(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_container),
		cmocka_unit_test(test_container_image_id_in_place_of_reference),
		cmocka_unit_test(test_container_rejected),
		cmocka_unit_test(test_image_index),
		cmocka_unit_test(test_image_index_podman),
		cmocka_unit_test(test_image_index_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
