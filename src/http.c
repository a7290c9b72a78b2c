/* http: the libcurl door (see http.h). Owns the easy handle, TLS policy (CA store, pin or
 * insecure), the per-request callbacks (headers, body, sink, progress, multipart upload
 * stream) and the redacted trace. Knows nothing about Proxmox: status codes are handed to
 * the caller unjudged. Pin comparison itself lives in http_tls.c. */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "crypto.h"
#include "clock.h"
#include "log.h"

#ifndef PHX_VERSION
#define PHX_VERSION "0.0.0-dev"
#endif

enum {
	HTTP_BODY_MAX = 16 << 20,   /* buffered body cap: API answers are small */
	HTTP_HEADERS_MAX = 64 << 10,
	HTTP_TRACE_DATA_MAX = 4096, /* bytes of a body shown in the trace */
	/* receive buffer of a download to a sink: libcurl's default 16 KiB costs a recv and a
	 * poll per 16 KiB, the largest part of a loopback download's CPU time after SHA-256
	 * (perf, tests/bench/bench_download); the curl tool uses 100 KiB */
	HTTP_SINK_BUFFER = 512 << 10,
	/* libcurl's upload buffer (default 64 KiB): the file is read straight into it, so a
	 * larger one means fewer reads and sends for the same copies */
	HTTP_UPLOAD_BUFFER = 512 << 10,
	/* an upload asks the kernel to read the file this far ahead of what is sent, in steps
	 * of a quarter of it, so a file not in the page cache comes off the disk while the
	 * network is busy (the kernel's own readahead window is a few hundred KiB) */
	HTTP_UPLOAD_AHEAD = 32 << 20,
};

/* The multipart body of an upload, produced piecewise by upload_read(). */
struct http_upload {
	struct buf head; /* field parts + the file part's headers */
	int fd;
	uint64_t file_size;
	struct buf tail; /* closing boundary */
	size_t head_off, tail_off;
	uint64_t file_off;
	uint64_t ahead; /* readahead was asked for up to here */
};

struct http_client {
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	char *ca_file;	   /* owned copy */
	char *auth_line;   /* owned "Authorization: ..." (secret inside: wiped on free) */
	bool insecure;
	bool has_pin;
	struct http_pin pin;
	long connect_timeout_s;
	long low_speed_time_s;

	/* State of the request in flight; valid only inside http_perform/http_upload_file. */
	struct http_response *resp;
	const struct http_sink *sink;
	const struct http_progress *progress;
	struct http_upload *upload;
	struct phx_err cb_err; /* failure raised inside a callback (sink, upload read) */
};

void http_response_init(struct http_response *r)
{
	r->status = 0;
	r->reason[0] = '\0';
	r->sent = false;
	buf_init(&r->body, HTTP_BODY_MAX);
	buf_init(&r->headers, HTTP_HEADERS_MAX);
}

void http_response_release(struct http_response *r)
{
	if (!r)
		return;
	buf_release(&r->body);
	buf_release(&r->headers);
	r->status = 0;
	r->reason[0] = '\0';
}

static void http_response_reset(struct http_response *r)
{
	r->status = 0;
	r->reason[0] = '\0';
	r->sent = false;
	buf_reset(&r->body);
	buf_reset(&r->headers);
	if (!r->body.max)
		r->body.max = HTTP_BODY_MAX;
	if (!r->headers.max)
		r->headers.max = HTTP_HEADERS_MAX;
}

bool http_response_header(const struct http_response *r, const char *name, char *ret,
			  size_t len)
{
	const char *p = buf_str(&r->headers);
	size_t nlen = strlen(name);

	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t llen = eol ? (size_t)(eol - p) : strlen(p);

		if (llen > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen + 1;
			const char *end = p + llen;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
				end--;
			if (len) {
				size_t n = (size_t)(end - v);

				if (n > len - 1)
					n = len - 1;
				memcpy(ret, v, n);
				ret[n] = '\0';
			}
			return true;
		}
		if (!eol)
			break;
		p = eol + 1;
	}
	return false;
}

bool http_response_date(const struct http_response *r, long long *ret)
{
	char text[128];
	time_t t;

	if (!http_response_header(r, "Date", text, sizeof(text)))
		return false;
	t = curl_getdate(text, NULL);
	if (t == (time_t)-1)
		return false;
	*ret = (long long)t;
	return true;
}

