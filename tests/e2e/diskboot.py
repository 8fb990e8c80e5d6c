#!/usr/bin/env python3
"""`bootvm run --disk IMAGE` without --kernel: the kernel inside the disk, as TAP.

Four images, made here without root (mkfs.ext4 -d, sfdisk on a file,
mkfs.vfat + mcopy), each holding the test kernel's bzImage and a busybox
initramfs whose /init prints /proc/cmdline and powers off; one boot each
(about a minute here), and the command line the guest sees must be the one
the disk's boot configuration gave, with root= rewritten to /dev/vdaN and
console=ttyS0 added:
  1. unpartitioned ext4, Debian's /boot/vmlinuz + /boot/initrd.img links
  2. MBR, partition 1 (boot flag) with grub/grub.cfg + kernels/ (the fourth
     seed's layout), root=UUID= of partition 2, `set default` into a submenu
  3. GPT with an ESP holding a BLS entry (root=PARTUUID=)
  4. GPT with an ESP holding a unified kernel image (a PE32+ built here with
     .linux, .initrd, .cmdline sections)
Before booting, `bootvm disk-info` must show each one's entry and command line.

Run alone: python3 tests/e2e/diskboot.py [debian] [grub] [bls] [uki]
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

from tap import plan, skip, tap

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.dirname(os.path.dirname(HERE)))
BOOTVM = os.environ.get("BOOTVM", os.path.join(SOURCE_ROOT, "build", "src", "bootvm"))
BUSYBOX = "/bin/busybox"
BZIMAGE = os.path.join(os.path.dirname(SOURCE_ROOT), "shared", "test-kernel", "bzImage")
if not os.path.exists(BZIMAGE):
    BZIMAGE = "/work/shared/test-kernel/bzImage"
# The test kernel's required arguments but console=ttyS0, which bootvm adds.
KARGS = ("reboot=a panic=-1 clearcpuid=cx16,xsave,popcnt,smap "
         "rcupdate.rcu_cpu_stall_suppress=1")
BOOT_TIMEOUT = 900
INIT = 'read c < /proc/cmdline; echo "CMDLINE=$c"'
ROOT_UUID = "5e1f0000-aaaa-4bbb-8ccc-000000000002"
ROOT_PARTUUID = "6a1b0000-1111-4222-8333-000000000002"
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
MiB = 1 << 20


def sh(cmd, **kw):
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True, **kw)
    if p.returncode:
        raise RuntimeError(f"{cmd}: {p.stderr.strip()}")
    return p.stdout


def disk_info(img, append=None):
    p = subprocess.run([BOOTVM, "disk-info", img] + (["--append", append] if append else []),
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def boot(img, append=None):
    args = [BOOTVM, "run", "--disk", img, "--memory", "256M"]
    if append:
        args += ["--append", append]
    t0 = time.monotonic()
    try:
        p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=BOOT_TIMEOUT)
        status, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        status, out, err = "timeout", e.stdout or b"", e.stderr or b""
    print(f"# boot of {os.path.basename(img)} took {time.monotonic() - t0:.1f} s")
    return status, out.decode(errors="replace"), err.decode(errors="replace")


def check_boot(name, img, want, append=None):
    """disk-info says want, the guest sees want."""
    rc, info = disk_info(img, append)
    tap(rc == 0 and f"command line: {want}\n" in info,
        f"{name}: disk-info shows the command line that will boot", info)
    status, out, err = boot(img, append)
    m = re.search(r"^CMDLINE=(.*?)\r?$", out, re.M)
    tap(status == 0 and "bootvm-init: exit status 0" in out,
        f"{name}: the disk's kernel reached /init and powered off",
        f"status {status}\n{err}\n{out[-3000:]}")
    got = m.group(1) if m else None
    tap(got == want, f"{name}: /proc/cmdline is the disk's command line",
        f"{got!r} != {want!r}")


def mkfs_ext4(img, src, offset, size, extra=""):
    sh(f"mkfs.ext4 -q -F -d {src} {extra} -E offset={offset} {img} {size // 1024}k")


def fat_image(path, size, files):
    """A FAT file system image holding files {dest: src}."""
    sh(f"truncate -s {size} {path} && mkfs.vfat -F 32 -n ESP {path} >/dev/null")
    dirs = set()
    for dest in files:
        parts = dest.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    for d in sorted(dirs, key=len):
        sh(f"mmd -i {path} ::/{d}")
    for dest, src in files.items():
        sh(f"mcopy -i {path} {src} ::{dest}")


def gpt_disk(img, esp, root_dir=None):
    """GPT: partition 1 the ESP image, partition 2 (if root_dir) ext4 with ROOT_UUID."""
    esp_size = os.path.getsize(esp)
    layout = f"label: gpt\nstart=2048, size={esp_size // 512}, type={ESP_TYPE}\n"
    total = MiB + esp_size + 20 * MiB
    if root_dir:
        layout += f"start={2048 + esp_size // 512}, size={16 * MiB // 512}, type={LINUX_TYPE}, uuid={ROOT_PARTUUID}\n"
    sh(f"truncate -s {total} {img}")
    subprocess.run(["sfdisk", "-q", img], input=layout, text=True, check=True,
                   capture_output=True)
    sh(f"dd if={esp} of={img} bs=1M seek=1 conv=notrunc status=none")
    if root_dir:
        mkfs_ext4(img, root_dir, MiB + esp_size, 16 * MiB, f"-U {ROOT_UUID}")


def build_uki(path, kernel, initrd, cmdline, osrel):
    """A minimal PE32+ (x86-64 EFI application) with the UKI sections."""
    datas = [(b".osrel", osrel), (b".cmdline", cmdline), (b".linux", kernel), (b".initrd", initrd)]
    pe_off, nsec, opt_size = 0x80, len(datas), 0xf0
    headers = pe_off + 24 + opt_size + nsec * 40
    ptr = (headers + 0x1ff) // 0x200 * 0x200
    secs = []
    va = 0x1000
    for name, data in datas:
        raw = (len(data) + 0x1ff) // 0x200 * 0x200
        secs.append((name, data, ptr, raw, va))
        ptr += raw
        va += (len(data) + 0xfff) // 0x1000 * 0x1000
    out = bytearray(ptr)
    out[0:2] = b"MZ"
    struct.pack_into("<I", out, 0x3c, pe_off)
    out[pe_off:pe_off + 4] = b"PE\0\0"
    # COFF: machine, sections, time, symtab, nsyms, optional header size, characteristics
    struct.pack_into("<HHIIIHH", out, pe_off + 4, 0x8664, nsec, 0, 0, 0, opt_size, 0x0206)
    o = pe_off + 24
    struct.pack_into("<HBBIIIII", out, o, 0x20b, 0, 0, 0, 0, 0, 0, 0x1000)
    struct.pack_into("<QII", out, o + 24, 0x140000000, 0x1000, 0x200)  # image base, alignments
    struct.pack_into("<I", out, o + 56, va)          # SizeOfImage
    struct.pack_into("<I", out, o + 60, ptr and (headers + 0x1ff) // 0x200 * 0x200)
    struct.pack_into("<H", out, o + 68, 10)          # subsystem: EFI application
    struct.pack_into("<I", out, o + 108, 16)         # NumberOfRvaAndSizes
    t = o + opt_size
    for i, (name, data, p, raw, v) in enumerate(secs):
        struct.pack_into("<8sIIII", out, t + i * 40, name, len(data), v, raw, p)
        struct.pack_into("<I", out, t + i * 40 + 36, 0x40000040)  # initialised data, read
        out[p:p + len(data)] = data
    with open(path, "wb") as f:
        f.write(out)


def main():
    groups = set(sys.argv[1:]) or {"debian", "grub", "bls", "uki"}
    need = [t for t in ("mkfs.ext4", "sfdisk", "mkfs.vfat", "mcopy", "mmd") if not shutil.which(t)]
    if need or not os.path.exists(BZIMAGE) or not os.path.exists(BUSYBOX) or not os.path.exists("/dev/kvm"):
        skip("disk boots", f"missing: {' '.join(need) or BZIMAGE + ' or busybox or /dev/kvm'}")
        return plan()
    tmp = tempfile.mkdtemp(prefix="bootvm-diskboot-")
    try:
        initrd = os.path.join(tmp, "initrd.cpio")
        p = subprocess.run([BOOTVM, "initramfs", "-o", initrd, "--compress", "none",
                            "--busybox", BUSYBOX, "--init-run", INIT],
                           capture_output=True, text=True)
        if not tap(p.returncode == 0, "bootvm initramfs builds the init", p.stderr):
            return plan()

        if "debian" in groups:
            root = os.path.join(tmp, "r1")
            os.makedirs(f"{root}/boot")
            os.makedirs(f"{root}/etc")
            shutil.copy(BZIMAGE, f"{root}/boot/vmlinuz-6.1.192")
            shutil.copy(initrd, f"{root}/boot/initrd.img-6.1.192")
            os.symlink("vmlinuz-6.1.192", f"{root}/boot/vmlinuz")
            os.symlink("initrd.img-6.1.192", f"{root}/boot/initrd.img")
            open(f"{root}/etc/fstab", "w").write("/dev/vda / ext4 defaults 0 1\n")
            img = os.path.join(tmp, "debian.img")
            sh(f"truncate -s 64M {img} && mkfs.ext4 -q -d {root} {img}")
            check_boot("unpartitioned ext4, /boot/vmlinuz", img,
                       f"root=/dev/vda ro console=ttyS0 {KARGS}", KARGS)

        if "grub" in groups:
            b = os.path.join(tmp, "b2")
            os.makedirs(f"{b}/grub")
            os.makedirs(f"{b}/kernels")
            shutil.copy(BZIMAGE, f"{b}/kernels/vmlinuz-6.1")
            shutil.copy(initrd, f"{b}/kernels/initrd.img-6.1")
            with open(f"{b}/grub/grub.cfg", "w") as f:
                f.write(f"""set default="1>0"
