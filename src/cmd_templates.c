/* cmd_templates: --list-templates and --prune over the template version series. */
#include "cmd.h"

int cmd_list_templates(const struct cli_opts *opts, struct phx_err *err)
{
	(void)opts;
	return phx_err_set(err, PHX_E_NOTIMPL, "--list-templates is not implemented yet");
}

int cmd_prune(const struct cli_opts *opts, struct phx_err *err)
{
	(void)opts;
	return phx_err_set(err, PHX_E_NOTIMPL, "--prune is not implemented yet");
}
