/* Ollama answers: model names, /api/pull's NDJSON progress read line by line, /api/tags (pure). */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "refit/base.h"
#include "refit/ollama.h"

int ollama_name_valid(const char *name, const char **why)
{
	size_t n = name ? strlen(name) : 0;
	const char *slash, *colon;

	*why = "expected a model name of 1 to 200 letters, digits, '.', '_', '-', ':' or '/' (e.g. llama3.2:3b)";
	if (n == 0 || n > OLLAMA_MAX_NAME || !isalnum((unsigned char)name[0]))
		return -1;
	for (const char *p = name; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (!(isalnum(c) || c == '.' || c == '_' || c == '-' || c == ':' || c == '/') || c >= 0x80)
			return -1;
		if (c == '/' && (p[1] == '/' || p[1] == '\0'))
			return -1; /* an empty path part */
	}
	slash = strrchr(name, '/');
	colon = strchr(slash ? slash : name, ':');
	if (colon && (colon[1] == '\0' || strchr(colon + 1, ':') || colon[-1] == '/'))
		return -1;
	/* A ':' before the last '/' is a registry port; the tag comes after the last '/'. */
	for (const char *p = name; slash && p < slash; p++)
		if (*p == ':' && (p > strchr(name, '/') || !isdigit((unsigned char)p[1])))
			return -1;
	return 0;
}

int ollama_name_key(const char *name, char *out, size_t cap)
{
	const char *p = name, *slash;
	size_t n;
	bool tag;

	if (strncasecmp(p, "registry.ollama.ai/", 19) == 0)
		p += 19;
	if (strncasecmp(p, "library/", 8) == 0)
		p += 8;
	slash = strrchr(p, '/');
	tag = strchr(slash ? slash : p, ':') != NULL;
	n = strlen(p);
	if (n + (tag ? 0 : 7) + 1 > cap)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)p[i]);
	if (!tag)
		memcpy(out + n, ":latest", 7), n += 7;
	out[n] = '\0';
	return 0;
}

/* "sha256:HEX" (lowercased) into OUT from "sha256:HEX" or bare HEX; -1 when it is neither. */
static int digest_norm(const char *d, char out[OLLAMA_DIGEST_LEN + 1])
{
	if (!d)
		return -1;
	if (strncmp(d, "sha256:", 7) == 0)
		d += 7;
	if (strlen(d) != 64)
		return -1;
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 64; i++) {
		if (!isxdigit((unsigned char)d[i]))
			return -1;
		out[7 + i] = (char)tolower((unsigned char)d[i]);
	}
	out[OLLAMA_DIGEST_LEN] = '\0';
	return 0;
}

/* Copy S into DST (CAP bytes) on one line, control characters as spaces, cut at a UTF-8 boundary. */
static void copy_text(char *dst, size_t cap, const char *s)
{
	size_t n = 0;

	for (; s[n] && n + 1 < cap; n++)
		dst[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? ' ' : s[n];
	if (s[n])
		while (n > 0 && ((unsigned char)dst[n] & 0xc0) == 0x80)
			n--;
	dst[n] = '\0';
}

/* Byte counts above 2^53 (8 PiB) are refused: no model is that large, and
 * below it the progress arithmetic cannot overflow. */
#define MAX_COUNT (1LL << 53)

/* A non-negative integer member up to MAX_COUNT, -1 when absent; -2 when it
 * has the wrong type or is out of range. */
static long long count_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return -1;
	if (json_is_integer(v))
		return json_integer_value(v) < 0 || json_integer_value(v) > MAX_COUNT ? -2 : json_integer_value(v);
	if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) <= (double)MAX_COUNT)
		return (long long)json_real_value(v);
	return -2;
}

