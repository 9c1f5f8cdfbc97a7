/*
 * Watchtower's flags and variables: one table, read for the variables in
 * every run and for the flags of a Watchtower invocation. The table is
 * containrrr/watchtower's internal/flags/flags.go (v1.7.1), the few flags
 * the nicholas-fedor fork added, and refit's --config, --state-dir and
 * --rollback.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/fsutil.h"
#include "refit/notify.h"
#include "refit/watchtower.h"

enum wt_type {
	WT_BOOL,  /* --flag, --flag=false */
	WT_VALUE, /* --flag VALUE, --flag=VALUE, -f VALUE, -fVALUE */
};

/* What a setting does. */
enum wt_act {
	A_KEY,          /* sets configuration key .key to the value */
	A_IGNORE,       /* accepted; refit already does what it asks (.note says how) */
	A_WARN,         /* accepted with one warning: .note says what refit does instead */
	A_NOTIFY_URL,   /* notification URLs: key notifications (a file of them, one per line) */
	A_INTERVAL,     /* poll_interval, remembered against --schedule */
	A_SCHEDULE,     /* schedule, remembered against --interval */
	A_NO_RESTART,   /* monitor-only, with a warning */
	A_LOG_FORMAT,   /* Auto/LogFmt/Pretty = text, JSON = json */
	A_LOG_LEVEL,    /* panic/fatal = error, trace = debug */
	A_DEBUG,        /* log_level debug */
	A_TRACE,        /* log_level debug, with a warning */
	A_ROLLING,      /* concurrency 1 */
	A_API_UPDATE,   /* cfg->wt_api.update */
	A_API_METRICS,  /* cfg->wt_api.metrics */
	A_API_POLLS,    /* cfg->wt_api.periodic_polls */
	A_API_TOKEN,    /* cfg->wt_api.token (a file's content when the value names one) */
	A_API_HOST,     /* the fork's --http-api-host */
	A_API_PORT,     /* the fork's --http-api-port */
	A_TLS_VERIFY,   /* DOCKER_TLS_VERIFY for the engine client */
	A_CERT_PATH,    /* DOCKER_CERT_PATH for the engine client */
	A_PORCELAIN,    /* v1 only, with a warning */
	A_RUN_ONCE,     /* invocation: one pass */
	A_ROLLBACK,     /* invocation: roll back */
	A_HEALTH_CHECK, /* invocation: is the daemon alive? */
	A_HELP,         /* invocation: print the table */
	A_CONFIG,       /* invocation: refit's --config */
	A_LEGACY,       /* a legacy notification setting (.key names it): --notifications builds its URL */
};

struct wt_setting {
	const char *flag; /* long name without "--"; NULL: a variable only */
	char letter;      /* short form, or 0 */
	const char *env;  /* its variable, or NULL */
	enum wt_type type;
	enum wt_act act;
	const char *key;  /* A_KEY: the configuration key */
	const char *note; /* what refit does with it (help, docs, warnings) */
};

