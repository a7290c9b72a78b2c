#!/bin/sh
# build-test-rootfs.sh: the container root filesystem tarball that LXC tests use, derived from
# the cached test image (scripts/build-test-image.sh) so that VMs and containers run the same
# Debian bookworm userland.
#
# Usage: scripts/build-test-rootfs.sh [--tiny]
#   Prints the path of the cached rootfs.tar.zst on stdout (and nothing else); logs to stderr.
#   Beside it: SHA256SUMS ('<sha256>  rootfs.tar.zst', sha256sum's format) and BUILD-INFO.
#   The tarball is what Proxmox takes as a vztmpl: zstd-compressed (pve-container
#   src/PVE/LXC/Create.pm tar_compression_option accepts .tar, .tar.gz, .tar.bz2, .tar.xz,
#   .tar.lzo and .tar.zst), members './...' with numeric owners, a 'sbin' entry and more than
#   10 members (Create.pm check_tar_archive). Left out: /boot and /lost+found (a container has
#   no kernel of its own) and /etc/fstab (it mounts LABEL=cloudimg-rootfs, a disk a container
#   does not have: systemd-remount-fs.service fails and the container boots 'degraded').
#   Otherwise the image's contents: empty machine-id, no SSH host keys, systemd, and for the
#   full variant cloud-init, systemd-networkd and openssh-server.
#
# How: libguestfs tar-out of the image's root file system (read-only, no inspection), piped
#   through zstd on the host (libguestfs 1.48's tar-out has no zstd). Runs the appliance under
#   TCG unless LIBGUESTFS_BACKEND_SETTINGS is set (the CI machines' /dev/kvm hangs guests, as
#   tests/pve-sim/README.md says for qemu mode; set LIBGUESTFS_BACKEND_SETTINGS= to let
#   libguestfs pick).
#
# Cache: ${PHX_TEST_ROOTFS_CACHE:-$HOME/.cache/phoenix/test-rootfs}/<sha256 of this script's
#   non-comment lines and the image's path>/{full,tiny}/. The image's path carries the hash
#   of build-test-image.sh, so a rebuilt image gives a new tarball. Built in a temporary
#   directory and renamed into place under a flock, like the image.
#
# Measured on the 2-core bookworm machine, image cache warm, load average ~17 (other builds):
#   full: 199 s, 13083 members, 91 MiB (334 MiB unpacked); tiny: 91 s, 4977 members, 31 MiB;
#   nearly all of it the TCG appliance's tar-out. zstd -19 instead of the default level 3:
#   tiny 24 MiB in 488 s. Cache hit: 0.45-2 s, mostly build-test-image.sh's own hit.
set -eu

log() { printf 'build-test-rootfs: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

variant=full
case "${1:-}" in
"") ;;
--tiny) variant=tiny ;;
-h | --help)
	sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 0
	;;
*) die "unknown argument '$1' (usage: $0 [--tiny])" ;;
esac

self=$(readlink -f "$0")
here=$(dirname "$self")
for tool in guestfish zstd tar sha256sum flock; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (run scripts/install-deps.sh)"
done

if [ "$variant" = tiny ]; then
	image=$("$here/build-test-image.sh" --tiny)
else
	image=$("$here/build-test-image.sh")
fi
[ -f "$image" ] || die "build-test-image.sh printed '$image', which is not a file"

hash=$( (grep -v '^[[:space:]]*#' "$self"; printf '%s\n' "$image") | sha256sum | cut -c1-16)
root=${PHX_TEST_ROOTFS_CACHE:-${HOME:-/root}/.cache/phoenix/test-rootfs}
cache=$root/$hash
final=$cache/$variant
name=rootfs.tar.zst

if [ -f "$final/$name" ]; then
	printf '%s\n' "$final/$name"
	exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock-$variant"
flock 9
if [ -f "$final/$name" ]; then
	printf '%s\n' "$final/$name"
	exit 0
fi

tmp=$(mktemp -d "$cache/.build-$variant.XXXXXX")
chmod 755 "$tmp"
cleanup() { if [ -n "${tmp:-}" ]; then rm -rf "$tmp"; fi; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

export LIBGUESTFS_BACKEND="${LIBGUESTFS_BACKEND:-direct}"
export LIBGUESTFS_BACKEND_SETTINGS="${LIBGUESTFS_BACKEND_SETTINGS-force_tcg}"
start=$(date +%s)
log "packing the root file system of $image"
# The image is one GPT partition labelled cloudimg-rootfs (build-test-image.sh). A failing
# guestfish must fail the pipeline, which plain sh cannot see: its status goes to a file.
{
	rc=0
	guestfish --ro --format=qcow2 -a "$image" <<-'EOF' 2>"$tmp/guestfish.log" || rc=$?
		run
		mount-ro /dev/sda1 /
		tar-out / - numericowner:true xattrs:true "excludes:./boot/* ./lost+found ./etc/fstab"
	EOF
	echo "$rc" >"$tmp/guestfish.status"
} | zstd -q -T0 -o "$tmp/$name.part"
if [ "$(cat "$tmp/guestfish.status")" != 0 ]; then
	cat "$tmp/guestfish.log" >&2
	die "guestfish tar-out failed (libguestfs-test-tool tells why)"
fi
mv "$tmp/$name.part" "$tmp/$name"
packed=$(date +%s)

# What pve-container checks before it unpacks a template (Create.pm check_tar_archive).
tar -tvf "$tmp/$name" --zstd --numeric-owner >"$tmp/members"
members=$(wc -l <"$tmp/members")
[ "$members" -gt 10 ] || die "only $members members in the tarball"
grep -Eq '^(d.* (\./)?sbin/|l.* (\./)?sbin ->)' "$tmp/members" || die "no sbin in the tarball"
rm -f "$tmp/members"

(cd "$tmp" && sha256sum "$name" >SHA256SUMS)
secs=$(($(date +%s) - start))
log "built $variant in $secs s (tar-out + zstd $((packed - start)) s): $members members, $(du -m "$tmp/$name" | cut -f1) MiB"
printf 'variant=%s\nimage=%s\nseconds=%s\nmembers=%s\n' "$variant" "$image" "$secs" \
	"$members" >"$tmp/BUILD-INFO"
rm -f "$tmp/guestfish.status" "$tmp/guestfish.log"

rm -rf "$final"
mv "$tmp" "$final"
tmp=
printf '%s\n' "$final/$name"
