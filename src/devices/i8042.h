/*
 * Just enough of the i8042 keyboard controller for guests to find it idle
 * and to reset the machine: command 0xFE on the command port pulses the
 * reset line.
 */
#pragma once

#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/device.h"

struct i8042;

/* Data port at data_port, status/command at cmd_port (0x60 / 0x64 on a PC). */
struct i8042 *i8042_create(struct bus *pio, uint16_t data_port, uint16_t cmd_port,
			   const struct stop_hook *stop);
extern const struct device_ops i8042_device_ops;
