/* config_parse: the section parsers of phoenix_vm_configs.json (proxmox, defaults,
 * features, templates, vms) and the checks across sections (duplicate names, overlapping
 * VMIDs, references). Each applies its defaults, then reads its keys through the typed getters
 * of config.c, so every problem is reported with its JSON path and parsing goes on. Knows the
 * schema; does not read files other than to check that named local files exist. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config_int.h"
#include "pgp.h"

#ifndef PHX_DATADIR
#define PHX_DATADIR "/usr/local/share/phoenix"
#endif

static const char cfg_builtin_docker_script[] = "configs/features/docker.sh";

bool cfg_is_ipv4(const char *s)
{
	uint32_t a;

	return cfg_parse_ipv4(s, &a);
}

static bool cfg_is_abs_path(const char *s)
{
	size_t n = strlen(s);

	return s[0] == '/' && !strstr(s, "/../") && !(n >= 3 && !strcmp(s + n - 3, "/.."));
}

static const char cfg_expect_storage[] = "a Proxmox storage ID like 'local-lvm'";
static const char cfg_expect_node[] = "a Proxmox node name like 'pve1'";
static const char cfg_expect_bridge[] = "a bridge name like 'vmbr0'";
static const char cfg_expect_tag[] = "a Proxmox tag like 'web' ([a-z0-9_][a-z0-9_+.-]*)";
static const char cfg_expect_ipv4[] = "an IPv4 address like '1.1.1.1'";
static const char cfg_expect_package[] = "a package name like 'curl'";

/* ---- proxmox ----------------------------------------------------------------------------- */

/* "https://h:8006/api2/json/" -> "https://h:8006": the client appends /api2/json itself. */
void cfg_normalize_api_url(char *url)
{
	size_t n = strlen(url);

	while (n > 8 && url[n - 1] == '/')
		url[--n] = '\0';
	if (n > 10 && !strcmp(url + n - 10, "/api2/json"))
		url[n -= 10] = '\0';
	while (n > 8 && url[n - 1] == '/')
		url[--n] = '\0';
}

static void cfg_parse_proxmox(struct cfg_ctx *ctx, json_t *root)
{
	static const char *const keys[] = {"api_url", "token_id", "token_secret_file",
					   "node",    "tls",      "timeouts"};
	static const char *const tls_keys[] = {"ca_file", "fingerprint", "insecure"};
	static const char *const to_keys[] = {"task_s", "agent_s", "connect_s", "request_s"};
	struct cfg_proxmox *px = &ctx->cfg->proxmox;
	char q[CFG_SHOW_MAX + 16];
	const char *s;
	json_t *obj, *tls, *to;

	px->timeouts.task_s = 1800;
	px->timeouts.agent_s = 600;
	px->timeouts.connect_s = 10;
	px->timeouts.request_s = 30;
	obj = cfg_get_obj(ctx, root, "$", "proxmox", false);
	if (!obj)
		return;
	CFG_CHECK_KEYS(ctx, obj, "$.proxmox", keys);
	s = cfg_get_str(ctx, obj, "$.proxmox", "api_url", false);
	if (s) {
		const char *why = cfg_check_url(s, true);

		if (why) {
			cfg_problem(ctx, "$.proxmox.api_url",
				    "expected an https URL like 'https://pve.example.com:8006', got "
				    "%s (%s)",
				    cfg_quote(s, q, sizeof(q)), why);
		} else {
			cfg_set_str(ctx, &px->api_url, s);
			if (px->api_url)
				cfg_normalize_api_url(px->api_url);
		}
	}
	cfg_get_checked(ctx, obj, "$.proxmox", "token_id", false, cfg_is_token_id,
			CFG_EXPECT_TOKEN_ID, &px->token_id);
	s = cfg_get_str(ctx, obj, "$.proxmox", "token_secret_file", false);
	if (s) {
		free(px->token_secret_file);
		/* existence and mode are checked when the secret is read, with a better message */
		px->token_secret_file = cfg_resolve(ctx, s);
	}
	cfg_get_checked(ctx, obj, "$.proxmox", "node", false, cfg_is_dns_label, cfg_expect_node,
			&px->node);
	tls = cfg_get_obj(ctx, obj, "$.proxmox", "tls", false);
	if (tls) {
		CFG_CHECK_KEYS(ctx, tls, "$.proxmox.tls", tls_keys);
		cfg_get_local_file(ctx, tls, "$.proxmox.tls", "ca_file", false, &px->tls.ca_file);
		s = cfg_get_str(ctx, tls, "$.proxmox.tls", "fingerprint", false);
		if (s) {
			char fp[96];

			if (cfg_normalize_fingerprint(s, fp))
				cfg_set_str(ctx, &px->tls.fingerprint, fp);
			else
				cfg_problem(ctx, "$.proxmox.tls.fingerprint",
					    "expected a SHA-256 fingerprint like 'AB:CD:...' (32 hex "
					    "bytes), got %s",
					    cfg_quote(s, q, sizeof(q)));
		}
		cfg_get_bool(ctx, tls, "$.proxmox.tls", "insecure", &px->tls.insecure);
		if (px->tls.insecure && json_object_get(tls, "fingerprint"))
			cfg_problem(ctx, "$.proxmox.tls.insecure",
				    "expected false when tls.fingerprint is set (a pinned certificate "
				    "is already safe without a CA), got true");
	}
	to = cfg_get_obj(ctx, obj, "$.proxmox", "timeouts", false);
	if (to) {
		CFG_CHECK_KEYS(ctx, to, "$.proxmox.timeouts", to_keys);
		cfg_get_uint(ctx, to, "$.proxmox.timeouts", "task_s", false, 1, 604800,
			     &px->timeouts.task_s);
		cfg_get_uint(ctx, to, "$.proxmox.timeouts", "agent_s", false, 1, 86400,
			     &px->timeouts.agent_s);
		cfg_get_uint(ctx, to, "$.proxmox.timeouts", "connect_s", false, 1, 600,
			     &px->timeouts.connect_s);
		cfg_get_uint(ctx, to, "$.proxmox.timeouts", "request_s", false, 1, 3600,
			     &px->timeouts.request_s);
	}
}

/* ---- defaults ---------------------------------------------------------------------------- */

static bool cfg_parse_parts(struct cfg_ctx *ctx, json_t *obj, const char *jpath, const char *key,
			    struct cfg_part **ret, size_t *ret_n);

static void cfg_parse_defaults(struct cfg_ctx *ctx, json_t *root)
{
	static const char *const keys[] = {
		"node",		 "storage",	 "import_storage", "iso_storage",
		"bridge",	 "dns_servers",	 "search_domain",  "full_clone",
		"cloudinit_mode", "snippets_dir", "tags",	    "agent_timeout_s",
		"template_storage",
		"vendor_data",
	};
	struct cfg_defaults *d = &ctx->cfg->defaults;
	const char *s;
	char q[CFG_SHOW_MAX + 16];
	json_t *obj;

	cfg_set_str(ctx, &d->storage, "local-lvm");
	cfg_set_str(ctx, &d->import_storage, "local");
	cfg_set_str(ctx, &d->iso_storage, "local");
	cfg_set_str(ctx, &d->template_storage, "local");
	cfg_set_str(ctx, &d->bridge, "vmbr0");
	d->cloudinit_mode = CFG_CLOUDINIT_ISO;
	d->agent_timeout_s = ctx->cfg->proxmox.timeouts.agent_s;
	obj = cfg_get_obj(ctx, root, "$", "defaults", false);
	if (!obj)
		return;
	CFG_CHECK_KEYS(ctx, obj, "$.defaults", keys);
	cfg_get_checked(ctx, obj, "$.defaults", "node", false, cfg_is_dns_label, cfg_expect_node,
			&d->node);
	cfg_get_checked(ctx, obj, "$.defaults", "storage", false, cfg_is_storage_id,
			cfg_expect_storage, &d->storage);
	cfg_get_checked(ctx, obj, "$.defaults", "import_storage", false, cfg_is_storage_id,
			cfg_expect_storage, &d->import_storage);
	cfg_get_checked(ctx, obj, "$.defaults", "iso_storage", false, cfg_is_storage_id,
			cfg_expect_storage, &d->iso_storage);
	cfg_get_checked(ctx, obj, "$.defaults", "template_storage", false, cfg_is_storage_id,
			cfg_expect_storage, &d->template_storage);
	cfg_get_checked(ctx, obj, "$.defaults", "bridge", false, cfg_is_bridge, cfg_expect_bridge,
			&d->bridge);
	cfg_get_strv(ctx, obj, "$.defaults", "dns_servers", cfg_is_ipv4, cfg_expect_ipv4, false,
		     &d->dns_servers);
	cfg_get_checked(ctx, obj, "$.defaults", "search_domain", false, cfg_is_dns_name,
			"a DNS domain like 'example.com'", &d->search_domain);
	cfg_get_bool(ctx, obj, "$.defaults", "full_clone", &d->full_clone);
	s = cfg_get_str(ctx, obj, "$.defaults", "cloudinit_mode", false);
	if (s && !strcmp(s, "iso"))
		d->cloudinit_mode = CFG_CLOUDINIT_ISO;
	else if (s && !strcmp(s, "native"))
		d->cloudinit_mode = CFG_CLOUDINIT_NATIVE;
	else if (s)
		cfg_problem(ctx, "$.defaults.cloudinit_mode", "expected 'iso' or 'native', got %s",
			    cfg_quote(s, q, sizeof(q)));
	cfg_get_checked(ctx, obj, "$.defaults", "snippets_dir", false, cfg_is_abs_path,
			"an absolute directory like '/var/lib/vz/snippets'", &d->snippets_dir);
	cfg_get_strv(ctx, obj, "$.defaults", "tags", cfg_is_tag, cfg_expect_tag, false, &d->tags);
	cfg_get_uint(ctx, obj, "$.defaults", "agent_timeout_s", false, 1, 86400,
		     &d->agent_timeout_s);
	cfg_parse_parts(ctx, obj, "$.defaults", "vendor_data", &d->vendor_data, &d->n_vendor_data);
}

/* defaults.tags followed by the object's own `tags`, without duplicates. */
void cfg_get_tags(struct cfg_ctx *ctx, json_t *obj, const char *jparent,
		  struct cfg_strv *out)
{
	struct cfg_strv own = {NULL, 0};

	cfg_strv_copy(ctx, out, &ctx->cfg->defaults.tags);
	cfg_get_strv(ctx, obj, jparent, "tags", cfg_is_tag, cfg_expect_tag, false, &own);
	for (size_t i = 0; i < own.n; i++)
		if (!cfg_strv_has(out, own.items[i]))
			cfg_strv_push(ctx, out, own.items[i]);
	cfg_strv_free(&own);
}

/* ---- features ---------------------------------------------------------------------------- */

/* The directory of the running binary, or "" when /proc cannot tell. */
static void cfg_self_dir(char *ret, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", ret, len - 1);
	char *slash;

	if (n <= 0 || (size_t)n >= len - 1) {
		ret[0] = '\0';
		return;
	}
	ret[n] = '\0';
	slash = strrchr(ret, '/');
	if (slash)
		*slash = '\0';
	else
		ret[0] = '\0';
}

/* Finds a feature script: absolute as is; relative against the config's directory, then where
 * the running binary's own copies are (so a config anywhere finds the built-in features
 * without `make install`): beside a binary run from the build tree (<dir>/configs/features/),
 * in the data directory of an installed one (<dir>/../share/phoenix/features/, as make install
 * and the package put them), then the data directory compiled in. */
static char *cfg_find_script(struct cfg_ctx *ctx, const char *script, char *looked, size_t n)
{
	enum { N_CAND = 5 };
	char *cand[N_CAND] = {NULL};
	const char *in_data = strncmp(script, "configs/", 8) ? script : script + 8;
	char self[PATH_MAX], prefix[PATH_MAX + 16];
	char *found = NULL;
	size_t o = 0;

	if (script[0] == '/') {
		cand[0] = cfg_strdup(ctx, script);
	} else {
		cand[0] = cfg_join(ctx, ctx->cfg->dir, script);
		cfg_self_dir(self, sizeof(self));
		if (self[0]) {
			char *up = strrchr(self, '/');

			cand[1] = cfg_join(ctx, self, script);
			snprintf(prefix, sizeof(prefix), "%.*s/share/phoenix",
				 up ? (int)(up - self) : 0, self);
			cand[2] = cfg_join(ctx, prefix, in_data);
		}
		cand[3] = cfg_join(ctx, PHX_DATADIR, in_data);
		if (in_data != script)
			cand[4] = cfg_join(ctx, PHX_DATADIR, script);
	}
	looked[0] = '\0';
	for (size_t i = 0; i < N_CAND; i++) {
		if (!cand[i])
			continue;
		if (!found && cfg_is_regular(cand[i])) {
			found = cand[i];
			cand[i] = NULL;
			continue;
		}
		if (o < n) {
			int w = snprintf(looked + o, n - o, "%s'%s'", o ? ", " : "", cand[i]);

			o += w > 0 ? (size_t)w : 0;
		}
		free(cand[i]);
	}
	return found;
}

