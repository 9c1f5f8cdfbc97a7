/* Registry credentials (config, docker config.json, credential helpers, REPO_USER) and tokens. */
#ifndef REFIT_AUTH_H
#define REFIT_AUTH_H

#include <jansson.h>
#include <stddef.h>

#include "refit/config.h"
#include "refit/error.h"

#define AUTH_MAX_DOCKER_CONFIG (1u << 20)
#define AUTH_HELPER_TIMEOUT_MS 10000
#define AUTH_MAX_TOKEN_BODY (256u << 10)

struct cred {
	char *username;
	char *password;       /* secret; never logged */
	char *identity_token; /* OAuth refresh token from `docker login`; never logged */
	const char *source;   /* "config", "config.json", "helper NAME", "REPO_USER" */
};

/*
 * Find credentials for registry HOST (as in the image reference: "ghcr.io",
 * "docker.io", "127.0.0.1:5000"): the config's registry_auth, then
 * $DOCKER_CONFIG/config.json (credHelpers, credsStore, auths), then
 * REPO_USER/REPO_PASS. Returns 1 and fills *RET when found, 0 when there are
 * none, -1 with E set when a source is broken (unreadable config.json, a
 * helper that fails or hangs).
 */
int auth_lookup(const struct refit_config *cfg, const char *host, struct cred *ret, struct refit_err *e);

void cred_free(struct cred *c);

/*
 * Parse a token endpoint's JSON answer: "token" or "access_token", with
 * "expires_in" (seconds, default 60, at least 1). Returns 0 with *TOKEN
 * malloc'd, or -1 with E set.
 */
int auth_token_parse(const char *body, size_t len, char **token, long *expires_in, struct refit_err *e);

/*
 * The "access" claim of bearer TOKEN when it is a JWT (new reference), or
 * NULL when it is not one, or has no such claim: an opaque token, whose
 * grants only the registry's answers tell.
 */
json_t *auth_token_access(const char *token);

/*
 * Does ACCESS (from auth_token_access) grant SCOPE ("repository:NAME:pull",
 * the last action only)? 1 yes, 0 no, -1 when ACCESS is NULL (unknown).
 */
int auth_access_grants(json_t *access, const char *scope);

/* Parse a credential helper's `get` answer {"Username","Secret"}; -1 with E set when malformed. */
int auth_helper_parse(const char *body, size_t len, struct cred *ret, struct refit_err *e);

/* The engine's X-Registry-Auth value (base64url JSON) for C at registry HOST; malloc'd. */
char *auth_engine_header(const struct cred *c, const char *host);

/*
 * The X-Registry-Auth value for registry DOMAIN (as in a reference;
 * docker.io is the index's address) from the credentials auth_lookup
 * finds: 0 with *HDR malloc'd, or NULL when there are none; -1 with E set.
 * The caller wipes and frees *HDR.
 */
int auth_engine_header_for(const struct refit_config *cfg, const char *domain, char **hdr, struct refit_err *e);

/* Base64 of "USER:PASS" for a Basic Authorization header; malloc'd. */
char *auth_basic(const char *user, const char *pass);

#endif
