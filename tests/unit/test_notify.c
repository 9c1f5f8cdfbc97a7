/* Unit tests: notification URLs (every kind, good and bad forms, secrets kept out of messages), payloads, messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "refit/config.h"
#include "refit/notify.h"

static const struct {
	const char *in;
	enum notify_kind kind;
	const char *url;
	const char *name;
} good[] = {
	{ "generic+https://hooks.example.com/refit?x=1&y=2", NOTIFY_GENERIC, "https://hooks.example.com/refit?x=1&y=2",
	  "generic hooks.example.com" },
	{ "generic+http://127.0.0.1:9000/hook", NOTIFY_GENERIC, "http://127.0.0.1:9000/hook", "generic 127.0.0.1:9000" },
	{ "GENERIC+HTTPS://h.example/p", NOTIFY_GENERIC, "https://h.example/p", "generic h.example" },
	{ "generic+https://h.example", NOTIFY_GENERIC, "https://h.example", "generic h.example" },
	{ "generic+https://user:pw@[::1]:8443/p", NOTIFY_GENERIC, "https://user:pw@[::1]:8443/p", "generic [::1]:8443" },
	{ "generic://example.com/p?disabletls=yes&a=b", NOTIFY_GENERIC, "http://example.com/p?a=b",
	  "generic example.com" },
	{ "generic://example.com/p?a=b&disabletls=no&c=d", NOTIFY_GENERIC, "https://example.com/p?a=b&c=d",
	  "generic example.com" },
	{ "generic://example.com:81/p", NOTIFY_GENERIC, "https://example.com:81/p", "generic example.com:81" },
	{ "slack://T0000/B0000/XXXXsecretXXXX", NOTIFY_SLACK, "https://hooks.slack.com/services/T0000/B0000/XXXXsecretXXXX",
	  "slack hooks.slack.com" },
	{ "slack://refit-bot@T0000/B0000/XXXXsecretXXXX/?title=Hi+there", NOTIFY_SLACK,
	  "https://hooks.slack.com/services/T0000/B0000/XXXXsecretXXXX", "slack hooks.slack.com" },
	{ "slack://hook:T0000-B0000-XXXXsecretXXXX@webhook", NOTIFY_SLACK,
	  "https://hooks.slack.com/services/T0000/B0000/XXXXsecretXXXX", "slack hooks.slack.com" },
	{ "slack://hook:T0000-B0000-XXXXsecretXXXX@webhook/?botname=refit", NOTIFY_SLACK,
	  "https://hooks.slack.com/services/T0000/B0000/XXXXsecretXXXX", "slack hooks.slack.com" },
	{ "discord://tok_en-secret.1@123456789", NOTIFY_DISCORD,
	  "https://discord.com/api/webhooks/123456789/tok_en-secret.1", "discord discord.com" },
	{ "discord://toksecret@42/?username=refit&avatar=https%3A%2F%2Fexample.com%2Fa.png", NOTIFY_DISCORD,
	  "https://discord.com/api/webhooks/42/toksecret", "discord discord.com" },
	{ "ntfy://ntfy.example.com/updates", NOTIFY_NTFY, "https://ntfy.example.com/updates", "ntfy ntfy.example.com" },
	{ "ntfy:///alerts", NOTIFY_NTFY, "https://ntfy.sh/alerts", "ntfy ntfy.sh" },
	{ "ntfy://u:p%40ssSECRET@127.0.0.1:8080/topic_1?scheme=http&priority=high&tags=a,b&title=Refit+run",
	  NOTIFY_NTFY, "http://127.0.0.1:8080/topic_1", "ntfy 127.0.0.1:8080" },
	{ "ntfy://[::1]:80/t/", NOTIFY_NTFY, "https://[::1]:80/t", "ntfy [::1]:80" },
	{ "gotify://gotify.example.com/AbCdSECRET.123", NOTIFY_GOTIFY, "https://gotify.example.com/message",
	  "gotify gotify.example.com" },
	{ "gotify://h:8080/sub/path/AbCdSECRET?disabletls=yes&priority=8&title=T", NOTIFY_GOTIFY,
	  "http://h:8080/sub/path/message", "gotify h:8080" },
	{ "gotify://h/AbCdSECRET/", NOTIFY_GOTIFY, "https://h/message", "gotify h" },
};

static const struct {
	const char *in;
	const char *why; /* a word of the reason */
} bad[] = {
	{ "", "1 to 2048" },
	{ "https://example.com/hook", "unsupported scheme" },
	{ "mailto:someone@example.com", "SCHEME://" },
	{ "://x", "SCHEME://" },
	{ "smtp://u:SECRET@mail.example.com/", "unsupported scheme" },
	{ "generic+https:///p", "invalid host" },
	{ "generic+https://-bad/p", "invalid host" },
	{ "generic+https://h:0/p", "port" },
	{ "generic+https://h:99999/p", "port" },
	{ "generic+https://h:/p", "port" },
	{ "generic+https://h:8a/p", "port" },
	{ "generic+https://h/p#SECRET", "fragment" },
	{ "generic+https://h/p q", "percent-encoded" },
	{ "generic+https://h/p\n", "percent-encoded" },
	{ "generic+https://h/\xc3\xa9", "percent-encoded" },
	{ "generic://h/p?disabletls=maybe", "disabletls" },
	{ "generic+https://[::1/p", "IPv6" },
	{ "generic+https://[::1]x/p", "IPv6" },
	{ "slack://T0/B0", "slack: expected" },
	{ "slack://T0/B0/SECRET/Y0", "slack: expected" },
	{ "slack://T0//SECRET", "slack: expected" },
	{ "slack://T0.x/B0/SECRET", "slack: expected" },
	{ "slack://T0:99/B0/SECRET", "slack: expected" },
	{ "slack://xoxb:SECRET-123@C0123", "bot API" },
	{ "slack://hook:T0-SECRET@webhook", "slack: expected" },
	{ "slack://hook:T0-B0-SECRET@channel", "slack: expected" },
	{ "slack://T0/B0/SECRET?color=good", "unknown parameter" },
	{ "slack://T0/B0/SECRET?title=a%0Ab", "control characters" },
	{ "slack://T0/B0/SECRET?title=%zz", "badly encoded" },
	{ "slack://T0/B0/SECRET?title=%c3", "not UTF-8" },
	{ "discord://123456", "discord: expected" },
	{ "discord://SECRET@abc", "number" },
	{ "discord://SECRET@123/x", "discord: expected" },
	{ "discord://SECRET@123?json=yes", "unknown parameter" },
	{ "discord://SECRET@123?avatar=ftp://x", "avatar" },
	{ "discord://SEC:RET@123", "discord: expected" },
	{ "ntfy://host", "ntfy: expected" },
	{ "ntfy://host/", "ntfy: expected" },
	{ "ntfy://host/a/b", "topic" },
	{ "ntfy://host/a.b", "topic" },
	{ "ntfy://:8080/t", "ntfy: expected" },
	{ "ntfy://u:SECRET@host/topic?scheme=ftp", "scheme" },
	{ "ntfy://host/topic?priority=9", "priority" },
	{ "ntfy://host/topic?priority=", "priority" },
	{ "ntfy://host/topic?click=x", "unknown parameter" },
	{ "ntfy://u:SECRET%0A@host/topic", "user or password" },
	{ "gotify://host", "gotify: expected" },
	{ "gotify://host/", "gotify: expected" },
	{ "gotify://u@host/SECRET", "gotify: expected" },
	{ "gotify:///SECRET", "invalid host" },
	{ "gotify://host//SECRET", "bad path" },
	{ "gotify://host/a%20b/SECRET", "bad path" },
	{ "gotify://host/SEC%RET", "token" },
	{ "gotify://host/SECRET?priority=11", "priority" },
	{ "gotify://host/SECRET?disabletls=maybe", "disabletls" },
	{ "gotify://host/SECRET?foo=bar", "unknown parameter" },
};

