/*
 * tools/diskimg: partition tables (none, MBR with logical partitions, GPT
 * with an ESP) made with sfdisk on a file and checked against partx/blkid;
 * ext4 (mkfs.ext4 -d, then dd into a partition) and FAT (mkfs.vfat, mcopy)
 * read back; hostile images crafted here (corrupt GPTs, looping chains,
 * out-of-range blocks and clusters) give one error line, and no hang (alarm).
 *
 * Needs sfdisk, partx, blkid, mkfs.ext4, debugfs, mkfs.vfat, mtools; no root.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "tools/diskimg.h"
#include "util/log.h"

#include "helpers.h"

#define MiB (1024ull * 1024)
#define ALARM_S 10

struct fixture {
	char *dir;
	struct helper_log log;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = helper_tmpdir("diskimg");
	log_set_sink(helper_log_sink, &f->log);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	alarm(0);
	log_set_sink(NULL, NULL);
	assert_int_equal(helper_tmpdir_remove(f->dir), 0);
	free(f);
	return 0;
}

static char *path_in(struct fixture *f, const char *name)
{
	return helper_asprintf("%s/%s", f->dir, name);
}

/* Run a shell command that must succeed. */
#define sh(...) do { \
	if (helper_shell(__VA_ARGS__) != 0) \
		fail_msg("command failed: " __VA_ARGS__); \
} while (0)

/* An image of size bytes partitioned by sfdisk with script. */
static char *make_table(struct fixture *f, const char *name, uint64_t size, const char *script)
{
	char *img = path_in(f, name);
	char *cmd = helper_asprintf("truncate -s %llu '%s' && printf '%s' | sfdisk -q --no-reread --no-tell-kernel '%s' >/dev/null 2>&1",
				    (unsigned long long)size, img, script, img);
	sh("%s", cmd);
	free(cmd);
	return img;
}

/* partx's view of img: "NR START SECTORS UUID" lines. */
static char *partx_lines(const char *img)
{
	int st;
	char *out = helper_shell_out(&st, "partx -g -o NR,START,SECTORS,UUID '%s'", img);
	assert_int_equal(st, 0);
	return out;
}

static char *our_lines(const struct diskimg *d)
{
	size_t cap = 64 * (d->nr_parts + 1), len = 0;
	char *s = calloc(1, cap);

	for (unsigned int i = 0; i < d->nr_parts; i++) {
		const struct diskimg_part *p = &d->parts[i];
		len += (size_t)snprintf(s + len, cap - len, "%u %llu %llu %s\n", p->index,
					(unsigned long long)(p->offset / 512),
					(unsigned long long)(p->size / 512), p->partuuid);
	}
	return s;
}

/* partx pads its columns: squeeze runs of spaces and leading blanks. */
static void squeeze(char *s)
{
	char *o = s;
	bool bol = true, space = false;

	for (char *p = s; *p; p++) {
		if (*p == ' ') {
			space = true;
			continue;
		}
		if (space && !bol)
			*o++ = ' ';
		space = false;
		*o++ = *p;
		bol = *p == '\n';
	}
	*o = '\0';
}

static void expect_partx(const struct diskimg *d, const char *img)
{
	char *theirs = partx_lines(img), *ours = our_lines(d);

	squeeze(theirs);
	assert_string_equal(ours, theirs);
	free(theirs);
	free(ours);
}

/* Open img expecting failure: NULL, one error line containing needle. */
static void expect_open_error(struct fixture *f, const char *img, const char *needle)
{
	f->log.errors = 0;
	alarm(ALARM_S);
	struct diskimg *d = diskimg_open(img);
	alarm(0);
	assert_null(d);
	assert_int_equal(f->log.errors, 1);
	if (!strstr(f->log.last_error, needle))
		fail_msg("error '%s' does not say '%s'", f->log.last_error, needle);
}