static void cfg_parse_features(struct cfg_ctx *ctx, json_t *root)
{
	static const char *const keys[] = {"script", "packages"};
	struct cfg *cfg = ctx->cfg;
	json_t *obj = cfg_get_obj(ctx, root, "$", "features", false);
	size_t n = obj ? json_object_size(obj) : 0;
	const char *name;
	json_t *v;
	char looked[1024], q[CFG_SHOW_MAX + 16];

	cfg->features = calloc(n + 1, sizeof(*cfg->features));
	if (!cfg->features) {
		ctx->oom = true;
		return;
	}
	if (obj) {
		json_object_foreach(obj, name, v) {
			struct cfg_feature *f = &cfg->features[cfg->n_features];
			char jpath[CFG_PATH_MAX], got[CFG_SHOW_MAX + 32];
			const char *script;

			cfg_path_key(jpath, "$.features", name);
			if (name[0] == '_')
				continue;
			if (!cfg_is_feature_name(name)) {
				cfg_problem(ctx, jpath,
					    "expected a feature name of [a-z0-9_-] like 'docker', "
					    "got %s",
					    cfg_quote(name, q, sizeof(q)));
				continue;
			}
			if (!json_is_object(v)) {
				cfg_problem(ctx, jpath, "expected an object, got %s",
					    cfg_got(v, got, sizeof(got)));
				continue;
			}
			cfg->n_features++;
			f->name = cfg_strdup(ctx, name);
			CFG_CHECK_KEYS(ctx, v, jpath, keys);
			cfg_get_strv(ctx, v, jpath, "packages", cfg_is_package, cfg_expect_package,
				     false, &f->packages);
			script = cfg_get_str(ctx, v, jpath, "script", true);
			if (!script)
				continue;
			f->script = cfg_strdup(ctx, script);
			f->script_path = cfg_find_script(ctx, script, looked, sizeof(looked));
			if (!f->script_path) {
				char spath[CFG_PATH_MAX];

				cfg_path_key(spath, jpath, "script");
				cfg_problem(ctx, spath, "expected an existing script file, got %s "
							"(looked at %s)",
					    cfg_quote(script, q, sizeof(q)), looked);
			}
		}
	}
	if (!cfg_find_feature(cfg, "docker")) {
		struct cfg_feature *f = &cfg->features[cfg->n_features++];

		f->name = cfg_strdup(ctx, "docker");
		f->script = cfg_strdup(ctx, cfg_builtin_docker_script);
		f->builtin = true;
		/* a missing built-in script only matters when a VM asks for the feature */
		f->script_path = cfg_find_script(ctx, cfg_builtin_docker_script, looked,
						 sizeof(looked));
	}
}

/* ---- templates --------------------------------------------------------------------------- */

static void cfg_parse_file(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
			   struct cfg_file *f)
{
	static const char *const keys[] = {"path", "mode", "content", "source"};
	char q[CFG_SHOW_MAX + 16], kpath[CFG_PATH_MAX];
	const char *s;
	json_t *content;

	CFG_CHECK_KEYS(ctx, obj, jpath, keys);
	f->mode = 0644;
	s = cfg_get_str(ctx, obj, jpath, "path", true);
	if (s && (!cfg_is_abs_path(s) || s[strlen(s) - 1] == '/')) {
		cfg_path_key(kpath, jpath, "path");
		cfg_problem(ctx, kpath, "expected an absolute file path like '/etc/motd', got %s",
			    cfg_quote(s, q, sizeof(q)));
	} else if (s) {
		f->path = cfg_strdup(ctx, s);
	}
	s = cfg_get_str(ctx, obj, jpath, "mode", false);
	if (s) {
		char *end;
		unsigned long mode = strtoul(s, &end, 8);

		cfg_path_key(kpath, jpath, "mode");
		if (*end || strlen(s) < 3 || strlen(s) > 4 || mode > 07777 || *s == '-' ||
		    *s == '+' || isspace((unsigned char)*s))
			cfg_problem(ctx, kpath, "expected an octal mode string like '0644', got %s",
				    cfg_quote(s, q, sizeof(q)));
		else
			f->mode = (unsigned)mode;
	}
	content = json_object_get(obj, "content");
	if (content && !json_is_string(content)) {
		char got[CFG_SHOW_MAX + 32];

		cfg_path_key(kpath, jpath, "content");
		cfg_problem(ctx, kpath, "expected a string, got %s",
			    cfg_got(content, got, sizeof(got)));
	} else if (content) {
		if (strlen(json_string_value(content)) != json_string_length(content)) {
			cfg_path_key(kpath, jpath, "content");
			cfg_problem(ctx, kpath, "string contains a NUL character");
		} else {
			f->content = cfg_strdup(ctx, json_string_value(content));
		}
	}
	if (content && json_object_get(obj, "source")) {
		cfg_path_key(kpath, jpath, "source");
		cfg_problem(ctx, kpath, "expected exactly one of 'content' or 'source', got both");
	} else if (!content && !json_object_get(obj, "source")) {
		cfg_problem(ctx, jpath, "expected exactly one of 'content' or 'source', got neither");
	} else if (!content) {
		cfg_get_local_file(ctx, obj, jpath, "source", true, &f->source);
	}
}

static bool cfg_is_part_type(const char *s)
{
	/* cloud-init handlers/__init__.py INCLUSION_TYPES_MAP, the types its handlers take; the
	 * x-shellscript-per-* ones exist only as MIME parts */
	static const char *const types[] = {
		"text/cloud-config",	       "text/x-shellscript",
		"text/cloud-boothook",	       "text/x-include-url",
		"text/x-include-once-url",     "text/part-handler",
		"text/jinja2",		       "text/cloud-config-archive",
		"text/x-shellscript-per-boot", "text/x-shellscript-per-instance",
		"text/x-shellscript-per-once",
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(s, types[i]))
			return true;
	return false;
}

/* `key`: a list of cloud-init parts {type, content | source}; true when present. */
static bool cfg_parse_parts(struct cfg_ctx *ctx, json_t *obj, const char *jpath, const char *key,
			    struct cfg_part **ret, size_t *ret_n)
{
	static const char *const keys[] = {"type", "content", "source"};
	char apath[CFG_PATH_MAX], ipath[CFG_PATH_MAX], kpath[CFG_PATH_MAX];
	char got[CFG_SHOW_MAX + 32];
	json_t *arr = cfg_get_array(ctx, obj, jpath, key, false), *item, *content;
	size_t i;

	if (!arr)
		return json_object_get(obj, key) != NULL;
	cfg_path_key(apath, jpath, key);
	if (!json_array_size(arr)) {
		cfg_problem(ctx, apath, "expected at least one part {type, content | source}, "
					"got an empty array");
		return true;
	}
	if (!(*ret = calloc(json_array_size(arr), sizeof(**ret)))) {
		ctx->oom = true;
		return true;
	}
	json_array_foreach(arr, i, item) {
		struct cfg_part *p = &(*ret)[(*ret_n)++];

		cfg_path_idx(ipath, apath, i);
		if (!json_is_object(item)) {
			cfg_problem(ctx, ipath, "expected an object {type, content | source}, got %s",
				    cfg_got(item, got, sizeof(got)));
			continue;
		}
		CFG_CHECK_KEYS(ctx, item, ipath, keys);
		cfg_get_checked(ctx, item, ipath, "type", true, cfg_is_part_type,
				"a cloud-init part type like 'text/cloud-config' or "
				"'text/x-shellscript'",
				&p->type);
		content = json_object_get(item, "content");
		cfg_path_key(kpath, ipath, "content");
		if (content && json_object_get(item, "source")) {
			cfg_path_key(kpath, ipath, "source");
			cfg_problem(ctx, kpath,
				    "expected exactly one of 'content' or 'source', got both");
		} else if (!content && !json_object_get(item, "source")) {
			cfg_problem(ctx, ipath,
				    "expected exactly one of 'content' or 'source', got neither");
		} else if (!content) {
			cfg_get_local_file(ctx, item, ipath, "source", true, &p->source);
		} else if (!json_is_string(content) || !json_string_length(content)) {
			cfg_problem(ctx, kpath, "expected a non-empty string, got %s",
				    cfg_got(content, got, sizeof(got)));
		} else if (strlen(json_string_value(content)) != json_string_length(content)) {
			cfg_problem(ctx, kpath, "string contains a NUL character");
		} else {
			p->content = cfg_strdup(ctx, json_string_value(content));
		}
	}
	return true;
}

/* The guest's family decides which one it installs (customize), known only in the image. */
static bool cfg_is_local_package_path(const char *s)
{
	size_t n = strlen(s);

	return n > 4 && (!strcmp(s + n - 4, ".deb") || !strcmp(s + n - 4, ".rpm") ||
			 !strcmp(s + n - 4, ".apk"));
}

/* A real name for ~/.gitconfig: printable, no newline, quote or backslash (it is written
 * between double quotes in git's config syntax). */
static bool cfg_is_git_value(const char *s)
{
	if (!*s || strlen(s) > 200)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\' || *s == 0x7f)
			return false;
	return true;
}

static bool cfg_is_shell_path(const char *s)
{
	return cfg_is_abs_path(s) && !strpbrk(s, " \t\n'\"\\$`;&|<>*?");
}

/* One entry of customize.users. */
static void cfg_parse_cust_user(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
				struct cfg_cust_user *u)
{
	static const char *const keys[] = {"name",	    "uid",	 "gid",
					   "groups",	    "shell",	 "ssh_authorized_keys",
					   "password_hash", "password_expired", "sudo",
					   "git_name",	    "git_email"};
	struct cfg_strv raw = {NULL, 0};
	char kpath[CFG_PATH_MAX], ipath[CFG_PATH_MAX];
	const char *s;

	CFG_CHECK_KEYS(ctx, obj, jpath, keys);
	cfg_get_checked(ctx, obj, jpath, "name", true, cfg_is_username,
			"a Linux user name like 'admin' ([a-z_][a-z0-9_-]*, at most 32)", &u->name);
	if (u->name && !strcmp(u->name, "root")) {
		cfg_path_key(kpath, jpath, "name");
		cfg_problem(ctx, kpath, "expected a user other than 'root' (root is the image's)");
	}
	/* 1000..60000: useradd's UID_MIN..UID_MAX, clear of system users and of nobody */
	cfg_get_uint(ctx, obj, jpath, "uid", false, 1000, 60000, &u->uid);
	cfg_get_uint(ctx, obj, jpath, "gid", false, 1000, 60000, &u->gid);
	cfg_get_strv(ctx, obj, jpath, "groups", cfg_is_username,
		     "a group name like 'sudo' ([a-z_][a-z0-9_-]*)", false, &u->groups);
	cfg_get_checked(ctx, obj, jpath, "shell", false, cfg_is_shell_path,
			"an absolute path like '/bin/bash'", &u->shell);
	cfg_get_strv(ctx, obj, jpath, "ssh_authorized_keys", NULL, "an OpenSSH public key", true,
		     &raw);
	cfg_path_key(kpath, jpath, "ssh_authorized_keys");
	for (size_t i = 0; i < raw.n; i++) {
		const char *why = cfg_check_ssh_key(raw.items[i]);

		if (json_is_array(json_object_get(obj, "ssh_authorized_keys")))
			cfg_path_idx(ipath, kpath, i);
		else
			snprintf(ipath, sizeof(ipath), "%s", kpath);
		if (why)
			cfg_problem(ctx, ipath, "%s", why);
		else
			cfg_strv_push(ctx, &u->ssh_public_keys, raw.items[i]);
	}
	cfg_strv_free(&raw);
	s = cfg_get_str(ctx, obj, jpath, "password_hash", false);
	if (s) {
		/* never quote the value: it may be a plaintext password */
		const char *why = cfg_check_password_hash(s);

		cfg_path_key(kpath, jpath, "password_hash");
		if (why)
			cfg_problem(ctx, kpath, "%s", why);
		else
			u->password_hash = cfg_strdup(ctx, s);
	}
	u->password_expired = s != NULL;
	cfg_get_bool(ctx, obj, jpath, "password_expired", &u->password_expired);
	if (u->password_expired && !s && json_object_get(obj, "password_expired")) {
		cfg_path_key(kpath, jpath, "password_expired");
		cfg_problem(ctx, kpath, "expected 'password_hash' next to it: only a password can "
					"be expired");
	}
	cfg_get_bool(ctx, obj, jpath, "sudo", &u->sudo);
	cfg_get_checked(ctx, obj, jpath, "git_name", false, cfg_is_git_value,
			"a name like 'Ada Lovelace' (printable, no quote or backslash)",
			&u->git_name);
	cfg_get_checked(ctx, obj, jpath, "git_email", false, cfg_is_git_value,
			"an e-mail address like 'ada@example.com'", &u->git_email);
}

