/*
 * Private to the kernel loaders (boot.c, bzimage.c, elf.c). A format parser
 * validates the whole kernel image and describes it in a struct
 * kernel_image without writing guest memory; boot_load() then places the
 * initrd, checks the command line and writes everything.
 */
#pragma once

#include <asm/bootparam.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86/boot.h"
#include "arch/x86/layout.h"

struct guest_mem;
struct vm_config;

/* x86 COMMAND_LINE_SIZE (2048) less the NUL: the limit without a setup header. */
#define LOADER_ELF_CMDLINE_MAX	2047

struct loader {
	struct guest_mem *mem;
	const struct vm_config *cfg;
	const char *path;	/* the kernel, for messages */
	uint64_t low_end;	/* end of RAM below the MMIO hole */
};

/* An ELF vmlinux that elf_parse() found sound. Points into the caller's buffer. */
struct elf_image {
	const uint8_t *data;
	size_t size;
	uint64_t start, end;	/* physical range of the PT_LOAD segments */
	bool entry_ok;		/* e_entry lies in a segment... */
	uint64_t entry;		/* ...at this physical address */
	bool has_pvh;		/* XEN_ELFNOTE_PHYS32_ENTRY found... */
	uint64_t pvh_entry;	/* ...with this address */
};

struct kernel_image {
	enum boot_entry entry;
	uint64_t entry_addr;
	uint64_t start, end;		/* guest range the kernel needs */
	uint64_t initrd_end_max;	/* the initrd must end at or below this */
	size_t cmdline_max;		/* longest command line, NUL excluded */

	/* LINUX64: the zero page gets this bzImage header, else a minimal one. */
	bool have_hdr;
	struct setup_header hdr;
	size_t hdr_len;

	/* What to copy: a flat image at blob_addr, or the segments of elf. */
	const uint8_t *blob;
	size_t blob_size;
	uint64_t blob_addr;
	bool is_elf;
	struct elf_image elf;

	void *owned;			/* a decompressed payload elf points into */
	char desc[sizeof(((struct boot_plan *)0)->desc)];
};

/*
 * Validate an ELF vmlinux. `what` starts every message after the kernel's
 * name ("" for the file itself, "zstd payload: " for a decompressed one).
 * Logs one line and returns -1 on bad input.
 */
int elf_parse(const struct loader *ld, const uint8_t *data, size_t size, const char *what,
	      struct elf_image *img);

/* Copy the segments of an image elf_parse() accepted and zero their tails. */
void elf_copy(const struct loader *ld, const struct elf_image *img);

/* Format parsers: fill k from the kernel file, or log one line and return -1. */
int elf_prepare(const struct loader *ld, const uint8_t *data, size_t size,
		struct kernel_image *k);
int bzimage_prepare(const struct loader *ld, const uint8_t *data, size_t size,
		    struct kernel_image *k);

/* a + b, or false if it overflows 64 bits. */
static inline bool loader_add(uint64_t a, uint64_t b, uint64_t *sum)
{
	return !__builtin_add_overflow(a, b, sum);
}

/* Whether [addr, addr + size) is RAM the kernel may use: from 1 MiB to low_end. */
static inline bool loader_range_ok(const struct loader *ld, uint64_t addr, uint64_t size)
{
	uint64_t end;

	return addr >= LAYOUT_KERNEL && loader_add(addr, size, &end) && end <= ld->low_end;
}
