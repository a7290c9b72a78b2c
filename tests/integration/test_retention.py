"""Template retention against the Proxmox simulator: `--prune` with `versions.max_age_days`,
and `--remove-template NAME|VMID`.

Versions are seeded through the simulator's API the way `--provision-template` leaves them
(name `<series>-<YYYYMMDD>-<NNN>`, tags `phoenix;phx-<series>`, the build record in the
description, converted to a template), with build times in the past, so the clock is
controlled through the records: no image is built or customized and each test takes seconds.
"""
import json
import os
import time
import unittest

from test_plan import PlanBase, changing

DAY = 86400


def record(name, built):
    """The build record cmd_provision writes into a template's description."""
    return ("Built by phoenix-orchestrator 0.1.0; do not edit the lines below.\n"
            "template: tpl\nname: %s\nsource: https://example.org/x.img\nsha256: %s\n"
            "customized-sha256: %s\nbuilt: %s\n"
            % (name, "0" * 64, "1" * 64, time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                         time.gmtime(built))))


class RetentionBase(PlanBase):
    def setUp(self):
        super().setUp()
        self.built = {}

    def version(self, vmid, days_ago, node="pve1", tags="phoenix;phx-tpl", with_record=True):
        """A version of series 'tpl' built `days_ago` days ago; returns its name."""
        built = time.time() - days_ago * DAY
        self.built[vmid] = built
        name = "tpl-%s-001" % time.strftime("%Y%m%d", time.gmtime(built))
        params = {"vmid": str(vmid), "name": name, "scsi0": "local:1", "tags": tags,
                  "net0": "virtio,bridge=vmbr0"}
        if with_record:
            params["description"] = record(name, built)
        self.api_ok("POST", "/nodes/%s/qemu" % node, params)
        self.api_ok("POST", "/nodes/%s/qemu/%d/template" % (node, vmid))
        return name

    def day(self, vmid):
        """The build day of a seeded version, as --prune shows it."""
        return time.strftime("%Y-%m-%d", time.gmtime(self.built[vmid]))

    def tpl_config(self, vms=(), **versions):
        tpl = {"name": "tpl", "os": "debian-12", "image_url": "https://example.org/x.img",
               "sha256": "0" * 64, "hardware": {"cores": 1, "memory_mb": 512},
               "versions": dict({"vmid_min": 9100, "vmid_max": 9109}, **versions)}
        return self.write_config({"proxmox": self.proxmox_section(),
                                  "defaults": {"storage": "local", "import_storage": "local",
                                               "iso_storage": "local"},
                                  "templates": [tpl], "features": self.features(),
                                  "vms": list(vms)})


