/* Unit tests: Ollama model names, /api/pull progress lines and streams (split, cut, oversized), /api/tags answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "refit/ollama.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_names(void **state)
{
	static const char *const good[] = {
		"llama3.2:3b", "mistral", "codellama", "library/mistral:7b-instruct-q4_K_M",
		"registry.ollama.ai/library/llama3:latest", "host:5000/ns/m:tag",
		"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "a", "9b",
	};
	static const char *const bad[] = {
		"", "-x", ".x", "a b", "a;rm -rf", "a:", "a::b", "a:b:c", "/a", "a/", "a//b", "ns/:tag", "a:b/c",
		"x/a:1/b", "h\xc3\xa9llo", "a\nb", "a\"b", "a?b", "$(id)",
	};
	char longname[OLLAMA_MAX_NAME + 2];
	const char *why = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (ollama_name_valid(good[i], &why) != 0)
			fail_msg("rejected %s", good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (ollama_name_valid(bad[i], &why) == 0)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(why);
		assert_non_null(strstr(why, "model name"));
	}
	memset(longname, 'a', sizeof(longname) - 1);
	longname[OLLAMA_MAX_NAME] = '\0';
	assert_int_equal(ollama_name_valid(longname, &why), 0);
	longname[OLLAMA_MAX_NAME] = 'a';
	longname[OLLAMA_MAX_NAME + 1] = '\0';
	assert_int_equal(ollama_name_valid(longname, &why), -1);
	assert_int_equal(ollama_name_valid(NULL, &why), -1);
}

static void test_name_key(void **state)
{
	char k[64], tiny[8];

	(void)state;
	assert_int_equal(ollama_name_key("mistral", k, sizeof(k)), 0);
	assert_string_equal(k, "mistral:latest");
	assert_int_equal(ollama_name_key("Library/Mistral", k, sizeof(k)), 0);
	assert_string_equal(k, "mistral:latest");
	assert_int_equal(ollama_name_key("registry.ollama.ai/library/llama3:8b", k, sizeof(k)), 0);
	assert_string_equal(k, "llama3:8b");
	assert_int_equal(ollama_name_key("host:5000/ns/m", k, sizeof(k)), 0);
	assert_string_equal(k, "host:5000/ns/m:latest");
	assert_int_equal(ollama_name_key("llama3.2:3b", k, sizeof(k)), 0);
	assert_string_equal(k, "llama3.2:3b");
	assert_int_equal(ollama_name_key("mistral", tiny, sizeof(tiny)), -1);
}

static void test_progress_lines(void **state)
{
	struct ollama_progress p;
	const char *why;
	const char *line;

	(void)state;
	line = "{\"status\":\"pulling manifest\"}";
	assert_int_equal(ollama_progress_parse(line, strlen(line), &p, &why), 0);
	assert_string_equal(p.status, "pulling manifest");
	assert_false(p.is_error);
	assert_true(p.total == -1 && p.completed == -1);
	assert_string_equal(p.digest, "");

	line = "{\"status\":\"pulling 8eeb52dfb3bb\",\"digest\":\"sha256:" HEX64 "\",\"total\":4661211424,"
	       "\"completed\":1048576}\r";
	assert_int_equal(ollama_progress_parse(line, strlen(line), &p, &why), 0);
	assert_string_equal(p.digest, "sha256:" HEX64);
	assert_true(p.total == 4661211424LL);
	assert_true(p.completed == 1048576);

	line = "{\"status\":\"downloading\",\"digest\":\"not-a-digest\",\"total\":10.0,\"completed\":null}";
	assert_int_equal(ollama_progress_parse(line, strlen(line), &p, &why), 0);
	assert_string_equal(p.digest, "");
	assert_true(p.total == 10 && p.completed == -1);

	line = "{\"error\":\"pull model manifest: file does not exist\"}";
	assert_int_equal(ollama_progress_parse(line, strlen(line), &p, &why), 0);
	assert_true(p.is_error);
	assert_string_equal(p.error, "pull model manifest: file does not exist");

	line = "{\"error\":\"\"}";
	assert_int_equal(ollama_progress_parse(line, strlen(line), &p, &why), 0);
	assert_true(p.is_error);
	assert_true(strlen(p.error) > 0);

	line = "{\"error\":\"two\\nlines\\u0000nul\"}";
	assert_int_equal(ollama_progress_parse(line, strlen(line), &p, &why), 0);
	assert_null(strchr(p.error, '\n'));
	assert_non_null(strstr(p.error, "two lines"));

	/* Wrong types, not objects, nothing to say. */
	static const char *const bad[] = {
		"{\"status\":42}", "{\"status\":\"x\",\"total\":\"10\"}", "{\"status\":\"x\",\"total\":-5}",
		"{\"status\":\"x\",\"completed\":true}", "{\"error\":{\"m\":1}}", "{\"status\":\"x\",\"digest\":7}",
		"[\"status\"]", "\"success\"", "success", "", "{", "{\"status\":\"x\"} trailing",
		"{\"completed\":1}", "{\"status\":\"a\",\"status\":\"b\"}", "<html>502</html>",
		/* counts past 2^53 bytes: the progress arithmetic would overflow */
		"{\"status\":\"x\",\"total\":9007199254740993}", "{\"status\":\"x\",\"completed\":9.2e18}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (ollama_progress_parse(bad[i], strlen(bad[i]), &p, &why) == 0)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(why);
		assert_false(p.is_error);
	}

	/* A long status is cut, never overflows. */
	{
		char big[1024];

		snprintf(big, sizeof(big), "{\"status\":\"%0600d\"}", 7);
		assert_int_equal(ollama_progress_parse(big, strlen(big), &p, &why), 0);
		assert_int_equal(strlen(p.status), sizeof(p.status) - 1);
	}
}

