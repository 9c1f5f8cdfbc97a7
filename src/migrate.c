/* Migrations: the file (and the API's rename map), the checks against the engine, the alias swaps. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "refit/base.h"
#include "refit/fsutil.h"
#include "refit/imageref.h"
#include "refit/log.h"
#include "refit/migrate.h"
#include "refit/select.h"
#include "refit/strategy.h"
#include "refit/swarm.h"
#include "refit/update.h"
#include "refit/yamlfile.h"

void migrate_plan_free(struct migration_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->n; i++) {
		free(plan->v[i].from);
		free(plan->v[i].to);
		free(plan->v[i].image);
	}
	free(plan->v);
	plan->v = NULL;
	plan->n = 0;
}

/* Check one complete entry, and that its names are not used by an earlier one. */
static int entry_check(const struct migration_plan *plan, const struct migration *m, const char *where,
		       struct refit_err *e)
{
	if (!m->from)
		return err_set(e, ERR_USAGE, "%s: from: missing (the existing container)", where);
	if (!m->to)
		return err_set(e, ERR_USAGE, "%s: to: missing (the new name)", where);
	if (strcmp(m->from, m->to) == 0)
		return err_set(e, ERR_USAGE, "%s: to: the new name must differ from \"%s\"", where, m->from);
	for (size_t i = 0; i < plan->n; i++) {
		const struct migration *o = &plan->v[i];

		if (strcmp(o->from, m->from) == 0)
			return err_set(e, ERR_USAGE, "%s: from: \"%s\" is migrated twice", where, m->from);
		if (strcmp(o->to, m->to) == 0)
			return err_set(e, ERR_USAGE, "%s: to: \"%s\" is the new name of two containers", where, m->to);
		if (strcmp(o->to, m->from) == 0 || strcmp(o->from, m->to) == 0)
			return err_set(e, ERR_USAGE, "%s: \"%s\" is both a container migrated and a new name", where,
				       strcmp(o->to, m->from) == 0 ? m->from : m->to);
	}
	return 0;
}

/* Append M (taking its strings) to PLAN. */
static int plan_push(struct migration_plan *plan, struct migration *m, struct refit_err *e)
{
	struct migration *nv = realloc(plan->v, (plan->n + 1) * sizeof(*nv));

	if (!nv)
		return err_set(e, ERR_FAILED, "out of memory");
	plan->v = nv;
	plan->v[plan->n++] = *m;
	memset(m, 0, sizeof(*m));
	return 0;
}

static void entry_free(struct migration *m)
{
	free(m->from);
	free(m->to);
	free(m->image);
	memset(m, 0, sizeof(*m));
}

/* Set field KEY of M from the string V; WHERE prefixes messages. */
static int entry_set(struct migration *m, const char *key, const char *v, const char *where, struct refit_err *e)
{
	if (strcmp(key, "from") == 0 || strcmp(key, "to") == 0) {
		char **slot = key[0] == 'f' ? &m->from : &m->to;

		if (!container_name_valid(v))
			return err_set(e, ERR_USAGE, "%s: %s: expected a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+, at most 128), got \"%.64s\"",
				       where, key, v);
		if (*slot)
			return err_set(e, ERR_USAGE, "%s: %s: given twice", where, key);
		*slot = strdup(v);
		return *slot ? 0 : err_set(e, ERR_FAILED, "out of memory");
	}
	if (strcmp(key, "image") == 0) {
		struct imageref ref = { 0 };
		struct refit_err ie = { 0 };

		if (strlen(v) > 255 || imageref_parse(v, &ref, &ie) < 0)
			return err_set(e, ERR_USAGE, "%s: image: \"%.64s\" is not an image reference%s%s", where, v,
				       ie.msg[0] ? ": " : "", ie.msg);
		imageref_free(&ref);
		if (m->image)
			return err_set(e, ERR_USAGE, "%s: image: given twice", where);
		m->image = strdup(v);
		return m->image ? 0 : err_set(e, ERR_FAILED, "out of memory");
	}
	return err_set(e, ERR_USAGE, "%s: unknown key \"%.64s\" (from, to, image, preserve_data, rollback_on_failure)",
		       where, key);
}

