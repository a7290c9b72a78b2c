/* crypto: SHA-256 and SHA-512 (EVP), random bytes and secure wiping. Translates OpenSSL errors here. */
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

struct crypto_sha256 {
	EVP_MD_CTX *ctx;
};

struct crypto_hash {
	EVP_MD_CTX *ctx;
	enum crypto_alg alg;
};

static int crypto_fail(struct phx_err *err, const char *what)
{
	unsigned long e = ERR_get_error();
	char why[256] = "unknown OpenSSL error";

	if (e)
		ERR_error_string_n(e, why, sizeof(why));
	ERR_clear_error();
	return phx_err_set(err, PHX_E_INTERNAL, "%s: %s", what, why);
}

/* ---- one EVP digest context, shared by both hash types ----------------------------------- */

static EVP_MD_CTX *crypto_ctx_new(const EVP_MD *md, struct phx_err *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || EVP_DigestInit_ex(ctx, md, NULL) != 1) {
		crypto_fail(err, "hash init");
		EVP_MD_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static int crypto_ctx_update(EVP_MD_CTX *ctx, const void *data, size_t len, struct phx_err *err)
{
	if (EVP_DigestUpdate(ctx, data, len) != 1)
		return crypto_fail(err, "hash update");
	return 0;
}

static int crypto_ctx_final_hex(EVP_MD_CTX *ctx, unsigned int want, char *ret_hex,
				struct phx_err *err)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(ctx, md, &n) != 1 || n != want)
		return crypto_fail(err, "hash final");
	for (unsigned int i = 0; i < n; i++) {
		ret_hex[2 * i] = digits[md[i] >> 4];
		ret_hex[2 * i + 1] = digits[md[i] & 15];
	}
	ret_hex[2 * n] = '\0';
	return 0;
}

static int crypto_ctx_fd_prefix(EVP_MD_CTX *ctx, int fd, uint64_t len, struct phx_err *err)
{
	enum { CHUNK = 1 << 17 };
	unsigned char *chunk = malloc(CHUNK);
	uint64_t done = 0;

	if (!chunk)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	while (done < len) {
		size_t want = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		ssize_t n = pread(fd, chunk, want, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(chunk);
			if (n == 0)
				return phx_err_set(err, PHX_E_IO, "file shorter than %llu bytes",
						   (unsigned long long)len);
			return phx_err_set_errno(err, PHX_E_IO, errno, "read");
		}
		if (crypto_ctx_update(ctx, chunk, (size_t)n, err) < 0) {
			free(chunk);
			return -1;
		}
		done += (uint64_t)n;
	}
	free(chunk);
	return 0;
}

static int crypto_ctx_file(const EVP_MD *md, const char *path, char *ret_hex, struct phx_err *err)
{
	EVP_MD_CTX *ctx;
	off_t size;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "open '%s'", path);
	size = lseek(fd, 0, SEEK_END);
	ctx = crypto_ctx_new(md, err);
	if (size < 0)
		phx_err_set_errno(err, PHX_E_IO, errno, "seek '%s'", path);
	else if (ctx && crypto_ctx_fd_prefix(ctx, fd, (uint64_t)size, err) == 0 &&
		 crypto_ctx_final_hex(ctx, (unsigned int)EVP_MD_get_size(md), ret_hex, err) == 0)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	close(fd);
	if (rc < 0)
		phx_err_wrap(err, "hash '%s'", path);
	return rc;
}

/* ---- SHA-256 ---------------------------------------------------------------------------- */

struct crypto_sha256 *crypto_sha256_new(struct phx_err *err)
{
	struct crypto_sha256 *h = calloc(1, sizeof(*h));

	if (!h) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		return NULL;
	}
	h->ctx = crypto_ctx_new(EVP_sha256(), err);
	if (!h->ctx) {
		free(h);
		return NULL;
	}
	return h;
}

int crypto_sha256_update(struct crypto_sha256 *h, const void *data, size_t len, struct phx_err *err)
{
	return crypto_ctx_update(h->ctx, data, len, err);
}

int crypto_sha256_final(struct crypto_sha256 *h, char ret_hex[CRYPTO_SHA256_HEX_LEN + 1],
			struct phx_err *err)
{
	return crypto_ctx_final_hex(h->ctx, 32, ret_hex, err);
}

void crypto_sha256_free(struct crypto_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int crypto_sha256_fd_prefix(struct crypto_sha256 *h, int fd, uint64_t len, struct phx_err *err)
{
	return crypto_ctx_fd_prefix(h->ctx, fd, len, err);
}

int crypto_sha256_file(const char *path, char ret_hex[CRYPTO_SHA256_HEX_LEN + 1],
		       struct phx_err *err)
{
	return crypto_ctx_file(EVP_sha256(), path, ret_hex, err);
}

int crypto_sha256_buf(const void *data, size_t len, char ret_hex[CRYPTO_SHA256_HEX_LEN + 1],
		      struct phx_err *err)
{
	struct crypto_sha256 *h = crypto_sha256_new(err);
	int rc = -1;

	if (h && crypto_sha256_update(h, data, len, err) == 0 &&
	    crypto_sha256_final(h, ret_hex, err) == 0)
		rc = 0;
	crypto_sha256_free(h);
	return rc;
}

/* ---- a chosen algorithm ----------------------------------------------------------------- */

static const EVP_MD *crypto_alg_md(enum crypto_alg alg)
{
	return alg == CRYPTO_SHA512 ? EVP_sha512() : EVP_sha256();
}

const char *crypto_alg_name(enum crypto_alg alg)
{
	return alg == CRYPTO_SHA512 ? "sha512" : "sha256";
}

size_t crypto_alg_hex_len(enum crypto_alg alg)
{
	return alg == CRYPTO_SHA512 ? CRYPTO_SHA512_HEX_LEN : CRYPTO_SHA256_HEX_LEN;
}

struct crypto_hash *crypto_hash_new(enum crypto_alg alg, struct phx_err *err)
{
	struct crypto_hash *h = calloc(1, sizeof(*h));

	if (!h) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		return NULL;
	}
	h->alg = alg;
	h->ctx = crypto_ctx_new(crypto_alg_md(alg), err);
	if (!h->ctx) {
		free(h);
		return NULL;
	}
	return h;
}

int crypto_hash_update(struct crypto_hash *h, const void *data, size_t len, struct phx_err *err)
{
	return crypto_ctx_update(h->ctx, data, len, err);
}

int crypto_hash_final(struct crypto_hash *h, char ret_hex[CRYPTO_HEX_MAX + 1],
		      struct phx_err *err)
{
	return crypto_ctx_final_hex(h->ctx, (unsigned int)crypto_alg_hex_len(h->alg) / 2, ret_hex,
				    err);
}

void crypto_hash_free(struct crypto_hash *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int crypto_hash_fd_prefix(struct crypto_hash *h, int fd, uint64_t len, struct phx_err *err)
{
	return crypto_ctx_fd_prefix(h->ctx, fd, len, err);
}

int crypto_hash_file(enum crypto_alg alg, const char *path, char ret_hex[CRYPTO_HEX_MAX + 1],
		     struct phx_err *err)
{
	return crypto_ctx_file(crypto_alg_md(alg), path, ret_hex, err);
}

int crypto_random(void *out, size_t len, struct phx_err *err)
{
	if (RAND_bytes(out, (int)len) != 1)
		return crypto_fail(err, "random bytes");
	return 0;
}

void crypto_cleanse(void *p, size_t len)
{
	if (p)
		OPENSSL_cleanse(p, len);
}
