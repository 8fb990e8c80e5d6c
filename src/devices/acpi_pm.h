/*
 * The ACPI fixed-hardware registers the FADT points at: PM1a event block
 * (status/enable), PM1a control block (SCI_EN; SLP_TYP=5 with SLP_EN powers
 * off), and the reset register (writing ACPI_RESET_VALUE resets).
 */
#pragma once

struct vm;

int acpi_pm_create(struct vm *vm);
