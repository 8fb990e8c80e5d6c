#include "arch/x86/machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_ids.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pvpanic.h"
#include "devices/serial.h"
#include "pci/pci.h"
#include "util/log.h"
#include "backends/net.h"
#include "backends/net_user.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"

static void machine_serial_irq(void *opaque, int level)
{
	irq_line_set(opaque, IRQ_COM1, level);
}

/* The SCI: GSI 9, level triggered (the MADT's override says so). */
static void machine_sci_irq(void *opaque, int level)
{
	irq_line_set(opaque, IRQ_ACPI_SCI, level);
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
	m->acpi_pm = acpi_pm_create(env->pio, &pm_ports, &env->stop, machine_sci_irq, env->irq);
	if (machine_add(m, &acpi_pm_device_ops, m->acpi_pm, "acpi-pm") < 0) {
		m->acpi_pm = NULL;
		return -1;
	}
	if (machine_add(m, &pvpanic_device_ops, pvpanic_create(env->pio, PORT_PVPANIC, &env->stop),
			"pvpanic") < 0)
		return -1;
	pvpanic_aml(&m->dsdt, PORT_PVPANIC);
	return 0;
}

/* PCI class codes (base << 16 | sub-class << 8 | prog-if). */
#define PCI_CLASS_STORAGE_OTHER	0x018000
#define PCI_CLASS_NETWORK_ETHERNET	0x020000
#define PCI_CLASS_OTHERS	0xff0000

#define GIB (1ULL << 30)

/* The 64-bit BAR window starts at the first 1 GiB boundary above RAM. */
static uint64_t machine_mmio64_base(const struct guest_mem *mem)
{
	uint64_t top = LAYOUT_MMIO_HOLE_END;

	for (unsigned int i = 0; i < mem->nr_regions; i++)
		if (mem->regions[i].gpa + mem->regions[i].size > top)
			top = mem->regions[i].gpa + mem->regions[i].size;
	return (top + GIB - 1) & ~(GIB - 1);
}

static int machine_add_pci(struct machine *m)
{
	const struct machine_env *env = &m->env;
	struct pci_host_config pc = {
		.pio = env->pio,
		.mmio = env->mmio,
		.irq = env->irq,
		.vm_fd = env->vm_fd,
		.ecam_base = LAYOUT_PCI_ECAM,
		.mmio32_base = LAYOUT_PCI_MMIO32,
		.mmio32_size = LAYOUT_PCI_MMIO32_SIZE,
		.mmio64_base = machine_mmio64_base(env->mem),
		.mmio64_size = LAYOUT_PCI_MMIO64_SIZE,
		.io_base = PORT_PCI_IO_START,
		.io_end = PORT_PCI_IO_END,
		.intx_gsi_base = IRQ_PCI_BASE,
		.intx_gsi_count = IRQ_PCI_COUNT,
	};

	m->pci = pci_host_create(&pc);
	if (machine_add(m, &pci_host_device_ops, m->pci, "pci-host") < 0) {
		m->pci = NULL;
		return -1;
	}
	pci_host_aml(m->pci, &m->dsdt);
	return 0;
}

/* One virtio device on the PCI bus: the device model and its transport. */
struct machine_virtio {
	const struct device_ops *ops;	/* the model's */
	void *dev;
	struct virtio_pci *vp;
};

static void machine_virtio_stop(void *p)
{
	struct machine_virtio *mv = p;

	if (mv->ops->stop)
		mv->ops->stop(mv->dev);
}

static void machine_virtio_destroy(void *p)
{
	struct machine_virtio *mv = p;

	if (mv->vp)
		virtio_pci_destroy(mv->vp);
	if (mv->ops->destroy)
		mv->ops->destroy(mv->dev);
	free(mv);
}

/* Reset comes through the host bridge (pci_host_reset resets every function). */
static const struct device_ops machine_virtio_ops = {
	.kind = "virtio-pci",
	.stop = machine_virtio_stop,
	.destroy = machine_virtio_destroy,
};

/* Put a device model on the bus behind the virtio-pci transport; it owns dev from here. */
static int machine_add_virtio(struct machine *m, const struct device_ops *ops, void *dev,
			      struct virtio_dev *vdev, uint32_t class_code)
{
	struct machine_virtio *mv;

	if (!dev)
		return -1;
	mv = calloc(1, sizeof(*mv));
	if (!mv) {
		log_error("%s: out of memory", vdev->name);
		ops->destroy(dev);
		return -1;
	}
	mv->ops = ops;
	mv->dev = dev;
	mv->vp = virtio_pci_create(m->pci, vdev, class_code);
	if (!mv->vp) {
		machine_virtio_destroy(mv);
		return -1;
	}
	return machine_add(m, &machine_virtio_ops, mv, vdev->name);
}

