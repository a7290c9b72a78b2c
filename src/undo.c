/* undo: removal procedures and their transaction records (see undo.h). */
#include "undo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "pve_ct.h"
#include "series.h"

struct undo_ref {
	char *node;
	char *name;   /* VM: expected name, NULL for any */
	char *tag;    /* VM: a tag it must carry, NULL for any */
	char *target; /* volume id or file path */
	int vmid;
	long timeout_s;
};

static void undo_ref_free(void *arg)
{
	struct undo_ref *r = arg;

	if (r) {
		free(r->node);
		free(r->name);
		free(r->tag);
		free(r->target);
	}
	free(r);
}

static struct undo_ref *undo_ref_new(const char *node, const char *name, const char *target,
				     int vmid, long timeout_s)
{
	struct undo_ref *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->vmid = vmid;
	r->timeout_s = timeout_s;
	if ((node && !(r->node = strdup(node))) || (name && !(r->name = strdup(name))) ||
	    (target && !(r->target = strdup(target)))) {
		undo_ref_free(r);
		return NULL;
	}
	return r;
}

static bool undo_volume_listed(struct pve_client *c, const char *node, const char *volid,
			       struct phx_err *err);

/* A removal whose request or task wait failed may still have happened (the status poll
 * failed, not the task): what counts is whether the object is gone, so ask once more. */
static int undo_settled(struct pve_client *c, int vmid, const char *node, const char *volid, int rc,
			struct phx_err *err)
{
	struct phx_err e = PHX_ERR_INIT;
	bool exists = true;

	if (rc == 0)
		return 0;
	if (vmid && pve_vm_exists(c, vmid, &exists, NULL, &e) < 0)
		return -1;
	if (volid)
		exists = undo_volume_listed(c, node, volid, &e) || phx_err_is_set(&e);
	if (exists)
		return -1;
	phx_err_clear(err);
	return 0;
}

/* A VM whose clone or create task still runs (a run killed while it waited, or stopped by a
 * signal) carries Proxmox's `lock: clone|create` and cannot be destroyed until the task ends;
 * wait for it. *ret_config is NULL when the VM went away meanwhile. */
static int undo_vm_unlocked(struct pve_client *c, const char *node, int vmid, long timeout_s,
			    json_t **ret_config, struct phx_err *err)
{
	double deadline = clk_now() + (double)(timeout_s > 0 ? timeout_s : 600);
	json_t *config = NULL;

	/* the caller has just seen it exist */
	for (bool first = true;; first = false) {
		const char *lock;
		bool exists = true;

		if (!first && pve_vm_exists(c, vmid, &exists, NULL, err) < 0)
			return -1;
		if (!exists) {
			*ret_config = NULL;
			return 0;
		}
		if (pve_vm_config_get(c, node, vmid, &config, err) < 0)
			return -1;
		lock = json_string_value(json_object_get(config, "lock"));
		if (!lock || (strcmp(lock, "clone") && strcmp(lock, "create"))) {
			*ret_config = config;
			return 0;
		}
		json_decref(config);
		if (clk_now() >= deadline)
			return phx_err_set(err, PHX_E_TIMEOUT,
					   "VM %d is still locked (%s) after %ld s", vmid, lock,
					   timeout_s);
		clk_sleep_ms(1000);
	}
}

