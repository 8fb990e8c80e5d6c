/*
 * echo: keys through the real interrupt path. COM1's RX interrupt (IRQ 4) is
 * routed by the IOAPIC to vector ECHO_VECTOR on the BSP's x2APIC; the handler
 * echoes every waiting byte uppercased and EOIs. 'q' ends: "echo: bye", then
 * poweroff. Prints "echo: ready" once interrupts are on.
 */
#include "runtime.h"

#define ECHO_VECTOR	0x40
#define IOAPIC_PIN	4

static volatile bool done;
static volatile uint32_t interrupts;

__attribute__((interrupt)) static void serial_isr(struct interrupt_frame *f)
{
	(void)f;
	interrupts++;
	for (int i = 0; i < 64 && (inb(COM1 + UART_LSR) & UART_LSR_DR); i++) {
		char c = (char)inb(COM1 + UART_RBR);
		if (c == 'q')
			done = true;
		else if (!done)
			serial_putc(c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c);
	}
	x2apic_eoi();
}

void guest_main(void)
{
	if (!ioapic_mode_init("echo"))
		return;
	idt_set_gate(ECHO_VECTOR, serial_isr);

	uint32_t ver = ioapic_read(1);
	printf("echo: ioapic version 0x%x, %u pins\n", ver & 0xff, ((ver >> 16) & 0xff) + 1);
	/* Fixed delivery, physical destination APIC 0, edge, active high. */
	ioapic_write(0x11 + 2 * IOAPIC_PIN, 0u << 24);
	ioapic_write(0x10 + 2 * IOAPIC_PIN, ECHO_VECTOR);
	if (ioapic_read(0x10 + 2 * IOAPIC_PIN) != ECHO_VECTOR)
		printf("echo: IOAPIC redirection entry reads 0x%x\n", ioapic_read(0x10 + 2 * IOAPIC_PIN));

	/* Bytes that arrived before now raise the interrupt as soon as IER allows it. */
	outb(COM1 + UART_MCR, 0x0b);		/* DTR, RTS, OUT2 (the IRQ line's gate) */
	outb(COM1 + UART_IER, 0x01);		/* RX data available */
	print("echo: ready\n");

	while (!done)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	outb(COM1 + UART_IER, 0);
	printf("\necho: bye (%u interrupts)\n", interrupts);
}
