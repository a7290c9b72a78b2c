/* cmd_recover: `--recover`, the start every locked run makes (session.h): finish what a
 * killed run left half-made, from its journal; then sweep the leftovers of ours no journal
 * covers (recover.h), and say what was done. For an operator after a crash who wants the
 * cleanup without a build, or a maintenance timer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"
#include "recover.h"
#include "session.h"

/* The online nodes, then the sweep on each. */
static int cmd_recover_sweep(struct session *s, size_t *ret_failed, struct phx_err *err)
{
	struct pve_vm_list vms = {NULL, 0};
	json_t *list = NULL, *e;
	const char **nodes = NULL;
	size_t n = 0, i;
	int rc = -1;

	if (pve_get(s->pve, "/nodes", NULL, 0, &list, err) < 0 ||
	    pve_cluster_vms(s->pve, &vms, err) < 0)
		goto out;
	if (!(nodes = calloc(json_array_size(list) + 1, sizeof(*nodes)))) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(list, i, e)
	{
		const char *status = json_string_value(json_object_get(e, "status"));

		if (status && !strcmp(status, "online") &&
		    json_is_string(json_object_get(e, "node")))
			nodes[n++] = json_string_value(json_object_get(e, "node"));
	}
	rc = rcv_sweep(s->pve, nodes, n, s->cfg->defaults.import_storage,
		       s->cfg->defaults.iso_storage, &vms, RCV_SWEEP_GRACE_S,
		       session_task_timeout(s), s->recovered, ret_failed, err);
out:
	free(nodes);
	json_decref(list);
	pve_vm_list_release(&vms);
	return rc;
}

static int cmd_recover_run(struct session *s, struct phx_err *err)
{
	size_t i, swept_failed = 0;
	json_t *r;

	if (session_connect(s, err) < 0)
		return -1;
	if (s->opts->dry_run)
		log_info("a dry run does not sweep leftovers");
	else if (cmd_recover_sweep(s, &swept_failed, err) < 0)
		return -1;
	if (s->opts->output == CLI_OUTPUT_JSON) {
		if (cmd_print_json(json_incref(s->recovered), err) < 0)
			return -1;
	} else if (!json_array_size(s->recovered)) {
		printf("nothing to recover: no interrupted run left work behind, no leftover "
		       "to sweep\n");
	} else {
		json_array_foreach(s->recovered, i, r)
			printf("%s: %s\n", json_string_value(json_object_get(r, "what")),
			       json_string_value(json_object_get(r, "result")));
	}
	if (s->recover_failed || swept_failed)
		return phx_err_set(err, PHX_E_RUNTIME,
				   "%zu removal(s) failed; an interrupted run's stay in its journal "
				   "for the next run",
				   s->recover_failed + swept_failed);
	return 0;
}

const struct cmd_entry cmd_recover_entry = {"recover", CMD_SERVER | CMD_LOCK, cmd_recover_run};
