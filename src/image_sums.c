/* image_sums: the checksum-file parser (see image.h). Pure text processing, no I/O. The
 * format is picked per line by its content, never by configuration: GNU coreutils
 * ("HASH  name", "HASH *name"; sha256sum and sha512sum, told apart by the hash length), BSD
 * tagged ("SHA256 (name) = HASH", as `sha256sum --tag`, Fedora and Rocky write it), in any
 * mix, or a lone bare hash (a per-image sidecar), inside an OpenPGP clear-signed frame or not. The frame is only taken apart here:
 * whether its signature is good is pgp.h's business, and a caller that verified it parses
 * the text the verifier returned instead of the file. */
#include "image.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SUMS_SHOW_MAX = 120 }; /* bytes of a bad line quoted back in an error */

/* RFC 4880 section 7: the lines that open, split and close a cleartext signed message */
static const char sums_begin_signed[] = "-----BEGIN PGP SIGNED MESSAGE-----";
static const char sums_begin_sig[] = "-----BEGIN PGP SIGNATURE-----";
static const char sums_end_sig[] = "-----END PGP SIGNATURE-----";

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

static bool sums_line_is(const char *line, size_t len, const char *want)
{
	return len == strlen(want) && !memcmp(line, want, len);
}

/* Copies `n` hex digits folded to lower case, so comparisons with computed hashes work. */
static void sums_set_hex(struct img_sums_entry *e, const char *hex, size_t n)
{
	for (size_t k = 0; k < n; k++)
		e->hex[k] = (char)tolower((unsigned char)hex[k]);
	e->hex[n] = '\0';
}

static int sums_set_name(struct img_sums_entry *e, const char *name, size_t n, const char *src,
			 size_t lineno, const char *line, size_t len, struct phx_err *err)
{
	if (n == 0)
		return sums_fail(err, src, lineno, line, len, "missing file name");
	if (memchr(name, '\0', n))
		return sums_fail(err, src, lineno, line, len, "NUL byte in file name");
	e->name = strndup(name, n);
	if (!e->name)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return 0;
}

/* "SHA256 (name) = HASH": the name may hold parentheses, so the hash follows the last ") = ". */
static int sums_parse_bsd(const char *line, size_t len, size_t taglen, const char *src,
			  size_t lineno, struct img_sums_entry *e, struct phx_err *err)
{
	const char *name = line + taglen + 2, *sep = NULL, *hex;
	size_t hexlen;

	if (taglen == 6 && !memcmp(line, "SHA256", 6))
		e->alg = CRYPTO_SHA256;
	else if (taglen == 6 && !memcmp(line, "SHA512", 6))
		e->alg = CRYPTO_SHA512;
	else
		return sums_fail(err, src, lineno, line, len,
				 "unsupported hash algorithm (expected SHA256 or SHA512)");
	for (const char *p = name; p + 4 <= line + len; p++)
		if (!memcmp(p, ") = ", 4))
			sep = p;
	if (!sep)
		return sums_fail(err, src, lineno, line, len, "expected 'SHA256 (NAME) = HASH'");
	hex = sep + 4;
	hexlen = (size_t)(line + len - hex);
	for (size_t k = 0; k < hexlen; k++)
		if (!sums_is_hex(hex[k]))
			hexlen = 0;
	if (hexlen != crypto_alg_hex_len(e->alg))
		return sums_fail(err, src, lineno, line, len,
				 e->alg == CRYPTO_SHA256 ? "expected 64 hex digits of a SHA-256 hash"
							 : "expected 128 hex digits of a SHA-512 hash");
	sums_set_hex(e, hex, hexlen);
	e->binary = false;
	return sums_set_name(e, name, (size_t)(sep - name), src, lineno, line, len, err);
}

/* "HASH  name" or "HASH *name" (sha256sum(1), sha512sum(1)). */
static int sums_parse_gnu(const char *line, size_t len, const char *src, size_t lineno,
			  struct img_sums_entry *e, struct phx_err *err)
{
	size_t i;

