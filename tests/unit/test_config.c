/* Unit tests: configuration defaults, YAML, environment, flags and their errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "refit/config.h"

/* Load YAML text over the defaults; returns the load's result. */
static int load(struct refit_config *cfg, const char *yaml, struct refit_err *e)
{
	assert_int_equal(config_init(cfg, e), 0);
	return config_load_buffer(cfg, yaml, strlen(yaml), "refit.yml", e);
}

static void test_defaults(void **state)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };

	(void)state;
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(cfg.poll_interval, 86400);
	assert_true(cfg.label_enable);
	assert_null(cfg.scope);
	assert_string_equal(cfg.strategy, "recreate");
	assert_int_equal(cfg.health_timeout, 60);
	assert_int_equal(cfg.min_uptime, 5);
	assert_int_equal(cfg.keep_previous, 1);
	assert_int_equal(cfg.concurrency, 8);
	assert_string_equal(cfg.state_dir, "/var/lib/refit");
	assert_string_equal(cfg.api_listen, "127.0.0.1:8010");
	assert_string_equal(cfg.docker_host, "unix:///var/run/docker.sock");
	config_free(&cfg);
}

static void test_yaml_values(void **state)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };
	const char *y = "poll_interval: 5m\n"
			"label_enable: false\n"
			"scope: prod\n"
			"strategy: blue-green\n"
			"stop_timeout: 1m30s\n"
			"insecure_registries: [a.local:5000, b.local]\n"
			"notifications:\n  - generic+https://x/y\n"
			"api:\n  listen: 0.0.0.0:9000\n  token: s3cret\n"
			"registry_auth:\n  ghcr.io:\n    username: me\n    password: pw\n";

	(void)state;
	assert_int_equal(load(&cfg, y, &e), 0);
	assert_int_equal(cfg.poll_interval, 300);
	assert_false(cfg.label_enable);
	assert_string_equal(cfg.scope, "prod");
	assert_string_equal(cfg.strategy, "blue-green");
	assert_int_equal(cfg.stop_timeout, 90);
	assert_int_equal(cfg.insecure_registries.n, 2);
	assert_string_equal(cfg.insecure_registries.v[1], "b.local");
	assert_int_equal(cfg.notifications.n, 1);
	assert_string_equal(cfg.api_listen, "0.0.0.0:9000");
	assert_string_equal(cfg.api_token, "s3cret");
	assert_non_null(config_cred(&cfg, "ghcr.io"));
	assert_string_equal(config_cred(&cfg, "ghcr.io")->password, "pw");
	assert_null(config_cred(&cfg, "docker.io"));
	config_free(&cfg);
}

/* Each bad document fails with a message holding the file:line and key. */
static void test_yaml_errors(void **state)
{
	static const struct {
		const char *yaml;
		const char *want;
	} cases[] = {
		{ "poll_interval: 60\nfrobnicate: 1\n", "refit.yml:2: frobnicate: unknown key" },
		{ "poll_interval: abc\n", "refit.yml:1: poll_interval: expected a duration" },
		{ "poll_interval: -5\n", "refit.yml:1: poll_interval" },
		{ "poll_interval: 0\n", "refit.yml:1: poll_interval" },
		{ "concurrency: 0\n", "refit.yml:1: concurrency: 0 is out of range 1..64" },
		{ "concurrency: 65\n", "concurrency: 65 is out of range" },
		{ "concurrency: [1]\n", "refit.yml:1: concurrency: expected a single value, got a list" },
		{ "label_enable: maybe\n", "label_enable: expected true or false" },
		{ "strategy: yolo\n", "strategy: expected one of recreate, blue-green, alias" },
		{ "\n\napi:\n  listen: nowhere\n", "refit.yml:4: api.listen: expected HOST:PORT" },
		{ "api:\n  bogus: 1\n", "refit.yml:2: api.bogus: unknown key" },
		{ "api: 5\n", "refit.yml:1: api: expected a mapping" },
		{ "scope: has space\n", "scope: expected 1 to 128 letters" },
		{ "schedule: every day\n", "schedule: expected a cron expression" },
		{ "docker_host: http//x\n", "docker_host: expected unix:///path" },
		{ "scope: a\nscope: b\n", "refit.yml:2: scope: key given twice" },
		{ "- a\n- b\n", "expected a mapping of keys" },
		{ "poll_interval: [\n", "refit.yml:" },
		{ "registry_auth:\n  ghcr.io:\n    username: me\n", "registry_auth.ghcr.io: needs username and password" },
		{ "registry_auth:\n  ghcr.io:\n    user: me\n", "refit.yml:3: registry_auth.ghcr.io.user: unknown key" },
		{ "keep_previous: 101\n", "keep_previous: 101 is out of range 0..100" },
		{ "log_level:\n", "log_level: missing value" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct refit_config cfg;
		struct refit_err e = { 0 };

		assert_int_equal(load(&cfg, cases[i].yaml, &e), -1);
		assert_int_equal(e.kind, ERR_USAGE);
		if (!strstr(e.msg, cases[i].want))
			fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, e.msg, cases[i].want);
		config_free(&cfg);
	}
}

