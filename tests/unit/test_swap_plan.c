/* Unit tests: swap_plan(), the one decision of which strategy a swap runs, with every fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "refit/strategy.h"

/* A container's inspect: running or not, with a fixed host port or not. */
static json_t *inspect(bool running, bool host_port)
{
	json_t *ins = json_pack("{s:s, s:{s:b}, s:{}, s:{s:{}}}", "Id", "0123456789ab", "State", "Running", running,
				"Config", "NetworkSettings", "Networks");

	if (host_port)
		json_object_set_new(ins, "HostConfig",
				    json_pack("{s:{s:[{s:s, s:s}]}}", "PortBindings", "80/tcp", "HostIp", "",
					      "HostPort", "8080"));
	return ins;
}

struct row {
	const char *kind, *name, *strategy, *rename_to;
	bool running, host_port;
	const char *want;           /* the strategy that runs, or NULL: refused */
	const char *want_rename_to; /* the name it ends under, or NULL */
	bool want_downtime;
	const char *want_reason;    /* a piece of the reason, or NULL: none */
};

static void test_plans(void **state)
{
	static const struct row rows[] = {
		{ "update", "web", "recreate", NULL, true, false, "recreate", NULL, true, NULL },
		{ "update", "web", "blue-green", NULL, true, false, "blue-green", NULL, false, NULL },
		/* two copies cannot run at once on one host port */
		{ "update", "web", "blue-green", NULL, true, true, "recreate", NULL, true, "host ports" },
		/* nothing serving: nothing to overlap */
		{ "update", "web", "blue-green", NULL, false, false, "recreate", NULL, true, "not running" },
		{ "update", "web", "alias", "web2", true, false, "alias", "web2", false, NULL },
		/* already under its new name: in place, and blue-green's own fallbacks apply */
		{ "update", "web2", "alias", "web2", true, false, "blue-green", NULL, false, "in place" },
		{ "update", "web2", "alias", "web2", true, true, "recreate", NULL, true, "host ports" },
		{ "update", "web", "alias", NULL, true, false, NULL, NULL, false, "refit.rename-to" },
		{ "update", "web", "alias", "a", true, false, NULL, NULL, false, "rename-to must name" },
		{ "update", "web", "alias", "../x", true, false, NULL, NULL, false, "rename-to must name" },
		/* a rename-to label without the alias strategy renames nothing */
		{ "update", "web", "recreate", "web2", true, false, "recreate", NULL, true, NULL },
		/* a renamed container goes back to its old name, whatever its record's strategy */
		{ "rollback", "web2", "recreate", "web", true, false, "alias", "web", false, "old name" },
		{ "rollback", "web", "recreate", "web", true, false, "recreate", NULL, true, NULL },
		{ "migrate", "old", "alias", "new", true, false, "alias", "new", false, NULL },
		{ "update", "web", "yolo", NULL, true, false, NULL, NULL, false, "unknown strategy" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		json_t *old = inspect(r->running, r->host_port);
		struct swap_request rq = { .kind = r->kind, .name = r->name, .old = old, .strategy = r->strategy,
					   .rename_to = r->rename_to };
		struct swap_plan plan;
		struct refit_err e = { 0 };
		int rc = swap_plan(&rq, &plan, &e);

		if (!r->want) {
			if (rc != -1 || !strstr(e.msg, r->want_reason))
				fail_msg("row %zu: want refused with \"%s\", got %d \"%s\"", i, r->want_reason, rc, e.msg);
			json_decref(old);
			continue;
		}
		if (rc != 0)
			fail_msg("row %zu: refused: %s", i, e.msg);
		assert_string_equal(plan.strategy, r->want);
		if (r->want_rename_to)
			assert_string_equal(plan.rename_to, r->want_rename_to);
		else
			assert_null(plan.rename_to);
		if (plan.downtime != r->want_downtime)
			fail_msg("row %zu: downtime %d, want %d", i, plan.downtime, r->want_downtime);
		if (r->want_reason ? !plan.reason || !strstr(plan.reason, r->want_reason) : plan.reason != NULL)
			fail_msg("row %zu: reason \"%s\", want \"%s\"", i, plan.reason ? plan.reason : "(none)",
				 r->want_reason ? r->want_reason : "(none)");
		json_decref(old);
	}
}

static void test_strategy_names(void **state)
{
	char names[128];

	(void)state;
	assert_string_equal(strategy_known("blue-green"), "blue-green");
	assert_null(strategy_known("Blue-Green"));
	assert_null(strategy_known(NULL));
	strategy_names(names, sizeof(names));
	assert_string_equal(names, "recreate, blue-green, alias");
	strategy_names(names, 12); /* cut, never overrun */
	assert_int_equal(strlen(names), 11);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plans),
		cmocka_unit_test(test_strategy_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
