/* cli: one option table feeds getopt_long, --help and the man page. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#ifndef PHX_VERSION
#define PHX_VERSION "0.0.0-dev"
#endif

enum {
	OPT_PROVISION = 256,
	OPT_LIST_TEMPLATES,
	OPT_PRUNE,
	OPT_RECOVER,
	OPT_DESTROY,
	OPT_REBUILD,
	OPT_VALIDATE,
	OPT_DRY_RUN,
	OPT_OUTPUT,
	OPT_INSECURE,
	OPT_MAN,
	OPT_WAIT_LOCK,
	OPT_METRICS_FILE,
	OPT_REMOVE_TEMPLATE,
	OPT_PACKAGES,
	OPT_DIFF,
	OPT_PUBLISH,
	OPT_CAPTURE,
	OPT_AS,
	OPT_ALLOW_DISK_REMOVAL,
};

#define CLI_FOR(cmd) (1u << (cmd))

struct cli_option {
	const char *name;
	int has_arg;
	int val;
	const char *arg; /* argument name in help, or NULL */
	const char *help;
	unsigned only; /* CLI_FOR() bits of the commands the option goes with; 0: any */
};

/* How a command is named in "--x only goes with ..." */
static const char *const cli_command_names[] = {
	[CLI_CMD_DEPLOY] = "deploying VMs",
	[CLI_CMD_PROVISION] = "--provision-template",
	[CLI_CMD_CHECK] = "--check",
	[CLI_CMD_LIST_TEMPLATES] = "--list-templates",
	[CLI_CMD_PRUNE] = "--prune",
	[CLI_CMD_DESTROY] = "--destroy",
	[CLI_CMD_RECOVER] = "--recover",
	[CLI_CMD_REMOVE_TEMPLATE] = "--remove-template",
	[CLI_CMD_DIFF] = "--diff",	    [CLI_CMD_PUBLISH] = "--publish",
};

