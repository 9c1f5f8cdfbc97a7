/* From an old container's inspect to the create request of its replacement (pure, no I/O). */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "refit/engine-spec.h"

#define SHORT_ID_LEN 12	     /* the engine's short container ID, also its default hostname */
#define VERSION_PARTS 4	     /* dotted components compared in an API version */
#define VERSION_PART_MAX 1000000UL
#define API_ALL_NETWORKS "1.44" /* first API that takes several EndpointsConfig entries at create */
#define COMPOSE_IMAGE_LABEL "com.docker.compose.image" /* the image ID compose v2 started a service on */

/* Container Config keys that, equal to the old image's, are the image's default. */
static const char *const image_default_keys[] = {
	"WorkingDir", "User", "StopSignal", "Shell", "OnBuild", NULL,
};

/* Endpoint settings a user can set at create; the rest of the inspect is the engine's state. */
static const char *const endpoint_user_keys[] = { "IPAMConfig", "Links", "DriverOpts", NULL };

/* Read one dotted component of V at *P as a bounded number; non-digits end it. */
static unsigned long version_part(const char **p)
{
	unsigned long n = 0;

	while (**p >= '0' && **p <= '9') {
		if (n < VERSION_PART_MAX)
			n = n * 10 + (unsigned long)(**p - '0');
		(*p)++;
	}
	while (**p && **p != '.')
		(*p)++;
	if (**p == '.')
		(*p)++;
	return n;
}

/* Compare API versions numerically ("1.9" < "1.41" < "1.44"); NULL is the oldest. */
static int version_cmp(const char *a, const char *b)
{
	if (!a || !b)
		return a ? 1 : b ? -1 : 0;
	for (int i = 0; i < VERSION_PARTS; i++) {
		unsigned long x = version_part(&a), y = version_part(&b);

		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

/* True when V is absent or JSON null. */
static bool is_absent(json_t *v)
{
	return !v || json_is_null(v);
}

/* True when A and B are equal JSON, absent and null counting as the same. */
static bool same_value(json_t *a, json_t *b)
{
	if (is_absent(a) || is_absent(b))
		return is_absent(a) && is_absent(b);
	return json_equal(a, b);
}

/* True for an absent, null, empty array, empty object or empty string value. */
static bool is_empty(json_t *v)
{
	return is_absent(v) || (json_is_array(v) && json_array_size(v) == 0) ||
	       (json_is_object(v) && json_object_size(v) == 0) ||
	       (json_is_string(v) && json_string_length(v) == 0);
}

/*
 * True when the container's value A equals the image's default B. From API
 * 1.52 the image inspect leaves out an empty Cmd, Entrypoint, Env, Labels,
 * OnBuild, User, Volumes or WorkingDir, and the container inspect an empty
 * OnBuild, so an absent default is the empty one: "" or [] or {} or null.
 */
static bool same_default(json_t *a, json_t *b)
{
	return (is_empty(a) && is_empty(b)) || same_value(a, b);
}

/* Fail with E unless V (the member WHAT of the inspect) is absent, null or of type TYPE. */
static int want_type(json_t *v, json_type type, const char *what, struct refit_err *e)
{
	static const char *const names[] = {
		[JSON_OBJECT] = "an object", [JSON_ARRAY] = "an array", [JSON_STRING] = "a string",
		[JSON_INTEGER] = "an integer", [JSON_REAL] = "a number", [JSON_TRUE] = "a boolean",
		[JSON_FALSE] = "a boolean", [JSON_NULL] = "null",
	};

	if (is_absent(v) || json_typeof(v) == type)
		return 0;
	return err_set(e, ERR_FAILED, "container inspect: %s is not %s", what, names[type]);
}

/* Fail with E unless every element of the array ARR (already type-checked) has type TYPE. */
static int want_elements(json_t *arr, json_type type, const char *what, struct refit_err *e)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) {
		if (json_typeof(v) != type)
			return want_type(v, type, what, e);
	}
	return 0;
}

/* True when the array ARR holds a value equal to V. */
static bool array_has(json_t *arr, json_t *v)
{
	size_t i;
	json_t *x;

	json_array_foreach(arr, i, x) {
		if (json_equal(x, v))
			return true;
	}
	return false;
}

