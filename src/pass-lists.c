/* Reading the engine's container and image lists for a check pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refit/base.h"
#include "refit/imageref.h"
#include "refit/lists.h"

#define ID_MAX 160 /* "sha256:" and 64 hex, with room for other engines' spellings */

/* Is S a string of at most MAX bytes, printable ASCII (or absent when OPTIONAL)? */
static bool str_ok(json_t *v, size_t max, bool optional)
{
	const char *s = json_string_value(v);

	if (!v || json_is_null(v))
		return optional;
	if (!s || strlen(s) > max || json_string_length(v) != strlen(s))
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

/* An image ID as engines write one: "sha256:" and hex, or bare hex. */
static bool image_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (strncmp(s, "sha256:", 7) == 0)
		s += 7, n -= 7;
	return n >= 12 && n <= 128 && strspn(s, "0123456789abcdef") == n;
}

int lists_container(json_t *c, struct listed_container *ret, struct refit_err *e)
{
	json_t *names = json_object_get(c, "Names"), *v, *labels = json_object_get(c, "Labels");
	json_t *image = json_object_get(c, "Image"), *image_id = json_object_get(c, "ImageID");
	json_t *state = json_object_get(c, "State");
	const char *id = json_string_value(json_object_get(c, "Id"));
	size_t i;

	memset(ret, 0, sizeof(*ret));
	if (!json_is_object(c))
		return err_set(e, ERR_FAILED, "engine: a container list element is not an object");
	if (!id || strlen(id) != 64 || strspn(id, "0123456789abcdef") != 64)
		return err_set(e, ERR_FAILED, "engine: a listed container has no valid Id");
	ret->id = id;
	/* The container's own name is "/NAME"; links add "/OTHER/ALIAS", in no set order. */
	json_array_foreach(names, i, v) {
		const char *n = json_string_value(v);

		if (i >= LISTS_MAX_NAMES)
			break;
		if (n && n[0] == '/' && !strchr(n + 1, '/') && container_name_valid(n + 1)) {
			ret->name = n + 1;
			break;
		}
	}
	if (!ret->name)
		return err_set(e, ERR_FAILED, "engine: listed container %.12s has no valid name", id);
	if (!str_ok(state, 32, true) || !str_ok(image, IMAGEREF_MAX, true) || !str_ok(image_id, ID_MAX, true) ||
	    (labels && !json_is_null(labels) && !json_is_object(labels)))
		return err_set(e, ERR_FAILED, "engine: listed container %s: State, Image, ImageID or Labels malformed",
			       ret->name);
	ret->state = json_string_value(state);
	ret->image_id = json_string_value(image_id);
	if (ret->image_id && !image_id_ok(ret->image_id))
		return err_set(e, ERR_FAILED, "engine: listed container %s: ImageID is not an image ID", ret->name);
	ret->image = json_string_value(image);
	/* An ID in place of the reference: the tag moved on (or it was created from an ID). */
	if (ret->image && (!*ret->image || strncmp(ret->image, "sha256:", 7) == 0 ||
			   (ret->image_id && strcmp(ret->image, ret->image_id) == 0)))
		ret->image = NULL;
	ret->labels = json_is_object(labels) ? labels : NULL;
	return 0;
}

/* The strings of array V (each at most MAX), as a new array; NULL when V is no such array. */
static json_t *string_array(json_t *v, size_t max)
{
	json_t *out, *s;
	size_t i;

	if (!v || json_is_null(v))
		return json_array();
	if (!json_is_array(v) || json_array_size(v) > LISTS_MAX_NAMES || !(out = json_array()))
		return NULL;
	json_array_foreach(v, i, s) {
		if (!str_ok(s, max, false)) {
			json_decref(out);
			return NULL;
		}
		json_array_append(out, s);
	}
	return out;
}

/*
 * Podman keeps no RepoDigests for an image whose name moved on to another
 * (a pull of a new digest under the same tag), but its image list carries
 * the digest the image was pulled as ("Digest") and the names it had
 * ("History"): add REPO@DIGEST to DIGESTS for each repository of those
 * names, so a container on it still has its digest from there. Docker's
 * list has neither field.
 */
static void podman_digests(json_t *img, json_t *digests)
{
	json_t *dv = json_object_get(img, "Digest"), *history, *name;
	const char *d = json_string_value(dv);
	size_t i;

	if (!str_ok(dv, ID_MAX, false) || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64 ||
	    strspn(d + 7, "0123456789abcdef") != 64)
		return;
	history = string_array(json_object_get(img, "History"), IMAGEREF_MAX);
	json_array_foreach(history, i, name) {
		struct imageref ref = { 0 };
		char *repo, *rd;
		bool known = false;
		size_t k;
		json_t *have;

		if (imageref_parse(json_string_value(name), &ref, NULL) < 0)
			continue;
		repo = imageref_repository(&ref);
		if (!repo || asprintf(&rd, "%s@%s", repo, d) < 0)
			rd = NULL;
		json_array_foreach(digests, k, have)
			known = known || (rd && strcmp(json_string_value(have), rd) == 0);
		if (rd && !known && json_array_size(digests) < LISTS_MAX_NAMES)
			json_array_append_new(digests, json_string(rd));
		free(rd);
		free(repo);
		imageref_free(&ref);
	}
	json_decref(history);
}

