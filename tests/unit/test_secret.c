/* Unit tests for secret: file mode checks like ssh's, newline stripping, size limits. */
#include <criterion/criterion.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"

static char dir[64];
static char path[128];

static void setup(void)
{
	strcpy(dir, "/tmp/phx-secret-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/token", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

static void write_secret(const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

TestSuite(secret, .init = setup, .fini = teardown);

Test(secret, file_0600_is_read_and_newline_stripped)
{
	struct phx_err err = PHX_ERR_INIT;
	struct phx_secret *s;

	write_secret("11111111-2222-3333-4444-555555555555\n", 37, 0600);
	s = secret_from_file(path, &err);
	cr_assert_not_null(s, "%s", err.msg);
	cr_assert_str_eq(secret_value(s), "11111111-2222-3333-4444-555555555555");
	cr_assert_not(phx_err_is_set(&err));
	secret_free(s);
}

Test(secret, crlf_and_later_lines_are_dropped)
{
	struct phx_err err = PHX_ERR_INIT;
	struct phx_secret *s;

	write_secret("abc\r\nsecond line\n", 17, 0400);
	s = secret_from_file(path, &err);
	cr_assert_not_null(s, "%s", err.msg);
	cr_assert_str_eq(secret_value(s), "abc");
	secret_free(s);
}

Test(secret, file_readable_by_others_is_refused)
{
	static const mode_t modes[] = {0644, 0640, 0604, 0660, 0606};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		char mode[8];

		write_secret("abc\n", 4, modes[i]);
		cr_assert_null(secret_from_file(path, &err), "mode %o accepted", modes[i]);
		cr_assert_eq(err.code, PHX_E_INPUT);
		cr_assert(strstr(err.msg, path), "%s", err.msg);
		snprintf(mode, sizeof(mode), "%04o", (unsigned)modes[i]);
		cr_assert(strstr(err.msg, mode), "%s", err.msg);
		cr_assert(strstr(err.msg, "chmod 600"), "%s", err.msg);
		cr_assert_null(strstr(err.msg, "abc"), "the secret leaked: %s", err.msg);
	}
}

Test(secret, empty_file_is_refused)
{
	struct phx_err err = PHX_ERR_INIT;

	write_secret("\n", 1, 0600);
	cr_assert_null(secret_from_file(path, &err));
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, path) && strstr(err.msg, "empty"), "%s", err.msg);
}

Test(secret, oversized_file_is_refused)
{
	struct phx_err err = PHX_ERR_INIT;
	static char big[5000];

	memset(big, 'x', sizeof(big));
	write_secret(big, sizeof(big), 0600);
	cr_assert_null(secret_from_file(path, &err));
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "larger than"), "%s", err.msg);
}

Test(secret, missing_file_names_the_path)
{
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_null(secret_from_file("/nonexistent/token", &err));
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "/nonexistent/token"), "%s", err.msg);
}

Test(secret, directory_is_refused)
{
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_null(secret_from_file(dir, &err));
	cr_assert(phx_err_is_set(&err));
	cr_assert(strstr(err.msg, dir), "%s", err.msg);
}

Test(secret, from_string_strips_and_rejects_empty)
{
	struct phx_err err = PHX_ERR_INIT;
	struct phx_secret *s = secret_from_string("tok \n", &err);

	cr_assert_not_null(s);
	cr_assert_str_eq(secret_value(s), "tok");
	secret_free(s);
	cr_assert_null(secret_from_string("\n", &err));
	cr_assert_eq(err.code, PHX_E_INPUT);
	secret_free(NULL);
}

Test(secret, control_characters_are_refused_unechoed)
{
	/* the secret goes into the Authorization header: CR/LF would inject a header */
	static const char *const bad[] = {"abc\r\nX-Injected: yes", "abc\tdef", "a\x7f"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;

		cr_assert_null(secret_from_string(bad[i], &err));
		cr_assert_eq(err.code, PHX_E_INPUT);
		cr_assert(strstr(err.msg, "control character"), "%s", err.msg);
		cr_assert_null(strstr(err.msg, "abc"), "secret echoed: %s", err.msg);
	}
}

Test(secret, holding_a_secret_disables_core_dumps)
{
	struct phx_err err = PHX_ERR_INIT;
	struct phx_secret *s = secret_from_string("11111111-2222-3333-4444-555555555555", &err);
	struct rlimit rl;

	cr_assert_not_null(s, "%s", err.msg);
	cr_assert_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	cr_assert_eq(getrlimit(RLIMIT_CORE, &rl), 0);
	cr_assert_eq(rl.rlim_cur, 0);
	secret_free(s);
}

Test(secret, check_file_applies_the_rules_of_a_read_without_reading)
{
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(secret_check_file(path, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "does not exist: create it with 'install -m 600 /dev/null"), "%s",
		  err.msg);
	phx_err_clear(&err);
	write_secret("abc\n", 4, 0604);
	cr_assert_eq(secret_check_file(path, &err), -1);
	cr_assert(strstr(err.msg, "mode 0604 lets others read it; run 'chmod 600 "), "%s", err.msg);
	phx_err_clear(&err);
	write_secret("", 0, 0600);
	cr_assert_eq(secret_check_file(path, &err), -1);
	cr_assert(strstr(err.msg, "empty"), "%s", err.msg);
	phx_err_clear(&err);
	write_secret("abc\n", 4, 0600);
	cr_assert_eq(secret_check_file(path, &err), 0, "%s", err.msg);
	cr_assert_not(phx_err_is_set(&err));
	if (geteuid() == 0) {
		struct phx_secret *s;

		/* another user's file: its owner could swap the token under us */
		cr_assert_eq(chown(path, 65534, 65534), 0);
		cr_assert_eq(secret_check_file(path, &err), -1);
		cr_assert(strstr(err.msg,
				 "owned by uid 65534, not by the user running this (uid 0) "
				 "or root; run 'chown 0 "),
			  "%s", err.msg);
		phx_err_clear(&err);
		s = secret_from_file(path, &err);
		cr_assert_null(s);
		cr_assert(strstr(err.msg, "owned by uid 65534"), "%s", err.msg);
	}
}
