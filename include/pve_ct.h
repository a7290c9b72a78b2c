/* pve_ct: the typed Proxmox calls for LXC containers (pve-container API2/LXC.pm), mirroring
 * the VM calls of pve.h: same client, same task waits, same errors. A `WARNINGS: N` end of a
 * task is success (pve_task_wait): vzcreate and vzclone end so for systemd newer than 241
 * without nesting (lxc-notes point 4).
 * Does not own: which parameters a container gets (the planners decide). */
#ifndef PHX_PVE_CT_H
#define PHX_PVE_CT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"
#include "pve.h"

/* POST /nodes/{node}/lxc; params must include vmid and ostemplate. Waits for vzcreate. */
int pve_ct_create(struct pve_client *c, const char *node, const struct pve_param *params,
		  size_t n_params, long timeout_s, struct phx_err *err);
/* POST .../lxc/{vmid}/template. Its answer is null while the worker runs on (LXC.pm
 * template): the vztemplate task is found in the node's task list and waited for. */
int pve_ct_template(struct pve_client *c, const char *node, int vmid, long timeout_s,
		    struct phx_err *err);
/* GET .../lxc/{vmid}/config. Caller owns *ret_config (json_decref). */
int pve_ct_config_get(struct pve_client *c, const char *node, int vmid, json_t **ret_config,
		      struct phx_err *err);
/* The config of a guest of the cluster list, a container's (lxc) or a VM's. */
int pve_ct_or_vm_config_get(struct pve_client *c, const struct pve_vm_info *g, json_t **ret_config,
			    struct phx_err *err);
/* DELETE .../lxc/{vmid} (flags: PVE_DESTROY_*), waits for vzdestroy. */
int pve_ct_destroy(struct pve_client *c, const char *node, int vmid, unsigned flags, long timeout_s,
		   struct phx_err *err);

/* PUT .../lxc/{vmid}/config: synchronous (update_vm runs in the API process). */
int pve_ct_config_set(struct pve_client *c, const char *node, int vmid,
		      const struct pve_param *params, size_t n_params, struct phx_err *err);
/* POST .../lxc/{vmid}/clone with newid and params (hostname, full, storage, pool). The
 * source stays locked (`disk`) for the whole task: a second clone of it meanwhile fails with
 * "CT is locked (disk)" (pve-guest-common set_lock). Waits for vzclone. */
int pve_ct_clone(struct pve_client *c, const char *node, int vmid, int newid,
		 const struct pve_param *params, size_t n_params, long timeout_s,
		 struct phx_err *err);
/* PUT .../lxc/{vmid}/resize disk=DISK size=SIZE ("+2G" grows, "10G" absolute). */
int pve_ct_resize(struct pve_client *c, const char *node, int vmid, const char *disk,
		  const char *size, long timeout_s, struct phx_err *err);
int pve_ct_start(struct pve_client *c, const char *node, int vmid, long timeout_s,
		 struct phx_err *err);
int pve_ct_stop(struct pve_client *c, const char *node, int vmid, long timeout_s,
		struct phx_err *err);
/* Clean shutdown; force_stop stops the container when it does not power off in time. */
int pve_ct_shutdown(struct pve_client *c, const char *node, int vmid, bool force_stop,
		    long timeout_s, struct phx_err *err);
/* GET .../lxc/{vmid}/status/current (the VM status struct; qmpstatus and agent stay empty). */
int pve_ct_status_get(struct pve_client *c, const char *node, int vmid, struct pve_vm_status *ret,
		      struct phx_err *err);

/* GET .../lxc/{vmid}/interfaces: each interface's name, MAC and IPv4 addresses (family
 * inet). A stopped container's answer is null: an empty list. */
int pve_ct_interfaces(struct pve_client *c, const char *node, int vmid, struct pve_iface_list *ret,
		      struct phx_err *err);
int pve_ct_iface_list_parse(const json_t *data, struct pve_iface_list *ret, struct phx_err *err);

#endif
