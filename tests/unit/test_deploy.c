/* deploy: the pure helpers of cmd_deploy (sizes, disks, net0, seed names, description,
 * tags, IP choice) and the run's decisions (placement of node "auto", the --jobs queue, clone
 * paths, creation locks, agent waits), table-driven where the rule has several shapes. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "deploy.h"

TestSuite(deploy);

Test(deploy, parses_drive_sizes_in_every_unit)
{
	static const struct {
		const char *drive;
		uint64_t bytes;
	} cases[] = {
		{"local:9000/base-9000-disk-0.qcow2/8001/vm-8001-disk-0.qcow2,size=100G",
		 100ULL << 30},
		{"local-lvm:vm-100-disk-0,discard=on,size=64M,ssd=1", 64ULL << 20},
		{"local:100/vm-100-disk-0.qcow2,size=2252M", 2252ULL << 20},
		{"x:1,size=512K", 512ULL << 10},
		{"x:1,size=2T", 2ULL << 40},
		{"x:1,size=3.5G", 7ULL << 29},
		{"x:1,size=1048576", 1048576},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		uint64_t got = 0;

		cr_assert_eq(deploy_drive_size(cases[i].drive, &got, &err), 0, "%s: %s",
			     cases[i].drive, err.msg);
		cr_assert_eq(got, cases[i].bytes, "%s: got %llu", cases[i].drive,
			     (unsigned long long)got);
	}
}

Test(deploy, rejects_drive_without_or_with_bad_size)
{
	static const char *const bad[] = {"local:100/vm-100-disk-0.qcow2",
					  "x:1,size=", "x:1,size=12Q", "x:1,size=G",
					  "x:1,notsize=1G"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		uint64_t got = 7;

		cr_assert_eq(deploy_drive_size(bad[i], &got, &err), -1, "%s", bad[i]);
		cr_assert_eq(err.code, PHX_E_API);
		cr_assert(strstr(err.msg, bad[i]), "message names the drive: %s", err.msg);
		cr_assert_eq(got, 7, "output untouched");
	}
}

Test(deploy, finds_system_disk_by_boot_order_then_bus)
{
	json_t *c =
		json_pack("{ss ss ss ss}", "boot", "order=ide2;virtio1;net0", "ide2",
			  "local:iso/x.iso,media=cdrom", "virtio1", "local:100/vm-100-disk-1.raw",
			  "scsi0", "local:100/vm-100-disk-0.raw,size=1G");

	cr_assert_str_eq(deploy_system_disk(c), "virtio1");
	json_object_set_new(c, "boot", json_string("order=net0"));
	cr_assert_str_eq(deploy_system_disk(c), "scsi0");
	json_object_del(c, "scsi0");
	json_object_del(c, "virtio1");
	cr_assert_null(deploy_system_disk(c), "a CD-ROM is no system disk");
	json_decref(c);
}

Test(deploy, finds_cloudinit_drives_anywhere)
{
	json_t *c =
		json_pack("{ss ss ss ss}", "ide0", "local:100/vm-100-cloudinit.qcow2,media=cdrom",
			  "scsi1", "local-lvm:vm-100-cloudinit", "ide2",
			  "local:iso/seed.iso,media=cdrom", "description", "cloudinit notes");
	const char *keys[4];
	size_t n = deploy_cloudinit_drives(c, keys, 4);

	cr_assert_eq(n, 2);
	cr_assert(!strcmp(keys[0], "ide0") || !strcmp(keys[1], "ide0"));
	cr_assert(!strcmp(keys[0], "scsi1") || !strcmp(keys[1], "scsi1"));
	cr_assert(deploy_drive_is_cloudinit("local:cloudinit"));
	cr_assert(deploy_drive_is_cloudinit("local:100/vm-100-cloudinit.qcow2,media=cdrom"));
	cr_assert(!deploy_drive_is_cloudinit("local:iso/cloudinit-notes.iso,media=cdrom"));
	cr_assert(!deploy_drive_is_cloudinit("local:100/vm-100-disk-0.raw,comment=cloudinit"));
	cr_assert(!deploy_drive_is_cloudinit("local:100/vm-x-cloudinit"));
	cr_assert(deploy_drive_is_cdrom("local:iso/x.iso,media=cdrom"));
	cr_assert(!deploy_drive_is_cdrom("local:100/vm-100-disk-0.raw,size=1G"));
	json_decref(c);
}

Test(deploy, rebridges_net0_keeping_model_mac_and_options)
{
	struct phx_err err = PHX_ERR_INIT;
	char mac[DEPLOY_MAC_LEN + 1] = "";
	char *out = NULL;

	cr_assert_eq(deploy_net_rebridge("virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,tag=5",
					 "vmbr1", NULL, &out, mac, &err),
		     0, "%s", err.msg);
	cr_assert_str_eq(out, "virtio=BC:24:11:AA:BB:CC,bridge=vmbr1,firewall=1,tag=5");
	cr_assert_str_eq(mac, "BC:24:11:AA:BB:CC");
	free(out);
	out = NULL;
	cr_assert_eq(deploy_net_rebridge("e1000=bc:24:11:00:00:01", "vmbr0", NULL, &out, mac, &err),
		     0);
	cr_assert_str_eq(out, "e1000=bc:24:11:00:00:01,bridge=vmbr0");
	free(out);
}

Test(deploy, rejects_net0_without_mac)
{
	static const char *const bad[] = {"virtio,bridge=vmbr0", "=BC:24:11:AA:BB:CC",
					  "virtio=BC:24:11:AA:BB", "virtio=BC-24-11-AA-BB-CC"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		char mac[DEPLOY_MAC_LEN + 1] = "untouched";
		char *out = NULL;

		cr_assert_eq(deploy_net_rebridge(bad[i], "vmbr0", NULL, &out, mac, &err), -1, "%s",
			     bad[i]);
		cr_assert_eq(err.code, PHX_E_API);
		cr_assert(strstr(err.msg, bad[i]), "%s", err.msg);
		cr_assert_null(out);
		cr_assert_str_eq(mac, "untouched");
	}
}

Test(deploy, names_and_recognises_seed_isos)
{
	struct phx_err err = PHX_ERR_INIT;
	const char *sha = "69e186fe8369aabbccddeeff00112233445566778899aabbccddeeff00112233";
	char name[128];

	cr_assert_eq(deploy_seed_name(8001, sha, name, sizeof(name), &err), 0);
	cr_assert_str_eq(name, "phoenix-ci-8001-69e186fe8369.iso");
	cr_assert(deploy_is_seed_volid("local:iso/phoenix-ci-8001-69e186fe8369.iso", 8001));
	cr_assert(
		deploy_is_seed_volid("nfs:iso/phoenix-ci-8001-69e186fe8369.iso,media=cdrom", 8001));
	cr_assert(!deploy_is_seed_volid("local:iso/phoenix-ci-8001-69e186fe8369.iso", 800));
	cr_assert(!deploy_is_seed_volid("local:iso/phoenix-ci-80011-69e186fe8369.iso", 8001));
	cr_assert(!deploy_is_seed_volid("local:iso/phoenix-ci-8001-69E186FE8369.iso", 8001));
	cr_assert(!deploy_is_seed_volid("local:iso/phoenix-ci-8001-69e186fe836.iso", 8001));
	cr_assert(!deploy_is_seed_volid("local:iso/ubuntu.iso", 8001));
	cr_assert(!deploy_is_seed_volid("local:100/vm-100-cloudinit.qcow2", 8001));
	cr_assert_eq(deploy_seed_name(8001, "XYZ", name, sizeof(name), &err), -1);
	cr_assert_eq(err.code, PHX_E_INTERNAL);
}

Test(deploy, cicustom_names_our_snippet_only)
{
	char v[128];

	cr_assert(deploy_cicustom_snippet("user=local:snippets/phoenix-ci-8001-user.yaml", 8001, v,
					  sizeof(v)));
	cr_assert_str_eq(v, "local:snippets/phoenix-ci-8001-user.yaml");
	cr_assert(deploy_cicustom_snippet("network=nfs:snippets/net.yaml,user=nfs:snippets/"
					  "phoenix-ci-8001-user.yaml,vendor=nfs:snippets/v.yaml",
					  8001, v, sizeof(v)));
	cr_assert_str_eq(v, "nfs:snippets/phoenix-ci-8001-user.yaml");
	cr_assert_not(deploy_cicustom_snippet("user=local:snippets/phoenix-ci-8002-user.yaml", 8001,
					      v, sizeof(v)));
	cr_assert_not(deploy_cicustom_snippet("user=local:snippets/mine.yaml", 8001, v, sizeof(v)));
	cr_assert_not(deploy_cicustom_snippet("vendor=local:snippets/phoenix-ci-8001-user.yaml",
					      8001, v, sizeof(v)));
	cr_assert_not(deploy_cicustom_snippet("user=local:snippets/phoenix-ci-8001-user.yaml.bak",
					      8001, v, sizeof(v)));
	cr_assert_not(deploy_cicustom_snippet(NULL, 8001, v, sizeof(v)));
	cr_assert_not(deploy_cicustom_snippet("user=local:snippets/phoenix-ci-8001-user.yaml", 8001,
					      v, 8));
}

Test(deploy, description_keeps_an_old_path_record_until_something_else_changes)
{
	const char *sha = "69e186fe8369aabbccddeeff00112233445566778899aabbccddeeff00112233";
	const char *sha2 = "79e186fe8369aabbccddeeff00112233445566778899aabbccddeeff00112233";
	const char *id = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
	char *old = deploy_description("web", "cfg3.json", "web-1", sha, NULL, NULL);
	char *want = deploy_description("web", id, "web-1", sha, NULL, NULL);
	char *d;

	/* written by an older version, with the path as typed: read, not rewritten */
	d = deploy_description_keep(old, "web", id, "web-1", sha, NULL, NULL);
	cr_assert_str_eq(d, old);
	free(d);
	/* the seed changed: the record is rewritten, with the identity */
	d = deploy_description_keep(old, "web", id, "web-1", sha2, NULL, NULL);
	cr_assert(strstr(d, "config: sha256:0000"), "%s", d);
	cr_assert(strstr(d, sha2), "%s", d);
	free(d);
	/* a record with an identity is compared as it is: another entry is a change */
	d = deploy_description_keep(want, "web", id, "web-1", sha, NULL, NULL);
	cr_assert_str_eq(d, want);
	free(d);
	d = deploy_description_keep(want, "web", "sha256:ff", "web-1", sha, NULL, NULL);
	cr_assert(strstr(d, "config: sha256:ff\n"), "%s", d);
	free(d);
	d = deploy_description_keep(NULL, "web", id, "web-1", sha, NULL, NULL);
	cr_assert_str_eq(d, want);
	free(d);
	free(old);
	free(want);
}

