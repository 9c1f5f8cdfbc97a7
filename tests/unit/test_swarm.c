/* Unit tests: Swarm service answers as refit sees them, rollout labels, the update spec, UpdateStatus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "refit/swarm.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

/* A GET /services element with IMAGE and LABELS (a JSON object text). */
static json_t *service(const char *image, const char *labels)
{
	char buf[2048];
	json_t *j;

	snprintf(buf, sizeof(buf),
		 "{\"ID\":\"abc123def456\",\"Version\":{\"Index\":42},"
		 "\"Spec\":{\"Name\":\"web\",\"Labels\":%s,"
		 "\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"%s\",\"Labels\":{\"x\":\"y\"}},\"ForceUpdate\":0},"
		 "\"Mode\":{\"Replicated\":{\"Replicas\":2}},"
		 "\"UpdateConfig\":{\"Parallelism\":5,\"FailureAction\":\"continue\"}}}",
		 labels, image);
	j = json_loads(buf, 0, NULL);
	assert_non_null(j);
	return j;
}

static void test_parse_pinned_tag(void **state)
{
	json_t *s = service("127.0.0.1:5000/app/web:1.2@" D1, "{\"refit.enable\":\"true\"}");
	struct swarm_service sv;
	struct refit_err e = { 0 };

	(void)state;
	assert_int_equal(swarm_service_parse(s, &sv, &e), 0);
	assert_string_equal(sv.id, "abc123def456");
	assert_string_equal(sv.name, "web");
	assert_true(sv.version == 42);
	assert_string_equal(sv.image, "127.0.0.1:5000/app/web:1.2");
	assert_string_equal(sv.digest, D1);
	assert_false(sv.pinned);
	assert_string_equal(json_string_value(json_object_get(sv.labels, "refit.enable")), "true");
	swarm_service_free(&sv);
	json_decref(s);
}

static void test_parse_forms(void **state)
{
	struct swarm_service sv;
	struct refit_err e = { 0 };
	json_t *s;

	(void)state;
	/* digest only: pinned, reported and never changed */
	s = service("nginx@" D2, "null");
	assert_int_equal(swarm_service_parse(s, &sv, &e), 0);
	assert_true(sv.pinned);
	assert_string_equal(sv.image, "nginx@" D2);
	assert_string_equal(sv.digest, D2);
	assert_int_equal(json_object_size(sv.labels), 0);
	swarm_service_free(&sv);
	json_decref(s);
	/* never resolved (--no-resolve-image): no digest */
	s = service("nginx:1", "{}");
	assert_int_equal(swarm_service_parse(s, &sv, &e), 0);
	assert_null(sv.digest);
	assert_false(sv.pinned);
	assert_string_equal(sv.image, "nginx:1");
	swarm_service_free(&sv);
	json_decref(s);
	/* no tag, no digest: followed as :latest, so the pinned spec refit writes keeps a tag */
	s = service("nginx", "{}");
	assert_int_equal(swarm_service_parse(s, &sv, &e), 0);
	assert_null(sv.digest);
	assert_false(sv.pinned);
	assert_string_equal(sv.image, "nginx:latest");
	swarm_service_free(&sv);
	json_decref(s);
}

static void test_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"{\"ID\":\"abc\",\"Version\":{\"Index\":1},\"Spec\":{\"Name\":\"w\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"Bad Ref\"}}}}",
		"{\"ID\":\"abc\",\"Version\":{\"Index\":1},\"Spec\":{\"Name\":\"w\",\"TaskTemplate\":{}}}",
		"{\"ID\":\"abc\",\"Version\":{\"Index\":-1},\"Spec\":{\"Name\":\"w\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"a\"}}}}",
		"{\"ID\":\"abc\",\"Version\":{\"Index\":1},\"Spec\":{\"Name\":\"w\",\"Labels\":[],\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"a\"}}}}",
		"{\"ID\":\"abc\",\"Version\":{\"Index\":1},\"Spec\":{\"Name\":\"w\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"a:1@sha256:12\"}}}}",
		"{\"ID\":\"../x\",\"Version\":{\"Index\":1},\"Spec\":{\"Name\":\"w\"}}",
		"{\"ID\":\"abc\",\"Version\":{\"Index\":1},\"Spec\":{\"Name\":\"\"}}",
		"[]",
		NULL,
	};

	(void)state;
	for (int i = 0; bad[i]; i++) {
		json_t *s = json_loads(bad[i], JSON_DECODE_ANY, NULL);
		struct swarm_service sv;
		struct refit_err e = { 0 };

		assert_non_null(s);
		assert_int_equal(swarm_service_parse(s, &sv, &e), -1);
		assert_int_equal(e.kind, ERR_FAILED);
		assert_true(e.msg[0] != '\0');
		/* the name stays for the report once it was read */
		if (i < 5)
			assert_string_equal(sv.name, "w");
		swarm_service_free(&sv);
		json_decref(s);
	}
}

