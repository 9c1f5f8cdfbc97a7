/* Capped HTTP responses on top of libcurl easy handles. */
#ifndef REFIT_HTTP_H
#define REFIT_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_HEADER_BYTES (64 * 1024)

struct http_header {
	char *name;
	char *value;
};

/* One response: status, headers of the last hop, and a body no larger than max_body. */
struct http_response {
	long status;
	char *body; /* NUL-terminated; NULL when empty */
	size_t len;
	size_t cap;
	size_t max_body;
	bool too_large; /* the body or the headers passed their cap: transfer aborted */
	struct http_header hdr[HTTP_MAX_HEADERS];
	size_t nhdr;
	size_t hdr_bytes;
};

/*
 * Point H's write and header callbacks at R, which is reset first; the
 * transfer is aborted once the body passes MAX_BODY bytes.
 */
void http_attach(CURL *h, struct http_response *r, size_t max_body);

/*
 * Give R one header line (with its CRLF) or one chunk of body, as libcurl
 * does during a transfer; returns N when taken, another value to abort.
 * For tests and fuzzing: transfers use http_attach().
 */
size_t http_feed_header(struct http_response *r, char *line, size_t n);
size_t http_feed_body(struct http_response *r, char *chunk, size_t n);

/* Value of header NAME (case-insensitive) of the last hop, or NULL. */
const char *http_header(const struct http_response *r, const char *name);

/* Drop body and headers; R can be attached again. NULL-safe. */
void http_response_free(struct http_response *r);

/* Describe a failed transfer in BUF: curl's message, or "response too large". */
const char *http_strerror(CURLcode rc, const struct http_response *r, const char *errbuf);

/* True when RC means the peer could not be reached at all (refused, DNS, timeout). */
bool http_unreachable(CURLcode rc);

#endif
