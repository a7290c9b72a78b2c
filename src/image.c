/* image: verified, cached, resumable download of a cloud image (see image.h). Owns the
 * download state machine (HEAD, resume, restart, retry, verify, rename); the bytes go through
 * the writer ring of image_writer.c, the bar through progress.h. The SHA256SUMS
 * parser lives in image_sums.c, metadata and names in image_cache.c. */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "fsutil.h"
#include "http.h"
#include "image_int.h"
#include "log.h"
#include "pgp.h"
#include "progress.h"

enum {
	IMG_DEFAULT_RETRIES = 3,
	IMG_SMALL_MAX = 16 << 20, /* a checksum file or signature bigger than this is not one */
};

/* State of one download into <name>.part, shared by the sink and the progress callback. */
struct img_dl {
	const char *url;
	const char *name;
	const char *part_path;
	const char *cache_dir;
	int fd;
	struct img_writer w;
	uint64_t written;    /* bytes of the .part handed to the writer (flushed: in the file) */
	uint64_t received;   /* body bytes received by this img_fetch call */
	uint64_t size;	     /* full image size when known, else 0 */
	uint64_t req_offset; /* where the current request's body starts in the file */
	const struct http_response *resp;
	bool first_chunk;     /* no body byte of the current request seen yet */
	bool assumed_partial; /* status unknown at the first chunk; checked after the request */
	bool sink_failed;     /* a local failure (disk): do not retry */
	bool bad_range;	      /* 206 for another range than asked: restart */
	bool locked;	      /* we hold the .part's lock, so we may delete it */
	/* progress */
	bool show_bar;	     /* asked for and stderr is a TTY */
	struct prog_bar bar; /* counts `written`: a resumed prefix is shown, not in the rate */
	double t0;	     /* clk_now() when the transfer began, for the summary line */
};

/* ---- progress -------------------------------------------------------------------------- */

static void img_progress_update(void *ud, uint64_t now, uint64_t total)
{
	struct img_dl *d = ud;

	(void)now; /* d->written is exact across resumes; `now` restarts at each request */
	if (!d->size && total)
		d->size = d->req_offset + total;
	prog_bar_update(&d->bar, d->written, d->size);
}

/* ---- the sink: file + hash ------------------------------------------------------------- */

static int img_dl_restart(struct img_dl *d, struct phx_err *err)
{
	img_writer_stop(&d->w);
	if (ftruncate(d->fd, 0) < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "truncate '%s'", d->part_path);
	d->written = 0;
	d->bar.start = 0;
	return img_writer_start(&d->w, d->fd, 0, err);
}

/* Parses "bytes START-END/TOTAL" (or "bytes *\/TOTAL" of a 416); false when malformed. */
static bool img_content_range(const struct http_response *r, uint64_t *start, uint64_t *total)
{
	char v[128];
	unsigned long long s = 0, e = 0, t = 0;

	if (!http_response_header(r, "Content-Range", v, sizeof(v)))
		return false;
	if (sscanf(v, "bytes %llu-%llu/%llu", &s, &e, &t) == 3) {
		*start = s;
		*total = t;
		return true;
	}
	if (sscanf(v, "bytes */%llu", &t) == 1) {
		*start = UINT64_MAX;
		*total = t;
		return true;
	}
	return false;
}

static int img_sink_write(void *ud, const void *data, size_t len, struct phx_err *err)
{
	struct img_dl *d = ud;

	if (d->first_chunk) {
		uint64_t start, total;
		bool has_range = img_content_range(d->resp, &start, &total);

		d->first_chunk = false;
		if (d->req_offset > 0) {
			if (d->resp->status == 206 || has_range) {
				if (has_range && start != d->req_offset) {
					d->bad_range = true;
					return phx_err_set(err, PHX_E_NET,
							   "'%s': asked for bytes from %" PRIu64
							   ", got a range from %" PRIu64,
							   d->url, d->req_offset, start);
				}
			} else if (d->resp->status == 200) {
				/* the server ignored Range or the file changed (If-Range) */
				log_debug("'%s': server sent the whole file, restarting", d->url);
				if (img_dl_restart(d, err) < 0) {
					d->sink_failed = true;
					return -1;
				}
				d->req_offset = 0;
			} else {
				d->assumed_partial = true;
			}
		}
	}
	if (img_writer_put(&d->w, data, len, err) < 0) {
		d->sink_failed = true;
		return -1;
	}
	d->written += len;
	d->received += len;
	return 0;
}

/* ---- helpers --------------------------------------------------------------------------- */

