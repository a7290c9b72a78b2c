/* image: SHA256SUMS parser, cache metadata, names, the cache directory choice and the
 * download's writer threads. The download itself is covered by tests/integration/test_image.c
 * against a real server. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/image_int.h"
#include "fsutil.h"
#include "image.h"

static char dir[] = "/tmp/phx-image-XXXXXX";

static void setup(void)
{
	strcpy(dir, "/tmp/phx-image-XXXXXX");
	cr_assert(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(image, .init = setup, .fini = teardown);

/* Fixtures live in tests/data/image; tests run from the repo root (or PHX_SRC). */
static void read_fixture(const char *name, struct buf *out)
{
	struct phx_err err = PHX_ERR_INIT;
	const char *src = getenv("PHX_SRC");
	char path[512];

	snprintf(path, sizeof(path), "%s/tests/data/image/%s", src ? src : ".", name);
	cr_assert_eq(fs_read_file(path, out, &err), 0, "%s", err.msg);
}

static struct img_sums *parse_ok(const char *text)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_sums *s = NULL;

	cr_assert_eq(img_sums_parse(text, strlen(text), "test", &s, &err), 0, "%s", err.msg);
	cr_assert_not_null(s);
	return s;
}

Test(image, sums_parses_binary_form_of_ubuntu_listing)
{
	struct buf b = BUF_INIT;
	struct img_sums *s;

	read_fixture("SHA256SUMS.ubuntu", &b);
	s = parse_ok(buf_str(&b));
	cr_assert_eq(s->n, 3);
	cr_assert(s->entries[0].binary);
	cr_assert_str_eq(s->entries[0].name, "noble-server-cloudimg-amd64.img");
	cr_assert_str_eq(img_sums_lookup(s, "noble-server-cloudimg-amd64.img")->hex,
			 "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90");
	/* upper-case hex is folded so comparisons with computed hashes work */
	cr_assert_str_eq(img_sums_lookup(s, "noble-server-cloudimg-arm64.img")->hex,
			 "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	img_sums_free(s);
	buf_release(&b);
}

Test(image, sums_parses_text_form_with_crlf_comments_and_spaces_in_names)
{
	struct buf b = BUF_INIT;
	struct img_sums *s;

	read_fixture("SHA256SUMS.text-crlf", &b);
	s = parse_ok(buf_str(&b));
	cr_assert_eq(s->n, 2);
	cr_assert_not(s->entries[0].binary);
	cr_assert_str_eq(img_sums_lookup(s, "debian-12-generic-amd64.qcow2")->hex,
			 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210");
	/* "./" prefixes are ignored on both sides, inner spaces are part of the name */
	cr_assert_str_eq(img_sums_lookup(s, "with space.img")->hex,
			 "1111111111111111111111111111111111111111111111111111111111111111");
	img_sums_free(s);
	buf_release(&b);
}

/* The line formats of the checksum files distributions publish (names and hashes made up). */
Test(image, sums_parses_debian_sha512sums_as_sha512)
{
	struct buf b = BUF_INIT;
	struct img_sums *s;
	const struct img_sums_entry *e;

	read_fixture("SHA512SUMS.debian", &b);
	s = parse_ok(buf_str(&b));
	cr_assert_eq(s->n, 3);
	e = img_sums_lookup(s, "debian-12-genericcloud-amd64.qcow2");
	cr_assert_not_null(e);
	cr_assert_eq(e->alg, CRYPTO_SHA512);
	cr_assert_not(e->binary);
	cr_assert_eq(strlen(e->hex), CRYPTO_SHA512_HEX_LEN);
	cr_assert_str_eq(e->hex, "1f2e3d4c5b6a798897a6b5c4d3e2f1011f2e3d4c5b6a798897a6b5c4d3e2f101"
				 "1f2e3d4c5b6a798897a6b5c4d3e2f1011f2e3d4c5b6a798897a6b5c4d3e2f101");
	img_sums_free(s);
	buf_release(&b);
}

Test(image, sums_parses_fedora_clear_signed_bsd_checksum)
{
	struct buf b = BUF_INIT;
	struct img_sums *s;
	const struct img_sums_entry *e;

	read_fixture("CHECKSUM.fedora", &b);
	cr_assert(img_sums_is_clearsigned(b.data, b.len));
	s = parse_ok(buf_str(&b));
	/* the armor header and the signature block are not entries */
	cr_assert_eq(s->n, 2);
	e = img_sums_lookup(s, "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2");
	cr_assert_not_null(e);
	cr_assert_eq(e->alg, CRYPTO_SHA256);
	cr_assert_str_eq(e->hex, "3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b");
	img_sums_free(s);
	buf_release(&b);
}

Test(image, sums_parses_rocky_bsd_checksum_with_size_comments)
{
	struct buf b = BUF_INIT;
	struct img_sums *s;

	read_fixture("CHECKSUM.rocky", &b);
	cr_assert_not(img_sums_is_clearsigned(b.data, b.len));
	s = parse_ok(buf_str(&b));
	cr_assert_eq(s->n, 2);
	cr_assert_str_eq(img_sums_lookup(s, "Rocky-9-GenericCloud-LVM-9.5-20241118.0.x86_64.qcow2")->hex,
			 "6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e");
	img_sums_free(s);
	buf_release(&b);
}

Test(image, sums_bsd_names_may_hold_parentheses_and_equals)
{
	static const char h[] = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
	char text[256];
	struct img_sums *s;

	snprintf(text, sizeof(text), "SHA256 (odd (1) = x.img) = %s\r\n", h);
	s = parse_ok(text);
	cr_assert_eq(s->n, 1);
	cr_assert_str_eq(s->entries[0].name, "odd (1) = x.img");
	img_sums_free(s);
}

Test(image, sums_lookup_prefers_sha256_when_both_are_listed)
{
	static const char h256[] =
		"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
	char text[512];
	struct img_sums *s;

	/* one mixed file: GNU SHA-512 first, then BSD SHA-256 of the same name */
	snprintf(text, sizeof(text), "%s%s  a.img\nSHA256 (a.img) = %s\n", h256, h256, h256);
	s = parse_ok(text);
	cr_assert_eq(s->n, 2);
	cr_assert_eq(img_sums_lookup(s, "a.img")->alg, CRYPTO_SHA256);
	img_sums_free(s);
}

/* Alpine's per-image <image>.sha512 sidecar: the hash alone names no file */
Test(image, sums_bare_hash_sidecar_stands_for_its_one_file)
{
	static const char h[] = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
	struct phx_err err = PHX_ERR_INIT;
	struct img_sums *s;
	char text[512];

	snprintf(text, sizeof(text), "%s%s\n", h, h);
	s = parse_ok(text);
	cr_assert_eq(img_sums_lookup(s, "nocloud_alpine-3.20.3-x86_64-bios-cloudinit-r0.qcow2")->alg,
		     CRYPTO_SHA512);
	img_sums_free(s);
	/* next to a named entry it could be anyone's */
	snprintf(text, sizeof(text), "%s\n%s  b.img\n", h, h);
	s = NULL;
	cr_assert_eq(img_sums_parse(text, strlen(text), "SUMS", &s, &err), -1);
	cr_assert_eq(err.code, PHX_E_VERIFY);
	cr_assert(strstr(err.msg, "SUMS:2: a hash without a file name"), "%s", err.msg);
	cr_assert_null(s);
}

Test(image, sums_refuses_text_outside_a_clear_signed_frame)
{
	static const char *const cases[] = {
		/* appended after the signature: would pass for signed if parsed */
		"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n# x\n"
		"-----BEGIN PGP SIGNATURE-----\nAAAA\n-----END PGP SIGNATURE-----\n"
		"SHA256 (evil.img) = a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90\n",
		/* put before the frame */
		"SHA256 (evil.img) = a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90\n"
		"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n# x\n"
		"-----BEGIN PGP SIGNATURE-----\nAAAA\n-----END PGP SIGNATURE-----\n",
		/* cut short */
		"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n# x\n",
	};
	static const char *const why[] = {"text after the end of the signature",
					  "must be the whole file", "ends before"};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct img_sums *s = NULL;

		cr_assert_eq(img_sums_parse(cases[i], strlen(cases[i]), "CHECKSUM", &s, &err), -1,
			     "case %zu", i);
		cr_assert_null(s);
		cr_assert_eq(err.code, PHX_E_VERIFY);
		cr_assert(strstr(err.msg, "CHECKSUM:") && strstr(err.msg, why[i]), "case %zu: %s", i,
			  err.msg);
	}
}

Test(image, sums_lookup_miss_returns_null)
{
	struct img_sums *s = parse_ok(
		"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90 *a.img\n");

	cr_assert_null(img_sums_lookup(s, "b.img"));
	cr_assert_null(img_sums_lookup(s, "a.im"));
	cr_assert_null(img_sums_lookup(s, "A.img"));
	img_sums_free(s);
}

Test(image, sums_empty_listing_parses_to_no_entries)
{
	struct img_sums *s = parse_ok("\n\n# nothing\n");

	cr_assert_eq(s->n, 0);
	cr_assert_null(img_sums_lookup(s, "a.img"));
	img_sums_free(s);
}

Test(image, sums_rejects_malformed_fixture_with_source_and_line_number)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_sums *s = (struct img_sums *)0x1;
	struct buf b = BUF_INIT;

	read_fixture("SHA256SUMS.malformed", &b);
	cr_assert_eq(img_sums_parse(b.data, b.len, "http://h/SHA256SUMS", &s, &err), -1);
	cr_assert_eq(err.code, PHX_E_VERIFY);
	cr_assert(strstr(err.msg, "http://h/SHA256SUMS:3: "), "%s", err.msg);
	cr_assert(strstr(err.msg, "64 hex digits"), "%s", err.msg);
	cr_assert(strstr(err.msg, "short-hash.img"), "%s", err.msg);
	cr_assert_eq(s, (struct img_sums *)0x1, "output must be untouched on failure");
	buf_release(&b);
}

