/* Unit tests for customize without an appliance: plan building and validation, the OS-root
 * decision, os-release parsing, the KVM probe against fake qemu programs, the image copy, the
 * free-space estimate and the watchdog's judgement.
 * Data in tests/data/customize/ (run from the repository root, as `make unit` does). */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../src/customize_int.h"
#include "buf.h"
#include "clock.h"
#include "customize.h"
#include "fsutil.h"

#define DATA "tests/data/customize/"

static struct cust_plan *new_plan(void)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_plan *p = cust_plan_new(&err);

	cr_assert_not_null(p, "%s", err.msg);
	return p;
}

Test(customize, builds_an_ordered_plan_with_descriptions)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_plan *p = new_plan();
	const char *pkgs[] = {"qemu-guest-agent", "curl=7.88.1-10+deb12u5", "libc6:amd64"};
	const char *debs[] = {DATA "fake_1.0_all.deb"};
	const char *svcs[] = {"qemu-guest-agent", "ssh.service", "getty@ttyS0.service"};

	cr_assert_eq(cust_plan_add_packages(p, pkgs, 3, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_local_packages(p, debs, 1, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_services(p, svcs, 3, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_run(p, "echo hi > /etc/motd", &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_file_content(p, "/etc/phoenix/x.conf", 0640, "a\0b", 3, &err), 0,
		     "%s", err.msg);
	cr_assert_eq(cust_plan_add_file_source(p, "/root/y", 0600, DATA "file-source.txt", &err), 0,
		     "%s", err.msg);
	cr_assert_eq(cust_plan_add_timezone(p, "Europe/Berlin", &err), 0, "%s", err.msg);
	cr_assert_eq(err.code, PHX_E_NONE);

	cr_assert_eq(cust_plan_len(p), 7);
	cr_assert_eq(cust_plan_kind(p, 0), CUST_OP_PACKAGES);
	cr_assert_eq(cust_plan_kind(p, 1), CUST_OP_LOCAL_PACKAGES);
	cr_assert_eq(cust_plan_kind(p, 2), CUST_OP_ENABLE_SERVICES);
	cr_assert_eq(cust_plan_kind(p, 3), CUST_OP_RUN);
	cr_assert_eq(cust_plan_kind(p, 4), CUST_OP_FILE);
	cr_assert_eq(cust_plan_kind(p, 5), CUST_OP_FILE);
	cr_assert_eq(cust_plan_kind(p, 6), CUST_OP_TIMEZONE);
	cr_assert_str_eq(cust_plan_describe(p, 0),
			 "install packages 'qemu-guest-agent curl=7.88.1-10+deb12u5 libc6:amd64'");
	/* .deb paths are shown by file name */
	cr_assert_str_eq(cust_plan_describe(p, 1), "install local packages 'fake_1.0_all.deb'");
	cr_assert_str_eq(cust_plan_describe(p, 2),
			 "enable services 'qemu-guest-agent ssh.service getty@ttyS0.service'");
	cr_assert_str_eq(cust_plan_describe(p, 3), "run 'echo hi > /etc/motd'");
	cr_assert_str_eq(cust_plan_describe(p, 4),
			 "write file '/etc/phoenix/x.conf' (3 bytes, mode 0640)");
	cr_assert_str_eq(cust_plan_describe(p, 5),
			 "write file '/root/y' from '" DATA "file-source.txt' (mode 0600)");
	cr_assert_str_eq(cust_plan_describe(p, 6), "set timezone 'Europe/Berlin'");
	cr_assert(cust_plan_needs_network(p));
	cust_plan_free(p);
}

Test(customize, network_only_needed_for_packages)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_plan *p = new_plan();
	const char *debs[] = {DATA "fake_1.0_all.deb"};

	cr_assert_not(cust_plan_needs_network(p));
	cr_assert_eq(cust_plan_len(p), 0);
	cr_assert_eq(cust_plan_add_local_packages(p, debs, 1, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_run(p, "true", &err), 0, "%s", err.msg);
	cr_assert_not(cust_plan_needs_network(p));
	cust_plan_free(p);
	cust_plan_free(NULL); /* destructors accept NULL */
}

Test(customize, long_and_multiline_commands_are_shortened_in_descriptions)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_plan *p = new_plan();
	char longcmd[300];

	memset(longcmd, 'x', sizeof(longcmd) - 1);
	longcmd[sizeof(longcmd) - 1] = '\0';
	cr_assert_eq(cust_plan_add_run(p, "set -e\napt-get update\n", &err), 0);
	cr_assert_eq(cust_plan_add_run(p, longcmd, &err), 0);
	cr_assert_str_eq(cust_plan_describe(p, 0), "run 'set -e...'");
	cr_assert_lt(strlen(cust_plan_describe(p, 1)), 80);
	cr_assert(strstr(cust_plan_describe(p, 1), "xxx..."));
	cust_plan_free(p);
}

struct bad_list {
	const char *names[3];
	size_t n;
	const char *expect; /* substring of the message, names the bad value and its index */
};

static void check_rejected(int (*add)(struct cust_plan *, const char *const *, size_t,
				      struct phx_err *),
			   const struct bad_list *cases, size_t ncases)
{
	for (size_t i = 0; i < ncases; i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct cust_plan *p = new_plan();

		cr_assert_eq(add(p, cases[i].names, cases[i].n, &err), -1, "case %zu", i);
		cr_assert_eq(err.code, PHX_E_INPUT, "case %zu: %s", i, err.msg);
		cr_assert(strstr(err.msg, cases[i].expect), "case %zu: '%s' lacks '%s'", i, err.msg,
			  cases[i].expect);
		cr_assert_eq(cust_plan_len(p), 0, "case %zu: plan changed on failure", i);
		cust_plan_free(p);
	}
}

Test(customize, rejects_bad_package_names_with_index_and_value)
{
	static const struct bad_list cases[] = {
		{{NULL}, 0, "packages: expected at least one name"},
		{{"ok", "bad!name"}, 2, "packages[1]: expected a package name"},
		{{"curl; rm -rf /"}, 1, "'curl; rm -rf /'"},
		{{"-opt"}, 1, "packages[0]"},
		{{"a"}, 1, "'a'"}, /* policy: at least two characters */
		{{"curl="}, 1, "'curl='"},
		{{"curl:"}, 1, "'curl:'"},
		{{"$(id)"}, 1, "'$(id)'"},
	};

	check_rejected(cust_plan_add_packages, cases, sizeof(cases) / sizeof(cases[0]));
}

Test(customize, rejects_bad_unit_names)
{
	static const struct bad_list cases[] = {
		{{NULL}, 0, "enable_services: expected at least one name"},
		{{"ssh", "a b"},
		 2,
		 "enable_services[1]: expected a service name like 'qemu-guest-agent', "
		 "got 'a b'"},
		{{"../etc/passwd"}, 1, "'../etc/passwd'"},
		{{"-x"}, 1, "'-x'"},
		{{""}, 1, "enable_services[0]"},
	};

	check_rejected(cust_plan_add_services, cases, sizeof(cases) / sizeof(cases[0]));
}

Test(customize, rejects_debs_that_are_missing_misnamed_or_duplicated)
{
	static const struct bad_list cases[] = {
		{{NULL}, 0, "debs: expected at least one name"},
		{{DATA "nope_1_all.deb"}, 1, "debs[0]: '" DATA "nope_1_all.deb': No such file"},
		{{DATA "file-source.txt"},
		 1,
		 "'" DATA "file-source.txt' does not end in '.deb', '.rpm' or '.apk'"},
		{{"tests/data/customize/"}, 1, "does not end in '.deb'"},
		{{DATA "fake_1.0_all.deb", DATA "fake-1.0-1.noarch.rpm"},
		 2,
		 "debs[1]: '" DATA "fake-1.0-1.noarch.rpm' is not a '.deb' package like debs[0]"},
		{{DATA "fake_1.0_all.deb", "./" DATA "fake_1.0_all.deb"},
		 2,
		 "debs[1]: './" DATA "fake_1.0_all.deb' has the same file name as debs[0]"},
	};

	check_rejected(cust_plan_add_local_packages, cases, sizeof(cases) / sizeof(cases[0]));
}

Test(customize, rejects_a_deb_that_is_a_directory)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_plan *p = new_plan();
	char dir[] = "/tmp/cust-unit-XXXXXX", deb[64];
	const char *v[1] = {deb};

	cr_assert_not_null(mkdtemp(dir));
	snprintf(deb, sizeof(deb), "%s/x.deb", dir);
	cr_assert_eq(mkdir(deb, 0755), 0);
	cr_assert_eq(cust_plan_add_local_packages(p, v, 1, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, deb) && strstr(err.msg, "not a readable regular file"), "%s",
		  err.msg);
	rmdir(deb);
	rmdir(dir);
	cust_plan_free(p);
}

Test(customize, rejects_empty_run_commands)
{
	const char *bad[] = {"", "  \n\t", NULL};

	for (size_t i = 0; i < 3; i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct cust_plan *p = new_plan();

		cr_assert_eq(cust_plan_add_run(p, bad[i], &err), -1);
		cr_assert_eq(err.code, PHX_E_INPUT);
		cr_assert(strstr(err.msg, "run: expected a shell command"), "%s", err.msg);
		cr_assert_eq(cust_plan_len(p), 0);
		cust_plan_free(p);
	}
}

Test(customize, rejects_bad_file_paths_modes_and_sources)
{
	static const struct {
		const char *path;
		unsigned mode;
		const char *source; /* NULL: content */
		const char *expect;
	} cases[] = {
		{"etc/motd", 0644, NULL, "got 'etc/motd'"},
		{"/", 0644, NULL, "got '/'"},
		{"/etc/../root/.ssh/x", 0644, NULL, "got '/etc/../root/.ssh/x'"},
		{"/etc//motd", 0644, NULL, "got '/etc//motd'"},
		{"/etc/motd/", 0644, NULL, "got '/etc/motd/'"},
		{"/etc/./motd", 0644, NULL, "got '/etc/./motd'"},
		{"/etc/motd", 010000, NULL,
		 "files '/etc/motd': mode: expected at most 07777, got 010000"},
		{"/etc/motd", 0644, DATA "missing.txt",
		 "source '" DATA "missing.txt': No such file"},
		{"/etc/motd", 0644, "tests/data", "source 'tests/data' is not a readable regular"},
		{"/etc/motd", 0644, "", "files '/etc/motd': source: expected a host path"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct cust_plan *p = new_plan();
		int rc = cases[i].source
				 ? cust_plan_add_file_source(p, cases[i].path, cases[i].mode,
							     cases[i].source, &err)
				 : cust_plan_add_file_content(p, cases[i].path, cases[i].mode, "x",
							      1, &err);

		cr_assert_eq(rc, -1, "case %zu", i);
		cr_assert_eq(err.code, PHX_E_INPUT, "case %zu: %s", i, err.msg);
		cr_assert(strstr(err.msg, cases[i].expect), "case %zu: '%s' lacks '%s'", i, err.msg,
			  cases[i].expect);
		cr_assert_eq(cust_plan_len(p), 0);
		cust_plan_free(p);
	}
}

Test(customize, accepts_and_rejects_timezones)
{
	const char *good[] = {"UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires",
			      "Etc/GMT+5"};
	const char *bad[] = {"",	"/etc/passwd",	 "../../etc/shadow", "Europe/../../x",
			     "Europe/", "Eu rope/Berlin"};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct cust_plan *p = new_plan();

		cr_assert_eq(cust_plan_add_timezone(p, good[i], &err), 0, "%s: %s", good[i],
			     err.msg);
		cust_plan_free(p);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct cust_plan *p = new_plan();
		char want[80];

		snprintf(want, sizeof(want), "got '%s'", bad[i]);
		cr_assert_eq(cust_plan_add_timezone(p, bad[i], &err), -1, "%s", bad[i]);
		cr_assert_eq(err.code, PHX_E_INPUT);
		cr_assert(strstr(err.msg, want), "'%s' lacks '%s'", err.msg, want);
		cust_plan_free(p);
	}
}

Test(customize, picks_the_single_os_root)
{
	struct phx_err err = PHX_ERR_INIT;
	/* Ubuntu noble: root, a separate /boot (no /etc), an EFI partition is not offered */
	struct cust_fs_candidate c[] = {
		{"/dev/sda16", "ext4", false, false},
		{"/dev/sda1", "ext4", true, true},
		{"/dev/sdb1", "xfs", false, true}, /* /etc missing: a data disk */
	};
	size_t idx = 99;

	cr_assert_eq(cust_pick_root(c, 3, "noble.img", &idx, &err), 0, "%s", err.msg);
	cr_assert_eq(idx, 1);
}

Test(customize, refuses_disks_with_no_os)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_fs_candidate c[] = {{"/dev/sda1", "ext4", true, false}};
	size_t idx = 99;

	cr_assert_eq(cust_pick_root(c, 1, "blank.qcow2", &idx, &err), -1);
	cr_assert_eq(err.code, PHX_E_NOTFOUND);
	cr_assert_str_eq(err.msg, "'blank.qcow2': no operating system found (1 file system, none "
				  "with /etc and os-release)");
	cr_assert_eq(idx, 99, "output written on failure");
	phx_err_clear(&err);
	cr_assert_eq(cust_pick_root(NULL, 0, "empty.raw", &idx, &err), -1);
	cr_assert(strstr(err.msg, "'empty.raw': no operating system found (0 file systems"), "%s",
		  err.msg);
}

