/* hardware: the config's hardware keys as Proxmox VM options (see include/hardware.h). An
 * option absent from a VM's config has Proxmox's default (qemu-server's schema): bios
 * seabios, machine pc (i440fx), cpu kvm64, sockets 1, numa 0, the balloon on at the full
 * memory; a wanted value equal to that default is no change. */
#include "hardware.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HW_MAX_UNUSED 256

const char *hw_conf_str(const json_t *conf, const char *key, char *num, size_t len)
{
	const json_t *v = json_object_get(conf, key);

	if (json_is_integer(v)) {
		snprintf(num, len, "%lld", (long long)json_integer_value(v));
		return num;
	}
	return json_string_value(v);
}

/* Sets key to want when the current value (or `dflt` when absent) differs. */
static bool hw_set(struct plan *p, struct plan_action *a, const json_t *conf, const char *key,
		   const char *want, const char *dflt)
{
	char num[32];
	const char *cur = hw_conf_str(conf, key, num, sizeof(num));
	const char *eff = cur ? cur : dflt;

	if (!want || (eff && !strcmp(eff, want)))
		return false;
	plan_set(p, a, key, cur, want, 0);
	return true;
}

static const char *hw_bool(enum cfg_tri t)
{
	return t == CFG_TRI_UNSET ? NULL : t == CFG_TRI_TRUE ? "1" : "0";
}

static char *hw_efidisk(const struct cfg_machine *m, const char *storage)
{
	char *s;

	/* qemu-server API2/Qemu.pm create_disks: efidisk0's size comes from the OVMF vars
	 * template (OVMF.pm create_efidisk); the 1 only asks for a new volume */
	if (asprintf(&s, "%s:1,efitype=4m,pre-enrolled-keys=%d", storage,
		     m->efi_pre_enrolled_keys == CFG_TRI_TRUE) < 0)
		return NULL;
	return s;
}

static char *hw_tpmstate(const char *storage)
{
	char *s;

	/* the volume's size is fixed (Drive.pm TPMSTATE_DISK_SIZE) */
	if (asprintf(&s, "%s:1,version=v2.0", storage) < 0)
		return NULL;
	return s;
}

static void hw_num(char *buf, size_t len, unsigned long v, bool set)
{
	if (set)
		snprintf(buf, len, "%lu", v);
	else
		buf[0] = '\0';
}

void hw_create_params(const struct cfg_machine *m, const char *storage, struct plan *p,
		      struct plan_action *a)
{
	char sockets[16], balloon[32], *s;

	plan_param(p, a, "bios", m->bios, 0);
	if (m->bios && !strcmp(m->bios, "ovmf")) {
		if (!(s = hw_efidisk(m, storage)))
			p->oom = true;
		plan_param(p, a, "efidisk0", s, 0);
		free(s);
	}
	plan_param(p, a, "machine", m->machine, 0);
	if (m->tpm == CFG_TRI_TRUE) {
		if (!(s = hw_tpmstate(storage)))
			p->oom = true;
		plan_param(p, a, "tpmstate0", s, 0);
		free(s);
	}
	plan_param(p, a, "cpu", m->cpu, 0);
	hw_num(sockets, sizeof(sockets), m->sockets, m->sockets);
	plan_param(p, a, "sockets", sockets[0] ? sockets : NULL, 0);
	hw_num(balloon, sizeof(balloon), m->balloon_mb, m->has_balloon);
	plan_param(p, a, "balloon", balloon[0] ? balloon : NULL, 0);
	plan_param(p, a, "numa", hw_bool(m->numa), 0);
	for (size_t i = 0; i < m->n_disks; i++) {
		char k[16], *fresh = NULL, *v = NULL;

		hw_data_disk_key(m, i, k, sizeof(k));
		if (asprintf(&fresh, "%s:%lu", m->disks[i].storage, m->disks[i].size_gb) < 0 ||
		    !(v = hw_drive_value(fresh, &m->disks[i].o)))
			p->oom = true;
		plan_param(p, a, k, v, 0);
		free(fresh);
		free(v);
	}
}

/* The CPU type of a `cpu` value, "[cputype=]TYPE[,flags=...]", into ret. */
static void hw_cpu_type(const char *cpu, char *ret, size_t len)
{
	size_t n;

	if (!strncmp(cpu, "cputype=", 8))
		cpu += 8;
	n = strcspn(cpu, ",");
	snprintf(ret, len, "%.*s", (int)n, cpu);
}