static void cfg_parse_cust_users(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
				 struct cfg_customize *c)
{
	json_t *arr = cfg_get_array(ctx, obj, jpath, "users", false), *item;
	char upath[CFG_PATH_MAX], ipath[CFG_PATH_MAX], got[CFG_SHOW_MAX + 32];
	size_t i;

	if (!arr || !json_array_size(arr))
		return;
	cfg_path_key(upath, jpath, "users");
	c->users = calloc(json_array_size(arr), sizeof(*c->users));
	if (!c->users) {
		ctx->oom = true;
		return;
	}
	json_array_foreach(arr, i, item) {
		struct cfg_cust_user *u;

		cfg_path_idx(ipath, upath, i);
		if (!json_is_object(item)) {
			cfg_problem(ctx, ipath, "expected an object, got %s",
				    cfg_got(item, got, sizeof(got)));
			continue;
		}
		u = &c->users[c->n_users++];
		cfg_parse_cust_user(ctx, item, ipath, u);
		for (size_t j = 0; j + 1 < c->n_users; j++) {
			const struct cfg_cust_user *o = &c->users[j];
			char kpath[CFG_PATH_MAX];

			if (u->name && o->name && !strcmp(u->name, o->name)) {
				cfg_path_key(kpath, ipath, "name");
				cfg_problem(ctx, kpath, "user '%s' is already made by %s[%zu]",
					    u->name, upath, j);
			} else if (u->uid && u->uid == o->uid) {
				cfg_path_key(kpath, ipath, "uid");
				cfg_problem(ctx, kpath, "uid %lu is already %s[%zu]'s", u->uid,
					    upath, j);
			}
		}
	}
}

static void cfg_parse_customize(struct cfg_ctx *ctx, json_t *tobj, const char *tpath,
				bool lxc, struct cfg_customize *c)
{
	static const char *const keys[] = {"packages", "debs",	"enable_services",
					   "run",      "files", "timezone", "users"};
	char jpath[CFG_PATH_MAX], ipath[CFG_PATH_MAX], fpath[CFG_PATH_MAX];
	json_t *obj = cfg_get_obj(ctx, tobj, tpath, "customize", false);
	json_t *files, *item;
	struct cfg_strv debs = {NULL, 0};
	size_t i;

	cfg_path_key(jpath, tpath, "customize");
	if ((!obj || !cfg_get_strv(ctx, obj, jpath, "packages", cfg_is_package,
				   cfg_expect_package, false, &c->packages)) &&
	    !lxc)
		cfg_strv_push(ctx, &c->packages, "qemu-guest-agent");
	if (!obj)
		return;
	CFG_CHECK_KEYS(ctx, obj, jpath, keys);
	cfg_parse_cust_users(ctx, obj, jpath, c);
	cfg_get_strv(ctx, obj, jpath, "debs", cfg_is_local_package_path,
		     "a path to a .deb, .rpm or .apk file", false, &debs);
	cfg_path_key(fpath, jpath, "debs");
	for (i = 0; i < debs.n; i++) {
		char *p = cfg_resolve(ctx, debs.items[i]);
		char q[CFG_SHOW_MAX + 16];

		if (p && !cfg_is_regular(p)) {
			cfg_path_idx(ipath, fpath, i);
			cfg_problem(ctx, ipath, "expected an existing package file, got %s (no file at "
						"'%s')",
				    cfg_quote(debs.items[i], q, sizeof(q)), p);
		} else if (p) {
			cfg_strv_push(ctx, &c->debs, p);
		}
		free(p);
	}
	cfg_strv_free(&debs);
	cfg_get_strv(ctx, obj, jpath, "enable_services", cfg_is_unit,
		     "a systemd unit name like 'nginx.service'", false, &c->enable_services);
	cfg_get_strv(ctx, obj, jpath, "run", NULL, "a non-empty shell command", false, &c->run);
	cfg_get_checked(ctx, obj, jpath, "timezone", false, cfg_is_timezone,
			"a time zone like 'Europe/Berlin' or 'UTC'", &c->timezone);
	files = cfg_get_array(ctx, obj, jpath, "files", false);
	if (!files || !json_array_size(files))
		return;
	cfg_path_key(fpath, jpath, "files");
	c->files = calloc(json_array_size(files), sizeof(*c->files));
	if (!c->files) {
		ctx->oom = true;
		return;
	}
	json_array_foreach(files, i, item) {
		char got[CFG_SHOW_MAX + 32];

		cfg_path_idx(ipath, fpath, i);
		if (!json_is_object(item)) {
			cfg_problem(ctx, ipath, "expected an object, got %s",
				    cfg_got(item, got, sizeof(got)));
			continue;
		}
		cfg_parse_file(ctx, item, ipath, &c->files[c->n_files++]);
		for (size_t j = 0; j + 1 < c->n_files; j++) {
			const char *p = c->files[c->n_files - 1].path;

			if (p && c->files[j].path && !strcmp(p, c->files[j].path)) {
				char kpath[CFG_PATH_MAX];

				cfg_path_key(kpath, ipath, "path");
				cfg_problem(ctx, kpath, "file '%s' is already written by %s[%zu]", p,
					    fpath, j);
			}
		}
	}
}

/* cores, memory_mb and disk_size_gb, which templates (under hardware) and VMs share; each is
 * written only when given and valid. */
static void cfg_get_sizes(struct cfg_ctx *ctx, json_t *obj, const char *jpath, unsigned *cores,
			  unsigned long *memory_mb, unsigned long *disk_size_gb)
{
	unsigned long v;

	if (cfg_get_uint(ctx, obj, jpath, "cores", false, 1, CFG_CORES_MAX, &v))
		*cores = (unsigned)v;
	cfg_get_uint(ctx, obj, jpath, "memory_mb", false, CFG_MEMORY_MB_MIN, CFG_MEMORY_MB_MAX,
		     memory_mb);
	cfg_get_uint(ctx, obj, jpath, "disk_size_gb", false, 1, CFG_DISK_GB_MAX, disk_size_gb);
}

enum cfg_tri cfg_get_tri(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
				const char *key)
{
	bool b;

	if (!cfg_get_bool(ctx, obj, jpath, key, &b))
		return CFG_TRI_UNSET;
	return b ? CFG_TRI_TRUE : CFG_TRI_FALSE;
}

/* The keys of struct cfg_machine, which a template's `hardware` and a VM share; `memory_mb`
 * is the object's own (0: not given) for the balloon's bound. */
#define CFG_MACHINE_KEYS                                                                           \
	"bios", "efi_pre_enrolled_keys", "machine", "tpm", "cpu", "sockets", "balloon", "numa",    \
		"disk", "disks"

/* qemu-server Drive.pm: the highest index of each bus; scsi30 is kept for the seed, which
 * goes there under OVMF or on q35 (hw_seed_drive) */
static unsigned cfg_bus_max(const char *bus)
{
	return !strcmp(bus, "sata") ? 5 : !strcmp(bus, "virtio") ? 15 : 29;
}

static void cfg_parse_drive_opts(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
				 struct cfg_drive_opts *o)
{
	static const char *const caches[] = {"none", "writethrough", "writeback", "directsync",
					     "unsafe"};
	char kpath[CFG_PATH_MAX], q[CFG_SHOW_MAX + 16];
	const char *s;

	s = cfg_get_str(ctx, obj, jpath, "bus", false);
	if (s && (!strcmp(s, "scsi") || !strcmp(s, "virtio") || !strcmp(s, "sata"))) {
		cfg_set_str(ctx, &o->bus, s);
	} else if (s) {
		cfg_path_key(kpath, jpath, "bus");
		cfg_problem(ctx, kpath, "expected 'scsi', 'virtio' or 'sata', got %s",
			    cfg_quote(s, q, sizeof(q)));
	}
	o->ssd = cfg_get_tri(ctx, obj, jpath, "ssd");
	if (o->ssd == CFG_TRI_TRUE && o->bus && !strcmp(o->bus, "virtio")) {
		/* qemu-server Drive.pm: virtio drives have no ssd option */
		cfg_path_key(kpath, jpath, "ssd");
		cfg_problem(ctx, kpath, "expected no ssd emulation on bus 'virtio' (scsi or sata "
					"only), got true");
	}
	o->discard = cfg_get_tri(ctx, obj, jpath, "discard");
	o->iothread = cfg_get_tri(ctx, obj, jpath, "iothread");
	if (o->iothread == CFG_TRI_TRUE && o->bus && !strcmp(o->bus, "sata")) {
		cfg_path_key(kpath, jpath, "iothread");
		cfg_problem(ctx, kpath, "expected no iothread on bus 'sata' (scsi or virtio only), "
					"got true");
	}
	s = cfg_get_str(ctx, obj, jpath, "cache", false);
	if (s) {
		bool ok = false;

		for (size_t i = 0; i < sizeof(caches) / sizeof(caches[0]); i++)
			ok |= !strcmp(s, caches[i]);
		if (ok) {
			cfg_set_str(ctx, &o->cache, s);
		} else {
			cfg_path_key(kpath, jpath, "cache");
			cfg_problem(ctx, kpath, "expected 'none', 'writethrough', 'writeback', "
						"'directsync' or 'unsafe', got %s",
				    cfg_quote(s, q, sizeof(q)));
		}
	}
}

static void cfg_parse_disks(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
			    const char *storage, struct cfg_machine *m)
{
	static const char *const dkeys[] = {"bus", "ssd", "discard", "iothread", "cache"};
	static const char *const keys[] = {"size_gb", "storage", "bus",	  "ssd",
					   "discard", "iothread", "cache"};
	char dpath[CFG_PATH_MAX], ipath[CFG_PATH_MAX], kpath[CFG_PATH_MAX];
	char got[CFG_SHOW_MAX + 32];
	json_t *d = cfg_get_obj(ctx, obj, jpath, "disk", false);
	json_t *arr = cfg_get_array(ctx, obj, jpath, "disks", false), *item;
	size_t i;

	if (d) {
		cfg_path_key(dpath, jpath, "disk");
		CFG_CHECK_KEYS(ctx, d, dpath, dkeys);
		cfg_parse_drive_opts(ctx, d, dpath, &m->disk);
	}
	if (!arr || !json_array_size(arr))
		return;
	cfg_path_key(dpath, jpath, "disks");
	m->disks = calloc(json_array_size(arr), sizeof(*m->disks));
	if (!m->disks) {
		ctx->oom = true;
		return;
	}
	json_array_foreach(arr, i, item) {
		struct cfg_data_disk *x = &m->disks[m->n_disks];
		unsigned long v;

		cfg_path_idx(ipath, dpath, i);
		if (!json_is_object(item)) {
			cfg_problem(ctx, ipath, "expected an object like {\"size_gb\": 50}, got %s",
				    cfg_got(item, got, sizeof(got)));
			continue;
		}
		m->n_disks++;
		CFG_CHECK_KEYS(ctx, item, ipath, keys);
		if (cfg_get_uint(ctx, item, ipath, "size_gb", true, 1, CFG_DISK_GB_MAX, &v))
			x->size_gb = v;
		cfg_set_str(ctx, &x->storage, storage);
		cfg_get_checked(ctx, item, ipath, "storage", false, cfg_is_storage_id,
				cfg_expect_storage, &x->storage);
		cfg_parse_drive_opts(ctx, item, ipath, &x->o);
		if (!x->o.bus)
			cfg_set_str(ctx, &x->o.bus, "scsi");
		if (x->o.bus && i + 1 > cfg_bus_max(x->o.bus)) {
			cfg_path_key(kpath, ipath, "bus");
			cfg_problem(ctx, kpath,
				    "expected another bus: disk %zu would be %s%zu, and '%s' goes up "
				    "to %s%u",
				    i, x->o.bus, i + 1, x->o.bus, x->o.bus, cfg_bus_max(x->o.bus));
		}
	}
}