/* Table: each bad line, the line number it sits on, and words the message must carry. */
Test(image, sums_rejects_each_malformed_line_kind)
{
	static const char h[] = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
	static const struct {
		const char *line;
		const char *why;
	} cases[] = {
		{"%s\n", "without a file name must be alone"}, /* hash only, not alone */
		{"%s  \n", "missing file name"},
		{"%s name.img\n", "expected 'HASH  NAME' or 'HASH *NAME'"}, /* one space */
		{"%s\tname.img\n", "64 hex digits"},
		{"%sa *name.img\n", "64 hex digits"}, /* 65 digits */
		{"g%s *name.img\n", "64 hex digits"},
		{"SHA256 (name.img) = %.60s\n", "64 hex digits"}, /* BSD, short */
		{"SHA512 (name.img) = %s\n", "128 hex digits"}, /* BSD, a SHA-256 hash */
		{"MD5 (name.img) = %.32s\n", "unsupported hash algorithm"},
		{"SHA256 (name.img) %s\n", "expected 'SHA256 (NAME) = HASH'"},
		{"SHA256 () = %s\n", "missing file name"},
		/* 127 digits: 128 would be SHA-512 */
		{"%sabcdef0123456789abcdef0123456789abcdef0123456789abcdef012345678  name.img\n",
		 "64 hex digits"},
		{"\\%s  na\\nme.img\n", "escaped file names"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct img_sums *s = NULL;
		char text[512], want[64];
		int n;

		/* two good lines first, so the bad one is line 3 */
		n = snprintf(text, sizeof(text), "%s *ok.img\n\n", h);
		snprintf(text + n, sizeof(text) - (size_t)n, cases[i].line, h);
		cr_assert_eq(img_sums_parse(text, strlen(text), "SUMS", &s, &err), -1, "case %zu",
			     i);
		cr_assert_null(s);
		cr_assert_eq(err.code, PHX_E_VERIFY);
		snprintf(want, sizeof(want), "SUMS:3: ");
		cr_assert(strstr(err.msg, want), "case %zu: %s", i, err.msg);
		cr_assert(strstr(err.msg, cases[i].why), "case %zu: %s", i, err.msg);
	}
}

Test(image, sums_rejects_same_name_with_two_hashes)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_sums *s = NULL;
	const char *text =
		"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90 *a.img\n"
		"b1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90 *./a.img\n";

	cr_assert_eq(img_sums_parse(text, strlen(text), "SUMS", &s, &err), -1);
	cr_assert_eq(err.code, PHX_E_VERIFY);
	cr_assert(strstr(err.msg, "SUMS:2: '") && strstr(err.msg, "a.img"), "%s", err.msg);
}

