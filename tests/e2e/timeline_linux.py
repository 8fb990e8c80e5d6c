#!/usr/bin/env python3
"""bootvm run --boot-timeline=FILE on real Linux, as TAP: one boot.

The shared test kernel's bzImage (decompressed on the host), --cpus 1, a
busybox initramfs, a --disk (a blank image Linux probes), --rng and
--net user with a hostfwd to guest port 2222; the kernel takes its address
by DHCP (ip=dhcp) before /init, /init listens on 2222 with busybox nc, the
host connects through the forward and sends a line, /init prints it and
powers off. The JSON must hold every phase, from the host alone, in order:
process start, VM created, memory ready, kernel decompressed, kernel loaded,
first KVM_RUN, first console byte, first PCI config access, the first
queue notification of each virtio device, the DHCP lease, "Run /init",
the forwarded connection, and the power-off.

Every boot holds the shared Linux lock ($BOOTVM_LINUX_LOCK, default
../linux.lock beside the source tree when it exists; set it empty when the
caller holds the lock already): several emulated Linux boots at once stall
each other for minutes.

Environment: BOOTVM, SOURCE_ROOT, BOOTVM_TEST_KERNEL (optional).
"""
import fcntl
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time

from tap import plan, skip, tap

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.dirname(os.path.dirname(HERE)))
BOOTVM = os.environ.get("BOOTVM", os.path.join(SOURCE_ROOT, "build", "src", "bootvm"))
BUSYBOX = "/bin/busybox"
TEST_CMDLINE = ("console=ttyS0 reboot=a panic=-1 clearcpuid=cx16,xsave,popcnt,smap "
                "rcupdate.rcu_cpu_stall_suppress=1")
BOOT_TIMEOUT = 900      # seconds; ~60 s here, well under 1 s on hardware
GUEST_PORT = 2222
GREETING = b"hello-from-the-host"
# /init: nc's stdin is /dev/null, so it half-closes and prints what the host sends until EOF.
INIT_SCRIPT = f"""
echo "CHECK ready"
nc -l -p {GUEST_PORT} < /dev/null
echo "CHECK nc_status=$?"
"""


def find_kernel():
    """The test kernel's bzImage beside its vmlinux: (path, None) or (None, why)."""
    p = subprocess.run([os.path.join(SOURCE_ROOT, "scripts", "find-test-kernel.sh")],
                       capture_output=True, text=True)
    if p.returncode:
        return None, (p.stderr.strip().splitlines() or ["not found"])[-1]
    bz = os.path.join(os.path.dirname(p.stdout.strip()), "bzImage")
    return (bz, None) if os.path.isfile(bz) else (None, f"no bzImage beside {p.stdout.strip()}")


def lock_path():
    if "BOOTVM_LINUX_LOCK" in os.environ:
        return os.environ["BOOTVM_LINUX_LOCK"] or None
    p = os.path.join(os.path.dirname(os.path.abspath(SOURCE_ROOT)), "linux.lock")
    return p if os.path.exists(p) else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_until(p, want, deadline, buf=b""):
    """Read p.stdout until `want` is in what was read, the deadline passes or EOF."""
    while want not in buf and time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], max(0.0, min(1.0, deadline - time.monotonic())))
        if r:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
    return buf


