/* pgp: the one door to GPGME (OpenPGP). Verifies that a file was signed by a key of a
 * keyring file the operator names, and counts the keys in such a file. Nothing else
 * includes <gpgme.h>, and nothing here trusts a user's or root's keyring: each call imports
 * the named keyring into a private, temporary GNUPGHOME (0700, removed afterwards) and every
 * key in it is trusted, no other. Each call runs in a child process whose environment holds
 * only PATH and LC_ALL, so gpg never inherits the API token secret (it may still be in the
 * environment while the config is checked). Does not fetch anything or parse checksums. */
#ifndef PHX_PGP_H
#define PHX_PGP_H

#include <stddef.h>

#include "err.h"

#define PGP_FPR_MAX 64 /* a v4 fingerprint is 40 hex digits, a v5 one 64 */

struct pgp_verified {
	/* The bytes the good signature covers: the data itself for a detached signature, the
	 * text inside the frame for a clear-signed message. Owned; NUL-terminated. */
	char *text;
	size_t len;
	char signer[PGP_FPR_MAX + 1]; /* fingerprint of the key that made the signature */
};

#define PGP_VERIFIED_INIT {0}

/* Counts the OpenPGP public keys in the file at `keyring` (binary or ASCII-armored).
 * PHX_E_IO when it cannot be read. */
int pgp_keyring_count(const char *keyring, size_t *ret_n, struct phx_err *err);

/* Accepts `data` only when a key of `keyring` made a good, valid signature over it: not
 * bad, not by a key missing from the keyring, and neither the key nor the signature expired
 * or revoked. `sig` is a detached signature (binary or armored) over `data`, or NULL when
 * `data` is itself a clear-signed message. Any one good signature suffices (a file may
 * carry others, e.g. by a newer key the operator has not added yet). `data_name`,
 * `sig_name` and `keyring` (borrowed) name the files in messages. Fails with PHX_E_VERIFY
 * naming the key ID of each signature found and why it was refused, or that there is no
 * signature. On success fills *ret (release with pgp_verified_release()); on failure *ret
 * is untouched. */
int pgp_verify(const char *keyring, const void *data, size_t len, const char *data_name,
	       const void *sig, size_t sig_len, const char *sig_name, struct pgp_verified *ret,
	       struct phx_err *err);
void pgp_verified_release(struct pgp_verified *v);

#endif
