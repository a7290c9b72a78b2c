/* cmd_common: what several commands read from the server the same way (see cmd.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "pkglist.h"
#include "plan.h"
#include "provision.h"
#include "pve_ct.h"
#include "record.h"

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
		/* a linked clone of a container template names its basevol the same way */
		if (pve_ct_or_vm_config_get(c, &vms->items[i], &config, err) < 0)
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

int cmd_template_packages(struct pve_client *c, const struct pve_vm_info *vm, char **ret,
			  struct phx_err *err)
{
	json_t *config = NULL;
	char image[80] = "", want[128] = "", got[128], *cache = NULL, *text = NULL;
	const char *desc;
	int rc = -1;

	if (pve_ct_or_vm_config_get(c, vm, &config, err) < 0)
		return -1;
	desc = json_string_value(json_object_get(config, "description"));
	rec_get(desc, PROV_REC_CUSTOM_SHA256, image, sizeof(image));
	rec_get(desc, PROV_REC_PACKAGES, want, sizeof(want));
	json_decref(config);
	if (!image[0] || !want[0])
		return phx_err_set(err, PHX_E_NOTFOUND,
				   "template %d '%s' has no package list in its build record "
				   "(built before lists were kept, or from a guest without dpkg "
				   "or rpm)",
				   vm->vmid, vm->name);
	if (session_cache_dir(&cache, err) < 0 || pkg_load(cache, image, &text, err) < 0 ||
	    pkg_summary(text, got, sizeof(got), err) < 0)
		goto out;
	if (strcmp(got, want)) {
		phx_err_set(err, PHX_E_CONFLICT,
			    "the package list kept for template %d '%s' does not match its build "
			    "record (record: %s, kept: %s)",
			    vm->vmid, vm->name, want, got);
		goto out;
	}
	*ret = text;
	text = NULL;
	rc = 0;
out:
	if (rc < 0)
		phx_err_wrap(err, "template %d '%s'", vm->vmid, vm->name);
	free(text);
	free(cache);
	return rc;
}

long cmd_print_package_changes(const char *from, const char *to, json_t *json,
			       struct phx_err *err)
{
	static const char *const verb[] = {[PKG_ADDED] = "added", [PKG_REMOVED] = "removed",
					   [PKG_CHANGED] = "changed"};
	struct pkg_list a = {NULL, 0}, b = {NULL, 0};
	struct pkg_delta *d = NULL;
	size_t n = 0;
	long rc = -1;

	if (pkg_parse(from, &a, err) < 0 || pkg_parse(to, &b, err) < 0 ||
	    pkg_diff(&a, &b, &d, &n, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct pkg_delta *x = &d[i];

		if (json) {
			if (json_array_append_new(
				    json, json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "name", x->name,
						    "arch", x->arch, "change", verb[x->change],
						    "from", x->old_version, "to",
						    x->new_version)) < 0) {
				phx_err_set(err, PHX_E_NOMEM, "out of memory");
				goto out;
			}
		} else if (x->change == PKG_CHANGED) {
			printf("  changed  %s:%s %s -> %s\n", x->name, x->arch, x->old_version,
			       x->new_version);
		} else {
			printf("  %-7s  %s:%s %s\n", verb[x->change], x->name, x->arch,
			       x->change == PKG_ADDED ? x->new_version : x->old_version);
		}
	}
	rc = (long)n;
out:
	free(d);
	pkg_list_release(&a);
	pkg_list_release(&b);
	return rc;
}

const struct pve_vm_info *cmd_find_template(const struct pve_vm_list *l, const char *arg,
					    struct phx_err *err)
{
	const bool by_vmid = arg[strspn(arg, "0123456789")] == '\0';

	for (size_t i = 0; i < l->n; i++) {
		const struct pve_vm_info *vm = &l->items[i];

		if (!vm->template || !series_has_tag(vm->tags, SERIES_TAG_OURS))
			continue;
		if (by_vmid ? vm->vmid == atoi(arg) : !strcmp(vm->name, arg))
			return vm;
	}
	phx_err_set(err, PHX_E_NOTFOUND,
		    "no template of ours is %s '%s' ('orchestrator --list-templates' lists them)",
		    by_vmid ? "VMID" : "named", arg);
	return NULL;
}

bool cmd_archive_goes(const struct pve_vm_list *vms, size_t k, const bool *removing, bool shared,
		      const struct pve_vm_info **ret_user)
{
	const struct pve_vm_info *vm = &vms->items[k];
	bool earlier = false; /* removed in this run before k: it deletes the archive */

	*ret_user = NULL;
	for (size_t i = 0; i < vms->n; i++) {
		const struct pve_vm_info *g = &vms->items[i];

		if (i == k || !g->lxc || strcmp(g->name, vm->name) ||
		    (!shared && strcmp(g->node, vm->node)))
			continue;
		if (!removing || !removing[i]) {
			*ret_user = g;
			return false;
		}
		earlier |= i < k;
	}
	return !earlier;
}

int cmd_storage_shared(struct pve_client *c, const char *node, const char *storage,
		       bool *ret_shared, struct phx_err *err)
{
	struct pve_storage_list list = {0};

	if (pve_storage_list(c, node, &list, err) < 0)
		return -1;
	*ret_shared = true;
	for (size_t i = 0; i < list.n; i++)
		if (!strcmp(list.items[i].storage, storage))
			*ret_shared = list.items[i].shared;
	pve_storage_list_release(&list);
	return 0;
}

struct plan_action *cmd_plan_template_removal(struct plan *p, const char *object,
					      const struct pve_vm_info *vm, const char *archive)
{
	struct plan_action *a, *rm;
	char *esc;

	rm = plan_add(p, PLAN_REQUEST, PLAN_DESTROY, object, "DELETE", "/nodes/%s/%s/%d", vm->node,
		      vm->lxc ? "lxc" : "qemu", vm->vmid);
	plan_param(p, rm, "purge", "1", 0);
	plan_param(p, rm, "destroy-unreferenced-disks", "1", 0);
	if (!archive || !*archive)
		return rm;
	/* second: when the container cannot be removed, the archive its record names stays */
	esc = plan_escape(p, archive);
	a = plan_add(p, PLAN_REQUEST, PLAN_DESTROY, object, "DELETE",
		     "/nodes/%s/storage/%.*s/content/%s", vm->node, (int)strcspn(archive, ":"),
		     archive, esc ? esc : "");
	free(esc);
	plan_summary(p, a, "delete the archive '%s' of template %d", archive, vm->vmid);
	return rm;
}
