/* pgp: signatures over a checksum file, judged against a keyring file only. The keys are
 * made by tests/tools/pgp-keys.sh (once per build tree) and the signatures here, with gpg. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "pgp.h"

static char keys[512];		      /* the key set (shared by every test of the build tree) */
static char dir[] = "/tmp/phx-pgp-XXXXXX"; /* this test's files, and its TMPDIR */
static char fpr_good[64], fpr_other[64], fpr_old[64];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void setup(void)
{
	const char *build = getenv("PHX_BUILD"), *src = getenv("PHX_SRC");
	char path[600], name[16], fpr[64];
	FILE *f;

	snprintf(keys, sizeof(keys), "%s/pgp-keys", build ? build : "build");
	/* criterion runs tests in parallel processes: one makes the keys, the others wait */
	sh("mkdir -p '%s' && flock '%s.lock' '%s/tests/tools/pgp-keys.sh' '%s'", keys, keys,
	   src ? src : ".", keys);
	snprintf(path, sizeof(path), "%s/ids", keys);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fscanf(f, "%15s %63s", name, fpr) == 2) {
		if (!strcmp(name, "good"))
			strcpy(fpr_good, fpr);
		else if (!strcmp(name, "other"))
			strcpy(fpr_other, fpr);
		else if (!strcmp(name, "old"))
			strcpy(fpr_old, fpr);
	}
	fclose(f);
	strcpy(dir, "/tmp/phx-pgp-XXXXXX");
	cr_assert(mkdtemp(dir));
	/* the private GnuPG homes go here, so the test can see they are removed */
	setenv("TMPDIR", dir, 1);
}

static void teardown(void)
{
	sh("gpgconf --homedir '%s/gnupg' --kill gpg-agent; rm -rf '%s'", keys, dir);
}

TestSuite(pgp, .init = setup, .fini = teardown);

static const char sums[] = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90 "
			   "*noble-server-cloudimg-amd64.img\n";

/* Writes `sums` to DIR/SUMS and signs it as `who` with the gpg options `how`. */
static void sign(const char *who, const char *how, const char *extra)
{
	struct phx_err err = PHX_ERR_INIT;
	char path[600];

	snprintf(path, sizeof(path), "%s/SUMS", dir);
	cr_assert_eq(fs_write_atomic(path, sums, strlen(sums), 0644, &err), 0, "%s", err.msg);
	/* one gpg at a time in the shared home: parallel ones race to start its agent */
	sh("flock '%s.lock' gpg --homedir '%s/gnupg' --batch --yes --quiet --no-tty %s -u %s %s -o "
	   "'%s/SUMS.out' '%s/SUMS' 2>/dev/null",
	   keys, keys, extra ? extra : "", who, how, dir, dir);
}

static void slurp(const char *name, struct buf *b)
{
	struct phx_err err = PHX_ERR_INIT;
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(fs_read_file(path, b, &err), 0, "%s", err.msg);
}

static void ring(const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", keys, name);
}

/* No private GnuPG home may outlive a call. */
static void assert_no_home_left(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		cr_assert_null(strstr(e->d_name, "phx-gnupg-"), "left behind: %s", e->d_name);
	closedir(d);
}

/* Verifies DIR/SUMS with the signature in DIR/SUMS.out (detached) against keyring `kr`. */
static int verify_detached(const char *kr, struct pgp_verified *v, struct phx_err *err)
{
	struct buf sig = BUF_INIT;
	char k[600];
	int rc;

	slurp("SUMS.out", &sig);
	ring(kr, k, sizeof(k));
	rc = pgp_verify(k, sums, strlen(sums), "http://h/SHA256SUMS", sig.data, sig.len,
			"http://h/SHA256SUMS.gpg", v, err);
	buf_release(&sig);
	return rc;
}

