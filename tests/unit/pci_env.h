/*
 * What the PCI, MSI-X and virtio-pci tests share: a real KVM VM with an
 * in-kernel irqchip (the interrupt layer needs one), port and MMIO buses,
 * an IRQ router and a PCI host bridge laid out as the board lays it out;
 * accessors that go through the buses the way vCPU exits do; and counters
 * of the KVM ioctls the code under test makes (ioctl() is interposed).
 * Include after <cmocka.h>.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "pci/pci.h"
#include "vmm/bus.h"
#include "vmm/irq.h"

#define ENV_ECAM	0xe0000000ULL
#define ENV_MMIO32	0xc0000000ULL
#define ENV_MMIO32_SIZE	0x20000000ULL
#define ENV_MMIO64	0x100000000ULL
#define ENV_MMIO64_SIZE	0x1000000000ULL
#define ENV_GSI_BASE	16
#define ENV_GSI_COUNT	4

struct pci_env {
	int kvm_fd, vm_fd;
	struct bus pio, mmio;
	struct irq_router irq;
	struct pci_host *host;
};

/* The KVM ioctls made since the last env_counts_reset(). */
struct env_counts {
	int set_gsi_routing;
	int irqfd_assign, irqfd_deassign;
	int ioeventfd_assign, ioeventfd_deassign;
	uint64_t last_ioeventfd_addr;
	int irq_line_calls;
	int line[64];			/* last level per GSI (-1: never driven) */
	int writes[1024];		/* write() calls per fd (eventfd signals) */
};
extern struct env_counts env_counts;
void env_counts_reset(void);

/* Skips the test (cmocka skip()) where /dev/kvm is missing. */
void env_init(struct pci_env *e);
void env_fini(struct pci_env *e);

/* Mechanism #1 through the port bus: address to 0xcf8, data at 0xcfc + (reg & 3). */
uint32_t env_conf1_read(struct pci_env *e, unsigned int slot, unsigned int reg, unsigned int size);
void env_conf1_write(struct pci_env *e, unsigned int slot, unsigned int reg, unsigned int size,
		     uint32_t v);
/* ECAM through the MMIO bus. */
uint32_t env_ecam_read(struct pci_env *e, unsigned int slot, unsigned int reg, unsigned int size);
void env_ecam_write(struct pci_env *e, unsigned int slot, unsigned int reg, unsigned int size,
		    uint32_t v);
/* Any MMIO access; returns whether someone claimed it. */
bool env_mmio(struct pci_env *e, uint64_t addr, unsigned int size, bool write, uint64_t *v);
uint64_t env_mmio_read(struct pci_env *e, uint64_t addr, unsigned int size);
void env_mmio_write(struct pci_env *e, uint64_t addr, unsigned int size, uint64_t v);

/* A small deterministic PRNG for the hostile-input loops. */
uint64_t env_rand(uint64_t *state);
