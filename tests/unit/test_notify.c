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
	{ "smtp://u:pSECRET@mail.example.com:587/?fromaddress=refit@example.com&toaddresses=a@example.com,b@example.com",
	  NOTIFY_SMTP, "smtp://mail.example.com:587/localhost", "smtp mail.example.com:587" },
	{ "smtp://mail.example.com/?from=refit@example.com&to=a@example.com&encryption=ImplicitTLS", NOTIFY_SMTP,
	  "smtps://mail.example.com:25/localhost", "smtp mail.example.com:25" },
	{ "smtp://u:pSECRET@smtp.example.com:465/?fromaddress=r@e.com&toaddresses=a@e.com&clienthost=client.example",
	  NOTIFY_SMTP, "smtps://smtp.example.com:465/client.example", "smtp smtp.example.com:465" },
	{ "matrix://bot:pwSECRET@matrix.example.com/?rooms=!room:example.com,%23alias:example.com", NOTIFY_MATRIX,
	  "https://matrix.example.com", "matrix matrix.example.com" },
	{ "matrix://:tokSECRET@127.0.0.1:8008?disableTLS=yes", NOTIFY_MATRIX, "http://127.0.0.1:8008",
	  "matrix 127.0.0.1:8008" },
	{ "discord://toksecret@42/raw", NOTIFY_DISCORD, "https://discord.com/api/webhooks/42/toksecret",
	  "discord discord.com" },
	/* shoutrrr's current Slack forms: '/' or '-' between the token parts, parameters after */
	{ "slack://hook:T0000/B0000/XXXXsecretXXXX@webhook?color=good&title=T", NOTIFY_SLACK,
	  "https://hooks.slack.com/services/T0000/B0000/XXXXsecretXXXX", "slack hooks.slack.com" },
	{ "slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook?color=good&title=Great+News&icon=man-scientist&botname=Shoutrrrbot",
	  NOTIFY_SLACK, "https://hooks.slack.com/services/WNA3PBYV6/F20DUQND3RQ/Webc4MAvoacrpPakR8phF0zi",
	  "slack hooks.slack.com" },
	{ "slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C001CH4NN3L?color=good&title=Great+News&icon=man-scientist&botname=Shoutrrrbot",
	  NOTIFY_SLACK, "https://slack.com/api/chat.postMessage", "slack slack.com" },
	{ "discord://toksecret@42?splitlines=no&color=0xff0000&colorError=d60510&thread_id=77", NOTIFY_DISCORD,
	  "https://discord.com/api/webhooks/42/toksecret?thread_id=77", "discord discord.com" },
	{ "telegram://123456:ABC-def_SECRET@telegram?chats=@chan,-100123:7", NOTIFY_TELEGRAM,
	  "https://api.telegram.org/bot123456:ABC-def_SECRET/sendMessage", "telegram api.telegram.org" },
	{ "telegram://1:S@telegram/?channels=42&notification=no&preview=false&parsemode=MarkdownV2&title=T",
	  NOTIFY_TELEGRAM, "https://api.telegram.org/bot1:S/sendMessage", "telegram api.telegram.org" },
	{ "pushover://shoutrrr:aTOKENsecret@uKEY1/?devices=phone,tab&priority=-2&title=T", NOTIFY_PUSHOVER,
	  "https://api.pushover.net/1/messages.json", "pushover api.pushover.net" },
	{ "pushover://shoutrrr:aTOKENsecret@uKEY1", NOTIFY_PUSHOVER, "https://api.pushover.net/1/messages.json",
	  "pushover api.pushover.net" },
	{ "teams://?host=https%3A%2F%2Fprod-00.westus.logic.azure.com%3A443%2Fworkflows%2Fabc123%2Ftriggers%2Fmanual%2Fpaths%2Finvoke%3Fapi-version%3D2016-06-00%26sp%3D%2Ftriggers%2Fmanual%2Frun%26sv%3D1.0%26sig%3DXXsecretXX&title=Alert",
	  NOTIFY_TEAMS,
	  "https://prod-00.westus.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-00&sp=/triggers/manual/run&sv=1.0&sig=XXsecretXX",
	  "teams prod-00.westus.logic.azure.com:443" },
	{ "teams://?host=https%3A%2F%2Fa.environment.api.powerplatform.com%2Fpowerautomate%2Fautomations%2Fdirect%2Fworkflows%2Fx1&color=red",
	  NOTIFY_TEAMS, "https://a.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/x1",
	  "teams a.environment.api.powerplatform.com" },
	{ "teams://11111111-2222-3333-4444-555555555555@66666666-7777-8888-9999-000000000000/0123456789abcdef0123456789abcdef/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee?host=example.webhook.office.com",
	  NOTIFY_TEAMS,
	  "https://example.webhook.office.com/webhookb2/11111111-2222-3333-4444-555555555555@66666666-7777-8888-9999-000000000000/IncomingWebhook/0123456789abcdef0123456789abcdef/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
	  "teams example.webhook.office.com" },
};