Test(deploy, description_records_seed_and_reads_it_back)
{
	struct phx_err err = PHX_ERR_INIT;
	const char *sha = "69e186fe8369aabbccddeeff00112233445566778899aabbccddeeff00112233";
	char got[CRYPTO_SHA256_HEX_LEN + 1];
	char *d =
		deploy_description("public web server", "/etc/phoenix/c.json", "web-1", sha, NULL, &err);

	cr_assert_not_null(d, "%s", err.msg);
	cr_assert_str_eq(d, "public web server\n\nmanaged by phoenix-orchestrator\n"
			    "config: /etc/phoenix/c.json\nvm: web-1\nphoenix-seed: "
			    "69e186fe8369aabb"
			    "ccddeeff00112233445566778899aabbccddeeff00112233\n");
	cr_assert(deploy_description_seed(d, got));
	cr_assert_str_eq(got, sha);
	free(d);
	cr_assert(!deploy_description_seed("phoenix-seed: short\n", got));
	cr_assert(!deploy_description_seed(NULL, got));
}

Test(deploy, merges_tags_case_insensitively)
{
	struct phx_err err = PHX_ERR_INIT;
	const char *want[] = {"phoenix", "Web"};
	bool changed = true;
	char *t = NULL;

	cr_assert_eq(deploy_tags_merge("PHOENIX;prod;web", want, 2, &t, &changed, &err), 0);
	cr_assert_str_eq(t, "PHOENIX;prod;web");
	cr_assert(!changed);
	free(t);
	cr_assert_eq(deploy_tags_merge("prod", want, 2, &t, &changed, &err), 0);
	cr_assert_str_eq(t, "prod;phoenix;Web");
	cr_assert(changed);
	free(t);
	cr_assert_eq(deploy_tags_merge(NULL, want, 1, &t, &changed, &err), 0);
	cr_assert_str_eq(t, "phoenix");
	free(t);
}

