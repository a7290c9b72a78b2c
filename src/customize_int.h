/* customize_int: what the customize_*.c files share and nobody else may use. */
#ifndef PHX_CUSTOMIZE_INT_H
#define PHX_CUSTOMIZE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "customize.h"

struct cust_op {
	enum cust_op_kind kind;
	char **args; /* owned: package/unit names, .deb paths, {command}, {path[, source]}, {tz} */
	size_t nargs;
	void *data; /* owned: file content (CUST_OP_FILE from content), else NULL */
	size_t len;
	unsigned mode; /* CUST_OP_FILE */
	char *desc;    /* owned: one-line description for logs */
};

struct cust_plan {
	struct cust_op *ops; /* owned */
	size_t n, alloc;
};

/* Borrowed; valid until the plan is freed. */
const struct cust_op *cust_plan_op(const struct cust_plan *plan, size_t i);

/* --- OS families: which tools and conventions a guest's distribution has --- */

enum cust_pkg_tool { CUST_PKG_APT, CUST_PKG_DNF, CUST_PKG_YUM, CUST_PKG_ZYPPER, CUST_PKG_APK };
enum cust_init { CUST_INIT_SYSTEMD, CUST_INIT_OPENRC };

/* One row of the family table (customize_plan.c); static, never freed. */
struct cust_family {
	const char *name;		  /* "debian", "rhel", "suse", "alpine" */
	const char *const *ids;		  /* os-release ID or ID_LIKE words that mean it */
	enum cust_pkg_tool pkg;		  /* the usual tool (rhel: dnf; yum where only yum is) */
	enum cust_init init;		  /* how enable_services is done */
	const char *local_ext;		  /* local package files it installs: ".deb", ... */
	const char *const *cache_globs;	  /* package manager state hygiene removes */
	const char *const *cache_keep;	  /* basenames those globs must not remove */
	const char *const *offline_signs; /* index refresh output that means "no network" */
	/* sh script printing "name\tversion\tarch\n" per installed package, asking the
	 * family's own tool (it knows its database); exits 3 when the image lacks it */
	const char *installed;
};

/* The guest a plan is turned into commands for. */
struct cust_target {
	const struct cust_family *family; /* borrowed from the table */
	enum cust_pkg_tool pkg;		  /* family->pkg, or CUST_PKG_YUM (cust_target_init) */
};

/* Picks the family from os-release: ID first, then the ID_LIKE words in order (Rocky says
 * ID=rocky ID_LIKE="rhel centos fedora"). PHX_E_INPUT naming the ID, ID_LIKE and the
 * supported families when none matches. id_like may be NULL or "". */
int cust_family_pick(const char *id, const char *id_like, const struct cust_family **ret,
		     struct phx_err *err);
/* The target for `family` given what the image has: a RHEL-family image without dnf but with
 * yum (EL7) uses yum. */
void cust_target_init(struct cust_target *t, const struct cust_family *family, bool has_dnf,
		      bool has_yum);
/* "apt", "dnf", ... */
const char *cust_pkg_tool_name(enum cust_pkg_tool pkg);

/* The guest commands of one step, in order; each must exit 0. */
#define CUST_CMDS_MAX 8
struct cust_cmds {
	char *refresh; /* PACKAGES: the index refresh, judged for no network first; else NULL */
	char *v[CUST_CMDS_MAX]; /* owned */
	size_t n;
};

/* Fills *ret (release with cust_cmds_release()) with the commands `op` runs on target `t`.
 * A LOCAL_PACKAGES step's files are expected uploaded to guest directory `dir` (no shell
 * metacharacters; may be NULL for other kinds), which its last command removes. Pure: no I/O.
 * PHX_E_INPUT when the step cannot be done on this family (local files of another format; an
 * architecture apk cannot select); PHX_E_INTERNAL for a kind that runs no commands (FILE,
 * TIMEZONE). */
int cust_step_commands(const struct cust_op *op, const struct cust_target *t, const char *dir,
		       struct cust_cmds *ret, struct phx_err *err);
void cust_cmds_release(struct cust_cmds *c);

/* The value of `key` in os-release text without quotes or escapes ("" when absent). */
void cust_os_release_get(const char *text, const char *key, char *out, size_t out_len);

