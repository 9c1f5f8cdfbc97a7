/* The engine's container and image lists, read for a check pass (no inspect per container). */
#ifndef REFIT_LISTS_H
#define REFIT_LISTS_H

#include <jansson.h>
#include <stdbool.h>

#include "refit/error.h"

#define LISTS_MAX_CONTAINERS 10000
#define LISTS_MAX_IMAGES 20000
#define LISTS_MAX_NAMES 1000 /* RepoTags or RepoDigests of one image */

/* One element of GET /containers/json, read (every pointer borrowed from the element). */
struct listed_container {
	const char *id;       /* 64 lowercase hex */
	const char *name;     /* its first name, without the leading '/' */
	const char *state;    /* "running", "restarting", "exited", ...; NULL when not given */
	const char *image;    /* the reference it was created from, or NULL when the list shows an ID instead */
	const char *image_id; /* its image's ID ("sha256:..."); NULL when not given */
	json_t *labels;       /* an object, or NULL */
};

/*
 * Read one element C of the container list into *RET. The engine lists the
 * image ID in place of the reference when the reference now names another
 * image (the tag moved on after a pull) or none: then *RET's image is NULL
 * and the caller inspects the container for Config.Image. -1 with E when
 * the element is unusable (no valid ID or name, a field of the wrong type
 * or too long).
 */
int lists_container(json_t *c, struct listed_container *ret, struct refit_err *e);

/*
 * Index the answer of GET /images/json: {"ids": {ID: RepoDigests array},
 * "tags": {normalised "domain/path:tag": ID}} (new reference). Elements
 * without a usable ID are left out, RepoTags that are no reference too;
 * -1 with E when LIST is not an array of at most LISTS_MAX_IMAGES.
 */
int lists_image_index(json_t *list, json_t **ret, struct refit_err *e);

/* The RepoDigests of image ID in INDEX (borrowed), or NULL when INDEX does not list it. */
json_t *lists_image_digests(json_t *index, const char *id);

/* The ID of the image the normalised reference REF ("domain/path:tag") names in INDEX, or NULL. */
const char *lists_image_by_tag(json_t *index, const char *ref);

/*
 * What an update pass reads of its containers, from LIST (the answer of
 * GET /containers/json?all=1) instead of an inspect each. *ALL: name ->
 * {"Id", "Name": "/NAME", "Config": {"Labels"}, "HostConfig":
 * {"NetworkMode", "Links"}, "State": {"Running"}} (inspect's shape) for
 * every container whose ID is a key of WANT; Links in inspect's form
 * "/TARGET:/NAME/ALIAS", read from the list's other names of a linked
 * container ("/NAME/ALIAS": NAME links to it as ALIAS). *NETNS: every
 * listed container on another's network namespace (NetworkMode
 * container:...), as {"Names": [NAME], "HostConfig": {"NetworkMode"},
 * "State", "Labels"}. Unusable elements are left out; -1 with E when LIST
 * is not an array of at most LISTS_MAX_CONTAINERS.
 */
int lists_pass_view(json_t *list, json_t *want, json_t **all, json_t **netns, struct refit_err *e);

#endif