set timeout=5
if [ x"${{feature_menuentry_id}}" = xy ]; then
  menuentry_id_option="--id"
else
  menuentry_id_option=""
fi
set kernels=/kernels
menuentry 'Seed' $menuentry_id_option 'seed' {{
	linux $kernels/vmlinuz-6.1 root=UUID={ROOT_UUID} ro quiet
}}
submenu 'Advanced options' {{
	menuentry 'Seed (test)' {{
		insmod part_msdos
		set root='hd0,msdos1'
		if [ x$feature_platform_search_hint = xy ]; then
		  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,msdos1 B0075EED-0000-4000-8000-000000000001
		else
		  search --no-floppy --fs-uuid --set=root B0075EED-0000-4000-8000-000000000001
		fi
		echo 'Loading Linux ...'
		linux ${{kernels}}/vmlinuz-6.1 root=UUID={ROOT_UUID} ro grub.entry="Seed (test)" {KARGS}
		initrd $kernels/initrd.img-6.1
	}}
}}
""")
            r = os.path.join(tmp, "r2")
            os.makedirs(f"{r}/etc")
            open(f"{r}/etc/fstab", "w").write("")
            img = os.path.join(tmp, "grub.img")
            sh(f"truncate -s 64M {img}")
            subprocess.run(["sfdisk", "-q", img], text=True, check=True, capture_output=True,
                           input="label: dos\nstart=2048, size=40M, type=83, bootable\nsize=16M, type=83\n")
            mkfs_ext4(img, b, MiB, 40 * MiB, "-U b0075eed-0000-4000-8000-000000000001")
            mkfs_ext4(img, r, 41 * MiB, 16 * MiB, f"-U {ROOT_UUID}")
            check_boot("MBR, grub.cfg + kernels/ on the boot partition", img,
                       f'root=/dev/vda2 ro "grub.entry=Seed (test)" {KARGS} console=ttyS0')

        if "bls" in groups:
            esp = os.path.join(tmp, "esp3.img")
            entry = os.path.join(tmp, "test.conf")
            open(entry, "w").write(f"title Test BLS\nversion 6.1.192\nlinux /vmlinuz-6.1\n"
                                   f"initrd /initrd.cpio\noptions root=PARTUUID={ROOT_PARTUUID} "
                                   f"rw bls=yes {KARGS}\n")
            old = os.path.join(tmp, "old.conf")
            open(old, "w").write("title Old\nversion 5.10\nlinux /vmlinuz-old\n")
            loader = os.path.join(tmp, "loader.conf")
            open(loader, "w").write("timeout 3\ndefault test*\n")
            fat_image(esp, 40 * MiB, {"/loader/entries/test.conf": entry,
                                      "/loader/entries/zzz-old.conf": old,
                                      "/loader/loader.conf": loader,
                                      "/vmlinuz-6.1": BZIMAGE, "/initrd.cpio": initrd})
            r = os.path.join(tmp, "r3")
            os.makedirs(f"{r}/etc")
            img = os.path.join(tmp, "bls.img")
            gpt_disk(img, esp, r)
            check_boot("GPT, a BLS entry on the ESP", img,
                       f"root=/dev/vda2 rw bls=yes {KARGS} console=ttyS0")

        if "uki" in groups:
            uki = os.path.join(tmp, "test.efi")
            build_uki(uki, open(BZIMAGE, "rb").read(), open(initrd, "rb").read(),
                      f"uki=1 {KARGS}\n\0".encode(),
                      b'NAME="Test"\nPRETTY_NAME="Test UKI"\nVERSION_ID=1\n')
            esp = os.path.join(tmp, "esp4.img")
            fat_image(esp, 40 * MiB, {"/EFI/Linux/test.efi": uki})
            img = os.path.join(tmp, "uki.img")
            gpt_disk(img, esp)
            check_boot("GPT, a unified kernel image in EFI/Linux", img,
                       f"uki=1 {KARGS} console=ttyS0")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return plan()


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