static int machine_add_disk(struct machine *m, const struct vm_disk_config *dc,
			    unsigned int nr_cpus)
{
	struct disk_opts opts = {
		.path = dc->path,
		.readonly = dc->readonly,
		.cache = dc->cache == VM_DISK_CACHE_NONE ? DISK_CACHE_NONE : DISK_CACHE_WRITEBACK,
		.discard = dc->discard,
	};
	unsigned int queues = dc->nr_queues ? dc->nr_queues : nr_cpus;
	struct virtio_blk *blk;
	char name[32];

	if (queues > VM_DISK_MAX_QUEUES)
		queues = VM_DISK_MAX_QUEUES;
	snprintf(name, sizeof(name), "virtio-blk%u", m->nr_blk++);
	blk = virtio_blk_create(m->env.mem, &opts, dc->serial[0] ? dc->serial : NULL, queues, name);
	if (!blk)
		return -1;
	return machine_add_virtio(m, &virtio_blk_device_ops, blk, virtio_blk_vdev(blk),
				  PCI_CLASS_STORAGE_OTHER);
}

static int machine_add_rng(struct machine *m)
{
	struct virtio_rng *rng = virtio_rng_create(m->env.mem, "virtio-rng0");

	if (!rng)
		return -1;
	return machine_add_virtio(m, &virtio_rng_device_ops, rng, virtio_rng_vdev(rng),
				  PCI_CLASS_OTHERS);
}

static int machine_add_net(struct machine *m, const struct vm_net_config *nc)
{
	struct net_backend *nb;
	struct virtio_net *n;
	char name[32];

	if (m->nr_net >= VM_MAX_NETS) {
		log_error("--net: more than %d interfaces", VM_MAX_NETS);
		return -1;
	}
	nb = nc->kind == VM_NET_TAP ? net_tap_open(nc->tap_name) : net_user_start(nc);
	if (!nb)
		return -1;
	snprintf(name, sizeof(name), "virtio-net%u", m->nr_net);
	n = virtio_net_create(m->env.mem, nb, nc->mac, name);	/* owns nb, also on failure */
	if (!n)
		return -1;
	if (machine_add_virtio(m, &virtio_net_device_ops, n, virtio_net_vdev(n),
			       PCI_CLASS_NETWORK_ETHERNET) < 0)
		return -1;
	m->nets[m->nr_net++] = n;
	return 0;
}

void machine_net_stats(struct machine *m, struct virtio_net_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (unsigned int i = 0; i < m->nr_net; i++) {
		struct virtio_net_stats s;

		virtio_net_get_stats(m->nets[i], &s);
		sum->rx_frames += s.rx_frames;
		sum->rx_bytes += s.rx_bytes;
		sum->tx_frames += s.tx_frames;
		sum->tx_bytes += s.tx_bytes;
		sum->rx_dropped += s.rx_dropped;
		sum->tx_dropped += s.tx_dropped;
		sum->rx_no_buffers += s.rx_no_buffers;
		sum->tx_blocked += s.tx_blocked;
	}
}

int machine_build(struct machine *m, const struct machine_env *env, const struct vm_config *cfg)
{
	memset(m, 0, sizeof(*m));
	m->env = *env;
	device_list_init(&m->devices);
	aml_init_growable(&m->dsdt);

	if (machine_add_legacy(m) < 0 || machine_add_pci(m) < 0)
		goto err;
	for (unsigned int i = 0; i < cfg->nr_disks; i++)
		if (machine_add_disk(m, &cfg->disks[i], cfg->nr_cpus) < 0)
			goto err;
	if (cfg->rng && machine_add_rng(m) < 0)
		goto err;
	for (unsigned int i = 0; i < cfg->nr_nets; i++)
		if (machine_add_net(m, &cfg->nets[i]) < 0)
			goto err;
	if (m->dsdt.overflow) {
		log_error("ACPI: the devices' AML is malformed or too large");
		goto err;
	}
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
		.ecam_base = LAYOUT_PCI_ECAM,
		.ecam_end_bus = 0,
	};

	return acpi_install(m->env.mem, &acpi, rsdp);
}

int machine_press_power_button(struct machine *m)
{
	if (!m->acpi_pm)
		return -1;
	acpi_pm_press_power_button(m->acpi_pm);
	return acpi_pm_power_button_enabled(m->acpi_pm) ? 1 : 0;
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
	m->acpi_pm = NULL;
	m->pci = NULL;
	m->nr_net = 0;
}
