"""`orchestrator VMID... | --all` and `--destroy` against the Proxmox simulator (Flow 2).

Each test seeds a template the way Flow 1 leaves it (uploaded qcow2 imported with import-from,
net0, agent, a Proxmox cloud-init drive, tag `phoenix`, converted to a template) through the
simulator's API, then runs the real binary. A background thread plays the guest: once a VM
runs, it makes the simulator's fake agent answer with an interface carrying the VM's MAC.
"""
import hashlib
import json
import os
import re
import subprocess
import threading
import time
import unittest
import urllib.parse

import phxtest
import yaml  # python3-yaml (scripts/install-deps.sh)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
GiB = 1 << 30

HASH = ("$6$Zk3vYq1pQ2wErT6u$IyetMTCzdHkjbsR9dCeS7IDRy6Wsi.qce9HICTZjmn1EWAShiibwc0fAu7nPQ"
        "NEHutqs6KQK0SWFhH/UAiuQS.")
KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII6mc6QOQi0UOtRFYciPo/eRKln65glY3ngz+TL0FnI4 "
       "admin@example")


def qinfo(path):
    return json.loads(subprocess.check_output(
        ["qemu-img", "info", "--output=json", "-U", path]))


class Guests:
    """Makes the fake agent of every started VM answer, as a booted guest would. Follows the
    simulator's request log for `status/start` calls (cheaper than polling /_sim/state, which
    runs qemu-img on every disk), reads the VM's MAC through the API and tells the fake agent
    to answer. The guest reports a decoy docker0 first, so the tests see that the IP is picked
    by net0's MAC."""

    def __init__(self, sim, ips=None, enabled=True):
        self.sim = sim
        self.ips = ips or {}
        self.enabled = enabled
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.done = set()
        # only VMs started from now on: earlier runs' guests keep what they answered
        self.pos0 = os.path.getsize(sim.log_path) if os.path.exists(sim.log_path) else 0

    def ifaces(self, vmid, mac):
        ip = self.ips.get(vmid, "10.9.%d.%d" % (vmid // 250 % 250, vmid % 250 + 2))
        return [
            {"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [
                {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}]},
            {"name": "docker0", "hardware-address": "02:42:ac:11:00:01", "ip-addresses": [
                {"ip-address": "172.17.0.1", "ip-address-type": "ipv4", "prefix": 16}]},
            {"name": "eth0", "hardware-address": mac, "ip-addresses": [
                {"ip-address": "fe80::1", "ip-address-type": "ipv6", "prefix": 64},
                {"ip-address": ip, "ip-address-type": "ipv4", "prefix": 24}]},
        ]

    def boot(self, node, vmid):
        st, _, body = self.sim.api("GET", "/nodes/%s/qemu/%d/config" % (node, vmid))
        if st != 200:
            return
        mac = body["data"]["net0"].split(",")[0].split("=")[1].lower()
        self.sim.control("POST", "/_sim/agent/%d" % vmid,
                         {"up": True, "interfaces": self.ifaces(vmid, mac)})
        self.done.add(vmid)

    def run(self):
        pos = self.pos0
        while not self.stop.wait(0.02):
            if not self.enabled or not os.path.exists(self.sim.log_path):
                continue
            with open(self.sim.log_path, encoding="utf-8") as f:
                f.seek(pos)
                chunk = f.read()
            end = chunk.rfind("\n") + 1
            pos += len(chunk[:end].encode())
            for line in chunk[:end].splitlines():
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                m = START_RE.search(r.get("path", ""))
                if r.get("method") == "POST" and m and r.get("status") == 200:
                    try:
                        self.boot(m.group(1), int(m.group(2)))
                    except Exception:  # the simulator is shutting down
                        pass

    def __enter__(self):
        self.th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.th.join(5)


START_RE = re.compile(r"/nodes/([^/]+)/qemu/(\d+)/status/start$")


class DeployBase(phxtest.OrchestratorTest):
    sim_opts = {"task_duration": 0.05}

    # -- simulator seeding ---------------------------------------------------------------
    def api_ok(self, method, path, params=None):
        st, reason, body = self.sim.api(method, path, params)
        self.assertEqual(st, 200, "%s %s -> %s %s %s" % (method, path, st, reason, body))
        data = body["data"] if body else None
        if isinstance(data, str) and data.startswith("UPID:"):
            t = self.sim.wait_task(data)
            self.assertEqual(t["exitstatus"], "OK", t)
        return data

    def seed_template(self, vmid=9000, name="tpl", tags="phoenix", cloudinit=True, **extra):
        img = os.path.join(self.tmp, "x.qcow2")
        if not os.path.exists(img):
            subprocess.check_call(["qemu-img", "create", "-q", "-f", "qcow2", img, "1G"])
            with open(img, "rb") as f:
                sha = hashlib.sha256(f.read()).hexdigest()
            out = subprocess.run(
                ["curl", "-sS", "--cacert", self.sim.cert_path, "-H",
                 "Authorization: " + self.sim.auth_header,
                 "-F", "content=import", "-F", "checksum-algorithm=sha256",
                 "-F", "checksum=" + sha, "-F", "filename=@%s;filename=x.qcow2" % img,
                 self.sim.url + "/api2/json/nodes/pve1/storage/local/upload"],
                capture_output=True, text=True, check=True)
            self.sim.wait_task(json.loads(out.stdout)["data"])
        params = {"vmid": str(vmid), "name": name, "cores": "2", "memory": "2048",
                  "scsihw": "virtio-scsi-single",
                  "scsi0": "local:0,import-from=local:import/x.qcow2",
                  "net0": "virtio,bridge=vmbr0", "agent": "enabled=1", "tags": tags,
                  "boot": "order=scsi0"}
        if cloudinit:
            params["ide2"] = "local:cloudinit"
        params.update(extra)
        self.api_ok("POST", "/nodes/pve1/qemu", params)
        self.api_ok("POST", "/nodes/pve1/qemu/%d/template" % vmid)

    def state(self):
        s = self.sim.control("GET", "/_sim/state")
        return {"vms": s["vms"], "volumes": s["volumes"]}

    def conf(self, vmid):
        return self.sim.control("GET", "/_sim/state")["vms"][str(vmid)]["conf"]

    def disk_path(self, drive):
        parts = drive.split(",")[0].split(":", 1)[1].split("/")
        return os.path.join(self.sim.state_dir, "storage/local/images", parts[-2], parts[-1])

    def iso_files(self, volid):
        iso = os.path.join(self.sim.state_dir, "storage/local/iso", volid.split("/", 1)[1])
        out = os.path.join(self.tmp, "iso-" + os.path.basename(iso))
        subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", out],
                       check=True, capture_output=True)
        files = {}
        for fn in os.listdir(out):
            with open(os.path.join(out, fn), encoding="utf-8") as f:
                files[fn] = f.read()
        return files

    def isos(self):
        return sorted(v["volid"] for v in self.sim.control("GET", "/_sim/state")["volumes"]
                      if v["content"] == "iso")

    # -- config ----------------------------------------------------------------------------
    def vm_8001(self, **over):
        vm = {
            "vmid": 8001, "name": "docker-host-1", "clone_from_vmid": 9000,
            "cores": 4, "memory_mb": 8192, "disk_size_gb": 100,
            "network_config": {"ip": "192.168.1.51/24", "gw": "192.168.1.1"},
            "user_config": {"username": "admin", "password_hash": HASH,
                            "ssh_public_key": KEY},
            "features": ["docker"],
        }
        vm.update(over)
        return {k: v for k, v in vm.items() if v is not None}

    def config(self, vms, **defaults):
        d = {"storage": "local", "iso_storage": "local", "import_storage": "local",
             "bridge": "vmbr0", "dns_servers": ["1.1.1.1"], "agent_timeout_s": 20}
        d.update(defaults)
        return self.write_config({"proxmox": self.proxmox_section(), "defaults": d,
                                  "features": self.features(), "vms": vms})

    def features(self):
        return {"docker": {"script": os.path.join(REPO, "configs/features/docker.sh")}}

    def deploy(self, cfg, *args, check=0, guests=True, ips=None):
        with Guests(self.sim, ips=ips, enabled=guests):
            return self.run_bin("--config", cfg, *args, check=check)

    def mark(self):
        """Index into the request log after everything sent so far was logged (the simulator
        writes a line after answering, so a test's last request may still be on its way)."""
        self.sim.control("GET", "/_sim/faults")
        for _ in range(100):
            reqs = self.sim.requests()
            if reqs and reqs[-1].get("control") and reqs[-1]["path"].endswith("/_sim/faults"):
                return len(reqs)
            time.sleep(0.02)
        self.fail("the simulator did not log the marker request")

    def logged(self, method, pattern):
        import re
        return [r for r in self.sim.requests()
                if r.get("method") == method and re.search(pattern, r.get("path", ""))]


