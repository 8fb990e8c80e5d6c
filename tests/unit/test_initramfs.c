/*
 * bootvm initramfs: newc bytes, round trips through GNU cpio for every
 * compression, ownership, hard links, busybox and its /init, module
 * resolution against a real modules.dep, and the command line's errors.
 *
 * Needs root (device nodes, chown, chroot), cpio, gzip, zstd, lz4, xz,
 * busybox-static; the real-module tests also apt-get download Debian's cloud
 * kernel once (scripts/fetch-cloud-kernel.sh) and skip without it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "tools/cpio.h"
#include "tools/initramfs.h"
#include "util/log.h"

#include "helpers.h"

#define BUSYBOX "/bin/busybox"

/* ------------------------------------------------------------------------
 * Helpers
 */

static void write_str(const char *path, const char *s, mode_t mode)
{
	helper_write_file(path, s, strlen(s), mode);
}

static void xmkdir(const char *path, mode_t mode)
{
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* dir/name holding s. */
static void put_file(const char *dir, const char *name, const char *s, mode_t mode)
{
	char *p = helper_asprintf("%s/%s", dir, name);

	write_str(p, s, mode);
	free(p);
}

static void put_dir(const char *dir, const char *name, mode_t mode)
{
	char *p = helper_asprintf("%s/%s", dir, name);

	xmkdir(p, mode);
	free(p);
}

static void set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };

	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* ------------------------------------------------------------------------
 * Running bootvm
 */

/* No file in dir but those named in keep (NULL-terminated). */
static void assert_dir_only(const char *dir, const char *const *keep)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	assert_non_null(d);
	while ((de = readdir(d))) {
		bool ok = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
		for (const char *const *k = keep; *k && !ok; k++)
			ok = !strcmp(*k, de->d_name);
		if (!ok)
			fail_msg("unexpected file '%s' left in %s", de->d_name, dir);
	}
	closedir(d);
}

/*
 * A failure: the status, exactly one "bootvm: " line mentioning needle, and
 * nothing written in outdir except the files in keep.
 */
static void expect_fail_as(unsigned int flags, int status, const char *needle, const char *outdir,
			   const char *const *keep, const char *const *args)
{
	struct helper_result r;

	helper_run_bootvm(&r, "initramfs", args, flags);
	helper_expect_error(&r, status, needle);
	helper_result_free(&r);
	if (outdir)
		assert_dir_only(outdir, keep ? keep : (const char *const[]){ NULL });
}

static void expect_fail(int status, const char *needle, const char *outdir,
			const char *const *args)
{
	expect_fail_as(0, status, needle, outdir, NULL, args);
}

static void expect_ok(const char *const *args)
{
	struct helper_result r;

	helper_run_bootvm(&r, "initramfs", args, 0);
	if (r.status != 0 || r.err_lines != 0)
		fail_msg("%s: status %d, stderr: %s", r.cmd, r.status, r.err);
	helper_result_free(&r);
}

/* ------------------------------------------------------------------------
 * A newc reader, independent of the writer, for checking archives
 */

struct entry {
	char *name;
	uint32_t ino, mode, uid, gid, nlink, mtime, filesize;
	uint32_t devmajor, devminor, rmajor, rminor;
	const unsigned char *data;
};

struct archive {
	unsigned char *buf;
	size_t len;
	struct entry e[4096];
	size_t n;
};

static uint32_t hex8(const unsigned char *p)
{
	char s[9];
	char *end;

	memcpy(s, p, 8);
	s[8] = 0;
	uint32_t v = (uint32_t)strtoul(s, &end, 16);
	if (end != s + 8)
		fail_msg("bad hex field '%s'", s);
	return v;
}

/* Parse an uncompressed newc archive, checking magic, c_check, padding and the trailer. */
static void archive_parse(struct archive *a, unsigned char *buf, size_t len)
{
	size_t pos = 0;

	a->buf = buf;
	a->len = len;
	a->n = 0;
	for (;;) {
		assert_true(pos + 110 <= len);
		assert_int_equal(pos % 4, 0);
		assert_memory_equal(buf + pos, "070701", 6);
		const unsigned char *h = buf + pos + 6;
		uint32_t namesize = hex8(h + 88), check = hex8(h + 96);
		assert_int_equal(check, 0);
		assert_true(namesize >= 2 && pos + 110 + namesize <= len);
		char *name = (char *)buf + pos + 110;
		assert_int_equal(name[namesize - 1], 0);
		assert_int_equal(strlen(name), namesize - 1);
		size_t dpos = (pos + 110 + namesize + 3) & ~(size_t)3;
		for (size_t i = pos + 110 + namesize; i < dpos; i++)
			assert_int_equal(buf[i], 0);
		if (!strcmp(name, "TRAILER!!!")) {
			assert_int_equal(hex8(h + 48), 0);
			assert_int_equal(dpos, len);	/* nothing after the trailer */
			return;
		}
		assert_true(a->n < sizeof(a->e) / sizeof(a->e[0]));
		struct entry *e = &a->e[a->n++];
		e->name = name;
		e->ino = hex8(h);
		e->mode = hex8(h + 8);
		e->uid = hex8(h + 16);
		e->gid = hex8(h + 24);
		e->nlink = hex8(h + 32);
		e->mtime = hex8(h + 40);
		e->filesize = hex8(h + 48);
		e->devmajor = hex8(h + 56);
		e->devminor = hex8(h + 64);
		e->rmajor = hex8(h + 72);
		e->rminor = hex8(h + 80);
		e->data = buf + dpos;
		assert_true(dpos + e->filesize <= len);
		pos = (dpos + e->filesize + 3) & ~(size_t)3;
		for (size_t i = dpos + e->filesize; i < pos; i++)
			assert_int_equal(buf[i], 0);
	}
}

/* The archive at path, parsed; archive_free() it. */
static struct archive *archive_open(const char *path)
{
	struct archive *a = calloc(1, sizeof(*a));
	size_t len;
	unsigned char *buf = helper_read_file(path, &len);

	assert_non_null(a);
	if (!buf)
		fail_msg("cannot read archive %s", path);
	archive_parse(a, buf, len);
	return a;
}

static void archive_free(struct archive *a)
{
	free(a->buf);
	free(a);
}

static const struct entry *archive_find(const struct archive *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->e[i].name, name))
			return &a->e[i];
	return NULL;
}

static const struct entry *archive_get(const struct archive *a, const char *name)
{
	const struct entry *e = archive_find(a, name);

	if (!e)
		fail_msg("archive has no '%s'", name);
	return e;
}

/* Every entry's parent directory comes before it; names are unique. */
static void archive_check_order(const struct archive *a)
{
	for (size_t i = 0; i < a->n; i++) {
		const char *slash = strrchr(a->e[i].name, '/');
		for (size_t j = 0; j < i; j++)
			if (!strcmp(a->e[i].name, a->e[j].name))
				fail_msg("'%s' twice in the archive", a->e[i].name);
		if (!slash)
			continue;
		bool found = false;
		for (size_t j = 0; j < i && !found; j++)
			found = S_ISDIR(a->e[j].mode) &&
				strlen(a->e[j].name) == (size_t)(slash - a->e[i].name) &&
				!strncmp(a->e[j].name, a->e[i].name, (size_t)(slash - a->e[i].name));
		if (!found)
			fail_msg("'%s' comes before its directory", a->e[i].name);
	}
}

/* ------------------------------------------------------------------------
 * The exact bytes of a small archive
 */

static void test_newc_bytes(void **state)
{
	if (geteuid() != 0) {
		print_message("skipped: needs root (mknod)\n");
		skip();
	}
	char *t = helper_tmpdir("initramfs");
	char *d = helper_asprintf("%s/d", t), *out = helper_asprintf("%s/out.cpio", t), *p;
	size_t len;

	xmkdir(d, 0755);
	p = helper_asprintf("%s/hello.txt", d);
	write_str(p, "hi\n", 0644);
	set_mtime(p, 1000000000);
	free(p);
	p = helper_asprintf("%s/null", d);
	assert_int_equal(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0);
	assert_int_equal(chmod(p, 0666), 0);
	set_mtime(p, 1000000003);
	free(p);
	put_dir(d, "sub", 0755);
	p = helper_asprintf("%s/sub/link", d);
	assert_int_equal(symlink("../hello.txt", p), 0);
	set_mtime(p, 1000000002);
	free(p);
	p = helper_asprintf("%s/sub", d);
	set_mtime(p, 1000000001);
	free(p);

	struct initramfs_options opt = { .output = out, .dir = d, .compress = CPIO_COMPRESS_NONE };
	assert_int_equal(initramfs_build(&opt), 0);

	/* Written out by hand from the newc format: 110-byte header, name and
	 * NUL padded to 4, data padded to 4; inodes in archive order. */
	static const char expect[] =
		/* hello.txt @0: 110 + 10 = 120, data 3 + 1 pad */
		"070701" "00000001" "000081A4" "00000000" "00000000" "00000001" "3B9ACA00"
		"00000003" "00000000" "00000000" "00000000" "00000000" "0000000A" "00000000"
		"hello.txt\0" "hi\n\0"
		/* null @124: 110 + 5 + 1 pad */
		"070701" "00000002" "000021B6" "00000000" "00000000" "00000001" "3B9ACA03"
		"00000000" "00000000" "00000000" "00000001" "00000003" "00000005" "00000000"
		"null\0" "\0"
		/* sub @240: 110 + 4 + 2 pad; nlink 2 (no subdirectories) */
		"070701" "00000003" "000041ED" "00000000" "00000000" "00000002" "3B9ACA01"
		"00000000" "00000000" "00000000" "00000000" "00000000" "00000004" "00000000"
		"sub\0" "\0\0"
		/* sub/link @356: 110 + 9 + 1 pad, target 12 bytes */
		"070701" "00000004" "0000A1FF" "00000000" "00000000" "00000001" "3B9ACA02"
		"0000000C" "00000000" "00000000" "00000000" "00000000" "00000009" "00000000"
		"sub/link\0" "\0" "../hello.txt"
		/* trailer @488: 110 + 11 + 3 pad = 612 */
		"070701" "00000000" "00000000" "00000000" "00000000" "00000001" "00000000"
		"00000000" "00000000" "00000000" "00000000" "00000000" "0000000B" "00000000"
		"TRAILER!!!\0" "\0\0\0";
	unsigned char *got = helper_read_file(out, &len);
	assert_non_null(got);
	assert_int_equal(len, sizeof(expect) - 1);
	assert_int_equal(len, 612);
	assert_memory_equal(got, expect, len);
	free(got);

	free(d);
	free(out);
	helper_tmpdir_remove(t);
}

