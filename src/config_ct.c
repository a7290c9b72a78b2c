/* config_ct: the `containers` array (issue #21): LXC containers made from a container
 * template, next to `vms` because most of their keys differ from a VM's (no cloud-init; root's
 * password and SSH keys only at creation; one rootfs instead of disks; swap, features,
 * unprivileged). Values follow pve-container's own formats (LXC/Config.pm) so a config that
 * passes here is one Proxmox accepts. Owns parsing and the checks that need the whole
 * document (VMIDs and names unique across templates, vms and containers). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"

static const char cfg_ct_expect_storage[] = "a Proxmox storage ID like 'local-lvm'";

/* pve-container Setup/Base.pm set_user_password keeps the value as it is only when it matches
 * ^\$(?:1|2[axy]?|5|6)\$[a-zA-Z0-9./]{1,16}\$[a-zA-Z0-9./]+$ and crypts anything else as a
 * plaintext password: a yescrypt ($y$) hash, or a $6$ one with rounds=, would become the
 * literal password. */
static bool cfg_ct_kept_hash(const char *s)
{
	size_t n;

	if (s[0] != '$')
		return false;
	s++;
	if (s[0] == '1' || s[0] == '5' || s[0] == '6')
		s++;
	else if (s[0] == '2')
		s += (s[1] == 'a' || s[1] == 'x' || s[1] == 'y') ? 2 : 1;
	else
		return false;
	if (*s++ != '$')
		return false;
	n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./");
	if (n < 1 || n > 16 || s[n] != '$')
		return false;
	s += n + 1;
	n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./");
	return n > 0 && !s[n];
}

static bool cfg_ct_is_v4(const char *s)
{
	uint32_t a;
	unsigned p;

	return !strcmp(s, "dhcp") || !strcmp(s, "manual") || cfg_parse_cidr(s, &a, &p);
}

static bool cfg_ct_is_v6(const char *s)
{
	return !strcmp(s, "dhcp") || !strcmp(s, "auto") || !strcmp(s, "manual") ||
	       cfg_is_ipv6_cidr(s);
}

static bool cfg_ct_is_rate(const json_t *v, char *ret, size_t len)
{
	double r;

	if (!json_is_number(v))
		return false;
	r = json_number_value(v);
	snprintf(ret, len, "%g", r);
	return r >= 0 && r < 1e9;
}

static void cfg_ct_nic_release(struct cfg_ct_nic *n)
{
	free(n->bridge);
	free(n->ip);
	free(n->gw);
	free(n->ip6);
	free(n->gw6);
	free(n->macaddr);
	free(n->rate);
}

/* A gateway only with a static address of its family (Proxmox would write it for a NIC that
 * has no route to it). */
static void cfg_ct_gateway(struct cfg_ctx *ctx, json_t *obj, const char *jpath, const char *key,
			   bool v6, const char *ip, char **field)
{
	char kpath[CFG_PATH_MAX], q[CFG_SHOW_MAX + 16];
	const char *s = cfg_get_str(ctx, obj, jpath, key, false);

	if (!s)
		return;
	cfg_path_key(kpath, jpath, key);
	if (v6 ? !cfg_is_ipv6(s) : !cfg_is_ipv4(s))
		cfg_problem(ctx, kpath, "expected an %s address like '%s', got %s",
			    v6 ? "IPv6" : "IPv4", v6 ? "2001:db8::1" : "10.0.0.1",
			    cfg_quote(s, q, sizeof(q)));
	else if (!ip || !strchr(ip, '/'))
		cfg_problem(ctx, kpath, "a gateway needs a static '%s' (CIDR), got %s",
			    v6 ? "ip6" : "ip", cfg_quote(s, q, sizeof(q)));
	else
		*field = cfg_strdup(ctx, s);
}

static void cfg_ct_parse_nic(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
			     struct cfg_ct_nic *n)
{
	static const char *const keys[] = {"bridge", "ip",  "gateway",	"ip6",	   "gateway6",
					   "vlan",   "mtu", "firewall", "macaddr", "rate"};
	char kpath[CFG_PATH_MAX], q[CFG_SHOW_MAX + 16], rate[32];
	unsigned long v;
	const char *s;

