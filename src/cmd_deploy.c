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
#include "fsutil.h"
#include "iso.h"
#include "log.h"
#include "series.h"
#include "session.h"
#include "txn.h"

#define DEP_MAX_PARAMS 32
#define DEP_MAX_CI_DRIVES 8
/* Agent polling: a cloud image boots in 10-60 s; a 3 s cap keeps the lag after boot small
 * at one cheap request per VM every 3 s. */
#define DEP_AGENT_DELAY_FIRST_MS 200
#define DEP_AGENT_DELAY_MAX_MS 3000
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
	struct dep_result res;
};

struct dep_run {
	struct session *s; /* borrowed */
	struct dep_vm *vms;
	size_t n;
	long task_timeout_s;
	unsigned long agent_timeout_s;
	char snippet_storage[128]; /* storage holding defaults.snippets_dir, "" when unused */
	pthread_mutex_t mu; /* guards next */
	size_t next;
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
	free(dv->res.error);
	free(dv->res.removed);
	free(dv->res.note);
}

static bool dep_strv_has(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

static void dep_ci_input(const struct dep_vm *dv, const char *mac, struct ci_input *in)
{
	const struct cfg_vm *vm = dv->vm;

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
}

/* Reads the feature scripts and checks that the seed renders, all before any request. */
static int dep_prepare(const struct cfg *cfg, struct dep_vm *dv, struct phx_err *err)
{
	const struct cfg_vm *vm = dv->vm;
	size_t nf = vm->features.n, npk = vm->packages.n;

	snprintf(dv->seed_id, sizeof(dv->seed_id), "%lu", vm->vmid);
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

		if (cfg->defaults.snippets_dir) {
			struct ci_input in;

			/* cicustom user=...: our user-data replaces the one Proxmox would
			 * generate from ciuser/cipassword/sshkeys, so features and packages
			 * work; the network still comes from ipconfig0 */
			if (!vm->has_user)
				return phx_err_set(err, PHX_E_INPUT,
						   "%s: $.vms[%zu].user_config: required with "
						   "defaults.snippets_dir (the snippet creates the "
						   "user)",
						   cfg->path, dv->index);
			dep_ci_input(dv, DEP_PLACEHOLDER_MAC, &in);
			if (ci_render_user_data(&in, &dv->snippet, &dv->snippet_len, err) < 0)
				return phx_err_wrap(err, "%s: $.vms[%zu]: cloud-init", cfg->path,
						    dv->index);
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

		if (!vm->has_user)
			return phx_err_set(
				err, PHX_E_INPUT,
				"%s: $.vms[%zu].user_config: required with cloudinit_mode "
				"'iso' (the seed creates this user; give at least a "
				"username and an ssh_public_key)",
				cfg->path, dv->index);
		dep_ci_input(dv, DEP_PLACEHOLDER_MAC, &in);
		if (ci_render(&in, &out, err) < 0)
			return phx_err_wrap(err, "%s: $.vms[%zu]: cloud-init", cfg->path,
					    dv->index);
		ci_output_release(&out);
	}
	return 0;
}

/* ---- undo actions (ctx: the VM's pve client) ---- */

struct dep_undo_vm {
	char node[64];
	int vmid;
	long timeout_s;
};

/* Stops and destroys the VM if it exists: a failed clone task already removed it. */
static int dep_undo_vm(void *ctx, void *arg, struct phx_err *err)
{
	struct pve_client *c = ctx;
	struct dep_undo_vm *u = arg;
	struct pve_vm_status st;
	bool exists = false;

	if (pve_vm_exists(c, u->vmid, &exists, NULL, err) < 0)
		return -1;
	if (!exists)
		return 0;
	if (pve_vm_status_get(c, u->node, u->vmid, &st, err) < 0)
		return -1;
	if (!strcmp(st.status, "running") &&
	    pve_vm_stop(c, u->node, u->vmid, u->timeout_s, err) < 0)
		return -1;
	return pve_vm_destroy(c, u->node, u->vmid,
			      PVE_DESTROY_PURGE | PVE_DESTROY_UNREFERENCED_DISKS, u->timeout_s,
			      err);
}

static const struct txn_action dep_undo_vm_action = {dep_undo_vm, free};

struct dep_undo_vol {
	char node[64];
	char storage[64];
	char volid[256];
	long timeout_s;
};

/* Deletes the volume if it is there: a failed upload may or may not have written it. */
static int dep_undo_vol(void *ctx, void *arg, struct phx_err *err)
{
	struct pve_client *c = ctx;
	struct dep_undo_vol *u = arg;
	struct pve_volume_list l = {NULL, 0};
	bool found = false;

	if (pve_storage_content(c, u->node, u->storage, "iso", &l, err) < 0)
		return -1;
	for (size_t i = 0; i < l.n; i++)
		found = found || !strcmp(l.items[i].volid, u->volid);
	pve_volume_list_release(&l);
	if (!found)
		return 0;
	return pve_storage_content_delete(c, u->node, u->volid, u->timeout_s, err);
}

static const struct txn_action dep_undo_vol_action = {dep_undo_vol, free};

/* ---- one VM ---- */

static const struct pve_vm_info *dep_find(const struct pve_vm_list *l, unsigned long vmid)
{
	for (size_t i = 0; i < l->n; i++)
		if ((unsigned long)l->items[i].vmid == vmid)
			return &l->items[i];
	return NULL;
}

/* The template to clone: clone_from_vmid, or the newest validated (else newest) version of
 * the clone_from_template series, or that template's fixed VMID. */
static int dep_source(const struct cfg *cfg, const struct cfg_vm *vm, const struct pve_vm_list *l,
		      const struct pve_vm_info **ret, struct phx_err *err)
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
			long i;

			if (!g)
				return phx_err_set(err, PHX_E_NOMEM, "out of memory");
			for (size_t k = 0; k < l->n; k++)
				g[k] = (struct series_guest){(unsigned long)l->items[k].vmid,
							     l->items[k].name, l->items[k].tags,
							     l->items[k].template};
			i = series_newest(t->name, g, l->n, true);
			if (i < 0)
				i = series_newest(t->name, g, l->n, false);
			if (i >= 0)
				id = g[i].vmid;
			free(g);
		}
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

