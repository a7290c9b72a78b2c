/* pve_ct: the container calls of pve_ct.h. Task types and ids are pve-container's
 * (API2/LXC.pm fork_worker calls); pve.c's task_key_guess knows them too, so a lost answer
 * is followed to its task as for VMs. */
#include "pve_ct.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *ct_path(struct pve_client *c, const char *node, int vmid, const char *s1,
		     const char *s2, struct phx_err *err)
{
	return pve_guest_path(c, node, "lxc", vmid, s1, s2, err);
}

static int ct_async(struct pve_client *c, const char *method, const char *node, int vmid,
		    const char *s1, const char *s2, const struct pve_param *params, size_t n,
		    const char *ttype, long timeout_s, struct phx_err *err)
{
	return pve_guest_async(c, method, node, "lxc", vmid, s1, s2, params, n, ttype, timeout_s,
			       err);
}

int pve_ct_create(struct pve_client *c, const char *node, const struct pve_param *params,
		  size_t n_params, long timeout_s, struct phx_err *err)
{
	return pve_guest_create(c, node, "lxc", "vzcreate", params, n_params, timeout_s, err);
}

int pve_ct_template(struct pve_client *c, const char *node, int vmid, long timeout_s,
		    struct phx_err *err)
{
	return ct_async(c, "POST", node, vmid, "template", NULL, NULL, 0, "vztemplate", timeout_s,
			err);
}

int pve_ct_config_get(struct pve_client *c, const char *node, int vmid, json_t **ret_config,
		      struct phx_err *err)
{
	return pve_guest_config_get(c, node, "lxc", vmid, ret_config, err);
}

int pve_ct_or_vm_config_get(struct pve_client *c, const struct pve_vm_info *g, json_t **ret_config,
			    struct phx_err *err)
{
	if (g->lxc)
		return pve_ct_config_get(c, g->node, g->vmid, ret_config, err);
	return pve_vm_config_get(c, g->node, g->vmid, ret_config, err);
}

int pve_ct_destroy(struct pve_client *c, const char *node, int vmid, unsigned flags, long timeout_s,
		   struct phx_err *err)
{
	struct pve_param p[] = {
		{"purge", flags & PVE_DESTROY_PURGE ? "1" : NULL},
		{"destroy-unreferenced-disks", flags & PVE_DESTROY_UNREFERENCED_DISKS ? "1" : NULL},
	};

	return ct_async(c, "DELETE", node, vmid, NULL, NULL, p, 2, "vzdestroy", timeout_s, err);
}

int pve_ct_config_set(struct pve_client *c, const char *node, int vmid,
		      const struct pve_param *params, size_t n_params, struct phx_err *err)
{
	char *path = ct_path(c, node, vmid, "config", NULL, err);
	int rc;

	if (!path)
		return -1;
	rc = pve_request(c, "PUT", path, params, n_params, NULL, err);
	if (rc < 0)
		phx_err_wrap(err, "PUT %s", path);
	free(path);
	return rc;
}

int pve_ct_clone(struct pve_client *c, const char *node, int vmid, int newid,
		 const struct pve_param *params, size_t n_params, long timeout_s,
		 struct phx_err *err)
{
	struct pve_param *all = calloc(n_params + 1, sizeof(*all));
	char id[24], src[24];
	/* clone_vm forks vzclone with the SOURCE VMID; only one clone of a source runs at a
	 * time (its `disk` lock), so the type and id name this request's task */
	struct pve_task_key key = {"vzclone", src, NULL};
	char *path;
	int rc = -1;

	if (!all)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	snprintf(id, sizeof(id), "%d", newid);
	snprintf(src, sizeof(src), "%d", vmid);
	all[0] = (struct pve_param){"newid", id};
	if (n_params)
		memcpy(all + 1, params, n_params * sizeof(*params));
	path = ct_path(c, node, vmid, "clone", NULL, err);
	if (path)
		rc = pve_request_task_key(c, "POST", path, all, n_params + 1, &key, timeout_s, err);
	free(path);
	free(all);
	return rc;
}

int pve_ct_resize(struct pve_client *c, const char *node, int vmid, const char *disk,
		  const char *size, long timeout_s, struct phx_err *err)
{
	struct pve_param p[] = {{"disk", disk}, {"size", size}};

	return ct_async(c, "PUT", node, vmid, "resize", NULL, p, 2, "resize", timeout_s, err);
}

