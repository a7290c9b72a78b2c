"""Validates what the cloudinit module renders with cloud-init's own code.

Debian's `cloud-init` package is fetched with `apt-get download` (cached under
$PHX_BUILD/ci-schema), unpacked with `dpkg-deb -x` (never installed), and run from there:
- `python3 -m cloudinit.cmd.main schema -c <user-data>` for every rendered case;
- the network-config through `schema --schema-type network-config` when that cloud-init has
  it (>= 23.x), else through cloud-init's own v2 parser (cloudinit.net.network_state), which
  is what turns the file into the guest's network configuration;
- PyYAML (what cloud-init loads user-data with) must read every user value back as the same
  string (no `yes` turned into True, no `0755` into 493).

The rendered files come from the real module: tests/tools/ci-schema/ci_render.c is built
against $PHX_BUILD/libphoenix.a and renders the cases of tests/data/cloudinit/ci_cases.h, and
the test also checks they equal the golden files the unit test compares the module with.
Skips (with the reason) only when the package cannot be fetched; a missing Python dependency
of cloud-init is a failure (scripts/install-deps.sh installs them).

user_data_parts and vendor_data (the "parts" case) are MIME multipart, which `schema -c` does
not read: cloud-init's own UserDataProcessor splits them and its CloudConfigPartHandler merges
their cloud-config parts (tests/tools/ci-schema/mime_parts.py); each cloud-config part and the
merged result then go through `schema -c`.

Also here: configs/features/docker.sh run against stub commands (idempotency, user handling),
since features are delivered through the same user-data.
"""
import glob
import os
import shutil
import subprocess
import tempfile
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("PHX_BUILD", os.path.join(REPO, "build"))
CACHE = os.path.join(BUILD, "ci-schema")
GOLDEN = os.path.join(REPO, "tests", "data", "cloudinit")
CASES = ("static", "dhcp", "tricky", "multinic")
# cloud-init's Debian dependencies live in the system interpreter, not in a pyenv/venv one
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
PKGLIBS = "libcurl openssl jansson yaml-0.1 libguestfs libisofs-1 gpgme"


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def fetch_cloud_init():
    """Returns (dist-packages dir, None) or (None, reason it could not be fetched)."""
    root = os.path.join(CACHE, "root")
    dist = os.path.join(root, "usr", "lib", "python3", "dist-packages")
    if os.path.isdir(os.path.join(dist, "cloudinit")):
        return dist, None
    os.makedirs(CACHE, exist_ok=True)
    debs = glob.glob(os.path.join(CACHE, "cloud-init_*.deb"))
    if not debs:
        if not shutil.which("apt-get"):
            return None, "apt-get not available"
        r = run(["apt-get", "download", "cloud-init"], cwd=CACHE)
        debs = glob.glob(os.path.join(CACHE, "cloud-init_*.deb"))
        if r.returncode != 0 or not debs:
            return None, "apt-get download cloud-init failed: " + r.stderr.strip()[-300:]
    tmp = root + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    r = run(["dpkg-deb", "-x", sorted(debs)[-1], tmp])
    if r.returncode != 0:
        raise AssertionError("dpkg-deb -x failed: " + r.stderr)
    shutil.rmtree(root, ignore_errors=True)
    os.rename(tmp, root)
    return dist, None


