/* cmd_check: --check loads and validates the config, applies the environment overrides, runs
 * every check a real run would make before its first request (the secret file as the run
 * would open it, each template's customization plan, each VM's deploy preparation: the same
 * functions, so --check cannot accept what a run refuses) and prints a summary (templates,
 * VMs, features) as text or JSON. Contacts no server and reads no secret: a valid config with
 * an unset connection is still valid, the summary says so. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cmd.h"
#include "config.h"
#include "deploy.h"

static const char *check_clone_source(const struct cfg *cfg, const struct cfg_vm *vm, char *buf,
				      size_t n)
{
	const struct cfg_template *t = cfg_vm_template(cfg, vm);

	if (vm->clone_from_template && t && t->has_versions)
		snprintf(buf, n, "template '%s', %s", vm->clone_from_template,
			 vm->template_select == CFG_SELECT_PINNED   ? vm->template_version
			 : vm->template_select == CFG_SELECT_LATEST ? "its newest version"
								    : "its newest validated version");
	else if (vm->clone_from_template)
		snprintf(buf, n, "template '%s'", vm->clone_from_template);
	else if (t)
		snprintf(buf, n, "VMID %lu (template '%s')", vm->clone_from_vmid, t->name);
	else
		snprintf(buf, n, "VMID %lu (not in this config: the server must provide it)",
			 vm->clone_from_vmid);
	return buf;
}

/* The clone path as far as the config tells (deploy_clone_path_offline), as a sentence. */
static const char *check_clone_path(const struct cfg *cfg, const struct cfg_vm *vm, char *buf,
				    size_t n)
{
	const char *node = NULL;

	switch (deploy_clone_path_offline(cfg, vm, &node)) {
	case DEPLOY_CLONE_OWN_NODE:
		if (node)
			snprintf(buf, n, "clones the template on %s", node);
		else
			snprintf(buf, n, "clones the template on the cluster's only node");
		break;
	case DEPLOY_CLONE_PLACED:
		snprintf(buf, n,
			 "node \"auto\": placed at run time (--dry-run shows where and how "
			 "it is cloned)");
		break;
	case DEPLOY_CLONE_CROSS_NODE:
		snprintf(
			buf, n,
			"across nodes: a clone with target when the template's disks are on shared "
			"storage, else a full clone and an offline migration (--dry-run shows "
			"which)");
		break;
	default:
		snprintf(buf, n,
			 "the config does not say where the template is: --dry-run "
			 "shows the clone path");
		break;
	}
	return buf;
}

/* Which template a VM resolves to, as far as the config tells: a fixed VMID, or a policy
 * over a series whose members only the server knows (--dry-run names the VMID). */
static json_t *check_selection_json(const struct cfg_template *t, const struct cfg_vm *vm)
{
	static const char *const policy[] = {
		[CFG_SELECT_VALIDATED] = "validated",
		[CFG_SELECT_LATEST] = "latest",
		[CFG_SELECT_PINNED] = "pinned",
	};

	if (!t->has_versions)
		return json_pack("{s:s, s:s, s:I}", "template", t->name, "policy", "fixed",
				 "vmid", (json_int_t)t->vmid);
	return json_pack("{s:s, s:s, s:s?, s:[I, I]}", "template", t->name, "policy",
			 policy[vm->template_select], "version", vm->template_version,
			 "vmid_range", (json_int_t)t->versions.vmid_min,
			 (json_int_t)t->versions.vmid_max);
}

static void check_print_strv(FILE *out, const struct cfg_strv *v)
{
	for (size_t i = 0; i < v->n; i++)
		fprintf(out, "%s%s", i ? "," : "", v->items[i]);
}

