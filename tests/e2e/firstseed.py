#!/usr/bin/env python3
"""The first seed's root disk end to end, without root, as TAP (one Linux boot).

A root filesystem tarball is made here with tarfile (owners and modes set in
the archive, so no root is needed): a static busybox with applet links,
/etc/passwd with root and alice (1000:1000, /home/alice), /etc/group and an
/init script. `bootvm mkdisk --ssh-key KEY:alice --ssh-key KEY2 --hostname`
turns it into an ext4 image, run as an unprivileged user (uid 65534 through
setpriv when we are root) to show no root is needed. Then the test kernel
boots with `--disk root.ext4 --append "... root=/dev/vda rw init=/init"` and
no initramfs; /init prints stat(1) of both ~/.ssh and authorized_keys, their
SHA-256 and /etc/hostname, remounts / read-only and powers off. The checks:
alice's uid/gid on her files, root's on root's, modes 700/600, contents equal
to the key files, bootvm's exit status 0, and `e2fsck -fn` clean after the
guest has used the filesystem.

Environment: BOOTVM (the binary; bootvm-mkdisk is beside it), SOURCE_ROOT,
BOOTVM_TEST_KERNEL (as for linux.py).
Hold /work/wt/linux.lock (flock) around it on shared machines.
"""
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time

from tap import plan, skip, tap

# The test kernel, its command line and the busybox: as linux.py finds them.
from linux import BOOT_TIMEOUT, BOOTVM, BUSYBOX, TEST_CMDLINE, TEST_KERNEL, TEST_KERNEL_WHY

NOBODY = 65534
HOSTNAME = "first-seed"
ALICE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFirstSeedAliceKey0000000000000000000000 alice@host\n"
ROOT_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFirstSeedRootKey00000000000000000000000 admin@host\n"
APPLETS = ["sh", "stat", "sha256sum", "mount", "poweroff", "cat"]
MTIME = 1700000000

# Five programs (stat, sha256sum, two mounts, poweroff); the rest are shell builtins.
INIT = f"""#!/bin/sh
export PATH=/bin
echo FIRSTSEED-BEGIN
stat -c 'STAT %u %g %a %n' /home/alice/.ssh /home/alice/.ssh/authorized_keys \\
    /root/.ssh /root/.ssh/authorized_keys
sha256sum /home/alice/.ssh/authorized_keys /root/.ssh/authorized_keys | \\
    while read h f; do echo "SHA $h $f"; done
read h < /etc/hostname; echo "HOSTNAME=$h"
echo FIRSTSEED-END
mount -t proc proc /proc
mount -o remount,ro / && echo "REMOUNT=ro"
poweroff -f
"""


def rootfs_tar(path):
    """The seed's root filesystem, as an unprivileged user's tarfile would write it."""
    def add(tar, name, type=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, data=None, **kw):
        t = tarfile.TarInfo(name)
        t.type, t.mode, t.uid, t.gid, t.mtime = type, mode, uid, gid, MTIME
        for k, v in kw.items():
            setattr(t, k, v)
        if data is not None:
            t.size = len(data)
        tar.addfile(t, io.BytesIO(data) if data is not None else None)

    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for d, mode in (("./", 0o755), ("./bin/", 0o755), ("./etc/", 0o755), ("./dev/", 0o755),
                        ("./proc/", 0o555), ("./sys/", 0o555), ("./tmp/", 0o1777),
                        ("./root/", 0o700), ("./home/", 0o755)):
            add(tar, d, tarfile.DIRTYPE, mode)
        add(tar, "./home/alice/", tarfile.DIRTYPE, 0o755, uid=1000, gid=1000)
        add(tar, "./bin/busybox", mode=0o755, data=busybox)
        for a in APPLETS:
            add(tar, f"./bin/{a}", tarfile.SYMTYPE, 0o777, linkname="busybox")
        add(tar, "./etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"
            b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
            b"alice:x:1000:1000:Alice:/home/alice:/bin/sh\n")
        add(tar, "./etc/group", data=b"root:x:0:\nnogroup:x:65534:\nalice:x:1000:\n")
        add(tar, "./init", mode=0o755, data=INIT.encode())


def run_unprivileged(args):
    """args as uid/gid NOBODY when we are root (setpriv), else as ourselves: (result, uid)."""
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            return None, "root, and no setpriv to drop it"
        args = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] + args
        uid = NOBODY
    else:
        uid = os.geteuid()
    return subprocess.run(args, capture_output=True, text=True, timeout=300), uid


