/*
 * For unit tests of devices/acpi_pm.c only: latch PM1_STS bits as a hardware
 * event would (nothing in bootvm raises one yet), without asserting the SCI.
 */
#pragma once

#include <stdint.h>

struct acpi_pm;

void acpi_pm_test_set_status(struct acpi_pm *pm, uint16_t bits);
