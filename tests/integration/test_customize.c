/* Integration tests for customize with the real libguestfs appliance (TCG here, ~25 s per
 * launch) on qcow2 overlays of the tiny test image from scripts/build-test-image.sh --tiny.
 * The result is verified from outside, without libguestfs or our code: the overlay is
 * converted to raw with qemu-img and read with e2fsprogs' debugfs. Four launches in all: one
 * positive run, one failing `run` command, one without network, one filling a small tmpfs
 * cache; the free-space refusal starts none. The tmpfs tests need root (mount).
 * Env: PHX_SRC (repo root), PHX_BUILD (build dir). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <glob.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "customize.h"
#include "log.h"

struct env {
	char src[1024];
	char work[1024];
	char state[1024];
	char image[1024];
	char image_dir[1024];
};

/* Runs a shell command, output appended to out (may be NULL). Returns the exit status. */
static int sh(struct buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh(struct buf *out, const char *fmt, ...)
{
	char cmd[8192], chunk[4096];
	va_list ap;
	FILE *p;
	size_t n;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	cr_assert_not_null(p, "popen %s", cmd);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		if (out)
			cr_assert_eq(buf_append(out, chunk, n, NULL), 0);
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Finds or builds the tiny image; skips the test (with the reason) when it cannot be built,
 * e.g. without network to the Debian mirror. */
static void setup_env(struct env *e, const char *name)
{
	const char *src = getenv("PHX_SRC"), *build = getenv("PHX_BUILD");
	struct buf out = BUF_INIT, log = BUF_INIT;
	char logpath[1100];
	int rc;

	snprintf(e->src, sizeof(e->src), "%s", src ? src : ".");
	snprintf(e->work, sizeof(e->work), "%s/customize-itest/%s", build ? build : "/tmp", name);
	snprintf(e->state, sizeof(e->state), "%s/customize-itest/state", build ? build : "/tmp");
	cr_assert_eq(sh(NULL, "rm -rf '%s' && mkdir -p '%s' '%s'", e->work, e->work, e->state), 0);
	snprintf(logpath, sizeof(logpath), "%s/build-test-image.log", e->work);
	rc = sh(&out, "'%s/scripts/build-test-image.sh' --tiny 2>'%s'", e->src, logpath);
	if (rc != 0) {
		sh(&log, "tail -n 3 '%s'", logpath);
		cr_skip_test("test image cannot be built (exit %d): %s", rc, buf_str(&log));
	}
	snprintf(e->image, sizeof(e->image), "%.*s", (int)strcspn(buf_str(&out), "\n"),
		 buf_str(&out));
	snprintf(e->image_dir, sizeof(e->image_dir), "%s", e->image);
	*strrchr(e->image_dir, '/') = '\0';
	buf_release(&out);
	buf_release(&log);
	log_setup(getenv("PHX_VERBOSE") ? 1 : 0, false);
}

static void make_overlay(const struct env *e, char *ret, size_t len)
{
	snprintf(ret, len, "%s/overlay.qcow2", e->work);
	cr_assert_eq(sh(NULL, "qemu-img create -q -f qcow2 -b '%s' -F qcow2 '%s'", e->image, ret),
		     0);
}

/* debugfs on the overlay's root partition (found from its GPT), output into out. */
struct outside {
	char raw[1100];
	long offset;
};

static void outside_open(struct outside *o, const char *overlay, const struct env *e)
{
	struct buf out = BUF_INIT;

	snprintf(o->raw, sizeof(o->raw), "%s/verify.raw", e->work);
	cr_assert_eq(sh(NULL, "qemu-img convert -O raw '%s' '%s'", overlay, o->raw), 0);
	cr_assert_eq(
		sh(&out, "sfdisk -d '%s' | sed -n 's/.*start= *\\([0-9]*\\),.*/\\1/p'", o->raw), 0);
	o->offset = atol(buf_str(&out)) * 512;
	cr_assert_gt(o->offset, 0, "no partition in '%s'", o->raw);
	buf_release(&out);
}

static void debugfs(const struct outside *o, struct buf *out, const char *req)
{
	buf_reset(out);
	cr_assert_eq(sh(out, "debugfs -R '%s' '%s?offset=%ld' 2>&1", req, o->raw, o->offset), 0);
}

static void add_debs(struct cust_plan *p, const struct env *e)
{
	struct phx_err err = PHX_ERR_INIT;
	char pattern[1100];
	glob_t gl;

	snprintf(pattern, sizeof(pattern), "%s/debs/*.deb", e->image_dir);
	cr_assert_eq(glob(pattern, 0, NULL, &gl), 0, "no .debs in %s/debs", e->image_dir);
	cr_assert_eq(cust_plan_add_local_packages(p, (const char *const *)gl.gl_pathv, gl.gl_pathc,
						  &err),
		     0, "%s", err.msg);
	globfree(&gl);
}

Test(customize, installs_the_agent_offline_and_leaves_a_clean_identity, .timeout = 600)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_opts opts = CUST_OPTS_INIT;
	struct cust_report rep;
	struct cust_plan *p;
	struct outside o;
	struct buf out = BUF_INIT;
	struct env e;
	char overlay[1100], srcfile[1100];
	const char *svc[] = {"qemu-guest-agent"};
	const char *hello = "hello from phoenix\n";
	const char *st;

	setup_env(&e, "positive");
	make_overlay(&e, overlay, sizeof(overlay));
	opts.state_dir = e.state;
	snprintf(srcfile, sizeof(srcfile), "%s/tests/data/customize/file-source.txt", e.src);

	p = cust_plan_new(&err);
	cr_assert_not_null(p);
	add_debs(p, &e);
	cr_assert_eq(cust_plan_add_services(p, svc, 1, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_file_content(p, "/etc/phoenix/hello.txt", 0640, hello,
						strlen(hello), &err),
		     0);
	cr_assert_eq(cust_plan_add_file_source(p, "/opt/phx/from-host.txt", 0600, srcfile, &err), 0,
		     "%s", err.msg);
	cr_assert_eq(cust_plan_add_timezone(p, "Europe/Berlin", &err), 0);
	/* Give the hygiene real work: an identity, a host key and apt lists, as a booted image
	 * would have them. */
	cr_assert_eq(cust_plan_add_run(p,
				       "echo 0123456789abcdef0123456789abcdef >/etc/machine-id && "
				       "mkdir -p /var/lib/dbus /etc/ssh && "
				       "cp /etc/machine-id /var/lib/dbus/machine-id && "
				       "echo fake >/etc/ssh/ssh_host_ed25519_key && "
				       "echo fake >/var/lib/apt/lists/deb.example_Packages && "
				       "echo ran-ok",
				       &err),
		     0);
	cr_assert_eq(cust_run(p, overlay, &opts, &rep, &err), 0, "%s", err.msg);
	cust_plan_free(p);

	cr_assert_str_eq(rep.distro, "debian");
	cr_assert_str_eq(rep.version, "12");
	cr_assert_str_eq(rep.root_device, "/dev/sda1");
	cr_assert(!strcmp(rep.accel, "tcg") || !strcmp(rep.accel, "kvm"), "%s", rep.accel);
	cr_assert_eq(rep.steps, 6);
	cr_assert_gt(rep.launch_seconds, 0.0);
	cr_assert_geq(rep.total_seconds, rep.launch_seconds);
	/* the appliance is a separate process: ours stays small */
	cr_assert(rep.peak_rss_kib > 1000 && rep.peak_rss_kib < 200 * 1024, "%ld",
		  rep.peak_rss_kib);
	/* the package list, from the guest's dpkg, includes what the plan installed */
	cr_assert_not_null(rep.packages);
	cr_assert(strstr(rep.packages, "qemu-guest-agent\t"), "%.300s", rep.packages);
	cr_assert(strstr(rep.packages, "\nsystemd\t") || !strncmp(rep.packages, "systemd\t", 8),
		  "%.300s", rep.packages);
	cust_report_release(&rep);
	fprintf(stderr, "customize itest: %.1f s (launch %.1f s, %s), peak RSS %ld KiB\n",
		rep.total_seconds, rep.launch_seconds, rep.accel, rep.peak_rss_kib);

	/* --- verify from outside --- */
	outside_open(&o, overlay, &e);
	debugfs(&o, &out, "stat /usr/sbin/qemu-ga");
	cr_assert(strstr(buf_str(&out), "Type: regular"), "qemu-ga missing: %s", buf_str(&out));
	debugfs(&o, &out, "cat /var/lib/dpkg/status");
	st = strstr(buf_str(&out), "Package: qemu-guest-agent\n");
	cr_assert_not_null(st, "qemu-guest-agent not in dpkg status");
	cr_assert(!strncmp(strchr(st, '\n') + 1, "Status: install ok installed\n", 29),
		  "agent not fully installed: %.80s", st);
	/* started by udev when the virtio port appears: the rule and the unit are what count */
	debugfs(&o, &out, "stat /usr/lib/udev/rules.d/60-qemu-guest-agent.rules");
	cr_assert(strstr(buf_str(&out), "Type: regular"), "%s", buf_str(&out));
	debugfs(&o, &out, "stat /usr/lib/systemd/system/qemu-guest-agent.service");
	cr_assert(strstr(buf_str(&out), "Type: regular"), "%s", buf_str(&out));

	debugfs(&o, &out, "stat /etc/machine-id");
	cr_assert(strstr(buf_str(&out), "Type: regular") && strstr(buf_str(&out), "Size: 0\n"),
		  "machine-id not empty: %s", buf_str(&out));
	debugfs(&o, &out, "stat /var/lib/dbus/machine-id");
	cr_assert(strstr(buf_str(&out), "Type: symlink") || strstr(buf_str(&out), "File not found"),
		  "dbus machine-id still a file: %s", buf_str(&out));
	debugfs(&o, &out, "ls /etc/ssh");
	cr_assert_null(strstr(buf_str(&out), "ssh_host_"), "host keys left: %s", buf_str(&out));
	debugfs(&o, &out, "ls /var/lib/apt/lists");
	cr_assert_null(strstr(buf_str(&out), "deb.example_Packages"), "%s", buf_str(&out));

	debugfs(&o, &out, "cat /etc/phoenix/hello.txt");
	cr_assert(strstr(buf_str(&out), hello), "%s", buf_str(&out));
	debugfs(&o, &out, "stat /etc/phoenix/hello.txt");
	cr_assert(strstr(buf_str(&out), "Mode:  0640") && strstr(buf_str(&out), "User:     0"),
		  "%s", buf_str(&out));
	debugfs(&o, &out, "cat /opt/phx/from-host.txt");
	cr_assert(strstr(buf_str(&out), "hello from a host file\n"), "%s", buf_str(&out));
	debugfs(&o, &out, "stat /opt/phx/from-host.txt");
	cr_assert(strstr(buf_str(&out), "Mode:  0600"), "%s", buf_str(&out));
	debugfs(&o, &out, "cat /etc/timezone");
	cr_assert(strstr(buf_str(&out), "Europe/Berlin\n"), "%s", buf_str(&out));
	debugfs(&o, &out, "stat /etc/localtime");
	cr_assert(strstr(buf_str(&out), "Type: symlink") &&
			  strstr(buf_str(&out), "/usr/share/zoneinfo/Europe/Berlin"),
		  "%s", buf_str(&out));

	/* the overlay took the writes: the cached base image still has no agent */
	unlink(o.raw);
	outside_open(&o, e.image, &e);
	debugfs(&o, &out, "stat /usr/sbin/qemu-ga");
	cr_assert(strstr(buf_str(&out), "File not found"), "cache modified: %s", buf_str(&out));
	buf_release(&out);
	unlink(o.raw);
}

Test(customize, a_failing_run_command_fails_with_its_status_and_output, .timeout = 600)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_opts opts = CUST_OPTS_INIT;
	struct cust_report rep = {.steps = 4242};
	struct cust_plan *p;
	struct env e;
	char overlay[1100];

	setup_env(&e, "negative");
	make_overlay(&e, overlay, sizeof(overlay));
	opts.state_dir = e.state;
	p = cust_plan_new(&err);
	cr_assert_not_null(p);
	cr_assert_eq(cust_plan_add_run(p, "echo first-line; echo to-stderr >&2; exit 7", &err), 0);
	cr_assert_eq(cust_plan_add_file_content(p, "/etc/never", 0644, "x", 1, &err), 0);

	cr_assert_eq(cust_run(p, overlay, &opts, &rep, &err), -1);
	cust_plan_free(p);
	cr_assert_eq(err.code, PHX_E_GUEST, "%s", err.msg);
	cr_assert(strstr(err.msg, overlay), "disk not named: %s", err.msg);
	cr_assert(strstr(err.msg, "step 1/2 run 'echo first-line; echo to-stderr >&2; exit 7'"),
		  "%s", err.msg);
	cr_assert(strstr(err.msg, "exit status 7"), "%s", err.msg);
	cr_assert(strstr(err.msg, "| first-line\n") && strstr(err.msg, "| to-stderr"), "%s",
		  err.msg);
	cr_assert_eq(rep.steps, 4242, "report written on failure");
}

Test(customize, packages_without_a_reachable_mirror_fail_as_no_network, .timeout = 600)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_opts opts = CUST_OPTS_INIT;
	struct cust_report rep;
	struct cust_plan *p;
	struct env e;
	char overlay[1100];
	const char *pkgs[] = {"qemu-guest-agent"};
	/* .invalid never resolves (RFC 6761): the same failure as a site without network */
	const char *sources = "deb http://phx-no-such-mirror.invalid/debian bookworm main\n";

	setup_env(&e, "nonet");
	make_overlay(&e, overlay, sizeof(overlay));
	opts.state_dir = e.state;
	p = cust_plan_new(&err);
	cr_assert_not_null(p);
	cr_assert_eq(cust_plan_add_file_content(p, "/etc/apt/sources.list", 0644, sources,
						strlen(sources), &err),
		     0);
	cr_assert_eq(cust_plan_add_packages(p, pkgs, 1, &err), 0);
	cr_assert(cust_plan_needs_network(p));

	cr_assert_eq(cust_run(p, overlay, &opts, &rep, &err), -1);
	cust_plan_free(p);
	cr_assert_eq(err.code, PHX_E_NET, "%s", err.msg);
	cr_assert(strstr(err.msg, "step 2/2 install packages 'qemu-guest-agent'"), "%s", err.msg);
	cr_assert(strstr(err.msg, "the guest has no network"), "%s", err.msg);
	cr_assert(strstr(err.msg, "phx-no-such-mirror.invalid"), "apt's output missing: %s",
		  err.msg);
	fprintf(stderr, "customize itest: no-network error as users see it:\n%s\n", err.msg);
}

