/* customize: offline changes to a guest disk image with libguestfs, all steps in ONE appliance
 * launch. The only includer of <guestfs.h>; libguestfs errors are translated here.
 * Owns: the plan of ordered operations (packages, local package files, services, shell
 * commands, files, timezone), choosing the accelerator (KVM when it really works, else TCG),
 * locating and verifying the root file system, the guest's OS family (os-release: Debian/apt,
 * RHEL/dnf or yum, SUSE/zypper, Alpine/apk with OpenRC) that decides the commands, and the
 * always-on hygiene that makes a template safe to clone (empty machine-id, D-Bus machine-id
 * relinked or removed, cloud-init state cleaned, SSH host keys and package caches removed,
 * SELinux relabel requested).
 * Does not own: reading config (cmd_* fills the plan), downloading or caching images (the
 * caller passes a disk path it may modify; cust_prepare_copy keeps a cache pristine). */
#ifndef PHX_CUSTOMIZE_H
#define PHX_CUSTOMIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

enum cust_op_kind {
	CUST_OP_PACKAGES,	 /* the family's package manager, needs network */
	CUST_OP_LOCAL_PACKAGES,	 /* local .deb/.rpm/.apk files uploaded and installed offline */
	CUST_OP_ENABLE_SERVICES, /* systemctl enable, or rc-update add NAME default (OpenRC) */
	CUST_OP_RUN,		 /* sh -c COMMAND inside the guest */
	CUST_OP_FILE,		 /* write a file with a mode, from content or a host file */
	CUST_OP_TIMEZONE,	 /* /etc/localtime link and /etc/timezone */
	CUST_OP_USER,		 /* a user with uid/gid, groups, keys, password, git identity */
};

/* Ordered list of operations. Opaque; caller owns it, free with cust_plan_free(). */
struct cust_plan;

/* NULL with err (PHX_E_NOMEM) when out of memory. */
struct cust_plan *cust_plan_new(struct phx_err *err);
void cust_plan_free(struct cust_plan *plan);

/* The cust_plan_add_* functions validate their input before anything touches a disk and fail
 * with PHX_E_INPUT naming the offending value; the plan is unchanged on failure. All string
 * arguments are borrowed (copied into the plan). */

/* Package names (Debian's or RPM's character set: letters, digits, "+._-"), optionally
 * `name=version` or `name:arch`, written the same for every family (cust_step_commands
 * translates); n >= 1. */
int cust_plan_add_packages(struct cust_plan *plan, const char *const *names, size_t n,
			   struct phx_err *err);
/* Paths of local package files (each a readable regular file ending in .deb, .rpm or .apk,
 * basenames unique; the guest's family must install that format, which is known only once
 * the appliance runs); installed together with one `dpkg -i`, `rpm -Uvh` or `apk add` so they
 * may depend on each other. Errors name them `debs[i]`, the config key. */
int cust_plan_add_local_packages(struct cust_plan *plan, const char *const *paths, size_t n,
				 struct phx_err *err);
/* Service names ('qemu-guest-agent' or 'foo.service'; OpenRC gets 'foo'). A systemd unit whose
 * [Install] section is empty (qemu-guest-agent: udev starts it) is reported as static, not as
 * a failure. */
int cust_plan_add_services(struct cust_plan *plan, const char *const *names, size_t n,
			   struct phx_err *err);
/* A shell command run with /bin/sh -c inside the guest; non-zero exit fails the run. */
int cust_plan_add_run(struct cust_plan *plan, const char *command, struct phx_err *err);
/* A file at absolute guest path `path` (no '..' components) with permission bits `mode`
 * (<= 07777), owned by root. Content is `len` bytes at `data` (may contain NULs). */
int cust_plan_add_file_content(struct cust_plan *plan, const char *path, unsigned mode,
			       const void *data, size_t len, struct phx_err *err);
/* Same, with the content uploaded from the readable regular host file `source`. */
int cust_plan_add_file_source(struct cust_plan *plan, const char *path, unsigned mode,
			      const char *source, struct phx_err *err);
/* An IANA zone name such as 'Europe/Berlin' or 'UTC'; must exist in the guest's zoneinfo. */
int cust_plan_add_timezone(struct cust_plan *plan, const char *tz, struct phx_err *err);

/* A user to make (or bring in line, when the image has it already). Strings borrowed; NULL
 * or 0: not given. */