/* True when the array ARR holds the string S. */
static bool array_has_string(json_t *arr, const char *s)
{
	size_t i;
	json_t *x;

	json_array_foreach(arr, i, x) {
		const char *v = json_string_value(x);

		if (v && strcmp(v, s) == 0)
			return true;
	}
	return false;
}

/* Length of PATH (N bytes) without its trailing slashes; "/" stays "/". */
static size_t path_len(const char *path, size_t n)
{
	while (n > 1 && path[n - 1] == '/')
		n--;
	return n;
}

/* True when the mount paths A (AN bytes) and B name the same place (trailing slashes aside). */
static bool path_eq(const char *a, size_t an, const char *b)
{
	size_t bn = path_len(b, strlen(b));

	an = path_len(a, an);
	return an == bn && memcmp(a, b, an) == 0;
}

/* Destination of a Binds entry "src:dst[:opts]" (or a bare "dst") as a span of BIND. */
static const char *bind_destination(const char *bind, size_t *len)
{
	const char *dst = strchr(bind, ':'), *end;

	dst = dst ? dst + 1 : bind;
	end = strchr(dst, ':');
	*len = end ? (size_t)(end - dst) : strlen(dst);
	return dst;
}

/* True when DEST is already mounted by HostConfig.Binds or HostConfig.Mounts (type-checked). */
static bool destination_covered(json_t *hc, const char *dest)
{
	json_t *binds = json_object_get(hc, "Binds"), *mounts = json_object_get(hc, "Mounts");
	size_t i;
	json_t *v;

	json_array_foreach(binds, i, v) {
		size_t n;
		const char *d = bind_destination(json_string_value(v), &n);

		if (path_eq(d, n, dest))
			return true;
	}
	json_array_foreach(mounts, i, v) {
		const char *t = json_string_value(json_object_get(v, "Target"));

		if (t && path_eq(t, strlen(t), dest))
			return true;
	}
	return false;
}

/* The volume name the inspect's top-level MOUNTS shows at DEST, or NULL. */
static const char *volume_at(json_t *mounts, const char *dest)
{
	size_t i;
	json_t *m;

	json_array_foreach(mounts, i, m) {
		const char *type = json_string_value(json_object_get(m, "Type"));
		const char *d = json_string_value(json_object_get(m, "Destination"));
		const char *name = json_string_value(json_object_get(m, "Name"));

		if (type && strcmp(type, "volume") == 0 && d && name && *name && path_eq(d, strlen(d), dest))
			return name;
	}
	return NULL;
}

/* Check the shape of the inspect's top-level Mounts and HostConfig's Binds and Mounts. */
static int check_mounts(json_t *mounts, json_t *hc, struct refit_err *e)
{
	json_t *binds = json_object_get(hc, "Binds"), *hmounts = json_object_get(hc, "Mounts");
	size_t i;
	json_t *m;

	if (want_type(mounts, JSON_ARRAY, "Mounts", e) < 0 ||
	    want_elements(mounts, JSON_OBJECT, "a Mounts entry", e) < 0 ||
	    want_type(binds, JSON_ARRAY, "HostConfig.Binds", e) < 0 ||
	    want_elements(binds, JSON_STRING, "a HostConfig.Binds entry", e) < 0 ||
	    want_type(hmounts, JSON_ARRAY, "HostConfig.Mounts", e) < 0 ||
	    want_elements(hmounts, JSON_OBJECT, "a HostConfig.Mounts entry", e) < 0)
		return -1;
	json_array_foreach(mounts, i, m) {
		const char *type = json_string_value(json_object_get(m, "Type"));

		if (!type || strcmp(type, "volume") != 0)
			continue;
		if (!json_is_string(json_object_get(m, "Destination")) ||
		    !json_is_string(json_object_get(m, "Name")))
			return err_set(e, ERR_FAILED,
				       "container inspect: a volume in Mounts has no Name or Destination");
	}
	return 0;
}

/*
 * Make every volume of the old container explicit in HC (the new
 * HostConfig): an anonymous volume given with --mount (no Source) gets its
 * generated name, and every volume in the inspect's MOUNTS that no bind or
 * mount covers (image VOLUMEs, -v /path, --volumes-from) is appended as a
 * volume mount by name, so the replacement mounts the very same data.
 */
