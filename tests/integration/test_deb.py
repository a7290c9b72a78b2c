"""The Debian package (debian/): `dpkg-buildpackage -us -uc -b` on a copy of the source builds
phoenix-orchestrator_<VERSION>_<arch>.deb with what `make install` installs under /usr, Depends
from shlibs, no lintian error; unpacked with `dpkg -x` into a scratch root, its binary passes
--check on a config outside the repo that uses the built-in 'docker' feature.

Runs when dpkg-buildpackage is present (dpkg-dev; debhelper comes from scripts/install-deps.sh),
else skips saying so. Cost: one build of the project, about 40 s of CPU (parallel=2, no dbgsym
package, no `make check` inside), plus lintian, about 8 s of CPU.
"""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from phxtest import REPO

PKG = "phoenix-orchestrator"


def project_version():
    with open(os.path.join(REPO, "VERSION"), encoding="utf-8") as f:
        return f.read().strip()


def copy_source(dest):
    """The files git knows (tracked or new, not ignored), without the tests: a clean tree even
    when the checkout holds a build."""
    p = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others",
                        "--exclude-standard"], capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("git ls-files failed: " + p.stderr.decode())
    for rel in sorted(set(p.stdout.decode().split("\0"))):
        if not rel or rel.startswith("tests/") or not os.path.isfile(os.path.join(REPO, rel)):
            continue
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(os.path.join(REPO, rel), os.path.join(dest, rel))


class DebianPackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("dpkg-buildpackage"):
            raise unittest.SkipTest("dpkg-buildpackage not found: install 'dpkg-dev' and "
                                    "'debhelper' (scripts/install-deps.sh)")
        cls.tmp = tempfile.mkdtemp(prefix="phx-deb-")
        src = os.path.join(cls.tmp, "src")
        copy_source(src)
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        env["DEB_BUILD_OPTIONS"] = "parallel=2 noddebs nocheck"
        p = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env,
                           capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            shutil.rmtree(cls.tmp, True)
            raise RuntimeError("dpkg-buildpackage failed:\n" + p.stdout[-4000:] +
                               p.stderr[-4000:])
        arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                              text=True, check=True).stdout.strip()
        cls.deb = os.path.join(cls.tmp, "%s_%s_%s.deb" % (PKG, project_version(), arch))
        cls.root = os.path.join(cls.tmp, "root")
        subprocess.run(["dpkg", "-x", cls.deb, cls.root], check=True, timeout=60)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def field(self, name):
        return subprocess.run(["dpkg-deb", "-f", self.deb, name], capture_output=True,
                              text=True, check=True).stdout.strip()

    def test_one_package_named_by_the_project_version(self):
        self.assertEqual(sorted(os.path.basename(d) for d in
                                glob.glob(os.path.join(self.tmp, "*.deb"))),
                         [os.path.basename(self.deb)])
        self.assertEqual(self.field("Version"), project_version())
        depends = self.field("Depends")
        # from shlibs: the libraries the binary links, with versions
        for lib in ("libc6 (>=", "libcurl4", "libguestfs0", "libjansson4", "libssl3",
                    "libisofs6", "libyaml-0-2"):
            self.assertIn(lib, depends)

    def test_installs_what_make_install_does_under_usr(self):
        files = ["usr/bin/orchestrator", "usr/share/man/man1/orchestrator.1.gz",
                 "usr/share/phoenix/features/docker.sh",
                 "usr/share/bash-completion/completions/orchestrator",
                 "usr/share/zsh/vendor-completions/_orchestrator",
                 "usr/share/doc/%s/examples/phoenix_vm_configs.example.json" % PKG,
                 "usr/share/doc/%s/copyright" % PKG]
        for f in files:
            self.assertTrue(os.path.isfile(os.path.join(self.root, f)), f)
        units = glob.glob(os.path.join(self.root, "*lib/systemd/system/phoenix-orchestrator.*"))
        self.assertEqual(sorted(os.path.basename(u) for u in units),
                         ["phoenix-orchestrator.service", "phoenix-orchestrator.timer"])
        with open(units[0].replace(".timer", ".service"), encoding="utf-8") as f:
            self.assertIn("ExecStart=/usr/bin/orchestrator ", f.read())
        p = subprocess.run([os.path.join(self.root, "usr/bin/orchestrator"), "--version"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout.strip(), "orchestrator " + project_version())

    def test_lintian_finds_no_error(self):
        if not shutil.which("lintian"):
            self.skipTest("lintian not found: install 'lintian' (scripts/install-deps.sh)")
        p = subprocess.run(["lintian", "--fail-on", "error", self.deb], capture_output=True,
                           text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("\nE: ", "\n" + p.stdout)

    def test_installed_binary_checks_a_config_outside_the_repo_with_docker(self):
        work = os.path.join(self.tmp, "admin")
        os.makedirs(work)
        secret = os.path.join(work, "token.secret")
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("11111111-2222-3333-4444-555555555555\n")
        with open(os.path.join(self.root, "usr/share/doc/%s/examples/"
                               "phoenix_vm_configs.example.json" % PKG), encoding="utf-8") as f:
            cfg = json.load(f)
        cfg["proxmox"]["token_secret_file"] = secret
        self.assertIn("docker", cfg["vms"][0]["features"])  # the built-in, not defined here
        self.assertNotIn("features", cfg)
        path = os.path.join(work, "cfg.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PVE_", "PROXMOX_VE_"))}
        p = subprocess.run([os.path.join(self.root, "usr/bin/orchestrator"), "--check",
                            "--output", "json", "--config", path], cwd=work, env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        docker = [f for f in json.loads(p.stdout)["features"] if f["name"] == "docker"]
        self.assertEqual(docker[0]["script_path"],
                         os.path.join(self.root, "usr/share/phoenix/features/docker.sh"))

    def test_changelog_names_the_project_version(self):
        p = subprocess.run(["dpkg-parsechangelog", "-l", os.path.join(REPO, "debian/changelog"),
                            "-S", "Version"], capture_output=True, text=True, check=True)
        self.assertEqual(p.stdout.strip(), project_version(),
                         "debian/changelog and VERSION disagree: add a changelog entry")


if __name__ == "__main__":
    unittest.main()
