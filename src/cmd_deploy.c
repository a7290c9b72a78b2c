/* cmd_deploy: `orchestrator VMID... | --all` and `--destroy VMID` (Flow 2 of DESIGN.md).
 *
 * Order of work, so that bad input never reaches the server: load the config, check every
 * VMID, read the feature scripts and render what can be rendered without the server (a trial
 * render with a placeholder MAC); only then connect. Per VM, in config order (or by a bounded
 * pool of worker threads, one Proxmox client each): resolve the template, clone it (or
 * converge a VM that carries our tag), render the seed for the clone's MAC, upload it, set the
 * config in one POST, grow the disk, start, wait for the guest agent and read the address.
 * Everything this run creates for a VM is recorded in that VM's undo transaction before we
 * wait on it, so a failure removes the VM's clone and seed ISO and the other VMs go on.
 *
 * Owns: the orchestration and the report. Does not own: rendering (cloudinit.h), the ISO
 * (iso.h), the wire (pve.h), the pure helpers (deploy.h). */
#include "cmd.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "cloudinit.h"
#include "config.h"
#include "crypto.h"
#include "deploy.h"
#include "hardware.h"
#include "fsutil.h"
#include "guest.h"
#include "iso.h"
#include "log.h"
#include "plan.h"
#include "preflight.h"
#include "seed.h"
#include "series.h"
#include "session.h"
#include "txn.h"

/* Stands in for the clone's MAC in the trial render done before any request. */
#define DEP_PLACEHOLDER_MAC "02:00:00:00:00:00"

struct dep_result {
	char node[64];
	char ip[64];
	const char *state; /* static: created, updated, unchanged, planned, failed */
	bool changed;
	bool failed;
	char *error;   /* owned; NULL on success */
	char *removed; /* owned; the rollback report ("removed X\n..."), or NULL */
	char *note;    /* owned; e.g. that a reboot applies the new seed, or NULL */
};

/* One VM of this run, prepared before any request. */
struct dep_vm {
	const struct cfg_vm *vm;     /* borrowed from the session's cfg */
	size_t index;		     /* position in cfg->vms (JSON paths, config order) */
	char seed_id[24];	     /* "<vmid>": mixed into the instance-id */
	char *fqdn;		     /* owned; "<name>.<search_domain>" or NULL */
	struct buf *scripts;	     /* owned array [n_features]: each feature script's content */
	struct ci_feature *features; /* owned array; strings borrowed from cfg and scripts */
	size_t n_features;
	const char **packages; /* owned array of borrowed strings: VM's, then features' */
	size_t n_packages;
	char *sshkeys;	  /* native mode: owned ci_native_sshkeys_encode() result, or NULL */
	char *ipconfig;	  /* native mode: owned ci_native_ipconfig() result */
	char *nameserver; /* native mode: owned, space-joined DNS servers, or NULL */
	char *snippet;	  /* native mode with snippets_dir: owned rendered user-data, or NULL */
	size_t snippet_len;
	struct ci_route *routes; /* owned array: every NIC's routes in order (strings borrowed) */
	/* owned arrays [n_parts + n_vendor]: user_data_parts then the vendor-data parts, each
	 * part's text read from its source (part_text[i], owned) or borrowed from cfg */
	struct ci_part *parts;
	struct buf *part_text;
	size_t n_parts, n_vendor;
	struct plan plan; /* what this VM needs, read and decided before any change */
	char placed[64];  /* node: "auto": the node chosen for it, else "" */
	char placed_why[224];
	struct dep_result res;
};

struct dep_run {
	struct session *s; /* borrowed */
	struct dep_vm *vms;
	size_t n;
	long task_timeout_s;
	unsigned long agent_timeout_s;
	char snippet_storage[128]; /* storage holding defaults.snippets_dir, "" when unused */
	const char *agent_priv;	   /* what agent/ping needs on this Proxmox version */
	json_t *storages;	   /* owned; GET /storage, read once, then only read */
	json_t *ha;		   /* owned; GET /cluster/ha/resources when a VM has `ha`, or NULL */
	/* owned; the cluster's guests, read once: a VM costs the same requests however many
	 * there are (each VM's entry is only read; what a VM's run creates is its own) */
	struct pve_vm_list guests;
	/* --jobs: which VM runs next (deploy_next_job); all guarded by mu, waited on with cv */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t *node_of;     /* owned [n]: each VM's node, an index into in_flight */
	bool *started;	     /* owned [n] */
	unsigned *in_flight; /* owned [n]: VMs in flight per node */
	size_t n_started;
	unsigned per_node; /* deploy_jobs_per_node() */
};

/* ---- preparation (no network) ---- */

static void dep_vm_release(struct dep_vm *dv)
{
	if (dv->scripts)
		for (size_t i = 0; i < dv->n_features; i++)
			buf_release(&dv->scripts[i]);
	free(dv->scripts);
	free(dv->features);
	free(dv->packages);
	free(dv->fqdn);
	free(dv->sshkeys);
	free(dv->ipconfig);
	free(dv->nameserver);
	free(dv->snippet);
	free(dv->routes);
	if (dv->part_text)
		for (size_t i = 0; i < dv->n_parts + dv->n_vendor; i++)
			buf_release(&dv->part_text[i]);
	free(dv->part_text);
	free(dv->parts);
	free(dv->res.error);
	free(dv->res.removed);
	free(dv->res.note);
	plan_release(&dv->plan);
}

static char *dep_strdupf(struct phx_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static char *dep_strdupf(struct phx_err *err, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		return NULL;
	}
	return s;
}

