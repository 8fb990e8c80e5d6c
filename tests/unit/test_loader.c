/*
 * arch/x86 kernel loading: boot_load() on bzImages and ELF kernels built
 * here in memory, hostile variants of them, host decompression of every
 * payload format, the E820 map and the PVH start info.
 *
 * Every rejected input must give exactly one error line naming the file, -1
 * and no crash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <asm/bootparam.h>
#include <linux/elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/boot.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "arch/x86/pvh.h"
#include "util/log.h"
#include "vmm/config.h"
#include "vmm/memory.h"

#include "helpers.h"

#define KIB (1ULL << 10)
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

#define REAL_VMLINUX "/work/shared/test-kernel/vmlinux"

/* ---- log capture ---- */

static struct helper_log logs;

static void logs_reset(void)
{
	memset(&logs, 0, sizeof(logs));
}

/* ---- temp files ---- */

static char *tmpdir;

static const char *tmp_path(const char *name)
{
	static char paths[8][256];
	static unsigned int next;
	char *p = paths[next++ % 8];

	snprintf(p, 256, "%s/%s", tmpdir, name);
	return p;
}

static const char *write_file(const char *name, const void *data, size_t size)
{
	const char *path = tmp_path(name);

	helper_write_file(path, data, size, 0644);
	return path;
}

/* ---- kernels built in memory ---- */

static void fill_pattern(uint8_t *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed + (i >> 8));
}

struct tseg {
	uint32_t type;
	uint64_t paddr, vaddr, memsz;
	const uint8_t *data;
	uint64_t filesz;
	uint64_t align;
};

struct telf {
	struct tseg segs[4];
	unsigned int nr;
	uint64_t entry;
};

/* ehdr, phdrs, then each segment's bytes in order (the last segment ends the file). */
static uint8_t *elf_build(const struct telf *t, size_t *size)
{
	size_t off = sizeof(Elf64_Ehdr) + t->nr * sizeof(Elf64_Phdr);
	uint64_t offsets[4];
	uint8_t *buf;

	for (unsigned int i = 0; i < t->nr; i++) {
		off = (off + 15) & ~(size_t)15;
		offsets[i] = off;
		off += t->segs[i].filesz;
	}
	*size = off;
	buf = calloc(1, off);
	assert_non_null(buf);

	Elf64_Ehdr eh = {
		.e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
		.e_entry = t->entry, .e_phoff = sizeof(Elf64_Ehdr), .e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr), .e_phnum = (Elf64_Half)t->nr,
	};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(buf, &eh, sizeof(eh));
	for (unsigned int i = 0; i < t->nr; i++) {
		const struct tseg *s = &t->segs[i];
		Elf64_Phdr ph = {
			.p_type = s->type, .p_flags = PF_R | PF_X, .p_offset = offsets[i],
			.p_vaddr = s->vaddr, .p_paddr = s->paddr, .p_filesz = s->filesz,
			.p_memsz = s->memsz, .p_align = s->align ? s->align : 4,
		};
		memcpy(buf + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
		if (s->filesz)
			memcpy(buf + offsets[i], s->data, s->filesz);
	}
	return buf;
}

static Elf64_Phdr elf_get_phdr(const uint8_t *elf, unsigned int i)
{
	Elf64_Phdr ph;

	memcpy(&ph, elf + sizeof(Elf64_Ehdr) + i * sizeof(ph), sizeof(ph));
	return ph;
}

static void elf_set_phdr(uint8_t *elf, unsigned int i, const Elf64_Phdr *ph)
{
	memcpy(elf + sizeof(Elf64_Ehdr) + i * sizeof(*ph), ph, sizeof(*ph));
}

static void elf_patch_ehdr(uint8_t *elf, void (*fn)(Elf64_Ehdr *))
{
	Elf64_Ehdr eh;

	memcpy(&eh, elf, sizeof(eh));
	fn(&eh);
	memcpy(elf, &eh, sizeof(eh));
}

/* A GNU note (to be skipped) then the Xen PVH entry note. */
static size_t make_notes(uint8_t *buf, uint32_t xen_namesz, uint32_t descsz, uint64_t entry)
{
	size_t n = 0;
	Elf64_Nhdr gnu = { .n_namesz = 4, .n_descsz = 6, .n_type = 3 };
	Elf64_Nhdr xen = { .n_namesz = xen_namesz, .n_descsz = descsz,
			   .n_type = XEN_ELFNOTE_PHYS32_ENTRY };

	memcpy(buf + n, &gnu, sizeof(gnu));
	n += sizeof(gnu);
	memcpy(buf + n, "GNU", 4);
	n += 4;
	memcpy(buf + n, "abcdef\0\0", 8);	/* 6 bytes padded to 8 */
	n += 8;
	memcpy(buf + n, &xen, sizeof(xen));
	n += sizeof(xen);
	memcpy(buf + n, "Xen", 4);
	n += 4;
	memcpy(buf + n, &entry, 8);
	n += (descsz + 3) & ~3U;
	return n;
}

/* The standard test kernel: PVH note, one PT_LOAD at 16 MiB with a zeroed tail. */
#define TELF_PADDR	0x1000000ULL
#define TELF_VADDR	0xffffffff81000000ULL
#define TELF_FILESZ	0x600ULL
#define TELF_MEMSZ	0x1000ULL
#define TELF_PVH_ENTRY	0x1000100ULL

static uint8_t telf_text[TELF_FILESZ];
static uint8_t telf_notes[64];

static struct telf telf_standard(bool pvh)
{
	struct telf t = { .entry = TELF_PADDR };
	size_t nlen = make_notes(telf_notes, 4, 4, TELF_PVH_ENTRY);

	fill_pattern(telf_text, sizeof(telf_text), 11);
	if (pvh)
		t.segs[t.nr++] = (struct tseg){ .type = PT_NOTE, .paddr = TELF_PADDR + 0x1800,
						.vaddr = TELF_VADDR + 0x1800, .memsz = nlen,
						.data = telf_notes, .filesz = nlen };
	t.segs[t.nr++] = (struct tseg){ .type = PT_LOAD, .paddr = TELF_PADDR, .vaddr = TELF_VADDR,
					.memsz = TELF_MEMSZ, .data = telf_text,
					.filesz = TELF_FILESZ, .align = 0x200000 };
	return t;
}

struct tbz {
	uint16_t version;
	uint16_t xloadflags;
	uint8_t setup_sects;
	uint8_t relocatable;
	uint8_t loadflags;
	uint32_t kernel_alignment;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	size_t pm_size;
	const uint8_t *payload;
	size_t payload_len;
};

#define TBZ_PAYLOAD_OFFSET 0x400

static struct tbz tbz_default(void)
{
	return (struct tbz){
		.version = 0x020f, .xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G,
		.setup_sects = 3, .relocatable = 1, .loadflags = LOADED_HIGH,
		.kernel_alignment = 0x200000, .pref_address = 0x1000000, .init_size = 0x800000,
		.cmdline_size = 2047, .initrd_addr_max = 0x7fffffff, .pm_size = 0x1000,
	};
}

static size_t tbz_pm_off(const struct tbz *b)
{
	return (size_t)((b->setup_sects ? b->setup_sects : 4) + 1) * 512;
}