static int adopt_volumes(json_t *hc, json_t *mounts, struct refit_err *e)
{
	json_t *hmounts = json_object_get(hc, "Mounts"), *m;
	size_t i;

	json_array_foreach(hmounts, i, m) {
		const char *type = json_string_value(json_object_get(m, "Type"));
		const char *target = json_string_value(json_object_get(m, "Target"));
		const char *name;

		if (!type || strcmp(type, "volume") != 0 || !target ||
		    !is_empty(json_object_get(m, "Source")))
			continue;
		name = volume_at(mounts, target);
		if (name && json_object_set_new(m, "Source", json_string(name)) < 0)
			return err_set(e, ERR_FAILED, "out of memory");
	}
	json_array_foreach(mounts, i, m) {
		const char *type = json_string_value(json_object_get(m, "Type"));
		const char *dest = json_string_value(json_object_get(m, "Destination"));
		const char *name = json_string_value(json_object_get(m, "Name"));
		json_t *rw = json_object_get(m, "RW"), *add;

		if (!type || strcmp(type, "volume") != 0 || !dest || !name || !*name ||
		    destination_covered(hc, dest))
			continue;
		if (!json_is_array(hmounts)) {
			hmounts = json_array();
			if (!hmounts || json_object_set_new(hc, "Mounts", hmounts) < 0)
				return err_set(e, ERR_FAILED, "out of memory");
		}
		add = json_pack("{s:s, s:s, s:s, s:b}", "Type", "volume", "Source", name, "Target", dest,
				"ReadOnly", json_is_false(rw));
		if (!add || json_array_append_new(hmounts, add) < 0)
			return err_set(e, ERR_FAILED, "out of memory");
	}
	return 0;
}

/* A legacy link in the inspect form "/db:/web/db" in the create form "db:db"; others unchanged. */
static json_t *link_create_form(json_t *link)
{
	const char *s = json_string_value(link), *colon, *alias;

	colon = s ? strchr(s, ':') : NULL;
	if (!colon || s[0] != '/')
		return json_incref(link);
	alias = strrchr(colon + 1, '/');
	alias = alias ? alias + 1 : colon + 1;
	return json_sprintf("%.*s:%s", (int)(colon - s - 1), s + 1, alias);
}

/* Rewrite HC's Links (type-checked) to the create form. */
static int rewrite_links(json_t *hc, struct refit_err *e)
{
	json_t *links = json_object_get(hc, "Links"), *out;
	size_t i;
	json_t *l;

	if (!json_is_array(links))
		return 0;
	out = json_array();
	if (!out)
		return err_set(e, ERR_FAILED, "out of memory");
	json_array_foreach(links, i, l) {
		if (json_array_append_new(out, link_create_form(l)) < 0) {
			json_decref(out);
			return err_set(e, ERR_FAILED, "out of memory");
		}
	}
	if (json_object_set_new(hc, "Links", out) < 0)
		return err_set(e, ERR_FAILED, "out of memory");
	return 0;
}

/*
 * Podman's inspect names HC's Ulimits by their kernel names, RLIMIT_NOFILE,
 * which its own create refuses ("invalid ulimit type"); Docker's form, the
 * one both engines take, is "nofile". Rewrite such names in place.
 */
static int rewrite_ulimits(json_t *hc, struct refit_err *e)
{
	json_t *ulimits = json_object_get(hc, "Ulimits"), *u;
	size_t i;

	if (!json_is_array(ulimits))
		return 0;
	json_array_foreach(ulimits, i, u) {
		const char *name = json_string_value(json_object_get(u, "Name"));
		char lower[32];
		size_t n;

		if (!name || strncasecmp(name, "RLIMIT_", 7) != 0)
			continue;
		name += 7;
		for (n = 0; name[n] && n + 1 < sizeof(lower); n++)
			lower[n] = (char)tolower((unsigned char)name[n]);
		lower[n] = '\0';
		if (name[n] || !n)
			return err_set(e, ERR_FAILED, "HostConfig.Ulimits: %s is not a resource limit", name - 7);
		if (json_object_set_new(u, "Name", json_string(lower)) < 0)
			return err_set(e, ERR_FAILED, "out of memory");
	}
	return 0;
}

/*
 * Podman's inspect of a container made with --cpus reports NanoCpus and the
 * CpuQuota/CpuPeriod it derived from them, and its create refuses the three
 * together ("NanoCpus conflicts with CpuPeriod and CpuQuota"), as Docker's
 * does. When the quota is the one NanoCpus gives, keep NanoCpus alone.
 * Podman also reports a device's CgroupPermissions as "" where Docker means
 * "rwm", the default either engine applies to a device given without them.
 */
