/* Files in state_dir and configuration files: directories made, durable renames, bounded reads. */
#ifndef REFIT_FSUTIL_H
#define REFIT_FSUTIL_H

#include <stddef.h>

#include "refit/error.h"

/* Make DIR and its missing parents (0755), DIR itself with mode 0700. */
int fs_mkdirs(const char *dir);

/* fsync a directory, so a rename or a new file in it is durable. */
int fs_fsync_dir(const char *dir);

/*
 * Read PATH, a regular file of at most MAX bytes, into *BUF (malloc'd,
 * NUL-terminated) and *LEN. ERR_USAGE naming PATH when it cannot be read
 * or is not such a file.
 */
int fs_read_file(const char *path, size_t max, char **buf, size_t *len, struct refit_err *e);

#endif
