/* preflight: server-side checks before the first change (see preflight.h). */
#include "preflight.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

void pf_need_add(struct pf_need *need, const char *priv)
{
	for (size_t i = 0; i < need->n; i++)
		if (!strcmp(need->privs[i], priv))
			return;
	if (need->n < PF_MAX_PRIVS)
		need->privs[need->n++] = priv;
}

int pf_check_privileges(struct pve_client *c, const struct pf_need *needs, size_t n,
			struct phx_err *err)
{
	char missing[PHX_ERR_MSG_MAX] = "";
	size_t used = 0;

	for (size_t i = 0; i < n && used < sizeof(missing); i++) {
		struct phx_err perr = PHX_ERR_INIT;

		if (!needs[i].n ||
		    pve_permissions_check(c, needs[i].path, needs[i].privs, needs[i].n, &perr) == 0)
			continue;
		if (perr.code != PHX_E_PERM) {
			*err = perr;
			return -1;
		}
		used += (size_t)snprintf(missing + used, sizeof(missing) - used, "%s%s",
					 used ? "; " : "", perr.msg);
	}
	return used ? phx_err_set(err, PHX_E_PERM, "%s", missing) : 0;
}

int pf_sdn_vnets(struct pve_client *c, json_t **ret, struct phx_err *err)
{
	struct phx_err gerr = PHX_ERR_INIT;

	*ret = NULL;
	if (pve_get(c, "/cluster/sdn/vnets", NULL, 0, ret, &gerr) < 0) {
		if (gerr.code != PHX_E_API && gerr.code != PHX_E_PERM) {
			*err = gerr;
			return -1;
		}
		log_debug("SDN VNets not readable (%s): bridges taken as plain bridges", gerr.msg);
		*ret = NULL;
	}
	return 0;
}

void pf_vnet_acl_path(const json_t *vnets, const char *bridge, unsigned tag, char *ret,
		      size_t len)
{
	const char *zone = "localnetwork";
	size_t i;
	json_t *v;

	json_array_foreach((json_t *)vnets, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "vnet"));
		const char *z = json_string_value(json_object_get(v, "zone"));

		if (name && z && !strcmp(name, bridge)) {
			zone = z;
			break;
		}
	}
	if (tag)
		snprintf(ret, len, "/sdn/zones/%s/%s/%u", zone, bridge, tag);
	else
		snprintf(ret, len, "/sdn/zones/%s/%s", zone, bridge);
}

int pf_bridge_acl_path(struct pve_client *c, const char *bridge, char *ret, size_t len,
		       struct phx_err *err)
{
	json_t *vnets;

	if (pf_sdn_vnets(c, &vnets, err) < 0)
		return -1;
	pf_vnet_acl_path(vnets, bridge, 0, ret, len);
	json_decref(vnets);
	return 0;
}
