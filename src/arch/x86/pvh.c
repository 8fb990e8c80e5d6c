#include "arch/x86/pvh.h"

#include <stddef.h>
#include <string.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "vmm/memory.h"

/* The offsets in start_info.h's comment. */
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info size");
_Static_assert(offsetof(struct hvm_start_info, nr_modules) == 12, "nr_modules");
_Static_assert(offsetof(struct hvm_start_info, modlist_paddr) == 16, "modlist_paddr");
_Static_assert(offsetof(struct hvm_start_info, cmdline_paddr) == 24, "cmdline_paddr");
_Static_assert(offsetof(struct hvm_start_info, rsdp_paddr) == 32, "rsdp_paddr");
_Static_assert(offsetof(struct hvm_start_info, memmap_paddr) == 40, "memmap_paddr");
_Static_assert(offsetof(struct hvm_start_info, memmap_entries) == 48, "memmap_entries");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry size");
_Static_assert(offsetof(struct hvm_modlist_entry, cmdline_paddr) == 16, "modlist cmdline");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry size");
_Static_assert(offsetof(struct hvm_memmap_table_entry, type) == 16, "memmap type");

/* One page at LAYOUT_PVH_INFO: the start info, then the module list, then the map. */
struct pvh_page {
	struct hvm_start_info info;
	uint8_t pad[8];
	struct hvm_modlist_entry modules[1];
	struct hvm_memmap_table_entry memmap[E820_MAX_RANGES];
};
_Static_assert(sizeof(struct pvh_page) <= LAYOUT_ZERO_PAGE - LAYOUT_PVH_INFO,
	       "PVH structures overlap the zero page");

uint64_t pvh_write_start_info(struct guest_mem *mem, uint64_t cmdline_paddr, uint64_t rsdp,
			      uint64_t initrd_addr, uint64_t initrd_size)
{
	struct pvh_page *pg = guest_mem_ptr(mem, LAYOUT_PVH_INFO, sizeof(*pg));
	struct e820_range map[E820_MAX_RANGES];
	unsigned int n;

	if (!pg)
		return 0;
	memset(pg, 0, sizeof(*pg));
	n = e820_build(mem, map);
	for (unsigned int i = 0; i < n; i++)
		pg->memmap[i] = (struct hvm_memmap_table_entry){
			.addr = map[i].addr, .size = map[i].size, .type = map[i].type,
		};
	pg->info = (struct hvm_start_info){
		.magic = XEN_HVM_START_MAGIC_VALUE,
		.version = 1,
		.cmdline_paddr = cmdline_paddr,
		.rsdp_paddr = rsdp,
		.memmap_paddr = LAYOUT_PVH_INFO + offsetof(struct pvh_page, memmap),
		.memmap_entries = n,
	};
	if (initrd_size) {
		pg->modules[0] = (struct hvm_modlist_entry){ .paddr = initrd_addr, .size = initrd_size };
		pg->info.nr_modules = 1;
		pg->info.modlist_paddr = LAYOUT_PVH_INFO + offsetof(struct pvh_page, modules);
	}
	return LAYOUT_PVH_INFO;
}
