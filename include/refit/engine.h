/* Docker Engine API client over a unix socket or TCP (optionally TLS). */
#ifndef REFIT_ENGINE_H
#define REFIT_ENGINE_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/error.h"

/* Docker 19.03 (1.40) to Docker 29 and the API versions documented after it (1.56). */
#define ENGINE_API_MIN "1.40"
#define ENGINE_API_MAX "1.56"

struct engine;

/*
 * Connect to DOCKER_HOST (unix:///path, tcp://host:port; NULL means
 * unix:///var/run/docker.sock) and negotiate the API version with GET
 * /version: the engine's own version, capped at ENGINE_API_MAX. tcp:// uses
 * TLS when DOCKER_TLS_VERIFY is set, with ca.pem, cert.pem and key.pem from
 * DOCKER_CERT_PATH (default ~/.docker). ERR_UNREACHABLE when nothing answers.
 */
int engine_open(struct engine **ret, const char *docker_host, struct refit_err *e);

/*
 * Another connection to LIKE's engine, its API version and what LIKE learned
 * of the engine taken over (no GET /version): for a thread of its own.
 */
int engine_clone(struct engine **ret, const struct engine *like, struct refit_err *e);

void engine_close(struct engine *en);

/*
 * The API version to speak with an engine whose /version gives API (its
 * newest) and MIN_API (its oldest, NULL when not given): API capped at
 * ENGINE_API_MAX, into OUT. An engine older than ENGINE_API_MIN, or one
 * that refuses every version up to ENGINE_API_MAX (Docker 29 refuses
 * below 1.44), is an error saying which; nothing is written to OUT then
 * unless it fits.
 */
int engine_negotiate(const char *api, const char *min_api, char *out, size_t outlen, struct refit_err *e);

/* The negotiated API version, "1.41". */
const char *engine_api_version(const struct engine *en);

/* The engine's own version string from /version, "20.10.24". */
const char *engine_server_version(const struct engine *en);

/*
 * Does the engine keep its images in the containerd image store (Docker
 * 29's default for new installs)? There an image's ID is the digest of the
 * manifest or index its name points at. Asked once (GET /info); false
 * while /info does not answer.
 */
bool engine_containerd_store(struct engine *en);

/* The same read from a GET /info answer INFO: DriverStatus has driver-type io.containerd.snapshotter.v1. */
bool engine_info_containerd_store(json_t *info);

/*
 * GET PATH (below the version prefix, e.g. "/containers/json?all=1") and
 * parse the JSON answer into *RET (new reference). Answers of 400 and up
 * become ERR_FAILED with the engine's message; ERR_UNREACHABLE when the
 * engine cannot be reached.
 */
int engine_get_json(struct engine *en, const char *path, json_t **ret, struct refit_err *e);

/*
 * engine_get_json on a thread of its own, over a connection of its own
 * (engine_clone of LIKE), while the caller asks the engine something else:
 * engine_get_start starts it (PATH is copied), engine_get_join waits for
 * its answer and returns as engine_get_json would. Every start is joined
 * once. When no thread could be started, the join asks on LIKE itself.
 */
struct engine_get {
	pthread_t thread;
	bool running;
	struct engine *en;
	char path[512];
	json_t *ans;
	struct refit_err e;
	int rc;
};
void engine_get_start(struct engine_get *g, struct engine *like, const char *path);
int engine_get_join(struct engine_get *g, struct engine *like, json_t **ret, struct refit_err *e);

/*
 * METHOD PATH (below the version prefix) with an optional JSON BODY,
 * waiting at most TIMEOUT seconds (0: the default minute). The answer is
 * parsed into *RET when RET is non-NULL and the engine sent a body (else
 * *RET is NULL). Statuses of 400 and up are ERR_FAILED with the engine's
 * message; *STATUS, when non-NULL, gets the status.
 */
int engine_call(struct engine *en, const char *method, const char *path, json_t *body, long timeout,
		json_t **ret, long *status, struct refit_err *e);

/* engine_call with X-Registry-Auth: REGISTRY_AUTH (NULL: none), e.g. a service update whose nodes pull. */
int engine_call_auth(struct engine *en, const char *method, const char *path, json_t *body, const char *registry_auth,
		     long timeout, json_t **ret, long *status, struct refit_err *e);

/*
 * Pull IMAGE ("repo" with TAG, or "repo@sha256:..." with TAG NULL) through
 * the engine, REGISTRY_AUTH being the X-Registry-Auth value or NULL. The
 * progress stream is read as it comes and only errors are kept.
 */
int engine_pull(struct engine *en, const char *image, const char *tag, const char *registry_auth,
		long timeout, struct refit_err *e);

/* Receives a streamed body in pieces; a nonzero return aborts the transfer. */
typedef int (*engine_sink)(const void *data, size_t len, void *arg);

/*
 * GET PATH (below the version prefix) and hand the body to SINK as it
 * arrives, never holding it in memory (a tar from /containers/ID/archive).
 * Answers of 400 and up are ERR_FAILED with the engine's message; a transfer
 * SINK aborted is ERR_FAILED "aborted" (SINK's caller says why).
 */
int engine_get_stream(struct engine *en, const char *path, long timeout, engine_sink sink, void *arg,
		      struct refit_err *e);

/* PUT PATH with SIZE bytes read from FD as CONTENT_TYPE (a tar into /containers/ID/archive). */
int engine_put_fd(struct engine *en, const char *path, int fd, long long size, const char *content_type,
		  long timeout, struct refit_err *e);

/* Percent-encode S for a path segment or query value; malloc'd. */
char *engine_escape(struct engine *en, const char *s);

/*
 * Inspect container ID_OR_NAME (escaped here) into *RET: 1; 0 when the
 * engine has no such container (404: *RET NULL, E holds the engine's words
 * for callers that take it as an error); -1 on any other error.
 */
int engine_container_inspect(struct engine *en, const char *id_or_name, json_t **ret, struct refit_err *e);

/*
 * Remove container ID, forced (VOLUMES: with the anonymous volumes the
 * engine made for it). A missing one is not an error, and a removal the
 * engine has in progress (409: one asked by a refit killed since) is waited
 * for until the container is gone (up to 60 s).
 */
int engine_container_remove(struct engine *en, const char *id, bool volumes, struct refit_err *e);

/* The same for image REF_OR_ID (a reference, an ID or repo@digest). */
int engine_image_inspect(struct engine *en, const char *ref_or_id, json_t **ret, struct refit_err *e);

/*
 * Point REPO:TAG at image SOURCE (an ID, a reference or repo@digest): 0, or
 * -1 with E. A refusal after which the name points at SOURCE anyway (the
 * containerd image store's race with another client tagging it) is success.
 */
int engine_image_tag(struct engine *en, const char *source, const char *repo, const char *tag, struct refit_err *e);

#endif
