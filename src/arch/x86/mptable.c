#include "arch/x86/mptable.h"

#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "util/log.h"
#include "vmm/memory.h"

/*
 * Layouts from the MP Specification 1.4, chapter 4 (Linux has them in
 * arch/x86/include/asm/mpspec_def.h, which is not a UAPI header).
 */
struct mp_floating {
	char signature[4];		/* "_MP_" */
	uint32_t physptr;		/* the configuration table */
	uint8_t length;			/* in 16-byte units: 1 */
	uint8_t spec;			/* 4: version 1.4 */
	uint8_t checksum;
	uint8_t feature[5];		/* 0: a table is present; no IMCR (virtual wire) */
} __attribute__((packed));
_Static_assert(sizeof(struct mp_floating) == 16, "MP floating pointer is 16 bytes");

struct mp_config {
	char signature[4];		/* "PCMP" */
	uint16_t length;		/* base table, entries included */
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oem_ptr;
	uint16_t oem_size;
	uint16_t count;			/* entries */
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct mp_config) == 44, "MP configuration table header is 44 bytes");

struct mp_cpu {
	uint8_t type;			/* 0 */
	uint8_t apic_id;
	uint8_t apic_version;
	uint8_t flags;			/* bit 0 enabled, bit 1 the boot processor */
	uint32_t signature;		/* CPUID 1 EAX: family 6 */
	uint32_t features;		/* CPUID 1 EDX: FPU, APIC */
	uint32_t reserved[2];
} __attribute__((packed));
_Static_assert(sizeof(struct mp_cpu) == 20, "MP processor entry is 20 bytes");

struct mp_bus {
	uint8_t type;			/* 1 */
	uint8_t bus_id;
	char bus_type[6];		/* "PCI   ", "ISA   " */
} __attribute__((packed));

struct mp_ioapic {
	uint8_t type;			/* 2 */
	uint8_t apic_id;
	uint8_t apic_version;
	uint8_t flags;			/* bit 0 enabled */
	uint32_t address;
} __attribute__((packed));

/* An I/O interrupt (type 3) or a local interrupt (type 4) assignment. */
struct mp_irq {
	uint8_t type;
	uint8_t irq_type;		/* 0 INT, 1 NMI, 3 ExtINT */
	uint16_t flags;			/* polarity bits 0-1, trigger bits 2-3; 0: the bus's */
	uint8_t src_bus;
	uint8_t src_irq;		/* ISA: the IRQ; PCI: slot << 2 | pin */
	uint8_t dst_apic;		/* the IOAPIC's ID; 0xff: every local APIC */
	uint8_t dst_pin;		/* IOAPIC pin or LINTn */
} __attribute__((packed));

_Static_assert(sizeof(struct mp_bus) == 8 && sizeof(struct mp_ioapic) == 8 &&
	       sizeof(struct mp_irq) == 8, "MP bus, IOAPIC and interrupt entries are 8 bytes");

#define MP_CPU 0
#define MP_BUS 1
#define MP_IOAPIC 2
#define MP_INTSRC 3
#define MP_LINTSRC 4

#define MP_IRQ_INT 0
#define MP_IRQ_NMI 1
#define MP_IRQ_EXTINT 3
#define MP_IRQ_PCI_FLAGS 0x0f		/* active low, level: as _PRT says */

#define MP_BUS_PCI 0			/* Linux numbers PCI buses in MP bus order: bus 0 */
#define MP_BUS_ISA 1
#define MP_IOAPIC_ID 0			/* as in the MADT */
#define MP_LAPIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11		/* KVM's IOAPIC: version 0x11, 24 pins */
#define MP_PIT_PIN 2			/* ISA IRQ 0 arrives at pin 2, as the MADT's override says */
#define MP_PCI_SLOTS 32

static size_t mp_put(uint8_t *buf, size_t len, size_t *off, const void *e, size_t n)
{
	if (*off + n > len)
		return 0;
	memcpy(buf + *off, e, n);
	*off += n;
	return n;
}

static void mp_put_irq(uint8_t *buf, size_t len, size_t *off, uint16_t *count, uint8_t type,
		       uint8_t irq_type, uint16_t flags, uint8_t bus, uint8_t src, uint8_t dst_apic,
		       uint8_t pin)
{
	struct mp_irq e = { type, irq_type, flags, bus, src, dst_apic, pin };

	if (mp_put(buf, len, off, &e, sizeof(e)))
		(*count)++;
}

