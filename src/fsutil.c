/* fsutil: mkdir -p, whole-file read, atomic write, fast copy, free space. */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int fs_mkdir_p(const char *path, unsigned mode, struct phx_err *err)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return phx_err_set(err, PHX_E_IO, "bad directory path '%s'", path);
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return phx_err_set_errno(err, PHX_E_IO, errno, "create directory '%s'",
						 tmp);
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return phx_err_set_errno(err, PHX_E_IO, errno, "create directory '%s'", tmp);
	return 0;
}

int fs_read_file(const char *path, struct buf *out, struct phx_err *err)
{
	char chunk[65536];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (!f)
		return phx_err_set_errno(err, PHX_E_IO, errno, "open '%s'", path);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(out, chunk, n, err) < 0) {
			fclose(f);
			return phx_err_wrap(err, "read '%s'", path);
		}
	}
	if (ferror(f)) {
		fclose(f);
		return phx_err_set(err, PHX_E_IO, "read '%s': I/O error", path);
	}
	fclose(f);
	if (!out->data)
		return buf_append(out, "", 0, err);
	return 0;
}

static int fs_dirname(const char *path, char ret[PATH_MAX])
{
	char tmp[PATH_MAX];

	if (strlen(path) >= sizeof(tmp))
		return -1;
	strcpy(tmp, path);
	snprintf(ret, PATH_MAX, "%s", dirname(tmp));
	return 0;
}

int fs_fsync_dir(const char *dir, struct phx_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "open directory '%s'", dir);
	if (fsync(fd) < 0 && errno != EINVAL) {
		int e = errno;

		close(fd);
		return phx_err_set_errno(err, PHX_E_IO, e, "fsync directory '%s'", dir);
	}
	close(fd);
	return 0;
}

static int fs_write_renamed(const char *path, const void *data, size_t len, unsigned mode,
			    bool durable, struct phx_err *err)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *p = data;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp) ||
	    fs_dirname(path, dir) < 0)
		return phx_err_set(err, PHX_E_IO, "path too long: '%s'", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "create '%s'", tmp);
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			unlink(tmp);
			return phx_err_set_errno(err, PHX_E_IO, e, "write '%s'", tmp);
		}
		p += n;
		len -= (size_t)n;
	}
	if ((durable && fsync(fd) < 0) || close(fd) < 0) {
		int e = errno;

		unlink(tmp);
		return phx_err_set_errno(err, PHX_E_IO, e, "write '%s'", tmp);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;

		unlink(tmp);
		return phx_err_set_errno(err, PHX_E_IO, e, "rename '%s' to '%s'", tmp, path);
	}
	return durable ? fs_fsync_dir(dir, err) : 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
		    struct phx_err *err)
{
	return fs_write_renamed(path, data, len, mode, true, err);
}

int fs_write_atomic_lazy(const char *path, const void *data, size_t len, unsigned mode,
			 struct phx_err *err)
{
	return fs_write_renamed(path, data, len, mode, false, err);
}

static int fs_copy_fallback(int in, int out, struct phx_err *err)
{
	char *chunk = malloc(1 << 20);
	ssize_t n;

	if (!chunk)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	while ((n = read(in, chunk, 1 << 20)) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, chunk + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				int e = errno;

				free(chunk);
				return phx_err_set_errno(err, PHX_E_IO, e, "write");
			}
			off += w;
		}
	}
	free(chunk);
	if (n < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "read");
	return 0;
}

int fs_copy_file(const char *src, const char *dst, struct phx_err *err)
{
	struct stat st;
	int in, out, rc = 0;
	off_t left;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "open '%s'", src);
	if (fstat(in, &st) < 0) {
		close(in);
		return phx_err_set_errno(err, PHX_E_IO, errno, "stat '%s'", src);
	}
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		int e = errno;

		close(in);
		return phx_err_set_errno(err, PHX_E_IO, e, "create '%s'", dst);
	}
	if (ioctl(out, FICLONE, in) == 0)
		goto done;
	for (left = st.st_size; left > 0;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 &&
		    (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL) &&
		    left == st.st_size) {
			rc = fs_copy_fallback(in, out, err);
			break;
		}
		if (n < 0) {
			rc = phx_err_set_errno(err, PHX_E_IO, errno, "copy");
			break;
		}
		if (n == 0)
			break;
		left -= n;
	}
done:
	if (close(out) < 0 && rc == 0)
		rc = phx_err_set_errno(err, PHX_E_IO, errno, "close '%s'", dst);
	close(in);
	if (rc < 0) {
		unlink(dst);
		return phx_err_wrap(err, "copy '%s' to '%s'", src, dst);
	}
	return 0;
}

int fs_file_size(const char *path, uint64_t *ret_size, struct phx_err *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "stat '%s'", path);
	*ret_size = (uint64_t)st.st_size;
	return 0;
}

bool fs_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

int fs_free_space(const char *dir, uint64_t *ret_bytes, struct phx_err *err)
{
	struct statvfs sv;

	if (statvfs(dir, &sv) < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "statvfs '%s'", dir);
	*ret_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

int fs_lock_acquire(const char *path, int *ret_fd, struct phx_err *err)
{
	char pid[32] = "";
	ssize_t n;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	struct stat st;

	if (fd < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "open lock file '%s'", path);
	/* a file planted by someone else could be held by them forever */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		close(fd);
		return phx_err_set(err, PHX_E_IO, "lock file '%s' is not a regular file of ours",
				   path);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK)
			return phx_err_set(err, PHX_E_BUSY,
					   "another orchestrator run (pid %s) holds the lock '%s'; "
					   "wait for it to finish",
					   pid[0] ? pid : "unknown", path);
		return phx_err_set_errno(err, PHX_E_IO, e, "lock '%s'", path);
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0) {
		int e = errno;

		close(fd);
		return phx_err_set_errno(err, PHX_E_IO, e, "write lock file '%s'", path);
	}
	*ret_fd = fd;
	return 0;
}

void fs_lock_release(int fd)
{
	if (fd >= 0)
		close(fd);
}

static int fs_remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		return errno;
	return 0;
}

int fs_remove_tree(const char *path, struct phx_err *err)
{
	int rc = nftw(path, fs_remove_entry, 16, FTW_DEPTH | FTW_PHYS);

	if (rc < 0 && errno == ENOENT)
		return 0;
	if (rc != 0)
		return phx_err_set_errno(err, PHX_E_IO, rc > 0 ? rc : errno, "remove '%s'", path);
	return 0;
}