static uint8_t *bz_build(const struct tbz *b, size_t *size)
{
	size_t pm_off = tbz_pm_off(b);
	size_t pm_size = b->pm_size;
	struct setup_header h = { 0 };
	uint8_t *buf;

	if (b->payload && pm_size < TBZ_PAYLOAD_OFFSET + b->payload_len + 0x100)
		pm_size = TBZ_PAYLOAD_OFFSET + b->payload_len + 0x100;
	*size = pm_off + pm_size;
	buf = calloc(1, *size);
	assert_non_null(buf);
	fill_pattern(buf, pm_off, 1);
	fill_pattern(buf + pm_off, pm_size, 5);

	h.setup_sects = b->setup_sects;
	h.syssize = (uint32_t)(pm_size / 16);
	h.boot_flag = 0xaa55;
	h.jump = 0x66eb;	/* jmp over the header: it ends at 0x202 + 0x66 */
	h.header = 0x53726448;
	h.version = b->version;
	h.loadflags = b->loadflags;
	h.heap_end_ptr = 0xde00;
	h.initrd_addr_max = b->initrd_addr_max;
	h.kernel_alignment = b->kernel_alignment;
	h.relocatable_kernel = b->relocatable;
	h.min_alignment = 21;
	h.xloadflags = b->xloadflags;
	h.cmdline_size = b->cmdline_size;
	h.pref_address = b->pref_address;
	h.init_size = b->init_size;
	h.setup_data = 0x12345678;	/* must not reach the guest */
	if (b->payload) {
		h.payload_offset = TBZ_PAYLOAD_OFFSET;
		h.payload_length = (uint32_t)b->payload_len;
		memcpy(buf + pm_off + TBZ_PAYLOAD_OFFSET, b->payload, b->payload_len);
	}
	memcpy(buf + 0x1f1, &h, sizeof(h));
	return buf;
}

static void bz_patch_hdr(uint8_t *bz, void (*fn)(struct setup_header *))
{
	struct setup_header h;

	memcpy(&h, bz + 0x1f1, sizeof(h));
	fn(&h);
	memcpy(bz + 0x1f1, &h, sizeof(h));
}

/* t built into the temp file name; its path. */
static const char *elf_file(const char *name, const struct telf *t)
{
	size_t size;
	uint8_t *elf = elf_build(t, &size);
	const char *path = write_file(name, elf, size);

	free(elf);
	return path;
}

static const char *bz_file(const char *name, const struct tbz *b)
{
	size_t size;
	uint8_t *bz = bz_build(b, &size);
	const char *path = write_file(name, bz, size);

	free(bz);
	return path;
}

/* ---- running boot_load ---- */

struct env {
	struct guest_mem mem;
	struct vm_config cfg;
	struct boot_plan plan;
};

static void env_init(struct env *e, uint64_t mem_size)
{
	memset(e, 0, sizeof(*e));
	assert_int_equal(guest_mem_init(&e->mem, mem_size, LAYOUT_MMIO_HOLE_START), 0);
	e->cfg = (struct vm_config){
		.cmdline = "console=ttyS0", .mem_size = mem_size, .nr_cpus = 1,
		.host_decompress = true,
	};
}

static void env_destroy(struct env *e)
{
	guest_mem_destroy(&e->mem);
}

static int run_load(struct env *e, const char *kernel)
{
	e->cfg.kernel_path = kernel;
	logs_reset();
	return boot_load(&e->mem, &e->cfg, LAYOUT_ACPI, &e->plan);
}

/* One error line, naming `file` (and containing `why` if given). */
static void expect_error(struct env *e, const char *kernel, const char *file, const char *why)
{
	int ret = run_load(e, kernel);

	if (ret != -1 || logs.errors != 1 || !strstr(logs.last_error, file) ||
	    (why && !strstr(logs.last_error, why)))
		fail_msg("expected one error naming '%s'%s%s; got ret %d, %d errors, last: %s",
			 file, why ? " with " : "", why ? why : "", ret, logs.errors,
			 logs.last_error);
}

static void expect_ok(struct env *e, const char *kernel)
{
	int ret = run_load(e, kernel);

	if (ret != 0 || logs.errors != 0)
		fail_msg("expected success; got ret %d, %d errors, last: %s", ret, logs.errors,
			 logs.last_error);
}

static struct boot_params read_zero_page(const struct env *e)
{
	struct boot_params bp;

	assert_int_equal(guest_mem_read(&e->mem, LAYOUT_ZERO_PAGE, &bp, sizeof(bp)), 0);
	return bp;
}

static const char *guest_cmdline(const struct env *e)
{
	return guest_mem_ptr(&e->mem, LAYOUT_CMDLINE, 1);
}

static void expect_e820(const struct boot_e820_entry *t, unsigned int n, uint64_t ram)
{
	uint64_t low = ram < 3 * GIB ? ram : 3 * GIB;
	struct boot_e820_entry want[6] = {
		{ 0, 0x9fc00, 1 },
		{ 0x9fc00, 0x100000 - 0x9fc00, 2 },
		{ 0x100000, low - 0x100000, 1 },
		{ 0xe0000000, 0x100000, 2 },		/* PCI ECAM */
		{ 0xfeffc000, 0x4000, 2 },
		{ 4 * GIB, ram > 3 * GIB ? ram - 3 * GIB : 0, 1 },
	};
	unsigned int nw = ram > 3 * GIB ? 6 : 5;

	assert_int_equal(n, nw);
	for (unsigned int i = 0; i < n; i++) {
		struct boot_e820_entry got;
		memcpy(&got, &t[i], sizeof(got));
		assert_int_equal(got.addr, want[i].addr);
		assert_int_equal(got.size, want[i].size);
		assert_int_equal(got.type, want[i].type);
	}
}

/* What a 64-bit boot finds in the zero page's header, whatever the kernel's form. */
static void expect_zero_page_header(const struct env *e)
{
	struct boot_params bp = read_zero_page(e);

	assert_int_equal(bp.hdr.header, 0x53726448);
	assert_int_equal(bp.hdr.boot_flag, 0xaa55);
	assert_int_equal(bp.hdr.version, 0x020f);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_int_equal(bp.acpi_rsdp_addr, LAYOUT_ACPI);
}

/*
 * kernel, the standard PVH kernel (an ELF or a bzImage payload), loads
 * through its PVH entry: its bytes in place and its tail zeroed over the
 * garbage put there first.
 */
static void expect_telf_pvh_loads(struct env *e, const char *kernel)
{
	memset(guest_mem_ptr(&e->mem, TELF_PADDR, TELF_MEMSZ), 0xcc, TELF_MEMSZ);
	expect_ok(e, kernel);
	assert_int_equal(e->plan.entry, BOOT_ENTRY_PVH);
	assert_int_equal(e->plan.entry_addr, TELF_PVH_ENTRY);
	assert_int_equal(e->plan.boot_data, LAYOUT_PVH_INFO);
	assert_int_equal(e->plan.kernel_start, TELF_PADDR);
	assert_int_equal(e->plan.kernel_end, TELF_PADDR + TELF_MEMSZ);
	const uint8_t *seg = guest_mem_ptr(&e->mem, TELF_PADDR, TELF_MEMSZ);
	assert_memory_equal(seg, telf_text, TELF_FILESZ);
	for (uint64_t i = TELF_FILESZ; i < TELF_MEMSZ; i++)
		assert_int_equal(seg[i], 0);
}

/* A command line of max bytes reaches the guest; one byte more is refused, naming file. */
static void expect_cmdline_limit(struct env *e, const char *kernel, const char *file, size_t max)
{
	char *line = malloc(max + 2), why[128];

	assert_non_null(line);
	memset(line, 'x', max);
	line[max] = 0;
	e->cfg.cmdline = line;
	expect_ok(e, kernel);
	assert_int_equal(strlen(guest_cmdline(e)), max);
	line[max] = 'y';
	line[max + 1] = 0;
	snprintf(why, sizeof(why), "command line is %zu bytes; this kernel takes at most %zu",
		 max + 1, max);
	expect_error(e, kernel, file, why);
	e->cfg.cmdline = "console=ttyS0";
	free(line);
}

