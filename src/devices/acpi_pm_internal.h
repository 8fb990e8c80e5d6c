/*
 * For unit tests of devices/acpi_pm.c only: latch PM1_STS bits as a hardware
 * event would (bootvm itself raises only the power button's), without
 * driving the SCI: a later register access brings the line up to date.
 */
#pragma once

#include <stdint.h>

struct acpi_pm;

void acpi_pm_test_set_status(struct acpi_pm *pm, uint16_t bits);