/* clang-format off */
static const struct wt_setting settings[] = {
	/* Docker client */
	{ "host", 'H', "DOCKER_HOST", WT_VALUE, A_KEY, "docker_host", "docker_host" },
	{ "tlsverify", 'v', NULL, WT_BOOL, A_TLS_VERIFY, NULL, "TLS to a tcp:// engine with DOCKER_CERT_PATH's certificates (DOCKER_TLS_VERIFY is read as Watchtower reads it)" },
	{ "api-version", 'a', "DOCKER_API_VERSION", WT_VALUE, A_WARN, NULL, "refit negotiates the Engine API version with the engine (1.40 and newer); the value is not used" },
	{ "cert-path", 0, NULL, WT_VALUE, A_CERT_PATH, NULL, "DOCKER_CERT_PATH: the directory of ca.pem, cert.pem and key.pem" },
	/* what and when */
	{ "interval", 'i', "WATCHTOWER_POLL_INTERVAL", WT_VALUE, A_INTERVAL, NULL, "poll_interval, in seconds (default 86400)" },
	{ "schedule", 's', "WATCHTOWER_SCHEDULE", WT_VALUE, A_SCHEDULE, NULL, "schedule (6 fields with seconds, 5 fields, @daily...); with --interval too, the schedule is used" },
	{ "stop-timeout", 't', "WATCHTOWER_TIMEOUT", WT_VALUE, A_KEY, "stop_timeout", "stop_timeout (default 10s); a container's own stop timeout wins" },
	{ "no-pull", 0, "WATCHTOWER_NO_PULL", WT_BOOL, A_KEY, "no_pull", "no_pull: only images already on the host are used" },
	{ "no-restart", 0, "WATCHTOWER_NO_RESTART", WT_BOOL, A_NO_RESTART, NULL, "refit updates a container by replacing it, so it changes nothing instead: monitor_only (run refit update to replace)" },
	{ "no-startup-message", 0, "WATCHTOWER_NO_STARTUP_MESSAGE", WT_BOOL, A_IGNORE, NULL, "refit sends no startup notification" },
	{ "cleanup", 'c', "WATCHTOWER_CLEANUP", WT_BOOL, A_KEY, "cleanup", "cleanup: replaced images are removed, past the keep_previous (default 1) kept for rollback" },
	{ "remove-volumes", 0, "WATCHTOWER_REMOVE_VOLUMES", WT_BOOL, A_WARN, NULL, "refit never removes a volume: anonymous volumes move to the replacement with their data" },
	{ "label-enable", 'e', "WATCHTOWER_LABEL_ENABLE", WT_BOOL, A_KEY, "label_enable", "label_enable: only containers labelled com.centurylinklabs.watchtower.enable=true (or refit.enable=true)" },
	{ "disable-containers", 'x', "WATCHTOWER_DISABLE_CONTAINERS", WT_VALUE, A_KEY, "disable_containers", "disable_containers: these names are never managed" },
	{ "log-format", 'l', "WATCHTOWER_LOG_FORMAT", WT_VALUE, A_LOG_FORMAT, NULL, "log_format: Auto, LogFmt and Pretty are text lines, JSON is json" },
	{ "debug", 'd', "WATCHTOWER_DEBUG", WT_BOOL, A_DEBUG, NULL, "log_level debug" },
	{ "trace", 0, "WATCHTOWER_TRACE", WT_BOOL, A_TRACE, NULL, "log_level debug, refit's most verbose (it never logs credentials)" },
	{ "monitor-only", 'm', "WATCHTOWER_MONITOR_ONLY", WT_BOOL, A_KEY, "monitor_only", "monitor_only: report and notify, change nothing" },
	{ "run-once", 'R', "WATCHTOWER_RUN_ONCE", WT_BOOL, A_RUN_ONCE, NULL, "one update pass (as refit update), then exit with its exit code" },
	{ "include-restarting", 0, "WATCHTOWER_INCLUDE_RESTARTING", WT_BOOL, A_KEY, "include_restarting", "include_restarting" },
	{ "include-stopped", 'S', "WATCHTOWER_INCLUDE_STOPPED", WT_BOOL, A_KEY, "include_stopped", "include_stopped" },
	{ "revive-stopped", 0, "WATCHTOWER_REVIVE_STOPPED", WT_BOOL, A_KEY, "revive_stopped", "revive_stopped" },
	{ "enable-lifecycle-hooks", 0, "WATCHTOWER_LIFECYCLE_HOOKS", WT_BOOL, A_KEY, "lifecycle_hooks", "lifecycle_hooks: run the pre-check, pre-update, post-update and post-check labels (a failing pre-update hook stops that container's update)" },
	{ "rolling-restart", 0, "WATCHTOWER_ROLLING_RESTART", WT_BOOL, A_ROLLING, NULL, "concurrency 1: one container at a time (registry requests too)" },
	{ "http-api-update", 0, "WATCHTOWER_HTTP_API_UPDATE", WT_BOOL, A_API_UPDATE, NULL, "the API on :8080 (unless api.listen) answers /v1/update; no scheduled passes unless --http-api-periodic-polls" },
	{ "http-api-metrics", 0, "WATCHTOWER_HTTP_API_METRICS", WT_BOOL, A_API_METRICS, NULL, "the API on :8080 (unless api.listen) serves /v1/metrics" },
	{ "http-api-token", 0, "WATCHTOWER_HTTP_API_TOKEN", WT_VALUE, A_API_TOKEN, NULL, "the API's bearer token, any length (a warning under 16 characters), or the file it is in; refit's api.token wins" },
	{ "http-api-periodic-polls", 0, "WATCHTOWER_HTTP_API_PERIODIC_POLLS", WT_BOOL, A_API_POLLS, NULL, "scheduled passes beside the API update" },
	{ "no-color", 0, NULL, WT_BOOL, A_IGNORE, NULL, "refit's log lines have no colours" },
	{ "scope", 0, "WATCHTOWER_SCOPE", WT_VALUE, A_KEY, "scope", "scope: only containers of that scope (without it, a Watchtower invocation manages every scope)" },
	{ "porcelain", 'P', "WATCHTOWER_PORCELAIN", WT_VALUE, A_PORCELAIN, NULL, "refit prints its own result table; refit update --json is its stable format" },
	{ "log-level", 0, "WATCHTOWER_LOG_LEVEL", WT_VALUE, A_LOG_LEVEL, NULL, "log_level: panic and fatal are error, trace is debug" },
	{ "health-check", 0, NULL, WT_BOOL, A_HEALTH_CHECK, NULL, "exit 0 when the daemon's API answers /livez, else 1 (for a container HEALTHCHECK)" },
	{ "label-take-precedence", 0, "WATCHTOWER_LABEL_TAKE_PRECEDENCE", WT_BOOL, A_IGNORE, NULL, "a container's labels always win over flags and configuration" },
	{ "warn-on-head-failure", 0, "WATCHTOWER_WARN_ON_HEAD_FAILURE", WT_VALUE, A_IGNORE, NULL, "a failed registry request is that container's error, logged; never a pull" },
	/* notifications */
	{ "notifications", 'n', "WATCHTOWER_NOTIFICATIONS", WT_VALUE, A_LEGACY, "types", "the services whose legacy settings below become shoutrrr URLs: email (smtp://), slack (slack://, or discord:// for a Discord hook), msteams (teams://), gotify (gotify://); shoutrrr: --notification-url only" },
	{ "notifications-level", 0, "WATCHTOWER_NOTIFICATIONS_LEVEL", WT_VALUE, A_WARN, NULL, "refit's message has one fixed form" },
	{ "notifications-delay", 0, "WATCHTOWER_NOTIFICATIONS_DELAY", WT_VALUE, A_WARN, NULL, "refit sends a pass's notification when the pass ends" },
	{ "notifications-hostname", 0, "WATCHTOWER_NOTIFICATIONS_HOSTNAME", WT_VALUE, A_LEGACY, "hostname", "the HOST of the title 'Watchtower updates on HOST' (default: this host's name)" },
	{ "notification-email-from", 0, "WATCHTOWER_NOTIFICATION_EMAIL_FROM", WT_VALUE, A_LEGACY, "email_from", "email: the sender (fromaddress; the From header's name is Watchtower)" },
	{ "notification-email-to", 0, "WATCHTOWER_NOTIFICATION_EMAIL_TO", WT_VALUE, A_LEGACY, "email_to", "email: the recipients (toaddresses, ','-separated)" },
	{ "notification-email-delay", 0, "WATCHTOWER_NOTIFICATION_EMAIL_DELAY", WT_VALUE, A_WARN, NULL, "refit sends a pass's notification when the pass ends" },
	{ "notification-email-server", 0, "WATCHTOWER_NOTIFICATION_EMAIL_SERVER", WT_VALUE, A_LEGACY, "email_server", "email: the SMTP server's host" },
	{ "notification-email-server-port", 0, "WATCHTOWER_NOTIFICATION_EMAIL_SERVER_PORT", WT_VALUE, A_LEGACY, "email_port", "email: the SMTP server's port (default 25; 465 is TLS from the start)" },
	{ "notification-email-server-tls-skip-verify", 0, "WATCHTOWER_NOTIFICATION_EMAIL_SERVER_TLS_SKIP_VERIFY", WT_BOOL, A_LEGACY, "email_skip", "email: as in Watchtower, no STARTTLS at all (encryption=None, usestarttls=No)" },
	{ "notification-email-server-user", 0, "WATCHTOWER_NOTIFICATION_EMAIL_SERVER_USER", WT_VALUE, A_LEGACY, "email_user", "email: AUTH PLAIN as this user (without it, no AUTH)" },
	{ "notification-email-server-password", 0, "WATCHTOWER_NOTIFICATION_EMAIL_SERVER_PASSWORD", WT_VALUE, A_LEGACY, "email_password", "email: the user's password, or the file it is in" },
	{ "notification-email-subjecttag", 0, "WATCHTOWER_NOTIFICATION_EMAIL_SUBJECTTAG", WT_VALUE, A_LEGACY, "email_tag", "the title's tag when --notification-title-tag is not given" },
	{ "notification-slack-hook-url", 0, "WATCHTOWER_NOTIFICATION_SLACK_HOOK_URL", WT_VALUE, A_LEGACY, "slack_hook", "slack: the hook URL https://hooks.slack.com/services/A/B/C (or a discord.com webhook's .../slack URL), or the file it is in" },
	{ "notification-slack-identifier", 0, "WATCHTOWER_NOTIFICATION_SLACK_IDENTIFIER", WT_VALUE, A_LEGACY, "slack_id", "slack: the bot's name (botname; default watchtower), discord: username" },
	{ "notification-slack-channel", 0, "WATCHTOWER_NOTIFICATION_SLACK_CHANNEL", WT_VALUE, A_WARN, NULL, "a Slack webhook posts to the channel it was made for (Watchtower does not use it either)" },
	{ "notification-slack-icon-emoji", 0, "WATCHTOWER_NOTIFICATION_SLACK_ICON_EMOJI", WT_VALUE, A_LEGACY, "slack_emoji", "slack: icon (an emoji name)" },
	{ "notification-slack-icon-url", 0, "WATCHTOWER_NOTIFICATION_SLACK_ICON_URL", WT_VALUE, A_LEGACY, "slack_icon", "slack: icon (wins over the emoji), discord: avatar" },
	{ "notification-msteams-hook", 0, "WATCHTOWER_NOTIFICATION_MSTEAMS_HOOK_URL", WT_VALUE, A_LEGACY, "teams_hook", "msteams: the Office 365 connector URL, made into the legacy teams:// form, or the file it is in" },
	{ "notification-msteams-data", 0, "WATCHTOWER_NOTIFICATION_MSTEAMS_USE_LOG_DATA", WT_BOOL, A_IGNORE, NULL, "accepted: Watchtower's URL for Teams does not use it either" },
	{ "notification-gotify-url", 0, "WATCHTOWER_NOTIFICATION_GOTIFY_URL", WT_VALUE, A_LEGACY, "gotify_url", "gotify: the server's http(s):// URL (http: disabletls=yes)" },
	{ "notification-gotify-token", 0, "WATCHTOWER_NOTIFICATION_GOTIFY_TOKEN", WT_VALUE, A_LEGACY, "gotify_token", "gotify: the application token, or the file it is in" },
	{ "notification-gotify-tls-skip-verify", 0, "WATCHTOWER_NOTIFICATION_GOTIFY_TLS_SKIP_VERIFY", WT_BOOL, A_WARN, NULL, "refit checks the Gotify server's certificate (Watchtower's URL does not skip it either)" },
	{ "notification-template", 0, "WATCHTOWER_NOTIFICATION_TEMPLATE", WT_VALUE, A_WARN, NULL, "refit's message has one fixed form" },
	{ "notification-url", 0, "WATCHTOWER_NOTIFICATION_URL", WT_VALUE, A_NOTIFY_URL, NULL, "notifications: shoutrrr URLs, separated by spaces or commas, or a file of them" },
	{ "notification-report", 0, "WATCHTOWER_NOTIFICATION_REPORT", WT_BOOL, A_WARN, NULL, "refit's message has one fixed form" },
	{ "notification-title-tag", 0, "WATCHTOWER_NOTIFICATION_TITLE_TAG", WT_VALUE, A_LEGACY, "title_tag", "the title '[TAG] Watchtower updates on HOST' of every URL without a title of its own" },
	{ "notification-skip-title", 0, "WATCHTOWER_NOTIFICATION_SKIP_TITLE", WT_BOOL, A_LEGACY, "skip_title", "no Watchtower title: each URL's own title, or refit's" },
	{ "notification-log-stdout", 0, "WATCHTOWER_NOTIFICATION_LOG_STDOUT", WT_BOOL, A_WARN, NULL, "refit's message has one fixed form" },
	{ "notification-template-file", 0, "WATCHTOWER_NOTIFICATION_TEMPLATE_FILE", WT_VALUE, A_WARN, NULL, "refit's message has one fixed form" },
	{ "notification-split-by-container", 0, "WATCHTOWER_NOTIFICATION_SPLIT_BY_CONTAINER", WT_BOOL, A_WARN, NULL, "refit's message has one fixed form" },
	/* the fork's additions (nicholas-fedor/watchtower) */
	{ "cooldown-delay", 0, "WATCHTOWER_COOLDOWN_DELAY", WT_VALUE, A_KEY, "cooldown", "cooldown: a digest first seen less than this long ago waits (2d, 12h, 90m)" },
	{ "update-on-start", 0, "WATCHTOWER_UPDATE_ON_START", WT_BOOL, A_KEY, "update_on_start", "update_on_start: a pass at start, then the schedule" },
	{ NULL, 0, "WATCHTOWER_RUN_ONCE_ON_START", WT_BOOL, A_KEY, "update_on_start", "update_on_start" },
	{ "http-api-host", 0, "WATCHTOWER_HTTP_API_HOST", WT_VALUE, A_API_HOST, NULL, "the API's address (with --http-api-port, default 8080)" },
	{ "http-api-port", 0, "WATCHTOWER_HTTP_API_PORT", WT_VALUE, A_API_PORT, NULL, "the API's port" },
	{ "http-api-endpoints", 0, "WATCHTOWER_HTTP_API_ENDPOINTS", WT_VALUE, A_WARN, NULL, "refit serves all its endpoints behind the token" },
	{ "http-api-containers", 0, "WATCHTOWER_HTTP_API_CONTAINERS", WT_BOOL, A_WARN, NULL, "refit's container list is GET /api/v1/containers" },
	{ "http-api-events-token", 0, "WATCHTOWER_HTTP_API_EVENTS_TOKEN", WT_VALUE, A_WARN, NULL, "refit has one API token" },
	{ "http-api-rate-limit", 0, "WATCHTOWER_HTTP_API_RATE_LIMIT", WT_VALUE, A_WARN, NULL, "refit slows down repeated wrong tokens and bounds connections instead" },
	{ "http-api-tls-cert", 0, "WATCHTOWER_HTTP_API_TLS_CERT", WT_VALUE, A_WARN, NULL, "refit's API is plain HTTP: put a TLS proxy in front of it" },
	{ "http-api-tls-key", 0, "WATCHTOWER_HTTP_API_TLS_KEY", WT_VALUE, A_WARN, NULL, "refit's API is plain HTTP: put a TLS proxy in front of it" },
	{ "http-api-trusted-proxies", 0, "WATCHTOWER_HTTP_API_TRUSTED_PROXIES", WT_VALUE, A_WARN, NULL, "not used" },
	{ "http-api-proxy-header", 0, "WATCHTOWER_HTTP_API_PROXY_HEADER", WT_VALUE, A_WARN, NULL, "not used" },
	{ "http-api-cors-origins", 0, "WATCHTOWER_HTTP_API_CORS_ORIGINS", WT_VALUE, A_WARN, NULL, "refit's API sends no CORS headers" },
	{ "http-api-check-timeout", 0, "WATCHTOWER_HTTP_API_CHECK_TIMEOUT", WT_VALUE, A_WARN, NULL, "not used" },
	{ "http-api-update-timeout", 0, "WATCHTOWER_HTTP_API_UPDATE_TIMEOUT", WT_VALUE, A_WARN, NULL, "a synchronous /v1/update waits at most an hour; ?async=true answers at once" },
	{ "monitor-image-names", 0, "WATCHTOWER_MONITOR_IMAGE_NAMES", WT_VALUE, A_WARN, NULL, "not used: select containers by label or name" },
	{ "skip-image-names", 0, "WATCHTOWER_SKIP_IMAGE_NAMES", WT_VALUE, A_WARN, NULL, "not used: label those containers enable=false" },
	{ "enable-containers-by-label", 0, "WATCHTOWER_ENABLE_CONTAINERS_BY_LABEL", WT_VALUE, A_WARN, NULL, "not used: refit reads the enable label" },
	{ "disable-containers-by-label", 0, "WATCHTOWER_DISABLE_CONTAINERS_BY_LABEL", WT_VALUE, A_WARN, NULL, "not used: refit reads the enable label" },
	{ "lifecycle-uid", 0, "WATCHTOWER_LIFECYCLE_UID", WT_VALUE, A_WARN, NULL, "hooks run as the container's user" },
	{ "lifecycle-gid", 0, "WATCHTOWER_LIFECYCLE_GID", WT_VALUE, A_WARN, NULL, "hooks run as the container's group" },
	{ "self-update-orchestrator", 0, "WATCHTOWER_SELF_UPDATE_ORCHESTRATOR", WT_BOOL, A_WARN, NULL, "not used" },
	{ "ephemeral-self-update", 0, "WATCHTOWER_EPHEMERAL_SELF_UPDATE", WT_BOOL, A_WARN, NULL, "not used" },
	{ "disable-memory-swappiness", 0, "WATCHTOWER_DISABLE_MEMORY_SWAPPINESS", WT_BOOL, A_WARN, NULL, "not used: the replacement keeps the old container's settings" },
	{ "cpu-copy-mode", 0, "WATCHTOWER_CPU_COPY_MODE", WT_VALUE, A_WARN, NULL, "not used: the replacement keeps the old container's settings" },
	{ "registry-tls-skip", 0, "WATCHTOWER_REGISTRY_TLS_SKIP", WT_BOOL, A_WARN, NULL, "not used: list such registries in insecure_registries" },
	{ "registry-tls-min-version", 0, "WATCHTOWER_REGISTRY_TLS_MIN_VERSION", WT_VALUE, A_WARN, NULL, "refit uses TLS 1.2 or newer" },
	{ "use-compose-depends-on", 0, "WATCHTOWER_USE_COMPOSE_DEPENDS_ON", WT_BOOL, A_IGNORE, NULL, "refit always orders swaps by compose depends_on and links" },
	/* refit's own, in a Watchtower invocation */
	{ "rollback", 0, NULL, WT_BOOL, A_ROLLBACK, NULL, "with --run-once: roll every selected container back to its previous version (as refit rollback --all)" },
	{ "config", 0, NULL, WT_VALUE, A_CONFIG, NULL, "refit's configuration file" },
	{ "state-dir", 0, NULL, WT_VALUE, A_KEY, "state_dir", "state_dir" },
	{ "docker-host", 0, NULL, WT_VALUE, A_KEY, "docker_host", "docker_host" },
	{ "help", 'h', NULL, WT_BOOL, A_HELP, NULL, "this table" },
};
/* clang-format on */

