/* fsutil: local file-system helpers shared by the image cache, customization and tests.
 * All paths are borrowed. */
#ifndef PHX_FSUTIL_H
#define PHX_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* mkdir -p with `mode` for the directories it creates. */
int fs_mkdir_p(const char *path, unsigned mode, struct phx_err *err);

/* Appends the whole file to `out` (capped by out->max). */
int fs_read_file(const char *path, struct buf *out, struct phx_err *err);

/* Writes `len` bytes to `path` via a temporary file in the same directory, fsync, rename. */
int fs_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
		    struct phx_err *err);
/* The same without the two fsyncs: readers still see the old or the whole new file, but a
 * power failure may lose it (or leave it empty). For hints whose loss only costs work: an
 * fsync can wait for every dirty page the file system must order before it (ext4
 * data=ordered), measured at 140 ms after another program wrote 256 MiB. */
int fs_write_atomic_lazy(const char *path, const void *data, size_t len, unsigned mode,
			 struct phx_err *err);

/* Copies src to dst (dst is created or truncated): reflink (FICLONE) when the file system
 * can, else copy_file_range, else read/write. Sparse-friendly and constant memory. */
int fs_copy_file(const char *src, const char *dst, struct phx_err *err);

/* Size of a regular file; -1 with err when it does not exist. */
int fs_file_size(const char *path, uint64_t *ret_size, struct phx_err *err);
bool fs_exists(const char *path);

/* Bytes available to an unprivileged writer in the file system holding `dir`. */
int fs_free_space(const char *dir, uint64_t *ret_bytes, struct phx_err *err);

/* rm -r: removes `path` and everything under it, never following a symlink. A path that does
 * not exist is fine. */
int fs_remove_tree(const char *path, struct phx_err *err);

/* fsync a directory so a rename in it is durable. */
int fs_fsync_dir(const char *dir, struct phx_err *err);

/* Takes an exclusive, non-blocking flock on `path` (created 0600) so overlapping cron runs
 * cannot build the same thing twice. Fails with PHX_E_BUSY naming the path and the pid
 * written by the holder. On success *ret_fd holds the lock until fs_lock_release(). */
int fs_lock_acquire(const char *path, int *ret_fd, struct phx_err *err);
void fs_lock_release(int fd);

#endif
