/* cmd_provision: --provision-template, Flow 1 of DESIGN.md. */
#include "cmd.h"

int cmd_provision(const struct cli_opts *opts, struct phx_err *err)
{
	(void)opts;
	return phx_err_set(err, PHX_E_NOTIMPL, "--provision-template is not implemented yet");
}
