/* cmd_destroy: `--destroy VMID`, the undo of a deploy. Reads the VM (ours, not a template),
 * its seed ISOs (attached, and any left on the ISO storage under its name) and its snippet
 * (the one its cicustom names, deleted through the storage API, so the config needs no
 * snippets_dir; else a file of ours left in snippets_dir), plans stop -> destroy -> delete
 * seeds -> remove snippet, then prints the plan (--dry-run) or applies it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "deploy.h"
#include "fsutil.h"
#include "plan.h"
#include "pve_ct.h"
#include "series.h"
#include "session.h"

/* Adds volid (options after ',' dropped) to the list when it is a seed of vmid, once. */
static int dsy_collect_seed(json_t *list, const char *volid, unsigned long vmid)
{
	size_t i, l = strcspn(volid, ",");
	json_t *v;

	if (!deploy_is_seed_volid(volid, vmid))
		return 0;
	json_array_foreach(list, i, v) if (strlen(json_string_value(v)) == l &&
					   !strncmp(json_string_value(v), volid, l)) return 0;
	return json_array_append_new(list, json_stringn(volid, l));
}

/* The seed volumes of the VM, from its config and from the ISO storage, and the snippet its
 * cicustom names when that is ours and still on its storage (ret_snippet, "" when none). */
static int dsy_read_seeds(struct session *s, const struct pve_vm_info *vm, json_t *seeds,
			  char *ret_snippet, size_t snippet_len, struct phx_err *err)
{
	struct pve_volume_list vols = {NULL, 0};
	json_t *conf = NULL, *v;
	const char *k;
	char snippet[256];
	int rc = -1;

	ret_snippet[0] = '\0';
	if (pve_vm_config_get(s->pve, vm->node, vm->vmid, &conf, err) < 0)
		return -1;
	json_object_foreach(conf, k, v) if (json_is_string(v) &&
					    dsy_collect_seed(seeds, json_string_value(v),
							     (unsigned long)vm->vmid) < 0) goto oom;
	if (pve_storage_content(s->pve, vm->node, s->cfg->defaults.iso_storage, "iso", &vols, err) <
	    0)
		goto out;
	for (size_t i = 0; i < vols.n; i++)
		if (dsy_collect_seed(seeds, vols.items[i].volid, (unsigned long)vm->vmid) < 0)
			goto oom;
	pve_volume_list_release(&vols);
	if (deploy_cicustom_snippet(json_string_value(json_object_get(conf, "cicustom")),
				    (unsigned long)vm->vmid, snippet, sizeof(snippet))) {
		char storage[128];

		/* gone already (removed by hand): nothing to delete, as with a seed */
		snprintf(storage, sizeof(storage), "%.*s", (int)strcspn(snippet, ":"), snippet);
		if (pve_storage_content(s->pve, vm->node, storage, "snippets", &vols, err) < 0)
			goto out;
		for (size_t i = 0; i < vols.n; i++)
			if (!strcmp(vols.items[i].volid, snippet))
				snprintf(ret_snippet, snippet_len, "%s", snippet);
	}
	rc = 0;
	goto out;
oom:
	phx_err_set(err, PHX_E_NOMEM, "out of memory");
out:
	pve_volume_list_release(&vols);
	json_decref(conf);
	return rc;
}