/* Watchtower's test for a value that names a file: it exists, and any ':' is a drive letter's. */
static bool names_file(const char *v)
{
	const char *colon = strchr(v, ':');
	struct stat st;

	if (colon && colon != v + 1)
		return false;
	return stat(v, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * V, or the content of the file it names (its lines joined by LINES_SEP,
 * blank ones dropped, or trimmed when LINES_SEP is 0), in *OUT (to free).
 */
static int secret_value(const char *v, char lines_sep, char **out, struct refit_err *e)
{
	char *buf, *w;
	size_t len;

	if (!names_file(v)) {
		*out = strdup(v);
		return *out ? 0 : err_set(e, ERR_FAILED, "out of memory");
	}
	if (fs_read_file(v, CONFIG_MAX_STRING, &buf, &len, e) < 0)
		return -1;
	w = buf;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\r' || buf[i] == '\n') {
			if (!lines_sep)
				break;
			if (w > buf && w[-1] != lines_sep)
				*w++ = lines_sep;
			continue;
		}
		*w++ = buf[i];
	}
	while (w > buf && (isspace((unsigned char)w[-1]) || w[-1] == lines_sep))
		w--;
	*w = '\0';
	*out = buf;
	return 0;
}

/* The legacy notification settings, in cfg->wt_notify's order (the table's .key of A_LEGACY). */
enum legacy {
	L_TYPES, L_HOSTNAME, L_EMAIL_FROM, L_EMAIL_TO, L_EMAIL_SERVER, L_EMAIL_PORT, L_EMAIL_SKIP, L_EMAIL_USER,
	L_EMAIL_PASSWORD, L_EMAIL_TAG, L_SLACK_HOOK, L_SLACK_ID, L_SLACK_EMOJI, L_SLACK_ICON, L_TEAMS_HOOK,
	L_GOTIFY_URL, L_GOTIFY_TOKEN, L_TITLE_TAG, L_SKIP_TITLE, L_COUNT
};