Test(deploy, picks_ipv4_of_net0_mac_then_first_non_loopback)
{
	char *lo_ip[] = {"127.0.0.1/8"}, *dk_ip[] = {"172.17.0.1/16"},
	     *eth_ip[] = {"169.254.3.3/16", "192.168.1.51/24"};
	struct pve_iface items[] = {
		{"lo", "00:00:00:00:00:00", lo_ip, 1},
		{"docker0", "02:42:ac:11:00:01", dk_ip, 1},
		{"eth0", "bc:24:11:aa:bb:cc", eth_ip, 2},
	};
	struct pve_iface_list l = {items, 3};
	char ip[64] = "";

	cr_assert(deploy_pick_ipv4(&l, "BC:24:11:AA:BB:CC", ip, sizeof(ip)));
	cr_assert_str_eq(ip, "192.168.1.51");
	cr_assert(deploy_pick_ipv4(&l, "BC:24:11:00:00:00", ip, sizeof(ip)));
	cr_assert_str_eq(ip, "172.17.0.1", "no MAC match: first interface that is not lo");
	l.n = 1;
	strcpy(ip, "untouched");
	cr_assert(!deploy_pick_ipv4(&l, NULL, ip, sizeof(ip)));
	cr_assert_str_eq(ip, "untouched");
}

