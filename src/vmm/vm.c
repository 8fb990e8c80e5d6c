#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86/arch.h"
#include "arch/x86/layout.h"
#include "util/log.h"
#include "util/size.h"
#include "vmm/vcpu.h"

#define KVM_CPUID_MAX_ENTRIES 256

const char *vm_stop_reason_name(enum vm_stop_reason reason)
{
	switch (reason) {
	case VM_STOP_NONE: return "running";
	case VM_STOP_POWEROFF: return "guest powered off";
	case VM_STOP_ERROR: return "bootvm error";
	case VM_STOP_USAGE: return "usage error";
	case VM_STOP_RESET: return "guest reset";
	case VM_STOP_TRIPLE_FAULT: return "guest triple fault";
	case VM_STOP_PANIC: return "guest kernel panic";
	case VM_STOP_INTERNAL: return "KVM internal error";
	case VM_STOP_QUIT: return "quit from the console";
	default: return reason > VM_STOP_SIGNAL ? "killed by a signal" : "unknown";
	}
}

int vm_stop_init(struct vm *vm)
{
	vm->stop_reason = VM_STOP_NONE;
	vm->stopping = false;
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0) {
		log_error("eventfd: %s", strerror(errno));
		return -1;
	}
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	vm->paused = false;
	vm->nr_parked = 0;
	return 0;
}

void vm_stop_fini(struct vm *vm)
{
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	vm->stop_fd = -1;
	pthread_mutex_destroy(&vm->stop_lock);
	pthread_cond_destroy(&vm->pause_cond);
	pthread_mutex_destroy(&vm->pause_lock);
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *why)
{
	uint64_t one = 1;
	bool first;

	pthread_mutex_lock(&vm->stop_lock);
	first = !vm->stopping;
	if (first) {
		bool panic = reason == VM_STOP_RESET && vm->panic_seen;

		if (panic)
			reason = VM_STOP_PANIC;
		vm->stop_reason = reason;
		snprintf(vm->stop_why, sizeof(vm->stop_why), "%s%s",
			 panic ? "panic message, then " : "", why ? why : "");
		__atomic_store_n(&vm->stopping, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&vm->stop_lock);
	if (!first)
		return;

	if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
		/* the counter is already non-zero: the waiter will wake */
	}
	/* Kick the vCPUs out of KVM_RUN so nothing runs past the stop; wake parked ones. */
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_pause_vcpus(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	__atomic_store_n(&vm->paused, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&vm->pause_lock);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);

	/* vCPUs not started yet park at their first loop; stopped ones never will. */
	pthread_mutex_lock(&vm->pause_lock);
	while (vm->paused && vm->nr_parked < vm->nr_vcpus && !vm_is_stopping(vm))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_resume_vcpus(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	__atomic_store_n(&vm->paused, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

bool vm_is_paused(struct vm *vm)
{
	return __atomic_load_n(&vm->paused, __ATOMIC_ACQUIRE);
}

void vm_vcpu_park(struct vm *vm)
{
	if (!vm_is_paused(vm))
		return;
	pthread_mutex_lock(&vm->pause_lock);
	vm->nr_parked++;
	pthread_cond_broadcast(&vm->pause_cond);	/* the pauser counts us */
	while (vm->paused && !vm_is_stopping(vm))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->nr_parked--;
	pthread_mutex_unlock(&vm->pause_lock);
}

bool vm_is_stopping(struct vm *vm)
{
	return __atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE);
}

enum vm_stop_reason vm_stop_reason(struct vm *vm)
{
	enum vm_stop_reason r;

	pthread_mutex_lock(&vm->stop_lock);
	r = vm->stop_reason;
	pthread_mutex_unlock(&vm->stop_lock);
	return r;
}

void vm_stop_why(struct vm *vm, char *buf, size_t size)
{
	pthread_mutex_lock(&vm->stop_lock);
	snprintf(buf, size, "%s", vm->stop_why);
	pthread_mutex_unlock(&vm->stop_lock);
}

static int vm_set_memory(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->mem.nr_regions; i++) {
		const struct guest_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region kr = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->host,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0) {
			char total[32], part[32];

			/* EINVAL, mostly: larger than KVM maps in one slot (8 TiB). */
			log_error("--memory %s: KVM cannot map %s of guest RAM at 0x%llx: %s",
				  size_format(vm->mem.ram_size, total, sizeof(total)),
				  size_format(r->size, part, sizeof(part)),
				  (unsigned long long)r->gpa, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int vm_get_supported_cpuid(struct vm *vm)
{
	size_t sz = sizeof(struct kvm_cpuid2) + KVM_CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);

	vm->cpuid = calloc(1, sz);
	if (!vm->cpuid) {
		log_error("out of memory");
		return -1;
	}
	vm->cpuid->nent = KVM_CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, vm->cpuid) < 0) {
		log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int vm_create(struct vm *vm, const struct vm_config *cfg)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = -1;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	if (vm_stop_init(vm) < 0)
		return -1;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		log_error("cannot open /dev/kvm: %s%s", strerror(errno),
			  errno == ENOENT ? " (is KVM enabled in this kernel?)" :
			  errno == EACCES ? " (is this user in the kvm group?)" : "");
		goto err;
	}
	ret = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ret != KVM_API_VERSION) {
		log_error("/dev/kvm speaks API version %d, bootvm needs %d", ret, KVM_API_VERSION);
		goto err;
	}
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
		log_error("KVM lacks KVM_CAP_IMMEDIATE_EXIT (Linux 4.11 or later is needed)");
		goto err;
	}
	ret = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret < (int)sizeof(struct kvm_run)) {
		log_error("KVM_GET_VCPU_MMAP_SIZE: %s", ret < 0 ? strerror(errno) : "too small");
		goto err;
	}
	vm->run_size = (size_t)ret;

	do
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0) {
		log_error("KVM_CREATE_VM: %s", strerror(errno));
		goto err;
	}
	if (vm_get_supported_cpuid(vm) < 0)
		goto err;
	/*
	 * RAM before the irqchip: once the in-kernel irqchip exists, each memslot
	 * change waits for an SRCU grace period (about 6 ms measured here).
	 */
	if (guest_mem_init(&vm->mem, cfg->mem_size, LAYOUT_MMIO_HOLE_START) < 0)
		goto err;
	if (vm_set_memory(vm) < 0)
		goto err;
	if (arch_vm_init(vm->vm_fd, &vm->irq) < 0)
		goto err;
	return 0;