	for (i = 0; i < len && sums_is_hex(line[i]); i++)
		;
	if ((i != CRYPTO_SHA256_HEX_LEN && i != CRYPTO_SHA512_HEX_LEN) ||
	    (i < len && line[i] != ' '))
		return sums_fail(err, src, lineno, line, len,
				 "expected 64 hex digits of a SHA-256 hash (or 128 of a SHA-512)");
	e->alg = i == CRYPTO_SHA256_HEX_LEN ? CRYPTO_SHA256 : CRYPTO_SHA512;
	if (i == len) {
		/* a sidecar holding the bare hash of the one file it is named after (Alpine's
		 * <image>.sha512): img_sums_parse allows it only alone */
		sums_set_hex(e, line, i);
		e->bare = true;
		e->name = strdup("");
		return e->name ? 0 : phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	if (len < i + 2 || (line[i + 1] != ' ' && line[i + 1] != '*'))
		return sums_fail(err, src, lineno, line, len,
				 "expected 'HASH  NAME' or 'HASH *NAME'");
	sums_set_hex(e, line, i);
	e->binary = line[i + 1] == '*';
	return sums_set_name(e, line + i + 2, len - i - 2, src, lineno, line, len, err);
}

/* Parses one non-blank, non-comment line into e (e->name allocated). */
static int sums_parse_line(const char *line, size_t len, const char *src, size_t lineno,
			   struct img_sums_entry *e, struct phx_err *err)
{
	size_t tag = 0;

	if (line[0] == '\\')
		return sums_fail(err, src, lineno, line, len,
				 "escaped file names are not supported");
	while (tag < len && ((line[tag] >= 'A' && line[tag] <= 'Z') ||
			     (line[tag] >= '0' && line[tag] <= '9') || line[tag] == '-'))
		tag++;
	/* a tag has a letter that is not a hex digit, so "ABCD... name" stays GNU */
	if (tag > 0 && tag + 1 < len && line[tag] == ' ' && line[tag + 1] == '(' &&
	    strspn(line, "0123456789ABCDEF") < tag)
		return sums_parse_bsd(line, len, tag, src, lineno, e, err);
	return sums_parse_gnu(line, len, src, lineno, e, err);
}

/* Where a line sits in a clear-signed file: outside, in the armor headers ("Hash: SHA256"
 * up to the first empty line), in the signed text, or in the signature block. */
enum sums_frame { SUMS_PLAIN, SUMS_HEADERS, SUMS_TEXT, SUMS_SIG, SUMS_AFTER };

static int sums_add(struct img_sums *s, size_t *alloc, struct img_sums_entry *e,
		    const char *src, size_t lineno, struct phx_err *err)
{
	/* the same name twice with different hashes means the file is not trustworthy */
	for (size_t k = 0; k < s->n; k++) {
		if (strcmp(sums_strip_dot(s->entries[k].name), sums_strip_dot(e->name)) ||
		    s->entries[k].alg != e->alg || !strcmp(s->entries[k].hex, e->hex))
			continue;
		phx_err_set(err, PHX_E_VERIFY, "%s:%zu: '%s' listed again with another hash", src,
			    lineno, e->name);
		free(e->name);
		return -1;
	}
	if (s->n == *alloc) {
		size_t na = *alloc ? *alloc * 2 : 16;
		struct img_sums_entry *ne = realloc(s->entries, na * sizeof(*ne));

		if (!ne) {
			free(e->name);
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		}
		s->entries = ne;
		*alloc = na;
	}
	s->entries[s->n++] = *e;
	return 0;
}

int img_sums_parse(const char *text, size_t len, const char *source_name, struct img_sums **ret,
		   struct phx_err *err)
{
	struct img_sums *s = calloc(1, sizeof(*s));
	enum sums_frame frame = SUMS_PLAIN;
	size_t alloc = 0, lineno = 0;
	const char *p = text, *end = text + len;
	bool seen_text = false;