Test(image, sums_quotes_binary_garbage_safely)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_sums *s = NULL;
	const char text[] = "\x01\x1b[31mevil\n";

	cr_assert_eq(img_sums_parse(text, sizeof(text) - 1, "SUMS", &s, &err), -1);
	cr_assert(strstr(err.msg, "SUMS:1: "), "%s", err.msg);
	cr_assert(strstr(err.msg, "\\x01\\x1b"), "%s", err.msg);
	cr_assert_null(strchr(err.msg, '\x1b'));
}

Test(image, meta_round_trips_all_fields)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_meta m = IMG_META_INIT, r = IMG_META_INIT;
	char path[256];

	snprintf(path, sizeof(path), "%s/x.img.meta.json", dir);
	m.url = "http://127.0.0.1:1/x.img";
	m.etag = "\"abc-123\"";
	m.last_modified = "Tue, 01 Oct 2024 10:00:00 GMT";
	strcpy(m.sha256, "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90");
	m.size = 8589934592ULL; /* > 32 bits */
	m.fetched_at = 1727776800;
	m.sums_url = "http://127.0.0.1:1/SHA256SUMS";
	m.sums_etag = NULL; /* optional fields survive as absent */
	m.sums_last_modified = "Tue, 01 Oct 2024 09:00:00 GMT";
	cr_assert_eq(img_meta_write(path, &m, true, &err), 0, "%s", err.msg);
	cr_assert_eq(img_meta_read(path, &r, &err), 0, "%s", err.msg);
	cr_assert_str_eq(r.url, m.url);
	cr_assert_str_eq(r.etag, m.etag);
	cr_assert_str_eq(r.last_modified, m.last_modified);
	cr_assert_str_eq(r.sha256, m.sha256);
	cr_assert_eq(r.size, m.size);
	cr_assert_eq(r.fetched_at, m.fetched_at);
	cr_assert_str_eq(r.sums_url, m.sums_url);
	cr_assert_null(r.sums_etag);
	cr_assert_str_eq(r.sums_last_modified, m.sums_last_modified);
	img_meta_release(&r);
	cr_assert_null(r.url);
	img_meta_release(&r); /* idempotent */
	img_meta_release(NULL);
}

