/* image: the cloud-image cache. Parses SHA256SUMS files, downloads an image into the cache
 * with SHA-256 computed while streaming, resumes interrupted transfers (Range + If-Range),
 * revalidates cheaply (conditional GET of the sums file) and never hands out a file whose hash
 * was not verified. Does not customize or upload images (customize.h, pve.h do) and does not
 * talk libcurl directly (http.h is its door to the network).
 *
 * Cache layout (all under the cache directory):
 *   <sha256>/<name>      verified image; named by hash so a changed upstream never overwrites
 *                        the version a template was built from (old versions stay;
 *                        NEEDSWORK: nothing removes them yet)
 *   <name>.meta.json     what we last fetched for <name>: url, etag, last_modified, sha256,
 *                        (sha512 when the checksum file gave that), size, fetched_at, and
 *                        url/etag/last_modified of the checksum file and its signature
 *   <name>.sums          the checksum file as last fetched, and <name>.sums.sig its detached
 *                        signature: a conditional GET answered 304 re-reads (and re-verifies,
 *                        against today's keyring) these copies, so an unchanged upstream costs
 *                        no body byte
 *   <name>.part          download in progress (never used as an image)
 *   <name>.part.meta     JSON: url, etag, last_modified and expected sha256 of the .part, so
 *                        a resume sends If-Range and a changed upstream restarts from zero */
#ifndef PHX_IMAGE_H
#define PHX_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"

struct http_client;

/* ---- checksum files ------------------------------------------------------------------ */

struct img_sums_entry {
	enum crypto_alg alg;	      /* SHA-256 or SHA-512, from the line's form */
	char hex[CRYPTO_HEX_MAX + 1]; /* lower-case hex, crypto_alg_hex_len(alg) digits */
	char *name;		      /* owned by the img_sums */
	bool binary;		      /* listed as "HASH *name" */
	bool bare;		      /* a hash alone on its line; name is "" */
};

struct img_sums {
	struct img_sums_entry *entries; /* owned; n entries in file order */
	size_t n;
};

/* Parses a checksum listing, each line in whichever form it has: GNU "HASH *name" (binary)
 * or "HASH  name" (text) with 64 (SHA-256) or 128 (SHA-512) hex digits, or BSD tagged
 * "SHA256 (name) = HASH" / "SHA512 (name) = HASH"; or a sidecar whose one line is a bare
 * hash (then it is the only entry, and img_sums_lookup gives it for any name). Blank lines and '#' comments are
 * skipped; CRLF is accepted; hex may be upper case. An OpenPGP clear-signed frame around
 * the listing is taken apart (armor headers, dash-escapes, the signature block), without
 * judging the signature (pgp_verify does); text outside the frame is an error, so unsigned
 * lines cannot pass for signed ones. A malformed line fails the whole parse with
 * PHX_E_VERIFY and "SOURCE:LINE: why" (a sums file we cannot read is a file we cannot
 * verify against). `source_name` (borrowed) is used only in messages, e.g. the URL. On
 * success *ret is a new object (caller owns; free with img_sums_free()); on failure *ret is
 * untouched. */
int img_sums_parse(const char *text, size_t len, const char *source_name, struct img_sums **ret,
		   struct phx_err *err);
/* True when `text` is an OpenPGP clear-signed message (leading blank lines aside). */
bool img_sums_is_clearsigned(const char *text, size_t len);
/* The entry listed for `filename` (a leading "./" on either side is ignored), or NULL; the
 * SHA-256 one when both algorithms list it. Borrowed from `sums`. */
const struct img_sums_entry *img_sums_lookup(const struct img_sums *sums, const char *filename);
void img_sums_free(struct img_sums *sums);

/* ---- cache metadata ------------------------------------------------------------------ */

struct img_meta {
	char *url;	     /* image URL; owned */
	char *etag;	     /* owned; NULL when the server sent none */
	char *last_modified; /* owned; HTTP date as sent by the server; NULL when none */
	char sha256[CRYPTO_SHA256_HEX_LEN + 1];
	char sha512[CRYPTO_SHA512_HEX_LEN + 1]; /* "" unless the checksum file listed SHA-512 */
	uint64_t size;
	int64_t fetched_at;	  /* unix seconds */
	char *sums_url;		  /* owned; NULL when the hash came from configuration */
	char *sums_etag;	  /* owned; may be NULL */
	char *sums_last_modified; /* owned; may be NULL */
	char *sig_url;		  /* owned; NULL when the checksum file is not verified */
	char *sig_etag;		  /* owned; may be NULL */
	char *sig_last_modified;  /* owned; may be NULL */
};

#define IMG_META_INIT {0}

/* Reads a metadata file written by img_meta_write(); sha256 may be missing only when sha512
 * is there (a .part.meta of a download verified by SHA-512). On success fills *ret (caller owns;
 * release with img_meta_release()); errors name the file (jansson errors as file:line:col).
 * A missing file is PHX_E_NOTFOUND so callers can tell "never fetched" from "corrupt". */
int img_meta_read(const char *path, struct img_meta *ret, struct phx_err *err);
/* Writes `m` as JSON to `path` atomically (temp file, rename); `durable` also syncs the file
 * and its directory (fs_write_atomic vs fs_write_atomic_lazy). */
int img_meta_write(const char *path, const struct img_meta *m, bool durable, struct phx_err *err);
/* Frees the strings; the struct is left as IMG_META_INIT. Accepts NULL. */
void img_meta_release(struct img_meta *m);

