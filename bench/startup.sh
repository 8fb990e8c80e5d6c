#!/bin/sh
# Start-up benchmark (docs/PERFORMANCE.md): exec -> guest output -> exit of the
# hello test guest, bootvm against QEMU -M microvm (qboot) and against two bare
# KVM programs (one boots the same hello.elf, one is the 20-byte floor), all in
# one hyperfine run; bootvm's memory overhead; the cost of
# host-side kernel decompression. Prints a markdown report on stdout.
#
# Usage: bench/startup.sh [RUNS]       (hyperfine runs per command, default 100)
# Raw results stay in a temporary directory, named at the end (on stderr).
# Exits non-zero only if a measurement fails, not if a target is missed.
set -eu
cd "$(dirname "$0")/.."
runs=${1:-100}
case $runs in '' | *[!0-9]*) echo "usage: bench/startup.sh [RUNS]" >&2; exit 2 ;; esac

scripts/deps.sh --bench
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

out=$(mktemp -d "${TMPDIR:-/tmp}/bootvm-bench-XXXXXX")
g=build/tests/guest
bootvm=build/src/bootvm
bare=build/bench/bench-bare
mem_mib=512
mem=${mem_mib}M
# The same command line for every guest run: "qemu-exit" makes hello write
# QEMU's isa-debug-exit port after its line (QEMU then exits with status 1;
# bootvm ignores the write and the guest goes on to its ACPI poweroff).
append="console=ttyS0 qemu-exit"
# Debian's QEMU; qboot.rom is microvm's default firmware (bios-microvm.bin is
# a link to it), named here to be explicit. qboot cannot enter the test
# guests' bzImages (it enters a bzImage in 32-bit mode), so QEMU boots the PVH
# ELF. -cpu host is refused on this machine's KVM (MSR 0x10a).
qemu="qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off,isa-serial=on
 -bios /usr/share/qemu/qboot.rom -enable-kvm -cpu qemu64,-cx16,+xsaveerptr -m $mem
 -nodefaults -no-user-config -nographic -serial stdio -device isa-debug-exit,iobase=0x501"

fail() {
	echo "bench: $*" >&2
	echo "bench: raw results in $out" >&2
	exit 1
}

# check NAME STATUS ENTRY COMMAND...: one run must exit with STATUS and print
# the hello line (and entry=ENTRY, if given): a broken command must not look fast.
check() {
	name=$1 want=$2 entry=$3
	shift 3
	st=0
	"$@" </dev/null >"$out/check.out" 2>"$out/check.err" || st=$?
	if [ "$st" -ne "$want" ] || ! grep -q "hello from" "$out/check.out" ||
		{ [ -n "$entry" ] && ! grep -q "^entry=$entry" "$out/check.out"; }; then
		cat "$out/check.out" "$out/check.err" >&2
		fail "$name: exit status $st (want $want), or not the expected output"
	fi
}
check bare 0 "" $bare
check bare-pvh 0 pvh $bare $g/hello.elf $mem_mib "$append"
check bootvm-pvh 0 pvh $bootvm run -k $g/hello.elf -m $mem -a "$append"
check bootvm-bzimage 0 linux64 $bootvm run -k $g/hello.bzImage -m $mem -a "$append"
# shellcheck disable=SC2086
check qemu-microvm 1 pvh $qemu -kernel $g/hello.elf -append "$append"

# 1. Wall time. -N: no shell; hyperfine sends every command's output to
# /dev/null and gives it /dev/null as stdin. -i because QEMU's debug exit is
# status 1: the exit codes are checked from the JSON afterwards.
hyperfine -N --output=null --warmup 5 --runs "$runs" -i --style none --export-json "$out/startup.json" \
	-n bare "$bare" \
	-n bare-pvh "$bare $g/hello.elf $mem_mib '$append'" \
	-n bootvm-pvh "$bootvm run -k $g/hello.elf -m $mem -a '$append'" \
	-n bootvm-bzimage "$bootvm run -k $g/hello.bzImage -m $mem -a '$append'" \
	-n qemu-microvm "$qemu -kernel $g/hello.elf -append '$append'" \
	>"$out/hyperfine.log" 2>&1 || fail "hyperfine failed: $(tail -n 3 "$out/hyperfine.log")"

