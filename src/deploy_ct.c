/* deploy_ct: the pure planner of one container (see deploy.h): which way a new one is made,
 * the options it gets, what a rerun changes, and the privileges that takes. No I/O. */
#include "deploy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hardware.h"
#include "record.h"
#include "series.h"

#define GiB (1ULL << 30)

enum deploy_ct_path deploy_ct_path(const struct deploy_ct_input *in, char *why, size_t len)
{
	static const char *const linkable[] = {"lvmthin", "zfspool", "rbd"};
	const char *type = in->src_storage_type ? in->src_storage_type : "?";

	if (cfg_ct_needs_create(in->ct)) {
		snprintf(why, len,
			 "created from the template's archive '%s', not cloned: Proxmox accepts "
			 "root's %s only when a container is created (pve-container create_vm)",
			 in->archive ? in->archive : "?",
			 in->ct->password_hash && in->ct->ssh_public_keys.n
				 ? "password and SSH keys"
			 : in->ct->password_hash ? "password"
						 : "SSH keys");
		return DEPLOY_CT_CREATE;
	}
	if (in->ct->full_clone) {
		snprintf(why, len, "full clone of CT %d (full_clone)", in->src_vmid);
		return DEPLOY_CT_FULL;
	}
	for (size_t i = 0; i < sizeof(linkable) / sizeof(linkable[0]); i++)
		if (!strcmp(type, linkable[i])) {
			snprintf(why, len, "linked clone of CT %d (its rootfs is on a %s storage)",
				 in->src_vmid, type);
			return DEPLOY_CT_LINKED;
		}
	snprintf(why, len,
		 "full clone of CT %d: its rootfs is on a '%s' storage, where Proxmox makes no "
		 "linked container clones (only lvmthin, zfspool, rbd)",
		 in->src_vmid, type);
	return DEPLOY_CT_FULL;
}

/* ---- netN values ---- */

/* The value of option `key` in a property string "k=v,k2=v2" into ret; false when absent. */
static bool ct_prop_get(const char *s, const char *key, char *ret, size_t len)
{
	size_t kl = strlen(key);

	for (const char *p = s; p && *p; p = strchr(p, ','), p = p ? p + 1 : NULL) {
		size_t l = strcspn(p, ",");

		if (l > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			snprintf(ret, len, "%.*s", (int)(l - kl - 1), p + kl + 1);
			return true;
		}
	}
	return false;
}

bool deploy_ct_net_same(const char *a, const char *b)
{
	size_t na = 0, nb = 0;
	char v[256];

	if (!a || !b)
		return a == b;
	for (const char *p = a; p && *p; p = strchr(p, ','), p = p ? p + 1 : NULL) {
		size_t l = strcspn(p, ","), k = strcspn(p, "=");
		char key[64];

		if (k >= l || k >= sizeof(key))
			return false;
		snprintf(key, sizeof(key), "%.*s", (int)k, p);
		if (!ct_prop_get(b, key, v, sizeof(v)) || strlen(v) != l - k - 1 ||
		    strncasecmp(v, p + k + 1, l - k - 1))
			return false;
		na++;
	}
	for (const char *p = b; p && *p; p = strchr(p, ','), p = p ? p + 1 : NULL)
		nb++;
	return na == nb;
}

int deploy_ct_net_value(const struct cfg_ct_nic *n, size_t idx, const char *cur, char **ret,
			struct phx_err *err)
{
	/* the options we decide; the others of cur (type, link_down, ...) are kept */
	static const char *const ours[] = {"name", "bridge", "ip",   "gw",	 "ip6",	  "gw6",
					   "tag",  "mtu",    "rate", "firewall", "hwaddr"};
	struct {
		const char *key;
		char val[128];
	} kv[24];
	size_t m = 0;
	struct buf b = BUF_INIT;
	char hw[64] = "", fw[8] = "";