/* The args of a CUST_OP_USER step, by index ("" when not given). */
enum cust_user_arg {
	CUST_U_NAME,
	CUST_U_UID,
	CUST_U_GID,
	CUST_U_GROUPS, /* comma-separated */
	CUST_U_SHELL,
	CUST_U_KEYS, /* newline-separated */
	CUST_U_HASH,
	CUST_U_EXPIRED, /* "1" or "0" */
	CUST_U_SUDO,	/* "1" or "0" */
	CUST_U_GIT_NAME,
	CUST_U_GIT_EMAIL,
	CUST_U_COUNT
};

bool cust_valid_user_name(const char *s); /* [a-z_][a-z0-9_-]*, at most 32 */
bool cust_valid_package(const char *s);
bool cust_valid_unit(const char *s);
bool cust_valid_guest_path(const char *s);
bool cust_valid_timezone(const char *s);

/* AUTO: KVM when /dev/kvm opens and a kernel boots under it (cust_accel_probe_kvm), the
 * verdict cached per host boot in state_dir/kvm-probe (state_dir may be NULL). */
int cust_accel_decide(enum cust_accel want, const char *qemu, const char *state_dir, bool *ret_kvm,
		      struct phx_err *err);

#define CUST_MIB (1024ULL * 1024ULL)

/* --- the watchdog (customize_accel.c runs it, customize_plan.c judges) --- */

/* Below this much free space the disk's file system counts as full: qemu stops the guest on
 * the first write that does not fit, which leaves at most a few MiB. */
#define CUST_WATCH_FULL_BYTES (16 * CUST_MIB)
/* A full file system and no progress for this long: qemu has paused on ENOSPC. */
#define CUST_WATCH_FULL_S 30
/* No progress at all for this long (PHX_CUSTOMIZE_STALL_S overrides). */
#define CUST_WATCH_STALL_S 600
/* Progress: the appliance used at least this share of one CPU since the last progress. An
 * idle appliance under TCG uses ~0.6% (timer ticks), one paused on ENOSPC exactly 0. */
#define CUST_WATCH_BUSY 0.02

/* One look at the appliance. */
struct cust_watch_sample {
	double t;		  /* clk_now() */
	double cpu_s;		  /* the appliance's CPU seconds so far; < 0: unknown */
	unsigned long long alloc; /* bytes the disk file holds */
	unsigned long long avail; /* bytes free for it on its file system */
};

/* The last sample that showed progress; zero-initialise. */
struct cust_watch_state {
	bool started;
	double t_ref, cpu_ref;
	unsigned long long alloc_ref;
};

enum cust_watch_verdict {
	CUST_WATCH_OK = 0,
	CUST_WATCH_FULL,  /* full file system and no progress for full_s */
	CUST_WATCH_STALL, /* no progress for stall_s */
};

/* Feeds one sample; *ret_idle_s is how long there has been no progress. An unknown CPU time
 * counts as progress: without the process nothing can be judged (or stopped). */
enum cust_watch_verdict cust_watch_judge(struct cust_watch_state *st,
					 const struct cust_watch_sample *s, double full_s,
					 double stall_s, double *ret_idle_s);

/* The watchdog thread. Opaque; cust_watch_free() stops and frees it. */
struct cust_watch;

struct cust_watch_cfg {
	const char *disk;		/* borrowed: the disk file, as given to qemu */
	const char *dir;		/* borrowed: its directory, for statvfs and messages */
	double full_s;			/* CUST_WATCH_FULL_S, or stall_s when smaller */
	double stall_s;			/* CUST_WATCH_STALL_S or PHX_CUSTOMIZE_STALL_S */
	const struct cust_space *space; /* borrowed: the estimate, for messages */
};

/* Starts the thread; it copies what it needs from cfg. Until cust_watch_set_pid() it finds
 * the appliance itself: the child of this process whose command line names cfg->disk. */
int cust_watch_start(const struct cust_watch_cfg *cfg, struct cust_watch **ret,
		     struct phx_err *err);
/* The appliance's qemu pid from libguestfs, once launched. */
void cust_watch_set_pid(struct cust_watch *w, int pid);
/* Once this returns the watchdog kills nothing more; a verdict it reached stays readable. */
void cust_watch_disarm(struct cust_watch *w);
/* True when the watchdog stopped (or is stopping) the appliance; then sets err to why. */
bool cust_watch_fired(struct cust_watch *w, struct phx_err *err);
/* Stops and joins the thread; NULL is fine. */
void cust_watch_free(struct cust_watch *w);

#endif
