/* Unit tests: Watchtower's flags and variables, every one of the table parsed and applied. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "refit/config.h"
#include "refit/watchtower.h"

#define W(s) ((char *)(s)) /* argv words are not const */

/* A value Watchtower accepts for the value-taking flag NAME. */
static const char *good_value(const char *name)
{
	static const struct {
		const char *flag, *value;
	} values[] = {
		{ "host", "unix:///run/docker.sock" }, { "api-version", "1.41" }, { "cert-path", "/etc/docker/certs" },
		{ "interval", "30" }, { "schedule", "0 0 4 * * *" }, { "stop-timeout", "30s" },
		{ "disable-containers", "web1,db1" }, { "log-format", "JSON" }, { "http-api-token", "mytoken" },
		{ "scope", "prod" }, { "porcelain", "v1" }, { "log-level", "trace" },
		{ "warn-on-head-failure", "auto" }, { "notifications", "shoutrrr" }, { "notifications-level", "info" },
		{ "notifications-delay", "5" }, { "notification-email-server-port", "587" },
		{ "notification-url", "generic://127.0.0.1:9/hook" }, { "http-api-host", "127.0.0.1" },
		{ "http-api-port", "9090" }, { "cooldown-delay", "12h" }, { "config", "/etc/refit/refit.yml" }, { "state-dir", "/tmp/refit-unit" },
		{ "docker-host", "unix:///run/docker.sock" },
	};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		if (strcmp(values[i].flag, name) == 0)
			return values[i].value;
	return "x";
}

/* Every flag of the table, long and short, parses and applies without an error. */
static void test_every_flag_is_accepted(void **state)
{
	size_t n = watchtower_settings(), seen = 0;

	(void)state;
	assert_true(n > 60);
	for (size_t i = 0; i < n; i++) {
		char letter, shortw[3];
		bool takes;
		const char *flag = watchtower_setting_flag(i, &letter, &takes);
		char longw[128];

		if (!flag)
			continue;
		snprintf(longw, sizeof(longw), "--%s", flag);
		snprintf(shortw, sizeof(shortw), "-%c", letter);
		for (int form = 0; form < (letter ? 2 : 1); form++) {
			char *argv[] = { W("refit"), form ? shortw : longw, W(good_value(flag)), NULL };
			int argc = takes ? 3 : 2;
			struct watchtower wt;
			struct refit_config cfg;
			struct refit_err e = { 0 };
			const char *config = NULL;

			if (watchtower_parse(&wt, argc, argv, 1, &config, &e) < 0)
				fail_msg("%s: %s", argv[1], e.msg);
			assert_int_equal(config_load_watchtower(&cfg, "/nonexistent/refit.yml", NULL, &e), -1);
			assert_int_equal(config_init(&cfg, &e), 0);
			watchtower_defaults(&cfg);
			if (watchtower_apply_flags(&cfg, &wt, &e) < 0 || config_finish(&cfg, &e) < 0)
				fail_msg("%s %s: %s", argv[1], takes ? argv[2] : "", e.msg);
			config_free(&cfg);
			free(wt.names);
			seen++;
		}
	}
	assert_true(seen > n);
}

