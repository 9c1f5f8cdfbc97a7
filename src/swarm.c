/* Docker Swarm services: selection, digest pinning through the service update, following the rollout. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "refit/auth.h"
#include "refit/base.h"
#include "refit/imageref.h"
#include "refit/journal-record.h"
#include "refit/log.h"
#include "refit/registry.h"
#include "refit/select.h"
#include "refit/swarm.h"
#include "refit/waited.h"

#define NS_PER_S 1000000000LL
#define POLL_MS 1000
#define LABEL_PREFIX "refit.swarm."

bool swarm_is_task(json_t *labels)
{
	return json_is_object(labels) && (json_object_get(labels, "com.docker.swarm.service.id") ||
					  json_object_get(labels, "com.docker.swarm.task.id"));
}

bool swarm_info_manager(json_t *info)
{
	json_t *sw = json_object_get(info, "Swarm");
	const char *state = json_string_value(json_object_get(sw, "LocalNodeState"));

	return state && strcmp(state, "active") == 0 && json_is_true(json_object_get(sw, "ControlAvailable"));
}

/* Copy of S, or NULL; *OK cleared when out of memory. */
static char *dup_or(const char *s, bool *ok)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*ok = false;
	return d;
}

int swarm_service_parse(json_t *svc, struct swarm_service *ret, struct refit_err *e)
{
	json_t *spec = json_object_get(svc, "Spec"), *labels = json_object_get(spec, "Labels");
	json_t *ver = json_object_get(json_object_get(svc, "Version"), "Index");
	const char *id = json_string_value(json_object_get(svc, "ID"));
	const char *name = json_string_value(json_object_get(spec, "Name"));
	const char *image = json_string_value(
		json_object_get(json_object_get(json_object_get(spec, "TaskTemplate"), "ContainerSpec"), "Image"));
	struct imageref ref = { 0 };
	struct refit_err ie = { 0 };
	const char *at;
	bool ok = true;

	memset(ret, 0, sizeof(*ret));
	if (!id || !*id || strlen(id) > 64 || strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(id))
		return err_set(e, ERR_FAILED, "service has no valid ID");
	if (!name || !*name || strlen(name) > SWARM_MAX_NAME)
		return err_set(e, ERR_FAILED, "service %s has no valid name", id);
	ret->id = dup_or(id, &ok);
	ret->name = dup_or(name, &ok);
	ret->labels = json_is_object(labels) ? json_incref(labels) : json_object();
	if (!ok || !ret->labels)
		return err_set(e, ERR_FAILED, "out of memory");
	if (labels && !json_is_object(labels) && !json_is_null(labels))
		return err_set(e, ERR_FAILED, "service %s: Spec.Labels is not an object", name);
	if (!json_is_integer(ver) || json_integer_value(ver) < 0)
		return err_set(e, ERR_FAILED, "service %s: no Version.Index", name);
	ret->version = (unsigned long long)json_integer_value(ver);
	if (!image || !*image)
		return err_set(e, ERR_FAILED, "service %s: no Spec.TaskTemplate.ContainerSpec.Image", name);
	if (strlen(image) > IMAGEREF_MAX || imageref_parse(image, &ref, &ie) < 0)
		return err_set(e, ERR_FAILED, "service %s: image: %s", name, ie.msg[0] ? ie.msg : "too long");
	at = strrchr(image, '@');
	if (ref.digest) {
		if (!at || !registry_digest_valid(at + 1)) {
			imageref_free(&ref);
			return err_set(e, ERR_FAILED, "service %s: image digest is not sha256 or sha512 hex", name);
		}
		ret->digest = dup_or(at + 1, &ok);
	}
	ret->pinned = ref.digest && !ref.tag;
	if (!ref.digest && !strchr(strrchr(image, '/') ? strrchr(image, '/') + 1 : image, ':')) {
		/* "nginx": refit pins it as nginx:latest@DIGEST, which stays a tag to follow */
		if (asprintf(&ret->image, "%s:latest", image) < 0)
			ret->image = NULL;
	} else {
		ret->image = ret->pinned || !at ? dup_or(image, &ok) : strndup(image, (size_t)(at - image));
	}
	imageref_free(&ref);
	if (!ok || !ret->image)
		return err_set(e, ERR_FAILED, "out of memory");
	return 0;
}

void swarm_service_free(struct swarm_service *s)
{
	if (!s)
		return;
	free(s->id);
	free(s->name);
	free(s->image);
	free(s->digest);
	free(s->error);
	json_decref(s->labels);
	memset(s, 0, sizeof(*s));
}

