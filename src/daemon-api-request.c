/* Management API bodies: strict JSON shapes, bounded, with messages a client can act on. */
#include <stdio.h>
#include <string.h>

#include "refit/base.h"
#include "refit/api-request.h"
#include "refit/imageref.h"
#include "refit/migrate.h"
#include "refit/semver.h"

/* Report a problem. */

/* Validate "containers": an array of at most API_MAX_NAMES container names. */
static int check_names(json_t *v, struct refit_err *e)
{
	size_t i;
	json_t *n;

	if (!json_is_array(v))
		return err_set(e, ERR_USAGE, "%s: expected an array of container names", "containers");
	if (json_array_size(v) > API_MAX_NAMES)
		return err_set(e, ERR_USAGE, "%s: at most 256 names", "containers");
	json_array_foreach(v, i, n) {
		if (!json_is_string(n) || !container_name_valid(json_string_value(n)))
			return err_set(e, ERR_USAGE, "%s: each entry must be a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+, at most 128)",
				   "containers");
	}
	return 0;
}

/*
 * The fleet command's migration_config, checked as a migration file is.
 * With a rename_map PARAMS gets "migrations"; without one the operation is
 * an update pass, and PARAMS gets "rename_containers" (the containers that
 * declare refit.rename-to move to that name) and "preserve_data" (volumes
 * backed up before each swap) when they are true.
 */
static int check_migration(json_t *mc, json_t *params, struct refit_err *e)
{
	struct migration_plan plan;

	if (migrate_from_json(mc, &plan, e) < 0)
		return -1; /* its message names the field: 400 */
	if (plan.n > 0) {
		json_object_set_new(params, "migrations", migrate_plan_json(&plan));
	} else {
		if (json_is_true(json_object_get(mc, "rename_containers")))
			json_object_set_new(params, "rename_containers", json_true());
		if (json_is_true(json_object_get(mc, "preserve_data")))
			json_object_set_new(params, "preserve_data", json_true());
	}
	migrate_plan_free(&plan);
	return 0;
}

int api_parse(enum api_body kind, const char *body, size_t len, struct api_request *ret, struct refit_err *e)
{
	static const char *const actions[] = { "trigger", "rollback", "pause", "resume", "status", NULL };
	json_error_t jerr;
	json_t *j, *v;
	const char *key;

	memset(ret, 0, sizeof(*ret));
	ret->action = kind == BODY_ROLLBACK || kind == BODY_RELEASE ? ACT_ROLLBACK : ACT_TRIGGER;
	if (len > API_MAX_BODY)
		return err_set(e, ERR_USAGE, "%s", "body larger than 64 KiB");
	j = len == 0 ? json_object() : json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		err_set(e, ERR_USAGE, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return -1;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(e, ERR_USAGE, "%s", "expected a JSON object");
	}
	ret->params = json_object();
	json_object_foreach(j, key, v) {
		int rc = 0;

		if (strcmp(key, "containers") == 0) {
			rc = check_names(v, e);
			if (rc == 0)
				json_object_set(ret->params, "containers", v);
		} else if (kind == BODY_UPDATE && strcmp(key, "dry_run") == 0) {
			if (!json_is_boolean(v))
				rc = err_set(e, ERR_USAGE, "%s: expected true or false", key);
			else
				json_object_set(ret->params, "dry_run", v);
		} else if ((kind == BODY_ROLLBACK && (strcmp(key, "all") == 0 || strcmp(key, "restore_data") == 0)) ||
			   (kind == BODY_RELEASE && strcmp(key, "all") == 0) ||
			   (kind == BODY_UPDATE && strcmp(key, "force") == 0)) {
			if (!json_is_boolean(v))
				rc = err_set(e, ERR_USAGE, "%s: expected true or false", key);
			else
				json_object_set(ret->params, key, v);
		} else if (kind == BODY_COMMAND && strcmp(key, "action") == 0) {
			int a = -1;

			for (int i = 0; json_is_string(v) && actions[i]; i++)
				if (strcmp(json_string_value(v), actions[i]) == 0)
					a = i;
			if (a < 0)
				rc = err_set(e, ERR_USAGE, "%s: expected trigger, rollback, pause, resume or status", key);
			else
				ret->action = (enum api_action)a;
		} else if ((kind == BODY_COMMAND || kind == BODY_UPDATE) && strcmp(key, "target_version") == 0) {
			if (!json_is_string(v) || !tag_valid(json_string_value(v)) ||
			    strlen(json_string_value(v)) != json_string_length(v))
				rc = err_set(e, ERR_USAGE, "%s: expected a tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})", key);
			else
				json_object_set(ret->params, "target_version", v);
		} else if (kind == BODY_COMMAND && strcmp(key, "migration_config") == 0) {
			rc = check_migration(v, ret->params, e);
		} else {
			rc = err_set(e, ERR_USAGE, "unknown field \"%.64s\"", key);
		}
		if (rc < 0) {
			json_decref(j);
			json_decref(ret->params);
			ret->params = NULL;
			return -1;
		}
	}
	if (kind == BODY_COMMAND && !json_object_get(j, "action")) {
		json_decref(j);
		json_decref(ret->params);
		ret->params = NULL;
		return err_set(e, ERR_USAGE, "%s: missing (trigger, rollback, pause, resume or status)", "action");
	}
	if (json_object_get(ret->params, "migrations") &&
	    (ret->action != ACT_TRIGGER || json_object_get(ret->params, "containers") ||
	     json_object_get(ret->params, "target_version"))) {
		json_decref(j);
		json_decref(ret->params);
		ret->params = NULL;
		return err_set(e, ERR_USAGE, "%s", "migration_config: only with \"action\": \"trigger\" and without \"containers\" or \"target_version\" (the rename_map names them)");
	}
	if (ret->action != ACT_TRIGGER && (json_object_get(ret->params, "target_version") ||
					   json_object_get(ret->params, "rename_containers") ||
					   json_object_get(ret->params, "preserve_data"))) {
		const char *what = json_object_get(ret->params, "target_version") ? "target_version" : "migration_config";

		json_decref(j);
		json_decref(ret->params);
		ret->params = NULL;
		return err_set(e, ERR_USAGE, "%s: goes with the action trigger only", what);
	}
	if (json_is_true(json_object_get(ret->params, "force")) && !json_object_get(ret->params, "containers")) {
		json_decref(j);
		json_decref(ret->params);
		ret->params = NULL;
		return err_set(e, ERR_USAGE, "%s", "force: name the containers to try");
	}
	if (ret->action == ACT_ROLLBACK && !json_object_get(ret->params, "containers") &&
	    !json_is_true(json_object_get(ret->params, "all"))) {
		if (kind == BODY_COMMAND) {
			json_object_set_new(ret->params, "all", json_true()); /* the fleet rolls the whole host back */
		} else {
			json_decref(j);
			json_decref(ret->params);
			ret->params = NULL;
			return err_set(e, ERR_USAGE, "%s", "name the containers, or give \"all\": true");
		}
	}
	json_decref(j);
	return 0;
}