/* What the common flags set, with Watchtower's meaning. */
static void test_flags_map_to_keys(void **state)
{
	char *argv[] = { W("refit"), W("-i"), W("30"), W("-ceR"), W("--scope"), W("prod"), W("-x"), W("db1"), W("--no-restart"),
			 W("--http-api-update"), W("--http-api-token=short"), W("web1"), W("web2"), NULL };
	struct watchtower wt;
	struct refit_config cfg;
	struct refit_err e = { 0 };
	const char *config = NULL;

	(void)state;
	assert_int_equal(watchtower_parse(&wt, 13, argv, 1, &config, &e), 0);
	assert_true(wt.run_once);
	assert_int_equal(wt.nnames, 2);
	assert_string_equal(wt.names[1], "web2");
	assert_int_equal(config_init(&cfg, &e), 0);
	watchtower_defaults(&cfg);
	assert_false(cfg.label_enable);
	assert_string_equal(cfg.scope, "*");
	assert_false(cfg.lifecycle_hooks);
	assert_int_equal(watchtower_apply_flags(&cfg, &wt, &e), 0);
	assert_int_equal(config_finish(&cfg, &e), 0);
	assert_int_equal(cfg.poll_interval, 30);
	assert_true(cfg.cleanup);
	assert_true(cfg.label_enable);
	assert_string_equal(cfg.scope, "prod");
	assert_int_equal(cfg.disable_containers.n, 1);
	assert_true(cfg.monitor_only); /* --no-restart: nothing is replaced */
	assert_false(cfg.scheduled_passes);
	assert_string_equal(cfg.api_listen, "0.0.0.0:8080");
	assert_string_equal(cfg.wt_api.token, "short");
	assert_true(cfg.warnings.n >= 2); /* --no-restart, and the short token */
	config_free(&cfg);
	free(wt.names);
}

/* A short flag's value: -i30, -i=30, -i 30; a boolean's -c=false; -R as a cluster's last. */
static void test_short_values(void **state)
{
	char *a[] = { W("refit"), W("-i30"), W("-c=false"), W("-eR"), NULL };
	char *b[] = { W("refit"), W("-ei=45"), NULL };
	char *c[] = { W("refit"), W("-i"), NULL };
	struct watchtower wt;
	struct refit_config cfg;
	struct refit_err e = { 0 };
	const char *config = NULL;

	(void)state;
	assert_int_equal(watchtower_parse(&wt, 4, a, 1, &config, &e), 0);
	assert_true(wt.run_once);
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(watchtower_apply_flags(&cfg, &wt, &e), 0);
	assert_int_equal(cfg.poll_interval, 30);
	assert_false(cfg.cleanup);
	assert_true(cfg.label_enable);
	config_free(&cfg);
	free(wt.names);
	assert_int_equal(watchtower_parse(&wt, 2, b, 1, &config, &e), 0);
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(watchtower_apply_flags(&cfg, &wt, &e), 0);
	assert_int_equal(cfg.poll_interval, 45);
	assert_true(cfg.label_enable);
	config_free(&cfg);
	free(wt.names);
	assert_int_equal(watchtower_parse(&wt, 2, c, 1, &config, &e), -1);
	assert_non_null(strstr(e.msg, "-i needs a value"));
	free(wt.names);
}

/* The variables: Watchtower's meaning, unknown ones one warning, refit's api.listen wins. */
static void test_variables(void **state)
{
	char *envp[] = { W("WATCHTOWER_HTTP_API_UPDATE=true"), W("WATCHTOWER_HTTP_API_PERIODIC_POLLS=1"),
			 W("WATCHTOWER_LOG_LEVEL=fatal"), W("WATCHTOWER_TYPO=1"), W("WATCHTOWER_TYPO2="), W("WATCHTOWER_ROLLING_RESTART=true"),
			 W("REFIT_API_LISTEN=127.0.0.1:9999"), NULL };
	struct refit_config cfg;
	struct refit_err e = { 0 };
	size_t typos = 0;

	(void)state;
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(config_load_env(&cfg, envp, &e), 0);
	assert_int_equal(config_finish(&cfg, &e), 0);
	assert_true(cfg.scheduled_passes);
	assert_string_equal(cfg.log_level, "error");
	assert_int_equal(cfg.concurrency, 1);
	assert_string_equal(cfg.api_listen, "127.0.0.1:9999");
	for (size_t i = 0; i < cfg.warnings.n; i++)
		typos += strstr(cfg.warnings.v[i], "WATCHTOWER_TYPO") != NULL;
	assert_int_equal(typos, 2);
	config_free(&cfg);
}

/* Two of refit's command words, as main.c's command table answers. */
static bool some_command(const char *w)
{
	return strcmp(w, "check") == 0 || strcmp(w, "update") == 0;
}