	CFG_CHECK_KEYS(ctx, obj, jpath, keys);
	cfg_set_str(ctx, &n->bridge, ctx->cfg->defaults.bridge);
	cfg_get_checked(ctx, obj, jpath, "bridge", false, cfg_is_bridge,
			"a bridge name like 'vmbr0'", &n->bridge);
	cfg_get_checked(ctx, obj, jpath, "ip", false, cfg_ct_is_v4,
			"an IPv4 CIDR like '10.0.0.5/24', 'dhcp' or 'manual'", &n->ip);
	cfg_get_checked(ctx, obj, jpath, "ip6", false, cfg_ct_is_v6,
			"an IPv6 CIDR like '2001:db8::5/64', 'dhcp', 'auto' or 'manual'", &n->ip6);
	cfg_ct_gateway(ctx, obj, jpath, "gateway", false, n->ip, &n->gw);
	cfg_ct_gateway(ctx, obj, jpath, "gateway6", true, n->ip6, &n->gw6);
	/* LXC/Config.pm $netconf_desc: tag 1..4094, mtu 64..65535 */
	if (cfg_get_uint(ctx, obj, jpath, "vlan", false, 1, 4094, &v))
		n->vlan = (unsigned)v;
	if (cfg_get_uint(ctx, obj, jpath, "mtu", false, 64, 65535, &v))
		n->mtu = (unsigned)v;
	n->firewall = cfg_get_tri(ctx, obj, jpath, "firewall");
	s = cfg_get_str(ctx, obj, jpath, "macaddr", false);
	if (s && !cfg_is_mac(s)) {
		cfg_path_key(kpath, jpath, "macaddr");
		cfg_problem(ctx, kpath, "expected a unicast MAC like 'BC:24:11:00:00:01', got %s",
			    cfg_quote(s, q, sizeof(q)));
	} else if (s) {
		n->macaddr = cfg_strdup(ctx, s);
		for (char *c = n->macaddr; c && *c; c++)
			*c = (char)toupper((unsigned char)*c);
	}
	if (json_object_get(obj, "rate")) {
		if (cfg_ct_is_rate(json_object_get(obj, "rate"), rate, sizeof(rate))) {
			n->rate = cfg_strdup(ctx, rate);
		} else {
			char got[CFG_SHOW_MAX + 32];

			cfg_path_key(kpath, jpath, "rate");
			cfg_problem(ctx, kpath, "expected a number of MB/s like 12.5, got %s",
				    cfg_got(json_object_get(obj, "rate"), got, sizeof(got)));
		}
	}
}

/* `networks` (net0..), or the short `network_config` {ip, gw, bridge} of VMs (no ip: DHCP). */
static void cfg_ct_parse_nics(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
			      struct cfg_ct *ct)
{
	static const char *const short_keys[] = {"ip", "gw", "bridge"};
	char npath[CFG_PATH_MAX], ipath[CFG_PATH_MAX], got[CFG_SHOW_MAX + 32];
	json_t *arr = json_object_get(obj, "networks"),
	       *nc = json_object_get(obj, "network_config");
	json_t *item;
	size_t i;