# 2. The same boots, timed until the last process is gone: bootvm exits before
# the kernel has torn its VM down (a forked child holds the KVM descriptors and
# lets that run after bootvm's exit), the others tear down in their own exit.
python3 - "$out/teardown.json" 20 "$bare" "$bootvm" "$g" "$mem" "$append" "$qemu" <<'EOF' ||
import ctypes, json, os, subprocess, sys, time
out, n, bare, bootvm, g, mem, append, qemu = sys.argv[1:]
cmds = {
    "bare": [bare],
    "bare-pvh": [bare, g + "/hello.elf", mem.rstrip("M"), append],
    "bootvm-pvh": [bootvm, "run", "-k", g + "/hello.elf", "-m", mem, "-a", append],
    "qemu-microvm": qemu.split() + ["-kernel", g + "/hello.elf", "-append", append],
}
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(36, 1, 0, 0, 0) != 0:	# PR_SET_CHILD_SUBREAPER: orphans come to us
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
res = {name: {"exit": [], "gone": []} for name in cmds}
null = open(os.devnull, "r+b")
for i in range(int(n) + 2):		# 2 warm-up rounds
    for name, argv in cmds.items():
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=null, stdout=null, stderr=null)
        t_exit = None
        while True:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid == p.pid:
                t_exit = time.perf_counter()
                code = os.waitstatus_to_exitcode(status)
        t_gone = time.perf_counter()
        if code != (1 if name == "qemu-microvm" else 0):
            sys.exit(f"{name}: exit status {code}")
        if i >= 2:
            res[name]["exit"].append((t_exit - t0) * 1e3)
            res[name]["gone"].append((t_gone - t0) * 1e3)
json.dump(res, open(out, "w"))
EOF
	fail "the teardown timing failed"

# 3. Memory: bootvm's own figures, then peak RSS of bootvm and QEMU by the same
# method (GNU time's %M, KiB), same guest, same RAM size.
for _ in $(seq 10); do
	$bootvm run -k $g/hello.elf -m $mem -a "$append" --stats </dev/null 2>>"$out/stats" >/dev/null ||
		fail "bootvm --stats failed: $(tail -n 2 "$out/stats")"
done
for _ in $(seq 10); do
	/usr/bin/time -f "bootvm-pvh %M %x" -a -o "$out/rss" \
		$bootvm run -k $g/hello.elf -m $mem -a "$append" </dev/null >/dev/null 2>&1 || true
	# shellcheck disable=SC2086
	/usr/bin/time -f "qemu-microvm %M %x" -a -o "$out/rss" \
		$qemu -kernel $g/hello.elf -append "$append" </dev/null >/dev/null 2>&1 || true
done

# 4. Host-side decompression: setup_ms (vmm_run() to just before the vCPUs run)
# decompressing the bzImage payload on the host (the default; the ELF inside is
# then entered through PVH) against --no-host-decompress (the image's own
# 64-bit entry; for the hello variants the protected-mode part is the plain
# hello, so the guest's work is the same). -v logs the decompression time.
: >"$out/decomp"
decomp_run() {	# decomp_run LABEL KIND ENTRY BOOTVM-ARGS...
	label=$1 kind=$2 entry=$3
	shift 3
	$bootvm run -v --stats "$@" </dev/null >"$out/decomp.out" 2>"$out/decomp.err" || true
	if [ -n "$entry" ] && ! grep -q "^entry=$entry" "$out/decomp.out"; then
		cat "$out/decomp.out" "$out/decomp.err" >&2
		fail "$label ($kind): no entry=$entry in the guest output"
	fi
	grep -q "stats:" "$out/decomp.err" || fail "$label ($kind): no stats line: $(tail -n 2 "$out/decomp.err")"
	sed -n "s/^/$label $kind	/p" "$out/decomp.err" >>"$out/decomp"
}
for fmt in gzip lz4 zstd xz lzma; do
	k=$g/hello-$fmt.bzImage
	[ -f "$k" ] || { echo "bench: $k not built (no $fmt compressor?): skipped" >&2; continue; }
	for _ in $(seq 10); do
		decomp_run "hello-$fmt.bzImage" host pvh -k "$k" -m $mem
		decomp_run "hello-$fmt.bzImage" guest linux64 -k "$k" -m $mem --no-host-decompress
	done
done
# A real kernel: Debian's cloud vmlinuz. A stock kernel cannot run to the end
# here, so each boot is stopped with SIGTERM after 5 s: bootvm then prints its
# stats line, of which only setup_ms matters.
if root=$(scripts/fetch-cloud-kernel.sh 2>"$out/fetch.err"); then
	for vmlinuz in "$root"/boot/vmlinuz-*; do :; done
	for _ in $(seq 5); do
		for kind in host guest; do
			opt=""
			[ $kind = guest ] && opt=--no-host-decompress
			timeout -s TERM 5 $bootvm run -v --stats -k "$vmlinuz" -m $mem --console none \
				$opt </dev/null >/dev/null 2>"$out/decomp.err" || true
			grep -q "stats:" "$out/decomp.err" ||
				fail "cloud kernel ($kind): no stats line after SIGTERM: $(tail -n 2 "$out/decomp.err")"
			sed -n "s/^/${vmlinuz##*/} $kind	/p" "$out/decomp.err" >>"$out/decomp"
			sleep 1	# let the previous VM's teardown finish
		done
	done
	echo "Debian's ${vmlinuz##*/} ($(($(wc -c <"$vmlinuz") / 1024)) KiB)" >"$out/cloud"
