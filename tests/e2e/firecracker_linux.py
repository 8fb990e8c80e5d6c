#!/usr/bin/env python3
"""`bootvm firecracker` with real Linux, two boots (1 vCPU each).

1. Firecracker's getting-started sequence over curl --unix-socket (logger,
   boot-source with the test kernel, machine-config, the root drive,
   InstanceStart). The root drive is an ext4 image (mkfs.ext4 -d) with
   busybox and a shell /init, no initramfs: the kernel mounts it from the
   root=/dev/vda rw that is_root_device adds, as Firecracker does. /init
   reports what it sees, writes a file, says it is ready and waits for the
   ACPI power button, which the test presses with SendCtrlAltDel; /init then
   powers off, bootvm exits 0, and the file is read back with debugfs.
2. The same from a configuration file, with no API (flintlock's way):
   `--no-api --config-file vm.json` with boot-source, drives,
   machine-config, a network interface under the bootvm_net extension
   (user-mode networking, a guest_mac), logger and metrics. /init reports,
   writes a file and powers off on its own; the metrics line written at
   exit carries the boot timeline up to "Run /init" and the power-off.

Environment: BOOTVM, SOURCE_ROOT, BOOTVM_TEST_KERNEL (as linux.py).
Hold the shared lock when running it:
  flock /work/wt/linux.lock meson test -C build firecracker-linux
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from firecracker import Fc, check_204, check_json
from linux import BOOT_TIMEOUT, BUSYBOX, COMPLAINTS, TEST_CMDLINE, TEST_KERNEL, \
    TEST_KERNEL_WHY, make_ext4
from tap import plan, skip, tap
from timeline import BASE, in_order, json_events, shape_ok

FF = "/sys/firmware/acpi/interrupts/ff_pwr_btn"
APPLETS = ["sh", "mount", "mkfifo", "poweroff"]

# Shell builtins but for mount, mkfifo and poweroff (each exec costs 1-2 s here).
PRELUDE = r"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
read cmdline < /proc/cmdline; echo "CHECK cmdline=$cmdline"
while read id parent majmin root mnt opts rest; do
	[ "$mnt" = / ] && echo "CHECK root=$majmin ${opts%%,*} ${rest#*- }"
done < /proc/self/mountinfo
read serial < /sys/block/vda/serial; echo "CHECK serial=$serial"
"""

# Boot 1: waits for the power button (SendCtrlAltDel).
INIT = PRELUDE + r"""echo "written by the guest" > /fc-wrote
read n0 rest < FF
mkfifo /tick; exec 3<> /tick
echo "FC-LINUX ready"
i=0
while :; do
	read n rest < FF
	[ "$n" != "$n0" ] && break
	read -t 1 x <&3
	i=$((i+1))
	[ $i -gt 120 ] && { echo "FC-LINUX no button event"; break; }
done
echo "FC-LINUX button: powering off"
mount -o remount,ro /
poweroff -f
""".replace("FF", FF)

# Boot 2 (the config file): the interface, the CPUs, then powers off by itself.
CFG_MAC = "06:00:ac:10:00:02"
INIT_CFG = PRELUDE + r"""read mac < /sys/class/net/eth0/address; echo "CHECK mac=$mac"
read cpus < /sys/devices/system/cpu/online; echo "CHECK cpus=$cpus"
echo "written by the config-file boot" > /fc-wrote
echo "FC-CONFIG powering off"
mount -o remount,ro /
poweroff -f
"""


def checks(out):
    return dict(m.groups() for m in re.finditer(r"^CHECK (\w+)=(.*)$", out, re.M))


def root_checks(c, what):
    """What PRELUDE reported about the root drive (both boots)."""
    tap(c.get("cmdline", "").endswith("init=/init root=/dev/vda rw"),
        f"{what}: is_root_device: the command line ends with root=/dev/vda rw, as Firecracker's",
        c.get("cmdline", ""))
    tap(re.match(r"\d+:0 rw ext4 /dev/(root|vda)", c.get("root", "")) is not None,
        f"{what}: / is vda (minor 0), ext4, read-write", c.get("root", ""))
    tap(c.get("serial") == "rootfs", f"{what}: the drive's serial is its drive_id",
        c.get("serial", ""))


