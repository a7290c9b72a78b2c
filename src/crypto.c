/* crypto: SHA-256 (EVP), random bytes and secure wiping. Translates OpenSSL errors here. */
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

static int crypto_fail(struct phx_err *err, const char *what)
{
	unsigned long e = ERR_get_error();
	char why[256] = "unknown OpenSSL error";

	if (e)
		ERR_error_string_n(e, why, sizeof(why));
	ERR_clear_error();
	return phx_err_set(err, PHX_E_INTERNAL, "%s: %s", what, why);
}

struct crypto_sha256 *crypto_sha256_new(struct phx_err *err)
{
	struct crypto_sha256 *h = calloc(1, sizeof(*h));

	if (!h) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		return NULL;
	}
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		crypto_fail(err, "sha256 init");
		crypto_sha256_free(h);
		return NULL;
	}
	return h;
}

int crypto_sha256_update(struct crypto_sha256 *h, const void *data, size_t len, struct phx_err *err)
{
	if (EVP_DigestUpdate(h->ctx, data, len) != 1)
		return crypto_fail(err, "sha256 update");
	return 0;
}

int crypto_sha256_final(struct crypto_sha256 *h, char ret_hex[CRYPTO_SHA256_HEX_LEN + 1],
			struct phx_err *err)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != 32)
		return crypto_fail(err, "sha256 final");
	for (unsigned int i = 0; i < n; i++) {
		ret_hex[2 * i] = digits[md[i] >> 4];
		ret_hex[2 * i + 1] = digits[md[i] & 15];
	}
	ret_hex[2 * n] = '\0';
	return 0;
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
		if (crypto_sha256_update(h, chunk, (size_t)n, err) < 0) {
			free(chunk);
			return -1;
		}
		done += (uint64_t)n;
	}
	free(chunk);
	return 0;
}

int crypto_sha256_file(const char *path, char ret_hex[CRYPTO_SHA256_HEX_LEN + 1],
		       struct phx_err *err)
{
	struct crypto_sha256 *h;
	off_t size;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "open '%s'", path);
	size = lseek(fd, 0, SEEK_END);
	h = crypto_sha256_new(err);
	if (size < 0)
		phx_err_set_errno(err, PHX_E_IO, errno, "seek '%s'", path);
	else if (h && crypto_sha256_fd_prefix(h, fd, (uint64_t)size, err) == 0 &&
		 crypto_sha256_final(h, ret_hex, err) == 0)
		rc = 0;
	crypto_sha256_free(h);
	close(fd);
	if (rc < 0)
		phx_err_wrap(err, "hash '%s'", path);
	return rc;
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
