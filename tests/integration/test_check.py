"""`orchestrator --check` end to end: the shipped example passes, bad configs exit 2 with one
line per problem naming the file and the JSON path, every problem is reported, and no network
connection is ever attempted, even when the API URL points at a listening socket."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("PHX_BIN", os.path.join(REPO, "orchestrator"))
EXAMPLE = os.path.join(REPO, "phoenix_vm_configs.example.json")

KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII6mc6QOQi0UOtRFYciPo/eRKln65glY3ngz+TL0FnI4 "
       "a@b")
HASH = ("$6$Zk3vYq1pQ2wErT6u$IyetMTCzdHkjbsR9dCeS7IDRy6Wsi.qce9HICTZjmn1EWAShiibwc0fAu7nPQNE"
        "Hutqs6KQK0SWFhH/UAiuQS.")

# connection variables of the caller must not leak into these tests
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith(("PVE_", "PROXMOX_VE_"))}


def vm(**over):
    d = {"vmid": 8001, "name": "web-1", "clone_from_vmid": 9000, "cores": 2,
         "memory_mb": 2048, "disk_size_gb": 20,
         "network_config": {"ip": "10.0.0.5/24", "gw": "10.0.0.1"},
         "user_config": {"username": "admin", "password_hash": HASH, "ssh_public_key": KEY}}
    d.update(over)
    return d


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="phx-check-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def secret_env(self, mode=0o600, **more):
        """CLEAN_ENV with PVE_TOKEN_SECRET_FILE naming a file of that mode (the example's own
        /etc/phoenix/token.secret does not exist here)."""
        path = os.path.join(self.tmp, "token.secret")
        with open(path, "w") as f:
            f.write("11111111-2222-3333-4444-555555555555\n")
        os.chmod(path, mode)
        return dict(CLEAN_ENV, PVE_TOKEN_SECRET_FILE=path, **more), path

    def write(self, doc, name="cfg.json"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
        return path

    def run_bin(self, *args, env=None, timeout=60):
        return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout,
                              env=env if env is not None else CLEAN_ENV)

    def problem_lines(self, stderr):
        lines = [l for l in stderr.splitlines() if l.strip()]
        # main prefixes the first line of an error with "error: "
        return [l[len("error: "):] if l.startswith("error: ") else l for l in lines]

    def assert_problems(self, res, path, expected):
        """Exit 2, every stderr line is 'FILE: $.path: ...', and each (jpath, text) is there."""
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertEqual(res.stdout, "")
        lines = self.problem_lines(res.stderr)
        self.assertTrue(lines)
        for line in lines:
            self.assertTrue(line.startswith(path + ": $"), "line without file and path: " + line)
        for jpath, text in expected:
            self.assertTrue(any(l.startswith(f"{path}: {jpath}: ") and text in l for l in lines),
                            f"no line for {jpath} with {text!r} in:\n{res.stderr}")
        return lines

    def test_example_config_passes(self):
        env, secret = self.secret_env()
        res = self.run_bin("--check", "--config", EXAMPLE, env=env)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("secret: " + secret, res.stdout)
        self.assertIn("valid", res.stdout)
        self.assertIn("ubuntu-noble", res.stdout)
        self.assertIn("8001", res.stdout)
        self.assertIn("docker", res.stdout)

    def test_example_json_summary(self):
        env, secret = self.secret_env()
        res = self.run_bin("--check", "--output", "json", "--config", EXAMPLE, env=env)
        self.assertEqual(res.returncode, 0, res.stderr)
        doc = json.loads(res.stdout)
        self.assertTrue(doc["valid"])
        self.assertEqual(doc["proxmox"]["secret_from"], secret)
        self.assertEqual([t["name"] for t in doc["templates"]], ["ubuntu-noble"])
        self.assertEqual(doc["templates"][0]["vmid"], 9000)
        vms = {v["vmid"]: v for v in doc["vms"]}
        self.assertEqual(vms[8001]["cores"], 4)
        self.assertEqual(vms[8001]["memory_mb"], 8192)
        self.assertEqual(vms[8001]["disk_size_gb"], 100)
        self.assertEqual(vms[8001]["features"], ["docker"])
        self.assertEqual(vms[8001]["template"], "ubuntu-noble")
        self.assertRegex(vms[8001]["config_id"], "^sha256:[0-9a-f]{64}$")
        self.assertNotEqual(vms[8001]["config_id"], vms[8002]["config_id"])
        self.assertIn("docker", [f["name"] for f in doc["features"]])

    def test_env_overrides_show_in_summary(self):
        env, _ = self.secret_env(PVE_API_URL="https://127.0.0.1:9/api2/json", PVE_NODE="pve7")
        res = self.run_bin("--check", "--output", "json", "--config", EXAMPLE, env=env)
        self.assertEqual(res.returncode, 0, res.stderr)
        doc = json.loads(res.stdout)
        self.assertEqual(doc["proxmox"]["api_url"], "https://127.0.0.1:9")
        self.assertEqual(doc["proxmox"]["node"], "pve7")

    def test_bad_env_exits_2_naming_the_variable(self):
        env = dict(CLEAN_ENV, PVE_API_URL="ftp://pve")
        res = self.run_bin("--check", "--config", EXAMPLE, env=env)
        self.assertEqual(res.returncode, 2)
        self.assertIn("PVE_API_URL", res.stderr)
        # a token name of one character: the message says the rule and what breaks it
        env = dict(CLEAN_ENV, PVE_TOKEN_ID="a@pve!b")
        res = self.run_bin("--check", "--config", EXAMPLE, env=env)
        self.assertEqual(res.returncode, 2)
        self.assertEqual(res.stderr.splitlines(), [
            "error: environment PVE_TOKEN_ID: expected a token ID USER@REALM!TOKENNAME like "
            "'phoenix@pve!ci' (realm and token name: a letter then 1 or more of A-Z a-z 0-9 . "
            "- _; the user: no space, ':' or '/'), got 'a@pve!b': the token name 'b' has 1 "
            "character, 2 or more are needed"])
        # a mistyped option gets a hint, like a mistyped config key
        res = self.run_bin("--chek", "--config", EXAMPLE)
        self.assertEqual(res.returncode, 2)
        self.assertIn("unknown option '--chek'; did you mean '--check'?", res.stderr)

    def test_one_bad_value_exits_2_with_file_and_path(self):
        path = self.write({"vms": [vm(network_config={"ip": "10.0.0.5", "gw": "10.0.0.1"})]})
        res = self.run_bin("--check", "--config", path)
        lines = self.assert_problems(res, path, [
            ("$.vms[0].network_config.ip", "expected CIDR like '10.0.0.5/24', got '10.0.0.5'")])
        self.assertEqual(len(lines), 1, res.stderr)

    def test_every_problem_is_reported(self):
        doc = {
            "proxmox": {"api_url": "http://pve:8006", "token_secret": "s3cr3t"},
            "vms": [
                vm(cores=0),
                vm(vmid=8002, name="web_2"),
                vm(vmid=8003, name="web-3", memory_mb="4096"),
                vm(vmid=8004, name="web-4", corse=4),
                vm(vmid=8001, name="web-5"),
                vm(vmid=8006, name="web-6",
                   user_config={"username": "admin", "password_hash": "hunter2"}),
                vm(vmid=8007, name="web-7", features=["k8s"]),
                vm(vmid=8008, name="web-8",
                   network_config={"ip": "10.0.0.5/24", "gw": "10.9.0.1"}),
            ],
        }
        path = self.write(doc)
        res = self.run_bin("--check", "--config", path)
        self.assert_problems(res, path, [
            ("$.proxmox.api_url", "https"),
            ("$.proxmox.token_secret", "PVE_TOKEN_SECRET"),
            ("$.vms[0].cores", "got 0"),
            ("$.vms[1].name", "got 'web_2'"),
            ("$.vms[2].memory_mb", "got a string '4096'"),
            ("$.vms[3].corse", "did you mean 'cores'?"),
            ("$.vms[4].vmid", "duplicate VMID 8001"),
            ("$.vms[5].user_config.password_hash", "mkpasswd -m sha-512"),
            ("$.vms[6].features[0]", "got 'k8s'"),
            ("$.vms[7].network_config.gw", "inside '10.0.0.5/24'"),
        ])
        # neither the secret nor the plaintext password is echoed back
        self.assertNotIn("s3cr3t", res.stderr)
        self.assertNotIn("hunter2", res.stderr)

    def test_problem_count_is_capped(self):
        path = self.write({"vms": [vm(vmid=8000 + i, name=f"vm{i}", cores=0)
                                   for i in range(70)]})
        res = self.run_bin("--check", "--config", path)
        self.assertEqual(res.returncode, 2)
        lines = self.problem_lines(res.stderr)
        self.assertEqual(len(lines), 51, res.stderr)
        self.assertIn("... and 20 more problems", lines[-1])

    def test_syntax_error_names_line_and_column(self):
        path = self.write('{\n  "vms": [\n    {"vmid": 8001,}\n  ]\n}\n')
        res = self.run_bin("--check", "--config", path)
        self.assertEqual(res.returncode, 2)
        self.assertRegex(res.stderr, "^error: " + path.replace(".", r"\.") + r":3:\d+: ")

    def test_secret_file_is_checked_as_a_run_would_open_it(self):
        # the example names /etc/phoenix/token.secret, which does not exist here: a run would
        # exit 2 when it reads the secret, so --check does too, with the fix
        res = self.run_bin("--check", "--config", EXAMPLE)
        self.assertEqual(res.returncode, 2, res.stdout)
        self.assertEqual(res.stdout, "")
        self.assertIn("error: token secret file '/etc/phoenix/token.secret' does not exist: "
                      "create it with 'install -m 600 /dev/null /etc/phoenix/token.secret'",
                      res.stderr)
        env, secret = self.secret_env(mode=0o640)
        res = self.run_bin("--check", "--config", EXAMPLE, env=env)
        self.assertEqual(res.returncode, 2, res.stdout)
        self.assertIn("token secret file '%s': mode 0640 lets others read it; run 'chmod 600 "
                      "%s'" % (secret, secret), res.stderr)
        os.chmod(secret, 0o600)
        # a secret in the environment wins over the file, as in a run: nothing to check
        env = dict(CLEAN_ENV, PVE_TOKEN_SECRET="x")
        res = self.run_bin("--check", "--config", EXAMPLE, env=env)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("secret: PVE_TOKEN_SECRET", res.stdout)
        # no secret anywhere is an unset connection, like a missing API URL: still valid
        path = self.write({"vms": [vm()]})
        res = self.run_bin("--check", "--config", path)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("secret: (none: set PVE_TOKEN_SECRET_FILE", res.stdout)
        if os.geteuid() != 0:
            return  # the owner case needs a chown
        os.chown(secret, 65534, 65534)
        res = self.run_bin("--check", "--config", EXAMPLE, env=env | {
            "PVE_TOKEN_SECRET": "", "PVE_TOKEN_SECRET_FILE": secret})
        self.assertEqual(res.returncode, 2, res.stdout)
        self.assertIn("token secret file '%s': owned by uid 65534, not by the user running this "
                      "(uid 0) or root; run 'chown 0 %s'" % (secret, secret), res.stderr)

    def test_deploy_preparation_runs_at_check(self):
        # native mode cannot deliver features without a snippet: deploy refuses it before
        # any request, and --check refuses it the same way (one code path)
        path = self.write({"defaults": {"cloudinit_mode": "native"},
                           "vms": [vm(features=["docker"]),
                                   vm(vmid=8002, name="web-2", packages=["htop"]),
                                   vm(vmid=8003, name="web-3")]})
        res = self.run_bin("--check", "--config", path)
        self.assertEqual(res.returncode, 2, res.stdout)
        self.assertEqual(res.stdout, "")
        lines = self.problem_lines(res.stderr)
        self.assertEqual(lines, [
            "%s: $.vms[%d]: features and packages need cloudinit_mode 'iso', or "
            "defaults.snippets_dir for native mode (Proxmox's native cloud-init cannot "
            "deliver them without a snippet)" % (path, i) for i in (0, 1)])
        # JSON readers (the completions) still get the names, marked invalid, exit 2 as well
        res = self.run_bin("--check", "--output", "json", "--config", path)
        self.assertEqual(res.returncode, 2, res.stdout)
        doc = json.loads(res.stdout)
        self.assertFalse(doc["valid"])
        self.assertEqual([v["vmid"] for v in doc["vms"]], [8001, 8002, 8003])
        self.assertEqual(doc["problems"], lines)
        # iso mode creates the user: a VM without user_config is refused at --check too
        path = self.write({"vms": [vm(user_config=None)]})
        doc = json.load(open(path))
        del doc["vms"][0]["user_config"]
        path = self.write(doc)
        res = self.run_bin("--check", "--config", path)
        self.assertEqual(res.returncode, 2, res.stdout)
        self.assertIn("$.vms[0].user_config: required with cloudinit_mode 'iso'", res.stderr)

    def test_built_in_features_are_found_beside_the_binary(self):
        # a config outside the repository, no `make install`: the build tree's binary finds
        # configs/features/docker.sh beside itself
        env, _ = self.secret_env()
        path = self.write({"vms": [vm(features=["docker"])]})
        res = self.run_bin("--check", "--output", "json", "--config", path, env=env)
        self.assertEqual(res.returncode, 0, res.stderr)
        docker = [f for f in json.loads(res.stdout)["features"] if f["name"] == "docker"][0]
        self.assertEqual(docker["script_path"],
                         os.path.join(os.path.dirname(os.path.realpath(BIN)), "configs",
                                      "features", "docker.sh"))
        res = self.run_bin("--check", "--config", path, env=env)
        self.assertNotIn("script not found", res.stdout)
        # installed: <prefix>/bin/orchestrator finds <prefix>/share/phoenix/features/
        prefix = os.path.join(self.tmp, "prefix")
        os.makedirs(os.path.join(prefix, "bin"))
        shutil.copy(BIN, os.path.join(prefix, "bin", "orchestrator"))
        run = [os.path.join(prefix, "bin", "orchestrator"), "--check", "--config", path]
        if not os.path.exists("/usr/local/share/phoenix/features/docker.sh"):
            res = subprocess.run(run, capture_output=True, text=True, env=env, timeout=60)
            self.assertEqual(res.returncode, 2, res.stdout)
            self.assertIn("$.vms[0].features[0]: the built-in feature 'docker' needs its "
                          "script 'configs/features/docker.sh', which is neither next to the "
                          "config, nor beside this binary", res.stderr)
        shutil.copytree(os.path.join(REPO, "configs", "features"),
                        os.path.join(prefix, "share", "phoenix", "features"))
        res = subprocess.run(run, capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("  docker: %s/share/phoenix/features/docker.sh (built-in)\n" % prefix,
                      res.stdout)

    def test_no_config_anywhere_names_the_places_tried(self):
        if os.path.exists("/etc/phoenix/phoenix_vm_configs.json"):
            self.skipTest("this machine has /etc/phoenix/phoenix_vm_configs.json")
        res = subprocess.run([BIN, "--check"], capture_output=True, text=True, timeout=60,
                             env=CLEAN_ENV, cwd=self.tmp)
        self.assertEqual(res.returncode, 2, res.stdout)
        self.assertEqual(res.stderr.splitlines(), [
            "error: no config found: looked for 'phoenix_vm_configs.json' in the working "
            "directory (%s) and for '/etc/phoenix/phoenix_vm_configs.json'; give its path "
            "with --config FILE" % os.path.realpath(self.tmp)])

    def test_missing_config_exits_2(self):
        res = self.run_bin("--check", "--config", os.path.join(self.tmp, "nope.json"))
        self.assertEqual(res.returncode, 2)
        self.assertIn("nope.json", res.stderr)

    def test_no_network_even_with_a_reachable_api_url(self):
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(8)
            srv.setblocking(False)
            url = "https://127.0.0.1:%d" % srv.getsockname()[1]
            good = self.write({"proxmox": {"api_url": url, "token_id": "phoenix@pve!ci"},
                               "vms": [vm()]}, "good.json")
            bad = self.write({"proxmox": {"api_url": url, "token_id": "phoenix@pve!ci"},
                              "vms": [vm(cores=0)]}, "bad.json")
            env = dict(CLEAN_ENV, PVE_API_URL=url, PVE_TOKEN_SECRET="x")
            self.assertEqual(self.run_bin("--check", "--config", good, env=env).returncode, 0)
            self.assertEqual(self.run_bin("--check", "--config", bad, env=env).returncode, 2)
            try:
                conn, _ = srv.accept()
                conn.close()
                self.fail("--check connected to the API URL")
            except BlockingIOError:
                pass

    def test_clone_path_of_each_vm(self):
        # --check contacts no server: it names the clone path as far as the config tells
        tpl = {"name": "noble", "image_url": "https://example.org/noble.img",
               "sha256": "0" * 64, "node": "pve1", "vmid": 9000}
        doc = {"proxmox": {"node": "pve1"}, "templates": [tpl], "vms": [
            vm(clone_from_vmid=None, clone_from_template="noble"),
            vm(vmid=8002, name="web-2", node="pve2"),
            vm(vmid=8003, name="web-3", node="auto"),
            vm(vmid=8004, name="web-4", clone_from_vmid=4242)]}
        for v in doc["vms"]:
            if v.get("clone_from_vmid") is None:
                del v["clone_from_vmid"]
        path = self.write(doc)
        res = self.run_bin("--check", "--config", path)
        self.assertEqual(res.returncode, 0, res.stderr)
        paths = [l.strip() for l in res.stdout.splitlines() if "clone path:" in l]
        self.assertEqual(paths, [
            "clone path: clones the template on pve1",
            "clone path: across nodes: a clone with target when the template's disks are on "
            "shared storage, else a full clone and an offline migration (--dry-run shows "
            "which)",
            'clone path: node "auto": placed at run time (--dry-run shows where and how it '
            "is cloned)",
            "clone path: the config does not say where the template is: --dry-run shows the "
            "clone path"])
        res = self.run_bin("--check", "--output", "json", "--config", path)
        self.assertEqual(res.returncode, 0, res.stderr)
        vms = json.loads(res.stdout)["vms"]
        self.assertEqual([(v["node"], v["clone_path"]) for v in vms],
                         [("pve1", "own-node"), ("pve2", "cross-node"), ("auto", "placed"),
                          ("pve1", "unknown")])

    def test_valgrind_clean(self):
        if os.environ.get("PHX_SANITIZE"):
            self.skipTest("sanitizer build: valgrind cannot run an ASan binary")
        if not shutil.which("valgrind"):
            self.skipTest("valgrind is not installed")
        bad = self.write({"vms": [vm(cores=0), vm(name="x_y", corse=1)]})
        env, _ = self.secret_env()
        for args, want in ((["--check", "--config", EXAMPLE], 0),
                           (["--check", "--output", "json", "--config", EXAMPLE], 0),
                           (["--check", "--config", bad], 2)):
            res = subprocess.run(["valgrind", "-q", "--leak-check=full", "--error-exitcode=9",
                                  BIN, *args], capture_output=True, text=True, timeout=300,
                                 env=env)
            self.assertEqual(res.returncode, want, res.stderr)
            self.assertNotIn("==", res.stderr, res.stderr)


if __name__ == "__main__":
    unittest.main()