static int img_http_fail(const char *what, const char *url, const struct http_response *r,
			 struct phx_err *err)
{
	enum phx_err_code code = r->status == 404 ? PHX_E_NOTFOUND : PHX_E_NET;
	char loc[1024] = "";

	/* NEEDSWORK: redirects are not followed (http.h does not); say where to point instead */
	if (r->status >= 300 && r->status < 400 &&
	    http_response_header(r, "Location", loc, sizeof(loc)))
		phx_err_set(err, code,
			    "%s '%s': HTTP %ld%s%s (redirects are not followed: use the URL it "
			    "points to, '%s')",
			    what, url, r->status, r->reason[0] ? " " : "", r->reason, loc);
	else
		phx_err_set(err, code, "%s '%s': HTTP %ld%s%s", what, url, r->status,
			    r->reason[0] ? " " : "", r->reason);
	if (err && err->http_status == 0)
		err->http_status = (int)r->status;
	return -1;
}

static char *img_header_dup(const struct http_response *r, const char *name)
{
	char v[1024];

	return http_response_header(r, name, v, sizeof(v)) && v[0] ? strdup(v) : NULL;
}

static bool img_str_eq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

static int img_normalise_sha(const char *in, char out[CRYPTO_SHA256_HEX_LEN + 1],
			     struct phx_err *err)
{
	const char *s = in;
	size_t i;

	if (!strncmp(s, "sha256:", 7))
		s += 7;
	for (i = 0; s[i] && i < CRYPTO_SHA256_HEX_LEN; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			break;
		out[i] = c;
	}
	if (i != CRYPTO_SHA256_HEX_LEN || s[i])
		return phx_err_set(err, PHX_E_INPUT, "sha256 '%s': expected 64 hex digits", in);
	out[i] = '\0';
	return 0;
}

/* ---- the checksum file and its signature ----------------------------------------------- */

/* What the image must hash to: SHA-256 from configuration or most checksum files, SHA-512
 * from Debian's SHA512SUMS. */
struct img_digest {
	enum crypto_alg alg;
	char hex[CRYPTO_HEX_MAX + 1];
};

/* A small file (checksums, signature) fetched conditionally against its cached copy. */
struct img_small {
	struct buf body;
	char *etag, *last_modified; /* validators of what body holds; owned */
	bool fresh;		    /* body came from the network: cache it once all is verified */
};

static void img_small_release(struct img_small *f)
{
	buf_release(&f->body);
	free(f->etag);
	free(f->last_modified);
}

static char *img_strdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* GETs `url` into f->body. When the previous run fetched the same URL (`prev_url`) and its
 * copy is still at `cache_path`, asks with that copy's validators and reads the copy on a
 * 304. */
static int img_small_get(struct http_client *c, const char *what, const char *url,
			 const char *cache_path, const char *prev_url, const char *prev_etag,
			 const char *prev_lm, struct img_small *f, struct phx_err *err)
{
	struct http_response resp;
	struct http_request req = {.method = "GET", .url = url, .timeout_s = 300};
	char *hdr[3] = {NULL, NULL, NULL};
	const char *headers[3] = {NULL, NULL, NULL};
	size_t nh = 0;
	int rc = -1;

	if (img_str_eq(prev_url, url) && fs_exists(cache_path)) {
		if (prev_etag && asprintf(&hdr[nh], "If-None-Match: %s", prev_etag) >= 0)
			nh++;
		if (prev_lm && asprintf(&hdr[nh], "If-Modified-Since: %s", prev_lm) >= 0)
			nh++;
	}
	for (size_t i = 0; i < nh; i++)
		headers[i] = hdr[i];
	req.headers = headers;
	http_response_init(&resp);
	if (http_perform(c, &req, &resp, err) < 0) {
		phx_err_wrap(err, "fetch %s '%s'", what, url);
		goto out;
	}
	if (resp.status == 304 && nh > 0) {
		log_debug("'%s' not modified", url);
		if (fs_read_file(cache_path, &f->body, err) < 0)
			goto out;
		f->etag = img_strdup_or_null(prev_etag);
		f->last_modified = img_strdup_or_null(prev_lm);
	} else if (resp.status == 200) {
		if (buf_append(&f->body, resp.body.data ? resp.body.data : "", resp.body.len,
			       err) < 0)
			goto out;
		f->etag = img_header_dup(&resp, "ETag");
		f->last_modified = img_header_dup(&resp, "Last-Modified");
		f->fresh = true;
	} else {
		char act[64];

		snprintf(act, sizeof(act), "fetch %s", what);
		img_http_fail(act, url, &resp, err);
		goto out;
	}
	rc = 0;
out:
	http_response_release(&resp);
	for (size_t i = 0; i < nh; i++)
		free(hdr[i]);
	return rc;
}

