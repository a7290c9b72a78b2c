/* customize_plan: building and validating the ordered customization plan, and the pure
 * decisions of a run (which file system is the OS root, what os-release says, which OS family
 * that is and the exact guest commands each step runs on it). No libguestfs here, so all of it
 * is unit-testable without an appliance. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "customize.h"
#include "customize_int.h"
#include "fsutil.h"

struct cust_plan *cust_plan_new(struct phx_err *err)
{
	struct cust_plan *plan = calloc(1, sizeof(*plan));

	if (!plan)
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return plan;
}

static void cust_op_release(struct cust_op *op)
{
	for (size_t i = 0; i < op->nargs; i++)
		free(op->args[i]);
	free(op->args);
	free(op->data);
	free(op->desc);
}

void cust_plan_free(struct cust_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->n; i++)
		cust_op_release(&plan->ops[i]);
	free(plan->ops);
	free(plan);
}

size_t cust_plan_len(const struct cust_plan *plan)
{
	return plan->n;
}

enum cust_op_kind cust_plan_kind(const struct cust_plan *plan, size_t i)
{
	return plan->ops[i].kind;
}

const char *cust_plan_describe(const struct cust_plan *plan, size_t i)
{
	return plan->ops[i].desc;
}

const struct cust_op *cust_plan_op(const struct cust_plan *plan, size_t i)
{
	return &plan->ops[i];
}

bool cust_plan_needs_network(const struct cust_plan *plan)
{
	for (size_t i = 0; i < plan->n; i++)
		if (plan->ops[i].kind == CUST_OP_PACKAGES)
			return true;
	return false;
}

/* Appends a fully built op; on failure releases it, so callers hand it over either way. */
static int cust_plan_push(struct cust_plan *plan, struct cust_op *op, struct phx_err *err)
{
	if (plan->n == plan->alloc) {
		size_t alloc = plan->alloc ? plan->alloc * 2 : 8;
		struct cust_op *ops = realloc(plan->ops, alloc * sizeof(*ops));

		if (!ops) {
			cust_op_release(op);
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		}
		plan->ops = ops;
		plan->alloc = alloc;
	}
	plan->ops[plan->n++] = *op;
	return 0;
}

/* Copies n strings into op->args and builds "<verb> 'a b c'" as its description. */
static int cust_op_set_args(struct cust_op *op, const char *verb, const char *const *v, size_t n,
			    struct phx_err *err)
{
	struct buf d = BUF_INIT;

	op->args = calloc(n ? n : 1, sizeof(*op->args));
	if (!op->args)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		op->args[i] = strdup(v[i]);
		if (!op->args[i])
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		op->nargs++;
	}
	if (buf_printf(&d, err, "%s '", verb) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const char *shown = v[i];

		if (op->kind == CUST_OP_LOCAL_PACKAGES && strrchr(shown, '/'))
			shown = strrchr(shown, '/') + 1;
		if (buf_printf(&d, err, "%s%s", i ? " " : "", shown) < 0)
			goto fail;
	}
	if (buf_puts(&d, "'", err) < 0)
		goto fail;
	op->desc = buf_detach(&d);
	if (!op->desc)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return 0;
fail:
	buf_release(&d);
	return -1;
}

/* Debian policy's [a-z0-9][a-z0-9+.-]+ widened to what RPM names use too (NetworkManager,
 * perl-Net-SSLeay, python3-ruamel_yaml), then optionally :arch and/or =version. */
bool cust_valid_package(const char *s)
{
	const char *p = s;

	if (!isalnum((unsigned char)*p))
		return false;
	for (p++; *p && *p != ':' && *p != '='; p++)
		if (!isalnum((unsigned char)*p) && !strchr("+._-", *p))
			return false;
	if (p - s < 2)
		return false;
	if (*p == ':') {
		const char *a = ++p;

		/* Debian's amd64, RPM's x86_64 */
		for (; *p && *p != '='; p++)
			if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) &&
			    !strchr("-_", *p))
				return false;
		if (p == a)
			return false;
	}
	if (*p == '=') {
		const char *v = ++p;

		for (; *p; p++)
			if (!isalnum((unsigned char)*p) && !strchr("+.~:-", *p))
				return false;
		if (p == v)
			return false;
	}
	return true;
}

/* systemd unit names: letters, digits, ":-_.\@", at most 255 bytes, no leading '-' or '.'. */
bool cust_valid_user_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 32 || !(islower((unsigned char)s[0]) || s[0] == '_'))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

bool cust_valid_unit(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 255 || s[0] == '-' || s[0] == '.')
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(":-_.\\@", *p))
			return false;
	return true;
}

