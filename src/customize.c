/* customize: runs a cust_plan against a disk image inside one libguestfs appliance. The only
 * file with <guestfs.h>: every libguestfs error is translated to a phx_err here (the default
 * handler that prints to stderr is switched off). Plan building, the space estimate and the
 * watchdog's judgement live in customize_plan.c; the accelerator probe and the watchdog
 * thread in customize_accel.c. */
#include <errno.h>
#include <fcntl.h>
#include <guestfs.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "buf.h"
#include "customize.h"
#include "customize_int.h"
#include "log.h"

/* Steps per guest command, and so commands per guest command (one argv entry each). */
#define CUST_BATCH_STEPS 16
#define CUST_BATCH_MAX (CUST_BATCH_STEPS * CUST_CMDS_MAX)
/* Lines of a failing command's output that go into the error message. */
#define CUST_TAIL_LINES 20
#define CUST_GUEST_OUT "/tmp/.phx-customize.out"
#define CUST_GUEST_PKGS "/tmp/phx-packages"

struct cust_ctx {
	guestfs_h *g;
	const char *disk;
	struct phx_err *err;
	struct cust_target target; /* the guest's family, once os-release is read */
	struct cust_watch *wd;	   /* owned by cust_run */
	bool wd_reported;	   /* err holds the watchdog's verdict */
};

static void cust_free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* Records libguestfs's last error for the call described by fmt. Returns -1. When the
 * watchdog killed the appliance, its reason is the root cause, not the lost connection. */
static int cust_gerr(struct cust_ctx *c, const char *fmt, const char *arg)
{
	const char *msg;
	int e;
	char what[512];

	if (cust_watch_fired(c->wd, c->err)) {
		c->wd_reported = true;
		return -1;
	}
	msg = guestfs_last_error(c->g);
	e = guestfs_last_errno(c->g);
	snprintf(what, sizeof(what), fmt, arg);
	if (e == ENOMEM)
		return phx_err_set(c->err, PHX_E_NOMEM, "%s: out of memory", what);
	return phx_err_set(c->err, PHX_E_GUEST, "%s: %s", what, msg ? msg : "libguestfs error");
}

/* One shell step of a batch: script in, status/time/output out. */
struct cust_shell_step {
	const char *script; /* borrowed */
	bool ran;
	int status;
	double seconds;
	char *out; /* owned: the step's stdout+stderr (possibly cut at the front) */
};

/* Runs shell steps in order inside ONE guest command, stopping at the first that fails.
 * Every guestfs_command costs ~2 s under TCG before the script even starts (the daemon bind-
 * mounts /dev, /proc, /sys into the guest and back), so consecutive shell steps share one.
 * Each step runs as `( eval "$N" )` in a subshell of the wrapper (no extra exec), and a marker
 * line after it carries its exit status and /proc/uptime, read with builtins. The wrapper
 * itself always exits 0: guestfs_command would otherwise turn a failure into an error without
 * the status or stdout. Output is capped by tail so a chatty step cannot exceed the
 * libguestfs message limit. -1 only when the command could not run at all. */
static int cust_guest_batch(struct cust_ctx *c, struct cust_shell_step *steps, size_t n)
{
	struct buf w = BUF_INIT;
	char **argv = NULL, *out = NULL, *p, *prev_end;
	double t_prev = -1;
	int rc = -1;

	if (buf_puts(&w,
		     "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "
		     "LC_ALL=C DEBIAN_FRONTEND=noninteractive HOME=/root; "
		     "{ exec 2>&1 </dev/null; t=; read t _ </proc/uptime; "
		     "echo \"@@phx-step 0 0 $t\"; ",
		     c->err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (buf_printf(&w, c->err,
			       "( eval \"${%zu}\" ); s=$?; t=; read t _ </proc/uptime; "
			       "printf '\\n@@phx-step %zu %%s %%s\\n' \"$s\" \"$t\"; "
			       "[ $s -eq 0 ] || exit 0; ",
			       i + 1, i + 1) < 0)
			goto out;
	if (buf_puts(&w, "} | tail -c 1000000", c->err) < 0)
		goto out;
	argv = calloc(n + 5, sizeof(*argv));
	if (!argv) {
		phx_err_set(c->err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	argv[0] = "/bin/sh";
	argv[1] = "-c";
	argv[2] = (char *)buf_str(&w);
	argv[3] = "phx-customize";
	for (size_t i = 0; i < n; i++)
		argv[4 + i] = (char *)steps[i].script;
	out = guestfs_command(c->g, argv);
	if (!out) {
		cust_gerr(c, "%s", "run /bin/sh in the guest");
		goto out;
	}
	/* Split at the markers: "@@phx-step N STATUS UPTIME" ends step N's output. */
	prev_end = out;
	for (p = strstr(out, "@@phx-step "); p; p = strstr(p, "@@phx-step ")) {
		size_t idx;
		int status;
		double t = -1;
		char *eol = strchr(p, '\n');
		int got = sscanf(p, "@@phx-step %zu %d %lf", &idx, &status, &t);

		if (got >= 2 && idx >= 1 && idx <= n) {
			struct cust_shell_step *st = &steps[idx - 1];
			size_t len = (size_t)(p - prev_end);

			while (len && (prev_end[len - 1] == '\n' || prev_end[len - 1] == '\r'))
				len--;
			st->out = strndup(prev_end, len);
			if (!st->out) {
				phx_err_set(c->err, PHX_E_NOMEM, "out of memory");
				goto out;
			}
			st->ran = true;
			st->status = status;
			st->seconds = got == 3 && t_prev >= 0 ? t - t_prev : 0;
		}
		if (got >= 3)
			t_prev = t;
		if (!eol)
			break;
		p = prev_end = eol + 1;
	}
	rc = 0;
out:
	free(out);
	free(argv);
	buf_release(&w);
	return rc;
}

static void cust_steps_release(struct cust_shell_step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(steps[i].out);
		steps[i].out = NULL;
	}
}

/* Builds the "<what>exit status N; last output lines:" error for a failed guest command. */
static int cust_guest_failed(struct cust_ctx *c, enum phx_err_code code, const char *what,
			     int status, const char *out)
{
	struct buf b = BUF_INIT;
	const char *p = out + strlen(out);
	int lines = 0;

	/* start of the last CUST_TAIL_LINES lines */
	while (p > out && lines < CUST_TAIL_LINES) {
		p--;
		if (*p == '\n' && p + 1 < out + strlen(out))
			lines++;
	}
	if (*p == '\n')
		p++;
	buf_init(&b, PHX_ERR_MSG_MAX);
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (buf_printf(&b, NULL, "\n  | %.*s", (int)len, p) < 0)
			break;
		p += len + (nl ? 1 : 0);
	}
	phx_err_set(c->err, code, "%sexit status %d; last output lines:%s", what, status,
		    b.len ? buf_str(&b) : " (none)");
	buf_release(&b);
	return -1;
}

/* Logs the output of a successful command at debug level. */
static void cust_log_out(const char *out)
{
	if (!log_enabled(PHX_LOG_DEBUG))
		return;
	for (const char *p = out; *p;) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);

		log_debug("customize:   | %.*s", len, p);
		p += len + (nl ? 1 : 0);
	}
}

/* Runs one script; *ret_status and *ret_out (caller frees) on success. */
static int cust_guest_sh(struct cust_ctx *c, const char *script, int *ret_status, char **ret_out)
{
	struct cust_shell_step st = {.script = script};

	if (cust_guest_batch(c, &st, 1) < 0)
		return -1;
	if (!st.ran) {
		cust_steps_release(&st, 1);
		return phx_err_set(c->err, PHX_E_GUEST, "guest shell gave no exit status");
	}
	*ret_status = st.status;
	*ret_out = st.out;
	return 0;
}

/* Runs a script and turns a non-zero exit into a PHX_E_GUEST error. */
static int cust_sh_checked(struct cust_ctx *c, const char *script)
{
	char *out = NULL;
	int status;

	if (cust_guest_sh(c, script, &status, &out) < 0)
		return -1;
	if (status != 0)
		cust_guest_failed(c, PHX_E_GUEST, "", status, out);
	else
		cust_log_out(out);
	free(out);
	return status ? -1 : 0;
}

