#include "arch/x86/irqchip.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/layout.h"
#include "util/log.h"
#include "vmm/vm.h"

#define ROUTING_INITIAL_CAP 64

static struct kvm_irq_routing_entry *routing_append(struct vm *vm)
{
	if (vm->routing->nr == vm->routing_cap) {
		unsigned int cap = vm->routing_cap * 2;
		struct kvm_irq_routing *r = realloc(vm->routing, sizeof(*r) + cap * sizeof(r->entries[0]));
		if (!r)
			return NULL;
		vm->routing = r;
		vm->routing_cap = cap;
	}
	struct kvm_irq_routing_entry *e = &vm->routing->entries[vm->routing->nr++];
	memset(e, 0, sizeof(*e));
	return e;
}

static int routing_commit(struct vm *vm)
{
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, vm->routing) < 0) {
		log_error("KVM_SET_GSI_ROUTING: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The same routes KVM_CREATE_IRQCHIP sets up by default (ISA IRQs to both the
 * PIC and the IOAPIC, IRQ 0 to IOAPIC pin 2), but held here so MSI routes can
 * be added without losing them.
 */
static int routing_init(struct vm *vm)
{
	vm->routing_cap = ROUTING_INITIAL_CAP;
	vm->routing = calloc(1, sizeof(*vm->routing) + vm->routing_cap * sizeof(vm->routing->entries[0]));
	if (!vm->routing) {
		log_error("out of memory");
		return -1;
	}
	for (unsigned int gsi = 0; gsi < IRQCHIP_IOAPIC_PINS; gsi++) {
		struct kvm_irq_routing_entry *e;

		if (gsi < IRQCHIP_PIC_PINS && gsi != 2) {
			e = routing_append(vm);
			e->gsi = gsi;
			e->type = KVM_IRQ_ROUTING_IRQCHIP;
			e->u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
			e->u.irqchip.pin = gsi % 8;
		}
		e = routing_append(vm);
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e->u.irqchip.pin = gsi == 0 ? 2 : gsi;	/* the PIT is wired to pin 2 */
	}
	return routing_commit(vm);
}

int irqchip_add_msi_route(struct vm *vm, uint64_t addr, uint32_t data)
{
	uint32_t gsi = IRQCHIP_IOAPIC_PINS;

	for (unsigned int i = 0; i < vm->routing->nr; i++)
		if (vm->routing->entries[i].gsi >= gsi)
			gsi = vm->routing->entries[i].gsi + 1;

	struct kvm_irq_routing_entry *e = routing_append(vm);
	if (!e) {
		log_error("out of memory");
		return -1;
	}
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->u.msi.address_lo = (uint32_t)addr;
	e->u.msi.address_hi = (uint32_t)(addr >> 32);
	e->u.msi.data = data;
	if (routing_commit(vm) < 0) {
		vm->routing->nr--;
		return -1;
	}
	return (int)gsi;
}

int irqchip_create(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t idmap = LAYOUT_KVM_IDENTITY_MAP;

	/* Intel needs these pages for real-mode emulation; they sit in the MMIO hole. */
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
		log_error("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0) {
		log_error("KVM_SET_TSS_ADDR: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		log_error("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		log_error("KVM_CREATE_PIT2: %s", strerror(errno));
		return -1;
	}
	return routing_init(vm);
}
