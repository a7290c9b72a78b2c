/* cmd_prune: --prune removes the versions of each series beyond the newest `versions.keep`
 * on each node, and those built more than `versions.max_age_days` ago, but never one whose
 * base disk a linked clone still uses (Proxmox would refuse, or worse, on some storages), the
 * newest or newest validated version on a node, nor one a config VM clones. Read (VM
 * configs, build records), decide (series_prune_decide, pure), then print the plan
 * (--dry-run) or remove the versions that go. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "config.h"
#include "log.h"
#include "plan.h"
#include "provision.h"
#include "pve.h"
#include "pve_ct.h"
#include "record.h"
#include "series.h"
#include "session.h"

/* The build time of each version of a series with max_age_days, from the `built` line of
 * its build record: the time the build finished, which a rename or a node's clock cannot
 * change (the date in the version name is only the day). Other guests keep 0 (unknown). */
static int tpl_read_built(struct session *s, const struct pve_vm_list *vms,
			  const struct series_guest *guests, struct series_prune_guest *extra,
			  struct phx_err *err)
{
	for (size_t t = 0; t < s->cfg->n_templates; t++) {
		const struct cfg_template *tpl = &s->cfg->templates[t];
		size_t *idx = NULL, n = 0;

		if (!tpl->has_versions || !tpl->versions.max_age_days)
			continue;
		if (series_members(tpl->name, guests, vms->n, &idx, &n, err) < 0)
			return -1;
		for (size_t k = 0; k < n; k++) {
			const struct pve_vm_info *vm = &vms->items[idx[k]];
			json_t *config = NULL;
			char built[64];

			if (pve_ct_or_vm_config_get(s->pve, vm, &config, err) < 0) {
				free(idx);
				return -1;
			}
			if (rec_get(json_string_value(json_object_get(config, "description")),
				    PROV_REC_BUILT, built, sizeof(built)) &&
			    !series_parse_time(built, &extra[idx[k]].built))
				log_warn("%s: version %d '%s' has an unreadable build time '%s'",
					 tpl->name, vm->vmid, vm->name, built);
			json_decref(config);
		}
		free(idx);
	}
	return 0;
}

/* One prune decision: a version removed or kept, with why (series.h). */
struct tpl_decision {
	const char *series; /* borrowed from the config */
	const struct pve_vm_info *vm;
	struct series_verdict verdict;
	bool shared;  /* a container's: its archive's storage is shared (read before planning) */
	bool archive; /* a container's: its removal deletes the archive too (planned) */
};

/* Runs the pure retention decision (series_prune_decide) for every series in the config. */
static int tpl_prune_decide(const struct cfg *cfg, const struct pve_vm_list *vms,
			    const struct series_guest *guests,
			    const struct series_prune_guest *extra, const struct series_uses *uses,
			    time_t now, struct tpl_decision **ret, size_t *ret_n,
			    struct phx_err *err)
{
	struct tpl_decision *d = calloc(vms->n ? vms->n : 1, sizeof(*d));
	unsigned long *pinned = calloc(cfg->n_vms ? cfg->n_vms : 1, sizeof(*pinned));
	size_t nd = 0, n_pinned = 0;
	int rc = -1;

	if (!d || !pinned) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < cfg->n_vms; i++)
		if (cfg->vms[i].clone_from_vmid)
			pinned[n_pinned++] = cfg->vms[i].clone_from_vmid;
	for (size_t t = 0; t < cfg->n_templates; t++) {
		const struct cfg_template *tpl = &cfg->templates[t];
		const struct series_retention r = {tpl->versions.keep, tpl->versions.max_age_days,
						   uses, pinned, n_pinned};
		struct series_verdict *v = NULL;
		size_t nv = 0;

		if (!tpl->has_versions)
			continue;
		if (series_prune_decide(tpl->name, guests, extra, vms->n, &r, now, &v, &nv, err) <
		    0)
			goto out;
		/* a guest is in one series at most (its phx-<name> tag), so nd stays <= vms->n */
		for (size_t k = 0; k < nv && nd < vms->n; k++)
			d[nd++] = (struct tpl_decision){.series = tpl->name,
							.vm = &vms->items[v[k].guest],
							.verdict = v[k]};
		free(v);
	}
	*ret = d;
	*ret_n = nd;
	d = NULL;
	rc = 0;
out:
	free(pinned);
	free(d);
	return rc;
}

static void tpl_prune_plan(const struct cfg *cfg, const struct pve_vm_list *vms,
			   struct tpl_decision *d, size_t n, struct plan *p)
{
	bool *removing = calloc(vms->n ? vms->n : 1, sizeof(*removing));