Test(image, meta_read_missing_is_notfound)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_meta r = IMG_META_INIT;
	char path[256];

	snprintf(path, sizeof(path), "%s/none.meta.json", dir);
	cr_assert_eq(img_meta_read(path, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_NOTFOUND);
	cr_assert(strstr(err.msg, path), "%s", err.msg);
}

Test(image, meta_read_rejects_corrupt_files_naming_path_and_field)
{
	static const struct {
		const char *json;
		const char *want;
	} cases[] = {
		{"{\"url\": \"u\", \"sha256\": \"a1b2\"", ":1:"}, /* truncated: file:line:col */
		{"[]", "expected a JSON object"},
		{"{\"sha256\": \"00\", \"size\": 1}", "$.url"},
		{"{\"url\": \"u\", \"sha256\": \"XYZ\", \"size\": 1}", "$.sha256"},
		{"{\"url\": \"u\", \"sha256\": "
		 "\"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90\", "
		 "\"size\": -1}",
		 "$.size"},
		{"{\"url\": 5, \"sha256\": \"a\", \"size\": 1}", "$.url"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		struct img_meta r = IMG_META_INIT;
		char path[256];

		snprintf(path, sizeof(path), "%s/bad%zu.json", dir, i);
		cr_assert_eq(
			fs_write_atomic(path, cases[i].json, strlen(cases[i].json), 0644, &err), 0);
		cr_assert_eq(img_meta_read(path, &r, &err), -1, "case %zu", i);
		cr_assert_eq(err.code, PHX_E_IO, "case %zu", i);
		cr_assert(strstr(err.msg, path), "case %zu: %s", i, err.msg);
		cr_assert(strstr(err.msg, cases[i].want), "case %zu: %s", i, err.msg);
		cr_assert_null(r.url, "output untouched");
	}
}

Test(image, name_from_url_takes_last_segment_without_query)
{
	static const struct {
		const char *url, *name;
	} ok[] = {
		{"https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
		 "noble-server-cloudimg-amd64.img"},
		{"http://127.0.0.1:8080/a/b.qcow2?token=x#frag", "b.qcow2"},
		{"http://h/x.img#y", "x.img"},
	};
	static const char *const bad[] = {"http://h/", "http://h", "http://h/dir/..",
					  "http://h/a/?q=1"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		char *name = NULL;

		cr_assert_eq(img_name_from_url(ok[i].url, &name, &err), 0, "%s", err.msg);
		cr_assert_str_eq(name, ok[i].name);
		free(name);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct phx_err err = PHX_ERR_INIT;
		char *name = NULL;

		cr_assert_eq(img_name_from_url(bad[i], &name, &err), -1, "%s", bad[i]);
		cr_assert_eq(err.code, PHX_E_INPUT);
		cr_assert(strstr(err.msg, bad[i]), "%s", err.msg);
		cr_assert_null(name);
	}
}

Test(image, cache_dir_follows_xdg_then_home)
{
	struct phx_err err = PHX_ERR_INIT;
	char *d = NULL;

	setenv("XDG_CACHE_HOME", "/x/cache", 1);
	cr_assert_eq(img_cache_dir_default(&d, &err), 0);
	cr_assert_str_eq(d, "/x/cache/phoenix/images");
	free(d);
	/* relative XDG values are invalid per the spec and ignored */
	setenv("XDG_CACHE_HOME", "rel/cache", 1);
	setenv("HOME", "/home/u", 1);
	cr_assert_eq(img_cache_dir_default(&d, &err), 0);
	if (geteuid() == 0)
		cr_assert_str_eq(d, "/var/cache/phoenix/images");
	else
		cr_assert_str_eq(d, "/home/u/.cache/phoenix/images");
	free(d);
}

Test(image, fetch_refuses_options_that_would_skip_verification)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_result r = IMG_RESULT_INIT;
	struct img_fetch_opts o = {.image_url = "http://127.0.0.1:9/x.img", .cache_dir = dir};

	cr_assert_eq(img_fetch(NULL, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "'http://127.0.0.1:9/x.img'"), "%s", err.msg);
	cr_assert_null(r.path);

	phx_err_clear(&err);
	o.sha256 = "abc";
	cr_assert_eq(img_fetch(NULL, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "'abc'"), "%s", err.msg);

	phx_err_clear(&err);
	o.image_url = "ftp://h/x.img";
	cr_assert_eq(img_fetch(NULL, &o, &r, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "'ftp://h/x.img'"), "%s", err.msg);
	img_result_release(&r);
	img_result_release(NULL);
}

