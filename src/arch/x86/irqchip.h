/* In-kernel PIC + IOAPIC + LAPIC, the PIT, and the irqchip pins' GSI routes. */
#pragma once

struct irq_router;

#define IRQCHIP_IOAPIC_PINS 24
#define IRQCHIP_PIC_PINS 16

/* Create them and start irq's routing table with the ISA and IOAPIC pins. */
int irqchip_create(int vm_fd, struct irq_router *irq);