/* Fetches the checksum file (and with o->signature_url its signature), verifies the
 * signature and returns the digest listed for `name`, from the signed text only. Fills the
 * sums and sig validators of *val; *sums and *sig hold the files for img_small_commit. */
static int img_expected_from_sums(struct http_client *c, const struct img_fetch_opts *o,
				  const char *name, const char *sums_cache, const char *sig_cache,
				  const struct img_meta *prev, struct img_digest *ret,
				  struct img_meta *val, struct img_small *sums, struct img_small *sig,
				  struct phx_err *err)
{
	const char *url = o->checksum_url;
	struct pgp_verified v = PGP_VERIFIED_INIT;
	struct img_sums *parsed = NULL;
	const struct img_sums_entry *hit;
	const char *text;
	size_t len;
	int rc = -1;

	if (img_small_get(c, "checksums", url, sums_cache, prev ? prev->sums_url : NULL,
			  prev ? prev->sums_etag : NULL, prev ? prev->sums_last_modified : NULL,
			  sums, err) < 0)
		return -1;
	text = buf_str(&sums->body);
	len = sums->body.len;
	if (o->signature_url && img_str_eq(o->signature_url, url)) {
		/* the checksum file signs itself (Fedora's CHECKSUM) */
		if (!img_sums_is_clearsigned(text, len)) {
			phx_err_set(err, PHX_E_VERIFY,
				    "checksums '%s' are not clear-signed, but signature_url names "
				    "that file itself; name its detached signature instead",
				    url);
			goto out;
		}
		if (pgp_verify(o->keyring, text, len, url, NULL, 0, NULL, &v, err) < 0)
			goto out;
	} else if (o->signature_url) {
		if (img_small_get(c, "signature", o->signature_url, sig_cache,
				  prev ? prev->sig_url : NULL, prev ? prev->sig_etag : NULL,
				  prev ? prev->sig_last_modified : NULL, sig, err) < 0)
			goto out;
		if (pgp_verify(o->keyring, text, len, url, sig->body.data ? sig->body.data : "",
			       sig->body.len, o->signature_url, &v, err) < 0)
			goto out;
	}
	if (o->signature_url) {
		log_info("checksums '%s' signed by key %s", url, v.signer);
		text = v.text;
		len = v.len;
	}
	if (img_sums_parse(text, len, url, &parsed, err) < 0)
		goto out;
	hit = img_sums_lookup(parsed, name);
	if (!hit) {
		phx_err_set(err, PHX_E_NOTFOUND, "checksums '%s' list no file named '%s' (%zu entries)",
			    url, name, parsed->n);
		goto out;
	}
	ret->alg = hit->alg;
	memcpy(ret->hex, hit->hex, sizeof(ret->hex));
	val->sums_url = strdup(url);
	val->sums_etag = img_strdup_or_null(sums->etag);
	val->sums_last_modified = img_strdup_or_null(sums->last_modified);
	if (o->signature_url) {
		val->sig_url = strdup(o->signature_url);
		val->sig_etag = img_strdup_or_null(sig->etag);
		val->sig_last_modified = img_strdup_or_null(sig->last_modified);
	}
	if (!val->sums_url || (o->signature_url && !val->sig_url)) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	img_sums_free(parsed);
	pgp_verified_release(&v);
	return rc;
}

/* Keeps a freshly fetched small file for the next run's conditional GET. Called only after
 * everything verified, so a copy on disk is always one that was accepted. */
static int img_small_commit(const struct img_small *f, const char *path, struct phx_err *err)
{
	if (!f->fresh)
		return 0;
	return fs_write_atomic(path, f->body.data ? f->body.data : "", f->body.len, 0644, err);
}

static bool img_digest_matches(const struct img_meta *m, const struct img_digest *d)
{
	return !strcmp(d->alg == CRYPTO_SHA256 ? m->sha256 : m->sha512, d->hex);
}

/* ---- the download ---------------------------------------------------------------------- */

struct img_paths {
	char *cache, *name, *meta, *part, *part_meta, *sums, *sig, *final_dir, *final;
};

static void img_paths_release(struct img_paths *p)
{
	free(p->cache);
	free(p->name);
	free(p->meta);
	free(p->part);
	free(p->part_meta);
	free(p->sums);
	free(p->sig);
	free(p->final_dir);
	free(p->final);
}