/* The wanted `cpu` value: the type replaced, the other options (flags, ...) kept. */
static char *hw_cpu_value(const char *cur, const char *type)
{
	const char *rest = cur ? strchr(cur, ',') : NULL;
	char *s;

	if (!cur || (strncmp(cur, "cputype=", 8) && !rest))
		return strdup(type);
	if (asprintf(&s, "%s%s", type, rest ? rest : "") < 0)
		return NULL;
	return s;
}

static bool hw_plan_cpu(const struct cfg_machine *m, const json_t *conf, bool new_vm,
			struct plan *p, struct plan_action *a)
{
	const char *cur = json_string_value(json_object_get(conf, "cpu"));
	const char *want = m->cpu;
	char type[96];
	char *val;

	if (!want && new_vm && !cur)
		want = CFG_CPU_DEFAULT;
	if (!want)
		return false;
	hw_cpu_type(cur ? cur : "kvm64", type, sizeof(type));
	if (!strcmp(type, want))
		return false;
	if (!(val = hw_cpu_value(cur, want))) {
		p->oom = true;
		return false;
	}
	plan_set(p, a, "cpu", cur, val, 0);
	free(val);
	return true;
}

/* An option of a drive value ("vol,efitype=4m,pre-enrolled-keys=1") into ret; false when
 * absent. */
static bool hw_drive_opt(const char *drive, const char *opt, char *ret, size_t len)
{
	size_t n = strlen(opt);

	for (const char *s = strchr(drive, ','); s; s = strchr(s + 1, ',')) {
		if (!strncmp(s + 1, opt, n) && s[1 + n] == '=') {
			snprintf(ret, len, "%.*s", (int)strcspn(s + 2 + n, ","), s + 2 + n);
			return true;
		}
	}
	return false;
}

bool hw_plan_config(const struct cfg_machine *m, const char *storage, const json_t *conf,
		    bool new_vm, const char *object, struct plan *p, struct plan_action *a)
{
	const char *efi = json_string_value(json_object_get(conf, "efidisk0"));
	const char *tpm = json_string_value(json_object_get(conf, "tpmstate0"));
	char num[32], opt[16];
	bool restart = false;
	char *s;

	restart |= hw_set(p, a, conf, "bios", m->bios, "seabios");
	if (m->bios && !strcmp(m->bios, "ovmf") && !efi) {
		if (!(s = hw_efidisk(m, storage)))
			p->oom = true;
		plan_set(p, a, "efidisk0", NULL, s, 0);
		free(s);
		restart = true;
	} else if (efi && m->efi_pre_enrolled_keys != CFG_TRI_UNSET) {
		bool has = hw_drive_opt(efi, "pre-enrolled-keys", opt, sizeof(opt)) &&
			   !strcmp(opt, "1");

		/* the keys are written into the vars volume when it is made (OVMF.pm
		 * create_efidisk): the option alone would not enroll or remove them */
		if (has != (m->efi_pre_enrolled_keys == CFG_TRI_TRUE))
			plan_note(p, object,
				  "efi_pre_enrolled_keys %s: the existing EFI disk was made %s "
				  "them and is kept; remove efidisk0 to have it made anew",
				  has ? "false" : "true", has ? "with" : "without");
	}
	restart |= hw_set(p, a, conf, "machine", m->machine, "pc");
	if (m->tpm == CFG_TRI_TRUE && !tpm) {
		if (!(s = hw_tpmstate(storage)))
			p->oom = true;
		plan_set(p, a, "tpmstate0", NULL, s, 0);
		free(s);
		restart = true;
	} else if (m->tpm == CFG_TRI_FALSE && tpm) {
		plan_note(p, object,
			  "tpm false: the TPM state volume is kept (it may hold keys the guest "
			  "sealed); remove tpmstate0 by hand if it must go");
	}
	restart |= hw_plan_cpu(m, conf, new_vm, p, a);
	hw_num(num, sizeof(num), m->sockets, m->sockets);
	restart |= hw_set(p, a, conf, "sockets", num[0] ? num : NULL, "1");
	hw_num(num, sizeof(num), m->balloon_mb, m->has_balloon);
	/* absent: the balloon is on with the full memory as its minimum (any value differs) */
	restart |= hw_set(p, a, conf, "balloon", num[0] ? num : NULL, NULL);
	restart |= hw_set(p, a, conf, "numa", hw_bool(m->numa), "0");
	return restart;
}