/* --- a cache file system that fills up (issue #15) --- */

/* The mounted tmpfs, for the teardown (which runs even when an assertion failed). */
static char tmpfs_dir[1100];

static void mount_tmpfs(const char *dir, unsigned long long bytes)
{
	if (geteuid() != 0)
		cr_skip_test("mounting a tmpfs needs root");
	snprintf(tmpfs_dir, sizeof(tmpfs_dir), "%s", dir);
	cr_assert_eq(sh(NULL, "mkdir -p '%s' && mount -t tmpfs -o size=%llu phx-itest '%s'", dir,
			bytes, dir),
		     0, "mount a tmpfs on %s", dir);
}

static void umount_tmpfs(void)
{
	/* lazy: a qemu left behind by a failed test must not keep the mount around */
	if (tmpfs_dir[0])
		sh(NULL, "umount -l '%s' 2>/dev/null; rmdir '%s' 2>/dev/null", tmpfs_dir,
		   tmpfs_dir);
	tmpfs_dir[0] = '\0';
}

static void tmpfs_fini(void)
{
	umount_tmpfs();
}

/* Processes still naming `disk` on their command line, and children of this process:
 * "pid:cmd" lines in out (empty when none). */
static void leftover_processes(const char *disk, struct buf *out)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	cr_assert_not_null(d);
	buf_reset(out);
	while ((e = readdir(d))) {
		char path[300], stat[512], cmd[4096] = "";
		int pid = atoi(e->d_name), ppid = 0;
		size_t n = 0;
		FILE *f;

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
		if ((f = fopen(path, "r"))) {
			n = fread(cmd, 1, sizeof(cmd) - 1, f);
			fclose(f);
		}
		for (size_t i = 0; i < n; i++)
			cmd[i] = cmd[i] ? cmd[i] : ' ';
		cmd[n] = '\0';
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if ((f = fopen(path, "r"))) {
			if (fgets(stat, sizeof(stat), f) && strrchr(stat, ')'))
				sscanf(strrchr(stat, ')') + 1, " %*c %d", &ppid);
			fclose(f);
		}
		if (strstr(cmd, disk) || ppid == getpid())
			buf_printf(out, NULL, "%d:%.120s\n", pid, cmd);
	}
	closedir(d);
}