enum cut { CUT_FAILS, CUT_LOADS, CUT_EITHER };

/* kernel cut to len bytes: loads cleanly, or fails with one error naming file. */
static void expect_cut(struct env *e, const char *kernel, size_t len, const char *file,
		       enum cut want)
{
	assert_int_equal(truncate(kernel, (off_t)len), 0);
	int ret = run_load(e, kernel);
	bool loaded = ret == 0 && logs.errors == 0;
	bool failed = ret == -1 && logs.errors == 1 && strstr(logs.last_error, file);

	if (want == CUT_LOADS ? !loaded : want == CUT_FAILS ? !failed : !loaded && !failed)
		fail_msg("%s cut to %zu bytes: ret %d, %d errors: %s", file, len, ret, logs.errors,
			 logs.last_error);
}

/* A sparse file of size bytes. */
static void make_sparse(const char *path, uint64_t size)
{
	helper_write_file(path, NULL, 0, 0644);
	assert_int_equal(truncate(path, (off_t)size), 0);
}

/* ---- setup/teardown ---- */

static int group_setup(void **state)
{
	tmpdir = helper_tmpdir("test-loader");
	log_set_sink(helper_log_sink, &logs);
	return 0;
}

static int group_teardown(void **state)
{
	log_set_sink(NULL, NULL);
	return helper_tmpdir_remove(tmpdir);
}

/* ---- format detection ---- */

static void test_not_a_kernel(void **state)
{
	struct env e;
	uint8_t junk[4096];

	env_init(&e, 64 * MIB);
	fill_pattern(junk, sizeof(junk), 3);
	expect_error(&e, write_file("junk", junk, sizeof(junk)), "junk",
		     "not a bzImage or an ELF vmlinux");
	expect_error(&e, write_file("empty", NULL, 0), "empty", "not a bzImage or an ELF vmlinux");
	/* "HdrS" one byte off. */
	memcpy(junk + 0x203, "HdrS", 4);
	expect_error(&e, write_file("offby1", junk, sizeof(junk)), "offby1",
		     "not a bzImage or an ELF vmlinux");
	/* A 32-bit ELF. */
	junk[0] = 0x7f, junk[1] = 'E', junk[2] = 'L', junk[3] = 'F', junk[4] = ELFCLASS32;
	expect_error(&e, write_file("elf32", junk, sizeof(junk)), "elf32", "64-bit");
	expect_error(&e, tmp_path("does-not-exist"), "does-not-exist", NULL);
	env_destroy(&e);
}

/* ---- bzImage ---- */

static void test_bzimage_ok(void **state)
{
	struct env e;
	struct tbz b = tbz_default();
	size_t size;
	uint8_t *bz = bz_build(&b, &size);
	const char *path = write_file("bz-ok", bz, size);

	env_init(&e, 512 * MIB);
	e.cfg.cmdline = "console=ttyS0 panic=-1";
	expect_ok(&e, path);
	assert_int_equal(e.plan.entry, BOOT_ENTRY_LINUX64);
	assert_int_equal(e.plan.entry_addr, 0x1000200);
	assert_int_equal(e.plan.boot_data, LAYOUT_ZERO_PAGE);
	assert_int_equal(e.plan.kernel_start, 0x1000000);
	assert_int_equal(e.plan.kernel_end, 0x1000000 + 0x800000);
	assert_int_equal(e.plan.initrd_addr, 0);
	assert_non_null(strstr(e.plan.desc, "bzImage (protocol 2.15)"));
	/* The protected-mode part landed at pref_address. */
	assert_memory_equal(guest_mem_ptr(&e.mem, 0x1000000, b.pm_size), bz + tbz_pm_off(&b),
			    b.pm_size);
	assert_string_equal(guest_cmdline(&e), "console=ttyS0 panic=-1");

	expect_zero_page_header(&e);
	struct boot_params bp = read_zero_page(&e);
	assert_int_equal(bp.hdr.code32_start, 0x1000000);
	assert_int_equal(bp.ext_cmd_line_ptr, 0);
	assert_int_equal(bp.hdr.ramdisk_image, 0);
	assert_int_equal(bp.hdr.ramdisk_size, 0);
	assert_true(bp.hdr.loadflags & LOADED_HIGH);
	assert_int_equal(bp.hdr.setup_data, 0);
	assert_int_equal(bp.hdr.heap_end_ptr, 0xde00);	/* the rest of the file's header */
	assert_int_equal(bp.hdr.init_size, 0x800000);
	assert_int_equal(bp.sentinel, 0);
	expect_e820(bp.e820_table, bp.e820_entries, 512 * MIB);
	free(bz);
	env_destroy(&e);
}

static void test_bzimage_load_address(void **state)
{
	struct env e;
	struct tbz b = tbz_default();
	size_t size;
	uint8_t *bz;

	env_init(&e, 64 * MIB);
	/* Relocatable, no pref_address: 1 MiB aligned up to kernel_alignment. */
	b.pref_address = 0;
	expect_ok(&e, bz_file("bz-reloc", &b));
	assert_int_equal(e.plan.kernel_start, 0x200000);
	assert_int_equal(e.plan.entry_addr, 0x200200);

	/* Not relocatable, no pref_address: 1 MiB. */
	b.relocatable = 0;
	expect_ok(&e, bz_file("bz-fixed", &b));
	assert_int_equal(e.plan.kernel_start, 0x100000);
	assert_int_equal(e.plan.entry_addr, 0x100200);

	/* setup_sects 0 means 4. */
	b = tbz_default();
	b.setup_sects = 0;
	bz = bz_build(&b, &size);
	expect_ok(&e, write_file("bz-sects0", bz, size));
	assert_memory_equal(guest_mem_ptr(&e.mem, 0x1000000, b.pm_size), bz + 5 * 512, b.pm_size);
	free(bz);

	/* Protocol 2.12 has no acpi_rsdp_addr. */
	b = tbz_default();
	b.version = 0x020c;
	expect_ok(&e, bz_file("bz-212", &b));
	assert_int_equal(read_zero_page(&e).acpi_rsdp_addr, 0);
	env_destroy(&e);
}

static void patch_v210(struct setup_header *h) { h->version = 0x020a; }
static void patch_no64(struct setup_header *h) { h->xloadflags = 0; }
static void patch_sects255(struct setup_header *h) { h->setup_sects = 255; }
static void patch_payload_off(struct setup_header *h) { h->payload_offset = 0xfffffff0; h->payload_length = 0x20; }
static void patch_payload_len(struct setup_header *h) { h->payload_offset = 0x10; h->payload_length = 0x100000; }
static void patch_init_huge(struct setup_header *h) { h->init_size = 0xffffffff; }
static void patch_pref_far(struct setup_header *h) { h->pref_address = 0x40000000; }
static void patch_pref_wrap(struct setup_header *h) { h->pref_address = 0xffffffffffe00000ULL; }
static void patch_pref_wrap_fixed(struct setup_header *h)
{
	h->relocatable_kernel = 0;
	h->pref_address = 0xfffffffffffff000ULL;
}
static void patch_pref_low(struct setup_header *h) { h->relocatable_kernel = 0; h->pref_address = 0x8000; }
static void patch_align(struct setup_header *h) { h->kernel_alignment = 0x300000; }
static void patch_short_hdr(struct setup_header *h) { h->jump = 0x40eb; }

