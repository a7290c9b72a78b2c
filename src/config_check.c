/* config_check: pure validators for config values (names, addresses, URLs, password hashes,
 * SSH keys) and the "did you mean" helper. No I/O, no allocation beyond the edit-distance
 * scratch row, so each can be unit tested with plain strings. */
#include "config_int.h"

#include <ctype.h>
#include <stdio.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool cfg_all_chars(const char *s, const char *extra, bool alnum)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (!((alnum && isalnum(c)) || (c && strchr(extra, c))))
			return false;
	}
	return true;
}

bool cfg_is_dns_label(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 63 && isalnum((unsigned char)s[0]) &&
	       isalnum((unsigned char)s[n - 1]) && cfg_all_chars(s, "-", true);
}

bool cfg_is_dns_name(const char *s)
{
	char label[64];
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	while (*s) {
		size_t len = strcspn(s, ".");

		if (len == 0 || len > 63)
			return false;
		memcpy(label, s, len);
		label[len] = '\0';
		if (!cfg_is_dns_label(label))
			return false;
		s += len;
		if (*s == '.' && !*++s)
			return false; /* trailing dot */
	}
	return true;
}

bool cfg_is_storage_id(const char *s)
{
	size_t n = strlen(s);

	return n >= 2 && isalpha((unsigned char)s[0]) && isalnum((unsigned char)s[n - 1]) &&
	       cfg_all_chars(s, "-_.", true);
}

bool cfg_is_bridge(const char *s)
{
	/* Linux interface names are at most 15 bytes (IFNAMSIZ - 1) */
	return *s && strlen(s) <= 15 && cfg_all_chars(s, "-_.", true);
}

bool cfg_is_tag(const char *s)
{
	unsigned char c = (unsigned char)*s;

	return (isalnum(c) || c == '_') && cfg_all_chars(s, "_-+.", true);
}

bool cfg_is_pool(const char *s)
{
	int levels = 1;

	if (!*s || *s == '/' || s[strlen(s) - 1] == '/' || strstr(s, "//"))
		return false;
	for (const char *p = s; *p; p++)
		levels += *p == '/';
	return levels <= 3 && cfg_all_chars(s, ".-_/", true);
}

bool cfg_is_package(const char *s)
{
	const char *eq = strchr(s, '=');
	size_t n = eq ? (size_t)(eq - s) : strlen(s);

	/* Debian policy 5.6.1 (lower case, digits, + - . ; at least two, starting alnum) widened
	 * to RPM names (NetworkManager, python3-ruamel_yaml): the family is known only later */
	if (n < 2 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(isalnum(c) || c == '+' || c == '-' || c == '.' || c == '_'))
			return false;
	}
	if (eq)
		return eq[1] && isdigit((unsigned char)eq[1]) && cfg_all_chars(eq + 1, ".+~:-", true);
	return true;
}

bool cfg_is_unit(const char *s)
{
	return *s && strlen(s) <= 255 && *s != '-' && cfg_all_chars(s, ":_.@-\\", true);
}