	if (arr && nc) {
		cfg_path_key(npath, jpath, "networks");
		cfg_problem(ctx, npath, "expected either 'networks' or 'network_config', got both");
		return;
	}
	if (nc) {
		if (!(nc = cfg_get_obj(ctx, obj, jpath, "network_config", false)))
			return;
		cfg_path_key(npath, jpath, "network_config");
		CFG_CHECK_KEYS(ctx, nc, npath, short_keys);
		if (!(ct->nics = calloc(1, sizeof(*ct->nics)))) {
			ctx->oom = true;
			return;
		}
		ct->n_nics = 1;
		cfg_set_str(ctx, &ct->nics[0].bridge, ctx->cfg->defaults.bridge);
		cfg_get_checked(ctx, nc, npath, "bridge", false, cfg_is_bridge,
				"a bridge name like 'vmbr0'", &ct->nics[0].bridge);
		cfg_get_checked(ctx, nc, npath, "ip", false, cfg_ct_is_v4,
				"an IPv4 CIDR like '10.0.0.5/24'", &ct->nics[0].ip);
		if (!ct->nics[0].ip)
			cfg_set_str(ctx, &ct->nics[0].ip, "dhcp");
		cfg_ct_gateway(ctx, nc, npath, "gw", false, ct->nics[0].ip, &ct->nics[0].gw);
		return;
	}
	if (!(arr = cfg_get_array(ctx, obj, jpath, "networks", false)))
		return;
	cfg_path_key(npath, jpath, "networks");
	/* pve-container LXC/Config.pm: net0..net31 ($MAX_LXC_NETWORKS) */
	if (!json_array_size(arr) || json_array_size(arr) > 32) {
		cfg_problem(ctx, npath, "expected 1 to 32 NICs, got %zu", json_array_size(arr));
		return;
	}
	if (!(ct->nics = calloc(json_array_size(arr), sizeof(*ct->nics)))) {
		ctx->oom = true;
		return;
	}
	json_array_foreach(arr, i, item)
	{
		cfg_path_idx(ipath, npath, i);
		if (!json_is_object(item)) {
			cfg_problem(ctx, ipath, "expected an object, got %s",
				    cfg_got(item, got, sizeof(got)));
			continue;
		}
		cfg_ct_parse_nic(ctx, item, ipath, &ct->nics[ct->n_nics++]);
	}
}

static void cfg_ct_parse_secrets(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
				 struct cfg_ct *ct)
{
	char kpath[CFG_PATH_MAX], ipath[CFG_PATH_MAX];
	struct cfg_strv raw = {NULL, 0};
	const char *s = cfg_get_str(ctx, obj, jpath, "password_hash", false);

	if (s) {
		/* never quote the value: it may be a plaintext password */
		const char *why = cfg_check_password_hash(s);

		cfg_path_key(kpath, jpath, "password_hash");
		if (why)
			cfg_problem(ctx, kpath, "%s", why);
		else if (!cfg_ct_kept_hash(s))
			cfg_problem(ctx, kpath,
				    "expected a $6$, $5$ or $2b$ hash without options: "
				    "Proxmox crypts a '%.4s...' hash again as if it were the "
				    "password (pve-container set_user_password); use 'mkpasswd -m "
				    "sha-512'",
				    s);
		else
			ct->password_hash = cfg_strdup(ctx, s);
	}
	cfg_get_strv(ctx, obj, jpath, "ssh_public_keys", NULL, "an OpenSSH public key", true, &raw);
	cfg_path_key(kpath, jpath, "ssh_public_keys");
	for (size_t i = 0; i < raw.n; i++) {
		const char *why = cfg_check_ssh_key(raw.items[i]);

		if (json_is_array(json_object_get(obj, "ssh_public_keys")))
			cfg_path_idx(ipath, kpath, i);
		else
			snprintf(ipath, sizeof(ipath), "%s", kpath);
		if (why)
			cfg_problem(ctx, ipath, "%s", why);
		else
			cfg_strv_push(ctx, &ct->ssh_public_keys, raw.items[i]);
	}
	cfg_strv_free(&raw);
}

static void cfg_ct_parse_options(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
				 struct cfg_ct *ct)
{
	static const char *const fkeys[] = {"nesting"};
	static const char *const skeys[] = {"order", "up", "down"};
	char kpath[CFG_PATH_MAX], buf[96];
	unsigned long v;
	json_t *o;
	bool b;

