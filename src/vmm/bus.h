/*
 * Port-I/O and MMIO dispatch. Devices register address ranges with a small
 * ops table before the vCPUs start; after that the bus is read-only, so
 * vCPU threads look ranges up without a lock. Each device locks its own state.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define BUS_MAX_RANGES 64

struct bus_ops {
	/* Accesses are 1, 2, 4 or 8 bytes; offset is relative to the range base. */
	uint64_t (*read)(void *dev, uint64_t offset, unsigned int size);
	void (*write)(void *dev, uint64_t offset, unsigned int size, uint64_t value);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const char *name;
	const struct bus_ops *ops;
	void *dev;
};

struct bus {
	const char *name;	/* "pio" or "mmio", for messages */
	unsigned int nr;
	struct bus_range ranges[BUS_MAX_RANGES];	/* sorted by base */
	uint64_t unhandled;	/* accesses nobody claimed */
};

void bus_init(struct bus *bus, const char *name);

/* Claim [base, base + len). Logs and returns -1 on overlap or when full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const char *name,
		 const struct bus_ops *ops, void *dev);

/* The range holding addr, or NULL. */
const struct bus_range *bus_find(const struct bus *bus, uint64_t addr);

/*
 * Carry out one guest access of size bytes at addr, data in little-endian
 * order as KVM gives it. Reads nobody claims return all ones; writes nobody
 * claims are dropped. Returns false when nobody claimed the address.
 */
bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, unsigned int size,
		bool is_write);
