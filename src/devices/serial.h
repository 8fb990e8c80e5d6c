/*
 * A 16550A UART (COM1 at 0x3f8, IRQ 4): divisor latch, IER/IIR/FCR/LCR/MCR/
 * LSR/MSR/SCR, 16-byte FIFOs, THR-empty and RX interrupts, loopback.
 * Output and input go through a struct console.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/aml.h"
#include "vmm/bus.h"
#include "vmm/device.h"

struct console;
struct serial;

#define SERIAL_PORT_LEN 8

/*
 * set_irq(irq_opaque, level) drives the interrupt line: called only when the
 * level changes (1 = an enabled interrupt is pending), with the UART's lock
 * held, so it must not call into the UART. The UART hooks itself up as the
 * console's input and room handler; con may be NULL (output discarded).
 * Register accesses, console input and room callbacks may come from any
 * thread. Destroy it only after console_stop().
 */
struct serial *serial_create(struct console *con,
			     void (*set_irq)(void *irq_opaque, int level), void *irq_opaque);
void serial_destroy(struct serial *s);

/* Device (name) for the DSDT's \_SB scope: a PNP0501 at base with irq. */
void serial_aml(struct aml *a, const char *name, unsigned int uid, uint16_t base,
		unsigned int irq);

/* reset: back to power-on registers (the console stays as it is). */
extern const struct device_ops serial_device_ops;

/* Register s with bus_register(bus, base, SERIAL_PORT_LEN, "serial", &serial_bus_ops, s). */
extern const struct bus_ops serial_bus_ops;

/*
 * Bytes arriving on the line (the console's input thread calls this through
 * console_set_input()). Takes what fits in the receiver and returns how
 * many; once the guest has drained it, the UART calls console_input_ready().
 */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);
