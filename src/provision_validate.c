/* provision_validate: --validate, the boot proof of a freshly built template (see
 * provision.h), a VM's (agent, cloud-init, sshd) or a container's (init up, eth0 addressed).
 * Talks to Proxmox only through pve.h and pve_ct.h; renders a VM's seed with cloudinit.h and
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
#include "pve_ct.h"
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

/* Clones the template into the test guest `newid`: linked, else full where the storage has no
 * clone feature (thick LVM, a dir storage's raw rootfs). A failed clone task removes what it
 * made (qemu-server and pve-container clone_vm). The refusals differ by one word: qemu-server
 * "Linked clone feature is not supported for drive", pve-container "Linked clone feature for
 * 'VOL' is not available". */
static int val_clone(struct pve_client *c, const struct prov_validate_opts *o, bool ct, int newid,
		     const char *name, struct phx_err *err)
{
	const char *key = ct ? "hostname" : "name";
	const struct pve_param linked[] = {{key, name}, {"full", "0"}};
	const struct pve_param full[] = {{key, name}, {"full", "1"}};
	int (*const clone)(struct pve_client *, const char *, int, int, const struct pve_param *,
			   size_t, long, struct phx_err *) = ct ? pve_ct_clone : pve_vm_clone;
	struct phx_err cerr = PHX_ERR_INIT;

	log_info("validate: cloning template %d into test %s %d", o->template_vmid,
		 ct ? "container" : "VM", newid);
	if (clone(c, o->node, o->template_vmid, newid, linked, 2, o->task_timeout_s, &cerr) == 0)
		return 0;
	if (!strstr(cerr.msg, "Linked clone feature "))
		return phx_err_set(err, cerr.code, "%s", cerr.msg);
	log_info("validate: the storage cannot do linked clones: full clone");
	return clone(c, o->node, o->template_vmid, newid, full, 2, o->task_timeout_s, err);
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

/* The start both validations share: a journaled transaction (the test guest goes whatever
 * happens, also when the run is killed: the next run replays the journal), the test guest's
 * VMID and its name (the undo finds it by name only: its tags change from the template's). */
static struct txn *val_begin(struct pve_client *c, const struct prov_validate_opts *o,
			     int *ret_vmid, char *name, size_t len, struct phx_err *err)
{
	struct txn *t = txn_new_journaled(c, o->journal);

	if (!t) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		return NULL;
	}
	if (pve_nextid(c, ret_vmid, err) < 0) {
		txn_free(t);
		return NULL;
	}
	snprintf(name, len, "phx-validate-%d", o->template_vmid);
	return t;
}

int prov_validate(struct pve_client *c, const struct prov_validate_opts *o, struct phx_err *err)
{
	char iso[SEED_PATH_MAX] = "", seed_id[32];
	char name[128], filename[128], ide2[300], mac[18], sha[CRYPTO_SHA256_HEX_LEN + 1];
	char *volid = NULL;
	struct buf report = BUF_INIT;
	int vmid = 0, rc = -1;
	struct txn *t = val_begin(c, o, &vmid, name, sizeof(name), err);

	if (!t) {
		phx_err_wrap(err, "validate template %d", o->template_vmid);
		return -1;
	}
	/* the test VM and its seed */
	if (undo_add_vm(t, o->node, vmid, name, NULL, o->task_timeout_s, err) < 0)
		goto out;
	if (val_clone(c, o, false, vmid, name, err) < 0)
		goto out;
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

/* A global IPv4 address of eth0 in `l` into ret: not loopback, not link-local (169.254/16,
 * which a network manager without a DHCP answer may still assign). */
static bool val_eth0_ipv4(const struct pve_iface_list *l, char *ret, size_t len)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->items[i].name, "eth0"))
			continue;
		for (size_t k = 0; k < l->items[i].n_ipv4; k++) {
			const char *a = l->items[i].ipv4[k];

			if (!strncmp(a, "127.", 4) || !strncmp(a, "169.254.", 8))
				continue;
			snprintf(ret, len, "%s", a);
			return true;
		}
	}
	return false;
}

/* Polls GET .../interfaces (pve-container get_interfaces: `ip a` in the container's network
 * namespace) until eth0 has an address, then checks the container still runs: its init came
 * up and configured the network from the template's own files. */
static int val_ct_wait_up(struct pve_client *c, const struct prov_validate_opts *o, int vmid,
			  struct phx_err *err)
{
	const double t0 = clk_now(), deadline = t0 + (double)o->agent_timeout_s;
	unsigned delay = 200;
	char ip[64] = "";

	log_info("validate: waiting up to %ld s for an IPv4 address on eth0 of container %d",
		 o->agent_timeout_s, vmid);
	for (;;) {
		struct pve_iface_list l = {NULL, 0};
		struct pve_vm_status st;
		bool got;

		if (pve_ct_interfaces(c, o->node, vmid, &l, err) < 0)
			return -1;
		got = val_eth0_ipv4(&l, ip, sizeof(ip));
		pve_iface_list_release(&l);
		if (pve_ct_status_get(c, o->node, vmid, &st, err) < 0)
			return -1;
		if (strcmp(st.status, "running"))
			return phx_err_set(err, PHX_E_GUEST,
					   "container %d started but is '%s' %.0f s later: its init "
					   "ended (is the template's /sbin/init a working systemd?)",
					   vmid, st.status, clk_now() - t0);
		if (got) {
			log_info("validate: container %d is running, eth0 has %s", vmid, ip);
			return 0;
		}
		if (clk_signal())
			return phx_err_set(err, PHX_E_INTERRUPTED,
					   "stopped by signal %d while waiting for the address of "
					   "container %d",
					   clk_signal(), vmid);
		if (clk_now() >= deadline)
			return phx_err_set(err, PHX_E_TIMEOUT,
					   "container %d started but eth0 got no IPv4 address within "
					   "%ld s: is ifupdown (or another network manager reading "
					   "/etc/network/interfaces) in the template?",
					   vmid, o->agent_timeout_s);
		clk_sleep_ms(delay);
		delay = delay < 2000 ? delay * 2 : 2000;
	}
}

int prov_ct_validate(struct pve_client *c, const struct prov_validate_opts *o, struct phx_err *err)
{
	char name[128];
	struct buf report = BUF_INIT;
	int vmid = 0, rc = -1;
	struct txn *t = val_begin(c, o, &vmid, name, sizeof(name), err);

	if (!t) {
		phx_err_wrap(err, "validate container template %d", o->template_vmid);
		return -1;
	}
	/* registered before the clone, by hostname, as for VMs */
	if (undo_add_ct(t, o->node, vmid, name, NULL, o->task_timeout_s, err) < 0 ||
	    val_clone(c, o, true, vmid, name, err) < 0)
		goto out;
	{
		/* not `phoenix`: a test container whose cleanup failed must not pass for ours */
		const struct pve_param params[] = {{"tags", "phx-validate"}};

		if (pve_ct_config_set(c, o->node, vmid, params, 1, err) < 0 ||
		    pve_ct_start(c, o->node, vmid, o->task_timeout_s, err) < 0)
			goto out;
	}
	if (val_ct_wait_up(c, o, vmid, err) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		phx_err_wrap(err, "validate container template %d", o->template_vmid);
	if (txn_rollback(t, &report))
		log_warn("validate: %s", buf_str(&report));
	buf_release(&report);
	txn_free(t);
	return rc;
}
