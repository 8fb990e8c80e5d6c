/*
 * For unit tests of devices/acpi_pm.c only: latch PM1_STS bits as a hardware
 * event would (nothing in bootvm raises one yet), without asserting the SCI.
 */
#pragma once

#include <stdint.h>

void acpi_pm_test_set_status(uint16_t bits);