static void cfg_parse_machine(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
			      unsigned long memory_mb, const char *storage, struct cfg_machine *m)
{
	char kpath[CFG_PATH_MAX], q[CFG_SHOW_MAX + 16];
	unsigned long v;
	const char *s;

	s = cfg_get_str(ctx, obj, jpath, "bios", false);
	if (s && (!strcmp(s, "seabios") || !strcmp(s, "ovmf"))) {
		cfg_set_str(ctx, &m->bios, s);
	} else if (s) {
		cfg_path_key(kpath, jpath, "bios");
		cfg_problem(ctx, kpath, "expected 'seabios' or 'ovmf' (UEFI), got %s",
			    cfg_quote(s, q, sizeof(q)));
	}
	m->efi_pre_enrolled_keys = cfg_get_tri(ctx, obj, jpath, "efi_pre_enrolled_keys");
	if (m->efi_pre_enrolled_keys == CFG_TRI_TRUE && m->bios && !strcmp(m->bios, "seabios")) {
		cfg_path_key(kpath, jpath, "efi_pre_enrolled_keys");
		cfg_problem(ctx, kpath, "expected bios 'ovmf' with pre-enrolled EFI keys, got bios "
					"'seabios'");
	}
	cfg_get_checked(ctx, obj, jpath, "machine", false, cfg_is_machine,
			"a machine type like 'q35', 'pc' or 'pc-q35-9.2+pve1'", &m->machine);
	m->tpm = cfg_get_tri(ctx, obj, jpath, "tpm");
	cfg_get_checked(ctx, obj, jpath, "cpu", false, cfg_is_cpu_type,
			"a Proxmox CPU type like 'x86-64-v2-AES', 'host' or 'custom-NAME'",
			&m->cpu);
	if (cfg_get_uint(ctx, obj, jpath, "sockets", false, 1, CFG_SOCKETS_MAX, &v))
		m->sockets = (unsigned)v;
	if (cfg_get_uint(ctx, obj, jpath, "balloon", false, 0, CFG_MEMORY_MB_MAX, &v)) {
		if (memory_mb && v > memory_mb) {
			/* qemu-server API2/Qemu.pm $update_vm_api: "balloon value too large" */
			cfg_path_key(kpath, jpath, "balloon");
			cfg_problem(ctx, kpath,
				    "expected at most memory_mb (%lu; the balloon's minimum cannot "
				    "exceed the memory), got %lu",
				    memory_mb, v);
		} else {
			m->has_balloon = true;
			m->balloon_mb = v;
		}
	}
	m->numa = cfg_get_tri(ctx, obj, jpath, "numa");
	cfg_parse_disks(ctx, obj, jpath, storage, m);
}

static void cfg_drive_opts_release(struct cfg_drive_opts *o)
{
	free(o->bus);
	free(o->cache);
}

void cfg_machine_release(struct cfg_machine *m)
{
	free(m->bios);
	free(m->machine);
	free(m->cpu);
	cfg_drive_opts_release(&m->disk);
	for (size_t i = 0; i < m->n_disks; i++) {
		free(m->disks[i].storage);
		cfg_drive_opts_release(&m->disks[i].o);
	}
	free(m->disks);
}

static void cfg_parse_hardware(struct cfg_ctx *ctx, json_t *tobj, const char *tpath,
			       struct cfg_hardware *hw)
{
	static const char *const keys[] = {"cores",  "memory_mb", "disk_size_gb",
					   "bridge", "storage",	  CFG_MACHINE_KEYS};
	char jpath[CFG_PATH_MAX];
	json_t *obj = cfg_get_obj(ctx, tobj, tpath, "hardware", false);

	hw->cores = 2;
	hw->memory_mb = 2048;
	cfg_set_str(ctx, &hw->bridge, ctx->cfg->defaults.bridge);
	cfg_set_str(ctx, &hw->storage, ctx->cfg->defaults.storage);
	if (!obj) {
		cfg_set_str(ctx, &hw->mach.cpu, CFG_CPU_DEFAULT);
		return;
	}
	cfg_path_key(jpath, tpath, "hardware");
	CFG_CHECK_KEYS(ctx, obj, jpath, keys);
	cfg_get_sizes(ctx, obj, jpath, &hw->cores, &hw->memory_mb, &hw->disk_size_gb);
	cfg_get_checked(ctx, obj, jpath, "bridge", false, cfg_is_bridge, cfg_expect_bridge,
			&hw->bridge);
	cfg_get_checked(ctx, obj, jpath, "storage", false, cfg_is_storage_id, cfg_expect_storage,
			&hw->storage);
	cfg_parse_machine(ctx, obj, jpath, hw->memory_mb, hw->storage, &hw->mach);
	if (!hw->mach.cpu)
		cfg_set_str(ctx, &hw->mach.cpu, CFG_CPU_DEFAULT);
}

static bool cfg_is_os(const char *s)
{
	/* becomes the tag "os-<os>", so it must be a valid tag itself */
	return cfg_is_tag(s) && islower((unsigned char)s[0]);
}

/* An http(s) URL key, copied into *field (NULL until then). */
static void cfg_get_http_url(struct cfg_ctx *ctx, json_t *obj, const char *jparent, const char *key,
			     bool required, char **field)
{
	const char *s = cfg_get_str(ctx, obj, jparent, key, required);
	char kpath[CFG_PATH_MAX], q[CFG_SHOW_MAX + 16];
	const char *why;

	if (!s)
		return;
	why = cfg_check_url(s, false);
	if (why) {
		cfg_path_key(kpath, jparent, key);
		cfg_problem(ctx, kpath, "expected an http(s) URL, got %s (%s)",
			    cfg_quote(s, q, sizeof(q)), why);
		return;
	}
	*field = cfg_strdup(ctx, s);
}

/* `artifact`: a version directory --publish wrote (DIR/<template>/<version>), used as
 * published: its SHA256SUMS verifies the image, and nothing is downloaded or customized. */
static void cfg_parse_artifact(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
			       struct cfg_template *t)
{
	static const char *const not_with[] = {"image_url", "checksum_url",  "sha256",
					       "customize", "signature_url", "keyring"};
	const char *s = cfg_get_str(ctx, obj, jpath, "artifact", true);
	char kpath[CFG_PATH_MAX];

	for (size_t i = 0; i < sizeof(not_with) / sizeof(not_with[0]); i++)
		if (json_object_get(obj, not_with[i])) {
			cfg_path_key(kpath, jpath, not_with[i]);
			cfg_problem(ctx, kpath,
				    "does not go with 'artifact': a published artifact is used as "
				    "it was built and verified by its own SHA256SUMS");
		}
	if (!s)
		return;
	if (!*s) {
		cfg_path_key(kpath, jpath, "artifact");
		cfg_problem(ctx, kpath,
			    "expected the directory --publish wrote, like "
			    "'/srv/images/ubuntu-noble/ubuntu-noble-20261202-001', got ''");
		return;
	}
	t->artifact = cfg_resolve(ctx, s);
}

/* signature_url and keyring: both or neither, verifying a checksum_url; the keyring must
 * hold a key, or every run would fail after the download of the checksums. */
static void cfg_parse_signature(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
				struct cfg_template *t)
{
	bool has_sig = json_object_get(obj, "signature_url"), has_ring = json_object_get(obj, "keyring");
	struct phx_err perr = PHX_ERR_INIT;
	char kpath[CFG_PATH_MAX];
	size_t nkeys = 0;

	cfg_get_http_url(ctx, obj, jpath, "signature_url", false, &t->signature_url);
	cfg_get_local_file(ctx, obj, jpath, "keyring", false, &t->keyring);
	if (has_sig && !has_ring) {
		cfg_path_key(kpath, jpath, "signature_url");
		cfg_problem(ctx, kpath,
			    "expected 'keyring' next to it (a file of the OpenPGP keys that may "
			    "sign the checksums), got none");
	} else if (has_ring && !has_sig) {
		cfg_path_key(kpath, jpath, "keyring");
		cfg_problem(ctx, kpath,
			    "expected 'signature_url' next to it (the checksum file's signature, "
			    "or the checksum_url itself when that is clear-signed), got none");
	}
	if (has_sig && !json_object_get(obj, "checksum_url")) {
		cfg_path_key(kpath, jpath, "signature_url");
		cfg_problem(ctx, kpath,
			    "expected 'checksum_url' next to it: a signature verifies a checksum "
			    "file, not a pinned sha256");
	}
	if (!t->keyring)
		return;
	cfg_path_key(kpath, jpath, "keyring");
	if (pgp_keyring_count(t->keyring, &nkeys, &perr) < 0)
		cfg_problem(ctx, kpath, "%s", perr.msg);
	else if (nkeys == 0)
		cfg_problem(ctx, kpath,
			    "expected a file of OpenPGP public keys (binary or armored), got '%s' "
			    "with no key in it",
			    t->keyring);
}

/* `kind`: "qemu" (a VM template, the default) or "lxc" (a container template). The keys
 * that only mean something to the other kind are refused with their path. */
static void cfg_parse_kind(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
			   struct cfg_template *t)
{
	const char *s = cfg_get_str(ctx, obj, jpath, "kind", false);
	char kpath[CFG_PATH_MAX], q[CFG_SHOW_MAX + 16];

	if (s && !strcmp(s, "lxc")) {
		t->kind = CFG_KIND_LXC;
	} else if (s && strcmp(s, "qemu")) {
		cfg_path_key(kpath, jpath, "kind");
		cfg_problem(ctx, kpath, "expected 'qemu' (a VM template) or 'lxc' (a container "
					"template), got %s",
			    cfg_quote(s, q, sizeof(q)));
	}
	if (t->kind == CFG_KIND_LXC && json_object_get(obj, "hardware")) {
		cfg_path_key(kpath, jpath, "hardware");
		cfg_problem(ctx, kpath,
			    "does not go with kind 'lxc': a container has no firmware, machine or "
			    "disks; cores, memory_mb, swap_mb, rootfs_gb, storage and bridge go in "
			    "'container'");
	}
	if (t->kind == CFG_KIND_LXC && json_object_get(obj, "artifact")) {
		cfg_path_key(kpath, jpath, "artifact");
		cfg_problem(ctx, kpath, "does not go with kind 'lxc' (artifacts are VM disk "
					"images): give the root file system tarball as 'image_url'");
	}
	if (t->kind != CFG_KIND_LXC && json_object_get(obj, "container")) {
		cfg_path_key(kpath, jpath, "container");
		cfg_problem(ctx, kpath, "only goes with \"kind\": \"lxc\" (container settings); a "
					"VM template's go in 'hardware'");
	}
}

/* pve-container's `ostype` enum (LXC/Config.pm). */
static bool cfg_is_ct_ostype(const char *s)
{
	static const char *const types[] = {"debian", "devuan",	   "ubuntu", "centos",
					    "fedora", "opensuse",  "archlinux", "alpine",
					    "gentoo", "nixos",	   "unmanaged"};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(s, types[i]))
			return true;
	return false;
}

/* A container template's `container` object; defaults when absent. */
static void cfg_parse_container(struct cfg_ctx *ctx, json_t *tobj, const char *tpath,
				struct cfg_container *ct)
{
	static const char *const keys[] = {"unprivileged", "features",	       "rootfs_gb",
					   "storage",	   "template_storage", "cores",
					   "memory_mb",	   "swap_mb",	       "bridge",
					   "ostype",	   "ifupdown"};
	const struct cfg_defaults *d = &ctx->cfg->defaults;
	char jpath[CFG_PATH_MAX], fpath[CFG_PATH_MAX], kpath[CFG_PATH_MAX];
	unsigned long cores = 1;
	json_t *obj = cfg_get_obj(ctx, tobj, tpath, "container", false), *f;
	const char *key;
	json_t *v;

