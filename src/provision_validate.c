/* provision_validate: --validate, the boot proof of a freshly built template (see
 * provision.h). Talks to Proxmox only through pve.h; renders its seed with cloudinit.h and
 * iso.h like a deploy does, so a template that validates is one our deploys can use. */
#include "provision.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cloudinit.h"
#include "guest.h"
#include "seed.h"
#include "undo.h"
#include "log.h"

#define VAL_USER "phoenix-validate"

/* The MAC of net0 ("virtio=BC:24:11:..,bridge=..."). */
static int val_net0_mac(struct pve_client *c, const char *node, int vmid, char ret[18],
			struct phx_err *err)
{
	json_t *config = NULL;
	const char *net0, *eq;
	int rc = 0;

	if (pve_vm_config_get(c, node, vmid, &config, err) < 0)
		return -1;
	net0 = json_string_value(json_object_get(config, "net0"));
	eq = net0 ? strchr(net0, '=') : NULL;
	if (!eq || strcspn(eq + 1, ",") != 17)
		rc = phx_err_set(err, PHX_E_API, "VM %d has no net0 with a MAC address (net0 '%s')",
				 vmid, net0 ? net0 : "");
	else
		snprintf(ret, 18, "%.17s", eq + 1);
	json_decref(config);
	return rc;
}

static int val_check_guest(struct pve_client *c, const char *node, int vmid, long timeout_s,
			   struct phx_err *err)
{
	static const char *const ci_status[] = {"cloud-init", "status", "--wait", NULL};
	/* Ubuntu >= 22.10 starts sshd on demand from ssh.socket: either unit active is fine */
	static const char *const sshd[] = {"systemctl", "is-active", "ssh.socket", "ssh.service",
					   NULL};
	char out[2048];
	int code = -1;

	if (guest_exec(c, node, vmid, ci_status, timeout_s, &code, out, sizeof(out), err) < 0)
		return -1;
	/* cloud-init >= 23.4 exits 2 for "done, with recoverable errors" (e.g. deprecated keys) */
	if (code == 2)
		log_warn("validate: cloud-init finished with recoverable errors: %s", out);
	else if (code != 0)
		return phx_err_set(err, PHX_E_GUEST,
				   "'cloud-init status --wait' in the test VM exited %d: %s", code,
				   out);
	{
		/* `--wait` prints a dot per second before the "status: done" line */
		const char *st = strstr(out, "status:");

		st = st ? st : out;
		log_info("validate: cloud-init finished: %.*s", (int)strcspn(st, "\n"), st);
	}
	if (guest_exec(c, node, vmid, sshd, timeout_s, &code, out, sizeof(out), err) < 0)
		return -1;
	/* is-active exits 0 when any unit named is active */
	if (code != 0)
		return phx_err_set(err, PHX_E_GUEST,
				   "sshd is not active in the test VM ('systemctl is-active "
				   "ssh.socket ssh.service' exited %d: %.*s)",
				   code, (int)strcspn(out, "\n"), out);
	log_info("validate: sshd is active");
	return 0;
}

int prov_validate(struct pve_client *c, const struct prov_validate_opts *o, struct phx_err *err)
{
	char iso[SEED_PATH_MAX] = "", seed_id[32];
	char name[128], filename[128], ide2[300], mac[18], sha[CRYPTO_SHA256_HEX_LEN + 1];
	char *volid = NULL;
	struct txn *t = txn_new_journaled(c, o->journal);
	struct buf report = BUF_INIT;
	int vmid = 0, rc = -1;

	if (!t)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (pve_nextid(c, &vmid, err) < 0)
		goto out;
	snprintf(name, sizeof(name), "phx-validate-%d", o->template_vmid);
	/* the test VM and its seed go whatever happens, also when the run is killed (the next
	 * run replays the journal); by name only: the tags change from the template's */
	if (undo_add_vm(t, o->node, vmid, name, NULL, o->task_timeout_s, err) < 0)
		goto out;
	{
		const struct pve_param linked[] = {{"name", name}, {"full", "0"}};
		const struct pve_param full[] = {{"name", name}, {"full", "1"}};
		struct phx_err cerr = PHX_ERR_INIT;

		log_info("validate: cloning template %d into test VM %d", o->template_vmid, vmid);
		/* a failed clone task removes what it made (qemu-server clone_vm); storages
		 * without the clone feature (thick LVM) only do full clones */
		if (pve_vm_clone(c, o->node, o->template_vmid, vmid, linked, 2, o->task_timeout_s,
				 &cerr) < 0) {
			if (!strstr(cerr.msg, "Linked clone feature is not supported")) {
				phx_err_set(err, cerr.code, "%s", cerr.msg);
				goto out;
			}
			log_info("validate: the storage cannot do linked clones: full clone");
			if (pve_vm_clone(c, o->node, o->template_vmid, vmid, full, 2,
					 o->task_timeout_s, err) < 0)
				goto out;
		}
	}
	if (val_net0_mac(c, o->node, vmid, mac, err) < 0)
		goto out;
	snprintf(seed_id, sizeof(seed_id), "validate-%d", vmid);
	{
		const struct ci_input in = {
			.hostname = "phoenix-validate",
			.user = {.name = VAL_USER},
			.network = {.mac = mac},
			.instance_seed = seed_id,
		};

		if (seed_build_iso_in(o->tmp_dir, &in, iso, sha, err) < 0)
			goto out;
	}
	snprintf(filename, sizeof(filename), "phoenix-validate-%d-%.12s.iso", vmid, sha);
	snprintf(ide2, sizeof(ide2), "%s:iso/%s", o->iso_storage, filename);
	if (undo_add_volume(t, o->node, ide2, o->task_timeout_s, err) < 0)
		goto out;
	if (pve_storage_upload(c, o->node, o->iso_storage, "iso", iso, filename, "sha256", sha,
			       NULL, o->task_timeout_s, &volid, err) < 0)
		goto out;
	snprintf(ide2, sizeof(ide2), "%s,media=cdrom", volid);
	{
		/* not `phoenix`: a test VM whose cleanup failed must not pass for one of ours */
		const struct pve_param params[] = {{o->seed_drive ? o->seed_drive : "ide2", ide2},
						   {"tags", "phx-validate"}};

		if (pve_vm_config_set(c, o->node, vmid, params, 2, o->task_timeout_s, err) < 0 ||
		    pve_vm_start(c, o->node, vmid, o->task_timeout_s, err) < 0)
			goto out;
	}
	log_info("validate: waiting up to %ld s for the guest agent of VM %d", o->agent_timeout_s,
		 vmid);
	if (guest_wait_agent(c, o->node, vmid, (double)o->agent_timeout_s,
			     "is qemu-guest-agent installed in the image (customize.packages or "
			     "customize.debs)?",
			     err) < 0 ||
	    val_check_guest(c, o->node, vmid, o->agent_timeout_s, err) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		phx_err_wrap(err, "validate template %d", o->template_vmid);
	if (txn_rollback(t, &report))
		log_warn("validate: %s", buf_str(&report));
	buf_release(&report);
	txn_free(t);
	if (iso[0])
		unlink(iso);
	free(volid);
	return rc;
}
