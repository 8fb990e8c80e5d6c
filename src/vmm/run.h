/*
 * Build a VM from a configuration, run it to the end, and tear it down; in
 * steps, so that an API (and later snapshots) can drive each one.
 */
#pragma once

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
/* Until the guest, the console or a terminating signal stops the VM. */
void vmm_wait(struct vmm *vmm);
/* Stop everything, free it, and return the exit status (see vmm/exit_status.h). */
int vmm_stop(struct vmm *vmm);

/* All four in a row. Returns the process exit status. */
int vmm_run(const struct vm_config *cfg);
