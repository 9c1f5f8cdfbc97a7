/* The check pass: list, select, dedupe references, ask registries, compare digests. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "refit/base.h"
#include "refit/check.h"
#include "refit/hold.h"
#include "refit/strategy.h"
#include "refit/imageref.h"
#include "refit/lists.h"
#include "refit/log.h"
#include "refit/select.h"
#include "refit/semver.h"
#include "refit/swarm.h"

/* Local image facts, read once per image ID or name: from the image list, else inspected. */
struct image_info {
	char *key;
	json_t *repo_digests; /* borrowed from INSPECT or the pass's image index */
	const char *id;
	json_t *inspect;      /* NULL when the image list had it */
	int err_kind;
	char error[300];
};

struct pass {
	struct engine *en;
	const struct refit_config *cfg;
	struct check_result *res;
	struct imageref *refs; /* parallel to res->v */
	bool *parsed;
	bool *no_pull;
	char **track;          /* each entry's refit.track label, or NULL */
	struct imageref *trefs; /* where an entry moves, when MOVED */
	bool *moved;
	struct image_info **images; /* separately allocated: pointers stay valid as it grows */
	size_t nimages;
	json_t *index;       /* GET /images/json, indexed (lists_image_index); NULL until asked or when it failed */
	bool index_asked;
	struct engine_get images_get; /* GET /images/json, asked beside the container lists */
	bool images_started;
	size_t inspected;    /* containers inspected because the list did not say their reference */
};

static const char *const entry_status_names[_ENTRY_STATUS_MAX] = {
	[ENTRY_UNSET] = "error", [ENTRY_UP_TO_DATE] = "up-to-date", [ENTRY_UPDATE_AVAILABLE] = "update-available",
	[ENTRY_PINNED] = "pinned", [ENTRY_MONITOR_ONLY] = "monitor-only", [ENTRY_SKIPPED] = "skipped",
	[ENTRY_ERROR] = "error", [ENTRY_UPDATED] = "updated", [ENTRY_ROLLED_BACK] = "rolled-back",
	[ENTRY_FAILED] = "failed", [ENTRY_HELD] = "held", [ENTRY_COOLDOWN] = "cooldown",
};

const char *entry_status_to_string(enum entry_status s)
{
	return s >= 0 && s < _ENTRY_STATUS_MAX ? entry_status_names[s] : "error";
}

enum entry_status entry_status_from_string(const char *s)
{
	/* from 1: "error" reads back as ENTRY_ERROR, never as UNSET */
	for (int i = 1; s && i < _ENTRY_STATUS_MAX; i++)
		if (strcmp(entry_status_names[i], s) == 0)
			return (enum entry_status)i;
	return _ENTRY_STATUS_INVALID;
}

enum entry_status entry_status_change(enum entry_status s)
{
	switch (s) {
	case ENTRY_UPDATED:
	case ENTRY_ROLLED_BACK:
		return s;
	case ENTRY_UNSET:
	case ENTRY_ERROR:
	case ENTRY_FAILED:
		return ENTRY_FAILED;
	case ENTRY_UP_TO_DATE:
	case ENTRY_UPDATE_AVAILABLE:
	case ENTRY_PINNED:
	case ENTRY_MONITOR_ONLY:
	case ENTRY_SKIPPED:
	case ENTRY_HELD:
	case ENTRY_COOLDOWN:
	case _ENTRY_STATUS_MAX:
	case _ENTRY_STATUS_INVALID:
		break;
	}
	return _ENTRY_STATUS_INVALID;
}

/* Set ENTRY's error and status. */
static void entry_error(struct check_entry *c, int kind, const char *msg)
{
	free(c->error);
	c->error = strdup(msg);
	c->err_kind = kind;
	c->status = ENTRY_ERROR;
}

/* Inspect image KEY (an ID or a reference) once per pass. */
static struct image_info *image_get(struct pass *p, const char *key)
{
	struct image_info *ii, **nv;
	struct refit_err e = { 0 };

