"""`--dry-run` prints the plan after reads only, and a real run sends exactly that plan.

For deploy (a new VM and a converge), --destroy and --prune: the dry run's request log holds
GETs only; its JSON plan (docs/plan-json.md) is then compared with the changing requests the
real command sends, in order, with their parameters. The provision counterpart, which needs a
real image build, is in test_provision.py.
"""
import json
import re
import unittest
import urllib.parse

from test_deploy import DeployBase, REPO  # noqa: F401  (shared seeding and config helpers)


def changing(reqs):
    """The requests that change the server: not GET, not the simulator's control endpoint,
    not the guest agent (a POST to agent/ping reads)."""
    return [r for r in reqs if r["method"] != "GET" and not r.get("control")
            and "/agent/" not in r["path"]]


class PlanBase(DeployBase):
    def dry_plan(self, cfg, *args):
        n = self.mark()
        p = self.run_bin("--config", cfg, *args, "--dry-run", "--output", "json", check=0)
        self.assertEqual(changing(self.sim.requests()[n:]), [], "a dry run changed something")
        plan = json.loads(p.stdout)
        self.assertEqual(plan["plan_version"], 1)
        self.assertEqual(plan["changes"], len(plan["actions"]))
        return plan

    def assert_sent_as_planned(self, plan, n, filled=None):
        """`filled`: the value each pending parameter (known only at apply time, like a new
        clone's own volume) must have been sent with."""
        sent = changing(self.sim.requests()[n:])
        self.assertEqual([(r["method"], r["path"].replace("/api2/json", "", 1)) for r in sent],
                         [(a["method"], a["path"]) for a in plan["actions"]
                          if a["kind"] in ("request", "upload")])
        for a, r in zip([a for a in plan["actions"] if a["method"]], sent):
            want = dict(a["params"], **{k: (filled or {})[k] for k in a["pending"]})
            if a["kind"] == "upload":
                # the file part is logged apart from the fields
                for k, v in want.items():
                    self.assertEqual(r["params"].get(k), v, (a["summary"], k))
                self.assertEqual(r["params"].get("filename"), a["upload"]["filename"])
            else:
                # the simulator logs the path's parameters (node, vmid) with the others
                segments = [urllib.parse.unquote(x) for x in a["path"].split("/")]
                own = {k: v for k, v in r["params"].items()
                       if k in a["params"] or v not in segments}
                self.assertEqual(without_build_time(own), without_build_time(want),
                                 a["summary"])



def without_build_time(params):
    """A build record's `built:` is the second its run makes the request: a dry run shows
    its own, a second or more before the real run's (seen under the sanitizer's slowness)."""
    return {k: re.sub(r"(?m)^built: \S+$", "built: <time>", v) if k == "description" else v
            for k, v in params.items()}


