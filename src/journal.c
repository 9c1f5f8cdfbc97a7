/* Journal: one atomically replaced file per operation in flight, an append-only history. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "refit/events.h"
#include "refit/fsutil.h"
#include "refit/journal.h"
#include "refit/journal-record.h"

struct journal {
	char *dir;     /* state_dir */
	char *opsdir;  /* state_dir/ops */
	int lock_fd;
	pthread_mutex_t history_lock; /* swaps finish from several threads */
	/* The directory fsync of ops/, shared by the swaps of concurrent threads (ops_sync). */
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_cond;
	unsigned long changes; /* renames and unlinks made in ops/ so far */
	unsigned long synced;  /* how many of them an fsync of ops/ has made durable */
	bool syncing;
};

/*
 * Make the change this thread just made in ops/ (a rename, an unlink)
 * durable. An fsync of the directory that begins after a change covers it,
 * so a thread whose change an fsync under way may have missed waits for
 * that one to end and starts the next, which covers every change made
 * meanwhile: under concurrent swaps, one fsync for several steps, none
 * skipped.
 */
static int ops_sync(struct journal *j)
{
	unsigned long mine, upto;
	int rc = 0, saved = 0;

	pthread_mutex_lock(&j->sync_lock);
	mine = ++j->changes;
	while (j->synced < mine && rc == 0) {
		if (j->syncing) {
			pthread_cond_wait(&j->sync_cond, &j->sync_lock);
			continue;
		}
		j->syncing = true;
		upto = j->changes;
		pthread_mutex_unlock(&j->sync_lock);
		rc = fs_fsync_dir(j->opsdir);
		saved = errno;
		pthread_mutex_lock(&j->sync_lock);
		j->syncing = false;
		if (rc == 0 && upto > j->synced)
			j->synced = upto;
		pthread_cond_broadcast(&j->sync_cond);
	}
	pthread_mutex_unlock(&j->sync_lock);
	errno = saved;
	return rc;
}

/*
 * Remove the temporary files of DIR (NAME.json.tmp): what a writer killed
 * between its write and its rename left. Its record is whole under its own
 * name (or, cut at its first write, absent: then nothing was changed).
 */
static void drop_torn_writes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int dropped = 0;

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0 && unlinkat(dirfd(d), de->d_name, 0) == 0)
			dropped++;
	}
	closedir(d);
	if (dropped)
		fs_fsync_dir(dir);
}

int journal_open(struct journal **ret, const char *state_dir, int wait_seconds, struct refit_err *e)
{
	struct journal *j = calloc(1, sizeof(*j));
	char path[4200];

	if (!j)
		return err_set(e, ERR_FAILED, "out of memory");
	j->lock_fd = -1;
	pthread_mutex_init(&j->history_lock, NULL);
	pthread_mutex_init(&j->sync_lock, NULL);
	pthread_cond_init(&j->sync_cond, NULL);
	if (asprintf(&j->dir, "%s", state_dir) < 0 || asprintf(&j->opsdir, "%s/ops", state_dir) < 0) {
		j->dir = j->opsdir = NULL;
		journal_close(j);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	if (fs_mkdirs(j->opsdir) < 0) {
		err_set(e, ERR_FAILED, "state_dir %s: cannot create: %s", state_dir, strerror(errno));
		journal_close(j);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/lock", state_dir);
	j->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->lock_fd < 0) {
		err_set(e, ERR_FAILED, "state_dir %s: cannot write: %s", state_dir, strerror(errno));
		journal_close(j);
		return -1;
	}
	for (int waited = 0; flock(j->lock_fd, LOCK_EX | LOCK_NB) < 0; waited++) {
		if (errno != EWOULDBLOCK || waited >= wait_seconds * 10) {
			err_set(e, ERR_FAILED, "state_dir %s is in use by another refit (lock %s)", state_dir, path);
			journal_close(j);
			return -1;
		}
		usleep(100000);
	}
	drop_torn_writes(j->opsdir); /* under the lock: no writer of this journal is running */
	*ret = j;
	return 0;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->lock_fd >= 0)
		close(j->lock_fd); /* releases the lock */
	free(j->dir);
	free(j->opsdir);
	pthread_mutex_destroy(&j->history_lock);
	pthread_mutex_destroy(&j->sync_lock);
	pthread_cond_destroy(&j->sync_cond);
	free(j);
}