Test(pgp, counts_keys_of_binary_and_armored_keyrings)
{
	struct phx_err err = PHX_ERR_INIT;
	size_t n = 99;
	char k[600];

	ring("trusted.gpg", k, sizeof(k));
	cr_assert_eq(pgp_keyring_count(k, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 2);
	ring("trusted.asc", k, sizeof(k));
	cr_assert_eq(pgp_keyring_count(k, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 2);
	ring("empty.asc", k, sizeof(k));
	cr_assert_eq(pgp_keyring_count(k, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 0);
	assert_no_home_left();
}

Test(pgp, unreadable_keyring_is_an_io_error_naming_it)
{
	struct phx_err err = PHX_ERR_INIT;
	size_t n = 99;

	cr_assert_eq(pgp_keyring_count("/nonexistent/ring.gpg", &n, &err), -1);
	cr_assert_eq(err.code, PHX_E_IO);
	cr_assert(strstr(err.msg, "'/nonexistent/ring.gpg'"), "%s", err.msg);
	cr_assert_eq(n, 99, "output must be untouched on failure");
}

Test(pgp, accepts_good_detached_signature_binary_and_armored)
{
	static const char *const how[] = {"--detach-sign", "--armor --detach-sign"};

	for (size_t i = 0; i < 2; i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct pgp_verified v = PGP_VERIFIED_INIT;

		sign(fpr_good, how[i], NULL);
		cr_assert_eq(verify_detached(i ? "trusted.asc" : "trusted.gpg", &v, &err), 0,
			     "%s", err.msg);
		cr_assert_str_eq(v.text, sums);
		cr_assert_eq(v.len, strlen(sums));
		cr_assert_str_eq(v.signer, fpr_good);
		pgp_verified_release(&v);
	}
	assert_no_home_left();
}

Test(pgp, clear_signed_gives_only_the_signed_text)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pgp_verified v = PGP_VERIFIED_INIT;
	struct buf msg = BUF_INIT;
	char k[600];

	sign(fpr_good, "--clearsign", NULL);
	slurp("SUMS.out", &msg);
	/* unsigned text around the frame is not part of what was signed */
	cr_assert_eq(buf_puts(&msg, "0000000000000000000000000000000000000000000000000000000000000000"
				    " *evil.img\n",
			      &err),
		     0);
	ring("trusted.asc", k, sizeof(k));
	cr_assert_eq(pgp_verify(k, msg.data, msg.len, "http://h/CHECKSUM", NULL, 0, NULL, &v, &err),
		     0, "%s", err.msg);
	cr_assert_str_eq(v.text, sums);
	cr_assert_str_eq(v.signer, fpr_good);
	pgp_verified_release(&v);
	buf_release(&msg);
}

Test(pgp, refuses_a_tampered_file_as_bad_signature_naming_key_and_files)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pgp_verified v = {.text = (char *)0x1};
	struct buf sig = BUF_INIT;
	char k[600], tampered[sizeof(sums)];

	sign(fpr_good, "--detach-sign", NULL);
	slurp("SUMS.out", &sig);
	memcpy(tampered, sums, sizeof(sums));
	tampered[0] = 'b';
	ring("trusted.gpg", k, sizeof(k));
	cr_assert_eq(pgp_verify(k, tampered, strlen(tampered), "http://h/SHA256SUMS", sig.data,
				sig.len, "http://h/SHA256SUMS.gpg", &v, &err),
		     -1);
	cr_assert_eq(err.code, PHX_E_VERIFY);
	cr_assert(strstr(err.msg, "bad signature"), "%s", err.msg);
	cr_assert(strstr(err.msg, fpr_good + 24), "key ID missing: %s", err.msg);
	cr_assert(strstr(err.msg, "'http://h/SHA256SUMS.gpg'") &&
			  strstr(err.msg, "'http://h/SHA256SUMS'"),
		  "%s", err.msg);
	cr_assert_eq(v.text, (char *)0x1, "output must be untouched on failure");
	buf_release(&sig);
	assert_no_home_left();
}

Test(pgp, refuses_a_key_not_in_the_keyring_naming_its_id)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pgp_verified v = PGP_VERIFIED_INIT;

	sign(fpr_other, "--detach-sign", NULL);
	cr_assert_eq(verify_detached("trusted.gpg", &v, &err), -1);
	cr_assert_eq(err.code, PHX_E_VERIFY);
	/* gpg names a missing key by its ID: the last 16 hex digits of the fingerprint */
	cr_assert(strstr(err.msg, fpr_other + 24), "%s", err.msg);
	cr_assert(strstr(err.msg, "not in keyring"), "%s", err.msg);
	cr_assert(strstr(err.msg, "trusted.gpg'"), "%s", err.msg);
	cr_assert_null(v.text);
}

Test(pgp, refuses_an_expired_key_even_for_a_signature_made_in_time)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pgp_verified v = PGP_VERIFIED_INIT;

	sign(fpr_old, "--detach-sign", "--faked-system-time 20200601T000000");
	cr_assert_eq(verify_detached("trusted.gpg", &v, &err), -1);
	cr_assert_eq(err.code, PHX_E_VERIFY);
	cr_assert(strstr(err.msg, fpr_old + 24), "%s", err.msg);
	cr_assert(strstr(err.msg, "expired on 2020-12-31") || strstr(err.msg, "expired on 2021-01-01"),
		  "%s", err.msg);
	cr_assert_null(v.text);
}

Test(pgp, a_file_that_is_no_signature_says_so)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pgp_verified v = PGP_VERIFIED_INIT;
	char k[600];

	ring("trusted.gpg", k, sizeof(k));
	cr_assert_eq(pgp_verify(k, sums, strlen(sums), "http://h/SHA256SUMS", "<html>404</html>",
				16, "http://h/SHA256SUMS.gpg", &v, &err),
		     -1);
	cr_assert_eq(err.code, PHX_E_VERIFY);
	cr_assert(strstr(err.msg, "'http://h/SHA256SUMS.gpg'"), "%s", err.msg);
	cr_assert(strstr(err.msg, "no OpenPGP signature") || strstr(err.msg, "verify"), "%s",
		  err.msg);
	/* an unsigned checksum file given as clear-signed */
	cr_assert_eq(pgp_verify(k, sums, strlen(sums), "http://h/CHECKSUM", NULL, 0, NULL, &v,
				&err),
		     -1);
	assert_no_home_left();
}

Test(pgp, a_keyring_without_keys_refuses_everything)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pgp_verified v = PGP_VERIFIED_INIT;

	sign(fpr_good, "--detach-sign", NULL);
	cr_assert_eq(verify_detached("empty.asc", &v, &err), -1);
	cr_assert_eq(err.code, PHX_E_VERIFY);
	cr_assert(strstr(err.msg, "holds no OpenPGP key"), "%s", err.msg);
}

Test(pgp, the_users_own_keyring_is_never_consulted)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pgp_verified v = PGP_VERIFIED_INIT;
	char home[600];

	/* the user's GnuPG home (both ways of finding it) holds 'other', public and secret */
	snprintf(home, sizeof(home), "%s/gnupg", keys);
	setenv("GNUPGHOME", home, 1);
	setenv("HOME", dir, 1);
	sh("ln -s '%s' '%s/.gnupg'", home, dir);
	sign(fpr_other, "--detach-sign", NULL);
	cr_assert_eq(verify_detached("trusted.gpg", &v, &err), -1);
	cr_assert_eq(err.code, PHX_E_VERIFY);
	cr_assert(strstr(err.msg, "not in keyring"), "%s", err.msg);
}
