/* pve_ct: the container calls of pve_ct.h. Task types and ids are pve-container's
 * (API2/LXC.pm fork_worker calls); pve.c's task_key_guess knows them too, so a lost answer
 * is followed to its task as for VMs. */
#include "pve_ct.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *ct_path(struct pve_client *c, const char *node, int vmid, const char *s1,
		     struct phx_err *err)
{
	char id[24];

	snprintf(id, sizeof(id), "%d", vmid);
	return pve_path(err, "nodes", node && *node ? node : pve_client_node(c), "lxc", id, s1,
			NULL);
}

/* A request that starts task `ttype` whose id is the VMID. */
static int ct_async(struct pve_client *c, const char *method, const char *node, int vmid,
		    const char *s1, const struct pve_param *params, size_t n, const char *ttype,
		    long timeout_s, struct phx_err *err)
{
	char *path = ct_path(c, node, vmid, s1, err);
	char id[24];
	struct pve_task_key key = {ttype, id, NULL};
	int rc;

	if (!path)
		return -1;
	snprintf(id, sizeof(id), "%d", vmid);
	rc = pve_request_task_key(c, method, path, params, n, &key, timeout_s, err);
	free(path);
	return rc;
}

int pve_ct_create(struct pve_client *c, const char *node, const struct pve_param *params,
		  size_t n_params, long timeout_s, struct phx_err *err)
{
	char *path = pve_path(err, "nodes", node && *node ? node : pve_client_node(c), "lxc",
			      NULL);
	struct pve_task_key key = {"vzcreate", NULL, NULL};
	int rc;

	if (!path)
		return -1;
	for (size_t i = 0; i < n_params; i++)
		if (params[i].value && strcmp(params[i].key, "vmid") == 0)
			key.id = params[i].value;
	rc = pve_request_task_key(c, "POST", path, params, n_params, key.id ? &key : NULL,
				  timeout_s, err);
	free(path);
	return rc;
}

int pve_ct_template(struct pve_client *c, const char *node, int vmid, long timeout_s,
		    struct phx_err *err)
{
	return ct_async(c, "POST", node, vmid, "template", NULL, 0, "vztemplate", timeout_s, err);
}

int pve_ct_config_get(struct pve_client *c, const char *node, int vmid, json_t **ret_config,
		      struct phx_err *err)
{
	char *path = ct_path(c, node, vmid, "config", err);
	json_t *data = NULL;
	int rc = -1;

	if (!path)
		return -1;
	if (pve_get(c, path, NULL, 0, &data, err) == 0) {
		if (json_is_object(data)) {
			*ret_config = data;
			data = NULL;
			rc = 0;
		} else {
			phx_err_set(err, PHX_E_API, "GET %s: expected an object", path);
		}
	}
	json_decref(data);
	free(path);
	return rc;
}

int pve_ct_or_vm_config_get(struct pve_client *c, const struct pve_vm_info *g, json_t **ret_config,
			    struct phx_err *err)
{
	if (g->lxc)
		return pve_ct_config_get(c, g->node, g->vmid, ret_config, err);
	return pve_vm_config_get(c, g->node, g->vmid, ret_config, err);
}

int pve_ct_destroy(struct pve_client *c, const char *node, int vmid, unsigned flags,
		   long timeout_s, struct phx_err *err)
{
	struct pve_param p[] = {
		{"purge", flags & PVE_DESTROY_PURGE ? "1" : NULL},
		{"destroy-unreferenced-disks", flags & PVE_DESTROY_UNREFERENCED_DISKS ? "1" : NULL},
	};

	return ct_async(c, "DELETE", node, vmid, NULL, p, 2, "vzdestroy", timeout_s, err);
}