static const char *const legacy_names[L_COUNT] = {
	"types", "hostname", "email_from", "email_to", "email_server", "email_port", "email_skip", "email_user",
	"email_password", "email_tag", "slack_hook", "slack_id", "slack_emoji", "slack_icon", "teams_hook",
	"gotify_url", "gotify_token", "title_tag", "skip_title",
};

static int legacy_index(const char *key)
{
	for (int i = 0; i < L_COUNT; i++)
		if (strcmp(legacy_names[i], key) == 0)
			return i;
	return 0; /* not reached: every A_LEGACY key is in the list (unit-tested) */
}

/* Watchtower's GetSecretsFromFiles: these values may name the file they are in. */
static bool legacy_secret(int i)
{
	return i == L_EMAIL_PASSWORD || i == L_SLACK_HOOK || i == L_TEAMS_HOOK || i == L_GOTIFY_TOKEN;
}

/* State across the settings of one source: --interval and --schedule together. */
struct wt_apply {
	bool interval, schedule;
};

/* Apply setting S with value V (from ORIGIN, a flag or a variable) to CFG. */
static int apply(struct refit_config *cfg, const struct wt_setting *s, const char *v, const char *origin,
		 struct wt_apply *st, struct refit_err *e)
{
	bool b = false;
	char *val = NULL;
	int rc = 0;

