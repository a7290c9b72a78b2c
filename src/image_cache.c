/* image_cache: cache directory selection, cached-file names and the JSON metadata sidecars
 * (see image.h for the layout). Knows nothing about HTTP. */
#include "image.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fsutil.h"

void img_meta_release(struct img_meta *m)
{
	if (!m)
		return;
	free(m->url);
	free(m->etag);
	free(m->last_modified);
	free(m->sums_url);
	free(m->sums_etag);
	free(m->sums_last_modified);
	free(m->sig_url);
	free(m->sig_etag);
	free(m->sig_last_modified);
	*m = (struct img_meta)IMG_META_INIT;
}

static bool meta_is_hex(const char *s, size_t want)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == want;
}

/* Copies an optional string member; a present non-string is an error naming the key. */
static int meta_get_str(json_t *o, const char *key, const char *path, char **ret,
			struct phx_err *err)
{
	json_t *v = json_object_get(o, key); /* borrowed */

	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return phx_err_set(err, PHX_E_IO, "%s: $.%s: expected a string", path, key);
	*ret = strdup(json_string_value(v));
	if (!*ret)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return 0;
}

int img_meta_read(const char *path, struct img_meta *ret, struct phx_err *err)
{
	struct img_meta m = IMG_META_INIT;
	json_error_t jerr;
	json_t *root, *v;
	const char *sha;

	if (!fs_exists(path))
		return phx_err_set(err, PHX_E_NOTFOUND, "'%s' does not exist", path);
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return phx_err_set(err, PHX_E_IO, "%s:%d:%d: %s", path, jerr.line, jerr.column,
				   jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return phx_err_set(err, PHX_E_IO, "%s: expected a JSON object", path);
	}
	if (meta_get_str(root, "url", path, &m.url, err) < 0 ||
	    meta_get_str(root, "etag", path, &m.etag, err) < 0 ||
	    meta_get_str(root, "last_modified", path, &m.last_modified, err) < 0 ||
	    meta_get_str(root, "sums_url", path, &m.sums_url, err) < 0 ||
	    meta_get_str(root, "sums_etag", path, &m.sums_etag, err) < 0 ||
	    meta_get_str(root, "sums_last_modified", path, &m.sums_last_modified, err) < 0 ||
	    meta_get_str(root, "sig_url", path, &m.sig_url, err) < 0 ||
	    meta_get_str(root, "sig_etag", path, &m.sig_etag, err) < 0 ||
	    meta_get_str(root, "sig_last_modified", path, &m.sig_last_modified, err) < 0)
		goto fail;
	if (!m.url) {
		phx_err_set(err, PHX_E_IO, "%s: $.url: missing", path);
		goto fail;
	}
	sha = json_string_value(json_object_get(root, "sha512"));
	if (sha && !meta_is_hex(sha, CRYPTO_SHA512_HEX_LEN)) {
		phx_err_set(err, PHX_E_IO, "%s: $.sha512: expected 128 lower-case hex digits",
			    path);
		goto fail;
	}
	if (sha)
		memcpy(m.sha512, sha, sizeof(m.sha512));
	sha = json_string_value(json_object_get(root, "sha256"));
	if ((sha || !m.sha512[0]) && (!sha || !meta_is_hex(sha, CRYPTO_SHA256_HEX_LEN))) {
		phx_err_set(err, PHX_E_IO, "%s: $.sha256: expected 64 lower-case hex digits", path);
		goto fail;
	}
	if (sha)
		memcpy(m.sha256, sha, sizeof(m.sha256));
	v = json_object_get(root, "size");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		phx_err_set(err, PHX_E_IO, "%s: $.size: expected a non-negative integer", path);
		goto fail;
	}
	m.size = (uint64_t)json_integer_value(v);
	v = json_object_get(root, "fetched_at");
	m.fetched_at = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
	json_decref(root);
	*ret = m;
	return 0;
fail:
	json_decref(root);
	img_meta_release(&m);
	return -1;
}

/* json_string() of NULL is NULL, which json_object_set_new turns into an error: map to null. */
static json_t *meta_str(const char *s)
{
	return s ? json_string(s) : json_null();
}

