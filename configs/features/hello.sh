#!/bin/sh
# Phoenix feature "hello": the demo's feature script (make demo). Needs no network, so it works
# where docker.sh cannot (the demo guests have no internet). It proves that the orchestrator
# delivered a feature through the cloud-init seed and that cloud-init ran it, as whom, and for
# which user, by writing /var/lib/phoenix/hello:
#   hello from phoenix feature on <hostname> for user <PHOENIX_USER> at <UTC time>
#
# Delivered by the orchestrator in the VM's cloud-init seed and run once per instance (runcmd):
#   env PHOENIX_USER=<configured user> /bin/sh /var/lib/phoenix/features/hello.sh
# Usage by hand:  hello.sh [USER]      (USER overrides PHOENIX_USER)
#
# Idempotent: a second run rewrites the same file. Plain POSIX sh, indented with spaces (a tab
# would force the script into an escaped string in user-data).
# Exit status: 0 written, 1 not root or the file could not be written, 2 the named user does
# not exist.
set -eu

user="${1:-${PHOENIX_USER:-}}"
out=/var/lib/phoenix/hello

die() {
    code="$1"
    shift
    printf 'phoenix-feature hello: error: %s\n' "$*" >&2
    exit "$code"
}

[ "$(id -u)" -eq 0 ] || die 1 "must run as root"
if [ -n "$user" ] && ! id "$user" >/dev/null 2>&1; then
    die 2 "user '$user' does not exist"
fi
mkdir -p "${out%/*}" || die 1 "cannot create ${out%/*}"
printf 'hello from phoenix feature on %s for user %s at %s\n' "$(hostname)" "${user:-none}" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$out.tmp" || die 1 "cannot write $out.tmp"
mv "$out.tmp" "$out" || die 1 "cannot write $out"
printf 'phoenix-feature hello: wrote %s\n' "$out"
exit 0
