/* config: loads phoenix_vm_configs.json, owns the struct cfg it becomes (cfg_free, lookups)
 * and the machinery every section parser reports through: typed JSON getters that turn a
 * wrong value into one problem line naming the file and the JSON path, collecting all
 * problems instead of stopping at the first. jansson stays inside the config module. The
 * section parsers live in config_parse.c, the environment overrides and the token secret in
 * config_env.c, the value validators in config_check.c. Never touches the network. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "config_int.h"
#include "crypto.h"
#include "fsutil.h"

#define CFG_FILE_MAX ((size_t)16 << 20)

/* ---- messages ---------------------------------------------------------------------------- */

void cfg_problem(struct cfg_ctx *ctx, const char *jpath, const char *fmt, ...)
{
	char line[1024];
	int n;
	va_list ap;

	ctx->n_problems++;
	if (ctx->n_shown >= CFG_MAX_ERRORS)
		return;
	n = snprintf(line, sizeof(line), "%s: %s: ", ctx->file, jpath);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* keep room for the "... and N more" tail inside PHX_ERR_MSG_MAX */
	if (ctx->msgs.len + strlen(line) + 2 + 64 >= PHX_ERR_MSG_MAX)
		return;
	if ((ctx->msgs.len && buf_puts(&ctx->msgs, "\n", NULL) < 0) ||
	    buf_puts(&ctx->msgs, line, NULL) < 0) {
		ctx->oom = true;
		return;
	}
	ctx->n_shown++;
}

static const char *cfg_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "a value";
}

/* Quotes a user string for a message: at most CFG_SHOW_MAX bytes, control bytes as '?'. */
const char *cfg_quote(const char *s, char *out, size_t n)
{
	size_t o = 0, len = strlen(s);

	out[o++] = '\'';
	for (size_t i = 0; s[i] && o + 6 < n && i < CFG_SHOW_MAX; i++)
		out[o++] = iscntrl((unsigned char)s[i]) ? '?' : s[i];
	if (len > CFG_SHOW_MAX && o + 5 < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '\'';
	out[o] = '\0';
	return out;
}

/* The value as found: "'text'", "42", "4.5", "true", "null", "an object", "an array". */
static const char *cfg_show(const json_t *v, char *out, size_t n)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return cfg_quote(json_string_value(v), out, n);
	case JSON_INTEGER:
		snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return out;
	case JSON_REAL:
		snprintf(out, n, "%g", json_real_value(v));
		return out;
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	default:
		return cfg_kind(v);
	}
}

/* A value of the wrong type: "a string '4'", "a number 4.5", "null", "an array". */
const char *cfg_got(const json_t *v, char *out, size_t n)
{
	char tmp[CFG_SHOW_MAX + 16];

	if (json_is_object(v) || json_is_array(v) || json_is_null(v))
		return cfg_kind(v);
	snprintf(out, n, "%s %s", cfg_kind(v), cfg_show(v, tmp, sizeof(tmp)));
	return out;
}

static bool cfg_is_ident(const char *key)
{
	if (!*key || isdigit((unsigned char)*key))
		return false;
	for (; *key; key++)
		if (!isalnum((unsigned char)*key) && *key != '_' && *key != '-')
			return false;
	return true;
}

void cfg_path_key(char *out, const char *parent, const char *key)
{
	char q[CFG_SHOW_MAX + 16];

	if (cfg_is_ident(key))
		snprintf(out, CFG_PATH_MAX, "%s.%s", parent, key);
	else
		snprintf(out, CFG_PATH_MAX, "%s[%s]", parent, cfg_quote(key, q, sizeof(q)));
}

void cfg_path_idx(char *out, const char *parent, size_t i)
{
	snprintf(out, CFG_PATH_MAX, "%s[%zu]", parent, i);
}

/* ---- memory and paths -------------------------------------------------------------------- */

char *cfg_strdup(struct cfg_ctx *ctx, const char *s)
{
	char *p = s ? strdup(s) : NULL;

	if (s && !p)
		ctx->oom = true;
	return p;
}

void cfg_set_str(struct cfg_ctx *ctx, char **field, const char *s)
{
	free(*field);
	*field = cfg_strdup(ctx, s);
}

