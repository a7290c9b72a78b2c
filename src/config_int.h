/* config_int: what the config module's files share and nobody else may use. It exists so the
 * module can be split by job (config.c loads and reports, config_parse.c knows the sections,
 * config_env.c the environment, config_check.c validates values) while include/config.h stays
 * the one public header: the loader's context, the problem reporter and the typed JSON getters
 * below have jansson and the module's internals in their signatures, which config.h must not
 * expose. Only src/config*.c and the config unit tests include it. */
#ifndef PHX_CONFIG_INT_H
#define PHX_CONFIG_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"

/* Each returns true when `s` has the named shape. Formats follow Proxmox's own verifiers
 * (pve-common JSONSchema.pm) where Proxmox defines one. */
bool cfg_is_dns_label(const char *s);	/* 1..63 of [A-Za-z0-9-], no hyphen at the ends */
bool cfg_is_dns_name(const char *s);	/* dot separated labels, <= 253 */
bool cfg_is_storage_id(const char *s);	/* pve-storage-id */
bool cfg_is_bridge(const char *s);	/* pve-bridge-id */
bool cfg_is_tag(const char *s);		/* pve-tag */
bool cfg_is_pool(const char *s);	/* pve-poolid */
bool cfg_is_package(const char *s);	/* Debian or RPM package name, optionally "=version" */
bool cfg_is_unit(const char *s);	/* systemd unit name */
bool cfg_is_username(const char *s);	/* Linux user name as useradd accepts by default */
bool cfg_is_token_id(const char *s);	/* USER@REALM!TOKENNAME */
bool cfg_is_feature_name(const char *s);
bool cfg_is_sha256_hex(const char *s);
bool cfg_is_timezone(const char *s);
bool cfg_is_machine(const char *s);	/* qemu-server Machine.pm machine type (x86) */
bool cfg_is_cpu_type(const char *s);	/* qemu-server CPUConfig.pm x86 model, host, custom-X */
bool cfg_is_ipv4(const char *s);	/* dotted quad */
bool cfg_is_ipv6(const char *s);
bool cfg_is_ip(const char *s);		/* IPv4 or IPv6 */
bool cfg_is_ipv6_cidr(const char *s);	/* "2001:db8::5/64" */
bool cfg_is_mac(const char *s);		/* unicast "BC:24:11:00:00:01" */

/* Dotted quad, each part 0..255 without leading zeros; *ret in host order. */
bool cfg_parse_ipv4(const char *s, uint32_t *ret);
/* "a.b.c.d/p", p 1..32. */
bool cfg_parse_cidr(const char *s, uint32_t *ret_addr, unsigned *ret_prefix);

/* The rule of a token ID, for messages (pve-access-control AccessControl.pm
 * pve_verify_tokenid, $token_subid_regex). */
#define CFG_EXPECT_TOKEN_ID                                                                       \
	"a token ID USER@REALM!TOKENNAME like 'phoenix@pve!ci' (realm and token name: a letter "  \
	"then 1 or more of A-Z a-z 0-9 . - _; the user: no space, ':' or '/')"
/* NULL when `s` is a token ID, else which part breaks the rule, written into buf (len
 * bytes; quotes the ID's parts, never a secret). */
const char *cfg_check_token_id(const char *s, char *buf, size_t len);
/* NULL when `s` is an acceptable URL, else a short reason (static string). */
const char *cfg_check_url(const char *s, bool https_only);
/* NULL when `s` is a crypt(3) hash we accept ($6$, $y$, $5$, $2b$), else a reason that never
 * quotes the value (it may be a plaintext password). */
const char *cfg_check_password_hash(const char *s);
/* True when Proxmox keeps the hash as given in cipassword: it matches
 * ^\$(?:[156]|2[ay])(\$.+){2} (qemu-server API2/Qemu.pm $update_vm_api). */
bool cfg_proxmox_keeps_hash(const char *s);
/* NULL when `s` is an OpenSSH public key line whose base64 blob decodes and names the same
 * key type, else a reason (static string). */
const char *cfg_check_ssh_key(const char *s);
/* Normalizes a SHA-256 certificate fingerprint (hex, with or without ':' separators, any case)
 * to "AA:BB:..." into ret (96 bytes); false when it is not one. */
bool cfg_normalize_fingerprint(const char *s, char ret[96]);

/* ---- the loader (config.c) ---------------------------------------------------------------- */

#define CFG_PATH_MAX 512 /* a JSON path in a message, "$.vms[3].network_config.ip" */
#define CFG_SHOW_MAX 60	 /* bytes of a user string quoted back in a message */

/* One load: the struct being filled and the problems found so far. Parsers never stop at a
 * problem; they report it and go on, so the user sees every mistake in one run. */
struct cfg_ctx {
	const char *file; /* name used in messages */
	struct cfg *cfg;
	struct buf msgs;
	size_t n_problems;
	size_t n_shown;
	bool oom;
};

