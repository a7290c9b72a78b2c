/* cmd_common: what several commands read from the server the same way (see cmd.h). */
#include <stdlib.h>

#include "cmd.h"

int cmd_series_guests(const struct pve_vm_list *vms, struct series_guest **ret,
		      struct phx_err *err)
{
	struct series_guest *g = calloc(vms->n ? vms->n : 1, sizeof(*g));

	if (!g)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (size_t i = 0; i < vms->n; i++)
		g[i] = (struct series_guest){(unsigned long)vms->items[i].vmid, vms->items[i].name,
					     vms->items[i].tags, vms->items[i].template};
	*ret = g;
	return 0;
}

int cmd_linked_clone_uses(struct pve_client *c, const struct pve_vm_list *vms,
			  struct series_uses *ret, struct phx_err *err)
{
	struct series_uses uses = SERIES_USES_INIT;

	for (size_t i = 0; i < vms->n; i++) {
		json_t *config = NULL, *v;
		const char *key;

		if (vms->items[i].template)
			continue;
		if (pve_vm_config_get(c, vms->items[i].node, vms->items[i].vmid, &config, err) <
		    0)
			goto fail;
		json_object_foreach(config, key, v)
		{
			if (series_uses_scan(&uses, (unsigned long)vms->items[i].vmid,
					     json_string_value(v), err) < 0) {
				json_decref(config);
				goto fail;
			}
		}
		json_decref(config);
	}
	*ret = uses;
	return 0;
fail:
	series_uses_release(&uses);
	return -1;
}