	if (s->type == WT_BOOL && config_parse_bool(v, &b) < 0)
		return err_set(e, ERR_USAGE, "%s: expected true or false, got \"%.64s\"", origin, v);
	switch (s->act) {
	case A_KEY:
		return config_set(cfg, s->key, s->type == WT_BOOL ? (b ? "true" : "false") : v, origin, e);
	case A_NOTIFY_URL:
		if (secret_value(v, ' ', &val, e) < 0)
			return -1;
		rc = config_set(cfg, "notifications", val, origin, e);
		free(val);
		return rc;
	case A_IGNORE:
		return 0;
	case A_WARN:
		config_warn(cfg, "%s: not honoured: %s", origin, s->note);
		return 0;
	case A_INTERVAL:
		st->interval = true;
		if (st->schedule)
			config_warn(cfg, "%s: both an interval and a schedule: the schedule is used", origin);
		return config_set(cfg, "poll_interval", v, origin, e);
	case A_SCHEDULE:
		st->schedule = true;
		if (st->interval)
			config_warn(cfg, "%s: both an interval and a schedule: the schedule is used", origin);
		return config_set(cfg, "schedule", v, origin, e);
	case A_NO_RESTART:
		if (!b)
			return 0;
		config_warn(cfg, "%s: %s", origin, s->note);
		return config_set(cfg, "monitor_only", "true", origin, e);
	case A_LOG_FORMAT:
		if (strcasecmp(v, "json") == 0)
			return config_set(cfg, "log_format", "json", origin, e);
		if (strcasecmp(v, "auto") == 0 || strcasecmp(v, "logfmt") == 0 || strcasecmp(v, "pretty") == 0)
			return config_set(cfg, "log_format", "text", origin, e);
		return err_set(e, ERR_USAGE, "%s: expected Auto, LogFmt, Pretty or JSON, got \"%.64s\"", origin, v);
	case A_LOG_LEVEL: {
		static const char *const map[][2] = {
			{ "panic", "error" }, { "fatal", "error" }, { "error", "error" }, { "warn", "warn" },
			{ "warning", "warn" }, { "info", "info" }, { "debug", "debug" }, { "trace", "debug" },
		};

		for (size_t i = 0; i < ARRAY_SIZE(map); i++)
			if (strcasecmp(v, map[i][0]) == 0)
				return config_set(cfg, "log_level", map[i][1], origin, e);
		return err_set(e, ERR_USAGE, "%s: expected panic, fatal, error, warn, info, debug or trace, got \"%.64s\"",
			       origin, v);
	}
	case A_DEBUG:
	case A_TRACE:
		if (!b)
			return 0;
		if (s->act == A_TRACE)
			config_warn(cfg, "%s: %s", origin, s->note);
		return config_set(cfg, "log_level", "debug", origin, e);
	case A_ROLLING:
		return b ? config_set(cfg, "concurrency", "1", origin, e) : 0;
	case A_API_UPDATE:
		cfg->wt_api.update = b;
		return 0;
	case A_API_METRICS:
		cfg->wt_api.metrics = b;
		return 0;
	case A_API_POLLS:
		cfg->wt_api.periodic_polls = b;
		return 0;
	case A_API_TOKEN:
		if (secret_value(v, 0, &val, e) < 0)
			return -1;
		if (!*val || strlen(val) > 4096) {
			free(val);
			return err_set(e, ERR_USAGE, "%s: expected a token of 1 to 4096 characters", origin);
		}
		free(cfg->wt_api.token);
		cfg->wt_api.token = val;
		return 0;
	case A_API_HOST:
	case A_API_PORT: {
		const char *old = cfg->wt_api.listen, *colon = old ? strrchr(old, ':') : NULL;
		char host[300], port[16], *end;
		long n;

		snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - old) : 7, colon ? old : "0.0.0.0");
		snprintf(port, sizeof(port), "%s", colon ? colon + 1 : "8080");
		if (s->act == A_API_PORT) {
			n = strtol(v, &end, 10);
			if (*end || end == v || n < 1 || n > 65535)
				return err_set(e, ERR_USAGE, "%s: expected a port of 1 to 65535, got \"%.64s\"", origin, v);
			snprintf(port, sizeof(port), "%ld", n);
		} else {
			if (strlen(v) > 255 || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") !=
						       strlen(v))
				return err_set(e, ERR_USAGE, "%s: expected a host name or address, got \"%.64s\"", origin, v);
			snprintf(host, sizeof(host), "%s", *v ? v : "0.0.0.0");
		}
		free(cfg->wt_api.listen);
		if (asprintf(&cfg->wt_api.listen, "%s:%s", host, port) < 0) {
			cfg->wt_api.listen = NULL;
			return err_set(e, ERR_FAILED, "out of memory");
		}
		return 0;
	}
	case A_TLS_VERIFY:
		return b && setenv("DOCKER_TLS_VERIFY", "1", 1) < 0 ? err_set(e, ERR_FAILED, "out of memory") : 0;
	case A_CERT_PATH:
		return setenv("DOCKER_CERT_PATH", v, 1) < 0 ? err_set(e, ERR_FAILED, "out of memory") : 0;
	case A_PORCELAIN:
		if (strcmp(v, "v1") != 0)
			return err_set(e, ERR_USAGE, "%s: unknown porcelain version \"%.16s\" (Watchtower knows v1)", origin, v);
		config_warn(cfg, "%s: %s", origin, s->note);
		return 0;
	case A_LEGACY: {
		int i = legacy_index(s->key);

		if (legacy_secret(i)) {
			if (secret_value(v, 0, &val, e) < 0)
				return -1;
		} else if (!(val = strdup(s->type == WT_BOOL ? (b ? "true" : "false") : v))) {
			return err_set(e, ERR_FAILED, "out of memory");
		}
		if (cfg->wt_notify[i])
			explicit_bzero(cfg->wt_notify[i], strlen(cfg->wt_notify[i]));
		free(cfg->wt_notify[i]);
		cfg->wt_notify[i] = val;
		return 0;
	}
	case A_RUN_ONCE:
	case A_ROLLBACK:
	case A_HEALTH_CHECK:
	case A_HELP:
	case A_CONFIG:
		return 0; /* the invocation's own (watchtower_parse) */
	}
	return 0;
}

int watchtower_apply_env(struct refit_config *cfg, char *const *envp, struct refit_err *e)
{
	struct wt_apply st = { 0 };

	for (size_t i = 0; i < ARRAY_SIZE(settings); i++) {
		const char *v = settings[i].env ? env_lookup(envp, settings[i].env) : NULL;

		if (v && *v && apply(cfg, &settings[i], v, settings[i].env, &st, e) < 0)
			return -1;
	}
	/* A WATCHTOWER_ variable Watchtower does not have is a typo, or a setting of a tool refit is not. */
	for (; envp && *envp; envp++) {
		const char *eq = strchr(*envp, '=');
		size_t n = eq ? (size_t)(eq - *envp) : strlen(*envp);
		bool known = false;

		if (strncmp(*envp, "WATCHTOWER_", 11) != 0)
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(settings) && !known; i++)
			known = settings[i].env && strlen(settings[i].env) == n && strncmp(settings[i].env, *envp, n) == 0;
		if (!known)
			config_warn(cfg, "%.*s: not a Watchtower variable refit knows; ignored", (int)(n > 96 ? 96 : n),
				    *envp);
	}
	return 0;
}

bool watchtower_env_run_once(char *const *envp)
{
	const char *v = env_lookup(envp, "WATCHTOWER_RUN_ONCE");
	bool b = false;

	return v && config_parse_bool(v, &b) == 0 && b;
}

void watchtower_defaults(struct refit_config *cfg)
{
	struct refit_err e = { 0 };

	/* Watchtower manages every container of every scope and runs no hooks unless asked. */
	cfg->label_enable = false;
	cfg->lifecycle_hooks = false;
	(void)config_set(cfg, "scope", "*", "watchtower", &e); /* a constant the check accepts */
}

/* The setting whose long name is NAME (LEN bytes), or -1. */
static int by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(settings); i++)
		if (settings[i].flag && strlen(settings[i].flag) == len && strncmp(settings[i].flag, name, len) == 0)
			return (int)i;
	return -1;
}

