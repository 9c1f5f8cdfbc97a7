/* Unit tests: held digests and first-seen times in state_dir, and the cooldown labels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "refit/hold.h"
#include "refit/select.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define IMG "127.0.0.1:5000/app:1"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/refit-hold-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_parse_drops_what_is_not_valid(void **state)
{
	const char *text = "{\"holds\":{\"web\":{\"image\":\"" IMG "\",\"digest\":\"" D1 "\",\"since\":1764633600},"
			   "\"-x\":{\"image\":\"" IMG "\",\"digest\":\"" D1 "\",\"since\":1764633600},"
			   "\"db\":{\"image\":\"" IMG "\",\"digest\":\"sha256:zz\",\"since\":1764633600},"
			   "\"old\":{\"image\":\"" IMG "\",\"digest\":\"" D1 "\",\"since\":5}},"
			   "\"seen\":{\"" IMG "@" D2 "\":1764633600,\"nope@" D2 "x\":1764633600,\"" IMG "@" D1 "\":\"t\"}}";
	json_t *doc = hold_parse(text, strlen(text));

	assert_int_equal(json_object_size(json_object_get(doc, "holds")), 1);
	assert_non_null(json_object_get(json_object_get(doc, "holds"), "web"));
	assert_int_equal(json_object_size(json_object_get(doc, "seen")), 1);
	json_decref(doc);
	doc = hold_parse("[1,", 3); /* torn or foreign: empty, never an error */
	assert_int_equal(json_object_size(json_object_get(doc, "holds")), 0);
	json_decref(doc);
}

/* One container with an update from D1 to LATEST. */
static void one_entry(struct check_result *r, struct check_entry *c, const char *latest, long cooldown)
{
	memset(c, 0, sizeof(*c));
	c->name = (char *)"web";
	c->image = (char *)IMG;
	c->latest_digest = (char *)latest;
	c->status = ENTRY_UPDATE_AVAILABLE;
	c->cooldown = cooldown;
	r->v = c;
	r->n = 1;
}

static void test_hold_then_release(void **state)
{
	struct refit_config cfg = { .state_dir = dir };
	struct refit_err e = { 0 };
	struct check_result r;
	struct check_entry c;
	json_t *released = NULL;

	assert_int_equal(hold_add(dir, "web", IMG, D2, "health gate failed", &e), 0);
	one_entry(&r, &c, D2, 0);
	hold_check(&cfg, &r, false, time(NULL));
	assert_int_equal(c.status, ENTRY_HELD);
	assert_non_null(strstr(c.error, "health gate failed"));
	free(c.error);
	/* --force: tried anyway */
	one_entry(&r, &c, D2, 0);
	hold_check(&cfg, &r, true, time(NULL));
	assert_int_equal(c.status, ENTRY_UPDATE_AVAILABLE);
	/* another digest from the registry: an update again, and the pass drops the hold */
	one_entry(&r, &c, D1, 0);
	hold_check(&cfg, &r, false, time(NULL));
	assert_int_equal(c.status, ENTRY_UPDATE_AVAILABLE);
	c.status = ENTRY_UP_TO_DATE;
	hold_pass_done(&cfg, &r);
	json_t *doc = hold_load(dir);
	assert_int_equal(json_object_size(json_object_get(doc, "holds")), 0);
	json_decref(doc);
	/* release */
	assert_int_equal(hold_add(dir, "web", IMG, D2, NULL, &e), 0);
	assert_int_equal(hold_add(dir, "db", IMG, D2, NULL, &e), 0);
	char *names[] = { (char *)"web", (char *)"other" };
	assert_int_equal(hold_release(dir, names, 2, false, &released, &e), 0);
	assert_int_equal(json_array_size(released), 1);
	assert_string_equal(json_string_value(json_array_get(released, 0)), "web");
	json_decref(released);
	assert_int_equal(hold_release(dir, NULL, 0, true, &released, &e), 0);
	assert_int_equal(json_array_size(released), 1);
	json_decref(released);
	/* refused input changes nothing */
	assert_int_equal(hold_add(dir, "web", IMG, "sha256:short", NULL, &e), -1);
}

static void test_rolled_back_entry_is_held(void **state)
{
	struct refit_config cfg = { .state_dir = dir };
	struct check_result r;
	struct check_entry c;

	one_entry(&r, &c, D2, 0);
	c.status = ENTRY_ROLLED_BACK;
	hold_pass_done(&cfg, &r);
	assert_true(c.held);
	assert_non_null(strstr(c.error, "held"));
	free(c.error);
	one_entry(&r, &c, D2, 0);
	hold_check(&cfg, &r, false, time(NULL));
	assert_int_equal(c.status, ENTRY_HELD);
	free(c.error);
}

static void test_cooldown_counts_from_first_seen(void **state)
{
	struct refit_config cfg = { .state_dir = dir };
	struct check_result r;
	struct check_entry c;
	time_t t0 = 1764633600;

	one_entry(&r, &c, D1, 3600);
	hold_check(&cfg, &r, false, t0);
	assert_int_equal(c.status, ENTRY_COOLDOWN);
	assert_int_equal(c.eligible_at, t0 + 3600);
	free(c.error);
	/* later passes count from the first one, not from themselves */
	one_entry(&r, &c, D1, 3600);
	hold_check(&cfg, &r, false, t0 + 1800);
	assert_int_equal(c.status, ENTRY_COOLDOWN);
	assert_int_equal(c.eligible_at, t0 + 3600);
	free(c.error);
	one_entry(&r, &c, D1, 3600);
	hold_check(&cfg, &r, false, t0 + 3600);
	assert_int_equal(c.status, ENTRY_UPDATE_AVAILABLE);
	/* a new tag (version tracking) waits its own cooldown */
	one_entry(&r, &c, D2, 3600);
	c.target_image = (char *)"127.0.0.1:5000/app:2";
	hold_check(&cfg, &r, false, t0 + 4000);
	assert_int_equal(c.status, ENTRY_COOLDOWN);
	assert_int_equal(c.eligible_at, t0 + 4000 + 3600);
	free(c.error);
}

static void test_cooldown_labels(void **state)
{
	struct refit_config cfg = { .cooldown = 60 };
	struct refit_err e = { 0 };
	long v;
	json_t *l = json_object();

	assert_int_equal(select_cooldown(&cfg, l, &v, &e), 0);
	assert_int_equal(v, 60);
	json_object_set_new(l, "com.centurylinklabs.watchtower.cooldown-delay", json_string("72h"));
	assert_int_equal(select_cooldown(&cfg, l, &v, &e), 0);
	assert_int_equal(v, 72 * 3600);
	json_object_set_new(l, "refit.cooldown", json_string("2d"));
	assert_int_equal(select_cooldown(&cfg, l, &v, &e), 0);
	assert_int_equal(v, 2 * 86400);
	json_object_set_new(l, "refit.cooldown", json_string("soon"));
	assert_int_equal(select_cooldown(&cfg, l, &v, &e), -1);
	assert_non_null(strstr(e.msg, "refit.cooldown"));
	json_object_set_new(l, "refit.cooldown", json_string("400d"));
	assert_int_equal(select_cooldown(&cfg, l, &v, &e), -1);
	json_decref(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_drops_what_is_not_valid),
		cmocka_unit_test_setup_teardown(test_hold_then_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rolled_back_entry_is_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cooldown_counts_from_first_seen, setup, teardown),
		cmocka_unit_test(test_cooldown_labels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
