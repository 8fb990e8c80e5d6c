#!/usr/bin/env python3
"""Real Linux under bootvm, as TAP.

Here (software KVM) it boots the patched Linux 6.1 from ../shared/test-kernel
four times -- each boot takes about a minute on these machines, so each checks
a lot:
  1. --cpus 2 --memory 256M with a busybox initramfs from `bootvm initramfs`
     whose --init-run script reports, using shell builtins only, the CPUs
     online, MemTotal, /proc/cmdline and a file from the initrd, then powers
     off: bootvm must exit 0. The kernel log must show both CPUs, x2APIC,
     ACPI S5 support and no ACPI/APIC/e820 complaints.
  2. no initrd: the kernel panics (no root fs) and, with panic=-1 reboot=a,
     resets through the ACPI reset register: bootvm must exit 5 (panic).
  3. no initramfs: root=/dev/vda, an ext4 image made here with mkfs.ext4 -d
     (a static busybox and /init), a second ext4 image read-only as vdb, --rng,
     --cpus 2. /init (five programs, the rest shell builtins) reports the
     mounts, the disks' sysfs (ro, size, serial, queues, discard), refused
     writes to vdb, the PCI functions (IDs, class, driver, MSI-X vectors,
     BARs), the virtio devices (status, negotiated features),
     /proc/interrupts and 32 bytes of /dev/hwrng; copies 1 MiB from vdb to
     vda, writes a file, truncates one (ext4 -o discard), remounts / read-only
     and powers off. On the host: exit 0, no PCI/ACPI/virtio/disk complaints
     in the kernel log, BARs inside the _CRS windows, e2fsck -fn clean, the
     written files in the image (debugfs), the truncated file's blocks zero.
  4. the same with pci=nomsi (INTx through _PRT and the IOAPIC) and no
     remount: poweroff -f's sync() only; the guest reads boot 3's file; on a
     copy of the image the journal replays to a clean file system holding
     this boot's files.
Where KVM is hardware-backed (kvm_intel/kvm_amd loaded) it also boots Debian's
stock cloud kernel with its virtio modules from the initramfs, through host-side
and in-guest decompression, and compares the time to init. Here those tests
SKIP with the reason.

Environment: BOOTVM (the binary), SOURCE_ROOT, BOOTVM_TEST_KERNEL (optional
override of the test kernel path), BOOTVM_CACHE (download cache).
Run alone: meson test -C build --suite linux -v
Some groups only: python3 tests/e2e/linux.py [initrd] [panic] [disk] [stock]
"""
import hashlib
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
# The test kernel's required command line, and no RCU stall reports: on a loaded
# machine the emulated boot can stall long enough for one, and its NMI hangs or
# panics the guest here (../shared/test-kernel/README.md).
TEST_CMDLINE = ("console=ttyS0 reboot=a panic=-1 clearcpuid=cx16,xsave,popcnt,smap "
                "rcupdate.rcu_cpu_stall_suppress=1")
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
    """Run bootvm; returns (exit status, console output, stderr, seconds).
    A boot killed after timeout seconds has the status "timeout"."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([BOOTVM, "run", *args], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        status, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        status, out, err = "timeout", e.stdout or b"", e.stderr or b""
    return (status, out.decode(errors="replace"), err.decode(errors="replace"),
            time.monotonic() - t0)


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


# ---- virtio-blk + virtio-rng over PCI: ext4 root on /dev/vda, no initramfs ----

ROOT_SERIAL = "root-serial-20-chars"  # VIRTIO_BLK_ID_BYTES: the longest serial
RO_SERIAL = "ro-disk"
ROOT_SIZE = 64 << 20
RO_SIZE = 16 << 20
DATA_SIZE = 1 << 20   # copied from vdb to vda by the guest
JUNK_SIZE = 4 << 20   # truncated by the guest: its blocks must come back discarded
APPLETS = ["sh", "mount", "od", "cat", "poweroff"]  # all /init runs

# /init of the disk boots. Every program costs 1-2 s here, so shell builtins,
# and five programs in all: mount -a, od, cat, mount -o remount, poweroff.
# The kernel log goes to the console (loglevel 7; pr_debug is compiled out),
# so the host reads it there and no dmesg runs. bootvm.tag= names this boot's
# files, bootvm.end=remount makes it a clean shutdown (/ read-only first);
# otherwise poweroff -f's own sync() is all that stands between the written
# files and the power going off.
DISK_INIT = r"""#!/bin/sh
export PATH=/bin
echo "CHECK init=reached"
mount -a
read cmdline < /proc/cmdline
tag=; mark=; finish=
for w in $cmdline; do
	case $w in
	bootvm.tag=*) tag=${w#*=} ;;
	bootvm.mark=*) mark=${w#*=} ;;
	bootvm.end=*) finish=${w#*=} ;;
	esac
done
while read id parent majmin root mnt opts rest; do
	rest=${rest#*- }
	case $mnt in
	/) echo "CHECK mnt_root=$majmin ${opts%%,*} $rest" ;;
	/mnt) echo "CHECK mnt_mnt=$majmin ${opts%%,*} $rest" ;;
	esac