static const struct cli_option cli_options[] = {
	{"provision-template", no_argument, OPT_PROVISION, NULL,
	 "build the templates named by the NAME arguments (all templates when none is named) from "
	 "their cloud images; an existing template of ours is left alone", 0},
	{"rebuild", no_argument, OPT_REBUILD, NULL,
	 "with --provision-template: build a new version even when the template exists",
	 CLI_FOR(CLI_CMD_PROVISION)},
	{"validate", no_argument, OPT_VALIDATE, NULL,
	 "with --provision-template: boot a throwaway clone and check cloud-init and the guest "
	 "agent (a container: its eth0 gets an IPv4 address) before tagging the template "
	 "'validated'", CLI_FOR(CLI_CMD_PROVISION)},
	{"all", no_argument, 'a', NULL, "deploy every VM in the config", CLI_FOR(CLI_CMD_DEPLOY)},
	{"allow-disk-removal", no_argument, OPT_ALLOW_DISK_REMOVAL, NULL,
	 "when deploying: a data disk an existing VM has beyond its config's 'disks' is detached "
	 "and its volume deleted (never the system disk); without it such a disk is kept and the "
	 "plan says so", CLI_FOR(CLI_CMD_DEPLOY)},
	{"check", no_argument, 'c', NULL,
	 "validate the config, print a summary and exit; contacts no server", 0},
	{"list-templates", no_argument, OPT_LIST_TEMPLATES, NULL,
	 "list the templates this tool built, with versions, dates and validation state", 0},
	{"prune", no_argument, OPT_PRUNE, NULL,
	 "delete old template versions beyond each series' keep count; templates still used by "
	 "linked clones are kept", 0},
	{"destroy", required_argument, OPT_DESTROY, "VMID",
	 "stop and remove a VM this tool created, with its cloud-init seed ISO", 0},
	{"remove-template", required_argument, OPT_REMOVE_TEMPLATE, "NAME|VMID",
	 "remove a template this tool built, given by VMID, by its name or by a fixed-VMID "
	 "template's name in the config; refused while linked clones use it", 0},
	{"packages", required_argument, OPT_PACKAGES, "SERIES",
	 "with --list-templates: each version of the series with its package count and the "
	 "packages that changed since the version before it",
	 CLI_FOR(CLI_CMD_LIST_TEMPLATES)},
	{"diff", no_argument, OPT_DIFF, NULL,
	 "--diff V1 V2: the packages that changed between two template versions (names or "
	 "VMIDs): changed, added, removed", 0},
	{"capture", required_argument, OPT_CAPTURE, "VMID",
	 "--capture VMID --as SERIES: turn a running VM of ours into the next template version of "
	 "SERIES: reset its identity through the guest agent, shut it down, full-clone it, "
	 "convert the clone; the VM itself stays and is started again", 0},
	{"as", required_argument, OPT_AS, "SERIES",
	 "with --capture: the config template (with versions) the captured version joins",
	 CLI_FOR(CLI_CMD_CAPTURE)},
	{"recover", no_argument, OPT_RECOVER, NULL,
	 "only finish what an interrupted run left half-made (every run does this first): remove "
	 "its half-built VMs, uploads and seed ISOs as its journal lists them", 0},
	{"config", required_argument, 'C', "FILE",
	 "config file (default ./" CLI_DEFAULT_CONFIG ", then " CLI_SYSTEM_CONFIG ")", 0},
	{"publish", required_argument, OPT_PUBLISH, "NAME|VMID",
	 "--publish NAME|VMID DIR: write a template version's customized image, SHA256SUMS, "
	 "build record and package list to DIR/<template>/<version>, for templates with "
	 "'artifact' on other clusters",
	 0},
	{"dry-run", no_argument, OPT_DRY_RUN, NULL,
	 "read only, then print the plan: each change (old -> new), its request and undo; with --output json as a document (docs/plan-json.md)", 0},
	{"output", required_argument, OPT_OUTPUT, "FORMAT",
	 "result format on stdout: text (default) or json", 0},
	{"jobs", required_argument, 'j', "N", "work on up to N VMs in parallel (default 1)", 0},
	{"wait-lock", required_argument, OPT_WAIT_LOCK, "SECONDS",
	 "when another run holds the lock, wait up to SECONDS for it instead of exiting 75 at once",
	 CLI_FOR(CLI_CMD_PROVISION) | CLI_FOR(CLI_CMD_DEPLOY) | CLI_FOR(CLI_CMD_PRUNE) |
		 CLI_FOR(CLI_CMD_DESTROY) | CLI_FOR(CLI_CMD_RECOVER) |
		 CLI_FOR(CLI_CMD_REMOVE_TEMPLATE)},
	{"metrics-file", required_argument, OPT_METRICS_FILE, "PATH",
	 "write Prometheus text-format metrics of the run (success, last success time, phase "
	 "times, what changed) to PATH atomically, for node_exporter's textfile collector",
	 CLI_FOR(CLI_CMD_PROVISION)},
	{"insecure", no_argument, OPT_INSECURE, NULL,
	 "do not verify the server's TLS certificate (prefer tls.fingerprint in the config)", 0},
	{"quiet", no_argument, 'q', NULL, "print only warnings and errors on stderr", 0},
	{"verbose", no_argument, 'v', NULL,
	 "more detail on stderr; twice adds an HTTP trace with secrets redacted", 0},
	{"version", no_argument, 'V', NULL, "print the version and exit", 0},
	{"help", no_argument, 'h', NULL, "print this help and exit", 0},
	{"man", no_argument, OPT_MAN, NULL, NULL, 0}, /* hidden */
};

#define N_OPTIONS (sizeof(cli_options) / sizeof(cli_options[0]))

static const char cli_usage[] =
	"orchestrator [OPTION...] VMID...\n"
	"orchestrator [OPTION...] --all\n"
	"orchestrator [OPTION...] --provision-template [NAME...]\n"
	"orchestrator [OPTION...] --check | --list-templates | --prune | --recover | --destroy VMID\n"
	"orchestrator [OPTION...] --remove-template NAME|VMID\n";

static const char cli_description[] =
	"Builds Proxmox VE templates from Ubuntu cloud images and clones configured VMs from them, "
	"through the Proxmox API with an API token only.";

/* A name (or names) and what it means: the environment, files and examples sections of
 * --help and the man page. */
struct cli_entry {
	const char *name;
	const char *help;
};