	if ((o = cfg_get_obj(ctx, obj, jpath, "features", false))) {
		cfg_path_key(kpath, jpath, "features");
		/* pve-container check_ct_modify_config_perm: a token may change nesting only;
		 * keyctl, fuse, mount are root@pam's */
		CFG_CHECK_KEYS(ctx, o, kpath, fkeys);
		ct->nesting = cfg_get_tri(ctx, o, kpath, "nesting");
	}
	ct->unprivileged = cfg_get_tri(ctx, obj, jpath, "unprivileged");
	ct->onboot = cfg_get_tri(ctx, obj, jpath, "onboot");
	ct->protection = cfg_get_tri(ctx, obj, jpath, "protection");
	if (cfg_get_bool(ctx, obj, jpath, "start", &b))
		ct->no_start = !b;
	if ((o = cfg_get_obj(ctx, obj, jpath, "startup", false))) {
		size_t n = 0;

		cfg_path_key(kpath, jpath, "startup");
		CFG_CHECK_KEYS(ctx, o, kpath, skeys);
		buf[0] = '\0';
		/* pve-common pve-startup-order, printed in this order */
		for (size_t i = 0; i < 3; i++)
			if (cfg_get_uint(ctx, o, kpath, skeys[i], false, 0, i ? 86400 : 1000000,
					 &v))
				n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s=%lu",
						      n ? "," : "", skeys[i], v);
		if (n)
			ct->startup = cfg_strdup(ctx, buf);
		else
			cfg_problem(ctx, kpath,
				    "expected at least one of 'order', 'up' or 'down', "
				    "got none");
	}
	cfg_get_tags(ctx, obj, jpath, &ct->tags);
	if (json_object_get(obj, "description")) {
		const char *s = cfg_get_str(ctx, obj, jpath, "description", false);

		cfg_path_key(kpath, jpath, "description");
		if (s && strlen(s) > 8192)
			cfg_problem(ctx, kpath, "expected at most 8192 characters, got %zu",
				    strlen(s));
		else if (s)
			ct->description = cfg_strdup(ctx, s);
	}
	cfg_get_checked(ctx, obj, jpath, "pool", false, cfg_is_pool,
			"a Proxmox pool name like 'web' or 'prod/web'", &ct->pool);
}

static void cfg_ct_parse(struct cfg_ctx *ctx, json_t *obj, const char *jpath, struct cfg_ct *ct)
{
	static const char *const keys[] = {
		"vmid",
		"name",
		"clone_from_template",
		"clone_from_vmid",
		"node",
		"cores",
		"memory_mb",
		"swap_mb",
		"rootfs_gb",
		"storage",
		"full_clone",
		"networks",
		"network_config",
		"dns_servers",
		"searchdomain",
		"ssh_public_keys",
		"password_hash",
		"features",
		"unprivileged",
		"onboot",
		"startup",
		"protection",
		"tags",
		"description",
		"start",
		"pool",
	};
	const struct cfg_defaults *d = &ctx->cfg->defaults;
	char kpath[CFG_PATH_MAX];
	bool by_vmid = json_object_get(obj, "clone_from_vmid") != NULL;
	bool by_name = json_object_get(obj, "clone_from_template") != NULL;
	unsigned long v;

	cfg_entry_id(ctx, obj, ct->config_id);
	CFG_CHECK_KEYS(ctx, obj, jpath, keys);
	cfg_get_uint(ctx, obj, jpath, "vmid", true, CFG_VMID_MIN, CFG_VMID_MAX, &ct->vmid);
	cfg_get_checked(ctx, obj, jpath, "name", true, cfg_is_dns_label,
			"a hostname like 'web-1' (letters, digits, inner hyphens, at most 63)",
			&ct->name);
	if (by_vmid == by_name) {
		cfg_path_key(kpath, jpath, by_vmid ? "clone_from_template" : "clone_from_vmid");
		cfg_problem(ctx, kpath,
			    by_vmid ? "expected exactly one of 'clone_from_vmid' or "
				      "'clone_from_template', got both"
				    : "required key is missing (or give "
				      "'clone_from_template')");
	}
	cfg_get_uint(ctx, obj, jpath, "clone_from_vmid", false, CFG_VMID_MIN, CFG_VMID_MAX,
		     &ct->clone_from_vmid);
	cfg_get_checked(ctx, obj, jpath, "clone_from_template", false, cfg_is_dns_label,
			"a template name", &ct->clone_from_template);
	cfg_get_checked(ctx, obj, jpath, "node", false, cfg_is_dns_label,
			"a Proxmox node name like 'pve1'", &ct->node);
	if (ct->node && !strcmp(ct->node, "auto")) {
		/* NEEDSWORK: placement of containers (deploy_place_vm counts VMs only) */
		cfg_path_key(kpath, jpath, "node");
		cfg_problem(ctx, kpath,
			    "expected a node name, got 'auto' (placement is for VMs "
			    "only yet)");
	}
	if (cfg_get_uint(ctx, obj, jpath, "cores", false, 1, CFG_CORES_MAX, &v))
		ct->cores = (unsigned)v;
	/* pve-container LXC/Config.pm: memory from 16 MiB, swap from 0 */
	cfg_get_uint(ctx, obj, jpath, "memory_mb", false, 16, CFG_MEMORY_MB_MAX, &ct->memory_mb);
	ct->has_swap =
		cfg_get_uint(ctx, obj, jpath, "swap_mb", false, 0, CFG_MEMORY_MB_MAX, &ct->swap_mb);
	cfg_get_uint(ctx, obj, jpath, "rootfs_gb", false, 1, CFG_DISK_GB_MAX, &ct->rootfs_gb);
	cfg_set_str(ctx, &ct->storage, d->storage);
	cfg_get_checked(ctx, obj, jpath, "storage", false, cfg_is_storage_id, cfg_ct_expect_storage,
			&ct->storage);
	ct->full_clone = d->full_clone;
	cfg_get_bool(ctx, obj, jpath, "full_clone", &ct->full_clone);
	cfg_ct_parse_nics(ctx, obj, jpath, ct);
	if (!cfg_get_strv(ctx, obj, jpath, "dns_servers", cfg_is_ip,
			  "an IP address like '1.1.1.1' or '2606:4700::1111'", false,
			  &ct->dns_servers))
		cfg_strv_copy(ctx, &ct->dns_servers, &d->dns_servers);
	ct->search_domain = cfg_strdup(ctx, d->search_domain);
	cfg_get_checked(ctx, obj, jpath, "searchdomain", false, cfg_is_dns_name,
			"a DNS domain like 'lan.example.com'", &ct->search_domain);
	cfg_ct_parse_secrets(ctx, obj, jpath, ct);
	cfg_ct_parse_options(ctx, obj, jpath, ct);
}