	for (size_t i = 0; i < p->nimages; i++)
		if (strcmp(p->images[i]->key, key) == 0)
			return p->images[i];
	nv = realloc(p->images, (p->nimages + 1) * sizeof(*nv));
	if (!nv)
		return NULL;
	p->images = nv;
	ii = calloc(1, sizeof(*ii));
	if (!ii || !(ii->key = strdup(key))) {
		free(ii);
		return NULL;
	}
	nv[p->nimages++] = ii;
	if (!p->index_asked) {
		json_t *list = NULL;
		int rc;

		p->index_asked = true;
		rc = p->images_started ? engine_get_join(&p->images_get, p->en, &list, &e) :
					 engine_get_json(p->en, "/images/json", &list, &e);
		p->images_started = false;
		if (rc < 0 || lists_image_index(list, &p->index, &e) < 0)
			log_debug("image list: %s; images are inspected one by one", e.msg);
		json_decref(list);
		memset(&e, 0, sizeof(e));
	}
	if (p->index) {
		const char *id = lists_image_digests(p->index, key) ? ii->key : lists_image_by_tag(p->index, key);

		if (id && (ii->repo_digests = lists_image_digests(p->index, id))) {
			ii->id = id;
			return ii;
		}
	}
	/* Not listed (pulled since the list was read, or a tag of no image): the engine says */
	if (engine_image_inspect(p->en, key, &ii->inspect, &e) <= 0) {
		ii->err_kind = e.kind;
		snprintf(ii->error, sizeof(ii->error), "image %.100s: %.180s", key, e.msg);
		return ii;
	}
	ii->id = json_string_value(json_object_get(ii->inspect, "Id"));
	ii->repo_digests = json_object_get(ii->inspect, "RepoDigests");
	return ii;
}

/*
 * The digest in RepoDigests recorded for REF's repository, or NULL. An image
 * pulled through an index has several (the index and its platform
 * manifest): WANT, when one of them, is preferred.
 */
static const char *repo_digest_for(json_t *repo_digests, const struct imageref *ref, const char *want_digest)
{
	char *want = imageref_repository(ref);
	const char *found = NULL;
	size_t i;
	json_t *v;

	if (!want)
		return NULL;
	json_array_foreach(repo_digests, i, v) {
		const char *s = json_string_value(v), *at;
		struct imageref rd = { 0 };
		char *repo;

		if (!s || imageref_parse(s, &rd, NULL) < 0)
			continue;
		repo = imageref_repository(&rd);
		at = strchr(s, '@');
		if (repo && strcmp(repo, want) == 0 && rd.digest && at) {
			if (!found || (want_digest && strcmp(at + 1, want_digest) == 0))
				found = at + 1;
		}
		free(repo);
		imageref_free(&rd);
	}
	free(want);
	return found;
}

/*
 * True when ID, a container's image ID, is also the digest the image was
 * pulled as: on the containerd image store, where an image is named by the
 * digest of its manifest or index.
 */
static bool containerd_digest(struct pass *p, const char *id)
{
	return id && strncmp(id, "sha256:", 7) == 0 && strlen(id) == 71 && engine_containerd_store(p->en);
}

/* Set STR to a copy of V (NULL stays NULL). */
static void set_str(char **str, const char *v)
{
	free(*str);
	*str = v ? strdup(v) : NULL;
}

/*
 * The engine's container list, every state (include_stopped and
 * include_restarting read State). With label_enable, only containers that
 * carry an enable label are asked for: the engine ANDs label filters, so
 * refit's and Watchtower's label take one filtered list each, merged.
 */
static int list_containers(struct engine *en, const struct refit_config *cfg, json_t **ret, struct refit_err *e)
{
	static const char *const filtered[] = {
		"/containers/json?all=1&filters=%7B%22label%22%3A%5B%22refit.enable%22%5D%7D",
		"/containers/json?all=1&filters=%7B%22label%22%3A%5B%22com.centurylinklabs.watchtower.enable%22%5D%7D",
	};
	json_t *seen, *more = NULL, *c;
	struct engine_get other;
	struct refit_err oe = { 0 };
	size_t i;
	int rc;

	*ret = NULL;
	if (!cfg->label_enable)
		return engine_get_json(en, "/containers/json?all=1", ret, e);
	/* the two lists at once, each on a connection of its own */
	engine_get_start(&other, en, filtered[1]);
	rc = engine_get_json(en, filtered[0], ret, e);
	if (engine_get_join(&other, en, &more, &oe) < 0 && rc == 0) {
		*e = oe;
		rc = -1;
	}
	if (rc < 0) {
		json_decref(*ret);
		json_decref(more);
		*ret = NULL;
		return -1;
	}
	if (!json_is_array(*ret) || !json_is_array(more) || !(seen = json_object())) {
		json_decref(more);
		return 0; /* the caller says what is wrong with the list */
	}
	json_array_foreach(*ret, i, c) {
		const char *id = json_string_value(json_object_get(c, "Id"));

		if (id)
			json_object_set_new(seen, id, json_true());
	}
	json_array_foreach(more, i, c) {
		const char *id = json_string_value(json_object_get(c, "Id"));

		if (!id || !json_object_get(seen, id))
			json_array_append(*ret, c);
	}
	json_decref(seen);
	json_decref(more);
	return 0;
}

