/* plan: building, rendering (text and the JSON document of docs/plan-json.md) and the pure
 * deploy planner that fills it (deploy_plan_vm): a new VM, a converged one (the empty plan),
 * a running one, native mode's secret. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "deploy.h"
#include "plan.h"
#include "provision.h"

TestSuite(plan);

static char *render(const struct plan *p)
{
	struct phx_err err = PHX_ERR_INIT;
	struct buf b = BUF_INIT;

	cr_assert_eq(plan_render_text(p, &b, &err), 0, "%s", err.msg);
	return buf_detach(&b);
}

Test(plan, renders_changes_request_undo_and_redacts_secrets)
{
	struct plan p = PLAN_INIT;
	struct plan_action *a = plan_add(&p, PLAN_REQUEST, PLAN_CHANGE, "VM 8001 'web'", "POST",
					 "/nodes/%s/qemu/%d/config", "pve1", 8001);
	char *text;

	plan_summary(&p, a, "configure VM %d", 8001);
	plan_set(&p, a, "cores", "2", "4", 0);
	plan_set(&p, a, "cipassword", NULL, "$6$salt$hash", PLAN_SECRET);
	plan_change(&p, a, "ide0", "local:cloudinit", NULL, false);
	plan_undo_vm(&p, a, "pve1", 8001, "web", NULL);
	plan_note(&p, "VM 8001 'web'", "scsi0 is 20G, larger than disk_size_gb 10: not shrinking");
	cr_assert_eq(plan_check(&p, NULL), 0);
	text = render(&p);
	cr_assert_str_eq(text,
			 "VM 8001 'web':\n"
			 "  ~ configure VM 8001\n"
			 "      ~ cores: 2 -> 4\n"
			 "      + cipassword: <redacted>\n"
			 "      - ide0: local:cloudinit\n"
			 "      POST /nodes/pve1/qemu/8001/config cores=4 cipassword=<redacted>\n"
			 "      undo on failure: destroy VM 8001\n"
			 "VM 8001 'web': = scsi0 is 20G, larger than disk_size_gb 10: not "
			 "shrinking\n");
	cr_assert_null(strstr(text, "$6$"));
	free(text);
	plan_release(&p);
}

Test(plan, json_document_lists_pending_params_and_counts_actions)
{
	struct phx_err err = PHX_ERR_INIT;
	struct plan p = PLAN_INIT;
	struct plan_action *a = plan_add(&p, PLAN_UPLOAD, PLAN_CREATE, "template 9000 't'", "POST",
					 "/nodes/pve1/storage/local/upload");
	json_t *doc = plan_json_document("provision", &err), *o;
	char *dump;

	plan_summary(&p, a, "upload");
	plan_param(&p, a, "content", "import", 0);
	plan_param(&p, a, "checksum", "<known after customization>", PLAN_PENDING);
	plan_param(&p, a, "skipped", NULL, 0);
	plan_upload_file(&p, a, "/tmp/x.qcow2", "x.qcow2");
	plan_undo_volume(&p, a, "pve1", "local:import/x.qcow2");
	plan_condition(&p, a, "the sun shines");
	cr_assert_not_null(doc);
	cr_assert_eq(plan_json_append(&p, doc, &err), 0, "%s", err.msg);
	cr_assert_eq(json_integer_value(json_object_get(doc, "plan_version")), PLAN_JSON_VERSION);
	cr_assert_eq(json_integer_value(json_object_get(doc, "changes")), 1);
	o = json_array_get(json_object_get(doc, "actions"), 0);
	dump = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	cr_assert_str_eq(
		dump,
		"{\"object\":\"template 9000 "
		"'t'\",\"action\":\"+\",\"kind\":\"upload\",\"summary\":"
		"\"upload\",\"method\":\"POST\",\"path\":\"/nodes/pve1/storage/local/upload\","
		"\"params\":{\"content\":\"import\",\"checksum\":\"<known after customization>\"},"
		"\"pending\":[\"checksum\"],\"upload\":{\"file\":\"/tmp/x.qcow2\",\"filename\":"
		"\"x.qcow2\"},\"changes\":[],\"condition\":\"the sun shines\",\"undo\":\"delete "
		"volume 'local:import/x.qcow2'\",\"best_effort\":false}");
	free(dump);
	json_decref(doc);
	plan_release(&p);
}

Test(plan, escape_keeps_unreserved_and_drop_removes_one_action)
{
	struct plan p = PLAN_INIT;
	struct plan_action *a, *b;
	char *e = plan_escape(&p, "local:iso/phoenix-ci-1_a.b~c.iso");

	cr_assert_str_eq(e, "local%3Aiso%2Fphoenix-ci-1_a.b~c.iso");
	free(e);
	a = plan_add(&p, PLAN_REQUEST, PLAN_RUN, "x", "POST", "/a");
	b = plan_add(&p, PLAN_REQUEST, PLAN_RUN, "x", "POST", "/b");
	plan_drop(&p, a);
	cr_assert_eq(p.n, 1);
	cr_assert_eq(p.actions[0], b);
	cr_assert(!plan_empty(&p));
	plan_release(&p);
	cr_assert(plan_empty(&p));
}

/* ---- deploy_plan_vm ---- */

