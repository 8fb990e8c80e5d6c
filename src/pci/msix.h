/*
 * MSI-X for a PCI device: the capability, the vector table and the pending
 * bit array (PBA), which live in the device's BARs (the device forwards
 * those accesses here: msix_table_read/write, msix_pba_read).
 *
 * Each vector is an irq_msi (vmm/irq.h): a GSI routed as MSI plus an
 * eventfd bound by irqfd while the vector is live, i.e. MSI-X enabled, the
 * function not masked and the vector not masked. Masking unbinds the irqfd.
 * Address/data writes to a masked vector only take note; the route is
 * updated when the vector goes live, so a guest that programs many vectors
 * and then unmasks (or enables MSI-X) costs one KVM_SET_GSI_ROUTING.
 *
 * msix_notify() from any thread: a live vector fires, a masked one gets its
 * PBA bit, and going live with a pending bit fires and clears it.
 *
 * Lock order: the host lock (configuration writes) before the MSI-X lock;
 * the device's own lock may be held when calling in.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/irq.h"

struct pci_dev;

#define MSIX_MAX_VECTORS	2048
#define MSIX_TABLE_SIZE(n)	((uint64_t)(n) * 16)
#define MSIX_PBA_SIZE(n)	(((uint64_t)(n) + 63) / 64 * 8)

struct msix_vector {
	uint32_t addr_lo, addr_hi, data, ctrl;	/* the table entry as the guest sees it */
	bool stale;				/* addr/data changed since the route was set */
	struct irq_msi msi;
};

struct msix {
	pthread_mutex_t lock;
	struct pci_dev *dev;
	unsigned int nr;
	struct msix_vector *vec;
	uint64_t *pba;
	bool enabled, fmask;			/* Message Control bits 15 and 14 */
	int cap;				/* capability offset */
};

/*
 * nr vectors (1-2048) with the table at table_off in BAR table_bar and the
 * PBA at pba_off in BAR pba_bar (8-byte aligned, the device maps both);
 * adds the capability to d and a GSI per vector from the host's router.
 * Logs and returns -1.
 */
int msix_init(struct msix *m, struct pci_dev *d, unsigned int nr, unsigned int table_bar,
	      uint32_t table_off, unsigned int pba_bar, uint32_t pba_off);
/*
 * Frees the vectors' GSIs and eventfds. Safe on a zeroed or failed struct
 * and twice. The capability stays: only after the device left the bus.
 */
void msix_fini(struct msix *m);
/* Power-on state: every vector masked with address/data 0, nothing pending, disabled. */
void msix_reset(struct msix *m);

/* Table and PBA accesses at offsets relative to their start; 4 or 8 bytes aligned, else ignored. */
uint64_t msix_table_read(struct msix *m, uint64_t off, unsigned int size);
void msix_table_write(struct msix *m, uint64_t off, unsigned int size, uint64_t value);
uint64_t msix_pba_read(struct msix *m, uint64_t off, unsigned int size);

/* Whether MSI-X is enabled in Message Control (then the device must not use INTx). */
bool msix_enabled(struct msix *m);
/*
 * Signal vector (fire or set pending). Returns false, doing nothing, when
 * MSI-X is disabled (the caller uses INTx) or vector is out of range.
 */
bool msix_notify(struct msix *m, unsigned int vector);
