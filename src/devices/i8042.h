/*
 * Just enough of the i8042 keyboard controller for guests to find it idle
 * and to reset the machine: command 0xFE on port 0x64 pulses the reset line.
 */
#pragma once

struct vm;

int i8042_create(struct vm *vm);