/* Proxmox sends numbers as numbers or strings: compares either with `want`. */
static bool dep_conf_eq(const json_t *conf, const char *key, const char *want)
{
	const json_t *v = json_object_get(conf, key);
	const char *s = json_string_value(v);
	char num[32];

	if (!s && json_is_integer(v)) {
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		s = num;
	}
	return s && want && !strcmp(s, want);
}

static bool dep_agent_enabled(const json_t *conf)
{
	const char *s = json_string_value(json_object_get(conf, "agent"));
	const json_t *v = json_object_get(conf, "agent");

	if (json_is_integer(v))
		return json_integer_value(v) == 1;
	return s && (!strncmp(s, "1", 1) || !strncmp(s, "enabled=1", 9));
}

/* Polls agent/ping with backoff, then network-get-interfaces until an IPv4 address shows up,
 * all within timeout_s. A missing agent ends in PHX_E_TIMEOUT naming the likely cause; an
 * agent without an address yet is only a warning (ip stays ""). */
static int dep_wait_agent(struct pve_client *c, const char *node, const struct cfg_vm *vm,
			  unsigned long timeout_s, const char *mac, char *ip, size_t iplen,
			  struct phx_err *err)
{
	double start = clk_now(), left;
	unsigned delay = DEP_AGENT_DELAY_FIRST_MS;
	struct phx_err last = PHX_ERR_INIT;
	int vmid = (int)vm->vmid;

	log_info("VM %lu '%s': waiting up to %lu s for the guest agent", vm->vmid, vm->name,
		 timeout_s);
	for (;;) {
		phx_err_clear(&last);
		if (pve_agent_ping(c, node, vmid, &last) == 0)
			break;
		if (last.code == PHX_E_AUTH || last.code == PHX_E_PERM) {
			phx_err_set(err, last.code, "%s", last.msg);
			return -1;
		}
		left = (double)timeout_s - (clk_now() - start);
		if (left <= 0)
			return phx_err_set(
				err, PHX_E_TIMEOUT,
				"VM %lu '%s': the guest agent did not answer within %lu s "
				"(last answer: %s): install and enable qemu-guest-agent in "
				"the template, or raise defaults.agent_timeout_s",
				vm->vmid, vm->name, timeout_s, last.msg);
		clk_sleep_ms(left * 1000 < delay ? (unsigned)(left * 1000) + 1 : delay);
		delay = delay * 3 / 2 > DEP_AGENT_DELAY_MAX_MS ? DEP_AGENT_DELAY_MAX_MS
							       : delay * 3 / 2;
	}
	delay = DEP_AGENT_DELAY_FIRST_MS;
	for (;;) {
		struct pve_iface_list l = {NULL, 0};

		phx_err_clear(&last);
		if (pve_agent_network(c, node, vmid, &l, &last) == 0) {
			bool found = deploy_pick_ipv4(&l, mac, ip, iplen);

			pve_iface_list_release(&l);
			if (found)
				return 0;
		}
		left = (double)timeout_s - (clk_now() - start);
		if (left <= 0) {
			log_warn("VM %lu '%s': the guest agent reports no IPv4 address yet%s%s",
				 vm->vmid, vm->name, last.msg[0] ? ": " : "", last.msg);
			ip[0] = '\0';
			return 0;
		}
		clk_sleep_ms(left * 1000 < delay ? (unsigned)(left * 1000) + 1 : delay);
		delay = delay * 3 / 2 > DEP_AGENT_DELAY_MAX_MS ? DEP_AGENT_DELAY_MAX_MS
							       : delay * 3 / 2;
	}
}

/* POST .../clone and record the undo before waiting, so a failed clone task is cleaned
 * too. */
