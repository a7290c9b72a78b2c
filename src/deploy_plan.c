/* deploy_plan: the pure planner of one VM of Flow 2. Given the config and what was read
 * from Proxmox (the VM or its template, their config, whether the seed is on the storage),
 * decides every change as a plan action; cmd_deploy reads, prints or applies. No I/O. */
#include "deploy.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hardware.h"
#include "series.h"

#define DEPLOY_MAX_CI_DRIVES 8

static bool deploy_agent_enabled(const json_t *conf)
{
	const json_t *v = json_object_get(conf, "agent");
	const char *s = json_string_value(v);

	if (json_is_integer(v))
		return json_integer_value(v) == 1;
	return s && (!strncmp(s, "1", 1) || !strncmp(s, "enabled=1", 9));
}

/* Sets key when the config's value differs; true when it did. */
static bool deploy_set_if(struct plan *p, struct plan_action *a, const json_t *conf,
			  const char *key, const char *want, unsigned flags)
{
	char num[32];
	const char *cur = hw_conf_str(conf, key, num, sizeof(num));

	if (!want || (cur && !strcmp(cur, want)))
		return false;
	plan_set(p, a, key, cur, want, flags);
	return true;
}

/* The seed currently attached as ide2 equals `volid` (options after ',' ignored). */
static bool deploy_seed_attached(const char *ide2, const char *volid)
{
	size_t n = strlen(volid);

	return ide2 && !strncmp(ide2, volid, n) && (!ide2[n] || ide2[n] == ',');
}

/* The seed's drive key on the machine the VM will have: its own override, else what its
 * config (a new clone's: the template's) says. */
static const char *deploy_seed_drive(const struct deploy_vm_input *in)
{
	const struct cfg_machine *m = &in->vm->mach;
	const char *bios = m->bios ? m->bios : json_string_value(json_object_get(in->conf, "bios"));
	const char *machine =
		m->machine ? m->machine : json_string_value(json_object_get(in->conf, "machine"));

	return hw_seed_drive(bios, machine);
}

static void deploy_plan_seed_iso(const struct deploy_vm_input *in, struct plan *p,
				 struct plan_action *cfg_act, const char *object, char *old_seed,
				 size_t old_len, bool *seed_changed)
{
	const struct cfg_vm *vm = in->vm;
	const char *drive = deploy_seed_drive(in);
	const char *cur = json_string_value(json_object_get(in->conf, drive));
	const char *ci_keys[DEPLOY_MAX_CI_DRIVES];
	size_t n_ci = deploy_cloudinit_drives(in->conf, ci_keys, DEPLOY_MAX_CI_DRIVES);
	/* the seed drives a machine/firmware change moves the seed between (hw_seed_drive) */
	static const char *const seed_drives[] = {"ide2", "scsi30"};
	char *ide2 = NULL;

	*seed_changed = !deploy_seed_attached(cur, in->seed_volid);
	if (*seed_changed) {
		if (asprintf(&ide2, "%s,media=cdrom", in->seed_volid) < 0) {
			ide2 = NULL;
			p->oom = true;
		}
		plan_set(p, cfg_act, drive, cur, ide2, 0);
		free(ide2);
		if (cur && deploy_is_seed_volid(cur, vm->vmid))
			snprintf(old_seed, old_len, "%.*s", (int)strcspn(cur, ","), cur);
	}
	/* a VM moved to q35 or OVMF has its seed on scsi30 now: our seed on the drive it had
	 * (ide2, unseen there) goes, and so does that ISO when nothing else names it */
	for (size_t i = 0; i < sizeof(seed_drives) / sizeof(seed_drives[0]); i++) {
		const char *other = json_string_value(json_object_get(in->conf, seed_drives[i]));

		if (!strcmp(seed_drives[i], drive) || !other ||
		    !deploy_is_seed_volid(other, vm->vmid))
			continue;
		plan_delete(p, cfg_act, seed_drives[i], other);
		if (!old_seed[0] && !deploy_seed_attached(other, in->seed_volid))
			snprintf(old_seed, old_len, "%.*s", (int)strcspn(other, ","), other);
	}
	/* Proxmox's own cloud-init drive would hand the guest a second seed */
	for (size_t i = 0; i < n_ci && i < DEPLOY_MAX_CI_DRIVES; i++) {
		if (!strcmp(ci_keys[i], drive))
			continue;
		plan_delete(p, cfg_act, ci_keys[i],
			    json_string_value(json_object_get(in->conf, ci_keys[i])));
	}
	(void)object;
}

