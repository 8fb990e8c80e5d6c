/*
 * hello: one line, then ACPI poweroff. With "qemu-exit" on the command line
 * it first writes QEMU's isa-debug-exit port (0x501; ignored by bootvm) so
 * the benchmark's QEMU run ends the same way.
 */
#include "runtime.h"

void guest_main(void)
{
	print("hello from the bootvm test guest\n");
	if (cmdline_has("qemu-exit"))
		outb(0x501, 0);		/* QEMU exits with status (0 << 1) | 1 = 1 */
}
