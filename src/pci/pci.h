/*
 * The PCI host bridge: segment 0, bus 0, one function (fn 0) per device,
 * up to 32 devices; slot 0 is the host bridge itself. Configuration space
 * through mechanism #1 (ports 0xcf8/0xcfc) and ECAM (bus 0 only, 4 KiB per
 * function). Conventional (not PCI Express) type 0 functions: 256 bytes of
 * configuration space; offsets 256-4095 read 0 and ignore writes.
 *
 * Devices declare memory BARs, which bootvm places inside the host's
 * windows when the device is added (64-bit BARs in the 64-bit window, each
 * aligned to its size), and capabilities. The guest may size and move
 * BARs; a BAR is on the MMIO bus while memory decoding is on in the command
 * register and its address does not overlap anything else there.
 *
 * Everything the guest writes to configuration space is hostile input: each
 * byte has a writable mask; BARs, the command register and capabilities are
 * validated here before a device sees them.
 *
 * Locking: one mutex per host serialises configuration accesses, BAR
 * mapping changes and the callbacks below (pci_bar_map_fn, struct
 * pci_cap_ops), which therefore may take their device's own locks but must
 * never wait for a thread that makes configuration accesses. INTx state has
 * a lock of its own, taken last: pci_dev_set_intx() may be called with any
 * device lock held, from any thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/device.h"

struct aml;
struct irq_router;
struct pci_host;
struct pci_dev;

#define PCI_MAX_DEVICES		32
#define PCI_NUM_BARS		6

/* The host bridge's own IDs (QEMU's "PCIe host bridge", which Linux knows needs nothing). */
#define PCI_HOST_VENDOR_ID	0x1b36
#define PCI_HOST_DEVICE_ID	0x0008

struct pci_host_config {
	struct bus *pio, *mmio;
	struct irq_router *irq;
	int vm_fd;
	uint64_t ecam_base;		/* 1 MiB: bus 0 */
	uint64_t mmio32_base, mmio32_size;	/* BAR windows (mmio64_size may be 0) */
	uint64_t mmio64_base, mmio64_size;
	uint16_t io_base, io_end;	/* I/O window, inclusive (no I/O BARs yet) */
	unsigned int intx_gsi_base, intx_gsi_count;	/* slot S pin P -> base + (S + P) % count */
};

/*
 * Register 0xcf8-0xcff on cfg->pio and the ECAM on cfg->mmio and add the
 * host bridge at slot 0. Logs and returns NULL on failure.
 */
struct pci_host *pci_host_create(const struct pci_host_config *cfg);
/* Unmaps and frees every device still on the bus, then the host. After the vCPUs stopped. */
void pci_host_destroy(struct pci_host *h);
/*
 * Every function back to its power-on state: configuration space (command
 * 0, so BARs unmapped; BARs at bootvm's addresses again), INTx deasserted,
 * then each device's reset hook (struct pci_dev_info.reset).
 */
void pci_host_reset(struct pci_host *h);
/*
 * The host's AML, for the board to place inside \_SB: Device (PCI0) and a
 * PNP0C02 device (RES0) whose _CRS reserves the ECAM.
 */
void pci_host_aml(const struct pci_host *h, struct aml *a);

/*
 * For the board's device list: reset is pci_host_reset(), destroy
 * pci_host_destroy(); list the host before the devices on it, so that they
 * are destroyed first.
 */
extern const struct device_ops pci_host_device_ops;

struct irq_router *pci_host_irq(const struct pci_host *h);
int pci_host_vm_fd(const struct pci_host *h);

/* ---- devices ---- */

struct pci_dev_info {
	const char *name;		/* for messages and bus ranges, e.g. "virtio-blk0" */
	uint16_t vendor_id, device_id;
	uint16_t subsys_vendor_id, subsys_id;
	uint32_t class_code;		/* base << 16 | sub-class << 8 | prog-if */
	uint8_t revision;
	uint8_t int_pin;		/* 0: no INTx; 1-4: INTA-INTD */
	/* Called by pci_host_reset() without the host lock held; may be NULL. */
	void (*reset)(void *opaque);
	void *opaque;
};

/* Add a device at the next free slot. Logs and returns NULL when the bus is full. */
struct pci_dev *pci_dev_add(struct pci_host *h, const struct pci_dev_info *info);
/* Unmap its BARs, deassert INTx and free the slot. After the vCPUs stopped. */
void pci_dev_remove(struct pci_dev *d);

unsigned int pci_dev_slot(const struct pci_dev *d);
struct pci_host *pci_dev_host(const struct pci_dev *d);
/* The GSI its INTx pin is routed to (-1 without a pin). */
int pci_dev_gsi(const struct pci_dev *d);

#define PCI_BAR_MEM64		0x1	/* a 64-bit BAR (takes two BAR registers) */
#define PCI_BAR_PREFETCH	0x2

/*
 * A BAR appeared on the MMIO bus at addr (mapped) or left it (addr is
 * where it was). Called with the host lock held, e.g. to move ioeventfds.
 */
typedef void (*pci_bar_map_fn)(void *opaque, unsigned int bar, bool mapped, uint64_t addr);

/*
 * Declare memory BAR bar (0-5; a 64-bit one also takes bar + 1) of size
 * bytes (a power of two >= 4 KiB) served by ops/opaque with BAR-relative
 * offsets, and place it in the host's window. map may be NULL. Before the
 * guest runs. Logs and returns -1 (bad arguments, the window full).
 */
int pci_dev_add_bar(struct pci_dev *d, unsigned int bar, uint64_t size, unsigned int flags,
		    const struct bus_ops *ops, void *opaque, pci_bar_map_fn map);
/* The address the BAR is programmed with (whether mapped or not). */
uint64_t pci_dev_bar_addr(struct pci_dev *d, unsigned int bar);

/*
 * Capability hooks, called with the host lock held. cap points at the
 * capability's bytes in configuration space (cap[0] is its ID); off and
 * size say which bytes the guest accessed (aligned, within one dword).
 */
struct pci_cap_ops {
	/* After a write was applied through the writable mask. May change cap. */
	void (*write)(void *opaque, uint8_t *cap, unsigned int off, unsigned int size,
		      uint32_t value);
	/* The value a read returns, given what configuration space holds. May be NULL. */
	uint32_t (*read)(void *opaque, uint8_t *cap, unsigned int off, unsigned int size,
			 uint32_t value);
};

/*
 * Append a capability of len bytes (3-64): cap[0] is its ID, cap[1] (the
 * next pointer) is filled in here. wmask (len bytes, may be NULL: read-only)
 * marks the bits the guest may write; ID and next are never writable.
 * Returns its offset in configuration space, or -1 (logged) when full.
 */
int pci_dev_add_cap(struct pci_dev *d, const void *cap, unsigned int len, const void *wmask,
		    const struct pci_cap_ops *ops, void *opaque);

/*
 * Drive the device's INTx pin (level 1 asserted). The GSI follows it unless
 * the command register's INTx disable bit is set; the status register's
 * interrupt bit always does. Any thread, any device lock held.
 */
void pci_dev_set_intx(struct pci_dev *d, int level);

/*
 * A configuration access as the guest makes it (for tests and for the host
 * bridge's own ports): slot 0-31, reg 0-4095, size 1, 2 or 4 aligned.
 * Absent slots read all ones.
 */
uint32_t pci_host_config_read(struct pci_host *h, unsigned int slot, unsigned int reg,
			      unsigned int size);
void pci_host_config_write(struct pci_host *h, unsigned int slot, unsigned int reg,
			   unsigned int size, uint32_t value);
