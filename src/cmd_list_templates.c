/* cmd_list_templates: --list-templates, the templates this tool built, VM and container
 * templates alike (`kind` qemu or lxc). A template is ours when it carries the `phoenix` tag; its series is its `phx-<name>` tag and its build record
 * (source, sha256, build time) is the description cmd_provision wrote. Listed by series, then
 * node, then VMID (the versions of a series on each node, oldest first), in text and JSON
 * alike: /cluster/resources has no useful order. Reads only. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "log.h"
#include "provision.h"
#include "pve.h"
#include "pve_ct.h"
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

static const char *tpl_str(const json_t *t, const char *key)
{
	const char *v = json_string_value(json_object_get(t, key));

	return v ? v : "";
}

/* Series (templates without one last), node, VMID. */
static int tpl_cmp(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	const char *sx = tpl_str(x, "series"), *sy = tpl_str(y, "series");
	json_int_t vx = json_integer_value(json_object_get(x, "vmid"));
	json_int_t vy = json_integer_value(json_object_get(y, "vmid"));
	int c;

	if (!*sx != !*sy)
		return *sx ? -1 : 1;
	if ((c = strcmp(sx, sy)) || (c = strcmp(tpl_str(x, "node"), tpl_str(y, "node"))))
		return c;
	return vx < vy ? -1 : vx > vy;
}

/* Sorts the array in place (tpl_cmp). */
static int tpl_sort(json_t *arr, struct phx_err *err)
{
	size_t n = json_array_size(arr);
	json_t **items = calloc(n ? n : 1, sizeof(*items));

	if (!items)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		items[i] = json_incref(json_array_get(arr, i));
	qsort(items, n, sizeof(*items), tpl_cmp);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(arr, items[i]) < 0) {
			for (size_t k = i + 1; k < n; k++)
				json_decref(items[k]);
			free(items);
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		}
	free(items);
	return 0;
}

/* "-" for an empty text cell, so every row has every column */
static const char *tpl_cell(const json_t *t, const char *key)
{
	const char *v = tpl_str(t, key);

	return *v ? v : "-";
}

static int tpl_width(const json_t *arr, const char *key, int min)
{
	size_t i;
	const json_t *t;

	json_array_foreach(arr, i, t)
	{
		int l = (int)strlen(tpl_str(t, key));

		min = l > min ? l : min;
	}
	return min;
}

/* --packages SERIES: the versions of the series, oldest first (one per build: the copies
 * on other nodes share its list), each with its package count and what changed since the
 * version before it that has a list. */
static int tpl_packages(struct session *s, const struct pve_vm_list *vms, const char *series,
			struct phx_err *err)
{
	const bool json = s->opts->output == CLI_OUTPUT_JSON;
	struct series_guest *g = NULL;
	size_t *idx = NULL, n = 0;
	char *prev = NULL;
	json_t *out = json_array();
	int rc = -1;

	if (!out)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (cmd_series_guests(vms, &g, err) < 0 ||
	    series_members(series, g, vms->n, &idx, &n, err) < 0)
		goto out;
	if (!n) {
		phx_err_set(err, PHX_E_NOTFOUND,
			    "--packages: series '%s' has no versions on the cluster", series);
		goto out;
	}
	for (size_t k = n; k-- > 0;) {
		const struct pve_vm_info *vm = &vms->items[idx[k]];
		struct phx_err why = PHX_ERR_INIT;
		json_t *row = NULL, *changes = NULL;
		char *text = NULL;
		bool dup = false;
		long count = -1;

		for (size_t j = k + 1; j < n && !dup; j++)
			dup = !strcmp(vms->items[idx[j]].name, vm->name);
		if (dup)
			continue;
		if (cmd_template_packages(s->pve, vm, &text, &why) < 0) {
			if (why.code == PHX_E_NOMEM) {
				*err = why;
				goto out;
			}
		} else {
			count = 0;
			for (const char *p = text; (p = strchr(p, '\n')); p++)
				count++;
		}
		if (json) {
			row = json_pack("{s:i, s:s, s:s}", "vmid", vm->vmid, "name", vm->name,
					"node", vm->node);
			json_object_set_new(row, "packages",
					    count < 0 ? json_null() : json_integer(count));
			if (count < 0)
				json_object_set_new(row, "error", json_string(why.msg));
			changes = prev && text ? json_array() : NULL;
		} else if (count < 0) {
			printf("%s (%d on %s): no package list: %s\n", vm->name, vm->vmid, vm->node,
			       why.msg);
		} else {
			printf("%s (%d on %s): %ld packages%s\n", vm->name, vm->vmid, vm->node,
			       count, prev ? "" : " (the oldest with a list)");
		}
		if (prev && text && cmd_print_package_changes(prev, text, changes, err) < 0) {
			json_decref(changes);
			json_decref(row);
			free(text);
			goto out;
		}
		if (row) {
			json_object_set_new(row, "changes", changes ? changes : json_null());
			json_array_append_new(out, row);
		}
		if (text) {
			free(prev);
			prev = text;
		}
	}
	rc = json ? cmd_print_json(json_incref(out), err) : 0;
out:
	json_decref(out);
	free(prev);
	free(idx);
	free(g);
	return rc;
}

