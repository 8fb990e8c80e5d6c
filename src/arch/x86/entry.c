/*
 * The boot vCPU's state at the first instruction, per entry protocol:
 *  - LINUX64 (Documentation/arch/x86/boot.rst, "64-bit boot protocol"):
 *    long mode, identity-mapped paging, __BOOT_CS = 0x10, __BOOT_DS = 0x18,
 *    rsi = boot_params, interrupts off.
 *  - PVH (xen/include/public/arch-x86/hvm/start_info.h): 32-bit protected
 *    mode, paging off, flat 4 GiB segments, TR a 32-bit TSS, ebx = start_info.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "util/log.h"
#include "vmm/memory.h"

#define X86_CR0_PE	(1ULL << 0)
#define X86_CR0_ET	(1ULL << 4)
#define X86_CR0_NE	(1ULL << 5)
#define X86_CR0_PG	(1ULL << 31)
#define X86_CR4_PAE	(1ULL << 5)
#define EFER_LME	(1ULL << 8)
#define EFER_LMA	(1ULL << 10)

#define PTE_PRESENT	(1ULL << 0)
#define PTE_RW		(1ULL << 1)
#define PTE_PS		(1ULL << 7)

/* GDT slots; 0x10 and 0x18 are what the Linux boot protocol names. */
#define GDT_CODE64	2
#define GDT_DATA	3
#define GDT_TSS		4
#define GDT_CODE32	5
#define GDT_ENTRIES	6

#define GDT_ENTRY(flags, base, limit)                                   \
	((((uint64_t)(base) & 0xff000000ULL) << 32) |                   \
	 (((uint64_t)(flags) & 0xf0ffULL) << 40) |                      \
	 (((uint64_t)(limit) & 0x000f0000ULL) << 32) |                  \
	 (((uint64_t)(base) & 0x00ffffffULL) << 16) |                   \
	 ((uint64_t)(limit) & 0x0000ffffULL))

static const uint64_t boot_gdt[GDT_ENTRIES] = {
	[GDT_CODE64] = GDT_ENTRY(0xa09b, 0, 0xfffff),	/* 64-bit code, accessed */
	[GDT_DATA] = GDT_ENTRY(0xc093, 0, 0xfffff),	/* flat data, accessed */
	[GDT_TSS] = GDT_ENTRY(0x008b, 0, 0x67),		/* busy TSS */
	[GDT_CODE32] = GDT_ENTRY(0xc09b, 0, 0xfffff),	/* 32-bit code, accessed */
};

/* The descriptor above, as KVM wants it in a kvm_segment. */
static struct kvm_segment gdt_to_segment(unsigned int slot)
{
	uint64_t d = boot_gdt[slot];
	struct kvm_segment s = {
		.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24),
		.limit = (uint32_t)((d & 0xffff) | (((d >> 48) & 0xf) << 16)),
		.selector = (uint16_t)(slot * 8),
		.type = (d >> 40) & 0xf,
		.s = (d >> 44) & 1,
		.dpl = (d >> 45) & 3,
		.present = (d >> 47) & 1,
		.avl = (d >> 52) & 1,
		.l = (d >> 53) & 1,
		.db = (d >> 54) & 1,
		.g = (d >> 55) & 1,
	};
	if (s.g)
		s.limit = (s.limit << 12) | 0xfff;
	return s;
}

/* Identity map of the first 4 GiB with 2 MiB pages. */
static int write_page_tables(struct guest_mem *mem)
{
	uint64_t *pml4 = guest_mem_ptr(mem, LAYOUT_PML4, 4096);
	uint64_t *pdpt = guest_mem_ptr(mem, LAYOUT_PDPT, 4096);
	uint64_t *pd = guest_mem_ptr(mem, LAYOUT_PD, 4 * 4096);

	if (!pml4 || !pdpt || !pd)
		return -1;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | PTE_PRESENT | PTE_RW;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | PTE_PRESENT | PTE_RW;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | PTE_PRESENT | PTE_RW | PTE_PS;
	return 0;
}

int boot_setup_vcpu(int vcpu_fd, struct guest_mem *mem, const struct boot_plan *plan)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rflags = 0x2, .rsp = LAYOUT_BOOT_STACK };
	bool long_mode = plan->entry == BOOT_ENTRY_LINUX64;

	if (guest_mem_write(mem, LAYOUT_GDT, boot_gdt, sizeof(boot_gdt)) < 0 ||
	    (long_mode && write_page_tables(mem) < 0)) {
		log_error("guest memory too small for the boot page tables");
		return -1;
	}
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
		log_error("KVM_GET_SREGS: %s", strerror(errno));
		return -1;
	}

	struct kvm_segment data = gdt_to_segment(GDT_DATA);
	sregs.cs = gdt_to_segment(long_mode ? GDT_CODE64 : GDT_CODE32);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = gdt_to_segment(GDT_TSS);
	sregs.gdt.base = LAYOUT_GDT;
	sregs.gdt.limit = sizeof(boot_gdt) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;

	if (long_mode) {
		sregs.cr3 = LAYOUT_PML4;
		sregs.cr4 = X86_CR4_PAE;
		sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
		sregs.efer = EFER_LME | EFER_LMA;
		regs.rsi = plan->boot_data;
	} else {
		sregs.cr3 = 0;
		sregs.cr4 = 0;
		sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
		sregs.efer = 0;
		regs.rbx = plan->boot_data;
	}
	regs.rip = plan->entry_addr;

	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0) {
		log_error("KVM_SET_SREGS: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0) {
		log_error("KVM_SET_REGS: %s", strerror(errno));
		return -1;
	}
	return 0;
}