else
	echo "not measured: scripts/fetch-cloud-kernel.sh failed: $(tail -n 1 "$out/fetch.err")" >"$out/cloud"
fi

# 5. The report.
python3 - "$out" "$runs" "$mem" <<'EOF' || fail "the analysis failed"
import json, os, platform, random, re, statistics as st, subprocess, sys
out, runs, mem = sys.argv[1], int(sys.argv[2]), sys.argv[3]
P = lambda name: os.path.join(out, name)
med = st.median

res = {r["command"]: r for r in json.load(open(P("startup.json")))["results"]}
want = {"bare": 0, "bare-pvh": 0, "bootvm-pvh": 0, "bootvm-bzimage": 0, "qemu-microvm": 1}
for name, code in want.items():
    bad = [c for c in res[name]["exit_codes"] if c != code]
    if bad:
        sys.exit(f"{name}: {len(bad)} of {len(res[name]['exit_codes'])} runs exited with "
                 f"{sorted(set(bad))}, not {code}")
t = {k: [x * 1e3 for x in v["times"]] for k, v in res.items()}
m = {k: med(v) for k, v in t.items()}

random.seed(1)
def ci(a, b):
    """95% bootstrap interval of median(t[a]) / median(t[b])."""
    r = sorted(med(random.choices(t[a], k=len(t[a]))) / med(random.choices(t[b], k=len(t[b])))
               for _ in range(2000))
    return r[50], r[1949]

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]

kvm = [x for x in ("kvm_intel", "kvm_amd", "kvm_pvm") if os.path.exists("/sys/module/" + x)]
qv = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
hv = subprocess.run(["hyperfine", "--version"], capture_output=True, text=True).stdout.strip()
print(f"Machine: {os.cpu_count()} CPUs, KVM module {'/'.join(kvm) or '?'}, Linux {platform.release()}; "
      f"{qv}; {hv}.\n")

print(f"### 1. Start-up: exec to exit of the hello guest ({runs} runs each, one hyperfine run)\n")
print("| Command | median ms | p10 ms | p90 ms | max ms | ÷ QEMU microvm (95% CI) | ÷ bare KVM, same guest (95% CI) | ÷ bare floor (95% CI) |")
print("|---|--:|--:|--:|--:|--:|--:|--:|")
label = {"bare": "bare floor (bench-bare: 20 bytes, real mode)",
         "bare-pvh": "bare KVM, same guest (bench-bare hello.elf)",
         "bootvm-pvh": "bootvm, hello.elf (PVH)",
         "bootvm-bzimage": "bootvm, hello.bzImage (64-bit protocol)",
         "qemu-microvm": "QEMU microvm + qboot, hello.elf (PVH)"}
for k in label:
    q, bp, b = ci(k, "qemu-microvm"), ci(k, "bare-pvh"), ci(k, "bare")
    print(f"| {label[k]} | {m[k]:.2f} | {pct(t[k], .1):.2f} | {pct(t[k], .9):.2f} | {max(t[k]):.2f} | "
          f"{m[k] / m['qemu-microvm']:.3f} ({q[0]:.3f}–{q[1]:.3f}) | "
          f"{m[k] / m['bare-pvh']:.2f} ({bp[0]:.2f}–{bp[1]:.2f}) | "
          f"{m[k] / m['bare']:.2f} ({b[0]:.2f}–{b[1]:.2f}) |")

td = json.load(open(P("teardown.json")))
n = len(td["bare"]["exit"])
print(f"\n### 2. Until the last process is gone (median of {n} runs each, interleaved)\n")
print("| Command | to its own exit, ms | until no process is left, ms | ÷ QEMU (no process left) | ÷ bare, same guest (no process left) |")
print("|---|--:|--:|--:|--:|")
g = {k: med(v["gone"]) for k, v in td.items()}
for k, v in td.items():
    print(f"| {label[k]} | {med(v['exit']):.2f} | {g[k]:.2f} | "
          f"{g[k] / g['qemu-microvm']:.3f} | {g[k] / g['bare-pvh']:.2f} |")