/* ---- placement of node "auto" ---- */

#define GiB (1ULL << 30)

/* Places `count` VMs of mem/cores one after another; returns the node names, comma-joined. */
static void place_batch(struct deploy_node *nodes, struct deploy_cpu *cpu, size_t n, int count,
			uint64_t mem, unsigned cores, char *ret, size_t len)
{
	size_t k = 0;

	ret[0] = '\0';
	for (int i = 0; i < count; i++) {
		long b = deploy_place_vm(nodes, cpu, n, mem, cores);

		k += (size_t)snprintf(ret + k, len - k, "%s%s", i ? "," : "",
				      b >= 0 ? nodes[b].name : "-");
	}
}

Test(deploy, placement_by_cpu_when_free_memory_is_equal)
{
	struct deploy_node nodes[] = {
		{"pve1", true, 64 * GiB, 16 * GiB, 0},
		{"pve2", true, 64 * GiB, 16 * GiB, 0},
	};
	struct deploy_cpu cpu[] = {{0.90, 16}, {0.10, 16}};

	cr_assert_eq(deploy_place_vm(nodes, cpu, 2, 4 * GiB, 4), 1, "pve1's CPUs are busy");
	cr_assert_eq(nodes[1].mem, 20 * GiB, "the VM's memory is booked");
	cr_assert_float_eq(cpu[1].cpu, 0.35, 1e-9, "and its cores / maxcpu");
	cr_assert_eq(nodes[1].ours, 1);
	cr_assert_eq(nodes[0].mem, 16 * GiB, "the other node is untouched");
	cr_assert_float_eq(cpu[0].cpu, 0.90, 1e-9);
}

