/* cmd_provision: --provision-template, Flow 1 of DESIGN.md. For each selected template:
 * preflight (PVE version, storages, privileges), then either "up to date" (ours and nothing
 * asked for a rebuild) or download -> customize a copy -> upload as an import volume -> create
 * the VM with import-from -> grow the disk -> convert to a template -> delete the import
 * volume. Everything created on the server is recorded in a transaction and removed again
 * when a later step fails. Prints one result per template (text, or one JSON object per line).
 * --validate then boots a throwaway clone (provision_validate.c) and tags the template
 * `validated` only when the guest agent, cloud-init and sshd all answered (a container
 * template's clone: when it runs and its eth0 got an IPv4 address). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
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
#include "artifact.h"
#include "buf.h"
#include "fsutil.h"
#include "hardware.h"
#include "http.h"
#include "image.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "preflight.h"
#include "provision.h"
#include "pkglist.h"
#include "pve.h"
#include "pve_ct.h"
#include "record.h"
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
	const char *node; /* borrowed */
	unsigned long vmid;
	char *name; /* owned */
	char sha256[CRYPTO_SHA256_HEX_LEN + 1];
	bool changed;
	bool validated;
	double phase_s[PH_COUNT];
};

struct prov_ctx {
	struct session *s;
	size_t index; /* this node's place in the template's node list */
	struct pve_client *pve; /* this node's thread's client (the session's with one node) */
	/* the storage the build uploads to (import, or a container's vztmpl) is shared: all
	 * nodes see one copy */
	bool import_shared;
	struct txn *txn;
	struct pve_vm_list vms; /* cluster guests at the start of this template's build */
	struct cust_plan *plan; /* for the template being built */
	struct plan *dry;	/* --dry-run: the plan is collected here, nothing is sent */
	const char *node;	/* where this template is built: its `node`, else the default */
	struct prov_shared *sh; /* what every node of this template shares */
};

/* One build feeds every node of a template: the image is fetched and customized at most
 * once, and every node's new version gets the same name. Owned by cmd_provision_run. */
struct prov_shared {
	struct img_result img;
	bool fetched;
	char *work;	  /* the customized image, or NULL */
	char work_sha[CRYPTO_SHA256_HEX_LEN + 1]; /* its sha256, once work is set */
	char *build_name; /* the new version's name, once a node decided to build */
	bool per_node;	  /* several nodes: versions are counted on each node */
	/* the nodes' threads take turns to decide, fetch and customize: the first to need the
	 * image makes it while the others wait, then they upload and build in parallel */
	pthread_mutex_t mu;
	pthread_cond_t turn_cv;
	size_t turn; /* the node (index) whose turn it is: VMIDs go in node order */
	/* A shared import storage gets one upload for every node: the first node to build
	 * uploads it in its turn, under the template's own undo list, and the template removes
	 * it once every node has imported it. A container's archive on a shared vztmpl storage
	 * likewise, but the first node that makes its template from it commits that list (the
	 * archive stays: containers are made from it); when no node does, it is removed. Under
	 * mu once the nodes run side by side. */
	struct txn *import_txn;
	char import_node[64]; /* the node that uploaded it; "" until then */
	unsigned long taken[64]; /* VMIDs this run's nodes chose for the new version */
	size_t n_taken;
};

/* ---- preflight ---- */

/* Every privilege the build (and --validate) needs, checked up front so a token that lacks
 * several learns all of them at once instead of one per failed run (NOTES.md §3, §15). */
static int prov_check_privileges(struct session *s, struct pve_client *c,
				 const struct cfg_template *t,
				 const struct pve_version *v, struct phx_err *err)
{
	static const char *const vm_privs[] = {
		"VM.Allocate",	    "VM.Config.Disk",	   "VM.Config.CPU",
		"VM.Config.Memory", "VM.Config.Network",   "VM.Config.Options",
		"VM.Config.HWType", "VM.Config.Cloudinit", "VM.Audit"};
	struct pf_need needs[5];
	size_t n = 4;

	memset(needs, 0, sizeof(needs));
	snprintf(needs[0].path, sizeof(needs[0].path), "/vms");
	for (size_t i = 0; i < sizeof(vm_privs) / sizeof(vm_privs[0]); i++)
		pf_need_add(&needs[0], vm_privs[i]);
	snprintf(needs[1].path, sizeof(needs[1].path), "/storage/%s",
		 s->cfg->defaults.import_storage);
	pf_need_add(&needs[1], "Datastore.AllocateTemplate");
	pf_need_add(&needs[1], "Datastore.Allocate");
	pf_need_add(&needs[1], "Datastore.Audit");
	snprintf(needs[2].path, sizeof(needs[2].path), "/storage/%s", t->hardware.storage);
	pf_need_add(&needs[2], "Datastore.AllocateSpace");
	/* net0 on a bridge: SDN.Use on its zone (qemu-server check_bridge_access) */
	if (pf_bridge_acl_path(c, t->hardware.bridge, needs[3].path, sizeof(needs[3].path),
			       err) < 0)
		return -1;
	pf_need_add(&needs[3], "SDN.Use");
	if (s->opts->validate) {
		pf_need_add(&needs[0], "VM.Clone");
		pf_need_add(&needs[0], "VM.PowerMgmt");
		/* the test VM's seed is an ISO on ide2 (qemu-server $check_drive_perms) */
		pf_need_add(&needs[0], "VM.Config.CDROM");
		/* agent exec: its own privilege since PVE 9, VM.Monitor before */
		pf_need_add(&needs[0], v->major >= 9 ? "VM.GuestAgent.Unrestricted" : "VM.Monitor");
		snprintf(needs[4].path, sizeof(needs[4].path), "/storage/%s",
			 s->cfg->defaults.iso_storage);
		pf_need_add(&needs[4], "Datastore.AllocateTemplate");
		pf_need_add(&needs[4], "Datastore.Allocate");
		n = 5;
	}
	return pf_check_privileges(c, needs, n, err);
}

static int prov_check_storage(struct session *s, struct pve_client *c,
			      const struct cfg_template *t, const char *node, bool *ret_import_shared,
			      struct phx_err *err)
{
	struct pve_storage_list list = {0};
	const char *import = s->cfg->defaults.import_storage;
	bool import_ok = false, disk_ok = false, iso_ok = false;
	int rc = 0;

