/* cmd_check: --check validates the config and prints a summary; contacts no server. */
#include "cmd.h"

int cmd_check(const struct cli_opts *opts, struct phx_err *err)
{
	(void)opts;
	return phx_err_set(err, PHX_E_NOTIMPL, "--check is not implemented yet");
}