Test(customize, too_little_free_space_is_refused_before_the_appliance_starts, .timeout = 60,
     .fini = tmpfs_fini)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_report rep = {.steps = 4242};
	struct cust_plan *p;
	struct stat before, after;
	struct buf left = BUF_INIT;
	const char *pkgs[] = {"qemu-guest-agent"};
	const char *work = getenv("PHX_BUILD");
	char cache[1100], disk[1200];
	double t0, took;

	/* no OS needed: nothing may look inside the disk */
	snprintf(cache, sizeof(cache), "%s/customize-itest/precheck",
		 work && *work ? work : "/tmp");
	mount_tmpfs(cache, 64ULL * 1024 * 1024);
	snprintf(disk, sizeof(disk), "%s/disk.qcow2", cache);
	cr_assert_eq(sh(NULL, "qemu-img create -q -f qcow2 '%s' 2G", disk), 0);
	cr_assert_eq(stat(disk, &before), 0);
	p = cust_plan_new(&err);
	cr_assert_not_null(p);
	cr_assert_eq(cust_plan_add_packages(p, pkgs, 1, &err), 0);

	t0 = clk_now();
	cr_assert_eq(cust_run(p, disk, NULL, &rep, &err), -1);
	took = clk_now() - t0;
	cust_plan_free(p);
	fprintf(stderr, "customize itest: refused in %.3f s:\n%s\n", took, err.msg);
	cr_assert_eq(err.code, PHX_E_IO, "%s", err.msg);
	cr_assert(strstr(err.msg, disk), "%s", err.msg);
	cr_assert(strstr(err.msg, "has 63 MiB free") || strstr(err.msg, "has 64 MiB free"), "%s",
		  err.msg);
	cr_assert(strstr(err.msg,
			 "needs about 352 MiB (journal and hygiene 64 MiB, package indexes "
			 "256 MiB, 1 package 32 MiB)"),
		  "%s", err.msg);
	cr_assert(strstr(err.msg, "PHX_CACHE_DIR"), "no hint: %s", err.msg);
	/* refused before libguestfs started anything: an appliance takes seconds to start */
	cr_assert_lt(took, 2.0);
	leftover_processes(disk, &left);
	cr_assert_eq(left.len, 0, "processes started: %s", buf_str(&left));
	buf_release(&left);
	cr_assert_eq(stat(disk, &after), 0);
	cr_assert(before.st_size == after.st_size &&
			  before.st_mtim.tv_sec == after.st_mtim.tv_sec &&
			  before.st_mtim.tv_nsec == after.st_mtim.tv_nsec,
		  "disk modified");
	cr_assert_eq(rep.steps, 4242, "report written on failure");
}

