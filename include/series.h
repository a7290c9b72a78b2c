/* series: naming, tagging and retention rules for template versions, as pure functions over
 * what the cluster reports (so they are unit-testable without a server). A series is the set
 * of templates built from one config template: they carry the tag `phoenix` (ours) and
 * `phx-<name>` (which series), versions are named `<name>-<YYYYMMDD>-<NNN>` and live in the
 * series' VMID range. Does not talk to Proxmox. */
#ifndef PHX_SERIES_H
#define PHX_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"

#define SERIES_TAG_OURS "phoenix"
#define SERIES_TAG_VALIDATED "validated"
#define SERIES_TAG_BUILDER "builder-phoenix"

/* One guest as listed by /cluster/resources. Strings borrowed from the caller. */
struct series_guest {
	unsigned long vmid;
	const char *name;
	const char *tags; /* Proxmox tag list as returned: ';'-joined, may be NULL */
	bool is_template;
};

/* True when `tags` (split on ';', ',' or white space) contains `tag`, case-insensitively. */
bool series_has_tag(const char *tags, const char *tag);

/* Writes "phx-<name>" (lower-cased; characters outside the tag alphabet become '-'). */
int series_tag(const char *template_name, char *ret, size_t len, struct phx_err *err);

/* Parses "<name>-<YYYYMMDD>-<NNN>" for the given base name: fills date (YYYYMMDD) and seq.
 * False when `vm_name` is not a version of `base`. */
bool series_parse_version(const char *base, const char *vm_name, unsigned *ret_date,
			  unsigned *ret_seq);

/* Name for a new version built at `now` (UTC): the next sequence number after the highest
 * version of `base` built the same day among `guests`. Caller owns *ret (free()). */
int series_next_name(const char *base, time_t now, const struct series_guest *guests, size_t n,
		     char **ret, struct phx_err *err);

/* Lowest VMID in [min, max] used by no guest. PHX_E_CONFLICT when the range is full. */
int series_next_vmid(unsigned long min, unsigned long max, const struct series_guest *guests,
		     size_t n, unsigned long *ret_vmid, struct phx_err *err);

/* Indexes (into guests) of the templates of series `base` (ours, series tag, version name),
 * newest first. Caller owns *ret (free()); *ret_n may be 0. */
int series_members(const char *base, const struct series_guest *guests, size_t n, size_t **ret,
		   size_t *ret_n, struct phx_err *err);

/* The newest member, optionally only among validated ones. -1 when there is none. */
long series_newest(const char *base, const struct series_guest *guests, size_t n,
		   bool validated_only);

/* The member named `version` (a pinned template_version), -1 when there is none. */
long series_find_version(const char *base, const struct series_guest *guests, size_t n,
			 const char *version);

/* ---- what linked clones use ---- */

/* VM `user` has a disk on the base volume of template `base`. */
struct series_use {
	unsigned long base, user;
};

/* Filled by series_uses_scan(); owns items, release with series_uses_release(). */
struct series_uses {
	struct series_use *items;
	size_t n, cap;
};

#define SERIES_USES_INIT                                                                           \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* Records the template base volumes that one value of VM `user`'s config names. A linked
 * clone's volume names its template's base volume before the first ',':
 * "local:9000/base-9000-disk-0.qcow2/8001/vm-8001-disk-0.qcow2" (dir, nfs),
 * "tank:base-9000-disk-0/vm-8001-disk-0" (zfs, rbd). An lvmthin clone's volume does not name
 * its base, so it is not seen. Values that are no volume add nothing. -1 only when out of
 * memory. */
int series_uses_scan(struct series_uses *u, unsigned long user, const char *value,
		     struct phx_err *err);
/* The first VM recorded as using template `base`, 0 when none. */
unsigned long series_uses_user(const struct series_uses *u, unsigned long base);
void series_uses_release(struct series_uses *u);

/* ---- retention (--prune) ---- */

/* Parses a build record's time, "YYYY-MM-DDTHH:MM:SSZ" (UTC, as cmd_provision writes it).
 * False, *ret untouched, for anything else. */
bool series_parse_time(const char *text, time_t *ret);

/* What --prune knows of a guest beyond struct series_guest; an array parallel to it. */
struct series_prune_guest {
	const char *node; /* borrowed */
	time_t built;	  /* from the build record; 0: unknown */
};

struct series_retention {
	unsigned long keep;		/* newest versions kept on each node, >= 1 */
	unsigned long max_age_days;	/* 0: no age limit */
	const struct series_uses *uses; /* borrowed; bases linked clones use */
	const unsigned long *pinned;	/* borrowed; VMIDs config VMs clone (clone_from_vmid) */
	size_t n_pinned;
};

/* One version --prune looked at: it goes, or it stays and why. */
struct series_verdict {
	size_t guest; /* index into the guest arrays */
	bool remove;
	/* why it goes ("beyond keep 3", "older than 90 days (built 2026-08-01)", both joined
	 * with ", ") or why it stays ("linked clone 8100 uses it", "the newest version on
	 * 'pve1'", "the newest validated version", "a VM in the config clones it
	 * (clone_from_vmid)", "build time unknown: ...") */
	char why[160];
};

/* The retention decision for series `base`, pure, with the clock passed in. A version is a
 * candidate when it is beyond the newest `keep` of its node or built more than max_age_days
 * before `now`; a candidate goes unless a linked clone uses it, it is the newest version or
 * the newest validated version of the series on its node (deploys clone those), or a config
 * VM clones it. With max_age_days, a version whose build time is unknown stays, and says so.
 * Versions within keep and young enough are not listed. Verdicts come newest first; caller
 * owns *ret (free()), *ret_n may be 0. */
int series_prune_decide(const char *base, const struct series_guest *guests,
			const struct series_prune_guest *extra, size_t n,
			const struct series_retention *r, time_t now, struct series_verdict **ret,
			size_t *ret_n, struct phx_err *err);

/* ---- removing one template (--remove-template) ---- */

/* Which guest `arg` names: all digits is a VMID; else the one guest Proxmox calls `arg` (a
 * version's name, or a fixed-VMID template's name); else `config_vmid`, the VMID the config
 * gives a template named `arg` (0: none). `config_series`: the config has a version series
 * named `arg` (the hint then says to name one version). Fills *ret_idx (index into guests;
 * `nodes` is parallel to them and names where each guest is). PHX_E_NOTFOUND when nothing
 * matches; PHX_E_CONFLICT when several guests share the name (a series built on several nodes
 * has a copy of each version on each), naming their VMIDs and nodes. */
int series_resolve(const char *arg, const struct series_guest *guests, const char *const *nodes,
		   size_t n, unsigned long config_vmid, bool config_series, size_t *ret_idx,
		   struct phx_err *err);

/* Refuses (PHX_E_CONFLICT) to remove guest `g` when it is not ours (no `phoenix` tag), not a
 * template, or when linked clones use its base volume (all of them named, as --prune would
 * keep it). 0 when it may go. */
int series_check_removable(const struct series_guest *g, const struct series_uses *u,
			   struct phx_err *err);

#endif