char *cfg_join(struct cfg_ctx *ctx, const char *dir, const char *rel)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, rel) < 0) {
		ctx->oom = true;
		return NULL;
	}
	return p;
}

/* An absolute path for a local file named in the config: relative means relative to the
 * config file's directory, so a config works the same from any working directory. */
char *cfg_resolve(struct cfg_ctx *ctx, const char *p)
{
	return p[0] == '/' ? cfg_strdup(ctx, p) : cfg_join(ctx, ctx->cfg->dir, p);
}

bool cfg_is_regular(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void cfg_strv_free(struct cfg_strv *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->items[i]);
	free(v->items);
	v->items = NULL;
	v->n = 0;
}

bool cfg_strv_has(const struct cfg_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcasecmp(v->items[i], s))
			return true;
	return false;
}

void cfg_strv_push(struct cfg_ctx *ctx, struct cfg_strv *v, const char *s)
{
	char **items = realloc(v->items, (v->n + 1) * sizeof(*items));
	char *copy = cfg_strdup(ctx, s);

	if (!items || !copy) {
		free(copy);
		if (items)
			v->items = items;
		ctx->oom = true;
		return;
	}
	v->items = items;
	v->items[v->n++] = copy;
}

/* Drops the comment keys of v and everything in it, so a comment never changes an identity. */
static void cfg_drop_comments(json_t *v)
{
	const char *key;
	json_t *item;
	void *tmp;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach_safe(v, tmp, key, item)
		{
			if (key[0] == '_')
				json_object_del(v, key);
			else
				cfg_drop_comments(item);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item)
			cfg_drop_comments(item);
	}
}

void cfg_entry_id(struct cfg_ctx *ctx, const json_t *obj, char ret[CFG_ID_MAX])
{
	json_t *copy = json_deep_copy(obj);
	char hex[CRYPTO_SHA256_HEX_LEN + 1];
	char *text = NULL;

	ret[0] = '\0';
	if (copy) {
		cfg_drop_comments(copy);
		text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	}
	if (!text || crypto_sha256_buf(text, strlen(text), hex, NULL) < 0)
		ctx->oom = true;
	else
		snprintf(ret, CFG_ID_MAX, "sha256:%s", hex);
	free(text);
	json_decref(copy);
}

void cfg_strv_copy(struct cfg_ctx *ctx, struct cfg_strv *dst, const struct cfg_strv *src)
{
	for (size_t i = 0; i < src->n; i++)
		cfg_strv_push(ctx, dst, src->items[i]);
}

/* ---- typed getters: report a problem and return "absent" on a wrong value ---------------- */

struct cfg_hint {
	const char *key;
	const char *hint;
};

static const struct cfg_hint cfg_hints[] = {
	{"token_secret",
	 "the token secret is never read from the config file; put it in a file only you can read "
	 "and set proxmox.token_secret_file (or PVE_TOKEN_SECRET_FILE), or set PVE_TOKEN_SECRET"},
	{"password", "plaintext passwords are not accepted; set password_hash to the output of "
		     "'mkpasswd -m sha-512'"},
};

void cfg_check_keys(struct cfg_ctx *ctx, json_t *obj, const char *jpath, const char *const *keys,
		    size_t n)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		char kpath[CFG_PATH_MAX], q[CFG_SHOW_MAX + 16];
		const char *hint = NULL, *best;
		bool known = false;

		(void)v;
		if (key[0] == '_')
			continue; /* "_comment" and friends: JSON has no comments */
		for (size_t i = 0; i < n && !known; i++)
			known = !strcmp(key, keys[i]);
		if (known)
			continue;
		cfg_path_key(kpath, jpath, key);
		for (size_t i = 0; i < sizeof(cfg_hints) / sizeof(cfg_hints[0]); i++)
			if (!strcmp(key, cfg_hints[i].key))
				hint = cfg_hints[i].hint;
		if (hint) {
			cfg_problem(ctx, kpath, "key not allowed: %s", hint);
			continue;
		}
		best = cfg_suggest(key, keys, n);
		if (best)
			cfg_problem(ctx, kpath, "unknown key %s; did you mean '%s'?",
				    cfg_quote(key, q, sizeof(q)), best);
		else
			cfg_problem(ctx, kpath, "unknown key %s", cfg_quote(key, q, sizeof(q)));
	}
}