static void test_update_config_defaults_and_labels(void **state)
{
	struct swarm_update_config uc;
	struct refit_err e = { 0 };
	json_t *l = json_object();

	(void)state;
	assert_int_equal(swarm_update_config_parse(l, &uc, &e), 0);
	assert_int_equal(uc.parallelism, 1);
	assert_int_equal(uc.delay, 5);
	assert_int_equal(uc.monitor, 10);
	assert_int_equal(uc.timeout, 600);
	assert_string_equal(uc.order, "start-first");
	assert_string_equal(uc.failure_action, "rollback");
	assert_true(uc.max_failure_ratio == 0);
	json_object_set_new(l, "refit.swarm.parallelism", json_string("0"));
	json_object_set_new(l, "refit.swarm.delay", json_string("0s"));
	json_object_set_new(l, "refit.swarm.monitor", json_string("30s"));
	json_object_set_new(l, "refit.swarm.order", json_string("stop-first"));
	json_object_set_new(l, "refit.swarm.failure-action", json_string("pause"));
	json_object_set_new(l, "refit.swarm.max-failure-ratio", json_string("0.25"));
	json_object_set_new(l, "refit.swarm.timeout", json_string("120"));
	assert_int_equal(swarm_update_config_parse(l, &uc, &e), 0);
	assert_int_equal(uc.parallelism, 0);
	assert_int_equal(uc.delay, 0);
	assert_int_equal(uc.monitor, 30);
	assert_int_equal(uc.timeout, 120);
	assert_string_equal(uc.order, "stop-first");
	assert_string_equal(uc.failure_action, "pause");
	assert_true(uc.max_failure_ratio == 0.25);
	json_decref(l);
}

static void test_update_config_rejects(void **state)
{
	static const char *const bad[][2] = {
		{ "refit.swarm.parallelism", "-1" },  { "refit.swarm.parallelism", "1001" },
		{ "refit.swarm.parallelism", "1x" },  { "refit.swarm.delay", "" },
		{ "refit.swarm.delay", "3601" },      { "refit.swarm.monitor", "0" },
		{ "refit.swarm.monitor", "99999999999999999999" },
		{ "refit.swarm.timeout", "5" },       { "refit.swarm.order", "sideways" },
		{ "refit.swarm.failure-action", "continue" },
		{ "refit.swarm.max-failure-ratio", "1.5" }, { "refit.swarm.max-failure-ratio", "nan" },
		{ "refit.swarm.delay", " 5" },        { "refit.swarm.delay", "+5" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *l = json_object();
		struct swarm_update_config uc;
		struct refit_err e = { 0 };

		json_object_set_new(l, bad[i][0], json_string(bad[i][1]));
		assert_int_equal(swarm_update_config_parse(l, &uc, &e), -1);
		assert_int_equal(e.kind, ERR_USAGE);
		assert_non_null(strstr(e.msg, bad[i][0]));
		json_decref(l);
	}
	{
		json_t *l = json_pack("{s:i}", "refit.swarm.monitor", 5);
		struct swarm_update_config uc;
		struct refit_err e = { 0 };

		assert_int_equal(swarm_update_config_parse(l, &uc, &e), -1);
		json_decref(l);
	}
}

static void test_spec_for_update(void **state)
{
	json_t *s = service("r/web:1@" D1, "{}"), *spec = json_object_get(s, "Spec"), *copy = json_deep_copy(spec);
	struct swarm_update_config uc;
	struct refit_err e = { 0 };
	json_t *out, *u, *rb;

	(void)state;
	assert_int_equal(swarm_update_config_parse(NULL, &uc, &e), 0);
	out = swarm_spec_for_update(spec, "r/web:1@" D2, &uc);
	assert_non_null(out);
	assert_true(json_equal(spec, copy)); /* the input is not changed */
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(out, "TaskTemplate"), "ContainerSpec"), "Image")),
			    "r/web:1@" D2);
	/* everything else is kept */
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(
				    json_object_get(out, "TaskTemplate"), "ContainerSpec"), "Labels"), "x")), "y");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(out, "Mode"), "Replicated"),
							    "Replicas")), 2);
	u = json_object_get(out, "UpdateConfig");
	assert_int_equal(json_integer_value(json_object_get(u, "Parallelism")), 1);
	assert_int_equal(json_integer_value(json_object_get(u, "Delay")), 5000000000LL);
	assert_int_equal(json_integer_value(json_object_get(u, "Monitor")), 10000000000LL);
	assert_string_equal(json_string_value(json_object_get(u, "FailureAction")), "rollback");
	assert_string_equal(json_string_value(json_object_get(u, "Order")), "start-first");
	rb = json_object_get(out, "RollbackConfig");
	assert_string_equal(json_string_value(json_object_get(rb, "FailureAction")), "pause");
	assert_string_equal(json_string_value(json_object_get(rb, "Order")), "start-first");
	assert_int_equal(json_integer_value(json_object_get(rb, "Delay")), 0);
	json_decref(out);
	/* no ContainerSpec: nothing to update */
	json_object_del(json_object_get(spec, "TaskTemplate"), "ContainerSpec");
	assert_null(swarm_spec_for_update(spec, "x", &uc));
	assert_null(swarm_spec_for_update(NULL, "x", &uc));
	json_decref(copy);
	json_decref(s);
}