/* True when no secret-looking part of IN shows in S. */
static bool no_secret(const char *s)
{
	return !strstr(s, "SECRET") && !strstr(s, "secret");
}

static void test_good_urls(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct notify_target t;
		const char *why = NULL;

		if (notify_url_parse(good[i].in, &t, &why) != 0)
			fail_msg("%s: %s", good[i].in, why);
		assert_int_equal(t.kind, good[i].kind);
		assert_string_equal(t.url, good[i].url);
		assert_string_equal(t.name, good[i].name);
		if (!no_secret(t.name))
			fail_msg("%s: the log name shows a secret: %s", good[i].in, t.name);
		notify_target_clear(&t);
	}
}

static void test_url_fields(void **state)
{
	struct notify_target t;
	const char *why = NULL;

	(void)state;
	assert_int_equal(notify_url_parse("slack://refit-bot@T0/B0/C0?title=Hi+there", &t, &why), 0);
	assert_string_equal(t.username, "refit-bot");
	assert_string_equal(t.title, "Hi there");
	assert_int_equal(notify_url_parse("slack://hook:T0-B0-C0@webhook?username=x", &t, &why), 0);
	assert_string_equal(t.username, "x");
	assert_int_equal(notify_url_parse("discord://tok@42?username=refit&avatar=https%3A%2F%2Fe.com%2Fa.png", &t, &why), 0);
	assert_string_equal(t.username, "refit");
	assert_string_equal(t.avatar, "https://e.com/a.png");
	assert_int_equal(notify_url_parse("ntfy://u:p%40ss@127.0.0.1:8080/topic?scheme=http&priority=high&tags=a,b&title=Refit+run",
					  &t, &why), 0);
	assert_true(t.has_auth);
	assert_string_equal(t.user, "u");
	assert_string_equal(t.password, "p@ss");
	assert_int_equal(t.priority, 4);
	assert_string_equal(t.tags, "a,b");
	assert_string_equal(t.title, "Refit run");
	assert_int_equal(notify_url_parse("ntfy://h/t?priority=urgent", &t, &why), 0);
	assert_int_equal(t.priority, 5);
	assert_false(t.has_auth);
	assert_int_equal(notify_url_parse("ntfy://h/t?priority=2", &t, &why), 0);
	assert_int_equal(t.priority, 2);
	assert_int_equal(notify_url_parse("ntfy://h/t", &t, &why), 0);
	assert_int_equal(t.priority, -1);
	assert_int_equal(notify_url_parse("gotify://h:8080/sub/TOKEN1?priority=0&title=T", &t, &why), 0);
	assert_string_equal(t.token, "TOKEN1");
	assert_int_equal(t.priority, 0);
	assert_string_equal(t.title, "T");
	assert_int_equal(notify_url_parse("gotify://h/TOKEN1", &t, &why), 0);
	assert_int_equal(t.priority, -1);
	notify_target_clear(&t);
	assert_int_equal(t.token[0], '\0');
}

