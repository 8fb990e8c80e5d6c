/*
 * The PVH boot ABI: the structures a PVH kernel finds through ebx. Xen's
 * xen/include/public/arch-x86/hvm/start_info.h defines them only in a
 * comment (offsets and sizes); the _Static_asserts in pvh.c pin them down.
 */
#pragma once

#include <stdint.h>

struct guest_mem;

/* The ELF note naming the 32-bit entry point (xen/include/public/elfnote.h). */
#define XEN_ELFNOTE_PHYS32_ENTRY	18

#define XEN_HVM_START_MAGIC_VALUE	0x336ec578U	/* "xEn3" with the E's 0x80 bit set */

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;		/* 1: has the memory map fields */
	uint32_t flags;			/* SIF_xxx */
	uint32_t nr_modules;
	uint64_t modlist_paddr;		/* struct hvm_modlist_entry[nr_modules] */
	uint64_t cmdline_paddr;		/* NUL-terminated */
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;		/* struct hvm_memmap_table_entry[memmap_entries] */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;		/* 0: none */
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;			/* E820 types */
	uint32_t reserved;
};

/*
 * Write the start info, its memory map and module list (the initrd as module
 * 0 when initrd_size is non-zero) at LAYOUT_PVH_INFO. Returns its address,
 * or 0 if guest memory cannot hold it (not logged: low memory always exists).
 */
uint64_t pvh_write_start_info(struct guest_mem *mem, uint64_t cmdline_paddr, uint64_t rsdp,
			      uint64_t initrd_addr, uint64_t initrd_size);