err:
	vm_destroy(vm);
	return -1;
}

int vm_create_vcpus(struct vm *vm, unsigned int nr_cpus)
{
	vm->nr_cpus_planned = nr_cpus;
	vm->vcpus = calloc(nr_cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		log_error("out of memory");
		return -1;
	}
	for (unsigned int i = 0; i < nr_cpus; i++) {
		if (vcpu_create(vm, &vm->vcpus[i], i) < 0)
			return -1;
		vm->nr_vcpus = i + 1;
	}
	return 0;
}

int vm_start_vcpus(struct vm *vm)
{
	if (vcpu_signals_init() < 0) {
		vm_request_stop(vm, VM_STOP_ERROR, NULL);	/* not left "running": status 1 */
		return -1;
	}
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		if (vcpu_start(&vm->vcpus[i]) < 0) {
			vm_request_stop(vm, VM_STOP_ERROR, NULL);
			return -1;
		}
	}
	return 0;
}

void vm_stop_vcpus(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(&vm->vcpus[i]);
}

void vm_destroy(struct vm *vm)
{
	if (vm->vcpus) {
		vm_stop_vcpus(vm);
		for (unsigned int i = 0; i < vm->nr_vcpus; i++)
			vcpu_destroy(&vm->vcpus[i]);
		free(vm->vcpus);
		vm->vcpus = NULL;
		vm->nr_vcpus = 0;
	}
	guest_mem_destroy(&vm->mem);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	irq_router_destroy(&vm->irq);
	free(vm->cpuid);
	vm->cpuid = NULL;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
	vm_stop_fini(vm);
}

/*
 * Keep only the fds in keep[] (sorted, ascending), close everything else.
 * close_range() may be missing (Linux before 5.9) or refused by a seccomp
 * filter: then one close() per descriptor below max_fd. Async-signal-safe.
 */
static void close_all_but(const int *keep, unsigned int n, unsigned int max_fd)
{
	unsigned int first = 0;

	for (unsigned int i = 0; i <= n; i++) {
		/* The gap [first, last] before keep[i], or up to the end after the last. */
		unsigned int last = i < n ? (unsigned int)keep[i] - 1 : ~0U;

		if (i < n && (unsigned int)keep[i] == first) {
			first++;
			continue;
		}
		if (close_range(first, last, 0) < 0)
			for (unsigned int fd = first; fd <= last && fd < max_fd; fd++)
				close((int)fd);
		if (i < n)
			first = (unsigned int)keep[i] + 1;
	}
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int vm_teardown_detached(struct vm *vm)
{
	int keep[VM_MAX_CPUS + 3], n = 0, parent_alive[2];
	/* Not async-signal-safe, so asked before the fork. */
	long open_max = sysconf(_SC_OPEN_MAX);
	unsigned int max_fd = open_max > 0 && open_max < INT_MAX ? (unsigned int)open_max : 1u << 20;

	keep[n++] = vm->kvm_fd;
	keep[n++] = vm->vm_fd;
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		keep[n++] = vm->vcpus[i].fd;
	if (pipe2(parent_alive, O_CLOEXEC) < 0)
		return -1;
	keep[n++] = parent_alive[0];
	qsort(keep, (size_t)n, sizeof(keep[0]), cmp_int);

	pid_t pid = fork();
	if (pid < 0) {
		close(parent_alive[0]);
		close(parent_alive[1]);
		return -1;
	}
	if (pid == 0) {
		char c;

		/*
		 * The write end first: whatever else fails, the read below must see
		 * EOF once the parent is gone, or this child would never exit.
		 */
		close(parent_alive[1]);
		/* Hold nothing the caller's caller waits on (stdout pipes above all). */
		close_all_but(keep, (unsigned int)n, max_fd);
		/* EOF once the parent has exited: then ours are the last references. */
		while (read(parent_alive[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(parent_alive[0]);
	/* parent_alive[1] stays open until we exit. */
	return 0;
}
