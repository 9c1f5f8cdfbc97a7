/* From an old container's inspect to the create request of its replacement (pure, no I/O). */
#ifndef REFIT_ENGINE_SPEC_H
#define REFIT_ENGINE_SPEC_H

#include <jansson.h>
#include <stdbool.h>

#include "refit/error.h"

struct spec_input {
	json_t *container;   /* GET /containers/ID/json of the old container (borrowed) */
	json_t *old_image;   /* GET /images/ID/json of the old container's image (borrowed; may be NULL) */
	const char *image;   /* Config.Image of the new container: the tag reference, "repo:tag" */
	const char *api_version; /* negotiated engine API version, "1.41" or "1.44" */
	const char *extra_alias; /* name to add as an alias on every user-defined network, or NULL */
	const char *image_id; /* ID of the image the new container runs ("sha256:..."), or NULL */
};

struct spec_output {
	json_t *create;  /* body of POST /containers/create (new reference) */
	json_t *connect; /* array of {"Network": NAME, "EndpointConfig": {...}} to connect after
			    create and before start (new reference; empty when create holds them all) */
};

/*
 * Build the replacement's create body: what was set on the container is
 * kept; what came from the old image as a default (Env entries, Cmd,
 * Entrypoint, WorkingDir, User, Healthcheck, Labels, Volumes, ExposedPorts,
 * StopSignal, Shell, OnBuild equal to the old image's) is left out so the new
 * image's defaults apply; an exposed port that is published stays (the
 * engine publishes only exposed ports). HostConfig is carried, links
 * rewritten to the create form, anonymous volumes added as explicit volume
 * mounts so the new container mounts the same volumes, every network with
 * its aliases (minus the engine's short-ID alias) and static addresses
 * carried, the ID-derived hostname dropped. A container docker compose
 * created keeps every com.docker.compose.* label, with
 * com.docker.compose.image set to IMAGE_ID (when given), so compose still
 * owns it and sees it up to date. An api_version before 1.44
 * (or NULL) puts only the NetworkMode network in the body, the others in
 * CONNECT. Returns 0, or -1 with E set (and OUT untouched) when the inspect
 * is not the shape the engine gives.
 */
int spec_build(const struct spec_input *in, struct spec_output *out, struct refit_err *e);

void spec_output_free(struct spec_output *out);

/* Does the container publish ports on fixed host ports (so two copies cannot run at once)? */
bool spec_fixed_host_ports(json_t *container);

/*
 * Why two copies of the container cannot run at once (fixed host ports, a
 * static IP address, a fixed MAC address), or NULL when they can.
 */
const char *spec_exclusive(json_t *container);

/* The container's network mode class: "default" (bridge/user networks), "host", "none", "container". */
const char *spec_network_mode(json_t *container);

#endif
