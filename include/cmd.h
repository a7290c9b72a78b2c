/* cmd: one function per command, chosen by main from a table. Commands compose the domain
 * modules, own the undo transaction, and write results to stdout (diagnostics to stderr). */
#ifndef PHX_CMD_H
#define PHX_CMD_H

#include "cli.h"
#include "err.h"

int cmd_check(const struct cli_opts *opts, struct phx_err *err);
int cmd_provision(const struct cli_opts *opts, struct phx_err *err);
int cmd_deploy(const struct cli_opts *opts, struct phx_err *err);
int cmd_list_templates(const struct cli_opts *opts, struct phx_err *err);
int cmd_prune(const struct cli_opts *opts, struct phx_err *err);
int cmd_destroy(const struct cli_opts *opts, struct phx_err *err);

struct plan;
/* Prints the plans of a --dry-run (text, or one JSON document with --output json). */
int cmd_plan_print(const struct cli_opts *opts, const char *command,
		   const struct plan *const *plans, size_t n, struct phx_err *err);

#endif