static void deploy_plan_seed_native(const struct deploy_vm_input *in, struct plan *p,
				    struct plan_action *cfg_act, const char *old_sha,
				    bool *seed_changed)
{
	const struct cfg_vm *vm = in->vm;
	const json_t *conf = in->conf;
	const char *ci_keys[DEPLOY_MAX_CI_DRIVES];

	*seed_changed = strcmp(old_sha, in->seed_sha) != 0;
	if (*seed_changed && in->cicustom) {
		deploy_set_if(p, cfg_act, conf, "cicustom", in->cicustom, 0);
	} else if (*seed_changed) {
		deploy_set_if(p, cfg_act, conf, "ciuser", vm->user.username, 0);
		/* Proxmox never shows cipassword back: always sent when the seed changed */
		plan_set(p, cfg_act, "cipassword", NULL, vm->user.password_hash, PLAN_SECRET);
		deploy_set_if(p, cfg_act, conf, "sshkeys", in->sshkeys, 0);
	}
	if (*seed_changed) {
		deploy_set_if(p, cfg_act, conf, "ipconfig0", in->ipconfig, 0);
		deploy_set_if(p, cfg_act, conf, "nameserver", in->nameserver, 0);
		deploy_set_if(p, cfg_act, conf, "searchdomain", vm->search_domain, 0);
	}
	if (deploy_cloudinit_drives(conf, ci_keys, DEPLOY_MAX_CI_DRIVES) == 0) {
		/* the template has none: Proxmox generates the seed from this drive */
		char *drive = NULL;

		if (asprintf(&drive, "%s:cloudinit", vm->storage) < 0) {
			drive = NULL;
			p->oom = true;
		}
		plan_set(p, cfg_act, deploy_seed_drive(in), NULL, drive, 0);
		free(drive);
	}
}

enum deploy_clone_path deploy_clone_path(const struct deploy_vm_input *in)
{
	if (!strcmp(in->node, in->src->node))
		return DEPLOY_CLONE_OWN_NODE;
	/* a clone of a template on node-local storage cannot be made on another node (qemu-server
	 * clone_vm: "can't clone VM to node 'X' (VM uses local storage)"): clone beside the
	 * template, then migrate it offline with its disks */
	return in->src_shared ? DEPLOY_CLONE_TARGET : DEPLOY_CLONE_MIGRATE;
}

void deploy_clone_path_note(const struct deploy_vm_input *in, char *ret, size_t len)
{
	const struct pve_vm_info *src = in->src;

	switch (deploy_clone_path(in)) {
	case DEPLOY_CLONE_TARGET:
		snprintf(ret, len,
			 "clone path: template %d is on '%s', on shared storage: a clone with "
			 "target '%s'",
			 src->vmid, src->node, in->node);
		break;
	case DEPLOY_CLONE_MIGRATE:
		snprintf(ret, len,
			 "clone path: template %d is on node-local storage on '%s': a full clone "
			 "there, then an offline migration to '%s' onto '%s'",
			 src->vmid, src->node, in->node, in->vm->storage);
		break;
	default:
		snprintf(ret, len,
			 "clone path: template %d is on the VM's node '%s': a clone there",
			 src->vmid, in->node);
		break;
	}
}

