/* Unit tests: the migration file and the API's migration_config, and the backup settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "refit/base.h"
#include "refit/config.h"
#include "refit/migrate.h"

static int parse(const char *yaml, struct migration_plan *plan, struct refit_err *e)
{
	memset(e, 0, sizeof(*e));
	return migrate_parse(yaml, strlen(yaml), "m.yml", plan, e);
}

/* YAML must be refused with a message holding every one of NEEDLES. */
static void refused(const char *yaml, const char *n1, const char *n2)
{
	struct migration_plan plan;
	struct refit_err e;

	assert_int_equal(parse(yaml, &plan, &e), -1);
	assert_int_equal(e.kind, ERR_USAGE);
	assert_null(plan.v);
	assert_int_equal(plan.n, 0);
	if (!strstr(e.msg, n1) || (n2 && !strstr(e.msg, n2)))
		fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", e.msg, n1, n2 ? n2 : "");
}

static void test_seed_example(void **state)
{
	static const char yaml[] = "migrations:\n"
				   "  - from: neurosync_s1            # existing container\n"
				   "    to: avatar_controller\n"
				   "    image: ghcr.io/its-define/avatar-controller:latest\n"
				   "    preserve_data: true\n"
				   "    rollback_on_failure: true\n"
				   "  - from: autogen_agent\n"
				   "    to: agent_coordinator\n";
	struct migration_plan plan;
	struct refit_err e;
	json_t *j;

	(void)state;
	assert_int_equal(parse(yaml, &plan, &e), 0);
	assert_int_equal(plan.n, 2);
	assert_string_equal(plan.v[0].from, "neurosync_s1");
	assert_string_equal(plan.v[0].to, "avatar_controller");
	assert_string_equal(plan.v[0].image, "ghcr.io/its-define/avatar-controller:latest");
	assert_true(plan.v[0].preserve_data);
	assert_int_equal(plan.v[0].line, 2);
	assert_string_equal(plan.v[1].from, "autogen_agent");
	assert_null(plan.v[1].image);
	assert_false(plan.v[1].preserve_data);
	assert_int_equal(plan.v[1].line, 7);
	j = migrate_plan_json(&plan);
	assert_int_equal(json_array_size(j), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "to")), "agent_coordinator");
	json_decref(j);
	migrate_plan_free(&plan);
	migrate_plan_free(&plan); /* twice is harmless */
}

static void test_file_errors(void **state)
{
	char *big;

	(void)state;
	refused("migrations:\n  - from: a1\n    to: b1\n    colour: red\n", "m.yml:4:", "colour");
	refused("migrations:\n  - from: a1\n    to: b1\n    to: b2\n", "m.yml:4:", "given twice");
	refused("migrations:\n  - from: a1\n    to: same\n  - from: a2\n    to: same\n", "m.yml:4:",
		"two containers");
	refused("migrations:\n  - from: a1\n    to: a2\n  - from: a2\n    to: a3\n", "m.yml:4:",
		"both a container migrated and a new name");
	refused("migrations:\n  - from: a1\n    to: a1\n", "m.yml:2:", "must differ");
	refused("migrations:\n  - from: a1\n    to: a1\n  - from: a1\n    to: bb\n", "must differ", NULL);
	refused("migrations:\n  - from: a1\n    to: 'x/y'\n", "m.yml:3:", "to: expected a container name");
	refused("migrations:\n  - from: -aa\n    to: bb\n", "from: expected a container name", NULL);
	refused("migrations:\n  - from: a1\n    to: b1\n    image: 'Not A Ref'\n", "m.yml:4:", "image");
	refused("migrations:\n  - from: a1\n    to: b1\n    preserve_data: maybe\n", "preserve_data", "true or false");
	refused("migrations:\n  - from: a1\n    to: b1\n    rollback_on_failure: false\n", "rollback_on_failure",
		"not supported");
	refused("migrations:\n  - to: b1\n", "from: missing", NULL);
	refused("migrations:\n  - from: a1\n", "to: missing", NULL);
	refused("migrations:\n  - from: [aa]\n    to: bb\n", "expected a single value", NULL);
	refused("migrations:\n  - just-a-string\n", "expected a mapping", NULL);
	refused("migrations: []\n", "at least one", NULL);
	refused("migrations: {}\n", "expected a list", NULL);
	refused("other: 1\n", "unknown key \"other\"", NULL);
	refused("migrations:\n  - {from: aa, to: bb}\nmigrations:\n  - {from: cc, to: dd}\n", "given twice", NULL);
	refused("", "expected a mapping", NULL);
	refused("[1, 2]\n", "expected a mapping", NULL);
	refused("migrations: [\n", "m.yml:", NULL);
	refused("migrations:\n  - &x {from: aa, to: bb}\n  - *x\n", "migrated twice", NULL);
	{
		char buf[64 * 40 + 64];
		size_t o = (size_t)snprintf(buf, sizeof(buf), "migrations:\n");

		for (int i = 0; i < 65; i++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "  - {from: a%d, to: b%d}\n", i, i);
		refused(buf, "at most 64 entries", NULL);
	}
	big = malloc(MIGRATE_MAX_FILE + 2);
	assert_non_null(big);
	memset(big, '#', MIGRATE_MAX_FILE + 1);
	big[MIGRATE_MAX_FILE + 1] = '\0';
	refused(big, "larger than", NULL);
	free(big);
}

