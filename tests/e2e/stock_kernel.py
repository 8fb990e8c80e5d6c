"""Debian's stock cloud kernel under bootvm; imported by linux.py only where
KVM is hardware-backed (a stock kernel cannot boot on the build machines'
software KVM).

Boots linux-image-cloud-amd64's vmlinuz (fetched and unpacked, not installed,
by scripts/fetch-cloud-kernel.sh) with a busybox initramfs that carries and
loads its virtio modules, twice: with host-side decompression (the default)
and with the kernel's own decompressor (--no-host-decompress), and reports
the time from exec to /init for both.
"""
import os
import re
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.dirname(os.path.dirname(HERE)))
BOOTVM = os.environ.get("BOOTVM", os.path.join(SOURCE_ROOT, "build", "src", "bootvm"))
MODULES = ["virtio_pci", "virtio_blk", "virtio_net"]
INIT_SCRIPT = r"""
echo "CHECK init_reached=1"
while read m rest; do echo "CHECK module_$m=1"; done < /proc/modules
read online < /sys/devices/system/cpu/online; echo "CHECK cpus_online=$online"
"""


def fetch():
    p = subprocess.run([os.path.join(SOURCE_ROOT, "scripts", "fetch-cloud-kernel.sh")],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr.strip().splitlines()[-1:] or ["fetch failed"]
    root = p.stdout.strip()
    vmlinuz = sorted(f for f in os.listdir(os.path.join(root, "boot")) if f.startswith("vmlinuz-"))
    if not vmlinuz:
        return None, [f"no vmlinuz in {root}/boot"]
    version = vmlinuz[-1][len("vmlinuz-"):]
    return (os.path.join(root, "boot", vmlinuz[-1]),
            os.path.join(root, "lib", "modules", version)), None


def timed_boot(args, marker, timeout=120):
    """Run bootvm, timestamping the first console line containing marker."""
    t0 = time.monotonic()
    p = subprocess.Popen([BOOTVM, "run", *args], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, t_marker = [], None
    for raw in p.stdout:
        line = raw.decode(errors="replace")
        out.append(line)
        if t_marker is None and marker in line:
            t_marker = time.monotonic() - t0
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    return p.returncode, "".join(out), p.stderr.read().decode(errors="replace"), t_marker


def run(tap, skip, boot):
    paths, why = fetch()
    if not paths:
        skip("Debian cloud kernel boots with its virtio modules from the initramfs",
             f"cannot fetch linux-image-cloud-amd64: {why[0]}")
        skip("host-side vs in-guest decompression of the cloud vmlinuz (time to init)",
             "no cloud kernel")
        return
    vmlinuz, moddir = paths
    with tempfile.TemporaryDirectory(prefix="bootvm-stock-") as tmp:
        initrd = os.path.join(tmp, "initrd.cpio.gz")
        args = [BOOTVM, "initramfs", "-o", initrd, "--busybox", "/bin/busybox",
                "--modules-from", moddir, "--init-run", INIT_SCRIPT]
        for m in MODULES:
            args += ["--module", m]
        p = subprocess.run(args, capture_output=True, text=True)
        if not tap(p.returncode == 0, "initramfs with the cloud kernel's virtio modules", p.stderr):
            return
        common = ["--kernel", vmlinuz, "--initrd", initrd, "--cpus", "2", "--memory", "1G",
                  "--append", "console=ttyS0 panic=-1"]
        results = {}
        for label, extra in (("host", []), ("in-guest", ["--no-host-decompress"])):
            status, out, err, t_init = timed_boot(common + extra, "CHECK init_reached=1")
            checks = dict(re.findall(r"^CHECK (\w+)=(.*?)\r?$", out, re.M))
            ok = status == 0 and t_init is not None
            tap(ok, f"cloud kernel ({label} decompression) reaches init and powers off",
                f"status {status}\n{err}\n{out[-3000:]}")
            tap(all(checks.get(f"module_{m}") == "1" for m in MODULES),
                f"virtio modules loaded ({label} decompression)", str(checks))
            tap(checks.get("cpus_online") == "0-1", f"both CPUs online ({label})", str(checks))
            # The FADT says there is no 8042, so Linux does not probe one (0.5 s).
            probe = [l for l in out.splitlines() if "i8042" in l and "CTR" in l or
                     "Probing ports directly" in l]
            tap(not probe, f"no i8042 probe ({label})", "\n".join(probe))
            if ok:
                results[label] = t_init
        if len(results) == 2:
            print(f"# time to init: host-side decompression {results['host']:.3f} s, "
                  f"in-guest {results['in-guest']:.3f} s "
                  f"(host-side takes {results['host'] / results['in-guest']:.2f}x)")
        tap(len(results) == 2, "host-side vs in-guest decompression measured", str(results))
