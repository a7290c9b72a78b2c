"""Signed checksum files through the real binary: --check refuses half a signature setup
and a keyring without keys (exit 2, the JSON path), and --provision-template refuses a bad
signature, a key missing from the keyring and an expired key with exit 1, naming the key and
the file, before any request for the image and any change on the server.

The keys are throwaway ones from tests/tools/pgp-keys.sh; the "image" is random bytes, since
no run here gets as far as using it. The good paths (detached and clear-signed, SHA-512, the
zero-byte rerun) are proved by tests/integration/test_image.c against the same file server.
"""
import json
import os
import re
import shutil
import subprocess

from phxtest import BIN, BUILD, REPO, OrchestratorTest
from test_provision import FileServer


def make_keys():
    """The key set of the build tree (made once; the lock serialises parallel runs)."""
    d = os.path.join(BUILD, "pgp-keys")
    os.makedirs(d, exist_ok=True)
    subprocess.run(["flock", d + ".lock", os.path.join(REPO, "tests", "tools", "pgp-keys.sh"),
                    d], check=True)
    with open(os.path.join(d, "ids"), encoding="utf-8") as f:
        ids = dict(line.split() for line in f)
    return d, ids


class SignatureTest(OrchestratorTest):

    @classmethod
    def setUpClass(cls):
        cls.keys, cls.ids = make_keys()

    def setUp(self):
        super().setUp()
        self.srv = os.path.join(self.tmp, "srv")
        os.makedirs(self.srv)
        with open(os.path.join(self.srv, "tiny.img"), "wb") as f:
            f.write(os.urandom(1 << 20))
        subprocess.run("sha256sum --binary tiny.img > SHA256SUMS", shell=True, cwd=self.srv,
                       check=True)
        self.fs = FileServer(self.srv, os.path.join(self.tmp, "files.jsonl"))
        self.addCleanup(self.fs.proc.stdout.close)
        self.addCleanup(self.fs.stop)
        self.addCleanup(subprocess.run, ["gpgconf", "--homedir",
                                         os.path.join(self.keys, "gnupg"), "--kill",
                                         "gpg-agent"])

    def sign(self, who, *opts):
        subprocess.run(["gpg", "--homedir", os.path.join(self.keys, "gnupg"), "--batch",
                        "--yes", "--quiet", "--no-tty", *opts, "-u", self.ids[who],
                        "--detach-sign", "-o", "SHA256SUMS.gpg", "SHA256SUMS"],
                       cwd=self.srv, check=True, stderr=subprocess.DEVNULL)

    def config(self, **over):
        t = {"name": "signed", "vmid": 9000, "image_url": self.fs.url + "/tiny.img",
             "checksum_url": self.fs.url + "/SHA256SUMS",
             "signature_url": self.fs.url + "/SHA256SUMS.gpg",
             "keyring": os.path.join(self.keys, "trusted.asc"),
             "hardware": {"cores": 1, "memory_mb": 512, "disk_size_gb": 3}}
        t.update(over)
        t = {k: v for k, v in t.items() if v is not None}
        return self.write_config({
            "proxmox": self.proxmox_section(),
            "defaults": {"storage": "local", "import_storage": "local",
                         "iso_storage": "local"},
            "templates": [t], "vms": []})

    def image_requests(self):
        with open(self.fs.log, encoding="utf-8") as f:
            return [r for r in map(json.loads, f) if r["path"] == "/tiny.img"]

    def test_refused_signatures_exit_1_before_any_image_request(self):
        cases = [
            # what, signer, gpg options, tamper after signing, words of the message
            ("bad signature", "good", [], True, "bad signature"),
            ("key not in the keyring", "other", [], False, "not in keyring"),
            ("expired key", "old", ["--faked-system-time", "20200601T000000"], False,
             "the key expired on"),
        ]
        for what, who, opts, tamper, words in cases:
            with self.subTest(what):
                subprocess.run("sha256sum --binary tiny.img > SHA256SUMS", shell=True,
                               cwd=self.srv, check=True)
                self.sign(who, *opts)
                if tamper:
                    with open(os.path.join(self.srv, "SHA256SUMS"), "a") as f:
                        f.write("0" * 64 + " *another.img\n")
                n = len(self.sim.requests())
                p = self.run_bin("--config", self.config(), "--provision-template",
                                 env=self.env(XDG_CACHE_HOME=os.path.join(self.tmp, what)),
                                 check=1)
                self.assertIn(words, p.stderr)
                self.assertIn(self.ids[who][-16:], p.stderr, "the key ID")
                self.assertIn(self.fs.url + "/SHA256SUMS.gpg", p.stderr, "the file")
                self.assertEqual(self.image_requests(), [], "the image was asked for")
                changed = [r for r in self.sim.requests()[n:]
                           if r["method"] != "GET" and not r.get("control")]
                self.assertEqual(changed, [], "the server was changed")

    def test_check_refuses_half_a_signature_setup_with_the_json_path(self):
        p = self.run_bin("--config", self.config(keyring=None), "--check", check=2)
        self.assertIn("$.templates[0].signature_url: expected 'keyring'", p.stderr)
        p = self.run_bin("--config", self.config(signature_url=None), "--check", check=2)
        self.assertIn("$.templates[0].keyring: expected 'signature_url'", p.stderr)
        p = self.run_bin("--config",
                         self.config(keyring=os.path.join(self.keys, "empty.asc")),
                         "--check", check=2)
        self.assertIn("$.templates[0].keyring: expected a file of OpenPGP public keys",
                      p.stderr)

    def test_check_accepts_a_keyring_and_shows_the_signature(self):
        p = self.run_bin("--config", self.config(), "--check", "--output", "json", check=0)
        t = json.loads(p.stdout)["templates"][0]
        self.assertEqual(t["signature"], {"url": self.fs.url + "/SHA256SUMS.gpg",
                                          "keyring": os.path.join(self.keys, "trusted.asc")})
        self.assertEqual(self.image_requests(), [])

    def test_gpg_runs_without_the_token_secret_and_starts_no_agent(self):
        # --check reads the keyring while the secret may still be in the environment (it
        # is taken out only when a command loads it): gpg and its helpers must not see it
        if not shutil.which("strace"):
            self.skipTest("strace is not installed (scripts/install-deps.sh installs it)")
        trace = os.path.join(self.tmp, "execve.txt")
        env = self.env()
        if os.environ.get("PHX_SANITIZE"):
            env["ASAN_OPTIONS"] = "detect_leaks=0"  # LeakSanitizer cannot run under ptrace
        p = subprocess.run(["strace", "-f", "-v", "-s", "65536", "-e", "trace=execve", "-o",
                            trace, BIN, "--config", self.config(), "--check"],
                           env=env, capture_output=True, text=True, timeout=120)
        self.outputs += [p.stdout, p.stderr]
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(trace, encoding="utf-8") as f:
            execs = [line for line in f if "execve(" in line]
        programs = [line.split('execve("', 1)[1].split('"', 1)[0] for line in execs]
        self.assertIn("/usr/bin/gpg", programs, "gpg was not run")
        self.assertNotIn("/usr/bin/gpg-agent", programs, "a gpg-agent was started")
        for prog, line in zip(programs, execs):
            if prog == BIN:
                continue  # the test itself hands the orchestrator the variable
            self.assertNotIn(self.sim.secret, line, prog)
            self.assertNotIn("PVE_TOKEN_SECRET", line, prog)
            env = line.rsplit("], [", 1)[1]
            self.assertEqual(sorted(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)=', env)),
                             ["LC_ALL", "PATH"], prog)
