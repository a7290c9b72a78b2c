/* deploy_util: pure helpers for cmd_deploy (see deploy.h): string work on values that Proxmox
 * returned or that we are about to send, and the run's decisions (placement, the --jobs
 * queue, clone paths, locks, agent waits) on figures read before; no I/O. */
#include "deploy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "record.h"
#include "series.h"

/* Finds option `name` in a Proxmox property string ("file,k=v,k=v"): returns a pointer to its
 * value and the value's length, or NULL. The first element (the volume) is never an option. */
static const char *prop_find(const char *s, const char *name, size_t *ret_len)
{
	size_t nl = strlen(name);
	const char *p = strchr(s, ',');

	while (p) {
		const char *item = p + 1, *end = strchr(item, ',');

		if (!end)
			end = item + strlen(item);
		if ((size_t)(end - item) > nl && !strncmp(item, name, nl) && item[nl] == '=') {
			*ret_len = (size_t)(end - item) - nl - 1;
			return item + nl + 1;
		}
		p = *end ? end : NULL;
	}
	return NULL;
}

int deploy_drive_size(const char *drive, uint64_t *ret_bytes, struct phx_err *err)
{
	char num[64], *end;
	size_t len = 0;
	const char *v = drive ? prop_find(drive, "size", &len) : NULL;
	double d;
	uint64_t mult = 1;

	if (!v || len == 0 || len >= sizeof(num))
		return phx_err_set(err, PHX_E_API, "drive '%s': no size=", drive ? drive : "");
	memcpy(num, v, len);
	num[len] = '\0';
	d = strtod(num, &end);
	if (end == num || !isdigit((unsigned char)num[0]))
		return phx_err_set(err, PHX_E_API, "drive '%s': cannot parse size '%s'", drive,
				   num);
	switch (*end) {
	case 'K':
		mult = 1ULL << 10;
		end++;
		break;
	case 'M':
		mult = 1ULL << 20;
		end++;
		break;
	case 'G':
		mult = 1ULL << 30;
		end++;
		break;
	case 'T':
		mult = 1ULL << 40;
		end++;
		break;
	default:
		break;
	}
	if (*end || d < 0 || d * (double)mult > 1.8e19)
		return phx_err_set(err, PHX_E_API, "drive '%s': cannot parse size '%s'", drive,
				   num);
	*ret_bytes = (uint64_t)(d * (double)mult);
	return 0;
}

bool deploy_drive_is_cdrom(const char *drive)
{
	size_t len;
	const char *v = drive ? prop_find(drive, "media", &len) : NULL;

	return (v && len == 5 && !strncmp(v, "cdrom", 5)) || deploy_drive_is_cloudinit(drive);
}

const char *deploy_unlinkable_disk(const json_t *config)
{
	static const char *const buses[] = {"ide", "sata", "scsi", "virtio", "efidisk", "tpmstate"};
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)config, key, v)
	{
		const char *drive = json_string_value(v), *name;
		bool is_drive = false;
		size_t n;

		for (size_t i = 0; i < sizeof(buses) / sizeof(buses[0]) && !is_drive; i++) {
			size_t l = strlen(buses[i]);

			is_drive = !strncmp(key, buses[i], l) && key[l] &&
				   strspn(key + l, "0123456789") == strlen(key + l);
		}
		if (!is_drive || !drive || deploy_drive_is_cdrom(drive) ||
		    !strncmp(drive, "none", 4))
			continue;
		/* the volume name: after the storage and any "<vmid>/" directory */
		n = strcspn(drive, ",");
		for (name = drive + n; name > drive && name[-1] != ':' && name[-1] != '/'; name--)
			;
		if (strncmp(name, "base-", 5))
			return key;
	}
	return NULL;
}

bool deploy_lock_is_creation(const char *lock)
{
	return lock && (!strcmp(lock, "clone") || !strcmp(lock, "create"));
}

unsigned long deploy_running_agent_wait(long long uptime_s, unsigned long agent_timeout_s,
					bool *ret_must_answer)
{
	if (uptime_s < 0 || (unsigned long long)uptime_s >= agent_timeout_s) {
		*ret_must_answer = false;
		return 1;
	}
	*ret_must_answer = true;
	return agent_timeout_s - (unsigned long)uptime_s > 1
		       ? agent_timeout_s - (unsigned long)uptime_s
		       : 1;
}

