/* Ollama's API answers, parsed (pure): model names, /api/pull's NDJSON progress, /api/tags. */
#ifndef REFIT_OLLAMA_H
#define REFIT_OLLAMA_H

#include <stdbool.h>
#include <stddef.h>

#define OLLAMA_MAX_NAME 200            /* bytes of a model name */
#define OLLAMA_MAX_LINE (64u * 1024)   /* bytes of one progress line */
#define OLLAMA_MAX_TAGS (8u << 20)     /* bytes of an /api/tags answer */
#define OLLAMA_MAX_MODELS 4096         /* models listed by /api/tags */
#define OLLAMA_MAX_ERROR 400           /* bytes of an error message kept */
#define OLLAMA_DIGEST_LEN 71           /* "sha256:" and 64 hex digits */

/*
 * Check a model name as written in the config: [HOST/][NAMESPACE/]NAME[:TAG],
 * 1 to OLLAMA_MAX_NAME letters, digits, '.', '_', '-', ':' and '/', starting
 * with a letter or digit, no empty path part, at most one ':' after the last
 * '/'. -1 with a static reason in *WHY otherwise.
 */
int ollama_name_valid(const char *name, const char **why);

/*
 * The name as /api/tags lists it, for comparing: lowercased, without
 * "registry.ollama.ai/" and "library/", with ":latest" when no tag is given.
 * -1 when it does not fit in CAP bytes.
 */
int ollama_name_key(const char *name, char *out, size_t cap);

/* One progress line of /api/pull. */
struct ollama_progress {
	char status[128];                 /* "pulling manifest", "success", ... ("" when absent) */
	char digest[OLLAMA_DIGEST_LEN + 1]; /* the layer being downloaded, "" when absent or invalid */
	long long total, completed;       /* -1 when absent */
	char error[OLLAMA_MAX_ERROR + 1]; /* the "error" member, "" when none */
	bool is_error;
};

/*
 * Parse one line (LEN bytes, no newline needed) into RET. -1 with a static
 * reason in *WHY when it is not a JSON object or a member has the wrong type.
 */
int ollama_progress_parse(const char *line, size_t len, struct ollama_progress *ret, const char **why);

enum ollama_stream_state {
	OLLAMA_STREAM_RUNNING = 0, /* lines so far are progress */
	OLLAMA_STREAM_SUCCESS,     /* {"status":"success"} seen */
	OLLAMA_STREAM_FAILED,      /* an error line, a bad or oversized line, or no success at the end */
};

/*
 * An /api/pull answer read incrementally: bytes are fed as they arrive, split
 * into lines in a buffer of at most OLLAMA_MAX_LINE bytes; the stream is never
 * kept whole. After SUCCESS or FAILED further bytes are ignored.
 */
struct ollama_stream {
	char *line; /* the incomplete line so far */
	size_t len, cap;
	enum ollama_stream_state state;
	char error[OLLAMA_MAX_ERROR + 1]; /* why it FAILED */
	bool remote_error;                /* ... in the endpoint's own words (an "error" line) */
	unsigned long lines;              /* complete lines parsed */
	void (*on_progress)(void *ctx, const struct ollama_progress *p); /* optional */
	void *ctx;
};

/* Start a stream; ON_PROGRESS (may be NULL) sees each progress line. */
void ollama_stream_init(struct ollama_stream *s, void (*on_progress)(void *ctx, const struct ollama_progress *p),
			void *ctx);

/* Feed LEN bytes of the answer. Returns the state after them. */
enum ollama_stream_state ollama_stream_feed(struct ollama_stream *s, const char *data, size_t len);

/* The answer ended: parse a last line without a newline; without success the stream FAILED. */
enum ollama_stream_state ollama_stream_end(struct ollama_stream *s);

void ollama_stream_free(struct ollama_stream *s);

/* One model of /api/tags. */
struct ollama_model {
	char *name;   /* as listed ("name", else "model") */
	char *key;    /* ollama_name_key of it */
	char *digest; /* "sha256:HEX", NULL when absent or not a SHA-256 digest */
};

struct ollama_tags {
	struct ollama_model *v;
	size_t n;
	size_t skipped; /* entries without a usable name */
};

/*
 * Parse an /api/tags answer ({"models":[{"name","model","digest",...}]}) of at
 * most OLLAMA_MAX_TAGS bytes. Entries that are not objects or have no valid
 * name are skipped (counted); a digest that is not 64 hex digits (with or
 * without "sha256:") is kept as NULL. -1 with a static reason in *WHY when
 * the answer is not such an object or lists more than OLLAMA_MAX_MODELS.
 */
int ollama_tags_parse(const char *body, size_t len, struct ollama_tags *ret, const char **why);

/* The model NAME (compared by ollama_name_key) in T, or NULL. */
const struct ollama_model *ollama_tags_find(const struct ollama_tags *t, const char *name);

void ollama_tags_free(struct ollama_tags *t);

#endif
