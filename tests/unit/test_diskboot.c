/*
 * tools/diskboot.c and grub_cfg.c: finding the kernel inside a disk. The
 * parsers on strings and buffers (BLS entries, UKI PE sections, grub.cfg,
 * version order, root= rewriting), then a few images made without root
 * (mkfs.ext4 -d, sfdisk on a file) scanned and loaded, hostile ones too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "tools/diskboot.h"
#include "tools/diskimg.h"
#include "util/log.h"

static struct helper_log logs;

static int setup(void **state)
{
	memset(&logs, 0, sizeof(logs));
	log_set_sink(helper_log_sink, &logs);
	return 0;
}

static int teardown(void **state)
{
	log_set_sink(NULL, NULL);
	return 0;
}

static void test_vercmp(void **state)
{
	assert_true(diskboot_vercmp("6.1.10", "6.1.9") > 0);
	assert_true(diskboot_vercmp("6.1.9", "6.1.10") < 0);
	assert_true(diskboot_vercmp("1.0~rc1", "1.0") < 0);
	assert_true(diskboot_vercmp("6.1.0-13-amd64", "6.1.0-9-amd64") > 0);
	assert_true(diskboot_vercmp("6.1", "6.1-1") > 0 || diskboot_vercmp("6.1", "6.1-1") < 0);
	assert_int_equal(diskboot_vercmp("007", "7"), 0);
	assert_int_equal(diskboot_vercmp("", ""), 0);
	assert_true(diskboot_vercmp("a", "") > 0);
	assert_true(diskboot_vercmp("2", "10") < 0);
	assert_true(diskboot_vercmp("abc", "abcd") < 0);
}

static void test_path_norm(void **state)
{
	static const char *const cases[][2] = {
		{ "/a/../../b/./c", "/b/c" }, { "", "/" }, { "../../x", "/x" },
		{ "//boot///vmlinuz", "/boot/vmlinuz" }, { "/..", "/" }, { "a/b/..", "/a" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = diskboot_path_norm(cases[i][0]);

		assert_string_equal(p, cases[i][1]);
		free(p);
	}
}

static void bls(struct diskboot_entry *e, const char *id, const char *text)
{
	assert_int_equal(bls_parse(text, strlen(text), id, 1, e), 0);
}

static void test_bls(void **state)
{
	struct diskboot_entry e[5];

	bls(&e[0], "fedora-6.1.9.conf",
	    "# comment\ntitle Fedora (6.1.9)\nversion 6.1.9\nlinux /vmlinuz-6.1.9\n"
	    "initrd /intel-ucode.img\ninitrd /initramfs-6.1.9.img\noptions root=UUID=abc\n"
	    "options  quiet  \n");
	assert_string_equal(e[0].title, "Fedora (6.1.9)");
	assert_string_equal(e[0].kernel.path, "/vmlinuz-6.1.9");
	assert_int_equal(e[0].kernel.part, 1);
	assert_int_equal(e[0].nr_initrds, 2);
	assert_string_equal(e[0].initrds[1].path, "/initramfs-6.1.9.img");
	assert_string_equal(e[0].options, "root=UUID=abc quiet");
	assert_null(e[0].error);
	bls(&e[1], "fedora-6.1.10.conf", "title Fedora (6.1.10)\nlinux /vmlinuz-6.1.10\n");
	bls(&e[2], "windows.conf", "title Windows\nefi /EFI/Microsoft/bootmgfw.efi\n");
	assert_non_null(strstr(e[2].error, "efi entry"));
	bls(&e[3], "broken.conf", "title Nothing\noptions quiet\n");
	assert_non_null(strstr(e[3].error, "no linux line"));
	assert_string_equal(e[3].options, "quiet");
	bls(&e[4], "arm.conf", "linux /Image\narchitecture aa64\n");
	assert_non_null(strstr(e[4].error, "aa64"));
	assert_string_equal(e[4].title, "arm.conf");	/* no title: the id */

	/* Newest id first without a default; loader.conf's glob picks another. */
	int d = bls_sort(e, 2, NULL);
	assert_string_equal(e[d].id, "fedora-6.1.10.conf");
	d = bls_sort(e, 2, "fedora-6.1.9*");
	assert_string_equal(e[d].id, "fedora-6.1.9.conf");
	d = bls_sort(e, 2, "fedora-6.1.9");	/* without .conf */
	assert_string_equal(e[d].id, "fedora-6.1.9.conf");
	d = bls_sort(e, 2, "nomatch*");
	assert_string_equal(e[d].id, "fedora-6.1.10.conf");
	for (int i = 0; i < 5; i++)
		diskboot_entry_clear(&e[i]);

	/* sort-key entries come before the others, then by version downwards. */
	bls(&e[0], "z.conf", "linux /a\n");
	bls(&e[1], "a.conf", "linux /b\nsort-key debian\nversion 1.2\n");
	bls(&e[2], "b.conf", "linux /c\nsort-key debian\nversion 1.10\n");
	d = bls_sort(e, 3, NULL);
	assert_string_equal(e[0].id, "b.conf");
	assert_string_equal(e[1].id, "a.conf");
	assert_string_equal(e[2].id, "z.conf");
	assert_int_equal(d, 0);
	for (int i = 0; i < 3; i++)
		diskboot_entry_clear(&e[i]);
}

