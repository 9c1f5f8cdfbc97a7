/* WWW-Authenticate challenges from registries (RFC 7235 syntax). */
#ifndef REFIT_CHALLENGE_H
#define REFIT_CHALLENGE_H

#include "refit/error.h"

#define CHALLENGE_MAX 4096 /* longest accepted header value */

enum challenge_scheme {
	CHALLENGE_NONE = 0,
	CHALLENGE_BASIC,
	CHALLENGE_BEARER,
};

struct challenge {
	enum challenge_scheme scheme;
	char *realm;   /* Basic and Bearer; may be NULL for Basic */
	char *service; /* Bearer; may be NULL */
	char *scope;   /* Bearer; may be NULL */
	char *error;   /* Bearer error="insufficient_scope" etc.; may be NULL */
};

/*
 * Parse one WWW-Authenticate header value. Scheme names are
 * case-insensitive; parameter values may be tokens or quoted strings with
 * backslash escapes; parameters are separated by commas with optional
 * whitespace. When the value holds several challenges, Bearer is preferred
 * over Basic. Unknown schemes and parameters are ignored. Returns 0 and
 * fills *RET (caller frees with challenge_free), or -1 with E set when no
 * usable challenge is present or the syntax is broken.
 */
int challenge_parse(const char *value, struct challenge *ret, struct refit_err *e);

void challenge_free(struct challenge *c);

#endif
