/* http_tls: SHA-256 certificate pinning for http.c, the second (and last) door to OpenSSL
 * besides crypto.c. A Proxmox node ships a self-signed certificate; instead of turning
 * verification off, the user pins the fingerprint the GUI shows. The OpenSSL certificate
 * verify callback then compares the leaf certificate's SHA-256 with the pin, so a mismatch
 * aborts the handshake before any request (or request body) leaves the process. Does not
 * decide policy (http.c chooses pin vs CA store vs insecure) and does not log. */
#include "http.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

int http_fingerprint_parse(const char *text, unsigned char ret[HTTP_SHA256_LEN],
			   struct phx_err *err)
{
	unsigned char fp[HTTP_SHA256_LEN];
	const char *p = text ? text : "";
	size_t n = 0;

	while (isspace((unsigned char)*p))
		p++;
	while (*p && !isspace((unsigned char)*p)) {
		int hi, lo;

		if (*p == ':' && n > 0) {
			p++;
			continue;
		}
		hi = hexval((unsigned char)p[0]);
		lo = hi < 0 ? -1 : hexval((unsigned char)p[1]);
		if (hi < 0 || lo < 0 || n == HTTP_SHA256_LEN)
			goto bad;
		fp[n++] = (unsigned char)(hi << 4 | lo);
		p += 2;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p || n != HTTP_SHA256_LEN)
		goto bad;
	memcpy(ret, fp, sizeof(fp));
	return 0;
bad:
	return phx_err_set(err, PHX_E_INPUT,
			   "tls fingerprint '%s': expected a SHA-256 fingerprint of 64 hex digits "
			   "(with or without ':'), as shown under Datacenter > node > System > "
			   "Certificates",
			   text ? text : "");
}

void http_fingerprint_format(const unsigned char fp[HTTP_SHA256_LEN],
			     char ret[HTTP_FINGERPRINT_TEXT_LEN])
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < HTTP_SHA256_LEN; i++) {
		ret[i * 3] = hex[fp[i] >> 4];
		ret[i * 3 + 1] = hex[fp[i] & 15];
		ret[i * 3 + 2] = i + 1 < HTTP_SHA256_LEN ? ':' : '\0';
	}
}

/* Replaces OpenSSL's chain verification for this SSL_CTX: the peer is trusted iff its leaf
 * certificate hashes to the pin. Host name checks are curl's and are switched off by http.c
 * when a pin is set, since the pin already names exactly one certificate. */
static int pin_verify(X509_STORE_CTX *xs, void *arg)
{
	struct http_pin *pin = arg;
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);
	unsigned int n = 0;

	pin->seen_valid = false;
	if (!leaf || !X509_digest(leaf, EVP_sha256(), pin->seen, &n) || n != HTTP_SHA256_LEN) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	pin->seen_valid = true;
	if (CRYPTO_memcmp(pin->seen, pin->want, HTTP_SHA256_LEN) != 0) {
		pin->mismatch = true;
		X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	pin->mismatch = false;
	return 1;
}

int http_tls_install_pin(void *ssl_ctx, struct http_pin *pin)
{
	SSL_CTX *ctx = ssl_ctx;

	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, pin_verify, pin);
	return 0;
}
