/*
 * QEMU's pvpanic ISA device (port 0x505 on a PC): reading gives the events
 * it supports, writing PANICKED (bit 0) ends the VM with the panic status.
 * Linux drives it with CONFIG_PVPANIC_MMIO (ACPI id QEMU0001, which
 * pvpanic_aml() describes).
 */
#pragma once

#include <stdint.h>

#include "util/aml.h"
#include "vmm/bus.h"
#include "vmm/device.h"

#define PVPANIC_PORT_LEN 1

struct pvpanic;

struct pvpanic *pvpanic_create(struct bus *pio, uint16_t port, const struct stop_hook *stop);
/* Its Device (PEVT) for the DSDT's \_SB scope. */
void pvpanic_aml(struct aml *a, uint16_t port);
extern const struct device_ops pvpanic_device_ops;