void journal_new_id(char buf[17])
{
	unsigned char r[8];

	if (RAND_bytes(r, sizeof(r)) != 1) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		memcpy(r, &ts.tv_nsec, sizeof(r) < sizeof(ts.tv_nsec) ? sizeof(r) : sizeof(ts.tv_nsec));
		r[7] ^= (unsigned char)getpid();
	}
	for (int i = 0; i < 8; i++)
		snprintf(buf + 2 * i, 3, "%02x", r[i]);
}

/* The record's id, checked to be a plain file name. */
static const char *rec_id(json_t *rec)
{
	const char *id = jr_str(rec, JR_ID);

	if (!id || !*id || strlen(id) > 64 || strspn(id, "0123456789abcdef") != strlen(id))
		return NULL;
	return id;
}

int journal_write(struct journal *j, json_t *rec, struct refit_err *e)
{
	const char *id = rec_id(rec);
	char name[80];
	char *text;
	int rc;

	if (!id)
		return err_set(e, ERR_FAILED, "journal: record without a valid id");
	text = json_dumps(rec, JSON_COMPACT);
	if (!text)
		return err_set(e, ERR_FAILED, "out of memory");
	snprintf(name, sizeof(name), "%s.json", id);
	rc = fs_replace(j->opsdir, name, text, e);
	free(text);
	if (rc == 0 && ops_sync(j) < 0)
		rc = err_set(e, ERR_FAILED, "%s: %s", j->opsdir, strerror(errno));
	if (rc < 0)
		err_prefix(e, "journal ");
	return rc;
}

/* Keep the history under HISTORY_MAX_BYTES by dropping its older half. */
static void history_trim(const char *path)
{
	FILE *f = fopen(path, "re");
	char tmp[4400], *buf = NULL;
	struct stat st;
	size_t n;
	int fd;

	if (!f)
		return;
	if (fstat(fileno(f), &st) < 0 || st.st_size < (off_t)HISTORY_MAX_BYTES) {
		fclose(f);
		return;
	}
	buf = malloc((size_t)st.st_size + 1);
	n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
	fclose(f);
	if (!buf)
		return;
	buf[n] = '\0';
	{
		char *keep = buf + n / 2, *nl = strchr(keep, '\n');

		keep = nl ? nl + 1 : buf + n;
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0 && fs_write_all(fd, keep, (size_t)(buf + n - keep)) == 0 && fsync(fd) == 0) {
			close(fd);
			rename(tmp, path);
		} else if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
	}
	free(buf);
}

/*
 * Take STATE_DIR/history.lock: records also come from model passes, which do
 * not hold the state directory's lock; -1 when it cannot be opened (then the
 * in-process mutex alone orders the appends).
 */