Test(customize, refuses_disks_with_several_oses_naming_them)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_fs_candidate c[] = {
		{"/dev/sda1", "ext4", true, true},
		{"/dev/sda2", "ext4", false, false},
		{"/dev/sda3", "xfs", true, true},
	};
	size_t idx = 99;

	cr_assert_eq(cust_pick_root(c, 3, "dual.qcow2", &idx, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert_str_eq(err.msg, "'dual.qcow2': 2 operating systems found ('/dev/sda1', "
				  "'/dev/sda3'); expected exactly one");
	cr_assert_eq(idx, 99);
}

static void parse_file(const char *path, char *id, size_t id_len, char *ver, size_t ver_len)
{
	struct phx_err err = PHX_ERR_INIT;
	struct buf b = BUF_INIT;

	cr_assert_eq(fs_read_file(path, &b, &err), 0, "%s", err.msg);
	cust_parse_os_release(buf_str(&b), id, id_len, ver, ver_len);
	buf_release(&b);
}

Test(customize, parses_os_release_files)
{
	char id[32], ver[32];

	parse_file(DATA "os-release-ubuntu-noble", id, sizeof(id), ver, sizeof(ver));
	cr_assert_str_eq(id, "ubuntu");
	cr_assert_str_eq(ver, "24.04"); /* not VERSION= nor UBUNTU_CODENAME */
	parse_file(DATA "os-release-debian-bookworm", id, sizeof(id), ver, sizeof(ver));
	cr_assert_str_eq(id, "debian");
	cr_assert_str_eq(ver, "12");
	parse_file(DATA "os-release-quoted", id, sizeof(id), ver, sizeof(ver));
	cr_assert_str_eq(id, "my-os");
	cr_assert_str_eq(ver, "1\"x");
	/* truncation stays NUL-terminated; missing keys give "" */
	cust_parse_os_release("ID=averyveryverylongname\n", id, 5, ver, sizeof(ver));
	cr_assert_str_eq(id, "aver");
	cr_assert_str_eq(ver, "");
}

/* --- OS families --- */

static const struct cust_family *family(const char *id, const char *like)
{
	struct phx_err err = PHX_ERR_INIT;
	const struct cust_family *f = NULL;

	cr_assert_eq(cust_family_pick(id, like, &f, &err), 0, "%s", err.msg);
	return f;
}

Test(customize, picks_the_family_from_os_release_id_then_id_like)
{
	static const struct {
		const char *id, *like, *family;
	} cases[] = {
		{"debian", "", "debian"},
		{"ubuntu", "debian", "debian"},
		{"linuxmint", "ubuntu debian", "debian"},
		{"fedora", NULL, "rhel"},
		{"rocky", "rhel centos fedora", "rhel"},
		{"almalinux", "rhel centos fedora", "rhel"},
		{"centos", "rhel fedora", "rhel"},
		{"amzn", "fedora", "rhel"},
		{"ol", "fedora", "rhel"},
		{"opensuse-leap", "suse opensuse", "suse"},
		{"opensuse-tumbleweed", "opensuse suse", "suse"},
		{"sles", "suse", "suse"},
		{"alpine", "", "alpine"},
		/* ID wins over ID_LIKE; ID_LIKE words are tried in order */
		{"ubuntu", "fedora", "debian"},
		{"myos", "  alpine\tdebian", "alpine"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_str_eq(family(cases[i].id, cases[i].like)->name, cases[i].family,
				 "%s (%s)", cases[i].id, cases[i].like ? cases[i].like : "NULL");
}

Test(customize, an_unknown_family_names_the_os_release_id_and_the_supported_ones)
{
	struct phx_err err = PHX_ERR_INIT;
	const struct cust_family *f = NULL;

	cr_assert_eq(cust_family_pick("arch", "", &f, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert_null(f, "output written on failure");
	cr_assert(strstr(err.msg, "os-release ID 'arch' (ID_LIKE '')"), "%s", err.msg);
	cr_assert(strstr(err.msg, "supported, by os-release ID or ID_LIKE: debian (apt: debian, "
				  "ubuntu), rhel (dnf: rhel, fedora, centos), suse (zypper: suse, "
				  "opensuse, sles), alpine (apk: alpine)"),
		  "%s", err.msg);
	/* a word that merely contains a known ID is not it */
	phx_err_clear(&err);
	cr_assert_eq(cust_family_pick("debianish", "rhel-like", &f, &err), -1);
	cr_assert(strstr(err.msg, "'debianish' (ID_LIKE 'rhel-like')"), "%s", err.msg);
}

Test(customize, reads_id_like_from_real_os_release_files)
{
	static const struct {
		const char *file, *id, *like, *family;
	} cases[] = {
		{"os-release-rocky-9", "rocky", "rhel centos fedora", "rhel"},
		{"os-release-opensuse-leap-15", "opensuse-leap", "suse opensuse", "suse"},
		{"os-release-alpine-3", "alpine", "", "alpine"},
		{"os-release-ubuntu-noble", "ubuntu", "debian", "debian"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct buf b = BUF_INIT;
		char path[128], id[32], like[64];

		snprintf(path, sizeof(path), DATA "%s", cases[i].file);
		cr_assert_eq(fs_read_file(path, &b, &err), 0, "%s", err.msg);
		cust_os_release_get(buf_str(&b), "ID", id, sizeof(id));
		cust_os_release_get(buf_str(&b), "ID_LIKE", like, sizeof(like));
		buf_release(&b);
		cr_assert_str_eq(id, cases[i].id);
		cr_assert_str_eq(like, cases[i].like);
		cr_assert_str_eq(family(id, like)->name, cases[i].family);
	}
}

Test(customize, rhel_family_uses_yum_only_where_dnf_is_missing)
{
	const struct cust_family *rhel = family("rocky", "rhel"), *deb = family("debian", "");
	struct cust_target t;

	cust_target_init(&t, rhel, true, true);
	cr_assert_eq(t.pkg, CUST_PKG_DNF);
	cust_target_init(&t, rhel, false, true);
	cr_assert_eq(t.pkg, CUST_PKG_YUM);
	/* neither: dnf, whose "not found" then names what is missing */
	cust_target_init(&t, rhel, false, false);
	cr_assert_eq(t.pkg, CUST_PKG_DNF);
	cust_target_init(&t, deb, false, true);
	cr_assert_eq(t.pkg, CUST_PKG_APT);
	cr_assert_eq(t.family, deb);
}

/* Runs a family's package-list script under /bin/sh with `tool` (a fake printing `output`)
 * first in PATH; returns its stdout in out and the exit status. */
static int run_installed(const struct cust_family *f, const char *tool, const char *output,
			 struct buf *out)
{
	char dir[] = "/tmp/cust-inst-XXXXXX", path[64], cmd[256], chunk[512];
	FILE *fp;
	size_t n;
	int st;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, tool);
	fp = fopen(path, "w");
	cr_assert_not_null(fp);
	fprintf(fp, "#!/bin/sh\ncat <<'PHX_EOF'\n%sPHX_EOF\n", output);
	cr_assert_eq(fclose(fp), 0);
	cr_assert_eq(chmod(path, 0755), 0);
	snprintf(cmd, sizeof(cmd), "PATH='%s':/usr/bin:/bin /bin/sh -c \"$PHX_SCRIPT\"", dir);
	setenv("PHX_SCRIPT", f->installed, 1);
	fp = popen(cmd, "r");
	cr_assert_not_null(fp);
	buf_reset(out);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		cr_assert_eq(buf_append(out, chunk, n, NULL), 0);
	st = pclose(fp);
	unsetenv("PHX_SCRIPT");
	unlink(path);
	rmdir(dir);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(customize, each_family_lists_installed_packages_as_name_version_arch)
{
	struct buf out = BUF_INIT;

	/* dpkg-query's format as the script asks for it: only fully installed ones count */
	cr_assert_eq(run_installed(family("debian", ""), "dpkg-query",
				   "ii \tqemu-guest-agent\t1:7.2+dfsg-7\tamd64\n"
				   "rc \told-thing\t1.0\tamd64\n"
				   "ii \tbase-files\t12.4+deb12u5\tamd64\n",
				   &out),
		     0);
	cr_assert_str_eq(
		buf_str(&out),
		"qemu-guest-agent\t1:7.2+dfsg-7\tamd64\nbase-files\t12.4+deb12u5\tamd64\n");
	/* rpm formats it itself (--qf): what it prints is the list */
	cr_assert_eq(run_installed(family("rocky", "rhel"), "rpm",
				   "qemu-guest-agent\t2:8.2.0-11.el9_4\tx86_64\n", &out),
		     0);
	cr_assert_str_eq(buf_str(&out), "qemu-guest-agent\t2:8.2.0-11.el9_4\tx86_64\n");
	cr_assert_eq(family("sles", "")->installed, family("rocky", "rhel")->installed);
	/* apk list -I: name and version split at the version's own '-' */
	cr_assert_eq(run_installed(family("alpine", ""), "apk",
				   "qemu-guest-agent-9.0.2-r0 x86_64 {qemu} (GPL-2.0-only) "
				   "[installed]\n"
				   "ca-certificates-bundle-20240705-r0 x86_64 {ca-certificates} "
				   "(MPL-2.0 AND MIT) [installed]\n",
				   &out),
		     0);
	cr_assert_str_eq(buf_str(&out), "qemu-guest-agent\t9.0.2-r0\tx86_64\n"
					"ca-certificates-bundle\t20240705-r0\tx86_64\n");
	/* the tool missing: exit 3, which the run reports as "no package list" */
	cr_assert_eq(run_installed(family("alpine", ""), "not-apk", "", &out), 3);
	cr_assert_eq(out.len, 0);
	buf_release(&out);
}

/* All commands of step `i` on a target, one per line; the refresh first as "refresh: ...". */
static void step_commands(const struct cust_plan *p, size_t i, const char *id, bool has_dnf,
			  struct buf *out)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_target t;
	struct cust_cmds c;

	cust_target_init(&t, family(id, ""), has_dnf, true);
	cr_assert_eq(cust_step_commands(cust_plan_op(p, i), &t, "/tmp/phx-packages-1", &c, &err), 0,
		     "%s: %s", id, err.msg);
	buf_reset(out);
	if (c.refresh)
		cr_assert_eq(buf_printf(out, NULL, "refresh: %s\n", c.refresh), 0);
	for (size_t k = 0; k < c.n; k++)
		cr_assert_eq(buf_printf(out, NULL, "%s\n", c.v[k]), 0);
	cust_cmds_release(&c);
}

Test(customize, each_family_gets_its_exact_commands_per_step)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_plan *p = new_plan();
	struct buf out = BUF_INIT;
	const char *pkgs[] = {"qemu-guest-agent", "curl=8.5.0-1", "NetworkManager:x86_64",
			      "vim:x86_64=9.0"};
	const char *deb[] = {DATA "fake_1.0_all.deb"}, *rpm[] = {DATA "fake-1.0-1.noarch.rpm"},
		   *apk[] = {DATA "fake-1.0-r0.apk"};
	const char *svcs[] = {"qemu-guest-agent", "sshd.service", "getty@ttyS0.service"};
	static const struct {
		const char *id;
		bool has_dnf;
		size_t local; /* plan step of the family's local format */
		const char *packages, *local_cmds, *services;
	} cases[] = {
		{"debian", true, 1,
		 "refresh: apt-get -q update\n"
		 "apt-get -q -y -o Dpkg::Options::=--force-confold install 'qemu-guest-agent' "
		 "'curl=8.5.0-1' 'NetworkManager:x86_64' 'vim:x86_64=9.0'\n",
		 "dpkg -i /tmp/phx-packages-1/*.deb\nrm -rf /tmp/phx-packages-1\n",
		 "systemctl enable 'qemu-guest-agent' 'sshd.service' 'getty@ttyS0.service'\n"},
		{"fedora", true, 2,
		 "refresh: dnf -y makecache\n"
		 "dnf -y install 'qemu-guest-agent' 'curl-8.5.0-1' 'NetworkManager.x86_64' "
		 "'vim-9.0.x86_64'\n",
		 "rpm -Uvh /tmp/phx-packages-1/*.rpm\nrm -rf /tmp/phx-packages-1\n",
		 "systemctl enable 'qemu-guest-agent' 'sshd.service' 'getty@ttyS0.service'\n"},
		{"centos", false, 2,
		 "refresh: yum -y makecache\n"
		 "yum -y install 'qemu-guest-agent' 'curl-8.5.0-1' 'NetworkManager.x86_64' "
		 "'vim-9.0.x86_64'\n",
		 "rpm -Uvh /tmp/phx-packages-1/*.rpm\nrm -rf /tmp/phx-packages-1\n",
		 "systemctl enable 'qemu-guest-agent' 'sshd.service' 'getty@ttyS0.service'\n"},
		{"opensuse", true, 2,
		 "refresh: zypper --non-interactive refresh\n"
		 "zypper --non-interactive install --auto-agree-with-licenses 'qemu-guest-agent' "
		 "'curl=8.5.0-1' 'NetworkManager.x86_64' 'vim.x86_64=9.0'\n",
		 "rpm -Uvh /tmp/phx-packages-1/*.rpm\nrm -rf /tmp/phx-packages-1\n",
		 "systemctl enable 'qemu-guest-agent' 'sshd.service' 'getty@ttyS0.service'\n"},
		/* OpenRC: one rc-update per service, no ".service" */
		{"alpine", true, 3, NULL,
		 "apk add --no-network --allow-untrusted /tmp/phx-packages-1/*.apk\n"
		 "rm -rf /tmp/phx-packages-1\n",
		 "rc-update add 'qemu-guest-agent' default\nrc-update add 'sshd' default\n"
		 "rc-update add 'getty@ttyS0' default\n"},
	};

	cr_assert_eq(cust_plan_add_packages(p, pkgs, 4, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_local_packages(p, deb, 1, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_local_packages(p, rpm, 1, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_local_packages(p, apk, 1, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_services(p, svcs, 3, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_run(p, "echo hi >/etc/motd", &err), 0, "%s", err.msg);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].packages) {
			step_commands(p, 0, cases[i].id, cases[i].has_dnf, &out);
			cr_assert_str_eq(buf_str(&out), cases[i].packages, "%s", cases[i].id);
		}
		step_commands(p, cases[i].local, cases[i].id, cases[i].has_dnf, &out);
		cr_assert_str_eq(buf_str(&out), cases[i].local_cmds, "%s", cases[i].id);
		step_commands(p, 4, cases[i].id, cases[i].has_dnf, &out);
		cr_assert_str_eq(buf_str(&out), cases[i].services, "%s", cases[i].id);
		/* the user's command is the same everywhere */
		step_commands(p, 5, cases[i].id, cases[i].has_dnf, &out);
		cr_assert_str_eq(buf_str(&out), "echo hi >/etc/motd\n", "%s", cases[i].id);
	}
	buf_release(&out);
	cust_plan_free(p);
}

Test(customize, alpine_enables_the_agent_it_installs_in_the_default_runlevel)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_plan *p = new_plan();
	struct buf out = BUF_INIT;
	char dir[] = "/tmp/cust-unit-XXXXXX", agent[64];
	const char *with[] = {"curl", "qemu-guest-agent=9.0.2-r0"},
		   *without[] = {"qemu-guest-agentx"}, *local[] = {agent};
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(agent, sizeof(agent), "%s/qemu-guest-agent-9.0.2-r0.apk", dir);
	f = fopen(agent, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(cust_plan_add_packages(p, with, 2, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_packages(p, without, 1, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_local_packages(p, local, 1, &err), 0, "%s", err.msg);

	step_commands(p, 0, "alpine", true, &out);
	cr_assert_str_eq(buf_str(&out), "refresh: apk update\n"
					"apk add 'curl' 'qemu-guest-agent=9.0.2-r0'\n"
					"rc-update add qemu-guest-agent default\n");
	step_commands(p, 1, "alpine", true, &out);
	cr_assert_str_eq(buf_str(&out), "refresh: apk update\napk add 'qemu-guest-agentx'\n");
	/* offline too: enabled before the uploaded files go */
	step_commands(p, 2, "alpine", true, &out);
	cr_assert_str_eq(buf_str(&out),
			 "apk add --no-network --allow-untrusted /tmp/phx-packages-1/*.apk\n"
			 "rc-update add qemu-guest-agent default\nrm -rf /tmp/phx-packages-1\n");
	/* systemd families: udev starts the agent, nothing is added */
	step_commands(p, 0, "debian", true, &out);
	cr_assert_null(strstr(buf_str(&out), "rc-update"), "%s", buf_str(&out));
	buf_release(&out);
	unlink(agent);
	rmdir(dir);
	cust_plan_free(p);
}

Test(customize, steps_a_family_cannot_do_are_input_errors_naming_the_value)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_plan *p = new_plan();
	const char *arch[] = {"curl:x86_64"}, *deb[] = {DATA "fake_1.0_all.deb"};
	struct cust_target t;
	struct cust_cmds c = {.n = 4242};

	cr_assert_eq(cust_plan_add_packages(p, arch, 1, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_local_packages(p, deb, 1, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_timezone(p, "UTC", &err), 0, "%s", err.msg);

	cust_target_init(&t, family("alpine", ""), false, false);
	cr_assert_eq(cust_step_commands(cust_plan_op(p, 0), &t, NULL, &c, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "packages: 'curl:x86_64': apk installs the image's own "
				  "architecture only; drop ':x86_64'"),
		  "%s", err.msg);
	cr_assert_eq(c.n, 4242, "output written on failure");

	phx_err_clear(&err);
	cust_target_init(&t, family("rocky", "rhel"), true, false);
	cr_assert_eq(cust_step_commands(cust_plan_op(p, 1), &t, "/tmp/x", &c, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "debs[0]: '" DATA "fake_1.0_all.deb' is a '.deb' package, but "
				  "the image's family rhel installs '.rpm' packages"),
		  "%s", err.msg);

	phx_err_clear(&err);
	cr_assert_eq(cust_step_commands(cust_plan_op(p, 2), &t, NULL, &c, &err), -1);
	cr_assert_eq(err.code, PHX_E_INTERNAL);
	cr_assert_eq(c.n, 4242);
	cust_plan_free(p);
}

/* Writes an executable fake "qemu" that runs `body` as a shell script. */
static void fake_qemu(char *dir, const char *body, char *ret_path, size_t len)
{
	FILE *f;

	snprintf(ret_path, len, "%s/qemu", dir);
	f = fopen(ret_path, "w");
	cr_assert_not_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(ret_path, 0755), 0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(customize, kvm_probe_trusts_a_kernel_banner_on_the_serial_console)
{
	struct phx_err err = PHX_ERR_INIT;
	char dir[] = "/tmp/cust-probe-XXXXXX", qemu[64], why[128];
	bool ok = false;
	double t;

	cr_assert_not_null(mkdtemp(dir));
	/* Checks that it is asked for KVM and the kernel, then prints a banner and would hang. */
	fake_qemu(dir,
		  "case \"$*\" in *'-accel kvm'*'-kernel /k'*) ;; *) exit 3;; esac\n"
		  "printf 'SeaBIOS\\r\\n[    0.000000] Linux version 6.1.0 (x)\\n'; exec sleep 30",
		  qemu, sizeof(qemu));
	t = now_s();
	cr_assert_eq(cust_accel_probe_kvm(qemu, "/k", 5000, &ok, why, sizeof(why), &err), 0, "%s",
		     err.msg);
	cr_assert(ok, "%s", why);
	cr_assert_lt(now_s() - t, 4.0, "did not stop qemu once the banner was seen");
	unlink(qemu);
	rmdir(dir);
}

Test(customize, kvm_probe_gives_up_on_a_silent_hang_within_the_timeout)
{
	struct phx_err err = PHX_ERR_INIT;
	char dir[] = "/tmp/cust-probe-XXXXXX", qemu[64], why[128];
	bool ok = true;
	double t;

	cr_assert_not_null(mkdtemp(dir));
	fake_qemu(dir, "printf 'SeaBIOS (version 1.16)\\nBooting from ROM...\\n'; exec sleep 30",
		  qemu, sizeof(qemu));
	t = now_s();
	cr_assert_eq(cust_accel_probe_kvm(qemu, "/k", 400, &ok, why, sizeof(why), &err), 0);
	cr_assert_not(ok);
	cr_assert(strstr(why, "no kernel banner"), "%s", why);
	cr_assert_lt(now_s() - t, 2.0);
	unlink(qemu);
	rmdir(dir);
}

Test(customize, kvm_probe_fails_when_qemu_exits_early)
{
	struct phx_err err = PHX_ERR_INIT;
	char dir[] = "/tmp/cust-probe-XXXXXX", qemu[64], why[128];
	bool ok = true;

	cr_assert_not_null(mkdtemp(dir));
	fake_qemu(dir, "echo 'Could not access KVM kernel module' >&2; exit 1", qemu, sizeof(qemu));
	cr_assert_eq(cust_accel_probe_kvm(qemu, "/k", 3000, &ok, why, sizeof(why), &err), 0);
	cr_assert_not(ok);
	cr_assert(strstr(why, "exited before"), "%s", why);
	unlink(qemu);
	rmdir(dir);
}

Test(customize, kvm_probe_reports_a_missing_qemu)
{
	struct phx_err err = PHX_ERR_INIT;
	char why[64];
	bool ok = true;

	cr_assert_eq(cust_accel_probe_kvm("/nonexistent/qemu-system-x86_64", "/k", 500, &ok, why,
					  sizeof(why), &err),
		     -1);
	cr_assert_eq(err.code, PHX_E_RUNTIME);
	cr_assert(strstr(err.msg, "'/nonexistent/qemu-system-x86_64'"), "%s", err.msg);
	cr_assert(ok, "output written on failure");
}

Test(customize, prepare_copy_copies_and_names_a_missing_source)
{
	struct phx_err err = PHX_ERR_INIT;
	char dir[] = "/tmp/cust-copy-XXXXXX", dst[64];
	struct buf b = BUF_INIT;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(dst, sizeof(dst), "%s/disk.qcow2", dir);
	cr_assert_eq(cust_prepare_copy(DATA "file-source.txt", dst, &err), 0, "%s", err.msg);
	cr_assert_eq(fs_read_file(dst, &b, &err), 0);
	cr_assert_str_eq(buf_str(&b), "hello from a host file\n");
	buf_release(&b);
	cr_assert_eq(cust_prepare_copy(DATA "no-such.qcow2", dst, &err), -1);
	cr_assert_eq(err.code, PHX_E_IO);
	cr_assert(strstr(err.msg, DATA "no-such.qcow2"), "%s", err.msg);
	unlink(dst);
	rmdir(dir);
}

#define MIB (1024ULL * 1024ULL)

/* A file that is only a qcow2 header saying the disk is `virt` bytes: all the estimate reads. */
static void fake_qcow2(const char *path, unsigned long long virt)
{
	unsigned char h[512] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};
	FILE *f = fopen(path, "w");

	for (int i = 0; i < 8; i++)
		h[24 + i] = (unsigned char)(virt >> (56 - 8 * i));
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(h, 1, sizeof(h), f), sizeof(h));
	cr_assert_eq(fclose(f), 0);
}

Test(customize, space_estimate_adds_an_allowance_per_kind_of_step)
{
	char dir[] = "/tmp/cust-space-XXXXXX", disk[64], deb[64];
	const char *one[] = {"qemu-guest-agent"}, *three[] = {"curl", "vim", "htop"},
		   *debs[] = {deb};
	struct phx_err err = PHX_ERR_INIT;
	struct cust_space sp;
	struct cust_plan *p;
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(disk, sizeof(disk), "%s/disk.qcow2", dir);
	snprintf(deb, sizeof(deb), "%s/big_1_all.deb", dir);
	fake_qcow2(disk, 20ULL * 1024 * MIB);
	f = fopen(deb, "w");
	cr_assert_not_null(f);
	cr_assert_eq(ftruncate(fileno(f), (off_t)MIB), 0);
	cr_assert_eq(fclose(f), 0);

	struct {
		const char *name;
		unsigned long long need;
		const char *why;
	} cases[] = {
		{"empty", 64 * MIB, "journal and hygiene 64 MiB"},
		{"packages", (64 + 256 + 96) * MIB,
		 "journal and hygiene 64 MiB, package indexes 256 MiB, 3 packages 96 MiB"},
		{"two package steps", (64 + 512 + 64) * MIB,
		 "journal and hygiene 64 MiB, package indexes 512 MiB, 2 packages 64 MiB"},
		{"debs", (64 + 4) * MIB, "journal and hygiene 64 MiB, local packages x4 4 MiB"},
		{"commands", (64 + 64) * MIB, "journal and hygiene 64 MiB, 2 commands 64 MiB"},
		{"files", 64 * MIB + 3 + 23, "journal and hygiene 64 MiB, files 1 MiB"},
		{"services and timezone", 64 * MIB, "journal and hygiene 64 MiB"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *svc[] = {"ssh"};

		p = new_plan();
		if (i == 1)
			cr_assert_eq(cust_plan_add_packages(p, three, 3, &err), 0);
		if (i == 2) {
			cr_assert_eq(cust_plan_add_packages(p, one, 1, &err), 0);
			cr_assert_eq(cust_plan_add_packages(p, one, 1, &err), 0);
		}
		if (i == 3)
			cr_assert_eq(cust_plan_add_local_packages(p, debs, 1, &err), 0, "%s",
				     err.msg);
		if (i == 4) {
			cr_assert_eq(cust_plan_add_run(p, "true", &err), 0);
			cr_assert_eq(cust_plan_add_run(p, "false", &err), 0);
		}
		if (i == 5) {
			cr_assert_eq(cust_plan_add_file_content(p, "/etc/x", 0644, "abc", 3, &err),
				     0);
			cr_assert_eq(cust_plan_add_file_source(p, "/etc/y", 0644,
							       DATA "file-source.txt", &err),
				     0, "%s", err.msg);
		}
		if (i == 6) {
			cr_assert_eq(cust_plan_add_services(p, svc, 1, &err), 0);
			cr_assert_eq(cust_plan_add_timezone(p, "UTC", &err), 0);
		}
		cr_assert_eq(cust_space_estimate(p, disk, &sp, &err), 0, "%s", err.msg);
		cr_assert_eq(sp.need_bytes, cases[i].need, "%s: %llu", cases[i].name,
			     sp.need_bytes);
		cr_assert_str_eq(sp.why, cases[i].why, "%s", cases[i].name);
		cr_assert_eq(sp.virtual_bytes, 20ULL * 1024 * MIB);
		cust_plan_free(p);
	}
	unlink(deb);
	unlink(disk);
	rmdir(dir);
}

Test(customize, space_estimate_never_exceeds_what_the_disk_can_grow)
{
	char dir[] = "/tmp/cust-space-XXXXXX", disk[64], raw[64];
	const char *pkgs[] = {"postgresql"};
	struct phx_err err = PHX_ERR_INIT;
	struct cust_space sp;
	struct cust_plan *p = new_plan();
	char *zeros;
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(disk, sizeof(disk), "%s/small.qcow2", dir);
	snprintf(raw, sizeof(raw), "%s/full.raw", dir);
	cr_assert_eq(cust_plan_add_packages(p, pkgs, 1, &err), 0);
	/* a 100 MiB disk cannot add 352 MiB, whatever is installed */
	fake_qcow2(disk, 100 * MIB);
	cr_assert_eq(cust_space_estimate(p, disk, &sp, &err), 0, "%s", err.msg);
	cr_assert_leq(sp.need_bytes, 100 * MIB + 100 * MIB / 8192);
	cr_assert_gt(sp.need_bytes, 99 * MIB);
	cr_assert(strstr(sp.why, "; at most the disk's 100 MiB virtual size less the 0 MiB its "
				 "file holds"),
		  "%s", sp.why);
	/* a raw disk with every block written grows no more */
	zeros = calloc(1, MIB);
	f = fopen(raw, "w");
	cr_assert(zeros && f);
	cr_assert_eq(fwrite(zeros, 1, MIB, f), MIB);
	cr_assert_eq(fclose(f), 0);
	free(zeros);
	cr_assert_eq(cust_space_estimate(p, raw, &sp, &err), 0, "%s", err.msg);
	cr_assert_eq(sp.virtual_bytes, MIB);
	cr_assert_lt(sp.need_bytes, 4096, "%llu", sp.need_bytes);
	/* the disk must be readable: the error names it */
	cr_assert_eq(cust_space_estimate(p, DATA "no-such.qcow2", &sp, &err), -1);
	cr_assert_eq(err.code, PHX_E_IO);
	cr_assert(strstr(err.msg, "'" DATA "no-such.qcow2'"), "%s", err.msg);
	cust_plan_free(p);
	unlink(disk);
	unlink(raw);
	rmdir(dir);
}

/* Feeds samples once a second from t = 0 to `until` s, CPU growing by cpu_per_s and the disk
 * file by alloc_per_s; returns the first verdict and when it came (*ret_t), or OK. */
static enum cust_watch_verdict judge_run(double cpu_per_s, unsigned long long alloc_per_s,
					 unsigned long long avail, double cpu_unknown_until,
					 int until, double *ret_t)
{
	struct cust_watch_state st = {0};

	for (int t = 0; t <= until; t++) {
		struct cust_watch_sample s = {.t = t,
					      .cpu_s = t < cpu_unknown_until ? -1
									     : 3.0 + cpu_per_s * t,
					      .alloc = 100 * MIB + alloc_per_s * (unsigned)t,
					      .avail = avail};
		double idle;
		enum cust_watch_verdict v = cust_watch_judge(&st, &s, 30, 600, &idle);

		if (v != CUST_WATCH_OK) {
			*ret_t = t;
			cr_assert_geq(idle, v == CUST_WATCH_FULL ? 30 : 600);
			return v;
		}
	}
	return CUST_WATCH_OK;
}

Test(customize, watchdog_judges_a_paused_appliance_on_a_full_disk_after_30_s)
{
	double t = -1;

	/* qemu paused on ENOSPC: no CPU at all, the file does not grow */
	cr_assert_eq(judge_run(0, 0, 0, 0, 700, &t), CUST_WATCH_FULL);
	cr_assert_eq(t, 30.0);
	cr_assert_eq(judge_run(0, 0, 15 * MIB, 0, 700, &t), CUST_WATCH_FULL);
	/* the same with room left is a stall, judged after the long limit only */
	cr_assert_eq(judge_run(0, 0, 17 * MIB, 0, 700, &t), CUST_WATCH_STALL);
	cr_assert_eq(t, 600.0);
}

Test(customize, watchdog_counts_cpu_work_or_disk_growth_as_progress)
{
	double t = -1;

	/* busy guest (dpkg, apt) on an almost full disk: working, not stuck */
	cr_assert_eq(judge_run(0.5, 0, 0, 0, 700, &t), CUST_WATCH_OK);
	/* the file grows (a download being written) */
	cr_assert_eq(judge_run(0, MIB, 10 * 1024 * MIB, 0, 700, &t), CUST_WATCH_OK);
	/* 5% of a CPU is progress, an idle TCG appliance (0.6%: timer ticks) is not */
	cr_assert_eq(judge_run(0.05, 0, 10 * 1024 * MIB, 0, 700, &t), CUST_WATCH_OK);
	cr_assert_eq(judge_run(0.006, 0, 10 * 1024 * MIB, 0, 700, &t), CUST_WATCH_STALL);
	cr_assert_eq(t, 600.0);
	/* without the process (launch not done yet) nothing is judged ... */
	cr_assert_eq(judge_run(0, 0, 0, 1000, 700, &t), CUST_WATCH_OK);
	/* ... and the clock starts when it is found */
	cr_assert_eq(judge_run(0, 0, 0, 100, 700, &t), CUST_WATCH_FULL);
	cr_assert_eq(t, 130.0);
}

Test(customize, a_bad_stall_limit_is_an_input_error_before_anything_starts)
{
	const char *bad[] = {"abc", "0", "-5", "10s", "", "999999"};
	char dir[] = "/tmp/cust-stall-XXXXXX", disk[64];
	struct cust_report rep = {.steps = 4242};

	cr_assert_not_null(mkdtemp(dir));
	snprintf(disk, sizeof(disk), "%s/disk.qcow2", dir);
	fake_qcow2(disk, 1024 * MIB);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct cust_plan *p = new_plan();

		setenv("PHX_CUSTOMIZE_STALL_S", bad[i], 1);
		if (!*bad[i]) {
			/* empty means unset: the default; an empty plan then fails later, so only
			 * the parse is checked, through an unreadable disk */
			cr_assert_eq(cust_run(p, DATA "no-such.qcow2", NULL, &rep, &err), -1);
			cr_assert_eq(err.code, PHX_E_IO, "%s", err.msg);
		} else {
			cr_assert_eq(cust_run(p, disk, NULL, &rep, &err), -1);
			cr_assert_eq(err.code, PHX_E_INPUT, "%s", err.msg);
			cr_assert(strstr(err.msg, "PHX_CUSTOMIZE_STALL_S") &&
					  strstr(err.msg, bad[i]),
				  "%s", err.msg);
		}
		cust_plan_free(p);
	}
	unsetenv("PHX_CUSTOMIZE_STALL_S");
	cr_assert_eq(rep.steps, 4242);
	unlink(disk);
	rmdir(dir);
}

/* --- the watchdog thread, against a stand-in appliance --- */

extern char **environ;

/* A child of this process whose command line names `disk`, as libguestfs's qemu does: a shell
 * that waits on a pipe (no CPU) or spins (busy). *ret_in is the pipe's write end. */
static pid_t fake_appliance(const char *disk, bool busy, int *ret_in)
{
	char arg[128];
	char *argv[] = {"sh", "-c", busy ? "while :; do :; done" : "read x", "sh", arg, NULL};
	posix_spawn_file_actions_t fa;
	int fds[2];
	pid_t pid;

	snprintf(arg, sizeof(arg), "file=%s,cache=writeback", disk);
	cr_assert_eq(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	cr_assert_eq(posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[0]);
	*ret_in = fds[1];
	return pid;
}

struct watch_fixture {
	char dir[32], disk[64];
	struct cust_space space;
	struct cust_watch *w;
	pid_t pid; /* 0 once reaped */
	int in;
};

/* Waits up to `secs` for the stand-in to end; its wait status, or -1 while it still runs. */
static int reaped_within(struct watch_fixture *f, double secs)
{
	double end = now_s() + secs;
	int st;

	do {
		if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
			f->pid = 0;
			return st;
		}
		clk_sleep_ms(50);
	} while (now_s() < end);
	return -1;
}

static void watch_start(struct watch_fixture *f, bool busy, double stall_s)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_watch_cfg cfg;

	snprintf(f->dir, sizeof(f->dir), "/tmp/cust-watch-XXXXXX");
	cr_assert_not_null(mkdtemp(f->dir));
	snprintf(f->disk, sizeof(f->disk), "%s/disk.qcow2", f->dir);
	fake_qcow2(f->disk, 1024 * MIB);
	f->space = (struct cust_space){.virtual_bytes = 1024 * MIB, .need_bytes = 64 * MIB};
	cfg = (struct cust_watch_cfg){.disk = f->disk,
				      .dir = f->dir,
				      .full_s = stall_s,
				      .stall_s = stall_s,
				      .space = &f->space};
	cr_assert_eq(cust_watch_start(&cfg, &f->w, &err), 0, "%s", err.msg);
	f->pid = fake_appliance(f->disk, busy, &f->in);
}

static void watch_finish(struct watch_fixture *f)
{
	cust_watch_free(f->w);
	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	close(f->in);
	unlink(f->disk);
	rmdir(f->dir);
}

Test(customize, watchdog_finds_and_kills_an_appliance_that_makes_no_progress)
{
	struct phx_err err = PHX_ERR_INIT;
	struct watch_fixture f;
	int st;

	/* found by its command line while libguestfs is still launching it (no pid given) */
	watch_start(&f, false, 1);
	cr_assert_not(cust_watch_fired(f.w, &err));
	st = reaped_within(&f, 5);
	cr_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "not killed: %d", st);
	cr_assert(cust_watch_fired(f.w, &err));
	cr_assert_eq(err.code, PHX_E_TIMEOUT, "%s", err.msg);
	cr_assert(strstr(err.msg, "no progress for 1 s") && strstr(err.msg, f.dir) &&
			  strstr(err.msg, "PHX_CUSTOMIZE_STALL_S"),
		  "%s", err.msg);
	watch_finish(&f);
}

Test(customize, watchdog_leaves_a_busy_appliance_alone)
{
	struct phx_err err = PHX_ERR_INIT;
	struct watch_fixture f;

	watch_start(&f, true, 1);
	cust_watch_set_pid(f.w, f.pid);
	cr_assert_eq(reaped_within(&f, 2.5), -1, "a working appliance was killed");
	cr_assert_not(cust_watch_fired(f.w, &err), "%s", err.msg);
	cr_assert_eq(err.code, PHX_E_NONE);
	watch_finish(&f);
}

Test(customize, watchdog_kills_the_appliance_promptly_on_a_stop_signal)
{
	struct phx_err err = PHX_ERR_INIT;
	struct watch_fixture f;
	double t;
	int st;

	watch_start(&f, true, 600);
	cust_watch_set_pid(f.w, f.pid);
	clk_sleep_ms(300);
	t = now_s();
	clk_signal_note(SIGTERM); /* what main's handler does */
	st = reaped_within(&f, 3);
	cr_assert(st != -1 && WIFSIGNALED(st), "not killed after the signal");
	cr_assert_lt(now_s() - t, 1.0, "took %.2f s", now_s() - t);
	cr_assert(cust_watch_fired(f.w, &err));
	cr_assert_eq(err.code, PHX_E_INTERRUPTED);
	cr_assert(strstr(err.msg, "stopped by signal 15"), "%s", err.msg);
	watch_finish(&f);
}

Test(customize, a_disarmed_watchdog_kills_nothing)
{
	struct phx_err err = PHX_ERR_INIT;
	struct watch_fixture f;

	watch_start(&f, false, 1);
	cust_watch_set_pid(f.w, f.pid);
	/* the run's writes are on disk: a late verdict must not kill anything */
	cust_watch_disarm(f.w);
	clk_signal_note(SIGINT);
	cr_assert_eq(reaped_within(&f, 1.5), -1, "killed after disarm");
	cust_watch_fired(f.w, &err); /* a verdict may be recorded; it is only not acted on */
	watch_finish(&f);
}

Test(customize, a_user_step_makes_groups_user_keys_expired_password_sudo_and_git_identity)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_plan *p = new_plan();
	struct buf out = BUF_INIT;
	const char *groups[] = {"sudo", "docker"}, *keys[] = {"ssh-ed25519 AAAA a@b", "ssh-rsa BBBB"};
	const struct cust_user u = {.name = "ada",
				    .uid = 1500,
				    .gid = 1600,
				    .groups = groups,
				    .n_groups = 2,
				    .ssh_keys = keys,
				    .n_ssh_keys = 2,
				    .password_hash = "$6$salt$it's",
				    .password_expired = true,
				    .sudo = true,
				    .git_name = "Ada Lovelace",
				    .git_email = "ada@example.com"};
	const struct cust_user bare = {.name = "bob"};
	char script[64], check[96];
	int status;

	cr_assert_eq(cust_plan_add_user(p, &u, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_add_user(p, &bare, &err), 0, "%s", err.msg);
	cr_assert_eq(cust_plan_kind(p, 0), CUST_OP_USER);
	/* the description says what is set, never the hash */
	cr_assert_str_eq(cust_plan_describe(p, 0),
			 "user 'ada' uid 1500 gid 1600, ssh keys, password (change at first "
			 "login), git identity");
	cr_assert_str_eq(cust_plan_describe(p, 1), "user 'bob'");
	step_commands(p, 0, "debian", false, &out);
	cr_assert_str_eq(
		buf_str(&out),
		"getent group ada >/dev/null || groupadd -g 1600 ada && for g in $(echo "
		"sudo,docker | tr , ' '); do getent group \"$g\" >/dev/null || groupadd \"$g\"; "
		"done && sh=/bin/bash && { [ -x \"$sh\" ] || sh=/bin/sh; } && if id -u ada "
		">/dev/null 2>&1; then usermod -s \"$sh\" -g ada -u 1500 -G sudo,docker ada; else "
		"useradd -m -s \"$sh\" -g ada -u 1500 -G sudo,docker ada; fi\n"
		"h=$(getent passwd ada | cut -d: -f6) && install -d -m 700 -o ada -g ada "
		"\"$h/.ssh\" && printf '%s\\n' 'ssh-ed25519 AAAA a@b\nssh-rsa BBBB' > "
		"\"$h/.ssh/authorized_keys\" && chown ada:ada \"$h/.ssh/authorized_keys\" && chmod "
		"600 \"$h/.ssh/authorized_keys\"\n"
		"printf '%s\\n' ada:'$6$salt$it'\\''s' | chpasswd -e && if command -v chage "
		">/dev/null; then chage -d 0 ada; else sed -i 's/^ada:\\([^:]*\\):[^:]*:/ada:\\1:0:/' "
		"/etc/shadow; fi\n"
		"mkdir -p /etc/sudoers.d && printf '%s ALL=(ALL) NOPASSWD:ALL\\n' ada > "
		"/etc/sudoers.d/90-phoenix-ada && chmod 440 /etc/sudoers.d/90-phoenix-ada\n"
		"h=$(getent passwd ada | cut -d: -f6) && printf '[user]\\n\\tname = \"%s\"\\n\\temail = "
		"\"%s\"\\n' 'Ada Lovelace' 'ada@example.com' > \"$h/.gitconfig\" && chown ada:ada "
		"\"$h/.gitconfig\" && chmod 644 \"$h/.gitconfig\"\n");
	/* every command is valid sh */
	snprintf(script, sizeof(script), "/tmp/phx-test-user-%d.sh", (int)getpid());
	snprintf(check, sizeof(check), "sh -n %s", script);
	for (size_t i = 0; i < 2; i++) {
		step_commands(p, i, "alpine", false, &out);
		cr_assert_eq(fs_write_atomic(script, buf_str(&out), out.len, 0600, &err), 0, "%s",
			     err.msg);
		status = system(check);
		cr_assert_eq(status, 0, "not valid sh:\n%s", buf_str(&out));
	}
	unlink(script);
	step_commands(p, 1, "debian", false, &out);
	cr_assert_str_eq(buf_str(&out),
			 "getent group bob >/dev/null || groupadd bob && sh=/bin/bash && { [ -x "
			 "\"$sh\" ] || sh=/bin/sh; } && if id -u bob >/dev/null 2>&1; then usermod -s "
			 "\"$sh\" -g bob bob; else useradd -m -s \"$sh\" -g bob bob; fi\n");
	buf_release(&out);
	cust_plan_free(p);
}

Test(customize, a_user_with_a_bad_value_is_refused_and_the_plan_unchanged)
{
	struct phx_err err = PHX_ERR_INIT;
	struct cust_plan *p = new_plan();
	const char *bad_group[] = {"Wheel"}, *nl_key[] = {"ssh-ed25519 AAAA\nrm -rf /"};
	const struct cust_user cases[] = {
		{.name = "Ada"},
		{.name = "ada", .groups = bad_group, .n_groups = 1},
		{.name = "ada", .shell = "/bin/sh; reboot"},
		{.name = "ada", .ssh_keys = nl_key, .n_ssh_keys = 1},
		{.name = "ada", .password_hash = "$6$a\nb"},
		{.name = "ada", .git_name = "a\"b"},
		{.name = "ada", .password_expired = true},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		phx_err_clear(&err);
		cr_assert_eq(cust_plan_add_user(p, &cases[i], &err), -1, "case %zu", i);
		cr_assert_eq(err.code, PHX_E_INPUT, "case %zu", i);
		cr_assert(strstr(err.msg, "users:"), "case %zu: %s", i, err.msg);
		cr_assert_null(strstr(err.msg, "$6$"), "case %zu: the hash in '%s'", i, err.msg);
	}
	cr_assert_eq(cust_plan_len(p), 0);
	cust_plan_free(p);
}