static void deploy_plan_clone(const struct deploy_vm_input *in, struct plan *p, const char *object)
{
	const struct cfg_vm *vm = in->vm;
	const struct pve_vm_info *src = in->src;
	const enum deploy_clone_path path = deploy_clone_path(in);
	const bool cross = path != DEPLOY_CLONE_OWN_NODE;
	/* a full copy: a linked clone's base would stay behind */
	const bool migrate = path == DEPLOY_CLONE_MIGRATE;
	const char *unlinkable = vm->full_clone ? NULL : deploy_unlinkable_disk(in->conf);
	const bool full = vm->full_clone || unlinkable || migrate;
	struct plan_action *a;
	char newid[24];

	snprintf(newid, sizeof(newid), "%lu", vm->vmid);
	a = plan_add(p, PLAN_REQUEST, PLAN_CREATE, object, "POST", "/nodes/%s/qemu/%d/clone",
		     src->node, src->vmid);
	plan_summary(p, a, "%s clone of template %d '%s'%s%s", full ? "full" : "linked", src->vmid,
		     src->name, cross && !migrate ? " to node " : "",
		     cross && !migrate ? in->node : "");
	if (unlinkable)
		plan_note(
			p, object,
			"full clone to '%s': %s of template %d is not a base volume, so its "
			"storage cannot hold linked clones ('%.*s')",
			vm->storage, unlinkable, src->vmid,
			(int)strcspn(json_string_value(json_object_get(in->conf, unlinkable)), ","),
			json_string_value(json_object_get(in->conf, unlinkable)));
	plan_param(p, a, "newid", newid, 0);
	plan_param(p, a, "name", vm->name, 0);
	plan_param(p, a, "full", full ? "1" : "0", 0);
	/* Proxmox refuses storage for linked clones: they live beside their base; a clone to be
	 * migrated stays on the template's storage until the migration moves it */
	plan_param(p, a, "storage", full && !migrate ? vm->storage : NULL, 0);
	plan_param(p, a, "target", cross && !migrate ? in->node : NULL, 0);
	plan_param(p, a, "pool", vm->pool, 0);
	/* the clone has its template's tags (any, or none) until it is configured: the name
	 * identifies it */
	plan_undo_vm(p, a, in->node, (int)vm->vmid, vm->name, NULL);
	if (!migrate)
		return;
	/* the note that says so is deploy_clone_path_note's, which the caller adds */
	a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "POST", "/nodes/%s/qemu/%lu/migrate",
		     src->node, vm->vmid);
	plan_summary(p, a, "migrate VM %lu from '%s' to '%s'", vm->vmid, src->node, in->node);
	plan_change(p, a, "node", src->node, in->node, false);
	plan_param(p, a, "target", in->node, 0);
	plan_param(p, a, "with-local-disks", "1", 0);
	plan_param(p, a, "targetstorage", vm->storage, 0);
}

/* `networks`: net<i> for each NIC as the config says; a NIC the VM has beyond them stays. */
static int deploy_plan_nics(const struct deploy_vm_input *in, struct plan *p,
			    struct plan_action *cfg_act, const char *object, struct phx_err *err)
{
	const struct cfg_vm *vm = in->vm;
	const char *key;
	json_t *v;

	for (size_t i = 0; i < vm->n_nics; i++) {
		char k[16], *want = NULL;

		snprintf(k, sizeof(k), "net%zu", i);
		if (deploy_nic_value(&vm->nics[i], json_string_value(json_object_get(in->conf, k)),
				     in->macs[i], &want, err) < 0)
			return -1;
		deploy_set_if(p, cfg_act, in->conf, k, want, 0);
		free(want);
	}
	json_object_foreach((json_t *)in->conf, key, v) {
		char *end;
		unsigned long idx;

		if (strncmp(key, "net", 3) || !isdigit((unsigned char)key[3]))
			continue;
		idx = strtoul(key + 3, &end, 10);
		if (!*end && idx >= vm->n_nics && in->dst)
			plan_note(p, object,
				  "%s is not in networks (%zu NICs): kept ('%s')", key, vm->n_nics,
				  json_string_value(v) ? json_string_value(v) : "");
	}
	return 0;
}

/* onboot, startup and protection; an absent option is Proxmox's default (off, none). */
static void deploy_plan_lifecycle(const struct cfg_vm *vm, const json_t *conf, struct plan *p,
				  struct plan_action *a)
{
	char num[32], want[96] = "";
	const char *cur;
	int n = 0;

	if (vm->onboot != CFG_TRI_UNSET &&
	    !(vm->onboot == CFG_TRI_FALSE && !json_object_get(conf, "onboot")))
		deploy_set_if(p, a, conf, "onboot", vm->onboot == CFG_TRI_TRUE ? "1" : "0", 0);
	if (vm->protection != CFG_TRI_UNSET &&
	    !(vm->protection == CFG_TRI_FALSE && !json_object_get(conf, "protection")))
		deploy_set_if(p, a, conf, "protection", vm->protection == CFG_TRI_TRUE ? "1" : "0",
			      0);
	if (!vm->has_startup)
		return;
	/* the order pve-manager's GUI writes it in; Proxmox keeps the string as sent */
	if (vm->startup.has_order)
		n += snprintf(want + n, sizeof(want) - (size_t)n, "order=%lu", vm->startup.order);
	if (vm->startup.has_up)
		n += snprintf(want + n, sizeof(want) - (size_t)n, "%sup=%lu", n ? "," : "",
			      vm->startup.up);
	if (vm->startup.has_down)
		snprintf(want + n, sizeof(want) - (size_t)n, "%sdown=%lu", n ? "," : "",
			 vm->startup.down);
	cur = hw_conf_str(conf, "startup", num, sizeof(num));
	if (!cur || strcmp(cur, want))
		plan_set(p, a, "startup", cur, want, 0);
}