Test(image, disk_info_reads_format_and_virtual_size_from_the_header)
{
	char qcow[] = "/tmp/phx-img-qXXXXXX", raw[] = "/tmp/phx-img-rXXXXXX";
	unsigned char h[64] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};
	struct phx_err err = PHX_ERR_INIT;
	const char *fmt = NULL;
	uint64_t size = 0;
	int fq = mkstemp(qcow), fr = mkstemp(raw);

	cr_assert(fq >= 0 && fr >= 0);
	h[24 + 3] = 0x01; /* 1 << 32: 4 GiB */
	cr_assert_eq(write(fq, h, sizeof(h)), (ssize_t)sizeof(h));
	cr_assert_eq(ftruncate(fr, 3 << 20), 0);
	close(fq);
	close(fr);
	cr_assert_eq(img_disk_info(qcow, &fmt, &size, &err), 0, "%s", err.msg);
	cr_assert_str_eq(fmt, "qcow2");
	cr_assert_eq(size, 4ULL << 30);
	cr_assert_eq(img_disk_info(raw, &fmt, &size, &err), 0, "%s", err.msg);
	cr_assert_str_eq(fmt, "raw");
	cr_assert_eq(size, 3ULL << 20);
	unlink(qcow);
	unlink(raw);
	cr_assert_eq(img_disk_info(raw, &fmt, &size, &err), -1);
	cr_assert_eq(err.code, PHX_E_IO);
	cr_assert(strstr(err.msg, raw), "%s", err.msg);
}

/* ---- the download writer (image_writer.c) ------------------------------------------- */

static unsigned char *pattern(size_t len)
{
	unsigned char *p = malloc(len);

	cr_assert_not_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 7 + i / 4093);
	return p;
}