static void check_print_text(FILE *out, const struct cfg *cfg, const char *secret_from)
{
	const struct cfg_proxmox *px = &cfg->proxmox;
	const char *node = cfg_default_node(cfg);
	char src[160], path[200];

	fprintf(out, "config %s: valid\n", cfg->path);
	fprintf(out, "proxmox: %s, token %s, node %s, tls %s\n",
		px->api_url ? px->api_url : "(no API URL: set proxmox.api_url or PVE_API_URL)",
		px->token_id ? px->token_id : "(no token ID: set proxmox.token_id or PVE_TOKEN_ID)",
		node ? node : "(ask the server)",
		px->tls.fingerprint ? "pinned fingerprint"
		: px->tls.insecure  ? "NOT VERIFIED (insecure)"
		: px->tls.ca_file   ? "CA file"
				    : "system CAs");
	fprintf(out, "secret: %s\n",
		secret_from ? secret_from
			    : "(none: set PVE_TOKEN_SECRET_FILE or proxmox.token_secret_file)");
	fprintf(out, "templates: %zu\n", cfg->n_templates);
	for (size_t i = 0; i < cfg->n_templates; i++) {
		const struct cfg_template *t = &cfg->templates[i];

		fprintf(out, "  %s: ", t->name);
		if (t->has_versions)
			fprintf(out, "versions in VMIDs %lu..%lu (keep %lu)", t->versions.vmid_min,
				t->versions.vmid_max, t->versions.keep);
		else
			fprintf(out, "VMID %lu", t->vmid);
		if (t->kind == CFG_KIND_LXC)
			fprintf(out,
				", container template (%s%s), %u cores, %lu MiB, rootfs %s:%lu, "
				"archive on %s, tarball %s, verified by %s\n",
				t->ct.unprivileged ? "unprivileged" : "privileged",
				t->ct.nesting ? ", nesting" : "", t->ct.cores, t->ct.memory_mb,
				t->ct.storage, t->ct.rootfs_gb, t->ct.template_storage, t->image_url,
				t->sha256	 ? "pinned sha256"
				: t->keyring ? "signed checksums"
					     : "checksums");
		else if (t->artifact)
			fprintf(out,
				", %u cores, %lu MiB, storage %s, published artifact %s (used as "
				"built)\n",
				t->hardware.cores, t->hardware.memory_mb, t->hardware.storage,
				t->artifact);
		else
			fprintf(out, ", %u cores, %lu MiB, storage %s, image %s, verified by %s\n",
				t->hardware.cores, t->hardware.memory_mb, t->hardware.storage,
				t->image_url,
				t->sha256	 ? "pinned sha256"
				: t->keyring ? "signed checksums"
					     : "checksums");
	}
	fprintf(out, "vms: %zu\n", cfg->n_vms);
	for (size_t i = 0; i < cfg->n_vms; i++) {
		const struct cfg_vm *vm = &cfg->vms[i];

		fprintf(out, "  %lu %s: clone %s", vm->vmid, vm->name,
			check_clone_source(cfg, vm, src, sizeof(src)));
		if (vm->cores)
			fprintf(out, ", %u cores", vm->cores);
		if (vm->memory_mb)
			fprintf(out, ", %lu MiB", vm->memory_mb);
		if (vm->disk_size_gb)
			fprintf(out, ", %lu GB disk", vm->disk_size_gb);
		if (vm->network.ip)
			fprintf(out, ", ip %s gw %s", vm->network.ip,
				vm->network.gw ? vm->network.gw : "none");
		else
			fprintf(out, ", dhcp");
		if (vm->has_user)
			fprintf(out, ", user %s", vm->user.username);
		if (vm->features.n) {
			fprintf(out, ", features ");
			check_print_strv(out, &vm->features);
		}
		fprintf(out, "\n    clone path: %s\n",
			check_clone_path(cfg, vm, path, sizeof(path)));
	}
	if (cfg->n_cts)
		fprintf(out, "containers: %zu\n", cfg->n_cts);
	for (size_t i = 0; i < cfg->n_cts; i++) {
		const struct cfg_ct *ct = &cfg->cts[i];

		if (ct->clone_from_template)
			fprintf(out, "  %lu %s: from template '%s'", ct->vmid, ct->name,
				ct->clone_from_template);
		else
			fprintf(out, "  %lu %s: from CT %lu", ct->vmid, ct->name,
				ct->clone_from_vmid);
		fprintf(out, " (%s)", cfg_ct_needs_create(ct) ? "created from its archive: root's "
								"password or keys are set"
				      : ct->full_clone ? "full clone"
						       : "linked clone where its storage allows");
		if (ct->cores)
			fprintf(out, ", %u cores", ct->cores);
		if (ct->memory_mb)
			fprintf(out, ", %lu MiB", ct->memory_mb);
		if (ct->rootfs_gb)
			fprintf(out, ", rootfs %lu GB on %s", ct->rootfs_gb, ct->storage);
		for (size_t k = 0; k < ct->n_nics; k++)
			fprintf(out, ", net%zu %s %s", k, ct->nics[k].bridge,
				ct->nics[k].ip ? ct->nics[k].ip : "no IPv4");
		fprintf(out, "\n");
	}
	fprintf(out, "features: %zu\n", cfg->n_features);
	for (size_t i = 0; i < cfg->n_features; i++) {
		const struct cfg_feature *f = &cfg->features[i];

		fprintf(out, "  %s: %s%s\n", f->name, f->script_path ? f->script_path : f->script,
			f->builtin
				? (f->script_path ? " (built-in)" : " (built-in, script not found)")
				: "");
	}
}

