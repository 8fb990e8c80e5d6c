/*
 * arch/x86/acpi.c and aml.c: the guest's ACPI tables, checked byte by byte
 * against the ACPI 6.3 layouts (offsets written out here independently of
 * acpi.c's structs), then handed to ACPICA's own tools (Debian package
 * acpica-tools): iasl must disassemble every table cleanly and recompile the
 * disassembly into the same bytes, and acpiexec (the ACPICA core Linux
 * uses) must load them without a warning and evaluate the DSDT's objects.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "devices/acpi_pm.h"
#include "devices/pvpanic.h"
#include "devices/serial.h"
#include "util/aml.h"
#include "util/log.h"
#include "vmm/memory.h"

#include "helpers.h"

#define ACPI_ROOM (LAYOUT_ACPI_END - LAYOUT_ACPI)

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* The tables of one build, located by following the pointers from the RSDP. */
struct tables {
	uint8_t *buf;
	size_t used;
	uint64_t base;
	const uint8_t *rsdp, *xsdt, *fadt, *facs, *dsdt, *madt;
};

/* The table at guest address addr, checked to lie inside what was built. */
static const uint8_t *at(const struct tables *t, uint64_t addr, size_t min_len)
{
	assert_true(addr >= t->base);
	assert_true(addr - t->base + min_len <= t->used);
	return t->buf + (addr - t->base);
}

static const uint8_t *sdt(const struct tables *t, uint64_t addr, const char *sig)
{
	const uint8_t *p = at(t, addr, 36);
	uint32_t len = le32(p + 4);

	assert_memory_equal(p, sig, 4);
	assert_true(len >= 36);
	at(t, addr, len);
	assert_int_equal(sum8(p, len), 0);
	assert_memory_equal(p + 10, "BOOTVM", 6);		/* OEM ID */
	assert_memory_equal(p + 16, "BOOTVM", 6);		/* OEM table ID "BOOTVMxx" */
	assert_int_not_equal(le32(p + 24), 0);			/* OEM revision */
	assert_memory_equal(p + 28, "BTVM", 4);		/* creator ID */
	return p;
}

/* The devices the board puts under \_SB: COM1 and pvpanic, each emitting its own AML. */
static struct aml board_devices;

static const struct aml *devices_aml(void)
{
	if (!board_devices.growable) {
		aml_init_growable(&board_devices);
		serial_aml(&board_devices, "COM1", 1, PORT_COM1, IRQ_COM1);
		pvpanic_aml(&board_devices, PORT_PVPANIC);
		assert_false(board_devices.overflow);
	}
	return &board_devices;
}

static void build(struct tables *t, unsigned int nr_cpus)
{
	struct acpi_config cfg = { .nr_cpus = nr_cpus, .dsdt_devices = devices_aml() };
	size_t rsdp_off = 99;

	memset(t, 0, sizeof(*t));
	t->base = LAYOUT_ACPI;
	t->buf = malloc(ACPI_ROOM);
	assert_non_null(t->buf);
	memset(t->buf, 0xa5, ACPI_ROOM);	/* the builder must not rely on zeroed memory */
	t->used = acpi_build_tables(&cfg, t->buf, ACPI_ROOM, t->base, &rsdp_off);
	assert_true(t->used > 0);
	assert_true(t->used <= ACPI_ROOM);

	/* RSDP: revision 2, both checksums, XSDT. */
	t->rsdp = t->buf + rsdp_off;
	assert_int_equal((t->base + rsdp_off) % 16, 0);
	assert_memory_equal(t->rsdp, "RSD PTR ", 8);
	assert_int_equal(sum8(t->rsdp, 20), 0);
	assert_int_equal(t->rsdp[15], 2);
	assert_int_equal(le32(t->rsdp + 20), 36);
	assert_int_equal(sum8(t->rsdp, 36), 0);
	assert_memory_equal(t->rsdp + 9, "BOOTVM", 6);

	t->xsdt = sdt(t, le64(t->rsdp + 24), "XSDT");
	assert_int_equal(le32(t->xsdt + 4), 36 + 2 * 8);
	t->fadt = sdt(t, le64(t->xsdt + 36), "FACP");
	t->madt = sdt(t, le64(t->xsdt + 44), "APIC");
	t->dsdt = sdt(t, le64(t->fadt + 140), "DSDT");
	t->facs = at(t, le32(t->fadt + 36), 64);
}

static void done(struct tables *t)
{
	free(t->buf);
}

/* ---- AML encoder ---- */

static size_t pkglength_decode(const uint8_t *p, size_t *total)
{
	size_t n = p[0] >> 6;

	if (!n) {
		*total = p[0] & 0x3f;
		return 1;
	}
	assert_int_equal(p[0] & 0x30, 0);	/* reserved bits */
	*total = p[0] & 0x0f;
	for (size_t i = 1; i <= n; i++)
		*total |= (size_t)p[i] << (4 + 8 * (i - 1));
	return n + 1;
}

