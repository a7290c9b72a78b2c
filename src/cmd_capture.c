/* cmd_capture: `--capture VMID --as SERIES`, a VM of ours (provisioned, then maybe updated by
 * hand or by Ansible) becomes the next version of a template series, through the API only:
 *   1. its identity is reset through the guest agent (cloud-init clean, an empty machine-id,
 *      no SSH host keys, no shell history), so clones boot as new machines;
 *   2. it is shut down cleanly, full-cloned to the series' next VMID and name, the clone loses
 *      the source's per-VM cloud-init settings, gets the series' tags and a build record, and
 *      becomes a template;
 *   3. the source VM is started again when it was running: it keeps its disks and config (its
 *      next boot regenerates what step 1 removed, from its own seed).
 * Step 1 happens only in a real run; --dry-run prints step 2 and 3 as a plan. A failure after
 * the clone removes the clone (the run's transaction). Takes the run lock. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cmd.h"
#include "config.h"
#include "guest.h"
#include "log.h"
#include "plan.h"
#include "provision.h"
#include "pve.h"
#include "series.h"
#include "session.h"
#include "txn.h"

/* What a template must not inherit from the VM it was captured from: its own cloud-init
 * settings (deploy gives every clone its own) and its seed, a CD-ROM on ide2 or, on q35 and
 * OVMF guests, scsi30 (hw_seed_drive). */
static const char *const cap_per_vm_keys[] = {"cicustom",  "ciuser",     "cipassword",
					      "sshkeys",   "ipconfig0",  "ipconfig1",
					      "ipconfig2", "ipconfig3",	 "nameserver",
					      "searchdomain", "ciupgrade"};
static const char *const cap_seed_drives[] = {"ide2", "scsi30"};

/* Runs in the guest before the shutdown; each step is one a clone must not inherit.
 * `cloud-init clean --seed` also forgets the NoCloud seed the VM was deployed with. */
static const char cap_reset_script[] =
	"set -e\n"
	"cloud-init clean --logs --seed\n"
	"truncate -s 0 /etc/machine-id\n"
	"rm -f /var/lib/dbus/machine-id /etc/ssh/ssh_host_*\n"
	"rm -f /root/.bash_history /home/*/.bash_history\n"
	"sync\n";

struct cap_input {
	const struct cfg_template *t;
	const struct pve_vm_info *src;
	const json_t *src_conf;
	bool was_running;
	unsigned long newid;
	const char *name, *tags, *description;
	long shutdown_timeout_s;
};

/* The pure part: shut down, clone, strip, tag and record, convert, start the source again. */
static int cap_plan(const struct cap_input *in, struct plan *p, struct phx_err *err)
{
	const struct pve_vm_info *src = in->src;
	char object[192], newid[16], timeout[16], del[256] = "";
	struct plan_action *a;
	size_t used = 0;

	snprintf(object, sizeof(object), "template %lu '%s'", in->newid, in->name);
	snprintf(newid, sizeof(newid), "%lu", in->newid);
	snprintf(timeout, sizeof(timeout), "%ld", in->shutdown_timeout_s);
	if (in->was_running) {
		a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "POST",
			     "/nodes/%s/qemu/%d/status/shutdown", src->node, src->vmid);
		plan_summary(p, a, "shut VM %d '%s' down cleanly for a consistent copy", src->vmid,
			     src->name);
		plan_param(p, a, "timeout", timeout, 0);
	}
	a = plan_add(p, PLAN_REQUEST, PLAN_CREATE, object, "POST", "/nodes/%s/qemu/%d/clone",
		     src->node, src->vmid);
	plan_summary(p, a, "full clone of VM %d '%s' as %lu '%s'", src->vmid, src->name,
		     in->newid, in->name);
	plan_param(p, a, "newid", newid, 0);
	plan_param(p, a, "name", in->name, 0);
	plan_param(p, a, "full", "1", 0);
	plan_param(p, a, "storage", in->t->hardware.storage, 0);
	/* the clone carries the source's tags, which include ours: undo may remove it */
	plan_undo_vm(p, a, src->node, (int)in->newid, in->name, SERIES_TAG_OURS);

	a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "POST", "/nodes/%s/qemu/%lu/config",
		     src->node, in->newid);
	plan_summary(p, a, "give VM %lu the series' tags and a build record", in->newid);
	plan_param(p, a, "tags", in->tags, 0);
	plan_param(p, a, "description", in->description, 0);
	for (size_t i = 0; i < sizeof(cap_seed_drives) / sizeof(cap_seed_drives[0]); i++) {
		const char *v = json_string_value(json_object_get(in->src_conf, cap_seed_drives[i]));

		if (v && strstr(v, "media=cdrom") && used < sizeof(del))
			used += (size_t)snprintf(del + used, sizeof(del) - used, "%s%s",
						 used ? "," : "", cap_seed_drives[i]);
	}
	for (size_t i = 0; i < sizeof(cap_per_vm_keys) / sizeof(cap_per_vm_keys[0]); i++)
		if (json_object_get(in->src_conf, cap_per_vm_keys[i]) && used < sizeof(del))
			used += (size_t)snprintf(del + used, sizeof(del) - used, "%s%s",
						 used ? "," : "", cap_per_vm_keys[i]);
	if (used)
		plan_param(p, a, "delete", del, 0);

	a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "POST", "/nodes/%s/qemu/%lu/template",
		     src->node, in->newid);
	plan_summary(p, a, "convert VM %lu to a template", in->newid);
	if (a)
		a->flags |= PLAN_COMMIT_AFTER;
	if (in->was_running) {
		a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "POST",
			     "/nodes/%s/qemu/%d/status/start", src->node, src->vmid);
		plan_summary(p, a, "start VM %d '%s' again", src->vmid, src->name);
		if (a)
			a->flags |= PLAN_BEST_EFFORT;
	}
	return plan_check(p, err);
}

