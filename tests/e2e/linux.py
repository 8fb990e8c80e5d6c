#!/usr/bin/env python3
"""Real Linux under bootvm, as TAP.

Here (software KVM) it boots the patched Linux 6.1 from ../shared/test-kernel
twice -- each boot takes about a minute on these machines, so each checks a
lot:
  1. --cpus 2 --memory 256M with a busybox initramfs from `bootvm initramfs`
     whose --init-run script reports, using shell builtins only, the CPUs
     online, MemTotal, /proc/cmdline and a file from the initrd, then powers
     off: bootvm must exit 0. The kernel log must show both CPUs, x2APIC,
     ACPI S5 support and no ACPI/APIC/e820 complaints.
  2. no initrd: the kernel panics (no root fs) and, with panic=-1 reboot=a,
     resets through the ACPI reset register: bootvm must exit 5 (panic).
Where KVM is hardware-backed (kvm_intel/kvm_amd loaded) it also boots Debian's
stock cloud kernel with its virtio modules from the initramfs, through host-side
and in-guest decompression, and compares the time to init. Here those tests
SKIP with the reason.

Environment: BOOTVM (the binary), SOURCE_ROOT, BOOTVM_TEST_KERNEL (optional
override of the test kernel path), BOOTVM_CACHE (download cache).
Run alone: meson test -C build --suite linux -v
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from tap import plan, skip, tap

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.dirname(os.path.dirname(HERE)))
BOOTVM = os.environ.get("BOOTVM", os.path.join(SOURCE_ROOT, "build", "src", "bootvm"))


def find_test_kernel():
    """scripts/find-test-kernel.sh's answer: (path, None) or (None, why)."""
    p = subprocess.run([os.path.join(SOURCE_ROOT, "scripts", "find-test-kernel.sh")],
                       capture_output=True, text=True)
    if p.returncode:
        return None, (p.stderr.strip().splitlines() or ["not found"])[-1]
    return p.stdout.strip(), None


TEST_KERNEL, TEST_KERNEL_WHY = find_test_kernel()
BUSYBOX = "/bin/busybox"
TEST_CMDLINE = "console=ttyS0 reboot=a panic=-1 clearcpuid=cx16,xsave,popcnt,smap"
BOOT_TIMEOUT = 900  # seconds; a boot takes ~60 s here, well under 1 s on hardware

# What Linux prints when it dislikes the machine it was given.
COMPLAINTS = re.compile(
    r"ACPI (BIOS )?(Error|Warning)|\[Firmware (Bug|Warn)\]|"
    r"APIC.*(error|bogus|mismatch|invalid|disabled)|"
    r"e820.*(overlap|invalid|bad)|IOAPIC.*(invalid|bogus)|"
    r"WARNING:|BUG:|Call Trace|nobody cared|Kernel panic", re.IGNORECASE)

def hardware_kvm():
    return any(os.path.isdir(f"/sys/module/{m}") for m in ("kvm_intel", "kvm_amd"))