static int rewrite_cpus_devices(json_t *hc, struct refit_err *e)
{
	json_int_t nano = json_integer_value(json_object_get(hc, "NanoCpus"));
	json_int_t quota = json_integer_value(json_object_get(hc, "CpuQuota"));
	json_int_t period = json_integer_value(json_object_get(hc, "CpuPeriod"));
	json_t *devices = json_object_get(hc, "Devices"), *d;
	size_t i;

	if (nano > 0 && nano <= 4096LL * 1000000000LL && quota > 0 && period >= 0 && period <= 1000000 &&
	    quota == nano * (period ? period : 100000) / 1000000000LL) {
		if (json_object_set_new(hc, "CpuQuota", json_integer(0)) < 0 ||
		    json_object_set_new(hc, "CpuPeriod", json_integer(0)) < 0)
			return err_set(e, ERR_FAILED, "out of memory");
	}
	json_array_foreach(devices, i, d) {
		const char *perm = json_string_value(json_object_get(d, "CgroupPermissions"));

		if (perm && !*perm && json_object_set_new(d, "CgroupPermissions", json_string("rwm")) < 0)
			return err_set(e, ERR_FAILED, "out of memory");
	}
	return 0;
}

/* The new HostConfig: the old one with links in create form and every volume made explicit. */
static json_t *host_config_build(json_t *container, struct refit_err *e)
{
	json_t *hc = json_deep_copy(json_object_get(container, "HostConfig"));

	if (!hc) {
		err_set(e, ERR_FAILED, "out of memory");
		return NULL;
	}
	if (rewrite_links(hc, e) < 0 || rewrite_ulimits(hc, e) < 0 || rewrite_cpus_devices(hc, e) < 0 ||
	    adopt_volumes(hc, json_object_get(container, "Mounts"), e) < 0) {
		json_decref(hc);
		return NULL;
	}
	return hc;
}

/* Remove from the array member KEY of CFG the entries equal to one of IMG's member KEY. */
static int drop_array_entries(json_t *cfg, json_t *img, const char *key, struct refit_err *e)
{
	json_t *have = json_object_get(cfg, key), *defaults = json_object_get(img, key), *out;
	size_t i;
	json_t *v;

	if (!json_is_array(have) || !json_is_array(defaults))
		return 0;
	out = json_array();
	if (!out)
		return err_set(e, ERR_FAILED, "out of memory");
	json_array_foreach(have, i, v) {
		if (!array_has(defaults, v) && json_array_append(out, v) < 0) {
			json_decref(out);
			return err_set(e, ERR_FAILED, "out of memory");
		}
	}
	if (json_object_set_new(cfg, key, out) < 0)
		return err_set(e, ERR_FAILED, "out of memory");
	return 0;
}

/*
 * Remove from the object member KEY of CFG the members IMG's KEY has; with
 * VALUES only those of equal value, and never one the object KEEP has.
 */
static void drop_object_members(json_t *cfg, json_t *img, const char *key, bool values, json_t *keep)
{
	json_t *have = json_object_get(cfg, key), *defaults = json_object_get(img, key), *v, *tmp;
	const char *k;

	if (!json_is_object(have) || !json_is_object(defaults))
		return;
	json_object_foreach_safe(have, tmp, k, v) {
		json_t *d = json_object_get(defaults, k);

		if (d && (!values || json_equal(v, d)) && !json_object_get(keep, k))
			json_object_del(have, k);
	}
}

/*
 * Leave out Cmd and Entrypoint where they are the old image's. The engine
 * fills Cmd from the image only when Entrypoint is not set, so a container
 * whose Entrypoint is its own keeps its Cmd too, and a container with an
 * empty Cmd where the image has one set its Entrypoint (even if equal).
 */
static void drop_command(json_t *cfg, json_t *img)
{
	json_t *cmd = json_object_get(cfg, "Cmd"), *entry = json_object_get(cfg, "Entrypoint");
	json_t *icmd = json_object_get(img, "Cmd");
	bool keep_entry = !same_default(entry, json_object_get(img, "Entrypoint")) ||
			  (is_empty(cmd) && !is_empty(icmd));

	if (keep_entry && !is_empty(entry))
		return;
	if (!keep_entry)
		json_object_del(cfg, "Entrypoint");
	if (same_default(cmd, icmd))
		json_object_del(cfg, "Cmd");
}

