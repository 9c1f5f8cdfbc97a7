/* Unit tests: which containers are managed, by labels, scope, state and names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "refit/select.h"

#define R "refit."
#define W "com.centurylinklabs.watchtower."

/* Labels from "k=v" pairs. */
static json_t *labels(const char *const *kv)
{
	json_t *o = json_object();

	for (; kv && *kv; kv++) {
		const char *eq = strchr(*kv, '=');
		char key[128];

		snprintf(key, sizeof(key), "%.*s", (int)(eq - *kv), *kv);
		json_object_set_new(o, key, json_string(eq + 1));
	}
	return o;
}

struct row {
	const char *labels[4];
	bool label_enable;
	const char *scope;
	bool running;
	bool include_stopped;
	bool want;
};

static void test_table(void **state)
{
	static const struct row rows[] = {
		/* opt-in */
		{ { R "enable=true" }, true, NULL, true, false, true },
		{ { W "enable=true" }, true, NULL, true, false, true },
		{ { W "enable=TRUE" }, true, NULL, true, false, true },
		{ { R "enable=1" }, true, NULL, true, false, true },
		{ { R "enable=false" }, true, NULL, true, false, false },
		{ { NULL }, true, NULL, true, false, false },
		{ { R "enable=yes" }, true, NULL, true, false, false }, /* not a Go boolean */
		/* refit's label wins over Watchtower's */
		{ { R "enable=false", W "enable=true" }, true, NULL, true, false, false },
		{ { R "enable=true", W "enable=false" }, true, NULL, true, false, true },
		/* opt-out mode */
		{ { NULL }, false, NULL, true, false, true },
		{ { W "enable=false" }, false, NULL, true, false, false },
		{ { R "enable=true" }, false, NULL, true, false, true },
		/* scope */
		{ { R "enable=true", R "scope=a" }, true, "a", true, false, true },
		{ { R "enable=true", W "scope=a" }, true, "a", true, false, true },
		{ { R "enable=true", R "scope=b" }, true, "a", true, false, false },
		{ { R "enable=true" }, true, "a", true, false, false },
		{ { R "enable=true", R "scope=a" }, true, NULL, true, false, false },
		{ { R "enable=true", R "scope=none" }, true, NULL, true, false, true },
		{ { R "enable=true", R "scope=" }, true, NULL, true, false, true },
		{ { R "enable=true", R "scope=a", W "scope=b" }, true, "a", true, false, true },
		{ { R "enable=true", R "scope=a", W "scope=b" }, true, "b", true, false, false },
		/* stopped containers */
		{ { R "enable=true" }, true, NULL, false, false, false },
		{ { R "enable=true" }, true, NULL, false, true, true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct refit_config cfg;
		struct refit_err e = { 0 };
		json_t *l = labels(rows[i].labels);

		assert_int_equal(config_init(&cfg, &e), 0);
		cfg.label_enable = rows[i].label_enable;
		cfg.include_stopped = rows[i].include_stopped;
		if (rows[i].scope)
			cfg.scope = strdup(rows[i].scope);
		if (select_container(&cfg, l, "c", rows[i].running, NULL, 0) != rows[i].want)
			fail_msg("row %zu: expected %s", i, rows[i].want ? "selected" : "not selected");
		json_decref(l);
		config_free(&cfg);
	}
}

static void test_names(void **state)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };
	const char *kv[] = { R "enable=true", NULL };
	json_t *l = labels(kv);
	char *names[] = { (char *)"web", (char *)"db" };

	(void)state;
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_true(select_container(&cfg, l, "db", true, names, 2));
	assert_false(select_container(&cfg, l, "cache", true, names, 2));
	assert_true(select_container(&cfg, l, "cache", true, NULL, 0));
	json_decref(l);
	config_free(&cfg);
}

static void test_modes(void **state)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };
	const char *mo[] = { W "monitor-only=true", R "no-pull=true", NULL };
	const char *off[] = { R "monitor-only=false", R "strategy=blue-green", NULL };
	const char *bad[] = { R "strategy=yolo", NULL };
	json_t *a = labels(mo), *b = labels(off), *c = labels(bad);

	(void)state;
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_true(select_monitor_only(&cfg, a));
	assert_true(select_no_pull(&cfg, a));
	assert_false(select_monitor_only(&cfg, b));
	cfg.monitor_only = true;
	assert_false(select_monitor_only(&cfg, b)); /* the label overrides the config */
	assert_true(select_monitor_only(&cfg, c));
	assert_string_equal(select_strategy(&cfg, b), "blue-green");
	assert_string_equal(select_strategy(&cfg, a), "recreate");
	assert_null(select_strategy(&cfg, c));
	json_decref(a);
	json_decref(b);
	json_decref(c);
	config_free(&cfg);
}

static void test_long_label(void **state)
{
	char big[LABEL_MAX_VALUE + 20];
	json_t *l = json_object();

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_object_set_new(l, R "scope", json_string(big));
	json_object_set_new(l, W "scope", json_string("short"));
	assert_string_equal(label_get(l, "scope"), "short");
	json_decref(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_long_label),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
