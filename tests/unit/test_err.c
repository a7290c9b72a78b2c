/* Unit tests for err: the first root cause wins, wrap prefixes context, codes map to the
 * documented exit statuses. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "err.h"

Test(err, set_records_code_and_message)
{
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_not(phx_err_is_set(&err));
	cr_assert_eq(phx_err_set(&err, PHX_E_API, "upload '%s': HTTP %d", "x.qcow2", 403), -1);
	cr_assert(phx_err_is_set(&err));
	cr_assert_eq(err.code, PHX_E_API);
	cr_assert_str_eq(err.msg, "upload 'x.qcow2': HTTP 403");
}

Test(err, set_keeps_the_first_cause)
{
	struct phx_err err = PHX_ERR_INIT;

	phx_err_set(&err, PHX_E_TLS, "certificate pin mismatch");
	cr_assert_eq(phx_err_set(&err, PHX_E_NET, "connection reset"), -1);
	cr_assert_eq(phx_err_set_errno(&err, PHX_E_IO, ENOENT, "open '%s'", "f"), -1);
	cr_assert_eq(err.code, PHX_E_TLS);
	cr_assert_str_eq(err.msg, "certificate pin mismatch");
}

Test(err, set_errno_appends_strerror)
{
	struct phx_err err = PHX_ERR_INIT;

	phx_err_set_errno(&err, PHX_E_IO, ENOENT, "open '%s'", "/nope");
	cr_assert_eq(err.code, PHX_E_IO);
	cr_assert_str_eq(err.msg, "open '/nope': No such file or directory");
}

Test(err, wrap_prefixes_context_outermost_first)
{
	struct phx_err err = PHX_ERR_INIT;

	phx_err_set(&err, PHX_E_PERM, "HTTP 403: permission denied");
	cr_assert_eq(phx_err_wrap(&err, "upload '%s'", "local:import/x.qcow2"), -1);
	phx_err_wrap(&err, "provision '%s'", "ubuntu-noble");
	cr_assert_str_eq(err.msg, "provision 'ubuntu-noble': upload 'local:import/x.qcow2': HTTP "
				  "403: permission denied");
	cr_assert_eq(err.code, PHX_E_PERM, "wrap must not change the code");
}

Test(err, wrapping_nothing_is_an_internal_error)
{
	struct phx_err err = PHX_ERR_INIT;

	phx_err_wrap(&err, "context");
	cr_assert_eq(err.code, PHX_E_INTERNAL);
	cr_assert_eq(phx_err_exit_status(&err), PHX_EXIT_SOFTWARE);
}

Test(err, long_messages_are_truncated_not_overflowed)
{
	struct phx_err err = PHX_ERR_INIT;
	static char big[PHX_ERR_MSG_MAX * 2];

	memset(big, 'a', sizeof(big) - 1);
	phx_err_set(&err, PHX_E_RUNTIME, "%s", big);
	cr_assert_eq(strlen(err.msg), PHX_ERR_MSG_MAX - 1);
	phx_err_wrap(&err, "ctx");
	cr_assert_eq(strncmp(err.msg, "ctx: aaa", 8), 0);
	cr_assert_eq(strlen(err.msg), PHX_ERR_MSG_MAX - 1);
}

Test(err, null_err_is_allowed)
{
	cr_assert_eq(phx_err_set(NULL, PHX_E_IO, "dropped"), -1);
	cr_assert_eq(phx_err_wrap(NULL, "dropped"), -1);
	cr_assert_not(phx_err_is_set(NULL));
	cr_assert_eq(phx_err_exit_status(NULL), PHX_EXIT_OK);
}

Test(err, clear_resets)
{
	struct phx_err err = PHX_ERR_INIT;

	phx_err_set(&err, PHX_E_IO, "x");
	err.http_status = 500;
	phx_err_clear(&err);
	cr_assert_not(phx_err_is_set(&err));
	cr_assert_eq(err.http_status, 0);
	cr_assert_str_eq(err.msg, "");
	phx_err_set(&err, PHX_E_NET, "second");
	cr_assert_eq(err.code, PHX_E_NET);
}

Test(err, exit_status_mapping)
{
	static const struct {
		enum phx_err_code code;
		int status;
	} map[] = {
		{PHX_E_NONE, 0},    {PHX_E_INPUT, 2},   {PHX_E_USAGE, 2},   {PHX_E_RUNTIME, 1},
		{PHX_E_IO, 1},	    {PHX_E_NET, 1},	{PHX_E_TLS, 1},	    {PHX_E_AUTH, 1},
		{PHX_E_PERM, 1},    {PHX_E_API, 1},	{PHX_E_TASK, 1},    {PHX_E_TIMEOUT, 1},
		{PHX_E_CONFLICT, 1}, {PHX_E_NOTFOUND, 1}, {PHX_E_VERIFY, 1}, {PHX_E_GUEST, 1},
		{PHX_E_NOMEM, 1},   {PHX_E_INTERNAL, 70}, {PHX_E_INTERRUPTED, 1}, {PHX_E_BUSY, 75},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;

		err.code = map[i].code;
		cr_assert_eq(phx_err_exit_status(&err), map[i].status, "code %s",
			     phx_err_code_name(map[i].code));
	}
}

Test(err, code_names)
{
	cr_assert_str_eq(phx_err_code_name(PHX_E_INPUT), "input");
	cr_assert_str_eq(phx_err_code_name(PHX_E_INTERNAL), "internal");
	cr_assert_str_eq(phx_err_code_name((enum phx_err_code)999), "unknown");
}

Test(err, rollback_report_follows_the_root_cause)
{
	struct phx_err err = PHX_ERR_INIT;
	char long_line[600];

	phx_err_set(&err, PHX_E_TASK, "resize failed");
	cr_assert_eq(phx_err_append_report(&err, "rolled back",
					   "removed VM 9000 on node 'pve1'\n"
					   "could not remove local:import/x.qcow2: HTTP 500\n"),
		     -1);
	cr_assert_str_eq(err.msg, "resize failed (rolled back: removed VM 9000 on node 'pve1'; "
				  "could not remove local:import/x.qcow2: HTTP 500)");
	cr_assert_eq(err.code, PHX_E_TASK);
	/* an empty report adds nothing; a long one is cut, the root cause kept */
	phx_err_append_report(&err, "rolled back", "");
	cr_assert(strstr(err.msg, "HTTP 500)") != NULL);
	memset(long_line, 'x', sizeof(long_line) - 1);
	long_line[sizeof(long_line) - 1] = '\0';
	for (int i = 0; i < 4; i++)
		phx_err_append_report(&err, "more", long_line);
	cr_assert_eq(strncmp(err.msg, "resize failed (rolled back: ", 28), 0);
	cr_assert_lt(strlen(err.msg), sizeof(err.msg));
}
