/* cmd_deploy_ct: the containers of a deploy run (`containers` of the config, issue #21), read
 * -> plan (deploy_plan_ct) -> apply like the VMs of cmd_deploy.c, in the same run, under the
 * same lock and journal. Per container: read it (or its template, the template's storage type
 * and its record's archive), plan, check the privileges, apply with its own undo transaction
 * (a failure destroys the half-made container), start, read its address from
 * GET .../interfaces. --jobs runs containers in parallel; their clone requests are serialized
 * because a clone locks its source for the whole task (`CT is locked (disk)`).
 *
 * Owns: the container orchestration and its part of the report. Does not own: the decisions
 * (deploy_ct.c), the wire (pve_ct.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cmd.h"
#include "config.h"
#include "deploy.h"
#include "log.h"
#include "plan.h"
#include "preflight.h"
#include "pve_ct.h"
#include "record.h"
#include "series.h"
#include "txn.h"

struct dct_ct {
	const struct cfg_ct *ct; /* borrowed from the session's cfg */
	struct plan plan;
	char node[64];
	char ip[64];
	const char *state; /* static */
	bool changed, failed;
	char *error;   /* owned */
	char *removed; /* owned; the rollback report */
	char *note;    /* owned */
};

struct dct_run {
	struct dct_ct *cts; /* owned */
	size_t n;
	struct session *s;	 /* borrowed */
	struct pve_vm_list list; /* owned; the cluster's containers, read once */
	struct pve_vm_list vms;	 /* owned; the cluster's VMs (VMIDs are shared) */
	json_t *storages;	 /* owned; GET /storage */
	long task_timeout_s;
	unsigned long agent_timeout_s;
	pthread_mutex_t mu;	  /* guards next */
	pthread_mutex_t clone_mu; /* one clone request at a time (its source's `disk` lock) */
	size_t next;
};

int dct_select(const struct cli_opts *opts, const struct cfg *cfg, struct dct_run **ret,
	       struct phx_err *err)
{
	struct dct_run *r = calloc(1, sizeof(*r));
	size_t cap = opts->all ? cfg->n_cts : opts->n_vmids;

	if (!r || !(r->cts = calloc(cap ? cap : 1, sizeof(*r->cts)))) {
		free(r);
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < cfg->n_cts; i++) {
		bool want = opts->all;

		for (size_t k = 0; k < opts->n_vmids && !want; k++)
			want = opts->vmids[k] == cfg->cts[i].vmid;
		if (want)
			r->cts[r->n++].ct = &cfg->cts[i];
	}
	*ret = r;
	return 0;
}

size_t dct_count(const struct dct_run *r)
{
	return r ? r->n : 0;
}

void dct_free(struct dct_run *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		plan_release(&r->cts[i].plan);
		free(r->cts[i].error);
		free(r->cts[i].removed);
		free(r->cts[i].note);
	}
	free(r->cts);
	pve_vm_list_release(&r->list);
	json_decref(r->storages);
	free(r);
}

/* The guest vmid of the list when it is a container (lxc) or, !lxc, a VM; else NULL. */
static const struct pve_vm_info *dct_find(const struct pve_vm_list *l, int vmid, bool lxc)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->items[i].vmid == vmid && l->items[i].lxc == lxc)
			return &l->items[i];
	return NULL;
}

/* The container template a new container is made from. */
static int dct_source(const struct dct_run *r, const struct cfg_ct *ct,
		      const struct pve_vm_info **ret, struct phx_err *err)
{
	const struct pve_vm_info *best = NULL;

	if (ct->clone_from_vmid) {
		best = dct_find(&r->list, (int)ct->clone_from_vmid, true);
		if (!best)
			return phx_err_set(
				err, PHX_E_NOTFOUND,
				"clone_from_vmid %lu: no container with that VMID on the "
				"cluster%s",
				ct->clone_from_vmid,
				dct_find(&r->list, (int)ct->clone_from_vmid, false)
					? " (it is a VM: containers clone container "
					  "templates)"
					: "");
	} else {
		const struct cfg_template *t =
			cfg_find_template(r->s->cfg, ct->clone_from_template);

		/* NEEDSWORK: template_version; the newest version is the highest VMID */
		for (size_t i = 0; t && i < r->list.n; i++) {
			const struct pve_vm_info *g = &r->list.items[i];

			if (g->lxc && g->template && cfg_template_owns(t, (unsigned long)g->vmid) &&
			    (!best || g->vmid > best->vmid))
				best = g;
		}
		if (!best)
			return phx_err_set(err, PHX_E_NOTFOUND,
					   "template '%s' has no container template on the cluster "
					   "yet: provision it first",
					   ct->clone_from_template);
	}
	if (!best->template)
		return phx_err_set(
			err, PHX_E_CONFLICT,
			"CT %d '%s' is not a template: containers are made from container "
			"templates",
			best->vmid, best->name);
	*ret = best;
	return 0;
}

