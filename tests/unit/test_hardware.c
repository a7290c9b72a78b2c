/* hardware: the config's hardware keys as create options and as the changes of an existing
 * VM or a new clone, against Proxmox's defaults for absent options. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hardware.h"
#include "plan.h"

static struct plan_action *new_action(struct plan *p)
{
	return plan_add(p, PLAN_REQUEST, PLAN_CHANGE, "VM 8001 'a'", "POST",
			"/nodes/pve1/qemu/8001/config");
}

static const struct plan_change *change(const struct plan_action *a, const char *key)
{
	for (size_t i = 0; i < a->n_changes; i++)
		if (!strcmp(a->changes[i].key, key))
			return &a->changes[i];
	return NULL;
}

static json_t *conf(const char *text)
{
	json_error_t e;
	json_t *c = json_loads(text, 0, &e);

	cr_assert_not_null(c, "%s", e.text);
	return c;
}

Test(hardware, create_renders_every_key_with_efi_and_tpm_volumes)
{
	struct cfg_machine m = {.bios = "ovmf", .efi_pre_enrolled_keys = CFG_TRI_TRUE,
				.machine = "q35", .tpm = CFG_TRI_TRUE, .cpu = "host",
				.sockets = 2, .has_balloon = true, .balloon_mb = 0,
				.numa = CFG_TRI_TRUE};
	struct plan p = PLAN_INIT;
	struct plan_action *a = new_action(&p);

	hw_create_params(&m, "local-lvm", &p, a);
	cr_assert_str_eq(plan_param_get(a, "bios"), "ovmf");
	cr_assert_str_eq(plan_param_get(a, "efidisk0"),
			 "local-lvm:1,efitype=4m,pre-enrolled-keys=1");
	cr_assert_str_eq(plan_param_get(a, "machine"), "q35");
	cr_assert_str_eq(plan_param_get(a, "tpmstate0"), "local-lvm:1,version=v2.0");
	cr_assert_str_eq(plan_param_get(a, "cpu"), "host");
	cr_assert_str_eq(plan_param_get(a, "sockets"), "2");
	cr_assert_str_eq(plan_param_get(a, "balloon"), "0");
	cr_assert_str_eq(plan_param_get(a, "numa"), "1");
	cr_assert_eq(plan_check(&p, NULL), 0);
	plan_release(&p);
}

Test(hardware, create_sends_nothing_for_unset_keys)
{
	struct cfg_machine m = {.bios = "seabios"};
	struct plan p = PLAN_INIT;
	struct plan_action *a = new_action(&p);

	hw_create_params(&m, "local", &p, a);
	cr_assert_eq(a->n_params, 1);
	cr_assert_str_eq(plan_param_get(a, "bios"), "seabios");
	cr_assert_null(plan_param_get(a, "efidisk0"), "no EFI disk with seabios");
	plan_release(&p);
}

Test(hardware, converge_changes_only_what_differs_from_value_or_default)
{
	struct cfg_machine m = {.bios = "ovmf", .machine = "pc", .tpm = CFG_TRI_TRUE,
				.cpu = "x86-64-v3", .sockets = 1, .has_balloon = true,
				.balloon_mb = 1024, .numa = CFG_TRI_FALSE};
	json_t *c = conf("{\"bios\": \"seabios\", \"cpu\": \"host,flags=+aes\", "
			 "\"balloon\": 1024, \"tpmstate0\": \"local:100/vm-100-disk-1.raw,"
			 "size=4M,version=v2.0\"}");
	struct plan p = PLAN_INIT;
	struct plan_action *a = new_action(&p);

	cr_assert(hw_plan_config(&m, "local", c, false, "VM", &p, a));
	cr_assert_str_eq(change(a, "bios")->old, "seabios");
	cr_assert_str_eq(change(a, "bios")->new, "ovmf");
	cr_assert_null(change(a, "efidisk0")->old);
	cr_assert_str_eq(change(a, "efidisk0")->new, "local:1,efitype=4m,pre-enrolled-keys=0");
	cr_assert_str_eq(change(a, "cpu")->new, "x86-64-v3,flags=+aes", "flags are kept");
	/* machine pc, sockets 1, numa 0 are Proxmox's defaults; balloon and TPM are there */
	cr_assert_eq(a->n_changes, 3, "%zu changes", a->n_changes);
	json_decref(c);
	plan_release(&p);
}