const char *hw_system_disk_key(const struct cfg_machine *m)
{
	const char *bus = m->disk.bus;

	return !bus ? "scsi0" : !strcmp(bus, "virtio") ? "virtio0" : !strcmp(bus, "sata") ? "sata0"
												: "scsi0";
}

void hw_data_disk_key(const struct cfg_machine *m, size_t i, char *ret, size_t len)
{
	snprintf(ret, len, "%s%zu", m->disks[i].o.bus ? m->disks[i].o.bus : "scsi", i + 1);
}

static int hw_item_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *hw_drive_value(const char *cur, const struct cfg_drive_opts *o)
{
	static const char *const managed[] = {"ssd=", "discard=", "iothread=", "cache="};
	char *items[40], *out = NULL;
	size_t n = 0, len, total;
	const char *p = cur + strcspn(cur, ",");
	char own[4][32];
	size_t n_own = 0;
	bool set[4] = {o->ssd != CFG_TRI_UNSET, o->discard != CFG_TRI_UNSET,
		       o->iothread != CFG_TRI_UNSET, o->cache != NULL};

	if (set[0])
		snprintf(own[n_own++], sizeof(own[0]), "ssd=%d", o->ssd == CFG_TRI_TRUE);
	if (set[1])
		snprintf(own[n_own++], sizeof(own[0]), "discard=%s",
			 o->discard == CFG_TRI_TRUE ? "on" : "ignore");
	if (set[2])
		snprintf(own[n_own++], sizeof(own[0]), "iothread=%d", o->iothread == CFG_TRI_TRUE);
	if (set[3])
		snprintf(own[n_own++], sizeof(own[0]), "cache=%s", o->cache);
	for (size_t i = 0; i < n_own; i++)
		items[n++] = own[i];
	while (*p == ',' && n < sizeof(items) / sizeof(items[0])) {
		const char *item = p + 1;
		bool skip = false;

		len = strcspn(item, ",");
		for (size_t k = 0; k < 4; k++)
			skip |= set[k] && !strncmp(item, managed[k], strlen(managed[k]));
		if (!skip && len && !(items[n++] = strndup(item, len))) {
			n--;
			goto out;
		}
		p = item + len;
	}
	/* PVE::JSONSchema::print_property_string: the volume first, the options sorted */
	qsort(items, n, sizeof(items[0]), hw_item_cmp);
	total = strcspn(cur, ",") + 1;
	for (size_t i = 0; i < n; i++)
		total += strlen(items[i]) + 1;
	if (!(out = malloc(total)))
		goto out;
	len = strcspn(cur, ",");
	memcpy(out, cur, len);
	for (size_t i = 0; i < n; i++) {
		out[len++] = ',';
		memcpy(out + len, items[i], strlen(items[i]));
		len += strlen(items[i]);
	}
	out[len] = '\0';
out:
	for (size_t i = 0; i < n; i++) {
		bool mine = false;

		for (size_t k = 0; k < n_own; k++)
			mine |= items[i] == own[k];
		if (!mine)
			free(items[i]);
	}
	return out;
}

static bool hw_is_disk_key(const char *key, char *bus, size_t len, unsigned long *idx)
{
	static const char *const buses[] = {"scsi", "virtio", "sata"};

	for (size_t i = 0; i < sizeof(buses) / sizeof(buses[0]); i++) {
		size_t l = strlen(buses[i]);
		char *end;

		if (!strncmp(key, buses[i], l) && key[l] >= '0' && key[l] <= '9') {
			*idx = strtoul(key + l, &end, 10);
			snprintf(bus, len, "%s", buses[i]);
			return !*end;
		}
	}
	return false;
}

/* A new clone's drives are its template's volumes until the clone names its own, which the
 * plan cannot know: the value is pending, filled in by the apply loop once the clone exists
 * (hw_drive_opts_of, hw_drive_value on the clone's own value), before the VM starts. */
static void hw_set_clone_drive(struct plan *p, struct plan_action *a, const char *key,
			       const char *cur, const char *want)
{
	char *pending;

	if (asprintf(&pending, "<%s of the clone>%s", key, want + strcspn(want, ",")) < 0) {
		p->oom = true;
		return;
	}
	plan_set(p, a, key, cur, pending, PLAN_PENDING);
	free(pending);
}