static int cmd_list_templates_run(struct session *s, struct phx_err *err)
{
	const struct cli_opts *opts = s->opts;
	struct pve_vm_list vms = {0};
	json_t *out = json_array();
	int rc = -1;

	if (!out)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (session_connect(s, err) < 0 || pve_cluster_guests(s->pve, &vms, err) < 0)
		goto out;
	if (opts->packages_series) {
		rc = tpl_packages(s, &vms, opts->packages_series, err);
		goto out;
	}
	for (size_t i = 0; i < vms.n; i++) {
		const struct pve_vm_info *vm = &vms.items[i];
		char series[128], built[64] = "", sha[80] = "", source[512] = "";
		json_t *config = NULL;
		const char *desc;

		if (!vm->template || !series_has_tag(vm->tags, SERIES_TAG_OURS))
			continue;
		if (pve_ct_or_vm_config_get(s->pve, vm, &config, err) < 0)
			goto out;
		desc = json_string_value(json_object_get(config, "description"));
		rec_get(desc, PROV_REC_BUILT, built, sizeof(built));
		rec_get(desc, PROV_REC_SHA256, sha, sizeof(sha));
		rec_get(desc, PROV_REC_SOURCE, source, sizeof(source));
		tpl_series(vm->tags, series, sizeof(series));
		json_array_append_new(
			out, json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "vmid",
				       vm->vmid, "name", vm->name, "node", vm->node, "series", series,
				       "built", built, "sha256", sha, "source", source, "validated",
				       series_has_tag(vm->tags, SERIES_TAG_VALIDATED), "kind",
				       vm->lxc ? "lxc" : "qemu"));
		json_decref(config);
	}
	if (tpl_sort(out, err) < 0)
		goto out;
	if (opts->output == CLI_OUTPUT_JSON) {
		json_dumpf(out, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	} else {
		/* grouped: a series' versions on one node follow each other, then its next node */
		const int ws = tpl_width(out, "series", 6), wd = tpl_width(out, "node", 4),
			  wn = tpl_width(out, "name", 4);
		size_t i;
		json_t *t;

		printf("%-*s  %-*s  %-9s  %-*s  %-20s  %-12s  %-9s  %s\n", ws, "SERIES", wd,
		       "NODE", "VMID", wn, "NAME", "BUILT", "SHA256", "VALIDATED", "KIND");
		json_array_foreach(out, i, t)
			printf("%-*s  %-*s  %-9lld  %-*s  %-20s  %-12.12s  %-9s  %s\n", ws,
			       tpl_cell(t, "series"), wd, tpl_str(t, "node"),
			       (long long)json_integer_value(json_object_get(t, "vmid")), wn,
			       tpl_str(t, "name"), tpl_cell(t, "built"), tpl_cell(t, "sha256"),
			       json_is_true(json_object_get(t, "validated")) ? "yes" : "no",
			       tpl_str(t, "kind"));
	}
	rc = 0;
out:
	json_decref(out);
	pve_vm_list_release(&vms);
	return rc;
}

const struct cmd_entry cmd_list_templates_entry = {"list-templates", CMD_SERVER,
						   cmd_list_templates_run};
