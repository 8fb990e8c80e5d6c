/*
 * The board: the one place that knows the x86 machine's memory map and
 * wires its devices. Every device gets its bus, base, interrupt line and a
 * stop hook injected, is listed in the machine's device list, and adds its
 * own AML to the DSDT. No state outside struct machine: two VMs in one
 * process each have their own.
 */
#pragma once

#include <stdint.h>

#include "util/aml.h"
#include "vmm/bus.h"
#include "vmm/config.h"
#include "vmm/device.h"
#include "vmm/irq.h"
#include "vmm/memory.h"

struct acpi_pm;
struct console;
struct pci_host;
struct serial;
struct virtio_net;
struct virtio_net_stats;

/* What the VMM hands the board: the VM's handles, nothing of the VMM itself. */
struct machine_env {
	int vm_fd;
	struct guest_mem *mem;
	struct bus *pio;
	struct bus *mmio;
	struct irq_router *irq;
	struct stop_hook stop;
	struct console *console;	/* COM1's other end; may be NULL */
};

struct machine {
	struct machine_env env;
	struct device_list devices;
	struct aml dsdt;		/* the devices' objects for Scope (\_SB) */
	struct serial *serial;
	struct acpi_pm *acpi_pm;	/* listed in devices; for the power button */
	struct pci_host *pci;
	unsigned int nr_blk;		/* virtio-blk devices so far: their names */
	struct virtio_net *nets[VM_MAX_NETS];	/* listed in devices; for the counters */
	unsigned int nr_net;
};

/* Create and wire every device cfg asks for. On failure, logs and cleans up. */
int machine_build(struct machine *m, const struct machine_env *env, const struct vm_config *cfg);

/* Write the ACPI tables into guest RAM; *rsdp is where the RSDP is. */
int machine_install_acpi(struct machine *m, unsigned int nr_cpus, uint64_t *rsdp);

/* The network interfaces' counters summed (all zero without any); valid until destroy. */
void machine_net_stats(struct machine *m, struct virtio_net_stats *sum);

/*
 * Press the ACPI power button (any thread). 1: the guest listens to it
 * (PM1_EN.PWRBTN_EN set, the SCI is raised); 0: not (yet): the press stays
 * latched in PM1_STS; -1: there is no ACPI PM device (a half-built machine).
 */
int machine_press_power_button(struct machine *m);

/* Reset every device (a guest reboot, were it supported). */
void machine_reset(struct machine *m);
/* Stop every device: no device thread touches guest memory afterwards. */
void machine_stop(struct machine *m);
/* Stop and free everything; safe on a zeroed or half-built machine. */
void machine_destroy(struct machine *m);