static const struct cli_entry cli_environment[] = {
	{"PVE_API_URL", "the API URL, instead of proxmox.api_url"},
	{"PVE_TOKEN_ID", "the API token ID (USER@REALM!TOKENNAME), instead of proxmox.token_id"},
	{"PVE_TOKEN_SECRET",
	 "the API token secret; wins over a secret file; removed from the environment once read, "
	 "so no child process sees it. The secret is never read from the command line"},
	{"PVE_TOKEN_SECRET_FILE",
	 "a file holding the token secret on its first line, instead of "
	 "proxmox.token_secret_file; it must not be readable by group or others"},
	{"PVE_NODE", "the node to work on, instead of proxmox.node and defaults.node"},
	{"PVE_TLS_FINGERPRINT",
	 "the SHA-256 fingerprint of the server's certificate to pin ('AB:CD:...', as "
	 "'pvenode cert info' prints it), instead of proxmox.tls.fingerprint"},
	{"PVE_TLS_CA_FILE",
	 "a PEM CA bundle to verify the server with, instead of proxmox.tls.ca_file"},
	{"PROXMOX_VE_ENDPOINT", "as PVE_API_URL (the Terraform bpg provider's name); "
				"PVE_API_URL wins"},
	{"PROXMOX_VE_API_TOKEN",
	 "'USER@REALM!TOKENNAME=SECRET', the token ID and secret in one (the bpg provider's "
	 "form); PVE_TOKEN_ID, PVE_TOKEN_SECRET and a secret file win"},
	{"PHX_CACHE_DIR",
	 "the directory of the image cache, the run lock and the recovery journal, instead of "
	 "the default (see FILES in the man page)"},
	{"XDG_CACHE_HOME, HOME",
	 "the default cache is $XDG_CACHE_HOME/phoenix/images, else ~/.cache/phoenix/images; "
	 "root without XDG_CACHE_HOME uses /var/cache/phoenix/images"},
	{"PHX_CUSTOMIZE_STALL_S",
	 "seconds without progress after which the image customization appliance is stopped "
	 "(1 to 86400)"},
	{"LIBGUESTFS_BACKEND, LIBGUESTFS_BACKEND_SETTINGS",
	 "libguestfs's own: a backend other than 'direct', or 'force_tcg' to never use KVM"},
	{"SUPERMIN_KERNEL", "the kernel libguestfs builds its appliance from (default: the "
			    "newest /boot/vmlinuz-*)"},
	{"TMPDIR", "where cloud-init seed ISOs are written before the upload (default /tmp)"},
	{"NO_COLOR", "set: no colour on stderr"},
	{"PATH", "where gpg is found for signature_url checks (it gets PATH and LC_ALL, no other "
		 "variable)"},
};

static const struct cli_entry cli_files[] = {
	{"./" CLI_DEFAULT_CONFIG, "the config, when --config is not given and this file exists"},
	{CLI_SYSTEM_CONFIG, "the config otherwise, and the one the systemd service reads"},
	{"/etc/phoenix/token.secret",
	 "the API token secret the example config names in proxmox.token_secret_file: one line, "
	 "owner root, mode 0600; the systemd service loads the same file as a credential"},
	{"/var/cache/phoenix/images/, ~/.cache/phoenix/images/",
	 "the image cache (downloaded and customized images) for root and for other users; "
	 "PHX_CACHE_DIR or XDG_CACHE_HOME move it. Clearing it costs a download and a "
	 "customization at the next build"},
	{"CACHE/orchestrator.lock",
	 "the run lock in that directory: one changing run at a time (exit 75, or --wait-lock)"},
	{"CACHE/journal/",
	 "the recovery journal: what a run has created and not yet committed; the next run, or "
	 "--recover, removes what a killed run left"},
	{"/usr/share/phoenix/features/, /usr/local/share/phoenix/features/",
	 "the built-in feature scripts (docker.sh) of the Debian package and of 'make install'"},
	{"/usr/lib/systemd/system/phoenix-orchestrator.{service,timer}",
	 "the monthly rebuild (--provision-template, then --prune); enable it with 'systemctl "
	 "enable --now phoenix-orchestrator.timer'"},
};

