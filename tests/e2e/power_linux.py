#!/usr/bin/env python3
"""Clean shutdown of real Linux through the ACPI power button, as TAP.

One boot of the shared test kernel (../shared/test-kernel), --cpus 1, with
`bootvm run --shutdown-grace 60`. Its busybox initramfs (`bootvm initramfs
--init-run`) waits, in shell builtins, for the power button's ACPI event:
the test kernel has the ACPI button driver but no evdev (no
/dev/input/event*, so no busybox acpid), so /init watches the fixed event's
counter, /sys/firmware/acpi/interrupts/ff_pwr_btn, which ACPICA's SCI
handler increments before it hands the event to the button driver. It
prints a ready line; the test then sends SIGTERM to bootvm, which presses
the button; /init sees the event and powers off. Checked: the kernel found
the fixed-feature button (no DSDT device), the event was enabled before the
press and counted once after it, bootvm exits 0 well inside the grace, the
kernel's "reboot: Power down", -v's lines about the press and the power-off,
no ACPI complaints.

Environment: BOOTVM, SOURCE_ROOT, BOOTVM_TEST_KERNEL (as linux.py).
Hold the shared lock when running it: flock /work/wt/linux.lock meson test -C build power-linux
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from guests import read_until
from tap import plan, skip, tap
from linux import BOOT_TIMEOUT, BOOTVM, BUSYBOX, COMPLAINTS, TEST_CMDLINE, TEST_KERNEL, \
    TEST_KERNEL_WHY

GRACE = 60
FF = "/sys/firmware/acpi/interrupts"

# Shell builtins only (each fork+exec costs 1-2 s here): one mkfifo, for a
# `read -t 1` that sleeps without a sleep process.
INIT = r"""
read n0 state < %(ff)s/ff_pwr_btn; read sci0 x < %(ff)s/sci
echo "CHECK pwrbtn_before=$n0 sci_before=$sci0"; echo "STATE before=[$state]"
mkfifo /dev/tick; exec 3<> /dev/tick
echo "POWER-TEST ready"
i=0
while :; do
	read n state < %(ff)s/ff_pwr_btn
	[ "$n" != "$n0" ] && break
	read -t 1 x <&3
	i=$((i+1))
	[ $i -gt %(limit)d ] && { echo "POWER-TEST no button event"; exit 1; }
done
read sci x < %(ff)s/sci
echo "CHECK pwrbtn_after=$n sci_after=$sci polls=$i"; echo "STATE after=[$state]"
echo "POWER-TEST button event: powering off"
""" % {"ff": FF, "limit": 2 * GRACE}


def checks(out):
    return dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", " ".join(
        l for l in out.splitlines() if l.startswith("CHECK "))))


def main():
    if not TEST_KERNEL or not os.path.exists(BUSYBOX) or not os.path.exists("/dev/kvm"):
        skip("power button on real Linux", TEST_KERNEL_WHY or f"no {BUSYBOX} or /dev/kvm")
        return plan()
    with tempfile.TemporaryDirectory(prefix="bootvm-power-") as tmp:
        initrd = os.path.join(tmp, "initrd.cpio")
        p = subprocess.run([BOOTVM, "initramfs", "-o", initrd, "--compress", "none",
                            "--busybox", BUSYBOX, "--init-run", INIT],
                           capture_output=True, text=True)
        if not tap(p.returncode == 0, "bootvm initramfs builds the power-button init", p.stderr):
            return plan()
        args = [BOOTVM, "run", "-v", "--kernel", TEST_KERNEL, "--initrd", initrd, "--cpus", "1",
                "--memory", "256M", "--append", TEST_CMDLINE, "--shutdown-grace", str(GRACE)]
        t0 = time.monotonic()
        vm = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        out = read_until(vm, b"POWER-TEST ready", t0 + BOOT_TIMEOUT)
        t_ready = time.monotonic()
        ready = b"POWER-TEST ready" in out
        if ready:
            print(f"# /init ready after {t_ready - t0:.1f} s; SIGTERM")
            vm.send_signal(signal.SIGTERM)
        else:
            vm.kill()
        try:
            rest, err = vm.communicate(timeout=GRACE + 30)
            status = vm.returncode
        except subprocess.TimeoutExpired:
            vm.kill()
            rest, err = vm.communicate()
            status = "timeout"
        secs = time.monotonic() - t_ready
        out = (out + rest).decode(errors="replace").replace("\r\n", "\n")
        err = err.decode(errors="replace")
        detail = f"$ {' '.join(args)}\nstatus {status} after {secs:.1f} s\n--- console ---\n" \
                 f"{out}\n--- stderr ---\n{err}"
        c = checks(out)

        if not tap(ready, "the test kernel reaches /init's ready line", detail):
            return plan()
        tap("ACPI: button: Power Button [PWRF]" in out and
            re.search(r"input: Power Button as /devices/LNXSYSTM:00/LNXPWRBN:00/input/input\d+",
                      out) is not None,
            "Linux finds the fixed-feature power button (LNXPWRBN, PWRF) from the FADT", detail)
        # ff_pwr_btn reads "COUNT  EN STS enabled ...": EN and STS are PM1_EN/PM1_STS read back.
        states = dict(re.findall(r"^STATE (\w+)=\[(.*)\]$", out, re.M))
        before, after = states.get("before", ""), states.get("after", "")
        tap(c.get("pwrbtn_before") == "0" and re.match(r"EN\s+enabled\b", before) is not None,
            "before the press: PWRBTN_EN set (Linux's handler enabled the event), no status, "
            "no event yet", f"{c}\nff_pwr_btn state [{before}]")
        tap(re.match(r"EN\s+enabled\b", after) is not None,
            "after the event: Linux cleared PWRBTN_STS (write 1), PWRBTN_EN still set",
            f"ff_pwr_btn state [{after}]")
        tap(status == 0, f"SIGTERM with --shutdown-grace {GRACE}: the guest powers off, "
            "bootvm exits 0", detail)
        tap(status == 0 and secs < GRACE, f"powered off {secs:.1f} s after SIGTERM, inside the "
            f"{GRACE} s grace", detail)
        tap(c.get("pwrbtn_after") == "1" and int(c.get("sci_after", 0)) > int(c.get("sci_before", 0))
            and "POWER-TEST button event: powering off" in out,
            "the guest took the press as one power-button event through the SCI", str(c))
        tap("reboot: Power down" in out, "the guest's shutdown message: reboot: Power down", detail)
        tap(re.search(r"signal Terminated: pressed the ACPI power button; waiting up to 60 s", err)
            is not None and "guest powered off (ACPI S5)" in err and "killed" not in err,
            "-v: bootvm says it pressed the button, then that the guest powered off", err)
        bad = [l for l in out.splitlines() if COMPLAINTS.search(l)]
        tap(not bad, "no ACPI/APIC complaints in the kernel log", "\n".join(bad))
    return plan()


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