/* $.containers as --check --output json shows them (never root's password or keys). */
static json_t *check_containers_json(const struct cfg *cfg)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < cfg->n_cts; i++) {
		const struct cfg_ct *ct = &cfg->cts[i];
		json_t *o = json_pack("{s:I, s:s, s:s?, s:s, s:b, s:s, s:s}", "vmid",
				      (json_int_t)ct->vmid, "name", ct->name, "template",
				      ct->clone_from_template, "storage", ct->storage, "full_clone",
				      ct->full_clone, "creation",
				      cfg_ct_needs_create(ct) ? "create from archive" : "clone",
				      "config_id", ct->config_id);

		if (o && ct->clone_from_vmid)
			json_object_set_new(o, "clone_from_vmid",
					    json_integer((json_int_t)ct->clone_from_vmid));
		if (o)
			json_array_append_new(arr, o);
	}
	return arr ? arr : json_null();
}

static json_t *check_strv_json(const struct cfg_strv *v)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < v->n; i++)
		json_array_append_new(a, json_string(v->items[i]));
	return a;
}

/* problems: the offline checks' lines, or NULL when they passed */
static json_t *check_json(const struct cfg *cfg, const char *secret_from, const char *problems)
{
	const struct cfg_proxmox *px = &cfg->proxmox;
	json_t *root, *templates, *vms, *features;

	templates = json_array();
	for (size_t i = 0; templates && i < cfg->n_templates; i++) {
		const struct cfg_template *t = &cfg->templates[i];
		json_t *o = json_pack("{s:s, s:I, s:s?, s:s?, s:s?, s:s?, s:i, s:I, s:s, s:o}",
				      "name", t->name, "vmid", (json_int_t)t->vmid, "image_url",
				      t->image_url, "checksum_url", t->checksum_url, "sha256",
				      t->sha256, "os", t->os, "cores", (int)t->hardware.cores,
				      "memory_mb", (json_int_t)t->hardware.memory_mb, "storage",
				      t->hardware.storage, "tags", check_strv_json(&t->tags));

		if (o && t->artifact)
			json_object_set_new(o, "artifact", json_string(t->artifact));
		if (o && t->keyring)
			json_object_set_new(o, "signature",
					    json_pack("{s:s, s:s}", "url", t->signature_url,
						      "keyring", t->keyring));
		if (o && t->has_versions)
			json_object_set_new(o, "versions",
					    json_pack("{s:I, s:I, s:I, s:b}", "vmid_min",
						      (json_int_t)t->versions.vmid_min, "vmid_max",
						      (json_int_t)t->versions.vmid_max, "keep",
						      (json_int_t)t->versions.keep,
						      "rebuild_on_change",
						      t->versions.rebuild_on_change));
		json_array_append_new(templates, o);
	}
	vms = json_array();
	for (size_t i = 0; vms && i < cfg->n_vms; i++) {
		const struct cfg_vm *vm = &cfg->vms[i];
		const struct cfg_template *t = cfg_vm_template(cfg, vm);
		json_t *o = json_pack("{s:I, s:s, s:s?, s:s?, s:s, s:b, s:o}", "vmid",
				      (json_int_t)vm->vmid, "name", vm->name, "ip", vm->network.ip,
				      "gw", vm->network.gw, "storage", vm->storage, "full_clone",
				      vm->full_clone, "features", check_strv_json(&vm->features));

		if (!o)
			continue;
		if (vm->clone_from_vmid)
			json_object_set_new(o, "clone_from_vmid",
					    json_integer((json_int_t)vm->clone_from_vmid));
		if (t)
			json_object_set_new(o, "template", json_string(t->name));
		if (t && vm->clone_from_template)
			json_object_set_new(o, "template_selection", check_selection_json(t, vm));
		json_object_set_new(o, "template_on_server_only", json_boolean(!t));
		{
			const char *node = NULL;
			enum deploy_clone_path path = deploy_clone_path_offline(cfg, vm, &node);

			/* the VM's node as configured: null leaves it to the server */
			json_object_set_new(o, "node",
					    cfg_vm_node(cfg, vm) ? json_string(cfg_vm_node(cfg, vm))
								 : json_null());
			json_object_set_new(o, "clone_path",
					    json_string(deploy_clone_path_name(path)));
		}
		if (vm->cores)
			json_object_set_new(o, "cores", json_integer(vm->cores));
		if (vm->memory_mb)
			json_object_set_new(o, "memory_mb",
					    json_integer((json_int_t)vm->memory_mb));
		if (vm->disk_size_gb)
			json_object_set_new(o, "disk_size_gb",
					    json_integer((json_int_t)vm->disk_size_gb));
		if (vm->has_user)
			json_object_set_new(o, "username", json_string(vm->user.username));
		/* what a deployed VM's record says as "config:", to match it to its entry */
		json_object_set_new(o, "config_id", json_string(vm->config_id));
		json_array_append_new(vms, o);
	}
	features = json_array();
	for (size_t i = 0; features && i < cfg->n_features; i++) {
		const struct cfg_feature *f = &cfg->features[i];

		json_array_append_new(features, json_pack("{s:s, s:s, s:s?, s:b}", "name", f->name,
							  "script", f->script, "script_path",
							  f->script_path, "builtin", f->builtin));
	}
	/* the secret is never part of this: only where it would come from */
	root = json_pack("{s:s, s:b, s:{s:s?, s:s?, s:s?, s:s?, s:b, s:s?}, s:o, s:o, s:o}",
			 "config", cfg->path, "valid", !problems, "proxmox", "api_url", px->api_url,
			 "token_id", px->token_id, "node", cfg_default_node(cfg), "tls_fingerprint",
			 px->tls.fingerprint, "tls_insecure", px->tls.insecure, "secret_from",
			 secret_from, "templates", templates, "vms", vms, "features", features);
	if (root && problems) {
		json_t *lines = json_array();

		for (const char *p = problems; lines && *p;) {
			size_t n = strcspn(p, "\n");

			json_array_append_new(lines, json_stringn(p, n));
			p += n + (p[n] == '\n');
		}
		json_object_set_new(root, "problems", lines);
	}
	if (root && cfg->n_cts)
		json_object_set_new(root, "containers", check_containers_json(cfg));
	return root;
}