def boot(args, timeout=BOOT_TIMEOUT):
    """Run bootvm; returns (exit status, console output, stderr, seconds)."""
    t0 = time.monotonic()
    p = subprocess.run([BOOTVM, "run", *args], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    return (p.returncode, p.stdout.decode(errors="replace"),
            p.stderr.decode(errors="replace"), time.monotonic() - t0)


def checks(out):
    """CHECK key=value lines printed by the init script."""
    return dict(m.groups() for m in re.finditer(r"^CHECK (\w+)=(.*?)\r?$", out, re.M))


# Shell builtins only: each fork+exec costs 1-2 s in the emulated guest kernel.
INIT_SCRIPT = r"""
read online < /sys/devices/system/cpu/online; echo "CHECK cpus_online=$online"
n=0; for c in /sys/devices/system/cpu/cpu[0-9]*; do n=$((n+1)); done; echo "CHECK cpu_dirs=$n"
while read k v u; do [ "$k" = MemTotal: ] && echo "CHECK memtotal_kb=$v"; done < /proc/meminfo
read cmdline < /proc/cmdline; echo "CHECK cmdline=$cmdline"
read marker < /etc/bootvm-marker; echo "CHECK marker=$marker"
n=0; while read line; do n=$((n+1)); done < /etc/bootvm-lines; echo "CHECK lines=$n"
"""


def test_kernel_boot(tmp):
    marker = "initrd-marker-%d" % os.getpid()
    with open(os.path.join(tmp, "marker"), "w") as f:
        f.write(marker + "\n")
    with open(os.path.join(tmp, "lines"), "w") as f:
        f.write("".join(f"line {i}\n" for i in range(1000)))
    initrd = os.path.join(tmp, "initrd.cpio")
    # Uncompressed: gzip unpacking is emulated too and doubles the boot time here.
    p = subprocess.run([BOOTVM, "initramfs", "-o", initrd, "--compress", "none",
                        "--busybox", BUSYBOX, "--init-run", INIT_SCRIPT,
                        "--add", os.path.join(tmp, "marker") + ":/etc/bootvm-marker",
                        "--add", os.path.join(tmp, "lines") + ":/etc/bootvm-lines"],
                       capture_output=True, text=True)
    if not tap(p.returncode == 0, "bootvm initramfs builds the test initramfs", p.stderr):
        return
    cmdline = TEST_CMDLINE + ' bootvm.test="quoted words" x=1'
    status, out, err, secs = boot(["--kernel", TEST_KERNEL, "--initrd", initrd,
                                   "--cpus", "2", "--memory", "256M", "--append", cmdline])
    print(f"# test kernel boot took {secs:.1f} s")
    log = out + err
    c = checks(out)
    tap(status == 0, "test kernel powers off: bootvm exits 0", f"status {status}\n{log}")
    tap(c.get("cpus_online") == "0-1" and c.get("cpu_dirs") == "2",
        "both CPUs online", str(c))
    mem = int(c.get("memtotal_kb", "0"))
    tap(200 * 1024 < mem <= 256 * 1024, "MemTotal matches --memory 256M", str(c))
    tap(c.get("cmdline") == cmdline, "/proc/cmdline is the --append text byte for byte",
        f"{c.get('cmdline')!r} != {cmdline!r}")
    tap(c.get("marker") == marker and c.get("lines") == "1000",
        "the initramfs contents arrived intact", str(c))
    tap("bootvm-init: exit status 0" in out, "the init script ran to the end", out[-2000:])
    tap(re.search(r"smp: Brought up 1 node, 2 CPUs", out) is not None,
        "Linux brought up 2 CPUs", out[-3000:])
    tap("x2apic enabled" in out, "x2APIC enabled")
    tap(re.search(r"ACPI: PM: \(supports S0 S5\)", out) is not None,
        "Linux sees ACPI S5 support")
    tap(re.search(r"ACPI: RSDP 0x[0-9A-F]+ 000024 \(v02 BOOTVM", out) is not None,
        "Linux found bootvm's RSDP")
    bad = [l for l in out.splitlines() if COMPLAINTS.search(l)]
    tap(not bad, "no ACPI, APIC or e820 complaints in the kernel log", "\n".join(bad))


def test_kernel_panic():
    status, out, err, secs = boot(["--kernel", TEST_KERNEL, "--memory", "128M",
                                   "--append", TEST_CMDLINE])
    print(f"# panic boot took {secs:.1f} s")
    tap("Kernel panic - not syncing" in out, "no root fs: the kernel panics", out[-2000:])
    tap(status == 5, "panic=-1 reboot=a: bootvm exits 5 (panic)", f"status {status}\n{err}")


def main():
    print("TAP version 13")
    if not os.access(BOOTVM, os.X_OK):
        print(f"Bail out! no bootvm binary at {BOOTVM}")
        return 1
    if not TEST_KERNEL:
        skip("test kernel boots", TEST_KERNEL_WHY)
    elif not os.path.exists(BUSYBOX):
        skip("test kernel boots", f"{BUSYBOX} missing (install busybox-static)")
    else:
        with tempfile.TemporaryDirectory(prefix="bootvm-linux-") as tmp:
            test_kernel_boot(tmp)
        test_kernel_panic()

    if hardware_kvm():
        import stock_kernel  # only where it can run
        stock_kernel.run(tap, skip, boot)
    else:
        why = ("KVM here is not hardware-backed (no kvm_intel/kvm_amd): "
               "stock distro kernels cannot boot on it")
        skip("Debian cloud kernel boots with its virtio modules from the initramfs", why)
        skip("host-side vs in-guest decompression of the cloud vmlinuz (time to init)", why)
    plan()
    return 0


if __name__ == "__main__":
    sys.exit(main())