	if (pve_storage_list(c, node, &list, err) < 0)
		return -1;
	for (size_t i = 0; i < list.n; i++) {
		const struct pve_storage_info *st = &list.items[i];

		if (!strcmp(st->storage, import)) {
			import_ok = series_has_tag(st->content, "import");
			*ret_import_shared = st->shared;
			if (!import_ok)
				rc = phx_err_set(
					err, PHX_E_RUNTIME,
					"storage '%s' on node '%s' does not allow content "
					"'import' (it has '%s'): add it with 'pvesm set %s "
					"--content %s,import'",
					import, node, st->content, import, st->content);
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
				 s->cfg->defaults.iso_storage, node);
	if (rc == 0 && !import_ok)
		rc = phx_err_set(err, PHX_E_RUNTIME,
				 "storage '%s' (defaults.import_storage) is not available on node "
				 "'%s'",
				 import, node);
	if (rc == 0 && !disk_ok)
		rc = phx_err_set(
			err, PHX_E_RUNTIME,
			"storage '%s' (template '%s' hardware.storage) is not available on "
			"node '%s' for VM disks (content 'images')",
			t->hardware.storage, t->name, node);
	pve_storage_list_release(&list);
	return rc;
}

/* A container template (pve-container API2/LXC.pm create_vm, check_ct_modify_config_perm;
 * pve-storage for the vztmpl upload; lxc-notes point 10): VM.Allocate, VM.Config.* for the
 * options it sets, Datastore.AllocateSpace on the rootfs storage, AllocateTemplate on the
 * archive's, SDN.Use on the bridge; Sys.Modify on / for a privileged container. */
static int prov_ct_check_privileges(struct pve_client *c, const struct cfg_template *t,
				    bool validate, struct phx_err *err)
{
	static const char *const ct_privs[] = {"VM.Allocate",	    "VM.Config.Disk",
					       "VM.Config.CPU",	    "VM.Config.Memory",
					       "VM.Config.Network", "VM.Config.Options",
					       "VM.Audit"};
	struct pf_need needs[5];
	size_t n = 4;

	memset(needs, 0, sizeof(needs));
	snprintf(needs[0].path, sizeof(needs[0].path), "/vms");
	for (size_t i = 0; i < sizeof(ct_privs) / sizeof(ct_privs[0]); i++)
		pf_need_add(&needs[0], ct_privs[i]);
	snprintf(needs[1].path, sizeof(needs[1].path), "/storage/%s", t->ct.template_storage);
	/* the upload; reading the archive at create takes Allocate, AllocateSpace or Audit
	 * (ps check_volume_access), and the removals on rollback and prune Allocate */
	pf_need_add(&needs[1], "Datastore.AllocateTemplate");
	pf_need_add(&needs[1], "Datastore.Allocate");
	pf_need_add(&needs[1], "Datastore.Audit");
	snprintf(needs[2].path, sizeof(needs[2].path), "/storage/%s", t->ct.storage);
	pf_need_add(&needs[2], "Datastore.AllocateSpace");
	if (pf_bridge_acl_path(c, t->ct.bridge, needs[3].path, sizeof(needs[3].path), err) < 0)
		return -1;
	pf_need_add(&needs[3], "SDN.Use");
	/* the test container: clone_vm's VM.Clone on the template, vm_start's VM.PowerMgmt;
	 * interfaces takes VM.Audit (API2/LXC.pm) */
	if (validate) {
		pf_need_add(&needs[0], "VM.Clone");
		pf_need_add(&needs[0], "VM.PowerMgmt");
	}
	if (!t->ct.unprivileged) {
		snprintf(needs[4].path, sizeof(needs[4].path), "/");
		pf_need_add(&needs[4], "Sys.Modify");
		n = 5;
	}
	return pf_check_privileges(c, needs, n, err);
}

/* The archive's storage takes vztmpl, the root file system's rootdir (lxc-notes point 8:
 * Proxmox's stock `local` has vztmpl, `local-lvm` rootdir). */
static int prov_ct_check_storage(struct pve_client *c, const struct cfg_template *t,
				 const char *node, bool *ret_shared, struct phx_err *err)
{
	struct pve_storage_list list = {0};
	const char *tpl_content = NULL, *root_content = NULL;
	int rc = 0;

	if (pve_storage_list(c, node, &list, err) < 0)
		return -1;
	for (size_t i = 0; i < list.n; i++) {
		if (!strcmp(list.items[i].storage, t->ct.template_storage)) {
			tpl_content = list.items[i].content;
			*ret_shared = list.items[i].shared;
		}
		if (!strcmp(list.items[i].storage, t->ct.storage))
			root_content = list.items[i].content;
	}
	if (!tpl_content || !series_has_tag(tpl_content, "vztmpl"))
		rc = phx_err_set(err, PHX_E_RUNTIME,
				 "storage '%s' (template '%s' container.template_storage) %s on "
				 "node '%s' for container templates (content 'vztmpl')%s%s%s",
				 t->ct.template_storage, t->name,
				 tpl_content ? "does not take archives" : "is not available",
				 node, tpl_content ? ": it has '" : "", tpl_content ? tpl_content : "",
				 tpl_content ? "'" : "");
	else if (!root_content || !series_has_tag(root_content, "rootdir"))
		rc = phx_err_set(err, PHX_E_RUNTIME,
				 "storage '%s' (template '%s' container.storage) %s on node '%s' "
				 "for container root file systems (content 'rootdir')%s%s%s",
				 t->ct.storage, t->name,
				 root_content ? "does not take them" : "is not available", node,
				 root_content ? ": it has '" : "", root_content ? root_content : "",
				 root_content ? "'" : "");
	pve_storage_list_release(&list);
	return rc;
}

static int prov_preflight(struct session *s, struct pve_client *c, const struct cfg_template *t,
			  const char *node, bool *ret_import_shared, struct phx_err *err)
{
	struct pve_version v;

	if (t->kind == CFG_KIND_LXC) {
		/* no import: any Proxmox whose API takes vztmpl uploads and tokens */
		*ret_import_shared = false;
		if (pve_version_get(c, &v, err) < 0 || prov_ct_check_privileges(c, t, s->opts->validate, err) < 0)
			return -1;
		return prov_ct_check_storage(c, t, node, ret_import_shared, err);
	}
	if (pve_version_get(c, &v, err) < 0)
		return -1;
	if (v.major < PROV_MIN_MAJOR || (v.major == PROV_MIN_MAJOR && v.minor < PROV_MIN_MINOR))
		return phx_err_set(err, PHX_E_RUNTIME,
				   "Proxmox VE %s is too old: building templates with an API token "
				   "needs %d.%d or later (import of uploaded qcow2 images)",
				   v.version, PROV_MIN_MAJOR, PROV_MIN_MINOR);
	log_debug("Proxmox VE %s", v.version);
	if (prov_check_privileges(s, c, t, &v, err) < 0)
		return -1;
	return prov_check_storage(s, c, t, node, ret_import_shared, err);
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
	    cust_plan_add_local_packages(plan, (const char *const *)c->debs.items,
					 c->debs.n, err) < 0)
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
	for (size_t i = 0; i < c->n_users; i++) {
		const struct cfg_cust_user *u = &c->users[i];
		const struct cust_user cu = {
			.name = u->name,
			.uid = u->uid,
			.gid = u->gid,
			.groups = (const char *const *)u->groups.items,
			.n_groups = u->groups.n,
			.shell = u->shell,
			.ssh_keys = (const char *const *)u->ssh_public_keys.items,
			.n_ssh_keys = u->ssh_public_keys.n,
			.password_hash = u->password_hash,
			.password_expired = u->password_expired,
			.sudo = u->sudo,
			.git_name = u->git_name,
			.git_email = u->git_email,
		};

		if (cust_plan_add_user(plan, &cu, err) < 0)
			goto fail;
	}
	*ret = plan;
	return 0;
fail:
	cust_plan_free(plan);
	return phx_err_wrap(err, "template '%s': customize", t->name);
}

int cmd_provision_check(const struct cfg *cfg, struct phx_err *err)
{
	for (size_t i = 0; i < cfg->n_templates; i++) {
		struct cust_plan *plan = NULL;

		if (prov_build_plan(&cfg->templates[i], &plan, err) < 0)
			return phx_err_wrap(err, "%s: $.templates[%zu]", cfg->path, i);
		cust_plan_free(plan);
	}
	return 0;
}

/* ---- helpers over the cluster's guest list ---- */

static const struct pve_vm_info *prov_find_vm(const struct pve_vm_list *l, unsigned long vmid)
{
	for (size_t i = 0; i < l->n; i++)
		if ((unsigned long)l->items[i].vmid == vmid)
			return &l->items[i];
	return NULL;
}

/* Proxmox's lock on a VM ("" when none): `create` or `clone` while another run builds it. */
static int prov_vm_lock(struct prov_ctx *p, const struct pve_vm_info *vm, char *ret, size_t len,
			struct phx_err *err)
{
	json_t *config = NULL;
	const char *lock;

	if (pve_ct_or_vm_config_get(p->pve, vm, &config, err) < 0)
		return -1;
	lock = json_string_value(json_object_get(config, "lock"));
	snprintf(ret, len, "%s", lock ? lock : "");
	json_decref(config);
	return 0;
}

/* The source sha256 recorded in a template's description by an earlier build. */
static int prov_recorded_sha256(struct pve_client *c, const struct pve_vm_info *vm,
				char ret[CRYPTO_SHA256_HEX_LEN + 1], struct phx_err *err)
{
	json_t *config = NULL;

	if (pve_ct_or_vm_config_get(c, vm, &config, err) < 0)
		return -1;
	rec_get(json_string_value(json_object_get(config, "description")), PROV_REC_SHA256, ret,
		CRYPTO_SHA256_HEX_LEN + 1);
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
		.signature_url = t->signature_url,
		.keyring = t->keyring,
		.cache_dir = getenv("PHX_CACHE_DIR"),
		.progress = log_is_tty(),
	};
	struct http_client *http;
	int rc;

	if (t->artifact) {
		struct art_image a = {0};

		log_info("template '%s': verifying the published artifact '%s'", t->name,
			 t->artifact);
		if (art_read(t->artifact, &a, err) < 0)
			return -1;
		*ret = (struct img_result){.path = a.path, .size = a.size};
		memcpy(ret->sha256, a.sha256, sizeof(ret->sha256));
		return 0;
	}
	http = http_client_new(&ho, err);
	if (!http)
		return -1;
	rc = img_fetch(http, &io, ret, err);
	http_client_free(http);
	return rc;
}

