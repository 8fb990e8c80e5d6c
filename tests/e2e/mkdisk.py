#!/usr/bin/env python3
"""`bootvm mkdisk`, as TAP: archives and directories into ext4 images, read back with debugfs.

Each image must pass `e2fsck -fn`. The main archive (built here with tarfile:
owners, setuid modes, devices, FIFOs, fast and slow symlinks, hard links,
nanosecond times, xattrs including security.capability) is compared file by
file against what it says and, when we are root, against `tar -x` of the same
archive. Then sparse files (a directory source and a GNU tar --sparse
archive), the compressions, --add, --ssh-key, --hostname, hostile archives
and the error paths (no output file, no temporary file left behind).

Environment: BOOTVM (the binary; bootvm-mkdisk is beside it).
"""
import gzip
import hashlib
import io
import os
import pty
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading

from tap import plan, skip, tap

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.dirname(os.path.dirname(HERE)))
BUILD_ROOT = os.environ.get("BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
BOOTVM = os.environ.get("BOOTVM", os.path.join(BUILD_ROOT, "src", "bootvm"))
ROOT = os.geteuid() == 0

CAP_NET_RAW = bytes([1, 0, 0, 2, 0, 0x20, 0, 0] + [0] * 12)   # VFS_CAP_REVISION_2, effective
MTIME = 1600000000
LONG_TARGET = "/usr/lib/" + "x" * 90 + "/target"                 # a slow symlink (> 59 bytes)
BIG = bytes((i * 7919 + (i >> 9)) & 0xff for i in range(300 * 1024 + 17))

SENTINEL = object()


def mkdisk(*args, timeout=120):
    r = subprocess.run([BOOTVM, "mkdisk", *args], capture_output=True, timeout=timeout)
    r.err = r.stderr.decode(errors="replace")
    return r


def debugfs(img, *cmds):
    """Run debugfs commands (in one process) on img; stdout as text."""
    with tempfile.NamedTemporaryFile("w", suffix=".cmds") as f:
        f.write("\n".join(cmds) + "\n")
        f.flush()
        r = subprocess.run(["debugfs", "-f", f.name, img], capture_output=True, timeout=120)
    return r.stdout.decode(errors="surrogateescape")


def fsck(img):
    r = subprocess.run(["e2fsck", "-fn", img], capture_output=True, timeout=120)
    return r.returncode == 0, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


# ---- the main archive: everything a root filesystem has ----

def ti(name, type=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, data=None, pax=None, **kw):
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.uid, t.gid, t.mtime = type, mode, uid, gid, MTIME
    for k, v in kw.items():
        setattr(t, k, v)
    if pax:
        t.pax_headers = pax
    return t, data


def main_entries():
    passwd = (b"root:x:0:0:root:/root:/bin/sh\n"
              b"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
              b"alice:x:1000:1001:Alice:/home/alice:/bin/sh\n")
    e = [
        ti("./", tarfile.DIRTYPE, 0o755),
        ti("./etc/", tarfile.DIRTYPE, 0o755),
        ti("./etc/passwd", data=passwd),
        ti("./etc/motd", data=b"first\n"),
        ti("./etc/shadow", mode=0o640, gid=42, data=b"root:*:1::::::\n"),
        ti("./usr/", tarfile.DIRTYPE, 0o755),
        ti("./usr/bin/", tarfile.DIRTYPE, 0o755),
        ti("./usr/bin/ping", mode=0o755, data=b"\x7fELF ping",
           pax={"SCHILY.xattr.security.capability": CAP_NET_RAW.decode("latin-1")}),
        ti("./usr/bin/sudo", mode=0o4755, data=b"\x7fELF sudo"),
        ti("./usr/bin/wall", mode=0o2755, gid=5, data=b"\x7fELF wall"),
        ti("./usr/bin/ping6", tarfile.LNKTYPE, linkname="./usr/bin/ping"),
        ti("./bin", tarfile.SYMTYPE, 0o777, linkname="usr/bin"),
        ti("./usr/long", tarfile.SYMTYPE, 0o777, linkname=LONG_TARGET),
        ti("./usr/big", data=BIG),
        ti("./usr/empty", data=b""),
        ti("./usr/times", data=b"t",
           pax={"mtime": "1600000000.123456789", "atime": "1500000000.5", "ctime": "1400000000.25"}),
        ti("./usr/attrs", data=b"a", pax={"SCHILY.xattr.user.foo": "bar",
                                          "SCHILY.xattr.user.empty": ""}),
        ti("./usr/bigid", uid=70000, gid=80000, data=b"ids"),
        ti("./usr/caf\u00e9 \u2603", data=b"utf-8 name"),
        ti("./dev/", tarfile.DIRTYPE, 0o755),
        ti("./dev/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3),
        ti("./dev/sda", tarfile.BLKTYPE, 0o660, gid=6, devmajor=8, devminor=0),
        ti("./dev/big", tarfile.CHRTYPE, 0o600, devmajor=300, devminor=70000),
        ti("./run/", tarfile.DIRTYPE, 0o755),
        ti("./run/initctl", tarfile.FIFOTYPE, 0o600),
        ti("./home/", tarfile.DIRTYPE, 0o755),
        ti("./home/alice/", tarfile.DIRTYPE, 0o750, uid=1000, gid=1001),
        ti("./home/alice/.ssh/", tarfile.DIRTYPE, 0o755, uid=1000, gid=1001),
        ti("./home/alice/.ssh/authorized_keys", mode=0o644, uid=1000, gid=1001,
           data=b"ssh-ed25519 AAAAold alice@old"),
        ti("./tmp/", tarfile.DIRTYPE, 0o1777),
        # an implied parent: ./var/ and ./var/lib/ have no entries
        ti("./var/lib/state", data=b"s"),
        # later wins, as with tar
        ti("./etc/motd", data=b"second\n"),
    ]
    # a directory that needs several blocks
    e.append(ti("./many/", tarfile.DIRTYPE, 0o755))
    for i in range(400):
        e.append(ti(f"./many/file-with-a-longish-name-{i:04d}", data=str(i).encode()))
    return e


def write_tar(path, entries, fmt=tarfile.PAX_FORMAT, mode="w"):
    with tarfile.open(path, mode, format=fmt) as t:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            else:
                t.addfile(info)


# ---- reading an image back ----

TYPES = {"1": "reg", "2": "dir", "3": "chr", "4": "blk", "5": "fifo", "6": "sock", "7": "lnk"}


def image_tree(img):
    """{path: {...}} for every entry of the image (paths relative, "" the root)."""
    tree, todo = {}, [""]
    while todo:
        d = todo.pop()
        out = debugfs(img, f'ls -p "/{d}"')
        for line in out.splitlines():
            # /ino/mode/uid/gid/name/size/
            m = re.match(r"^/(\d+)/(\d+)/(\d+)/(\d+)/([^/]*)/(\d*)/$", line)
            if not m or m.group(5) in ("", ".", "..") or m.group(1) == "0":
                continue
            name = m.group(5)
            p = f"{d}/{name}" if d else name
            tree[p] = {"ino": int(m.group(1))}
            if int(m.group(2), 8) & 0o170000 == 0o040000:
                todo.append(p)
    tree[""] = {"ino": 2}
    paths = sorted(tree)
    out = debugfs(img, *[f'stat "/{p}"' for p in paths])
    # debugfs echoes each command from -f as "debugfs: CMD"
    chunks = re.split(r"^debugfs: stat .*$", out, flags=re.M)[1:]
    for p, c in zip(paths, chunks):
        tree[p].update(parse_stat(c))
    return tree


def parse_stat(s):
    r = {}
    m = re.search(r"Type: (.+?)\s+Mode:\s+(\d+)", s)
    r["type"] = {"regular": "reg", "directory": "dir", "symlink": "lnk", "character special": "chr",
                 "block special": "blk", "FIFO": "fifo", "socket": "sock"}.get(m.group(1), m.group(1))
    r["mode"] = int(m.group(2), 8)
    m = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+).*Size: (\d+)", s)
    r["uid"], r["gid"], r["size"] = int(m.group(1)), int(m.group(2)), int(m.group(3))
    r["links"] = int(re.search(r"Links: (\d+)", s).group(1))
    r["blockcount"] = int(re.search(r"Blockcount: (\d+)", s).group(1))
    for t in ("ctime", "atime", "mtime", "crtime"):
        m = re.search(rf"^\s*{t}: 0x([0-9a-f]+):([0-9a-f]+)", s, re.M)
        if m:
            sec, extra = int(m.group(1), 16), int(m.group(2), 16)
            sec = sec - (1 << 32) if sec >= 1 << 31 else sec
            r[t] = (sec + ((extra & 3) << 32), extra >> 2)
    m = re.search(r"Device major/minor number: (\d+):(\d+)", s)
    if m:
        r["rdev"] = (int(m.group(1)), int(m.group(2)))
    m = re.search(r'Fast link dest: "(.*)"', s)
    if m:
        r["target"] = m.group(1)
    xa = re.search(r"Extended attributes:\n((?:  .*\n)*)", s)
    r["xattr_names"] = sorted(re.findall(r"^  (\S+) \(", xa.group(1), re.M)) if xa else []
    return r


def image_read(img, tree, tmp):
    """Contents of the regular files, symlink targets and xattr values (via rdump / ea_get)."""
    out = os.path.join(tmp, "rdump")
    shutil.rmtree(out, ignore_errors=True)
    os.mkdir(out)
    debugfs(img, f'rdump / "{out}"')
    base = out      # rdump / puts the root's contents straight into out
    cmds, files = [], []
    for p, e in tree.items():
        hp = os.path.join(base, p) if p else base
        if e["type"] == "reg":
            with open(hp, "rb") as f:
                e["sha"] = hashlib.sha256(f.read()).hexdigest()
        elif e["type"] == "lnk":
            e["target"] = os.readlink(hp)
        for n in e["xattr_names"]:
            fn = os.path.join(tmp, f"xa{len(files)}")
            cmds.append(f'ea_get -f "{fn}" "/{p}" {n}')
            files.append((e, n, fn))
    if cmds:
        debugfs(img, *cmds)
    for e, n, fn in files:
        e.setdefault("xattrs", {})[n] = open(fn, "rb").read() if os.path.exists(fn) else None
    for e in tree.values():
        e.setdefault("xattrs", {})


def host_tree(root):
    """The same fields for a directory on the host (tar -x's output)."""
    tree = {}
    for d, dirs, files in os.walk(root):
        for n in [""] + dirs + files if d == root else dirs + files:
            hp = os.path.join(d, n) if n else root
            p = os.path.relpath(hp, root) if n else ""
            st = os.lstat(hp)
            t = {stat.S_IFREG: "reg", stat.S_IFDIR: "dir", stat.S_IFLNK: "lnk", stat.S_IFCHR: "chr",
                 stat.S_IFBLK: "blk", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "sock"}[stat.S_IFMT(st.st_mode)]
            e = {"type": t, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
                 "links": st.st_nlink, "mtime": (int(st.st_mtime_ns // 10**9), st.st_mtime_ns % 10**9),
                 "ino_host": st.st_ino}
            if t == "reg":
                e["size"] = st.st_size
                e["sha"] = hashlib.sha256(open(hp, "rb").read()).hexdigest()
            if t == "lnk":
                e["target"] = os.readlink(hp)
            if t in ("chr", "blk"):
                e["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            e["xattrs"] = {}
            for x in os.listxattr(hp, follow_symlinks=False):
                if x.startswith(("user.", "security.capability")):
                    e["xattrs"][x] = os.getxattr(hp, x, follow_symlinks=False)
            tree[p] = e
    return tree


def compare(img_tree, ref, fields, skip_paths=(), strict_dirs=False):
    """Mismatches between the image and a reference tree, as lines."""
    bad = []
    for p in sorted(set(img_tree) | set(ref)):
        if p in skip_paths:
            continue
        a, b = img_tree.get(p), ref.get(p)
        if a is None or b is None:
            bad.append(f"/{p}: only in the {'reference' if a is None else 'image'}")
            continue
        for f in fields:
            if f == "links" and b["type"] == "dir":
                continue
            if f == "mtime" and b["type"] in ("lnk", "dir") and not strict_dirs:
                # tar -x sets a directory's mtime when it leaves it, so later entries
                # in it (the duplicate /etc/motd) change it; implied parents get "now"
                continue
            va, vb = a.get(f, SENTINEL), b.get(f, SENTINEL)
            if vb is SENTINEL:
                continue
            if f == "size" and b["type"] != "reg":
                continue
            if va != vb:
                bad.append(f"/{p}: {f}: image {va!r}, reference {vb!r}")
    return bad


# ---- groups ----

def check_main(tmp):
    tarpath = os.path.join(tmp, "main.tar")
    write_tar(tarpath, main_entries())
    img = os.path.join(tmp, "main.ext4")
    r = mkdisk("-o", img, "--label", "rootfs", tarpath)
    if not tap(r.returncode == 0, "mkdisk of the main archive", r.err):
        return None
    ok, out = fsck(img)
    tap(ok, "main image passes e2fsck -fn", out)
    tap("rootfs" in subprocess.run(["e2label", img], capture_output=True, text=True).stdout,
        "--label sets the label")
    st = os.stat(img)
    tap(st.st_blocks * 512 < st.st_size // 2, "the image is sparse",
        f"{st.st_blocks * 512} bytes allocated of {st.st_size}")
    tree = image_tree(img)
    image_read(img, tree, tmp)

    # what the archive says, entry by entry
    want = {}
    for info, data in main_entries():
        p = os.path.normpath(info.name).lstrip("./") if info.name not in ("./",) else ""
        p = "" if p == "." else p
        if info.type == tarfile.LNKTYPE:
            continue
        e = {"mode": info.mode, "uid": info.uid, "gid": info.gid}
        if data is not None:
            e["sha"] = hashlib.sha256(data).hexdigest()
            e["size"] = len(data)
        if info.type == tarfile.SYMTYPE:
            e["target"] = info.linkname
        if info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            e["rdev"] = (info.devmajor, info.devminor)
        e["type"] = {tarfile.REGTYPE: "reg", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "lnk",
                     tarfile.CHRTYPE: "chr", tarfile.BLKTYPE: "blk", tarfile.FIFOTYPE: "fifo"}[info.type]
        xa = {k[len("SCHILY.xattr."):]: v.encode("latin-1") for k, v in info.pax_headers.items()
              if k.startswith("SCHILY.xattr.")}
        e["xattrs"] = xa
        if "mtime" not in info.pax_headers:
            e["mtime"] = (MTIME, 0)
        want[p] = e
    want["var"] = {"type": "dir", "mode": 0o755, "uid": 0, "gid": 0, "xattrs": {}}
    want["var/lib"] = dict(want["var"])
    want["lost+found"] = {"type": "dir", "mode": 0o700, "uid": 0, "gid": 0, "xattrs": {}}
    want["usr/bin/ping6"] = dict(want["usr/bin/ping"])
    bad = compare(tree, want, ("type", "mode", "uid", "gid", "size", "sha", "target", "rdev",
                               "xattrs", "mtime"), strict_dirs=True)
    tap(not bad, "the image holds what the archive says (type, mode, owner, size, content, "
        "link target, device, xattrs, mtime)", "\n".join(bad))
    t = tree["usr/times"]
    tap(t.get("mtime") == (1600000000, 123456789) and t.get("atime") == (1500000000, 500000000)
        and t.get("ctime") == (1400000000, 250000000), "pax atime/mtime/ctime with nanoseconds",
        repr(t))
    tap(tree["usr/bin/ping"]["ino"] == tree["usr/bin/ping6"]["ino"] and
        tree["usr/bin/ping"]["links"] == 2, "hard link: one inode, two links",
        f"{tree['usr/bin/ping']} {tree['usr/bin/ping6']}")
    tap("target" in tree["bin"] and tree["usr/long"]["blockcount"] > 0 and tree["bin"]["blockcount"] == 0,
        "fast and slow symlinks", f"{tree['bin']} {tree['usr/long']}")
    tap(tree["etc/motd"].get("sha") == hashlib.sha256(b"second\n").hexdigest(),
        "a duplicate entry: the later wins")
    tap(tree["usr/bigid"]["uid"] == 70000 and tree["usr/bigid"]["gid"] == 80000, "32-bit uid and gid")

    if not ROOT:
        skip("image equals tar -x of the same archive", "not root")
        return img
    ref = os.path.join(tmp, "ref")
    os.mkdir(ref)
    r = subprocess.run(["tar", "-xpf", tarpath, "-C", ref, "--xattrs", "--xattrs-include=*",
                        "--numeric-owner", "--same-owner"], capture_output=True, text=True)
    if not tap(r.returncode == 0, "tar -x of the main archive (reference)", r.stderr):
        return img
    bad = compare(tree, host_tree(ref), ("type", "mode", "uid", "gid", "size", "sha", "target",
                                         "rdev", "xattrs", "links", "mtime"),
                  skip_paths=("lost+found",))
    tap(not bad, "image equals tar -x of the same archive, file by file", "\n".join(bad))
    return img


def check_ssh(tmp):
    tarpath = os.path.join(tmp, "main.tar")
    k1, k2, k3 = (os.path.join(tmp, f"k{i}.pub") for i in (1, 2, 3))
    open(k1, "w").write("ssh-ed25519 AAAAroot root@host\n")
    open(k2, "w").write("ssh-ed25519 AAAAalice1 alice@host")         # no newline
    open(k3, "w").write("ssh-rsa AAAAalice2 alice@other\n")
    img = os.path.join(tmp, "ssh.ext4")
    r = mkdisk("-o", img, tarpath, "--ssh-key", k1, "--ssh-key", f"{k2}:alice",
               "--ssh-key", f"{k3}:alice", "--hostname", "guest-1")
    if not tap(r.returncode == 0, "mkdisk --ssh-key (root, alice twice) --hostname", r.err):
        return
    ok, out = fsck(img)
    tap(ok, "ssh image passes e2fsck -fn", out)
    tree = image_tree(img)
    image_read(img, tree, tmp)
    d, f = tree.get("root/.ssh", {}), tree.get("root/.ssh/authorized_keys", {})
    tap((d.get("type"), d.get("mode"), d.get("uid"), d.get("gid")) == ("dir", 0o700, 0, 0) and
        (f.get("mode"), f.get("uid"), f.get("gid")) == (0o600, 0, 0) and
        f.get("sha") == hashlib.sha256(b"ssh-ed25519 AAAAroot root@host\n").hexdigest(),
        "root's key: /root/.ssh 0700 0:0, authorized_keys 0600 0:0 with the key", f"{d} {f}")
    d, f = tree.get("home/alice/.ssh", {}), tree.get("home/alice/.ssh/authorized_keys", {})
    want = b"ssh-ed25519 AAAAold alice@old\nssh-ed25519 AAAAalice1 alice@host\nssh-rsa AAAAalice2 alice@other\n"
    tap((d.get("mode"), d.get("uid"), d.get("gid")) == (0o700, 1000, 1001) and
        (f.get("mode"), f.get("uid"), f.get("gid")) == (0o600, 1000, 1001) and
        f.get("sha") == hashlib.sha256(want).hexdigest(),
        "alice's keys appended to her existing file, her uid/gid from /etc/passwd, 0700/0600",
        f"{d} {f}")
    tap(tree["home/alice"]["mode"] == 0o750, "the home directory itself is left alone")
    h = tree.get("etc/hostname", {})
    tap(h.get("sha") == hashlib.sha256(b"guest-1\n").hexdigest() and h.get("mode") == 0o644,
        "--hostname writes /etc/hostname", repr(h))
    r = mkdisk("-o", os.path.join(tmp, "nouser.ext4"), tarpath, "--ssh-key", f"{k1}:bob")
    tap(r.returncode == 1 and "bob" in r.err and not os.path.exists(os.path.join(tmp, "nouser.ext4")),
        "--ssh-key for a user not in /etc/passwd: a clear error, no image", r.err)
    # no /etc/passwd at all: root still works (0:0, /root)
    empty = os.path.join(tmp, "empty.tar")
    write_tar(empty, [ti("./", tarfile.DIRTYPE, 0o755)])
    img2 = os.path.join(tmp, "nopasswd.ext4")
    r = mkdisk("-o", img2, empty, "--ssh-key", k1)
    t2 = image_tree(img2) if r.returncode == 0 else {}
    tap(r.returncode == 0 and t2.get("root/.ssh/authorized_keys", {}).get("uid") == 0,
        "--ssh-key root without /etc/passwd: /root/.ssh/authorized_keys", r.err)


def sparse_dir(tmp):
    d = os.path.join(tmp, "sparse-src")
    os.mkdir(d)
    with open(os.path.join(d, "holes"), "wb") as f:
        f.truncate(64 << 20)
        f.seek(5 << 20)
        f.write(b"data in the middle")
        f.seek((64 << 20) - 4096)
        f.write(b"x" * 4096)
    with open(os.path.join(d, "plain"), "wb") as f:
        f.write(b"p" * 10000)
    os.link(os.path.join(d, "plain"), os.path.join(d, "plain2"))
    os.symlink("plain", os.path.join(d, "sym"))
    os.mkdir(os.path.join(d, "sub"))
    os.setxattr(os.path.join(d, "plain"), "user.k", b"v")
    os.chmod(os.path.join(d, "sub"), 0o711)
    return d


def check_sparse_and_dirs(tmp):
    d = sparse_dir(tmp)
    holes_sha = hashlib.sha256(open(os.path.join(d, "holes"), "rb").read()).hexdigest()
    img = os.path.join(tmp, "dir.ext4")
    r = mkdisk("-o", img, d)
    if not tap(r.returncode == 0, "mkdisk of a directory source", r.err):
        return
    ok, out = fsck(img)
    tap(ok, "directory image passes e2fsck -fn", out)
    tree = image_tree(img)
    image_read(img, tree, tmp)
    h = tree.get("holes", {})
    tap(h.get("size") == 64 << 20 and h.get("sha") == holes_sha and h.get("blockcount", 1 << 30) <= 64,
        "directory source: a sparse file keeps its holes (2 data blocks of a 64 MiB file)", repr(h))
    tap(tree["plain"]["ino"] == tree["plain2"]["ino"] and tree["plain"]["links"] == 2,
        "directory source: hard links stay one inode")
    tap(tree["sym"].get("target") == "plain" and tree["sub"]["mode"] == 0o711 and
        tree["plain"]["xattrs"] == {"user.k": b"v"}, "directory source: symlink, mode, xattr")
    ref = host_tree(d)
    bad = compare(tree, ref, ("type", "mode", "uid", "gid", "size", "sha", "target", "xattrs",
                              "mtime"), skip_paths=("lost+found", ""))
    tap(not bad, "directory source: image equals the directory, file by file", "\n".join(bad))

    # GNU tar's sparse format
    sp = os.path.join(tmp, "sparse.tar")
    r = subprocess.run(["tar", "--sparse", "-cf", sp, "-C", d, "holes"], capture_output=True, text=True)
    if r.returncode:
        skip("GNU tar --sparse archive keeps its holes", "tar --sparse failed: " + r.stderr)
        return
    img = os.path.join(tmp, "sparse.ext4")
    r = mkdisk("-o", img, sp)
    tree = image_tree(img) if r.returncode == 0 else {}
    if tree:
        image_read(img, tree, tmp)
    h = tree.get("holes", {})
    tap(h.get("size") == 64 << 20 and h.get("sha") == holes_sha and h.get("blockcount", 1 << 30) <= 64,
        "GNU tar --sparse archive keeps its holes", r.err + repr(h))

    # --add: a file and a directory, owned by root
    cfg = os.path.join(tmp, "extra.conf")
    open(cfg, "w").write("x=1\n")
    os.chown(cfg, 1234, 1234) if ROOT else None
    img = os.path.join(tmp, "add.ext4")
    r = mkdisk("-o", img, "--add", f"{cfg}:/etc/extra.conf", "--add", f"{d}:/opt/", "--add",
               f"{cfg}:/etc/dir/")
    tree = image_tree(img) if r.returncode == 0 else {}
    if tree:
        image_read(img, tree, tmp)
    e = tree.get("etc/extra.conf", {})
    tap(r.returncode == 0 and e.get("sha") == hashlib.sha256(b"x=1\n").hexdigest() and
        e.get("uid") == 0 and tree.get("opt/sparse-src/holes", {}).get("sha") == holes_sha and
        "etc/dir/extra.conf" in tree, "--add SRC:DEST (a file, a directory into DEST/), owned by root",
        r.err + repr(e))


def check_compressions(tmp):
    tarpath = os.path.join(tmp, "main.tar")
    raw = open(tarpath, "rb").read()
    for ext, cmd in (("gz", ["gzip", "-c"]), ("xz", ["xz", "-c"]), ("zst", ["zstd", "-c", "-q"])):
        p = os.path.join(tmp, f"main.tar.{ext}")
        with open(p, "wb") as f:
            if shutil.which(cmd[0]) is None:
                skip(f".tar.{ext}", f"no {cmd[0]}")
                continue
            subprocess.run(cmd, input=raw, stdout=f, check=True)
        img = os.path.join(tmp, f"c.{ext}.ext4")
        r = mkdisk("-o", img, p)
        ok = r.returncode == 0 and fsck(img)[0]
        out = debugfs(img, "cat /etc/motd") if ok else ""
        tap(ok and out.endswith("second\n"), f".tar.{ext} source", r.err + out)


def check_pipe(tmp):
    """An archive on a pipe: read once (not mapped) with --size; refused with --size auto."""
    def run(img, *args):
        with open(os.path.join(tmp, "main.tar"), "rb") as f:
            return subprocess.run(["sh", "-c", 'cat | "$0" mkdisk -o "$@" /dev/stdin', BOOTVM, img,
                                   *args], stdin=f, capture_output=True, timeout=120)
    img = os.path.join(tmp, "pipe.ext4")
    r = run(img, "--size", "100M")
    ok = r.returncode == 0 and fsck(img)[0]
    tree = image_tree(img) if ok else {}
    if tree:
        image_read(img, tree, tmp)
    tap(ok and tree.get("etc/motd", {}).get("sha") == hashlib.sha256(b"second\n").hexdigest() and
        tree.get("usr/big", {}).get("sha") == hashlib.sha256(BIG).hexdigest() and "many" in tree,
        "a tar archive on a pipe (/dev/stdin) with --size", r.stderr.decode(errors="replace"))
    r = run(os.path.join(tmp, "pipe-auto.ext4"))
    err = r.stderr.decode(errors="replace")
    tap(r.returncode == 1 and "--size" in err and "once" in err and
        not no_leftovers(tmp, "pipe-auto.ext4"),
        "a pipe with --size auto (it would be read twice): a clear error, no image", err)


def no_leftovers(d, name):
    return [f for f in os.listdir(d) if f.startswith(name) or f.startswith("." + name)]


def check_hostile(tmp):
    def bad(name, entries, want_err, raw=None):
        p = os.path.join(tmp, f"h-{name}.tar")
        if raw is not None:
            open(p, "wb").write(raw)
        else:
            write_tar(p, entries)
        out = f"h-{name}.ext4"
        r = mkdisk("-o", os.path.join(tmp, out), p)
        left = no_leftovers(tmp, out)
        tap(r.returncode == 1 and re.search(want_err, r.err) and not left,
            f"hostile: {name}: a clear error, no image, no temporary file", f"{r.returncode} {r.err} {left}")

    bad("dotdot", [ti("../evil", data=b"x")], r"'\.\.'")
    bad("dotdot-inside", [ti("a/../../evil", data=b"x")], r"'\.\.'")
    bad("through-symlink", [ti("lnk", tarfile.SYMTYPE, linkname="/etc"),
                            ti("lnk/passwd", data=b"pwned")], r"symlink.*not followed")
    bad("through-relative-symlink", [ti("up", tarfile.SYMTYPE, linkname="../../.."),
                                     ti("up/x", data=b"x")], r"symlink")
    bad("file-over-dir", [ti("d/", tarfile.DIRTYPE, 0o755), ti("d/f", data=b"x"),
                          ti("d", data=b"x")], r"directory")
    bad("hardlink-missing", [ti("h", tarfile.LNKTYPE, linkname="nowhere")], r"not in the image")
    bad("garbage", None, r"(?i)unrecognized|format", raw=os.urandom(4096))
    # truncated: the header claims more data than follows
    good = os.path.join(tmp, "good.tar")
    write_tar(good, [ti("f", data=BIG)])
    good = open(good, "rb").read()
    bad("truncated", None, r"(?i)truncat|premature|EOF", raw=good[:100000])
    gz = gzip.compress(good)
    bad("truncated-gz", None, r"(?i)truncat|premature|EOF|gzip|unexpected", raw=gz[:len(gz) // 2])
    # a header claiming 1 TiB, then nothing
    t = tarfile.TarInfo("huge")
    t.size = 1 << 40
    hdr = t.tobuf(tarfile.GNU_FORMAT)
    bad("huge-claimed-size", None, r"(?i)truncat|premature|too small|beyond|more than", raw=hdr + b"\0" * 4096)
    p = os.path.join(tmp, "h-huge.tar")
    open(p, "wb").write(hdr + b"\0" * 4096)
    r = mkdisk("-o", os.path.join(tmp, "h-huge2.ext4"), "--size", "64M", p)
    tap(r.returncode == 1 and "more than" in r.err and not no_leftovers(tmp, "h-huge2.ext4"),
        "hostile: 1 TiB claimed into --size 64M: refused before writing", r.err)

    # absolute paths are made relative, as tar does; later entries win, a hard link keeps the old data
    p = os.path.join(tmp, "abs.tar")
    write_tar(p, [ti("/abs/file", data=b"abs"), ti("a", data=b"A"), ti("b", tarfile.LNKTYPE, linkname="a"),
                  ti("a", data=b"C"), ti("s", data=b"file"), ti("s", tarfile.SYMTYPE, linkname="a"),
                  ti("l", tarfile.SYMTYPE, linkname="x"), ti("l/", tarfile.DIRTYPE, 0o700),
                  ti("l/in", data=b"in")])
    img = os.path.join(tmp, "abs.ext4")
    r = mkdisk("-o", img, p)
    tree = image_tree(img) if r.returncode == 0 else {}
    if tree:
        image_read(img, tree, tmp)
    sha = lambda b: hashlib.sha256(b).hexdigest()
    tap(r.returncode == 0 and fsck(img)[0] and tree.get("abs/file", {}).get("sha") == sha(b"abs") and
        tree["a"].get("sha") == sha(b"C") and tree["b"].get("sha") == sha(b"A") and
        tree["a"]["links"] == 1 and tree["b"]["links"] == 1 and tree["s"]["type"] == "lnk" and
        tree["l"]["type"] == "dir" and "l/in" in tree,
        "absolute paths made relative; duplicates: later wins (file, hard link, symlink, directory)",
        r.err + repr({k: tree.get(k) for k in ("a", "b", "s", "l")}))


def check_errors(tmp):
    r = mkdisk("-o", os.path.join(tmp, "x.ext4"), os.path.join(tmp, "no-such.tar"))
    tap(r.returncode == 1 and "no-such.tar" in r.err and "No such file" in r.err, "missing source", r.err)
    r = mkdisk("-o", os.path.join(tmp, "no-dir", "x.ext4"), os.path.join(tmp, "main.tar"))
    tap(r.returncode == 1 and "no-dir" in r.err, "output directory missing", r.err)
    # --size too small for the content: a clear error, nothing left behind
    p = os.path.join(tmp, "bigdata.tar")
    write_tar(p, [ti(f"f{i}", data=os.urandom(1 << 20)) for i in range(24)])
    out = os.path.join(tmp, "small.ext4")
    r = mkdisk("-o", out, "--size", "16M", p)
    tap(r.returncode == 1 and re.search(r"full|too small|more than", r.err) and
        not no_leftovers(tmp, "small.ext4"), "--size too small: a clear error, no image, no temporary file",
        r.err)
    r = mkdisk("-o", out, p)
    tap(r.returncode == 0 and fsck(out)[0], "the same content with --size auto fits", r.err)
    unreadable = os.path.join(tmp, "unreadable.tar")
    open(unreadable, "wb").write(b"not an archive at all\n" * 10)
    r = mkdisk("-o", os.path.join(tmp, "u.ext4"), unreadable)
    tap(r.returncode == 1 and "unreadable.tar" in r.err, "unreadable archive", r.err)
    r = mkdisk("-o", os.path.join(tmp, "k.ext4"), "--ssh-key", os.path.join(tmp, "no-key.pub"))
    tap(r.returncode == 1 and "no-key.pub" in r.err, "--ssh-key FILE missing", r.err)
    r = mkdisk("--size", "lots", "-o", os.path.join(tmp, "y.ext4"))
    tap(r.returncode == 2 and "--size" in r.err, "bad --size: usage error", r.err)
    r = mkdisk(os.path.join(tmp, "main.tar"))
    tap(r.returncode == 2 and "--output" in r.err, "no --output: usage error", r.err)
    r = mkdisk("--hostname", "bad/name", "-o", os.path.join(tmp, "y.ext4"))
    tap(r.returncode == 2, "bad --hostname: usage error", r.err)
    r = mkdisk("--help")
    tap(r.returncode == 0 and b"Usage: bootvm mkdisk" in r.stdout and b"auto" in r.stdout,
        "bootvm mkdisk --help")
    helper = os.path.join(os.path.dirname(BOOTVM), "bootvm-mkdisk")
    r2 = subprocess.run([helper, "--help"], capture_output=True)
    tap(r2.returncode == 0 and r2.stdout == r.stdout, "bootvm-mkdisk --help")
    env = dict(os.environ, BOOTVM_MKDISK=os.path.join(tmp, "no-helper"))
    r = subprocess.run([BOOTVM, "mkdisk", "--help"], capture_output=True, text=True, env=env)
    tap(r.returncode == 1 and "no-helper" in r.stderr, "a missing helper: a clear error", r.stderr)


def big_file(path):
    """70 MiB: 1 MiB pieces of data (more than one 32 MiB write run), every
    seventh piece zeros and 123 bytes longer (holes not on a block boundary)."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(70):
            b = bytes([i]) * 4096 * 256 if i % 7 else b"\0" * ((1 << 20) + 123)
            if i % 7:
                b = hashlib.sha256(b"%d" % i).digest() * 7 + b[224:]
            f.write(b)
            h.update(b)
        f.write(b"tail")
        h.update(b"tail")
    return h.hexdigest()


def mkdisk_tree(tmp, img, *args):
    """mkdisk -o img ARGS, e2fsck, and the image read back: (ok, messages, tree)."""
    r = mkdisk("-o", img, *args)
    ok, out = fsck(img) if r.returncode == 0 else (False, r.err)
    tree = image_tree(img) if ok else {}
    if tree:
        image_read(img, tree, tmp)
    return ok, out, tree


def check_replaced(tmp):
    """Blocks freed by a replaced file and by an old xattr block, then reused: data intact."""
    blob = lambda c: hashlib.sha256(c).digest() * (32768 + 7)   # 1 MiB + 224 bytes
    sha = lambda b: hashlib.sha256(b).hexdigest()
    xa1, xa2 = "1" * 3000, "2" * 2900                            # too big for the inode
    p = os.path.join(tmp, "replaced.tar")
    write_tar(p, [ti("f1", data=blob(b"A")), ti("d/", tarfile.DIRTYPE, 0o755,
                                                 pax={"SCHILY.xattr.user.big": xa1}),
                  ti("f1", data=blob(b"B")), ti("f2", data=blob(b"C")),
                  ti("d/", tarfile.DIRTYPE, 0o755, pax={"SCHILY.xattr.user.big": xa2}),
                  ti("f3", data=blob(b"D"))])
    ok, out, tree = mkdisk_tree(tmp, os.path.join(tmp, "replaced.ext4"), p)
    got = {k: tree.get(k, {}).get("sha") for k in ("f1", "f2", "f3")}
    tap(ok and got == {"f1": sha(blob(b"B")), "f2": sha(blob(b"C")), "f3": sha(blob(b"D"))} and
        tree["d"]["xattrs"].get("user.big") == xa2.encode(),
        "a replaced file's blocks and an old xattr block freed and reused: every file and xattr "
        "intact, e2fsck clean", out + repr(got))


def mkdisk_pty(*args):
    """mkdisk with stderr on a pseudo-terminal: (exit status, what the terminal got)."""
    master, slave = pty.openpty()
    got = bytearray()

    def reader():
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                return
            if not b:
                return
            got.extend(b)
    t = threading.Thread(target=reader)
    t.start()
    p = subprocess.run([BOOTVM, "mkdisk", *args], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=slave, timeout=120)
    os.close(slave)
    t.join(10)
    os.close(master)
    return p.returncode, bytes(got)


def check_big_and_progress(tmp):
    """Data over several write runs, holes inside runs and blocks, and the progress bar."""
    src = os.path.join(tmp, "big-src")
    os.mkdir(src)
    big_sha = big_file(os.path.join(src, "big"))
    with open(os.path.join(src, "sp"), "wb") as f:
        # two pieces of data in one 4 KiB block, with a hole between them
        f.write(b"a" * 5000)
        f.seek(1 << 22)
        f.write(b"b" * 100)
        f.seek((1 << 22) + 3000)
        f.write(b"c" * 9000)
        f.truncate(50 << 20)
    sp_sha = hashlib.sha256(open(os.path.join(src, "sp"), "rb").read()).hexdigest()
    tarpath = os.path.join(tmp, "big.tar")
    r = subprocess.run(["tar", "--sparse", "-cf", tarpath, "-C", src, "big", "sp"],
                       capture_output=True, text=True)
    if not tap(r.returncode == 0 and os.path.getsize(tarpath) > 64 << 20,
               "a 70 MiB archive for the big-file and progress checks", r.stderr):
        return
    img = os.path.join(tmp, "big.ext4")
    ok, out, tree = mkdisk_tree(tmp, img, tarpath)
    b, sp = tree.get("big", {}), tree.get("sp", {})
    tap(ok and b.get("sha") == big_sha and b.get("size") == 70 * (1 << 20) + 10 * 123 + 4,
        "a 70 MiB file (three write runs, holes off block boundaries) comes back byte for byte, "
        "e2fsck clean", out + repr(b))
    tap(b.get("blockcount", 0) // 8 < 61 * 256, "its zero MiBs are holes", repr(b))
    tap(sp.get("sha") == sp_sha and sp.get("blockcount", 1 << 30) <= 6 * 8,
        "a sparse file with two pieces in one block keeps both, and its holes", repr(sp))

    bar = re.compile(rb"\rbootvm mkdisk: \[#*\s*\]\s+(\d+)% [^\r]*? of 70\.0 MiB\x1b\[K")

    def last_pct(out):
        pcts = [int(m.group(1)) for m in bar.finditer(out)]
        return pcts[-1] if pcts else -1
    rc, term = mkdisk_pty("-o", img, tarpath)
    tap(rc == 0 and len(bar.findall(term)) >= 2 and last_pct(term) >= 95 and
        term.endswith(b"\r\x1b[K"),
        "stderr a terminal, archive over 64 MiB: the progress bar is drawn, moves to the end, "
        "and is erased",
        repr(term[-300:]))
    r = mkdisk("-o", img, tarpath)
    tap(r.returncode == 0 and b"\r" not in r.stderr and not r.stderr,
        "stderr a pipe: no progress bar", repr(r.stderr[-300:]))
    rc, term = mkdisk_pty("-o", img, "--no-progress", tarpath)
    tap(rc == 0 and not bar.search(term), "--no-progress on a terminal: no bar", repr(term[-300:]))
    small = os.path.join(tmp, "main.tar")
    rc, term = mkdisk_pty("-o", os.path.join(tmp, "small-bar.ext4"), small)
    tap(rc == 0 and not bar.search(term), "a small archive on a terminal: no bar", repr(term[-300:]))
    r = mkdisk("-o", img, "--progress", tarpath)
    tap(r.returncode == 0 and last_pct(r.stderr) >= 95,
        "--progress draws it on a pipe too", repr(r.stderr[-300:]))


def main():
    for tool in ("debugfs", "e2fsck"):
        if shutil.which(tool) is None:
            skip("mkdisk", f"no {tool} (e2fsprogs)")
            return plan()
    with tempfile.TemporaryDirectory(prefix="bootvm-mkdisk-") as tmp:
        check_main(tmp)
        check_ssh(tmp)
        check_sparse_and_dirs(tmp)
        check_compressions(tmp)
        check_pipe(tmp)
        check_big_and_progress(tmp)
        check_replaced(tmp)
        check_hostile(tmp)
        check_errors(tmp)
    return plan()


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