int api_parse_images(const char *query, json_t **ret, struct refit_err *e)
{
	json_t *arr;
	char buf[4096];
	char *save = NULL;

	*ret = NULL;
	if (!query || !*query)
		return err_set(e, ERR_USAGE, "%s", "image: expected image names separated by commas");
	if (strlen(query) >= sizeof(buf))
		return err_set(e, ERR_USAGE, "%s", "image: too long");
	if (!(arr = json_array()))
		return err_set(e, ERR_USAGE, "%s", "out of memory");
	snprintf(buf, sizeof(buf), "%s", query);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		struct imageref ref = { 0 };

		if (json_array_size(arr) >= API_MAX_NAMES || strlen(t) > 255 || imageref_parse(t, &ref, NULL) < 0) {
			json_decref(arr);
			err_set(e, ERR_USAGE, "image: \"%.64s\" is not an image reference", t);
			return -1;
		}
		imageref_free(&ref);
		json_array_append_new(arr, json_string(t));
	}
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return err_set(e, ERR_USAGE, "%s", "image: expected image names separated by commas");
	}
	*ret = json_pack("{s:o}", "images", arr);
	return 0;
}

json_t *api_parse_names(const char *query, struct refit_err *e)
{
	json_t *arr = json_array();
	char buf[4096];
	char *save = NULL;

	if (!arr) {
		err_set(e, ERR_FAILED, "%s", "out of memory");
		return NULL;
	}
	if (!query || !*query || strlen(query) >= sizeof(buf)) {
		json_decref(arr);
		err_set(e, ERR_USAGE, "%s", "container: expected container names separated by commas");
		return NULL;
	}
	snprintf(buf, sizeof(buf), "%s", query);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (json_array_size(arr) >= API_MAX_NAMES || !container_name_valid(t)) {
			json_decref(arr);
			err_set(e, ERR_USAGE, "container: \"%.64s\" is not a container name", t);
			return NULL;
		}
		json_array_append_new(arr, json_string(t));
	}
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		err_set(e, ERR_USAGE, "%s", "container: expected container names separated by commas");
		return NULL;
	}
	return arr;
}
