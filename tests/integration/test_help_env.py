"""--help and the man page list every environment variable the program reads: the names are
taken from the sources (getenv() and config_env.c's cfg_env()), so a new variable without a
line in cli.c's environment table fails here. No simulator, no build: well under a second.
"""
import glob
import os
import re
import subprocess
import unittest

from phxtest import BIN, REPO


def variables_read():
    names = set()
    for path in glob.glob(os.path.join(REPO, "src", "*.c")):
        with open(path, encoding="utf-8") as f:
            names.update(re.findall(r'\b(?:getenv|cfg_env)\("([A-Z][A-Z0-9_]*)"\)', f.read()))
    return names


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)


class EnvironmentListedTest(unittest.TestCase):
    def test_the_sources_read_the_variables_the_issue_names(self):
        # guards the scan itself: an empty or partial scan would pass everything below
        self.assertLessEqual({"PVE_TLS_FINGERPRINT", "PVE_TLS_CA_FILE", "PVE_TOKEN_SECRET",
                              "NO_COLOR", "PHX_CACHE_DIR"}, variables_read())

    def test_help_lists_every_variable_read(self):
        p = run("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        env = p.stdout.split("\nEnvironment:\n", 1)[1].split("\nExit status:\n", 1)[0]
        listed = set(re.findall(r"^  (\S.*)$", env, re.M))
        names = {n for line in listed for n in line.split(", ")}
        self.assertEqual(variables_read() - names, set(), "read but not in --help")

    def test_man_page_lists_every_variable_read(self):
        with open(os.path.join(REPO, "docs", "orchestrator.1"), encoding="utf-8") as f:
            man = f.read()
        env = man.split(".SH ENVIRONMENT\n", 1)[1].split("\n.SH ", 1)[0]
        names = {n.replace("\\-", "-") for n in re.findall(r"^\\fB(.*)\\fR$", env, re.M)
                 for n in n.split(", ")}
        self.assertEqual(variables_read() - names, set(), "read but not in the man page")


if __name__ == "__main__":
    unittest.main()
