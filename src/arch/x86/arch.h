/* The x86 half of VM and vCPU creation. */
#pragma once

struct irq_router;
struct kvm_cpuid2;

/* What the x86 code needs to know of a vCPU (none of the VMM's own state). */
struct arch_vcpu {
	int fd;
	unsigned int id;		/* also its APIC ID */
	unsigned int nr_cpus;		/* how many the VM will have (CPUID topology) */
	const struct kvm_cpuid2 *cpuid;	/* KVM_GET_SUPPORTED_CPUID */
};

/* TSS/identity-map addresses, in-kernel irqchip and PIT, GSI routing. */
int arch_vm_init(int vm_fd, struct irq_router *irq);

/* CPUID (per-vCPU APIC ID and topology), MSRs, LAPIC LINT pins, FPU. */
int arch_vcpu_init(const struct arch_vcpu *vcpu);

/* Print general, segment and control registers of a vCPU to stderr. */
void arch_vcpu_dump(const struct arch_vcpu *vcpu);
