/* main: parse argv, set up logging and libcurl, run one command from the table, print the
 * error and map it to the exit status. The only place that prints errors or exits. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "cmd.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "session.h"

static const struct {
	enum cli_command id;
	const struct cmd_entry *entry;
} commands[] = {
	{CLI_CMD_CHECK, &cmd_check_entry},   {CLI_CMD_PROVISION, &cmd_provision_entry},
	{CLI_CMD_DEPLOY, &cmd_deploy_entry}, {CLI_CMD_LIST_TEMPLATES, &cmd_list_templates_entry},
	{CLI_CMD_PRUNE, &cmd_prune_entry},   {CLI_CMD_DESTROY, &cmd_destroy_entry},
};

/* Config first (exit 2 on bad input, nothing sent), then the command. */
static void main_run(const struct cmd_entry *c, const struct cli_opts *opts, struct phx_err *err)
{
	struct session s;

	if (session_load(opts, &s, err) < 0)
		return;
	s.lock = c->needs & CMD_LOCK;
	if (!(c->needs & CMD_SERVER) || http_global_init(err) == 0) {
		c->run(&s, err);
		if (c->needs & CMD_SERVER)
			http_global_cleanup();
	}
	session_release(&s);
}

static int main_print_error(const struct phx_err *err)
{
	int status = phx_err_exit_status(err);

	log_error("%s", err->msg);
	if (err->code == PHX_E_USAGE)
		fprintf(stderr, "Try 'orchestrator --help' for more information.\n");
	return status;
}

int main(int argc, char **argv)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cli_opts opts;
	int status = PHX_EXIT_OK;

	if (cli_parse(argc, argv, &opts, &err) < 0)
		return main_print_error(&err);
	log_setup(opts.verbose, opts.quiet);
	switch (opts.command) {
	case CLI_CMD_HELP:
		cli_print_help(stdout);
		goto out;
	case CLI_CMD_VERSION:
		printf("orchestrator %s\n", cli_version());
		goto out;
	case CLI_CMD_MAN:
		cli_print_man(stdout);
		goto out;
	default:
		break;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (commands[i].id != opts.command)
			continue;
		main_run(commands[i].entry, &opts, &err);
		break;
	}
	if (phx_err_is_set(&err))
		status = main_print_error(&err);
out:
	if (fflush(stdout) != 0 && status == PHX_EXIT_OK) {
		perror("orchestrator: write error on stdout");
		status = PHX_EXIT_FAILURE;
	}
	cli_opts_release(&opts);
	return status;
}
