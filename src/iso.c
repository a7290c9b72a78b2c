/* iso: the cidata seed ISO through libisofs (the only file that includes <libisofs.h>).
 * Determinism is the point: see iso.h for which knobs are pinned and why. */
#include "iso.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* we only consume libisofs' burn_source; libburn itself is neither needed nor linked */
#define LIBISOFS_WITHOUT_LIBBURN 1
/* libisofs.h declares a few `f()` functions without prototypes */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <libisofs.h>
#pragma GCC diagnostic pop

#define ISO_BLOCK 2048
/* ISO 9660 volume "creation/modification" text; equals ISO_FIXED_TIME, GMT. */
#define ISO_FIXED_UUID "2020010100000000"
#define ISO_APP_ID "PHOENIX ORCHESTRATOR"

/* libisofs keeps process-wide message state set up by iso_init(): initialize it exactly once
 * and never call iso_finish(), so concurrent deploy workers cannot tear it down under each
 * other. Written only inside pthread_once, read-only after. */
static pthread_once_t iso_lib_once = PTHREAD_ONCE_INIT;
static int iso_lib_rc;

static void iso_lib_init(void)
{
	char never[] = "NEVER", id[] = "phoenix";

	/* bit0: do not set up the locale from LC_*; our names are ASCII anyway */
	iso_lib_rc = iso_init_with_flag(1);
	/* nothing below main prints: no libisofs message may reach stderr or queue up */
	if (iso_lib_rc >= 0)
		iso_set_msgs_severities(never, never, id);
}

static int iso_fail(struct phx_err *err, int rc, const char *what)
{
	if (rc == (int)ISO_OUT_OF_MEM)
		return phx_err_set(err, PHX_E_NOMEM, "%s: out of memory", what);
	return phx_err_set(err, PHX_E_INTERNAL, "libisofs: %s: %s (0x%x)", what,
			   iso_error_to_msg(rc), (unsigned)rc);
}

static bool iso_name_is_safe(const char *s)
{
	if (!s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

static int iso_file_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct iso_file *const *)a)->name,
		      (*(const struct iso_file *const *)b)->name);
}

static void iso_node_pin(IsoNode *node, mode_t mode)
{
	iso_node_set_permissions(node, mode);
	iso_node_set_uid(node, 0);
	iso_node_set_gid(node, 0);
	iso_node_set_mtime(node, ISO_FIXED_TIME);
	iso_node_set_atime(node, ISO_FIXED_TIME);
	iso_node_set_ctime(node, ISO_FIXED_TIME);
}

static int iso_add_file(IsoImage *image, const struct iso_file *f, struct phx_err *err)
{
	/* the memory stream takes ownership of a malloc'd copy (it calls free() itself) */
	unsigned char *copy = malloc(f->len ? f->len : 1);
	IsoStream *stream = NULL;
	IsoFile *node = NULL;
	int rc;

	if (!copy)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (f->len)
		memcpy(copy, f->data, f->len);
	rc = iso_memory_stream_new(copy, f->len, &stream);
	if (rc < 0) {
		free(copy);
		return iso_fail(err, rc, f->name);
	}
	rc = iso_image_add_new_file(image, iso_image_get_root(image), f->name, stream, &node);
	if (rc < 0) {
		iso_stream_unref(stream);
		return iso_fail(err, rc, f->name);
	}
	iso_node_pin((IsoNode *)node, 0444);
	return 0;
}

static int iso_set_opts(IsoWriteOpts *o)
{
	char uuid[] = ISO_FIXED_UUID;
	int rc = 0;

	/* level 2: 31-character ISO 9660 names; readers use the Rock Ridge/Joliet names */
	if (rc >= 0)
		rc = iso_write_opts_set_iso_level(o, 2);
	/* keep the volume id lower-case `cidata` as genisoimage -V writes it (ECMA-119 d-chars
	 * would upper-case it); cloud-init and blkid look for that label */
	if (rc >= 0)
		rc = iso_write_opts_set_relaxed_vol_atts(o, 1);
	if (rc >= 0)
		rc = iso_write_opts_set_rockridge(o, 1);
	if (rc >= 0)
		rc = iso_write_opts_set_joliet(o, 1);
	if (rc >= 0)
		rc = iso_write_opts_set_aaip(o, 0);
	if (rc >= 0)
		rc = iso_write_opts_set_hardlinks(o, 0);
	if (rc >= 0)
		rc = iso_write_opts_set_record_md5(o, 0, 0);
	if (rc >= 0)
		rc = iso_write_opts_set_replace_mode(o, 2, 2, 2, 2);
	if (rc >= 0)
		rc = iso_write_opts_set_default_dir_mode(o, 0555);
	if (rc >= 0)
		rc = iso_write_opts_set_default_file_mode(o, 0444);
	if (rc >= 0)
		rc = iso_write_opts_set_default_uid(o, 0);
	if (rc >= 0)
		rc = iso_write_opts_set_default_gid(o, 0);
	/* 2: every node's timestamps become default_timestamp, in GMT so the TZ of the build
	 * host does not leak into the bytes */
	if (rc >= 0)
		rc = iso_write_opts_set_replace_timestamps(o, 2);
	if (rc >= 0)
		rc = iso_write_opts_set_default_timestamp(o, ISO_FIXED_TIME);
	if (rc >= 0)
		rc = iso_write_opts_set_always_gmt(o, 1);
	/* the uuid overrides the volume creation/modification times with fixed text */
	if (rc >= 0)
		rc = iso_write_opts_set_pvd_times(o, ISO_FIXED_TIME, ISO_FIXED_TIME, 0, 0, uuid);
	return rc;
}