void cfg_ct_release(struct cfg_ct *ct)
{
	free(ct->name);
	free(ct->clone_from_template);
	free(ct->node);
	free(ct->storage);
	for (size_t i = 0; i < ct->n_nics; i++)
		cfg_ct_nic_release(&ct->nics[i]);
	free(ct->nics);
	cfg_strv_free(&ct->dns_servers);
	free(ct->search_domain);
	cfg_strv_free(&ct->ssh_public_keys);
	free(ct->password_hash);
	free(ct->startup);
	cfg_strv_free(&ct->tags);
	free(ct->description);
	free(ct->pool);
}

void cfg_parse_containers(struct cfg_ctx *ctx, json_t *root)
{
	json_t *arr = cfg_get_array(ctx, root, "$", "containers", false), *item;
	char jpath[CFG_PATH_MAX], got[CFG_SHOW_MAX + 32];
	size_t i;

	if (!arr || !json_array_size(arr))
		return;
	if (!(ctx->cfg->cts = calloc(json_array_size(arr), sizeof(*ctx->cfg->cts)))) {
		ctx->oom = true;
		return;
	}
	json_array_foreach(arr, i, item)
	{
		cfg_path_idx(jpath, "$.containers", i);
		if (!json_is_object(item)) {
			cfg_problem(ctx, jpath, "expected an object, got %s",
				    cfg_got(item, got, sizeof(got)));
			continue;
		}
		cfg_ct_parse(ctx, item, jpath, &ctx->cfg->cts[ctx->cfg->n_cts++]);
	}
}