/*
 * One rename_map entry, OLD: V, into M: "new", or {"to": "new", "image":
 * "ref"} as a migration file's entry can say (nothing else).
 */
static int rename_entry(struct migration *m, const char *old, json_t *v, const char *where, struct refit_err *e)
{
	const char *k;
	json_t *f;

	if (entry_set(m, "from", old, where, e) < 0)
		return -1;
	if (json_is_string(v))
		return entry_set(m, "to", json_string_value(v), where, e);
	if (!json_is_object(v) || !json_is_string(json_object_get(v, "to")))
		return err_set(e, ERR_USAGE, "%s: expected \"old\": \"new\" or \"old\": {\"to\": \"new\", \"image\": \"ref\"}", where);
	json_object_foreach(v, k, f) {
		if ((strcmp(k, "to") != 0 && strcmp(k, "image") != 0) || !json_is_string(f))
			return err_set(e, ERR_USAGE, "%s: \"%.32s\": expected to and image (strings) only", where, k);
		if (entry_set(m, k, json_string_value(f), where, e) < 0)
			return -1;
	}
	return 0;
}

/* Set a boolean field of M. */
static int entry_bool(struct migration *m, const char *key, int v, const char *where, struct refit_err *e)
{
	if (v < 0)
		return err_set(e, ERR_USAGE, "%s: %s: expected true or false", where, key);
	if (strcmp(key, "preserve_data") == 0) {
		m->preserve_data = v == 1;
		return 0;
	}
	/* rollback_on_failure */
	if (v == 0)
		return err_set(e, ERR_USAGE,
			       "%s: %s: refit always puts the old container back when a migration fails; false is not supported",
			       where, key);
	return 0;
}

