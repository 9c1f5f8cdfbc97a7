/* Self-update: the handover between refit's container and its replacement (see refit/handover.h). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/engine.h"
#include "refit/fsutil.h"
#include "refit/handover.h"
#include "refit/hold.h"
#include "refit/journal-record.h"
#include "refit/journal.h"
#include "refit/log.h"
#include "refit/update.h"

#define MOUNTINFO_MAX (1u << 20)
#define STANDBY_LOCK_TRY_S 2     /* the replacement asks for the lock this often */
#define TAKEOVER_LOCK_WAIT_S 30  /* the old side's wait for the lock once its own wait ran out */

static atomic_bool done;
static atomic_bool allowed;

bool handover_done(void)
{
	return atomic_load(&done);
}

void handover_set_done(bool d)
{
	atomic_store(&done, d);
	if (d)
		kill(getpid(), SIGUSR2); /* the daemon's main thread waits for the takeover */
}

void handover_allow(void)
{
	atomic_store(&allowed, true);
}

bool handover_allowed(void)
{
	return atomic_load(&allowed);
}

static bool hex64(const char *p, size_t n)
{
	return n == 64 && strspn(p, "0123456789abcdef") >= 64;
}

int handover_id_from_mountinfo(const char *buf, size_t len, char out[65])
{
	const char *line = buf, *end = buf + len;

	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line)), *stop = nl ? nl : end;
		const char *f[5] = { 0 }, *p = line;
		size_t fl[5] = { 0 };
		int nf = 0;

		/* ID PARENT MAJ:MIN ROOT MOUNT-POINT ...: the root and the mount point */
		while (p < stop && nf < 5) {
			const char *sp = memchr(p, ' ', (size_t)(stop - p));

			f[nf] = p;
			fl[nf] = (size_t)((sp ? sp : stop) - p);
			nf++;
			p = sp ? sp + 1 : stop;
		}
		if (nf == 5 && fl[4] == 13 && memcmp(f[4], "/etc/hostname", 13) == 0) {
			/* ROOT: .../containers/ID/hostname (Docker) or .../ID/userdata/hostname (Podman) */
			const char *r = f[3], *rend = f[3] + fl[3], *last = NULL;

			for (const char *c = r; c < rend; c++) {
				if (*c != '/')
					continue;
				const char *seg = c + 1, *next = memchr(seg, '/', (size_t)(rend - seg));
				size_t n = (size_t)((next ? next : rend) - seg);

				if (n == 64 && hex64(seg, n))
					last = seg;
			}
			if (last) {
				memcpy(out, last, 64);
				out[64] = '\0';
				return 0;
			}
		}
		line = nl ? nl + 1 : end;
	}
	return -1;
}

static char self_id[65];
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static void self_find(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return;
	buf = malloc(MOUNTINFO_MAX);
	if (buf)
		len = fread(buf, 1, MOUNTINFO_MAX, f);
	fclose(f);
	if (buf && handover_id_from_mountinfo(buf, len, self_id) < 0)
		self_id[0] = '\0';
	free(buf);
}

const char *handover_self_id(void)
{
	pthread_once(&self_once, self_find);
	return self_id[0] ? self_id : NULL;
}

bool handover_is_self(const char *id)
{
	const char *me = handover_self_id();

	return me && id && strcmp(me, id) == 0;
}

json_t *handover_parse(const char *buf, size_t len)
{
	json_t *h = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	const char *from = json_string_value(json_object_get(h, "from")), *to = json_string_value(json_object_get(h, "to"));
	const char *name = json_string_value(json_object_get(h, "name"));
	const char *image = json_string_value(json_object_get(h, "image"));
	const char *digest = json_string_value(json_object_get(h, "digest"));

	if (!json_is_object(h) || !from || !hex64(from, strlen(from)) || !to || !hex64(to, strlen(to)) ||
	    strcmp(from, to) == 0 || !name || !container_name_valid(name) || strlen(name) > 200 || !image ||
	    strlen(image) > 512 || !digest || strlen(digest) > 80) {
		json_decref(h);
		return NULL;
	}
	return h;
}

