/* seed: a NoCloud seed as a local `cidata` ISO, the one way deploy and --validate build it:
 * render the three files (cloudinit.h), pack them (iso.h) into a private temp file, hash it.
 * The hash names the volume, so the same seed is never uploaded twice. Uploading is the
 * caller's (a plan action in deploy, a direct call in --validate). */
#ifndef PHX_SEED_H
#define PHX_SEED_H

#include "cloudinit.h"
#include "crypto.h"
#include "err.h"

#define SEED_PATH_MAX 512

/* Renders `in` and builds the ISO in a new file under `dir` (the run's private temp dir,
 * session.h: a killed run's seed, which holds password hashes and keys, is swept by the next
 * run; NULL: $TMPDIR, else /tmp); ret_path gets its path (caller unlinks it) and ret_sha its
 * sha256. On failure no file is left and ret_path is "". */
int seed_build_iso_in(const char *dir, const struct ci_input *in, char ret_path[SEED_PATH_MAX],
		      char ret_sha[CRYPTO_SHA256_HEX_LEN + 1], struct phx_err *err);

#endif
