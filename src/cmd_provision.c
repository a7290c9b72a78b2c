/* cmd_provision: --provision-template, Flow 1 of DESIGN.md. For each selected template:
 * preflight (PVE version, storages, privileges), then either "up to date" (ours and nothing
 * asked for a rebuild) or download -> customize a copy -> upload as an import volume -> create
 * the VM with import-from -> grow the disk -> convert to a template -> delete the import
 * volume. Everything created on the server is recorded in a transaction and removed again
 * when a later step fails. Prints one result per template (text, or one JSON object per line).
 * --validate then boots a throwaway clone (provision_validate.c) and tags the template
 * `validated` only when the guest agent, cloud-init and sshd all answered. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cmd.h"
#include "config.h"
#include "crypto.h"
#include "customize.h"
#include "fsutil.h"
#include "http.h"
#include "image.h"
#include "log.h"
#include "progress.h"
#include "provision.h"
#include "pve.h"
#include "series.h"
#include "session.h"
#include "txn.h"

/* Proxmox VE 8.4 is the first release whose API lets a token import an uploaded qcow2
 * (content=import uploads of .qcow2: pve-storage 8.3.6; NOTES.md §6, §13). */
#define PROV_MIN_MAJOR 8
#define PROV_MIN_MINOR 4

enum prov_phase { PH_DOWNLOAD, PH_CUSTOMIZE, PH_UPLOAD, PH_CREATE, PH_TEMPLATE, PH_COUNT };
static const char *const prov_phase_names[PH_COUNT] = {"download", "customize", "upload", "create",
						       "template"};

struct prov_result {
	const struct cfg_template *t;
	unsigned long vmid;
	char *name; /* owned */
	char sha256[CRYPTO_SHA256_HEX_LEN + 1];
	bool changed;
	bool validated;
	double phase_s[PH_COUNT];
};

struct prov_ctx {
	struct session *s;
	struct txn *txn;
	struct pve_vm_list vms; /* cluster guests at the start of this template's build */
	struct cust_plan *plan; /* for the template being built */
};

/* ---- undo actions ---- */

struct prov_vm_ref {
	char *node;
	char *name; /* the name this run gave it */
	int vmid;
};

static void prov_vm_ref_free(void *arg)
{
	struct prov_vm_ref *r = arg;

	if (r) {
		free(r->node);
		free(r->name);
	}
	free(r);
}

/* Removes the VM this run created, and only that one: if someone else took the VMID while
 * the image was being prepared, our create failed and the VM there is theirs. */
static int prov_undo_vm(void *ctx, void *arg, struct phx_err *err)
{
	struct prov_ctx *p = ctx;
	struct prov_vm_ref *r = arg;
	json_t *config = NULL;
	const char *name;
	bool exists = false, ours;

	/* a create task that failed has already removed its VM (qemu-server create_vm) */
	if (pve_vm_exists(p->s->pve, r->vmid, &exists, NULL, err) < 0)
		return -1;
	if (!exists)
		return 0;
	if (pve_vm_config_get(p->s->pve, r->node, r->vmid, &config, err) < 0)
		return -1;
	name = json_string_value(json_object_get(config, "name"));
	ours = name && !strcmp(name, r->name) &&
	       series_has_tag(json_string_value(json_object_get(config, "tags")), SERIES_TAG_OURS);
	json_decref(config);
	if (!ours)
		return phx_err_set(err, PHX_E_CONFLICT,
				   "VM %d is not the one this run created (name or tags differ); "
				   "left alone",
				   r->vmid);
	return pve_vm_destroy(p->s->pve, r->node, r->vmid,
			      PVE_DESTROY_PURGE | PVE_DESTROY_UNREFERENCED_DISKS,
			      session_task_timeout(p->s), err);
}

static const struct txn_action prov_vm_action = {prov_undo_vm, prov_vm_ref_free};

struct prov_vol_ref {
	char *node;
	char *volid;
};

static void prov_vol_ref_free(void *arg)
{
	struct prov_vol_ref *r = arg;

	if (r) {
		free(r->node);
		free(r->volid);
	}
	free(r);
}

static int prov_undo_volume(void *ctx, void *arg, struct phx_err *err)
{
	struct prov_ctx *p = ctx;
	struct prov_vol_ref *r = arg;
	struct pve_volume_list l = {0};
	size_t colon = strcspn(r->volid, ":");
	char storage[128];
	bool there = false;

	/* recorded before the upload: the file may never have arrived */
	snprintf(storage, sizeof(storage), "%.*s", (int)colon, r->volid);
	if (pve_storage_content(p->s->pve, r->node, storage, "import", &l, err) < 0)
		return -1;
	for (size_t i = 0; i < l.n && !there; i++)
		there = !strcmp(l.items[i].volid, r->volid);
	pve_volume_list_release(&l);
	if (!there)
		return 0;
	return pve_storage_content_delete(p->s->pve, r->node, r->volid, session_task_timeout(p->s),
					  err);
}

static const struct txn_action prov_volume_action = {prov_undo_volume, prov_vol_ref_free};

/* ---- preflight ---- */

struct prov_priv_check {
	char path[300];
	const char *privs[12];
	size_t n;
};

static void prov_priv_add(struct prov_priv_check *c, const char *priv)
{
	if (c->n < sizeof(c->privs) / sizeof(c->privs[0]))
		c->privs[c->n++] = priv;
}

