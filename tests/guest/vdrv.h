/*
 * A small PCI + virtio 1.x (modern PCI transport, split rings) driver shared
 * by the virtio and virtio_hostile guests: ECAM found through the MCFG table
 * (and mechanism #1 at 0xcf8/0xcfc to cross-check), BAR sizing and moving,
 * the virtio capabilities, MSI-X with an interrupt counter per vector, and
 * one queue per device. Everything waits with bounded loops.
 */
#pragma once

#include <linux/pci_regs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "runtime.h"

#define PCI_VENDOR_VIRTIO	0x1af4
#define PCI_DEVICE_VIRTIO_BASE	0x1040		/* + virtio device id: modern only */

#define PCI_MAX_FNS		32
#define VDEV_MAX		4
#define VQ_SIZE			16		/* what we ask for (at most what is offered) */
#define IRQ_VECTOR_BASE		0x50		/* device k: config 0x50 + 2k, queue 0x51 + 2k */

struct pci_fn {
	uint8_t dev, fn;
	uint16_t vendor, device;
	uint32_t class;				/* class, subclass, prog-if */
	uint64_t cfg;				/* its ECAM configuration space */
};

/* The ECAM base for bus 0 from the MCFG table (0 without one); printed. */
uint64_t pci_ecam_init(void);
uint8_t pci_read8(const struct pci_fn *f, unsigned int off);
uint16_t pci_read16(const struct pci_fn *f, unsigned int off);
uint32_t pci_read32(const struct pci_fn *f, unsigned int off);
void pci_write16(const struct pci_fn *f, unsigned int off, uint16_t v);
void pci_write32(const struct pci_fn *f, unsigned int off, uint32_t v);
uint32_t pci_cf8_read32(unsigned int dev, unsigned int fn, unsigned int off);
/*
 * Every function on bus 0 (printed, checked against mechanism #1): fills fns,
 * returns how many; *mismatches counts functions the two disagree on.
 */
unsigned int pci_scan(struct pci_fn *fns, unsigned int max, unsigned int *mismatches);
/* A memory BAR's address and size (sized with decoding off); false if not a memory BAR. */
bool pci_bar(const struct pci_fn *f, unsigned int bar, uint64_t *addr, uint64_t *size, bool *is64);
/* Program a memory BAR (decoding off meanwhile). */
void pci_bar_set(const struct pci_fn *f, unsigned int bar, uint64_t addr, bool is64);

struct vq {
	uint16_t index;				/* the queue's number on its device */
	uint16_t size;				/* chosen, power of two */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	struct vring_desc *indirect;		/* a table of VQ_SIZE entries for indirect chains */
	uint16_t avail_idx;			/* next avail->idx to publish */
	uint16_t last_used;			/* used->idx we have consumed up to */
	uint64_t notify;			/* where to write the queue index */
};

struct vdev {
	struct pci_fn pci;
	unsigned int index;			/* 0..VDEV_MAX-1: its vectors, its memory */
	uint16_t id;				/* VIRTIO_ID_* */
	const char *kind;			/* "blk", "rng", ... */
	/* from the capabilities: BAR number and offset of each structure */
	int bar_of[VIRTIO_PCI_CAP_PCI_CFG + 1];
	uint32_t off_of[VIRTIO_PCI_CAP_PCI_CFG + 1];
	uint32_t len_of[VIRTIO_PCI_CAP_PCI_CFG + 1];
	uint8_t cap_of[VIRTIO_PCI_CAP_PCI_CFG + 1];	/* config-space offset of the cap */
	uint32_t notify_mult;
	uint8_t msix_cap;
	unsigned int msix_size;
	int msix_bar, pba_bar;
	uint32_t msix_off, pba_off;
	/* resolved addresses (after the BARs are final) */
	uint64_t bar_addr[6];
	uint64_t common, isr, devcfg, notify_base, msix_table;
	uint64_t offered, features;		/* by the device; negotiated */
	bool event_idx, indirect;
	uint64_t desc_override;			/* hostile: this descriptor table address instead */
	struct vq q;
	uint8_t *buf;				/* 4 KiB of request memory */
};

/* Interrupts counted per vector (IRQ_VECTOR_BASE + i). */
extern volatile uint32_t irq_count[2 * VDEV_MAX];
/* IDT, x2APIC on, the vectors' handlers; false without an x2APIC. */
bool irq_init(void);

/* Capabilities of a virtio function; false (printed) if one is missing. */
bool vdev_probe(struct vdev *vd, const struct pci_fn *f, unsigned int index);
/*
 * Make the BARs usable: move BAR `move_bar` (if >= 0) to move_to in the
 * 32-bit window, map 64-bit ones above 4 GiB, enable memory decoding and bus
 * mastering, resolve the structures and enable MSI-X. Prints what it did.
 */
bool vdev_map(struct vdev *vd, int move_bar, uint64_t move_to);
/*
 * Reset, negotiate (VERSION_1 | want, as far as offered), set up queue 0
 * with the device's MSI-X vectors, DRIVER_OK. Returns false (printed) on failure.
 */
bool vdev_init(struct vdev *vd, uint64_t want);
/*
 * The steps of vdev_init for devices with several queues: reset and
 * negotiate (msix_config = MSI-X entry 0); set up queue `index` in mem (4 KiB,
 * laid out as vdev_init's) with MSI-X entry `vector` and the descriptor table
 * at desc_addr (0: in mem); then DRIVER_OK (false if refused or NEEDS_RESET).
 */
bool vdev_negotiate(struct vdev *vd, uint64_t want);
bool vdev_queue(struct vdev *vd, struct vq *q, uint16_t index, uint8_t *mem, uint16_t vector,
		uint64_t desc_addr);
bool vdev_driver_ok(struct vdev *vd);
/* Write 0 to device_status and wait until it reads 0. */
bool vdev_reset(struct vdev *vd);
uint8_t vdev_status(const struct vdev *vd);

static inline uint64_t vdev_cfg(const struct vdev *vd, unsigned int off) { return vd->devcfg + off; }

/* Publish head as the next available chain of vd->q (no notification). */
void vq_publish(struct vdev *vd, uint16_t head);
/* Notify the device of vd->q if it wants it (EVENT_IDX / NO_NOTIFY), or always if force. */
void vq_kick(struct vdev *vd, bool force);
/* The same for another queue q of vd. */
void vq_publish_on(struct vdev *vd, struct vq *q, uint16_t head);
void vq_kick_on(struct vdev *vd, struct vq *q, bool force);
/*
 * Wait (interrupts on, bounded) for the next used element, its length in
 * *len, and then for the queue's MSI-X interrupt. False if nothing was used.
 * Counts completions and those that came without their interrupt.
 */
bool vq_wait(struct vdev *vd, uint32_t *len);
extern uint32_t vq_completions, vq_no_irq;

/* blk: one request (VIRTIO_BLK_T_*) of len data bytes at data; the status byte or -1. */
int blk_request(struct vdev *vd, uint32_t type, uint64_t sector, void *data, uint32_t len,
		bool use_indirect);
/* rng: up to len bytes; how many it gave, -1 on timeout. */
int rng_read(struct vdev *vd, void *data, uint32_t len);

const char *blk_status_name(int status);
void print_hex(const void *p, size_t n);