/* `ha`: the resource vm:<vmid> added (POST) or its changed options updated (PUT), after the
 * VM is configured and started. */
static void deploy_plan_ha(const struct deploy_vm_input *in, struct plan *p, const char *object)
{
	const struct cfg_vm *vm = in->vm;
	char sid[32], restart[16], relocate[16], num[32];
	struct plan_action *a;
	const struct {
		const char *key, *want;
	} opts[] = {
		{"state", vm->ha.state},
		{"group", vm->ha.group},
		{"comment", vm->ha.comment},
		{"max_restart", vm->ha.has_max_restart ? restart : NULL},
		{"max_relocate", vm->ha.has_max_relocate ? relocate : NULL},
		{"failback", vm->ha.failback == CFG_TRI_UNSET	? NULL
			     : vm->ha.failback == CFG_TRI_TRUE ? "1"
							       : "0"},
	};

	if (!vm->has_ha)
		return;
	snprintf(sid, sizeof(sid), "vm:%lu", vm->vmid);
	snprintf(restart, sizeof(restart), "%lu", vm->ha.max_restart);
	snprintf(relocate, sizeof(relocate), "%lu", vm->ha.max_relocate);
	if (!in->ha) {
		a = plan_add(p, PLAN_REQUEST, PLAN_CREATE, object, "POST", "/cluster/ha/resources");
		plan_summary(p, a, "add HA resource '%s'", sid);
		plan_param(p, a, "sid", sid, 0);
	} else {
		a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "PUT", "/cluster/ha/resources/%s",
			     sid);
		plan_summary(p, a, "update HA resource '%s'", sid);
	}
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const char *cur = in->ha ? hw_conf_str(in->ha, opts[i].key, num, sizeof(num))
					 : NULL;

		if (opts[i].want && (!cur || strcmp(cur, opts[i].want)))
			plan_set(p, a, opts[i].key, cur, opts[i].want, 0);
	}
	if (a && in->ha && a->n_params == 0)
		plan_drop(p, a);
}

/* A VM whose config no longer has `ha` leaves HA, when the record says this tool put it there
 * (a resource someone added by hand is theirs: a note). Before the config request, which
 * drops the record's line: a failed removal is tried again by the next run. */
static void deploy_plan_ha_removal(const struct deploy_vm_input *in, struct plan *p,
				   const char *object)
{
	const char *desc = json_string_value(json_object_get(in->conf, "description"));
	struct plan_action *a;
	char sid[32];

	if (in->vm->has_ha || !in->dst || !in->ha_managed)
		return;
	snprintf(sid, sizeof(sid), "vm:%lu", in->vm->vmid);
	if (!deploy_description_ha(desc, sid)) {
		plan_note(p, object,
			  "HA resource '%s' kept: not added by this tool (give the VM 'ha' to "
			  "manage it here)",
			  sid);
		return;
	}
	/* pve-ha-manager API2/HA/Resources.pm delete */
	a = plan_add(p, PLAN_REQUEST, PLAN_DESTROY, object, "DELETE", "/cluster/ha/resources/%s",
		     sid);
	plan_summary(p, a, "remove HA resource '%s' (no 'ha' in the config)", sid);
	plan_change(p, a, "sid", sid, NULL, false);
}

static char *deploy_fmt(struct plan *p, const char *fmt, unsigned long v)
{
	char *s;

	if (asprintf(&s, fmt, v) < 0) {
		p->oom = true;
		return NULL;
	}
	return s;
}

int deploy_plan_vm(const struct deploy_vm_input *in, struct plan *p,
		   struct deploy_plan_info *ret_info, struct phx_err *err)
{
	const struct cfg_vm *vm = in->vm;
	const json_t *conf = in->conf;
	const bool converge = in->dst != NULL;
	struct deploy_plan_info info = {false, false};
	struct plan_action *cfg_act, *a;
	char object[192], old_sha[CRYPTO_SHA256_HEX_LEN + 1] = "", old_seed[256] = "";
	char ha_sid[32];
	char mac[DEPLOY_MAC_LEN + 1], *net0 = NULL, *tags = NULL, *desc = NULL, *s;
	const char *disk, *node = in->node;
	const char **want = NULL;
	bool tags_changed = false;
	size_t first_created;
	int rc = -1;