/* The pure part: what removing the VM takes. */
static void dsy_plan(const struct pve_vm_info *vm, bool running, const json_t *seeds,
		     const char *snippet_volid, const char *snippet, struct plan *p)
{
	struct plan_action *a;
	char object[192];
	size_t i;
	json_t *v;

	snprintf(object, sizeof(object), "VM %d '%s'", vm->vmid, vm->name);
	if (running) {
		a = plan_add(p, PLAN_REQUEST, PLAN_RUN, object, "POST",
			     "/nodes/%s/qemu/%d/status/stop", vm->node, vm->vmid);
		plan_summary(p, a, "stop");
	}
	a = plan_add(p, PLAN_REQUEST, PLAN_DESTROY, object, "DELETE", "/nodes/%s/qemu/%d",
		     vm->node, vm->vmid);
	plan_summary(p, a, "destroy VM %d on '%s'", vm->vmid, vm->node);
	plan_param(p, a, "purge", "1", 0);
	plan_param(p, a, "destroy-unreferenced-disks", "1", 0);
	json_array_foreach(seeds, i, v)
	{
		const char *volid = json_string_value(v);
		char storage[128], *esc = plan_escape(p, volid);

		snprintf(storage, sizeof(storage), "%.*s", (int)strcspn(volid, ":"), volid);
		a = plan_add(p, PLAN_REQUEST, PLAN_DESTROY, object, "DELETE",
			     "/nodes/%s/storage/%s/content/%s", vm->node, storage, esc ? esc : "");
		plan_summary(p, a, "delete seed '%s'", volid);
		free(esc);
	}
	if (snippet_volid) {
		char storage[128], *esc = plan_escape(p, snippet_volid);

		snprintf(storage, sizeof(storage), "%.*s", (int)strcspn(snippet_volid, ":"),
			 snippet_volid);
		a = plan_add(p, PLAN_REQUEST, PLAN_DESTROY, object, "DELETE",
			     "/nodes/%s/storage/%s/content/%s", vm->node, storage, esc ? esc : "");
		plan_summary(p, a, "delete snippet '%s'", snippet_volid);
		free(esc);
	} else if (snippet) {
		a = plan_add(p, PLAN_REMOVE_FILE, PLAN_DESTROY, object, NULL, "%s", snippet);
		plan_summary(p, a, "remove snippet '%s'", snippet);
	}
}

static int dsy_report(const struct cli_opts *opts, const struct pve_vm_info *vm, json_t *seeds,
		      const char *snippet, struct phx_err *err)
{
	size_t i;
	json_t *v;

	if (snippet && json_array_append_new(seeds, json_string(snippet)) < 0)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (opts->output != CLI_OUTPUT_JSON) {
		printf("destroyed VM %d '%s' on '%s'\n", vm->vmid, vm->name, vm->node);
		json_array_foreach(seeds, i, v) printf("removed %s\n", json_string_value(v));
		return 0;
	}
	return cmd_print_json(json_pack("{si ss ss sb sO}", "vmid", vm->vmid, "name", vm->name,
					"node", vm->node, "dry_run", 0, "removed_volumes", seeds),
			      err);
}

/* --destroy of a container of ours: stop, destroy (its rootfs goes with it). */
static int dsy_container(struct session *s, unsigned long vmid, struct phx_err *err)
{
	struct pve_vm_list l = {NULL, 0};
	const struct pve_vm_info *ct = NULL;
	struct pve_vm_status st;
	struct plan p = PLAN_INIT;
	struct plan_action *a;
	char object[192];
	int rc = -1;

	if (pve_cluster_guests(s->pve, &l, err) < 0)
		return -1;
	for (size_t i = 0; i < l.n && !ct; i++)
		if ((unsigned long)l.items[i].vmid == vmid && l.items[i].lxc)
			ct = &l.items[i];
	if (!ct) {
		phx_err_set(err, PHX_E_NOTFOUND, "VM %lu does not exist on the cluster", vmid);
		goto out;
	}
	if (!series_has_tag(ct->tags, SERIES_TAG_OURS) || ct->template) {
		phx_err_set(err, PHX_E_CONFLICT,
			    ct->template ? "CT %lu '%s' is a template: --destroy removes containers; "
					   "use --prune for template versions"
					 : "CT %lu '%s' has no '" SERIES_TAG_OURS "' tag: it was not "
					   "created by phoenix-orchestrator, refusing to destroy it",
			    vmid, ct->name);
		goto out;
	}
	if (pve_ct_status_get(s->pve, ct->node, ct->vmid, &st, err) < 0)
		goto out;
	snprintf(object, sizeof(object), "CT %d '%s'", ct->vmid, ct->name);
	if (!strcmp(st.status, "running")) {
		a = plan_add(&p, PLAN_REQUEST, PLAN_RUN, object, "POST",
			     "/nodes/%s/lxc/%d/status/stop", ct->node, ct->vmid);
		plan_summary(&p, a, "stop");
	}
	a = plan_add(&p, PLAN_REQUEST, PLAN_DESTROY, object, "DELETE", "/nodes/%s/lxc/%d",
		     ct->node, ct->vmid);
	plan_summary(&p, a, "destroy CT %d on '%s'", ct->vmid, ct->node);
	plan_param(&p, a, "purge", "1", 0);
	plan_param(&p, a, "destroy-unreferenced-disks", "1", 0);
	rc = cmd_plan_run(s, "destroy", &p, err);
	if (rc != 0) {
		if (rc < 0)
			phx_err_wrap(err, "CT %lu", vmid);
		rc = rc > 0 ? 0 : -1;
		goto out;
	}
	if (s->opts->output != CLI_OUTPUT_JSON)
		printf("destroyed CT %d '%s' on '%s'\n", ct->vmid, ct->name, ct->node);
	else
		rc = cmd_print_json(json_pack("{si ss ss ss sb s[]}", "vmid", ct->vmid, "name",
					      ct->name, "type", "lxc", "node", ct->node, "dry_run",
					      0, "removed_volumes"),
				    err);
out:
	plan_release(&p);
	pve_vm_list_release(&l);
	return rc;
}