	if (!s)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (!source_name)
		source_name = "SHA256SUMS";
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = (size_t)((nl ? nl : end) - p);
		const char *line = p;
		struct img_sums_entry e = {0};

		p = nl ? nl + 1 : end;
		lineno++;
		if (ll && line[ll - 1] == '\r')
			ll--;
		/* RFC 4880 7.1: trailing spaces and tabs are not part of a signed line */
		if (frame != SUMS_PLAIN)
			while (ll && (line[ll - 1] == ' ' || line[ll - 1] == '\t'))
				ll--;
		if (frame == SUMS_HEADERS) {
			if (ll == 0)
				frame = SUMS_TEXT;
			continue;
		}
		if (frame == SUMS_SIG) {
			if (sums_line_is(line, ll, sums_end_sig))
				frame = SUMS_AFTER;
			continue;
		}
		if (frame == SUMS_TEXT && sums_line_is(line, ll, sums_begin_sig)) {
			frame = SUMS_SIG;
			continue;
		}
		if (ll == 0)
			continue;
		if (sums_line_is(line, ll, sums_begin_signed)) {
			if (frame != SUMS_PLAIN || seen_text) {
				sums_fail(err, source_name, lineno, line, ll,
					  "a clear-signed message must be the whole file");
				goto fail;
			}
			frame = SUMS_HEADERS;
			continue;
		}
		if (frame == SUMS_AFTER) {
			/* unsigned text after a signature must not pass for signed text */
			sums_fail(err, source_name, lineno, line, ll,
				  "text after the end of the signature");
			goto fail;
		}
		seen_text = true;
		if (frame == SUMS_TEXT && ll >= 2 && line[0] == '-' && line[1] == ' ') {
			line += 2; /* dash-escaped (RFC 4880 7.1) */
			ll -= 2;
		}
		if (ll == 0 || line[0] == '#')
			continue;
		if (sums_parse_line(line, ll, source_name, lineno, &e, err) < 0)
			goto fail;
		if (s->n && (e.bare || s->entries[0].bare)) {
			free(e.name);
			sums_fail(err, source_name, lineno, line, ll,
				  "a hash without a file name must be alone in its file");
			goto fail;
		}
		if (sums_add(s, &alloc, &e, source_name, lineno, err) < 0)
			goto fail;
	}
	if (frame == SUMS_HEADERS || frame == SUMS_TEXT || frame == SUMS_SIG) {
		phx_err_set(err, PHX_E_VERIFY, "%s:%zu: clear-signed message ends before '%s'",
			    source_name, lineno, sums_end_sig);
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	img_sums_free(s);
	return -1;
}

bool img_sums_is_clearsigned(const char *text, size_t len)
{
	size_t n = strlen(sums_begin_signed);

	while (len && (*text == '\n' || *text == '\r' || *text == ' ' || *text == '\t')) {
		text++;
		len--;
	}
	return len >= n && !memcmp(text, sums_begin_signed, n);
}

const struct img_sums_entry *img_sums_lookup(const struct img_sums *sums, const char *filename)
{
	const struct img_sums_entry *found = NULL;

	if (!sums || !filename)
		return NULL;
	filename = sums_strip_dot(filename);
	/* SHA-256 first: it is the image's identity anyway, so no second hash is needed */
	for (size_t i = 0; i < sums->n; i++)
		if (!sums->entries[i].bare &&
		    !strcmp(sums_strip_dot(sums->entries[i].name), filename) &&
		    (!found || sums->entries[i].alg == CRYPTO_SHA256))
			found = &sums->entries[i];
	/* a bare hash is alone in its file (img_sums_parse makes sure) */
	if (!found && sums->n == 1 && sums->entries[0].bare)
		found = &sums->entries[0];
	return found;
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