/* Every offline check of a real run, each problem one line; the first failing check's code. */
static int check_offline(const struct cfg *cfg, const char **ret_secret_from,
			 struct phx_err *err)
{
	struct phx_err e[3] = {PHX_ERR_INIT, PHX_ERR_INIT, PHX_ERR_INIT};
	struct buf msgs = BUF_INIT;
	enum phx_err_code code = PHX_E_NONE;

	cfg_check_secret(cfg, ret_secret_from, &e[0]);
	cmd_provision_check(cfg, &e[1]);
	cmd_deploy_check(cfg, &e[2]);
	for (size_t i = 0; i < 3; i++) {
		if (!phx_err_is_set(&e[i]))
			continue;
		if (code == PHX_E_NONE)
			code = e[i].code;
		buf_printf(&msgs, NULL, "%s%s", msgs.len ? "\n" : "", e[i].msg);
	}
	if (code == PHX_E_NONE)
		return 0;
	phx_err_set(err, code, "%s", msgs.len ? buf_str(&msgs) : e[0].msg);
	buf_release(&msgs);
	return -1;
}

static int cmd_check_run(struct session *s, struct phx_err *err)
{
	struct phx_err problems = PHX_ERR_INIT;
	const char *secret_from = NULL;
	int r = 0;

	check_offline(s->cfg, &secret_from, &problems);
	/* JSON readers (the shell completions, CI) still get the config's names when a check
	 * failed, marked "valid": false with the problems; text shows only the problems */
	if (s->opts->output == CLI_OUTPUT_JSON) {
		json_t *doc = check_json(s->cfg, secret_from,
					 phx_err_is_set(&problems) ? problems.msg : NULL);

		if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 ||
		    fputc('\n', stdout) == EOF)
			r = phx_err_set(err, doc ? PHX_E_IO : PHX_E_NOMEM,
					"writing the check summary failed");
		json_decref(doc);
	} else if (!phx_err_is_set(&problems)) {
		check_print_text(stdout, s->cfg, secret_from);
	}
	if (phx_err_is_set(&problems)) {
		*err = problems;
		return -1;
	}
	return r;
}

/* contacts no server: the config was loaded and validated by main, the rest is checked here */
const struct cmd_entry cmd_check_entry = {"check", 0, cmd_check_run};
