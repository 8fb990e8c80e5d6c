/*
 * Why a VM stopped, and the exit status bootvm reports for it. These numbers
 * are documented in docs/MACHINE.md, bootvm(1) and `bootvm run --help`; keep
 * them stable.
 */
#pragma once

enum vm_stop_reason {
	VM_STOP_NONE = -1,
	VM_STOP_POWEROFF = 0,		/* ACPI S5 */
	VM_STOP_ERROR = 1,		/* bootvm failed (host side) */
	VM_STOP_USAGE = 2,		/* bad command line */
	VM_STOP_RESET = 3,		/* i8042 0xFE or ACPI reset register */
	VM_STOP_TRIPLE_FAULT = 4,	/* KVM_EXIT_SHUTDOWN */
	VM_STOP_PANIC = 5,		/* pvpanic, or a kernel panic message then reset */
	VM_STOP_INTERNAL = 6,		/* KVM internal error / emulation failure */
	VM_STOP_QUIT = 7,		/* the user pressed the escape sequence */
	VM_STOP_SIGNAL = 128,		/* + signal number, as a shell reports it */
};

/* Short text for messages ("powered off", "reset", ...). */
const char *vm_stop_reason_name(enum vm_stop_reason reason);
