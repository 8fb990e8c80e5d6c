/*
 * Guest RAM. One anonymous host mapping backs all of it; below 4 GiB the
 * RAM stops at the MMIO hole and the rest continues at 4 GiB.
 *
 * Everything that touches guest memory on behalf of the guest or a loader
 * goes through guest_mem_ptr(), which checks the whole range.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2

struct guest_region {
	uint64_t gpa;		/* first guest-physical address */
	uint64_t size;		/* bytes */
	uint8_t *host;		/* where it lives in this process */
};

struct guest_mem {
	uint8_t *base;		/* the one host mapping */
	uint64_t ram_size;	/* total RAM, as asked for */
	unsigned int nr_regions;
	struct guest_region regions[GUEST_MEM_MAX_REGIONS];
};

/*
 * Map ram_size bytes (a multiple of 4 KiB) and lay them out around the hole
 * [hole_start, 4 GiB). Logs and returns -1 on failure.
 */
int guest_mem_init(struct guest_mem *m, uint64_t ram_size, uint64_t hole_start);
void guest_mem_destroy(struct guest_mem *m);

/*
 * Host pointer for [gpa, gpa + len) if the whole range is RAM in one region,
 * else NULL. Never overflows, whatever gpa and len are.
 */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Copy in or out; -1 (nothing logged) if the range is not all RAM. */
int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len);
int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len);

/* End of the RAM region that starts at 0 (i.e. RAM below the hole). */
uint64_t guest_mem_low_end(const struct guest_mem *m);

/* Bytes of guest RAM the guest (or we) have touched, from mincore(). */
uint64_t guest_mem_resident(const struct guest_mem *m);