void swarm_services_free(struct swarm_service *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		swarm_service_free(&v[i]);
	free(v);
}

/* Label refit.swarm.KEY as a string, or NULL when unset. -1 when it is set but not a string. */
static int label_str(json_t *labels, const char *key, const char **ret, struct refit_err *e)
{
	char full[64];
	json_t *v;

	snprintf(full, sizeof(full), LABEL_PREFIX "%s", key);
	v = json_object_get(labels, full);
	*ret = json_string_value(v);
	if (v && (!*ret || strlen(*ret) > 64))
		return err_set(e, ERR_USAGE, "label %s: expected a short string", full);
	return 0;
}

/* Label refit.swarm.KEY as whole seconds ("10" or "10s") in MIN..MAX, else DEF. */
static int label_long(json_t *labels, const char *key, long min, long max, long def, long *ret, struct refit_err *e)
{
	const char *s;
	char *end;
	long v;

	if (label_str(labels, key, &s, e) < 0)
		return -1;
	*ret = def;
	if (!s)
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (end != s && *end == 's')
		end++;
	if (end == s || *end || errno || s[0] == '-' || s[0] == '+' || s[0] == ' ' || v < min || v > max)
		return err_set(e, ERR_USAGE, "label " LABEL_PREFIX "%s: expected a whole number from %ld to %ld", key,
			       min, max);
	*ret = v;
	return 0;
}

/* Label refit.swarm.KEY as one of CHOICES (the first is the default). */
static int label_choice(json_t *labels, const char *key, const char *const *choices, const char **ret,
			struct refit_err *e)
{
	const char *s;

	if (label_str(labels, key, &s, e) < 0)
		return -1;
	*ret = choices[0];
	if (!s)
		return 0;
	for (int i = 0; choices[i]; i++)
		if (strcmp(s, choices[i]) == 0) {
			*ret = choices[i];
			return 0;
		}
	return err_set(e, ERR_USAGE, "label " LABEL_PREFIX "%s: expected %s or %s", key, choices[0], choices[1]);
}

int swarm_update_config_parse(json_t *labels, struct swarm_update_config *ret, struct refit_err *e)
{
	static const char *const orders[] = { "start-first", "stop-first", NULL };
	static const char *const actions[] = { "rollback", "pause", NULL };
	const char *ratio;

	memset(ret, 0, sizeof(*ret));
	if (label_long(labels, "parallelism", 0, 1000, 1, &ret->parallelism, e) < 0 ||
	    label_long(labels, "delay", 0, 3600, 5, &ret->delay, e) < 0 ||
	    label_long(labels, "monitor", 1, 3600, 10, &ret->monitor, e) < 0 ||
	    label_long(labels, "timeout", 10, 86400, 600, &ret->timeout, e) < 0 ||
	    label_choice(labels, "order", orders, &ret->order, e) < 0 ||
	    label_choice(labels, "failure-action", actions, &ret->failure_action, e) < 0 ||
	    label_str(labels, "max-failure-ratio", &ratio, e) < 0)
		return -1;
	if (ratio) {
		char *end;
		double v;

		errno = 0;
		v = strtod(ratio, &end);
		if (end == ratio || *end || errno || !(v >= 0 && v <= 1))
			return err_set(e, ERR_USAGE, "label " LABEL_PREFIX "max-failure-ratio: expected a number from 0 to 1");
		ret->max_failure_ratio = v;
	}
	return 0;
}

json_t *swarm_spec_for_update(json_t *spec, const char *image, const struct swarm_update_config *uc)
{
	json_t *out, *cs, *upd, *rb;

	if (!json_is_object(json_object_get(json_object_get(spec, "TaskTemplate"), "ContainerSpec")))
		return NULL;
	out = json_deep_copy(spec);
	cs = json_object_get(json_object_get(out, "TaskTemplate"), "ContainerSpec");
	upd = json_pack("{s:I, s:I, s:s, s:I, s:f, s:s}", "Parallelism", (json_int_t)uc->parallelism, "Delay",
			(json_int_t)(uc->delay * NS_PER_S), "FailureAction", uc->failure_action, "Monitor",
			(json_int_t)(uc->monitor * NS_PER_S), "MaxFailureRatio", uc->max_failure_ratio, "Order", uc->order);
	/* Back to the old tasks as the update went: same batches and order, no wait between them. */
	rb = json_pack("{s:I, s:I, s:s, s:I, s:f, s:s}", "Parallelism", (json_int_t)uc->parallelism, "Delay",
		       (json_int_t)0, "FailureAction", "pause", "Monitor", (json_int_t)(uc->monitor * NS_PER_S),
		       "MaxFailureRatio", 0.0, "Order", uc->order);
	if (!out || !cs || !upd || !rb || json_object_set_new(cs, "Image", json_string(image)) < 0 ||
	    json_object_set_new(out, "UpdateConfig", upd) < 0 || json_object_set_new(out, "RollbackConfig", rb) < 0) {
		if (!out || !cs) {
			json_decref(upd);
			json_decref(rb);
		}
		json_decref(out);
		return NULL;
	}
	return out;
}