/* Shell commands, one per line; the name is what they do. */
static const struct cli_entry cli_examples[] = {
	{"Check a config, then build its templates (the first build downloads and customizes the "
	 "image; a rerun does nothing):",
	 "orchestrator --check\n"
	 "orchestrator --provision-template"},
	{"Deploy two VMs, or every VM in the config four at a time; a rerun changes only what "
	 "differs:",
	 "orchestrator 8001 8002\n"
	 "orchestrator --all --jobs 4"},
	{"See what a run would change without changing anything:",
	 "orchestrator --dry-run --all"},
	{"Rebuild monthly from /etc/cron.d with the system config, waiting for a run that holds "
	 "the lock (the systemd timer does the same):",
	 "0 3 1 * * root orchestrator --config /etc/phoenix/phoenix_vm_configs.json "
	 "--wait-lock 3600 --provision-template && orchestrator --config "
	 "/etc/phoenix/phoenix_vm_configs.json --wait-lock 3600 --prune"},
	{"In CI, with the secret from the CI's secret store and a JSON result to parse "
	 "(exit 2: bad input, nothing was sent):",
	 "export PVE_TOKEN_SECRET_FILE=\"$CI_SECRET_FILE\"\n"
	 "orchestrator --config ci.json --all --output json > result.json"},
};

static const char cli_see_also[] =
	"pveum(1), pvesm(1), pvesh(1), pvenode(1), qm(1), virt-customize(1), systemd.timer(5); "
	"docs/ in the source tree, installed as /usr/share/doc/phoenix-orchestrator/ by the "
	"Debian package";

#define N_ENTRIES(a) (sizeof(a) / sizeof((a)[0]))

static const char cli_exit_status[] =
	"0 success; 1 runtime failure (what was created was removed again); 2 invalid usage or "
	"config (nothing was sent to the server); 70 internal error; 75 another run holds the lock "
	"(nothing was done; try again later); 128+N stopped by signal N "
	"(SIGINT 130, SIGTERM 143: the task in flight ends, then what the run created is removed; "
	"a second signal stops at once).";

const char *cli_version(void)
{
	return PHX_VERSION;
}

static void cli_print_wrapped(FILE *out, const char *text, int indent, int width)
{
	int col = indent;
	const char *p = text;

	fprintf(out, "%*s", indent, "");
	while (*p) {
		size_t word = strcspn(p, " ");

		if (col > indent && col + 1 + (int)word > width) {
			fprintf(out, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', out);
			col++;
		}
		fwrite(p, 1, word, out);
		col += (int)word;
		p += word;
		while (*p == ' ')
			p++;
	}
	fputc('\n', out);
}

void cli_print_help(FILE *out)
{
	fprintf(out, "Usage:\n%s\n", cli_usage);
	cli_print_wrapped(out, cli_description, 0, 79);
	fprintf(out, "\nOptions:\n");
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct cli_option *o = &cli_options[i];
		char head[64];

		if (!o->help)
			continue;
		if (o->val < 256)
			snprintf(head, sizeof(head), "-%c, --%s%s%s", o->val, o->name,
				 o->arg ? " " : "", o->arg ? o->arg : "");
		else
			snprintf(head, sizeof(head), "    --%s%s%s", o->name, o->arg ? " " : "",
				 o->arg ? o->arg : "");
		fprintf(out, "  %s\n", head);
		cli_print_wrapped(out, o->help, 8, 79);
	}
	fprintf(out, "\nEnvironment:\n");
	for (size_t i = 0; i < N_ENTRIES(cli_environment); i++) {
		fprintf(out, "  %s\n", cli_environment[i].name);
		cli_print_wrapped(out, cli_environment[i].help, 8, 79);
	}
	fprintf(out, "\nExit status:\n");
	cli_print_wrapped(out, cli_exit_status, 2, 79);
	fprintf(out, "\nFiles, examples: man orchestrator\n");
}

static void cli_man_text(FILE *out, const char *s)
{
	/* roff: a leading '.' or '\'' starts a request, and '-' should be '\-' in options */
	if (*s == '.' || *s == '\'')
		fputs("\\&", out);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '-')
			fputs("\\-", out);
		else
			fputc(*s, out);
	}
}