static unsigned long long avail_bytes(const char *dir)
{
	struct statvfs v;

	cr_assert_eq(statvfs(dir, &v), 0, "statvfs %s", dir);
	return (unsigned long long)v.f_bavail * v.f_frsize;
}

/* Watches a file system from the test's side: when it first ran (nearly) full, and when its
 * free space last changed: qemu's last write before it paused. */
struct fill_probe {
	const char *dir;
	atomic_bool stop;
	double full_at, last_write_at; /* clk_now(), 0 until then */
	unsigned long long avail;
	pthread_t thread;
};

static void *fill_probe_main(void *arg)
{
	struct fill_probe *p = arg;

	while (!p->stop) {
		unsigned long long a = avail_bytes(p->dir);

		if (p->full_at == 0 && a < 16ULL * 1024 * 1024)
			p->full_at = clk_now();
		if (a != p->avail)
			p->last_write_at = clk_now();
		p->avail = a;
		clk_sleep_ms(100);
	}
	return NULL;
}

/* A real package whose files are `mib` MiB but whose .deb is tiny (repeated text packs
 * ~1000:1): the download-size-based estimate passes, the unpacked files do not fit. */
static void make_fill_deb(const struct env *e, unsigned mib, char *ret, size_t len)
{
	snprintf(ret, len, "%s/phx-fill_1.0_all.deb", e->work);
	cr_assert_eq(sh(NULL,
			"set -e; d='%s/fill-pkg'; rm -rf \"$d\"; mkdir -p \"$d/DEBIAN\" "
			"\"$d/var/lib/phx-fill\"; printf 'Package: phx-fill\\nVersion: 1.0\\n"
			"Architecture: all\\nMaintainer: phoenix tests <t@example.invalid>\\n"
			"Description: fills the disk\\n' >\"$d/DEBIAN/control\"; "
			"yes phoenix-fill-data | head -c %uM >\"$d/var/lib/phx-fill/blob\"; "
			"dpkg-deb -Zgzip -z9 --root-owner-group --build \"$d\" '%s' >/dev/null; "
			"rm -rf \"$d\"",
			e->work, mib, ret),
		     0, "build the fill package");
}

