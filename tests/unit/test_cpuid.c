/* arch/x86/cpuid.c: per-vCPU APIC IDs and topology on top of KVM's CPUID. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86/cpuid.h"

#define MAX 64

/* A kvm_cpuid2 with room for MAX entries (a union keeps it standard C). */
struct table {
	union {
		struct kvm_cpuid2 hdr;
		unsigned char room[sizeof(struct kvm_cpuid2) + MAX * sizeof(struct kvm_cpuid_entry2)];
	};
};

static void add(struct table *t, uint32_t fn, uint32_t idx, uint32_t flags,
		uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
	t->hdr.entries[t->hdr.nent++] = (struct kvm_cpuid_entry2){ .function = fn, .index = idx,
		.flags = flags, .eax = a, .ebx = b, .ecx = c, .edx = d };
}

/* Leaves shaped like KVM's on an AMD host (as read on the build machine). */
static void amd_host(struct table *t)
{
	memset(t, 0, sizeof(*t));
	add(t, 0, 0, 0, 0x10, 0x68747541, 0x444d4163, 0x69746e65);
	add(t, 1, 0, 0, 0x00a00f11, 0x01020800, 0x81202000, 0x078bfbff);
	add(t, 0xb, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, 0, 0, 0, 1);
	add(t, 0x80000000, 0, 0, 0x80000022, 0, 0, 0);
	add(t, 0x80000008, 0, 0, 0x3030, 0x110ad205, 0x7001, 0);
	add(t, 0x8000001e, 0, 0, 0, 0, 0, 0);
	add(t, 0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d);
	add(t, 0x40000001, 0, 0, 0x01007efb, 0, 0, 0);
}

static void intel_host(struct table *t)
{
	memset(t, 0, sizeof(*t));
	add(t, 0, 0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69);
	add(t, 1, 0, 0, 0x000806ec, 0x00100800, 0x00000000, 0x078bfbff);
	add(t, 4, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, 0x1c004121, 0, 0, 0);
	add(t, 4, 3, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, 0x1c03c163, 0, 0, 0);
	add(t, 0xb, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, 1, 2, 0x100, 0);
	add(t, 0x1f, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, 1, 2, 0x100, 0);
}

static void check_topology_leaf(struct kvm_cpuid2 *c, uint32_t leaf, unsigned int id,
				unsigned int cpus, unsigned int bits)
{
	struct kvm_cpuid_entry2 *smt = cpuid_find(c, leaf, 0);
	struct kvm_cpuid_entry2 *core = cpuid_find(c, leaf, 1);
	struct kvm_cpuid_entry2 *end = cpuid_find(c, leaf, 2);

	assert_non_null(smt);
	assert_non_null(core);
	assert_non_null(end);
	assert_int_equal(smt->ebx, 1);
	assert_int_equal(smt->ecx, 0x100);
	assert_int_equal(smt->edx, id);
	assert_int_equal(core->eax, bits);
	assert_int_equal(core->ebx, cpus);
	assert_int_equal(core->ecx, 0x201);
	assert_int_equal(core->edx, id);
	assert_int_equal((end->ecx >> 8) & 0xff, 0);	/* invalid level: the end */
}