/* Every privilege the build (and --validate) needs, checked up front so a token that lacks
 * several learns all of them at once instead of one per failed run (NOTES.md §3 table). */
static int prov_check_privileges(struct session *s, const struct cfg_template *t,
				 const struct pve_version *v, struct phx_err *err)
{
	struct prov_priv_check checks[5] = {
		{"/vms",
		 {"VM.Allocate", "VM.Config.Disk", "VM.Config.CPU", "VM.Config.Memory",
		  "VM.Config.Network", "VM.Config.Options", "VM.Config.HWType",
		  "VM.Config.Cloudinit", "VM.Audit"},
		 9},
		{"", {"Datastore.AllocateTemplate", "Datastore.Allocate", "Datastore.Audit"}, 3},
		{"", {"Datastore.AllocateSpace"}, 1},
		{"", {"SDN.Use"}, 1},
		{"", {"Datastore.AllocateTemplate", "Datastore.Allocate"}, 2},
	};
	size_t n_checks = 4;
	char missing[PHX_ERR_MSG_MAX] = "";
	size_t used = 0;

	snprintf(checks[1].path, sizeof(checks[1].path), "/storage/%s",
		 s->cfg->defaults.import_storage);
	snprintf(checks[2].path, sizeof(checks[2].path), "/storage/%s", t->hardware.storage);
	/* net0 on a bridge needs SDN.Use on its local zone (pve-guest-common check_vnet_access) */
	snprintf(checks[3].path, sizeof(checks[3].path), "/sdn/zones/localnetwork/%s",
		 t->hardware.bridge);
	if (s->opts->validate) {
		prov_priv_add(&checks[0], "VM.Clone");
		prov_priv_add(&checks[0], "VM.PowerMgmt");
		/* agent exec: its own privilege since PVE 9, VM.Monitor before */
		prov_priv_add(&checks[0],
			      v->major >= 9 ? "VM.GuestAgent.Unrestricted" : "VM.Monitor");
		snprintf(checks[4].path, sizeof(checks[4].path), "/storage/%s",
			 s->cfg->defaults.iso_storage);
		n_checks = 5;
	}
	for (size_t i = 0; i < n_checks; i++) {
		struct phx_err perr = PHX_ERR_INIT;

		if (pve_permissions_check(s->pve, checks[i].path, checks[i].privs, checks[i].n,
					  &perr) == 0)
			continue;
		if (perr.code != PHX_E_PERM) {
			phx_err_set(err, perr.code, "%s", perr.msg);
			return -1;
		}
		used += (size_t)snprintf(missing + used, sizeof(missing) - used, "%s%s",
					 used ? "; " : "", perr.msg);
		if (used >= sizeof(missing))
			break;
	}
	if (!used)
		return 0;
	return phx_err_set(err, PHX_E_PERM, "%s", missing);
}

static int prov_check_storage(struct session *s, const struct cfg_template *t, struct phx_err *err)
{
	struct pve_storage_list list = {0};
	const char *import = s->cfg->defaults.import_storage;
	bool import_ok = false, disk_ok = false, iso_ok = false;
	int rc = 0;

	if (pve_storage_list(s->pve, s->node, &list, err) < 0)
		return -1;
	for (size_t i = 0; i < list.n; i++) {
		const struct pve_storage_info *st = &list.items[i];

		if (!strcmp(st->storage, import)) {
			import_ok = series_has_tag(st->content, "import");
			if (!import_ok)
				rc = phx_err_set(
					err, PHX_E_RUNTIME,
					"storage '%s' on node '%s' does not allow content "
					"'import' (it has '%s'): add it with 'pvesm set %s "
					"--content %s,import'",
					import, s->node, st->content, import, st->content);
		}
		if (!strcmp(st->storage, t->hardware.storage))
			disk_ok = series_has_tag(st->content, "images");
		if (!strcmp(st->storage, s->cfg->defaults.iso_storage))
			iso_ok = series_has_tag(st->content, "iso");
	}
	if (rc == 0 && s->opts->validate && !iso_ok)
		rc = phx_err_set(err, PHX_E_RUNTIME,
				 "storage '%s' (defaults.iso_storage) on node '%s' does not take "
				 "content 'iso', which --validate needs for the test VM's seed",
				 s->cfg->defaults.iso_storage, s->node);
	if (rc == 0 && !import_ok)
		rc = phx_err_set(err, PHX_E_RUNTIME,
				 "storage '%s' (defaults.import_storage) is not available on node "
				 "'%s'",
				 import, s->node);
	if (rc == 0 && !disk_ok)
		rc = phx_err_set(
			err, PHX_E_RUNTIME,
			"storage '%s' (template '%s' hardware.storage) is not available on "
			"node '%s' for VM disks (content 'images')",
			t->hardware.storage, t->name, s->node);
	pve_storage_list_release(&list);
	return rc;
}

