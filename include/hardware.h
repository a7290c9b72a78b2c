/* hardware: the config's hardware keys (struct cfg_machine: firmware, machine, TPM, CPU,
 * sockets, balloon, NUMA) as Proxmox VM options. Decides the options a new template is
 * created with, and what an existing VM, or a new clone of a template, must change to match
 * its config; and which drive carries a VM's seed. Pure: adds to a plan, sends nothing
 * (tests/unit/test_hardware.c). Does not own the config's validation (config_parse.c) nor
 * the other options of the requests (cmd_provision.c, deploy_plan.c). */
#ifndef PHX_HARDWARE_H
#define PHX_HARDWARE_H

#include <stdbool.h>

#include <jansson.h>

#include "config.h"
#include "plan.h"

/* Adds to `a`, the create request of a new VM, the options of `m`; the EFI and TPM volumes
 * go on `storage` (bios "ovmf": efidisk0 with efitype=4m; tpm: tpmstate0 v2.0), each data
 * disk on its own. The system disk is the caller's (hw_system_disk_key, hw_drive_value). */
void hw_create_params(const struct cfg_machine *m, const char *storage, struct plan *p,
		      struct plan_action *a);

/* Sets on `a`, the config request of a VM whose config is `conf` (an existing VM's, or for a
 * new clone its template's, which the clone starts as), each option of `m` that differs from
 * it, as old -> new; a missing EFI or TPM volume is added on `storage`. A new clone whose
 * config and template name no CPU gets CFG_CPU_DEFAULT; an existing VM without the key keeps
 * Proxmox's default. What cannot change in place (an EFI disk's keys, a TPM removed) is a
 * note on `object`. True when something changed that a running guest only sees after a
 * restart. */
bool hw_plan_config(const struct cfg_machine *m, const char *storage, const json_t *conf,
		    bool new_vm, const char *object, struct plan *p, struct plan_action *a);
/* The disk part of the same: the system disk `sysdisk` (its key in conf, or NULL) gets the
 * options of m->disk (a different bus is a note: the disk is not moved), each data disk of
 * m->disks is added when conf lacks its key or gets its options; a data disk conf has beyond
 * the list is hw_plan_disk_removal's. A new clone's drives (conf: its template's) are the
 * template's volumes until the clone names its own: a differing one is a PLAN_PENDING value
 * ("<scsi0 of the clone>,discard=on,..."), which the apply loop fills in once the clone exists
 * (hw_drive_opts_of, hw_drive_value). True when something changed. */
bool hw_plan_disks(const struct cfg_machine *m, const char *sysdisk, const json_t *conf,
		   bool new_vm, const char *object, struct plan *p, struct plan_action *a);

/* The data disks an existing VM's `conf` has beyond m->disks (never the system disk `sysdisk`,
 * a CD-ROM, the EFI or TPM volume, nor an unusedN already there). With `allow`
 * (--allow-disk-removal) each is detached in `a`, the VM's config request (`delete`: Proxmox
 * makes it unusedN, the lowest free N), and its volume freed by a request of its own deleting
 * that unusedN (qemu-server API2/Qemu.pm update_vm_api); a protected VM's are kept (a note:
 * Proxmox would refuse). Without `allow`, a note says each is kept and how to remove it.
 * True when something is removed. */
bool hw_plan_disk_removal(const struct cfg_machine *m, const char *sysdisk, const json_t *conf,
			  bool allow, const char *node, unsigned long vmid, const char *object,
			  struct plan *p, struct plan_action *a);

/* The options `m` wants for drive `key`: a data disk's of `disks`, else the system disk's. */
const struct cfg_drive_opts *hw_drive_opts_of(const struct cfg_machine *m, const char *key);

/* The system disk's drive key of a new template: "<disk.bus>0", "scsi0" by default. */
const char *hw_system_disk_key(const struct cfg_machine *m);
/* The drive key of data disk i: "<bus><i + 1>". */
void hw_data_disk_key(const struct cfg_machine *m, size_t i, char *ret, size_t len);
/* A drive value with the options of `o` set (unset ones as they are), the other options kept,
 * sorted as Proxmox prints them after the volume. Caller frees; NULL when out of memory. */
char *hw_drive_value(const char *cur, const struct cfg_drive_opts *o);

/* Adds to `p` a resize (PUT .../resize) for each data disk of `m` that `conf` has smaller than
 * its size_gb; a larger one is a note (disks never shrink). */
void hw_plan_disk_growth(const struct cfg_machine *m, const json_t *conf, const char *node,
			 unsigned long vmid, const char *object, struct plan *p);

/* The drive key of the cloud-init seed for a VM with `bios` and `machine` (NULL: Proxmox's
 * defaults; give the effective values, the template's where the VM overrides nothing):
 * "ide2" on SeaBIOS/i440fx, "scsi30" under OVMF or on q35, where a Debian cloud guest does
 * not see a seed on IDE (hardware.c says what was measured). */
const char *hw_seed_drive(const char *bios, const char *machine);

/* A config value as text, whether Proxmox sent a number or a string (num holds the number's
 * text then); NULL when absent. */
const char *hw_conf_str(const json_t *conf, const char *key, char *num, size_t len);

#endif
