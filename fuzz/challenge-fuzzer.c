/* libFuzzer target: WWW-Authenticate challenge parsing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/challenge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort unless F is NULL or a string no longer than the input it came from. */
static void check_field(const char *f, size_t size)
{
	if (f && strlen(f) > size)
		abort();
}

/* Parse DATA as a header value; on success check the challenge's fields. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct refit_err e = { 0 };
	struct challenge c;
	char *s;

	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (challenge_parse(s, &c, &e) != 0) {
		if (c.scheme != CHALLENGE_NONE || c.realm || c.service || c.scope || c.error)
			abort(); /* not zeroed */
		if (e.kind == ERR_NONE || !e.msg[0] || !memchr(e.msg, '\0', sizeof(e.msg)))
			abort();
		free(s);
		return 0;
	}
	if (c.scheme != CHALLENGE_BASIC && c.scheme != CHALLENGE_BEARER)
		abort();
	if (c.scheme == CHALLENGE_BEARER && (!c.realm || !*c.realm))
		abort();
	if (c.scheme == CHALLENGE_BASIC && (c.service || c.scope || c.error))
		abort();
	check_field(c.realm, size);
	check_field(c.service, size);
	check_field(c.scope, size);
	check_field(c.error, size);
	challenge_free(&c);
	if (c.scheme != CHALLENGE_NONE || c.realm || c.service || c.scope || c.error)
		abort();
	free(s);
	return 0;
}
