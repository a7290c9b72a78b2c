"""--provision-template for a container template (kind "lxc") end to end: the real binary,
the simulator over HTTPS, the tiny test root file system (scripts/build-test-rootfs.sh --tiny)
served over HTTP with a SHA256SUMS, and ONE real libguestfs customization for the whole class
(setUpClass): the archive is unpacked, a user is made, container steps and hygiene run, and it
is packed again as .tar.zst. The tests then read that archive offline and check what the
server got: the vztmpl upload, the container, its conversion, the rerun, the rollback, and
--validate against the fake hypervisor's `interfaces` (no address: untagged, nothing left).

RealContainerTest does it for real (`--lxc-real`, root only): the FULL test rootfs, --validate
starting a clone, a container deployed from the archive, SSH in as the template's user.
"""
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import unittest

from phxtest import REPO, OrchestratorTest
from test_provision import FileServer, changing

# a well-formed key (cfg_check_ssh_key decodes it): type and blob agree
SSH_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJx0SFTHvmGZQPBEmZJC7NQHYMXTN2s7h9jfpi5k0KgY "
           "ada@laptop")
# crypt(3) SHA-512 of 'changeme' (never a plaintext in a config)
PW_HASH = ("$6$phxsalt$Qm3Mc3GCPq3m1sKFcVtKq3yYb4I0qJYQ9WdPzI0oXbHfV6QwS8V1R3H3p5Hn7Wm"
           "LQ0ZJtB9sN2c0m1H6N6x9v/")

STORAGES = [
    {"storage": "local", "type": "dir", "content": "iso,vztmpl,backup,import,images"},
    {"storage": "local-lvm", "type": "lvmthin", "vgname": "pve", "thinpool": "data",
     "content": "images,rootdir"},
]
# three nodes whose archives go to one NFS export that every node sees
CLUSTER = {"nodes": "pve1,pve2,pve3", "storage_config": STORAGES + [
    {"storage": "nfs-tmpl", "type": "nfs", "server": "10.0.0.1", "export": "/tmpl",
     "content": "vztmpl"}]}


def with_sim(**opts):
    """A test of the class that needs another simulator than the class's (the class's one
    customization is what it shares with the others)."""
    def mark(f):
        f.sim_opts = opts
        return f
    return mark


