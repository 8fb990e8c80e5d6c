/*
 * The guest's physical memory map, as both the zero page's E820 table and
 * the PVH memory map describe it. docs/MACHINE.md shows the same map.
 */
#pragma once

#include <stdint.h>

struct guest_mem;

#define E820_TYPE_RAM		1
#define E820_TYPE_RESERVED	2

/* Enough for the map below; boot_params holds up to E820_MAX_ENTRIES_ZEROPAGE. */
#define E820_MAX_RANGES		8

struct e820_range {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/*
 * Fill out[] (E820_MAX_RANGES entries) with the map of mem, in address
 * order, and return the number of entries:
 *   [0, 0x9fc00) RAM, [0x9fc00, 1 MiB) reserved, [1 MiB, low end) RAM,
 *   the PCI ECAM area reserved, KVM's identity-map and TSS pages below 4 GiB reserved, and
 *   [4 GiB, ...) RAM when mem has a region above the hole.
 */
unsigned int e820_build(const struct guest_mem *mem, struct e820_range *out);
