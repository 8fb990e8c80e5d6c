#!/bin/sh
# Print the root of Debian's unpacked cloud kernel package (boot/vmlinuz-VER,
# lib/modules/VER with modules.dep), downloading and unpacking it once into a
# cache directory. Used by the demo (a stock kernel where KVM is hardware-
# backed), by test_initramfs (a real modules.dep and real compressed modules)
# and by tests/e2e/stock_kernel.py.
# On failure prints one line saying why on stderr and exits non-zero.
set -eu

cache=${BOOTVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bootvm}/cloud-kernel

mkdir -p "$cache" || { echo "cannot create $cache" >&2; exit 1; }
# One download at a time (the plain and sanitizer test builds run together).
if command -v flock >/dev/null 2>&1; then
	exec 9>"$cache/lock"
	flock 9
fi

# A previous unpack is reused as is: no network needed after the first run.
found() {
	for d in "$cache"/root/lib/modules/*/; do
		if [ -f "$d/modules.dep" ] && ls "$cache"/root/boot/vmlinuz-* >/dev/null 2>&1; then
			printf '%s\n' "$cache/root"
			return 0
		fi
	done
	return 1
}
found && exit 0

command -v apt-get >/dev/null 2>&1 || { echo "no apt-get" >&2; exit 1; }
command -v dpkg-deb >/dev/null 2>&1 || { echo "no dpkg-deb" >&2; exit 1; }
# The package leaves modules.dep to its postinst: depmod writes it here.
depmod=$(command -v depmod || ls /usr/sbin/depmod /sbin/depmod 2>/dev/null | head -n 1 || true)
if [ -z "$depmod" ]; then
	echo "no depmod to write modules.dep (apt-get install kmod)" >&2
	exit 1
fi

# The metapackage depends on the versioned image package, e.g.
# linux-image-6.1.0-56-cloud-amd64.
cloud_pkg() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: *\(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1
}
pkg=$(cloud_pkg)
if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
	# No package lists yet on a fresh machine.
	apt-get update -qq >/dev/null 2>&1 || true
	pkg=$(cloud_pkg)
fi
if [ -z "$pkg" ]; then
	echo "apt-cache knows no linux-image-cloud-amd64 (run apt-get update?)" >&2
	exit 1
fi

tmp=$(mktemp -d "$cache/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && apt-get download "$pkg" >/dev/null 2>"$tmp/err"); then
	echo "apt-get download $pkg failed: $(tail -n 1 "$tmp/err")" >&2
	exit 1
fi
dpkg-deb -x "$tmp"/*.deb "$tmp/root"
for d in "$tmp"/root/lib/modules/*/; do
	v=$(basename "$d")
	"$depmod" -b "$tmp/root" "$v" 2>"$tmp/err" || {
		echo "depmod $v failed: $(tail -n 1 "$tmp/err")" >&2
		exit 1
	}
done
rm -rf "$cache/root"
mv "$tmp/root" "$cache/root"
found && exit 0
echo "$pkg has no boot/vmlinuz-* and lib/modules/*/modules.dep" >&2
exit 1