static char *keys[] = {"ssh-ed25519 AAAA admin@example"};
static char *tag_items[] = {"web"};

static struct cfg_vm test_vm(void)
{
	struct cfg_vm vm;

	memset(&vm, 0, sizeof(vm));
	vm.vmid = 8001;
	vm.name = "web-1";
	vm.clone_from_vmid = 9000;
	vm.cores = 4;
	vm.memory_mb = 8192;
	vm.disk_size_gb = 100;
	vm.network.bridge = "vmbr0";
	vm.has_user = true;
	vm.user.username = "admin";
	vm.user.password_hash = "$6$salt$hash";
	vm.user.ssh_public_keys = (struct cfg_strv){keys, 1};
	vm.storage = "local";
	vm.tags = (struct cfg_strv){tag_items, 1};
	return vm;
}

static const struct pve_vm_info tpl = {9000, "tpl", "pve1", "phoenix", "stopped", true, false};

static json_t *tpl_conf(void)
{
	return json_pack("{ss ss si ss ss ss ss ss}", "net0",
			 "virtio=BC:24:11:00:00:01,bridge=vmbr0", "scsi0",
			 "local:9000/base-9000-disk-0.qcow2,size=10G", "cores", 2, "memory", "2048",
			 "agent", "enabled=1", "tags", "phoenix", "ide2", "local:cloudinit", "boot",
			 "order=scsi0");
}

/* A new VM from `tpl` in ISO mode, its seed on `storage`. */
static struct deploy_vm_input iso_input(const struct cfg_vm *vm, const json_t *conf,
					const char *storage)
{
	static char volid[128];

	snprintf(volid, sizeof(volid), "%s:iso/phoenix-ci-8001-0123456789ab.iso", storage);
	return (struct deploy_vm_input){
		.vm = vm,
		.src = &tpl,
		.conf = conf,
		.node = "pve1",
		.mac = "BC:24:11:AA:BB:CC",
		.seed_sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		.seed_storage = storage,
		.seed_volid = volid,
		.seed_file = "/tmp/seed.iso",
	};
}

/* A new VM from `tpl` in native mode (Proxmox's cloud-init options). */
static struct deploy_vm_input native_input(const struct cfg_vm *vm, const json_t *conf)
{
	return (struct deploy_vm_input){.vm = vm,
					.src = &tpl,
					.conf = conf,
					.node = "pve1",
					.mac = "BC:24:11:AA:BB:CC",
					.seed_sha = "ab",
					.ipconfig = "ip=dhcp"};
}

/* VM 8001 as test_vm() leaves it after a deploy in ISO mode, its record naming `desc`. */
static json_t *converged_conf(const char *desc)
{
	return json_pack("{ss ss ss ss ss ss ss ss}", "net0",
			 "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0", "scsi0",
			 "local:8001/vm-8001-disk-0.qcow2,size=100G", "cores", "4", "memory", "8192",
			 "agent", "1", "tags", "phoenix;web", "ide2",
			 "local:iso/phoenix-ci-8001-0123456789ab.iso,media=cdrom", "description",
			 desc);
}

static const char *summaries(const struct plan *p, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->n && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%c %s", i ? "; " : "",
					 p->actions[i]->sym, p->actions[i]->summary);
	return buf;
}

