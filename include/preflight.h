/* preflight: what a command checks on the server before its first change, so a run that
 * cannot finish fails before it has cloned or uploaded anything: every missing privilege of
 * the token at once (not one per failed run), and the SDN zone a bridge belongs to. Reads
 * only. */
#ifndef PHX_PREFLIGHT_H
#define PHX_PREFLIGHT_H

#include <stddef.h>

#include "err.h"
#include "pve.h"

#define PF_MAX_PRIVS 16

/* The privileges needed on one ACL path ("/vms/8001", "/storage/local",
 * "/sdn/zones/localnetwork/vmbr0"). */
struct pf_need {
	char path[300];
	const char *privs[PF_MAX_PRIVS]; /* static strings */
	size_t n;
};

/* Adds priv to need (once; silently capped at PF_MAX_PRIVS). */
void pf_need_add(struct pf_need *need, const char *priv);
/* Checks each need with GET /access/permissions; PHX_E_PERM lists everything missing,
 * "token 'ID' lacks A, B on /vms; token 'ID' lacks C on /storage/local" (pve.h). Other
 * errors are returned as they come. */
int pf_check_privileges(struct pve_client *c, const struct pf_need *needs, size_t n,
			struct phx_err *err);
/* GET /cluster/sdn/vnets into *ret (caller json_decref()s it); NULL, not an error, when the
 * token may not read it: a VNet it cannot see is not one it may use either, so its NICs then
 * fail the check as they would on the server. */
int pf_sdn_vnets(struct pve_client *c, json_t **ret, struct phx_err *err);
/* The ACL path whose SDN.Use a NIC on `bridge` with VLAN `tag` (0: none) needs (pve-guest-common
 * GuestHelpers.pm check_vnet_access): "/sdn/zones/<zone>/<bridge>", "/<tag>" appended for a
 * tagged NIC, the zone that of the VNet of that name in `vnets` (pf_sdn_vnets, may be NULL),
 * else "localnetwork" (a plain Linux bridge). */
void pf_vnet_acl_path(const json_t *vnets, const char *bridge, unsigned tag, char *ret,
		      size_t len);
/* The ACL path whose SDN.Use a NIC on `bridge` needs (pve-guest-common
 * PVE::GuestHelpers::check_vnet_access, qemu-server check_bridge_access):
 * "/sdn/zones/<zone>/<bridge>", with the zone of the SDN VNet of that name from
 * GET /cluster/sdn/vnets, else "localnetwork" (a plain Linux bridge). */
int pf_bridge_acl_path(struct pve_client *c, const char *bridge, char *ret, size_t len,
		       struct phx_err *err);

#endif
