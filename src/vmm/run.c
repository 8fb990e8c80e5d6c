#include "vmm/run.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "backends/console.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pvpanic.h"
#include "devices/serial.h"
#include "util/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* How long guest output may take to drain once the VM has stopped. */
#define CONSOLE_FLUSH_MS 2000

/* Printed by Linux's panic(); a reset that follows it is a panic, not a reboot. */
static const char panic_marker[] = "Kernel panic - not syncing";

struct run_ctx {
	struct vm vm;
	struct console *console;
	struct serial *serial;
	size_t panic_match;	/* bytes of panic_marker matched so far */
	struct timespec t_start;
};

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void run_serial_irq(void *opaque, int level)
{
	vm_irq_line(opaque, IRQ_COM1, level);
}

static void run_console_quit(void *opaque)
{
	vm_request_stop(opaque, VM_STOP_QUIT, "escape sequence");
}

/* Watch guest output for the panic marker; the pattern's 'K' occurs only first. */
static void run_console_observe(void *opaque, const uint8_t *buf, size_t len)
{
	struct run_ctx *ctx = opaque;

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

static int run_add_devices(struct run_ctx *ctx, const struct vm_config *cfg)
{
	struct vm *vm = &ctx->vm;

	ctx->console = console_open(cfg);
	if (!ctx->console)
		return -1;
	console_set_quit_handler(ctx->console, run_console_quit, vm);
	console_set_observer(ctx->console, run_console_observe, ctx);

	ctx->serial = serial_create(ctx->console, run_serial_irq, vm);
	if (!ctx->serial)
		return -1;
	if (bus_register(&vm->pio, PORT_COM1, SERIAL_PORT_LEN, "serial", &serial_bus_ops,
			 ctx->serial) < 0)
		return -1;
	if (i8042_create(vm) < 0 || acpi_pm_create(vm) < 0 || pvpanic_create(vm) < 0)
		return -1;
	return 0;
}

/* A terminating signal, if one is pending (sig_fd is non-blocking): stop the VM for it. */
static bool run_take_signal(struct run_ctx *ctx, int sig_fd)
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
static void run_wait(struct run_ctx *ctx, int sig_fd)
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

static void run_print_stats(struct run_ctx *ctx, enum vm_stop_reason reason,
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

	fprintf(stderr,
		"bootvm: stats: exit=%d (%s) setup_ms=%.3f total_ms=%.3f rss_kib=%ld "
		"guest_touched_kib=%ld overhead_kib=%ld console_dropped=%llu "
		"unhandled_pio=%llu unhandled_mmio=%llu\n",
		reason, vm_stop_reason_name(reason), boot_ms, total_ms, rss_kib, guest_kib,
		rss_kib - guest_kib,
		(unsigned long long)(ctx->console ? console_dropped(ctx->console) : 0),
		(unsigned long long)ctx->vm.pio.unhandled, (unsigned long long)ctx->vm.mmio.unhandled);
}

int vmm_run(const struct vm_config *cfg)
{
	struct run_ctx ctx = { 0 };
	struct boot_plan plan;
	struct acpi_config acpi = { .nr_cpus = cfg->nr_cpus };
	struct signalfd_siginfo si;
	uint64_t rsdp;
	sigset_t sigs, old_sigs;
	int sig_fd, status = VM_STOP_ERROR;
	double boot_ms = 0;
	char why[64];

	clock_gettime(CLOCK_MONOTONIC, &ctx.t_start);

	/* Terminating signals become an orderly stop; every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &sigs, &old_sigs);
	signal(SIGPIPE, SIG_IGN);
	sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0) {
		log_error("signalfd: %s", strerror(errno));
		goto out_sigmask;
	}

	/*
	 * A signal that arrives while the VM is set up (KVM's memory set-up and
	 * a kernel's decompression can take seconds) stops it at the next step:
	 * the guest never starts.
	 */
	if (vm_create(&ctx.vm, cfg) < 0)
		goto out_sigfd;
	if (run_add_devices(&ctx, cfg) < 0)
		goto out_devices;
	if (run_take_signal(&ctx, sig_fd))
		goto out_stopped;
	if (acpi_install(&ctx.vm.mem, &acpi, &rsdp) < 0)
		goto out_devices;
	if (boot_load(&ctx.vm.mem, cfg, rsdp, &plan) < 0)
		goto out_devices;
	if (run_take_signal(&ctx, sig_fd))
		goto out_stopped;
	log_info("booting %s", plan.desc);
	if (vm_create_vcpus(&ctx.vm, cfg->nr_cpus) < 0)
		goto out_devices;
	if (boot_setup_vcpu(ctx.vm.vcpus[0].fd, &ctx.vm.mem, &plan) < 0)
		goto out_devices;

	if (console_start(ctx.console) < 0)
		goto out_devices;
	boot_ms = ms_since(&ctx.t_start);
	if (!run_take_signal(&ctx, sig_fd) && vm_start_vcpus(&ctx.vm) == 0)
		run_wait(&ctx, sig_fd);
	vm_stop_vcpus(&ctx.vm);
	console_stop(ctx.console, CONSOLE_FLUSH_MS);

out_stopped:
	if (!boot_ms)
		boot_ms = ms_since(&ctx.t_start);
	status = vm_stop_reason(&ctx.vm);
	vm_stop_why(&ctx.vm, why, sizeof(why));
	/* One line on how the VM ended: a warning unless the guest powered off. */
	if (status == VM_STOP_POWEROFF)
		log_info("%s (%s)", vm_stop_reason_name(status), why);
	else if (status != VM_STOP_ERROR)
		log_warn("%s (%s%sexit status %d)", vm_stop_reason_name(status),
			 why, *why ? "; " : "", status);
	if (console_dropped(ctx.console))
		log_warn("console output stalled: %llu bytes of guest output dropped",
			 (unsigned long long)console_dropped(ctx.console));
	if (cfg->stats)
		run_print_stats(&ctx, status, boot_ms, ms_since(&ctx.t_start));

out_devices:
	if (ctx.console)
		console_stop(ctx.console, 0);
	/* bootvm exits after this: let a child wait out the kernel's slow VM teardown. */
	vm_stop_vcpus(&ctx.vm);
	if (ctx.vm.vm_fd >= 0)
		vm_teardown_detached(&ctx.vm);
	vm_destroy(&ctx.vm);
	if (ctx.serial)
		serial_destroy(ctx.serial);
	if (ctx.console)
		console_close(ctx.console);
out_sigfd:
	/*
	 * A signal that came once the VM had stopped (while the console drained,
	 * say) changes nothing: the first reason stands. Take it here, or
	 * restoring the mask would deliver it and kill bootvm (SIGQUIT: with a
	 * core dump) instead of letting it exit with its status.
	 */
	while (read(sig_fd, &si, sizeof(si)) == sizeof(si))
		;
	close(sig_fd);
out_sigmask:
	pthread_sigmask(SIG_SETMASK, &old_sigs, NULL);
	return status;
}
