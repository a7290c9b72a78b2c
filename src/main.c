/* main: parse argv, set up logging and libcurl, run one command from the table, print the
 * error and map it to the exit status. The only place that prints errors or exits. */
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clock.h"
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
	{CLI_CMD_RECOVER, &cmd_recover_entry},
	{CLI_CMD_REMOVE_TEMPLATE, &cmd_remove_template_entry},
	{CLI_CMD_DIFF, &cmd_diff_entry},
	{CLI_CMD_PUBLISH, &cmd_publish_entry},
	{CLI_CMD_CAPTURE, &cmd_capture_entry},
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

static void main_on_stop(int signo)
{
	clk_signal_note(signo);
}

/* SIGINT, SIGTERM, SIGHUP: the first one asks the run to stop and roll back (clock.h); the
 * handler resets itself, so a second one ends the process at once. */
static void main_handle_stop_signals(void)
{
	static const int signals[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = main_on_stop;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		sigaction(signals[i], &sa, NULL);
}

static int main_print_error(const struct phx_err *err)
{
	int status = phx_err_exit_status(err);

	if (clk_signal())
		status = 128 + clk_signal();
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
	main_handle_stop_signals();
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