/* ------------------------------------------------------------------------
 * Round trips through GNU cpio
 */

/* Names in the rich tree, in the order the archive must list them. */
static const char *const rich_order[] = {
	"abs", "blk", "dangling", "dev-null", "dir1", "dir1/big", "dir1/hl2", "dir1/mid",
	"dir1/nested", "dir1/nested/deep", "dir1/nested/hl3", "dir1/up", "empty", "empty-dir",
	"fifo", "half-linked", "hl1", "plain", "rel", "setgid", "setuid", "sticky",
	"sticky/x", "with space", "\xc3\xbcn\xc3\xaf" "code", NULL,
};

static void make_rich_tree(const char *t, const char *d)
{
	char *p, *q;

	xmkdir(d, 0755);
#define P(name) (free(p), p = helper_asprintf("%s/%s", d, name))
	p = NULL;
	xmkdir(P("dir1"), 0755);
	xmkdir(P("dir1/nested"), 0700);
	xmkdir(P("empty-dir"), 0750);
	xmkdir(P("sticky"), 01777);
	write_str(P("sticky/x"), "x", 0644);
	write_str(P("plain"), "hello\n", 0644);
	assert_int_equal(chown(p, 1234, 5678), 0);
	write_str(P("empty"), "", 0600);
	write_str(P("setuid"), "#!/bin/sh\n", 04755);
	write_str(P("setgid"), "#!/bin/sh\n", 02711);
	write_str(P("dir1/nested/deep"), "deep\n", 0640);
	write_str(P("with space"), "space\n", 0644);
	write_str(P("\xc3\xbcn\xc3\xaf" "code"), "utf-8\n", 0644);
	/* 9 MiB: more than one lz4 legacy block, many zlib/zstd buffers. */
	{
		size_t n = 9u << 20;
		char *big = malloc(n);
		assert_non_null(big);
		for (size_t i = 0; i < n; i++)
			big[i] = (char)("abcdefghijklmnopqrstuvwxyz\n"[(i * 7 + i / 4096) % 27] ^
					((i % 1021) == 0));
		helper_write_file(P("dir1/big"), big, n, 0644);
		helper_write_file(P("dir1/mid"), big, 300001, 0644);
		free(big);
	}
	assert_int_equal(symlink("dir1/big", P("rel")), 0);
	assert_int_equal(symlink("/etc/passwd", P("abs")), 0);
	assert_int_equal(symlink("nowhere/at/all", P("dangling")), 0);
	assert_int_equal(symlink("../plain", P("dir1/up")), 0);
	assert_int_equal(mknod(P("dev-null"), S_IFCHR | 0666, makedev(1, 3)), 0);
	assert_int_equal(chmod(p, 0666), 0);
	assert_int_equal(mknod(P("blk"), S_IFBLK | 0660, makedev(7, 300)), 0);
	assert_int_equal(chmod(p, 0660), 0);
	assert_int_equal(mkfifo(P("fifo"), 0620), 0);
	assert_int_equal(chmod(p, 0620), 0);
	write_str(P("hl1"), "linked\n", 0644);
	q = helper_asprintf("%s", p);
	assert_int_equal(link(q, P("dir1/hl2")), 0);
	assert_int_equal(link(q, P("dir1/nested/hl3")), 0);
	free(q);
	/* A second link outside the tree: inside, the file is a plain file. */
	write_str(P("half-linked"), "half\n", 0644);
	q = helper_asprintf("%s/outside-link", t);
	assert_int_equal(link(p, q), 0);
	free(q);

	/* Distinct mtimes; directories last, deepest first. */
	time_t m = 1500000000;
	for (const char *const *n = rich_order; *n; n++)
		set_mtime(P(*n), m += 1000);
	set_mtime(P("dir1/nested"), 1400000001);
	set_mtime(P("dir1"), 1400000002);
	set_mtime(P("sticky"), 1400000003);
	set_mtime(P("empty-dir"), 1400000004);
	free(p);
#undef P
}

/* Extract archive (decompressed with decomp) into a fresh dir under t. */
static char *extract(const char *t, const char *archive, const char *decomp, const char *name)
{
	char *x = helper_asprintf("%s/%s", t, name);

	xmkdir(x, 0755);
	if (helper_shell("cd '%s' && %s < '%s' | cpio -idm --no-absolute-filenames --quiet 2>&1",
			 x, decomp, archive))
		fail_msg("cpio could not extract %s", archive);
	return x;
}

static int compare_count;

/*
 * a and b have the same entries: type, mode, contents, targets, devices,
 * mtimes. GNU cpio 2.13 sets a directory's time before it fills it, so
 * non-empty directories' times are checked in the raw archive instead.
 * Returns whether a has entries.
 */
static bool compare_trees(const char *a, const char *b, bool owner_zero)
{
	DIR *d = opendir(a);
	struct dirent *de;
	size_t na = 0, nb = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *pa = helper_asprintf("%s/%s", a, de->d_name);
		char *pb = helper_asprintf("%s/%s", b, de->d_name);
		struct stat sa, sb;
		na++;
		compare_count++;
		assert_int_equal(lstat(pa, &sa), 0);
		if (lstat(pb, &sb) < 0)
			fail_msg("'%s' was not extracted", pb);
		if (sa.st_mode != sb.st_mode)
			fail_msg("%s: mode %o, extracted %o", pa, sa.st_mode, sb.st_mode);
		if (owner_zero) {
			assert_int_equal(sb.st_uid, 0);
			assert_int_equal(sb.st_gid, 0);
		} else {
			assert_int_equal(sb.st_uid, sa.st_uid);
			assert_int_equal(sb.st_gid, sa.st_gid);
		}
		if (S_ISREG(sa.st_mode)) {
			size_t la, lb;
			unsigned char *ca = helper_read_file(pa, &la), *cb = helper_read_file(pb, &lb);
			assert_non_null(ca);
			assert_non_null(cb);
			if (la != lb || memcmp(ca, cb, la))
				fail_msg("%s: contents differ after extraction", pa);
			free(ca);
			free(cb);
		} else if (S_ISLNK(sa.st_mode)) {
			char ta[4096] = "", tb[4096] = "";
			assert_true(readlink(pa, ta, sizeof(ta) - 1) > 0);
			assert_true(readlink(pb, tb, sizeof(tb) - 1) > 0);
			assert_string_equal(ta, tb);
		} else if (S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode)) {
			assert_int_equal(major(sa.st_rdev), major(sb.st_rdev));
			assert_int_equal(minor(sa.st_rdev), minor(sb.st_rdev));
		}
		bool skip_time = S_ISDIR(sa.st_mode) && compare_trees(pa, pb, owner_zero);
		/* GNU cpio does not set symlinks' times. */
		if (!S_ISLNK(sa.st_mode) && !skip_time && sa.st_mtime != sb.st_mtime)
			fail_msg("%s: mtime %ld, extracted %ld", pa, (long)sa.st_mtime, (long)sb.st_mtime);
		free(pa);
		free(pb);
	}
	closedir(d);
	d = opendir(b);
	assert_non_null(d);
	while ((de = readdir(d)))
		nb += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	if (na != nb)
		fail_msg("%s has %zu entries, extracted %s %zu", a, na, b, nb);
	return na > 0;
}

static bool need_root_and_cpio(void)
{
	if (geteuid() != 0) {
		print_message("skipped: needs root (device nodes, chown)\n");
		return false;
	}
	if (!helper_have_tool("cpio")) {
		print_message("skipped: no cpio (apt-get install cpio)\n");
		return false;
	}
	return true;
}

