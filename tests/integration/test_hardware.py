"""Hardware keys of a VM (#17) against the simulator in fake-hypervisor mode: firmware,
machine and CPU; each group deploys, then a rerun converges (a changed value is planned as
old -> new and applied, an unchanged one is not sent). Templates are seeded through the API
as in test_deploy (no customization)."""
import json
import re
import unittest

import yaml

from test_plan import PlanBase, changing


def cfg_changes(plan, vmid):
    """{key: (old, new)} of the VM's config action, {} when there is none; without the
    description, whose record names the VM's config entry (any change of it changes that)."""
    for a in plan["actions"]:
        if a["method"] == "POST" and a["path"].endswith("/qemu/%d/config" % vmid):
            return {c["key"]: (c["old"], c["new"]) for c in a["changes"]
                    if c["key"] != "description"}
    return {}


class TestHardware(PlanBase):
    def vm(self, **over):
        return self.vm_8001(features=[], disk_size_gb=None, **over)

    def test_firmware_machine_and_cpu_deploy_and_converge(self):
        self.seed_template()
        fw = {"bios": "ovmf", "machine": "q35", "tpm": True, "cpu": "host", "sockets": 2,
              "balloon": 1024, "numa": True}
        cfg = self.config([self.vm(**fw)])
        plan = self.dry_plan(cfg, "8001")
        ch = cfg_changes(plan, 8001)
        self.assertEqual(ch["bios"], (None, "ovmf"))
        self.assertEqual(ch["efidisk0"], (None, "local:1,efitype=4m,pre-enrolled-keys=0"))
        self.assertEqual(ch["tpmstate0"], (None, "local:1,version=v2.0"))
        self.assertEqual(ch["machine"], (None, "q35"))
        # q35's IDE is AHCI, unseen by cloud kernels without it: the seed goes on SCSI and
        # the template's cloud-init drive on ide2 goes
        self.assertRegex(ch["scsi30"][1], r"^local:iso/phoenix-ci-8001-[0-9a-f]{12}\.iso,"
                                          r"media=cdrom$")
        self.assertEqual(ch["ide2"], ("local:9000/vm-9000-cloudinit.qcow2,media=cdrom", None))
        self.assertEqual(ch["cpu"], (None, "host"))
        self.assertEqual(ch["sockets"], (None, "2"))
        self.assertEqual(ch["balloon"], (None, "1024"))
        self.assertEqual(ch["numa"], (None, "1"))
        n = self.mark()
        self.deploy(cfg, "8001")
        self.assert_sent_as_planned(plan, n)
        conf = self.conf(8001)
        self.assertEqual(conf["bios"], "ovmf")
        # qemu-server OVMF.pm create_efidisk: the size of OVMF_VARS_4M.fd
        self.assertRegex(conf["efidisk0"], r"^local:8001/vm-8001-disk-\d\.qcow2,efitype=4m,"
                                           r"pre-enrolled-keys=0,size=528K$")
        self.assertRegex(conf["tpmstate0"], r"^local:8001/vm-8001-disk-\d\.qcow2,size=4M,"
                                            r"version=v2.0$")
        self.assertEqual((conf["machine"], conf["cpu"], conf["sockets"], conf["balloon"],
                          conf["numa"]), ("q35", "host", 2, 1024, 1))

        # rerun: nothing to change, nothing sent
        plan = self.dry_plan(cfg, "8001")
        self.assertEqual(cfg_changes(plan, 8001), {})
        p = self.deploy(cfg, "8001")
        self.assertRegex(p.stdout, r"8001\s+docker-host-1\s+pve1\s+\S+\s+unchanged")

        # changed values only: old -> new; the EFI and TPM volumes stay as they are
        cfg = self.config([self.vm(**dict(fw, cpu="x86-64-v3", sockets=1, numa=False,
                                          efi_pre_enrolled_keys=True))])
        plan = self.dry_plan(cfg, "8001")
        self.assertEqual(cfg_changes(plan, 8001), {"cpu": ("host", "x86-64-v3"),
                                                   "sockets": ("2", "1"),
                                                   "numa": ("1", "0")})
        self.assertTrue([x for x in plan["notes"] if "efi_pre_enrolled_keys true" in x["text"]],
                        plan["notes"])
        n = self.mark()
        self.deploy(cfg, "8001")
        self.assert_sent_as_planned(plan, n)
        after = self.conf(8001)
        self.assertEqual((after["cpu"], after["sockets"], after["numa"]), ("x86-64-v3", 1, 0))
        self.assertEqual(after["efidisk0"], conf["efidisk0"])
        self.assertEqual(after["tpmstate0"], conf["tpmstate0"])

    def test_seed_on_scsi_when_the_template_is_q35(self):
        # the VM overrides nothing: the machine is its template's
        self.seed_template(machine="q35", bios="ovmf")
        cfg = self.config([self.vm()])
        plan = self.dry_plan(cfg, "8001")
        ch = cfg_changes(plan, 8001)
        self.assertNotIn("machine", ch)
        self.assertIn("scsi30", ch)
        self.deploy(cfg, "8001")
        conf = self.conf(8001)
        self.assertNotIn("ide2", conf)
        files = self.iso_files(conf["scsi30"].split(",")[0])
        self.assertIn("instance-id:", files["meta-data"])
        self.assertEqual(cfg_changes(self.dry_plan(cfg, "8001"), 8001), {})

    def test_seed_leaves_ide2_when_the_vm_moves_to_q35_and_ovmf(self):
        self.seed_template()
        cfg = self.config([self.vm()])
        self.deploy(cfg, "8001")
        seed = self.conf(8001)["ide2"]
        self.assertRegex(seed, r"^local:iso/phoenix-ci-8001-[0-9a-f]{12}\.iso,media=cdrom$")
        cfg = self.config([self.vm(bios="ovmf", machine="q35")])
        plan = self.dry_plan(cfg, "8001")
        ch = cfg_changes(plan, 8001)
        # the same seed, now where q35/OVMF guests see it; ide2 (unseen there) is detached
        self.assertEqual(ch["scsi30"], (None, seed))
        self.assertEqual(ch["ide2"], (seed, None))
        cfg_act = [a for a in plan["actions"] if a["path"].endswith("/qemu/8001/config")][0]
        self.assertEqual(cfg_act["params"]["delete"], "ide2")
        self.assertFalse([a for a in plan["actions"] if a["method"] == "DELETE"],
                         "the ISO is still attached (scsi30): not deleted")
        n = self.mark()
        self.deploy(cfg, "8001")
        self.assert_sent_as_planned(plan, n)
        conf = self.conf(8001)
        self.assertNotIn("ide2", conf)
        self.assertFalse([k for k in conf if k.startswith("unused")], "a CD-ROM is not kept")
        self.assertEqual(conf["scsi30"], seed)
        self.assertIn(seed.split(",")[0], self.isos())
        self.assertEqual(cfg_changes(self.dry_plan(cfg, "8001"), 8001), {}, "converged")

    def test_cpu_default_only_for_new_vms(self):
        self.seed_template()  # no cpu: Proxmox's kvm64
        cfg = self.config([self.vm()])
        plan = self.dry_plan(cfg, "8001")
        self.assertEqual(cfg_changes(plan, 8001)["cpu"], (None, "x86-64-v2-AES"))
        self.deploy(cfg, "8001")
        self.assertEqual(self.conf(8001)["cpu"], "x86-64-v2-AES")
        # a VM of ours made before the key existed keeps Proxmox's default
        self.sim.control("POST", "/_sim/vm/8001", {"conf": {"cpu": None}})
        plan = self.dry_plan(cfg, "8001")
        self.assertNotIn("cpu", cfg_changes(plan, 8001))
        # ... unless the config names one; seabios and pc are the defaults, no change
        cfg = self.config([self.vm(cpu="x86-64-v2-AES", bios="seabios", machine="pc")])
        plan = self.dry_plan(cfg, "8001")
        self.assertEqual(cfg_changes(plan, 8001), {"cpu": (None, "x86-64-v2-AES")})

    def test_two_nics_with_vlan_ipv6_and_routes_deploy_and_converge(self):
        self.seed_template()
        nics = [{"bridge": "vmbr0", "vlan": 10, "mtu": 1400, "firewall": True,
                 "ip": "10.0.0.5/24", "gateway": "10.0.0.1", "ip6": "2001:db8::5/64",
                 "gateway6": "2001:db8::1", "dns": ["10.0.0.53", "2001:db8::53"]},
                {"model": "e1000", "bridge": "vmbr1", "macaddr": "bc:24:11:0a:0b:0c",
                 "rate": 12.5, "ip6": "auto",
                 "routes": [{"to": "10.1.0.0/16", "via": "10.0.1.1"}]}]
        vm = self.vm()
        del vm["network_config"]
        cfg = self.config([dict(vm, networks=nics)])
        plan = self.dry_plan(cfg, "8001")
        ch = cfg_changes(plan, 8001)
        self.assertRegex(ch["net0"][1], r"^virtio=BC:24:11:[0-9A-F:]{8},bridge=vmbr0,"
                                        r"firewall=1,mtu=1400,tag=10$")
        self.assertEqual(ch["net1"], (None, "e1000=BC:24:11:0A:0B:0C,bridge=vmbr1,rate=12.5"))
        n = self.mark()
        self.deploy(cfg, "8001", ips={8001: "10.0.0.5"})
        self.assert_sent_as_planned(plan, n)
        conf = self.conf(8001)
        self.assertEqual(conf["net0"], ch["net0"][1])
        self.assertEqual(conf["net1"], "e1000=BC:24:11:0A:0B:0C,bridge=vmbr1,rate=12.5")
        mac0 = conf["net0"].split(",")[0].split("=")[1].lower()
        nc = yaml.safe_load(self.iso_files(conf["ide2"].split(",")[0])["network-config"])
        self.assertEqual(nc, {"version": 2, "ethernets": {
            "eth0": {"match": {"macaddress": mac0}, "set-name": "eth0",
                     "addresses": ["10.0.0.5/24", "2001:db8::5/64"],
                     "routes": [{"to": "0.0.0.0/0", "via": "10.0.0.1"},
                                {"to": "::/0", "via": "2001:db8::1"}],
                     "nameservers": {"addresses": ["10.0.0.53", "2001:db8::53"]}},
            "eth1": {"match": {"macaddress": "bc:24:11:0a:0b:0c"}, "set-name": "eth1",
                     "dhcp4": True, "dhcp6": False, "accept-ra": True,
                     "routes": [{"to": "10.1.0.0/16", "via": "10.0.1.1"}]}}})

        # rerun: nothing
        self.assertEqual(cfg_changes(self.dry_plan(cfg, "8001"), 8001), {})

        # another VLAN, no rate limit, the firewall left as it is: only the NICs change,
        # the seed (which knows nothing of VLANs) stays
        nics[0] = dict(nics[0], vlan=20)
        del nics[0]["firewall"]
        del nics[1]["rate"]
        cfg = self.config([dict(vm, networks=nics)])
        plan = self.dry_plan(cfg, "8001")
        self.assertEqual(cfg_changes(plan, 8001), {
            "net0": (conf["net0"], conf["net0"].replace("tag=10", "tag=20")),
            "net1": (conf["net1"], "e1000=BC:24:11:0A:0B:0C,bridge=vmbr1")})
        n = self.mark()
        self.deploy(cfg, "8001", ips={8001: "10.0.0.5"})
        self.assert_sent_as_planned(plan, n)
        self.assertIn("tag=20", self.conf(8001)["net0"])
        self.assertEqual(self.conf(8001)["ide2"], conf["ide2"])

        # a NIC left out of the config stays, and the plan says so
        cfg = self.config([dict(vm, networks=nics[:1])])
        plan = self.dry_plan(cfg, "8001")
        self.assertTrue([x for x in plan["notes"] if x["text"].startswith("net1 is not in")],
                        plan["notes"])

    def test_system_disk_options_and_data_disks_grow_or_are_added_never_shrunk(self):
        self.seed_template()
        disks = [{"size_gb": 2, "ssd": True, "discard": True},
                 {"size_gb": 1, "bus": "virtio", "iothread": True, "cache": "writeback"}]
        cfg = self.config([self.vm(disk={"ssd": True, "discard": True}, disks=disks)])
        plan = self.dry_plan(cfg, "8001")
        ch = cfg_changes(plan, 8001)
        # the clone's system disk is named by the clone, never the template's volume: pending
        # in the plan, read from the clone right before its config request, in the same run
        self.assertEqual(ch["scsi0"], ("local:9000/base-9000-disk-0.qcow2,size=1G",
                                       "<scsi0 of the clone>,discard=on,size=1G,ssd=1"))
        cfg_act = [a for a in plan["actions"] if a["path"].endswith("/qemu/8001/config")][0]
        self.assertEqual(cfg_act["pending"], ["scsi0"])
        self.assertEqual(ch["scsi1"], (None, "local:2,discard=on,ssd=1"))
        self.assertEqual(ch["virtio2"], (None, "local:1,cache=writeback,iothread=1"))
        n = self.mark()
        self.deploy(cfg, "8001")
        vol = self.conf(8001)["scsi0"].split(",")[0]
        self.assertRegex(vol, r"^local:9000/base-9000-disk-0\.qcow2/8001/vm-8001-disk-\d\.qcow2$")
        self.assert_sent_as_planned(plan, n, filled={"scsi0": vol + ",discard=on,size=1G,ssd=1"})
        starts = [i for i, r in enumerate(changing(self.sim.requests()[n:]))
                  if r["path"].endswith("/status/start")]
        self.assertEqual(len(starts), 1, "started once, after its disk options were set")
        conf = self.conf(8001)
        self.assertRegex(conf["scsi0"], r"^local:9000/base-9000-disk-0\.qcow2/8001/vm-8001-disk-"
                                        r"\d\.qcow2,discard=on,size=1G,ssd=1$")
        self.assertRegex(conf["scsi1"], r"^local:8001/vm-8001-disk-\d\.qcow2,discard=on,"
                                        r"size=2G,ssd=1$")
        self.assertRegex(conf["virtio2"], r"^local:8001/vm-8001-disk-\d\.qcow2,cache=writeback,"
                                          r"iothread=1,size=1G$")
        self.assertEqual(cfg_changes(self.dry_plan(cfg, "8001"), 8001), {}, "converged")

        # grow one, add one, ask to shrink the other: grown and added, not shrunk
        disks = [{"size_gb": 3, "ssd": True, "discard": True},
                 {"size_gb": 1, "bus": "virtio", "iothread": True, "cache": "writeback"},
                 {"size_gb": 1, "bus": "sata", "storage": "local"}]
        cfg = self.config([self.vm(disk={"ssd": True, "discard": True}, disks=disks)])
        plan = self.dry_plan(cfg, "8001")
        self.assertEqual(cfg_changes(plan, 8001), {"sata3": (None, "local:1")})
        grows = [a for a in plan["actions"] if a["path"].endswith("/resize")]
        self.assertEqual([(a["params"]["disk"], a["params"]["size"]) for a in grows],
                         [("scsi1", "3G")])
        n = self.mark()
        self.deploy(cfg, "8001")
        self.assert_sent_as_planned(plan, n)
        conf = self.conf(8001)
        self.assertIn("size=3G", conf["scsi1"])
        self.assertIn("size=1G", conf["sata3"])

        cfg = self.config([self.vm(disk={"ssd": True, "discard": True},
                                   disks=[dict(disks[0], size_gb=2)])])
        plan = self.dry_plan(cfg, "8001")
        self.assertFalse([a for a in plan["actions"] if a["path"].endswith("/resize")])
        texts = [x["text"] for x in plan["notes"]]
        self.assertIn("scsi1 is 3G, larger than disks[0].size_gb 2: not shrinking", texts)
        self.assertTrue([t for t in texts if t.startswith("virtio2 is not in disks: kept")],
                        texts)
        self.assertTrue([t for t in texts if t.startswith("sata3 is not in disks: kept")], texts)

    def test_disks_dropped_from_the_config_go_only_with_allow_disk_removal(self):
        import os

        self.seed_template()
        disks = [{"size_gb": 1}, {"size_gb": 1, "bus": "virtio"}, {"size_gb": 1, "bus": "sata"}]
        cfg = self.config([self.vm(disks=disks)])
        self.deploy(cfg, "8001")
        conf = self.conf(8001)
        vols = {k: conf[k].split(",")[0] for k in ("scsi1", "virtio2", "sata3")}
        for v in vols.values():
            self.assertTrue(os.path.exists(self.disk_path(v)), v)
        # scsi1 stays listed; virtio2 and sata3 are dropped from the config
        cfg = self.config([self.vm(disks=disks[:1])])
        plan = self.dry_plan(cfg, "8001")
        self.assertEqual(cfg_changes(plan, 8001), {})
        texts = [x["text"] for x in plan["notes"]]
        for k in ("virtio2", "sata3"):
            self.assertIn("%s is not in disks: kept ('%s'; --allow-disk-removal removes it with "
                          "its volume)" % (k, vols[k]), texts)
        # with the flag: detached in the config request (Proxmox makes each the lowest free
        # unusedN), then each unusedN deleted, which frees its volume; never the system disk
        plan = self.dry_plan(cfg, "--allow-disk-removal", "8001")
        cfgs = [a for a in plan["actions"] if a["path"].endswith("/qemu/8001/config")]
        self.assertEqual(len(cfgs), 3, [a["summary"] for a in plan["actions"]])
        detached = sorted(cfgs[0]["params"]["delete"].split(","))
        self.assertEqual(detached, ["sata3", "virtio2"])
        ch = cfg_changes(plan, 8001)
        self.assertEqual(ch["virtio2"], (conf["virtio2"], None))
        self.assertEqual(ch["sata3"], (conf["sata3"], None))
        unused = {c["params"]["delete"]: c["changes"][0]["old"] for c in cfgs[1:]}
        self.assertEqual(sorted(unused), ["unused0", "unused1"])
        self.assertEqual(sorted(unused.values()), sorted([vols["virtio2"], vols["sata3"]]))
        self.assertTrue(all(c["action"] == "-" for c in cfgs[1:]), cfgs[1:])
        n = self.mark()
        self.deploy(cfg, "--allow-disk-removal", "8001")
        self.assert_sent_as_planned(plan, n)
        after = self.conf(8001)
        for k in ("virtio2", "sata3", "unused0", "unused1"):
            self.assertNotIn(k, after)
        self.assertEqual(after["scsi1"], conf["scsi1"])
        self.assertEqual(after["scsi0"], conf["scsi0"], "the system disk stays")
        self.assertTrue(os.path.exists(self.disk_path(vols["scsi1"])))
        for k in ("virtio2", "sata3"):
            self.assertFalse(os.path.exists(self.disk_path(vols[k])), k)
        # converged, with or without the flag
        plan = self.dry_plan(cfg, "--allow-disk-removal", "8001")
        self.assertEqual(cfg_changes(plan, 8001), {})
        self.assertFalse([a for a in plan["actions"] if a["path"].endswith("/config")])
        # a protected VM keeps its disks: Proxmox would refuse (check_protection)
        cfg = self.config([self.vm(disks=[], protection=True)])
        self.deploy(cfg, "8001")
        plan = self.dry_plan(cfg, "--allow-disk-removal", "8001")
        self.assertNotIn("scsi1", cfg_changes(plan, 8001))
        self.assertIn("scsi1 is not in disks but the VM is protected: kept (Proxmox refuses to "
                      "remove a drive of a protected VM)", [x["text"] for x in plan["notes"]])

    def test_lifecycle_onboot_startup_protection_and_start_false(self):
        self.seed_template()
        life = {"onboot": True, "startup": {"order": 2, "up": 30}, "protection": True,
                "start": False}
        cfg = self.config([self.vm(**life)])
        plan = self.dry_plan(cfg, "8001")
        ch = cfg_changes(plan, 8001)
        self.assertEqual((ch["onboot"], ch["startup"], ch["protection"]),
                         ((None, "1"), (None, "order=2,up=30"), (None, "1")))
        self.assertFalse([a for a in plan["actions"] if a["path"].endswith("/status/start")])
        n = self.mark()
        p = self.deploy(cfg, "--output", "json", "8001", guests=False)
        self.assert_sent_as_planned(plan, n)
        res = json.loads(p.stdout)[0]
        self.assertEqual(res["state"], "created")
        self.assertIn("not started; its guest agent was not awaited", res["note"])
        st = self.sim.control("GET", "/_sim/state")["vms"]["8001"]
        self.assertEqual(st["status"], "stopped")
        self.assertEqual((st["conf"]["onboot"], st["conf"]["startup"], st["conf"]["protection"]),
                         (1, "order=2,up=30", 1))
        self.assertFalse(self.logged("POST", r"/agent/"), "no agent call for a VM not started")

        # rerun: stays stopped, nothing to change; then only what changed
        self.assertEqual(cfg_changes(self.dry_plan(cfg, "8001"), 8001), {})
        life = dict(life, startup={"order": 2, "up": 30, "down": 60}, protection=False)
        cfg = self.config([self.vm(**life)])
        plan = self.dry_plan(cfg, "8001")
        self.assertEqual(cfg_changes(plan, 8001), {
            "startup": ("order=2,up=30", "order=2,up=30,down=60"), "protection": ("1", "0")})
        n = self.mark()
        self.deploy(cfg, "8001", guests=False)
        self.assert_sent_as_planned(plan, n)
        self.assertEqual(self.conf(8001)["protection"], 0)

    def test_ha_resource_added_then_updated_only_where_it_differs(self):
        self.seed_template()
        cfg = self.config([self.vm(ha={"max_restart": 2, "comment": "db primary"})])
        plan = self.dry_plan(cfg, "8001")
        ha = [a for a in plan["actions"] if a["path"].startswith("/cluster/ha/")]
        self.assertEqual([(a["method"], a["path"], a["params"]) for a in ha],
                         [("POST", "/cluster/ha/resources",
                           {"sid": "vm:8001", "state": "started", "max_restart": "2",
                            "comment": "db primary"})])
        self.assertEqual(plan["actions"][-1], ha[0], "added once the VM is configured")
        n = self.mark()
        self.deploy(cfg, "8001")
        self.assert_sent_as_planned(plan, n)
        res = self.sim.control("GET", "/_sim/state")["ha_resources"]
        self.assertEqual(res, {"vm:8001": {"type": "vm", "state": "started", "max_restart": 2,
                                           "comment": "db primary"}})

        # converged: nothing; then only what differs, as old -> new
        plan = self.dry_plan(cfg, "8001")
        self.assertFalse([a for a in plan["actions"] if a["path"].startswith("/cluster/ha/")])
        cfg = self.config([self.vm(ha={"max_restart": 2, "max_relocate": 0,
                                       "comment": "db replica"})])
        plan = self.dry_plan(cfg, "8001")
        ha = [a for a in plan["actions"] if a["path"].startswith("/cluster/ha/")]
        self.assertEqual([(a["method"], a["path"]) for a in ha],
                         [("PUT", "/cluster/ha/resources/vm:8001")])
        self.assertEqual({c["key"]: (c["old"], c["new"]) for c in ha[0]["changes"]},
                         {"comment": ("db primary", "db replica"), "max_relocate": (None, "0")})
        n = self.mark()
        self.deploy(cfg, "8001")
        self.assert_sent_as_planned(plan, n)
        self.assertEqual(self.sim.control("GET", "/_sim/state")["ha_resources"]["vm:8001"]
                         ["max_relocate"], 0)
        # Proxmox 9 has no HA groups (migrated to rules): the server's refusal is reported
        cfg = self.config([self.vm(ha={"group": "prod"})])
        p = self.deploy(cfg, "8001", check=1)
        self.assertIn("ha groups have been migrated to rules", p.stderr)
        # --destroy purges it with the VM
        self.run_bin("--config", cfg, "--destroy", "8001", check=0)
        self.assertEqual(self.sim.control("GET", "/_sim/state")["ha_resources"], {})

    def test_user_data_parts_and_vendor_data_reach_the_seed_and_converge(self):
        import os

        self.seed_template()
        script = os.path.join(self.tmp, "enroll.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho enrolled > /run/enrolled\n")
        parts = [{"type": "text/x-shellscript", "source": script},
                 {"type": "text/cloud-config", "content": "#cloud-config\npackages: [htop]\n"}]
        vendor = [{"type": "text/cloud-config",
                   "content": "#cloud-config\nntp:\n  enabled: true\n"}]
        cfg = self.config([self.vm(user_data_parts=parts)], vendor_data=vendor)
        plan = self.dry_plan(cfg, "8001")
        n = self.mark()
        self.deploy(cfg, "8001")
        self.assert_sent_as_planned(plan, n)
        files = self.iso_files(self.conf(8001)["ide2"].split(",")[0])
        self.assertEqual(sorted(files), ["meta-data", "network-config", "user-data",
                                         "vendor-data"])
        ud = files["user-data"]
        self.assertTrue(ud.startswith("Content-Type: multipart/mixed; boundary="), ud[:80])
        self.assertLess(ud.index("#cloud-config\nhostname: docker-host-1\n"),
                        ud.index("#!/bin/sh\necho enrolled > /run/enrolled\n"))
        self.assertLess(ud.index("#!/bin/sh\necho enrolled"), ud.index("packages: [htop]"))
        self.assertIn("Content-Type: text/x-shellscript;", ud)
        self.assertIn("ntp:\n  enabled: true\n", files["vendor-data"])
        # rerun: the same seed, nothing to change
        self.assertEqual(cfg_changes(self.dry_plan(cfg, "8001"), 8001), {})
        # a changed vendor-data part is a new seed (a new instance-id: cloud-init runs again)
        old_seed = self.conf(8001)["ide2"]
        vendor = [{"type": "text/cloud-config",
                   "content": "#cloud-config\nntp:\n  enabled: false\n"}]
        cfg = self.config([self.vm(user_data_parts=parts)], vendor_data=vendor)
        plan = self.dry_plan(cfg, "8001")
        ch = cfg_changes(plan, 8001)
        self.assertEqual(ch["ide2"][0], old_seed)
        n = self.mark()
        self.deploy(cfg, "8001")
        self.assert_sent_as_planned(plan, n)
        files = self.iso_files(self.conf(8001)["ide2"].split(",")[0])
        self.assertIn("enabled: false", files["vendor-data"])

    def test_bad_parts_exit_2_naming_the_part_before_any_request(self):
        self.seed_template()
        n = self.mark()
        cfg = self.config([self.vm(user_data_parts=[
            {"type": "text/x-shellscript", "content": "echo no shebang\n"}])])
        p = self.run_bin("--config", cfg, "--check", check=2)
        self.assertIn("$.vms[0]: cloud-init: user_data_parts[0]: a text/x-shellscript part "
                      "must start with '#!'", p.stderr)
        cfg = self.config([self.vm(user_data_parts=[
            {"type": "text/cloud-config", "content": "#cloud-config\n- not a mapping\n"}])])
        p = self.run_bin("--config", cfg, "8001", check=2)
        self.assertIn("$.vms[0]: cloud-init: user_data_parts[0]: a text/cloud-config part must "
                      "be a YAML mapping", p.stderr)
        cfg = self.config([self.vm(vendor_data=[{"type": "text/html", "content": "x"}])])
        p = self.run_bin("--config", cfg, "8001", check=2)
        self.assertIn("$.vms[0].vendor_data[0].type: expected a cloud-init part type", p.stderr)
        cfg = self.config([self.vm()], cloudinit_mode="native",
                          vendor_data=[{"type": "text/x-shellscript", "content": "#!/bin/sh\n"}])
        p = self.run_bin("--config", cfg, "8001", check=2)
        self.assertIn("$.defaults.vendor_data: needs cloudinit_mode 'iso'", p.stderr)
        cfg = self.config([self.vm(user_data_parts=[
            {"type": "text/x-shellscript", "content": "#!/bin/sh\n"}])], cloudinit_mode="native")
        p = self.run_bin("--config", cfg, "8001", check=2)
        self.assertIn("$.vms[0].user_data_parts: need cloudinit_mode 'iso', or "
                      "defaults.snippets_dir for native mode", p.stderr)
        self.assertEqual(self.sim.requests()[n:], [])

    def test_ha_resource_removed_when_dropped_from_the_config_only_if_ours(self):
        self.seed_template()
        cfg = self.config([self.vm(ha={"state": "started"})])
        self.deploy(cfg, "8001")
        self.assertIn("phoenix-ha: vm:8001", self.conf(8001)["description"])
        # `ha` dropped: the resource goes first, then the record loses its line
        cfg = self.config([self.vm()])
        plan = self.dry_plan(cfg, "8001")
        ha = [a for a in plan["actions"] if a["path"].startswith("/cluster/ha/")]
        self.assertEqual([(a["method"], a["path"], a["action"]) for a in ha],
                         [("DELETE", "/cluster/ha/resources/vm:8001", "-")])
        cfg_i = [i for i, a in enumerate(plan["actions"]) if a["path"].endswith("/config")][0]
        self.assertLess(plan["actions"].index(ha[0]), cfg_i)
        n = self.mark()
        self.deploy(cfg, "8001")
        self.assert_sent_as_planned(plan, n)
        self.assertEqual(self.sim.control("GET", "/_sim/state")["ha_resources"], {})
        self.assertNotIn("phoenix-ha", self.conf(8001)["description"])
        plan = self.dry_plan(cfg, "8001")
        self.assertFalse([a for a in plan["actions"] if a["path"].startswith("/cluster/ha/")])
        self.assertEqual(cfg_changes(plan, 8001), {}, "converged")
        # and back: `ha` again adds it (both ways)
        cfg = self.config([self.vm(ha={"state": "started"})])
        self.deploy(cfg, "8001")
        self.assertIn("vm:8001", self.sim.control("GET", "/_sim/state")["ha_resources"])
        # a resource someone added by hand (no record line) is theirs: kept, with a note
        cfg = self.config([self.vm()])
        self.deploy(cfg, "8001")
        st, _, b = self.sim.api("POST", "/cluster/ha/resources", {"sid": "vm:8001"})
        self.assertEqual(st, 200, b)
        plan = self.dry_plan(cfg, "8001")
        self.assertFalse([a for a in plan["actions"] if a["path"].startswith("/cluster/ha/")])
        self.assertIn("HA resource 'vm:8001' kept: not added by this tool (give the VM 'ha' to "
                      "manage it here)", [x["text"] for x in plan["notes"]])
        self.run_bin("--config", cfg, "--destroy", "8001", check=0)

    def test_bad_values_exit_2_before_any_request(self):
        self.seed_template()
        n = self.mark()
        cfg = self.config([self.vm(bios="uefi", machine="q36", cpu="pentium9", sockets=9,
                                   balloon=99999, numa="yes", tpm=1)])
        p = self.run_bin("--config", cfg, "8001", check=2)
        for path in ("bios", "machine", "cpu", "sockets", "balloon", "numa", "tpm"):
            self.assertRegex(p.stderr, r"\$\.vms\[0\]\.%s: expected" % re.escape(path))
        self.assertEqual(self.sim.requests()[n:], [])