static int iso_write_out(struct burn_source *bs, int fd, const char *out_path,
			 struct crypto_sha256 *h, struct phx_err *err)
{
	unsigned char block[ISO_BLOCK];

	for (;;) {
		int got = bs->read_xt(bs, block, ISO_BLOCK);
		size_t off = 0;

		if (got < 0)
			return phx_err_set(err, PHX_E_INTERNAL,
					   "libisofs: writing '%s': image generation failed",
					   out_path);
		if (got == 0)
			return 0;
		if (crypto_sha256_update(h, block, (size_t)got, err) < 0)
			return -1;
		while (off < (size_t)got) {
			ssize_t w = write(fd, block + off, (size_t)got - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return phx_err_set_errno(err, PHX_E_IO, errno, "write '%s'",
							 out_path);
			off += (size_t)w;
		}
	}
}

int iso_build_cidata(const struct iso_file *files, size_t n, const char *out_path,
		     char ret_sha256[CRYPTO_SHA256_HEX_LEN + 1], struct phx_err *err)
{
	const struct iso_file *sorted[ISO_MAX_FILES];
	IsoImage *image = NULL;
	IsoWriteOpts *opts = NULL;
	struct burn_source *bs = NULL;
	struct crypto_sha256 *h = NULL;
	char hex[CRYPTO_SHA256_HEX_LEN + 1];
	int fd = -1, rc, ret = -1;
	bool created = false; /* only then is out_path ours to remove on failure */

	if (n > ISO_MAX_FILES)
		return phx_err_set(err, PHX_E_INPUT, "cidata ISO: %zu files, at most %d", n,
				   ISO_MAX_FILES);
	if (n && !files)
		return phx_err_set(err, PHX_E_INTERNAL, "cidata ISO: %zu files but no array", n);
	for (size_t i = 0; i < n; i++) {
		if (!iso_name_is_safe(files[i].name))
			return phx_err_set(err, PHX_E_INPUT,
					   "cidata ISO: file name '%s': expected letters, digits, "
					   "'_', '.', '-'",
					   files[i].name ? files[i].name : "(none)");
		if (files[i].len && !files[i].data)
			return phx_err_set(err, PHX_E_INTERNAL, "cidata ISO: '%s' has no data",
					   files[i].name);
		sorted[i] = &files[i];
	}
	/* libisofs sorts directory records itself; sorting here also makes the order of
	 * inode numbers and file data independent of the caller's order */
	qsort(sorted, n, sizeof(sorted[0]), iso_file_cmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
			return phx_err_set(err, PHX_E_INPUT, "cidata ISO: file '%s' given twice",
					   sorted[i]->name);

	pthread_once(&iso_lib_once, iso_lib_init);
	if (iso_lib_rc < 0)
		return iso_fail(err, iso_lib_rc, "initialization");

	rc = iso_image_new(ISO_CIDATA_VOLUME_ID, &image);
	if (rc < 0) {
		iso_fail(err, rc, "new image");
		goto out;
	}
	iso_image_set_volume_id(image, ISO_CIDATA_VOLUME_ID);
	iso_image_set_application_id(image, ISO_APP_ID);
	iso_image_set_data_preparer_id(image, ISO_APP_ID);
	iso_image_set_publisher_id(image, "");
	iso_image_set_system_id(image, "LINUX");
	iso_node_pin((IsoNode *)iso_image_get_root(image), 0555);
	for (size_t i = 0; i < n; i++)
		if (iso_add_file(image, sorted[i], err) < 0)
			goto out;

	rc = iso_write_opts_new(&opts, 0);
	if (rc < 0) {
		iso_fail(err, rc, "write options");
		goto out;
	}
	rc = iso_set_opts(opts);
	if (rc < 0) {
		iso_fail(err, rc, "write options");
		goto out;
	}
	h = crypto_sha256_new(err);
	if (!h)
		goto out;
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "create '%s'", out_path);
		goto out;
	}
	created = true;
	rc = iso_image_create_burn_source(image, opts, &bs);
	if (rc < 0) {
		iso_fail(err, rc, "start writing");
		goto out;
	}
	if (iso_write_out(bs, fd, out_path, h, err) < 0)
		goto out;
	if (fsync(fd) < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "fsync '%s'", out_path);
		goto out;
	}
	rc = close(fd);
	fd = -1;
	if (rc < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "close '%s'", out_path);
		goto out;
	}
	if (crypto_sha256_final(h, hex, err) < 0)
		goto out;
	if (ret_sha256)
		memcpy(ret_sha256, hex, sizeof(hex));
	ret = 0;
out:
	if (bs) {
		/* cancels the writer thread if we stopped early, then frees it */
		if (ret < 0 && bs->version >= 1 && bs->cancel)
			bs->cancel(bs);
		bs->free_data(bs);
		free(bs);
	}
	if (fd >= 0)
		close(fd);
	if (ret < 0 && created)
		unlink(out_path);
	crypto_sha256_free(h);
	iso_write_opts_free(opts);
	if (image)
		iso_image_unref(image);
	return ret;
}

int iso_cidata_sha256(const char *path, char ret_sha256[CRYPTO_SHA256_HEX_LEN + 1],
		      struct phx_err *err)
{
	return crypto_sha256_file(path, ret_sha256, err);
}