enum swarm_state swarm_update_state(json_t *svc, const char *before, const char **msg)
{
	json_t *us = json_object_get(svc, "UpdateStatus");
	const char *state = json_string_value(json_object_get(us, "State"));
	const char *started = json_string_value(json_object_get(us, "StartedAt"));

	if (msg) {
		*msg = json_string_value(json_object_get(us, "Message"));
		if (*msg && strlen(*msg) > 400)
			*msg = NULL;
	}
	if (!state || (before && (!started || strcmp(started, before) == 0)))
		return SWARM_NONE;
	if (strcmp(state, "updating") == 0 || strcmp(state, "rollback_started") == 0)
		return SWARM_RUNNING;
	if (strcmp(state, "completed") == 0)
		return SWARM_COMPLETED;
	if (strcmp(state, "rollback_completed") == 0)
		return SWARM_ROLLED_BACK;
	if (strcmp(state, "paused") == 0 || strcmp(state, "rollback_paused") == 0)
		return SWARM_PAUSED;
	return SWARM_RUNNING; /* a state this refit does not know yet: keep following */
}

/*
 * Whether the engine is an active Swarm manager. GET /info says, but makes
 * dockerd run `runc --version` and `docker-init --version` each time, so
 * the answer is kept per engine address for SWARM_STATE_TTL seconds: asked
 * at a process's first pass and then at most that often. A manager that
 * stops being one is noticed at its next pass (GET /services refuses, and
 * the state is asked again); an engine that becomes one, within the TTL.
 */
static struct {
	pthread_mutex_t lock;
	char host[512];
	bool known, manager;
	long long at_ms;
} swarm_state = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The next pass asks GET /info again. */
static void swarm_state_forget(void)
{
	pthread_mutex_lock(&swarm_state.lock);
	swarm_state.known = false;
	pthread_mutex_unlock(&swarm_state.lock);
}

int swarm_enabled(struct engine *en, const struct refit_config *cfg, struct refit_err *e)
{
	const char *host = cfg->docker_host ? cfg->docker_host : "";
	json_t *info = NULL;
	bool manager, cached;

	if (cfg->swarm && strcmp(cfg->swarm, "false") == 0)
		return 0;
	pthread_mutex_lock(&swarm_state.lock);
	cached = swarm_state.known && strcmp(swarm_state.host, host) == 0 &&
		 mono_ms() - swarm_state.at_ms < SWARM_STATE_TTL * 1000LL;
	manager = swarm_state.manager;
	pthread_mutex_unlock(&swarm_state.lock);
	if (!cached) {
		if (engine_get_json(en, "/info", &info, e) < 0)
			return -1;
		manager = swarm_info_manager(info);
		json_decref(info);
		pthread_mutex_lock(&swarm_state.lock);
		snprintf(swarm_state.host, sizeof(swarm_state.host), "%s", host);
		swarm_state.known = strlen(host) < sizeof(swarm_state.host);
		swarm_state.manager = manager;
		swarm_state.at_ms = mono_ms();
		pthread_mutex_unlock(&swarm_state.lock);
		if (!manager && cfg->swarm && strcmp(cfg->swarm, "true") == 0)
			log_warn("swarm is true, but this engine is not an active Swarm manager: no services are checked");
	}
	return manager ? 1 : 0;
}

int swarm_collect(struct engine *en, const struct refit_config *cfg, char *const *names, size_t nnames,
		  struct swarm_service **ret, size_t *n, struct refit_err *e)
{
	json_t *list = NULL, *svc;
	size_t i;
	int on = swarm_enabled(en, cfg, e);