static void patch(const char *img, uint64_t off, const void *data, size_t len)
{
	int fd = open(img, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void peek(const char *img, uint64_t off, void *data, size_t len)
{
	int fd = open(img, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, data, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Rewrite the GPT header at sector lba with f applied, its CRC recomputed. */
static void gpt_header_edit(const char *img, uint64_t lba, void (*edit)(uint8_t *h))
{
	uint8_t h[512];

	peek(img, lba * 512, h, sizeof(h));
	assert_memory_equal(h, "EFI PART", 8);
	edit(h);
	uint32_t hsize = get_le32(h + 12);
	memset(h + 16, 0, 4);
	put_le32(h + 16, (uint32_t)crc32(0, h, hsize));
	patch(img, lba * 512, h, sizeof(h));
}

/* ------------------------------------------------------------------------
 * Partition tables
 */

#define MBR_SCRIPT \
	"label: dos\\nlabel-id: 0xa1b2c3d4\\n" \
	"start=2048, size=8192, type=83, bootable\\n" \
	"start=10240, size=8192, type=ef\\n" \
	"start=18432, size=40960, type=5\\n" \
	"start=20480, size=8192, type=83\\n" \
	"start=30720, size=16384, type=82\\n"

static void test_mbr(void **state)
{
	struct fixture *f = *state;
	char *img = make_table(f, "mbr.img", 64 * MiB, MBR_SCRIPT);

	struct diskimg *d = diskimg_open(img);
	assert_non_null(d);
	assert_int_equal(d->table, DISKIMG_MBR);
	assert_int_equal(d->nr_parts, 5);
	assert_int_equal(d->parts[0].index, 1);
	assert_true(d->parts[0].bootable);
	assert_false(d->parts[0].esp);
	assert_int_equal(d->parts[0].mbr_type, 0x83);
	assert_int_equal(d->parts[0].offset, 2048 * 512);
	assert_int_equal(d->parts[0].size, 8192 * 512);
	assert_string_equal(d->parts[0].partuuid, "a1b2c3d4-01");
	assert_int_equal(d->parts[1].index, 2);
	assert_false(d->parts[1].bootable);
	assert_true(d->parts[1].esp);
	assert_int_equal(d->parts[2].index, 3);
	assert_int_equal(d->parts[2].mbr_type, 0x05);
	assert_int_equal(d->parts[3].index, 5);
	assert_string_equal(d->parts[3].partuuid, "a1b2c3d4-05");
	assert_int_equal(d->parts[4].index, 6);
	assert_int_equal(d->parts[4].mbr_type, 0x82);
	assert_string_equal(d->parts[4].name, "");
	expect_partx(d, img);
	assert_int_equal(f->log.errors, 0);
	diskimg_close(d);
	free(img);
}

#define ESP_TYPE "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
#define GPT_SCRIPT \
	"label: gpt\\nlabel-id: 0D2B5C3A-8E0A-4F5B-9C1E-2A3B4C5D6E7F\\n" \
	"start=2048, size=16384, type=" ESP_TYPE ", name=\"EFI system\", uuid=AABBCCDD-EEFF-1122-3344-556677889900\\n" \
	"start=18432, size=32768, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"r\\303\\266\\303\\266t\", attrs=\"LegacyBIOSBootable\"\\n"

static void test_gpt(void **state)
{
	struct fixture *f = *state;
	char *img = make_table(f, "gpt.img", 64 * MiB, GPT_SCRIPT);

	struct diskimg *d = diskimg_open(img);
	assert_non_null(d);
	assert_int_equal(d->table, DISKIMG_GPT);
	assert_int_equal(d->nr_parts, 2);
	assert_true(d->parts[0].esp);
	assert_false(d->parts[0].bootable);
	assert_int_equal(d->parts[0].mbr_type, 0);
	assert_string_equal(d->parts[0].partuuid, "aabbccdd-eeff-1122-3344-556677889900");
	assert_string_equal(d->parts[0].name, "EFI system");
	assert_false(d->parts[1].esp);
	assert_true(d->parts[1].bootable);
	assert_string_equal(d->parts[1].name, "r\xc3\xb6\xc3\xb6t");
	assert_int_equal(d->parts[1].offset, 18432 * 512);
	assert_int_equal(d->parts[1].size, 32768 * 512);
	expect_partx(d, img);
	assert_int_equal(f->log.errors, 0);
	assert_int_equal(f->log.warnings, 0);
	diskimg_close(d);
	free(img);
}

/* A bad primary header: the backup at the last sector serves, with a warning. */
static void test_gpt_backup(void **state)
{
	struct fixture *f = *state;
	char *img = make_table(f, "gpt.img", 64 * MiB, GPT_SCRIPT);
	uint8_t junk = 0x5a;

	patch(img, 512 + 40, &junk, 1);	/* first usable LBA: the CRC no longer matches */
	alarm(ALARM_S);
	struct diskimg *d = diskimg_open(img);
	alarm(0);
	assert_non_null(d);
	assert_int_equal(d->table, DISKIMG_GPT);
	assert_int_equal(d->nr_parts, 2);
	assert_string_equal(d->parts[0].partuuid, "aabbccdd-eeff-1122-3344-556677889900");
	assert_int_equal(f->log.warnings, 1);
	assert_non_null(strstr(f->log.last_warning, "bad header CRC"));
	diskimg_close(d);

	/* The primary entry array corrupt instead: its CRC is in the header. */
	free(img);
	img = make_table(f, "gpt2.img", 64 * MiB, GPT_SCRIPT);
	patch(img, 1024 + 60, &junk, 1);
	f->log.warnings = 0;
	d = diskimg_open(img);
	assert_non_null(d);
	assert_int_equal(d->nr_parts, 2);
	assert_int_equal(f->log.warnings, 1);
	assert_non_null(strstr(f->log.last_warning, "entry array CRC"));
	diskimg_close(d);

	/* Both gone: one error naming both. */
	uint64_t last = 64 * MiB / 512 - 1;
	patch(img, last * 512 + 1, &junk, 1);
	expect_open_error(f, img, "backup: no signature");
	free(img);
}

static void huge_count(uint8_t *h)
{
	put_le32(h + 80, 0xffffffffu);	/* entries: times 128 overflows 32 bits */
}

static void small_entries(uint8_t *h)
{
	put_le32(h + 84, 64);
}

static void entries_past_end(uint8_t *h)
{
	h[72] = 0xff; h[73] = 0xff; h[74] = 0xff; h[75] = 0xff;
	h[76] = 0xff; h[77] = 0xff; h[78] = 0xff; h[79] = 0x7f;
}

static void test_gpt_hostile(void **state)
{
	struct fixture *f = *state;
	uint64_t last = 64 * MiB / 512 - 1;
	char *img;

	/* Counts whose product overflows 32 bits, in both headers (CRCs valid). */
	img = make_table(f, "count.img", 64 * MiB, GPT_SCRIPT);
	gpt_header_edit(img, 1, huge_count);
	gpt_header_edit(img, last, huge_count);
	expect_open_error(f, img, "entries of");
	free(img);

	img = make_table(f, "esize.img", 64 * MiB, GPT_SCRIPT);
	gpt_header_edit(img, 1, small_entries);
	gpt_header_edit(img, last, small_entries);
	expect_open_error(f, img, "entry size 64");
	free(img);

	img = make_table(f, "far.img", 64 * MiB, GPT_SCRIPT);
	gpt_header_edit(img, 1, entries_past_end);
	gpt_header_edit(img, last, entries_past_end);
	expect_open_error(f, img, "beyond the end");
	free(img);

	/* Truncated: the backup is gone and the partitions end past the end of the image. */
	img = make_table(f, "trunc.img", 64 * MiB, GPT_SCRIPT);
	sh("truncate -s %llu '%s'", 20 * MiB, img);
	expect_open_error(f, img, "partition 2 (sectors 18432+32768) extends beyond the end");
	/* ... and cut inside the primary's entry array. */
	sh("truncate -s 4096 '%s'", img);
	expect_open_error(f, img, "entry array at sector 2 is beyond the end");
	sh("truncate -s 700 '%s'", img);
	expect_open_error(f, img, "no valid GPT");
	free(img);

	/* A partition entry past the end, CRCs fixed up by sfdisk itself (it refuses): write the entry by hand. */
	img = make_table(f, "entry.img", 64 * MiB, GPT_SCRIPT);
	uint8_t e[128];
	peek(img, 1024 + 128, e, sizeof(e));
	put_le32(e + 40, 0x7fffffff);	/* last LBA */
	patch(img, 1024 + 128, e, sizeof(e));
	uint8_t ents[128 * 128];
	peek(img, 1024, ents, sizeof(ents));
	uint32_t crc = (uint32_t)crc32(0, ents, sizeof(ents));
	uint8_t h[512];
	peek(img, 512, h, sizeof(h));
	put_le32(h + 88, crc);
	memset(h + 16, 0, 4);
	put_le32(h + 16, (uint32_t)crc32(0, h, get_le32(h + 12)));
	patch(img, 512, h, sizeof(h));
	expect_open_error(f, img, "partition 2 (sectors 18432+2147465216) extends beyond the end");
	free(img);
}

/* An MBR written by hand: entries as (boot, type, start, count). */
static void mbr_write(const char *img, uint64_t sector, const uint32_t (*ents)[4], unsigned int n)
{
	uint8_t s[512] = { 0 };

	for (unsigned int i = 0; i < n; i++) {
		uint8_t *e = s + 446 + 16 * i;
		e[0] = (uint8_t)ents[i][0];
		e[4] = (uint8_t)ents[i][1];
		put_le32(e + 8, ents[i][2]);
		put_le32(e + 12, ents[i][3]);
	}
	put_le32(s + 440, 0x12345678);
	s[510] = 0x55;
	s[511] = 0xaa;
	patch(img, sector * 512, s, sizeof(s));
}

static void test_mbr_hostile(void **state)
{
	struct fixture *f = *state;
	char *img = path_in(f, "m.img");

	sh("truncate -s %llu '%s'", 16 * MiB, img);

	/* Beyond the end of the image. */
	const uint32_t big[][4] = { { 0x80, 0x83, 2048, 40000 } };
	mbr_write(img, 0, big, 1);
	expect_open_error(f, img, "partition 1 (sectors 2048+40000) extends beyond the end");

	/* An extended partition whose second EBR links back to the first. */
	const uint32_t prim[][4] = { { 0, 0x83, 2048, 2048 }, { 0, 0x05, 8192, 16384 } };
	const uint32_t ebr1[][4] = { { 0, 0x83, 63, 1000 }, { 0, 0x05, 2048, 2048 } };
	const uint32_t ebr2[][4] = { { 0, 0x83, 63, 1000 }, { 0, 0x05, 0, 2048 } };
	mbr_write(img, 0, prim, 2);
	mbr_write(img, 8192, ebr1, 2);
	mbr_write(img, 8192 + 2048, ebr2, 2);
	expect_open_error(f, img, "loops back to sector 8192");

	/* Without the loop: two logical partitions, 5 and 6. */
	const uint32_t ebr2ok[][4] = { { 0, 0x83, 63, 1000 } };
	mbr_write(img, 8192 + 2048, ebr2ok, 1);
	struct diskimg *d = diskimg_open(img);
	assert_non_null(d);
	assert_int_equal(d->nr_parts, 4);
	assert_int_equal(d->parts[1].index, 2);
	assert_int_equal(d->parts[2].index, 5);
	assert_int_equal(d->parts[2].offset, (8192 + 63) * 512);
	assert_int_equal(d->parts[3].index, 6);
	assert_int_equal(d->parts[3].offset, (8192 + 2048 + 63) * 512);
	assert_string_equal(d->parts[3].partuuid, "12345678-06");
	expect_partx(d, img);
	diskimg_close(d);

	/* A link outside the extended partition. */
	const uint32_t ebr1far[][4] = { { 0, 0x83, 63, 1000 }, { 0, 0x05, 900000, 2048 } };
	mbr_write(img, 8192, ebr1far, 2);
	expect_open_error(f, img, "outside the extended partition");

	/* A chain of more EBRs than partitions fit: each links to the next sector. */
	const uint32_t prim2[][4] = { { 0, 0x05, 2048, 20000 } };
	mbr_write(img, 0, prim2, 1);
	for (uint32_t i = 0; i < 200; i++) {
		const uint32_t link[][4] = { { 0, 0x05, i + 1, 1 } };
		mbr_write(img, 2048 + i, link, 1);
	}
	expect_open_error(f, img, "more than 128 links");

	/* Not an MBR, not a file system. */
	sh("truncate -s 0 '%s' && truncate -s 1M '%s'", img, img);
	expect_open_error(f, img, "no partition table and no ext2/3/4 or FAT file system");
	sh("truncate -s 100 '%s'", img);
	expect_open_error(f, img, "too small");
	expect_open_error(f, "/nonexistent/x.img", "No such file");
	free(img);
}

/* ------------------------------------------------------------------------
 * ext4
 */

static const char kernel_bytes[] = "this is the kernel\n";

/* A tree with a kernel, symlinks of each kind, a loop, and a directory. */
static char *make_tree(struct fixture *f)
{
	char *src = path_in(f, "tree");
	char *cmd = helper_asprintf(
		"set -e; cd '%s' && mkdir -p tree/boot/grub tree/etc tree/d && cd tree && "
		"printf 'this is the kernel\\n' > boot/vmlinuz-6.1 && "
		"head -c 300000 /dev/urandom > boot/initrd.img-6.1 && "
		"ln -s boot/vmlinuz-6.1 vmlinuz && ln -s /boot/initrd.img-6.1 initrd.img && "
		"ln -s ../boot etc/bootdir && ln -s loop2 loop1 && ln -s loop1 loop2 && "
		"ln -s %0255d long && "
		"printf 'menuentry x {}\\n' > boot/grub/grub.cfg && : > boot/empty && "
		"for i in $(seq 1 300); do : > d/file$i; done",
		f->dir, 0);
	sh("%s", cmd);
	free(cmd);
	return src;
}

/* An ext4 file system of MiB mib (made from tree) at offset in img; its UUID in uuid. */
static void put_ext4(struct fixture *f, const char *img, uint64_t offset, unsigned int mib,
		     const char *tree, const char *extra_opts, char uuid[37])
{
	char *fsimg = path_in(f, "fs.ext4");
	char *cmd = helper_asprintf("rm -f '%s' && mkfs.ext4 -q -F -L rootfs %s -d '%s' '%s' %uM >/dev/null && "
				    "dd if='%s' of='%s' bs=1M seek=%llu conv=notrunc status=none",
				    fsimg, extra_opts, tree, fsimg, mib, fsimg, img,
				    (unsigned long long)(offset / MiB));
	sh("%s", cmd);
	free(cmd);
	int st;
	char *out = helper_shell_out(&st, "blkid -p -o value -s UUID '%s'", fsimg);
	assert_int_equal(st, 0);
	out[strcspn(out, "\n")] = '\0';
	assert_int_equal(strlen(out), 36);
	memcpy(uuid, out, 37);
	free(out);
	free(fsimg);
}

struct listing {
	char names[512][32];
	bool dirs[512];
	unsigned int n, stop_after;
};

static int collect(void *arg, const char *name, bool is_dir)
{
	struct listing *l = arg;

	assert_true(l->n < 512);
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
	l->dirs[l->n++] = is_dir;
	return l->stop_after && l->n >= l->stop_after;
}

static bool listed(const struct listing *l, const char *name, bool is_dir)
{
	for (unsigned int i = 0; i < l->n; i++)
		if (!strcmp(l->names[i], name))
			return l->dirs[i] == is_dir;
	return false;
}

static void expect_file(struct fs *fs, const char *path, const void *data, size_t len)
{
	void *buf = NULL;
	size_t got = 0;

	if (fs_read_file(fs, path, 1 << 20, &buf, &got) != 0)
		fail_msg("cannot read %s", path);
	assert_int_equal(got, len);
	assert_memory_equal(buf, data, len);
	free(buf);
}

static void check_ext_tree(struct fixture *f, struct fs *fs, const char *tree)
{
	void *buf;
	size_t len;

	expect_file(fs, "/boot/vmlinuz-6.1", kernel_bytes, strlen(kernel_bytes));
	expect_file(fs, "/vmlinuz", kernel_bytes, strlen(kernel_bytes));
	expect_file(fs, "//etc/./bootdir/../boot/vmlinuz-6.1", kernel_bytes, strlen(kernel_bytes));
	expect_file(fs, "/boot/empty", "", 0);
	char *p = helper_asprintf("%s/boot/initrd.img-6.1", tree);
	size_t ilen;
	void *initrd = helper_read_file(p, &ilen);
	free(p);
	assert_int_equal(ilen, 300000);
	expect_file(fs, "/initrd.img", initrd, ilen);	/* absolute symlink, extents */
	expect_file(fs, "/etc/bootdir/initrd.img-6.1", initrd, ilen);	/* through a directory symlink */

	/* Too big for max: one error, nothing returned. */
	f->log.errors = 0;
	assert_int_equal(fs_read_file(fs, "/initrd.img", 1000, &buf, &len), -1);
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "more than 1000"));
	free(initrd);

	assert_true(fs_is_dir(fs, "/boot"));
	assert_true(fs_is_dir(fs, "/etc/bootdir"));
	assert_true(fs_is_dir(fs, "/"));
	assert_false(fs_is_file(fs, "/boot"));
	assert_true(fs_is_file(fs, "/vmlinuz"));
	assert_false(fs_is_file(fs, "/nope"));
	f->log.errors = 0;
	assert_int_equal(fs_read_file(fs, "/nope", 100, &buf, &len), -2);
	assert_int_equal(fs_read_file(fs, "/vmlinuz/x", 100, &buf, &len), -2);
	assert_int_equal(fs_read_file(fs, "/Boot/vmlinuz-6.1", 100, &buf, &len), -2);
	assert_int_equal(f->log.errors, 0);
	assert_int_equal(fs_read_file(fs, "/boot", 100, &buf, &len), -1);
	assert_non_null(strstr(f->log.last_error, "not a regular file"));
	/* A symlink loop: bounded. */
	f->log.errors = 0;
	assert_int_equal(fs_read_file(fs, "/loop1", 100, &buf, &len), -1);
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "more than 40 symlinks"));
	/* A 255-byte (slow) symlink to nothing. */
	assert_int_equal(fs_read_file(fs, "/long", 100, &buf, &len), -2);

	struct listing *l = calloc(1, sizeof(*l));
	assert_int_equal(fs_list_dir(fs, "/boot", collect, l), 0);
	assert_int_equal(l->n, 4);
	assert_true(listed(l, "grub", true));
	assert_true(listed(l, "vmlinuz-6.1", false));
	assert_false(listed(l, ".", true));
	memset(l, 0, sizeof(*l));
	assert_int_equal(fs_list_dir(fs, "/d", collect, l), 0);
	assert_int_equal(l->n, 300);
	memset(l, 0, sizeof(*l));
	l->stop_after = 7;
	assert_int_equal(fs_list_dir(fs, "/d", collect, l), 0);
	assert_int_equal(l->n, 7);
	assert_int_equal(fs_list_dir(fs, "/nope", collect, l), -2);
	assert_int_equal(fs_list_dir(fs, "/vmlinuz", collect, l), -2);
	free(l);
}