/* Records "FILE: JPATH: message" (up to CFG_MAX_ERRORS lines are kept, the rest counted). */
void cfg_problem(struct cfg_ctx *ctx, const char *jpath, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Message pieces, written into `out` (n bytes) and returned: a user string quoted and cut at
 * CFG_SHOW_MAX ("'text'"), a wrongly typed value ("a string '4'", "an array"). */
const char *cfg_quote(const char *s, char *out, size_t n);
const char *cfg_got(const json_t *v, char *out, size_t n);
/* JSON paths into `out` (CFG_PATH_MAX bytes): "parent.key" (or "parent['odd key']"),
 * "parent[i]". */
void cfg_path_key(char *out, const char *parent, const char *key);
void cfg_path_idx(char *out, const char *parent, size_t i);

/* Allocation helpers: on out-of-memory they set ctx->oom and return NULL / do nothing, so
 * parsers need not check each call; the load fails with PHX_E_NOMEM at the end. */
char *cfg_strdup(struct cfg_ctx *ctx, const char *s);
void cfg_set_str(struct cfg_ctx *ctx, char **field, const char *s); /* frees the old value */
char *cfg_join(struct cfg_ctx *ctx, const char *dir, const char *rel);
/* `p` made absolute against the config file's directory (caller owns). */
char *cfg_resolve(struct cfg_ctx *ctx, const char *p);
bool cfg_is_regular(const char *path);
void cfg_strv_free(struct cfg_strv *v);
bool cfg_strv_has(const struct cfg_strv *v, const char *s); /* case-insensitive */
void cfg_strv_push(struct cfg_ctx *ctx, struct cfg_strv *v, const char *s);
void cfg_strv_copy(struct cfg_ctx *ctx, struct cfg_strv *dst, const struct cfg_strv *src);

/* Reports every key of `obj` not among `keys` ("did you mean" for a likely typo, a hint for
 * keys we refuse on purpose); keys starting with '_' are comments. */
void cfg_check_keys(struct cfg_ctx *ctx, json_t *obj, const char *jpath, const char *const *keys,
		    size_t n);
#define CFG_CHECK_KEYS(ctx, obj, jpath, keys)                                                      \
	cfg_check_keys(ctx, obj, jpath, keys, sizeof(keys) / sizeof(keys[0]))

/* Typed getters for obj[key] (jparent is obj's JSON path). A wrong value is reported and
 * treated as absent; a missing `required` key is reported. Results are borrowed from the JSON
 * document or written only when valid. */
const char *cfg_get_str(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
			bool required);
bool cfg_get_uint(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
		  bool required, unsigned long min, unsigned long max, unsigned long *out);
bool cfg_get_bool(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
		  bool *out);
/* The object or array at key (borrowed), NULL when absent or not one. */
json_t *cfg_get_obj(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
		    bool required);
json_t *cfg_get_array(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
		      bool required);
bool cfg_get_strv(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
		  bool (*valid)(const char *), const char *expect, bool single_ok,
		  struct cfg_strv *out);
void cfg_get_checked(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
		     bool required, bool (*valid)(const char *), const char *expect, char **field);
void cfg_get_local_file(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
			bool required, char **field);

/* The identity of a config entry: "sha256:<hex>" of obj as canonical JSON (keys sorted,
 * compact, keys starting with '_' dropped at every level) into ret (CFG_ID_MAX bytes). */
void cfg_entry_id(struct cfg_ctx *ctx, const json_t *obj, char ret[CFG_ID_MAX]);


/* ---- the sections (config_parse.c) -------------------------------------------------------- */

/* obj[key] as a tri-state boolean (unset when absent or bad, which is reported). */
enum cfg_tri cfg_get_tri(struct cfg_ctx *ctx, json_t *obj, const char *jpath, const char *key);
/* defaults.tags followed by obj's own `tags`, de-duplicated, into *out. */
void cfg_get_tags(struct cfg_ctx *ctx, json_t *obj, const char *jparent, struct cfg_strv *out);

/* Parses the whole document into ctx->cfg (whose path and dir are set), reporting problems. */
void cfg_parse_root(struct cfg_ctx *ctx, json_t *root);
/* Frees what a struct cfg_machine owns (not the struct). */
void cfg_machine_release(struct cfg_machine *m);
void cfg_nic_release(struct cfg_nic *n);
/* "https://h:8006/api2/json/" -> "https://h:8006" in place; for proxmox.api_url and the
 * environment alike. */
void cfg_normalize_api_url(char *url);

/* ---- containers (config_ct.c) ------------------------------------------------------------ */

/* Parses $.containers into ctx->cfg->cts. */
void cfg_parse_containers(struct cfg_ctx *ctx, json_t *root);
/* What needs the whole document: VMIDs and names unique across templates, vms and
 * containers, clone sources that exist. */
void cfg_ct_cross_check(struct cfg_ctx *ctx);
void cfg_ct_release(struct cfg_ct *ct);

#endif