Test(customize, a_cache_that_fills_up_stops_the_appliance_with_a_clear_error, .timeout = 600,
     .fini = tmpfs_fini)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_opts opts = CUST_OPTS_INIT;
	struct cust_report rep = {.steps = 4242};
	struct cust_space sp;
	struct cust_plan *p;
	struct fill_probe probe = {0};
	struct buf left = BUF_INIT;
	struct stat st;
	struct env e;
	char cache[1100], disk[1200], deb[1200];
	const char *debs[1];
	unsigned long long free0;
	const unsigned fill_mib = 256;
	double t0, t_end;
	int rc;

	setup_env(&e, "cache-full");
	snprintf(cache, sizeof(cache), "%s/cache", e.work);
	cr_assert_eq(stat(e.image, &st), 0);
	/* the image copy plus 128 MiB: room for the estimate, not for the package's files */
	mount_tmpfs(cache, (unsigned long long)st.st_size + 128ULL * 1024 * 1024);
	snprintf(disk, sizeof(disk), "%s/.work-itest/debian-tiny.qcow2", cache);
	cr_assert_eq(sh(NULL, "mkdir -p '%s/.work-itest'", cache), 0);
	/* as provisioning does: a full copy of the cached image, customized in place */
	cr_assert_eq(cust_prepare_copy(e.image, disk, &err), 0, "%s", err.msg);
	make_fill_deb(&e, fill_mib, deb, sizeof(deb));
	debs[0] = deb;
	opts.state_dir = e.state;
	p = cust_plan_new(&err);
	cr_assert_not_null(p);
	cr_assert_eq(cust_plan_add_local_packages(p, debs, 1, &err), 0, "%s", err.msg);

	/* the premise, checked rather than assumed: the precheck passes, the files cannot fit */
	free0 = avail_bytes(cache);
	cr_assert_eq(cust_space_estimate(p, disk, &sp, &err), 0, "%s", err.msg);
	cr_assert_lt(sp.need_bytes, free0, "estimate %llu >= free %llu: the precheck would refuse",
		     sp.need_bytes, free0);
	cr_assert_gt((unsigned long long)fill_mib * 1024 * 1024, free0);

	setenv("PHX_CUSTOMIZE_STALL_S", "10", 1);
	probe.dir = cache;
	probe.avail = free0;
	cr_assert_eq(pthread_create(&probe.thread, NULL, fill_probe_main, &probe), 0);
	t0 = clk_now();
	rc = cust_run(p, disk, &opts, &rep, &err);
	t_end = clk_now();
	probe.stop = true;
	pthread_join(probe.thread, NULL);
	unsetenv("PHX_CUSTOMIZE_STALL_S");
	cust_plan_free(p);
	fprintf(stderr,
		"customize itest: cache nearly full after %.1f s, last write at %.1f s, cust_run "
		"returned %.1f s after it (%.1f s in all); the error as users see it:\n%s\n",
		probe.full_at ? probe.full_at - t0 : -1.0, probe.last_write_at - t0,
		t_end - probe.last_write_at, t_end - t0, err.msg);

	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, PHX_E_IO, "%s", err.msg);
	cr_assert(strstr(err.msg, "install local packages 'phx-fill_1.0_all.deb'"),
		  "the step is not named: %s", err.msg);
	cr_assert(strstr(err.msg, cache), "the directory is not named: %s", err.msg);
	cr_assert(strstr(err.msg, "is full (") && strstr(err.msg, " MiB free)"), "%s", err.msg);
	cr_assert(strstr(err.msg, "no progress for 10 s"), "%s", err.msg);
	cr_assert(strstr(err.msg, "it needs more than the ") || strstr(err.msg, "MiB more"), "%s",
		  err.msg);
	cr_assert_eq(rep.steps, 4242, "report written on failure");
	/* ended within the watchdog's time (10 s, sampled once a second), counted from qemu's
	 * last write: the guest keeps working until a write does not fit */
	cr_assert_gt(probe.full_at, 0.0, "the cache never filled");
	cr_assert_leq(probe.avail, 16ULL * 1024 * 1024);
	cr_assert_leq(t_end - probe.last_write_at, 10.0 + 6.0, "took %.1f s after the last write",
		      t_end - probe.last_write_at);
	/* no qemu (nor libguestfs's recovery process) left behind */
	leftover_processes(disk, &left);
	cr_assert_eq(left.len, 0, "processes left: %s", buf_str(&left));
	buf_release(&left);
}

