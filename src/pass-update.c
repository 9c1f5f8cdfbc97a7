/* Update passes: pull the digest the check found, swap with the container's strategy; rollbacks. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "refit/auth.h"
#include "refit/base.h"
#include "refit/depends.h"
#include "refit/engine-spec.h"
#include "refit/hooks.h"
#include "refit/imageref.h"
#include "refit/journal-record.h"
#include "refit/log.h"
#include "refit/migrate.h"
#include "refit/select.h"
#include "refit/strategy.h"
#include "refit/swarm.h"
#include "refit/update.h"
#include "refit/waited.h"

#define PULL_TIMEOUT (30L * 60)

int update_recover(struct engine *en, struct journal *j, const struct refit_config *cfg)
{
	json_t *pending = journal_pending(j), *rec;
	size_t i;
	int handled = 0, rc = 0;

	json_array_foreach(pending, i, rec) {
		struct swap_result res;
		const char *name = jr_str(rec, JR_CONTAINER);
		const char *step = jr_str(rec, JR_STEP);

		log_warn("%s: finishing an operation interrupted at step %s", name ? name : "?", step ? step : "?");
		if (swarm_record(rec)) {
			if (swarm_recover(en, j, rec) < 0)
				rc = -1;
			else
				handled++;
			continue;
		}
		if (swap_recover(en, j, cfg, rec, &res) < 0) {
			log_error("%s: recovery failed: %s", name ? name : "?", res.error);
			rc = -1;
			continue;
		}
		log_info("%s: recovered: %s", name ? name : "?", entry_status_to_string(res.outcome));
		handled++;
	}
	json_decref(pending);
	return rc < 0 ? -1 : handled;
}

/* Set an entry's status and error. */
static void set_outcome(struct check_entry *c, enum entry_status status, const char *error)
{
	c->status = status;
	free(c->error);
	c->error = error && *error ? strdup(error) : NULL;
	c->err_kind = c->error ? ERR_FAILED : ERR_NONE;
}

/* Inspect container (IMAGE false) or image ID into *RET, or fail the entry. */
static int inspect_or_fail(struct engine *en, bool image, const char *id, json_t **ret, struct check_entry *c)
{
	struct refit_err e = { 0 };

	if ((image ? engine_image_inspect(en, id, ret, &e) : engine_container_inspect(en, id, ret, &e)) <= 0) {
		set_outcome(c, ENTRY_FAILED, e.msg);
		return -1;
	}
	return 0;
}

int update_pull(struct engine *en, const struct refit_config *cfg, const struct imageref *ref, const char *digest,
		struct refit_err *e)
{
	struct cred cr = { 0 };
	char *repo = imageref_repository(ref), *hdr = NULL, *by_digest = NULL;
	int found, rc = -1;