static const struct {
	const char *in;
	const char *why; /* a word of the reason */
} bad[] = {
	{ "", "1 to 2048" },
	{ "https://example.com/hook", "unsupported scheme" },
	{ "irc://u:SECRET@irc.example.com/", "unsupported scheme" },
	{ "smtp://u:SECRET@mail.example.com/?toaddresses=a@b.c", "fromaddress is missing" },
	{ "smtp://u:SECRET@mail.example.com/?fromaddress=a@b.c", "toaddresses is missing" },
	{ "smtp://mail.example.com/?fromaddress=nobody&toaddresses=a@b.c", "not a mail address" },
	{ "smtp://mail.example.com/?fromaddress=a@b.c&toaddresses=a@b.c,x%3Cy@z.c", "toaddresses are mail addresses" },
	{ "smtp://mail.example.com/?fromaddress=a@b.c&toaddresses=a@b.c&encryption=SSL", "encryption must be" },
	{ "smtp://mail.example.com/?fromaddress=a@b.c&toaddresses=a@b.c&auth=Login", "auth must be" },
	{ "smtp://mail.example.com/?fromaddress=a@b.c&toaddresses=a@b.c&auth=Plain", "needs a user" },
	{ "smtp://mail.example.com/path?fromaddress=a@b.c&toaddresses=a@b.c", "no path" },
	{ "smtp://mail.example.com/?fromaddress=a@b.c&toaddresses=a@b.c&fromname=%3CSECRET%3E", "fromname" },
	{ "smtp:///?fromaddress=a@b.c&toaddresses=a@b.c", "expected smtp://" },
	{ "matrix://matrix.example.com/?rooms=!a:b", "expected matrix://" },
	{ "matrix://u:SECRET@matrix.example.com/?rooms=!a/b:c", "a room is" },
	{ "matrix://u:SECRET@matrix.example.com/?disableTLS=maybe", "disableTLS must be" },
	{ "matrix://:tok%20SECRET@matrix.example.com/", "access token" },
	{ "matrix://u:SECRET@matrix.example.com/sub/path", "expected matrix://" },
	{ "mailto:someone@example.com", "SCHEME://" },
	{ "://x", "SCHEME://" },
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
	{ "slack://xoxb:SECRET-123@C0123", "slack: expected" },
	{ "slack://xoxb:A-B-SECRET@C01/x", "slack: expected" },
	{ "slack://xoxb:A-B-SECRET@C0.1", "channel" },
	{ "slack://T0/B0/SECRET?thread_ts=abc", "thread_ts" },
	{ "slack://hook:T0/B0/SECRET@webhook:80", "slack: expected" },
	{ "discord://SECRET@123?color=xyz", "hexadecimal" },
	{ "discord://SECRET@123?splitlines=maybe", "splitlines" },
	{ "discord://SECRET@123?thread_id=a1", "thread_id" },
	{ "telegram://123:SECRET@telegram", "at least one chat" },
	{ "telegram://123:SECRET@telegram?chats=", "at least one chat" },
	{ "telegram://123:SECRET@api.telegram.org?chats=1", "telegram: expected" },
	{ "telegram://abc:SECRET@telegram?chats=1", "token" },
	{ "telegram://SECRET@telegram?chats=1", "telegram: expected" },
	{ "telegram://1:SECRET@telegram?chats=chan", "a chat is" },
	{ "telegram://1:SECRET@telegram?chats=@c,1:x", "a chat is" },
	{ "telegram://1:SECRET@telegram?chats=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "at most 16" },
	{ "telegram://1:SECRET@telegram?chats=1&parsemode=bbcode", "parsemode" },
	{ "telegram://1:SECRET@telegram?chats=1&notification=maybe", "notification" },
	{ "pushover://SECRET@user", "pushover: expected" },
	{ "pushover://shoutrrr:SECRET@", "user key" },
	{ "pushover://shoutrrr:SEC-RET@user", "API token" },
	{ "pushover://shoutrrr:SECRET@user?priority=2", "priority" },
	{ "pushover://shoutrrr:SECRET@user?devices=a%2Fb", "device" },
	{ "pushover://shoutrrr:SECRET@user?encryptionkey=00", "encryption" },
	{ "teams://", "teams: expected" },
	{ "teams://?host=http%3A%2F%2Fx.logic.azure.com%2Fworkflows%2FSECRET", "Power Automate" },
	{ "teams://?host=https%3A%2F%2Fevil.example.com%2Fworkflows%2FSECRET", "Power Automate" },
	{ "teams://?host=https%3A%2F%2Fx.logic.azure.com%2Fother%2FSECRET", "Power Automate" },
	{ "teams://g@t/SECRET", "teams: expected" },
	{ "teams://g@t/a/b?host=bad%2Fhost", "host" },
	{ "slack://hook:T0-SECRET@webhook", "slack: expected" },
	{ "slack://hook:T0-B0-SECRET@channel", "slack: expected" },
	{ "slack://T0/B0/SECRET?title=a%0Ab", "control characters" },
	{ "slack://T0/B0/SECRET?title=%zz", "badly encoded" },
	{ "slack://T0/B0/SECRET?title=%c3", "not UTF-8" },
	{ "discord://123456", "discord: expected" },
	{ "discord://SECRET@abc", "number" },
	{ "discord://SECRET@123/x", "discord: expected" },
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
	const char *y = "poll_interval: 60\nnotifications:\n  - generic+http://127.0.0.1:1/h\n  - slack://T0/B0/SECRET?title=%zz\n";
	char *env_bad[] = { (char *)"WATCHTOWER_NOTIFICATION_URL=generic+http://127.0.0.1:1/h gotify://h/SECRET?priority=99", NULL };
	char *env_good[] = { (char *)"WATCHTOWER_NOTIFICATION_URL=generic+http://127.0.0.1:1/h ntfy://h/topic", NULL };
	char *env_refit[] = { (char *)"REFIT_NOTIFICATIONS=discord://SECRET", NULL };
	char *env_commas[] = { (char *)"REFIT_NOTIFICATIONS=telegram://1:S@telegram?chats=@a,2 ntfy://h/t?tags=a,b,gotify://h/T", NULL };
	char *env_unknown[] = { (char *)"WATCHTOWER_NOTIFICATION_URL=ntfy://h/t?click=x", NULL };

	(void)state;
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(config_load_buffer(&cfg, y, strlen(y), "refit.yml", &e), -1);
	assert_int_equal(e.kind, ERR_USAGE);
	assert_non_null(strstr(e.msg, "refit.yml:4: notifications: item 2: a parameter is badly encoded"));
	assert_true(no_secret(e.msg));
	config_free(&cfg);

	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(config_load_env(&cfg, env_bad, &e), -1);
	assert_int_equal(e.kind, ERR_USAGE);
	assert_non_null(strstr(e.msg, "WATCHTOWER_NOTIFICATION_URL: item 2: gotify: priority"));
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

	/* commas inside a URL's query stay; a comma before SCHEME:// separates two URLs */
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(config_load_env(&cfg, env_commas, &e), 0);
	assert_int_equal(cfg.notifications.n, 3);
	assert_string_equal(cfg.notifications.v[0], "telegram://1:S@telegram?chats=@a,2");
	assert_string_equal(cfg.notifications.v[1], "ntfy://h/t?tags=a,b");
	assert_string_equal(cfg.notifications.v[2], "gotify://h/T");
	config_free(&cfg);

	/* a parameter refit does not use is a warning, never an error */
	assert_int_equal(config_init(&cfg, &e), 0);
	assert_int_equal(config_load_env(&cfg, env_unknown, &e), 0);
	assert_int_equal(cfg.notifications.n, 1);
	config_free(&cfg);
}

/* Unknown parameters are named (names only, bounded) and the URL still parses. */
static void test_unknown_params(void **state)
{
	struct notify_target t;
	char many[1200] = "slack://T0/B0/SECRET?";

	(void)state;
	assert_int_equal(notify_url_parse("slack://hook:T0/B0/SECRET@webhook?color=good&foo=SECRET1&bar", &t, NULL), 0);
	assert_string_equal(t.unknown, "foo, bar");
	assert_string_equal(t.color, "good");
	assert_int_equal(notify_url_parse("gotify://h/T?title=x", &t, NULL), 0);
	assert_string_equal(t.unknown, "");
	assert_int_equal(notify_url_parse("discord://T@1?json=yes&colorWarn=ffc441", &t, NULL), 0);
	assert_string_equal(t.unknown, "json");
	for (int i = 0; i < 100; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "param%02d=1&", i);
	assert_int_equal(notify_url_parse(many, &t, NULL), 0);
	assert_true(strlen(t.unknown) < sizeof(t.unknown));
	assert_non_null(strstr(t.unknown, "..."));
	notify_target_clear(&t);
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

/* The lines of a Slack body (one attachment each) or Discord body (one embed each), joined with '\n'. */
static const char *joined(json_t *b, const char *list, const char *field)
{
	static char buf[16384];
	json_t *a;
	size_t i;

	buf[0] = '\0';
	json_array_foreach(json_object_get(b, list), i, a)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? "\n" : "",
			 json_string_value(json_object_get(a, field)));
	return buf;
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
	assert_string_equal(json_string_value(json_object_get(b, "text")), "refit on host1");
	text = joined(b, "attachments", "text");
	assert_int_equal(json_array_size(json_object_get(b, "attachments")), 4);
	assert_null(json_object_get(json_array_get(json_object_get(b, "attachments"), 0), "color"));
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
	assert_null(json_object_get(b, "content"));
	assert_int_equal(json_array_size(json_object_get(b, "embeds")), 4); /* splitlines: one embed per line */
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(b, "embeds"), 0), "title")),
			    "Deploys");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(b, "embeds"), 1), "color")),
			 0xd60510); /* something failed: colorError */
	text = joined(b, "embeds", "description");
	assert_true(strncmp(text, "refit on host1: update:", 23) == 0);
	assert_non_null(strstr(text, "\n- web: updated 111111111111 -> 222222222222\n"));
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

