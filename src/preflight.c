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

int pf_bridge_acl_path(struct pve_client *c, const char *bridge, char *ret, size_t len,
		       struct phx_err *err)
{
	const char *zone = "localnetwork";
	struct phx_err gerr = PHX_ERR_INIT;
	json_t *vnets = NULL, *v;
	size_t i;

	/* the list shows the VNets the token may see; one it cannot see is not one it may
	 * use either, so "localnetwork" then fails the check as it would on the server */
	if (pve_get(c, "/cluster/sdn/vnets", NULL, 0, &vnets, &gerr) < 0) {
		if (gerr.code != PHX_E_API && gerr.code != PHX_E_PERM) {
			*err = gerr;
			return -1;
		}
		log_debug("SDN VNets not readable (%s): '%s' taken as a plain bridge", gerr.msg,
			  bridge);
	}
	json_array_foreach(vnets, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "vnet"));
		const char *z = json_string_value(json_object_get(v, "zone"));

		if (name && z && !strcmp(name, bridge)) {
			zone = z;
			break;
		}
	}
	snprintf(ret, len, "/sdn/zones/%s/%s", zone, bridge);
	json_decref(vnets);
	return 0;
}