/* When and which build a version is: the date and number in its name for a series member
 * ("<name>-YYYYMMDD-NNN"), today's date and no number for a fixed-VMID template. */
struct prov_build_id {
	char date[16];	 /* "20261202" */
	char number[16]; /* "003", "" for a fixed-VMID template */
};

static void prov_build_id(const struct cfg_template *t, const char *name, time_t now,
			  struct prov_build_id *ret)
{
	unsigned date, seq;
	struct tm tm;

	memset(ret, 0, sizeof(*ret));
	if (t->has_versions && series_parse_version(t->name, name, &date, &seq)) {
		snprintf(ret->date, sizeof(ret->date), "%08u", date);
		snprintf(ret->number, sizeof(ret->number), "%03u", seq);
		return;
	}
	gmtime_r(&now, &tm);
	strftime(ret->date, sizeof(ret->date), "%Y%m%d", &tm);
}

char *prov_description(const struct cfg_template *t, const char *name, const char *source,
		       const char *sha256, const char *custom_sha256, const char *packages,
		       const char *archive)
{
	char when[32], intro[128], builder[64];
	time_t now = time(NULL);
	struct prov_build_id id;
	struct tm tm;
	struct rec_field f[13] = {
		{"template", t->name},
		{"name", name},
		{PROV_REC_SOURCE, source},
	};
	size_t n = 3;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (sha256)
		f[n++] = (struct rec_field){PROV_REC_SHA256, sha256};
	if (custom_sha256)
		f[n++] = (struct rec_field){PROV_REC_CUSTOM_SHA256, custom_sha256};
	f[n++] = (struct rec_field){PROV_REC_BUILT, when};
	prov_build_id(t, name, now, &id);
	snprintf(builder, sizeof(builder), "phoenix-orchestrator %s", cli_version());
	f[n++] = (struct rec_field){"build-date", id.date};
	if (id.number[0])
		f[n++] = (struct rec_field){"build-number", id.number};
	f[n++] = (struct rec_field){"builder", builder};
	if (t->os)
		f[n++] = (struct rec_field){"os", t->os};
	if (t->type)
		f[n++] = (struct rec_field){"type", t->type};
	if (packages && *packages)
		f[n++] = (struct rec_field){PROV_REC_PACKAGES, packages};
	if (archive)
		f[n++] = (struct rec_field){PROV_REC_ARCHIVE, archive};
	snprintf(intro, sizeof(intro),
		 "Built by phoenix-orchestrator %s; do not edit the lines below.", cli_version());
	return rec_write(intro, f, n, NULL);
}

/* The tags a build gets, all in Proxmox's tag alphabet and lower case, so the server's
 * normalisation (lower-cased, de-duplicated, sorted: pgc GuestHelpers get_unique_tags)
 * changes nothing but their order. docs/lifecycle.md documents the scheme. */
int prov_tags(const struct cfg_template *t, const char *name, char *ret, size_t len,
	      struct phx_err *err)
{
	char series[128];
	struct prov_build_id id;
	size_t used;