static void test_roundtrip(void **state)
{
	static const struct {
		const char *name, *decomp, *tool;
		const unsigned char magic[4];
	} kinds[] = {
		{ "gzip", "gzip -dc", "gzip", { 0x1f, 0x8b, 0x08, 0 } },
		{ "zstd", "zstd -dcq", "zstd", { 0x28, 0xb5, 0x2f, 0xfd } },
		{ "lz4", "lz4 -dcq", "lz4", { 0x02, 0x21, 0x4c, 0x18 } },
		{ "none", "cat", "cat", { '0', '7', '0', '7' } },
	};

	if (!need_root_and_cpio())
		skip();
	char *t = helper_tmpdir("initramfs"), *d = helper_asprintf("%s/d", t);
	make_rich_tree(t, d);

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		char *out = helper_asprintf("%s/out.%s", t, kinds[k].name);
		size_t len;

		if (!helper_have_tool(kinds[k].tool)) {
			print_message("%s: skipped, no %s tool\n", kinds[k].name, kinds[k].tool);
			free(out);
			continue;
		}
		expect_ok((const char *[]){ "-o", out, "--compress", kinds[k].name, d, NULL });
		unsigned char *got = helper_read_file(out, &len);
		assert_non_null(got);
		assert_true(len > 4);
		assert_memory_equal(got, kinds[k].magic, kinds[k].magic[3] ? 4 : 3);
		free(got);

		/* The listing: every entry once, sorted, directories first. */
		int st;
		char *list = helper_shell_out(&st, "%s < '%s' | cpio -it --quiet", kinds[k].decomp, out);
		assert_int_equal(st, 0);
		char *expect_list = NULL;
		size_t elen = 0;
		FILE *m = open_memstream(&expect_list, &elen);
		for (const char *const *n = rich_order; *n; n++)
			fprintf(m, "%s\n", *n);
		fclose(m);
		assert_string_equal(list, expect_list);
		free(list);
		free(expect_list);

		char *x = extract(t, out, kinds[k].decomp, kinds[k].name + 0);
		char *xx = helper_asprintf("%s.x", x);
		assert_int_equal(rename(x, xx), 0);
		compare_count = 0;
		compare_trees(d, xx, true);
		assert_int_equal(compare_count, 25);

		/* The three hard links are one file again. */
		struct stat s1, s2, s3, s4;
		char *p1 = helper_asprintf("%s/hl1", xx), *p2 = helper_asprintf("%s/dir1/hl2", xx);
		char *p3 = helper_asprintf("%s/dir1/nested/hl3", xx);
		char *p4 = helper_asprintf("%s/half-linked", xx);
		assert_int_equal(stat(p1, &s1), 0);
		assert_int_equal(stat(p2, &s2), 0);
		assert_int_equal(stat(p3, &s3), 0);
		assert_int_equal(stat(p4, &s4), 0);
		assert_int_equal(s1.st_ino, s2.st_ino);
		assert_int_equal(s1.st_ino, s3.st_ino);
		assert_int_equal(s1.st_nlink, 3);
		assert_int_equal(s4.st_nlink, 1);
		free(p1);
		free(p2);
		free(p3);
		free(p4);
		free(x);
		helper_tmpdir_remove(xx);
		free(out);
	}

	/* The raw archive: link counts, inodes, data on the last link only. */
	char *out = helper_asprintf("%s/out.none", t);
	struct archive *a = archive_open(out);
	assert_int_equal(a->n, 25);
	for (size_t i = 0; i < a->n; i++) {
		struct stat sst;
		char *sp = helper_asprintf("%s/%s", d, a->e[i].name);
		assert_int_equal(lstat(sp, &sst), 0);
		assert_int_equal(a->e[i].mtime, sst.st_mtime);
		assert_int_equal(a->e[i].mode, sst.st_mode);
		free(sp);
		assert_string_equal(a->e[i].name, rich_order[i]);
		assert_int_equal(a->e[i].uid, 0);
		assert_int_equal(a->e[i].gid, 0);
		assert_int_equal(a->e[i].devmajor, 0);
		for (size_t j = 0; j < i; j++)
			if (a->e[j].ino == a->e[i].ino &&
			    !(strstr(a->e[i].name, "hl") && strstr(a->e[j].name, "hl")))
				fail_msg("'%s' and '%s' share inode %u", a->e[i].name, a->e[j].name,
					 a->e[i].ino);
	}
	const struct entry *h2 = archive_get(a, "dir1/hl2"), *h3 = archive_get(a, "dir1/nested/hl3");
	const struct entry *h1 = archive_get(a, "hl1");
	assert_int_equal(h1->ino, h2->ino);
	assert_int_equal(h1->ino, h3->ino);
	assert_int_equal(h1->nlink, 3);
	assert_int_equal(h2->nlink, 3);
	assert_int_equal(h3->nlink, 3);
	assert_int_equal(h2->filesize, 0);
	assert_int_equal(h3->filesize, 0);
	assert_int_equal(h1->filesize, 7);
	assert_memory_equal(h1->data, "linked\n", 7);
	assert_int_equal(archive_get(a, "half-linked")->nlink, 1);
	assert_int_equal(archive_get(a, "half-linked")->filesize, 5);
	assert_int_equal(archive_get(a, "dir1")->nlink, 3);	/* . and nested */
	assert_int_equal(archive_get(a, "blk")->mode, S_IFBLK | 0660);
	assert_int_equal(archive_get(a, "blk")->rmajor, 7);
	assert_int_equal(archive_get(a, "blk")->rminor, 300);
	assert_int_equal(archive_get(a, "setuid")->mode, S_IFREG | 04755);
	assert_int_equal(archive_get(a, "sticky")->mode, S_IFDIR | 01777);
	assert_int_equal(archive_get(a, "sticky")->mtime, 1400000003);
	archive_check_order(a);
	archive_free(a);
	free(out);

	/* --keep-owner keeps 1234:5678. */
	out = helper_asprintf("%s/owner.cpio", t);
	expect_ok((const char *[]){ "-o", out, "--keep-owner", "--compress", "none", d, NULL });
	char *x = extract(t, out, "cat", "owner");
	char *p = helper_asprintf("%s/plain", x);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	compare_count = 0;
	compare_trees(d, x, false);
	assert_int_equal(compare_count, 25);
	free(p);
	free(x);
	free(out);

	free(d);
	helper_tmpdir_remove(t);
}

/* The same input gives the same bytes; SOURCE_DATE_EPOCH dates generated entries. */
static void test_reproducible(void **state)
{
	static const char *const kinds[] = { "gzip", "zstd", "lz4", "none" };
	char *t = helper_tmpdir("initramfs"), *d = helper_asprintf("%s/d", t), *p;

	xmkdir(d, 0755);
	for (int i = 0; i < 40; i++) {
		p = helper_asprintf("%s/f%02d", d, (i * 17) % 40);	/* created out of order */
		write_str(p, "some text some text\n", 0644);
		free(p);
	}
	for (size_t k = 0; k < 4; k++) {
		char *o1 = helper_asprintf("%s/1.%s", t, kinds[k]);
		char *o2 = helper_asprintf("%s/2.%s", t, kinds[k]);
		size_t l1, l2;
		expect_ok((const char *[]){ "-o", o1, "--compress", kinds[k], d, NULL });
		sleep(k == 0);	/* a second apart at least once */
		expect_ok((const char *[]){ "-o", o2, "--compress", kinds[k], d, NULL });
		unsigned char *b1 = helper_read_file(o1, &l1), *b2 = helper_read_file(o2, &l2);
		assert_int_equal(l1, l2);
		assert_memory_equal(b1, b2, l1);
		free(b1);
		free(b2);
		free(o1);
		free(o2);
	}

	/* Generated entries (a parent made for --add) take SOURCE_DATE_EPOCH. */
	p = helper_asprintf("%s/sde.cpio", t);
	char *add = helper_asprintf("%s/f00:/made/up/f", d);
	setenv("SOURCE_DATE_EPOCH", "1234567890", 1);
	expect_ok((const char *[]){ "-o", p, "--compress", "none", "--add", add, NULL });
	unsetenv("SOURCE_DATE_EPOCH");
	struct archive *a = archive_open(p);
	assert_int_equal(a->n, 3);
	assert_int_equal(archive_get(a, "made")->mtime, 1234567890);
	assert_int_equal(archive_get(a, "made/up")->mtime, 1234567890);
	assert_int_equal(archive_get(a, "made")->mode, S_IFDIR | 0755);
	archive_free(a);
	free(add);
	free(p);
	free(d);
	helper_tmpdir_remove(t);
}

/* --add: files, directories, DEST/, overriding DIR's files, symlinked parents. */
static void test_add(void **state)
{
	char *t = helper_tmpdir("initramfs"), *d = helper_asprintf("%s/d", t), *p;
	char *out = helper_asprintf("%s/out.cpio", t);

	xmkdir(d, 0755);
	put_dir(d, "etc", 0755);
	put_file(d, "etc/hostname", "old\n", 0644);
	p = helper_asprintf("%s/lib", d);	/* merged /usr: lib -> usr/lib */
	assert_int_equal(symlink("usr/lib", p), 0);
	free(p);
	put_file(t, "hostname", "new\n", 0600);
	put_file(t, "tool", "#!/bin/sh\n", 0755);
	put_dir(t, "tree", 0750);
	put_dir(t, "tree/a", 0755);
	put_file(t, "tree/a/b", "b\n", 0644);

	char *a1 = helper_asprintf("%s/hostname:/etc/hostname", t);
	char *a2 = helper_asprintf("%s/tool:/usr/local/bin/", t);
	char *a3 = helper_asprintf("%s/tree:opt/tree", t);
	char *a4 = helper_asprintf("%s/tool:/lib/firmware/tool", t);
	expect_ok((const char *[]){ "-o", out, "--compress", "none", "--add", a1, "--add", a2,
				    "--add", a3, "--add", a4, d, NULL });
	struct archive *a = archive_open(out);
	archive_check_order(a);
	const struct entry *e = archive_get(a, "etc/hostname");
	assert_int_equal(e->filesize, 4);
	assert_memory_equal(e->data, "new\n", 4);
	assert_int_equal(e->mode, S_IFREG | 0600);
	assert_int_equal(archive_get(a, "usr/local/bin/tool")->mode, S_IFREG | 0755);
	assert_int_equal(archive_get(a, "opt/tree")->mode, S_IFDIR | 0750);
	assert_int_equal(archive_get(a, "opt/tree/a")->mode, S_IFDIR | 0755);
	assert_memory_equal(archive_get(a, "opt/tree/a/b")->data, "b\n", 2);
	/* Through the lib symlink, as the guest will see it. */
	assert_int_equal(archive_get(a, "lib")->mode, S_IFLNK | 0777);
	assert_non_null(archive_find(a, "usr/lib/firmware/tool"));
	assert_null(archive_find(a, "lib/firmware"));
	archive_free(a);

	/* Only --add, no DIR; "/" as DEST puts a file at the top. */
	char *a5 = helper_asprintf("%s/hostname:/", t);
	expect_ok((const char *[]){ "-o", out, "--compress", "none", "--add", a3, "--add", a5, NULL });
	a = archive_open(out);
	assert_int_equal(a->n, 5);	/* hostname, opt, opt/tree, opt/tree/a, opt/tree/a/b */
	assert_string_equal(a->e[0].name, "hostname");
	archive_free(a);
	free(a5);

	free(a1);
	free(a2);
	free(a3);
	free(a4);
	free(out);
	free(d);
	helper_tmpdir_remove(t);
}

