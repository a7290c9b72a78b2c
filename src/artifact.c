/* artifact: publishing template versions to a directory and reading them back (artifact.h). */
#include "artifact.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"

void art_image_release(struct art_image *a)
{
	if (a) {
		free(a->path);
		a->path = NULL;
	}
}

/* The one line of an artifact's SHA256SUMS: "<64 hex>  <file>" with a plain file name. */
static int art_parse_sums(const char *dir, const char *text, char *ret_sha, char *ret_file,
			  size_t file_len, struct phx_err *err)
{
	const char *name = text + CRYPTO_SHA256_HEX_LEN + 2;
	size_t len;

	if (strspn(text, "0123456789abcdef") != CRYPTO_SHA256_HEX_LEN ||
	    strncmp(text + CRYPTO_SHA256_HEX_LEN, "  ", 2))
		goto bad;
	len = strcspn(name, "\n");
	if (!len || len >= file_len || memchr(name, '/', len) || name[0] == '.' ||
	    (name[len] == '\n' && name[len + 1]))
		goto bad;
	memcpy(ret_sha, text, CRYPTO_SHA256_HEX_LEN);
	ret_sha[CRYPTO_SHA256_HEX_LEN] = '\0';
	memcpy(ret_file, name, len);
	ret_file[len] = '\0';
	return 0;
bad:
	return phx_err_set(err, PHX_E_INPUT,
			   "'%s/SHA256SUMS': expected one line '<sha256>  <image file>' as "
			   "--publish writes it",
			   dir);
}

int art_read(const char *dir, struct art_image *ret, struct phx_err *err)
{
	struct buf b = BUF_INIT;
	char sums[4096], file[256], want[CRYPTO_SHA256_HEX_LEN + 1], got[CRYPTO_SHA256_HEX_LEN + 1];
	char *path = NULL;
	uint64_t size;
	int rc = -1;

	snprintf(sums, sizeof(sums), "%s/SHA256SUMS", dir);
	if (!fs_exists(sums))
		return phx_err_set(err, PHX_E_NOTFOUND,
				   "'%s' is not a published artifact (no SHA256SUMS): give a "
				   "version directory --publish wrote, DIR/<template>/<version>",
				   dir);
	buf_init(&b, 64 * 1024);
	if (fs_read_file(sums, &b, err) < 0 ||
	    art_parse_sums(dir, b.data ? b.data : "", want, file, sizeof(file), err) < 0)
		goto out;
	if (asprintf(&path, "%s/%s", dir, file) < 0) {
		path = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	if (fs_file_size(path, &size, err) < 0 || crypto_sha256_file(path, got, err) < 0)
		goto out;
	if (strcmp(got, want)) {
		phx_err_set(err, PHX_E_VERIFY,
			    "artifact image '%s' does not match its SHA256SUMS (expected %s, got "
			    "%s): not used",
			    path, want, got);
		goto out;
	}
	ret->path = path;
	path = NULL;
	memcpy(ret->sha256, got, sizeof(ret->sha256));
	ret->size = size;
	rc = 0;
out:
	buf_release(&b);
	free(path);
	return rc;
}

/* Writes `text` to dir/name and syncs it. */
static int art_write_file(const char *dir, const char *name, const char *text, struct phx_err *err)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return fs_write_atomic(path, text, strlen(text), 0644, err);
}

int art_publish(const struct art_publish *in, char **ret_dir, bool *ret_changed,
		struct phx_err *err)
{
	char parent[4096], tmp[4096], image[4096], name[512], got[CRYPTO_SHA256_HEX_LEN + 1],
		*final = NULL, *sums = NULL;
	struct art_image existing = {0};
	int rc = -1;

	snprintf(parent, sizeof(parent), "%s/%s", in->root, in->template_name);
	if (asprintf(&final, "%s/%s", parent, in->version) < 0)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (fs_exists(final)) {
		if (art_read(final, &existing, err) < 0)
			goto out;
		if (strcmp(existing.sha256, in->image_sha256)) {
			phx_err_set(err, PHX_E_CONFLICT,
				    "'%s' is already published with another image (%s, this "
				    "version's is %s): remove it first",
				    final, existing.sha256, in->image_sha256);
			goto out;
		}
		*ret_dir = final;
		final = NULL;
		*ret_changed = false;
		rc = 0;
		goto out;
	}
	if (fs_mkdir_p(parent, 0755, err) < 0)
		goto out;
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp-XXXXXX", parent, in->version);
	if (!mkdtemp(tmp)) {
		phx_err_set_errno(err, PHX_E_IO, errno, "create '%s'", tmp);
		goto out;
	}
	chmod(tmp, 0755);
	snprintf(name, sizeof(name), "%s.qcow2", in->version);
	snprintf(image, sizeof(image), "%s/%s", tmp, name);
	if (fs_copy_file(in->image, image, err) < 0 || crypto_sha256_file(image, got, err) < 0)
		goto fail;
	if (strcmp(got, in->image_sha256)) {
		phx_err_set(err, PHX_E_VERIFY,
			    "the cached image '%s' hashes to %s, the build record says %s: not "
			    "published",
			    in->image, got, in->image_sha256);
		goto fail;
	}
	if (asprintf(&sums, "%s  %s\n", got, name) < 0) {
		sums = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto fail;
	}
	snprintf(name, sizeof(name), "%s.qcow2.packages", in->version);
	if (in->packages && art_write_file(tmp, name, in->packages, err) < 0)
		goto fail;
	snprintf(name, sizeof(name), "%s.record", in->version);
	if (art_write_file(tmp, name, in->record, err) < 0 ||
	    art_write_file(tmp, "SHA256SUMS", sums, err) < 0 || fs_fsync_dir(tmp, err) < 0)
		goto fail;
	{
		/* the copy itself: fs_copy_file does not sync it */
		int fd = open(image, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || fsync(fd) < 0) {
			phx_err_set_errno(err, PHX_E_IO, errno, "sync '%s'", image);
			if (fd >= 0)
				close(fd);
			goto fail;
		}
		close(fd);
	}
	if (rename(tmp, final) < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "rename '%s' to '%s'", tmp, final);
		goto fail;
	}
	if (fs_fsync_dir(parent, err) < 0)
		goto out;
	*ret_dir = final;
	final = NULL;
	*ret_changed = true;
	rc = 0;
	goto out;
fail:
	fs_remove_tree(tmp, NULL);
out:
	art_image_release(&existing);
	free(sums);
	free(final);
	return rc;
}