static void test_env(void **state)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };
	char *env[] = { (char *)"WATCHTOWER_POLL_INTERVAL=30", (char *)"WATCHTOWER_SCOPE=wt",
			(char *)"REFIT_SCOPE=mine", (char *)"WATCHTOWER_LABEL_ENABLE=false",
			(char *)"REFIT_API_LISTEN=127.0.0.1:9999", (char *)"WATCHTOWER_TIMEOUT=45s",
			(char *)"REFIT_INSECURE_REGISTRIES=a:1,b:2", (char *)"WATCHTOWER_DEBUG=true", NULL };

	(void)state;
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(config_load_env(&cfg, env, &e), 0);
	assert_int_equal(cfg.poll_interval, 30);
	assert_string_equal(cfg.scope, "mine"); /* refit's variable wins */
	assert_false(cfg.label_enable);
	assert_string_equal(cfg.api_listen, "127.0.0.1:9999");
	assert_int_equal(cfg.stop_timeout, 45);
	assert_int_equal(cfg.insecure_registries.n, 2);
	assert_string_equal(cfg.log_level, "debug");
	config_free(&cfg);
}

static void test_env_errors(void **state)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };
	char *env[] = { (char *)"REFIT_POLL_INTERVAL=soon", NULL };
	char *env2[] = { (char *)"WATCHTOWER_CLEANUP=perhaps", NULL };

	(void)state;
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(config_load_env(&cfg, env, &e), -1);
	assert_non_null(strstr(e.msg, "REFIT_POLL_INTERVAL: expected a duration"));
	assert_int_equal(config_load_env(&cfg, env2, &e), -1);
	assert_non_null(strstr(e.msg, "WATCHTOWER_CLEANUP: expected true or false"));
	config_free(&cfg);
}

static void test_flags(void **state)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };

	(void)state;
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(config_set(&cfg, "scope", "x", "--scope", &e), 0);
	assert_string_equal(cfg.scope, "x");
	assert_int_equal(config_set(&cfg, "log_format", "xml", "--log-format", &e), -1);
	assert_non_null(strstr(e.msg, "--log-format: expected one of text, json"));
	assert_int_equal(config_set(&cfg, "nope", "1", "--nope", &e), -1);
	config_free(&cfg);
}

static void test_file_missing(void **state)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };

	(void)state;
	assert_int_equal(config_load(&cfg, "/nonexistent/refit.yml", NULL, &e), -1);
	assert_int_equal(e.kind, ERR_USAGE);
	assert_non_null(strstr(e.msg, "/nonexistent/refit.yml"));
}