bool cfg_is_username(const char *s)
{
	unsigned char c = (unsigned char)*s;
	size_t n = strlen(s);

	if (n == 0 || n > 32 || !(islower(c) || c == '_'))
		return false;
	for (; *s; s++) {
		c = (unsigned char)*s;
		if (!(islower(c) || isdigit(c) || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* The parts of a token ID that may be a realm or a token name: pve-access-control's
 * $PVE::Auth::Plugin::realm_regex [A-Za-z][A-Za-z0-9\.\-_]+ (AccessControl.pm reuses it as
 * $token_subid_regex). */
static const char *cfg_check_realm_like(const char *s, size_t n, const char *what, char *buf,
					size_t len)
{
	if (n < 2) {
		snprintf(buf, len, "the %s '%.*s' has %zu character%s, 2 or more are needed", what,
			 (int)n, s, n, n == 1 ? "" : "s");
		return buf;
	}
	if (!isalpha((unsigned char)s[0])) {
		snprintf(buf, len, "the %s '%.*s' does not start with a letter", what, (int)n, s);
		return buf;
	}
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(".-_", s[i])) {
			snprintf(buf, len, "the %s '%.*s' has a '%c'", what, (int)n, s, s[i]);
			return buf;
		}
	return NULL;
}

const char *cfg_check_token_id(const char *s, char *buf, size_t len)
{
	const char *at = strchr(s, '@');
	const char *bang = strrchr(s, '!');

	/* pve_verify_tokenid: user_regex [^\s:/]+ '@' realm '!' token name; we also refuse a
	 * second '@' or a '!' in the user, which only makes the ID ambiguous */
	if (!at || !bang || bang < at) {
		snprintf(buf, len, "it is not USER@REALM!TOKENNAME");
		return buf;
	}
	if (at == s) {
		snprintf(buf, len, "the user is empty");
		return buf;
	}
	if (strchr(at + 1, '@')) {
		snprintf(buf, len, "it has more than one '@'");
		return buf;
	}
	for (const char *p = s; p < at; p++)
		if (*p == ':' || *p == '/' || *p == '!' || isspace((unsigned char)*p) ||
		    iscntrl((unsigned char)*p)) {
			snprintf(buf, len, "the user has a space, control character, ':', '/' or '!'");
			return buf;
		}
	if (cfg_check_realm_like(at + 1, (size_t)(bang - at - 1), "realm", buf, len) ||
	    cfg_check_realm_like(bang + 1, strlen(bang + 1), "token name", buf, len))
		return buf;
	return NULL;
}

bool cfg_is_token_id(const char *s)
{
	char why[160];

	return !cfg_check_token_id(s, why, sizeof(why));
}

bool cfg_is_feature_name(const char *s)
{
	unsigned char c = (unsigned char)*s;

	return (islower(c) || isdigit(c)) && strlen(s) <= 63 && cfg_all_chars(s, "_-", true);
}

bool cfg_is_sha256_hex(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s))
			return false;
	return true;
}

bool cfg_is_timezone(const char *s)
{
	/* tz database names: "UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+1" */
	if (!*s || *s == '/' || s[strlen(s) - 1] == '/' || strstr(s, "..") || strlen(s) > 64)
		return false;
	return isalpha((unsigned char)*s) && cfg_all_chars(s, "/_-+", true);
}

static bool cfg_matches(const char *re, const char *s)
{
	regex_t rx;
	bool ok;

	if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	ok = regexec(&rx, s, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

bool cfg_is_machine(const char *s)
{
	/* qemu-server Machine.pm $machine_fmt type pattern (x86 only: no virt), anchored as
	 * JSONSchema.pm anchors patterns */
	return strlen(s) <= 40 &&
	       cfg_matches("^(pc|pc(-i440fx)?-[0-9]+(\\.[0-9]+)+(\\+pve[0-9]+)?(\\.pxe)?|q35|"
			   "pc-q35-[0-9]+(\\.[0-9]+)+(\\+pve[0-9]+)?(\\.pxe)?)$",
			   s);
}

bool cfg_is_cpu_type(const char *s)
{
	/* qemu-server CPUConfig.pm: $cpu_models_by_arch->{x86_64}, host, the built-in
	 * x86-64-v* models, and custom-NAME models (validate_vm_cpu_conf) */
	static const char *const models[] = {
		"486", "pentium", "pentium2", "pentium3", "coreduo", "core2duo", "Conroe", "Penryn",
		"Nehalem", "Nehalem-IBRS", "Westmere", "Westmere-IBRS", "SandyBridge",
		"SandyBridge-IBRS", "IvyBridge", "IvyBridge-IBRS", "Haswell", "Haswell-IBRS",
		"Haswell-noTSX", "Haswell-noTSX-IBRS", "Broadwell", "Broadwell-IBRS",
		"Broadwell-noTSX", "Broadwell-noTSX-IBRS", "Skylake-Client", "Skylake-Client-IBRS",
		"Skylake-Client-noTSX-IBRS", "Skylake-Client-v4", "Skylake-Server",
		"Skylake-Server-IBRS", "Skylake-Server-noTSX-IBRS", "Skylake-Server-v4",
		"Skylake-Server-v5", "Cascadelake-Server", "Cascadelake-Server-v2",
		"Cascadelake-Server-noTSX", "Cascadelake-Server-v4", "Cascadelake-Server-v5",
		"Cooperlake", "Cooperlake-v2", "KnightsMill", "Icelake-Client",
		"Icelake-Client-noTSX", "Icelake-Server", "Icelake-Server-noTSX", "Icelake-Server-v3",
		"Icelake-Server-v4", "Icelake-Server-v5", "Icelake-Server-v6", "Icelake-Server-v7",
		"SapphireRapids", "SapphireRapids-v2", "SapphireRapids-v3", "SapphireRapids-v4",
		"GraniteRapids", "GraniteRapids-v2", "GraniteRapids-v3", "SierraForest",
		"SierraForest-v2", "SierraForest-v3", "ClearwaterForest", "athlon", "phenom",
		"Opteron_G1", "Opteron_G2", "Opteron_G3", "Opteron_G4", "Opteron_G5", "EPYC",
		"EPYC-IBPB", "EPYC-v3", "EPYC-v4", "EPYC-v5", "EPYC-Rome", "EPYC-Rome-v2",
		"EPYC-Rome-v3", "EPYC-Rome-v4", "EPYC-Rome-v5", "EPYC-Milan", "EPYC-Milan-v2",
		"EPYC-Milan-v3", "EPYC-Genoa", "EPYC-Genoa-v2", "EPYC-Turin", "kvm32", "kvm64",
		"qemu32", "qemu64", "max", "host", "x86-64-v2", "x86-64-v2-AES", "x86-64-v3",
		"x86-64-v4",
	};

	if (!strncmp(s, "custom-", 7))
		return s[7] && strlen(s) <= 7 + 64 && cfg_all_chars(s + 7, "-_.", true);
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
		if (!strcmp(s, models[i]))
			return true;
	return false;
}

bool cfg_parse_ipv4(const char *s, uint32_t *ret)
{
	uint32_t addr = 0;

	for (int i = 0; i < 4; i++) {
		unsigned v = 0;
		int digits = 0;

		while (isdigit((unsigned char)*s) && digits < 4) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		/* leading zeros are octal to inet_aton; refuse the ambiguity */
		if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && s[-digits] == '0'))
			return false;
		addr = addr << 8 | v;
		if (i < 3 && *s++ != '.')
			return false;
	}
	if (*s)
		return false;
	*ret = addr;
	return true;
}

bool cfg_parse_cidr(const char *s, uint32_t *ret_addr, unsigned *ret_prefix)
{
	const char *slash = strchr(s, '/');
	char ip[16];
	char *end;
	unsigned long prefix;
	uint32_t addr;

	if (!slash || (size_t)(slash - s) >= sizeof(ip) || !isdigit((unsigned char)slash[1]))
		return false;
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	prefix = strtoul(slash + 1, &end, 10);
	if (*end || prefix < 1 || prefix > 32 || (slash[1] == '0' && slash[2]))
		return false;
	if (!cfg_parse_ipv4(ip, &addr))
		return false;
	*ret_addr = addr;
	*ret_prefix = (unsigned)prefix;
	return true;
}

const char *cfg_check_url(const char *s, bool https_only)
{
	const char *host, *end, *p;

	if (!strncmp(s, "https://", 8))
		host = s + 8;
	else if (!strncmp(s, "http://", 7) && !https_only)
		host = s + 7;
	else
		return https_only ? "the scheme must be https" : "the scheme must be http or https";
	for (p = s; *p; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return "URL contains whitespace or control characters";
	end = host + strcspn(host, "/?#");
	if (memchr(host, '@', (size_t)(end - host)))
		return "credentials in the URL are not allowed";
	if (*host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));

		if (!close || close == host + 1)
			return "malformed IPv6 host";
		p = close + 1;
	} else {
		p = host;
		while (p < end && *p != ':')
			p++;
		if (p == host)
			return "URL has no host";
		for (const char *h = host; h < p; h++)
			if (!isalnum((unsigned char)*h) && *h != '-' && *h != '.' && *h != '_')
				return "URL host has invalid characters";
	}
	if (p < end) {
		unsigned long port = 0;

		if (*p != ':' || p + 1 == end)
			return "malformed port";
		for (p++; p < end; p++) {
			if (!isdigit((unsigned char)*p))
				return "malformed port";
			port = port * 10 + (unsigned long)(*p - '0');
			if (port > 65535)
				return "port out of range";
		}
		if (port == 0)
			return "port out of range";
	}
	return NULL;
}