/* Absolute, not "/", no empty, "." or ".." components, no trailing slash. */
bool cust_valid_guest_path(const char *s)
{
	const char *p = s;

	if (s[0] != '/' || s[1] == '\0')
		return false;
	while (*p == '/') {
		const char *c = ++p;
		size_t len;

		while (*p && *p != '/')
			p++;
		len = (size_t)(p - c);
		if (len == 0 || (len == 1 && c[0] == '.') ||
		    (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
	}
	return true;
}

/* Zone names as in tzdata: components of [A-Za-z0-9_+-], separated by '/', no '..'. */
bool cust_valid_timezone(const char *s)
{
	const char *p = s;

	if (!*s || strlen(s) > 128)
		return false;
	for (;;) {
		const char *c = p;

		while (*p && *p != '/') {
			if (!isalnum((unsigned char)*p) && !strchr("_+-.", *p))
				return false;
			p++;
		}
		if (p == c || (p - c == 1 && c[0] == '.') || (p - c == 2 && !strncmp(c, "..", 2)))
			return false;
		if (!*p)
			return true;
		p++;
	}
}

static int cust_check_list(const char *what, const char *const *v, size_t n,
			   bool (*valid)(const char *), const char *expect, struct phx_err *err)
{
	if (n == 0)
		return phx_err_set(err, PHX_E_INPUT, "%s: expected at least one name", what);
	for (size_t i = 0; i < n; i++) {
		if (!v[i] || !valid(v[i]))
			return phx_err_set(err, PHX_E_INPUT, "%s[%zu]: expected %s, got '%s'", what,
					   i, expect, v[i] ? v[i] : "(null)");
	}
	return 0;
}

int cust_plan_add_packages(struct cust_plan *plan, const char *const *names, size_t n,
			   struct phx_err *err)
{
	struct cust_op op = {.kind = CUST_OP_PACKAGES};

	if (cust_check_list("packages", names, n, cust_valid_package,
			    "a package name like 'qemu-guest-agent'", err) < 0)
		return -1;
	if (cust_op_set_args(&op, "install packages", names, n, err) < 0) {
		cust_op_release(&op);
		return -1;
	}
	return cust_plan_push(plan, &op, err);
}

static bool cust_any(const char *s)
{
	return s && *s;
}

/* The package format of a local file name: ".deb", ".rpm", ".apk", or NULL. */
static const char *cust_local_ext(const char *base)
{
	static const char *const exts[] = {".deb", ".rpm", ".apk"};
	size_t len = strlen(base);

	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (len > 4 && !strcmp(base + len - 4, exts[i]))
			return exts[i];
	return NULL;
}

int cust_plan_add_local_packages(struct cust_plan *plan, const char *const *paths, size_t n,
				 struct phx_err *err)
{
	struct cust_op op = {.kind = CUST_OP_LOCAL_PACKAGES};

	if (cust_check_list("debs", paths, n, cust_any, "a path to a .deb, .rpm or .apk file",
			    err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *base = strrchr(paths[i], '/') ? strrchr(paths[i], '/') + 1 : paths[i];
		struct stat st;

		if (!cust_local_ext(base))
			return phx_err_set(err, PHX_E_INPUT,
					   "debs[%zu]: '%s' does not end in '.deb', '.rpm' or "
					   "'.apk'",
					   i, paths[i]);
		if (i > 0 && cust_local_ext(base) != cust_local_ext(paths[0]))
			return phx_err_set(err, PHX_E_INPUT,
					   "debs[%zu]: '%s' is not a '%s' package like debs[0] "
					   "'%s'; one image installs one format",
					   i, paths[i], cust_local_ext(paths[0]), paths[0]);
		if (stat(paths[i], &st) < 0)
			return phx_err_set_errno(err, PHX_E_INPUT, errno, "debs[%zu]: '%s'", i,
						 paths[i]);
		if (!S_ISREG(st.st_mode) || access(paths[i], R_OK) < 0)
			return phx_err_set(err, PHX_E_INPUT,
					   "debs[%zu]: '%s' is not a readable regular file", i,
					   paths[i]);
		/* Uploaded by basename into one directory: two equal names would overwrite. */
		for (size_t j = 0; j < i; j++) {
			const char *o =
				strrchr(paths[j], '/') ? strrchr(paths[j], '/') + 1 : paths[j];

			if (!strcmp(o, base))
				return phx_err_set(err, PHX_E_INPUT,
						   "debs[%zu]: '%s' has the same file name as "
						   "debs[%zu] '%s'",
						   i, paths[i], j, paths[j]);
		}
	}
	if (cust_op_set_args(&op, "install local packages", paths, n, err) < 0) {
		cust_op_release(&op);
		return -1;
	}
	return cust_plan_push(plan, &op, err);
}

int cust_plan_add_services(struct cust_plan *plan, const char *const *names, size_t n,
			   struct phx_err *err)
{
	struct cust_op op = {.kind = CUST_OP_ENABLE_SERVICES};

	if (cust_check_list("enable_services", names, n, cust_valid_unit,
			    "a service name like 'qemu-guest-agent'", err) < 0)
		return -1;
	if (cust_op_set_args(&op, "enable services", names, n, err) < 0) {
		cust_op_release(&op);
		return -1;
	}
	return cust_plan_push(plan, &op, err);
}

int cust_plan_add_run(struct cust_plan *plan, const char *command, struct phx_err *err)
{
	struct cust_op op = {.kind = CUST_OP_RUN};
	const char *v[1] = {command};
	char shown[72];

	if (!command || !*command || strspn(command, " \t\n") == strlen(command))
		return phx_err_set(err, PHX_E_INPUT, "run: expected a shell command, got '%s'",
				   command ? command : "(null)");
	if (cust_op_set_args(&op, "run", v, 1, err) < 0)
		goto fail;
	/* Long scripts are shortened in the log line; errors quote them in full. */
	if (strlen(command) > sizeof(shown) - 1 || strchr(command, '\n')) {
		size_t k = 0;

		for (; command[k] && command[k] != '\n' && k < sizeof(shown) - 4; k++)
			shown[k] = command[k];
		memcpy(shown + k, "...", 4);
		free(op.desc);
		op.desc = NULL;
		if (asprintf(&op.desc, "run '%s'", shown) < 0) {
			op.desc = NULL;
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto fail;
		}
	}
	return cust_plan_push(plan, &op, err);
fail:
	cust_op_release(&op);
	return -1;
}

static int cust_file_common(struct cust_op *op, const char *path, unsigned mode,
			    struct phx_err *err)
{
	if (!path || !cust_valid_guest_path(path))
		return phx_err_set(err, PHX_E_INPUT,
				   "files: path: expected an absolute guest path without '..', "
				   "got '%s'",
				   path ? path : "(null)");
	if (mode > 07777)
		return phx_err_set(err, PHX_E_INPUT,
				   "files '%s': mode: expected at most 07777, "
				   "got 0%o",
				   path, mode);
	op->mode = mode;
	return 0;
}

int cust_plan_add_file_content(struct cust_plan *plan, const char *path, unsigned mode,
			       const void *data, size_t len, struct phx_err *err)
{
	struct cust_op op = {.kind = CUST_OP_FILE};
	const char *v[1] = {path};

	if (cust_file_common(&op, path, mode, err) < 0)
		return -1;
	if (!data && len)
		return phx_err_set(err, PHX_E_INTERNAL, "files '%s': NULL content", path);
	op.data = malloc(len ? len : 1);
	if (!op.data)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (len)
		memcpy(op.data, data, len);
	op.len = len;
	if (cust_op_set_args(&op, "write file", v, 1, err) < 0)
		goto fail;
	free(op.desc);
	if (asprintf(&op.desc, "write file '%s' (%zu bytes, mode 0%o)", path, len, mode) < 0) {
		op.desc = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto fail;
	}
	return cust_plan_push(plan, &op, err);
fail:
	cust_op_release(&op);
	return -1;
}

int cust_plan_add_file_source(struct cust_plan *plan, const char *path, unsigned mode,
			      const char *source, struct phx_err *err)
{
	struct cust_op op = {.kind = CUST_OP_FILE};
	const char *v[2] = {path, source};
	struct stat st;

	if (cust_file_common(&op, path, mode, err) < 0)
		return -1;
	if (!source || !*source)
		return phx_err_set(err, PHX_E_INPUT, "files '%s': source: expected a host path",
				   path);
	if (stat(source, &st) < 0)
		return phx_err_set_errno(err, PHX_E_INPUT, errno, "files '%s': source '%s'", path,
					 source);
	if (!S_ISREG(st.st_mode) || access(source, R_OK) < 0)
		return phx_err_set(err, PHX_E_INPUT,
				   "files '%s': source '%s' is not a readable regular file", path,
				   source);
	if (cust_op_set_args(&op, "write file", v, 2, err) < 0)
		goto fail;
	free(op.desc);
	if (asprintf(&op.desc, "write file '%s' from '%s' (mode 0%o)", path, source, mode) < 0) {
		op.desc = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto fail;
	}
	return cust_plan_push(plan, &op, err);
fail:
	cust_op_release(&op);
	return -1;
}

int cust_plan_add_user(struct cust_plan *plan, const struct cust_user *u, struct phx_err *err)
{
	struct cust_op op = {.kind = CUST_OP_USER};
	struct buf groups = BUF_INIT, keys = BUF_INIT;
	char uid[24] = "", gid[24] = "";
	const char *v[CUST_U_COUNT];
	int rc = -1;

	if (!u->name || !cust_valid_user_name(u->name))
		return phx_err_set(err, PHX_E_INPUT, "users: expected a user name, got '%s'",
				   u->name ? u->name : "");
	for (size_t i = 0; i < u->n_groups; i++)
		if (!cust_valid_user_name(u->groups[i]))
			return phx_err_set(err, PHX_E_INPUT,
					   "users: '%s': expected a group name, got '%s'", u->name,
					   u->groups[i]);
	if (u->shell && (!cust_valid_guest_path(u->shell) || strpbrk(u->shell, " '\"\\$`;&|")))
		return phx_err_set(err, PHX_E_INPUT, "users: '%s': expected a shell path, got '%s'",
				   u->name, u->shell);
	if ((u->password_hash && strpbrk(u->password_hash, "\n:")) ||
	    (u->git_name && strpbrk(u->git_name, "\n\"\\")) ||
	    (u->git_email && strpbrk(u->git_email, "\n\"\\")))
		return phx_err_set(err, PHX_E_INPUT,
				   "users: '%s': a password hash, git_name or git_email holds a "
				   "newline, ':' or quote",
				   u->name);
	for (size_t i = 0; i < u->n_ssh_keys; i++)
		if (strchr(u->ssh_keys[i], '\n'))
			return phx_err_set(err, PHX_E_INPUT,
					   "users: '%s': ssh key %zu holds a newline", u->name, i);
	if (u->password_expired && !u->password_hash)
		return phx_err_set(err, PHX_E_INPUT,
				   "users: '%s': only a password can be expired", u->name);
	for (size_t i = 0; i < u->n_groups; i++)
		if (buf_printf(&groups, err, "%s%s", i ? "," : "", u->groups[i]) < 0)
			goto out;
	for (size_t i = 0; i < u->n_ssh_keys; i++)
		if (buf_printf(&keys, err, "%s%s", i ? "\n" : "", u->ssh_keys[i]) < 0)
			goto out;
	if (u->uid)
		snprintf(uid, sizeof(uid), "%lu", u->uid);
	if (u->gid)
		snprintf(gid, sizeof(gid), "%lu", u->gid);
	v[CUST_U_NAME] = u->name;
	v[CUST_U_UID] = uid;
	v[CUST_U_GID] = gid;
	v[CUST_U_GROUPS] = groups.data ? buf_str(&groups) : "";
	v[CUST_U_SHELL] = u->shell ? u->shell : "";
	v[CUST_U_KEYS] = keys.data ? buf_str(&keys) : "";
	v[CUST_U_HASH] = u->password_hash ? u->password_hash : "";
	v[CUST_U_EXPIRED] = u->password_expired ? "1" : "0";
	v[CUST_U_SUDO] = u->sudo ? "1" : "0";
	v[CUST_U_GIT_NAME] = u->git_name ? u->git_name : "";
	v[CUST_U_GIT_EMAIL] = u->git_email ? u->git_email : "";
	/* the description names what is set, never the hash */
	if (cust_op_set_args(&op, "user", v, CUST_U_COUNT, err) < 0)
		goto fail_op;
	free(op.desc);
	if (asprintf(&op.desc, "user '%s'%s%s%s%s%s%s%s%s", u->name, uid[0] ? " uid " : "", uid,
		     gid[0] ? " gid " : "", gid, u->n_ssh_keys ? ", ssh keys" : "",
		     u->password_hash ? ", password" : "",
		     u->password_expired ? " (change at first login)" : "",
		     u->git_name || u->git_email ? ", git identity" : "") < 0) {
		op.desc = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto fail_op;
	}
	if (cust_plan_push(plan, &op, err) < 0)
		goto fail_op;
	rc = 0;
	goto out;
fail_op:
	cust_op_release(&op);
out:
	buf_release(&groups);
	buf_release(&keys);
	return rc;
}

int cust_plan_add_timezone(struct cust_plan *plan, const char *tz, struct phx_err *err)
{
	struct cust_op op = {.kind = CUST_OP_TIMEZONE};
	const char *v[1] = {tz};

	if (!tz || !cust_valid_timezone(tz))
		return phx_err_set(err, PHX_E_INPUT,
				   "timezone: expected a zone name like 'Europe/Berlin', got '%s'",
				   tz ? tz : "(null)");
	if (cust_op_set_args(&op, "set timezone", v, 1, err) < 0) {
		cust_op_release(&op);
		return -1;
	}
	return cust_plan_push(plan, &op, err);
}

int cust_pick_root(const struct cust_fs_candidate *c, size_t n, const char *disk, size_t *ret_index,
		   struct phx_err *err)
{
	size_t found = 0, idx = 0;
	char names[256] = "";

	for (size_t i = 0; i < n; i++) {
		if (!c[i].has_etc || !c[i].has_os_release)
			continue;
		if (found++ == 0)
			idx = i;
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s'%s'",
			 found > 1 ? ", " : "", c[i].device);
	}
	if (found == 0)
		return phx_err_set(err, PHX_E_NOTFOUND,
				   "'%s': no operating system found (%zu file system%s, none with "
				   "/etc and os-release)",
				   disk, n, n == 1 ? "" : "s");
	if (found > 1)
		return phx_err_set(err, PHX_E_INPUT,
				   "'%s': %zu operating systems found (%s); expected exactly one",
				   disk, found, names);
	*ret_index = idx;
	return 0;
}

void cust_os_release_get(const char *text, const char *key, char *out, size_t out_len)
{
	size_t klen = strlen(key);
	const char *line = text;

	if (out_len)
		out[0] = '\0';
	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (len > klen && !strncmp(line, key, klen) && line[klen] == '=') {
			const char *v = line + klen + 1;
			size_t vlen = len - klen - 1, k = 0;

			if (vlen >= 2 && (v[0] == '"' || v[0] == '\'') && v[vlen - 1] == v[0]) {
				v++;
				vlen -= 2;
			}
			for (size_t i = 0; i < vlen && k + 1 < out_len; i++) {
				if (v[i] == '\\' && i + 1 < vlen)
					i++;
				out[k++] = v[i];
			}
			if (out_len)
				out[k] = '\0';
			return;
		}
		line = end ? end + 1 : NULL;
	}
}

void cust_parse_os_release(const char *text, char *id, size_t id_len, char *version,
			   size_t version_len)
{
	cust_os_release_get(text, "ID", id, id_len);
	cust_os_release_get(text, "VERSION_ID", version, version_len);
}

/* --- OS families --- */

/* What the tools print when the index refresh reached no mirror. apt-get update exits 0 even
 * then, so its output is what tells. */
static const char *const cust_apt_offline[] = {"Temporary failure resolving",
					       "Could not resolve",
					       "Network is unreachable",
					       "Could not connect",
					       "Failed to fetch",
					       "Connection timed out",
					       NULL};
/* librepo (dnf) and urlgrabber (yum) report curl's messages */
static const char *const cust_rpm_offline[] = {
	"Could not resolve host",      "Couldn't resolve host",
	"Couldn't connect to server",  "Failed to download metadata",
	"Cannot find a valid baseurl", "Network is unreachable",
	"Connection timed out",	       NULL};
static const char *const cust_zypper_offline[] = {
	"Could not resolve host", "Couldn't resolve host", "Download (curl) error",
	"Network is unreachable", "Connection timed out",  NULL};
static const char *const cust_apk_offline[] = {"DNS lookup error", "temporary error",
					       "Network is unreachable", "network error", NULL};

static const char *const cust_debian_ids[] = {"debian", "ubuntu", NULL};
static const char *const cust_rhel_ids[] = {"rhel", "fedora", "centos", NULL};
static const char *const cust_suse_ids[] = {"suse", "opensuse", "sles", NULL};
static const char *const cust_alpine_ids[] = {"alpine", NULL};

/* What `apt-get clean`, `dnf clean all` (dnf 4 and 5, yum), `zypper clean --all` and
 * `apk cache clean` remove, plus apt's lists: indexes and downloaded packages a clone would
 * only find stale. History and the package databases stay. */
static const char *const cust_apt_caches[] = {
	"/var/lib/apt/lists/*", "/var/lib/apt/lists/partial/*", "/var/cache/apt/*.bin",
	"/var/cache/apt/archives/*.deb", NULL};
static const char *const cust_apt_keep[] = {"lock", "partial", NULL};
static const char *const cust_rhel_caches[] = {"/var/cache/dnf/*", "/var/cache/libdnf5/*",
					       "/var/cache/yum/*", NULL};
static const char *const cust_suse_caches[] = {"/var/cache/zypp/*", NULL};
static const char *const cust_alpine_caches[] = {"/var/cache/apk/*", NULL};

static const char cust_dpkg_installed[] =
	"command -v dpkg-query >/dev/null 2>&1 || exit 3\n"
	"dpkg-query -W -f='${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n' "
	"| sed -n 's/^ii \\t//p'\n";
static const char cust_rpm_installed[] =
	"command -v rpm >/dev/null 2>&1 || exit 3\n"
	"rpm -qa --qf '%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\n'\n";
/* "qemu-guest-agent-9.0.2-r0 x86_64 {qemu} (GPL-2.0-only) [installed]": an apk version
 * always ends in -r<N> and holds no other '-' */
static const char cust_apk_installed[] =
	"command -v apk >/dev/null 2>&1 || exit 3\n"
	"apk list -I | awk '{ n = $1; sub(/-[^-]*-r[0-9]+$/, \"\", n); "
	"print n \"\\t\" substr($1, length(n) + 2) \"\\t\" $2 }'\n";

static const struct cust_family cust_families[] = {
	{"debian", cust_debian_ids, CUST_PKG_APT, CUST_INIT_SYSTEMD, ".deb", cust_apt_caches,
	 cust_apt_keep, cust_apt_offline, cust_dpkg_installed},
	{"rhel", cust_rhel_ids, CUST_PKG_DNF, CUST_INIT_SYSTEMD, ".rpm", cust_rhel_caches, NULL,
	 cust_rpm_offline, cust_rpm_installed},
	{"suse", cust_suse_ids, CUST_PKG_ZYPPER, CUST_INIT_SYSTEMD, ".rpm", cust_suse_caches, NULL,
	 cust_zypper_offline, cust_rpm_installed},
	{"alpine", cust_alpine_ids, CUST_PKG_APK, CUST_INIT_OPENRC, ".apk", cust_alpine_caches,
	 NULL, cust_apk_offline, cust_apk_installed},
};

static const struct cust_family *cust_family_by_word(const char *w, size_t len)
{
	for (size_t f = 0; f < sizeof(cust_families) / sizeof(cust_families[0]); f++)
		for (const char *const *id = cust_families[f].ids; *id; id++)
			if (strlen(*id) == len && !strncmp(*id, w, len))
				return &cust_families[f];
	return NULL;
}

int cust_family_pick(const char *id, const char *id_like, const struct cust_family **ret,
		     struct phx_err *err)
{
	const struct cust_family *fam = cust_family_by_word(id, strlen(id));
	const char *p = id_like ? id_like : "";

	while (!fam && *p) {
		size_t len;

		p += strspn(p, " \t");
		len = strcspn(p, " \t");
		if (len)
			fam = cust_family_by_word(p, len);
		p += len;
	}
	if (!fam) {
		char list[256] = "";

		/* from the table, so the message cannot fall behind it */
		for (size_t f = 0; f < sizeof(cust_families) / sizeof(cust_families[0]); f++) {
			const struct cust_family *k = &cust_families[f];

			snprintf(list + strlen(list), sizeof(list) - strlen(list),
				 "%s%s (%s:", f ? ", " : "", k->name, cust_pkg_tool_name(k->pkg));
			for (const char *const *w = k->ids; *w; w++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), " %s%s",
					 *w, w[1] ? "," : ")");
		}
		return phx_err_set(
			err, PHX_E_INPUT,
			"os-release ID '%s' (ID_LIKE '%s') is not of a supported family; "
			"supported, by os-release ID or ID_LIKE: %s",
			id, id_like ? id_like : "", list);
	}
	*ret = fam;
	return 0;
}

