/*
 * acpi: find the RSDP every way the boot protocol allows (start_info or zero
 * page, and the 0xe0000-0xfffff scan), check they agree, validate every
 * table's checksum, count the MADT's enabled CPUs. Last line:
 *   acpi: rsdp ok, N tables ok, cpus=N
 * or "acpi: FAIL ..." lines before it.
 */
#include "runtime.h"

static int failures;

static bool contains(const struct acpi_header *t, const void *what, size_t n)
{
	const uint8_t *p = (const uint8_t *)t;

	for (uint32_t i = sizeof(*t); i + n <= t->length; i++)
		if (p[i] == *(const uint8_t *)what && !memcmp(p + i, what, n))
			return true;
	return false;
}

#define fail(...) do { printf("acpi: FAIL " __VA_ARGS__); failures++; } while (0)

static bool check_table(const struct acpi_header *t, const char *sig)
{
	if (!t) {
		fail("%s missing\n", sig);
		return false;
	}
	if (memcmp(t->signature, sig, 4)) {
		fail("%s at 0x%lx has signature %c%c%c%c\n", sig, (uint64_t)t, t->signature[0],
		     t->signature[1], t->signature[2], t->signature[3]);
		return false;
	}
	if (t->length < sizeof(*t) || t->length > 0x100000) {
		fail("%s length %u\n", sig, t->length);
		return false;
	}
	if (acpi_sum(t, t->length)) {
		fail("%s checksum\n", sig);
		return false;
	}
	printf("acpi: %c%c%c%c at 0x%lx len %u rev %u ok\n", sig[0], sig[1], sig[2], sig[3],
	       (uint64_t)t, t->length, t->revision);
	return true;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Counts the enabled CPUs; prints every other entry. */
static unsigned int count_cpus(const struct acpi_header *madt)
{
	const uint8_t *p = (const uint8_t *)madt + 44, *end = (const uint8_t *)madt + madt->length;
	unsigned int cpus = 0;

	printf("acpi: madt lapic_addr=0x%x flags=0x%x\n", le32((const uint8_t *)madt + 36),
	       le32((const uint8_t *)madt + 40));
	while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
		if (p[0] == 0 && p[1] >= 8 && (p[4] & 1))		/* local APIC */
			cpus++;
		else if (p[0] == 9 && p[1] >= 16 && (p[8] & 1))	/* local x2APIC */
			cpus++;
		else if (p[0] == 1 && p[1] >= 12)			/* I/O APIC */
			printf("acpi: ioapic id=%u addr=0x%x gsi=%u\n", p[2], le32(p + 4), le32(p + 8));
		else if (p[0] == 2 && p[1] >= 10)			/* interrupt source override */
			printf("acpi: override bus=%u irq=%u gsi=%u flags=0x%x\n", p[2], p[3], le32(p + 4),
			       p[8] | p[9] << 8);
		else if (p[0] == 4 && p[1] >= 6)			/* local APIC NMI */
			printf("acpi: lapic-nmi uid=0x%x flags=0x%x lint=%u\n", p[2], p[3] | p[4] << 8, p[5]);
		else if (p[0] != 0 && p[0] != 9)
			printf("acpi: madt entry type %u length %u\n", p[0], p[1]);
		p += p[1];
	}
	if (p != end)
		fail("MADT entries overrun the table\n");
	return cpus;
}