class CloudInitSchema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dist, why = fetch_cloud_init()
        if not cls.dist:
            raise unittest.SkipTest("cannot fetch Debian's cloud-init package: " + why)
        cls.env = dict(os.environ, PYTHONPATH=cls.dist, LC_ALL="C.UTF-8")
        r = run([PYTHON, "-c", "import cloudinit.cmd.main, cloudinit.net.network_state, yaml"],
                env=cls.env)
        if r.returncode != 0:
            raise AssertionError(
                "cloud-init does not import with %s (install its dependencies with "
                "scripts/install-deps.sh): %s" % (PYTHON, r.stderr.strip().splitlines()[-1]))
        cls.tmp = tempfile.mkdtemp(prefix="phx-ci-schema-")
        cls.out = os.path.join(cls.tmp, "out")
        os.makedirs(cls.out)
        cls.render_cases()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def render_cases(cls):
        lib = os.path.join(BUILD, "libphoenix.a")
        if not os.path.exists(lib):
            raise AssertionError("%s missing: run make first" % lib)
        exe = os.path.join(cls.tmp, "ci_render")
        flags = run(["pkg-config", "--libs"] + PKGLIBS.split()).stdout.split()
        san = ["-fsanitize=address,undefined"] if os.environ.get("PHX_SANITIZE") else []
        r = run([os.environ.get("CC", "cc"), "-std=gnu11", "-Wall", "-Wextra", "-Werror",
                 "-D_GNU_SOURCE", "-I" + os.path.join(REPO, "include")] + san +
                ["-o", exe, os.path.join(REPO, "tests", "tools", "ci-schema", "ci_render.c"),
                 lib] + flags + ["-lpthread"])
        if r.returncode != 0:
            raise AssertionError("building ci_render failed:\n" + r.stderr)
        r = run([exe, cls.out])
        if r.returncode != 0:
            raise AssertionError("ci_render failed: " + r.stderr)

    def rendered(self, case, kind):
        return os.path.join(self.out, "%s.%s" % (case, kind))

    def schema(self, *args):
        return run([PYTHON, "-m", "cloudinit.cmd.main", "schema"] + list(args), env=self.env)

    def test_rendered_files_are_the_golden_files(self):
        for case in CASES:
            for kind in ("user-data", "meta-data", "network-config"):
                with open(self.rendered(case, kind), "rb") as f:
                    got = f.read()
                with open(os.path.join(GOLDEN, "%s.%s.golden" % (case, kind)), "rb") as f:
                    self.assertEqual(got, f.read(), "%s %s" % (case, kind))

    def test_rendered_parts_case_is_the_golden_files(self):
        for kind in ("user-data", "meta-data", "network-config", "vendor-data"):
            with open(self.rendered("parts", kind), "rb") as f:
                got = f.read()
            with open(os.path.join(GOLDEN, "parts.%s.golden" % kind), "rb") as f:
                self.assertEqual(got, f.read(), "parts " + kind)

    def mime(self, path):
        import json

        script = os.path.join(REPO, "tests", "tools", "ci-schema", "mime_parts.py")
        r = run([PYTHON, script, path], env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def assert_valid_cloud_config(self, name, data):
        import yaml

        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(data if isinstance(data, str) else
                    "#cloud-config\n" + yaml.safe_dump(data, default_flow_style=False))
        r = self.schema("-c", path)
        self.assertEqual(r.returncode, 0, "%s: %s%s" % (name, r.stdout, r.stderr))
        self.assertIn("Valid cloud-config", r.stdout)

    def test_user_data_parts_are_split_and_merged_by_cloud_init(self):
        got = self.mime(self.rendered("parts", "user-data"))
        parts = got["parts"]
        # ours first, then the config's parts in order, each byte for byte with its type
        self.assertEqual([(p["type"], p["filename"]) for p in parts], [
            ("text/cloud-config", "phoenix.cfg"), ("text/x-shellscript", "part-001"),
            ("text/cloud-config", "part-002"), ("text/x-shellscript-per-boot", "part-003")])
        self.assertEqual(parts[1]["payload"], "#!/bin/sh\necho part one > /run/phoenix-part-1\n")
        self.assertEqual(parts[3]["payload"], "#!/bin/sh\n# no trailing newline\ntrue")
        for i, p in enumerate(parts):
            if p["type"] == "text/cloud-config":
                self.assert_valid_cloud_config("part-%d.yaml" % i, p["payload"])
        merged = got["cloud-config"]
        self.assert_valid_cloud_config("merged.yaml", merged)
        # the part adds to our lists (the guest agent stays) and keeps our keys
        self.assertEqual(merged["packages"], ["qemu-guest-agent", "htop"])
        self.assertEqual(merged["runcmd"], [["touch", "/run/phx-cc"]])
        self.assertEqual(merged["hostname"], "parts")
        self.assertEqual(merged["users"][0]["name"], "ops")
        # and that is the Merge-Type header's doing: cloud-init's default merge would have
        # replaced our packages (the reason the header is there)
        with open(self.rendered("parts", "user-data"), encoding="utf-8") as f:
            text = f.read()
        plain = os.path.join(self.tmp, "parts-no-merge-type")
        with open(plain, "w", encoding="utf-8") as f:
            f.write("\n".join(l for l in text.split("\n") if not l.startswith("Merge-Type:")))
        self.assertEqual(self.mime(plain)["cloud-config"]["packages"], ["htop"])

    def test_vendor_data_is_read_by_nocloud_and_valid(self):
        import hashlib
        import json

        got = self.mime(self.rendered("parts", "vendor-data"))
        self.assertEqual([p["type"] for p in got["parts"]], ["text/cloud-config"])
        self.assert_valid_cloud_config("vendor.yaml", got["parts"][0]["payload"])
        self.assertEqual(got["cloud-config"]["ntp"], {"enabled": True,
                                                      "servers": ["ntp.example"]})
        seed = os.path.join(self.tmp, "seed-parts")
        r = run(["xorriso", "-osirrox", "on", "-indev", self.rendered("parts", "iso"),
                 "-extract", "/", seed])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(seed)),
                         ["meta-data", "network-config", "user-data", "vendor-data"])
        script = os.path.join(REPO, "tests", "tools", "ci-schema", "nocloud_seed.py")
        r = run([PYTHON, script, seed], env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.rendered("parts", "vendor-data"), "rb") as f:
            self.assertEqual(json.loads(r.stdout)["vendor-data-sha256"],
                             hashlib.sha256(f.read()).hexdigest())

    def test_validator_rejects_a_broken_cloud_config(self):
        # proves the validator really runs and fails: a test that cannot fail proves nothing
        bad = os.path.join(self.tmp, "bad.yaml")
        with open(bad, "w") as f:
            f.write("#cloud-config\nusers:\n- name: x\n  lock_passwd: \"no\"\n"
                    "packages: {a: 1}\nwrite_files:\n- content: x\n")
        r = self.schema("-c", bad)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("schema errors", r.stdout + r.stderr)
        self.assertIn("'path' is a required property", r.stdout + r.stderr)

    def test_every_user_data_passes_cloud_init_schema(self):
        for case in CASES:
            with self.subTest(case=case):
                r = self.schema("-c", self.rendered(case, "user-data"))
                self.assertEqual(r.returncode, 0, "%s: %s%s" % (case, r.stdout, r.stderr))
                self.assertIn("Valid cloud-config", r.stdout)

    def test_network_config_is_accepted_by_cloud_init(self):
        help_text = self.schema("--help").stdout
        if "--schema-type" in help_text and "network-config" in help_text:
            for case in CASES:
                r = self.schema("--schema-type", "network-config", "-c",
                                self.rendered(case, "network-config"))
                self.assertEqual(r.returncode, 0, "%s: %s%s" % (case, r.stdout, r.stderr))
        # cloud-init's v2 parser, always: the file must mean what we asked for
        script = os.path.join(REPO, "tests", "tools", "ci-schema", "netcfg_summary.py")
        for case, want in (
            ("static", "eth0 bc:24:11:ab:cd:ef static 10.0.0.5/24 route 0.0.0.0/0 via "
                       "10.0.0.1 dns 10.0.0.53,1.1.1.1 search example.com,lab.example.com"),
            ("dhcp", "eth0 12:34:56:78:90:12 dhcp4"),
        ):
            r = run([PYTHON, script, self.rendered(case, "network-config")], env=self.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), want, case)
        # several NICs, each found by its MAC under its own name. cloud-init 22.4's v1
        # conversion hangs every route on the first subnet and reads "::/0" as "::/64" (its
        # _normalize_net_keys); netplan, which gets the v2 file as it is, does not
        r = run([PYTHON, script, self.rendered("multinic", "network-config")], env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        eth0, eth1, eth2 = r.stdout.strip().split("\n")
        self.assertTrue(eth0.startswith("eth0 bc:24:11:00:00:01 static 10.0.0.5/24 route "
                                        "0.0.0.0/0 via 10.0.0.1 "), eth0)
        self.assertTrue(eth0.endswith(" dns 10.0.0.53,2001:db8::53 static 2001:db8::5/64"), eth0)
        self.assertEqual(eth1, "eth1 bc:24:11:00:00:02 dhcp4")
        self.assertEqual(eth2, "eth2 bc:24:11:00:00:03 dhcp6")

    def test_seed_iso_is_found_and_read_like_nocloud_does(self):
        """The ISO the iso module builds from the rendered files: blkid (what cloud-init's
        find_devs_with uses) sees an iso9660 labelled cidata, and NoCloud's own seed reader
        gets back the same user-data, the instance-id and the network config."""
        import hashlib
        import json

        if not shutil.which("xorriso"):
            self.fail("xorriso missing: scripts/install-deps.sh installs it")
        script = os.path.join(REPO, "tests", "tools", "ci-schema", "nocloud_seed.py")
        for case in CASES:
            with self.subTest(case=case):
                iso = self.rendered(case, "iso")
                blkid = shutil.which("blkid") or "/sbin/blkid"
                if os.path.exists(blkid):
                    r = run([blkid, "-o", "export", iso])
                    self.assertIn("LABEL=cidata\n", r.stdout, r.stderr)
                    self.assertIn("TYPE=iso9660\n", r.stdout)
                seed = os.path.join(self.tmp, "seed-" + case)
                r = run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", seed])
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(sorted(os.listdir(seed)),
                                 ["meta-data", "network-config", "user-data"])
                r = run([PYTHON, script, seed], env=self.env)
                self.assertEqual(r.returncode, 0, r.stderr)
                got = json.loads(r.stdout)
                with open(self.rendered(case, "user-data"), "rb") as f:
                    self.assertEqual(got["user-data-sha256"], hashlib.sha256(f.read()).hexdigest())
                self.assertTrue(got["user-data-is-cloud-config"])
                self.assertRegex(got["meta-data"]["instance-id"], r"^iid-[0-9a-f]{16}$")
                # "true" must stay a string through cloud-init's load_yaml
                self.assertEqual(got["meta-data"]["local-hostname"],
                                 {"static": "web-01", "dhcp": "db", "tricky": "true",
                                  "multinic": "router"}[case])
                self.assertEqual(got["network-config"]["version"], 2)
                eth0 = got["network-config"]["ethernets"]["eth0"]
                self.assertEqual(eth0["set-name"], "eth0")

    def test_yaml_1_1_reads_every_user_value_back_as_the_same_string(self):
        import_yaml = ("import sys, json, yaml\n"
                       "print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding='utf-8'))))")
        import json

        def load(case, kind):
            r = run([PYTHON, "-c", import_yaml, self.rendered(case, kind)], env=self.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            return json.loads(r.stdout)

        t = load("tricky", "user-data")
        self.assertEqual(t["hostname"], "true")
        self.assertEqual(t["fqdn"], "1e3.example")
        u = t["users"][0]
        self.assertEqual(u["name"], "yes")
        self.assertIs(u["lock_passwd"], False)
        self.assertEqual(u["ssh_authorized_keys"], ["no", "null"])
        self.assertEqual(u["groups"], ["on", "0755", "1e3", "*g", "&g", "!g"])
        self.assertEqual(t["packages"], [
            "Yes", "OFF", "~", "0x1F", "12:30", "2024-01-01", ".inf", "-dash", "? q", "@at",
            "%p", "`tick", "[a]", "{b}", "a, b", "|pipe", ">gt", "'single'", '"double"',
            "x #c", "a: b", "a:b", " lead", "trail ", "=", "<<"])
        s = load("static", "user-data")
        self.assertTrue(s["users"][0]["passwd"].startswith("$6$rounds=4096$"))
        self.assertIs(s["manage_etc_hosts"], True)
        files = {f["path"]: f for f in s["write_files"]}
        self.assertEqual(files["/etc/phoenix/one-line"]["content"], "key: value # not a comment")
        self.assertEqual(files["/etc/phoenix/star"]["content"], "*star")
        self.assertEqual(files["/etc/phoenix/yes"]["content"], "yes")
        self.assertEqual(files["/etc/phoenix/null"]["content"], "~")
        self.assertEqual(files["/etc/phoenix/no-trailing-newline"]["content"],
                         "first line\nsecond line")
        self.assertEqual(files["/etc/phoenix/app.conf"]["permissions"], "0644")
        self.assertEqual(files["/var/lib/phoenix/features/docker.sh"]["permissions"], "0755")
        self.assertEqual(s["runcmd"][0], ["env", "PHOENIX_USER=alice", "/bin/sh",
                                          "/var/lib/phoenix/features/docker.sh"])
        for case in CASES:
            m = load(case, "meta-data")
            self.assertRegex(m["instance-id"], r"^iid-[0-9a-f]{16}$")
            n = load(case, "network-config")
            self.assertEqual(n["version"], 2)
            self.assertIsInstance(n["ethernets"]["eth0"]["match"]["macaddress"], str)


STUBS = {
    # apt-get: records calls; "install" marks docker.io as installed
    "apt-get": 'echo "apt-get $*" >> "$STUB/log"\n'
               'case "$*" in *install*) touch "$STUB/installed";; esac\n',
    "dpkg-query": '[ -e "$STUB/installed" ] && printf "install ok installed"\nexit 0\n',
    "usermod": 'echo "usermod $*" >> "$STUB/log"\ntouch "$STUB/ingroup"\n',
    "groupadd": 'echo "groupadd $*" >> "$STUB/log"\n',
    "getent": 'exit 0\n',
    "id": 'case "$1" in\n-u) echo 0;;\n'
          '-nG) if [ -e "$STUB/ingroup" ]; then echo "alice adm docker"; '
          'else echo "alice adm"; fi;;\n'
          'alice) exit 0;;\n*) exit 1;;\nesac\n',
}


class FeatureDockerScript(unittest.TestCase):
    """configs/features/docker.sh with apt-get/dpkg-query/id/usermod stubbed out."""

    def setUp(self):
        self.stub = tempfile.mkdtemp(prefix="phx-docker-stub-")
        self.addCleanup(shutil.rmtree, self.stub, True)
        for name, body in STUBS.items():
            p = os.path.join(self.stub, name)
            with open(p, "w") as f:
                f.write("#!/bin/sh\n" + body)
            os.chmod(p, 0o755)
        self.script = os.path.join(REPO, "configs", "features", "docker.sh")
        # dash when present: the script must be plain POSIX sh
        self.sh = shutil.which("dash") or "/bin/sh"

    def run_script(self, *args, user=None):
        env = dict(os.environ, STUB=self.stub, PATH=self.stub + ":" + os.environ["PATH"])
        env.pop("PHOENIX_USER", None)
        if user is not None:
            env["PHOENIX_USER"] = user
        return run([self.sh, self.script] + list(args), env=env)

    def calls(self):
        p = os.path.join(self.stub, "log")
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return f.read().splitlines()

    def test_installs_once_and_adds_user_once(self):
        r = self.run_script(user="alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        first = self.calls()
        self.assertTrue(any("install -y" in c and c.endswith("docker.io") for c in first), first)
        self.assertIn("usermod -aG docker alice", first)
        r = self.run_script(user="alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.calls(), first, "second run must change nothing")
        self.assertIn("already installed", r.stdout)

    def test_argument_overrides_env_and_unknown_user_fails(self):
        r = self.run_script("bob", user="alice")
        self.assertEqual(r.returncode, 2)
        self.assertIn("user 'bob' does not exist", r.stderr)
        self.assertEqual(self.calls(), [], "nothing may be installed for a bad user")

    def test_without_user_installs_but_changes_no_group(self):
        r = self.run_script()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(any(c.startswith("usermod") for c in self.calls()))

    def test_script_is_posix_sh(self):
        r = run([self.sh, "-n", self.script])
        self.assertEqual(r.returncode, 0, r.stderr)
        if shutil.which("shellcheck"):
            r = run(["shellcheck", "-s", "sh", self.script])
            self.assertEqual(r.returncode, 0, r.stdout)


if __name__ == "__main__":
    unittest.main()