	snprintf(object, sizeof(object), "VM %lu '%s'", vm->vmid, vm->name);
	deploy_description_seed(json_string_value(json_object_get(conf, "description")), old_sha);
	if (!converge)
		deploy_plan_clone(in, p, object);
	first_created = p->n;

	/* ISO mode: the seed goes up before the config that attaches it */
	if (in->seed_volid && !in->seed_present) {
		a = plan_add(p, PLAN_UPLOAD, PLAN_CREATE, object, "POST",
			     "/nodes/%s/storage/%s/upload", node, in->seed_storage);
		plan_summary(p, a, "upload cloud-init seed '%s'", in->seed_volid);
		plan_param(p, a, "content", "iso", 0);
		plan_param(p, a, "checksum-algorithm", "sha256", 0);
		plan_param(p, a, "checksum", in->seed_sha, 0);
		plan_upload_file(p, a, in->seed_file, strchr(in->seed_volid, '/') + 1);
		plan_undo_volume(p, a, node, in->seed_volid);
	}
	/* the snippet is part of the native seed's hash: written when that changed or the file
	 * is gone, so a converged VM plans nothing */
	if (in->snippet_path && (!in->snippet_exists || strcmp(old_sha, in->seed_sha))) {
		a = plan_add(p, PLAN_WRITE_FILE, in->snippet_exists ? PLAN_CHANGE : PLAN_CREATE,
			     object, NULL, "%s", in->snippet_path);
		plan_summary(p, a, "write cloud-init user-data snippet '%s'", in->snippet_path);
		plan_file_data(p, a, in->snippet, in->snippet_len);
		if (!in->snippet_exists)
			plan_undo_file(p, a, in->snippet_path);
	}