class TestPlan(PlanBase):
    def test_new_vm_converge_and_destroy_send_what_was_planned(self):
        self.seed_template()
        before = self.state()
        cfg = self.config([self.vm_8001()])
        plan = self.dry_plan(cfg, "8001")
        self.assertEqual(self.state(), before)
        kinds = [(a["action"], a["summary"].split()[0]) for a in plan["actions"]]
        self.assertEqual(kinds, [("+", "linked"), ("+", "upload"), ("~", "configure"),
                                 ("~", "grow"), (">", "start")])
        cfg_act = plan["actions"][2]
        changes = {c["key"]: (c["old"], c["new"]) for c in cfg_act["changes"]}
        self.assertEqual(changes["cores"], ("2", "4"))
        self.assertEqual(changes["memory"], ("2048", "8192"))
        self.assertTrue(changes["ide2"][0].startswith("local:9000/vm-9000-cloudinit"),
                        changes["ide2"])
        self.assertEqual(plan["actions"][0]["undo"], "destroy VM 8001")
        self.assertIn("delete volume 'local:iso/phoenix-ci-8001-", plan["actions"][1]["undo"])
        self.assertEqual(plan["actions"][3]["changes"],
                         [{"key": "size", "old": "1G", "new": "100G"}])
        n = self.mark()
        self.deploy(cfg, "8001")
        self.assert_sent_as_planned(plan, n)

        # converge: only what differs is planned, and that is what is sent
        cfg = self.config([self.vm_8001(cores=6, disk_size_gb=120)])
        plan = self.dry_plan(cfg, "8001")
        self.assertEqual([a["summary"] for a in plan["actions"]],
                         ["configure VM 8001", "grow scsi0 to 120G"])
        # the record's config identity follows the VM's config entry, so it changes too
        self.assertEqual([c for c in plan["actions"][0]["changes"]
                          if c["key"] != "description"],
                         [{"key": "cores", "old": "4", "new": "6"}])
        self.assertIn("description", [c["key"] for c in plan["actions"][0]["changes"]])
        text = self.run_bin("--config", cfg, "8001", "--dry-run", check=0).stdout
        self.assertIn("VM 8001 'docker-host-1':\n  ~ configure VM 8001\n      ~ cores: 4 -> 6\n",
                      text)
        self.assertIn("      ~ size: 100G -> 120G\n", text)
        self.assertIn("Plan: 2 changes (dry run: nothing was sent)", text)
        n = self.mark()
        p = self.deploy(cfg, "8001")
        self.assertRegex(p.stdout, r"8001\s+docker-host-1\s+pve1\s+\S+\s+updated")
        self.assert_sent_as_planned(plan, n)

        # convergence is the empty plan
        plan = self.dry_plan(cfg, "8001")
        self.assertEqual(plan["actions"], [])
        n = self.mark()
        p = self.deploy(cfg, "8001")
        self.assertRegex(p.stdout, r"8001\s+docker-host-1\s+pve1\s+\S+\s+unchanged")
        self.assertEqual(changing(self.sim.requests()[n:]), [])

        # destroy
        plan = self.dry_plan(cfg, "--destroy", "8001")
        self.assertEqual([a["action"] + a["summary"].split()[0] for a in plan["actions"]],
                         [">stop", "-destroy", "-delete"])
        n = self.mark()
        self.run_bin("--config", cfg, "--destroy", "8001", check=0)
        self.assert_sent_as_planned(plan, n)
        self.assertEqual(sorted(self.state()["vms"]), ["9000"])

    def test_prune_sends_what_was_planned(self):
        # three versions of series 'tpl' as --provision-template leaves them
        for vmid, day in ((9100, "20261130"), (9101, "20261201"), (9102, "20261202")):
            self.seed_template(vmid=vmid, name="tpl-%s-001" % day, tags="phoenix;phx-tpl")
        tpl = {"name": "tpl", "os": "debian-12", "image_url": "https://example.org/x.img",
               "sha256": "0" * 64, "hardware": {"cores": 1, "memory_mb": 512},
               "versions": {"vmid_min": 9100, "vmid_max": 9109, "keep": 1}}
        cfg = self.write_config({"proxmox": self.proxmox_section(),
                                 "defaults": {"storage": "local", "import_storage": "local",
                                              "iso_storage": "local"},
                                 "templates": [tpl],
                                 "features": self.features(),
                                 "vms": [self.vm_8001(clone_from_vmid=9100)]})
        plan = self.dry_plan(cfg, "--prune")
        self.assertEqual([a["path"] for a in plan["actions"]], ["/nodes/pve1/qemu/9101"])
        self.assertEqual(plan["notes"], [{"object": "tpl", "text": "kept 9100 'tpl-20261130-001':"
                                          " a VM in the config clones it (clone_from_vmid)"}])
        text = self.run_bin("--config", cfg, "--prune", "--dry-run", check=0).stdout
        self.assertIn("tpl:\n  - remove version 9101 'tpl-20261201-001'\n", text)
        self.assertIn("tpl: = kept 9100 'tpl-20261130-001'", text)
        self.assertEqual(sorted(self.state()["vms"]), ["9100", "9101", "9102"])
        n = self.mark()
        p = self.run_bin("--config", cfg, "--prune", check=0)
        self.assertIn("tpl: removed 9101 'tpl-20261201-001'", p.stdout)
        self.assert_sent_as_planned(plan, n)
        self.assertEqual(sorted(self.state()["vms"]), ["9100", "9102"])


class TestPrunePerNode(PlanBase):
    """Each node keeps its own newest versions: a series built on two nodes is pruned per
    node, not across them."""
    sim_opts = dict(PlanBase.sim_opts, nodes="pve1,pve2")

    def version(self, node, vmid, day):
        self.api_ok("POST", "/nodes/%s/qemu" % node,
                    {"vmid": str(vmid), "name": "tpl-%s-001" % day, "scsi0": "local:1",
                     "tags": "phoenix;phx-tpl"})
        self.api_ok("POST", "/nodes/%s/qemu/%d/template" % (node, vmid))

    def test_keep_applies_per_node(self):
        self.version("pve1", 9100, "20261130")
        self.version("pve1", 9101, "20261201")
        self.version("pve2", 9102, "20261130")
        self.version("pve2", 9103, "20261201")
        tpl = {"name": "tpl", "os": "debian-12", "image_url": "https://example.org/x.img",
               "sha256": "0" * 64, "hardware": {"cores": 1, "memory_mb": 512},
               "versions": {"vmid_min": 9100, "vmid_max": 9109, "keep": 1}}
        cfg = self.write_config({"proxmox": self.proxmox_section(),
                                 "defaults": {"storage": "local"}, "templates": [tpl],
                                 "vms": []})
        plan = self.dry_plan(cfg, "--prune")
        self.assertEqual([a["path"] for a in plan["actions"]],
                         ["/nodes/pve1/qemu/9100", "/nodes/pve2/qemu/9102"])
        n = self.mark()
        self.run_bin("--config", cfg, "--prune", check=0)
        self.assert_sent_as_planned(plan, n)
        self.assertEqual(sorted(self.state()["vms"]), ["9101", "9103"])


if __name__ == "__main__":
    unittest.main()