/* ---- UKI: a minimal PE32+ with sections ---- */

struct sec { const char *name; uint32_t ptr, raw, vsize; };

static uint8_t *pe_build(const struct sec *s, unsigned int n, size_t len)
{
	uint8_t *b = calloc(1, len);
	uint32_t pe = 0x80;

	b[0] = 'M';
	b[1] = 'Z';
	memcpy(b + 0x3c, &pe, 4);
	memcpy(b + pe, "PE\0\0", 4);
	b[pe + 4] = 0x64;
	b[pe + 5] = 0x86;
	b[pe + 6] = (uint8_t)n;
	b[pe + 20] = 0xf0;	/* SizeOfOptionalHeader (PE32+) */
	b[pe + 24] = 0x0b;
	b[pe + 25] = 0x02;
	for (unsigned int i = 0; i < n; i++) {
		uint8_t *h = b + pe + 24 + 0xf0 + i * 40;

		strncpy((char *)h, s[i].name, 8);
		memcpy(h + 8, &s[i].vsize, 4);
		memcpy(h + 16, &s[i].raw, 4);
		memcpy(h + 20, &s[i].ptr, 4);
		if ((uint64_t)s[i].ptr + s[i].raw <= len)
			memset(b + s[i].ptr, 'a' + (int)i, s[i].raw);
	}
	return b;
}

static void test_uki(void **state)
{
	struct uki_sections u;
	const char *why = NULL;
	const struct sec good[] = {
		{ ".text", 0x400, 0x200, 0x200 }, { ".osrel", 0x600, 0x200, 0x20 },
		{ ".cmdline", 0x800, 0x200, 0x10 }, { ".linux", 0xa00, 0x400, 0x3f0 },
		{ ".initrd", 0xe00, 0x200, 0 },
	};
	uint8_t *b = pe_build(good, 5, 0x1000);

	assert_int_equal(uki_parse(b, 0x1000, &u, &why), 0);
	assert_ptr_equal(u.linux_data, b + 0xa00);
	assert_int_equal(u.linux_size, 0x3f0);		/* VirtualSize, not the padded raw size */
	assert_int_equal(u.cmdline_size, 0x10);
	assert_int_equal(u.initrd_size, 0x200);		/* VirtualSize 0: the raw size */
	assert_int_equal(u.osrel_size, 0x20);
	/* Truncated: the last section runs past the end. */
	assert_int_equal(uki_parse(b, 0xf00, &u, &why), -1);
	assert_non_null(strstr(why, "past the end"));
	/* Not MZ, not PE, no room for the section table. */
	assert_int_equal(uki_parse(b + 1, 0xfff, &u, &why), -1);
	assert_int_equal(uki_parse(b, 0x100, &u, &why), -1);
	free(b);

	const struct sec overlap[] = {
		{ ".linux", 0x400, 0x400, 0x400 }, { ".initrd", 0x600, 0x400, 0x400 },
	};
	b = pe_build(overlap, 2, 0x1000);
	assert_int_equal(uki_parse(b, 0x1000, &u, &why), -1);
	assert_non_null(strstr(why, "overlap"));
	free(b);

	const struct sec twice[] = {
		{ ".linux", 0x400, 0x100, 0x100 }, { ".linux", 0x600, 0x100, 0x100 },
	};
	b = pe_build(twice, 2, 0x1000);
	assert_int_equal(uki_parse(b, 0x1000, &u, &why), -1);
	assert_non_null(strstr(why, "twice"));
	free(b);

	const struct sec nolinux[] = { { ".text", 0x400, 0x100, 0x100 } };
	b = pe_build(nolinux, 1, 0x1000);
	assert_int_equal(uki_parse(b, 0x1000, &u, &why), -1);
	assert_non_null(strstr(why, "no .linux"));
	/* A huge pointer must not wrap around. */
	const struct sec wrap[] = { { ".linux", 0xffffff00u, 0x200, 0x200 } };
	free(b);
	b = pe_build(wrap, 1, 0x1000);
	assert_int_equal(uki_parse(b, 0x1000, &u, &why), -1);
	free(b);
}

