/* Update passes: pull the digest the check found, swap with the container's strategy; rollbacks. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "refit/auth.h"
#include "refit/base.h"
#include "refit/depends.h"
#include "refit/engine-spec.h"
#include "refit/fsutil.h"
#include "refit/handover.h"
#include "refit/hold.h"
#include "refit/events.h"
#include "refit/hooks.h"
#include "refit/imageref.h"
#include "refit/journal-record.h"
#include "refit/lists.h"
#include "refit/log.h"
#include "refit/migrate.h"
#include "refit/select.h"
#include "refit/strategy.h"
#include "refit/swarm.h"
#include "refit/update.h"
#include "refit/waited.h"

#define PULL_TIMEOUT (30L * 60)
#define PASS_THREADS 64 /* threads of an update pass: swaps in progress at once, most of them waiting */

static void stopped_restart(struct engine *en, const struct refit_config *cfg);
static json_t *netns_followers(struct engine *en, const struct refit_config *cfg, const char *name, const char *id);
static void follow_netns(struct engine *en, struct journal *j, const struct refit_config *cfg, const char *name,
			 const char *new_id, json_t *followers);

int update_recover(struct engine *en, struct journal *j, const struct refit_config *cfg)
{
	json_t *pending = journal_pending(j), *rec;
	size_t i;
	int handled = 0, rc = 0;

	json_array_foreach(pending, i, rec) {
		struct swap_result res;
		const char *name = jr_str(rec, JR_CONTAINER);
		const char *step = jr_str(rec, JR_STEP), *kind;

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
		kind = jr_str(rec, JR_KIND);
		if (res.outcome == ENTRY_UPDATED && name && res.new_id[0] && !(kind && strcmp(kind, "follow") == 0)) {
			/* a provider finished here: its followers are in the old namespace (the cut pass never moved them) */
			json_t *followers = netns_followers(en, cfg, name, jr_str(rec, JR_OLD_ID));

			follow_netns(en, j, cfg, name, res.new_id, followers);
			json_decref(followers);
		}
	}
	json_decref(pending);
	if (rc == 0) /* the swaps are whole again: what the cut pass stopped for them runs again */
		stopped_restart(en, cfg);
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
	char *repo = imageref_repository(ref), *hdr = NULL, *by_digest = NULL;
	int rc = -1;

	if (!repo || (digest && asprintf(&by_digest, "%s@%s", repo, digest) < 0)) {
		free(repo);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	if (auth_engine_header_for(cfg, ref->domain, &hdr, e) < 0)
		goto out;
	rc = by_digest ? engine_pull(en, by_digest, NULL, hdr, PULL_TIMEOUT, e) :
			 engine_pull(en, repo, ref->tag ? ref->tag : "latest", hdr, PULL_TIMEOUT, e);
out:
	if (hdr)
		explicit_bzero(hdr, strlen(hdr));
	free(hdr);
	free(by_digest);
	free(repo);
	return rc;
}

/* Point REF's tag at the pulled DIGEST of its repository. */
static int tag_digest(struct engine *en, const struct imageref *ref, const char *digest, struct refit_err *e)
{
	char *repo = imageref_repository(ref), *src = NULL;
	int rc;

	if (!repo || asprintf(&src, "%s@%s", repo, digest) < 0) {
		free(repo);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	rc = engine_image_tag(en, src, repo, ref->tag ? ref->tag : "latest", e);
	if (rc < 0)
		err_prefix(e, "tag %s: ", src);
	free(src);
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

struct pass_work;
static json_t *pass_inspect(struct engine *en, struct pass_work *w, struct check_entry *c);
static json_t *pass_image(struct engine *en, struct pass_work *w, const char *key, const char *ref,
			  struct refit_err *e);
static json_t *pass_pulled(struct pass_work *w, const char *key);
static bool pass_handover(const struct pass_work *w);

/* The other name C's container INS declares with refit.rename-to, or NULL (none, or its own). */
static const char *rename_target(const struct check_entry *c, json_t *ins)
{
	const char *to = json_string_value(json_object_get(json_object_get(json_object_get(ins, "Config"), "Labels"),
							   "refit.rename-to"));

	return to && strcmp(to, c->name) != 0 ? to : NULL;
}

/*
 * Plan C's swap from the inspects the pass holds (the container's, taken
 * once; the images', once per image); -1 with C failed when it cannot run.
 * With RENAME a container that declares refit.rename-to goes there through
 * the alias strategy, whatever its own strategy.
 */
static int update_prepare(struct engine *en, struct pass_work *w, struct check_entry *c, bool rename,
			  struct prepared *p)
{
	struct refit_err e = { 0 };
	struct imageref ref = { 0 };
	char key[1200];
	json_t *labels, *got;

	memset(p, 0, sizeof(*p));
	if (imageref_parse(check_entry_image(c), &ref, &e) < 0) {
		set_outcome(c, ENTRY_FAILED, e.msg);
		return -1;
	}
	imageref_free(&ref);
	pulled_key(c, key, sizeof(key));
	got = c->no_pull ? NULL : pass_pulled(w, key);
	if (json_is_string(got)) {
		set_outcome(c, ENTRY_FAILED, json_string_value(got));
		json_decref(got);
		return -1;
	}
	json_decref(got);
	if (!(p->old = pass_inspect(en, w, c)))
		return -1;
	if (!(p->new_image = pass_image(en, w, key, check_entry_image(c), &e))) {
		set_outcome(c, ENTRY_FAILED, e.msg);
		return -1;
	}
	if (!(p->old_image = pass_image(en, w, c->image_id, c->image_id, &e)))
		c->status = ENTRY_UNSET; /* gone: every setting is then kept as the container has it */
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
	if (rename && rename_target(c, p->old))
		p->rq.strategy = "alias";
	if (swap_plan(&p->rq, &p->plan, &e) < 0) {
		set_outcome(c, ENTRY_FAILED, e.msg);
		return -1;
	}
	if (pass_handover(w)) /* refit's own container: its replacement takes over (handover.h) */
		p->plan = (struct swap_plan){ .strategy = "handover", .reason = "refit's own container" };
	return 0;
}

/* Whether the container INS mounts a volume (named or anonymous): what a backup holds. */
static bool has_volumes(json_t *ins)
{
	json_t *mnt;
	size_t i;

	json_array_foreach(json_object_get(ins, "Mounts"), i, mnt) {
		if (strcmp(json_string_value(json_object_get(mnt, "Type")) ?: "", "volume") == 0)
			return true;
	}
	return false;
}

/*
 * Swap one stale container onto the image its check found, as P planned;
 * with PRESERVE its volumes are backed up first (state_dir/backups/ID/,
 * recorded in the journal for a rollback's restore) and a failed backup
 * leaves it as it was.
 */
static void update_one(struct engine *en, struct journal *j, const struct refit_config *cfg, struct check_entry *c,
		       const struct prepared *p, bool preserve)
{
	struct swap_request rq = p->rq;
	struct swap_result res;
	struct timespec t0;
	double waited0;
	char opid[17], dir[4200] = "";

	if (preserve && has_volumes(p->old)) {
		struct refit_err e = { 0 };

		journal_new_id(opid);
		events_step_name(c->name, "backing up");
		if (backup_take(en, cfg, p->old, opid, dir, sizeof(dir), &e) < 0) {
			char msg[sizeof(e.msg) + 40];

			snprintf(msg, sizeof(msg), "backup (nothing was changed): %s", e.msg);
			log_error("%s: %s", c->name, msg);
			set_outcome(c, ENTRY_FAILED, msg);
			return;
		}
		log_info("%s: volumes backed up in %s", c->name, dir);
		rq.backup = dir;
	}
	waited0 = waited_seconds();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	swap_run(en, j, cfg, &rq, &p->plan, &res);
	c->swap_seconds = mono_since(&t0);
	/* Refit's own share: the swap minus what its thread waited for (engine, probes, timers). */
	c->overhead_seconds = c->swap_seconds - (waited_seconds() - waited0);
	log_info("%s: %s (%s)%s%s", c->name, entry_status_to_string(res.outcome), res.strategy ? res.strategy : c->strategy,
		 res.error[0] ? ": " : "", res.error);
	if (res.strategy)
		c->strategy = res.strategy;
	set_outcome(c, res.outcome, res.error);
	if (res.outcome == ENTRY_ROLLED_BACK)
		hold_entry(cfg, c, res.error[0] ? res.error : "its update was rolled back");
	if (res.outcome == ENTRY_UPDATED && res.new_id[0]) {
		free(c->id);
		c->id = strdup(res.new_id);
		if (p->plan.rename_to) {
			free(c->renamed_to);
			c->renamed_to = strdup(p->plan.rename_to);
		}
		if (dir[0])
			backup_prune(cfg, c->name);
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

#define STOPPED_FILE "stopped-dependents.json" /* containers a pass stopped for a dependency's swap */
#define STOPPED_MAX_FILE (1u << 20)

static pthread_mutex_t stopped_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Note in state_dir that NAMES were stopped for a swap (ADD) or run again
 * (not ADD), durably: a pass cut by SIGKILL between the two leaves them
 * there, and the next run's recovery starts them again.
 */
static void stopped_note(const struct refit_config *cfg, json_t *names, bool add)
{
	char path[4200], *buf = NULL, *text;
	struct refit_err e = { 0 };
	json_t *doc = NULL, *v;
	size_t len = 0, i;

	pthread_mutex_lock(&stopped_lock);
	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, STOPPED_FILE);
	if (access(path, F_OK) == 0 && fs_read_file(path, STOPPED_MAX_FILE, &buf, &len, &e) == 0)
		doc = json_loadb(buf, len, 0, NULL);
	free(buf);
	if (!json_is_object(doc)) {
		json_decref(doc);
		doc = json_object();
	}
	json_array_foreach(names, i, v) {
		if (add && json_object_size(doc) < 1024)
			json_object_set_new(doc, json_string_value(v), json_true());
		else if (!add)
			json_object_del(doc, json_string_value(v));
	}
	if (json_object_size(doc) == 0) {
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("%s: %s", path, strerror(errno));
	} else if (!(text = json_dumps(doc, JSON_COMPACT)) || fs_write_atomic(cfg->state_dir, STOPPED_FILE, text, &e) < 0) {
		log_warn("stopped dependents not noted in %s: %s", cfg->state_dir, e.msg[0] ? e.msg : "out of memory");
	} else {
		free(text);
	}
	json_decref(doc);
	pthread_mutex_unlock(&stopped_lock);
}

/* Start the containers an interrupted pass stopped for a swap and never ran again (recovery). */
static void stopped_restart(struct engine *en, const struct refit_config *cfg)
{
	char path[4200], *buf = NULL;
	struct refit_err e = { 0 };
	json_t *doc, *all = json_array(), *v;
	const char *name;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, STOPPED_FILE);
	if (access(path, F_OK) != 0 || fs_read_file(path, STOPPED_MAX_FILE, &buf, &len, &e) < 0) {
		json_decref(all);
		free(buf);
		return;
	}
	doc = json_loadb(buf, len, 0, NULL);
	free(buf);
	json_object_foreach(doc, name, v) {
		char p[400];
		json_t *ins = NULL;

		if (!container_name_valid(name) || engine_container_inspect(en, name, &ins, &e) != 1) {
			err_clear(&e);
			continue;
		}
		if (!json_is_true(json_object_get(json_object_get(ins, "State"), "Running"))) {
			snprintf(p, sizeof(p), "/containers/%s/start", name);
			if (engine_call(en, "POST", p, NULL, 90, NULL, NULL, &e) < 0)
				log_warn("%s: not started again: %s", name, e.msg);
			else
				log_info("%s: started again (an interrupted pass had stopped it for a dependency's swap)",
					 name);
			err_clear(&e);
		}
		json_decref(ins);
		json_array_append_new(all, json_string(name));
	}
	stopped_note(cfg, all, false);
	if (!json_is_object(doc)) /* not what refit writes: set aside */
		unlink(path);
	json_decref(doc);
	json_decref(all);
}

/* Stop (STOP true, dependents first) or start (dependencies first) the running containers in NAMES. */
static void stop_or_start(struct engine *en, const struct refit_config *cfg, json_t *all, json_t *names, bool stop)
{
	json_t *order = depends_order(names, all), *done = json_array();
	size_t n = json_array_size(order);

	for (size_t k = 0; k < n; k++) {
		const char *name = json_string_value(json_array_get(order, stop ? n - 1 - k : k));
		json_t *ins = json_object_get(all, name);
		struct refit_err e = { 0 };
		char path[160];

		if (!json_is_true(json_object_get(json_object_get(ins, "State"), "Running")))
			continue; /* only what was running is stopped and started again */
		json_array_append_new(done, json_string(name));
		if (stop) /* noted before it stops: a kill right after leaves it known */
			stopped_note(cfg, done, true);
		snprintf(path, sizeof(path), "/containers/%s/%s%s", name, stop ? "stop" : "start", stop ? "?t=10" : "");
		if (engine_call(en, "POST", path, NULL, 90, NULL, NULL, &e) < 0)
			log_warn("%s: %s dependent: %s", name, stop ? "stopping" : "starting", e.msg);
		else
			log_info("%s: %s (depends on an updated container)", name, stop ? "stopped" : "started");
	}
	if (!stop && json_array_size(done))
		stopped_note(cfg, done, false);
	json_decref(done);
	json_decref(order);
}

static atomic_bool stop_requested;

void update_request_stop(void)
{
	atomic_store(&stop_requested, true);
}

/* Run hook KIND of C in container ID (when CFG runs hooks); logs failures. Returns the exit code, or -1. */
static int run_hook(const struct refit_config *cfg, struct engine *en, json_t *ins, const char *kind,
		    const char *id, struct check_entry *c, char *why, size_t why_len)
{
	struct refit_err e = { 0 };
	json_t *labels = json_object_get(json_object_get(ins, "Config"), "Labels");
	int rc;

	if (!cfg->lifecycle_hooks)
		return 0;
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

/*
 * The containers of LIST (elements of the engine's container list) whose
 * network namespace is container NAME's (ID): HostConfig.NetworkMode
 * container:NAME, or container: its ID (or a prefix of 12 or more), in this
 * refit's scope and not opted out. Name -> whether it runs (new object).
 */
static json_t *followers_in(const struct refit_config *cfg, json_t *list, const char *name, const char *id)
{
	json_t *out = json_object(), *c;
	size_t i;

	json_array_foreach(list, i, c) {
		const char *mode = json_string_value(json_object_get(json_object_get(c, "HostConfig"), "NetworkMode"));
		const char *cname = json_string_value(json_array_get(json_object_get(c, "Names"), 0));
		const char *state = json_string_value(json_object_get(c, "State"));
		json_t *labels = json_object_get(c, "Labels");
		const char *t;

		if (!mode || strncmp(mode, "container:", 10) != 0 || !cname)
			continue;
		t = mode + 10;
		cname += cname[0] == '/';
		if (strcmp(t, name) != 0 && !(strlen(t) >= 12 && strncmp(id, t, strlen(t)) == 0))
			continue;
		if (!select_in_scope(cfg, labels) || label_bool(labels, "enable") == 0 || swarm_is_task(labels) ||
		    !container_name_valid(cname))
			continue;
		json_object_set_new(out, cname, json_boolean(state && strcmp(state, "running") == 0));
	}
	return out;
}

/* followers_in over the engine's list as it is now (recovery). */
static json_t *netns_followers(struct engine *en, const struct refit_config *cfg, const char *name, const char *id)
{
	json_t *list = NULL, *out;
	struct refit_err e = { 0 };

	if (!id || engine_get_json(en, "/containers/json?all=1", &list, &e) < 0) {
		if (id)
			log_warn("%s: containers on its network namespace not looked for: %s", name, e.msg);
		return json_object();
	}
	out = followers_in(cfg, list, name, id);
	json_decref(list);
	return out;
}

/*
 * Container NAME was replaced by NEW_ID: every container of FOLLOWERS
 * (name -> was running, from netns_followers before the swap) is recreated
 * onto container:NEW_ID, keeping everything else as a swap does, journaled
 * as a swap of kind "follow" (the recreate strategy, its health gate when
 * it was running). A restart would leave it in the old namespace.
 */
static void follow_netns(struct engine *en, struct journal *j, const struct refit_config *cfg, const char *name,
			 const char *new_id, json_t *followers)
{
	const char *fname;
	json_t *running;
	char mode[80];

	snprintf(mode, sizeof(mode), "container:%s", new_id);
	json_object_foreach(followers, fname, running) {
		json_t *cur = NULL, *img = NULL, *old, *spec;
		struct refit_err e = { 0 };
		struct swap_request rq;
		struct swap_plan plan;
		struct swap_result res;

		if (engine_container_inspect(en, fname, &cur, &e) <= 0) {
			log_error("%s: not moved onto the new %s's network namespace: %s", fname, name, e.msg);
			continue;
		}
		if (engine_image_inspect(en, json_string_value(json_object_get(cur, "Image")), &img, &e) <= 0)
			img = NULL;
		old = json_deep_copy(cur);
		spec = json_deep_copy(cur);
		/* stopped for the provider's swap, it runs again as it did before */
		json_object_set(json_object_get(old, "State"), "Running", running);
		json_object_set_new(json_object_get(spec, "HostConfig"), "NetworkMode", json_string(mode));
		rq = (struct swap_request){
			.kind = "follow",
			.name = fname,
			.old = old,
			.old_image = img,
			.image = json_string_value(json_object_get(json_object_get(cur, "Config"), "Image")),
			.new_image_id = json_string_value(json_object_get(cur, "Image")),
			.strategy = "recreate",
			.spec = spec,
			.spec_image = img,
		};
		if (!rq.image || !rq.new_image_id || swap_plan(&rq, &plan, &e) < 0) {
			log_error("%s: not moved onto the new %s's network namespace: %s", fname, name,
				  e.msg[0] ? e.msg : "its inspect has no image");
		} else {
			swap_run(en, j, cfg, &rq, &plan, &res);
			if (res.outcome == ENTRY_UPDATED)
				log_info("%s: recreated onto the new %s's network namespace (%.12s)", fname, name, res.new_id);
			else
				log_error("%s: not moved onto the new %s's network namespace: %s", fname, name, res.error);
		}
		json_decref(spec);
		json_decref(old);
		json_decref(img);
		json_decref(cur);
	}
}

/* DEPS without the names in FOLLOWERS (new array). */
static json_t *without(json_t *deps, json_t *followers)
{
	json_t *out = json_array(), *v;
	size_t i;

	json_array_foreach(deps, i, v) {
		if (!json_object_get(followers, json_string_value(v)))
			json_array_append(out, v);
	}
	return out;
}

/* What the workers of one update pass share. */
struct pass_work {
	const struct refit_config *cfg;
	struct journal *j;
	struct check_result *res;
	struct engine *en;  /* the pass's own connection: each worker opens another like it */
	json_t *all;        /* name -> what the container list says of every managed container (lists_pass_view) */
	json_t *netns;      /* the listed containers on another's network namespace, at the pass's start */
	json_t *groups;     /* arrays of names, each in dependency order */
	const struct update_options *o;
	size_t next;
	struct slots slots; /* concurrency: engine steps at once; gates and waits hold none */
	pthread_mutex_t lock; /* the fields below, and next */
	pthread_cond_t pulls; /* a pull ended */
	json_t *pulled;     /* "REF@DIGEST" -> true, the pull's error, or null while it runs */
	json_t *by_digest;  /* "REPO@DIGEST" -> true once pulled */
	json_t *images;     /* image ID, or "REF@DIGEST" once pulled -> its inspect */
	json_t *touched;    /* names whose container another swap of the pass stopped, started or recreated */
	bool handover;      /* the entry being swapped is refit's own container (after the others) */
};

/* Why refit's own container cannot hand over: two copies of it cannot run at once (static). */
static const char *exclusive_self(const char *why)
{
	static _Thread_local char msg[300];

	snprintf(msg, sizeof(msg), "refit's own container: its replacement cannot start beside it (%s); see docs/packaging.md",
		 why);
	return msg;
}

/* The pass's entry of container NAME (not a service), or NULL. */
static struct check_entry *pass_entry(struct pass_work *w, const char *name)
{
	for (size_t i = 0; i < w->res->n; i++)
		if (!w->res->v[i].kind && strcmp(w->res->v[i].name, name) == 0)
			return &w->res->v[i];
	return NULL;
}

/* Whether the entry being swapped is refit's own container. */
static bool pass_handover(const struct pass_work *w)
{
	return w->handover;
}

/* The pull of KEY's result (new reference; true or the error), waiting while another thread pulls it. */
static json_t *pass_pulled(struct pass_work *w, const char *key)
{
	json_t *got;

	pthread_mutex_lock(&w->lock);
	while (json_is_null(got = json_object_get(w->pulled, key)))
		pthread_cond_wait(&w->pulls, &w->lock);
	json_incref(got);
	pthread_mutex_unlock(&w->lock);
	return got;
}

/*
 * Pull the digest C moves to and point its reference at it, once per pass
 * for that reference and digest (and once per repository and digest). A
 * second container of the same image waits for the first one's pull
 * without a slot; pulls of different images run at once, each as soon as
 * its first container's turn comes.
 */
static void pass_pull(struct engine *en, struct pass_work *w, struct check_entry *c)
{
	struct imageref ref = { 0 };
	struct refit_err e = { 0 };
	char key[1200], dkey[1200], *repo;
	json_t *got;
	bool slot, pulled;

	if (c->no_pull || !c->latest_digest || c->kind)
		return;
	pulled_key(c, key, sizeof(key));
	events_step_name(c->name, "pulling");
	pthread_mutex_lock(&w->lock);
	got = json_object_get(w->pulled, key);
	if (!got)
		json_object_set_new(w->pulled, key, json_null()); /* this thread pulls it */
	pthread_mutex_unlock(&w->lock);
	if (json_is_null(got)) {
		slot = slot_pause(); /* another thread's pull: waiting is not engine work */
		json_decref(pass_pulled(w, key));
		slot_resume(slot);
	}
	if (got)
		return;
	if (imageref_parse(check_entry_image(c), &ref, &e) < 0) {
		got = json_string(e.msg);
		goto out;
	}
	repo = imageref_repository(&ref);
	snprintf(dkey, sizeof(dkey), "%s@%s", repo ? repo : "", c->latest_digest);
	free(repo);
	pthread_mutex_lock(&w->lock);
	pulled = json_is_true(json_object_get(w->by_digest, dkey));
	pthread_mutex_unlock(&w->lock);
	if (!pulled && update_pull(en, w->cfg, &ref, c->latest_digest, &e) < 0) {
		got = json_string(e.msg);
	} else {
		pthread_mutex_lock(&w->lock);
		json_object_set_new(w->by_digest, dkey, json_true());
		pthread_mutex_unlock(&w->lock);
		got = tag_digest(en, &ref, c->latest_digest, &e) < 0 ? json_string(e.msg) : json_true();
	}
out:
	imageref_free(&ref);
	pthread_mutex_lock(&w->lock);
	json_object_set_new(w->pulled, key, got ? got : json_string("out of memory"));
	pthread_cond_broadcast(&w->pulls);
	pthread_mutex_unlock(&w->lock);
}

/*
 * C's inspect (new reference), taken as its swap is about to run: by ID,
 * by name when another swap of the pass stopped, started or recreated it;
 * or NULL with C failed.
 */
static json_t *pass_inspect(struct engine *en, struct pass_work *w, struct check_entry *c)
{
	struct refit_err e = { 0 };
	json_t *ins = NULL;
	bool touched;

	pthread_mutex_lock(&w->lock);
	touched = json_object_get(w->touched, c->name) != NULL;
	pthread_mutex_unlock(&w->lock);
	if (engine_container_inspect(en, touched ? c->name : c->id, &ins, &e) <= 0) {
		set_outcome(c, ENTRY_FAILED, e.msg);
		return NULL;
	}
	return ins;
}

/* The inspect of image REF (new reference), once per pass under KEY; NULL with E set. */
static json_t *pass_image(struct engine *en, struct pass_work *w, const char *key, const char *ref,
			  struct refit_err *e)
{
	json_t *ins;

	if (!key || !ref)
		return err_set(e, ERR_FAILED, "no image"), NULL;
	pthread_mutex_lock(&w->lock);
	ins = json_incref(json_object_get(w->images, key));
	pthread_mutex_unlock(&w->lock);
	if (ins)
		return ins;
	if (engine_image_inspect(en, ref, &ins, e) <= 0)
		return NULL;
	pthread_mutex_lock(&w->lock);
	json_object_set(w->images, key, ins);
	pthread_mutex_unlock(&w->lock);
	return ins;
}

/* NAMES (an array, or an object's keys) were changed by this swap: later swaps inspect them again. */
static void pass_touch(struct pass_work *w, json_t *names)
{
	const char *k;
	json_t *v;
	size_t i;

	pthread_mutex_lock(&w->lock);
	if (json_is_array(names))
		json_array_foreach(names, i, v)
			json_object_set(w->touched, json_string_value(v), json_true());
	else
		json_object_foreach(names, k, v)
			json_object_set(w->touched, k, json_true());
	pthread_mutex_unlock(&w->lock);
}

/*
 * Container NAME was replaced by NEW_ID, and some of its FOLLOWERS are
 * stale in this pass too: each of those is updated now, onto its new image
 * and container:NEW_ID in one swap (moved first with its old image, its
 * tag, already pulled, would name the new one), and taken out of
 * FOLLOWERS. One whose update cannot be prepared stays there, to be moved
 * with the image it has.
 */
static void update_followers(struct engine *en, struct pass_work *w, const char *name, const char *new_id,
			     json_t *followers)
{
	const char *fname;
	json_t *running, *tmp;
	char mode[80];

	snprintf(mode, sizeof(mode), "container:%s", new_id);
	json_object_foreach_safe(followers, tmp, fname, running) {
		struct check_entry *f;
		struct prepared p;
		json_t *spec;

		f = pass_entry(w, fname);
		if (!f || f->status != ENTRY_UPDATE_AVAILABLE)
			continue;
		pass_pull(en, w, f);
		if (update_prepare(en, w, f, false, &p) < 0) {
			f->status = ENTRY_FAILED; /* said by update_prepare; it still follows, on its old image */
			prepared_free(&p);
			continue;
		}
		/* stopped for the provider's swap, it runs again as it did before, in the new namespace */
		json_object_set(json_object_get(p.old, "State"), "Running", running);
		spec = json_deep_copy(p.old);
		json_object_set_new(json_object_get(spec, "HostConfig"), "NetworkMode", json_string(mode));
		p.rq.spec = spec;
		p.rq.spec_image = p.old_image;
		if (swap_plan(&p.rq, &p.plan, &(struct refit_err){ 0 }) == 0) {
			log_info("%s: updated onto the new %s's network namespace", fname, name);
			update_one(en, w->j, w->cfg, f, &p, w->o->preserve_data);
			json_object_del(followers, fname);
		}
		json_decref(spec);
		prepared_free(&p);
	}
}

/* Update one stale container NAME: pull, hooks, dependents, swap, cleanup. */
static void update_entry(struct engine *en, struct pass_work *w, const char *name)
{
	json_t *ins = json_object_get(w->all, name), *deps, *followers;
	struct check_entry *c;
	struct prepared p;
	char why[512] = "", *new_image = NULL;
	bool downtime, post_hooks = false;
	int hrc;

	c = pass_entry(w, name);
	if (!c || !ins || c->status != ENTRY_UPDATE_AVAILABLE)
		return; /* not found, or already swapped with its network namespace's provider */
	if (atomic_load(&stop_requested)) {
		set_outcome(c, ENTRY_SKIPPED, "refit is stopping: this swap was not started");
		return;
	}
	pass_pull(en, w, c);
	if (run_hook(w->cfg, en, ins, "pre-check", c->id, c, why, sizeof(why)) != 0 ||
	    (hrc = run_hook(w->cfg, en, ins, "pre-update", c->id, c, why, sizeof(why))) == HOOK_SKIP) {
		set_outcome(c, ENTRY_SKIPPED, why);
		return;
	}
	if (hrc != 0) {
		set_outcome(c, ENTRY_FAILED, why);
		return;
	}
	if (update_prepare(en, w, c, w->o->rename, &p) < 0) {
		prepared_free(&p);
		return; /* nothing changed: its dependents are left as they are */
	}
	deps = w->handover ? json_array() : dependents_of(w->all, name);
	followers = w->handover ? json_object() : followers_in(w->cfg, w->netns, name, c->id);
	downtime = p.plan.downtime;
	if (json_array_size(deps) && downtime) {
		stop_or_start(en, w->cfg, w->all, deps, true);
		pass_touch(w, deps);
	}
	update_one(en, w->j, w->cfg, c, &p, w->o->preserve_data && !w->handover);
	if (w->handover) {
		/* its old container runs this pass: no hooks, no cleanup, the replacement removes it */
		if (c->status == ENTRY_UPDATED)
			handover_set_done(true);
		prepared_free(&p);
		json_decref(deps);
		json_decref(followers);
		return;
	}
	if (p.rq.new_image_id)
		new_image = strdup(p.rq.new_image_id);
	/* The new container's labels are the old one's over its new image's: a hook is declared in one of them. */
	for (size_t k = 0; k < 2; k++) {
		json_t *from = json_object_get(json_object_get(k ? p.new_image : p.old, "Config"), "Labels");

		post_hooks |= hook_declared(from, "post-update") || hook_declared(from, "post-check");
	}
	prepared_free(&p);
	if (c->status == ENTRY_UPDATED && json_object_size(followers)) {
		json_t *rest = without(deps, followers);

		update_followers(en, w, name, c->id, followers);
		follow_netns(en, w->j, w->cfg, name, c->id, followers);
		pass_touch(w, followers);
		json_decref(deps);
		deps = rest; /* the others are started, or restarted, as before */
	}
	json_decref(followers);
	if (c->status == ENTRY_UPDATED && w->cfg->lifecycle_hooks && post_hooks) {
		json_t *fresh = NULL;
		struct refit_err ie = { 0 };

		if (engine_container_inspect(en, c->id, &fresh, &ie) == 1) {
			run_hook(w->cfg, en, fresh, "post-update", c->id, c, why, sizeof(why));
			run_hook(w->cfg, en, fresh, "post-check", c->id, c, why, sizeof(why));
		}
		json_decref(fresh);
	}
	if (c->status == ENTRY_UPDATED && w->cfg->cleanup)
		cleanup_images(en, w->cfg, name, new_image);
	free(new_image);
	if (json_array_size(deps)) {
		if (downtime) {
			stop_or_start(en, w->cfg, w->all, deps, false);
		} else if (c->status == ENTRY_UPDATED) {
			stop_or_start(en, w->cfg, w->all, deps, true);
			stop_or_start(en, w->cfg, w->all, deps, false);
			pass_touch(w, deps);
		}
	}
	json_decref(deps);
}

/*
 * A worker: one dependency group at a time, on its own engine connection,
 * holding one of the pass's slots while it takes engine steps.
 */
static void *pass_worker(void *arg)
{
	struct pass_work *w = arg;
	struct engine *en = NULL;
	struct refit_err e = { 0 };

	slot_bind(&w->slots);
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
			slot_take(false);
			if (!en && engine_clone(&en, w->en, &e) < 0) {
				log_error("update worker: %s", e.msg);
				en = NULL;
			}
			if (en)
				update_entry(en, w, json_string_value(v));
			slot_give();
		}
	}
	engine_close(en);
	slot_bind(NULL);
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

int update_run(struct engine *en, struct registry *reg, struct journal *j, const struct refit_config *cfg,
	       char *const *names, size_t nnames, bool dry_run, struct check_result *res, struct refit_err *e)
{
	return update_run_to(en, reg, j, cfg, names, nnames, &(struct update_options){ .dry_run = dry_run }, res, e);
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

/*
 * W's groups taken in turn by image: the first group of each image (the
 * image of its first container) before the second of any, and so on. The
 * pulls of every image then start with the first swaps, at once, instead
 * of one image's containers waiting at the end of the pass for its pull.
 */
static void interleave_by_image(struct pass_work *w)
{
	json_t *buckets = json_object(), *order = json_array(), *out = json_array(), *g, *b;
	size_t i;
	bool more = true;

	if (!buckets || !order || !out)
		goto done;
	json_array_foreach(w->groups, i, g) {
		struct check_entry *c = pass_entry(w, json_string_value(json_array_get(g, 0)));
		char key[1200] = "";

		if (c)
			pulled_key(c, key, sizeof(key));
		if (!(b = json_object_get(buckets, key))) {
			json_object_set_new(buckets, key, b = json_array());
			json_array_append_new(order, json_string(key));
		}
		json_array_append(b, g);
	}
	for (size_t round = 0; more; round++) {
		json_t *k;
		size_t n;

		more = false;
		json_array_foreach(order, n, k) {
			b = json_object_get(buckets, json_string_value(k));
			if (round < json_array_size(b)) {
				json_array_append(out, json_array_get(b, round));
				more = true;
			}
		}
	}
	if (json_array_size(out) == json_array_size(w->groups)) {
		json_decref(w->groups);
		w->groups = json_incref(out);
	}
done:
	json_decref(buckets);
	json_decref(order);
	json_decref(out);
}

/*
 * What the pass reads of the managed containers of RES, from one container
 * list (lists_pass_view): taken only when a container is to be swapped, or
 * RENAME may move one. Empty otherwise; -1 with E when the engine cannot
 * list its containers.
 */
static int pass_view(struct engine *en, const struct check_result *res, bool rename, json_t **all, json_t **netns,
		     struct refit_err *e)
{
	json_t *want = json_object(), *list = NULL;
	bool swaps = rename;
	int rc;

	for (size_t i = 0; i < res->n; i++) {
		if (res->v[i].kind)
			continue;
		swaps |= res->v[i].status == ENTRY_UPDATE_AVAILABLE;
		json_object_set_new(want, res->v[i].id, json_true());
	}
	if (!swaps) {
		json_decref(want);
		*all = json_object();
		*netns = json_array();
		return *all && *netns ? 0 : err_set(e, ERR_FAILED, "out of memory");
	}
	rc = engine_get_json(en, "/containers/json?all=1", &list, e) < 0 ? -1 : lists_pass_view(list, want, all, netns, e);
	json_decref(list);
	json_decref(want);
	return rc;
}

static void pass_work_free(struct pass_work *w)
{
	json_decref(w->groups);
	json_decref(w->all);
	json_decref(w->netns);
	json_decref(w->pulled);
	json_decref(w->by_digest);
	json_decref(w->images);
	json_decref(w->touched);
}

int update_run_to(struct engine *en, struct registry *reg, struct journal *j, const struct refit_config *cfg,
		  char *const *names, size_t nnames, const struct update_options *o, struct check_result *res,
		  struct refit_err *e)
{
	struct pass_work w = {
		.cfg = cfg, .j = j, .res = res, .o = o, .lock = PTHREAD_MUTEX_INITIALIZER, .pulls = PTHREAD_COND_INITIALIZER
	};
	json_t *stale = json_array(), *selves = json_array(), *v;
	pthread_t threads[PASS_THREADS];
	size_t si;
	long nthreads;

	if (check_run_hold(en, reg, cfg, names, nnames, o->to_tag, o->force, res, e) < 0) {
		json_decref(stale);
		json_decref(selves);
		return -1;
	}
	if (o->to_tag && check_targets(res, names, nnames, o->to_tag, e) < 0) {
		check_result_free(res);
		json_decref(stale);
		json_decref(selves);
		return -1;
	}
	if (o->dry_run) {
		json_decref(stale);
		json_decref(selves);
		return 0;
	}
	w.en = en;
	w.pulled = json_object();
	w.by_digest = json_object();
	w.images = json_object();
	w.touched = json_object();
	if (pass_view(en, res, o->rename, &w.all, &w.netns, e) < 0) {
		check_result_free(res);
		pass_work_free(&w);
		json_decref(stale);
		json_decref(selves);
		return -1;
	}
	for (size_t i = 0; i < res->n; i++) {
		struct check_entry *c = &res->v[i];
		json_t *ins = c->kind ? NULL : json_object_get(w.all, c->name);

		if (o->rename && c->status == ENTRY_UP_TO_DATE && ins && rename_target(c, ins))
			c->status = ENTRY_UPDATE_AVAILABLE; /* the same image under its new name */
		if (c->status == ENTRY_UPDATE_AVAILABLE && !c->kind && handover_is_self(c->id)) {
			json_t *full = NULL;
			const char *exclusive = NULL;

			if (engine_container_inspect(en, c->id, &full, &(struct refit_err){ 0 }) == 1)
				exclusive = spec_exclusive(full);
			/* never swapped mid-pass: handed over once the others are done, by the daemon only */
			if (exclusive)
				set_outcome(c, ENTRY_SKIPPED, exclusive_self(exclusive));
			else if (handover_allowed())
				json_array_append_new(selves, json_string(c->name));
			else
				set_outcome(c, ENTRY_SKIPPED,
					    "refit's own container: its daemon hands over to the new image after a pass");
			json_decref(full);
		} else if (c->status == ENTRY_UPDATE_AVAILABLE && !c->kind && ins &&
			   strcmp(json_string_value(json_object_get(json_object_get(json_object_get(ins, "Config"), "Labels"),
								    WATCHTOWER_MARKER)) ?: "", "true") == 0) {
			set_outcome(c, ENTRY_SKIPPED, "another updater's container (" WATCHTOWER_MARKER "=true): it updates itself");
		} else if (c->status == ENTRY_UPDATE_AVAILABLE) {
			if (!c->kind) /* services are updated through Swarm, after the containers */
				json_array_append_new(stale, json_string(c->name));
		} else if (c->status == ENTRY_ERROR) {
			c->status = ENTRY_FAILED;
		} else if (c->status != ENTRY_UP_TO_DATE && c->status != ENTRY_HELD && c->status != ENTRY_COOLDOWN) {
			/* pinned, monitor-only, skipped: reported, never changed (held, cooldown: said as such) */
			if (!c->error)
				c->error = strdup(entry_status_to_string(c->status));
			c->status = ENTRY_SKIPPED;
		}
	}
	events_pass_size(json_array_size(stale));
	/*
	 * Groups that share no dependency swap at once; inside a group,
	 * dependencies first. A thread per group (up to PASS_THREADS), engine
	 * steps limited to `concurrency` at once by the slots: health gates,
	 * drains and waits for another's pull hold none, so they overlap.
	 */
	w.groups = dependency_groups(stale, w.all);
	interleave_by_image(&w);
	slots_init(&w.slots, cfg->concurrency);
	nthreads = (long)json_array_size(w.groups) < PASS_THREADS ? (long)json_array_size(w.groups) : PASS_THREADS;
	for (long t = 0; t < nthreads; t++)
		if (pthread_create(&threads[t], NULL, pass_worker, &w) != 0)
			nthreads = t;
	if (nthreads == 0)
		pass_worker(&w);
	for (long t = 0; t < nthreads; t++)
		pthread_join(threads[t], NULL);
	json_array_foreach(selves, si, v) {
		w.handover = true;
		slot_bind(&w.slots);
		slot_take(false);
		update_entry(en, &w, json_string_value(v));
		slot_give();
		slot_bind(NULL);
		w.handover = false;
	}
	json_decref(selves);
	slots_destroy(&w.slots);
	pthread_cond_destroy(&w.pulls);
	swarm_update_pass(en, j, cfg, res, &stop_requested);
	hold_pass_done(cfg, res);
	pass_work_free(&w);
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

/*
 * After a manual rollback of update REC: the digest it had moved to is held
 * for the container (a migration's new image is another container's: not).
 */
static void hold_rolled_back(const struct refit_config *cfg, json_t *rec, struct check_entry *c)
{
	const char *kind = jr_str(rec, JR_KIND), *image = jr_str(rec, JR_IMAGE), *digest = jr_str(rec, JR_NEW_DIGEST);
	struct refit_err e = { 0 };

	if (!kind || strcmp(kind, "update") != 0 || !image || !digest)
		return;
	if (hold_add(cfg->state_dir, c->name, image, digest, "rolled back by hand", &e) < 0) {
		log_error("%s: digest %.19s not held: %s", c->name, digest, e.msg);
		return;
	}
	c->held = true;
	log_info("%s: digest %.19s held until the registry serves another (or refit release %s)", c->name, digest, c->name);
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
	json_t *cur = NULL, *cur_image = NULL, *img = NULL, *followers;
	struct refit_err e = { 0 };
	struct imageref ref = { 0 };
	struct swap_request rq = { 0 };
	struct swap_plan plan;
	struct swap_result res;

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
	if (handover_is_self(json_string_value(json_object_get(cur, "Id")))) {
		/* a rollback swaps with the old one stopped: never this refit's own container under it */
		set_outcome(c, ENTRY_SKIPPED, "refit's own container: roll it back from another refit (refit --run-once --rollback in a container of its own, or on the host)");
		goto out;
	}
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
		int rc = repo ? engine_image_tag(en, old_image_id, repo, ref.tag ? ref.tag : "latest", &e) :
				err_set(&e, ERR_FAILED, "out of memory");

		free(repo);
		if (rc < 0) {
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
	followers = netns_followers(en, cfg, c->name, json_string_value(json_object_get(cur, "Id")));
	swap_run(en, j, cfg, &rq, &plan, &res);
	if (res.outcome == ENTRY_UPDATED && res.new_id[0])
		follow_netns(en, j, cfg, old_name, res.new_id, followers);
	json_decref(followers);
	log_info("%s: rollback %s%s%s", c->name, res.outcome == ENTRY_UPDATED ? "done" : entry_status_to_string(res.outcome),
		 res.error[0] ? ": " : "", res.error);
	set_outcome(c, res.outcome == ENTRY_UPDATED ? ENTRY_ROLLED_BACK : ENTRY_FAILED, res.error);
	c->strategy = res.strategy;
	if (res.outcome == ENTRY_UPDATED)
		hold_rolled_back(cfg, rec, c);
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