	snprintf(kv[m].val, sizeof(kv[m].val), "eth%zu", idx);
	kv[m++].key = "name";
	snprintf(kv[m].val, sizeof(kv[m].val), "%s", n->bridge);
	kv[m++].key = "bridge";
	if (n->firewall != CFG_TRI_UNSET)
		snprintf(fw, sizeof(fw), "%d", n->firewall == CFG_TRI_TRUE);
	else if (cur)
		ct_prop_get(cur, "firewall", fw, sizeof(fw));
	if (*fw) {
		snprintf(kv[m].val, sizeof(kv[m].val), "%s", fw);
		kv[m++].key = "firewall";
	}
	if (n->gw) {
		snprintf(kv[m].val, sizeof(kv[m].val), "%s", n->gw);
		kv[m++].key = "gw";
	}
	if (n->gw6) {
		snprintf(kv[m].val, sizeof(kv[m].val), "%s", n->gw6);
		kv[m++].key = "gw6";
	}
	if (n->macaddr)
		snprintf(hw, sizeof(hw), "%s", n->macaddr);
	else if (cur)
		ct_prop_get(cur, "hwaddr", hw, sizeof(hw));
	if (*hw) {
		snprintf(kv[m].val, sizeof(kv[m].val), "%s", hw);
		kv[m++].key = "hwaddr";
	}
	if (n->ip) {
		snprintf(kv[m].val, sizeof(kv[m].val), "%s", n->ip);
		kv[m++].key = "ip";
	}
	if (n->ip6) {
		snprintf(kv[m].val, sizeof(kv[m].val), "%s", n->ip6);
		kv[m++].key = "ip6";
	}
	if (n->mtu) {
		snprintf(kv[m].val, sizeof(kv[m].val), "%u", n->mtu);
		kv[m++].key = "mtu";
	}
	if (n->rate) {
		snprintf(kv[m].val, sizeof(kv[m].val), "%s", n->rate);
		kv[m++].key = "rate";
	}
	if (n->vlan) {
		snprintf(kv[m].val, sizeof(kv[m].val), "%u", n->vlan);
		kv[m++].key = "tag";
	}
	/* print_lxc_network: name first, then the options sorted */
	if (buf_printf(&b, err, "name=%s", kv[0].val) < 0)
		goto fail;
	for (size_t i = 1; i < m; i++)
		if (buf_printf(&b, err, ",%s=%s", kv[i].key, kv[i].val) < 0)
			goto fail;
	for (const char *p = cur; p && *p; p = strchr(p, ','), p = p ? p + 1 : NULL) {
		size_t l = strcspn(p, ","), k = strcspn(p, "=");
		bool mine = false;

		for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
			mine = mine || (strlen(ours[i]) == k && !strncmp(p, ours[i], k));
		if (!mine && k < l && buf_printf(&b, err, ",%.*s", (int)l, p) < 0)
			goto fail;
	}
	if (!(*ret = buf_detach(&b)))
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return 0;
fail:
	buf_release(&b);
	return -1;
}

/* ---- the plan ---- */

/* Sets key when `conf`'s value differs (conf NULL: always). */
static void ct_set_if(struct plan *p, struct plan_action *a, const json_t *conf, const char *key,
		      const char *want, unsigned flags)
{
	char num[32];
	const char *cur = conf ? hw_conf_str(conf, key, num, sizeof(num)) : NULL;

	if (want && (!cur || strcmp(cur, want)))
		plan_set(p, a, key, cur, want, flags);
}

static const char *ct_tri(enum cfg_tri t)
{
	return t == CFG_TRI_UNSET ? NULL : t == CFG_TRI_TRUE ? "1" : "0";
}

/* The options of the config that differ from `base` (NULL: all of them) on action a. */
static int ct_options(const struct deploy_ct_input *in, const json_t *base, struct plan *p,
		      struct plan_action *a, struct phx_err *err)
{
	const struct cfg_ct *ct = in->ct;
	const char *want_tags[64];
	size_t n_tags = 0;
	char num[32], *tags = NULL, *desc = NULL, *intro = NULL;
	struct buf ns = BUF_INIT;
	bool tags_changed = false;
	int rc = -1;