int ollama_progress_parse(const char *line, size_t len, struct ollama_progress *ret, const char **why)
{
	json_t *o, *st, *er, *dg;
	int rc = -1;

	memset(ret, 0, sizeof(*ret));
	ret->total = ret->completed = -1;
	*why = "a progress line is not a JSON object";
	o = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	if (!json_is_object(o))
		goto out;
	st = json_object_get(o, "status");
	er = json_object_get(o, "error");
	dg = json_object_get(o, "digest");
	*why = "a progress line has a member of the wrong type";
	if ((st && !json_is_string(st)) || (er && !json_is_string(er) && !json_is_null(er)) ||
	    (dg && !json_is_string(dg) && !json_is_null(dg)))
		goto out;
	ret->total = count_of(o, "total");
	ret->completed = count_of(o, "completed");
	if (ret->total == -2 || ret->completed == -2)
		goto out;
	if (st)
		copy_text(ret->status, sizeof(ret->status), json_string_value(st));
	if (json_is_string(dg) && digest_norm(json_string_value(dg), ret->digest) < 0)
		ret->digest[0] = '\0';
	if (json_is_string(er)) {
		ret->is_error = true;
		copy_text(ret->error, sizeof(ret->error), json_string_value(er));
		if (!ret->error[0])
			snprintf(ret->error, sizeof(ret->error), "the endpoint reported an error without a message");
	} else if (!st) {
		*why = "a progress line has neither status nor error";
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	if (rc < 0) {
		memset(ret, 0, sizeof(*ret));
		ret->total = ret->completed = -1;
	}
	return rc;
}

void ollama_stream_init(struct ollama_stream *s, void (*on_progress)(void *ctx, const struct ollama_progress *p),
			void *ctx)
{
	memset(s, 0, sizeof(*s));
	s->on_progress = on_progress;
	s->ctx = ctx;
}

/* Mark S failed with WHY (the first reason wins). */
static void stream_fail(struct ollama_stream *s, const char *why)
{
	if (s->state != OLLAMA_STREAM_RUNNING)
		return;
	s->state = OLLAMA_STREAM_FAILED;
	copy_text(s->error, sizeof(s->error), why);
}

/* Handle one complete line of LEN bytes. */
static void stream_line(struct ollama_stream *s, const char *line, size_t len)
{
	struct ollama_progress p;
	const char *why;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return; /* blank lines carry nothing */
	s->lines++;
	if (ollama_progress_parse(line, len, &p, &why) < 0) {
		stream_fail(s, why);
		return;
	}
	if (s->on_progress)
		s->on_progress(s->ctx, &p);
	if (p.is_error && s->state == OLLAMA_STREAM_RUNNING) {
		stream_fail(s, p.error);
		s->remote_error = true;
	}
	else if (strcmp(p.status, "success") == 0)
		s->state = OLLAMA_STREAM_SUCCESS;
}

enum ollama_stream_state ollama_stream_feed(struct ollama_stream *s, const char *data, size_t len)
{
	while (len > 0 && s->state == OLLAMA_STREAM_RUNNING) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;

		if (s->len + take > OLLAMA_MAX_LINE) {
			stream_fail(s, "a progress line is longer than 64 KiB");
			break;
		}
		if (nl && s->len == 0) {
			stream_line(s, data, take); /* a whole line in this chunk: no copy */
		} else {
			if (buf_reserve(&s->line, &s->cap, s->len + take + 1, 1024) < 0) {
				stream_fail(s, "out of memory");
				break;
			}
			memcpy(s->line + s->len, data, take);
			s->len += take;
			if (nl) {
				stream_line(s, s->line, s->len);
				s->len = 0;
			}
		}
		data += take + (nl ? 1 : 0);
		len -= take + (nl ? 1 : 0);
	}
	return s->state;
}

enum ollama_stream_state ollama_stream_end(struct ollama_stream *s)
{
	if (s->state == OLLAMA_STREAM_RUNNING && s->len > 0) {
		stream_line(s, s->line, s->len);
		s->len = 0;
	}
	if (s->state == OLLAMA_STREAM_RUNNING)
		stream_fail(s, s->lines ? "the pull ended without success" : "the pull answered nothing");
	return s->state;
}

void ollama_stream_free(struct ollama_stream *s)
{
	if (!s)
		return;
	free(s->line);
	s->line = NULL;
	s->len = s->cap = 0;
}

void ollama_tags_free(struct ollama_tags *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].name);
		free(t->v[i].key);
		free(t->v[i].digest);
	}
	free(t->v);
	t->v = NULL;
	t->n = t->skipped = 0;
}

int ollama_tags_parse(const char *body, size_t len, struct ollama_tags *ret, const char **why)
{
	json_t *root, *models, *m;
	size_t i;

	memset(ret, 0, sizeof(*ret));
	*why = "the /api/tags answer is larger than 8 MiB";
	if (len > OLLAMA_MAX_TAGS)
		return -1;
	*why = "the /api/tags answer is not a JSON object with a \"models\" list";
	root = json_loadb(body ? body : "", len, JSON_ALLOW_NUL, NULL);
	models = json_object_get(root, "models");
	if (!json_is_object(root) || !(json_is_array(models) || json_is_null(models))) {
		json_decref(root);
		return -1;
	}
	if (json_array_size(models) > OLLAMA_MAX_MODELS) {
		*why = "the /api/tags answer lists more than 4096 models";
		json_decref(root);
		return -1;
	}
	ret->v = calloc(json_array_size(models) + 1, sizeof(*ret->v));
	if (!ret->v) {
		*why = "out of memory";
		json_decref(root);
		return -1;
	}
	json_array_foreach(models, i, m) {
		const char *name = json_string_value(json_object_get(m, "name")), *why2;
		char key[OLLAMA_MAX_NAME + 16], digest[OLLAMA_DIGEST_LEN + 1];
		struct ollama_model *om;

		if (!name || ollama_name_valid(name, &why2) < 0)
			name = json_string_value(json_object_get(m, "model"));
		if (!name || ollama_name_valid(name, &why2) < 0 || ollama_name_key(name, key, sizeof(key)) < 0) {
			ret->skipped++;
			continue;
		}
		om = &ret->v[ret->n];
		om->name = strdup(name);
		om->key = strdup(key);
		if (digest_norm(json_string_value(json_object_get(m, "digest")), digest) == 0)
			om->digest = strdup(digest);
		if (!om->name || !om->key) {
			free(om->name);
			free(om->key);
			free(om->digest);
			*why = "out of memory";
			json_decref(root);
			ollama_tags_free(ret);
			return -1;
		}
		ret->n++;
	}
	json_decref(root);
	return 0;
}

const struct ollama_model *ollama_tags_find(const struct ollama_tags *t, const char *name)
{
	char key[OLLAMA_MAX_NAME + 16];

	if (ollama_name_key(name, key, sizeof(key)) < 0)
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i].key, key) == 0)
			return &t->v[i];
	return NULL;
}
