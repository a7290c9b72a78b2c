"""The bash and zsh completions (contrib/completion/): both parse (`bash -n`, `zsh -n`), both
offer exactly the options `orchestrator --help` documents, and they complete template names and
VMIDs from the config, through `orchestrator --check --output json`. The bash function is run
as bash runs it (COMP_WORDS, COMP_CWORD, compgen); zsh's runs in an interactive zsh on a
pseudo-terminal (zpty) after compinit, a Tab typed, with compadd wrapped to record what the
completion offers. No simulator, no build: a few seconds (each completion runs the binary once
or twice, each zsh one a compinit).
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest

from phxtest import BIN, REPO

BASH_FILE = os.path.join(REPO, "contrib", "completion", "orchestrator.bash")
ZSH_FILE = os.path.join(REPO, "contrib", "completion", "_orchestrator")


def help_options():
    """Every option --help shows: long names, and the short letters beside them."""
    p = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=30)
    opts = p.stdout.split("\nOptions:\n", 1)[1].split("\n\n", 1)[0]
    longs = set(re.findall(r"^  (?:-\w, |    )(--[a-z][a-z-]*)", opts, re.M))
    shorts = set(re.findall(r"^  (-\w), --", opts, re.M))
    return longs, shorts


# zsh ZSH_DIR OUT LINE: types LINE and a Tab into an interactive zsh whose fpath has ZSH_DIR;
# every match the completion adds is appended to OUT, one a line
ZSH_DRIVER = r"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "compadd() { local -a __h; if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd \"\$@\"; return; fi; builtin compadd -A __h \"\$@\"; print -rl -- \$__h >> ${(q)2}; builtin compadd \"\$@\"; }"
zpty -w z "print ready > ${(q)2}.ready"
for i in {1..300}; do [[ -e $2.ready ]] && break; sleep 0.1; done
[[ -e $2.ready ]] || { print -u2 "zsh did not start"; exit 1 }
zpty -w -n z "$3"$'\t'
for i in {1..300}; do [[ -s $2 ]] && break; sleep 0.1; done
sleep 0.3
zpty -d z
"""


def zsh_complete(words, cwd):
    """What zsh's completion offers for the command line `words` (the last one completed)."""
    out = os.path.join(cwd, "zsh-matches")
    for f in (out, out + ".ready"):
        if os.path.exists(f):
            os.unlink(f)
    line = " ".join(shlex.quote(w) for w in words[:-1]) + " " + words[-1]
    p = subprocess.run(["zsh", "-f", "-c", ZSH_DRIVER, "zsh", os.path.dirname(ZSH_FILE), out,
                        line], cwd=cwd, capture_output=True, text=True, timeout=120)
    if p.returncode != 0 or p.stderr:
        raise AssertionError("zsh completion failed: %r" % p.stderr)
    if not os.path.exists(out):
        return []
    with open(out, encoding="utf-8") as f:
        return [w for w in f.read().split("\n") if w]