done < /proc/self/mountinfo
for b in vda vdb; do
	s=/sys/block/$b
	[ -e $s ] || { echo "CHECK $b=missing"; continue; }
	read dev < $s/dev; read ro < $s/ro; read size < $s/size
	read disc < $s/queue/discard_max_bytes
	n=0; for q in $s/mq/*; do [ -e "$q" ] && n=$((n+1)); done
	echo "CHECK $b=dev=$dev ro=$ro size=$size queues=$n discard=$disc"
	serial=; read serial 2>/dev/null < $s/serial
	echo "CHECK ${b}_serial=$serial"
done
if echo x 2>/dev/null > /dev/vdb; then r=accepted; else r=refused; fi
echo "CHECK vdb_write=$r"
if echo x 2>/dev/null > /mnt/new; then r=accepted; else r=refused; fi
echo "CHECK mnt_write=$r"
for d in /sys/bus/pci/devices/*; do
	read v < $d/vendor; read dv < $d/device; read c < $d/class; read irq < $d/irq
	n=0; for m in $d/msi_irqs/*; do [ -e "$m" ] && n=$((n+1)); done
	drv=none; cd -P $d/driver 2>/dev/null && drv=${PWD##*/}; cd /
	echo "PCI ${d##*/} $v $dv $c irq=$irq msi=$n driver=$drv"
	i=0
	while read start end flags; do
		[ "$start" = 0x0000000000000000 ] || echo "RES ${d##*/} $i $start $end $flags"
		i=$((i+1))
	done < $d/resource
done
for v in /sys/bus/virtio/devices/*; do
	read id < $v/device; read st < $v/status; read feat < $v/features
	drv=none; cd -P $v/driver 2>/dev/null && drv=${PWD##*/}
	cd -P $v; p=${PWD%/*}; cd /
	echo "VIRTIO ${v##*/} $id $st $drv ${p##*/} $feat"
done
while read l; do case $l in *virtio*) echo "IRQ $l" ;; esac; done < /proc/interrupts
read cur < /sys/class/misc/hw_random/rng_current; echo "CHECK rng_current=$cur"
echo RNG-BEGIN; od -An -tx1 -N32 /dev/hwrng; echo RNG-END
prev=; read prev 2>/dev/null < /written; echo "CHECK prev_written=$prev"
read m < /mnt/marker; echo "CHECK vdb_marker=$m"
cat /mnt/data > /copy$tag && echo "CHECK copy=done"
echo "$mark" > /written$tag && echo "CHECK written=done"
true > /junk
if [ "$finish" = remount ]; then
	mount -o remount,ro /; echo "CHECK remount=$?"