/* The setting whose short form is C, or -1. */
static int by_letter(char c)
{
	for (size_t i = 0; i < ARRAY_SIZE(settings); i++)
		if (settings[i].letter && settings[i].letter == c)
			return (int)i;
	return -1;
}

/* Note setting I given with value V; its mode, when it is one. */
static int given(struct watchtower *wt, int i, const char *v, const char **config, struct refit_err *e)
{
	const struct wt_setting *s = &settings[i];
	bool b = true;

	if (s->type == WT_BOOL && config_parse_bool(v, &b) < 0)
		return err_set(e, ERR_USAGE, "--%s: expected true or false, got \"%.64s\"", s->flag, v);
	switch (s->act) {
	case A_RUN_ONCE:
		wt->run_once = b;
		return 0;
	case A_ROLLBACK:
		wt->rollback = b;
		return 0;
	case A_HEALTH_CHECK:
		wt->health_check = b;
		return 0;
	case A_HELP:
		wt->help = b;
		return 0;
	case A_CONFIG:
		*config = v;
		return 0;
	default:
		break;
	}
	if (wt->ngiven >= WT_MAX_GIVEN)
		return err_set(e, ERR_USAGE, "more than %d flags", WT_MAX_GIVEN);
	wt->given[wt->ngiven].setting = i;
	wt->given[wt->ngiven].value = v;
	wt->ngiven++;
	return 0;
}

int watchtower_parse(struct watchtower *wt, int argc, char **argv, int first, const char **config,
		     struct refit_err *e)
{
	bool words_only = false;

	memset(wt, 0, sizeof(*wt));
	wt->names = calloc((size_t)argc + 1, sizeof(char *));
	if (!wt->names)
		return err_set(e, ERR_FAILED, "out of memory");
	for (int k = first; k < argc; k++) {
		const char *w = argv[k];

		if (words_only || w[0] != '-' || strcmp(w, "-") == 0) {
			if (!container_name_valid(w))
				return err_set(e, ERR_USAGE, "'%.64s' is not a container name", w);
			wt->names[wt->nnames++] = (char *)w;
			continue;
		}
		if (strcmp(w, "--") == 0) {
			words_only = true;
			continue;
		}
		if (w[1] == '-') { /* --name, --name=VALUE, --name VALUE */
			const char *eq = strchr(w + 2, '=');
			int i = by_name(w + 2, eq ? (size_t)(eq - (w + 2)) : strlen(w + 2));
			const char *v = eq ? eq + 1 : NULL;

			if (i < 0)
				return err_set(e, ERR_USAGE, "unknown flag %.64s (neither Watchtower's nor refit's; see refit watchtower --help)", w);
			if (settings[i].type == WT_VALUE && !v) {
				if (k + 1 >= argc)
					return err_set(e, ERR_USAGE, "%.64s needs a value", w);
				v = argv[++k];
			}
			if (given(wt, i, v ? v : "true", config, e) < 0)
				return -1;
			continue;
		}
		/* -c, -ceR (flags together), -i 30, -i30, -i=30 */
		for (const char *p = w + 1; *p; p++) {
			int i = by_letter(*p);
			const char *v = NULL;

			if (i < 0)
				return err_set(e, ERR_USAGE, "unknown flag -%c in %.64s (see refit watchtower --help)", *p, w);
			if (settings[i].type == WT_VALUE || p[1] == '=') { /* -i30, -i=30, -i 30, -c=false */
				v = p[1] == '=' ? p + 2 : p[1] ? p + 1 : NULL;
				if (!v) {
					if (k + 1 >= argc)
						return err_set(e, ERR_USAGE, "-%c needs a value", *p);
					v = argv[++k];
				}
				if (given(wt, i, v, config, e) < 0)
					return -1;
				break;
			}
			if (given(wt, i, "true", config, e) < 0)
				return -1;
		}
	}
	return 0;
}

int watchtower_apply_flags(struct refit_config *cfg, const struct watchtower *wt, struct refit_err *e)
{
	struct wt_apply st = { 0 };

	for (size_t k = 0; k < wt->ngiven; k++) {
		const struct wt_setting *s = &settings[wt->given[k].setting];
		char origin[64];

		snprintf(origin, sizeof(origin), "--%s", s->flag);
		if (apply(cfg, s, wt->given[k].value, origin, &st, e) < 0)
			return -1;
	}
	return 0;
}

/* Flags both refit and Watchtower have: they alone make no Watchtower invocation. */
static bool shared_flag(const struct wt_setting *s)
{
	return s->act == A_HELP || s->act == A_CONFIG || (s->act == A_KEY && (strcmp(s->key, "scope") == 0 ||
									       strcmp(s->key, "state_dir") == 0 ||
									       strcmp(s->key, "docker_host") == 0)) ||
	       s->act == A_LOG_FORMAT || s->act == A_LOG_LEVEL;
}

bool watchtower_invocation(int argc, char **argv, bool (*is_command)(const char *word))
{
	bool watchtower_flag = false;

	if (argc > 1 && strcmp(argv[1], "watchtower") == 0)
		return true;
	for (int k = 1; k < argc; k++) {
		const char *w = argv[k];
		int i = -1;

		if (strcmp(w, "--") == 0)
			break;
		if (w[0] != '-') {
			if (is_command(w))
				return false;
			continue;
		}
		if (w[1] == '-') {
			const char *eq = strchr(w + 2, '=');

			i = by_name(w + 2, eq ? (size_t)(eq - (w + 2)) : strlen(w + 2));
			if (i >= 0 && settings[i].type == WT_VALUE && !eq)
				k++; /* its value is no word */
		} else if (w[1]) {
			i = by_letter(w[1]);
			if (i >= 0 && settings[i].type == WT_VALUE && !w[2])
				k++;
		}
		if (i >= 0 && !shared_flag(&settings[i]))
			watchtower_flag = true;
	}
	return watchtower_flag;
}

void watchtower_print_help(FILE *f)
{
	fprintf(f, "usage: refit [WATCHTOWER FLAGS] [NAME...]   (or refit watchtower [FLAGS] [NAME...])\n\n"
		   "Run as containrrr/watchtower runs with the same flags and WATCHTOWER_* variables:\n"
		   "the daemon, or one pass with --run-once. Without --label-enable every container is\n"
		   "managed, without --scope every scope; NAMEs limit it to those containers. The\n"
		   "configuration file (--config, default " CONFIG_DEFAULT_PATH
		   ") and REFIT_* variables\n"
		   "still apply; flags win over variables.\n\n");
	for (size_t i = 0; i < ARRAY_SIZE(settings); i++) {
		const struct wt_setting *s = &settings[i];
		char spelled[96];

		if (!s->flag)
			continue;
		if (s->letter)
			snprintf(spelled, sizeof(spelled), "-%c, --%s%s", s->letter, s->flag, s->type == WT_VALUE ? " V" : "");
		else
			snprintf(spelled, sizeof(spelled), "    --%s%s", s->flag, s->type == WT_VALUE ? " V" : "");
		fprintf(f, "  %-44s %s%s\n", spelled, s->act == A_WARN ? "(warning) " : "", s->note);
		if (s->env)
			fprintf(f, "  %-44s   variable %s\n", "", s->env);
	}
}

