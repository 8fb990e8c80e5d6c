#!/bin/sh
# Start-up benchmark: exec -> guest output -> exit, for the hello test guest,
# bootvm against QEMU -M microvm (qboot firmware) and against a bare KVM
# program, in one hyperfine run; then bootvm's memory overhead and the cost of
# host-side kernel decompression. Prints a markdown report (docs/PERFORMANCE.md).
#
# Usage: bench/startup.sh [RUNS]      (default 60 runs per command)
# Exits non-zero only if a measurement fails, not if a target is missed.
set -eu
cd "$(dirname "$0")/.."
runs=${1:-60}

scripts/deps.sh --bench
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

out=$(mktemp -d "${TMPDIR:-/tmp}/bootvm-bench-XXXXXX")
trap 'rm -rf "$out"' EXIT
g=build/tests/guest
bootvm=build/src/bootvm
mem=512M
# Debian's QEMU: microvm's default firmware is bios-microvm.bin, i.e. qboot.
# qboot enters a bzImage in 32-bit mode, which the test guests lack, so both
# boot the same PVH ELF. -cpu host is refused here (MSR 0x10a); qemu64 without
# cx16 is what the test kernel's README uses.
qemu="qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off,isa-serial=on -enable-kvm
 -cpu qemu64,-cx16,+xsaveerptr -m $mem -nodefaults -no-user-config -nographic
 -serial stdio -device isa-debug-exit,iobase=0x501"

# Each must print the hello line: a broken command must not look fast.
check() {	# check NAME COMMAND... (exit status 0 or 1 accepted: QEMU's debug exit is 1)
	name=$1; shift
	st=0
	"$@" </dev/null >"$out/check" 2>&1 || st=$?
	if [ "$st" -gt 1 ] || ! grep -q "hello from" "$out/check"; then
		echo "bench: $name does not boot the hello guest (status $st):" >&2
		tail -n 5 "$out/check" >&2
		exit 1
	fi
}
check bare build/bench/bench-bare
check bootvm-pvh $bootvm run -k $g/hello.elf -m $mem
check bootvm-bzimage $bootvm run -k $g/hello.bzImage -m $mem
# shellcheck disable=SC2086
check qemu $qemu -kernel $g/hello.elf -append "console=ttyS0 qemu-exit"

hyperfine -N --warmup 5 --runs "$runs" -i --style none --export-json "$out/time.json" \
	-n bare "build/bench/bench-bare" \
	-n bootvm-pvh "$bootvm run -k $g/hello.elf -m $mem" \
	-n bootvm-bzimage "$bootvm run -k $g/hello.bzImage -m $mem" \
	-n qemu-microvm "$qemu -kernel $g/hello.elf -append 'console=ttyS0 qemu-exit'" \
	>/dev/null

# bootvm's own figures: setup (exec of main to first KVM_RUN) and overhead.
for i in $(seq 10); do
	$bootvm run -k $g/hello.elf -m $mem --console none --stats 2>>"$out/stats"
done
# Peak RSS of one boot each, measured the same way for both.
for i in $(seq 5); do
	/usr/bin/time -f "bootvm %M" -a -o "$out/rss" $bootvm run -k $g/hello.elf -m $mem \
		--console none </dev/null
	# shellcheck disable=SC2086
	/usr/bin/time -f "qemu %M" -a -o "$out/rss" $qemu -kernel $g/hello.elf \
		-append "console=ttyS0 qemu-exit" </dev/null >/dev/null || true
done

# Host-side decompression: setup_ms with it (default) and without.
for fmt in gzip lz4 zstd xz lzma; do
	k=$g/hello-$fmt.bzImage
	[ -f "$k" ] || continue
	for i in $(seq 10); do
		$bootvm run -k "$k" --console none --stats 2>&1 >/dev/null |
			sed -n "s/.*setup_ms=\([0-9.]*\).*/$fmt host \1/p" >>"$out/decomp"
		$bootvm run -k "$k" --console none --stats --no-host-decompress 2>&1 >/dev/null |
			sed -n "s/.*setup_ms=\([0-9.]*\).*/$fmt guest \1/p" >>"$out/decomp"
	done