/* Without --busybox a tree's own /init is packed as it is; OUT inside DIR is not packed. */
static void test_own_init(void **state)
{
	char *t = helper_tmpdir("initramfs"), *d = helper_asprintf("%s/d", t);
	char *p = helper_asprintf("%s/d/init", t), *out = helper_asprintf("%s/d/initrd.cpio", t);

	xmkdir(d, 0755);
	write_str(p, "#!/bin/sh\necho mine\n", 0755);
	expect_ok((const char *[]){ "-o", out, "--compress", "none", d, NULL });
	expect_ok((const char *[]){ "-o", out, "--compress", "none", d, NULL });	/* OUT exists now */
	struct archive *a = archive_open(out);
	assert_int_equal(a->n, 1);
	assert_string_equal(a->e[0].name, "init");
	assert_memory_equal(a->e[0].data, "#!/bin/sh\necho mine\n", 20);
	archive_free(a);
	free(p);
	free(out);
	free(d);
	helper_tmpdir_remove(t);
}

/* initramfs_build() in this process with its log captured; its return value. */
static int build_captured(const struct initramfs_options *opt, struct helper_log *cap)
{
	memset(cap, 0, sizeof(*cap));
	log_set_sink(helper_log_sink, cap);
	int ret = initramfs_build(opt);
	log_set_sink(NULL, NULL);
	return ret;
}

/* A symlink at dir/name to target. */
static void put_symlink(const char *dir, const char *name, const char *target)
{
	char *p = helper_asprintf("%s/%s", dir, name);

	assert_int_equal(symlink(target, p), 0);
	free(p);
}

/* n components "name/name/.../name", then "/" and tail if not NULL (free it). */
static char *repeat_path(const char *head, const char *name, size_t n)
{
	size_t len = strlen(head) + n * (strlen(name) + 1) + 1, at = 0;
	char *s = malloc(len);

	assert_non_null(s);
	at += (size_t)snprintf(s, len, "%s", head);
	for (size_t i = 0; i < n; i++)
		at += (size_t)snprintf(s + at, len - at, "%s%s", at ? "/" : "", name);
	return s;
}

/*
 * Hostile trees: symlinks whose targets go through other symlinks many times
 * (resolution took exponential time: a hang), paths made deeper than the
 * kernel's unpacker takes by symlinks (the tree's walks recursed on them),
 * and a host directory as deep as a path allows.
 */
static void test_hostile_tree(void **state)
{
	char *t = helper_tmpdir("initramfs"), *d = helper_asprintf("%s/d", t), *p;
	char *out = helper_asprintf("%s/out.cpio", t), *f = helper_asprintf("%s/f", t);
	char *add = NULL;
	struct helper_log cap;
	struct archive *a;

	xmkdir(d, 0755);
	write_str(f, "f\n", 0644);
	/* s0 -> ., s(k) -> 8 x s(k-1): s14 is 8^14 links deep, all resolving to "." */
	put_symlink(d, "s0", ".");
	for (int k = 1; k <= 14; k++) {
		char name[8], prev[8];
		snprintf(name, sizeof(name), "s%d", k);
		snprintf(prev, sizeof(prev), "s%d", k - 1);
		p = repeat_path("", prev, 8);
		put_symlink(d, name, p);
		free(p);
	}
	/* A few links through links is fine: t2/y is y at the top (7 links). */
	put_symlink(d, "t0", ".");
	put_symlink(d, "t1", "t0/t0");
	put_symlink(d, "t2", "t1/t1");
	add = helper_asprintf("%s:t2/y", f);
	struct initramfs_add adds[2];
	assert_int_equal(initramfs_parse_add(add, &adds[0]), 0);
	struct initramfs_options opt = { .output = out, .dir = d, .compress = CPIO_COMPRESS_NONE,
					 .adds = adds, .nr_adds = 1 };
	assert_int_equal(build_captured(&opt, &cap), 0);
	assert_int_equal(cap.errors, 0);
	a = archive_open(out);
	assert_memory_equal(archive_get(a, "y")->data, "f\n", 2);
	archive_free(a);
	free(add);

	/* Linux follows 40 links in one lookup; so does the tree, in time. */
	alarm(60);
	add = helper_asprintf("%s:s14/x", f);
	assert_int_equal(initramfs_parse_add(add, &adds[0]), 0);
	assert_int_equal(build_captured(&opt, &cap), -1);
	alarm(0);
	assert_int_equal(cap.errors, 1);
	assert_non_null(strstr(cap.last_error, "cannot add 's14/x' to the archive: 's"));
	assert_non_null(strstr(cap.last_error, "(symlink loop)"));
	free(add);

	/*
	 * l1 -> l2/a/a/.../a, ..., l40 -> a/a/.../a, each 2000 levels: 80000
	 * levels through 40 links, refused at the kernel's PATH_MAX.
	 */
	for (int i = 1; i <= 40; i++) {
		char name[8], next[8];
		snprintf(name, sizeof(name), "l%d", i);
		snprintf(next, sizeof(next), "l%d", i + 1);
		p = repeat_path(i < 40 ? next : "", "a", 2000);
		put_symlink(d, name, p);
		free(p);
	}
	add = helper_asprintf("%s:l1/x", f);
	assert_int_equal(initramfs_parse_add(add, &adds[0]), 0);
	assert_int_equal(build_captured(&opt, &cap), -1);
	assert_int_equal(cap.errors, 1);
	assert_non_null(strstr(cap.last_error, "cannot add 'l1/x' to the archive: its path there is "
					       "too long for the kernel's unpacker"));
	free(add);
	assert_int_equal(helper_shell("rm -r '%s'", d), 0);

	/* A host directory 2000 levels deep packs (one stack frame per level). */
	xmkdir(d, 0755);
	p = repeat_path(d, "d", 2000);
	assert_int_equal(helper_shell("mkdir -p '%s' && echo deep > '%s/f'", p, p), 0);
	free(p);
	opt.nr_adds = 0;
	assert_int_equal(build_captured(&opt, &cap), 0);
	assert_int_equal(cap.errors, 0);
	a = archive_open(out);
	assert_int_equal(a->n, 2001);
	p = repeat_path("", "d", 2000);
	char *deep = helper_asprintf("%s/f", p);
	assert_memory_equal(archive_get(a, deep)->data, "deep\n", 5);
	free(deep);
	free(p);
	archive_free(a);

	free(f);
	free(out);
	free(d);
	helper_tmpdir_remove(t);
}

/* ------------------------------------------------------------------------
 * busybox
 */

static bool have_busybox(void)
{
	if (access(BUSYBOX, X_OK) < 0) {
		print_message("skipped: no %s (apt-get install busybox-static)\n", BUSYBOX);
		return false;
	}
	return true;
}

