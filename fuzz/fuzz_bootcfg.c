/*
 * libFuzzer target: the boot configuration parsers of `bootvm run --disk`
 * (tools/grub_cfg.c, tools/diskboot.c) on arbitrary text. The first byte
 * picks one, the rest is its input:
 *   0  grub.cfg (grub_parse), its `configfile`/`source` reading the same
 *      input again and `search` finding some keys; every entry's command line
 *      then goes through diskboot_cmdline() against a two-partition disk
 *   1  up to 8 BLS entry files split at NUL bytes (bls_parse, bls_sort with
 *      the last one as loader.conf's default pattern), then diskboot_cmdline()
 *   2  a UKI (uki_parse): every section must lie inside the buffer
 *   3  two versions split at a NUL (diskboot_vercmp must be antisymmetric
 *      and reflexive) and diskboot_path_norm() of the first
 * Besides the sanitizers, results are checked for what the callers rely on.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/diskboot.h"
#include "fuzz.h"

#define FUZZ_BLS_MAX 8

struct fuzz_input {
	const char *text;
	size_t len;
};

static int fuzz_search(void *arg, const char *kind, const char *key, char *dev, size_t devlen)
{
	(void)arg;
	if (!*key || (unsigned char)key[0] > 'm')
		return -1;
	snprintf(dev, devlen, strcmp(kind, "label") ? "hd0,gpt2" : "hd0,msdos1");
	return 0;
}

/* Any configfile/source is the input itself: the parser must bound the recursion. */
static int fuzz_read(void *arg, const char *dev, const char *path, char **text, size_t *len)
{
	const struct fuzz_input *in = arg;

	(void)dev;
	if (!strstr(path, ".cfg"))
		return -1;
	*text = malloc(in->len + 1);
	if (!*text)
		return -1;
	memcpy(*text, in->text, in->len);
	(*text)[in->len] = '\0';
	*len = in->len;
	return 0;
}

static struct diskimg disk;
static struct diskboot db;

static void disk_init(void)
{
	disk.fd = -1;
	disk.table = DISKIMG_GPT;
	disk.nr_parts = 2;
	disk.size = 1u << 30;
	for (unsigned int i = 0; i < 2; i++) {
		disk.parts[i].index = i + 1;
		disk.parts[i].offset = (i + 1) << 20;
		disk.parts[i].size = 1 << 20;
		snprintf(disk.parts[i].partuuid, sizeof(disk.parts[i].partuuid),
			 "6a1b0000-1111-4222-8333-00000000000%u", i + 1);
		db.parts[i].has_fs = true;
		snprintf(db.parts[i].uuid, sizeof(db.parts[i].uuid),
			 "5e1f0000-aaaa-4bbb-8ccc-00000000000%u", i + 1);
		snprintf(db.parts[i].label, sizeof(db.parts[i].label), "part%u", i + 1);
	}
	memcpy(db.parts[0].fstype, "vfat", 5);
	memcpy(db.parts[1].fstype, "ext4", 5);
	db.parts[1].has_fstab = true;
	db.def = -1;
}

static void entry_check(const struct diskboot_entry *e)
{
	char *cmdline;

	if (e->nr_initrds > DISKBOOT_MAX_INITRDS)
		abort();
	if (e->kernel.part >= (int)disk.nr_parts)
		abort();
	if (e->kernel.path && e->kernel.path[0] != '/')
		abort();
	for (unsigned int i = 0; i < e->nr_initrds; i++)
		if (e->initrds[i].path && e->initrds[i].path[0] != '/')
			abort();
	cmdline = diskboot_cmdline(&disk, &db, e, "quiet");
	if (cmdline && !strstr(cmdline, "quiet"))
		abort();
	free(cmdline);
}

static void fuzz_grub(const char *text, size_t len)
{
	struct fuzz_input in = { text, len };
	const struct grub_host host = {
		.search = fuzz_search, .read = fuzz_read, .arg = &in, .root = "hd0,msdos1",
		.prefix = "/boot/grub", .where = "fuzz grub.cfg",
	};
	struct diskboot_entry *e = NULL;
	unsigned int n = 0;
	int def = -1;

	if (grub_parse(text, len, &host, &e, &n, &def) == 0) {
		if (n > DISKBOOT_MAX_ENTRIES + 1 || def < -1 || (n && def >= (int)n) ||
		    (!n && def != -1))
			abort();
	}
	for (unsigned int i = 0; i < n; i++) {
		/* GRUB names files by device; resolve the ones on the first disk. */
		int p = e[i].kernel.dev ? grub_dev_partnum(e[i].kernel.dev) : -1;
		if (p > 0 && p <= (int)disk.nr_parts)
			e[i].kernel.part = p - 1;
		else if (e[i].kernel.part >= (int)disk.nr_parts)
			e[i].kernel.part = -1;
		entry_check(&e[i]);
		diskboot_entry_clear(&e[i]);
	}
	free(e);
}

