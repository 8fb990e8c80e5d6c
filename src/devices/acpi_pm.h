/*
 * The ACPI fixed-hardware registers the FADT points at: PM1a event block
 * (status/enable, with the fixed-feature power button), PM1a control block
 * (SCI_EN; SLP_TYP=5 with SLP_EN powers off), and the reset register
 * (writing ACPI_PM_RESET_VALUE resets).
 */
#pragma once

#include <stdbool.h>
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

/*
 * sci(sci_opaque, level) drives the SCI line (the board's GSI, level
 * triggered): 1 while an enabled PM1 status bit is set, 0 once none is.
 * It is called with the device's lock held, on changes only; sci may be NULL.
 */
struct acpi_pm *acpi_pm_create(struct bus *pio, const struct acpi_pm_ports *ports,
			       const struct stop_hook *stop,
			       void (*sci)(void *opaque, int level), void *sci_opaque);
extern const struct device_ops acpi_pm_device_ops;

/*
 * Press the fixed-feature power button: PM1_STS.PWRBTN_STS is set (the
 * guest clears it by writing 1) and the SCI is raised if PM1_EN.PWRBTN_EN is
 * set, now or when the guest sets it. Any thread.
 */
void acpi_pm_press_power_button(struct acpi_pm *pm);
/* Whether the guest has enabled the power button's SCI (PM1_EN.PWRBTN_EN). */
bool acpi_pm_power_button_enabled(struct acpi_pm *pm);