/* Leave out the Healthcheck members equal to the old image's, the whole check if none is left. */
static void drop_healthcheck(json_t *cfg, json_t *img)
{
	json_t *hc = json_object_get(cfg, "Healthcheck"), *ihc = json_object_get(img, "Healthcheck");

	if (json_is_object(hc) && json_is_object(ihc)) {
		drop_object_members(cfg, img, "Healthcheck", true, NULL);
		if (json_object_size(hc) == 0)
			json_object_del(cfg, "Healthcheck");
	} else if (same_default(hc, ihc)) {
		json_object_del(cfg, "Healthcheck");
	}
}

/*
 * Leave out of CFG (the new Config) what came from IMG (the old image's
 * Config) as a default. An exposed port that PORTS (HostConfig.PortBindings)
 * publishes stays: the engine publishes only exposed ports, so a new image
 * that no longer exposes it would silently lose the binding.
 */
static int drop_image_defaults(json_t *cfg, json_t *img, json_t *ports, struct refit_err *e)
{
	if (drop_array_entries(cfg, img, "Env", e) < 0)
		return -1;
	drop_command(cfg, img);
	drop_healthcheck(cfg, img);
	for (int i = 0; image_default_keys[i]; i++) {
		const char *k = image_default_keys[i];

		if (same_default(json_object_get(cfg, k), json_object_get(img, k)))
			json_object_del(cfg, k);
	}
	drop_object_members(cfg, img, "Labels", true, NULL);
	drop_object_members(cfg, img, "Volumes", false, NULL);
	drop_object_members(cfg, img, "ExposedPorts", false, json_is_object(ports) ? ports : NULL);
	return 0;
}

/*
 * Keep a compose-created container compose's: compose v2 recreates a
 * service whose com.docker.compose.image label is not the ID of the image
 * its tag names now, so the replacement carries the new image's ID there
 * (every other compose label is the old container's, carried as is).
 */
static int compose_owned(json_t *cfg, const struct spec_input *in, struct refit_err *e)
{
	json_t *labels = json_object_get(cfg, "Labels");

	if (!json_is_object(labels) || !json_is_string(json_object_get(labels, COMPOSE_IMAGE_LABEL)) ||
	    !in->image_id || !*in->image_id)
		return 0;
	if (json_object_set_new(labels, COMPOSE_IMAGE_LABEL, json_string(in->image_id)) < 0)
		return err_set(e, ERR_FAILED, "out of memory");
	return 0;
}

/* The new Config: the old one without the ID hostname and the old image's defaults, on IMAGE. */
/*
 * Leave CFG's Hostname to the engine, and the HOSTNAME=<it> entry Podman
 * writes into Env with it (the new container would carry the old name).
 */
static void drop_hostname(json_t *cfg)
{
	const char *host = json_string_value(json_object_get(cfg, "Hostname"));
	json_t *env = json_object_get(cfg, "Env");
	size_t i;

	if (host && json_is_array(env)) {
		for (i = 0; i < json_array_size(env); i++) {
			const char *v = json_string_value(json_array_get(env, i));

			if (v && strncmp(v, "HOSTNAME=", 9) == 0 && strcmp(v + 9, host) == 0) {
				json_array_remove(env, i);
				break;
			}
		}
	}
	json_object_del(cfg, "Hostname");
}

static json_t *config_build(const struct spec_input *in, json_t *img_cfg, struct refit_err *e)
{
	json_t *cfg = json_deep_copy(json_object_get(in->container, "Config"));
	const char *id = json_string_value(json_object_get(in->container, "Id"));
	json_t *ports = json_object_get(json_object_get(in->container, "HostConfig"), "PortBindings");
	const char *host;

	if (!cfg) {
		err_set(e, ERR_FAILED, "out of memory");
		return NULL;
	}
	host = json_string_value(json_object_get(cfg, "Hostname"));
	if (host && *host && strlen(host) <= SHORT_ID_LEN && strncmp(id, host, SHORT_ID_LEN) == 0)
		drop_hostname(cfg);
	if (strcmp(spec_network_mode(in->container), "container") == 0) {
		/* The inspect shows the other container's hostname and the image's
		 * ports; the engine refuses both with a container network mode. */
		drop_hostname(cfg);
		json_object_del(cfg, "ExposedPorts");
	}
	if (json_object_set_new(cfg, "Image", json_string(in->image)) < 0 ||
	    (img_cfg && drop_image_defaults(cfg, img_cfg, ports, e) < 0) || compose_owned(cfg, in, e) < 0) {
		json_decref(cfg);
		return NULL;
	}
	return cfg;
}