	if (series_tag(t->name, series, sizeof(series), err) < 0)
		return -1;
	prov_build_id(t, name, time(NULL), &id);
	used = (size_t)snprintf(ret, len, "%s;%s;%s;built-%s", SERIES_TAG_OURS, series,
				SERIES_TAG_BUILDER, id.date);
	if (id.number[0] && used < len)
		used += (size_t)snprintf(ret + used, len - used, ";build-%s", id.number);
	if (t->os && used < len)
		used += (size_t)snprintf(ret + used, len - used, ";os-%s", t->os);
	if (t->type && used < len)
		used += (size_t)snprintf(ret + used, len - used, ";type-%s", t->type);
	for (size_t i = 0; i < t->tags.n && used < len; i++)
		used += (size_t)snprintf(ret + used, len - used, ";%s", t->tags.items[i]);
	if (used >= len)
		return phx_err_set(err, PHX_E_INPUT, "template '%s': too many tags", t->name);
	return 0;
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
	/* every input of the plan, the hash included: its step description leaves it out */
	for (size_t i = 0; i < c->n_users; i++) {
		const struct cfg_cust_user *u = &c->users[i];
		char num[64];

		snprintf(num, sizeof(num), "%lu:%lu:%d:%d", u->uid, u->gid, u->password_expired,
			 u->sudo);
		if (prov_key_add(h, "user", u->name, err) < 0 ||
		    prov_key_add(h, "ids", num, err) < 0 ||
		    prov_key_add(h, "shell", u->shell ? u->shell : "", err) < 0 ||
		    prov_key_add(h, "hash", u->password_hash ? u->password_hash : "", err) < 0 ||
		    prov_key_add(h, "git", u->git_name ? u->git_name : "", err) < 0 ||
		    prov_key_add(h, "mail", u->git_email ? u->git_email : "", err) < 0)
			goto out;
		for (size_t k = 0; k < u->groups.n; k++)
			if (prov_key_add(h, "group", u->groups.items[k], err) < 0)
				goto out;
		for (size_t k = 0; k < u->ssh_public_keys.n; k++)
			if (prov_key_add(h, "key", u->ssh_public_keys.items[k], err) < 0)
				goto out;
	}
	if (t->kind == CFG_KIND_LXC) {
		char ct[64];

		snprintf(ct, sizeof(ct), "lxc:ifupdown=%d", t->ct.ifupdown);
		if (prov_key_add(h, "kind", ct, err) < 0)
			goto out;
	}
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

/* Keeps the guest's package list (canonical form) beside the customized image `image` as
 * "<image>.packages", where the build finds it after a cache hit too. None: nothing kept. */
static int prov_keep_packages(const char *raw, const char *image, struct phx_err *err)
{
	char *canon = NULL, *path = NULL;
	int rc;

	if (!raw)
		return 0;
	if (pkg_canonical(raw, &canon, err) < 0)
		return phx_err_wrap(err, "the guest's package list");
	if (asprintf(&path, "%s.packages", image) < 0) {
		free(canon);
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	rc = fs_write_atomic(path, canon, strlen(canon), 0644, err);
	free(path);
	free(canon);
	return rc;
}

/* The build record's `packages` value ("<count> <sha256>") of the customized image at
 * `disk_path`, and its list kept under the image's sha256 for --list-templates --packages
 * and --diff. ret "" when customization left no list (an image customized by a version
 * before lists were kept). */
static int prov_record_packages(const char *disk_path, const char *custom_sha, char *ret,
				size_t len, struct phx_err *err)
{
	struct buf b = BUF_INIT;
	char *path = NULL, *cache = NULL;
	int rc = -1;

	ret[0] = '\0';
	if (asprintf(&path, "%s.packages", disk_path) < 0)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (!fs_exists(path)) {
		log_info("no package list beside '%s' (customized before lists were kept): the "
			 "build record has none",
			 disk_path);
		rc = 0;
		goto out;
	}
	buf_init(&b, 64u << 20);
	if (fs_read_file(path, &b, err) < 0 || (!b.data && buf_puts(&b, "", err) < 0) ||
	    pkg_summary(buf_str(&b), ret, len, err) < 0 || session_cache_dir(&cache, err) < 0 ||
	    pkg_store(cache, custom_sha, buf_str(&b), err) < 0)
		goto out;
	rc = 0;
out:
	buf_release(&b);
	free(cache);
	free(path);
	return rc;
}

/* Makes sure a customized copy of the cached image exists beside it and returns its path
 * (caller owns; free()) and sha256 (kept beside it: img_file_sha256). The copy is customized
 * in a private work dir and renamed into place only when every step succeeded, so a
 * half-customized image is never reused. --rebuild always customizes afresh (packages from
 * the network may have changed). */
static int prov_customize(struct prov_ctx *p, const struct cfg_template *t,
			  const struct img_result *img, char **ret_path,
			  char ret_sha[CRYPTO_SHA256_HEX_LEN + 1], struct phx_err *err)
{
	struct cust_opts co = CUST_OPTS_INIT;
	struct cust_report rep;
	char key[CRYPTO_SHA256_HEX_LEN + 1];
	char dir[4096], state_dir[4096], *work = NULL, *final = NULL;
	const char *slash = strrchr(img->path, '/');
	const int dirlen = slash ? (int)(slash - img->path) : 1;
	int rc;

	if (t->artifact) {
		log_info("template '%s': the artifact is used as it was built: no customization",
			 t->name);
		if (!(*ret_path = strdup(img->path)))
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		memcpy(ret_sha, img->sha256, CRYPTO_SHA256_HEX_LEN + 1);
		return 0;
	}
	if (prov_customize_key(t, img->sha256, key, err) < 0)
		return phx_err_wrap(err, "customize '%s'", t->name);
	if (asprintf(&final, "%.*s/customized-%.16s.%s", dirlen, img->path, key,
		     t->kind == CFG_KIND_LXC ? "tar.zst" : "qcow2") < 0)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (!p->s->opts->rebuild && fs_exists(final)) {
		log_info("reusing the customized image '%s' (same source and recipe)", final);
		goto ready;
	}
	snprintf(dir, sizeof(dir), "%.*s", dirlen, img->path);
	prov_remove_stale_work(dir);
	snprintf(dir, sizeof(dir), "%.*s/.work-XXXXXX", dirlen, img->path);
	if (!mkdtemp(dir)) {
		free(final);
		return phx_err_set_errno(err, PHX_E_IO, errno, "create work directory '%s'", dir);
	}
	if (asprintf(&work, "%s/%s.%s", dir, t->name,
		     t->kind == CFG_KIND_LXC ? "tar.zst" : "qcow2") < 0) {
		work = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto fail;
	}
	/* the KVM verdict is kept per host boot in the cache, so cron runs probe once too */
	snprintf(state_dir, sizeof(state_dir), "%.*s", dirlen, img->path);
	if (strrchr(state_dir, '/'))
		*strrchr(state_dir, '/') = '\0';
	co.state_dir = state_dir;
	if (t->kind == CFG_KIND_LXC) {
		const struct cust_rootfs_opts ro = {.ifupdown = t->ct.ifupdown};

		if (cust_run_rootfs(p->plan, img->path, work, &ro, &co, &rep, err) < 0) {
			phx_err_wrap(err, "customize '%s'", t->name);
			goto fail;
		}
	} else if (cust_prepare_copy(img->path, work, err) < 0 ||
		   cust_run(p->plan, work, &co, &rep, err) < 0) {
		phx_err_wrap(err, "customize '%s'", t->name);
		goto fail;
	}
	/* the list before the image: a customized image in the cache implies its list */
	rc = prov_keep_packages(rep.packages, final, err);
	cust_report_release(&rep);
	if (rc < 0)
		goto fail;
	if (rename(work, final) < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "rename '%s' to '%s'", work, final);
		goto fail;
	}
	rmdir(dir);
	free(work);
	log_info("customized %s %s (family %s, %s, %zu steps) in %.1f s, appliance start %.1f s",
		 rep.distro, rep.version, rep.family, rep.accel, rep.steps, rep.total_seconds,
		 rep.launch_seconds);
ready:
	/* a new image is hashed here, while it is in the page cache; a reused one's sum is read */
	if (img_file_sha256(final, ret_sha, err) < 0) {
		free(final);
		return -1;
	}
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

/* What a build of one template sends, once the image is ready (or, in a dry run, before it
 * is: custom_sha NULL makes the values that carry the customized image's hash pending). */
struct prov_build_input {
	const struct cfg_template *t;
	const char *node, *import_storage;
	unsigned long vmid;
	const char *name;
	const char *source_sha, *custom_sha; /* NULL: not known yet */
	const char *disk_path;		     /* the customized image, or NULL */
	const char *disk_format;	     /* its format ("qcow2", "raw"), or NULL */
	uint64_t disk_bytes;		     /* its virtual size; 0: not known yet */
	const char *tags;
	const char *packages; /* the record's `packages` value; "": none; NULL: not known yet */
	/* with the node, in the import volume's name: two runs (or two nodes' uploads to one
	 * shared storage) never write, or roll back, the same volume */
	const char *run_id;
	const char *import_node; /* the node that uploads the image (its name is in the volume's) */
};

/* The pure planner of a template build: upload the image as an import volume, create the VM
 * from it, grow its disk, convert it, delete the import volume. */
static int prov_plan_build(const struct prov_build_input *in, struct plan *p,
			   enum prov_phase *ret_phases, struct phx_err *err)
{
	const struct cfg_template *t = in->t;
	const char *sha = in->custom_sha;
	const unsigned pend = sha ? 0 : PLAN_PENDING;
	char object[160], filename[256], volid[400], scsi0[600], net0[128], cores[16], memory[24],
		vmid[16], size[32], boot[32], *desc = NULL, *esc = NULL, *sysdisk;
	struct plan_action *a;
	size_t first = p->n;

	snprintf(object, sizeof(object), "template %lu '%s'", in->vmid, in->name);
	/* the extension is the format pve-storage probes the import as */
	if (sha && in->disk_format)
		snprintf(filename, sizeof(filename), "phoenix-%s-%.12s-%s-%s.%s", t->name, sha,
			 in->run_id, in->import_node, in->disk_format);
	else
		snprintf(filename, sizeof(filename),
			 "phoenix-%s-<customized sha256>-<run id>-%s.<format, known after "
			 "customization>",
			 t->name, in->node);
	snprintf(volid, sizeof(volid), "%s:import/%s", in->import_storage, filename);

	a = plan_add(p, PLAN_UPLOAD, PLAN_CREATE, object, "POST", "/nodes/%s/storage/%s/upload",
		     in->node, in->import_storage);
	plan_summary(p, a, "upload the customized image as '%s'", volid);
	plan_param(p, a, "content", "import", 0);
	plan_param(p, a, "checksum-algorithm", "sha256", 0);
	plan_param(p, a, "checksum", sha ? sha : "<known after customization>", pend);
	plan_upload_file(p, a, in->disk_path ? in->disk_path : "<the customized image>", filename);
	/* before the upload: a task wait that fails after the body arrived still cleans up */
	plan_undo_volume(p, a, in->node, volid);

	snprintf(scsi0, sizeof(scsi0), "%s:0,import-from=%s,discard=on", t->hardware.storage,
		 volid);
	if (!(sysdisk = hw_drive_value(scsi0, &t->hardware.mach.disk)))
		p->oom = true;
	snprintf(boot, sizeof(boot), "order=%s", hw_system_disk_key(&t->hardware.mach));
	snprintf(net0, sizeof(net0), "virtio,bridge=%s", t->hardware.bridge);
	snprintf(cores, sizeof(cores), "%u", t->hardware.cores);
	snprintf(memory, sizeof(memory), "%lu", t->hardware.memory_mb);
	snprintf(vmid, sizeof(vmid), "%lu", in->vmid);
	desc = prov_description(t, in->name, t->artifact ? t->artifact : t->image_url,
				in->source_sha ? in->source_sha : "<known after download>",
				sha ? sha : "<known after customization>",
				in->packages ? in->packages : "<known after customization>", NULL);
	a = plan_add(p, PLAN_REQUEST, PLAN_CREATE, object, "POST", "/nodes/%s/qemu", in->node);
	plan_summary(p, a, "create VM %lu '%s' from the imported image", in->vmid, in->name);
	plan_param(p, a, "vmid", vmid, 0);
	plan_param(p, a, "name", in->name, 0);
	plan_param(p, a, "scsihw", "virtio-scsi-single", 0);
	plan_param(p, a, hw_system_disk_key(&t->hardware.mach), sysdisk, pend);
	free(sysdisk);
	plan_param(p, a, "boot", boot, 0);
	plan_param(p, a, "serial0", "socket", 0);
	plan_param(p, a, "vga", "serial0", 0);
	plan_param(p, a, "agent", "enabled=1", 0);
	plan_param(p, a, "ostype", "l26", 0);
	plan_param(p, a, "net0", net0, 0);
	plan_param(p, a, "cores", cores, 0);
	plan_param(p, a, "memory", memory, 0);
	hw_create_params(&t->hardware.mach, t->hardware.storage, p, a);
	plan_param(p, a, "tags", in->tags, 0);
	if (!desc)
		p->oom = true; /* the build record is not optional */
	plan_param(p, a, "description", desc, in->custom_sha && in->source_sha ? 0 : PLAN_PENDING);
	/* created with our tags: a VM under this VMID without them is someone else's */
	plan_undo_vm(p, a, in->node, (int)in->vmid, in->name, SERIES_TAG_OURS);
	free(desc);

	snprintf(size, sizeof(size), "%luG", t->hardware.disk_size_gb);
	if (t->hardware.disk_size_gb &&
	    (!in->disk_bytes || in->disk_bytes < (uint64_t)t->hardware.disk_size_gb << 30)) {
		a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "PUT",
			     "/nodes/%s/qemu/%lu/resize", in->node, in->vmid);
		plan_summary(p, a, "grow the disk of VM %lu (%s) to %s", in->vmid,
			     hw_system_disk_key(&t->hardware.mach), size);
		plan_param(p, a, "disk", hw_system_disk_key(&t->hardware.mach), 0);
		plan_param(p, a, "size", size, 0);
		if (!in->disk_bytes)
			plan_condition(p, a, "the image's disk is smaller than %s", size);
	} else if (t->hardware.disk_size_gb) {
		plan_note(p, object,
			  "the image's disk is %" PRIu64 " GiB, not smaller than "
			  "hardware.disk_size_gb %lu: no resize",
			  in->disk_bytes >> 30, t->hardware.disk_size_gb);
	}
	a = plan_add(p, PLAN_REQUEST, PLAN_CHANGE, object, "POST", "/nodes/%s/qemu/%lu/template",
		     in->node, in->vmid);
	plan_summary(p, a, "convert VM %lu to a template", in->vmid);
	if (a)
		a->flags |= PLAN_COMMIT_AFTER;

	/* the template owns its disk now; the import volume is only clutter */
	esc = plan_escape(p, volid);
	a = plan_add(p, PLAN_REQUEST, PLAN_DESTROY, object, "DELETE",
		     "/nodes/%s/storage/%s/content/%s", in->node, in->import_storage,
		     esc ? esc : "");
	free(esc);
	plan_summary(p, a, "delete the import volume '%s'", volid);
	/* a failed or interrupted delete stays in the journal: the next run removes it */
	plan_undo_volume(p, a, in->node, volid);
	if (a)
		a->flags |= PLAN_BEST_EFFORT | PLAN_CLEANUP | PLAN_COMMIT_AFTER;
	for (size_t i = first; ret_phases && i < p->n; i++) {
		const struct plan_action *x = p->actions[i];

		ret_phases[i - first] = x->kind == PLAN_UPLOAD ? PH_UPLOAD
					: x->sym == PLAN_CREATE || strstr(x->path, "/resize")
						? PH_CREATE
						: PH_TEMPLATE;
	}
	return plan_check(p, err);
}

static int prov_build_input(struct prov_ctx *p, const struct cfg_template *t,
			    const struct prov_result *res, struct prov_build_input *in, char *tags,
			    size_t tags_len, struct phx_err *err)
{
	if (prov_tags(t, res->name, tags, tags_len, err) < 0)
		return -1;
	*in = (struct prov_build_input){
		.t = t,
		.node = p->node,
		.import_storage = p->s->cfg->defaults.import_storage,
		.vmid = res->vmid,
		.name = res->name,
		.tags = tags,
		.run_id = p->s->run_id,
		.import_node = p->node,
	};
	return 0;
}

/* The nodes of a template take turns, in node order, from the preflight to the customized
 * image: the first node that needs the image makes it while the others wait, and VMIDs and
 * names are chosen in node order; then the uploads and builds run at the same time. */
static void prov_turn_take(struct prov_shared *sh, size_t index)
{
	pthread_mutex_lock(&sh->mu);
	while (sh->turn != index)
		pthread_cond_wait(&sh->turn_cv, &sh->mu);
	pthread_mutex_unlock(&sh->mu);
}

static void prov_turn_give(struct prov_shared *sh)
{
	pthread_mutex_lock(&sh->mu);
	sh->turn++;
	pthread_cond_broadcast(&sh->turn_cv);
	pthread_mutex_unlock(&sh->mu);
}

/* A shared storage's upload, plan's first action, is sent by the first node that builds, in
 * its turn (the others wait for it) and under the template's undo list, not the node's: a
 * node that fails later takes nothing from the others. The nodes after it send nothing. */
static int prov_upload_once(struct prov_ctx *p, const struct plan *plan, const char *storage,
			    struct prov_result *res, enum prov_phase phase, struct phx_err *err)
{
	const struct plan_apply_ctx up = {p->pve, p->sh->import_txn, session_task_timeout(p->s)};
	double t0 = clk_now();