/* The model updater's keys: YAML, OLLAMA_MODELS / UPDATE_INTERVAL as the seed set them, REFIT_MODELS_*. */
static void test_models(void **state)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };
	char *seed[] = { (char *)"OLLAMA_MODELS=llama3.2:3b,mistral, codellama", (char *)"UPDATE_INTERVAL=3600", NULL };
	char *mine[] = { (char *)"OLLAMA_MODELS=llama3.2:3b,mistral", (char *)"UPDATE_INTERVAL=3600",
			 (char *)"REFIT_MODELS_NAMES=phi3", (char *)"REFIT_MODELS_INTERVAL=2h",
			 (char *)"REFIT_MODELS_ENDPOINT=http://ollama:11434", (char *)"REFIT_MODELS_TIMEOUT=30", NULL };
	char *bad_name[] = { (char *)"OLLAMA_MODELS=mistral,bad;name", NULL };
	char *bad_interval[] = { (char *)"UPDATE_INTERVAL=hourly", NULL };
	char *short_interval[] = { (char *)"UPDATE_INTERVAL=10", NULL };
	static const struct {
		const char *yaml;
		const char *want;
	} errors[] = {
		{ "models:\n  names: [mistral, \"rm -rf\"]\n", "refit.yml:2: models.names: item 2: expected a model name" },
		{ "models:\n  names:\n    - ok\n    - -bad\n", "refit.yml:4: models.names: item 2" },
		{ "models:\n  endpoint: ftp://x\n", "refit.yml:2: models.endpoint: expected http://HOST:PORT" },
		{ "models:\n  endpoint: http://x/?q=1\n", "models.endpoint: expected" },
		{ "models:\n  timeout: 0\n", "refit.yml:2: models.timeout: expected a duration of 1 to 3600" },
		{ "models:\n  interval: 5\n", "models.interval: expected a duration of 60" },
		{ "models:\n  nmes: [a]\n", "refit.yml:2: models.nmes: unknown key" },
	};

	(void)state;
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_string_equal(cfg.models_endpoint, "http://127.0.0.1:11434");
	assert_int_equal(cfg.models_names.n, 0);
	assert_int_equal(cfg.models_interval, 86400);
	assert_int_equal(cfg.models_timeout, 300);
	assert_int_equal(config_load_env(&cfg, seed, &e), 0);
	assert_int_equal(cfg.models_names.n, 3);
	assert_string_equal(cfg.models_names.v[0], "llama3.2:3b");
	assert_string_equal(cfg.models_names.v[2], "codellama");
	assert_int_equal(cfg.models_interval, 3600);
	config_free(&cfg);

	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(config_load_env(&cfg, mine, &e), 0);
	assert_int_equal(cfg.models_names.n, 1); /* refit's variables win */
	assert_string_equal(cfg.models_names.v[0], "phi3");
	assert_int_equal(cfg.models_interval, 7200);
	assert_string_equal(cfg.models_endpoint, "http://ollama:11434");
	assert_int_equal(cfg.models_timeout, 30);
	config_free(&cfg);

	assert_int_equal(load(&cfg, "models:\n  names: [llama3.2:3b, library/mistral:7b]\n  timeout: 2\n", &e), 0);
	assert_int_equal(cfg.models_names.n, 2);
	assert_int_equal(cfg.models_timeout, 2);
	assert_int_equal(config_load_env(&cfg, bad_name, &e), -1);
	assert_non_null(strstr(e.msg, "OLLAMA_MODELS: item 2: expected a model name"));
	assert_int_equal(cfg.models_names.n, 2); /* unchanged */
	assert_int_equal(config_load_env(&cfg, bad_interval, &e), -1);
	assert_non_null(strstr(e.msg, "UPDATE_INTERVAL: expected a duration"));
	assert_int_equal(config_load_env(&cfg, short_interval, &e), -1);
	assert_non_null(strstr(e.msg, "UPDATE_INTERVAL"));
	config_free(&cfg);

	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		assert_int_equal(load(&cfg, errors[i].yaml, &e), -1);
		assert_int_equal(e.kind, ERR_USAGE);
		if (!strstr(e.msg, errors[i].want))
			fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, e.msg, errors[i].want);
		config_free(&cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),   cmocka_unit_test(test_yaml_values),
		cmocka_unit_test(test_yaml_errors), cmocka_unit_test(test_env),
		cmocka_unit_test(test_env_errors), cmocka_unit_test(test_flags),
		cmocka_unit_test(test_file_missing),
		cmocka_unit_test(test_models),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