/*
 * Entry CE's reference (Config.Image) and image ID: the list's, else (the
 * list shows an ID where the reference was: the tag moved on) one inspect.
 */
static int entry_image(struct pass *p, struct check_entry *ce, const struct listed_container *lc,
		       struct refit_err *e)
{
	json_t *ins = NULL;
	int rc = 0;

	if (lc->image && lc->image_id) {
		set_str(&ce->image, lc->image);
		set_str(&ce->image_id, lc->image_id);
		return 0;
	}
	p->inspected++;
	if (engine_container_inspect(p->en, lc->id, &ins, e) <= 0)
		return -1;
	set_str(&ce->image, json_string_value(json_object_get(json_object_get(ins, "Config"), "Image")));
	set_str(&ce->image_id, json_string_value(json_object_get(ins, "Image")));
	if (!ce->image || !ce->image_id)
		rc = err_set(e, ERR_FAILED, "engine: inspect has no Config.Image or Image");
	json_decref(ins);
	return rc;
}

/* Fill the entries from the engine's lists; a container is inspected only when its list entry lacks its reference. */
static int collect(struct pass *p, char *const *names, size_t nnames, struct refit_err *e)
{
	const struct refit_config *cfg = p->cfg;
	struct check_result *res = p->res;
	json_t *list = NULL, *c;
	struct swarm_service *svcs = NULL;
	size_t i, n, nsvc = 0;

	/* The image list is read beside the container lists: the entries need it next. */
	engine_get_start(&p->images_get, p->en, "/images/json");
	p->images_started = true;
	if (list_containers(p->en, cfg, &list, e) < 0)
		return -1;
	if (swarm_collect(p->en, cfg, names, nnames, &svcs, &nsvc, e) < 0) {
		if (strcmp(cfg->swarm, "auto") != 0) {
			json_decref(list);
			return -1;
		}
		/* swarm: auto: the services are left for the next pass; the containers go on */
		log_warn("swarm: services not checked this pass: %s", e->msg);
		memset(e, 0, sizeof(*e));
		svcs = NULL;
		nsvc = 0;
	}
	if (!json_is_array(list)) {
		json_decref(list);
		swarm_services_free(svcs, nsvc);
		return err_set(e, ERR_FAILED, "engine: container list is not an array");
	}
	n = json_array_size(list) > LISTS_MAX_CONTAINERS ? LISTS_MAX_CONTAINERS : json_array_size(list);
	res->v = calloc(n + nsvc + 1, sizeof(*res->v));
	p->refs = calloc(n + nsvc + 1, sizeof(*p->refs));
	p->parsed = calloc(n + nsvc + 1, sizeof(*p->parsed));
	p->no_pull = calloc(n + nsvc + 1, sizeof(*p->no_pull));
	p->track = calloc(n + nsvc + 1, sizeof(*p->track));
	p->trefs = calloc(n + nsvc + 1, sizeof(*p->trefs));
	p->moved = calloc(n + nsvc + 1, sizeof(*p->moved));
	if (!res->v || !p->refs || !p->parsed || !p->no_pull || !p->track || !p->trefs || !p->moved) {
		json_decref(list);
		swarm_services_free(svcs, nsvc);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	json_array_foreach(list, i, c) {
		struct listed_container lc;
		struct check_entry *ce;
		struct refit_err ie = { 0 };
		const char *track, *img;

		if (i >= n)
			break;
		if (lists_container(c, &lc, &ie) < 0) {
			log_debug("%s", ie.msg);
			continue;
		}
		if (swarm_is_task(lc.labels))
			continue; /* a Swarm task: its service is updated through Swarm, never the container */
		if (!select_container(cfg, lc.labels, lc.name,
				      lc.state && (strcmp(lc.state, "running") == 0 ||
						   (cfg->include_restarting && strcmp(lc.state, "restarting") == 0)),
				      names, nnames))
			continue;
		ce = &res->v[res->n];
		ce->name = strdup(lc.name);
		ce->id = strdup(lc.id);
		ce->update_available = -1;
		ce->strategy = select_strategy(cfg, lc.labels);
		if (!ce->name || !ce->id) {
			json_decref(list);
			swarm_services_free(svcs, nsvc);
			return err_set(e, ERR_FAILED, "out of memory");
		}
		p->res->n++;
		if (entry_image(p, ce, &lc, &ie) < 0) {
			entry_error(ce, ie.kind, ie.msg);
			if (!ce->image) /* the container is gone, or the engine failed: nothing more to read */
				continue;
		}
		img = ce->image;
		if (ce->status != ENTRY_UNSET) {
			/* the inspect's error stands */
		} else if (!ce->strategy) {
			char known[128], msg[200];

			strategy_names(known, sizeof(known));
			snprintf(msg, sizeof(msg), "label refit.strategy: expected one of %s", known);
			entry_error(ce, ERR_FAILED, msg);
		} else if (strncmp(img, "sha256:", 7) == 0) {
			ce->status = ENTRY_SKIPPED;
			ce->error = strdup("created from an image ID: no repository to follow");
		} else if (imageref_parse(img, &p->refs[res->n - 1], &ie) < 0) {
			entry_error(ce, ERR_FAILED, ie.msg);
		} else {
			p->parsed[res->n - 1] = true;
		}
		if (ce->status == ENTRY_UNSET && select_monitor_only(cfg, lc.labels))
			ce->status = ENTRY_MONITOR_ONLY;
		p->no_pull[res->n - 1] = ce->no_pull = select_no_pull(cfg, lc.labels);
		if (select_cooldown(cfg, lc.labels, &ce->cooldown, &ie) < 0)
			entry_error(ce, ERR_FAILED, ie.msg); /* never taken early for want of a readable label */
		track = json_string_value(json_object_get(lc.labels, "refit.track"));
		if (track && !(p->track[res->n - 1] = strdup(track)))
			entry_error(ce, ERR_FAILED, "out of memory"); /* not silently followed by digest */
	}
	if (p->inspected)
		log_debug("check: %zu of %zu containers inspected (the list showed an image ID for their reference)",
			  p->inspected, res->n);
	json_decref(list);
	/* Swarm services: the current digest is the one their spec is pinned to. */
	for (i = 0; i < nsvc; i++) {
		struct check_entry *ce = &res->v[res->n++];
		struct refit_err ie = { 0 };

		ce->kind = "service";
		ce->strategy = "swarm";
		ce->update_available = -1;
		ce->name = svcs[i].name;
		ce->id = svcs[i].id;
		ce->image = svcs[i].image;
		ce->current_digest = svcs[i].digest;
		svcs[i].name = svcs[i].id = svcs[i].image = svcs[i].digest = NULL;
		if (svcs[i].error)
			entry_error(ce, ERR_FAILED, svcs[i].error);
		else if (imageref_parse(ce->image, &p->refs[res->n - 1], &ie) < 0)
			entry_error(ce, ERR_FAILED, ie.msg);
		else
			p->parsed[res->n - 1] = true;
		if (ce->status == ENTRY_UNSET && select_monitor_only(cfg, svcs[i].labels))
			ce->status = ENTRY_MONITOR_ONLY;
		if (select_cooldown(cfg, svcs[i].labels, &ce->cooldown, &ie) < 0)
			entry_error(ce, ERR_FAILED, ie.msg);
	}
	swarm_services_free(svcs, nsvc);
	return 0;
}

/* Compare with the local image the tag points to, for no-pull containers. */
static void compare_local(struct pass *p, struct check_entry *ce, const struct imageref *ref)
{
	char *s = imageref_string(ref);
	struct image_info *tag = s ? image_get(p, s) : NULL;
	struct image_info *cur = image_get(p, ce->image_id);

	free(s);
	if (!tag || !cur) {
		entry_error(ce, ERR_FAILED, "out of memory");
		return;
	}
	if (tag->err_kind) {
		entry_error(ce, tag->err_kind, tag->error);
		return;
	}
	set_str(&ce->current_digest, repo_digest_for(cur->repo_digests, ref, NULL));
	set_str(&ce->latest_digest, repo_digest_for(tag->repo_digests, ref, NULL));
	ce->update_available = strcmp(tag->id ? tag->id : "", ce->image_id) != 0;
	if (ce->status == ENTRY_UNSET)
		ce->status = ce->update_available ? ENTRY_UPDATE_AVAILABLE : ENTRY_UP_TO_DATE;
}

/*
 * Entry I goes to TAG: when that is not where it is (or, with FORCE, it is
 * pinned to a digest), its target is IMAGE with TAG in place of its tag and
 * digest, and the check asks for that reference instead.
 */
static void set_target(struct pass *p, size_t i, const char *tag, bool force)
{
	struct check_entry *ce = &p->res->v[i];
	const struct imageref *ref = &p->refs[i];
	struct refit_err e = { 0 };
	char buf[IMAGEREF_MAX + 160], *at, *slash, *colon;

	if (!tag)
		return;
	set_str(&ce->target_tag, tag);
	if (strcmp(tag, ref->tag ? ref->tag : "") == 0 && !(force && ref->digest))
		return;
	if (ce->no_pull) {
		entry_error(ce, ERR_FAILED, "moving to another tag needs a pull: not with no-pull");
		return;
	}
	snprintf(buf, sizeof(buf), "%s", ce->image);
	if ((at = strchr(buf, '@')))
		*at = '\0';
	slash = strrchr(buf, '/');
	colon = strrchr(slash ? slash : buf, ':');
	if (colon)
		*colon = '\0';
	if (strlen(buf) + strlen(tag) + 2 > IMAGEREF_MAX) {
		entry_error(ce, ERR_FAILED, "the target reference is too long");
		return;
	}
	snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ":%s", tag);
	if (imageref_parse(buf, &p->trefs[i], &e) < 0) {
		entry_error(ce, ERR_FAILED, e.msg);
		return;
	}
	set_str(&ce->target_image, buf);
	p->moved[i] = true;
}

