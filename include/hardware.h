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
 * go on `storage` (bios "ovmf": efidisk0 with efitype=4m; tpm: tpmstate0 v2.0). */
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

/* The drive key of the cloud-init seed for a VM with `bios` and `machine` (NULL: Proxmox's
 * defaults). One decision, so the bus can follow what the firmware reads: "ide2". */
const char *hw_seed_drive(const char *bios, const char *machine);

#endif
