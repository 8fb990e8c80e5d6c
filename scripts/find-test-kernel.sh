#!/bin/sh
# Print the path of the shared test kernel (a patched Linux 6.1 vmlinux that
# boots on the build machines' software KVM): $BOOTVM_TEST_KERNEL, else
# shared/test-kernel/vmlinux beside this checkout or beside any directory
# above it (a clone may sit deeper than ../). Exits 1, saying where it looked.
set -eu
if [ -n "${BOOTVM_TEST_KERNEL:-}" ]; then
	[ -f "$BOOTVM_TEST_KERNEL" ] && { printf '%s\n' "$BOOTVM_TEST_KERNEL"; exit 0; }
	echo "no test kernel at \$BOOTVM_TEST_KERNEL=$BOOTVM_TEST_KERNEL" >&2
	exit 1
fi
dir=$(cd "$(dirname "$0")/.." && pwd)
while [ "$dir" != / ]; do
	dir=$(dirname "$dir")
	k=${dir%/}/shared/test-kernel/vmlinux
	[ -f "$k" ] && { printf '%s\n' "$k"; exit 0; }
done
echo "no shared/test-kernel/vmlinux beside $(cd "$(dirname "$0")/.." && pwd) or any directory above it (set BOOTVM_TEST_KERNEL)" >&2
exit 1
