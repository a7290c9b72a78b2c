/* deploy: the pure helpers of cmd_deploy (sizes, disks, net0, seed names, description,
 * tags, IP choice), table-driven where the rule has several shapes. */
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
	cr_assert_eq(deploy_net_rebridge("e1000=bc:24:11:00:00:01", "vmbr0", NULL, &out, mac, &err), 0);
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

Test(deploy, description_records_seed_and_reads_it_back)
{
	struct phx_err err = PHX_ERR_INIT;
	const char *sha = "69e186fe8369aabbccddeeff00112233445566778899aabbccddeeff00112233";
	char got[CRYPTO_SHA256_HEX_LEN + 1];
	char *d =
		deploy_description("public web server", "/etc/phoenix/c.json", "web-1", sha, &err);

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