	*ret = NULL;
	*n = 0;
	if (on <= 0)
		return on;
	if (engine_get_json(en, "/services", &list, e) < 0) {
		swarm_state_forget(); /* no longer a manager, perhaps */
		return -1;
	}
	if (!json_is_array(list)) {
		json_decref(list);
		return err_set(e, ERR_FAILED, "engine: service list is not an array");
	}
	*ret = calloc(json_array_size(list) + 1, sizeof(**ret));
	if (!*ret) {
		json_decref(list);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	json_array_foreach(list, i, svc) {
		json_t *spec = json_object_get(svc, "Spec");
		const char *name = json_string_value(json_object_get(spec, "Name"));
		struct refit_err pe = { 0 };
		struct swarm_service *s = &(*ret)[*n];

		if (i >= SWARM_MAX_SERVICES)
			break;
		if (!name || !select_container(cfg, json_object_get(spec, "Labels"), name, true, names, nnames))
			continue;
		if (swarm_service_parse(svc, s, &pe) < 0) {
			if (!s->name) {
				log_warn("swarm: skipping a service: %s", pe.msg);
				swarm_service_free(s);
				continue;
			}
			log_warn("swarm: %s", pe.msg);
			s->error = strdup(pe.msg); /* kept, so that the report names it */
		}
		(*n)++;
	}
	json_decref(list);
	return 0;
}

/* GET /services/ID_OR_NAME into *RET; *STATUS gets the HTTP status. */
static int service_get(struct engine *en, const char *id, json_t **ret, long *status, struct refit_err *e)
{
	char path[600], *esc = engine_escape(en, id);
	int rc;

	if (!esc)
		return err_set(e, ERR_FAILED, "out of memory");
	snprintf(path, sizeof(path), "/services/%s", esc);
	free(esc);
	*ret = NULL;
	rc = engine_call(en, "GET", path, NULL, 0, ret, status, e);
	if (rc == 0 && !json_is_object(*ret)) {
		json_decref(*ret);
		*ret = NULL;
		return err_set(e, ERR_FAILED, "engine: service inspect is not an object");
	}
	return rc;
}

/* Is the engine's error a stale version index? */
static bool out_of_sequence(long status, const struct refit_err *e)
{
	return status == 409 || strstr(e->msg, "out of sequence") != NULL;
}

/*
 * POST the update of service ID at VERSION with SPEC (ROLLBACK: Swarm's
 * rollback to PreviousSpec), with X-Registry-Auth REGISTRY_AUTH (or none)
 * for the nodes' pulls.
 */
static int service_post(struct engine *en, const char *id, unsigned long long version, json_t *spec, bool rollback,
			const char *registry_auth, long *status, struct refit_err *e)
{
	char path[256];
	json_t *out = NULL, *w;
	size_t i;
	int rc;

	snprintf(path, sizeof(path), "/services/%s/update?version=%llu%s", id, version,
		 rollback ? "&rollback=previous" : "");
	*status = 0;
	rc = engine_call_auth(en, "POST", path, spec, registry_auth, 0, &out, status, e);
	json_array_foreach(json_object_get(out, "Warnings"), i, w) {
		if (json_is_string(w) && i < 8)
			log_warn("swarm: %.300s", json_string_value(w));
	}
	json_decref(out);
	return rc;
}

/* Replicated with 0 replicas: Swarm has no task to roll out, so there is no rollout to follow. */
static bool no_tasks(json_t *svc)
{
	json_t *r = json_object_get(json_object_get(json_object_get(json_object_get(svc, "Spec"), "Mode"), "Replicated"),
				    "Replicas");

	return json_is_integer(r) && json_integer_value(r) == 0;
}

/* The spec image of service SVC, borrowed. */
static const char *spec_image(json_t *spec)
{
	return json_string_value(
		json_object_get(json_object_get(json_object_get(spec, "TaskTemplate"), "ContainerSpec"), "Image"));
}

/*
 * Follow the rollout of service ID that started after BEFORE, for at most
 * TIMEOUT seconds. *STATE gets where it ended; WHY a message.
 */
static enum swarm_state follow(struct engine *en, const char *id, const char *before, long timeout,
			       const atomic_bool *stop, char *why, size_t whylen)
{
	double deadline = mono_seconds() + (double)timeout;
	enum swarm_state st = SWARM_NONE;
	char state_name[64] = "not started";

	for (;;) {
		json_t *svc = NULL;
		struct refit_err e = { 0 };
		long status = 0;
		const char *msg = NULL;

		if (service_get(en, id, &svc, &status, &e) < 0) {
			if (status == 404) {
				snprintf(why, whylen, "the service was removed during its rollout");
				return SWARM_PAUSED;
			}
			log_warn("swarm: %s: %s", id, e.msg);
		} else {
			st = swarm_update_state(svc, before, &msg);
			if (st == SWARM_NONE && no_tasks(svc))
				st = SWARM_COMPLETED;
			if (st != SWARM_NONE)
				snprintf(state_name, sizeof(state_name), "%s",
					 json_string_value(json_object_get(json_object_get(svc, "UpdateStatus"), "State")) ?
						 json_string_value(json_object_get(json_object_get(svc, "UpdateStatus"), "State")) : "?");
			if (st == SWARM_ROLLED_BACK || st == SWARM_PAUSED)
				snprintf(why, whylen, "Swarm %s the update%s%s",
					 st == SWARM_ROLLED_BACK ? "rolled back" : "paused", msg ? ": " : "", msg ? msg : "");
			json_decref(svc);
			if (st == SWARM_COMPLETED || st == SWARM_ROLLED_BACK || st == SWARM_PAUSED)
				return st;
		}
		if (stop && atomic_load(stop)) {
			snprintf(why, whylen, "refit stopped while Swarm was rolling out (%s)", state_name);
			return SWARM_NONE;
		}
		if (mono_seconds() >= deadline) {
			snprintf(why, whylen, "Swarm's rollout did not end within %ld s (state %s); Swarm carries on", timeout,
				 state_name);
			return SWARM_RUNNING;
		}
		waited_sleep_ms(POLL_MS);
	}
}

/* Set an entry's outcome. */
static void outcome(struct check_entry *c, enum entry_status status, const char *error)
{
	c->status = status;
	free(c->error);
	c->error = error && *error ? strdup(error) : NULL;
	c->err_kind = c->error ? ERR_FAILED : ERR_NONE;
}

/* Record the end of REC: in the history, out of the journal. */
static void record_end(struct journal *j, json_t *rec, enum entry_status result, const char *error)
{
	struct refit_err je = { 0 };
	char now[ISO_TIME_LEN];

	iso_now(now);
	json_object_set_new(rec, JR_FINISHED, json_string(now));
	json_object_set_new(rec, JR_OUTCOME, json_string(entry_status_to_string(result)));
	if (error && *error)
		json_object_set_new(rec, JR_ERROR, json_string(error));
	if (journal_finish(j, rec, &je) < 0)
		log_error("swarm: %s", je.msg);
}

/* A new journal record of service SVC (parsed as SV), step intent. */
static json_t *record_new(const char *kind, const struct swarm_service *sv, json_t *svc, const char *old_digest,
			  const char *new_digest, const char *before)
{
	char id[17], now[ISO_TIME_LEN];

	journal_new_id(id);
	iso_now(now);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:O, s:s?, s:s, s:s}", JR_ID, id, JR_KIND, kind,
			 JR_CONTAINER, sv->name, JR_TARGET, "service", JR_SERVICE_ID, sv->id, JR_STRATEGY, "swarm",
			 JR_IMAGE, sv->image, JR_OLD_DIGEST, old_digest, JR_NEW_DIGEST, new_digest, JR_OLD_SPEC,
			 json_object_get(svc, "Spec"), JR_SWARM_BEFORE, before, JR_STEP, "intent", JR_STARTED, now);
}

