/* The operation queue and its worker: one pass at a time, records kept for the API. */
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/engine.h"
#include "refit/events.h"
#include "refit/fsutil.h"
#include "refit/imageref.h"
#include "refit/journal.h"
#include "refit/log.h"
#include "refit/metrics.h"
#include "refit/migrate.h"
#include "refit/notify.h"
#include "refit/op.h"
#include "refit/ops.h"
#include "refit/registry.h"
#include "refit/update.h"

struct ops {
	struct refit_config *cfg;
	pthread_rwlock_t *cfg_lock;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	json_t *records; /* array, oldest first: {"id","kind","state","params","created","started"?,"finished"?,"result"?,"error"?} */
	bool stopping;
	bool paused;
	pthread_t worker;
	char paused_path[4200];
	char state_dir[4096];
	/* a reloaded configuration waiting for the pass boundary, and how many were applied */
	struct refit_config *pending;
	unsigned long applied;
	/* told after each reloaded configuration took over (the API's registry client) */
	void (*config_changed)(void *arg);
	void *config_changed_arg;
};

static json_t *now_json(void);

#define OPS_FILE "operations.json"
#define OPS_MAX_FILE (16u << 20)   /* operations.json read at most */
#define OPS_MAX_RESULT (256u << 10) /* a record's result kept on disk at most (longer: dropped there) */

/* Is S the name of a state an operation ends in? */
static bool finished_state(const char *s)
{
	return s && (strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "interrupted") == 0);
}

/*
 * Write the records to state_dir/operations.json, durably (under the lock).
 * A result too large for the file is left out of it and said so; a write
 * that fails is logged, the records stay in memory.
 */
static void save(struct ops *o)
{
	json_t *out = json_array(), *r;
	struct refit_err e = { 0 };
	char *text;
	size_t i;

	if (!out)
		return;
	json_array_foreach(o->records, i, r) {
		json_t *res = json_object_get(r, "result");
		char *dumped = res ? json_dumps(res, JSON_COMPACT) : NULL;
		json_t *copy = json_copy(r);

		if (copy && res && (!dumped || strlen(dumped) > OPS_MAX_RESULT)) {
			json_object_del(copy, "result");
			json_object_set_new(copy, "result_dropped", json_true());
		}
		free(dumped);
		json_array_append_new(out, copy);
	}
	text = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	if (!text || fs_write_atomic(o->state_dir, OPS_FILE, text, &e) < 0)
		log_warn("operations not kept in %s: %s", o->state_dir, text ? e.msg : "out of memory");
	free(text);
}

/* Is R a record as save() writes it: an object with string id, kind and state? */
static bool record_valid(json_t *r)
{
	static const char *const keys[] = { "id", "kind", "state", "created" };
	const char *id = json_string_value(json_object_get(r, "id"));

	if (!json_is_object(r) || !id || strlen(id) != 16 || strspn(id, "0123456789abcdef") != 16)
		return false;
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		const char *v = json_string_value(json_object_get(r, keys[k]));

		if (!v || strlen(v) > 64)
			return false;
	}
	return true;
}

json_t *ops_parse(const char *buf, size_t len)
{
	json_t *in = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL), *out, *r;
	size_t i, from;

	if (!json_is_array(in)) {
		json_decref(in);
		return NULL;
	}
	out = json_array();
	from = json_array_size(in) > OPS_KEEP + OPS_MAX_QUEUED ? json_array_size(in) - OPS_KEEP - OPS_MAX_QUEUED : 0;
	for (i = from; out && i < json_array_size(in); i++) {
		r = json_array_get(in, i);
		if (!record_valid(r))
			continue;
		if (!finished_state(json_string_value(json_object_get(r, "state")))) {
			bool started = strcmp(json_string_value(json_object_get(r, "state")), "running") == 0;

			json_object_set_new(r, "state", json_string("interrupted"));
			json_object_set_new(r, "error", json_string(started ? "the daemon stopped while it ran"
									    : "the daemon stopped before it began"));
			json_object_set_new(r, "finished", now_json());
		}
		json_array_append(out, r);
	}
	json_decref(in);
	return out;
}