void cust_target_init(struct cust_target *t, const struct cust_family *family, bool has_dnf,
		      bool has_yum)
{
	t->family = family;
	t->pkg = family->pkg;
	if (family->pkg == CUST_PKG_DNF && !has_dnf && has_yum)
		t->pkg = CUST_PKG_YUM;
}

const char *cust_pkg_tool_name(enum cust_pkg_tool pkg)
{
	static const char *const names[] = {"apt", "dnf", "yum", "zypper", "apk"};

	return (size_t)pkg < sizeof(names) / sizeof(names[0]) ? names[pkg] : "?";
}

void cust_cmds_release(struct cust_cmds *c)
{
	free(c->refresh);
	c->refresh = NULL;
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i]);
	c->n = 0;
}

/* Single-quotes s for sh. */
static int cust_shell_quote(struct buf *b, const char *s, struct phx_err *err)
{
	if (buf_puts(b, "'", err) < 0)
		return -1;
	for (; *s; s++) {
		if (*s == '\'' ? buf_puts(b, "'\\''", err) < 0 : buf_append(b, s, 1, err) < 0)
			return -1;
	}
	return buf_puts(b, "'", err);
}

/* Moves the built command into c (at the end, or as the refresh). */
static int cust_cmds_take(struct cust_cmds *c, struct buf *b, bool refresh, struct phx_err *err)
{
	char *s;

	if (!refresh && c->n == CUST_CMDS_MAX) {
		buf_release(b);
		return phx_err_set(err, PHX_E_INTERNAL, "more than %d commands in one step",
				   CUST_CMDS_MAX);
	}
	s = buf_detach(b);
	if (!s)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	if (refresh)
		c->refresh = s;
	else
		c->v[c->n++] = s;
	return 0;
}

