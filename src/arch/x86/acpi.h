/*
 * ACPI tables for the guest: RSDP, XSDT, FADT (PM1a event/control blocks for
 * S5 poweroff, a reset register), FACS, DSDT (\_S5_, and under \_SB the
 * devices' own AML, which the board collects), MADT (one local APIC per
 * vCPU, the IOAPIC, interrupt source overrides, LINT1 NMI), and MCFG when
 * there is a PCI host bridge.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/aml.h"

struct guest_mem;

struct acpi_config {
	unsigned int nr_cpus;
	const struct aml *dsdt_devices;	/* objects for Scope (\_SB); NULL: none */
	uint64_t ecam_base;		/* PCI ECAM for MCFG; 0: no MCFG */
	uint8_t ecam_end_bus;
};

/*
 * Build every table into buf (len bytes) as if buf sat at guest address
 * base. Returns the bytes used, or 0 (logged) if they do not fit.
 * *rsdp_off is the RSDP's offset in buf.
 */
size_t acpi_build_tables(const struct acpi_config *cfg, uint8_t *buf, size_t len,
			 uint64_t base, size_t *rsdp_off);

/* The byte that makes p[0..n) sum to 0 (ACPI's checksum; the MP table's too). */
uint8_t acpi_checksum(const uint8_t *p, size_t n);

/* Build the tables into guest memory at LAYOUT_ACPI; *rsdp is the RSDP address. */
int acpi_install(struct guest_mem *mem, const struct acpi_config *cfg, uint64_t *rsdp);
