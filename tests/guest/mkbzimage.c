/*
 * mkbzimage: wrap a test guest ELF (linked at 1 MiB, startup_64 at +0x200)
 * in a Linux bzImage (boot protocol 2.15, Documentation/arch/x86/boot.rst):
 * a boot sector and one setup sector holding the setup header, then the
 * protected-mode part: the ELF's loadable image as a flat binary, optionally
 * a payload (a compressed kernel, for host-side decompression), a
 * kernel_info block, and Linux's trailing CRC32.
 *
 * Usage: mkbzimage [--name NAME] [--payload FILE [--size-append]] ELF OUTPUT
 *   --size-append  append the ELF's size as 4 bytes little-endian to the
 *                  payload, as Linux's size_append does for lz4/zstd/xz/lzma.
 */
#include <asm/bootparam.h>
#include <errno.h>
#include <linux/elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_ADDR	0x100000u
#define ENTRY64_OFFSET	0x200u
#define SETUP_SECTS	1
#define SETUP_SIZE	((SETUP_SECTS + 1) * 512)

static const char *prog = "mkbzimage";

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", prog);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(1);
}

struct buf {
	uint8_t *data;
	size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t len)
{
	if (len <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < len)
		cap *= 2;
	uint8_t *d = realloc(b->data, cap);
	if (!d)
		die("%s", "out of memory");
	memset(d + b->cap, 0, cap - b->cap);
	b->data = d;
	b->cap = cap;
}

static void buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, b->len + n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void buf_pad(struct buf *b, size_t align)
{
	size_t len = (b->len + align - 1) / align * align;

	buf_reserve(b, len);
	b->len = len;
}

static void buf_le32(struct buf *b, uint32_t v)
{
	uint8_t le[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	buf_append(b, le, 4);
}

static struct buf read_file(const char *path)
{
	struct buf b = { 0 };
	FILE *f = fopen(path, "rb");
	uint8_t chunk[65536];
	size_t n;

	if (!f)
		die("cannot open %s", path);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	if (ferror(f))
		die("cannot read %s", path);
	fclose(f);
	return b;
}

/* Linux's arch/x86/boot/tools/build.c CRC: CRC-32 (reflected), no final xor. */
static uint32_t crc32_linux(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffff;

	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
	}
	return crc;
}

/* The loadable image from LOAD_ADDR up as a flat binary; *mem_end = highest p_paddr + p_memsz. */
static struct buf flatten(const char *path, const struct buf *elf, uint64_t *mem_end)
{
	const Elf64_Ehdr *eh = (const void *)elf->data;
	struct buf flat = { 0 };

	if (elf->len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64)
		die("%s: not an x86-64 ELF", path);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > elf->len ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > elf->len - eh->e_phoff)
		die("%s: bad program headers", path);
	if (eh->e_entry != LOAD_ADDR + ENTRY64_OFFSET)
		die("%s: entry is not startup_64 at 1 MiB + 0x200", path);

	const Elf64_Phdr *ph = (const void *)(elf->data + eh->e_phoff);
	uint64_t lo = UINT64_MAX;
	*mem_end = 0;
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		if (ph[i].p_offset > elf->len || ph[i].p_filesz > elf->len - ph[i].p_offset ||
		    ph[i].p_filesz > ph[i].p_memsz || ph[i].p_paddr < LOAD_ADDR ||
		    ph[i].p_paddr + ph[i].p_memsz > 0x40000000)
			die("%s: bad PT_LOAD segment", path);
		if (ph[i].p_paddr < lo)
			lo = ph[i].p_paddr;
		if (ph[i].p_paddr + ph[i].p_memsz > *mem_end)
			*mem_end = ph[i].p_paddr + ph[i].p_memsz;
		size_t end = ph[i].p_paddr - LOAD_ADDR + ph[i].p_filesz;
		buf_reserve(&flat, end);
		memcpy(flat.data + (ph[i].p_paddr - LOAD_ADDR), elf->data + ph[i].p_offset, ph[i].p_filesz);
		if (end > flat.len)
			flat.len = end;
	}
	if (lo != LOAD_ADDR)
		die("%s: the image does not start at 1 MiB", path);
	return flat;
}