static int dep_clone(struct dep_run *r, struct pve_client *c, struct txn *t,
		     const struct cfg_vm *vm, const struct pve_vm_info *src, const char *node,
		     struct phx_err *err)
{
	char newid[24], srcid[24];
	const struct pve_param p[] = {
		{"newid", newid},
		{"name", vm->name},
		{"full", vm->full_clone ? "1" : "0"},
		/* Proxmox refuses storage for linked clones: they live beside their base */
		{"storage", vm->full_clone ? vm->storage : NULL},
		{"target", strcmp(node, src->node) ? node : NULL},
		{"pool", vm->pool},
	};
	json_t *upid = NULL;
	char *path;
	int rc = -1;

	snprintf(newid, sizeof(newid), "%lu", vm->vmid);
	snprintf(srcid, sizeof(srcid), "%d", src->vmid);
	path = pve_path(err, "nodes", src->node, "qemu", srcid, "clone", NULL);
	if (!path)
		return -1;
	log_info("VM %lu '%s': %s clone of template %d '%s'", vm->vmid, vm->name,
		 vm->full_clone ? "full" : "linked", src->vmid, src->name);
	if (pve_post(c, path, p, sizeof(p) / sizeof(p[0]), &upid, err) < 0)
		goto out;
	if (!pve_client_dry_run(c)) {
		struct dep_undo_vm *u = calloc(1, sizeof(*u));
		char what[128];

		if (!u) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		snprintf(u->node, sizeof(u->node), "%s", node);
		u->vmid = (int)vm->vmid;
		u->timeout_s = r->task_timeout_s;
		snprintf(what, sizeof(what), "VM %lu on '%s'", vm->vmid, node);
		if (txn_add_undo(t, what, &dep_undo_vm_action, u, err) < 0)
			goto out;
	}
	if (!json_is_string(upid)) {
		phx_err_set(err, PHX_E_API, "POST %s: expected a task id (UPID) in the answer",
			    path);
		goto out;
	}
	if (pve_task_wait(c, json_string_value(upid), r->task_timeout_s, NULL, err) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		phx_err_wrap(err, "clone template %d", src->vmid);
	json_decref(upid);
	free(path);
	return rc;
}

struct dep_params {
	struct pve_param p[DEP_MAX_PARAMS];
	size_t n;
};

static void dep_param(struct dep_params *ps, const char *key, const char *value)
{
	if (value && ps->n < DEP_MAX_PARAMS)
		ps->p[ps->n++] = (struct pve_param){key, value};
}

/* Scratch state of one dep_deploy_vm call, freed at its end. */
struct dep_work {
	json_t *conf; /* the clone's config (dry-run of a new VM: the template's) */
	char *net0, *tags, *desc, *ide2, *memory, *cores, *delete, *size, *cicustom;
	char iso_path[64]; /* local temp file of the seed, "" when none */
	char seed_volid[256];
	char old_seed[256]; /* the previous seed to delete after attaching the new one */
	char sha[CRYPTO_SHA256_HEX_LEN + 1];
	char mac[DEPLOY_MAC_LEN + 1];
};

static void dep_work_release(struct dep_work *w)
{
	json_decref(w->conf);
	free(w->net0);
	free(w->tags);
	free(w->desc);
	free(w->ide2);
	free(w->memory);
	free(w->cores);
	free(w->delete);
	free(w->size);
	free(w->cicustom);
	if (w->iso_path[0])
		unlink(w->iso_path);
}

/* ISO mode: render for the clone's MAC, build the ISO, upload it unless the same content is
 * already on the storage; sets w->seed_volid and w->sha. */
static int dep_seed_iso(struct dep_run *r, struct pve_client *c, struct txn *t, struct dep_vm *dv,
			const char *node, bool *ret_uploaded, struct dep_work *w,
			struct phx_err *err)
{
	const struct cfg *cfg = r->s->cfg;
	const char *storage = cfg->defaults.iso_storage;
	struct ci_output out = CI_OUTPUT_INIT;
	struct pve_volume_list l = {NULL, 0};
	struct iso_file files[3];
	struct ci_input in;
	char name[128];
	bool present = false;
	const char *tmpdir = getenv("TMPDIR");
	int fd, rc = -1;