static bool cfg_crypt_chars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(isalnum(c) || c == '.' || c == '/'))
			return false;
	}
	return true;
}

/* "$id$[rounds=N$]salt$hash" for SHA-crypt: salt 1..16, hash of `hash_len` characters */
static bool cfg_check_sha_crypt(const char *s, size_t hash_len)
{
	const char *salt = s + 3, *dollar;

	if (!strncmp(salt, "rounds=", 7)) {
		char *end;
		unsigned long r = strtoul(salt + 7, &end, 10);

		if (*end != '$' || r < 1000 || r > 999999999)
			return false;
		salt = end + 1;
	}
	dollar = strchr(salt, '$');
	if (!dollar || dollar == salt || dollar - salt > 16 ||
	    !cfg_crypt_chars(salt, (size_t)(dollar - salt)))
		return false;
	return strlen(dollar + 1) == hash_len && cfg_crypt_chars(dollar + 1, hash_len);
}

bool cfg_proxmox_keeps_hash(const char *s)
{
	/* ^\$(?:[156]|2[ay])(\$.+){2}: the prefix, then two more '$'-separated non-empty parts */
	const char *p, *d;

	if (s[0] != '$')
		return false;
	if (s[1] == '1' || s[1] == '5' || s[1] == '6')
		p = s + 2;
	else if (s[1] == '2' && (s[2] == 'a' || s[2] == 'y'))
		p = s + 3;
	else
		return false;
	if (*p != '$' || !p[1])
		return false;
	/* the first group's ".+" may hold '$': any later '$' with a character after it */
	for (d = strchr(p + 2, '$'); d; d = strchr(d + 1, '$'))
		if (d[1])
			return true;
	return false;
}

