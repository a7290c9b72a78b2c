/* crypto: the one door to OpenSSL's libcrypto for hashing, randomness and wiping memory.
 * (TLS pinning lives in http_tls.c, the other OpenSSL door.) */
#ifndef PHX_CRYPTO_H
#define PHX_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CRYPTO_SHA256_HEX_LEN 64

struct crypto_sha256;

/* Caller owns; free with crypto_sha256_free(). NULL on failure (err filled). */
struct crypto_sha256 *crypto_sha256_new(struct phx_err *err);
int crypto_sha256_update(struct crypto_sha256 *h, const void *data, size_t len,
			 struct phx_err *err);
/* Writes 64 lower-case hex digits and a NUL to ret_hex. The context can't be updated after. */
int crypto_sha256_final(struct crypto_sha256 *h, char ret_hex[CRYPTO_SHA256_HEX_LEN + 1],
			struct phx_err *err);
void crypto_sha256_free(struct crypto_sha256 *h);

/* Hashes `len` bytes of a whole file (streamed, constant memory). */
int crypto_sha256_file(const char *path, char ret_hex[CRYPTO_SHA256_HEX_LEN + 1],
		       struct phx_err *err);
/* Feeds the first `len` bytes of the open fd (from offset 0) into h; used to resume. */
int crypto_sha256_fd_prefix(struct crypto_sha256 *h, int fd, uint64_t len, struct phx_err *err);
int crypto_sha256_buf(const void *data, size_t len, char ret_hex[CRYPTO_SHA256_HEX_LEN + 1],
		      struct phx_err *err);

/* A hash of a chosen algorithm, for checksum files that list SHA-512 (Debian's SHA512SUMS)
 * next to the SHA-256 ones. SHA-256 stays the image's identity (crypto_sha256_*); this is
 * the second hash a download computes when its checksum file gives another algorithm. */
enum crypto_alg {
	CRYPTO_SHA256,
	CRYPTO_SHA512,
};

#define CRYPTO_SHA512_HEX_LEN 128
#define CRYPTO_HEX_MAX CRYPTO_SHA512_HEX_LEN

struct crypto_hash;

/* "sha256" or "sha512". */
const char *crypto_alg_name(enum crypto_alg alg);
/* Hex digits of a digest of `alg`: 64 or 128. */
size_t crypto_alg_hex_len(enum crypto_alg alg);
/* Caller owns; free with crypto_hash_free(). NULL on failure (err filled). */
struct crypto_hash *crypto_hash_new(enum crypto_alg alg, struct phx_err *err);
int crypto_hash_update(struct crypto_hash *h, const void *data, size_t len, struct phx_err *err);
/* Writes crypto_alg_hex_len() lower-case hex digits and a NUL to ret_hex. */
int crypto_hash_final(struct crypto_hash *h, char ret_hex[CRYPTO_HEX_MAX + 1],
		      struct phx_err *err);
void crypto_hash_free(struct crypto_hash *h);
/* Feeds the first `len` bytes of the open fd (from offset 0) into h; used to resume. */
int crypto_hash_fd_prefix(struct crypto_hash *h, int fd, uint64_t len, struct phx_err *err);
/* Hashes a whole file (streamed, constant memory). */
int crypto_hash_file(enum crypto_alg alg, const char *path, char ret_hex[CRYPTO_HEX_MAX + 1],
		     struct phx_err *err);

int crypto_random(void *out, size_t len, struct phx_err *err);
void crypto_cleanse(void *p, size_t len);

#endif