static void test_busybox(void **state)
{
	if (!have_busybox())
		skip();
	char *t = helper_tmpdir("initramfs"), *d = helper_asprintf("%s/d", t), *p;
	char *out = helper_asprintf("%s/out.cpio", t);
	struct helper_result r;

	/* The tree's /init loses to the generated one, its bin/sh wins over the link. */
	xmkdir(d, 0755);
	put_file(d, "init", "#!/bin/sh\necho mine\n", 0755);
	put_dir(d, "bin", 0755);
	put_file(d, "bin/sh", "user sh", 0755);
	helper_run_bootvm(&r, "initramfs",
			  (const char *[]){ "-o", out, "--compress", "none", "--busybox", BUSYBOX,
					    "--init-run", "echo 'it'\"'\"'s'; exit 7", d, NULL }, 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.err_lines, 1);
	assert_non_null(strstr(r.err, "bootvm: warning: "));
	assert_non_null(strstr(r.err, "/init"));
	helper_result_free(&r);

	struct archive *a = archive_open(out);
	archive_check_order(a);

	/* /bin/busybox is the host's, byte for byte. */
	size_t blen;
	unsigned char *bb = helper_read_file(BUSYBOX, &blen);
	const struct entry *e = archive_get(a, "bin/busybox");
	assert_int_equal(e->filesize, blen);
	assert_memory_equal(e->data, bb, blen);
	assert_int_equal(e->mode & 0111, 0111);
	free(bb);

	/* One link per applet, where busybox --install would put it. */
	int st;
	char *list = helper_shell_out(&st, "%s --list-full", BUSYBOX);
	assert_int_equal(st, 0);
	size_t links = 0;
	for (char *save = NULL, *l = strtok_r(list, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strchr(l, '/') || !strcmp(l, "bin/busybox"))
			continue;	/* linuxrc; busybox itself */
		e = archive_get(a, l);
		if (!strcmp(l, "bin/sh")) {
			assert_int_equal(e->mode, S_IFREG | 0755);
			assert_memory_equal(e->data, "user sh", 7);
			continue;
		}
		if (e->mode != (S_IFLNK | 0777) || e->filesize != 12 || memcmp(e->data, "/bin/busybox", 12))
			fail_msg("'%s' is not a link to /bin/busybox", l);
		links++;
	}
	free(list);
	assert_true(links > 200);
	assert_non_null(archive_find(a, "sbin/insmod"));
	assert_non_null(archive_find(a, "bin/cttyhack"));

	e = archive_get(a, "dev/console");
	assert_int_equal(e->mode, S_IFCHR | 0600);
	assert_int_equal(e->rmajor, 5);
	assert_int_equal(e->rminor, 1);
	assert_int_equal(archive_get(a, "proc")->mode, S_IFDIR | 0755);
	assert_int_equal(archive_get(a, "sys")->mode, S_IFDIR | 0755);
	e = archive_get(a, INITRAMFS_FSTAB_PATH);
	assert_int_equal(e->filesize, strlen(initramfs_fstab));
	assert_memory_equal(e->data, initramfs_fstab, e->filesize);

	e = archive_get(a, "init");
	assert_int_equal(e->mode, S_IFREG | 0755);
	char *init = strndup((const char *)e->data, e->filesize);
	char *expect = initramfs_init_script("echo 'it'\"'\"'s'; exit 7", NULL, 0);
	assert_string_equal(init, expect);
	assert_non_null(strstr(init, "mount -a -T /etc/bootvm.fstab"));
	assert_non_null(strstr(init, "\nsh -c 'echo '\\''it'\\''\"'\\''\"'\\''s'\\''; exit 7'\n"));
	assert_non_null(strstr(init, "echo \"bootvm-init: exit status $?\"\npoweroff -f\n"));
	assert_null(strstr(init, "insmod"));
	free(expect);
	free(init);
	archive_free(a);

	/* Without --init-run: a shell on the console, then power off. */
	expect_ok((const char *[]){ "-o", out, "--busybox", BUSYBOX, NULL });
	char *x = extract(t, out, "gzip -dc", "shell");
	size_t ilen;
	p = helper_asprintf("%s/init", x);
	init = (char *)helper_read_file(p, &ilen);
	assert_non_null(init);
	assert_non_null(strstr(init, "\nsetsid cttyhack sh\npoweroff -f\n"));
	assert_null(strstr(init, "sh -c"));
	free(init);
	free(p);
	free(x);

	free(out);
	free(d);
	helper_tmpdir_remove(t);
}

/*
 * Run the generated /init for real: chrooted into the extracted archive, as
 * PID 1 of new PID and mount namespaces, so its mounts stay there and its
 * poweroff -f only ends that namespace (never the host).
 */
static void test_busybox_init_runs(void **state)
{
	if (!have_busybox() || !need_root_and_cpio())
		skip();
	if (helper_shell("unshare --pid --fork --mount true >/dev/null 2>&1")) {
		print_message("skipped: cannot unshare PID and mount namespaces here\n");
		skip();
	}
	char *t = helper_tmpdir("initramfs"), *out = helper_asprintf("%s/out.cpio", t);
	int st;

	expect_ok((const char *[]){ "-o", out, "--busybox", BUSYBOX, "--init-run",
				    "echo \"mounts:$(grep -cE '^(proc /proc proc|sysfs /sys sysfs|"
				    "devtmpfs /dev devtmpfs) ' /proc/mounts) it's\"; exit 7",
				    NULL });
	char *x = extract(t, out, "gzip -dc", "root");
	char *o = helper_shell_out(&st, "cd / && timeout 60 unshare --pid --fork --mount "
				   "chroot '%s' /init 2>&1 </dev/null", x);
	const char *at = strstr(o, "mounts:3 it's\n" INITRAMFS_STATUS_PREFIX "7\n");
	if (!at || (at != o && at[-1] != '\n'))
		fail_msg("/init printed: %s", o);
	free(o);
	free(x);
	free(out);
	helper_tmpdir_remove(t);
}

/* ------------------------------------------------------------------------
 * Modules
 */

static const char fake_elf[] = "\x7f" "ELF\x02\x01\x01 fake module";

/* A fake modules tree: a cycle, '-' names, a compressed module, bad ones. */
static char *make_fake_modules(const char *t)
{
	char *m = helper_asprintf("%s/lib/modules/9.9.9-fake", t), *p;

	assert_int_equal(helper_shell("mkdir -p '%s/kernel/sub'", m), 0);
	static const char *const plain[] = { "a.ko", "b.ko", "snd-foo.ko", "sub/d.ko", "e.ko", NULL };
	for (const char *const *n = plain; *n; n++) {
		p = helper_asprintf("%s/kernel/%s", m, *n);
		helper_write_file(p, fake_elf, sizeof(fake_elf) - 1, 0644);
		free(p);
	}
	p = helper_asprintf("%s/kernel/c.ko", m);
	helper_write_file(p, fake_elf, sizeof(fake_elf) - 1, 0644);
	assert_int_equal(helper_shell("gzip -n '%s'", p), 0);
	free(p);
	put_file(m, "kernel/notelf.ko", "not an ELF file at all", 0644);
	p = helper_asprintf("%s/kernel/bad.ko.xz", m);
	helper_write_file(p, "\xfd" "7zXZ\0garbage garbage garbage", 28, 0644);
	free(p);
	p = helper_asprintf("%s/modules.dep", m);
	write_str(p,
		  "kernel/a.ko: kernel/b.ko\n"
		  "kernel/b.ko: kernel/a.ko\n"
		  "kernel/c.ko.gz: kernel/sub/d.ko kernel/a.ko kernel/b.ko\n"
		  "kernel/sub/d.ko:\n"
		  "kernel/snd-foo.ko:\n"
		  "kernel/e.ko: kernel/c.ko.gz kernel/sub/d.ko kernel/a.ko kernel/b.ko\n"
		  "kernel/notelf.ko:\n"
		  "kernel/bad.ko.xz:\n"
		  "kernel/orphan.ko: kernel/missing.ko\n", 0644);
	free(p);
	put_file(m, "modules.builtin", "kernel/drivers/virtio/virtio_mmio.ko\n", 0644);
	return m;
}

static size_t index_of(const struct initramfs_modules *m, const char *path)
{
	for (size_t i = 0; i < m->count; i++)
		if (!strcmp(m->paths[i], path))
			return i;
	fail_msg("'%s' not resolved", path);
	return 0;
}

static void test_modules_resolve_fake(void **state)
{
	char *t = helper_tmpdir("initramfs"), *m = make_fake_modules(t);
	struct initramfs_modules r;
	struct helper_log cap = { 0 };

	log_set_sink(helper_log_sink, &cap);

	/* A cycle ends; each module once, dependencies first. */
	assert_int_equal(initramfs_resolve_modules(m, (const char *[]){ "e", "c", "a" }, 3, &r), 0);
	assert_int_equal(r.count, 5);
	assert_string_equal(r.version, "9.9.9-fake");
	assert_string_equal(r.paths[4], "kernel/e.ko");
	assert_true(index_of(&r, "kernel/c.ko.gz") < 4);
	assert_true(index_of(&r, "kernel/sub/d.ko") < index_of(&r, "kernel/c.ko.gz"));
	assert_true(index_of(&r, "kernel/a.ko") < index_of(&r, "kernel/c.ko.gz"));
	assert_true(index_of(&r, "kernel/b.ko") < index_of(&r, "kernel/c.ko.gz"));
	/* The archive's modules.dep lines name the plain .ko. */
	assert_string_equal(r.deps_lines[4],
			    "kernel/e.ko: kernel/c.ko kernel/sub/d.ko kernel/a.ko kernel/b.ko");
	initramfs_modules_free(&r);

	/* '-' and '_' alike, a .ko suffix ignored. */
	for (const char *const *n = (const char *[]){ "snd_foo", "snd-foo", "snd-foo.ko", NULL }; *n; n++) {
		assert_int_equal(initramfs_resolve_modules(m, n, 1, &r), 0);
		assert_int_equal(r.count, 1);
		assert_string_equal(r.paths[0], "kernel/snd-foo.ko");
		initramfs_modules_free(&r);
	}
	assert_int_equal(cap.errors + cap.warnings, 0);

	/* Built in: a warning, nothing to copy. */
	assert_int_equal(initramfs_resolve_modules(m, (const char *[]){ "virtio-mmio" }, 1, &r), 0);
	assert_int_equal(r.count, 0);
	assert_int_equal(cap.warnings, 1);
	assert_non_null(strstr(cap.last_warning, "built into kernel 9.9.9-fake"));
	initramfs_modules_free(&r);

	/* Errors: one line each. */
	cap.errors = 0;
	assert_int_equal(initramfs_resolve_modules(m, (const char *[]){ "a", "nosuch" }, 2, &r), -1);
	assert_int_equal(cap.errors, 1);
	assert_non_null(strstr(cap.last_error, "module 'nosuch' not found in "));
	assert_int_equal(r.count, 0);
	assert_null(r.paths);
	cap.errors = 0;
	assert_int_equal(initramfs_resolve_modules(m, (const char *[]){ "orphan" }, 1, &r), -1);
	assert_int_equal(cap.errors, 1);
	assert_non_null(strstr(cap.last_error, "'kernel/orphan.ko' needs 'kernel/missing.ko'"));

	/* Reading: decompressed, checked for ELF. */
	unsigned char *data;
	size_t size;
	char *p = helper_asprintf("%s/kernel/c.ko.gz", m);
	assert_int_equal(initramfs_read_module(p, &data, &size), 0);
	assert_int_equal(size, sizeof(fake_elf) - 1);
	assert_memory_equal(data, fake_elf, size);
	free(data);
	free(p);
	cap.errors = 0;
	p = helper_asprintf("%s/kernel/bad.ko.xz", m);
	assert_int_equal(initramfs_read_module(p, &data, &size), -1);
	assert_int_equal(cap.errors, 1);
	assert_non_null(strstr(cap.last_error, "cannot decompress module"));
	free(p);

	log_set_sink(NULL, NULL);
	free(m);
	helper_tmpdir_remove(t);
}