/* A Watchtower invocation is told apart from refit's commands. */
static void test_invocation(void **state)
{
	char *a[] = { W("refit"), W("--interval"), W("30"), W("--cleanup"), NULL };
	char *b[] = { W("refit"), W("--scope"), W("prod"), W("check"), NULL };
	char *c[] = { W("refit"), W("--scope"), W("update"), W("-R"), NULL };
	char *d[] = { W("refit"), W("update"), W("--cleanup"), NULL };
	char *f[] = { W("refit"), W("--scope"), W("prod"), NULL };
	char *g[] = { W("refit"), W("watchtower"), NULL };
	char *h[] = { W("refit"), W("web1"), NULL };

	(void)state;
	assert_true(watchtower_invocation(4, a, some_command));
	assert_false(watchtower_invocation(4, b, some_command));
	assert_true(watchtower_invocation(4, c, some_command)); /* "update" is --scope's value */
	assert_false(watchtower_invocation(3, d, some_command));
	assert_false(watchtower_invocation(3, f, some_command));
	assert_true(watchtower_invocation(2, g, some_command));
	assert_false(watchtower_invocation(2, h, some_command));
}

/* Bad values are usage errors that say which flag. */
static void test_bad_values(void **state)
{
	const char *cases[][2] = { { "--log-format", "fancy" }, { "--porcelain", "v2" }, { "--http-api-port", "99999" },
				   { "--interval", "soon" }, { "--cleanup=maybe", NULL } };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = { W("refit"), (char *)cases[i][0], (char *)cases[i][1], NULL };
		struct watchtower wt;
		struct refit_config cfg;
		struct refit_err e = { 0 };
		const char *config = NULL;
		int rc = watchtower_parse(&wt, cases[i][1] ? 3 : 2, argv, 1, &config, &e);

		if (rc == 0) {
			assert_int_equal(config_init(&cfg, &e), 0);
			rc = watchtower_apply_flags(&cfg, &wt, &e);
			config_free(&cfg);
		}
		free(wt.names);
		assert_int_equal(rc, -1);
		assert_int_equal(e.kind, ERR_USAGE);
		assert_non_null(strstr(e.msg, "--"));
	}
}

/* Load ENVP (variables only) and finish; the URLs watchtower_notify_finish made, or the error in E. */
static int legacy(char **envp, struct refit_config *cfg, struct refit_err *e)
{
	assert_int_equal(config_init(cfg, e), 0);
	if (config_load_env(cfg, envp, e) < 0 || config_finish(cfg, e) < 0) {
		config_free(cfg);
		return -1;
	}
	return 0;
}

