/*
 * The Intel MultiProcessor Specification 1.4 table: what a guest booted with
 * acpi=off (microVM tutorials do) reads instead of the MADT to find its CPUs,
 * the IOAPIC and how ISA and PCI interrupts reach it. With ACPI, Linux
 * ignores it. The same machine as the MADT and _PRT describe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct guest_mem;

#define MPTABLE_MAX_CPUS 255

/*
 * The floating pointer and the configuration table for nr_cpus CPUs into buf
 * (len bytes) as if buf sat at guest address base. Returns the bytes used, or
 * 0 (logged) if they do not fit.
 */
size_t mptable_build(unsigned int nr_cpus, uint8_t *buf, size_t len, uint64_t base);

/* Build it into guest memory at LAYOUT_MPTABLE. -1 logged. */
int mptable_install(struct guest_mem *mem, unsigned int nr_cpus);
