/* Files in state_dir and configuration files: directories made, durable renames, bounded reads. */
#ifndef REFIT_FSUTIL_H
#define REFIT_FSUTIL_H

#include <stddef.h>

#include "refit/error.h"

/* Make DIR and its missing parents (0755), DIR itself with mode 0700. */
int fs_mkdirs(const char *dir);

/* fsync a directory, so a rename or a new file in it is durable. */
int fs_fsync_dir(const char *dir);

/* Write all of BUF to FD (EINTR retried); -1 with errno. */
int fs_write_all(int fd, const char *buf, size_t len);

/*
 * Replace DIR/NAME with TEXT and a newline, durably: a temporary file
 * written and fsync'd, renamed over NAME, the directory fsync'd. A crash
 * leaves the old file or the new one, never a torn one.
 */
int fs_write_atomic(const char *dir, const char *name, const char *text, struct refit_err *e);

/*
 * fs_write_atomic without the directory's fsync: the rename is durable once
 * the caller fsyncs DIR (after it, however many renames it covers).
 */
int fs_replace(const char *dir, const char *name, const char *text, struct refit_err *e);

/*
 * Read PATH, a regular file of at most MAX bytes, into *BUF (malloc'd,
 * NUL-terminated) and *LEN. ERR_USAGE naming PATH when it cannot be read
 * or is not such a file.
 */
int fs_read_file(const char *path, size_t max, char **buf, size_t *len, struct refit_err *e);

#endif