static bool cust_no_network(const struct cust_family *fam, const char *out)
{
	for (const char *const *sign = fam->offline_signs; *sign; sign++)
		if (strstr(out, *sign))
			return true;
	return false;
}

/* Judges one batch entry running `cmd`: logs its output or fails naming the command, unless
 * it is the user's own (`run`, already in the step's description). */
static int cust_cmd_outcome(struct cust_ctx *c, const struct cust_shell_step *st, const char *cmd,
			    bool name_it)
{
	char what[600];

	if (!st->ran)
		return phx_err_set(c->err, PHX_E_GUEST, "\"%.500s\": gave no exit status", cmd);
	if (st->status == 0) {
		cust_log_out(st->out);
		return 0;
	}
	snprintf(what, sizeof(what), "\"%.500s\": ", cmd);
	return cust_guest_failed(c, PHX_E_GUEST, name_it ? what : "", st->status, st->out);
}

static int cust_op_packages(struct cust_ctx *c, const struct cust_op *op)
{
	const struct cust_family *fam = c->target.family;
	struct cust_shell_step st[CUST_CMDS_MAX];
	struct cust_cmds cmds;
	char *tail = NULL, what[700];
	int status, rc = -1;

	memset(st, 0, sizeof(st));
	if (cust_step_commands(op, &c->target, NULL, &cmds, c->err) < 0)
		return -1;
	/* Refreshing exits 0 with apt even when it fetched nothing, so judge it by its output
	 * too, before the install runs into the same wall with a vaguer message. */
	if (cust_guest_sh(c, cmds.refresh, &status, &tail) < 0)
		goto out;
	if (cust_no_network(fam, tail)) {
		snprintf(what, sizeof(what),
			 "the guest has no network: \"%s\" could not reach the image's package "
			 "sources (hint: use 'debs' with local %s files on offline sites): ",
			 cmds.refresh, fam->local_ext);
		cust_guest_failed(c, PHX_E_NET, what, status, tail);
		goto out;
	}
	if (status != 0) {
		snprintf(what, sizeof(what), "\"%s\": ", cmds.refresh);
		cust_guest_failed(c, PHX_E_GUEST, what, status, tail);
		goto out;
	}
	cust_log_out(tail);
	for (size_t i = 0; i < cmds.n; i++)
		st[i].script = cmds.v[i];
	if (cust_guest_batch(c, st, cmds.n) < 0)
		goto out;
	for (size_t i = 0; i < cmds.n; i++)
		if (cust_cmd_outcome(c, &st[i], cmds.v[i], true) < 0)
			goto out;
	rc = 0;
out:
	cust_steps_release(st, cmds.n);
	cust_cmds_release(&cmds);
	free(tail);
	return rc;
}

/* Uploads a LOCAL_PACKAGES step's files to guest directory `dir`. */
static int cust_upload_local(struct cust_ctx *c, const struct cust_op *op, const char *dir)
{
	if (guestfs_mkdir_p(c->g, dir) < 0)
		return cust_gerr(c, "mkdir '%s'", dir);
	for (size_t i = 0; i < op->nargs; i++) {
		const char *base = strrchr(op->args[i], '/');
		char dst[4096];

		base = base ? base + 1 : op->args[i];
		snprintf(dst, sizeof(dst), "%s/%s", dir, base);
		if (guestfs_upload(c->g, op->args[i], dst) < 0)
			return cust_gerr(c, "upload '%s'", op->args[i]);
	}
	return 0;
}

static bool cust_is_shell_op(enum cust_op_kind k)
{
	return k == CUST_OP_LOCAL_PACKAGES || k == CUST_OP_ENABLE_SERVICES || k == CUST_OP_RUN ||
	       k == CUST_OP_USER;
}

static int cust_op_file(struct cust_ctx *c, const struct cust_op *op)
{
	const char *path = op->args[0];
	char dir[4096];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (guestfs_mkdir_p(c->g, dir) < 0)
			return cust_gerr(c, "mkdir '%s'", dir);
	}
	if (op->nargs == 2) {
		if (guestfs_upload(c->g, op->args[1], path) < 0)
			return cust_gerr(c, "upload to '%s'", path);
	} else if (guestfs_write(c->g, path, op->data, op->len) < 0) {
		return cust_gerr(c, "write '%s'", path);
	}
	if (guestfs_chmod(c->g, (int)op->mode, path) < 0)
		return cust_gerr(c, "chmod '%s'", path);
	return 0;
}

static int cust_op_timezone(struct cust_ctx *c, const struct cust_op *op)
{
	char zone[512], line[160];
	int r;

	snprintf(zone, sizeof(zone), "/usr/share/zoneinfo/%s", op->args[0]);
	r = guestfs_is_file_opts(c->g, zone, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1);
	if (r < 0)
		return cust_gerr(c, "stat '%s'", zone);
	if (r == 0)
		return phx_err_set(c->err, PHX_E_GUEST,
				   "'%s' is not in the image (is tzdata installed?)", zone);
	if (guestfs_ln_sf(c->g, zone, "/etc/localtime") < 0)
		return cust_gerr(c, "%s", "link /etc/localtime");
	snprintf(line, sizeof(line), "%s\n", op->args[0]);
	if (guestfs_write(c->g, "/etc/timezone", line, strlen(line)) < 0)
		return cust_gerr(c, "%s", "write /etc/timezone");
	return 0;
}

/* --- hygiene: what every template needs so its clones get their own identity --- */

/* Without systemd nothing fills an empty /etc/machine-id at boot, and D-Bus makes its own id
 * when its file is missing (dbus-uuidgen --ensure in the dbus init script): so an existing
 * /etc/machine-id is emptied, none is created, and D-Bus's copy is removed. As virt-sysprep's
 * machine-id and dbus-machine-id operations do. */
static int cust_hyg_machine_id_openrc(struct cust_ctx *c, char *note, size_t note_len)
{
	static const char dbus[] = "/var/lib/dbus/machine-id";
	int etc = guestfs_is_file(c->g, "/etc/machine-id"), r;

	if (etc < 0)
		return cust_gerr(c, "%s", "stat /etc/machine-id");
	if (etc == 1 && guestfs_write(c->g, "/etc/machine-id", "", 0) < 0)
		return cust_gerr(c, "%s", "truncate /etc/machine-id");
	r = guestfs_is_file(c->g, dbus);
	if (r < 0)
		return cust_gerr(c, "stat '%s'", dbus);
	if (r == 1 && guestfs_rm(c->g, dbus) < 0)
		return cust_gerr(c, "remove '%s'", dbus);
	snprintf(note, note_len, "%s, '%s' %s", etc ? "" : " (none there: not created)", dbus,
		 r ? "removed" : "absent");
	return 0;
}

static int cust_hyg_machine_id(struct cust_ctx *c, char *note, size_t note_len)
{
	static const char dbus[] = "/var/lib/dbus/machine-id";
	int r;

	if (c->target.family->init == CUST_INIT_OPENRC)
		return cust_hyg_machine_id_openrc(c, note, note_len);
	if (guestfs_write(c->g, "/etc/machine-id", "", 0) < 0)
		return cust_gerr(c, "%s", "truncate /etc/machine-id");
	/* systemd copies the D-Bus id back into an empty /etc/machine-id at boot, so a regular
	 * file there would give every clone the same id: make it the link the distros ship. */
	r = guestfs_is_symlink(c->g, dbus);
	if (r < 0)
		return cust_gerr(c, "stat '%s'", dbus);
	if (r == 1) {
		snprintf(note, note_len, ", '%s' is a link", dbus);
		return 0;
	}
	r = guestfs_exists(c->g, dbus);
	if (r < 0)
		return cust_gerr(c, "stat '%s'", dbus);
	if (r == 0) {
		snprintf(note, note_len, ", no '%s'", dbus);
		return 0;
	}
	if (guestfs_rm_f(c->g, dbus) < 0 || guestfs_ln_s(c->g, "/etc/machine-id", dbus) < 0)
		return cust_gerr(c, "relink '%s'", dbus);
	snprintf(note, note_len, ", '%s' relinked to it", dbus);
	return 0;
}