/* --- OS families other than Debian: recording stand-ins (issue #20) ---
 * No RHEL, SUSE or Alpine image can be built here (the Debian mirror only), so these prove
 * what can be proved without one: the family detection, the exact commands, their order, the
 * family's hygiene and the error handling. The image is a raw copy of the tiny Debian image
 * whose os-release says another distribution and whose package and service managers are
 * shell scripts that append their name and arguments to STANDIN_LOG and install nothing. It
 * is edited with debugfs before the run, so each family costs one appliance launch. What the
 * real dnf, zypper, rpm, apk and rc-update do with these commands is NOT proved here. */

#define STANDIN_LOG "/var/log/phx-standin.log"
#define STANDIN_RECORD                                                                             \
	"#!/bin/sh\n"                                                                              \
	"# test stand-in: records how it was called, installs nothing\n"                           \
	"{ printf '%%s' \"${0##*/}\"; for a in \"$@\"; do printf ' %%s' \"$a\"; done; echo; } "    \
	">>" STANDIN_LOG "\n"

/* Writes host file dir/name with printf-style content. */
static void host_file(const char *dir, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void host_file(const char *dir, const char *name, const char *fmt, ...)
{
	char path[1200];
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	cr_assert_eq(fclose(f), 0);
}

/* A raw copy of the tiny image in o->raw, edited by the debugfs requests in `edits` (one per
 * line; "@" stands for the host directory e->work/host, which holds os-release and the
 * stand-in scripts "record" and "fail"). Every edit must succeed. */
static void standin_image(const struct env *e, struct outside *o, const char *os_release,
			  const char *fail_script, const char *edits)
{
	struct buf out = BUF_INIT, req = BUF_INIT;
	char host[1100], reqfile[1200];

	snprintf(host, sizeof(host), "%s/host", e->work);
	cr_assert_eq(sh(NULL, "mkdir -p '%s'", host), 0);
	host_file(host, "os-release", "%s", os_release);
	host_file(host, "record", STANDIN_RECORD);
	host_file(host, "fail", STANDIN_RECORD "%s", fail_script ? fail_script : "");
	host_file(host, "junk", "stale index\n");
	host_file(host, "id", "0123456789abcdef0123456789abcdef\n");
	cr_assert_eq(sh(NULL, "chmod 755 '%s/record' '%s/fail'", host, host), 0);
	for (const char *p = "rm /etc/os-release\nwrite @/os-release /etc/os-release\n"; *p; p++)
		*p == '@' ? buf_puts(&req, host, NULL) : buf_append(&req, p, 1, NULL);
	for (const char *p = edits; *p; p++)
		*p == '@' ? buf_puts(&req, host, NULL) : buf_append(&req, p, 1, NULL);
	snprintf(reqfile, sizeof(reqfile), "%s/debugfs.req", e->work);
	host_file(e->work, "debugfs.req", "%s", buf_str(&req));

	snprintf(o->raw, sizeof(o->raw), "%s/standin.raw", e->work);
	cr_assert_eq(sh(NULL, "qemu-img convert -O raw '%s' '%s'", e->image, o->raw), 0);
	cr_assert_eq(
		sh(&out, "sfdisk -d '%s' | sed -n 's/.*start= *\\([0-9]*\\),.*/\\1/p'", o->raw), 0);
	o->offset = atol(buf_str(&out)) * 512;
	cr_assert_gt(o->offset, 0);
	buf_reset(&out);
	/* debugfs reports a failed request on stderr but exits 0: any complaint is a failure */
	sh(&out, "debugfs -w -f '%s' '%s?offset=%ld' 2>&1 >/dev/null | grep -v '^debugfs '",
	   reqfile, o->raw, o->offset);
	cr_assert_eq(out.len, 0, "editing the stand-in image failed:\n%s", buf_str(&out));
	buf_release(&out);
	buf_release(&req);
}

/* Installs the recording stand-in as guest program `path`, new or replacing the real one. */
#define STANDIN(path) "write @/record " path "\nsif " path " mode 0100755\n"
#define STANDIN_REPLACE(path) "rm " path "\n" STANDIN(path)

static void local_files(const struct env *e, const char *const *names, size_t n, char **ret)
{
	for (size_t i = 0; i < n; i++) {
		char dir[1100];

		snprintf(dir, sizeof(dir), "%s", e->work);
		host_file(dir, names[i], "not really a package\n");
		cr_assert_neq(asprintf(&ret[i], "%s/%s", dir, names[i]), -1);
	}
}

static void assert_gone(const struct outside *o, const char *path)
{
	struct buf out = BUF_INIT;
	char req[300];

	snprintf(req, sizeof(req), "stat %s", path);
	debugfs(o, &out, req);
	cr_assert(strstr(buf_str(&out), "File not found"), "'%s' is still there: %s", path,
		  buf_str(&out));
	buf_release(&out);
}

static void assert_empty_file(const struct outside *o, const char *path)
{
	struct buf out = BUF_INIT;
	char req[300];

	snprintf(req, sizeof(req), "stat %s", path);
	debugfs(o, &out, req);
	cr_assert(strstr(buf_str(&out), "Type: regular") && strstr(buf_str(&out), "Size: 0\n"),
		  "'%s' is not an empty file: %s", path, buf_str(&out));
	buf_release(&out);
}

static void assert_log(const struct outside *o, const char *expect)
{
	struct buf out = BUF_INIT;
	const char *log;

	debugfs(o, &out, "cat " STANDIN_LOG);
	/* after debugfs's banner line */
	log = strstr(buf_str(&out), "debugfs ") == buf_str(&out) ? strchr(buf_str(&out), '\n') + 1
								 : buf_str(&out);
	cr_assert_str_eq(log, expect, "stand-in log:\n%s\nexpected:\n%s", log, expect);
	buf_release(&out);
}

Test(customize, dnf_family_recording_standin, .timeout = 600)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_opts opts = CUST_OPTS_INIT;
	struct cust_report rep;
	struct cust_plan *p;
	struct outside o;
	struct env e;
	const char *pkgs[] = {"qemu-guest-agent", "curl=8.5.0-1"},
		   *svcs[] = {"qemu-guest-agent", "sshd.service"};
	const char *names[] = {"a-1.0-1.noarch.rpm", "b-1.0-1.noarch.rpm"};
	char *rpms[2];
	/* an SELinux guest as virt-customize tells one; a stale dnf cache */
	static const char edits[] = STANDIN("/usr/bin/dnf") STANDIN("/usr/bin/rpm")
		STANDIN_REPLACE("/usr/bin/systemctl")
			STANDIN("/usr/sbin/load_policy") "write @/junk /etc/selinux/config\n"
							 "mkdir /var/cache/dnf\n"
							 "write @/junk /var/cache/dnf/repomd.xml\n";

	setup_env(&e, "standin-dnf");
	opts.state_dir = e.state;
	standin_image(&e, &o,
		      "NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n"
		      "VERSION_ID=\"9.4\"\n",
		      NULL, edits);
	local_files(&e, names, 2, rpms);
	p = cust_plan_new(&err);
	cr_assert_not_null(p);
	cr_assert_eq(cust_plan_add_packages(p, pkgs, 2, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_local_packages(p, (const char *const *)rpms, 2, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(cust_plan_add_services(p, svcs, 2, &err), 0, "%s", err.msg);
	cr_assert_eq(
		cust_plan_add_run(p,
				  "[ -e /tmp/phx-packages-1 ] || echo 'local packages removed' "
				  ">>" STANDIN_LOG,
				  &err),
		0);
	cr_assert_eq(cust_run(p, o.raw, &opts, &rep, &err), 0, "%s", err.msg);
	cust_plan_free(p);
	free(rpms[0]);
	free(rpms[1]);

	cr_assert_str_eq(rep.distro, "rocky");
	cr_assert_str_eq(rep.version, "9.4");
	cr_assert_str_eq(rep.family, "rhel");
	cr_assert_eq(rep.steps, 4);
	assert_log(&o, "dnf -y makecache\n"
		       "dnf -y install qemu-guest-agent curl-8.5.0-1\n"
		       "rpm -Uvh /tmp/phx-packages-1/a-1.0-1.noarch.rpm "
		       "/tmp/phx-packages-1/b-1.0-1.noarch.rpm\n"
		       "systemctl enable qemu-guest-agent sshd.service\n"
		       "local packages removed\n"
		       /* the build's package list, asked of rpm (which lists nothing here) */
		       "rpm -qa --qf "
		       "%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\n\n");
	cr_assert_not_null(rep.packages);
	cr_assert_str_eq(rep.packages, "");
	cust_report_release(&rep);
	/* the family's hygiene: dnf's cache, the SELinux relabel request, systemd's identity */
	assert_gone(&o, "/var/cache/dnf/repomd.xml");
	assert_empty_file(&o, "/.autorelabel");
	assert_empty_file(&o, "/etc/machine-id");
	unlink(o.raw);
}

Test(customize, zypper_family_recording_standin_failure_names_the_command, .timeout = 600)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_opts opts = CUST_OPTS_INIT;
	struct cust_report rep = {.steps = 4242};
	struct cust_plan *p;
	struct outside o;
	struct env e;
	/* what zypper says and exits with when a package does not exist */
	static const char fail[] = "case \" $* \" in *' install '*)\n"
				   "  echo 'Loading repository data...'\n"
				   "  echo \"No provider of 'phx-no-such-package' found.\" >&2\n"
				   "  exit 104;;\n"
				   "esac\n";
	static const char edits[] =
		"write @/fail /usr/bin/zypper\n"
		"sif /usr/bin/zypper mode 0100755\n" STANDIN_REPLACE("/usr/bin/systemctl");
	const char *svcs[] = {"sshd.service"},
		   *pkgs[] = {"qemu-guest-agent", "phx-no-such-package"};

	setup_env(&e, "standin-zypper");
	opts.state_dir = e.state;
	standin_image(&e, &o,
		      "NAME=\"openSUSE Leap\"\nVERSION=\"15.6\"\nID=\"opensuse-leap\"\n"
		      "ID_LIKE=\"suse opensuse\"\nVERSION_ID=\"15.6\"\n",
		      fail, edits);
	p = cust_plan_new(&err);
	cr_assert_not_null(p);
	cr_assert_eq(cust_plan_add_services(p, svcs, 1, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_packages(p, pkgs, 2, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_run(p, "echo never >>" STANDIN_LOG, &err), 0);

	cr_assert_eq(cust_run(p, o.raw, &opts, &rep, &err), -1);
	cust_plan_free(p);
	fprintf(stderr, "customize itest: a failing zypper stand-in as users see it:\n%s\n",
		err.msg);
	cr_assert_eq(err.code, PHX_E_GUEST, "%s", err.msg);
	cr_assert(strstr(err.msg, o.raw), "disk not named: %s", err.msg);
	cr_assert(strstr(err.msg,
			 "step 2/3 install packages 'qemu-guest-agent phx-no-such-package': "
			 "\"zypper --non-interactive install --auto-agree-with-licenses "
			 "'qemu-guest-agent' 'phx-no-such-package'\": exit status 104; last output "
			 "lines:\n  | Loading repository data...\n  | No provider of "
			 "'phx-no-such-package' found."),
		  "%s", err.msg);
	cr_assert_eq(rep.steps, 4242, "report written on failure");
	/* what ran before, in order; nothing after the failure */
	assert_log(&o, "systemctl enable sshd.service\n"
		       "zypper --non-interactive refresh\n"
		       "zypper --non-interactive install --auto-agree-with-licenses "
		       "qemu-guest-agent phx-no-such-package\n");
	unlink(o.raw);
}

Test(customize, apk_openrc_family_recording_standin, .timeout = 600)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_opts opts = CUST_OPTS_INIT;
	struct cust_report rep;
	struct cust_plan *p;
	struct outside o;
	struct env e;
	const char *pkgs[] = {"qemu-guest-agent", "curl"}, *svcs[] = {"sshd.service", "chronyd"};
	const char *names[] = {"c-1.0-r0.apk"};
	char *apks[1];
	/* a booted Alpine's identity: both ids set, D-Bus's a file of its own; a stale index */
	static const char edits[] = STANDIN("/usr/sbin/apk")
		STANDIN("/usr/sbin/rc-update") "rm /etc/machine-id\n"
					       "write @/id /etc/machine-id\n"
					       "mkdir /var/lib/dbus\n"
					       "write @/id /var/lib/dbus/machine-id\n"
					       "mkdir /var/cache/apk\n"
					       "write @/junk /var/cache/apk/APKINDEX.x.tar.gz\n";

	setup_env(&e, "standin-apk");
	opts.state_dir = e.state;
	standin_image(&e, &o,
		      "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n"
		      "PRETTY_NAME=\"Alpine Linux v3.20\"\n",
		      NULL, edits);
	local_files(&e, names, 1, apks);
	p = cust_plan_new(&err);
	cr_assert_not_null(p);
	cr_assert_eq(cust_plan_add_packages(p, pkgs, 2, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_local_packages(p, (const char *const *)apks, 1, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(cust_plan_add_services(p, svcs, 2, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_run(p, o.raw, &opts, &rep, &err), 0, "%s", err.msg);
	cust_plan_free(p);
	free(apks[0]);

	cr_assert_str_eq(rep.distro, "alpine");
	cr_assert_str_eq(rep.family, "alpine");
	cr_assert_eq(rep.steps, 3);
	assert_log(&o, "apk update\n"
		       "apk add qemu-guest-agent curl\n"
		       "rc-update add qemu-guest-agent default\n"
		       "apk add --no-network --allow-untrusted /tmp/phx-packages-1/c-1.0-r0.apk\n"
		       "rc-update add sshd default\n"
		       "rc-update add chronyd default\n"
		       "apk list -I\n");
	cr_assert_not_null(rep.packages);
	cust_report_release(&rep);
	/* OpenRC's identity: emptied in place, D-Bus's removed (dbus makes a new one at boot) */
	assert_empty_file(&o, "/etc/machine-id");
	assert_gone(&o, "/var/lib/dbus/machine-id");
	assert_gone(&o, "/var/cache/apk/APKINDEX.x.tar.gz");
	assert_gone(&o, "/tmp/phx-packages-1");
	assert_gone(&o, "/.autorelabel"); /* not an SELinux guest */
	unlink(o.raw);
}