/* ---- grub.cfg ---- */

static int fake_search(void *arg, const char *kind, const char *key, char *dev, size_t len)
{
	if (!strcmp(kind, "fs-uuid") && !strcmp(key, "1234-abcd")) {
		snprintf(dev, len, "hd0,gpt2");
		return 0;
	}
	if (!strcmp(kind, "label") && !strcmp(key, "BOOT")) {
		snprintf(dev, len, "hd0,gpt3");
		return 0;
	}
	return -1;
}

static int fake_read(void *arg, const char *dev, const char *path, char **text, size_t *len)
{
	if (strcmp(dev, "hd0,gpt2") || strcmp(path, "/boot/grub/grub.cfg"))
		return -1;
	*text = strdup("menuentry 'Included' { linux /vmlinuz-inc root=/dev/vda2\n}\n");
	*len = strlen(*text);
	return 0;
}

static const struct grub_host host = {
	.search = fake_search, .read = fake_read, .root = "hd0,msdos1", .prefix = "/boot/grub",
	.where = "test grub.cfg",
};

struct gres {
	struct diskboot_entry *e;
	unsigned int n;
	int def;
};

static void grub(struct gres *r, const char *text)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(grub_parse(text, strlen(text), &host, &r->e, &r->n, &r->def), 0);
}

static void gres_free(struct gres *r)
{
	for (unsigned int i = 0; i < r->n; i++)
		diskboot_entry_clear(&r->e[i]);
	free(r->e);
}

/* What grub-mkconfig writes on Debian 12, trimmed. */
static const char debian_cfg[] =
	"if [ -s $prefix/grubenv ]; then\n  set have_grubenv=true\n  load_env\nfi\n"
	"if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\n   set next_entry=\n"
	"   save_env next_entry\n   set boot_once=true\nelse\n   set default=\"%s\"\nfi\n"
	"if [ x\"${feature_menuentry_id}\" = xy ]; then\n  menuentry_id_option=\"--id\"\n"
	"else\n  menuentry_id_option=\"\"\nfi\nexport menuentry_id_option\n"
	"function load_video {\n  if [ x$feature_all_video_module = xy ]; then\n"
	"    insmod all_video\n  fi\n}\n"
	"if loadfont unicode ; then\n  set gfxmode=auto\nfi\n"
	"menuentry 'Debian GNU/Linux' --class debian --class gnu-linux $menuentry_id_option "
	"'gnulinux-simple-1234-abcd' {\n\tload_video\n\tinsmod gzio\n"
	"\tif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi\n"
	"\tset root='hd0,msdos1'\n"
	"\tif [ x$feature_platform_search_hint = xy ]; then\n"
	"\t  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,msdos1  1234-abcd\n"
	"\telse\n\t  search --no-floppy --fs-uuid --set=root 1234-abcd\n\tfi\n"
	"\techo\t'Loading Linux 6.1.0-13-amd64 ...'\n"
	"\tlinux\t/boot/vmlinuz-6.1.0-13-amd64 root=UUID=1234-abcd ro  quiet\n"
	"\techo\t'Loading initial ramdisk ...'\n"
	"\tinitrd\t/boot/initrd.img-6.1.0-13-amd64\n}\n"
	"submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option "
	"'gnulinux-advanced-1234-abcd' {\n"
	"\tmenuentry 'Debian GNU/Linux, with Linux 6.1.0-13-amd64' --class debian "
	"$menuentry_id_option 'gnulinux-6.1.0-13-amd64-advanced-1234-abcd' {\n"
	"\t\tlinux\t/boot/vmlinuz-6.1.0-13-amd64 root=UUID=1234-abcd ro quiet\n\t}\n"
	"\tmenuentry 'Debian GNU/Linux, with Linux 6.1.0-13-amd64 (recovery mode)' "
	"$menuentry_id_option 'gnulinux-6.1.0-13-amd64-recovery-1234-abcd' {\n"
	"\t\tset root=(hd0,gpt3)\n"
	"\t\tlinux\t/vmlinuz-6.1.0-13-amd64 root=UUID=1234-abcd ro single\n"
	"\t\tinitrd\t/initrd.img-6.1.0-13-amd64 ($root)/extra.img\n\t}\n}\n"
	"if [ \"$grub_platform\" = \"efi\" ]; then\n"
	"\tmenuentry 'UEFI Firmware Settings' $menuentry_id_option 'uefi-firmware' {\n"
	"\t\tfwsetup\n\t}\nfi\n";