int undo_vm_remove(struct pve_client *c, const char *node, int vmid, const char *name,
		   const char *tag, long timeout_s, struct phx_err *err)
{
	struct pve_vm_status st;
	json_t *config = NULL;
	const char *have;
	char *where = NULL;
	bool exists = false, ours;
	int rc = -1;

	/* a failed create or clone task has already removed its VM (qemu-server create_vm,
	 * clone_vm); one that was migrated is on its new node now */
	if (pve_vm_exists(c, vmid, &exists, &where, err) < 0)
		return -1;
	if (!exists)
		return 0;
	node = where ? where : node;
	if (undo_vm_unlocked(c, node, vmid, timeout_s, &config, err) < 0)
		goto out;
	if (!config) {
		rc = 0; /* the task that held the lock failed and removed the VM */
		goto out;
	}
	have = json_string_value(json_object_get(config, "name"));
	ours = (!name || (have && !strcmp(have, name))) &&
	       (!tag || series_has_tag(json_string_value(json_object_get(config, "tags")), tag));
	json_decref(config);
	if (!ours) {
		phx_err_set(
			err, PHX_E_CONFLICT,
			"VM %d is not the one this run created (name or tags differ); left alone",
			vmid);
		goto out;
	}
	if (pve_vm_status_get(c, node, vmid, &st, err) < 0 ||
	    (!strcmp(st.status, "running") && pve_vm_stop(c, node, vmid, timeout_s, err) < 0))
		goto out;
	rc = undo_settled(c, vmid, NULL, NULL,
			  pve_vm_destroy(c, node, vmid,
					 PVE_DESTROY_PURGE | PVE_DESTROY_UNREFERENCED_DISKS,
					 timeout_s, err),
			  err);
out:
	free(where);
	return rc;
}

/* Where container `vmid` is now (*ret_node, caller frees), or *ret_node NULL when gone. */
static int undo_ct_where(struct pve_client *c, int vmid, char **ret_node, struct phx_err *err)
{
	struct pve_vm_list l;

	*ret_node = NULL;
	if (pve_cluster_guests(c, &l, err) < 0)
		return -1;
	for (size_t i = 0; i < l.n; i++)
		if (l.items[i].vmid == vmid && l.items[i].lxc &&
		    !(*ret_node = strdup(l.items[i].node))) {
			pve_vm_list_release(&l);
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		}
	pve_vm_list_release(&l);
	return 0;
}

int undo_ct_remove(struct pve_client *c, const char *node, int vmid, const char *name,
		   const char *tag, long timeout_s, struct phx_err *err)
{
	double deadline = clk_now() + (double)(timeout_s > 0 ? timeout_s : 600);
	json_t *config = NULL;
	const char *have, *lock;
	char *where = NULL;
	bool ours;
	int rc = -1;

	/* a failed vzcreate removes its container (LXC.pm create_vm's eval: destroy_lxc_container) */
	for (;;) {
		free(where);
		if (undo_ct_where(c, vmid, &where, err) < 0)
			return -1;
		if (!where)
			return 0;
		node = where;
		if (pve_ct_config_get(c, node, vmid, &config, err) < 0)
			goto out;
		lock = json_string_value(json_object_get(config, "lock"));
		if (!lock || (strcmp(lock, "create") && strcmp(lock, "clone") &&
			      strcmp(lock, "disk")))
			break;
		json_decref(config);
		config = NULL;
		if (clk_now() >= deadline) {
			phx_err_set(err, PHX_E_TIMEOUT, "container %d is still locked after %ld s",
				    vmid, timeout_s);
			goto out;
		}
		clk_sleep_ms(1000);
	}
	have = json_string_value(json_object_get(config, "hostname"));
	ours = (!name || (have && !strcmp(have, name))) &&
	       (!tag || series_has_tag(json_string_value(json_object_get(config, "tags")), tag));
	if (!ours) {
		phx_err_set(err, PHX_E_CONFLICT,
			    "container %d is not the one this run created (hostname or tags "
			    "differ); left alone",
			    vmid);
		goto out;
	}
	{
		/* a container a deploy started before its failure (no address, say) */
		struct pve_vm_status st;

		if (pve_ct_status_get(c, node, vmid, &st, err) < 0 ||
		    (!strcmp(st.status, "running") && pve_ct_stop(c, node, vmid, timeout_s, err) < 0))
			goto out;
	}
	rc = pve_ct_destroy(c, node, vmid, PVE_DESTROY_PURGE | PVE_DESTROY_UNREFERENCED_DISKS,
			    timeout_s, err);
	if (rc < 0) {
		/* the task may have failed to report, not to destroy */
		struct phx_err e = PHX_ERR_INIT;
		char *again = NULL;

		if (undo_ct_where(c, vmid, &again, &e) == 0 && !again) {
			phx_err_clear(err);
			rc = 0;
		}
		free(again);
	}
out:
	json_decref(config);
	free(where);
	return rc;
}