Test(hardware, converged_vm_plans_nothing)
{
	struct cfg_machine m = {.bios = "ovmf", .machine = "q35", .tpm = CFG_TRI_TRUE,
				.cpu = "host", .sockets = 2, .numa = CFG_TRI_TRUE};
	json_t *c = conf("{\"bios\": \"ovmf\", \"efidisk0\": \"local:8001/vm-8001-disk-1.qcow2,"
			 "efitype=4m,pre-enrolled-keys=0,size=528K\", \"machine\": \"q35\", "
			 "\"tpmstate0\": \"local:8001/vm-8001-disk-2.qcow2,size=4M,version=v2.0\", "
			 "\"cpu\": \"cputype=host\", \"sockets\": 2, \"numa\": 1}");
	struct plan p = PLAN_INIT;
	struct plan_action *a = new_action(&p);

	cr_assert(!hw_plan_config(&m, "local", c, false, "VM", &p, a));
	cr_assert_eq(a->n_changes, 0);
	cr_assert_eq(p.n_notes, 0);
	json_decref(c);
	plan_release(&p);
}

Test(hardware, default_cpu_only_for_new_clones_of_templates_without_one)
{
	struct cfg_machine none = {0};
	json_t *bare = conf("{}"), *with = conf("{\"cpu\": \"host\"}");
	struct plan p = PLAN_INIT;
	struct plan_action *a = new_action(&p);

	cr_assert(!hw_plan_config(&none, "local", bare, false, "VM", &p, a));
	cr_assert_eq(a->n_changes, 0, "an existing VM without cpu keeps kvm64");
	cr_assert(!hw_plan_config(&none, "local", with, true, "VM", &p, a));
	cr_assert_eq(a->n_changes, 0, "a clone keeps its template's CPU");
	cr_assert(hw_plan_config(&none, "local", bare, true, "VM", &p, a));
	cr_assert_str_eq(change(a, "cpu")->new, CFG_CPU_DEFAULT);
	json_decref(bare);
	json_decref(with);
	plan_release(&p);
}

Test(hardware, efi_keys_and_tpm_removal_are_notes_not_changes)
{
	struct cfg_machine m = {.bios = "ovmf", .efi_pre_enrolled_keys = CFG_TRI_TRUE,
				.tpm = CFG_TRI_FALSE};
	json_t *c = conf("{\"bios\": \"ovmf\", \"efidisk0\": \"local:1/vm-1-disk-0.qcow2,"
			 "efitype=4m,pre-enrolled-keys=0,size=528K\", \"tpmstate0\": "
			 "\"local:1/vm-1-disk-1.qcow2,size=4M,version=v2.0\"}");
	struct plan p = PLAN_INIT;
	struct plan_action *a = new_action(&p);

	hw_plan_config(&m, "local", c, false, "VM 1 'a'", &p, a);
	cr_assert_eq(a->n_changes, 0);
	cr_assert_eq(p.n_notes, 2);
	cr_assert(strstr(p.notes[0].text, "efi_pre_enrolled_keys true"), "%s", p.notes[0].text);
	cr_assert(strstr(p.notes[1].text, "tpm false"), "%s", p.notes[1].text);
	json_decref(c);
	plan_release(&p);
}

Test(hardware, seed_drive_is_ide2_only_on_seabios_i440fx)
{
	cr_assert_str_eq(hw_seed_drive(NULL, NULL), "ide2");
	cr_assert_str_eq(hw_seed_drive("seabios", "pc"), "ide2");
	cr_assert_str_eq(hw_seed_drive("seabios", "pc-i440fx-9.2+pve1"), "ide2");
	cr_assert_str_eq(hw_seed_drive("ovmf", NULL), "scsi30");
	cr_assert_str_eq(hw_seed_drive("ovmf", "pc"), "scsi30");
	cr_assert_str_eq(hw_seed_drive("ovmf", "q35"), "scsi30");
	cr_assert_str_eq(hw_seed_drive(NULL, "q35"), "scsi30");
	cr_assert_str_eq(hw_seed_drive("seabios", "pc-q35-9.2+pve1"), "scsi30");
}

Test(hardware, drive_value_sets_given_options_and_keeps_the_rest_sorted)
{
	struct cfg_drive_opts o = {.ssd = CFG_TRI_TRUE, .discard = CFG_TRI_FALSE, .cache = "none"};
	char *v = hw_drive_value("local-lvm:vm-1-disk-0,discard=on,iothread=1,size=8G", &o);

	cr_assert_str_eq(v, "local-lvm:vm-1-disk-0,cache=none,discard=ignore,iothread=1,size=8G,"
			    "ssd=1");
	free(v);
	v = hw_drive_value("local:4", &(struct cfg_drive_opts){.iothread = CFG_TRI_TRUE});
	cr_assert_str_eq(v, "local:4,iothread=1");
	free(v);
}