/* (Re)names the final file by `sha`: a SHA-512 download learns its SHA-256 only at the end. */
static int img_paths_final(struct img_paths *p, const char *sha, struct phx_err *err)
{
	free(p->final_dir);
	free(p->final);
	p->final_dir = p->final = NULL;
	if (asprintf(&p->final_dir, "%s/%s", p->cache, sha) < 0 ||
	    asprintf(&p->final, "%s/%s/%s", p->cache, sha, p->name) < 0)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return 0;
}

/* The If-Range value for a file with these validators: a strong ETag, else the date (RFC
 * 9110 forbids weak ETags in If-Range), else NULL (resume unguarded; the hash still guards).
 * Caller owns the result. */
static char *img_if_range_value(const char *etag, const char *last_modified)
{
	if (etag && strncmp(etag, "W/", 2))
		return strdup(etag);
	return last_modified ? strdup(last_modified) : NULL;
}

/* HEAD for size and validators. Only a 404 is fatal here: some servers refuse HEAD, and the
 * GET that follows reports every other problem. */
static int img_head(struct http_client *c, const char *url, struct img_meta *info,
		    struct phx_err *err)
{
	struct http_request req = {.method = "HEAD", .url = url, .timeout_s = 60};
	struct http_response resp;
	char v[64];
	int rc = 0;

	http_response_init(&resp);
	if (http_perform(c, &req, &resp, err) < 0) {
		http_response_release(&resp);
		return phx_err_wrap(err, "download '%s'", url);
	}
	if (resp.status == 404) {
		rc = img_http_fail("download", url, &resp, err);
	} else if (resp.status >= 200 && resp.status < 300) {
		if (http_response_header(&resp, "Content-Length", v, sizeof(v)))
			info->size = strtoull(v, NULL, 10);
		info->etag = img_header_dup(&resp, "ETag");
		info->last_modified = img_header_dup(&resp, "Last-Modified");
	}
	http_response_release(&resp);
	return rc;
}

/* Opens and locks the .part and decides where to resume: returns the prefix length worth
 * keeping (0: start over) in *ret_offset and the validator to send with If-Range. */
static int img_part_open(struct img_dl *d, const struct img_paths *p,
			 const struct img_digest *expected,
			 const struct img_meta *head, char **ret_validator, uint64_t *ret_offset,
			 struct phx_err *err)
{
	struct img_meta pm = IMG_META_INIT;
	struct phx_err ignored = PHX_ERR_INIT;
	struct stat st;
	uint64_t keep = 0;
	char *validator = NULL;

	d->fd = open(p->part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (d->fd < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "open '%s'", p->part);
	if (flock(d->fd, LOCK_EX | LOCK_NB) < 0)
		return phx_err_set(err, PHX_E_CONFLICT,
				   "'%s' is being downloaded by another process (lock on '%s')",
				   d->url, p->part);
	d->locked = true;
	if (fstat(d->fd, &st) < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "stat '%s'", p->part);
	if (st.st_size > 0 && img_meta_read(p->part_meta, &pm, &ignored) == 0 &&
	    img_str_eq(pm.url, d->url) && img_digest_matches(&pm, expected)) {
		keep = (uint64_t)st.st_size;
		/* a changed validator means another file upstream: the prefix is worthless */
		if ((head->etag && pm.etag && strcmp(head->etag, pm.etag)) ||
		    (head->size && keep > head->size))
			keep = 0;
		if (keep)
			validator = img_if_range_value(pm.etag, pm.last_modified);
	}
	img_meta_release(&pm);
	if (!keep && st.st_size > 0 && ftruncate(d->fd, 0) < 0) {
		free(validator);
		return phx_err_set_errno(err, PHX_E_IO, errno, "truncate '%s'", p->part);
	}
	*ret_validator = validator;
	*ret_offset = keep;
	return 0;
}

static int img_part_meta_write(const struct img_paths *p, const char *url,
			       const struct img_digest *expected, const char *etag,
			       const char *last_modified, struct phx_err *err)
{
	struct img_meta pm = IMG_META_INIT;

	pm.url = (char *)url; /* borrowed for the write only */
	pm.etag = (char *)etag;
	pm.last_modified = (char *)last_modified;
	if (expected->alg == CRYPTO_SHA256)
		memcpy(pm.sha256, expected->hex, sizeof(pm.sha256));
	else
		memcpy(pm.sha512, expected->hex, sizeof(pm.sha512));
	pm.fetched_at = (int64_t)time(NULL);
	/* Not synced: the fsync sat between the HEAD and the body's first byte, and it waits
	 * for whatever the file system orders before it (140 ms after another program's 256 MiB
	 * in bench_download). A hint lost in a power failure restarts the download; a stale one
	 * names another url or digest, which img_part_open refuses, and the hash is checked at
	 * the end whatever was resumed. */
	return img_meta_write(p->part_meta, &pm, false, err);
}

static void img_part_discard(const struct img_paths *p)
{
	unlink(p->part);
	unlink(p->part_meta);
}

/* Downloads into p->part and moves it to p->final when its hash is `expected` (for a SHA-512
 * digest p->final is named here, by the SHA-256 computed alongside). Fills
 * info->etag/last_modified/size/sha256/sha512 on success; *ret_received counts body bytes. */
static int img_download(struct http_client *c, const struct img_fetch_opts *o,
			struct img_paths *p, const struct img_digest *expected,
			struct img_meta *info, uint64_t *ret_received, struct phx_err *err)
{
	struct img_dl d = {.url = o->image_url,
			   .name = p->name,
			   .part_path = p->part,
			   .cache_dir = p->cache,
			   .fd = -1};
	struct img_meta head = IMG_META_INIT;
	struct http_response resp;
	struct http_sink sink = {img_sink_write, &d};
	struct http_progress prog = {img_progress_update, &d};
	unsigned retries = o->retries ? o->retries : IMG_DEFAULT_RETRIES;
	char *validator = NULL, *range = NULL, *ifrange = NULL;
	char got[CRYPTO_SHA256_HEX_LEN + 1], got_verify[CRYPTO_HEX_MAX + 1];
	uint64_t offset = 0, avail;
	bool complete = false;
	int rc = -1;