static int cust_hyg_cloud_init(struct cust_ctx *c, char *note, size_t note_len)
{
	char **entries;
	bool state = false;
	int r;

	r = guestfs_is_file_opts(c->g, "/usr/bin/cloud-init", GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS,
				 1, -1);
	if (r < 0)
		return cust_gerr(c, "%s", "stat /usr/bin/cloud-init");
	if (r == 0) {
		snprintf(note, note_len, ": not installed");
		return 0;
	}
	/* `cloud-init clean` starts Python (seconds under TCG); only pay it when there is state
	 * from an earlier boot or run to clean. */
	r = guestfs_is_dir(c->g, "/var/lib/cloud");
	if (r < 0)
		return cust_gerr(c, "%s", "stat /var/lib/cloud");
	if (r == 1) {
		entries = guestfs_ls(c->g, "/var/lib/cloud");
		if (!entries)
			return cust_gerr(c, "%s", "list /var/lib/cloud");
		for (char **p = entries; *p; p++)
			if (!strcmp(*p, "instance") || !strcmp(*p, "instances") ||
			    !strcmp(*p, "data") || !strcmp(*p, "sem"))
				state = true;
		cust_free_strv(entries);
	}
	r = guestfs_exists(c->g, "/var/log/cloud-init.log");
	if (r < 0)
		return cust_gerr(c, "%s", "stat /var/log/cloud-init.log");
	if (!state && r == 0) {
		snprintf(note, note_len, ": never ran, nothing to clean");
		return 0;
	}
	if (cust_sh_checked(c, "cloud-init clean --logs") < 0)
		return -1;
	snprintf(note, note_len, ": state and logs removed");
	return 0;
}

/* Removes the paths a glob matches, except basenames in `keep` (NULL-terminated, may be
 * NULL). Adds the count to *ret_n. */
static int cust_rm_glob(struct cust_ctx *c, const char *pattern, const char *const *keep,
			size_t *ret_n)
{
	char **paths = guestfs_glob_expand(c->g, pattern);

	if (!paths)
		return cust_gerr(c, "glob '%s'", pattern);
	for (char **p = paths; *p; p++) {
		size_t len = strlen(*p);
		const char *base;
		bool skip = false;

		/* directories come back with a trailing '/' */
		if (len > 1 && (*p)[len - 1] == '/')
			(*p)[len - 1] = '\0';
		base = strrchr(*p, '/') ? strrchr(*p, '/') + 1 : *p;
		for (const char *const *k = keep; k && *k; k++)
			skip = skip || !strcmp(base, *k);
		if (skip)
			continue;
		if (guestfs_rm_rf(c->g, *p) < 0) {
			cust_gerr(c, "remove '%s'", *p);
			cust_free_strv(paths);
			return -1;
		}
		(*ret_n)++;
	}
	cust_free_strv(paths);
	return 0;
}

static int cust_hyg_ssh_keys(struct cust_ctx *c, char *note, size_t note_len)
{
	size_t n = 0;

	if (cust_rm_glob(c, "/etc/ssh/ssh_host_*", NULL, &n) < 0)
		return -1;
	snprintf(note, note_len, ": %zu removed", n);
	return 0;
}

static int cust_hyg_pkg_caches(struct cust_ctx *c, char *note, size_t note_len)
{
	const struct cust_family *fam = c->target.family;
	size_t n = 0;

	for (const char *const *g = fam->cache_globs; *g; g++)
		if (cust_rm_glob(c, *g, fam->cache_keep, &n) < 0)
			return -1;
	snprintf(note, note_len, " (%s): %zu removed", cust_pkg_tool_name(c->target.pkg), n);
	return 0;
}

/* Files written here carry no SELinux label, and an SELinux guest that boots with unlabeled
 * files denies access to them. As virt-customize's SELinux_relabel.relabel: a guest with
 * /usr/sbin/load_policy and /etc/selinux/config is an SELinux guest, and when its files
 * cannot be relabeled now it gets /.autorelabel, which makes it relabel everything on the
 * first boot and reboot once. NEEDSWORK: virt-customize first tries setfiles in the appliance
 * (guestfs_setfiles with the policy's file_contexts), which spares that boot. */
static int cust_hyg_selinux(struct cust_ctx *c, char *note, size_t note_len)
{
	int lp = guestfs_is_file_opts(c->g, "/usr/sbin/load_policy",
				      GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1);
	int cfg = guestfs_is_file_opts(c->g, "/etc/selinux/config",
				       GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1);

	if (lp < 0 || cfg < 0)
		return cust_gerr(c, "%s", "stat /usr/sbin/load_policy and /etc/selinux/config");
	if (lp == 0 || cfg == 0) {
		snprintf(note, note_len, ": not an SELinux guest");
		return 0;
	}
	if (guestfs_touch(c->g, "/.autorelabel") < 0)
		return cust_gerr(c, "%s", "touch /.autorelabel");
	snprintf(note, note_len, ": /.autorelabel created (relabels on first boot)");
	return 0;
}

/* --- root file system --- */

static bool cust_linux_fstype(const char *t)
{
	return !strcmp(t, "ext4") || !strcmp(t, "ext3") || !strcmp(t, "ext2") ||
	       !strcmp(t, "xfs") || !strcmp(t, "btrfs");
}

/* Mounts `dev` read-only for a moment and records whether it looks like an OS root: /etc and
 * an os-release, the same evidence inspection uses for Linux. *ret_mounted false when the
 * kernel could not mount it at all. */
static int cust_examine(struct cust_ctx *c, const char *dev, const char *fstype, bool keep,
			struct cust_fs_candidate *k, bool *ret_mounted, bool *ret_kept)
{
	int a, b1, b2;

	if (guestfs_mount_ro(c->g, dev, "/") < 0) {
		log_debug("customize: '%s' not mountable: %s", dev, guestfs_last_error(c->g));
		*ret_mounted = false;
		return 0;
	}
	a = guestfs_is_dir(c->g, "/etc");
	b1 = guestfs_exists(c->g, "/etc/os-release");
	b2 = guestfs_exists(c->g, "/usr/lib/os-release");
	if (a < 0 || b1 < 0 || b2 < 0)
		return cust_gerr(c, "examine '%s'", dev);
	/* The last candidate, when it is a root, stays mounted to be remounted read-write:
	 * one program run instead of two. */
	*ret_kept = keep && a == 1 && (b1 == 1 || b2 == 1);
	if (!*ret_kept && guestfs_umount(c->g, "/") < 0)
		return cust_gerr(c, "unmount '%s'", dev);
	k->device = dev;
	k->fstype = fstype;
	k->has_etc = a == 1;
	k->has_os_release = b1 == 1 || b2 == 1;
	log_debug("customize: '%s': %s", dev,
		  k->has_etc && k->has_os_release ? "an OS root" : "not an OS root");
	*ret_mounted = true;
	return 0;
}

/* Finds the OS root without guestfs_inspect_os (12-15 s under TCG, mostly spent on things we
 * do not use, like listing applications) and without guestfs_list_filesystems (~4 s: it runs
 * blkid, LVM, MD and btrfs scans for every device). Each partition (or whole device) is
 * simply mounted read-only and examined; every program the appliance runs costs ~0.3-1 s
 * under TCG, so this is the fewest that still looks at every file system. Only when a
 * partition cannot be mounted and turns out to be an LVM or RAID member does it fall back to
 * the full list_filesystems scan, which sees logical volumes. */
