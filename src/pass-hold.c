/* Held digests and first-seen times, kept in state_dir between passes. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "refit/api-request.h"
#include "refit/base.h"
#include "refit/fsutil.h"
#include "refit/hold.h"
#include "refit/imageref.h"
#include "refit/log.h"

#define TIME_MIN 946684800L    /* 2000-01-01: anything before is not a time refit wrote */
#define TIME_MAX 32503680000L  /* 3000-01-01 */

/* A registry digest as refit compares them: sha256 and 64 hex digits. */
static bool digest_valid(const char *d)
{
	return d && strlen(d) == 71 && strncmp(d, "sha256:", 7) == 0 && strspn(d + 7, "0123456789abcdef") == 64;
}

/* An image reference refit could have written. */
static bool image_valid(const char *s)
{
	struct imageref ref = { 0 };
	bool ok = s && strlen(s) <= IMAGEREF_MAX && imageref_parse(s, &ref, NULL) == 0;

	imageref_free(&ref);
	return ok;
}

static bool time_valid(json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= TIME_MIN && json_integer_value(v) <= TIME_MAX;
}

/* "IMAGE@DIGEST": the key of a first-seen time. */
static bool seen_key_valid(const char *k)
{
	const char *at = strrchr(k, '@');
	char img[IMAGEREF_MAX + 1];

	if (!at || (size_t)(at - k) > IMAGEREF_MAX || !digest_valid(at + 1))
		return false;
	snprintf(img, sizeof(img), "%.*s", (int)(at - k), k);
	return image_valid(img);
}

json_t *hold_parse(const char *buf, size_t len)
{
	json_t *in = len <= HOLD_MAX_FILE ? json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	json_t *holds = json_object(), *seen = json_object(), *v;
	const char *k;

	json_object_foreach(json_object_get(in, "holds"), k, v) {
		const char *image = json_string_value(json_object_get(v, "image"));
		const char *digest = json_string_value(json_object_get(v, "digest"));
		const char *reason = json_string_value(json_object_get(v, "reason"));

		if (json_object_size(holds) >= HOLD_MAX || !container_name_valid(k) || !image_valid(image) ||
		    !digest_valid(digest) || !time_valid(json_object_get(v, "since")) ||
		    (reason && strlen(reason) > HOLD_MAX_REASON))
			continue;
		json_object_set_new(holds, k, json_pack("{s:s, s:s, s:I, s:s?}", "image", image, "digest", digest, "since",
							json_integer_value(json_object_get(v, "since")), "reason", reason));
	}
	json_object_foreach(json_object_get(in, "seen"), k, v) {
		if (json_object_size(seen) >= SEEN_MAX || !seen_key_valid(k) || !time_valid(v))
			continue;
		json_object_set(seen, k, v);
	}
	json_decref(in);
	return json_pack("{s:o, s:o}", "holds", holds, "seen", seen);
}

json_t *hold_load(const char *state_dir)
{
	char path[4300], *buf = NULL;
	struct refit_err e = { 0 };
	size_t len = 0;
	json_t *doc;

	if (path_fmt(path, sizeof(path), "%s/%s", state_dir, HOLD_FILE) < 0 ||
	    fs_read_file(path, HOLD_MAX_FILE, &buf, &len, &e) < 0) {
		if (errno != ENOENT && e.msg[0])
			log_debug("%s", e.msg);
		return hold_parse("", 0);
	}
	doc = hold_parse(buf, len);
	free(buf);
	return doc;
}

/* Drop the oldest members of OBJ (TIME_OF reads a member's time) until it has at most MAX. */
static void keep_newest(json_t *obj, size_t max, json_int_t (*time_of)(json_t *))
{
	while (json_object_size(obj) > max) {
		const char *k, *oldest = NULL;
		json_int_t t = 0;
		json_t *v;

		json_object_foreach(obj, k, v) {
			if (!oldest || time_of(v) < t) {
				oldest = k;
				t = time_of(v);
			}
		}
		json_object_del(obj, oldest);
	}
}

static json_int_t hold_time(json_t *v)
{
	return json_integer_value(json_object_get(v, "since"));
}

static json_int_t seen_time(json_t *v)
{
	return json_integer_value(v);
}

/*
 * Change STATE_DIR's document with FN (it returns 1 when it changed
 * something, 0 when not, -1 with E), under the file lock (other refit
 * processes: a release from the command line) and a mutex (this one's
 * threads: swaps finish concurrently).
 */