static void test_names(void **state)
{
	(void)state;
	/* the engine's rule, [a-zA-Z0-9][a-zA-Z0-9_.-]+: one character is refused (moby daemon/names) */
	assert_true(container_name_valid("ab"));
	assert_false(container_name_valid("a"));
	assert_true(container_name_valid("avatar_controller-2.b"));
	assert_false(container_name_valid(""));
	assert_false(container_name_valid(NULL));
	assert_false(container_name_valid("_a"));
	assert_false(container_name_valid("a b"));
	assert_false(container_name_valid("a/b"));
	{
		char n[130];

		memset(n, 'a', 129);
		n[129] = '\0';
		assert_false(container_name_valid(n));
		n[128] = '\0';
		assert_true(container_name_valid(n));
	}
}

static int from_json(const char *text, struct migration_plan *plan, struct refit_err *e)
{
	json_t *j = json_loads(text, 0, NULL);
	int rc;

	assert_non_null(j);
	memset(e, 0, sizeof(*e));
	rc = migrate_from_json(j, plan, e);
	json_decref(j);
	return rc;
}

static void test_api_config(void **state)
{
	struct migration_plan plan;
	struct refit_err e;
	static const struct {
		const char *body, *needle;
	} bad[] = {
		{ "{\"rename_containers\": true, \"rename_map\": {\"aa\": \"bb/cc\"}}", "rename_map[0]: to" },
		{ "{\"rename_containers\": true, \"rename_map\": {\"aa\": 1}}", "rename_map[0]" },
		{ "{\"rename_containers\": true, \"rename_map\": {\"aa\": \"aa\"}}", "must differ" },
		{ "{\"rename_containers\": true, \"rename_map\": {\"aa\": \"cc\", \"bb\": \"cc\"}}", "two containers" },
		{ "{\"rename_containers\": \"yes\", \"rename_map\": {\"aa\": \"bb\"}}", "rename_containers" },
		{ "{\"rename_containers\": false, \"rename_map\": {\"aa\": \"bb\"}}", "rename_containers" },
		{ "{\"rollback_on_failure\": false}", "not supported" },
		{ "{\"rename_map\": []}", "old: new" },
		{ "{\"rename_containers\": true, \"rename_map\": {\"aa\": {\"image\": \"x:1\"}}}", "rename_map[0]: expected" },
		{ "{\"rename_containers\": true, \"rename_map\": {\"aa\": {\"to\": \"bb\", \"image\": \"UP:per\"}}}", "image" },
		{ "{\"rename_containers\": true, \"rename_map\": {\"aa\": {\"to\": \"bb\", \"cmd\": \"x\"}}}", "\"cmd\"" },
		{ "{\"rename_containers\": true, \"rename_map\": {\"aa\": {\"to\": \"bb\", \"image\": 1}}}", "\"image\"" },
		{ "{\"zz\": 1}", "unknown field \"zz\"" },
		{ "[]", "expected an object" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(from_json(bad[i].body, &plan, &e), -1);
		assert_int_equal(e.kind, ERR_USAGE);
		if (!strstr(e.msg, bad[i].needle))
			fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].body, e.msg, bad[i].needle);
		assert_int_equal(plan.n, 0);
	}
	assert_int_equal(from_json("{\"rollback_on_failure\": true}", &plan, &e), 0);
	assert_int_equal(plan.n, 0);
	/* no rename_map: an empty plan (the pass renames what declares refit.rename-to) */
	assert_int_equal(from_json("{\"rename_containers\": true, \"preserve_data\": true, \"rollback_on_failure\": true}",
				   &plan, &e),
			 0);
	assert_int_equal(plan.n, 0);
	assert_int_equal(from_json("{\"rename_containers\": true, \"rename_map\": {}}", &plan, &e), 0);
	assert_int_equal(plan.n, 0);
	assert_int_equal(from_json("{\"preserve_data\": true}", &plan, &e), 0);
	assert_int_equal(plan.n, 0);
	assert_int_equal(from_json("{\"rename_containers\": true, \"preserve_data\": true, \"rollback_on_failure\": true,"
				   " \"rename_map\": {\"neurosync_s1\": \"avatar_controller\", \"autogen_agent\": \"agent_coordinator\"}}",
				   &plan, &e),
			 0);
	assert_int_equal(plan.n, 2);
	assert_string_equal(plan.v[0].from, "neurosync_s1");
	assert_string_equal(plan.v[0].to, "avatar_controller");
	assert_true(plan.v[0].preserve_data && plan.v[1].preserve_data);
	assert_null(plan.v[1].image);
	migrate_plan_free(&plan);
	/* an entry may name a new image, as a migration file's can */
	assert_int_equal(from_json("{\"rename_containers\": true, \"rename_map\": {\"neurosync_s1\": {\"to\": \"avatar_controller\","
				   " \"image\": \"ghcr.io/its-define/avatar-controller:latest\"}, \"aa\": \"bb\"}}",
				   &plan, &e),
			 0);
	assert_int_equal(plan.n, 2);
	assert_string_equal(plan.v[0].to, "avatar_controller");
	assert_string_equal(plan.v[0].image, "ghcr.io/its-define/avatar-controller:latest");
	assert_null(plan.v[1].image);
	migrate_plan_free(&plan);
}