	if (!removing) {
		p->oom = true;
		return;
	}
	for (size_t i = 0; i < n; i++)
		removing[d[i].vm - vms->items] = d[i].verdict.remove;
	for (size_t i = 0; i < n; i++) {
		const struct pve_vm_info *vm = d[i].vm, *user = NULL;
		const struct cfg_template *t = cfg_find_template(cfg, d[i].series);
		struct phx_err e = PHX_ERR_INIT;
		struct plan_action *a;
		char archive[400];

		if (!d[i].verdict.remove) {
			plan_note(p, d[i].series, "kept %d '%s': %s", vm->vmid, vm->name,
				  d[i].verdict.why);
			continue;
		}
		/* a container version also leaves its archive on the vztmpl storage */
		if (vm->lxc && (!t || prov_ct_archive_volid(t, vm->name, archive,
							    sizeof(archive), &e) < 0)) {
			p->oom = true;
			break;
		}
		d[i].archive = vm->lxc && cmd_archive_goes(vms, (size_t)(vm - vms->items),
							    removing, d[i].shared, &user);
		if (user)
			plan_note(p, d[i].series,
				  "the archive '%s' stays: container template %d on '%s' was built "
				  "from it too",
				  archive, user->vmid, user->node);
		a = cmd_plan_template_removal(p, d[i].series, vm, d[i].archive ? archive : NULL);
		plan_summary(p, a, "remove version %d '%s'", vm->vmid, vm->name);
		/* a removal says why as a change of its own: the summary stays the version */
		plan_change(p, a, "reason", NULL, d[i].verdict.why, false);
	}
	free(removing);
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
	struct series_prune_guest *extra = NULL;
	struct series_uses uses = SERIES_USES_INIT;
	struct tpl_decision *d = NULL;
	struct plan p = PLAN_INIT;
	size_t nd = 0, act = 0;
	json_t *json_out = opts->output == CLI_OUTPUT_JSON ? json_array() : NULL;
	int rc = -1, failed = 0;

	/* container template versions are pruned like VM ones */
	if (session_connect(s, err) < 0 || pve_cluster_guests(s->pve, &vms, err) < 0)
		goto out;
	if (cmd_series_guests(&vms, &guests, err) < 0)
		goto out;
	if (!(extra = calloc(vms.n ? vms.n : 1, sizeof(*extra)))) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < vms.n; i++)
		extra[i] = (struct series_prune_guest){vms.items[i].node, 0};
	if (cmd_linked_clone_uses(s->pve, &vms, &uses, err) < 0 ||
	    tpl_read_built(s, &vms, guests, extra, err) < 0 ||
	    tpl_prune_decide(s->cfg, &vms, guests, extra, &uses, time(NULL), &d, &nd, err) < 0)
		goto out;
	for (size_t i = 0; i < nd; i++) {
		const struct cfg_template *t = cfg_find_template(s->cfg, d[i].series);

		if (d[i].verdict.remove && d[i].vm->lxc && t &&
		    cmd_storage_shared(s->pve, d[i].vm->node, t->ct.template_storage, &d[i].shared,
				       err) < 0)
			goto out;
	}
	tpl_prune_plan(s->cfg, &vms, d, nd, &p);
	rc = cmd_plan_checked(opts, "prune", &p, err);
	if (rc != 0) {
		rc = rc > 0 ? 0 : -1;
		goto out;
	}
	rc = -1;
	for (size_t i = 0; i < nd; i++) {
		const struct plan_apply_ctx ax = {s->pve, NULL, session_task_timeout(s)};
		struct phx_err derr = PHX_ERR_INIT;

		if (!d[i].verdict.remove) {
			tpl_prune_report(json_out, d[i].series, d[i].vm, "kept", d[i].verdict.why);
			continue;
		}
		if (plan_apply_action(p.actions[act++], &ax, &derr) < 0) {
			act += d[i].archive; /* the archive stays with its container */
			log_warn("%s: could not remove %d '%s': %s", d[i].series, d[i].vm->vmid,
				 d[i].vm->name, derr.msg);
			tpl_prune_report(json_out, d[i].series, d[i].vm, "failed", derr.msg);
			failed++;
			continue;
		}
		if (d[i].archive && plan_apply_action(p.actions[act++], &ax, &derr) < 0)
			log_warn("%s: removed %d '%s' but not its archive: %s", d[i].series,
				 d[i].vm->vmid, d[i].vm->name, derr.msg);
		tpl_prune_report(json_out, d[i].series, d[i].vm, "removed", d[i].verdict.why);
	}
	for (size_t t = 0; !json_out && t < s->cfg->n_templates; t++) {
		const struct cfg_template *tpl = &s->cfg->templates[t];
		bool any = false;

		for (size_t i = 0; i < nd && !any; i++)
			any = d[i].series == tpl->name;
		if (!tpl->has_versions || any)
			continue;
		if (tpl->versions.max_age_days)
			printf("%s: keeping up to %lu version%s per node, none older than %lu "
			       "days: nothing to prune\n",
			       tpl->name, tpl->versions.keep, tpl->versions.keep == 1 ? "" : "s",
			       tpl->versions.max_age_days);
		else
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
	series_uses_release(&uses);
	free(extra);
	free(guests);
	pve_vm_list_release(&vms);
	return rc;
}

const struct cmd_entry cmd_prune_entry = {"prune", CMD_SERVER | CMD_LOCK, cmd_prune_run};