static void test_update_state(void **state)
{
	static const struct {
		const char *json;
		const char *before;
		enum swarm_state want;
	} rows[] = {
		{ "{}", NULL, SWARM_NONE },
		{ "{\"UpdateStatus\":{\"State\":\"completed\",\"StartedAt\":\"T1\"}}", "T1", SWARM_NONE },
		{ "{\"UpdateStatus\":{\"State\":\"completed\",\"StartedAt\":\"T2\"}}", "T1", SWARM_COMPLETED },
		{ "{\"UpdateStatus\":{\"State\":\"completed\",\"StartedAt\":\"T2\"}}", NULL, SWARM_COMPLETED },
		{ "{\"UpdateStatus\":{\"State\":\"updating\",\"StartedAt\":\"T2\"}}", "T1", SWARM_RUNNING },
		{ "{\"UpdateStatus\":{\"State\":\"rollback_started\",\"StartedAt\":\"T2\"}}", "T1", SWARM_RUNNING },
		{ "{\"UpdateStatus\":{\"State\":\"rollback_completed\",\"StartedAt\":\"T2\",\"Message\":\"m\"}}", "T1",
		  SWARM_ROLLED_BACK },
		{ "{\"UpdateStatus\":{\"State\":\"paused\",\"StartedAt\":\"T2\"}}", NULL, SWARM_PAUSED },
		{ "{\"UpdateStatus\":{\"State\":\"rollback_paused\",\"StartedAt\":\"T2\"}}", NULL, SWARM_PAUSED },
		{ "{\"UpdateStatus\":{\"State\":\"new_state\",\"StartedAt\":\"T2\"}}", NULL, SWARM_RUNNING },
		{ "{\"UpdateStatus\":{\"State\":\"completed\"}}", "T1", SWARM_NONE },
		{ "{\"UpdateStatus\":{\"State\":5}}", NULL, SWARM_NONE },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		json_t *j = json_loads(rows[i].json, 0, NULL);
		const char *msg = (const char *)1;

		assert_non_null(j);
		assert_int_equal(swarm_update_state(j, rows[i].before, &msg), rows[i].want);
		if (rows[i].want == SWARM_ROLLED_BACK)
			assert_string_equal(msg, "m");
		json_decref(j);
	}
}

static void test_task_and_manager(void **state)
{
	json_t *task = json_pack("{s:s, s:s}", "com.docker.swarm.task.id", "t", "refit.enable", "true");
	json_t *svc = json_pack("{s:s}", "com.docker.swarm.service.id", "s");
	json_t *plain = json_pack("{s:s}", "refit.enable", "true");
	json_t *mgr = json_loads("{\"Swarm\":{\"LocalNodeState\":\"active\",\"ControlAvailable\":true}}", 0, NULL);
	json_t *worker = json_loads("{\"Swarm\":{\"LocalNodeState\":\"active\",\"ControlAvailable\":false}}", 0, NULL);
	json_t *off = json_loads("{\"Swarm\":{\"LocalNodeState\":\"inactive\",\"ControlAvailable\":false}}", 0, NULL);

	(void)state;
	assert_true(swarm_is_task(task));
	assert_true(swarm_is_task(svc));
	assert_false(swarm_is_task(plain));
	assert_false(swarm_is_task(NULL));
	assert_true(swarm_info_manager(mgr));
	assert_false(swarm_info_manager(worker));
	assert_false(swarm_info_manager(off));
	assert_false(swarm_info_manager(NULL));
	json_decref(task);
	json_decref(svc);
	json_decref(plain);
	json_decref(mgr);
	json_decref(worker);
	json_decref(off);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_pinned_tag),
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_update_config_defaults_and_labels),
		cmocka_unit_test(test_update_config_rejects),
		cmocka_unit_test(test_spec_for_update),
		cmocka_unit_test(test_update_state),
		cmocka_unit_test(test_task_and_manager),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
