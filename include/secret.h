/* secret: holds the Proxmox API token secret. Loaded from an environment variable or a file
 * that must not be group/world readable (never from argv); wiped before it is freed. The value
 * must never reach err, logs, traces or JSON output. */
#ifndef PHX_SECRET_H
#define PHX_SECRET_H

#include "err.h"

struct phx_secret;

/* Copies `value` (trailing newline stripped). Caller owns; free with secret_free(). */
struct phx_secret *secret_from_string(const char *value, struct phx_err *err);

/* Reads the first line of `path`. Refuses a file readable by group or others (like ssh does
 * for keys), owned by another user than the effective one or root, an empty file, and a file
 * over 4 KiB. */
struct phx_secret *secret_from_file(const char *path, struct phx_err *err);

/* What secret_from_file() checks before it reads, without reading: the file opens (no
 * symlink), is a regular non-empty file owned by the effective user or root, and neither group
 * nor others have any access. For --check. */
int secret_check_file(const char *path, struct phx_err *err);

/* Borrowed; valid until secret_free(). */
const char *secret_value(const struct phx_secret *s);

void secret_free(struct phx_secret *s);

#endif
