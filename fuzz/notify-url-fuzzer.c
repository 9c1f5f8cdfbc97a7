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
	if (strncmp(t.url, "https://", 8) != 0 && strncmp(t.url, "http://", 7) != 0)
		abort();
	if (!name_safe(t.name) || strlen(t.url) > NOTIFY_MAX_URL + 64)
		abort();
	if (t.priority < -1 || t.priority > 10 || (t.kind == NOTIFY_NTFY && t.priority > 5))
		abort();
	if (t.kind == NOTIFY_GOTIFY && !t.token[0])
		abort();
	if (notify_render(&t, payload, &m) != 0 || !m.body || strlen(m.body) != m.len || !m.content_type)
		abort();
	for (size_t i = 0; i < m.nheaders; i++)
		if (strpbrk(m.headers[i], "\r\n"))
			abort(); /* no header injection from a parameter */
	notify_message_free(&m);
	notify_target_clear(&t);
	free(s);
	return 0;
}
