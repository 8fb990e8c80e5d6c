#include "devices/i8042.h"

#include "arch/x86/layout.h"
#include "vmm/vm.h"

#define I8042_CMD_PULSE_RESET	0xfe	/* pulse output line 0: CPU reset */
#define I8042_STATUS_SYS	0x04	/* system flag: self-test passed */

static uint64_t i8042_data_read(void *dev, uint64_t offset, unsigned int size)
{
	return 0;	/* no keyboard, no data */
}

static uint64_t i8042_status_read(void *dev, uint64_t offset, unsigned int size)
{
	return I8042_STATUS_SYS;	/* both buffers empty, never busy */
}

static void i8042_command_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	struct vm *vm = dev;

	if ((value & 0xff) == I8042_CMD_PULSE_RESET)
		vm_request_stop(vm, VM_STOP_RESET, "i8042 reset");
}

static const struct bus_ops i8042_data_ops = {
	.read = i8042_data_read,
};

static const struct bus_ops i8042_command_ops = {
	.read = i8042_status_read,
	.write = i8042_command_write,
};

int i8042_create(struct vm *vm)
{
	/* Port 0x61 between them belongs to the in-kernel PIT's speaker. */
	if (bus_register(&vm->pio, PORT_I8042_DATA, 1, "i8042 data", &i8042_data_ops, vm) < 0 ||
	    bus_register(&vm->pio, PORT_I8042_CMD, 1, "i8042 command", &i8042_command_ops, vm) < 0)
		return -1;
	return 0;
}