/* Whether the volume is listed on its storage; false with err set when the listing failed. */
static bool undo_volume_listed(struct pve_client *c, const char *node, const char *volid,
			       struct phx_err *err)
{
	struct pve_volume_list l = {NULL, 0};
	size_t colon = strcspn(volid, ":"), slash;
	char storage[128], content[32];
	bool there = false;

	/* the content type is the first part of a file storage's volume name
	 * ("local:iso/x.iso", "local:import/x.qcow2") */
	slash = strcspn(volid + colon + (volid[colon] == ':'), "/");
	if (!volid[colon] || colon >= sizeof(storage) || slash >= sizeof(content) ||
	    !volid[colon + 1 + slash]) {
		phx_err_set(err, PHX_E_INTERNAL, "volume '%s': expected STORAGE:CONTENT/NAME",
			    volid);
		return false;
	}
	snprintf(storage, sizeof(storage), "%.*s", (int)colon, volid);
	snprintf(content, sizeof(content), "%.*s", (int)slash, volid + colon + 1);
	if (pve_storage_content(c, node, storage, content, &l, err) < 0)
		return false;
	for (size_t i = 0; i < l.n && !there; i++)
		there = !strcmp(l.items[i].volid, volid);
	pve_volume_list_release(&l);
	return there;
}

int undo_volume_remove(struct pve_client *c, const char *node, const char *volid, long timeout_s,
		       bool *ret_removed, struct phx_err *err)
{
	struct phx_err e = PHX_ERR_INIT;
	bool there;

	/* a run killed after its upload was accepted: the imgcopy task may still be moving the
	 * file into place, so the volume is not listed yet but will be */
	if (pve_tasks_settle(c, node, "imgcopy", timeout_s, err) < 0)
		return -1;
	there = undo_volume_listed(c, node, volid, &e);
	if (phx_err_is_set(&e)) {
		*err = e;
		return -1;
	}
	if (there &&
	    undo_settled(c, 0, node, volid,
			 pve_storage_content_delete(c, node, volid, timeout_s, err), err) < 0)
		return -1;
	if (ret_removed)
		*ret_removed = there;
	return 0;
}

static int undo_vm(void *ctx, void *arg, struct phx_err *err)
{
	struct undo_ref *r = arg;

	return undo_vm_remove(ctx, r->node, r->vmid, r->name, r->tag, r->timeout_s, err);
}

static int undo_ct(void *ctx, void *arg, struct phx_err *err)
{
	struct undo_ref *r = arg;

	return undo_ct_remove(ctx, r->node, r->vmid, r->name, r->tag, r->timeout_s, err);
}

static int undo_volume(void *ctx, void *arg, struct phx_err *err)
{
	struct undo_ref *r = arg;

	return undo_volume_remove(ctx, r->node, r->target, r->timeout_s, NULL, err);
}

static int undo_file(void *ctx, void *arg, struct phx_err *err)
{
	struct undo_ref *r = arg;

	(void)ctx;
	if (unlink(r->target) < 0 && errno != ENOENT)
		return phx_err_set_errno(err, PHX_E_IO, errno, "remove '%s'", r->target);
	return 0;
}

static json_t *undo_vm_record(const void *arg)
{
	const struct undo_ref *r = arg;

	return json_pack("{s:s, s:s, s:i, s:s?, s:s?}", "kind", "vm", "node", r->node, "vmid",
			 r->vmid, "name", r->name, "tag", r->tag);
}

static json_t *undo_ct_record(const void *arg)
{
	const struct undo_ref *r = arg;

	return json_pack("{s:s, s:s, s:i, s:s?, s:s?}", "kind", "ct", "node", r->node, "vmid",
			 r->vmid, "name", r->name, "tag", r->tag);
}