	ct->unprivileged = true;
	ct->ifupdown = true;
	ct->rootfs_gb = 4;
	ct->memory_mb = 512;
	ct->swap_mb = 512;
	cfg_set_str(ctx, &ct->storage, d->storage);
	cfg_set_str(ctx, &ct->template_storage, d->template_storage);
	cfg_set_str(ctx, &ct->bridge, d->bridge);
	if (obj) {
		cfg_path_key(jpath, tpath, "container");
		CFG_CHECK_KEYS(ctx, obj, jpath, keys);
		cfg_get_bool(ctx, obj, jpath, "unprivileged", &ct->unprivileged);
		cfg_get_bool(ctx, obj, jpath, "ifupdown", &ct->ifupdown);
		cfg_get_uint(ctx, obj, jpath, "rootfs_gb", false, 1, CFG_DISK_GB_MAX,
			     &ct->rootfs_gb);
		cfg_get_uint(ctx, obj, jpath, "cores", false, 1, CFG_CORES_MAX, &cores);
		/* pve-container: memory minimum 16, swap minimum 0 */
		cfg_get_uint(ctx, obj, jpath, "memory_mb", false, 16, CFG_MEMORY_MB_MAX,
			     &ct->memory_mb);
		cfg_get_uint(ctx, obj, jpath, "swap_mb", false, 0, CFG_MEMORY_MB_MAX, &ct->swap_mb);
		cfg_get_checked(ctx, obj, jpath, "storage", false, cfg_is_storage_id,
				cfg_expect_storage, &ct->storage);
		cfg_get_checked(ctx, obj, jpath, "template_storage", false, cfg_is_storage_id,
				cfg_expect_storage, &ct->template_storage);
		cfg_get_checked(ctx, obj, jpath, "bridge", false, cfg_is_bridge, cfg_expect_bridge,
				&ct->bridge);
		cfg_get_checked(ctx, obj, jpath, "ostype", false, cfg_is_ct_ostype,
				"one of pve-container's ostypes: debian, devuan, ubuntu, centos, "
				"fedora, opensuse, archlinux, alpine, gentoo, nixos, unmanaged",
				&ct->ostype);
		f = cfg_get_obj(ctx, obj, jpath, "features", false);
		cfg_path_key(fpath, jpath, "features");
		json_object_foreach(f, key, v) {
			cfg_path_key(kpath, fpath, key);
			/* LXC.pm check_ct_modify_config_perm: only root@pam may change the others */
			if (strcmp(key, "nesting"))
				cfg_problem(ctx, kpath,
					    "expected only 'nesting': Proxmox lets only root@pam set "
					    "the other container features, and this tool uses an API "
					    "token");
			else if (!json_is_boolean(v))
				cfg_problem(ctx, kpath, "expected true or false");
			else
				ct->nesting = json_is_true(v);
		}
	}
	ct->cores = (unsigned)cores;
}

static void cfg_parse_template(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
			       struct cfg_template *t)
{
	static const char *const keys[] = {
		"name",	    "vmid",	"image_url", "checksum_url", "sha256", "signature_url",
		"keyring",  "os",	"type",	     "node",	     "nodes",  "customize",
		"hardware", "versions", "tags",	     "artifact",     "kind",   "container"};
	static const char *const vkeys[] = {"vmid_min", "vmid_max", "keep", "max_age_days",
					    "rebuild_on_change"};
	char q[CFG_SHOW_MAX + 16], kpath[CFG_PATH_MAX];
	const char *s;
	json_t *vobj;
	bool has_vmid;

	CFG_CHECK_KEYS(ctx, obj, jpath, keys);
	cfg_get_checked(ctx, obj, jpath, "name", true, cfg_is_dns_label,
			"a DNS label like 'ubuntu-noble' (letters, digits, inner hyphens, at most "
			"63)",
			&t->name);
	if (json_object_get(obj, "artifact")) {
		cfg_parse_artifact(ctx, obj, jpath, t);
		goto image_done;
	}
	cfg_get_http_url(ctx, obj, jpath, "image_url", true, &t->image_url);
	cfg_get_http_url(ctx, obj, jpath, "checksum_url", false, &t->checksum_url);
	s = cfg_get_str(ctx, obj, jpath, "sha256", false);
	if (s && !cfg_is_sha256_hex(s)) {
		cfg_path_key(kpath, jpath, "sha256");
		cfg_problem(ctx, kpath, "expected 64 hex digits, got %s", cfg_quote(s, q, sizeof(q)));
	} else if (s) {
		t->sha256 = cfg_strdup(ctx, s);
		for (char *p = t->sha256; p && *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	if (!json_object_get(obj, "checksum_url") && !json_object_get(obj, "sha256"))
		cfg_problem(ctx, jpath,
			    "expected 'checksum_url' (a SHA256SUMS file) or 'sha256', got neither; "
			    "an image is never used unverified");
	cfg_parse_signature(ctx, obj, jpath, t);
image_done:
	cfg_get_checked(ctx, obj, jpath, "os", false, cfg_is_os,
			"an OS name like 'ubuntu-24.04' (usable as a tag)", &t->os);
	cfg_get_checked(ctx, obj, jpath, "type", false, cfg_is_os,
			"a lower-case image type like 'minimal' or 'docker' (usable as a tag)",
			&t->type);
	cfg_get_checked(ctx, obj, jpath, "node", false, cfg_is_dns_label, cfg_expect_node,
			&t->node);
	if (json_is_string(json_object_get(obj, "nodes"))) {
		cfg_path_key(kpath, jpath, "nodes");
		if (strcmp(json_string_value(json_object_get(obj, "nodes")), "all"))
			cfg_problem(ctx, kpath, "expected \"all\" or a list of node names, got %s",
				    cfg_quote(json_string_value(json_object_get(obj, "nodes")), q,
					      sizeof(q)));
		t->all_nodes = true;
	} else {
		cfg_get_strv(ctx, obj, jpath, "nodes", cfg_is_dns_label, cfg_expect_node, false,
			     &t->nodes);
	}
	cfg_parse_kind(ctx, obj, jpath, t);
	cfg_parse_customize(ctx, obj, jpath, t->kind == CFG_KIND_LXC, &t->customize);
	if (t->kind == CFG_KIND_LXC) {
		cfg_parse_container(ctx, obj, jpath, &t->ct);
		/* hardware's defaults still fill the struct that VM-only readers look at */
		cfg_parse_hardware(ctx, NULL, jpath, &t->hardware);
	} else {
		cfg_parse_hardware(ctx, obj, jpath, &t->hardware);
	}
	cfg_get_tags(ctx, obj, jpath, &t->tags);

	if ((t->all_nodes || t->nodes.n) && json_object_get(obj, "node")) {
		cfg_path_key(kpath, jpath, "nodes");
		cfg_problem(ctx, kpath, "expected either 'node' or 'nodes', got both");
	}
	if ((t->all_nodes || t->nodes.n > 1) && !json_object_get(obj, "versions")) {
		cfg_path_key(kpath, jpath, "nodes");
		cfg_problem(ctx, kpath,
			    "several nodes need 'versions': each node's template gets its own VMID "
			    "from the version range");
	}
	vobj = cfg_get_obj(ctx, obj, jpath, "versions", false);
	has_vmid = json_object_get(obj, "vmid") != NULL;
	cfg_get_uint(ctx, obj, jpath, "vmid", !vobj, CFG_VMID_MIN, CFG_VMID_MAX, &t->vmid);
	if (vobj) {
		struct cfg_versions *ver = &t->versions;
		char vpath[CFG_PATH_MAX];
		bool ok;

		cfg_path_key(vpath, jpath, "versions");
		CFG_CHECK_KEYS(ctx, vobj, vpath, vkeys);
		ver->keep = 3;
		ok = cfg_get_uint(ctx, vobj, vpath, "vmid_min", true, CFG_VMID_MIN, CFG_VMID_MAX,
				  &ver->vmid_min);
		ok &= cfg_get_uint(ctx, vobj, vpath, "vmid_max", true, CFG_VMID_MIN, CFG_VMID_MAX,
				   &ver->vmid_max);
		cfg_get_uint(ctx, vobj, vpath, "keep", false, 1, 1000, &ver->keep);
		/* 36500 days: a century, far beyond any template's useful life */
		cfg_get_uint(ctx, vobj, vpath, "max_age_days", false, 1, 36500, &ver->max_age_days);
		cfg_get_bool(ctx, vobj, vpath, "rebuild_on_change", &ver->rebuild_on_change);
		if (ok && ver->vmid_min > ver->vmid_max) {
			cfg_path_key(kpath, vpath, "vmid_max");
			cfg_problem(ctx, kpath, "expected at least vmid_min (%lu), got %lu",
				    ver->vmid_min, ver->vmid_max);
		} else if (ok && ver->vmid_max - ver->vmid_min + 1 < ver->keep) {
			cfg_path_key(kpath, vpath, "keep");
			cfg_problem(ctx, kpath,
				    "expected at most the %lu VMIDs of vmid_min..vmid_max, got %lu",
				    ver->vmid_max - ver->vmid_min + 1, ver->keep);
		} else if (ok) {
			t->has_versions = true;
			if (has_vmid && (t->all_nodes || t->nodes.n > 1)) {
				cfg_path_key(kpath, jpath, "vmid");
				cfg_problem(ctx, kpath,
					    "expected no fixed VMID with several nodes (each node's "
					    "copy gets its own VMID from versions %lu..%lu)",
					    ver->vmid_min, ver->vmid_max);
			}
			if (has_vmid && t->vmid &&
			    (t->vmid < ver->vmid_min || t->vmid > ver->vmid_max)) {
				cfg_path_key(kpath, jpath, "vmid");
				cfg_problem(ctx, kpath,
					    "expected a VMID inside versions %lu..%lu, got %lu",
					    ver->vmid_min, ver->vmid_max, t->vmid);
			}
		}
	}
}

/* ---- VMs --------------------------------------------------------------------------------- */

/* The IPv4 settings of obj (`ip`: CIDR or "dhcp"; the gateway under `gwkey`) into net. */
static void cfg_parse_v4(struct cfg_ctx *ctx, json_t *obj, const char *jpath, const char *gwkey,
			 bool allow_none, struct cfg_network *net)
{
	char q[CFG_SHOW_MAX + 16], q2[CFG_SHOW_MAX + 16];
	const char *ip, *gw;

	ip = cfg_get_str(ctx, obj, jpath, "ip", false);
	gw = cfg_get_str(ctx, obj, jpath, gwkey, false);
	if (ip && (!strcmp(ip, "dhcp") || (allow_none && !strcmp(ip, "none"))))
		ip = NULL;
	else if (ip) {
		char kpath[CFG_PATH_MAX];
		uint32_t addr, mask;
		unsigned prefix;

		cfg_path_key(kpath, jpath, "ip");
		if (!cfg_parse_cidr(ip, &addr, &prefix)) {
			cfg_problem(ctx, kpath, "expected CIDR like '10.0.0.5/24', got %s",
				    cfg_quote(ip, q, sizeof(q)));
			ip = NULL;
			gw = NULL; /* a gateway cannot be checked without a subnet */
		} else {
			mask = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
			if (prefix <= 30 && (addr & ~mask) == 0) {
				cfg_problem(ctx, kpath,
					    "expected a host address, got the network address %s",
					    cfg_quote(ip, q, sizeof(q)));
			} else if (prefix <= 30 && (addr & ~mask) == ~mask) {
				cfg_problem(ctx, kpath,
					    "expected a host address, got the broadcast address %s",
					    cfg_quote(ip, q, sizeof(q)));
			} else {
				net->ip = cfg_strdup(ctx, ip);
				net->addr = addr;
				net->prefix = prefix;
			}
		}
		if (gw) {
			uint32_t gaddr;

			cfg_path_key(kpath, jpath, gwkey);
			if (!cfg_parse_ipv4(gw, &gaddr)) {
				cfg_problem(ctx, kpath, "expected an IPv4 address like '10.0.0.1', "
							"got %s",
					    cfg_quote(gw, q, sizeof(q)));
			} else if (net->ip && prefix < 32 && (gaddr & mask) != (addr & mask)) {
				cfg_problem(ctx, kpath, "expected an address inside %s, got %s",
					    cfg_quote(ip, q2, sizeof(q2)), cfg_quote(gw, q, sizeof(q)));
			} else if (net->ip && gaddr == addr) {
				cfg_problem(ctx, kpath, "expected a gateway other than the VM's own "
							"address, got %s",
					    cfg_quote(gw, q, sizeof(q)));
			} else if (net->ip) {
				net->gw = cfg_strdup(ctx, gw);
				net->gw_addr = gaddr;
			}
		}
		return;
	}
	if (gw) {
		char kpath[CFG_PATH_MAX];

		cfg_path_key(kpath, jpath, gwkey);
		cfg_problem(ctx, kpath, "a gateway needs a static 'ip' (with DHCP the server sends "
					"the route), got %s",
			    cfg_quote(gw, q, sizeof(q)));
	}
}

static void cfg_parse_network(struct cfg_ctx *ctx, json_t *vobj, const char *vpath,
			      struct cfg_network *net)
{
	static const char *const keys[] = {"ip", "gw", "bridge"};
	char jpath[CFG_PATH_MAX];
	json_t *obj = cfg_get_obj(ctx, vobj, vpath, "network_config", false);

	cfg_set_str(ctx, &net->bridge, ctx->cfg->defaults.bridge);
	if (!obj)
		return;
	cfg_path_key(jpath, vpath, "network_config");
	CFG_CHECK_KEYS(ctx, obj, jpath, keys);
	cfg_get_checked(ctx, obj, jpath, "bridge", false, cfg_is_bridge, cfg_expect_bridge,
			&net->bridge);
	cfg_parse_v4(ctx, obj, jpath, "gw", false, net);
}

bool cfg_is_mac(const char *s)
{
	/* unicast (Proxmox's mac-addr format refuses multicast: the low bit of the first byte) */
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	return !(strtoul((char[3]){s[0], s[1], 0}, NULL, 16) & 1);
}

bool cfg_is_ipv6_cidr(const char *s)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	char *end;
	unsigned long pfx;
	unsigned char buf[16];

	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return false;
	snprintf(addr, sizeof(addr), "%.*s", (int)(slash - s), s);
	pfx = strtoul(slash + 1, &end, 10);
	return !*end && slash[1] && isdigit((unsigned char)slash[1]) && pfx <= 128 &&
	       inet_pton(AF_INET6, addr, buf) == 1;
}

bool cfg_is_ipv6(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET6, s, buf) == 1;
}