static void test_bzimage_rejects(void **state)
{
	static const struct {
		const char *name;
		void (*patch)(struct setup_header *);
		const char *why;
	} cases[] = {
		{ "bz-210", patch_v210, "boot protocol 2.10 is too old: bootvm needs 2.12 or later "
					"with a 64-bit entry point" },
		{ "bz-32bit", patch_no64, "has no 64-bit entry point (32-bit only kernel)" },
		{ "bz-sects255", patch_sects255, "truncated" },
		{ "bz-payload-off", patch_payload_off, "payload" },
		{ "bz-payload-len", patch_payload_len, "payload" },
		{ "bz-init-huge", patch_init_huge, "use a larger --memory" },
		{ "bz-pref-far", patch_pref_far, "0x40000000" },
		{ "bz-pref-wrap", patch_pref_wrap, NULL },
		{ "bz-pref-wrap-fixed", patch_pref_wrap_fixed, NULL },
		{ "bz-pref-low", patch_pref_low, NULL },
		{ "bz-align", patch_align, "kernel_alignment" },
		{ "bz-short-hdr", patch_short_hdr, "setup header" },
	};
	struct env e;
	struct tbz b = tbz_default();
	size_t size;

	env_init(&e, 64 * MIB);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *bz = bz_build(&b, &size);
		bz_patch_hdr(bz, cases[i].patch);
		/* The payload fields matter only when there is a payload to look at. */
		expect_error(&e, write_file(cases[i].name, bz, size), cases[i].name, cases[i].why);
		free(bz);
	}
	env_destroy(&e);
}

static void test_bzimage_truncated(void **state)
{
	struct env e;
	struct tbz b = tbz_default();
	size_t size;
	uint8_t *bz = bz_build(&b, &size);
	size_t min_ok = tbz_pm_off(&b) + 0x201;
	const char *path = write_file("bz-trunc", bz, size);

	free(bz);
	env_init(&e, 64 * MIB);
	/* Longest first, so that truncate() can cut the one file down. */
	for (size_t len = size + 1; len-- > 0;)
		expect_cut(&e, path, len, "bz-trunc", len < min_ok ? CUT_FAILS : CUT_LOADS);
	env_destroy(&e);
}

static void test_bzimage_cmdline(void **state)
{
	struct env e;
	struct tbz b = tbz_default();
	char line[LAYOUT_CMDLINE_MAX + 16];

	env_init(&e, 64 * MIB);
	/* cmdline_size excludes the NUL (boot.rst). */
	b.cmdline_size = 100;
	expect_cmdline_limit(&e, bz_file("bz-cmdline", &b), "bz-cmdline", 100);

	/* A huge cmdline_size is still bounded by the command line's slot. */
	b.cmdline_size = 0xffffffff;
	memset(line, 'c', sizeof(line) - 1);
	line[sizeof(line) - 1] = 0;
	e.cfg.cmdline = line;
	expect_error(&e, bz_file("bz-cmdline-huge", &b), "bz-cmdline-huge", "command line is");
	env_destroy(&e);
}

/* ---- initrd ---- */

static void test_initrd_placement(void **state)
{
	static const uint64_t sizes[] = { 512 * MIB, 3 * GIB, 8 * GIB };
	uint8_t data[40000];
	struct tbz b = tbz_default();
	const char *kernel = bz_file("bz-initrd", &b);
	const char *initrd;

	fill_pattern(data, sizeof(data), 99);
	initrd = write_file("initrd", data, sizeof(data));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct env e;
		uint64_t low = sizes[i] < 3 * GIB ? sizes[i] : 3 * GIB;

		env_init(&e, sizes[i]);
		e.cfg.initrd_path = initrd;
		expect_ok(&e, kernel);
		/* At the top of RAM and of initrd_addr_max (2 GiB here), page-aligned. */
		uint64_t top = low < 2 * GIB ? low : 2 * GIB;
		assert_int_equal(e.plan.initrd_addr, (top - sizeof(data)) & ~0xfffULL);
		assert_int_equal(e.plan.initrd_size, sizeof(data));
		assert_memory_equal(guest_mem_ptr(&e.mem, e.plan.initrd_addr, sizeof(data)), data,
				    sizeof(data));
		struct boot_params bp = read_zero_page(&e);
		assert_int_equal(bp.hdr.ramdisk_image, e.plan.initrd_addr);
		assert_int_equal(bp.hdr.ramdisk_size, sizeof(data));
		assert_int_equal(bp.ext_ramdisk_image, 0);
		assert_int_equal(bp.ext_ramdisk_size, 0);
		expect_e820(bp.e820_table, bp.e820_entries, sizes[i]);
		env_destroy(&e);
	}
}

static void test_initrd_rejects(void **state)
{
	struct env e;
	struct tbz b = tbz_default();
	const char *kernel = bz_file("bz-initrd2", &b);
	const char *big = tmp_path("initrd-big");

	env_init(&e, 64 * MIB);
	/* Larger than RAM. */
	make_sparse(big, 100 * MIB);
	e.cfg.initrd_path = big;
	expect_error(&e, kernel, "initrd-big", "does not fit in guest RAM with the kernel");
	assert_non_null(strstr(logs.last_error, "use a larger --memory"));

	/* Fits in RAM, but not above the kernel's init_size (16 + 8 MiB of 64). */
	make_sparse(big, 41 * MIB);
	expect_error(&e, kernel, "initrd-big", "does not fit");
	/* 40 MiB fits exactly. */
	make_sparse(big, 40 * MIB);
	expect_ok(&e, kernel);
	assert_int_equal(e.plan.initrd_addr, 24 * MIB);

	e.cfg.initrd_path = write_file("initrd-empty", NULL, 0);
	expect_error(&e, kernel, "initrd-empty", "empty");
	e.cfg.initrd_path = tmp_path("initrd-missing");
	expect_error(&e, kernel, "initrd-missing", NULL);
	e.cfg.initrd_path = tmpdir;
	expect_error(&e, kernel, tmpdir, "not a regular file");
	env_destroy(&e);
}

/*
 * A FIFO as the kernel or the initrd is refused at once: open() must not wait
 * for a writer (it did, for ever, and SIGTERM did not end it). The alarm
 * turns such a hang into a failure here.
 */
static void test_not_regular_files(void **state)
{
	struct env e;
	struct tbz b = tbz_default();
	const char *kernel = bz_file("bz-fifo", &b);
	const char *fifo = tmp_path("fifo");

	assert_int_equal(mkfifo(fifo, 0600), 0);
	env_init(&e, 64 * MIB);
	alarm(30);
	expect_error(&e, fifo, "fifo", "kernel '");
	assert_non_null(strstr(logs.last_error, "is not a regular file"));
	e.cfg.initrd_path = fifo;
	expect_error(&e, kernel, "fifo", "initrd '");
	assert_non_null(strstr(logs.last_error, "is not a regular file"));
	/* A device: refused, never mapped or read. */
	expect_error(&e, "/dev/zero", "/dev/zero", "kernel '/dev/zero' is not a regular file");
	e.cfg.initrd_path = "/dev/zero";
	expect_error(&e, kernel, "/dev/zero", "initrd '/dev/zero' is not a regular file");
	alarm(0);
	assert_int_equal(unlink(fifo), 0);
	env_destroy(&e);
}

/* ---- ELF ---- */