static void test_amd_topology(void **state)
{
	struct table host, out;

	amd_host(&host);
	for (unsigned int cpus = 1; cpus <= 255; cpus += 127) {
		unsigned int bits = cpus == 1 ? 0 : cpus == 128 ? 7 : 8;
		for (unsigned int id = 0; id < cpus; id += cpus > 2 ? 63 : 1) {
			memset(&out, 0, sizeof(out));
			assert_int_equal(cpuid_build(&host.hdr, id, cpus, &out.hdr, MAX), 0);

			struct kvm_cpuid_entry2 *l1 = cpuid_find(&out.hdr, 1, 0);
			assert_int_equal(l1->ebx >> 24, id);
			assert_int_equal((l1->ebx >> 16) & 0xff, (1U << bits) > 255 ? 255 : (1U << bits));
			assert_int_equal(l1->ebx & 0xffff, 0x0800);	/* CLFLUSH size kept */
			assert_true(l1->ecx & (1U << 31));	/* hypervisor */
			assert_true(l1->ecx & (1U << 21));	/* x2APIC */
			assert_int_equal(!!(l1->edx & (1U << 28)), cpus > 1);

			check_topology_leaf(&out.hdr, 0xb, id, cpus, bits);
			assert_null(cpuid_find(&out.hdr, 0x1f, 0));	/* max basic leaf 0x10 */

			struct kvm_cpuid_entry2 *l88 = cpuid_find(&out.hdr, 0x80000008, 0);
			assert_int_equal(l88->ecx & 0xff, cpus - 1);
			assert_int_equal((l88->ecx >> 12) & 0xf, bits);
			assert_int_equal(l88->ebx, 0x110ad205);	/* XSAVEERPTR etc. untouched */

			struct kvm_cpuid_entry2 *l1e = cpuid_find(&out.hdr, 0x8000001e, 0);
			assert_int_equal(l1e->eax, id);

			/* KVM's signature and features pass through. */
			struct kvm_cpuid_entry2 *kvm = cpuid_find(&out.hdr, 0x40000000, 0);
			assert_int_equal(kvm->ebx, 0x4b4d564b);
			assert_int_equal(cpuid_find(&out.hdr, 0x40000001, 0)->eax, 0x01007efb);
		}
	}
}

static void test_intel_topology(void **state)
{
	struct table host, out;

	intel_host(&host);
	assert_int_equal(cpuid_build(&host.hdr, 3, 4, &out.hdr, MAX), 0);
	check_topology_leaf(&out.hdr, 0xb, 3, 4, 2);
	check_topology_leaf(&out.hdr, 0x1f, 3, 4, 2);	/* max basic leaf 0x1f */
	/* Leaf 4: cores per package - 1 in bits 31:26, cache type kept. */
	struct kvm_cpuid_entry2 *l4 = cpuid_find(&out.hdr, 4, 3);
	assert_int_equal(l4->eax >> 26, 3);
	assert_int_equal(l4->eax & 0x1f, 3);
	assert_int_equal(cpuid_find(&out.hdr, 1, 0)->ebx >> 24, 3);
}

static void test_table_too_small(void **state)
{
	struct table host, out;

	amd_host(&host);
	/* The source has 8 entries, minus one 0xB, plus three new ones = 10. */
	assert_int_equal(cpuid_build(&host.hdr, 0, 1, &out.hdr, 9), -1);
	assert_int_equal(cpuid_build(&host.hdr, 0, 1, &out.hdr, 10), 0);
	assert_int_equal(out.hdr.nent, 10);
}

/* The real thing: whatever this host's KVM supports still gets our topology. */
static void test_real_kvm(void **state)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		skip();
	struct kvm_cpuid2 *sup = calloc(1, sizeof(*sup) + 256 * sizeof(sup->entries[0]));
	struct kvm_cpuid2 *out = calloc(1, sizeof(*out) + 262 * sizeof(out->entries[0]));
	sup->nent = 256;
	assert_int_equal(ioctl(kvm, KVM_GET_SUPPORTED_CPUID, sup), 0);
	assert_int_equal(cpuid_build(sup, 1, 2, out, 262), 0);
	check_topology_leaf(out, 0xb, 1, 2, 1);
	assert_int_equal(cpuid_find(out, 1, 0)->ebx >> 24, 1);
	assert_non_null(cpuid_find(out, 0x40000000, 0));
	free(sup);
	free(out);
	close(kvm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_amd_topology),
		cmocka_unit_test(test_intel_topology),
		cmocka_unit_test(test_table_too_small),
		cmocka_unit_test(test_real_kvm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