/* Step 1, through the guest agent; a VM that is not running or has no agent is refused. */
static int cap_reset_identity(struct session *s, const struct pve_vm_info *src,
			      struct phx_err *err)
{
	const char *const argv[] = {"/bin/sh", "-c", cap_reset_script, NULL};
	char out[2048] = "";
	int code = -1;

	if (guest_wait_agent(s->pve, src->node, src->vmid, 30,
			     "--capture resets the guest's identity through its agent: start the "
			     "VM and make sure qemu-guest-agent runs",
			     err) < 0 ||
	    guest_exec(s->pve, src->node, src->vmid, argv, 300, &code, out, sizeof(out), err) <
		    0)
		return -1;
	if (code)
		return phx_err_set(err, PHX_E_GUEST,
				   "resetting the identity of VM %d exited %d: %s (nothing was "
				   "captured)",
				   src->vmid, code, out);
	log_info("VM %d '%s': identity reset (cloud-init clean, machine-id, SSH host keys, "
		 "shell history)",
		 src->vmid, src->name);
	return 0;
}

static int cap_report(const struct cli_opts *opts, const struct cap_input *in,
		      struct phx_err *err)
{
	if (opts->output != CLI_OUTPUT_JSON) {
		printf("captured VM %d '%s' as template %lu '%s' (series '%s')\n", in->src->vmid,
		       in->src->name, in->newid, in->name, in->t->name);
		return 0;
	}
	return cmd_print_json(json_pack("{s:i, s:s, s:I, s:s, s:s, s:b}", "source_vmid",
					in->src->vmid, "source_name", in->src->name, "vmid",
					(json_int_t)in->newid, "name", in->name, "series",
					in->t->name, "changed", 1),
			      err);
}

/* Reads what the plan needs: the source (ours, a VM, its state) and the series' next VMID and
 * version name. */
static int cap_read(struct session *s, const struct pve_vm_list *vms, struct cap_input *in,
		    json_t **ret_conf, char **ret_name, struct phx_err *err)
{
	const struct cli_opts *opts = s->opts;
	struct series_guest *g = NULL;
	struct pve_vm_status st;
	int rc = -1;

	for (size_t i = 0; i < vms->n && !in->src; i++)
		if ((unsigned long)vms->items[i].vmid == opts->vmids[0])
			in->src = &vms->items[i];
	if (!in->src)
		return phx_err_set(err, PHX_E_NOTFOUND, "VM %lu does not exist on the cluster",
				   opts->vmids[0]);
	if (in->src->template)
		return phx_err_set(err, PHX_E_CONFLICT,
				   "VM %d '%s' is a template already: --capture takes a VM",
				   in->src->vmid, in->src->name);
	if (!series_has_tag(in->src->tags, SERIES_TAG_OURS))
		return phx_err_set(err, PHX_E_CONFLICT,
				   "VM %d '%s' was not made by this tool (no '" SERIES_TAG_OURS
				   "' tag): refusing to touch it",
				   in->src->vmid, in->src->name);
	if (pve_vm_status_get(s->pve, in->src->node, in->src->vmid, &st, err) < 0 ||
	    pve_vm_config_get(s->pve, in->src->node, in->src->vmid, ret_conf, err) < 0)
		return -1;
	if (strcmp(st.status, "running"))
		return phx_err_set(err, PHX_E_CONFLICT,
				   "VM %d '%s' is %s: --capture resets its identity through the "
				   "guest agent, so it must be running",
				   in->src->vmid, in->src->name, st.status);
	in->was_running = true;
	if (cmd_series_guests(vms, &g, err) < 0)
		return -1;
	if (series_next_vmid(in->t->versions.vmid_min, in->t->versions.vmid_max, g, vms->n,
			     &in->newid, err) < 0 ||
	    series_next_name(in->t->name, time(NULL), g, vms->n, ret_name, err) < 0)
		goto out;
	rc = 0;
out:
	free(g);
	return rc;
}