ALL_BUT_SDN = ("VM.Allocate,VM.Audit,VM.Clone,VM.Config.CPU,VM.Config.Disk,VM.Config.CDROM,"
               "VM.Config.Cloudinit,VM.Config.HWType,VM.Config.Memory,VM.Config.Network,"
               "VM.Config.Options,VM.PowerMgmt,VM.GuestAgent.Audit,VM.Monitor,"
               "Datastore.Allocate,Datastore.AllocateSpace,Datastore.AllocateTemplate,"
               "Datastore.Audit,Sys.Audit,Sys.Modify")


class TestHardwareSdn(PlanBase):
    """qemu-server check_bridge_access checks SDN.Use for every NIC of a request, on
    /sdn/zones/<zone>/<bridge>/<tag> for a tagged one (pve-guest-common check_vnet_access):
    the preflight asks for each NIC's path, not only net0's, before the first change."""
    sim_opts = dict(PlanBase.sim_opts, token_privs=(
        "phoenix@pve!ci=/:" + ALL_BUT_SDN + ";/sdn/zones/localnetwork/vmbr0:SDN.Use"))

    def test_every_nic_bridge_and_vlan_is_checked_before_any_change(self):
        self.seed_template()
        before = self.state()
        n = self.mark()
        nics = [{"bridge": "vmbr0", "vlan": 10}, {"bridge": "vmbr1", "vlan": 20}]
        vm = TestHardware.vm(self, networks=nics, network_config=None)
        p = self.deploy(self.config([vm]), "8001", check=1)
        self.assertIn("lacks SDN.Use on '/sdn/zones/localnetwork/vmbr1/20'", p.stderr)
        self.assertNotIn("vmbr0", p.stderr, "net0's tag path inherits the bridge's ACL")
        self.assertEqual(self.state(), before)
        self.assertEqual([r for r in self.sim.requests()[n:]
                          if r["method"] != "GET" and not r.get("control")], [])


if __name__ == "__main__":
    unittest.main()
