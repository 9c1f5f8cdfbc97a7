/* The operation queue and its worker: one pass at a time, records kept for the API. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/engine.h"
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
};

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

/* Names of the managed containers whose image is one of IMAGES (Watchtower's ?image=). */
static json_t *names_for_images(struct engine *en, json_t *images)
{
	json_t *list = NULL, *names = json_array(), *c, *img;
	struct refit_err e = { 0 };
	size_t i, k;

	if (engine_get_json(en, "/containers/json?all=1", &list, &e) < 0)
		return names;
	json_array_foreach(list, i, c) {
		const char *name = json_string_value(json_array_get(json_object_get(c, "Names"), 0));
		const char *image = json_string_value(json_object_get(c, "Image"));
		struct imageref have = { 0 };
		char *hr;

		if (!name || !image || imageref_parse(image, &have, NULL) < 0)
			continue;
		hr = imageref_repository(&have);
		json_array_foreach(images, k, img) {
			struct imageref want = { 0 };
			char *wr;

			if (imageref_parse(json_string_value(img), &want, NULL) < 0)
				continue;
			wr = imageref_repository(&want);
			if (hr && wr && strcmp(hr, wr) == 0)
				json_array_append_new(names, json_string(name[0] == '/' ? name + 1 : name));
			free(wr);
			imageref_free(&want);
		}
		free(hr);
		imageref_free(&have);
	}
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
		.to_tag = json_string_value(json_object_get(params, "target_version")),
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

		if (engine_open(&en, o->cfg->docker_host, &e) < 0) {
			*exit_code = e.kind ? e.kind : ERR_FAILED;
			snprintf(err, errlen, "%s", e.msg);
			return NULL;
		}
		json_object_set_new(params, "containers", names_for_images(en, json_object_get(params, "images")));
		engine_close(en);
		if (json_array_size(json_object_get(params, "containers")) == 0)
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
		pthread_cond_broadcast(&o->changed);
		pthread_mutex_unlock(&o->lock);

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
		json_decref(rec);
		pthread_cond_broadcast(&o->changed);
		pthread_mutex_unlock(&o->lock);
	}
	registry_free(reg);
	return NULL;
}

int ops_start(struct ops **ret, struct refit_config *cfg, pthread_rwlock_t *cfg_lock, struct refit_err *e)
{
	struct ops *o = calloc(1, sizeof(*o));

	if (!o || !(o->records = json_array())) {
		free(o);
		return err_set(e, ERR_FAILED, "out of memory");
	}
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

		if (strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0)
			json_array_remove(o->records, i);
		else
			i++;
	}
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
		if (!st || strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0)
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
	pthread_cond_broadcast(&o->changed);
	pthread_mutex_unlock(&o->lock);
	pthread_join(o->worker, NULL); /* the running operation completes its swaps first */
}

void ops_free(struct ops *o)
{
	if (!o)
		return;
	ops_stop(o);
	json_decref(o->records);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->changed);
	free(o);
}