size_t watchtower_settings(void)
{
	return ARRAY_SIZE(settings);
}

const char *watchtower_setting_flag(size_t i, char *short_flag, bool *takes_value)
{
	if (i >= ARRAY_SIZE(settings))
		return NULL;
	*short_flag = settings[i].letter;
	*takes_value = settings[i].type == WT_VALUE;
	return settings[i].flag;
}

/* A URL being built, bounded by NOTIFY_MAX_URL. */
struct url_buf {
	char s[NOTIFY_MAX_URL + 1];
	size_t n;
	bool over;
};

static void ub_add(struct url_buf *u, const char *text)
{
	size_t k = strlen(text);

	if (u->n + k >= sizeof(u->s)) {
		u->over = true;
		return;
	}
	memcpy(u->s + u->n, text, k + 1);
	u->n += k;
}

/* TEXT percent-encoded (all but RFC 3986's unreserved characters). */
static void ub_enc(struct url_buf *u, const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		char one[4];

		if (isalnum(*p) || strchr("-._~", *p))
			snprintf(one, sizeof(one), "%c", *p);
		else
			snprintf(one, sizeof(one), "%%%02X", *p);
		ub_add(u, one);
	}
}

/* "&KEY=VALUE" (or "?KEY=VALUE" first), the value encoded; nothing when VALUE is NULL or empty. */
static void ub_param(struct url_buf *u, const char *key, const char *value)
{
	if (!value || !*value)
		return;
	ub_add(u, strchr(u->s, '?') ? "&" : "?");
	ub_add(u, key);
	ub_add(u, "=");
	ub_enc(u, value);
}

/* The legacy value I, or "" when not given. */
static const char *lv(const struct refit_config *cfg, int i)
{
	return cfg->wt_notify[i] ? cfg->wt_notify[i] : "";
}

static bool lv_true(const struct refit_config *cfg, int i)
{
	bool b = false;

	return cfg->wt_notify[i] && config_parse_bool(cfg->wt_notify[i], &b) == 0 && b;
}

/* Watchtower's email notifier as its GetURL builds the smtp:// URL. */
static int legacy_email(const struct refit_config *cfg, const char *title, struct url_buf *u, struct refit_err *e)
{
	bool skip = lv_true(cfg, L_EMAIL_SKIP);
	char *end;
	long port = *lv(cfg, L_EMAIL_PORT) ? strtol(lv(cfg, L_EMAIL_PORT), &end, 10) : 25;

	if (!*lv(cfg, L_EMAIL_SERVER) || !*lv(cfg, L_EMAIL_FROM) || !*lv(cfg, L_EMAIL_TO))
		return err_set(e, ERR_USAGE, "--notifications email: WATCHTOWER_NOTIFICATION_EMAIL_SERVER, _FROM and _TO "
					     "(--notification-email-server, -from, -to) are needed");
	if (*lv(cfg, L_EMAIL_PORT) && (*end || port < 1 || port > 65535))
		return err_set(e, ERR_USAGE, "--notification-email-server-port: expected a port of 1 to 65535, got \"%.16s\"",
			       lv(cfg, L_EMAIL_PORT));
	ub_add(u, "smtp://");
	if (*lv(cfg, L_EMAIL_USER)) {
		ub_enc(u, lv(cfg, L_EMAIL_USER));
		ub_add(u, ":");
		ub_enc(u, lv(cfg, L_EMAIL_PASSWORD));
		ub_add(u, "@");
	}
	ub_add(u, lv(cfg, L_EMAIL_SERVER)); /* a host name: the parser checks it */
	{
		char p[16];

		snprintf(p, sizeof(p), ":%ld/", port);
		ub_add(u, p);
	}
	ub_param(u, "auth", *lv(cfg, L_EMAIL_USER) ? "Plain" : "None");
	ub_param(u, "encryption", skip ? "None" : "Auto");
	ub_param(u, "fromaddress", lv(cfg, L_EMAIL_FROM));
	ub_param(u, "fromname", "Watchtower");
	ub_param(u, "subject", title);
	ub_param(u, "toaddresses", lv(cfg, L_EMAIL_TO));
	ub_param(u, "usestarttls", skip ? "No" : "Yes");
	return 0;
}

/* The hook URL's path pieces after PREFIX ("https://HOST/"), '/'-separated, trailing '/' dropped; their count. */
static int hook_parts(const char *url, char parts[][160], int max)
{
	const char *p = strncmp(url, "https://", 8) == 0 ? url + 8 : strncmp(url, "http://", 7) == 0 ? url + 7 : url;
	int n = 0;

	while (*p && n < max) {
		size_t k = strcspn(p, "/");

		if (k && k < 160) {
			memcpy(parts[n], p, k);
			parts[n++][k] = '\0';
		} else if (k) {
			return -1;
		}
		p += k;
		if (*p)
			p++;
	}
	return *p ? -1 : n;
}

/* Watchtower's slack notifier: slack://hook:A-B-C@webhook, or discord:// for a discord.com hook. */
static int legacy_slack(const struct refit_config *cfg, const char *title, struct url_buf *u, struct refit_err *e)
{
	char parts[8][160];
	int n = hook_parts(lv(cfg, L_SLACK_HOOK), parts, 8);
	const char *id = *lv(cfg, L_SLACK_ID) ? lv(cfg, L_SLACK_ID) : "watchtower";

	if (n >= 3 && (!strcmp(parts[0], "discord.com") || !strcmp(parts[0], "discordapp.com"))) {
		/* Watchtower: WebhookID parts[n-3], token parts[n-2] (the URL ends in /slack) */
		ub_add(u, "discord://");
		ub_enc(u, parts[n - 2]);
		ub_add(u, "@");
		ub_enc(u, parts[n - 3]);
		ub_param(u, "avatar", lv(cfg, L_SLACK_ICON));
		ub_param(u, "color", "0x406170");
		ub_param(u, "splitlines", "Yes");
		ub_param(u, "title", title);
		ub_param(u, "username", lv(cfg, L_SLACK_ID));
		return 0;
	}
	if (n != 5 || strcmp(parts[0], "hooks.slack.com") != 0 || strcmp(parts[1], "services") != 0 ||
	    strncmp(lv(cfg, L_SLACK_HOOK), "https://", 8) != 0)
		return err_set(e, ERR_USAGE, "--notifications slack: WATCHTOWER_NOTIFICATION_SLACK_HOOK_URL "
					     "(--notification-slack-hook-url) must be https://hooks.slack.com/services/A/B/C "
					     "or a Discord webhook's https://discord.com/api/webhooks/ID/TOKEN/slack");
	ub_add(u, "slack://hook:");
	ub_enc(u, parts[2]);
	ub_add(u, "-");
	ub_enc(u, parts[3]);
	ub_add(u, "-");
	ub_enc(u, parts[4]);
	ub_add(u, "@webhook");
	ub_param(u, "botname", id);
	ub_param(u, "color", "#406170");
	ub_param(u, "icon", *lv(cfg, L_SLACK_ICON) ? lv(cfg, L_SLACK_ICON) : lv(cfg, L_SLACK_EMOJI));
	ub_param(u, "title", title);
	return 0;
}