int main(int argc, char **argv)
{
	const char *name = "guest", *payload_path = NULL;
	int size_append = 0, i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--name") && i + 1 < argc)
			name = argv[++i];
		else if (!strcmp(argv[i], "--payload") && i + 1 < argc)
			payload_path = argv[++i];
		else if (!strcmp(argv[i], "--size-append"))
			size_append = 1;
		else
			die("unknown option %s", argv[i]);
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: %s [--name NAME] [--payload FILE [--size-append]] ELF OUTPUT\n", prog);
		return 2;
	}
	const char *elf_path = argv[i], *out_path = argv[i + 1];

	struct buf elf = read_file(elf_path);
	uint64_t mem_end;
	struct buf pm = flatten(elf_path, &elf, &mem_end);	/* the protected-mode part */
	uint32_t payload_offset = 0, payload_length = 0;

	if (payload_path) {
		struct buf payload = read_file(payload_path);
		buf_pad(&pm, 16);
		payload_offset = (uint32_t)pm.len;
		buf_append(&pm, payload.data, payload.len);
		if (size_append)
			buf_le32(&pm, (uint32_t)elf.len);
		payload_length = (uint32_t)(pm.len - payload_offset);
		free(payload.data);
	}

	/* kernel_info (boot protocol 2.15): "LToP", size, size_total, setup_type_max. */
	buf_pad(&pm, 4);
	uint32_t kernel_info_offset = (uint32_t)pm.len;
	buf_append(&pm, "LToP", 4);
	buf_le32(&pm, 16);
	buf_le32(&pm, 16);
	buf_le32(&pm, 0x80000000u | SETUP_ENUM_MAX);	/* SETUP_TYPE_MAX; its 1 << 31 is UB in C */
	/* Room for the CRC so that the part is whole paragraphs, as build.c does. */
	buf_reserve(&pm, (pm.len + 4 + 15) / 16 * 16);
	pm.len = (pm.len + 4 + 15) / 16 * 16 - 4;

	struct buf out = { 0 };
	buf_reserve(&out, SETUP_SIZE);
	out.len = SETUP_SIZE;
	struct setup_header *hdr = (void *)(out.data + 0x1f1);
	uint64_t init_size = mem_end - LOAD_ADDR;
	if (init_size < pm.len + 4)
		init_size = pm.len + 4;
	init_size = (init_size + 4095) & ~4095ull;

	/* After the header: a real-mode stub nobody should run, and the version string. */
	size_t stub = 0x1f1 + sizeof(*hdr);
	static const uint8_t halt[] = { 0xfa, 0xf4, 0xeb, 0xfd };	/* cli; hlt; jmp .-2 */
	memcpy(out.data + stub, halt, sizeof(halt));
	size_t version = stub + sizeof(halt);
	snprintf((char *)out.data + version, SETUP_SIZE - version, "bootvm test guest (%s)", name);

	hdr->setup_sects = SETUP_SECTS;
	hdr->syssize = (uint32_t)((pm.len + 4) / 16);
	hdr->vid_mode = 0xffff;
	hdr->boot_flag = 0xaa55;
	hdr->jump = (uint16_t)(0xeb | (stub - 0x202) << 8);
	hdr->header = 0x53726448;		/* "HdrS" */
	hdr->version = 0x020f;
	hdr->start_sys_seg = 0x1000;
	hdr->kernel_version = (uint16_t)(version - 0x200);
	hdr->loadflags = LOADED_HIGH;
	hdr->setup_move_size = 0x8000;
	hdr->code32_start = LOAD_ADDR;
	hdr->initrd_addr_max = 0x7fffffff;
	hdr->kernel_alignment = LOAD_ADDR;
	hdr->relocatable_kernel = 0;
	hdr->min_alignment = 12;
	hdr->xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
	hdr->cmdline_size = 2047;
	hdr->payload_offset = payload_offset;
	hdr->payload_length = payload_length;
	hdr->pref_address = LOAD_ADDR;
	hdr->init_size = (uint32_t)init_size;
	hdr->kernel_info_offset = kernel_info_offset;

	buf_append(&out, pm.data, pm.len);
	buf_le32(&out, crc32_linux(out.data, out.len));

	FILE *f = fopen(out_path, "wb");
	if (!f || fwrite(out.data, 1, out.len, f) != out.len || fclose(f))
		die("cannot write %s", out_path);
	free(out.data);
	free(pm.data);
	free(elf.data);
	return 0;
}
