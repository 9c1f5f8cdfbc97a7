/* libFuzzer target: image reference parsing, and that the normal form parses to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/imageref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* True when A and B are both NULL or equal strings. */
static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Parse DATA as a reference; on success check the fields and the round trip. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct refit_err e = { 0 };
	struct imageref r, again;
	char *s, *str, *str2, *repo;
	const char *host;

	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (imageref_parse(s, &r, &e) != 0) {
		if (r.domain || r.path || r.tag || r.digest)
			abort(); /* not zeroed */
		if (e.kind != ERR_USAGE || !e.msg[0] || !memchr(e.msg, '\0', sizeof(e.msg)))
			abort();
		free(s);
		return 0;
	}
	if (!r.domain || !r.path || !*r.domain || !*r.path || (!r.tag && !r.digest))
		abort();
	if (strlen(r.path) > 255 || (r.tag && (!*r.tag || strlen(r.tag) > 128)))
		abort();
	if (strchr(r.domain, '/') || (r.tag && strpbrk(r.tag, ":@/")) ||
	    (r.digest && strpbrk(r.digest, "@/")))
		abort();

	repo = imageref_repository(&r);
	str = imageref_string(&r);
	host = imageref_registry_host(&r);
	if (!repo || !str || !host || !*host)
		abort();
	if (strncmp(str, repo, strlen(repo)) != 0 || strlen(str) > IMAGEREF_MAX)
		abort();

	/* the normal form is a fixed point */
	if (imageref_parse(str, &again, &e) != 0)
		abort();
	if (!same(r.domain, again.domain) || !same(r.path, again.path) ||
	    !same(r.tag, again.tag) || !same(r.digest, again.digest))
		abort();
	str2 = imageref_string(&again);
	if (!str2 || strcmp(str, str2) != 0)
		abort();

	free(str2);
	free(str);
	free(repo);
	imageref_free(&again);
	imageref_free(&r);
	if (r.domain || r.path || r.tag || r.digest)
		abort();
	free(s);
	return 0;
}