static const char stream_ok[] =
	"{\"status\":\"pulling manifest\"}\n"
	"{\"status\":\"pulling 8eeb52dfb3bb\",\"digest\":\"sha256:" HEX64 "\",\"total\":100,\"completed\":0}\n"
	"\r\n"
	"{\"status\":\"pulling 8eeb52dfb3bb\",\"digest\":\"sha256:" HEX64 "\",\"total\":100,\"completed\":100}\r\n"
	"{\"status\":\"verifying sha256 digest\"}\n"
	"{\"status\":\"writing manifest\"}\n"
	"{\"status\":\"success\"}\n";

/* Count progress lines seen. */
static void count_progress(void *ctx, const struct ollama_progress *p)
{
	int *n = ctx;

	(void)p;
	(*n)++;
}

static void test_stream_whole_and_split(void **state)
{
	struct ollama_stream s;
	int seen = 0;

	(void)state;
	ollama_stream_init(&s, count_progress, &seen);
	assert_int_equal(ollama_stream_feed(&s, stream_ok, strlen(stream_ok)), OLLAMA_STREAM_SUCCESS);
	assert_int_equal(ollama_stream_end(&s), OLLAMA_STREAM_SUCCESS);
	assert_int_equal(seen, 6);
	assert_int_equal(s.lines, 6);
	ollama_stream_free(&s);

	/* Every split point, and one byte at a time. */
	for (size_t cut = 1; cut < strlen(stream_ok); cut += 7) {
		seen = 0;
		ollama_stream_init(&s, count_progress, &seen);
		assert_int_equal(ollama_stream_feed(&s, stream_ok, cut), cut == strlen(stream_ok) ? OLLAMA_STREAM_SUCCESS :
											     OLLAMA_STREAM_RUNNING);
		ollama_stream_feed(&s, stream_ok + cut, strlen(stream_ok) - cut);
		assert_int_equal(ollama_stream_end(&s), OLLAMA_STREAM_SUCCESS);
		assert_int_equal(seen, 6);
		ollama_stream_free(&s);
	}
	seen = 0;
	ollama_stream_init(&s, count_progress, &seen);
	for (size_t i = 0; i < strlen(stream_ok); i++)
		ollama_stream_feed(&s, stream_ok + i, 1);
	assert_int_equal(s.state, OLLAMA_STREAM_SUCCESS);
	assert_int_equal(seen, 6);
	ollama_stream_free(&s);

	/* The last line without a newline counts at the end. */
	ollama_stream_init(&s, NULL, NULL);
	ollama_stream_feed(&s, stream_ok, strlen(stream_ok) - 1);
	assert_int_equal(s.state, OLLAMA_STREAM_RUNNING);
	assert_int_equal(ollama_stream_end(&s), OLLAMA_STREAM_SUCCESS);
	ollama_stream_free(&s);

	/* Bytes after success are ignored, garbage included. */
	ollama_stream_init(&s, NULL, NULL);
	ollama_stream_feed(&s, stream_ok, strlen(stream_ok));
	assert_int_equal(ollama_stream_feed(&s, "garbage\n", 8), OLLAMA_STREAM_SUCCESS);
	assert_int_equal(ollama_stream_end(&s), OLLAMA_STREAM_SUCCESS);
	ollama_stream_free(&s);
}