static bool dep_strv_has(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* `macs`: NIC i's MAC (one for a VM without `networks`); `more` has room for
 * DEPLOY_MAX_NICS - 1 NICs after the first (borrowed by *in). */
static void dep_ci_input(const struct dep_vm *dv, const char (*macs)[DEPLOY_MAC_LEN + 1],
			 struct ci_network *more, struct ci_input *in)
{
	const struct cfg_vm *vm = dv->vm;
	const char *mac = macs[0];

	memset(in, 0, sizeof(*in));
	in->hostname = vm->name;
	in->fqdn = dv->fqdn;
	in->user.name = vm->user.username;
	in->user.password_hash = vm->user.password_hash;
	in->user.ssh_keys = (const char *const *)vm->user.ssh_public_keys.items;
	in->user.n_ssh_keys = vm->user.ssh_public_keys.n;
	in->packages = dv->packages;
	in->n_packages = dv->n_packages;
	in->features = dv->features;
	in->n_features = dv->n_features;
	in->network.mac = mac;
	in->network.ip_cidr = vm->network.ip;
	in->network.gateway = vm->network.gw;
	in->network.dns_servers = (const char *const *)vm->dns_servers.items;
	in->network.n_dns_servers = vm->dns_servers.n;
	in->network.search_domains =
		vm->search_domain ? (const char *const *)&vm->search_domain : NULL;
	in->network.n_search_domains = vm->search_domain ? 1 : 0;
	in->instance_seed = dv->seed_id;
	in->parts = dv->parts;
	in->n_parts = dv->n_parts;
	in->vendor_parts = dv->parts ? dv->parts + dv->n_parts : NULL;
	in->n_vendor_parts = dv->n_vendor;
	for (size_t i = 0, r = 0; i < vm->n_nics && i < DEPLOY_MAX_NICS; i++) {
		const struct cfg_nic *n = &vm->nics[i];
		struct ci_network *net = i ? &more[i - 1] : &in->network;

		if (i) {
			memset(net, 0, sizeof(*net));
			net->mac = macs[i];
			net->ip_cidr = n->v4.ip;
			net->gateway = n->v4.gw;
		}
		net->no_dhcp4 = n->ip4_none;
		net->ip6 = n->ip6;
		net->gateway6 = n->gateway6;
		net->routes = dv->routes ? dv->routes + r : NULL;
		net->n_routes = n->n_routes;
		r += n->n_routes;
		if (n->has_dns) {
			net->dns_servers = (const char *const *)n->dns.items;
			net->n_dns_servers = n->dns.n;
		}
		in->n_more_networks = i;
	}
	in->more_networks = in->n_more_networks ? more : NULL;
}

/* Stands in for the clones' MACs in the trial render. */
static const char dep_placeholder_macs[DEPLOY_MAX_NICS][DEPLOY_MAC_LEN + 1] = {
	DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC,
	DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC,
	DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC,
	DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC,
	DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC,
	DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC,
	DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC,
	DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC, DEP_PLACEHOLDER_MAC,
};

/* The VM's user_data_parts and vendor-data parts, each source file read now (deploy and
 * --check alike: a missing file is bad input before any request). */
static int dep_prepare_parts(const struct cfg *cfg, struct dep_vm *dv, struct phx_err *err)
{
	const struct cfg_vm *vm = dv->vm;
	size_t nv, n;
	const struct cfg_part *vendor = cfg_vm_vendor_data(cfg, vm, &nv);

	n = vm->n_user_data_parts + nv;
	if (!n)
		return 0;
	dv->parts = calloc(n, sizeof(*dv->parts));
	dv->part_text = calloc(n, sizeof(*dv->part_text));
	if (!dv->parts || !dv->part_text)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	dv->n_parts = vm->n_user_data_parts;
	dv->n_vendor = nv;
	for (size_t i = 0; i < n; i++) {
		bool user = i < vm->n_user_data_parts;
		const struct cfg_part *p = user ? &vm->user_data_parts[i]
						: &vendor[i - vm->n_user_data_parts];
		size_t k = user ? i : i - vm->n_user_data_parts;
		char where[48];

		snprintf(where, sizeof(where), user || vm->has_vendor_data ? "$.vms[%zu]" : "$.defaults",
			 dv->index);
		buf_init(&dv->part_text[i], 0);
		dv->parts[i].type = p->type;
		dv->parts[i].content = p->content;
		if (p->source && fs_read_file(p->source, &dv->part_text[i], err) < 0) {
			err->code = PHX_E_INPUT;
			return phx_err_wrap(err, "%s: %s.%s[%zu].source", cfg->path, where,
					    user ? "user_data_parts" : "vendor_data", k);
		}
		if (p->source)
			dv->parts[i].content = buf_str(&dv->part_text[i]);
	}
	return 0;
}

/* Reads the feature scripts and checks that the seed renders, all before any request. */
static int dep_prepare(const struct cfg *cfg, struct dep_vm *dv, struct phx_err *err)
{
	const struct cfg_vm *vm = dv->vm;
	size_t nf = vm->features.n, npk = vm->packages.n;

	snprintf(dv->seed_id, sizeof(dv->seed_id), "%lu", vm->vmid);
	if (dep_prepare_parts(cfg, dv, err) < 0)
		return -1;
	for (size_t i = 0, k = 0; i < vm->n_nics; i++) {
		if (vm->nics[i].n_routes && !dv->routes) {
			size_t n = 0;

			for (size_t j = 0; j < vm->n_nics; j++)
				n += vm->nics[j].n_routes;
			if (!(dv->routes = calloc(n, sizeof(*dv->routes))))
				return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		}
		for (size_t j = 0; j < vm->nics[i].n_routes; j++, k++) {
			dv->routes[k].to = vm->nics[i].routes[j].to;
			dv->routes[k].via = vm->nics[i].routes[j].via;
		}
	}
	if (vm->search_domain && asprintf(&dv->fqdn, "%s.%s", vm->name, vm->search_domain) < 0) {
		dv->fqdn = NULL;
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < nf; i++) {
		const struct cfg_feature *f = cfg_find_feature(cfg, vm->features.items[i]);

		if (f)
			npk += f->packages.n;
	}
	dv->scripts = calloc(nf ? nf : 1, sizeof(*dv->scripts));
	dv->features = calloc(nf ? nf : 1, sizeof(*dv->features));
	dv->packages = calloc(npk ? npk : 1, sizeof(*dv->packages));
	if (!dv->scripts || !dv->features || !dv->packages)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (size_t i = 0; i < vm->packages.n; i++)
		if (!dep_strv_has(dv->packages, dv->n_packages, vm->packages.items[i]))
			dv->packages[dv->n_packages++] = vm->packages.items[i];
	for (size_t i = 0; i < nf; i++) {
		const struct cfg_feature *f = cfg_find_feature(cfg, vm->features.items[i]);

		buf_init(&dv->scripts[i], 0);
		dv->n_features = i + 1;
		if (!f || !f->script_path)
			return phx_err_set(err, PHX_E_INPUT,
					   "%s: $.vms[%zu].features: the script of feature '%s' "
					   "was not found ('%s')",
					   cfg->path, dv->index, vm->features.items[i],
					   f ? f->script : "?");
		if (fs_read_file(f->script_path, &dv->scripts[i], err) < 0) {
			err->code = PHX_E_INPUT;
			return phx_err_wrap(err, "%s: $.vms[%zu].features: feature '%s'", cfg->path,
					    dv->index, f->name);
		}
		dv->features[i].name = f->name;
		dv->features[i].script_content = buf_str(&dv->scripts[i]);
		for (size_t k = 0; k < f->packages.n; k++)
			if (!dep_strv_has(dv->packages, dv->n_packages, f->packages.items[k]))
				dv->packages[dv->n_packages++] = f->packages.items[k];
	}
	if (cfg->defaults.cloudinit_mode == CFG_CLOUDINIT_NATIVE) {
		struct buf ns = BUF_INIT;

		if (dv->n_vendor && vm->has_vendor_data)
			return phx_err_set(err, PHX_E_INPUT,
					   "%s: $.vms[%zu].vendor_data: needs cloudinit_mode 'iso' "
					   "(the seed carries vendor-data)",
					   cfg->path, dv->index);
		if (dv->n_vendor)
			return phx_err_set(err, PHX_E_INPUT,
					   "%s: $.defaults.vendor_data: needs cloudinit_mode 'iso' "
					   "(the seed carries vendor-data)",
					   cfg->path);
		if (cfg->defaults.snippets_dir) {
			struct ci_input in;
			struct ci_network more[DEPLOY_MAX_NICS - 1];

			/* cicustom user=...: our user-data replaces the one Proxmox would
			 * generate from ciuser/cipassword/sshkeys, so features and packages
			 * work; the network still comes from ipconfig0 */
			if (!vm->has_user)
				return phx_err_set(err, PHX_E_INPUT,
						   "%s: $.vms[%zu].user_config: required with "
						   "defaults.snippets_dir (the snippet creates the "
						   "user)",
						   cfg->path, dv->index);
			dep_ci_input(dv, dep_placeholder_macs, more, &in);
			if (ci_render_user_data(&in, &dv->snippet, &dv->snippet_len, err) < 0)
				return phx_err_wrap(err, "%s: $.vms[%zu]: cloud-init", cfg->path,
						    dv->index);
		} else if (dv->n_parts) {
			return phx_err_set(err, PHX_E_INPUT,
					   "%s: $.vms[%zu].user_data_parts: need cloudinit_mode "
					   "'iso', or defaults.snippets_dir for native mode",
					   cfg->path, dv->index);
		} else if (vm->features.n || dv->n_packages) {
			return phx_err_set(
				err, PHX_E_INPUT,
				"%s: $.vms[%zu]: features and packages need cloudinit_mode "
				"'iso', or defaults.snippets_dir for native mode (Proxmox's "
				"native cloud-init cannot deliver them without a snippet)",
				cfg->path, dv->index);
		}
		if (vm->user.ssh_public_keys.n &&
		    ci_native_sshkeys_encode((const char *const *)vm->user.ssh_public_keys.items,
					     vm->user.ssh_public_keys.n, &dv->sshkeys, err) < 0)
			goto native_fail;
		if (ci_native_ipconfig(vm->network.ip, vm->network.gw, &dv->ipconfig, err) < 0)
			goto native_fail;
		for (size_t i = 0; i < vm->dns_servers.n; i++)
			if (buf_printf(&ns, err, "%s%s", i ? " " : "", vm->dns_servers.items[i]) <
			    0)
				goto native_fail;
		if (ns.len && !(dv->nameserver = buf_detach(&ns)))
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		buf_release(&ns);
		return 0;
	native_fail:
		buf_release(&ns);
		return phx_err_wrap(err, "%s: $.vms[%zu]", cfg->path, dv->index);
	}
	/* iso mode */
	{
		struct ci_output out = CI_OUTPUT_INIT;
		struct ci_input in;
		struct ci_network more[DEPLOY_MAX_NICS - 1];

		if (!vm->has_user)
			return phx_err_set(
				err, PHX_E_INPUT,
				"%s: $.vms[%zu].user_config: required with cloudinit_mode "
				"'iso' (the seed creates this user; give at least a "
				"username and an ssh_public_key)",
				cfg->path, dv->index);
		dep_ci_input(dv, dep_placeholder_macs, more, &in);
		if (ci_render(&in, &out, err) < 0)
			return phx_err_wrap(err, "%s: $.vms[%zu]: cloud-init", cfg->path,
					    dv->index);
		ci_output_release(&out);
	}
	return 0;
}

/* dep_prepare for each VM, reporting every VM that fails, one line each: the offline checks
 * of a deploy, which --check runs too (cmd_deploy_check), so the two cannot disagree. */
static int dep_prepare_all(const struct cfg *cfg, struct dep_vm *vms, size_t n, struct phx_err *err)
{
	enum phx_err_code code = PHX_E_INPUT;
	struct buf msgs = BUF_INIT;

	for (size_t i = 0; i < n; i++) {
		struct phx_err e = PHX_ERR_INIT;

		if (dep_prepare(cfg, &vms[i], &e) == 0)
			continue;
		if (e.code != PHX_E_INPUT)
			code = e.code;
		buf_printf(&msgs, NULL, "%s%s", msgs.len ? "\n" : "", e.msg);
	}
	if (!msgs.len)
		return 0;
	phx_err_set(err, code, "%s", buf_str(&msgs));
	buf_release(&msgs);
	return -1;
}

int cmd_deploy_check(const struct cfg *cfg, struct phx_err *err)
{
	struct dep_vm *vms = calloc(cfg->n_vms ? cfg->n_vms : 1, sizeof(*vms));
	int rc;

	if (!vms)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (size_t i = 0; i < cfg->n_vms; i++) {
		vms[i].vm = &cfg->vms[i];
		vms[i].index = i;
	}
	rc = dep_prepare_all(cfg, vms, cfg->n_vms, err);
	for (size_t i = 0; i < cfg->n_vms; i++)
		dep_vm_release(&vms[i]);
	free(vms);
	return rc;
}

/* ---- read: what one VM's plan needs from Proxmox (GETs only) and from local work ---- */

/* What was read and prepared for one VM; released with dep_read_release(). */
struct dep_read {
	const struct pve_vm_info *dst; /* the existing VM as read now (&cur), or NULL */
	const struct pve_vm_info *src; /* borrowed from the run's guest list */
	json_t *conf;		       /* the VM's config, or its template's */
	/* the existing VM read fresh (the run's guest list may be older than another run's
	 * work on it): its status, and dst's fields, borrowed from st, conf and the list */
	struct pve_vm_status st;
	struct pve_vm_info cur;
	char node[64];
	char mac[DEPLOY_MAC_LEN + 1];
	/* NIC i's MAC (macs[0] is `mac`); one without `networks` */
	char macs[DEPLOY_MAX_NICS][DEPLOY_MAC_LEN + 1];
	char sha[CRYPTO_SHA256_HEX_LEN + 1];
	char seed_volid[256];
	char iso_path[SEED_PATH_MAX]; /* local temp file of the seed, "" when none */
	char *snippet_path, *cicustom;
	bool seed_present, snippet_exists;
};

static void dep_read_release(struct dep_read *rd)
{
	json_decref(rd->conf);
	if (rd->iso_path[0])
		unlink(rd->iso_path);
	free(rd->snippet_path);
	free(rd->cicustom);
}

static const struct pve_vm_info *dep_find(const struct pve_vm_list *l, unsigned long vmid)
{
	for (size_t i = 0; i < l->n; i++)
		if ((unsigned long)l->items[i].vmid == vmid)
			return &l->items[i];
	return NULL;
}

/* Which guests of `l` a series pass looks at: the VM's own node only, or anywhere. */
static size_t dep_series_guests(const struct pve_vm_list *l, const char *node, bool anywhere,
				struct series_guest *g)
{
	size_t n = 0;

	for (size_t k = 0; k < l->n; k++)
		if (anywhere || !strcmp(l->items[k].node, node))
			g[n++] = (struct series_guest){(unsigned long)l->items[k].vmid,
						       l->items[k].name, l->items[k].tags,
						       l->items[k].template};
	return n;
}

/* The version of series `t` that vm->template_select picks, the one on the VM's own node
 * first (a series built on every node has a copy of each version there), then anywhere.
 * 0 when the series has none that fits. */
static unsigned long dep_series_pick(const struct cfg_template *t, const struct cfg_vm *vm,
				     const struct pve_vm_list *l, const char *node,
				     struct series_guest *g)
{
	for (int pass = 0; pass < 4; pass++) {
		const bool anywhere = pass & 1, validated = pass < 2;
		size_t n = dep_series_guests(l, node, anywhere, g);
		long i;

		switch (vm->template_select) {
		case CFG_SELECT_PINNED:
			if (pass >= 2)
				return 0;
			i = series_find_version(t->name, g, n, vm->template_version);
			break;
		case CFG_SELECT_LATEST:
			if (pass >= 2)
				return 0;
			i = series_newest(t->name, g, n, false);
			break;
		default:
			i = series_newest(t->name, g, n, validated);
			if (i >= 0 && !validated)
				log_warn("VM %lu '%s': template '%s' has no validated version: "
					 "cloning the newest, '%s' (run --provision-template "
					 "--validate, or set template_version \"latest\" to say "
					 "so)",
					 vm->vmid, vm->name, t->name, g[i].name);
			break;
		}
		if (i >= 0)
			return g[i].vmid;
	}
	return 0;
}

/* The template to clone: clone_from_vmid, or the version of the clone_from_template series
 * that template_version selects, or that template's fixed VMID. */
static int dep_source(const struct cfg *cfg, const struct cfg_vm *vm, const struct pve_vm_list *l,
		      const char *node, const struct pve_vm_info **ret, struct phx_err *err)
{
	unsigned long id = vm->clone_from_vmid;
	const struct pve_vm_info *src;
	const char *how = "clone_from_vmid";

	if (vm->clone_from_template) {
		const struct cfg_template *t = cfg_find_template(cfg, vm->clone_from_template);

		how = "clone_from_template";
		if (!t)
			return phx_err_set(err, PHX_E_INPUT,
					   "template '%s' is not in %s ($.templates)",
					   vm->clone_from_template, cfg->path);
		id = t->vmid;
		if (t->has_versions) {
			struct series_guest *g = calloc(l->n ? l->n : 1, sizeof(*g));

			if (!g)
				return phx_err_set(err, PHX_E_NOMEM, "out of memory");
			id = dep_series_pick(t, vm, l, node, g);
			free(g);
		}
		if (!id && vm->template_select == CFG_SELECT_PINNED)
			return phx_err_set(err, PHX_E_NOTFOUND,
					   "template_version '%s' of template '%s' is not on the "
					   "cluster (pruned or never built): 'orchestrator "
					   "--list-templates' shows the versions",
					   vm->template_version, t->name);
		if (!id)
			return phx_err_set(err, PHX_E_NOTFOUND,
					   "template '%s' has no built version yet: run "
					   "'orchestrator --provision-template %s' first",
					   t->name, t->name);
	}
	src = dep_find(l, id);
	if (!src)
		return phx_err_set(err, PHX_E_NOTFOUND,
				   "source template %lu (%s) does not exist on the cluster", id,
				   how);
	if (!src->template)
		return phx_err_set(err, PHX_E_CONFLICT,
				   "source VM %lu '%s' (%s) is not a template: convert it or "
				   "point %s at a template",
				   id, src->name, how, how);
	*ret = src;
	return 0;
}

/* Waits for the guest agent, then for an IPv4 address, both within timeout_s. A missing
 * agent fails; an agent without an address yet is only a warning (ip stays ""). */
static int dep_wait_agent(struct pve_client *c, const char *node, const struct cfg_vm *vm,
			  unsigned long timeout_s, const char *mac, char *ip, size_t iplen,
			  struct phx_err *err)
{
	double start = clk_now(), left;
	struct phx_err last = PHX_ERR_INIT;

	log_info("VM %lu '%s': waiting up to %lu s for the guest agent", vm->vmid, vm->name,
		 timeout_s);
	if (guest_wait_agent(c, node, (int)vm->vmid, (double)timeout_s,
			     "install and enable qemu-guest-agent in the template, or raise "
			     "defaults.agent_timeout_s",
			     err) < 0)
		return -1;
	left = (double)timeout_s - (clk_now() - start);
	if (!guest_wait_ipv4(c, node, (int)vm->vmid, mac, left > 0 ? left : 0, ip, iplen, &last))
		log_warn("VM %lu '%s': the guest agent reports no IPv4 address yet%s%s", vm->vmid,
			 vm->name, last.msg[0] ? ": " : "", last.msg);
	return 0;
}

/* ISO mode: renders the seed for the VM's MAC and builds the ISO in a temp file (local work,
 * no request); its content hash names the volume. Then asks whether that volume is already
 * on the storage (same name = same content: nothing to upload). */
static int dep_seed_iso(const struct dep_run *r, struct pve_client *c, const struct dep_vm *dv,
			struct dep_read *rd, struct phx_err *err)
{
	const char *storage = r->s->cfg->defaults.iso_storage;
	struct pve_volume_list l = {NULL, 0};
	struct ci_input in;
	struct ci_network more[DEPLOY_MAX_NICS - 1];
	char name[128];

	dep_ci_input(dv, (const char(*)[DEPLOY_MAC_LEN + 1])rd->macs, more, &in);
	if (seed_build_iso_in(r->s->tmp_dir, &in, rd->iso_path, rd->sha, err) < 0 ||
	    deploy_seed_name(dv->vm->vmid, rd->sha, name, sizeof(name), err) < 0)
		return -1;
	snprintf(rd->seed_volid, sizeof(rd->seed_volid), "%s:iso/%s", storage, name);
	if (pve_storage_content(c, rd->node, storage, "iso", &l, err) < 0)
		return -1;
	for (size_t i = 0; i < l.n; i++)
		rd->seed_present = rd->seed_present || !strcmp(l.items[i].volid, rd->seed_volid);
	pve_volume_list_release(&l);
	return 0;
}

/* Native mode: the hash recorded in the description stands for the ci* values we set, since
 * Proxmox never shows cipassword back. */
static int dep_native_sha(const struct dep_vm *dv, char ret[CRYPTO_SHA256_HEX_LEN + 1],
			  struct phx_err *err)
{
	const struct cfg_vm *vm = dv->vm;
	const char *parts[] = {vm->user.username, vm->user.password_hash, dv->sshkeys,
			       dv->ipconfig,	  dv->nameserver,	  vm->search_domain};
	struct buf b = BUF_INIT;
	int rc;

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (buf_printf(&b, err, "%s%c", parts[i] ? parts[i] : "", 0) < 0) {
			buf_release(&b);
			return -1;
		}
	if (dv->snippet && buf_append(&b, dv->snippet, dv->snippet_len, err) < 0) {
		buf_release(&b);
		return -1;
	}
	rc = crypto_sha256_buf(b.data, b.len, ret, err);
	buf_release(&b);
	return rc;
}

/* The storage whose directory holds snippets_dir (GET /storage: type dir/nfs/cifs/...,
 * `path` + "/snippets" == snippets_dir, content includes snippets). */
static int dep_snippet_storage(const json_t *storages, const char *snippets_dir, char *ret,
			       size_t len, struct phx_err *err)
{
	const json_t *st;
	size_t i;

	json_array_foreach(storages, i, st)
	{
		const char *path = json_string_value(json_object_get(st, "path"));
		const char *content = json_string_value(json_object_get(st, "content"));
		const char *id = json_string_value(json_object_get(st, "storage"));
		size_t n = path ? strlen(path) : 0;

		while (n > 1 && path[n - 1] == '/')
			n--;
		if (!id || !path || !content || strstr(content, "snippets") == NULL ||
		    strncmp(snippets_dir, path, n) || strcmp(snippets_dir + n, "/snippets"))
			continue;
		snprintf(ret, len, "%s", id);
		return 0;
	}
	return phx_err_set(err, PHX_E_RUNTIME,
			   "defaults.snippets_dir '%s' is not the 'snippets' directory of any "
			   "storage with content 'snippets' (GET /storage)",
			   snippets_dir);
}

/* Where a VM that does not exist yet goes: the node placement chose, else its configured one,
 * else the session's. */
static const char *dep_new_node(const struct dep_run *r, const struct dep_vm *dv)
{
	const char *node = cfg_vm_node(r->s->cfg, dv->vm);

	return dv->placed[0] ? dv->placed : node ? node : r->s->node;
}

/* Another run is making the VM (Proxmox's lock "clone" or "create"): waits for the lock to go,
 * within the task timeout, rereading the VM's status into rd->st. 1: it is there and
 * unlocked; 0: it went away (that run failed and removed it); -1: still locked at the
 * deadline, stopped, or an error. */
static int dep_wait_created(const struct dep_run *r, struct pve_client *c, const struct cfg_vm *vm,
			    struct dep_read *rd, struct phx_err *err)
{
	const double deadline = clk_now() + (double)r->task_timeout_s;
	unsigned delay = 250;
	char lock[sizeof(rd->st.lock)];

	snprintf(lock, sizeof(lock), "%s", rd->st.lock);
	log_info("VM %lu is being created by another run (lock: %s); waiting", vm->vmid, lock);
	for (;;) {
		double left = deadline - clk_now();

		if (clk_signal())
			return phx_err_set(err, PHX_E_INTERRUPTED,
					   "stopped by signal %d while waiting for VM %lu, which "
					   "another run is creating",
					   clk_signal(), vm->vmid);
		if (left <= 0)
			return phx_err_set(
				err, PHX_E_TIMEOUT,
				"VM %lu is still being created by another run (lock: "
				"%s) after %ld s: rerun once that run is done, or remove "
				"the VM if that run died",
				vm->vmid, lock, r->task_timeout_s);
		clk_sleep_ms(left * 1000 < delay ? (unsigned)(left * 1000) + 1 : delay);
		delay = delay < 1000 ? delay * 2 : 2000;
		if (pve_vm_status_get(c, rd->node, (int)vm->vmid, &rd->st, err) < 0) {
			if (err->code != PHX_E_NOTFOUND)
				return -1;
			phx_err_clear(err);
			log_info("VM %lu is gone (the run creating it failed): cloning it anew",
				 vm->vmid);
			return 0;
		}
		if (!deploy_lock_is_creation(rd->st.lock)) {
			log_info("VM %lu: the other run's %s is done", vm->vmid, lock);
			return 1;
		}
	}
}

/* An existing VM (not a template) read fresh: its status and config. One another run is
 * creating is waited for (dep_wait_created) and then treated as a rerun would: converged when
 * it is ours, refused when not. rd->dst stays NULL when it went away meanwhile. */
static int dep_read_existing(const struct dep_run *r, struct pve_client *c, const struct cfg_vm *vm,
			     const struct pve_vm_info *listed, struct dep_read *rd,
			     struct phx_err *err)
{
	const char *tags, *name;

	snprintf(rd->node, sizeof(rd->node), "%s", listed->node);
	if (pve_vm_status_get(c, rd->node, (int)vm->vmid, &rd->st, err) < 0) {
		if (err->code != PHX_E_NOTFOUND)
			return -1;
		phx_err_clear(err); /* gone since the guest list was read */
		return 0;
	}
	if (deploy_lock_is_creation(rd->st.lock)) {
		int rc = dep_wait_created(r, c, vm, rd, err);

		if (rc <= 0)
			return rc;
	}
	if (pve_vm_config_get(c, rd->node, (int)vm->vmid, &rd->conf, err) < 0)
		return -1;
	tags = json_string_value(json_object_get(rd->conf, "tags"));
	name = json_string_value(json_object_get(rd->conf, "name"));
	if (!series_has_tag(tags, SERIES_TAG_OURS))
		return phx_err_set(
			err, PHX_E_CONFLICT,
			"VM %lu already exists ('%s' on '%s') and is not ours (no '" SERIES_TAG_OURS
			"' tag): refusing to touch it; pick another vmid or remove it "
			"yourself",
			vm->vmid, name ? name : listed->name, rd->node);
	/* borrowed: conf and st live as long as rd */
	rd->cur = (struct pve_vm_info){
		.vmid = (int)vm->vmid,
		.name = (char *)(name ? name : listed->name),
		.node = rd->node,
		.tags = (char *)tags,
		.status = rd->st.status,
	};
	rd->dst = &rd->cur;
	return 0;
}

static int dep_read(struct dep_run *r, struct pve_client *c, const struct dep_vm *dv,
		    struct dep_read *rd, struct phx_err *err)
{
	const struct cfg *cfg = r->s->cfg;
	const struct cfg_vm *vm = dv->vm;
	const struct pve_vm_info *listed = dep_find(&r->guests, vm->vmid);

	if (listed && listed->template)
		return phx_err_set(
			err, PHX_E_CONFLICT,
			"VM %lu already exists ('%s' on '%s') and is not ours (it is a "
			"template): refusing to touch it; pick another vmid or remove it "
			"yourself",
			vm->vmid, listed->name, listed->node);
	if (listed && dep_read_existing(r, c, vm, listed, rd, err) < 0)
		return -1;
	if (rd->dst) {
		char *net0 = NULL;

		log_info("VM %lu '%s' exists and is ours: converging", vm->vmid, vm->name);
		/* converging keeps the VM's MAC */
		if (deploy_net_rebridge(json_string_value(json_object_get(rd->conf, "net0")),
					vm->network.bridge, NULL, &net0, rd->mac, err) < 0)
			return -1;
		free(net0);
	} else {
		snprintf(rd->node, sizeof(rd->node), "%s", dep_new_node(r, dv));
		/* a clone starts as its template: plan against the template's config */
		if (dep_source(cfg, vm, &r->guests, rd->node, &rd->src, err) < 0 ||
		    pve_vm_config_get(c, rd->src->node, rd->src->vmid, &rd->conf, err) < 0 ||
		    deploy_mac_for_vmid(vm->vmid, rd->mac, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < vm->n_nics; i++)
		if (deploy_nic_mac(vm, i, rd->dst ? rd->conf : NULL, rd->macs[i], err) < 0)
			return -1;
	if (vm->n_nics) /* the first NIC's, which the guest's address is picked by */
		memcpy(rd->mac, rd->macs[0], sizeof(rd->mac));
	else
		memcpy(rd->macs[0], rd->mac, sizeof(rd->mac));
	if (cfg->defaults.cloudinit_mode != CFG_CLOUDINIT_NATIVE)
		return dep_seed_iso(r, c, dv, rd, err);
	if (dep_native_sha(dv, rd->sha, err) < 0)
		return -1;
	if (dv->snippet) {
		char name[96];

		deploy_snippet_name(vm->vmid, name, sizeof(name));
		if (asprintf(&rd->snippet_path, "%s/%s", cfg->defaults.snippets_dir, name) < 0 ||
		    asprintf(&rd->cicustom, "user=%s:snippets/%s", r->snippet_storage, name) < 0)
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		rd->snippet_exists = fs_exists(rd->snippet_path);
	}
	return 0;
}

/* The HA resource vm:<vmid> of GET /cluster/ha/resources (borrowed), or NULL. */
static const json_t *dep_ha_entry(const json_t *ha, unsigned long vmid)
{
	char sid[32];
	size_t i;
	json_t *e;

	snprintf(sid, sizeof(sid), "vm:%lu", vmid);
	json_array_foreach(ha, i, e)
		if (json_is_string(json_object_get(e, "sid")) &&
		    !strcmp(json_string_value(json_object_get(e, "sid")), sid))
			return e;
	return NULL;
}

/* ---- one VM: read, plan, then print or apply ---- */

/* plan_apply, filling in first what only the clone can tell: a new clone's drives that get
 * options (hw_plan_disks: pending values) are read from its config right before the request
 * that sets them, which comes before the start. */
static int dep_apply(struct pve_client *c, const char *node, const struct cfg_vm *vm,
		     struct plan *p, const struct plan_apply_ctx *ax, struct phx_err *err)
{
	plan_log_notes(p);
	for (size_t i = 0; i < p->n; i++) {
		struct plan_action *a = p->actions[i];
		json_t *conf = NULL;
		int rc = 0;

		for (size_t k = 0; k < a->n_params && rc == 0; k++) {
			const char *key = a->params[k].key, *cur;
			char *v;

			if (!(a->params[k].flags & PLAN_PENDING))
				continue;
			if (!conf && (rc = pve_vm_config_get(c, node, (int)vm->vmid, &conf, err)) < 0)
				break;
			if (!(cur = json_string_value(json_object_get(conf, key)))) {
				rc = phx_err_set(err, PHX_E_API, "VM %lu: the new clone has no '%s'",
						 vm->vmid, key);
				break;
			}
			if (!(v = hw_drive_value(cur, hw_drive_opts_of(&vm->mach, key))))
				rc = phx_err_set(err, PHX_E_NOMEM, "out of memory");
			else
				rc = plan_param_fill(a, key, v, err);
			free(v);
		}
		json_decref(conf);
		if (rc < 0 || plan_apply_action(a, ax, err) < 0)
			return -1;
	}
	return 0;
}

static int dep_deploy_vm(struct dep_run *r, struct pve_client *c, struct txn *t, struct dep_vm *dv,
			 struct phx_err *err)
{
	const struct cfg *cfg = r->s->cfg;
	const struct cfg_vm *vm = dv->vm;
	const bool native = cfg->defaults.cloudinit_mode == CFG_CLOUDINIT_NATIVE;
	struct dep_read rd;
	struct deploy_plan_info info;
	struct deploy_vm_input in;
	const struct plan_apply_ctx ax = {c, t, r->task_timeout_s};
	bool running;
	int rc = -1;

	memset(&rd, 0, sizeof(rd));
	if (dep_read(r, c, dv, &rd, err) < 0)
		goto out;
	running = rd.dst && !strcmp(rd.dst->status, "running");
	in = (struct deploy_vm_input){
		.vm = vm,
		.dst = rd.dst,
		.src = rd.src,
		.conf = rd.conf,
		.node = rd.node,
		.src_shared = rd.src && deploy_disks_shared(r->storages, rd.conf),
		.mac = rd.mac,
		.macs = (const char(*)[DEPLOY_MAC_LEN + 1])rd.macs,
		.running = running,
		.seed_sha = rd.sha,
		.seed_storage = cfg->defaults.iso_storage,
		.seed_volid = native ? NULL : rd.seed_volid,
		.seed_file = rd.iso_path,
		.seed_present = rd.seed_present,
		.cicustom = rd.cicustom,
		.snippet_path = rd.snippet_path,
		.snippet = dv->snippet,
		.snippet_len = dv->snippet_len,
		.snippet_exists = rd.snippet_exists,
		.sshkeys = dv->sshkeys,
		.ipconfig = dv->ipconfig,
		.nameserver = dv->nameserver,
		.ha = dep_ha_entry(r->ha, vm->vmid),
		.allow_disk_removal = r->s->opts->allow_disk_removal,
		.ha_managed = rd.dst && rd.st.ha_managed,
	};
	snprintf(dv->res.node, sizeof(dv->res.node), "%s", rd.node);
	if (deploy_plan_vm(&in, &dv->plan, &info, err) < 0)
		goto out;
	if (dv->placed_why[0])
		plan_note(&dv->plan, dv->plan.n ? dv->plan.actions[0]->object : vm->name, "%s",
			  dv->placed_why);
	if (!rd.dst) {
		char path[400];

		deploy_clone_path_note(&in, path, sizeof(path));
		plan_note(&dv->plan, dv->plan.n ? dv->plan.actions[0]->object : vm->name, "%s",
			  path);
		log_msg(deploy_clone_path(&in) == DEPLOY_CLONE_OWN_NODE ? PHX_LOG_DEBUG
									: PHX_LOG_INFO,
			"VM %lu '%s': %s", vm->vmid, vm->name, path);
	}
	{
		/* everything this VM's plan needs, before its first change */
		struct pf_need needs[8 + 2 * DEPLOY_MAX_NICS];
		json_t *vnets;
		size_t n;

		if (pf_sdn_vnets(c, &vnets, err) < 0)
			goto out;
		n = deploy_plan_needs(&dv->plan, &in, vnets, r->agent_priv, needs,
				      sizeof(needs) / sizeof(needs[0]));
		json_decref(vnets);
		if (pf_check_privileges(c, needs, n, err) < 0)
			goto out;
	}
	dv->res.changed = !plan_empty(&dv->plan);
	if (r->s->opts->dry_run) {
		dv->res.state = "planned";
		rc = 0;
		goto out;
	}
	if (dep_apply(c, rd.node, vm, &dv->plan, &ax, err) < 0)
		goto out;
	if (running) {
		bool must = false;
		unsigned long wait_s;

		if ((info.seed_changed || info.hw_changed) &&
		    !(dv->res.note = dep_strdupf(err,
						 "VM %lu '%s' is running: reboot it to apply "
						 "the new %s",
						 vm->vmid, vm->name,
						 info.seed_changed ? "cloud-init seed"
								   : "hardware settings")))
			goto out;
		/* a VM started recently (a run stopped while its guest booted) gets the rest of
		 * the agent timeout; one whose agent is gone long since is converged anyway */
		wait_s = deploy_running_agent_wait(rd.st.uptime, r->agent_timeout_s, &must);
		if (must)
			log_info("VM %lu '%s' was started %lld s ago: its guest may still be "
				 "booting",
				 vm->vmid, vm->name, rd.st.uptime);
		if (dep_wait_agent(c, rd.node, vm, wait_s, rd.mac, dv->res.ip, sizeof(dv->res.ip),
				   err) < 0) {
			if (must) {
				phx_err_wrap(err, "VM %lu was started %lld s before this run",
					     vm->vmid, rd.st.uptime);
				goto out;
			}
			log_warn("VM %lu '%s': %s", vm->vmid, vm->name, err->msg);
			phx_err_clear(err);
		}
	} else if (vm->no_start) {
		if (!(dv->res.note = dep_strdupf(err,
						 "VM %lu '%s': start false: created and configured, "
						 "not started; its guest agent was not awaited",
						 vm->vmid, vm->name)))
			goto out;
	} else if (dep_wait_agent(c, rd.node, vm, r->agent_timeout_s, rd.mac, dv->res.ip,
				  sizeof(dv->res.ip), err) < 0) {
		goto out;
	}
	dv->res.state = !rd.dst ? "created" : dv->res.changed ? "updated" : "unchanged";
	rc = 0;
out:
	dep_read_release(&rd);
	return rc;
}

/* Runs one VM with its own undo list; records the outcome in dv->res. */
static void dep_run_one(struct dep_run *r, struct pve_client *c, struct dep_vm *dv)
{
	struct phx_err err = PHX_ERR_INIT;
	struct txn *t;

	if (clk_signal()) {
		/* stopped: the VMs not begun are not even read */
		dv->res.failed = true;
		dv->res.state = "failed";
		if (asprintf(&dv->res.error, "not started: stopped by signal %d", clk_signal()) < 0)
			dv->res.error = NULL;
		return;
	}
	t = txn_new_journaled(c, r->s->journal);
	if (!t) {
		dv->res.failed = true;
		dv->res.state = "failed";
		dv->res.error = strdup("out of memory");
		return;
	}
	if (dep_deploy_vm(r, c, t, dv, &err) == 0) {
		txn_commit(t);
		txn_free(t);
		return;
	}
	/* a VM that failed contributes nothing to a dry run's plan */
	plan_release(&dv->plan);
	dv->res.failed = true;
	dv->res.state = "failed";
	dv->res.changed = false;
	if (txn_count(t)) {
		struct buf report = BUF_INIT;

		log_warn("VM %lu '%s' failed: %s; undoing what this run created", dv->vm->vmid,
			 dv->vm->name, err.msg);
		txn_rollback(t, &report);
		phx_err_append_report(&err, "rolled back", buf_str(&report));
		dv->res.removed = buf_detach(&report);
		dv->res.changed = dv->res.removed && strstr(dv->res.removed, "could not remove");
	}
	txn_free(t);
	dv->res.error = strdup(err.msg);
}

static void dep_fail_all_from(struct dep_run *r, struct dep_vm *dv, const struct phx_err *err)
{
	(void)r;
	dv->res.failed = true;
	dv->res.state = "failed";
	dv->res.error = strdup(err->msg);
}

/* A worker takes the next VM whose node is under its bound (deploy_next_job) and waits when
 * none is; a VM that ends frees its node's slot and wakes the waiting workers. */
static void *dep_worker(void *arg)
{
	struct dep_run *r = arg;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c = session_new_client(r->s, &err);

	pthread_mutex_lock(&r->mu);
	for (;;) {
		long i = deploy_next_job(r->node_of, r->started, r->n, r->in_flight, r->per_node);

		if (i < 0) {
			if (r->n_started == r->n)
				break;
			pthread_cond_wait(&r->cv, &r->mu);
			continue;
		}
		r->started[i] = true;
		r->in_flight[r->node_of[i]]++;
		/* nothing left to start: idle workers may go (and free their connection) */
		if (++r->n_started == r->n)
			pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		if (!c)
			dep_fail_all_from(r, &r->vms[i], &err);
		else
			dep_run_one(r, c, &r->vms[i]);
		pthread_mutex_lock(&r->mu);
		r->in_flight[r->node_of[i]]--;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	pve_client_free(c);
	return NULL;
}

/* Each VM's node for the --jobs bound: where it is, else where it will be (as dep_read
 * decides); returns how many nodes have work. A cross-node clone's clone task runs beside
 * its template, but the rest of its work (migrate, upload, config, start) is on its node. */
static int dep_jobs_nodes(struct dep_run *r, size_t *ret_nodes, struct phx_err *err)
{
	const char **names = calloc(r->n ? r->n : 1, sizeof(*names));
	size_t k = 0;

	r->node_of = calloc(r->n ? r->n : 1, sizeof(*r->node_of));
	r->started = calloc(r->n ? r->n : 1, sizeof(*r->started));
	r->in_flight = calloc(r->n ? r->n : 1, sizeof(*r->in_flight));
	if (!names || !r->node_of || !r->started || !r->in_flight) {
		free(names);
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct dep_vm *dv = &r->vms[i];
		const struct pve_vm_info *dst = dep_find(&r->guests, dv->vm->vmid);
		const char *node = dst ? dst->node : dep_new_node(r, dv);
		size_t j = 0;

		while (j < k && strcmp(names[j], node ? node : ""))
			j++;
		if (j == k)
			names[k++] = node ? node : "";
		r->node_of[i] = j;
	}
	free(names);
	*ret_nodes = k;
	return 0;
}

/* ---- report ---- */

static const char *dep_dash(const char *s)
{
	return s && *s ? s : "-";
}

static int dep_print_json(const struct dep_vm *vms, size_t n, const struct dct_run *cts,
			  struct phx_err *err)
{
	json_t *arr = json_array();

	if (!arr)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct dep_result *res = &vms[i].res;
		json_t *o = json_pack("{sI ss ss ss? ss sb ss? ss?}", "vmid",
				      (json_int_t)vms[i].vm->vmid, "name", vms[i].vm->name, "node",
				      res->node, "ip", res->ip[0] ? res->ip : NULL, "state",
				      res->state ? res->state : "failed", "changed", res->changed,
				      "error", res->error, "note", res->note);

		if (!o || json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		}
		if (res->removed) {
			json_t *rm = json_array();
			const char *p = res->removed;

			while (rm && *p) {
				size_t l = strcspn(p, "\n");

				json_array_append_new(rm, json_stringn(p, l));
				p += l + (p[l] == '\n');
			}
			json_object_set_new(o, "rollback", rm ? rm : json_null());
		}
	}
	if (dct_json_append(cts, arr, err) < 0) {
		json_decref(arr);
		return -1;
	}
	return cmd_print_json(arr, err);
}

static void dep_print_table(const struct dep_vm *vms, size_t n)
{
	int wn = 4, wd = 4, wi = 2;

	for (size_t i = 0; i < n; i++) {
		int a = (int)strlen(vms[i].vm->name), b = (int)strlen(dep_dash(vms[i].res.node)),
		    c = (int)strlen(dep_dash(vms[i].res.ip));

		wn = a > wn ? a : wn;
		wd = b > wd ? b : wd;
		wi = c > wi ? c : wi;
	}
	printf("%-9s  %-*s  %-*s  %-*s  %s\n", "VMID", wn, "NAME", wd, "NODE", wi, "IP", "STATE");
	for (size_t i = 0; i < n; i++)
		printf("%-9lu  %-*s  %-*s  %-*s  %s\n", vms[i].vm->vmid, wn, vms[i].vm->name, wd,
		       dep_dash(vms[i].res.node), wi, dep_dash(vms[i].res.ip),
		       vms[i].res.state ? vms[i].res.state : "failed");
}

/* ---- the command ---- */

/* What a new VM will take of its node: its own cores and memory, else its template's when the
 * config describes the template (a clone keeps those), else 1 core and nothing known. */
static void dep_vm_size(const struct cfg *cfg, const struct cfg_vm *vm, uint64_t *ret_mem,
			unsigned *ret_cores)
{
	const struct cfg_template *t = cfg_vm_template(cfg, vm);

	*ret_mem = (uint64_t)(vm->memory_mb ? vm->memory_mb : t ? t->hardware.memory_mb : 0) << 20;
	*ret_cores = vm->cores ? vm->cores : t && t->hardware.cores ? t->hardware.cores : 1;
}

/* node: "auto": places the new VMs of the batch, in config order, by free memory and CPU
 * load (/cluster/resources; deploy_place_vm), spreading them; a VM that exists stays where
 * it is. Decided before any VM is worked on, so parallel jobs see one placement. */
static int dep_place(struct dep_run *r, struct phx_err *err)
{
	struct deploy_node *nodes = NULL;
	struct deploy_cpu *cpus = NULL;
	json_t *res = NULL, *e;
	size_t n = 0, i;
	bool any = false;
	int rc = -1;

	for (size_t k = 0; k < r->n; k++) {
		const char *node = cfg_vm_node(r->s->cfg, r->vms[k].vm);

		any = any || (node && !strcmp(node, DEPLOY_NODE_AUTO));
	}
	if (!any)
		return 0;
	if (pve_get(r->s->pve, "/cluster/resources", NULL, 0, &res, err) < 0)
		return -1;
	nodes = calloc(json_array_size(res) + 1, sizeof(*nodes));
	cpus = calloc(json_array_size(res) + 1, sizeof(*cpus));
	if (!nodes || !cpus) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(res, i, e)
	{
		const char *type = json_string_value(json_object_get(e, "type"));
		const char *status = json_string_value(json_object_get(e, "status"));
		long long v;

		if (!type || strcmp(type, "node"))
			continue;
		nodes[n].name = json_string_value(json_object_get(e, "node"));
		nodes[n].online = status && !strcmp(status, "online");
		if (pve_json_int(json_object_get(e, "maxmem"), "maxmem", &v, NULL) == 0)
			nodes[n].maxmem = (uint64_t)v;
		if (pve_json_int(json_object_get(e, "mem"), "mem", &v, NULL) == 0)
			nodes[n].mem = (uint64_t)v;
		if (pve_json_int(json_object_get(e, "maxcpu"), "maxcpu", &v, NULL) == 0 && v > 0)
			cpus[n].maxcpu = (unsigned)v;
		cpus[n].cpu = json_number_value(json_object_get(e, "cpu"));
		if (nodes[n].name)
			n++;
	}
	json_array_foreach(res, i, e)
	{
		const char *node = json_string_value(json_object_get(e, "node"));
		const char *type = json_string_value(json_object_get(e, "type"));

		/* our VMs, not our templates: those are where the images are, not the load */
		if (!type || strcmp(type, "qemu") || !node ||
		    json_is_true(json_object_get(e, "template")) ||
		    json_integer_value(json_object_get(e, "template")) == 1 ||
		    !series_has_tag(json_string_value(json_object_get(e, "tags")), SERIES_TAG_OURS))
			continue;
		for (size_t k = 0; k < n; k++)
			nodes[k].ours += !strcmp(nodes[k].name, node);
	}
	for (size_t k = 0; k < r->n; k++) {
		struct dep_vm *dv = &r->vms[k];
		const char *node = cfg_vm_node(r->s->cfg, dv->vm), *where = NULL;
		uint64_t mem;
		unsigned cores;
		long best;

		if (!node || strcmp(node, DEPLOY_NODE_AUTO))
			continue;
		json_array_foreach(res, i, e)
		{
			long long id;

			if (pve_json_int(json_object_get(e, "vmid"), "vmid", &id, NULL) == 0 &&
			    (unsigned long)id == dv->vm->vmid)
				where = json_string_value(json_object_get(e, "node"));
		}
		if (where) {
			snprintf(dv->placed, sizeof(dv->placed), "%s", where);
			continue;
		}
		dep_vm_size(r->s->cfg, dv->vm, &mem, &cores);
		best = deploy_place_vm(nodes, cpus, n, mem, cores);
		if (best < 0) {
			phx_err_set(err, PHX_E_RUNTIME,
				    "VM %lu '%s': node \"auto\", but no node is online",
				    dv->vm->vmid, dv->vm->name);
			goto out;
		}
		snprintf(dv->placed, sizeof(dv->placed), "%s", nodes[best].name);
		deploy_place_why(&nodes[best], &cpus[best], mem, cores, dv->placed_why,
				 sizeof(dv->placed_why));
		log_info("VM %lu '%s': %s", dv->vm->vmid, dv->vm->name, dv->placed_why);
	}
	rc = 0;
out:
	free(nodes);
	free(cpus);
	json_decref(res);
	return rc;
}

static int dep_cmp_index(const void *a, const void *b)
{
	const struct dep_vm *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

/* The VMs to work on, in config order, each VMID once. */
static int dep_select(const struct cli_opts *opts, const struct cfg *cfg, struct dep_vm **ret,
		      size_t *ret_n, struct phx_err *err)
{
	size_t cap = opts->all ? cfg->n_vms : opts->n_vmids, n = 0;
	struct dep_vm *v = calloc(cap ? cap : 1, sizeof(*v));
	struct buf missing = BUF_INIT;

	if (!v)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (opts->all && cfg->n_vms == 0 && cfg->n_cts == 0) {
		free(v);
		return phx_err_set(err, PHX_E_INPUT, "%s: $.vms: no VMs to deploy", cfg->path);
	}
	for (size_t i = 0; i < cap; i++) {
		const struct cfg_vm *vm =
			opts->all ? &cfg->vms[i] : cfg_find_vm(cfg, opts->vmids[i]);
		bool dup = false;

		if (!vm && !opts->all && cfg_find_ct(cfg, opts->vmids[i]))
			continue; /* a container: cmd_deploy_ct.c's */
		if (!vm) {
			buf_printf(&missing, NULL, "%sVMID %lu is not in %s (%s)",
				   missing.len ? "\n" : "", opts->vmids[i], cfg->path,
				   cfg->n_cts ? "$.vms or $.containers" : "$.vms");
			continue;
		}
		for (size_t k = 0; k < n; k++)
			dup = dup || v[k].vm == vm;
		if (dup)
			continue;
		v[n].vm = vm;
		v[n].index = (size_t)(vm - cfg->vms);
		n++;
	}
	if (missing.len) {
		phx_err_set(err, PHX_E_INPUT, "%s", buf_str(&missing));
		buf_release(&missing);
		free(v);
		return -1;
	}
	qsort(v, n, sizeof(*v), dep_cmp_index);
	*ret = v;
	*ret_n = n;
	return 0;
}

static int cmd_deploy_run(struct session *s, struct phx_err *err)
{
	const struct cli_opts *opts = s->opts;
	struct dep_run r = {.n = 0};
	struct dep_vm *vms = NULL;
	struct dct_run *cts = NULL;
	size_t n = 0, failed = 0;
	unsigned jobs;
	int rc = -1;

	memset(&r, 0, sizeof(r));
	if (dep_select(opts, s->cfg, &vms, &n, err) < 0 || dct_select(opts, s->cfg, &cts, err) < 0)
		goto out;
	if (dep_prepare_all(s->cfg, vms, n, err) < 0)
		goto out;
	if (session_connect(s, err) < 0)
		goto out;
	/* before the first change: a snippets_dir no storage serves would fail every VM */
	if (pve_get(s->pve, "/storage", NULL, 0, &r.storages, err) < 0 ||
	    pve_cluster_vms(s->pve, &r.guests, err) < 0)
		goto out;
	for (size_t i = 0; i < n && !r.ha; i++)
		if (vms[i].vm->has_ha &&
		    pve_get(s->pve, "/cluster/ha/resources", NULL, 0, &r.ha, err) < 0)
			goto out;
	if (s->cfg->defaults.cloudinit_mode == CFG_CLOUDINIT_NATIVE &&
	    s->cfg->defaults.snippets_dir &&
	    dep_snippet_storage(r.storages, s->cfg->defaults.snippets_dir, r.snippet_storage,
				sizeof(r.snippet_storage), err) < 0)
		goto out;
	{
		struct pve_version v;

		if (pve_version_get(s->pve, &v, err) < 0)
			goto out;
		/* qemu-server 9.0.3 split the agent's calls off VM.Monitor (NOTES.md §15) */
		r.agent_priv = v.major >= 9 ? "VM.GuestAgent.Audit" : "VM.Monitor";
	}
	r.s = s;
	r.vms = vms;
	r.n = n;
	if (dep_place(&r, err) < 0)
		goto out;
	r.task_timeout_s = session_task_timeout(s);
	r.agent_timeout_s = s->cfg->defaults.agent_timeout_s   ? s->cfg->defaults.agent_timeout_s
			    : s->cfg->proxmox.timeouts.agent_s ? s->cfg->proxmox.timeouts.agent_s
							       : 600;
	jobs = opts->jobs ? opts->jobs : 1;
	if (jobs > n)
		jobs = (unsigned)n;
	if (jobs > 1) {
		size_t busy_nodes = 0;

		if (dep_jobs_nodes(&r, &busy_nodes, err) < 0)
			goto out;
		r.per_node = deploy_jobs_per_node(jobs, busy_nodes);
		log_debug("--jobs %u over %zu node%s: at most %u VMs in flight per node", jobs,
			  busy_nodes, busy_nodes == 1 ? "" : "s", r.per_node);
	}
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	if (jobs <= 1) {
		for (size_t i = 0; i < n; i++)
			dep_run_one(&r, s->pve, &vms[i]);
	} else {
		pthread_t *th = calloc(jobs, sizeof(*th));
		unsigned started = 0;

		if (!th) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			pthread_cond_destroy(&r.cv);
			pthread_mutex_destroy(&r.mu);
			goto out;
		}
		for (; started < jobs; started++)
			if (pthread_create(&th[started], NULL, dep_worker, &r) != 0)
				break;
		if (started == 0) {
			/* no thread at all: do the work here rather than fail */
			for (size_t i = 0; i < n; i++)
				dep_run_one(&r, s->pve, &vms[i]);
		}
		for (unsigned i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		free(th);
	}
	pthread_cond_destroy(&r.cv);
	pthread_mutex_destroy(&r.mu);
	if (dct_run(cts, s, opts->jobs ? opts->jobs : 1, r.task_timeout_s, r.agent_timeout_s,
		    err) < 0)
		goto out;

	if (opts->dry_run) {
		const struct plan **plans = calloc(n + dct_count(cts) + 1, sizeof(*plans));

		for (size_t i = 0; plans && i < n; i++)
			plans[i] = &vms[i].plan;
		if (!plans) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		dct_plans(cts, plans + n);
		rc = cmd_plan_print(opts, "deploy", plans, n + dct_count(cts), err);
		free(plans);
		if (rc < 0)
			goto out;
		rc = -1;
	}
	if (opts->output == CLI_OUTPUT_JSON) {
		if (!opts->dry_run && dep_print_json(vms, n, cts, err) < 0)
			goto out;
	} else {
		if (n)
			dep_print_table(vms, n);
		dct_print_rows(cts, n == 0);
	}
	for (size_t i = 0; i < n; i++) {
		if (vms[i].res.note)
			log_warn("%s", vms[i].res.note);
		failed += vms[i].res.failed;
	}
	{
		struct buf ctb = BUF_INIT;
		size_t ct_failed = dct_failed(cts, &ctb);

		if (failed || ct_failed) {
			struct buf b = BUF_INIT;
			size_t all = n + dct_count(cts);

			buf_printf(&b, NULL, "%zu of %zu %s failed:", failed + ct_failed, all,
				   dct_count(cts) ? "guests" : all == 1 ? "VM" : "VMs");
			for (size_t i = 0; i < n; i++)
				if (vms[i].res.failed)
					buf_printf(&b, NULL, "\n  VM %lu '%s': %s", vms[i].vm->vmid,
						   vms[i].vm->name,
						   vms[i].res.error ? vms[i].res.error : "failed");
			buf_puts(&b, buf_str(&ctb), NULL);
			buf_release(&ctb);
			phx_err_set(err, PHX_E_RUNTIME, "%s", buf_str(&b));
			buf_release(&b);
			goto out;
		}
		buf_release(&ctb);
	}
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		dep_vm_release(&vms[i]);
	free(vms);
	dct_free(cts);
	json_decref(r.storages);
	json_decref(r.ha);
	pve_vm_list_release(&r.guests);
	free(r.node_of);
	free(r.started);
	free(r.in_flight);
	return rc;
}

const struct cmd_entry cmd_deploy_entry = {"deploy", CMD_SERVER | CMD_LOCK, cmd_deploy_run};