class TestMaxAge(RetentionBase):
    def test_old_versions_go_with_their_reason_and_the_plan_is_what_is_sent(self):
        self.version(9100, 400)
        self.version(9101, 200, tags="phoenix;phx-tpl;validated")
        n9102 = self.version(9102, 100)
        self.version(9103, 10)
        cfg = self.tpl_config(keep=3, max_age_days=90)
        plan = self.dry_plan(cfg, "--prune")
        why_9102 = "older than 90 days (built %s)" % self.day(9102)
        why_9100 = "beyond keep 3, older than 90 days (built %s)" % self.day(9100)
        self.assertEqual([(a["path"], a["changes"]) for a in plan["actions"]], [
            ("/nodes/pve1/qemu/9102", [{"key": "reason", "old": None, "new": why_9102}]),
            ("/nodes/pve1/qemu/9100", [{"key": "reason", "old": None, "new": why_9100}]),
        ])
        self.assertEqual([x["text"] for x in plan["notes"]],
                         ["kept 9101 '%s': the newest validated version"
                          % self.state()["vms"]["9101"]["conf"]["name"]])
        text = self.run_bin("--config", cfg, "--prune", "--dry-run", check=0).stdout
        self.assertIn("tpl:\n  - remove version 9102 '%s'\n      + reason: %s\n"
                      % (n9102, why_9102), text)
        self.assertEqual(sorted(self.state()["vms"]), ["9100", "9101", "9102", "9103"])

        n = self.mark()
        p = self.run_bin("--config", cfg, "--prune", "--output", "json", check=0)
        self.assert_sent_as_planned(plan, n)
        self.assertEqual([(x["vmid"], x["action"], x["reason"]) for x in json.loads(p.stdout)], [
            (9102, "removed", why_9102),
            (9101, "kept", "the newest validated version"),
            (9100, "removed", why_9100),
        ])
        self.assertEqual(sorted(self.state()["vms"]), ["9101", "9103"])

        # a second prune finds nothing more to remove
        n = self.mark()
        p = self.run_bin("--config", cfg, "--prune", check=0)
        self.assertIn("tpl: kept 9101", p.stdout)
        self.assertEqual(changing(self.sim.requests()[n:]), [])

    def test_what_is_used_newest_or_of_unknown_age_stays(self):
        self.version(9100, 400)
        self.version(9101, 300)
        self.version(9102, 250, with_record=False)
        self.version(9103, 200)
        # a linked clone of 9100 (its disk names 9100's base volume)
        upid = self.api_ok("POST", "/nodes/pve1/qemu/9100/clone",
                           {"newid": "8100", "name": "user"})
        self.assertTrue(upid)
        # and a VM in the config clones 9101 by VMID
        cfg = self.tpl_config([self.vm_8001(clone_from_vmid=9101)], keep=10, max_age_days=90)
        plan = self.dry_plan(cfg, "--prune")
        self.assertEqual(plan["actions"], [])
        notes = {x["text"].split("'")[0]: x["text"].split(": ", 1)[1] for x in plan["notes"]}
        self.assertEqual(notes, {
            "kept 9103 ": "the newest version on 'pve1'",
            "kept 9102 ": "build time unknown (no 'built' line in its description): not "
                          "removed for age",
            "kept 9101 ": "a VM in the config clones it (clone_from_vmid)",
            "kept 9100 ": "linked clone 8100 uses it",
        })
        n = self.mark()
        p = self.run_bin("--config", cfg, "--prune", check=0)
        self.assertIn("tpl: kept 9100 '%s': linked clone 8100 uses it"
                      % self.state()["vms"]["9100"]["conf"]["name"], p.stdout)
        self.assertEqual(changing(self.sim.requests()[n:]), [])
        self.assertEqual(sorted(self.state()["vms"]), ["8100", "9100", "9101", "9102", "9103"])

    def test_bad_max_age_exits_2_before_any_request(self):
        cfg = self.tpl_config(keep=3, max_age_days=0)
        n = len(self.sim.requests())
        p = self.run_bin("--config", cfg, "--prune", check=2)
        self.assertIn("$.templates[0].versions.max_age_days: expected an integer from 1 to "
                      "36500, got 0", p.stderr)
        self.assertEqual(len(self.sim.requests()), n)


class TestTwoNodes(RetentionBase):
    """Each node keeps its own newest version, however old, and has its own copy of each."""
    sim_opts = dict(RetentionBase.sim_opts, nodes="pve1,pve2")

    def test_the_newest_on_each_node_is_never_aged_out(self):
        self.version(9100, 400)
        self.version(9101, 5)
        self.version(9102, 400, node="pve2")
        cfg = self.tpl_config(keep=3, max_age_days=90)
        plan = self.dry_plan(cfg, "--prune")
        self.assertEqual([a["path"] for a in plan["actions"]], ["/nodes/pve1/qemu/9100"])
        self.assertEqual([x["text"].split(": ", 1)[1] for x in plan["notes"]],
                         ["the newest version on 'pve2'"])
        n = self.mark()
        self.run_bin("--config", cfg, "--prune", check=0)
        self.assert_sent_as_planned(plan, n)
        self.assertEqual(sorted(self.state()["vms"]), ["9101", "9102"])

    def test_remove_template_refuses_a_version_name_two_nodes_share(self):
        name = self.version(9100, 400)
        self.version(9102, 400, node="pve2")
        cfg = self.tpl_config()
        n = self.mark()
        p = self.run_bin("--config", cfg, "--remove-template", name, check=1)
        self.assertIn("'%s' names 2 guests (9100 on 'pve1', 9102 on 'pve2'): give the VMID"
                      % name, p.stderr)
        self.assertEqual(changing(self.sim.requests()[n:]), [])
        n = self.mark()
        self.run_bin("--config", cfg, "--remove-template", "9102", check=0)
        self.assertEqual([(r["method"], r["path"]) for r in changing(self.sim.requests()[n:])],
                         [("DELETE", "/api2/json/nodes/pve2/qemu/9102")])
        self.assertEqual(sorted(self.state()["vms"]), ["9100"])