static void test_backup_keys(void **state)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };
	static const char yaml[] = "backup_max_bytes: 4096\nbackup_retention: 5\n";
	char var[] = "REFIT_BACKUP_MAX_BYTES=2048";
	char *env[] = { var, NULL };

	(void)state;
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(cfg.backup_max_bytes, 1L << 30);
	assert_int_equal(cfg.backup_retention, 3);
	assert_int_equal(config_load_buffer(&cfg, yaml, strlen(yaml), "r.yml", &e), 0);
	assert_int_equal(cfg.backup_max_bytes, 4096);
	assert_int_equal(cfg.backup_retention, 5);
	assert_int_equal(config_load_env(&cfg, env, &e), 0);
	assert_int_equal(cfg.backup_max_bytes, 2048);
	assert_int_equal(config_load_buffer(&cfg, "backup_retention: 0\n", 20, "r.yml", &e), -1);
	assert_non_null(strstr(e.msg, "r.yml:1: backup_retention"));
	assert_int_equal(config_load_buffer(&cfg, "backup_max_bytes: lots\n", 23, "r.yml", &e), -1);
	assert_non_null(strstr(e.msg, "backup_max_bytes"));
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_example), cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_names),        cmocka_unit_test(test_api_config),
		cmocka_unit_test(test_backup_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
