/* Management API request bodies, parsed and validated (pure, no I/O). */
#ifndef REFIT_API_REQUEST_H
#define REFIT_API_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/error.h"

#define API_MAX_BODY (64u * 1024)
#define API_MAX_NAMES 256

enum api_action { ACT_TRIGGER, ACT_ROLLBACK, ACT_PAUSE, ACT_RESUME, ACT_STATUS };

enum api_body { BODY_COMMAND, BODY_UPDATE, BODY_ROLLBACK, BODY_RELEASE };

struct api_request {
	enum api_action action;
	json_t *params; /* for the operation: {"containers":[...]?, "dry_run"?, "all"?, "target_version"?,
			 * "migrations"?, "rename_containers"?, "preserve_data"?} (owned) */
};

/*
 * Parse BODY (LEN bytes; empty means {}) of kind KIND: the fleet command
 * {"action", "target_version", "containers", "migration_config"}, POST
 * /api/v1/update {"containers", "dry_run", "target_version"} or POST /api/v1/rollback
 * {"containers"} | {"all": true}, with "restore_data", POST /api/v1/release
 * {"containers"} | {"all": true}; "force" with update's "containers". Unknown fields, wrong types, names that
 * are not container names and options this build does not have are
 * refused: -1 with ERR (a sentence for the client). On success the caller
 * frees RET->params.
 */
int api_parse(enum api_body kind, const char *body, size_t len, struct api_request *ret, struct refit_err *e);

/*
 * Parse Watchtower's ?image=a,b into {"images":[...]} (each a reference
 * string of at most 255 bytes); -1 with ERR when malformed.
 */
int api_parse_images(const char *query, json_t **ret, struct refit_err *e);

/* Watchtower's ?container=a,b: a JSON array of names (new reference), or NULL with E set. */
json_t *api_parse_names(const char *query, struct refit_err *e);

#endif
