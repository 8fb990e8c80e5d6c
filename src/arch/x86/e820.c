#include "arch/x86/e820.h"

#include "arch/x86/layout.h"
#include "vmm/memory.h"

/* LAYOUT_KVM_IDENTITY_MAP (1 page) then LAYOUT_KVM_TSS (3 pages). */
#define KVM_PRIVATE_END	(LAYOUT_KVM_TSS + 3 * 0x1000ULL)

unsigned int e820_build(const struct guest_mem *mem, struct e820_range *out)
{
	uint64_t low_end = guest_mem_low_end(mem);
	unsigned int n = 0;

	out[n++] = (struct e820_range){ 0, LAYOUT_EBDA, E820_TYPE_RAM };
	out[n++] = (struct e820_range){ LAYOUT_EBDA, LAYOUT_LOW_RESERVED_END - LAYOUT_EBDA,
					E820_TYPE_RESERVED };
	if (low_end > LAYOUT_LOW_RESERVED_END)
		out[n++] = (struct e820_range){ LAYOUT_LOW_RESERVED_END,
						low_end - LAYOUT_LOW_RESERVED_END, E820_TYPE_RAM };
	/* PCI ECAM: Linux trusts MCFG only for areas the firmware reserved. */
	out[n++] = (struct e820_range){ LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SIZE, E820_TYPE_RESERVED };
	/* KVM needs these pages for real-mode emulation on Intel; keep the guest off them. */
	out[n++] = (struct e820_range){ LAYOUT_KVM_IDENTITY_MAP,
					KVM_PRIVATE_END - LAYOUT_KVM_IDENTITY_MAP, E820_TYPE_RESERVED };
	for (unsigned int i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];
		if (r->gpa >= LAYOUT_MMIO_HOLE_END && r->size)
			out[n++] = (struct e820_range){ r->gpa, r->size, E820_TYPE_RAM };
	}
	return n;
}