bool cfg_is_ip(const char *s)
{
	return cfg_is_ipv4(s) || cfg_is_ipv6(s);
}

static bool cfg_is_nic_model(const char *s)
{
	/* the models cloud images drive (qemu-server Network.pm $nic_model_list has more) */
	static const char *const models[] = {"virtio", "e1000", "e1000e", "rtl8139", "vmxnet3"};

	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
		if (!strcmp(s, models[i]))
			return true;
	return false;
}

static bool cfg_is_rate(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	return *s && !*end && isdigit((unsigned char)*s) && v >= 0 && v <= 1e6;
}

static void cfg_parse_routes(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
			     struct cfg_nic *n)
{
	static const char *const keys[] = {"to", "via"};
	char rpath[CFG_PATH_MAX], ipath[CFG_PATH_MAX], kpath[CFG_PATH_MAX];
	char q[CFG_SHOW_MAX + 16], got[CFG_SHOW_MAX + 32];
	json_t *arr = cfg_get_array(ctx, obj, jpath, "routes", false), *item;
	size_t i;

	if (!arr || !json_array_size(arr))
		return;
	n->routes = calloc(json_array_size(arr), sizeof(*n->routes));
	if (!n->routes) {
		ctx->oom = true;
		return;
	}
	cfg_path_key(rpath, jpath, "routes");
	json_array_foreach(arr, i, item) {
		struct cfg_route r = {NULL, NULL};
		const char *to, *via;
		uint32_t a;
		unsigned pfx;
		bool v6;

		cfg_path_idx(ipath, rpath, i);
		if (!json_is_object(item)) {
			cfg_problem(ctx, ipath, "expected an object like {\"to\": \"10.1.0.0/16\", "
						"\"via\": \"10.0.0.1\"}, got %s",
				    cfg_got(item, got, sizeof(got)));
			continue;
		}
		CFG_CHECK_KEYS(ctx, item, ipath, keys);
		to = cfg_get_str(ctx, item, ipath, "to", true);
		via = cfg_get_str(ctx, item, ipath, "via", true);
		if (!to || !via)
			continue;
		v6 = strchr(to, ':') != NULL;
		if (!(v6 ? cfg_is_ipv6_cidr(to) : cfg_parse_cidr(to, &a, &pfx) ||
						      !strcmp(to, "0.0.0.0/0"))) {
			cfg_path_key(kpath, ipath, "to");
			cfg_problem(ctx, kpath, "expected a CIDR like '10.1.0.0/16' or 'fd00::/8', "
						"got %s",
				    cfg_quote(to, q, sizeof(q)));
			continue;
		}
		if (!(v6 ? cfg_is_ipv6(via) : cfg_is_ipv4(via))) {
			cfg_path_key(kpath, ipath, "via");
			cfg_problem(ctx, kpath, "expected an %s address (the family of 'to'), got %s",
				    v6 ? "IPv6" : "IPv4", cfg_quote(via, q, sizeof(q)));
			continue;
		}
		r.to = cfg_strdup(ctx, to);
		r.via = cfg_strdup(ctx, via);
		n->routes[n->n_routes++] = r;
	}
}

static void cfg_parse_nic(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
			  struct cfg_nic *n)
{
	static const char *const keys[] = {"model", "bridge", "vlan",	  "mtu",      "firewall",
					   "macaddr", "rate",  "ip",	  "gateway",  "ip6",
					   "gateway6", "routes", "dns"};
	char kpath[CFG_PATH_MAX], q[CFG_SHOW_MAX + 16];
	unsigned long v;
	const char *s;

	CFG_CHECK_KEYS(ctx, obj, jpath, keys);
	cfg_set_str(ctx, &n->model, "virtio");
	cfg_get_checked(ctx, obj, jpath, "model", false, cfg_is_nic_model,
			"a NIC model: 'virtio', 'e1000', 'e1000e', 'rtl8139' or 'vmxnet3'",
			&n->model);
	cfg_set_str(ctx, &n->v4.bridge, ctx->cfg->defaults.bridge);
	cfg_get_checked(ctx, obj, jpath, "bridge", false, cfg_is_bridge, cfg_expect_bridge,
			&n->v4.bridge);
	/* qemu-server Network.pm $net_fmt: tag 1..4094, mtu 1..65520 (VirtIO only) */
	if (cfg_get_uint(ctx, obj, jpath, "vlan", false, 1, 4094, &v))
		n->vlan = (unsigned)v;
	if (cfg_get_uint(ctx, obj, jpath, "mtu", false, 1, 65520, &v)) {
		if (n->model && strcmp(n->model, "virtio")) {
			cfg_path_key(kpath, jpath, "mtu");
			cfg_problem(ctx, kpath, "expected no mtu with model '%s' (virtio only)",
				    n->model);
		} else {
			n->mtu = (unsigned)v;
		}
	}
	n->firewall = cfg_get_tri(ctx, obj, jpath, "firewall");
	s = cfg_get_str(ctx, obj, jpath, "macaddr", false);
	if (s && !cfg_is_mac(s)) {
		cfg_path_key(kpath, jpath, "macaddr");
		cfg_problem(ctx, kpath, "expected a unicast MAC like 'BC:24:11:00:00:01', got %s",
			    cfg_quote(s, q, sizeof(q)));
	} else if (s) {
		n->macaddr = cfg_strdup(ctx, s);
		for (char *c = n->macaddr; c && *c; c++)
			*c = (char)toupper((unsigned char)*c);
	}
	if (json_is_number(json_object_get(obj, "rate"))) {
		double r = json_number_value(json_object_get(obj, "rate"));
		char buf[32];

		snprintf(buf, sizeof(buf), "%g", r);
		if (r < 0 || !cfg_is_rate(buf)) {
			cfg_path_key(kpath, jpath, "rate");
			cfg_problem(ctx, kpath, "expected a rate limit in MB/s from 0, got %s", buf);
		} else {
			n->rate = cfg_strdup(ctx, buf);
		}
	} else if (json_object_get(obj, "rate")) {
		char got[CFG_SHOW_MAX + 32];

		cfg_path_key(kpath, jpath, "rate");
		cfg_problem(ctx, kpath, "expected a number of MB/s like 12.5, got %s",
			    cfg_got(json_object_get(obj, "rate"), got, sizeof(got)));
	}
	s = cfg_get_str(ctx, obj, jpath, "ip", false);
	n->ip4_none = s && !strcmp(s, "none");
	cfg_parse_v4(ctx, obj, jpath, "gateway", true, &n->v4);
	s = cfg_get_str(ctx, obj, jpath, "ip6", false);
	if (s && (!strcmp(s, "dhcp") || !strcmp(s, "auto") || cfg_is_ipv6_cidr(s))) {
		n->ip6 = cfg_strdup(ctx, s);
	} else if (s) {
		cfg_path_key(kpath, jpath, "ip6");
		cfg_problem(ctx, kpath,
			    "expected an IPv6 CIDR like '2001:db8::5/64', 'dhcp' or 'auto' (SLAAC), "
			    "got %s",
			    cfg_quote(s, q, sizeof(q)));
	}
	s = cfg_get_str(ctx, obj, jpath, "gateway6", false);
	if (s) {
		cfg_path_key(kpath, jpath, "gateway6");
		if (!cfg_is_ipv6(s))
			cfg_problem(ctx, kpath, "expected an IPv6 address like '2001:db8::1', got %s",
				    cfg_quote(s, q, sizeof(q)));
		else if (!n->ip6 || !strchr(n->ip6, '/'))
			cfg_problem(ctx, kpath, "a gateway6 needs a static 'ip6' (with dhcp or auto "
						"the router announces the route), got %s",
				    cfg_quote(s, q, sizeof(q)));
		else
			n->gateway6 = cfg_strdup(ctx, s);
	}
	cfg_parse_routes(ctx, obj, jpath, n);
	n->has_dns = cfg_get_strv(ctx, obj, jpath, "dns", cfg_is_ip,
				  "an IP address like '1.1.1.1' or '2606:4700::1111'", false, &n->dns);
}

static void cfg_parse_nics(struct cfg_ctx *ctx, json_t *vobj, const char *vpath,
			   struct cfg_vm *vm)
{
	char npath[CFG_PATH_MAX], ipath[CFG_PATH_MAX], kpath[CFG_PATH_MAX], got[CFG_SHOW_MAX + 32];
	json_t *arr = cfg_get_array(ctx, vobj, vpath, "networks", false), *item;
	size_t i;

	if (!arr)
		return;
	cfg_path_key(npath, vpath, "networks");
	if (json_object_get(vobj, "network_config")) {
		cfg_problem(ctx, npath, "expected either 'networks' or 'network_config', got both");
		return;
	}
	/* qemu-server: net0..net31 */
	if (!json_array_size(arr) || json_array_size(arr) > 32) {
		cfg_problem(ctx, npath, "expected 1 to 32 NICs, got %zu", json_array_size(arr));
		return;
	}
	vm->nics = calloc(json_array_size(arr), sizeof(*vm->nics));
	if (!vm->nics) {
		ctx->oom = true;
		return;
	}
	json_array_foreach(arr, i, item) {
		cfg_path_idx(ipath, npath, i);
		if (!json_is_object(item)) {
			cfg_problem(ctx, ipath, "expected an object, got %s",
				    cfg_got(item, got, sizeof(got)));
			continue;
		}
		cfg_parse_nic(ctx, item, ipath, &vm->nics[vm->n_nics]);
		for (size_t j = 0; j < vm->n_nics; j++) {
			const char *a = vm->nics[j].macaddr, *b = vm->nics[vm->n_nics].macaddr;

			if (a && b && !strcmp(a, b)) {
				cfg_path_key(kpath, ipath, "macaddr");
				cfg_problem(ctx, kpath, "MAC '%s' is already %s[%zu]'s", b, npath, j);
			}
		}
		vm->n_nics++;
	}
	if (vm->n_nics) {
		struct cfg_network *dst = &vm->network, *src = &vm->nics[0].v4;

		cfg_set_str(ctx, &dst->bridge, src->bridge);
		dst->ip = cfg_strdup(ctx, src->ip);
		dst->gw = cfg_strdup(ctx, src->gw);
		dst->addr = src->addr;
		dst->prefix = src->prefix;
		dst->gw_addr = src->gw_addr;
	}
}