int lists_image_index(json_t *list, json_t **ret, struct refit_err *e)
{
	json_t *ids, *tags, *img;
	size_t i;

	*ret = NULL;
	if (!json_is_array(list) || json_array_size(list) > LISTS_MAX_IMAGES)
		return err_set(e, ERR_FAILED, "engine: the image list is not an array of at most %d images",
			       LISTS_MAX_IMAGES);
	ids = json_object();
	tags = json_object();
	if (!ids || !tags || !(*ret = json_pack("{s:o, s:o}", "ids", ids, "tags", tags))) {
		json_decref(*ret);
		*ret = NULL;
		return err_set(e, ERR_FAILED, "out of memory");
	}
	json_array_foreach(list, i, img) {
		json_t *idv = json_object_get(img, "Id"), *digests, *rtags, *t;
		const char *id = json_string_value(idv);
		size_t k;

		if (!str_ok(idv, ID_MAX, false) || !image_id_ok(id))
			continue;
		digests = string_array(json_object_get(img, "RepoDigests"), IMAGEREF_MAX + 80);
		rtags = string_array(json_object_get(img, "RepoTags"), IMAGEREF_MAX);
		if (!digests || !rtags) {
			json_decref(digests);
			json_decref(rtags);
			continue; /* unreadable: the pass inspects the image instead */
		}
		podman_digests(img, digests);
		json_object_set_new(ids, id, digests);
		json_array_foreach(rtags, k, t) {
			struct imageref ref = { 0 };
			char *norm;

			if (imageref_parse(json_string_value(t), &ref, NULL) < 0)
				continue; /* "<none>:<none>" */
			norm = ref.digest ? NULL : imageref_string(&ref);
			if (norm)
				json_object_set_new(tags, norm, json_string(id));
			free(norm);
			imageref_free(&ref);
		}
		json_decref(rtags);
	}
	return 0;
}

json_t *lists_image_digests(json_t *index, const char *id)
{
	return json_object_get(json_object_get(index, "ids"), id);
}

const char *lists_image_by_tag(json_t *index, const char *ref)
{
	return json_string_value(json_object_get(json_object_get(index, "tags"), ref));
}

/* Whether a listed State means inspect's State.Running (paused and restarting containers run too). */
static bool state_running(const char *state)
{
	return state && (strcmp(state, "running") == 0 || strcmp(state, "paused") == 0 ||
			 strcmp(state, "restarting") == 0);
}

/* The view of listed container LC (NetworkMode MODE, or NULL): the inspect fields an update pass reads. */
static json_t *view_of(const struct listed_container *lc, const char *mode)
{
	char name[CONTAINER_NAME_MAX + 2];
	json_t *host = json_pack("{s:[]}", "Links");

	snprintf(name, sizeof(name), "/%s", lc->name);
	if (host && mode)
		json_object_set_new(host, "NetworkMode", json_string(mode));
	return host ? json_pack("{s:s, s:s, s:{s:o}, s:o, s:{s:b}}", "Id", lc->id, "Name", name, "Config", "Labels",
				lc->labels ? json_incref(lc->labels) : json_object(), "HostConfig", host, "State",
				"Running", state_running(lc->state)) :
		      NULL;
}

int lists_pass_view(json_t *list, json_t *want, json_t **all, json_t **netns, struct refit_err *e)
{
	json_t *c, *names, *v;
	size_t i, k;

	*all = *netns = NULL;
	if (!json_is_array(list) || json_array_size(list) > LISTS_MAX_CONTAINERS)
		return err_set(e, ERR_FAILED, "engine: the container list is not an array of at most %d containers",
			       LISTS_MAX_CONTAINERS);
	*all = json_object();
	*netns = json_array();
	if (!*all || !*netns)
		goto oom;
	json_array_foreach(list, i, c) {
		struct listed_container lc;
		json_t *modev = json_object_get(json_object_get(c, "HostConfig"), "NetworkMode");
		const char *mode = str_ok(modev, CONTAINER_NAME_MAX + 16, false) ? json_string_value(modev) : NULL;

		if (lists_container(c, &lc, NULL) < 0)
			continue; /* unusable: left out, as the check pass leaves it */
		if (json_object_get(want, lc.id)) {
			json_t *view = view_of(&lc, mode);

			if (!view || json_object_set_new(*all, lc.name, view) < 0)
				goto oom;
		}
		if (mode && strncmp(mode, "container:", 10) == 0 &&
		    json_array_append_new(*netns, json_pack("{s:[s], s:{s:s}, s:s?, s:O?}", "Names", lc.name,
							    "HostConfig", "NetworkMode", mode, "State", lc.state,
							    "Labels", lc.labels)) < 0)
			goto oom;
	}
	/* Legacy links: a container that OTHER links to as ALIAS is also listed as "/OTHER/ALIAS". */
	json_array_foreach(list, i, c) {
		struct listed_container lc;

		if (lists_container(c, &lc, NULL) < 0 || !json_object_get(*all, lc.name))
			continue;
		names = json_object_get(c, "Names");
		json_array_foreach(names, k, v) {
			const char *n = json_string_value(v), *slash;
			char other[CONTAINER_NAME_MAX + 1], link[2 * CONTAINER_NAME_MAX + 8];
			json_t *from;

			if (k >= LISTS_MAX_NAMES)
				break;
			if (!n || n[0] != '/' || !(slash = strchr(n + 1, '/')) || strchr(slash + 1, '/') ||
			    (size_t)(slash - n - 1) > CONTAINER_NAME_MAX || strlen(slash + 1) > CONTAINER_NAME_MAX)
				continue;
			snprintf(other, sizeof(other), "%.*s", (int)(slash - n - 1), n + 1);
			from = json_object_get(json_object_get(json_object_get(*all, other), "HostConfig"), "Links");
			snprintf(link, sizeof(link), "/%s:%s", lc.name, n);
			if (from && json_array_size(from) < LISTS_MAX_NAMES &&
			    json_array_append_new(from, json_string(link)) < 0)
				goto oom;
		}
	}
	return 0;
oom:
	json_decref(*all);
	json_decref(*netns);
	*all = *netns = NULL;
	return err_set(e, ERR_FAILED, "out of memory");
}