	dep_ci_input(dv, w->mac, &in);
	if (ci_render(&in, &out, err) < 0)
		return phx_err_wrap(err, "render cloud-init");
	files[0] = (struct iso_file){"meta-data", out.meta_data, out.meta_data_len};
	files[1] = (struct iso_file){"network-config", out.network_config, out.network_config_len};
	files[2] = (struct iso_file){"user-data", out.user_data, out.user_data_len};
	snprintf(w->iso_path, sizeof(w->iso_path), "%s/phoenix-ci-XXXXXX",
		 tmpdir && *tmpdir && strlen(tmpdir) < 40 ? tmpdir : "/tmp");
	fd = mkstemp(w->iso_path);
	if (fd < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "create '%s'", w->iso_path);
		w->iso_path[0] = '\0';
		goto out;
	}
	close(fd);
	if (iso_build_cidata(files, 3, w->iso_path, w->sha, err) < 0)
		goto out;
	if (deploy_seed_name(dv->vm->vmid, w->sha, name, sizeof(name), err) < 0)
		goto out;
	snprintf(w->seed_volid, sizeof(w->seed_volid), "%s:iso/%s", storage, name);
	if (pve_storage_content(c, node, storage, "iso", &l, err) < 0)
		goto out;
	for (size_t i = 0; i < l.n; i++)
		present = present || !strcmp(l.items[i].volid, w->seed_volid);
	if (present) {
		/* same name = same content (the name carries its hash): nothing to upload */
		log_info("VM %lu '%s': seed '%s' is already on the storage", dv->vm->vmid,
			 dv->vm->name, w->seed_volid);
		*ret_uploaded = false;
		rc = 0;
		goto out;
	}
	if (!pve_client_dry_run(c)) {
		struct dep_undo_vol *u = calloc(1, sizeof(*u));

		if (!u) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		snprintf(u->node, sizeof(u->node), "%s", node);
		snprintf(u->storage, sizeof(u->storage), "%s", storage);
		snprintf(u->volid, sizeof(u->volid), "%s", w->seed_volid);
		u->timeout_s = r->task_timeout_s;
		if (txn_add_undo(t, w->seed_volid, &dep_undo_vol_action, u, err) < 0)
			goto out;
	}
	log_info("VM %lu '%s': uploading seed '%s'", dv->vm->vmid, dv->vm->name, w->seed_volid);
	if (pve_storage_upload(c, node, storage, "iso", w->iso_path, name, "sha256", w->sha, NULL,
			       r->task_timeout_s, NULL, err) < 0)
		goto out;
	*ret_uploaded = true;
	rc = 0;
out:
	pve_volume_list_release(&l);
	ci_output_release(&out);
	return rc;
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

/* The snippet file of a VM: "phoenix-ci-<vmid>-user.yaml". */
static void dep_snippet_name(unsigned long vmid, char *ret, size_t len)
{
	snprintf(ret, len, DEPLOY_SEED_PREFIX "%lu-user.yaml", vmid);
}

/* The storage whose directory holds snippets_dir (GET /storage: type dir/nfs/cifs/...,
 * `path` + "/snippets" == snippets_dir, content includes snippets). */
static int dep_snippet_storage(struct pve_client *c, const char *snippets_dir, char *ret,
			       size_t len, struct phx_err *err)
{
	json_t *list = NULL, *st;
	size_t i;
	int rc = -1;

	if (pve_get(c, "/storage", NULL, 0, &list, err) < 0)
		return -1;
	json_array_foreach(list, i, st) {
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
		rc = 0;
		break;
	}
	json_decref(list);
	if (rc < 0)
		phx_err_set(err, PHX_E_RUNTIME,
			    "defaults.snippets_dir '%s' is not the 'snippets' directory of any "
			    "storage with content 'snippets' (GET /storage)",
			    snippets_dir);
	return rc;
}

static int dep_undo_snippet(void *ctx, void *arg, struct phx_err *err)
{
	(void)ctx;
	if (unlink(arg) < 0 && errno != ENOENT)
		return phx_err_set_errno(err, PHX_E_IO, errno, "remove '%s'", (char *)arg);
	return 0;
}

static const struct txn_action dep_undo_snippet_action = {dep_undo_snippet, free};

/* Writes the VM's user-data snippet (atomically) and returns the cicustom value. */
static int dep_snippet_write(const struct cfg *cfg, const char *storage, struct txn *t,
			     const struct dep_vm *dv, bool dry, char **ret_cicustom,
			     struct phx_err *err)
{
	char name[96], *path = NULL;
	bool existed;