static void test_aml_pkglength(void **state)
{
	static const struct {
		size_t body, bytes;
	} cases[] = {
		{ 0, 1 }, { 1, 1 }, { 62, 1 }, { 63, 2 }, { 64, 2 }, { 4093, 2 },
		{ 4094, 3 }, { 1048572, 3 }, { 1048573, 4 }, { (1U << 28) - 5, 4 },
	};
	uint8_t enc[4];
	size_t total;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = aml_pkglength_encode(cases[i].body, enc);

		assert_int_equal(n, cases[i].bytes);
		assert_int_equal(pkglength_decode(enc, &total), n);
		assert_int_equal(total, cases[i].body + n);	/* counts itself */
	}
	for (size_t body = 0; body < 70000; body += 7) {
		size_t n = aml_pkglength_encode(body, enc);

		assert_int_equal(pkglength_decode(enc, &total), n);
		assert_int_equal(total, body + n);
	}
	assert_int_equal(aml_pkglength_encode((1U << 28) - 4, enc), 0);
}

static void test_aml_integers_names(void **state)
{
	static const uint8_t want[] = {
		0x00, 0x01, 0x0a, 0x02, 0x0a, 0xff, 0x0b, 0x00, 0x01, 0x0b, 0xff, 0xff,
		0x0c, 0x00, 0x00, 0x01, 0x00, 0x0c, 0xff, 0xff, 0xff, 0xff,
		0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
		0x5c, 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1',
		0x5c, 0x2f, 0x03, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'S', '0', '0', '_',
		0x5e, 0x5e, 'F', 'O', 'O', '_',
		0x5c, 0x00,
		'_', 'S', 'T', 'A',
		0x0d, 'Q', 'E', 'M', 'U', '0', '0', '0', '1', 0x00,
		0x0c, 0x41, 0xd0, 0x05, 0x01,
	};
	uint8_t buf[128];
	struct aml a;

	aml_init(&a, buf, sizeof(buf));
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 2);
	aml_integer(&a, 0xff);
	aml_integer(&a, 0x100);
	aml_integer(&a, 0xffff);
	aml_integer(&a, 0x10000);
	aml_integer(&a, 0xffffffff);
	aml_integer(&a, 0x100000000ULL);
	aml_namestring(&a, "\\_SB.COM1");
	aml_namestring(&a, "\\_SB.PCI0.S00");
	aml_namestring(&a, "^^FOO");
	aml_namestring(&a, "\\");
	aml_namestring(&a, "_STA");
	aml_string(&a, "QEMU0001");
	aml_eisaid(&a, "PNP0501");
	assert_false(a.overflow);
	assert_int_equal(a.len, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));

	assert_int_equal(aml_eisaid_value("PNP0501"), 0x0105d041);
	assert_int_equal(aml_eisaid_value("PNP0A03"), 0x030ad041);
	assert_int_equal(aml_eisaid_value("pnp0501"), 0);
	assert_int_equal(aml_eisaid_value("PNP050"), 0);
}

static void test_aml_bad_names(void **state)
{
	static const char *const bad[] = { "1ABC", "ABCDE", "a", "A..B", "A.", ".A", "\\_SB.", NULL };
	uint8_t buf[32];
	struct aml a;

	for (int i = 0; bad[i]; i++) {
		aml_init(&a, buf, sizeof(buf));
		aml_namestring(&a, bad[i]);
		assert_true(a.overflow);
	}
	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "XYZ");
	assert_true(a.overflow);
}

/* Nested objects: each PkgLength is shrunk to fit once its object closes. */
static void test_aml_nesting(void **state)
{
	uint8_t buf[512], big[100];
	size_t scope, dev, total;
	struct aml a;

	memset(big, 0x77, sizeof(big));
	aml_init(&a, buf, sizeof(buf));
	scope = aml_scope_begin(&a, "\\_SB");
	dev = aml_device_begin(&a, "DEV0");
	aml_name(&a, "BUF0");
	aml_buffer(&a, big, sizeof(big));
	aml_method_return_integer(&a, "_STA", 0x0f);
	aml_end(&a, dev);
	aml_end(&a, scope);
	assert_false(a.overflow);

	/* Scope: 0x10, PkgLength (2 bytes: the body is over 63), \_SB_ ... */
	assert_int_equal(buf[0], 0x10);
	assert_int_equal(pkglength_decode(buf + 1, &total), 2);
	assert_int_equal(1 + total, a.len);
	assert_memory_equal(buf + 3, "\\_SB_", 5);
	/* Device: 5B 82 PkgLength DEV0 */
	assert_int_equal(buf[8], 0x5b);
	assert_int_equal(buf[9], 0x82);
	assert_int_equal(pkglength_decode(buf + 10, &total), 2);
	assert_int_equal(10 + total, a.len);
	assert_memory_equal(buf + 12, "DEV0", 4);
	/* Name (BUF0, Buffer (100) {...}) */
	assert_int_equal(buf[16], 0x08);
	assert_memory_equal(buf + 17, "BUF0", 4);
	assert_int_equal(buf[21], 0x11);
	assert_int_equal(pkglength_decode(buf + 22, &total), 2);
	assert_int_equal(total, 2 + 2 + sizeof(big));	/* PkgLength, 0A 64, bytes */
	assert_int_equal(buf[24], 0x0a);
	assert_int_equal(buf[25], sizeof(big));
	assert_memory_equal(buf + 26, big, sizeof(big));
	/* Method (_STA, 0, NotSerialized) { Return (0x0F) } */
	static const uint8_t sta[] = { 0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f };
	assert_int_equal(a.len, 126 + sizeof(sta));
	assert_memory_equal(buf + 126, sta, sizeof(sta));
}