static void test_bad_urls(void **state)
{
	char long_url[NOTIFY_MAX_URL + 16];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct notify_target t;
		const char *why = NULL;

		if (notify_url_parse(bad[i].in, &t, &why) == 0)
			fail_msg("%s: accepted as %s", bad[i].in, t.url);
		assert_non_null(why);
		if (!strstr(why, bad[i].why))
			fail_msg("%s: reason \"%s\" does not say \"%s\"", bad[i].in, why, bad[i].why);
		if (!no_secret(why))
			fail_msg("%s: reason shows a secret: %s", bad[i].in, why);
		assert_int_equal(t.url[0], '\0'); /* zeroed */
		assert_int_equal(t.password[0], '\0');
	}
	memcpy(long_url, "generic+https://h/", 18);
	memset(long_url + 18, 'a', sizeof(long_url) - 19);
	long_url[sizeof(long_url) - 1] = '\0';
	{
		struct notify_target t;
		const char *why = NULL;

		assert_int_equal(notify_url_parse(long_url, &t, &why), -1);
		assert_non_null(strstr(why, "2048"));
		long_url[NOTIFY_MAX_URL] = '\0';
		assert_int_equal(notify_url_parse(long_url, &t, &why), 0);
		assert_int_equal(notify_url_parse("generic+https://h/", &t, NULL), 0);
		assert_int_equal(notify_url_parse("nope", &t, NULL), -1);
	}
}