/* YAML's booleans as refit's configuration reads them: 1, 0, or -1. */
static int yaml_bool(const char *s)
{
	static const char *const yes[] = { "true", "True", "TRUE", "yes", "on", NULL };
	static const char *const no[] = { "false", "False", "FALSE", "no", "off", NULL };

	for (int i = 0; s && yes[i]; i++) {
		if (strcmp(s, yes[i]) == 0)
			return 1;
		if (strcmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

/* One entry of the file's list. */
static int parse_entry(yaml_document_t *doc, yaml_node_t *en, const char *name, struct migration_plan *plan,
		       struct refit_err *e)
{
	struct migration m = { .line = (unsigned long)en->start_mark.line + 1 };
	char where[300];
	int rc = -1;

	snprintf(where, sizeof(where), "%s:%lu: migrations[%zu]", name, m.line, plan->n);
	if (en->type != YAML_MAPPING_NODE)
		return err_set(e, ERR_USAGE, "%s: expected a mapping {from, to, image, preserve_data, rollback_on_failure}",
			       where);
	for (yaml_node_pair_t *p = en->data.mapping.pairs.start; p < en->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(doc, p->key), *vn = yaml_document_get_node(doc, p->value);
		const char *k = kn && kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : NULL;
		const char *v = vn && vn->type == YAML_SCALAR_NODE ? (const char *)vn->data.scalar.value : NULL;

		snprintf(where, sizeof(where), "%s:%lu: migrations[%zu]", name,
			 kn ? (unsigned long)kn->start_mark.line + 1 : m.line, plan->n);
		if (!k || strlen(k) > 64) {
			err_set(e, ERR_USAGE, "%s: keys must be short strings", where);
			goto out;
		}
		for (yaml_node_pair_t *q = en->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *qk = yaml_document_get_node(doc, q->key);

			if (qk && qk->type == YAML_SCALAR_NODE && strcmp((const char *)qk->data.scalar.value, k) == 0) {
				err_set(e, ERR_USAGE, "%s: %s: key given twice", where, k);
				goto out;
			}
		}
		if (!v) {
			err_set(e, ERR_USAGE, "%s: %s: expected a single value", where, k);
			goto out;
		}
		if (strcmp(k, "preserve_data") == 0 || strcmp(k, "rollback_on_failure") == 0) {
			if (entry_bool(&m, k, yaml_bool(v), where, e) < 0)
				goto out;
		} else if (entry_set(&m, k, v, where, e) < 0) {
			goto out;
		}
	}
	snprintf(where, sizeof(where), "%s:%lu: migrations[%zu]", name, m.line, plan->n);
	if (entry_check(plan, &m, where, e) < 0 || plan_push(plan, &m, e) < 0)
		goto out;
	rc = 0;
out:
	entry_free(&m);
	return rc;
}

int migrate_parse(const char *buf, size_t len, const char *name, struct migration_plan *plan, struct refit_err *e)
{
	yaml_document_t doc;
	yaml_node_t *root, *list = NULL;
	int rc = -1;

	memset(plan, 0, sizeof(*plan));
	if (yfile_load(buf, len, MIGRATE_MAX_FILE, name, &doc, e) < 0)
		return -1;
	root = yaml_document_get_root_node(&doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		err_set(e, ERR_USAGE, "%s:%lu: expected a mapping with the key migrations", name,
			root ? (unsigned long)root->start_mark.line + 1 : 1);
		goto out;
	}
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(&doc, p->key);
		const char *k = kn && kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "?";
		unsigned long line = kn ? (unsigned long)kn->start_mark.line + 1 : 0;

		if (strcmp(k, "migrations") != 0) {
			err_set(e, ERR_USAGE, "%s:%lu: unknown key \"%.64s\" (expected migrations)", name, line, k);
			goto out;
		}
		if (list) {
			err_set(e, ERR_USAGE, "%s:%lu: migrations: key given twice", name, line);
			goto out;
		}
		list = yaml_document_get_node(&doc, p->value);
		if (!list || list->type != YAML_SEQUENCE_NODE) {
			err_set(e, ERR_USAGE, "%s:%lu: migrations: expected a list of {from, to, ...}", name, line);
			goto out;
		}
	}
	if (!list || list->data.sequence.items.top == list->data.sequence.items.start) {
		err_set(e, ERR_USAGE, "%s:%lu: migrations: expected at least one entry", name,
			list ? (unsigned long)list->start_mark.line + 1 : 1);
		goto out;
	}
	if (list->data.sequence.items.top - list->data.sequence.items.start > MIGRATE_MAX_ENTRIES) {
		err_set(e, ERR_USAGE, "%s:%lu: migrations: at most %d entries", name,
			(unsigned long)list->start_mark.line + 1, MIGRATE_MAX_ENTRIES);
		goto out;
	}
	for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++) {
		yaml_node_t *en = yaml_document_get_node(&doc, *it);

		if (!en) {
			err_set(e, ERR_USAGE, "%s: migrations: invalid entry", name);
			goto out;
		}
		if (parse_entry(&doc, en, name, plan, e) < 0)
			goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		migrate_plan_free(plan);
	yaml_document_delete(&doc);
	return rc;
}

int migrate_load_file(const char *path, struct migration_plan *plan, struct refit_err *e)
{
	char *buf;
	size_t got;
	int rc;

	memset(plan, 0, sizeof(*plan));
	if (fs_read_file(path, MIGRATE_MAX_FILE, &buf, &got, e) < 0)
		return -1;
	rc = migrate_parse(buf, got, path, plan, e);
	free(buf);
	return rc;
}

int migrate_from_json(json_t *mc, struct migration_plan *plan, struct refit_err *e)
{
	json_t *map = json_object_get(mc, "rename_map"), *v;
	int preserve = 0;
	const char *key;
	size_t i = 0;

	memset(plan, 0, sizeof(*plan));
	if (!json_is_object(mc))
		return err_set(e, ERR_USAGE, "migration_config: expected an object");
	json_object_foreach(mc, key, v) {
		if (strcmp(key, "rename_containers") == 0 || strcmp(key, "preserve_data") == 0 ||
		    strcmp(key, "rollback_on_failure") == 0) {
			if (!json_is_boolean(v))
				return err_set(e, ERR_USAGE, "migration_config.%s: expected true or false", key);
			if (strcmp(key, "rollback_on_failure") == 0 && json_is_false(v))
				return err_set(e, ERR_USAGE,
					       "migration_config.%s: refit always puts the old container back when a migration fails; false is not supported",
					       key);
			if (strcmp(key, "preserve_data") == 0)
				preserve = json_is_true(v);
		} else if (strcmp(key, "rename_map") == 0) {
			if (!json_is_object(v))
				return err_set(e, ERR_USAGE, "migration_config.%s: expected an object of old: new names", key);
		} else {
			return err_set(e, ERR_USAGE, "migration_config: unknown field \"%.64s\"", key);
		}
	}
	if (!json_is_true(json_object_get(mc, "rename_containers")) && json_object_size(map) > 0)
		return err_set(e, ERR_USAGE, "migration_config: a rename_map needs \"rename_containers\": true");
	if (json_object_size(map) == 0)
		return 0; /* no map: the update pass renames what declares refit.rename-to (see api_parse) */
	if (json_object_size(map) > MIGRATE_MAX_ENTRIES)
		return err_set(e, ERR_USAGE, "migration_config.rename_map: at most %d pairs", MIGRATE_MAX_ENTRIES);
	json_object_foreach(map, key, v) {
		struct migration m = { .preserve_data = preserve != 0 };
		char where[64];

		snprintf(where, sizeof(where), "migration_config.rename_map[%zu]", i++);
		if (rename_entry(&m, key, v, where, e) < 0 || entry_check(plan, &m, where, e) < 0 ||
		    plan_push(plan, &m, e) < 0) {
			entry_free(&m);
			migrate_plan_free(plan);
			return -1;
		}
	}
	return 0;
}

json_t *migrate_plan_json(const struct migration_plan *plan)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < plan->n; i++) {
		const struct migration *m = &plan->v[i];

		json_array_append_new(arr, json_pack("{s:s, s:s, s:s?, s:b}", "from", m->from, "to", m->to, "image",
						     m->image, "preserve_data", m->preserve_data));
	}
	return arr;
}

