/*
 * A 16550A UART (COM1 at 0x3f8, IRQ 4): divisor latch, IER/IIR/FCR/LCR/MCR/
 * LSR/MSR/SCR, 16-byte FIFOs, THR-empty and RX interrupts, loopback.
 * Output and input go through a struct console.
 */
#pragma once

#include <stdint.h>

#include "vmm/bus.h"

struct console;
struct serial;

#define SERIAL_PORT_LEN 8

/*
 * set_irq(irq_opaque, level) drives the interrupt line. The UART hooks itself
 * up as the console's input and room handler.
 */
struct serial *serial_create(struct console *con,
			     void (*set_irq)(void *irq_opaque, int level), void *irq_opaque);
void serial_destroy(struct serial *s);

/* Register s with bus_register(bus, base, SERIAL_PORT_LEN, "serial", &serial_bus_ops, s). */
extern const struct bus_ops serial_bus_ops;
