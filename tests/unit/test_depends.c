/* Unit tests: dependencies from labels, compose, links and network_mode; update order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "refit/depends.h"

/* An inspect with NAME, ID, labels and host config given as JSON text. */
static json_t *ins(const char *name, const char *id, const char *labels, const char *host)
{
	json_t *l = json_loads(labels ? labels : "{}", 0, NULL), *h = json_loads(host ? host : "{}", 0, NULL);
	json_t *o = json_pack("{s:s+, s:s, s:{s:o}, s:o}", "Name", "/", name, "Id", id, "Config", "Labels", l,
			      "HostConfig", h);

	assert_non_null(o);
	return o;
}

/* The set of containers used by the tests below. */
static json_t *world(void)
{
	json_t *all = json_object();

	json_object_set_new(all, "db", ins("db", "1111111111111111aaaa", NULL, NULL));
	json_object_set_new(all, "cache", ins("cache", "2222222222222222bbbb", NULL, NULL));
	json_object_set_new(all, "web", ins("web", "3333333333333333cccc", "{\"refit.depends-on\":\"db, cache ,nosuch\"}", NULL));
	json_object_set_new(all, "proj-api-1",
			    ins("proj-api-1", "4444444444444444dddd",
				"{\"com.docker.compose.project\":\"proj\",\"com.docker.compose.service\":\"api\","
				"\"com.docker.compose.depends_on\":\"store:service_started:false,gone:service_healthy:true\"}",
				NULL));
	json_object_set_new(all, "proj-store-1",
			    ins("proj-store-1", "5555555555555555eeee",
				"{\"com.docker.compose.project\":\"proj\",\"com.docker.compose.service\":\"store\"}", NULL));
	json_object_set_new(all, "linked", ins("linked", "6666666666666666ffff", NULL, "{\"Links\":[\"/db:/linked/db\"]}"));
	json_object_set_new(all, "sidecar",
			    ins("sidecar", "7777777777777777abcd", "{\"com.centurylinklabs.watchtower.depends-on\":\"sidecar\"}",
				"{\"NetworkMode\":\"container:3333333333333333cccc\"}"));
	return all;
}

/* Assert that DEPS holds exactly the names in WANT (NULL-terminated). */
static void expect(json_t *deps, const char *const *want)
{
	size_t n = 0;

	for (; want[n]; n++) {
		bool found = false;
		size_t i;
		json_t *v;

		json_array_foreach(deps, i, v) {
			found |= strcmp(json_string_value(v), want[n]) == 0;
		}
		if (!found)
			fail_msg("missing dependency %s", want[n]);
	}
	assert_int_equal(json_array_size(deps), n);
}

static void test_sources(void **state)
{
	json_t *all = world(), *d;
	const char *const web[] = { "db", "cache", NULL };
	const char *const api[] = { "proj-store-1", NULL };
	const char *const linked[] = { "db", NULL };
	const char *const sidecar[] = { "web", NULL }; /* by ID; its own name is not a dependency */
	const char *const none[] = { NULL };

	(void)state;
	d = depends_of(json_object_get(all, "web"), all);
	expect(d, web);
	json_decref(d);
	d = depends_of(json_object_get(all, "proj-api-1"), all);
	expect(d, api);
	json_decref(d);
	d = depends_of(json_object_get(all, "linked"), all);
	expect(d, linked);
	json_decref(d);
	d = depends_of(json_object_get(all, "sidecar"), all);
	expect(d, sidecar);
	json_decref(d);
	d = depends_of(json_object_get(all, "db"), all);
	expect(d, none);
	json_decref(d);
	json_decref(all);
}

/* Position of NAME in ORDER. */
static size_t pos(json_t *order, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(order, i, v) {
		if (strcmp(json_string_value(v), name) == 0)
			return i;
	}
	fail_msg("%s not in the order", name);
	return 0;
}

static void test_order(void **state)
{
	json_t *all = world(), *names = json_pack("[s,s,s,s,s]", "sidecar", "web", "linked", "db", "cache");
	json_t *order = depends_order(names, all);

	(void)state;
	assert_int_equal(json_array_size(order), 5);
	assert_true(pos(order, "db") < pos(order, "web"));
	assert_true(pos(order, "cache") < pos(order, "web"));
	assert_true(pos(order, "web") < pos(order, "sidecar"));
	assert_true(pos(order, "db") < pos(order, "linked"));
	json_decref(order);
	json_decref(names);
	json_decref(all);
}

static void test_cycle(void **state)
{
	json_t *all = json_object(), *names, *order;

	(void)state;
	json_object_set_new(all, "a", ins("a", "aaaaaaaaaaaaaaaa0001", "{\"refit.depends-on\":\"b\"}", NULL));
	json_object_set_new(all, "b", ins("b", "aaaaaaaaaaaaaaaa0002", "{\"refit.depends-on\":\"a\"}", NULL));
	names = json_pack("[s,s]", "a", "b");
	order = depends_order(names, all);
	assert_int_equal(json_array_size(order), 2); /* a cycle is cut, nobody is lost */
	json_decref(order);
	json_decref(names);
	json_decref(all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sources),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_cycle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