/* Inspect container NAME: 1 with *RET, 0 when there is none, -1 on error. */
static int inspect_container(struct engine *en, const char *name, json_t **ret, struct refit_err *e)
{
	struct refit_err ie = { 0 };
	int rc = engine_container_inspect(en, name, ret, &ie);

	if (rc < 0)
		*e = ie;
	return rc;
}

/* "FILE:LINE: migrations[I]" or "rename_map[I]" for messages. */
static void entry_where(const char *source, const struct migration *m, size_t i, char *buf, size_t len)
{
	if (source)
		snprintf(buf, len, "%s:%lu: migrations[%zu]", source, m->line, i);
	else
		snprintf(buf, len, "migration_config.rename_map[%zu]", i);
}

/* The container's name without its slash. */
static const char *bare_name(json_t *ins)
{
	const char *n = json_string_value(json_object_get(ins, "Name"));

	return n && *n == '/' ? n + 1 : n;
}

int migrate_check(struct engine *en, const struct refit_config *cfg, const struct migration_plan *plan,
		  const char *source, struct refit_err *e)
{
	for (size_t i = 0; i < plan->n; i++) {
		const struct migration *m = &plan->v[i];
		json_t *from = NULL, *to = NULL;
		char where[400];
		int f, t;

		entry_where(source, m, i, where, sizeof(where));
		f = inspect_container(en, m->from, &from, e);
		if (f < 0)
			return -1;
		t = inspect_container(en, m->to, &to, e);
		if (t < 0) {
			json_decref(from);
			return -1;
		}
		if (t == 1 && strcmp(bare_name(to) ? bare_name(to) : "", m->to) != 0) {
			json_decref(to); /* an ID that starts with the new name: not a name taken */
			to = NULL;
			t = 0;
		}
		if (f == 0 && t == 0) {
			err_set(e, ERR_USAGE, "%s: from: no container named \"%s\"", where, m->from);
		} else if (f == 1 && t == 1) {
			err_set(e, ERR_USAGE, "%s: to: \"%s\" is already the name of another container (%.12s)", where,
				m->to, json_string_value(json_object_get(to, "Id")));
		} else if (f == 1 && strcmp(bare_name(from) ? bare_name(from) : "", m->from) != 0) {
			err_set(e, ERR_USAGE, "%s: from: \"%s\" is an ID or an alias; give the container's name (%s)", where,
				m->from, bare_name(from) ? bare_name(from) : "?");
		} else {
			json_t *ins = f ? from : to;
			const char *n = f ? m->from : m->to;
			json_t *labels = json_object_get(json_object_get(ins, "Config"), "Labels");
			const char *scope = label_get(labels, "scope");

			if (!select_in_scope(cfg, labels))
				err_set(e, ERR_USAGE, "%s: from: \"%s\" belongs to %s%s (refit.scope)", where, n,
					scope && *scope ? "scope " : "another scope", scope && *scope ? scope : "");
			else if (label_bool(labels, "enable") == 0)
				err_set(e, ERR_USAGE, "%s: from: \"%s\" is labelled refit.enable=false", where, n);
			else if (swarm_is_task(labels))
				err_set(e, ERR_USAGE, "%s: from: \"%s\" is a task of a Swarm service: Swarm replaces it, not refit",
					where, n);
			else
				f = -2; /* fine */
		}
		json_decref(from);
		json_decref(to);
		if (f != -2)
			return -1;
	}
	return 0;
}

