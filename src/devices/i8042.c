#include "devices/i8042.h"

#include <stdlib.h>

#include "util/log.h"

#define I8042_CMD_PULSE_RESET	0xfe	/* pulse output line 0: CPU reset */
#define I8042_STATUS_SYS	0x04	/* system flag: self-test passed */

struct i8042 {
	struct stop_hook stop;
};

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
	struct i8042 *k = dev;

	if ((value & 0xff) == I8042_CMD_PULSE_RESET)
		stop_hook_request(&k->stop, VM_STOP_RESET, "i8042 reset");
}

static const struct bus_ops i8042_data_ops = {
	.read = i8042_data_read,
};

static const struct bus_ops i8042_command_ops = {
	.read = i8042_status_read,
	.write = i8042_command_write,
};

struct i8042 *i8042_create(struct bus *pio, uint16_t data_port, uint16_t cmd_port,
			   const struct stop_hook *stop)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	if (!k) {
		log_error("i8042: out of memory");
		return NULL;
	}
	k->stop = *stop;
	/* Port 0x61 between them belongs to the in-kernel PIT's speaker. */
	if (bus_register(pio, data_port, 1, "i8042 data", &i8042_data_ops, k) < 0)
		goto err_free;
	if (bus_register(pio, cmd_port, 1, "i8042 command", &i8042_command_ops, k) < 0)
		goto err_unregister;
	return k;

err_unregister:
	bus_unregister(pio, data_port);
err_free:
	free(k);
	return NULL;
}

static void i8042_destroy(void *dev)
{
	free(dev);
}

const struct device_ops i8042_device_ops = {
	.kind = "i8042",
	.destroy = i8042_destroy,
};
