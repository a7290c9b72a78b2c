"""The boot proof, in CI: real guests under qemu (TCG here) behind the simulator's qemu mode.

- test_demo_end_to_end runs `scripts/demo.sh` (what `make demo` runs): a template built from
  the test image with --validate, VMs 8001 and 8002 deployed from it, proof through the
  agent that cloud-init created the user and ran the feature script in each guest, then
  `--capture 8002` into a series, its identity reset checked on the new template's disk.
  8002 is the UEFI/q35 boot test (#17): `bios: ovmf` (efidisk0), `machine: q35` and two NICs
  from `networks`, its seed on the bus q35 guests read, both NICs as configured.

A template without the agent is not booted here: its bounded, clean --validate failure is
proved on the fake hypervisor (test_provision.ProvisionTest.test_validate_tags_only_when_the_
guest_answers), and that the rollback stops a real guest is proved by the demo itself (the
validation VM is removed while it runs; the test checks no qemu is left).

Slow (a few minutes of TCG boots). PHX_SKIP_BOOT_TEST=1 skips them with a reason.
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import phxtest
from phxtest import BIN, BUILD, REPO


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


if __name__ == "__main__":
    unittest.main()