static void test_elf_pvh(void **state)
{
	struct env e;
	struct telf t = telf_standard(true);
	const char *path = elf_file("vmlinux-pvh", &t);
	uint8_t initrd[5000];

	fill_pattern(initrd, sizeof(initrd), 42);
	env_init(&e, 512 * MIB);
	e.cfg.initrd_path = write_file("initrd-pvh", initrd, sizeof(initrd));
	expect_telf_pvh_loads(&e, path);
	assert_string_equal(e.plan.desc, "ELF vmlinux, PVH entry at 0x1000100");

	/* ELF/PVH: the initrd goes to the top of low RAM. */
	assert_int_equal(e.plan.initrd_addr, (512 * MIB - sizeof(initrd)) & ~0xfffULL);
	assert_memory_equal(guest_mem_ptr(&e.mem, e.plan.initrd_addr, sizeof(initrd)), initrd,
			    sizeof(initrd));

	struct hvm_start_info si;
	assert_int_equal(guest_mem_read(&e.mem, LAYOUT_PVH_INFO, &si, sizeof(si)), 0);
	assert_int_equal(si.magic, 0x336ec578);
	assert_int_equal(si.version, 1);
	assert_int_equal(si.flags, 0);
	assert_int_equal(si.cmdline_paddr, LAYOUT_CMDLINE);
	assert_int_equal(si.rsdp_paddr, LAYOUT_ACPI);
	assert_int_equal(si.nr_modules, 1);
	struct hvm_modlist_entry mod;
	assert_int_equal(guest_mem_read(&e.mem, si.modlist_paddr, &mod, sizeof(mod)), 0);
	assert_int_equal(mod.paddr, e.plan.initrd_addr);
	assert_int_equal(mod.size, sizeof(initrd));
	assert_int_equal(mod.cmdline_paddr, 0);
	/* Both start info and its tables sit below the zero page. */
	assert_true(si.modlist_paddr >= LAYOUT_PVH_INFO + sizeof(si));
	assert_true(si.memmap_paddr + si.memmap_entries * sizeof(struct hvm_memmap_table_entry) <=
		    LAYOUT_ZERO_PAGE);
	assert_int_equal(si.memmap_entries, 5);
	struct hvm_memmap_table_entry mm[5];
	assert_int_equal(guest_mem_read(&e.mem, si.memmap_paddr, mm, sizeof(mm)), 0);
	assert_int_equal(mm[2].addr, 0x100000);
	assert_int_equal(mm[2].size, 511 * MIB);
	assert_int_equal(mm[2].type, 1);
	assert_int_equal(mm[3].addr, LAYOUT_PCI_ECAM);
	assert_int_equal(mm[3].type, 2);
	assert_int_equal(mm[4].addr, 0xfeffc000);
	assert_int_equal(mm[4].type, 2);
	assert_string_equal(guest_cmdline(&e), "console=ttyS0");

	/* Without an initrd: no modules. */
	e.cfg.initrd_path = NULL;
	expect_ok(&e, path);
	assert_int_equal(guest_mem_read(&e.mem, LAYOUT_PVH_INFO, &si, sizeof(si)), 0);
	assert_int_equal(si.nr_modules, 0);
	assert_int_equal(si.modlist_paddr, 0);
	env_destroy(&e);
}

static void test_elf_linux64(void **state)
{
	struct env e;
	struct telf t = telf_standard(false);

	/* A virtual e_entry is converted through its segment. */
	t.entry = TELF_VADDR + 0x80;
	env_init(&e, 256 * MIB);
	expect_ok(&e, elf_file("vmlinux-64", &t));
	assert_int_equal(e.plan.entry, BOOT_ENTRY_LINUX64);
	assert_int_equal(e.plan.entry_addr, TELF_PADDR + 0x80);
	assert_int_equal(e.plan.boot_data, LAYOUT_ZERO_PAGE);
	expect_zero_page_header(&e);
	struct boot_params bp = read_zero_page(&e);
	expect_e820(bp.e820_table, bp.e820_entries, 256 * MIB);

	/* A physical e_entry stays. */
	t.entry = TELF_PADDR + 0x40;
	expect_ok(&e, elf_file("vmlinux-64p", &t));
	assert_int_equal(e.plan.entry_addr, TELF_PADDR + 0x40);

	/* An e_entry in no segment. */
	t.entry = 0x5000000;
	expect_error(&e, elf_file("vmlinux-noentry", &t), "vmlinux-noentry", "entry");
	env_destroy(&e);
}

static void ehdr_phnum_huge(Elf64_Ehdr *h) { h->e_phnum = 0xffff; }
static void ehdr_phnum_zero(Elf64_Ehdr *h) { h->e_phnum = 0; }
static void ehdr_phoff_wrap(Elf64_Ehdr *h) { h->e_phoff = 0xffffffffffffffc0ULL; }
static void ehdr_phoff_past(Elf64_Ehdr *h) { h->e_phoff = 0x100000; }
static void ehdr_phentsize(Elf64_Ehdr *h) { h->e_phentsize = 32; }
static void ehdr_machine(Elf64_Ehdr *h) { h->e_machine = EM_386; }
static void ehdr_bigendian(Elf64_Ehdr *h) { h->e_ident[EI_DATA] = ELFDATA2MSB; }

static void test_elf_rejects_header(void **state)
{
	static const struct {
		const char *name;
		void (*patch)(Elf64_Ehdr *);
		const char *why;
	} cases[] = {
		{ "elf-phnum-huge", ehdr_phnum_huge, "program headers" },
		{ "elf-phnum-zero", ehdr_phnum_zero, "program headers" },
		{ "elf-phoff-wrap", ehdr_phoff_wrap, "program headers" },
		{ "elf-phoff-past", ehdr_phoff_past, "program headers" },
		{ "elf-phentsize", ehdr_phentsize, "program header" },
		{ "elf-machine", ehdr_machine, "x86-64" },
		{ "elf-bigendian", ehdr_bigendian, "little-endian" },
	};
	struct env e;
	struct telf t = telf_standard(true);
	size_t size;

	env_init(&e, 64 * MIB);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *elf = elf_build(&t, &size);
		elf_patch_ehdr(elf, cases[i].patch);
		expect_error(&e, write_file(cases[i].name, elf, size), cases[i].name, cases[i].why);
		free(elf);
	}
	env_destroy(&e);
}

enum seg_bug {
	SEG_OUTSIDE_RAM, SEG_LOW_MEMORY, SEG_OFFSET_PAST, SEG_FILESZ_GT_MEMSZ, SEG_WRAP,
	SEG_IN_HOLE, SEG_ABOVE_4G, SEG_FILESZ_WRAP, SEG_NONE_LOADABLE,
};