/* The services added with shoutrrr's forms: each body as the service's API takes it. */
static void test_render_new(void **state)
{
	json_t *res = sample_result(), *p = notify_payload("host1", "update", "op1", res), *b, *a, *card;
	struct notify_message m;
	const char *text;

	(void)state;
	b = render("slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C001CH4NN3L?color=good&title=Great+News&icon=man-scientist&botname=Shoutrrrbot&thread_ts=1700000000.000100",
		   p, &m);
	assert_string_equal(json_string_value(json_object_get(b, "channel")), "C001CH4NN3L");
	assert_string_equal(json_string_value(json_object_get(b, "text")), "Great News");
	assert_string_equal(json_string_value(json_object_get(b, "username")), "Shoutrrrbot");
	assert_string_equal(json_string_value(json_object_get(b, "icon_emoji")), "man-scientist");
	assert_null(json_object_get(b, "icon_url"));
	assert_string_equal(json_string_value(json_object_get(b, "thread_ts")), "1700000000.000100");
	a = json_array_get(json_object_get(b, "attachments"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "color")), "good");
	assert_string_equal(header(&m, "Authorization"),
			    "Bearer xoxb-123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N");
	json_decref(b);
	notify_message_free(&m);

	b = render("slack://hook:T0/B0/C0@webhook?icon=https%3A%2F%2Fexample.com%2Fi.png", p, &m);
	assert_string_equal(json_string_value(json_object_get(b, "icon_url")), "https://example.com/i.png");
	assert_null(json_object_get(b, "channel"));
	assert_null(header(&m, "Authorization"));
	json_decref(b);
	notify_message_free(&m);

	b = render("telegram://123456:ABC-def@telegram?chats=@chan,-100123:7&notification=no", p, &m);
	assert_string_equal(json_string_value(json_object_get(b, "chat_id")), "@chan");
	assert_null(json_object_get(b, "message_thread_id"));
	assert_string_equal(json_string_value(json_object_get(b, "parse_mode")), "HTML");
	text = json_string_value(json_object_get(b, "text"));
	assert_true(strncmp(text, "<b>refit on host1</b>\nrefit on host1: update:", 45) == 0);
	assert_non_null(strstr(text, "- web: updated 111111111111 -&gt; 222222222222"));
	assert_true(json_is_true(json_object_get(b, "disable_notification")));
	assert_true(json_is_false(json_object_get(b, "disable_web_page_preview")));
	json_decref(b);
	assert_int_equal(m.nmore, 1);
	b = json_loads(m.more[0], 0, NULL);
	assert_string_equal(json_string_value(json_object_get(b, "chat_id")), "-100123");
	assert_int_equal(json_integer_value(json_object_get(b, "message_thread_id")), 7);
	json_decref(b);
	notify_message_free(&m);

	b = render("telegram://1:S@telegram?chats=1&parsemode=MarkdownV2&title=A.b", p, &m);
	assert_string_equal(json_string_value(json_object_get(b, "parse_mode")), "MarkdownV2");
	text = json_string_value(json_object_get(b, "text"));
	assert_true(strncmp(text, "*A\\.b*\n", 7) == 0);
	assert_non_null(strstr(text, "\\- web: updated 111111111111 \\-\\> 222222222222"));
	json_decref(b);
	notify_message_free(&m);

	b = render("pushover://shoutrrr:aTOKEN1@uKEY1/?devices=phone,tab&priority=1&title=T+1", p, &m);
	assert_null(b);
	assert_string_equal(m.content_type, "application/x-www-form-urlencoded");
	assert_true(strncmp(m.body, "token=aTOKEN1&user=uKEY1&message=refit%20on%20host1%3A%20update%3A", 66) == 0);
	assert_non_null(strstr(m.body, "&title=T%201&device=phone%2Ctab&priority=1"));
	assert_true(m.len < 1100 * 3);
	notify_message_free(&m);
	b = render("pushover://shoutrrr:aTOKEN1@uKEY1", p, &m);
	assert_non_null(strstr(m.body, "&title=refit%20on%20host1&priority=0"));
	assert_null(strstr(m.body, "device="));
	notify_message_free(&m);

	b = render("teams://?host=https%3A%2F%2Fprod-00.westus.logic.azure.com%3A443%2Fworkflows%2Fabc%2Ftriggers&title=Alert&color=red",
		   p, &m);
	assert_string_equal(json_string_value(json_object_get(b, "type")), "message");
	a = json_array_get(json_object_get(b, "attachments"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "contentType")), "application/vnd.microsoft.card.adaptive");
	assert_true(json_is_null(json_object_get(a, "contentUrl")));
	card = json_object_get(a, "content");
	assert_string_equal(json_string_value(json_object_get(card, "type")), "AdaptiveCard");
	assert_string_equal(json_string_value(json_object_get(card, "version")), "1.2");
	assert_string_equal(json_string_value(json_object_get(card, "$schema")), "http://adaptivecards.io/schemas/adaptive-card.json");
	a = json_array_get(json_object_get(card, "body"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "text")), "Alert");
	assert_string_equal(json_string_value(json_object_get(a, "weight")), "Bolder");
	assert_string_equal(json_string_value(json_object_get(a, "color")), "attention");
	a = json_array_get(json_object_get(card, "body"), 2);
	assert_string_equal(json_string_value(json_object_get(a, "text")), "- web: updated 111111111111 -> 222222222222");
	assert_true(json_is_true(json_object_get(a, "wrap")));
	json_decref(b);
	notify_message_free(&m);

	b = render("teams://g1@t1/a1/o1?host=example.webhook.office.com&color=%23406170", p, &m);
	assert_string_equal(json_string_value(json_object_get(b, "@type")), "MessageCard");
	assert_string_equal(json_string_value(json_object_get(b, "themeColor")), "406170");
	assert_string_equal(json_string_value(json_object_get(b, "title")), "refit on host1");
	json_decref(b);
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

	b = render("discord://tok@1?splitlines=no", p, &m);
	assert_non_null(b); /* json_pack refuses invalid UTF-8: the cut was at a character boundary */
	text = json_string_value(json_object_get(json_array_get(json_object_get(b, "embeds"), 0), "description"));
	assert_true(strlen(text) <= 2000);
	assert_non_null(strstr(text, "more)"));
	json_decref(b);
	notify_message_free(&m);

	b = render("ntfy://h/t", p, &m);
	assert_true(m.len <= 4096);
	assert_non_null(strstr(m.body, "more)"));
	notify_message_free(&m);

	b = render("discord://tok@1", p, &m);
	assert_int_equal(json_array_size(json_object_get(b, "embeds")), 10); /* Discord's limit; the rest in the last */
	assert_true(strlen(joined(b, "embeds", "description")) <= 4000);
	json_decref(b);
	notify_message_free(&m);

	b = render("slack://T0/B0/C0", p, &m);
	assert_true(strlen(joined(b, "attachments", "text")) <= 3000);
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
	assert_non_null(strstr(joined(body, "attachments", "text"), "- llama3.2:3b: updated aaaaaaaaaaaa -> bbbbbbbbbbbb"));
	assert_non_null(strstr(joined(body, "attachments", "text"), "- codellama: failed (? -> ?): pull: file does not exist"));
	assert_null(strstr(joined(body, "attachments", "text"), "mistral"));
	json_decref(body);
	notify_message_free(&msg);

	assert_null(notify_models_payload("h", quiet)); /* all up to date: nothing to send */
	assert_null(notify_models_payload("h", NULL));
	json_decref(p);
	json_decref(res);
	json_decref(quiet);
}