static void test_aml_overflow(void **state)
{
	uint8_t buf[16 + 1];
	struct aml a;
	size_t m;

	buf[16] = 0xee;		/* guard byte past the capacity */
	aml_init(&a, buf, 16);
	m = aml_device_begin(&a, "DEV0");
	aml_name_string(&a, "_HID", "QEMU0001");
	aml_end(&a, m);
	assert_true(a.overflow);
	assert_true(a.len <= 16);
	assert_int_equal(buf[16], 0xee);

	aml_init(&a, buf, 16);
	aml_end(&a, 3);		/* not a mark from *_begin() */
	assert_true(a.overflow);
}

/* ---- the tables ---- */

static void check_fadt(const struct tables *t)
{
	const uint8_t *f = t->fadt;

	assert_int_equal(le32(f + 4), 276);
	assert_int_equal(f[8], 6);				/* revision */
	assert_int_equal(f[131], 3);				/* minor version: ACPI 6.3 */

	/* FACS through FIRMWARE_CTRL only (X_FIRMWARE_CTRL must then be 0). */
	assert_int_equal(le32(f + 36) % 64, 0);
	assert_int_equal(le64(f + 132), 0);
	assert_memory_equal(t->facs, "FACS", 4);
	assert_int_equal(le32(t->facs + 4), 64);
	assert_int_equal(t->facs[32], 2);			/* FACS version */
	assert_int_equal(le32(t->facs + 16), 0);		/* global lock free */
	/* DSDT and X_DSDT agree. */
	assert_int_equal(le32(f + 40), le64(f + 140));

	assert_int_equal(le16(f + 46), IRQ_ACPI_SCI);
	assert_int_equal(le32(f + 48), 0);			/* SMI_CMD: always in ACPI mode */
	assert_int_equal(f[52], 0);
	assert_int_equal(f[53], 0);

	/* Legacy blocks: PM1a event 0x600/4, PM1a control 0x604/2, nothing else. */
	assert_int_equal(le32(f + 56), PORT_ACPI_PM1A_EVT);
	assert_int_equal(le32(f + 64), PORT_ACPI_PM1A_CNT);
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	for (int off = 60; off <= 84; off += 4)
		if (off != 64)
			assert_int_equal(le32(f + off), 0);	/* PM1b, PM2, PM timer, GPE0/1 */
	for (int off = 90; off <= 94; off++)
		assert_int_equal(f[off], 0);			/* their lengths, GPE1 base */

	/* X_ blocks: GAS SystemIO matching the legacy ones (what ACPICA compares). */
	static const struct {
		int gas, addr32, len;
	} blocks[] = {
		{ 148, 56, 88 }, { 160, 60, 88 }, { 172, 64, 89 }, { 184, 68, 89 },
		{ 196, 72, 90 }, { 208, 76, 91 }, { 220, 80, 92 }, { 232, 84, 93 },
	};
	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
		const uint8_t *g = f + blocks[i].gas;
		uint32_t a32 = le32(f + blocks[i].addr32);

		assert_int_equal(le64(g + 4), a32);
		if (a32) {
			assert_int_equal(g[0], 1);		/* SystemIO */
			assert_int_equal(g[1], 8 * f[blocks[i].len]);
			assert_int_equal(g[2], 0);
			assert_in_range(g[3], 1, 3);
		} else {
			assert_int_equal(g[1], 0);
		}
	}
	assert_int_equal(le64(f + 244 + 4), 0);		/* no sleep control/status regs */
	assert_int_equal(le64(f + 256 + 4), 0);

	/* Reset register: SystemIO 0x608, 8 bits, value 1, and the flag saying so. */
	assert_int_equal(f[116], 1);
	assert_int_equal(f[117], 8);
	assert_int_equal(f[118], 0);
	assert_int_equal(f[119], 1);
	assert_int_equal(le64(f + 120), PORT_ACPI_RESET);
	assert_int_equal(f[128], ACPI_PM_RESET_VALUE);

	uint32_t flags = le32(f + 112);
	assert_true(flags & (1U << 0));		/* WBINVD */
	assert_false(flags & (1U << 4));	/* PWR_BUTTON clear: the fixed-feature power button */
	assert_true(flags & (1U << 5));		/* SLP_BUTTON: control method / none */
	assert_true(flags & (1U << 6));		/* FIX_RTC: no RTC wake status */
	assert_true(flags & (1U << 10));	/* RESET_REG_SUP */
	assert_false(flags & (1U << 8));	/* TMR_VAL_EXT: there is no PM timer */
	assert_false(flags & (1U << 20));	/* not HW_REDUCED_ACPI */
	assert_false(flags & (1U << 21));	/* not LOW_POWER_S0_IDLE */

	uint16_t boot = le16(f + 109);
	assert_false(boot & (1U << 1));		/* no 8042: Linux would probe it for 0.5 s */
	assert_true(boot & (1U << 2));		/* VGA not present */
	assert_true(boot & (1U << 5));		/* CMOS RTC not present */
	assert_false(boot & (1U << 3));		/* MSI is not declared unsupported */
	assert_int_equal(f[108], 0);		/* no RTC century register */
}

