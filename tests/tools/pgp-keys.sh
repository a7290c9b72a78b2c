#!/bin/sh
# Makes throwaway OpenPGP keys for the signature tests (no passphrase, never published):
#   DIR/gnupg        GnuPG home with the secret keys; sign with
#                    gpg --homedir DIR/gnupg --batch -u FPR --detach-sign|--clearsign ...
#   DIR/trusted.gpg  binary keyring of 'good' and 'old': what an operator would trust
#   DIR/trusted.asc  the same keys, ASCII-armored
#   DIR/other.asc    'other' alone: it signs, but is in neither trusted keyring
#   DIR/empty.asc    a text file with no key in it
#   DIR/ids          one "NAME FINGERPRINT" line per key: good, other, old
# 'old' was made in 2020 with a one-year expiry (--faked-system-time), so it is expired now;
# a signature it makes with --faked-system-time 20200601T000000 is otherwise good.
# Idempotent per DIR (DIR/ids marks a finished set); callers that run in parallel hold a lock.
# Usage: tests/tools/pgp-keys.sh DIR
set -eu
dir=$1
[ -f "$dir/ids" ] && exit 0
rm -rf "$dir/gnupg"
mkdir -p "$dir/gnupg"
chmod 700 "$dir/gnupg"
g() { gpg --homedir "$dir/gnupg" --batch --quiet --no-tty --pinentry-mode loopback --passphrase '' "$@"; }
fpr() { g --with-colons --list-keys "$1" | awk -F: '/^fpr/ {print $10; exit}'; }
g --quick-gen-key 'Phoenix Test Good <good@test.invalid>' ed25519 sign never
g --quick-gen-key 'Phoenix Test Other <other@test.invalid>' ed25519 sign never
g --faked-system-time 20200101T000000 --quick-gen-key 'Phoenix Test Old <old@test.invalid>' \
	ed25519 sign 1y 2>/dev/null
good=$(fpr good@test.invalid)
other=$(fpr other@test.invalid)
old=$(fpr old@test.invalid)
g --export "$good" "$old" >"$dir/trusted.gpg"
g --armor --export "$good" "$old" >"$dir/trusted.asc"
g --armor --export "$other" >"$dir/other.asc"
printf 'no key here\n' >"$dir/empty.asc"
printf 'good %s\nother %s\nold %s\n' "$good" "$other" "$old" >"$dir/ids.tmp"
mv "$dir/ids.tmp" "$dir/ids"
