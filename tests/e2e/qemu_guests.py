#!/usr/bin/env python3
"""bootvm in QEMU's place: the test guests (tests/guest/) booted through a
symlink named qemu-system-x86_64 (and `bootvm qemu`) with QEMU's options, as
TAP: the exit statuses of docs/MACHINE.md, -m and -smp as the guests see
them, the console options, -drive, and the refusals (status 2, one line).

Environment: as guests.py (BOOTVM, GUEST_DIR, BOOTVM_E2E_TIMEOUT).
"""
import os
import subprocess
import sys
import tempfile
import time

import guests
from guests import (EXITS, MiB, POWEROFF, RESET, TRIPLE, USAGE, Run, check,
                    disk_image, expected_map, fmt_map, guest, parse_bootinfo,
                    parse_virtio, sectors_match)
from tap import plan, tap

TMP = tempfile.mkdtemp(prefix="bootvm-e2e-qemu-")
QEMU = os.path.join(TMP, "qemu-system-x86_64")


def qemu(*args, prog=None, timeout=guests.RUN_TIMEOUT):
    """QEMU's command line run by bootvm (argv[0] qemu-system-x86_64, or prog)."""
    args = [str(a) for a in args]
    argv = prog + args if prog else [QEMU, *args]
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        status, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        status, out, err = None, e.stdout or b"", e.stderr or b""
    return Run([os.path.basename(argv[0]), *args], status, out, err, time.monotonic() - t0)


def tutorial(kernel, *args):
    """The options every direct-boot tutorial has around its own."""
    return qemu("-enable-kvm", "-kernel", kernel, "-nographic", "-no-reboot", *args)


