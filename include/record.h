/* record: the build record a guest of ours carries in its Proxmox description, one writer
 * and one parser for every kind: an intro line, then "key: value" lines (a template's
 * source, hashes and build time; a VM's config and seed hash). Proxmox keeps the
 * description as given, so it survives backups and migrations with the guest. Pure. */
#ifndef PHX_RECORD_H
#define PHX_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct rec_field {
	const char *key, *value; /* borrowed */
};

/* `intro` (may be NULL) and a newline, then "key: value\n" per field. Caller frees. */
char *rec_write(const char *intro, const struct rec_field *fields, size_t n, struct phx_err *err);
/* Copies the value of the first line that starts with "key: " into ret; false and ret ""
 * when there is none (record may be NULL). */
bool rec_get(const char *record, const char *key, char *ret, size_t len);

#endif
