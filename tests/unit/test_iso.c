/* iso: the cidata image reads back (xorriso) with the exact files, carries the volume id,
 * Rock Ridge and Joliet, is byte-identical across builds, orders and threads, and fails
 * cleanly. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "crypto.h"
#include "fsutil.h"
#include "iso.h"

TestSuite(iso);

static const char ud[] = "#cloud-config\nhostname: web-01\nusers:\n- name: alice\n";
static const char md[] = "instance-id: iid-0123456789abcdef\nlocal-hostname: web-01\n";
static const char nc[] = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n";

static const struct iso_file seed[] = {
	{"user-data", ud, sizeof(ud) - 1},
	{"meta-data", md, sizeof(md) - 1},
	{"network-config", nc, sizeof(nc) - 1},
	{"vendor-data", "", 0},
};
#define N_SEED (sizeof(seed) / sizeof(seed[0]))

static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/phx-test-iso-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

static void in_tmp(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void read_all(const char *path, struct buf *b)
{
	struct phx_err err = PHX_ERR_INIT;

	buf_reset(b);
	cr_assert_eq(fs_read_file(path, b, &err), 0, "%s", err.msg);
}

static bool have_xorriso(void)
{
	return system("command -v xorriso >/dev/null 2>&1") == 0;
}

Test(iso, readback_has_exact_files_volume_id_rock_ridge_and_joliet, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
	struct phx_err err = PHX_ERR_INIT;
	struct buf b = BUF_INIT;
	char iso[256], dir[256], cmd[1024], path[512], sha[CRYPTO_SHA256_HEX_LEN + 1];
	FILE *p;
	char line[512];
	bool rr = false, volid = false;
	int nfiles = 0;

	if (!have_xorriso())
		cr_skip_test("xorriso is not installed (scripts/install-deps.sh installs it)");
	in_tmp(iso, sizeof(iso), "seed.iso");
	in_tmp(dir, sizeof(dir), "out");
	cr_assert_eq(iso_build_cidata(seed, N_SEED, iso, sha, &err), 0, "%s", err.msg);

	snprintf(cmd, sizeof(cmd), "xorriso -osirrox on -indev '%s' -extract / '%s' 2>/dev/null",
		 iso, dir);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	for (size_t i = 0; i < N_SEED; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, seed[i].name);
		read_all(path, &b);
		cr_assert_eq(b.len, seed[i].len, "%s: %zu bytes, want %zu", seed[i].name, b.len,
			     seed[i].len);
		cr_assert(memcmp(buf_str(&b), seed[i].data, seed[i].len) == 0, "%s differs",
			  seed[i].name);
	}
	/* nothing else in the image */
	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_eq(fscanf(p, "%d", &nfiles), 1);
	pclose(p);
	cr_assert_eq(nfiles, (int)N_SEED);

	snprintf(cmd, sizeof(cmd), "xorriso -indev '%s' -pvd_info 2>&1", iso);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (fgets(line, sizeof(line), p))
		if (strcmp(line, "Volume Id    : cidata\n") == 0)
			volid = true;
	pclose(p);
	cr_assert(volid, "xorriso does not report volume id 'cidata'");

	/* Each tree on its own: ECMA-119 alone would give upper-case 'NETWORK_CONFIG', so the
	 * real names prove the Rock Ridge (nojoliet) and the Joliet (norock) trees. */
	for (int t = 0; t < 2; t++) {
		const char *mode = t ? "norock" : "nojoliet";
		char names[512] = "";

		snprintf(cmd, sizeof(cmd), "xorriso -read_fs %s -indev '%s' -ls / 2>/dev/null",
			 mode, iso);
		p = popen(cmd, "r");
		cr_assert_not_null(p);
		while (fgets(line, sizeof(line), p))
			strncat(names, line, sizeof(names) - strlen(names) - 1);
		pclose(p);
		cr_assert_str_eq(names,
				 "'meta-data'\n'network-config'\n'user-data'\n'vendor-data'\n",
				 "%s tree", mode);
	}
	/* Rock Ridge carries the pinned POSIX attributes */
	snprintf(cmd, sizeof(cmd),
		 "xorriso -read_fs nojoliet -indev '%s' -lsl /user-data 2>/dev/null", iso);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (fgets(line, sizeof(line), p))
		if (strncmp(line, "-r--r--r--", 10) == 0 && strstr(line, " 0        0  ") &&
		    strstr(line, "Jan  1  2020"))
			rr = true;
	pclose(p);
	cr_assert(rr, "no Rock Ridge mode/owner/time for user-data");
	buf_release(&b);
}