done
# A real kernel: Debian's cloud vmlinuz (it cannot run here: the stats line
# comes when bootvm is stopped by SIGTERM, so only setup_ms counts).
if root=$(scripts/fetch-cloud-kernel.sh 2>"$out/fetch-err"); then
	vmlinuz=$(ls "$root"/boot/vmlinuz-* | tail -n 1)
	for i in $(seq 5); do
		timeout -s TERM 3 $bootvm run -k "$vmlinuz" -m 1G --console none --stats \
			2>&1 >/dev/null | sed -n "s/.*setup_ms=\([0-9.]*\).*/cloud host \1/p" >>"$out/decomp" || true
		timeout -s TERM 3 $bootvm run -k "$vmlinuz" -m 1G --console none --stats \
			--no-host-decompress 2>&1 >/dev/null |
			sed -n "s/.*setup_ms=\([0-9.]*\).*/cloud guest \1/p" >>"$out/decomp" || true
	done
	echo "${vmlinuz##*/}" >"$out/cloud-name"
else
	echo "cloud kernel not available: $(tail -n 1 "$out/fetch-err")" >"$out/cloud-name"
fi

python3 - "$out" "$runs" <<'EOF'
import json, os, statistics, sys
out, runs = sys.argv[1], sys.argv[2]
res = {r["command"]: r for r in json.load(open(os.path.join(out, "time.json")))["results"]}
med = {k: statistics.median(v["times"]) * 1000 for k, v in res.items()}
def q(k, p):
    t = sorted(res[k]["times"]); return t[min(len(t) - 1, int(p * len(t)))] * 1000
print(f"### Start-up: exec to exit of the hello guest ({runs} runs each, one hyperfine run)\n")
print("| Command | median ms | p10 ms | p90 ms | ÷ QEMU microvm | ÷ bare KVM |")
print("|---|---|---|---|---|---|")
for k in ("bare", "bootvm-pvh", "bootvm-bzimage", "qemu-microvm"):
    print(f"| {k} | {med[k]:.2f} | {q(k, .1):.2f} | {q(k, .9):.2f} | "
          f"{med[k] / med['qemu-microvm']:.3f} | {med[k] / med['bare']:.2f} |")
stats = [dict(f.split("=", 1) for f in l.split() if "=" in f)
         for l in open(os.path.join(out, "stats")) if "stats:" in l]
m = lambda key: statistics.median(float(s[key]) for s in stats)
print()
print(f"bootvm's own figures (median of {len(stats)} `--stats` runs): setup_ms {m('setup_ms'):.2f} "
      f"(exec of main to the first KVM_RUN), total_ms {m('total_ms'):.2f}, "
      f"rss_kib {m('rss_kib'):.0f}, guest_touched_kib {m('guest_touched_kib'):.0f}, "
      f"**overhead_kib {m('overhead_kib'):.0f}**.")
rss = {}
for l in open(os.path.join(out, "rss")):
    f = l.split()   # skip time's "Command exited with non-zero status" lines
    if len(f) == 2 and f[0] in ("bootvm", "qemu") and f[1].isdigit():
        rss.setdefault(f[0], []).append(int(f[1]))
if "qemu" in rss:
    print(f"Peak RSS by /usr/bin/time (median of {len(rss['bootvm'])}): bootvm "
          f"{statistics.median(rss['bootvm'])} KiB, QEMU microvm {statistics.median(rss['qemu'])} KiB "
          f"({statistics.median(rss['bootvm']) / statistics.median(rss['qemu']):.3f}x).")
print()
tgt = [("median ≤ 0.2× QEMU microvm (PVH)", med["bootvm-pvh"] / med["qemu-microvm"], 0.2),
       ("median ≤ 2× bare KVM (PVH)", med["bootvm-pvh"] / med["bare"], 2.0),
       ("overhead ≤ 2048 KiB", m("overhead_kib"), 2048)]
print("| Target | measured | |")
print("|---|---|---|")
for name, v, lim in tgt:
    print(f"| {name} | {v:.3f} | {'met' if v <= lim else 'MISSED'} |")
d = {}
p = os.path.join(out, "decomp")
if os.path.exists(p):
    for l in open(p):
        f, how, v = l.split(); d.setdefault(f, {}).setdefault(how, []).append(float(v))
    cloud = open(os.path.join(out, "cloud-name")).read().strip()
    print("\n### Host-side decompression: bootvm's setup_ms with and without it\n")
    print("| Kernel | setup ms, host-side (default) | setup ms, --no-host-decompress | difference ms |")
    print("|---|---|---|---|")
    for f, v in d.items():
        if "host" in v and "guest" in v:
            h, g = statistics.median(v["host"]), statistics.median(v["guest"])
            name = cloud if f == "cloud" else f"hello-{f}.bzImage"
            print(f"| {name} | {h:.2f} | {g:.2f} | {h - g:+.2f} |")
    if "cloud" not in d:
        print(f"\n({cloud})")
EOF
