"""`orchestrator VMID...` for the `containers` array (issue #21) against the simulator.

Each test seeds a container template the way a container provision leaves it (a vztmpl archive
uploaded, a container created from it with the tag `phoenix`, the archive named on an
`archive:` line of its description, converted to a template) through the simulator's API,
then runs the real binary: the clone path (linked on lvmthin), the create-from-archive path
(root's SSH key and password hash are only accepted at creation), convergence, --destroy, an
injected fault rolled back, --jobs 2 with two clones of one template. The simulator makes the
`interfaces` answer from the config (a DHCP NIC gets 10.x.y.15)."""
import http.client
import json
import os
import ssl
import sys

import phxtest

sys.path.insert(0, os.path.join(phxtest.REPO, "tests", "pve-sim"))
from test_lxc import rootfs_tarball  # noqa: E402  (a small valid rootfs, a fraction of a second)

STORAGES = [
    {"storage": "local", "type": "dir", "content": "iso,vztmpl,import,images"},
    {"storage": "local-lvm", "type": "lvmthin", "vgname": "pve", "thinpool": "data"},
    {"storage": "files", "type": "dir", "path": "/srv/files", "content": "rootdir,images"},
]
ARCHIVE = "local:vztmpl/debian-12-golden.tar.gz"
TPL = 9100
HASH = ("$6$Zk3vYq1pQ2wErT6u$IyetMTCzdHkjbsR9dCeS7IDRy6Wsi.qce9HICTZjmn1EWAShiibwc0fAu7nPQ"
        "NEHutqs6KQK0SWFhH/UAiuQS.")
KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII6mc6QOQi0UOtRFYciPo/eRKln65glY3ngz+TL0FnI4 "
       "admin@example")


class ContainerBase(phxtest.OrchestratorTest):
    sim_opts = {"task_duration": 0.02, "storage_config": STORAGES}

    def setUp(self):
        super().setUp()
        self.upload("local", ARCHIVE.split("/")[-1], rootfs_tarball())
        self.make_template(TPL, "local-lvm")

    def ok(self, method, path, params=None):
        st, _, b = self.sim.api(method, path, params)
        self.assertEqual(st, 200, b)
        return b["data"]

    def upload(self, storage, name, data):
        b = "bnd-ct"
        body = ("--%s\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\nvztmpl\r\n"
                "--%s\r\nContent-Disposition: form-data; name=\"filename\"; filename=\"%s\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n" % (b, b, name)).encode() + \
            data + ("\r\n--%s--\r\n" % b).encode()
        host, port = self.sim.url.split("//")[1].split(":")
        ctx = ssl.create_default_context(cafile=self.sim.cert_path)
        ctx.check_hostname = False
        c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
        c.request("POST", "/api2/json/nodes/pve1/storage/%s/upload" % storage, body=body,
                  headers={"Authorization": self.sim.auth_header,
                           "Content-Type": "multipart/form-data; boundary=" + b})
        r = c.getresponse()
        raw = json.loads(r.read())
        c.close()
        self.assertEqual(r.status, 200, raw)
        self.sim.wait_task(raw["data"])

    def make_template(self, vmid, storage):
        """What ctbuild's provision leaves: a container template whose record names its
        archive on an `archive:` line."""
        upid = self.ok("POST", "/nodes/pve1/lxc", {
            "vmid": vmid, "ostemplate": ARCHIVE, "hostname": "debian-golden",
            "rootfs": "%s:2" % storage, "memory": 512, "swap": 256, "cores": 1,
            "net0": "name=eth0,bridge=vmbr0,ip=dhcp", "tags": "phoenix",
            "unprivileged": 1, "features": "nesting=1",
            "description": "phoenix-orchestrator template\narchive: %s\n" % ARCHIVE})
        self.assertEqual(self.sim.wait_task(upid)["exitstatus"], "OK")
        self.assertIsNone(self.ok("POST", "/nodes/pve1/lxc/%d/template" % vmid))
        tasks = self.ok("GET", "/nodes/pve1/tasks", {"source": "all", "vmid": vmid,
                                                     "typefilter": "vztemplate"})
        self.sim.wait_task(tasks[0]["upid"])

    def config(self, containers, templates=None):
        cfg = {"proxmox": self.proxmox_section(),
               "defaults": {"storage": "local-lvm", "bridge": "vmbr0"},
               "containers": containers}
        if templates:
            cfg["templates"] = templates
        return self.write_config(cfg)

    def conf(self, vmid, **params):
        return self.ok("GET", "/nodes/pve1/lxc/%d/config" % vmid, params or None)

    def cts(self):
        st = self.sim.control("GET", "/_sim/state")
        return {int(k): v for k, v in st["vms"].items()}

    def sent(self, method, pattern):
        import re
        return [r for r in self.sim.requests() if r.get("method") == method and
                re.search(pattern, r.get("path", ""))]