def wrote(root, want, what):
    r = subprocess.run(["debugfs", "-R", "cat /fc-wrote", root], capture_output=True, text=True)
    tap(r.stdout.strip() == want, f"{what}: the file the guest wrote is on the host's image",
        r.stdout + r.stderr)


def root_image(tmp, name, init):
    """An ext4 root drive with busybox and init as /init; its path, or None (reported)."""
    tree = os.path.join(tmp, name + "-tree")
    for d in ("bin", "proc", "sys", "dev"):
        os.makedirs(os.path.join(tree, d))
    shutil.copy(BUSYBOX, os.path.join(tree, "bin", "busybox"))
    for a in APPLETS:
        os.symlink("busybox", os.path.join(tree, "bin", a))
    with open(os.path.join(tree, "init"), "w") as f:
        f.write(init)
    os.chmod(os.path.join(tree, "init"), 0o755)
    root = os.path.join(tmp, name + ".ext4")
    st, msg = make_ext4(root, tree, 32 << 20)
    return root if tap(st == 0, f"mkfs.ext4 -d builds the {name} drive", msg) else None


def api_boot(tmp):
    """Boot 1: the getting-started sequence over curl, SendCtrlAltDel."""
    root = root_image(tmp, "rootfs", INIT)
    if not root:
        return
    log = os.path.join(tmp, "fc.log")
    open(log, "w").close()
    fc = Fc(tmp, "--id", "linux-vm")
    s = fc.sock
    check_204(s, "PUT", "/logger", {"log_path": log, "level": "Info", "show_level": True},
              "logger")
    check_204(s, "PUT", "/boot-source", {"kernel_image_path": TEST_KERNEL,
                                         "boot_args": TEST_CMDLINE + " init=/init"},
              "the test kernel")
    check_204(s, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256},
              "1 vCPU, 256 MiB")
    check_204(s, "PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": root,
                                          "is_root_device": True, "is_read_only": False},
              "the root drive")
    t0 = time.monotonic()
    check_204(s, "PUT", "/actions", {"action_type": "InstanceStart"}, "InstanceStart")
    ready = fc.read_until(b"FC-LINUX ready", BOOT_TIMEOUT)
    print(f"# /init ready after {time.monotonic() - t0:.1f} s")
    out = fc.out.decode(errors="replace").replace("\r\n", "\n")
    if not tap(ready, "Linux boots from the root drive to /init's ready line", out[-3000:]):
        fc.p.kill()
        fc.wait()
        return
    info = check_json(s, "/", "InstanceInfo", "while Linux runs")
    tap(info.get("state") == "Running" and info.get("id") == "linux-vm",
        "GET /: Running, the --id", repr(info))
    check_204(s, "PUT", "/actions", {"action_type": "SendCtrlAltDel"},
              "SendCtrlAltDel (the ACPI power button)")
    status = fc.wait(120)
    out = fc.out.decode(errors="replace").replace("\r\n", "\n")
    detail = f"exit {status}\n--- console ---\n{out[-4000:]}\n--- stderr ---\n{fc.err}"
    root_checks(checks(out), "API")
    tap("FC-LINUX button: powering off" in out and status == 0,
        "SendCtrlAltDel: /init sees the power button, powers off; bootvm exits 0", detail)
    tap(not COMPLAINTS.search(out), "no kernel complaints", detail)
    wrote(root, "written by the guest", "API")
    text = open(log).read()
    tap("[linux-vm:" in text and "api: PUT /actions -> 204" in text,
        "the log file has the API's lines", text[-1500:])
    tap(not os.path.exists(s), "the socket is gone after exit")