/*
 * The records an earlier run kept in state_dir/operations.json (ops_parse).
 * A file that cannot be read or parsed is logged and left alone; no record
 * is loaded from it.
 */
static json_t *load(const char *state_dir)
{
	char path[4200], *buf = NULL;
	struct refit_err e = { 0 };
	json_t *out;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/%s", state_dir, OPS_FILE);
	if (access(path, F_OK) != 0)
		return json_array();
	if (fs_read_file(path, OPS_MAX_FILE, &buf, &len, &e) < 0) {
		log_warn("operations of the earlier run not read: %s", e.msg);
		return json_array();
	}
	out = ops_parse(buf, len);
	free(buf);
	if (!out) {
		log_warn("operations of the earlier run not read: %s is not a JSON array of records", path);
		return json_array();
	}
	return out;
}

/* Current UTC time, ISO 8601. */
static json_t *now_json(void)
{
	char buf[ISO_TIME_LEN];

	return json_string(iso_now(buf));
}

/* The record of ID (borrowed), under the lock. */
static json_t *find(struct ops *o, const char *id)
{
	size_t i;
	json_t *r;

	json_array_foreach(o->records, i, r) {
		if (strcmp(json_string_value(json_object_get(r, "id")), id) == 0)
			return r;
	}
	return NULL;
}

/* Names from PARAMS' "containers" as a C array (borrowed strings); *N gets the count. */
static char **names_of(json_t *params, size_t *n)
{
	json_t *arr = json_object_get(params, "containers"), *v;
	char **names = calloc(json_array_size(arr) + 1, sizeof(char *));
	size_t i;

	*n = 0;
	if (!names)
		return NULL;
	json_array_foreach(arr, i, v) {
		names[(*n)++] = (char *)json_string_value(v);
	}
	return names;
}

/* Does the reference text S name a tag ("repo:1.0"), not only a repository ("repo", "host:5000/repo")? */
static bool names_tag(const char *s)
{
	const char *last = strrchr(s, '/');

	return strchr(last ? last : s, ':') != NULL;
}

/*
 * Names of the containers whose image is one of IMAGES (Watchtower's
 * ?image=; op_run then keeps the managed ones): a repository without a tag
 * matches whatever tag the container runs; with a tag, only that tag.
 * NULL with E set when the engine does not list them.
 */
static json_t *names_for_images(struct engine *en, json_t *images, struct refit_err *e)
{
	size_t nwant = json_array_size(images), i, k;
	struct imageref *want = calloc(nwant ? nwant : 1, sizeof(*want));
	char **wrepo = calloc(nwant ? nwant : 1, sizeof(*wrepo));
	json_t *list = NULL, *names = NULL, *c, *img;

	if (!want || !wrepo) {
		err_set(e, ERR_FAILED, "out of memory");
		goto out;
	}
	json_array_foreach(images, k, img) {
		if (imageref_parse(json_string_value(img), &want[k], NULL) == 0)
			wrepo[k] = imageref_repository(&want[k]);
	}
	if (engine_get_json(en, "/containers/json?all=1", &list, e) < 0)
		goto out;
	names = json_array();
	json_array_foreach(list, i, c) {
		const char *name = json_string_value(json_array_get(json_object_get(c, "Names"), 0));
		const char *image = json_string_value(json_object_get(c, "Image"));
		struct imageref have = { 0 };
		char *hr;

		if (!name || !image || imageref_parse(image, &have, NULL) < 0)
			continue;
		hr = imageref_repository(&have);
		json_array_foreach(images, k, img) {
			if (hr && wrepo[k] && strcmp(hr, wrepo[k]) == 0 &&
			    (!names_tag(json_string_value(img)) ||
			     (have.tag && want[k].tag && strcmp(have.tag, want[k].tag) == 0)))
				json_array_append_new(names, json_string(name[0] == '/' ? name + 1 : name));
		}
		free(hr);
		imageref_free(&have);
	}
out:
	for (k = 0; want && wrepo && k < nwant; k++) {
		free(wrepo[k]);
		imageref_free(&want[k]);
	}
	free(want);
	free(wrepo);
	json_decref(list);
	return names;
}