int img_meta_write(const char *path, const struct img_meta *m, bool durable, struct phx_err *err)
{
	json_t *root = json_object();
	char *text = NULL;
	int rc;

	if (!root || json_object_set_new(root, "url", meta_str(m->url)) ||
	    json_object_set_new(root, "etag", meta_str(m->etag)) ||
	    json_object_set_new(root, "last_modified", meta_str(m->last_modified)) ||
	    json_object_set_new(root, "sha256", meta_str(m->sha256[0] ? m->sha256 : NULL)) ||
	    (m->sha512[0] && json_object_set_new(root, "sha512", json_string(m->sha512))) ||
	    json_object_set_new(root, "size", json_integer((json_int_t)m->size)) ||
	    json_object_set_new(root, "fetched_at", json_integer((json_int_t)m->fetched_at)) ||
	    json_object_set_new(root, "sums_url", meta_str(m->sums_url)) ||
	    json_object_set_new(root, "sums_etag", meta_str(m->sums_etag)) ||
	    json_object_set_new(root, "sums_last_modified", meta_str(m->sums_last_modified)) ||
	    json_object_set_new(root, "sig_url", meta_str(m->sig_url)) ||
	    json_object_set_new(root, "sig_etag", meta_str(m->sig_etag)) ||
	    json_object_set_new(root, "sig_last_modified", meta_str(m->sig_last_modified)) ||
	    !(text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) {
		json_decref(root);
		return phx_err_set(err, PHX_E_NOMEM, "encode '%s': out of memory", path);
	}
	json_decref(root);
	rc = durable ? fs_write_atomic(path, text, strlen(text), 0644, err)
		     : fs_write_atomic_lazy(path, text, strlen(text), 0644, err);
	free(text);
	return rc;
}

int img_cache_dir_default(char **ret, struct phx_err *err)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char *dir = NULL;
	int n;

	/* XDG says a relative XDG_CACHE_HOME must be ignored */
	if (xdg && xdg[0] == '/')
		n = asprintf(&dir, "%s/phoenix/images", xdg);
	else if (geteuid() != 0 && home && home[0] == '/')
		n = asprintf(&dir, "%s/.cache/phoenix/images", home);
	else
		n = asprintf(&dir, "/var/cache/phoenix/images");
	if (n < 0)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	*ret = dir;
	return 0;
}

int img_name_from_url(const char *url, char **ret, struct phx_err *err)
{
	const char *start = strstr(url, "://");
	const char *end, *slash;
	char *name;

	start = start ? start + 3 : url;
	end = start + strcspn(start, "?#");
	slash = memchr(start, '/', (size_t)(end - start));
	if (!slash)
		return phx_err_set(err, PHX_E_INPUT, "image URL '%s' has no file name", url);
	/* last segment of the path part */
	for (const char *p = slash; p < end; p++)
		if (*p == '/')
			slash = p;
	name = strndup(slash + 1, (size_t)(end - slash - 1));
	if (!name)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (!name[0] || !strcmp(name, ".") || !strcmp(name, "..")) {
		free(name);
		return phx_err_set(err, PHX_E_INPUT,
				   "image URL '%s' has no file name (it must end in one, like "
				   "'.../noble-server-cloudimg-amd64.img')",
				   url);
	}
	*ret = name;
	return 0;
}

/* The sidecar's one line: "<sha256> <size> <mtime s>.<ns> <inode>". */
static int img_sidecar_line(const struct stat *st, const char *sha, char *out, size_t len)
{
	return snprintf(out, len, "%s %jd %jd.%09ld %ju\n", sha, (intmax_t)st->st_size,
			(intmax_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (uintmax_t)st->st_ino);
}

int img_file_sha256(const char *path, char ret[CRYPTO_SHA256_HEX_LEN + 1], struct phx_err *err)
{
	char side[4096], want[160], line[160];
	struct phx_err ignored = PHX_ERR_INIT;
	struct buf b;
	struct stat st, now;

	if (snprintf(side, sizeof(side), "%s.sha256", path) >= (int)sizeof(side))
		return phx_err_set(err, PHX_E_IO, "path too long: '%s'", path);
	if (stat(path, &st) < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "stat '%s'", path);
	buf_init(&b, sizeof(line));
	if (fs_read_file(side, &b, &ignored) == 0 && b.data &&
	    b.len > CRYPTO_SHA256_HEX_LEN &&
	    strspn(b.data, "0123456789abcdef") == CRYPTO_SHA256_HEX_LEN) {
		memcpy(ret, b.data, CRYPTO_SHA256_HEX_LEN);
		ret[CRYPTO_SHA256_HEX_LEN] = '\0';
		img_sidecar_line(&st, ret, want, sizeof(want));
		if (b.len == strlen(want) && !memcmp(b.data, want, b.len)) {
			buf_release(&b);
			return 0;
		}
	}
	buf_release(&b);
	if (crypto_sha256_file(path, ret, err) < 0)
		return -1;
	img_sidecar_line(&st, ret, line, sizeof(line));
	/* a file that changed while it was read has a hash of neither version */
	if (stat(path, &now) < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "stat '%s'", path);
	img_sidecar_line(&now, ret, want, sizeof(want));
	if (strcmp(line, want))
		return phx_err_set(err, PHX_E_CONFLICT,
				   "'%s' changed while it was hashed: is another run customizing it?",
				   path);
	return fs_write_atomic(side, line, strlen(line), 0644, err);
}