/* Adds the command a b z (concatenated). */
static int cust_cmds_add(struct cust_cmds *c, bool refresh, const char *a, const char *b,
			 const char *z, struct phx_err *err)
{
	struct buf t = BUF_INIT;

	if (buf_puts(&t, a, err) < 0 || buf_puts(&t, b, err) < 0 || buf_puts(&t, z, err) < 0) {
		buf_release(&t);
		return -1;
	}
	return cust_cmds_take(c, &t, refresh, err);
}

/* Appends one package as `tool` spells `name[:arch][=version]`: dnf and yum take
 * name-version.arch (a NEVRA), zypper name.arch=version, apk name=version and no arch. */
static int cust_pkg_spec(struct buf *b, enum cust_pkg_tool tool, const char *spec,
			 struct phx_err *err)
{
	size_t nlen = strcspn(spec, ":="), alen = 0;
	const char *arch = spec[nlen] == ':' ? spec + nlen + 1 : NULL;
	const char *ver = strchr(spec, '=');
	struct buf t = BUF_INIT;
	int rc = -1;

	if (arch)
		alen = strcspn(arch, "=");
	ver = ver ? ver + 1 : NULL;
	if (arch && tool == CUST_PKG_APK)
		return phx_err_set(
			err, PHX_E_INPUT,
			"packages: '%s': apk installs the image's own architecture only; "
			"drop ':%.*s'",
			spec, (int)alen, arch);
	if (tool == CUST_PKG_APT || tool == CUST_PKG_APK) {
		rc = buf_printf(&t, err, "%s", spec);
	} else if (tool == CUST_PKG_ZYPPER) {
		rc = buf_printf(&t, err, "%.*s%s%.*s%s%s", (int)nlen, spec, arch ? "." : "",
				(int)alen, arch ? arch : "", ver ? "=" : "", ver ? ver : "");
	} else {
		rc = buf_printf(&t, err, "%.*s%s%s%s%.*s", (int)nlen, spec, ver ? "-" : "",
				ver ? ver : "", arch ? "." : "", (int)alen, arch ? arch : "");
	}
	if (rc == 0)
		rc = cust_shell_quote(b, buf_str(&t), err);
	buf_release(&t);
	return rc;
}