/* Watchtower's msteams notifier: the connector URL as shoutrrr's legacy teams://GROUP@TENANT/ALTID/OWNER?host=. */
static int legacy_teams(const struct refit_config *cfg, const char *title, struct url_buf *u, struct refit_err *e)
{
	char parts[8][160], *at;
	int n = hook_parts(lv(cfg, L_TEAMS_HOOK), parts, 8);

	/* https://HOST/webhookb2/GROUP@TENANT/IncomingWebhook/ALTID/GROUPOWNER */
	if (n != 6 || strncmp(lv(cfg, L_TEAMS_HOOK), "https://", 8) != 0 || !(at = strchr(parts[2], '@')))
		return err_set(e, ERR_USAGE, "--notifications msteams: WATCHTOWER_NOTIFICATION_MSTEAMS_HOOK_URL "
					     "(--notification-msteams-hook) must be the connector's "
					     "https://HOST/webhookb2/GROUP@TENANT/IncomingWebhook/ALTID/GROUPOWNER");
	*at = '\0';
	ub_add(u, "teams://");
	ub_enc(u, parts[2]);
	ub_add(u, "@");
	ub_enc(u, at + 1);
	ub_add(u, "/");
	ub_enc(u, parts[4]);
	ub_add(u, "/");
	ub_enc(u, parts[5]);
	ub_param(u, "color", "#406170");
	ub_param(u, "host", parts[0]);
	ub_param(u, "title", title);
	return 0;
}

/* Watchtower's gotify notifier: gotify://HOST[:PORT][/PATH]/TOKEN, disabletls=yes for an http:// URL. */
static int legacy_gotify(const struct refit_config *cfg, const char *title, struct url_buf *u, struct refit_err *e)
{
	const char *url = lv(cfg, L_GOTIFY_URL);
	bool plain = strncmp(url, "http://", 7) == 0;
	const char *rest = plain ? url + 7 : url + 8;
	size_t n;

	if (!plain && strncmp(url, "https://", 8) != 0)
		return err_set(e, ERR_USAGE, "--notifications gotify: WATCHTOWER_NOTIFICATION_GOTIFY_URL "
					     "(--notification-gotify-url) must start with http:// or https://");
	if (!*lv(cfg, L_GOTIFY_TOKEN))
		return err_set(e, ERR_USAGE, "--notifications gotify: WATCHTOWER_NOTIFICATION_GOTIFY_TOKEN "
					     "(--notification-gotify-token) is needed");
	n = strcspn(rest, "?#");
	while (n && rest[n - 1] == '/')
		n--;
	ub_add(u, "gotify://");
	{
		char hp[NOTIFY_MAX_URL];

		snprintf(hp, sizeof(hp), "%.*s", (int)(n < sizeof(hp) ? n : sizeof(hp) - 1), rest);
		ub_add(u, hp); /* host and path as given: the parser checks them */
	}
	ub_add(u, "/");
	ub_enc(u, lv(cfg, L_GOTIFY_TOKEN));
	if (plain)
		ub_param(u, "disabletls", "yes");
	ub_param(u, "title", title);
	return 0;
}

int watchtower_notify_finish(struct refit_config *cfg, struct refit_err *e)
{
	char title[600] = "", host[256] = "", types[512];
	const char *tag = *lv(cfg, L_TITLE_TAG) ? lv(cfg, L_TITLE_TAG) : lv(cfg, L_EMAIL_TAG);
	bool skip = lv_true(cfg, L_SKIP_TITLE);
	char *save = NULL;

	/* built again after each source (variables, then flags): what the last build added goes first */
	for (size_t i = 0; i < cfg->wt_notify_urls.n; i++)
		config_drop_notification(cfg, cfg->wt_notify_urls.v[i]);
	for (size_t i = 0; i < cfg->wt_notify_urls.n; i++) {
		explicit_bzero(cfg->wt_notify_urls.v[i], strlen(cfg->wt_notify_urls.v[i]));
		free(cfg->wt_notify_urls.v[i]);
	}
	free(cfg->wt_notify_urls.v);
	cfg->wt_notify_urls.v = NULL;
	cfg->wt_notify_urls.n = 0;
	free(cfg->notify_title);
	cfg->notify_title = NULL;
	if (!skip) { /* Watchtower's GetTitle */
		snprintf(host, sizeof(host), "%.255s", lv(cfg, L_HOSTNAME));
		if (!host[0] && gethostname(host, sizeof(host) - 1) < 0)
			host[0] = '\0';
		host[sizeof(host) - 1] = '\0';
		snprintf(title, sizeof(title), "%s%.200s%sWatchtower updates%s%s", *tag ? "[" : "", tag, *tag ? "] " : "",
			 host[0] ? " on " : "", host);
		if ((*tag || *lv(cfg, L_HOSTNAME)) && !(cfg->notify_title = strdup(title)))
			return err_set(e, ERR_FAILED, "out of memory");
	}
	snprintf(types, sizeof(types), "%s", lv(cfg, L_TYPES));
	for (char *t = strtok_r(types, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		struct url_buf *u;
		char origin[64];
		int rc;

		if (!strcmp(t, "shoutrrr"))
			continue; /* its URLs are --notification-url's */
		if (!(u = calloc(1, sizeof(*u))))
			return err_set(e, ERR_FAILED, "out of memory");
		if (!strcmp(t, "email"))
			rc = legacy_email(cfg, title, u, e);
		else if (!strcmp(t, "slack"))
			rc = legacy_slack(cfg, title, u, e);
		else if (!strcmp(t, "msteams"))
			rc = legacy_teams(cfg, title, u, e);
		else if (!strcmp(t, "gotify"))
			rc = legacy_gotify(cfg, title, u, e);
		else
			rc = err_set(e, ERR_USAGE, "--notifications: unknown notification type \"%.32s\" (Watchtower knows "
						   "email, slack, msteams, gotify and shoutrrr)", t);
		snprintf(origin, sizeof(origin), "--notifications %s", t);
		if (rc == 0 && u->over)
			rc = err_set(e, ERR_USAGE, "%s: the URL made from its settings is longer than %d bytes", origin,
				     NOTIFY_MAX_URL);
		if (rc == 0)
			rc = config_add_notification(cfg, u->s, origin, e);
		if (rc == 0 && config_remember(&cfg->wt_notify_urls, u->s) < 0)
			rc = err_set(e, ERR_FAILED, "out of memory");
		explicit_bzero(u, sizeof(*u));
		free(u);
		if (rc < 0)
			return -1;
	}
	return 0;
}
