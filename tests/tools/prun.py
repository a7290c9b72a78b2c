#!/usr/bin/env python3
"""make check's scheduler: runs every test suite as independent jobs on all cores.

Most of make check's time is one guest at a time under TCG (libguestfs appliances, qemu boots)
or a test waiting on a task, so one core idles while the other works; run serially, the suites
took 20.7 min on a 2-core machine. Here each job is one unit test binary, one test of a C
integration binary, or one Python test class (simulator and integration tests; a module with
a setUpModule fixture is one job), and up to
--jobs of them run at once, the longest first (by the durations the last run recorded, else
by tests/test-times.json, else first, as unknown); jobs that boot real guests (BOOTS) never
run two at once.

Every job's output goes to <log-dir>/<job>.log; a line is printed when a job ends, and a failed
job's whole log is printed. The summary lists failures, skipped tests (with their reasons) and
the slowest jobs. Exit status: 0 when every job passed, 1 otherwise.

Usage: prun.py [--jobs N] [--log-dir DIR] [--times FILE]
               [--unit BIN...] [--itest BIN...] [--simtest DIR] [--pytest DIR]
Environment: the jobs inherit it; PHX_BIN, PHX_BUILD and PHX_SRC are passed through.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SEED_TIMES = os.path.join(REPO, "tests", "test-times.json")
UNKNOWN_JOB_S = 1000.0  # unknown jobs start first: they may be the long ones
# Jobs that boot real guests under TCG (each guest a busy core or two, for minutes): never two
# at once, so a boot shares the machine with at most one lighter job and its guest-agent
# waits stay what they are in a serial run.
BOOTS = re.compile(r"^(pytest test_demo\.|simtest test_qemu_mode\.Qemu(Boot|Lifecycle)$|"
                   r"simtest test_lxc_real\.RealContainers$|"
                   r"pytest test_provision_ct\.RealContainerTest$)")

LIST_CLASSES = r"""
import sys, unittest
seen = []
def walk(s):
    for t in s:
        if isinstance(t, unittest.TestSuite):
            walk(t)
        elif type(t).__name__ in ('_FailedTest', 'ModuleImportFailure'):
            sys.exit('cannot load %s: %s' % (t.id(), getattr(t, '_exception', '')))
        else:
            mod = sys.modules[type(t).__module__]
            # a module-wide fixture (one customized image for all its classes) stays one job
            n = mod.__name__ if hasattr(mod, 'setUpModule') else \
                mod.__name__ + '.' + type(t).__qualname__
            if n not in seen:
                seen.append(n)