static int prov_preflight(struct session *s, const struct cfg_template *t, struct phx_err *err)
{
	struct pve_version v;

	if (pve_version_get(s->pve, &v, err) < 0)
		return -1;
	if (v.major < PROV_MIN_MAJOR || (v.major == PROV_MIN_MAJOR && v.minor < PROV_MIN_MINOR))
		return phx_err_set(err, PHX_E_RUNTIME,
				   "Proxmox VE %s is too old: building templates with an API token "
				   "needs %d.%d or later (import of uploaded qcow2 images)",
				   v.version, PROV_MIN_MAJOR, PROV_MIN_MINOR);
	log_debug("Proxmox VE %s", v.version);
	if (prov_check_privileges(s, t, &v, err) < 0)
		return -1;
	return prov_check_storage(s, t, err);
}

/* ---- customization plan from the config (local checks only, before any request) ---- */

static int prov_build_plan(const struct cfg_template *t, struct cust_plan **ret,
			   struct phx_err *err)
{
	const struct cfg_customize *c = &t->customize;
	struct cust_plan *plan = cust_plan_new(err);

	if (!plan)
		return -1;
	if (c->packages.n && cust_plan_add_packages(plan, (const char *const *)c->packages.items,
						    c->packages.n, err) < 0)
		goto fail;
	if (c->debs.n &&
	    cust_plan_add_debs(plan, (const char *const *)c->debs.items, c->debs.n, err) < 0)
		goto fail;
	if (c->enable_services.n &&
	    cust_plan_add_services(plan, (const char *const *)c->enable_services.items,
				   c->enable_services.n, err) < 0)
		goto fail;
	for (size_t i = 0; i < c->run.n; i++)
		if (cust_plan_add_run(plan, c->run.items[i], err) < 0)
			goto fail;
	for (size_t i = 0; i < c->n_files; i++) {
		const struct cfg_file *f = &c->files[i];
		int rc = f->content ? cust_plan_add_file_content(plan, f->path, f->mode, f->content,
								 strlen(f->content), err)
				    : cust_plan_add_file_source(plan, f->path, f->mode, f->source,
								err);
		if (rc < 0)
			goto fail;
	}
	if (c->timezone && cust_plan_add_timezone(plan, c->timezone, err) < 0)
		goto fail;
	*ret = plan;
	return 0;
fail:
	cust_plan_free(plan);
	return phx_err_wrap(err, "template '%s': customize", t->name);
}

/* ---- helpers over the cluster's guest list ---- */

static const struct pve_vm_info *prov_find_vm(const struct pve_vm_list *l, unsigned long vmid)
{
	for (size_t i = 0; i < l->n; i++)
		if ((unsigned long)l->items[i].vmid == vmid)
			return &l->items[i];
	return NULL;
}

static int prov_guests(const struct pve_vm_list *l, struct series_guest **ret, struct phx_err *err)
{
	struct series_guest *g = calloc(l->n ? l->n : 1, sizeof(*g));

	if (!g)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (size_t i = 0; i < l->n; i++)
		g[i] = (struct series_guest){(unsigned long)l->items[i].vmid, l->items[i].name,
					     l->items[i].tags, l->items[i].template};
	*ret = g;
	return 0;
}

/* The source sha256 recorded in a template's description by an earlier build. */
static int prov_recorded_sha256(struct session *s, const struct pve_vm_info *vm,
				char ret[CRYPTO_SHA256_HEX_LEN + 1], struct phx_err *err)
{
	json_t *config = NULL;
	const char *desc, *p;

	if (pve_vm_config_get(s->pve, vm->node, vm->vmid, &config, err) < 0)
		return -1;
	desc = json_string_value(json_object_get(config, "description"));
	p = desc ? strstr(desc, "sha256: ") : NULL;
	if (p && strspn(p + 8, "0123456789abcdef") >= CRYPTO_SHA256_HEX_LEN) {
		memcpy(ret, p + 8, CRYPTO_SHA256_HEX_LEN);
		ret[CRYPTO_SHA256_HEX_LEN] = '\0';
	} else {
		ret[0] = '\0';
	}
	json_decref(config);
	return 0;
}

/* ---- the build ---- */

static int prov_fetch(struct session *s, const struct cfg_template *t, struct img_result *ret,
		      struct phx_err *err)
{
	struct http_client_opts ho = {.connect_timeout_s =
					      (long)s->cfg->proxmox.timeouts.connect_s};
	struct img_fetch_opts io = {
		.image_url = t->image_url,
		.checksum_url = t->checksum_url,
		.sha256 = t->sha256,
		.cache_dir = getenv("PHX_CACHE_DIR"),
		.progress = log_is_tty(),
	};
	struct http_client *http = http_client_new(&ho, err);
	int rc;

	if (!http)
		return -1;
	rc = img_fetch(http, &io, ret, err);
	http_client_free(http);
	return rc;
}

static char *prov_description(const struct cfg_template *t, const char *name, const char *sha256,
			      const char *custom_sha256)
{
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	char *d;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (asprintf(&d,
		     "Built by phoenix-orchestrator %s; do not edit the lines below.\n"
		     "template: %s\nname: %s\nsource: %s\nsha256: %s\ncustomized-sha256: %s\n"
		     "built: %s\n",
		     cli_version(), t->name, name, t->image_url, sha256, custom_sha256, when) < 0)
		return NULL;
	return d;
}