const char *cfg_check_password_hash(const char *s)
{
	static const char expected[] =
		"expected a crypt(3) hash starting with $6$, $y$, $5$ or $2b$";

	if (*s != '$')
		return "looks like a plaintext password, which is never accepted; store a hash "
		       "instead, e.g. from 'mkpasswd -m sha-512'";
	if (!strncmp(s, "$6$", 3))
		return cfg_check_sha_crypt(s, 86) ? NULL : "malformed SHA-512 crypt hash ($6$)";
	if (!strncmp(s, "$5$", 3))
		return cfg_check_sha_crypt(s, 43) ? NULL : "malformed SHA-256 crypt hash ($5$)";
	if (!strncmp(s, "$y$", 3)) {
		/* $y$<params>$<salt>$<hash of 43> */
		const char *params = s + 3, *salt, *hash;

		salt = strchr(params, '$');
		hash = salt ? strchr(salt + 1, '$') : NULL;
		if (!salt || !hash || salt == params || hash == salt + 1 ||
		    !cfg_crypt_chars(params, (size_t)(salt - params)) ||
		    !cfg_crypt_chars(salt + 1, (size_t)(hash - salt - 1)) ||
		    strlen(hash + 1) != 43 || !cfg_crypt_chars(hash + 1, 43))
			return "malformed yescrypt hash ($y$)";
		return NULL;
	}
	if (!strncmp(s, "$2b$", 4)) {
		/* $2b$NN$ + 22 salt + 31 hash characters */
		if (strlen(s) != 60 || !isdigit((unsigned char)s[4]) ||
		    !isdigit((unsigned char)s[5]) || s[6] != '$' || !cfg_crypt_chars(s + 7, 53))
			return "malformed bcrypt hash ($2b$)";
		if ((s[4] - '0') * 10 + (s[5] - '0') < 4 || (s[4] - '0') * 10 + (s[5] - '0') > 31)
			return "bcrypt cost out of range 04..31";
		return NULL;
	}
	if (!strncmp(s, "$1$", 3))
		return "MD5 crypt ($1$) is too weak; use 'mkpasswd -m sha-512'";
	return expected;
}