static void test_elf_rejects_segments(void **state)
{
	static const struct {
		const char *name;
		enum seg_bug bug;
		uint64_t mem;
		const char *why;
	} cases[] = {
		{ "elf-seg-outside", SEG_OUTSIDE_RAM, 64 * MIB, "use a larger --memory" },
		{ "elf-seg-low", SEG_LOW_MEMORY, 64 * MIB, "outside the guest RAM a kernel may use" },
		{ "elf-seg-offset", SEG_OFFSET_PAST, 64 * MIB, "lies outside" },
		{ "elf-seg-filesz", SEG_FILESZ_GT_MEMSZ, 64 * MIB, "more bytes in the file" },
		{ "elf-seg-wrap", SEG_WRAP, 64 * MIB, "outside the guest RAM" },
		/* High RAM exists in these, yet a kernel may not go there. */
		{ "elf-seg-hole", SEG_IN_HOLE, 8 * GIB, "outside the guest RAM" },
		{ "elf-seg-4g", SEG_ABOVE_4G, 8 * GIB, "outside the guest RAM" },
		{ "elf-seg-filesz-wrap", SEG_FILESZ_WRAP, 64 * MIB, "lies outside" },
		{ "elf-seg-none", SEG_NONE_LOADABLE, 64 * MIB, "no loadable segments" },
	};
	struct telf t = telf_standard(true);
	size_t size;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct env e;
		uint8_t *elf = elf_build(&t, &size);
		Elf64_Phdr ph = elf_get_phdr(elf, 1);
		switch (cases[i].bug) {
		case SEG_OUTSIDE_RAM: ph.p_paddr = 0x10000000; break;
		case SEG_LOW_MEMORY: ph.p_paddr = 0x8000; break;
		case SEG_OFFSET_PAST: ph.p_offset = size + 1; break;
		case SEG_FILESZ_GT_MEMSZ: ph.p_memsz = ph.p_filesz - 1; break;
		case SEG_WRAP: ph.p_paddr = 0xfffffffffffff000ULL; break;
		case SEG_IN_HOLE: ph.p_paddr = 3 * GIB - 0x800; break;
		case SEG_ABOVE_4G: ph.p_paddr = 5 * GIB; break;
		case SEG_FILESZ_WRAP: ph.p_filesz = 0xffffffffffffff00ULL; ph.p_memsz = ~0ULL; break;
		case SEG_NONE_LOADABLE: ph.p_type = PT_GNU_STACK; break;
		}
		elf_set_phdr(elf, 1, &ph);
		env_init(&e, cases[i].mem);
		expect_error(&e, write_file(cases[i].name, elf, size), cases[i].name, cases[i].why);
		env_destroy(&e);
		free(elf);
	}
}

static void test_elf_rejects_notes(void **state)
{
	static const struct {
		const char *name;
		uint32_t namesz, descsz;
		uint64_t entry;
		size_t seg_len;		/* 0: the notes' own length */
		const char *why;	/* NULL: it loads */
	} cases[] = {
		{ "elf-note-desc2", 4, 2, TELF_PVH_ENTRY, 0, "2-byte value" },
		/* A name that runs far past the segment. */
		{ "elf-note-namesz", 0xfffffff0, 4, TELF_PVH_ENTRY, 0, "malformed ELF note" },
		/* A value size that wraps the arithmetic. */
		{ "elf-note-descsz", 4, 0xfffffffe, TELF_PVH_ENTRY, 36, "malformed ELF note" },
		/* An entry outside the kernel. */
		{ "elf-note-entry", 4, 8, 0x7000, 0, "PVH entry" },
		/* An 8-byte value is fine. */
		{ "elf-note-8", 4, 8, TELF_PVH_ENTRY + 4, 0, NULL },
	};
	struct env e;

	env_init(&e, 64 * MIB);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct telf t = telf_standard(true);
		size_t len = make_notes(telf_notes, cases[i].namesz, cases[i].descsz, cases[i].entry);

		t.segs[0].filesz = t.segs[0].memsz = cases[i].seg_len ? cases[i].seg_len : len;
		const char *path = elf_file(cases[i].name, &t);
		if (cases[i].why) {
			expect_error(&e, path, cases[i].name, cases[i].why);
			continue;
		}
		expect_ok(&e, path);
		assert_int_equal(e.plan.entry, BOOT_ENTRY_PVH);
		assert_int_equal(e.plan.entry_addr, cases[i].entry);
	}
	env_destroy(&e);
}

/*
 * Note segments may not bring more bytes than the file has: 65534 PT_NOTE
 * headers over the same 4 MiB of 12-byte notes took minutes to scan (hours
 * for a larger file). Two separate note segments, the PVH note in the
 * second, still load.
 */
static void test_elf_notes_overlap(void **state)
{
	enum { NR_PH = 65535 };
	const uint64_t notes_len = 4 * MIB;
	size_t notes_off = sizeof(Elf64_Ehdr) + NR_PH * sizeof(Elf64_Phdr);
	size_t size = notes_off + notes_len + TELF_FILESZ;
	uint8_t *f = calloc(1, size);
	struct telf t = telf_standard(false);
	struct env e;

	assert_non_null(f);
	t.nr = 1;
	size_t small;
	uint8_t *base = elf_build(&t, &small);
	memcpy(f, base, sizeof(Elf64_Ehdr));
	free(base);
	Elf64_Ehdr eh;
	memcpy(&eh, f, sizeof(eh));
	eh.e_phnum = NR_PH;
	memcpy(f, &eh, sizeof(eh));
	fill_pattern(f + notes_off + notes_len, TELF_FILESZ, 11);
	Elf64_Phdr load = { .p_type = PT_LOAD, .p_offset = notes_off + notes_len,
			    .p_vaddr = TELF_VADDR, .p_paddr = TELF_PADDR, .p_filesz = TELF_FILESZ,
			    .p_memsz = TELF_MEMSZ, .p_align = 0x200000 };
	elf_set_phdr(f, 0, &load);
	/* The notes: all zero, i.e. empty 12-byte notes of no interest. */
	for (unsigned int i = 1; i < NR_PH; i++) {
		Elf64_Phdr note = { .p_type = PT_NOTE, .p_offset = notes_off,
				    .p_filesz = notes_len, .p_memsz = notes_len, .p_align = 4 };
		elf_set_phdr(f, i, &note);
	}
	const char *path = write_file("elf-notes-overlap", f, size);

	env_init(&e, 64 * MIB);
	alarm(30);
	expect_error(&e, path, "elf-notes-overlap", "its note segments overlap: 8388608 bytes of notes up to segment 2");
	alarm(0);

	/* Two note segments side by side: the GNU note (24 bytes), then the Xen one. */
	size_t nlen = make_notes(telf_notes, 4, 4, TELF_PVH_ENTRY);
	memcpy(f + notes_off, telf_notes, nlen);
	Elf64_Phdr gnu = { .p_type = PT_NOTE, .p_offset = notes_off, .p_filesz = 24,
			   .p_memsz = 24, .p_align = 4 };
	Elf64_Phdr xen = { .p_type = PT_NOTE, .p_offset = notes_off + 24, .p_filesz = nlen - 24,
			   .p_memsz = nlen - 24, .p_align = 4 };
	elf_set_phdr(f, 1, &gnu);
	elf_set_phdr(f, 2, &xen);
	eh.e_phnum = 3;
	memcpy(f, &eh, sizeof(eh));
	path = write_file("elf-notes-two", f, size);
	expect_ok(&e, path);
	assert_int_equal(e.plan.entry, BOOT_ENTRY_PVH);
	assert_int_equal(e.plan.entry_addr, TELF_PVH_ENTRY);
	assert_memory_equal(guest_mem_ptr(&e.mem, TELF_PADDR, TELF_FILESZ), telf_text, TELF_FILESZ);
	env_destroy(&e);
	free(f);
}

static void test_elf_truncated(void **state)
{
	struct env e;
	struct telf t = telf_standard(true);
	size_t size;
	uint8_t *elf = elf_build(&t, &size);
	const char *path = write_file("elf-trunc", elf, size);

	free(elf);
	env_init(&e, 64 * MIB);
	expect_ok(&e, path);
	for (size_t len = size; len-- > 0;)
		expect_cut(&e, path, len, "elf-trunc", CUT_FAILS);
	env_destroy(&e);
}

static void test_elf_cmdline(void **state)
{
	struct env e;
	struct telf t = telf_standard(true);

	env_init(&e, 64 * MIB);
	expect_cmdline_limit(&e, elf_file("elf-cmdline", &t), "elf-cmdline", 2047);
	env_destroy(&e);
}

/* ---- E820 ---- */