	if (!repo || (digest && asprintf(&by_digest, "%s@%s", repo, digest) < 0)) {
		free(repo);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	found = auth_lookup(cfg, ref->domain, &cr, e);
	if (found < 0)
		goto out;
	if (found == 1 &&
	    !(hdr = auth_engine_header(&cr, strcmp(ref->domain, "docker.io") == 0 ? "https://index.docker.io/v1/" :
										      ref->domain))) {
		err_set(e, ERR_FAILED, "out of memory");
		goto out;
	}
	rc = by_digest ? engine_pull(en, by_digest, NULL, hdr, PULL_TIMEOUT, e) :
			 engine_pull(en, repo, ref->tag ? ref->tag : "latest", hdr, PULL_TIMEOUT, e);
out:
	if (hdr)
		explicit_bzero(hdr, strlen(hdr));
	free(hdr);
	cred_free(&cr);
	free(by_digest);
	free(repo);
	return rc;
}

/* Point REF's tag at the pulled DIGEST of its repository. */
static int tag_digest(struct engine *en, const struct imageref *ref, const char *digest, struct refit_err *e)
{
	char *repo = imageref_repository(ref), *er = NULL, path[2048];
	int rc = -1;

	if (!repo || !(er = engine_escape(en, repo))) {
		free(repo);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	snprintf(path, sizeof(path), "/images/%s@%s/tag?repo=%s&tag=%s", repo, digest, er, ref->tag ? ref->tag : "latest");
	rc = engine_call(en, "POST", path, NULL, 0, NULL, NULL, e);
	if (rc < 0)
		err_prefix(e, "tag %s@%s: ", repo, digest);
	free(er);
	free(repo);
	return rc;
}

/* Key of PULLED for a container: its reference and the digest it moves to. */
static void pulled_key(const struct check_entry *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s@%s", check_entry_image(c), c->latest_digest ? c->latest_digest : "");
}

/* A stale container's swap, prepared: the inspects it needs, the request and its plan. */
struct prepared {
	json_t *old, *old_image, *new_image;
	struct swap_request rq;
	struct swap_plan plan;
};

static void prepared_free(struct prepared *p)
{
	json_decref(p->old);
	json_decref(p->old_image);
	json_decref(p->new_image);
	memset(p, 0, sizeof(*p));
}

/* Inspect what C's swap needs and plan it; -1 with C failed when it cannot run. */
static int update_prepare(struct engine *en, struct check_entry *c, json_t *pulled, struct prepared *p)
{
	struct refit_err e = { 0 };
	struct imageref ref = { 0 };
	json_t *labels;

	memset(p, 0, sizeof(*p));
	if (imageref_parse(check_entry_image(c), &ref, &e) < 0) {
		set_outcome(c, ENTRY_FAILED, e.msg);
		return -1;
	}
	imageref_free(&ref);
	if (!c->no_pull) {
		char key[1200];

		pulled_key(c, key, sizeof(key));
		if (json_is_string(json_object_get(pulled, key))) {
			set_outcome(c, ENTRY_FAILED, json_string_value(json_object_get(pulled, key)));
			return -1;
		}
	}
	if (inspect_or_fail(en, false, c->id, &p->old, c) < 0 ||
	    inspect_or_fail(en, true, check_entry_image(c), &p->new_image, c) < 0)
		return -1;
	if (inspect_or_fail(en, true, c->image_id, &p->old_image, c) < 0) {
		p->old_image = NULL; /* gone: every setting is then kept as the container has it */
		c->status = ENTRY_UNSET;
	}
	labels = json_object_get(json_object_get(p->old, "Config"), "Labels");
	p->rq = (struct swap_request){
		.kind = "update",
		.name = c->name,
		.old = p->old,
		.old_image = p->old_image,
		.old_digest = c->current_digest,
		.image = check_entry_image(c), /* the tag it moves to, when it moves */
		.new_image_id = json_string_value(json_object_get(p->new_image, "Id")),
		.new_digest = c->latest_digest,
		.strategy = c->strategy,
		.rename_to = json_string_value(json_object_get(labels, "refit.rename-to")),
	};
	if (swap_plan(&p->rq, &p->plan, &e) < 0) {
		set_outcome(c, ENTRY_FAILED, e.msg);
		return -1;
	}
	return 0;
}

/* Swap one stale container onto the image its check found, as P planned. */
static void update_one(struct engine *en, struct journal *j, const struct refit_config *cfg, struct check_entry *c,
		       const struct prepared *p)
{
	struct swap_result res;
	struct timespec t0;
	double waited0;

	waited0 = waited_seconds();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	swap_run(en, j, cfg, &p->rq, &p->plan, &res);
	c->swap_seconds = mono_since(&t0);
	/* Refit's own share: the swap minus what its thread waited for (engine, probes, timers). */
	c->overhead_seconds = c->swap_seconds - (waited_seconds() - waited0);
	log_info("%s: %s (%s)%s%s", c->name, entry_status_to_string(res.outcome), res.strategy ? res.strategy : c->strategy,
		 res.error[0] ? ": " : "", res.error);
	if (res.strategy)
		c->strategy = res.strategy;
	set_outcome(c, res.outcome, res.error);
	if (res.outcome == ENTRY_UPDATED && res.new_id[0]) {
		free(c->id);
		c->id = strdup(res.new_id);
	}
}

/*
 * cleanup: remove the images NAME ran before, keeping the last keep_previous
 * for rollback. Never forced, so the engine refuses an image that any
 * container (running or not) still uses, or that has other tags.
 */
static void cleanup_images(struct engine *en, const struct refit_config *cfg, const char *name, const char *current)
{
	json_t *hist = journal_history(cfg->state_dir, name), *seen = json_object(), *r;
	long kept = 0;

	for (size_t i = json_array_size(hist); i-- > 0;) {
		const char *id, *kind;
		struct refit_err e = { 0 };
		char path[160];
		long status = 0;

		r = json_array_get(hist, i);
		kind = jr_str(r, JR_KIND);
		id = json_string_value(json_object_get(json_object_get(r, JR_OLD_INSPECT), "Image"));
		if (!id || !kind || jr_outcome(r) != ENTRY_UPDATED || strncmp(id, "sha256:", 7) != 0 ||
		    strlen(id) != 71 || json_object_get(seen, id) || (current && strcmp(id, current) == 0))
			continue;
		json_object_set_new(seen, id, json_true());
		if (kept++ < cfg->keep_previous)
			continue;
		snprintf(path, sizeof(path), "/images/%s", id);
		if (engine_call(en, "DELETE", path, NULL, 120, NULL, &status, &e) == 0)
			log_info("%s: removed image %.19s", name, id);
		else if (status != 404)
			log_info("%s: kept image %.19s: %s", name, id, e.msg);
	}
	json_decref(seen);
	json_decref(hist);
}

/* Every managed container that depends on NAME, directly or through others (new array). */
static json_t *dependents_of(json_t *all, const char *name)
{
	json_t *out = json_array(), *queue = json_array(), *v;
	const char *n;
	json_t *ins;

	json_array_append_new(queue, json_string(name));
	for (size_t q = 0; q < json_array_size(queue) && q < 1024; q++) {
		const char *target = json_string_value(json_array_get(queue, q));

		json_object_foreach(all, n, ins) {
			json_t *deps = depends_of(ins, all);
			bool hit = false, seen = strcmp(n, name) == 0;
			size_t i;

			json_array_foreach(deps, i, v) {
				hit |= strcmp(json_string_value(v), target) == 0;
			}
			json_decref(deps);
			json_array_foreach(out, i, v) {
				seen |= strcmp(json_string_value(v), n) == 0;
			}
			if (hit && !seen) {
				json_array_append_new(out, json_string(n));
				json_array_append_new(queue, json_string(n));
			}
		}
	}
	json_decref(queue);
	return out;
}

/* Stop (STOP true, dependents first) or start (dependencies first) the running containers in NAMES. */
static void stop_or_start(struct engine *en, json_t *all, json_t *names, bool stop)
{
	json_t *order = depends_order(names, all);
	size_t n = json_array_size(order);

	for (size_t k = 0; k < n; k++) {
		const char *name = json_string_value(json_array_get(order, stop ? n - 1 - k : k));
		json_t *ins = json_object_get(all, name);
		struct refit_err e = { 0 };
		char path[160];

		if (!json_is_true(json_object_get(json_object_get(ins, "State"), "Running")))
			continue; /* only what was running is stopped and started again */
		snprintf(path, sizeof(path), "/containers/%s/%s%s", name, stop ? "stop" : "start", stop ? "?t=10" : "");
		if (engine_call(en, "POST", path, NULL, 90, NULL, NULL, &e) < 0)
			log_warn("%s: %s dependent: %s", name, stop ? "stopping" : "starting", e.msg);
		else
			log_info("%s: %s (depends on an updated container)", name, stop ? "stopped" : "started");
	}
	json_decref(order);
}

static atomic_bool stop_requested;

void update_request_stop(void)
{
	atomic_store(&stop_requested, true);
}

/* Run hook KIND of C in container ID; logs failures. Returns the exit code, or -1. */
static int run_hook(struct engine *en, json_t *ins, const char *kind, const char *id, struct check_entry *c,
		    char *why, size_t why_len)
{
	struct refit_err e = { 0 };
	json_t *labels = json_object_get(json_object_get(ins, "Config"), "Labels");
	int rc;

	if (!json_is_true(json_object_get(json_object_get(ins, "State"), "Running")))
		return 0; /* hooks run in running containers only */
	rc = hook_run(en, labels, kind, id, &e);
	if (rc < 0)
		snprintf(why, why_len, "%s", e.msg);
	else if (rc != 0)
		snprintf(why, why_len, "hook %s exited %d", kind, rc);
	if (rc != 0)
		log_warn("%s: %s", c->name, why);
	return rc;
}

/* What the workers of one update pass share. */
struct pass_work {
	const struct refit_config *cfg;
	struct journal *j;
	struct check_result *res;
	json_t *all;        /* name -> inspect of every managed container (read only) */
	json_t *pulled;     /* "REF@DIGEST" -> true, or the pull's error (read only) */
	json_t *groups;     /* arrays of names, each in dependency order */
	size_t next;
	pthread_mutex_t lock;
};

/* Update one stale container NAME: hooks, dependents, swap, cleanup. */
static void update_entry(struct engine *en, struct pass_work *w, const char *name)
{
	json_t *ins = json_object_get(w->all, name), *deps;
	struct check_entry *c = NULL;
	struct prepared p;
	char why[512] = "";
	bool downtime;
	int hrc;

	for (size_t i = 0; i < w->res->n && !c; i++)
		if (strcmp(w->res->v[i].name, name) == 0)
			c = &w->res->v[i];
	if (!c || !ins)
		return;
	if (atomic_load(&stop_requested)) {
		set_outcome(c, ENTRY_SKIPPED, "refit is stopping: this swap was not started");
		return;
	}
	if (run_hook(en, ins, "pre-check", c->id, c, why, sizeof(why)) != 0 ||
	    (hrc = run_hook(en, ins, "pre-update", c->id, c, why, sizeof(why))) == HOOK_SKIP) {
		set_outcome(c, ENTRY_SKIPPED, why);
		return;
	}
	if (hrc != 0) {
		set_outcome(c, ENTRY_FAILED, why);
		return;
	}
	if (update_prepare(en, c, w->pulled, &p) < 0) {
		prepared_free(&p);
		return; /* nothing changed: its dependents are left as they are */
	}
	deps = dependents_of(w->all, name);
	downtime = p.plan.downtime;
	if (json_array_size(deps) && downtime)
		stop_or_start(en, w->all, deps, true);
	update_one(en, w->j, w->cfg, c, &p);
	prepared_free(&p);
	if (c->status == ENTRY_UPDATED) {
		json_t *fresh = NULL;
		struct refit_err ie = { 0 };

		if (engine_container_inspect(en, c->id, &fresh, &ie) == 1) {
			run_hook(en, fresh, "post-update", c->id, c, why, sizeof(why));
			run_hook(en, fresh, "post-check", c->id, c, why, sizeof(why));
			if (w->cfg->cleanup)
				cleanup_images(en, w->cfg, name, json_string_value(json_object_get(fresh, "Image")));
		}
		json_decref(fresh);
	}
	if (json_array_size(deps)) {
		if (downtime) {
			stop_or_start(en, w->all, deps, false);
		} else if (c->status == ENTRY_UPDATED) {
			stop_or_start(en, w->all, deps, true);
			stop_or_start(en, w->all, deps, false);
		}
	}
	json_decref(deps);
}

/* A worker: its own engine connection, one dependency group at a time. */
static void *pass_worker(void *arg)
{
	struct pass_work *w = arg;
	struct engine *en = NULL;
	struct refit_err e = { 0 };

	if (engine_open(&en, w->cfg->docker_host, &e) < 0) {
		log_error("update worker: %s", e.msg);
		return NULL;
	}
	for (;;) {
		json_t *group, *v;
		size_t i;

		pthread_mutex_lock(&w->lock);
		group = json_array_get(w->groups, w->next);
		w->next++;
		pthread_mutex_unlock(&w->lock);
		if (!group)
			break;
		json_array_foreach(group, i, v) {
			update_entry(en, w, json_string_value(v));
		}
	}
	engine_close(en);
	return NULL;
}

/* Index of NAME's group in UF (a name -> group-id map), following merges. */
static const char *uf_find(json_t *uf, const char *name)
{
	for (int hops = 0; hops < 4096; hops++) {
		const char *up = json_string_value(json_object_get(uf, name));

		if (!up || strcmp(up, name) == 0)
			return name;
		name = up;
	}
	return name;
}

/* Split the stale containers into groups that share no dependency, each in dependency order. */
static json_t *dependency_groups(json_t *stale, json_t *all)
{
	json_t *uf = json_object(), *groups = json_array(), *byroot = json_object(), *order, *v, *ins;
	const char *name;
	size_t i;

	json_object_foreach(all, name, ins) {
		json_t *deps = depends_of(ins, all);

		json_array_foreach(deps, i, v) {
			const char *a = uf_find(uf, name), *b = uf_find(uf, json_string_value(v));

			if (strcmp(a, b) != 0)
				json_object_set_new(uf, a, json_string(b));
		}
		json_decref(deps);
	}
	order = depends_order(stale, all);
	json_array_foreach(order, i, v) {
		const char *root = uf_find(uf, json_string_value(v));
		json_t *g = json_object_get(byroot, root);

		if (!g) {
			g = json_array();
			json_object_set_new(byroot, root, g);
			json_array_append(groups, g);
		}
		json_array_append(g, v);
	}
	json_decref(order);
	json_decref(byroot);
	json_decref(uf);
	return groups;
}

/* Pull each distinct digest the stale containers need, once; errors are kept per digest. */
/*
 * Pull every digest the stale containers need, once each, and point each of
 * their references at it (two tags, or two repositories, can move to the
 * same manifest). PULLED gets "REF@DIGEST" -> true, or the error.
 */
static void pull_all(struct engine *en, const struct refit_config *cfg, struct check_result *res, json_t *pulled)
{
	json_t *by_digest = json_object();

	for (size_t i = 0; i < res->n; i++) {
		struct check_entry *c = &res->v[i];
		struct imageref ref = { 0 };
		struct refit_err e = { 0 };
		char key[1200];
		json_t *got;

		pulled_key(c, key, sizeof(key));
		if (c->status != ENTRY_UPDATE_AVAILABLE || c->no_pull || !c->latest_digest || c->kind ||
		    json_object_get(pulled, key) || atomic_load(&stop_requested))
			continue;
		if (imageref_parse(check_entry_image(c), &ref, &e) < 0) {
			json_object_set_new(pulled, key, json_string(e.msg));
			continue;
		}
		/* The same digest of one repository is pulled once. */
		{
			char *repo = imageref_repository(&ref), dkey[1200];

			snprintf(dkey, sizeof(dkey), "%s@%s", repo ? repo : "", c->latest_digest);
			free(repo);
			got = json_object_get(by_digest, dkey);
			if (!got) {
				got = update_pull(en, cfg, &ref, c->latest_digest, &e) < 0 ? json_string(e.msg) : json_true();
				json_object_set_new(by_digest, dkey, got);
			}
		}
		if (json_is_string(got))
			json_object_set(pulled, key, got);
		else if (tag_digest(en, &ref, c->latest_digest, &e) < 0)
			json_object_set_new(pulled, key, json_string(e.msg));
		else
			json_object_set_new(pulled, key, json_true());
		imageref_free(&ref);
	}
	json_decref(by_digest);
}

int update_run(struct engine *en, struct registry *reg, struct journal *j, const struct refit_config *cfg,
	       char *const *names, size_t nnames, bool dry_run, struct check_result *res, struct refit_err *e)
{
	return update_run_to(en, reg, j, cfg, names, nnames, NULL, dry_run, res, e);
}

/*
 * With --to: every named container must be managed here and its target tag
 * must exist, else nothing moves (-1 for an unknown name; entries whose
 * target failed stay errors, the others are skipped).
 */
static int check_targets(struct check_result *res, char *const *names, size_t nnames, const char *to_tag,
			 struct refit_err *e)
{
	bool failed = false;

	for (size_t i = 0; i < nnames; i++) {
		bool found = false;

		for (size_t k = 0; k < res->n && !found; k++)
			found = strcmp(res->v[k].name, names[i]) == 0;
		if (!found)
			return err_set(e, ERR_FAILED, "--to %s: %s: no such container managed here (check its labels, scope and state); nothing was changed",
				       to_tag, names[i]);
	}
	for (size_t i = 0; i < res->n; i++)
		failed |= (res->v[i].status != ENTRY_UNSET && res->v[i].status == ENTRY_ERROR);
	if (!failed)
		return 0;
	for (size_t i = 0; i < res->n; i++) {
		struct check_entry *c = &res->v[i];

		if ((c->status != ENTRY_UNSET && c->status == ENTRY_ERROR)) {
			log_error("%s: %s", c->name, c->error ? c->error : "error");
			continue;
		}
		if ((c->status != ENTRY_UNSET && c->status == ENTRY_UPDATE_AVAILABLE)) {
			char msg[300];

			snprintf(msg, sizeof(msg), "not moved to %s: the move failed for another container, so none moves",
				 to_tag);
			set_outcome(c, ENTRY_SKIPPED, msg);
		}
	}
	return 0;
}

int update_run_to(struct engine *en, struct registry *reg, struct journal *j, const struct refit_config *cfg,
		  char *const *names, size_t nnames, const char *to_tag, bool dry_run, struct check_result *res,
		  struct refit_err *e)
{
	struct pass_work w = { .cfg = cfg, .j = j, .res = res, .lock = PTHREAD_MUTEX_INITIALIZER };
	json_t *stale = json_array();
	pthread_t threads[64];
	long nthreads;

	if (check_run_to(en, reg, cfg, names, nnames, to_tag, res, e) < 0) {
		json_decref(stale);
		return -1;
	}
	if (to_tag && check_targets(res, names, nnames, to_tag, e) < 0) {
		check_result_free(res);
		json_decref(stale);
		return -1;
	}
	if (dry_run) {
		json_decref(stale);
		return 0;
	}
	w.all = json_object();
	w.pulled = json_object();
	for (size_t i = 0; i < res->n; i++) {
		struct check_entry *c = &res->v[i];
		json_t *ins = NULL;
		struct refit_err ie = { 0 };

		if (!c->kind && engine_container_inspect(en, c->id, &ins, &ie) == 1)
			json_object_set_new(w.all, c->name, ins);
		if (c->status == ENTRY_UPDATE_AVAILABLE) {
			if (!c->kind) /* services are updated through Swarm, after the containers */
				json_array_append_new(stale, json_string(c->name));
		} else if (c->status == ENTRY_ERROR) {
			c->status = ENTRY_FAILED;
		} else if (c->status != ENTRY_UP_TO_DATE) {
			/* pinned, monitor-only, skipped: reported, never changed */
			if (!c->error)
				c->error = strdup(entry_status_to_string(c->status));
			c->status = ENTRY_SKIPPED;
		}
	}
	pull_all(en, cfg, res, w.pulled);
	/* Groups that share no dependency swap at once; inside a group, dependencies first. */
	w.groups = dependency_groups(stale, w.all);
	nthreads = (long)json_array_size(w.groups) < cfg->concurrency ? (long)json_array_size(w.groups) : cfg->concurrency;
	for (long t = 0; t < nthreads; t++)
		if (pthread_create(&threads[t], NULL, pass_worker, &w) != 0)
			nthreads = t;
	if (nthreads == 0)
		pass_worker(&w);
	for (long t = 0; t < nthreads; t++)
		pthread_join(threads[t], NULL);
	swarm_update_pass(en, j, cfg, res, &stop_requested);
	json_decref(w.groups);
	json_decref(w.all);
	json_decref(w.pulled);
	json_decref(stale);
	return 0;
}

/* The last successful update of NAME that no later rollback undid, or NULL (borrowed from HIST). */
static json_t *last_update(json_t *hist, const char *name)
{
	for (size_t i = json_array_size(hist); i-- > 0;) {
		json_t *r = json_array_get(hist, i);
		const char *kind = jr_str(r, JR_KIND);

		if (jr_outcome(r) != ENTRY_UPDATED || !kind || !jr_concerns(r, name))
			continue;
		return strcmp(kind, "update") == 0 || strcmp(kind, "migrate") == 0 ? r : NULL;
	}
	return NULL;
}

/* Roll one container back to the state recorded in REC (and, with RESTORE_DATA, its migration's backup). */
static void rollback_one(struct engine *en, struct journal *j, const struct refit_config *cfg, json_t *rec,
			 struct check_entry *c, bool restore_data)
{
	const char *backup = jr_str(rec, JR_BACKUP);
	json_t *manifest = NULL;
	json_t *spec = json_object_get(rec, JR_OLD_INSPECT), *spec_image = json_object_get(rec, JR_OLD_IMAGE_INSPECT);
	const char *old_image_id = json_string_value(json_object_get(spec, "Image"));
	const char *image = json_string_value(json_object_get(json_object_get(spec, "Config"), "Image"));
	const char *old_digest = jr_str(rec, JR_OLD_DIGEST);
	const char *old_name = jr_str(rec, JR_CONTAINER);
	json_t *cur = NULL, *cur_image = NULL, *img = NULL;
	struct refit_err e = { 0 };
	struct imageref ref = { 0 };
	struct swap_request rq = { 0 };
	struct swap_plan plan;
	struct swap_result res;
	char path[2048];

	if (!old_image_id || !image || !old_name || imageref_parse(image, &ref, &e) < 0) {
		set_outcome(c, ENTRY_FAILED, e.msg[0] ? e.msg : "history record is incomplete");
		return;
	}
	if (restore_data) {
		/* The backup is checked before anything changes. */
		if (!backup) {
			set_outcome(c, ENTRY_FAILED, "--restore-data: its last change has no volume backup (preserve_data)");
			goto out;
		}
		if (backup_verify(backup, &manifest, &e) < 0) {
			set_outcome(c, ENTRY_FAILED, e.msg);
			goto out;
		}
	}
	if (inspect_or_fail(en, false, c->name, &cur, c) < 0)
		goto out;
	/* The previous image by ID if still here, else pulled by its digest. */
	if (inspect_or_fail(en, true, old_image_id, &img, c) < 0) {
		if (!old_digest || update_pull(en, cfg, &ref, old_digest, &e) < 0 ||
		    tag_digest(en, &ref, old_digest, &e) < 0) {
			set_outcome(c, ENTRY_FAILED, old_digest ? e.msg : "previous image is gone and its digest is unknown");
			goto out;
		}
		json_decref(img);
		img = NULL;
		if (inspect_or_fail(en, true, image, &img, c) < 0)
			goto out;
		old_image_id = json_string_value(json_object_get(img, "Id"));
	} else {
		char *repo = imageref_repository(&ref);

		snprintf(path, sizeof(path), "/images/%s/tag?repo=%s&tag=%s", old_image_id, repo ? repo : "",
			 ref.tag ? ref.tag : "latest");
		free(repo);
		if (engine_call(en, "POST", path, NULL, 0, NULL, NULL, &e) < 0) {
			set_outcome(c, ENTRY_FAILED, e.msg);
			goto out;
		}
	}
	if (!json_string_value(json_object_get(cur, "Image")) ||
	    inspect_or_fail(en, true, json_string_value(json_object_get(cur, "Image")), &cur_image, c) < 0) {
		cur_image = NULL;
		c->status = ENTRY_UNSET;
	}
	rq.kind = "rollback";
	rq.name = c->name;
	rq.old = cur;
	rq.old_image = cur_image;
	rq.old_digest = jr_str(rec, JR_NEW_DIGEST);
	rq.image = image;
	rq.new_image_id = old_image_id;
	rq.new_digest = old_digest;
	rq.strategy = jr_str(rec, JR_STRATEGY);
	rq.rename_to = old_name; /* a renamed container goes back to its old name */
	rq.spec = spec;
	rq.spec_image = json_is_object(spec_image) ? spec_image : NULL;
	if (swap_plan(&rq, &plan, &e) < 0) {
		set_outcome(c, ENTRY_FAILED, e.msg);
		goto out;
	}
	swap_run(en, j, cfg, &rq, &plan, &res);
	log_info("%s: rollback %s%s%s", c->name, res.outcome == ENTRY_UPDATED ? "done" : entry_status_to_string(res.outcome),
		 res.error[0] ? ": " : "", res.error);
	set_outcome(c, res.outcome == ENTRY_UPDATED ? ENTRY_ROLLED_BACK : ENTRY_FAILED, res.error);
	c->strategy = res.strategy;
	free(c->id);
	c->id = strdup(res.new_id[0] ? res.new_id : json_string_value(json_object_get(cur, "Id")) ? json_string_value(json_object_get(cur, "Id")) : "");
	if (manifest && res.outcome == ENTRY_UPDATED) {
		if (backup_restore(en, backup, manifest, res.new_id, &e) < 0) {
			log_error("%s: rolled back, but the data was not restored: %s", old_name, e.msg);
			err_prefix(&e, "rolled back, but the data was not restored: ");
			set_outcome(c, ENTRY_FAILED, e.msg);
		} else {
			log_info("%s: volumes restored from %s", old_name, backup);
		}
	}
out:
	json_decref(manifest);
	json_decref(cur);
	json_decref(cur_image);
	json_decref(img);
	imageref_free(&ref);
}

/* Does container NAME exist and does this refit manage it (labels, scope)? *RET gets its inspect. */
static bool managed_here(struct engine *en, const struct refit_config *cfg, const char *name, json_t **ret)
{
	struct refit_err e = { 0 };
	json_t *ins = NULL;
	bool ok;

	*ret = NULL;
	if (engine_container_inspect(en, name, &ins, &e) <= 0)
		return false;
	ok = select_container(cfg, json_object_get(json_object_get(ins, "Config"), "Labels"), name, true, NULL, 0) &&
	     !swarm_is_task(json_object_get(json_object_get(ins, "Config"), "Labels"));
	*ret = ins;
	return ok;
}

int update_rollback(struct engine *en, struct journal *j, const struct refit_config *cfg, char *const *names,
		    size_t nnames, bool all, struct check_result *res, struct refit_err *e)
{
	return update_rollback_data(en, j, cfg, names, nnames, all, false, res, e);
}

int update_rollback_data(struct engine *en, struct journal *j, const struct refit_config *cfg, char *const *names,
			 size_t nnames, bool all, bool restore_data, struct check_result *res, struct refit_err *e)
{
	json_t *hist = journal_history(cfg->state_dir, NULL), *targets = json_array();
	size_t i;
	json_t *r;

	memset(res, 0, sizeof(*res));
	if (all) {
		json_array_foreach(hist, i, r) {
			const char *c = jr_final_name(r);
			bool seen = false;

			for (size_t k = 0; c && k < json_array_size(targets); k++)
				seen |= strcmp(json_string_value(json_array_get(targets, k)), c) == 0;
			if (c && !seen && last_update(hist, c))
				json_array_append_new(targets, json_string(c));
		}
	} else {
		for (size_t k = 0; k < nnames; k++)
			json_array_append_new(targets, json_string(names[k]));
	}
	res->v = calloc(json_array_size(targets) + 1, sizeof(*res->v));
	if (!res->v) {
		json_decref(hist);
		json_decref(targets);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	json_array_foreach(targets, i, r) {
		json_t *rec = last_update(hist, json_string_value(r)), *ins = NULL;
		const char *target = json_string_value(r), *kind = jr_str(rec, JR_KIND);
		const char *from = jr_str(rec, JR_CONTAINER);
		const char *to = jr_str(rec, JR_NEW_NAME);
		bool managed;
		struct check_entry *c;

		/* A migrated container is named by its old name or its new one. */
		if (kind && strcmp(kind, "migrate") == 0 && from && to && strcmp(from, target) == 0)
			target = to;
		managed = managed_here(en, cfg, target, &ins);
		json_decref(ins);
		if (!managed && swarm_rollback_entry(en, j, cfg, json_string_value(r), all, rec, res))
			continue; /* a Swarm service: Swarm's own rollback */
		if (all && !managed)
			continue; /* --all: only what this refit manages and still exists */
		c = &res->v[res->n++];
		c->name = strdup(target);
		c->update_available = -1;
		if (!managed) {
			set_outcome(c, ENTRY_FAILED, "no such container managed here (check its labels, scope and state)");
			continue;
		}
		if (!rec) {
			set_outcome(c, ENTRY_FAILED, "no update of this container in the history to roll back");
			continue;
		}
		c->image = jr_str(rec, JR_IMAGE) ?
				   strdup(jr_str(rec, JR_IMAGE)) : NULL;
		c->current_digest = jr_str(rec, JR_NEW_DIGEST) ?
					    strdup(jr_str(rec, JR_NEW_DIGEST)) : NULL;
		c->latest_digest = jr_str(rec, JR_OLD_DIGEST) ?
					   strdup(jr_str(rec, JR_OLD_DIGEST)) : NULL;
		rollback_one(en, j, cfg, rec, c, restore_data);
	}
	json_decref(hist);
	json_decref(targets);
	return 0;
}

int update_exit_code(const struct check_result *res, enum entry_status also_failed)
{
	for (size_t i = 0; i < res->n; i++) {
		enum entry_status st = res->v[i].status;

		if (st == ENTRY_UNSET || st == ENTRY_FAILED || st == also_failed)
			return ERR_FAILED;
	}
	return 0;
}