/* Resolving names in a modules directory whose modules.dep is text; one error or 0. */
static int resolve_dep(const char *m, const char *dep, const char *name,
		       struct initramfs_modules *r, struct helper_log *cap)
{
	char *p = helper_asprintf("%s/modules.dep", m);

	unlink(p);
	write_str(p, dep, 0644);
	free(p);
	memset(cap, 0, sizeof(*cap));
	log_set_sink(helper_log_sink, cap);
	int ret = initramfs_resolve_modules(m, (const char *[]){ name }, 1, r);
	log_set_sink(NULL, NULL);
	if (ret < 0 && cap->errors != 1)
		fail_msg("%d errors, last: %s", cap->errors, cap->last_error);
	return ret;
}

/*
 * Hostile modules directories: ".." in modules.dep (the file was read from
 * outside the directory and put outside lib/modules/VERSION in the archive,
 * e.g. at /bin/true), a dependency chain as long as the file (the resolver
 * recursed on it, and overflowed the stack), FIFOs (opening one waited for a
 * writer for ever).
 */
static void test_modules_hostile(void **state)
{
	char *t = helper_tmpdir("initramfs"), *m = make_fake_modules(t), *p, *dep;
	struct initramfs_modules r;
	struct helper_log cap;

	/* ".." anywhere in a path, relative or absolute, as module or dependency. */
	char *real = realpath(m, NULL);
	assert_non_null(real);
	const char *dotdot[] = {
		"kernel/../../../../../../../../../bin/true:\n",
		"../true:\n",
		"kernel/sub/../../../../true.ko:\n",
		"kernel/..:\n",
		NULL,
	};
	for (const char *const *l = dotdot; *l; l++) {
		const char *name = strstr(*l, "true") ? "true" : "..";
		assert_int_equal(resolve_dep(m, *l, name, &r, &cap), -1);
		if (!strstr(cap.last_error, "modules.dep:1: '") || !strstr(cap.last_error, "' is outside "))
			fail_msg("%s: %s", *l, cap.last_error);
	}
	dep = helper_asprintf("%s/../../../../../../../../bin/true:\n", real);
	assert_int_equal(resolve_dep(m, dep, "true", &r, &cap), -1);
	assert_non_null(strstr(cap.last_error, "' is outside "));
	free(dep);
	assert_int_equal(resolve_dep(m, "kernel/a.ko: kernel/../../../../../../bin/true\n", "a", &r,
				     &cap), -1);
	assert_non_null(strstr(cap.last_error, "modules.dep:1: 'kernel/../../../../../../bin/true' "
					       "is outside "));
	/* Names that only look like "..". */
	assert_int_equal(resolve_dep(m, "kernel/..a/b...ko: kernel/.../a.ko\nkernel/.../a.ko:\n",
				     "b..", &r, &cap), 0);
	assert_int_equal(r.count, 2);
	assert_string_equal(r.paths[0], "kernel/.../a.ko");
	assert_string_equal(r.paths[1], "kernel/..a/b...ko");
	initramfs_modules_free(&r);
	dep = helper_asprintf("%s/kernel/a.ko:\n", real);
	assert_int_equal(resolve_dep(m, dep, "a", &r, &cap), 0);
	assert_string_equal(r.paths[0], "kernel/a.ko");
	initramfs_modules_free(&r);
	free(dep);

	/* A chain of 300000 modules, each needing the next: all of them, the last first. */
	enum { CHAIN = 300000 };
	size_t cap_len = (size_t)CHAIN * 48, len = 0;
	char *chain = malloc(cap_len);
	assert_non_null(chain);
	for (unsigned int i = 0; i < CHAIN; i++) {
		if (i + 1 < CHAIN)
			len += (size_t)snprintf(chain + len, cap_len - len,
						"kernel/m%u.ko: kernel/m%u.ko\n", i, i + 1);
		else
			len += (size_t)snprintf(chain + len, cap_len - len, "kernel/m%u.ko:\n", i);
	}
	assert_int_equal(resolve_dep(m, chain, "m0", &r, &cap), 0);
	free(chain);
	assert_int_equal(r.count, CHAIN);
	assert_string_equal(r.paths[0], "kernel/m299999.ko");
	assert_string_equal(r.paths[CHAIN - 1], "kernel/m0.ko");
	assert_string_equal(r.deps_lines[CHAIN - 1], "kernel/m0.ko: kernel/m1.ko");
	initramfs_modules_free(&r);

	/* FIFOs: refused or passed over, at once. */
	alarm(30);
	p = helper_asprintf("%s/modules.dep", m);
	unlink(p);
	assert_int_equal(mkfifo(p, 0644), 0);
	memset(&cap, 0, sizeof(cap));
	log_set_sink(helper_log_sink, &cap);
	assert_int_equal(initramfs_resolve_modules(m, (const char *[]){ "a" }, 1, &r), -1);
	assert_int_equal(cap.errors, 1);
	assert_non_null(strstr(cap.last_error, "modules.dep': not a regular file"));
	unlink(p);
	write_str(p, "kernel/a.ko:\nkernel/fifo.ko:\n", 0644);
	free(p);
	p = helper_asprintf("%s/modules.builtin", m);
	unlink(p);
	assert_int_equal(mkfifo(p, 0644), 0);
	free(p);
	memset(&cap, 0, sizeof(cap));
	assert_int_equal(initramfs_resolve_modules(m, (const char *[]){ "nosuch" }, 1, &r), -1);
	assert_int_equal(cap.errors, 1);
	assert_non_null(strstr(cap.last_error, "module 'nosuch' not found in "));
	p = helper_asprintf("%s/kernel/fifo.ko", m);
	assert_int_equal(mkfifo(p, 0644), 0);
	unsigned char *data;
	size_t size;
	memset(&cap, 0, sizeof(cap));
	assert_int_equal(initramfs_read_module(p, &data, &size), -1);
	assert_int_equal(cap.errors, 1);
	assert_non_null(strstr(cap.last_error, "fifo.ko' is not a regular file"));
	free(p);
	log_set_sink(NULL, NULL);
	alarm(0);

	free(real);
	free(m);
	helper_tmpdir_remove(t);
}