static json_t *undo_volume_record(const void *arg)
{
	const struct undo_ref *r = arg;

	return json_pack("{s:s, s:s, s:s}", "kind", "volume", "node", r->node, "volid",
			 r->target);
}

static json_t *undo_file_record(const void *arg)
{
	const struct undo_ref *r = arg;

	return json_pack("{s:s, s:s}", "kind", "file", "path", r->target);
}

static const struct txn_action undo_vm_action = {undo_vm, undo_ref_free, undo_vm_record};
static const struct txn_action undo_ct_action = {undo_ct, undo_ref_free, undo_ct_record};
static const struct txn_action undo_volume_action = {undo_volume, undo_ref_free,
						     undo_volume_record};
static const struct txn_action undo_file_action = {undo_file, undo_ref_free, undo_file_record};

int undo_run_record(struct pve_client *c, const json_t *rec, long timeout_s,
		    struct phx_err *err)
{
	const char *kind = json_string_value(json_object_get(rec, "kind"));
	const char *node = json_string_value(json_object_get(rec, "node"));
	const char *volid = json_string_value(json_object_get(rec, "volid"));
	const char *path = json_string_value(json_object_get(rec, "path"));
	json_int_t vmid = json_integer_value(json_object_get(rec, "vmid"));
	struct undo_ref r = {.node = (char *)node, .target = (char *)(volid ? volid : path),
			     .timeout_s = timeout_s};

	if (kind && !strcmp(kind, "vm") && node && vmid > 0 && vmid < 1000000000) {
		r.vmid = (int)vmid;
		r.name = (char *)json_string_value(json_object_get(rec, "name"));
		r.tag = (char *)json_string_value(json_object_get(rec, "tag"));
		return undo_vm(c, &r, err);
	}
	if (kind && !strcmp(kind, "ct") && node && vmid > 0 && vmid < 1000000000) {
		r.vmid = (int)vmid;
		r.name = (char *)json_string_value(json_object_get(rec, "name"));
		r.tag = (char *)json_string_value(json_object_get(rec, "tag"));
		return undo_ct(c, &r, err);
	}
	if (kind && !strcmp(kind, "volume") && node && volid)
		return undo_volume(c, &r, err);
	if (kind && !strcmp(kind, "file") && path)
		return undo_file(c, &r, err);
	return phx_err_set(err, PHX_E_INPUT, "unknown undo record (kind '%s')",
			   kind ? kind : "?");
}

int undo_add_vm(struct txn *t, const char *node, int vmid, const char *name, const char *tag,
		long timeout_s, struct phx_err *err)
{
	struct undo_ref *r = undo_ref_new(node, name, NULL, vmid, timeout_s);
	char what[128];

	if (r && tag && !(r->tag = strdup(tag))) {
		undo_ref_free(r);
		r = NULL;
	}
	if (!r)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	snprintf(what, sizeof(what), "VM %d on node '%s'", vmid, node);
	return txn_add_undo(t, what, &undo_vm_action, r, err);
}

int undo_add_ct(struct txn *t, const char *node, int vmid, const char *name, const char *tag,
		long timeout_s, struct phx_err *err)
{
	struct undo_ref *r = undo_ref_new(node, name, NULL, vmid, timeout_s);
	char what[128];

	if (r && tag && !(r->tag = strdup(tag))) {
		undo_ref_free(r);
		r = NULL;
	}
	if (!r)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	snprintf(what, sizeof(what), "container %d on node '%s'", vmid, node);
	return txn_add_undo(t, what, &undo_ct_action, r, err);
}

int undo_add_volume(struct txn *t, const char *node, const char *volid, long timeout_s,
		    struct phx_err *err)
{
	struct undo_ref *r = undo_ref_new(node, NULL, volid, 0, timeout_s);

	if (!r)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return txn_add_undo(t, volid, &undo_volume_action, r, err);
}

int undo_add_file(struct txn *t, const char *path, struct phx_err *err)
{
	struct undo_ref *r = undo_ref_new(NULL, NULL, path, 0, 0);

	if (!r)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return txn_add_undo(t, path, &undo_file_action, r, err);
}