	if (ct->cores) {
		snprintf(num, sizeof(num), "%u", ct->cores);
		ct_set_if(p, a, base, "cores", num, 0);
	}
	if (ct->memory_mb) {
		snprintf(num, sizeof(num), "%lu", ct->memory_mb);
		ct_set_if(p, a, base, "memory", num, 0);
	}
	if (ct->has_swap) {
		snprintf(num, sizeof(num), "%lu", ct->swap_mb);
		ct_set_if(p, a, base, "swap", num, 0);
	}
	for (size_t i = 0; i < ct->n_nics; i++) {
		char key[16], *val = NULL;
		const char *cur;

		snprintf(key, sizeof(key), "net%zu", i);
		cur = base ? json_string_value(json_object_get(base, key)) : NULL;
		if (deploy_ct_net_value(&ct->nics[i], i, cur, &val, err) < 0)
			goto out;
		if (!deploy_ct_net_same(cur, val))
			plan_set(p, a, key, cur, val, 0);
		free(val);
	}
	for (size_t i = 0; i < ct->dns_servers.n; i++)
		if (buf_printf(&ns, err, "%s%s", i ? " " : "", ct->dns_servers.items[i]) < 0)
			goto out;
	ct_set_if(p, a, base, "nameserver", ns.len ? buf_str(&ns) : NULL, 0);
	ct_set_if(p, a, base, "searchdomain", ct->search_domain, 0);
	ct_set_if(p, a, base, "onboot", ct_tri(ct->onboot), 0);
	ct_set_if(p, a, base, "protection", ct_tri(ct->protection), 0);
	ct_set_if(p, a, base, "startup", ct->startup, 0);
	if (ct->nesting != CFG_TRI_UNSET) {
		const char *cur =
			base ? json_string_value(json_object_get(base, "features")) : NULL;
		char have[8];

		/* nesting only (a token may not change keyctl, fuse, mount): the rest is kept */
		if (!ct_prop_get(cur, "nesting", have, sizeof(have)) ||
		    strcmp(have, ct_tri(ct->nesting))) {
			struct buf f = BUF_INIT;

			if (buf_printf(&f, err, "nesting=%s", ct_tri(ct->nesting)) < 0)
				goto out;
			for (const char *q = cur; q && *q; q = strchr(q, ','), q = q ? q + 1 : NULL)
				if (strncmp(q, "nesting=", 8) &&
				    buf_printf(&f, err, ",%.*s", (int)strcspn(q, ","), q) < 0) {
					buf_release(&f);
					goto out;
				}
			plan_set(p, a, "features", cur, buf_str(&f), 0);
			buf_release(&f);
		}
	}
	want_tags[n_tags++] = SERIES_TAG_OURS;
	for (size_t i = 0; i < ct->tags.n && n_tags < 64; i++)
		want_tags[n_tags++] = ct->tags.items[i];
	if (deploy_tags_merge(base ? json_string_value(json_object_get(base, "tags")) : NULL,
			      want_tags, n_tags, &tags, &tags_changed, err) < 0)
		goto out;
	if (tags_changed)
		plan_set(p, a, "tags",
			 base ? json_string_value(json_object_get(base, "tags")) : NULL, tags, 0);
	{
		const struct rec_field f[] = {{"config", ct->config_id}, {"ct", ct->name}};

		if (ct->description &&
		    asprintf(&intro, "%s\n\n" DEPLOY_MANAGED_LINE, ct->description) < 0) {
			intro = NULL;
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		if (!(desc = rec_write(intro ? intro : DEPLOY_MANAGED_LINE, f, 2, err)))
			goto out;
		ct_set_if(p, a, base, "description", desc, 0);
	}
	rc = 0;
out:
	buf_release(&ns);
	free(tags);
	free(desc);
	free(intro);
	return rc;
}

/* Bytes of the rootfs of conf (0: none or no size). */
static unsigned long long ct_rootfs_bytes(const json_t *conf)
{
	const char *v = conf ? json_string_value(json_object_get(conf, "rootfs")) : NULL;
	struct phx_err e = PHX_ERR_INIT;
	uint64_t b = 0;

	if (!v || deploy_drive_size(v, &b, &e) < 0)
		return 0;
	return b;
}

static void ct_resize(const struct deploy_ct_input *in, const char *object, const json_t *conf,
		      struct plan *p)
{
	unsigned long long have = ct_rootfs_bytes(conf);
	struct plan_action *a;
	char size[32], old[32];