	if (p->sh->import_node[0]) {
		log_info("template %lu '%s': '%s' uploaded once for every node (shared storage), "
			 "by node '%s'",
			 res->vmid, res->name, storage, p->sh->import_node);
		return 0;
	}
	if (plan_apply_action(plan->actions[0], &up, err) < 0)
		return -1;
	snprintf(p->sh->import_node, sizeof(p->sh->import_node), "%s", p->node);
	res->phase_s[phase] += clk_now() - t0;
	return 0;
}

/* Upload, create, grow, template: the part that changes the server, as a plan applied with
 * the run's transaction. */
static int prov_build_on_server(struct prov_ctx *p, const struct cfg_template *t,
				struct prov_result *res, const char *disk_path,
				const char *custom_sha, const char *source_sha256, bool *turn_held,
				struct phx_err *err)
{
	struct session *s = p->s;
	const bool shared = p->import_shared && p->sh->import_txn;
	size_t first, last;
	char tags[1024], packages[128];
	struct prov_build_input in;
	struct plan plan = PLAN_INIT;
	enum prov_phase phases[8];
	const struct plan_apply_ctx ax = {p->pve, p->txn, session_task_timeout(s)};
	int rc = -1;

	if (prov_build_input(p, t, res, &in, tags, sizeof(tags), err) < 0)
		return -1;
	if (prov_record_packages(disk_path, custom_sha, packages, sizeof(packages), err) < 0)
		return -1;
	if (t->kind == CFG_KIND_LXC) {
		const struct prov_ct_input ci = {
			.t = t,
			.node = p->node,
			.vmid = res->vmid,
			.name = res->name,
			.source_sha = source_sha256,
			.custom_sha = custom_sha,
			.archive_path = disk_path,
			.tags = tags,
			.packages = packages,
		};

		if (prov_ct_plan_build(&ci, &plan, err) < 0)
			goto out;
		plan_log_notes(&plan);
		/* the plan is upload, create, template; on a shared storage every node's upload
		 * would write the same file, and one node's rollback delete it under the others */
		first = shared ? 1 : 0;
		if (shared && prov_upload_once(p, &plan, t->ct.template_storage, res, PH_UPLOAD,
					       err) < 0)
			goto out;
		prov_turn_give(p->sh);
		*turn_held = false;
		for (size_t i = first; i < plan.n; i++) {
			double t0 = clk_now();

			if (plan_apply_action(plan.actions[i], &ax, err) < 0)
				goto out;
			res->phase_s[i == 0 ? PH_UPLOAD : i == 1 ? PH_CREATE : PH_TEMPLATE] +=
				clk_now() - t0;
		}
		if (shared) {
			/* a template is made from the archive: it stays, even if this run is
			 * killed before the other nodes are done (the journal forgets its undo) */
			pthread_mutex_lock(&p->sh->mu);
			txn_commit(p->sh->import_txn);
			pthread_mutex_unlock(&p->sh->mu);
		}
		rc = 0;
		goto out;
	}
	in.source_sha = source_sha256;
	in.custom_sha = custom_sha;
	in.packages = packages;
	in.disk_path = disk_path;
	if (shared && p->sh->import_node[0])
		in.import_node = p->sh->import_node;
	if (img_disk_info(disk_path, &in.disk_format, &in.disk_bytes, err) < 0 ||
	    prov_plan_build(&in, &plan, phases, err) < 0)
		goto out;
	plan_log_notes(&plan);
	/* the plan is upload, create, [resize,] template, delete the import volume */
	first = 0;
	last = plan.n;
	if (shared) {
		if (prov_upload_once(p, &plan, in.import_storage, res, phases[0], err) < 0)
			goto out;
		first = 1;
		last = plan.n - 1; /* the template deletes it once every node has imported it */
	}
	prov_turn_give(p->sh);
	*turn_held = false;
	for (size_t i = first; i < last; i++) {
		double t0 = clk_now();

		if (plan_apply_action(plan.actions[i], &ax, err) < 0)
			goto out;
		res->phase_s[phases[i]] += clk_now() - t0;
	}
	rc = 0;
out:
	plan_release(&plan);
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
		char lock[32] = "";