static void test_stream_errors(void **state)
{
	struct ollama_stream s;
	const char *err = "{\"status\":\"pulling manifest\"}\n{\"error\":\"pull model manifest: file does not exist\"}\n"
			  "{\"status\":\"success\"}\n";
	const char *cut = "{\"status\":\"pulling manifest\"}\n{\"status\":\"succ";
	const char *garbage = "{\"status\":\"pulling manifest\"}\n<html>Bad Gateway</html>\n{\"status\":\"success\"}\n";
	const char *nosuccess = "{\"status\":\"pulling manifest\"}\n{\"status\":\"writing manifest\"}\n";

	(void)state;
	ollama_stream_init(&s, NULL, NULL);
	assert_int_equal(ollama_stream_feed(&s, err, strlen(err)), OLLAMA_STREAM_FAILED);
	assert_string_equal(s.error, "pull model manifest: file does not exist");
	assert_true(s.remote_error);
	assert_int_equal(ollama_stream_end(&s), OLLAMA_STREAM_FAILED);
	ollama_stream_free(&s);

	/* An error body without a newline (an HTTP error's JSON). */
	ollama_stream_init(&s, NULL, NULL);
	ollama_stream_feed(&s, "{\"error\":\"model is required\"}", 29);
	assert_int_equal(ollama_stream_end(&s), OLLAMA_STREAM_FAILED);
	assert_string_equal(s.error, "model is required");
	assert_true(s.remote_error);
	ollama_stream_free(&s);

	ollama_stream_init(&s, NULL, NULL);
	assert_int_equal(ollama_stream_feed(&s, cut, strlen(cut)), OLLAMA_STREAM_RUNNING);
	assert_int_equal(ollama_stream_end(&s), OLLAMA_STREAM_FAILED);
	assert_non_null(strstr(s.error, "not a JSON object"));
	assert_false(s.remote_error);
	ollama_stream_free(&s);

	ollama_stream_init(&s, NULL, NULL);
	assert_int_equal(ollama_stream_feed(&s, garbage, strlen(garbage)), OLLAMA_STREAM_FAILED);
	assert_non_null(strstr(s.error, "not a JSON object"));
	ollama_stream_free(&s);

	ollama_stream_init(&s, NULL, NULL);
	assert_int_equal(ollama_stream_feed(&s, nosuccess, strlen(nosuccess)), OLLAMA_STREAM_RUNNING);
	assert_int_equal(ollama_stream_end(&s), OLLAMA_STREAM_FAILED);
	assert_string_equal(s.error, "the pull ended without success");
	ollama_stream_free(&s);

	ollama_stream_init(&s, NULL, NULL);
	assert_int_equal(ollama_stream_end(&s), OLLAMA_STREAM_FAILED);
	assert_string_equal(s.error, "the pull answered nothing");
	ollama_stream_free(&s);

	ollama_stream_init(&s, NULL, NULL);
	ollama_stream_feed(&s, "\n\r\n  \n", 6);
	assert_int_equal(ollama_stream_end(&s), OLLAMA_STREAM_FAILED);
	assert_string_equal(s.error, "the pull answered nothing");
	ollama_stream_free(&s);
}

static void test_stream_oversized(void **state)
{
	struct ollama_stream s;
	char *chunk = malloc(4096);
	char *line = malloc(OLLAMA_MAX_LINE + 2);
	size_t fed = 0;

	(void)state;
	assert_non_null(chunk);
	assert_non_null(line);
	memset(chunk, 'x', 4096);
	/* A line that never ends: stopped at the cap, the buffer never past it. */
	ollama_stream_init(&s, NULL, NULL);
	ollama_stream_feed(&s, "{\"status\":\"", 11);
	while (fed < 4 * OLLAMA_MAX_LINE && s.state == OLLAMA_STREAM_RUNNING) {
		ollama_stream_feed(&s, chunk, 4096);
		fed += 4096;
	}
	assert_int_equal(s.state, OLLAMA_STREAM_FAILED);
	assert_non_null(strstr(s.error, "64 KiB"));
	assert_true(fed <= OLLAMA_MAX_LINE + 4096);
	assert_true(s.cap <= 2 * OLLAMA_MAX_LINE);
	ollama_stream_free(&s);

	/* One oversized line in a single chunk, with its newline. */
	memset(line, ' ', OLLAMA_MAX_LINE + 1);
	line[OLLAMA_MAX_LINE + 1] = '\n';
	ollama_stream_init(&s, NULL, NULL);
	assert_int_equal(ollama_stream_feed(&s, line, OLLAMA_MAX_LINE + 2), OLLAMA_STREAM_FAILED);
	ollama_stream_free(&s);

	/* Exactly OLLAMA_MAX_LINE bytes is still a line. */
	memset(line, ' ', OLLAMA_MAX_LINE);
	memcpy(line, "{\"status\":\"success\"}", 20);
	line[OLLAMA_MAX_LINE] = '\n';
	ollama_stream_init(&s, NULL, NULL);
	ollama_stream_feed(&s, line, 100);
	assert_int_equal(ollama_stream_feed(&s, line + 100, OLLAMA_MAX_LINE + 1 - 100), OLLAMA_STREAM_SUCCESS);
	ollama_stream_free(&s);
	free(chunk);
	free(line);
}

