/* cli: argv -> struct cli_opts, and the help text and man page generated from the same option
 * table. Knows nothing about what the commands do. */
#ifndef PHX_CLI_H
#define PHX_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"

enum cli_command {
	CLI_CMD_DEPLOY = 0, /* VMID... or --all */
	CLI_CMD_PROVISION,
	CLI_CMD_CHECK,
	CLI_CMD_LIST_TEMPLATES,
	CLI_CMD_PRUNE,
	CLI_CMD_DESTROY,
	CLI_CMD_RECOVER,
	CLI_CMD_REMOVE_TEMPLATE, /* names[0]: the NAME or VMID */
	CLI_CMD_DIFF,		 /* names[0], names[1]: two versions, NAME or VMID */
	CLI_CMD_PUBLISH,	 /* publish_version, and names[0]: DIR */
	CLI_CMD_CAPTURE,	 /* vmids[0] --as capture_as */
	CLI_CMD_HELP,
	CLI_CMD_VERSION,
	CLI_CMD_MAN, /* hidden: print the man page (used to build docs/orchestrator.1) */
};

enum cli_output { CLI_OUTPUT_TEXT = 0, CLI_OUTPUT_JSON };

struct cli_opts {
	enum cli_command command;
	char *config_path; /* owned; resolved default when --config is absent */
	bool config_explicit;
	bool all, dry_run, rebuild, validate, insecure, quiet;
	bool allow_disk_removal; /* deploy: data disks beyond `disks` are removed */
	int verbose;
	unsigned jobs;
	unsigned long wait_lock_s; /* --wait-lock: how long to wait for another run's lock */
	char *metrics_file;	   /* owned; --metrics-file PATH, NULL when not given */
	char *packages_series;	   /* owned; --list-templates --packages SERIES, or NULL */
	char *capture_as;	   /* owned; --capture VMID --as SERIES, or NULL */
	char *publish_version;	   /* owned; --publish NAME|VMID (DIR is names[0]), or NULL */
	enum cli_output output;
	char **names; /* owned copies; template names after --provision-template, the one
		       * NAME|VMID of --remove-template, or the two of --diff */
	size_t n_names;
	unsigned long *vmids; /* owned; VMIDs for deploy, or the one for --destroy */
	size_t n_vmids;
};

#define CLI_DEFAULT_CONFIG "phoenix_vm_configs.json"
#define CLI_SYSTEM_CONFIG "/etc/phoenix/phoenix_vm_configs.json"

/* Parses argv. On a usage error returns -1 with a PHX_E_USAGE err naming the bad argument.
 * On success *ret is filled; release with cli_opts_release(). */
int cli_parse(int argc, char **argv, struct cli_opts *ret, struct phx_err *err);
void cli_opts_release(struct cli_opts *opts);

void cli_print_help(FILE *out);
void cli_print_man(FILE *out);
const char *cli_version(void);

#endif