int http_global_init(struct phx_err *err)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return phx_err_set(err, PHX_E_INTERNAL, "libcurl initialisation failed");
	return 0;
}

void http_global_cleanup(void)
{
	curl_global_cleanup();
}

char *http_escape(const char *s, struct phx_err *err)
{
	char *e = curl_easy_escape(NULL, s, (int)strlen(s));
	char *copy;

	if (!e) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory escaping a URL part");
		return NULL;
	}
	/* curl's memory must go back through curl_free(); callers use free(). */
	copy = strdup(e);
	curl_free(e);
	if (!copy)
		phx_err_set(err, PHX_E_NOMEM, "out of memory escaping a URL part");
	return copy;
}

int http_form_append(struct buf *out, const char *key, const char *value, struct phx_err *err)
{
	char *k = http_escape(key, err);
	char *v = k ? http_escape(value ? value : "", err) : NULL;
	int rc = -1;

	if (k && v)
		rc = buf_printf(out, err, "%s%s=%s", out->len ? "&" : "", k, v);
	free(k);
	if (v) {
		/* form values may hold passwords: do not leave copies in freed memory */
		crypto_cleanse(v, strlen(v));
		free(v);
	}
	return rc;
}

/* ---- redaction ---- */

static bool redact_key_at(const char *text, size_t len, size_t i, size_t *ret_keylen)
{
	/* form/query values, "k: v" summaries, and Proxmox task log command lines
	 * ("update VM 100: -cipassword VALUE") */
	static const char *const keys[] = {"password=",	 "cipassword=",	  "password:",
					   "-password ", "-cipassword ", NULL};
	size_t k;

	if (i > 0 && !strchr("&? \t\n", text[i - 1]))
		return false;
	for (k = 0; keys[k]; k++) {
		size_t kl = strlen(keys[k]);

		if (len - i >= kl && strncasecmp(text + i, keys[k], kl) == 0) {
			*ret_keylen = kl;
			return true;
		}
	}
	return false;
}

static bool redact_json_key_at(const char *text, size_t end, size_t i, size_t *ret_keylen)
{
	static const char *const keys[] = {"\"password\":\"", "\"cipassword\":\"", NULL};
	size_t k;

	for (k = 0; keys[k]; k++) {
		size_t kl = strlen(keys[k]);

		if (end - i >= kl && strncasecmp(text + i, keys[k], kl) == 0) {
			*ret_keylen = kl - 1; /* up to the ':' */
			return true;
		}
	}
	return false;
}

int http_redact(const char *text, size_t len, struct buf *out, struct phx_err *err)
{
	size_t i = 0;

	while (i < len) {
		size_t eol = i, keylen;

		while (eol < len && text[eol] != '\n')
			eol++;
		if (eol - i > 14 && strncasecmp(text + i, "authorization:", 14) == 0) {
			if (buf_append(out, text + i, 14, err) < 0 ||
			    buf_puts(out, " [redacted]", err) < 0)
				return -1;
			/* keep a CR so header blocks stay well formed */
			if (eol > i && text[eol - 1] == '\r' && buf_puts(out, "\r", err) < 0)
				return -1;
			i = eol;
			continue;
		}
		while (i < eol) {
			if (redact_json_key_at(text, eol, i, &keylen)) {
				/* "password":"value" in a JSON body: skip the string value */
				if (buf_append(out, text + i, keylen, err) < 0 ||
				    buf_puts(out, "\"[redacted]\"", err) < 0)
					return -1;
				i += keylen + 1;
				while (i < eol && text[i] != '"')
					i += text[i] == '\\' && i + 1 < eol ? 2 : 1;
				if (i < eol)
					i++;
				continue;
			}
			if (redact_key_at(text, len, i, &keylen)) {
				if (buf_append(out, text + i, keylen, err) < 0 ||
				    buf_puts(out, "[redacted]", err) < 0)
					return -1;
				i += keylen;
				while (i < eol && !strchr("& \t\r", text[i]))
					i++;
				continue;
			}
			if (buf_append(out, text + i, 1, err) < 0)
				return -1;
			i++;
		}
		if (i < len) {
			if (buf_append(out, "\n", 1, err) < 0)
				return -1;
			i++;
		}
	}
	return 0;
}

/* ---- client ---- */

static void http_client_warn_insecure(void)
{
	log_warn("TLS VERIFICATION IS DISABLED (insecure): anyone on the network path can "
		 "impersonate the Proxmox server and steal the API token; pin the server's "
		 "certificate with tls.fingerprint / PVE_TLS_FINGERPRINT instead");
}