static void test_ext4_gpt(void **state)
{
	struct fixture *f = *state;
	char *img = make_table(f, "gpt.img", 64 * MiB, GPT_SCRIPT);
	char *tree = make_tree(f);
	char uuid[37];

	put_ext4(f, img, 18432 * 512, 16, tree, "", uuid);
	struct diskimg *d = diskimg_open(img);
	assert_non_null(d);
	alarm(ALARM_S);
	struct fs *fs = fs_open(d, &d->parts[1]);
	assert_non_null(fs);
	assert_int_equal(fs_kind(fs), FS_EXT);
	assert_string_equal(fs_type_name(fs), "ext4");
	assert_string_equal(fs_uuid(fs), uuid);
	assert_string_equal(fs_label(fs), "rootfs");
	check_ext_tree(f, fs, tree);
	fs_close(fs);

	/* The ESP holds nothing yet. */
	f->log.errors = 0;
	assert_null(fs_probe(d, &d->parts[0]));
	assert_int_equal(f->log.errors, 0);
	assert_null(fs_open(d, &d->parts[0]));
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "partition 1: no ext2/3/4 or FAT file system"));
	diskimg_close(d);
	free(tree);
	free(img);
}

/* Unpartitioned ext2 (block maps, not extents) made with mkfs -d straight onto the image. */
static void test_ext_whole_disk(void **state)
{
	struct fixture *f = *state;
	char *tree = make_tree(f);
	char *img = path_in(f, "whole.ext2");
	char uuid[37];

	sh("truncate -s 0 '%s'", img);
	put_ext4(f, img, 0, 8, tree, "-t ext2", uuid);
	struct diskimg *d = diskimg_open(img);
	assert_non_null(d);
	assert_int_equal(d->table, DISKIMG_NONE);
	assert_int_equal(d->nr_parts, 1);
	assert_int_equal(d->parts[0].index, 0);
	assert_int_equal(d->parts[0].offset, 0);
	assert_int_equal(d->parts[0].size, 8 * MiB);
	alarm(ALARM_S);
	struct fs *fs = fs_open(d, &d->parts[0]);
	assert_non_null(fs);
	assert_string_equal(fs_type_name(fs), "ext2");
	assert_string_equal(fs_uuid(fs), uuid);
	check_ext_tree(f, fs, tree);
	fs_close(fs);
	diskimg_close(d);
	free(tree);
	free(img);
}