Test(plan, deploy_new_vm_clones_uploads_configures_grows_and_starts)
{
	struct cfg_vm vm = test_vm();
	json_t *conf = tpl_conf();
	struct deploy_vm_input in = iso_input(&vm, conf, "local");
	struct deploy_plan_info info;
	struct phx_err err = PHX_ERR_INIT;
	struct plan p = PLAN_INIT;
	const struct plan_action *cfg;
	char buf[1024];

	cr_assert_eq(deploy_plan_vm(&in, &p, &info, &err), 0, "%s", err.msg);
	cr_assert_str_eq(summaries(&p, buf, sizeof(buf)),
			 "+ linked clone of template 9000 'tpl'; "
			 "+ upload cloud-init seed 'local:iso/phoenix-ci-8001-0123456789ab.iso'; "
			 "~ configure VM 8001; ~ grow scsi0 to 100G; > start");
	cr_assert_str_eq(p.actions[0]->path, "/nodes/pve1/qemu/9000/clone");
	cr_assert_null(plan_param_get(p.actions[0], "storage"), "linked clones take no storage");
	cr_assert_eq(p.actions[0]->undo.kind, PLAN_UNDO_VM);
	cr_assert_str_eq(p.actions[1]->filename, "phoenix-ci-8001-0123456789ab.iso");
	cfg = p.actions[2];
	cr_assert_str_eq(plan_param_get(cfg, "net0"), "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0");
	cr_assert_str_eq(plan_param_get(cfg, "cores"), "4");
	cr_assert_str_eq(plan_param_get(cfg, "tags"), "phoenix;web");
	cr_assert_str_eq(plan_param_get(cfg, "ide2"),
			 "local:iso/phoenix-ci-8001-0123456789ab.iso,media=cdrom");
	cr_assert_null(plan_param_get(cfg, "agent"), "already enabled in the template");
	cr_assert_eq(cfg->flags & PLAN_COMMIT_AFTER, 0, "a new VM is undone whole");
	cr_assert_str_eq(p.actions[3]->changes[0].old, "10G");
	cr_assert(info.seed_changed && info.hw_changed);
	plan_release(&p);
	json_decref(conf);
}

Test(plan, deploy_converged_vm_has_the_empty_plan_and_a_running_one_is_not_started)
{
	struct cfg_vm vm = test_vm();
	const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char *desc = deploy_description(NULL, "c.json", "web-1", sha, NULL, NULL);
	struct pve_vm_info dst = {8001, "web-1", "pve1", "phoenix;web", "running", false, false};
	json_t *conf = converged_conf(desc);
	struct deploy_vm_input in = {.vm = &vm,
				     .dst = &dst,
				     .conf = conf,
				     .node = "pve1",
				     .running = true,
				     .seed_sha = sha,
				     .seed_storage = "local",
				     .seed_volid = "local:iso/phoenix-ci-8001-0123456789ab.iso",
				     .seed_present = true};
	struct deploy_plan_info info;
	struct phx_err err = PHX_ERR_INIT;
	struct plan p = PLAN_INIT;
	char buf[512];

	cr_assert_eq(deploy_plan_vm(&in, &p, &info, &err), 0, "%s", err.msg);
	cr_assert(plan_empty(&p), "%s", summaries(&p, buf, sizeof(buf)));
	cr_assert(!info.seed_changed && !info.hw_changed);
	plan_release(&p);

	/* more cores on a running VM: one config POST, no start, the caller warns */
	vm.cores = 6;
	cr_assert_eq(deploy_plan_vm(&in, &p, &info, &err), 0, "%s", err.msg);
	cr_assert_str_eq(summaries(&p, buf, sizeof(buf)), "~ configure VM 8001");
	cr_assert_eq(p.actions[0]->n_params, 1);
	cr_assert_str_eq(p.actions[0]->changes[0].old, "4");
	cr_assert(p.actions[0]->flags & PLAN_COMMIT_AFTER);
	cr_assert(info.hw_changed && !info.seed_changed);
	plan_release(&p);

	/* a smaller disk_size_gb never shrinks: a note, no action */
	vm.cores = 4;
	vm.disk_size_gb = 50;
	cr_assert_eq(deploy_plan_vm(&in, &p, &info, &err), 0, "%s", err.msg);
	cr_assert(plan_empty(&p));
	cr_assert_eq(p.n_notes, 1);
	cr_assert(strstr(p.notes[0].text, "not shrinking"), "%s", p.notes[0].text);
	plan_release(&p);
	json_decref(conf);
	free(desc);
}

