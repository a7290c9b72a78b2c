/* artifact: a template version published to a directory (a local path or a mounted share) by
 * --publish, so other clusters can be provisioned from it without downloading or customizing
 * again ("build once, provision to several clusters"). One version is one directory:
 *
 *   <root>/<template>/<version>/<version>.qcow2            the customized image
 *                               <version>.qcow2.packages   its package list (pkglist.h)
 *                               <version>.record           the build record (record.h)
 *                               SHA256SUMS                 "<sha256>  <version>.qcow2"
 *
 * written under a temporary name and renamed into place, so a reader never sees half of one.
 * Local files only; no server. */
#ifndef PHX_ARTIFACT_H
#define PHX_ARTIFACT_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"

struct art_image {
	char *path; /* the image inside the version directory; owned: art_image_release() */
	char sha256[CRYPTO_SHA256_HEX_LEN + 1];
	uint64_t size;
};

/* Reads a version directory and verifies its image against its SHA256SUMS (the whole file is
 * hashed). PHX_E_NOTFOUND / PHX_E_INPUT for a directory that is not an artifact,
 * PHX_E_VERIFY when the image does not match, naming both hashes. */
int art_read(const char *dir, struct art_image *ret, struct phx_err *err);
void art_image_release(struct art_image *a);

struct art_publish {
	const char *root, *template_name, *version; /* where: root/template/version */
	const char *image;			    /* the customized image to copy */
	const char *image_sha256;		    /* what it must hash to (the record's) */
	const char *record;			    /* build record text */
	const char *packages;			    /* package list text, or NULL */
};

/* Publishes one version. An existing version directory with the same SHA256SUMS is left as it
 * is (*ret_changed false); with another, PHX_E_CONFLICT. The copy is hashed and must match
 * image_sha256 (PHX_E_VERIFY otherwise; nothing is left behind). *ret_dir: the version
 * directory (caller frees). */
int art_publish(const struct art_publish *in, char **ret_dir, bool *ret_changed,
		struct phx_err *err);

#endif
