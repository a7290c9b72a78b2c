/* cmd_list_templates: --list-templates, the templates this tool built. A template is ours
 * when it carries the `phoenix` tag; its series is its `phx-<name>` tag and its build record
 * (source, sha256, build time) is the description cmd_provision wrote. Reads only. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "log.h"
#include "provision.h"
#include "pve.h"
#include "record.h"
#include "series.h"
#include "session.h"

/* The series name from a `phx-<name>` tag, "" when none. */
static void tpl_series(const char *tags, char *ret, size_t len)
{
	const char *p = tags ? strstr(tags, "phx-") : NULL;

	ret[0] = '\0';
	if (p)
		snprintf(ret, len, "%.*s", (int)strcspn(p + 4, ";, "), p + 4);
}

static int cmd_list_templates_run(struct session *s, struct phx_err *err)
{
	const struct cli_opts *opts = s->opts;
	struct pve_vm_list vms = {0};
	json_t *out = json_array();
	int rc = -1;

	if (!out)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (session_connect(s, err) < 0 || pve_cluster_vms(s->pve, &vms, err) < 0)
		goto out;
	for (size_t i = 0; i < vms.n; i++) {
		const struct pve_vm_info *vm = &vms.items[i];
		char series[128], built[64] = "", sha[80] = "", source[512] = "";
		json_t *config = NULL;
		const char *desc;

		if (!vm->template || !series_has_tag(vm->tags, SERIES_TAG_OURS))
			continue;
		if (pve_vm_config_get(s->pve, vm->node, vm->vmid, &config, err) < 0)
			goto out;
		desc = json_string_value(json_object_get(config, "description"));
		rec_get(desc, PROV_REC_BUILT, built, sizeof(built));
		rec_get(desc, PROV_REC_SHA256, sha, sizeof(sha));
		rec_get(desc, PROV_REC_SOURCE, source, sizeof(source));
		tpl_series(vm->tags, series, sizeof(series));
		json_array_append_new(
			out, json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "vmid", vm->vmid,
				       "name", vm->name, "node", vm->node, "series", series,
				       "built", built, "sha256", sha, "source", source, "validated",
				       series_has_tag(vm->tags, SERIES_TAG_VALIDATED)));
		json_decref(config);
	}
	if (opts->output == CLI_OUTPUT_JSON) {
		json_dumpf(out, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	} else {
		size_t i;
		json_t *t;

		printf("%-9s %-28s %-8s %-20s %-20s %-12s %s\n", "VMID", "NAME", "NODE", "SERIES",
		       "BUILT", "SHA256", "VALIDATED");
		json_array_foreach(out, i, t)
			printf("%-9lld %-28s %-8s %-20s %-20s %-12.12s %s\n",
			       json_integer_value(json_object_get(t, "vmid")),
			       json_string_value(json_object_get(t, "name")),
			       json_string_value(json_object_get(t, "node")),
			       json_string_value(json_object_get(t, "series")),
			       json_string_value(json_object_get(t, "built")),
			       json_string_value(json_object_get(t, "sha256")),
			       json_is_true(json_object_get(t, "validated")) ? "yes" : "no");
	}
	rc = 0;
out:
	json_decref(out);
	pve_vm_list_release(&vms);
	return rc;
}

const struct cmd_entry cmd_list_templates_entry = {"list-templates", CMD_SERVER,
						   cmd_list_templates_run};
