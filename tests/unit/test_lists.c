/* Unit tests: the engine's container and image lists as a check pass reads them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "refit/depends.h"
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

#define IDA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define IDB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define IDC "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define IDD "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

static void test_pass_view(void **state)
{
	/*
	 * db is linked by web as "database" and by an unmanaged container;
	 * sidecar runs in web's network namespace; old is exited, paused is
	 * paused; a malformed element is left out.
	 */
	json_t *list = load("["
			    "{\"Id\":\"" IDA "\",\"Names\":[\"/web/database\",\"/db\",\"/other/db\"],\"State\":\"running\","
			    "\"Labels\":{\"refit.enable\":\"true\"},\"HostConfig\":{\"NetworkMode\":\"net1\"}},"
			    "{\"Id\":\"" IDB "\",\"Names\":[\"/web\"],\"State\":\"running\","
			    "\"Labels\":{\"refit.depends-on\":\"db\"}},"
			    "{\"Id\":\"" IDC "\",\"Names\":[\"/sidecar\"],\"State\":\"exited\","
			    "\"HostConfig\":{\"NetworkMode\":\"container:" IDB "\"}},"
			    "{\"Id\":\"" IDD "\",\"Names\":[\"/paused\"],\"State\":\"paused\"},"
			    "{\"Id\":\"short\",\"Names\":[\"/bad\"]},"
			    "{\"Id\":\"" ID "\",\"Names\":[\"/other\"],\"State\":\"running\"}"
			    "]");
	json_t *want = load("{\"" IDA "\":true,\"" IDB "\":true,\"" IDC "\":true,\"" IDD "\":true}");
	json_t *all = NULL, *netns = NULL, *web, *deps;
	struct refit_err e = { 0 };

	(void)state;
	assert_int_equal(lists_pass_view(list, want, &all, &netns, &e), 0);
	assert_int_equal(json_object_size(all), 4); /* "other" is not managed, "bad" is unusable */
	web = json_object_get(all, "web");
	assert_string_equal(json_string_value(json_object_get(web, "Id")), IDB);
	assert_string_equal(json_string_value(json_object_get(web, "Name")), "/web");
	assert_true(json_is_true(json_object_get(json_object_get(web, "State"), "Running")));
	/* the link as inspect writes it, on the container that links */
	assert_int_equal(json_array_size(json_object_get(json_object_get(web, "HostConfig"), "Links")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(web, "HostConfig"), "Links"), 0)),
			    "/db:/web/database");
	assert_int_equal(json_array_size(json_object_get(json_object_get(json_object_get(all, "db"), "HostConfig"), "Links")),
			 0);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(json_object_get(all, "db"), "Config"), "Labels"),
				    "refit.enable")),
			    "true");
	assert_true(json_is_false(json_object_get(json_object_get(json_object_get(all, "sidecar"), "State"), "Running")));
	assert_true(json_is_true(json_object_get(json_object_get(json_object_get(all, "paused"), "State"), "Running")));
	/* what the dependency order reads of it: web after db, sidecar after web */
	deps = depends_of(web, all);
	assert_int_equal(json_array_size(deps), 1);
	assert_string_equal(json_string_value(json_array_get(deps, 0)), "db");
	json_decref(deps);
	deps = depends_of(json_object_get(all, "sidecar"), all);
	assert_int_equal(json_array_size(deps), 1);
	assert_string_equal(json_string_value(json_array_get(deps, 0)), "web");
	json_decref(deps);
	/* the containers on another's network namespace, in the list's shape */
	assert_int_equal(json_array_size(netns), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(json_array_get(netns, 0), "Names"), 0)),
			    "sidecar");
	assert_string_equal(json_string_value(json_object_get(json_array_get(netns, 0), "State")), "exited");
	json_decref(all);
	json_decref(netns);
	json_decref(want);
	json_decref(list);
}

static void test_pass_view_rejected(void **state)
{
	json_t *obj = load("{}"), *all = (json_t *)1, *netns = (json_t *)1;
	struct refit_err e = { 0 };

	(void)state;
	assert_int_equal(lists_pass_view(obj, obj, &all, &netns, &e), -1);
	assert_null(all);
	assert_null(netns);
	assert_non_null(strstr(e.msg, "container list"));
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
		cmocka_unit_test(test_pass_view),
		cmocka_unit_test(test_pass_view_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
