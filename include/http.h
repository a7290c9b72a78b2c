/* http: the only door to libcurl. One client (curl easy handle) per worker thread, reused
 * across requests for keep-alive. TLS is verified by default (system store or a CA file);
 * a SHA-256 certificate pin makes a self-signed Proxmox certificate work without --insecure.
 * Bodies can be buffered (capped) or streamed to a sink; uploads stream from a file with a
 * known Content-Length (never chunked: Proxmox refuses chunked bodies). Does not know about
 * Proxmox (see pve.h) and never logs secrets: the Authorization header and password-like
 * form values are redacted in the --verbose --verbose trace. */
#ifndef PHX_HTTP_H
#define PHX_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

struct http_tls {
	const char *ca_file;	 /* PEM bundle; NULL: system store */
	const char *fingerprint; /* SHA-256 of the server certificate, hex with or without ':' */
	bool insecure;		 /* no verification at all; loud warning; never the default */
};

struct http_client_opts {
	struct http_tls tls;
	long connect_timeout_s; /* 0: 10 s */
	long low_speed_time_s;	/* abort when under 1 byte/s for this long; 0: 60 s */
	/* Borrowed, must outlive the client. Sent as "Authorization: <auth_header>" on every
	 * request; never traced or put into errors. NULL: no Authorization header. */
	const char *auth_header;
};

struct http_client;

/* Caller owns; free with http_client_free(). */
struct http_client *http_client_new(const struct http_client_opts *opts, struct phx_err *err);
void http_client_free(struct http_client *c);

/* Called with each chunk of the response body, for 2xx answers only. Return -1 (filling err)
 * to abort the transfer. */
struct http_sink {
	int (*write)(void *ud, const void *data, size_t len, struct phx_err *err);
	void *ud;
};

/* Progress: `now` bytes of `total` (0 when unknown) moved in the current direction. */
struct http_progress {
	void (*update)(void *ud, uint64_t now, uint64_t total);
	void *ud;
};

struct http_request {
	const char *method; /* "GET", "POST", "PUT", "DELETE", "HEAD" */
	const char *url;    /* full URL, already escaped */
	const char *content_type; /* with body; e.g. "application/x-www-form-urlencoded" */
	const void *body;
	size_t body_len;
	const char *const *headers; /* extra "Name: value" lines, NULL-terminated; may be NULL */
	const struct http_sink *sink; /* stream the 2xx body here instead of into resp->body */
	const struct http_progress *progress;
	long timeout_s; /* whole-request cap; 0: none (low-speed limit still applies) */
};

struct http_response {
	long status;	  /* 0 when no HTTP answer arrived */
	char reason[256]; /* reason phrase of the status line (Proxmox puts its error there) */
	struct buf body;  /* body when no sink was given, or when the status is not 2xx */
	struct buf headers; /* raw header lines of the final response */
	/* The connection (and TLS) was up, so the request went out at least in part: after a
	 * transport failure the server may have acted on it. False when the failure came before
	 * (DNS, connect, TLS handshake, pin mismatch): nothing was sent. */
	bool sent;
};

void http_response_init(struct http_response *r);
void http_response_release(struct http_response *r);
/* Value of the first header `name` (case-insensitive) copied into ret (NUL-terminated,
 * truncated to len-1); false when absent. */
bool http_response_header(const struct http_response *r, const char *name, char *ret,
			  size_t len);

/* The response's Date header as seconds since the epoch (the server's clock); false when
 * absent or unparsable. */
bool http_response_date(const struct http_response *r, long long *ret);

/* Performs one request. Returns 0 when an HTTP response arrived, whatever its status (the
 * caller decides what a 404 means); -1 on transport, TLS or sink failure with err filled
 * (PHX_E_NET, PHX_E_TLS, ...); resp->sent tells whether the request may have reached the
 * server. `resp` must be initialised; it is reset first.
 * A request other than GET and HEAD is sent at most once: it always goes on a new
 * connection (libcurl re-sends a request by itself only on a reused connection that died
 * before any answer, lib/transfer.c Curl_retry_request), redirects are not followed and no
 * authentication scheme makes libcurl repeat it; the caller decides what a failure means. */