	if (img_writer_init(&d.w, p->part, p->cache) < 0)
		return phx_err_set(err, PHX_E_RUNTIME, "cannot initialise a mutex");
	d.w.verify_alg = expected->alg;
	http_response_init(&resp);
	d.resp = &resp;
	d.show_bar = o->progress && log_is_tty();
	if (img_head(c, o->image_url, &head, err) < 0)
		goto out;
	d.size = head.size;
	if (img_part_open(&d, p, expected, &head, &validator, &offset, err) < 0)
		goto out;
	if (offset)
		log_info("resuming '%s' at %" PRIu64 " bytes", p->name, offset);
	d.written = offset;
	/* the kept prefix is re-hashed by the hasher thread while new bytes arrive */
	if (img_writer_start(&d.w, d.fd, offset, err) < 0)
		goto out;
	if (d.size && d.size > d.written) {
		if (fs_free_space(p->cache, &avail, err) < 0)
			goto out;
		if (avail < d.size - d.written) {
			phx_err_set(err, PHX_E_IO,
				    "not enough free space in cache '%s' for '%s': need %" PRIu64
				    " bytes, %" PRIu64 " available",
				    p->cache, p->name, d.size - d.written, avail);
			goto out;
		}
	}
	if (!offset &&
	    img_part_meta_write(p, o->image_url, expected, head.etag, head.last_modified, err) < 0)
		goto out;
	if (!validator)
		validator = img_if_range_value(head.etag, head.last_modified);
	d.t0 = clk_now();
	if (d.show_bar)
		prog_bar_init_at(&d.bar, p->name, d.written);

