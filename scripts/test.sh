#!/bin/sh
# Install dependencies, build, and run the whole test suite:
#   unit and test-guest tests under ASan+UBSan, the libFuzzer targets for a fixed budget
#   (clang, ASan+UBSan), then unit + test-guest + real-Linux tests.
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
(CC=clang; export CC; setup build-fuzz -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined -Db_lundef=false)

# Results are counted from the logs below, so a failing run does not stop the others.
meson test -C build-asan --suite unit --suite guest --print-errorlogs --logbase asan || true
meson test -C build --suite unit --suite guest --print-errorlogs --logbase fast || true
# The guest-facing parsers under the fuzzer, a fixed time each (fuzz/meson.build).
meson test -C build-fuzz --suite fuzz --print-errorlogs --logbase fuzz --num-processes 1 || true
# Real-Linux boots take minutes here; alone, so nothing competes for the two cores.
meson test -C build --suite linux --print-errorlogs --logbase linux --num-processes 1 || true

exec python3 scripts/test-summary.py \
	build-asan/meson-logs/asan.json build/meson-logs/fast.json build-fuzz/meson-logs/fuzz.json \
	build/meson-logs/linux.json