Test(hardware, data_disks_are_added_grown_and_never_shrunk)
{
	struct cfg_data_disk d[3] = {{.size_gb = 10, .storage = "local-lvm", .o = {.bus = "scsi"}},
				     {.size_gb = 4, .storage = "tank", .o = {.bus = "virtio"}},
				     {.size_gb = 2, .storage = "local", .o = {.bus = "sata"}}};
	struct cfg_machine m = {.disks = d, .n_disks = 3};
	json_t *c = conf("{\"scsi0\": \"local-lvm:vm-1-disk-0,size=3G\", "
			 "\"scsi1\": \"local-lvm:vm-1-disk-1,size=8G\", "
			 "\"virtio2\": \"tank:vm-1-disk-2,size=6G\", "
			 "\"scsi7\": \"local-lvm:vm-1-disk-3,size=1G\", "
			 "\"ide2\": \"local:iso/seed.iso,media=cdrom\"}");
	struct plan p = PLAN_INIT;
	struct plan_action *a = new_action(&p);

	cr_assert(hw_plan_disks(&m, "scsi0", c, false, "VM 1 'a'", &p, a));
	cr_assert_eq(a->n_changes, 1);
	cr_assert_str_eq(change(a, "sata3")->new, "local:2");
	cr_assert(!hw_plan_disk_removal(&m, "scsi0", c, false, "pve1", 1, "VM 1 'a'", &p, a));
	cr_assert_eq(a->n_changes, 1, "nothing removed without the flag");
	hw_plan_disk_growth(&m, c, "pve1", 1, "VM 1 'a'", &p);
	cr_assert_eq(p.n, 2, "the config and one resize");
	cr_assert_str_eq(plan_param_get(p.actions[1], "disk"), "scsi1");
	cr_assert_str_eq(plan_param_get(p.actions[1], "size"), "10G");
	cr_assert_eq(p.n_notes, 2);
	cr_assert(strstr(p.notes[0].text, "scsi7 is not in disks: kept ('local-lvm:vm-1-disk-3'; "
			 "--allow-disk-removal removes it with its volume)"),
		  "%s", p.notes[0].text);
	cr_assert(strstr(p.notes[1].text, "virtio2 is 6G, larger than disks[1].size_gb 4"), "%s",
		  p.notes[1].text);
	json_decref(c);
	plan_release(&p);
}

/* the template's volume must never become the clone's disk: the value is pending until the
 * clone exists, then its own volume gets the options (same run) */
Test(hardware, a_new_clones_drives_are_never_repointed)
{
	struct cfg_data_disk d[1] = {{.size_gb = 1, .storage = "local", .o = {.cache = "none"}}};
	struct cfg_machine m = {.disk = {.ssd = CFG_TRI_TRUE}, .disks = d, .n_disks = 1};
	json_t *c = conf("{\"scsi0\": \"local:9000/base-9000-disk-0.qcow2,size=3G\", "
			 "\"scsi1\": \"local:9000/base-9000-disk-1.qcow2,size=1G\"}");
	struct plan p = PLAN_INIT;
	struct plan_action *a = new_action(&p);
	struct phx_err err = PHX_ERR_INIT;
	char *v;

	cr_assert(hw_plan_disks(&m, "scsi0", c, true, "VM 1 'a'", &p, a));
	cr_assert_eq(p.n_notes, 0);
	cr_assert_eq(a->n_params, 2);
	for (size_t i = 0; i < 2; i++) {
		cr_assert(a->params[i].flags & PLAN_PENDING, "%s", a->params[i].key);
		cr_assert_null(strstr(a->params[i].value, "base-9000"), "%s", a->params[i].value);
	}
	cr_assert_str_eq(plan_param_get(a, "scsi0"), "<scsi0 of the clone>,size=3G,ssd=1");
	cr_assert_str_eq(plan_param_get(a, "scsi1"), "<scsi1 of the clone>,cache=none,size=1G");
	cr_assert_str_eq(change(a, "scsi0")->old, "local:9000/base-9000-disk-0.qcow2,size=3G");
	/* what the apply loop does once the clone exists */
	v = hw_drive_value("local:9000/base-9000-disk-0.qcow2/1/vm-1-disk-0.qcow2,size=3G",
			   hw_drive_opts_of(&m, "scsi0"));
	cr_assert_eq(plan_param_fill(a, "scsi0", v, &err), 0, "%s", err.msg);
	cr_assert_str_eq(plan_param_get(a, "scsi0"),
			 "local:9000/base-9000-disk-0.qcow2/1/vm-1-disk-0.qcow2,size=3G,ssd=1");
	cr_assert_eq(a->params[0].flags & PLAN_PENDING, 0);
	cr_assert_eq(plan_param_fill(a, "scsi0", v, &err), -1, "filled only once");
	cr_assert_eq(err.code, PHX_E_INTERNAL);
	free(v);
	cr_assert_eq(hw_drive_opts_of(&m, "scsi1"), &d[0].o);
	json_decref(c);
	plan_release(&p);
}

