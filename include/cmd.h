/* cmd: one entry per command, chosen by main from a table. Commands compose the domain
 * modules, own the undo transaction, and write results to stdout (diagnostics to stderr). */
#ifndef PHX_CMD_H
#define PHX_CMD_H

#include <jansson.h>

#include "cli.h"
#include "err.h"
#include "series.h"
#include "session.h"

enum cmd_needs {
	CMD_SERVER = 1 << 0, /* libcurl is set up; the command calls session_connect() */
	CMD_LOCK = 1 << 1,   /* session_connect() takes the run lock (the command changes things) */
};

/* One command, like tmux's cmd_entry: each cmd_*.c defines its own next to its code. main
 * loads and validates the config and the environment for every command, so bad input exits
 * 2 before the first request; a command then does its own local checks and only after them
 * calls session_connect(). */
struct cmd_entry {
	const char *name;
	unsigned needs; /* enum cmd_needs */
	int (*run)(struct session *s, struct phx_err *err);
};

extern const struct cmd_entry cmd_check_entry, cmd_provision_entry, cmd_deploy_entry,
	cmd_list_templates_entry, cmd_prune_entry, cmd_destroy_entry, cmd_recover_entry,
	cmd_remove_template_entry, cmd_diff_entry, cmd_publish_entry,
	cmd_capture_entry;

struct cfg;
struct buf;
struct plan;

/* ---- the containers of a deploy (cmd_deploy_ct.c), which cmd_deploy runs after its VMs ---- */
struct dct_run;
/* The containers the command line names (all with --all), in config order. Caller owns *ret
 * (dct_free). VMIDs that are no container are cmd_deploy's to report. */
int dct_select(const struct cli_opts *opts, const struct cfg *cfg, struct dct_run **ret,
	       struct phx_err *err);
size_t dct_count(const struct dct_run *r);
/* Reads, plans and (unless a dry run) applies each container, `jobs` at a time; each
 * outcome is kept for the report. -1 only when the cluster could not be read at all. */
int dct_run(struct dct_run *r, struct session *s, unsigned jobs, long task_timeout_s,
	    unsigned long agent_timeout_s, struct phx_err *err);
/* Each container's plan into out[0..dct_count) (borrowed). */
void dct_plans(const struct dct_run *r, const struct plan **out);
int dct_json_append(const struct dct_run *r, json_t *arr, struct phx_err *err);
void dct_print_rows(const struct dct_run *r, bool header);
/* How many failed; appends "\n  CT N 'name': error" for each to msgs. */
size_t dct_failed(const struct dct_run *r, struct buf *msgs);
void dct_free(struct dct_run *r);

/* The offline checks of a deploy (feature scripts read, the seed or snippet trial-rendered,
 * what the cloud-init mode can deliver) for every VM of cfg, as deploy runs them: --check
 * calls it so that what --check accepts a deploy accepts. Every VM that fails is one line. */
int cmd_deploy_check(const struct cfg *cfg, struct phx_err *err);

/* The same for provisioning: each template's customization plan is built as a provision
 * builds it (local .debs and files read, names checked). */
int cmd_provision_check(const struct cfg *cfg, struct phx_err *err);

struct plan;
/* Prints doc indented on stdout and frees it (steals doc; NULL is out of memory). */
int cmd_print_json(json_t *doc, struct phx_err *err);
/* Checks a plan built with the plan_* setters; with --dry-run prints it. 1: the command is
 * done (dry run printed), 0: apply it, -1: error. */
int cmd_plan_checked(const struct cli_opts *opts, const char *command, const struct plan *p,
		     struct phx_err *err);
/* cmd_plan_checked, then (no --dry-run) applies the plan with the session's client and no
 * undo list. 1: dry run printed, 0: applied, -1: error (the caller adds its context). */
int cmd_plan_run(struct session *s, const char *command, const struct plan *p,
		 struct phx_err *err);
/* Prints the plans of a --dry-run (text, or one JSON document with --output json). */
int cmd_plan_print(const struct cli_opts *opts, const char *command,
		   const struct plan *const *plans, size_t n, struct phx_err *err);

/* The guests as series.h sees them (strings borrowed from vms). Caller frees *ret. */
int cmd_series_guests(const struct pve_vm_list *vms, struct series_guest **ret,
		      struct phx_err *err);
/* Which templates the VMs' disks are linked clones of: each VM's config is read (templates
 * are skipped; only VMs the token may audit are listed, so only those are seen). Caller releases *ret (series_uses_release). */
int cmd_linked_clone_uses(struct pve_client *c, const struct pve_vm_list *vms,
			  struct series_uses *ret, struct phx_err *err);

/* A template of ours named by VMID or by name. The copies of a version built on several
 * nodes are one build (one image, one package list), so the first of them is returned.
 * PHX_E_NOTFOUND when there is none. Borrowed from l. */
const struct pve_vm_info *cmd_find_template(const struct pve_vm_list *l, const char *arg,
					    struct phx_err *err);

/* Adds the removal of template `vm` (DELETE of the VM or container with purge and its
 * unreferenced disks) to p under `object`, then, when `archive` is a volume ID (a container
 * template's vztmpl, its record's `archive:`), the deletion of that archive. Returns the
 * removal action (NULL when out of memory: p->oom is set). */
struct plan_action *cmd_plan_template_removal(struct plan *p, const char *object,
					      const struct pve_vm_info *vm, const char *archive);
/* Whether removing container template vms->items[k] also deletes the archive its record
 * names. The copies of one version built on several nodes share a name and, on a shared
 * vztmpl storage, one archive: it stays while another container of that name that sees the
 * same volume (on the same node, or the storage is `shared`) is not removed, and of those
 * removed in one run only the first deletes it. removing[i] marks what the run removes (NULL:
 * k alone). *ret_user is set to the container it stays for, else NULL. Pure. */
bool cmd_archive_goes(const struct pve_vm_list *vms, size_t k, const bool *removing, bool shared,
		      const struct pve_vm_info **ret_user);
/* Whether `storage` is shared (storage.cfg: the same for every node), as node lists it; true
 * when node does not list it, so an archive is kept in doubt. */
int cmd_storage_shared(struct pve_client *c, const char *node, const char *storage,
		       bool *ret_shared, struct phx_err *err);
/* The package list of template `vm` (pkglist.h text): the build record names its image and
 * the list's digest; the list is loaded from this host's cache and must match the digest.
 * PHX_E_NOTFOUND when the template has no list (built before lists were kept) or this host
 * does not have it (built elsewhere). Caller frees *ret. */
int cmd_template_packages(struct pve_client *c, const struct pve_vm_info *vm, char **ret,
			  struct phx_err *err);

/* Prints what changed between two package lists, one line each: "  changed name:arch old ->
 * new", "  added name:arch version", "  removed name:arch version" (no claim of up or down:
 * version order is each package manager's own); or, when `json` is not NULL, appends
 * {"name", "arch", "change", "from", "to"} objects to it. The number of changes, or -1. */
long cmd_print_package_changes(const char *from, const char *to, json_t *json,
			       struct phx_err *err);

#endif
