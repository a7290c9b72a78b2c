"""The README's real-cluster setup block, run as written: extracted verbatim from README.md
(the first ```sh block under "Using it with a real cluster") and run by bash -e as root in a
private mount namespace (`unshare -m`) where /etc is an overlay whose writes land in a scratch
directory, so the block's own `install -d /etc/phoenix` is what creates /etc/phoenix. `pveum`,
`pvesm`, `pvesh` and `pvenode` are stand-ins first on PATH that record their arguments and
answer as Proxmox VE would (pve-storage API2/Storage/Config.pm `read`: content as one comma
list; pve-manager API2/Certificates.pm `info` with pve-common Certificate.pm
`get_certificate_info`: file base names and upper-case colon fingerprints). The assertions are
on the recorded arguments (users, token, roles, content lists) and on the files left in the
scratch /etc/phoenix. About 1.5 s of CPU a test (ten short Python stand-ins).
"""
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import textwrap
import unittest

from phxtest import REPO

SECRET = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
FP_SSL = ":".join(["AB"] * 32)
FP_PROXY = ":".join(["CD"] * 32)
FP_CA = ":".join(["EF"] * 32)
ROLES = "PVEVMAdmin,PVEDatastoreAdmin,PVESDNUser"

STUB = textwrap.dedent('''\
    #!/usr/bin/python3
    """Stand-in for a Proxmox VE command: records argv, answers from the JSON state file."""
    import json, os, sys
    here = os.path.dirname(os.path.abspath(__file__))
    name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
    with open(os.path.join(here, "calls.jsonl"), "a") as f:
        f.write(json.dumps([name] + args) + "\\n")
    with open(os.path.join(here, "state.json")) as f:
        state = json.load(f)
    if name == "pvesh" and args[:2] == ["get", "/storage/local"]:
        print(json.dumps({"content": state["content"], "digest": "0" * 40,
                          "path": "/var/lib/vz", "storage": "local", "type": "dir"}))
    elif name == "pvenode" and args[:2] == ["cert", "info"]:
        print(json.dumps(state["certs"]))
    elif name == "pvesm" and args[:1] == ["set"]:
        state["content"] = args[args.index("--content") + 1]
        with open(os.path.join(here, "state.json"), "w") as f:
            json.dump(state, f)
    elif name == "pvesm" and args[:1] == ["status"]:
        print("Name         Type     Status           Total            Used       Available        %")
        if "import" in state["content"].split(","):
            print("local         dir     active        98497780        4028448        89419784    4.09%")
    elif name == "pveum" and args[:3] == ["user", "token", "add"]:
        print("full-tokenid: %s!%s\\nvalue: %s" % (args[3], args[4], state["secret"]))
''')


def readme_setup_block():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## Using it with a real cluster\n", 1)[1].split("\n## ", 1)[0]
    m = re.search(r"^```sh\n(.*?)^```$", section, re.S | re.M)
    return m.group(1)


def example_config():
    with open(os.path.join(REPO, "phoenix_vm_configs.example.json"), encoding="utf-8") as f:
        return json.load(f)


class ReadmeSetupTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: the block runs in a private mount namespace")
        if not shutil.which("unshare"):
            self.skipTest("unshare not found (util-linux)")
        self.tmp = tempfile.mkdtemp(prefix="phx-readme-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def run_block(self, content, certs):
        stubs = os.path.join(self.tmp, "bin")
        os.makedirs(stubs)
        with open(os.path.join(stubs, "state.json"), "w", encoding="utf-8") as f:
            json.dump({"content": content, "certs": certs, "secret": SECRET}, f)
        for name in ("pveum", "pvesm", "pvesh", "pvenode"):
            path = os.path.join(stubs, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(STUB)
            os.chmod(path, 0o755)
        block = os.path.join(self.tmp, "block.sh")
        with open(block, "w", encoding="utf-8") as f:
            f.write(readme_setup_block())
        # the block runs in a checkout: a scratch one, so nothing it writes lands in the repo
        checkout = os.path.join(self.tmp, "checkout")
        os.makedirs(checkout)
        shutil.copy(os.path.join(REPO, "phoenix_vm_configs.example.json"), checkout)
        upper, work = os.path.join(self.tmp, "upper"), os.path.join(self.tmp, "work")
        os.makedirs(upper)
        os.makedirs(work)
        # a whiteout hides a host's own /etc/phoenix: the block must create it
        os.mknod(os.path.join(upper, "phoenix"), stat.S_IFCHR | 0o600, os.makedev(0, 0))
        inner = ('mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc && '
                 'PATH="$3:$PATH" exec bash -e "$4"')
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", inner,
                            "sh", upper, work, stubs, block],
                           cwd=checkout, input=SECRET + "\n", capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, "the README block failed:\n" + p.stdout + p.stderr)
        with open(os.path.join(stubs, "calls.jsonl"), encoding="utf-8") as f:
            calls = [json.loads(line) for line in f]
        return p, calls, os.path.join(upper, "phoenix")

    def certs(self, custom):
        certs = [{"filename": "pve-root-ca.pem", "fingerprint": FP_CA},
                 {"filename": "pve-ssl.pem", "fingerprint": FP_SSL}]
        if custom:
            certs.append({"filename": "pveproxy-ssl.pem", "fingerprint": FP_PROXY})
        return certs

    def content_set(self, calls):
        sets = [c for c in calls if c[:3] == ["pvesm", "set", "local"]]
        self.assertEqual(len(sets), 1, calls)
        self.assertEqual(sets[0][3], "--content")
        return sets[0][4]

    def test_stock_node_user_token_roles_and_content_kept(self):
        # a stock install's 'local' (PVE installer: iso,vztmpl,backup)
        p, calls, etc = self.run_block("iso,vztmpl,backup", self.certs(False))
        token_id = example_config()["proxmox"]["token_id"]
        user, _, token = token_id.partition("!")
        self.assertEqual([c for c in calls if c[0] == "pveum"], [
            ["pveum", "user", "add", user],
            ["pveum", "acl", "modify", "/", "--users", user, "--roles", ROLES],
            ["pveum", "user", "token", "add", user, token],
            ["pveum", "acl", "modify", "/", "--tokens", token_id, "--roles", ROLES],
        ])
        content = self.content_set(calls).split(",")
        self.assertEqual(sorted(content), sorted(["iso", "vztmpl", "backup", "import"]))
        self.assertEqual(len(content), len(set(content)))
        # the storage is read before it is set, and the result is shown
        names = [c[:2] for c in calls if c[0] in ("pvesh", "pvesm")]
        self.assertLess(names.index(["pvesh", "get"]), names.index(["pvesm", "set"]))
        self.assertIn(["pvesm", "status", "--content", "import"], calls)
        self.assertIn("\nlocal ", p.stdout)
        # the fingerprint printed is the one pveproxy serves (pve-ssl.pem without a custom one)
        self.assertIn("\n" + FP_SSL + "\n", "\n" + p.stdout)
        self.assertNotIn(FP_CA, p.stdout)

    def test_etc_phoenix_holds_the_secret_and_config_the_example_reads(self):
        _, _, etc = self.run_block("iso,vztmpl,backup", self.certs(False))
        cfg = example_config()
        self.assertEqual(stat.S_IMODE(os.stat(etc).st_mode), 0o700)
        secret = cfg["proxmox"]["token_secret_file"]
        self.assertEqual(os.path.dirname(secret), "/etc/phoenix")
        path = os.path.join(etc, os.path.basename(secret))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), SECRET + "\n")
        # where the CLI looks without --config (include/cli.h CLI_SYSTEM_CONFIG)
        with open(os.path.join(REPO, "include", "cli.h"), encoding="utf-8") as f:
            system_cfg = re.search(r'#define CLI_SYSTEM_CONFIG "([^"]+)"', f.read()).group(1)
        self.assertEqual(os.path.dirname(system_cfg), "/etc/phoenix")
        with open(os.path.join(etc, os.path.basename(system_cfg)), encoding="utf-8") as f:
            self.assertEqual(json.load(f), cfg)

    def test_richer_content_list_is_kept(self):
        _, calls, _ = self.run_block("rootdir,images,snippets,backup,iso,vztmpl",
                                     self.certs(False))
        self.assertEqual(sorted(self.content_set(calls).split(",")),
                         sorted(["rootdir", "images", "snippets", "backup", "iso", "vztmpl",
                                 "import"]))

    def test_import_not_doubled_and_a_custom_certificate_wins(self):
        p, calls, _ = self.run_block("iso,vztmpl,backup,import", self.certs(True))
        self.assertEqual(sorted(self.content_set(calls).split(",")),
                         sorted(["iso", "vztmpl", "backup", "import"]))
        # a custom certificate (pveproxy-ssl.pem) is what pveproxy serves
        self.assertIn("\n" + FP_PROXY + "\n", "\n" + p.stdout)
        self.assertNotIn(FP_SSL, p.stdout)

if __name__ == "__main__":
    unittest.main()