/* smtp:// and matrix://: every field as shoutrrr's parameters set it. */
static void test_smtp_matrix_fields(void **state)
{
	struct notify_target t;
	const char *why = NULL;

	(void)state;
	/* defaults: port 25, Auto + STARTTLS when offered, AUTH PLAIN with a user, none without */
	assert_int_equal(notify_url_parse("smtp://us%40r:p%3Ass@mail.example.com/?fromaddress=w%2Btag@example.com"
					  "&toaddresses=a+b@example.com,c@example.com&fromname=Watch+Tower&subject=Hi",
					  &t, &why), 0);
	assert_string_equal(t.user, "us@r");
	assert_string_equal(t.password, "p:ss");
	assert_string_equal(t.from, "w+tag@example.com");
	assert_string_equal(t.from_name, "Watch Tower");
	assert_string_equal(t.title, "Hi");
	assert_int_equal(t.nitems, 2);
	assert_string_equal(t.items[0], "a+b@example.com"); /* shoutrrr's FixEmailTags */
	assert_string_equal(t.items[1], "c@example.com");
	assert_int_equal(t.smtp_auth, SMTP_AUTH_PLAIN);
	assert_int_equal(t.smtp_tls, SMTP_TLS_TRY);
	assert_int_equal(notify_url_parse("smtp://mail.example.com/?from=a@b.c&to=d@e.f", &t, &why), 0);
	assert_int_equal(t.smtp_auth, SMTP_AUTH_NONE);
	assert_false(t.has_auth);
	assert_int_equal(notify_url_parse("smtp://u:p@mail.example.com/?from=a@b.c&to=d@e.f&auth=None&usestarttls=No"
					  "&encryption=None", &t, &why), 0);
	assert_int_equal(t.smtp_auth, SMTP_AUTH_NONE);
	assert_int_equal(t.smtp_tls, SMTP_TLS_NONE);
	assert_int_equal(notify_url_parse("smtp://u:p@mail.example.com:2525/?from=a@b.c&to=d@e.f&auth=crammd5"
					  "&encryption=explicittls", &t, &why), 0);
	assert_int_equal(t.smtp_auth, SMTP_AUTH_CRAMMD5);
	assert_int_equal(t.smtp_tls, SMTP_TLS_STARTTLS);
	assert_int_equal(notify_url_parse("smtp://u:tok@mail.example.com:465/?from=a@b.c&to=d@e.f&auth=OAuth2", &t, &why), 0);
	assert_int_equal(t.smtp_auth, SMTP_AUTH_OAUTH2);
	assert_int_equal(t.smtp_tls, SMTP_TLS_IMPLICIT);
	assert_int_equal(notify_url_parse("smtp://mail.example.com/?from=a@b.c&to=d@e.f&usehtml=yes&x=1", &t, &why), 0);
	assert_string_equal(t.unknown, "usehtml, x");
	assert_int_equal(notify_url_parse("smtp://mail.example.com/?from=a@b.c&to=d@e.f&usehtml=no", &t, &why), 0);
	assert_string_equal(t.unknown, "");

	assert_int_equal(notify_url_parse("matrix://bot:pw@matrix.example.com:8448/?rooms=!r1:example.com,alias:example.com"
					  "&room=%23other:example.com&title=Deploys", &t, &why), 0);
	assert_string_equal(t.user, "bot");
	assert_string_equal(t.password, "pw");
	assert_string_equal(t.token, "");
	assert_string_equal(t.url, "https://matrix.example.com:8448");
	assert_int_equal(t.nitems, 1); /* the last of rooms/room wins, as one parameter */
	assert_string_equal(t.items[0], "#other:example.com");
	assert_string_equal(t.title, "Deploys");
	assert_int_equal(notify_url_parse("matrix://bot:pw@m.example/?rooms=!r1:example.com,alias:example.com", &t, &why), 0);
	assert_int_equal(t.nitems, 2);
	assert_string_equal(t.items[0], "!r1:example.com");
	assert_string_equal(t.items[1], "#alias:example.com"); /* shoutrrr puts '#' before a bare alias */
	assert_int_equal(notify_url_parse("matrix://:syt_abc.def@m.example/", &t, &why), 0);
	assert_string_equal(t.user, "");
	assert_string_equal(t.password, "");
	assert_string_equal(t.token, "syt_abc.def");
	assert_int_equal(t.nitems, 0);
	notify_target_clear(&t);
	assert_int_equal(t.token[0], '\0');
}