static void test_e820(void **state)
{
	static const uint64_t sizes[] = { 8 * MIB, 512 * MIB, 3 * GIB, 3 * GIB + 4096, 8 * GIB };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct guest_mem m;
		struct e820_range r[E820_MAX_RANGES];
		struct boot_e820_entry t[E820_MAX_RANGES];

		assert_int_equal(guest_mem_init(&m, sizes[i], LAYOUT_MMIO_HOLE_START), 0);
		unsigned int n = e820_build(&m, r);
		for (unsigned int j = 0; j < n; j++) {
			t[j] = (struct boot_e820_entry){ r[j].addr, r[j].size, r[j].type };
			/* Sorted, not overlapping. */
			if (j)
				assert_true(r[j - 1].addr + r[j - 1].size <= r[j].addr);
		}
		expect_e820(t, n, sizes[i]);
		guest_mem_destroy(&m);
	}
}

/* ---- compressed payloads ---- */

struct fmt_case {
	const char *name;
	const char *cmd;	/* compresses the file named after it to stdout */
	bool size_append;	/* Linux appends the size; gzip has its own */
};

static const struct fmt_case fmt_cases[] = {
	{ "gzip", "gzip -n -9 -c", false },
	{ "lz4", "lz4 -q -l -9 -c", true },
	{ "zstd", "zstd -q -3 -c", true },
	{ "xz", "xz --check=crc32 --x86 --lzma2=dict=1MiB -c", true },
	{ "lzma", "lzma -c", true },
};

/* Compress data with a command line tool; NULL (the test skips) if it is missing. */
static uint8_t *compress_cli(const struct fmt_case *fc, const uint8_t *data, size_t size,
			     size_t *out_size)
{
	char in[256], out[256];
	uint8_t *buf;

	snprintf(in, sizeof(in), "%s", write_file("payload.in", data, size));
	snprintf(out, sizeof(out), "%s/payload.%s", tmpdir, fc->name);
	if (helper_shell("%s '%s' > '%s' 2>/dev/null", fc->cmd, in, out) != 0)
		return NULL;
	buf = helper_read_file(out, out_size);
	assert_non_null(buf);
	if (fc->size_append) {
		buf = realloc(buf, *out_size + 4);
		assert_non_null(buf);
		uint32_t le = (uint32_t)size;
		memcpy(buf + *out_size, &le, 4);
		*out_size += 4;
	}
	return buf;
}

static uint8_t *bz_with_payload(const uint8_t *payload, size_t len, size_t *size)
{
	struct tbz b = tbz_default();

	b.payload = payload;
	b.payload_len = len;
	return bz_build(&b, size);
}

/*
 * A bzImage in the temp file name whose payload is data compressed by fc
 * (*z_size bytes, if asked); its path, or NULL if fc's tool is missing.
 */
static const char *bz_payload_file(const char *name, const struct fmt_case *fc,
				   const uint8_t *data, size_t size, size_t *z_size)
{
	size_t zs, bz_size;
	uint8_t *z = compress_cli(fc, data, size, &zs);

	if (!z)
		return NULL;
	uint8_t *bz = bz_with_payload(z, zs, &bz_size);
	const char *path = write_file(name, bz, bz_size);

	free(bz);
	free(z);
	if (z_size)
		*z_size = zs;
	return path;
}

static void test_bzimage_host_decompress(void **state)
{
	struct telf t = telf_standard(true);
	size_t elf_size;
	uint8_t *elf = elf_build(&t, &elf_size);
	struct env e;

	env_init(&e, 256 * MIB);
	for (size_t i = 0; i < sizeof(fmt_cases) / sizeof(fmt_cases[0]); i++) {
		const struct fmt_case *fc = &fmt_cases[i];
		char name[64], want[128];
		struct stat st;

		snprintf(name, sizeof(name), "bz-%s", fc->name);
		const char *path = bz_payload_file(name, fc, elf, elf_size, NULL);
		if (!path) {
			print_message("# %s not available: format skipped\n", fc->name);
			continue;
		}
		expect_telf_pvh_loads(&e, path);
		snprintf(want, sizeof(want), "bzImage (protocol 2.15), %s payload decompressed on host",
			 fc->name);
		assert_non_null(strstr(e.plan.desc, want));
		assert_non_null(strstr(e.plan.desc, "PVH entry at 0x1000100"));

		/* --no-host-decompress: the bzImage's own 64-bit entry. */
		e.cfg.host_decompress = false;
		expect_ok(&e, path);
		assert_int_equal(e.plan.entry, BOOT_ENTRY_LINUX64);
		assert_int_equal(e.plan.entry_addr, 0x1000200);
		e.cfg.host_decompress = true;

		/* Every truncation of the payload region fails cleanly or still loads. */
		if (i == 0 || !strcmp(fc->name, "zstd")) {
			assert_int_equal(stat(path, &st), 0);
			for (size_t len = (size_t)st.st_size; len > 7;) {
				len -= 7;
				expect_cut(&e, path, len, name, CUT_EITHER);
			}
		}
	}
	free(elf);
	env_destroy(&e);
}

static void test_bzimage_payload_elf_linux64(void **state)
{
	struct telf t = telf_standard(false);
	size_t elf_size, z_size;
	uint8_t *elf;
	const char *path;
	struct env e;

	t.entry = TELF_PADDR + 0x10;
	elf = elf_build(&t, &elf_size);
	path = bz_payload_file("bz-zstd-nopvh", &fmt_cases[2], elf, elf_size, &z_size);
	free(elf);
	if (!path)
		skip();
	env_init(&e, 256 * MIB);
	expect_ok(&e, path);
	assert_int_equal(e.plan.entry, BOOT_ENTRY_LINUX64);
	assert_int_equal(e.plan.entry_addr, TELF_PADDR + 0x10);
	assert_int_equal(e.plan.boot_data, LAYOUT_ZERO_PAGE);
	assert_memory_equal(guest_mem_ptr(&e.mem, TELF_PADDR, TELF_FILESZ), telf_text, TELF_FILESZ);
	/* The zero page carries the bzImage's header. */
	expect_zero_page_header(&e);
	struct boot_params bp = read_zero_page(&e);
	assert_int_equal(bp.hdr.init_size, 0x800000);
	assert_int_equal(bp.hdr.payload_length, z_size);
	assert_non_null(strstr(e.plan.desc, "64-bit entry at 0x1000010"));
	env_destroy(&e);
}

static void test_bzimage_payload_rejects(void **state)
{
	struct telf t = telf_standard(true);
	size_t elf_size, bz_size, z_size;
	uint8_t *elf = elf_build(&t, &elf_size);
	const char *path;
	struct env e;

	env_init(&e, 64 * MIB);
	/* Corrupt data, caught by each format's check. */
	for (size_t i = 0; i < sizeof(fmt_cases) / sizeof(fmt_cases[0]); i++) {
		const struct fmt_case *fc = &fmt_cases[i];
		char name[64];
		uint8_t *z = compress_cli(fc, elf, elf_size, &z_size);

		if (!z || !strcmp(fc->name, "lz4") || !strcmp(fc->name, "lzma")) {
			free(z);	/* no checksum in these formats */
			continue;
		}
		/* The checksum or ISIZE sits just before the size trailer / at the end. */
		z[z_size - (fc->size_append ? 4 : 0) - 9] ^= 0x55;
		z[z_size / 2] ^= 0xff;
		uint8_t *bz = bz_with_payload(z, z_size, &bz_size);
		snprintf(name, sizeof(name), "bz-corrupt-%s", fc->name);
		expect_error(&e, write_file(name, bz, bz_size), name, fc->name);
		free(bz);
		free(z);
	}

	/* A payload that is not an ELF. */
	uint8_t text[3000];
	fill_pattern(text, sizeof(text), 9);
	path = bz_payload_file("bz-not-elf", &fmt_cases[0], text, sizeof(text), NULL);
	if (path)
		expect_error(&e, path, "bz-not-elf", "payload is not an ELF");

	/* A payload whose ELF is bad: the message says where it came from. */
	struct telf bad = telf_standard(true);
	size_t bad_size;
	bad.segs[1].paddr = 0x8000;
	uint8_t *bad_elf = elf_build(&bad, &bad_size);
	path = bz_payload_file("bz-bad-elf", &fmt_cases[0], bad_elf, bad_size, NULL);
	if (path)
		expect_error(&e, path, "bz-bad-elf", "gzip payload: segment 1");
	free(bad_elf);

	/* Larger than guest RAM (a 16 MiB guest; the ELF is ~20 MiB of zeros). */
	size_t big = 20 * MIB;
	uint8_t *zeros = calloc(1, big);
	assert_non_null(zeros);
	memcpy(zeros, elf, elf_size);
	path = bz_payload_file("bz-too-big", &fmt_cases[2], zeros, big, NULL);
	if (path) {
		struct env small;
		env_init(&small, 16 * MIB);
		expect_error(&small, path, "bz-too-big", "decompresses to more than 16 MiB");
		env_destroy(&small);
	}
	free(zeros);
	free(elf);
	env_destroy(&e);
}