/* The agent ships an OpenRC script but no runlevel link, and no udev rule starts it there. */
#define CUST_AGENT "qemu-guest-agent"

static bool cust_names_agent(const struct cust_op *op)
{
	for (size_t i = 0; i < op->nargs; i++) {
		const char *base =
			strrchr(op->args[i], '/') ? strrchr(op->args[i], '/') + 1 : op->args[i];
		size_t len = strlen(CUST_AGENT);

		if (!strncmp(base, CUST_AGENT, len) &&
		    (op->kind == CUST_OP_PACKAGES ? strchr(":=", base[len]) != NULL
						  : base[len] == '-' || base[len] == '_'))
			return true;
	}
	return false;
}

static int cust_packages_commands(const struct cust_op *op, const struct cust_target *t,
				  struct cust_cmds *c, struct phx_err *err)
{
	static const struct {
		const char *refresh, *install;
	} tools[] = {
		[CUST_PKG_APT] = {"apt-get -q update",
				  "apt-get -q -y -o Dpkg::Options::=--force-confold install"},
		[CUST_PKG_DNF] = {"dnf -y makecache", "dnf -y install"},
		[CUST_PKG_YUM] = {"yum -y makecache", "yum -y install"},
		[CUST_PKG_ZYPPER] = {"zypper --non-interactive refresh",
				     "zypper --non-interactive install --auto-agree-with-licenses"},
		[CUST_PKG_APK] = {"apk update", "apk add"},
	};
	struct buf b = BUF_INIT;