bool hw_plan_disks(const struct cfg_machine *m, const char *sysdisk, const json_t *conf,
		   bool new_vm, const char *object, struct plan *p, struct plan_action *a)
{
	const char *cur;
	bool changed = false;
	char *want;

	const struct cfg_drive_opts *o = &m->disk;
	bool any = o->bus || o->ssd || o->discard || o->iothread || o->cache;

	if (any && sysdisk && (cur = json_string_value(json_object_get(conf, sysdisk)))) {
		if (m->disk.bus && strncmp(sysdisk, m->disk.bus, strlen(m->disk.bus)))
			plan_note(p, object,
				  "disk.bus '%s': the system disk is %s and is not moved to another "
				  "bus (a template built with it has it)",
				  m->disk.bus, sysdisk);
		if (!(want = hw_drive_value(cur, &m->disk))) {
			p->oom = true;
		} else if (strcmp(want, cur) && new_vm) {
			hw_set_clone_drive(p, a, sysdisk, cur, want);
			changed = true;
		} else if (strcmp(want, cur)) {
			plan_set(p, a, sysdisk, cur, want, 0);
			changed = true;
		}
		free(want);
	}
	for (size_t i = 0; i < m->n_disks; i++) {
		const struct cfg_data_disk *d = &m->disks[i];
		char k[16], *fresh = NULL;

		hw_data_disk_key(m, i, k, sizeof(k));
		cur = json_string_value(json_object_get(conf, k));
		if (cur && !(d->o.ssd || d->o.discard || d->o.iothread || d->o.cache)) {
			continue; /* nothing to set; its size is hw_plan_disk_growth's */
		} else if (cur) {
			want = hw_drive_value(cur, &d->o);
		} else if (asprintf(&fresh, "%s:%lu", d->storage, d->size_gb) >= 0) {
			/* qemu-server Drive.pm NEW_DISK_RE: STORAGE:SIZE_IN_GiB allocates */
			want = hw_drive_value(fresh, &d->o);
			free(fresh);
		} else {
			want = NULL;
		}
		if (!want) {
			p->oom = true;
			continue;
		}
		if (cur && new_vm && strcmp(want, cur)) {
			hw_set_clone_drive(p, a, k, cur, want);
			changed = true;
		} else if (!cur || strcmp(want, cur)) {
			plan_set(p, a, k, cur, want, 0);
			changed = true;
		}
		free(want);
	}
	return changed;
}

/* Detaches `key` in the config request `a` (qemu-server vmconfig_register_unused_drive: the
 * volume becomes unused<u>) and frees the volume with a request of its own that deletes
 * unused<u> (update_vm_api: try_deallocate_drive, vdisk_free), as the GUI's "Detach" then
 * "Remove" does; one request with force=1 would free it without the unused step. */
static void hw_plan_unused_free(struct plan *p, struct plan_action *a, const char *object,
				const char *node, unsigned long vmid, const char *key,
				const char *val, int u)
{
	struct plan_action *f;
	char unused[16], vol[256];

	snprintf(unused, sizeof(unused), "unused%d", u);
	snprintf(vol, sizeof(vol), "%.*s", (int)strcspn(val, ","), val);
	plan_delete(p, a, key, val);
	plan_change(p, a, unused, NULL, vol, false);
	f = plan_add(p, PLAN_REQUEST, PLAN_DESTROY, object, "POST", "/nodes/%s/qemu/%lu/config",
		     node, vmid);
	plan_summary(p, f, "remove %s's volume '%s' (detached as %s)", key, vol, unused);
	plan_delete(p, f, unused, vol);
}

const struct cfg_drive_opts *hw_drive_opts_of(const struct cfg_machine *m, const char *key)
{
	char k[16];

	for (size_t i = 0; i < m->n_disks; i++) {
		hw_data_disk_key(m, i, k, sizeof(k));
		if (!strcmp(k, key))
			return &m->disks[i].o;
	}
	return &m->disk;
}

/* qemu-server QemuConfig.pm add_unused_volume: a detached volume becomes the lowest free
 * unusedN (__config_max_unused_disks: 256); `taken` counts the ones this plan already gave. */
static int hw_next_unused(const json_t *conf, const bool *taken)
{
	char k[16];

	for (int i = 0; i < HW_MAX_UNUSED; i++) {
		snprintf(k, sizeof(k), "unused%d", i);
		if (!json_object_get(conf, k) && !taken[i])
			return i;
	}
	return -1;
}

bool hw_plan_disk_removal(const struct cfg_machine *m, const char *sysdisk, const json_t *conf,
			  bool allow, const char *node, unsigned long vmid, const char *object,
			  struct plan *p, struct plan_action *a)
{
	bool taken[HW_MAX_UNUSED] = {false}, removed = false;
	const char *key, *prot = NULL;
	char num[32];
	json_t *v;