static void fuzz_bls(const char *text, size_t len)
{
	struct diskboot_entry e[FUZZ_BLS_MAX];
	char *pattern = NULL;
	unsigned int n = 0;
	size_t at = 0;
	int def;

	memset(e, 0, sizeof(e));
	while (at <= len && n < FUZZ_BLS_MAX) {
		const char *nul = memchr(text + at, '\0', len - at);
		size_t l = nul ? (size_t)(nul - (text + at)) : len - at;
		char id[32];

		snprintf(id, sizeof(id), "entry-%u.conf", n);
		if (bls_parse(text + at, l, id, n % 2, &e[n]) < 0)
			goto out;
		n++;
		if (!nul)
			break;
		at += l + 1;
		if (at == len || n == FUZZ_BLS_MAX) {
			pattern = strndup(text + at, len - at);
			break;
		}
	}
	def = bls_sort(e, n, pattern);
	if (def < -1 || def >= (int)n || (n && def < 0))
		abort();
	for (unsigned int i = 0; i < n; i++)
		entry_check(&e[i]);
out:
	for (unsigned int i = 0; i < n; i++)
		diskboot_entry_clear(&e[i]);
	free(pattern);
}

static void fuzz_uki(const uint8_t *buf, size_t len)
{
	struct uki_sections s;
	const char *why = NULL;

	if (uki_parse(buf, len, &s, &why) < 0) {
		if (!why)
			abort();
		return;
	}
#define INSIDE(p, n) (!(p) || ((const uint8_t *)(p) >= buf && (n) <= len && \
			       (size_t)((const uint8_t *)(p) - buf) <= len - (n)))
	if (!s.linux_data || !INSIDE(s.linux_data, s.linux_size) ||
	    !INSIDE(s.initrd_data, s.initrd_size) || !INSIDE(s.cmdline, s.cmdline_size) ||
	    !INSIDE(s.osrel, s.osrel_size))
		abort();
#undef INSIDE
	/* Touch every byte, so ASan sees a section that is not really there. */
	volatile uint8_t sum = 0;
	for (size_t i = 0; i < s.linux_size; i++)
		sum += s.linux_data[i];
	for (size_t i = 0; i < s.initrd_size; i++)
		sum += s.initrd_data[i];
	(void)sum;
}

static int sign(int v)
{
	return (v > 0) - (v < 0);
}

static void fuzz_versions(const char *text, size_t len)
{
	const char *nul = memchr(text, '\0', len);
	size_t la = nul ? (size_t)(nul - text) : len;
	char *a = strndup(text, la);
	char *b = nul ? strndup(nul + 1, len - la - 1) : strdup("");
	char *norm;

	if (!a || !b)
		goto out;
	if (diskboot_vercmp(a, a) != 0 || diskboot_vercmp(b, b) != 0 ||
	    sign(diskboot_vercmp(a, b)) != -sign(diskboot_vercmp(b, a)))
		abort();
	norm = diskboot_path_norm(a);
	if (norm) {
		size_t nl = strlen(norm);
		if (norm[0] != '/' || strstr(norm, "//") || strstr(norm, "/./") ||
		    strstr(norm, "/../") || (nl > 1 && norm[nl - 1] == '/') ||
		    (nl >= 2 && !strcmp(norm + nl - 2, "/.")) ||
		    (nl >= 3 && !strcmp(norm + nl - 3, "/..")))
			abort();
		free(norm);
	}
out:
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;

	if (!ready) {
		fuzz_log_quiet();
		disk_init();
		ready = 1;
	}
	if (!size)
		return 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;

	switch (data[0] & 3) {
	case 0:
		fuzz_grub(text, len);
		break;
	case 1:
		fuzz_bls(text, len);
		break;
	case 2:
		fuzz_uki(data + 1, len);
		break;
	case 3:
		fuzz_versions(text, len);
		break;
	}
	return 0;
}