struct cust_user {
	const char *name;
	unsigned long uid, gid;	     /* 0: the guest's useradd picks */
	const char *const *groups;   /* supplementary groups, made when missing */
	size_t n_groups;
	const char *shell;	     /* NULL: /bin/sh where bash is missing, else /bin/bash */
	const char *const *ssh_keys; /* ~/.ssh/authorized_keys lines */
	size_t n_ssh_keys;
	const char *password_hash; /* crypt(3) hash set as it is (chpasswd -e) */
	bool password_expired;	   /* shadow's last change 0 (chage -d 0): new password at
				    * first login */
	bool sudo;		   /* NOPASSWD sudo in /etc/sudoers.d */
	const char *git_name, *git_email; /* ~/.gitconfig */
};

/* Validates names (user, groups), the shell path and that the strings hold no newline; the
 * password hash never appears in a message or the step's description. */
int cust_plan_add_user(struct cust_plan *plan, const struct cust_user *u, struct phx_err *err);

size_t cust_plan_len(const struct cust_plan *plan);
enum cust_op_kind cust_plan_kind(const struct cust_plan *plan, size_t i);
/* One-line description of step i, e.g. "install 2 local packages 'a.deb b.deb'"; used for the
 * per-step log line and dry runs. Borrowed; valid until the plan is freed. */
const char *cust_plan_describe(const struct cust_plan *plan, size_t i);
/* True when running the plan needs network inside the appliance (a packages step). */
bool cust_plan_needs_network(const struct cust_plan *plan);

enum cust_accel {
	CUST_ACCEL_AUTO = 0, /* KVM if a probe boot shows it works, else TCG */
	CUST_ACCEL_KVM,
	CUST_ACCEL_TCG,
};

struct cust_opts {
	enum cust_accel accel;
	/* Directory for the per-boot KVM probe verdict (borrowed; NULL: probe on every run,
	 * which costs up to ~3 s where KVM is broken). */
	const char *state_dir;
	int memsize_mib; /* appliance memory; 0: libguestfs default */
	int smp;	 /* appliance vCPUs; 0: up to 2, as the host allows */
};

#define CUST_OPTS_INIT                                                                             \
	{                                                                                          \
		CUST_ACCEL_AUTO, NULL, 0, 0                                                        \
	}

struct cust_report {
	char distro[32];       /* os-release ID, e.g. "ubuntu", "debian" */
	char family[16];       /* "debian", "rhel", "suse" or "alpine" */
	char version[32];      /* os-release VERSION_ID, e.g. "24.04", "12" */
	char root_device[64];  /* appliance device of the root file system, e.g. "/dev/sda1" */
	char accel[8];	       /* "kvm" or "tcg" */
	size_t steps;	       /* plan steps run (hygiene not counted) */
	double launch_seconds; /* appliance start */
	double total_seconds;  /* whole cust_run */
	long peak_rss_kib;     /* this process's peak RSS (getrusage), not the appliance's */
	/* the installed packages after customization, from the guest's own package database
	 * (dpkg-query or rpm), "name\tversion\tarch\n" per package in the database's order;
	 * NULL when the guest has neither. Owned: cust_report_release(). */
	char *packages;
};

void cust_report_release(struct cust_report *rep);

/* Runs the plan and then the hygiene steps on `disk_path` IN PLACE (qcow2 or raw, detected),
 * in one appliance launch. The disk must hold exactly one OS root file system. Logs one info
 * line per step. On failure returns -1: PHX_E_GUEST with the failing guest command, its exit
 * status and last lines of output, PHX_E_NET when a packages step finds no network in the
 * guest, PHX_E_NOTFOUND for no OS, PHX_E_INPUT for several OSes, an OS of no supported family
 * (naming its os-release ID and the families) or a step its family cannot do; *ret_report is
 * written only on success. opts may be NULL for defaults.
 *
 * The disk file grows while the guest writes, on the file system that holds it (the image
 * cache). Before the appliance starts, that file system must have the free space
 * cust_space_estimate() expects, else PHX_E_IO at once naming the directory, the free and the
 * needed MiB. While the appliance runs a watchdog thread stops it (the blocked libguestfs
 * call then fails and everything is released):
 *   - PHX_E_IO when that file system is full (under 16 MiB free) and the appliance made no
 *     progress for 30 s: qemu pauses on ENOSPC and would wait forever;
 *   - PHX_E_TIMEOUT when the appliance made no progress for PHX_CUSTOMIZE_STALL_S seconds
 *     (environment, default 600; the 30 s above shrink to it when it is smaller). Progress
 *     is the appliance using at least 2% of a CPU or the disk file growing;
 *   - PHX_E_INTERRUPTED within a second of SIGINT, SIGTERM or SIGHUP (clk_signal()).
 * A bad PHX_CUSTOMIZE_STALL_S is PHX_E_INPUT. The watchdog needs the qemu process, which the
 * default "direct" backend runs as our child; under LIBGUESTFS_BACKEND=libvirt it can neither
 * judge nor stop it. */