	dep_snippet_name(dv->vm->vmid, name, sizeof(name));
	if (asprintf(&path, "%s/%s", cfg->defaults.snippets_dir, name) < 0)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (asprintf(ret_cicustom, "user=%s:snippets/%s", storage, name) < 0) {
		free(path);
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	if (dry) {
		printf("write %s (%zu bytes of user-data)\n", path, dv->snippet_len);
		free(path);
		return 0;
	}
	existed = fs_exists(path);
	if (fs_write_atomic(path, dv->snippet, dv->snippet_len, 0644, err) < 0) {
		free(path);
		free(*ret_cicustom);
		*ret_cicustom = NULL;
		return phx_err_wrap(err, "cloud-init snippet");
	}
	if (existed) {
		free(path);
		return 0;
	}
	return txn_add_undo(t, path, &dep_undo_snippet_action, path, err);
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

static int dep_deploy_vm(struct dep_run *r, struct pve_client *c, struct txn *t, struct dep_vm *dv,
			 struct phx_err *err)
{
	const struct cfg *cfg = r->s->cfg;
	const struct cfg_vm *vm = dv->vm;
	const bool dry = pve_client_dry_run(c);
	const bool native = cfg->defaults.cloudinit_mode == CFG_CLOUDINIT_NATIVE;
	struct pve_vm_list l = {NULL, 0};
	const struct pve_vm_info *src = NULL, *dst;
	struct dep_work w;
	struct dep_params ps = {.n = 0};
	const char *node, *disk, *ci_keys[DEP_MAX_CI_DRIVES];
	size_t n_ci;
	bool converge, running = false, seed_changed = true, hw_changed = false;
	bool uploaded = false;
	char old_sha[CRYPTO_SHA256_HEX_LEN + 1] = "";
	int rc = -1;

	memset(&w, 0, sizeof(w));
	if (pve_cluster_vms(c, &l, err) < 0)
		goto out;
	dst = dep_find(&l, vm->vmid);
	converge = dst != NULL;
	if (converge) {
		if (dst->template || !series_has_tag(dst->tags, SERIES_TAG_OURS)) {
			phx_err_set(err, PHX_E_CONFLICT,
				    "VM %lu already exists ('%s' on '%s') and is not ours (%s): "
				    "refusing to touch it; pick another vmid or remove it yourself",
				    vm->vmid, dst->name, dst->node,
				    dst->template ? "it is a template"
						  : "no '" SERIES_TAG_OURS "' tag");
			goto out;
		}
		node = dst->node;
		running = !strcmp(dst->status, "running");
		log_info("VM %lu '%s' exists and is ours: converging", vm->vmid, vm->name);
		if (pve_vm_config_get(c, node, (int)vm->vmid, &w.conf, err) < 0)
			goto out;
	} else {
		node = cfg_vm_node(cfg, vm) ? cfg_vm_node(cfg, vm) : r->s->node;
		if (dep_source(cfg, vm, &l, &src, err) < 0 ||
		    dep_clone(r, c, t, vm, src, node, err) < 0)
			goto out;
		/* a dry run cloned nothing: plan against the template's config instead */
		if (pve_vm_config_get(c, dry ? src->node : node, dry ? src->vmid : (int)vm->vmid,
				      &w.conf, err) < 0)
			goto out;
	}
	snprintf(dv->res.node, sizeof(dv->res.node), "%s", node);

	if (deploy_net_rebridge(json_string_value(json_object_get(w.conf, "net0")),
				vm->network.bridge, &w.net0, w.mac, err) < 0)
		goto out;
	if (!dep_conf_eq(w.conf, "net0", w.net0))
		dep_param(&ps, "net0", w.net0);
	if (vm->cores) {
		if (!(w.cores = dep_strdupf(err, "%u", vm->cores)))
			goto out;
		if (!dep_conf_eq(w.conf, "cores", w.cores)) {
			dep_param(&ps, "cores", w.cores);
			hw_changed = true;
		}
	}
	if (vm->memory_mb) {
		if (!(w.memory = dep_strdupf(err, "%lu", vm->memory_mb)))
			goto out;
		if (!dep_conf_eq(w.conf, "memory", w.memory)) {
			dep_param(&ps, "memory", w.memory);
			hw_changed = true;
		}
	}
	if (!dep_agent_enabled(w.conf))
		dep_param(&ps, "agent", "enabled=1");
	{
		const char **want = calloc(vm->tags.n + 1, sizeof(*want));
		bool tags_changed = false;
		int trc;

		if (!want) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		want[0] = SERIES_TAG_OURS;
		for (size_t i = 0; i < vm->tags.n; i++)
			want[i + 1] = vm->tags.items[i];
		/* a new clone inherits the template's series tags: start from ours only */
		trc = deploy_tags_merge(converge ? dst->tags : NULL, want, vm->tags.n + 1, &w.tags,
					&tags_changed, err);
		free(want);
		if (trc < 0)
			goto out;
		if (tags_changed || !converge)
			dep_param(&ps, "tags", w.tags);
	}

	/* cloud-init */
	deploy_description_seed(json_string_value(json_object_get(w.conf, "description")), old_sha);
	n_ci = deploy_cloudinit_drives(w.conf, ci_keys, DEP_MAX_CI_DRIVES);
	if (!native) {
		const char *cur = json_string_value(json_object_get(w.conf, "ide2"));
		struct buf del = BUF_INIT;

		if (dep_seed_iso(r, c, t, dv, node, &uploaded, &w, err) < 0)
			goto out;
		seed_changed = !cur || strncmp(cur, w.seed_volid, strlen(w.seed_volid)) ||
			       (cur[strlen(w.seed_volid)] && cur[strlen(w.seed_volid)] != ',');
		if (seed_changed) {
			if (!(w.ide2 = dep_strdupf(err, "%s,media=cdrom", w.seed_volid)))
				goto out;
			dep_param(&ps, "ide2", w.ide2);
			if (cur && deploy_is_seed_volid(cur, vm->vmid))
				snprintf(w.old_seed, sizeof(w.old_seed), "%.*s",
					 (int)strcspn(cur, ","), cur);
		}
		/* Proxmox's own cloud-init drive would hand the guest a second seed */
		for (size_t i = 0; i < n_ci && i < DEP_MAX_CI_DRIVES; i++)
			if (strcmp(ci_keys[i], "ide2") &&
			    buf_printf(&del, err, "%s%s", del.len ? "," : "", ci_keys[i]) < 0) {
				buf_release(&del);
				goto out;
			}
		if (del.len) {
			w.delete = buf_detach(&del);
			dep_param(&ps, "delete", w.delete);
		}
		buf_release(&del);
	} else {
		if (dep_native_sha(dv, w.sha, err) < 0)
			goto out;
		seed_changed = strcmp(old_sha, w.sha) != 0;
		if (seed_changed && dv->snippet) {
			if (dep_snippet_write(cfg, r->snippet_storage, t, dv, dry, &w.cicustom,
					      err) < 0)
				goto out;
			dep_param(&ps, "cicustom", w.cicustom);
		} else if (seed_changed) {
			dep_param(&ps, "ciuser", vm->user.username);
			dep_param(&ps, "cipassword", vm->user.password_hash);
			dep_param(&ps, "sshkeys", dv->sshkeys);
		}
		if (seed_changed) {
			dep_param(&ps, "ipconfig0", dv->ipconfig);
			dep_param(&ps, "nameserver", dv->nameserver);
			dep_param(&ps, "searchdomain", vm->search_domain);
		}
		if (n_ci == 0) {
			/* the template has none: Proxmox generates the seed from this drive */
			if (!(w.ide2 = dep_strdupf(err, "%s:cloudinit", vm->storage)))
				goto out;
			dep_param(&ps, "ide2", w.ide2);
		}
	}
	if (!(w.desc = deploy_description(vm->description, cfg->path, vm->name, w.sha, err)))
		goto out;
	if (!dep_conf_eq(w.conf, "description", w.desc))
		dep_param(&ps, "description", w.desc);

	if (ps.n) {
		log_info("VM %lu '%s': setting %zu option%s", vm->vmid, vm->name, ps.n,
			 ps.n == 1 ? "" : "s");
		if (pve_vm_config_set(c, node, (int)vm->vmid, ps.p, ps.n, r->task_timeout_s, err) <
		    0) {
			phx_err_wrap(err, "configure");
			goto out;
		}
	}
	if (converge && !dry)
		/* the new seed is part of the VM now; a later failure must not delete it */
		txn_commit(t);
	if (w.old_seed[0] && strcmp(w.old_seed, w.seed_volid)) {
		struct phx_err derr = PHX_ERR_INIT;

		if (pve_storage_content_delete(c, node, w.old_seed, r->task_timeout_s, &derr) < 0)
			log_warn("VM %lu '%s': could not delete the previous seed '%s': %s",
				 vm->vmid, vm->name, w.old_seed, derr.msg);
	}

	/* grow the disk: only after the clone task is OK (we waited for it), never shrink */
	disk = deploy_system_disk(w.conf);
	if (vm->disk_size_gb) {
		uint64_t cur = 0, want = (uint64_t)vm->disk_size_gb << 30;

		if (!disk) {
			phx_err_set(err, PHX_E_API,
				    "the VM has no system disk (scsi0/virtio0/...) "
				    "to resize");
			goto out;
		}
		if (deploy_drive_size(json_string_value(json_object_get(w.conf, disk)), &cur, err) <
		    0)
			goto out;
		if (cur < want) {
			if (!(w.size = dep_strdupf(err, "%luG", vm->disk_size_gb)))
				goto out;
			log_info("VM %lu '%s': growing %s to %s", vm->vmid, vm->name, disk, w.size);
			if (pve_vm_resize(c, node, (int)vm->vmid, disk, w.size, r->task_timeout_s,
					  err) < 0) {
				phx_err_wrap(err, "resize %s", disk);
				goto out;
			}
			hw_changed = true;
		} else if (cur > want) {
			log_warn("VM %lu '%s': %s is larger than disk_size_gb %lu: not shrinking",
				 vm->vmid, vm->name, disk, vm->disk_size_gb);
		}
	}
	dv->res.changed = !converge || ps.n || hw_changed || uploaded;
	if (dry) {
		dv->res.state = "planned";
		rc = 0;
		goto out;
	}
	if (running) {
		if ((seed_changed || hw_changed) &&
		    !(dv->res.note =
			      dep_strdupf(err,
					  "VM %lu '%s' is running: reboot it to apply "
					  "the new %s",
					  vm->vmid, vm->name,
					  seed_changed ? "cloud-init seed" : "hardware settings")))
			goto out;
		/* best effort: a running VM of ours whose agent is gone is still converged */
		if (dep_wait_agent(c, node, vm, 1, w.mac, dv->res.ip, sizeof(dv->res.ip), err) <
		    0) {
			log_warn("VM %lu '%s': %s", vm->vmid, vm->name, err->msg);
			phx_err_clear(err);
		}
	} else {
		log_info("VM %lu '%s': starting", vm->vmid, vm->name);
		if (pve_vm_start(c, node, (int)vm->vmid, r->task_timeout_s, err) < 0) {
			phx_err_wrap(err, "start");
			goto out;
		}
		if (dep_wait_agent(c, node, vm, r->agent_timeout_s, w.mac, dv->res.ip,
				   sizeof(dv->res.ip), err) < 0)
			goto out;
	}
	dv->res.state = !converge ? "created" : dv->res.changed ? "updated" : "unchanged";
	rc = 0;
out:
	dep_work_release(&w);
	pve_vm_list_release(&l);
	return rc;
}

/* Runs one VM with its own undo list; records the outcome in dv->res. */
static void dep_run_one(struct dep_run *r, struct pve_client *c, struct dep_vm *dv)
{
	struct phx_err err = PHX_ERR_INIT;
	struct txn *t = txn_new(c);

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
	dv->res.failed = true;
	dv->res.state = "failed";
	dv->res.changed = false;
	if (txn_count(t)) {
		struct buf report = BUF_INIT;

		log_warn("VM %lu '%s' failed: %s; undoing what this run created", dv->vm->vmid,
			 dv->vm->name, err.msg);
		txn_rollback(t, &report);
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

static void *dep_worker(void *arg)
{
	struct dep_run *r = arg;
	struct phx_err err = PHX_ERR_INIT;
	struct pve_client *c = session_new_client(r->s, &err);

	for (;;) {
		size_t i;

		pthread_mutex_lock(&r->mu);
		i = r->next++;
		pthread_mutex_unlock(&r->mu);
		if (i >= r->n)
			break;
		if (!c)
			dep_fail_all_from(r, &r->vms[i], &err);
		else
			dep_run_one(r, c, &r->vms[i]);
	}
	pve_client_free(c);
	return NULL;
}

/* ---- report ---- */

static const char *dep_dash(const char *s)
{
	return s && *s ? s : "-";
}

static int dep_print_json(const struct dep_vm *vms, size_t n, struct phx_err *err)
{
	json_t *arr = json_array();
	char *text;

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
	text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(arr);
	if (!text)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	printf("%s\n", text);
	free(text);
	return 0;
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
	if (opts->all && cfg->n_vms == 0) {
		free(v);
		return phx_err_set(err, PHX_E_INPUT, "%s: $.vms: no VMs to deploy", cfg->path);
	}
	for (size_t i = 0; i < cap; i++) {
		const struct cfg_vm *vm =
			opts->all ? &cfg->vms[i] : cfg_find_vm(cfg, opts->vmids[i]);
		bool dup = false;

		if (!vm) {
			buf_printf(&missing, NULL, "%sVMID %lu is not in %s ($.vms)",
				   missing.len ? "\n" : "", opts->vmids[i], cfg->path);
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

int cmd_deploy(const struct cli_opts *opts, struct phx_err *err)
{
	struct session s;
	struct dep_run r = {.n = 0};
	struct dep_vm *vms = NULL;
	size_t n = 0, failed = 0;
	unsigned jobs;
	int rc = -1;

	if (session_load(opts, &s, err) < 0)
		return -1;
	memset(&r, 0, sizeof(r));
	if (dep_select(opts, s.cfg, &vms, &n, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (dep_prepare(s.cfg, &vms[i], err) < 0)
			goto out;
	if (session_connect(&s, true, err) < 0)
		goto out;
	/* before the first change: a snippets_dir no storage serves would fail every VM */
	if (s.cfg->defaults.cloudinit_mode == CFG_CLOUDINIT_NATIVE && s.cfg->defaults.snippets_dir &&
	    dep_snippet_storage(s.pve, s.cfg->defaults.snippets_dir, r.snippet_storage,
				sizeof(r.snippet_storage), err) < 0)
		goto out;
	r.s = &s;
	r.vms = vms;
	r.n = n;
	r.task_timeout_s = session_task_timeout(&s);
	r.agent_timeout_s = s.cfg->defaults.agent_timeout_s   ? s.cfg->defaults.agent_timeout_s
			    : s.cfg->proxmox.timeouts.agent_s ? s.cfg->proxmox.timeouts.agent_s
							      : 600;
	pthread_mutex_init(&r.mu, NULL);
	/* a dry run prints its plan; interleaved plans of parallel VMs would be unreadable */
	jobs = opts->dry_run ? 1 : opts->jobs ? opts->jobs : 1;
	if (jobs > n)
		jobs = (unsigned)n;
	if (jobs <= 1) {
		for (size_t i = 0; i < n; i++)
			dep_run_one(&r, s.pve, &vms[i]);
	} else {
		pthread_t *th = calloc(jobs, sizeof(*th));
		unsigned started = 0;

		if (!th) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			pthread_mutex_destroy(&r.mu);
			goto out;
		}
		for (; started < jobs; started++)
			if (pthread_create(&th[started], NULL, dep_worker, &r) != 0)
				break;
		if (started == 0) {
			/* no thread at all: do the work here rather than fail */
			for (size_t i = 0; i < n; i++)
				dep_run_one(&r, s.pve, &vms[i]);
		}
		for (unsigned i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		free(th);
	}
	pthread_mutex_destroy(&r.mu);

	if (opts->output == CLI_OUTPUT_JSON) {
		if (dep_print_json(vms, n, err) < 0)
			goto out;
	} else {
		dep_print_table(vms, n);
	}
	for (size_t i = 0; i < n; i++) {
		if (vms[i].res.note)
			log_warn("%s", vms[i].res.note);
		failed += vms[i].res.failed;
	}
	if (failed) {
		struct buf b = BUF_INIT;

		buf_printf(&b, NULL, "%zu of %zu VM%s failed:", failed, n, n == 1 ? "" : "s");
		for (size_t i = 0; i < n; i++) {
			const char *rm = vms[i].res.removed;

			if (!vms[i].res.failed)
				continue;
			buf_printf(&b, NULL, "\n  VM %lu '%s': %s", vms[i].vm->vmid,
				   vms[i].vm->name, vms[i].res.error ? vms[i].res.error : "failed");
			while (rm && *rm) {
				size_t l = strcspn(rm, "\n");

				buf_printf(&b, NULL, "\n    rollback: %.*s", (int)l, rm);
				rm += l + (rm[l] == '\n');
			}
		}
		phx_err_set(err, PHX_E_RUNTIME, "%s", buf_str(&b));
		buf_release(&b);
		goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		dep_vm_release(&vms[i]);
	free(vms);
	session_release(&s);
	return rc;
}

/* ---- --destroy ---- */

static int dep_collect_seed(json_t *list, const char *volid, unsigned long vmid)
{
	size_t i;
	json_t *v;
	size_t l = strcspn(volid, ",");

	if (!deploy_is_seed_volid(volid, vmid))
		return 0;
	json_array_foreach(list, i, v) if (strlen(json_string_value(v)) == l &&
					   !strncmp(json_string_value(v), volid, l)) return 0;
	return json_array_append_new(list, json_stringn(volid, l));
}

int cmd_destroy(const struct cli_opts *opts, struct phx_err *err)
{
	struct session s;
	struct pve_vm_list l = {NULL, 0};
	struct pve_volume_list vols = {NULL, 0};
	struct pve_vm_status st;
	const struct pve_vm_info *vm;
	json_t *conf = NULL, *seeds = json_array(), *removed = json_array(), *v;
	unsigned long vmid = opts->n_vmids ? opts->vmids[0] : 0;
	const char *k, *node;
	long tmo;
	size_t i;
	int rc = -1;

	if (!seeds || !removed) {
		json_decref(seeds);
		json_decref(removed);
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	if (session_load(opts, &s, err) < 0)
		goto out_nosession;
	if (session_connect(&s, true, err) < 0)
		goto out;
	tmo = session_task_timeout(&s);
	if (pve_cluster_vms(s.pve, &l, err) < 0)
		goto out;
	vm = dep_find(&l, vmid);
	if (!vm) {
		phx_err_set(err, PHX_E_NOTFOUND, "VM %lu does not exist on the cluster", vmid);
		goto out;
	}
	node = vm->node;
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
	if (pve_vm_config_get(s.pve, node, (int)vmid, &conf, err) < 0)
		goto out;
	json_object_foreach(conf, k, v) if (json_is_string(v) &&
					    dep_collect_seed(seeds, json_string_value(v), vmid) < 0)
	{
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	if (pve_storage_content(s.pve, node, s.cfg->defaults.iso_storage, "iso", &vols, err) < 0)
		goto out;
	for (i = 0; i < vols.n; i++)
		if (dep_collect_seed(seeds, vols.items[i].volid, vmid) < 0) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
	if (pve_vm_status_get(s.pve, node, (int)vmid, &st, err) < 0)
		goto out;
	if (!strcmp(st.status, "running")) {
		log_info("VM %lu '%s': stopping", vmid, vm->name);
		if (pve_vm_stop(s.pve, node, (int)vmid, tmo, err) < 0)
			goto out;
	}
	log_info("VM %lu '%s': destroying", vmid, vm->name);
	if (pve_vm_destroy(s.pve, node, (int)vmid,
			   PVE_DESTROY_PURGE | PVE_DESTROY_UNREFERENCED_DISKS, tmo, err) < 0)
		goto out;
	json_array_foreach(seeds, i, v)
	{
		if (pve_storage_content_delete(s.pve, node, json_string_value(v), tmo, err) < 0) {
			phx_err_wrap(err, "VM %lu was destroyed, but its seed could not be removed",
				     vmid);
			goto out;
		}
		json_array_append(removed, v);
	}
	if (s.cfg->defaults.snippets_dir) {
		char name[96], *path = NULL;

		dep_snippet_name(vmid, name, sizeof(name));
		if (asprintf(&path, "%s/%s", s.cfg->defaults.snippets_dir, name) < 0) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		if (fs_exists(path) && (opts->dry_run || unlink(path) == 0))
			json_array_append_new(removed, json_string(path));
		free(path);
	}
	if (opts->output == CLI_OUTPUT_JSON) {
		json_t *o = json_pack("{sI ss ss sb sO}", "vmid", (json_int_t)vmid, "name",
				      vm->name, "node", node, "dry_run", opts->dry_run,
				      "removed_volumes", removed);
		char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

		json_decref(o);
		if (!text) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		printf("%s\n", text);
		free(text);
	} else {
		printf("%s VM %lu '%s' on '%s'\n", opts->dry_run ? "would destroy" : "destroyed",
		       vmid, vm->name, node);
		json_array_foreach(removed, i, v)
			printf("%s %s\n", opts->dry_run ? "would remove" : "removed",
			       json_string_value(v));
	}
	rc = 0;
out:
	session_release(&s);
out_nosession:
	pve_volume_list_release(&vols);
	pve_vm_list_release(&l);
	json_decref(conf);
	json_decref(seeds);
	json_decref(removed);
	return rc;
}