static int cfg_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes standard base64 with padding into out (cap bytes). Returns the length, or -1. */
static long cfg_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	size_t n = 0;
	unsigned acc = 0;
	int bits = 0;
	size_t pad = 0;

	if (len == 0 || len % 4)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v;

		if (in[i] == '=') {
			pad++;
			continue;
		}
		if (pad)
			return -1; /* data after padding */
		v = cfg_b64_value((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (pad > 2)
		return -1;
	return (long)n;
}

const char *cfg_check_ssh_key(const char *s)
{
	static const char *const types[] = {
		"ssh-ed25519",
		"ssh-rsa",
		"ecdsa-sha2-nistp256",
		"ecdsa-sha2-nistp384",
		"ecdsa-sha2-nistp521",
		"sk-ssh-ed25519@openssh.com",
		"sk-ecdsa-sha2-nistp256@openssh.com",
	};
	unsigned char blob[16384];
	const char *b64;
	size_t tlen, blen;
	long n;
	uint32_t inner;
	bool known = false;

	if (strstr(s, "PRIVATE KEY"))
		return "this is a private key; give the public key (the .pub file)";
	if (strchr(s, '\n'))
		return "expected one key on one line";
	tlen = strcspn(s, " \t");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strlen(types[i]) == tlen && !strncmp(s, types[i], tlen))
			known = true;
	if (!known) {
		if (!strncmp(s, "ssh-dss", 7))
			return "DSA keys (ssh-dss) are disabled in current OpenSSH";
		return "expected an OpenSSH public key starting with ssh-ed25519, ssh-rsa, "
		       "ecdsa-sha2-* or sk-*";
	}
	b64 = s + tlen;
	while (*b64 == ' ' || *b64 == '\t')
		b64++;
	blen = strcspn(b64, " \t");
	if (blen == 0)
		return "the key has no base64 data after its type";
	n = cfg_b64_decode(b64, blen, blob, sizeof(blob));
	if (n < 0)
		return "the key's base64 data does not decode";
	if (n < 4)
		return "the key data is truncated";
	inner = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 | (uint32_t)blob[2] << 8 | blob[3];
	if (inner != tlen || (long)inner > n - 4 || memcmp(blob + 4, s, tlen))
		return "the key data does not match its type (damaged or mislabelled key)";
	if ((long)inner + 4 == n)
		return "the key data is truncated";
	return NULL;
}

bool cfg_normalize_fingerprint(const char *s, char ret[96])
{
	char hex[64];
	size_t n = 0;
	bool colons = strchr(s, ':') != NULL;

	for (const char *p = s; *p; p++) {
		if (*p == ':') {
			/* colons, when used, separate every byte */
			if (n % 2 || n == 0 || p[1] == '\0' || p[1] == ':')
				return false;
			continue;
		}
		if (!isxdigit((unsigned char)*p) || n == sizeof(hex))
			return false;
		if (colons && n % 2 == 0 && p != s && p[-1] != ':')
			return false;
		hex[n++] = (char)toupper((unsigned char)*p);
	}
	if (n != sizeof(hex))
		return false;
	for (size_t i = 0; i < 32; i++) {
		ret[i * 3] = hex[i * 2];
		ret[i * 3 + 1] = hex[i * 2 + 1];
		ret[i * 3 + 2] = i == 31 ? '\0' : ':';
	}
	return true;
}

size_t cfg_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *d;
	size_t res;

	if (la > 64 || lb > 64)
		return (size_t)-1; /* keys are short; anything longer is no typo of ours */
	d = calloc((la + 1) * (lb + 1), sizeof(*d));
	if (!d)
		return (size_t)-1;
#define D(i, j) d[(i) * (lb + 1) + (j)]
	for (size_t i = 0; i <= la; i++)
		D(i, 0) = i;
	for (size_t j = 0; j <= lb; j++)
		D(0, j) = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = tolower((unsigned char)a[i - 1]) !=
				      tolower((unsigned char)b[j - 1]);
			size_t v = D(i - 1, j) + 1;

			if (D(i, j - 1) + 1 < v)
				v = D(i, j - 1) + 1;
			if (D(i - 1, j - 1) + cost < v)
				v = D(i - 1, j - 1) + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    D(i - 2, j - 2) + 1 < v)
				v = D(i - 2, j - 2) + 1;
			D(i, j) = v;
		}
	}
	res = D(la, lb);
#undef D
	free(d);
	return res;
}

const char *cfg_suggest(const char *word, const char *const *words, size_t n)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1;
	size_t len = strlen(word);
	/* like git's help.autocorrect: a third of the word, at least one, at most three edits */
	size_t limit = len / 3 < 1 ? 1 : len / 3 > 3 ? 3 : len / 3;

	for (size_t i = 0; i < n; i++) {
		size_t d = cfg_edit_distance(word, words[i]);
		size_t wl = strlen(words[i]);

		/* "memory" for "memory_mb": a clipped key is a typo too */
		if (len >= 4 && wl > len && !strncasecmp(word, words[i], len))
			d = d < limit ? d : limit;

		if (d < best_d) {
			best_d = d;
			best = words[i];
		}
	}
	return best_d <= limit ? best : NULL;
}