static void debian(struct gres *r, const char *def)
{
	char *t = helper_asprintf(debian_cfg, def);

	grub(r, t);
	free(t);
}

static void test_grub_debian(void **state)
{
	struct gres r;

	debian(&r, "0");
	assert_int_equal(r.n, 3);	/* the EFI-only entry is not on "pc" */
	assert_int_equal(r.def, 0);
	struct diskboot_entry *e = &r.e[0];
	assert_null(e->error);
	assert_string_equal(e->title, "Debian GNU/Linux");
	assert_string_equal(e->id, "gnulinux-simple-1234-abcd");
	assert_string_equal(e->kernel.dev, "hd0,gpt2");		/* from search, not set root */
	assert_string_equal(e->kernel.path, "/boot/vmlinuz-6.1.0-13-amd64");
	assert_int_equal(e->kernel.part, -1);
	assert_string_equal(e->options, "root=UUID=1234-abcd ro quiet");
	assert_int_equal(e->nr_initrds, 1);
	assert_string_equal(e->initrds[0].path, "/boot/initrd.img-6.1.0-13-amd64");
	assert_string_equal(r.e[1].title,
			    "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-13-amd64");
	assert_string_equal(r.e[1].kernel.dev, "hd0,msdos1");	/* the starting $root */
	e = &r.e[2];
	assert_string_equal(e->kernel.dev, "hd0,gpt3");
	assert_int_equal(e->nr_initrds, 2);
	assert_string_equal(e->initrds[1].dev, "hd0,gpt3");
	assert_string_equal(e->initrds[1].path, "/extra.img");
	gres_free(&r);

	/* Defaults: N>M, saved, titles and ids at each level, out of range. */
	static const struct { const char *def; int want; } defs[] = {
		{ "1>1", 2 }, { "1>0", 1 }, { "saved", 0 }, { "${saved_entry}", 0 }, { "7", 0 },
		{ "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux "
		  "6.1.0-13-amd64 (recovery mode)", 2 },
		{ "gnulinux-advanced-1234-abcd>gnulinux-6.1.0-13-amd64-advanced-1234-abcd", 1 },
		{ "1", 1 },	/* the submenu: its first entry */
		{ "Debian GNU/Linux", 0 },
	};
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		debian(&r, defs[i].def);
		if (r.def != defs[i].want)
			fail_msg("default=%s: got %d, want %d", defs[i].def, r.def, defs[i].want);
		gres_free(&r);
	}
}

