/* cmd_deploy: VMID... / --all and --destroy, Flow 2 of DESIGN.md. */
#include "cmd.h"

int cmd_deploy(const struct cli_opts *opts, struct phx_err *err)
{
	(void)opts;
	return phx_err_set(err, PHX_E_NOTIMPL, "deploying VMs is not implemented yet");
}

int cmd_destroy(const struct cli_opts *opts, struct phx_err *err)
{
	(void)opts;
	return phx_err_set(err, PHX_E_NOTIMPL, "--destroy is not implemented yet");
}