	if (!in->ct->rootfs_gb)
		return;
	if (have >= in->ct->rootfs_gb * GiB) {
		if (have > in->ct->rootfs_gb * GiB)
			plan_note(p, object,
				  "rootfs kept at %llu GiB: rootfs_gb %lu is smaller and "
				  "volumes only grow",
				  (have + GiB - 1) / GiB, in->ct->rootfs_gb);
		return;
	}
	snprintf(size, sizeof(size), "%luG", in->ct->rootfs_gb);
	snprintf(old, sizeof(old), "%lluG", have / GiB);
	a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "PUT", "/nodes/%s/lxc/%lu/resize",
		     in->node, in->ct->vmid);
	plan_summary(p, a, "grow rootfs to %s", size);
	plan_param(p, a, "disk", "rootfs", 0);
	plan_change(p, a, "rootfs size", have ? old : NULL, size, false);
	plan_param(p, a, "size", size, 0);
}

static void ct_start(const struct deploy_ct_input *in, const char *object, struct plan *p)
{
	struct plan_action *a = plan_add(p, PLAN_REQUEST, PLAN_RUN, object, "POST",
					 "/nodes/%s/lxc/%lu/status/start", in->node, in->ct->vmid);

	plan_summary(p, a, "start");
}

static int ct_plan_create(const struct deploy_ct_input *in, const char *object, struct plan *p,
			  struct phx_err *err)
{
	const struct cfg_ct *ct = in->ct;
	unsigned long long tpl = ct_rootfs_bytes(in->src_conf);
	unsigned long gb = ct->rootfs_gb ? ct->rootfs_gb
			   : tpl	 ? (unsigned long)((tpl + GiB - 1) / GiB)
					 : 8;
	static const char *const keep[] = {"cores", "memory", "swap", "net0", "features"};
	struct plan_action *a;
	char num[32], rootfs[160];
	struct buf keys = BUF_INIT, net = BUF_INIT;

	if (!in->archive)
		return phx_err_set(
			err, PHX_E_INPUT,
			"CT %lu '%s': root's password or SSH keys need a container made "
			"from the template's archive (Proxmox takes them only at "
			"creation), but the record of CT %d names no 'archive:'; rebuild "
			"the template, or drop password_hash and ssh_public_keys",
			ct->vmid, ct->name, in->src_vmid);
	a = plan_add(p, PLAN_REQUEST, PLAN_CREATE, object, "POST", "/nodes/%s/lxc", in->node);
	plan_summary(p, a, "create from '%s'", in->archive);
	snprintf(num, sizeof(num), "%lu", ct->vmid);
	plan_param(p, a, "vmid", num, 0);
	plan_set(p, a, "ostemplate", NULL, in->archive, 0);
	plan_set(p, a, "hostname", NULL, ct->name, 0);
	/* storage:size: a bare size fails check_ct_modify_config_perm for a token ("Only root
	 * can pass arbitrary filesystem paths", lxc-notes point 9) */
	snprintf(rootfs, sizeof(rootfs), "%s:%lu", ct->storage, gb);
	plan_set(p, a, "rootfs", NULL, rootfs, 0);
	plan_set(p, a, "unprivileged", NULL, ct->unprivileged == CFG_TRI_FALSE ? "0" : "1", 0);
	plan_set(p, a, "ostype", NULL, json_string_value(json_object_get(in->src_conf, "ostype")),
		 0);
	plan_set(p, a, "arch", NULL, json_string_value(json_object_get(in->src_conf, "arch")), 0);
	for (size_t i = 0; i < ct->ssh_public_keys.n; i++)
		if (buf_printf(&keys, err, "%s%s", i ? "\n" : "", ct->ssh_public_keys.items[i]) < 0)
			return -1;
	if (keys.len)
		plan_set(p, a, "ssh-public-keys", NULL, buf_str(&keys), 0);
	buf_release(&keys);
	plan_set(p, a, "password", NULL, ct->password_hash, PLAN_SECRET);
	plan_param(p, a, "pool", ct->pool, 0);
	plan_undo_ct(p, a, in->node, (int)ct->vmid, ct->name, NULL);
	if (ct_options(in, NULL, p, a, err) < 0)
		return -1;
	/* the template's own options are the starting point, as for a clone */
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		const char *v = hw_conf_str(in->src_conf, keep[i], num, sizeof(num));