	if (cust_cmds_add(c, true, tools[t->pkg].refresh, "", "", err) < 0 ||
	    buf_puts(&b, tools[t->pkg].install, err) < 0)
		goto fail;
	for (size_t i = 0; i < op->nargs; i++)
		if (buf_puts(&b, " ", err) < 0 || cust_pkg_spec(&b, t->pkg, op->args[i], err) < 0)
			goto fail;
	return cust_cmds_take(c, &b, false, err);
fail:
	buf_release(&b);
	return -1;
}

static int cust_local_commands(const struct cust_op *op, const struct cust_target *t,
			       const char *dir, struct cust_cmds *c, struct phx_err *err)
{
	const char *ext = cust_local_ext(op->args[0]);

	if (ext != t->family->local_ext)
		return phx_err_set(err, PHX_E_INPUT,
				   "debs[0]: '%s' is a '%s' package, but the image's family %s "
				   "installs '%s' packages",
				   op->args[0], ext ? ext : "?", t->family->name,
				   t->family->local_ext);
	/* One call for all files, so they may depend on each other in any order; rpm and apk
	 * read no repository here, as dpkg does not: the offline mode stays offline. */
	if (t->pkg == CUST_PKG_APT)
		return cust_cmds_add(c, false, "dpkg -i ", dir, "/*.deb", err);
	if (t->pkg == CUST_PKG_APK)
		return cust_cmds_add(c, false, "apk add --no-network --allow-untrusted ", dir,
				     "/*.apk", err);
	return cust_cmds_add(c, false, "rpm -Uvh ", dir, "/*.rpm", err);
}

static int cust_services_commands(const struct cust_op *op, const struct cust_target *t,
				  struct cust_cmds *c, struct phx_err *err)
{
	struct buf b = BUF_INIT;

	if (t->family->init == CUST_INIT_SYSTEMD) {
		/* offline: systemctl only makes the [Install] links, which is what we want */
		if (buf_puts(&b, "systemctl enable", err) < 0)
			goto fail;
		for (size_t i = 0; i < op->nargs; i++)
			if (buf_puts(&b, " ", err) < 0 ||
			    cust_shell_quote(&b, op->args[i], err) < 0)
				goto fail;
		return cust_cmds_take(c, &b, false, err);
	}
	/* rc-update takes one service per call; an init script has no ".service" */
	for (size_t i = 0; i < op->nargs; i++) {
		size_t len = strlen(op->args[i]);
		char name[256];

		if (len > 8 && !strcmp(op->args[i] + len - 8, ".service"))
			len -= 8;
		snprintf(name, sizeof(name), "%.*s", (int)len, op->args[i]);
		buf_reset(&b);
		if (buf_puts(&b, "rc-update add ", err) < 0 ||
		    cust_shell_quote(&b, name, err) < 0 || buf_puts(&b, " default", err) < 0 ||
		    cust_cmds_take(c, &b, false, err) < 0)
			goto fail;
	}
	return 0;
fail:
	buf_release(&b);
	return -1;
}

/* The user's commands: make the groups and the user (or bring an existing one in line),
 * then keys, password, sudo and git identity. args are as cust_plan_add_user stores them. */
static int cust_user_commands(const struct cust_op *op, struct cust_cmds *c,
			      struct phx_err *err)
{
	const char *name = op->args[CUST_U_NAME], *uid = op->args[CUST_U_UID],
		   *gid = op->args[CUST_U_GID], *groups = op->args[CUST_U_GROUPS];
	struct buf b = BUF_INIT;
	int rc = -1;