	deploy_plan_ha_removal(in, p, object);
	cfg_act = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "POST",
			   "/nodes/%s/qemu/%lu/config", node, vm->vmid);
	plan_summary(p, cfg_act, "configure VM %lu", vm->vmid);
	if (vm->n_nics) {
		if (deploy_plan_nics(in, p, cfg_act, object, err) < 0)
			goto out;
	} else {
		if (deploy_net_rebridge(json_string_value(json_object_get(conf, "net0")),
					vm->network.bridge, converge ? NULL : in->mac, &net0, mac,
					err) < 0)
			goto out;
		deploy_set_if(p, cfg_act, conf, "net0", net0, 0);
	}
	if (vm->cores && (s = deploy_fmt(p, "%lu", vm->cores))) {
		info.hw_changed |= deploy_set_if(p, cfg_act, conf, "cores", s, 0);
		free(s);
	}
	if (vm->memory_mb && (s = deploy_fmt(p, "%lu", vm->memory_mb))) {
		info.hw_changed |= deploy_set_if(p, cfg_act, conf, "memory", s, 0);
		free(s);
	}
	info.hw_changed |= hw_plan_config(&vm->mach, vm->storage, conf, !converge, object, p,
					  cfg_act);
	info.hw_changed |= hw_plan_disks(&vm->mach, deploy_system_disk(conf), conf, !converge,
					 object, p, cfg_act);
	if (converge)
		hw_plan_disk_removal(&vm->mach, deploy_system_disk(conf), conf,
				     in->allow_disk_removal, node, vm->vmid, object, p, cfg_act);
	deploy_plan_lifecycle(vm, conf, p, cfg_act);
	if (!deploy_agent_enabled(conf))
		plan_set(p, cfg_act, "agent", json_string_value(json_object_get(conf, "agent")),
			 "enabled=1", 0);
	want = calloc(vm->tags.n + 1, sizeof(*want));
	if (!want) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	want[0] = SERIES_TAG_OURS;
	for (size_t i = 0; i < vm->tags.n; i++)
		want[i + 1] = vm->tags.items[i];
	/* a new clone inherits the template's series tags: start from ours only */
	if (deploy_tags_merge(converge ? in->dst->tags : NULL, want, vm->tags.n + 1, &tags,
			      &tags_changed, err) < 0)
		goto out;
	if (tags_changed || !converge)
		plan_set(p, cfg_act, "tags", json_string_value(json_object_get(conf, "tags")), tags,
			 0);

	if (in->seed_volid)
		deploy_plan_seed_iso(in, p, cfg_act, object, old_seed, sizeof(old_seed),
				     &info.seed_changed);
	else
		deploy_plan_seed_native(in, p, cfg_act, old_sha, &info.seed_changed);
	snprintf(ha_sid, sizeof(ha_sid), "vm:%lu", vm->vmid);
	if (!(desc = deploy_description_keep(
		      json_string_value(json_object_get(conf, "description")), vm->description,
		      vm->config_id, vm->name, in->seed_sha, vm->has_ha ? ha_sid : NULL, err)))
		goto out;
	deploy_set_if(p, cfg_act, conf, "description", desc, 0);
	if (cfg_act && cfg_act->n_params == 0)
		plan_drop(p, cfg_act); /* nothing to configure */
	if (converge && p->n > first_created) {
		/* the new seed is part of the VM once configured, and a seed or snippet the VM
		 * already names (re-created because it had gone) is part of it at once: a later
		 * failure must not delete either */
		p->actions[p->n - 1]->flags |= PLAN_COMMIT_AFTER;
	}

	if (old_seed[0] && strcmp(old_seed, in->seed_volid)) {
		char storage[128], *esc = plan_escape(p, old_seed);

		snprintf(storage, sizeof(storage), "%.*s", (int)strcspn(old_seed, ":"), old_seed);
		a = plan_add(p, PLAN_REQUEST, PLAN_DESTROY, object, "DELETE",
			     "/nodes/%s/storage/%s/content/%s", node, storage, esc ? esc : "");
		free(esc);
		plan_summary(p, a, "delete the previous seed '%s'", old_seed);
		if (a)
			a->flags |= PLAN_BEST_EFFORT;
	}

	/* grow the disk: only after the clone task is OK (apply waits for it), never shrink */
	disk = deploy_system_disk(conf);
	if (vm->disk_size_gb) {
		uint64_t cur = 0, want_b = (uint64_t)vm->disk_size_gb << 30;
		char cur_s[32], want_s[32];

		if (!disk) {
			phx_err_set(err, PHX_E_API,
				    "the VM has no system disk (scsi0/virtio0/...) "
				    "to resize");
			goto out;
		}
		if (deploy_drive_size(json_string_value(json_object_get(conf, disk)), &cur, err) <
		    0)
			goto out;
		snprintf(cur_s, sizeof(cur_s), "%" PRIu64 "G", cur >> 30);
		snprintf(want_s, sizeof(want_s), "%luG", vm->disk_size_gb);
		if (cur < want_b) {
			a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "PUT",
				     "/nodes/%s/qemu/%lu/resize", node, vm->vmid);
			plan_summary(p, a, "grow %s to %s", disk, want_s);
			plan_param(p, a, "disk", disk, 0);
			plan_param(p, a, "size", want_s, 0);
			plan_change(p, a, "size", cur_s, want_s, false);
			info.hw_changed = true;
		} else if (cur > want_b) {
			plan_note(p, object,
				  "%s is %s, larger than disk_size_gb %lu: not shrinking", disk,
				  cur_s, vm->disk_size_gb);
		}
	}
	hw_plan_disk_growth(&vm->mach, conf, node, vm->vmid, object, p);
	if (!in->running && !vm->no_start) {
		a = plan_add(p, PLAN_REQUEST, PLAN_RUN, object, "POST",
			     "/nodes/%s/qemu/%lu/status/start", node, vm->vmid);
		plan_summary(p, a, "start");
	} else if (!in->running) {
		plan_note(p, object, "start false: not started, its guest agent is not awaited");
	}
	deploy_plan_ha(in, p, object);
	if (plan_check(p, err) < 0)
		goto out;
	*ret_info = info;
	rc = 0;
out:
	free(want);
	free(net0);
	free(tags);
	free(desc);
	return rc;
}

/* ---- what the plan needs of the token ---- */

static struct pf_need *deploy_need_at(struct pf_need *needs, size_t max, size_t *n,
				      const char *path)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(needs[i].path, path))
			return &needs[i];
	if (*n == max)
		return NULL;
	memset(&needs[*n], 0, sizeof(needs[*n]));
	snprintf(needs[*n].path, sizeof(needs[*n].path), "%s", path);
	return &needs[(*n)++];
}

void deploy_need(struct pf_need *needs, size_t max, size_t *n, const char *path,
		 const char *priv)
{
	struct pf_need *need = deploy_need_at(needs, max, n, path);

	if (need)
		pf_need_add(need, priv);
}