json_t *handover_load(const char *state_dir)
{
	char path[4200], *buf = NULL;
	size_t len = 0;
	struct refit_err e = { 0 };
	json_t *h;

	if (path_fmt(path, sizeof(path), "%s/%s", state_dir, HANDOVER_FILE) < 0 || access(path, F_OK) != 0 ||
	    fs_read_file(path, HANDOVER_MAX_FILE, &buf, &len, &e) < 0)
		return NULL;
	h = handover_parse(buf, len);
	if (!h)
		log_warn("%s: not a handover refit wrote; ignored", path);
	free(buf);
	return h;
}

int handover_store(const char *state_dir, json_t *h, struct refit_err *e)
{
	char path[4200], *text;
	int rc;

	if (!h) {
		for (int i = 0; i < 2; i++)
			if (path_fmt(path, sizeof(path), "%s/%s", state_dir, i ? HANDOVER_READY : HANDOVER_FILE) == 0)
				unlink(path);
		fs_fsync_dir(state_dir);
		return 0;
	}
	if (!(text = json_dumps(h, JSON_COMPACT)))
		return err_set(e, ERR_FAILED, "out of memory");
	rc = fs_write_atomic(state_dir, HANDOVER_FILE, text, e);
	free(text);
	return rc;
}

static const char *hget(json_t *h, const char *k)
{
	return json_string_value(json_object_get(h, k));
}

/* Sleep MS milliseconds. */
static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Remove container ID (forced; its anonymous volumes are the old one's, mounted by name, so kept). */
static int remove_container(struct engine *en, const char *id, struct refit_err *e)
{
	return engine_container_remove(en, id, false, e);
}

/* Set container ID's restart policy to "no": its exit is then its end. */
static void no_restart(struct engine *en, const char *id)
{
	char path[160];
	struct refit_err e = { 0 };
	json_t *body = json_pack("{s:{s:s}}", "RestartPolicy", "Name", "no");

	snprintf(path, sizeof(path), "/containers/%.64s/update", id);
	if (!body || engine_call(en, "POST", path, body, 0, NULL, NULL, &e) < 0)
		log_warn("self-update: cannot clear this container's restart policy: %s", e.msg);
	json_decref(body);
}

/* The old side's undo once its record was finished: itself back under its name, the replacement gone, held. */
static void undo_recorded(const struct refit_config *cfg, struct engine *en, json_t *h, const char *why)
{
	const char *me = hget(h, "from"), *to = hget(h, "to"), *name = hget(h, "name");
	char path[512], id[17], now[ISO_TIME_LEN], *esc;
	struct refit_err e = { 0 };
	json_t *rec;

	log_warn("self-update: %s: the replacement %.12s is removed and this refit goes on", why, to);
	if (remove_container(en, to, &e) < 0)
		log_error("self-update: removing the replacement %.12s: %s", to, e.msg);
	esc = engine_escape(en, name);
	snprintf(path, sizeof(path), "/containers/%.64s/rename?name=%s", me, esc ? esc : "");
	free(esc);
	if (engine_call(en, "POST", path, NULL, 0, NULL, NULL, &e) < 0)
		log_error("self-update: renaming this container back to %s: %s", name, e.msg);
	if (*hget(h, "digest") && hold_add(cfg->state_dir, name, hget(h, "image"), hget(h, "digest"), why, &e) < 0)
		log_error("self-update: %s", e.msg);
	journal_new_id(id);
	iso_now(now);
	/* in the history as a rollback that succeeded: the handover's update is undone, nothing to roll back */
	rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", JR_ID, id, JR_KIND, "rollback",
			JR_CONTAINER, name, JR_STRATEGY, "handover", JR_OLD_ID, to, JR_NEW_ID, me, JR_IMAGE,
			hget(h, "image"), JR_STARTED, now, JR_FINISHED, now, JR_OUTCOME,
			entry_status_to_string(ENTRY_UPDATED), JR_ERROR, why);
	if (!rec || journal_append(cfg->state_dir, rec, &e) < 0)
		log_error("self-update: history: %s", rec ? e.msg : "out of memory");
	json_decref(rec);
	handover_store(cfg->state_dir, NULL, &e);
}