static int cmd_destroy_run(struct session *s, struct phx_err *err)
{
	const struct cli_opts *opts = s->opts;
	struct pve_vm_list l = {NULL, 0};
	struct pve_vm_status st;
	struct plan p = PLAN_INIT;
	const struct pve_vm_info *vm = NULL;
	json_t *seeds = json_array();
	unsigned long vmid = opts->n_vmids ? opts->vmids[0] : 0;
	char *snippet = NULL, snippet_volid[256];
	int rc = -1;

	if (!seeds)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (session_connect(s, err) < 0 || pve_cluster_vms(s->pve, &l, err) < 0)
		goto out;
	for (size_t i = 0; i < l.n && !vm; i++)
		if ((unsigned long)l.items[i].vmid == vmid)
			vm = &l.items[i];
	if (!vm) {
		rc = dsy_container(s, vmid, err);
		goto out;
	}
	if (!series_has_tag(vm->tags, SERIES_TAG_OURS)) {
		phx_err_set(err, PHX_E_CONFLICT,
			    "VM %lu '%s' has no '" SERIES_TAG_OURS "' tag: it was not created by "
			    "phoenix-orchestrator, refusing to destroy it",
			    vmid, vm->name);
		goto out;
	}
	if (vm->template) {
		phx_err_set(err, PHX_E_CONFLICT,
			    "VM %lu '%s' is a template: --destroy removes VMs; use --prune for "
			    "template versions",
			    vmid, vm->name);
		goto out;
	}
	if (dsy_read_seeds(s, vm, seeds, snippet_volid, sizeof(snippet_volid), err) < 0 ||
	    pve_vm_status_get(s->pve, vm->node, vm->vmid, &st, err) < 0)
		goto out;
	if (snippet_volid[0]) {
		if (!(snippet = strdup(snippet_volid))) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
	} else if (s->cfg->defaults.snippets_dir) {
		/* a snippet of ours the VM no longer names (a run that failed before its config) */
		char name[96];

		deploy_snippet_name(vmid, name, sizeof(name));
		if (asprintf(&snippet, "%s/%s", s->cfg->defaults.snippets_dir, name) < 0) {
			snippet = NULL;
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		if (!fs_exists(snippet)) {
			free(snippet);
			snippet = NULL;
		}
	}
	dsy_plan(vm, !strcmp(st.status, "running"), seeds, snippet_volid[0] ? snippet : NULL,
		 snippet, &p);
	rc = cmd_plan_run(s, "destroy", &p, err);
	if (rc != 0) {
		if (rc < 0)
			phx_err_wrap(err, "VM %lu", vmid);
		rc = rc > 0 ? 0 : -1;
		goto out;
	}
	rc = dsy_report(opts, vm, seeds, snippet, err);
out:
	free(snippet);
	plan_release(&p);
	json_decref(seeds);
	pve_vm_list_release(&l);
	return rc;
}

const struct cmd_entry cmd_destroy_entry = {"destroy", CMD_SERVER | CMD_LOCK, cmd_destroy_run};
