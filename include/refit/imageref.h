/* Image references, parsed and normalised exactly as Docker does. */
#ifndef REFIT_IMAGEREF_H
#define REFIT_IMAGEREF_H

#include <stddef.h>

#include "refit/error.h"

#define IMAGEREF_MAX 1024 /* longest accepted reference string */

/*
 * A normalised reference. "nginx" becomes domain "docker.io", path
 * "library/nginx", tag "latest", digest NULL. "ghcr.io/a/b@sha256:..." has
 * tag NULL and a digest; "a/b:1@sha256:..." has both.
 */
struct imageref {
	char *domain; /* "docker.io", "ghcr.io", "127.0.0.1:5000", "[::1]:5000" */
	char *path;   /* "library/nginx", "its-define/avatar-controller" */
	char *tag;    /* NULL when only a digest was given */
	char *digest; /* "sha256:<64 hex>" or NULL */
};

/*
 * Parse S into *RET. On failure returns -1, fills E (ERR_USAGE) with the
 * reason and leaves *RET zeroed. On success *RET owns its strings.
 * A reference with neither tag nor digest gets tag "latest".
 */
int imageref_parse(const char *s, struct imageref *ret, struct refit_err *e);

/* Free the strings of R (R itself is not freed); NULL-safe. */
void imageref_free(struct imageref *r);

/* "docker.io/library/nginx": domain/path, malloc'd. */
char *imageref_repository(const struct imageref *r);

/* Full normalised form: "docker.io/library/nginx:latest[@sha256:...]", malloc'd. */
char *imageref_string(const struct imageref *r);

/* Host to talk to for R's registry: "registry-1.docker.io" for docker.io, else the domain. */
const char *imageref_registry_host(const struct imageref *r);

#endif