static void test_tables_fadt(void **state)
{
	struct tables t;

	build(&t, 2);
	check_fadt(&t);
	done(&t);
}

static void check_madt(const struct tables *t, unsigned int nr_cpus)
{
	const uint8_t *m = t->madt, *p, *end = m + le32(m + 4);
	unsigned int lapics = 0, ioapics = 0, isos = 0, nmis = 0, others = 0;

	assert_int_equal(le32(m + 36), LAYOUT_LAPIC);
	assert_int_equal(le32(m + 40), 1);		/* PCAT_COMPAT */
	for (p = m + 44; p < end; p += p[1]) {
		assert_true(p[1] >= 2);
		assert_true(p + p[1] <= end);
		switch (p[0]) {
		case 0:
			assert_int_equal(p[1], 8);
			assert_int_equal(p[2], lapics);		/* processor UID */
			assert_int_equal(p[3], lapics);		/* APIC ID = vCPU number */
			assert_int_equal(le32(p + 4), 1);	/* enabled */
			lapics++;
			break;
		case 1:
			assert_int_equal(p[1], 12);
			assert_int_equal(p[2], 0);
			assert_int_equal(le32(p + 4), LAYOUT_IOAPIC);
			assert_int_equal(le32(p + 8), 0);
			ioapics++;
			break;
		case 2:
			assert_int_equal(p[1], 10);
			assert_int_equal(p[2], 0);		/* ISA */
			if (p[3] == 0) {
				assert_int_equal(le32(p + 4), 2);
				assert_int_equal(le16(p + 8), 0);
			} else {
				assert_int_equal(p[3], IRQ_ACPI_SCI);
				assert_int_equal(le32(p + 4), IRQ_ACPI_SCI);
				assert_int_equal(le16(p + 8), 0x000d);	/* level, active high */
			}
			isos++;
			break;
		case 4:
			assert_int_equal(p[1], 6);
			assert_int_equal(p[2], 0xff);		/* all processors */
			assert_int_equal(le16(p + 3), 0);
			assert_int_equal(p[5], 1);		/* LINT1 */
			nmis++;
			break;
		default:
			others++;
		}
	}
	assert_ptr_equal(p, end);
	assert_int_equal(lapics, nr_cpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 2);
	assert_int_equal(nmis, 1);
	assert_int_equal(others, 0);
}

/* Every table inside [LAYOUT_ACPI, LAYOUT_ACPI_END), none overlapping another. */
static void check_placement(const struct tables *t)
{
	const uint8_t *tabs[] = { t->rsdp, t->xsdt, t->fadt, t->facs, t->dsdt, t->madt };
	size_t lens[6] = { 36, le32(t->xsdt + 4), le32(t->fadt + 4), 64, le32(t->dsdt + 4),
			   le32(t->madt + 4) };

	for (int i = 0; i < 6; i++) {
		uint64_t a = t->base + (uint64_t)(tabs[i] - t->buf);

		assert_true(a >= LAYOUT_ACPI);
		assert_true(a + lens[i] <= LAYOUT_ACPI_END);
		assert_true((size_t)(tabs[i] - t->buf) + lens[i] <= t->used);
		for (int j = 0; j < i; j++) {
			uint64_t b = t->base + (uint64_t)(tabs[j] - t->buf);
			assert_true(a + lens[i] <= b || b + lens[j] <= a);
		}
	}
}

static void test_tables_madt_cpus(void **state)
{
	static const unsigned int counts[] = { 1, 2, 4, 255 };

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct tables t;

		build(&t, counts[i]);
		check_madt(&t, counts[i]);
		check_fadt(&t);
		check_placement(&t);
		assert_int_equal(le32(t.madt + 4), 44 + 8 * counts[i] + 12 + 2 * 10 + 6);
		done(&t);
	}
}

