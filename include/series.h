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

#endif