void cfg_nic_release(struct cfg_nic *n)
{
	free(n->model);
	free(n->macaddr);
	free(n->rate);
	free(n->v4.ip);
	free(n->v4.gw);
	free(n->v4.bridge);
	free(n->ip6);
	free(n->gateway6);
	for (size_t i = 0; i < n->n_routes; i++) {
		free(n->routes[i].to);
		free(n->routes[i].via);
	}
	free(n->routes);
	cfg_strv_free(&n->dns);
}

static void cfg_parse_user(struct cfg_ctx *ctx, json_t *vobj, const char *vpath,
			   struct cfg_vm *vm)
{
	static const char *const keys[] = {"username", "password_hash", "ssh_public_key"};
	char jpath[CFG_PATH_MAX], kpath[CFG_PATH_MAX], ipath[CFG_PATH_MAX];
	json_t *obj = cfg_get_obj(ctx, vobj, vpath, "user_config", false);
	struct cfg_strv keys_raw = {NULL, 0};
	const char *s;

	if (!obj)
		return;
	vm->has_user = true;
	cfg_path_key(jpath, vpath, "user_config");
	CFG_CHECK_KEYS(ctx, obj, jpath, keys);
	cfg_get_checked(ctx, obj, jpath, "username", true, cfg_is_username,
			"a Linux user name like 'admin' ([a-z_][a-z0-9_-]*, at most 32)",
			&vm->user.username);
	s = cfg_get_str(ctx, obj, jpath, "password_hash", false);
	if (s) {
		/* never quote the value: it may be a plaintext password */
		const char *why = cfg_check_password_hash(s);

		cfg_path_key(kpath, jpath, "password_hash");
		if (why)
			cfg_problem(ctx, kpath, "%s", why);
		else
			vm->user.password_hash = cfg_strdup(ctx, s);
	}
	cfg_get_strv(ctx, obj, jpath, "ssh_public_key", NULL, "an OpenSSH public key", true,
		     &keys_raw);
	cfg_path_key(kpath, jpath, "ssh_public_key");
	for (size_t i = 0; i < keys_raw.n; i++) {
		const char *why = cfg_check_ssh_key(keys_raw.items[i]);

		if (json_is_array(json_object_get(obj, "ssh_public_key")))
			cfg_path_idx(ipath, kpath, i);
		else
			snprintf(ipath, sizeof(ipath), "%s", kpath);
		if (why)
			cfg_problem(ctx, ipath, "%s", why);
		else
			cfg_strv_push(ctx, &vm->user.ssh_public_keys, keys_raw.items[i]);
	}
	cfg_strv_free(&keys_raw);
	if (!json_object_get(obj, "password_hash") && !json_object_get(obj, "ssh_public_key"))
		cfg_problem(ctx, jpath, "expected 'password_hash' or 'ssh_public_key' (or both), got "
					"neither; the user could never log in");
}

