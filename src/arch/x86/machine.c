#include "arch/x86/machine.h"

#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pvpanic.h"
#include "devices/serial.h"
#include "util/log.h"

static void machine_serial_irq(void *opaque, int level)
{
	irq_line_set(opaque, IRQ_COM1, level);
}

/* List dev, or destroy it at once when the list cannot take it. */
static int machine_add(struct machine *m, const struct device_ops *ops, void *dev,
		       const char *name)
{
	if (!dev)
		return -1;
	if (device_list_add(&m->devices, ops, dev, name) < 0) {
		if (ops->destroy)
			ops->destroy(dev);
		return -1;
	}
	return 0;
}

static int machine_add_legacy(struct machine *m)
{
	const struct machine_env *env = &m->env;
	static const struct acpi_pm_ports pm_ports = {
		.evt = PORT_ACPI_PM1A_EVT,
		.cnt = PORT_ACPI_PM1A_CNT,
		.reset = PORT_ACPI_RESET,
	};

	m->serial = serial_create(env->console, machine_serial_irq, env->irq);
	if (machine_add(m, &serial_device_ops, m->serial, "serial0") < 0)
		return -1;
	if (bus_register(env->pio, PORT_COM1, SERIAL_PORT_LEN, "serial", &serial_bus_ops,
			 m->serial) < 0)
		return -1;
	serial_aml(&m->dsdt, "COM1", 1, PORT_COM1, IRQ_COM1);

	if (machine_add(m, &i8042_device_ops,
			i8042_create(env->pio, PORT_I8042_DATA, PORT_I8042_CMD, &env->stop),
			"i8042") < 0)
		return -1;
	if (machine_add(m, &acpi_pm_device_ops, acpi_pm_create(env->pio, &pm_ports, &env->stop),
			"acpi-pm") < 0)
		return -1;
	if (machine_add(m, &pvpanic_device_ops, pvpanic_create(env->pio, PORT_PVPANIC, &env->stop),
			"pvpanic") < 0)
		return -1;
	pvpanic_aml(&m->dsdt, PORT_PVPANIC);
	return 0;
}

int machine_build(struct machine *m, const struct machine_env *env, const struct vm_config *cfg)
{
	memset(m, 0, sizeof(*m));
	m->env = *env;
	device_list_init(&m->devices);
	aml_init_growable(&m->dsdt);

	if (machine_add_legacy(m) < 0)
		goto err;
	return 0;

err:
	machine_destroy(m);
	return -1;
}

int machine_install_acpi(struct machine *m, unsigned int nr_cpus, uint64_t *rsdp)
{
	struct acpi_config acpi = {
		.nr_cpus = nr_cpus,
		.dsdt_devices = &m->dsdt,
	};

	return acpi_install(m->env.mem, &acpi, rsdp);
}

void machine_reset(struct machine *m)
{
	device_list_reset(&m->devices);
}

void machine_stop(struct machine *m)
{
	device_list_stop(&m->devices);
}

void machine_destroy(struct machine *m)
{
	device_list_destroy(&m->devices);
	aml_fini(&m->dsdt);
	m->serial = NULL;
}