static int hold_update(const char *state_dir, int (*fn)(json_t *doc, void *arg, struct refit_err *e), void *arg,
		       struct refit_err *e)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	char path[4300];
	json_t *doc;
	char *text;
	int fd, rc;

	if (fs_mkdirs(state_dir) < 0)
		return err_set(e, ERR_FAILED, "state_dir %s: cannot create: %s", state_dir, strerror(errno));
	if (path_fmt(path, sizeof(path), "%s/digests.lock", state_dir) < 0)
		return err_set(e, ERR_FAILED, "state_dir %s: path too long", state_dir);
	pthread_mutex_lock(&lock);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		rc = err_set(e, ERR_FAILED, "%s: %s", path, strerror(errno));
		goto out;
	}
	doc = hold_load(state_dir);
	rc = fn(doc, arg, e);
	if (rc > 0) {
		keep_newest(json_object_get(doc, "holds"), HOLD_MAX, hold_time);
		keep_newest(json_object_get(doc, "seen"), SEEN_MAX, seen_time);
		text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
		rc = text ? fs_write_atomic(state_dir, HOLD_FILE, text, e) : err_set(e, ERR_FAILED, "out of memory");
		free(text);
	}
	json_decref(doc);
out:
	if (fd >= 0)
		close(fd); /* releases the lock */
	pthread_mutex_unlock(&lock);
	return rc < 0 ? -1 : 0;
}

struct add_arg {
	const char *name, *image, *digest, *reason;
};

static int do_add(json_t *doc, void *arg, struct refit_err *e)
{
	const struct add_arg *a = arg;
	json_t *h = json_pack("{s:s, s:s, s:I, s:s?}", "image", a->image, "digest", a->digest, "since",
			      (json_int_t)time(NULL), "reason", a->reason);

	if (!h || json_object_set_new(json_object_get(doc, "holds"), a->name, h) < 0)
		return err_set(e, ERR_FAILED, "out of memory");
	return 1;
}

int hold_add(const char *state_dir, const char *name, const char *image, const char *digest, const char *reason,
	     struct refit_err *e)
{
	char cut[HOLD_MAX_REASON + 1];
	struct add_arg a = { name, image, digest, NULL };

	if (!container_name_valid(name) || !image_valid(image) || !digest_valid(digest))
		return err_set(e, ERR_FAILED, "hold: not a container name, reference and sha256 digest");
	if (reason) {
		snprintf(cut, sizeof(cut), "%s", reason);
		a.reason = cut;
	}
	return hold_update(state_dir, do_add, &a, e);
}

struct release_arg {
	char *const *names;
	size_t n;
	bool all;
	json_t *released;
};

static int do_release(json_t *doc, void *arg, struct refit_err *e)
{
	struct release_arg *a = arg;
	json_t *holds = json_object_get(doc, "holds"), *v;
	const char *k;
	void *tmp;

	json_object_foreach_safe(holds, tmp, k, v) {
		bool hit = a->all;

		for (size_t i = 0; i < a->n && !hit; i++)
			hit = strcmp(a->names[i], k) == 0;
		if (!hit)
			continue;
		json_array_append_new(a->released, json_string(k));
		json_object_del(holds, k);
	}
	return json_array_size(a->released) > 0;
}

int hold_release(const char *state_dir, char *const *names, size_t nnames, bool all, json_t **released,
		 struct refit_err *e)
{
	struct release_arg a = { names, nnames, all, json_array() };
	int rc = hold_update(state_dir, do_release, &a, e);

	if (released && rc == 0)
		*released = a.released;
	else
		json_decref(a.released);
	return rc;
}

int hold_release_params(const char *state_dir, json_t *params, json_t **released, struct refit_err *e)
{
	json_t *names = json_object_get(params, "containers");
	char *v[API_MAX_NAMES];
	size_t n = 0;

	for (size_t i = 0; i < json_array_size(names) && n < API_MAX_NAMES; i++)
		v[n++] = (char *)json_string_value(json_array_get(names, i));
	return hold_release(state_dir, v, n, json_is_true(json_object_get(params, "all")), released, e);
}

/* The key of C's digest in "seen", into BUF. */
static void seen_key(const struct check_entry *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s@%s", check_entry_image(c), c->latest_digest);
}

/* Does the hold H (of C's container) hold the digest C would move to? */
static bool holds_it(json_t *h, const struct check_entry *c)
{
	const char *image = json_string_value(json_object_get(h, "image"));
	const char *digest = json_string_value(json_object_get(h, "digest"));

	return h && c->latest_digest && strcmp(digest, c->latest_digest) == 0 && strcmp(image, check_entry_image(c)) == 0;
}

struct seen_arg {
	json_t *add; /* key -> time */
};

static int do_seen(json_t *doc, void *arg, struct refit_err *e)
{
	struct seen_arg *a = arg;
	json_t *seen = json_object_get(doc, "seen"), *v;
	const char *k;
	int changed = 0;

	json_object_foreach(a->add, k, v) {
		if (!json_object_get(seen, k)) { /* another process may have seen it first */
			json_object_set(seen, k, v);
			changed = 1;
		}
	}
	return changed;
}