/*
 * Post the update (or rollback) of SV, whose inspect is *SVC; on a stale
 * version, read the service again and retry once (the spec must still be
 * on WANT_IMAGE, else nothing is posted). *SVC may be replaced.
 */
static int post_with_retry(struct engine *en, const struct refit_config *cfg, const struct swarm_service *sv,
			   json_t **svc, const char *want_image, const char *new_image, const struct swarm_update_config *uc,
			   bool rollback, struct refit_err *e)
{
	struct imageref ref = { 0 };
	char *auth = NULL;
	int rc = -1;

	/* The nodes pull with the credentials the check used: the service's registry's. */
	if (imageref_parse(sv->image, &ref, NULL) == 0 && auth_engine_header_for(cfg, ref.domain, &auth, e) < 0) {
		imageref_free(&ref);
		return -1;
	}
	imageref_free(&ref);
	for (int attempt = 0;; attempt++) {
		json_t *spec = json_object_get(*svc, "Spec"), *body;
		json_t *ver = json_object_get(json_object_get(*svc, "Version"), "Index");
		long status = 0;

		if (!json_is_integer(ver) || json_integer_value(ver) < 0) {
			rc = err_set(e, ERR_FAILED, "service has no Version.Index");
			break;
		}
		if (!spec_image(spec) || strcmp(spec_image(spec), want_image) != 0) {
			rc = err_set(e, ERR_FAILED, "the service's image changed since it was checked");
			break;
		}
		body = rollback ? json_incref(spec) : swarm_spec_for_update(spec, new_image, uc);
		if (!body) {
			rc = err_set(e, ERR_FAILED, "service spec has no TaskTemplate.ContainerSpec");
			break;
		}
		rc = service_post(en, sv->id, (unsigned long long)json_integer_value(ver), body, rollback, auth, &status,
				  e);
		json_decref(body);
		if (rc == 0 || attempt > 0 || !out_of_sequence(status, e))
			break;
		log_info("%s: the service changed meanwhile (%s); reading it again", sv->name, e->msg);
		err_clear(e);
		json_decref(*svc);
		*svc = NULL;
		if ((rc = service_get(en, sv->id, svc, &status, e)) < 0)
			break;
	}
	if (auth)
		explicit_bzero(auth, strlen(auth));
	free(auth);
	return rc;
}