size_t mptable_build(unsigned int nr_cpus, uint8_t *buf, size_t len, uint64_t base)
{
	size_t off = sizeof(struct mp_floating) + sizeof(struct mp_config), need;
	struct mp_floating fp = { .signature = "_MP_", .length = 1, .spec = 4 };
	struct mp_config h = { .signature = "PCMP", .spec = 4, .oem = "BOOTVM  ",
			       .product = "bootvm      ", .lapic = (uint32_t)LAYOUT_LAPIC };
	uint16_t count = 0;

	need = off + nr_cpus * sizeof(struct mp_cpu) + 2 * sizeof(struct mp_bus) +
	       sizeof(struct mp_ioapic) + (15 + MP_PCI_SLOTS * 4 + 2) * sizeof(struct mp_irq);
	if (!nr_cpus || nr_cpus > MPTABLE_MAX_CPUS || need > len || need > 0xffff) {
		log_error("MP table: %u CPUs need %zu bytes, %zu there", nr_cpus, need, len);
		return 0;
	}
	memset(buf, 0, need);
	for (unsigned int i = 0; i < nr_cpus; i++) {
		struct mp_cpu c = { .type = MP_CPU, .apic_id = (uint8_t)i,
				    .apic_version = MP_LAPIC_VERSION, .flags = i ? 1 : 3,
				    .signature = 0x600, .features = 0x201 };

		count += mp_put(buf, len, &off, &c, sizeof(c)) ? 1 : 0;
	}
	count += mp_put(buf, len, &off, &(struct mp_bus){ MP_BUS, MP_BUS_PCI, "PCI   " },
			sizeof(struct mp_bus)) ? 1 : 0;
	count += mp_put(buf, len, &off, &(struct mp_bus){ MP_BUS, MP_BUS_ISA, "ISA   " },
			sizeof(struct mp_bus)) ? 1 : 0;
	count += mp_put(buf, len, &off, &(struct mp_ioapic){ MP_IOAPIC, MP_IOAPIC_ID,
			MP_IOAPIC_VERSION, 1, (uint32_t)LAYOUT_IOAPIC },
			sizeof(struct mp_ioapic)) ? 1 : 0;
	/* ISA IRQs 0-15 on the IOAPIC's first pins, IRQ 0 on pin 2 (pin 0 is the 8259's). */
	for (unsigned int irq = 0; irq < 16; irq++)
		if (irq != MP_PIT_PIN)
			mp_put_irq(buf, len, &off, &count, MP_INTSRC, MP_IRQ_INT, 0, MP_BUS_ISA,
				   (uint8_t)irq, MP_IOAPIC_ID, irq ? (uint8_t)irq : MP_PIT_PIN);
	/* PCI INTx as _PRT routes it: slot S pin P to GSI 16 + (S + P) % 4. */
	for (unsigned int slot = 0; slot < MP_PCI_SLOTS; slot++)
		for (unsigned int pin = 0; pin < 4; pin++)
			mp_put_irq(buf, len, &off, &count, MP_INTSRC, MP_IRQ_INT, MP_IRQ_PCI_FLAGS,
				   MP_BUS_PCI, (uint8_t)(slot << 2 | pin), MP_IOAPIC_ID,
				   (uint8_t)(IRQ_PCI_BASE + (slot + pin) % IRQ_PCI_COUNT));
	/* Virtual wire, as each LAPIC's LVT is set up: LINT0 ExtINT, LINT1 NMI. */
	mp_put_irq(buf, len, &off, &count, MP_LINTSRC, MP_IRQ_EXTINT, 0, MP_BUS_ISA, 0, 0xff, 0);
	mp_put_irq(buf, len, &off, &count, MP_LINTSRC, MP_IRQ_NMI, 0, MP_BUS_ISA, 0, 0xff, 1);

	h.length = (uint16_t)(off - sizeof(fp));
	h.count = count;
	memcpy(buf + sizeof(fp), &h, sizeof(h));
	buf[sizeof(fp) + offsetof(struct mp_config, checksum)] =
		acpi_checksum(buf + sizeof(fp), h.length);
	fp.physptr = (uint32_t)(base + sizeof(fp));
	memcpy(buf, &fp, sizeof(fp));
	buf[offsetof(struct mp_floating, checksum)] = acpi_checksum(buf, sizeof(fp));
	return off;
}

int mptable_install(struct guest_mem *mem, unsigned int nr_cpus)
{
	const uint64_t room = LAYOUT_ACPI - LAYOUT_MPTABLE;
	uint8_t *host = guest_mem_ptr(mem, LAYOUT_MPTABLE, room);

	if (!host) {
		log_error("MP table: guest RAM does not cover 0x%llx-0x%llx",
			  (unsigned long long)LAYOUT_MPTABLE, (unsigned long long)LAYOUT_ACPI - 1);
		return -1;
	}
	return mptable_build(nr_cpus, host, room, LAYOUT_MPTABLE) ? 0 : -1;
}