	for (unsigned attempt = 0; !complete; attempt++) {
		struct phx_err aerr = PHX_ERR_INIT, ferr = PHX_ERR_INIT, ignored = PHX_ERR_INIT;
		const char *headers[3] = {NULL, NULL, NULL};
		int rc_http;
		struct http_request req = {.method = "GET",
					   .url = o->image_url,
					   .sink = &sink,
					   .progress = &prog,
					   .headers = headers};

		if (attempt > retries) {
			phx_err_set(err, PHX_E_NET,
				    "download '%s': no complete answer after %u "
				    "attempts",
				    o->image_url, attempt);
			goto out;
		}
		if (d.size && d.written == d.size) {
			complete = true; /* a finished .part that was never renamed */
			break;
		}
		free(range);
		free(ifrange);
		range = ifrange = NULL;
		if (d.written) {
			if (asprintf(&range, "Range: bytes=%" PRIu64 "-", d.written) < 0 ||
			    (validator && asprintf(&ifrange, "If-Range: %s", validator) < 0)) {
				phx_err_set(err, PHX_E_NOMEM, "out of memory");
				goto out;
			}
			headers[0] = range;
			headers[1] = ifrange;
		}
		d.req_offset = d.written;
		d.first_chunk = true;
		d.assumed_partial = d.bad_range = false;
		rc_http = http_perform(c, &req, &resp, &aerr);
		/* whatever arrived goes to the file before deciding what comes next */
		if (!d.sink_failed && img_writer_flush(&d.w, &ferr) < 0) {
			d.sink_failed = true;
			aerr = ferr; /* the local failure is the root cause */
			rc_http = -1;
		}
		if (!validator && d.req_offset == 0 && (resp.status == 200 || resp.status == 206)) {
			/* no HEAD validators: take the GET's, so a retry can still use If-Range */
			char *et = img_header_dup(&resp, "ETag"),
			     *lm = img_header_dup(&resp, "Last-Modified");

			validator = img_if_range_value(et, lm);
			/* and record them, so the next run can resume with If-Range too */
			if (validator)
				img_part_meta_write(p, o->image_url, expected, et, lm, &ignored);
			free(et);
			free(lm);
		}
		if (rc_http == 0) {
			if (resp.status == 416 && d.written) {
				uint64_t start, total;

				if (img_content_range(&resp, &start, &total) &&
				    total == d.written) {
					complete = true;
					break;
				}
				if (img_dl_restart(&d, err) < 0)
					goto out;
				continue;
			}
			if (resp.status != 200 && resp.status != 206) {
				img_http_fail("download", o->image_url, &resp, err);
				if (!d.written)
					img_part_discard(p);
				goto out;
			}
			if (d.assumed_partial && resp.status != 206) {
				/* could not tell 200 from 206 while streaming: redo from zero */
				if (img_dl_restart(&d, err) < 0)
					goto out;
				continue;
			}
			if (!info->etag)
				info->etag = img_header_dup(&resp, "ETag");
			if (!info->last_modified)
				info->last_modified = img_header_dup(&resp, "Last-Modified");
			complete = true;
			break;
		}
		if (d.sink_failed) {
			phx_err_set(err, aerr.code, "%s", aerr.msg);
			img_part_discard(p);
			goto out;
		}
		if (d.bad_range && img_dl_restart(&d, err) < 0)
			goto out;
		if (aerr.code == PHX_E_INTERRUPTED) {
			/* the part file stays for the next run to resume */
			phx_err_set(err, aerr.code, "%s", aerr.msg);
			goto out;
		}
		if (attempt == retries) {
			phx_err_set(err, aerr.code, "%s", aerr.msg);
			phx_err_wrap(err,
				     "download '%s': gave up after %u attempts; %" PRIu64
				     " bytes kept in '%s' for the next run",
				     o->image_url, attempt + 1, d.written, p->part);
			goto out;
		}
		log_warn("download of '%s' interrupted at %" PRIu64 " bytes: %s; resuming", p->name,
			 d.written, aerr.msg);
		clk_sleep_ms(200 * (attempt + 1));
	}
	prog_bar_finish_at(&d.bar, d.written, d.size);
	/* The flusher started writeback and flushed every IMG_SYNC_CHUNK while the body
	 * arrived: the fsync waits for the rest and the journal. A failed write or flush
	 * discards the .part: the kernel may keep the lost pages in its cache as clean, so a
	 * resume would hash good bytes that are not on the disk (and report no error again). */
	if (img_writer_finish(&d.w, err) < 0) {
		img_part_discard(p);
		goto out;
	}
	if (fsync(d.fd) < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "fsync '%s'", p->part);
		img_part_discard(p);
		goto out;
	}
	if (crypto_sha256_final(d.w.h, got, err) < 0 ||
	    (d.w.verify && crypto_hash_final(d.w.verify, got_verify, err) < 0)) {
		phx_err_wrap(err, "hash '%s'", p->part);
		goto out;
	}
	if (!d.w.verify)
		memcpy(got_verify, got, sizeof(got));
	if (strcmp(got_verify, expected->hex)) {
		img_part_discard(p);
		phx_err_set(err, PHX_E_VERIFY,
			    "'%s': %s mismatch: expected %s, got %s (%" PRIu64
			    " bytes); the download was deleted",
			    o->image_url, crypto_alg_name(expected->alg), expected->hex, got_verify,
			    d.written);
		goto out;
	}
	if (d.w.verify && img_paths_final(p, got, err) < 0)
		goto out;
	if (fs_mkdir_p(p->final_dir, 0755, err) < 0)
		goto out;
	if (rename(p->part, p->final) < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "rename '%s' to '%s'", p->part, p->final);
		goto out;
	}
	unlink(p->part_meta);
	if (fs_fsync_dir(p->final_dir, err) < 0 || fs_fsync_dir(p->cache, err) < 0)
		goto out;
	{
		double secs = clk_now() - d.t0;
		char sz[32];

		prog_format_bytes(d.written, sz, sizeof(sz));
		log_info("downloaded '%s' (%s in %.1f s, %.1f MiB/s), %s %s verified", p->name, sz,
			 secs, secs > 0 ? (double)d.received / secs / (1 << 20) : 0.0,
			 crypto_alg_name(expected->alg), got_verify);
	}
	if (!info->etag && head.etag)
		info->etag = strdup(head.etag);
	if (!info->last_modified && head.last_modified)
		info->last_modified = strdup(head.last_modified);
	info->size = d.written;
	memcpy(info->sha256, got, sizeof(info->sha256));
	if (d.w.verify)
		memcpy(info->sha512, got_verify, sizeof(info->sha512));
	*ret_received = d.received;
	rc = 0;