/* The migration plan of the API's rename map (PARAMS "migrations", checked by api_parse); -1 out of memory. */
static int migration_of(json_t *params, struct migration_plan *plan)
{
	json_t *m;
	size_t i;

	memset(plan, 0, sizeof(*plan));
	plan->v = calloc(json_array_size(json_object_get(params, "migrations")) + 1, sizeof(*plan->v));
	if (!plan->v)
		return -1;
	json_array_foreach(json_object_get(params, "migrations"), i, m) {
		const char *from = json_string_value(json_object_get(m, "from"));
		const char *to = json_string_value(json_object_get(m, "to"));

		if (!from || !to)
			continue;
		plan->v[plan->n].from = strdup(from);
		plan->v[plan->n].to = strdup(to);
		plan->v[plan->n].preserve_data = json_is_true(json_object_get(m, "preserve_data"));
		plan->n++; /* counted first, so migrate_plan_free() frees what was made */
		if (!plan->v[plan->n - 1].from || !plan->v[plan->n - 1].to) {
			migrate_plan_free(plan);
			return -1;
		}
	}
	return 0;
}

/*
 * Run operation ID of KIND through op_run(); returns its result and fills
 * *EXIT_CODE, with ERR set when it failed.
 */
static json_t *run(struct ops *o, struct registry **reg, const char *id, enum op_kind kind, json_t *params,
		   int *exit_code, char *err, size_t errlen)
{
	struct op_request rq = {
		.kind = kind,
		.id = id,
		.all = json_is_true(json_object_get(params, "all")),
		.dry_run = json_is_true(json_object_get(params, "dry_run")),
		.restore_data = json_is_true(json_object_get(params, "restore_data")),
		.force = json_is_true(json_object_get(params, "force")),
		.to_tag = json_string_value(json_object_get(params, "target_version")),
		.preserve_data = json_is_true(json_object_get(params, "preserve_data")),
		.rename = json_is_true(json_object_get(params, "rename_containers")),
	};
	struct migration_plan plan = { 0 };
	struct op_outcome out;
	json_t *result;
	char **names = NULL;
	size_t n = 0;

	*exit_code = 0;
	if (json_is_array(json_object_get(params, "images"))) {
		struct engine *en = NULL;
		struct refit_err e = { 0 };
		json_t *matched;

		if (engine_open(&en, o->cfg->docker_host, &e) < 0) {
			*exit_code = e.kind ? e.kind : ERR_FAILED;
			snprintf(err, errlen, "%s", e.msg);
			return NULL;
		}
		matched = names_for_images(en, json_object_get(params, "images"), &e);
		engine_close(en);
		if (!matched) {
			*exit_code = e.kind ? e.kind : ERR_FAILED;
			snprintf(err, errlen, "%s", e.msg);
			return NULL;
		}
		json_object_set_new(params, "containers", matched);
		if (json_array_size(matched) == 0)
			return json_pack("{s:[]}", "containers");
	}
	names = names_of(params, &n);
	if (!names || (kind == OP_MIGRATE && migration_of(params, &plan) < 0)) {
		free(names);
		*exit_code = ERR_FAILED;
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rq.names = names;
	rq.nnames = n;
	rq.plan = &plan;
	*exit_code = op_run(o->cfg, reg, &rq, &out);
	if (*exit_code != 0)
		snprintf(err, errlen, "%s", out.err.msg);
	result = out.result;
	out.result = NULL;
	op_outcome_free(&out);
	migrate_plan_free(&plan);
	free(names);
	return result;
}

/* Is an operation running (under the lock)? */
static bool running_op(struct ops *o)
{
	size_t i;
	json_t *r;

	json_array_foreach(o->records, i, r) {
		if (strcmp(json_string_value(json_object_get(r, "state")), "running") == 0)
			return true;
	}
	return false;
}

/*
 * Put the pending configuration in place of the running one (under O's
 * lock, which is let go meanwhile: a request holding the configuration's
 * read side may wait on it). Only the worker calls it, between operations.
 */
static void apply_pending(struct ops *o)
{
	struct refit_config *fresh = o->pending, old;

	o->pending = NULL;
	pthread_mutex_unlock(&o->lock);
	pthread_rwlock_wrlock(o->cfg_lock); /* only requests and the model job read it now, briefly */
	old = *o->cfg;
	*o->cfg = *fresh;
	pthread_rwlock_unlock(o->cfg_lock);
	config_free(&old);
	free(fresh);
	log_info("configuration reloaded");
	if (o->config_changed)
		o->config_changed(o->config_changed_arg);
	pthread_mutex_lock(&o->lock);
	o->applied++;
	pthread_cond_broadcast(&o->changed);
}

/* The worker: takes the oldest queued operation, runs it, records the outcome. */
static void *worker(void *arg)
{
	struct ops *o = arg;
	struct registry *reg = NULL; /* kept across passes: connections and tokens */

	for (;;) {
		json_t *rec = NULL, *r, *result, *params;
		char kind[16], id[17], err[600] = "";
		int exit_code = 0;
		bool ran = false;
		size_t i;

		pthread_mutex_lock(&o->lock);
		while (!o->stopping && !rec) {
			if (o->pending) { /* between operations: the reloaded configuration takes over */
				apply_pending(o);
				registry_free(reg); /* credentials, insecure_registries, concurrency: read anew */
				reg = NULL;
				continue;
			}
			json_array_foreach(o->records, i, r) {
				if (strcmp(json_string_value(json_object_get(r, "state")), "queued") == 0) {
					rec = r;
					break;
				}
			}
			if (!rec)
				pthread_cond_wait(&o->changed, &o->lock);
		}
		if (o->stopping) {
			pthread_mutex_unlock(&o->lock);
			break;
		}
		json_incref(rec);
		json_object_set_new(rec, "state", json_string("running"));
		json_object_set_new(rec, "started", now_json());
		snprintf(kind, sizeof(kind), "%s", json_string_value(json_object_get(rec, "kind")));
		snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(rec, "id")));
		params = json_deep_copy(json_object_get(rec, "params"));
		save(o);
		pthread_cond_broadcast(&o->changed);
		pthread_mutex_unlock(&o->lock);
		events_pass(id, kind, "running", NULL, NULL);

		if (strcmp(kind, "scheduled") == 0 && ops_paused(o)) {
			metrics_skipped();
			result = NULL;
			snprintf(err, sizeof(err), "skipped: updates are paused");
		} else {
			/* "scheduled" is an update pass that a pause skips */
			enum op_kind k = op_kind_from_string(kind);

			pthread_rwlock_rdlock(o->cfg_lock);
			ran = true;
			result = run(o, &reg, id, k == _OP_KIND_INVALID ? OP_UPDATE : k, params, &exit_code, err,
				     sizeof(err));
			pthread_rwlock_unlock(o->cfg_lock);
		}
		json_decref(params);

		pthread_mutex_lock(&o->lock);
		json_object_set_new(rec, "state", json_string(err[0] ? "failed" : "succeeded"));
		json_object_set_new(rec, "finished", now_json());
		if (result)
			json_object_set_new(rec, "result", result);
		if (err[0])
			json_object_set_new(rec, "error", json_string(err));
		if (ran) /* what `refit KIND` would have exited with */
			json_object_set_new(rec, "exit_code", json_integer(exit_code));
		log_info("operation %s (%s): %s", json_string_value(json_object_get(rec, "id")), kind,
			 err[0] ? err : "succeeded");
		events_pass(id, kind, err[0] ? "failed" : "succeeded", err, result);
		save(o);
		json_decref(rec);
		pthread_cond_broadcast(&o->changed);
		pthread_mutex_unlock(&o->lock);
		malloc_trim(0); /* the pass's memory back to the system while the daemon waits */
	}
	registry_free(reg);
	return NULL;
}