/* "<series>-YYYYMMDD-N...": the name provisioning gives a version (series.c). */
static bool cfg_is_version_of(const char *series, const char *s)
{
	size_t n = strlen(series), digits = 0;

	if (strncmp(s, series, n) || s[n] != '-')
		return false;
	s += n + 1;
	for (size_t i = 0; i < 8; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	if (s[8] != '-')
		return false;
	for (s += 9; isdigit((unsigned char)*s); s++)
		digits++;
	return digits > 0 && !*s;
}

static void cfg_parse_template_version(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
				       struct cfg_vm *vm)
{
	const char *s = cfg_get_str(ctx, obj, jpath, "template_version", false);
	char kpath[CFG_PATH_MAX], q[CFG_SHOW_MAX + 16];

	if (!s)
		return;
	cfg_path_key(kpath, jpath, "template_version");
	if (!vm->clone_from_template) {
		cfg_problem(ctx, kpath, "only goes with 'clone_from_template' (a series to choose "
					"a version of), got 'clone_from_vmid'");
		return;
	}
	if (!strcmp(s, "validated")) {
		vm->template_select = CFG_SELECT_VALIDATED;
	} else if (!strcmp(s, "latest")) {
		vm->template_select = CFG_SELECT_LATEST;
	} else if (cfg_is_version_of(vm->clone_from_template, s)) {
		vm->template_select = CFG_SELECT_PINNED;
		vm->template_version = cfg_strdup(ctx, s);
	} else {
		cfg_problem(ctx, kpath,
			    "expected \"validated\", \"latest\" or a version name like "
			    "'%s-20261202-001', got %s",
			    vm->clone_from_template, cfg_quote(s, q, sizeof(q)));
	}
}

static bool cfg_is_ha_state(const char *s)
{
	/* pve-ha-manager Resources.pm: the requested states */
	return !strcmp(s, "started") || !strcmp(s, "stopped") || !strcmp(s, "enabled") ||
	       !strcmp(s, "disabled") || !strcmp(s, "ignored");
}

static bool cfg_is_ha_group(const char *s)
{
	/* pve-common pve-configid: [a-z][a-z0-9_-]+ (case-insensitive) */
	return isalpha((unsigned char)s[0]) && strlen(s) >= 2 && strlen(s) <= 64 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
		       strlen(s);
}

static void cfg_parse_ha(struct cfg_ctx *ctx, json_t *obj, const char *jpath, struct cfg_vm *vm)
{
	static const char *const keys[] = {"state",	   "group",	   "comment",
					   "max_restart", "max_relocate", "failback"};
	char hpath[CFG_PATH_MAX], kpath[CFG_PATH_MAX];
	json_t *h = cfg_get_obj(ctx, obj, jpath, "ha", false);
	const char *s;

	if (!h)
		return;
	vm->has_ha = true;
	cfg_path_key(hpath, jpath, "ha");
	CFG_CHECK_KEYS(ctx, h, hpath, keys);
	cfg_set_str(ctx, &vm->ha.state, "started");
	cfg_get_checked(ctx, h, hpath, "state", false, cfg_is_ha_state,
			"'started', 'stopped', 'enabled', 'disabled' or 'ignored'", &vm->ha.state);
	cfg_get_checked(ctx, h, hpath, "group", false, cfg_is_ha_group,
			"an HA group name like 'prod' (Proxmox 8; Proxmox 9 has rules instead)",
			&vm->ha.group);
	s = cfg_get_str(ctx, h, hpath, "comment", false);
	if (s && (strlen(s) > 4096 || strchr(s, '\n'))) {
		cfg_path_key(kpath, hpath, "comment");
		cfg_problem(ctx, kpath, "expected one line of at most 4096 characters");
	} else if (s) {
		vm->ha.comment = cfg_strdup(ctx, s);
	}
	/* Resources.pm: max_restart and max_relocate 0..10 */
	vm->ha.has_max_restart =
		cfg_get_uint(ctx, h, hpath, "max_restart", false, 0, 10, &vm->ha.max_restart);
	vm->ha.has_max_relocate =
		cfg_get_uint(ctx, h, hpath, "max_relocate", false, 0, 10, &vm->ha.max_relocate);
	vm->ha.failback = cfg_get_tri(ctx, h, hpath, "failback");
	if (vm->no_start && vm->ha.state && !strcmp(vm->ha.state, "started")) {
		cfg_path_key(kpath, hpath, "state");
		cfg_problem(ctx, kpath, "expected 'stopped' (or another state) with start false: the "
					"HA manager starts a 'started' resource, got 'started'");
	}
}

static void cfg_parse_lifecycle(struct cfg_ctx *ctx, json_t *obj, const char *jpath,
				struct cfg_vm *vm)
{
	static const char *const skeys[] = {"order", "up", "down"};
	char spath[CFG_PATH_MAX];
	bool start;
	json_t *st;

	vm->onboot = cfg_get_tri(ctx, obj, jpath, "onboot");
	vm->protection = cfg_get_tri(ctx, obj, jpath, "protection");
	if (cfg_get_bool(ctx, obj, jpath, "start", &start))
		vm->no_start = !start;
	cfg_parse_ha(ctx, obj, jpath, vm);
	st = cfg_get_obj(ctx, obj, jpath, "startup", false);
	if (!st)
		return;
	cfg_path_key(spath, jpath, "startup");
	CFG_CHECK_KEYS(ctx, st, spath, skeys);
	/* pve-common JSONSchema.pm pve-startup-order: order, up, down are non-negative */
	vm->startup.has_order =
		cfg_get_uint(ctx, st, spath, "order", false, 0, 1000000, &vm->startup.order);
	vm->startup.has_up = cfg_get_uint(ctx, st, spath, "up", false, 0, 86400, &vm->startup.up);
	vm->startup.has_down =
		cfg_get_uint(ctx, st, spath, "down", false, 0, 86400, &vm->startup.down);
	vm->has_startup = vm->startup.has_order || vm->startup.has_up || vm->startup.has_down;
	if (!json_object_size(st))
		cfg_problem(ctx, spath, "expected at least one of 'order', 'up' or 'down', got an "
					"empty object");
}

static void cfg_parse_vm(struct cfg_ctx *ctx, json_t *obj, const char *jpath, struct cfg_vm *vm)
{
	static const char *const keys[] = {
		"vmid",	    "name",	    "clone_from_vmid", "clone_from_template",
		"cores",    "memory_mb",    "disk_size_gb",    "network_config",
		"user_config", "features",  "node",	       "storage",
		"full_clone", "pool",	    "tags",	       "description",
		"packages", "dns_servers", "template_version",
		"networks", "onboot", "startup", "protection", "start", "ha", CFG_MACHINE_KEYS,
		"user_data_parts", "vendor_data",
	};
	const struct cfg_defaults *d = &ctx->cfg->defaults;
	char kpath[CFG_PATH_MAX];
	bool by_vmid, by_name;

	cfg_entry_id(ctx, obj, vm->config_id);
	CFG_CHECK_KEYS(ctx, obj, jpath, keys);
	cfg_get_uint(ctx, obj, jpath, "vmid", true, CFG_VMID_MIN, CFG_VMID_MAX, &vm->vmid);
	cfg_get_checked(ctx, obj, jpath, "name", true, cfg_is_dns_label,
			"a DNS label like 'web-1' (letters, digits, inner hyphens, at most 63)",
			&vm->name);
	by_vmid = json_object_get(obj, "clone_from_vmid") != NULL;
	by_name = json_object_get(obj, "clone_from_template") != NULL;
	if (by_vmid && by_name) {
		cfg_path_key(kpath, jpath, "clone_from_template");
		cfg_problem(ctx, kpath, "expected exactly one of 'clone_from_vmid' or "
					"'clone_from_template', got both");
	} else if (!by_vmid && !by_name) {
		cfg_path_key(kpath, jpath, "clone_from_vmid");
		cfg_problem(ctx, kpath, "required key is missing (or give 'clone_from_template')");
	}
	cfg_get_uint(ctx, obj, jpath, "clone_from_vmid", false, CFG_VMID_MIN, CFG_VMID_MAX,
		     &vm->clone_from_vmid);
	cfg_get_checked(ctx, obj, jpath, "clone_from_template", false, cfg_is_dns_label,
			"a template name", &vm->clone_from_template);
	cfg_parse_template_version(ctx, obj, jpath, vm);
	cfg_get_sizes(ctx, obj, jpath, &vm->cores, &vm->memory_mb, &vm->disk_size_gb);
	cfg_parse_network(ctx, obj, jpath, &vm->network);
	cfg_parse_nics(ctx, obj, jpath, vm);
	cfg_parse_user(ctx, obj, jpath, vm);
	cfg_get_strv(ctx, obj, jpath, "features", cfg_is_feature_name, "a feature name", false,
		     &vm->features);
	cfg_get_checked(ctx, obj, jpath, "node", false, cfg_is_dns_label, cfg_expect_node,
			&vm->node);
	cfg_set_str(ctx, &vm->storage, d->storage);
	cfg_get_checked(ctx, obj, jpath, "storage", false, cfg_is_storage_id, cfg_expect_storage,
			&vm->storage);
	vm->full_clone = d->full_clone;
	cfg_get_bool(ctx, obj, jpath, "full_clone", &vm->full_clone);
	cfg_get_checked(ctx, obj, jpath, "pool", false, cfg_is_pool,
			"a Proxmox pool name like 'web' or 'prod/web'", &vm->pool);
	cfg_get_tags(ctx, obj, jpath, &vm->tags);
	if (json_object_get(obj, "description")) {
		const char *s = cfg_get_str(ctx, obj, jpath, "description", false);

		cfg_path_key(kpath, jpath, "description");
		if (s && strlen(s) > 8192)
			cfg_problem(ctx, kpath, "expected at most 8192 characters, got %zu",
				    strlen(s));
		else if (s)
			vm->description = cfg_strdup(ctx, s);
	}
	cfg_get_strv(ctx, obj, jpath, "packages", cfg_is_package, cfg_expect_package, false,
		     &vm->packages);
	if (!cfg_get_strv(ctx, obj, jpath, "dns_servers", cfg_is_ipv4, cfg_expect_ipv4, false,
			  &vm->dns_servers))
		cfg_strv_copy(ctx, &vm->dns_servers, &d->dns_servers);
	vm->search_domain = cfg_strdup(ctx, d->search_domain);
	cfg_parse_machine(ctx, obj, jpath, vm->memory_mb, vm->storage, &vm->mach);
	cfg_parse_lifecycle(ctx, obj, jpath, vm);
	cfg_parse_parts(ctx, obj, jpath, "user_data_parts", &vm->user_data_parts,
			&vm->n_user_data_parts);
	vm->has_vendor_data =
		cfg_parse_parts(ctx, obj, jpath, "vendor_data", &vm->vendor_data, &vm->n_vendor_data);
}

/* ---- cross checks ------------------------------------------------------------------------ */

static void cfg_cross_check(struct cfg_ctx *ctx)
{
	const struct cfg *cfg = ctx->cfg;
	char jpath[CFG_PATH_MAX];

	for (size_t i = 0; i < cfg->n_templates; i++) {
		const struct cfg_template *t = &cfg->templates[i];

		for (size_t j = 0; j < i; j++) {
			const struct cfg_template *o = &cfg->templates[j];

			if (t->name && o->name && !strcasecmp(t->name, o->name)) {
				snprintf(jpath, sizeof(jpath), "$.templates[%zu].name", i);
				cfg_problem(ctx, jpath, "duplicate template name '%s' (also "
							"$.templates[%zu].name)",
					    t->name, j);
			}
			if ((t->vmid && cfg_template_owns(o, t->vmid)) ||
			    (o->vmid && cfg_template_owns(t, o->vmid)) ||
			    (t->has_versions && o->has_versions &&
			     t->versions.vmid_min <= o->versions.vmid_max &&
			     o->versions.vmid_min <= t->versions.vmid_max)) {
				snprintf(jpath, sizeof(jpath), "$.templates[%zu].%s", i,
					 t->has_versions ? "versions" : "vmid");
				cfg_problem(ctx, jpath,
					    "VMIDs overlap those of $.templates[%zu] ('%s')", j,
					    o->name ? o->name : "?");
			}
		}
	}
	for (size_t i = 0; i < cfg->n_vms; i++) {
		const struct cfg_vm *vm = &cfg->vms[i];
		const struct cfg_template *t;

		for (size_t j = 0; j < i; j++) {
			const struct cfg_vm *o = &cfg->vms[j];

			if (vm->vmid && vm->vmid == o->vmid) {
				snprintf(jpath, sizeof(jpath), "$.vms[%zu].vmid", i);
				cfg_problem(ctx, jpath, "duplicate VMID %lu (also $.vms[%zu].vmid)",
					    vm->vmid, j);
			}
			if (vm->name && o->name && !strcasecmp(vm->name, o->name)) {
				snprintf(jpath, sizeof(jpath), "$.vms[%zu].name", i);
				cfg_problem(ctx, jpath, "duplicate VM name '%s' (also $.vms[%zu].name)",
					    vm->name, j);
			}
		}
		for (size_t j = 0; j < cfg->n_templates && vm->vmid; j++) {
			if (cfg_template_owns(&cfg->templates[j], vm->vmid)) {
				snprintf(jpath, sizeof(jpath), "$.vms[%zu].vmid", i);
				cfg_problem(ctx, jpath,
					    "VMID %lu belongs to template '%s' ($.templates[%zu])",
					    vm->vmid,
					    cfg->templates[j].name ? cfg->templates[j].name : "?", j);
			}
		}
		if (vm->clone_from_template && !cfg_find_template(cfg, vm->clone_from_template)) {
			snprintf(jpath, sizeof(jpath), "$.vms[%zu].clone_from_template", i);
			cfg_problem(ctx, jpath, "expected the name of a template in $.templates, got "
						"'%s'",
				    vm->clone_from_template);
		} else if (vm->clone_from_template &&
			   cfg_find_template(cfg, vm->clone_from_template)->kind == CFG_KIND_LXC) {
			snprintf(jpath, sizeof(jpath), "$.vms[%zu].clone_from_template", i);
			cfg_problem(ctx, jpath,
				    "template '%s' is a container template (kind 'lxc'): a VM "
				    "clones a VM template",
				    vm->clone_from_template);
		} else if (vm->template_select != CFG_SELECT_VALIDATED &&
			   !cfg_find_template(cfg, vm->clone_from_template)->has_versions) {
			snprintf(jpath, sizeof(jpath), "$.vms[%zu].template_version", i);
			cfg_problem(ctx, jpath,
				    "template '%s' has a fixed VMID and no versions to choose from: "
				    "remove 'template_version' or give the template 'versions'",
				    vm->clone_from_template);
		}
		if (vm->clone_from_vmid) {
			const struct cfg_vm *o = cfg_find_vm(cfg, vm->clone_from_vmid);

			snprintf(jpath, sizeof(jpath), "$.vms[%zu].clone_from_vmid", i);
			if (o == vm || vm->clone_from_vmid == vm->vmid)
				cfg_problem(ctx, jpath, "a VM cannot clone itself (%lu)", vm->vmid);
			else if (o)
				cfg_problem(ctx, jpath,
					    "expected a template's VMID, got %lu, which is the VM "
					    "'%s' of this config",
					    vm->clone_from_vmid, o->name ? o->name : "?");
		}
		/* Proxmox hashes cipassword again unless it matches ^\$(?:[156]|2[ay])(\$.+){2}
		 * (qemu-server API2/Qemu.pm $update_vm_api, pve-common PVE::Tools::encrypt_pw):
		 * a yescrypt or $2b$ hash would become the literal password. With snippets_dir
		 * the hash travels in our user-data instead, untouched. */
		if (cfg->defaults.cloudinit_mode == CFG_CLOUDINIT_NATIVE && !cfg->defaults.snippets_dir &&
		    vm->user.password_hash && !cfg_proxmox_keeps_hash(vm->user.password_hash)) {
			snprintf(jpath, sizeof(jpath), "$.vms[%zu].user_config.password_hash", i);
			cfg_problem(ctx, jpath,
				    "expected a $6$ or $5$ hash with cloudinit_mode 'native': Proxmox "
				    "hashes a '%.4s...' hash again and the password becomes the hash "
				    "text; use 'mkpasswd -m sha-512', or cloudinit_mode 'iso' (or "
				    "defaults.snippets_dir), which deliver the hash as it is",
				    vm->user.password_hash);
		}
		if (cfg->defaults.cloudinit_mode == CFG_CLOUDINIT_NATIVE && vm->n_nics) {
			const struct cfg_nic *n0 = &vm->nics[0];

			/* NEEDSWORK: ipconfigN for every NIC; native mode renders ipconfig0 only */
			snprintf(jpath, sizeof(jpath), "$.vms[%zu].networks", i);
			if (vm->n_nics > 1 || n0->ip6 || n0->n_routes || n0->has_dns || n0->ip4_none)
				cfg_problem(ctx, jpath,
					    "expected one NIC with IPv4 only (ip, gateway) with "
					    "cloudinit_mode 'native', got %zu NIC(s) with more; use "
					    "cloudinit_mode 'iso'",
					    vm->n_nics);
		}
		t = cfg_vm_template(cfg, vm);
		if (t && vm->disk_size_gb && t->hardware.disk_size_gb > vm->disk_size_gb) {
			snprintf(jpath, sizeof(jpath), "$.vms[%zu].disk_size_gb", i);
			cfg_problem(ctx, jpath,
				    "expected at least the template's %lu GB (disks only grow), got "
				    "%lu",
				    t->hardware.disk_size_gb, vm->disk_size_gb);
		}
		if (t && vm->mach.has_balloon && !vm->memory_mb &&
		    vm->mach.balloon_mb > t->hardware.memory_mb) {
			snprintf(jpath, sizeof(jpath), "$.vms[%zu].balloon", i);
			cfg_problem(ctx, jpath,
				    "expected at most the template's memory_mb (%lu; the VM keeps "
				    "it), got %lu",
				    t->hardware.memory_mb, vm->mach.balloon_mb);
		}
		for (size_t k = 0; k < vm->features.n; k++) {
			const struct cfg_feature *f = cfg_find_feature(cfg, vm->features.items[k]);

			snprintf(jpath, sizeof(jpath), "$.vms[%zu].features[%zu]", i, k);
			if (!f)
				cfg_problem(ctx, jpath, "expected a feature defined in $.features (or "
							"the built-in 'docker'), got '%s'",
					    vm->features.items[k]);
			else if (f->builtin && !f->script_path)
				cfg_problem(ctx, jpath,
					    "the built-in feature '%s' needs its script '%s', which "
					    "is neither next to the config, nor beside this binary or "
					    "in its ../share/phoenix, nor in '%s'",
					    f->name, f->script, PHX_DATADIR);
		}
	}
}

/* ---- the document ------------------------------------------------------------------------ */

/* Room for the items of the array $.key (elem bytes each, zeroed; owned by the struct cfg
 * once stored there), with the array in *ret_arr (borrowed). NULL, and *ret_arr NULL, when
 * the key is absent, bad or empty, or memory ran out (then ctx->oom is set). */
static void *cfg_get_list(struct cfg_ctx *ctx, json_t *root, const char *key, size_t elem,
			  json_t **ret_arr)
{
	json_t *arr = cfg_get_array(ctx, root, "$", key, false);
	void *items;

	*ret_arr = NULL;
	if (!arr || !json_array_size(arr))
		return NULL;
	items = calloc(json_array_size(arr), elem);
	if (!items) {
		ctx->oom = true;
		return NULL;
	}
	*ret_arr = arr;
	return items;
}

/* True when item i of the list at `jlist` is an object (its path is then in jpath, which
 * holds CFG_PATH_MAX bytes); else reports it. */
static bool cfg_list_item(struct cfg_ctx *ctx, const char *jlist, size_t i, json_t *item,
			  char *jpath)
{
	char got[CFG_SHOW_MAX + 32];

	cfg_path_idx(jpath, jlist, i);
	if (!json_is_object(item)) {
		cfg_problem(ctx, jpath, "expected an object, got %s",
			    cfg_got(item, got, sizeof(got)));
		return false;
	}
	return true;
}

void cfg_parse_root(struct cfg_ctx *ctx, json_t *root)
{
	static const char *const keys[] = {"proxmox",  "defaults", "templates",
					   "features", "vms",	   "containers"};
	struct cfg *cfg = ctx->cfg;
	json_t *arr, *item;
	char jpath[CFG_PATH_MAX], got[CFG_SHOW_MAX + 32];
	size_t i;

	if (!json_is_object(root)) {
		cfg_problem(ctx, "$", "expected an object with 'vms' and/or 'templates', got %s",
			    cfg_got(root, got, sizeof(got)));
		return;
	}
	CFG_CHECK_KEYS(ctx, root, "$", keys);
	cfg_parse_proxmox(ctx, root);
	cfg_parse_defaults(ctx, root);
	cfg_parse_features(ctx, root);

	cfg->templates = cfg_get_list(ctx, root, "templates", sizeof(*cfg->templates), &arr);
	json_array_foreach(arr, i, item) {
		if (cfg_list_item(ctx, "$.templates", i, item, jpath))
			cfg_parse_template(ctx, item, jpath, &cfg->templates[cfg->n_templates++]);
	}
	cfg->vms = cfg_get_list(ctx, root, "vms", sizeof(*cfg->vms), &arr);
	json_array_foreach(arr, i, item) {
		if (cfg_list_item(ctx, "$.vms", i, item, jpath))
			cfg_parse_vm(ctx, item, jpath, &cfg->vms[cfg->n_vms++]);
	}
	cfg_parse_containers(ctx, root);
	if (!json_object_get(root, "vms") && !json_object_get(root, "templates") &&
	    !json_object_get(root, "containers"))
		cfg_problem(ctx, "$", "expected at least one of 'containers', 'vms' or 'templates', "
				      "got none");
	cfg_cross_check(ctx);
	cfg_ct_cross_check(ctx);
}
