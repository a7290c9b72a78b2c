/* pkglist: the package list of a built image ("what is inside"), what changed between two
 * builds, and where the lists are kept.
 *
 * A list is text, one installed package per line, "name\tversion\tarch\n", sorted by name
 * then arch (customization writes it from the guest's package database). It does not fit in
 * the template's description (Proxmox caps it at 8 KiB, qemu-server's `description`
 * maxLength; an Ubuntu cloud image has ~600 packages, ~20 KiB as lines) and the API cannot
 * write a snippet, so lists live on the building host in <cache>/packages/<customized
 * sha256>.tsv, and the build record binds them with a "packages: <count> <sha256>" line.
 * Pure but for pkg_store() and pkg_load(). */
#ifndef PHX_PKGLIST_H
#define PHX_PKGLIST_H

#include <stddef.h>

#include "err.h"

struct pkg {
	char *name, *version, *arch; /* owned by the list */
};

struct pkg_list {
	struct pkg *items; /* sorted by name, then arch */
	size_t n;
};

/* Parses list text. A line that is not three tab-separated non-empty fields is PHX_E_INPUT
 * naming its number. On success *ret owns copies; release with pkg_list_release(). */
int pkg_parse(const char *text, struct pkg_list *ret, struct phx_err *err);
void pkg_list_release(struct pkg_list *l);

/* Sorts list text (lines in any order) into the canonical form; caller frees *ret. */
int pkg_canonical(const char *text, char **ret, struct phx_err *err);

/* "<count> <sha256 of the text>", the build record's `packages` value. */
int pkg_summary(const char *text, char *ret, size_t len, struct phx_err *err);

enum pkg_change { PKG_ADDED, PKG_REMOVED, PKG_CHANGED };

struct pkg_delta {
	enum pkg_change change;
	const char *name, *arch;	       /* borrowed from the lists */
	const char *old_version, *new_version; /* NULL for added / removed */
};

/* What changed from `from` to `to`, by name and arch, sorted by name. Caller owns *ret
 * (free()); its strings are borrowed from the two lists. */
int pkg_diff(const struct pkg_list *from, const struct pkg_list *to, struct pkg_delta **ret,
	     size_t *ret_n, struct phx_err *err);

/* Keeps `text` as the list of the image whose sha256 is `image_sha` (atomic write). */
int pkg_store(const char *cache_dir, const char *image_sha, const char *text, struct phx_err *err);
/* The stored list of that image; PHX_E_NOTFOUND when this host has none. Caller frees. */
int pkg_load(const char *cache_dir, const char *image_sha, char **ret, struct phx_err *err);

#endif
