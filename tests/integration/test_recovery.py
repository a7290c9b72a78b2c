"""Crash safety: a run killed with SIGKILL (no handler, no rollback) leaves its journal; the
next run, or `--recover`, undoes the half-made work it lists and then converges, with no
manual step and no leaked volume or temp file (docs/failure-and-recovery.md)."""
import json
import os
import re
import signal
import subprocess
import time

import phxtest
import test_deploy
import test_provision


def signal_when(test, proc, path_re, since, signo=signal.SIGKILL, settle=0.3):
    """Sends signo to the run once the simulator has logged a request matching path_re;
    returns its stderr."""
    try:
        for _ in range(600):
            if any(re.search(path_re, r["path"]) and r["method"] != "GET"
                   for r in test.sim.requests()[since:]):
                break
            if proc.poll() is not None:
                test.fail("the run ended before %s: %s" % (path_re, proc.stderr.read()))
            time.sleep(0.05)
        else:
            test.fail("the run never reached %s" % path_re)
        time.sleep(settle)  # the request (or its task) is in flight
        proc.send_signal(signo)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    test.outputs += [out, err]
    test.assertEqual(proc.returncode, -signal.SIGKILL if signo == signal.SIGKILL
                     else 128 + signo, err)
    return err


def kill_a_build(test, cfg, path_re, since, cache):
    """Starts --provision-template and kills it (SIGKILL) once path_re was requested; the run
    must leave its journal."""
    proc = subprocess.Popen([phxtest.BIN, "--config", cfg, "--provision-template"],
                            env=test.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    signal_when(test, proc, path_re, since)
    test.assertEqual(len(journals(cache)), 1, "the killed run left its journal")


def journals(cache):
    d = os.path.join(cache, "phoenix", "images", "journal")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def temp_files(cache):
    d = os.path.join(cache, "phoenix", "images", "tmp")
    out = []
    for root, _, files in os.walk(d) if os.path.isdir(d) else []:
        out += [os.path.join(root, f) for f in files]
    return out


class ProvisionRecoveryTest(test_provision.ProvisionBase):
    """Provision: SIGKILL after the import upload and during the create and template tasks,
    stop signals, two caches at once, a leftover import volume, the child's environment. One
    class, so one customization feeds them all."""

    def killed_at(self, path_re, task_type=None, fault=None, task_s=3):
        cfg = self.config()
        self.provision(cfg)  # the customized image is cached: later builds are quick
        self.api_ok("DELETE", "/nodes/pve1/qemu/9000")
        before = self.state()
        if task_type:
            self.sim.control("POST", "/_sim/task-duration", {"type": task_type,
                                                              "seconds": task_s})
        if fault:
            self.sim.control("POST", "/_sim/fault", fault)
        kill_a_build(self, cfg, path_re, len(self.sim.requests()), self.cache)
        self.sim.control("DELETE", "/_sim/faults")
        if task_type:
            self.sim.control("POST", "/_sim/task-duration", {"type": task_type,
                                                              "seconds": 0.05})
        p = self.provision(cfg, check=0)
        self.assertIn("recover: cleaned up", p.stderr)
        self.tasks_settled()  # what the killed run started has ended: its results are in
        st = self.state()
        self.assertEqual(st["vms"]["9000"]["conf"].get("template"), 1)
        self.assertEqual(list(st["vms"]), ["9000"])
        self.assertEqual([v["volid"] for v in st["volumes"]],
                         [v["volid"] for v in before["volumes"]] +
                         ["local:9000/base-9000-disk-0.qcow2"],
                         "no import volume or half-made disk left")
        self.assertEqual(journals(self.cache), [])
        self.assertEqual(temp_files(self.cache), [])
        return p

    def tasks_settled(self):
        for _ in range(600):
            st, _, body = self.sim.api("GET", "/nodes/pve1/tasks", {"source": "active"})
            self.assertEqual(st, 200, body)
            if not body["data"]:
                return
            time.sleep(0.05)
        self.fail("tasks still running: %s" % body["data"])

    def api_ok(self, method, path, params=None):
        st, _, body = self.sim.api(method, path, params)
        self.assertEqual(st, 200, body)
        if isinstance(body.get("data"), str) and body["data"].startswith("UPID:"):
            self.sim.wait_task(body["data"])

    def test_killed_after_the_upload(self):
        # killed while the server's imgcopy task still moves the file into place: the volume
        # appears only after the kill, and the next run must wait for it before cleaning up
        # (else the import volume is left behind: the task outlasts the whole next run); the
        # create request is held back too
        self.killed_at(r"/storage/local/upload$", task_type="imgcopy", task_s=8, fault={
            "kind": "http", "method": "POST", "path": "/nodes/pve1/qemu$",
            "status": 500, "message": "slow", "delay": 10})

    def test_killed_during_the_create_task(self):
        p = self.killed_at(r"/nodes/pve1/qemu$", task_type="qmcreate")
        self.assertIn("VM 9000", p.stderr)

    def test_killed_during_the_template_task(self):
        self.killed_at(r"/qemu/9000/template$", task_type="qmtemplate")

    # ---- TwoHostsTest
    # Two runs with different caches (two hosts: two locks) build the same template at once:
    # one template, no leaked import volume, and both say clearly what happened.

    def test_same_template_from_two_caches_at_once(self):
        import shutil
        cfg = self.config()
        self.provision(cfg)  # warms the class cache
        st, _, body = self.sim.api("DELETE", "/nodes/pve1/qemu/9000")
        self.sim.wait_task(body["data"])
        other = os.path.join(self.tmp, "other-host-cache")
        shutil.copytree(self.cache, other)
        self.sim.control("POST", "/_sim/task-duration", {"type": "qmcreate", "seconds": 2})
        env_b = self.env()
        env_b["XDG_CACHE_HOME"] = other
        procs = [subprocess.Popen([phxtest.BIN, "--config", cfg, "--provision-template"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
                 for env in (self.env(), env_b)]
        outs = [p.communicate(timeout=300) for p in procs]
        for out, err in outs:
            self.outputs += [out, err]
        codes = sorted(p.returncode for p in procs)
        self.assertEqual(codes[0], 0, outs)
        self.assertIn(codes[1], (0, 1, 75), outs)
        loser = outs[[p.returncode for p in procs].index(codes[1])][1]
        if codes[1]:
            self.assertRegex(loser, r"being created right now \(Proxmox lock 'create'\)"
                                    r"|already exists")
        st = self.state()
        self.assertEqual(list(st["vms"]), ["9000"])
        self.assertEqual(st["vms"]["9000"]["conf"].get("template"), 1)
        self.assertEqual([v["volid"] for v in st["volumes"] if ":import/" in v["volid"]], [],
                         "no import volume leaked")
        self.assertEqual(journals(self.cache) + journals(other), [])

    # ---- ChildEnvironmentTest
    # The token secret never reaches a child's environment: libguestfs starts qemu (here a
    # wrapper that records /proc/self/environ and fails) after the secret was read.

    def test_secret_is_not_in_the_customization_childs_environment(self):
        dump = os.path.join(self.tmp, "child-environ")
        hv = os.path.join(self.tmp, "qemu-wrapper")
        with open(hv, "w", encoding="utf-8") as f:
            f.write("#!/bin/sh\ntr '\\0' '\\n' < /proc/$$/environ >> %s\nexit 1\n" % dump)
        os.chmod(hv, 0o755)
        # a recipe of its own, so the customization runs rather than hitting the cache
        t = self.template()
        t["customize"]["files"][0]["content"] = "child environment test\n"
        p = self.run_bin("--config", self.config(t), "--provision-template",
                         env=self.env(LIBGUESTFS_HV=hv), check=1)
        self.assertIn("customize", p.stderr)
        with open(dump, encoding="utf-8") as f:
            child_env = f.read()
        self.assertIn("LIBGUESTFS_HV=", child_env, "the wrapper ran as the child")
        self.assertNotIn(self.sim.secret, child_env)
        self.assertNotIn("PVE_TOKEN_SECRET", child_env)
        self.assertEqual(self.state()["vms"], {})

    # ---- ProvisionSignalTest
    # SIGTERM during the create task and SIGINT during the template task: the task in flight
    # ends, the run removes what it made, leaves no journal or temp file and exits 128 + N.

    def stopped_at(self, signo, path_re, task_type):
        cfg = self.config()
        self.provision(cfg)  # the customized image is cached: later builds are quick
        st, _, body = self.sim.api("DELETE", "/nodes/pve1/qemu/9000")
        self.sim.wait_task(body["data"])
        before = self.state()
        self.sim.control("POST", "/_sim/task-duration", {"type": task_type, "seconds": 2})
        n = len(self.sim.requests())
        proc = subprocess.Popen([phxtest.BIN, "--config", cfg, "--provision-template"],
                                env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        err = signal_when(self, proc, path_re, n, signo, settle=0)
        self.assertIn("stopped by signal %d" % signo, err)
        self.assertIn("removed VM 9000", err)
        self.assertEqual(self.state(), before)
        self.assertEqual(journals(self.cache), [])
        self.assertEqual(temp_files(self.cache), [])

    def test_sigterm_during_the_create_task(self):
        self.stopped_at(signal.SIGTERM, r"/nodes/pve1/qemu$", "qmcreate")

    def test_sigint_during_the_template_task(self):
        self.stopped_at(signal.SIGINT, r"/qemu/9000/template$", "qmtemplate")

    # ---- LeftoverImportTest
    # A failed delete of the import volume does not fail the build (the template is done),
    # but stays in the journal: the next run removes the volume.

    def test_failed_import_delete_is_finished_by_the_next_run(self):
        cfg = self.config()
        self.sim.control("POST", "/_sim/fault", {"kind": "http", "method": "DELETE",
                                                 "path": "/storage/local/content/",
                                                 "status": 500, "message": "storage busy"})
        p = self.provision(cfg)
        self.assertIn("storage busy", p.stderr)
        self.assertEqual(len(journals(self.cache)), 1)
        imports = [v["volid"] for v in self.state()["volumes"] if ":import/" in v["volid"]]
        self.assertEqual(len(imports), 1)
        p = self.provision(cfg)
        self.assertIn("recover: cleaned up %s" % imports[0], p.stderr)
        self.assertIn("up to date", p.stdout)
        self.assertEqual([v for v in self.state()["volumes"] if ":import/" in v["volid"]], [])
        self.assertEqual(journals(self.cache), [])



class DeployKillTest(test_deploy.DeployBase):
    """SIGKILL during the clone and right after the seed upload: the rerun removes the
    half-made VM and seed (the clone task is waited for), then deploys the VM afresh."""

    def killed_at(self, path_re, task_type=None, fault=None, task_s=3):
        self.seed_template()
        before = self.state()
        cfg = self.config([self.vm_8001()])
        if task_type:
            self.sim.control("POST", "/_sim/task-duration", {"type": task_type,
                                                              "seconds": task_s})
        if fault:
            self.sim.control("POST", "/_sim/fault", fault)
        n = self.mark()
        proc = subprocess.Popen([phxtest.BIN, "--config", cfg, "8001"], env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        signal_when(self, proc, path_re, n)
        cache = os.path.join(self.tmp, "cache")
        self.assertEqual(len(journals(cache)), 1, "the killed run left its journal")
        self.sim.control("DELETE", "/_sim/faults")
        p = self.deploy(cfg, "8001", check=0)
        self.assertIn("recover: cleaned up VM 8001", p.stderr)
        self.assertRegex(p.stdout, r"8001\s+docker-host-1\s+pve1\s+\S+\s+created")
        st = self.state()
        self.assertEqual(sorted(st["vms"]), sorted(list(before["vms"]) + ["8001"]))
        seeds = [v["volid"] for v in st["volumes"] if ":iso/" in v["volid"]]
        self.assertEqual(len(seeds), 1, seeds)
        self.assertIn(seeds[0].split(":", 1)[1], st["vms"]["8001"]["conf"]["ide2"])
        self.assertEqual(journals(cache), [])
        self.assertEqual(temp_files(cache), [])
        return p

    def test_killed_during_the_clone(self):
        self.killed_at(r"/qemu/9000/clone$", task_type="qmclone")

    def test_killed_after_the_seed_upload(self):
        # the next change is held back: the kill comes between the upload and the config
        self.killed_at(r"/storage/local/upload$", fault={
            "kind": "http", "method": "POST", "path": "/qemu/8001/config$",
            "status": 500, "message": "slow", "delay": 10})


class DeadlineTest(test_deploy.DeployBase):
    """A server that answers 2 bytes a second ends a run within the request deadline
    (proxmox.timeouts.request_s), retries included."""

    def test_trickling_server_ends_the_run_within_the_deadline(self):
        self.seed_template()
        path = self.config([self.vm_8001()])
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
        cfg["proxmox"]["timeouts"] = {"request_s": 3}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        self.sim.control("POST", "/_sim/fault", {"kind": "http", "method": "GET",
                                                 "path": "/storage$", "action": "trickle",
                                                 "count": 100})
        n = self.mark()
        t0 = time.monotonic()
        p = self.run_bin("--config", path, "8001", check=1)
        took = time.monotonic() - t0
        self.assertRegex(p.stderr, r"GET /storage: .*(timed out|[Tt]imeout)")
        self.assertRegex(p.stderr, r"gave up after [12] attempts? \(deadline 6 s\)")
        gets = [r for r in self.sim.requests()[n:] if r["path"].endswith("/storage")]
        self.assertIn(len(gets), (1, 2), "no retry once the deadline has passed")
        # the bound itself: 2 x 3 s for the request and its retry (4 attempts x 3 s before
        # the deadline covered retries), plus process start and the other requests
        self.assertLess(took, 2 * 3 + 3, p.stderr)

class SweepTest(test_deploy.DeployBase):
    """--recover also sweeps leftovers of ours that no journal covers (a host that died and
    never ran again): import volumes and seeds of VMs that are gone, older than a day."""

    def test_recover_sweeps_old_leftovers_of_ours_only(self):
        self.seed_template()
        root = os.path.join(self.sim.state_dir, "storage", "local")
        files = {"import/phoenix-tpl-0123456789ab-deadbeef-pve1.qcow2": 2,  # old: swept
                 "import/phoenix-tpl-0123456789ab-feedf00d-pve1.qcow2": 0,  # young: kept
                 "import/ubuntu-noble.qcow2": 2,                            # not ours: kept
                 "iso/phoenix-ci-8999-0123456789ab.iso": 2,   # its VM is gone: swept
                 "iso/phoenix-ci-9000-0123456789ab.iso": 2,   # VM 9000 exists: kept
                 "iso/phoenix-validate-8998-0123456789ab.iso": 2,  # gone: swept
                 "iso/debian.iso": 2}                         # not ours: kept
        now = time.time()
        for rel, days in files.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(b"x" * 512)
            os.utime(path, (now - days * 86400, now - days * 86400))
        p = self.run_bin("--config", self.config([self.vm_8001()]), "--recover",
                         "--output", "json", check=0)
        swept = sorted(r["what"] for r in json.loads(p.stdout) if r["result"] == "swept")
        self.assertEqual(swept, ["local:import/phoenix-tpl-0123456789ab-deadbeef-pve1.qcow2",
                                 "local:iso/phoenix-ci-8999-0123456789ab.iso",
                                 "local:iso/phoenix-validate-8998-0123456789ab.iso"])
        left = sorted(v["volid"] for v in self.state()["volumes"]
                      if ":import/" in v["volid"] or ":iso/" in v["volid"])
        self.assertEqual(left, ["local:import/phoenix-tpl-0123456789ab-feedf00d-pve1.qcow2",
                                "local:import/ubuntu-noble.qcow2",
                                "local:import/x.qcow2",  # the seeded template's image
                                "local:iso/debian.iso",
                                "local:iso/phoenix-ci-9000-0123456789ab.iso"])
        p = self.run_bin("--config", self.config([self.vm_8001()]), "--recover", check=0)
        self.assertIn("nothing to recover", p.stdout)