static void test_grub_syntax(void **state)
{
	struct gres r;

	/* Variables, quoting, escapes, ; separators, one-line bodies, linux16, search --label. */
	grub(&r, "set a=one b='two words'\nset c=\"$a-${b}\"\nd=\\$a\n"
		 "menuentry \"T $a\" { search --label --set=root BOOT; linux16 /k \"$c\" '$a' $d x\\ y; }\n"
		 "menuentry 'second' {\n linux /k2 root=/dev/sda1\n}\n");
	assert_int_equal(r.n, 2);
	assert_string_equal(r.e[0].title, "T one");
	assert_string_equal(r.e[0].kernel.dev, "hd0,gpt3");
	assert_string_equal(r.e[0].options, "\"one-two words\" $a $a \"x y\"");
	assert_null(r.e[0].id);
	gres_free(&r);

	/* configfile into another partition's grub.cfg, as Debian's ESP stub does. */
	grub(&r, "search.fs_uuid 1234-abcd root hd0,gpt2\nset prefix=($root)'/boot/grub'\n"
		 "configfile $prefix/grub.cfg\n");
	assert_int_equal(r.n, 1);
	assert_string_equal(r.e[0].title, "Included");
	assert_string_equal(r.e[0].kernel.dev, "hd0,gpt2");
	assert_string_equal(r.e[0].kernel.path, "/vmlinuz-inc");
	gres_free(&r);

	/* An if we cannot evaluate, around the kernel: the entry names it. */
	grub(&r, "menuentry 'x' {\n if [ -f /foo ]; then\n  linux /a\n else\n  linux /b\n fi\n}\n"
		 "menuentry 'y' {\n if keystatus --shift; then echo hi; fi\n linux /c\n}\n");
	assert_int_equal(r.n, 2);
	assert_non_null(r.e[0].error);
	assert_non_null(strstr(r.e[0].error, "if [ -f /foo ]"));
	assert_non_null(strstr(r.e[0].error, "line 2"));
	assert_null(r.e[1].error);			/* its if does not matter */
	assert_string_equal(r.e[1].kernel.path, "/c");
	gres_free(&r);

	/* Not Linux, loops that matter, no linux line, menuentry without {. */
	grub(&r, "menuentry 'win' { chainloader +1 }\n"
		 "menuentry 'loop' { for i in 1 2; do linux /k$i; done }\n"
		 "menuentry 'empty' { echo nothing }\n");
	assert_int_equal(r.n, 3);
	assert_non_null(strstr(r.e[0].error, "chainloader"));
	assert_non_null(strstr(r.e[1].error, "loop"));
	assert_non_null(strstr(r.e[2].error, "no linux line"));
	gres_free(&r);

	static const char *const broken[] = {
		"menuentry 'a' {\n linux /k\n",			/* no } */
		"menuentry 'a' linux /k\n",			/* no { */
		"set x='unterminated\n",
		"if [ a = a ]; then\n set default=0\n",		/* no fi */
		"fi\n",
		"}\n",
	};
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		grub(&r, broken[i]);
		assert_int_equal(r.n, 1);
		assert_int_equal(r.def, 0);
		assert_non_null(r.e[0].error);
		gres_free(&r);
	}
}