/* --allow-disk-removal: detach in the config request (Proxmox: the lowest free unusedN), then
 * one request per volume deleting that unusedN; never the system disk, a CD-ROM or the EFI
 * and TPM volumes */
Test(hardware, disk_removal_detaches_then_frees_each_volume_as_unused)
{
	struct cfg_data_disk d[1] = {{.size_gb = 10, .storage = "local-lvm", .o = {.bus = "scsi"}}};
	struct cfg_machine m = {.disks = d, .n_disks = 1};
	json_t *c = conf("{\"scsi0\": \"local-lvm:vm-1-disk-0,size=3G\", "
			 "\"scsi1\": \"local-lvm:vm-1-disk-1,size=10G\", "
			 "\"virtio2\": \"tank:vm-1-disk-2,iothread=1,size=6G\", "
			 "\"sata5\": \"local:1/vm-1-disk-3.qcow2,size=1G\", "
			 "\"unused0\": \"local-lvm:vm-1-disk-9\", "
			 "\"scsi30\": \"local:iso/seed.iso,media=cdrom\", "
			 "\"efidisk0\": \"local-lvm:vm-1-disk-7,efitype=4m,size=528K\", "
			 "\"tpmstate0\": \"local-lvm:vm-1-disk-8,size=4M,version=v2.0\"}");
	struct plan p = PLAN_INIT;
	struct plan_action *a = new_action(&p);
	const char *unused_of[2] = {NULL, NULL};

	cr_assert(hw_plan_disk_removal(&m, "scsi0", c, true, "pve1", 1, "VM 1 'a'", &p, a));
	cr_assert_eq(p.n_notes, 0);
	cr_assert_eq(p.n, 3, "the config request and one per removed volume");
	cr_assert_str_eq(change(a, "virtio2")->old, "tank:vm-1-disk-2,iothread=1,size=6G");
	cr_assert_null(change(a, "virtio2")->new);
	cr_assert_null(change(a, "sata5")->new);
	cr_assert_null(change(a, "scsi0"));
	cr_assert_null(change(a, "scsi1"));
	cr_assert_null(change(a, "scsi30"));
	cr_assert_null(change(a, "efidisk0"));
	cr_assert_null(change(a, "tpmstate0"));
	cr_assert_null(change(a, "unused0"), "an unused volume already there is left alone");
	/* unused0 is taken: the two detached volumes become unused1 and unused2 */
	cr_assert(change(a, "unused1") && change(a, "unused2"));
	for (size_t i = 1; i < 3; i++) {
		const struct plan_action *f = p.actions[i];
		const char *del = plan_param_get(f, "delete");

		cr_assert_str_eq(f->method, "POST");
		cr_assert_str_eq(f->path, "/nodes/pve1/qemu/1/config");
		cr_assert_eq(f->sym, PLAN_DESTROY);
		cr_assert(!strcmp(del, "unused1") || !strcmp(del, "unused2"), "%s", del);
		unused_of[i - 1] = f->changes[0].old;
		cr_assert_str_eq(change(a, del)->new, f->changes[0].old, "the volume %s holds", del);
	}
	cr_assert_str_neq(unused_of[0], unused_of[1]);
	{
		const char *del = plan_param_get(a, "delete");

		cr_assert(!strcmp(del, "virtio2,sata5") || !strcmp(del, "sata5,virtio2"), "%s", del);
	}
	cr_assert_eq(plan_check(&p, NULL), 0);
	json_decref(c);
	plan_release(&p);
}

Test(hardware, disk_removal_keeps_a_protected_vms_disks)
{
	struct cfg_machine m = {0};
	json_t *c = conf("{\"scsi0\": \"local-lvm:vm-1-disk-0,size=3G\", "
			 "\"scsi1\": \"local-lvm:vm-1-disk-1,size=10G\", \"protection\": 1}");
	struct plan p = PLAN_INIT;
	struct plan_action *a = new_action(&p);

	cr_assert(!hw_plan_disk_removal(&m, "scsi0", c, true, "pve1", 1, "VM 1 'a'", &p, a));
	cr_assert_eq(a->n_changes, 0);
	cr_assert_eq(p.n, 1);
	cr_assert_eq(p.n_notes, 1);
	cr_assert(strstr(p.notes[0].text, "scsi1 is not in disks but the VM is protected: kept"),
		  "%s", p.notes[0].text);
	json_decref(c);
	plan_release(&p);
}
