#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact.h"
#include "crypto.h"

static char root[] = "/tmp/phx-art-XXXXXX";

static void setup(void)
{
	strcpy(root, "/tmp/phx-art-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
}

static void teardown(void)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	cr_assert_eq(system(cmd), 0);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

TestSuite(artifact, .init = setup, .fini = teardown);

Test(artifact, publish_read_back_republish_and_conflict)
{
	struct phx_err err = PHX_ERR_INIT;
	char image[256], sha[CRYPTO_SHA256_HEX_LEN + 1], *dir = NULL;
	struct art_image a = {0};
	bool changed = false;
	struct art_publish in = {root, "tpl",	   "tpl-20261202-001", image,
				 sha,  "record\n", "a\t1\tall\n"};

	snprintf(image, sizeof(image), "%s/src.qcow2", root);
	write_file(image, "pretend qcow2");
	cr_assert_eq(crypto_sha256_file(image, sha, &err), 0);
	cr_assert_eq(art_publish(&in, &dir, &changed, &err), 0, "%s", err.msg);
	cr_assert(changed);
	cr_assert(strstr(dir, "/tpl/tpl-20261202-001"), "%s", dir);
	cr_assert_eq(art_read(dir, &a, &err), 0, "%s", err.msg);
	cr_assert_str_eq(a.sha256, sha);
	cr_assert(strstr(a.path, "/tpl-20261202-001.qcow2"), "%s", a.path);
	art_image_release(&a);
	free(dir);

	cr_assert_eq(art_publish(&in, &dir, &changed, &err), 0, "%s", err.msg);
	cr_assert(!changed, "the same version again changes nothing");
	free(dir);

	write_file(image, "another image");
	cr_assert_eq(crypto_sha256_file(image, sha, &err), 0);
	cr_assert_eq(art_publish(&in, &dir, &changed, &err), -1);
	cr_assert_eq(err.code, PHX_E_CONFLICT);
	cr_assert(strstr(err.msg, "already published with another image"), "%s", err.msg);
}

Test(artifact, a_copy_that_does_not_match_the_record_is_not_published)
{
	struct phx_err err = PHX_ERR_INIT;
	char image[256], *dir = NULL, path[512];
	bool changed = false;
	struct art_publish in = {root,
				 "tpl",
				 "v1",
				 image,
				 "0000000000000000000000000000000000000000000000000000000000000000",
				 "r\n",
				 NULL};

	snprintf(image, sizeof(image), "%s/src.qcow2", root);
	write_file(image, "pretend qcow2");
	cr_assert_eq(art_publish(&in, &dir, &changed, &err), -1);
	cr_assert_eq(err.code, PHX_E_VERIFY, "%s", err.msg);
	snprintf(path, sizeof(path), "%s/tpl/v1", root);
	cr_assert(access(path, F_OK) != 0, "nothing is left behind");
}

Test(artifact, a_directory_that_is_no_artifact_or_is_damaged_is_refused)
{
	struct phx_err err = PHX_ERR_INIT;
	struct art_image a = {0};
	char path[512];

	cr_assert_eq(art_read(root, &a, &err), -1);
	cr_assert_eq(err.code, PHX_E_NOTFOUND);
	phx_err_clear(&err);
	snprintf(path, sizeof(path), "%s/SHA256SUMS", root);
	write_file(path, "not a sums line\n");
	cr_assert_eq(art_read(root, &a, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	phx_err_clear(&err);
	write_file(path,
		   "0000000000000000000000000000000000000000000000000000000000000000  ../x\n");
	cr_assert_eq(art_read(root, &a, &err), -1, "no path outside the directory");
	phx_err_clear(&err);
	write_file(path,
		   "0000000000000000000000000000000000000000000000000000000000000000  i.qcow2\n");
	snprintf(path, sizeof(path), "%s/i.qcow2", root);
	write_file(path, "bytes");
	cr_assert_eq(art_read(root, &a, &err), -1);
	cr_assert_eq(err.code, PHX_E_VERIFY);
	cr_assert(strstr(err.msg, "does not match its SHA256SUMS"), "%s", err.msg);
}