static void debugfs_w(const char *img, const char *req)
{
	sh("debugfs -w -R '%s' '%s' >/dev/null 2>&1", req, img);
}

static void test_ext_hostile(void **state)
{
	struct fixture *f = *state;
	char *tree = make_tree(f);
	char *img = path_in(f, "bad.ext4");
	char *img2 = path_in(f, "bad.ext2");
	char uuid[37];
	void *buf;
	size_t len;

	sh("truncate -s 0 '%s' '%s'", img, img2);
	put_ext4(f, img, 0, 8, tree, "", uuid);
	/* The first extent of the initrd far outside the file system (i_block[5]: ee_start_lo). */
	debugfs_w(img, "sif /boot/initrd.img-6.1 block[5] 0x7ffffff0");
	/* A directory that holds itself. */
	debugfs_w(img, "ln /etc /etc/self");

	put_ext4(f, img2, 0, 8, tree, "-t ext2", uuid);
	/* Block maps: a data block, and the indirect block of a big file. */
	debugfs_w(img2, "sif /boot/vmlinuz-6.1 block[0] 99999999");
	debugfs_w(img2, "sif /boot/initrd.img-6.1 block[IND] 99999999");

	struct diskimg *d = diskimg_open(img);
	assert_non_null(d);
	alarm(ALARM_S);
	struct fs *fs = fs_open(d, &d->parts[0]);
	assert_non_null(fs);
	f->log.errors = 0;
	assert_int_equal(fs_read_file(fs, "/initrd.img", 1 << 20, &buf, &len), -1);
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "/initrd.img: block 2147483632 is outside the file system"));
	expect_file(fs, "/etc/self/self/self/self/bootdir/vmlinuz-6.1", kernel_bytes, strlen(kernel_bytes));
	struct listing *l = calloc(1, sizeof(*l));
	assert_int_equal(fs_list_dir(fs, "/etc/self/self", collect, l), 0);
	assert_true(listed(l, "self", true));
	fs_close(fs);
	diskimg_close(d);

	d = diskimg_open(img2);
	assert_non_null(d);
	fs = fs_open(d, &d->parts[0]);
	assert_non_null(fs);
	f->log.errors = 0;
	assert_int_equal(fs_read_file(fs, "/vmlinuz", 1 << 20, &buf, &len), -1);
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "block 99999999 is outside"));
	f->log.errors = 0;
	assert_int_equal(fs_read_file(fs, "/initrd.img", 1 << 20, &buf, &len), -1);
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "/initrd.img: "));
	fs_close(fs);

	/* A superblock that claims more blocks than the partition holds. */
	sh("truncate -s 6M '%s'", img2);
	diskimg_close(d);
	d = diskimg_open(img2);
	assert_non_null(d);
	f->log.errors = 0;
	assert_null(fs_probe(d, &d->parts[0]));
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "larger than its partition"));
	diskimg_close(d);

	/* A superblock of garbage behind the magic: sizes caught here, the rest by libext2fs. */
	uint8_t junk[56];
	memset(junk, 0xff, sizeof(junk));
	patch(img, 1024, junk, sizeof(junk));
	d = diskimg_open(img);
	assert_non_null(d);
	f->log.errors = 0;
	assert_null(fs_open(d, &d->parts[0]));
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "larger than its partition"));
	diskimg_close(d);
	sh("dd if='%s/fs.ext4' of='%s' conv=notrunc status=none", f->dir, img);
	patch(img, 1024 + 32, junk, 12);	/* blocks, clusters and inodes per group */
	d = diskimg_open(img);
	assert_non_null(d);
	f->log.errors = 0;
	assert_null(fs_open(d, &d->parts[0]));
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "cannot open the ext2/3/4 file system"));
	diskimg_close(d);
	free(l);
	free(img);
	free(img2);
	free(tree);
}