void hold_check(const struct refit_config *cfg, struct check_result *res, bool force, time_t now)
{
	json_t *doc = hold_load(cfg->state_dir), *holds = json_object_get(doc, "holds");
	json_t *seen = json_object_get(doc, "seen");
	struct seen_arg sa = { json_object() };
	struct refit_err e = { 0 };

	for (size_t i = 0; i < res->n; i++) {
		struct check_entry *c = &res->v[i];
		json_t *h = json_object_get(holds, c->name), *t;
		char key[IMAGEREF_MAX + 100], msg[700], when[ISO_TIME_LEN], then[ISO_TIME_LEN];

		if (c->status != ENTRY_UPDATE_AVAILABLE || !c->latest_digest || force)
			continue;
		if (holds_it(h, c)) {
			const char *reason = json_string_value(json_object_get(h, "reason"));

			c->status = ENTRY_HELD;
			c->held_since = (time_t)json_integer_value(json_object_get(h, "since"));
			snprintf(msg, sizeof(msg), "digest held since %s%s%s (refit release %s, or update --force, tries it again)",
				 iso_time(c->held_since, when), reason ? ": " : "", reason ? reason : "", c->name);
			free(c->error);
			c->error = strdup(msg);
			continue;
		}
		if (c->cooldown <= 0 || c->no_pull)
			continue;
		seen_key(c, key, sizeof(key));
		t = json_object_get(seen, key);
		if (!t)
			t = json_object_get(sa.add, key);
		if (!t) {
			json_object_set_new(sa.add, key, json_integer((json_int_t)now));
			t = json_object_get(sa.add, key);
		}
		if (json_integer_value(t) + c->cooldown <= now)
			continue;
		c->status = ENTRY_COOLDOWN;
		c->eligible_at = (time_t)json_integer_value(t) + c->cooldown;
		snprintf(msg, sizeof(msg), "new digest first seen %s; eligible at %s", iso_time((time_t)json_integer_value(t), when),
			 iso_time(c->eligible_at, then));
		free(c->error);
		c->error = strdup(msg);
	}
	if (json_object_size(sa.add) && hold_update(cfg->state_dir, do_seen, &sa, &e) < 0)
		log_debug("cooldown: first-seen times not recorded: %s", e.msg);
	json_decref(sa.add);
	json_decref(doc);
}

struct pass_arg {
	struct check_result *res;
};

static int do_pass_done(json_t *doc, void *arg, struct refit_err *e)
{
	struct check_result *res = ((struct pass_arg *)arg)->res;
	json_t *holds = json_object_get(doc, "holds"), *seen = json_object_get(doc, "seen");
	int changed = 0;

	for (size_t i = 0; i < res->n; i++) {
		struct check_entry *c = &res->v[i];
		json_t *h = json_object_get(holds, c->name);
		const char *k;
		json_t *v;
		void *tmp;
		char prefix[IMAGEREF_MAX + 2], key[IMAGEREF_MAX + 100];

		if (h && c->status != ENTRY_HELD && !c->held && c->latest_digest &&
		    (!holds_it(h, c) || c->status == ENTRY_UPDATED)) {
			log_info("%s: hold on %.19s released: %s", c->name, json_string_value(json_object_get(h, "digest")),
				 c->status == ENTRY_UPDATED ? "it is on that digest now" : "the registry serves another digest");
			json_object_del(holds, c->name);
			changed = 1;
		}
		/* First-seen times of the digests its reference no longer serves are dropped. */
		if (!c->latest_digest)
			continue;
		snprintf(prefix, sizeof(prefix), "%s@", check_entry_image(c));
		seen_key(c, key, sizeof(key));
		json_object_foreach_safe(seen, tmp, k, v) {
			if (strncmp(k, prefix, strlen(prefix)) == 0 && strcmp(k, key) != 0 && !strchr(k + strlen(prefix), '@')) {
				json_object_del(seen, k);
				changed = 1;
			}
		}
	}
	return changed;
}

void hold_pass_done(const struct refit_config *cfg, struct check_result *res)
{
	struct pass_arg a = { res };
	struct refit_err e = { 0 };

	for (size_t i = 0; i < res->n; i++)
		if (res->v[i].status == ENTRY_ROLLED_BACK && !res->v[i].held)
			hold_entry(cfg, &res->v[i], "its update was rolled back");
	if (hold_update(cfg->state_dir, do_pass_done, &a, &e) < 0)
		log_warn("holds: %s", e.msg);
}

void hold_entry(const struct refit_config *cfg, struct check_entry *c, const char *why)
{
	struct refit_err e = { 0 };
	char msg[1200];

	if (!c->latest_digest || c->held)
		return;
	if (hold_add(cfg->state_dir, c->name, check_entry_image(c), c->latest_digest, why, &e) < 0) {
		log_error("%s: digest %.19s not held: %s", c->name, c->latest_digest, e.msg);
		return;
	}
	c->held = true;
	log_warn("%s: digest %.19s held: %s (refit release %s tries it again)", c->name, c->latest_digest, why, c->name);
	snprintf(msg, sizeof(msg), "%s%sdigest %.19s held until the registry serves another (or refit release %s)",
		 c->error ? c->error : "", c->error ? "; " : "", c->latest_digest, c->name);
	free(c->error);
	c->error = strdup(msg);
}
