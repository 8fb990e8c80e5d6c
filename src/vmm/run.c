#include "vmm/run.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/boot.h"
#include "arch/x86/machine.h"
#include "backends/console.h"
#include "virtio/net.h"
#include "util/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* How long guest output may take to drain once the VM has stopped. */
#define CONSOLE_FLUSH_MS 2000

/* Printed by Linux's panic(); a reset that follows it is a panic, not a reboot. */
static const char panic_marker[] = "Kernel panic - not syncing";

struct vmm {
	const struct vm_config *cfg;
	struct vm vm;
	struct machine machine;
	bool machine_built;
	struct console *console;
	size_t panic_match;	/* bytes of panic_marker matched so far */
	struct timespec t_start;
	double boot_ms;
	sigset_t old_sigs;
	int sig_fd;
	bool started;
};

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void run_console_quit(void *opaque)
{
	vm_request_stop(opaque, VM_STOP_QUIT, "escape sequence");
}

static void run_device_stop(void *opaque, enum vm_stop_reason reason, const char *why)
{
	vm_request_stop(opaque, reason, why);
}

/* Watch guest output for the panic marker; the pattern's 'K' occurs only first. */
static void run_console_observe(void *opaque, const uint8_t *buf, size_t len)
{
	struct vmm *ctx = opaque;

	for (size_t i = 0; i < len && !ctx->vm.panic_seen; i++) {
		if (buf[i] == (uint8_t)panic_marker[ctx->panic_match])
			ctx->panic_match++;
		else
			ctx->panic_match = buf[i] == (uint8_t)panic_marker[0];
		if (ctx->panic_match == sizeof(panic_marker) - 1) {
			pthread_mutex_lock(&ctx->vm.stop_lock);
			ctx->vm.panic_seen = true;
			pthread_mutex_unlock(&ctx->vm.stop_lock);
		}
	}
}

static int run_add_devices(struct vmm *ctx, const struct vm_config *cfg)
{
	struct vm *vm = &ctx->vm;
	struct machine_env env = {
		.vm_fd = vm->vm_fd,
		.mem = &vm->mem,
		.pio = &vm->pio,
		.mmio = &vm->mmio,
		.irq = &vm->irq,
		.stop = { run_device_stop, vm },
	};

	ctx->console = console_open(cfg);
	if (!ctx->console)
		return -1;
	console_set_quit_handler(ctx->console, run_console_quit, vm);
	console_set_observer(ctx->console, run_console_observe, ctx);
	env.console = ctx->console;

	if (machine_build(&ctx->machine, &env, cfg) < 0)
		return -1;
	ctx->machine_built = true;
	return 0;
}

/* A terminating signal, if one is pending (sig_fd is non-blocking): stop the VM for it. */
static bool run_take_signal(struct vmm *ctx, int sig_fd)
{
	struct signalfd_siginfo si;
	char why[48];

	if (read(sig_fd, &si, sizeof(si)) != sizeof(si))
		return false;
	snprintf(why, sizeof(why), "signal %s", strsignal((int)si.ssi_signo));
	vm_request_stop(&ctx->vm, VM_STOP_SIGNAL + (int)si.ssi_signo, why);
	return true;
}

/* Block until a stop is requested or a terminating signal arrives. */
static void run_wait(struct vmm *ctx, int sig_fd)
{
	struct pollfd fds[2] = {
		{ .fd = ctx->vm.stop_fd, .events = POLLIN },
		{ .fd = sig_fd, .events = POLLIN },
	};

	while (!vm_is_stopping(&ctx->vm)) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", strerror(errno));
			vm_request_stop(&ctx->vm, VM_STOP_ERROR, NULL);
			break;
		}
		if (fds[1].revents & POLLIN)
			run_take_signal(ctx, sig_fd);
	}
}

static void run_print_stats(struct vmm *ctx, enum vm_stop_reason reason,
			    double boot_ms, double total_ms)
{
	long rss_kib = 0;
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &rss_kib) == 1)
			break;
	if (f)
		fclose(f);
	long guest_kib = (long)(guest_mem_resident(&ctx->vm.mem) >> 10);
	struct virtio_net_stats net = { 0 };

	if (ctx->machine_built)
		machine_net_stats(&ctx->machine, &net);

	fprintf(stderr,
		"bootvm: stats: exit=%d (%s) setup_ms=%.3f total_ms=%.3f rss_kib=%ld "
		"guest_touched_kib=%ld overhead_kib=%ld console_dropped=%llu "
		"unhandled_pio=%llu unhandled_mmio=%llu net_rx_frames=%llu net_tx_frames=%llu "
		"net_rx_dropped=%llu net_tx_dropped=%llu\n",
		reason, vm_stop_reason_name(reason), boot_ms, total_ms, rss_kib, guest_kib,
		rss_kib - guest_kib,
		(unsigned long long)(ctx->console ? console_dropped(ctx->console) : 0),
		(unsigned long long)ctx->vm.pio.unhandled, (unsigned long long)ctx->vm.mmio.unhandled,
		(unsigned long long)net.rx_frames, (unsigned long long)net.tx_frames,
		(unsigned long long)net.rx_dropped, (unsigned long long)net.tx_dropped);
}

struct vmm *vmm_build(const struct vm_config *cfg)
{
	struct vmm *ctx = calloc(1, sizeof(*ctx));
	struct boot_plan plan;
	sigset_t sigs;
	uint64_t rsdp;

