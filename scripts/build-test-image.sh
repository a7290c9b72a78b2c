#!/bin/sh
# build-test-image.sh: builds the Debian bookworm stand-in for Ubuntu's cloud image that every
# test, benchmark and the demo use (no internet for Ubuntu's image here, only Debian's mirror).
#
# Usage: scripts/build-test-image.sh [--tiny]
#   Prints the path of the cached qcow2 image on stdout (and nothing else); logs to stderr.
#   full   : debootstrap minbase + systemd, cloud-init, openssh-server, netplan.io, the Debian
#            cloud kernel; made cloud-image-like (systemd-networkd, LANG=C.UTF-8, fstab by
#            LABEL=cloudimg-rootfs, empty machine-id, no SSH host keys, docs/man/locales
#            stripped). vmlinuz and initrd.img are copied beside the qcow2 because the image has
#            no boot loader: boot with -kernel/-initrd and 'root=LABEL=cloudimg-rootfs
#            console=ttyS0'. Deliberately WITHOUT qemu-guest-agent: the product must add it.
#   --tiny : minbase + systemd-sysv only (no kernel, no cloud-init, no sshd) for fast
#            customization tests.
#   Both have a debs/ directory beside the image holding qemu-guest-agent and exactly the
#   packages the image lacks for it (computed by apt against the image's own dpkg status), so
#   offline customization can `dpkg -i debs/*.deb`.
#
# Cache: ${PHX_TEST_IMAGE_CACHE:-$HOME/.cache/phoenix/test-images}/<sha256 of this script's
#   non-comment lines>/
#   {full,tiny}/. The package lists live in this file, so editing it invalidates the cache.
#   Built in a temporary directory and renamed into place, under a flock, so concurrent callers
#   build once and never see a half-built image. Never modify the cached image: give each test
#   a qcow2 overlay (qemu-img create -f qcow2 -b IMAGE -F qcow2 overlay.qcow2).
#   Downloaded .debs are kept in <cache>/apt-archives/ across script versions.
#
# Mirror: PHX_DEBIAN_MIRROR if set, else the Debian mirror this machine's apt already uses
#   (/etc/apt/sources.list and sources.list.d, one-line and deb822 formats).
#
# Needs root (debootstrap, chroot), debootstrap, sfdisk, mke2fs (e2fsprogs >= 1.43 for -d),
# qemu-img, apt-get. Measured on a 2-core bookworm VM, idle, package cache cold for the full
# variant's extra packages (a busy machine doubles these):
#   full: ~105 s (debootstrap ~95 s), qcow2 375 MiB (rootfs 371 MiB, virtual 4 GiB),
#         vmlinuz 13.5 MiB + initrd.img 14.6 MiB; agent debs: libnuma1 liburing2
#         qemu-guest-agent (384 KiB)
#   tiny: ~44 s (debootstrap ~40 s), qcow2 107 MiB (virtual 2 GiB); agent debs add
#         libglib2.0-0 (1.7 MiB in all)
#   cache hit: <0.1 s.
set -eu

log() { printf 'build-test-image: %s\n' "$*" >&2; }
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

SUITE=bookworm
# cloud-init's dependency on a virtual cffi package cannot be resolved by debootstrap unless
# python3-cffi-backend is named explicitly.
FULL_PKGS=systemd-sysv,udev,dbus,cloud-init,openssh-server,linux-image-cloud-amd64,netplan.io,iproute2,python3-cffi-backend,ca-certificates
TINY_PKGS=systemd-sysv
AGENT_PKG=qemu-guest-agent
LABEL=cloudimg-rootfs

self=$(readlink -f "$0")
# Comment lines do not change what gets built, so they do not invalidate the cache.
hash=$(grep -v '^[[:space:]]*#' "$self" | sha256sum | cut -c1-16)
root=${PHX_TEST_IMAGE_CACHE:-${HOME:-/root}/.cache/phoenix/test-images}
cache=$root/$hash
final=$cache/$variant
if [ "$variant" = full ]; then
	image_name=debian-12-cloud.qcow2
	disk_mib=4096
else
	image_name=debian-12-tiny.qcow2
	disk_mib=2048
fi