class TestRemoveTemplate(RetentionBase):
    def test_a_version_goes_by_name_or_vmid_and_the_dry_run_sends_nothing(self):
        old = self.version(9100, 400)
        self.version(9101, 10)
        cfg = self.tpl_config()
        plan = self.dry_plan(cfg, "--remove-template", old)  # asserts: nothing changing sent
        self.assertEqual(plan["command"], "remove-template")
        self.assertEqual([(a["action"], a["method"], a["path"], a["params"])
                          for a in plan["actions"]],
                         [("-", "DELETE", "/nodes/pve1/qemu/9100",
                           {"purge": "1", "destroy-unreferenced-disks": "1"})])
        n = self.mark()
        text = self.run_bin("--config", cfg, "--remove-template", old, "--dry-run",
                            check=0).stdout
        self.assertIn("template 9100 '%s':\n  - remove template 9100 on 'pve1'\n" % old, text)
        self.assertIn("Plan: 1 change (dry run: nothing was sent)", text)
        self.assertEqual(changing(self.sim.requests()[n:]), [])
        self.assertEqual(sorted(self.state()["vms"]), ["9100", "9101"])

        n = self.mark()
        p = self.run_bin("--config", cfg, "--remove-template", old, check=0)
        self.assertIn("removed template 9100 '%s' on 'pve1'" % old, p.stdout)
        self.assert_sent_as_planned(plan, n)
        self.assertEqual(sorted(self.state()["vms"]), ["9101"])

        p = self.run_bin("--config", cfg, "--remove-template", "9101", "--output", "json",
                         check=0)
        out = json.loads(p.stdout)
        self.assertEqual((out["vmid"], out["node"], out["action"], out["dry_run"]),
                         (9101, "pve1", "removed", False))
        self.assertEqual(self.state()["vms"], {})

    def test_a_fixed_vmid_template_goes_by_its_config_name(self):
        self.api_ok("POST", "/nodes/pve1/qemu", {"vmid": "9000", "name": "golden-image",
                                                 "scsi0": "local:1", "tags": "phoenix"})
        self.api_ok("POST", "/nodes/pve1/qemu/9000/template")
        cfg = self.write_config({"proxmox": self.proxmox_section(),
                                 "defaults": {"storage": "local"},
                                 "templates": [{"name": "golden", "vmid": 9000,
                                                "image_url": "https://example.org/x.img",
                                                "sha256": "0" * 64}],
                                 "vms": []})
        n = self.mark()
        p = self.run_bin("--config", cfg, "--remove-template", "golden", check=0)
        self.assertIn("removed template 9000 'golden-image' on 'pve1'", p.stdout)
        self.assertEqual([(r["method"], r["path"]) for r in changing(self.sim.requests()[n:])],
                         [("DELETE", "/api2/json/nodes/pve1/qemu/9000")])
        # gone now: the config's name finds nothing on the cluster
        p = self.run_bin("--config", cfg, "--remove-template", "golden", check=1)
        self.assertIn("template 'golden' (VMID 9000 in the config) does not exist", p.stderr)

    def test_refused_while_linked_clones_use_it_naming_them(self):
        name = self.version(9100, 400)
        for newid in (8100, 8101):
            self.api_ok("POST", "/nodes/pve1/qemu/9100/clone",
                        {"newid": str(newid), "name": "user-%d" % newid})
        cfg = self.tpl_config()
        before = self.state()
        n = self.mark()
        for extra in ((), ("--dry-run",)):
            p = self.run_bin("--config", cfg, "--remove-template", name, *extra, check=1)
            self.assertIn("template 9100 '%s' is in use by linked clones 8100, 8101: remove "
                          "them first" % name, p.stderr)
        self.assertEqual(changing(self.sim.requests()[n:]), [])
        self.assertEqual(self.state(), before)

    def test_not_ours_and_not_a_template_are_refused(self):
        self.api_ok("POST", "/nodes/pve1/qemu", {"vmid": "9500", "name": "golden",
                                                 "scsi0": "local:1", "tags": "base"})
        self.api_ok("POST", "/nodes/pve1/qemu/9500/template")
        self.api_ok("POST", "/nodes/pve1/qemu", {"vmid": "8100", "name": "web",
                                                 "scsi0": "local:1", "tags": "phoenix"})
        cfg = self.tpl_config()
        n = self.mark()
        p = self.run_bin("--config", cfg, "--remove-template", "golden", check=1)
        self.assertIn("VM 9500 'golden' has no 'phoenix' tag: it was not built by "
                      "phoenix-orchestrator, refusing to remove it", p.stderr)
        p = self.run_bin("--config", cfg, "--remove-template", "8100", check=1)
        self.assertIn("VM 8100 'web' is not a template: --remove-template removes templates; "
                      "use --destroy for VMs", p.stderr)
        p = self.run_bin("--config", cfg, "--remove-template", "tpl", check=1)
        self.assertIn("'tpl' is a version series in the config", p.stderr)
        p = self.run_bin("--config", cfg, "--remove-template", "4242", check=1)
        self.assertIn("VM 4242 does not exist on the cluster", p.stderr)
        self.assertEqual(changing(self.sim.requests()[n:]), [])
        self.assertEqual(sorted(self.state()["vms"]), ["8100", "9500"])

    def test_takes_the_run_lock(self):
        import fcntl
        self.version(9100, 400)
        env = self.env()
        path = os.path.join(env["XDG_CACHE_HOME"], "phoenix", "images", "orchestrator.lock")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        n = self.mark()
        with open(path, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            f.write("4242\n")
            f.flush()
            p = self.run_bin("--config", self.tpl_config(), "--remove-template", "9100",
                             env=env, check=75)
        self.assertIn("another orchestrator run (pid 4242) holds the lock", p.stderr)
        self.assertEqual([r for r in self.sim.requests()[n:] if not r.get("control")], [])
        self.assertIn("9100", self.state()["vms"])

    def test_a_bad_vmid_is_a_usage_error_before_any_request(self):
        cfg = self.tpl_config()
        n = len(self.sim.requests())
        p = self.run_bin("--config", cfg, "--remove-template", "99", check=2)
        self.assertIn("--remove-template: expected a whole number from 100 to 999999999, "
                      "got '99'", p.stderr)
        self.assertEqual(len(self.sim.requests()), n)



class TestSelection(RetentionBase):
    """`template_version`: which version of a series a new VM clones."""

    def setUp(self):
        super().setUp()
        self.old = self.version(9100, 20, tags="phoenix;phx-tpl;validated")
        self.new = self.version(9101, 2)

    def source(self, **vm):
        """The template VMID the dry run clones for VM 8001, and the dry run's notes."""
        cfg = self.tpl_config([self.vm_8001(clone_from_vmid=None, clone_from_template="tpl",
                                            **vm)])
        plan = self.dry_plan(cfg, "8001")
        clones = [a["path"] for a in plan["actions"] if a["path"].endswith("/clone")]
        self.assertEqual(len(clones), 1, plan["actions"])
        return int(clones[0].split("/")[4])

    def test_each_policy_picks_its_version(self):
        self.assertEqual(self.source(), 9100)
        self.assertEqual(self.source(template_version="validated"), 9100)
        self.assertEqual(self.source(template_version="latest"), 9101)
        self.assertEqual(self.source(template_version=self.new), 9101)
        self.assertEqual(self.source(template_version=self.old), 9100)

    def test_validated_falls_back_to_the_newest_with_a_warning(self):
        self.api_ok("PUT", "/nodes/pve1/qemu/9100/config", {"tags": "phoenix;phx-tpl"})
        cfg = self.tpl_config([self.vm_8001(clone_from_vmid=None, clone_from_template="tpl")])
        p = self.run_bin("--config", cfg, "8001", "--dry-run", check=0)
        self.assertIn("/qemu/9101/clone", p.stdout)
        self.assertIn("template 'tpl' has no validated version: cloning the newest, '%s'"
                      % self.new, p.stderr)

    def test_a_pinned_version_that_is_gone_fails_naming_it(self):
        cfg = self.tpl_config([self.vm_8001(clone_from_vmid=None, clone_from_template="tpl",
                                            template_version="tpl-20200101-001")])
        n = self.mark()
        p = self.run_bin("--config", cfg, "8001", check=1)
        self.assertIn("template_version 'tpl-20200101-001' of template 'tpl' is not on the "
                      "cluster", p.stderr)
        self.assertEqual(changing(self.sim.requests()[n:]), [])

    def test_check_shows_the_selection_and_rejects_bad_values(self):
        cfg = self.tpl_config([self.vm_8001(clone_from_vmid=None, clone_from_template="tpl",
                                            template_version="latest")])
        doc = json.loads(self.run_bin("--config", cfg, "--check", "--output", "json").stdout)
        self.assertEqual(doc["vms"][0]["template_selection"],
                         {"template": "tpl", "policy": "latest", "version": None,
                          "vmid_range": [9100, 9109]})
        for bad, why in (("newest", "expected \"validated\", \"latest\" or a version name "
                                    "like 'tpl-20261202-001', got 'newest'"),
                         ("other-20261202-001", "got 'other-20261202-001'")):
            cfg = self.tpl_config([self.vm_8001(clone_from_vmid=None,
                                                clone_from_template="tpl",
                                                template_version=bad)])
            p = self.run_bin("--config", cfg, "--check", check=2)
            self.assertIn("$.vms[0].template_version: ", p.stderr)
            self.assertIn(why, p.stderr)
        cfg = self.tpl_config([self.vm_8001(template_version="latest")])
        p = self.run_bin("--config", cfg, "--check", check=2)
        self.assertIn("$.vms[0].template_version: only goes with 'clone_from_template'",
                      p.stderr)


class TestCapture(RetentionBase):
    """`--capture VMID --as SERIES` with the fake hypervisor: what is sent, in which order,
    and what is undone. (The identity reset on a real guest's disk is proved in
    test_demo.py's boot.)"""

    def setUp(self):
        super().setUp()
        self.version(9100, 5, tags="phoenix;phx-tpl;validated")
        self.api_ok("POST", "/nodes/pve1/qemu", {
            "vmid": "8001", "name": "web-1", "scsi0": "local:1", "tags": "phoenix;web",
            "net0": "virtio,bridge=vmbr0", "agent": "enabled=1", "ciuser": "admin",
            "ipconfig0": "ip=dhcp"})
        self.api_ok("POST", "/nodes/pve1/qemu/8001/status/start")
        self.sim.control("POST", "/_sim/agent/8001", {"up": True})
        self.cfg = self.tpl_config()
        self.name = "tpl-%s-001" % time.strftime("%Y%m%d", time.gmtime())

    def test_a_running_vm_becomes_the_next_version_and_runs_again(self):
        plan = self.dry_plan(self.cfg, "--capture", "8001", "--as", "tpl")
        self.assertEqual([(a["method"], a["path"]) for a in plan["actions"]], [
            ("POST", "/nodes/pve1/qemu/8001/status/shutdown"),
            ("POST", "/nodes/pve1/qemu/8001/clone"),
            ("POST", "/nodes/pve1/qemu/9101/config"),
            ("POST", "/nodes/pve1/qemu/9101/template"),
            ("POST", "/nodes/pve1/qemu/8001/status/start")])
        self.assertEqual(plan["actions"][1]["params"],
                         {"newid": "9101", "name": self.name, "full": "1", "storage": "local"})
        self.assertEqual(plan["actions"][2]["params"]["delete"], "ciuser,ipconfig0")
        self.assertIn("identity of VM 8001", plan["notes"][0]["text"])
        n = self.mark()
        p = self.run_bin("--config", self.cfg, "--capture", "8001", "--as", "tpl")
        self.assertEqual(p.stdout, "captured VM 8001 'web-1' as template 9101 '%s' (series "
                                   "'tpl')\n" % self.name)
        self.assert_sent_as_planned(plan, n)
        execs = [r for r in self.sim.requests()[n:] if r["path"].endswith("/agent/exec")]
        self.assertEqual(len(execs), 1)
        self.assertIn("cloud-init clean", json.dumps(execs[0]["params"]))
        vms = self.state()["vms"]
        conf = vms["9101"]["conf"]
        self.assertEqual(conf.get("template"), 1)
        self.assertNotIn("ciuser", conf)
        self.assertNotIn("ipconfig0", conf)
        self.assertIn("source: capture of VM 8001 'web-1'\n", conf["description"])
        tags = set(conf["tags"].split(";"))
        self.assertTrue({"phoenix", "phx-tpl", "builder-phoenix", "build-001",
                         "os-debian-12"} <= tags, tags)
        self.assertEqual(vms["8001"]["status"], "running")
        # the captured version is the series' newest: --list-templates lists it
        listed = json.loads(self.run_bin("--config", self.cfg, "--list-templates",
                                         "--output", "json").stdout)
        self.assertEqual([x["vmid"] for x in listed], [9100, 9101])

    def test_a_failed_conversion_removes_the_clone_and_restarts_the_vm(self):
        before = sorted(self.state()["vms"])
        self.sim.control("POST", "/_sim/fault", {"kind": "task", "type": "qmtemplate",
                                                 "message": "template failed"})
        p = self.run_bin("--config", self.cfg, "--capture", "8001", "--as", "tpl", check=1)
        self.assertIn("template failed", p.stderr)
        self.assertIn("started VM 8001 'web-1' again", p.stderr)
        vms = self.state()["vms"]
        self.assertEqual(sorted(vms), before, "the clone must be removed")
        self.assertEqual(vms["8001"]["status"], "running")

    def test_refusals_change_nothing(self):
        self.api_ok("POST", "/nodes/pve1/qemu", {"vmid": "8002", "name": "other",
                                                 "scsi0": "local:1"})
        self.api_ok("POST", "/nodes/pve1/qemu/8002/status/start")
        self.api_ok("POST", "/nodes/pve1/qemu/8001/status/stop")
        n = self.mark()
        for args, code, why in (
                (("8002", "--as", "tpl"), 1, "was not made by this tool"),
                (("8001", "--as", "tpl"), 1, "is stopped: --capture resets its identity"),
                (("9100", "--as", "tpl"), 1, "is a template already"),
                (("8001", "--as", "nope"), 2, "--as 'nope': expected a template with "
                                              "'versions'")):
            p = self.run_bin("--config", self.cfg, "--capture", *args, check=code)
            self.assertIn(why, p.stderr)
        p = self.run_bin("--config", self.cfg, "--capture", "8001", check=2)
        self.assertIn("expected --as SERIES", p.stderr)
        self.assertEqual(changing(self.sim.requests()[n:]), [])

if __name__ == "__main__":
    unittest.main()
