/* libFuzzer target: notification URLs, and the messages built for those that parse. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/notify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* True when the N bytes at S are all zero. */
static int zero(const void *s, size_t n)
{
	const unsigned char *p = s;

	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* The log name is "KIND HOST[:PORT]": nothing from a path, query or userinfo. */
static int name_safe(const char *name)
{
	const char *sp = strchr(name, ' ');

	if (!sp || sp == name || !sp[1])
		return 0;
	for (const char *p = sp + 1; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr(".-_:[]", *p)))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static json_t *payload;
	struct notify_target t;
	struct notify_message m;
	const char *why = NULL;
	char *s;

	if (!payload)
		payload = json_loads("{\"host\":\"h\",\"kind\":\"update\",\"summary\":\"refit on h: update: 1 failed\","
				     "\"containers\":[{\"name\":\"web\",\"outcome\":\"failed\",\"old_digest\":\"sha256:aa\","
				     "\"new_digest\":null,\"error\":\"boom\"}]}",
				     0, NULL);
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (notify_url_parse(s, &t, &why) != 0) {
		/* Every failure explains itself, and leaves nothing behind. */
		if (!why || !*why || !zero(t.url, sizeof(t.url)) || !zero(t.password, sizeof(t.password)) ||
		    !zero(t.token, sizeof(t.token)))
			abort();
		free(s);
		return 0;
	}
	if (t.kind == NOTIFY_SMTP ? strncmp(t.url, "smtp://", 7) != 0 && strncmp(t.url, "smtps://", 8) != 0 :
				    strncmp(t.url, "https://", 8) != 0 && strncmp(t.url, "http://", 7) != 0)
		abort();
	if (t.kind == NOTIFY_SMTP && (!t.from[0] || !t.nitems || strpbrk(t.from, "<>\r\n ") ||
				      (t.smtp_auth != SMTP_AUTH_NONE && !t.user[0])))
		abort(); /* an envelope needs a sender and recipients, AUTH a user */
	for (size_t i = 0; t.kind == NOTIFY_SMTP && i < t.nitems; i++)
		if (strpbrk(t.items[i], "<>\r\n ,"))
			abort();
	if (t.kind == NOTIFY_MATRIX && !t.user[0] && !t.token[0])
		abort();
	for (size_t i = 0; t.kind == NOTIFY_MATRIX && i < t.nitems; i++) {
		char path[600];

		if ((t.items[i][0] != '!' && t.items[i][0] != '#') || strchr(t.items[i], '/') ||
		    notify_matrix_path(t.items[i], "txn", path, sizeof(path)) < 0 || strpbrk(path, "#? \r\n"))
			abort(); /* a room stays one path segment */
	}
	if (!name_safe(t.name) || strlen(t.url) > NOTIFY_MAX_URL + 64)
		abort();
	if (t.priority < (t.kind == NOTIFY_PUSHOVER ? -2 : -1) || t.priority > 10 || (t.kind == NOTIFY_NTFY && t.priority > 5) ||
	    (t.kind == NOTIFY_PUSHOVER && t.priority > 1))
		abort();
	if (t.nitems > NOTIFY_MAX_ITEMS || (t.kind == NOTIFY_TELEGRAM && t.nitems == 0) ||
	    strlen(t.unknown) >= sizeof(t.unknown))
		abort();
	if (t.kind == NOTIFY_GOTIFY && !t.token[0])
		abort();
	if (notify_render(&t, payload, &m) != 0 || !m.body || strlen(m.body) != m.len || !m.content_type)
		abort();
	if (m.nmore != (t.kind == NOTIFY_TELEGRAM || t.kind == NOTIFY_SMTP ? t.nitems - 1 : 0))
		abort(); /* one body per telegram chat, one mail per recipient */
	if (t.kind == NOTIFY_SMTP) {
		/* the headers end at the first empty line and none of them was broken by a parameter */
		const char *end = strstr(m.body, "\r\n\r\n");

		if (!end || strncmp(m.body, "Subject: ", 9) != 0)
			abort();
		for (const char *p = m.body; p < end; p++)
			if ((*p == '\n' && p[-1] != '\r') || (*p == '\r' && p[1] != '\n'))
				abort();
	}
	for (size_t i = 0; i < m.nheaders; i++)
		if (strpbrk(m.headers[i], "\r\n"))
			abort(); /* no header injection from a parameter */
	notify_message_free(&m);
	notify_target_clear(&t);
	free(s);
	return 0;
}