if [ -f "$final/$image_name" ]; then
	printf '%s\n' "$final/$image_name"
	exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it)"
for tool in debootstrap sfdisk mke2fs qemu-img apt-get flock; do
	command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
	command -v "$tool" >/dev/null 2>&1 ||
		die "'$tool' not found (run scripts/install-deps.sh)"
done

# The Debian mirror this machine already reaches: the first apt source serving the main
# component of a plain Debian suite (not -security, not -updates).
find_mirror() {
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" {
			i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			uri = $i; suite = $(i + 1)
			if (suite !~ /-/ && uri !~ /security/ && index($0, " main")) { print uri; exit }
		}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'function flush() {
			if (types ~ /(^| )deb( |$)/ && enabled !~ /no/ && comps ~ /(^| )main( |$)/ &&
			    uris !~ /security/) {
				n = split(suites, s, " ")
				for (k = 1; k <= n; k++) if (s[k] !~ /-/) { split(uris, u, " "); print u[1]; exit }
			}
			types = uris = suites = comps = enabled = ""
		}
		/^[ \t]*$/ { flush(); next }
		/^#/ { next }
		/^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
		/^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
		/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
		/^Components:/ { sub(/^Components:[ \t]*/, ""); comps = $0 }
		/^Enabled:/ { sub(/^Enabled:[ \t]*/, ""); enabled = $0 }
		END { flush() }' "$f"
	done
}
mirror=${PHX_DEBIAN_MIRROR:-$(find_mirror | head -n 1)}
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list(.d); set PHX_DEBIAN_MIRROR"

mkdir -p "$cache" "$root/apt-archives"
# One builder per variant; a second caller waits and then finds the finished image.
exec 9>"$cache/.lock-$variant"
flock 9
if [ -f "$final/$image_name" ]; then
	printf '%s\n' "$final/$image_name"
	exit 0
fi

tmp=$(mktemp -d "$cache/.build-$variant.XXXXXX")
# mktemp makes it 0700; the finished image must be readable by unprivileged test runs.
chmod 755 "$tmp"
rootfs=$tmp/rootfs
cleanup() {
	# debootstrap and chroot steps may leave proc/sys/dev mounted inside the rootfs: unmount
	# them before deleting or rm would descend into the host's /proc and /dev.
	if [ -n "${tmp:-}" ] && [ -d "$tmp" ]; then
		awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r |
			while read -r m; do umount -l "$m" 2>/dev/null || true; done
		rm -rf --one-file-system "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

start=$(date +%s)
log "building $variant image from $mirror in $tmp"

if [ "$variant" = full ]; then include=$FULL_PKGS; else include=$TINY_PKGS; fi
# --cache-dir keeps downloaded .debs across script versions: a rebuild after editing this
# script does not download ~200 MB again.
if ! debootstrap --variant=minbase --include="$include" --cache-dir="$root/apt-archives" \
	"$SUITE" "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
	tail -n 20 "$tmp/debootstrap.log" >&2
	[ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 20 "$rootfs/debootstrap/debootstrap.log" >&2
	die "debootstrap failed (mirror '$mirror' unreachable? see the lines above)"
fi
log "debootstrap done after $(($(date +%s) - start)) s"

# --- offline agent packages: what the image lacks for qemu-guest-agent, resolved by apt
# against the image's own dpkg status, downloaded on the host (the image must not get them).
mkdir -p "$tmp/debs"
agent_pkgs=$(apt-get -s -q -o Dir::State::status="$rootfs/var/lib/dpkg/status" \
	-o Debug::NoLocking=1 install --no-install-recommends "$AGENT_PKG" 2>/dev/null |
	awk '/^Inst /{print $2}')
case " $(echo $agent_pkgs) " in
*" $AGENT_PKG "*) ;;
*) die "apt on this host cannot resolve '$AGENT_PKG' (run apt-get update?)" ;;
esac
chown _apt "$tmp/debs" 2>/dev/null || true
# shellcheck disable=SC2086
(cd "$tmp/debs" && apt-get download -q $agent_pkgs >"$tmp/download.log" 2>&1) ||
	{ tail -n 20 "$tmp/download.log" >&2; die "apt-get download of '$agent_pkgs' failed"; }