static void cfg_missing(struct cfg_ctx *ctx, const char *jparent, const char *key)
{
	char kpath[CFG_PATH_MAX];

	cfg_path_key(kpath, jparent, key);
	cfg_problem(ctx, kpath, "required key is missing");
}

/* Borrowed string value (valid while the JSON document lives), or NULL when absent/bad. */
const char *cfg_get_str(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
			bool required)
{
	json_t *v = json_object_get(obj, key);
	char kpath[CFG_PATH_MAX], got[CFG_SHOW_MAX + 32];

	if (!v) {
		if (required)
			cfg_missing(ctx, jparent, key);
		return NULL;
	}
	cfg_path_key(kpath, jparent, key);
	if (!json_is_string(v)) {
		cfg_problem(ctx, kpath, "expected a string, got %s", cfg_got(v, got, sizeof(got)));
		return NULL;
	}
	if (!*json_string_value(v)) {
		cfg_problem(ctx, kpath, "expected a non-empty string, got ''");
		return NULL;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		cfg_problem(ctx, kpath, "string contains a NUL character");
		return NULL;
	}
	return json_string_value(v);
}

/* True when present and valid (then *out is written). */
bool cfg_get_uint(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
		  bool required, unsigned long min, unsigned long max, unsigned long *out)
{
	json_t *v = json_object_get(obj, key);
	char kpath[CFG_PATH_MAX], got[CFG_SHOW_MAX + 32];

	if (!v) {
		if (required)
			cfg_missing(ctx, jparent, key);
		return false;
	}
	cfg_path_key(kpath, jparent, key);
	if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
	    json_integer_value(v) > (json_int_t)max) {
		cfg_problem(ctx, kpath, "expected an integer from %lu to %lu, got %s", min, max,
			    json_is_integer(v) ? cfg_show(v, got, sizeof(got))
					       : cfg_got(v, got, sizeof(got)));
		return false;
	}
	*out = (unsigned long)json_integer_value(v);
	return true;
}

bool cfg_get_bool(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key, bool *out)
{
	json_t *v = json_object_get(obj, key);
	char kpath[CFG_PATH_MAX], got[CFG_SHOW_MAX + 32];

	if (!v)
		return false;
	if (!json_is_boolean(v)) {
		cfg_path_key(kpath, jparent, key);
		cfg_problem(ctx, kpath, "expected true or false, got %s",
			    cfg_got(v, got, sizeof(got)));
		return false;
	}
	*out = json_is_true(v);
	return true;
}

/* The value at key (borrowed) when it has JSON type `type` (an object or an array), NULL
 * when absent or of another type. */
static json_t *cfg_get_typed(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
			     bool required, json_type type)
{
	json_t *v = json_object_get(obj, key);
	char kpath[CFG_PATH_MAX], got[CFG_SHOW_MAX + 32];

	if (!v) {
		if (required)
			cfg_missing(ctx, jparent, key);
		return NULL;
	}
	if (json_typeof(v) != type) {
		cfg_path_key(kpath, jparent, key);
		cfg_problem(ctx, kpath, "expected %s, got %s",
			    type == JSON_OBJECT ? "an object" : "an array",
			    cfg_got(v, got, sizeof(got)));
		return NULL;
	}
	return v;
}

json_t *cfg_get_obj(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
		    bool required)
{
	return cfg_get_typed(ctx, obj, jparent, key, required, JSON_OBJECT);
}

json_t *cfg_get_array(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
		      bool required)
{
	return cfg_get_typed(ctx, obj, jparent, key, required, JSON_ARRAY);
}

/* A string list. `valid` may be NULL (any non-empty string); `expect` describes one item for
 * messages ("a Debian package name like 'curl'"). With `single_ok`, a lone string is accepted as
 * a one-item list. Returns true when the key was present (even with bad items). */
bool cfg_get_strv(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
		  bool (*valid)(const char *), const char *expect, bool single_ok,
		  struct cfg_strv *out)
{
	json_t *v = json_object_get(obj, key);
	char kpath[CFG_PATH_MAX], ipath[CFG_PATH_MAX], got[CFG_SHOW_MAX + 32];
	size_t i;
	json_t *item;

