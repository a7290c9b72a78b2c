"""--provision-template end to end: the real binary, the simulator over HTTPS, the tiny test
image served over HTTP with a SHA256SUMS, and a real libguestfs customization.

The class shares one image cache, so the first build pays for the appliance run (~40 s under
TCG) and the other scenarios reuse the customized image (same source and recipe) and test
what they are about: idempotence, rollback, privileges, versions and pruning.
"""
import glob
import json
import re
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import phxtest
from phxtest import REPO, OrchestratorTest

SECRET_STATE_KEYS = ("vms", "volumes")


def build_tiny_image():
    p = subprocess.run([os.path.join(REPO, "scripts", "build-test-image.sh"), "--tiny"],
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        return None, p.stderr[-2000:]
    return p.stdout.strip(), None


class FileServer:
    def __init__(self, root, log):
        self.log = log
        self.proc = subprocess.Popen(
            ["python3", os.path.join(REPO, "tests", "servers", "file_server.py"), "--root", root,
             "--port", "0", "--log", log], stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().split()[1]

    def image_gets(self):
        n = 0
        with open(self.log, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if r.get("path", "").endswith(".img") and r.get("method", "GET") == "GET":
                    n += 1
        return n

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def changing(reqs):
    """Requests that change the server (not GET, not the simulator's control endpoint)."""
    return [r for r in reqs if r["method"] != "GET" and not r.get("control")]


class ProvisionBase(OrchestratorTest):
    """The tiny image served over HTTP, a class-wide image cache, config helpers."""

    @classmethod
    def setUpClass(cls):
        image, why = build_tiny_image()
        if not image:
            raise unittest.SkipTest("cannot build the test image: " + (why or ""))
        cls.image = image
        cls.debs = sorted(os.path.join(os.path.dirname(image), "debs", d)
                          for d in os.listdir(os.path.join(os.path.dirname(image), "debs")))
        cls.cls_tmp = tempfile.mkdtemp(prefix="phx-prov-")
        srv = os.path.join(cls.cls_tmp, "srv")
        os.makedirs(srv)
        shutil.copyfile(image, os.path.join(srv, "tiny.img"))
        subprocess.run("sha256sum --binary tiny.img > SHA256SUMS", shell=True, cwd=srv,
                       check=True)
        cls.fs = FileServer(srv, os.path.join(cls.cls_tmp, "files.jsonl"))
        cls.cache = os.path.join(cls.cls_tmp, "cache")

    @classmethod
    def tearDownClass(cls):
        cls.fs.stop()
        shutil.rmtree(cls.cls_tmp, True)

    def env(self, **extra):
        env = super().env(**extra)
        env["XDG_CACHE_HOME"] = self.cache
        return env

    def template(self, **over):
        t = {
            "name": "debian-tiny",
            "vmid": 9000,
            "os": "debian-12",
            "image_url": self.fs.url + "/tiny.img",
            "checksum_url": self.fs.url + "/SHA256SUMS",
            "customize": {"packages": [], "debs": self.debs,
                          "enable_services": ["qemu-guest-agent"],
                          "files": [{"path": "/etc/motd", "mode": "0644",
                                     "content": "phoenix\n"}]},
            "hardware": {"cores": 1, "memory_mb": 512, "disk_size_gb": 3},
        }
        t.update(over)
        return t

    def canary_deb(self, version):
        """A tiny package 'phx-canary' at `version`: two builds that install two versions of
        it differ by one package, as a monthly rebuild differs by its security updates."""
        root = os.path.join(self.cls_tmp, "canary-" + version)
        os.makedirs(os.path.join(root, "DEBIAN"), exist_ok=True)
        with open(os.path.join(root, "DEBIAN", "control"), "w") as f:
            f.write("Package: phx-canary\nVersion: %s\nArchitecture: all\n"
                    "Maintainer: phoenix tests <t@example.org>\n"
                    "Description: canary for package diffs\n" % version)
        deb = os.path.join(self.cls_tmp, "phx-canary_%s_all.deb" % version)
        subprocess.run(["dpkg-deb", "--build", "--root-owner-group", root, deb], check=True,
                       capture_output=True)
        return deb

    def config(self, *templates, agent_timeout_s=600):
        return self.write_config({
            "proxmox": self.proxmox_section(),
            "defaults": {"storage": "local", "import_storage": "local",
                         "iso_storage": "local", "agent_timeout_s": agent_timeout_s},
            "templates": list(templates) or [self.template()],
            "vms": [],
        })

    def state(self):
        d = self.sim.control("GET", "/_sim/state")
        return {k: d[k] for k in SECRET_STATE_KEYS}

    def provision(self, cfg, *args, check=0):
        return self.run_bin("--config", cfg, "--provision-template", *args, check=check)


def prometheus_parser():
    """prometheus_client's text-format parser (Debian's python3-prometheus-client; a python3
    from elsewhere, such as pyenv, is pointed at Debian's dist-packages)."""
    try:
        import prometheus_client.parser as parser
    except ImportError:
        import sys
        sys.path.append("/usr/lib/python3/dist-packages")
        import prometheus_client.parser as parser
    return parser


class ProvisionTest(ProvisionBase):

    def test_metrics_file_for_node_exporter(self):
        parser = prometheus_parser()
        path = os.path.join(self.tmp, "phoenix.prom")

        def samples():
            with open(path, encoding="utf-8") as f:
                fams = list(parser.text_string_to_metric_families(f.read()))
            return {(s.name, tuple(sorted((k, v) for k, v in s.labels.items()
                                          if k in ("template", "node", "phase")))): s
                    for fam in fams for s in fam.samples}

        self.provision(self.config(), "--metrics-file", path)
        m = samples()
        self.assertEqual(m[("phoenix_provision_success", ())].value, 1)
        ok_key = (("node", "pve1"), ("template", "debian-tiny"))
        self.assertEqual(m[("phoenix_template_ok", ok_key)].value, 1)
        self.assertEqual(m[("phoenix_template_changed", ok_key)].value, 1)
        info = m[("phoenix_template_info", ok_key)].labels
        self.assertEqual((info["vmid"], info["version"]), ("9000", "debian-tiny"))
        self.assertRegex(info["sha256"], "^[0-9a-f]{64}$")
        self.assertIn(("phoenix_template_phase_seconds", (("node", "pve1"), ("phase", "upload"),
                                                          ("template", "debian-tiny"))), m)
        good = m[("phoenix_provision_last_success_timestamp_seconds", ())].value
        self.assertGreater(good, time.time() - 600)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)

        # a failed run says so and keeps when the last good one was
        t = self.template(name="other", vmid=9001)
        self.sim.control("POST", "/_sim/fault", {"kind": "http", "method": "POST",
                                                 "path": "/upload$", "status": 500,
                                                 "message": "storage gone"})
        self.provision(self.config(self.template(), t), "--metrics-file", path, check=1)
        m = samples()
        self.assertEqual(m[("phoenix_provision_success", ())].value, 0)
        self.assertEqual(m[("phoenix_provision_last_success_timestamp_seconds", ())].value, good)
        self.assertEqual(m[("phoenix_template_ok", ok_key)].value, 1)
        self.assertEqual(m[("phoenix_template_changed", ok_key)].value, 0)
        self.assertEqual(m[("phoenix_template_ok", (("node", "pve1"), ("template", "other")))]
                         .value, 0)

    def test_fresh_build_then_rerun_is_a_noop(self):
        cfg = self.config()
        self.provision(cfg, "--output", "json")
        st = self.state()
        vm = st["vms"]["9000"]
        conf = vm["conf"]
        self.assertEqual(conf.get("template"), 1)
        day = time.strftime("%Y%m%d", time.gmtime())
        self.assertEqual(set(conf["tags"].split(";")),
                         {"phoenix", "phx-debian-tiny", "os-debian-12", "builder-phoenix",
                          "built-" + day})
        self.assertIn("build-date: %s\nbuilder: phoenix-orchestrator " % day,
                      conf["description"])
        self.assertIn("sha256: ", conf["description"])
        self.assertIn("source: %s/tiny.img" % self.fs.url, conf["description"])
        self.assertEqual(conf["scsihw"], "virtio-scsi-single")
        self.assertEqual(conf["agent"], "enabled=1")
        self.assertIn("size=3G", conf["scsi0"])
        vols = [v["volid"] for v in st["volumes"]]
        self.assertEqual(vols, ["local:9000/base-9000-disk-0.qcow2"],
                         "the import volume must be deleted after the template is made")
        disk = os.path.join(self.sim.state_dir, "storage", "local", "images", "9000",
                            "base-9000-disk-0.qcow2")
        self.assert_agent_installed(disk)

        gets = self.fs.image_gets()
        uploads = sum(1 for r in self.sim.requests() if r["path"].endswith("/upload"))
        t0 = time.monotonic()
        p = self.provision(cfg, "--output", "json")
        took = time.monotonic() - t0
        rec = json.loads(p.stdout)
        self.assertEqual((rec["template_id"], rec["changed"]), (9000, False))
        self.assertEqual(self.fs.image_gets(), gets, "rerun downloaded the image again")
        self.assertEqual(sum(1 for r in self.sim.requests() if r["path"].endswith("/upload")),
                         uploads, "rerun uploaded again")
        self.assertLess(took, 2.0)
        self.assertEqual(self.state(), st)
        self.assertEqual(conf["cpu"], "x86-64-v2-AES", "new templates get the GUI's default")

        # hardware defaults (#17): a second template of the same recipe reuses the
        # customized image, so this costs no appliance run
        hw = {"cores": 1, "memory_mb": 512, "bios": "ovmf", "efi_pre_enrolled_keys": True,
              "machine": "q35", "tpm": True, "cpu": "host", "sockets": 2, "balloon": 256,
              "numa": True}
        self.provision(self.config(self.template(), self.template(
            name="debian-uefi", vmid=9001, hardware=hw)))
        conf = self.sim.control("GET", "/_sim/state")["vms"]["9001"]["conf"]
        self.assertEqual(conf["bios"], "ovmf")
        # created with the VM, then turned into base volumes with the system disk
        self.assertRegex(conf["efidisk0"], r"^local:9001/base-9001-disk-\d\.qcow2,efitype=4m,"
                                           r"pre-enrolled-keys=1,size=528K$")
        self.assertRegex(conf["tpmstate0"], r"^local:9001/base-9001-disk-\d\.qcow2,size=4M,"
                                            r"version=v2.0$")
        self.assertEqual((conf["machine"], conf["cpu"], conf["sockets"], conf["balloon"],
                          conf["numa"]), ("q35", "host", 2, 256, 1))
        # the customized image's sha256 was kept beside it when it was made, and the second
        # template's upload carries the same one (img_file_sha256 reads it there)
        custom = re.search(r"\ncustomized-sha256: ([0-9a-f]{64})\n",
                           vm["conf"]["description"]).group(1)
        self.assertIn("customized-sha256: %s\n" % custom, conf["description"])
        kept = []
        for side in glob.glob(os.path.join(self.cache, "phoenix", "images", "*",
                                           "customized-*.qcow2.sha256")):
            with open(side, encoding="utf-8") as f:
                kept.append(f.read().split()[0])
        self.assertIn(custom, kept)

    def assert_agent_installed(self, disk):
        env = dict(os.environ, LIBGUESTFS_BACKEND="direct",
                   LIBGUESTFS_BACKEND_SETTINGS="force_tcg")
        script = ("run\nmount-ro /dev/sda1 /\nexists /usr/sbin/qemu-ga\n"
                  "cat /etc/motd\nfilesize /etc/machine-id\n")
        p = subprocess.run(["guestfish", "--ro", "--format=qcow2", "-a", disk],
                           input=script, capture_output=True, text=True, env=env, timeout=900)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([l for l in p.stdout.split("\n") if l], ["true", "phoenix", "0"],
                         p.stdout)

    def test_publish_then_provision_from_the_artifact(self):
        cfg = self.config()
        self.provision(cfg)
        conf = self.state()["vms"]["9000"]["conf"]
        name = conf["name"]
        out = os.path.join(self.tmp, "artifacts")
        p = self.run_bin("--config", cfg, "--publish", "9000", out, "--output", "json")
        doc = json.loads(p.stdout)
        vdir = os.path.join(out, "debian-tiny", name)
        self.assertEqual((doc["artifact"], doc["changed"]), (vdir, True))
        self.assertIn("customized-sha256: %s\n" % doc["sha256"], conf["description"])
        self.assertEqual(sorted(os.listdir(vdir)),
                         sorted(["SHA256SUMS", name + ".qcow2", name + ".qcow2.packages",
                                 name + ".record"]))
        with open(os.path.join(vdir, "SHA256SUMS")) as f:
            self.assertEqual(f.read(), "%s  %s.qcow2\n" % (doc["sha256"], name))
        with open(os.path.join(vdir, name + ".record")) as f:
            self.assertEqual(f.read(), conf["description"])
        p = self.run_bin("--config", cfg, "--publish", name, out)
        self.assertEqual(p.stdout, "already published '%s': %s\n" % (name, vdir))

        # another cluster (here: another template) is provisioned from it as published
        t = {"name": "from-artifact", "vmid": 9050, "os": "debian-12", "artifact": vdir,
             "hardware": {"cores": 1, "memory_mb": 512, "disk_size_gb": 3}}
        gets = self.fs.image_gets()
        p = self.provision(self.config(t))
        self.assertNotIn("customize: appliance started", p.stderr)
        self.assertEqual(self.fs.image_gets(), gets, "an artifact is not downloaded")
        built = self.state()["vms"]["9050"]["conf"]
        self.assertEqual(built.get("template"), 1)
        self.assertIn("source: %s\n" % vdir, built["description"])
        self.assertIn("customized-sha256: %s\n" % doc["sha256"], built["description"])
        packages = [l for l in conf["description"].split("\n") if l.startswith("packages: ")]
        self.assertEqual(len(packages), 1)
        self.assertIn(packages[0] + "\n", built["description"])

        bad = dict(t, image_url=self.fs.url + "/tiny.img")
        p = self.run_bin("--config", self.config(bad), "--check", check=2)
        self.assertIn("$.templates[0].image_url: does not go with 'artifact'", p.stderr)

        # a damaged artifact is refused before anything is sent
        with open(os.path.join(vdir, name + ".qcow2"), "r+b") as f:
            f.seek(65536)
            f.write(b"tampered")
        t.update(name="from-damaged", vmid=9051)
        n = len(self.sim.requests())
        p = self.provision(self.config(t), check=1)
        self.assertIn("does not match its SHA256SUMS", p.stderr)
        self.assertEqual([r for r in self.sim.requests()[n:] if r["method"] != "GET"
                          and not r.get("control")], [])
        self.assertNotIn("9051", self.state()["vms"])

    def test_failure_at_each_step_is_rolled_back(self):
        cfg = self.config()
        cases = [
            ({"kind": "http", "method": "POST", "path": "/upload$", "status": 500,
              "message": "upload failed"}, "upload the customized image"),
            ({"kind": "task", "type": "imgcopy", "message": "checksum mismatch"},
             "upload the customized image"),
            ({"kind": "task", "type": "qmcreate", "message": "storage full"},
             "create VM 9000"),
            ({"kind": "task", "type": "resize", "message": "resize failed"},
             "grow the disk of VM 9000"),
            ({"kind": "task", "type": "qmtemplate", "message": "template failed"},
             "convert VM 9000 to a template"),
        ]
        for fault, step in cases:
            with self.subTest(step=fault.get("type", "upload")):
                before = self.state()
                self.sim.control("POST", "/_sim/fault", fault)
                p = self.provision(cfg, check=1)
                self.assertIn(step, p.stderr)
                self.assertIn(fault["message"], p.stderr)
                self.assertEqual(self.state(), before, "rollback left something behind")
                self.sim.control("DELETE", "/_sim/faults")

    def test_foreign_vmid_is_refused_untouched(self):
        st, reason, _ = self.sim.api("POST", "/nodes/pve1/qemu",
                                     {"vmid": "9000", "name": "someone-elses"})
        self.assertEqual(st, 200, reason)
        time.sleep(1)
        before = self.state()
        p = self.provision(self.config(), check=1)
        self.assertIn("was not built by phoenix-orchestrator", p.stderr)
        self.assertEqual(self.state(), before)

    def test_vmid_taken_during_the_build_is_left_alone(self):
        cfg = self.config()
        self.provision(cfg)  # warm the caches; then start over on the server
        self.sim.api("DELETE", "/nodes/pve1/qemu/9000", {"purge": 1})
        for _ in range(100):
            if not self.state()["vms"]:
                break
            time.sleep(0.1)
        self.sim.control("POST", "/_sim/task-duration", {"type": "imgcopy", "seconds": 2})
        import threading

        uploads = sum(1 for r in self.sim.requests() if r["path"].endswith("/upload"))

        def someone_else():
            for _ in range(600):
                if sum(1 for r in self.sim.requests()
                       if r["path"].endswith("/upload")) > uploads:
                    self.sim.api("POST", "/nodes/pve1/qemu",
                                 {"vmid": "9000", "name": "someone-elses"})
                    return
                time.sleep(0.05)
        th = threading.Thread(target=someone_else)
        th.start()
        p = self.provision(cfg, check=1)
        th.join()
        self.assertIn("already exists", p.stderr)
        # refused by the API: nothing of ours was made, so no undo is even tried on it
        self.assertNotIn("could not remove VM 9000", p.stderr)
        st = self.state()
        self.assertEqual(st["vms"]["9000"]["conf"]["name"], "someone-elses")
        self.assertEqual([v for v in st["volumes"] if v["content"] == "import"], [])

    def test_half_built_vm_of_ours_is_not_up_to_date(self):
        st, reason, _ = self.sim.api("POST", "/nodes/pve1/qemu",
                                     {"vmid": "9000", "name": "debian-tiny",
                                      "tags": "phoenix;phx-debian-tiny"})
        self.assertEqual(st, 200, reason)
        time.sleep(1)
        p = self.provision(self.config(), check=1)
        self.assertIn("VM 9000 is ours but not a template", p.stderr)
        self.assertIn("--destroy 9000", p.stderr)

    def test_dry_run_plan_is_what_the_real_run_sends(self):
        """The dry run reads only and prints the plan; values that carry the hashes of the
        image it does not download are pending. The real run then sends those actions, in
        that order, with the same parameters where they were known."""
        before = self.state()
        n = len(self.sim.requests())
        p = self.provision(self.config(), "--dry-run", check=0)
        self.assertIn("POST /nodes/pve1/qemu", p.stdout)
        self.assertIn("import-from=local:import/", p.stdout)
        self.assertIn("only if the image's disk is smaller than 3G", p.stdout)
        p = self.provision(self.config(), "--dry-run", "--output", "json", check=0)
        self.assertEqual(self.state(), before)
        self.assertEqual(changing(self.sim.requests()[n:]), [], "a dry run changed something")
        plan = json.loads(p.stdout)
        self.assertEqual(plan["command"], "provision")
        acts = plan["actions"]
        self.assertEqual([(a["action"], a["method"]) for a in acts],
                         [("+", "POST"), ("+", "POST"), ("~", "PUT"), ("~", "POST"),
                          ("-", "DELETE")])
        self.assertEqual(acts[0]["pending"], ["checksum"])
        self.assertEqual(acts[1]["pending"], ["scsi0", "description"])
        self.assertEqual(acts[1]["undo"], "destroy VM 9000")
        self.assertIsNotNone(acts[2]["condition"])
        self.assertTrue(acts[4]["best_effort"])

        n = len(self.sim.requests())
        self.provision(self.config())
        sent = changing(self.sim.requests()[n:])
        self.assertEqual(len(sent), len(acts), [r["path"] for r in sent])
        for a, r in zip(acts, sent):
            # a pending part of the path (the import volume's name) matches anything
            pattern = re.sub(r"%3C.*?%3E", "[^/]*", re.escape(a["path"]))
            self.assertEqual(r["method"], a["method"])
            self.assertRegex(r["path"].replace("/api2/json", "", 1), "^%s$" % pattern)
            for k, v in a["params"].items():
                if k not in a["pending"]:
                    self.assertEqual(r["params"].get(k), v, (a["summary"], k))

    def test_versions_rebuild_and_prune(self):
        t = self.template(versions={"vmid_min": 9100, "vmid_max": 9109, "keep": 1},
                          type="minimal")
        del t["vmid"]
        t["customize"]["debs"] = self.debs + [self.canary_deb("1.0")]
        cfg = self.config(t)
        n = len(self.sim.requests())
        self.provision(cfg)
        day = time.strftime("%Y%m%d", time.gmtime())
        conf = self.state()["vms"]["9100"]["conf"]
        self.assertEqual(conf["name"], "debian-tiny-%s-001" % day)
        # the metadata tags, and Proxmox's normalisation (lower case, unique, sorted) changes
        # nothing but their order
        sent = [r["params"]["tags"] for r in self.sim.requests()[n:]
                if r["method"] == "POST" and r["path"].endswith("/nodes/pve1/qemu")]
        self.assertEqual(len(sent), 1)
        want = {"phoenix", "phx-debian-tiny", "builder-phoenix", "built-" + day, "build-001",
                "os-debian-12", "type-minimal"}
        self.assertEqual(set(sent[0].split(";")), want)
        self.assertEqual(conf["tags"], ";".join(sorted(want)))
        for line in ("build-date: " + day, "build-number: 001", "os: debian-12",
                     "type: minimal"):
            self.assertIn(line + "\n", conf["description"])
        p = self.provision(cfg, check=0)
        self.assertIn("up to date", p.stdout)
        # a work dir left by a killed run is removed by the next customization
        import glob
        shadir = os.path.dirname(glob.glob(os.path.join(self.cache, "phoenix", "images", "*",
                                                        "tiny.img"))[0])
        stale = os.path.join(shadir, ".work-stale")
        os.makedirs(stale, exist_ok=True)
        open(os.path.join(stale, "debian-tiny.qcow2"), "w").close()
        # the next month's rebuild brings a newer phx-canary
        t["customize"]["debs"] = self.debs + [self.canary_deb("2.0")]
        cfg = self.config(t)
        self.provision(cfg, "--rebuild")
        self.assertFalse(os.path.exists(stale))
        vms = self.state()["vms"]
        self.assertEqual(vms["9101"]["conf"]["name"], "debian-tiny-%s-002" % day)
        self.assertIn("build-002", vms["9101"]["conf"]["tags"].split(";"))
        # what is inside each version, and what the rebuild changed
        self.assertRegex(vms["9101"]["conf"]["description"], r"\npackages: \d+ [0-9a-f]{64}\n")
        p = self.run_bin("--config", cfg, "--list-templates", "--packages", "debian-tiny",
                         "--output", "json")
        rows = json.loads(p.stdout)
        self.assertEqual([r["vmid"] for r in rows], [9100, 9101])
        self.assertGreater(rows[0]["packages"], 50)
        self.assertEqual(rows[1]["packages"], rows[0]["packages"])
        self.assertIsNone(rows[0]["changes"])
        self.assertEqual(rows[1]["changes"], [{"name": "phx-canary", "arch": "all",
                                               "change": "changed", "from": "1.0",
                                               "to": "2.0"}])
        v1 = vms["9100"]["conf"]["name"]
        p = self.run_bin("--config", cfg, "--diff", v1, "9101")
        self.assertEqual(p.stdout, "packages from 9100 '%s' to 9101 'debian-tiny-%s-002':\n"
                         "  changed  phx-canary:all 1.0 -> 2.0\n1 change\n" % (v1, day))
        # a list that does not match its record is refused, not shown
        # (the class shares one cache: other tests' builds keep their lists there too)
        shas = [re.search(r"\ncustomized-sha256: ([0-9a-f]{64})\n",
                          vms[v]["conf"]["description"]).group(1) for v in ("9100", "9101")]
        kept = [os.path.join(self.cache, "phoenix", "images", "packages", sha + ".tsv")
                for sha in shas]
        for path in kept:
            with open(path, "a") as f:
                f.write("intruder\t1\tall\n")
        p = self.run_bin("--config", cfg, "--diff", v1, "9101", check=1)
        self.assertIn("does not match its build record", p.stderr)
        # a linked clone of the old version keeps it alive through a prune
        st, reason, body = self.sim.api("POST", "/nodes/pve1/qemu/9100/clone",
                                        {"newid": "8100", "name": "user"})
        self.assertEqual(st, 200, reason)
        self.sim.wait_task(body["data"])
        p = self.run_bin("--config", cfg, "--prune", check=0)
        self.assertIn("kept 9100", p.stdout)
        self.assertIn("9100", self.state()["vms"])
        self.sim.api("DELETE", "/nodes/pve1/qemu/8100", {})
        for _ in range(50):
            if "8100" not in self.state()["vms"]:
                break
            time.sleep(0.2)
        p = self.run_bin("--config", cfg, "--prune", "--output", "json", check=0)
        self.assertEqual([(x["vmid"], x["action"]) for x in json.loads(p.stdout)],
                         [(9100, "removed")])
        self.assertEqual(sorted(self.state()["vms"]), ["9101"])
        p = self.run_bin("--config", cfg, "--list-templates", "--output", "json", check=0)
        listed = json.loads(p.stdout)
        self.assertEqual([(x["vmid"], x["series"]) for x in listed], [(9101, "debian-tiny")])


    def test_validate_tags_only_when_the_guest_answers(self):
        cfg = self.config(agent_timeout_s=3)
        self.provision(cfg)
        before = self.state()
        # no guest agent answers: the template stays, untagged, and the test VM is gone
        p = self.provision(cfg, "--validate", check=1)
        self.assertIn("did not answer within 3 s", p.stderr)
        self.assertIn("qemu-guest-agent", p.stderr)
        self.assertEqual(self.state(), before)
        # the agent answers (the simulator's stand-in agent; tests/pve-sim/test_qemu_mode.py
        # boots a real guest): cloud-init and sshd are asked, then the tag is set
        import threading

        def agent_up():
            for _ in range(200):
                if "100" in self.sim.control("GET", "/_sim/state")["vms"]:
                    self.sim.control("POST", "/_sim/agent/100",
                                     {"up": True, "exec_out": "status: done\n"})
                    return
                time.sleep(0.05)
        th = threading.Thread(target=agent_up)
        th.start()
        p = self.provision(cfg, "--validate", "--output", "json")
        th.join()
        self.assertTrue(json.loads(p.stdout)["validated"])
        st = self.state()
        self.assertIn("validated", st["vms"]["9000"]["conf"]["tags"].split(";"))
        self.assertEqual(sorted(st["vms"]), ["9000"])
        self.assertEqual([v["volid"] for v in st["volumes"]], [v["volid"] for v in before["volumes"]])
        execs = [r["params"].get("command") for r in self.sim.requests()
                 if r["path"].endswith("/agent/exec")]
        self.assertIn(["cloud-init", "status", "--wait"], execs)


class MultiNodeTest(ProvisionBase):
    """A template on every node of a 3-node cluster: one download and one customization feed
    a template per node (own VMID, same version name and build record); a rerun is a no-op;
    a node that fails rolls back only its own half-made template."""
    sim_opts = {"nodes": "pve1,pve2,pve3", "storage_config": [
        {"storage": "local", "type": "dir", "content": "images,import,iso,snippets,vztmpl"},
        {"storage": "nfs-import", "type": "nfs", "server": "10.0.0.1", "export": "/x",
         "content": "images,import"}]}

    def test_shared_import_storage_gets_one_upload_for_every_node(self):
        t = self.template(nodes="all", versions={"vmid_min": 9100, "vmid_max": 9109, "keep": 2})
        del t["vmid"]
        cfg = self.write_config({
            "proxmox": self.proxmox_section(),
            "defaults": {"storage": "local", "import_storage": "nfs-import",
                         "iso_storage": "local"},
            "templates": [t], "vms": []})
        n = len(self.sim.requests())
        p = self.provision(cfg, "--output", "json")
        recs = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual([(r["node"], r["template_id"]) for r in recs],
                         [("pve1", 9100), ("pve2", 9101), ("pve3", 9102)])
        reqs = self.sim.requests()[n:]
        ups = [r for r in reqs if r["path"].endswith("/upload")]
        self.assertEqual([u["path"].split("/")[4] for u in ups], ["pve1"], "one upload")
        creates = [r for r in reqs if r["method"] == "POST" and r["path"].endswith("/qemu")]
        self.assertEqual(len({c["params"]["scsi0"] for c in creates}), 1, "one import for all")
        self.assertIn("uploaded once for every node", p.stderr)
        st = self.state()
        self.assertEqual(sorted(st["vms"]), ["9100", "9101", "9102"])
        self.assertEqual([v for v in st["volumes"] if ":import/" in v["volid"]], [],
                         "the shared import volume is deleted once every node imported it")

    def test_one_build_a_template_on_every_node(self):
        t = self.template(nodes="all", versions={"vmid_min": 9100, "vmid_max": 9109, "keep": 2})
        del t["vmid"]
        cfg = self.config(t)
        p = self.provision(cfg, "--output", "json")
        recs = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual([(r["node"], r["template_id"], r["changed"]) for r in recs],
                         [("pve1", 9100, True), ("pve2", 9101, True), ("pve3", 9102, True)])
        self.assertEqual(len({r["template_name"] for r in recs}), 1, recs)
        self.assertEqual(len({r["sha256"] for r in recs}), 1, recs)
        self.assertEqual(self.fs.image_gets(), 1, "one download for every node")
        self.assertEqual(p.stderr.count("customize: appliance started"), 1, "one customization")
        vms = self.state()["vms"]
        self.assertEqual({v: vms[v]["node"] for v in vms},
                         {"9100": "pve1", "9101": "pve2", "9102": "pve3"})
        self.assertEqual([v for v in self.state()["volumes"] if ":import/" in v["volid"]], [])

        n = len(self.sim.requests())
        p = self.provision(cfg)
        self.assertEqual(p.stdout.count("up to date"), 3, p.stdout)
        self.assertEqual(changing(self.sim.requests()[n:]), [])

        # a rebuild whose upload to pve2 fails: pve1 and pve3 get the new version, pve2 keeps
        # its old one and nothing half-made. The nodes build at the same time and choose
        # VMIDs in node order, so pve2's 9104 was taken when pve3 chose 9105
        n = len(self.sim.requests())
        self.sim.control("POST", "/_sim/fault", {"kind": "http", "method": "POST",
                                                 "path": "/nodes/pve2/storage/local/upload$",
                                                 "status": 500, "message": "disk full"})
        p = self.provision(cfg, "--rebuild", check=1)
        self.assertIn("template 'debian-tiny' failed on 1 of 3 nodes", p.stderr)
        self.assertIn("node 'pve2'", p.stderr)
        self.assertIn("disk full", p.stderr)
        vms = self.state()["vms"]
        self.assertEqual(sorted((vms[v]["node"], v) for v in vms),
                         [("pve1", "9100"), ("pve1", "9103"), ("pve2", "9101"),
                          ("pve3", "9102"), ("pve3", "9105")])
        self.assertEqual([v for v in self.state()["volumes"] if ":import/" in v["volid"]], [])
        # one upload per node, each to its own volume name
        ups = [r for r in self.sim.requests()[n:] if r["path"].endswith("/upload")]
        self.assertEqual(len(ups), 3)
        self.assertEqual(self.fs.image_gets(), 1, "--rebuild reused the cached image")


class ProvisionPreflightTest(OrchestratorTest):
    """Preflight failures happen before anything is downloaded or created."""

    def config(self):
        return self.write_config({
            "proxmox": self.proxmox_section(),
            "defaults": {"storage": "local"},
            "templates": [{"name": "t", "vmid": 9000, "image_url": "http://127.0.0.1:9/x.img",
                           "sha256": "0" * 64, "customize": {"packages": []}}],
            "vms": [],
        })


class RunLockTest(ProvisionPreflightTest):
    def test_overlapping_run_is_refused_with_the_holder(self):
        import fcntl
        env = self.env()
        path = os.path.join(env["XDG_CACHE_HOME"], "phoenix", "images", "orchestrator.lock")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            f.write("4242\n")
            f.flush()
            # 75 (EX_TEMPFAIL): a timer or CI can tell "try later" from a failure
            p = self.run_bin("--config", self.config(), "--provision-template", env=env,
                             check=75)
        self.assertIn("another orchestrator run (pid 4242) holds the lock", p.stderr)
        self.assertEqual([r for r in self.sim.requests() if not r.get("control")], [])

    def test_wait_lock_waits_for_the_holder(self):
        import fcntl
        import threading
        env = self.env()
        path = os.path.join(env["XDG_CACHE_HOME"], "phoenix", "images", "orchestrator.lock")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        f = open(path, "w")
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        f.write("4242\n")
        f.flush()
        # the holder finishes a moment after the run starts waiting
        threading.Timer(1.5, f.close).start()
        p = self.run_bin("--config", self.config(), "--provision-template", "--dry-run",
                         "--wait-lock", "60", env=env, check=0)
        self.assertIn("holds the lock", p.stderr)
        self.assertIn("waiting up to 60 s", p.stderr)
        self.assertIn("Plan:", p.stdout)
        p = self.run_bin("--config", self.config(), "--check", "--wait-lock", "5", check=2)
        self.assertIn("--wait-lock only goes with deploying VMs, --provision-template, --prune, "
                      "--destroy, --recover or --remove-template", p.stderr)


class OldVersionTest(ProvisionPreflightTest):
    sim_opts = {"pve_version": "8.3.2"}

    def test_old_proxmox_is_refused(self):
        p = self.run_bin("--config", self.config(), "--provision-template", check=1)
        self.assertIn("Proxmox VE 8.3.2 is too old", p.stderr)
        self.assertFalse(any(r["method"] != "GET" for r in self.sim.requests()
                             if not r.get("control")))


class MissingPrivilegeTest(ProvisionPreflightTest):
    sim_opts = {"token_privs": "phoenix@pve!ci=/vms:VM.Audit,VM.Config.Disk;"
                               "/storage:Datastore.Audit"}

    def test_every_missing_privilege_is_listed(self):
        p = self.run_bin("--config", self.config(), "--provision-template", check=1)
        for priv in ("VM.Allocate", "VM.Config.CPU", "Datastore.AllocateTemplate",
                     "Datastore.AllocateSpace"):
            self.assertIn(priv, p.stderr)
        self.assertFalse(any(r["method"] != "GET" for r in self.sim.requests()
                             if not r.get("control")))


class TemplateNodeTest(ProvisionPreflightTest):
    """A template's `node` decides where it is built, not the default node."""
    sim_opts = {"nodes": "pve1,pve2"}

    def test_template_node_is_where_the_plan_builds(self):
        with open(self.config(), encoding="utf-8") as f:
            cfg = json.load(f)
        cfg["templates"][0]["node"] = "pve2"
        cfg["proxmox"]["node"] = "pve1"
        path = self.write_config(cfg)
        p = self.run_bin("--config", path, "--provision-template", "--dry-run", "--output",
                         "json", check=0)
        plan = json.loads(p.stdout)
        self.assertTrue(plan["actions"])
        for a in plan["actions"]:
            self.assertTrue(a["path"].startswith("/nodes/pve2/"), a["path"])
        self.assertIn("/nodes/pve2/storage", [r["path"].replace("/api2/json", "")
                                              for r in self.sim.requests()])


ALL_BUT_CDROM = ("VM.Allocate,VM.Audit,VM.Clone,VM.Config.CPU,VM.Config.Cloudinit,VM.Config.Disk,"
                 "VM.Config.HWType,VM.Config.Memory,VM.Config.Network,VM.Config.Options,"
                 "VM.PowerMgmt,VM.GuestAgent.Audit,VM.GuestAgent.Unrestricted,"
                 "Datastore.Allocate,Datastore.AllocateSpace,Datastore.AllocateTemplate,"
                 "Datastore.Audit,Sys.Audit,SDN.Use")


class ValidateNeedsCdromTest(ProvisionPreflightTest):
    """--validate attaches the test VM's seed as a CD-ROM, which qemu-server checks with
    VM.Config.CDROM (API2/Qemu.pm $check_drive_perms): a token without it must learn so in
    preflight, not after a build, clone and upload."""
    sim_opts = {"token_privs": "phoenix@pve!ci=/:" + ALL_BUT_CDROM}

    def test_missing_cdrom_privilege_fails_before_any_change(self):
        p = self.run_bin("--config", self.config(), "--provision-template", "--validate",
                         check=1)
        self.assertIn("VM.Config.CDROM", p.stderr)
        self.assertFalse(any(r["method"] != "GET" for r in self.sim.requests()
                             if not r.get("control")))
        p = self.run_bin("--config", self.config(), "--provision-template", "--dry-run",
                         check=0)
        self.assertNotIn("VM.Config.CDROM", p.stderr, "without --validate it is not needed")


if __name__ == "__main__":
    unittest.main()