void guest_main(void)
{
	uint64_t scanned = acpi_scan_rsdp();
	unsigned int tables = 0, cpus = 0;

	printf("acpi: rsdp boot=0x%lx scan=0x%lx\n", boot.rsdp, scanned);
	if (!boot.rsdp)
		fail("the boot protocol gave no RSDP\n");
	if (!scanned)
		fail("no RSDP in 0xe0000-0xfffff\n");
	if (boot.rsdp && scanned && boot.rsdp != scanned)
		fail("RSDPs disagree\n");

	const struct acpi_rsdp *rsdp = (const void *)acpi_rsdp();
	if (!rsdp)
		goto out;
	if (memcmp(rsdp->signature, "RSD PTR ", 8) || acpi_sum(rsdp, 20))
		fail("RSDP signature or checksum\n");
	if (rsdp->revision < 2 || rsdp->length < sizeof(*rsdp) || acpi_sum(rsdp, rsdp->length))
		fail("RSDP revision %u, extended length %u or checksum\n", rsdp->revision, rsdp->length);
	if (rsdp->rsdt_address) {
		const struct acpi_header *rsdt = (const void *)(uint64_t)rsdp->rsdt_address;
		if (check_table(rsdt, "RSDT"))
			tables++;
	}

	const struct acpi_header *xsdt = (const void *)rsdp->xsdt_address;
	if (!check_table(xsdt, "XSDT"))
		goto out;
	tables++;
	const uint64_t *entry = (const void *)(xsdt + 1);
	const struct acpi_header *fadt = NULL, *madt = NULL;
	for (size_t i = 0; i < (xsdt->length - sizeof(*xsdt)) / 8; i++) {
		const struct acpi_header *t = (const void *)entry[i];
		char sig[5] = { 0 };
		if (!t) {
			fail("XSDT entry %zu is null\n", i);
			continue;
		}
		memcpy(sig, t->signature, 4);
		if (!check_table(t, sig))
			continue;
		tables++;
		if (!memcmp(sig, "FACP", 4))
			fadt = t;
		if (!memcmp(sig, "APIC", 4))
			madt = t;
	}
	if (!fadt) {
		fail("no FADT\n");
	} else {
		uint64_t facs = fadt_u64(fadt, FADT_X_FIRMWARE_CTRL);
		if (!facs)
			facs = fadt_u32(fadt, FADT_FIRMWARE_CTRL);
		const struct acpi_header *f = (const void *)facs;
		bool hw_reduced = fadt_u32(fadt, FADT_FLAGS) & (1u << 20);
		if (!f && hw_reduced) {
			print("acpi: no FACS (hardware-reduced ACPI)\n");
		} else if (!f || memcmp(f->signature, "FACS", 4) || f->length < 64) {
			fail("FACS at 0x%lx\n", facs);
		} else {
			printf("acpi: FACS at 0x%lx len %u ok\n", facs, f->length);
			tables++;
		}
		const struct acpi_header *dsdt = acpi_dsdt(fadt);
		if (check_table(dsdt, "DSDT")) {
			tables++;
			/* COM1 by _HID EisaId("PNP0501") (a DWordConst) or string; pvpanic by string. */
			static const uint8_t pnp0501[] = { 0x0c, 0x41, 0xd0, 0x05, 0x01 };
			printf("acpi: dsdt PNP0501=%s QEMU0001=%s\n",
			       contains(dsdt, pnp0501, sizeof(pnp0501)) || contains(dsdt, "PNP0501", 7) ?
			       "yes" : "no", contains(dsdt, "QEMU0001", 8) ? "yes" : "no");
		}
		printf("acpi: S5 SLP_TYP %d\n", acpi_s5_slp_typ());
		const struct acpi_gas *reset = fadt_gas(fadt, FADT_RESET_REG);
		const uint8_t *f8 = (const uint8_t *)fadt;
		printf("acpi: fadt sci=%u pm1a_evt=0x%x pm1a_cnt=0x%x reset=%u:0x%lx=0x%x flags=0x%x\n",
		       f8[46] | f8[47] << 8, fadt_u32(fadt, 56), fadt_u32(fadt, FADT_PM1A_CNT_BLK),
		       reset ? reset->space_id : 0, reset ? reset->address : 0, f8[FADT_RESET_VALUE],
		       fadt_u32(fadt, FADT_FLAGS));
	}
	if (madt)
		cpus = count_cpus(madt);
	else
		fail("no MADT\n");
out:
	if (failures)
		printf("acpi: %d failures\n", failures);
	else
		printf("acpi: rsdp ok, %u tables ok, cpus=%u\n", tables, cpus);
}