def send_greeting(port):
    """Connect through the forward, send the greeting, half-close, wait for EOF: error or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(GREETING + b"\n")
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):
                pass
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    return None


def boot(kernel, initrd, disk, port, jpath):
    args = [BOOTVM, "run", "--kernel", kernel, "--initrd", initrd, "--cpus", "1",
            "--memory", "256M", "--disk", disk, "--rng",
            "--net", f"user,hostfwd=tcp::{port}-:{GUEST_PORT}",
            "--append", TEST_CMDLINE + " ip=dhcp", f"--boot-timeline={jpath}"]
    t0 = time.monotonic()
    deadline = t0 + BOOT_TIMEOUT
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, errors = b"", []
    try:
        out = read_until(p, b"CHECK ready", deadline)
        # nc starts a moment after "ready" (an exec costs seconds here): try until it answers.
        for _ in range(12):
            if b"CHECK ready" not in out or GREETING in out:
                break
            errors.append(send_greeting(port))
            out = read_until(p, GREETING, min(deadline, time.monotonic() + 10), out)
        rest, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        status = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        rest, err = p.communicate()
        status = "timeout"
    return (status, (out + rest).decode(errors="replace"), err.decode(errors="replace"),
            time.monotonic() - t0, errors)


def first(events, name, prefix=""):
    """t_us of the first event `name` whose detail starts with prefix, or None."""
    for e in events:
        if e["event"] == name and e["detail"].startswith(prefix):
            return e["t_us"]
    return None


def main():
    kernel, why = find_kernel()
    if not os.access(BOOTVM, os.X_OK):
        why = "no bootvm binary at " + BOOTVM
    elif not os.access(BUSYBOX, os.X_OK):
        why = "no static busybox at " + BUSYBOX
    if why:
        skip("real Linux: --boot-timeline shows every phase in order", why)
        plan()
        return 0
    with tempfile.TemporaryDirectory(prefix="bootvm-e2e-") as tmp:
        initrd, disk = os.path.join(tmp, "initrd.cpio"), os.path.join(tmp, "disk.img")
        jpath = os.path.join(tmp, "timeline.json")
        p = subprocess.run([BOOTVM, "initramfs", "-o", initrd, "--compress", "none",
                            "--busybox", BUSYBOX, "--init-run", INIT_SCRIPT],
                           capture_output=True, text=True)
        if not tap(p.returncode == 0, "bootvm initramfs builds the init that listens", p.stderr):
            return 1 if plan() else 0
        with open(disk, "wb") as f:
            f.truncate(8 << 20)
        port = free_port()
        lock = lock_path()
        lock_f = open(lock, "a") if lock else None
        try:
            if lock_f:
                fcntl.flock(lock_f, fcntl.LOCK_EX)
            status, out, err, secs, conn_errors = boot(kernel, initrd, disk, port, jpath)
        finally:
            if lock_f:
                lock_f.close()
        print(f"# boot took {secs:.1f} s" + (f" (under the lock {lock})" if lock else ""))
        log = f"status {status}\n--- console ---\n{out[-4000:]}\n--- stderr ---\n{err}"
        tap(status == 0 and "CHECK nc_status=0" in out and GREETING.decode() in out,
            "Linux gets its lease, /init receives the host's line through hostfwd, powers off (0)",
            log + f"\nconnection attempts: {conn_errors}")
        try:
            with open(jpath) as f:
                doc = json.load(f)
            events = doc["events"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            tap(False, "--boot-timeline=FILE holds the JSON timeline", f"{e}\n{log}")
            return 1 if plan() else 0
        dump = json.dumps(events, indent=1)
        times = [e["t_us"] for e in events]
        tap(times == sorted(times) and times[0] == 0 and events[0]["event"] == "process_start",
            "the events are in time order from process_start at 0", dump)
        host = ["process_start", "vm_created", "memory_ready", "kernel_decompressed",
                "kernel_loaded", "first_kvm_run"]
        t = [first(events, n) for n in host]
        tap(None not in t and t == sorted(t),
            "host side: process start, VM created, memory ready, kernel decompressed (xz), "
            "kernel loaded, first KVM_RUN", dump)
        guest = {
            "first console byte": first(events, "first_console_byte"),
            "first PCI config access": first(events, "first_pci_config"),
            "virtio-blk0 first notification": first(events, "queue_notify", "virtio-blk0 "),
            "virtio-rng0 first notification": first(events, "queue_notify", "virtio-rng0 "),
            "virtio-net0 first notification": first(events, "queue_notify", "virtio-net0 "),
            "DHCP lease": first(events, "dhcp_lease"),
            "Run /init": first(events, "run_init"),
            "forwarded connection": first(events, "forwarded_connection"),
            "power-off": first(events, "vm_stop"),
        }
        missing = [k for k, v in guest.items() if v is None]
        tap(not missing, "every guest phase is there: " + ", ".join(guest),
            f"missing: {missing}\n{dump}")
        if missing:
            return 1 if plan() else 0
        kvm_run = first(events, "first_kvm_run")
        tap(kvm_run <= guest["first console byte"] and kvm_run <= guest["first PCI config access"],
            "the guest's console output and PCI accesses come after the first KVM_RUN", dump)
        tap(guest["first PCI config access"] <= min(guest[k] for k in guest if "notification" in k),
            "virtio devices are notified only after the guest found them on PCI", dump)
        tap(guest["virtio-net0 first notification"] <= guest["DHCP lease"] <= guest["Run /init"]
            <= guest["forwarded connection"] <= guest["power-off"],
            "virtio-net's first notification, then the lease (ip=dhcp), then Run /init, then the "
            "forwarded connection, then the power-off", dump)
        run_init = [e["detail"] for e in events if e["event"] == "run_init"]
        tap(run_init == ["/init"] and "Run /init as init process" in out,
            "Run /init is seen once on the console, with its path", dump)
        lease = [e["detail"] for e in events if e["event"] == "dhcp_lease"]
        fwd = [e["detail"] for e in events if e["event"] == "forwarded_connection"]
        tap(len(lease) == 1 and lease[0].startswith("10.0.2.15 to 52:54:00:") and len(fwd) == 1 and
            fwd[0].endswith(f"-> 10.0.2.15:{GUEST_PORT}"),
            "the lease names 10.0.2.15, the connection the forwarded guest port", dump)
        stop = [e["detail"] for e in events if e["event"] == "vm_stop"]
        tap(stop == ["guest powered off (ACPI S5), exit status 0"] and events[-1]["event"] == "vm_stop",
            "the last event: the guest powered off, exit status 0", dump)
        tap(doc.get("guest_markers_dropped") == 0 and doc.get("events_dropped") == 0,
            "nothing dropped (Linux writes no debug-port markers here)", dump)
        print("# " + "; ".join(f"{e['event']} {e['t_us'] / 1e6:.3f}s" for e in events))
    return 1 if plan() else 0


if __name__ == "__main__":
    sys.exit(main())