		if (!v || plan_param_get(a, keep[i]))
			continue;
		if (strncmp(keep[i], "net", 3)) {
			plan_param(p, a, keep[i], v, 0);
			continue;
		}
		/* without the template's hwaddr: Proxmox gives each container its own MAC */
		for (const char *q = v; q && *q; q = strchr(q, ','), q = q ? q + 1 : NULL)
			if (strncmp(q, "hwaddr=", 7) &&
			    buf_printf(&net, err, "%s%.*s", net.len ? "," : "",
				       (int)strcspn(q, ","), q) < 0)
				return -1;
		plan_param(p, a, keep[i], buf_str(&net), 0);
		buf_release(&net);
	}
	return 0;
}

int deploy_plan_ct(const struct deploy_ct_input *in, struct plan *p, char **ret_pending,
		   struct phx_err *err)
{
	/* applied at once on a running container (LXC/Config.pm $LXC_FASTPLUG_OPTIONS and
	 * vmconfig_hotplug_pending); the rest waits for a restart */
	static const char *const hot[] = {"description", "onboot",   "startup", "protection",
					  "hostname",	 "cores",    "tags",	"memory",
					  "swap",	 "cpulimit", "cpuunits"};
	const struct cfg_ct *ct = in->ct;
	struct plan_action *a;
	struct buf pending = BUF_INIT;
	char object[160], why[400], num[32];
	enum deploy_ct_path path;

	snprintf(object, sizeof(object), "CT %lu '%s'", ct->vmid, ct->name);
	if (in->conf) {
		a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "PUT",
			     "/nodes/%s/lxc/%lu/config", in->node, ct->vmid);
		plan_summary(p, a, "configure");
		ct_set_if(p, a, in->conf, "hostname", ct->name, 0);
		if (ct_options(in, in->conf, p, a, err) < 0)
			return -1;
		if (!a || !a->n_changes) {
			plan_drop(p, a);
		} else if (in->running) {
			for (size_t i = 0; i < a->n_changes; i++) {
				const char *k = a->changes[i].key;
				bool h = !strncmp(k, "net", 3);

				for (size_t j = 0; j < sizeof(hot) / sizeof(hot[0]); j++)
					h = h || !strcmp(k, hot[j]);
				if (!h && buf_printf(&pending, err, "%s%s", pending.len ? ", " : "",
						     k) < 0)
					return -1;
			}
		}
		if (pending.len)
			plan_note(p, object,
				  "%s: applied when the container restarts (Proxmox keeps them "
				  "pending on a running container); not restarted by this run",
				  buf_str(&pending));
		ct_resize(in, object, in->conf, p);
		if (!in->running && !ct->no_start)
			ct_start(in, object, p);
		if (ret_pending && !(*ret_pending = buf_detach(&pending)) &&
		    !(*ret_pending = strdup("")))
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		buf_release(&pending);
		return plan_check(p, err);
	}
	path = deploy_ct_path(in, why, sizeof(why));
	plan_note(p, object, "%s", why);
	if (path == DEPLOY_CT_CREATE) {
		if (ct_plan_create(in, object, p, err) < 0)
			return -1;
	} else {
		a = plan_add(p, PLAN_REQUEST, PLAN_CREATE, object, "POST", "/nodes/%s/lxc/%d/clone",
			     in->node, in->src_vmid);
		plan_summary(p, a, "%s clone of CT %d",
			     path == DEPLOY_CT_LINKED ? "linked" : "full", in->src_vmid);
		snprintf(num, sizeof(num), "%lu", ct->vmid);
		plan_param(p, a, "newid", num, 0);
		plan_set(p, a, "hostname", NULL, ct->name, 0);
		if (path == DEPLOY_CT_FULL) {
			plan_param(p, a, "full", "1", 0);
			/* `storage` only goes with a full clone (clone_vm) */
			plan_param(p, a, "storage", ct->storage, 0);
		}
		plan_param(p, a, "pool", ct->pool, 0);
		plan_undo_ct(p, a, in->node, (int)ct->vmid, ct->name, NULL);
		a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "PUT",
			     "/nodes/%s/lxc/%lu/config", in->node, ct->vmid);
		plan_summary(p, a, "configure");
		if (ct_options(in, in->src_conf, p, a, err) < 0)
			return -1;
		if (a && !a->n_changes)
			plan_drop(p, a);
		ct_resize(in, object, in->src_conf, p);
	}
	if (!ct->no_start)
		ct_start(in, object, p);
	if (ret_pending && !(*ret_pending = strdup("")))
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return plan_check(p, err);
}