int ops_start(struct ops **ret, struct refit_config *cfg, pthread_rwlock_t *cfg_lock, struct refit_err *e)
{
	struct ops *o = calloc(1, sizeof(*o));

	if (!o || !(o->records = load(cfg->state_dir))) {
		free(o);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	snprintf(o->state_dir, sizeof(o->state_dir), "%s", cfg->state_dir);
	if (json_array_size(o->records) > 0)
		save(o); /* what was interrupted is said so from now on */
	o->cfg = cfg;
	o->cfg_lock = cfg_lock;
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->changed, NULL);
	snprintf(o->paused_path, sizeof(o->paused_path), "%s/paused", cfg->state_dir);
	o->paused = access(o->paused_path, F_OK) == 0;
	if (pthread_create(&o->worker, NULL, worker, o) != 0) {
		json_decref(o->records);
		free(o);
		return err_set(e, ERR_FAILED, "cannot start the worker thread");
	}
	*ret = o;
	return 0;
}

int ops_submit(struct ops *o, const char *kind, json_t *params, char id[17], struct refit_err *e)
{
	size_t queued = 0, i;
	json_t *r, *rec;

	pthread_mutex_lock(&o->lock);
	if (o->stopping) {
		pthread_mutex_unlock(&o->lock);
		return err_set(e, ERR_FAILED, "stopping");
	}
	if ((strcmp(kind, "update") == 0 || strcmp(kind, "migrate") == 0) && o->paused) {
		pthread_mutex_unlock(&o->lock);
		return err_set(e, ERR_FAILED, "paused");
	}
	json_array_foreach(o->records, i, r) {
		queued += strcmp(json_string_value(json_object_get(r, "state")), "queued") == 0;
	}
	if (queued >= OPS_MAX_QUEUED) {
		pthread_mutex_unlock(&o->lock);
		return err_set(e, ERR_FAILED, "busy");
	}
	journal_new_id(id);
	rec = json_pack("{s:s, s:s, s:s, s:O, s:o}", "id", id, "kind", kind, "state", "queued", "params",
			params ? params : json_null(), "created", now_json());
	if (!rec) {
		pthread_mutex_unlock(&o->lock);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	json_array_append_new(o->records, rec);
	/* Forget the oldest finished records past OPS_KEEP. */
	for (i = 0; json_array_size(o->records) > OPS_KEEP + OPS_MAX_QUEUED && i < json_array_size(o->records);) {
		const char *st = json_string_value(json_object_get(json_array_get(o->records, i), "state"));

		if (finished_state(st))
			json_array_remove(o->records, i);
		else
			i++;
	}
	save(o);
	pthread_cond_broadcast(&o->changed);
	pthread_mutex_unlock(&o->lock);
	return 0;
}

json_t *ops_get(struct ops *o, const char *id)
{
	json_t *r;

	pthread_mutex_lock(&o->lock);
	r = find(o, id);
	r = r ? json_deep_copy(r) : NULL;
	pthread_mutex_unlock(&o->lock);
	return r;
}

json_t *ops_wait(struct ops *o, const char *id, int timeout)
{
	struct timespec until;
	json_t *r = NULL;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout;
	pthread_mutex_lock(&o->lock);
	for (;;) {
		const char *st;

		r = find(o, id);
		st = r ? json_string_value(json_object_get(r, "state")) : NULL;
		if (!st || finished_state(st))
			break;
		if (pthread_cond_timedwait(&o->changed, &o->lock, &until) == ETIMEDOUT)
			break;
	}
	r = r ? json_deep_copy(r) : NULL;
	pthread_mutex_unlock(&o->lock);
	return r;
}

bool ops_paused(struct ops *o)
{
	bool p;

	pthread_mutex_lock(&o->lock);
	p = o->paused;
	pthread_mutex_unlock(&o->lock);
	return p;
}

int ops_set_paused(struct ops *o, bool paused, struct refit_err *e)
{
	int rc = 0;

	pthread_mutex_lock(&o->lock);
	if (paused) {
		int fd = open(o->paused_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

		if (fd < 0 || fsync(fd) < 0)
			rc = err_set(e, ERR_FAILED, "%s: %s", o->paused_path, strerror(errno));
		if (fd >= 0)
			close(fd);
	} else if (unlink(o->paused_path) < 0 && errno != ENOENT) {
		rc = err_set(e, ERR_FAILED, "%s: %s", o->paused_path, strerror(errno));
	}
	if (rc == 0)
		o->paused = paused;
	pthread_mutex_unlock(&o->lock);
	return rc;
}

json_t *ops_status(struct ops *o)
{
	json_t *running = json_null(), *last = json_null(), *r;
	size_t queued = 0, i;
	json_t *st;

	pthread_mutex_lock(&o->lock);
	json_array_foreach(o->records, i, r) {
		const char *s = json_string_value(json_object_get(r, "state"));

		if (strcmp(s, "queued") == 0)
			queued++;
		else if (strcmp(s, "running") == 0)
			running = json_object_get(r, "id");
		else
			last = r;
	}
	st = json_pack("{s:O, s:I, s:b, s:o}", "running", running, "queued", (json_int_t)queued, "paused", o->paused,
		       "last", json_is_null(last) ? json_null() : json_deep_copy(last));
	pthread_mutex_unlock(&o->lock);
	return st;
}

void ops_stop(struct ops *o)
{
	size_t i;
	json_t *r;

	if (!o || o->stopping)
		return;
	pthread_mutex_lock(&o->lock);
	o->stopping = true;
	json_array_foreach(o->records, i, r) {
		if (strcmp(json_string_value(json_object_get(r, "state")), "queued") == 0) {
			json_object_set_new(r, "state", json_string("failed"));
			json_object_set_new(r, "error", json_string("daemon stopping"));
		}
	}
	save(o);
	pthread_cond_broadcast(&o->changed);
	pthread_mutex_unlock(&o->lock);
	pthread_join(o->worker, NULL); /* the running operation completes its swaps first */
}

void ops_on_config(struct ops *o, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&o->lock);
	o->config_changed = fn;
	o->config_changed_arg = arg;
	pthread_mutex_unlock(&o->lock);
}

bool ops_reconfigure(struct ops *o, struct refit_config *fresh)
{
	bool now;

	pthread_mutex_lock(&o->lock);
	if (o->pending) { /* an earlier reload not applied yet: this one replaces it */
		config_free(o->pending);
		free(o->pending);
	}
	o->pending = fresh;
	now = !running_op(o);
	pthread_cond_broadcast(&o->changed);
	pthread_mutex_unlock(&o->lock);
	return now;
}

bool ops_reload_pending(struct ops *o)
{
	bool p;

	pthread_mutex_lock(&o->lock);
	p = o->pending != NULL;
	pthread_mutex_unlock(&o->lock);
	return p;
}

unsigned long ops_config_generation(struct ops *o)
{
	unsigned long n;

	pthread_mutex_lock(&o->lock);
	n = o->applied;
	pthread_mutex_unlock(&o->lock);
	return n;
}

void ops_free(struct ops *o)
{
	if (!o)
		return;
	ops_stop(o);
	if (o->pending) {
		config_free(o->pending);
		free(o->pending);
	}
	json_decref(o->records);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->changed);
	free(o);
}