static uint64_t place_free(const struct deploy_node *x)
{
	return x->maxmem > x->mem ? x->maxmem - x->mem : 0;
}

/* The node's load once the VM is booked, in thousandths. A node without memory figures counts
 * as full: it is taken only when no other is online. */
static unsigned long place_load(const struct deploy_node *x, const struct deploy_cpu *c,
				uint64_t mem, unsigned cores)
{
	double m = x->maxmem ? ((double)x->mem + (double)mem) / (double)x->maxmem : 1.0;
	double u = c && c->maxcpu ? c->cpu + (double)cores / c->maxcpu : 0.0;
	double l = m > u ? m : u;

	/* overcommitted far beyond any real node: all the same */
	return l > 1e6 ? 1000000000UL : (unsigned long)(l * 1000.0 + 0.5);
}

long deploy_place_vm(struct deploy_node *nodes, struct deploy_cpu *cpu, size_t n, uint64_t mem,
		     unsigned cores)
{
	bool any_fits = false;
	unsigned long best_load = 0;
	long best = -1;

	for (size_t i = 0; i < n; i++)
		any_fits = any_fits ||
			   (nodes[i].online && place_free(&nodes[i]) >= mem && nodes[i].maxmem);
	for (size_t i = 0; i < n; i++) {
		const struct deploy_node *x = &nodes[i], *b = best >= 0 ? &nodes[best] : NULL;
		unsigned long lx;

		if (!x->online || (any_fits && (place_free(x) < mem || !x->maxmem)))
			continue;
		lx = place_load(x, cpu ? &cpu[i] : NULL, mem, cores);
		if (b) {
			uint64_t fx = place_free(x), fb = place_free(b);

			if (lx != best_load) {
				if (lx > best_load)
					continue;
			} else if (fx != fb) {
				if (fx < fb)
					continue;
			} else if (x->ours != b->ours) {
				if (x->ours > b->ours)
					continue;
			} else if (strcmp(x->name, b->name) >= 0) {
				continue;
			}
		}
		best = (long)i;
		best_load = lx;
	}
	if (best < 0)
		return -1;
	nodes[best].mem += mem;
	nodes[best].ours++;
	if (cpu && cpu[best].maxcpu)
		cpu[best].cpu += (double)cores / cpu[best].maxcpu;
	return best;
}

long deploy_place(struct deploy_node *nodes, size_t n, uint64_t mem)
{
	return deploy_place_vm(nodes, NULL, n, mem, 0);
}

void deploy_place_why(const struct deploy_node *x, const struct deploy_cpu *c, uint64_t mem,
		      unsigned cores, char *ret, size_t len)
{
	uint64_t used = x->mem > mem ? x->mem - mem : 0;
	uint64_t free_b = x->maxmem > used ? x->maxmem - used : 0;
	char cpu_s[48] = "";
	int k;

	if (c && c->maxcpu) {
		double u = c->cpu - (double)cores / c->maxcpu;

		snprintf(cpu_s, sizeof(cpu_s), ", CPU %.0f%%", u > 0 ? u * 100.0 : 0.0);
	}
	k = snprintf(ret, len, "placed on %s: %.1f GiB free", x->name,
		     (double)free_b / (double)(1ULL << 30));
	if (k < 0 || (size_t)k >= len)
		return;
	if (free_b < mem)
		k += snprintf(ret + k, len - (size_t)k,
			      " (no online node has the %.1f GiB it needs)",
			      (double)mem / (double)(1ULL << 30));
	if (k < 0 || (size_t)k >= len)
		return;
	snprintf(ret + k, len - (size_t)k, "%s, %u of our VMs", cpu_s, x->ours ? x->ours - 1 : 0);
}

unsigned deploy_jobs_per_node(unsigned jobs, size_t nodes_with_work)
{
	size_t k = nodes_with_work ? nodes_with_work : 1;
	size_t b = ((size_t)jobs + k - 1) / k;

	return b ? (unsigned)b : 1;
}

long deploy_next_job(const size_t *node_of, const bool *started, size_t n,
		     const unsigned *in_flight, unsigned bound)
{
	for (size_t i = 0; i < n; i++)
		if (!started[i] && in_flight[node_of[i]] < bound)
			return (long)i;
	return -1;
}