/* The type of the storage holding conf's rootfs ("lvmthin", "dir", ...), or NULL. */
static const char *dct_rootfs_type(const json_t *storages, const json_t *conf)
{
	const char *v = json_string_value(json_object_get(conf, "rootfs"));
	size_t n = v ? strcspn(v, ":") : 0, i;
	json_t *e;

	json_array_foreach(storages, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "storage"));

		if (id && v && strlen(id) == n && !strncmp(id, v, n))
			return json_string_value(json_object_get(e, "type"));
	}
	return NULL;
}

/* Waits for an address on the first NIC (by its MAC when known) from .../interfaces. */
static int dct_wait_ip(const struct dct_run *r, struct pve_client *c, struct dct_ct *d,
		       struct phx_err *err)
{
	const double deadline = clk_now() + (double)r->agent_timeout_s;
	unsigned delay = 200;

	for (;;) {
		struct pve_iface_list l = {NULL, 0};
		json_t *conf = NULL;
		char mac[64] = "";
		const char *net0;
		bool got;

		if (pve_ct_config_get(c, d->node, (int)d->ct->vmid, &conf, err) < 0)
			return -1;
		net0 = json_string_value(json_object_get(conf, "net0"));
		if (net0 && strstr(net0, "hwaddr="))
			snprintf(mac, sizeof(mac), "%.*s",
				 (int)strcspn(strstr(net0, "hwaddr=") + 7, ","),
				 strstr(net0, "hwaddr=") + 7);
		json_decref(conf);
		if (!net0)
			return 0; /* no NIC: no address to wait for */
		if (pve_ct_interfaces(c, d->node, (int)d->ct->vmid, &l, err) < 0)
			return -1;
		got = deploy_pick_ipv4(&l, *mac ? mac : NULL, d->ip, sizeof(d->ip));
		pve_iface_list_release(&l);
		if (got)
			return 0;
		if (clk_signal())
			return phx_err_set(
				err, PHX_E_INTERRUPTED,
				"stopped by signal %d while waiting for the address of CT "
				"%lu",
				clk_signal(), d->ct->vmid);
		if (clk_now() >= deadline)
			return phx_err_set(err, PHX_E_TIMEOUT,
					   "CT %lu '%s' has no IPv4 address after %lu s (GET "
					   ".../interfaces)",
					   d->ct->vmid, d->ct->name, r->agent_timeout_s);
		clk_sleep_ms(delay);
		delay = delay < 2000 ? delay * 2 : 2000;
	}
}

static int dct_one(struct dct_run *r, struct pve_client *c, struct txn *t, struct dct_ct *d,
		   struct phx_err *err)
{
	const struct cfg_ct *ct = d->ct;
	const struct pve_vm_info *have = dct_find(&r->list, (int)ct->vmid, true), *src = NULL;
	const struct plan_apply_ctx ax = {c, t, r->task_timeout_s};
	struct deploy_ct_input in = {.ct = ct};
	struct pve_vm_status st;
	json_t *conf = NULL, *src_conf = NULL;
	char archive[256] = "", bridge_acl[300] = "", *pending = NULL;
	int rc = -1;

