/* image_sums: the SHA256SUMS parser (see image.h). Pure text processing, no I/O. */
#include "image.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SUMS_SHOW_MAX = 120 }; /* bytes of a bad line quoted back in an error */

static bool sums_is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int sums_fail(struct phx_err *err, const char *src, size_t lineno, const char *line,
		     size_t len, const char *why)
{
	char shown[SUMS_SHOW_MAX * 4 + 4];
	size_t o = 0;

	/* quote the line safely: it came from the network */
	for (size_t i = 0; i < len && i < SUMS_SHOW_MAX; i++) {
		unsigned char ch = (unsigned char)line[i];

		if (isprint(ch) && ch != '\'')
			shown[o++] = (char)ch;
		else
			o += (size_t)snprintf(shown + o, sizeof(shown) - o, "\\x%02x", ch);
	}
	if (len > SUMS_SHOW_MAX)
		o += (size_t)snprintf(shown + o, sizeof(shown) - o, "...");
	shown[o] = '\0';
	return phx_err_set(err, PHX_E_VERIFY, "%s:%zu: %s, got '%s'", src, lineno, why, shown);
}

static const char *sums_strip_dot(const char *name)
{
	while (name[0] == '.' && name[1] == '/')
		name += 2;
	return name;
}

/* Parses one non-blank, non-comment line into e (e->name allocated). */
static int sums_parse_line(const char *line, size_t len, const char *src, size_t lineno,
			   struct img_sums_entry *e, struct phx_err *err)
{
	size_t i;

	if (line[0] == '\\')
		return sums_fail(err, src, lineno, line, len,
				 "escaped file names are not supported");
	for (i = 0; i < len && sums_is_hex(line[i]); i++)
		;
	if (i != CRYPTO_SHA256_HEX_LEN || (i < len && line[i] != ' '))
		return sums_fail(err, src, lineno, line, len,
				 "expected 64 hex digits of a SHA-256 hash");
	if (len < i + 2 || (line[i + 1] != ' ' && line[i + 1] != '*'))
		return sums_fail(err, src, lineno, line, len,
				 "expected 'HASH  NAME' or 'HASH *NAME'");
	if (len == i + 2)
		return sums_fail(err, src, lineno, line, len, "missing file name");
	for (size_t k = i + 2; k < len; k++)
		if (line[k] == '\0')
			return sums_fail(err, src, lineno, line, len, "NUL byte in file name");
	for (size_t k = 0; k < CRYPTO_SHA256_HEX_LEN; k++)
		e->sha256[k] = (char)tolower((unsigned char)line[k]);
	e->sha256[CRYPTO_SHA256_HEX_LEN] = '\0';
	e->binary = line[i + 1] == '*';
	e->name = strndup(line + i + 2, len - i - 2);
	if (!e->name)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return 0;
}

int img_sums_parse(const char *text, size_t len, const char *source_name, struct img_sums **ret,
		   struct phx_err *err)
{
	struct img_sums *s = calloc(1, sizeof(*s));
	size_t alloc = 0, lineno = 0;
	const char *p = text, *end = text + len;

	if (!s)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (!source_name)
		source_name = "SHA256SUMS";
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = (size_t)((nl ? nl : end) - p);
		const char *line = p;
		struct img_sums_entry e;

		p = nl ? nl + 1 : end;
		lineno++;
		if (ll && line[ll - 1] == '\r')
			ll--;
		if (ll == 0 || line[0] == '#')
			continue;
		if (s->n == alloc) {
			size_t na = alloc ? alloc * 2 : 16;
			struct img_sums_entry *ne = realloc(s->entries, na * sizeof(*ne));

			if (!ne) {
				img_sums_free(s);
				return phx_err_set(err, PHX_E_NOMEM, "out of memory");
			}
			s->entries = ne;
			alloc = na;
		}
		if (sums_parse_line(line, ll, source_name, lineno, &e, err) < 0) {
			img_sums_free(s);
			return -1;
		}
		/* the same name twice with different hashes means the file is not trustworthy */
		for (size_t k = 0; k < s->n; k++) {
			if (strcmp(sums_strip_dot(s->entries[k].name), sums_strip_dot(e.name)) ||
			    !strcmp(s->entries[k].sha256, e.sha256))
				continue;
			phx_err_set(err, PHX_E_VERIFY,
				    "%s:%zu: '%s' listed again with another hash", source_name,
				    lineno, e.name);
			free(e.name);
			img_sums_free(s);
			return -1;
		}
		s->entries[s->n++] = e;
	}
	*ret = s;
	return 0;
}

const char *img_sums_lookup(const struct img_sums *sums, const char *filename)
{
	if (!sums || !filename)
		return NULL;
	filename = sums_strip_dot(filename);
	for (size_t i = 0; i < sums->n; i++)
		if (!strcmp(sums_strip_dot(sums->entries[i].name), filename))
			return sums->entries[i].sha256;
	return NULL;
}

void img_sums_free(struct img_sums *sums)
{
	if (!sums)
		return;
	for (size_t i = 0; i < sums->n; i++)
		free(sums->entries[i].name);
	free(sums->entries);
	free(sums);
}
