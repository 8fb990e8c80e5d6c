/* In-kernel PIC + IOAPIC + LAPIC, the PIT, and the GSI routing table. */
#pragma once

#include <stdint.h>

struct vm;

#define IRQCHIP_IOAPIC_PINS 24
#define IRQCHIP_PIC_PINS 16

int irqchip_create(struct vm *vm);

/*
 * Add an MSI route for a new GSI (first free one above the IOAPIC pins) and
 * hand the whole table to KVM. Returns the GSI or -1.
 */
int irqchip_add_msi_route(struct vm *vm, uint64_t addr, uint32_t data);