out:
	if (rc < 0 && d.show_bar && d.written)
		fputc('\n', stderr); /* keep the error off the half-drawn bar */
	if (rc < 0 && d.locked && d.written == 0)
		img_part_discard(p); /* nothing worth resuming: leave no trace */
	/* the threads end before the fd closes: on an early failure they may still use it */
	img_writer_release(&d.w);
	if (d.fd >= 0)
		close(d.fd); /* a success checked the writes with fsync above */
	http_response_release(&resp);
	img_meta_release(&head);
	free(validator);
	free(range);
	free(ifrange);
	return rc;
}

/* ---- img_fetch ------------------------------------------------------------------------- */

static int img_paths_init(struct img_paths *p, const struct img_fetch_opts *o, struct phx_err *err)
{
	if (img_name_from_url(o->image_url, &p->name, err) < 0)
		return -1;
	if (o->cache_dir) {
		p->cache = strdup(o->cache_dir);
		if (!p->cache)
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	} else if (img_cache_dir_default(&p->cache, err) < 0) {
		return -1;
	}
	if (asprintf(&p->meta, "%s/%s.meta.json", p->cache, p->name) < 0 ||
	    asprintf(&p->part, "%s/%s.part", p->cache, p->name) < 0 ||
	    asprintf(&p->part_meta, "%s/%s.part.meta", p->cache, p->name) < 0 ||
	    asprintf(&p->sums, "%s/%s.sums", p->cache, p->name) < 0 ||
	    asprintf(&p->sig, "%s/%s.sums.sig", p->cache, p->name) < 0)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return fs_mkdir_p(p->cache, 0755, err);
}

/* True when the cached final file can be trusted without downloading; then p->final names
 * it and ret_sha256 holds its SHA-256. A SHA-512 digest finds the file only through the
 * record of the run that verified it. */
static bool img_cache_hit(struct img_paths *p, const struct img_fetch_opts *o,
			  const struct img_meta *prev, const struct img_digest *expected,
			  char ret_sha256[CRYPTO_SHA256_HEX_LEN + 1], uint64_t *ret_size)
{
	struct phx_err ignored = PHX_ERR_INIT;
	char got[CRYPTO_HEX_MAX + 1];
	const char *sha256 = expected->hex;
	bool recorded = prev && img_digest_matches(prev, expected);
	uint64_t size;

	if (expected->alg != CRYPTO_SHA256) {
		if (!recorded || !prev->sha256[0])
			return false;
		sha256 = prev->sha256;
	}
	if (img_paths_final(p, sha256, &ignored) < 0 || fs_file_size(p->final, &size, &ignored) < 0)
		return false;
	if (!o->verify_cached && recorded && prev->size == size) {
		memcpy(ret_sha256, sha256, CRYPTO_SHA256_HEX_LEN + 1);
		*ret_size = size;
		return true;
	}
	/* no trustworthy record: the file is named by its hash, so check that name */
	if (crypto_hash_file(expected->alg, p->final, got, &ignored) == 0 &&
	    !strcmp(got, expected->hex)) {
		memcpy(ret_sha256, sha256, CRYPTO_SHA256_HEX_LEN + 1);
		*ret_size = size;
		return true;
	}
	log_warn("cached '%s' does not match its %s, downloading it again", p->final,
		 crypto_alg_name(expected->alg));
	unlink(p->final);
	return false;
}

int img_fetch(struct http_client *c, const struct img_fetch_opts *o, struct img_result *ret,
	      struct phx_err *err)
{
	struct img_paths p = {0};
	struct img_meta prev = IMG_META_INIT, next = IMG_META_INIT;
	struct img_small sums = {0}, sig = {0};
	struct phx_err ignored = PHX_ERR_INIT;
	struct img_digest expected = {.alg = CRYPTO_SHA256};
	char sha256[CRYPTO_SHA256_HEX_LEN + 1];
	bool have_prev = false;
	uint64_t received = 0, size = 0;
	char *prev_path = NULL, *out_path = NULL;
	int rc = -1;

