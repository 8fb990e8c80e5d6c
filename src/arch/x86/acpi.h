/*
 * ACPI tables for the guest: RSDP, XSDT, FADT (PM1a event/control blocks for
 * S5 poweroff, a reset register), FACS, DSDT (\_S5_, COM1, pvpanic), MADT (one local
 * APIC per vCPU, the IOAPIC, interrupt source overrides, LINT1 NMI).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct guest_mem;

struct acpi_config {
	unsigned int nr_cpus;
};

/*
 * Build every table into buf (len bytes) as if buf sat at guest address
 * base. Returns the bytes used, or 0 (logged) if they do not fit.
 * *rsdp_off is the RSDP's offset in buf.
 */
size_t acpi_build_tables(const struct acpi_config *cfg, uint8_t *buf, size_t len,
			 uint64_t base, size_t *rsdp_off);

/* Build the tables into guest memory at LAYOUT_ACPI; *rsdp is the RSDP address. */
int acpi_install(struct guest_mem *mem, const struct acpi_config *cfg, uint64_t *rsdp);
