#!/bin/sh
# bootvm mkdisk against the two usual ways of making a root disk from a tarball, same run:
#   seed:   truncate + mkfs.ext4 + mount -o loop + tar -x + umount   (needs root)
#   mkfs-d: tar -x into a directory + mkfs.ext4 -d                   (root to keep owners)
# Usage: bench/mkdisk.sh [TARBALL|debian|host] [RUNS]   (as root from the source tree, after a build)
# debian (the default): a real distribution root, `mmdebstrap --variant=minbase bookworm` from
# $MIRROR (default http://deb.debian.org/debian); if mmdebstrap is missing or fails, host.
# host: a root-filesystem-like subset of this machine (/etc, /usr/bin, Python, Perl...).
# Prints a Markdown table of median wall and CPU (user+sys) seconds and ratios.
set -eu

seed() {
	rm -f "$work/seed.img"
	truncate -s "$size" "$work/seed.img"
	mkfs.ext4 -F -q "$work/seed.img"
	mkdir -p "$work/mnt"
	mount -o loop "$work/seed.img" "$work/mnt"
	tar -xpf "$tarball" -C "$work/mnt" --xattrs --xattrs-include='*' --numeric-owner
	umount "$work/mnt"
}

mkfs_d() {
	rm -rf "$work/tree" "$work/d.img"
	mkdir "$work/tree"
	tar -xpf "$tarball" -C "$work/tree" --xattrs --xattrs-include='*' --numeric-owner
	truncate -s "$size" "$work/d.img"
	mkfs.ext4 -F -q -d "$work/tree" "$work/d.img"
}

# The timed methods run as "$0 --seed" / "$0 --mkfs-d" with size, tarball and work exported.
case "${1:-}" in
--seed) seed; exit 0 ;;
--mkfs-d) mkfs_d; exit 0 ;;
esac

BUILD=${BUILD:-build}
BOOTVM=${BOOTVM:-$BUILD/src/bootvm}
RUNS=${2:-3}
work=$(mktemp -d /var/tmp/bench-mkdisk.XXXXXX)
trap 'umount "$work/mnt" 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM

[ "$(id -u)" -eq 0 ] || { echo "bench/mkdisk.sh: run as root (the seed's way mounts)" >&2; exit 1; }
src=${1:-debian}
tarball=$work/payload.tar
if [ "$src" = debian ]; then
	if command -v mmdebstrap >/dev/null &&
	   mmdebstrap --quiet --variant=minbase bookworm "$tarball" \
		"${MIRROR:-http://deb.debian.org/debian}" >&2; then
		what="mmdebstrap --variant=minbase bookworm"
	else
		echo "bench/mkdisk.sh: mmdebstrap failed or is missing (apt-get install mmdebstrap); using host" >&2
		src=host
	fi
fi
if [ "$src" != debian ] && [ "$src" != host ]; then
	tarball=$src
	what=$src
elif [ "$src" = host ]; then
	tar -C / -cf "$tarball" --one-file-system etc usr/bin usr/sbin usr/include usr/lib/python3.11 \
		usr/share/perl usr/share/perl5 usr/lib/x86_64-linux-gnu/perl 2>/dev/null || true
	what="this machine's /etc, /usr/bin, /usr/sbin, /usr/include, Python 3.11, Perl"
fi
bytes=$(stat -c %s "$tarball")
entries=$(tar -tf "$tarball" | wc -l)

# time_run NAME CMD...: append "NAME wall cpu" (seconds) to $work/times, page cache dropped first
time_run() {
	name=$1
	shift
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	cat "$tarball" >/dev/null	# the tarball is cached for every method alike
	/usr/bin/time -f "$name %e %U %S" -a -o "$work/times.raw" "$@" >/dev/null
}

"$BOOTVM" mkdisk -o "$work/m.img" "$tarball"
size=$(stat -c %s "$work/m.img")
export size tarball work
# Each method's previous output is deleted before its timed run: freeing the
# page cache of an 800 MiB image costs up to a second here, and is not the job.
for i in $(seq "$RUNS"); do
	rm -f "$work/m.img"
	time_run mkdisk "$BOOTVM" mkdisk -o "$work/m.img" "$tarball"
	rm -f "$work/m.img"
	time_run mkdisk-size "$BOOTVM" mkdisk -o "$work/m.img" --size "$((size / 1048576))M" "$tarball"
	rm -f "$work/seed.img"
	time_run seed "$0" --seed
	rm -rf "$work/tree" "$work/d.img"
	time_run mkfs-d "$0" --mkfs-d
done
e2fsck -fn "$work/m.img" >/dev/null

python3 - "$work/times.raw" "$bytes" "$entries" "$size" "$what" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) == 4 and f[0] in ("mkdisk", "mkdisk-size", "seed", "mkfs-d"):
        rows.setdefault(f[0], []).append((float(f[1]), float(f[2]) + float(f[3])))
med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()}
b, n, s = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"payload: {sys.argv[5]}: {b / 2**20:.0f} MiB tarball, {n} entries; image {s / 2**20:.0f} MiB; "
      f"medians of {len(rows['mkdisk'])} runs\n")
print("| method | wall s | CPU s | wall vs mkdisk | CPU vs mkdisk |")
print("|---|---|---|---|---|")
names = {"mkdisk": "bootvm mkdisk (--size auto: two passes)",
         "mkdisk-size": "bootvm mkdisk --size (one pass)",
         "seed": "mkfs.ext4 + mount -o loop + tar -x + umount",
         "mkfs-d": "tar -x to a directory + mkfs.ext4 -d"}
w0, c0 = med["mkdisk"]
for k in ("mkdisk", "mkdisk-size", "seed", "mkfs-d"):
    w, c = med[k]
    print(f"| {names[k]} | {w:.2f} | {c:.2f} | {w / w0:.2f}x | {c / c0:.2f}x |")
PY
