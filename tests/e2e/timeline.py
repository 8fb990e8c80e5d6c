#!/usr/bin/env python3
"""bootvm run --boot-timeline[=FILE] with the freestanding test guests, as TAP.

Checks that the table (stderr) and the JSON file carry the boot phases in
order, seen from the host alone: the marker guest's writes to the debug port
(0x80, bounded), the virtio guest's first queue notification per device, the
net guest's DHCP lease and a forwarded connection under --net user, a
host-decompressed bzImage; and the option's errors.

Environment: as tests/e2e/guests.py (BOOTVM, GUEST_DIR).
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile

import guests
from guests import (BOOTVM, GUEST_TCP, LEASE, NET_TIMEOUT, POWEROFF, USAGE, ERROR, boot,
                    bootvm, check, finish, free_port, guest, read_until, start, tcp_echo)
from tap import plan, skip, tap

MAX_MARKERS = 64        # TIMELINE_MAX_MARKERS in src/vmm/timeline.h
LABELS = {              # table label -> JSON name
    "process start": "process_start", "VM created": "vm_created", "memory ready": "memory_ready",
    "kernel decompressed": "kernel_decompressed", "kernel loaded": "kernel_loaded",
    "first KVM_RUN": "first_kvm_run", "first console byte": "first_console_byte",
    "Run /init on the console": "run_init", "first PCI config access": "first_pci_config",
    "first queue notification": "queue_notify", "DHCP lease handed out": "dhcp_lease",
    "forwarded connection": "forwarded_connection", "guest marker": "guest_marker",
    "VM stopped": "vm_stop",
}
ROW = re.compile(r"^\s*(\d+\.\d{3})\s+\+(\d+\.\d{3})  (" +
                 "|".join(re.escape(k) for k in sorted(LABELS, key=len, reverse=True)) +
                 r")(?: +(.*))?$")


def table(err):
    """The --boot-timeline table on stderr: [(ms, json name, detail)], and its other lines."""
    rows, rest, inside = [], [], False
    for line in err.splitlines():
        if line.startswith("bootvm: boot timeline"):
            inside = True
            continue
        m = ROW.match(line) if inside else None
        if m:
            rows.append((float(m[1]), LABELS[m[3]], m[4] or ""))
        elif inside:
            rest.append(line)
    return rows, rest


def in_order(events, names):
    """Whether each of names occurs, first occurrences in this order, times never going back."""
    seen = [e[0] for e in events]
    times = [e[1] for e in events]
    if times != sorted(times):
        return False
    try:
        idx = [seen.index(n) for n in names]
    except ValueError:
        return False
    return idx == sorted(idx)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def json_events(doc):
    return [(e["event"], e["t_us"], e["detail"]) for e in doc["events"]]


def shape_ok(doc):
    """One object: clock, events [{event, t_us, detail[, value]}], the two drop counters."""
    if not isinstance(doc, dict) or set(doc) != {"clock", "events", "guest_markers_dropped",
                                                 "events_dropped"}:
        return False
    for e in doc["events"]:
        keys = {"event", "t_us", "detail"} | ({"value"} if e.get("event") == "guest_marker" else set())
        if set(e) != keys or not isinstance(e["t_us"], int) or not isinstance(e["detail"], str):
            return False
    return True


BASE = ["process_start", "vm_created", "memory_ready", "kernel_loaded", "first_kvm_run",
        "first_console_byte"]


def group_marker():
    k = guest("marker")
    r = boot(k, "--boot-timeline")
    check(r, "marker: boots and powers off with --boot-timeline", entry="pvh",
          want=["marker: done"], quiet=False)
    rows, rest = table(r.err)
    ev = [(n, t, d) for t, n, d in rows]
    tap(in_order(ev, BASE + ["guest_marker", "vm_stop"]),
        "marker: the table has process start, VM created, memory ready, kernel loaded, first "
        "KVM_RUN, first console byte, the markers and the stop, in time order", r.err)
    marks = [d for n, _, d in ev if n == "guest_marker"]
    tap(marks[:4] == ["1 (0x1)", "2 (0x2)", "4660 (0x1234)", "3735928559 (0xdeadbeef)"],
        "marker: byte, word and dword writes to port 0x80 are markers with their values, in order; "
        "a write to 0x81 is none", "\n".join(marks[:6]))
    tap(len(marks) == MAX_MARKERS and set(marks[4:]) == {"66 (0x42)"} and
        any(f"{200 - (MAX_MARKERS - 4)} more guest markers not recorded" in l for l in rest),
        f"marker: a flood of 200 writes keeps {MAX_MARKERS} markers and counts the rest",
        "\n".join(rest))
    stop = [d for n, _, d in ev if n == "vm_stop"]
    tap(stop == ["guest powered off (ACPI S5), exit status 0"] and ev[-1][0] == "vm_stop",
        "marker: the last event says how the guest ended and the exit status", r.err)
    first_byte = [t for n, t, _ in ev if n == "first_console_byte"]
    marker1 = [t for n, t, d in ev if d == "1 (0x1)"]
    tap(first_byte and marker1 and first_byte[0] <= marker1[0],
        "marker: the runtime's first line comes before the first marker", r.err)

    with tempfile.TemporaryDirectory(prefix="bootvm-e2e-") as tmp:
        path = os.path.join(tmp, "tl.json")
        r = boot(k, f"--boot-timeline={path}")
        check(r, "marker: --boot-timeline=FILE boots the same, nothing on stderr", entry="pvh",
              want=["marker: done"])
        try:
            doc = read_json(path)
        except (OSError, ValueError) as e:
            tap(False, "marker: FILE holds JSON", str(e))
            return
        tap(shape_ok(doc), "marker: FILE is one object with an ordered array of "
            "{event, t_us, detail} (markers add their value) and the drop counters",
            json.dumps(doc)[:2000])
        ev = json_events(doc)
        tap(in_order(ev, BASE + ["guest_marker", "vm_stop"]) and ev[0][:2] == ("process_start", 0),
            "marker: the JSON events are in order from process_start at t_us 0", json.dumps(ev))
        values = [e["value"] for e in doc["events"] if e["event"] == "guest_marker"]
        tap(values[:4] == [1, 2, 0x1234, 0xdeadbeef] and len(values) == MAX_MARKERS and
            doc["guest_markers_dropped"] == 200 - (MAX_MARKERS - 4) and doc["events_dropped"] == 0,
            "marker: JSON values and guest_markers_dropped agree with the guest's writes",
            json.dumps(doc)[-400:])


def group_virtio():
    with tempfile.TemporaryDirectory(prefix="bootvm-e2e-") as tmp:
        disks = []
        for name in ("a.img", "b.img"):
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.truncate(1 << 20)
            disks += ["--disk", path]
        jpath = os.path.join(tmp, "tl.json")
        r = boot(guest("virtio"), *disks, "--rng", f"--boot-timeline={jpath}")
        check(r, "virtio: two disks and an rng with --boot-timeline=FILE", entry="pvh",
              want=["virtio: all ok"], absent=["FAIL"])
        try:
            ev = json_events(read_json(jpath))
        except (OSError, ValueError) as e:
            tap(False, "virtio: FILE holds JSON", str(e))
            return
        notify = {d.split(" queue ")[0]: t for n, t, d in ev if n == "queue_notify"}
        tap(set(notify) == {"virtio-blk0", "virtio-blk1", "virtio-rng0"},
            "virtio: one first queue notification per device, by name", json.dumps(ev))
        tap(in_order(ev, BASE + ["first_pci_config", "queue_notify", "vm_stop"]),
            "virtio: first PCI config access after the first KVM_RUN, the notifications after it",
            json.dumps(ev))


def group_net():
    if not guests.net_supported():
        skip("net: timeline under --net user", "this bootvm has no --net option")
        return
    tcp = free_port(socket.SOCK_STREAM)
    with tempfile.TemporaryDirectory(prefix="bootvm-e2e-") as tmp:
        jpath = os.path.join(tmp, "tl.json")
        args = ["--console", "stdio", "--kernel", guest("net"), "--net",
                f"user,hostfwd=tcp::{tcp}-:{GUEST_TCP}", "--append", f"tcp={GUEST_TCP} count=1",
                f"--boot-timeline={jpath}"]
        p, t0 = start(args, stdin=subprocess.DEVNULL)
        out, res = b"", None
        try:
            out = read_until(p, b"net: ready", t0 + NET_TIMEOUT)
            if b"net: ready" in out:
                res = tcp_echo(tcp, b"timeline\n")
        finally:
            r = finish(p, args, t0, out=out, timeout=NET_TIMEOUT)
        check(r, "net: DHCP, one forwarded TCP connection, powers off", entry="pvh",
              want=[LEASE, "net: tcp connection closed, echoed 9 bytes"], absent=["FAIL"])
        tap(res is not None and res[2] is None and res[0] == b"timeline\n",
            f"net: the connection through 127.0.0.1:{tcp} echoes", repr(res))
        try:
            ev = json_events(read_json(jpath))
        except (OSError, ValueError) as e:
            tap(False, "net: FILE holds JSON", str(e))
            return
        lease = [d for n, _, d in ev if n == "dhcp_lease"]
        tap(len(lease) == 1 and re.fullmatch(r"10\.0\.2\.15 to 52:54:00(:[0-9a-f]{2}){3}", lease[0]),
            "net: the DHCP lease of 10.0.2.15 to the guest's MAC is on the timeline, once",
            json.dumps(ev))
        fwd = [d for n, _, d in ev if n == "forwarded_connection"]
        tap(len(fwd) == 1 and re.fullmatch(rf"tcp 10\.0\.2\.2:\d+ -> 10\.0\.2\.15:{GUEST_TCP}", fwd[0]),
            "net: the forwarded connection (its SYN to the guest port) is on the timeline, once",
            json.dumps(ev))
        tap(in_order(ev, BASE + ["first_pci_config", "queue_notify", "dhcp_lease",
                                 "forwarded_connection", "vm_stop"]) and
            any(n == "queue_notify" and d.startswith("virtio-net0 ") for n, _, d in ev),
            "net: PCI, virtio-net0's first notification, the lease, the connection, the stop, "
            "in order", json.dumps(ev))


def group_decompress():
    k = guest("hello-gzip", "bzImage")
    if not os.path.exists(k):
        skip("decompress: kernel decompressed on the timeline", "no gzip variant of hello built")
        return
    r = boot(k, "--boot-timeline")
    check(r, "decompress: the gzip bzImage boots with --boot-timeline", entry="pvh", quiet=False)
    rows, _ = table(r.err)
    ev = [(n, t, d) for t, n, d in rows]
    dec = [d for n, _, d in ev if n == "kernel_decompressed"]
    tap(len(dec) == 1 and dec[0].startswith("gzip, ") and
        in_order(ev, ["memory_ready", "kernel_decompressed", "kernel_loaded", "first_kvm_run"]),
        "decompress: the host-side decompression is its own mark, before the kernel is loaded",
        r.err)


def group_errors():
    hello = guest("hello")
    r = bootvm("--kernel", hello, "--boot-timeline=")
    tap(r.status == USAGE and len(r.err.strip().splitlines()) == 1 and "--boot-timeline" in r.err,
        "errors: --boot-timeline= (no file) is a usage error (2), one line", r.describe())
    with tempfile.TemporaryDirectory(prefix="bootvm-e2e-") as tmp:
        bad = os.path.join(tmp, "missing", "tl.json")
        r = bootvm("--kernel", hello, f"--boot-timeline={bad}")
        tap(r.status == ERROR and r.out == "" and len(r.err.strip().splitlines()) == 1 and
            bad in r.err, "errors: a FILE that cannot be created fails (1) before the guest runs, "
            "one line naming it", r.describe())
        # A bootvm error is on the timeline too, and the table still comes.
        r = bootvm("--kernel", os.path.join(tmp, "nokernel"), "--boot-timeline")
        rows, _ = table(r.err)
        tap(r.status == ERROR and rows and rows[-1][1] == "vm_stop" and
            rows[-1][2] == "bootvm error, exit status 1",
            "errors: a VM that fails to build still prints the table, ending in the error",
            r.describe())
    r = bootvm("--help")
    tap("--boot-timeline[=FILE]" in r.out, "errors: --help lists --boot-timeline[=FILE]", r.out)


GROUPS = {"marker": group_marker, "virtio": group_virtio, "net": group_net,
          "decompress": group_decompress, "errors": group_errors}


def main(argv):
    if not os.access(BOOTVM, os.X_OK):
        print("1..0 # SKIP no bootvm binary at " + BOOTVM)
        return 0
    for name in (argv[1:] or GROUPS):
        GROUPS[name]()
    return 1 if plan() else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
