/* Build a VM from a configuration, run it to the end, and tear it down. */
#pragma once

#include "vmm/config.h"

/* Returns the process exit status (see vmm/exit_status.h). */
int vmm_run(const struct vm_config *cfg);
