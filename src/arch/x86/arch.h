/* The x86 half of VM and vCPU creation. */
#pragma once

struct vm;
struct vcpu;

/* TSS/identity-map addresses, in-kernel irqchip and PIT, GSI routing. */
int arch_vm_init(struct vm *vm);

/* CPUID (per-vCPU APIC ID and topology), MSRs, LAPIC LINT pins, FPU. */
int arch_vcpu_init(struct vcpu *vcpu);

/* Print general, segment and control registers of a vCPU to stderr. */
void arch_vcpu_dump(struct vcpu *vcpu);