/*
 * Decide each entry's target tag: TO_TAG when given (the containers named
 * move there), else by its refit.track rule over its repository's tags
 * (one listing per repository). A bad rule is the entry's error.
 */
static void plan_targets(struct pass *p, struct registry *reg, const char *to_tag, bool named)
{
	struct check_result *res = p->res;
	struct track_rule *rules = calloc(res->n ? res->n : 1, sizeof(*rules));
	struct tags_query *tq = calloc(res->n ? res->n : 1, sizeof(*tq));
	size_t *which = calloc(res->n ? res->n : 1, sizeof(*which)), nt = 0;
	char **keys = calloc(res->n ? res->n : 1, sizeof(*keys));
	struct refit_err te = { 0 };

	if (!rules || !tq || !which || !keys) {
		for (size_t i = 0; i < res->n; i++)
			if (p->parsed[i] && (to_tag || p->track[i]))
				entry_error(&res->v[i], ERR_FAILED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < res->n; i++) {
		struct check_entry *ce = &res->v[i];
		char *key;
		size_t k;

		if (!p->parsed[i] || ((ce->status != ENTRY_UNSET && ce->status != ENTRY_MONITOR_ONLY)))
			continue;
		if (to_tag && ce->kind) {
			/* named: the request cannot be done as asked; unnamed: the move is about the containers */
			if (named) {
				entry_error(ce, ERR_FAILED, "a Swarm service: --to and target_version move containers only");
			} else {
				ce->status = ENTRY_SKIPPED;
				set_str(&ce->error, "a Swarm service: --to and target_version move containers only");
			}
			continue;
		}
		if (to_tag) {
			set_target(p, i, to_tag, true);
			continue;
		}
		if (!p->track[i])
			continue;
		if (track_parse(p->track[i], &rules[i], &te) < 0) {
			entry_error(ce, ERR_FAILED, te.msg);
			continue;
		}
		if (rules[i].kind == TRACK_DIGEST)
			continue;
		if (ce->no_pull) {
			entry_error(ce, ERR_FAILED, "label refit.track: following tags needs the registry: not with no-pull");
			continue;
		}
		if (!(key = imageref_repository(&p->refs[i]))) {
			entry_error(ce, ERR_FAILED, "out of memory");
			continue;
		}
		for (k = 0; k < nt && strcmp(keys[k], key) != 0; k++)
			;
		if (k == nt) {
			keys[nt] = key;
			tq[nt++].dq.ref = &p->refs[i];
		} else {
			free(key);
		}
		which[i] = k + 1;
	}
	if (nt)
		registry_list_tags(reg, tq, nt);
	for (size_t i = 0; i < res->n; i++) {
		struct check_entry *ce = &res->v[i];
		struct tags_query *q;
		long idx;

		if (!which[i])
			continue;
		q = &tq[which[i] - 1];
		if (q->dq.err_kind) {
			entry_error(ce, q->dq.err_kind, q->dq.error);
			continue;
		}
		idx = track_pick(&rules[i], p->refs[i].tag, q->tags.v, q->tags.n, &te);
		if (idx == -2) {
			entry_error(ce, ERR_FAILED, te.msg);
			continue;
		}
		log_debug("%s: refit.track=%s over %zu tags (%zu pages): %s", ce->name, p->track[i], q->tags.n, q->pages,
			  idx >= 0 ? q->tags.v[idx] : "no higher tag");
		set_target(p, i, idx >= 0 ? q->tags.v[idx] : p->refs[i].tag, false);
	}
out:
	for (size_t i = 0; rules && i < res->n; i++)
		track_free(&rules[i]);
	for (size_t i = 0; tq && i < nt; i++)
		tag_list_free(&tq[i].tags);
	for (size_t i = 0; keys && i < nt; i++)
		free(keys[i]);
	free(rules);
	free(tq);
	free(which);
	free(keys);
}

int check_run(struct engine *en, struct registry *reg, const struct refit_config *cfg, char *const *names,
	      size_t nnames, struct check_result *ret, struct refit_err *e)
{
	return check_run_to(en, reg, cfg, names, nnames, NULL, ret, e);
}

const char *check_entry_image(const struct check_entry *c)
{
	return c->target_image ? c->target_image : c->image;
}

int check_run_to(struct engine *en, struct registry *reg, const struct refit_config *cfg, char *const *names,
		 size_t nnames, const char *to_tag, struct check_result *ret, struct refit_err *e)
{
	return check_run_hold(en, reg, cfg, names, nnames, to_tag, false, ret, e);
}

/*
 * The references the client's last pass asked for, asked again ahead
 * while the engine lists its containers: the registry's answers and the
 * engine's lists take their time at once instead of one after the other.
 * Answers are this pass's own (asked after it began); a reference this
 * pass does not need any more is asked in vain, one it newly needs is
 * asked after the lists, as without.
 */
struct ahead {
	pthread_t thread;
	bool running;
	struct registry *reg;
	json_t *keys;
	struct imageref *refs;
	struct digest_query *q;
	size_t n;
};

static void *ahead_run(void *arg)
{
	struct ahead *a = arg;

	registry_resolve(a->reg, a->q, a->n);
	return NULL;
}

static void ahead_start(struct ahead *a, struct registry *reg)
{
	json_t *v;
	size_t i;

	memset(a, 0, sizeof(*a));
	a->reg = reg;
	a->keys = registry_remembered(reg);
	if (!json_array_size(a->keys))
		return;
	a->refs = calloc(json_array_size(a->keys), sizeof(*a->refs));
	a->q = calloc(json_array_size(a->keys), sizeof(*a->q));
	if (!a->refs || !a->q)
		return;
	json_array_foreach(a->keys, i, v) {
		if (imageref_parse(json_string_value(v), &a->refs[a->n], NULL) < 0) {
			json_array_set_new(a->keys, i, json_null());
			continue;
		}
		a->q[a->n].ref = &a->refs[a->n];
		a->n++;
	}
	a->running = a->n && pthread_create(&a->thread, NULL, ahead_run, a) == 0;
}

/* Wait for the answers asked ahead (before anything else uses the client). */
static void ahead_join(struct ahead *a)
{
	if (a->running)
		pthread_join(a->thread, NULL);
	a->running = false;
}

/* Q's answer from those asked ahead for KEY, moved into Q; false when none was. */
static bool ahead_take(struct ahead *a, const char *key, struct digest_query *q)
{
	json_t *v;
	size_t i, k = 0;

	json_array_foreach(a->keys, i, v) {
		if (!json_is_string(v))
			continue;
		if (k < a->n && strcmp(json_string_value(v), key) == 0 && (a->q[k].digest || a->q[k].err_kind)) {
			q->digest = a->q[k].digest;
			q->err_kind = a->q[k].err_kind;
			memcpy(q->error, a->q[k].error, sizeof(q->error));
			a->q[k].digest = NULL;
			a->q[k].err_kind = ERR_NONE;
			return true;
		}
		k++;
	}
	return false;
}

static void ahead_free(struct ahead *a)
{
	ahead_join(a);
	for (size_t i = 0; i < a->n; i++) {
		free(a->q[i].digest);
		imageref_free(&a->refs[i]);
	}
	free(a->q);
	free(a->refs);
	json_decref(a->keys);
}

int check_run_hold(struct engine *en, struct registry *reg, const struct refit_config *cfg, char *const *names,
		   size_t nnames, const char *to_tag, bool force, struct check_result *ret, struct refit_err *e)
{
	struct pass p = { .en = en, .cfg = cfg, .res = ret };
	struct ahead ahead = { 0 };
	struct digest_query *q = NULL;
	json_t **rdigests = NULL; /* RepoDigests of each entry's image */
	char **keys = NULL;
	size_t *which = NULL, nq = 0;
	int rc = -1;

	memset(ret, 0, sizeof(*ret));
	if (nnames == 0)
		ahead_start(&ahead, reg);
	if (collect(&p, names, nnames, e) < 0)
		goto out;
	ahead_join(&ahead); /* the client is this thread's again */
	q = calloc(ret->n ? ret->n : 1, sizeof(*q));
	keys = calloc(ret->n ? ret->n : 1, sizeof(*keys));
	which = calloc(ret->n ? ret->n : 1, sizeof(*which));
	rdigests = calloc(ret->n ? ret->n : 1, sizeof(*rdigests));
	if (!q || !keys || !which || !rdigests) {
		err_set(e, ERR_FAILED, "out of memory");
		goto out;
	}
	plan_targets(&p, reg, to_tag, nnames > 0);

	/* Local digests, then one query per distinct reference. */
	for (size_t i = 0; i < ret->n; i++) {
		struct check_entry *ce = &ret->v[i];
		const struct imageref *ref = &p.refs[i];
		const struct imageref *qref = p.moved[i] ? &p.trefs[i] : ref; /* what the registry is asked */
		struct image_info *ii;
		char *key;
		size_t k;

		if (!p.parsed[i] || ((ce->status != ENTRY_UNSET && ce->status != ENTRY_MONITOR_ONLY)))
			continue;
		if (ref->digest && !p.moved[i]) {
			ce->status = ENTRY_PINNED;
			set_str(&ce->current_digest, ref->digest);
			continue;
		}
		if (p.no_pull[i]) {
			compare_local(&p, ce, ref);
			continue;
		}
		if (!ce->kind) { /* a service has no local image to read */
			ii = image_get(&p, ce->image_id);
			if (!ii) {
				entry_error(ce, ERR_FAILED, "out of memory");
				continue;
			}
			if (ii->err_kind) {
				entry_error(ce, ii->err_kind, ii->error);
				continue;
			}
			set_str(&ce->current_digest, repo_digest_for(ii->repo_digests, ref, NULL));
			rdigests[i] = json_incref(ii->repo_digests);
		}
		key = imageref_string(qref);
		if (!key) {
			entry_error(ce, ERR_FAILED, "out of memory");
			continue;
		}
		for (k = 0; k < nq && strcmp(keys[k], key) != 0; k++)
			;
		if (k == nq) {
			keys[nq] = key;
			q[nq++].ref = qref;
		} else {
			free(key);
		}
		which[i] = k + 1;
	}
	ret->lookups = nq;
	{
		struct digest_query *todo = calloc(nq ? nq : 1, sizeof(*todo));
		size_t *back = calloc(nq ? nq : 1, sizeof(*back)), nt = 0;

		if (!todo || !back) {
			free(todo);
			free(back);
			err_set(e, ERR_FAILED, "out of memory");
			goto out;
		}
		for (size_t k = 0; k < nq; k++) {
			if (ahead_take(&ahead, keys[k], &q[k]))
				continue;
			todo[nt].ref = q[k].ref;
			back[nt++] = k;
		}
		registry_resolve(reg, todo, nt);
		for (size_t t = 0; t < nt; t++)
			q[back[t]] = todo[t];
		free(todo);
		free(back);
	}
	if (nnames == 0 && !to_tag)
		registry_remember(reg, keys, nq);

	for (size_t i = 0; i < ret->n; i++) {
		struct check_entry *ce = &ret->v[i];
		struct digest_query *dq;

		if (!which[i])
			continue;
		dq = &q[which[i] - 1];
		if (dq->err_kind && p.moved[i]) {
			char msg[700];

			snprintf(msg, sizeof(msg), "tag %s for container %s (%s): %s", ce->target_tag, ce->name,
				 ce->target_image, dq->error);
			entry_error(ce, dq->err_kind, msg);
			continue;
		}
		if (dq->err_kind) {
			entry_error(ce, dq->err_kind, dq->error);
			continue;
		}
		if (p.moved[i]) {
			/* Another tag: an update whatever the digests, so the container follows the new tag. */
			set_str(&ce->latest_digest, dq->digest);
			set_str(&ce->current_digest, repo_digest_for(rdigests[i], &p.refs[i], NULL));
			if (!ce->current_digest)
				set_str(&ce->current_digest, p.refs[i].digest);
			ce->update_available = 1;
			if (ce->status == ENTRY_UNSET)
				ce->status = ENTRY_UPDATE_AVAILABLE;
			continue;
		}
		set_str(&ce->latest_digest, dq->digest);
		if (ce->kind) {
			/* A service: its spec's digest (none when never pinned) against the registry's. */
			ce->update_available = !ce->current_digest || strcmp(ce->current_digest, dq->digest) != 0;
			if (ce->status == ENTRY_UNSET)
				ce->status = ce->update_available ? ENTRY_UPDATE_AVAILABLE : ENTRY_UP_TO_DATE;
			continue;
		}
		/* Up to date when the registry's digest is any of the image's digests from there. */
		set_str(&ce->current_digest, repo_digest_for(rdigests[i], &p.refs[i], dq->digest));
		if (!ce->current_digest && containerd_digest(&p, ce->image_id))
			/* an image whose name moved on keeps no RepoDigests there; its ID is its digest */
			set_str(&ce->current_digest, ce->image_id);
		if (!ce->current_digest) {
			char msg[400];

			snprintf(msg, sizeof(msg), "the local image has no digest from %s (built locally, or pulled under another name?)",
				 ce->image);
			entry_error(ce, ERR_FAILED, msg);
			continue;
		}
		ce->update_available = strcmp(ce->current_digest, dq->digest) != 0;
		if (ce->status == ENTRY_UNSET)
			ce->status = ce->update_available ? ENTRY_UPDATE_AVAILABLE : ENTRY_UP_TO_DATE;
	}
	hold_check(cfg, ret, force && nnames > 0, time(NULL));
	rc = 0;
out:
	ahead_free(&ahead);
	for (size_t i = 0; i < nq; i++) {
		free(keys[i]);
		free(q[i].digest);
	}
	free(keys);
	free(q);
	free(which);
	for (size_t i = 0; rdigests && i < ret->n; i++)
		json_decref(rdigests[i]);
	free(rdigests);
	for (size_t i = 0; p.refs && i < ret->n; i++)
		imageref_free(&p.refs[i]);
	for (size_t i = 0; p.trefs && i < ret->n; i++)
		imageref_free(&p.trefs[i]);
	for (size_t i = 0; p.track && i < ret->n; i++)
		free(p.track[i]);
	free(p.refs);
	free(p.trefs);
	free(p.track);
	free(p.moved);
	free(p.parsed);
	free(p.no_pull);
	json_decref(p.index);
	if (p.images_started) { /* asked, never needed (no entry, or the pass failed first) */
		json_t *unused = NULL;

		engine_get_join(&p.images_get, p.en, &unused, NULL);
		json_decref(unused);
	}
	for (size_t i = 0; i < p.nimages; i++) {
		free(p.images[i]->key);
		json_decref(p.images[i]->inspect);
		free(p.images[i]);
	}
	free(p.images);
	if (rc < 0)
		check_result_free(ret);
	return rc;
}

void check_result_free(struct check_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		struct check_entry *c = &r->v[i];

		free(c->name);
		free(c->id);
		free(c->image);
		free(c->image_id);
		free(c->current_digest);
		free(c->latest_digest);
		free(c->error);
		free(c->target_tag);
		free(c->target_image);
		free(c->renamed_to);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

json_t *check_result_json(const struct check_result *r)
{
	json_t *arr = json_array(), *root = json_object();

	if (!arr || !root) {
		json_decref(arr);
		json_decref(root);
		return NULL;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct check_entry *c = &r->v[i];
		char when[ISO_TIME_LEN];
		json_t *o = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s, s:s?}", "name", c->name, "id", c->id,
				      "image", c->image, "current_digest", c->current_digest, "latest_digest",
				      c->latest_digest, "status", entry_status_to_string(c->status), "strategy",
				      c->strategy);

		if (!o)
			continue;
		json_object_set_new(o, "kind", json_string(c->kind ? c->kind : "container"));
		if (c->update_available >= 0)
			json_object_set_new(o, "update_available", json_boolean(c->update_available));
		if (c->error)
			json_object_set_new(o, "error", json_string(c->error));
		if (c->target_tag)
			json_object_set_new(o, "target_tag", json_string(c->target_tag));
		if (c->target_image)
			json_object_set_new(o, "target_image", json_string(c->target_image));
		if (c->renamed_to)
			json_object_set_new(o, "renamed_to", json_string(c->renamed_to));
		if (c->status == ENTRY_HELD && c->held_since)
			json_object_set_new(o, "held_since", json_string(iso_time(c->held_since, when)));
		if (c->status == ENTRY_COOLDOWN && c->eligible_at)
			json_object_set_new(o, "eligible_at", json_string(iso_time(c->eligible_at, when)));
		if (c->held)
			json_object_set_new(o, "held", json_true());
		if (c->swap_seconds > 0) {
			json_object_set_new(o, "swap_seconds", json_real(c->swap_seconds));
			json_object_set_new(o, "overhead_seconds", json_real(c->overhead_seconds > 0 ? c->overhead_seconds : 0));
		}
		json_array_append_new(arr, o);
	}
	json_object_set_new(root, "containers", arr);
	return root;
}

int check_exit_code(const struct check_result *r)
{
	int code = 0;

	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].err_kind == ERR_UNREACHABLE)
			return ERR_UNREACHABLE;
		if (r->v[i].err_kind)
			code = ERR_FAILED;
	}
	return code;
}