def build_tiny_rootfs():
    p = subprocess.run([os.path.join(REPO, "scripts", "build-test-rootfs.sh"), "--tiny"],
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        return None, p.stderr[-2000:]
    return p.stdout.strip(), None


class ProvisionContainerTest(OrchestratorTest):
    sim_opts = {"storage_config": STORAGES}
    built = None  # (stdout, stderr) of the class's one real build

    @classmethod
    def setUpClass(cls):
        rootfs, why = build_tiny_rootfs()
        if not rootfs:
            raise unittest.SkipTest("cannot build the test root file system: " + (why or ""))
        cls.cls_tmp = tempfile.mkdtemp(prefix="phx-provct-")
        srv = os.path.join(cls.cls_tmp, "srv")
        os.makedirs(srv)
        shutil.copyfile(rootfs, os.path.join(srv, "rootfs.tar.zst"))
        subprocess.run("sha256sum --binary rootfs.tar.zst > SHA256SUMS", shell=True, cwd=srv,
                       check=True)
        cls.fs = FileServer(srv, os.path.join(cls.cls_tmp, "files.jsonl"))
        cls.cache = os.path.join(cls.cls_tmp, "cache")

    @classmethod
    def tearDownClass(cls):
        cls.fs.stop()
        shutil.rmtree(cls.cls_tmp, True)

    def setUp(self):
        self.sim_opts = getattr(getattr(self, self._testMethodName), "sim_opts", self.sim_opts)
        super().setUp()

    def env(self, **extra):
        env = super().env(**extra)
        env["XDG_CACHE_HOME"] = self.cache
        return env

    def template(self, **over):
        t = {
            "name": "debian-ct",
            "kind": "lxc",
            "vmid": 9500,
            "os": "debian-12",
            "image_url": self.fs.url + "/rootfs.tar.zst",
            "checksum_url": self.fs.url + "/SHA256SUMS",
            "customize": {
                "files": [{"path": "/etc/motd", "content": "phoenix container\n"}],
                "users": [{"name": "ada", "uid": 1500, "gid": 1500, "groups": ["adm"],
                           "ssh_authorized_keys": [SSH_KEY], "password_hash": PW_HASH,
                           "git_name": "Ada Lovelace", "git_email": "ada@example.com"}],
            },
            # the appliance has no network in tests: ifupdown would need a mirror
            "container": {"storage": "local-lvm", "rootfs_gb": 2, "cores": 1,
                          "memory_mb": 256, "swap_mb": 0, "features": {"nesting": True},
                          "ifupdown": False},
        }
        t.update(over)
        return t

    def config(self, *templates, **defaults):
        return self.write_config({
            "proxmox": self.proxmox_section(),
            "defaults": dict({"storage": "local-lvm", "template_storage": "local"}, **defaults),
            "templates": list(templates) or [self.template()],
        })

    def state(self):
        d = self.sim.control("GET", "/_sim/state")
        return {k: d[k] for k in ("vms", "volumes")}

    def provision(self, cfg, *args, check=0):
        return self.run_bin("--config", cfg, "--provision-template", *args, check=check)

    def customized_archive(self):
        found = []
        for root, _, files in os.walk(self.cache):
            found += [os.path.join(root, f) for f in files
                      if f.startswith("customized-") and f.endswith(".tar.zst")]
        self.assertEqual(len(found), 1, found)
        return found[0]

    def test_build_check_offline_rerun_noop_and_rollback(self):
        cfg = self.config()
        p = self.provision(cfg)
        self.assertRegex(p.stdout, r"debian-ct: built template 9500 'debian-ct'")

        # the server: the archive as vztmpl content, a container template made from it
        st = self.state()
        vols = [v["volid"] for v in st["volumes"]]
        self.assertIn("local:vztmpl/debian-ct.tar.zst", vols)
        ct = st["vms"]["9500"]
        conf = ct["conf"]
        self.assertEqual(conf.get("template"), 1)
        self.assertEqual(conf["hostname"], "debian-ct")
        self.assertEqual(conf["unprivileged"], 1)
        self.assertEqual(conf["features"], "nesting=1")
        self.assertTrue(conf["rootfs"].startswith("local-lvm:basevol-9500-disk-0")
                        or conf["rootfs"].startswith("local-lvm:base-9500-disk-0"),
                        conf["rootfs"])
        self.assertIn("bridge=vmbr0", conf["net0"])
        self.assertIn("ip=dhcp", conf["net0"])
        self.assertIn("archive: local:vztmpl/debian-ct.tar.zst\n", conf["description"])
        self.assertRegex(conf["description"], r"\npackages: \d+ [0-9a-f]{64}\n")
        self.assertIn("phoenix", conf["tags"].split(";"))
        reqs = self.sim.requests()
        create = [r for r in reqs if r["method"] == "POST" and r["path"] == "/api2/json/nodes/pve1/lxc"]
        self.assertEqual(len(create), 1)
        self.assertEqual(create[0]["params"]["rootfs"], "local-lvm:2")
        self.assertNotIn("password", create[0]["params"])
        uploads = [r for r in reqs if r["path"].endswith("/upload")]
        self.assertEqual(len(uploads), 1)

        # the archive's contents, offline
        archive = self.customized_archive()
        with tarfile.open(archive, "r:*") if not archive.endswith(".zst") else \
                self.open_zst(archive) as tf:
            names = set(tf.getnames())
            self.assertNotIn("./etc/machine-id", [n for n in names
                                                  if tf.getmember(n).size > 0])
            self.assertFalse([n for n in names if re.match(r"\./etc/ssh/ssh_host_.*_key", n)])
            passwd = self.member(tf, "./etc/passwd")
            self.assertIn("ada:x:1500:1500::/home/ada:/bin/bash", passwd)
            shadow = self.member(tf, "./etc/shadow")
            ada = [l for l in shadow.splitlines() if l.startswith("ada:")][0].split(":")
            self.assertEqual(ada[1], PW_HASH)
            self.assertEqual(ada[2], "0", "password not expired (chage -d 0)")
            self.assertIn("adm:x:4:ada", self.member(tf, "./etc/group").replace(
                "adm:x:4:syslog,ada", "adm:x:4:ada"))
            keys = tf.getmember("./home/ada/.ssh/authorized_keys")
            self.assertEqual((keys.uid, keys.gid, keys.mode & 0o777), (1500, 1500, 0o600))
            self.assertEqual(self.member(tf, "./home/ada/.ssh/authorized_keys"), SSH_KEY + "\n")
            self.assertIn('name = "Ada Lovelace"', self.member(tf, "./home/ada/.gitconfig"))
            self.assertIn('email = "ada@example.com"', self.member(tf, "./home/ada/.gitconfig"))
            self.assertEqual(self.member(tf, "./etc/motd"), "phoenix container\n")
            self.assertIn("./etc/systemd/system/multi-user.target.wants/"
                          "phoenix-ssh-host-keys.service", names)
            self.assertNotIn("./lost+found", names)
            self.assertEqual(self.member(tf, "./etc/machine-id"), "")
        with open(archive + ".packages", encoding="utf-8") as f:
            pkgs = f.read()
        self.assertRegex(pkgs, r"(?m)^systemd\t")

        # rerun: nothing sent
        before = len(changing(self.sim.requests()))
        p = self.provision(cfg)
        self.assertIn("debian-ct: up to date (template 9500)", p.stdout)
        self.assertEqual(len(changing(self.sim.requests())), before)

        # an injected fault at each step of a new version rolls back everything it made
        versioned = self.template(name="debian-ctv",
                                  versions={"vmid_min": 9600, "vmid_max": 9609})
        del versioned["vmid"]
        vcfg = self.config(versioned)
        cases = [
            ({"kind": "task", "type": "imgcopy", "message": "checksum mismatch"},
             "upload the customized root file system"),
            ({"kind": "task", "type": "vzcreate", "message": "storage full"},
             "create container 9600"),
            ({"kind": "task", "type": "vztemplate", "message": "template failed"},
             "convert container 9600 to a template"),
        ]
        for fault, step in cases:
            with self.subTest(step=fault["type"]):
                before = self.state()
                self.sim.control("POST", "/_sim/fault", fault)
                p = self.provision(vcfg, check=1)
                self.assertIn(step, p.stderr)
                self.assertIn(fault["message"], p.stderr)
                self.assertEqual(self.state(), before, "rollback left something behind")
                self.sim.control("DELETE", "/_sim/faults")

        # versions: a changed upstream (its recorded sha256 made to differ) builds a second
        # version from the cached archive (no second appliance run); --prune then removes the
        # older one and its archive
        versioned["versions"] = {"vmid_min": 9600, "vmid_max": 9609, "keep": 1,
                                 "rebuild_on_change": True}
        # without nesting, systemd > 241 makes vzcreate end 'WARNINGS: 1' (pc-ct Setup/Base.pm
        # check_systemd_nesting): a success with a warning, as pve-common's fork_worker means it
        versioned["container"] = dict(versioned["container"], features={})
        vcfg = self.config(versioned)
        p = self.provision(vcfg)
        self.assertRegex(p.stderr, r"task UPID:pve1:[^ ]*:vzcreate:9600:[^ ]* finished with "
                                   r"WARNINGS: 1")
        first = self.state()["vms"]["9600"]["conf"]
        self.assertNotIn("features", first)
        self.sim.control("POST", "/_sim/vm/9600", {"conf": {"description": re.sub(
            r"(?m)^sha256: .*$", "sha256: " + "0" * 64, first["description"])}})
        p = self.provision(vcfg)
        self.assertRegex(p.stdout, r"built template 9601 'debian-ctv-\d{8}-002'")
        old_archive = "local:vztmpl/%s.tar.zst" % first["hostname"]
        new_archive = old_archive.replace("-001.tar.zst", "-002.tar.zst")
        self.assertIn(new_archive, [v["volid"] for v in self.state()["volumes"]])
        # what changed between the versions: nothing, they come from one customization
        p = self.run_bin("--config", vcfg, "--diff", "9600", "9601", check=0)
        self.assertEqual(p.stdout, "packages from 9600 '%s' to 9601 '%s':\n0 changes\n" % (
            first["hostname"], first["hostname"].replace("-001", "-002")))
        p = self.run_bin("--config", vcfg, "--prune", check=0)
        self.assertIn("removed 9600", p.stdout)
        st = self.state()
        self.assertNotIn("9600", st["vms"])
        self.assertIn("9601", st["vms"])
        vols = [v["volid"] for v in st["volumes"]]
        self.assertNotIn(old_archive, vols)
        self.assertIn(new_archive, vols)

    def test_dry_run_plans_and_the_worked_example_checks(self):
        p = self.provision(self.config(), "--dry-run", "--validate")
        self.assertIn("upload the customized root file system as "
                      "'local:vztmpl/debian-ct.tar.zst'", p.stdout)
        self.assertIn("create container 9500 'debian-ct'", p.stdout)
        self.assertIn("convert container 9500 to a template", p.stdout)
        self.assertIn("--validate then starts a throwaway clone of container template 9500, "
                      "waits for an IPv4 address on its eth0 and tags the template 'validated'",
                      p.stdout)
        self.assertEqual(changing(self.sim.requests()), [])
        example = os.path.join(REPO, "docs", "examples", "lxc-golden.json")
        p = self.run_bin("--config", example, "--check", check=0,
                         env=self.env(PVE_TOKEN_SECRET="x"))
        self.assertIn("container template (unprivileged, nesting)", p.stdout)

    def test_validate_tags_only_when_eth0_gets_an_address(self):
        cfg = self.config(agent_timeout_s=3)
        self.provision(cfg)
        before = self.state()
        # the clone's network never comes up (its interfaces show lo alone, as a container
        # without ifupdown does): the template stays untagged and the clone is gone
        import threading

        def network_down():
            for _ in range(400):
                if "100" in self.sim.control("GET", "/_sim/state")["vms"]:
                    self.sim.control("POST", "/_sim/agent/100", {"interfaces": [
                        {"name": "lo", "hardware-address": "00:00:00:00:00:00",
                         "ip-addresses": [{"ip-address-type": "inet",
                                           "ip-address": "127.0.0.1", "prefix": 8}]}]})
                    return
                time.sleep(0.02)
        th = threading.Thread(target=network_down)
        th.start()
        p = self.provision(cfg, "--validate", check=1)
        th.join()
        self.assertIn("validate container template 9500: container 100 started but eth0 got "
                      "no IPv4 address within 3 s: is ifupdown (or another network manager "
                      "reading /etc/network/interfaces) in the template?", p.stderr)
        self.assertEqual(self.state(), before, "the test container was left behind")
        clones = [r for r in self.sim.requests() if r["path"].endswith("/lxc/9500/clone")]
        self.assertEqual([(c["params"]["newid"], c["params"]["full"]) for c in clones],
                         [("100", "0")], "linked on lvmthin")
        # the simulator's DHCP answer on eth0: validated, tagged, nothing else left
        p = self.provision(cfg, "--validate", "--output", "json")
        self.assertTrue(json.loads(p.stdout)["validated"])
        self.assertIn("container 100 is running, eth0 has 10.", p.stderr)
        st = self.state()
        self.assertIn("validated", st["vms"]["9500"]["conf"]["tags"].split(";"))
        self.assertEqual(sorted(st["vms"]), ["9500"])
        self.assertEqual(st["volumes"], before["volumes"])
        # tagged: a rerun does not start another clone
        n = len(self.sim.requests())
        p = self.provision(cfg, "--validate")
        self.assertIn("template 9500 is already validated", p.stderr)
        self.assertFalse([r for r in self.sim.requests()[n:] if r["path"].endswith("/clone")])

    def test_a_killed_build_is_undone_by_the_next_run(self):
        from test_recovery import journals, kill_a_build
        cfg = self.config()
        self.provision(cfg)  # the customized archive is cached: later builds are quick

        def api_ok(method, path):
            st, _, body = self.sim.api(method, path)
            self.assertEqual(st, 200, body)
            if isinstance(body.get("data"), str) and body["data"].startswith("UPID:"):
                self.sim.wait_task(body["data"])
        built = self.state()
        for path_re, task in ((r"/nodes/pve1/lxc$", "vzcreate"),
                              (r"/lxc/9500/template$", "vztemplate")):
            with self.subTest(task=task):
                api_ok("DELETE", "/nodes/pve1/lxc/9500")
                api_ok("DELETE", "/nodes/pve1/storage/local/content/"
                                 "local:vztmpl/debian-ct.tar.zst")
                self.sim.control("POST", "/_sim/task-duration", {"type": task, "seconds": 3})
                kill_a_build(self, cfg, path_re, len(self.sim.requests()), self.cache)
                self.sim.control("POST", "/_sim/task-duration", {"type": task, "seconds": 0.05})
                p = self.provision(cfg)
                self.assertIn("recover: cleaned up", p.stderr)
                self.assertIn("built template 9500", p.stdout)
                st = self.state()
                self.assertEqual(sorted(st["vms"]), ["9500"])
                self.assertEqual(st["vms"]["9500"]["conf"].get("template"), 1)
                self.assertEqual(sorted(v["volid"] for v in st["volumes"]),
                                 sorted(v["volid"] for v in built["volumes"]),
                                 "one archive and the template's volume, nothing half-made")
                self.assertEqual(journals(self.cache), [])

    @with_sim(**CLUSTER)
    def test_shared_template_storage_gets_one_archive_for_every_node(self):
        t = self.template(name="debian-ctc", nodes="all",
                          versions={"vmid_min": 9700, "vmid_max": 9709, "keep": 2})
        del t["vmid"]
        cfg = self.config(t, template_storage="nfs-tmpl")
        p = self.provision(cfg, "--output", "json")
        recs = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual([(r["node"], r["template_id"]) for r in recs],
                         [("pve1", 9700), ("pve2", 9701), ("pve3", 9702)])
        archive = "nfs-tmpl:vztmpl/%s.tar.zst" % recs[0]["template_name"]

        def check_one_archive_for_all(reqs, nodes, uploader):
            ups = [r["path"].split("/")[4] for r in reqs if r["path"].endswith("/upload")]
            self.assertEqual(ups, [uploader], "one upload")
            creates = [r for r in reqs if r["method"] == "POST" and
                       re.search(r"/nodes/pve\d/lxc$", r["path"])]
            self.assertEqual(sorted((c["path"].split("/")[4], c["params"]["ostemplate"])
                                    for c in creates), [(n, archive) for n in nodes])
        check_one_archive_for_all(self.sim.requests(), ["pve1", "pve2", "pve3"], "pve1")
        self.assertIn("'nfs-tmpl' uploaded once for every node (shared storage), by node 'pve1'",
                      p.stderr)
        st = self.state()
        self.assertEqual([v["volid"] for v in st["volumes"] if ":vztmpl/" in v["volid"]],
                         [archive], "the archive stays, once, for containers made from it")
        for vmid in ("9700", "9701", "9702"):
            self.assertIn("archive: %s\n" % archive, st["vms"][vmid]["conf"]["description"])

        # a new version whose container cannot be made on pve1, the node that uploaded the
        # archive: pve2 and pve3 are built from that archive and it stays; pve1 keeps its old
        # version and nothing half-made (the upload belonged to the template, not to pve1)
        self.sim.control("POST", "/_sim/fault", {
            "kind": "http", "method": "POST", "path": "/nodes/pve1/lxc$", "status": 500,
            "message": "pve1 is out of thin pool space"})
        n = len(self.sim.requests())
        p = self.provision(cfg, "--rebuild", "--output", "json", check=1)
        self.assertIn("template 'debian-ctc' failed on 1 of 3 nodes", p.stderr)
        self.assertIn("pve1 is out of thin pool space", p.stderr)
        recs = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual([(r["node"], r["template_id"]) for r in recs],
                         [("pve2", 9704), ("pve3", 9705)])
        old, archive = archive, "nfs-tmpl:vztmpl/%s.tar.zst" % recs[0]["template_name"]
        check_one_archive_for_all(self.sim.requests()[n:], ["pve1", "pve2", "pve3"], "pve1")
        st = self.state()
        self.assertEqual(sorted((st["vms"][v]["node"], v) for v in st["vms"]),
                         [("pve1", "9700"), ("pve2", "9701"), ("pve2", "9704"),
                          ("pve3", "9702"), ("pve3", "9705")])
        self.assertEqual(sorted(v["volid"] for v in st["volumes"] if ":vztmpl/" in v["volid"]),
                         sorted([old, archive]))

        # no node gets its container: the new archive is of no use and goes too
        before = self.state()
        self.sim.control("POST", "/_sim/fault", {
            "kind": "http", "method": "POST", "path": "/nodes/pve\\d/lxc$", "status": 500,
            "message": "no space anywhere", "count": 3})
        p = self.provision(cfg, "--rebuild", check=1)
        self.assertIn("failed on 3 of 3 nodes", p.stderr)
        self.assertEqual(self.state(), before, "a build that made nothing left something")

        # removal: an archive goes with the last template built from it, once
        def archives():
            return sorted(v["volid"] for v in self.state()["volumes"] if ":vztmpl/" in v["volid"])
        t["versions"]["keep"] = 1
        cfg = self.config(t, template_storage="nfs-tmpl")
        p = self.run_bin("--config", cfg, "--prune", "--dry-run", check=0)
        self.assertIn("the archive '%s' stays: container template 9700 on 'pve1' was built "
                      "from it too" % old, p.stdout)
        p = self.run_bin("--config", cfg, "--prune", check=0)
        self.assertEqual(sorted(re.findall(r"removed (\d+)", p.stdout)), ["9701", "9702"])
        self.assertNotIn("not its archive", p.stderr)
        self.assertEqual(archives(), sorted([old, archive]))
        self.run_bin("--config", cfg, "--remove-template", "9704", check=0)
        self.assertEqual(archives(), sorted([old, archive]), "9705 on pve3 was built from it")
        for vmid in ("9705", "9700"):
            self.run_bin("--config", cfg, "--remove-template", vmid, check=0)
        self.assertEqual(archives(), [])
        self.assertEqual(self.state()["vms"], {})

    @staticmethod
    def open_zst(path):
        raw = subprocess.run(["zstd", "-q", "-d", "-c", path], check=True,
                             capture_output=True).stdout
        import io
        return tarfile.open(fileobj=io.BytesIO(raw), mode="r:")

    @staticmethod
    def member(tf, name):
        return tf.extractfile(tf.getmember(name)).read().decode()


import test_lxc_real  # noqa: E402  (tests/pve-sim: skip reasons, the cached ifupdown .deb)

REAL_STORAGES = [{"storage": "local", "type": "dir",
                  "content": "iso,vztmpl,backup,import,images,rootdir"}]


@unittest.skipIf(test_lxc_real.SKIP, test_lxc_real.SKIP or "")
class RealContainerTest(OrchestratorTest):
    """Our container template, for real (`pve_sim.py --lxc-real`): built from the FULL test
    rootfs with a user (uid, groups, key, password to change) and ifupdown from a local .deb,
    validated by a real start of its clone (full: a dir storage has no linked clones), then one
    container created from its archive (root's key) with a static net0 and DHCP on net1,
    started, its address reported; SSH as the user with the key proves the rest from inside,
    and --destroy leaves no rootfs, mount, veth or lxc directory."""

    sim_opts = {"storage_config": REAL_STORAGES, "lxc_real": True, "task_duration": 0.02}

    @classmethod
    def setUpClass(cls):
        p = subprocess.run([os.path.join(REPO, "scripts", "build-test-rootfs.sh")],
                           capture_output=True, text=True, timeout=1800)
        if p.returncode != 0:
            raise unittest.SkipTest("scripts/build-test-rootfs.sh failed: " + p.stderr[-300:])
        cls.deb, why = test_lxc_real.ifupdown_deb()
        if why:
            raise unittest.SkipTest(why)
        cls.cls_tmp = tempfile.mkdtemp(prefix="phx-provct-real-")
        srv = os.path.join(cls.cls_tmp, "srv")
        os.makedirs(srv)
        try:  # the file server follows no symlinks
            os.link(p.stdout.strip(), os.path.join(srv, "rootfs.tar.zst"))
        except OSError:
            shutil.copyfile(p.stdout.strip(), os.path.join(srv, "rootfs.tar.zst"))
        subprocess.run("sha256sum --binary rootfs.tar.zst > SHA256SUMS", shell=True, cwd=srv,
                       check=True)
        cls.fs = FileServer(srv, os.path.join(cls.cls_tmp, "files.jsonl"))
        # The customized archive (140 s of TCG for the full rootfs) is kept between runs like
        # the test images: the orchestrator's own cache, keyed by the source's sha256 and the
        # recipe, which holds this key pair (made once) and the build's other inputs. A new
        # rootfs starts a new cache. Runs in other worktrees share it under the lock.
        key = hashlib.sha256(("%s %d" % (p.stdout.strip(), os.stat(
            p.stdout.strip()).st_mtime_ns)).encode()).hexdigest()[:16]
        top = os.path.join(os.path.dirname(test_lxc_real.cache_root()), "provct-real")
        os.makedirs(top, exist_ok=True)
        cls.lock = open(os.path.join(top, ".lock"), "w")
        fcntl.flock(cls.lock, fcntl.LOCK_EX)
        for old in os.listdir(top):
            if old not in (".lock", key):
                shutil.rmtree(os.path.join(top, old), ignore_errors=True)
        cls.cache = os.path.join(top, key)
        os.makedirs(cls.cache, exist_ok=True)
        cls.key = os.path.join(cls.cache, "id_ed25519")
        if not os.path.exists(cls.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", cls.key,
                            "-C", "ada@phx-test"], check=True)

    @classmethod
    def tearDownClass(cls):
        cls.fs.stop()
        cls.lock.close()
        shutil.rmtree(cls.cls_tmp, True)

    def setUp(self):
        super().setUp()
        # an unprivileged container's root (host uid 100000) walks down to its rootfs
        os.chmod(self.tmp, 0o711)
        self.addCleanup(self.unmount_leftovers)

    def env(self, **extra):
        env = super().env(**extra)
        env["XDG_CACHE_HOME"] = self.cache
        return env

    def unmount_leftovers(self):
        # a simulator that died mid-way may leave rootfs mounts: never rmtree through them
        with open("/proc/self/mounts") as f:
            mounts = [line.split()[1] for line in f]
        for m in reversed(mounts):
            if m.startswith(self.sim.state_dir + "/"):
                subprocess.run(["umount", "-l", m])

    def ssh(self, user, ip, cmd, tty=False):
        args = ["ssh", "-i", self.key, "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                "-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=" + self.known,
                "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"]
        return subprocess.run(args + ["%s@%s" % (user, ip), cmd], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=60)

    def first_login(self, ip, old, new):
        """ada's first login: sshd (PAM: the password is expired) runs passwd on a terminal.
        A pseudo-terminal from the standard library (pty), since CI has no pexpect."""
        import pty
        import select
        pid, fd = pty.fork()
        if pid == 0:
            os.execvp("ssh", ["ssh", "-tt", "-i", self.key, "-o", "BatchMode=yes",
                              "-o", "UserKnownHostsFile=" + self.known,
                              "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
                              "ada@" + ip])
        out, buf = [], ""
        end = time.monotonic() + 60

        def read_until(pattern):
            nonlocal buf
            while time.monotonic() < end:
                m = re.search(pattern, buf) if pattern else None
                if m:
                    out.append(buf[:m.end()])
                    buf = buf[m.end():]
                    return True
                ready, _, _ = select.select([fd], [], [], 1)
                if not ready:
                    continue
                try:
                    data = os.read(fd, 4096)
                except OSError:  # EIO: the other side closed
                    data = b""
                if not data:
                    out.append(buf)
                    return pattern is None
                buf += data.decode("utf-8", "replace")
            self.fail("no %r from ssh within 60 s; got: %r" % (pattern, "".join(out) + buf))

        try:
            for prompt, answer in ((r"[Cc]urrent password: ", old), (r"New password: ", new),
                                   (r"Retype new password: ", new)):
                read_until(prompt)
                os.write(fd, (answer + "\n").encode())
            read_until(None)
        finally:
            os.close(fd)
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
        return "".join(out)

    def test_our_template_validated_deployed_and_logged_into(self):
        t_all = time.monotonic()
        base = random.randrange(20000, 99000, 10)  # VMIDs name veth pairs host-wide
        tpl, ctid = base + 1, base + 2
        self.known = os.path.join(self.tmp, "known_hosts")
        with open(self.key + ".pub") as f:
            pub = f.read().strip()
        old_pw, new_pw = "phx-Old-pw-1", "phx-New-pw-2"
        pw_hash = subprocess.run(["openssl", "passwd", "-6", "-salt", "phxrealct", "-stdin"],
                                 input=old_pw, capture_output=True, text=True,
                                 check=True).stdout.strip()
        bridges = self.sim.control("GET", "/_sim/state")["lxc_bridges"]
        gw = bridges["vmbr0"]["cidr"].split("/")[0]
        static = re.sub(r"\.\d+$", ".60", gw)
        cfg = self.write_config({
            "proxmox": self.proxmox_section(),
            "defaults": {"storage": "local", "template_storage": "local", "bridge": "vmbr0",
                         "agent_timeout_s": 120},
            "templates": [{
                "name": "debian-ct", "kind": "lxc", "vmid": tpl, "os": "debian-12",
                "image_url": self.fs.url + "/rootfs.tar.zst",
                "checksum_url": self.fs.url + "/SHA256SUMS",
                "customize": {
                    "debs": [self.deb],
                    "users": [{"name": "ada", "uid": 1500, "gid": 1500,
                               "groups": ["adm", "users"], "ssh_authorized_keys": [pub],
                               "password_hash": pw_hash}],
                },
                # ifupdown comes from the .deb above: the appliance has no network
                "container": {"storage": "local", "rootfs_gb": 2, "cores": 1,
                              "memory_mb": 512, "swap_mb": 0, "features": {"nesting": True},
                              "ifupdown": False},
            }],
            "containers": [{
                "vmid": ctid, "name": "ct-ada", "clone_from_template": "debian-ct",
                # root's key: Proxmox takes it at creation only, so this is the
                # create-from-archive path (new host keys from pve-container first)
                "ssh_public_keys": [pub], "memory_mb": 512,
                "networks": [{"ip": static + "/24", "gateway": gw, "bridge": "vmbr0"},
                             {"ip": "dhcp", "bridge": "vmbr1"}],
            }],
        })

        t0 = time.monotonic()
        p = self.run_bin("--config", cfg, "--provision-template", "--validate", "--output",
                         "json", timeout=1200, check=0)
        t_build = time.monotonic() - t0
        self.assertTrue(json.loads(p.stdout)["validated"], p.stderr)
        # the validation clone really started (full clone: no linked clones on dir) and got
        # its address from dnsmasq on vmbr0 through the template's ifupdown
        self.assertIn("the storage cannot do linked clones: full clone", p.stderr)
        self.assertRegex(p.stderr, r"validate: container \d+ is running, eth0 has \d+\.")
        st = self.sim.control("GET", "/_sim/state")
        self.assertEqual(sorted(st["vms"]), [str(tpl)], "the validation clone is gone")
        self.assertIn("validated", st["vms"][str(tpl)]["conf"]["tags"].split(";"))

        t0 = time.monotonic()
        p = self.run_bin("--config", cfg, "--output", "json", str(ctid), timeout=600, check=0)
        t_deploy = time.monotonic() - t0
        res = json.loads(p.stdout)[0]
        self.assertEqual((res["state"], res["ip"]), ("created", static), res)
        create = [r for r in self.sim.requests() if r["method"] == "POST"
                  and r["path"] == "/api2/json/nodes/pve1/lxc"
                  and str(r["params"].get("vmid")) == str(ctid)]
        self.assertEqual(create[0]["params"]["ostemplate"], "local:vztmpl/debian-ct.tar.zst")

        # unprivileged: the container's init runs as host uid 100000 (lxc.idmap)
        ok = lambda path, params=None: self.sim.api("GET", "/nodes/pve1/lxc/%d/%s" % (
            ctid, path), params)[2]["data"]
        with open("/proc/%d/status" % ok("status/current")["pid"]) as f:
            self.assertEqual(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1), "100000")
        # both addresses in GET .../interfaces: the static one on eth0, dnsmasq's on eth1
        # (ifupdown from the .deb reads what pve-container wrote to /etc/network/interfaces)
        t0 = time.monotonic()
        deadline = t0 + 120
        while True:
            ifs = {i["name"]: i for i in ok("interfaces") or []}
            dhcp = [a["ip-address"] for a in ifs.get("eth1", {}).get("ip-addresses", [])
                    if a["ip-address-type"] == "inet"]
            if dhcp or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(ifs["eth0"]["inet"], static + "/24")
        self.assertTrue(dhcp, "no DHCP address on eth1: %s" % ifs)
        lo, hi = [int(x.rsplit(".", 1)[1]) for x in self.sim.control(
            "GET", "/_sim/state")["lxc_bridges"]["vmbr1"]["dhcp"].split("-")]
        self.assertTrue(lo <= int(dhcp[0].rsplit(".", 1)[1]) <= hi, dhcp)
        # root (the key Proxmox wrote at create) sees ada's account as built offline
        while True:
            r = self.ssh("root", static, "chage -l ada; ip -4 -o addr show eth1")
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertRegex(r.stdout, r"Last password change\s*: password must be changed")
        self.assertIn("inet %s/" % dhcp[0], r.stdout)
        # ada: the key is accepted, then the expired password stops a login without a terminal
        r = self.ssh("ada", static, "true")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Password change required but no TTY available", r.stdout)
        out = self.first_login(static, old_pw, new_pw)
        self.assertIn("password updated successfully", out)
        r = self.ssh("ada", static, "id -u; id -gn; id -Gn; hostname; cat /etc/machine-id; "
                     "cat /etc/ssh/ssh_host_ed25519_key.pub; ls /etc/ssh/.phoenix-host-keys; "
                     "chage -l ada")
        t_ssh = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stdout)
        out = r.stdout.splitlines()
        self.assertEqual(out[0], "1500")
        self.assertEqual(out[1], "ada")
        self.assertEqual(set(out[2].split()), {"ada", "adm", "users"})
        self.assertEqual(out[3], "ct-ada")
        self.assertRegex(out[4], r"^[0-9a-f]{32}$", "machine-id made at the first start")
        # the host key sshd presented is the container's own, made at its first start by our
        # unit (after the one pve-container's create wrote, which it replaced)
        host = out[5].split()[:2]
        with open(self.known) as f:
            self.assertIn(" ".join(host), f.read())
        self.assertEqual(out[6], "/etc/ssh/.phoenix-host-keys")
        tasks = [t for t in self.sim.api("GET", "/nodes/pve1/tasks", {
            "source": "all", "vmid": ctid, "typefilter": "vzcreate"})[2]["data"]]
        log = "\n".join(x["t"] for x in self.sim.api("GET", "/nodes/pve1/tasks/%s/log" % (
            tasks[0]["upid"].replace(":", "%3A")), {"limit": 1000})[2]["data"])
        written = re.search(r"Creating SSH host key 'ssh_host_ed25519_key'.*\ndone: (SHA256:\S+)",
                            log).group(1)
        with open(os.path.join(self.tmp, "host.pub"), "w") as f:
            f.write(out[5] + "\n")
        now = subprocess.run(["ssh-keygen", "-lf", os.path.join(self.tmp, "host.pub")],
                             capture_output=True, text=True, check=True).stdout.split()[1]
        self.assertNotEqual(now, written, "the host key is still the one create wrote")
        self.assertNotRegex(r.stdout, r"password must be changed")

        # a clean shutdown (LXC.pm vm_stop: lxc-stop --nokill) takes its network and mount
        upid = self.sim.api("POST", "/nodes/pve1/lxc/%d/status/shutdown" % ctid,
                            {"timeout": 60})[2]["data"]
        self.assertEqual(self.sim.wait_task(upid, timeout=90)["exitstatus"], "OK")
        self.assertEqual(ok("status/current")["status"], "stopped")
        self.assertIsNone(ok("interfaces"))
        self.assertFalse(os.path.exists("/sys/class/net/veth%di0" % ctid))
        self.assertFalse(os.path.ismount(os.path.join(self.sim.state_dir,
                                                      "lxc/%d/rootfs" % ctid)))

        t0 = time.monotonic()
        self.run_bin("--config", cfg, "--destroy", str(ctid), check=0)
        t_destroy = time.monotonic() - t0
        st = self.sim.control("GET", "/_sim/state")
        self.assertEqual(sorted(st["vms"]), [str(tpl)])
        lxcdir = os.path.join(self.sim.state_dir, "lxc")
        self.assertNotIn(str(ctid), os.listdir(lxcdir) if os.path.isdir(lxcdir) else [])
        self.assertEqual([v["volid"] for v in st["volumes"]
                          if re.search(r"-%d-disk" % ctid, v["volid"])], [])
        with open("/proc/mounts") as f:
            self.assertNotIn("lxc/%d/rootfs" % ctid, f.read())
        self.assertEqual([x for x in os.listdir("/sys/class/net")
                          if x.startswith("veth%di" % ctid)], [])
        print("\nour template for real: build + validate %.1f s, deploy %.1f s, SSH checks "
              "%.1f s, destroy %.1f s; whole test %.1f s" % (
                  t_build, t_deploy, t_ssh, t_destroy, time.monotonic() - t_all))


if __name__ == "__main__":
    unittest.main()
