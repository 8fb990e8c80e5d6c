/*
 * Kernel loading. A loader reads the kernel (bzImage, or ELF vmlinux), the
 * initrd and the command line into guest memory, writes the boot structures
 * (zero page or hvm_start_info, E820 map), and describes how to enter it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct guest_mem;
struct vm_config;

enum boot_entry {
	BOOT_ENTRY_LINUX64,	/* 64-bit mode, paging on, rsi = zero page */
	BOOT_ENTRY_PVH,		/* 32-bit protected mode, paging off, ebx = hvm_start_info */
};

struct boot_plan {
	enum boot_entry entry;
	uint64_t entry_addr;	/* guest-physical rip */
	uint64_t boot_data;	/* zero page (LINUX64) or hvm_start_info (PVH) */
	uint64_t kernel_start;	/* guest range the kernel needs, init_size included */
	uint64_t kernel_end;
	uint64_t initrd_addr;	/* 0 when there is none */
	uint64_t initrd_size;
	char desc[160];		/* how it was booted, for -v and --stats */
};

/*
 * Load cfg->kernel_path, cfg->initrd_path and cfg->cmdline into mem and fill
 * plan. rsdp is the ACPI RSDP's guest address, passed to the kernel. On bad
 * input logs one line naming the file and the problem and returns -1.
 */
int boot_load(struct guest_mem *mem, const struct vm_config *cfg, uint64_t rsdp,
	      struct boot_plan *plan);

/* Registers, segments, GDT and (for LINUX64) page tables for the boot vCPU. */
int boot_setup_vcpu(int vcpu_fd, struct guest_mem *mem, const struct boot_plan *plan);
