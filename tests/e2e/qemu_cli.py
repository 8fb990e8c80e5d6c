#!/usr/bin/env python3
"""Real Linux booted by bootvm in QEMU's place, as TAP: the tutorials' QEMU
commands, run through a symlink named qemu-system-x86_64, with the shared
test kernel's required command line added. Two boots:
  1. the classic direct boot: -enable-kvm -m 256M -kernel bzImage -initrd
     initrd.cpio -append "console=ttyS0 ..." -nographic -no-reboot (-smp 1);
     /init reports the CPUs, MemTotal and /proc/cmdline and powers off:
     bootvm exits 0, as QEMU does.
  2. the microVM tutorial's: -M microvm,... -cpu host -smp 2 -nodefaults
     -no-user-config -serial mon:stdio, acpi=off reboot=k, the initrd plus a
     disk as -drive id=...,if=none with -device virtio-blk-pci (read-only)
     and a second as -drive if=virtio, -netdev user with -device e1000. With
     no ACPI the kernel finds both CPUs and the IOAPIC in the MP table, the
     PCI devices by probing; /init checks both disks' contents, eth0 and the
     interrupts, then reboots (reboot=k: the i8042 reset) and bootvm exits 3
     (a reset ends bootvm, as -no-reboot ends QEMU).
Environment: BOOTVM, SOURCE_ROOT, BOOTVM_TEST_KERNEL (as linux.py).
Run alone, holding the shared lock:
  flock /work/wt/linux.lock meson test -C build qemu_cli -v
"""
import os
import re
import subprocess
import sys
import tempfile
import time

from linux import BUSYBOX, checks, find_test_kernel
from tap import plan, skip, tap

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.dirname(os.path.dirname(HERE)))
BOOTVM = os.environ.get("BOOTVM", os.path.join(SOURCE_ROOT, "build", "src", "bootvm"))
# The test kernel's required command line (../shared/test-kernel/README.md).
REQUIRED = "clearcpuid=cx16,xsave,popcnt,smap rcupdate.rcu_cpu_stall_suppress=1"
BOOT_TIMEOUT = 900
COMPLAINTS = re.compile(r"\[Firmware (Bug|Warn)\]|APIC.*(error|bogus|mismatch|invalid)|"
                        r"IOAPIC.*(invalid|bogus)|can't find IRQ|WARNING:|BUG:|Call Trace|"
                        r"Kernel panic|not listed by BIOS", re.IGNORECASE)


def qemu(qemu_bin, args):
    t0 = time.monotonic()
    try:
        p = subprocess.run([qemu_bin, *args], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=BOOT_TIMEOUT)
        status, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        status, out, err = "timeout", e.stdout or b"", e.stderr or b""
    secs = time.monotonic() - t0
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    return status, out, err, secs, (f"$ qemu-system-x86_64 {' '.join(args)}\nstatus {status} "
                                    f"after {secs:.1f} s\n--- console ---\n{out[-6000:]}\n"
                                    f"--- stderr ---\n{err}")


def initramfs(tmp, name, script):
    path = os.path.join(tmp, name)
    p = subprocess.run([BOOTVM, "initramfs", "-o", path, "--compress", "none",
                        "--busybox", BUSYBOX, "--init-run", script], capture_output=True, text=True)
    return path if tap(p.returncode == 0, f"bootvm initramfs builds {name}", p.stderr) else None


# Shell builtins only: every fork+exec costs 1-2 s in the emulated guest kernel.
COMMON = r"""
read online < /sys/devices/system/cpu/online; echo "CHECK cpus_online=$online"
while read k v u; do [ "$k" = MemTotal: ] && echo "CHECK memtotal_kb=$v"; done < /proc/meminfo
read cmdline < /proc/cmdline; echo "CHECK cmdline=$cmdline"
"""

MICROVM = COMMON + r"""
read -n 15 m < /dev/vda; echo "CHECK vda=$m"
read -n 15 m < /dev/vdb; echo "CHECK vdb=$m"
read ro < /sys/block/vda/ro; echo "CHECK vda_ro=$ro"
read ro < /sys/block/vdb/ro; echo "CHECK vdb_ro=$ro"
[ -e /sys/class/net/eth0 ] && read drv < /sys/class/net/eth0/device/uevent
echo "CHECK eth0=$drv"
n=0; while read l; do case "$l" in *IO-APIC*ttyS0*) n=1;; esac; done < /proc/interrupts
echo "CHECK ioapic_serial=$n"
reboot -f
"""