fi
echo "CHECK end=poweroff"
poweroff -f
"""

# What Linux prints when it dislikes the PCI host bridge, a BAR or a disk.
DEVICE_COMPLAINTS = re.compile(
    r"PCI: Fatal|can't claim|not reserved|no compatible bridge window|"
    r"BAR \d+:? .*fail|failed to assign|resource sanity check|no GSI|"
    r"(pci|PCI|virtio|vd[ab]).*(fail|error|conflict|invalid|bogus|can't|cannot)|"
    r"I/O error|EXT4-fs (error|warning)|Buffer I/O|blk_update_request|"
    r"_OSC.*fail|ACPI.*(not found|AE_)", re.IGNORECASE)
# The kernel log lines shown for the PCI/ACPI/virtio checks.
DEVICE_LINES = re.compile(r"pci|PCI|ACPI|MMCONFIG|ECAM|virtio|vd[ab]|EXT4|hw_random|"
                          r"VFS|random", re.IGNORECASE)


def run_ok(args):
    """Run a host tool: (exit status, stdout, stderr)."""
    p = subprocess.run(args, capture_output=True, text=True, errors="replace")
    return p.returncode, p.stdout, p.stderr


def make_ext4(img, tree, size):
    """An ext4 image of tree's contents (mkfs.ext4 -d, no root needed)."""
    with open(img, "wb") as f:
        f.truncate(size)
    st, out, err = run_ok(["mkfs.ext4", "-q", "-F", "-b", "4096", "-d", tree, img])
    return st, out + err


def debugfs(img, request):
    return run_ok(["debugfs", "-R", request, img])


def file_blocks(img, path):
    """The 4 KiB block numbers of path in img (debugfs blocks), or []."""
    st, out, _ = debugfs(img, f"blocks {path}")
    return [int(b) for b in out.split() if b.isdigit()] if st == 0 else []


def disk_checks(out):
    """What the disk /init printed: CHECK key=value, and the PCI, RES, VIRTIO,
    IRQ lines and the hwrng bytes."""
    c = checks(out)
    lines = [l.rstrip("\r") for l in out.splitlines()]
    pci = [l.split()[1:] for l in lines if l.startswith("PCI ")]
    res = [l.split()[1:] for l in lines if l.startswith("RES ")]
    virtio = [l.split()[1:] for l in lines if l.startswith("VIRTIO ")]
    irqs = [l[4:] for l in lines if l.startswith("IRQ ")]
    rng = ""
    if "RNG-BEGIN" in lines and "RNG-END" in lines:
        rng = " ".join(lines[lines.index("RNG-BEGIN") + 1:lines.index("RNG-END")]).split()
    return c, pci, res, virtio, irqs, rng


def root_windows(out):
    """The host bridge windows Linux took from _CRS: [(start, end)] of memory."""
    return [(int(a, 16), int(b, 16)) for a, b in re.findall(
        r"pci_bus 0000:00: root bus resource \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)", out)]


def irq_total(line):
    """The sum of the per-CPU counts of a /proc/interrupts line."""
    n = 0
    for f in line.split()[1:]:
        if not f.isdigit():
            break
        n += int(f)
    return n


