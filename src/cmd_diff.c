/* cmd_diff: --diff V1 V2, the packages that changed between two template versions ("what did
 * this rebuild fix?"), from the package lists the builds kept (pkglist.h). Reads only. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "pve.h"
#include "series.h"
#include "session.h"

static int cmd_diff_run(struct session *s, struct phx_err *err)
{
	const struct cli_opts *opts = s->opts;
	const bool json = opts->output == CLI_OUTPUT_JSON;
	struct pve_vm_list vms = {0};
	const struct pve_vm_info *a, *b;
	char *from = NULL, *to = NULL;
	json_t *changes = json ? json_array() : NULL;
	long n;
	int rc = -1;

	if (json && !changes)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	/* container templates keep package lists as VM templates do */
	if (session_connect(s, err) < 0 || pve_cluster_guests(s->pve, &vms, err) < 0 ||
	    !(a = cmd_find_template(&vms, opts->names[0], err)) ||
	    !(b = cmd_find_template(&vms, opts->names[1], err)) ||
	    cmd_template_packages(s->pve, a, &from, err) < 0 ||
	    cmd_template_packages(s->pve, b, &to, err) < 0)
		goto out;
	if (!json)
		printf("packages from %d '%s' to %d '%s':\n", a->vmid, a->name, b->vmid, b->name);
	if ((n = cmd_print_package_changes(from, to, changes, err)) < 0)
		goto out;
	if (json) {
		rc = cmd_print_json(json_pack("{s:{s:i, s:s}, s:{s:i, s:s}, s:O}", "from", "vmid",
					      a->vmid, "name", a->name, "to", "vmid", b->vmid,
					      "name", b->name, "changes", changes),
				    err);
		goto out;
	}
	printf("%ld change%s\n", n, n == 1 ? "" : "s");
	rc = 0;
out:
	json_decref(changes);
	free(from);
	free(to);
	pve_vm_list_release(&vms);
	return rc;
}

const struct cmd_entry cmd_diff_entry = {"diff", CMD_SERVER, cmd_diff_run};
