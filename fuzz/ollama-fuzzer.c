/* libFuzzer target: /api/pull NDJSON streams fed in random chunk splits, progress lines, /api/tags answers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/ollama.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Progress lines seen; each must be well formed. */
static void check_progress(void *ctx, const struct ollama_progress *p)
{
	size_t *n = ctx;

	(*n)++;
	if (strlen(p->status) >= sizeof(p->status) || strlen(p->error) >= sizeof(p->error))
		abort();
	if (p->digest[0] && (strlen(p->digest) != OLLAMA_DIGEST_LEN || strncmp(p->digest, "sha256:", 7) != 0))
		abort();
	if (p->is_error != (p->error[0] != '\0'))
		abort();
	if (p->total < -1 || p->completed < -1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ollama_stream s;
	struct ollama_tags t;
	struct ollama_progress p;
	const char *why = NULL, *body;
	size_t seen = 0, off, len;
	uint8_t seed;
	enum ollama_stream_state st;

	if (size < 1)
		return 0;
	/* The first byte chooses the chunk sizes, the rest is the answer. */
	seed = data[0];
	body = (const char *)data + 1;
	len = size - 1;

	ollama_stream_init(&s, check_progress, &seen);
	for (off = 0; off < len;) {
		size_t n = 1 + (size_t)((seed = (uint8_t)(seed * 73 + 41)) % 97);

		if (n > len - off)
			n = len - off;
		ollama_stream_feed(&s, body + off, n);
		off += n;
		if (s.cap > 2 * OLLAMA_MAX_LINE || s.len > OLLAMA_MAX_LINE)
			abort(); /* the line buffer is bounded */
	}
	st = ollama_stream_end(&s);
	if (st == OLLAMA_STREAM_RUNNING)
		abort();
	if (st == OLLAMA_STREAM_FAILED && !s.error[0])
		abort();
	if (st == OLLAMA_STREAM_SUCCESS && s.error[0])
		abort();
	if (strlen(s.error) > OLLAMA_MAX_ERROR)
		abort();
	ollama_stream_free(&s);

	/* The same answer in one piece ends the same way. */
	{
		struct ollama_stream whole;

		ollama_stream_init(&whole, NULL, NULL);
		ollama_stream_feed(&whole, body, len);
		if (ollama_stream_end(&whole) != st)
			abort();
		ollama_stream_free(&whole);
	}

	if (ollama_progress_parse(body, len, &p, &why) < 0 && (!why || !*why))
		abort();

	if (ollama_tags_parse(body, len, &t, &why) == 0) {
		for (size_t i = 0; i < t.n; i++) {
			const char *w;

			if (ollama_name_valid(t.v[i].name, &w) != 0)
				abort();
			if (t.v[i].digest && (strlen(t.v[i].digest) != OLLAMA_DIGEST_LEN ||
					      strncmp(t.v[i].digest, "sha256:", 7) != 0))
				abort();
			if (!ollama_tags_find(&t, t.v[i].name))
				abort();
		}
		ollama_tags_free(&t);
	} else if (!why || !*why || t.n || t.v) {
		abort();
	}
	return 0;
}
