/* The CPUID a vCPU sees: what KVM supports, with this vCPU's APIC ID and topology. */
#pragma once

#include <stdint.h>

struct kvm_cpuid2;

/*
 * Fill out (room for max entries) from KVM's supported set for vCPU apic_id of
 * nr_cpus: APIC IDs in leaves 1, 0xB and 0x8000001E, one socket of nr_cpus
 * single-thread cores, the hypervisor bit, x2APIC offered. Returns -1 if out
 * is too small.
 */
int cpuid_build(const struct kvm_cpuid2 *supported, unsigned int apic_id,
		unsigned int nr_cpus, struct kvm_cpuid2 *out, unsigned int max);

/* The entry for function/index in c, or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index);

/* Whether c describes an AMD (or Hygon) CPU. */
int cpuid_is_amd(const struct kvm_cpuid2 *c);