static void test_grub_hostile(void **state)
{
	struct gres r;
	size_t big = (2u << 20);
	char *t = malloc(big + 1);
	double t0 = helper_now_ms();

	/* 2 MiB: refused without reading it. */
	memset(t, '#', big);
	t[big] = 0;
	memset(&r, 0, sizeof(r));
	assert_int_equal(grub_parse(t, big, &host, &r.e, &r.n, &r.def), 0);
	assert_int_equal(r.n, 1);
	assert_non_null(strstr(r.e[0].error, "larger than"));
	gres_free(&r);

	/* Doubling a variable: stopped at the word limit. */
	strcpy(t, "set a=xxxxxxxxxxxxxxxx\n");
	for (int i = 0; i < 40; i++)
		strcat(t, "set a=$a$a\n");
	strcat(t, "menuentry 'a' { linux /k $a }\n");
	grub(&r, t);
	assert_non_null(r.e[0].error);
	assert_non_null(strstr(r.e[0].error, "longer than"));
	gres_free(&r);

	/* 1 MiB of `set a=$a$a` with a 8 KiB value: the expansion budget ends it quickly. */
	size_t n = 0;
	n += (size_t)sprintf(t + n, "set a=");
	for (int i = 0; i < 8000; i++)
		t[n++] = 'x';
	t[n++] = '\n';
	while (n + 16 < (1u << 20))
		n += (size_t)sprintf(t + n, "set b=$a$a$a\n");
	t[n] = 0;
	grub(&r, t);
	assert_int_equal(r.n, 1);
	assert_non_null(r.e[0].error);
	gres_free(&r);

	/* Submenus nested too deep; NUL bytes. */
	t[0] = 0;
	for (int i = 0; i < 12; i++)
		strcat(t, "submenu s {\n");
	strcat(t, "menuentry m { linux /k }\n");
	for (int i = 0; i < 12; i++)
		strcat(t, "}\n");
	grub(&r, t);
	assert_int_equal(r.n, 1);
	assert_non_null(strstr(r.e[0].error, "nested"));
	gres_free(&r);
	memset(&r, 0, sizeof(r));
	assert_int_equal(grub_parse("menuentry\0", 10, &host, &r.e, &r.n, &r.def), 0);
	assert_non_null(strstr(r.e[0].error, "NUL"));
	gres_free(&r);
	free(t);
	assert_true(helper_now_ms() - t0 < 10000);

	assert_int_equal(grub_dev_partnum("hd0,msdos1"), 1);
	assert_int_equal(grub_dev_partnum("(hd0,gpt12)"), 12);
	assert_int_equal(grub_dev_partnum("hd0,3"), 3);
	assert_int_equal(grub_dev_partnum("hd0"), 0);
	assert_int_equal(grub_dev_partnum("hd1,1"), -1);
	assert_int_equal(grub_dev_partnum("hd0,gpt0"), -1);
	assert_int_equal(grub_dev_partnum("hd0,gpt1,msdos2"), -1);
	assert_int_equal(grub_dev_partnum("hd0,999"), -1);
}

/* ---- the command line, on a hand-made disk ---- */