/* Pull IMAGE (by digest when it pins one, else by its tag) with the configured credentials. */
static int pull_ref(struct engine *en, const struct refit_config *cfg, const char *image, struct refit_err *e)
{
	struct imageref ref = { 0 };
	int rc;

	if (imageref_parse(image, &ref, e) < 0)
		return -1;
	rc = update_pull(en, cfg, &ref, ref.digest, e);
	imageref_free(&ref);
	return rc;
}

/* The first repo digest of image inspect IMG, or NULL (borrowed). */
static const char *repo_digest(json_t *img)
{
	const char *d = json_string_value(json_array_get(json_object_get(img, "RepoDigests"), 0));
	const char *at = d ? strchr(d, '@') : NULL;

	return at ? at + 1 : NULL;
}

/* Run one entry; fills OUT. Returns its exit-code class. */
static int migrate_one(struct engine *en, struct journal *j, const struct refit_config *cfg,
		       const struct migration *m, bool dry_run, json_t *out)
{
	json_t *old = NULL, *old_image = NULL, *new_image = NULL;
	struct refit_err e = { 0 };
	struct swap_request rq = { 0 };
	struct swap_plan sp;
	struct swap_result res;
	const char *image, *img_id;
	char opid[17], dir[4200] = "";
	int code = ERR_FAILED, f;

	f = inspect_container(en, m->from, &old, &e);
	if (f <= 0) {
		if (f == 0) {
			json_t *to = NULL;

			/* Already migrated (a second run of the same file): nothing to do. */
			if (inspect_container(en, m->to, &to, &e) == 1) {
				json_object_set_new(out, "status", json_string("migrated"));
				json_object_set_new(out, "id", json_string(json_string_value(json_object_get(to, "Id"))));
				json_object_set_new(out, "note", json_string("already migrated"));
				json_decref(to);
				return 0;
			}
			err_set(&e, ERR_FAILED, "no container named %s", m->from);
		}
		goto fail;
	}
	image = m->image ? m->image : json_string_value(json_object_get(json_object_get(old, "Config"), "Image"));
	json_object_set_new(out, "id", json_string(json_string_value(json_object_get(old, "Id"))));
	json_object_set_new(out, "image", image ? json_string(image) : json_null());
	if (!image) {
		err_set(&e, ERR_FAILED, "the container has no image reference");
		goto fail;
	}
	if (dry_run) {
		size_t i, nvol = 0;
		json_t *mnt;

		json_array_foreach(json_object_get(old, "Mounts"), i, mnt) {
			nvol += strcmp(json_string_value(json_object_get(mnt, "Type")) ?: "", "volume") == 0;
		}
		json_object_set_new(out, "status", json_string("planned"));
		json_object_set_new(out, "volumes", json_integer((json_int_t)nvol));
		json_decref(old);
		return 0;
	}
	if (m->image && pull_ref(en, cfg, m->image, &e) < 0) {
		err_prefix(&e, "pull: ");
		goto fail;
	}
	if (engine_image_inspect(en, image, &new_image, &e) <= 0)
		goto fail;
	if (engine_image_inspect(en, json_string_value(json_object_get(old, "Image")) ?: "none", &old_image, &e) <= 0) {
		err_clear(&e);
		old_image = NULL; /* gone: every setting is kept as the container has it */
	}
	img_id = json_string_value(json_object_get(new_image, "Id"));
	rq.kind = "migrate";
	rq.name = m->from;
	rq.old = old;
	rq.old_image = old_image;
	rq.old_digest = repo_digest(old_image);
	rq.image = image;
	rq.new_image_id = img_id;
	rq.new_digest = repo_digest(new_image);
	rq.strategy = "alias";
	rq.rename_to = m->to;
	if (swap_plan(&rq, &sp, &e) < 0) /* planned before the backup: a refused plan leaves nothing behind */
		goto fail;
	journal_new_id(opid);
	if (m->preserve_data) {
		if (backup_take(en, cfg, old, opid, dir, sizeof(dir), &e) < 0) {
			err_prefix(&e, "backup (nothing was changed): ");
			goto fail;
		}
		json_object_set_new(out, "backup", json_string(dir));
	}
	rq.backup = dir[0] ? dir : NULL;
	swap_run(en, j, cfg, &rq, &sp, &res);
	log_info("%s -> %s: %s%s%s", m->from, m->to, entry_status_to_string(res.outcome), res.error[0] ? ": " : "", res.error);
	if (res.outcome == ENTRY_UPDATED) {
		json_object_set_new(out, "status", json_string("migrated"));
		json_object_set_new(out, "new_id", json_string(res.new_id));
		backup_prune(cfg, m->from);
		code = 0;
	} else {
		json_object_set_new(out, "status", json_string(entry_status_to_string(res.outcome)));
		json_object_set_new(out, "error", json_string(res.error));
	}
	json_decref(old);
	json_decref(old_image);
	json_decref(new_image);
	return code;
fail:
	log_error("%s -> %s: %s", m->from, m->to, e.msg);
	json_object_set_new(out, "status", json_string("failed"));
	json_object_set_new(out, "error", json_string(e.msg));
	json_decref(old);
	json_decref(old_image);
	json_decref(new_image);
	return e.kind == ERR_UNREACHABLE ? ERR_UNREACHABLE : ERR_FAILED;
}