const char *deploy_clone_path_name(enum deploy_clone_path path)
{
	switch (path) {
	case DEPLOY_CLONE_OWN_NODE:
		return "own-node";
	case DEPLOY_CLONE_TARGET:
		return "target";
	case DEPLOY_CLONE_MIGRATE:
		return "migrate";
	case DEPLOY_CLONE_CROSS_NODE:
		return "cross-node";
	case DEPLOY_CLONE_PLACED:
		return "placed";
	case DEPLOY_CLONE_UNKNOWN:
		break;
	}
	return "unknown";
}

static bool same_node(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

enum deploy_clone_path deploy_clone_path_offline(const struct cfg *cfg, const struct cfg_vm *vm,
						 const char **ret_node)
{
	const char *node = cfg_vm_node(cfg, vm), *tnode;
	const struct cfg_template *t = cfg_vm_template(cfg, vm);

	if (same_node(node, DEPLOY_NODE_AUTO))
		return DEPLOY_CLONE_PLACED;
	if (!t)
		return DEPLOY_CLONE_UNKNOWN;
	if (t->all_nodes || t->nodes.n > 1) {
		bool listed = t->all_nodes;

		/* each node's version has its own VMID: which node holds this one? */
		if (vm->clone_from_vmid)
			return DEPLOY_CLONE_UNKNOWN;
		for (size_t i = 0; i < t->nodes.n && !listed; i++)
			listed = same_node(node, t->nodes.items[i]);
		/* no node named: the cluster has one online node (session.c), every list's */
		if (listed || (!node && t->all_nodes)) {
			*ret_node = node;
			return DEPLOY_CLONE_OWN_NODE;
		}
		return node ? DEPLOY_CLONE_CROSS_NODE : DEPLOY_CLONE_UNKNOWN;
	}
	tnode = t->nodes.n ? t->nodes.items[0] : t->node ? t->node : cfg_default_node(cfg);
	if ((!node && !tnode) || same_node(node, tnode)) {
		/* neither named: both on the cluster's only node */
		*ret_node = node;
		return DEPLOY_CLONE_OWN_NODE;
	}
	/* one side named, the other left to the server (the only node; the first online one
	 * for a template under defaults.node "auto") */
	if (!node || !tnode || same_node(tnode, DEPLOY_NODE_AUTO))
		return DEPLOY_CLONE_UNKNOWN;
	return DEPLOY_CLONE_CROSS_NODE;
}

bool deploy_disks_shared(const json_t *storages, const json_t *config)
{
	/* pve-storage Plugin.pm @SHARED_STORAGE: these types are shared whatever the flag */
	static const char *const always[] = {"nfs",   "cifs",	     "rbd",	 "cephfs",
					     "iscsi", "iscsidirect", "glusterfs"};
	const char *disk = deploy_system_disk(config);
	const char *drive = disk ? json_string_value(json_object_get(config, disk)) : NULL;
	size_t n = drive ? strcspn(drive, ":") : 0;
	const json_t *st;
	size_t i;

	if (!n || !drive[n])
		return false;
	json_array_foreach((json_t *)storages, i, st)
	{
		const char *id = json_string_value(json_object_get(st, "storage"));
		const char *type = json_string_value(json_object_get(st, "type"));
		const json_t *shared = json_object_get(st, "shared");

		if (!id || strlen(id) != n || strncmp(id, drive, n))
			continue;
		if (json_is_true(shared) ||
		    (json_is_integer(shared) && json_integer_value(shared)) ||
		    (json_is_string(shared) && !strcmp(json_string_value(shared), "1")))
			return true;
		for (size_t k = 0; type && k < sizeof(always) / sizeof(always[0]); k++)
			if (!strcmp(type, always[k]))
				return true;
		return false;
	}
	return false;
}

/* Like qemu-server's drive_is_cloudinit: the volume is "<sep>cloudinit" or
 * "<sep>vm-<id>-cloudinit", optionally with a format suffix, where <sep> is ':' or '/'. */
bool deploy_drive_is_cloudinit(const char *drive)
{
	static const char *const fmts[] = {".qcow2", ".raw", ".vmdk", ".qed", ".cow", ".cloop"};
	const char *p;
	size_t n;

	if (!drive)
		return false;
	n = strcspn(drive, ",");
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		size_t fl = strlen(fmts[i]);

		if (n > fl && !strncmp(drive + n - fl, fmts[i], fl)) {
			n -= fl;
			break;
		}
	}
	if (n < 10 || strncmp(drive + n - 9, "cloudinit", 9))
		return false;
	p = drive + n - 9; /* start of "cloudinit" */
	if (p[-1] == ':' || p[-1] == '/')
		return true;
	/* "vm-<digits>-cloudinit" */
	if (p[-1] != '-')
		return false;
	p -= 2;
	if (p < drive || !isdigit((unsigned char)*p))
		return false;
	while (p > drive && isdigit((unsigned char)p[-1]))
		p--;
	if (p - drive < 4 || strncmp(p - 3, "vm-", 3))
		return false;
	p -= 3;
	return p > drive && (p[-1] == ':' || p[-1] == '/');
}

