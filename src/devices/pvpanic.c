#include "devices/pvpanic.h"

#include <stdlib.h>

#include "util/log.h"

#define PVPANIC_PANICKED	(1U << 0)
#define PVPANIC_CRASH_LOADED	(1U << 1)

struct pvpanic {
	struct stop_hook stop;
};

static uint64_t pvpanic_read(void *dev, uint64_t offset, unsigned int size)
{
	return PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
}

static void pvpanic_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	struct pvpanic *p = dev;

	/* CRASH_LOADED alone means a kdump kernel takes over: keep running. */
	if (value & PVPANIC_PANICKED)
		stop_hook_request(&p->stop, VM_STOP_PANIC, "pvpanic");
}

static const struct bus_ops pvpanic_ops = {
	.read = pvpanic_read,
	.write = pvpanic_write,
};

struct pvpanic *pvpanic_create(struct bus *pio, uint16_t port, const struct stop_hook *stop)
{
	struct pvpanic *p = calloc(1, sizeof(*p));

	if (!p) {
		log_error("pvpanic: out of memory");
		return NULL;
	}
	p->stop = *stop;
	if (bus_register(pio, port, PVPANIC_PORT_LEN, "pvpanic", &pvpanic_ops, p) < 0) {
		free(p);
		return NULL;
	}
	return p;
}

void pvpanic_aml(struct aml *a, uint16_t port)
{
	uint8_t res_buf[32];
	struct aml res;
	size_t dev;

	/* QEMU's pvpanic ISA device, which Linux's pvpanic-mmio driver binds to. */
	dev = aml_device_begin(a, "PEVT");
	aml_name_string(a, "_HID", "QEMU0001");
	aml_method_return_integer(a, "_STA", AML_STA_ALL);
	aml_init(&res, res_buf, sizeof(res_buf));
	aml_res_io(&res, true, port, port, 0x01, PVPANIC_PORT_LEN);
	aml_res_end(&res);
	aml_name(a, "_CRS");
	aml_buffer(a, res.buf, res.len);
	a->overflow |= res.overflow;
	aml_end(a, dev);
}

static void pvpanic_destroy(void *dev)
{
	free(dev);
}

const struct device_ops pvpanic_device_ops = {
	.kind = "pvpanic",
	.destroy = pvpanic_destroy,
};