		if (vm && !series_has_tag(vm->tags, SERIES_TAG_OURS))
			return phx_err_set(err, PHX_E_CONFLICT,
					   "VMID %lu exists ('%s' on node '%s') "
					   "and was not built by phoenix-orchestrator (no '%s' "
					   "tag); refusing to touch it",
					   t->vmid, vm->name, vm->node, SERIES_TAG_OURS);
		if (vm && !vm->template && prov_vm_lock(p, vm, lock, sizeof(lock), err) < 0)
			return -1;
		if (vm && !vm->template && (!strcmp(lock, "create") || !strcmp(lock, "clone")))
			return phx_err_set(err, PHX_E_BUSY,
					   "VM %lu is being created right now (Proxmox lock '%s'), "
					   "by another run of ours: try again when it is done",
					   t->vmid, lock);
		if (vm && !vm->template)
			return phx_err_set(
				err, PHX_E_CONFLICT,
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
	if (cmd_series_guests(&p->vms, &guests, err) < 0)
		return -1;
	newest = -1;
	/* on several nodes, each node's newest version counts (they are newest-first) */
	if (p->sh->per_node) {
		size_t *idx = NULL, n = 0;

		if (series_members(t->name, guests, p->vms.n, &idx, &n, err) < 0)
			goto out;
		for (size_t k = 0; k < n && newest < 0; k++)
			if (!strcmp(p->vms.items[idx[k]].node, p->node))
				newest = (long)idx[k];
		free(idx);
	} else {
		newest = series_newest(t->name, guests, p->vms.n, false);
	}
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

			if (prov_recorded_sha256(p->pve, &p->vms.items[newest], recorded, err) < 0)
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
	{
		/* VMIDs other nodes of this run took after this node read the cluster count as
		 * taken (the nodes create at the same time) */
		struct series_guest *all = realloc(guests, (p->vms.n + p->sh->n_taken + 1) *
								   sizeof(*all));

		if (!all) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		guests = all;
		for (size_t k = 0; k < p->sh->n_taken; k++)
			guests[p->vms.n + k] = (struct series_guest){.vmid = p->sh->taken[k]};
		if (series_next_vmid(t->versions.vmid_min, t->versions.vmid_max, guests,
				     p->vms.n + p->sh->n_taken, &res->vmid, err) < 0)
			goto out;
		if (p->sh->n_taken < sizeof(p->sh->taken) / sizeof(p->sh->taken[0]))
			p->sh->taken[p->sh->n_taken++] = res->vmid;
	}
	if (p->sh->build_name) {
		/* another node of this run builds the same version: same name */
		res->name = strdup(p->sh->build_name);
		if (!res->name) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
	} else if (series_next_name(t->name, time(NULL), guests, p->vms.n, &res->name, err) < 0 ||
		   !(p->sh->build_name = strdup(res->name))) {
		if (!phx_err_is_set(err))
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
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
		.node = p->node,
		.template_vmid = (int)res->vmid,
		.iso_storage = cfg->defaults.iso_storage,
		.task_timeout_s = session_task_timeout(s),
		.agent_timeout_s =
			(long)(cfg->defaults.agent_timeout_s ? cfg->defaults.agent_timeout_s
							     : cfg->proxmox.timeouts.agent_s),
		.journal = s->journal,
		.tmp_dir = s->tmp_dir,
	};
	const bool ct = res->t->kind == CFG_KIND_LXC;
	json_t *config = NULL;
	const char *tags;
	char *newtags = NULL;
	int rc = -1;

	if ((ct ? pve_ct_config_get : pve_vm_config_get)(p->pve, p->node, (int)res->vmid, &config,
							  err) < 0)
		return -1;
	/* the test VM is a clone: the template's firmware and machine */
	if (!ct)
		vo.seed_drive = hw_seed_drive(json_string_value(json_object_get(config, "bios")),
					      json_string_value(json_object_get(config, "machine")));
	tags = json_string_value(json_object_get(config, "tags"));
	if (series_has_tag(tags, SERIES_TAG_VALIDATED)) {
		log_info("template %lu is already validated", res->vmid);
		res->validated = true;
		json_decref(config);
		return 0;
	}
	if ((ct ? prov_ct_validate : prov_validate)(p->pve, &vo, err) < 0)
		goto out;
	if (asprintf(&newtags, "%s%s%s", tags ? tags : "", tags && *tags ? ";" : "",
		     SERIES_TAG_VALIDATED) < 0) {
		newtags = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	{
		const struct pve_param params[] = {{"tags", newtags}};

		if ((ct ? pve_ct_config_set(p->pve, p->node, (int)res->vmid, params, 1, err)
			: pve_vm_config_set(p->pve, p->node, (int)res->vmid, params, 1,
					    session_task_timeout(s), err)) < 0)
			goto out;
	}
	res->validated = true;
	log_info(ct ? "template %lu validated: a clone started, its init ran and eth0 got an "
		      "address"
		    : "template %lu validated: booted, cloud-init done, agent and sshd answer",
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
		json_object_set_new(o, "node", json_string(r->node));
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
	if (r->t->all_nodes || r->t->nodes.n > 1)
		printf("[%s] ", r->node);
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

/* --dry-run: what a build would send, from reads only. Values that carry the hashes of
 * images not downloaded yet are pending; a template that is current plans nothing. */
static int prov_plan_dry(struct prov_ctx *p, const struct cfg_template *t, struct prov_result *res,
			 int decision, struct phx_err *err)
{
	char object[160], tags[1024];
	struct prov_build_input in;

	snprintf(object, sizeof(object), "template '%s'", t->name);
	if (decision == 0 && t->has_versions && t->versions.rebuild_on_change && res->vmid) {
		plan_note(p->dry, object,
			  "version %lu '%s' is built; a real run downloads '%s' and builds a new "
			  "version only if it changed",
			  res->vmid, res->name, t->artifact ? t->artifact : t->image_url);
		return plan_check(p->dry, err);
	}
	if (decision == 0) {
		plan_note(p->dry, object, "up to date (template %lu)", res->vmid);
		if (p->s->opts->validate)
			plan_note(p->dry, object,
				  "--validate boots a throwaway clone of template %lu unless it is "
				  "tagged '" SERIES_TAG_VALIDATED "'",
				  res->vmid);
		return plan_check(p->dry, err);
	}
	if (t->artifact)
		plan_note(p->dry, object,
			  "use the published artifact '%s' as it was built: verified by its "
			  "SHA256SUMS, not downloaded, not customized",
			  t->artifact);
	else
		plan_note(p->dry, object,
			  "download '%s', verify it and customize a copy in %zu steps",
			  t->image_url, cust_plan_len(p->plan));
	if (prov_build_input(p, t, res, &in, tags, sizeof(tags), err) < 0)
		return -1;
	if (t->kind == CFG_KIND_LXC) {
		const struct prov_ct_input ci = {
			.t = t, .node = p->node, .vmid = res->vmid, .name = res->name, .tags = tags};

		if (prov_ct_plan_build(&ci, p->dry, err) < 0)
			return -1;
		if (p->sh->per_node && p->import_shared)
			plan_note(p->dry, object,
				  "the template storage '%s' is shared: a real run uploads the archive "
				  "once, from the first node that builds, every node creates its "
				  "container from it, and it stays while a node has its template; the "
				  "other nodes' uploads are not sent",
				  t->ct.template_storage);
		if (p->s->opts->validate)
			plan_note(p->dry, object,
				  "--validate then starts a throwaway clone of container template "
				  "%lu, waits for an IPv4 address on its eth0 and tags the template "
				  "'" SERIES_TAG_VALIDATED "'",
				  res->vmid);
		return plan_check(p->dry, err);
	}
	if (prov_plan_build(&in, p->dry, NULL, err) < 0)
		return -1;
	if (p->sh->per_node && p->import_shared)
		plan_note(p->dry, object,
			  "the import storage '%s' is shared: a real run uploads the image once, "
			  "from the first node that builds, every node imports that volume, and it "
			  "is deleted after the last; the other nodes' upload and delete are not sent",
			  in.import_storage);
	if (p->s->opts->validate)
		plan_note(p->dry, object,
			  "--validate then boots a throwaway clone of template %lu and tags it "
			  "'" SERIES_TAG_VALIDATED "'",
			  res->vmid);
	return plan_check(p->dry, err);
}

static int prov_one(struct prov_ctx *p, const struct cfg_template *t, struct prov_result *res,
		    struct phx_err *err)
{
	struct session *s = p->s;
	struct prov_shared *sh = p->sh;
	double t0;
	int decision, rc = -1;
	bool locked = true;

	prov_turn_take(sh, p->index);
	/* VMs and containers share VMIDs: a new version's is free of both */
	if (prov_preflight(s, p->pve, t, p->node, &p->import_shared, err) < 0 ||
	    pve_cluster_guests(p->pve, &p->vms, err) < 0)
		goto out;
	/* existing fixed-VMID templates and plain version checks need no download at all */
	decision = prov_decide(p, t, res, NULL, err);
	if (decision < 0)
		goto out;
	if (p->dry) {
		rc = prov_plan_dry(p, t, res, decision, err);
		goto out;
	}
	if (decision == 0 && !(t->has_versions && t->versions.rebuild_on_change && res->vmid)) {
		rc = s->opts->validate ? prov_validate_template(p, res, err) : 0;
		goto out;
	}
	t0 = clk_now();
	if (!sh->fetched && prov_fetch(s, t, &sh->img, err) < 0)
		goto out;
	sh->fetched = true;
	res->phase_s[PH_DOWNLOAD] = clk_now() - t0;
	memcpy(res->sha256, sh->img.sha256, sizeof(res->sha256));
	if (clk_signal()) {
		phx_err_set(err, PHX_E_INTERRUPTED, "stopped by signal %d after the download",
			    clk_signal());
		goto out;
	}
	if (decision == 0) {
		/* rebuild_on_change: build only when the upstream image differs */
		free(res->name);
		res->name = NULL;
		decision = prov_decide(p, t, res, sh->img.sha256, err);
		if (decision < 0)
			goto out;
		if (decision == 0) {
			rc = s->opts->validate ? prov_validate_template(p, res, err) : 0;
			goto out;
		}
	}
	t0 = clk_now();
	if (!sh->work && prov_customize(p, t, &sh->img, &sh->work, sh->work_sha, err) < 0)
		goto out;
	res->phase_s[PH_CUSTOMIZE] = clk_now() - t0;
	/* gives the turn once the shared upload (if any) is done */
	if (prov_build_on_server(p, t, res, sh->work, sh->work_sha, sh->img.sha256, &locked,
				 err) < 0) {
		struct buf report = BUF_INIT;

		txn_rollback(p->txn, &report);
		if (report.len) {
			/* keep the root cause first; say what was cleaned up after it */
			phx_err_wrap(err, "template '%s'", t->name);
			phx_err_append_report(err, "rolled back", buf_str(&report));
			buf_release(&report);
			goto out_wrapped;
		}
		buf_release(&report);
		goto out;
	}
	/* committed by the plan; a removal left pending (a failed delete of the import
	 * volume) stays in the journal for the next run */
	res->changed = true;
	/* said now, not only in the result line after the validation: that one ends the run */
	if (s->opts->validate)
		log_info("template %lu '%s' built; validating it", res->vmid,
			 res->name ? res->name : t->name);
	/* a template that fails validation stays, untagged: it is complete, just unproven */
	rc = s->opts->validate ? prov_validate_template(p, res, err) : 0;
out:
	if (rc < 0)
		phx_err_wrap(err, "template '%s'", t->name);
out_wrapped:
	if (locked)
		prov_turn_give(sh);
	pve_vm_list_release(&p->vms);
	return rc;
}

/* The nodes a template is built on: its `nodes` ("all": every online node), else its `node`,
 * else the default node. Caller frees the array (the strings are borrowed from cfg, session
 * or *ret_json, which the caller decrefs). */
static int prov_nodes(struct session *s, const struct cfg_template *t, const char ***ret,
		      size_t *ret_n, json_t **ret_json, struct phx_err *err)
{
	const char **v;
	size_t n = 0, i;
	json_t *e;

	*ret_json = NULL;
	if (t->all_nodes && pve_get(s->pve, "/nodes", NULL, 0, ret_json, err) < 0)
		return -1;
	v = calloc((t->all_nodes ? json_array_size(*ret_json) : t->nodes.n) + 1, sizeof(*v));
	if (!v)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (t->all_nodes) {
		json_array_foreach(*ret_json, i, e)
		{
			const char *name = json_string_value(json_object_get(e, "node"));
			const char *status = json_string_value(json_object_get(e, "status"));

			if (name && status && !strcmp(status, "online"))
				v[n++] = name;
			else if (name)
				log_warn("template '%s': node '%s' is %s: skipped", t->name, name,
					 status ? status : "not online");
		}
	} else {
		for (i = 0; i < t->nodes.n; i++)
			v[n++] = t->nodes.items[i];
	}
	if (!n)
		v[n++] = t->node ? t->node : s->node;
	*ret = v;
	*ret_n = n;
	return 0;
}

/* One template on one node, as the metrics file reports it (metrics.h). */
static int prov_metrics_add(json_t *metrics, const struct prov_result *r, bool ok)
{
	json_t *phases = json_array();

	for (size_t k = 0; phases && k < PH_COUNT; k++)
		if (json_array_append_new(phases, json_real(r->phase_s[k])) < 0)
			return -1;
	return json_array_append_new(metrics,
				     json_pack("{s:s, s:s, s:s?, s:s, s:I, s:b, s:b, s:o}",
					       "template", r->t->name, "node", r->node, "version",
					       r->name, "sha256", r->sha256, "vmid",
					       (json_int_t)r->vmid, "ok", ok, "changed", r->changed,
					       "phases", phases));
}

/* Writes the run's metrics file from what prov_metrics_add collected. */
static int prov_metrics_write(const char *path, json_t *metrics, double started, bool success,
			      struct phx_err *err)
{
	struct met_template *ts = calloc(json_array_size(metrics) + 1, sizeof(*ts));
	struct met_run run = {.started = started, .finished = clk_wall(), .success = success,
			      .last_success = met_read_last_success(path), .templates = ts,
			      .n = json_array_size(metrics)};
	size_t i;
	json_t *m;
	int rc;

	if (!ts)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	json_array_foreach(metrics, i, m)
	{
		ts[i] = (struct met_template){
			.template = json_string_value(json_object_get(m, "template")),
			.node = json_string_value(json_object_get(m, "node")),
			.version = json_string_value(json_object_get(m, "version")),
			.sha256 = json_string_value(json_object_get(m, "sha256")),
			.vmid = (unsigned long)json_integer_value(json_object_get(m, "vmid")),
			.ok = json_is_true(json_object_get(m, "ok")),
			.changed = json_is_true(json_object_get(m, "changed")),
		};
		for (size_t k = 0; k < MET_PHASES && k < PH_COUNT; k++)
			ts[i].phase_s[k] =
				json_real_value(json_array_get(json_object_get(m, "phases"), k));
	}
	rc = met_write(path, &run, err);
	free(ts);
	return rc;
}

/* One node's build, in its own thread with its own connection and undo list. */
struct prov_node_job {
	struct session *s;
	const struct cfg_template *t;
	struct cust_plan *cplan;
	struct plan *dry;
	struct prov_shared *sh;
	size_t index;
	struct pve_client *pve; /* NULL: a client of its own */
	struct prov_result res;
	struct phx_err err;
	int rc;
};

static void *prov_node_run(void *arg)
{
	struct prov_node_job *j = arg;
	struct pve_client *own = j->pve ? NULL : session_node_client(j->s, j->res.node, &j->err);
	struct prov_ctx p = {.s = j->s,
			     .index = j->index,
			     .pve = j->pve ? j->pve : own,
			     .plan = j->cplan,
			     .dry = j->dry,
			     .node = j->res.node,
			     .sh = j->sh};

	j->rc = -1;
	if (!p.pve) {
		/* the nodes after this one wait for its turn */
		prov_turn_take(j->sh, j->index);
		prov_turn_give(j->sh);
		return NULL;
	}
	p.txn = txn_new_journaled(p.pve, j->s->journal);
	if (!p.txn) {
		phx_err_set(&j->err, PHX_E_NOMEM, "out of memory");
		prov_turn_take(j->sh, j->index);
		prov_turn_give(j->sh);
	} else {
		j->rc = prov_one(&p, j->t, &j->res, &j->err);
	}
	txn_free(p.txn);
	pve_client_free(own);
	return NULL;
}

/* Builds (or checks) one template on each of its nodes: the image is fetched and customized
 * once, then every node uploads and builds at the same time. With several nodes a failure
 * on one rolls back that node's half-made template only; the others stay, and the error
 * names every node that failed. */
static int prov_template(struct session *s, const struct cfg_template *t, struct cust_plan *cplan,
			 struct plan *dry, json_t *metrics, struct phx_err *err)
{
	struct prov_shared sh = {.img = IMG_RESULT_INIT,
				 .per_node = t->all_nodes || t->nodes.n > 1};
	struct buf failed = BUF_INIT;
	const char **nodes = NULL;
	json_t *node_list = NULL;
	struct prov_node_job *jobs = NULL;
	pthread_t *th = NULL;
	size_t n_nodes = 0, n_failed = 0, started = 0;
	enum phx_err_code code = PHX_E_RUNTIME;
	int rc = -1;

	pthread_mutex_init(&sh.mu, NULL);
	pthread_cond_init(&sh.turn_cv, NULL);
	if (prov_nodes(s, t, &nodes, &n_nodes, &node_list, err) < 0)
		goto out;
	if (!dry && n_nodes > 1 && !(sh.import_txn = txn_new_journaled(s->pve, s->journal))) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	jobs = calloc(n_nodes, sizeof(*jobs));
	th = calloc(n_nodes, sizeof(*th));
	if (!jobs || !th) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < n_nodes; k++)
		jobs[k] = (struct prov_node_job){.s = s, .t = t, .cplan = cplan, .dry = dry,
						 .sh = &sh, .index = k,
						 .res = {.t = t, .node = nodes[k]},
						 .err = PHX_ERR_INIT};
	if (dry || n_nodes == 1) {
		/* a dry run's plan is collected in node order */
		for (size_t k = 0; k < n_nodes; k++) {
			jobs[k].pve = s->pve;
			prov_node_run(&jobs[k]);
		}
	} else {
		for (; started < n_nodes; started++)
			if (pthread_create(&th[started], NULL, prov_node_run, &jobs[started]) != 0)
				break;
		for (size_t k = started; k < n_nodes; k++) {
			jobs[k].pve = s->pve;
			prov_node_run(&jobs[k]);
		}
		for (size_t k = 0; k < started; k++)
			pthread_join(th[k], NULL);
	}
	if (txn_count(sh.import_txn)) {
		/* every node has imported the shared upload (or failed): it is only clutter now
		 * (a shared archive that a node made its template from was committed then); a
		 * removal that fails stays in the journal for the next run */
		log_info("template '%s': deleting the %s the nodes shared", t->name,
			 t->kind == CFG_KIND_LXC ? "archive" : "import volume");
		txn_rollback(sh.import_txn, NULL);
	}
	for (size_t k = 0; k < n_nodes; k++) {
		struct prov_node_job *j = &jobs[k];

		if (metrics && prov_metrics_add(metrics, &j->res, j->rc == 0) < 0) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		if (j->rc == 0 && !dry)
			prov_print(s, &j->res);
		if (j->rc == 0)
			continue;
		if (!sh.per_node || j->err.code == PHX_E_INTERRUPTED) {
			*err = j->err;
			goto out;
		}
		code = j->err.code;
		n_failed++;
		buf_printf(&failed, NULL, "\n  node '%s': %s", nodes[k], j->err.msg);
	}
	if (n_failed) {
		phx_err_set(err, code,
			    "template '%s' failed on %zu of %zu nodes (the others are "
			    "built):%s",
			    t->name, n_failed, n_nodes, buf_str(&failed));
		goto out;
	}
	rc = 0;
out:
	for (size_t k = 0; jobs && k < n_nodes; k++)
		free(jobs[k].res.name);
	free(jobs);
	free(th);
	txn_free(sh.import_txn);
	pthread_mutex_destroy(&sh.mu);
	pthread_cond_destroy(&sh.turn_cv);
	buf_release(&failed);
	free(nodes);
	json_decref(node_list);
	img_result_release(&sh.img);
	free(sh.work);
	free(sh.build_name);
	return rc;
}

static int cmd_provision_run(struct session *s, struct phx_err *err)
{
	const struct cli_opts *opts = s->opts;
	struct cust_plan **plans = NULL;
	const struct cfg_template **todo = NULL;
	struct plan dry = PLAN_INIT;
	json_t *metrics = NULL;
	double started = clk_wall();
	size_t n = 0;
	int rc = -1;

	todo = calloc(s->cfg->n_templates + opts->n_names + 1, sizeof(*todo));
	plans = calloc(s->cfg->n_templates + opts->n_names + 1, sizeof(*plans));
	if (!todo || !plans) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	if (opts->n_names) {
		for (size_t i = 0; i < opts->n_names; i++) {
			todo[n] = cfg_find_template(s->cfg, opts->names[i]);
			if (!todo[n]) {
				phx_err_set(err, PHX_E_INPUT,
					    "%s: $.templates: no template named '%s'", s->cfg->path,
					    opts->names[i]);
				goto out;
			}
			n++;
		}
	} else {
		for (size_t i = 0; i < s->cfg->n_templates; i++)
			todo[n++] = &s->cfg->templates[i];
	}
	if (!n) {
		phx_err_set(err, PHX_E_INPUT, "%s: $.templates: no templates to provision",
			    s->cfg->path);
		goto out;
	}
	/* every local input is checked before the first request */
	for (size_t i = 0; i < n; i++) {
		if (opts->rebuild && !todo[i]->has_versions) {
			phx_err_set(err, PHX_E_INPUT,
				    "%s: $.templates: template '%s' has no 'versions': --rebuild "
				    "needs a version series, so the current template is kept "
				    "while a new one is built",
				    s->cfg->path, todo[i]->name);
			goto out;
		}
		if (prov_build_plan(todo[i], &plans[i], err) < 0)
			goto out;
	}
	if (opts->metrics_file && !opts->dry_run && !(metrics = json_array())) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	if (session_connect(s, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (prov_template(s, todo[i], plans[i], opts->dry_run ? &dry : NULL, metrics,
				  err) < 0)
			goto out;
	if (opts->dry_run) {
		const struct plan *all[] = {&dry};

		rc = cmd_plan_print(opts, "provision", all, 1, err);
		goto out;
	}
	rc = 0;
out:
	if (metrics) {
		/* also after a failure: the file is how a timer's failure is noticed */
		struct phx_err merr = PHX_ERR_INIT;

		if (prov_metrics_write(opts->metrics_file, metrics, started, rc == 0, &merr) < 0) {
			if (rc == 0)
				rc = phx_err_set(err, merr.code, "%s", merr.msg);
			else
				log_warn("%s", merr.msg);
		}
		json_decref(metrics);
	}
	plan_release(&dry);
	for (size_t i = 0; plans && i < n; i++)
		cust_plan_free(plans[i]);
	free(plans);
	free(todo);
	return rc;
}

const struct cmd_entry cmd_provision_entry = {"provision", CMD_SERVER | CMD_LOCK,
					      cmd_provision_run};