/* True for a network a container can carry aliases on: not the default bridge nor host/none. */
static bool network_user_defined(const char *name)
{
	return strcmp(name, "bridge") != 0 && strcmp(name, "host") != 0 && strcmp(name, "none") != 0 &&
	       strcmp(name, "default") != 0;
}

/* Check the shape of one NetworkSettings.Networks entry. */
static int check_endpoint(json_t *ep, struct refit_err *e)
{
	json_t *aliases = json_object_get(ep, "Aliases");

	if (!json_is_object(ep))
		return err_set(e, ERR_FAILED,
			       "container inspect: a NetworkSettings.Networks entry is not an object");
	if (want_type(aliases, JSON_ARRAY, "an endpoint's Aliases", e) < 0 ||
	    want_elements(aliases, JSON_STRING, "an endpoint's alias", e) < 0 ||
	    want_type(json_object_get(ep, "IPAMConfig"), JSON_OBJECT, "an endpoint's IPAMConfig", e) < 0 ||
	    want_type(json_object_get(ep, "Links"), JSON_ARRAY, "an endpoint's Links", e) < 0 ||
	    want_type(json_object_get(ep, "DriverOpts"), JSON_OBJECT, "an endpoint's DriverOpts", e) < 0)
		return -1;
	return 0;
}

/* Set OUT's Aliases to EP's (type-checked) minus the engine's ID aliases, plus EXTRA; none if empty. */
static int endpoint_aliases(json_t *out, json_t *ep, const char *id, const char *extra)
{
	json_t *aliases = json_object_get(ep, "Aliases"), *list = json_array(), *a;
	size_t i;

	if (!list)
		return -1;
	json_array_foreach(aliases, i, a) {
		const char *s = json_string_value(a);

		if (strcmp(s, id) == 0 ||
		    (strlen(s) == SHORT_ID_LEN && strncmp(s, id, SHORT_ID_LEN) == 0) ||
		    array_has_string(list, s))
			continue;
		if (json_array_append(list, a) < 0)
			goto fail;
	}
	if (extra && *extra && !array_has_string(list, extra) &&
	    json_array_append_new(list, json_string(extra)) < 0)
		goto fail;
	if (json_array_size(list) == 0) {
		json_decref(list);
		return 0;
	}
	return json_object_set_new(out, "Aliases", list);
fail:
	json_decref(list);
	return -1;
}

/*
 * The create-time endpoint settings of network NAME from its inspect EP:
 * what the user set (static addresses, links, driver options, aliases,
 * MAC when given), never the engine's state (IDs, gateway, leased address).
 */
static json_t *endpoint_build(const struct spec_input *in, const char *name, json_t *ep,
			      const char *mac, struct refit_err *e)
{
	const char *id = json_string_value(json_object_get(in->container, "Id"));
	json_t *out = json_object();

	if (!out)
		goto oom;
	for (int i = 0; endpoint_user_keys[i]; i++) {
		json_t *v = json_object_get(ep, endpoint_user_keys[i]);

		if (!is_empty(v) &&
		    json_object_set_new(out, endpoint_user_keys[i], json_deep_copy(v)) < 0)
			goto oom;
	}
	if (json_integer_value(json_object_get(ep, "GwPriority")) != 0 &&
	    json_object_set(out, "GwPriority", json_object_get(ep, "GwPriority")) < 0)
		goto oom;
	if (network_user_defined(name) && endpoint_aliases(out, ep, id, in->extra_alias) < 0)
		goto oom;
	if (mac && json_object_set_new(out, "MacAddress", json_string(mac)) < 0)
		goto oom;
	return out;
oom:
	json_decref(out);
	err_set(e, ERR_FAILED, "out of memory");
	return NULL;
}