static int cmd_capture_run(struct session *s, struct phx_err *err)
{
	const struct cli_opts *opts = s->opts;
	const struct cfg_template *t = cfg_find_template(s->cfg, opts->capture_as);
	struct pve_vm_list vms = {NULL, 0};
	struct cap_input in = {.t = t, .shutdown_timeout_s = 180};
	struct plan p = PLAN_INIT;
	json_t *conf = NULL;
	char *name = NULL, *desc = NULL, tags[1024], source[192];
	struct txn *tx = NULL;
	int rc = -1;

	if (!t || !t->has_versions)
		return phx_err_set(err, PHX_E_INPUT,
				   "--as '%s': expected a template with 'versions' in %s (a series "
				   "to add the captured version to)",
				   opts->capture_as, s->cfg->path);
	if (session_connect(s, err) < 0 || pve_cluster_vms(s->pve, &vms, err) < 0 ||
	    cap_read(s, &vms, &in, &conf, &name, err) < 0)
		goto out;
	in.src_conf = conf;
	in.name = name;
	snprintf(source, sizeof(source), "capture of VM %d '%s'", in.src->vmid, in.src->name);
	if (prov_tags(t, name, tags, sizeof(tags), err) < 0)
		goto out;
	if (!(desc = prov_description(t, name, source, NULL, NULL, NULL, NULL))) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	in.tags = tags;
	in.description = desc;
	if (cap_plan(&in, &p, err) < 0)
		goto out;
	if (opts->dry_run) {
		plan_note(&p, in.src->name,
			  "a real run first resets the identity of VM %d through its guest agent "
			  "(cloud-init clean, empty machine-id, no SSH host keys, no shell history)",
			  in.src->vmid);
		rc = cmd_plan_checked(opts, "capture", &p, err) < 0 ? -1 : 0;
		goto out;
	}
	if (cmd_plan_checked(opts, "capture", &p, err) < 0 || cap_reset_identity(s, in.src, err) < 0)
		goto out;
	if (!(tx = txn_new_journaled(s->pve, s->journal))) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	{
		const struct plan_apply_ctx ax = {s->pve, tx, session_task_timeout(s)};

		if (plan_apply(&p, &ax, err) < 0) {
			struct buf report = BUF_INIT;
			struct phx_err start_err = PHX_ERR_INIT;

			txn_rollback(tx, &report);
			/* the source goes back to running, as a real run leaves it */
			if (pve_vm_start(s->pve, in.src->node, in.src->vmid,
					 session_task_timeout(s), &start_err) == 0)
				buf_printf(&report, NULL, "%sstarted VM %d '%s' again",
					   report.len ? "; " : "", in.src->vmid, in.src->name);
			else if (!strstr(start_err.msg, "already running"))
				buf_printf(&report, NULL, "%scould not start VM %d again: %s",
					   report.len ? "; " : "", in.src->vmid, start_err.msg);
			phx_err_append_report(err, "rolled back", buf_str(&report));
			buf_release(&report);
			goto out;
		}
	}
	txn_commit(tx);
	rc = cap_report(opts, &in, err);
out:
	if (rc < 0 && in.src)
		phx_err_wrap(err, "--capture %d '%s'", in.src->vmid, in.src->name);
	txn_free(tx);
	plan_release(&p);
	json_decref(conf);
	free(desc);
	free(name);
	pve_vm_list_release(&vms);
	return rc;
}

const struct cmd_entry cmd_capture_entry = {"capture", CMD_SERVER | CMD_LOCK, cmd_capture_run};
