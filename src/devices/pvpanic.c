#include "devices/pvpanic.h"

#include "arch/x86/layout.h"
#include "vmm/vm.h"

#define PVPANIC_PANICKED	(1U << 0)
#define PVPANIC_CRASH_LOADED	(1U << 1)

static uint64_t pvpanic_read(void *dev, uint64_t offset, unsigned int size)
{
	return PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
}

static void pvpanic_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	/* CRASH_LOADED alone means a kdump kernel takes over: keep running. */
	if (value & PVPANIC_PANICKED)
		vm_request_stop(dev, VM_STOP_PANIC, "pvpanic");
}

static const struct bus_ops pvpanic_ops = {
	.read = pvpanic_read,
	.write = pvpanic_write,
};

int pvpanic_create(struct vm *vm)
{
	return bus_register(&vm->pio, PORT_PVPANIC, 1, "pvpanic", &pvpanic_ops, vm);
}
