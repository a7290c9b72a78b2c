/* Unit tests for cli: argv arrays -> struct cli_opts; usage errors are PHX_E_USAGE and name
 * the offending argument; the help text covers every option. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define ARGV(...) ((char *[]){"orchestrator", __VA_ARGS__, NULL})
#define ARGC(argv) ((int)(sizeof(argv) / sizeof(char *)) - 1)

static int parse(int argc, char **argv, struct cli_opts *o, struct phx_err *err)
{
	return cli_parse(argc, argv, o, err);
}

#define PARSE(o, err, ...)                                                                          \
	parse(ARGC(ARGV(__VA_ARGS__)), ARGV(__VA_ARGS__), o, err)

Test(cli, vmids_are_parsed_for_deploy)
{
	struct cli_opts o;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(PARSE(&o, &err, "--jobs", "4", "8001", "8002"), 0, "%s", err.msg);
	cr_assert_eq(o.command, CLI_CMD_DEPLOY);
	cr_assert_eq(o.n_vmids, 2);
	cr_assert_eq(o.vmids[0], 8001);
	cr_assert_eq(o.vmids[1], 8002);
	cr_assert_eq(o.jobs, 4);
	cr_assert_not(o.all);
	cr_assert_not_null(o.config_path);
	cr_assert_not(o.config_explicit);
	cli_opts_release(&o);
	cli_opts_release(&o); /* idempotent */
}

Test(cli, provision_collects_template_names)
{
	struct cli_opts o;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(PARSE(&o, &err, "--config", "/x/c.json", "--provision-template", "--rebuild",
			   "ubuntu-noble", "debian-12"),
		     0, "%s", err.msg);
	cr_assert_eq(o.command, CLI_CMD_PROVISION);
	cr_assert(o.rebuild);
	cr_assert_eq(o.n_names, 2);
	cr_assert_str_eq(o.names[0], "ubuntu-noble");
	cr_assert_str_eq(o.names[1], "debian-12");
	cr_assert_str_eq(o.config_path, "/x/c.json");
	cr_assert(o.config_explicit);
	cli_opts_release(&o);
}

Test(cli, provision_without_names_means_all)
{
	struct cli_opts o;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(PARSE(&o, &err, "--provision-template"), 0, "%s", err.msg);
	cr_assert_eq(o.command, CLI_CMD_PROVISION);
	cr_assert_eq(o.n_names, 0);
	cli_opts_release(&o);
}

Test(cli, check_with_json_output)
{
	struct cli_opts o;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(PARSE(&o, &err, "--check", "--output", "json", "-q"), 0, "%s", err.msg);
	cr_assert_eq(o.command, CLI_CMD_CHECK);
	cr_assert_eq(o.output, CLI_OUTPUT_JSON);
	cr_assert(o.quiet);
	cli_opts_release(&o);
}

Test(cli, destroy_takes_one_vmid)
{
	struct cli_opts o;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(PARSE(&o, &err, "--destroy", "8001", "--dry-run"), 0, "%s", err.msg);
	cr_assert_eq(o.command, CLI_CMD_DESTROY);
	cr_assert_eq(o.n_vmids, 1);
	cr_assert_eq(o.vmids[0], 8001);
	cr_assert(o.dry_run);
	cli_opts_release(&o);
}

Test(cli, remove_template_takes_one_name_or_vmid)
{
	struct cli_opts o;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(PARSE(&o, &err, "--remove-template", "tpl-20261201-001", "--dry-run",
			   "--output", "json"),
		     0, "%s", err.msg);
	cr_assert_eq(o.command, CLI_CMD_REMOVE_TEMPLATE);
	cr_assert_eq(o.n_names, 1);
	cr_assert_str_eq(o.names[0], "tpl-20261201-001");
	cr_assert(o.dry_run);
	cli_opts_release(&o);
	/* given twice, the last one counts */
	cr_assert_eq(PARSE(&o, &err, "--remove-template", "a", "--remove-template", "9100"), 0,
		     "%s", err.msg);
	cr_assert_eq(o.n_names, 1);
	cr_assert_str_eq(o.names[0], "9100");
	cli_opts_release(&o);
}

