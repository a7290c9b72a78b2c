"""The main flows on the storages operators run and on two Proxmox releases.

For each (storage type, PVE release) a simulator with that storage (tests/pve-sim/README.md,
"Storages") builds the tiny test image into a template on it, then deploys a VM from the
template. The resulting volume names and formats are checked against what pve-storage's
plugins produce (ps `<X>Plugin.pm`: `alloc_image`, `create_base`, `clone_image`), every
request against the official schema (phxtest), and on thick LVM, which cannot hold base
volumes, the VM becomes a full clone and says so.

One download and one customization serve every combination: the module shares the image
cache. The hypervisor is the fake one; tests/integration/test_demo.py boots real guests.
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import test_provision
from test_deploy import Guests
from phxtest import OrchestratorTest

# the type's own keys, as a storage.cfg section carries them
STORAGES = {
    "dir": {"type": "dir", "path": "/srv/store", "content": "images"},
    "lvmthin": {"type": "lvmthin", "vgname": "pve", "thinpool": "data"},
    "lvm": {"type": "lvm", "vgname": "vg0"},
    "zfspool": {"type": "zfspool", "pool": "rpool/data"},
    "rbd": {"type": "rbd", "pool": "rbd"},
}
# volume ids (after 'store:') of the template's disk and of a clone of it
VOLIDS = {
    "dir": (r"9000/base-9000-disk-0\.qcow2", r"9000/base-9000-disk-0\.qcow2/8001/vm-8001-disk-0\.qcow2"),
    "lvmthin": (r"base-9000-disk-0", r"vm-8001-disk-0"),
    # no base volumes on thick LVM: the disk stays, and the VM is a full copy
    "lvm": (r"vm-9000-disk-0", r"vm-8001-disk-0"),
    "zfspool": (r"base-9000-disk-0", r"base-9000-disk-0/vm-8001-disk-0"),
    "rbd": (r"base-9000-disk-0", r"base-9000-disk-0/vm-8001-disk-0"),
}
COMBOS = [("dir", "9.1"), ("lvmthin", "9.1"), ("lvm", "9.1"), ("zfspool", "9.1"),
          ("rbd", "9.1"), ("lvmthin", "8.4")]

SHARED = {}


def setUpModule():
    image, why = test_provision.build_tiny_image()
    if not image:
        raise unittest.SkipTest("cannot build the test image: " + (why or ""))
    tmp = tempfile.mkdtemp(prefix="phx-matrix-")
    srv = os.path.join(tmp, "srv")
    os.makedirs(srv)
    shutil.copyfile(image, os.path.join(srv, "tiny.img"))
    subprocess.run("sha256sum --binary tiny.img > SHA256SUMS", shell=True, cwd=srv, check=True)
    SHARED.update(tmp=tmp, image=image, cache=os.path.join(tmp, "cache"),
                  fs=test_provision.FileServer(srv, os.path.join(tmp, "files.jsonl")),
                  debs=sorted(os.path.join(os.path.dirname(image), "debs", d)
                              for d in os.listdir(os.path.join(os.path.dirname(image),
                                                               "debs"))))


def tearDownModule():
    if "fs" in SHARED:
        SHARED["fs"].stop()
        shutil.rmtree(SHARED["tmp"], True)


class MatrixBase(OrchestratorTest):
    storage_type = None
    pve_version = None

    def env(self, **extra):
        env = super().env(**extra)
        env["XDG_CACHE_HOME"] = SHARED["cache"]
        return env

    def write_cfg(self, vms):
        url = SHARED["fs"].url
        return self.write_config({
            "proxmox": self.proxmox_section(),
            "defaults": {"storage": "store", "import_storage": "local", "iso_storage": "local",
                         "bridge": "vmbr0", "agent_timeout_s": 20},
            "templates": [{
                "name": "debian-tiny", "vmid": 9000, "os": "debian-12",
                "image_url": url + "/tiny.img", "checksum_url": url + "/SHA256SUMS",
                "customize": {"packages": [], "debs": SHARED["debs"],
                              "enable_services": ["qemu-guest-agent"]},
                "hardware": {"cores": 1, "memory_mb": 512, "disk_size_gb": 3,
                             "storage": "store"},
            }],
            "vms": vms,
        })

    def run_matrix(self):
        cfg = self.write_cfg([])
        self.run_bin("--config", cfg, "--provision-template", check=0)
        state = self.sim.control("GET", "/_sim/state")
        tpl = state["vms"]["9000"]["conf"]
        want_tpl, want_clone = VOLIDS[self.storage_type]
        self.assertEqual(tpl.get("template"), 1)
        self.assertRegex(tpl["scsi0"].split(",")[0], "^store:%s$" % want_tpl)
        self.assertIn("size=3G", tpl["scsi0"])
        vols = {v["volid"]: v for v in state["volumes"]}
        fmt = vols[tpl["scsi0"].split(",")[0]]["format"]
        self.assertEqual(fmt, "qcow2" if self.storage_type == "dir" else "raw")
        # the import volume is gone; its name carries the image's real format
        self.assertEqual([v for v in vols if ":import/" in v], [])
        uploads = [r for r in self.sim.requests() if r["path"].endswith("/upload")]
        self.assertTrue(uploads[0]["params"]["filename"].endswith(".qcow2"))

        vm = {"vmid": 8001, "name": "web-1", "clone_from_vmid": 9000, "cores": 2,
              "disk_size_gb": 4, "network_config": {"ip": "192.168.1.51/24",
                                                    "gw": "192.168.1.1"},
              "user_config": {"username": "admin", "ssh_public_key":
                              "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII6mc6QOQi0UOtRFYciPo/"
                              "eRKln65glY3ngz+TL0FnI4 admin@example"}}
        cfg = self.write_cfg([vm])
        with Guests(self.sim):
            p = self.run_bin("--config", cfg, "8001", check=0)
        self.assertRegex(p.stdout, r"8001\s+web-1\s+pve1\s+\S+\s+created")
        conf = self.sim.control("GET", "/_sim/state")["vms"]["8001"]["conf"]
        self.assertRegex(conf["scsi0"].split(",")[0], "^store:%s$" % want_clone)
        self.assertIn("size=4G", conf["scsi0"])
        self.assertRegex(conf["ide2"], r"^local:iso/phoenix-ci-8001-[0-9a-f]{12}\.iso,")
        clone = [r for r in self.sim.requests() if r["path"].endswith("/clone")][0]
        if self.storage_type == "lvm":
            self.assertEqual(clone["params"]["full"], "1")
            self.assertEqual(clone["params"]["storage"], "store")
            self.assertIn("full clone to 'store'", p.stderr)
        else:
            self.assertEqual(clone["params"]["full"], "0")
            self.assertNotIn("storage", clone["params"])
        # a rerun of both converges: nothing changes
        n = len(self.sim.requests())
        self.run_bin("--config", cfg, "--provision-template", check=0)
        with Guests(self.sim):
            p = self.run_bin("--config", cfg, "8001", check=0)
        self.assertRegex(p.stdout, r"8001\s+web-1\s+pve1\s+\S+\s+unchanged")
        self.assertEqual([r["path"] for r in test_provision.changing(self.sim.requests()[n:])
                          if "/agent/" not in r["path"]], [])


for _storage, _version in COMBOS:
    _name = "Matrix_%s_pve%s" % (_storage, _version.replace(".", ""))
    globals()[_name] = type(_name, (MatrixBase,), {
        "storage_type": _storage,
        "pve_version": _version,
        "sim_opts": {"pve_version": _version, "storage_config": [
            {"storage": "local", "type": "dir", "content": "images,import,iso,snippets,vztmpl"},
            dict(STORAGES[_storage], storage="store")]},
        "test_provision_then_deploy": lambda self: self.run_matrix(),
    })

if __name__ == "__main__":
    unittest.main()


class RawImageTest(MatrixBase):
    """An import upload is named by its real format: pve-storage probes an import volume as
    the format its extension says (API2/Storage/Status.pm upload, Plugin.pm file-format
    checks), so a raw image named .qcow2 fails the import. The customized image cache is
    turned into a raw image to get a raw build without another appliance run."""
    storage_type = "dir"
    sim_opts = {"storage_config": [
        {"storage": "local", "type": "dir", "content": "images,import,iso,snippets,vztmpl"},
        dict(STORAGES["dir"], storage="store")]}

    def test_a_raw_image_is_uploaded_as_raw(self):
        self.run_bin("--config", self.write_cfg([]), "--provision-template", check=0)
        cache = os.path.join(self.tmp, "cache-raw")
        shutil.copytree(SHARED["cache"], cache)
        done = subprocess.run(["find", cache, "-name", "customized-*.qcow2"],
                              capture_output=True, text=True, check=True).stdout.split()
        self.assertEqual(len(done), 1, done)
        subprocess.run(["qemu-img", "convert", "-O", "raw", done[0], done[0] + ".tmp"],
                       check=True)
        os.replace(done[0] + ".tmp", done[0])
        with open(self.write_cfg([]), encoding="utf-8") as f:
            cfg = json.load(f)
        cfg["templates"][0].update(name="debian-raw", vmid=9001)
        n = len(self.sim.requests())
        p = self.run_bin("--config", self.write_config(cfg), "--provision-template",
                         env=dict(self.env(), XDG_CACHE_HOME=cache), check=0)
        self.assertIn("reusing the customized image", p.stderr)
        up = [r for r in self.sim.requests()[n:] if r["path"].endswith("/upload")]
        self.assertRegex(up[0]["params"]["filename"],
                         r"^phoenix-debian-raw-[0-9a-f]{12}-[0-9a-f]{8}-pve1\.raw$")
        conf = self.sim.control("GET", "/_sim/state")["vms"]["9001"]["conf"]
        self.assertEqual(conf.get("template"), 1)