static int prov_tags(const struct cfg_template *t, char *ret, size_t len, struct phx_err *err)
{
	char series[128];
	size_t used;

	if (series_tag(t->name, series, sizeof(series), err) < 0)
		return -1;
	used = (size_t)snprintf(ret, len, "%s;%s", SERIES_TAG_OURS, series);
	if (t->os && used < len)
		used += (size_t)snprintf(ret + used, len - used, ";os-%s", t->os);
	for (size_t i = 0; i < t->tags.n && used < len; i++)
		used += (size_t)snprintf(ret + used, len - used, ";%s", t->tags.items[i]);
	if (used >= len)
		return phx_err_set(err, PHX_E_INPUT, "template '%s': too many tags", t->name);
	return 0;
}

/* Size in bytes of the `size=` option of a drive property string ("...,size=10G"). */
static uint64_t prov_drive_size(const char *drive)
{
	const char *p = drive ? strstr(drive, "size=") : NULL;
	char *end;
	double v;

	if (!p)
		return 0;
	v = strtod(p + 5, &end);
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
	return (uint64_t)v;
}

static int prov_grow_disk(struct prov_ctx *p, const struct cfg_template *t, int vmid,
			  struct phx_err *err)
{
	json_t *config = NULL;
	uint64_t want = (uint64_t)t->hardware.disk_size_gb << 30, have;
	char size[32];

	if (!t->hardware.disk_size_gb)
		return 0;
	if (pve_client_dry_run(p->s->pve)) {
		snprintf(size, sizeof(size), "%luG", t->hardware.disk_size_gb);
		return pve_vm_resize(p->s->pve, p->s->node, vmid, "scsi0", size,
				     session_task_timeout(p->s), err);
	}
	if (pve_vm_config_get(p->s->pve, p->s->node, vmid, &config, err) < 0)
		return -1;
	have = prov_drive_size(json_string_value(json_object_get(config, "scsi0")));
	json_decref(config);
	if (have >= want) {
		log_info("disk is %" PRIu64 " GiB, not smaller than hardware.disk_size_gb %lu",
			 have >> 30, t->hardware.disk_size_gb);
		return 0;
	}
	snprintf(size, sizeof(size), "%luG", t->hardware.disk_size_gb);
	return pve_vm_resize(p->s->pve, p->s->node, vmid, "scsi0", size, session_task_timeout(p->s),
			     err);
}

/* Feeds one length-prefixed field into the customization key. */
static int prov_key_add(struct crypto_sha256 *h, const char *tag, const char *value,
			struct phx_err *err)
{
	char head[64];

	snprintf(head, sizeof(head), "%s:%zu:", tag, strlen(value));
	if (crypto_sha256_update(h, head, strlen(head), err) < 0)
		return -1;
	return crypto_sha256_update(h, value, strlen(value), err);
}

static int prov_key_add_file(struct crypto_sha256 *h, const char *tag, const char *path,
			     struct phx_err *err)
{
	char hex[CRYPTO_SHA256_HEX_LEN + 1];

	if (crypto_sha256_file(path, hex, err) < 0 || prov_key_add(h, tag, path, err) < 0)
		return -1;
	return prov_key_add(h, "sha256", hex, err);
}

/* Identifies a customization result: the source image, this tool's version and every input
 * of the plan (file contents included). A build that failed after customizing, or a second
 * template with the same recipe, reuses the result instead of paying another appliance run. */
static int prov_customize_key(const struct cfg_template *t, const char *source_sha256,
			      char ret[CRYPTO_SHA256_HEX_LEN + 1], struct phx_err *err)
{
	const struct cfg_customize *c = &t->customize;
	struct crypto_sha256 *h = crypto_sha256_new(err);
	char mode[16];
	int rc = -1;

	if (!h)
		return -1;
	if (prov_key_add(h, "v1", cli_version(), err) < 0 ||
	    prov_key_add(h, "source", source_sha256, err) < 0)
		goto out;
	for (size_t i = 0; i < c->packages.n; i++)
		if (prov_key_add(h, "package", c->packages.items[i], err) < 0)
			goto out;
	for (size_t i = 0; i < c->debs.n; i++)
		if (prov_key_add_file(h, "deb", c->debs.items[i], err) < 0)
			goto out;
	for (size_t i = 0; i < c->enable_services.n; i++)
		if (prov_key_add(h, "service", c->enable_services.items[i], err) < 0)
			goto out;
	for (size_t i = 0; i < c->run.n; i++)
		if (prov_key_add(h, "run", c->run.items[i], err) < 0)
			goto out;
	for (size_t i = 0; i < c->n_files; i++) {
		const struct cfg_file *f = &c->files[i];

		snprintf(mode, sizeof(mode), "%04o", f->mode);
		if (prov_key_add(h, "file", f->path, err) < 0 ||
		    prov_key_add(h, "mode", mode, err) < 0 ||
		    (f->content ? prov_key_add(h, "content", f->content, err)
				: prov_key_add_file(h, "source", f->source, err)) < 0)
			goto out;
	}
	if (c->timezone && prov_key_add(h, "timezone", c->timezone, err) < 0)
		goto out;
	rc = crypto_sha256_final(h, ret, err);
out:
	crypto_sha256_free(h);
	return rc;
}

/* Removes work dirs a killed run left beside the cached image. The run lock is held, so no
 * other run of ours is customizing in this cache now. */