size_t deploy_ct_needs(const struct plan *p, const struct deploy_ct_input *in,
		       const char *bridge_acl, struct pf_need *needs, size_t max)
{
	const struct cfg_ct *ct = in->ct;
	char vm_path[64], path[300];
	size_t n = 0;

	snprintf(vm_path, sizeof(vm_path), "/vms/%lu", ct->vmid);
	for (size_t i = 0; i < p->n; i++) {
		const struct plan_action *a = p->actions[i];
		const char *full = plan_param_get(a, "full");

		if (strstr(a->path, "/clone")) {
			/* API2/LXC.pm clone_vm */
			snprintf(path, sizeof(path), "/vms/%d", in->src_vmid);
			deploy_need(needs, max, &n, path, "VM.Clone");
			deploy_need(needs, max, &n, vm_path, "VM.Allocate");
			if (full && !strcmp(full, "1")) {
				snprintf(path, sizeof(path), "/storage/%s", ct->storage);
				deploy_need(needs, max, &n, path, "Datastore.AllocateSpace");
			}
			continue;
		}
		if (strstr(a->path, "/resize")) {
			/* API2/LXC.pm resize_vm: Disk, and Options through the option check of
			 * `disk`, an unknown option there (lxc-notes point 10) */
			deploy_need(needs, max, &n, vm_path, "VM.Config.Disk");
			deploy_need(needs, max, &n, vm_path, "VM.Config.Options");
			snprintf(path, sizeof(path), "/storage/%s", ct->storage);
			deploy_need(needs, max, &n, path, "Datastore.AllocateSpace");
			continue;
		}
		if (strstr(a->path, "/status/")) {
			deploy_need(needs, max, &n, vm_path, "VM.PowerMgmt");
			deploy_need(needs, max, &n, vm_path, "VM.Audit"); /* interfaces */
			continue;
		}
		if (!strcmp(a->method, "POST")) {
			/* create_vm: VM.Allocate; the archive readable (check_volume_access) */
			const char *tpl = plan_param_get(a, "ostemplate");

			deploy_need(needs, max, &n, vm_path, "VM.Allocate");
			if (tpl) {
				snprintf(path, sizeof(path), "/storage/%.*s",
					 (int)strcspn(tpl, ":"), tpl);
				deploy_need(needs, max, &n, path, "Datastore.Audit");
			}
			if (!strcmp(plan_param_get(a, "unprivileged") ?: "1", "0"))
				deploy_need(needs, max, &n, "/", "Sys.Modify");
		}
		/* check_ct_modify_config_perm, per option */
		for (size_t k = 0; k < a->n_params; k++) {
			const char *key = a->params[k].key;

			if (!strcmp(key, "cores") || !strcmp(key, "cpulimit") ||
			    !strcmp(key, "cpuunits")) {
				deploy_need(needs, max, &n, vm_path, "VM.Config.CPU");
			} else if (!strcmp(key, "memory") || !strcmp(key, "swap")) {
				deploy_need(needs, max, &n, vm_path, "VM.Config.Memory");
			} else if (!strcmp(key, "rootfs")) {
				deploy_need(needs, max, &n, vm_path, "VM.Config.Disk");
				snprintf(path, sizeof(path), "/storage/%s", ct->storage);
				deploy_need(needs, max, &n, path, "Datastore.AllocateSpace");
			} else if (!strncmp(key, "net", 3) || !strcmp(key, "hostname") ||
				   !strcmp(key, "nameserver") || !strcmp(key, "searchdomain")) {
				deploy_need(needs, max, &n, vm_path, "VM.Config.Network");
				if (!strncmp(key, "net", 3) && bridge_acl)
					deploy_need(needs, max, &n, bridge_acl, "SDN.Use");
			} else if (!strcmp(key, "features")) {
				deploy_need(needs, max, &n, vm_path, "VM.Allocate");
			} else if (strcmp(key, "vmid") && strcmp(key, "ostemplate") &&
				   strcmp(key, "password") && strcmp(key, "ssh-public-keys") &&
				   strcmp(key, "unprivileged") && strcmp(key, "pool") &&
				   strcmp(key, "ostype") && strcmp(key, "arch")) {
				deploy_need(needs, max, &n, vm_path, "VM.Config.Options");
			}
		}
	}
	return n;
}
