#include "arch/x86/cpuid.h"

#include <linux/kvm.h>
#include <string.h>

/* CPUID bits bootvm sets or reads. */
#define CPUID1_ECX_X2APIC	(1U << 21)
#define CPUID1_ECX_HYPERVISOR	(1U << 31)
#define CPUID1_EDX_HTT		(1U << 28)
#define CPUIDB_LEVEL_SMT	1
#define CPUIDB_LEVEL_CORE	2

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != function)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != index)
			continue;
		return e;
	}
	return NULL;
}

/* Bits needed to number n things (0 for 1, 1 for 2, 2 for 3-4, ...). */
static unsigned int order_base_2(unsigned int n)
{
	unsigned int bits = 0;

	while ((1U << bits) < n)
		bits++;
	return bits;
}

int cpuid_is_amd(const struct kvm_cpuid2 *c)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0)
			/* "AuthenticAMD" / "HygonGenuine": ebx "Auth" / "Hygo" */
			return c->entries[i].ebx == 0x68747541 || c->entries[i].ebx == 0x6f677948;
	return 0;
}

static void topology_leaf(struct kvm_cpuid_entry2 *e, uint32_t function, uint32_t index,
			  unsigned int apic_id, unsigned int nr_cpus)
{
	memset(e, 0, sizeof(*e));
	e->function = function;
	e->index = index;
	e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	e->edx = apic_id;
	switch (index) {
	case 0:		/* SMT: one thread per core */
		e->eax = 0;
		e->ebx = 1;
		e->ecx = (CPUIDB_LEVEL_SMT << 8) | index;
		break;
	case 1:		/* cores: all vCPUs in one package */
		e->eax = order_base_2(nr_cpus);
		e->ebx = nr_cpus;
		e->ecx = (CPUIDB_LEVEL_CORE << 8) | index;
		break;
	default:	/* invalid level ends the enumeration */
		e->ecx = index;
		break;
	}
}

int cpuid_build(const struct kvm_cpuid2 *supported, unsigned int apic_id,
		unsigned int nr_cpus, struct kvm_cpuid2 *out, unsigned int max)
{
	uint32_t n = 0;
	int amd = cpuid_is_amd(supported);
	unsigned int core_bits = order_base_2(nr_cpus);

	for (uint32_t i = 0; i < supported->nent; i++) {
		const struct kvm_cpuid_entry2 *s = &supported->entries[i];

		/* Leaves 0xB and 0x1F are rebuilt below from our topology. */
		if (s->function == 0xb || s->function == 0x1f)
			continue;
		if (n == max)
			return -1;
		struct kvm_cpuid_entry2 *e = &out->entries[n++];
		*e = *s;

		switch (e->function) {
		case 1: {
			/* Addressable logical IDs per package: an 8-bit field. */
			unsigned int ids = 1U << core_bits;

			e->ebx = (e->ebx & 0x0000ffff) | ((apic_id & 0xff) << 24) |
				 ((ids > 255 ? 255 : ids) << 16);
			e->ecx |= CPUID1_ECX_HYPERVISOR | CPUID1_ECX_X2APIC;
			if (nr_cpus > 1)
				e->edx |= CPUID1_EDX_HTT;
			else
				e->edx &= ~CPUID1_EDX_HTT;
			break;
		}
		case 4:		/* Intel: cores per package, threads per cache */
			if (!amd && (e->eax & 0x1f)) {
				e->eax &= 0x3ff;
				e->eax |= (((1U << core_bits) - 1) << 26);
			}
			break;
		case 0x80000008:
			if (amd)
				e->ecx = (core_bits << 12) | (nr_cpus - 1);
			break;
		case 0x8000001e:	/* AMD extended APIC ID, core and node IDs */
			if (amd) {
				e->eax = apic_id;
				e->ebx = apic_id & 0xff;	/* one thread per core */
				e->ecx = 0;
			}
			break;
		}
	}

	/* Topology leaves for every basic maximum that reaches them. */
	const struct kvm_cpuid_entry2 *basic = NULL;
	for (uint32_t i = 0; i < supported->nent; i++)
		if (supported->entries[i].function == 0)
			basic = &supported->entries[i];
	uint32_t max_basic = basic ? basic->eax : 0;
	for (uint32_t leaf = 0xb; leaf <= 0x1f; leaf += 0x1f - 0xb) {
		if (max_basic < leaf)
			continue;
		for (uint32_t index = 0; index < 3; index++) {
			if (n == max)
				return -1;
			topology_leaf(&out->entries[n++], leaf, index, apic_id, nr_cpus);
		}
	}
	out->nent = n;
	return 0;
}
