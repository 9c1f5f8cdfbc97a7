/* Volume backups of a migration: tars streamed from the engine with their SHA-256, a manifest, restore. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/fsutil.h"
#include "refit/hooks.h"
#include "refit/log.h"
#include "refit/migrate.h"

#define ARCHIVE_TIMEOUT (60L * 60)
#define MANIFEST_MAX (1u << 20)

static void hex(const unsigned char *d, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Remove DIR and the plain files in it (a backup that could not be made). */
static void remove_backup_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[4400];

	while (d && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* One tar being written: the file, its digest, and the bound shared by the whole backup. */
struct tar_sink {
	int fd;
	EVP_MD_CTX *md;
	long long size;
	long long *total;
	long long max;
	int err; /* errno of a failed write */
	bool too_big;
};

static int tar_write(const void *data, size_t len, void *arg)
{
	struct tar_sink *t = arg;
	const char *p = data;
	size_t left = len;

	if (*t->total + (long long)len > t->max) {
		t->too_big = true;
		return -1;
	}
	while (left > 0) {
		ssize_t n = write(t->fd, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			t->err = n < 0 ? errno : EIO;
			return -1;
		}
		p += n;
		left -= (size_t)n;
	}
	if (EVP_DigestUpdate(t->md, data, len) != 1) {
		t->err = ENOMEM;
		return -1;
	}
	t->size += (long long)len;
	*t->total += (long long)len;
	return 0;
}

/* Stream the archive of MOUNT_POINT in container ID into FILE; SHA256 gets its hex digest. */
static int take_one(struct engine *en, const char *id, const char *mount_point, const char *file, long long *total,
		    long long max, long long *size, char sha256[65], struct refit_err *e)
{
	struct tar_sink t = { .total = total, .max = max };
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	char path[4400], *esc = engine_escape(en, mount_point);
	int rc = -1;

	t.fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	t.md = EVP_MD_CTX_new();
	if (t.fd < 0 || !t.md || !esc || EVP_DigestInit_ex(t.md, EVP_sha256(), NULL) != 1) {
		err_set(e, ERR_FAILED, "%s: %s", file, t.fd < 0 ? strerror(errno) : "out of memory");
		goto out;
	}
	snprintf(path, sizeof(path), "/containers/%s/archive?path=%s", id, esc);
	if (engine_get_stream(en, path, ARCHIVE_TIMEOUT, tar_write, &t, e) < 0) {
		if (t.too_big)
			err_set(e, ERR_FAILED, "the volumes are larger than backup_max_bytes (%lld bytes)", max);
		else if (t.err)
			err_set(e, ERR_FAILED, "%s: %s", file, strerror(t.err));
		else
			err_prefix(e, "archive of %s: ", mount_point);
		goto out;
	}
	if (fsync(t.fd) < 0 || EVP_DigestFinal_ex(t.md, d, &dlen) != 1) {
		err_set(e, ERR_FAILED, "%s: %s", file, strerror(errno));
		goto out;
	}
	hex(d, dlen, sha256);
	*size = t.size;
	rc = 0;
out:
	if (t.fd >= 0 && close(t.fd) < 0 && rc == 0)
		rc = err_set(e, ERR_FAILED, "%s: %s", file, strerror(errno));
	EVP_MD_CTX_free(t.md);
	free(esc);
	return rc;
}

/* Write TEXT to PATH through a temporary file, fsync'd. */
static int write_file_atomic(const char *path, const char *text, struct refit_err *e)
{
	char tmp[4400];
	size_t len = strlen(text);
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return err_set(e, ERR_FAILED, "%.200s...: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		int saved = errno;

		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return err_set(e, ERR_FAILED, "%s: %s", tmp, strerror(saved ? saved : EIO));
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return err_set(e, ERR_FAILED, "%s: %s", path, strerror(errno));
	}
	return 0;
}

int backup_take(struct engine *en, const struct refit_config *cfg, json_t *ins, const char *opid, char *dir,
		size_t dirlen, struct refit_err *e)
{
	const char *id = json_string_value(json_object_get(ins, "Id"));
	const char *name = json_string_value(json_object_get(ins, "Name"));
	json_t *vols = json_array(), *mnt, *manifest = NULL;
	long long total = 0;
	char now[32], file[4400], root[4200];
	size_t i, k = 0;
	char *text = NULL;
	int rc = -1;

	if (name && *name == '/')
		name++;
	if (!id || !name || !vols)
		return err_set(e, ERR_FAILED, "the container's inspect has no Id or Name");
	snprintf(root, sizeof(root), "%s/backups", cfg->state_dir);
	snprintf(dir, dirlen, "%s/%s", root, opid);
	if (fs_mkdirs(root) < 0 || mkdir(dir, 0700) < 0) {
		json_decref(vols);
		return err_set(e, ERR_FAILED, "%s: %s", dir, strerror(errno));
	}
	json_array_foreach(json_object_get(ins, "Mounts"), i, mnt) {
		const char *type = json_string_value(json_object_get(mnt, "Type"));
		const char *vol = json_string_value(json_object_get(mnt, "Name"));
		const char *dest = json_string_value(json_object_get(mnt, "Destination"));
		char sha[65], fname[96];
		long long size = 0;
		bool anon;

		/* Volumes only: binds are the host's own files (see docs/migrations.md). */
		if (!type || strcmp(type, "volume") != 0 || !vol || !dest || dest[0] != '/' || strlen(dest) > 1024)
			continue;
		anon = strlen(vol) == 64 && strspn(vol, "0123456789abcdef") == 64;
		snprintf(fname, sizeof(fname), "%zu-%.64s.tar", k++, vol);
		for (char *p = fname; *p; p++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *p))
				*p = '_';
		snprintf(file, sizeof(file), "%s/%s", dir, fname);
		if (take_one(en, id, dest, file, &total, cfg->backup_max_bytes, &size, sha, e) < 0) {
			err_prefix(e, "volume %.64s at %s: ", vol, dest);
			goto out;
		}
		iso_now(now);
		json_array_append_new(vols, json_pack("{s:s, s:b, s:s, s:s, s:I, s:s, s:s}", "volume", vol, "anonymous",
						      anon, "mount_point", dest, "file", fname, "size", (json_int_t)size,
						      "sha256", sha, "time", now));
		log_info("%s: backed up volume %.64s (%s): %lld bytes, sha256 %.12s", name, vol, dest, size, sha);
	}
	iso_now(now);
	manifest = json_pack("{s:s, s:s, s:s, s:s, s:I, s:O}", "container", name, "container_id", id, "operation", opid,
			     "time", now, "total_bytes", (json_int_t)total, "volumes", vols);
	text = manifest ? json_dumps(manifest, JSON_INDENT(2)) : NULL;
	snprintf(file, sizeof(file), "%s/manifest.json", dir);
	if (!text) {
		err_set(e, ERR_FAILED, "out of memory");
		goto out;
	}
	if (write_file_atomic(file, text, e) < 0 || fs_fsync_dir(dir) < 0 ||
	    fs_fsync_dir(root) < 0) {
		if (!e->msg[0])
			err_set(e, ERR_FAILED, "%s: %s", dir, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		remove_backup_dir(dir);
	free(text);
	json_decref(manifest);
	json_decref(vols);
	return rc;
}

/* A manifest's file name: a plain name in the backup directory. */
static bool plain_file(const char *f)
{
	return f && *f && f[0] != '.' && strlen(f) < 128 && !strchr(f, '/');
}

int backup_verify(const char *dir, json_t **manifest, struct refit_err *e)
{
	char path[4400];
	json_error_t jerr;
	json_t *m, *v;
	size_t i;
	struct stat st;

	*manifest = NULL;
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MANIFEST_MAX)
		return err_set(e, ERR_FAILED, "backup %s: no manifest.json (%s)", dir, strerror(errno ? errno : EINVAL));
	m = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!m || !json_is_array(json_object_get(m, "volumes"))) {
		json_decref(m);
		return err_set(e, ERR_FAILED, "backup %s: manifest.json is not a backup manifest", dir);
	}
	json_array_foreach(json_object_get(m, "volumes"), i, v) {
		const char *f = json_string_value(json_object_get(v, "file"));
		const char *want = json_string_value(json_object_get(v, "sha256"));
		const char *mp = json_string_value(json_object_get(v, "mount_point"));
		json_int_t size = json_integer_value(json_object_get(v, "size"));
		unsigned char d[EVP_MAX_MD_SIZE], buf[65536];
		unsigned dlen = 0;
		char got[2 * EVP_MAX_MD_SIZE + 1] = "";
		long long n = 0;
		EVP_MD_CTX *md;
		ssize_t r;
		int fd;

		if (!plain_file(f) || !want || strlen(want) != 64 || !mp || mp[0] != '/' || strlen(mp) < 2 ||
		    !json_is_integer(json_object_get(v, "size"))) {
			json_decref(m);
			return err_set(e, ERR_FAILED, "backup %s: manifest entry %zu is incomplete", dir, i);
		}
		snprintf(path, sizeof(path), "%s/%s", dir, f);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		md = EVP_MD_CTX_new();
		if (fd < 0 || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
			int saved = errno;

			if (fd >= 0)
				close(fd);
			EVP_MD_CTX_free(md);
			json_decref(m);
			return err_set(e, ERR_FAILED, "backup %s: %s", path, strerror(saved));
		}
		while ((r = read(fd, buf, sizeof(buf))) > 0) {
			EVP_DigestUpdate(md, buf, (size_t)r);
			n += r;
		}
		close(fd);
		EVP_DigestFinal_ex(md, d, &dlen);
		EVP_MD_CTX_free(md);
		hex(d, dlen, got);
		if (r < 0 || n != (long long)size || strcmp(got, want) != 0) {
			err_set(e, ERR_FAILED, "backup %s: %s does not match its manifest (%lld bytes, sha256 %.16s..., expected %lld bytes, %.16s...)",
				dir, f, n, got, (long long)size, want);
			json_decref(m); /* F and WANT live in M */
			return -1;
		}
	}
	*manifest = m;
	return 0;
}