/* ---- cache directory and names ------------------------------------------------------- */

/* The default cache directory: $XDG_CACHE_HOME/phoenix/images, else $HOME/.cache/phoenix/
 * images, else (root, or no HOME) /var/cache/phoenix/images. When running as root without
 * XDG_CACHE_HOME the system location wins. Caller owns *ret; free with free(). */
int img_cache_dir_default(char **ret, struct phx_err *err);

/* The file name an image URL is cached under: the last path segment, without query or
 * fragment. Fails with PHX_E_INPUT naming the URL when that is empty, "." or "..". Caller
 * owns *ret; free with free(). */
int img_name_from_url(const char *url, char **ret, struct phx_err *err);

/* The sha256 of a file in the cache (a customized image): read from PATH.sha256 when that was
 * written for this very file (same inode, size and modification time), else computed and kept
 * there for the next call, so a rerun or each node of a cluster does not read the whole image
 * again. A file rewritten in place or replaced since no longer matches its sidecar and is
 * hashed anew. */
int img_file_sha256(const char *path, char ret[CRYPTO_SHA256_HEX_LEN + 1], struct phx_err *err);

/* ---- fetch --------------------------------------------------------------------------- */

struct img_fetch_opts {
	const char *image_url;	  /* required; http:// or https:// */
	const char *checksum_url; /* checksum file listing the image's file name; optional */
	const char *sha256;	  /* explicit expected hash (64 hex); wins over checksum_url */
	/* The checksum file's OpenPGP signature: a detached one, or checksum_url itself when
	 * that is clear-signed. With keyring (a file of trusted public keys), both or neither;
	 * then the checksum file is used only when a key of the keyring signed it. */
	const char *signature_url;
	const char *keyring;
	const char *cache_dir;	  /* NULL: img_cache_dir_default() */
	bool progress;		  /* progress bar on stderr when log_is_tty() */
	bool verify_cached;	  /* re-hash a cached file before trusting it (slow, paranoid) */
	unsigned retries;	  /* resumes after a dropped transfer; 0: the default, 3 */
};
/* All strings are borrowed for the duration of the call. One of checksum_url and sha256 is
 * required: an unverified image is never used. */

struct img_result {
	char *path; /* the verified cached image; owned, release with img_result_release() */
	char sha256[CRYPTO_SHA256_HEX_LEN + 1];
	uint64_t size;
	/* Image body bytes received by this call: 0 when the cached copy was current. */
	uint64_t downloaded;
	/* True when the sha256 differs from the version recorded for this name before the call,
	 * or no version was recorded (first fetch). */
	bool changed;
	char *previous_path; /* the previous version if changed and still cached; owned; or NULL */
};

#define IMG_RESULT_INIT {0}

/* Makes sure the cache holds the verified image and returns where it is.
 * 1. expected hash: opts->sha256, else the checksum file's entry for the image's file name,
 *    fetched conditionally (If-None-Match / If-Modified-Since from <name>.meta.json), and
 *    with signature_url its signature too; the signature is verified (pgp_verify) and only
 *    the signed text is parsed, all before the first request for the image. An entry may be
 *    SHA-512: the download then hashes with both (SHA-256 stays the image's identity);
 * 2. a cached <sha256>/<name> is a hit when <name>.meta.json records that hash and its size
 *    (else, or with verify_cached, it is re-hashed first): no image byte is requested;
 * 3. else HEAD (size, validators), then download to <name>.part (resuming an existing one,
 *    re-hashing its prefix), with a free-space check when the size is known, retrying a
 *    dropped transfer by resuming; a server that answers 200 to a Range request restarts
 *    the file from zero. A helper thread writes and hashes each received buffer while the
 *    next one arrives, so hashing overlaps the transfer, and another starts writeback of
 *    the written part, so the disk writes while the rest arrives; memory use is constant
 *    (two 256 KiB buffers);
 * 4. fsync, compare hashes, rename into place only on a match. A mismatch deletes the .part
 *    and fails with PHX_E_VERIFY naming the URL and both hashes.
 * Progress: a bar on stderr (bytes, rate, ETA) when opts->progress and log_is_tty(); one
 * log_info line per completed download either way.
 * Errors: PHX_E_INPUT (bad options), PHX_E_NOTFOUND (404, or no sums entry for the name),
 * PHX_E_VERIFY (hash mismatch, malformed sums file, a signature refused), PHX_E_NET (transport, other HTTP
 * statuses), PHX_E_IO (cache; a full disk names the cache directory and removes the .part),
 * PHX_E_CONFLICT (another process is downloading the same name into the same cache).
 * err->http_status is set when an HTTP status caused the failure. A dropped transfer that
 * exhausts its retries keeps the .part for the next run. On success fills *ret (caller owns,
 * release with img_result_release()); on failure *ret is untouched. `c` is borrowed and used
 * from the calling thread only. */
int img_fetch(struct http_client *c, const struct img_fetch_opts *opts, struct img_result *ret,
	      struct phx_err *err);
void img_result_release(struct img_result *r);

/* The format of a disk image file ("qcow2", "vmdk" or "raw": anything without a known
 * header) and its virtual size, the size its disk has right after an import. The format
 * names the import upload, since pve-storage probes an import volume as the format its
 * extension says (NOTES.md §15). */
int img_disk_info(const char *path, const char **ret_format, uint64_t *ret_size,
		  struct phx_err *err);

#endif