WEB = {"vmid": 301, "name": "web-1", "clone_from_vmid": TPL, "cores": 2, "memory_mb": 1024,
       "swap_mb": 512, "rootfs_gb": 4, "networks": [{"ip": "dhcp"}],
       "dns_servers": ["1.1.1.1"], "onboot": True, "tags": ["web"]}


class TestContainers(ContainerBase):
    def test_clone_converge_noop_destroy(self):
        path = self.config([WEB])
        p = self.run_bin("--config", path, "--dry-run", "--output", "json", "301", check=0)
        plan = json.loads(p.stdout)
        self.assertEqual([a["summary"] for a in plan["actions"]],
                         ["linked clone of CT 9100", "configure", "grow rootfs to 4G", "start"])
        self.assertTrue(any("linked clone of CT 9100 (its rootfs is on a lvmthin storage)"
                            in n["text"] for n in plan["notes"]), plan["notes"])
        self.assertNotIn(301, self.cts(), "a dry run made nothing")

        p = self.run_bin("--config", path, "--output", "json", "301", check=0)
        res = json.loads(p.stdout)[0]
        self.assertEqual((res["type"], res["state"]), ("lxc", "created"), res)
        self.assertRegex(res["ip"], r"^10\.\d+\.\d+\.15$")
        c = self.conf(301)
        self.assertEqual((c["hostname"], c["cores"], c["memory"], c["swap"], c["onboot"]),
                         ("web-1", 2, 1024, 512, 1))
        self.assertEqual(c["nameserver"], "1.1.1.1")
        self.assertIn("phoenix", c["tags"])
        self.assertIn("web", c["tags"])
        self.assertIn("size=4G", c["rootfs"])
        clone = self.sent("POST", r"/lxc/9100/clone$")[0]["params"]
        self.assertNotIn("full", clone)  # linked: lvmthin clones the base volume
        self.assertEqual(self.cts()[301]["status"], "running")

        # rerun unchanged: a no-op (no change request at all)
        before = len(self.sim.requests())
        p = self.run_bin("--config", path, "--output", "json", "301", check=0)
        self.assertEqual(json.loads(p.stdout)[0]["state"], "unchanged")
        changing = [r for r in self.sim.requests()[before:]
                    if r.get("method") in ("POST", "PUT", "DELETE") and not r.get("control")]
        self.assertEqual(changing, [])

        # a changed value is applied, the unchanged ones untouched; nameserver stays pending
        # on the running container and the run says so
        path = self.config([dict(WEB, memory_mb=2048, dns_servers=["9.9.9.9"])])
        before = len(self.sim.requests())
        p = self.run_bin("--config", path, "--output", "json", "301", check=0)
        res = json.loads(p.stdout)[0]
        self.assertEqual(res["state"], "updated")
        self.assertIn("nameserver", res["note"])
        puts = [r for r in self.sim.requests()[before:] if r.get("method") == "PUT"]
        self.assertEqual(len(puts), 1, puts)
        # the description's record names the entry's identity, which follows any key (as VMs')
        sent = {k for k in puts[0]["params"] if k not in ("node", "vmid", "description")}
        self.assertEqual(sent, {"memory", "nameserver"})
        self.assertEqual(self.conf(301, current=1)["memory"], 2048)
        # the pending nameserver counts as set: the next rerun is a no-op
        p = self.run_bin("--config", path, "--output", "json", "301", check=0)
        self.assertEqual(json.loads(p.stdout)[0]["state"], "unchanged")

        # a smaller rootfs is not a shrink
        path = self.config([dict(WEB, memory_mb=2048, dns_servers=["9.9.9.9"], rootfs_gb=3)])
        p = self.run_bin("--config", path, "--dry-run", "301", check=0)
        self.assertIn("volumes only grow", p.stderr + p.stdout)

        p = self.run_bin("--config", path, "--destroy", "301", check=0)
        self.assertNotIn(301, self.cts())
        self.assertIn(TPL, self.cts())

    def test_create_from_archive_with_key_and_password(self):
        ct = {"vmid": 302, "name": "dev-1", "clone_from_vmid": TPL, "ssh_public_keys": [KEY],
              "password_hash": HASH, "rootfs_gb": 3, "features": {"nesting": True},
              "network_config": {"ip": "10.20.0.5/24", "gw": "10.20.0.1"}}
        path = self.config([ct])
        p = self.run_bin("--config", path, "--check", "--output", "json", check=0)
        self.assertEqual(json.loads(p.stdout)["containers"][0]["creation"],
                         "create from archive")
        self.assertNotIn(HASH, p.stdout)
        p = self.run_bin("--config", path, "--dry-run", "302", check=0)
        self.assertIn("created from the template's archive '%s'" % ARCHIVE, p.stdout + p.stderr)
        self.assertNotIn(HASH, p.stdout + p.stderr)
        p = self.run_bin("--config", path, "--output", "json", "302", check=0)
        res = json.loads(p.stdout)[0]
        self.assertEqual((res["state"], res["ip"]), ("created", "10.20.0.5"))
        create = self.sent("POST", r"^/api2/json/nodes/pve1/lxc$")
        create = [r for r in create if str(r["params"].get("vmid")) == "302"][0]["params"]
        self.assertEqual(create["ostemplate"], ARCHIVE)
        self.assertEqual(create["ssh-public-keys"], KEY)
        self.assertEqual(create["rootfs"], "local-lvm:3")
        self.assertEqual(create["unprivileged"], "1")
        self.assertNotIn("password", create, "the simulator's log never holds a password")
        c = self.conf(302)
        self.assertIn("ip=10.20.0.5/24", c["net0"])
        self.assertIn("gw=10.20.0.1", c["net0"])
        tpl_mac = self.conf(TPL)["net0"].split("hwaddr=")[1].split(",")[0]
        self.assertNotIn(tpl_mac, c["net0"], "a container made from the archive gets its own MAC")
        self.assertEqual(c["features"], "nesting=1")
        p = self.run_bin("--config", path, "--output", "json", "302", check=0)
        self.assertEqual(json.loads(p.stdout)[0]["state"], "unchanged")

    def test_full_clone_on_file_storage_template(self):
        self.make_template(9101, "files")
        path = self.config([dict(WEB, vmid=303, name="web-3", clone_from_vmid=9101,
                                 storage="local-lvm")])
        p = self.run_bin("--config", path, "--output", "json", "303", check=0)
        self.assertEqual(json.loads(p.stdout)[0]["state"], "created")
        clone = self.sent("POST", r"/lxc/9101/clone$")[0]["params"]
        self.assertEqual((clone["full"], clone["storage"]), ("1", "local-lvm"))

    def test_fault_rolls_back(self):
        path = self.config([WEB])
        self.sim.control("POST", "/_sim/fault", {"kind": "http", "method": "PUT",
                                                  "path": "/lxc/301/resize", "status": 500,
                                                  "message": "injected"})
        p = self.run_bin("--config", path, "--output", "json", "301", check=1)
        res = json.loads(p.stdout)[0]
        self.assertEqual(res["state"], "failed")
        self.assertIn("injected", res["error"])
        self.assertTrue(any("container 301" in x for x in res["rollback"]), res)
        self.assertNotIn(301, self.cts(), "nothing left")
        vols = self.sim.control("GET", "/_sim/state")["volumes"]
        # by owner and name: a ctime can contain "301" (1796240301 failed a run)
        self.assertFalse([v for v in vols if v.get("vmid") == 301 or "-301-" in v["volid"]],
                         vols)

    def test_lost_clone_answer_is_followed_to_its_task(self):
        path = self.config([WEB])
        self.sim.control("POST", "/_sim/fault", {"kind": "http", "method": "POST",
                                                  "path": "/lxc/9100/clone",
                                                  "action": "close-after"})
        p = self.run_bin("--config", path, "--output", "json", "301", check=0)
        self.assertEqual(json.loads(p.stdout)[0]["state"], "created")
        self.assertEqual(len(self.sent("POST", r"/lxc/9100/clone$")), 1, "never sent twice")

    def test_jobs_two_clones_of_one_template(self):
        # the second names the template by its config entry (a fixed VMID here)
        web4 = dict(WEB, vmid=304, name="web-4", clone_from_template="debian-golden")
        del web4["clone_from_vmid"]
        path = self.config([WEB, web4], templates=[{
            "name": "debian-golden", "kind": "lxc", "vmid": TPL, "sha256": "0" * 64,
            "image_url": "https://example.com/golden-root.tar.xz"}])
        p = self.run_bin("--config", path, "--jobs", "2", "--output", "json", "301", "304", check=0)
        self.assertEqual([r["state"] for r in json.loads(p.stdout)], ["created", "created"])
        self.assertEqual(len(self.sent("POST", r"/lxc/9100/clone$")), 2)
        self.assertFalse([r for r in self.sim.requests() if "locked" in str(r.get("error"))])

    def test_check_refuses_bad_containers(self):
        path = self.config([dict(WEB, vmid=305, password_hash="$y$j9T$abc$def",
                                 features={"keyctl": True}),
                            dict(WEB, vmid=305, name="web-1")])
        p = self.run_bin("--config", path, "--check", check=2)
        err = p.stderr
        self.assertIn("$.containers[0].password_hash", err)
        self.assertIn("$.containers[0].features", err)
        self.assertIn("$.containers[1].vmid: duplicate VMID 305", err)
        self.assertIn("$.containers[1].name: duplicate name 'web-1'", err)

    def test_list_and_remove_a_container_template(self):
        # --list-templates shows container templates with their kind
        path = self.config([WEB])
        listed = json.loads(self.run_bin("--config", path, "--list-templates", "--output",
                                         "json", check=0).stdout)
        self.assertEqual([(x["vmid"], x["kind"]) for x in listed], [(TPL, "lxc")])
        text = self.run_bin("--config", path, "--list-templates", check=0).stdout.splitlines()
        self.assertEqual(text[0].split()[-1], "KIND")
        self.assertEqual(text[1].split()[-1], "lxc")

        # a linked clone on lvmthin is a thin snapshot named vm-301-disk-0, which does not
        # hold its template (pve-storage LvmThinPlugin clone_image; vdisk_free's
        # volume_is_base_and_used sees no base in the name): the template may go, the
        # container stays
        self.run_bin("--config", path, "301", check=0)

        # the plan names the container and its archive; applying it removes both
        text = self.run_bin("--config", path, "--remove-template", str(TPL), "--dry-run",
                            check=0).stdout
        self.assertIn("remove container template %d on 'pve1'" % TPL, text)
        self.assertIn("delete the archive '%s' of template %d" % (ARCHIVE, TPL), text)
        self.run_bin("--config", path, "--remove-template", str(TPL), check=0)
        self.assertNotIn(TPL, self.cts())
        self.assertEqual(len(self.sent("DELETE", r"/lxc/%d$" % TPL)), 1)
        vols = [v["volid"] for v in self.sim.control("GET", "/_sim/state")["volumes"]]
        self.assertNotIn(ARCHIVE, vols)
        self.assertFalse([v for v in vols if "-%d-" % TPL in v], vols)
        self.assertIn("local-lvm:vm-301-disk-0", vols)
        self.assertEqual(self.cts()[301]["status"], "running")
        self.assertEqual(self.sim.schema_violations(), [])