/* ------------------------------------------------------------------------
 * FAT
 */

#define MTOOLS "MTOOLS_SKIP_CHECK=1 MTOOLS_NO_VFAT=0 "

/* Where things are in the FAT file system at off of img, as the test reads the BPB. */
struct fat_geom {
	uint64_t fat_off, data_off, root_off;
	uint32_t cluster_size, bits, root_bytes, root_cluster;
};

static void fat_geom(const char *img, uint64_t off, struct fat_geom *g)
{
	uint8_t b[512];

	peek(img, off, b, sizeof(b));
	uint32_t bps = b[11] | b[12] << 8, spc = b[13], reserved = b[14] | b[15] << 8, nfats = b[16];
	uint32_t root = b[17] | b[18] << 8, fatsz = b[22] | b[23] << 8;
	uint32_t total = b[19] | b[20] << 8;
	if (!total)
		total = get_le32(b + 32);
	g->bits = fatsz ? 16 : 32;
	if (!fatsz)
		fatsz = get_le32(b + 36);
	g->fat_off = off + (uint64_t)reserved * bps;
	g->data_off = off + ((uint64_t)reserved + nfats * fatsz + (root * 32 + bps - 1) / bps) * bps;
	g->cluster_size = bps * spc;
	g->root_off = g->fat_off + (uint64_t)nfats * fatsz * bps;
	g->root_bytes = root * 32;
	g->root_cluster = g->bits == 32 ? get_le32(b + 44) : 0;
	if (g->bits == 16 && (total - (g->data_off - off) / bps) / spc <= 4084)
		g->bits = 12;
}