static void test_bzimage_payload_fallback(void **state)
{
	static const struct {
		const char *name;
		const uint8_t magic[9];
		const char *fmt;
	} cases[] = {
		{ "bz-bzip2", { 'B', 'Z', 'h', '9', '1', 'A', 'Y', '&', 'S' }, "bzip2" },
		{ "bz-lzo", { 0x89, 'L', 'Z', 'O', 0x00, 0x0d, 0x0a, 0x1a, 0x0a }, "lzo" },
		{ "bz-unknown", { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, "unknown" },
	};
	struct env e;

	env_init(&e, 64 * MIB);
	log_set_level(LOG_INFO);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t payload[256];
		size_t bz_size;

		fill_pattern(payload, sizeof(payload), 77);
		memcpy(payload, cases[i].magic, sizeof(cases[i].magic));
		uint8_t *bz = bz_with_payload(payload, sizeof(payload), &bz_size);
		expect_ok(&e, write_file(cases[i].name, bz, bz_size));
		assert_int_equal(e.plan.entry, BOOT_ENTRY_LINUX64);
		assert_int_equal(e.plan.entry_addr, 0x1000200);
		assert_int_equal(logs.infos, 1);
		assert_non_null(strstr(logs.last_info, cases[i].name));
		assert_non_null(strstr(logs.last_info, cases[i].fmt));
		free(bz);
	}
	log_set_level(LOG_WARN);
	env_destroy(&e);
}

/* ---- the real test kernel ---- */

/* The PVH entry, found independently of the loader; 0 if none. */
static uint64_t find_pvh_note(const uint8_t *f, size_t size)
{
	Elf64_Ehdr eh;

	memcpy(&eh, f, sizeof(eh));
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, f + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_NOTE)
			continue;
		for (size_t off = ph.p_offset; off + 12 <= ph.p_offset + ph.p_filesz;) {
			Elf64_Nhdr nh;
			memcpy(&nh, f + off, sizeof(nh));
			const uint8_t *name = f + off + 12;
			const uint8_t *desc = name + ((nh.n_namesz + 3) & ~3U);
			if (nh.n_namesz == 4 && !memcmp(name, "Xen", 4) && nh.n_type == 18) {
				uint64_t v = 0;
				memcpy(&v, desc, nh.n_descsz);
				return v;
			}
			off = (size_t)(desc - f) + ((nh.n_descsz + 3) & ~3U);
		}
	}
	(void)size;
	return 0;
}

static void test_real_vmlinux(void **state)
{
	size_t size;
	uint8_t *f = helper_read_file(REAL_VMLINUX, &size);
	struct env e;

	if (!f) {
		print_message("# %s missing\n", REAL_VMLINUX);
		skip();
	}
	uint64_t pvh = find_pvh_note(f, size);
	assert_int_not_equal(pvh, 0);

	env_init(&e, 256 * MIB);
	e.cfg.cmdline = "console=ttyS0 reboot=a panic=-1 clearcpuid=cx16,xsave,popcnt,smap";
	expect_ok(&e, REAL_VMLINUX);
	assert_int_equal(e.plan.entry, BOOT_ENTRY_PVH);
	assert_int_equal(e.plan.entry_addr, pvh);
	assert_int_equal(e.plan.boot_data, LAYOUT_PVH_INFO);

	/* Every PT_LOAD landed, its tail zeroed. */
	Elf64_Ehdr eh;
	memcpy(&eh, f, sizeof(eh));
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, f + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD)
			continue;
		assert_true(ph.p_paddr >= e.plan.kernel_start);
		assert_true(ph.p_paddr + ph.p_memsz <= e.plan.kernel_end);
		const uint8_t *g = guest_mem_ptr(&e.mem, ph.p_paddr, ph.p_memsz);
		assert_non_null(g);
		assert_memory_equal(g, f + ph.p_offset, ph.p_filesz);
		for (uint64_t j = ph.p_filesz; j < ph.p_memsz; j += 4096)
			assert_int_equal(g[j], 0);
	}

	/* The same kernel as a zstd bzImage payload, decompressed on the host. */
	const char *path = bz_payload_file("bz-real-zstd", &fmt_cases[2], f, size, NULL);
	if (path) {
		struct env e2;
		env_init(&e2, 256 * MIB);
		expect_ok(&e2, path);
		assert_int_equal(e2.plan.entry, BOOT_ENTRY_PVH);
		assert_int_equal(e2.plan.entry_addr, pvh);
		assert_int_equal(e2.plan.kernel_start, e.plan.kernel_start);
		assert_int_equal(e2.plan.kernel_end, e.plan.kernel_end);
		assert_memory_equal(guest_mem_ptr(&e2.mem, e.plan.kernel_start, 1 * MIB),
				    guest_mem_ptr(&e.mem, e.plan.kernel_start, 1 * MIB), 1 * MIB);
		print_message("# %s\n", e2.plan.desc);
		env_destroy(&e2);
	}
	env_destroy(&e);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_a_kernel),
		cmocka_unit_test(test_bzimage_ok),
		cmocka_unit_test(test_bzimage_load_address),
		cmocka_unit_test(test_bzimage_rejects),
		cmocka_unit_test(test_bzimage_truncated),
		cmocka_unit_test(test_bzimage_cmdline),
		cmocka_unit_test(test_initrd_placement),
		cmocka_unit_test(test_initrd_rejects),
		cmocka_unit_test(test_not_regular_files),
		cmocka_unit_test(test_elf_pvh),
		cmocka_unit_test(test_elf_linux64),
		cmocka_unit_test(test_elf_rejects_header),
		cmocka_unit_test(test_elf_rejects_segments),
		cmocka_unit_test(test_elf_rejects_notes),
		cmocka_unit_test(test_elf_notes_overlap),
		cmocka_unit_test(test_elf_truncated),
		cmocka_unit_test(test_elf_cmdline),
		cmocka_unit_test(test_e820),
		cmocka_unit_test(test_bzimage_host_decompress),
		cmocka_unit_test(test_bzimage_payload_elf_linux64),
		cmocka_unit_test(test_bzimage_payload_rejects),
		cmocka_unit_test(test_bzimage_payload_fallback),
		cmocka_unit_test(test_real_vmlinux),
	};

	return cmocka_run_group_tests_name("loader", tests, group_setup, group_teardown);
}