int cust_run(const struct cust_plan *plan, const char *disk_path, const struct cust_opts *opts,
	     struct cust_report *ret_report, struct phx_err *err);

struct cust_rootfs_opts {
	bool ifupdown; /* Debian family: install ifupdown when the image has no ifup */
};

/* A container template's root file system: unpacks `archive` (tar, optionally gzip, xz,
 * bzip2 or zstd; decompressed on the host) into a sparse scratch disk beside `out`, runs the
 * plan, the container steps (ifupdown, an empty /etc/fstab, a first-start unit that makes the
 * container's own SSH host keys) and the hygiene, and packs the tree into `out` as .tar.zst
 * with numeric owners and xattrs. One appliance launch; the same watchdog and errors as
 * cust_run. The scratch disk is removed in every case, `out` on failure.
 * NEEDSWORK: tar-in as root maps owner names through the appliance's passwd; an archive made
 * with names (not --numeric-owner) whose names the appliance knows under other IDs would
 * change owners. Ours and Ubuntu's use system names the appliance shares. */
int cust_run_rootfs(const struct cust_plan *plan, const char *archive, const char *out,
		    const struct cust_rootfs_opts *ro, const struct cust_opts *opts,
		    struct cust_report *ret_report, struct phx_err *err);

/* Copies the cached image `src` to `dst` for cust_run (reflink or copy_file_range), so the
 * cache stays pristine. */
int cust_prepare_copy(const char *src, const char *dst, struct phx_err *err);

/* The growth a run of `plan` is expected to add to `disk_path`'s file, for the free-space
 * check: a fixed allowance per kind of step (see customize_plan.c for the numbers and why),
 * never more than the disk can grow at all (its virtual size less what the file holds). */
struct cust_space {
	unsigned long long virtual_bytes; /* the disk as the guest sees it */
	unsigned long long alloc_bytes;	  /* what the file holds now (st_blocks) */
	unsigned long long need_bytes;	  /* the expected growth */
	char why[320];			  /* how need_bytes was reached, for messages */
};

/* Fills *ret from the disk's header and the plan (.deb and source files are stat'ed).
 * PHX_E_IO naming the file when one cannot be read. */
int cust_space_estimate(const struct cust_plan *plan, const char *disk_path, struct cust_space *ret,
			struct phx_err *err);

/* Exposed for tests. */

/* Boots `kernel` (no initrd) under `qemu` with -accel kvm and reports whether the kernel's
 * banner reaches the serial console within timeout_ms: /dev/kvm can exist and even run real
 * and long mode code while guest kernels hang (nested PVM), so only a kernel boot is an
 * honest probe. *ret_ok false with a reason in ret_why (may be NULL). -1 only when the probe
 * itself cannot be started. */
int cust_accel_probe_kvm(const char *qemu, const char *kernel, int timeout_ms, bool *ret_ok,
			 char *ret_why, size_t why_len, struct phx_err *err);

/* A file system found on the disk, as cust_pick_root sees it. */
struct cust_fs_candidate {
	const char *device;  /* borrowed */
	const char *fstype;  /* borrowed */
	bool has_os_release; /* /etc/os-release or /usr/lib/os-release present when mounted */
	bool has_etc;	     /* /etc is a directory */
};

/* Picks the single OS root among `n` candidates: file systems with /etc and an os-release.
 * *ret_index on success; PHX_E_NOTFOUND when there is none, PHX_E_INPUT naming the devices
 * when there are several. `disk` only names the disk in messages. */
int cust_pick_root(const struct cust_fs_candidate *c, size_t n, const char *disk, size_t *ret_index,
		   struct phx_err *err);

/* Parses os-release text: fills id and version_id ("" when absent); quotes are removed. */
void cust_parse_os_release(const char *text, char *id, size_t id_len, char *version,
			   size_t version_len);

#endif
