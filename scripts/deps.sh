#!/bin/sh
# Install what bootvm needs to build and test, from Debian's archive (Debian 12).
# Usage: scripts/deps.sh [--bench]   (--bench adds QEMU, hyperfine and mmdebstrap for bench/)
set -eu

# libglib2.0-dev: slirp.pc requires glib-2.0, but Debian's libslirp-dev does not pull it in.
packages="build-essential pkg-config meson ninja-build linux-libc-dev python3
  zlib1g-dev liblz4-dev libzstd-dev liblzma-dev libcmocka-dev
  liburing-dev libslirp-dev libglib2.0-dev libext2fs-dev libarchive-dev
  libjson-c-dev libhttp-parser-dev curl
  acpica-tools cpio busybox-static kmod gzip xz-utils lz4 zstd
  e2fsprogs dosfstools mtools fdisk clang libclang-rt-14-dev passt"
[ "${1:-}" = "--bench" ] && packages="$packages qemu-system-x86 hyperfine time mmdebstrap"

missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "scripts/deps.sh: installing:$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
