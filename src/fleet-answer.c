/* What the fleet reads from a host's API answers: bounded, validated, cleaned for printing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refit/base.h"
#include "refit/fleet.h"
#include "refit/migrate.h"

#define FIELD_MAX 512 /* bytes kept of any string from an answer */

/* A copy of S cut to FIELD_MAX bytes with anything but printable ASCII as '?', or NULL. */
static char *clean(const char *s)
{
	size_t n;
	char *out;

	if (!s)
		return NULL;
	n = strnlen(s, FIELD_MAX);
	if (!(out = malloc(n + 1)))
		return NULL;
	for (size_t i = 0; i < n; i++)
		out[i] = s[i] >= ' ' && s[i] <= '~' ? s[i] : '?';
	out[n] = '\0';
	return out;
}

static void clean_into(const char *s, char *out, size_t outlen)
{
	char *c = clean(s);

	snprintf(out, outlen, "%s", c ? c : "");
	free(c);
}

/* A JSON object from BODY, or NULL with ERR. */
static json_t *load_object(const char *body, size_t len, struct refit_err *e)
{
	json_error_t je;
	json_t *j;

	if (len > FLEET_MAX_ANSWER) {
		err_set(e, ERR_FAILED, "answer larger than %u bytes", FLEET_MAX_ANSWER);
		return NULL;
	}
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		err_set(e, ERR_FAILED, "answer is not JSON (line %d)", je.line);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		err_set(e, ERR_FAILED, "answer is not a JSON object");
		return NULL;
	}
	return j;
}

void fleet_op_free(struct fleet_op *op)
{
	if (!op)
		return;
	for (size_t i = 0; i < op->n; i++) {
		free(op->v[i].name);
		free(op->v[i].image);
		free(op->v[i].status);
		free(op->v[i].old_digest);
		free(op->v[i].new_digest);
		free(op->v[i].error);
	}
	free(op->v);
	free(op->error);
	memset(op, 0, sizeof(*op));
}

/* An optional string member: NULL when absent or null; *BAD set when of another type. */
static const char *opt_string(json_t *o, const char *key, bool *bad)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

/* The entries of LIST (an array of containers as `refit check --json` has them) into OP. */
static int parse_list(json_t *list, bool rollback, struct fleet_op *op, struct refit_err *e)
{
	bool bad = false;
	json_t *c;
	size_t i;

	if (json_array_size(list) > FLEET_MAX_CONTAINERS) {
		err_set(e, ERR_FAILED, "operation result with more than %d containers", FLEET_MAX_CONTAINERS);
		return -1;
	}
	if (json_array_size(list) && !(op->v = calloc(json_array_size(list), sizeof(*op->v)))) {
		err_set(e, ERR_FAILED, "out of memory");
		return -1;
	}
	json_array_foreach(list, i, c) {
		struct fleet_change *ch = &op->v[op->n];
		const char *name = json_is_object(c) ? opt_string(c, "name", &bad) : NULL;
		const char *status = json_is_object(c) ? opt_string(c, "status", &bad) : NULL;

		if (!name || !status || bad) {
			err_set(e, ERR_FAILED, "operation result: container %zu has no name or status", i + 1);
			return -1;
		}
		op->n++;
		ch->name = clean(name);
		ch->status = clean(status);
		ch->image = clean(opt_string(c, "image", &bad));
		ch->old_digest = clean(opt_string(c, "current_digest", &bad));
		ch->new_digest = clean(opt_string(c, "latest_digest", &bad));
		ch->error = clean(opt_string(c, "error", &bad));
		if (bad || !ch->name || !ch->status) {
			err_set(e, ERR_FAILED, "operation result: container %zu is malformed", i + 1);
			return -1;
		}
		if (strcmp(status, rollback ? "rolled-back" : "updated") == 0) {
			/* a changed container's name goes back to the host in a rollback */
			if (!container_name_valid(ch->name)) {
				err_set(e, ERR_FAILED, "operation result: container %zu has no valid container name", i + 1);
				return -1;
			}
			op->changed++;
		} else if (strcmp(status, "failed") == 0 || (!rollback && strcmp(status, "rolled-back") == 0))
			op->failed++;
	}
	return 0;
}