static int history_flock(const char *state_dir)
{
	char path[4300];
	int fd;

	snprintf(path, sizeof(path), "%s/history.lock", state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Append TEXT and a newline to STATE_DIR's history (fsync'd), then trim it. */
static int history_append(const char *state_dir, const char *text, struct refit_err *e)
{
	char path[4300];
	int fd, saved, lock = history_flock(state_dir);

	snprintf(path, sizeof(path), "%s/history.jsonl", state_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || fs_write_all(fd, text, strlen(text)) < 0 || fs_write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
		saved = errno;
		if (fd >= 0)
			close(fd);
		if (lock >= 0)
			close(lock);
		return err_set(e, ERR_FAILED, "history %s: %s", path, strerror(saved));
	}
	close(fd);
	history_trim(path);
	if (lock >= 0)
		close(lock);
	return 0;
}

int journal_append(const char *state_dir, json_t *rec, struct refit_err *e)
{
	static pthread_mutex_t append_lock = PTHREAD_MUTEX_INITIALIZER;
	char *text;
	int rc;

	if (fs_mkdirs(state_dir) < 0)
		return err_set(e, ERR_FAILED, "state_dir %s: cannot create: %s", state_dir, strerror(errno));
	text = json_dumps(rec, JSON_COMPACT);
	if (!text)
		return err_set(e, ERR_FAILED, "out of memory");
	pthread_mutex_lock(&append_lock);
	rc = history_append(state_dir, text, e);
	pthread_mutex_unlock(&append_lock);
	free(text);
	return rc;
}

int journal_finish(struct journal *j, json_t *rec, struct refit_err *e)
{
	const char *id = rec_id(rec);
	char path[4300], *text;
	int rc;

	if (!id)
		return err_set(e, ERR_FAILED, "journal: record without a valid id");
	text = json_dumps(rec, JSON_COMPACT);
	if (!text)
		return err_set(e, ERR_FAILED, "out of memory");
	pthread_mutex_lock(&j->history_lock);
	rc = history_append(j->dir, text, e);
	pthread_mutex_unlock(&j->history_lock);
	free(text);
	if (rc < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%s.json", j->opsdir, id);
	if (unlink(path) < 0 && errno != ENOENT)
		return err_set(e, ERR_FAILED, "journal %s: %s", path, strerror(errno));
	ops_sync(j);
	events_finished(rec);
	return 0;
}

json_t *journal_pending(struct journal *j)
{
	json_t *arr = json_array();
	DIR *d = opendir(j->opsdir);
	struct dirent *de;

	if (!arr || !d) {
		if (d)
			closedir(d);
		return arr;
	}
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char path[4400];
		json_t *rec;

		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", j->opsdir, de->d_name);
		rec = json_load_file(path, 0, NULL);
		if (rec && rec_id(rec))
			json_array_append_new(arr, rec);
		else
			json_decref(rec); /* a torn temp file never gets a .json name */
	}
	closedir(d);
	return arr;
}

json_t *journal_history(const char *state_dir, const char *name)
{
	json_t *arr = json_array();
	char path[4300], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/history.jsonl", state_dir);
	f = fopen(path, "re");
	if (!f || !arr) {
		if (f)
			fclose(f);
		return arr;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		json_t *rec = (size_t)n <= JOURNAL_MAX_RECORD ? json_loadb(line, (size_t)n, 0, NULL) : NULL;
		const char *model = jr_str(rec, JR_MODEL);

		/* An alias migration belongs to the old name and to the new one; a model pull to the model. */
		if (rec && (!name || jr_concerns(rec, name) ||
			    (model && !jr_str(rec, JR_CONTAINER) && strcmp(model, name) == 0)))
			json_array_append_new(arr, rec);
		else
			json_decref(rec);
	}
	free(line);
	fclose(f);
	return arr;
}

int journal_step(struct journal *j, json_t *rec, const char *step, struct refit_err *e)
{
	const char *crash = getenv("REFIT_TEST_CRASH_AT");
	const char *target = jr_str(rec, JR_TARGET);
	bool service = target && strcmp(target, "service") == 0;

	json_object_set_new(rec, JR_STEP, json_string(step));
	if (journal_write(j, rec, e) < 0)
		return -1;
	events_step(rec, step);
	if (crash && strchr(crash, ':')) { /* KIND:STEP: only a record of that kind ("follow:starting") */
		const char *kind = jr_str(rec, JR_KIND), *colon = strchr(crash, ':');

		if (kind && strlen(kind) == (size_t)(colon - crash) && strncmp(kind, crash, strlen(kind)) == 0 &&
		    strcmp(colon + 1, step) == 0)
			raise(SIGKILL);
	} else if (crash && strncmp(crash, "swarm-", service ? 6 : 0) == 0 && strcmp(crash + (service ? 6 : 0), step) == 0) {
		raise(SIGKILL);
	}
	return 0;
}

json_t *journal_public(json_t *rec)
{
	json_t *o = json_deep_copy(rec);
	json_t *old_image = json_object_get(json_object_get(json_object_get(rec, JR_OLD_INSPECT), "Config"), "Image");

	if (json_is_string(old_image) && !json_object_get(o, JR_OLD_IMAGE))
		json_object_set(o, JR_OLD_IMAGE, old_image); /* the reference it left: differs from "image" after a tag move */
	json_object_del(o, JR_OLD_INSPECT);
	json_object_del(o, JR_OLD_IMAGE_INSPECT);
	json_object_del(o, JR_SPEC_INSPECT);
	json_object_del(o, JR_SPEC_IMAGE_INSPECT);
	json_object_del(o, JR_OLD_SPEC); /* a Swarm service's spec before its update */
	return o;
}