	/* the primary group is the user's own, with the given gid */
	if (buf_printf(&b, err, "getent group %s >/dev/null || groupadd%s%s %s", name,
		       *gid ? " -g " : "", gid, name) < 0)
		goto out;
	if (*groups && buf_printf(&b, err,
				  " && for g in $(echo %s | tr , ' '); do getent group \"$g\" "
				  ">/dev/null || groupadd \"$g\"; done",
				  groups) < 0)
		goto out;
	if (buf_puts(&b, " && sh=", err) < 0 ||
	    buf_puts(&b, *op->args[CUST_U_SHELL] ? op->args[CUST_U_SHELL] : "/bin/bash", err) < 0 ||
	    (!*op->args[CUST_U_SHELL] &&
	     buf_puts(&b, " && { [ -x \"$sh\" ] || sh=/bin/sh; }", err) < 0))
		goto out;
	if (buf_printf(&b, err,
		       " && if id -u %s >/dev/null 2>&1; then usermod -s \"$sh\" -g %s%s%s%s%s "
		       "%s; else useradd -m -s \"$sh\" -g %s%s%s%s%s %s; fi",
		       name, name, *uid ? " -u " : "", uid, *groups ? " -G " : "", groups, name,
		       name, *uid ? " -u " : "", uid, *groups ? " -G " : "", groups, name) < 0 ||
	    cust_cmds_take(c, &b, false, err) < 0)
		goto out;
	/* the home directory as passwd has it: useradd -m made it, an existing user's may
	 * be elsewhere */
	if (*op->args[CUST_U_KEYS]) {
		if (buf_printf(&b, err,
			       "h=$(getent passwd %s | cut -d: -f6) && install -d -m 700 -o %s -g "
			       "%s \"$h/.ssh\" && printf '%%s\\n' ",
			       name, name, name) < 0 ||
		    cust_shell_quote(&b, op->args[CUST_U_KEYS], err) < 0 ||
		    buf_printf(&b, err,
			       " > \"$h/.ssh/authorized_keys\" && chown %s:%s "
			       "\"$h/.ssh/authorized_keys\" && chmod 600 \"$h/.ssh/authorized_keys\"",
			       name, name) < 0 ||
		    cust_cmds_take(c, &b, false, err) < 0)
			goto out;
	}
	if (*op->args[CUST_U_HASH]) {
		/* chage -d 0 is shadow's field 3 at 0; busybox has no chage: the same by sed */
		if (buf_puts(&b, "printf '%s\\n' ", err) < 0 ||
		    buf_printf(&b, err, "%s:", name) < 0 ||
		    cust_shell_quote(&b, op->args[CUST_U_HASH], err) < 0 ||
		    buf_puts(&b, " | chpasswd -e", err) < 0)
			goto out;
		if (*op->args[CUST_U_EXPIRED] == '1' &&
		    buf_printf(&b, err,
			       " && if command -v chage >/dev/null; then chage -d 0 %s; else sed -i "
			       "'s/^%s:\\([^:]*\\):[^:]*:/%s:\\1:0:/' /etc/shadow; fi",
			       name, name, name) < 0)
			goto out;
		if (cust_cmds_take(c, &b, false, err) < 0)
			goto out;
	}
	if (*op->args[CUST_U_SUDO] == '1' &&
	    (buf_printf(&b, err,
			"mkdir -p /etc/sudoers.d && printf '%%s ALL=(ALL) NOPASSWD:ALL\\n' %s > "
			"/etc/sudoers.d/90-phoenix-%s && chmod 440 /etc/sudoers.d/90-phoenix-%s",
			name, name, name) < 0 ||
	     cust_cmds_take(c, &b, false, err) < 0))
		goto out;
	if (*op->args[CUST_U_GIT_NAME] || *op->args[CUST_U_GIT_EMAIL]) {
		if (buf_printf(&b, err, "h=$(getent passwd %s | cut -d: -f6) && printf '[user]\\n",
			       name) < 0 ||
		    (*op->args[CUST_U_GIT_NAME] && buf_puts(&b, "\\tname = \"%s\"\\n", err) < 0) ||
		    (*op->args[CUST_U_GIT_EMAIL] &&
		     buf_puts(&b, "\\temail = \"%s\"\\n", err) < 0) ||
		    buf_puts(&b, "' ", err) < 0 ||
		    (*op->args[CUST_U_GIT_NAME] &&
		     (cust_shell_quote(&b, op->args[CUST_U_GIT_NAME], err) < 0 ||
		      buf_puts(&b, " ", err) < 0)) ||
		    (*op->args[CUST_U_GIT_EMAIL] &&
		     (cust_shell_quote(&b, op->args[CUST_U_GIT_EMAIL], err) < 0 ||
		      buf_puts(&b, " ", err) < 0)) ||
		    buf_printf(&b, err,
			       "> \"$h/.gitconfig\" && chown %s:%s \"$h/.gitconfig\" && chmod 644 "
			       "\"$h/.gitconfig\"",
			       name, name) < 0 ||
		    cust_cmds_take(c, &b, false, err) < 0)
			goto out;
	}
	rc = 0;
out:
	buf_release(&b);
	return rc;
}

int cust_step_commands(const struct cust_op *op, const struct cust_target *t, const char *dir,
		       struct cust_cmds *ret, struct phx_err *err)
{
	struct cust_cmds c = {0};
	int rc;

	switch (op->kind) {
	case CUST_OP_PACKAGES:
		rc = cust_packages_commands(op, t, &c, err);
		break;
	case CUST_OP_LOCAL_PACKAGES:
		rc = cust_local_commands(op, t, dir, &c, err);
		break;
	case CUST_OP_ENABLE_SERVICES:
		rc = cust_services_commands(op, t, &c, err);
		break;
	case CUST_OP_RUN:
		rc = cust_cmds_add(&c, false, op->args[0], "", "", err);
		break;
	case CUST_OP_USER:
		rc = cust_user_commands(op, &c, err);
		break;
	default:
		rc = phx_err_set(err, PHX_E_INTERNAL, "step kind %d runs no commands",
				 (int)op->kind);
	}
	if (rc == 0 && t->family->init == CUST_INIT_OPENRC &&
	    (op->kind == CUST_OP_PACKAGES || op->kind == CUST_OP_LOCAL_PACKAGES) &&
	    cust_names_agent(op))
		rc = cust_cmds_add(&c, false, "rc-update add ", CUST_AGENT, " default", err);
	if (rc == 0 && op->kind == CUST_OP_LOCAL_PACKAGES)
		rc = cust_cmds_add(&c, false, "rm -rf ", dir, "", err);
	if (rc < 0) {
		cust_cmds_release(&c);
		return -1;
	}
	*ret = c;
	return 0;
}

int cust_prepare_copy(const char *src, const char *dst, struct phx_err *err)
{
	if (fs_copy_file(src, dst, err) < 0)
		return phx_err_wrap(err, "copy image for customization");
	return 0;
}

/* --- how much room a run needs, and whether the appliance still makes progress --- */

/* A qcow2 grows by every cluster the guest writes for the first time and never shrinks (the
 * appliance's disk has no discard), so what counts is everything written, even what is deleted
 * again before the end (apt's lists, uploaded .debs). Real sizes are unknown before the
 * appliance runs (apt decides the dependencies inside the guest), so each kind of step gets an
 * allowance that covers the common case; the watchdog catches the rest. */
/* Every run: the ext4 journal (64 MiB on a 2-16 GiB root) can be unallocated in an image made
 * with qemu-img convert and fills as it is used; dpkg/apt state rewrites; the hygiene steps. */
#define CUST_SPACE_BASE (64 * CUST_MIB)
/* A packages step: apt-get update's lists and pkgcache.bin/srcpkgcache.bin, ~150 MiB for
 * Debian bookworm main, more for Ubuntu with universe (dnf's metadata for a RHEL-like
 * BaseOS+AppStream is of the same order). */
#define CUST_SPACE_APT (256 * CUST_MIB)
/* Each package named: its .deb in /var/cache/apt/archives, its unpacked files and the
 * dependencies apt adds (qemu-guest-agent: ~2 MiB in all; a database server: ~150 MiB). */
#define CUST_SPACE_PKG (32 * CUST_MIB)
/* A local package file: its upload into the guest plus its unpacked files (xz packs ~3:1). */
#define CUST_SPACE_DEB_FACTOR 4
/* A command: anything is possible; a guess that keeps small steps from being refused. */
#define CUST_SPACE_RUN (32 * CUST_MIB)

