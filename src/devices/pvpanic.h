/*
 * QEMU's pvpanic ISA device at port 0x505: reading gives the events it
 * supports, writing PANICKED (bit 0) ends the VM with the panic status.
 * Linux drives it with CONFIG_PVPANIC_MMIO (ACPI id QEMU0001, in our DSDT).
 */
#pragma once

struct vm;

int pvpanic_create(struct vm *vm);