int http_perform(struct http_client *c, const struct http_request *req,
		 struct http_response *resp, struct phx_err *err);

/* One text field of a multipart form, sent in array order before the file part. */
struct http_form_field {
	const char *name;
	const char *value;
};

/* POSTs multipart/form-data with `fields` (n_fields, in order) and then the file at `path`
 * as the last part, `Content-Disposition: form-data; name="<file_field>";
 * filename="<filename>"`, streaming the file with a precomputed Content-Length and constant
 * memory: the file is read straight into libcurl's 512 KiB send buffer, with readahead asked
 * for well ahead of it. A checksum field has to be known before the call: Proxmox takes text
 * fields only before the file part (NOTES.md §6), so it cannot be hashed while it is sent.
 * Same return contract as http_perform. */
int http_upload_file(struct http_client *c, const char *url, const struct http_form_field *fields,
		     size_t n_fields, const char *file_field, const char *filename,
		     const char *path, const struct http_progress *progress,
		     struct http_response *resp, struct phx_err *err);

/* URL-escapes `s` (RFC 3986 unreserved kept). Caller owns; free with free(). */
char *http_escape(const char *s, struct phx_err *err);

/* Global libcurl init/cleanup; main calls these once. */
int http_global_init(struct phx_err *err);
void http_global_cleanup(void);

/* ---- Additions (the calls above are the original contract) ---- */

#define HTTP_SHA256_LEN 32
/* "AA:BB:...": 32 upper-case hex pairs joined by ':' plus the NUL */
#define HTTP_FINGERPRINT_TEXT_LEN (HTTP_SHA256_LEN * 3)

/* Parses a SHA-256 certificate fingerprint as Proxmox shows it: 64 hex digits, any case, with
 * or without ':' between the pairs (surrounding blanks ignored). PHX_E_INPUT names the value
 * when it is malformed; ret is written only on success. */
int http_fingerprint_parse(const char *text, unsigned char ret[HTTP_SHA256_LEN],
			   struct phx_err *err);
/* Formats as upper-case hex pairs with ':' (the Proxmox GUI form). */
void http_fingerprint_format(const unsigned char fp[HTTP_SHA256_LEN],
			     char ret[HTTP_FINGERPRINT_TEXT_LEN]);

/* Appends `text` (len bytes; header lines, a form body or a "k=v k=v" summary) to `out` with
 * the value of any `Authorization:` header line and of any `password` / `cipassword` parameter
 * (after start, '&', '?', or a blank) replaced by "[redacted]". Used by the trace and by the
 * pve dry-run printer. */
int http_redact(const char *text, size_t len, struct buf *out, struct phx_err *err);

/* Appends `key=value` URL-form-encoded with curl's escaping to `out`, preceded by '&' when
 * `out` is not empty. */
int http_form_append(struct buf *out, const char *key, const char *value, struct phx_err *err);

/* Internal to src/http*.c (the pin check lives in http_tls.c, the only OpenSSL door besides
 * crypto.c): the state the OpenSSL verify callback fills during a handshake. */
struct http_pin {
	unsigned char want[HTTP_SHA256_LEN];
	unsigned char seen[HTTP_SHA256_LEN]; /* leaf certificate of the last handshake */
	bool seen_valid;
	bool mismatch; /* the last handshake was refused because seen != want */
};
/* Installs the pin check on an OpenSSL SSL_CTX (passed as void * so this header stays free of
 * OpenSSL): the chain and host name checks are replaced by the comparison with pin->want.
 * `pin` is borrowed and must outlive the handshake. */
int http_tls_install_pin(void *ssl_ctx, struct http_pin *pin);

#endif
