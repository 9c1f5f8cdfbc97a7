/* Dependency graph of managed containers, read from what users and compose write. */
#include <stdio.h>
#include <string.h>

#include "refit/depends.h"
#include "refit/select.h"

/* Container name of an inspect, without the leading '/'. */
static const char *ins_name(json_t *ins)
{
	const char *n = json_string_value(json_object_get(ins, "Name"));

	return n && *n == '/' ? n + 1 : n;
}

/* Append NAME to OUT when it is in ALL, is not SELF and is not there yet. */
static void add_dep(json_t *out, json_t *all, const char *self, const char *name, size_t len)
{
	char buf[256];
	size_t i;
	json_t *v;

	while (len > 0 && (*name == ' ' || *name == '/'))
		name++, len--;
	while (len > 0 && name[len - 1] == ' ')
		len--;
	if (len == 0 || len >= sizeof(buf) || json_array_size(out) >= DEPENDS_MAX)
		return;
	memcpy(buf, name, len);
	buf[len] = '\0';
	if (!json_object_get(all, buf) || strcmp(buf, self) == 0)
		return;
	json_array_foreach(out, i, v) {
		if (strcmp(json_string_value(v), buf) == 0)
			return;
	}
	json_array_append_new(out, json_string(buf));
}

/* The name in ALL of the container with ID (full or a prefix of 12+), or NULL. */
static const char *name_by_id(json_t *all, const char *id)
{
	const char *name;
	json_t *ins;

	if (strlen(id) < 12)
		return NULL;
	json_object_foreach(all, name, ins) {
		const char *cid = json_string_value(json_object_get(ins, "Id"));

		if (cid && strncmp(cid, id, strlen(id)) == 0)
			return name;
	}
	return NULL;
}

/* The container in ALL that is compose service SVC of PROJECT. */
static const char *compose_service(json_t *all, const char *project, const char *svc, size_t len)
{
	const char *name;
	json_t *ins;

	json_object_foreach(all, name, ins) {
		json_t *l = json_object_get(json_object_get(ins, "Config"), "Labels");
		const char *p = json_string_value(json_object_get(l, "com.docker.compose.project"));
		const char *s = json_string_value(json_object_get(l, "com.docker.compose.service"));

		if (p && s && strcmp(p, project) == 0 && strlen(s) == len && strncmp(s, svc, len) == 0)
			return name;
	}
	return NULL;
}

json_t *depends_of(json_t *ins, json_t *all)
{
	json_t *out = json_array(), *labels = json_object_get(json_object_get(ins, "Config"), "Labels");
	json_t *host = json_object_get(ins, "HostConfig"), *v;
	const char *self = ins_name(ins), *s, *mode;
	size_t i;

	if (!out || !self)
		return out;
	/* refit.depends-on / Watchtower's: "a, b" */
	if ((s = label_get(labels, "depends-on"))) {
		for (const char *p = s; *p;) {
			size_t n = strcspn(p, ",");

			add_dep(out, all, self, p, n);
			p += n + (p[n] == ',');
		}
	}
	/* compose: "db:service_started:false,cache:service_healthy:true" */
	s = json_string_value(json_object_get(labels, "com.docker.compose.depends_on"));
	if (s && strlen(s) <= LABEL_MAX_VALUE) {
		const char *project = json_string_value(json_object_get(labels, "com.docker.compose.project"));

		for (const char *p = s; *p && project;) {
			size_t n = strcspn(p, ","), svc = strcspn(p, ":,");
			const char *name = compose_service(all, project, p, svc);

			if (name)
				add_dep(out, all, self, name, strlen(name));
			p += n + (p[n] == ',');
		}
	}
	/* links: "/db:/web/db" */
	json_array_foreach(json_object_get(host, "Links"), i, v) {
		const char *l = json_string_value(v);

		if (l)
			add_dep(out, all, self, l, strcspn(l, ":"));
	}
	/* network_mode container:NAME or container:ID */
	mode = json_string_value(json_object_get(host, "NetworkMode"));
	if (mode && strncmp(mode, "container:", 10) == 0) {
		const char *target = mode + 10, *byid = name_by_id(all, target);

		if (byid)
			target = byid;
		add_dep(out, all, self, target, strlen(target));
	}
	return out;
}

/* Depth-first visit: dependencies of NAME go to OUT before NAME. */
static void visit(json_t *all, json_t *want, const char *name, json_t *state, json_t *out, int depth)
{
	json_t *deps, *d;
	size_t i;

	if (json_object_get(state, name) || depth > 256)
		return; /* done, or on the current path: a cycle is cut here */
	json_object_set_new(state, name, json_true());
	deps = depends_of(json_object_get(all, name), all);
	json_array_foreach(deps, i, d) {
		visit(all, want, json_string_value(d), state, out, depth + 1);
	}
	json_decref(deps);
	if (json_object_get(want, name))
		json_array_append_new(out, json_string(name));
}

json_t *depends_order(json_t *names, json_t *all)
{
	json_t *out = json_array(), *state = json_object(), *want = json_object(), *v;
	size_t i;

	json_array_foreach(names, i, v) {
		json_object_set(want, json_string_value(v), json_true());
	}
	json_array_foreach(names, i, v) {
		visit(all, want, json_string_value(v), state, out, 0);
	}
	json_decref(state);
	json_decref(want);
	return out;
}
