#!/bin/sh
# Install dependencies, build, and run the whole test suite:
#   unit and test-guest tests under ASan+UBSan, then unit + test-guest + real-Linux tests.
# Ends with one line "N passed, N failed, N skipped"; exits non-zero on failure.
set -eu
cd "$(dirname "$0")/.."

scripts/deps.sh

setup() {	# setup DIR [meson options...]
	dir=$1; shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir"
}

setup build
setup build-asan -Db_sanitize=address,undefined -Db_lundef=false

# Results are counted from the logs below, so a failing run does not stop the others.
meson test -C build-asan --suite unit --suite guest --print-errorlogs --logbase asan || true
meson test -C build --suite unit --suite guest --print-errorlogs --logbase fast || true
# Real-Linux boots take minutes here; alone, so nothing competes for the two cores.
meson test -C build --suite linux --print-errorlogs --logbase linux --num-processes 1 || true

exec python3 scripts/test-summary.py \
	build-asan/meson-logs/asan.json build/meson-logs/fast.json build/meson-logs/linux.json
