#!/bin/sh
# Install what is needed, build bootvm, and boot the demo VM: a real Linux with
# a busybox shell on the console. Ctrl-A x leaves it; so does `exit` (poweroff).
#
# On hardware-backed KVM (kvm_intel or kvm_amd loaded) it boots Debian's stock
# cloud kernel, unpacked (not installed) into ~/.cache/bootvm, with an
# initramfs carrying its virtio modules. Elsewhere a stock kernel cannot boot,
# so it boots the patched test kernel from ../shared/test-kernel/ (see
# scripts/find-test-kernel.sh) instead.
#
# Extra arguments go to `bootvm run` (e.g. --cpus 2 --memory 1G).
set -eu
cd "$(dirname "$0")/.."

scripts/deps.sh
if [ -f build/build.ninja ]; then
	meson setup --reconfigure build >/dev/null
else
	meson setup build >/dev/null
fi
ninja -C build >/dev/null
bootvm=build/src/bootvm

cache=${BOOTVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bootvm}
mkdir -p "$cache"
initrd=$cache/demo-initrd.cpio

if [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; then
	root=$(scripts/fetch-cloud-kernel.sh)
	kernel=$(ls "$root"/boot/vmlinuz-* | tail -n 1)
	modules=$root/lib/modules/${kernel##*/vmlinuz-}
	"$bootvm" initramfs -o "$initrd" --compress gzip --busybox /bin/busybox \
		--modules-from "$modules" \
		--module virtio_pci --module virtio_blk --module virtio_net
	append="console=ttyS0 reboot=a panic=-1 quiet"
	echo "demo: booting Debian's cloud kernel ${kernel##*/} (Ctrl-A x quits)" >&2
else
	if ! kernel=$(scripts/find-test-kernel.sh 2>&1); then
		echo "demo: KVM here is not hardware-backed (no kvm_intel/kvm_amd), so a stock kernel cannot boot, and the test kernel is missing: $kernel" >&2
		exit 1
	fi
	# Unpacking is emulated here too: an uncompressed archive boots fastest.
	"$bootvm" initramfs -o "$initrd" --compress none --busybox /bin/busybox
	append="console=ttyS0 reboot=a panic=-1 clearcpuid=cx16,xsave,popcnt,smap"
	echo "demo: KVM here is not hardware-backed (no kvm_intel/kvm_amd), so a stock kernel cannot boot; booting the test kernel $kernel instead, which takes about a minute here (Ctrl-A x quits)" >&2
fi

exec "$bootvm" run --kernel "$kernel" --initrd "$initrd" --append "$append" "$@"