	if (!v)
		return false;
	cfg_path_key(kpath, jparent, key);
	if (single_ok && json_is_string(v)) {
		const char *s = cfg_get_str(ctx, obj, jparent, key, true);

		if (s && valid && !valid(s))
			cfg_problem(ctx, kpath, "expected %s, got %s", expect,
				    cfg_quote(s, got, sizeof(got)));
		else if (s)
			cfg_strv_push(ctx, out, s);
		return true;
	}
	if (!json_is_array(v)) {
		cfg_problem(ctx, kpath, "expected an array of strings, got %s",
			    cfg_got(v, got, sizeof(got)));
		return true;
	}
	json_array_foreach(v, i, item) {
		const char *s = json_string_value(item);

		cfg_path_idx(ipath, kpath, i);
		if (!json_is_string(item) || !*s) {
			cfg_problem(ctx, ipath, "expected %s, got %s", expect,
				    json_is_string(item) ? "''" : cfg_got(item, got, sizeof(got)));
			continue;
		}
		if (strlen(s) != json_string_length(item)) {
			cfg_problem(ctx, ipath, "string contains a NUL character");
			continue;
		}
		if (valid && !valid(s)) {
			cfg_problem(ctx, ipath, "expected %s, got %s", expect,
				    cfg_quote(s, got, sizeof(got)));
			continue;
		}
		if (cfg_strv_has(out, s)) {
			cfg_problem(ctx, ipath, "%s is listed twice", cfg_quote(s, got, sizeof(got)));
			continue;
		}
		cfg_strv_push(ctx, out, s);
	}
	return true;
}

/* A string key that must satisfy `valid`; copied into *field (replacing a default). */
void cfg_get_checked(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
		     bool required, bool (*valid)(const char *), const char *expect, char **field)
{
	const char *s = cfg_get_str(ctx, obj, jparent, key, required);
	char kpath[CFG_PATH_MAX], q[CFG_SHOW_MAX + 16];

	if (!s)
		return;
	if (valid && !valid(s)) {
		cfg_path_key(kpath, jparent, key);
		cfg_problem(ctx, kpath, "expected %s, got %s", expect, cfg_quote(s, q, sizeof(q)));
		return;
	}
	cfg_set_str(ctx, field, s);
}

/* A local file path key: resolved against the config directory; must name a regular file. */
void cfg_get_local_file(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
			bool required, char **field)
{
	const char *s = cfg_get_str(ctx, obj, jparent, key, required);
	char kpath[CFG_PATH_MAX], q[CFG_SHOW_MAX + 16];
	char *path;

	if (!s)
		return;
	path = cfg_resolve(ctx, s);
	if (!path)
		return;
	if (!cfg_is_regular(path)) {
		cfg_path_key(kpath, jparent, key);
		cfg_problem(ctx, kpath, "expected an existing file, got %s (no file at '%s')",
			    cfg_quote(s, q, sizeof(q)), path);
		free(path);
		return;
	}
	free(*field);
	*field = path;
}

/* ---- load -------------------------------------------------------------------------------- */

static int cfg_set_dir(struct cfg *cfg, const char *name, struct phx_err *err)
{
	char *copy = strdup(name);
	char *slash, *real;
	const char *dir = ".";

	if (!copy)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	slash = strrchr(copy, '/');
	if (slash == copy)
		dir = "/";
	else if (slash) {
		*slash = '\0';
		dir = copy;
	}
	real = realpath(dir, NULL);
	if (!real) {
		int e = errno;

		free(copy);
		return phx_err_set_errno(err, PHX_E_INPUT, e, "%s: directory", name);
	}
	free(copy);
	cfg->dir = real;
	return 0;
}