Test(deploy, placement_by_the_larger_of_memory_and_cpu_load)
{
	static const struct {
		const char *why;
		struct deploy_node nodes[3];
		struct deploy_cpu cpu[3];
		uint64_t mem;
		unsigned cores;
		const char *want; /* the names chosen for 3 VMs in a row */
	} cases[] = {
		{"more free memory does not win over a busy CPU",
		 {{"a", true, 128 * GiB, 8 * GiB, 0}, {"b", true, 64 * GiB, 16 * GiB, 0}},
		 {{0.80, 32}, {0.20, 32}},
		 4 * GiB,
		 2,
		 "b,b,b"},
		{"idle CPUs do not win over full memory",
		 {{"a", true, 64 * GiB, 56 * GiB, 0}, {"b", true, 64 * GiB, 16 * GiB, 0}},
		 {{0.01, 32}, {0.50, 32}},
		 4 * GiB,
		 2,
		 "b,b,b"},
		{"a node without room for the VM is skipped while another has room",
		 {{"a", true, 16 * GiB, 13 * GiB, 0}, {"b", true, 64 * GiB, 40 * GiB, 0}},
		 {{0.01, 8}, {0.70, 8}},
		 4 * GiB,
		 1,
		 "b,b,b"},
		{"no node has room: the least loaded still takes it",
		 {{"a", true, 8 * GiB, 7 * GiB, 0}, {"b", true, 8 * GiB, 6 * GiB, 0}},
		 {{0.01, 8}, {0.01, 8}},
		 4 * GiB,
		 1,
		 "b,a,b"},
		{"the booked load spreads a batch",
		 {{"a", true, 32 * GiB, 4 * GiB, 0},
		  {"b", true, 32 * GiB, 4 * GiB, 0},
		  {"c", true, 32 * GiB, 4 * GiB, 0}},
		 {{0.10, 4}, {0.10, 4}, {0.10, 4}},
		 2 * GiB,
		 2,
		 "a,b,c"},
		{"no CPU figures (maxcpu 0): memory alone",
		 {{"a", true, 32 * GiB, 8 * GiB, 0}, {"b", true, 32 * GiB, 4 * GiB, 0}},
		 {{0.99, 0}, {0.99, 0}},
		 4 * GiB,
		 8,
		 "b,a,b"},
		{"equal load: more free memory, then fewer of our VMs, then the name",
		 {{"c", true, 64 * GiB, 16 * GiB, 0},
		  {"b", true, 32 * GiB, 8 * GiB, 0},
		  {"a", true, 64 * GiB, 16 * GiB, 2}},
		 {{0, 0}, {0, 0}, {0, 0}},
		 0,
		 0,
		 "c,c,a"},
		{"an offline node is never chosen; a node without memory figures counts as full",
		 {{"a", false, 512 * GiB, 0, 0},
		  {"b", true, 0, 0, 0},
		  {"c", true, 8 * GiB, 4 * GiB, 0}},
		 {{0.0, 64}, {0.0, 64}, {0.1, 8}},
		 2 * GiB,
		 1,
		 "c,c,b"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct deploy_node nodes[3];
		struct deploy_cpu cpu[3];
		size_t n = cases[i].nodes[2].name ? 3 : 2;
		char got[64];

		memcpy(nodes, cases[i].nodes, sizeof(nodes));
		memcpy(cpu, cases[i].cpu, sizeof(cpu));
		place_batch(nodes, cpu, n, 3, cases[i].mem, cases[i].cores, got, sizeof(got));
		cr_assert_str_eq(got, cases[i].want, "%s", cases[i].why);
	}
}

Test(deploy, placement_is_deterministic_and_needs_an_online_node)
{
	struct deploy_node a[] = {{"pve2", true, 32 * GiB, 4 * GiB, 1},
				  {"pve1", true, 32 * GiB, 4 * GiB, 1},
				  {"pve3", true, 32 * GiB, 4 * GiB, 0}};
	struct deploy_node b[3];
	struct deploy_cpu ca[] = {{0.25, 8}, {0.25, 8}, {0.50, 8}}, cb[3];
	char got_a[64], got_b[64];

	memcpy(b, a, sizeof(a));
	memcpy(cb, ca, sizeof(ca));
	place_batch(a, ca, 3, 6, 4 * GiB, 2, got_a, sizeof(got_a));
	place_batch(b, cb, 3, 6, 4 * GiB, 2, got_b, sizeof(got_b));
	cr_assert_str_eq(got_a, got_b, "same inputs, same placement");
	/* pve3's busier CPU waits until the others have caught up; then its free memory wins */
	cr_assert_str_eq(got_a, "pve1,pve2,pve3,pve1,pve2,pve3", "%s", got_a);

	for (size_t i = 0; i < 3; i++)
		a[i].online = false;
	memcpy(b, a, sizeof(a));
	cr_assert_eq(deploy_place_vm(a, ca, 3, GiB, 1), -1);
	cr_assert_eq(memcmp(a, b, sizeof(a)), 0, "nothing booked");
	cr_assert_eq(deploy_place(a, 3, GiB), -1, "memory alone: the same rule");
}

Test(deploy, placement_explains_the_node_as_it_was_before_the_vm)
{
	struct deploy_node x = {"pve2", true, 64 * GiB, 23 * GiB + 4 * GiB, 4};
	struct deploy_cpu c = {0.12 + 2.0 / 16, 16};
	char why[224];

	deploy_place_why(&x, &c, 4 * GiB, 2, why, sizeof(why));
	cr_assert_str_eq(why, "placed on pve2: 41.0 GiB free, CPU 12%, 3 of our VMs");
	deploy_place_why(&x, NULL, 4 * GiB, 2, why, sizeof(why));
	cr_assert_str_eq(why, "placed on pve2: 41.0 GiB free, 3 of our VMs", "no CPU figures");
	x.mem = 10 * GiB;
	x.maxmem = 8 * GiB;
	x.ours = 1;
	deploy_place_why(&x, &c, 4 * GiB, 2, why, sizeof(why));
	cr_assert_str_eq(why, "placed on pve2: 2.0 GiB free (no online node has the 4.0 GiB it "
			      "needs), CPU 12%, 0 of our VMs");
	deploy_place_why(&x, &c, 4 * GiB, 2, why, 12);
	cr_assert_str_eq(why, "placed on p", "truncated, still terminated");
}

/* ---- the worker pool of --jobs ---- */

Test(deploy, jobs_per_node_is_the_ceiling_of_jobs_over_busy_nodes)
{
	static const struct {
		unsigned jobs;
		size_t nodes;
		unsigned want;
	} cases[] = {
		{4, 1, 4}, /* a batch all on one node still gets every job */
		{4, 2, 2}, {4, 3, 2}, {4, 4, 1}, {4, 9, 1}, {8, 3, 3}, {1, 3, 1}, {5, 0, 5},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(deploy_jobs_per_node(cases[i].jobs, cases[i].nodes), cases[i].want,
			     "--jobs %u over %zu nodes", cases[i].jobs, cases[i].nodes);
}

Test(deploy, next_job_is_the_first_not_started_vm_whose_node_has_room)
{
	/* six VMs on node 0, then one on node 1 and one on node 2; --jobs 4 over 3 nodes */
	const size_t node_of[] = {0, 0, 0, 0, 0, 0, 1, 2};
	bool started[8] = {false};
	unsigned in_flight[3] = {0};
	const unsigned bound = deploy_jobs_per_node(4, 3);
	long order[4];

	for (int w = 0; w < 4; w++) {
		long i = deploy_next_job(node_of, started, 8, in_flight, bound);

		cr_assert_geq(i, 0);
		started[i] = true;
		in_flight[node_of[i]]++;
		order[w] = i;
	}
	cr_assert_eq(order[0], 0);
	cr_assert_eq(order[1], 1);
	cr_assert_eq(order[2], 6, "node 0 is at its bound: the next node's VM goes");
	cr_assert_eq(order[3], 7);
	cr_assert_eq(deploy_next_job(node_of, started, 8, in_flight, bound), -1,
		     "a fifth worker waits");
	in_flight[1]--; /* the VM on node 1 ended: still nothing for node 0 */
	cr_assert_eq(deploy_next_job(node_of, started, 8, in_flight, bound), -1);
	in_flight[0]--; /* one on node 0 ended: the next in config order */
	cr_assert_eq(deploy_next_job(node_of, started, 8, in_flight, bound), 2);
	for (size_t i = 0; i < 8; i++)
		started[i] = true;
	in_flight[0] = 0;
	cr_assert_eq(deploy_next_job(node_of, started, 8, in_flight, bound), -1, "all started");
}

/* ---- the clone path ---- */

Test(deploy, clone_path_as_far_as_the_config_tells)
{
	char *both[] = {"pve1", "pve2"};
	struct cfg_template tpls[] = {
		{.name = "one", .vmid = 9000, .node = "pve1"},
		{.name = "pair",
		 .nodes = {both, 2},
		 .has_versions = true,
		 .versions = {9100, 9199, 1, false}},
		{.name = "everywhere",
		 .all_nodes = true,
		 .has_versions = true,
		 .versions = {9200, 9299, 1, false}},
		{.name = "default", .vmid = 9300},
	};
	static const struct {
		const char *why, *default_node, *vm_node, *tpl;
		unsigned long vmid;
		enum deploy_clone_path want;
		const char *want_node;
	} cases[] = {
		{"template on the VM's node", NULL, "pve1", "one", 0, DEPLOY_CLONE_OWN_NODE,
		 "pve1"},
		{"by its VMID too", NULL, "pve1", NULL, 9000, DEPLOY_CLONE_OWN_NODE, "pve1"},
		{"template elsewhere", NULL, "pve2", "one", 0, DEPLOY_CLONE_CROSS_NODE, NULL},
		{"the default node for both", "pve2", NULL, "default", 0, DEPLOY_CLONE_OWN_NODE,
		 "pve2"},
		{"none named: the cluster's only node", NULL, NULL, "default", 0,
		 DEPLOY_CLONE_OWN_NODE, NULL},
		{"the VM left to the server, the template named", NULL, NULL, "one", 0,
		 DEPLOY_CLONE_UNKNOWN, NULL},
		{"a template under node auto goes where the server says", "auto", "pve1", "default",
		 0, DEPLOY_CLONE_UNKNOWN, NULL},
		{"node auto", "auto", NULL, "one", 0, DEPLOY_CLONE_PLACED, NULL},
		{"one of its nodes", NULL, "pve2", "pair", 0, DEPLOY_CLONE_OWN_NODE, "pve2"},
		{"not one of its nodes", NULL, "pve3", "pair", 0, DEPLOY_CLONE_CROSS_NODE, NULL},
		{"one node's version by VMID", NULL, "pve2", NULL, 9101, DEPLOY_CLONE_UNKNOWN,
		 NULL},
		{"every node", NULL, "pve7", "everywhere", 0, DEPLOY_CLONE_OWN_NODE, "pve7"},
		{"not in the config", NULL, "pve1", NULL, 4242, DEPLOY_CLONE_UNKNOWN, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg cfg = {.templates = tpls, .n_templates = 4};
		struct cfg_vm vm = {.vmid = 8001, .name = "web"};
		const char *node = "untouched";
		enum deploy_clone_path got;

		cfg.defaults.node = (char *)cases[i].default_node;
		vm.node = (char *)cases[i].vm_node;
		vm.clone_from_template = (char *)cases[i].tpl;
		vm.clone_from_vmid = cases[i].vmid;
		got = deploy_clone_path_offline(&cfg, &vm, &node);
		cr_assert_eq(got, cases[i].want, "%s: got %s", cases[i].why,
			     deploy_clone_path_name(got));
		if (got == DEPLOY_CLONE_OWN_NODE && cases[i].want_node)
			cr_assert_str_eq(node, cases[i].want_node, "%s", cases[i].why);
		else if (got == DEPLOY_CLONE_OWN_NODE)
			cr_assert_null(node, "%s", cases[i].why);
		else
			cr_assert_str_eq(node, "untouched", "%s: output left alone", cases[i].why);
	}
	cr_assert_str_eq(deploy_clone_path_name(DEPLOY_CLONE_CROSS_NODE), "cross-node");
	cr_assert_str_eq(deploy_clone_path_name(DEPLOY_CLONE_PLACED), "placed");
}

Test(deploy, clone_path_of_a_new_clone_names_its_nodes)
{
	struct cfg_vm vm = {.vmid = 8001, .name = "web", .storage = "local-lvm"};
	struct pve_vm_info src = {.vmid = 9000, .name = "tpl", .node = "pve1"};
	struct deploy_vm_input in = {.vm = &vm, .src = &src, .node = "pve1"};
	char note[300];

	cr_assert_eq(deploy_clone_path(&in), DEPLOY_CLONE_OWN_NODE);
	deploy_clone_path_note(&in, note, sizeof(note));
	cr_assert_str_eq(note,
			 "clone path: template 9000 is on the VM's node 'pve1': a clone there");
	in.node = "pve2";
	in.src_shared = true;
	cr_assert_eq(deploy_clone_path(&in), DEPLOY_CLONE_TARGET);
	deploy_clone_path_note(&in, note, sizeof(note));
	cr_assert_str_eq(note, "clone path: template 9000 is on 'pve1', on shared storage: a clone "
			       "with target 'pve2'");
	in.src_shared = false;
	cr_assert_eq(deploy_clone_path(&in), DEPLOY_CLONE_MIGRATE);
	deploy_clone_path_note(&in, note, sizeof(note));
	cr_assert_str_eq(note, "clone path: template 9000 is on node-local storage on 'pve1': a "
			       "full clone there, then an offline migration to 'pve2' onto "
			       "'local-lvm'");
}

Test(deploy, only_clone_and_create_locks_mean_another_run_is_making_the_vm)
{
	static const struct {
		const char *lock;
		bool creating;
	} cases[] = {
		{"clone", true},     {"create", true}, {"migrate", false}, {"backup", false},
		{"snapshot", false}, {"", false},      {NULL, false},	   {"clone2", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(deploy_lock_is_creation(cases[i].lock), cases[i].creating, "%s",
			     cases[i].lock ? cases[i].lock : "(null)");
}

Test(deploy, a_recently_started_vm_gets_the_rest_of_the_agent_timeout)
{
	static const struct {
		long long uptime;
		unsigned long timeout, want;
		bool must;
	} cases[] = {
		{0, 600, 600, true},  /* started by a run killed at once */
		{40, 600, 560, true}, /* killed while the guest booted */
		{599, 600, 1, true},  /* the rest, at least 1 s */
		{600, 600, 1, false}, /* long enough: the agent is gone, best effort */
		{86400, 600, 1, false}, {-1, 600, 1, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool must = !cases[i].must;

		cr_assert_eq(deploy_running_agent_wait(cases[i].uptime, cases[i].timeout, &must),
			     cases[i].want, "uptime %lld", cases[i].uptime);
		cr_assert_eq(must, cases[i].must, "uptime %lld", cases[i].uptime);
	}
}

/* ---- networks (#17) ---- */

Test(deploy, nic_value_is_proxmox_sorted_and_keeps_unmanaged_options)
{
	struct cfg_nic n = {.model = "virtio", .vlan = 10, .mtu = 1400,
			    .firewall = CFG_TRI_TRUE, .rate = "12.5", .v4 = {.bridge = "vmbr1"}};
	struct phx_err err = PHX_ERR_INIT;
	char *out = NULL;

	cr_assert_eq(deploy_nic_value(&n, NULL, "BC:24:11:00:00:01", &out, &err), 0, "%s",
		     err.msg);
	cr_assert_str_eq(out, "virtio=BC:24:11:00:00:01,bridge=vmbr1,firewall=1,mtu=1400,"
			      "rate=12.5,tag=10");
	free(out);
	/* queues and link_down are not the config's; the old tag and rate go, firewall stays */
	n = (struct cfg_nic){.model = "e1000", .v4 = {.bridge = "vmbr0"}};
	cr_assert_eq(deploy_nic_value(&n, "virtio=BC:24:11:00:00:01,bridge=vmbr9,firewall=1,"
					  "link_down=1,queues=4,rate=3,tag=5",
				      "BC:24:11:00:00:01", &out, &err),
		     0, "%s", err.msg);
	cr_assert_str_eq(out, "e1000=BC:24:11:00:00:01,bridge=vmbr0,firewall=1,link_down=1,queues=4");
	free(out);
	n.firewall = CFG_TRI_FALSE;
	cr_assert_eq(deploy_nic_value(&n, "e1000=BC:24:11:00:00:01,bridge=vmbr0,firewall=1",
				      "BC:24:11:00:00:01", &out, &err),
		     0);
	cr_assert_str_eq(out, "e1000=BC:24:11:00:00:01,bridge=vmbr0,firewall=0");
	free(out);
}

Test(deploy, nic_mac_fixed_then_existing_then_derived_per_index)
{
	struct cfg_nic nics[3] = {{.macaddr = NULL}, {.macaddr = "BC:24:11:0A:0B:0C"}, {0}};
	struct cfg_vm vm = {.vmid = 8001, .nics = nics, .n_nics = 3};
	json_t *conf = json_pack("{s:s}", "net2", "virtio=BC:24:11:12:34:56,bridge=vmbr0");
	char mac0[DEPLOY_MAC_LEN + 1], a[DEPLOY_MAC_LEN + 1], b[DEPLOY_MAC_LEN + 1];
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(deploy_mac_for_vmid(8001, mac0, &err), 0);
	cr_assert_eq(deploy_nic_mac(&vm, 0, NULL, a, &err), 0);
	cr_assert_str_eq(a, mac0, "NIC 0 keeps the MAC a VM had before networks");
	cr_assert_eq(deploy_nic_mac(&vm, 1, conf, a, &err), 0);
	cr_assert_str_eq(a, "BC:24:11:0A:0B:0C");
	cr_assert_eq(deploy_nic_mac(&vm, 2, conf, a, &err), 0);
	cr_assert_str_eq(a, "BC:24:11:12:34:56", "an existing VM's NIC keeps its MAC");
	cr_assert_eq(deploy_nic_mac(&vm, 2, NULL, b, &err), 0);
	cr_assert_neq(strcmp(b, mac0), 0, "each NIC its own MAC");
	cr_assert_eq(strncmp(b, "BC:24:11:", 9), 0);
	json_decref(conf);
}