/* Shell-quote S into OUT ('...' with ' as '\''); -1 when it does not fit. */
static int shell_quote(const char *s, char *out, size_t len)
{
	size_t o = 0;

	if (len < 3)
		return -1;
	out[o++] = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			if (o + 5 >= len)
				return -1;
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			if (o + 2 >= len)
				return -1;
			out[o++] = *s;
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
	return 0;
}

int backup_restore(struct engine *en, const char *dir, json_t *manifest, const char *id, struct refit_err *e)
{
	json_t *ins = NULL, *v;
	size_t i;
	char path[4400];

	if (engine_container_inspect(en, id, &ins, e) <= 0)
		return -1;
	json_array_foreach(json_object_get(manifest, "volumes"), i, v) {
		const char *mp = json_string_value(json_object_get(v, "mount_point"));
		const char *f = json_string_value(json_object_get(v, "file"));
		json_t *mnt, *labels;
		bool mounted = false;
		char q[2200], cmd[6700], parent[1100], *esc, *slash;
		size_t k;
		struct stat st;
		int fd, rc;

		json_array_foreach(json_object_get(ins, "Mounts"), k, mnt) {
			const char *dst = json_string_value(json_object_get(mnt, "Destination"));

			mounted |= dst && strcmp(dst, mp) == 0 &&
				   strcmp(json_string_value(json_object_get(mnt, "Type")) ? json_string_value(json_object_get(mnt, "Type")) : "", "volume") == 0;
		}
		if (!mounted) {
			json_decref(ins);
			return err_set(e, ERR_FAILED, "restore: the container has no volume at %s", mp);
		}
		/* Empty the mount point: what was written after the backup goes. */
		if (shell_quote(mp, q, sizeof(q)) < 0) {
			json_decref(ins);
			return err_set(e, ERR_FAILED, "restore: mount point too long");
		}
		snprintf(cmd, sizeof(cmd), "rm -rf -- %s/* %s/.[!.]* %s/..?*", q, q, q);
		labels = json_pack("{s:s}", "refit.hook.restore-data", cmd);
		rc = labels ? hook_run(en, labels, "restore-data", id, e) : err_set(e, ERR_FAILED, "out of memory");
		json_decref(labels);
		if (rc != 0) {
			json_decref(ins);
			if (rc > 0)
				err_set(e, ERR_FAILED, "restore: emptying %s in the container exited %d (it needs sh and rm)", mp, rc);
			else
				err_prefix(e, "restore: emptying %s: ", mp);
			return -1;
		}
		/* The tar holds the mount point's own directory: it goes into the parent. */
		snprintf(parent, sizeof(parent), "%s", mp);
		slash = strrchr(parent, '/');
		if (slash == parent)
			parent[1] = '\0';
		else if (slash)
			*slash = '\0';
		snprintf(path, sizeof(path), "%s/%s", dir, f);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			if (fd >= 0)
				close(fd);
			json_decref(ins);
			return err_set(e, ERR_FAILED, "restore: %s: %s", path, strerror(errno));
		}
		esc = engine_escape(en, parent);
		snprintf(cmd, sizeof(cmd), "/containers/%s/archive?path=%s", id, esc ? esc : "");
		free(esc);
		rc = engine_put_fd(en, cmd, fd, (long long)st.st_size, "application/x-tar", ARCHIVE_TIMEOUT, e);
		close(fd);
		if (rc < 0) {
			json_decref(ins);
			err_prefix(e, "restore %s: ", mp);
			return -1;
		}
		log_info("%.12s: restored %s from %s", id, mp, path);
	}
	json_decref(ins);
	/* The application starts again on the restored data. */
	snprintf(path, sizeof(path), "/containers/%s/restart?t=10", id);
	if (engine_call(en, "POST", path, NULL, 120, NULL, NULL, e) < 0) {
		err_prefix(e, "restart after the restore: ");
		return -1;
	}
	return 0;
}

