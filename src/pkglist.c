/* pkglist: package lists of built images and their differences (see pkglist.h). */
#include "pkglist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "fsutil.h"

void pkg_list_release(struct pkg_list *l)
{
	for (size_t i = 0; l && i < l->n; i++) {
		free(l->items[i].name);
		free(l->items[i].version);
		free(l->items[i].arch);
	}
	if (l) {
		free(l->items);
		l->items = NULL;
		l->n = 0;
	}
}

static int pkg_cmp(const void *a, const void *b)
{
	const struct pkg *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->arch, y->arch);
}

/* Splits one line into its three fields; false when it is not "a\tb\tc". */
static bool pkg_split(const char *line, size_t len, struct pkg *ret)
{
	const char *t1 = memchr(line, '\t', len), *t2, *end = line + len;

	if (!t1 || !(t2 = memchr(t1 + 1, '\t', (size_t)(end - t1 - 1))) || t1 == line ||
	    t2 == t1 + 1 || t2 + 1 == end || memchr(t2 + 1, '\t', (size_t)(end - t2 - 1)))
		return false;
	ret->name = strndup(line, (size_t)(t1 - line));
	ret->version = strndup(t1 + 1, (size_t)(t2 - t1 - 1));
	ret->arch = strndup(t2 + 1, (size_t)(end - t2 - 1));
	return true;
}

int pkg_parse(const char *text, struct pkg_list *ret, struct phx_err *err)
{
	struct pkg_list l = {NULL, 0};
	size_t cap = 0, lineno = 0;

	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		const size_t raw = nl ? (size_t)(nl - p) : strlen(p);
		size_t len = raw;
		struct pkg k;

		lineno++;
		if (len && p[len - 1] == '\r')
			len--;
		if (len) {
			if (!pkg_split(p, len, &k)) {
				pkg_list_release(&l);
				return phx_err_set(err, PHX_E_INPUT,
						   "package list line %zu: expected "
						   "'name<TAB>version<TAB>arch', got '%.*s'",
						   lineno, (int)(len > 80 ? 80 : len), p);
			}
			if (l.n == cap) {
				struct pkg *grown;

				cap = cap ? cap * 2 : 64;
				grown = realloc(l.items, cap * sizeof(*grown));
				if (!grown) {
					free(k.name), free(k.version), free(k.arch);
					pkg_list_release(&l);
					return phx_err_set(err, PHX_E_NOMEM, "out of memory");
				}
				l.items = grown;
			}
			l.items[l.n++] = k;
			if (!k.name || !k.version || !k.arch) {
				pkg_list_release(&l);
				return phx_err_set(err, PHX_E_NOMEM, "out of memory");
			}
		}
		p += raw + (nl ? 1 : 0);
	}
	if (l.n)
		qsort(l.items, l.n, sizeof(*l.items), pkg_cmp);
	*ret = l;
	return 0;
}

int pkg_canonical(const char *text, char **ret, struct phx_err *err)
{
	struct pkg_list l;
	struct buf b = BUF_INIT;

	if (pkg_parse(text, &l, err) < 0)
		return -1;
	buf_init(&b, 64u << 20);
	for (size_t i = 0; i < l.n; i++)
		if (buf_printf(&b, err, "%s\t%s\t%s\n", l.items[i].name, l.items[i].version,
			       l.items[i].arch) < 0) {
			pkg_list_release(&l);
			buf_release(&b);
			return -1;
		}
	pkg_list_release(&l);
	if (!b.data && buf_puts(&b, "", err) < 0)
		return -1;
	*ret = buf_detach(&b);
	return 0;
}

int pkg_summary(const char *text, char *ret, size_t len, struct phx_err *err)
{
	char hex[CRYPTO_SHA256_HEX_LEN + 1];
	size_t n = 0;

	for (const char *p = text; (p = strchr(p, '\n')); p++)
		n++;
	if (crypto_sha256_buf(text, strlen(text), hex, err) < 0)
		return -1;
	snprintf(ret, len, "%zu %s", n, hex);
	return 0;
}

int pkg_diff(const struct pkg_list *from, const struct pkg_list *to, struct pkg_delta **ret,
	     size_t *ret_n, struct phx_err *err)
{
	struct pkg_delta *d = calloc(from->n + to->n + 1, sizeof(*d));
	size_t i = 0, j = 0, n = 0;

	if (!d)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	/* both sorted by (name, arch): one merge pass */
	while (i < from->n || j < to->n) {
		const struct pkg *a = i < from->n ? &from->items[i] : NULL;
		const struct pkg *b = j < to->n ? &to->items[j] : NULL;
		int c = !a ? 1 : !b ? -1 : pkg_cmp(a, b);

		if (c < 0) {
			d[n++] =
				(struct pkg_delta){PKG_REMOVED, a->name, a->arch, a->version, NULL};
			i++;
		} else if (c > 0) {
			d[n++] = (struct pkg_delta){PKG_ADDED, b->name, b->arch, NULL, b->version};
			j++;
		} else {
			if (strcmp(a->version, b->version))
				d[n++] = (struct pkg_delta){PKG_CHANGED, a->name, a->arch,
							    a->version, b->version};
			i++;
			j++;
		}
	}
	*ret = d;
	*ret_n = n;
	return 0;
}

static int pkg_path(const char *cache_dir, const char *image_sha, char *ret, size_t len,
		    struct phx_err *err)
{
	if (strspn(image_sha, "0123456789abcdef") != CRYPTO_SHA256_HEX_LEN ||
	    image_sha[CRYPTO_SHA256_HEX_LEN])
		return phx_err_set(err, PHX_E_INPUT, "not an image sha256: '%.80s'", image_sha);
	if ((size_t)snprintf(ret, len, "%s/packages/%s.tsv", cache_dir, image_sha) >= len)
		return phx_err_set(err, PHX_E_INPUT, "cache path too long: '%s'", cache_dir);
	return 0;
}

int pkg_store(const char *cache_dir, const char *image_sha, const char *text, struct phx_err *err)
{
	char path[4096], dir[4096];

	if (pkg_path(cache_dir, image_sha, path, sizeof(path), err) < 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s/packages", cache_dir);
	if (fs_mkdir_p(dir, 0755, err) < 0 ||
	    fs_write_atomic(path, text, strlen(text), 0644, err) < 0)
		return phx_err_wrap(err, "keep the package list");
	return 0;
}

int pkg_load(const char *cache_dir, const char *image_sha, char **ret, struct phx_err *err)
{
	char path[4096];
	struct buf b = BUF_INIT;

	if (pkg_path(cache_dir, image_sha, path, sizeof(path), err) < 0)
		return -1;
	if (!fs_exists(path))
		return phx_err_set(err, PHX_E_NOTFOUND,
				   "no package list of image %.12s on this host ('%s'): lists are "
				   "kept where the image was built",
				   image_sha, path);
	buf_init(&b, 64u << 20);
	if (fs_read_file(path, &b, err) < 0 || (!b.data && buf_puts(&b, "", err) < 0)) {
		buf_release(&b);
		return -1;
	}
	*ret = buf_detach(&b);
	return 0;
}