static int cfg_parse_doc(json_t *root, const char *name, struct cfg **ret, struct phx_err *err)
{
	struct cfg_ctx ctx = {.file = name};
	struct cfg *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	ctx.cfg = cfg;
	buf_init(&ctx.msgs, PHX_ERR_MSG_MAX);
	cfg->path = strdup(name);
	if (!cfg->path) {
		cfg_free(cfg);
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	if (cfg_set_dir(cfg, name, err) < 0) {
		cfg_free(cfg);
		return -1;
	}
	cfg_parse_root(&ctx, root);
	if (ctx.oom) {
		buf_release(&ctx.msgs);
		cfg_free(cfg);
		return phx_err_set(err, PHX_E_NOMEM, "%s: out of memory", name);
	}
	if (ctx.n_problems) {
		if (ctx.n_problems > ctx.n_shown)
			buf_printf(&ctx.msgs, NULL, "\n%s: ... and %zu more problems", name,
				   ctx.n_problems - ctx.n_shown);
		phx_err_set(err, PHX_E_INPUT, "%s", buf_str(&ctx.msgs));
		buf_release(&ctx.msgs);
		cfg_free(cfg);
		return -1;
	}
	buf_release(&ctx.msgs);
	*ret = cfg;
	return 0;
}

static int cfg_load_buf(const char *json, size_t len, const char *name, struct cfg **ret,
			struct phx_err *err)
{
	json_error_t jerr;
	json_t *root;
	int r;

	/* duplicate keys are an error: the second would silently win otherwise */
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return phx_err_set(err, PHX_E_INPUT, "%s:%d:%d: %s", name, jerr.line, jerr.column,
				   jerr.text);
	r = cfg_parse_doc(root, name, ret, err);
	json_decref(root);
	return r;
}

int cfg_load(const char *path, struct cfg **ret, struct phx_err *err)
{
	struct phx_err ferr = PHX_ERR_INIT;
	struct buf b;
	int r;

	buf_init(&b, CFG_FILE_MAX);
	if (fs_read_file(path, &b, &ferr) < 0) {
		buf_release(&b);
		/* a missing or unreadable config is bad input: nothing was touched */
		return phx_err_set(err, ferr.code == PHX_E_NOMEM ? PHX_E_NOMEM : PHX_E_INPUT,
				   "config %s", ferr.msg);
	}
	r = cfg_load_buf(buf_str(&b), b.len, path, ret, err);
	buf_release(&b);
	return r;
}

/* ---- free and lookups -------------------------------------------------------------------- */

static void cfg_template_release(struct cfg_template *t)
{
	free(t->name);
	free(t->image_url);
	free(t->artifact);
	free(t->checksum_url);
	free(t->sha256);
	free(t->signature_url);
	free(t->keyring);
	free(t->os);
	free(t->type);
	free(t->node);
	cfg_strv_free(&t->nodes);
	cfg_strv_free(&t->customize.packages);
	cfg_strv_free(&t->customize.debs);
	cfg_strv_free(&t->customize.enable_services);
	cfg_strv_free(&t->customize.run);
	for (size_t i = 0; i < t->customize.n_files; i++) {
		free(t->customize.files[i].path);
		free(t->customize.files[i].content);
		free(t->customize.files[i].source);
	}
	free(t->customize.files);
	free(t->customize.timezone);
	for (size_t i = 0; i < t->customize.n_users; i++) {
		struct cfg_cust_user *u = &t->customize.users[i];

		free(u->name);
		cfg_strv_free(&u->groups);
		free(u->shell);
		cfg_strv_free(&u->ssh_public_keys);
		free(u->password_hash);
		free(u->git_name);
		free(u->git_email);
	}
	free(t->customize.users);
	free(t->ct.storage);
	free(t->ct.template_storage);
	free(t->ct.bridge);
	free(t->ct.ostype);
	free(t->hardware.bridge);
	free(t->hardware.storage);
	cfg_machine_release(&t->hardware.mach);
	cfg_strv_free(&t->tags);
}

static void cfg_parts_free(struct cfg_part *parts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(parts[i].type);
		free(parts[i].content);
		free(parts[i].source);
	}
	free(parts);
}

static void cfg_vm_release(struct cfg_vm *vm)
{
	free(vm->name);
	free(vm->clone_from_template);
	free(vm->template_version);
	free(vm->network.ip);
	free(vm->network.gw);
	free(vm->network.bridge);
	free(vm->user.username);
	free(vm->user.password_hash);
	cfg_strv_free(&vm->user.ssh_public_keys);
	cfg_strv_free(&vm->features);
	free(vm->node);
	free(vm->storage);
	free(vm->pool);
	cfg_strv_free(&vm->tags);
	free(vm->description);
	cfg_strv_free(&vm->packages);
	cfg_strv_free(&vm->dns_servers);
	free(vm->search_domain);
	cfg_machine_release(&vm->mach);
	for (size_t i = 0; i < vm->n_nics; i++)
		cfg_nic_release(&vm->nics[i]);
	free(vm->ha.state);
	free(vm->ha.group);
	free(vm->ha.comment);
	free(vm->nics);
	cfg_parts_free(vm->user_data_parts, vm->n_user_data_parts);
	cfg_parts_free(vm->vendor_data, vm->n_vendor_data);
}