Test(plan, deploy_native_mode_sends_the_hash_as_a_secret)
{
	struct cfg_vm vm = test_vm();
	json_t *conf = tpl_conf();
	struct deploy_vm_input in = native_input(&vm, conf);
	struct deploy_plan_info info;
	struct phx_err err = PHX_ERR_INIT;
	struct plan p = PLAN_INIT;
	char *text;

	cr_assert_eq(deploy_plan_vm(&in, &p, &info, &err), 0, "%s", err.msg);
	cr_assert_str_eq(plan_param_get(p.actions[1], "cipassword"), "$6$salt$hash");
	cr_assert_null(plan_param_get(p.actions[1], "ide2"), "the template has a cloud-init drive");
	text = render(&p);
	cr_assert_null(strstr(text, "$6$salt"), "%s", text);
	cr_assert(strstr(text, "cipassword=<redacted>"), "%s", text);
	free(text);
	plan_release(&p);
	json_decref(conf);
}

Test(plan, deploy_mac_is_fixed_per_vmid)
{
	char a[DEPLOY_MAC_LEN + 1], b[DEPLOY_MAC_LEN + 1], c[DEPLOY_MAC_LEN + 1];

	cr_assert_eq(deploy_mac_for_vmid(8001, a, NULL), 0);
	cr_assert_eq(deploy_mac_for_vmid(8001, b, NULL), 0);
	cr_assert_eq(deploy_mac_for_vmid(8002, c, NULL), 0);
	cr_assert_str_eq(a, b);
	cr_assert_str_neq(a, c);
	cr_assert_eq(strncmp(a, "BC:24:11:", 9), 0, "%s", a);
	cr_assert_eq(strspn(a + 9, "0123456789ABCDEF:"), 8, "%s", a);
}

Test(plan, deploy_needs_what_its_plan_does)
{
	struct cfg_vm vm = test_vm();
	json_t *conf = tpl_conf();
	struct deploy_vm_input in = iso_input(&vm, conf, "isos");
	struct deploy_plan_info info;
	struct phx_err err = PHX_ERR_INIT;
	struct plan p = PLAN_INIT;
	struct pf_need needs[8];
	char all[1024] = "";
	size_t n, used = 0;
	/* an SDN VNet named like the bridge: its zone's path */
	json_t *vnets = json_pack("[{s:s, s:s}]", "vnet", "vmbr0", "zone", "z1");

	cr_assert_eq(deploy_plan_vm(&in, &p, &info, &err), 0, "%s", err.msg);
	n = deploy_plan_needs(&p, &in, vnets, "VM.GuestAgent.Audit", needs, 8);
	json_decref(vnets);
	for (size_t i = 0; i < n; i++) {
		used += (size_t)snprintf(all + used, sizeof(all) - used, "%s:", needs[i].path);
		for (size_t k = 0; k < needs[i].n; k++)
			used += (size_t)snprintf(all + used, sizeof(all) - used, " %s",
						 needs[i].privs[k]);
		used += (size_t)snprintf(all + used, sizeof(all) - used, "; ");
	}
	/* the ISO replaces the template's cloud-init drive on ide2: CDROM and Cloudinit */
	cr_assert_str_eq(all, "/vms/9000: VM.Clone; "
			      "/vms/8001: VM.Allocate VM.Config.CPU VM.Config.Memory "
			      "VM.Config.Options VM.Config.Network VM.Config.Cloudinit "
			      "VM.Config.CDROM VM.Config.Disk VM.PowerMgmt VM.GuestAgent.Audit; "
			      "/sdn/zones/z1/vmbr0: SDN.Use; "
			      "/storage/isos: Datastore.AllocateTemplate; ");
	plan_release(&p);
	json_decref(conf);
}