/* A bad URL in the configuration is an error naming the key and item, without the URL. */
static void test_config_errors(void **state)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };
	const char *y = "poll_interval: 60\nnotifications:\n  - generic+http://127.0.0.1:1/h\n  - slack://T0/B0/SECRET?color=good\n";
	char *env_bad[] = { (char *)"WATCHTOWER_NOTIFICATION_URL=generic+http://127.0.0.1:1/h gotify://h/SECRET?x=1", NULL };
	char *env_good[] = { (char *)"WATCHTOWER_NOTIFICATION_URL=generic+http://127.0.0.1:1/h ntfy://h/topic", NULL };
	char *env_refit[] = { (char *)"REFIT_NOTIFICATIONS=discord://SECRET", NULL };

	(void)state;
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(config_load_buffer(&cfg, y, strlen(y), "refit.yml", &e), -1);
	assert_int_equal(e.kind, ERR_USAGE);
	assert_non_null(strstr(e.msg, "refit.yml:4: notifications: item 2: slack: unknown parameter"));
	assert_true(no_secret(e.msg));
	config_free(&cfg);

	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(config_load_env(&cfg, env_bad, &e), -1);
	assert_int_equal(e.kind, ERR_USAGE);
	assert_non_null(strstr(e.msg, "WATCHTOWER_NOTIFICATION_URL: item 2: gotify: unknown parameter"));
	assert_true(no_secret(e.msg));
	config_free(&cfg);

	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(config_load_env(&cfg, env_refit, &e), -1);
	assert_non_null(strstr(e.msg, "REFIT_NOTIFICATIONS: item 1: discord: expected"));
	assert_true(no_secret(e.msg));
	config_free(&cfg);

	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(config_load_env(&cfg, env_good, &e), 0);
	assert_int_equal(cfg.notifications.n, 2);
	assert_string_equal(cfg.notifications.v[1], "ntfy://h/topic");
	config_free(&cfg);
}

/* A pass result as `refit update --json` prints it. */
static json_t *sample_result(void)
{
	json_error_t err;
	json_t *r = json_loads(
		"{\"containers\":["
		"{\"name\":\"a\",\"image\":\"r/a:latest\",\"status\":\"up-to-date\",\"current_digest\":\"sha256:aaaa\"},"
		"{\"name\":\"web\",\"image\":\"r/web:latest\",\"status\":\"updated\",\"strategy\":\"recreate\","
		"\"current_digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
		"\"latest_digest\":\"sha256:2222222222222222222222222222222222222222222222222222222222222222\"},"
		"{\"name\":\"db\",\"image\":\"r/db:1\",\"status\":\"rolled-back\",\"strategy\":\"blue-green\","
		"\"current_digest\":\"sha256:3333333333333333333333333333333333333333333333333333333333333333\","
		"\"latest_digest\":\"sha256:4444444444444444444444444444444444444444444444444444444444444444\","
		"\"error\":\"new container unhealthy\\nafter 20 s\"},"
		"{\"name\":\"q\",\"image\":\"r/q:1\",\"status\":\"failed\",\"error\":\"registry: 401 unauthorized\"},"
		"{\"name\":\"s\",\"image\":\"r/s:1\",\"status\":\"skipped\",\"error\":\"pinned\"}]}",
		0, &err);

	assert_non_null(r);
	return r;
}