	if (dct_find(&r->list, (int)ct->vmid, false)) {
		phx_err_set(
			err, PHX_E_CONFLICT,
			"VMID %lu is a VM's ('%s'): VMs and containers share VMIDs; pick another "
			"vmid",
			ct->vmid, dct_find(&r->list, (int)ct->vmid, false)->name);
		goto out;
	}
	if (have) {
		snprintf(d->node, sizeof(d->node), "%s", have->node);
		if (have->template) {
			phx_err_set(err, PHX_E_CONFLICT,
				    "CT %lu already exists ('%s' on '%s') and is a template: "
				    "refusing to touch it; pick another vmid",
				    ct->vmid, have->name, have->node);
			goto out;
		}
		if (pve_ct_config_get(c, d->node, (int)ct->vmid, &conf, err) < 0 ||
		    pve_ct_status_get(c, d->node, (int)ct->vmid, &st, err) < 0)
			goto out;
		if (!series_has_tag(json_string_value(json_object_get(conf, "tags")),
				    SERIES_TAG_OURS)) {
			phx_err_set(err, PHX_E_CONFLICT,
				    "CT %lu already exists ('%s' on '%s') and is not ours (no "
				    "'" SERIES_TAG_OURS
				    "' tag): refusing to touch it; pick another "
				    "vmid or remove it yourself",
				    ct->vmid, have->name, have->node);
			goto out;
		}
		log_info("CT %lu '%s' exists and is ours: converging", ct->vmid, ct->name);
		in.conf = conf;
		in.running = !strcmp(st.status, "running");
	} else {
		if (dct_source(r, ct, &src, err) < 0 ||
		    pve_ct_config_get(c, src->node, src->vmid, &src_conf, err) < 0)
			goto out;
		snprintf(d->node, sizeof(d->node), "%s", src->node);
		if (ct->node && strcmp(ct->node, src->node)) {
			/* NEEDSWORK: clone with target= from a shared storage, or migrate */
			phx_err_set(
				err, PHX_E_INPUT,
				"CT %lu: node '%s', but its template CT %d is on '%s': containers "
				"are made on their template's node",
				ct->vmid, ct->node, src->vmid, src->node);
			goto out;
		}
		in.src_vmid = src->vmid;
		in.src_conf = src_conf;
		in.src_storage_type = dct_rootfs_type(r->storages, src_conf);
		if (rec_get(json_string_value(json_object_get(src_conf, "description")), "archive",
			    archive, sizeof(archive)))
			in.archive = archive;
	}
	in.node = d->node;
	if (deploy_plan_ct(&in, &d->plan, &pending, err) < 0)
		goto out;
	if (ct->n_nics &&
	    pf_bridge_acl_path(c, ct->nics[0].bridge, bridge_acl, sizeof(bridge_acl), err) < 0)
		goto out;
	{
		struct pf_need needs[8];
		size_t n = deploy_ct_needs(&d->plan, &in, bridge_acl[0] ? bridge_acl : NULL, needs,
					   sizeof(needs) / sizeof(needs[0]));

		if (pf_check_privileges(c, needs, n, err) < 0)
			goto out;
	}
	d->changed = !plan_empty(&d->plan);
	if (r->s->opts->dry_run) {
		d->state = "planned";
		rc = 0;
		goto out;
	}
	plan_log_notes(&d->plan);
	for (size_t i = 0; i < d->plan.n; i++) {
		const struct plan_action *a = d->plan.actions[i];
		bool clone = strstr(a->path, "/clone") != NULL;
		int arc;

		if (clone)
			pthread_mutex_lock(&r->clone_mu);
		arc = plan_apply_action(a, &ax, err);
		if (clone)
			pthread_mutex_unlock(&r->clone_mu);
		if (arc < 0)
			goto out;
	}
	if (*pending && asprintf(&d->note, "CT %lu '%s' is running: restart it to apply %s",
				 ct->vmid, ct->name, pending) < 0) {
		d->note = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	if (!ct->no_start && dct_wait_ip(r, c, d, err) < 0)
		goto out;
	d->state = !have ? "created" : d->changed ? "updated" : "unchanged";
	rc = 0;
out:
	free(pending);
	json_decref(conf);
	json_decref(src_conf);
	return rc;
}

static void dct_run_one(struct dct_run *r, struct pve_client *c, struct dct_ct *d)
{
	struct phx_err err = PHX_ERR_INIT;
	struct txn *t = txn_new_journaled(c, r->s->journal);

	if (!t) {
		d->failed = true;
		d->state = "failed";
		d->error = strdup("out of memory");
		return;
	}
	if (dct_one(r, c, t, d, &err) == 0) {
		txn_commit(t);
		txn_free(t);
		return;
	}
	plan_release(&d->plan);
	d->failed = true;
	d->state = "failed";
	d->changed = false;
	if (txn_count(t)) {
		struct buf report = BUF_INIT;

		log_warn("CT %lu '%s' failed: %s; undoing what this run created", d->ct->vmid,
			 d->ct->name, err.msg);
		txn_rollback(t, &report);
		phx_err_append_report(&err, "rolled back", buf_str(&report));
		d->removed = buf_detach(&report);
	}
	txn_free(t);
	d->error = strdup(err.msg);
}

static void *dct_worker(void *arg)
{
	struct dct_run *r = arg;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c = session_new_client(r->s, &err);

	for (;;) {
		size_t i;

		pthread_mutex_lock(&r->mu);
		i = r->next++;
		pthread_mutex_unlock(&r->mu);
		if (i >= r->n)
			break;
		if (!c) {
			r->cts[i].failed = true;
			r->cts[i].state = "failed";
			r->cts[i].error = strdup(err.msg);
			continue;
		}
		dct_run_one(r, c, &r->cts[i]);
	}
	pve_client_free(c);
	return NULL;
}

int dct_run(struct dct_run *r, struct session *s, unsigned jobs, long task_timeout_s,
	    unsigned long agent_timeout_s, struct phx_err *err)
{
	pthread_t th[16];
	unsigned started = 0;

	if (!r->n)
		return 0;
	r->s = s;
	r->task_timeout_s = task_timeout_s;
	r->agent_timeout_s = agent_timeout_s;
	if (pve_cluster_guests(s->pve, &r->list, err) < 0 ||
	    pve_get(s->pve, "/storage", NULL, 0, &r->storages, err) < 0)
		return -1;
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->clone_mu, NULL);
	if (jobs > r->n)
		jobs = (unsigned)r->n;
	if (jobs > sizeof(th) / sizeof(th[0]))
		jobs = sizeof(th) / sizeof(th[0]);
	for (; jobs > 1 && started < jobs; started++)
		if (pthread_create(&th[started], NULL, dct_worker, r) != 0)
			break;
	if (!started)
		for (size_t i = 0; i < r->n; i++)
			dct_run_one(r, s->pve, &r->cts[i]);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&r->clone_mu);
	pthread_mutex_destroy(&r->mu);
	return 0;
}

