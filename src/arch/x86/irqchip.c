#include "arch/x86/irqchip.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/layout.h"
#include "util/log.h"
#include "vmm/irq.h"

/*
 * The same routes KVM_CREATE_IRQCHIP sets up by default (ISA IRQs to both the
 * PIC and the IOAPIC, IRQ 0 to IOAPIC pin 2), held in the router so that MSI
 * routes can be added without losing them.
 */
static int irqchip_routes(int vm_fd, struct irq_router *irq)
{
	if (irq_router_init(irq, vm_fd, IRQCHIP_IOAPIC_PINS) < 0)
		return -1;
	for (unsigned int gsi = 0; gsi < IRQCHIP_IOAPIC_PINS; gsi++) {
		if (gsi < IRQCHIP_PIC_PINS && gsi != 2 &&
		    irq_add_pin(irq, gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
				gsi % 8) < 0)
			return -1;
		/* the PIT is wired to pin 2 */
		if (irq_add_pin(irq, gsi, KVM_IRQCHIP_IOAPIC, gsi == 0 ? 2 : gsi) < 0)
			return -1;
	}
	return irq_commit(irq);
}

int irqchip_create(int vm_fd, struct irq_router *irq)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t idmap = LAYOUT_KVM_IDENTITY_MAP;

	/* Intel needs these pages for real-mode emulation; they sit in the MMIO hole. */
	if (ioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
		log_error("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0) {
		log_error("KVM_SET_TSS_ADDR: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		log_error("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		log_error("KVM_CREATE_PIT2: %s", strerror(errno));
		return -1;
	}
	return irqchip_routes(vm_fd, irq);
}