/*
 * The key of NETWORKS that HostConfig.NetworkMode MODE names: "default"
 * is the bridge, a user network may be named by name or (a prefix of) its ID.
 */
static const char *primary_network(json_t *networks, const char *mode)
{
	const char *k;
	json_t *ep;

	if (strcmp(mode, "default") == 0)
		mode = "bridge";
	if (json_object_get(networks, mode))
		return json_object_iter_key(json_object_iter_at(networks, mode));
	json_object_foreach(networks, k, ep) {
		const char *nid = json_string_value(json_object_get(ep, "NetworkID"));

		if (nid && *mode && strncmp(nid, mode, strlen(mode)) == 0)
			return k;
	}
	return NULL;
}

/*
 * Fill CREATE's NetworkingConfig and CONNECT from the old container's
 * networks. Before API 1.44 the engine takes one endpoint at create: the
 * NetworkMode one; the others are connected after create. MAC is the
 * user's container-wide MAC address, moved to the primary endpoint from 1.44.
 */
static int networks_build(const struct spec_input *in, json_t *create, json_t *connect,
			  const char *mac, struct refit_err *e)
{
	json_t *hc = json_object_get(create, "HostConfig");
	json_t *networks = json_object_get(json_object_get(in->container, "NetworkSettings"), "Networks");
	json_t *endpoints, *ep;
	bool all = version_cmp(in->api_version, API_ALL_NETWORKS) >= 0;
	const char *mode = json_string_value(json_object_get(hc, "NetworkMode")), *primary, *k;

	if (strcmp(spec_network_mode(in->container), "default") != 0 || json_object_size(networks) == 0)
		return 0;
	primary = primary_network(networks, mode ? mode : "default");
	if (!primary) {
		/* disconnected from its NetworkMode network: keep to the networks it is on */
		primary = json_object_iter_key(json_object_iter(networks));
		if (json_object_set_new(hc, "NetworkMode", json_string(primary)) < 0)
			return err_set(e, ERR_FAILED, "out of memory");
	}
	endpoints = json_object();
	if (!endpoints || json_object_set_new(create, "NetworkingConfig",
					      json_pack("{s:o}", "EndpointsConfig", endpoints)) < 0)
		return err_set(e, ERR_FAILED, "out of memory");
	json_object_foreach(networks, k, ep) {
		bool first = strcmp(k, primary) == 0;
		json_t *conf = endpoint_build(in, k, ep, first && all ? mac : NULL, e);

		if (!conf)
			return -1;
		if (first || all) {
			if (json_object_set_new(endpoints, k, conf) < 0)
				return err_set(e, ERR_FAILED, "out of memory");
		} else if (json_array_append_new(connect, json_pack("{s:s, s:o}", "Network", k,
								    "EndpointConfig", conf)) < 0) {
			return err_set(e, ERR_FAILED, "out of memory");
		}
	}
	return 0;
}

/* Check that IN holds an inspect of the shape the engine gives (and an image inspect, if any). */
static int check_input(const struct spec_input *in, struct refit_err *e)
{
	json_t *c = in->container, *ns, *networks, *hc, *ep, *ref;
	const char *k;

	if (!in->image || !*in->image)
		return err_set(e, ERR_FAILED, "container spec: no image reference for the new container");
	ref = json_string(in->image);
	if (!ref)
		return err_set(e, ERR_FAILED, "container spec: the image reference is not UTF-8");
	json_decref(ref);
	if (!json_is_object(c))
		return err_set(e, ERR_FAILED, "container inspect: not an object");
	if (json_string_length(json_object_get(c, "Id")) == 0)
		return err_set(e, ERR_FAILED, "container inspect: Id is missing or not a string");
	if (!json_is_object(json_object_get(c, "Config")))
		return err_set(e, ERR_FAILED, "container inspect: Config is not an object");
	hc = json_object_get(c, "HostConfig");
	if (!json_is_object(hc))
		return err_set(e, ERR_FAILED, "container inspect: HostConfig is not an object");
	if (want_type(json_object_get(hc, "NetworkMode"), JSON_STRING, "HostConfig.NetworkMode", e) < 0 ||
	    want_type(json_object_get(hc, "Links"), JSON_ARRAY, "HostConfig.Links", e) < 0 ||
	    check_mounts(json_object_get(c, "Mounts"), hc, e) < 0)
		return -1;
	ns = json_object_get(c, "NetworkSettings");
	networks = json_object_get(ns, "Networks");
	if (want_type(ns, JSON_OBJECT, "NetworkSettings", e) < 0 ||
	    want_type(networks, JSON_OBJECT, "NetworkSettings.Networks", e) < 0)
		return -1;
	json_object_foreach(networks, k, ep) {
		if (check_endpoint(ep, e) < 0)
			return -1;
	}
	if (in->old_image && !json_is_object(in->old_image))
		return err_set(e, ERR_FAILED, "image inspect: not an object");
	if (in->old_image && !is_absent(json_object_get(in->old_image, "Config")) &&
	    !json_is_object(json_object_get(in->old_image, "Config")))
		return err_set(e, ERR_FAILED, "image inspect: Config is not an object");
	return 0;
}