def main():
    kernel, why = TEST_KERNEL, TEST_KERNEL_WHY
    need = [t for t in ("e2fsck", "mke2fs") if not shutil.which(t)]
    if not kernel or need or not os.path.exists(BUSYBOX) or not os.path.exists("/dev/kvm"):
        skip("the first seed's disk", why or f"missing: {' '.join(need) or BUSYBOX + ' or /dev/kvm'}")
        return plan()

    tmp = tempfile.mkdtemp(prefix="bootvm-firstseed-")
    try:
        # World-accessible, so that the unprivileged mkdisk can read and write here.
        os.chmod(tmp, 0o777)
        tarpath, img = os.path.join(tmp, "rootfs.tar"), os.path.join(tmp, "root.ext4")
        key, key2 = os.path.join(tmp, "alice.pub"), os.path.join(tmp, "admin.pub")
        rootfs_tar(tarpath)
        for p, text in ((key, ALICE_KEY), (key2, ROOT_KEY)):
            with open(p, "w") as f:
                f.write(text)
        for p in (tarpath, key, key2):
            os.chmod(p, 0o644)

        r, uid = run_unprivileged([BOOTVM, "mkdisk", "-o", img, "--ssh-key", f"{key}:alice",
                                   "--ssh-key", key2, "--hostname", HOSTNAME, tarpath])
        if r is None:
            skip("mkdisk as an unprivileged user", uid)
            return plan()
        made = r.returncode == 0 and os.path.exists(img)
        tap(made and uid != 0 and os.stat(img).st_uid == uid,
            f"bootvm mkdisk --ssh-key --hostname as uid {uid} (not root) writes the image",
            r.stderr)
        if not made:
            return plan()
        p = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True)
        tap(p.returncode == 0, "the image passes e2fsck -fn", p.stdout + p.stderr)

        t0 = time.monotonic()
        args = [BOOTVM, "run", "--kernel", kernel, "--cpus", "1", "--memory", "256M",
                "--disk", img, "--append", f"{TEST_CMDLINE} root=/dev/vda rw init=/init"]
        try:
            b = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=BOOT_TIMEOUT)
            status, out, err = b.returncode, b.stdout.decode(errors="replace"), \
                b.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired as e:
            status = "timeout"
            out = (e.stdout or b"").decode(errors="replace")
            err = (e.stderr or b"").decode(errors="replace")
        print(f"# boot took {time.monotonic() - t0:.1f} s")
        detail = f"status {status}\n{err}\n{out[-4000:]}"
        tap(status == 0 and "FIRSTSEED-END" in out,
            "Linux mounted the image as / (root=/dev/vda rw), ran its /init and powered off "
            "(exit status 0)", detail)

        stats = {m.group(4): (int(m.group(1)), int(m.group(2)), m.group(3))
                 for m in re.finditer(r"^STAT (\d+) (\d+) (\d+) (\S+?)\r?$", out, re.M)}
        sums = dict((m.group(2), m.group(1))
                    for m in re.finditer(r"^SHA ([0-9a-f]{64}) (\S+?)\r?$", out, re.M))
        want = {
            "/home/alice/.ssh": (1000, 1000, "700"),
            "/home/alice/.ssh/authorized_keys": (1000, 1000, "600"),
            "/root/.ssh": (0, 0, "700"),
            "/root/.ssh/authorized_keys": (0, 0, "600"),
        }
        for path, w in want.items():
            tap(stats.get(path) == w,
                f"in the guest, {path} is owned by {w[0]}:{w[1]} with mode {w[2]}",
                f"{stats.get(path)} != {w}")
        for path, text in (("/home/alice/.ssh/authorized_keys", ALICE_KEY),
                           ("/root/.ssh/authorized_keys", ROOT_KEY)):
            tap(sums.get(path) == hashlib.sha256(text.encode()).hexdigest(),
                f"in the guest, {path} holds exactly its key file", f"{sums.get(path)}")
        m = re.search(r"^HOSTNAME=(.*?)\r?$", out, re.M)
        tap(m is not None and m.group(1) == HOSTNAME, "in the guest, /etc/hostname is --hostname",
            m.group(1) if m else "no HOSTNAME line")
        tap("REMOUNT=ro" in out, "the guest remounted / read-only before powering off", detail)

        p = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True)
        tap(p.returncode == 0, "the image passes e2fsck -fn after the guest used it",
            p.stdout + p.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return plan()


if __name__ == "__main__":
    raise SystemExit(1 if main() else 0)
