"""Shared helpers for integration tests that run the real orchestrator binary against the
Proxmox simulator over HTTPS on 127.0.0.1.

Each test gets its own simulator (state dir under a temp dir, request log kept under
$PHX_BUILD/sim-logs/<test id>.jsonl) and a config file pointing at it with the certificate
pinned by fingerprint. After every test the simulator's log must show zero schema
violations, and the token secret must appear in no output or log.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "pve-sim"))

import simharness  # noqa: E402  (tests/pve-sim/simharness.py)

BIN = os.environ.get("PHX_BIN", os.path.join(REPO, "orchestrator"))
BUILD = os.environ.get("PHX_BUILD", os.path.join(REPO, "build"))


def sim_log_path(test_id):
    d = os.path.join(BUILD, "sim-logs")
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, test_id.replace("/", "_") + ".jsonl")


class OrchestratorTest(unittest.TestCase):
    """Base class: starts a simulator per test and offers run() for the binary."""

    sim_opts = {}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="phx-it-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.sim = simharness.Simulator(
            state_dir=os.path.join(self.tmp, "sim"),
            log_path=sim_log_path(self.id()),
            **self.sim_opts)
        self.sim.start()
        self.addCleanup(self._check_sim)
        self.outputs = []

    def _check_sim(self):
        try:
            violations = self.sim.schema_violations()
        finally:
            self.sim.stop()
        self.assertEqual(violations, [], "requests that real Proxmox would refuse")
        if os.path.exists(self.sim.log_path):  # absent when no request arrived
            with open(self.sim.log_path, encoding="utf-8") as f:
                self.assertNotIn(self.sim.secret, f.read(), "token secret leaked into sim log")
        for out in self.outputs:
            self.assertNotIn(self.sim.secret, out, "token secret leaked into output")

    def env(self, **extra):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith(("PVE_", "PROXMOX_VE_")):
                del env[k]
        env.update({
            "PVE_TOKEN_SECRET": self.sim.secret,
            "XDG_CACHE_HOME": os.path.join(self.tmp, "cache"),
            "XDG_RUNTIME_DIR": os.path.join(self.tmp, "run"),
            "NO_COLOR": "1",
        })
        os.makedirs(env["XDG_RUNTIME_DIR"], exist_ok=True)
        env.update(extra)
        return env

    def proxmox_section(self):
        return {
            "api_url": self.sim.url,
            "token_id": self.sim.token_id,
            "node": "pve1",
            "tls": {"fingerprint": self.sim.fingerprint},
        }

    def write_config(self, cfg, name="phoenix_vm_configs.json"):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=2)
        return path

    def run_bin(self, *args, env=None, timeout=600, check=None):
        p = subprocess.run([BIN, *args], env=env or self.env(), capture_output=True,
                           text=True, timeout=timeout)
        self.outputs += [p.stdout, p.stderr]
        if check is not None:
            self.assertEqual(p.returncode, check,
                             "exit %d, want %d\nstdout:\n%s\nstderr:\n%s"
                             % (p.returncode, check, p.stdout, p.stderr))
        return p