int spec_build(const struct spec_input *in, struct spec_output *out, struct refit_err *e)
{
	json_t *create = NULL, *connect = NULL, *hc, *img_cfg;
	const char *mac;
	char *mac_copy = NULL;

	if (!in || !out)
		return err_set(e, ERR_FAILED, "container spec: no input");
	if (check_input(in, e) < 0)
		return -1;
	img_cfg = in->old_image ? json_object_get(in->old_image, "Config") : NULL;
	create = config_build(in, json_is_object(img_cfg) ? img_cfg : NULL, e);
	if (!create)
		return -1;
	hc = host_config_build(in->container, e);
	if (!hc)
		goto fail;
	if (json_object_set_new(create, "HostConfig", hc) < 0)
		goto oom;
	/* From API 1.44 the container-wide MAC address is an endpoint's. */
	mac = json_string_value(json_object_get(create, "MacAddress"));
	if (mac && *mac && version_cmp(in->api_version, API_ALL_NETWORKS) >= 0) {
		mac_copy = strdup(mac);
		if (!mac_copy)
			goto oom;
		json_object_del(create, "MacAddress");
	}
	connect = json_array();
	if (!connect)
		goto oom;
	if (networks_build(in, create, connect, mac_copy, e) < 0)
		goto fail;
	free(mac_copy);
	out->create = create;
	out->connect = connect;
	return 0;
oom:
	err_set(e, ERR_FAILED, "out of memory");
fail:
	free(mac_copy);
	json_decref(create);
	json_decref(connect);
	return -1;
}

void spec_output_free(struct spec_output *out)
{
	if (!out)
		return;
	json_decref(out->create);
	json_decref(out->connect);
	out->create = NULL;
	out->connect = NULL;
}

bool spec_fixed_host_ports(json_t *container)
{
	json_t *hc = json_object_get(container, "HostConfig");
	json_t *bindings = json_object_get(hc, "PortBindings"), *list;
	const char *port;

	json_object_foreach(bindings, port, list) {
		size_t i;
		json_t *b;

		json_array_foreach(list, i, b) {
			const char *hp = json_string_value(json_object_get(b, "HostPort"));

			if (hp && *hp && strcmp(hp, "0") != 0)
				return true;
		}
	}
	return false;
}

const char *spec_exclusive(json_t *container)
{
	json_t *nets = json_object_get(json_object_get(container, "NetworkSettings"), "Networks"), *ep;
	const char *mac = json_string_value(json_object_get(json_object_get(container, "Config"), "MacAddress"));
	const char *net;

	if (spec_fixed_host_ports(container))
		return "it publishes fixed host ports";
	if (mac && *mac)
		return "it has a fixed MAC address";
	json_object_foreach(nets, net, ep) {
		json_t *ipam = json_object_get(ep, "IPAMConfig");
		const char *v4 = json_string_value(json_object_get(ipam, "IPv4Address"));
		const char *v6 = json_string_value(json_object_get(ipam, "IPv6Address"));

		if ((v4 && *v4) || (v6 && *v6))
			return "it has a static IP address";
	}
	return NULL;
}

const char *spec_network_mode(json_t *container)
{
	json_t *hc = json_object_get(container, "HostConfig");
	const char *mode = json_string_value(json_object_get(hc, "NetworkMode"));

	if (!mode)
		return "default";
	if (strcmp(mode, "host") == 0)
		return "host";
	if (strcmp(mode, "none") == 0)
		return "none";
	if (strncmp(mode, "container:", strlen("container:")) == 0)
		return "container";
	return "default";
}