Test(cli, all_deploys_everything)
{
	struct cli_opts o;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(PARSE(&o, &err, "--all", "-v", "-v"), 0, "%s", err.msg);
	cr_assert_eq(o.command, CLI_CMD_DEPLOY);
	cr_assert(o.all);
	cr_assert_eq(o.n_vmids, 0);
	cr_assert_eq(o.verbose, 2);
	cli_opts_release(&o);
}

Test(cli, help_and_version_win)
{
	struct cli_opts o;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(PARSE(&o, &err, "--help"), 0);
	cr_assert_eq(o.command, CLI_CMD_HELP);
	cli_opts_release(&o);
}

Test(cli, version)
{
	struct cli_opts o;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(PARSE(&o, &err, "-V"), 0);
	cr_assert_eq(o.command, CLI_CMD_VERSION);
	cli_opts_release(&o);
}

struct usage_case {
	const char *argv[6];
	const char *needle; /* the argument the message must name */
};

/* indexes into this table are the parameters (no pointers cross Criterion's process boundary) */
static const struct usage_case usage_cases[] = {
	{{"--bogus"}, "'--bogus'"},
	{{"8001", "abc"}, "'abc'"},
	{{"99"}, "'99'"},
	{{"1000000000"}, "'1000000000'"},
	{{"-5"}, "'-5'"},
	{{"--jobs", "0", "--all"}, "'0'"},
	{{"--jobs", "many", "--all"}, "--jobs"},
	{{"--output", "yaml", "--all"}, "'yaml'"},
	{{"--destroy", "x"}, "'x'"},
	{{"--destroy"}, "--destroy"},
	{{"--remove-template", "99"}, "'99'"},
	{{"--remove-template", ""}, "expected a template name or VMID"},
	{{"--remove-template"}, "--remove-template"},
	{{"--prune", "--remove-template", "x"}, "--remove-template cannot be combined with --prune"},
	{{"--remove-template", "x", "extra"}, "'extra'"},
	{{"--config"}, "--config"},
	{{"--check", "--prune"}, "--check"},
	{{"--check", "8001"}, "'8001'"},
	{{"--all", "8001"}, "--all"},
	{{"--rebuild", "--all"}, "--rebuild"},
	{{"--quiet", "--verbose", "--all"}, "--quiet"},
	{{"--check", "--all"}, "--all"},
	{{"--check", "--wait-lock", "5"}, "--provision-template, --prune, --destroy, --recover or --remove-template"},
	{{"--wait-lock", "soon", "--all"}, "--wait-lock"},
	{{"--wait-lock", "86401", "--all"}, "'86401'"},
	{{NULL}, "nothing to do"},
};

#define N_USAGE (sizeof(usage_cases) / sizeof(usage_cases[0]))

ParameterizedTestParameters(cli, usage_errors_name_the_argument)
{
	static size_t idx[N_USAGE];

	for (size_t i = 0; i < N_USAGE; i++)
		idx[i] = i;
	return cr_make_param_array(size_t, idx, N_USAGE);
}

ParameterizedTest(size_t *i, cli, usage_errors_name_the_argument)
{
	const struct usage_case *c = &usage_cases[*i];
	char *argv[8] = {"orchestrator"};
	int argc = 1;
	struct cli_opts o = {.jobs = 12345};
	struct phx_err err = PHX_ERR_INIT;

	for (size_t k = 0; c->argv[k]; k++)
		argv[argc++] = (char *)c->argv[k];
	cr_assert_eq(cli_parse(argc, argv, &o, &err), -1, "case %zu accepted", *i);
	cr_assert_eq(err.code, PHX_E_USAGE, "case %zu: code %d", *i, err.code);
	cr_assert(strstr(err.msg, c->needle), "case %zu: '%s' not in '%s'", *i, c->needle,
		  err.msg);
	cr_assert_eq(o.jobs, 12345, "output written on failure");
}

Test(cli, wait_lock_goes_with_the_commands_that_lock)
{
	char *argv[] = {"orchestrator", "--wait-lock", "30", "--provision-template"};
	struct cli_opts o;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(parse(4, argv, &o, &err), 0, "%s", err.msg);
	cr_assert_eq(o.wait_lock_s, 30);
	cli_opts_release(&o);
}