	if (!o || !o->image_url || !o->image_url[0])
		return phx_err_set(err, PHX_E_INPUT, "no image URL given");
	if (strncmp(o->image_url, "http://", 7) && strncmp(o->image_url, "https://", 8))
		return phx_err_set(err, PHX_E_INPUT, "image URL '%s': expected http:// or https://",
				   o->image_url);
	if (!o->sha256 && !o->checksum_url)
		return phx_err_set(err, PHX_E_INPUT,
				   "image '%s': no checksum URL and no sha256 given; an unverified "
				   "image is never used",
				   o->image_url);
	if (!o->signature_url != !o->keyring)
		return phx_err_set(err, PHX_E_INPUT,
				   "image '%s': a signature URL needs a keyring and a keyring a "
				   "signature URL",
				   o->image_url);
	if (o->signature_url && !o->checksum_url)
		return phx_err_set(err, PHX_E_INPUT,
				   "image '%s': a signature URL needs a checksum URL it signs",
				   o->image_url);
	buf_init(&sums.body, IMG_SMALL_MAX);
	buf_init(&sig.body, IMG_SMALL_MAX);
	if (img_paths_init(&p, o, err) < 0)
		goto out;
	if (img_meta_read(p.meta, &prev, &ignored) == 0)
		have_prev = true;
	else if (ignored.code != PHX_E_NOTFOUND)
		log_warn("ignoring cache record: %s", ignored.msg);

	if (o->sha256) {
		if (img_normalise_sha(o->sha256, expected.hex, err) < 0)
			goto out;
	} else if (img_expected_from_sums(c, o, p.name, p.sums, p.sig, have_prev ? &prev : NULL,
					  &expected, &next, &sums, &sig, err) < 0) {
		goto out;
	}

	if (img_cache_hit(&p, o, have_prev ? &prev : NULL, &expected, sha256, &size)) {
		log_debug("'%s' is cached and current: '%s'", p.name, p.final);
		if (have_prev && !strcmp(prev.sha256, sha256)) {
			next.etag = prev.etag ? strdup(prev.etag) : NULL;
			next.last_modified = prev.last_modified ? strdup(prev.last_modified) : NULL;
			next.fetched_at = prev.fetched_at;
		} else {
			next.fetched_at = (int64_t)time(NULL);
		}
		if (expected.alg != CRYPTO_SHA256)
			memcpy(next.sha512, expected.hex, sizeof(next.sha512));
	} else {
		if (expected.alg == CRYPTO_SHA256 && img_paths_final(&p, expected.hex, err) < 0)
			goto out;
		if (img_download(c, o, &p, &expected, &next, &received, err) < 0)
			goto out;
		size = next.size;
		memcpy(sha256, next.sha256, sizeof(sha256));
		next.fetched_at = (int64_t)time(NULL);
	}
	next.url = strdup(o->image_url);
	if (!next.url) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	memcpy(next.sha256, sha256, sizeof(next.sha256));
	next.size = size;
	if (img_small_commit(&sums, p.sums, err) < 0 || img_small_commit(&sig, p.sig, err) < 0 ||
	    img_meta_write(p.meta, &next, true, err) < 0)
		goto out;
	if (have_prev && strcmp(prev.sha256, sha256)) {
		if (asprintf(&prev_path, "%s/%s/%s", p.cache, prev.sha256, p.name) < 0) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		if (!fs_exists(prev_path)) {
			free(prev_path);
			prev_path = NULL;
		}
	}
	out_path = strdup(p.final);
	if (!out_path) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	*ret = (struct img_result){.path = out_path,
				   .size = size,
				   .downloaded = received,
				   .changed = !have_prev || strcmp(prev.sha256, sha256),
				   .previous_path = prev_path};
	memcpy(ret->sha256, sha256, sizeof(ret->sha256));
	out_path = prev_path = NULL;
	rc = 0;
out:
	free(prev_path);
	free(out_path);
	img_small_release(&sums);
	img_small_release(&sig);
	img_meta_release(&prev);
	img_meta_release(&next);
	img_paths_release(&p);
	return rc;
}

void img_result_release(struct img_result *r)
{
	if (!r)
		return;
	free(r->path);
	free(r->previous_path);
	*r = (struct img_result)IMG_RESULT_INIT;
}