static bool deploy_is_drive_key(const char *key)
{
	static const char *const buses[] = {"ide", "sata", "scsi", "virtio"};

	if (!strcmp(key, "efidisk0") || !strcmp(key, "tpmstate0"))
		return true;
	for (size_t i = 0; i < sizeof(buses) / sizeof(buses[0]); i++) {
		size_t l = strlen(buses[i]);

		if (!strncmp(key, buses[i], l) && key[l] &&
		    strspn(key + l, "0123456789") == strlen(key + l))
			return true;
	}
	return false;
}

/* The privilege a drive value needs (qemu-server API2/Qemu.pm $check_drive_perms). */
static const char *deploy_drive_priv(const char *drive)
{
	if (deploy_drive_is_cloudinit(drive))
		return "VM.Config.Cloudinit";
	return deploy_drive_is_cdrom(drive) ? "VM.Config.CDROM" : "VM.Config.Disk";
}

/* SDN.Use for the NIC value `net` ("virtio=MAC,bridge=vmbr0,tag=10,...") of key netN:
 * qemu-server check_bridge_access, pve-guest-common check_vnet_access (bridge and tag). */
static void deploy_net_needs(const char *net, const json_t *vnets, struct pf_need *needs,
			     size_t max, size_t *n)
{
	char bridge[64] = "", path[300];
	unsigned tag = 0;

	for (const char *s = net; s && *s; s += strcspn(s, ","), s += *s == ',') {
		if (!strncmp(s, "bridge=", 7))
			snprintf(bridge, sizeof(bridge), "%.*s", (int)strcspn(s + 7, ","), s + 7);
		else if (!strncmp(s, "tag=", 4))
			tag = (unsigned)strtoul(s + 4, NULL, 10);
	}
	if (!bridge[0])
		return;
	pf_vnet_acl_path(vnets, bridge, tag, path, sizeof(path));
	deploy_need(needs, max, n, path, "SDN.Use");
}

static bool deploy_is_net_key(const char *key)
{
	return !strncmp(key, "net", 3) && key[3] && strspn(key + 3, "0123456789") == strlen(key + 3);
}

/* Per config option: qemu-server API2/Qemu.pm $check_vm_modify_config_perm. Cloud-init
 * options need VM.Config.Cloudinit *or* VM.Config.Network there; Network is needed for
 * net0 anyway, so it stands for both. */
static void deploy_config_needs(const struct plan_action *a, const char *vm_path,
				const json_t *vnets, struct pf_need *needs, size_t max, size_t *n)
{
	static const struct {
		const char *key, *priv;
	} opts[] = {
		{"cores", "VM.Config.CPU"},	      {"memory", "VM.Config.Memory"},
		{"agent", "VM.Config.Options"},	      {"tags", "VM.Config.Options"},
		{"description", "VM.Config.Options"}, {"ciuser", "VM.Config.Network"},
		{"cipassword", "VM.Config.Network"},  {"sshkeys", "VM.Config.Network"},
		{"cicustom", "VM.Config.Network"},    {"ipconfig0", "VM.Config.Network"},
		{"nameserver", "VM.Config.Network"},  {"searchdomain", "VM.Config.Network"},
		{"cpu", "VM.Config.CPU"},	      {"sockets", "VM.Config.CPU"},
		{"numa", "VM.Config.CPU"},	      {"balloon", "VM.Config.Memory"},
		{"machine", "VM.Config.HWType"},      {"tpmstate0", "VM.Config.HWType"},
		{"bios", "VM.Config.Options"},	      {"onboot", "VM.Config.Options"},
		{"startup", "VM.Config.Options"},     {"protection", "VM.Config.Options"},
	};

	for (size_t i = 0; i < a->n_params; i++)
		for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
			if (!strcmp(a->params[i].key, opts[k].key))
				deploy_need(needs, max, n, vm_path, opts[k].priv);
	for (size_t i = 0; i < a->n_params; i++) {
		if (!deploy_is_net_key(a->params[i].key))
			continue;
		deploy_need(needs, max, n, vm_path, "VM.Config.Network");
		/* every NIC the request sets, each on its bridge and VLAN */
		deploy_net_needs(a->params[i].value, vnets, needs, max, n);
	}
	/* qemu-server API2/Qemu.pm $check_vm_modify_config_perm: startup also needs Sys.Modify
	 * on / */
	if (plan_param_get(a, "startup"))
		deploy_need(needs, max, n, "/", "Sys.Modify");
	/* drives set or removed: the kind of the old and of the new value counts */
	for (size_t i = 0; i < a->n_changes; i++) {
		const struct plan_change *c = &a->changes[i];

		if (!strncmp(c->key, "unused", 6) && c->old) {
			/* qemu-server update_vm_api: VM.Config.Disk, and try_deallocate_drive's
			 * Datastore.AllocateSpace on the volume's storage */
			char path[160];

			deploy_need(needs, max, n, vm_path, "VM.Config.Disk");
			snprintf(path, sizeof(path), "/storage/%.*s", (int)strcspn(c->old, ":"),
				 c->old);
			deploy_need(needs, max, n, path, "Datastore.AllocateSpace");
		}
		if (!deploy_is_drive_key(c->key))
			continue;
		if (c->old)
			deploy_need(needs, max, n, vm_path, deploy_drive_priv(c->old));
		if (c->new)
			deploy_need(needs, max, n, vm_path, deploy_drive_priv(c->new));
		if (c->new && !c->old && !deploy_drive_is_cdrom(c->new) &&
		    !deploy_drive_is_cloudinit(c->new)) {
			/* a new volume: qemu-server API2/Qemu.pm $check_storage_access */
			char path[160];

			snprintf(path, sizeof(path), "/storage/%.*s", (int)strcspn(c->new, ":"),
				 c->new);
			deploy_need(needs, max, n, path, "Datastore.AllocateSpace");
		}
	}
}

