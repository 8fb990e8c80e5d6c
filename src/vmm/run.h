/*
 * Build a VM from a configuration, run it to the end, and tear it down; in
 * steps, so that an API (and later snapshots) can drive each one.
 */
#pragma once

#include <stdbool.h>

#include "vmm/config.h"

struct vmm;

/*
 * Create the VM, its devices, ACPI tables, the kernel and the vCPUs (not
 * running). NULL only when nothing could be set up at all; a VM that failed
 * to build is returned stopped, and vmm_stop() reports why.
 */
struct vmm *vmm_build(const struct vm_config *cfg);
/* Start the console and the vCPUs. -1 if the VM is already stopping or cannot start. */
int vmm_start(struct vmm *vmm);
/*
 * Until the guest, the console or a terminating signal stops the VM. With
 * cfg->shutdown_grace_ms, SIGTERM and SIGINT press the power button first
 * and stop the VM only when the guest has not powered off within the grace
 * (or does not listen to the button, or a second such signal comes).
 */
void vmm_wait(struct vmm *vmm);
/*
 * Press the guest's ACPI power button (fixed-feature, PM1_STS.PWRBTN_STS
 * with the SCI): a guest that listens shuts down and powers off, which ends
 * the VM with status 0. Any thread, from vmm_build() until vmm_stop() is
 * called. 1: the guest has enabled the button, the SCI is raised; 0: it has
 * not (yet: early boot, acpi=off, no button driver), the press only stays
 * latched; -1: the VM is stopping or was not built.
 */
int vmm_press_power_button(struct vmm *vmm);
/*
 * Pause the vCPUs (they leave KVM_RUN and wait; devices go on serving what
 * is in flight) and resume them. Any thread but a vCPU's, after vmm_start()
 * until vmm_stop(); pausing returns once every vCPU is parked. A stop
 * (guest, signal, console) still ends a paused VM. 0, or -1 when the VM
 * is not running (not started, or stopping).
 */
int vmm_pause(struct vmm *vmm);
int vmm_resume(struct vmm *vmm);
bool vmm_is_paused(struct vmm *vmm);
struct virtio_net_stats;
/* The network interfaces' counters summed (zero without any); from vmm_build() until vmm_stop(). */
void vmm_net_stats(struct vmm *vmm, struct virtio_net_stats *sum);
/* Stop everything, free it, and return the exit status (see vmm/exit_status.h). */
int vmm_stop(struct vmm *vmm);

/* All four in a row. Returns the process exit status. */
int vmm_run(const struct vm_config *cfg);