static void test_cmdline(void **state)
{
	static struct diskimg d;
	static struct diskboot db;
	struct diskboot_entry e = { .kernel.part = 0 };
	char *c;

	memset(&d, 0, sizeof(d));
	memset(&db, 0, sizeof(db));
	d.table = DISKIMG_GPT;
	d.nr_parts = 3;
	for (unsigned int i = 0; i < 3; i++)
		d.parts[i].index = i + 1;
	strcpy(d.parts[1].partuuid, "0fc63daf-8483-4772-8e79-3d69d8477de4");
	db.parts[0] = (struct diskboot_part){ .has_fs = true, .uuid = "ABCD-1234", .label = "ESP" };
	db.parts[1] = (struct diskboot_part){ .has_fs = true, .uuid = "11111111-2222-3333-4444-555555555555",
					      .label = "root", .has_fstab = true };
	db.parts[2] = (struct diskboot_part){ .has_fs = true, .uuid = "99999999-2222-3333-4444-555555555555",
					      .label = "data" };

	static const char *const cases[][3] = {
		{ "root=UUID=11111111-2222-3333-4444-555555555555 ro quiet", NULL,
		  "root=/dev/vda2 ro quiet console=ttyS0" },
		{ "root=UUID=11111111-2222-3333-4444-555555555555", "panic=-1",
		  "root=/dev/vda2 console=ttyS0 panic=-1" },
		{ "root=LABEL=data console=hvc0", NULL, "root=/dev/vda3 console=hvc0" },
		{ "root=PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DE4", "console=ttyS1",
		  "root=/dev/vda2 console=ttyS1" },
		{ "root=/dev/disk/by-uuid/abcd-1234 rw", NULL, "root=/dev/vda1 rw console=ttyS0" },
		{ "root=/dev/sda3", NULL, "root=/dev/vda3 console=ttyS0" },
		{ "root=/dev/nvme0n1p2 x=\"a b\"", NULL, "root=/dev/vda2 x=\"a b\" console=ttyS0" },
		{ "root=UUID=nothere", NULL, "root=UUID=nothere console=ttyS0" },
		{ "", NULL, "console=ttyS0" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e.options = (char *)cases[i][0];
		c = diskboot_cmdline(&d, &db, &e, cases[i][1]);
		assert_non_null(c);
		if (strcmp(c, cases[i][2]))
			fail_msg("'%s': got '%s', want '%s'", cases[i][0], c, cases[i][2]);
		free(c);
	}
	assert_true(logs.warnings >= 1);	/* UUID=nothere */

	/* Debian convention: no options, root is the partition with /etc/fstab. */
	e.options = (char *)"";
	e.root_from_fs = true;
	c = diskboot_cmdline(&d, &db, &e, "rw");
	assert_string_equal(c, "root=/dev/vda2 ro console=ttyS0 rw");
	free(c);
	/* An unpartitioned disk is /dev/vda. */
	d.table = DISKIMG_NONE;
	d.nr_parts = 1;
	d.parts[0].index = 0;
	c = diskboot_cmdline(&d, &db, &e, NULL);
	assert_string_equal(c, "root=/dev/vda ro console=ttyS0");
	free(c);
}

/* ---- images ---- */

static bool have_tools(void)
{
	if (helper_have_tool("mkfs.ext4") && helper_have_tool("sfdisk"))
		return true;
	fprintf(stderr, "# SKIP: mkfs.ext4 or sfdisk missing\n");
	return false;
}

static void scan(const char *img, struct diskimg **d, struct diskboot *db)
{
	*d = diskimg_open(img);
	assert_non_null(*d);
	assert_int_equal(diskboot_scan(*d, db), 0);
}

static void test_image_debian(void **state)
{
	if (!have_tools())
		skip();
	char *dir = helper_tmpdir("diskboot");
	struct diskboot_image im;
	struct diskimg *d;
	struct diskboot db;

	assert_int_equal(helper_shell(
		"cd %s && mkdir -p r/boot r/etc && printf KERNEL1 > r/boot/vmlinuz-6.1.9 && "
		"printf KERNEL2 > r/boot/vmlinuz-6.1.10 && printf INITRD2 > r/boot/initrd.img-6.1.10 && "
		"ln -s nothere r/boot/initrd.img-6.1.9 && ln -s loop1 r/boot/loop2 && ln -s loop2 r/boot/loop1 && "
		"touch r/etc/fstab && truncate -s 16M disk.img && mkfs.ext4 -q -d r disk.img", dir), 0);
	char *img = helper_asprintf("%s/disk.img", dir);
	scan(img, &d, &db);
	assert_int_equal(db.nr_entries, 2);
	assert_int_equal(db.def, 0);
	assert_string_equal(db.entries[0].kernel.path, "/boot/vmlinuz-6.1.10");	/* newest */
	assert_string_equal(db.entries[1].kernel.path, "/boot/vmlinuz-6.1.9");
	assert_int_equal(db.entries[1].nr_initrds, 0);	/* its initrd is a dangling link */
	assert_int_equal(diskboot_select(&db, "1"), 1);
	assert_int_equal(diskboot_select(&db, "/boot/vmlinuz-6.1.9"), 1);
	assert_int_equal(diskboot_select(&db, "5"), -1);
	assert_non_null(strstr(logs.last_error, "2 boot entries"));
	assert_int_equal(diskboot_select(&db, "nope"), -1);
	assert_int_equal(diskboot_load(d, &db.entries[0], &im), 0);
	assert_int_equal(im.kernel_size, 7);
	assert_memory_equal(im.kernel, "KERNEL2", 7);
	assert_memory_equal(im.initrd, "INITRD2", 7);
	diskboot_image_free(&im);

	/* Hostile entries: a symlink loop and a missing file are errors, not hangs. */
	struct diskboot_entry *e = &db.entries[1];
	e->initrds[0].part = 0;
	e->initrds[0].path = strdup("/boot/loop1");
	e->nr_initrds = 1;
	assert_int_equal(diskboot_load(d, e, &im), -1);
	free(e->initrds[0].path);
	e->initrds[0].path = strdup("/../../../etc/shadow");	/* normalised: /etc/shadow in the fs */
	assert_int_equal(diskboot_load(d, e, &im), -1);
	assert_non_null(strstr(logs.last_error, "does not exist"));
	diskboot_free(&db);
	diskimg_close(d);
	free(img);
	helper_tmpdir_remove(dir);
}

static void test_image_mbr_grub_bls(void **state)
{
	if (!have_tools())
		skip();
	char *dir = helper_tmpdir("diskboot");
	struct diskboot_image im;
	struct diskimg *d;
	struct diskboot db;
	char *c;

	/* p1: /boot with grub.cfg + kernels/; p2: root with BLS under /boot/loader. */
	assert_int_equal(helper_shell(
		"cd %s && mkdir -p b/grub b/kernels r/boot/loader/entries r/etc && "
		"printf K > b/kernels/vmlinuz && printf I1 > b/kernels/i1 && printf I22 > b/kernels/i2 && "
		"printf 'set default=\"Linux\"\\nmenuentry Linux {\\n linux /kernels/vmlinuz root=UUID=aaaaaaaa-0000-0000-0000-000000000002 quiet\\n"
		" initrd /kernels/i1 /kernels/i2\\n}\\nmenuentry Other {\\n linux (hd1,1)/x\\n}\\n' > b/grub/grub.cfg && "
		"printf 'title BLS\\nlinux /vmlinuz-bls\\noptions root=LABEL=rootfs\\n' > r/boot/loader/entries/a.conf && "
		"printf B > r/boot/vmlinuz-bls && touch r/etc/fstab && truncate -s 40M disk.img && "
		"printf 'label: dos\\nstart=2048, size=16M, type=83, bootable\\nsize=16M, type=83\\n' | sfdisk -q disk.img && "
		"mkfs.ext4 -q -d b -E offset=1048576 disk.img 16M && "
		"mkfs.ext4 -q -d r -L rootfs -U aaaaaaaa-0000-0000-0000-000000000002 -E offset=17825792 disk.img 16M",
		dir), 0);
	char *img = helper_asprintf("%s/disk.img", dir);
	scan(img, &d, &db);
	assert_int_equal(d->table, DISKIMG_MBR);
	/* BLS first (on partition 2, under /boot), then the two grub entries. */
	assert_true(db.nr_entries >= 3);
	assert_int_equal(db.entries[0].source, DISKBOOT_BLS);
	assert_int_equal(db.def, 0);
	assert_string_equal(db.entries[0].kernel.path, "/boot/vmlinuz-bls");
	c = diskboot_cmdline(d, &db, &db.entries[0], NULL);
	assert_string_equal(c, "root=/dev/vda2 console=ttyS0");
	free(c);
	int g = diskboot_select(&db, "Linux");
	assert_true(g > 0);
	assert_int_equal(db.entries[g].source, DISKBOOT_GRUB);
	assert_int_equal(db.entries[g].kernel.part, 0);
	c = diskboot_cmdline(d, &db, &db.entries[g], "panic=-1");
	assert_string_equal(c, "root=/dev/vda2 quiet console=ttyS0 panic=-1");
	free(c);
	assert_int_equal(diskboot_load(d, &db.entries[g], &im), 0);
	assert_int_equal(im.initrd_size, 7);	/* "I1", padding to 4, "I22" */
	assert_memory_equal(im.initrd, "I1\0\0I22", 7);
	diskboot_image_free(&im);
	assert_int_equal(diskboot_select(&db, "Other"), -1);
	assert_non_null(strstr(logs.last_error, "not on this disk"));
	diskboot_free(&db);
	diskimg_close(d);

	/* A grub.cfg of 2 MiB: refused, and as it is the default, nothing boots. */
	assert_int_equal(helper_shell(
		"cd %s && rm -rf r/boot/loader && head -c 2097152 /dev/zero | tr '\\0' '#' > b/grub/grub.cfg && "
		"mkfs.ext4 -q -F -d b -E offset=1048576 disk.img 16M && "
		"mkfs.ext4 -q -F -d r -E offset=17825792 disk.img 16M", dir), 0);
	scan(img, &d, &db);
	assert_int_equal(db.entries[db.def].source, DISKBOOT_GRUB);
	assert_int_equal(diskboot_select(&db, NULL), -1);
	diskboot_free(&db);
	diskimg_close(d);
	free(img);
	helper_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vercmp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_norm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uki, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grub_debian, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grub_syntax, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grub_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_debian, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_mbr_grub_bls, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