void cfg_ct_cross_check(struct cfg_ctx *ctx)
{
	const struct cfg *cfg = ctx->cfg;
	char jpath[CFG_PATH_MAX];

	for (size_t i = 0; i < cfg->n_cts; i++) {
		const struct cfg_ct *ct = &cfg->cts[i];

		/* Proxmox shares VMIDs between VMs and containers (pve-cluster
		 * check_vmid_unused), and a hostname that is also a VM's name confuses DNS */
		for (size_t j = 0; j < i; j++) {
			if (ct->vmid && ct->vmid == cfg->cts[j].vmid) {
				snprintf(jpath, sizeof(jpath), "$.containers[%zu].vmid", i);
				cfg_problem(ctx, jpath,
					    "duplicate VMID %lu (also $.containers[%zu].vmid)",
					    ct->vmid, j);
			}
			if (ct->name && cfg->cts[j].name &&
			    !strcasecmp(ct->name, cfg->cts[j].name)) {
				snprintf(jpath, sizeof(jpath), "$.containers[%zu].name", i);
				cfg_problem(ctx, jpath,
					    "duplicate name '%s' (also "
					    "$.containers[%zu].name)",
					    ct->name, j);
			}
		}
		for (size_t j = 0; j < cfg->n_vms; j++) {
			if (ct->vmid && ct->vmid == cfg->vms[j].vmid) {
				snprintf(jpath, sizeof(jpath), "$.containers[%zu].vmid", i);
				cfg_problem(ctx, jpath,
					    "VMID %lu is also $.vms[%zu].vmid (VMs and containers "
					    "share VMIDs)",
					    ct->vmid, j);
			}
			if (ct->name && cfg->vms[j].name &&
			    !strcasecmp(ct->name, cfg->vms[j].name)) {
				snprintf(jpath, sizeof(jpath), "$.containers[%zu].name", i);
				cfg_problem(ctx, jpath, "name '%s' is also $.vms[%zu].name",
					    ct->name, j);
			}
			if (ct->clone_from_vmid && ct->clone_from_vmid == cfg->vms[j].vmid) {
				snprintf(jpath, sizeof(jpath), "$.containers[%zu].clone_from_vmid",
					 i);
				cfg_problem(ctx, jpath,
					    "expected a container template's VMID, got %lu, which "
					    "is the VM '%s' of this config",
					    ct->clone_from_vmid, cfg->vms[j].name);
			}
		}
		for (size_t j = 0; j < cfg->n_templates && ct->vmid; j++) {
			if (cfg_template_owns(&cfg->templates[j], ct->vmid)) {
				snprintf(jpath, sizeof(jpath), "$.containers[%zu].vmid", i);
				cfg_problem(ctx, jpath,
					    "VMID %lu belongs to template '%s' ($.templates[%zu])",
					    ct->vmid,
					    cfg->templates[j].name ? cfg->templates[j].name : "?",
					    j);
			}
		}
		if (ct->clone_from_vmid) {
			const struct cfg_ct *o = cfg_find_ct(cfg, ct->clone_from_vmid);

			snprintf(jpath, sizeof(jpath), "$.containers[%zu].clone_from_vmid", i);
			if (o)
				cfg_problem(ctx, jpath,
					    "expected a container template's VMID, got %lu, which "
					    "is the container '%s' of this config",
					    ct->clone_from_vmid, o->name ? o->name : "?");
		}
		if (ct->clone_from_template) {
			const struct cfg_template *t =
				cfg_find_template(cfg, ct->clone_from_template);

			snprintf(jpath, sizeof(jpath), "$.containers[%zu].clone_from_template", i);
			if (!t)
				cfg_problem(
					ctx, jpath,
					"expected the name of a template in $.templates, got '%s'",
					ct->clone_from_template);
			else if (t->kind != CFG_KIND_LXC)
				cfg_problem(
					ctx, jpath,
					"expected a container template (\"kind\": \"lxc\"), got "
					"'%s', a VM template",
					ct->clone_from_template);
		}
	}
}

bool cfg_ct_needs_create(const struct cfg_ct *ct)
{
	return ct->password_hash || ct->ssh_public_keys.n;
}

const struct cfg_ct *cfg_find_ct(const struct cfg *cfg, unsigned long vmid)
{
	for (size_t i = 0; i < cfg->n_cts; i++)
		if (cfg->cts[i].vmid == vmid)
			return &cfg->cts[i];
	return NULL;
}

const char *cfg_ct_node(const struct cfg *cfg, const struct cfg_ct *ct)
{
	return ct->node ? ct->node : cfg_default_node(cfg);
}
