#include "vmm/vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/arch.h"
#include "util/log.h"
#include "vmm/thread.h"
#include "vmm/vm.h"

/* Interrupts KVM_RUN; the handler does nothing, EINTR is the point. */
#define VCPU_KICK_SIGNAL THREAD_KICK_SIGNAL

/*
 * Guards every vCPU's started and thread: a vCPU thread kicks the others
 * when the guest stops the VM, maybe while the main thread still starts
 * them or already joins them, and a joined thread must never be signalled.
 */
static pthread_mutex_t vcpu_threads_lock = PTHREAD_MUTEX_INITIALIZER;

static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

int vcpu_signals_init(void)
{
	struct sigaction sa = { .sa_handler = vcpu_kick_handler };

	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0) {
		log_error("sigaction: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned int id)
{
	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0) {
		log_error("KVM_CREATE_VCPU %u: %s", id, strerror(errno));
		return -1;
	}
	vcpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		log_error("mmap of vCPU %u run area: %s", id, strerror(errno));
		vcpu->run = NULL;
		goto err_close;
	}
	if (arch_vcpu_init(&(struct arch_vcpu){ vcpu->fd, id, vm->nr_cpus_planned, vm->cpuid }) < 0)
		goto err_unmap;
	return 0;

err_unmap:
	munmap(vcpu->run, vm->run_size);
	vcpu->run = NULL;
err_close:
	close(vcpu->fd);
	vcpu->fd = -1;
	return -1;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->vm->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

static void vcpu_handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	unsigned int size = run->io.size;
	uint64_t bytes = (uint64_t)size * run->io.count;

	/* The kernel fills these, but never index past the run area. */
	if (run->io.data_offset > vcpu->vm->run_size ||
	    bytes > vcpu->vm->run_size - run->io.data_offset)
		return;

	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	for (uint32_t i = 0; i < run->io.count; i++, data += size)
		bus_access(&vcpu->vm->pio, run->io.port, data, size,
			   run->io.direction == KVM_EXIT_IO_OUT);
}

static void vcpu_internal_error(struct vcpu *vcpu, const char *what)
{
	char who[16];

	snprintf(who, sizeof(who), "vCPU %u", vcpu->id);
	/* Registers first, so they are on stderr before the VM is torn down. */
	log_error("%s: %s", who, what);
	vcpu_dump_state(vcpu);
	vm_request_stop(vcpu->vm, VM_STOP_INTERNAL, who);
}

/* One exit; false when this vCPU must stop running. */
static bool vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char what[96];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		bus_access(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data,
			   run->mmio.len, run->mmio.is_write);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT:	/* only without an in-kernel LAPIC; just run again */
		return true;
	case KVM_EXIT_SHUTDOWN:
		snprintf(what, sizeof(what), "vCPU %u", vcpu->id);
		vm_request_stop(vcpu->vm, VM_STOP_TRIPLE_FAULT, what);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			vm_request_stop(vcpu->vm, VM_STOP_POWEROFF, "system event");
			return false;
		case KVM_SYSTEM_EVENT_RESET:
			vm_request_stop(vcpu->vm, VM_STOP_RESET, "system event");
			return false;
		case KVM_SYSTEM_EVENT_CRASH:
			vm_request_stop(vcpu->vm, VM_STOP_PANIC, "system event");
			return false;
		}
		snprintf(what, sizeof(what), "unknown system event %u", run->system_event.type);
		vcpu_internal_error(vcpu, what);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error, suberror %u%s",
			 run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
			 " (instruction emulation failed)" : "");
		vcpu_internal_error(vcpu, what);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed, reason 0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_internal_error(vcpu, what);
		return false;
	default:
		snprintf(what, sizeof(what), "unexpected KVM exit %u", run->exit_reason);
		vcpu_internal_error(vcpu, what);
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;

	while (!vm_is_stopping(vcpu->vm)) {
		vm_vcpu_park(vcpu->vm);
		if (vm_is_stopping(vcpu->vm))
			break;
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/* Atomic with the kicker's store: a kick is never lost, so the stop is seen. */
				__atomic_exchange_n(&vcpu->run->immediate_exit, 0, __ATOMIC_ACQ_REL);
				continue;
			}
			char what[64];
			snprintf(what, sizeof(what), "KVM_RUN: %s", strerror(errno));
			vcpu_internal_error(vcpu, what);
			break;
		}
		if (!vcpu_handle_exit(vcpu))
			break;
	}
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	char name[16];
	int err;

	snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
	pthread_mutex_lock(&vcpu_threads_lock);
	err = thread_start(&vcpu->thread, THREAD_VCPU, name, vcpu_thread, vcpu);
	vcpu->started = !err;
	pthread_mutex_unlock(&vcpu_threads_lock);
	return err;
}

void vcpu_kick(struct vcpu *vcpu)
{
	pthread_mutex_lock(&vcpu_threads_lock);
	if (vcpu->started && vcpu->run) {
		/* immediate_exit covers a kick that lands just before KVM_RUN. */
		__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_RELEASE);
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
	}
	pthread_mutex_unlock(&vcpu_threads_lock);
}

void vcpu_join(struct vcpu *vcpu)
{
	bool started;

	/* Not started any more before the join: no kick may reach a joined thread. */
	pthread_mutex_lock(&vcpu_threads_lock);
	started = vcpu->started;
	vcpu->started = false;
	pthread_mutex_unlock(&vcpu_threads_lock);
	if (started)
		pthread_join(vcpu->thread, NULL);
}

void vcpu_dump_state(struct vcpu *vcpu)
{
	arch_vcpu_dump(&(struct arch_vcpu){ vcpu->fd, vcpu->id, vcpu->vm->nr_cpus_planned,
					    vcpu->vm->cpuid });
}
