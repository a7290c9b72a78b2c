"""The boot proof, in CI: real guests under qemu (TCG here) behind the simulator's qemu mode.

- test_demo_end_to_end runs `scripts/demo.sh` (what `make demo` runs): a template built from
  the test image with --validate, VMs 8001 and 8002 deployed from it, proof through the
  agent that cloud-init created the user and ran the feature script in each guest, then
  `--capture 8002` into a series, its identity reset checked on the new template's disk.
  8002 is the UEFI/q35 boot test (#17): `bios: ovmf` (efidisk0), `machine: q35` and two NICs
  from `networks`, its seed on the bus q35 guests read, both NICs as configured.
- test_validate_fails_clearly_without_an_agent builds a template on purpose WITHOUT the
  guest agent and expects --validate to fail with a clear message in bounded time, leaving
  the template untagged and no test VM behind.

Slow (a few minutes of TCG boots). PHX_SKIP_BOOT_TEST=1 skips them with a reason.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import phxtest
from phxtest import BIN, BUILD, REPO, OrchestratorTest
from test_provision import FileServer


def boot_skip_reason():
    if os.environ.get("PHX_SKIP_BOOT_TEST"):
        return "PHX_SKIP_BOOT_TEST is set"
    if not shutil.which("qemu-system-x86_64"):
        return "qemu-system-x86_64 is not installed"
    return None


def full_image():
    p = subprocess.run([os.path.join(REPO, "scripts", "build-test-image.sh")],
                       capture_output=True, text=True, timeout=1800)
    if p.returncode:
        raise unittest.SkipTest("cannot build the full test image: " + p.stderr[-1500:])
    return p.stdout.strip()


class DemoTest(unittest.TestCase):
    def test_demo_end_to_end(self):
        why = boot_skip_reason()
        if why:
            self.skipTest(why)
        full_image()
        work = tempfile.mkdtemp(prefix="phx-demo-")
        self.addCleanup(shutil.rmtree, work, True)
        env = dict(os.environ, DEMO_DIR=os.path.join(work, "demo"), PHX_BIN=BIN,
                   DEMO_LOG=phxtest.sim_log_path(self.id()))
        p = subprocess.run([os.path.join(REPO, "scripts", "demo.sh")], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=2400)
        self.assertEqual(p.returncode, 0, "demo failed:\n%s\n%s" % (p.stdout[-6000:],
                                                                   p.stderr[-4000:]))
        out = p.stdout
        self.assertIn("validated", out)
        # --capture of VM 8002, its identity reset checked on the template's disk
        self.assertRegex(out, r"captured VM 8002 'demo-2' as template 91\d\d "
                              r"'debian-golden-\d{8}-001'")
        self.assertRegex(out, r"template 91\d\d: machine-id empty, no SSH host keys, no "
                              r"cloud-init instance, no shell history")
        # the build is said before its validation, and the run ends with its verdict
        built = out.index("template 9000 'debian-demo' built; validating it")
        self.assertLess(built, out.index("template 9000 validated: booted"))
        self.assertRegex(out.rstrip("\n").splitlines()[-1],
                         r"^demo: PASSED in \d+ s: template 9000 built and validated, VMs "
                         r"8001 and 8002 deployed, cloud-init and the feature checked in each "
                         r"guest, VM 8002 captured as template 91\d\d with its identity reset$")
        for vmid in ("8001", "8002"):
            self.assertRegex(out, r"VM %s: cloud-init done; user: uid=\d+\(demo\)" % vmid)
            self.assertRegex(out, r"VM %s: .*feature: .+" % vmid)
            self.assertNotIn("FAILED: ", out)
        # 8001 as the template: i440fx, SeaBIOS, one NIC by DHCP from its user-mode network
        # (pve-sim qemu_hv.guest_net); 8002 q35 + OVMF booted by UEFI, the seed on scsi30 (q35's
        # IDE is AHCI, which the image's kernel lacks), net0 by DHCP and net1 at its static
        # address, each found by its MAC
        mac = r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"
        self.assertRegex(out, r"(?m)^  VM 8001: .*; firmware: bios; nics: net0 %s="
                              r"10\.250\.8\.15/24$" % mac)
        self.assertRegex(out, r"(?m)^  VM 8002: .*; firmware: uefi; nics: net0 %s="
                              r"10\.250\.16\.15/24, net1 %s=10\.250\.17\.50/24$" % (mac, mac))
        self.assertRegex(out, r"VM 8002 \(demo-2\): running, q35/ovmf,")
        with open(env["DEMO_LOG"], encoding="utf-8") as f:
            reqs = [json.loads(line) for line in f]
        self.assertEqual([r for r in reqs if r.get("violations")], [])
        seeds = [r for r in reqs if r["method"] == "POST"
                 and r["path"].endswith("/qemu/8002/config") and "scsi30" in r.get("params", {})]
        self.assertTrue(seeds, "8002's seed was not attached on scsi30")
        self.assertTrue(any(r["path"].endswith("/agent/exec") for r in reqs))
        left = subprocess.run(["pgrep", "-f", env["DEMO_DIR"]], capture_output=True, text=True)
        self.assertEqual(left.stdout, "", "demo left processes behind")


class ValidateWithoutAgentTest(OrchestratorTest):
    """A real boot of a template that has no guest agent."""

    @classmethod
    def setUpClass(cls):
        why = boot_skip_reason()
        if why:
            raise unittest.SkipTest(why)
        image = full_image()
        cls.imgdir = os.path.dirname(image)
        cls.cls_tmp = tempfile.mkdtemp(prefix="phx-noagent-")
        srv = os.path.join(cls.cls_tmp, "srv")
        os.makedirs(srv)
        shutil.copyfile(image, os.path.join(srv, "cloud.img"))
        subprocess.run("sha256sum --binary cloud.img > SHA256SUMS", shell=True, cwd=srv,
                       check=True)
        cls.fs = FileServer(srv, os.path.join(cls.cls_tmp, "files.jsonl"))
        cls.sim_opts = {"qemu": True, "qemu_kernel": os.path.join(cls.imgdir, "vmlinuz"),
                        "qemu_initrd": os.path.join(cls.imgdir, "initrd.img"),
                        "task_duration": 0.05}

    @classmethod
    def tearDownClass(cls):
        cls.fs.stop()
        shutil.rmtree(cls.cls_tmp, True)

    def test_validate_fails_clearly_without_an_agent(self):
        cfg = self.write_config({
            "proxmox": self.proxmox_section(),
            "defaults": {"storage": "local", "agent_timeout_s": 45},
            "templates": [{
                "name": "no-agent", "vmid": 9000, "image_url": self.fs.url + "/cloud.img",
                "checksum_url": self.fs.url + "/SHA256SUMS",
                "customize": {"packages": []},  # deliberately no qemu-guest-agent
                "hardware": {"cores": 1, "memory_mb": 1024}}],
            "vms": [],
        })
        env = self.env(XDG_CACHE_HOME=os.path.join(self.cls_tmp, "cache"))
        t0 = time.monotonic()
        p = self.run_bin("--config", cfg, "--provision-template", "--validate", env=env,
                         check=1, timeout=900)
        took = time.monotonic() - t0
        self.assertIn("validate template 9000", p.stderr)
        self.assertIn("did not answer within 45 s", p.stderr)
        self.assertIn("is qemu-guest-agent installed", p.stderr)
        self.assertLess(took, 600, "validation must fail in bounded time, not hang")
        st = self.sim.control("GET", "/_sim/state")
        self.assertEqual(sorted(st["vms"]), ["9000"], "the test VM must be removed")
        self.assertNotIn("validated", st["vms"]["9000"]["conf"]["tags"])
        self.assertEqual([v["volid"] for v in st["volumes"] if v["content"] == "iso"], [])
        left = subprocess.run(["pgrep", "-f", "qemu-system.*" + self.sim.state_dir],
                              capture_output=True, text=True)
        self.assertEqual(left.stdout, "", "a qemu guest was left running")


if __name__ == "__main__":
    unittest.main()
