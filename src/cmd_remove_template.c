/* cmd_remove_template: `--remove-template NAME|VMID`, removes one template this tool built, a
 * VM template or a container template (with the vztmpl archive its build record names).
 * Reads the cluster's guests and every VM's config, resolves the argument (series_resolve: a
 * VMID, else the guest of that name, such as a version, else the VMID of a fixed-VMID
 * template of that name in the config), refuses what is not ours, not a template or used by
 * linked clones (series_check_removable, the check --prune keeps versions by), then prints the
 * plan (--dry-run) or sends its one DELETE. Takes the run lock, like --prune. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "plan.h"
#include "provision.h"
#include "pve.h"
#include "pve_ct.h"
#include "record.h"
#include "series.h"
#include "session.h"

/* The pure part: one DELETE (and the archive's, for a container template), and a note for
 * each config VM that names the template. */
static void rmt_plan(const struct cfg *cfg, const struct pve_vm_info *vm, const char *archive,
		     const struct pve_vm_info *archive_user, struct plan *p)
{
	struct plan_action *a;
	char object[192];

	snprintf(object, sizeof(object), "template %d '%s'", vm->vmid, vm->name);
	a = cmd_plan_template_removal(p, object, vm, archive_user ? NULL : archive);
	if (archive_user)
		plan_note(p, object,
			  "the archive '%s' stays: container template %d on '%s' was built from "
			  "it too",
			  archive, archive_user->vmid, archive_user->node);
	plan_summary(p, a, "remove %stemplate %d on '%s'", vm->lxc ? "container " : "", vm->vmid,
		     vm->node);
	/* asked for by name, so not refused; but deploying that VM will fail afterwards */
	for (size_t i = 0; i < cfg->n_vms; i++)
		if (cfg->vms[i].clone_from_vmid == (unsigned long)vm->vmid)
			plan_note(
				p, object,
				"VM %lu '%s' in the config clones it (clone_from_vmid): deploying "
				"it fails until the config names another template",
				cfg->vms[i].vmid, cfg->vms[i].name);
}

static int rmt_report(const struct cli_opts *opts, const struct pve_vm_info *vm,
		      struct phx_err *err)
{
	if (opts->output != CLI_OUTPUT_JSON) {
		printf("removed template %d '%s' on '%s'\n", vm->vmid, vm->name, vm->node);
		return 0;
	}
	return cmd_print_json(json_pack("{si ss ss sb ss}", "vmid", vm->vmid, "name", vm->name,
					"node", vm->node, "dry_run", 0, "action", "removed"),
			      err);
}

static int cmd_remove_template_run(struct session *s, struct phx_err *err)
{
	const struct cli_opts *opts = s->opts;
	const char *arg = opts->n_names ? opts->names[0] : "";
	const struct cfg_template *t = cfg_find_template(s->cfg, arg);
	struct pve_vm_list vms = {NULL, 0};
	struct series_guest *guests = NULL;
	const char **nodes = NULL;
	struct series_uses uses = SERIES_USES_INIT;
	struct plan p = PLAN_INIT;
	const struct pve_vm_info *vm, *archive_user = NULL;
	size_t idx = 0;
	char archive[400] = "";
	int rc = -1;

	if (session_connect(s, err) < 0 || pve_cluster_guests(s->pve, &vms, err) < 0)
		goto out;
	if (cmd_series_guests(&vms, &guests, err) < 0)
		goto out;
	if (!(nodes = calloc(vms.n ? vms.n : 1, sizeof(*nodes)))) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < vms.n; i++)
		nodes[i] = vms.items[i].node;
	if (series_resolve(arg, guests, nodes, vms.n, t && !t->has_versions ? t->vmid : 0,
			   t && t->has_versions, &idx, err) < 0)
		goto out;
	vm = &vms.items[idx];
	/* ours and a template first: a foreign VM's disks are none of our business */
	if (series_check_removable(&guests[idx], NULL, err) < 0 ||
	    cmd_linked_clone_uses(s->pve, &vms, &uses, err) < 0 ||
	    series_check_removable(&guests[idx], &uses, err) < 0)
		goto out;
	if (vm->lxc) {
		json_t *config = NULL;
		char storage[128];
		bool shared;

		if (pve_ct_or_vm_config_get(s->pve, vm, &config, err) < 0)
			goto out;
		rec_get(json_string_value(json_object_get(config, "description")),
			PROV_REC_ARCHIVE, archive, sizeof(archive));
		json_decref(config);
		if (archive[0]) {
			snprintf(storage, sizeof(storage), "%.*s", (int)strcspn(archive, ":"),
				 archive);
			if (cmd_storage_shared(s->pve, vm->node, storage, &shared, err) < 0)
				goto out;
			cmd_archive_goes(&vms, idx, NULL, shared, &archive_user);
		}
	}
	rmt_plan(s->cfg, vm, archive, archive_user, &p);
	rc = cmd_plan_run(s, "remove-template", &p, err);
	if (rc != 0) {
		if (rc < 0)
			phx_err_wrap(err, "template %d '%s'", vm->vmid, vm->name);
		rc = rc > 0 ? 0 : -1;
		goto out;
	}
	rc = rmt_report(opts, vm, err);
out:
	plan_release(&p);
	series_uses_release(&uses);
	free(nodes);
	free(guests);
	pve_vm_list_release(&vms);
	return rc;
}

const struct cmd_entry cmd_remove_template_entry = {"remove-template", CMD_SERVER | CMD_LOCK,
						    cmd_remove_template_run};
