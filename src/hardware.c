/* hardware: the config's hardware keys as Proxmox VM options (see include/hardware.h). An
 * option absent from a VM's config has Proxmox's default (qemu-server's schema): bios
 * seabios, machine pc (i440fx), cpu kvm64, sockets 1, numa 0, the balloon on at the full
 * memory; a wanted value equal to that default is no change. */
#include "hardware.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A config value as text, whether Proxmox sent a number or a string; NULL when absent. */
static const char *hw_conf_str(const json_t *conf, const char *key, char *num, size_t len)
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

const char *hw_seed_drive(const char *bios, const char *machine)
{
	/* NEEDSWORK: the uefi branch measures which bus OVMF/q35 guests read; ide2 is what
	 * every template of ours already has, and q35 maps it to its AHCI controller */
	(void)bios;
	(void)machine;
	return "ide2";
}
