/* cmd_prune: --prune keeps the newest `versions.keep` of each series on each node and never
 * removes a template whose base disk a linked clone still uses (Proxmox would refuse, or
 * worse, on some storages), the newest validated version, nor one a config VM clones. Read, decide (pure),
 * then print the plan (--dry-run) or remove the versions that go. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "log.h"
#include "plan.h"
#include "pve.h"
#include "series.h"
#include "session.h"

/* A base volume a linked clone uses: template `base`, used by VM `user`. */
struct tpl_use {
	int base, user;
};

/* Reads every VM's config once and records the base volumes its disks sit on (a linked
 * clone's volume names its template's base volume before the first ',', e.g.
 * "local:9000/base-9000-disk-0.qcow2/8001/vm-8001-disk-0.qcow2" or
 * "local-lvm:base-9000-disk-0/vm-8001-disk-0"). Only VMs the token may audit are seen. */
static int tpl_collect_uses(struct session *s, const struct pve_vm_list *vms, struct tpl_use **ret,
			    size_t *ret_n, struct phx_err *err)
{
	struct tpl_use *uses = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < vms->n; i++) {
		json_t *config = NULL, *v;
		const char *key;

		if (vms->items[i].template)
			continue;
		if (pve_vm_config_get(s->pve, vms->items[i].node, vms->items[i].vmid, &config,
				      err) < 0) {
			free(uses);
			return -1;
		}
		json_object_foreach(config, key, v)
		{
			const char *val = json_string_value(v), *b;
			size_t vol_len;

			if (!val)
				continue;
			vol_len = strcspn(val, ",");
			for (b = strstr(val, "base-"); b && b < val + vol_len;
			     b = strstr(b + 5, "base-")) {
				int base = atoi(b + 5);

				if (base <= 0)
					continue;
				if (n == cap) {
					struct tpl_use *nu;

					cap = cap ? cap * 2 : 16;
					nu = realloc(uses, cap * sizeof(*uses));
					if (!nu) {
						free(uses);
						json_decref(config);
						return phx_err_set(err, PHX_E_NOMEM,
								   "out of memory");
					}
					uses = nu;
				}
				uses[n++] = (struct tpl_use){base, vms->items[i].vmid};
			}
		}
		json_decref(config);
	}
	*ret = uses;
	*ret_n = n;
	return 0;
}

static int tpl_user_of(const struct tpl_use *uses, size_t n, int vmid)
{
	for (size_t i = 0; i < n; i++)
		if (uses[i].base == vmid)
			return uses[i].user;
	return 0;
}

/* True when a VM in the config clones this VMID explicitly. */
static bool tpl_cloned_by_config(const struct cfg *cfg, int vmid)
{
	for (size_t i = 0; i < cfg->n_vms; i++)
		if (cfg->vms[i].clone_from_vmid == (unsigned long)vmid)
			return true;
	return false;
}

/* One prune decision: a version kept (why != NULL) or removed. */
struct tpl_decision {
	const char *series; /* borrowed from the config */
	const struct pve_vm_info *vm;
	char why[96]; /* "" when it goes */
};

/* The pure part of --prune: which versions go, each with its reason to stay otherwise. */
static int tpl_prune_decide(const struct cfg *cfg, const struct pve_vm_list *vms,
			    const struct series_guest *guests, const struct tpl_use *uses,
			    size_t n_uses, struct tpl_decision **ret, size_t *ret_n,
			    struct phx_err *err)
{
	struct tpl_decision *d = calloc(vms->n ? vms->n : 1, sizeof(*d));
	size_t nd = 0;

	if (!d)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (size_t t = 0; t < cfg->n_templates; t++) {
		const struct cfg_template *tpl = &cfg->templates[t];
		long validated = series_newest(tpl->name, guests, vms->n, true);
		size_t *idx = NULL, n = 0;

		if (!tpl->has_versions)
			continue;
		if (series_members(tpl->name, guests, vms->n, &idx, &n, err) < 0) {
			free(d);
			return -1;
		}
		for (size_t k = 0; k < n; k++) {
			struct tpl_decision *x;
			size_t newer_here = 0;
			int user;

			/* keep N per node: each node has its own copy of the series */
			for (size_t j = 0; j < k; j++)
				newer_here += !strcmp(vms->items[idx[j]].node, vms->items[idx[k]].node);
			if (newer_here < tpl->versions.keep)
				continue;
			x = &d[nd++];
			x->series = tpl->name;
			x->vm = &vms->items[idx[k]];
			user = tpl_user_of(uses, n_uses, x->vm->vmid);
			if (user)
				snprintf(x->why, sizeof(x->why), "linked clone %d uses it", user);
			/* clone_from_template picks the newest validated version */
			else if ((long)idx[k] == validated)
				snprintf(x->why, sizeof(x->why), "the newest validated version");
			else if (tpl_cloned_by_config(cfg, x->vm->vmid))
				snprintf(x->why, sizeof(x->why),
					 "a VM in the config clones it (clone_from_vmid)");
		}
		free(idx);
	}
	*ret = d;
	*ret_n = nd;
	return 0;
}