def config_boot(tmp):
    """Boot 2: --no-api --config-file, powers off by itself; the metrics' boot timeline."""
    root = root_image(tmp, "cfgroot", INIT_CFG)
    if not root:
        return
    log, metrics = os.path.join(tmp, "cfg.log"), os.path.join(tmp, "cfg.metrics")
    for path in (log, metrics):
        open(path, "w").close()
    cfg = {
        "boot-source": {"kernel_image_path": TEST_KERNEL, "boot_args": TEST_CMDLINE + " init=/init"},
        "drives": [{"drive_id": "rootfs", "path_on_host": root, "is_root_device": True,
                    "is_read_only": False}],
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 256, "smt": False},
        "network-interfaces": [{"iface_id": "eth0", "guest_mac": CFG_MAC, "bootvm_net": "user"}],
        "logger": {"log_path": log, "level": "Info", "show_level": True},
        "metrics": {"metrics_path": metrics},
    }
    path = os.path.join(tmp, "vm.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    t0 = time.monotonic()
    fc = Fc(tmp, "--no-api", "--id", "cfg-vm", "--config-file", path, sock=False)
    status = fc.wait(BOOT_TIMEOUT)
    print(f"# config-file boot ended after {time.monotonic() - t0:.1f} s")
    out = fc.out.decode(errors="replace").replace("\r\n", "\n")
    detail = f"exit {status}\n--- console ---\n{out[-4000:]}\n--- stderr ---\n{fc.err}"
    tap("FC-CONFIG powering off" in out and status == 0,
        "--no-api --config-file: Linux boots from the root drive to /init, which powers off; "
        "bootvm exits 0", detail)
    c = checks(out)
    root_checks(c, "config file")
    tap(c.get("mac") == CFG_MAC, "the bootvm_net interface is the guest's eth0, with its guest_mac",
        c.get("mac", ""))
    tap(c.get("cpus") == "0", "vcpu_count 1: one CPU online", c.get("cpus", ""))
    tap(not COMPLAINTS.search(out), "config file: no kernel complaints", detail)
    wrote(root, "written by the config-file boot", "config file")
    text = open(log).read()
    tap("[cfg-vm:" in text, "the config file's logger section: the log file has lines",
        text[-1500:])
    try:
        lines = [json.loads(x) for x in open(metrics) if x.strip()]
    except ValueError as e:
        lines = []
        print(f"# metrics: {e}")
    last = lines[-1] if lines else {}
    tl = last.get("boot_timeline")
    ev = json_events(tl) if shape_ok(tl) else []
    init = [d for n, _, d in ev if n == "run_init"]
    stop = [d for n, _, d in ev if n == "vm_stop"]
    # Linux probes PCI before its console driver prints: only BASE's first five lead.
    tap(in_order(ev, BASE[:5] + ["first_pci_config", "queue_notify", "run_init", "vm_stop"]) and
        in_order(ev, ["first_console_byte", "run_init"]) and
        len(init) == 1 and "/init" in init[0] and
        len(stop) == 1 and stop[0].endswith("exit status 0"),
        "the metrics line at exit carries the boot timeline: VM created ... Run /init ... "
        "power-off, in order", json.dumps(tl)[-2500:])
    notified = {d.split()[0] for n, _, d in ev if n == "queue_notify"}
    tap("virtio-blk0" in notified, "the timeline has the root drive's first queue notification",
        repr(sorted(notified)))
    tap("net" in last and "rx_packets_count" in last["net"],
        "the line at exit has Firecracker's net counters", repr(sorted(last)))


def main():
    if not TEST_KERNEL or not os.path.exists(BUSYBOX) or not os.path.exists("/dev/kvm"):
        skip("firecracker getting-started on real Linux",
             TEST_KERNEL_WHY or f"no {BUSYBOX} or /dev/kvm")
        return plan()
    for tool in ("curl", "mkfs.ext4", "debugfs"):
        if not shutil.which(tool):
            skip("firecracker getting-started on real Linux", f"{tool} is not installed")
            return plan()
    with tempfile.TemporaryDirectory(prefix="bootvm-fclinux-") as tmp:
        api_boot(tmp)
        config_boot(tmp)
    return plan()


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
