#include "vmm/run.h"

#include <errno.h>
#include <limits.h>
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
#include "vmm/timeline.h"
#include "util/time.h"
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
	struct timeline_scan tl_scan;	/* the console's "Run /init" line */
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

static void run_console_power(void *opaque)
{
	int on = vmm_press_power_button(opaque);

	if (on == 0)
		log_warn("Ctrl-A p: the guest has not enabled the ACPI power button; nothing happens");
	else if (on > 0)
		log_info("Ctrl-A p: pressed the ACPI power button");
}

static void run_device_stop(void *opaque, enum vm_stop_reason reason, const char *why)
{
	vm_request_stop(opaque, reason, why);
}

/* Watch guest output for the panic marker; the pattern's 'K' occurs only first. */
static void run_console_observe(void *opaque, const uint8_t *buf, size_t len)
{
	struct vmm *ctx = opaque;

	timeline_console(&ctx->tl_scan, buf, len);
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
	console_set_power_handler(ctx->console, run_console_power, ctx);
	console_set_observer(ctx->console, run_console_observe, ctx);
	env.console = ctx->console;

	if (machine_build(&ctx->machine, &env, cfg) < 0)
		return -1;
	ctx->machine_built = true;
	return 0;
}

/* The number of a pending terminating signal (sig_fd is non-blocking), or 0. */
static int run_read_signal(int sig_fd)
{
	struct signalfd_siginfo si;

	if (read(sig_fd, &si, sizeof(si)) != sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

static void run_stop_for_signal(struct vmm *ctx, int sig, const char *more)
{
	char why[64];

	snprintf(why, sizeof(why), "signal %s%s", strsignal(sig), more);
	vm_request_stop(&ctx->vm, VM_STOP_SIGNAL + sig, why);
}

/* A terminating signal, if one is pending: stop the VM for it. */
static bool run_take_signal(struct vmm *ctx, int sig_fd)
{
	int sig = run_read_signal(sig_fd);

	if (sig)
		run_stop_for_signal(ctx, sig, "");
	return sig != 0;
}

/* --shutdown-grace: the signal that pressed the power button, and until when to wait. */
struct run_grace {
	int sig;			/* 0: not pressed */
	long deadline_ms;
};

/*
 * A signal while the guest runs. With a grace, the first SIGTERM or SIGINT
 * presses the power button; everything else (a guest that has not enabled
 * the button, a second signal, SIGHUP, SIGQUIT) stops the VM at once.
 */
static void run_on_signal(struct vmm *ctx, int sig, struct run_grace *g)
{
	unsigned int ms = ctx->cfg->shutdown_grace_ms;
	int on;

	if (!ms || (sig != SIGTERM && sig != SIGINT)) {
		run_stop_for_signal(ctx, sig, "");
		return;
	}
	if (g->sig) {
		run_stop_for_signal(ctx, sig, " during the shutdown grace");
		return;
	}
	on = vmm_press_power_button(ctx);
	if (on <= 0) {
		run_stop_for_signal(ctx, sig, on ? "" : "; the guest has not enabled the power button");
		return;
	}
	g->sig = sig;
	g->deadline_ms = time_now_ms() + (long)ms;
	log_info("signal %s: pressed the ACPI power button; waiting up to %g s for the guest "
		 "to power off (the signal again stops it now)", strsignal(sig), ms / 1000.0);
}

/* Block until a stop is requested, or a signal or the end of the shutdown grace asks for one. */
static void run_wait(struct vmm *ctx, int sig_fd)
{
	struct pollfd fds[2] = {
		{ .fd = ctx->vm.stop_fd, .events = POLLIN },
		{ .fd = sig_fd, .events = POLLIN },
	};
	struct run_grace grace = { 0 };

	while (!vm_is_stopping(&ctx->vm)) {
		int timeout = -1;

		if (grace.sig) {
			long left = grace.deadline_ms - time_now_ms();

			if (left <= 0) {
				char more[40];

				snprintf(more, sizeof(more), "; no power-off within %g s",
					 ctx->cfg->shutdown_grace_ms / 1000.0);
				run_stop_for_signal(ctx, grace.sig, more);
				break;
			}
			timeout = left > INT_MAX ? INT_MAX : (int)left;
		}
		if (poll(fds, 2, timeout) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", strerror(errno));
			vm_request_stop(&ctx->vm, VM_STOP_ERROR, NULL);
			break;
		}
		if (fds[1].revents & POLLIN) {
			int sig = run_read_signal(sig_fd);

			if (sig)
				run_on_signal(ctx, sig, &grace);
		}
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
	timeline_mark_oncef(TIMELINE_KERNEL_LOADED, "%s", plan.desc);
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
	__atomic_store_n(&ctx->started, true, __ATOMIC_RELEASE);	/* vmm_pause() reads it */
	ctx->boot_ms = ms_since(&ctx->t_start);
	if (run_take_signal(ctx, ctx->sig_fd) || vm_start_vcpus(&ctx->vm) < 0)
		return -1;
	return 0;
}

void vmm_wait(struct vmm *ctx)
{
	run_wait(ctx, ctx->sig_fd);
}

int vmm_press_power_button(struct vmm *ctx)
{
	int ret = -1;

	/* Under the stop lock: vmm_stop() destroys the machine only once stopping is set. */
	pthread_mutex_lock(&ctx->vm.stop_lock);
	if (!ctx->vm.stopping && ctx->machine_built)
		ret = machine_press_power_button(&ctx->machine);
	pthread_mutex_unlock(&ctx->vm.stop_lock);
	return ret;
}

static bool run_is_running(struct vmm *ctx)
{
	return __atomic_load_n(&ctx->started, __ATOMIC_ACQUIRE) && !vm_is_stopping(&ctx->vm);
}

void vmm_net_stats(struct vmm *ctx, struct virtio_net_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	if (ctx->machine_built)
		machine_net_stats(&ctx->machine, sum);
}

int vmm_pause(struct vmm *ctx)
{
	if (!run_is_running(ctx))
		return -1;
	vm_pause_vcpus(&ctx->vm);
	return vm_is_stopping(&ctx->vm) ? -1 : 0;
}

int vmm_resume(struct vmm *ctx)
{
	if (!run_is_running(ctx))
		return -1;
	vm_resume_vcpus(&ctx->vm);
	return 0;
}

bool vmm_is_paused(struct vmm *ctx)
{
	return vm_is_paused(&ctx->vm);
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
