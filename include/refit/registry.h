/* Registry client: manifest digests of many references, concurrently, with auth. */
#ifndef REFIT_REGISTRY_H
#define REFIT_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/config.h"
#include "refit/error.h"
#include "refit/imageref.h"
#include "refit/tags.h"

#define REGISTRY_MAX_MANIFEST (4u << 20)

/* One reference to resolve; the caller owns REF and frees DIGEST. */
struct digest_query {
	const struct imageref *ref;
	char *digest;   /* "sha256:..." on success */
	int err_kind;   /* ERR_NONE on success, ERR_UNREACHABLE or ERR_FAILED */
	char error[300];
};

/* Requests sent, by kind, since the client was made. */
#define REGISTRY_TOKEN_URL_MAX 4096 /* a token request with several scopes is split to stay under this */
#define REGISTRY_TOKEN_SCOPES 256   /* scopes in one token request at most */

struct registry_stats {
	unsigned long ping;
	unsigned long token;
	unsigned long manifest;
	unsigned long tags; /* tags/list pages */
};

struct registry;

/*
 * A client for every registry CFG lets refit reach. It keeps connections,
 * what each registry asked for (scheme, challenge, credentials) and bearer
 * tokens until they expire, so later passes cost one request per reference.
 * CFG must outlive the client.
 */
int registry_new(struct registry **ret, const struct refit_config *cfg, struct refit_err *e);

void registry_free(struct registry *r);

/*
 * Fill each query's digest or error. Runs up to cfg->concurrency requests
 * at once; a reference's manifest is asked for once (HEAD, GET only when
 * HEAD gives no Docker-Content-Digest). Callers pass distinct references.
 */
void registry_resolve(struct registry *r, struct digest_query *q, size_t n);

/*
 * What the pass that just ended asked for (N references as strings), kept
 * with the client: the next pass on it asks them ahead, while the engine
 * lists its containers (check.c). At most REGISTRY_REMEMBER_MAX are kept.
 * registry_remembered: a copy of them (new reference; the caller may
 * change it), or NULL before any pass.
 */
#define REGISTRY_REMEMBER_MAX 10000
void registry_remember(struct registry *r, char *const *refs, size_t n);
json_t *registry_remembered(struct registry *r);

/*
 * One repository whose tags to list (DQ.REF's tag and digest are ignored);
 * DQ.err_kind and DQ.error say why not. The caller frees TAGS.
 */
struct tags_query {
	struct digest_query dq;
	struct tag_list tags; /* in the registry's order; truncated past TAGS_MAX_TOTAL or TAGS_MAX_PAGES */
	size_t pages;         /* pages fetched */
};

/*
 * List the tags of each query's repository with GET /v2/NAME/tags/list?n=
 * cfg->registry_page_size, following the Link header's rel="next" on the
 * same host, with the same auth and token cache as the manifest requests.
 * At most TAGS_MAX_PAGES pages and TAGS_MAX_TOTAL tags per repository.
 */
void registry_list_tags(struct registry *r, struct tags_query *q, size_t n);

const struct registry_stats *registry_stats(const struct registry *r);

/* True when "sha256:<64 lowercase hex>" (or sha512 with 128). */
int registry_digest_valid(const char *d);

/* The first 12 hex digits of digest D ("sha256:...") in BUF, for tables; "-" when D is NULL. */
const char *registry_digest_short(const char *d, char buf[16]);

/* Is BODY (LEN bytes) a manifest or an index: a JSON object with schemaVersion 1 or 2? */
bool registry_manifest_shaped(const char *body, size_t len);

#endif