static const uint8_t *find(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	return memmem(hay, n, needle, m);
}

static void test_tables_dsdt(void **state)
{
	/* Name (\_S5_, Package (4) { 5, 5, 0, 0 }) */
	static const uint8_t s5[] = { 0x08, 0x5c, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
				      0x0a, ACPI_PM_S5_SLP_TYP, 0x0a, ACPI_PM_S5_SLP_TYP, 0x00, 0x00 };
	static const uint8_t sb[] = { 0x10 };
	static const uint8_t com1_hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01 };
	static const uint8_t uid1[] = { 0x08, '_', 'U', 'I', 'D', 0x01 };
	static const uint8_t sta[] = { 0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f };
	/* Name (_CRS, Buffer (13) { IO (Decode16, 0x3F8, 0x3F8, 0, 8), IRQNoFlags {4}, End }) */
	static const uint8_t com1_crs[] = { 0x08, '_', 'C', 'R', 'S', 0x11, 0x10, 0x0a, 0x0d,
					    0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08,
					    0x22, 0x10, 0x00, 0x79, 0x00 };
	static const uint8_t pevt_hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0d, 'Q', 'E', 'M', 'U',
					    '0', '0', '0', '1', 0x00 };
	static const uint8_t pevt_crs[] = { 0x08, '_', 'C', 'R', 'S', 0x11, 0x0d, 0x0a, 0x0a,
					    0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01,
					    0x79, 0x00 };
	struct tables t;
	const uint8_t *aml, *p, *com1, *pevt;
	size_t n, total;

	build(&t, 1);
	assert_int_equal(t.dsdt[8], 2);		/* revision 2: 64-bit integers */
	aml = t.dsdt + 36;
	n = le32(t.dsdt + 4) - 36;

	/* The AML is exactly: \_S5_, then Scope (\_SB) { COM1, PEVT }. */
	assert_memory_equal(aml, s5, sizeof(s5));
	p = aml + sizeof(s5);
	assert_memory_equal(p, sb, sizeof(sb));
	p += 1 + pkglength_decode(p + 1, &total);
	assert_ptr_equal(aml + sizeof(s5) + 1 + total, aml + n);
	assert_memory_equal(p, "\\_SB_", 5);

	com1 = find(aml, n, "COM1", 4);
	pevt = find(aml, n, "PEVT", 4);
	assert_non_null(com1);
	assert_non_null(pevt);
	assert_true(com1 < pevt);
	assert_int_equal(com1[-3], 0x5b);	/* Device: 5B 82 PkgLength(1 byte) name */
	assert_int_equal(com1[-2], 0x82);
	assert_int_equal(pevt[-3], 0x5b);	/* its PkgLength takes 1 byte too */
	assert_int_equal(pevt[-2], 0x82);
	assert_ptr_equal(com1 - 1 + com1[-1], pevt - 3);	/* COM1 ends where PEVT starts */
	assert_ptr_equal(pevt - 1 + pevt[-1], aml + n);

	size_t com1_len = (size_t)(pevt - 3 - com1), pevt_len = (size_t)(aml + n - pevt);
	assert_non_null(find(com1, com1_len, com1_hid, sizeof(com1_hid)));
	assert_non_null(find(com1, com1_len, uid1, sizeof(uid1)));
	assert_non_null(find(com1, com1_len, sta, sizeof(sta)));
	assert_non_null(find(com1, com1_len, com1_crs, sizeof(com1_crs)));
	assert_non_null(find(pevt, pevt_len, pevt_hid, sizeof(pevt_hid)));
	assert_non_null(find(pevt, pevt_len, sta, sizeof(sta)));
	assert_non_null(find(pevt, pevt_len, pevt_crs, sizeof(pevt_crs)));
	done(&t);
}

static void test_tables_too_small(void **state)
{
	struct acpi_config cfg = { .nr_cpus = 255, .dsdt_devices = devices_aml() };
	struct helper_log c = { 0 };
	size_t need, rsdp_off;
	uint8_t *buf = malloc(ACPI_ROOM);

	assert_non_null(buf);
	need = acpi_build_tables(&cfg, buf, ACPI_ROOM, LAYOUT_ACPI, &rsdp_off);
	assert_true(need > 0);

	log_set_sink(helper_log_sink, &c);
	memset(buf, 0x5a, ACPI_ROOM);
	assert_int_equal(acpi_build_tables(&cfg, buf, need - 1, LAYOUT_ACPI, &rsdp_off), 0);
	assert_int_equal(c.errors, 1);
	assert_non_null(strstr(c.last_error, "ACPI"));
	for (size_t i = 0; i < ACPI_ROOM; i++)
		assert_int_equal(buf[i], 0x5a);		/* nothing written */

	assert_int_equal(acpi_build_tables(&cfg, buf, 0, LAYOUT_ACPI, &rsdp_off), 0);
	assert_int_equal(c.errors, 2);

	/* vCPU counts the MADT cannot describe. */
	cfg.nr_cpus = 0;
	assert_int_equal(acpi_build_tables(&cfg, buf, ACPI_ROOM, LAYOUT_ACPI, &rsdp_off), 0);
	cfg.nr_cpus = 256;
	assert_int_equal(acpi_build_tables(&cfg, buf, ACPI_ROOM, LAYOUT_ACPI, &rsdp_off), 0);
	assert_int_equal(c.errors, 4);
	assert_int_equal(c.warnings, 0);
	log_set_sink(NULL, NULL);

	/* Exactly enough is enough. */
	cfg.nr_cpus = 255;
	assert_int_equal(acpi_build_tables(&cfg, buf, need, LAYOUT_ACPI, &rsdp_off), need);
	free(buf);
}