Test(plan, deploy_clones_full_where_the_template_has_no_base_volume)
{
	/* thick LVM: template conversion leaves vm-9000-disk-0 as it is (pve-storage
	 * LVMPlugin has no base volumes), and a linked clone would die with "Linked clone
	 * feature is not supported" */
	struct cfg_vm vm = test_vm();
	json_t *conf = tpl_conf();
	struct deploy_vm_input in = native_input(&vm, conf);
	struct deploy_plan_info info;
	struct phx_err err = PHX_ERR_INIT;
	struct plan p = PLAN_INIT;

	cr_assert_str_eq(deploy_unlinkable_disk(conf) ? "x" : "none", "none");
	json_object_set_new(conf, "scsi0", json_string("thick:vm-9000-disk-0,size=10G"));
	cr_assert_str_eq(deploy_unlinkable_disk(conf), "scsi0");
	cr_assert_eq(deploy_plan_vm(&in, &p, &info, &err), 0, "%s", err.msg);
	cr_assert_str_eq(p.actions[0]->summary, "full clone of template 9000 'tpl'");
	cr_assert_str_eq(plan_param_get(p.actions[0], "full"), "1");
	cr_assert_str_eq(plan_param_get(p.actions[0], "storage"), "local");
	cr_assert_eq(p.n_notes, 1);
	cr_assert(strstr(p.notes[0].text, "scsi0 of template 9000 is not a base volume"), "%s",
		  p.notes[0].text);
	cr_assert(strstr(p.notes[0].text, "'thick:vm-9000-disk-0'"), "%s", p.notes[0].text);
	plan_release(&p);
	/* every base volume kind counts as linkable */
	json_object_set_new(conf, "scsi0", json_string("local-lvm:base-9000-disk-0,size=10G"));
	json_object_set_new(conf, "virtio1", json_string("rbd:base-9000-disk-1,size=1G"));
	json_object_set_new(conf, "ide0", json_string("none,media=cdrom"));
	cr_assert_null(deploy_unlinkable_disk(conf));
	json_decref(conf);
}

Test(plan, converge_rewrites_nothing_and_keeps_what_the_vm_already_names)
{
	struct cfg_vm vm = test_vm();
	const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char *desc = deploy_description(NULL, "c.json", "web-1", sha, NULL, NULL);
	struct pve_vm_info dst = {8001, "web-1", "pve1", "phoenix;web", "running", false, false};
	json_t *conf = converged_conf(desc);
	struct deploy_vm_input in = iso_input(&vm, conf, "local");
	struct deploy_plan_info info;
	struct phx_err err = PHX_ERR_INIT;
	struct plan p = PLAN_INIT;

	json_object_set_new(conf, "cicustom",
			    json_string("user=local:snippets/phoenix-ci-8001-user.yaml"));
	in.dst = &dst;
	in.src = NULL;
	in.running = true;
	in.seed_sha = sha;
	/* the seed the VM names was removed from the storage: uploaded again, and once there it
	 * is the VM's, so a later failure must not delete it */
	cr_assert_eq(deploy_plan_vm(&in, &p, &info, &err), 0, "%s", err.msg);
	cr_assert_eq(p.n, 1);
	cr_assert_eq(p.actions[0]->kind, PLAN_UPLOAD);
	cr_assert(p.actions[0]->flags & PLAN_COMMIT_AFTER);
	plan_release(&p);

	/* native mode with a snippet of the same content: nothing is written again */
	in.seed_volid = NULL;
	in.cicustom = "user=local:snippets/phoenix-ci-8001-user.yaml";
	in.snippet_path = "/var/lib/vz/snippets/phoenix-ci-8001-user.yaml";
	in.snippet = "#cloud-config\n";
	in.snippet_len = 14;
	in.snippet_exists = true;
	in.ipconfig = "ip=dhcp";
	json_object_set_new(conf, "ipconfig0", json_string("ip=dhcp"));
	json_object_set_new(conf, "ide2",
			    json_string("local:8001/vm-8001-cloudinit.qcow2,media=cdrom"));
	cr_assert_eq(deploy_plan_vm(&in, &p, &info, &err), 0, "%s", err.msg);
	cr_assert(plan_empty(&p), "%zu actions, first: %s", p.n, p.n ? p.actions[0]->summary : "");
	plan_release(&p);
	/* the file is gone: written again */
	in.snippet_exists = false;
	cr_assert_eq(deploy_plan_vm(&in, &p, &info, &err), 0, "%s", err.msg);
	cr_assert_eq(p.n, 1);
	cr_assert_eq(p.actions[0]->kind, PLAN_WRITE_FILE);
	plan_release(&p);
	json_decref(conf);
	free(desc);
}