static void test_payload(void **state)
{
	json_t *res = sample_result(), *p, *list, *c;
	json_t *quiet = json_loads("{\"containers\":[{\"name\":\"a\",\"status\":\"up-to-date\"},"
				   "{\"name\":\"b\",\"status\":\"skipped\"}]}", 0, NULL);

	(void)state;
	p = notify_payload("host1", "update", "op123", res);
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "host")), "host1");
	assert_string_equal(json_string_value(json_object_get(p, "kind")), "update");
	assert_string_equal(json_string_value(json_object_get(p, "operation")), "op123");
	assert_non_null(json_string_value(json_object_get(p, "time")));
	assert_string_equal(json_string_value(json_object_get(p, "summary")),
			    "refit on host1: update: 1 updated, 1 rolled back, 1 failed");
	list = json_object_get(p, "containers");
	assert_int_equal(json_array_size(list), 3);
	c = json_array_get(list, 0);
	assert_string_equal(json_string_value(json_object_get(c, "name")), "web");
	assert_string_equal(json_string_value(json_object_get(c, "image")), "r/web:latest");
	assert_string_equal(json_string_value(json_object_get(c, "outcome")), "updated");
	assert_string_equal(json_string_value(json_object_get(c, "old_digest")),
			    "sha256:1111111111111111111111111111111111111111111111111111111111111111");
	assert_string_equal(json_string_value(json_object_get(c, "new_digest")),
			    "sha256:2222222222222222222222222222222222222222222222222222222222222222");
	assert_null(json_object_get(c, "error"));
	c = json_array_get(list, 1);
	assert_string_equal(json_string_value(json_object_get(c, "outcome")), "rolled-back");
	assert_string_equal(json_string_value(json_object_get(c, "error")), "new container unhealthy\nafter 20 s");
	c = json_array_get(list, 2);
	assert_string_equal(json_string_value(json_object_get(c, "name")), "q");
	assert_string_equal(json_string_value(json_object_get(c, "outcome")), "failed");
	assert_true(json_is_null(json_object_get(c, "old_digest")));
	json_decref(p);

	p = notify_payload("h", "rollback", NULL, res);
	assert_null(json_object_get(p, "operation"));
	assert_string_equal(json_string_value(json_object_get(p, "summary")),
			    "refit on h: rollback: 1 updated, 1 rolled back, 1 failed");
	json_decref(p);

	assert_null(notify_payload("h", "update", NULL, quiet)); /* nothing changed: nothing to send */
	assert_null(notify_payload("h", "update", NULL, NULL));
	json_decref(quiet);
	json_decref(res);
}

/* Render PAYLOAD for URL; the body parsed as JSON when it is JSON. */
static json_t *render(const char *url, json_t *payload, struct notify_message *m)
{
	struct notify_target t;
	json_t *body;

	assert_int_equal(notify_url_parse(url, &t, NULL), 0);
	assert_int_equal(notify_render(&t, payload, m), 0);
	assert_non_null(m->body);
	assert_int_equal(strlen(m->body), m->len);
	body = strcmp(m->content_type, "application/json") == 0 ? json_loads(m->body, 0, NULL) : NULL;
	return body;
}

static const char *header(const struct notify_message *m, const char *name)
{
	for (size_t i = 0; i < m->nheaders; i++)
		if (strncmp(m->headers[i], name, strlen(name)) == 0 && m->headers[i][strlen(name)] == ':')
			return m->headers[i] + strlen(name) + 2;
	return NULL;
}