/* Modules through the command line: copied decompressed, /init insmods them in order. */
static void test_modules_cli_fake(void **state)
{
	if (!have_busybox())
		skip();
	char *t = helper_tmpdir("initramfs"), *m = make_fake_modules(t);
	char *out = helper_asprintf("%s/out/o.cpio", t);
	char *outdir = helper_asprintf("%s/out", t);

	xmkdir(outdir, 0755);
	expect_ok((const char *[]){ "-o", out, "--compress", "none", "--busybox", BUSYBOX,
				    "--modules-from", m, "--module", "e", "--module", "snd_foo", NULL });
	struct archive *a = archive_open(out);
	archive_check_order(a);
	const struct entry *e = archive_get(a, "lib/modules/9.9.9-fake/kernel/c.ko");
	assert_int_equal(e->filesize, sizeof(fake_elf) - 1);
	assert_memory_equal(e->data, fake_elf, e->filesize);
	assert_int_equal(e->mode, S_IFREG | 0644);
	assert_null(archive_find(a, "lib/modules/9.9.9-fake/kernel/c.ko.gz"));
	assert_null(archive_find(a, "lib/modules/9.9.9-fake/kernel/notelf.ko"));
	e = archive_get(a, "lib/modules/9.9.9-fake/modules.dep");
	char *dep = strndup((const char *)e->data, e->filesize);
	assert_non_null(strstr(dep, "kernel/e.ko: kernel/c.ko kernel/sub/d.ko kernel/a.ko kernel/b.ko\n"));
	assert_non_null(strstr(dep, "kernel/snd-foo.ko:\n"));
	free(dep);
	e = archive_get(a, "init");
	char *init = strndup((const char *)e->data, e->filesize);
	const char *loop = strstr(init, "for m in \\\n");
	assert_non_null(loop);
	/* The same order as the resolver's. */
	struct initramfs_modules r;
	assert_int_equal(initramfs_resolve_modules(m, (const char *[]){ "e", "snd_foo" }, 2, &r), 0);
	assert_int_equal(r.count, 6);
	const char *pos = loop;
	for (size_t i = 0; i < r.count; i++) {
		size_t plain = strlen(r.paths[i]) - (strstr(r.paths[i], ".ko.gz") ? 3 : 0);
		char *want = helper_asprintf("\t'/lib/modules/9.9.9-fake/%.*s'", (int)plain, r.paths[i]);
		const char *at = strstr(pos, want);
		if (!at)
			fail_msg("/init does not insmod %s in order:\n%s", want, init);
		pos = at + 1;
		free(want);
	}
	assert_non_null(strstr(init, "\tinsmod \"$m\" || echo \"bootvm-init: insmod $m failed\"\n"));
	initramfs_modules_free(&r);
	free(init);
	archive_free(a);
	unlink(out);

	/* Bad modules: one error, nothing written. */
	expect_fail(1, "module 'nosuch' not found in ", outdir,
		    (const char *[]){ "-o", out, "--modules-from", m, "--module", "nosuch", NULL });
	expect_fail(1, "is not an ELF file", outdir,
		    (const char *[]){ "-o", out, "--modules-from", m, "--module", "notelf", NULL });
	expect_fail(1, "cannot decompress module", outdir,
		    (const char *[]){ "-o", out, "--modules-from", m, "--module", "bad", NULL });
	char *nodep = helper_asprintf("%s/nodep", t), *baddep = helper_asprintf("%s/baddep", t);
	xmkdir(nodep, 0755);
	xmkdir(baddep, 0755);
	expect_fail(1, "modules.dep': No such file", outdir,
		    (const char *[]){ "-o", out, "--modules-from", nodep, "--module", "a", NULL });
	char *p = helper_asprintf("%s/modules.dep", baddep);
	write_str(p, "kernel/a.ko:\n\nthis line has no colon\n", 0644);
	expect_fail(1, "modules.dep:3: malformed line", outdir,
		    (const char *[]){ "-o", out, "--modules-from", baddep, "--module", "a", NULL });
	free(p);
	expect_fail(1, "modules directory", outdir,
		    (const char *[]){ "-o", out, "--modules-from", "/nonexistent/lib/modules/1",
				      "--module", "a", NULL });
	free(nodep);
	free(baddep);
	free(outdir);
	free(out);
	free(m);
	helper_tmpdir_remove(t);
}

/* The cloud kernel's modules directory, fetched once by the script; NULL to skip. */
static char *cloud_modules(void)
{
	const char *src = getenv("SOURCE_ROOT");
	int st;

	if (!src) {
		print_message("skipped: no SOURCE_ROOT\n");
		return NULL;
	}
	char *o = helper_shell_out(&st, "r=$(sh '%s/scripts/fetch-cloud-kernel.sh' 2>&1) || "
				   "{ echo \"$r\"; exit 1; }; "
				 "for d in \"$r\"/lib/modules/*/; do echo \"${d%%/}\"; break; done",
			    src);
	o[strcspn(o, "\n")] = 0;
	if (st) {
		print_message("skipped: no Debian cloud kernel modules: %s\n", o);
		free(o);
		return NULL;
	}
	return o;
}

/* Direct dependencies of module file path, by modinfo, else modules.dep. */
static char *module_depends(const char *moddir, const char *rel)
{
	int st;
	char *o = helper_shell_out(&st, "PATH=$PATH:/usr/sbin:/sbin; "
				   "modinfo -F depends '%s/%s' 2>/dev/null", moddir, rel);

	if (st) {
		/* No kmod: the names from modules.dep's line (awk, not bootvm's parser). */
		free(o);
		o = helper_shell_out(&st, "awk -F: '$1 == \"%s\" { print $2 }' '%s/modules.dep' | "
					  "tr ' ' '\\n' | sed -n 's|.*/||; s|\\.ko.*||p' | paste -sd, -",
			      rel, moddir);
		assert_int_equal(st, 0);
	}
	o[strcspn(o, "\n")] = 0;
	for (char *p = o; *p; p++)
		if (*p == '-')
			*p = '_';
	return o;
}

static char *basename_noext(const char *path)
{
	const char *b = strrchr(path, '/');
	char *n = strdup(b ? b + 1 : path);

	n[strcspn(n, ".")] = 0;
	for (char *p = n; *p; p++)
		if (*p == '-')
			*p = '_';
	return n;
}