static int cust_find_root(struct cust_ctx *c, char **ret_dev, bool *ret_mounted_ro)
{
	struct cust_fs_candidate cand[32];
	char **parts = NULL, **fs = NULL;
	bool full_scan = false, kept = false;
	const char *kept_dev = NULL;
	size_t n = 0, idx;
	int rc = -1;

	parts = guestfs_list_partitions(c->g);
	if (parts && !parts[0]) {
		cust_free_strv(parts);
		parts = guestfs_list_devices(c->g); /* a file system on the whole disk */
	}
	if (!parts)
		return cust_gerr(c, "%s", "list partitions");
	for (size_t i = 0; parts[i] && n < sizeof(cand) / sizeof(cand[0]); i++) {
		bool mounted;
		char *type;

		if (cust_examine(c, parts[i], "", !parts[i + 1], &cand[n], &mounted, &kept) < 0)
			goto out;
		if (kept)
			kept_dev = parts[i];
		if (mounted) {
			n++;
			continue;
		}
		type = guestfs_vfs_type(c->g, parts[i]);
		if (type && (!strcmp(type, "LVM2_member") || !strcmp(type, "linux_raid_member")))
			full_scan = true;
		free(type);
	}
	if (full_scan) {
		log_debug("customize: LVM or RAID found: scanning all file systems");
		n = 0;
		if (kept_dev && guestfs_umount(c->g, "/") < 0) {
			cust_gerr(c, "unmount '%s'", kept_dev);
			goto out;
		}
		kept_dev = NULL;
		fs = guestfs_list_filesystems(c->g);
		if (!fs) {
			cust_gerr(c, "%s", "list file systems");
			goto out;
		}
		for (size_t i = 0; fs[i] && fs[i + 1] && n < sizeof(cand) / sizeof(cand[0]);
		     i += 2) {
			bool mounted;

			if (!cust_linux_fstype(fs[i + 1]) || !strncmp(fs[i], "btrfsvol:", 9))
				continue;
			if (cust_examine(c, fs[i], fs[i + 1], false, &cand[n], &mounted, &kept) < 0)
				goto out;
			n += mounted;
		}
	}
	if (cust_pick_root(cand, n, c->disk, &idx, c->err) < 0)
		goto out;
	/* kept mounted but not the pick means several roots: pick_root failed above */
	*ret_mounted_ro = kept_dev != NULL;
	*ret_dev = strdup(cand[idx].device);
	if (!*ret_dev) {
		phx_err_set(c->err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	cust_free_strv(parts);
	cust_free_strv(fs);
	return rc;
}

/* Mounts what the guest's fstab mounts below the root (e.g. Ubuntu's separate /boot), so
 * package scripts write where the booted system will look. Unresolvable entries are skipped,
 * as inspection does. */
static int cust_mount_fstab(struct cust_ctx *c)
{
	char **lines;
	int r = guestfs_is_file(c->g, "/etc/fstab");

	if (r <= 0)
		return r < 0 ? cust_gerr(c, "%s", "stat /etc/fstab") : 0;
	lines = guestfs_read_lines(c->g, "/etc/fstab");
	if (!lines)
		return cust_gerr(c, "%s", "read /etc/fstab");
	for (char **l = lines; *l; l++) {
		char spec[256], mp[256], type[32], *dev = NULL;

		if (sscanf(*l, " %255s %255s %31s", spec, mp, type) != 3 || spec[0] == '#')
			continue;
		if (mp[0] != '/' || mp[1] == '\0' || !cust_linux_fstype(type) ||
		    !cust_valid_guest_path(mp))
			continue;
		if (!strncmp(spec, "LABEL=", 6))
			dev = guestfs_findfs_label(c->g, spec + 6);
		else if (!strncmp(spec, "UUID=", 5))
			dev = guestfs_findfs_uuid(c->g, spec + 5);
		else if (!strncmp(spec, "/dev/", 5))
			dev = NULL; /* device names differ inside the appliance */
		if (!dev) {
			log_debug("customize: fstab '%s' on '%s': not found, not mounted", spec,
				  mp);
			continue;
		}
		if (guestfs_mkmountpoint(c->g, mp) < 0 && guestfs_is_dir(c->g, mp) != 1) {
			log_debug("customize: fstab mount point '%s' missing: %s", mp,
				  guestfs_last_error(c->g));
		} else if (guestfs_mount(c->g, dev, mp) < 0) {
			log_debug("customize: cannot mount '%s' on '%s': %s", dev, mp,
				  guestfs_last_error(c->g));
		} else {
			log_debug("customize: mounted '%s' on '%s'", dev, mp);
		}
		free(dev);
	}
	cust_free_strv(lines);
	return 0;
}

/* Reads os-release into rep (ID, VERSION_ID) and id_like. */
static int cust_read_os_release(struct cust_ctx *c, struct cust_report *rep, char *id_like,
				size_t like_len)
{
	const char *paths[] = {"/etc/os-release", "/usr/lib/os-release"};

	for (size_t i = 0; i < 2; i++) {
		char *real, *text;
		size_t len;

		/* realpath runs chrooted in the guest, so an absolute link resolves correctly */
		real = guestfs_realpath(c->g, paths[i]);
		if (!real)
			continue;
		text = guestfs_read_file(c->g, real, &len);
		free(real);
		if (!text)
			continue;
		cust_parse_os_release(text, rep->distro, sizeof(rep->distro), rep->version,
				      sizeof(rep->version));
		cust_os_release_get(text, "ID_LIKE", id_like, like_len);
		free(text);
		return 0;
	}
	return cust_gerr(c, "%s", "read os-release");
}

/* The guest's family from os-release, then which of its tools the image has. */
static int cust_detect_family(struct cust_ctx *c, struct cust_report *rep)
{
	const struct cust_family *fam;
	char like[128];
	int dnf = 0, yum = 0;

	if (cust_read_os_release(c, rep, like, sizeof(like)) < 0 ||
	    cust_family_pick(rep->distro, like, &fam, c->err) < 0)
		return -1;
	if (fam->pkg == CUST_PKG_DNF) {
		dnf = guestfs_is_file_opts(c->g, "/usr/bin/dnf",
					   GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1);
		yum = guestfs_is_file_opts(c->g, "/usr/bin/yum",
					   GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1);
		if (dnf < 0 || yum < 0)
			return cust_gerr(c, "%s", "stat /usr/bin/dnf and /usr/bin/yum");
	}
	cust_target_init(&c->target, fam, dnf == 1, yum == 1);
	snprintf(rep->family, sizeof(rep->family), "%s", fam->name);
	return 0;
}

/* --- the run --- */

static const char *cust_disk_format(const char *path)
{
	unsigned char magic[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = read(fd, magic, sizeof(magic));
	close(fd);
	if (n == 4 && !memcmp(magic, "QFI\xfb", 4))
		return "qcow2";
	return "raw";
}

static int cust_configure(struct cust_ctx *c, const struct cust_plan *plan,
			  const struct cust_opts *opts, struct cust_report *rep)
{
	const char *settings = getenv("LIBGUESTFS_BACKEND_SETTINGS");
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int smp = opts->smp > 0 ? opts->smp : (ncpu >= 2 ? 2 : 1);
	bool kvm;

	/* The libvirt backend adds a daemon and its own KVM decision; "direct" runs qemu
	 * ourselves. Respect an explicit choice. */
	if (!getenv("LIBGUESTFS_BACKEND") && guestfs_set_backend(c->g, "direct") < 0)
		return cust_gerr(c, "%s", "set backend 'direct'");
	if (settings && strstr(settings, "force_tcg")) {
		kvm = false;
		log_debug("customize: accelerator tcg (LIBGUESTFS_BACKEND_SETTINGS=%s)", settings);
	} else {
		char *hv = guestfs_get_hv(c->g);
		int rc;

		if (!hv)
			return cust_gerr(c, "%s", "get hypervisor path");
		rc = cust_accel_decide(opts->accel, hv, opts->state_dir, &kvm, c->err);
		free(hv);
		if (rc < 0)
			return -1;
		if (!kvm && guestfs_set_backend_setting(c->g, "force_tcg", "1") < 0)
			return cust_gerr(c, "%s", "set backend setting 'force_tcg'");
	}
	snprintf(rep->accel, sizeof(rep->accel), "%s", kvm ? "kvm" : "tcg");
	if (guestfs_set_smp(c->g, smp) < 0)
		return cust_gerr(c, "%s", "set vCPUs");
	if (opts->memsize_mib > 0 && guestfs_set_memsize(c->g, opts->memsize_mib) < 0)
		return cust_gerr(c, "%s", "set memory size");
	if (cust_plan_needs_network(plan) && guestfs_set_network(c->g, 1) < 0)
		return cust_gerr(c, "%s", "enable network");
	if (log_enabled(PHX_LOG_TRACE))
		guestfs_set_trace(c->g, 1);
	log_debug("customize: backend '%s', accelerator %s, %d vCPU%s, network %s",
		  getenv("LIBGUESTFS_BACKEND") ? getenv("LIBGUESTFS_BACKEND") : "direct",
		  rep->accel, smp, smp == 1 ? "" : "s",
		  cust_plan_needs_network(plan) ? "on" : "off");
	return 0;
}

static void cust_step_what(const struct cust_plan *plan, size_t i, char *what, size_t len)
{
	snprintf(what, len, "step %zu/%zu %s", i + 1, cust_plan_len(plan),
		 cust_plan_op(plan, i)->desc);
}

/* Runs the consecutive shell steps [first, end) in one guest command and logs each: every
 * command of every step is one entry of the batch, so a failure names its command. */
static int cust_run_shell_steps(struct cust_ctx *c, const struct cust_plan *plan, size_t first,
				size_t end, size_t *steps_done)
{
	struct cust_shell_step st[CUST_BATCH_MAX];
	struct cust_cmds cmds[CUST_BATCH_STEPS];
	size_t n = end - first, at[CUST_BATCH_STEPS + 1], total = 0;
	double up0 = clk_now(), upload;
	int rc = -1;

	memset(st, 0, sizeof(st));
	memset(cmds, 0, sizeof(cmds));
	for (size_t k = 0; k < n; k++) {
		const struct cust_op *op = cust_plan_op(plan, first + k);
		char dir[64] = "", what[700];

		at[k] = total;
		/* a directory per step: two steps' files may share a name */
		snprintf(dir, sizeof(dir), CUST_GUEST_PKGS "-%zu", first + k);
		if (cust_step_commands(op, &c->target, dir, &cmds[k], c->err) < 0 ||
		    (op->kind == CUST_OP_LOCAL_PACKAGES && cust_upload_local(c, op, dir) < 0)) {
			cust_step_what(plan, first + k, what, sizeof(what));
			phx_err_wrap(c->err, "%s", what);
			goto out;
		}
		for (size_t j = 0; j < cmds[k].n; j++)
			st[total++].script = cmds[k].v[j];
	}
	at[n] = total;
	upload = clk_now() - up0;
	if (cust_guest_batch(c, st, total) < 0) {
		char what[700];

		/* which of the batched steps was running is lost with the command's output */
		if (n == 1)
			cust_step_what(plan, first, what, sizeof(what));
		else
			snprintf(what, sizeof(what), "steps %zu-%zu/%zu", first + 1, end,
				 cust_plan_len(plan));
		phx_err_wrap(c->err, "%s", what);
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		const struct cust_op *op = cust_plan_op(plan, first + k);
		char what[700], note[160] = "";
		double secs = op->kind == CUST_OP_LOCAL_PACKAGES ? upload : 0;

		cust_step_what(plan, first + k, what, sizeof(what));
		for (size_t j = at[k]; j < at[k + 1]; j++) {
			/* a user step's commands carry the password hash: the step's description
			 * names it instead */
			if (cust_cmd_outcome(c, &st[j], st[j].script,
					     op->kind != CUST_OP_RUN && op->kind != CUST_OP_USER) <
			    0) {
				phx_err_wrap(c->err, "%s", what);
				goto out;
			}
			secs += st[j].seconds;
			/* Units with an empty [Install] section (qemu-guest-agent is started by
			 * udev when its virtio port appears) make systemctl explain and exit 0:
			 * not a failure, but say so. */
			if (op->kind == CUST_OP_ENABLE_SERVICES &&
			    strstr(st[j].out, "no installation config"))
				snprintf(note, sizeof(note),
					 " (static unit: started by its trigger, not by enable)");
		}
		log_info("customize: %s: done%s (%.1f s)", what, note, secs);
		(*steps_done)++;
	}
	rc = 0;
out:
	cust_steps_release(st, total);
	for (size_t k = 0; k < n; k++)
		cust_cmds_release(&cmds[k]);
	return rc;
}

/* Runs the plan in order; consecutive shell steps share one guest command. */
static int cust_run_plan(struct cust_ctx *c, const struct cust_plan *plan, size_t *steps_done)
{
	size_t n = cust_plan_len(plan);

	for (size_t i = 0; i < n;) {
		const struct cust_op *op = cust_plan_op(plan, i);
		char what[700];
		double t = clk_now();
		int rc;

		if (cust_is_shell_op(op->kind)) {
			size_t end = i;

			/* each step has at most CUST_CMDS_MAX commands */
			while (end < n && end - i < CUST_BATCH_STEPS &&
			       cust_is_shell_op(cust_plan_op(plan, end)->kind))
				end++;
			if (cust_run_shell_steps(c, plan, i, end, steps_done) < 0)
				return -1;
			i = end;
			continue;
		}
		cust_step_what(plan, i, what, sizeof(what));
		log_debug("customize: %s ...", what);
		if (op->kind == CUST_OP_PACKAGES)
			rc = cust_op_packages(c, op);
		else if (op->kind == CUST_OP_FILE)
			rc = cust_op_file(c, op);
		else
			rc = cust_op_timezone(c, op);
		if (rc < 0)
			return phx_err_wrap(c->err, "%s", what);
		log_info("customize: %s: done (%.1f s)", what, clk_now() - t);
		(*steps_done)++;
		i++;
	}
	return 0;
}

static int cust_hygiene(struct cust_ctx *c)
{
	static const struct {
		const char *what;
		int (*fn)(struct cust_ctx *, char *, size_t);
	} steps[] = {
		{"empty /etc/machine-id", cust_hyg_machine_id},
		{"cloud-init clean", cust_hyg_cloud_init},
		{"delete SSH host keys", cust_hyg_ssh_keys},
		{"clear package caches", cust_hyg_pkg_caches},
		/* last: after every file change */
		{"SELinux relabel", cust_hyg_selinux},
	};

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char note[160] = "";
		double t = clk_now();

		if (steps[i].fn(c, note, sizeof(note)) < 0)
			return phx_err_wrap(c->err, "hygiene '%s'", steps[i].what);
		log_info("customize: hygiene: %s%s (%.1f s)", steps[i].what, note, clk_now() - t);
	}
	return 0;
}

void cust_report_release(struct cust_report *rep)
{
	if (rep) {
		free(rep->packages);
		rep->packages = NULL;
	}
}

/* What is installed, asked of the guest's own package tools (they know their database's
 * format and version), in the database's order; which tool is the family's. */
static int cust_list_packages(struct cust_ctx *c, char **ret)
{
	char *out = NULL;
	int status;

	*ret = NULL;
	if (cust_guest_sh(c, c->target.family->installed, &status, &out) < 0)
		return -1;
	if (status == 3) {
		log_info("customize: no package database tool of family %s in the guest: the build "
			 "has no package list",
			 c->target.family->name);
	} else if (status != 0) {
		cust_guest_failed(c, PHX_E_GUEST, "list the installed packages: ", status, out);
		free(out);
		return -1;
	} else {
		*ret = out;
		out = NULL;
	}
	free(out);
	return 0;
}

/* PHX_CUSTOMIZE_STALL_S, else the default. No config key: the limit is a safety net that
 * the default fits, and an environment override reaches cron jobs and tests alike. */
static int cust_stall_seconds(double *ret, struct phx_err *err)
{
	const char *v = getenv("PHX_CUSTOMIZE_STALL_S");
	char *end;
	long n;

	if (!v || !*v) {
		*ret = CUST_WATCH_STALL_S;
		return 0;
	}
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 1 || n > 86400)
		return phx_err_set(err, PHX_E_INPUT,
				   "PHX_CUSTOMIZE_STALL_S: expected whole seconds from 1 to 86400, "
				   "got '%s'",
				   v);
	*ret = (double)n;
	return 0;
}

/* The free-space check before the appliance starts: the disk file grows on its own file
 * system while the guest writes, and qemu pauses (it does not fail) when that fills up. */
static int cust_check_space(const struct cust_plan *plan, const char *disk, const char *dir,
			    struct cust_space *ret, struct phx_err *err)
{
	struct statvfs vfs;
	unsigned long long avail;

	if (cust_space_estimate(plan, disk, ret, err) < 0)
		return -1;
	if (statvfs(dir, &vfs) < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "free space of '%s'", dir);
	/* f_bavail, not f_bfree: blocks reserved for root are the system's, not the cache's */
	avail = (unsigned long long)vfs.f_bavail * (unsigned long long)vfs.f_frsize;
	log_debug("customize: '%s' has %llu MiB free; the customization needs about %llu MiB (%s)",
		  dir, avail / CUST_MIB, (ret->need_bytes + CUST_MIB - 1) / CUST_MIB, ret->why);
	if (avail >= ret->need_bytes)
		return 0;
	return phx_err_set(err, PHX_E_IO,
			   "'%s' has %llu MiB free; the customization needs about %llu MiB (%s); "
			   "free space there or point PHX_CACHE_DIR at a larger file system",
			   dir, avail / CUST_MIB, (ret->need_bytes + CUST_MIB - 1) / CUST_MIB,
			   ret->why);
}

int cust_run(const struct cust_plan *plan, const char *disk_path, const struct cust_opts *opts,
	     struct cust_report *ret_report, struct phx_err *err)
{
	static const struct cust_opts defaults = CUST_OPTS_INIT;
	struct cust_report rep = {0};
	struct cust_ctx c = {.disk = disk_path, .err = err};
	struct cust_space space;
	struct cust_watch_cfg wcfg;
	struct rusage ru;
	sigset_t pipe_set, old_mask;
	double t0 = clk_now(), t, stall_s = CUST_WATCH_STALL_S;
	const char *fmt;
	char *root = NULL, dir[PATH_MAX];
	const char *slash = strrchr(disk_path, '/');
	bool root_ro = false;
	int rc = -1, pid;

	if (!opts)
		opts = &defaults;
	if (clk_signal())
		return phx_err_set(
			err, PHX_E_INTERRUPTED,
			"customize '%s': stopped by signal %d before the appliance started",
			disk_path, clk_signal());
	fmt = cust_disk_format(disk_path);
	if (!fmt)
		return phx_err_set_errno(err, PHX_E_IO, errno, "open disk '%s'", disk_path);
	snprintf(dir, sizeof(dir), "%.*s",
		 slash ? (slash == disk_path ? 1 : (int)(slash - disk_path)) : 1,
		 slash ? disk_path : ".");
	if (cust_stall_seconds(&stall_s, err) < 0 ||
	    cust_check_space(plan, disk_path, dir, &space, err) < 0)
		return phx_err_wrap(err, "customize '%s'", disk_path);
	/* libguestfs writes to the appliance's socket with write(): once the appliance is gone
	 * (killed by the watchdog, or crashed) that raises SIGPIPE, which would end the whole
	 * program. Blocked here, the write fails with EPIPE and libguestfs reports it. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
	c.g = guestfs_create_flags(0);
	if (!c.g) {
		phx_err_set_errno(err, PHX_E_RUNTIME, errno, "create libguestfs handle");
		goto out;
	}
	/* Errors come back through guestfs_last_error() and become phx_err; nothing below main
	 * prints. */
	guestfs_set_error_handler(c.g, NULL, NULL);
	if (cust_configure(&c, plan, opts, &rep) < 0)
		goto out;
	if (guestfs_add_drive_opts(c.g, disk_path, GUESTFS_ADD_DRIVE_OPTS_FORMAT, fmt, -1) < 0) {
		cust_gerr(&c, "add disk '%s'", disk_path);
		goto out;
	}
	wcfg = (struct cust_watch_cfg){.disk = disk_path,
				       .dir = dir,
				       .full_s = stall_s < CUST_WATCH_FULL_S ? stall_s
									     : CUST_WATCH_FULL_S,
				       .stall_s = stall_s,
				       .space = &space};
	if (cust_watch_start(&wcfg, &c.wd, err) < 0)
		goto out;
	t = clk_now();
	if (guestfs_launch(c.g) < 0) {
		cust_gerr(&c, "%s", "start the libguestfs appliance");
		if (c.wd_reported)
			phx_err_wrap(err, "customize '%s'", disk_path);
		else
			phx_err_wrap(err,
				     "customize '%s' (accelerator %s; 'libguestfs-test-tool' "
				     "diagnoses the appliance)",
				     disk_path, rep.accel);
		goto out;
	}
	rep.launch_seconds = clk_now() - t;
	log_info("customize: appliance started in %.1f s (%s)", rep.launch_seconds, rep.accel);
	pid = guestfs_get_pid(c.g);
	if (pid > 0)
		cust_watch_set_pid(c.wd, pid);
	else /* NEEDSWORK: libvirt's qemu is not our child: the watchdog finds nothing */
		log_debug("customize: no appliance pid from libguestfs (%s): the watchdog looks "
			  "for it itself",
			  guestfs_last_error(c.g));

	t = clk_now();
	if (cust_find_root(&c, &root, &root_ro) < 0)
		goto fail;
	if (root_ro && guestfs_mount_options(c.g, "remount,rw", root, "/") < 0) {
		log_debug("customize: remount '%s' read-write: %s", root, guestfs_last_error(c.g));
		if (guestfs_umount(c.g, "/") < 0) {
			cust_gerr(&c, "unmount '%s'", root);
			goto fail;
		}
		root_ro = false;
	}
	if (!root_ro && guestfs_mount(c.g, root, "/") < 0) {
		cust_gerr(&c, "mount root '%s'", root);
		goto fail;
	}
	if (cust_mount_fstab(&c) < 0 || cust_detect_family(&c, &rep) < 0)
		goto fail;
	snprintf(rep.root_device, sizeof(rep.root_device), "%s", root);
	log_info("customize: root file system '%s': %s %s, family %s (%s, %s) (%.1f s)", root,
		 rep.distro, rep.version, rep.family, cust_pkg_tool_name(c.target.pkg),
		 c.target.family->init == CUST_INIT_OPENRC ? "OpenRC" : "systemd", clk_now() - t);

	if (cust_run_plan(&c, plan, &rep.steps) < 0)
		goto fail;
	if (cust_hygiene(&c) < 0)
		goto fail;
	t = clk_now();
	if (cust_list_packages(&c, &rep.packages) < 0)
		goto fail;
	if (rep.packages)
		log_info("customize: listed the installed packages (%.1f s)", clk_now() - t);
	/* shutdown syncs and unmounts; its failure means the writes may not be on disk. */
	t = clk_now();
	if (guestfs_shutdown(c.g) < 0) {
		cust_gerr(&c, "%s", "shut down the appliance (changes may be incomplete)");
		goto fail;
	}
	/* Everything is on disk: a verdict reached from here on changes nothing. */
	cust_watch_disarm(c.wd);
	log_debug("customize: appliance shut down in %.1f s", clk_now() - t);
	rep.total_seconds = clk_now() - t0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		rep.peak_rss_kib = ru.ru_maxrss;
	log_info("customize: '%s' done in %.1f s, peak RSS %ld KiB", disk_path, rep.total_seconds,
		 rep.peak_rss_kib);
	*ret_report = rep;
	rc = 0;
	goto out;
fail:
	/* A killed appliance makes later calls fail in ways that look like other causes (a
	 * root file system that no longer mounts reads as "no operating system"). */
	if (!c.wd_reported && cust_watch_fired(c.wd, NULL)) {
		phx_err_clear(err);
		cust_watch_fired(c.wd, err);
	}
	phx_err_wrap(err, "customize '%s'", disk_path);
out:
	free(root);
	if (c.g)
		guestfs_close(c.g);
	/* after close: a close stuck on a hung qemu is still watched */
	cust_watch_free(c.wd);
	if (!sigismember(&old_mask, SIGPIPE)) {
		struct timespec now = {0, 0};

		while (sigtimedwait(&pipe_set, NULL, &now) > 0)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	return rc;
}

/* --- container root file systems: the same plan and hygiene on a tarball --- */

/* The host tool that turns the archive into a plain tar stream: libguestfs 1.48's tar-in
 * knows no zstd (and Ubuntu ships .tar.xz, our test rootfs .tar.zst), so every format is
 * decompressed on the host through a pipe, one code path for all. argv is static. */
static const char *const *cust_archive_reader(const char *path, struct phx_err *err)
{
	static const char *const zstd[] = {"zstd", "-q", "-d", "-c", NULL};
	static const char *const xz[] = {"xz", "-q", "-d", "-c", "-T0", NULL};
	static const char *const gz[] = {"gzip", "-q", "-d", "-c", NULL};
	static const char *const bz2[] = {"bzip2", "-q", "-d", "-c", NULL};
	static const char *const plain[] = {"cat", NULL};
	unsigned char m[6] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "open archive '%s'", path);
		return NULL;
	}
	n = read(fd, m, sizeof(m));
	close(fd);
	if (n >= 4 && !memcmp(m, "\x28\xb5\x2f\xfd", 4))
		return zstd;
	if (n >= 6 && !memcmp(m, "\xfd" "7zXZ\0", 6))
		return xz;
	if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b)
		return gz;
	if (n >= 3 && !memcmp(m, "BZh", 3))
		return bz2;
	return plain;
}