size_t deploy_plan_needs(const struct plan *p, const struct deploy_vm_input *in,
			 const json_t *vnets, const char *agent_priv, struct pf_need *needs,
			 size_t max)
{
	const struct cfg_vm *vm = in->vm;
	char vm_path[64], path[300];
	size_t n = 0;

	snprintf(vm_path, sizeof(vm_path), "/vms/%lu", vm->vmid);
	for (size_t i = 0; i < p->n; i++) {
		const struct plan_action *a = p->actions[i];

		if (a->kind == PLAN_UPLOAD ||
		    (a->method && !strcmp(a->method, "DELETE") && strstr(a->path, "/content/"))) {
			/* ISOs: pve-storage API2/Storage/Status.pm upload, Content.pm delete; the
			 * storage is the path's ("/nodes/N/storage/S/...") */
			const char *st = strstr(a->path, "/storage/") + 9;

			snprintf(path, sizeof(path), "/storage/%.*s", (int)strcspn(st, "/"), st);
			deploy_need(needs, max, &n, path, "Datastore.AllocateTemplate");
		} else if (strstr(a->path, "/clone")) {
			/* qemu-server API2/Qemu.pm clone_vm */
			snprintf(path, sizeof(path), "/vms/%d", in->src->vmid);
			deploy_need(needs, max, &n, path, "VM.Clone");
			deploy_need(needs, max, &n, vm_path, "VM.Allocate");
			if (!strcmp(plan_param_get(a, "full"), "1")) {
				snprintf(path, sizeof(path), "/storage/%s", vm->storage);
				deploy_need(needs, max, &n, path, "Datastore.AllocateSpace");
			}
			/* clone_vm: check_bridge_access on the template's NICs */
			{
				const char *key;
				json_t *v;

				json_object_foreach((json_t *)in->conf, key, v)
					if (deploy_is_net_key(key) && json_is_string(v))
						deploy_net_needs(json_string_value(v), vnets, needs,
								 max, &n);
			}
		} else if (strstr(a->path, "/migrate")) {
			/* qemu-server API2/Qemu.pm migrate_vm, and the target storage */
			deploy_need(needs, max, &n, vm_path, "VM.Migrate");
			snprintf(path, sizeof(path), "/storage/%s", vm->storage);
			deploy_need(needs, max, &n, path, "Datastore.AllocateSpace");
		} else if (strstr(a->path, "/config")) {
			deploy_config_needs(a, vm_path, vnets, needs, max, &n);
		} else if (!strncmp(a->path, "/cluster/ha/", 12)) {
			/* pve-ha-manager API2/HA/Resources.pm create, update */
			deploy_need(needs, max, &n, "/", "Sys.Console");
		} else if (strstr(a->path, "/resize")) {
			deploy_need(needs, max, &n, vm_path, "VM.Config.Disk");
		} else if (strstr(a->path, "/status/")) {
			deploy_need(needs, max, &n, vm_path, "VM.PowerMgmt");
			/* after a start the agent must answer; a running VM's is only asked */
			deploy_need(needs, max, &n, vm_path, agent_priv);
		}
	}
	return n;
}