int pve_ct_start(struct pve_client *c, const char *node, int vmid, long timeout_s,
		 struct phx_err *err)
{
	return ct_async(c, "POST", node, vmid, "status", "start", NULL, 0, "vzstart", timeout_s,
			err);
}

int pve_ct_stop(struct pve_client *c, const char *node, int vmid, long timeout_s,
		struct phx_err *err)
{
	return ct_async(c, "POST", node, vmid, "status", "stop", NULL, 0, "vzstop", timeout_s, err);
}

int pve_ct_shutdown(struct pve_client *c, const char *node, int vmid, bool force_stop,
		    long timeout_s, struct phx_err *err)
{
	struct pve_param p[] = {{"forceStop", force_stop ? "1" : NULL}};

	return ct_async(c, "POST", node, vmid, "status", "shutdown", p, 1, "vzshutdown", timeout_s,
			err);
}

int pve_ct_status_get(struct pve_client *c, const char *node, int vmid, struct pve_vm_status *ret,
		      struct phx_err *err)
{
	char *path = ct_path(c, node, vmid, "status", "current", err);
	json_t *data = NULL;
	int rc = -1;

	if (!path)
		return -1;
	if (pve_get(c, path, NULL, 0, &data, err) == 0)
		rc = pve_vm_status_parse(data, ret, err);
	json_decref(data);
	free(path);
	return rc;
}

int pve_ct_iface_list_parse(const json_t *data, struct pve_iface_list *ret, struct phx_err *err)
{
	struct pve_iface_list l = {NULL, 0};
	size_t i, n = json_array_size(data);

	if (json_is_null(data) || !data) {
		*ret = l; /* a stopped container (pve-container get_interfaces: no pid) */
		return 0;
	}
	if (!json_is_array(data))
		return phx_err_set(err, PHX_E_API, "interfaces: expected a list");
	if (!(l.items = calloc(n ? n : 1, sizeof(*l.items))))
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		json_t *e = json_array_get(data, i), *ips = json_object_get(e, "ip-addresses");
		struct pve_iface *f = &l.items[l.n++];
		const char *mac = json_string_value(json_object_get(e, "hardware-address"));
		size_t k, nip = json_array_size(ips);

		f->name = strdup(json_string_value(json_object_get(e, "name")) ?: "");
		f->mac = strdup(mac ? mac : json_string_value(json_object_get(e, "hwaddr")) ?: "");
		f->ipv4 = calloc(nip ? nip : 1, sizeof(*f->ipv4));
		if (!f->name || !f->mac || !f->ipv4)
			goto nomem;
		for (k = 0; k < nip; k++) {
			json_t *ip = json_array_get(ips, k);
			const char *type =
				json_string_value(json_object_get(ip, "ip-address-type"));
			const char *addr = json_string_value(json_object_get(ip, "ip-address"));
			long long prefix = 32;

			/* `ip --json a` families, not the guest agent's ipv4/ipv6 */
			if (!type || strcmp(type, "inet") || !addr)
				continue;
			pve_json_int(json_object_get(ip, "prefix"), "prefix", &prefix, NULL);
			if (asprintf(&f->ipv4[f->n_ipv4], "%s/%lld", addr, prefix) < 0) {
				f->ipv4[f->n_ipv4] = NULL;
				goto nomem;
			}
			f->n_ipv4++;
		}
	}
	*ret = l;
	return 0;
nomem:
	pve_iface_list_release(&l);
	return phx_err_set(err, PHX_E_NOMEM, "out of memory");
}

int pve_ct_interfaces(struct pve_client *c, const char *node, int vmid, struct pve_iface_list *ret,
		      struct phx_err *err)
{
	char *path = ct_path(c, node, vmid, "interfaces", NULL, err);
	json_t *data = NULL;
	int rc = -1;

	if (!path)
		return -1;
	if (pve_get(c, path, NULL, 0, &data, err) == 0) {
		rc = pve_ct_iface_list_parse(data, ret, err);
		if (rc < 0)
			phx_err_wrap(err, "GET %s", path);
	}
	json_decref(data);
	free(path);
	return rc;
}