struct http_client *http_client_new(const struct http_client_opts *opts, struct phx_err *err)
{
	struct http_client *c = calloc(1, sizeof(*c));

	if (!c) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory creating an HTTP client");
		return NULL;
	}
	c->connect_timeout_s = opts->connect_timeout_s > 0 ? opts->connect_timeout_s : 10;
	c->low_speed_time_s = opts->low_speed_time_s > 0 ? opts->low_speed_time_s : 60;
	c->insecure = opts->tls.insecure;
	if (opts->tls.fingerprint && *opts->tls.fingerprint) {
		if (http_fingerprint_parse(opts->tls.fingerprint, c->pin.want, err) < 0)
			goto fail;
		c->has_pin = true;
	}
	if (opts->tls.ca_file && *opts->tls.ca_file) {
		c->ca_file = strdup(opts->tls.ca_file);
		if (!c->ca_file)
			goto nomem;
	}
	if (opts->auth_header) {
		if (asprintf(&c->auth_line, "Authorization: %s", opts->auth_header) < 0) {
			c->auth_line = NULL;
			goto nomem;
		}
	}
	c->curl = curl_easy_init();
	if (!c->curl) {
		phx_err_set(err, PHX_E_INTERNAL, "libcurl could not create a handle");
		goto fail;
	}
	if (c->insecure)
		http_client_warn_insecure();
	return c;
nomem:
	phx_err_set(err, PHX_E_NOMEM, "out of memory creating an HTTP client");
fail:
	http_client_free(c);
	return NULL;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->ca_file);
	if (c->auth_line) {
		crypto_cleanse(c->auth_line, strlen(c->auth_line));
		free(c->auth_line);
	}
	crypto_cleanse(c, sizeof(*c));
	free(c);
}

/* ---- callbacks ---- */

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct http_client *c = ud;
	struct http_response *r = c->resp;
	size_t len = size * nmemb;

	/* A status line starts a new response (after 100 Continue or a redirect): keep only the
	 * final one, whose reason phrase carries Proxmox's error message. */
	if (len > 5 && strncmp(data, "HTTP/", 5) == 0) {
		const char *p = memchr(data, ' ', len);
		const char *end = data + len;

		buf_reset(&r->headers);
		r->reason[0] = '\0';
		r->status = 0;
		if (p) {
			const char *q;
			size_t n;

			p++;
			while (p < end && isdigit((unsigned char)*p))
				r->status = r->status * 10 + (*p++ - '0');
			if (p < end && *p == ' ')
				p++;
			q = end;
			while (q > p && (q[-1] == '\r' || q[-1] == '\n'))
				q--;
			n = (size_t)(q - p);
			if (n >= sizeof(r->reason))
				n = sizeof(r->reason) - 1;
			memcpy(r->reason, p, n);
			r->reason[n] = '\0';
		}
		return len;
	}
	if (buf_append(&r->headers, data, len, NULL) < 0)
		return 0;
	return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct http_client *c = ud;
	struct http_response *r = c->resp;
	size_t len = size * nmemb;

	if (c->sink && r->status >= 200 && r->status < 300) {
		if (c->sink->write(c->sink->ud, data, len, &c->cb_err) < 0) {
			if (!phx_err_is_set(&c->cb_err))
				phx_err_set(&c->cb_err, PHX_E_RUNTIME, "response sink failed");
			return 0;
		}
		return len;
	}
	if (buf_append(&r->body, data, len, &c->cb_err) < 0)
		return 0;
	return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct http_client *c = ud;

	/* a stop signal ends a long transfer (uploads, downloads to a file), never the
	 * rollback's small requests that follow it */
	if ((c->upload || c->sink) && clk_signal())
		return 1;
	if (!c->progress || !c->progress->update)
		return 0;
	/* a request with a body reports the body going out (the answer is small); one without
	 * reports the download */
	if (ultotal > 0)
		c->progress->update(c->progress->ud, (uint64_t)ulnow, (uint64_t)ultotal);
	else
		c->progress->update(c->progress->ud, (uint64_t)dlnow,
				    dltotal > 0 ? (uint64_t)dltotal : 0);
	return 0;
}