/* ECMA-119 structures read straight from the bytes, independent of any tool. */
Test(iso, volume_descriptors_name_cidata_and_announce_joliet, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
	struct phx_err err = PHX_ERR_INIT;
	struct buf b = BUF_INIT;
	char iso[256];
	bool joliet = false;
	const unsigned char *d;

	in_tmp(iso, sizeof(iso), "seed.iso");
	cr_assert_eq(iso_build_cidata(seed, N_SEED, iso, NULL, &err), 0, "%s", err.msg);
	read_all(iso, &b);
	cr_assert_eq(b.len % 2048, 0);
	d = (const unsigned char *)b.data;
	/* primary volume descriptor at sector 16 */
	cr_assert_eq(d[16 * 2048], 1);
	cr_assert(memcmp(d + 16 * 2048 + 1, "CD001", 5) == 0);
	cr_assert(memcmp(d + 16 * 2048 + 40, "cidata                          ", 32) == 0,
		  "volume id is '%.32s'", d + 16 * 2048 + 40);
	/* a supplementary descriptor with a UCS-2 escape sequence is Joliet */
	for (size_t s = 17; s < 32 && d[s * 2048] != 255; s++)
		if (d[s * 2048] == 2 && d[s * 2048 + 88] == '%' && d[s * 2048 + 89] == '/')
			joliet = true;
	cr_assert(joliet, "no Joliet supplementary volume descriptor");
	/* Rock Ridge alternate names keep the lower-case names ECMA-119 cannot hold */
	cr_assert_not_null(memmem(b.data, b.len, "network-config", 14));
	cr_assert_not_null(memmem(b.data, b.len, "SP\x07\x01\xbe\xef", 6), "no SUSP SP entry");
	buf_release(&b);
}

Test(iso, builds_are_byte_identical_across_time_and_file_order, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
	struct phx_err err = PHX_ERR_INIT;
	struct buf a = BUF_INIT, b = BUF_INIT;
	struct iso_file reversed[N_SEED];
	char p1[256], p2[256], h1[CRYPTO_SHA256_HEX_LEN + 1], h2[CRYPTO_SHA256_HEX_LEN + 1];
	char h3[CRYPTO_SHA256_HEX_LEN + 1];

	for (size_t i = 0; i < N_SEED; i++)
		reversed[i] = seed[N_SEED - 1 - i];
	in_tmp(p1, sizeof(p1), "a.iso");
	in_tmp(p2, sizeof(p2), "b.iso");
	cr_assert_eq(iso_build_cidata(seed, N_SEED, p1, h1, &err), 0, "%s", err.msg);
	sleep(1); /* a clock-dependent timestamp would now differ */
	cr_assert_eq(iso_build_cidata(reversed, N_SEED, p2, h2, &err), 0, "%s", err.msg);
	read_all(p1, &a);
	read_all(p2, &b);
	cr_assert_eq(a.len, b.len);
	cr_assert(memcmp(a.data, b.data, a.len) == 0, "the two images differ");
	cr_assert_str_eq(h1, h2);
	cr_assert_eq(iso_cidata_sha256(p1, h3, &err), 0, "%s", err.msg);
	cr_assert_str_eq(h1, h3, "reported hash is not the file's hash");
	buf_release(&a);
	buf_release(&b);
}