int fleet_parse_op(const char *body, size_t len, bool rollback, struct fleet_op *op, struct refit_err *e)
{
	static const char *const states[] = { "queued", "running", "succeeded", "failed", "interrupted", NULL };
	json_t *j, *result, *list;
	const char *st;
	bool bad = false, known = false;

	memset(op, 0, sizeof(*op));
	if (!(j = load_object(body, len, e)))
		return -1;
	st = opt_string(j, "state", &bad);
	for (int k = 0; st && states[k]; k++)
		known |= strcmp(st, states[k]) == 0;
	if (!known) {
		err_set(e, ERR_FAILED, "operation record without a known state");
		goto bad;
	}
	snprintf(op->state, sizeof(op->state), "%s", st);
	op->error = clean(opt_string(j, "error", &bad));
	result = json_object_get(j, "result");
	list = json_object_get(result, "containers");
	if (bad || (result && !json_is_null(result) && (!json_is_object(result) || !json_is_array(list)))) {
		err_set(e, ERR_FAILED, "operation record with a malformed result");
		goto bad;
	}
	if (parse_list(list, rollback, op, e) < 0)
		goto bad;
	json_decref(j);
	return 0;
bad:
	json_decref(j);
	fleet_op_free(op);
	return -1;
}

int fleet_parse_accepted(const char *body, size_t len, char id[17])
{
	struct refit_err e = { 0 };
	json_t *j = load_object(body, len, &e);
	const char *s = json_string_value(json_object_get(j, "operation"));
	int rc = -1;

	if (s && strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16) {
		memcpy(id, s, 17);
		rc = 0;
	}
	json_decref(j);
	return rc;
}

int fleet_parse_health(const char *body, size_t len, char *version, size_t vlen, bool *paused, struct refit_err *e)
{
	json_t *j = load_object(body, len, e), *p;
	const char *st, *v;
	int rc = 0;

	if (vlen)
		version[0] = '\0';
	*paused = false;
	if (!j)
		return -1;
	st = json_string_value(json_object_get(j, "status"));
	v = json_string_value(json_object_get(j, "version"));
	p = json_object_get(j, "paused");
	if (v && vlen)
		clean_into(v, version, vlen < 64 ? vlen : 64);
	if (json_is_boolean(p))
		*paused = json_is_true(p);
	if (!st || strcmp(st, "ok") != 0) {
		char s[64];

		clean_into(st ? st : "(none)", s, sizeof(s));
		err_set(e, ERR_FAILED, "health status is %s, not ok", s);
		rc = -1;
	}
	json_decref(j);
	return rc;
}

void fleet_parse_error(const char *body, size_t len, char *out, size_t outlen)
{
	json_error_t je;
	json_t *j = len <= FLEET_MAX_ANSWER ? json_loadb(body, len, 0, &je) : NULL;

	if (outlen)
		out[0] = '\0';
	if (json_is_string(json_object_get(j, "error")))
		clean_into(json_string_value(json_object_get(j, "error")), out, outlen);
	json_decref(j);
}

int fleet_parse_containers(const char *body, size_t len, struct fleet_op *op, struct refit_err *e)
{
	json_t *j;

	memset(op, 0, sizeof(*op));
	if (!(j = load_object(body, len, e)))
		return -1;
	if (!json_is_array(json_object_get(j, "containers"))) {
		err_set(e, ERR_FAILED, "answer without a list of containers");
		json_decref(j);
		return -1;
	}
	snprintf(op->state, sizeof(op->state), "succeeded");
	if (parse_list(json_object_get(j, "containers"), false, op, e) < 0) {
		json_decref(j);
		fleet_op_free(op);
		return -1;
	}
	json_decref(j);
	return 0;
}
