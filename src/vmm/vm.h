/* A VM: the KVM handles, guest RAM, the two buses, the vCPUs, and how it stops. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/config.h"
#include "vmm/exit_status.h"
#include "vmm/irq.h"
#include "vmm/memory.h"

struct vcpu;
struct kvm_cpuid2;

struct vm {
	int kvm_fd;
	int vm_fd;
	size_t run_size;		/* mmap size of each vCPU's struct kvm_run */
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;

	unsigned int nr_vcpus;		/* created so far */
	unsigned int nr_cpus_planned;	/* how many it will have (CPUID topology) */
	struct vcpu *vcpus;
	struct kvm_cpuid2 *cpuid;	/* KVM_GET_SUPPORTED_CPUID; vCPUs derive theirs */

	/* GSI routes handed to KVM: irqchip pins, then MSI vectors. */
	struct irq_router irq;

	/* Stopping: the first request wins and names the exit status. */
	pthread_mutex_t stop_lock;
	bool stopping;
	enum vm_stop_reason stop_reason;
	char stop_why[64];		/* what the first request said, e.g. "ACPI S5" */
	int stop_fd;			/* eventfd, readable once a stop was asked for */
	bool panic_seen;		/* the console showed a kernel panic message */

	/* Pausing: vCPU threads park between two KVM_RUNs while paused is set. */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;	/* parked vCPUs and vm_pause_vcpus() wait on it */
	bool paused;			/* written under pause_lock, read atomically */
	unsigned int nr_parked;
};

/*
 * Open /dev/kvm, create the VM with its in-kernel irqchip and PIT, and map
 * cfg->mem_size bytes of RAM. Logs and returns -1 on failure.
 */
int vm_create(struct vm *vm, const struct vm_config *cfg);

/* Create every vCPU (not started). */
int vm_create_vcpus(struct vm *vm, unsigned int nr_cpus);

/* Start one thread per vCPU. Returns 0, or -1 (logged) if a thread cannot start. */
int vm_start_vcpus(struct vm *vm);
void vm_stop_vcpus(struct vm *vm);

void vm_destroy(struct vm *vm);

/*
 * For a process about to exit: leave the kernel's teardown of the VM to a
 * child process that waits for us to exit first. Destroying a VM with an
 * in-kernel irqchip and PIT waits for several SRCU grace periods (25 ms on
 * the build machines), which would otherwise delay our exit. The vCPUs must
 * be stopped. Afterwards only exiting is allowed; returns -1 (and nothing
 * changed) if the child could not be started.
 */
int vm_teardown_detached(struct vm *vm);

/*
 * Ask the VM to stop with this reason; the first call wins, later ones are
 * ignored. Safe from any thread. A reset after the guest printed a kernel
 * panic message counts as a panic.
 */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *why);
bool vm_is_stopping(struct vm *vm);
enum vm_stop_reason vm_stop_reason(struct vm *vm);
/* What the winning request named as the cause ("ACPI S5", "signal Terminated"), or "". */
void vm_stop_why(struct vm *vm, char *buf, size_t size);

/*
 * Pause: make every vCPU thread leave KVM_RUN and wait (devices and their
 * I/O threads go on: requests in flight complete). Returns once all vCPUs
 * are parked, or the VM stops meanwhile. Resume lets them run again. Any
 * thread but a vCPU's; pausing a paused VM, or resuming a running one, does
 * nothing. A stop request wakes parked vCPUs, which then end.
 */
void vm_pause_vcpus(struct vm *vm);
void vm_resume_vcpus(struct vm *vm);
bool vm_is_paused(struct vm *vm);
/* For vCPU threads, between two KVM_RUNs: wait here while the VM is paused. */
void vm_vcpu_park(struct vm *vm);

/* Just the stop (and pause) machinery, for code (and unit tests) that need no KVM. */
int vm_stop_init(struct vm *vm);
void vm_stop_fini(struct vm *vm);