static void put_in_odd_pieces(struct img_writer *w, const unsigned char *p, size_t len)
{
	struct phx_err err = PHX_ERR_INIT;

	for (size_t off = 0, n; off < len; off += n) {
		n = len - off < 7919 ? len - off : 7919;
		cr_assert_eq(img_writer_put(w, p + off, n, &err), 0, "%s", err.msg);
	}
}

static void assert_file_is(const char *path, const unsigned char *p, size_t len)
{
	struct phx_err err = PHX_ERR_INIT;
	struct buf got = BUF_INIT;

	cr_assert_eq(fs_read_file(path, &got, &err), 0, "%s", err.msg);
	cr_assert_eq(got.len, len);
	cr_assert(memcmp(got.data, p, len) == 0);
	buf_release(&got);
}

static void assert_hash_is(struct img_writer *w, const unsigned char *p, size_t len)
{
	struct phx_err err = PHX_ERR_INIT;
	char got[CRYPTO_SHA256_HEX_LEN + 1], want[CRYPTO_SHA256_HEX_LEN + 1];

	cr_assert_eq(crypto_sha256_final(w->h, got, &err), 0, "%s", err.msg);
	cr_assert_eq(crypto_sha256_buf(p, len, want, &err), 0, "%s", err.msg);
	cr_assert_str_eq(got, want);
}

Test(image, writer_writes_hashes_and_starts_writeback_behind_itself)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_writer w;
	const size_t len = 3 * IMG_WB_CHUNK + 12345;
	unsigned char *p = pattern(len);
	char path[512];
	uint64_t started = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/x.part", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(img_writer_init(&w, path, dir), 0);
	cr_assert_eq(img_writer_start(&w, fd, 0, &err), 0, "%s", err.msg);
	put_in_odd_pieces(&w, p, len);
	cr_assert_eq(img_writer_flush(&w, &err), 0, "%s", err.msg);
	/* the flusher runs on its own: give it a moment to catch up with the worker */
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&w.mu);
		started = w.wb_start;
		pthread_mutex_unlock(&w.mu);
		if (started + IMG_WB_CHUNK > len)
			break;
		usleep(10 * 1000);
	}
	cr_assert_gt(started + IMG_WB_CHUNK, len, "writeback started only up to %llu of %zu",
		     (unsigned long long)started, len);
	cr_assert_leq(started, len);
	cr_assert_eq(started % 4096, 0, "a partial page was started: %llu",
		     (unsigned long long)started);
	cr_assert_eq(img_writer_finish(&w, &err), 0, "%s", err.msg);
	assert_hash_is(&w, p, len);
	assert_file_is(path, p, len);
	img_writer_release(&w);
	close(fd);
	free(p);
}

Test(image, writer_hashes_a_kept_prefix_before_the_new_bytes)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_writer w;
	const size_t len = IMG_WB_CHUNK + 4097, keep = 1000003;
	unsigned char *p = pattern(len);
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/x.part", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, p, keep), (ssize_t)keep);
	cr_assert_eq(img_writer_init(&w, path, dir), 0);
	cr_assert_eq(img_writer_start(&w, fd, keep, &err), 0, "%s", err.msg);
	put_in_odd_pieces(&w, p + keep, len - keep);
	cr_assert_eq(img_writer_finish(&w, &err), 0, "%s", err.msg);
	assert_hash_is(&w, p, len);
	assert_file_is(path, p, len);
	img_writer_release(&w);
	close(fd);
	free(p);
}

Test(image, writer_restarted_on_an_emptied_file_hashes_only_the_new_bytes)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_writer w;
	const size_t len = 2 * IMG_WB_CHUNK;
	unsigned char *p = pattern(len);
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/x.part", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(img_writer_init(&w, path, dir), 0);
	cr_assert_eq(img_writer_start(&w, fd, 0, &err), 0, "%s", err.msg);
	put_in_odd_pieces(&w, p + 5, len - 5); /* the whole file of another version */
	/* what image.c does when the server restarts the body from zero */
	img_writer_stop(&w);
	cr_assert_eq(ftruncate(fd, 0), 0);
	cr_assert_eq(img_writer_start(&w, fd, 0, &err), 0, "%s", err.msg);
	put_in_odd_pieces(&w, p, len);
	cr_assert_eq(img_writer_finish(&w, &err), 0, "%s", err.msg);
	assert_hash_is(&w, p, len);
	assert_file_is(path, p, len);
	img_writer_release(&w);
	close(fd);
	free(p);
}