/* Update one stale service entry C onto C->latest_digest. */
static void update_service(struct engine *en, struct journal *j, const struct refit_config *cfg, struct check_entry *c,
			   const atomic_bool *stop)
{
	struct swarm_service sv = { 0 };
	struct swarm_update_config uc;
	struct refit_err e = { 0 };
	json_t *svc = NULL, *rec = NULL;
	char *want = NULL, *pinned = NULL, *before = NULL, why[600] = "";
	const char *b;
	enum swarm_state st;
	double t0 = mono_seconds();
	long status = 0;
	bool ok = true;

	if (service_get(en, c->id, &svc, &status, &e) < 0 || swarm_service_parse(svc, &sv, &e) < 0) {
		outcome(c, ENTRY_FAILED, e.msg);
		goto out;
	}
	if (!c->latest_digest || !registry_digest_valid(c->latest_digest) || strcmp(sv.image, c->image) != 0 ||
	    (sv.digest ? !c->current_digest || strcmp(sv.digest, c->current_digest) != 0 : c->current_digest != NULL)) {
		outcome(c, ENTRY_FAILED, "the service's image changed since it was checked");
		goto out;
	}
	if (swarm_update_config_parse(sv.labels, &uc, &e) < 0) {
		outcome(c, ENTRY_FAILED, e.msg);
		goto out;
	}
	want = strdup(spec_image(json_object_get(svc, "Spec")));
	if (asprintf(&pinned, "%s@%s", sv.image, c->latest_digest) < 0)
		pinned = NULL;
	b = json_string_value(json_object_get(json_object_get(svc, "UpdateStatus"), "StartedAt"));
	before = dup_or(b, &ok);
	rec = ok && want && pinned ? record_new("update", &sv, svc, c->current_digest, c->latest_digest, before) : NULL;
	if (!rec) {
		outcome(c, ENTRY_FAILED, "out of memory");
		goto out;
	}
	if (journal_write(j, rec, &e) < 0) {
		outcome(c, ENTRY_FAILED, e.msg); /* refit changes nothing it cannot journal */
		goto out;
	}
	if (post_with_retry(en, cfg, &sv, &svc, want, pinned, &uc, false, &e) < 0) {
		log_warn("%s: service update refused: %s", c->name, e.msg);
		outcome(c, ENTRY_FAILED, e.msg);
		c->err_kind = e.kind;
		record_end(j, rec, ENTRY_FAILED, e.msg);
		goto out;
	}
	if (journal_step(j, rec, "rolling-out", &e) < 0)
		log_warn("%s: %s", c->name, e.msg);
	log_info("%s: Swarm is rolling out %s", c->name, pinned);
	st = follow(en, sv.id, before, uc.timeout, stop, why, sizeof(why));
	c->swap_seconds = mono_seconds() - t0;
	c->overhead_seconds = 0;
	if (st == SWARM_NONE) {
		/* Stopped: the record stays, and the next run records how the rollout ended. */
		outcome(c, ENTRY_FAILED, why);
		goto out;
	}
	if (st == SWARM_COMPLETED) {
		outcome(c, ENTRY_UPDATED, NULL);
		record_end(j, rec, ENTRY_UPDATED, NULL);
	} else {
		outcome(c, st == SWARM_ROLLED_BACK ? ENTRY_ROLLED_BACK : ENTRY_FAILED, why);
		record_end(j, rec, c->status, why);
	}
	log_info("%s: %s%s%s", c->name, entry_status_to_string(c->status), why[0] ? ": " : "", why);
out:
	json_decref(rec);
	json_decref(svc);
	swarm_service_free(&sv);
	free(want);
	free(pinned);
	free(before);
}

