/*
 * The ACPI fixed-hardware registers the FADT points at: PM1a event block
 * (status/enable), PM1a control block (SCI_EN; SLP_TYP=5 with SLP_EN powers
 * off), and the reset register (writing ACPI_PM_RESET_VALUE resets).
 */
#pragma once

#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/device.h"

/* Register lengths as the FADT describes them. */
#define ACPI_PM1_EVT_LEN	4	/* PM1_STS (16 bits), then PM1_EN (16 bits) */
#define ACPI_PM1_CNT_LEN	2
#define ACPI_RESET_REG_LEN	1
#define ACPI_PM_RESET_VALUE	0x01
#define ACPI_PM_S5_SLP_TYP	5	/* the \_S5_ package's value; SLP_TYP in PM1a_CNT */

struct acpi_pm_ports {
	uint16_t evt;		/* PM1a event block */
	uint16_t cnt;		/* PM1a control block */
	uint16_t reset;		/* RESET_REG */
};

struct acpi_pm;

struct acpi_pm *acpi_pm_create(struct bus *pio, const struct acpi_pm_ports *ports,
			       const struct stop_hook *stop);
extern const struct device_ops acpi_pm_device_ops;