/* Each line of text as its own roff line, after `before`. */
static void cli_man_lines(FILE *out, const char *text, const char *before)
{
	while (*text) {
		size_t n = strcspn(text, "\n");
		char line[512];

		snprintf(line, sizeof(line), "%.*s", (int)n, text);
		fputs(before, out);
		cli_man_text(out, line);
		fputc('\n', out);
		text += n + (text[n] == '\n');
	}
}

static void cli_man_entries(FILE *out, const char *section, const struct cli_entry *e, size_t n)
{
	fprintf(out, ".SH %s\n", section);
	for (size_t i = 0; i < n; i++) {
		fputs(".TP\n\\fB", out);
		cli_man_text(out, e[i].name);
		fputs("\\fR\n", out);
		cli_man_text(out, e[i].help);
		fputc('\n', out);
	}
}

void cli_print_man(FILE *out)
{
	fprintf(out, ".\\\" Generated by 'orchestrator --man'; do not edit.\n");
	fprintf(out, ".TH ORCHESTRATOR 1 \"\" \"orchestrator %s\" \"User Commands\"\n",
		PHX_VERSION);
	fprintf(out, ".SH NAME\norchestrator \\- build Proxmox VE templates and VMs from cloud "
		     "images\n.SH SYNOPSIS\n");
	cli_man_lines(out, cli_usage, ".br\n");
	fprintf(out, ".SH DESCRIPTION\n");
	cli_man_text(out, cli_description);
	fprintf(out, "\n.SH OPTIONS\n");
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct cli_option *o = &cli_options[i];

		if (!o->help)
			continue;
		fputs(".TP\n", out);
		if (o->val < 256)
			fprintf(out, "\\fB\\-%c\\fR, ", o->val);
		fprintf(out, "\\fB\\-\\-");
		cli_man_text(out, o->name);
		fprintf(out, "\\fR");
		if (o->arg)
			fprintf(out, " \\fI%s\\fR", o->arg);
		fputc('\n', out);
		cli_man_text(out, o->help);
		fputc('\n', out);
	}
	fprintf(out, ".SH EXIT STATUS\n");
	cli_man_text(out, cli_exit_status);
	fputc('\n', out);
	cli_man_entries(out, "ENVIRONMENT", cli_environment, N_ENTRIES(cli_environment));
	cli_man_entries(out, "FILES", cli_files, N_ENTRIES(cli_files));
	fprintf(out, ".SH EXAMPLES\n");
	for (size_t i = 0; i < N_ENTRIES(cli_examples); i++) {
		fputs(".PP\n", out);
		cli_man_text(out, cli_examples[i].name);
		fputs("\n.PP\n.RS 4\n.nf\n", out);
		cli_man_lines(out, cli_examples[i].help, "");
		fputs(".fi\n.RE\n", out);
	}
	fprintf(out, ".SH SEE ALSO\n");
	cli_man_text(out, cli_see_also);
	fputc('\n', out);
}

static int cli_parse_ulong(const char *s, const char *what, unsigned long min, unsigned long max,
			   unsigned long *ret, struct phx_err *err)
{
	char *end;
	unsigned long v;

	errno = 0;
	if (!*s || *s == '-' || *s == '+')
		goto bad;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		goto bad;
	*ret = v;
	return 0;
bad:
	return phx_err_set(err, PHX_E_USAGE,
			   "%s: expected a whole number from %lu to %lu, got '%s'", what, min, max,
			   s);
}

static int cli_set_command(struct cli_opts *o, enum cli_command cmd, bool *seen, const char *name,
			   struct phx_err *err)
{
	if (*seen && o->command != cmd)
		return phx_err_set(err, PHX_E_USAGE, "%s cannot be combined with %s", name,
				   cli_command_names[o->command]);
	*seen = true;
	o->command = cmd;
	return 0;
}

static int cli_resolve_config(struct cli_opts *o, const char *given, struct phx_err *err)
{
	const char *path = given;

	if (!path)
		path = access(CLI_DEFAULT_CONFIG, F_OK) == 0 || access(CLI_SYSTEM_CONFIG, F_OK) != 0
			       ? CLI_DEFAULT_CONFIG
			       : CLI_SYSTEM_CONFIG;
	o->config_path = strdup(path);
	o->config_explicit = given != NULL;
	if (!o->config_path)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return 0;
}

