/*
 * arch/x86/mptable.c: the MP table a guest booted with acpi=off reads. Walked
 * here as Linux's mpparse.c walks it: checksums, the entry count, and the
 * machine it describes against the MADT's and _PRT's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "helpers.h"
#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "util/log.h"

#define BASE 0x9fc00u

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

struct walked {
	unsigned int cpus, bsp, buses, ioapics, isa_irqs, pci_irqs, lints;
	int isa_pin[16];		/* -1: not routed */
	int pci_pin[32][4];
	uint8_t lint_type[2];
};

static void walk(const uint8_t *buf, size_t used, struct walked *w)
{
	const uint8_t *h, *e, *end;
	uint16_t len, count;
	int pci_bus = -1, isa_bus = -1;

	memset(w, 0, sizeof(*w));
	memset(w->isa_pin, -1, sizeof(w->isa_pin));
	memset(w->pci_pin, -1, sizeof(w->pci_pin));
	/* Floating pointer: "_MP_", 16 bytes, spec 1.4, sums to 0, a table (feature1 0). */
	assert_memory_equal(buf, "_MP_", 4);
	assert_int_equal(buf[8], 1);
	assert_int_equal(buf[9], 4);
	assert_int_equal(sum(buf, 16), 0);
	assert_int_equal(buf[11], 0);
	assert_true(le32(buf + 4) >= BASE && le32(buf + 4) < BASE + used);
	h = buf + (le32(buf + 4) - BASE);
	assert_memory_equal(h, "PCMP", 4);
	len = (uint16_t)(h[4] | h[5] << 8);
	count = (uint16_t)(h[34] | h[35] << 8);
	assert_int_equal(h[6], 4);
	assert_true(h + len <= buf + used);
	assert_int_equal(sum(h, len), 0);
	assert_int_equal(le32(h + 36), LAYOUT_LAPIC);
	e = h + 44;
	end = h + len;
	for (unsigned int i = 0; i < count; i++) {
		assert_true(e < end);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], w->cpus);	/* APIC IDs 0..N-1 as in the MADT */
			assert_true(e[3] & 1);
			w->bsp += (e[3] & 2) != 0;
			if (e[3] & 2)
				assert_int_equal(e[1], 0);
			w->cpus++;
			e += 20;
			continue;
		case 1:
			if (!memcmp(e + 2, "PCI   ", 6))
				pci_bus = e[1];
			else if (!memcmp(e + 2, "ISA   ", 6))
				isa_bus = e[1];
			w->buses++;
			break;
		case 2:
			assert_int_equal(e[1], 0);
			assert_true(e[3] & 1);
			assert_int_equal(le32(e + 4), LAYOUT_IOAPIC);
			w->ioapics++;
			break;
		case 3:
			assert_int_equal(e[1], 0);	/* INT */
			assert_int_equal(e[6], 0);	/* the IOAPIC */
			if (e[4] == isa_bus) {
				assert_true(e[5] < 16);
				w->isa_pin[e[5]] = e[7];
				w->isa_irqs++;
			} else {
				assert_int_equal(e[4], pci_bus);
				assert_int_equal(e[2], 0x0f);	/* level, active low */
				w->pci_pin[e[5] >> 2][e[5] & 3] = e[7];
				w->pci_irqs++;
			}
			break;
		case 4:
			assert_int_equal(e[6], 0xff);
			assert_true(e[7] < 2);
			w->lint_type[e[7]] = e[1];
			w->lints++;
			break;
		default:
			fail_msg("entry %u: type %u", i, e[0]);
		}
		e += 8;
	}
	assert_ptr_equal(e, end);
	assert_int_equal(pci_bus, 0);	/* Linux numbers PCI buses in MP bus order */
	assert_true(isa_bus >= 0);
}

static void test_layout(void **state)
{
	static uint8_t buf[0x40400];
	struct walked w;

	(void)state;
	for (unsigned int n = 1; n <= MPTABLE_MAX_CPUS; n += n < 4 ? 1 : 63) {
		size_t used = mptable_build(n, buf, sizeof(buf), BASE);

		assert_true(used > 0);
		walk(buf, used, &w);
		assert_int_equal(w.cpus, n);
		assert_int_equal(w.bsp, 1);
		assert_int_equal(w.buses, 2);
		assert_int_equal(w.ioapics, 1);
		assert_int_equal(w.lints, 2);
		assert_int_equal(w.lint_type[0], 3);	/* LINT0 ExtINT, LINT1 NMI: virtual wire */
		assert_int_equal(w.lint_type[1], 1);
		/* ISA: IRQ 0 on pin 2 (the MADT's override), the others on their own pin. */
		assert_int_equal(w.isa_irqs, 15);
		assert_int_equal(w.isa_pin[0], 2);
		assert_int_equal(w.isa_pin[2], -1);
		for (int irq = 1; irq < 16; irq++)
			if (irq != 2)
				assert_int_equal(w.isa_pin[irq], irq);
		/* PCI: slot S pin P on GSI 16 + (S + P) % 4, as _PRT says. */
		assert_int_equal(w.pci_irqs, 32 * 4);
		for (int s = 0; s < 32; s++)
			for (int p = 0; p < 4; p++)
				assert_int_equal(w.pci_pin[s][p], IRQ_PCI_BASE + (s + p) % IRQ_PCI_COUNT);
		/* Everything fits between the EBDA and the ACPI tables. */
		assert_true(BASE + used <= LAYOUT_ACPI);
	}
}

static void test_refused(void **state)
{
	static uint8_t buf[8192];
	struct helper_log log = { 0 };

	(void)state;
	log_set_sink(helper_log_sink, &log);
	assert_int_equal(mptable_build(0, buf, sizeof(buf), BASE), 0);
	assert_int_equal(mptable_build(MPTABLE_MAX_CPUS + 1, buf, sizeof(buf), BASE), 0);
	assert_int_equal(mptable_build(2, buf, 1024, BASE), 0);
	assert_int_equal(mptable_build(255, buf, 6000, BASE), 0);	/* 255 CPUs need 6344 bytes */
	log_set_sink(NULL, NULL);
	assert_int_equal(log.errors, 4);
	assert_non_null(strstr(log.last_error, "MP table: 255 CPUs need"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