/* The first cluster of path, from mshowfat. */
static uint32_t fat_first_cluster(const char *img, uint64_t off, const char *path)
{
	int st;
	char *out = helper_shell_out(&st, MTOOLS "mshowfat -i '%s@@%llu' '::%s'", img,
				     (unsigned long long)off, path);
	assert_int_equal(st, 0);
	char *lt = strchr(out, '<');
	assert_non_null(lt);
	uint32_t c = (uint32_t)strtoul(lt + 1, NULL, 10);
	free(out);
	return c;
}

static void fat_set_entry(const char *img, const struct fat_geom *g, uint32_t c, uint32_t v)
{
	uint8_t b[4];

	assert_true(g->bits != 12);
	put_le32(b, v);
	patch(img, g->fat_off + (uint64_t)c * (g->bits / 8), b, g->bits / 8);
}

/* The offset of the directory entry named short11 in the directory at cluster dir. */
static uint64_t fat_find_entry(const char *img, const struct fat_geom *g, uint32_t dir, const char *short11)
{
	uint32_t len = g->cluster_size;
	uint64_t base;

	if (!dir && g->bits != 32) {
		base = g->root_off;
		len = g->root_bytes;
	} else {
		if (!dir)
			dir = g->root_cluster;
		base = g->data_off + (uint64_t)(dir - 2) * g->cluster_size;
	}
	uint8_t *buf = malloc(len);
	peek(img, base, buf, len);
	for (uint32_t o = 0; o < len; o += 32) {
		if (!memcmp(buf + o, short11, 11)) {
			free(buf);
			return base + o;
		}
	}
	fail_msg("no entry %s", short11);
	return 0;
}

/* Files with long and short names, a deep tree, a big file, many entries, in mtools' way. */
static void fill_fat(struct fixture *f, const char *img, uint64_t off)
{
	char *src = path_in(f, "fatsrc");

	sh("set -e; cd '%s' && rm -rf fatsrc && mkdir -p fatsrc/EFI/BOOT fatsrc/loader/entries fatsrc/a/b/c/d fatsrc/many && cd fatsrc && "
	   "printf 'MZ efi' > EFI/BOOT/BOOTX64.EFI && "
	   "printf 'title Linux\\nlinux /vmlinuz\\n' > 'loader/entries/Linux 6.1 with a long name.conf' && "
	   "printf deep > a/b/c/d/deep.txt && printf kernel > vmlinuz && printf mixed > 'Mixed Case.TXT' && "
	   "head -c 200000 /dev/urandom > big.bin && for i in $(seq 1 300); do : > many/entry-number-$i; done && "
	   MTOOLS "mcopy -s -i '%s@@%llu' EFI loader a many vmlinuz 'Mixed Case.TXT' big.bin ::/",
	   f->dir, img, (unsigned long long)off);
	free(src);
}