static void test_render(void **state)
{
	json_t *res = sample_result(), *p = notify_payload("host1", "update", "op1", res), *b;
	struct notify_message m;
	const char *text;

	(void)state;
	b = render("generic+https://h/x", p, &m);
	assert_true(json_equal(b, p));
	assert_int_equal(m.nheaders, 0);
	json_decref(b);
	notify_message_free(&m);

	b = render("slack://bot@T0/B0/C0", p, &m);
	text = json_string_value(json_object_get(b, "text"));
	assert_non_null(text);
	assert_non_null(strstr(text, "refit on host1: update: 1 updated, 1 rolled back, 1 failed\n"));
	assert_non_null(strstr(text, "- web: updated 111111111111 -> 222222222222"));
	assert_non_null(strstr(text, "- db: update to 444444444444 failed, rolled back to 333333333333: new container unhealthy after 20 s"));
	assert_non_null(strstr(text, "- q: failed (? -> ?): registry: 401 unauthorized"));
	assert_null(strstr(text, "- a:"));
	assert_null(strstr(text, "- s:"));
	assert_string_equal(json_string_value(json_object_get(b, "username")), "bot");
	json_decref(b);
	notify_message_free(&m);

	b = render("discord://tok@1?title=Deploys&username=refit", p, &m);
	text = json_string_value(json_object_get(b, "content"));
	assert_true(strncmp(text, "Deploys\nrefit on host1", 22) == 0);
	assert_string_equal(json_string_value(json_object_get(b, "username")), "refit");
	json_decref(b);
	notify_message_free(&m);

	b = render("gotify://h/TOKEN1", p, &m);
	assert_string_equal(json_string_value(json_object_get(b, "title")), "refit on host1");
	assert_int_equal(json_integer_value(json_object_get(b, "priority")), 5);
	assert_non_null(strstr(json_string_value(json_object_get(b, "message")), "- web: updated"));
	assert_string_equal(header(&m, "X-Gotify-Key"), "TOKEN1");
	json_decref(b);
	notify_message_free(&m);

	b = render("ntfy://h/t?priority=max&tags=whale,rocket&title=Hello", p, &m);
	assert_null(b);
	assert_string_equal(m.content_type, "text/plain; charset=utf-8");
	assert_true(strncmp(m.body, "refit on host1: update:", 23) == 0);
	assert_string_equal(header(&m, "Title"), "Hello");
	assert_string_equal(header(&m, "Priority"), "5");
	assert_string_equal(header(&m, "Tags"), "whale,rocket");
	notify_message_free(&m);

	b = render("ntfy://h/t", p, &m);
	assert_string_equal(header(&m, "Title"), "refit on host1");
	assert_null(header(&m, "Priority"));
	notify_message_free(&m);

	json_decref(p);
	json_decref(res);
}

/* Many containers and long multi-byte errors: bounded messages that stay valid UTF-8. */
static void test_render_limits(void **state)
{
	json_t *res = json_pack("{s:[]}", "containers"), *arr = json_object_get(res, "containers"), *p, *b;
	char err[2001];
	struct notify_message m;
	const char *text;

	(void)state;
	for (size_t i = 0; i < 1000; i += 2)
		memcpy(err + i, "\xc3\xa9", 2); /* é */
	err[1000] = '\0';
	for (int i = 0; i < 200; i++) {
		char name[32];

		snprintf(name, sizeof(name), "container-%03d", i);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "name", name, "status", "failed", "error", err));
	}
	p = notify_payload("h", "update", NULL, res);
	assert_int_equal(json_array_size(json_object_get(p, "containers")), 200);

	b = render("discord://tok@1", p, &m);
	assert_non_null(b); /* json_pack refuses invalid UTF-8: the cut was at a character boundary */
	text = json_string_value(json_object_get(b, "content"));
	assert_true(strlen(text) <= 2000);
	assert_non_null(strstr(text, "more)"));
	json_decref(b);
	notify_message_free(&m);

	b = render("ntfy://h/t", p, &m);
	assert_true(m.len <= 4096);
	assert_non_null(strstr(m.body, "more)"));
	notify_message_free(&m);

	b = render("slack://T0/B0/C0", p, &m);
	assert_true(strlen(json_string_value(json_object_get(b, "text"))) <= 3000);
	json_decref(b);
	notify_message_free(&m);

	json_decref(p);
	json_decref(res);
}

