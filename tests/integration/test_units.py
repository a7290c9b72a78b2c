"""The systemd units (contrib/systemd/): `make install` puts them where systemd looks for the
PREFIX's units, with the installed binary and the system config path in ExecStart;
`systemd-analyze verify` accepts the installed copies; the timer is monthly and persistent;
`make uninstall` removes them. No simulator and no build: a few seconds in all.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from phxtest import BIN, REPO

UNITS = ("phoenix-orchestrator.service", "phoenix-orchestrator.timer")


def system_config_path():
    """CLI_SYSTEM_CONFIG from include/cli.h: the path the CLI falls back to."""
    with open(os.path.join(REPO, "include", "cli.h"), encoding="utf-8") as f:
        m = re.search(r'#define CLI_SYSTEM_CONFIG "([^"]+)"', f.read())
    return m.group(1)


def parse_unit(path):
    """[(section, key, value)] in file order; unit files may repeat a key (ExecStart)."""
    items, section = [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            items.append((section, key.strip(), value.strip()))
    return items


def values(items, section, key):
    return [v for s, k, v in items if s == section and k == key]


def make(*args):
    # a clean environment for the sub-make: no MAKEFLAGS (jobserver, variables) of the make
    # that runs the tests; -o and BIN= install the binary under test without building it
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "-s", "-C", REPO, "-o", BIN, "BIN=" + BIN, *args], env=env,
                          capture_output=True, text=True, timeout=120)


class UnitInstallTest(unittest.TestCase):
    prefix = "/usr/local"

    @classmethod
    def setUpClass(cls):
        if not os.access(BIN, os.X_OK):
            raise RuntimeError("no orchestrator binary at %s: run 'make' first" % BIN)
        cls.destdir = tempfile.mkdtemp(prefix="phx-units-")
        p = make("install", "DESTDIR=" + cls.destdir, "PREFIX=" + cls.prefix)
        if p.returncode != 0:
            shutil.rmtree(cls.destdir, True)
            raise RuntimeError("make install failed:\n" + p.stdout + p.stderr)
        cls.unitdir = os.path.join(cls.destdir, cls.prefix.lstrip("/"), "lib/systemd/system")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.destdir, True)

    def unit(self, name):
        return parse_unit(os.path.join(self.unitdir, name))

    def test_units_installed_beside_the_binary_they_run(self):
        for name in UNITS:
            st = os.stat(os.path.join(self.unitdir, name))
            self.assertEqual(st.st_mode & 0o777, 0o644, name)
        self.assertTrue(os.access(os.path.join(self.destdir, self.prefix.lstrip("/"),
                                               "bin/orchestrator"), os.X_OK))
        svc = self.unit(UNITS[0])
        exe = self.prefix + "/bin/orchestrator"
        cfg = system_config_path()
        # the runtime path, not the DESTDIR one, and the system config explicitly
        self.assertEqual(values(svc, "Service", "ExecStart"), [
            "%s --config %s --wait-lock 3600 --provision-template" % (exe, cfg),
            "%s --config %s --wait-lock 3600 --prune" % (exe, cfg),
        ])
        self.assertEqual(values(svc, "Service", "Type"), ["oneshot"])
        with open(os.path.join(self.unitdir, UNITS[0]), encoding="utf-8") as f:
            self.assertNotIn("@", f.read(), "a placeholder left unreplaced")

    def test_exit_75_is_retried_and_the_secret_is_a_credential(self):
        svc = self.unit(UNITS[0])
        self.assertEqual(values(svc, "Service", "Restart"), ["on-failure"])
        prevent = " ".join(values(svc, "Service", "RestartPreventExitStatus")).split()
        self.assertNotIn("75", prevent)
        for status in ("1", "2", "70"):
            self.assertIn(status, prevent)
        self.assertEqual(values(svc, "Service", "SuccessExitStatus"), [])
        self.assertEqual(values(svc, "Service", "LoadCredential"),
                         ["pve-token-secret:/etc/phoenix/token.secret"])
        self.assertIn("PVE_TOKEN_SECRET_FILE=%d/pve-token-secret",
                      values(svc, "Service", "Environment"))
        self.assertEqual(values(svc, "Service", "EnvironmentFile"), [])

    def test_uninstall_removes_the_units(self):
        destdir = tempfile.mkdtemp(prefix="phx-units-")
        self.addCleanup(shutil.rmtree, destdir, True)
        for target in ("install", "uninstall"):
            p = make(target, "DESTDIR=" + destdir, "PREFIX=" + self.prefix)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        root = os.path.join(destdir, self.prefix.lstrip("/"))
        for name in UNITS:
            self.assertFalse(os.path.exists(os.path.join(root, "lib/systemd/system", name)))
        self.assertFalse(os.path.exists(os.path.join(root, "bin/orchestrator")))

    def test_systemd_analyze_verify_accepts_the_installed_units(self):
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.skipTest("systemd-analyze not found: install the 'systemd' package")
        # verify insists that ExecStart's binary exists: point the DESTDIR copies at the
        # DESTDIR binary, in a directory of their own
        scratch = tempfile.mkdtemp(prefix="phx-verify-")
        self.addCleanup(shutil.rmtree, scratch, True)
        exe = self.prefix + "/bin/orchestrator"
        for name in UNITS:
            with open(os.path.join(self.unitdir, name), encoding="utf-8") as f:
                text = f.read().replace(exe, self.destdir + exe)
            with open(os.path.join(scratch, name), "w", encoding="utf-8") as f:
                f.write(text)
        p = subprocess.run([tool, "verify", "--man=no", *(os.path.join(scratch, n)
                                                          for n in UNITS)],
                           capture_output=True, text=True, timeout=60)
        # an unknown or misspelt key is only a warning (exit 0): any output fails the test
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))

    def test_timer_is_monthly_persistent_and_spread(self):
        timer = self.unit(UNITS[1])
        cal = values(timer, "Timer", "OnCalendar")
        self.assertEqual(len(cal), 1)
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.skipTest("systemd-analyze not found: install the 'systemd' package")
        p = subprocess.run([tool, "calendar", cal[0]], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Normalized form: *-*-01 00:00:00", p.stdout)
        self.assertEqual(values(timer, "Timer", "Persistent"), ["true"])
        self.assertEqual(len(values(timer, "Timer", "RandomizedDelaySec")), 1)
        self.assertEqual(values(timer, "Install", "WantedBy"), ["timers.target"])


class UnitOtherPrefixTest(UnitInstallTest):
    """Another PREFIX: the units go under it and run the binary installed there."""
    prefix = "/opt/phoenix"


if __name__ == "__main__":
    unittest.main()