static void tpl_prune_plan(const struct tpl_decision *d, size_t n, struct plan *p)
{
	for (size_t i = 0; i < n; i++) {
		const struct pve_vm_info *vm = d[i].vm;
		struct plan_action *a;

		if (d[i].why[0]) {
			plan_note(p, d[i].series, "kept %d '%s': %s", vm->vmid, vm->name, d[i].why);
			continue;
		}
		a = plan_add(p, PLAN_REQUEST, PLAN_DESTROY, d[i].series, "DELETE",
			     "/nodes/%s/qemu/%d", vm->node, vm->vmid);
		plan_summary(p, a, "remove version %d '%s'", vm->vmid, vm->name);
		plan_param(p, a, "purge", "1", 0);
		plan_param(p, a, "destroy-unreferenced-disks", "1", 0);
	}
}

/* One prune outcome: printed as a line, or collected for --output json. */
static void tpl_prune_report(json_t *out, const char *series, const struct pve_vm_info *vm,
			     const char *action, const char *why)
{
	if (out) {
		json_array_append_new(out, json_pack("{s:s, s:i, s:s, s:s, s:s?}", "series", series,
						     "vmid", vm->vmid, "name", vm->name, "action",
						     action, "reason", why));
		return;
	}
	printf("%s: %s %d '%s'%s%s\n", series, action, vm->vmid, vm->name, why ? ": " : "",
	       why ? why : "");
}

static int cmd_prune_run(struct session *s, struct phx_err *err)
{
	const struct cli_opts *opts = s->opts;
	struct pve_vm_list vms = {0};
	struct series_guest *guests = NULL;
	struct tpl_use *uses = NULL;
	struct tpl_decision *d = NULL;
	struct plan p = PLAN_INIT;
	size_t n_uses = 0, nd = 0, act = 0;
	json_t *json_out = opts->output == CLI_OUTPUT_JSON ? json_array() : NULL;
	int rc = -1, failed = 0;

	if (session_connect(s, err) < 0 || pve_cluster_vms(s->pve, &vms, err) < 0)
		goto out;
	guests = calloc(vms.n ? vms.n : 1, sizeof(*guests));
	if (!guests) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < vms.n; i++)
		guests[i] =
			(struct series_guest){(unsigned long)vms.items[i].vmid, vms.items[i].name,
					      vms.items[i].tags, vms.items[i].template};
	if (tpl_collect_uses(s, &vms, &uses, &n_uses, err) < 0 ||
	    tpl_prune_decide(s->cfg, &vms, guests, uses, n_uses, &d, &nd, err) < 0)
		goto out;
	tpl_prune_plan(d, nd, &p);
	rc = cmd_plan_checked(opts, "prune", &p, err);
	if (rc != 0) {
		rc = rc > 0 ? 0 : -1;
		goto out;
	}
	rc = -1;
	for (size_t i = 0; i < nd; i++) {
		const struct plan_apply_ctx ax = {s->pve, NULL, session_task_timeout(s)};
		struct phx_err derr = PHX_ERR_INIT;

		if (d[i].why[0]) {
			tpl_prune_report(json_out, d[i].series, d[i].vm, "kept", d[i].why);
			continue;
		}
		if (plan_apply_action(p.actions[act++], &ax, &derr) < 0) {
			log_warn("%s: could not remove %d '%s': %s", d[i].series, d[i].vm->vmid,
				 d[i].vm->name, derr.msg);
			tpl_prune_report(json_out, d[i].series, d[i].vm, "failed", derr.msg);
			failed++;
			continue;
		}
		tpl_prune_report(json_out, d[i].series, d[i].vm, "removed", NULL);
	}
	for (size_t t = 0; !json_out && t < s->cfg->n_templates; t++) {
		const struct cfg_template *tpl = &s->cfg->templates[t];
		bool any = false;

		for (size_t i = 0; i < nd && !any; i++)
			any = d[i].series == tpl->name;
		if (tpl->has_versions && !any)
			printf("%s: keeping up to %lu version%s per node: nothing to prune\n",
			       tpl->name, tpl->versions.keep, tpl->versions.keep == 1 ? "" : "s");
	}
	if (json_out) {
		json_dumpf(json_out, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	}
	if (failed) {
		phx_err_set(err, PHX_E_RUNTIME, "%d template version%s could not be removed",
			    failed, failed == 1 ? "" : "s");
		goto out;
	}
	rc = 0;
out:
	plan_release(&p);
	free(d);
	json_decref(json_out);
	free(uses);
	free(guests);
	pve_vm_list_release(&vms);
	return rc;
}

const struct cmd_entry cmd_prune_entry = {"prune", CMD_SERVER | CMD_LOCK, cmd_prune_run};