stats = [dict(f.split("=", 1) for f in l.split() if "=" in f) for l in open(P("stats")) if "stats:" in l]
if not stats or any(s["exit"] != "0" for s in stats):
    sys.exit("bootvm --stats: no stats line, or the guest did not power off")
sm = lambda key: med(float(s[key]) for s in stats)
rss = {}
for l in open(P("rss")):
    if l.startswith("Command "):        # GNU time's note of a non-zero status
        continue
    k, kib, code = l.split()
    if int(code) != want[k]:
        sys.exit(f"{k} under GNU time: exit status {code}")
    rss.setdefault(k, []).append(int(kib))
print(f"\n### 3. Memory (hello.elf, -m {mem})\n")
print(f"bootvm `--stats`, median of {len(stats)} runs: rss_kib {sm('rss_kib'):.0f}, "
      f"guest_touched_kib {sm('guest_touched_kib'):.0f}, **overhead_kib {sm('overhead_kib'):.0f}** "
      f"(min {min(int(s['overhead_kib']) for s in stats)}, max {max(int(s['overhead_kib']) for s in stats)}); "
      f"setup_ms {sm('setup_ms'):.2f} (vmm_run() to the first KVM_RUN), total_ms {sm('total_ms'):.2f} "
      f"(to the stats line), of which guest run and stop {med(float(s['total_ms']) - float(s['setup_ms']) for s in stats):.2f}.\n")
print(f"Peak RSS by GNU time `%M`, median of {len(rss['bootvm-pvh'])} runs each: "
      f"bootvm {med(rss['bootvm-pvh']):.0f} KiB, QEMU microvm {med(rss['qemu-microvm']):.0f} KiB "
      f"(bootvm ÷ QEMU = {med(rss['bootvm-pvh']) / med(rss['qemu-microvm']):.3f}).")

print("\n### Targets\n")
verdict = lambda ok: "PASS" if ok else "MISS"
print("| Target | bootvm hello.elf (PVH) | | bootvm hello.bzImage | |")
print("|---|--:|---|--:|---|")
for name, f, lim, fmt in [
        ("median wall time ≤ 0.2 × QEMU microvm's", lambda k: m[k] / m["qemu-microvm"], 0.2, "{:.3f}×"),
        ("median wall time ≤ 2 × bare KVM's, same guest (bench-bare hello.elf)", lambda k: m[k] / m["bare-pvh"], 2.0, "{:.2f}×"),
        ("(for reference) ≤ 2 × the bare floor's (bench-bare)", lambda k: m[k] / m["bare"], 2.0, "{:.2f}×")]:
    a, b = f("bootvm-pvh"), f("bootvm-bzimage")
    print(f"| {name} | {fmt.format(a)} | {verdict(a <= lim)} | {fmt.format(b)} | {verdict(b <= lim)} |")
ov = sm("overhead_kib")
print(f"| overhead (VmRSS − guest RAM touched) ≤ 2048 KiB | {ov:.0f} KiB | {verdict(ov <= 2048)} | | |")

d = {}
for l in open(P("decomp")):
    key, line = l.rstrip("\n").split("\t", 1)
    name, kind = key.rsplit(" ", 1)
    e = d.setdefault(name, {}).setdefault(kind, {"setup": [], "dec": []})
    if "stats:" in line:
        e["setup"].append(float(re.search(r"setup_ms=([0-9.]+)", line).group(1)))
    mm = re.search(r"decompressed on host \(([0-9.]+ \w+) in ([0-9.]+) ms\)", line)
    if mm:
        e["dec"].append(float(mm.group(2)))
        e["size"] = mm.group(1)
print("\n### 4. Host-side decompression: bootvm's setup_ms with it and without it\n")
print(f"Cloud kernel: {open(P('cloud')).read().strip()}\n")
print("| Kernel | runs | setup ms, host-side (default) | of which decompression ms (-v) | setup ms, --no-host-decompress | difference ms |")
print("|---|--:|--:|--:|--:|--:|")
for name, v in d.items():
    h, gg = v.get("host"), v.get("guest")
    if not h or not gg or not h["setup"] or not gg["setup"]:
        continue
    dec = f"{med(h['dec']):.1f} ({h['size']})" if h["dec"] else "?"
    print(f"| {name} | {len(h['setup'])} | {med(h['setup']):.2f} | {dec} | {med(gg['setup']):.2f} | "
          f"{med(h['setup']) - med(gg['setup']):+.2f} |")
EOF
echo "bench: raw results in $out" >&2