def check_disk_boot(label, msi, status, out, err, c, pci, res, virtio, irqs, rng):
    """The checks both disk boots share (label names the boot)."""
    log = out + err
    dev_lines = "\n".join(l for l in out.splitlines() if DEVICE_LINES.search(l))
    tap(status == 0, f"{label}: ext4 root on virtio-blk boots and powers off, exit 0",
        f"status {status}\n{err}\n{out[-4000:]}")
    tap(c.get("end") == "poweroff", f"{label}: /init from /dev/vda ran to the end", out[-3000:])
    vda = dict(kv.split("=", 1) for kv in c.get("vda", "").split() if "=" in kv)
    vdb = dict(kv.split("=", 1) for kv in c.get("vdb", "").split() if "=" in kv)
    mroot = c.get("mnt_root", "").split()
    tap(len(mroot) >= 2 and mroot[0] == vda.get("dev") and mroot[1] == "rw" and
        c["mnt_root"].split()[2:3] == ["ext4"],
        f"{label}: / is ext4 mounted rw from /dev/vda (root=/dev/vda rw)", f"{c}")
    mmnt = c.get("mnt_mnt", "").split()
    tap(len(mmnt) >= 4 and mmnt[0] == vdb.get("dev") and mmnt[1] == "ro" and
        mmnt[2:4] == ["ext4", "/dev/vdb"],
        f"{label}: the second disk mounts as /dev/vdb (ext4, ro)", f"{c}")
    tap(vda.get("ro") == "0" and vda.get("size") == str(ROOT_SIZE // 512) and
        vdb.get("ro") == "1" and vdb.get("size") == str(RO_SIZE // 512),
        f"{label}: sizes in sectors; vda read-write, vdb read-only (ro=on: VIRTIO_BLK_F_RO)",
        f"vda {vda} vdb {vdb}")
    tap(c.get("vda_serial") == ROOT_SERIAL and c.get("vdb_serial") == RO_SERIAL,
        f"{label}: GET_ID: the serials are the id= given (20 chars, and a short one)",
        f"{c.get('vda_serial')!r} {c.get('vdb_serial')!r}")
    tap(vda.get("queues") == "2" and vdb.get("queues") == "1",
        f"{label}: multi-queue: vda one queue per vCPU (2), vdb queues=1",
        f"vda {vda} vdb {vdb}")
    tap(int(vda.get("discard", "0")) > 0 and vdb.get("discard") == "0",
        f"{label}: discard advertised on vda (discard=on) only", f"vda {vda} vdb {vdb}")
    tap(c.get("vdb_write") == "refused" and c.get("mnt_write") == "refused",
        f"{label}: writes to the read-only disk and its file system are refused", f"{c}")
    tap(c.get("vdb_marker") == "ro-disk-marker" and c.get("copy") == "done" and
        c.get("written") == "done",
        f"{label}: read a file from vdb (cache=none), copied 1 MiB to vda", f"{c}")

    virt = [p for p in pci if len(p) >= 4 and p[1] == "0x1af4"]
    kinds = sorted(p[2] for p in virt)
    tap(kinds == ["0x1042", "0x1042", "0x1044"],
        f"{label}: PCI shows two modern virtio-blk (1af4:1042) and a virtio-rng (1af4:1044)",
        "\n".join(" ".join(p) for p in pci))
    tap(virt and all(p[3].startswith("0x01") for p in virt if p[2] == "0x1042"),
        f"{label}: virtio-blk's PCI class is mass storage",
        "\n".join(" ".join(p) for p in virt))
    tap(virt and all("driver=virtio-pci" in p for p in virt),
        f"{label}: virtio-pci drives every virtio function",
        "\n".join(" ".join(p) for p in virt))
    if msi:
        tap(virt and all(not "msi=0" in p for p in virt),
            f"{label}: every virtio function has MSI-X vectors (msi_irqs)",
            "\n".join(" ".join(p) for p in virt))
    else:
        tap(virt and all("msi=0" in p and "irq=0" not in p for p in virt),
            f"{label}: pci=nomsi: no MSI vectors, every function has an INTx IRQ",
            "\n".join(" ".join(p) for p in virt))
    wins = root_windows(out)
    virt_addrs = {p[0] for p in virt}
    mem_bars = [r for r in res if r[0] in virt_addrs and int(r[3], 16) & 0x200 and int(r[1]) < 6]
    outside = [r for r in mem_bars
               if not any(a <= int(r[2], 16) and int(r[3], 16) - 1 <= b for a, b in wins)]
    tap(wins and mem_bars and not outside,
        f"{label}: the virtio BARs lie inside the host bridge windows from _CRS",
        f"windows {[(hex(a), hex(b)) for a, b in wins]}\n" +
        "\n".join(" ".join(r) for r in (outside or res)))

    by_drv = sorted(v[3] for v in virtio if len(v) >= 6)
    tap(by_drv == ["virtio_blk", "virtio_blk", "virtio_rng"] and
        all(v[2] == "0x0000000f" for v in virtio),
        f"{label}: the virtio devices are driven (status ACK|DRIVER|FEATURES_OK|DRIVER_OK)",
        "\n".join(" ".join(v) for v in virtio))

    def feat(v, bit):
        return len(v) >= 6 and len(v[5]) > bit and v[5][bit] == "1"
    # Feature bits the drivers take when offered: VERSION_1 (32), EVENT_IDX (29),
    # INDIRECT_DESC (28); blk: FLUSH (9), MQ (12); RO (5) and DISCARD (13) as configured.
    tap(virtio and all(feat(v, 32) and feat(v, 29) and feat(v, 28) for v in virtio),
        f"{label}: negotiated VERSION_1, EVENT_IDX and INDIRECT_DESC on every device",
        "\n".join(" ".join(v) for v in virtio))
    blk = [v for v in virtio if len(v) >= 6 and v[3] == "virtio_blk"]
    ro_blk = [v for v in blk if feat(v, 5)]
    tap(len(blk) == 2 and all(feat(v, 9) for v in blk) and len(ro_blk) == 1 and
        sum(feat(v, 13) for v in blk) == 1 and any(feat(v, 12) for v in blk),
        f"{label}: virtio-blk features: FLUSH on both, RO on one, DISCARD on one, MQ",
        "\n".join(" ".join(v) for v in blk))

    # MSI-X: one line per vector, "virtioN-config", "virtioN-req.0", ...; INTx: the
    # IO-APIC line of the function's pin names "virtioN" (shared lines name several).
    want = "PCI-MSI" if msi else "IO-APIC"
    devs = sorted(v[0] for v in virtio)

    def dev_irqs(d):
        return [l for l in irqs if re.search(rf"\b{d}(-|,|$)", l) and
                (not msi or f"{d}-config" not in l)]
    tap(devs and all(dev_irqs(d) and all(want in l for l in dev_irqs(d)) for d in devs),
        f"{label}: /proc/interrupts: every virtio device's queues on {want}", "\n".join(irqs))
    tap(devs and all(sum(irq_total(l) for l in dev_irqs(d)) > 0 for d in devs),
        f"{label}: interrupts were delivered for every device's queues", "\n".join(irqs))
    parents = sorted(v[4] for v in virtio if len(v) >= 6)
    tap(parents and parents == sorted(virt_addrs),
        f"{label}: each virtio device sits on one of the virtio PCI functions",
        f"{parents} vs {sorted(virt_addrs)}")

    tap(c.get("rng_current", "").startswith("virtio_rng"),
        f"{label}: hw_random uses virtio_rng", c.get("rng_current", ""))
    tap(len(rng) == 32 and all(re.fullmatch(r"[0-9a-f]{2}", b) for b in rng) and
        len(set(rng)) > 4,
        f"{label}: /dev/hwrng gives 32 bytes", " ".join(rng))

    bad = [l for l in out.splitlines() if COMPLAINTS.search(l) or DEVICE_COMPLAINTS.search(l)]
    tap(not bad and "virtio_blk virtio" in out,
        f"{label}: no PCI, ACPI, virtio or disk complaints in the kernel log",
        "\n".join(bad) + "\n--- PCI/ACPI/virtio lines ---\n" + dev_lines)
    if msi:
        tap(re.search(r"PCI: (MMCONFIG|ECAM) .*reserved", out) is not None and
            "ACPI: PCI Root Bridge [PCI0]" in out,
            f"{label}: Linux uses the ACPI host bridge and ECAM (MCFG, reserved)", dev_lines)
    return log


def test_disk_boots(tmp):
    """Two boots from an ext4 root disk, vdb read-only, --rng, 2 CPUs: with MSI-X
    and a clean shutdown, then pci=nomsi (INTx through _PRT) with sync only."""
    root_tree = os.path.join(tmp, "root")
    for d in ("bin", "dev", "proc", "sys", "mnt", "etc"):
        os.makedirs(os.path.join(root_tree, d))
    shutil.copy(BUSYBOX, os.path.join(root_tree, "bin", "busybox"))
    for a in APPLETS:
        os.symlink("busybox", os.path.join(root_tree, "bin", a))
    with open(os.path.join(root_tree, "etc", "fstab"), "w") as f:
        f.write("proc /proc proc defaults 0 0\nsysfs /sys sysfs defaults 0 0\n"
                "/dev/vdb /mnt ext4 ro 0 0\n")
    init = os.path.join(root_tree, "init")
    with open(init, "w") as f:
        f.write(DISK_INIT)
    os.chmod(init, 0o755)
    junk = os.urandom(JUNK_SIZE)
    with open(os.path.join(root_tree, "junk"), "wb") as f:
        f.write(junk)
    ro_tree = os.path.join(tmp, "ro")
    os.makedirs(ro_tree)
    data = os.urandom(DATA_SIZE)
    with open(os.path.join(ro_tree, "data"), "wb") as f:
        f.write(data)
    with open(os.path.join(ro_tree, "marker"), "w") as f:
        f.write("ro-disk-marker\n")
    root_img = os.path.join(tmp, "root.ext4")
    ro_img = os.path.join(tmp, "ro.ext4")
    st1, o1 = make_ext4(root_img, root_tree, ROOT_SIZE)
    st2, o2 = make_ext4(ro_img, ro_tree, RO_SIZE)
    if not tap(st1 == 0 and st2 == 0, "mkfs.ext4 -d builds the root and read-only images",
               o1 + o2):
        return
    junk_blocks = file_blocks(root_img, "/junk")
    with open(ro_img, "rb") as f:
        ro_before = hashlib.sha256(f.read()).hexdigest()

    disks = ["--disk", f"{root_img},id={ROOT_SERIAL},discard=on",
             "--disk", f"{ro_img},ro=on,id={RO_SERIAL},cache=none,queues=1", "--rng"]
    base = (TEST_CMDLINE + " root=/dev/vda rw rootfstype=ext4 rootflags=discard init=/init")
    mark1 = f"written-msix-{os.getpid()}"
    status, out, err, secs = boot(["--kernel", TEST_KERNEL, "--cpus", "2", "--memory", "256M",
                                   *disks, "--append",
                                   f"{base} bootvm.mark={mark1} bootvm.end=remount"])
    print(f"# disk boot (MSI-X, clean shutdown) took {secs:.1f} s")
    c, pci, res, virtio, irqs, rng1 = disk_checks(out)
    check_disk_boot("MSI-X", True, status, out, err, c, pci, res, virtio, irqs, rng1)
    tap(c.get("remount") == "0", "MSI-X: / remounted read-only before poweroff",
        f"mount -o remount,ro / exit status {c.get('remount')}\n" +
        out[out.find("CHECK written="):][:2000])

    st, fsck, fsck_err = run_ok(["e2fsck", "-fn", root_img])
    tap(st == 0, "after a clean shutdown e2fsck -fn finds the root image clean",
        f"e2fsck -fn: {st}\n{fsck}{fsck_err}")
    st, got, msg = debugfs(root_img, "cat /written")
    tap(st == 0 and got == mark1 + "\n",
        "the file the guest wrote is in the image (debugfs cat)", f"{got[-500:]!r}\n{msg}")
    copy = os.path.join(tmp, "copy")
    st, _, msg = debugfs(root_img, f"dump /copy {copy}")
    tap(st == 0 and os.path.exists(copy) and open(copy, "rb").read() == data,
        "the 1 MiB the guest copied from vdb to vda is in the image, byte for byte", msg)
    # Blocks ext4 has since given to the files the guest wrote hold their data.
    reused = set(file_blocks(root_img, "/copy")) | set(file_blocks(root_img, "/written"))
    zero = bytes(4096)
    kept = 0
    with open(root_img, "rb") as f:
        for b in set(junk_blocks) - reused:
            f.seek(b * 4096)
            kept += f.read(4096) != zero
    tap(len(junk_blocks) == JUNK_SIZE // 4096 and len(reused & set(junk_blocks)) < 512 and
        kept == 0,
        "the truncated file's blocks were discarded (ext4 -o discard -> zeros in the image)",
        f"{kept} of {len(junk_blocks)} blocks still hold data "
        f"({len(reused & set(junk_blocks))} reused)")
    with open(ro_img, "rb") as f:
        tap(hashlib.sha256(f.read()).hexdigest() == ro_before,
            "the read-only image is unchanged")

    # INTx: pci=nomsi makes Linux route every function through _PRT to the IOAPIC.
    mark2 = f"written-intx-{os.getpid()}"
    status, out, err, secs = boot(["--kernel", TEST_KERNEL, "--cpus", "2", "--memory", "256M",
                                   *disks, "--append",
                                   f"{base} pci=nomsi bootvm.tag=2 bootvm.mark={mark2}"])
    print(f"# disk boot (pci=nomsi, sync and power off) took {secs:.1f} s")
    c, pci, res, virtio, irqs, rng2 = disk_checks(out)
    check_disk_boot("INTx", False, status, out, err, c, pci, res, virtio, irqs, rng2)
    tap(c.get("prev_written") == mark1, "INTx: the guest reads the file of the first boot",
        str(c))
    tap(rng1 != rng2, "the two boots got different random bytes")
    # Powered off mounted, after sync(): the journal holds what is not yet in place.
    after = os.path.join(tmp, "after.ext4")
    shutil.copy(root_img, after)
    st, o1, e1 = run_ok(["e2fsck", "-fy", after])
    st2, o2, e2 = run_ok(["e2fsck", "-fn", after])
    tap(st in (0, 1) and st2 == 0,
        "after sync + power-off the journal replays to a clean file system",
        f"e2fsck -fy: {st}\n{o1}{e1}e2fsck -fn: {st2}\n{o2}{e2}")
    st, got, msg = debugfs(after, "cat /written2")
    tap(st == 0 and got == mark2 + "\n",
        "the file written before sync + power-off is in the image", f"{got[-500:]!r}\n{msg}")
    copy2 = os.path.join(tmp, "copy2")
    st, _, msg = debugfs(after, f"dump /copy2 {copy2}")
    tap(st == 0 and os.path.exists(copy2) and open(copy2, "rb").read() == data,
        "so is the second 1 MiB copy, byte for byte", msg)


def preflight(what):
    """Print the TAP header; True if the test kernel can boot here, else False
    after a SKIP of `what` (no bootvm binary: Bail out, exit 1)."""
    print("TAP version 13")
    if not os.access(BOOTVM, os.X_OK):
        print(f"Bail out! no bootvm binary at {BOOTVM}")
        sys.exit(1)
    if not TEST_KERNEL:
        skip(what, TEST_KERNEL_WHY)
    elif not os.path.exists(BUSYBOX):
        skip(what, f"{BUSYBOX} missing (install busybox-static)")
    else:
        return True
    return False


def main():
    # Optional arguments pick groups (initrd, panic, disk, stock); default all.
    groups = set(sys.argv[1:]) or {"initrd", "panic", "disk", "stock"}
    if preflight("test kernel boots"):
        if "initrd" in groups:
            with tempfile.TemporaryDirectory(prefix="bootvm-linux-") as tmp:
                test_kernel_boot(tmp)
        if "panic" in groups:
            test_kernel_panic()
        missing = [t for t in ("mkfs.ext4", "debugfs", "e2fsck") if not shutil.which(t)]
        if "disk" not in groups:
            pass
        elif missing:
            skip("boots from an ext4 virtio-blk disk", f"{missing[0]} missing (install e2fsprogs)")
        else:
            with tempfile.TemporaryDirectory(prefix="bootvm-disk-") as tmp:
                test_disk_boots(tmp)

    if "stock" not in groups:
        pass
    elif hardware_kvm():
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