/* No URL configured, or nothing to say: nothing is started and a flush returns at once. */
static void test_pass_quiet(void **state)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };
	json_t *res = sample_result();
	json_t *quiet = json_loads("{\"containers\":[{\"name\":\"a\",\"status\":\"up-to-date\"}]}", 0, NULL);
	char *env[] = { (char *)"REFIT_NOTIFICATIONS=generic+http://127.0.0.1:9/never", NULL };

	(void)state;
	assert_int_equal(config_init(&cfg, &e), 0);
	notify_pass(&cfg, "update", NULL, res);
	assert_int_equal(config_load_env(&cfg, env, &e), 0);
	notify_pass(&cfg, "update", NULL, quiet);
	notify_flush(0);
	config_free(&cfg);
	json_decref(quiet);
	json_decref(res);
}

/* A model pass's payload: only updated and failed models, and their text lines. */
static void test_models_payload(void **state)
{
	json_t *res = json_loads("{\"endpoint\":\"http://127.0.0.1:11434\",\"models\":["
				 "{\"name\":\"llama3.2:3b\",\"status\":\"updated\",\"old_digest\":\"sha256:aaaaaaaaaaaa1111\","
				 "\"new_digest\":\"sha256:bbbbbbbbbbbb2222\",\"seconds\":1.5},"
				 "{\"name\":\"mistral\",\"status\":\"up-to-date\",\"old_digest\":\"sha256:cc\","
				 "\"new_digest\":\"sha256:cc\"},"
				 "{\"name\":\"codellama\",\"status\":\"failed\",\"old_digest\":null,\"new_digest\":null,"
				 "\"error\":\"pull: file does not exist\"}]}", 0, NULL);
	json_t *quiet = json_loads("{\"models\":[{\"name\":\"m\",\"status\":\"up-to-date\"}]}", 0, NULL);
	json_t *p, *m, *body;
	struct notify_message msg;

	(void)state;
	assert_non_null(res);
	p = notify_models_payload("host1", res);
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "kind")), "models");
	assert_string_equal(json_string_value(json_object_get(p, "summary")), "refit on host1: models: 1 updated, 1 failed");
	assert_null(json_object_get(p, "containers"));
	assert_int_equal(json_array_size(json_object_get(p, "models")), 2);
	m = json_array_get(json_object_get(p, "models"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "name")), "llama3.2:3b");
	assert_string_equal(json_string_value(json_object_get(m, "outcome")), "updated");
	assert_string_equal(json_string_value(json_object_get(m, "old_digest")), "sha256:aaaaaaaaaaaa1111");
	assert_string_equal(json_string_value(json_object_get(m, "new_digest")), "sha256:bbbbbbbbbbbb2222");
	m = json_array_get(json_object_get(p, "models"), 1);
	assert_string_equal(json_string_value(json_object_get(m, "outcome")), "failed");
	assert_string_equal(json_string_value(json_object_get(m, "error")), "pull: file does not exist");

	body = render("slack://T0000/B0000/XXXXsecretXXXX", p, &msg);
	assert_non_null(body);
	assert_non_null(strstr(json_string_value(json_object_get(body, "text")),
			       "- llama3.2:3b: updated aaaaaaaaaaaa -> bbbbbbbbbbbb"));
	assert_non_null(strstr(json_string_value(json_object_get(body, "text")),
			       "- codellama: failed (? -> ?): pull: file does not exist"));
	assert_null(strstr(json_string_value(json_object_get(body, "text")), "mistral"));
	json_decref(body);
	notify_message_free(&msg);

	assert_null(notify_models_payload("h", quiet)); /* all up to date: nothing to send */
	assert_null(notify_models_payload("h", NULL));
	json_decref(p);
	json_decref(res);
	json_decref(quiet);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_urls),
		cmocka_unit_test(test_url_fields),
		cmocka_unit_test(test_bad_urls),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_payload),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_render_limits),
		cmocka_unit_test(test_pass_quiet),
		cmocka_unit_test(test_models_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