/* An unaligned base still gets a 16-byte-aligned RSDP and a 64-byte-aligned FACS. */
static void test_tables_unaligned_base(void **state)
{
	struct acpi_config cfg = { .nr_cpus = 3, .dsdt_devices = devices_aml() };
	static uint8_t buf[8192];
	uint64_t base = 0x10003;
	size_t rsdp_off, used;

	used = acpi_build_tables(&cfg, buf, sizeof(buf), base, &rsdp_off);
	assert_true(used > 0);
	assert_int_equal((base + rsdp_off) % 16, 0);
	const uint8_t *rsdp = buf + rsdp_off;
	const uint8_t *xsdt = buf + (le64(rsdp + 24) - base);
	const uint8_t *fadt = buf + (le64(xsdt + 36) - base);
	assert_memory_equal(fadt, "FACP", 4);
	assert_int_equal(le32(fadt + 36) % 64, 0);
	assert_memory_equal(buf + (le32(fadt + 36) - base), "FACS", 4);
}

static void test_install(void **state)
{
	struct acpi_config cfg = { .nr_cpus = 255, .dsdt_devices = devices_aml() };
	struct helper_log c = { 0 };
	struct guest_mem m;
	uint64_t rsdp = 0;
	uint8_t sig[8];

	assert_int_equal(guest_mem_init(&m, 2ULL << 20, LAYOUT_MMIO_HOLE_START), 0);
	assert_int_equal(acpi_install(&m, &cfg, &rsdp), 0);
	assert_int_equal(rsdp, LAYOUT_ACPI);
	assert_int_equal(guest_mem_read(&m, rsdp, sig, 8), 0);
	assert_memory_equal(sig, "RSD PTR ", 8);
	guest_mem_destroy(&m);

	/* RAM that stops short of the ACPI area: one error, -1. */
	assert_int_equal(guest_mem_init(&m, 512ULL << 10, LAYOUT_MMIO_HOLE_START), 0);
	log_set_sink(helper_log_sink, &c);
	assert_int_equal(acpi_install(&m, &cfg, &rsdp), -1);
	log_set_sink(NULL, NULL);
	assert_int_equal(c.errors, 1);
	guest_mem_destroy(&m);

	/* A bad configuration: one error (from the builder), -1. */
	assert_int_equal(guest_mem_init(&m, 2ULL << 20, LAYOUT_MMIO_HOLE_START), 0);
	cfg.nr_cpus = 0;
	c.errors = 0;
	log_set_sink(helper_log_sink, &c);
	assert_int_equal(acpi_install(&m, &cfg, &rsdp), -1);
	log_set_sink(NULL, NULL);
	assert_int_equal(c.errors, 1);
	guest_mem_destroy(&m);
}

/* ---- ACPICA's tools ---- */

/* Run argv in dir; *out (free it) is its stdout and stderr together; returns the exit status. */
static int run_in(const char *dir, const char *const argv[], char **out)
{
	struct helper_result r;

	helper_run(&r, dir, argv, HELPER_MERGE_OUTPUT);
	if (r.status == 127 && strstr(r.out, "exec "))
		fail_msg("%s is not installed (Debian package acpica-tools): %s", argv[0], r.out);
	*out = r.out;
	r.out = NULL;
	int status = r.status;
	helper_result_free(&r);
	return status;
}

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char *path = helper_asprintf("%s/%s", dir, name);

	helper_write_file(path, p, n, 0644);
	free(path);
}

/* dir/name, which the tool must have written (free it). */
static uint8_t *read_file(const char *dir, const char *name, size_t *len)
{
	char *path = helper_asprintf("%s/%s", dir, name);
	uint8_t *buf = helper_read_file(path, len);

	if (!buf)
		fail_msg("%s was not written", path);
	free(path);
	return buf;
}

#define IASL_CLEAN "Compilation successful. 0 Errors, 0 Warnings, 0 Remarks"