/* One backup directory for pruning. */
struct found {
	char name[64];
	char time[32];
};

static int found_cmp(const void *a, const void *b)
{
	const struct found *x = a, *y = b;
	int c = strcmp(y->time, x->time); /* newest first */

	return c ? c : strcmp(y->name, x->name);
}

void backup_prune(const struct refit_config *cfg, const char *name)
{
	char root[4200], path[4400];
	struct found *v = NULL;
	size_t n = 0;
	DIR *d;
	struct dirent *de;

	snprintf(root, sizeof(root), "%s/backups", cfg->state_dir);
	d = opendir(root);
	while (d && (de = readdir(d)) && n < 4096) {
		json_t *m;
		const char *c, *t;
		struct found *nv;

		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(v->name))
			continue;
		if (path_fmt(path, sizeof(path), "%s/%s/manifest.json", root, de->d_name) < 0)
			continue;
		m = json_load_file(path, 0, NULL);
		c = json_string_value(json_object_get(m, "container"));
		t = json_string_value(json_object_get(m, "time"));
		if (c && t && strcmp(c, name) == 0 && (nv = realloc(v, (n + 1) * sizeof(*v)))) {
			v = nv;
			memcpy(v[n].name, de->d_name, strlen(de->d_name) + 1); /* its length was checked above */
			snprintf(v[n].time, sizeof(v[n].time), "%s", t);
			n++;
		}
		json_decref(m);
	}
	if (d)
		closedir(d);
	if (n > (size_t)cfg->backup_retention) {
		qsort(v, n, sizeof(*v), found_cmp);
		for (size_t i = (size_t)cfg->backup_retention; i < n; i++) {
			snprintf(path, sizeof(path), "%s/%s", root, v[i].name);
			log_info("%s: removed the old backup %s (backup_retention %ld)", name, path, cfg->backup_retention);
			remove_backup_dir(path);
		}
	}
	free(v);
}