def boot_tutorial(qemu_bin, kernel_dir, tmp):
    initrd = initramfs(tmp, "initrd.cpio", COMMON)
    if not initrd:
        return
    append = f"console=ttyS0 reboot=a panic=-1 {REQUIRED} tutorial=1"
    status, out, err, secs, desc = qemu(qemu_bin, [
        "-enable-kvm", "-m", "256M", "-smp", "1", "-kernel", os.path.join(kernel_dir, "bzImage"),
        "-initrd", initrd, "-append", append, "-nographic", "-no-reboot"])
    print(f"# tutorial boot took {secs:.1f} s")
    c = checks(out)
    tap(status == 0, "-kernel bzImage -initrd -append -nographic -no-reboot: /init runs and "
        "powers off, exit status 0", desc)
    tap(c.get("cmdline") == append, "/proc/cmdline is -append's text", str(c))
    mem = int(c.get("memtotal_kb", "0"))
    tap(200 * 1024 < mem <= 256 * 1024 and c.get("cpus_online") == "0",
        "-m 256M and -smp 1: MemTotal and the CPUs online", str(c))
    bad = [l for l in out.splitlines() if COMPLAINTS.search(l)]
    tap(not bad and not err.strip(), "no kernel complaints, nothing on stderr",
        "\n".join(bad) + "\n" + err)


def boot_microvm(qemu_bin, kernel_dir, tmp):
    initrd = initramfs(tmp, "initrd-microvm.cpio", MICROVM)
    if not initrd:
        return
    disks = []
    for name in ("root", "data"):
        path = os.path.join(tmp, f"{name}.img")
        with open(path, "wb") as f:
            f.write(f"disk-{name}-marker".ljust(15, "-")[:15].encode() + b"\n")
            f.truncate(4 << 20)
        disks.append(path)
    append = f"console=ttyS0 acpi=off reboot=k panic=-1 {REQUIRED}"
    status, out, err, secs, desc = qemu(qemu_bin, [
        "-M", "microvm,x-option-roms=off,isa-serial=on,rtc=off", "-enable-kvm", "-cpu", "host",
        "-m", "256M", "-smp", "2", "-nodefaults", "-no-user-config", "-nographic",
        "-serial", "mon:stdio", "-kernel", os.path.join(kernel_dir, "vmlinux"), "-initrd", initrd,
        "-append", append,
        "-drive", f"id=root,file={disks[0]},format=raw,if=none,readonly=on",
        "-device", "virtio-blk-pci,drive=root",
        "-drive", f"if=virtio,format=raw,file={disks[1]},cache=writeback",
        "-netdev", "user,id=n0", "-device", "e1000,netdev=n0",
        "-device", "virtio-rng-pci", "-no-reboot"])
    print(f"# microvm boot took {secs:.1f} s")
    c = checks(out)
    tap(status == 3, "-M microvm ... acpi=off reboot=k: /init runs, reboots through the i8042, "
        "bootvm exits 3 (a reset ends it, as -no-reboot ends QEMU)", desc)
    tap("found SMP MP-table" in out and c.get("cpus_online") == "0-1",
        "acpi=off: the kernel finds the MP table and brings up both CPUs", str(c) + "\n" + desc)
    tap(c.get("ioapic_serial") == "1", "acpi=off: the serial port's interrupt goes through the "
        "IOAPIC (the MP table's ISA routing)", desc)
    tap(c.get("vda") == "disk-root-marke" and c.get("vda_ro") == "1" and
        c.get("vdb") == "disk-data-marke" and c.get("vdb_ro") == "0",
        "-drive if=none + -device virtio-blk-pci is vda (read-only), -drive if=virtio vdb", str(c))
    tap(c.get("eth0") == "DRIVER=virtio_net",
        "-device e1000: eth0 is there, on virtio-net", str(c))
    warn = [l for l in err.splitlines() if "e1000" in l]
    tap(len(warn) == 1 and "the guest gets virtio-net instead" in warn[0],
        "bootvm says once that the guest gets virtio-net instead of e1000", err)
    bad = [l for l in out.splitlines() if COMPLAINTS.search(l)]
    tap(not bad, "no kernel complaints (IRQs, APIC, CPUs not listed)", "\n".join(bad))


def main():
    kernel, why = find_test_kernel()
    if not os.access(BOOTVM, os.X_OK):
        print("1..0 # SKIP no bootvm binary at " + BOOTVM)
        return 0
    if not kernel:
        print(f"1..0 # SKIP {why}")
        return 0
    if not os.access(BUSYBOX, os.X_OK):
        print(f"1..0 # SKIP no static busybox at {BUSYBOX} (Debian: busybox-static)")
        return 0
    kernel_dir = os.path.dirname(kernel)
    with tempfile.TemporaryDirectory(prefix="bootvm-e2e-qemu-") as tmp:
        qemu_bin = os.path.join(tmp, "qemu-system-x86_64")
        os.symlink(BOOTVM, qemu_bin)
        groups = sys.argv[1:] or ["tutorial", "microvm"]
        for g in ("tutorial", "microvm"):
            if g not in groups:
                continue
            if g == "tutorial" and not os.path.exists(os.path.join(kernel_dir, "bzImage")):
                skip("tutorial boot", f"no bzImage beside {kernel}")
                continue
            (boot_tutorial if g == "tutorial" else boot_microvm)(qemu_bin, kernel_dir, tmp)
    return 1 if plan() else 0


if __name__ == "__main__":
    sys.exit(main())