static void trace_block(char dir, const char *data, size_t len)
{
	struct buf red = BUF_INIT;
	const char *p, *eol;

	if (http_redact(data, len, &red, NULL) < 0) {
		buf_release(&red);
		log_trace("%c [trace redaction failed, %zu bytes not shown]", dir, len);
		return;
	}
	for (p = buf_str(&red); *p; p = eol + 1) {
		size_t n;

		eol = strchr(p, '\n');
		n = eol ? (size_t)(eol - p) : strlen(p);
		if (n && p[n - 1] == '\r')
			n--;
		if (n)
			log_trace("%c %.*s", dir, (int)n, p);
		if (!eol)
			break;
	}
	buf_release(&red);
}

static bool is_text(const char *data, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)data[i];

		if (ch < 0x20 && ch != '\n' && ch != '\r' && ch != '\t')
			return false;
	}
	return true;
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t len, void *ud)
{
	(void)h;
	(void)ud;
	switch (type) {
	case CURLINFO_TEXT:
		trace_block('*', data, len);
		break;
	case CURLINFO_HEADER_IN:
		trace_block('<', data, len);
		break;
	case CURLINFO_HEADER_OUT:
		trace_block('>', data, len);
		break;
	case CURLINFO_DATA_OUT:
	case CURLINFO_DATA_IN:
		if (len <= HTTP_TRACE_DATA_MAX && is_text(data, len))
			trace_block(type == CURLINFO_DATA_OUT ? '>' : '<', data, len);
		else
			log_trace("%c [%zu bytes of body]", type == CURLINFO_DATA_OUT ? '>' : '<',
				  len);
		break;
	default:
		break;
	}
	return 0;
}

static CURLcode on_ssl_ctx(CURL *h, void *ssl_ctx, void *ud)
{
	struct http_client *c = ud;

	(void)h;
	c->pin.mismatch = false;
	c->pin.seen_valid = false;
	return http_tls_install_pin(ssl_ctx, &c->pin) == 0 ? CURLE_OK : CURLE_SSL_CERTPROBLEM;
}

static size_t upload_read(char *out, size_t size, size_t nmemb, void *ud)
{
	struct http_client *c = ud;
	struct http_upload *u = c->upload;
	size_t room = size * nmemb, done = 0;

	if (u->head_off < u->head.len) {
		size_t n = u->head.len - u->head_off;

		if (n > room)
			n = room;
		memcpy(out, u->head.data + u->head_off, n);
		u->head_off += n;
		return n;
	}
	if (u->file_off < u->file_size) {
		uint64_t left = u->file_size - u->file_off;
		size_t want = left < room ? (size_t)left : room;
		ssize_t n;

		if (u->ahead < u->file_size && u->ahead - u->file_off < HTTP_UPLOAD_AHEAD * 3 / 4) {
			uint64_t to = u->file_off + HTTP_UPLOAD_AHEAD;

			if (to > u->file_size)
				to = u->file_size;
			/* advice only: a failure costs speed, not correctness */
			(void)posix_fadvise(u->fd, (off_t)u->ahead, (off_t)(to - u->ahead),
					    POSIX_FADV_WILLNEED);
			u->ahead = to;
		}
		/* straight into libcurl's buffer: the one copy out of the page cache */
		do
			n = read(u->fd, out, want);
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			if (n < 0)
				phx_err_set_errno(&c->cb_err, PHX_E_IO, errno,
						  "read failed during the upload after %" PRIu64
						  " of %" PRIu64 " bytes",
						  u->file_off, u->file_size);
			else
				phx_err_set(&c->cb_err, PHX_E_IO,
					    "file shrank during the upload after %" PRIu64
					    " of %" PRIu64 " bytes",
					    u->file_off, u->file_size);
			return CURL_READFUNC_ABORT;
		}
		done = (size_t)n;
		u->file_off += done;
		return done;
	}
	if (u->tail_off < u->tail.len) {
		size_t n = u->tail.len - u->tail_off;

		if (n > room)
			n = room;
		memcpy(out, u->tail.data + u->tail_off, n);
		u->tail_off += n;
		return n;
	}
	return 0;
}

/* ---- perform ---- */