Test(plan, deploy_to_another_node_clones_with_target_or_clones_and_migrates)
{
	struct cfg_vm vm = test_vm();
	json_t *conf = tpl_conf();
	struct deploy_vm_input in = iso_input(&vm, conf, "local");
	json_t *storages = json_pack("[{ss ss} {ss ss si}]", "storage", "local", "type", "dir",
				     "storage", "shared", "type", "dir", "shared", 1);
	struct deploy_plan_info info;
	struct phx_err err = PHX_ERR_INIT;
	struct plan p = PLAN_INIT;
	char buf[1024];

	in.node = "pve2";
	/* the template's disk is on node-local 'local': clone beside it, then migrate */
	in.src_shared = deploy_disks_shared(storages, conf);
	cr_assert(!in.src_shared);
	cr_assert_eq(deploy_plan_vm(&in, &p, &info, &err), 0, "%s", err.msg);
	cr_assert_str_eq(
		summaries(&p, buf, sizeof(buf)),
		"+ full clone of template 9000 'tpl'; ~ migrate VM 8001 from 'pve1' to "
		"'pve2'; + upload cloud-init seed "
		"'local:iso/phoenix-ci-8001-0123456789ab.iso'; ~ configure VM 8001; ~ grow "
		"scsi0 to 100G; > start");
	cr_assert_str_eq(p.actions[0]->path, "/nodes/pve1/qemu/9000/clone");
	cr_assert_null(plan_param_get(p.actions[0], "target"));
	cr_assert_null(plan_param_get(p.actions[0], "storage"));
	cr_assert_str_eq(plan_param_get(p.actions[1], "target"), "pve2");
	cr_assert_str_eq(plan_param_get(p.actions[1], "with-local-disks"), "1");
	cr_assert_str_eq(plan_param_get(p.actions[1], "targetstorage"), "local");
	cr_assert_str_eq(p.actions[2]->path, "/nodes/pve2/storage/local/upload");
	cr_assert_str_eq(p.actions[3]->path, "/nodes/pve2/qemu/8001/config");
	plan_release(&p);
	/* on shared storage the clone is made on the target node directly, linked */
	json_object_set_new(conf, "scsi0",
			    json_string("shared:9000/base-9000-disk-0.qcow2,size=10G"));
	in.src_shared = deploy_disks_shared(storages, conf);
	cr_assert(in.src_shared);
	cr_assert_eq(deploy_plan_vm(&in, &p, &info, &err), 0, "%s", err.msg);
	cr_assert_str_eq(p.actions[0]->summary, "linked clone of template 9000 'tpl' to node pve2");
	cr_assert_str_eq(plan_param_get(p.actions[0], "target"), "pve2");
	cr_assert(!strstr(p.actions[1]->path, "/migrate"));
	plan_release(&p);
	json_decref(storages);
	json_decref(conf);
}

Test(plan, placement_spreads_by_free_memory_and_skips_offline_nodes)
{
	struct deploy_node nodes[] = {
		{"pve1", true, 64ULL << 30, 8ULL << 30, 0},
		{"pve2", true, 64ULL << 30, 8ULL << 30, 0},
		{"pve3", false, 256ULL << 30, 0, 0},
		{"pve4", true, 32ULL << 30, 8ULL << 30, 0},
	};
	const char *got[5];

	/* equal free memory: the name decides first, then the booked memory spreads them */
	for (int i = 0; i < 5; i++) {
		long k = deploy_place(nodes, 4, 8ULL << 30);

		cr_assert_geq(k, 0);
		got[i] = nodes[k].name;
	}
	cr_assert_str_eq(got[0], "pve1");
	cr_assert_str_eq(got[1], "pve2");
	cr_assert_str_eq(got[2], "pve1");
	cr_assert_str_eq(got[3], "pve2");
	cr_assert_str_eq(got[4], "pve1", "pve4 has less free memory, pve3 is offline");
	cr_assert_eq(nodes[0].ours, 3);
	nodes[0].online = nodes[1].online = nodes[3].online = false;
	cr_assert_eq(deploy_place(nodes, 4, 1), -1);
}

/* A container template of kind lxc: what prov_ct_plan_build sends. */
static struct cfg_template ct_template(void)
{
	struct cfg_template t = {.name = "debian-ct", .image_url = "http://x/rootfs.tar.xz",
				 .kind = CFG_KIND_LXC};

	t.ct = (struct cfg_container){.unprivileged = true,
				      .nesting = true,
				      .rootfs_gb = 6,
				      .storage = "local-lvm",
				      .template_storage = "local",
				      .cores = 2,
				      .memory_mb = 1024,
				      .swap_mb = 0,
				      .bridge = "vmbr1"};
	return t;
}

