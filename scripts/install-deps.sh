#!/bin/sh
# Installs the Debian/Ubuntu packages that building, testing, benchmarking and the demo need.
# Idempotent: prints nothing and changes nothing when everything is present.
# Usage: scripts/install-deps.sh [--build-only]
set -eu

# build: compiler, libraries (headers) and pkg-config
BUILD_PKGS="build-essential pkg-config libcurl4-openssl-dev libssl-dev libjansson-dev
libyaml-dev libguestfs-dev libisofs-dev libgpgme-dev"
# test: Criterion, the simulator's qemu-img, libguestfs appliance and tools, the test image
# builder (debootstrap and its kernel), ISO reader, valgrind for leak checks, the Debian
# package build and its checker (test_deb), zsh for the completion test, gnupg (the
# signature tests make keys and sign with it), strace (what gpg is started with); zstd for
# the container rootfs tarball (build-test-rootfs.sh) and the simulator's vztmpl archives,
# and with xz-utils for the orchestrator itself (a kind lxc template's archive is
# decompressed and packed on the host: customize.c cust_run_rootfs),
# openssh-client for the simulator's ssh-keygen check of LXC ssh-public-keys; UEFI firmware
# for the simulator's bios: ovmf guests
TEST_PKGS="debhelper lintian zsh libcriterion-dev python3 qemu-utils qemu-system-x86 ovmf libguestfs-tools
linux-image-cloud-amd64 debootstrap xorriso valgrind openssl curl e2fsprogs fdisk
ca-certificates systemd gnupg strace zstd xz-utils openssh-client python3-prometheus-client python3-yaml python3-jsonschema python3-requests python3-jsonpatch python3-jinja2 python3-configobj python3-oauthlib"
# test, installed without their recommends (lxc's pull in lxcfs, apparmor, lxc-templates and
# more that nothing here uses): the simulator's real containers (--lxc-real: lxc-start,
# lxc-usernsexec) and the DHCP server on their bridges
NORECS_PKGS="lxc dnsmasq-base"
# bench: whole-command timing
BENCH_PKGS="hyperfine"

want="$BUILD_PKGS"
want_norecs=""
if [ "${1:-}" != "--build-only" ]; then
	want="$want $TEST_PKGS $BENCH_PKGS"
	want_norecs="$NORECS_PKGS"
fi

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}
missing=""
for p in $want; do
	installed "$p" || missing="$missing $p"
done
missing_norecs=""
for p in $want_norecs; do
	installed "$p" || missing_norecs="$missing_norecs $p"
done
[ -z "$missing$missing_norecs" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "install-deps: missing packages:$missing" >&2
		echo "install-deps: run this script as root (or install sudo) to install them" >&2
		exit 1
	fi
else
	SUDO=
fi

echo "install-deps: installing:$missing$missing_norecs" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
# shellcheck disable=SC2086
[ -z "$missing" ] || $SUDO apt-get install -y -qq $missing >&2
# shellcheck disable=SC2086
[ -z "$missing_norecs" ] || $SUDO apt-get install -y -qq --no-install-recommends $missing_norecs >&2