/* Complaints ACPICA's tools print; none may appear. */
static void assert_no_complaints(const char *tool, const char *table, const char *out)
{
	static const char *const bad[] = {
		"Error", "error(s)", "Warning", "warning", "Invalid", "invalid", "does not contain",
		"mismatch", "too long", "too short", "Firmware", "Exception", "Unknown", NULL,
	};

	for (const char *line = out, *nl; *line; line = nl) {
		nl = strchr(line, '\n');
		nl = nl ? nl + 1 : line + strlen(line);
		/* The summary counts them: "0 Errors, 0 Warnings, 0 Remarks" is clean. */
		if (!strncmp(line, IASL_CLEAN, strlen(IASL_CLEAN)))
			continue;
		for (int i = 0; bad[i]; i++) {
			const char *hit = strstr(line, bad[i]);
			if (hit && hit < nl)
				fail_msg("%s on %s printed \"%s\":\n%s", tool, table, bad[i], out);
		}
	}
}

/* A scratch directory per tool test, removed by the teardown even after a failure. */
static int tmpdir_setup(void **state)
{
	*state = helper_tmpdir("acpi");
	return 0;
}

static int tmpdir_teardown(void **state)
{
	return helper_tmpdir_remove(*state);
}

static void test_iasl_roundtrip(void **state)
{
	static const struct {
		const char *name, *sig;
		bool aml;
	} files[] = {
		{ "xsdt", "XSDT", false }, { "facp", "FACP", false }, { "facs", "FACS", false },
		{ "apic", "APIC", false }, { "dsdt", "DSDT", true },
	};
	struct tables t;
	const char *dir = *state;
	char *out;

	build(&t, 4);

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const uint8_t *tab = !strcmp(files[i].name, "xsdt") ? t.xsdt :
				     !strcmp(files[i].name, "facp") ? t.fadt :
				     !strcmp(files[i].name, "facs") ? t.facs :
				     !strcmp(files[i].name, "apic") ? t.madt : t.dsdt;
		size_t len = le32(tab + 4);
		char dat[32], dsl[32], aml[32], want[128];

		snprintf(dat, sizeof(dat), "%s.dat", files[i].name);
		snprintf(dsl, sizeof(dsl), "%s.dsl", files[i].name);
		snprintf(aml, sizeof(aml), "%s.aml", files[i].name);
		write_file(dir, dat, tab, len);

		/* Disassemble. */
		const char *dis[] = { "iasl", "-d", dat, NULL };
		int rc = run_in(dir, dis, &out);
		if (rc != 0)
			fail_msg("iasl -d %s exited %d:\n%s", dat, rc, out);
		assert_no_complaints("iasl -d", dat, out);
		if (files[i].aml)
			snprintf(want, sizeof(want), "Disassembly completed");
		else
			snprintf(want, sizeof(want), "Acpi Data Table [%s] decoded", files[i].sig);
		if (!strstr(out, want))
			fail_msg("iasl -d %s did not say \"%s\":\n%s", dat, want, out);
		free(out);

		/* Recompile the disassembly (unoptimised AML): same bytes back. */
		const char *comp_aml[] = { "iasl", "-oa", dsl, NULL };
		const char *comp_data[] = { "iasl", dsl, NULL };
		rc = run_in(dir, files[i].aml ? comp_aml : comp_data, &out);
		if (rc != 0)
			fail_msg("iasl %s exited %d:\n%s", dsl, rc, out);
		assert_no_complaints("iasl", dsl, out);
		if (!strstr(out, IASL_CLEAN))
			fail_msg("iasl %s was not clean:\n%s", dsl, out);
		free(out);

		size_t n;
		uint8_t *back = read_file(dir, aml, &n);
		assert_int_equal(n, len);
		if (len >= 36 && memcmp(files[i].sig, "FACS", 4)) {
			/* iasl stamps its own creator ID and revision, hence a new checksum. */
			assert_memory_equal(back, tab, 9);
			assert_memory_equal(back + 10, tab + 10, 28 - 10);
			assert_memory_equal(back + 36, tab + 36, len - 36);
		} else {
			assert_memory_equal(back, tab, len);
		}
		free(back);
	}
	done(&t);
}

/*
 * acpiexec runs the ACPICA core that Linux runs: its FADT conversion prints
 * the same "Firmware Warning" lines Linux would. It also evaluates our
 * objects. (Its built-in self-tests report GPE and PM-timer calls failing as
 * "Unexpected ... (aetests-N)": we have neither, so those lines are dropped.)
 */