Test(cli, help_mentions_every_option)
{
	static const char *const opts[] = {
		"--provision-template", "--rebuild", "--validate", "--all",    "--check",
		"--list-templates",	"--prune",   "--destroy",  "--config", "--dry-run",
		"--output",		"--jobs",    "--insecure", "--quiet",  "--verbose",
		"--version",		"--help",    "--remove-template",
	};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cli_print_help(f);
	fclose(f);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		cr_assert(strstr(text, opts[i]), "help lacks %s", opts[i]);
	cr_assert(strstr(text, "Exit status"), "help lacks exit statuses");
	cr_assert_null(strstr(text, "--man"), "hidden option shown");
	free(text);
}

Test(cli, man_page_is_roff_with_every_section)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cli_print_man(f);
	fclose(f);
	cr_assert_eq(strncmp(text, ".\\\"", 3), 0);
	cr_assert(strstr(text, ".SH OPTIONS") && strstr(text, ".SH EXIT STATUS") &&
		  strstr(text, ".SH ENVIRONMENT"));
	cr_assert(strstr(text, "\\-\\-provision\\-template"), "options not escaped for roff");
	free(text);
}

Test(cli, help_lists_the_tls_variables_and_man_has_the_admin_sections)
{
	static const char *const man_sections[] = {".SH ENVIRONMENT", ".SH FILES", ".SH EXAMPLES",
						   ".SH SEE ALSO", ".SH EXIT STATUS"};
	char *help = NULL, *man = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&help, &len);

	cli_print_help(f);
	fclose(f);
	cr_assert(strstr(help, "\n  PVE_TLS_FINGERPRINT\n"), "help lacks PVE_TLS_FINGERPRINT");
	cr_assert(strstr(help, "\n  PVE_TLS_CA_FILE\n"), "help lacks PVE_TLS_CA_FILE");
	f = open_memstream(&man, &len);
	cli_print_man(f);
	fclose(f);
	for (size_t i = 0; i < sizeof(man_sections) / sizeof(man_sections[0]); i++)
		cr_assert(strstr(man, man_sections[i]), "man page lacks %s", man_sections[i]);
	/* an example is shown as typed: no fill, and the options escaped */
	cr_assert(strstr(man, ".nf\norchestrator \\-\\-check\n"), "example not verbatim");
	cr_assert(strstr(man, "/etc/phoenix/phoenix_vm_configs.json"), "FILES lacks the config");
	free(help);
	free(man);
}

Test(cli, unknown_long_option_gets_a_did_you_mean_hint)
{
	static const struct {
		char arg[32];
		const char *msg;
	} cases[] = {
		{"--dryrun", "unknown option '--dryrun'; did you mean '--dry-run'?"},
		{"--provison-template", "unknown option '--provison-template'; did you mean "
					"'--provision-template'?"},
		{"--ouput=json", "unknown option '--ouput=json'; did you mean '--output'?"},
		{"--banana", "unknown option '--banana'"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cli_opts o;
		struct phx_err err = PHX_ERR_INIT;
		char arg[32];

		memcpy(arg, cases[i].arg, sizeof(arg)); /* getopt may permute argv */
		cr_assert_eq(PARSE(&o, &err, "8001", arg), -1, "%s", arg);
		cr_assert_eq(err.code, PHX_E_USAGE);
		cr_assert_str_eq(err.msg, cases[i].msg);
	}
}

Test(cli, missing_option_argument_and_clustered_unknown_flag_are_named)
{
	struct cli_opts o;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(PARSE(&o, &err, "8001", "--config"), -1);
	cr_assert_eq(err.code, PHX_E_USAGE);
	cr_assert_str_eq(err.msg, "option '--config' needs an argument");
	phx_err_clear(&err);
	cr_assert_eq(PARSE(&o, &err, "-qZ", "8001"), -1);
	cr_assert_str_eq(err.msg, "unknown option '-Z'");
	phx_err_clear(&err);
	cr_assert_eq(PARSE(&o, &err, "8001", "--dry-run", "--output", "json"), 0, "%s", err.msg);
	cr_assert(o.dry_run);
	cr_assert_eq(o.n_vmids, 1);
	cli_opts_release(&o);
}
