/*
 * libFuzzer target: token endpoint answers (and the access claim of the
 * token they hold) and credential helper answers.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct refit_err e = { 0 };
	struct cred c = { 0 };
	char *token = NULL;
	long expires = 0;

	if (auth_token_parse((const char *)data, size, &token, &expires, &e) == 0) {
		/* A token we accept is safe to put in a header. */
		for (const char *p = token; *p; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
				__builtin_trap();
		if (expires < 1 || expires > 86400)
			__builtin_trap();
		{
			json_t *access = auth_token_access(token);
			int g = auth_access_grants(access, "repository:a/b:pull");

			if (g < -1 || g > 1 || (access == NULL) != (g == -1))
				__builtin_trap();
			json_decref(access);
		}
		free(token);
	}
	if (auth_helper_parse((const char *)data, size, &c, &e) == 0 && !c.password && !c.identity_token)
		__builtin_trap();
	cred_free(&c);
	return 0;
}
