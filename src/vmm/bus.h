/*
 * Port-I/O and MMIO dispatch. Devices register address ranges with a small
 * ops table; ranges may be added, removed and moved while vCPUs run (PCI
 * BARs move when the guest programs them). An access looks its range up
 * under the bus lock, copies it, unlocks and then calls the device, so a
 * device may change the bus from inside an access. Each device locks its
 * own state. A range's ops and dev must stay valid until the vCPUs have
 * stopped, even after bus_unregister().
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define BUS_MAX_RANGES 128

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
	pthread_rwlock_t lock;	/* nr and ranges */
	unsigned int nr;
	struct bus_range ranges[BUS_MAX_RANGES];	/* sorted by base */
	uint64_t unhandled;	/* accesses nobody claimed */
};

void bus_init(struct bus *bus, const char *name);
void bus_destroy(struct bus *bus);

/* Claim [base, base + len). Logs and returns -1 on overlap or when full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const char *name,
		 const struct bus_ops *ops, void *dev);

/* Release the range that starts at base. Returns -1 (logged) if there is none. */
int bus_unregister(struct bus *bus, uint64_t base);

/* Move the range at old_base to new_base (same length). -1 (logged) on overlap. */
int bus_move(struct bus *bus, uint64_t old_base, uint64_t new_base);

/*
 * Whether [base, base + len) could be registered now: not empty, not
 * wrapping, overlapping nothing. Nothing logged (a guest programming a PCI
 * BAR over another range is not an error of bootvm's).
 */
bool bus_is_free(struct bus *bus, uint64_t base, uint64_t len);

/* A copy of the range holding addr; false if none. */
bool bus_find(struct bus *bus, uint64_t addr, struct bus_range *out);

/*
 * Carry out one guest access of size bytes at addr, data in little-endian
 * order as KVM gives it. Reads nobody claims return all ones; writes nobody
 * claims are dropped. Returns false when nobody claimed the address.
 */
bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, unsigned int size,
		bool is_write);