/* The mail refit sends: shoutrrr's headers, one mail per recipient, CRLF lines; matrix's m.text body. */
static void test_render_smtp_matrix(void **state)
{
	json_t *res = sample_result(), *p = notify_payload("host1", "update", "op1", res), *b;
	struct notify_target t;
	struct notify_message m;
	char path[600];
	const char *why = NULL;

	(void)state;
	assert_int_equal(notify_url_parse("smtp://mail.example.com/?fromaddress=wt@example.com&fromname=Watchtower"
					  "&toaddresses=a@example.com,b@example.com&subject=Updates", &t, &why), 0);
	assert_int_equal(notify_render(&t, p, &m), 0);
	assert_int_equal(m.nmore, 1);
	assert_true(strncmp(m.body, "Subject: Updates\r\nDate: ", strlen("Subject: Updates\r\nDate: ")) == 0);
	assert_non_null(strstr(m.body, "\r\nTo: a@example.com\r\nFrom: Watchtower <wt@example.com>\r\nMIME-Version: 1.0\r\n"
				       "Content-Type: text/plain; charset=\"UTF-8\"\r\n"));
	assert_non_null(strstr(m.body, "\r\n\r\nrefit on host1: update:"));
	assert_non_null(strstr(m.body, "\r\n- web: updated 111111111111 -> 222222222222\r\n"));
	for (const char *q = m.body; (q = strchr(q, '\n')) != NULL; q++)
		assert_int_equal(q[-1], '\r'); /* every line ends in CRLF */
	assert_non_null(strstr(m.more[0], "\r\nTo: b@example.com\r\n"));
	assert_int_equal(m.len, strlen(m.body));
	notify_message_free(&m);
	/* a non-ASCII subject or name is RFC 2047's encoded word; no fromname: the address alone */
	assert_int_equal(notify_url_parse("smtp://mail.example.com/?from=wt@example.com&to=a@example.com"
					  "&subject=%C3%A9t%C3%A9", &t, &why), 0);
	assert_int_equal(notify_render(&t, p, &m), 0);
	assert_true(strncmp(m.body, "Subject: =?UTF-8?B?w6l0w6k=?=\r\n", strlen("Subject: =?UTF-8?B?w6l0w6k=?=\r\n")) == 0);
	assert_non_null(strstr(m.body, "\r\nFrom: <wt@example.com>\r\n"));
	notify_message_free(&m);
	/* the default subject is refit's title */
	assert_int_equal(notify_url_parse("smtp://mail.example.com/?from=wt@example.com&to=a@example.com", &t, &why), 0);
	assert_int_equal(notify_render(&t, p, &m), 0);
	assert_true(strncmp(m.body, "Subject: refit on host1\r\n", strlen("Subject: refit on host1\r\n")) == 0);
	notify_message_free(&m);

	b = render("matrix://bot:pw@m.example/?rooms=!r:m.example&title=Deploys", p, &m);
	assert_string_equal(json_string_value(json_object_get(b, "msgtype")), "m.text");
	assert_true(strncmp(json_string_value(json_object_get(b, "body")), "Deploys\nrefit on host1: update:", 31) == 0);
	assert_int_equal(json_object_size(b), 2);
	json_decref(b);
	notify_message_free(&m);
	notify_target_clear(&t);

	assert_int_equal(notify_matrix_path("!abc:m.example", "t1", path, sizeof(path)), 0);
	assert_string_equal(path, "/_matrix/client/r0/rooms/!abc:m.example/send/m.room.message/t1");
	assert_int_equal(notify_matrix_path("#a b/c:m", "t2", path, sizeof(path)), 0);
	assert_string_equal(path, "/_matrix/client/r0/rooms/%23a%20b%2Fc:m/send/m.room.message/t2");
	assert_int_equal(notify_matrix_path("!abc:m.example", "t1", path, 40), -1);
	json_decref(p);
	json_decref(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_urls),
		cmocka_unit_test(test_url_fields),
		cmocka_unit_test(test_bad_urls),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_unknown_params),
		cmocka_unit_test(test_render_new),
		cmocka_unit_test(test_smtp_matrix_fields),
		cmocka_unit_test(test_render_smtp_matrix),
		cmocka_unit_test(test_payload),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_render_limits),
		cmocka_unit_test(test_pass_quiet),
		cmocka_unit_test(test_models_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