static void prov_remove_stale_work(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[4096];
		DIR *w;
		struct dirent *f;

		if (strncmp(e->d_name, ".work-", 6))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		w = opendir(path);
		while (w && (f = readdir(w))) {
			char file[4096 + 256];

			if (f->d_name[0] == '.')
				continue;
			snprintf(file, sizeof(file), "%s/%s", path, f->d_name);
			unlink(file);
		}
		if (w)
			closedir(w);
		if (rmdir(path) == 0)
			log_info("removed '%s', left by an interrupted run", path);
	}
	closedir(d);
}

/* Makes sure a customized copy of the cached image exists beside it and returns its path
 * (caller owns; free()). The copy is customized in a private work dir and renamed into place
 * only when every step succeeded, so a half-customized image is never reused. --rebuild
 * always customizes afresh (packages from the network may have changed). */
static int prov_customize(struct prov_ctx *p, const struct cfg_template *t,
			  const struct img_result *img, char **ret_path, struct phx_err *err)
{
	struct cust_opts co = CUST_OPTS_INIT;
	struct cust_report rep;
	char key[CRYPTO_SHA256_HEX_LEN + 1];
	char dir[4096], state_dir[4096], *work = NULL, *final = NULL;
	const char *slash = strrchr(img->path, '/');
	const int dirlen = slash ? (int)(slash - img->path) : 1;

	if (prov_customize_key(t, img->sha256, key, err) < 0)
		return phx_err_wrap(err, "customize '%s'", t->name);
	if (asprintf(&final, "%.*s/customized-%.16s.qcow2", dirlen, img->path, key) < 0)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (!p->s->opts->rebuild && fs_exists(final)) {
		log_info("reusing the customized image '%s' (same source and recipe)", final);
		*ret_path = final;
		return 0;
	}
	snprintf(dir, sizeof(dir), "%.*s", dirlen, img->path);
	prov_remove_stale_work(dir);
	snprintf(dir, sizeof(dir), "%.*s/.work-XXXXXX", dirlen, img->path);
	if (!mkdtemp(dir)) {
		free(final);
		return phx_err_set_errno(err, PHX_E_IO, errno, "create work directory '%s'", dir);
	}
	if (asprintf(&work, "%s/%s.qcow2", dir, t->name) < 0) {
		work = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto fail;
	}
	/* the KVM verdict is kept per host boot in the cache, so cron runs probe once too */
	snprintf(state_dir, sizeof(state_dir), "%.*s", dirlen, img->path);
	if (strrchr(state_dir, '/'))
		*strrchr(state_dir, '/') = '\0';
	co.state_dir = state_dir;
	if (cust_prepare_copy(img->path, work, err) < 0 ||
	    cust_run(p->plan, work, &co, &rep, err) < 0) {
		phx_err_wrap(err, "customize '%s'", t->name);
		goto fail;
	}
	if (rename(work, final) < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "rename '%s' to '%s'", work, final);
		goto fail;
	}
	rmdir(dir);
	free(work);
	log_info("customized %s %s (%s, %zu steps) in %.1f s, appliance start %.1f s", rep.distro,
		 rep.version, rep.accel, rep.steps, rep.total_seconds, rep.launch_seconds);
	*ret_path = final;
	return 0;
fail:
	if (work)
		unlink(work);
	rmdir(dir);
	free(work);
	free(final);
	return -1;
}