static void check_fat_tree(struct fixture *f, struct fs *fs)
{
	void *buf;
	size_t len;

	expect_file(fs, "/EFI/BOOT/BOOTX64.EFI", "MZ efi", 6);
	expect_file(fs, "/efi/boot/bootx64.efi", "MZ efi", 6);
	expect_file(fs, "/loader/entries/linux 6.1 WITH a long name.conf", "title Linux\nlinux /vmlinuz\n", 27);
	expect_file(fs, "/a/b/../b/c/./d/deep.txt", "deep", 4);
	expect_file(fs, "/a/b/c/d/../../../../vmlinuz", "kernel", 6);
	expect_file(fs, "/mixed case.txt", "mixed", 5);
	char *p = helper_asprintf("%s/fatsrc/big.bin", f->dir);
	size_t blen;
	void *big = helper_read_file(p, &blen);
	free(p);
	expect_file(fs, "/BIG.BIN", big, blen);
	free(big);
	assert_true(fs_is_dir(fs, "/EFI"));
	assert_true(fs_is_dir(fs, "/"));
	assert_true(fs_is_file(fs, "/vmlinuz"));
	assert_false(fs_is_file(fs, "/efi"));
	assert_false(fs_is_dir(fs, "/nope"));
	f->log.errors = 0;
	assert_int_equal(fs_read_file(fs, "/nope.conf", 100, &buf, &len), -2);
	assert_int_equal(fs_read_file(fs, "/vmlinuz/x", 100, &buf, &len), -2);
	assert_int_equal(f->log.errors, 0);
	assert_int_equal(fs_read_file(fs, "/big.bin", 1000, &buf, &len), -1);
	assert_non_null(strstr(f->log.last_error, "more than 1000"));
	assert_int_equal(fs_read_file(fs, "/EFI", 1000, &buf, &len), -1);

	struct listing *l = calloc(1, sizeof(*l));
	assert_int_equal(fs_list_dir(fs, "/", collect, l), 0);
	assert_int_equal(l->n, 7);
	assert_true(listed(l, "EFI", true));
	assert_true(listed(l, "Mixed Case.TXT", false));
	assert_true(listed(l, "vmlinuz", false));
	assert_true(listed(l, "big.bin", false));
	memset(l, 0, sizeof(*l));
	assert_int_equal(fs_list_dir(fs, "/loader/entries", collect, l), 0);
	assert_int_equal(l->n, 1);
	assert_string_equal(l->names[0], "Linux 6.1 with a long name.conf");
	memset(l, 0, sizeof(*l));
	assert_int_equal(fs_list_dir(fs, "/MANY", collect, l), 0);
	assert_int_equal(l->n, 300);
	assert_true(listed(l, "entry-number-300", false));
	assert_int_equal(fs_list_dir(fs, "/vmlinuz", collect, l), -2);
	free(l);
}

static void blkid_value(const char *img, uint64_t off, const char *tag, char *out, size_t size)
{
	int st;
	char *v = helper_shell_out(&st, "blkid -p -O %llu -o value -s %s '%s'", (unsigned long long)off, tag, img);
	assert_int_equal(st, 0);
	v[strcspn(v, "\n")] = '\0';
	snprintf(out, size, "%s", v);
	free(v);
}

/* An ESP of each FAT width in a GPT disk, filled with mcopy at the partition's offset. */
static void test_fat_gpt(void **state)
{
	struct fixture *f = *state;
	static const struct { const char *opts; unsigned int mib; } kinds[] = {
		{ "-F 12", 4 }, { "-F 16", 16 }, { "-F 32 -s 1", 40 },
	};

	for (unsigned int k = 0; k < 3; k++) {
		char *img = make_table(f, "esp.img", 64 * MiB,
				       "label: gpt\\nstart=2048, size=90000, type=" ESP_TYPE "\\n");
		uint64_t off = 2048 * 512;
		char uuid[40], label[40];

		sh("rm -f '%s/esp.fat' && mkfs.vfat -C %s -n 'MY ESP' '%s/esp.fat' %u >/dev/null && "
		   "dd if='%s/esp.fat' of='%s' bs=512 seek=2048 conv=notrunc status=none",
		   f->dir, kinds[k].opts, f->dir, kinds[k].mib * 1024, f->dir, img);
		fill_fat(f, img, off);
		blkid_value(img, off, "UUID", uuid, sizeof(uuid));
		blkid_value(img, off, "LABEL", label, sizeof(label));
		assert_string_equal(label, "MY ESP");

		struct diskimg *d = diskimg_open(img);
		assert_non_null(d);
		assert_true(d->parts[0].esp);
		alarm(ALARM_S);
		struct fs *fs = fs_open(d, &d->parts[0]);
		assert_non_null(fs);
		assert_int_equal(fs_kind(fs), FS_FAT);
		assert_string_equal(fs_type_name(fs), "vfat");
		assert_string_equal(fs_uuid(fs), uuid);
		assert_string_equal(fs_label(fs), label);
		check_fat_tree(f, fs);
		alarm(0);
		fs_close(fs);
		diskimg_close(d);
		free(img);
	}
}

