/*
 * libFuzzer target: a registry's answer to a manifest request as refit reads
 * it. The input is a header block ("HTTP/1.1 200", "Name: value" lines, a
 * blank line) and a body, fed in the pieces libcurl would hand over; then
 * the Docker-Content-Digest is validated and the body judged as a manifest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/http.h"
#include "refit/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BODY (64 * 1024) /* a small cap, so the fuzzer reaches it */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_response r = { 0 };
	char *copy = malloc(size + 1);
	char *p, *end, *sep;
	const char *dcd;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	r.max_body = MAX_BODY;
	p = copy;
	end = copy + size;
	sep = memmem(copy, size, "\n\n", 2);
	/* header lines, each with its line end */
	while (p < (sep ? sep + 1 : end)) {
		char *nl = memchr(p, '\n', (size_t)((sep ? sep + 1 : end) - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)((sep ? sep + 1 : end) - p);

		if (http_feed_header(&r, p, n) != n)
			break;
		p += n;
	}
	if (r.nhdr > HTTP_MAX_HEADERS || r.hdr_bytes > HTTP_MAX_HEADER_BYTES + size)
		__builtin_trap();
	for (size_t i = 0; i < r.nhdr; i++)
		if (strchr(r.hdr[i].name, ':') || strchr(r.hdr[i].name, '\n'))
			__builtin_trap(); /* a name never holds the separator */
	/* the body, in chunks of varying size */
	if (sep) {
		char *b = sep + 2;
		size_t chunk = 1;

		while (b < end) {
			size_t n = (size_t)(end - b) < chunk ? (size_t)(end - b) : chunk;

			if (http_feed_body(&r, b, n) != n)
				break;
			b += n;
			chunk = chunk * 3 + 1;
		}
		if (r.len > MAX_BODY || (r.body && r.body[r.len] != '\0'))
			__builtin_trap();
	}
	dcd = http_header(&r, "Docker-Content-Digest");
	if (dcd && registry_digest_valid(dcd) && strncmp(dcd, "sha256:", 7) != 0 && strncmp(dcd, "sha512:", 7) != 0)
		__builtin_trap();
	if (r.body)
		(void)registry_manifest_shaped(r.body, r.len);
	http_response_free(&r);
	free(copy);
	return 0;
}