	if (!ctx) {
		log_error("out of memory");
		return NULL;
	}
	ctx->cfg = cfg;
	ctx->vm.vm_fd = ctx->vm.kvm_fd = ctx->vm.stop_fd = -1;
	clock_gettime(CLOCK_MONOTONIC, &ctx->t_start);

	/* Terminating signals become an orderly stop; every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &sigs, &ctx->old_sigs);
	signal(SIGPIPE, SIG_IGN);
	ctx->sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (ctx->sig_fd < 0) {
		log_error("signalfd: %s", strerror(errno));
		pthread_sigmask(SIG_SETMASK, &ctx->old_sigs, NULL);
		free(ctx);
		return NULL;
	}

	/*
	 * A signal that arrives while the VM is set up (KVM's memory set-up and
	 * a kernel's decompression can take seconds) stops it at the next step:
	 * the guest never starts.
	 */
	if (vm_create(&ctx->vm, cfg) < 0) {	/* it cleaned up after itself */
		close(ctx->sig_fd);
		pthread_sigmask(SIG_SETMASK, &ctx->old_sigs, NULL);
		free(ctx);
		return NULL;
	}
	if (run_add_devices(ctx, cfg) < 0)
		goto out_error;
	if (run_take_signal(ctx, ctx->sig_fd))
		goto out;
	if (machine_install_acpi(&ctx->machine, cfg->nr_cpus, &rsdp) < 0)
		goto out_error;
	if (boot_load(&ctx->vm.mem, cfg, rsdp, &plan) < 0)
		goto out_error;
	if (run_take_signal(ctx, ctx->sig_fd))
		goto out;
	log_info("booting %s", plan.desc);
	if (vm_create_vcpus(&ctx->vm, cfg->nr_cpus) < 0)
		goto out_error;
	if (boot_setup_vcpu(ctx->vm.vcpus[0].fd, &ctx->vm.mem, &plan) < 0)
		goto out_error;
	return ctx;

out_error:
	vm_request_stop(&ctx->vm, VM_STOP_ERROR, NULL);
out:
	return ctx;
}

int vmm_start(struct vmm *ctx)
{
	if (vm_is_stopping(&ctx->vm))
		return -1;
	if (console_start(ctx->console) < 0) {
		vm_request_stop(&ctx->vm, VM_STOP_ERROR, NULL);
		return -1;
	}
	ctx->started = true;
	ctx->boot_ms = ms_since(&ctx->t_start);
	if (run_take_signal(ctx, ctx->sig_fd) || vm_start_vcpus(&ctx->vm) < 0)
		return -1;
	return 0;
}

void vmm_wait(struct vmm *ctx)
{
	run_wait(ctx, ctx->sig_fd);
}

int vmm_stop(struct vmm *ctx)
{
	struct signalfd_siginfo si;
	int status;
	char why[64];

	/* A VM that never got as far as a stop request failed to build. */
	if (!vm_is_stopping(&ctx->vm) && !ctx->started)
		vm_request_stop(&ctx->vm, VM_STOP_ERROR, NULL);
	vm_stop_vcpus(&ctx->vm);
	if (ctx->machine_built)
		machine_stop(&ctx->machine);
	if (ctx->started)
		console_stop(ctx->console, CONSOLE_FLUSH_MS);

	if (!ctx->boot_ms)
		ctx->boot_ms = ms_since(&ctx->t_start);
	status = vm_stop_reason(&ctx->vm);
	vm_stop_why(&ctx->vm, why, sizeof(why));
	/* One line on how the VM ended: a warning unless the guest powered off. */
	if (status == VM_STOP_POWEROFF)
		log_info("%s (%s)", vm_stop_reason_name(status), why);
	else if (status != VM_STOP_ERROR && status != VM_STOP_NONE)
		log_warn("%s (%s%sexit status %d)", vm_stop_reason_name(status),
			 why, *why ? "; " : "", status);
	if (ctx->console && console_dropped(ctx->console))
		log_warn("console output stalled: %llu bytes of guest output dropped",
			 (unsigned long long)console_dropped(ctx->console));
	if (ctx->cfg->stats && ctx->vm.vm_fd >= 0)
		run_print_stats(ctx, status, ctx->boot_ms, ms_since(&ctx->t_start));

	if (ctx->console)
		console_stop(ctx->console, 0);
	/* bootvm exits after this: let a child wait out the kernel's slow VM teardown. */
	if (ctx->vm.vm_fd >= 0)
		vm_teardown_detached(&ctx->vm);
	if (ctx->machine_built)
		machine_destroy(&ctx->machine);
	vm_destroy(&ctx->vm);
	if (ctx->console)
		console_close(ctx->console);
	/*
	 * A signal that came once the VM had stopped (while the console drained,
	 * say) changes nothing: the first reason stands. Take it here, or
	 * restoring the mask would deliver it and kill bootvm (SIGQUIT: with a
	 * core dump) instead of letting it exit with its status.
	 */
	while (read(ctx->sig_fd, &si, sizeof(si)) == sizeof(si))
		;
	close(ctx->sig_fd);
	pthread_sigmask(SIG_SETMASK, &ctx->old_sigs, NULL);
	free(ctx);
	return status == VM_STOP_NONE ? VM_STOP_ERROR : status;
}

int vmm_run(const struct vm_config *cfg)
{
	struct vmm *ctx = vmm_build(cfg);

	if (!ctx)
		return VM_STOP_ERROR;
	if (vmm_start(ctx) == 0)
		vmm_wait(ctx);
	return vmm_stop(ctx);
}