static void test_modules_real(void **state)
{
	char *moddir = cloud_modules();
	if (!moddir)
		skip();
	struct initramfs_modules r;
	const char *slash = strrchr(moddir, '/');

	assert_int_equal(initramfs_resolve_modules(moddir, (const char *[]){ "virtio_net", "virtio-blk" },
						   2, &r), 0);
	assert_string_equal(r.version, slash + 1);
	/* Each module's dependencies (per modinfo) come before it, each module once. */
	for (size_t i = 0; i < r.count; i++) {
		char *name = basename_noext(r.paths[i]), *deps = module_depends(moddir, r.paths[i]);
		for (size_t j = 0; j < r.count; j++)
			if (j != i)
				assert_string_not_equal(r.paths[i], r.paths[j]);
		for (char *save = NULL, *d = strtok_r(deps, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
			bool before = false;
			for (size_t j = 0; j < i && !before; j++) {
				char *n = basename_noext(r.paths[j]);
				before = !strcmp(n, d);
				free(n);
			}
			if (!before)
				fail_msg("%s needs %s, which is not loaded before it", name, d);
		}
		free(name);
		free(deps);
	}
	/* Exactly the closure: virtio_net pulls in net_failover and failover. */
	const char *const want[] = { "virtio_net", "net_failover", "failover", "virtio_blk", NULL };
	for (const char *const *w = want; *w; w++) {
		bool found = false;
		for (size_t i = 0; i < r.count && !found; i++) {
			char *n = basename_noext(r.paths[i]);
			found = !strcmp(n, *w);
			free(n);
		}
		if (!found)
			fail_msg("%s not resolved", *w);
	}
	size_t closure = 0;
	for (size_t i = 0; i < r.count; i++) {
		char *deps = module_depends(moddir, r.paths[i]);
		closure += strlen(deps) > 0;
		free(deps);
	}
	assert_true(closure >= 3);	/* virtio_net, net_failover, virtio_blk have deps */
	char *last = basename_noext(r.paths[r.count - 1]);
	assert_string_equal(last, "virtio_blk");
	free(last);
	size_t nf = 0, f = 0, vn = 0;
	for (size_t i = 0; i < r.count; i++) {
		char *n = basename_noext(r.paths[i]);
		if (!strcmp(n, "net_failover"))
			nf = i;
		if (!strcmp(n, "failover"))
			f = i;
		if (!strcmp(n, "virtio_net"))
			vn = i;
		free(n);
	}
	assert_true(f < nf && nf < vn);
	initramfs_modules_free(&r);

	struct helper_log cap = { 0 };
	log_set_sink(helper_log_sink, &cap);
	assert_int_equal(initramfs_resolve_modules(moddir, (const char *[]){ "virtio_nett" }, 1, &r), -1);
	log_set_sink(NULL, NULL);
	assert_int_equal(cap.errors, 1);
	assert_non_null(strstr(cap.last_error, "module 'virtio_nett' not found in "));
	free(moddir);
}

/*
 * The real modules, compressed three ways in a copy of the tree with their
 * real modules.dep lines renamed: the archive holds the original .ko bytes.
 */
static void test_modules_real_compressed(void **state)
{
	static const struct {
		const char *name, *ext, *cmd;
	} mods[] = {
		{ "virtio_net", ".xz", "xz --check=crc32 -c" },
		{ "net_failover", ".zst", "zstd -q -c" },
		{ "failover", ".gz", "gzip -n -c" },
		{ "virtio", "", "cat" },
		{ "virtio_ring", ".xz", "xz --check=crc32 -c" },
		{ "virtio_blk", ".zst", "zstd -q -c" },
	};
	char *moddir = cloud_modules();
	if (!moddir)
		skip();
	if (!helper_have_tool("xz") || !helper_have_tool("zstd") || !helper_have_tool("gzip") ||
	    !have_busybox())
		skip();
	char *t = helper_tmpdir("initramfs"), *m = helper_asprintf("%s/6.1.0-test", t);
	char *out = helper_asprintf("%s/o.cpio", t);
	char *rel[6];
	int st;

	xmkdir(m, 0755);
	/* New modules.dep: the real lines for these six, with the new names. */
	char *sed = helper_asprintf("s/@@/@@/");
	for (size_t i = 0; i < 6; i++) {
		char *path = helper_shell_out(&st, "sed -n 's|^\\([^:]*/%s\\.ko\\):.*|\\1|p' "
					      "'%s/modules.dep'", mods[i].name, moddir);
		assert_int_equal(st, 0);
		path[strcspn(path, "\n")] = 0;
		assert_true(*path);
		rel[i] = path;
		assert_int_equal(helper_shell("mkdir -p \"$(dirname '%s/%s')\" && %s '%s/%s' > '%s/%s%s'",
					      m, path, mods[i].cmd, moddir, path, m, path, mods[i].ext), 0);
		char *s2 = helper_asprintf("%s; s#%s([ :]|$)#%s%s\\1#g", sed, path, path, mods[i].ext);
		free(sed);
		sed = s2;
	}
	assert_int_equal(helper_shell("grep -E '^[^:]*/(virtio_net|net_failover|failover|virtio|"
				      "virtio_ring|virtio_blk)\\.ko:' '%s/modules.dep' | sed -E '%s' > "
				      "'%s/modules.dep'", moddir, sed, m), 0);
	free(sed);

	expect_ok((const char *[]){ "-o", out, "--compress", "none", "--busybox", BUSYBOX,
				    "--init-run", "true", "--modules-from", m,
				    "--module", "virtio-net", "--module", "virtio_blk", NULL });
	struct archive *a = archive_open(out);
	for (size_t i = 0; i < 6; i++) {
		char *name = helper_asprintf("lib/modules/6.1.0-test/%s", rel[i]);
		char *orig = helper_asprintf("%s/%s", moddir, rel[i]);
		size_t len;
		unsigned char *want = helper_read_file(orig, &len);
		const struct entry *e = archive_get(a, name);
		assert_memory_equal(e->data, "\x7f" "ELF", 4);
		assert_int_equal(e->filesize, len);
		assert_memory_equal(e->data, want, len);
		free(want);
		free(orig);
		free(name);
	}
	/* The archive's modules.dep has the package's own lines back. */
	const struct entry *e = archive_get(a, "lib/modules/6.1.0-test/modules.dep");
	char *dep = strndup((const char *)e->data, e->filesize);
	char *orig_line = helper_shell_out(&st, "grep '^%s:' '%s/modules.dep'", rel[0], moddir);
	assert_non_null(strstr(dep, orig_line));
	free(orig_line);
	free(dep);
	/* /init loads failover, then net_failover, then virtio_net. */
	e = archive_get(a, "init");
	char *init = strndup((const char *)e->data, e->filesize);
	char *pf = strstr(init, "/failover.ko'"), *pnf = strstr(init, "/net_failover.ko'");
	char *pvn = strstr(init, "/virtio_net.ko'"), *pv = strstr(init, "/virtio.ko'");
	assert_non_null(pf);
	assert_non_null(pnf);
	assert_non_null(pvn);
	assert_non_null(pv);
	assert_true(pf < pnf && pnf < pvn && pv < pvn);
	free(init);
	archive_free(a);
	for (size_t i = 0; i < 6; i++)
		free(rel[i]);
	free(out);
	free(m);
	helper_tmpdir_remove(t);
	free(moddir);
}

/* ------------------------------------------------------------------------
 * The command line
 */

static void test_cli_errors(void **state)
{
	char *t = helper_tmpdir("initramfs"), *d = helper_asprintf("%s/d", t);
	char *o = helper_asprintf("%s/out", t), *out = helper_asprintf("%s/out/x.cpio", t), *p;

	xmkdir(d, 0755);
	xmkdir(o, 0755);
	put_file(d, "f", "f\n", 0644);

	/* Usage errors: status 2. */
	expect_fail(2, "--output is required", o, (const char *[]){ d, NULL });
	expect_fail(2, "--compress 'bzip2': expected gzip, zstd, lz4 or none", o,
		    (const char *[]){ "-o", out, "--compress", "bzip2", d, NULL });
	expect_fail(2, "--add 'nocolon': expected SRC:DEST", o,
		    (const char *[]){ "-o", out, "--add", "nocolon", d, NULL });
	expect_fail(2, "--add ':/x': expected SRC:DEST", o,
		    (const char *[]){ "-o", out, "--add", ":/x", d, NULL });
	expect_fail(2, "--init-run needs --busybox", o,
		    (const char *[]){ "-o", out, "--init-run", "true", d, NULL });
	expect_fail(2, "--module needs --modules-from", o,
		    (const char *[]){ "-o", out, "--module", "x", d, NULL });
	expect_fail(2, "--modules-from needs at least one --module", o,
		    (const char *[]){ "-o", out, "--modules-from", d, d, NULL });
	expect_fail(2, "nothing to pack", o, (const char *[]){ "-o", out, NULL });
	expect_fail(2, "unknown option '--frobnicate'", o,
		    (const char *[]){ "-o", out, "--frobnicate", d, NULL });
	expect_fail(2, "option '--output' needs a value", o, (const char *[]){ d, "--output", NULL });
	expect_fail(2, "unexpected argument 'extra'", o, (const char *[]){ "-o", out, d, "extra", NULL });

	/* Bad input: status 1, named. */
	expect_fail(1, "directory '/nonexistent/dir': No such file", o,
		    (const char *[]){ "-o", out, "/nonexistent/dir", NULL });
	expect_fail(1, "is not a directory", o, (const char *[]){ "-o", out, "/etc/passwd", NULL });
	expect_fail(1, "busybox '/nonexistent/busybox': No such file", o,
		    (const char *[]){ "-o", out, "--busybox", "/nonexistent/busybox", NULL });
	p = helper_asprintf("%s/bb-noexec", t);
	write_str(p, "\x7f" "ELF", 0644);
	expect_fail(1, "is not executable", o, (const char *[]){ "-o", out, "--busybox", p, NULL });
	free(p);
	p = helper_asprintf("%s/bb-script", t);
	write_str(p, "#!/bin/sh\necho hi\n", 0755);
	expect_fail(1, "is not a 64-bit ELF executable", o, (const char *[]){ "-o", out, "--busybox", p, NULL });
	free(p);
	/* A dynamically linked program (any on the host will do). */
	expect_fail(1, "is dynamically linked", o, (const char *[]){ "-o", out, "--busybox", "/bin/sh", NULL });
	p = helper_asprintf("%s/nosuch:/x", t);
	expect_fail(1, "--add '", o, (const char *[]){ "-o", out, "--add", p, d, NULL });
	free(p);
	p = helper_asprintf("%s/f:/../x", d);
	expect_fail(1, "'..' is not allowed in DEST", o, (const char *[]){ "-o", out, "--add", p, NULL });
	free(p);
	p = helper_asprintf("%s/f:.", d);
	expect_fail(1, "DEST must name a file", o, (const char *[]){ "-o", out, "--add", p, NULL });
	free(p);

	/* The output: a missing directory, a directory, an existing OUT left alone. */
	expect_fail(1, "cannot write '/nonexistent/x.cpio': No such file", NULL,
		    (const char *[]){ "-o", "/nonexistent/x.cpio", d, NULL });
	expect_fail(1, "is a directory", o, (const char *[]){ "-o", o, d, NULL });
	write_str(out, "old contents", 0644);
	expect_fail_as(0, 1, "directory '/nonexistent/dir'", o, (const char *[]){ "x.cpio", NULL },
		       (const char *[]){ "-o", out, "/nonexistent/dir", NULL });
	size_t len;
	unsigned char *old = helper_read_file(out, &len);
	assert_int_equal(len, 12);
	assert_memory_equal(old, "old contents", 12);
	free(old);
	unlink(out);

	/* As an unprivileged user: unreadable files, directories, output directory. */
	if (geteuid() == 0) {
		struct helper_result r;
		assert_int_equal(chmod(o, 0777), 0);
		helper_run_bootvm(&r, "initramfs", (const char *[]){ "--help", NULL }, HELPER_AS_NOBODY);
		int st = r.status;
		helper_result_free(&r);
		if (st != 0) {
			print_message("unprivileged checks skipped: nobody cannot run $BOOTVM\n");
		} else {
			p = helper_asprintf("%s/secret", d);
			write_str(p, "secret", 0600);
			char *want = helper_asprintf("cannot read '%s': Permission denied", p);
			expect_fail_as(HELPER_AS_NOBODY, 1, want, o, NULL,
				       (const char *[]){ "-o", out, d, NULL });
			free(want);
			unlink(p);
			free(p);
			p = helper_asprintf("%s/private", d);
			xmkdir(p, 0700);
			want = helper_asprintf("cannot read directory '%s': Permission denied", p);
			expect_fail_as(HELPER_AS_NOBODY, 1, want, o, NULL,
				       (const char *[]){ "-o", out, d, NULL });
			free(want);
			rmdir(p);
			free(p);
			assert_int_equal(chmod(o, 0755), 0);
			expect_fail_as(HELPER_AS_NOBODY, 1, "cannot write '", o, NULL,
				       (const char *[]){ "-o", out, d, NULL });
		}
	}

	free(out);
	free(o);
	free(d);
	helper_tmpdir_remove(t);
}

static void test_cli_help(void **state)
{
	struct helper_result r;

	helper_run_bootvm(&r, "initramfs", (const char *[]){ "--help", NULL }, 0);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "");
	for (const char *const *s = (const char *[]){ "Usage: bootvm initramfs", "--output", "--compress",
						      "--busybox", "--init-run", "--modules-from",
						      "--module", "--add", "--keep-owner",
						      INITRAMFS_STATUS_PREFIX "N", "replaces DIR's /init",
						      NULL }; *s; s++)
		if (!strstr(r.out, *s))
			fail_msg("initramfs --help lacks '%s'", *s);
	helper_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_newc_bytes),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_reproducible),
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_own_init),
		cmocka_unit_test(test_hostile_tree),
		cmocka_unit_test(test_busybox),
		cmocka_unit_test(test_busybox_init_runs),
		cmocka_unit_test(test_modules_resolve_fake),
		cmocka_unit_test(test_modules_cli_fake),
		cmocka_unit_test(test_modules_hostile),
		cmocka_unit_test(test_modules_real),
		cmocka_unit_test(test_modules_real_compressed),
		cmocka_unit_test(test_cli_errors),
		cmocka_unit_test(test_cli_help),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