/* FAT on the whole disk: no partition table (its boot code is no MBR). */
static void test_fat_whole_disk(void **state)
{
	struct fixture *f = *state;
	char *img = path_in(f, "whole.fat");

	sh("mkfs.vfat -C -F 16 '%s' 16384 >/dev/null", img);
	fill_fat(f, img, 0);
	struct diskimg *d = diskimg_open(img);
	assert_non_null(d);
	assert_int_equal(d->table, DISKIMG_NONE);
	struct fs *fs = fs_open(d, &d->parts[0]);
	assert_non_null(fs);
	check_fat_tree(f, fs);
	assert_string_equal(fs_label(fs), "");
	fs_close(fs);
	diskimg_close(d);
	free(img);
}

static struct fs *open_whole(struct fixture *f, const char *img, struct diskimg **d)
{
	*d = diskimg_open(img);
	assert_non_null(*d);
	f->log.errors = 0;
	alarm(ALARM_S);
	return fs_open(*d, &(*d)->parts[0]);
}

static void expect_read_error(struct fixture *f, struct fs *fs, const char *path, const char *needle)
{
	void *buf;
	size_t len;

	f->log.errors = 0;
	alarm(ALARM_S);
	if (fs_read_file(fs, path, 1 << 20, &buf, &len) != -1)
		fail_msg("%s: no error", path);
	alarm(0);
	assert_int_equal(f->log.errors, 1);
	if (!strstr(f->log.last_error, needle))
		fail_msg("error '%s' does not say '%s'", f->log.last_error, needle);
}

static void test_fat_hostile(void **state)
{
	struct fixture *f = *state;
	char *img = path_in(f, "bad.fat");
	struct fat_geom g;
	struct diskimg *d;
	struct fs *fs;

	for (unsigned int bits = 16; bits <= 32; bits += 16) {
		sh("rm -f '%s' && mkfs.vfat -C -F %u %s '%s' 40960 >/dev/null", img, bits,
		   bits == 32 ? "-s 1" : "", img);
		fill_fat(f, img, 0);
		sh(MTOOLS "mmd -i '%s' ::/a/loop", img);
		fat_geom(img, 0, &g);
		assert_int_equal(g.bits, bits);

		/* A loop in big.bin's chain; Mixed Case.TXT claims more than its chain; the
		 * directory a/loop is a itself. */
		uint32_t big = fat_first_cluster(img, 0, "/big.bin");
		fat_set_entry(img, &g, big + 5, big + 1);
		uint32_t a = fat_first_cluster(img, 0, "/a");
		uint64_t e = fat_find_entry(img, &g, a, "LOOP       ");
		uint8_t lo[2] = { (uint8_t)a, (uint8_t)(a >> 8) }, hi[2] = { (uint8_t)(a >> 16), (uint8_t)(a >> 24) };
		patch(img, e + 26, lo, 2);
		patch(img, e + 20, hi, 2);
		uint64_t me = fat_find_entry(img, &g, 0, "MIXEDC~1TXT");
		uint8_t sz[4];
		put_le32(sz, 100000);
		patch(img, me + 28, sz, 4);

		fs = open_whole(f, img, &d);
		assert_non_null(fs);
		expect_read_error(f, fs, "/big.bin", "cluster chain loops at cluster");
		expect_read_error(f, fs, "/mixed case.txt", "cluster chain ends after 1 clusters");
		expect_file(fs, "/a/loop/loop/loop/b/c/d/deep.txt", "deep", 4);
		struct listing *l = calloc(1, sizeof(*l));
		assert_int_equal(fs_list_dir(fs, "/a/loop/loop", collect, l), 0);
		assert_true(listed(l, "loop", true));
		free(l);
		fs_close(fs);
		diskimg_close(d);

		/* A chain that runs into a free cluster, or beyond the file system's end (the FAT
		 * is cached: open again after each change). */
		fat_set_entry(img, &g, big + 5, 0);
		fs = open_whole(f, img, &d);
		char *want = helper_asprintf("cluster %u is followed by a free cluster", big + 5);
		expect_read_error(f, fs, "/big.bin", want);
		free(want);
		fs_close(fs);
		diskimg_close(d);
		fat_set_entry(img, &g, big, bits == 16 ? 0xfff0 : 0x0ffffff0);
		fs = open_whole(f, img, &d);
		expect_read_error(f, fs, "/big.bin", "an invalid cluster");
		fs_close(fs);
		diskimg_close(d);

		/* A boot sector with zero sectors per cluster: the one error says so. */
		uint8_t zero = 0;
		patch(img, 13, &zero, 1);
		fs = open_whole(f, img, &d);
		assert_null(fs);
		assert_int_equal(f->log.errors, 1);
		assert_non_null(strstr(f->log.last_error, "sectors per cluster is not a power of two"));
		diskimg_close(d);
		uint8_t one = 1;
		patch(img, 13, &one, 1);

		/* More sectors than the image holds. */
		uint8_t tot[4];
		put_le32(tot, 1u << 30);
		uint8_t z2[2] = { 0, 0 };
		patch(img, 19, z2, 2);
		patch(img, 32, tot, 4);
		fs = open_whole(f, img, &d);
		assert_null(fs);
		assert_int_equal(f->log.errors, 1);
		assert_non_null(strstr(f->log.last_error, "larger than its partition"));
		diskimg_close(d);
	}
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mbr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gpt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gpt_backup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gpt_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbr_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ext4_gpt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ext_whole_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ext_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fat_gpt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fat_whole_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fat_hostile, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