int migrate_run(struct engine *en, struct journal *j, const struct refit_config *cfg,
		const struct migration_plan *plan, bool dry_run, json_t **result)
{
	json_t *arr = json_array();
	int code = 0;

	for (size_t i = 0; arr && i < plan->n; i++) {
		const struct migration *m = &plan->v[i];
		json_t *o = json_pack("{s:s, s:s, s:b}", "from", m->from, "to", m->to, "preserve_data", m->preserve_data);
		int rc;

		if (!o)
			break;
		rc = migrate_one(en, j, cfg, m, dry_run, o);
		json_array_append_new(arr, o);
		if (rc > code)
			code = rc;
	}
	*result = json_pack("{s:o}", "migrations", arr ? arr : json_array());
	return code;
}

json_t *migrate_notify_result(json_t *result)
{
	json_t *list = json_array(), *m;
	size_t i;

	if (!list)
		return NULL;
	json_array_foreach(json_object_get(result, "migrations"), i, m) {
		const char *st = json_string_value(json_object_get(m, "status"));
		json_t *o;

		if (!st || strcmp(st, "planned") == 0 || json_object_get(m, "note"))
			continue; /* nothing changed */
		o = json_pack("{s:O?, s:O?, s:O?, s:s, s:s}", "name", json_object_get(m, "to"), "from",
			      json_object_get(m, "from"), "image", json_object_get(m, "image"), "status",
			      strcmp(st, "migrated") == 0 ? "updated" : st, "strategy", "migrate");
		if (o && json_is_string(json_object_get(m, "error")))
			json_object_set(o, "error", json_object_get(m, "error"));
		if (o)
			json_array_append_new(list, o);
	}
	return json_pack("{s:o}", "containers", list);
}