def bash_complete(words, cwd):
    """COMPREPLY of _orchestrator for the command line `words`, the last word being completed."""
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
              '_orchestrator; printf "%s\\n" "${COMPREPLY[@]}"')
    p = subprocess.run(["bash", "-c", script, "bash", BASH_FILE, *words], cwd=cwd,
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0 or p.stderr:
        raise AssertionError("bash completion failed: %r" % p.stderr)
    return [w for w in p.stdout.split("\n") if w]


class CompletionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(BIN, os.X_OK):
            raise RuntimeError("no orchestrator binary at %s: run 'make' first" % BIN)
        # a config outside the repo, as an admin's: two templates, three VMs
        cls.dir = tempfile.mkdtemp(prefix="phx-compl-")
        with open(os.path.join(REPO, "phoenix_vm_configs.example.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        secret = os.path.join(cls.dir, "token.secret")
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("11111111-2222-3333-4444-555555555555\n")
        cfg["proxmox"]["token_secret_file"] = secret
        debian = dict(cfg["templates"][0], name="debian-12", vmid=9001)
        cfg["templates"].append(debian)
        for vm in cfg["vms"]:
            vm.pop("features", None)  # the built-in feature's lookup is not under test here
        cfg["vms"].append(dict(cfg["vms"][1], vmid=8103, name="web-2"))
        cls.config = os.path.join(cls.dir, "lab.json")
        with open(cls.config, "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        p = subprocess.run([BIN, "--check", "--config", cls.config], capture_output=True,
                           text=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("the test config does not pass --check:\n" + p.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def complete(self, *words, cwd=None):
        return bash_complete([BIN, *words], cwd or self.dir)

    def test_scripts_parse(self):
        p = subprocess.run(["bash", "-n", BASH_FILE], capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        zsh = shutil.which("zsh")
        if not zsh:
            self.skipTest("zsh not found: install the 'zsh' package (scripts/install-deps.sh)")
        p = subprocess.run([zsh, "-n", ZSH_FILE], capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stderr), (0, ""))

    def test_bash_offers_exactly_the_options_of_help(self):
        longs, shorts = help_options()
        self.assertIn("--provision-template", longs)  # the help parse itself works
        self.assertIn("-C", shorts)
        self.assertEqual(set(self.complete("--")), longs)
        self.assertEqual(set(self.complete("-")), longs | shorts)
        self.assertEqual(self.complete("--prov"), ["--provision-template"])

    def test_zsh_offers_exactly_the_options_of_help(self):
        if not shutil.which("zsh"):
            self.skipTest("zsh not found: install the 'zsh' package (scripts/install-deps.sh)")
        longs, shorts = help_options()
        self.assertEqual(set(zsh_complete([BIN, "-"], self.dir)), longs | shorts)
        self.assertEqual(zsh_complete([BIN, "--prov"], self.dir), ["--provision-template"])

    def test_vmids_of_the_config_for_deploy_and_destroy(self):
        self.assertEqual(self.complete("--config", self.config, ""), ["8001", "8002", "8103"])
        self.assertEqual(self.complete("--config", self.config, "80"), ["8001", "8002"])
        self.assertEqual(self.complete("-C", self.config, "--destroy", "81"), ["8103"])
        # bash splits --config=FILE at '='
        self.assertEqual(self.complete("--config", "=", self.config, "8001", ""),
                         ["8001", "8002", "8103"])

    def test_template_names_for_provision_and_remove(self):
        self.assertEqual(self.complete("--config", self.config, "--provision-template", ""),
                         ["ubuntu-noble", "debian-12"])
        self.assertEqual(self.complete("--config", self.config, "--provision-template",
                                       "ubuntu-noble", "deb"), ["debian-12"])
        self.assertEqual(sorted(self.complete("--config", self.config, "--remove-template", "")),
                         ["9000", "9001", "debian-12", "ubuntu-noble"])
        self.assertEqual(self.complete("--config", self.config, "--list-templates",
                                       "--packages", ""), ["ubuntu-noble", "debian-12"])
        # versions to compare are named on the server, not in the config
        self.assertEqual(self.complete("--config", self.config, "--diff", ""), [])

    def test_default_config_in_the_working_directory(self):
        work = tempfile.mkdtemp(prefix="phx-compl-cwd-")
        self.addCleanup(shutil.rmtree, work, True)
        shutil.copy(self.config, os.path.join(work, "phoenix_vm_configs.json"))
        self.assertEqual(self.complete("--destroy", "", cwd=work), ["8001", "8002", "8103"])

    def test_argument_values_and_an_invalid_config(self):
        self.assertEqual(self.complete("--output", ""), ["text", "json"])
        self.assertEqual(self.complete("--jobs", ""), [])
        self.assertEqual(self.complete("--config", os.path.join(self.dir, "la")),
                         [self.config])
        bad = os.path.join(self.dir, "bad.json")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("{\"vms\": [")
        # nothing offered and nothing printed (bash_complete fails on any stderr)
        self.assertEqual(self.complete("--config", bad, ""), [])

    def test_zsh_completes_template_names_and_vmids_from_the_config(self):
        if not shutil.which("zsh"):
            self.skipTest("zsh not found: install the 'zsh' package (scripts/install-deps.sh)")
        self.assertEqual(zsh_complete([BIN, "--config", self.config, "--destroy", ""],
                                      self.dir), ["8001", "8002", "8103"])
        self.assertEqual(zsh_complete([BIN, "--config=" + self.config, "--provision-template",
                                       ""], self.dir), ["ubuntu-noble", "debian-12"])
        self.assertEqual(zsh_complete([BIN, "-C", self.config, "--output", ""], self.dir),
                         ["text", "json"])
        self.assertEqual(zsh_complete([BIN, "-C", self.config, "--list-templates",
                                       "--packages", ""], self.dir),
                         ["ubuntu-noble", "debian-12"])

if __name__ == "__main__":
    unittest.main()
