#!/usr/bin/env python3
"""`bootvm firecracker` with real Linux: Firecracker's getting-started sequence
over curl --unix-socket (logger, boot-source with the test kernel,
machine-config with 1 vCPU, the root drive, InstanceStart), one boot. The root
drive is an ext4 image (mkfs.ext4 -d) with busybox and a shell /init, no
initramfs: the kernel mounts it from the root=/dev/vda rw that
is_root_device adds, as Firecracker does. /init reports what it sees, writes
a file, says it is ready and waits for the ACPI power button, which the test
presses with SendCtrlAltDel; /init then powers off, bootvm exits 0, and the
file is read back from the image with debugfs.

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

from firecracker import Fc, check_204, check_json, curl
from linux import BOOT_TIMEOUT, BUSYBOX, COMPLAINTS, TEST_CMDLINE, TEST_KERNEL, \
    TEST_KERNEL_WHY, make_ext4
from tap import plan, skip, tap

FF = "/sys/firmware/acpi/interrupts/ff_pwr_btn"
APPLETS = ["sh", "mount", "mkfifo", "poweroff"]

# Shell builtins but for mount, mkfifo and poweroff (each exec costs 1-2 s here).
INIT = r"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
read cmdline < /proc/cmdline; echo "CHECK cmdline=$cmdline"
while read id parent majmin root mnt opts rest; do
	[ "$mnt" = / ] && echo "CHECK root=$majmin ${opts%%,*} ${rest#*- }"
done < /proc/self/mountinfo
read serial < /sys/block/vda/serial; echo "CHECK serial=$serial"
echo "written by the guest" > /fc-wrote
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
        tree = os.path.join(tmp, "tree")
        for d in ("bin", "proc", "sys", "dev"):
            os.makedirs(os.path.join(tree, d))
        shutil.copy(BUSYBOX, os.path.join(tree, "bin", "busybox"))
        for a in APPLETS:
            os.symlink("busybox", os.path.join(tree, "bin", a))
        with open(os.path.join(tree, "init"), "w") as f:
            f.write(INIT)
        os.chmod(os.path.join(tree, "init"), 0o755)
        root = os.path.join(tmp, "rootfs.ext4")
        st, msg = make_ext4(root, tree, 32 << 20)
        if not tap(st == 0, "mkfs.ext4 -d builds the root drive", msg):
            return plan()
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
            return plan()
        info = check_json(s, "/", "InstanceInfo", "while Linux runs")
        tap(info.get("state") == "Running" and info.get("id") == "linux-vm",
            "GET /: Running, the --id", repr(info))
        check_204(s, "PUT", "/actions", {"action_type": "SendCtrlAltDel"},
                  "SendCtrlAltDel (the ACPI power button)")
        status = fc.wait(120)
        out = fc.out.decode(errors="replace").replace("\r\n", "\n")
        c = dict(m.groups() for m in re.finditer(r"^CHECK (\w+)=(.*)$", out, re.M))
        detail = f"exit {status}\n--- console ---\n{out[-4000:]}\n--- stderr ---\n{fc.err}"
        tap(c.get("cmdline", "").endswith("init=/init root=/dev/vda rw"),
            "is_root_device: the command line ends with root=/dev/vda rw, as Firecracker's",
            c.get("cmdline", ""))
        tap(re.match(r"\d+:0 rw ext4 /dev/(root|vda)", c.get("root", "")) is not None,
            "/ is vda (minor 0), ext4, read-write", c.get("root", ""))
        tap(c.get("serial") == "rootfs", "the drive's serial is its drive_id", c.get("serial", ""))
        tap("FC-LINUX button: powering off" in out and status == 0,
            "SendCtrlAltDel: /init sees the power button, powers off; bootvm exits 0", detail)
        tap(not COMPLAINTS.search(out), "no kernel complaints", detail)
        r = subprocess.run(["debugfs", "-R", "cat /fc-wrote", root], capture_output=True, text=True)
        tap(r.stdout.strip() == "written by the guest",
            "the file the guest wrote is on the host's image", r.stdout + r.stderr)
        text = open(log).read()
        tap("[linux-vm:" in text and "api: PUT /actions -> 204" in text,
            "the log file has the API's lines", text[-1500:])
        tap(not os.path.exists(s), "the socket is gone after exit")
    return plan()


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