void cfg_free(struct cfg *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->dir);
	free(cfg->proxmox.api_url);
	free(cfg->proxmox.token_id);
	free(cfg->proxmox.token_secret_file);
	free(cfg->proxmox.node);
	free(cfg->proxmox.tls.ca_file);
	free(cfg->proxmox.tls.fingerprint);
	free(cfg->defaults.node);
	free(cfg->defaults.storage);
	free(cfg->defaults.import_storage);
	free(cfg->defaults.iso_storage);
	free(cfg->defaults.template_storage);
	free(cfg->defaults.bridge);
	cfg_strv_free(&cfg->defaults.dns_servers);
	free(cfg->defaults.search_domain);
	free(cfg->defaults.snippets_dir);
	cfg_strv_free(&cfg->defaults.tags);
	cfg_parts_free(cfg->defaults.vendor_data, cfg->defaults.n_vendor_data);
	for (size_t i = 0; i < cfg->n_templates; i++)
		cfg_template_release(&cfg->templates[i]);
	free(cfg->templates);
	for (size_t i = 0; i < cfg->n_features; i++) {
		free(cfg->features[i].name);
		free(cfg->features[i].script);
		free(cfg->features[i].script_path);
		cfg_strv_free(&cfg->features[i].packages);
	}
	free(cfg->features);
	for (size_t i = 0; i < cfg->n_vms; i++)
		cfg_vm_release(&cfg->vms[i]);
	free(cfg->vms);
	for (size_t i = 0; i < cfg->n_cts; i++)
		cfg_ct_release(&cfg->cts[i]);
	free(cfg->cts);
	free(cfg);
}

bool cfg_template_owns(const struct cfg_template *t, unsigned long vmid)
{
	if (t->vmid && t->vmid == vmid)
		return true;
	return t->has_versions && vmid >= t->versions.vmid_min && vmid <= t->versions.vmid_max;
}

const struct cfg_vm *cfg_find_vm(const struct cfg *cfg, unsigned long vmid)
{
	for (size_t i = 0; i < cfg->n_vms; i++)
		if (cfg->vms[i].vmid == vmid)
			return &cfg->vms[i];
	return NULL;
}

const struct cfg_template *cfg_find_template(const struct cfg *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_templates; i++)
		if (cfg->templates[i].name && !strcasecmp(cfg->templates[i].name, name))
			return &cfg->templates[i];
	return NULL;
}

/* Matches a template's vmid or any VMID inside its version range. */
static const struct cfg_template *cfg_find_template_by_vmid(const struct cfg *cfg,
							    unsigned long vmid)
{
	for (size_t i = 0; i < cfg->n_templates; i++)
		if (cfg_template_owns(&cfg->templates[i], vmid))
			return &cfg->templates[i];
	return NULL;
}

const struct cfg_feature *cfg_find_feature(const struct cfg *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_features; i++)
		if (cfg->features[i].name && !strcmp(cfg->features[i].name, name))
			return &cfg->features[i];
	return NULL;
}

const struct cfg_template *cfg_vm_template(const struct cfg *cfg, const struct cfg_vm *vm)
{
	if (vm->clone_from_template)
		return cfg_find_template(cfg, vm->clone_from_template);
	if (vm->clone_from_vmid)
		return cfg_find_template_by_vmid(cfg, vm->clone_from_vmid);
	return NULL;
}

const char *cfg_default_node(const struct cfg *cfg)
{
	return cfg->defaults.node ? cfg->defaults.node : cfg->proxmox.node;
}

const struct cfg_part *cfg_vm_vendor_data(const struct cfg *cfg, const struct cfg_vm *vm,
					  size_t *ret_n)
{
	*ret_n = vm->has_vendor_data ? vm->n_vendor_data : cfg->defaults.n_vendor_data;
	return vm->has_vendor_data ? vm->vendor_data : cfg->defaults.vendor_data;
}

const char *cfg_vm_node(const struct cfg *cfg, const struct cfg_vm *vm)
{
	return vm->node ? vm->node : cfg_default_node(cfg);
}