static bool is_disk_key(const char *k)
{
	static const char *const bus[] = {"scsi", "virtio", "sata", "ide"};

	for (size_t i = 0; i < sizeof(bus) / sizeof(bus[0]); i++) {
		size_t l = strlen(bus[i]);

		if (!strncmp(k, bus[i], l) && isdigit((unsigned char)k[l])) {
			for (const char *p = k + l; *p; p++)
				if (!isdigit((unsigned char)*p))
					return false;
			return true;
		}
	}
	return false;
}

const char *deploy_system_disk(const json_t *config)
{
	static const char *const pref[] = {"scsi0", "virtio0", "sata0", "ide0"};
	const char *boot = json_string_value(json_object_get(config, "boot"));
	const char *order = boot ? strstr(boot, "order=") : NULL;

	if (order) {
		/* "order=scsi0;ide2;net0": the first entry that is a disk in this config */
		const char *p = order + 6;

		while (*p && *p != ',') {
			size_t l = strcspn(p, ";,");
			char key[32];

			if (l < sizeof(key)) {
				const char *k, *v;
				json_t *val;

				memcpy(key, p, l);
				key[l] = '\0';
				json_object_foreach((json_t *)config, k, val)
				{
					v = json_string_value(val);
					if (!strcmp(k, key) && is_disk_key(k) && v &&
					    !deploy_drive_is_cdrom(v))
						return k;
				}
			}
			p += l;
			if (*p == ';')
				p++;
		}
	}
	for (size_t i = 0; i < sizeof(pref) / sizeof(pref[0]); i++) {
		const char *v = json_string_value(json_object_get(config, pref[i]));

		if (v && !deploy_drive_is_cdrom(v))
			return pref[i];
	}
	return NULL;
}

size_t deploy_cloudinit_drives(const json_t *config, const char **ret_keys, size_t max)
{
	const char *k;
	json_t *v;
	size_t n = 0;

	json_object_foreach((json_t *)config, k, v)
	{
		if (!is_disk_key(k) || !deploy_drive_is_cloudinit(json_string_value(v)))
			continue;
		if (n < max)
			ret_keys[n] = k;
		n++;
	}
	return n;
}