log "agent debs: $(echo $agent_pkgs) ($(du -sk "$tmp/debs" | cut -f1) KiB)"

# --- make it look like a cloud image
if [ "$variant" = full ]; then
	chroot "$rootfs" systemctl enable systemd-networkd >/dev/null 2>&1 ||
		die "systemctl enable systemd-networkd failed in the chroot"
	# cloud-init's locale module fails without a locale the image has.
	printf 'LANG=C.UTF-8\n' >"$rootfs/etc/default/locale"
	# Proxmox gives a NoCloud (or ConfigDrive) seed: skip probing the other datasources.
	printf 'datasource_list: [ NoCloud, ConfigDrive, None ]\n' \
		>"$rootfs/etc/cloud/cloud.cfg.d/90_phoenix_datasources.cfg"
	# debootstrap's kernel hooks leave the boot files; copy them out for -kernel/-initrd.
	vmlinuz=$(ls "$rootfs"/boot/vmlinuz-* | sort -V | tail -n 1)
	initrd=$(ls "$rootfs"/boot/initrd.img-* | sort -V | tail -n 1)
	cp "$vmlinuz" "$tmp/vmlinuz"
	cp "$initrd" "$tmp/initrd.img"
fi
printf 'LABEL=%s\t/\text4\tdefaults,discard,errors=remount-ro\t0\t1\n' "$LABEL" \
	>"$rootfs/etc/fstab"
printf 'localhost\n' >"$rootfs/etc/hostname"
# First boot must generate its own identity: empty machine-id (systemd fills it), and the
# D-Bus copy a link to it, as Debian's and Ubuntu's cloud images ship.
: >"$rootfs/etc/machine-id"
if [ -d "$rootfs/var/lib/dbus" ]; then
	rm -f "$rootfs/var/lib/dbus/machine-id"
	ln -s /etc/machine-id "$rootfs/var/lib/dbus/machine-id"
fi
rm -f "$rootfs"/etc/ssh/ssh_host_*
# Cloud images drop documentation; keep future installs from adding it back.
mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-phoenix-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias \
	-exec rm -rf {} + 2>/dev/null || true
# Package lists are ~50 MB and stale by the time anyone boots this; apt-get update refetches.
find "$rootfs/var/lib/apt/lists" -maxdepth 1 -type f ! -name lock -delete
rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs/debootstrap"
rm -f "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* 2>/dev/null || true
log "rootfs prepared: $(du -sm "$rootfs" | cut -f1) MiB"

# --- disk: GPT with one Linux partition from 1 MiB, the file system written straight into the
# raw file by mke2fs -d (no appliance, no loop device), then converted to qcow2.
raw=$tmp/disk.raw
truncate -s "${disk_mib}M" "$raw"
printf 'label: gpt\nstart=2048, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=%s\n' "$LABEL" |
	sfdisk -q "$raw" >&2
part=$(sfdisk -d "$raw" | sed -n 's/.*start= *\([0-9]*\), *size= *\([0-9]*\).*/\1 \2/p')
# shellcheck disable=SC2086
set -- $part
[ $# -eq 2 ] || die "cannot read the partition back from sfdisk -d"
start_sect=$1
size_sect=$2
mke2fs -q -F -t ext4 -L "$LABEL" -d "$rootfs" -E "offset=$((start_sect * 512))" \
	"$raw" "$((size_sect / 2))k" >&2
qemu-img convert -q -f raw -O qcow2 "$raw" "$tmp/$image_name"
rm -f "$raw"

# debootstrap.log and download.log stay beside the image for whoever wonders what went in.
rm -rf --one-file-system "$rootfs"
secs=$(($(date +%s) - start))
log "built $variant in $secs s: $(du -m "$tmp/$image_name" | cut -f1) MiB qcow2"
printf 'variant=%s\nmirror=%s\nseconds=%s\nagent_debs=%s\n' "$variant" "$mirror" "$secs" \
	"$(echo $agent_pkgs)" >"$tmp/BUILD-INFO"

rm -rf "$final"
mv "$tmp" "$final"
tmp=
printf '%s\n' "$final/$image_name"