int handover_wait_takeover(const struct refit_config *cfg, long timeout_s)
{
	const char *me = handover_self_id();
	struct refit_err e = { 0 };
	struct journal *j = NULL;
	struct engine *en = NULL;
	json_t *h = NULL;
	char why[200];
	int rc = 0;

	if (!me)
		return 1;
	log_info("self-update: waiting up to %ld s for the replacement to take over", timeout_s);
	for (long waited = 0; waited < timeout_s * 4; waited++) {
		h = handover_load(cfg->state_dir);
		if (!h || strcmp(hget(h, "from"), me) != 0)
			goto taken;
		json_decref(h);
		h = NULL;
		pause_ms(250);
	}
	if (journal_open(&j, cfg->state_dir, TAKEOVER_LOCK_WAIT_S, &e) < 0) {
		log_warn("self-update: %s: the replacement holds the lock, taking over", e.msg);
		return 0;
	}
	if (engine_open(&en, cfg->docker_host, &e) < 0) {
		log_error("self-update: %s", e.msg);
		journal_close(j);
		return 1;
	}
	if (update_recover(en, j, cfg) > 0) {
		/* the replacement never saw its record finished: recovery put this container back */
		rc = 1;
		goto out;
	}
	h = handover_load(cfg->state_dir);
	if (!h || strcmp(hget(h, "from"), me) != 0) {
		engine_close(en);
		journal_close(j);
		goto taken;
	}
	snprintf(why, sizeof(why), "the replacement did not take over within %ld s", timeout_s);
	undo_recorded(cfg, en, h, why);
	rc = 1;
out:
	json_decref(h);
	engine_close(en);
	journal_close(j);
	return rc;
taken:
	json_decref(h);
	/* The replacement removes this container; should it not, this one ends without coming back. */
	log_info("self-update: the replacement took over");
	if (engine_open(&en, cfg->docker_host, &e) == 0) {
		no_restart(en, me);
		engine_close(en);
	}
	return 0;
}

/* The replacement's side: ready, then the lock; then the old container goes. */
static int standby(const struct refit_config *cfg, json_t *h)
{
	const char *me = hget(h, "to"), *from = hget(h, "from");
	struct refit_err e = { 0 };
	struct engine *en = NULL;
	struct journal *j = NULL;

	/* For tests only: the replacement waits this long before it is ready (a window to kill either side in). */
	if (getenv("REFIT_TEST_STANDBY_DELAY"))
		sleep((unsigned)strtoul(getenv("REFIT_TEST_STANDBY_DELAY"), NULL, 10) % 600);
	while (engine_open(&en, cfg->docker_host, &e) < 0) {
		log_warn("self-update: %s; retrying", e.msg);
		sleep(STANDBY_LOCK_TRY_S);
	}
	if (fs_write_atomic(cfg->state_dir, HANDOVER_READY, me, &e) < 0) {
		log_error("self-update: %s", e.msg);
		engine_close(en);
		return -1;
	}
	log_info("refit %.12s: ready, standing by to take over from %.12s", me, from);
	while (journal_open(&j, cfg->state_dir, STANDBY_LOCK_TRY_S, &e) < 0) {
		json_t *now = handover_load(cfg->state_dir);
		bool mine = now && strcmp(hget(now, "to"), me) == 0;

		json_decref(now);
		if (!mine) {
			log_error("self-update: the handover was undone; this replacement ends");
			engine_close(en);
			exit(1);
		}
	}
	/* A record left by an old side cut short is finished here: this replacement is ready. */
	if (update_recover(en, j, cfg) < 0)
		log_error("self-update: an interrupted operation could not be finished; see the log");
	if (remove_container(en, from, &e) < 0)
		log_error("self-update: removing the old container %.12s: %s", from, e.msg);
	else
		log_info("self-update: took over from %.12s", from);
	handover_store(cfg->state_dir, NULL, &e);
	journal_close(j);
	engine_close(en);
	return 1;
}

int handover_at_start(const struct refit_config *cfg)
{
	const char *me = handover_self_id();
	json_t *h = me ? handover_load(cfg->state_dir) : NULL;
	int rc = 0;

	if (h && strcmp(hget(h, "to"), me) == 0)
		rc = standby(cfg, h);
	else if (h && strcmp(hget(h, "from"), me) == 0)
		rc = handover_wait_takeover(cfg, cfg->health_timeout * 2 + 30) == 0 ? 2 : 1;
	json_decref(h);
	return rc;
}
