/* iso: builds the small NoCloud seed ISO (volume id `cidata`, ISO 9660 + Rock Ridge + Joliet)
 * from in-memory files, with libisofs. The only includer of <libisofs.h>; libisofs errors
 * and messages are translated here and never printed.
 *
 * Output is byte-for-byte deterministic for the same files (in any order): every timestamp
 * (volume descriptors, directory records, Rock Ridge) is fixed to ISO_FIXED_TIME, the volume
 * "uuid" is fixed, owners/modes are normalized, and no MD5/checksum or random padding is
 * recorded. That is what lets the caller name the upload by its content hash and skip
 * re-uploading an unchanged seed.
 *
 * Does not own: naming the ISO on the storage (`phoenix-ci-<vmid>-<hash12>.iso` is cmd_deploy's
 * job), uploading it, or rendering its content (cloudinit.h). Safe to call from several
 * threads at once (libisofs is initialized once per process). */
#ifndef PHX_ISO_H
#define PHX_ISO_H

#include <stddef.h>
#include <time.h>

#include "crypto.h"
#include "err.h"

#define ISO_CIDATA_VOLUME_ID "cidata"
/* 2020-01-01T00:00:00Z: any fixed instant works; this one is recognisably artificial. */
#define ISO_FIXED_TIME ((time_t)1577836800)
/* At most this many files in a seed (NoCloud uses 3-4). */
#define ISO_MAX_FILES 16

/* One file in the root directory. All borrowed for the duration of the call. */
struct iso_file {
	const char *name; /* [A-Za-z0-9._-]+, e.g. "user-data"; unique */
	const void *data;
	size_t len;
};

/* Writes the ISO to out_path (created or truncated, mode 0644; write it to a temp path and
 * rename if readers may look). Files are sorted by name, so argument order does not matter.
 * If ret_sha256 is not NULL it receives the SHA-256 (lower-case hex) of the written image.
 * Errors: PHX_E_INPUT (bad/duplicate name, too many files), PHX_E_IO (naming out_path),
 * PHX_E_NOMEM, PHX_E_INTERNAL (libisofs, with its message). Input errors leave out_path
 * untouched; a later failure removes the partly written file. */
int iso_build_cidata(const struct iso_file *files, size_t n, const char *out_path,
		     char ret_sha256[CRYPTO_SHA256_HEX_LEN + 1], struct phx_err *err);

/* SHA-256 of an ISO file on disk (the same value iso_build_cidata reports). */
int iso_cidata_sha256(const char *path, char ret_sha256[CRYPTO_SHA256_HEX_LEN + 1],
		      struct phx_err *err);

#endif