void swarm_update_pass(struct engine *en, struct journal *j, const struct refit_config *cfg,
		       struct check_result *res, const atomic_bool *stop)
{
	for (size_t i = 0; i < res->n; i++) {
		struct check_entry *c = &res->v[i];

		if (!c->kind || c->status == ENTRY_UNSET || c->status != ENTRY_UPDATE_AVAILABLE)
			continue;
		if (stop && atomic_load(stop)) {
			outcome(c, ENTRY_SKIPPED, "refit is stopping: this update was not started");
			continue;
		}
		update_service(en, j, cfg, c, stop);
	}
}

/* The digest the image of spec SPEC is pinned to, or NULL (borrowed from SPEC). */
static const char *spec_digest(json_t *spec)
{
	const char *img = spec_image(spec), *at = img ? strrchr(img, '@') : NULL;

	return at && registry_digest_valid(at + 1) ? at + 1 : NULL;
}

int swarm_rollback_entry(struct engine *en, struct journal *j, const struct refit_config *cfg, const char *name,
			 bool all, json_t *rec, struct check_result *res)
{
	struct swarm_service sv = { 0 };
	struct swarm_update_config uc;
	struct refit_err e = { 0 };
	struct check_entry *c;
	json_t *svc = NULL, *jr = NULL, *prev;
	char *before = NULL, *want = NULL, why[600] = "";
	const char *b;
	enum swarm_state st;
	double t0 = mono_seconds();
	long status = 0;
	int handled = 0;
	bool ok = true;

	if (swarm_enabled(en, cfg, &e) <= 0 || service_get(en, name, &svc, &status, &e) < 0 ||
	    swarm_service_parse(svc, &sv, &e) < 0 || strcmp(sv.name, name) != 0 ||
	    !select_container(cfg, sv.labels, sv.name, true, NULL, 0))
		goto out; /* not a service this refit manages */
	handled = 1;
	if (all && !rec)
		goto out;
	c = &res->v[res->n++];
	c->name = dup_or(sv.name, &ok);
	c->id = dup_or(sv.id, &ok);
	c->image = dup_or(sv.image, &ok);
	c->kind = "service";
	c->strategy = "swarm";
	c->update_available = -1;
	c->current_digest = dup_or(sv.digest, &ok);
	if (!ok) {
		outcome(c, ENTRY_FAILED, "out of memory");
		goto out;
	}
	prev = json_object_get(svc, "PreviousSpec");
	if (!json_is_object(prev) || !spec_image(prev)) {
		outcome(c, ENTRY_FAILED, "Swarm has no previous spec of this service to roll back to");
		goto out;
	}
	c->latest_digest = dup_or(spec_digest(prev), &ok);
	if (swarm_update_config_parse(sv.labels, &uc, &e) < 0) {
		outcome(c, ENTRY_FAILED, e.msg);
		goto out;
	}
	want = dup_or(spec_image(json_object_get(svc, "Spec")), &ok);
	b = json_string_value(json_object_get(json_object_get(svc, "UpdateStatus"), "StartedAt"));
	before = dup_or(b, &ok);
	jr = ok && want ? record_new("rollback", &sv, svc, sv.digest, c->latest_digest, before) : NULL;
	if (!jr) {
		outcome(c, ENTRY_FAILED, "out of memory");
		goto out;
	}
	if (journal_write(j, jr, &e) < 0) {
		outcome(c, ENTRY_FAILED, e.msg);
		goto out;
	}
	if (post_with_retry(en, cfg, &sv, &svc, want, NULL, &uc, true, &e) < 0) {
		outcome(c, ENTRY_FAILED, e.msg);
		c->err_kind = e.kind;
		record_end(j, jr, ENTRY_FAILED, e.msg);
		goto out;
	}
	if (journal_step(j, jr, "rolling-out", &e) < 0)
		log_warn("%s: %s", c->name, e.msg);
	log_info("%s: Swarm is rolling back to its previous spec (%s)", c->name,
		 c->latest_digest ? c->latest_digest : "no digest");
	st = follow(en, sv.id, before, uc.timeout, NULL, why, sizeof(why));
	c->swap_seconds = mono_seconds() - t0;
	if (st == SWARM_COMPLETED || st == SWARM_ROLLED_BACK) {
		outcome(c, ENTRY_ROLLED_BACK, NULL);
		record_end(j, jr, ENTRY_UPDATED, NULL);
	} else {
		if (st == SWARM_PAUSED && !strstr(why, "removed"))
			snprintf(why, sizeof(why), "Swarm paused the rollback");
		outcome(c, ENTRY_FAILED, why);
		record_end(j, jr, ENTRY_FAILED, why);
	}
	log_info("%s: rollback %s%s%s", c->name, c->status == ENTRY_ROLLED_BACK ? "done" : entry_status_to_string(c->status),
		 why[0] ? ": " : "", why);
out:
	json_decref(jr);
	json_decref(svc);
	swarm_service_free(&sv);
	free(before);
	free(want);
	return handled;
}