/* Watchtower's legacy notification settings become the URLs its AppendLegacyUrls makes. */
static void test_legacy_urls(void **state)
{
	char pwfile[] = "/tmp/refit-unit-pw-XXXXXX", pwvar[128];
	struct refit_config cfg;
	struct refit_err e = { 0 };
	int fd = mkstemp(pwfile);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "s3cr:et\n", 8), 8);
	close(fd);
	snprintf(pwvar, sizeof(pwvar), "WATCHTOWER_NOTIFICATION_EMAIL_SERVER_PASSWORD=%s", pwfile);
	{
		char *envp[] = { W("WATCHTOWER_NOTIFICATIONS=email"), W("WATCHTOWER_NOTIFICATION_EMAIL_FROM=wt@example.com"),
				 W("WATCHTOWER_NOTIFICATION_EMAIL_TO=ops@example.com,dev+wt@example.com"),
				 W("WATCHTOWER_NOTIFICATION_EMAIL_SERVER=mail.example.com"),
				 W("WATCHTOWER_NOTIFICATION_EMAIL_SERVER_PORT=587"),
				 W("WATCHTOWER_NOTIFICATION_EMAIL_SERVER_USER=wt@example.com"), pwvar,
				 W("WATCHTOWER_NOTIFICATION_EMAIL_SUBJECTTAG=prod"), W("WATCHTOWER_NOTIFICATIONS_HOSTNAME=web1"),
				 NULL };

		assert_int_equal(legacy(envp, &cfg, &e), 0);
		assert_int_equal(cfg.notifications.n, 1);
		assert_string_equal(cfg.notifications.v[0],
				    "smtp://wt%40example.com:s3cr%3Aet@mail.example.com:587/?auth=Plain&encryption=Auto"
				    "&fromaddress=wt%40example.com&fromname=Watchtower&subject=%5Bprod%5D%20Watchtower%20updates%20on%20web1"
				    "&toaddresses=ops%40example.com%2Cdev%2Bwt%40example.com&usestarttls=Yes");
		assert_string_equal(cfg.notify_title, "[prod] Watchtower updates on web1");
		config_free(&cfg);
	}
	unlink(pwfile);
	{
		char *envp[] = { W("WATCHTOWER_NOTIFICATIONS=email"), W("WATCHTOWER_NOTIFICATION_EMAIL_FROM=wt@example.com"),
				 W("WATCHTOWER_NOTIFICATION_EMAIL_TO=ops@example.com"), W("WATCHTOWER_NOTIFICATION_EMAIL_SERVER=10.0.0.5"),
				 W("WATCHTOWER_NOTIFICATION_EMAIL_SERVER_TLS_SKIP_VERIFY=true"),
				 W("WATCHTOWER_NOTIFICATION_SKIP_TITLE=true"), NULL };

		assert_int_equal(legacy(envp, &cfg, &e), 0);
		assert_string_equal(cfg.notifications.v[0],
				    "smtp://10.0.0.5:25/?auth=None&encryption=None&fromaddress=wt%40example.com"
				    "&fromname=Watchtower&toaddresses=ops%40example.com&usestarttls=No");
		assert_null(cfg.notify_title);
		config_free(&cfg);
	}
	{
		char *envp[] = { W("WATCHTOWER_NOTIFICATIONS=slack msteams,gotify"),
				 W("WATCHTOWER_NOTIFICATION_SLACK_HOOK_URL=https://hooks.slack.com/services/T0/B0/XXXX/"),
				 W("WATCHTOWER_NOTIFICATION_SLACK_IDENTIFIER=wt-bot"),
				 W("WATCHTOWER_NOTIFICATION_SLACK_ICON_EMOJI=:whale:"),
				 W("WATCHTOWER_NOTIFICATION_MSTEAMS_HOOK_URL=https://acme.webhook.office.com/webhookb2/11111111-2222-4333-8444-555555555555@66666666-7777-4888-9999-000000000000/IncomingWebhook/abcdef0123456789abcdef0123456789/aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"),
				 W("WATCHTOWER_NOTIFICATION_GOTIFY_URL=http://gotify.lan:8080/sub/"),
				 W("WATCHTOWER_NOTIFICATION_GOTIFY_TOKEN=AbC.123"), W("WATCHTOWER_NOTIFICATIONS_HOSTNAME=web1"), NULL };

		assert_int_equal(legacy(envp, &cfg, &e), 0);
		assert_int_equal(cfg.notifications.n, 3);
		assert_string_equal(cfg.notifications.v[0], "slack://hook:T0-B0-XXXX@webhook?botname=wt-bot&color=%23406170"
							    "&icon=%3Awhale%3A&title=Watchtower%20updates%20on%20web1");
		assert_string_equal(cfg.notifications.v[1],
				    "teams://11111111-2222-4333-8444-555555555555@66666666-7777-4888-9999-000000000000/"
				    "abcdef0123456789abcdef0123456789/aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee?color=%23406170"
				    "&host=acme.webhook.office.com&title=Watchtower%20updates%20on%20web1");
		assert_string_equal(cfg.notifications.v[2], "gotify://gotify.lan:8080/sub/AbC.123?disabletls=yes"
							    "&title=Watchtower%20updates%20on%20web1");
		config_free(&cfg);
	}
	{
		char *envp[] = { W("WATCHTOWER_NOTIFICATIONS=slack"), W("WATCHTOWER_NOTIFICATION_SKIP_TITLE=1"),
				 W("WATCHTOWER_NOTIFICATION_SLACK_HOOK_URL=https://discord.com/api/webhooks/123456/tokTOK/slack"),
				 W("WATCHTOWER_NOTIFICATION_SLACK_ICON_URL=https://example.com/i.png"), NULL };

		assert_int_equal(legacy(envp, &cfg, &e), 0);
		assert_string_equal(cfg.notifications.v[0], "discord://tokTOK@123456?avatar=https%3A%2F%2Fexample.com%2Fi.png"
							    "&color=0x406170&splitlines=Yes");
		config_free(&cfg);
	}
	/* flags after the variables: the URLs are made again from both, the user's own URLs kept */
	{
		char *envp[] = { W("WATCHTOWER_NOTIFICATIONS=gotify"), W("WATCHTOWER_NOTIFICATION_GOTIFY_URL=https://g.example"),
				 W("WATCHTOWER_NOTIFICATION_GOTIFY_TOKEN=tok1"), W("WATCHTOWER_NOTIFICATION_URL=generic://h.example/x"),
				 NULL };
		char *argv[] = { W("refit"), W("--notification-gotify-token"), W("tok2"), W("--notification-title-tag"),
				 W("T"), NULL };
		struct watchtower wt;
		const char *config = NULL;

		assert_int_equal(legacy(envp, &cfg, &e), 0);
		assert_int_equal(cfg.notifications.n, 2);
		assert_int_equal(watchtower_parse(&wt, 5, argv, 1, &config, &e), 0);
		assert_int_equal(watchtower_apply_flags(&cfg, &wt, &e), 0);
		assert_int_equal(config_finish(&cfg, &e), 0);
		assert_int_equal(cfg.notifications.n, 2);
		assert_string_equal(cfg.notifications.v[0], "generic://h.example/x");
		assert_non_null(strstr(cfg.notifications.v[1], "gotify://g.example/tok2?title=%5BT%5D%20Watchtower%20updates"));
		assert_non_null(strstr(cfg.notify_title, "[T] Watchtower updates"));
		free(wt.names);
		config_free(&cfg);
	}
	/* what a service lacks is a usage error naming its variable; never the secret */
	{
		static const char *cases[][3] = {
			{ "WATCHTOWER_NOTIFICATIONS=email", "WATCHTOWER_NOTIFICATION_EMAIL_FROM=a@b.c", "EMAIL_SERVER" },
			{ "WATCHTOWER_NOTIFICATIONS=slack", "WATCHTOWER_NOTIFICATION_SLACK_HOOK_URL=https://example.com/SECRET", "SLACK_HOOK_URL" },
			{ "WATCHTOWER_NOTIFICATIONS=msteams", "WATCHTOWER_NOTIFICATION_MSTEAMS_HOOK_URL=https://x/SECRET", "MSTEAMS_HOOK_URL" },
			{ "WATCHTOWER_NOTIFICATIONS=gotify", "WATCHTOWER_NOTIFICATION_GOTIFY_URL=ftp://SECRET", "GOTIFY_URL" },
			{ "WATCHTOWER_NOTIFICATIONS=gotify", "WATCHTOWER_NOTIFICATION_GOTIFY_URL=https://g", "GOTIFY_TOKEN" },
			{ "WATCHTOWER_NOTIFICATIONS=pager", "WATCHTOWER_X_UNUSED=1", "unknown notification type" },
			{ "WATCHTOWER_NOTIFICATIONS=email", "WATCHTOWER_NOTIFICATION_EMAIL_SERVER_PORT=0", "EMAIL_SERVER" },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			char *envp[] = { (char *)cases[i][0], (char *)cases[i][1], NULL };

			assert_int_equal(legacy(envp, &cfg, &e), -1);
			assert_int_equal(e.kind, ERR_USAGE);
			if (!strstr(e.msg, cases[i][2]) || strstr(e.msg, "SECRET"))
				fail_msg("%s %s: %s", cases[i][0], cases[i][1], e.msg);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_flag_is_accepted), cmocka_unit_test(test_flags_map_to_keys),
		cmocka_unit_test(test_short_values),
		cmocka_unit_test(test_variables),              cmocka_unit_test(test_invocation),
		cmocka_unit_test(test_bad_values),             cmocka_unit_test(test_legacy_urls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