/* Starts argv with its stdin `in_fd` and stdout `out_fd` (-1: /dev/null / inherited);
 * closes `close_fd` in the child. The child's pid, or -1 with err. */
static pid_t cust_spawn(const char *const *argv, int in_fd, int out_fd, int close_fd,
			struct phx_err *err)
{
	pid_t pid = fork();

	if (pid < 0) {
		phx_err_set_errno(err, PHX_E_RUNTIME, errno, "start '%s'", argv[0]);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (close_fd >= 0)
			close(close_fd);
		if (in_fd >= 0 && dup2(in_fd, 0) < 0)
			_exit(126);
		if (out_fd >= 0 && dup2(out_fd, 1) < 0)
			_exit(126);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int cust_wait_tool(pid_t pid, const char *what, struct phx_err *err)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return phx_err_set_errno(err, PHX_E_RUNTIME, errno, "wait for '%s'", what);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return phx_err_set(err, PHX_E_RUNTIME,
				   "'%s' not found on this host (scripts/install-deps.sh installs it)",
				   what);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return phx_err_set(err, PHX_E_RUNTIME, "'%s' failed (%s %d)", what,
				   WIFEXITED(status) ? "exit status" : "signal",
				   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return 0;
}

/* Unpacks the archive into the mounted scratch file system. */
static int cust_rootfs_in(struct cust_ctx *c, const char *archive)
{
	const char *const *reader = cust_archive_reader(archive, c->err);
	int in = -1, p[2];
	char dev[32];
	pid_t pid;
	int rc;

	if (!reader)
		return -1;
	in = open(archive, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return phx_err_set_errno(c->err, PHX_E_IO, errno, "open archive '%s'", archive);
	if (pipe2(p, O_CLOEXEC) < 0) {
		close(in);
		return phx_err_set_errno(c->err, PHX_E_RUNTIME, errno, "pipe");
	}
	pid = cust_spawn(reader, in, p[1], p[0], c->err);
	close(in);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	snprintf(dev, sizeof(dev), "/dev/fd/%d", p[0]);
	rc = guestfs_tar_in_opts(c->g, dev, "/", GUESTFS_TAR_IN_OPTS_XATTRS, 1, -1);
	if (rc < 0)
		cust_gerr(c, "unpack '%s' (tar-in)", archive);
	close(p[0]); /* a reader still writing gets EPIPE and ends */
	if (cust_wait_tool(pid, reader[0], rc < 0 ? NULL : c->err) < 0 && rc == 0)
		return phx_err_wrap(c->err, "unpack '%s'", archive);
	return rc;
}

/* Packs the customized tree into `out` as zstd (what Proxmox unpacks fastest of its
 * formats, lxc-notes point 11): numeric owners, xattrs; the scratch file system's own
 * lost+found stays out. */
static int cust_rootfs_out(struct cust_ctx *c, const char *out)
{
	static const char *const zstd[] = {"zstd", "-q", "-T0", "-c", NULL};
	char *excludes[] = {"./lost+found", NULL};
	int fd, p[2], rc;
	char dev[32];
	pid_t pid;

	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return phx_err_set_errno(c->err, PHX_E_IO, errno, "create '%s'", out);
	if (pipe2(p, O_CLOEXEC) < 0) {
		close(fd);
		return phx_err_set_errno(c->err, PHX_E_RUNTIME, errno, "pipe");
	}
	pid = cust_spawn(zstd, p[0], fd, p[1], c->err);
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		close(fd);
		return -1;
	}
	snprintf(dev, sizeof(dev), "/dev/fd/%d", p[1]);
	rc = guestfs_tar_out_opts(c->g, "/", dev, GUESTFS_TAR_OUT_OPTS_NUMERICOWNER, 1,
				  GUESTFS_TAR_OUT_OPTS_XATTRS, 1, GUESTFS_TAR_OUT_OPTS_EXCLUDES,
				  excludes, -1);
	if (rc < 0)
		cust_gerr(c, "pack '%s' (tar-out)", out);
	close(p[1]);
	if (cust_wait_tool(pid, "zstd", rc < 0 ? NULL : c->err) < 0 && rc == 0)
		rc = phx_err_wrap(c->err, "pack '%s'", out);
	if (close(fd) < 0 && rc == 0)
		rc = phx_err_set_errno(c->err, PHX_E_IO, errno, "write '%s'", out);
	return rc;
}

/* The unit that gives each container its own SSH host keys at its first start: Proxmox
 * writes keys at create only, and every clone of the template would share them (lxc-notes
 * point 2). A marker, not ConditionFirstBoot: a clone's machine-id is "\n" (post_clone_hook),
 * which systemd does not count as a first boot. */
#define CUST_HOSTKEY_UNIT "phoenix-ssh-host-keys.service"
#define CUST_HOSTKEY_MARK "/etc/ssh/.phoenix-host-keys"

static int cust_ct_host_key_unit(struct cust_ctx *c, char *note, size_t note_len)
{
	static const char unit[] =
		"[Unit]\n"
		"Description=Own SSH host keys for this container (phoenix-orchestrator)\n"
		"ConditionPathExists=!" CUST_HOSTKEY_MARK "\n"
		"ConditionPathExists=/usr/bin/ssh-keygen\n"
		"Before=ssh.service sshd.service\n"
		"\n"
		"[Service]\n"
		"Type=oneshot\n"
		"ExecStart=/bin/sh -c 'rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub "
		"&& ssh-keygen -A && touch " CUST_HOSTKEY_MARK "'\n"
		"\n"
		"[Install]\n"
		"WantedBy=multi-user.target\n";
	static const char wants[] = "/etc/systemd/system/multi-user.target.wants";

	if (c->target.family->init != CUST_INIT_SYSTEMD) {
		snprintf(note, note_len, " (not systemd: none; keys come from Proxmox's create)");
		return 0;
	}
	if (guestfs_mkdir_p(c->g, wants) < 0)
		return cust_gerr(c, "mkdir '%s'", wants);
	if (guestfs_write(c->g, "/etc/systemd/system/" CUST_HOSTKEY_UNIT, unit,
			  sizeof(unit) - 1) < 0)
		return cust_gerr(c, "%s", "write " CUST_HOSTKEY_UNIT);
	if (guestfs_ln_sf(c->g, "/etc/systemd/system/" CUST_HOSTKEY_UNIT,
			  "/etc/systemd/system/multi-user.target.wants/" CUST_HOSTKEY_UNIT) < 0)
		return cust_gerr(c, "%s", "enable " CUST_HOSTKEY_UNIT);
	snprintf(note, note_len, " (%s)", CUST_HOSTKEY_UNIT);
	return 0;
}

/* A container mounts nothing from fstab: an image's root entry (LABEL=cloudimg-rootfs) makes
 * systemd-remount-fs fail and the container 'degraded' (lxc-notes, the test rootfs). */
static int cust_ct_fstab(struct cust_ctx *c, char *note, size_t note_len)
{
	static const char empty[] = "# a container mounts nothing from here (phoenix-orchestrator)\n";
	int r = guestfs_is_file(c->g, "/etc/fstab");

	if (r < 0)
		return cust_gerr(c, "%s", "stat /etc/fstab");
	if (r == 0) {
		snprintf(note, note_len, " (none there)");
		return 0;
	}
	if (guestfs_write(c->g, "/etc/fstab", empty, sizeof(empty) - 1) < 0)
		return cust_gerr(c, "%s", "empty /etc/fstab");
	return 0;
}

/* Proxmox configures a Debian container's netN through /etc/network/interfaces
 * (Setup/Debian.pm setup_network): without ifupdown nothing reads it (lxc-notes point 3). */
static int cust_ct_ifupdown(struct cust_ctx *c, char *note, size_t note_len)
{
	static const char script[] =
		"if command -v ifup >/dev/null 2>&1; then echo present; else apt-get -q update && "
		"DEBIAN_FRONTEND=noninteractive apt-get -q -y install ifupdown; fi";

	if (strcmp(c->target.family->name, "debian")) {
		snprintf(note, note_len, " (family %s: Proxmox configures it without)",
			 c->target.family->name);
		return 0;
	}
	return cust_sh_checked(c, script);
}

int cust_run_rootfs(const struct cust_plan *plan, const char *archive, const char *out,
		    const struct cust_rootfs_opts *ro, const struct cust_opts *opts,
		    struct cust_report *ret_report, struct phx_err *err)
{
	static const struct cust_opts defaults = CUST_OPTS_INIT;
	struct cust_report rep = {0};
	struct cust_ctx c = {.err = err};
	struct cust_space space = {0};
	struct cust_watch_cfg wcfg;
	struct stat st;
	sigset_t pipe_set, old_mask;
	double t0 = clk_now(), t, stall_s = CUST_WATCH_STALL_S;
	char scratch[PATH_MAX], dir[PATH_MAX];
	const char *slash = strrchr(out, '/');
	unsigned long long size;
	int rc = -1, pid, fd;

	if (!opts)
		opts = &defaults;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - out) : 1, slash ? out : ".");
	if (stat(archive, &st) < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "customize: open archive '%s'",
					 archive);
	if (cust_stall_seconds(&stall_s, err) < 0)
		return -1;
	/* sparse: xz packs a root file system about 5:1, packages need room beside it */
	size = 2048ULL * CUST_MIB + 8ULL * (unsigned long long)st.st_size;
	snprintf(scratch, sizeof(scratch), "%s.scratch", out);
	fd = open(scratch, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "create scratch disk '%s'", scratch);
		if (fd >= 0)
			close(fd);
		unlink(scratch);
		return -1;
	}
	close(fd);
	space.virtual_bytes = size;
	space.need_bytes = 8ULL * (unsigned long long)st.st_size;
	snprintf(space.why, sizeof(space.why), "the unpacked root file system");
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
	c.disk = scratch;
	c.g = guestfs_create_flags(0);
	if (!c.g) {
		phx_err_set_errno(err, PHX_E_RUNTIME, errno, "create libguestfs handle");
		goto out;
	}
	guestfs_set_error_handler(c.g, NULL, NULL);
	if (cust_configure(&c, plan, opts, &rep) < 0)
		goto out;
	if (ro->ifupdown && guestfs_set_network(c.g, 1) < 0) {
		cust_gerr(&c, "%s", "enable network");
		goto out;
	}
	if (guestfs_add_drive_opts(c.g, scratch, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "raw", -1) < 0) {
		cust_gerr(&c, "add disk '%s'", scratch);
		goto out;
	}
	wcfg = (struct cust_watch_cfg){.disk = scratch,
				       .dir = dir,
				       .full_s = stall_s < CUST_WATCH_FULL_S ? stall_s
									     : CUST_WATCH_FULL_S,
				       .stall_s = stall_s,
				       .space = &space};
	if (cust_watch_start(&wcfg, &c.wd, err) < 0)
		goto out;
	t = clk_now();
	if (guestfs_launch(c.g) < 0) {
		cust_gerr(&c, "%s", "start the libguestfs appliance");
		goto fail;
	}
	rep.launch_seconds = clk_now() - t;
	log_info("customize: appliance started in %.1f s (%s)", rep.launch_seconds, rep.accel);
	pid = guestfs_get_pid(c.g);
	if (pid > 0)
		cust_watch_set_pid(c.wd, pid);
	t = clk_now();
	if (guestfs_mkfs(c.g, "ext4", "/dev/sda") < 0) {
		cust_gerr(&c, "%s", "make the scratch file system");
		goto fail;
	}
	if (guestfs_mount(c.g, "/dev/sda", "/") < 0) {
		cust_gerr(&c, "%s", "mount the scratch file system");
		goto fail;
	}
	if (cust_rootfs_in(&c, archive) < 0)
		goto fail;
	log_info("customize: unpacked '%s' (%.1f s)", archive, clk_now() - t);
	if (cust_detect_family(&c, &rep) < 0)
		goto fail;
	log_info("customize: root file system: %s %s, family %s (%s)", rep.distro, rep.version,
		 rep.family, cust_pkg_tool_name(c.target.pkg));
	if (cust_run_plan(&c, plan, &rep.steps) < 0)
		goto fail;
	{
		static const struct {
			const char *what;
			int (*fn)(struct cust_ctx *, char *, size_t);
			bool ifupdown;
		} steps[] = {
			{"install ifupdown", cust_ct_ifupdown, true},
			{"empty /etc/fstab", cust_ct_fstab, false},
			{"new SSH host keys at first start", cust_ct_host_key_unit, false},
		};

		for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
			char note[160] = "";

			if (steps[i].ifupdown && !ro->ifupdown)
				continue;
			t = clk_now();
			if (steps[i].fn(&c, note, sizeof(note)) < 0) {
				phx_err_wrap(err, "container step '%s'", steps[i].what);
				goto fail;
			}
			log_info("customize: container: %s%s (%.1f s)", steps[i].what, note,
				 clk_now() - t);
		}
	}
	if (cust_hygiene(&c) < 0 || cust_list_packages(&c, &rep.packages) < 0)
		goto fail;
	t = clk_now();
	if (cust_rootfs_out(&c, out) < 0)
		goto fail;
	log_info("customize: packed '%s' (%.1f s)", out, clk_now() - t);
	if (guestfs_shutdown(c.g) < 0) {
		cust_gerr(&c, "%s", "shut down the appliance");
		goto fail;
	}
	cust_watch_disarm(c.wd);
	rep.total_seconds = clk_now() - t0;
	snprintf(rep.root_device, sizeof(rep.root_device), "%s", "/dev/sda");
	*ret_report = rep;
	rep.packages = NULL;
	rc = 0;
	goto out;
fail:
	if (!c.wd_reported && cust_watch_fired(c.wd, NULL)) {
		phx_err_clear(err);
		cust_watch_fired(c.wd, err);
	}
	phx_err_wrap(err, "customize '%s'", archive);
	unlink(out);
out:
	cust_report_release(&rep);
	if (c.g)
		guestfs_close(c.g);
	cust_watch_free(c.wd);
	unlink(scratch);
	if (!sigismember(&old_mask, SIGPIPE)) {
		struct timespec now = {0, 0};

		while (sigtimedwait(&pipe_set, NULL, &now) > 0)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	return rc;
}