bool swarm_record(json_t *rec)
{
	const char *s = jr_str(rec, JR_STRATEGY);

	return s && strcmp(s, "swarm") == 0;
}

int swarm_recover(struct engine *en, struct journal *j, json_t *rec)
{
	const char *id = jr_str(rec, JR_SERVICE_ID);
	const char *kind = jr_str(rec, JR_KIND);
	const char *before = jr_str(rec, JR_SWARM_BEFORE);
	const char *image = jr_str(rec, JR_IMAGE);
	const char *nd = jr_str(rec, JR_NEW_DIGEST);
	const char *step = jr_str(rec, JR_STEP);
	const char *msg = NULL, *cur;
	struct refit_err e = { 0 };
	json_t *svc = NULL;
	long status = 0;
	enum swarm_state st;
	char why[600], *pinned = NULL;
	bool rollback = kind && strcmp(kind, "rollback") == 0;

	json_object_set_new(rec, JR_RECOVERED, json_true());
	if (!id || !image) {
		record_end(j, rec, ENTRY_FAILED, "journal record of a service is incomplete");
		return 0;
	}
	if (service_get(en, id, &svc, &status, &e) < 0) {
		if (status == 0 || (status >= 500 && status != 503))
			return -1; /* the engine (or a proxy before it) is failing: the record stays for the next run */
		if (status == 404) {
			record_end(j, rec, ENTRY_FAILED, "the service was removed");
		} else {
			/* 503 "not a swarm manager" (the node left or was demoted), or another refusal:
			 * nothing here can finish it, and it must not hold back the containers */
			snprintf(why, sizeof(why), "the engine cannot tell how the rollout ended: %.500s", e.msg);
			record_end(j, rec, ENTRY_FAILED, why);
		}
		return 0;
	}
	cur = spec_image(json_object_get(svc, "Spec"));
	if (!rollback && nd && asprintf(&pinned, "%s@%s", image, nd) < 0)
		pinned = NULL;
	st = swarm_update_state(svc, before, &msg);
	if (!rollback && step && strcmp(step, "intent") == 0 && st == SWARM_NONE && (!pinned || !cur || strcmp(cur, pinned) != 0)) {
		record_end(j, rec, ENTRY_FAILED, "interrupted before Swarm was asked: nothing changed");
	} else if (st == SWARM_COMPLETED && !rollback) {
		record_end(j, rec, ENTRY_UPDATED, NULL);
	} else if ((st == SWARM_COMPLETED || st == SWARM_ROLLED_BACK) && rollback) {
		record_end(j, rec, ENTRY_UPDATED, NULL);
	} else if (st == SWARM_ROLLED_BACK) {
		snprintf(why, sizeof(why), "Swarm rolled the update back%s%s", msg ? ": " : "", msg ? msg : "");
		record_end(j, rec, ENTRY_ROLLED_BACK, why);
	} else {
		snprintf(why, sizeof(why), "refit was interrupted while Swarm was rolling out (state %s)",
			 json_string_value(json_object_get(json_object_get(svc, "UpdateStatus"), "State")) ?
				 json_string_value(json_object_get(json_object_get(svc, "UpdateStatus"), "State")) : "unknown");
		record_end(j, rec, ENTRY_FAILED, why);
	}
	free(pinned);
	json_decref(svc);
	return 0;
}
