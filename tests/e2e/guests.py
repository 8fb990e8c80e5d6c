#!/usr/bin/env python3
"""bootvm + the freestanding test guests (tests/guest/), as TAP.

Usage: guests.py GROUP     (GROUP: see GROUPS at the end; one meson test each)

Every run is `bootvm run --console stdio --kernel GUEST ...` with a timeout,
its console output (stdout), stderr and exit status checked against
docs/MACHINE.md: the memory map, the exit statuses, the entry protocols.
Guests print "entry=pvh" or "entry=linux64" first, so each check knows which
boot path was taken.

Environment: BOOTVM (the binary), GUEST_DIR (the built guests),
BOOTVM_E2E_TIMEOUT (seconds per run, default 20).
"""
import gzip
import lzma
import os
import random
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

from tap import plan, skip, tap

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.dirname(os.path.dirname(HERE)))
BUILD_ROOT = os.environ.get("BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
BOOTVM = os.environ.get("BOOTVM", os.path.join(BUILD_ROOT, "src", "bootvm"))
GUEST_DIR = os.environ.get("GUEST_DIR", os.path.join(BUILD_ROOT, "tests", "guest"))
RUN_TIMEOUT = float(os.environ.get("BOOTVM_E2E_TIMEOUT", "20"))

# Exit statuses (docs/MACHINE.md).
POWEROFF, ERROR, USAGE, RESET, TRIPLE, PANIC, INTERNAL = 0, 1, 2, 3, 4, 5, 6

# The memory map (docs/MACHINE.md, src/arch/x86/layout.h).
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
E820_RAM, E820_RESERVED = 1, 2
PCI_ECAM = (0xe0000000, 0x100000)
EBDA = 0x9fc00
HOLE_START, HOLE_END = 3 * GiB, 4 * GiB
KVM_PRIVATE = (0xfeffc000, 0x4000)   # KVM's identity-map page + TSS, reserved in the hole
RSDP_ADDR = 0xe0000
KERNEL_ADDR = 0x100000
BZ_INITRD_ADDR_MAX = 0x7fffffff      # what mkbzimage writes in the setup header
FORMS = ("elf", "bzImage")
ENTRY = {"elf": "pvh", "bzImage": "linux64"}
COMPRESSORS = ("gzip", "lz4", "zstd", "xz", "lzma")

_runs = []          # (seconds, args) of every bootvm run, for the summary


def guest(name, form="elf"):
    return os.path.join(GUEST_DIR, f"{name}.{form}")


def elf_load(path):
    """(file offset, file size, end in memory) of a guest ELF's one PT_LOAD at 1 MiB."""
    d = open(path, "rb").read()
    phoff, = struct.unpack_from("<Q", d, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", d, 0x36)
    for i in range(phnum):
        ptype, _flags, off, _vaddr, paddr, filesz, memsz = struct.unpack_from(
            "<IIQQQQQ", d, phoff + i * phentsize)
        if ptype == 1 and paddr == KERNEL_ADDR:
            return off, filesz, paddr + memsz
    raise ValueError(f"{path}: no PT_LOAD at 1 MiB")


def kernel_end(name, form):
    """Where the guest's memory ends: the ELF's segments, or a bzImage's init_size."""
    if form == "elf":
        return elf_load(guest(name))[2]
    init_size, = struct.unpack_from("<I", open(guest(name, form), "rb").read(), 0x260)
    return KERNEL_ADDR + init_size


class Run:
    """One bootvm run: status (None if it timed out), console text, stderr text."""

    def __init__(self, args, status, out, err, secs):
        self.args, self.status, self.secs = args, status, secs
        self.raw = out
        self.out = out.decode(errors="replace").replace("\r\n", "\n")
        self.err = err.decode(errors="replace")
        self.lines = self.out.splitlines()
        _runs.append((secs, args))

    def describe(self):
        st = "TIMEOUT (killed)" if self.status is None else f"exit status {self.status}"
        return (f"$ bootvm run {' '.join(self.args)}\n{st} after {self.secs:.2f} s\n"
                f"--- console ---\n{self.out.rstrip()}\n--- stderr ---\n{self.err.rstrip()}")


def start(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE):
    """Start bootvm run ARGS (stderr to a pipe); the process and when it started."""
    t0 = time.monotonic()
    return subprocess.Popen([BOOTVM, "run", *args], stdin=stdin, stdout=stdout,
                            stderr=subprocess.PIPE), t0


def finish(p, args, t0, out=b"", input=None, timeout=RUN_TIMEOUT):
    """Wait for p (killed after `timeout` s: status None); `out` is what was read already."""
    try:
        rest, err = p.communicate(input, timeout=timeout)
        status = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        rest, err = p.communicate()
        status = None
    return Run(args, status, out + (rest or b""), err, time.monotonic() - t0)


def bootvm(*args, input=None, timeout=RUN_TIMEOUT):
    """bootvm run ARGS with stdin from `input` (bytes) or /dev/null."""
    args = [str(a) for a in args]
    p, t0 = start(args, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL)
    return finish(p, args, t0, input=input, timeout=timeout)


def boot(kernel, *args, **kw):
    return bootvm("--console", "stdio", "--kernel", kernel, *args, **kw)


def check(r, name, status=POWEROFF, entry=None, want=(), absent=(), quiet=None):
    """
    The run ended with `status`, its first console line is entry=ENTRY, every
    line (or regex) in `want` appears as a whole console line, nothing in
    `absent` does, and (by default for poweroff) stderr is empty.
    """
    problems = []
    if r.status is None:
        problems.append(f"timed out after {r.secs:.1f} s")
    elif r.status != status:
        problems.append(f"exit status {r.status}, expected {status}")
    if entry and (not r.lines or r.lines[0] != f"entry={entry}"):
        problems.append(f"first console line is not entry={entry}")
    for w in want:
        pat = w if isinstance(w, re.Pattern) else re.compile(re.escape(w))
        if not any(pat.fullmatch(line) for line in r.lines):
            problems.append(f"no console line {pat.pattern!r}")
    for a in absent:
        if re.search(a, r.out):
            problems.append(f"console has {a!r}")
    if quiet is None:
        quiet = status == POWEROFF
    if quiet and r.err.strip():
        problems.append("stderr is not empty")
    return tap(not problems, name, "\n".join(problems) + "\n" + r.describe())


def both_forms(name):
    for form in FORMS:
        yield form, guest(name, form), ENTRY[form]


# ---------------------------------------------------------------------------


def group_hello():
    for form, k, entry in both_forms("hello"):
        r = boot(k)
        check(r, f"hello.{form}: entry={entry}, hello line, powers off (0)", entry=entry,
              want=["hello from the bootvm test guest"])
        r = boot(k, "--append", "qemu-exit")
        check(r, f"hello.{form} with qemu-exit: port 0x501 ignored, powers off (0)",
              entry=entry, want=["hello from the bootvm test guest"])
    k = guest("hello-nopvh", "elf")
    if os.path.exists(k):
        check(boot(k), "hello-nopvh.elf (ELF without a PVH note): e_entry through the 64-bit entry",
              entry="linux64", want=["hello from the bootvm test guest"])
    else:
        skip("hello-nopvh.elf", "not built (no objcopy)")
    with tempfile.TemporaryDirectory(prefix="bootvm-e2e-") as tmp:
        log = os.path.join(tmp, "console.log")
        r = bootvm("--console", f"file:{log}", "--kernel", guest("hello"))
        text = open(log, "rb").read().decode(errors="replace") if os.path.exists(log) else ""
        tap(r.status == POWEROFF and "hello from the bootvm test guest" in text and not r.out,
            "hello.elf --console file:PATH: output in the file, none on stdout",
            r.describe() + f"\n--- file ---\n{text}")
    r = bootvm("--console", "none", "--kernel", guest("hello"))
    tap(r.status == POWEROFF and not r.out, "hello.elf --console none: no output, powers off",
        r.describe())


def expected_map(mem):
    """The E820 map docs/MACHINE.md gives a guest with `mem` bytes of RAM."""
    low_end = min(mem, HOLE_START)
    m = [(0, EBDA, E820_RAM), (EBDA, 0x100000 - EBDA, E820_RESERVED),
         (0x100000, low_end - 0x100000, E820_RAM), (*PCI_ECAM, E820_RESERVED),
         (*KVM_PRIVATE, E820_RESERVED)]
    if mem > HOLE_START:
        m.append((HOLE_END, mem - HOLE_START, E820_RAM))
    return m


E820_LINE = re.compile(r"e820: 0x([0-9a-f]+) 0x([0-9a-f]+) (\d+)")


def parse_bootinfo(r):
    info = {"e820": [], "cmdline": None, "usable": None, "initrd": None}
    m = re.search(r"cmdline=\[(.*?)\]\n", r.out, re.S)
    if m:
        info["cmdline"] = m.group(1)
    for line in r.lines:
        if (m := E820_LINE.fullmatch(line)):
            info["e820"].append((int(m[1], 16), int(m[2], 16), int(m[3])))
        elif (m := re.fullmatch(r"usable=0x([0-9a-f]+)", line)):
            info["usable"] = int(m[1], 16)
        elif (m := re.fullmatch(r"initrd: addr=0x([0-9a-f]+) size=0x([0-9a-f]+) fnv1a=0x([0-9a-f]+)",
                                line)):
            info["initrd"] = (int(m[1], 16), int(m[2], 16), int(m[3], 16))
        elif line == "initrd: none":
            info["initrd"] = "none"
    return info


def fnv1a(data):
    h = 0x811c9dc5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xffffffff
    return h


def fmt_map(m):
    return "\n".join(f"  0x{a:x} 0x{s:x} {t}" for a, s, t in m)


def group_bootinfo():
    sizes = [("8M", 8 * MiB), ("64M", 64 * MiB), ("512M", 512 * MiB), ("3G", 3 * GiB),
             ("3073M", 3073 * MiB), ("4G", 4 * GiB), ("8G", 8 * GiB)]
    for form, k, entry in both_forms("bootinfo"):
        for arg, mem in sizes:
            r = boot(k, "--memory", arg)
            info = parse_bootinfo(r)
            want = expected_map(mem)
            usable = sum(s for _, s, t in want if t == E820_RAM)
            ok = check(r, f"bootinfo.{form} --memory {arg}: boots, entry={entry}", entry=entry)
            if ok:
                tap(info["e820"] == want and info["usable"] == usable,
                    f"bootinfo.{form} --memory {arg}: memory map as docs/MACHINE.md, "
                    f"{usable // MiB} MiB usable",
                    f"expected:\n{fmt_map(want)}\ngot:\n{fmt_map(info['e820'])}\n"
                    f"usable 0x{usable:x}, got {info['usable']}")
                tap(info["cmdline"] == "" and info["initrd"] == "none",
                    f"bootinfo.{form} --memory {arg}: empty command line, no initrd",
                    r.describe())

        # A command line with spaces and punctuation arrives byte for byte.
        cmd = ("console=ttyS0  root=/dev/vda1 ro quiet x=\"a b\" y='c' "
               "!#$%&()*+,-./:;<=>?@[\\]^_`{|}~ end")
        r = boot(k, "--append", cmd)
        info = parse_bootinfo(r)
        check(r, f"bootinfo.{form}: boots with a punctuated --append", entry=entry)
        tap(info["cmdline"] == cmd, f"bootinfo.{form}: command line arrives exactly",
            f"sent {cmd!r}\ngot  {info['cmdline']!r}")

        # The longest command line the kernel takes (cmdline_size 2047 in both forms).
        cmd = "".join(random.Random(7).choice("abcdefghij=-_ ") for _ in range(2046)) + "Z"
        r = boot(k, "--append", cmd)
        info = parse_bootinfo(r)
        tap(r.status == POWEROFF and info["cmdline"] == cmd,
            f"bootinfo.{form}: a 2047-byte command line arrives exactly",
            f"got {len(info['cmdline'] or '')} bytes\n" + r.describe()[-2000:])

        # A small initrd: where it landed, its size and checksum.
        with tempfile.TemporaryDirectory(prefix="bootvm-e2e-") as tmp:
            data = random.Random(42).randbytes(3000)
            path = os.path.join(tmp, "initrd.img")
            with open(path, "wb") as f:
                f.write(data)
            for arg, mem in (("512M", 512 * MiB), ("4G", 4 * GiB)):
                r = boot(k, "--memory", arg, "--initrd", path)
                info = parse_bootinfo(r)
                got = info["initrd"]
                name = f"bootinfo.{form} --memory {arg} --initrd (3000 bytes)"
                if not check(r, f"{name}: boots", entry=entry) or not isinstance(got, tuple):
                    tap(False, f"{name}: initrd reported", r.describe())
                    continue
                addr, size, h = got
                tap(size == len(data) and h == fnv1a(data),
                    f"{name}: size and FNV-1a checksum match the file",
                    f"size {size} (want {len(data)}), fnv1a 0x{h:08x} (want 0x{fnv1a(data):08x})")
                # "initrd at the top" of low RAM -- below initrd_addr_max for a bzImage.
                top = min(mem, HOLE_START)
                if entry == "linux64":
                    top = min(top, BZ_INITRD_ADDR_MAX + 1)
                end = addr + size
                in_ram = any(a <= addr and end <= a + s for a, s, t in info["e820"] if t == E820_RAM)
                tap(addr % 4096 == 0 and in_ram and end <= top and top - end < 4096
                    and addr >= kernel_end("bootinfo", form),
                    f"{name}: page-aligned, in usable RAM, above the kernel, at the top "
                    f"(end <= 0x{top:x})", f"initrd at 0x{addr:x}-0x{end:x}")


def group_acpi():
    for form, k, entry in both_forms("acpi"):
        for cpus in (1, 2, 4, 255):
            r = boot(k, "--cpus", cpus)
            check(r, f"acpi.{form} --cpus {cpus}: RSDP where documented, 6 tables valid (XSDT FADT MADT MCFG FACS DSDT), "
                  f"cpus={cpus}", entry=entry,
                  want=[f"acpi: rsdp boot=0x{RSDP_ADDR:x} scan=0x{RSDP_ADDR:x}",
                        f"acpi: rsdp ok, 6 tables ok, cpus={cpus}", "acpi: S5 SLP_TYP 5"],
                  absent=["FAIL"])
        # The rest of docs/MACHINE.md's ACPI section, once.
        r = boot(k)
        check(r, f"acpi.{form}: FADT, MADT and DSDT contents as docs/MACHINE.md", entry=entry,
              want=[re.compile(r"acpi: fadt sci=9 pm1a_evt=0x600 pm1a_cnt=0x604 "
                               r"reset=1:0x608=0x1 flags=0x[0-9a-f]+"),
                    "acpi: madt lapic_addr=0xfee00000 flags=0x1",
                    "acpi: ioapic id=0 addr=0xfec00000 gsi=0",
                    re.compile(r"acpi: override bus=0 irq=0 gsi=2 flags=0x[0-9a-f]+"),
                    "acpi: override bus=0 irq=9 gsi=9 flags=0xd",   # level, active high
                    re.compile(r"acpi: lapic-nmi uid=0x[0-9a-f]+ flags=0x[0-9a-f]+ lint=1"),
                    "acpi: dsdt PNP0501=yes QEMU0001=yes"],
              absent=["FAIL", "madt entry type"])


def group_smp():
    for form, k, entry in both_forms("smp"):
        for cpus in (1, 2, 4) if form == "bzImage" else (1, 2, 4, 16, 255):
            r = boot(k, "--cpus", cpus)
            check(r, f"smp.{form} --cpus {cpus}: INIT/SIPI brings up all {cpus} cpus", entry=entry,
                  want=[f"smp: bsp 0, {cpus} cpus in the MADT", f"smp: {cpus} cpus online"]
                  + [f"smp: cpu {i} online" for i in range(1, cpus)])


EXITS = [("poweroff", POWEROFF), ("i8042", RESET), ("acpi-reset", RESET), ("triple", TRIPLE),
         ("pvpanic", PANIC), ("panic-msg", PANIC), ("panic-i8042", PANIC),
         ("panic-triple", PANIC), ("internal", INTERNAL)]


def group_exits():
    for form, k, entry in both_forms("exits"):
        for what, status in EXITS:
            r = boot(k, "--append", f"exit={what}")
            check(r, f"exits.{form} exit={what}: exit status {status}", status=status,
                  entry=entry, want=[f"exits: {what}"], absent=["still running"])
    # With -v, how the VM ended is said once, with its cause and status.
    for what, line in (("poweroff", "bootvm: guest powered off (ACPI S5)"),
                       ("i8042", "bootvm: warning: guest reset (i8042 reset; exit status 3)"),
                       ("panic-msg", "bootvm: warning: guest kernel panic "
                                     "(panic message, then ACPI reset register; exit status 5)"),
                       ("triple", "bootvm: warning: guest triple fault (vCPU 0; exit status 4)"),
                       ("internal", "bootvm: warning: KVM internal error (vCPU 0; exit status 6)")):
        r = boot(guest("exits"), "-v", "--append", f"exit={what}")
        ends = [l for l in r.err.splitlines() if l.startswith("bootvm: ") and "(" in l and
                any(w in l for w in ("powered off", "reset", "panic", "triple", "internal error ("))]
        tap(ends == [line], f"exits.elf -v exit={what}: one line says how it ended: {line!r}",
            "\n".join(ends) + "\n" + r.describe())
    # The registers go to stderr with an emulation failure.
    r = boot(guest("exits"), "--append", "exit=internal")
    tap(r.status == INTERNAL and re.search(r"(?i)rip", r.err) is not None,
        "exits.elf exit=internal: the vCPU registers are printed on stderr", r.describe())


def group_decompress():
    for comp in COMPRESSORS:
        k = os.path.join(GUEST_DIR, f"hello-{comp}.bzImage")
        if not os.path.exists(k):
            skip(f"hello-{comp}.bzImage", f"not built (no {comp} program)")
            continue
        r = boot(k)
        check(r, f"hello-{comp}.bzImage: payload decompressed on the host, PVH entry",
              entry="pvh", want=["hello from the bootvm test guest"])
        r = boot(k, "--no-host-decompress")
        check(r, f"hello-{comp}.bzImage --no-host-decompress: 64-bit entry", entry="linux64",
              want=["hello from the bootvm test guest"])
    # A payload bootvm cannot decompress is an error, unless the guest is to do it.
    with tempfile.TemporaryDirectory(prefix="bootvm-e2e-") as tmp:
        k = corrupt_payload(tmp)
        r = boot(k, "--no-host-decompress")
        check(r, "hello-gzip.bzImage with a corrupt payload --no-host-decompress: 64-bit entry "
              "(the payload is never read)", entry="linux64",
              want=["hello from the bootvm test guest"])
    # A bzImage without a payload always takes the 64-bit entry.
    check(boot(guest("hello", "bzImage")), "hello.bzImage (no payload): 64-bit entry",
          entry="linux64", want=["hello from the bootvm test guest"])


def corrupt_payload(tmp):
    """hello-gzip.bzImage with bytes in the middle of its payload flipped."""
    d = bytearray(open(guest("hello-gzip", "bzImage"), "rb").read())
    off, length = struct.unpack_from("<II", d, 0x248)
    base = (d[0x1f1] + 1) * 512 + off
    for i in range(length // 3, length // 3 + 200):
        d[base + i] ^= 0x5a
    path = os.path.join(tmp, "corrupt-gzip.bzImage")
    with open(path, "wb") as f:
        f.write(d)
    return path


def read_until(p, pattern, deadline):
    """Read p.stdout until `pattern` (bytes) shows up or the deadline passes."""
    buf = b""
    while pattern not in buf and time.monotonic() < deadline:
        ready, _, _ = select.select([p.stdout], [], [], max(0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
    return buf


def group_echo():
    for form, k, entry in both_forms("echo"):
        # All input at once, stdin closed right away: bytes wait in the UART.
        r = boot(k, input=b"abcq")
        check(r, f"echo.{form}: 'abcq' on a pipe echoes ABC through IRQ 4, then powers off",
              entry=entry, want=["echo: ready", "ABC", re.compile(r"echo: bye \(\d+ interrupts\)")])

        # Interactive: type after the guest is waiting in hlt.
        args = ["--console", "stdio", "--kernel", k]
        p, t0 = start(args)
        deadline = t0 + RUN_TIMEOUT
        out = b""
        try:
            out += read_until(p, b"echo: ready", deadline)
            p.stdin.write(b"hello, ")
            p.stdin.flush()
            out += read_until(p, b"HELLO, ", deadline)
            p.stdin.write(b"world\n")
            p.stdin.flush()
            out += read_until(p, b"WORLD", deadline)
        except BrokenPipeError:
            pass
        r = finish(p, args, t0, out, input=b"q", timeout=max(1, deadline - time.monotonic()))
        check(r, f"echo.{form}: keys typed while the guest waits come back uppercased",
              entry=entry, want=["echo: ready", "HELLO, WORLD",
                                 re.compile(r"echo: bye \(\d+ interrupts\)")])


def group_terminal():
    """The echo guest on a pseudo-terminal: raw keys, Ctrl-A escapes, signals."""
    import pty
    import signal
    import termios

    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        args = ["--console", "stdio", "--kernel", guest("echo")]
        p, t0 = start(args, stdin=slave, stdout=slave)
        deadline = t0 + RUN_TIMEOUT

        def read_pty(pattern):
            buf = b""
            while pattern not in buf and time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], max(0, deadline - time.monotonic()))
                if not ready:
                    break
                try:
                    buf += os.read(master, 4096)
                except OSError:
                    break
            return buf

        out = read_pty(b"echo: ready")
        os.write(master, b"tty\r")           # raw mode: no line buffering, CR stays CR
        out += read_pty(b"TTY\r")
        os.write(master, b"\x01\x01")        # Ctrl-A Ctrl-A sends one Ctrl-A
        out += read_pty(b"\x01")
        os.write(master, b"\x01x")            # Ctrl-A x quits
        r = finish(p, args, t0, out, timeout=max(1, deadline - time.monotonic()))
        tap(b"TTY\r" in out, "echo.elf on a terminal: keys arrive raw (no line buffering)",
            r.describe())
        tap(out.count(b"\x01") == 1, "echo.elf on a terminal: Ctrl-A Ctrl-A sends one Ctrl-A",
            r.describe())
        tap(r.status == 7, "echo.elf on a terminal: Ctrl-A x quits with exit status 7",
            r.describe())
        after = termios.tcgetattr(slave)
        tap(after == before, "the terminal's settings are restored after bootvm exits",
            f"before {before}\nafter  {after}")
    finally:
        os.close(master)
        os.close(slave)

    for sig, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        args = ["--console", "stdio", "-v", "--kernel", guest("echo")]
        p, t0 = start(args)
        out = read_until(p, b"echo: ready", t0 + RUN_TIMEOUT)
        p.send_signal(sig)
        r = finish(p, args, t0, out)
        said = [l for l in r.err.splitlines() if "killed by a signal" in l]
        tap(r.status == status and len(said) == 1 and f"exit status {status}" in said[0],
            f"{sig.name} while the guest waits: exit status {status}, said once on stderr",
            r.describe())

    # Started with stdin closed: the signals still stop it (stdin is not bootvm's signalfd).
    args = ["--console", "stdio", "--kernel", guest("echo")]
    t0 = time.monotonic()
    p = subprocess.Popen([BOOTVM, "run", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=lambda: os.close(0))
    out = read_until(p, b"echo: ready", t0 + RUN_TIMEOUT)
    p.send_signal(signal.SIGTERM)
    r = finish(p, args, t0, out, timeout=10)
    tap(r.status == 143 and b"\0" not in r.raw,
        "SIGTERM to bootvm started with stdin closed: exit status 143, no bytes fed to the guest",
        r.describe())

    # A signal pending before the VM is set up stops it before the kernel is even loaded.
    def signal_pending():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        os.kill(os.getpid(), signal.SIGTERM)

    args = ["--console", "stdio", "-v", "--kernel", guest("hello")]
    t0 = time.monotonic()
    p = subprocess.Popen([BOOTVM, "run", *args], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=signal_pending)
    r = finish(p, args, t0)
    tap(r.status == 143 and not r.out and r.err.splitlines() ==
        ["bootvm: warning: killed by a signal (signal Terminated; exit status 143)"],
        "SIGTERM during set-up: exit status 143 before the kernel is loaded, the guest never runs",
        r.describe())

    # A signal once the guest has powered off, while its output drains into a full
    # pipe: the guest's status stands, and bootvm exits rather than being killed.
    for sig in (signal.SIGTERM, signal.SIGQUIT):
        rfd, wfd = os.pipe()
        os.set_blocking(wfd, False)
        try:
            while True:
                os.write(wfd, b"x" * 4096)
        except BlockingIOError:
            pass
        args = ["--console", "stdio", "--kernel", guest("echo")]
        p, t0 = start(args, stdout=wfd)
        os.close(wfd)
        deadline = t0 + RUN_TIMEOUT

        def vcpu_running():
            try:
                return any(open(f"/proc/{p.pid}/task/{t}/comm").read().strip() == "vcpu0"
                           for t in os.listdir(f"/proc/{p.pid}/task"))
            except OSError:
                return False

        while not vcpu_running() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        p.stdin.write(b"q")                  # the echo guest powers off
        p.stdin.flush()
        while vcpu_running() and time.monotonic() < deadline:
            time.sleep(0.002)
        p.send_signal(sig)
        r = finish(p, args, t0)
        os.close(rfd)
        tap(r.status == POWEROFF and "killed" not in r.err,
            f"{sig.name} while the output of a powered-off guest drains: exit status 0, "
            "not killed by the signal", r.describe())


def group_power():
    """The ACPI power button: --shutdown-grace, signals, Ctrl-A p (tests/guest/power.c)."""
    import pty
    import signal

    def signalled(form="elf", append="", grace=None, sig=signal.SIGTERM, then=None,
                  extra=(), wait_for=b"power: ready"):
        """Boot power.FORM, send `sig` once it is ready (and `then` after the guest saw the
        press); the Run and the seconds from the (last) signal to bootvm's exit."""
        args = ["--console", "stdio", "--kernel", guest("power", form), *extra]
        if append:
            args += ["--append", append]
        if grace is not None:
            args += ["--shutdown-grace", str(grace)]
        p, t0 = start(args)
        out = read_until(p, wait_for, t0 + RUN_TIMEOUT)
        t_sig = time.monotonic()
        p.send_signal(sig)
        if then is not None:
            out += read_until(p, b"power: button pressed", t0 + RUN_TIMEOUT)
            t_sig = time.monotonic()
            p.send_signal(then)
        r = finish(p, args, t0, out, timeout=RUN_TIMEOUT + (grace or 0))
        return r, time.monotonic() - t_sig

    pressed = re.compile(r"power: button pressed sts=0x100 en=0x100 after-clear=0x0")
    # One button event, and at most one SCI that found no status bit: the irqchip may deliver
    # the level SCI once more after the guest cleared PWRBTN_STS (kvm_pvm's LAPIC keeps the
    # vector set in its IRR after delivering it; ~1 boot in 1000 under load, with PM1_STS 0,
    # while bootvm raised and dropped the line once). A second press would be events=2.
    bye = re.compile(r"power: bye events=1 spurious=[01]")
    for form, k, entry in both_forms("power"):
        r, secs = signalled(form, grace=10)
        check(r, f"power.{form} --shutdown-grace 10: SIGTERM presses the button, the guest takes "
              "the SCI (GSI 9 level/high), clears PWRBTN_STS by writing 1 and powers off: exit 0, "
              "stderr empty", entry=entry,
              want=["power: fadt flags=0x465 button=fixed sci=9 pm1a_evt=0x600 len=4; "
                    "override gsi=9 flags=0xd (level, active high)", "power: ready", pressed,
                    bye])
        tap(r.status == POWEROFF and secs < 5, f"power.{form}: powered off {secs:.2f} s after "
            "the signal (well inside the grace)", r.describe())

    r, _ = signalled(grace=10, sig=signal.SIGINT, extra=["-v"])
    check(r, "power.elf --shutdown-grace 10 -v: SIGINT presses the button too: exit 0",
          want=[pressed, bye], quiet=False)
    said = [l for l in r.err.splitlines() if "pressed the ACPI power button" in l]
    tap(len(said) == 1 and "signal Interrupt" in said[0] and "up to 10 s" in said[0]
        and "guest powered off" in r.err, "power.elf -v: one line says the button was pressed "
        "and how long bootvm waits, then that the guest powered off", r.describe())

    # The guest takes the SCI but does not power off: the grace runs out, then the signal's status.
    r, secs = signalled(append="ignore", grace=1.5)
    said = [l for l in r.err.splitlines() if "killed by a signal" in l]
    tap(r.status == 143 and "power: button pressed, ignored" in r.lines and 1.5 <= secs < 4.5
        and len(said) == 1 and "no power-off within 1.5 s" in said[0]
        and "exit status 143" in said[0],
        f"power.elf ignore --shutdown-grace 1.5: the guest saw the press; stopped {secs:.2f} s "
        "after SIGTERM (the grace, not before), exit status 143, said once on stderr",
        r.describe())

    r, secs = signalled(append="ignore", grace=1.5, sig=signal.SIGINT)
    tap(r.status == 130 and 1.5 <= secs < 4.5, f"power.elf ignore: SIGINT's grace runs out too: "
        f"exit status 130 after {secs:.2f} s", r.describe())

    # A second SIGTERM (or SIGINT) while the grace runs stops at once.
    for sig2, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        r, secs = signalled(append="ignore", grace=30, then=sig2)
        tap(r.status == status and secs < 3 and "during the shutdown grace" in r.err,
            f"power.elf ignore --shutdown-grace 30: a second signal ({sig2.name}) during the "
            f"grace stops it at once ({secs:.2f} s): exit status {status}", r.describe())

    # SIGHUP and SIGQUIT never wait.
    for sig, status in ((signal.SIGHUP, 129), (signal.SIGQUIT, 131)):
        r, secs = signalled(append="ignore", grace=30, sig=sig)
        tap(r.status == status and secs < 3 and "power: button pressed" not in r.out,
            f"power.elf --shutdown-grace 30: {sig.name} stops at once without pressing the "
            f"button: exit status {status} ({secs:.2f} s)", r.describe())

    # A guest that has not enabled the button would never react: no waiting.
    r, secs = signalled(append="no-enable", grace=30, wait_for=b"power: ready (button not enabled)")
    tap(r.status == 143 and secs < 3 and "has not enabled the power button" in r.err,
        f"power.elf no-enable --shutdown-grace 30: SIGTERM stops at once ({secs:.2f} s), "
        "exit status 143, stderr says the guest has not enabled the power button", r.describe())

    # Without --shutdown-grace nothing changes: SIGTERM stops at once, the button is not pressed.
    r, secs = signalled()
    tap(r.status == 143 and secs < 3 and "power: button pressed" not in r.out,
        f"power.elf without --shutdown-grace: SIGTERM stops at once ({secs:.2f} s) with 143, "
        "no press", r.describe())

    # Ctrl-A p on a terminal presses the button; the guest powers off.
    for append, status, name in (("", POWEROFF, "the guest powers off: exit 0"),
                                 ("no-enable", 7, "a guest that has not enabled the button: "
                                  "a warning says so, nothing happens (Ctrl-A x then quits)")):
        master, slave = pty.openpty()
        try:
            args = ["--console", "stdio", "--kernel", guest("power")] + \
                (["--append", append] if append else [])
            p, t0 = start(args, stdin=slave, stdout=slave)
            deadline = t0 + RUN_TIMEOUT
            buf = b""

            def read_pty(pattern):
                nonlocal buf
                while not re.search(pattern, buf) and time.monotonic() < deadline:
                    ready, _, _ = select.select([master], [], [], 0.2)
                    if not ready:
                        if p.poll() is not None:
                            break
                        continue
                    try:
                        buf += os.read(master, 4096)
                    except OSError:
                        break

            read_pty(re.escape(b"power: ready"))
            os.write(master, b"\x01p")
            if append:
                p_err = b""
                t_end = min(deadline, time.monotonic() + 3)
                while b"has not enabled" not in p_err and time.monotonic() < t_end:
                    ready, _, _ = select.select([p.stderr], [], [], 0.2)
                    if ready:
                        p_err += os.read(p.stderr.fileno(), 4096)
                os.write(master, b"\x01x")
            else:
                read_pty(rb"power: bye [^\n]*\n")
            r = finish(p, args, t0, timeout=max(1, deadline - time.monotonic()))
            r.err = (p_err.decode(errors="replace") if append else "") + r.err
            text = buf.decode(errors="replace")
            ok = r.status == status
            if append:
                ok = ok and "has not enabled the ACPI power button" in r.err
            else:
                ok = ok and any(bye.fullmatch(l.strip()) for l in text.splitlines())
            tap(ok, f"power.elf{(' ' + append) if append else ''} on a terminal: Ctrl-A p presses the button; {name}",
                r.describe() + "\n--- pty ---\n" + text)
        finally:
            os.close(master)
            os.close(slave)


def fifo(tmp):
    path = os.path.join(tmp, "console.fifo")
    if not os.path.exists(path):
        os.mkfifo(path)
    return path


def group_errors():
    with tempfile.TemporaryDirectory(prefix="bootvm-e2e-") as tmp:
        def path(name, data=None, size=None):
            p = os.path.join(tmp, name)
            with open(p, "wb") as f:
                if data is not None:
                    f.write(data)
                if size is not None:
                    f.truncate(size)
            return p

        bz = open(guest("hello", "bzImage"), "rb").read()
        hello = guest("hello")
        missing = os.path.join(tmp, "no-such-kernel")
        cases = [
            # (what, args, statuses, words the one stderr line must contain)
            ("missing kernel file", ["--kernel", missing], {ERROR}, [missing]),
            ("a directory as kernel", ["--kernel", tmp], {ERROR}, [tmp]),
            ("a bzImage cut inside its setup header",
             ["--kernel", path("cut-header.bzImage", bz[:0x220])], {ERROR}, ["cut-header"]),
            ("a bzImage cut after its setup sectors",
             ["--kernel", path("cut-pm.bzImage", bz[:1024 + 0x100])], {ERROR}, ["cut-pm"]),
            ("an ELF cut inside its segment",
             ["--kernel", path("cut.elf", open(hello, "rb").read()[:0x2000])], {ERROR},
             ["cut.elf"]),
            ("a bzImage whose gzip payload is corrupt (host decompression)",
             ["--kernel", corrupt_payload(tmp)], {ERROR}, ["corrupt-gzip", "gzip"]),
            ("a kernel of random bytes",
             ["--kernel", path("random.bin", random.Random(1).randbytes(65536))], {ERROR},
             ["random.bin"]),
            ("an empty kernel file", ["--kernel", path("empty.bin", b"")], {ERROR}, ["empty.bin"]),
            ("an initrd larger than RAM",
             ["--kernel", hello, "--memory", "16M", "--initrd", path("big.img", size=32 * MiB)],
             {ERROR}, ["big.img"]),
            ("a missing initrd", ["--kernel", hello, "--initrd", os.path.join(tmp, "nope.img")],
             {ERROR}, ["nope.img"]),
            ("a directory as initrd", ["--kernel", hello, "--initrd", tmp], {ERROR}, [tmp]),
            ("an empty initrd", ["--kernel", hello, "--initrd", path("empty.img", b"")], {ERROR},
             ["empty.img"]),
            ("--console file: in a missing directory",
             ["--kernel", hello, "--console", f"file:{tmp}/no/such/dir/log"], {ERROR},
             ["no/such/dir/log"]),
            ("--console file: a FIFO nobody reads (no waiting for ever)",
             ["--kernel", hello, "--console", f"file:{fifo(tmp)}"], {ERROR},
             ["console.fifo", "FIFO"]),
            ("a command line too long (ELF, 2048 bytes)",
             ["--kernel", hello, "--append", "x" * 2048], {ERROR}, ["command line"]),
            ("a command line too long (bzImage, 2048 bytes)",
             ["--kernel", guest("hello", "bzImage"), "--append", "x" * 2048], {ERROR},
             ["command line"]),
            ("--memory abc", ["--kernel", hello, "--memory", "abc"], {USAGE}, ["--memory"]),
            ("--memory 4M (below the minimum)", ["--kernel", hello, "--memory", "4M"], {USAGE},
             ["--memory"]),
            ("--memory 8193K (not whole pages)", ["--kernel", hello, "--memory", "8193K"], {USAGE},
             ["--memory"]),
            ("--memory -1", ["--kernel", hello, "--memory", "-1"], {USAGE}, ["--memory"]),
            ("--memory 64T (more than KVM maps in one slot)",
             ["--kernel", hello, "--memory", "64T"], {ERROR}, ["--memory", "64 TiB"]),
            ("--cpus 0", ["--kernel", hello, "--cpus", "0"], {USAGE}, ["--cpus"]),
            ("--cpus 256", ["--kernel", hello, "--cpus", "256"], {USAGE}, ["--cpus"]),
            ("--cpus two", ["--kernel", hello, "--cpus", "two"], {USAGE}, ["--cpus"]),
            ("--console tty", ["--kernel", hello, "--console", "tty"], {USAGE}, ["--console"]),
            ("--console file: (no path)", ["--kernel", hello, "--console", "file:"], {USAGE},
             ["--console"]),
            ("an unknown option", ["--kernel", hello, "--frobnicate"], {USAGE}, ["--frobnicate"]),
            ("an unknown short option in a group", ["-xv", "--kernel", hello], {USAGE},
             ["unknown option '-x'"]),
            ("a value for a flag", ["--kernel", hello, "--stats=1"], {USAGE},
             ["'--stats' takes no value"]),
            ("an option without its value", ["--kernel", hello, "--memory"], {USAGE}, ["--memory"]),
            ("no --kernel", ["--memory", "64M"], {USAGE}, ["--kernel"]),
            ("a stray argument", ["--kernel", hello, "extra"], {USAGE}, ["extra"]),
        ]
        for what, args, statuses, words in cases:
            r = bootvm(*args, timeout=10)
            lines = r.err.splitlines()
            problems = []
            if r.status not in statuses:
                problems.append(f"exit status {r.status}, expected {sorted(statuses)}")
            if len(lines) != 1 or not lines[0].startswith("bootvm: "):
                problems.append(f"{len(lines)} stderr lines, expected one 'bootvm: ...' line")
            elif not all(w in lines[0] for w in words):
                problems.append(f"the message does not name {words}")
            if r.out:
                problems.append("console output from a VM that should not have started")
            tap(not problems, f"error: {what} -> exit {'/'.join(map(str, sorted(statuses)))}, "
                f"one message", "\n".join(problems) + "\n" + r.describe())


def group_bzimage():
    """The bzImages themselves (no bootvm): header fields and payloads."""
    hello = open(guest("hello"), "rb").read()
    off, filesz, _ = elf_load(guest("hello"))
    for name in ["hello"] + [f"hello-{c}" for c in COMPRESSORS]:
        p = os.path.join(GUEST_DIR, f"{name}.bzImage")
        if not os.path.exists(p):
            skip(f"{name}.bzImage header", "not built")
            continue
        d = open(p, "rb").read()
        setup_sects = d[0x1f1] or 4
        pm = d[(setup_sects + 1) * 512:]
        (syssize,) = struct.unpack_from("<I", d, 0x1f4)
        (boot_flag,) = struct.unpack_from("<H", d, 0x1fe)
        version, = struct.unpack_from("<H", d, 0x206)
        loadflags = d[0x211]
        initrd_max, align, reloc, _minalign, xlf, cmdsize = struct.unpack_from("<IIBBHI", d, 0x22c)
        payload_off, payload_len = struct.unpack_from("<II", d, 0x248)
        pref, init_size = struct.unpack_from("<QI", d, 0x258)
        kinfo, = struct.unpack_from("<I", d, 0x268)
        problems = []
        if d[0x202:0x206] != b"HdrS" or boot_flag != 0xaa55 or version != 0x020f:
            problems.append("magic/version")
        if syssize * 16 != len(pm):
            problems.append(f"syssize {syssize} vs {len(pm)} bytes")
        if loadflags & 1 != 1 or xlf & 3 != 3 or reloc or pref != KERNEL_ADDR:
            problems.append("loadflags/xloadflags/relocatable/pref_address")
        if initrd_max != BZ_INITRD_ADDR_MAX or cmdsize != 2047 or align == 0:
            problems.append("initrd_addr_max/cmdline_size/kernel_alignment")
        if init_size < len(pm) or init_size % 4096:
            problems.append(f"init_size 0x{init_size:x}")
        if pm[kinfo:kinfo + 4] != b"LToP":
            problems.append("kernel_info")
        if pm[:filesz] != hello[off:off + filesz]:
            problems.append("the protected-mode part is not hello.elf's image")
        payload = pm[payload_off:payload_off + payload_len]
        comp = name.partition("-")[2]
        if not comp:
            if payload_len:
                problems.append("a payload in the plain bzImage")
        elif comp != "gzip" and struct.unpack("<I", payload[-4:])[0] != len(hello):
            problems.append("size_append")
        elif comp == "gzip" and gzip.decompress(payload) != hello:
            problems.append("gzip payload is not hello.elf")
        elif comp == "xz" and lzma.decompress(payload[:-4], format=lzma.FORMAT_XZ) != hello:
            problems.append("xz payload is not hello.elf")
        elif comp == "lzma" and lzma.decompress(payload[:-4], format=lzma.FORMAT_ALONE) != hello:
            problems.append("lzma payload is not hello.elf")
        elif comp == "lz4" and payload[:4] != b"\x02\x21\x4c\x18":
            problems.append("not lz4 legacy format")
        elif comp == "zstd" and payload[:4] != b"\x28\xb5\x2f\xfd":
            problems.append("not zstd")
        tap(not problems, f"{name}.bzImage: setup header (2.15) and payload as Linux builds them",
            "\n".join(problems))


# ---------------------------------------------------------------------------
# virtio: the virtio and virtio_hostile guests with --disk and --rng.

SECTOR = 512
VIRTIO_VENDOR = 0x1af4
VIRTIO_BLK, VIRTIO_RNG = 0x1042, 0x1044
SANITIZER = re.compile(r"AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer|runtime error:")


def disk_image(path, sectors, seed):
    """An image whose every sector is different and known: SHA-256 of (seed, sector) × 16."""
    import hashlib
    data = b"".join(hashlib.sha256(f"{seed}:{s}".encode()).digest() * (SECTOR // 32)
                    for s in range(sectors))
    with open(path, "wb") as f:
        f.write(data)
    return data


def write_pattern(sector):
    """What the virtio guest writes to `sector` (pattern() in tests/guest/virtio.c)."""
    return bytes((i * 31 + sector * 7 + 0x5a) & 0xff for i in range(SECTOR))


PCI_LINE = re.compile(r"pci: 00:([0-9a-f]{2})\.(\d) ([0-9a-f]{4}):([0-9a-f]{4}) class ([0-9a-f]{6}) "
                      r"header ([0-9a-f]{2})")
BLK_ID = re.compile(r"virtio: blk 00:([0-9a-f]{2})\.\d id=(.*) capacity=(\d+) ro=([01]) ok")
BLK_SECTOR = re.compile(r"virtio: blk 00:([0-9a-f]{2})\.\d sector (\d+) hex=([0-9a-f]{32}) "
                        r"sum=0x([0-9a-f]+)")
MSIX = re.compile(r"virtio: msix interrupts=(\d+) completions=(\d+) without-irq=(\d+)")
RNG = re.compile(r"virtio: rng 32 bytes ([0-9a-f]{64})")


def parse_virtio(r):
    """{'pci': [(slot, vendor, device, class)], 'blk': {slot: {...}}, ...} from the guest's lines."""
    info = {"pci": [], "blk": {}, "rng": None, "msix": None}
    for line in r.lines:
        if (m := PCI_LINE.fullmatch(line)):
            info["pci"].append((int(m[1], 16), int(m[3], 16), int(m[4], 16), int(m[5], 16)))
        elif (m := BLK_ID.fullmatch(line)):
            info["blk"].setdefault(int(m[1], 16), {"sectors": {}}).update(
                id=m[2], capacity=int(m[3]), ro=m[4] == "1")
        elif (m := BLK_SECTOR.fullmatch(line)):
            info["blk"].setdefault(int(m[1], 16), {"sectors": {}})["sectors"][int(m[2])] = (
                bytes.fromhex(m[3]), int(m[4], 16))
        elif (m := re.fullmatch(r"virtio: blk 00:([0-9a-f]{2})\.\d (write\+flush ok sector=\d+|"
                                r"write status=\w+|read past the end status=\w+)", line)):
            info["blk"].setdefault(int(m[1], 16), {"sectors": {}}).setdefault("lines", []).append(m[2])
        elif (m := RNG.fullmatch(line)):
            info["rng"] = bytes.fromhex(m[1])
        elif (m := MSIX.fullmatch(line)):
            info["msix"] = tuple(int(x) for x in m.groups())
    return info


def sectors_match(blk, image):
    """The guest's hex and sum of sectors 0-3 against the image; a list of problems."""
    problems = []
    for s in range(4):
        got = blk["sectors"].get(s)
        want = image[s * SECTOR:(s + 1) * SECTOR]
        if got is None:
            problems.append(f"no line for sector {s}")
        elif got != (want[:16], sum(want) & 0xffffffff):
            problems.append(f"sector {s}: guest {got[0].hex()} sum 0x{got[1]:x}, image "
                            f"{want[:16].hex()} sum 0x{sum(want):x}")
    return problems


def group_virtio():
    with tempfile.TemporaryDirectory(prefix="bootvm-e2e-") as tmp:
        rw_id, ro_id = "bootvm-rw-0001", "ABCDEFGHIJKLMNOPQRST"   # the second fills all 20 bytes
        for form, k, entry, append, sector in (
                ("elf", guest("virtio"), "pvh", "", 7),
                ("elf", guest("virtio"), "pvh", "event_idx sector=1000", 1000),
                ("bzImage", guest("virtio", "bzImage"), "linux64", "sector=2047", 2047)):
            cpus = ["--cpus", "2"] if form == "bzImage" else []     # then each disk has 2 queues
            rw, ro = os.path.join(tmp, "rw.img"), os.path.join(tmp, "ro.img")
            rw_data = disk_image(rw, 2048, "rw")              # 1 MiB
            ro_data = disk_image(ro, 128, "ro")               # 64 KiB
            what = f"virtio.{form}" + (f" --append '{append}'" if append else "") + \
                (" --cpus 2" if cpus else "")
            r = boot(k, "--disk", f"{rw},id={rw_id}", "--disk", f"{ro},ro=on,id={ro_id}", "--rng",
                     *(["--append", append] if append else []), *cpus)
            check(r, f"{what}: two disks and an rng, everything the guest checks passes, powers off",
                  entry=entry, want=["virtio: all ok", re.compile(r"pci: \d+ functions, 0xcf8 agrees")],
                  absent=["FAIL"])
            info = parse_virtio(r)
            pci = info["pci"]
            tap(bool(pci) and pci[0][0] == 0 and pci[0][3] >> 8 == 0x0600
                and sum(1 for p in pci if p[1:3] == (VIRTIO_VENDOR, VIRTIO_BLK)) == 2
                and sum(1 for p in pci if p[1:3] == (VIRTIO_VENDOR, VIRTIO_RNG)) == 1,
                f"{what}: ECAM shows the host bridge at 00:00.0, two virtio-blk (1af4:1042) and "
                f"one virtio-rng (1af4:1044)", r.describe())
            disks = {d.get("id"): d for d in info["blk"].values()}
            drw, dro = disks.get(rw_id), disks.get(ro_id)
            tap(drw is not None and drw["capacity"] == 2048 and not drw["ro"],
                f"{what}: the read-write disk: GET_ID is id= ({rw_id}), capacity 2048 sectors, "
                "not VIRTIO_BLK_F_RO", r.describe())
            tap(dro is not None and dro["capacity"] == 128 and dro["ro"],
                f"{what}: the ro=on disk: GET_ID gives all 20 bytes of id=, capacity 128, "
                "VIRTIO_BLK_F_RO", r.describe())
            problems = (sectors_match(drw, rw_data) if drw else ["no rw disk"]) + \
                (sectors_match(dro, ro_data) if dro else ["no ro disk"])
            tap(not problems, f"{what}: sectors 0-3 read by the guest (indirect descriptors) "
                "are the images' bytes", "\n".join(problems) + "\n" + r.describe())
            tap(drw is not None and dro is not None
                and "read past the end status=IOERR" in drw.get("lines", [])
                and "read past the end status=IOERR" in dro.get("lines", []),
                f"{what}: a read at the capacity is IOERR", r.describe())
            after = open(rw, "rb").read()
            want = bytearray(rw_data)
            want[sector * SECTOR:(sector + 1) * SECTOR] = write_pattern(sector)
            tap(drw is not None and f"write+flush ok sector={sector}" in drw.get("lines", [])
                and after == bytes(want),
                f"{what}: write + FLUSH of sector {sector}: read back in the guest, in the image "
                "file after bootvm exits, nothing else changed",
                f"image {'unchanged' if after == rw_data else 'differs'}\n" + r.describe())
            tap(dro is not None and "write status=IOERR" in dro.get("lines", [])
                and open(ro, "rb").read() == ro_data,
                f"{what}: a write to the ro=on disk is IOERR and the image is unchanged",
                r.describe())
            tap(info["rng"] is not None and any(info["rng"]),
                f"{what}: virtio-rng gives 32 bytes, not all zero", r.describe())
            m = info["msix"]
            tap(m is not None and m[1] >= 10 and m[2] == 0 and m[0] >= m[1],
                f"{what}: every completion came with its MSI-X interrupt", r.describe())
            tap(any(re.fullmatch(r"virtio: blk BAR\d moved 0x[0-9a-f]+ -> 0xc8000000", l)
                    for l in r.lines),
                f"{what}: the guest moved a blk BAR into the 32-bit window and the device "
                "answers there", r.describe())

        # No devices asked for: only the host bridge, and the guest still powers off.
        r = boot(guest("virtio"))
        info = parse_virtio(r)
        tap(r.status == POWEROFF and len(info["pci"]) == 1 and info["pci"][0][0] == 0
            and "virtio: all ok" in r.lines, "virtio.elf without --disk/--rng: only the host "
            "bridge on bus 0", r.describe())


# Each case of virtio_hostile, in its order, and words of the reason bootvm gives for it.
HOSTILE = (("descriptor-loop", "longer than the queue"), ("head-out-of-range", "head out of range"),
           ("next-out-of-range", "next out of range"), ("indirect-len-not-16n", "multiple of 16"),
           ("indirect-nested", "nested"), ("indirect-table-outside-ram", "indirect table outside"),
           ("buffer-outside-ram", "outside guest ram"), ("buffer-crossing-ram-end", "outside guest ram"),
           ("buffer-address-wraps", "outside guest ram"), ("avail-idx-jump", "ahead"),
           ("no-status-byte", "status"), ("writable-before-readable", "readable buffer after"),
           ("rings-outside-ram", "ring area outside"))
HOSTILE_CASES = tuple(c for c, _ in HOSTILE)


def group_virtio_hostile():
    with tempfile.TemporaryDirectory(prefix="bootvm-e2e-") as tmp:
        img = os.path.join(tmp, "disk.img")
        for form, k, entry, mem in (("elf", guest("virtio_hostile"), "pvh", "512M"),
                                    ("bzImage", guest("virtio_hostile", "bzImage"), "linux64", "4G")):
            data = disk_image(img, 2048, "hostile")
            r = boot(k, "--memory", mem, "--disk", img, "--rng")
            what = f"virtio_hostile.{form} --memory {mem}"
            check(r, f"{what}: malformed rings, then blk and rng still serve; powers off (0)",
                  entry=entry, want=["hostile: all survived"], absent=["FAIL"], quiet=False)
            for case in HOSTILE_CASES:
                tap(any(re.fullmatch(rf"hostile: {case}: needs-reset config-irq=[1-9]\d*", l)
                        for l in r.lines),
                    f"{what}: {case} -> DEVICE_NEEDS_RESET with a config interrupt, reset works",
                    r.describe())
            m = re.search(r"^hostile: blk read ok hex=([0-9a-f]{32}) sum=0x([0-9a-f]+)$", r.out, re.M)
            tap(m is not None and bytes.fromhex(m[1]) == data[:16]
                and int(m[2], 16) == sum(data[:SECTOR]),
                f"{what}: after the reset a good read returns sector 0", r.describe())
            tap(re.search(r"^hostile: rng 32 bytes [0-9a-f]{64}$", r.out, re.M) is not None,
                f"{what}: virtio-rng kept working", r.describe())
            tap(r.status is not None and r.status >= 0 and not SANITIZER.search(r.err)
                and open(img, "rb").read() == data,
                f"{what}: bootvm not killed, no sanitizer report, the image untouched",
                r.describe())
            lines = r.err.splitlines()
            tap(len(lines) <= 2 * len(HOSTILE_CASES),
                f"{what}: stderr stays short ({len(lines)} lines: at most a line or two per "
                "malformed ring)", r.describe())

        # With -vv bootvm says why each time: every case trips its own check, in order.
        disk_image(img, 2048, "hostile")
        r = boot(guest("virtio_hostile"), "-vv", "--disk", img, "--rng")
        reasons = [l.lower() for l in r.err.splitlines() if "the device needs a reset" in l]
        tap(r.status == POWEROFF and len(reasons) == len(HOSTILE)
            and all(w in l for (_, w), l in zip(HOSTILE, reasons)),
            "virtio_hostile.elf -vv: each malformed ring is refused for its own reason: "
            + ", ".join(w for _, w in HOSTILE), r.describe())


def group_disk():
    """--disk errors on the host, and image locking between bootvm processes."""
    import fcntl
    with tempfile.TemporaryDirectory(prefix="bootvm-e2e-") as tmp:
        hello = guest("hello")
        img = os.path.join(tmp, "disk.img")
        disk_image(img, 64, "lock")
        odd = os.path.join(tmp, "odd.img")
        with open(odd, "wb") as f:
            f.write(b"\0" * 1000)
        missing = os.path.join(tmp, "missing.img")
        cases = [
            ("--disk with a missing file", [f"{missing}"], {ERROR}, ["missing.img"]),
            ("--disk with a directory", [tmp], {ERROR}, [tmp]),
            ("--disk with a 1000-byte image (not a multiple of 512)", [odd], {ERROR},
             ["odd.img", "512"]),
            ("--disk x,foo=bar (unknown option)", [f"{img},foo=bar"], {USAGE}, ["foo"]),
            ("--disk x,ro=maybe", [f"{img},ro=maybe"], {USAGE}, ["ro"]),
            ("--disk with no path", [",ro=on"], {USAGE}, ["--disk"]),
            ("--disk x,id= longer than 20 bytes", [f"{img},id={'x' * 21}"], {USAGE}, ["id"]),
        ]
        for what, disk, statuses, words in cases:
            r = bootvm("--console", "stdio", "--kernel", hello, "--disk", *disk, timeout=10)
            lines = r.err.splitlines()
            tap(r.status in statuses and len(lines) == 1 and lines[0].startswith("bootvm: ")
                and all(w in lines[0] for w in words) and not r.out,
                f"error: {what} -> exit {'/'.join(map(str, sorted(statuses)))}, one message "
                f"naming {words}", r.describe())

        def holder(opts):
            """An echo guest holding img (it waits for 'q'): the process and its start."""
            args = ["--console", "stdio", "--kernel", guest("echo"), "--disk", img + opts]
            p, t0 = start(args)
            read_until(p, b"echo: ready", t0 + RUN_TIMEOUT)
            return p, args, t0

        def second(opts):
            return boot(hello, "--disk", img + opts, timeout=10)

        def refused(r):
            lines = r.err.splitlines()
            return (r.status == ERROR and len(lines) == 1 and "lock" in lines[0].lower()
                    and "disk.img" in lines[0] and not r.out)

        p, args, t0 = holder("")
        try:
            r = second("")
            tap(refused(r), "a second bootvm cannot open read-write an image another has "
                "read-write: exit 1, one line saying it is locked", r.describe())
            r = second(",ro=on")
            tap(refused(r), "nor read-only (the writer excludes every other user)", r.describe())
        finally:
            h = finish(p, args, t0, input=b"q")
        tap(h.status == POWEROFF, "the holder itself ran and powered off", h.describe())
        r = second("")
        tap(r.status == POWEROFF, "once the holder exits, the image opens read-write", r.describe())

        p, args, t0 = holder(",ro=on")
        try:
            r = second(",ro=on")
            tap(r.status == POWEROFF and not r.err,
                "two bootvm share an image read-only", r.describe())
            r = second("")
            tap(refused(r), "a read-write open of an image others have read-only is refused",
                r.describe())
        finally:
            h = finish(p, args, t0, input=b"q")
        tap(h.status == POWEROFF, "the read-only holder ran and powered off", h.describe())

        # Another program's OFD write lock on the whole file (as QEMU's locks are OFD locks).
        fd = os.open(img, os.O_RDWR)
        try:
            lk = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, lk)
            for opts, mode in (("", "read-write"), (",ro=on", "read-only")):
                r = second(opts)
                tap(refused(r), f"an image another program holds an OFD write lock on is "
                    f"refused {mode}", r.describe())
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------
# Networking: the net and net_hostile guests under --net user (libslirp).

GUEST_UDP, GUEST_TCP = 7777, 2222
LEASE = "net: dhcp lease 10.0.2.15 router 10.0.2.2 dns 10.0.2.3"
NET_TIMEOUT = max(RUN_TIMEOUT, 40)
STATS_LINES = 40        # what --stats may print, at most


def net_supported():
    """Whether this bootvm takes --net (it comes with the board's virtio-net)."""
    try:
        p = subprocess.run([BOOTVM, "run", "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return re.search(r"^\s*--net\b", p.stdout + p.stderr, re.M) is not None


def free_port(kind):
    """A host port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_echo(port, payload, tries=3):
    """Send payload to 127.0.0.1:port, the reply (None if none came, after a few tries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        for _ in range(tries):
            s.sendto(payload, ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(65536)
                return data
            except socket.timeout:
                continue
    return None


def tcp_echo(port, payload, timeout=15):
    """
    Connect to 127.0.0.1:port, send payload, read it back, half-close and read
    until EOF: (what came back before the half-close, what came after it, error).
    """
    echo, after, err = b"", b"", None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(payload)
            deadline = time.monotonic() + timeout
            while len(echo) < len(payload) and time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                echo += chunk
            s.shutdown(socket.SHUT_WR)
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                after += chunk
            else:
                err = "no EOF from the guest"
    except OSError as e:
        err = f"{type(e).__name__}: {e}"
    return echo, after, err


def hostfwd(tcp=None, udp=None, guest_tcp=GUEST_TCP, guest_udp=GUEST_UDP):
    spec = "user"
    if tcp:
        spec += f",hostfwd=tcp::{tcp}-:{guest_tcp}"
    if udp:
        spec += f",hostfwd=udp::{udp}-:{guest_udp}"
    return spec


def net_start(kernel, spec, append):
    args = ["--console", "stdio", "--kernel", kernel, "--net", spec, "--append", append]
    p, t0 = start(args, stdin=subprocess.DEVNULL)
    return p, args, t0


def group_net():
    if not net_supported():
        skip("net guest under --net user", "this bootvm has no --net option (virtio-net not wired yet)")
        return
    rnd = random.Random(8)
    for form, k, entry, append in (("elf", guest("net"), "pvh", ""),
                                   ("bzImage", guest("net", "bzImage"), "linux64", " no-mrg")):
        what = f"net.{form}" + (" (no MRG_RXBUF)" if append else "")
        tcp, udp = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
        p, args, t0 = net_start(k, hostfwd(tcp, udp),
                                f"udp={GUEST_UDP} tcp={GUEST_TCP} count=2" + append)
        try:
            out = read_until(p, b"net: ready", t0 + NET_TIMEOUT)
            text = out.decode(errors="replace").replace("\r\n", "\n")
            ready = "net: ready" in text
            tap(ready and LEASE in text.splitlines(), f"{what}: DHCP lease 10.0.2.15, router 10.0.2.2, "
                "DNS 10.0.2.3; the guest is ready", text)
            results = {}
            if ready:
                small, big = b"ping " + rnd.randbytes(59), rnd.randbytes(1400)
                results["udp"] = [(d, udp_echo(udp, d)) for d in (small, big)]
                data = rnd.randbytes(65536)     # 8 times the guest's window
                results["tcp1"] = (data, *tcp_echo(tcp, data))
                results["tcp2"] = (b"bye\n", *tcp_echo(tcp, b"bye\n"))
        finally:
            r = finish(p, args, t0, out=out, timeout=NET_TIMEOUT)
        check(r, f"{what}: DHCP, ARP, echoes, then powers off (0) when both connections closed",
              entry=entry, want=[LEASE, "net: all ok", "net: arp 10.0.2.2 is at 52:55:0a:00:02:02",
                                 re.compile(r"net: udp echoed 64 bytes to 10\.0\.2\.2:\d+"),
                                 re.compile(r"net: udp echoed 1400 bytes to 10\.0\.2\.2:\d+"),
                                 "net: tcp connection closed, echoed 65536 bytes",
                                 "net: tcp connection closed, echoed 4 bytes"],
              absent=["FAIL"])
        if not results:
            tap(False, f"{what}: host clients (the guest never got ready)", r.describe())
            continue
        for sent, got in results["udp"]:
            tap(got == sent, f"{what}: a {len(sent)}-byte UDP datagram to 127.0.0.1:{udp} comes back "
                f"from guest port {GUEST_UDP}",
                f"got {None if got is None else len(got)} bytes\n" + r.describe())
        for key in ("tcp1", "tcp2"):
            sent, echo, after, err = results[key]
            tap(err is None and echo == sent and after == b"",
                f"{what}: {len(sent)} bytes over TCP to 127.0.0.1:{tcp} come back byte for byte, "
                "and the guest closes after our FIN",
                f"error {err}; echoed {len(echo)} bytes (equal: {echo == sent}), "
                f"{len(after)} after the half-close\n" + r.describe())
        m = re.search(r"^net: done rx=(\d+) tx=(\d+) bad=(\d+) arp-answered=(\d+)", r.out, re.M)
        tap(m is not None and int(m[3]) == 0,
            f"{what}: every frame the guest received had good IP, UDP and TCP checksums",
            r.describe())

    # Host-side errors, before the guest runs.
    hello = guest("hello")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = bootvm("--console", "stdio", "--kernel", hello, "--net", f"user,hostfwd=tcp::{port}-:22",
                   timeout=10)
    lines = r.err.splitlines()
    tap(r.status == ERROR and len(lines) == 1 and str(port) in lines[0] and "entry=" not in r.out,
        f"--net user,hostfwd=tcp::PORT-:22 with PORT taken -> exit 1 before the guest runs, one line "
        "naming the port", r.describe())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        r = bootvm("--console", "stdio", "--kernel", hello, "--net", f"user,hostfwd=udp::{port}-:7",
                   timeout=10)
    lines = r.err.splitlines()
    tap(r.status == ERROR and len(lines) == 1 and str(port) in lines[0] and "entry=" not in r.out,
        "--net user,hostfwd=udp::PORT-:7 with the UDP port taken -> exit 1, one line naming the port",
        r.describe())
    for spec, word in (("bogus", "bogus"), ("user,hostfwd=tcp::notaport-:22", "notaport"),
                       ("user,hostfwd=sctp::5555-:22", "sctp"), ("user,frobnicate=1", "frobnicate")):
        r = bootvm("--console", "stdio", "--kernel", hello, "--net", spec, timeout=10)
        lines = r.err.splitlines()
        tap(r.status == USAGE and len(lines) == 1 and word in lines[0] and not r.out,
            f"--net {spec} -> exit 2, one line naming {word!r}", r.describe())
    # Without --net the machine has no network device, and the guest says so.
    r = boot(guest("net"))
    check(r, "net.elf without --net: no virtio-net function on bus 0, powers off (0)",
          entry="pvh", want=["net: FAIL no virtio-net device"])


def have_passt():
    return shutil.which("passt") is not None


def group_net_passt():
    """The net guest under --net passt: the same addresses as --net user (DNS aside),
    echoes through hostfwd; the bzImage form without MRG_RXBUF."""
    if not net_supported():
        skip("net guest under --net passt", "this bootvm has no --net option")
        return
    if not have_passt():
        skip("net guest under --net passt", "no passt in PATH (install Debian's passt)")
        return
    rnd = random.Random(9)
    lease = re.compile(r"net: dhcp lease 10\.0\.2\.15 router 10\.0\.2\.2 dns [\d.]+")
    for form, k, entry, append in (("elf", guest("net"), "pvh", ""),
                                   ("bzImage", guest("net", "bzImage"), "linux64", " no-mrg")):
        what = f"net.{form} --net passt" + (" (no MRG_RXBUF)" if append else "")
        tcp, udp = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
        spec = hostfwd(tcp, udp).replace("user", "passt", 1)
        p, args, t0 = net_start(k, spec, f"udp={GUEST_UDP} tcp={GUEST_TCP} count=2" + append)
        results = {}
        try:
            out = read_until(p, b"net: ready", t0 + NET_TIMEOUT)
            text = out.decode(errors="replace").replace("\r\n", "\n")
            ready = "net: ready" in text
            tap(ready and any(lease.fullmatch(l) for l in text.splitlines()),
                f"{what}: DHCP lease 10.0.2.15, router 10.0.2.2 (passt given --net user's "
                "addresses); the guest is ready", text)
            if ready:
                small, big = b"ping " + rnd.randbytes(59), rnd.randbytes(1400)
                results["udp"] = [(d, udp_echo(udp, d)) for d in (small, big)]
                data = rnd.randbytes(65536)
                results["tcp1"] = (data, *tcp_echo(tcp, data))
                results["tcp2"] = (b"bye\n", *tcp_echo(tcp, b"bye\n"))
        finally:
            r = finish(p, args, t0, out=out, timeout=NET_TIMEOUT)
        check(r, f"{what}: DHCP, ARP, echoes, then powers off (0); nothing on stderr",
              entry=entry, want=["net: all ok", "net: tcp connection closed, echoed 65536 bytes",
                                 "net: tcp connection closed, echoed 4 bytes"],
              absent=["FAIL"])
        if not results:
            tap(False, f"{what}: host clients (the guest never got ready)", r.describe())
            continue
        tap(all(got == sent for sent, got in results["udp"]),
            f"{what}: 64- and 1400-byte UDP datagrams to 127.0.0.1:{udp} come back",
            r.describe())
        for key in ("tcp1", "tcp2"):
            sent, echo, after, err = results[key]
            tap(err is None and echo == sent and after == b"",
                f"{what}: {len(sent)} bytes over TCP to 127.0.0.1:{tcp} come back byte for byte",
                f"error {err}; echoed {len(echo)} bytes\n" + r.describe())

    hello = guest("hello")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = bootvm("--console", "stdio", "--kernel", hello, "--net",
                   f"passt,hostfwd=tcp::{port}-:22", timeout=10)
    lines = r.err.splitlines()
    tap(r.status == ERROR and len(lines) == 1 and str(port) in lines[0] and
        "passt" in lines[0] and "entry=" not in r.out,
        "--net passt,hostfwd=tcp::PORT-:22 with PORT taken -> exit 1 before the guest runs, "
        "one line naming the port", r.describe())
    for spec, word in (("passt,restrict=on", "restrict"),
                       ("passt,hostfwd=tcp::5555-10.0.2.9:22", "10.0.2.15")):
        r = bootvm("--console", "stdio", "--kernel", hello, "--net", spec, timeout=10)
        lines = r.err.splitlines()
        tap(r.status == USAGE and len(lines) == 1 and word in lines[0] and not r.out,
            f"--net {spec} -> exit 2, one line naming {word!r}", r.describe())


# Each case of net_hostile and what virtio-net does with it (src/virtio/net.h): a bad
# frame is dropped and counted, a malformed chain sets DEVICE_NEEDS_RESET.
NET_HOSTILE = (("tx-header-short", "dropped"), ("tx-frame-over-64k", "dropped"),
               ("tx-descriptor-loop", "needs-reset"), ("tx-buffer-outside-ram", "needs-reset"),
               ("tx-writable-descriptor", "needs-reset"), ("rx-buffer-outside-ram", "needs-reset"),
               ("rx-buffer-shorter-than-header", "needs-reset"), ("rx-buffer-readable", "needs-reset"))
# Words of the reason bootvm -vv gives for each case that needs a reset (None: dropped).
NET_HOSTILE_REASONS = (None, None, "longer than the queue", "outside guest ram", "device-writable",
                       "outside guest ram", "shorter than the header", "device-readable")


def group_net_hostile():
    if not net_supported():
        skip("net_hostile guest under --net user", "this bootvm has no --net option "
             "(virtio-net not wired yet)")
        return
    for form, k, entry, mem in (("elf", guest("net_hostile"), "pvh", "512M"),
                                ("bzImage", guest("net_hostile", "bzImage"), "linux64", "4G")):
        what = f"net_hostile.{form} --memory {mem}"
        udp = free_port(socket.SOCK_DGRAM)
        args = ["--console", "stdio", "--kernel", k, "--memory", mem, "--net", hostfwd(udp=udp),
                "--append", f"udp={GUEST_UDP}", "--stats"]
        p, t0 = start(args, stdin=subprocess.DEVNULL)
        echo = None
        try:
            out = read_until(p, b"net: ready", t0 + NET_TIMEOUT)
            if b"net: ready" in out:
                echo = udp_echo(udp, b"still there?")
        finally:
            r = finish(p, args, t0, out=out, timeout=NET_TIMEOUT)
        check(r, f"{what}: malformed TX and RX chains, then a new lease and a UDP echo; powers off (0)",
              entry=entry, want=["net-hostile: all survived"], absent=["FAIL"], quiet=False)
        for case, outcome in NET_HOSTILE:
            pat = "dropped" if outcome == "dropped" else r"needs-reset config-irq=[1-9]\d*"
            tap(any(re.fullmatch(rf"net-hostile: {case}: {pat}, arp ok", l) for l in r.lines),
                f"{what}: {case} -> {outcome}, then ARP with the router works", r.describe())
        tap(r.out.count(LEASE + "\n") == 2, f"{what}: a second DHCP lease after all that",
            r.describe())
        tap(echo == b"still there?", f"{what}: a host UDP client through hostfwd gets its echo",
            r.describe())
        tap(r.status is not None and r.status >= 0 and not SANITIZER.search(r.err),
            f"{what}: bootvm not killed, no sanitizer report", r.describe())
        lines = r.err.splitlines()
        tap(len(lines) <= 2 * len(NET_HOSTILE) + STATS_LINES,
            f"{what}: stderr stays short ({len(lines)} lines: --stats and a line or two per "
            "malformed chain)", r.describe())

    # With -vv bootvm says why it wants a reset, each time for the chain's own reason.
    r = boot(guest("net_hostile"), "-vv", "--net", "user", timeout=NET_TIMEOUT)
    reasons = [l.lower() for l in r.err.splitlines() if "the device needs a reset" in l]
    resets = [w for (_, o), w in zip(NET_HOSTILE, NET_HOSTILE_REASONS) if o == "needs-reset"]
    tap(r.status == POWEROFF and "net-hostile: all survived" in r.lines
        and len(reasons) == len(resets) and all(w in l for w, l in zip(resets, reasons)),
        "net_hostile.elf -vv: each malformed chain is refused for its own reason: "
        + ", ".join(resets), r.describe())


GROUPS = {
    "hello": group_hello,
    "bootinfo": group_bootinfo,
    "acpi": group_acpi,
    "smp": group_smp,
    "exits": group_exits,
    "decompress": group_decompress,
    "echo": group_echo,
    "power": group_power,
    "terminal": group_terminal,
    "errors": group_errors,
    "bzimage": group_bzimage,
    "virtio": group_virtio,
    "virtio-hostile": group_virtio_hostile,
    "disk": group_disk,
    "net": group_net,
    "net-hostile": group_net_hostile,
    "net-passt": group_net_passt,
}


def main(argv):
    if len(argv) != 2 or argv[1] not in GROUPS:
        print(f"usage: {argv[0]} {{{','.join(GROUPS)}}}", file=sys.stderr)
        return 2
    if argv[1] != "bzimage" and not os.access(BOOTVM, os.X_OK):
        print("1..0 # SKIP no bootvm binary at " + BOOTVM)
        return 0
    GROUPS[argv[1]]()
    failed = plan()
    if _runs:
        secs, args = max(_runs)
        print(f"# {len(_runs)} bootvm runs in {sum(s for s, _ in _runs):.2f} s; slowest "
              f"{secs:.2f} s: bootvm run {' '.join(a if len(a) < 60 else a[:57] + '...' for a in args)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