/* "unknown option '--dryrun'; did you mean '--dry-run'?" (config keys get the same hint) */
static void cli_unknown_long(const char *arg, struct phx_err *err)
{
	const char *names[N_OPTIONS], *best;
	char word[64];
	size_t n = strcspn(arg + strspn(arg, "-"), "=");

	for (size_t i = 0; i < N_OPTIONS; i++)
		names[i] = cli_options[i].name;
	snprintf(word, sizeof(word), "%.*s", (int)n, arg + strspn(arg, "-"));
	best = n < sizeof(word) ? cfg_suggest(word, names, N_OPTIONS) : NULL;
	if (best)
		phx_err_set(err, PHX_E_USAGE, "unknown option '%s'; did you mean '--%s'?", arg,
			    best);
	else
		phx_err_set(err, PHX_E_USAGE, "unknown option '%s'", arg);
}

int cli_parse(int argc, char **argv, struct cli_opts *ret, struct phx_err *err)
{
	struct option longopts[N_OPTIONS + 1];
	struct cli_opts o = {.command = CLI_CMD_DEPLOY, .jobs = 1};
	const char *config = NULL;
	bool cmd_seen = false, info = false, given[N_OPTIONS] = {false};
	unsigned long v;
	int c;

	for (size_t i = 0; i < N_OPTIONS; i++)
		longopts[i] = (struct option){cli_options[i].name, cli_options[i].has_arg, NULL,
					      cli_options[i].val};
	memset(&longopts[N_OPTIONS], 0, sizeof(longopts[0]));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":acC:j:qvVh", longopts, NULL)) != -1) {
		for (size_t i = 0; i < N_OPTIONS; i++)
			given[i] = given[i] || cli_options[i].val == c;
		switch (c) {
		case OPT_PROVISION:
			if (cli_set_command(&o, CLI_CMD_PROVISION, &cmd_seen, argv[optind - 1],
					    err) < 0)
				goto fail;
			break;
		case 'c':
			if (cli_set_command(&o, CLI_CMD_CHECK, &cmd_seen, "--check", err) < 0)
				goto fail;
			break;
		case OPT_LIST_TEMPLATES:
			if (cli_set_command(&o, CLI_CMD_LIST_TEMPLATES, &cmd_seen,
					    "--list-templates", err) < 0)
				goto fail;
			break;
		case OPT_PRUNE:
			if (cli_set_command(&o, CLI_CMD_PRUNE, &cmd_seen, "--prune", err) < 0)
				goto fail;
			break;
		case OPT_RECOVER:
			if (cli_set_command(&o, CLI_CMD_RECOVER, &cmd_seen, "--recover", err) < 0)
				goto fail;
			break;
		case OPT_DESTROY:
			if (cli_set_command(&o, CLI_CMD_DESTROY, &cmd_seen, "--destroy", err) < 0 ||
			    cli_parse_ulong(optarg, "--destroy", 100, 999999999, &v, err) < 0)
				goto fail;
			free(o.vmids);
			o.vmids = malloc(sizeof(*o.vmids));
			if (!o.vmids) {
				phx_err_set(err, PHX_E_NOMEM, "out of memory");
				goto fail;
			}
			o.vmids[0] = v;
			o.n_vmids = 1;
			break;
		case OPT_REMOVE_TEMPLATE:
			if (cli_set_command(&o, CLI_CMD_REMOVE_TEMPLATE, &cmd_seen,
					    "--remove-template", err) < 0)
				goto fail;
			if (!*optarg) {
				phx_err_set(err, PHX_E_USAGE,
					    "--remove-template: expected a template name or VMID, "
					    "got ''");
				goto fail;
			}
			/* a VMID is checked here like --destroy's; a name is looked up later */
			if (optarg[strspn(optarg, "0123456789")] == '\0' &&
			    cli_parse_ulong(optarg, "--remove-template", 100, 999999999, &v, err) < 0)
				goto fail;
			for (size_t i = 0; i < o.n_names; i++)
				free(o.names[i]);
			free(o.names);
			o.n_names = 0;
			o.names = calloc(2, sizeof(*o.names));
			if (!o.names || !(o.names[0] = strdup(optarg))) {
				phx_err_set(err, PHX_E_NOMEM, "out of memory");
				goto fail;
			}
			o.n_names = 1;
			break;
		case OPT_DIFF:
			if (cli_set_command(&o, CLI_CMD_DIFF, &cmd_seen, "--diff", err) < 0)
				goto fail;
			break;
		case OPT_CAPTURE:
			if (cli_set_command(&o, CLI_CMD_CAPTURE, &cmd_seen, "--capture", err) < 0 ||
			    cli_parse_ulong(optarg, "--capture", 100, 999999999, &v, err) < 0)
				goto fail;
			free(o.vmids);
			if (!(o.vmids = malloc(sizeof(*o.vmids)))) {
				phx_err_set(err, PHX_E_NOMEM, "out of memory");
				goto fail;
			}
			o.vmids[0] = v;
			o.n_vmids = 1;
			break;
		case OPT_AS:
			free(o.capture_as);
			if (!(o.capture_as = strdup(optarg))) {
				phx_err_set(err, PHX_E_NOMEM, "out of memory");
				goto fail;
			}
			break;
		case OPT_PUBLISH:
			if (cli_set_command(&o, CLI_CMD_PUBLISH, &cmd_seen, "--publish", err) < 0)
				goto fail;
			free(o.publish_version);
			if (!(o.publish_version = strdup(optarg))) {
				phx_err_set(err, PHX_E_NOMEM, "out of memory");
				goto fail;
			}
			break;
		case OPT_PACKAGES:
			free(o.packages_series);
			if (!(o.packages_series = strdup(optarg))) {
				phx_err_set(err, PHX_E_NOMEM, "out of memory");
				goto fail;
			}
			break;
		case OPT_REBUILD:
			o.rebuild = true;
			break;
		case OPT_ALLOW_DISK_REMOVAL:
			o.allow_disk_removal = true;
			break;
		case OPT_VALIDATE:
			o.validate = true;
			break;
		case 'a':
			o.all = true;
			break;
		case 'C':
			config = optarg;
			break;
		case OPT_DRY_RUN:
			o.dry_run = true;
			break;
		case OPT_OUTPUT:
			if (!strcmp(optarg, "text")) {
				o.output = CLI_OUTPUT_TEXT;
			} else if (!strcmp(optarg, "json")) {
				o.output = CLI_OUTPUT_JSON;
			} else {
				phx_err_set(err, PHX_E_USAGE,
					    "--output: expected 'text' or 'json', got '%s'",
					    optarg);
				goto fail;
			}
			break;
		case 'j':
			if (cli_parse_ulong(optarg, "--jobs", 1, 64, &v, err) < 0)
				goto fail;
			o.jobs = (unsigned)v;
			break;
		case OPT_INSECURE:
			o.insecure = true;
			break;
		case OPT_WAIT_LOCK:
			if (cli_parse_ulong(optarg, "--wait-lock", 0, 86400, &v, err) < 0)
				goto fail;
			o.wait_lock_s = v;
			break;
		case OPT_METRICS_FILE:
			free(o.metrics_file);
			if (!(o.metrics_file = strdup(optarg))) {
				phx_err_set(err, PHX_E_NOMEM, "out of memory");
				goto fail;
			}
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'v':
			o.verbose++;
			break;
		case 'V':
			o.command = CLI_CMD_VERSION;
			info = true;
			break;
		case 'h':
			o.command = CLI_CMD_HELP;
			info = true;
			break;
		case OPT_MAN:
			o.command = CLI_CMD_MAN;
			info = true;
			break;
		case ':':
			phx_err_set(err, PHX_E_USAGE, "option '%s' needs an argument",
				    argv[optind - 1]);
			goto fail;
		default:
			/* a short option inside a cluster ("-qZ") has its own name in optopt */
			if (optopt && optopt < 256)
				phx_err_set(err, PHX_E_USAGE, "unknown option '-%c'", optopt);
			else
				cli_unknown_long(argv[optind - 1], err);
			goto fail;
		}
	}
	if (info) {
		*ret = o;
		ret->n_names = 0;
		return 0;
	}
	if (o.quiet && o.verbose) {
		phx_err_set(err, PHX_E_USAGE, "--quiet and --verbose cannot be combined");
		goto fail;
	}
	for (size_t i = 0; i < N_OPTIONS; i++) {
		unsigned only = cli_options[i].only;

		if (!given[i] || !only || (only & CLI_FOR(o.command)))
			continue;
		{
			const char *names[CLI_CMD_HELP];
			char with[256] = "";
			size_t used = 0, n = 0;

			for (int k = 0; k < CLI_CMD_HELP; k++)
				if (only & CLI_FOR(k))
					names[n++] = cli_command_names[k];
			for (size_t k = 0; k < n; k++)
				used += (size_t)snprintf(with + used, sizeof(with) - used, "%s%s",
							 k == 0 ? "" : k + 1 < n ? ", " : " or ",
							 names[k]);
			phx_err_set(err, PHX_E_USAGE, "--%s only goes with %s", cli_options[i].name,
				    with);
			goto fail;
		}
	}
	if (o.command == CLI_CMD_DIFF && argc - optind != 2) {
		phx_err_set(err, PHX_E_USAGE,
			    "--diff: expected two template versions (names or VMIDs), got %d",
			    argc - optind);
		goto fail;
	}
	if (o.command == CLI_CMD_CAPTURE && !o.capture_as) {
		phx_err_set(err, PHX_E_USAGE,
			    "--capture: expected --as SERIES, the template the version joins");
		goto fail;
	}
	if (o.command == CLI_CMD_PUBLISH && argc - optind != 1) {
		phx_err_set(
			err, PHX_E_USAGE,
			"--publish: expected the version and one directory (--publish NAME|VMID "
			"DIR), got %d director%s",
			argc - optind, argc - optind == 1 ? "y" : "ies");
		goto fail;
	}
	if (o.command == CLI_CMD_PROVISION || o.command == CLI_CMD_DIFF ||
	    o.command == CLI_CMD_PUBLISH) {
		size_t n = (size_t)(argc - optind);

		o.names = calloc(n + 1, sizeof(*o.names));
		if (!o.names) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto fail;
		}
		for (; optind < argc; optind++) {
			o.names[o.n_names] = strdup(argv[optind]);
			if (!o.names[o.n_names]) {
				phx_err_set(err, PHX_E_NOMEM, "out of memory");
				goto fail;
			}
			o.n_names++;
		}
	} else if (o.command == CLI_CMD_DEPLOY) {
		size_t n = (size_t)(argc - optind);

		if (n == 0 && !o.all) {
			phx_err_set(err, PHX_E_USAGE,
				    "nothing to do: give VMIDs, --all, --provision-template or "
				    "--check");
			goto fail;
		}
		if (n > 0 && o.all) {
			phx_err_set(err, PHX_E_USAGE, "--all cannot be combined with VMIDs");
			goto fail;
		}
		o.vmids = calloc(n ? n : 1, sizeof(*o.vmids));
		if (!o.vmids) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto fail;
		}
		for (; optind < argc; optind++) {
			if (cli_parse_ulong(argv[optind], "VMID", 100, 999999999, &v, err) < 0)
				goto fail;
			o.vmids[o.n_vmids++] = v;
		}
	} else if (optind < argc) {
		phx_err_set(err, PHX_E_USAGE, "unexpected argument '%s'", argv[optind]);
		goto fail;
	}
	if (cli_resolve_config(&o, config, err) < 0)
		goto fail;
	*ret = o;
	return 0;
fail:
	cli_opts_release(&o);
	return -1;
}

void cli_opts_release(struct cli_opts *opts)
{
	for (size_t i = 0; i < opts->n_names; i++)
		free(opts->names[i]);
	free(opts->names);
	free(opts->vmids);
	free(opts->metrics_file);
	free(opts->packages_series);
	free(opts->publish_version);
	free(opts->capture_as);
	free(opts->config_path);
	opts->names = NULL;
	opts->vmids = NULL;
	opts->config_path = NULL;
	opts->packages_series = NULL;
	opts->publish_version = NULL;
	opts->capture_as = NULL;
	opts->n_names = opts->n_vmids = 0;
}
