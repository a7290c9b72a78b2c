/* config_int: helpers shared by the config module's files (config.c parses and cross-checks,
 * config_check.c holds the pure value validators). Not part of the module's API: only
 * src/config*.c and the config unit tests include it. */
#ifndef PHX_CONFIG_INT_H
#define PHX_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each returns true when `s` has the named shape. Formats follow Proxmox's own verifiers
 * (pve-common JSONSchema.pm) where Proxmox defines one. */
bool cfg_is_dns_label(const char *s);	/* 1..63 of [A-Za-z0-9-], no hyphen at the ends */
bool cfg_is_dns_name(const char *s);	/* dot separated labels, <= 253 */
bool cfg_is_storage_id(const char *s);	/* pve-storage-id */
bool cfg_is_bridge(const char *s);	/* pve-bridge-id */
bool cfg_is_tag(const char *s);		/* pve-tag */
bool cfg_is_pool(const char *s);	/* pve-poolid */
bool cfg_is_package(const char *s);	/* Debian package name, optionally "=version" */
bool cfg_is_unit(const char *s);	/* systemd unit name */
bool cfg_is_username(const char *s);	/* Linux user name as useradd accepts by default */
bool cfg_is_token_id(const char *s);	/* USER@REALM!TOKENNAME */
bool cfg_is_feature_name(const char *s);
bool cfg_is_sha256_hex(const char *s);
bool cfg_is_timezone(const char *s);

/* Dotted quad, each part 0..255 without leading zeros; *ret in host order. */
bool cfg_parse_ipv4(const char *s, uint32_t *ret);
/* "a.b.c.d/p", p 1..32. */
bool cfg_parse_cidr(const char *s, uint32_t *ret_addr, unsigned *ret_prefix);

/* NULL when `s` is an acceptable URL, else a short reason (static string). */
const char *cfg_check_url(const char *s, bool https_only);
/* NULL when `s` is a crypt(3) hash we accept ($6$, $y$, $5$, $2b$), else a reason that never
 * quotes the value (it may be a plaintext password). */
const char *cfg_check_password_hash(const char *s);
/* NULL when `s` is an OpenSSH public key line whose base64 blob decodes and names the same
 * key type, else a reason (static string). */
const char *cfg_check_ssh_key(const char *s);
/* Normalizes a SHA-256 certificate fingerprint (hex, with or without ':' separators, any case)
 * to "AA:BB:..." into ret (96 bytes); false when it is not one. */
bool cfg_normalize_fingerprint(const char *s, char ret[96]);

/* Optimal string alignment distance (Levenshtein plus adjacent transposition). */
size_t cfg_edit_distance(const char *a, const char *b);
/* The closest of `words` to `word` when it is close enough to be a likely typo, else NULL. */
const char *cfg_suggest(const char *word, const char *const *words, size_t n);

#endif
