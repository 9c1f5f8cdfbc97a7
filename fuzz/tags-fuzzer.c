/* libFuzzer target: a tags/list answer and its Link header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/semver.h"
#include "refit/tags.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * DATA is "LINK\nBODY": the first line is the Link header's value, the rest
 * the body. Every tag kept must be a valid tag; a next page must be a path or
 * an http(s) URL without spaces.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t llen = nl ? (size_t)(nl - data) : size;
	char *link = malloc(llen + 1), *next = (char *)"unset";
	struct refit_err er = { 0 };
	char *err = er.msg;
	struct tag_list l = { 0 };
	int rc;

	if (!link)
		return 0;
	memcpy(link, data, llen);
	link[llen] = '\0';
	rc = tags_parse_link(link, &next, &er);
	if (rc < 0 && (next || !err[0]))
		abort();
	if (rc == 0 && next) {
		if (strlen(next) == 0 || strlen(next) > TAGS_MAX_LINK || strpbrk(next, " \t\r\n") ||
		    (next[0] != '/' && strncasecmp(next, "http://", 7) != 0 && strncasecmp(next, "https://", 8) != 0))
			abort();
		free(next);
	}
	free(link);
	if (nl) {
		/* Twice: a second page appends to the first. */
		for (int page = 0; page < 2; page++) {
			size_t before = l.n;

			if (tags_parse_body((const char *)nl + 1, size - llen - 1, &l, &er) < 0) {
				if (l.n != before || !err[0])
					abort();
			}
		}
		if (l.n > TAGS_MAX_TOTAL)
			abort();
		for (size_t i = 0; i < l.n; i++)
			if (!tag_valid(l.v[i]))
				abort();
	}
	tag_list_free(&l);
	return 0;
}