Test(image, writer_write_failure_names_the_part_file)
{
	struct phx_err err = PHX_ERR_INIT;
	struct img_writer w;
	const size_t len = IMG_WB_CHUNK;
	unsigned char *p = pattern(len);
	char path[512];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/x.part", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	fd = open(path, O_RDONLY); /* every write fails with EBADF */
	cr_assert_geq(fd, 0);
	cr_assert_eq(img_writer_init(&w, path, dir), 0);
	cr_assert_eq(img_writer_start(&w, fd, 0, &err), 0, "%s", err.msg);
	for (size_t off = 0; off < len && rc == 0; off += 65536)
		rc = img_writer_put(&w, p + off, 65536, &err);
	if (rc == 0)
		rc = img_writer_finish(&w, &err);
	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, PHX_E_IO);
	cr_assert(strstr(err.msg, path), "%s", err.msg);
	/* nothing more is taken after a failure (a consumer may still be inside a slot) */
	phx_err_clear(&err);
	cr_assert_eq(img_writer_put(&w, p, 16, &err), -1);
	cr_assert(strstr(err.msg, path), "the first failure again: %s", err.msg);
	img_writer_release(&w);
	close(fd);
	free(p);
}

/* ---- img_file_sha256: the customized image's hash kept beside it ---- */

static void write_file(const char *path, const char *text)
{
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(fs_write_atomic(path, text, strlen(text), 0644, &err), 0, "%s", err.msg);
}

static void read_text(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f, "%s", path);
	cr_assert_not_null(fgets(out, (int)len, f));
	fclose(f);
}

Test(image, file_sha256_is_computed_once_then_read_from_the_sidecar_of_the_same_file)
{
	static const char abc_sha[] =
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	static const char fake[] =
		"0000000000000000000000000000000000000000000000000000000000000000";
	struct phx_err err = PHX_ERR_INIT;
	char img[512], side[512], got[CRYPTO_SHA256_HEX_LEN + 1], line[256], forged[256];

	snprintf(img, sizeof(img), "%s/customized-k.qcow2", dir);
	snprintf(side, sizeof(side), "%s.sha256", img);
	write_file(img, "abc");
	cr_assert_eq(img_file_sha256(img, got, &err), 0, "%s", err.msg);
	cr_assert_str_eq(got, abc_sha);
	read_text(side, line, sizeof(line));
	cr_assert_eq(strncmp(line, abc_sha, 64), 0, "%s", line);
	cr_assert_eq(strncmp(line + 64, " 3 ", 3), 0, "the size follows the hash: %s", line);

	/* the sidecar is what is read: a forged hash with this file's identity is believed */
	snprintf(forged, sizeof(forged), "%s%s", fake, line + 64);
	write_file(side, forged);
	cr_assert_eq(img_file_sha256(img, got, &err), 0, "%s", err.msg);
	cr_assert_str_eq(got, fake);

	/* the file replaced (a --rebuild's rename: another inode and time) is hashed again */
	{
		char tmp[512];

		snprintf(tmp, sizeof(tmp), "%s/new", dir);
		write_file(tmp, "abd");
		cr_assert_eq(rename(tmp, img), 0);
	}
	cr_assert_eq(img_file_sha256(img, got, &err), 0, "%s", err.msg);
	cr_assert_str_eq(got, "a52d159f262b2c6ddb724a61840befc36eb30c88877a4030b65cbe86298449c9");
	read_text(side, line, sizeof(line));
	cr_assert_eq(strncmp(line, got, 64), 0, "the sidecar was rewritten: %s", line);

	/* a sidecar that is not one (empty, garbage) is replaced, not believed */
	write_file(side, "");
	cr_assert_eq(img_file_sha256(img, got, &err), 0, "%s", err.msg);
	cr_assert_str_eq(got, "a52d159f262b2c6ddb724a61840befc36eb30c88877a4030b65cbe86298449c9");

	/* a missing image is an error naming it */
	unlink(img);
	cr_assert_eq(img_file_sha256(img, got, &err), -1);
	cr_assert(strstr(err.msg, img), "%s", err.msg);
}
