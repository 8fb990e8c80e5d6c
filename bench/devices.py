#!/usr/bin/env python3
"""What PCI + virtio-blk + virtio-rng add to a real Linux boot (issue 7).

Boots the shared test kernel (scripts/find-test-kernel.sh) with the same
uncompressed busybox initramfs, --cpus 2 --memory 256M, alternately
  base     no devices
  devices  --disk IMG --rng (a 64 MiB raw image: Linux probes it, reads its
           partition table and never mounts it)
and times, from the exec of bootvm, the console line "Run /init as init
process" (the kernel is done with its initcalls, device probes included);
the guest's own printk timestamp of that line is reported too (it leaves out
bootvm's set-up and the host's scheduling before the guest clock starts).
/init powers off at once. Firecracker holds PCI to <= 5% more boot time.

Usage: bench/devices.py [RUNS]     (boots per configuration, default 3;
                                   BENCH_CPUS=N for --cpus N, default 2)
Prints a markdown report (the lines docs/PERFORMANCE.md takes) on stdout.
Where KVM is software (the build machines), a boot is ~30-45 s and the
machine's load moves it by several seconds: compare the medians, and look at
the spread.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOTVM = os.environ.get("BOOTVM", os.path.join(ROOT, "build", "src", "bootvm"))
# The test kernel's command line; no RCU stall reports (their NMI hangs the
# guest here when a loaded machine slows the boot down).
CMDLINE = ("console=ttyS0 reboot=a panic=-1 clearcpuid=cx16,xsave,popcnt,smap "
           "rcupdate.rcu_cpu_stall_suppress=1")
MARKER = "Run /init as init process"
INIT = "#!/bin/sh\nexec poweroff -f\n"
CPUS = os.environ.get("BENCH_CPUS", "2")


def die(msg):
    print(f"bench/devices.py: {msg}", file=sys.stderr)
    sys.exit(1)


def timed_boot(args, timeout=900):
    """(host seconds to MARKER, guest printk seconds of it, exit status)."""
    t0 = time.monotonic()
    p = subprocess.Popen([BOOTVM, "run", *args], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    t_host = t_guest = None
    tail = []
    for raw in p.stdout:
        line = raw.decode(errors="replace")
        tail = (tail + [line])[-20:]
        if t_host is None and MARKER in line:
            t_host = time.monotonic() - t0
            m = re.match(r"\[\s*(\d+\.\d+)\]", line)
            t_guest = float(m.group(1)) if m else None
    try:
        status = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        status = p.wait()
    if status != 0 or t_host is None or t_guest is None:
        die(f"boot {' '.join(args)} ended with {status} before/after '{MARKER}':\n"
            + "".join(tail))
    return t_host, t_guest


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if runs < 1:
        die("usage: bench/devices.py [RUNS]")
    if os.path.exists(os.path.join(ROOT, "build", "build.ninja")) and "BOOTVM" not in os.environ:
        subprocess.run(["ninja", "-C", os.path.join(ROOT, "build")], check=True,
                       stdout=subprocess.DEVNULL)
    k = subprocess.run([os.path.join(ROOT, "scripts", "find-test-kernel.sh")],
                       capture_output=True, text=True)
    if k.returncode:
        die(k.stderr.strip())
    kernel = k.stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bootvm-bench-dev-") as tmp:
        init = os.path.join(tmp, "init")
        with open(init, "w") as f:
            f.write(INIT)
        os.chmod(init, 0o755)
        initrd = os.path.join(tmp, "initrd.cpio")
        subprocess.run([BOOTVM, "initramfs", "-o", initrd, "--compress", "none",
                        "--busybox", "/bin/busybox", "--add", f"{init}:/init"], check=True)
        img = os.path.join(tmp, "disk.img")
        with open(img, "wb") as f:
            f.truncate(64 << 20)
        common = ["--kernel", kernel, "--initrd", initrd, "--cpus", CPUS, "--memory", "256M",
                  "--append", CMDLINE]
        configs = {"base": common, "devices": common + ["--disk", img, "--rng"]}
        res = {name: [] for name in configs}
        for i in range(runs):
            for name, args in configs.items():
                res[name].append(timed_boot(args))
                h, g = res[name][-1]
                print(f"run {i + 1} {name}: host {h:.2f} s, guest {g:.2f} s",
                      file=sys.stderr)

    def med(name, j):
        return statistics.median(r[j] for r in res[name])

    def spread(name, j):
        v = [r[j] for r in res[name]]
        return f"{min(v):.2f}-{max(v):.2f}"
    print(f"Time to `{MARKER}`, test kernel, `--cpus {CPUS} --memory 256M`, uncompressed "
          f"initramfs, {runs} boots each, alternating (median, min-max):\n")
    print("| configuration | host: exec to marker (s) | guest printk time (s) |")
    print("|---|---|---|")
    for name in configs:
        print(f"| {name} | {med(name, 0):.2f} ({spread(name, 0)}) "
              f"| {med(name, 1):.2f} ({spread(name, 1)}) |")
    rh = med("devices", 0) / med("base", 0)
    rg = med("devices", 1) / med("base", 1)
    print(f"\nPCI + virtio-blk + virtio-rng: host {rh:.3f}x, guest {rg:.3f}x "
          f"({(rh - 1) * 100:+.1f}% / {(rg - 1) * 100:+.1f}%; Firecracker's bound +5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