static bool is_mac(const char *s, size_t len)
{
	if (len != DEPLOY_MAC_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

int deploy_net_rebridge(const char *net, const char *bridge, const char *new_mac, char **ret,
			char ret_mac[DEPLOY_MAC_LEN + 1], struct phx_err *err)
{
	struct buf b = BUF_INIT;
	const char *first_end, *eq, *p;
	char mac[DEPLOY_MAC_LEN + 1];

	if (!net)
		return phx_err_set(err, PHX_E_API, "the VM has no net0");
	first_end = net + strcspn(net, ",");
	eq = memchr(net, '=', (size_t)(first_end - net));
	if (!eq || eq == net || !is_mac(eq + 1, (size_t)(first_end - eq - 1)))
		return phx_err_set(err, PHX_E_API, "net0 '%s': expected MODEL=MAC first", net);
	memcpy(mac, new_mac ? new_mac : eq + 1, DEPLOY_MAC_LEN);
	mac[DEPLOY_MAC_LEN] = '\0';
	if (buf_append(&b, net, (size_t)(eq + 1 - net), err) < 0 ||
	    buf_append(&b, mac, DEPLOY_MAC_LEN, err) < 0 ||
	    buf_printf(&b, err, ",bridge=%s", bridge) < 0)
		goto fail;
	for (p = first_end; *p == ',';) {
		const char *item = p + 1, *end = item + strcspn(item, ",");

		if (strncmp(item, "bridge=", 7) && end > item &&
		    (buf_puts(&b, ",", err) < 0 ||
		     buf_append(&b, item, (size_t)(end - item), err) < 0))
			goto fail;
		p = end;
	}
	*ret = buf_detach(&b);
	if (!*ret)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	memcpy(ret_mac, mac, sizeof(mac));
	return 0;
fail:
	buf_release(&b);
	return -1;
}

static int deploy_item_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int deploy_nic_value(const struct cfg_nic *n, const char *cur, const char *mac, char **ret,
		     struct phx_err *err)
{
	char *items[48], own[5][64];
	size_t n_items = 0, n_own = 0;
	struct buf b = BUF_INIT;
	const char *p = cur ? cur + strcspn(cur, ",") : "";
	static const char *const managed[] = {"bridge=", "tag=", "mtu=", "rate=", "firewall="};

	snprintf(own[n_own++], sizeof(own[0]), "bridge=%s", n->v4.bridge);
	if (n->vlan)
		snprintf(own[n_own++], sizeof(own[0]), "tag=%u", n->vlan);
	if (n->mtu)
		snprintf(own[n_own++], sizeof(own[0]), "mtu=%u", n->mtu);
	if (n->rate)
		snprintf(own[n_own++], sizeof(own[0]), "rate=%s", n->rate);
	if (n->firewall != CFG_TRI_UNSET)
		snprintf(own[n_own++], sizeof(own[0]), "firewall=%d", n->firewall == CFG_TRI_TRUE);
	for (size_t i = 0; i < n_own; i++)
		if (!(items[n_items++] = strdup(own[i]))) {
			n_items--;
			goto oom;
		}
	/* the server's other options (queues, link_down, trunks, ...) are kept; the ones the
	 * config manages are its own, absent meaning none, but for firewall, kept unless given */
	while (*p == ',' && n_items < sizeof(items) / sizeof(items[0])) {
		const char *item = p + 1;
		size_t len = strcspn(item, ",");
		bool skip = false;

		for (size_t k = 0; k < sizeof(managed) / sizeof(managed[0]); k++)
			skip |= !strncmp(item, managed[k], strlen(managed[k])) &&
				(k < 4 || n->firewall != CFG_TRI_UNSET);
		if (!skip && len && !(items[n_items++] = strndup(item, len))) {
			n_items--;
			goto oom;
		}
		p = item + len;
	}
	/* PVE::JSONSchema::print_property_string: the default key (model=MAC) first, the
	 * others sorted, so an unchanged NIC compares equal as text */
	qsort(items, n_items, sizeof(items[0]), deploy_item_cmp);
	if (buf_printf(&b, err, "%s=%s", n->model, mac) < 0)
		goto fail;
	for (size_t i = 0; i < n_items; i++)
		if (buf_printf(&b, err, ",%s", items[i]) < 0)
			goto fail;
	for (size_t i = 0; i < n_items; i++)
		free(items[i]);
	*ret = buf_detach(&b);
	if (!*ret)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return 0;
oom:
	phx_err_set(err, PHX_E_NOMEM, "out of memory");
fail:
	buf_release(&b);
	for (size_t i = 0; i < n_items; i++)
		free(items[i]);
	return -1;
}

/* NIC idx's MAC from the VMID, in Proxmox's BC:24:11 prefix. net0's text is the one
 * deploy_mac_for_vmid always hashed: a VM keeps its MAC. */
static int deploy_mac_derive(unsigned long vmid, size_t idx, char ret[DEPLOY_MAC_LEN + 1],
			     struct phx_err *err)
{
	char text[64], hex[CRYPTO_SHA256_HEX_LEN + 1];

	snprintf(text, sizeof(text), "phoenix-orchestrator net%zu %lu", idx, vmid);
	if (crypto_sha256_buf(text, strlen(text), hex, err) < 0)
		return -1;
	snprintf(ret, DEPLOY_MAC_LEN + 1, "BC:24:11:%c%c:%c%c:%c%c", hex[0], hex[1], hex[2], hex[3],
		 hex[4], hex[5]);
	for (char *c = ret; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	return 0;
}

int deploy_nic_mac(const struct cfg_vm *vm, size_t idx, const json_t *conf,
		   char ret[DEPLOY_MAC_LEN + 1], struct phx_err *err)
{
	char key[16];
	const char *net, *eq;

	if (idx < vm->n_nics && vm->nics[idx].macaddr) {
		snprintf(ret, DEPLOY_MAC_LEN + 1, "%s", vm->nics[idx].macaddr);
		return 0;
	}
	snprintf(key, sizeof(key), "net%zu", idx);
	net = conf ? json_string_value(json_object_get(conf, key)) : NULL;
	eq = net ? memchr(net, '=', strcspn(net, ",")) : NULL;
	if (eq && is_mac(eq + 1, strcspn(eq + 1, ","))) {
		snprintf(ret, DEPLOY_MAC_LEN + 1, "%.*s", DEPLOY_MAC_LEN, eq + 1);
		return 0;
	}
	return deploy_mac_derive(vm->vmid, idx, ret, err);
}

int deploy_mac_for_vmid(unsigned long vmid, char ret[DEPLOY_MAC_LEN + 1], struct phx_err *err)
{
	return deploy_mac_derive(vmid, 0, ret, err);
}

int deploy_seed_name(unsigned long vmid, const char *sha256, char *ret, size_t len,
		     struct phx_err *err)
{
	int n;

	if (!sha256 || strlen(sha256) < DEPLOY_SEED_HASH_LEN ||
	    strspn(sha256, "0123456789abcdef") < DEPLOY_SEED_HASH_LEN)
		return phx_err_set(err, PHX_E_INTERNAL, "seed hash '%s' is not hex",
				   sha256 ? sha256 : "");
	n = snprintf(ret, len, DEPLOY_SEED_PREFIX "%lu-%.*s.iso", vmid, DEPLOY_SEED_HASH_LEN,
		     sha256);
	if (n < 0 || (size_t)n >= len)
		return phx_err_set(err, PHX_E_INTERNAL, "seed name too long");
	return 0;
}

void deploy_snippet_name(unsigned long vmid, char *ret, size_t len)
{
	snprintf(ret, len, DEPLOY_SEED_PREFIX "%lu-user.yaml", vmid);
}

bool deploy_cicustom_snippet(const char *cicustom, unsigned long vmid, char *ret, size_t len)
{
	char name[96];
	const char *p = cicustom;

	deploy_snippet_name(vmid, name, sizeof(name));
	/* qemu-server's cicustom format: meta=, network=, user=, vendor= volume IDs */
	while (p && *p) {
		size_t n = strcspn(p, ",");
		const char *colon = memchr(p, ':', n);

		if (n > 5 && !strncmp(p, "user=", 5) && colon &&
		    (size_t)(p + n - colon - 1) == strlen("snippets/") + strlen(name) &&
		    !strncmp(colon + 1, "snippets/", 9) &&
		    !strncmp(colon + 10, name, strlen(name)) && n - 5 < len) {
			memcpy(ret, p + 5, n - 5);
			ret[n - 5] = '\0';
			return true;
		}
		p += n + (p[n] == ',');
	}
	return false;
}

bool deploy_is_seed_volid(const char *volid, unsigned long vmid)
{
	char prefix[64];
	const char *colon, *name;
	size_t plen, n;

	if (!volid || !(colon = strchr(volid, ':')))
		return false;
	name = colon + 1;
	if (strncmp(name, "iso/", 4))
		return false;
	name += 4;
	n = strcspn(name, ",");
	snprintf(prefix, sizeof(prefix), DEPLOY_SEED_PREFIX "%lu-", vmid);
	plen = strlen(prefix);
	if (n != plen + DEPLOY_SEED_HASH_LEN + 4 || strncmp(name, prefix, plen) ||
	    strncmp(name + plen + DEPLOY_SEED_HASH_LEN, ".iso", 4))
		return false;
	for (size_t i = 0; i < DEPLOY_SEED_HASH_LEN; i++)
		if (!strchr("0123456789abcdef", name[plen + i]))
			return false;
	return true;
}

char *deploy_description(const char *user_text, const char *config_id, const char *vm_name,
			 const char *seed_sha256, const char *ha_sid, struct phx_err *err)
{
	const struct rec_field f[] = {{"config", config_id},
				      {"vm", vm_name},
				      {DEPLOY_SEED_KEY, seed_sha256},
				      {DEPLOY_HA_KEY, ha_sid}};
	char *intro = NULL, *res;

	if (user_text && *user_text &&
	    asprintf(&intro, "%s\n\n" DEPLOY_MANAGED_LINE, user_text) < 0) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		return NULL;
	}
	res = rec_write(intro ? intro : DEPLOY_MANAGED_LINE, f, ha_sid ? 4 : 3, err);
	free(intro);
	return res;
}

char *deploy_description_keep(const char *current, const char *user_text, const char *config_id,
			      const char *vm_name, const char *seed_sha256, const char *ha_sid,
			      struct phx_err *err)
{
	char old_id[1024];
	char *old;

	if (!rec_get(current, "config", old_id, sizeof(old_id)) || !strncmp(old_id, "sha256:", 7))
		return deploy_description(user_text, config_id, vm_name, seed_sha256, ha_sid, err);
	old = deploy_description(user_text, old_id, vm_name, seed_sha256, ha_sid, err);
	if (!old || !strcmp(old, current))
		return old;
	free(old);
	return deploy_description(user_text, config_id, vm_name, seed_sha256, ha_sid, err);
}

bool deploy_description_ha(const char *description, const char *sid)
{
	char v[64];

	return description && rec_get(description, DEPLOY_HA_KEY, v, sizeof(v)) && !strcmp(v, sid);
}

bool deploy_description_seed(const char *description, char ret[CRYPTO_SHA256_HEX_LEN + 1])
{
	char v[CRYPTO_SHA256_HEX_LEN + 2];

	if (!rec_get(description, DEPLOY_SEED_KEY, v, sizeof(v)) ||
	    strlen(v) != CRYPTO_SHA256_HEX_LEN ||
	    strspn(v, "0123456789abcdef") != CRYPTO_SHA256_HEX_LEN)
		return false;
	memcpy(ret, v, CRYPTO_SHA256_HEX_LEN + 1);
	return true;
}

int deploy_tags_merge(const char *current, const char *const *want, size_t n_want, char **ret,
		      bool *ret_changed, struct phx_err *err)
{
	struct buf b = BUF_INIT;
	bool changed = false;
	char *res;

	if (current && *current && buf_puts(&b, current, err) < 0)
		goto fail;
	for (size_t i = 0; i < n_want; i++) {
		if (series_has_tag(b.len ? buf_str(&b) : NULL, want[i]))
			continue;
		changed = true;
		if (buf_printf(&b, err, "%s%s", b.len ? ";" : "", want[i]) < 0)
			goto fail;
	}
	res = buf_detach(&b);
	if (!res)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	*ret = res;
	*ret_changed = changed;
	return 0;
fail:
	buf_release(&b);
	return -1;
}

static bool usable_ipv4(const char *cidr)
{
	return strncmp(cidr, "127.", 4) && strncmp(cidr, "169.254.", 8);
}

static bool copy_addr(const char *cidr, char *ret, size_t len)
{
	size_t n = strcspn(cidr, "/");

	if (n >= len)
		return false;
	memcpy(ret, cidr, n);
	ret[n] = '\0';
	return true;
}

bool deploy_pick_ipv4(const struct pve_iface_list *l, const char *mac, char *ret, size_t len)
{
	for (int pass = mac ? 0 : 1; pass < 2; pass++) {
		for (size_t i = 0; i < l->n; i++) {
			const struct pve_iface *f = &l->items[i];

			if (pass == 0 && strcasecmp(f->mac, mac))
				continue;
			if (pass == 1 && !strcmp(f->name, "lo"))
				continue;
			for (size_t k = 0; k < f->n_ipv4; k++)
				if (usable_ipv4(f->ipv4[k]) && copy_addr(f->ipv4[k], ret, len))
					return true;
		}
	}
	return false;
}
