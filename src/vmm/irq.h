/*
 * The interrupt layer: GSI routing, INTx lines and MSI vectors, and the
 * KVM eventfds (irqfd, ioeventfd) devices use to signal from any thread.
 *
 * One struct irq_router per VM owns the GSI routing table. Route changes
 * (an MSI vector's address/data) only mark the table dirty; irq_commit()
 * hands the whole table to KVM in one KVM_SET_GSI_ROUTING, so a burst of
 * MSI-X table writes costs one ioctl. GSIs of freed vectors are reused.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct kvm_irq_routing;

#define IRQ_MAX_GSI 1024

struct irq_router {
	int vm_fd;
	pthread_mutex_t lock;
	struct kvm_irq_routing *table;
	unsigned int cap;
	unsigned int first_msi_gsi;	/* GSIs below are irqchip pins */
	bool dirty;
	uint64_t used[IRQ_MAX_GSI / 64];	/* GSIs taken by MSI vectors */
};

/* One MSI vector: a GSI routed as MSI, and an eventfd bound to it by irqfd. */
struct irq_msi {
	struct irq_router *router;
	int gsi;		/* -1: none */
	int efd;		/* eventfd; writing it injects the MSI while assigned */
	bool assigned;		/* irqfd bound (the vector is unmasked) */
	uint64_t addr;
	uint32_t data;
};

/*
 * Start an empty table; first_msi_gsi is the first GSI not used by irqchip
 * pins (the board adds those with irq_add_pin()). Logs and returns -1.
 */
int irq_router_init(struct irq_router *r, int vm_fd, unsigned int first_msi_gsi);
void irq_router_destroy(struct irq_router *r);

/* Route gsi to an irqchip pin (KVM_IRQCHIP_PIC_MASTER/_SLAVE/_IOAPIC). */
int irq_add_pin(struct irq_router *r, unsigned int gsi, unsigned int chip, unsigned int pin);

/* Hand the table to KVM if anything changed since the last commit. */
int irq_commit(struct irq_router *r);

/* Drive a level or edge line (an irqchip GSI): 1 asserted, 0 deasserted. Any thread. */
int irq_line_set(struct irq_router *r, unsigned int gsi, int level);

/*
 * Allocate a GSI and an eventfd for an MSI vector, not yet assigned
 * (masked). Logs and returns -1 when GSIs run out.
 */
int irq_msi_init(struct irq_router *r, struct irq_msi *v);
/* Deassign, free the GSI and close the eventfd. Safe on a zeroed or failed vector. */
void irq_msi_fini(struct irq_msi *v);
/* New address/data: updates the route, to be committed with irq_commit(). */
int irq_msi_set(struct irq_msi *v, uint64_t addr, uint32_t data);
/* Bind (unmask) or unbind (mask) the eventfd with KVM_IRQFD. Commits first. */
int irq_msi_assign(struct irq_msi *v, bool on);
/* Inject: write the eventfd. Any thread; no lock taken. */
void irq_msi_fire(struct irq_msi *v);

/*
 * ioeventfd: a guest write of any value to [addr, addr + len) on the MMIO
 * (pio = false) or port bus signals efd inside KVM, without an exit to
 * bootvm. len is 0 (any size), 1, 2, 4 or 8.
 */
int irq_ioeventfd(int vm_fd, uint64_t addr, unsigned int len, bool pio, int efd, bool assign);