static int prov_add_vol_undo(struct prov_ctx *p, const char *volid, struct phx_err *err)
{
	struct prov_vol_ref *r = calloc(1, sizeof(*r));
	char what[512];

	if (!r || !(r->node = strdup(p->s->node)) || !(r->volid = strdup(volid))) {
		prov_vol_ref_free(r);
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	snprintf(what, sizeof(what), "volume '%s'", volid);
	return txn_add_undo(p->txn, what, &prov_volume_action, r, err);
}

static int prov_add_vm_undo(struct prov_ctx *p, int vmid, const char *name, struct phx_err *err)
{
	struct prov_vm_ref *r = calloc(1, sizeof(*r));
	char what[128];

	if (!r || !(r->node = strdup(p->s->node)) || !(r->name = strdup(name))) {
		prov_vm_ref_free(r);
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	r->vmid = vmid;
	snprintf(what, sizeof(what), "VM %d on node '%s'", vmid, p->s->node);
	return txn_add_undo(p->txn, what, &prov_vm_action, r, err);
}

/* Upload, create, grow, template: the part that changes the server. */
static int prov_build_on_server(struct prov_ctx *p, const struct cfg_template *t,
				struct prov_result *res, const char *disk_path,
				const char *source_sha256, struct phx_err *err)
{
	struct session *s = p->s;
	char custom_sha[CRYPTO_SHA256_HEX_LEN + 1] = "dry-run";
	char filename[256], scsi0[600], net0[128], cores[16], memory[24], vmid[16], tags[1024];
	char *volid = NULL, *desc = NULL;
	double t0;
	int rc = -1;

	t0 = clk_now();
	if (!pve_client_dry_run(s->pve) && crypto_sha256_file(disk_path, custom_sha, err) < 0)
		return -1;
	snprintf(filename, sizeof(filename), "phoenix-%s-%.12s.qcow2", t->name, custom_sha);
	if (asprintf(&volid, "%s:import/%s", s->cfg->defaults.import_storage, filename) < 0) {
		volid = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	/* before the upload: a task wait that fails after the body arrived still cleans up */
	if (prov_add_vol_undo(p, volid, err) < 0)
		goto out;
	free(volid);
	volid = NULL;
	{
		struct prog_bar bar;
		struct http_progress prog = {prog_bar_update, &bar};
		int urc;

		prog_bar_init(&bar, filename);
		urc = pve_storage_upload(s->pve, s->node, s->cfg->defaults.import_storage, "import",
					 disk_path, filename, "sha256", custom_sha, &prog,
					 session_task_timeout(s), &volid, err);
		prog_bar_finish(&bar);
		if (urc < 0) {
			phx_err_wrap(err, "upload the customized image");
			goto out;
		}
	}
	res->phase_s[PH_UPLOAD] = clk_now() - t0;

	t0 = clk_now();
	desc = prov_description(t, res->name, source_sha256, custom_sha);
	if (!desc || prov_tags(t, tags, sizeof(tags), err) < 0) {
		if (!desc)
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	snprintf(scsi0, sizeof(scsi0), "%s:0,import-from=%s,discard=on", t->hardware.storage,
		 volid);
	snprintf(net0, sizeof(net0), "virtio,bridge=%s", t->hardware.bridge);
	snprintf(cores, sizeof(cores), "%u", t->hardware.cores);
	snprintf(memory, sizeof(memory), "%lu", t->hardware.memory_mb);
	snprintf(vmid, sizeof(vmid), "%lu", res->vmid);
	{
		const struct pve_param params[] = {
			{"vmid", vmid},
			{"name", res->name},
			{"scsihw", "virtio-scsi-single"},
			{"scsi0", scsi0},
			{"boot", "order=scsi0"},
			{"serial0", "socket"},
			{"vga", "serial0"},
			{"agent", "enabled=1"},
			{"ostype", "l26"},
			{"net0", net0},
			{"cores", cores},
			{"memory", memory},
			{"tags", tags},
			{"description", desc},
		};

		if (prov_add_vm_undo(p, (int)res->vmid, res->name, err) < 0)
			goto out;
		if (pve_vm_create(s->pve, s->node, params, sizeof(params) / sizeof(params[0]),
				  session_task_timeout(s), err) < 0) {
			phx_err_wrap(err, "create VM %lu from '%s'", res->vmid, volid);
			goto out;
		}
	}
	if (prov_grow_disk(p, t, (int)res->vmid, err) < 0) {
		phx_err_wrap(err, "grow the disk of VM %lu to %lu GiB", res->vmid,
			     t->hardware.disk_size_gb);
		goto out;
	}
	res->phase_s[PH_CREATE] = clk_now() - t0;

	t0 = clk_now();
	if (pve_vm_template(s->pve, s->node, (int)res->vmid, session_task_timeout(s), err) < 0) {
		phx_err_wrap(err, "convert VM %lu to a template", res->vmid);
		goto out;
	}
	res->phase_s[PH_TEMPLATE] = clk_now() - t0;
	rc = 0;
out:
	if (rc == 0) {
		struct phx_err derr = PHX_ERR_INIT;

		/* the template owns its disk now; the import volume is only clutter */
		if (pve_storage_content_delete(s->pve, s->node, volid, session_task_timeout(s),
					       &derr) < 0)
			log_warn("could not delete the import volume '%s': %s", volid, derr.msg);
	}
	free(volid);
	free(desc);
	return rc;
}

/* Decides whether template t needs a build: fills res->vmid/name for a new build and
 * returns 1, or prints nothing and returns 0 when the existing template is current. */
static int prov_decide(struct prov_ctx *p, const struct cfg_template *t, struct prov_result *res,
		       const char *source_sha256, struct phx_err *err)
{
	const struct cli_opts *o = p->s->opts;
	struct series_guest *guests = NULL;
	long newest;
	int rc = -1;

	if (!t->has_versions) {
		const struct pve_vm_info *vm = prov_find_vm(&p->vms, t->vmid);

		if (vm && !series_has_tag(vm->tags, SERIES_TAG_OURS))
			return phx_err_set(err, PHX_E_CONFLICT,
					   "VMID %lu exists ('%s' on node '%s') "
					   "and was not built by phoenix-orchestrator (no '%s' "
					   "tag); refusing to touch it",
					   t->vmid, vm->name, vm->node, SERIES_TAG_OURS);
		if (vm && !vm->template)
			return phx_err_set(err, PHX_E_CONFLICT,
					   "VM %lu is ours but not a template (an interrupted "
					   "build?): remove it with 'orchestrator --destroy %lu' and "
					   "run again",
					   t->vmid, t->vmid);
		if (vm) {
			res->vmid = t->vmid;
			return 0;
		}
		res->vmid = t->vmid;
		res->name = strdup(t->name);
		if (!res->name)
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		return 1;
	}
	if (prov_guests(&p->vms, &guests, err) < 0)
		return -1;
	newest = series_newest(t->name, guests, p->vms.n, false);
	if (newest >= 0) {
		res->vmid = guests[newest].vmid;
		free(res->name);
		res->name = strdup(guests[newest].name);
		if (!res->name) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		if (!o->rebuild && !source_sha256) {
			rc = 0;
			goto out;
		}
		if (!o->rebuild) {
			char recorded[CRYPTO_SHA256_HEX_LEN + 1];

			if (prov_recorded_sha256(p->s, &p->vms.items[newest], recorded, err) < 0)
				goto out;
			if (!strcmp(recorded, source_sha256)) {
				rc = 0;
				goto out;
			}
			log_info("template '%s': upstream image changed (%.12s -> %.12s)", t->name,
				 recorded[0] ? recorded : "unknown", source_sha256);
		}
	}
	/* a new version: the newest one's name was only for the "up to date" report */
	free(res->name);
	res->name = NULL;
	if (series_next_vmid(t->versions.vmid_min, t->versions.vmid_max, guests, p->vms.n,
			     &res->vmid, err) < 0 ||
	    series_next_name(t->name, time(NULL), guests, p->vms.n, &res->name, err) < 0)
		goto out;
	rc = 1;
out:
	free(guests);
	return rc;
}

/* --validate: the boot proof, then the `validated` tag. A template that already carries the
 * tag is not booted again. */
static int prov_validate_template(struct prov_ctx *p, struct prov_result *res, struct phx_err *err)
{
	struct session *s = p->s;
	const struct cfg *cfg = s->cfg;
	struct prov_validate_opts vo = {
		.node = s->node,
		.template_vmid = (int)res->vmid,
		.iso_storage = cfg->defaults.iso_storage,
		.task_timeout_s = session_task_timeout(s),
		.agent_timeout_s =
			(long)(cfg->defaults.agent_timeout_s ? cfg->defaults.agent_timeout_s
							     : cfg->proxmox.timeouts.agent_s),
	};
	json_t *config = NULL;
	const char *tags;
	char *newtags = NULL;
	int rc = -1;

	if (pve_client_dry_run(s->pve)) {
		/* the template may exist only in the printed plan */
		log_info("dry run: would boot a clone of template %lu to validate it", res->vmid);
		return 0;
	}
	if (pve_vm_config_get(s->pve, s->node, (int)res->vmid, &config, err) < 0)
		return -1;
	tags = json_string_value(json_object_get(config, "tags"));
	if (series_has_tag(tags, SERIES_TAG_VALIDATED)) {
		log_info("template %lu is already validated", res->vmid);
		res->validated = true;
		json_decref(config);
		return 0;
	}
	if (prov_validate(s->pve, &vo, err) < 0)
		goto out;
	if (asprintf(&newtags, "%s%s%s", tags ? tags : "", tags && *tags ? ";" : "",
		     SERIES_TAG_VALIDATED) < 0) {
		newtags = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	{
		const struct pve_param params[] = {{"tags", newtags}};

		if (pve_vm_config_set(s->pve, s->node, (int)res->vmid, params, 1,
				      session_task_timeout(s), err) < 0)
			goto out;
	}
	res->validated = true;
	log_info("template %lu validated: booted, cloud-init done, agent and sshd answer",
		 res->vmid);
	rc = 0;
out:
	free(newtags);
	json_decref(config);
	return rc;
}

static void prov_print(const struct session *s, const struct prov_result *r)
{
	if (s->opts->output == CLI_OUTPUT_JSON) {
		json_t *o = json_object(), *ph = json_object();

		for (int i = 0; i < PH_COUNT; i++)
			json_object_set_new(ph, prov_phase_names[i], json_real(r->phase_s[i]));
		json_object_set_new(o, "template_id", json_integer((json_int_t)r->vmid));
		json_object_set_new(o, "template_name",
				    json_string(r->name ? r->name : r->t->name));
		json_object_set_new(o, "config_template", json_string(r->t->name));
		json_object_set_new(o, "sha256",
				    r->sha256[0] ? json_string(r->sha256) : json_null());
		json_object_set_new(o, "changed", json_boolean(r->changed));
		json_object_set_new(o, "validated", json_boolean(r->validated));
		json_object_set_new(o, "phase_seconds", ph);
		{
			/* this process only: the libguestfs appliance is a child with its own RSS
			 */
			struct rusage ru;

			if (getrusage(RUSAGE_SELF, &ru) == 0)
				json_object_set_new(o, "peak_rss_kib", json_integer(ru.ru_maxrss));
		}
		json_dumpf(o, stdout, JSON_COMPACT | JSON_SORT_KEYS);
		fputc('\n', stdout);
		json_decref(o);
		return;
	}
	if (!r->changed) {
		printf("%s: up to date (template %lu)\n", r->t->name, r->vmid);
		return;
	}
	printf("%s: built template %lu '%s' from sha256 %.12s (download %.1f s, customize %.1f "
	       "s, upload %.1f s, create %.1f s, template %.1f s)\n",
	       r->t->name, r->vmid, r->name, r->sha256, r->phase_s[PH_DOWNLOAD],
	       r->phase_s[PH_CUSTOMIZE], r->phase_s[PH_UPLOAD], r->phase_s[PH_CREATE],
	       r->phase_s[PH_TEMPLATE]);
}

static int prov_one(struct prov_ctx *p, const struct cfg_template *t, struct prov_result *res,
		    struct phx_err *err)
{
	struct session *s = p->s;
	struct img_result img = IMG_RESULT_INIT;
	char *work = NULL;
	bool dry = pve_client_dry_run(s->pve);
	double t0;
	int decision, rc = -1;

	if (prov_preflight(s, t, err) < 0 || pve_cluster_vms(s->pve, &p->vms, err) < 0)
		goto out;
	/* existing fixed-VMID templates and plain version checks need no download at all */
	decision = prov_decide(p, t, res, NULL, err);
	if (decision < 0)
		goto out;
	if (decision == 0 && !(t->has_versions && t->versions.rebuild_on_change && res->vmid)) {
		rc = s->opts->validate ? prov_validate_template(p, res, err) : 0;
		goto out;
	}
	if (dry) {
		log_info("dry run: would download '%s', verify it and customize a copy in %zu "
			 "steps",
			 t->image_url, cust_plan_len(p->plan));
	} else {
		t0 = clk_now();
		if (prov_fetch(s, t, &img, err) < 0)
			goto out;
		res->phase_s[PH_DOWNLOAD] = clk_now() - t0;
		memcpy(res->sha256, img.sha256, sizeof(res->sha256));
	}
	if (decision == 0) {
		/* rebuild_on_change: build only when the upstream image differs */
		free(res->name);
		res->name = NULL;
		decision = prov_decide(p, t, res, dry ? "" : img.sha256, err);
		if (decision < 0)
			goto out;
		if (decision == 0) {
			rc = s->opts->validate ? prov_validate_template(p, res, err) : 0;
			goto out;
		}
	}
	if (!dry) {
		t0 = clk_now();
		if (prov_customize(p, t, &img, &work, err) < 0)
			goto out;
		res->phase_s[PH_CUSTOMIZE] = clk_now() - t0;
	}
	if (prov_build_on_server(p, t, res, dry ? "(customized image)" : work,
				 dry ? "(not downloaded in a dry run)" : img.sha256, err) < 0) {
		struct buf report = BUF_INIT;

		txn_rollback(p->txn, &report);
		if (report.len) {
			/* keep the root cause first; say what was cleaned up after it */
			size_t used;

			phx_err_wrap(err, "template '%s'", t->name);
			used = strlen(err->msg);
			used += (size_t)snprintf(err->msg + used, sizeof(err->msg) - used,
						 " (rolled back: ");
			for (char *line = report.data; *line && used < sizeof(err->msg);) {
				size_t n = strcspn(line, "\n");

				used += (size_t)snprintf(err->msg + used, sizeof(err->msg) - used,
							 "%s%.*s", line == report.data ? "" : "; ",
							 (int)n, line);
				line += n + (line[n] == '\n');
			}
			if (used < sizeof(err->msg))
				snprintf(err->msg + used, sizeof(err->msg) - used, ")");
			buf_release(&report);
			goto out_wrapped;
		}
		buf_release(&report);
		goto out;
	}
	txn_commit(p->txn);
	res->changed = true;
	/* a template that fails validation stays, untagged: it is complete, just unproven */
	rc = s->opts->validate ? prov_validate_template(p, res, err) : 0;
out:
	if (rc < 0)
		phx_err_wrap(err, "template '%s'", t->name);
out_wrapped:
	free(work);
	img_result_release(&img);
	pve_vm_list_release(&p->vms);
	return rc;
}

int cmd_provision(const struct cli_opts *opts, struct phx_err *err)
{
	struct session s;
	struct cust_plan **plans = NULL;
	const struct cfg_template **todo = NULL;
	size_t n = 0;
	int rc = -1;

	if (session_load(opts, &s, err) < 0)
		return -1;
	todo = calloc(s.cfg->n_templates + opts->n_names + 1, sizeof(*todo));
	plans = calloc(s.cfg->n_templates + opts->n_names + 1, sizeof(*plans));
	if (!todo || !plans) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	if (opts->n_names) {
		for (size_t i = 0; i < opts->n_names; i++) {
			todo[n] = cfg_find_template(s.cfg, opts->names[i]);
			if (!todo[n]) {
				phx_err_set(err, PHX_E_INPUT,
					    "%s: $.templates: no template named '%s'", s.cfg->path,
					    opts->names[i]);
				goto out;
			}
			n++;
		}
	} else {
		for (size_t i = 0; i < s.cfg->n_templates; i++)
			todo[n++] = &s.cfg->templates[i];
	}
	if (!n) {
		phx_err_set(err, PHX_E_INPUT, "%s: $.templates: no templates to provision",
			    s.cfg->path);
		goto out;
	}
	/* every local input is checked before the first request */
	for (size_t i = 0; i < n; i++) {
		if (opts->rebuild && !todo[i]->has_versions) {
			phx_err_set(err, PHX_E_INPUT,
				    "%s: $.templates: template '%s' has no 'versions': --rebuild "
				    "needs a version series, so the current template is kept "
				    "while a new one is built",
				    s.cfg->path, todo[i]->name);
			goto out;
		}
		if (prov_build_plan(todo[i], &plans[i], err) < 0)
			goto out;
	}
	if (session_connect(&s, true, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct prov_ctx p = {.s = &s, .plan = plans[i]};
		struct prov_result res = {.t = todo[i]};

		p.txn = txn_new(&p);
		if (!p.txn) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		rc = prov_one(&p, todo[i], &res, err);
		txn_free(p.txn);
		if (rc == 0)
			prov_print(&s, &res);
		free(res.name);
		if (rc < 0)
			goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; plans && i < n; i++)
		cust_plan_free(plans[i]);
	free(plans);
	free(todo);
	session_release(&s);
	return rc;
}
