/*
 * exits: leave the machine the way "exit=WHAT" on the command line says:
 *   poweroff    ACPI S5 (PM1a control)                 bootvm exit status 0
 *   i8042       0xFE to port 0x64                      3
 *   acpi-reset  the FADT's RESET_REG / RESET_VALUE     3
 *   triple      IDT limit 0, then #DE                  4
 *   pvpanic     1 to port 0x505                        5
 *   panic-msg   Linux's panic line, then ACPI reset    5
 *   panic-i8042 Linux's panic line, then i8042 reset   5
 *   panic-triple Linux's panic line, then a triple fault (reboot=t)  5
 *   internal    jump into the MMIO hole (0xd0000000)   6
 */
#include "runtime.h"

static void triple_fault(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} packed none = { 0, 0 };
	volatile uint32_t zero = 0;

	__asm__ volatile("lidt %0" : : "m"(none));
	__asm__ volatile("divl %1" : : "a"(1), "r"(zero), "d"(0));	/* #DE, no IDT: shutdown */
}

void guest_main(void)
{
	size_t len;
	const char *what = cmdline_get("exit", &len);

	if (!what) {
		print("exits: no exit= on the command line\n");
		return;
	}
	print("exits: ");
	print_bytes(what, len);
	print("\n");
	if (cmdline_is("exit", "poweroff")) {
		return;					/* the runtime powers off */
	} else if (cmdline_is("exit", "i8042")) {
		outb(0x64, 0xfe);
	} else if (cmdline_is("exit", "acpi-reset")) {
		acpi_reset();
	} else if (cmdline_is("exit", "triple")) {
		triple_fault();
	} else if (cmdline_is("exit", "pvpanic")) {
		outb(0x505, 1);
	} else if (cmdline_is("exit", "panic-msg")) {
		print("Kernel panic - not syncing: test guest\n");
		acpi_reset();
	} else if (cmdline_is("exit", "panic-i8042")) {
		print("Kernel panic - not syncing: test guest\n");
		outb(0x64, 0xfe);
	} else if (cmdline_is("exit", "panic-triple")) {
		print("Kernel panic - not syncing: test guest\n");
		triple_fault();
	} else if (cmdline_is("exit", "internal")) {
		((void (*)(void))0xd0000000ULL)();
	} else {
		print("exits: unknown exit= value\n");
		return;
	}
	for (int i = 0; i < 200000; i++)
		cpu_relax();
	print("exits: still running\n");
	halt_forever();
}