static void test_acpiexec(void **state)
{
	static const char *const expect[] = {
		"ACPI: FACP ", "(v06 BOOTVM BOOTVMFA", "ACPI: DSDT ", "ACPI: APIC ",
		"1 ACPI AML tables successfully acquired and loaded",
		"Evaluating \\_S5_",
		"[Package] Contains 4 Elements:\n"
		"    [Integer] = 0000000000000005\n"
		"    [Integer] = 0000000000000005\n"
		"    [Integer] = 0000000000000000\n"
		"    [Integer] = 0000000000000000\n",
		"[Integer] = 000000000105D041",				/* COM1._HID */
		"[Integer] = 0000000000000001",				/* COM1._UID */
		"[Integer] = 000000000000000F",				/* _STA */
		"47 01 F8 03 F8 03 00 08 22 10 00 79 00",		/* COM1._CRS */
		"[String] Length 08 = \"QEMU0001\"",			/* PEVT._HID */
		"47 01 05 05 05 05 01 01 79 00",			/* PEVT._CRS */
		NULL,
	};
	struct tables t;
	const char *dir = *state;
	char *out;

	build(&t, 2);
	write_file(dir, "facp.dat", t.fadt, le32(t.fadt + 4));
	write_file(dir, "dsdt.dat", t.dsdt, le32(t.dsdt + 4));
	write_file(dir, "facs.dat", t.facs, 64);
	write_file(dir, "apic.dat", t.madt, le32(t.madt + 4));

	const char *argv[] = { "acpiexec", "-b",
		"evaluate \\_S5_; evaluate \\_SB.COM1._HID; evaluate \\_SB.COM1._UID; "
		"evaluate \\_SB.COM1._STA; evaluate \\_SB.COM1._CRS; evaluate \\_SB.PEVT._HID; "
		"evaluate \\_SB.PEVT._STA; evaluate \\_SB.PEVT._CRS",
		"facp.dat", "dsdt.dat", "facs.dat", "apic.dat", NULL };
	int rc = run_in(dir, argv, &out);
	if (rc != 0)
		fail_msg("acpiexec exited %d:\n%s", rc, out);

	/* Drop the self-test lines, then look for complaints in the rest. */
	char *filtered = calloc(1, strlen(out) + 1), *w = filtered;
	assert_non_null(filtered);
	for (char *line = out, *nl; *line; line = nl) {
		nl = strchr(line, '\n');
		nl = nl ? nl + 1 : line + strlen(line);
		char *copy = strndup(line, (size_t)(nl - line));

		assert_non_null(copy);
		if (strncmp(copy, "Unexpected ", 11) || !strstr(copy, "(aetests-")) {
			memcpy(w, line, (size_t)(nl - line));
			w += nl - line;
		}
		free(copy);
	}
	assert_no_complaints("acpiexec", "facp/dsdt/facs/apic", filtered);
	for (int i = 0; expect[i]; i++)
		if (!strstr(filtered, expect[i]))
			fail_msg("acpiexec did not print \"%s\":\n%s", expect[i], filtered);
	free(filtered);
	free(out);
	done(&t);
}

/* With a PCI host: a third XSDT entry, the MCFG for segment 0 bus 0 at the ECAM base. */
static void test_mcfg(void **state)
{
	struct acpi_config cfg = { .nr_cpus = 2, .dsdt_devices = devices_aml(),
				   .ecam_base = LAYOUT_PCI_ECAM, .ecam_end_bus = 0 };
	struct tables t = { .base = LAYOUT_ACPI };
	size_t rsdp_off;

	t.buf = malloc(ACPI_ROOM);
	assert_non_null(t.buf);
	memset(t.buf, 0xa5, ACPI_ROOM);
	t.used = acpi_build_tables(&cfg, t.buf, ACPI_ROOM, t.base, &rsdp_off);
	assert_true(t.used > 0);
	t.rsdp = t.buf + rsdp_off;
	t.xsdt = sdt(&t, le64(t.rsdp + 24), "XSDT");
	assert_int_equal(le32(t.xsdt + 4), 36 + 3 * 8);
	sdt(&t, le64(t.xsdt + 36), "FACP");
	sdt(&t, le64(t.xsdt + 44), "APIC");
	const uint8_t *m = sdt(&t, le64(t.xsdt + 52), "MCFG");
	assert_int_equal(le32(m + 4), 60);
	assert_int_equal(m[8], 1);				/* revision */
	assert_int_equal(le64(m + 44), LAYOUT_PCI_ECAM);	/* base address */
	assert_int_equal(m[52] | m[53] << 8, 0);		/* segment */
	assert_int_equal(m[54], 0);				/* start bus */
	assert_int_equal(m[55], 0);				/* end bus */
	free(t.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aml_pkglength),
		cmocka_unit_test(test_aml_integers_names),
		cmocka_unit_test(test_aml_bad_names),
		cmocka_unit_test(test_aml_nesting),
		cmocka_unit_test(test_aml_overflow),
		cmocka_unit_test(test_tables_fadt),
		cmocka_unit_test(test_tables_madt_cpus),
		cmocka_unit_test(test_tables_dsdt),
		cmocka_unit_test(test_tables_too_small),
		cmocka_unit_test(test_tables_unaligned_base),
		cmocka_unit_test(test_install),
		cmocka_unit_test_setup_teardown(test_iasl_roundtrip, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test(test_mcfg),
		cmocka_unit_test_setup_teardown(test_acpiexec, tmpdir_setup, tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