class TestDeploy(DeployBase):
    def test_seed_example_8001(self):
        self.seed_template()
        cfg = self.config([self.vm_8001()])
        p = self.deploy(cfg, "--output", "json", "8001", ips={8001: "192.168.1.51"})
        res = json.loads(p.stdout)
        self.assertEqual(res, [{"vmid": 8001, "name": "docker-host-1", "node": "pve1",
                                "ip": "192.168.1.51", "state": "created", "changed": True,
                                "error": None, "note": None}])
        conf = self.conf(8001)
        self.assertEqual(conf["cores"], 4)
        self.assertEqual(str(conf["memory"]), "8192")
        self.assertEqual(conf["name"], "docker-host-1")
        self.assertEqual(conf["tags"], "phoenix")
        self.assertRegex(conf["net0"], r"^virtio=BC:24:11:[0-9A-F:]{8},bridge=vmbr0$")
        self.assertIn("managed by phoenix-orchestrator", conf["description"])
        self.assertIn("size=100G", conf["scsi0"])
        # linked clone of the template's base volume, grown for real to 100 GiB
        info = qinfo(self.disk_path(conf["scsi0"]))
        self.assertEqual(info["virtual-size"], 100 * GiB)
        self.assertEqual(info["backing-filename"], "../9000/base-9000-disk-0.qcow2")
        # the seed replaced Proxmox's cloud-init drive
        self.assertRegex(conf["ide2"], r"^local:iso/phoenix-ci-8001-[0-9a-f]{12}\.iso,"
                                       r"media=cdrom$")
        self.assertFalse([k for k, v in conf.items() if "cloudinit" in str(v)])
        volid = conf["ide2"].split(",")[0]
        self.assertEqual(self.isos(), [volid])
        files = self.iso_files(volid)
        self.assertEqual(sorted(files), ["meta-data", "network-config", "user-data"])
        ud, nc, md = files["user-data"], files["network-config"], files["meta-data"]
        self.assertTrue(ud.startswith("#cloud-config\n"), ud)
        user_data = yaml.safe_load(ud)
        users = [u for u in user_data["users"] if isinstance(u, dict)]
        self.assertEqual([u["name"] for u in users], ["admin"])
        self.assertEqual(users[0]["passwd"], HASH)
        self.assertEqual(users[0]["ssh_authorized_keys"], [KEY])
        self.assertEqual(user_data["hostname"], "docker-host-1")
        with open(os.path.join(REPO, "configs/features/docker.sh"), encoding="utf-8") as f:
            script = f.read()
        scripts = [w["content"] for w in user_data.get("write_files", [])
                   if w["path"].endswith("/docker.sh")]
        self.assertEqual(scripts, [script])
        mac = conf["net0"].split(",")[0].split("=")[1].lower()
        self.assertEqual(yaml.safe_load(nc), {"version": 2, "ethernets": {"eth0": {
            "match": {"macaddress": mac}, "set-name": "eth0",
            "addresses": ["192.168.1.51/24"],
            "routes": [{"to": "0.0.0.0/0", "via": "192.168.1.1"}],
            "nameservers": {"addresses": ["1.1.1.1"]}}}})
        meta = yaml.safe_load(md)
        self.assertEqual(meta["local-hostname"], "docker-host-1")
        self.assertRegex(meta["instance-id"], r"^iid-[0-9a-f]{16}$")
        # the VM runs; the table shows the IP of the NIC with net0's MAC, not docker0's
        st = self.sim.control("GET", "/_sim/state")["vms"]["8001"]
        self.assertEqual(st["status"], "running")
        # the resize came after the clone task ended and was absolute
        resizes = self.logged("PUT", r"/qemu/8001/resize$")
        self.assertEqual([r["params"]["size"] for r in resizes], ["100G"])

        # rerun: converges without uploading or changing anything
        uploads = len(self.logged("POST", r"/upload$"))
        p = self.deploy(cfg, "8001")
        self.assertEqual(len(self.logged("POST", r"/upload$")), uploads)
        self.assertRegex(p.stdout, r"8001\s+docker-host-1\s+pve1\s+192\.168\.1\.51\s+unchanged")
        self.assertEqual(self.conf(8001)["ide2"], conf["ide2"])

        # the record names the VM's entry, not how the file was spelled or where it is: a
        # relative path, a copy elsewhere with other formatting are all unchanged
        desc = self.conf(8001)["description"]
        self.assertRegex(desc, r"\nconfig: sha256:[0-9a-f]{64}\n")
        other = os.path.join(self.tmp, "elsewhere")
        os.makedirs(other)
        with open(cfg, encoding="utf-8") as f:
            doc = json.load(f)
        doc["_comment"] = "copied"
        with open(os.path.join(other, "copy.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=7, sort_keys=True)
        for cwd, path in ((self.tmp, os.path.basename(cfg)),
                          (other, "../" + os.path.basename(cfg)), (other, "copy.json")):
            with Guests(self.sim):
                p = subprocess.run([phxtest.BIN, "--config", path, "--output", "json", "8001"],
                                   cwd=cwd, env=self.env(), capture_output=True, text=True,
                                   timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual([(r["state"], r["changed"]) for r in json.loads(p.stdout)],
                             [("unchanged", False)], path)
        self.assertEqual(self.conf(8001)["description"], desc)
        # a record written before config identities (the path as typed) is read, not
        # rewritten: still unchanged
        old = desc.replace(re.search(r"config: (\S+)", desc).group(1), "cfg3.json")
        self.api_ok("POST", "/nodes/pve1/qemu/8001/config", {"description": old})
        p = self.deploy(cfg, "--output", "json", "8001")
        self.assertEqual([(r["state"], r["changed"]) for r in json.loads(p.stdout)],
                         [("unchanged", False)])
        self.assertEqual(self.conf(8001)["description"], old)

    def test_converge_changes_cores_disk_and_seed(self):
        self.seed_template()
        cfg = self.config([self.vm_8001(features=[], disk_size_gb=2)])
        self.deploy(cfg, "8001")
        before = self.conf(8001)
        old_iso = before["ide2"].split(",")[0]
        cfg = self.config([self.vm_8001(features=[], disk_size_gb=3, cores=6,
                                        network_config={"ip": "192.168.1.52/24",
                                                        "gw": "192.168.1.1"})])
        p = self.deploy(cfg, "--output", "json", "8001")
        res = json.loads(p.stdout)[0]
        self.assertEqual(res["state"], "updated")
        self.assertTrue(res["changed"])
        self.assertIn("reboot", res["note"])
        after = self.conf(8001)
        self.assertEqual(after["cores"], 6)
        self.assertIn("size=3G", after["scsi0"])
        new_iso = after["ide2"].split(",")[0]
        self.assertNotEqual(new_iso, old_iso)
        self.assertEqual(self.isos(), [new_iso])  # the previous seed was deleted
        nc = yaml.safe_load(self.iso_files(new_iso)["network-config"])
        self.assertEqual(nc["ethernets"]["eth0"]["addresses"], ["192.168.1.52/24"])
        # never shrinks
        cfg = self.config([self.vm_8001(features=[], disk_size_gb=2, cores=6,
                                        network_config={"ip": "192.168.1.52/24",
                                                        "gw": "192.168.1.1"})])
        self.deploy(cfg, "8001")
        self.assertIn("size=3G", self.conf(8001)["scsi0"])

    def test_foreign_vm_refused_untouched(self):
        self.seed_template()
        self.api_ok("POST", "/nodes/pve1/qemu", {"vmid": "8001", "name": "someone-elses",
                                                  "net0": "virtio,bridge=vmbr0",
                                                  "tags": "prod"})
        before = self.state()
        n_req = self.mark()
        p = self.deploy(self.config([self.vm_8001()]), "8001", check=1)
        self.assertIn("VM 8001 already exists", p.stderr)
        self.assertIn("not ours", p.stderr)
        self.assertEqual(self.state(), before)
        muts = [r for r in self.sim.requests()[n_req:]
                if r["method"] != "GET" and not r.get("control")]
        self.assertEqual(muts, [])

    def test_bad_input_exits_2_before_any_request(self):
        self.seed_template()
        n_req = self.mark()
        p = self.deploy(self.config([self.vm_8001()]), "8001", "123", check=2)
        self.assertIn("VMID 123 is not in %s ($.vms)" % os.path.join(self.tmp,
                                                                     "phoenix_vm_configs.json"),
                      p.stderr)
        bad = self.vm_8001(user_config={"username": "admin", "ssh_public_key": KEY})
        bad["features"] = ["nosuch"]
        p = self.deploy(self.config([bad]), "8001", check=2)
        self.assertIn("nosuch", p.stderr)
        p = self.deploy(self.config([self.vm_8001()], cloudinit_mode="native"), "8001",
                        check=2)
        self.assertIn("features and packages need cloudinit_mode 'iso'", p.stderr)
        api = [r for r in self.sim.requests()[n_req:] if not r.get("control")]
        self.assertEqual(api, [])

    def test_template_must_exist_and_be_a_template(self):
        self.seed_template()
        p = self.deploy(self.config([self.vm_8001(clone_from_vmid=9001)]), "8001", check=1)
        self.assertIn("source template 9001", p.stderr)
        self.assertIn("does not exist", p.stderr)
        self.api_ok("POST", "/nodes/pve1/qemu", {"vmid": "9002", "name": "plain",
                                                  "net0": "virtio,bridge=vmbr0"})
        p = self.deploy(self.config([self.vm_8001(clone_from_vmid=9002)]), "8001", check=1)
        self.assertIn("is not a template", p.stderr)
        self.assertNotIn("8001", self.sim.control("GET", "/_sim/state")["vms"])

    def test_clone_from_template_series_newest_validated(self):
        self.seed_template(vmid=9100, name="noble-20250101-001",
                           tags="phoenix;phx-noble;validated")
        self.seed_template(vmid=9101, name="noble-20250102-001", tags="phoenix;phx-noble")
        tpl = {"name": "noble", "image_url": "https://example.com/noble.img",
               "sha256": "0" * 64, "versions": {"vmid_min": 9100, "vmid_max": 9199}}
        vm = self.vm_8001(features=[])
        del vm["clone_from_vmid"]
        vm["clone_from_template"] = "noble"
        cfg = self.write_config({"proxmox": self.proxmox_section(),
                                 "defaults": {"storage": "local", "agent_timeout_s": 20},
                                 "features": self.features(), "templates": [tpl],
                                 "vms": [vm]})
        self.deploy(cfg, "8001")
        self.assertIn("base-9100-disk-0", self.conf(8001)["scsi0"])

    def test_native_mode_request_params(self):
        self.seed_template(cloudinit=False)
        cfg = self.config([self.vm_8001(features=[])], cloudinit_mode="native",
                          search_domain="example.com")
        self.deploy(cfg, "8001")
        posts = [r for r in self.logged("POST", r"/qemu/8001/config$")]
        self.assertEqual(len(posts), 1)
        p = posts[0]["params"]
        self.assertEqual(p["ciuser"], "admin")
        self.assertEqual(p["cipassword"], HASH)
        self.assertEqual(p["sshkeys"], urllib.parse.quote(KEY, safe="-_.!~*'()"))
        self.assertEqual(p["ipconfig0"], "ip=192.168.1.51/24,gw=192.168.1.1")
        self.assertEqual(p["nameserver"], "1.1.1.1")
        self.assertEqual(p["searchdomain"], "example.com")
        self.assertEqual(p["ide2"], "local:cloudinit")
        conf = self.conf(8001)
        self.assertEqual(conf["cipassword"], HASH)  # pre-hashed: stored as sent
        self.assertIn("cloudinit", conf["ide2"])
        self.assertEqual(self.isos(), [])
        # a rerun sends no cloud-init values again
        self.deploy(cfg, "8001")
        self.assertEqual(len(self.logged("POST", r"/qemu/8001/config$")), 1)

    def test_native_mode_refuses_a_hash_proxmox_would_hash_again(self):
        # qemu-server API2/Qemu.pm $update_vm_api hashes cipassword again with
        # PVE::Tools::encrypt_pw unless it matches ^\$(?:[156]|2[ay])(\$.+){2}: a yescrypt
        # hash would become the literal password. Refused before any request.
        self.seed_template(cloudinit=False)
        n = self.mark()
        yescrypt = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$U4SOHmDd8SvW5vCUKSMR6N835VPwFAtgYNhQ9mFFeL5"
        vm = self.vm_8001(features=[], user_config={"username": "admin",
                                                    "password_hash": yescrypt})
        cfg = self.config([vm], cloudinit_mode="native")
        p = self.deploy(cfg, "8001", check=2)
        self.assertIn("$.vms[0].user_config.password_hash: expected a $6$ or $5$ hash", p.stderr)
        self.assertEqual(self.sim.requests()[n:], [])
        self.run_bin("--config", cfg, "--check", check=2)

    def test_hostile_secret_and_insecure_with_a_pin_exit_2_unsent(self):
        # a CR/LF secret would inject a header into every request; --insecure next to a
        # pinned certificate used to drop the pin silently
        self.seed_template()
        cfg = self.config([self.vm_8001()])
        n = self.mark()
        p = self.run_bin("--config", cfg, "8001", check=2,
                         env=self.env(PVE_TOKEN_SECRET="abc\r\nX-Injected: yes"))
        self.assertIn("control character", p.stderr)
        self.assertNotIn("X-Injected", p.stderr)
        p = self.run_bin("--config", cfg, "--insecure", "8001", check=2)
        self.assertIn("--insecure cannot be combined with a pinned certificate", p.stderr)
        self.assertEqual([r for r in self.sim.requests()[n:] if not r.get("control")], [])

    def test_native_mode_with_snippets_uses_cicustom(self):
        self.seed_template(cloudinit=False)
        snippets = os.path.join(self.sim.state_dir, "storage", "local", "snippets")
        cfg = self.config([self.vm_8001()], cloudinit_mode="native", snippets_dir=snippets)
        self.deploy(cfg, "8001")
        p = self.logged("POST", r"/qemu/8001/config$")[0]["params"]
        self.assertEqual(p["cicustom"], "user=local:snippets/phoenix-ci-8001-user.yaml")
        self.assertNotIn("cipassword", p)
        self.assertEqual(p["ipconfig0"], "ip=192.168.1.51/24,gw=192.168.1.1")
        path = os.path.join(snippets, "phoenix-ci-8001-user.yaml")
        with open(path, encoding="utf-8") as f:
            ud = f.read()
        self.assertTrue(ud.startswith("#cloud-config"))
        for want in ("admin", HASH, KEY, "/var/lib/phoenix/features/docker.sh"):
            self.assertIn(want, ud)
        self.assertEqual(self.isos(), [])
        # the snippet's volume ID is in the VM's cicustom: --destroy deletes it through the
        # storage API, so a config without snippets_dir (another host's, or edited since)
        # leaves nothing behind either
        plain = self.config([self.vm_8001()], cloudinit_mode="native",
                            snippets_dir=snippets)
        with open(plain, encoding="utf-8") as f:
            doc = json.load(f)
        del doc["defaults"]["snippets_dir"]
        plain = self.write_config(doc, "no-snippets-dir.json")
        p = self.run_bin("--config", plain, "--destroy", "8001", "--dry-run", check=0)
        self.assertIn("/storage/local/content/local%3Asnippets%2Fphoenix-ci-8001-user.yaml",
                      p.stdout)
        self.assertTrue(os.path.exists(path))
        n = self.mark()
        p = self.run_bin("--config", plain, "--destroy", "8001", check=0)
        self.assertIn("removed local:snippets/phoenix-ci-8001-user.yaml", p.stdout)
        self.assertFalse(os.path.exists(path))
        self.assertEqual(len([r for r in self.sim.requests()[n:] if r["method"] == "DELETE" and
                              "snippets" in urllib.parse.unquote(r["path"])]), 1)
        self.assertEqual(sorted(self.state()["vms"]), ["9000"])

    def test_native_snippets_dir_must_belong_to_a_storage(self):
        self.seed_template(cloudinit=False)
        before = self.state()
        cfg = self.config([self.vm_8001()], cloudinit_mode="native",
                          snippets_dir="/var/lib/nowhere/snippets")
        n_req = self.mark()
        p = self.deploy(cfg, "8001", check=1)
        self.assertIn("is not the 'snippets' directory of any storage", p.stderr)
        self.assertEqual(self.state(), before)
        muts = [r for r in self.sim.requests()[n_req:]
                if r["method"] != "GET" and not r.get("control")]
        self.assertEqual(muts, [])

    def test_dry_run_changes_nothing(self):
        self.seed_template()
        before = self.state()
        p = self.deploy(self.config([self.vm_8001()]), "--dry-run", "8001")
        self.assertEqual(self.state(), before)
        self.assertIn("/clone", p.stdout)
        self.assertIn("/upload", p.stdout)
        self.assertRegex(p.stdout, r"8001\s+docker-host-1\s+pve1\s+-\s+planned")
        muts = [r for r in self.sim.requests() if r["method"] != "GET" and
                not r.get("control") and "8001" in r["path"]]
        self.assertEqual(muts, [])

    def assert_clean_failure(self, p, before, text):
        self.assertIn(text, p.stderr)
        self.assertIn("1 of 1 VM failed", p.stderr)
        self.assertRegex(p.stderr, r"\(rolled back: [^)]*removed VM 8001 on node 'pve1'")
        after = self.state()
        self.assertEqual(after, before, "orphans left behind")

    def test_failed_clone_task_leaves_nothing(self):
        self.seed_template()
        before = self.state()
        self.sim.control("POST", "/_sim/fault", {"kind": "task", "type": "qmclone",
                                                 "message": "clone broke"})
        p = self.deploy(self.config([self.vm_8001()]), "8001", check=1)
        self.assert_clean_failure(p, before, "clone broke")

    def test_failed_upload_leaves_nothing(self):
        self.seed_template()
        before = self.state()
        self.sim.control("POST", "/_sim/fault", {"kind": "task", "type": "imgcopy",
                                                 "message": "disk full"})
        p = self.deploy(self.config([self.vm_8001()]), "8001", check=1)
        self.assert_clean_failure(p, before, "disk full")
        self.assertRegex(p.stderr, r"\(rolled back: [^)]*removed local:iso/phoenix-ci-8001-")

    def test_failed_seed_upload_after_a_clone_of_a_foreign_template_leaves_nothing(self):
        # a hand-made template: its clone has the template's tags (no 'phoenix') until it is
        # configured, and the rollback must still know it as ours by its name
        self.seed_template(tags="handmade")
        before = self.state()
        self.sim.control("POST", "/_sim/fault", {"kind": "http", "method": "POST",
                                                 "path": "/upload$", "status": 500,
                                                 "message": "no space left"})
        p = self.deploy(self.config([self.vm_8001()]), "8001", check=1)
        self.assert_clean_failure(p, before, "no space left")

    def test_failed_start_leaves_nothing(self):
        self.seed_template()
        before = self.state()
        self.sim.control("POST", "/_sim/fault", {"kind": "task", "type": "qmstart",
                                                 "message": "kvm: no memory"})
        p = self.deploy(self.config([self.vm_8001()]), "8001", check=1)
        self.assert_clean_failure(p, before, "kvm: no memory")

    def test_rollback_that_cannot_poll_its_task_still_reports_what_is_gone(self):
        # the destroy task ran; only its status could not be read: the VM is gone, and the
        # report says so instead of "could not remove"
        self.seed_template()
        before = self.state()
        self.sim.control("POST", "/_sim/fault", {"kind": "task", "type": "qmstart",
                                                 "message": "start broke"})
        self.sim.control("POST", "/_sim/fault", {"kind": "http", "method": "GET",
                                                 "path": "qmdestroy.*/status$", "status": 500,
                                                 "message": "status unavailable",
                                                 "count": 50})
        p = self.deploy(self.config([self.vm_8001()]), "8001", check=1)
        self.assertIn("removed VM 8001", p.stderr)
        self.assertNotIn("could not remove", p.stderr)
        self.assertEqual(self.state(), before)

    def test_missing_agent_times_out_and_cleans(self):
        self.seed_template()
        before = self.state()
        t0 = time.monotonic()
        p = self.deploy(self.config([self.vm_8001()], agent_timeout_s=2), "8001", check=1,
                        guests=False)
        self.assertLess(time.monotonic() - t0, 30)
        self.assertIn("guest agent did not answer within 2 s", p.stderr)
        self.assertIn("qemu-guest-agent", p.stderr)
        self.assert_clean_failure(p, before, "QEMU guest agent is not running")

    def test_one_failure_others_continue(self):
        self.seed_template()
        vms = [self.vm_8001(vmid=8001 + i, name="vm-%d" % i, features=[], disk_size_gb=None)
               for i in range(3)]
        self.sim.control("POST", "/_sim/fault", {"kind": "task", "type": "qmstart",
                                                 "id": "8002", "message": "boom"})
        p = self.deploy(self.config(vms), "--all", "--output", "json", check=1)
        res = json.loads(p.stdout)
        self.assertEqual([r["vmid"] for r in res], [8001, 8002, 8003])
        self.assertEqual([r["state"] for r in res], ["created", "failed", "created"])
        self.assertIn("boom", res[1]["error"])
        self.assertEqual(sorted(self.sim.control("GET", "/_sim/state")["vms"]),
                         ["8001", "8003", "9000"])
        self.assertIn("1 of 3 VMs failed", p.stderr)
        self.assertIn("VM 8002 'vm-1'", p.stderr)

    def test_twenty_vms_jobs_4(self):
        self.seed_template()
        vms = [self.vm_8001(vmid=8100 + i, name="vm-%02d" % i, features=[], disk_size_gb=None)
               for i in range(20)]
        n = self.mark()
        p = self.deploy(self.config(vms), "--all", "--jobs", "4", "--output", "json")
        res = json.loads(p.stdout)
        # the cluster is read once per run, not once per VM: requests per VM stay constant
        reads = [r for r in self.sim.requests()[n:]
                 if r["method"] == "GET" and r["path"].endswith("/cluster/resources")]
        self.assertEqual(len(reads), 1)
        self.assertEqual([r["vmid"] for r in res], list(range(8100, 8120)))
        self.assertEqual({r["state"] for r in res}, {"created"})
        for r in res:
            self.assertEqual(r["ip"], "10.9.%d.%d" % (r["vmid"] // 250 % 250,
                                                      r["vmid"] % 250 + 2))
        self.assertEqual(len(self.isos()), 20)

    def test_a_clone_whose_connection_closes_is_sent_once(self):
        # libcurl used to send a request again when a reused connection closed before the
        # answer: the simulator then received the clone twice
        self.seed_template()
        before = self.state()
        self.sim.control("POST", "/_sim/fault", {"kind": "http", "method": "POST",
                                                 "path": "/clone$", "action": "close"})
        n = self.mark()
        p = self.deploy(self.config([self.vm_8001()]), "8001", check=1)
        self.assertEqual(len([r for r in self.sim.requests()[n:]
                              if r["method"] == "POST" and r["path"].endswith("/clone")]), 1)
        self.assertEqual(self.state(), before, p.stderr)

    def test_a_stalled_answer_ends_at_the_request_deadline_and_the_get_is_retried(self):
        self.seed_template()
        path = self.config([self.vm_8001(features=[])])
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
        cfg["proxmox"]["timeouts"] = {"request_s": 2}
        path = self.write_config(cfg)
        self.sim.control("POST", "/_sim/fault", {"kind": "http", "method": "GET",
                                                 "path": "/cluster/resources$", "delay": 120,
                                                 "status": 500, "message": "stalled"})
        # waiting the stall out would hit run_bin's timeout long before it ends
        with Guests(self.sim):
            p = self.run_bin("--config", path, "8001", check=0, timeout=90)
        self.assertNotIn("stalled", p.stderr)
        self.assertEqual(self.conf(8001)["cores"], 4)

    def test_lock_timeouts_are_retried(self):
        self.seed_template()
        self.sim.control("POST", "/_sim/fault", {"kind": "lock-timeout", "vmid": 8001,
                                                 "count": 2})
        self.deploy(self.config([self.vm_8001(features=[])]), "8001")
        posts = self.logged("POST", r"/qemu/8001/config$")
        self.assertEqual([r["status"] for r in posts], [500, 500, 200])
        self.assertIn("got timeout", posts[0]["error"])
        self.assertEqual(self.conf(8001)["cores"], 4)

    def test_destroy_when_the_seed_is_already_gone(self):
        # pve-storage answers a DELETE of a missing volume with a task that only warns
        # (API2/Storage/Content.pm delete, Storage.pm vdisk_free): --destroy of a VM whose
        # attached seed someone removed succeeds
        self.seed_template()
        cfg = self.config([self.vm_8001(features=[])])
        self.deploy(cfg, "8001")
        seed = self.conf(8001)["ide2"].split(",")[0]
        self.api_ok("DELETE", "/nodes/pve1/storage/local/content/" +
                    urllib.parse.quote(seed, safe=""))
        self.assertEqual(self.isos(), [])
        p = self.run_bin("--config", cfg, "--destroy", "8001", check=0)
        self.assertIn("destroyed VM 8001", p.stdout)
        self.assertEqual(sorted(self.state()["vms"]), ["9000"])

    def test_destroy(self):
        self.seed_template()
        cfg = self.config([self.vm_8001(features=[])])
        self.deploy(cfg, "8001")
        p = self.run_bin("--config", cfg, "--destroy", "8001", check=0)
        self.assertIn("destroyed VM 8001 'docker-host-1'", p.stdout)
        self.assertRegex(p.stdout, r"removed local:iso/phoenix-ci-8001-[0-9a-f]{12}\.iso")
        st = self.sim.control("GET", "/_sim/state")
        self.assertEqual(sorted(st["vms"]), ["9000"])
        self.assertEqual(self.isos(), [])
        self.assertFalse(os.path.exists(os.path.join(self.sim.state_dir,
                                                     "storage/local/images/8001")))
        # a VM without our tag is refused; so is a template
        self.api_ok("POST", "/nodes/pve1/qemu", {"vmid": "8002", "name": "foreign"})
        p = self.run_bin("--config", cfg, "--destroy", "8002", check=1)
        self.assertIn("no 'phoenix' tag", p.stderr)
        p = self.run_bin("--config", cfg, "--destroy", "9000", check=1)
        self.assertIn("is a template", p.stderr)
        self.assertEqual(sorted(self.sim.control("GET", "/_sim/state")["vms"]),
                         ["8002", "9000"])


class TestAnotherRunsClone(DeployBase):
    """A VM with Proxmox's lock "clone" or "create" is another run's work in progress
    (qemu-server clone_vm writes a config holding only the lock, then the copied options, and
    drops the lock when the disks are done): deploy waits for the lock to go, within the task
    timeout, then decides as a rerun would, instead of refusing it as not ours."""

    def later(self, vmid, conf, delay=1.0):
        def go():
            time.sleep(delay)
            self.sim.control("POST", "/_sim/vm/%d" % vmid, {"conf": conf})
        th = threading.Thread(target=go, daemon=True)
        th.start()
        return th

    def test_a_vm_of_ours_being_cloned_is_waited_for_then_converged(self):
        self.seed_template()
        cfg = self.config([self.vm_8001(features=[])])
        self.deploy(cfg, "8001")
        self.sim.control("POST", "/_sim/vm/8001", {"conf": {"lock": "clone"}})
        n = self.mark()
        th = self.later(8001, {"lock": None})
        p = self.deploy(cfg, "8001")
        th.join()
        self.assertIn("VM 8001 is being created by another run (lock: clone); waiting",
                      p.stderr)
        self.assertRegex(p.stdout, r"8001\s+docker-host-1\s+pve1\s+\S+\s+unchanged")
        reqs = self.sim.requests()[n:]
        cleared = [i for i, r in enumerate(reqs)
                   if r.get("control") and r["path"].endswith("/_sim/vm/8001")]
        sent = [i for i, r in enumerate(reqs) if r["method"] != "GET" and not r.get("control")]
        self.assertEqual(len(cleared), 1)
        self.assertTrue(sent and min(sent) > cleared[0], "nothing sent before the lock went")
        self.assertEqual(self.sim.schema_violations(), [])

    def test_a_vm_early_in_its_clone_is_judged_once_the_clone_is_done(self):
        self.seed_template()
        cfg = self.config([self.vm_8001(features=[], disk_size_gb=None),
                           self.vm_8001(vmid=8002, name="web-2", features=[],
                                        disk_size_gb=None)])
        # early in clone_vm the config holds no name and no tags: not ours, not foreign yet
        for vmid in (8001, 8002):
            self.api_ok("POST", "/nodes/pve1/qemu", {"vmid": str(vmid),
                                                      "net0": "virtio,bridge=vmbr0"})
            self.sim.control("POST", "/_sim/vm/%d" % vmid, {"conf": {"lock": "clone"}})
        theirs = dict(self.conf(8002), name="theirs", tags="prod")
        del theirs["lock"]
        # 8001 is a clone of our template (its tags come along), 8002 someone else's
        ths = [self.later(8001, {"lock": None, "tags": "phoenix", "name": "docker-host-1"}),
               self.later(8002, {"lock": None, "tags": "prod", "name": "theirs"})]
        p = self.deploy(cfg, "--all", "--jobs", "2", "--output", "json", check=1)
        for th in ths:
            th.join()
        res = {r["vmid"]: r for r in json.loads(p.stdout)}
        self.assertEqual(res[8001]["state"], "updated", p.stderr)
        self.assertEqual(res[8002]["state"], "failed")
        self.assertIn("not ours", res[8002]["error"])
        for vmid in (8001, 8002):
            self.assertIn("VM %d is being created by another run (lock: clone)" % vmid,
                          p.stderr)
        st = self.sim.control("GET", "/_sim/state")["vms"]
        self.assertEqual(st["8001"]["status"], "running")
        self.assertIn("phoenix-ci-8001-", st["8001"]["conf"]["ide2"])
        self.assertEqual(st["8002"]["conf"], theirs, "someone else's VM is left untouched")

    def test_a_lock_that_stays_ends_at_the_task_timeout(self):
        self.seed_template()
        path = self.config([self.vm_8001(features=[])])
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
        cfg["proxmox"]["timeouts"] = {"task_s": 2}
        path = self.write_config(cfg)
        self.api_ok("POST", "/nodes/pve1/qemu", {"vmid": "8001", "net0": "virtio,bridge=vmbr0"})
        self.sim.control("POST", "/_sim/vm/8001", {"conf": {"lock": "create"}})
        before = self.state()
        n = self.mark()
        p = self.deploy(path, "8001", check=1)
        self.assertIn("VM 8001 is still being created by another run (lock: create) after 2 s",
                      p.stderr)
        self.assertEqual(self.state(), before)
        self.assertEqual([r for r in self.sim.requests()[n:]
                          if r["method"] != "GET" and not r.get("control")], [])


class TestRunningAgent(DeployBase):
    """A rerun that finds a VM of ours running: one started less than the agent timeout ago
    (a run killed while its guest booted) gets the rest of the timeout for its agent; one
    running longer whose agent is gone is converged all the same, after a 1 s look."""

    def agent(self, vmid, up):
        self.sim.control("POST", "/_sim/agent/%d" % vmid, {"up": up})

    def uptime(self, vmid):
        st, _, body = self.sim.api("GET", "/nodes/pve1/qemu/%d/status/current" % vmid)
        self.assertEqual(st, 200, body)
        return body["data"]["uptime"]

    def test_a_rerun_waits_for_the_agent_of_a_vm_started_recently(self):
        self.seed_template()
        cfg = self.config([self.vm_8001(features=[])])
        self.deploy(cfg, "8001", ips={8001: "192.168.1.51"})
        # the run was killed while the guest booted: no agent yet, and it answers 2 s later
        self.agent(8001, False)
        th = threading.Timer(2.0, self.agent, (8001, True))
        th.start()
        p = self.deploy(cfg, "8001", "--output", "json")
        th.join()
        self.assertRegex(p.stderr, r"VM 8001 'docker-host-1' was started \d+ s ago: its guest "
                                   r"may still be booting")
        res = json.loads(p.stdout)[0]
        self.assertEqual((res["state"], res["ip"]), ("unchanged", "192.168.1.51"), p.stderr)

    def test_no_agent_fails_a_recent_vm_and_is_only_a_warning_for_an_old_one(self):
        self.seed_template()
        cfg = self.config([self.vm_8001(features=[])], agent_timeout_s=3)
        self.deploy(cfg, "8001")
        self.agent(8001, False)
        p = self.deploy(cfg, "8001", check=1)
        self.assertRegex(p.stderr, r"VM 8001 was started \d+ s before this run: VM 8001: the "
                                   r"guest agent did not answer within [123] s")
        self.assertIn("8001", self.sim.control("GET", "/_sim/state")["vms"],
                      "a VM this run did not create stays")
        # once it has run longer than the agent timeout, its agent is simply gone
        for _ in range(100):
            if self.uptime(8001) > 3:
                break
            time.sleep(0.1)
        p = self.deploy(cfg, "8001", "--output", "json")
        res = json.loads(p.stdout)[0]
        self.assertEqual((res["state"], res["ip"]), ("unchanged", None))
        self.assertIn("the guest agent did not answer within 1 s", p.stderr)
        self.assertNotIn("was started", p.stderr)


class TestStopSignals(DeployBase):
    """SIGTERM or SIGINT in the middle of a deploy: the task in flight ends, then the run
    rolls back what it created, removes its temporary files and exits 128 + the signal."""

    def stopped_at(self, signo, path_re, task_type):
        import signal
        self.seed_template()
        before = self.state()
        self.sim.control("POST", "/_sim/task-duration", {"type": task_type, "seconds": 2})
        tmpdir = os.path.join(self.tmp, "tmpd")
        os.makedirs(tmpdir)
        n = self.mark()
        proc = subprocess.Popen([phxtest.BIN, "--config", self.config([self.vm_8001()]),
                                 "8001"], env=self.env(TMPDIR=tmpdir),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(300):
                if any(re.search(path_re, r["path"]) for r in self.sim.requests()[n:]):
                    break
                time.sleep(0.05)
            else:
                self.fail("the run never reached %s" % path_re)
            proc.send_signal(signo)
            out, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        self.outputs += [out, err]
        self.assertEqual(proc.returncode, 128 + signo, err)
        self.assertIn("stopped by signal %d" % signo, err)
        self.assertIn("rolled back: ", err)
        self.assertEqual(self.state(), before)
        self.assertEqual(os.listdir(tmpdir), [], "temporary files left behind")
        # the seed is built in the run's private dir under the cache, removed at exit
        private = os.path.join(self.tmp, "cache", "phoenix", "images", "tmp")
        self.assertEqual(os.listdir(private), [], "the run's private temp dir is left")
        return err

    def test_sigterm_during_the_clone_rolls_back(self):
        import signal
        err = self.stopped_at(signal.SIGTERM, r"/clone$", "qmclone")
        self.assertIn("removed VM 8001", err)

    def test_sigint_during_the_seed_upload_rolls_back(self):
        import signal
        err = self.stopped_at(signal.SIGINT, r"/storage/local/upload$", "imgcopy")
        self.assertIn("removed local:iso/phoenix-ci-8001-", err)
        self.assertIn("removed VM 8001", err)


class TestInTaskLocks(DeployBase):
    """qemu-server 9.1.19 and later take the config lock of POST .../config inside the
    worker too (commit 797ab238)."""
    sim_opts = dict(DeployBase.sim_opts, qemu_server_version="9.1.19")

    def test_lock_timeouts_inside_tasks_are_retried(self):
        # qemu-server takes the config lock of clone, template and resize inside the worker
        # (API2/Qemu.pm clone_vm, resize_vm), and of POST .../config from 9.1.19: the API
        # answers a UPID and the task fails with "can't lock file ... got timeout"
        self.seed_template()
        for typ in ("qmclone", "qmconfig", "resize"):
            self.sim.control("POST", "/_sim/fault", {"kind": "lock-timeout", "type": typ})
        n = self.mark()
        p = self.deploy(self.config([self.vm_8001()]), "8001", check=0)
        self.assertRegex(p.stdout, r"8001\s+docker-host-1\s+pve1\s+\S+\s+created")
        reqs = self.sim.requests()[n:]
        for suffix in ("/clone", "/config", "/resize"):
            sent = [r for r in reqs if r["method"] != "GET" and r["path"].endswith(suffix)]
            self.assertEqual(len(sent), 2, suffix)


class TestPlacement(DeployBase):
    """node "auto": new VMs go to the online node with the lowest load (the larger of memory
    used and CPU load, with the VM booked), spread over the cluster; a template on shared
    storage is cloned straight onto each node (target)."""
    sim_opts = dict(DeployBase.sim_opts, nodes="pve1,pve2,pve3", storage_config=[
        {"storage": "local", "type": "dir", "content": "images,import,iso,snippets,vztmpl"},
        {"storage": "shared", "type": "nfs", "server": "10.0.0.1", "export": "/x",
         "content": "images"}],
        # fixed figures: the default maxcpu is the host's CPU count
        node_resources={n: {"maxmem": 16 * GiB, "mem": 2 * GiB, "maxcpu": 8, "cpu": 0.05}
                        for n in ("pve1", "pve2", "pve3")})

    def shared_template(self):
        self.api_ok("POST", "/nodes/pve1/qemu", {
            "vmid": "9000", "name": "tpl", "scsi0": "shared:1", "scsihw": "virtio-scsi-single",
            "net0": "virtio,bridge=vmbr0", "agent": "enabled=1", "tags": "phoenix",
            "boot": "order=scsi0"})
        self.api_ok("POST", "/nodes/pve1/qemu/9000/template")

    def auto_vms(self, count, **over):
        return [self.vm_8001(**dict(dict(vmid=8001 + i, name="web-%d" % i, node="auto",
                                         features=[], storage="shared", memory_mb=2048,
                                         disk_size_gb=None), **over))
                for i in range(count)]

    def test_auto_spreads_a_batch_and_clones_onto_each_node(self):
        self.shared_template()
        cfg = self.config(self.auto_vms(3))
        p = self.run_bin("--config", cfg, "--all", "--dry-run", check=0)
        self.assertIn("placed on pve2", p.stdout)
        # the plan names each VM's clone path; --check only knows they are placed
        self.assertIn("clone path: template 9000 is on the VM's node 'pve1': a clone there",
                      p.stdout)
        for node in ("pve2", "pve3"):
            self.assertIn("clone path: template 9000 is on 'pve1', on shared storage: a clone "
                          "with target '%s'" % node, p.stdout)
        p = self.run_bin("--config", cfg, "--check", "--output", "json", check=0)
        self.assertEqual({v["clone_path"] for v in json.loads(p.stdout)["vms"]}, {"placed"})
        p = self.deploy(cfg, "--all", "--jobs", "3")
        where = {v: d["node"] for v, d in self.sim.control("GET", "/_sim/state")["vms"].items()}
        self.assertEqual(where, {"9000": "pve1", "8001": "pve1", "8002": "pve2",
                                 "8003": "pve3"}, p.stderr)
        clones = {r["params"]["newid"]: r["params"].get("target")
                  for r in self.sim.requests() if r["path"].endswith("/clone")}
        self.assertEqual(clones, {"8001": None, "8002": "pve2", "8003": "pve3"})
        # a rerun leaves each VM where it is
        p = self.deploy(cfg, "--all")
        self.assertEqual(p.stdout.count("unchanged"), 3, p.stdout)

    def test_cpu_decides_between_nodes_with_equal_free_memory(self):
        # pve1 and pve2 have the same free memory, pve1's CPUs are busy; pve3 is short of
        # memory. By memory alone (and the name) pve1 would get the VM.
        self.shared_template()
        self.sim.control("POST", "/_sim/node/pve1", {"cpu": 0.9})
        self.sim.control("POST", "/_sim/node/pve3", {"mem": 13 * GiB})
        cfg = self.config(self.auto_vms(1, cores=2))
        p = self.run_bin("--config", cfg, "--all", "--dry-run", check=0)
        self.assertIn("placed on pve2: 14.0 GiB free, CPU 5%, 0 of our VMs", p.stdout)
        self.assertIn("placed on pve2: 14.0 GiB free, CPU 5%, 0 of our VMs", p.stderr)
        p = self.deploy(cfg, "--all")
        self.assertEqual(self.sim.control("GET", "/_sim/state")["vms"]["8001"]["node"],
                         "pve2", p.stderr)
        # the load is the larger of the two: with pve2's memory 88% used once the VM is
        # booked (10 GiB + 8001's 2 GiB + 2 GiB), pve1 at 60% + 25% CPU is the less loaded
        self.sim.control("POST", "/_sim/node/pve1", {"cpu": 0.6})
        self.sim.control("POST", "/_sim/node/pve2", {"mem": 10 * GiB})
        cfg = self.config(self.auto_vms(2, cores=2))
        p = self.run_bin("--config", cfg, "8002", "--dry-run", check=0)
        self.assertIn("placed on pve1: 14.0 GiB free, CPU 60%, 0 of our VMs", p.stdout)
        self.assertEqual(self.sim.schema_violations(), [])


class TestJobsPerNode(DeployBase):
    """--jobs N bounds the VMs in flight per node to ceil(N / nodes with work), and in total
    to N: a batch mostly on one node does not hammer it while the others idle."""
    sim_opts = dict(DeployBase.sim_opts, nodes="pve1,pve2,pve3")

    @staticmethod
    def max_overlap(tasks):
        """Most tasks running at once. Task times are whole seconds (as in Proxmox): a task is
        [starttime, endtime), an end sorts before a start at the same second, so truncated
        times can hide an overlap shorter than a second but never make one up."""
        events = sorted([(t["starttime"], 1) for t in tasks] +
                        [(t["endtime"], -1) for t in tasks], key=lambda e: (e[0], e[1]))
        most = cur = 0
        for _, d in events:
            cur += d
            most = max(most, cur)
        return most

    def test_jobs_are_bounded_per_node(self):
        # a template on each node, so every VM's clone task runs on the VM's own node
        for node, vmid in (("pve1", 9001), ("pve2", 9002), ("pve3", 9003)):
            self.api_ok("POST", "/nodes/%s/qemu" % node, {
                "vmid": str(vmid), "name": "tpl-%s" % node, "scsi0": "local:1",
                "net0": "virtio,bridge=vmbr0", "agent": "enabled=1", "boot": "order=scsi0",
                "tags": "phoenix"})
            self.api_ok("POST", "/nodes/%s/qemu/%d/template" % (node, vmid))
        # 2 s, not 1: two clones started in the same second then overlap in whole seconds too
        self.sim.control("POST", "/_sim/task-duration", {"type": "qmclone", "seconds": 2})
        where = ["pve1"] * 6 + ["pve2", "pve3"]
        vms = [self.vm_8001(vmid=8101 + i, name="vm-%d" % i, node=node, features=[],
                            disk_size_gb=None, clone_from_vmid=9001 + int(node[-1]) - 1)
               for i, node in enumerate(where)]
        p = self.deploy(self.config(vms), "--all", "--jobs", "4", "--output", "json",
                        "--verbose")
        self.assertIn("at most 2 VMs in flight per node", p.stderr)
        res = json.loads(p.stdout)
        self.assertEqual([r["vmid"] for r in res], list(range(8101, 8109)), "config order")
        self.assertEqual({r["state"] for r in res}, {"created"}, p.stderr)
        self.assertEqual([r["node"] for r in res], where)
        clones = {}
        for node in ("pve1", "pve2", "pve3"):
            st, _, body = self.sim.api("GET", "/nodes/%s/tasks" % node,
                                       {"typefilter": "qmclone", "limit": 100})
            self.assertEqual(st, 200, body)
            clones[node] = body["data"]
        self.assertEqual(len(clones["pve1"]), 6)
        every = [t for ts in clones.values() for t in ts]
        self.assertTrue(all(t.get("endtime") for t in every), every)
        # ceil(4 jobs / 3 nodes with work) = 2 on pve1, reached, never more; 4 in all
        self.assertEqual(self.max_overlap(clones["pve1"]), 2, clones["pve1"])
        self.assertLessEqual(self.max_overlap(every), 4)
        self.assertGreater(self.max_overlap(every), 2, "the other nodes worked meanwhile")
        self.assertEqual(self.sim.schema_violations(), [])


class TestListTemplates(DeployBase):
    """--list-templates on a cluster: the versions of each series per node, sorted by series,
    node and VMID whatever order /cluster/resources gives."""
    sim_opts = dict(DeployBase.sim_opts, nodes="pve1,pve2,pve3")

    def test_versions_listed_by_series_node_and_vmid(self):
        made = [("pve2", 9102, "noble-20261202-001", "phoenix;phx-noble"),
                ("pve3", 9105, "noble-20261203-001", "phoenix;phx-noble;validated"),
                ("pve1", 9101, "noble-20261202-001", "phoenix;phx-noble"),
                ("pve3", 9200, "alpine-20261201-001", "phoenix;phx-alpine"),
                ("pve1", 9100, "noble-20261201-001", "phoenix;phx-noble;validated"),
                ("pve2", 9300, "handmade-ours", "phoenix"),
                ("pve1", 9400, "not-ours", "golden")]
        for node, vmid, name, tags in made:
            self.api_ok("POST", "/nodes/%s/qemu" % node, {"vmid": str(vmid), "name": name,
                                                           "tags": tags})
            self.api_ok("POST", "/nodes/%s/qemu/%d/template" % (node, vmid))
        cfg = self.config([])
        want = [("alpine", "pve3", 9200), ("noble", "pve1", 9100), ("noble", "pve1", 9101),
                ("noble", "pve2", 9102), ("noble", "pve3", 9105), ("", "pve2", 9300)]
        p = self.run_bin("--config", cfg, "--list-templates", "--output", "json", check=0)
        listed = json.loads(p.stdout)
        self.assertEqual([(x["series"], x["node"], x["vmid"]) for x in listed], want)
        self.assertEqual([x["validated"] for x in listed],
                         [False, True, False, False, True, False])
        p = self.run_bin("--config", cfg, "--list-templates", check=0)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split()[:4], ["SERIES", "NODE", "VMID", "NAME"])
        self.assertEqual([tuple(l.split()[:3]) for l in lines[1:]],
                         [(s or "-", n, str(v)) for s, n, v in want])
        self.assertEqual(self.sim.schema_violations(), [])


class TestCrossNode(DeployBase):
    """A VM on another node than its template, on node-local storage: qemu-server refuses a
    clone with target from local storage (clone_vm: "can't clone VM to node 'X' (VM uses
    local storage)"), so the VM is cloned in full beside the template and migrated offline
    with its disks (migrate_vm, QemuMigrate sync_offline_local_volumes)."""
    sim_opts = dict(DeployBase.sim_opts, nodes="pve1,pve2")

    def test_clone_beside_the_template_then_migrate(self):
        self.seed_template()
        before = self.state()
        cfg = self.config([self.vm_8001(node="pve2", features=[])])
        p = self.run_bin("--config", cfg, "8001", "--dry-run", check=0)
        self.assertIn("migrate VM 8001 from 'pve1' to 'pve2'", p.stdout)
        self.assertIn("clone path: template 9000 is on node-local storage on 'pve1': a full "
                      "clone there, then an offline migration to 'pve2' onto 'local'", p.stdout)
        # template 9000 is not in the config: offline, nothing tells where it is
        p = self.run_bin("--config", cfg, "--check", "--output", "json", check=0)
        self.assertEqual(json.loads(p.stdout)["vms"][0]["clone_path"], "unknown")
        n = self.mark()
        p = self.deploy(cfg, "8001")
        self.assertRegex(p.stdout, r"8001\s+docker-host-1\s+pve2\s+\S+\s+created")
        st = self.sim.control("GET", "/_sim/state")
        self.assertEqual(st["vms"]["8001"]["node"], "pve2")
        self.assertEqual(st["vms"]["8001"]["status"], "running")
        self.assertRegex(st["vms"]["8001"]["conf"]["scsi0"], r"^local:8001/vm-8001-disk-0\.")
        self.assertIn("size=100G", st["vms"]["8001"]["conf"]["scsi0"])
        seeds = [v for v in st["volumes"] if "phoenix-ci-8001" in v["volid"]]
        self.assertEqual([v.get("node") for v in seeds], ["pve2"])
        reqs = [r for r in self.sim.requests()[n:] if r["method"] != "GET" and
                not r.get("control") and "/agent/" not in r["path"]]
        self.assertEqual([r["path"].replace("/api2/json", "") for r in reqs[:2]],
                         ["/nodes/pve1/qemu/9000/clone", "/nodes/pve1/qemu/8001/migrate"])
        self.assertEqual(reqs[0]["params"].get("full"), "1")
        self.assertNotIn("target", reqs[0]["params"])
        # a failure after the migration removes the VM on the node it moved to
        self.run_bin("--config", cfg, "--destroy", "8001", check=0)
        self.sim.control("POST", "/_sim/fault", {"kind": "task", "type": "qmstart",
                                                 "message": "start broke"})
        p = self.deploy(cfg, "8001", check=1)
        self.assertIn("removed VM 8001 on node 'pve2'", p.stderr)
        self.assertEqual(self.state(), before)


    def test_a_series_on_every_node_is_cloned_from_the_vms_own_node(self):
        for node, vmid in (("pve1", 9100), ("pve2", 9101)):
            self.api_ok("POST", "/nodes/%s/qemu" % node, {
                "vmid": str(vmid), "name": "tpl-20261201-001", "scsi0": "local:1",
                "net0": "virtio,bridge=vmbr0", "agent": "enabled=1", "boot": "order=scsi0",
                "tags": "phoenix;phx-tpl"})
            self.api_ok("POST", "/nodes/%s/qemu/%d/template" % (node, vmid))
        tpl = {"name": "tpl", "os": "debian-12", "image_url": "https://example.org/x.img",
               "sha256": "0" * 64, "hardware": {"cores": 1, "memory_mb": 512},
               "nodes": ["pve1", "pve2"],
               "versions": {"vmid_min": 9100, "vmid_max": 9109, "keep": 1}}
        with open(self.config([self.vm_8001(node="pve2", features=[], clone_from_vmid=None,
                                            clone_from_template="tpl",
                                            disk_size_gb=None)]), encoding="utf-8") as f:
            cfg = json.load(f)
        cfg["templates"] = [tpl]
        path = self.write_config(cfg)
        p = self.run_bin("--config", path, "--check", check=0)
        self.assertIn("clone path: clones the template on pve2", p.stdout)
        p = self.run_bin("--config", path, "8001", "--dry-run", check=0)
        self.assertIn("clone path: template 9101 is on the VM's node 'pve2': a clone there",
                      p.stdout)
        n = self.mark()
        self.deploy(path, "8001")
        clones = [r["path"].replace("/api2/json", "") for r in self.sim.requests()[n:]
                  if r["path"].endswith("/clone")]
        self.assertEqual(clones, ["/nodes/pve2/qemu/9101/clone"])
        self.assertEqual(self.sim.control("GET", "/_sim/state")["vms"]["8001"]["node"], "pve2")


class TestDeployPreflight(DeployBase):
    """qemu-server checks VM.Config.CDROM for an ISO on ide2 and VM.Config.Cloudinit for the
    cloud-init drive it replaces (API2/Qemu.pm $check_drive_perms): a token without them must
    learn so before the clone and the upload, not from a failed config POST after them."""
    sim_opts = dict(DeployBase.sim_opts, token_privs=(
        "phoenix@pve!ci=/:VM.Allocate,VM.Audit,VM.Clone,VM.Config.CPU,VM.Config.Disk,"
        "VM.Config.HWType,VM.Config.Memory,VM.Config.Network,VM.Config.Options,VM.PowerMgmt,"
        "VM.GuestAgent.Audit,Datastore.Allocate,Datastore.AllocateSpace,"
        "Datastore.AllocateTemplate,Datastore.Audit,Sys.Audit,SDN.Use"))

    def test_missing_cdrom_and_cloudinit_privileges_fail_before_any_change(self):
        self.seed_template()
        before = self.state()
        n = self.mark()
        p = self.deploy(self.config([self.vm_8001()]), "8001", check=1)
        self.assertIn("lacks VM.Config.Cloudinit, VM.Config.CDROM on '/vms/8001'", p.stderr)
        self.assertEqual(self.state(), before)
        self.assertEqual([r for r in self.sim.requests()[n:]
                          if r["method"] != "GET" and not r.get("control")], [])


if __name__ == "__main__":
    unittest.main()
