#!/usr/bin/env python3
"""virtio-net throughput and CPU cost (issue 8): bootvm's device model with
each backend, against QEMU's user networking and a loopback TCP pair.

One boot of the shared test kernel (--cpus 1 --memory 256M, an uncompressed
busybox initramfs) per configuration:
  bootvm user  --net user,hostfwd=tcp:127.0.0.1:P-:5001  (libslirp helper)
  bootvm tap   --net tap=bvtap0 in a network namespace (host 192.168.100.1)
  qemu user    qemu-system-x86_64 -enable-kvm -M microvm,pcie=on
               -netdev user,hostfwd=... -device virtio-net-pci
and in each the guest's /init runs
  host->guest  nc -l -p 5001 > /dev/null; the host connects (hostfwd, or
               straight to 192.168.100.2 on the TAP), sends MB, half-closes
               and waits for the guest's EOF;
  guest->host  dd if=/dev/zero bs=64k | nc PEER PORT; the host's server reads
               to EOF (PEER is 10.0.2.2, the host's loopback, or 192.168.100.1).
Timed on the host (connect or accept to EOF). CPU time is read from /proc
around each transfer, split into the VM's vCPU threads (bootvm "vcpuN", QEMU
"CPU N/KVM": the guest, emulated here) and everything else of the VMM (its
I/O threads and main loop, and bootvm's slirp helper process): the device
model and backend. Packets are the guest's eth0 counters (rx+tx) over the
transfer. The loopback row is a host TCP pair (two threads of this script)
moving 1 GiB, for scale.

Where /dev/kvm is software (these build machines: guest kernel code is
emulated at ~1-2 MIPS), every figure is dominated by the guest kernel's
TCP stack, and bootvm-vs-QEMU ratios compare two VMMs both waiting on the
same emulated guest; the per-MB and per-packet VMM CPU is the comparable
part.

Every Linux boot holds the shared lock; run as
  flock /work/wt/linux.lock nice -n 10 python3 bench/net.py [MB]
(MB each direction, default 4). Needs root for the TAP row (skipped
otherwise) and qemu-system-x86_64 for the QEMU row. Prints markdown.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
os.environ.setdefault("SOURCE_ROOT", ROOT)
os.environ.setdefault("BOOTVM", os.path.join(ROOT, "build", "src", "bootvm"))
from linux import BOOTVM, BUSYBOX, TEST_CMDLINE, TEST_KERNEL, TEST_KERNEL_WHY  # noqa: E402
from netlinux import TAP_GUEST, TAP_HOST, Netns  # noqa: E402

QEMU = "qemu-system-x86_64"
GUEST_PORT = 5001
TICK = os.sysconf("SC_CLK_TCK")
BOOT_TIMEOUT = 1800

INIT_RUN = r"""
read cmdline < /proc/cmdline
for w in $cmdline; do
	case $w in
	bench.peer=*) peer=${w#*=} ;;
	bench.port=*) port=${w#*=} ;;
	bench.mb=*) mb=${w#*=} ;;
	esac
done
st() {
	s=/sys/class/net/eth0/statistics
	read rp < $s/rx_packets; read tp < $s/tx_packets
	echo "STAT $1 $rp $tp"
}
st boot
echo "BENCH listen"
nc -l -p 5001 > /dev/null
st h2g
echo "BENCH send"
dd if=/dev/zero bs=65536 count=$((mb * 16)) 2>/dev/null | nc $peer $port
st g2h
echo "BENCH done"
"""


def die(msg):
    print(f"bench/net.py: {msg}", file=sys.stderr)
    sys.exit(1)


def task_times(pid):
    """{tid: (comm, seconds of CPU)} of pid's threads."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        fields = s[s.rindex(")") + 2:].split()
        out[tid] = (comm, (int(fields[11]) + int(fields[12])) / TICK)
    return out


def children(pid):
    kids = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += f.read().split()
        except OSError:
            pass
    return kids


def cpu_split(pid):
    """(vCPU seconds, rest-of-the-VMM seconds) of pid and its children."""
    vcpu = other = 0.0
    for comm, t in task_times(pid).values():
        if re.fullmatch(r"vcpu\d+|CPU \d+/KVM", comm):
            vcpu += t
        else:
            other += t
    for kid in children(pid):
        other += sum(t for _, t in task_times(kid).values())
    return vcpu, other


class Console:
    """The VM's console, read on a thread; wait() for a line."""

    def __init__(self, p):
        self.p, self.out = p, b""
        self.cv = threading.Condition()
        self.eof = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while chunk := self.p.stdout.read1(65536):
            with self.cv:
                self.out += chunk
                self.cv.notify_all()
        with self.cv:
            self.eof = True
            self.cv.notify_all()

    def wait(self, needle, timeout=BOOT_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cv:
            while needle.encode() not in self.out:
                if self.eof or time.monotonic() > deadline:
                    raise RuntimeError(f"no {needle!r} from the guest:\n"
                                       + self.out[-3000:].decode(errors="replace"))
                self.cv.wait(1)

    def stats(self):
        text = self.out.decode(errors="replace")
        return {m[0]: (int(m[1]), int(m[2]))
                for m in re.findall(r"^STAT (\w+) (\d+) (\d+)", text, re.M)}


def host_to_guest(addr, port, size, pid):
    """Send size bytes to addr:port (retrying until the guest's nc listens):
    (seconds, vcpu cpu, vmm cpu)."""
    chunk = bytes(1 << 16)
    deadline = time.monotonic() + 120
    while True:
        c0, t0 = cpu_split(pid), time.monotonic()
        try:
            with socket.create_connection((addr, port), timeout=600) as s:
                left = size
                while left:
                    n = s.send(chunk[:min(left, len(chunk))])
                    left -= n
                s.shutdown(socket.SHUT_WR)
                while s.recv(65536):
                    pass
            t1, c1 = time.monotonic(), cpu_split(pid)
            return t1 - t0, c1[0] - c0[0], c1[1] - c0[1]
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


class Sink(threading.Thread):
    """Accepts one connection, reads it to EOF: seconds, bytes, CPU around it."""

    def __init__(self, addr, pid_box):
        super().__init__(daemon=True)
        self.sock = socket.create_server((addr, 0))
        self.sock.settimeout(BOOT_TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.pid_box, self.result, self.error = pid_box, None, None
        self.start()

    def run(self):
        try:
            c, _ = self.sock.accept()
            pid = self.pid_box[0]
            c0, t0 = cpu_split(pid), time.monotonic()
            n = 0
            with c:
                while b := c.recv(1 << 16):
                    n += len(b)
                t1, c1 = time.monotonic(), cpu_split(pid)
            self.result = (t1 - t0, n, c1[0] - c0[0], c1[1] - c0[1])
        except OSError as e:
            self.error = e
        finally:
            self.sock.close()


def run_vm(name, argv, h2g_addr, h2g_port, sink, size):
    """Boot argv, run both transfers; a result dict."""
    pid_box = sink.pid_box
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    pid_box[0] = p.pid
    con = Console(p)
    t_boot = time.monotonic()
    try:
        con.wait("BENCH listen")
        boot_s = time.monotonic() - t_boot
        time.sleep(3)  # nc's exec takes a second or two here
        h2g = host_to_guest(h2g_addr, h2g_port, size, p.pid)
        con.wait("BENCH done")
        sink.join(60)
        if sink.result is None:
            raise RuntimeError(f"guest->host transfer failed: {sink.error}")
        st = con.stats()
    finally:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    g2h_s, got, g2h_vcpu, g2h_vmm = sink.result
    if got != size:
        raise RuntimeError(f"{name}: the host got {got} of {size} bytes")
    pk_h2g = sum(st["h2g"]) - sum(st["boot"])
    pk_g2h = sum(st["g2h"]) - sum(st["h2g"])
    return {"boot_s": boot_s,
            "h2g": (h2g[0], h2g[1], h2g[2], pk_h2g),
            "g2h": (g2h_s, g2h_vcpu, g2h_vmm, pk_g2h)}


def loopback(size=1 << 30):
    """A host TCP pair on 127.0.0.1: (seconds, CPU seconds of both ends)."""
    srv = socket.create_server(("127.0.0.1", 0))
    done = []

    def reader():
        c, _ = srv.accept()
        with c:
            while c.recv(1 << 18):
                pass
        done.append(time.monotonic())
    t = threading.Thread(target=reader)
    t.start()
    chunk = bytes(1 << 18)
    c0, t0 = time.process_time(), time.monotonic()
    with socket.create_connection(srv.getsockname()) as s:
        for _ in range(size // len(chunk)):
            s.sendall(chunk)
    t.join()
    srv.close()
    return done[0] - t0, time.process_time() - c0, size


def build_initrd(tmp):
    initrd = os.path.join(tmp, "initrd.cpio")
    p = subprocess.run([BOOTVM, "initramfs", "-o", initrd, "--compress", "none",
                        "--busybox", BUSYBOX, "--init-run", INIT_RUN],
                       capture_output=True, text=True)
    if p.returncode:
        die(f"bootvm initramfs: {p.stderr.strip()}")
    return initrd


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    mb = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    size = mb << 20
    if not TEST_KERNEL:
        die(TEST_KERNEL_WHY)
    results, skipped = {}, {}
    with tempfile.TemporaryDirectory(prefix="bootvm-bench-net-") as tmp:
        initrd = build_initrd(tmp)
        ns = None
        if os.geteuid() == 0:
            ns = Netns()
            try:
                ns.enter()
            except OSError as e:
                skipped["bootvm tap"] = str(e)
                ns.leave()
                ns = None
        else:
            skipped["bootvm tap"] = "not root (no network namespace, no TAP)"
        try:
            lo = loopback()
            base = ["--kernel", TEST_KERNEL, "--initrd", initrd, "--cpus", "1",
                    "--memory", "256M"]
            dhcp = f"{TEST_CMDLINE} ip=:::::eth0:dhcp bench.mb={mb}"

            fwd, sink = free_port(), Sink("127.0.0.1", [0])
            results["bootvm user"] = run_vm(
                "bootvm user", [BOOTVM, "run", *base, "--append",
                                f"{dhcp} bench.peer=10.0.2.2 bench.port={sink.port}",
                                "--net", f"user,hostfwd=tcp:127.0.0.1:{fwd}-:{GUEST_PORT}"],
                "127.0.0.1", fwd, sink, size)
            if ns:
                sink = Sink(TAP_HOST, [0])
                static = (f"{TEST_CMDLINE} ip={TAP_GUEST}::{TAP_HOST}:255.255.255.0::eth0:off "
                          f"bench.mb={mb} bench.peer={TAP_HOST} bench.port={sink.port}")
                results["bootvm tap"] = run_vm(
                    "bootvm tap", [BOOTVM, "run", *base, "--append", static,
                                   "--net", f"tap={ns.tap}"], TAP_GUEST, GUEST_PORT, sink, size)
            if subprocess.run(["which", QEMU], capture_output=True).returncode:
                skipped["qemu user"] = f"no {QEMU}"
            else:
                fwd, sink = free_port(), Sink("127.0.0.1", [0])
                qemu = [QEMU, "-enable-kvm", "-M", "microvm,pcie=on", "-cpu",
                        "qemu64,-cx16,+xsaveerptr", "-smp", "1", "-m", "256M",
                        "-name", "bench,debug-threads=on", "-nodefaults", "-no-user-config",
                        "-display", "none", "-serial", "stdio", "-monitor", "none",
                        "-kernel", TEST_KERNEL, "-initrd", initrd, "-append",
                        f"{dhcp} bench.peer=10.0.2.2 bench.port={sink.port}",
                        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{fwd}-:{GUEST_PORT}",
                        "-device", "virtio-net-pci,netdev=n0"]
                try:
                    results["qemu user"] = run_vm("qemu user", qemu, "127.0.0.1", fwd, sink, size)
                except RuntimeError as e:
                    skipped["qemu user"] = str(e).splitlines()[0]
                    print(f"bench/net.py: qemu: {e}", file=sys.stderr)
        finally:
            if ns:
                ns.leave()

    report(mb, lo, results, skipped)


def report(mb, lo, results, skipped):
    lo_s, lo_cpu, lo_size = lo
    print(f"bench/net.py {mb}: {mb} MiB each way, --cpus 1 --memory 256M, "
          f"{time.strftime('%Y-%m-%d')}\n")
    print("| configuration | direction | seconds | Mbit/s | vs QEMU | guest packets | "
          "VMM CPU ms/MiB | VMM CPU µs/packet | vCPU CPU s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| host loopback TCP (1 GiB) | — | {lo_s:.2f} | {lo_size * 8 / lo_s / 1e6:.0f} | — | "
          f"— | {lo_cpu * 1000 / (lo_size >> 20):.2f} (both ends) | — | — |")
    q = results.get("qemu user")
    for name, r in results.items():
        for d, label in (("h2g", "host→guest"), ("g2h", "guest→host")):
            secs, vcpu, vmm, pk = r[d]
            mbit = (mb << 20) * 8 / secs / 1e6
            ratio = f"{mbit / ((mb << 20) * 8 / q[d][0] / 1e6):.2f}×" if q else "—"
            print(f"| {name} | {label} | {secs:.1f} | {mbit:.2f} | {ratio} | {pk} | "
                  f"{vmm * 1000 / mb:.0f} | {vmm * 1e6 / max(pk, 1):.0f} | {vcpu:.1f} |")
    for name, why in skipped.items():
        print(f"| {name} | skipped: {why} | | | | | | | |")
    print()
    for name, r in results.items():
        print(f"- {name}: booted to the guest's nc -l in {r['boot_s']:.0f} s")


if __name__ == "__main__":
    main()
