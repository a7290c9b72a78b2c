/* provision_ct: what a container template build sends (templates of kind "lxc"): the
 * customized root file system archive uploaded as vztmpl content, the container created from
 * it and converted to a template. The archive stays on its storage, named in the build record
 * (`archive:`), for containers that must be created from it (ssh-public-keys and password
 * exist only at creation: pve-container API2/LXC.pm create_vm). Pure: no request, no file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "plan.h"
#include "provision.h"
#include "series.h"

int prov_ct_archive_volid(const struct cfg_template *t, const char *name, char *ret, size_t len,
			  struct phx_err *err)
{
	if ((size_t)snprintf(ret, len, "%s:vztmpl/%s.tar.zst", t->ct.template_storage, name) >=
	    len)
		return phx_err_set(err, PHX_E_INPUT, "template '%s': archive name too long",
				   t->name);
	return 0;
}

int prov_ct_plan_build(const struct prov_ct_input *in, struct plan *p, struct phx_err *err)
{
	const struct cfg_template *t = in->t;
	const struct cfg_container *ct = &t->ct;
	const unsigned pend = in->custom_sha ? 0 : PLAN_PENDING;
	char object[160], volid[400], filename[300], rootfs[160], net0[160], num[4][24];
	char *desc;
	struct plan_action *a;

	snprintf(object, sizeof(object), "template %lu '%s'", in->vmid, in->name);
	if (prov_ct_archive_volid(t, in->name, volid, sizeof(volid), err) < 0)
		return -1;
	snprintf(filename, sizeof(filename), "%s.tar.zst", in->name);

	a = plan_add(p, PLAN_UPLOAD, PLAN_CREATE, object, "POST", "/nodes/%s/storage/%s/upload",
		     in->node, ct->template_storage);
	plan_summary(p, a, "upload the customized root file system as '%s'", volid);
	plan_param(p, a, "content", "vztmpl", 0);
	plan_param(p, a, "checksum-algorithm", "sha256", 0);
	plan_param(p, a, "checksum", in->custom_sha ? in->custom_sha : "<known after customization>",
		   pend);
	plan_upload_file(p, a, in->archive_path ? in->archive_path : "<the customized archive>",
			 filename);
	/* before the upload: a task wait that fails after the body arrived still cleans up */
	plan_undo_volume(p, a, in->node, volid);

	/* storage:size, never a bare size: for anything else check_ct_modify_config_perm asks
	 * check_volume_access, and only root may pass paths (lxc-notes point 9) */
	snprintf(rootfs, sizeof(rootfs), "%s:%lu", ct->storage, ct->rootfs_gb);
	/* DHCP: each container from the template gets its own address settings later */
	snprintf(net0, sizeof(net0), "name=eth0,bridge=%s,ip=dhcp", ct->bridge);
	snprintf(num[0], sizeof(num[0]), "%lu", in->vmid);
	snprintf(num[1], sizeof(num[1]), "%u", ct->cores);
	snprintf(num[2], sizeof(num[2]), "%lu", ct->memory_mb);
	snprintf(num[3], sizeof(num[3]), "%lu", ct->swap_mb);
	desc = prov_description(t, in->name, t->image_url,
				in->source_sha ? in->source_sha : "<known after download>",
				in->custom_sha ? in->custom_sha : "<known after customization>",
				in->packages ? in->packages : "<known after customization>", volid);
	a = plan_add(p, PLAN_REQUEST, PLAN_CREATE, object, "POST", "/nodes/%s/lxc", in->node);
	plan_summary(p, a, "create container %lu '%s' from '%s'", in->vmid, in->name, volid);
	plan_param(p, a, "vmid", num[0], 0);
	plan_param(p, a, "hostname", in->name, 0);
	plan_param(p, a, "ostemplate", volid, 0);
	plan_param(p, a, "rootfs", rootfs, 0);
	plan_param(p, a, "unprivileged", ct->unprivileged ? "1" : "0", 0);
	if (ct->nesting)
		plan_param(p, a, "features", "nesting=1", 0);
	plan_param(p, a, "net0", net0, 0);
	plan_param(p, a, "cores", num[1], 0);
	plan_param(p, a, "memory", num[2], 0);
	plan_param(p, a, "swap", num[3], 0);
	if (ct->ostype)
		plan_param(p, a, "ostype", ct->ostype, 0);
	plan_param(p, a, "tags", in->tags, 0);
	if (!desc)
		p->oom = true; /* the build record is not optional */
	plan_param(p, a, "description", desc, in->custom_sha && in->source_sha ? 0 : PLAN_PENDING);
	free(desc);
	/* created with our tags: a container under this VMID without them is someone else's */
	plan_undo_ct(p, a, in->node, (int)in->vmid, in->name, SERIES_TAG_OURS);

	a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "POST", "/nodes/%s/lxc/%lu/template",
		     in->node, in->vmid);
	plan_summary(p, a, "convert container %lu to a template", in->vmid);
	/* the archive stays: containers that set SSH keys or a password are created from it */
	if (a)
		a->flags |= PLAN_COMMIT_AFTER;
	return plan_check(p, err);
}