/* Reads the guest-visible size from a qcow2 header (big-endian u64 at offset 24). */
static int cust_qcow2_size(const char *path, unsigned long long *ret, struct phx_err *err)
{
	unsigned char h[32];
	unsigned long long v = 0;
	FILE *f = fopen(path, "rbe");
	size_t n;

	if (!f)
		return phx_err_set_errno(err, PHX_E_IO, errno, "open disk '%s'", path);
	n = fread(h, 1, sizeof(h), f);
	fclose(f);
	if (n != sizeof(h))
		return phx_err_set(err, PHX_E_IO, "read disk '%s': short qcow2 header", path);
	for (int i = 24; i < 32; i++)
		v = v << 8 | h[i];
	*ret = v;
	return 0;
}

static void cust_space_part(char *why, size_t len, const char *what, unsigned long long bytes)
{
	size_t used = strlen(why);

	if (bytes)
		snprintf(why + used, len - used, "%s%s %llu MiB", used ? ", " : "", what,
			 (bytes + CUST_MIB - 1) / CUST_MIB);
}

int cust_space_estimate(const struct cust_plan *plan, const char *disk_path, struct cust_space *ret,
			struct phx_err *err)
{
	struct cust_space sp = {0};
	unsigned long long apt = 0, pkgs = 0, debs = 0, files = 0, runs = 0, room;
	size_t npkgs = 0, nruns = 0;
	char label[64];
	struct stat st;
	unsigned char magic[4] = {0};
	FILE *f;

	f = fopen(disk_path, "rbe");
	if (!f || stat(disk_path, &st) < 0) {
		int e = errno;

		if (f)
			fclose(f);
		return phx_err_set_errno(err, PHX_E_IO, e, "open disk '%s'", disk_path);
	}
	if (fread(magic, 1, sizeof(magic), f) != sizeof(magic))
		memset(magic, 0, sizeof(magic));
	fclose(f);
	sp.alloc_bytes = (unsigned long long)st.st_blocks * 512ULL;
	if (!memcmp(magic, "QFI\xfb", 4)) {
		if (cust_qcow2_size(disk_path, &sp.virtual_bytes, err) < 0)
			return -1;
	} else {
		sp.virtual_bytes = (unsigned long long)st.st_size;
	}
	for (size_t i = 0; i < plan->n; i++) {
		const struct cust_op *op = &plan->ops[i];

		switch (op->kind) {
		case CUST_OP_PACKAGES:
			apt += CUST_SPACE_APT;
			pkgs += op->nargs * CUST_SPACE_PKG;
			npkgs += op->nargs;
			break;
		case CUST_OP_LOCAL_PACKAGES:
		case CUST_OP_FILE:
			if (op->kind == CUST_OP_FILE && op->nargs < 2) {
				files += op->len;
				break;
			}
			for (size_t k = op->kind == CUST_OP_FILE ? 1 : 0; k < op->nargs; k++) {
				struct stat ds;

				if (stat(op->args[k], &ds) < 0)
					return phx_err_set_errno(err, PHX_E_IO, errno, "stat '%s'",
								 op->args[k]);
				if (op->kind == CUST_OP_LOCAL_PACKAGES)
					debs += CUST_SPACE_DEB_FACTOR *
						(unsigned long long)ds.st_size;
				else
					files += (unsigned long long)ds.st_size;
			}
			break;
		case CUST_OP_RUN:
			runs += CUST_SPACE_RUN;
			nruns++;
			break;
		case CUST_OP_ENABLE_SERVICES:
		case CUST_OP_TIMEZONE:
		case CUST_OP_USER: /* a home directory and a few small files */
			break; /* links and a few bytes: within the base */
		}
	}
	sp.need_bytes = CUST_SPACE_BASE + apt + pkgs + debs + files + runs;
	cust_space_part(sp.why, sizeof(sp.why), "journal and hygiene", CUST_SPACE_BASE);
	cust_space_part(sp.why, sizeof(sp.why), "package indexes", apt);
	snprintf(label, sizeof(label), "%zu package%s", npkgs, npkgs == 1 ? "" : "s");
	cust_space_part(sp.why, sizeof(sp.why), label, pkgs);
	cust_space_part(sp.why, sizeof(sp.why), "local packages x4", debs);
	cust_space_part(sp.why, sizeof(sp.why), "files", files);
	snprintf(label, sizeof(label), "%zu command%s", nruns, nruns == 1 ? "" : "s");
	cust_space_part(sp.why, sizeof(sp.why), label, runs);
	/* The file cannot outgrow the disk it represents (qcow2 metadata is ~1/8192 of it). */
	room = sp.virtual_bytes > sp.alloc_bytes ? sp.virtual_bytes - sp.alloc_bytes : 0;
	room += sp.virtual_bytes / 8192;
	if (sp.need_bytes > room) {
		size_t used = strlen(sp.why);

		sp.need_bytes = room;
		snprintf(sp.why + used, sizeof(sp.why) - used,
			 "; at most the disk's %llu MiB virtual size less the %llu MiB its file "
			 "holds",
			 sp.virtual_bytes / CUST_MIB, sp.alloc_bytes / CUST_MIB);
	}
	*ret = sp;
	return 0;
}

/* Below this much CPU time (on top of CUST_WATCH_BUSY) a timer tick or two is not progress. */
#define CUST_WATCH_CPU_SLACK_S 0.05

enum cust_watch_verdict cust_watch_judge(struct cust_watch_state *st,
					 const struct cust_watch_sample *s, double full_s,
					 double stall_s, double *ret_idle_s)
{
	double idle = s->t - st->t_ref;
	bool progress = !st->started || s->cpu_s < 0 || st->cpu_ref < 0 || s->cpu_s < st->cpu_ref ||
			s->alloc != st->alloc_ref ||
			s->cpu_s - st->cpu_ref > CUST_WATCH_BUSY * idle + CUST_WATCH_CPU_SLACK_S;

	if (progress) {
		st->started = true;
		st->t_ref = s->t;
		st->cpu_ref = s->cpu_s;
		st->alloc_ref = s->alloc;
		*ret_idle_s = 0;
		return CUST_WATCH_OK;
	}
	*ret_idle_s = idle;
	if (s->avail < CUST_WATCH_FULL_BYTES && idle >= full_s)
		return CUST_WATCH_FULL;
	if (idle >= stall_s)
		return CUST_WATCH_STALL;
	return CUST_WATCH_OK;
}
