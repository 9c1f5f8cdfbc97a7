/* Capped response bodies and headers for libcurl transfers. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "refit/base.h"
#include "refit/http.h"

/* Append a chunk of body, aborting the transfer past the cap. */
static size_t http_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_response *r = userdata;
	size_t n = size * nmemb;

	if (n > r->max_body || r->len > r->max_body - n) {
		r->too_large = true;
		return 0;
	}
	if (buf_reserve(&r->body, &r->cap, r->len + n + 1, 4096) < 0)
		return 0;
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* Forget the headers collected so far (a new hop begins). */
static void http_clear_headers(struct http_response *r)
{
	for (size_t i = 0; i < r->nhdr; i++) {
		free(r->hdr[i].name);
		free(r->hdr[i].value);
	}
	r->nhdr = 0;
}

/* Collect one header line; a status line starts a new hop. */
static size_t http_header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct http_response *r = userdata;
	size_t n = size * nitems, len = n;
	char *colon;

	r->hdr_bytes += n;
	if (r->hdr_bytes > HTTP_MAX_HEADER_BYTES) {
		r->too_large = true;
		return 0;
	}
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		http_clear_headers(r);
		return n;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	colon = memchr(buf, ':', len);
	if (!colon || r->nhdr >= HTTP_MAX_HEADERS)
		return n;

	size_t nlen = (size_t)(colon - buf);
	const char *v = colon + 1, *end = buf + len;

	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	r->hdr[r->nhdr].name = strndup(buf, nlen);
	r->hdr[r->nhdr].value = strndup(v, (size_t)(end - v));
	if (!r->hdr[r->nhdr].name || !r->hdr[r->nhdr].value) {
		free(r->hdr[r->nhdr].name);
		free(r->hdr[r->nhdr].value);
		return 0;
	}
	r->nhdr++;
	return n;
}

void http_attach(CURL *h, struct http_response *r, size_t max_body)
{
	http_response_free(r);
	r->max_body = max_body;
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
}

size_t http_feed_header(struct http_response *r, char *line, size_t n)
{
	return http_header_cb(line, 1, n, r);
}

size_t http_feed_body(struct http_response *r, char *chunk, size_t n)
{
	return http_write(chunk, 1, n, r);
}

const char *http_header(const struct http_response *r, const char *name)
{
	for (size_t i = 0; i < r->nhdr; i++)
		if (strcasecmp(r->hdr[i].name, name) == 0)
			return r->hdr[i].value;
	return NULL;
}

void http_response_free(struct http_response *r)
{
	if (!r)
		return;
	http_clear_headers(r);
	free(r->body);
	r->body = NULL;
	r->len = r->cap = 0;
	r->status = 0;
	r->too_large = false;
	r->hdr_bytes = 0;
}

const char *http_strerror(CURLcode rc, const struct http_response *r, const char *errbuf)
{
	if (r && r->too_large)
		return "response too large";
	if (errbuf && errbuf[0])
		return errbuf;
	return curl_easy_strerror(rc);
}

bool http_unreachable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
		return true;
	default:
		return false;
	}
}
