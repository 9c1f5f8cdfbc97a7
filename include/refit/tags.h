/* Tag lists: the registry's tags/list answer and its Link pagination, parsed (pure, no I/O). */
#ifndef REFIT_TAGS_H
#define REFIT_TAGS_H

#include <stdbool.h>
#include <stddef.h>

#define TAGS_MAX_TOTAL 10000        /* tags kept per repository; more are dropped (truncated) */
#define TAGS_MAX_PAGES 100          /* pages asked for per repository */
#define TAGS_MAX_BODY (2u << 20)    /* bytes of one page */
#define TAGS_MAX_LINK 2048          /* bytes of a next-page reference */
#define TAGS_DEFAULT_PAGE 100       /* tags asked for per page (?n=) */

/* A growing list of tags; free with tag_list_free. */
struct tag_list {
	char **v;
	size_t n;
	bool truncated; /* TAGS_MAX_TOTAL was reached */
};

/*
 * Append the tags of one tags/list answer {"name": ..., "tags": [...]}
 * (BODY, LEN bytes) to L: entries that are not valid tags are skipped, and
 * at most TAGS_MAX_TOTAL are kept in all ("tags": null is an empty page).
 * -1 with ERR when the body is not that shape.
 */
int tags_parse_body(const char *body, size_t len, struct tag_list *l, struct refit_err *e);

/*
 * The rel="next" target of Link header value LINK, e.g.
 * `</v2/x/tags/list?n=100&last=b>; rel="next"`: *RET gets a copy (a path or
 * an absolute http(s) URL, at most TAGS_MAX_LINK bytes, printable, no
 * spaces), or NULL when there is no next page. -1 with ERR when the header
 * is malformed or the target unusable.
 */
int tags_parse_link(const char *link, char **ret, struct refit_err *e);

void tag_list_free(struct tag_list *l);

#endif