void dct_plans(const struct dct_run *r, const struct plan **out)
{
	for (size_t i = 0; r && i < r->n; i++)
		out[i] = &r->cts[i].plan;
}

int dct_json_append(const struct dct_run *r, json_t *arr, struct phx_err *err)
{
	for (size_t i = 0; r && i < r->n; i++) {
		const struct dct_ct *d = &r->cts[i];
		json_t *o = json_pack("{sI ss ss ss ss? ss sb ss? ss?}", "vmid",
				      (json_int_t)d->ct->vmid, "name", d->ct->name, "type", "lxc",
				      "node", d->node, "ip", d->ip[0] ? d->ip : NULL, "state",
				      d->state ? d->state : "failed", "changed", d->changed,
				      "error", d->error, "note", d->note);

		if (!o || json_array_append_new(arr, o) < 0)
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		if (d->removed) {
			json_t *rm = json_array();

			for (const char *p = d->removed; rm && *p;) {
				size_t l = strcspn(p, "\n");

				json_array_append_new(rm, json_stringn(p, l));
				p += l + (p[l] == '\n');
			}
			json_object_set_new(o, "rollback", rm ? rm : json_null());
		}
	}
	return 0;
}

void dct_print_rows(const struct dct_run *r, bool header)
{
	if (header && r && r->n)
		printf("%-9s  %-12s  %-6s  %-15s  %s\n", "VMID", "NAME", "NODE", "IP", "STATE");
	for (size_t i = 0; r && i < r->n; i++) {
		const struct dct_ct *d = &r->cts[i];

		printf("%-9lu  %-12s  %-6s  %-15s  %s (container)\n", d->ct->vmid, d->ct->name,
		       d->node[0] ? d->node : "-", d->ip[0] ? d->ip : "-",
		       d->state ? d->state : "failed");
		if (d->note)
			log_warn("%s", d->note);
	}
}

size_t dct_failed(const struct dct_run *r, struct buf *msgs)
{
	size_t failed = 0;

	for (size_t i = 0; r && i < r->n; i++)
		if (r->cts[i].failed) {
			failed++;
			buf_printf(msgs, NULL, "\n  CT %lu '%s': %s", r->cts[i].ct->vmid,
				   r->cts[i].ct->name,
				   r->cts[i].error ? r->cts[i].error : "failed");
		}
	return failed;
}
