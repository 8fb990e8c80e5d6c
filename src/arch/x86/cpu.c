/* vCPU state every entry protocol starts from: CPUID, MSRs, LAPIC, FPU. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86/arch.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/irqchip.h"
#include "util/log.h"

#define MSR_IA32_SYSENTER_CS	0x174
#define MSR_IA32_SYSENTER_ESP	0x175
#define MSR_IA32_SYSENTER_EIP	0x176
#define MSR_IA32_MISC_ENABLE	0x1a0
#define MSR_MTRR_DEF_TYPE	0x2ff
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SYSCALL_MASK	0xc0000084
#define MSR_KERNEL_GS_BASE	0xc0000102
#define MSR_K7_HWCR		0xc0010015

#define HWCR_TSC_FREQ_SEL	(1ULL << 24)	/* AMD: TSC counts at the P0 frequency */

#define MISC_ENABLE_FAST_STRING	(1ULL << 0)
#define MTRR_ENABLE		(1ULL << 11)
#define MTRR_TYPE_WRBACK	6

#define APIC_LVT0		0x350
#define APIC_LVT1		0x360
#define APIC_MODE_NMI		0x4
#define APIC_MODE_EXTINT	0x7

int arch_vm_init(int vm_fd, struct irq_router *irq)
{
	return irqchip_create(vm_fd, irq);
}

static int vcpu_set_cpuid(const struct arch_vcpu *vcpu)
{
	unsigned int max = vcpu->cpuid->nent + 6;	/* + topology leaves */
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + max * sizeof(c->entries[0]));
	int ret = -1;

	if (!c) {
		log_error("out of memory");
		return -1;
	}
	if (cpuid_build(vcpu->cpuid, vcpu->id, vcpu->nr_cpus, c, max) < 0) {
		log_error("vCPU %u: CPUID table too large", vcpu->id);
		goto out;
	}
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0) {
		log_error("vCPU %u: KVM_SET_CPUID2: %s", vcpu->id, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(c);
	return ret;
}

/* MSRs a 64-bit kernel expects zeroed or set up as firmware would leave them. */
static int vcpu_set_msrs(const struct arch_vcpu *vcpu)
{
	static const struct { uint32_t index; uint64_t data; } boot_msrs[] = {
		{ MSR_IA32_SYSENTER_CS, 0 },
		{ MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 },
		{ MSR_STAR, 0 },
		{ MSR_CSTAR, 0 },
		{ MSR_KERNEL_GS_BASE, 0 },
		{ MSR_SYSCALL_MASK, 0 },
		{ MSR_LSTAR, 0 },
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
		/* All of RAM write-back, as firmware would program the MTRRs. */
		{ MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRBACK },
	};
	enum { N = sizeof(boot_msrs) / sizeof(boot_msrs[0]) };
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + N * sizeof(msrs->entries[0]));

	if (!msrs) {
		log_error("out of memory");
		return -1;
	}
	msrs->nmsrs = N;
	for (unsigned int i = 0; i < N; i++) {
		msrs->entries[i].index = boot_msrs[i].index;
		msrs->entries[i].data = boot_msrs[i].data;
	}
	int ret = ioctl(vcpu->fd, KVM_SET_MSRS, msrs);
	if (ret != N) {
		log_error("vCPU %u: KVM_SET_MSRS set %d of %d (MSR 0x%x refused)%s%s", vcpu->id,
			  ret < 0 ? 0 : ret, N, ret < 0 ? 0 : msrs->entries[ret].index,
			  ret < 0 ? ": " : "", ret < 0 ? strerror(errno) : "");
		free(msrs);
		return -1;
	}

	/*
	 * AMD firmware sets HWCR.TscFreqSel; without it Linux reports a firmware
	 * bug for CPUs with an invariant TSC. KVM accepts the bit since Linux 6.6;
	 * older hosts refuse it, which costs only that warning.
	 */
	if (cpuid_is_amd(vcpu->cpuid)) {
		msrs->nmsrs = 1;
		msrs->entries[0] = (struct kvm_msr_entry){ .index = MSR_K7_HWCR,
							   .data = HWCR_TSC_FREQ_SEL };
		if (ioctl(vcpu->fd, KVM_SET_MSRS, msrs) != 1)
			log_debug("vCPU %u: KVM refused HWCR.TscFreqSel", vcpu->id);
	}
	free(msrs);
	return 0;
}

/*
 * Virtual-wire mode: PIC interrupts arrive through LINT0 (ExtINT), NMIs through
 * LINT1. Set on every vCPU as firmware leaves them; Linux masks LINT0 on APs.
 */
static int vcpu_set_lapic(const struct arch_vcpu *vcpu)
{
	struct kvm_lapic_state lapic;
	uint32_t *lvt0 = (uint32_t *)&lapic.regs[APIC_LVT0];
	uint32_t *lvt1 = (uint32_t *)&lapic.regs[APIC_LVT1];

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0) {
		log_error("vCPU %u: KVM_GET_LAPIC: %s", vcpu->id, strerror(errno));
		return -1;
	}
	*lvt0 = (*lvt0 & ~0x700U & ~0x10000U) | (APIC_MODE_EXTINT << 8);
	*lvt1 = (*lvt1 & ~0x700U & ~0x10000U) | (APIC_MODE_NMI << 8);
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0) {
		log_error("vCPU %u: KVM_SET_LAPIC: %s", vcpu->id, strerror(errno));
		return -1;
	}
	return 0;
}

/* The x87 and SSE control words as after FNINIT / reset. */
static int vcpu_set_fpu(const struct arch_vcpu *vcpu)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0) {
		log_error("vCPU %u: KVM_SET_FPU: %s", vcpu->id, strerror(errno));
		return -1;
	}
	return 0;
}

int arch_vcpu_init(const struct arch_vcpu *vcpu)
{
	if (vcpu_set_cpuid(vcpu) < 0 || vcpu_set_msrs(vcpu) < 0 ||
	    vcpu_set_lapic(vcpu) < 0 || vcpu_set_fpu(vcpu) < 0)
		return -1;
	return 0;
}

static void dump_seg(const char *name, const struct kvm_segment *s)
{
	fprintf(stderr, "  %-3s sel=%04x base=%016llx limit=%08x type=%x dpl=%u p=%u l=%u db=%u\r\n",
		name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->dpl,
		s->present, s->l, s->db);
}

void arch_vcpu_dump(const struct arch_vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		log_error("vCPU %u: cannot read registers: %s", vcpu->id, strerror(errno));
		return;
	}
	fprintf(stderr,
		"vCPU %u registers:\r\n"
		"  rip=%016llx rflags=%016llx\r\n"
		"  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\r\n"
		"  rsi=%016llx rdi=%016llx rsp=%016llx rbp=%016llx\r\n"
		"  r8 =%016llx r9 =%016llx r10=%016llx r11=%016llx\r\n"
		"  r12=%016llx r13=%016llx r14=%016llx r15=%016llx\r\n"
		"  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%016llx\r\n",
		vcpu->id, r.rip, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp,
		r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15,
		s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
	dump_seg("cs", &s.cs);
	dump_seg("ds", &s.ds);
	dump_seg("ss", &s.ss);
	dump_seg("tr", &s.tr);
	fprintf(stderr, "  gdt=%016llx/%x idt=%016llx/%x\r\n",
		(unsigned long long)s.gdt.base, s.gdt.limit,
		(unsigned long long)s.idt.base, s.idt.limit);
}