Test(iso, different_content_gives_a_different_hash, .init = make_tmpdir, .fini = remove_tmpdir)
{
	struct phx_err err = PHX_ERR_INIT;
	struct iso_file changed[N_SEED];
	char p1[256], p2[256], h1[CRYPTO_SHA256_HEX_LEN + 1], h2[CRYPTO_SHA256_HEX_LEN + 1];

	memcpy(changed, seed, sizeof(seed));
	changed[0].data = "#cloud-config\nhostname: web-02\n";
	changed[0].len = strlen(changed[0].data);
	in_tmp(p1, sizeof(p1), "a.iso");
	in_tmp(p2, sizeof(p2), "b.iso");
	cr_assert_eq(iso_build_cidata(seed, N_SEED, p1, h1, &err), 0, "%s", err.msg);
	cr_assert_eq(iso_build_cidata(changed, N_SEED, p2, h2, &err), 0, "%s", err.msg);
	cr_assert_str_neq(h1, h2);
}

struct thread_job {
	char path[256];
	char hash[CRYPTO_SHA256_HEX_LEN + 1];
	int rc;
	struct phx_err err;
};

static void *build_in_thread(void *arg)
{
	struct thread_job *j = arg;

	j->rc = iso_build_cidata(seed, N_SEED, j->path, j->hash, &j->err);
	return NULL;
}

/* deploy --jobs N builds seeds in parallel workers */
Test(iso, concurrent_builds_succeed_and_agree, .init = make_tmpdir, .fini = remove_tmpdir)
{
	struct thread_job jobs[4];
	pthread_t t[4];

	for (int i = 0; i < 4; i++) {
		memset(&jobs[i], 0, sizeof(jobs[i]));
		snprintf(jobs[i].path, sizeof(jobs[i].path), "%s/t%d.iso", tmpdir, i);
		cr_assert_eq(pthread_create(&t[i], NULL, build_in_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(jobs[i].rc, 0, "%s", jobs[i].err.msg);
		cr_assert_str_eq(jobs[i].hash, jobs[0].hash);
	}
}

Test(iso, bad_file_name_is_rejected_and_nothing_written, .init = make_tmpdir, .fini = remove_tmpdir)
{
	struct phx_err err = PHX_ERR_INIT;
	const struct iso_file bad[] = {{"../user-data", "x", 1}};
	char path[256], hash[CRYPTO_SHA256_HEX_LEN + 1] = "untouched";

	in_tmp(path, sizeof(path), "bad.iso");
	cr_assert_eq(iso_build_cidata(bad, 1, path, hash, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "'../user-data'"), "%s", err.msg);
	cr_assert(!fs_exists(path));
	cr_assert_str_eq(hash, "untouched");
}

Test(iso, duplicate_file_is_rejected_and_existing_output_kept, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
	struct phx_err err = PHX_ERR_INIT;
	const struct iso_file dup[] = {
		{"user-data", "a", 1}, {"meta-data", "b", 1}, {"user-data", "c", 1}};
	char path[256];
	struct buf b = BUF_INIT;

	in_tmp(path, sizeof(path), "keep.iso");
	cr_assert_eq(fs_write_atomic(path, "old", 3, 0644, &err), 0, "%s", err.msg);
	cr_assert_eq(iso_build_cidata(dup, 3, path, NULL, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "'user-data' given twice"), "%s", err.msg);
	read_all(path, &b);
	cr_assert_str_eq(buf_str(&b), "old");
	buf_release(&b);
}

Test(iso, unwritable_output_is_an_io_error_naming_the_path, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
	struct phx_err err = PHX_ERR_INIT;
	char path[256];

	in_tmp(path, sizeof(path), "missing-dir/seed.iso");
	cr_assert_eq(iso_build_cidata(seed, N_SEED, path, NULL, &err), -1);
	cr_assert_eq(err.code, PHX_E_IO);
	cr_assert(strstr(err.msg, path), "%s", err.msg);
}

Test(iso, too_many_files_is_rejected)
{
	struct phx_err err = PHX_ERR_INIT;
	struct iso_file many[ISO_MAX_FILES + 1];

	for (size_t i = 0; i <= ISO_MAX_FILES; i++)
		many[i] = (struct iso_file){"f", "x", 1};
	cr_assert_eq(iso_build_cidata(many, ISO_MAX_FILES + 1, "/nonexistent/x.iso", NULL, &err),
		     -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "17 files"), "%s", err.msg);
}