#define SETOPT(opt, val)                                                                     \
	do {                                                                                 \
		if (curl_easy_setopt(c->curl, opt, val) != CURLE_OK)                         \
			return phx_err_set(err, PHX_E_INTERNAL, "libcurl refused option %s", \
					   #opt);                                            \
	} while (0)

/* Options common to every request. The handle is reset before each request (keeping its
 * connection cache and TLS sessions) so no option leaks from one request to the next. */
static int http_setup(struct http_client *c, const char *url, long timeout_s,
		      struct phx_err *err)
{
	curl_easy_reset(c->curl);
	c->errbuf[0] = '\0';
	SETOPT(CURLOPT_URL, url);
	SETOPT(CURLOPT_ERRORBUFFER, c->errbuf);
	SETOPT(CURLOPT_USERAGENT, "phoenix-orchestrator/" PHX_VERSION);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_CONNECTTIMEOUT, c->connect_timeout_s);
	SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SETOPT(CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
	SETOPT(CURLOPT_TIMEOUT, timeout_s > 0 ? timeout_s : 0L);
	SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
	/* pveproxy speaks HTTP/1.1 only; skip the h2 ALPN offer */
	SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SETOPT(CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(CURLOPT_HEADERDATA, c);
	SETOPT(CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(CURLOPT_WRITEDATA, c);
	SETOPT(CURLOPT_XFERINFOFUNCTION, on_progress);
	SETOPT(CURLOPT_XFERINFODATA, c);
	SETOPT(CURLOPT_NOPROGRESS, 0L);
	if (log_enabled(PHX_LOG_TRACE)) {
		SETOPT(CURLOPT_DEBUGFUNCTION, on_debug);
		SETOPT(CURLOPT_VERBOSE, 1L);
	}
	if (c->insecure) {
		SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
		SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (c->has_pin) {
		/* curl's own checks off; the SSL_CTX callback installs the pin check, which
		 * makes OpenSSL fail the handshake itself on a mismatch */
		SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
		SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
		SETOPT(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		SETOPT(CURLOPT_SSL_CTX_DATA, c);
	} else {
		SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
		SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
		if (c->ca_file)
			SETOPT(CURLOPT_CAINFO, c->ca_file);
	}
	return 0;
}

/* "https://host:port" of a URL, for messages (never the path: it may name volumes). */
static void url_origin(const char *url, char *ret, size_t len)
{
	const char *p = strstr(url, "://");
	const char *end;

	p = p ? p + 3 : url;
	end = strchr(p, '/');
	if (!end)
		end = p + strlen(p);
	snprintf(ret, len, "%.*s", (int)(end - url), url);
}

static int http_translate(struct http_client *c, CURLcode rc, const char *url,
			  struct phx_err *err)
{
	char origin[256];
	const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);

	url_origin(url, origin, sizeof(origin));
	if (phx_err_is_set(&c->cb_err)) {
		if (err && !phx_err_is_set(err))
			*err = c->cb_err;
		return -1;
	}
	if (c->has_pin && c->pin.mismatch && c->pin.seen_valid) {
		char want[HTTP_FINGERPRINT_TEXT_LEN], seen[HTTP_FINGERPRINT_TEXT_LEN];

		http_fingerprint_format(c->pin.want, want);
		http_fingerprint_format(c->pin.seen, seen);
		return phx_err_set(err, PHX_E_TLS,
				   "TLS certificate of '%s' does not match the pinned fingerprint: "
				   "expected %s, got %s (nothing was sent; if the certificate was "
				   "renewed, update tls.fingerprint)",
				   origin, want, seen);
	}
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return phx_err_set(err, PHX_E_TLS,
				   "TLS with '%s' failed: %s%s", origin, detail,
				   c->has_pin || c->insecure
					   ? ""
					   : " (for a self-signed Proxmox certificate set "
					     "tls.fingerprint to the SHA-256 fingerprint shown in the "
					     "GUI, or tls.ca_file to its CA)");
	case CURLE_OUT_OF_MEMORY:
		return phx_err_set(err, PHX_E_NOMEM, "'%s': %s", origin, detail);
	case CURLE_ABORTED_BY_CALLBACK:
		if (clk_signal())
			return phx_err_set(err, PHX_E_INTERRUPTED,
					   "'%s': transfer stopped by signal %d", origin,
					   clk_signal());
		/* fall through */
	case CURLE_READ_ERROR:
	case CURLE_WRITE_ERROR:
		return phx_err_set(err, PHX_E_IO, "'%s': %s", origin, detail);
	default:
		return phx_err_set(err, PHX_E_NET, "'%s': %s", origin, detail);
	}
}

static int http_run(struct http_client *c, const char *url, struct curl_slist *hdrs,
		    struct http_response *resp, struct phx_err *err)
{
	CURLcode rc;
	curl_off_t pretransfer = 0;

	if (curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK)
		return phx_err_set(err, PHX_E_INTERNAL, "libcurl refused the request headers");
	phx_err_clear(&c->cb_err);
	c->resp = resp;
	rc = curl_easy_perform(c->curl);
	/* libcurl stamps "pre-transfer" once the connection and TLS are up, just before the
	 * request goes out; zero means the failure came first and nothing was sent */
	resp->sent = curl_easy_getinfo(c->curl, CURLINFO_PRETRANSFER_TIME_T, &pretransfer) !=
			     CURLE_OK ||
		     pretransfer > 0;
	/* the header list dies after this call: do not leave a dangling pointer in the handle */
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	c->resp = NULL;
	/* A server may answer an upload with an error before reading the body and then close
	 * (Proxmox checks privileges first): if that answer's status line arrived, it is the
	 * answer, not a transport failure. */
	if ((rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR) && resp->status >= 400 &&
	    !phx_err_is_set(&c->cb_err))
		return 0;
	if (rc != CURLE_OK || phx_err_is_set(&c->cb_err))
		return http_translate(c, rc, url, err);
	return 0;
}

static int slist_add(struct curl_slist **l, const char *line, struct phx_err *err)
{
	struct curl_slist *n = curl_slist_append(*l, line);

	if (!n)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory building request headers");
	*l = n;
	return 0;
}

static void slist_free_wiped(struct curl_slist *l)
{
	struct curl_slist *p;

	/* the Authorization line carries the secret: curl copied it, so wipe that copy */
	for (p = l; p; p = p->next)
		crypto_cleanse(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static int common_headers(struct http_client *c, const char *content_type,
			  const char *const *extra, struct curl_slist **ret, struct phx_err *err)
{
	struct curl_slist *l = NULL;
	char ct[512];
	size_t i;

	if (c->auth_line && slist_add(&l, c->auth_line, err) < 0)
		goto fail;
	/* Proxmox does not answer 100-continue; waiting for it only adds a second of delay */
	if (slist_add(&l, "Expect:", err) < 0)
		goto fail;
	if (content_type) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
		if (slist_add(&l, ct, err) < 0)
			goto fail;
	}
	for (i = 0; extra && extra[i]; i++)
		if (slist_add(&l, extra[i], err) < 0)
			goto fail;
	*ret = l;
	return 0;
fail:
	slist_free_wiped(l);
	return -1;
}

int http_perform(struct http_client *c, const struct http_request *req,
		 struct http_response *resp, struct phx_err *err)
{
	struct curl_slist *hdrs = NULL;
	const char *method = req->method ? req->method : "GET";
	int rc;

	http_response_reset(resp);
	c->sink = req->sink;
	c->progress = req->progress;
	c->upload = NULL;
	if (http_setup(c, req->url, req->timeout_s, err) < 0)
		return -1;
	if (req->sink)
		SETOPT(CURLOPT_BUFFERSIZE, (long)HTTP_SINK_BUFFER);
	if (strcmp(method, "GET") == 0) {
		SETOPT(CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		SETOPT(CURLOPT_NOBODY, 1L);
	} else {
		/* libcurl sends a request again when a reused connection turns out dead before
		 * any answer (lib/transfer.c Curl_retry_request, only for conn->bits.reuse):
		 * for a clone or a create that is a second clone. A fresh connection is never
		 * retried that way; after a failure the caller reads the state instead (see
		 * pve_request_task_key). */
		SETOPT(CURLOPT_FRESH_CONNECT, 1L);
		if (strcmp(method, "POST") != 0)
			SETOPT(CURLOPT_CUSTOMREQUEST, method);
		if (req->body || strcmp(method, "POST") == 0) {
			/* Always a Content-Length, never chunked (Proxmox answers 501). */
			SETOPT(CURLOPT_POST, 1L);
			SETOPT(CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
			SETOPT(CURLOPT_POSTFIELDSIZE_LARGE,
			       (curl_off_t)(req->body ? req->body_len : 0));
		}
	}
	if (common_headers(c, req->body ? req->content_type : NULL, req->headers, &hdrs, err) < 0)
		return -1;
	rc = http_run(c, req->url, hdrs, resp, err);
	slist_free_wiped(hdrs);
	c->sink = NULL;
	c->progress = NULL;
	return rc;
}

/* Quoted-string value for a Content-Disposition parameter: '"' and CR/LF cannot be escaped
 * portably in multipart headers, and the Proxmox parser is a plain regex, so refuse them. */
static int check_disposition_value(const char *what, const char *v, struct phx_err *err)
{
	if (strpbrk(v, "\"\r\n"))
		return phx_err_set(err, PHX_E_INPUT,
				   "multipart %s '%s' contains a quote or line break", what, v);
	return 0;
}

static int upload_build(struct http_upload *u, const char *boundary,
			const struct http_form_field *fields, size_t n_fields,
			const char *file_field, const char *filename, struct phx_err *err)
{
	size_t i;

	for (i = 0; i < n_fields; i++) {
		if (check_disposition_value("field name", fields[i].name, err) < 0)
			return -1;
		if (buf_printf(&u->head, err,
			       "--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n",
			       boundary, fields[i].name, fields[i].value ? fields[i].value : "") < 0)
			return -1;
	}
	if (check_disposition_value("field name", file_field, err) < 0 ||
	    check_disposition_value("file name", filename, err) < 0)
		return -1;
	if (buf_printf(&u->head, err,
		       "--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
		       "Content-Type: application/octet-stream\r\n\r\n",
		       boundary, file_field, filename) < 0)
		return -1;
	return buf_printf(&u->tail, err, "\r\n--%s--\r\n", boundary);
}

int http_upload_file(struct http_client *c, const char *url, const struct http_form_field *fields,
		     size_t n_fields, const char *file_field, const char *filename,
		     const char *path, const struct http_progress *progress,
		     struct http_response *resp, struct phx_err *err)
{
	struct http_upload u;
	struct curl_slist *hdrs = NULL;
	unsigned char rnd[16];
	char boundary[64], ctype[128];
	struct stat st;
	uint64_t total;
	size_t i;
	int rc = -1;

	memset(&u, 0, sizeof(u));
	u.fd = -1;
	buf_init(&u.head, 1 << 20);
	buf_init(&u.tail, 256);
	http_response_reset(resp);
	if (crypto_random(rnd, sizeof(rnd), err) < 0)
		goto out;
	i = (size_t)snprintf(boundary, sizeof(boundary), "----phoenix-");
	for (size_t k = 0; k < sizeof(rnd); k++)
		i += (size_t)snprintf(boundary + i, sizeof(boundary) - i, "%02x", rnd[k]);
	if (upload_build(&u, boundary, fields, n_fields, file_field, filename, err) < 0)
		goto out;
	u.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (u.fd < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "open '%s'", path);
		goto out;
	}
	if (fstat(u.fd, &st) < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "stat '%s'", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		phx_err_set(err, PHX_E_IO, "upload '%s': not a regular file", path);
		goto out;
	}
	u.file_size = (uint64_t)st.st_size;
	total = u.head.len + u.file_size + u.tail.len;
	/* doubles the kernel's readahead window; advice only */
	(void)posix_fadvise(u.fd, 0, 0, POSIX_FADV_SEQUENTIAL);

	c->sink = NULL;
	c->progress = progress;
	c->upload = &u;
	if (http_setup(c, url, 0, err) < 0)
		goto out;
	/* POST with a read callback and a known size: curl sends Content-Length, not chunked.
	 * A fresh connection, as for every changing request (see http_perform). */
	if (curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_POST, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, upload_read) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_READDATA, c) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_UPLOAD_BUFFERSIZE, (long)HTTP_UPLOAD_BUFFER) !=
		    CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)total) != CURLE_OK) {
		phx_err_set(err, PHX_E_INTERNAL, "libcurl refused the upload options");
		goto out;
	}
	snprintf(ctype, sizeof(ctype), "multipart/form-data; boundary=%s", boundary);
	if (common_headers(c, ctype, NULL, &hdrs, err) < 0)
		goto out;
	rc = http_run(c, url, hdrs, resp, err);
	if (rc == 0 && u.file_off != u.file_size && resp->status >= 200 && resp->status < 300)
		rc = phx_err_set(err, PHX_E_IO, "upload '%s': sent %" PRIu64 " of %" PRIu64
				 " bytes", path, u.file_off, u.file_size);
	else if (rc < 0)
		phx_err_wrap(err, "upload '%s'", path);
out:
	slist_free_wiped(hdrs);
	c->upload = NULL;
	c->progress = NULL;
	if (u.fd >= 0)
		close(u.fd);
	buf_release(&u.head);
	buf_release(&u.tail);
	return rc;
}
