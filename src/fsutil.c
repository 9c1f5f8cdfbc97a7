/* Files in state_dir and configuration files: directories made, durable renames, bounded reads. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/fsutil.h"

int fs_mkdirs(const char *dir)
{
	char tmp[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, dir, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

int fs_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int fs_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int fs_write_atomic(const char *dir, const char *name, const char *text, struct refit_err *e)
{
	if (fs_replace(dir, name, text, e) < 0)
		return -1;
	if (fs_fsync_dir(dir) < 0)
		return err_set(e, ERR_FAILED, "%s: %s", dir, strerror(errno));
	return 0;
}

int fs_replace(const char *dir, const char *name, const char *text, struct refit_err *e)
{
	char path[4300], tmp[4400];
	int fd, saved;

	if (path_fmt(path, sizeof(path), "%s/%s", dir, name) < 0 || path_fmt(tmp, sizeof(tmp), "%s.tmp", path) < 0)
		return err_set(e, ERR_FAILED, "%s/%s: path too long", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || fs_write_all(fd, text, strlen(text)) < 0 || fs_write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
		saved = errno;
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return err_set(e, ERR_FAILED, "%s: %s", tmp, strerror(saved));
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		saved = errno;
		unlink(tmp);
		return err_set(e, ERR_FAILED, "%s: %s", path, strerror(saved));
	}
	return 0;
}

int fs_read_file(const char *path, size_t max, char **buf, size_t *len, struct refit_err *e)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, ERR_USAGE, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)max) {
		close(fd);
		return err_set(e, ERR_USAGE, "%s: not a regular file of at most %zu bytes", path, max);
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (!*buf) {
		close(fd);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, *buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = err_set(e, ERR_USAGE, "%s: %s", path, strerror(errno));

			close(fd);
			free(*buf);
			*buf = NULL;
			return rc;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	(*buf)[got] = '\0';
	*len = got;
	return 0;
}