static void test_tags(void **state)
{
	struct ollama_tags t;
	const struct ollama_model *m;
	const char *why;
	const char *body =
		"{\"models\":["
		"{\"name\":\"llama3.2:3b\",\"model\":\"llama3.2:3b\",\"modified_at\":\"2024-10-01T00:00:00Z\","
		"\"size\":2019393189,\"digest\":\"" HEX64 "\",\"details\":{\"format\":\"gguf\"}},"
		"{\"name\":\"mistral:latest\",\"digest\":\"sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789\"},"
		"{\"model\":\"codellama:7b\",\"digest\":\"" HEX64 "\"},"
		"{\"name\":42,\"digest\":\"" HEX64 "\"},"
		"\"not an object\","
		"{\"name\":\"bad name;x\"},"
		"{\"name\":\"nodigest\"},"
		"{\"name\":\"shortdigest\",\"digest\":\"abc\"},"
		"{\"name\":\"numdigest\",\"digest\":12}"
		"]}";

	(void)state;
	assert_int_equal(ollama_tags_parse(body, strlen(body), &t, &why), 0);
	assert_int_equal(t.n, 6);
	assert_int_equal(t.skipped, 3);
	m = ollama_tags_find(&t, "llama3.2:3b");
	assert_non_null(m);
	assert_string_equal(m->digest, "sha256:" HEX64);
	m = ollama_tags_find(&t, "mistral");
	assert_non_null(m);
	assert_string_equal(m->digest, "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	assert_non_null(ollama_tags_find(&t, "registry.ollama.ai/library/MISTRAL:latest"));
	assert_non_null(ollama_tags_find(&t, "codellama:7b"));
	assert_null(ollama_tags_find(&t, "codellama"));
	assert_null(ollama_tags_find(&t, "mistral:7b"));
	m = ollama_tags_find(&t, "nodigest");
	assert_non_null(m);
	assert_null(m->digest);
	assert_null(ollama_tags_find(&t, "shortdigest")->digest);
	assert_null(ollama_tags_find(&t, "numdigest")->digest);
	ollama_tags_free(&t);

	/* No models, and "models": null (what an empty Ollama has answered). */
	assert_int_equal(ollama_tags_parse("{\"models\":[]}", 13, &t, &why), 0);
	assert_int_equal(t.n, 0);
	assert_null(ollama_tags_find(&t, "mistral"));
	ollama_tags_free(&t);
	assert_int_equal(ollama_tags_parse("{\"models\":null}", 15, &t, &why), 0);
	assert_int_equal(t.n, 0);
	ollama_tags_free(&t);

	static const char *const bad[] = {
		"", "[]", "{}", "{\"models\":{}}", "{\"models\":\"x\"}", "{\"models\":[", "null", "<html>",
		"{\"models\":[]} x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (ollama_tags_parse(bad[i], strlen(bad[i]), &t, &why) == 0)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(why);
		assert_int_equal(t.n, 0);
		assert_null(t.v);
	}
	assert_int_equal(ollama_tags_parse(NULL, 0, &t, &why), -1);
	assert_int_equal(ollama_tags_parse("{}", OLLAMA_MAX_TAGS + 1, &t, &why), -1);
	assert_non_null(strstr(why, "8 MiB"));
}

/* An answer listing N models m0..m(N-1). */
static char *many(size_t n)
{
	size_t cap = 64 + n * 120, len = 0;
	char *b = malloc(cap);

	len += (size_t)snprintf(b + len, cap - len, "{\"models\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(b + len, cap - len, "%s{\"name\":\"m%zu:latest\",\"digest\":\"%s\"}", i ? "," : "",
					i, HEX64);
	snprintf(b + len, cap - len, "]}");
	return b;
}

static void test_tags_many(void **state)
{
	struct ollama_tags t;
	const char *why;
	char *b = many(OLLAMA_MAX_MODELS);

	(void)state;
	assert_int_equal(ollama_tags_parse(b, strlen(b), &t, &why), 0);
	assert_int_equal(t.n, OLLAMA_MAX_MODELS);
	assert_non_null(ollama_tags_find(&t, "m4095"));
	assert_non_null(ollama_tags_find(&t, "m0"));
	assert_null(ollama_tags_find(&t, "m4096"));
	ollama_tags_free(&t);
	free(b);
	b = many(OLLAMA_MAX_MODELS + 1);
	assert_int_equal(ollama_tags_parse(b, strlen(b), &t, &why), -1);
	assert_non_null(strstr(why, "4096"));
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_name_key),
		cmocka_unit_test(test_progress_lines),
		cmocka_unit_test(test_stream_whole_and_split),
		cmocka_unit_test(test_stream_errors),
		cmocka_unit_test(test_stream_oversized),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_tags_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
