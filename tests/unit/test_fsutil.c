/* fsutil: atomic write, copy, lock. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

static char dir[] = "/tmp/phx-fsutil-XXXXXX";

static void setup(void)
{
	strcpy(dir, "/tmp/phx-fsutil-XXXXXX");
	cr_assert(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(fsutil, .init = setup, .fini = teardown);

Test(fsutil, write_atomic_then_read_back_and_copy)
{
	char a[256], b[256];
	struct buf out = BUF_INIT;
	struct phx_err err = PHX_ERR_INIT;
	uint64_t size = 0;

	snprintf(a, sizeof(a), "%s/sub/dir/a.txt", dir);
	snprintf(b, sizeof(b), "%s/b.txt", dir);
	{
		char sub[256];

		snprintf(sub, sizeof(sub), "%s/sub/dir", dir);
		cr_assert_eq(fs_mkdir_p(sub, 0755, &err), 0, "%s", err.msg);
	}
	cr_assert_eq(fs_write_atomic(a, "hello\n", 6, 0600, &err), 0, "%s", err.msg);
	cr_assert_eq(fs_copy_file(a, b, &err), 0, "%s", err.msg);
	cr_assert_eq(fs_read_file(b, &out, &err), 0, "%s", err.msg);
	cr_assert_str_eq(buf_str(&out), "hello\n");
	cr_assert_eq(fs_file_size(b, &size, &err), 0);
	cr_assert_eq(size, 6);
	buf_release(&out);
}

Test(fsutil, lazy_atomic_write_replaces_whole_file_and_leaves_no_temporary)
{
	char a[256];
	struct buf out = BUF_INIT;
	struct phx_err err = PHX_ERR_INIT;
	struct stat st;

	snprintf(a, sizeof(a), "%s/hint.json", dir);
	cr_assert_eq(fs_write_atomic(a, "old content\n", 12, 0600, &err), 0, "%s", err.msg);
	cr_assert_eq(fs_write_atomic_lazy(a, "new\n", 4, 0644, &err), 0, "%s", err.msg);
	cr_assert_eq(fs_read_file(a, &out, &err), 0, "%s", err.msg);
	cr_assert_str_eq(buf_str(&out), "new\n");
	cr_assert_eq(stat(a, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0644);
	buf_release(&out);
	snprintf(a, sizeof(a), "test \"$(ls -A %s)\" = hint.json", dir);
	cr_assert_eq(system(a), 0, "a temporary file was left in %s", dir);
	snprintf(a, sizeof(a), "%s/no/such/dir/hint.json", dir);
	cr_assert_eq(fs_write_atomic_lazy(a, "x", 1, 0644, &err), -1);
	cr_assert(strstr(err.msg, "/no/such/dir/hint.json.tmp."), "%s", err.msg);
}

Test(fsutil, read_missing_file_names_path)
{
	struct buf out = BUF_INIT;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(fs_read_file("/nonexistent/phx/file", &out, &err), -1);
	cr_assert_eq(err.code, PHX_E_IO);
	cr_assert(strstr(err.msg, "'/nonexistent/phx/file'"), "%s", err.msg);
	cr_assert_null(out.data);
}

Test(fsutil, second_lock_holder_is_refused_with_pid)
{
	char path[256], pid[32];
	struct phx_err err = PHX_ERR_INIT;
	int fd1 = -1, fd2 = -1;

	snprintf(path, sizeof(path), "%s/run.lock", dir);
	cr_assert_eq(fs_lock_acquire(path, &fd1, &err), 0, "%s", err.msg);
	cr_assert_eq(fs_lock_acquire(path, &fd2, &err), -1);
	cr_assert_eq(err.code, PHX_E_BUSY);
	snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
	cr_assert(strstr(err.msg, pid), "%s", err.msg);
	cr_assert_eq(fd2, -1);
	fs_lock_release(fd1);
	phx_err_clear(&err);
	cr_assert_eq(fs_lock_acquire(path, &fd2, &err), 0, "%s", err.msg);
	fs_lock_release(fd2);
}
