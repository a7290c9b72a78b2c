#!/bin/sh
# Phoenix feature "docker": installs Docker from the distribution's own packages (docker.io on
# Debian and Ubuntu), enables and starts the service, and lets one user run docker without
# sudo by adding them to the `docker` group.
#
# Delivered by the orchestrator in the VM's cloud-init seed and run once per instance (runcmd):
#   env PHOENIX_USER=<configured user> /bin/sh /var/lib/phoenix/features/docker.sh
# Usage by hand:  docker.sh [USER]      (USER overrides PHOENIX_USER; neither: no group change)
#
# Idempotent: a second run changes nothing and exits 0. Plain POSIX sh, no bashisms.
# Indented with spaces, not tabs: a tab would force the whole script into an escaped
# double-quoted string in user-data instead of a readable literal block.
# Exit status: 0 done, 1 a step failed (the message says which), 2 not a Debian/Ubuntu system
# or a named user that does not exist.
set -eu

user="${1:-${PHOENIX_USER:-}}"

log() {
    printf 'phoenix-feature docker: %s\n' "$*"
}

die() {
    code="$1"
    shift
    printf 'phoenix-feature docker: error: %s\n' "$*" >&2
    exit "$code"
}

[ "$(id -u)" -eq 0 ] || die 1 "must run as root"
command -v apt-get >/dev/null 2>&1 || die 2 "apt-get not found: only Debian/Ubuntu are supported"
if [ -n "$user" ] && ! id "$user" >/dev/null 2>&1; then
    die 2 "user '$user' does not exist"
fi

if dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q 'install ok installed'; then
    log "docker.io already installed"
else
    log "installing docker.io"
    export DEBIAN_FRONTEND=noninteractive
    # cloud-init may still hold the dpkg lock right after its package stage: wait for it
    # (apt-get >= 1.9.11 understands DPkg::Lock::Timeout; older ones ignore it)
    apt-get -o DPkg::Lock::Timeout=300 update -q || die 1 "apt-get update failed"
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends docker.io ||
        die 1 "apt-get install docker.io failed"
fi

# systemd is absent in containers and chroots: then the package is enough
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl enable --now docker.service >/dev/null 2>&1 ||
        die 1 "systemctl enable --now docker.service failed"
    log "docker.service enabled and running"
else
    log "no running systemd: service not enabled"
fi

if [ -n "$user" ]; then
    # docker.io creates the group, but keep working if a policy removed it
    getent group docker >/dev/null 2>&1 || groupadd --system docker ||
        die 1 "cannot create group docker"
    if id -nG "$user" | tr ' ' '\n' | grep -qx docker; then
        log "user '$user' already in group docker"
    else
        usermod -aG docker "$user" || die 1 "cannot add '$user' to group docker"
        log "added user '$user' to group docker (takes effect at next login)"
    fi
fi
exit 0