def run_checks():
    for form, entry in (("elf", "pvh"), ("bzImage", "linux64")):
        check(tutorial(guest("hello", form), "-m", "256M", "-smp", "1", "-cpu", "host"),
              f"qemu-system-x86_64 -enable-kvm -kernel hello.{form} -nographic -no-reboot: "
              "powers off (0)", entry=entry, want=["hello from the bootvm test guest"])

    # Every way the guest can end gives bootvm run's status; -no-reboot or not.
    for what, status in EXITS:
        r = tutorial(guest("exits"), "-append", f"exit={what}", "-M", "microvm", "-nodefaults")
        check(r, f"exits.elf exit={what} through qemu-system-x86_64: exit status {status}",
              status=status, want=[f"exits: {what}"])
    r = qemu("-kernel", guest("exits"), "-append", "exit=i8042", "-nographic")
    check(r, "without -no-reboot a reset still ends bootvm (status 3)", status=RESET,
          want=["exits: i8042"])
    r = qemu("-kernel", guest("exits"), "-append", "exit=triple", "-display", "none",
             "-serial", "stdio")
    check(r, "a triple fault (reboot=t) ends bootvm with 4", status=TRIPLE)

    # `bootvm qemu` is the same thing.
    r = qemu("-kernel", guest("hello"), "-nographic", prog=[guests.BOOTVM, "qemu"])
    check(r, "bootvm qemu -kernel hello.elf -nographic: powers off (0)",
          want=["hello from the bootvm test guest"])

    # -m, plain and suffixed, as the guest's E820 map shows it.
    for m, mem in (("64", 64 * MiB), ("96M", 96 * MiB), ("size=128M", 128 * MiB), (None, 128 * MiB)):
        r = tutorial(guest("bootinfo"), *(("-m", m) if m else ()))
        info = parse_bootinfo(r)
        want = expected_map(mem)
        tap(r.status == POWEROFF and info["e820"] == want,
            f"-m {m or '(none: QEMU default 128M)'}: the guest's E820 map has {mem >> 20} MiB",
            f"want:\n{fmt_map(want)}\ngot:\n{fmt_map(info['e820'])}\n" + r.describe())

    # -smp N and the topology form, counted by the smp guest through the MADT.
    for smp, n in (("2", 2), ("cores=2,threads=2,sockets=1", 4), ("sockets=1,cores=3", 3)):
        r = tutorial(guest("smp"), "-smp", smp)
        check(r, f"-smp {smp}: {n} CPUs brought up", want=[f"smp: {n} cpus online"])

    # -append with -initrd: the bootinfo guest sees both.
    initrd = os.path.join(TMP, "initrd.img")
    with open(initrd, "wb") as f:
        f.write(os.urandom(12345))
    r = tutorial(guest("bootinfo"), "-initrd", initrd, "-append", "a=1 b=\"two words\"")
    info = parse_bootinfo(r)
    tap(r.status == POWEROFF and info["cmdline"] == 'a=1 b="two words"' and
        info["initrd"] not in (None, "none") and info["initrd"][1] == 12345,
        "-append and -initrd reach the guest", r.describe())

    # Console options: -serial none prints nothing, file:PATH writes the file.
    r = qemu("-kernel", guest("hello"), "-serial", "none", "-display", "none")
    tap(r.status == POWEROFF and not r.out, "-serial none -display none: no output, powers off",
        r.describe())
    log = os.path.join(TMP, "console.log")
    r = qemu("-kernel", guest("hello"), "-serial", f"file:{log}", "-display", "none")
    text = open(log, errors="replace").read() if os.path.exists(log) else ""
    tap(r.status == POWEROFF and "hello from the bootvm test guest" in text and not r.out,
        "-serial file:PATH: the console in the file", r.describe())

    # -drive if=virtio and if=none + -device, virtio-rng: what the virtio guest reads back.
    rw, ro = os.path.join(TMP, "rw.img"), os.path.join(TMP, "ro.img")
    rw_data, ro_data = disk_image(rw, 2048, "rw"), disk_image(ro, 128, "ro")
    r = tutorial(guest("virtio"), "-drive", f"if=virtio,format=raw,file={rw},serial=QEMU-SER-1,cache=none",
                 "-drive", f"id=d1,file={ro},format=raw,if=none,readonly=on",
                 "-device", "virtio-blk-pci,drive=d1", "-device", "virtio-rng-pci,rng=rng0",
                 "-object", "rng-random,id=rng0,filename=/dev/urandom", "-v")
    check(r, "virtio.elf with -drive if=virtio, if=none + -device virtio-blk-pci, virtio-rng-pci: "
          "all ok", want=["virtio: all ok"], absent=["FAIL"], quiet=False)
    info = parse_virtio(r)
    blk = [info["blk"].get(s, {}) for s in (1, 2)]
    tap(blk[0].get("id") == "QEMU-SER-1" and blk[0].get("ro") is False and
        blk[1].get("id") == "" and blk[1].get("ro") is True and
        not sectors_match(blk[0], rw_data) and not sectors_match(blk[1], ro_data) and
        info["rng"] is not None,
        "the guest sees vda read-write with serial=, vdb read-only, and the rng", r.describe())
    notes = [l for l in r.err.splitlines() if l.startswith("bootvm: qemu: ")]
    tap(any("-object rng-random" in l for l in notes) and any("-no-reboot" in l for l in notes),
        "-v notes what bootvm accepted and does not need", r.err)
    disk = rw

    # Refused: status 2 and one line naming what.
    for args, needle in ((["-snapshot"], "option '-snapshot' is not supported by bootvm"),
                         (["-accel", "tcg"], "-accel tcg: not supported"),
                         (["-drive", f"file={disk},format=qcow2"], "format=qcow2 is not supported"),
                         (["-device", "virtio-gpu-pci"], "-device virtio-gpu-pci: not supported"),
                         (["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n1"],
                          "no -netdev with id 'n1'"),
                         (["-smp", "cpus=8,sockets=1,cores=2,threads=2"], "is more than")):
        r = tutorial(guest("hello"), *args)
        lines = r.err.splitlines()
        tap(r.status == USAGE and len(lines) == 1 and needle in lines[0] and not r.out,
            f"{' '.join(args)}: status 2, one line: {needle}", r.describe())


def main():
    if not os.access(guests.BOOTVM, os.X_OK):
        print("1..0 # SKIP no bootvm binary at " + guests.BOOTVM)
        return 0
    os.symlink(guests.BOOTVM, QEMU)
    try:
        run_checks()
    finally:
        for name in os.listdir(TMP):
            os.unlink(os.path.join(TMP, name))
        os.rmdir(TMP)
    return 1 if plan() else 0


if __name__ == "__main__":
    sys.exit(main())