walk(unittest.defaultTestLoader.discover('.', pattern='test_*.py', top_level_dir='.'))
print('\n'.join(seen))
"""


class Job:
    def __init__(self, name, argv, cwd=None):
        self.name, self.argv, self.cwd = name, argv, cwd
        self.status, self.seconds, self.log = None, 0.0, None


def python_jobs(kind, directory):
    p = subprocess.run([sys.executable, "-c", LIST_CLASSES], cwd=directory,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("prun: listing the test classes of %s failed:\n%s" % (directory,
                                                                             p.stderr))
    return [Job("%s %s" % (kind, cls), [sys.executable, "-m", "unittest", "-v", cls],
                cwd=directory) for cls in p.stdout.split()]


def criterion_jobs(binary):
    """One job per Criterion test, so the long C integration binaries spread over the cores."""
    p = subprocess.run([binary, "--list"], capture_output=True, text=True)
    name, suite, jobs = os.path.basename(binary), None, []
    for line in p.stdout.splitlines():
        m = re.match(r"^(\S+): \d+ tests?$", line)
        if m:
            suite = m.group(1)
            continue
        m = re.match(r"^\S+\s+(\S+)$", line)  # "├── test_name" / "└── test_name"
        if m and suite:
            t = "%s/%s" % (suite, m.group(1))
            jobs.append(Job("itest %s %s" % (name, t), [binary, "--jobs", "1", "--filter", t]))
    if p.returncode != 0 or not jobs:
        return [Job("itest " + name, [binary, "--jobs", "1"])]
    return jobs


def load_times(path):
    for p in (path, SEED_TIMES):
        try:
            with open(p, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            continue
    return {}


def log_name(job):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", job.name) + ".log"


class Runner:
    def __init__(self, jobs, width, log_dir):
        self.queue, self.width, self.log_dir = jobs, width, log_dir
        self.lock = threading.Lock()
        self.running = {}
        self.stopping = False
        self.booting = False  # a BOOTS job runs
        self.changed = threading.Condition(self.lock)

    def worker(self):
        while True:
            with self.lock:
                while True:
                    if self.stopping or not self.queue:
                        return
                    job = next((j for j in self.queue if not (self.booting and
                                                              BOOTS.match(j.name))), None)
                    if job:
                        break
                    self.changed.wait()  # only boots are left and one runs
                self.queue.remove(job)
                boot = bool(BOOTS.match(job.name))
                self.booting = self.booting or boot
            self.run(job)
            with self.lock:
                if boot:
                    self.booting = False
                self.changed.notify_all()

    def run(self, job):
        job.log = os.path.join(self.log_dir, log_name(job))
        start = time.monotonic()
        with open(job.log, "wb") as out:
            try:
                proc = subprocess.Popen(job.argv, cwd=job.cwd, stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
            except OSError as e:
                out.write(("prun: cannot start %s: %s\n" % (job.argv[0], e)).encode())
                proc = None
            if proc:
                with self.lock:
                    self.running[job.name] = proc
                rc = proc.wait()
                with self.lock:
                    del self.running[job.name]
            else:
                rc = 127
        job.seconds = time.monotonic() - start
        job.status = "ok" if rc == 0 else "FAIL(%d)" % rc
        with self.lock:
            print("%-8s %7.1fs  %s" % (job.status, job.seconds, job.name), flush=True)
            if rc != 0:
                with open(job.log, encoding="utf-8", errors="replace") as f:
                    sys.stdout.write(f.read())
                print("-- end of %s (log: %s)" % (job.name, job.log), flush=True)

    def stop(self, *_):
        with self.lock:
            self.stopping = True
            self.changed.notify_all()
            for proc in self.running.values():
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass


def skipped_lines(job):
    try:
        with open(job.log, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    # unittest -v: "test_x (mod.Class.test_x) ... skipped 'why'"; Criterion: "[SKIP]"
    return [l.strip() for l in text.splitlines() if re.search(r"\.\.\. skipped |\[SKIP", l)]


def main():
    ap = argparse.ArgumentParser(description="make check's parallel test scheduler")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--log-dir", default=os.path.join(REPO, "build", "test-logs"))
    ap.add_argument("--times", default=os.path.join(REPO, "build", "test-times.json"))
    ap.add_argument("--unit", nargs="*", default=[])
    ap.add_argument("--itest", nargs="*", default=[])
    ap.add_argument("--simtest")
    ap.add_argument("--pytest")
    a = ap.parse_args()

    jobs = [Job("unit " + os.path.basename(b), [os.path.abspath(b), "--jobs", "1"])
            for b in a.unit]
    for b in a.itest:
        jobs += criterion_jobs(os.path.abspath(b))
    if a.simtest:
        jobs += python_jobs("simtest", a.simtest)
    if a.pytest:
        jobs += python_jobs("pytest", a.pytest)
    times = load_times(a.times)
    jobs.sort(key=lambda j: -times.get(j.name, UNKNOWN_JOB_S))
    os.makedirs(a.log_dir, exist_ok=True)

    print("prun: %d jobs on %d cores, logs in %s" % (len(jobs), a.jobs, a.log_dir), flush=True)
    runner = Runner(list(jobs), a.jobs, a.log_dir)
    signal.signal(signal.SIGINT, runner.stop)
    signal.signal(signal.SIGTERM, runner.stop)
    start = time.monotonic()
    threads = [threading.Thread(target=runner.worker) for _ in range(max(1, a.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start

    done = [j for j in jobs if j.status]
    failed = [j for j in done if j.status != "ok"]
    times.update({j.name: round(j.seconds, 1) for j in done})
    try:
        with open(a.times, "w", encoding="utf-8") as f:
            json.dump(times, f, indent=1, sort_keys=True)
    except OSError as e:
        print("prun: cannot record durations in %s: %s" % (a.times, e))

    skips = [(j.name, l) for j in done for l in skipped_lines(j)]
    print("\nprun: %d jobs in %.0f s wall (%.0f s of jobs on %d cores)" % (
        len(done), wall, sum(j.seconds for j in done), a.jobs))
    print("slowest: " + ", ".join("%s %.0fs" % (j.name, j.seconds) for j in
                                  sorted(done, key=lambda j: -j.seconds)[:8]))
    if skips:
        print("skipped tests (%d):" % len(skips))
        for name, line in skips:
            print("  %s: %s" % (name, line))
    if runner.stopping:
        print("prun: interrupted; %d jobs not run" % (len(jobs) - len(done)))
        return 1
    if failed:
        print("prun: FAILED: " + ", ".join(j.name for j in failed))
        return 1
    print("prun: all %d jobs passed" % len(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
