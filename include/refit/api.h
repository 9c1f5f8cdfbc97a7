/* The management API over HTTP (libmicrohttpd). */
#ifndef REFIT_API_H
#define REFIT_API_H

#include <pthread.h>

#include "refit/config.h"
#include "refit/error.h"
#include "refit/ops.h"

struct api;

/*
 * Listen on cfg->api.listen. Every endpoint but GET /health needs
 * "Authorization: Bearer TOKEN"; without a token refit refuses to listen
 * anywhere but loopback (ERR_USAGE). The token comes from api.token or
 * api.token_file (read once here). CFG must stay valid while the API runs.
 */
int api_start(struct api **ret, const struct refit_config *cfg, pthread_rwlock_t *cfg_lock, struct ops *ops,
	      struct refit_err *e);

/* Stop listening; requests in progress are finished first. NULL-safe. */
void api_stop(struct api *a);

/*
 * Take CFG's API token from now on (after a reload). On error (the file
 * unreadable, the token too short, none for a non-loopback api.listen) the
 * old one stays.
 */
int api_reload_token(struct api *a, const struct refit_config *cfg, struct refit_err *e);

/* The configuration was replaced: the registry client GET /api/v1/containers keeps is made anew from it. */
void api_config_changed(struct api *a);

#endif