	prot = hw_conf_str(conf, "protection", num, sizeof(num));
	json_object_foreach((json_t *)conf, key, v) {
		const char *val = json_string_value(v);
		char bus[8], k[16];
		unsigned long idx;
		bool listed = false;
		int u;

		if (!hw_is_disk_key(key, bus, sizeof(bus), &idx) || (sysdisk && !strcmp(key, sysdisk)) ||
		    !val || strstr(val, "media=cdrom"))
			continue;
		for (size_t i = 0; i < m->n_disks; i++) {
			hw_data_disk_key(m, i, k, sizeof(k));
			listed |= !strcmp(k, key);
		}
		if (listed)
			continue;
		if (!allow) {
			plan_note(p, object,
				  "%s is not in disks: kept ('%.*s'; --allow-disk-removal removes it "
				  "with its volume)",
				  key, (int)strcspn(val, ","), val);
			continue;
		}
		/* API2/Qemu.pm update_vm_api checks protection before any delete */
		if (prot && !strcmp(prot, "1")) {
			plan_note(p, object,
				  "%s is not in disks but the VM is protected: kept (Proxmox refuses "
				  "to remove a drive of a protected VM)",
				  key);
			continue;
		}
		if ((u = hw_next_unused(conf, taken)) < 0) {
			plan_note(p, object, "%s is not in disks: kept (no free unusedN left)", key);
			continue;
		}
		taken[u] = true;
		hw_plan_unused_free(p, a, object, node, vmid, key, val, u);
		removed = true;
	}
	return removed;
}

/* Bytes of a drive's size= option; 0 when absent. */
static unsigned long long hw_drive_bytes(const char *drive)
{
	char sz[32], *end;
	double v;

	if (!hw_drive_opt(drive, "size", sz, sizeof(sz)))
		return 0;
	v = strtod(sz, &end);
	switch (*end) {
	case 'T':
		v *= 1024;
		/* fall through */
	case 'G':
		v *= 1024;
		/* fall through */
	case 'M':
		v *= 1024;
		/* fall through */
	case 'K':
		v *= 1024;
		break;
	default:
		break;
	}
	return (unsigned long long)v;
}

void hw_plan_disk_growth(const struct cfg_machine *m, const json_t *conf, const char *node,
			 unsigned long vmid, const char *object, struct plan *p)
{
	for (size_t i = 0; i < m->n_disks; i++) {
		const struct cfg_data_disk *d = &m->disks[i];
		const char *cur;
		unsigned long long have, want = (unsigned long long)d->size_gb << 30;
		struct plan_action *a;
		char k[16], want_s[32], cur_s[32];

		hw_data_disk_key(m, i, k, sizeof(k));
		cur = json_string_value(json_object_get(conf, k));
		if (!cur)
			continue; /* made at its size by the config request */
		have = hw_drive_bytes(cur);
		snprintf(want_s, sizeof(want_s), "%luG", d->size_gb);
		hw_drive_opt(cur, "size", cur_s, sizeof(cur_s));
		if (have && have < want) {
			a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "PUT",
				     "/nodes/%s/qemu/%lu/resize", node, vmid);
			plan_summary(p, a, "grow %s to %s", k, want_s);
			plan_param(p, a, "disk", k, 0);
			plan_param(p, a, "size", want_s, 0);
			plan_change(p, a, "size", cur_s, want_s, false);
		} else if (have > want) {
			plan_note(p, object, "%s is %s, larger than disks[%zu].size_gb %lu: not "
					     "shrinking",
				  k, cur_s, i, d->size_gb);
		}
	}
}

const char *hw_seed_drive(const char *bios, const char *machine)
{
	/* Measured with the Debian cloud image under the simulator's qemu mode: on q35 qemu-server
	 * puts ideN (and sataN) on AHCI controllers, for which the Debian cloud kernel has no
	 * driver (tests/pve-sim/test_qemu_mode.py QemuBoot); on i440fx under OVMF ata_piix finds
	 * no device on the PIIX ports at all; in both cases cloud-init sees no seed and disables
	 * itself. virtio-scsi, the bus of our templates' disk, works everywhere; the last SCSI
	 * slot stays clear of data disks. SeaBIOS on i440fx keeps ide2, where every template of
	 * ours has its seed. The type holds "q35" as in qemu-server's machine_base_type. */
	if ((bios && !strcmp(bios, "ovmf")) || (machine && strstr(machine, "q35")))
		return "scsi30";
	return "ide2";
}