Test(plan, container_template_uploads_the_archive_creates_and_converts)
{
	struct cfg_template t = ct_template();
	const struct prov_ct_input in = {.t = &t,
					 .node = "pve1",
					 .vmid = 9600,
					 .name = "debian-ct-20261202-001",
					 .source_sha = "aa",
					 .custom_sha = "bb",
					 .archive_path = "/cache/customized-x.tar.zst",
					 .tags = "phoenix;phx-debian-ct",
					 .packages = "3 cc"};
	struct phx_err err = PHX_ERR_INIT;
	struct plan p = PLAN_INIT;
	const struct plan_action *up, *mk, *conv;

	cr_assert_eq(prov_ct_plan_build(&in, &p, &err), 0, "%s", err.msg);
	cr_assert_eq(p.n, 3);
	up = p.actions[0];
	mk = p.actions[1];
	conv = p.actions[2];
	cr_assert_eq(up->kind, PLAN_UPLOAD);
	cr_assert_str_eq(up->path, "/nodes/pve1/storage/local/upload");
	cr_assert_str_eq(plan_param_get(up, "content"), "vztmpl");
	cr_assert_str_eq(plan_param_get(up, "checksum"), "bb");
	cr_assert_eq(up->undo.kind, PLAN_UNDO_VOLUME);
	cr_assert_str_eq(up->undo.target, "local:vztmpl/debian-ct-20261202-001.tar.zst");
	cr_assert_str_eq(mk->path, "/nodes/pve1/lxc");
	cr_assert_str_eq(plan_param_get(mk, "ostemplate"),
			 "local:vztmpl/debian-ct-20261202-001.tar.zst");
	/* storage:size, never a bare size (lxc-notes point 9) */
	cr_assert_str_eq(plan_param_get(mk, "rootfs"), "local-lvm:6");
	cr_assert_str_eq(plan_param_get(mk, "hostname"), "debian-ct-20261202-001");
	cr_assert_str_eq(plan_param_get(mk, "unprivileged"), "1");
	cr_assert_str_eq(plan_param_get(mk, "features"), "nesting=1");
	cr_assert_str_eq(plan_param_get(mk, "net0"), "name=eth0,bridge=vmbr1,ip=dhcp");
	cr_assert_str_eq(plan_param_get(mk, "cores"), "2");
	cr_assert_str_eq(plan_param_get(mk, "memory"), "1024");
	cr_assert_str_eq(plan_param_get(mk, "swap"), "0");
	cr_assert_null(plan_param_get(mk, "ostype"), "Proxmox reads it from the archive");
	cr_assert_null(plan_param_get(mk, "password"), "a template gets no password");
	cr_assert(strstr(plan_param_get(mk, "description"),
			 "\narchive: local:vztmpl/debian-ct-20261202-001.tar.zst\n"));
	cr_assert(strstr(plan_param_get(mk, "description"), "\npackages: 3 cc\n"));
	cr_assert_eq(mk->undo.kind, PLAN_UNDO_CT);
	cr_assert_eq(mk->undo.vmid, 9600);
	cr_assert_str_eq(conv->path, "/nodes/pve1/lxc/9600/template");
	cr_assert(conv->flags & PLAN_COMMIT_AFTER, "the archive stays after the conversion");
	plan_release(&p);
}

Test(plan, container_template_dry_run_values_wait_for_the_customization)
{
	struct cfg_template t = ct_template();
	const struct prov_ct_input in = {
		.t = &t, .node = "pve1", .vmid = 9000, .name = "debian-ct", .tags = "phoenix"};
	struct phx_err err = PHX_ERR_INIT;
	struct plan p = PLAN_INIT;
	char *text;

	t.ct.nesting = false;
	t.ct.ostype = "ubuntu";
	cr_assert_eq(prov_ct_plan_build(&in, &p, &err), 0, "%s", err.msg);
	cr_assert_null(plan_param_get(p.actions[1], "features"));
	cr_assert_str_eq(plan_param_get(p.actions[1], "ostype"), "ubuntu");
	text = render(&p);
	cr_assert(strstr(text, "<known after customization>"), "%s", text);
	cr_assert(strstr(text, "upload the customized root file system as "
			       "'local:vztmpl/debian-ct.tar.zst'"),
		  "%s", text);
	free(text);
	plan_release(&p);
}
