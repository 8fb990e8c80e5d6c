/*
 * `bootvm firecracker` (also bootvm run as `firecracker`): Firecracker's
 * process flags, --config-file and REST API over a Unix socket, in front of
 * bootvm's VMM. The request layer is api/fc_api.c, the socket api/server.c;
 * this file owns the process: the main thread waits for InstanceStart
 * (or starts at once with --config-file), builds and runs the VM with
 * vmm_build/start/wait/stop, and exits with the VM's status.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "api/fc_api.h"
#include "api/fc_log.h"
#include "api/http.h"
#include "api/server.h"
#include "cli/cli.h"
#include "util/file.h"
#include "util/log.h"
#include "virtio/net.h"
#include "vmm/exit_status.h"
#include "vmm/run.h"

#define FC_DEFAULT_SOCK "/run/firecracker.socket"
#define FC_DEFAULT_ID "anonymous-instance"
#define FC_CONFIG_MAX (1 << 20)

static const char fc_help[] =
"Usage: bootvm firecracker [--api-sock PATH] [--config-file FILE] [OPTIONS]\n"
"       firecracker ...        (bootvm installed or linked under that name)\n"
"\n"
"Run one microVM the way Firecracker does: configured through Firecracker's REST\n"
"API on a Unix socket (PUT /boot-source, /machine-config, /drives/ID,\n"
"/network-interfaces/ID, then PUT /actions InstanceStart), or from a JSON file\n"
"with the same sections, which starts the VM at once. The guest's serial console\n"
"is on stdin/stdout. bootvm exits when the VM ends, with bootvm run's statuses.\n"
"\n"
"Options (Firecracker's):\n"
"  --api-sock PATH          the API socket (default " FC_DEFAULT_SOCK "); it must\n"
"                           not exist yet, and is removed at exit\n"
"  --config-file FILE       boot-source, machine-config, drives, network-interfaces,\n"
"                           logger, metrics, entropy as JSON; start the VM at once\n"
"  --no-api                 no socket (needs --config-file)\n"
"  --id ID                  the instance id in GET / and the log (default\n"
"                           " FC_DEFAULT_ID ")\n"
"  --log-path FILE          write the log to this existing file or FIFO, in\n"
"                           Firecracker's line format\n"
"  --level LEVEL            Error, Warning (default), Info, Debug, Trace, Off\n"
"  --show-level             put the level in each log line\n"
"  --show-log-origin        put the source file and line in each log line\n"
"  --module PATH            log only messages from source files under PATH\n"
"  --metrics-path FILE      write metrics lines (JSON) to this existing file or FIFO;\n"
"                           they carry bootvm's boot timeline too\n"
"  --http-api-max-payload-size N  largest request body (default 51200 bytes)\n"
"  --start-time-us N, --start-time-cpu-us N, --parent-cpu-time-us N\n"
"                           the jailer's timestamps (start-time-us goes to metrics)\n"
"  --no-seccomp             accepted: bootvm installs no seccomp filter\n"
"  --enable-pci             accepted: bootvm's devices are always PCI\n"
"  --version                print the Firecracker API version bootvm follows\n"
"  -h, --help               show this help\n"
"\n"
"  --boot-timer             accepted with a warning: bootvm has no boot-timer device\n"
"\n"
"Refused with a message (bootvm lacks what they need): --metadata and\n"
"--mmds-size-limit (no MMDS), --seccomp-filter, --snapshot-version and\n"
"--describe-snapshot (no snapshots).\n"
"\n"
"bootvm extension: a network interface with \"bootvm_net\": \"user,hostfwd=tcp::2222-:22\"\n"
"instead of host_dev_name uses user-mode networking (no TAP, no root). See bootvm(1).\n";

enum {
	OPT_API_SOCK = 0x100, OPT_CONFIG_FILE, OPT_NO_API, OPT_ID, OPT_BOOT_TIMER, OPT_LEVEL,
	OPT_LOG_PATH, OPT_SHOW_LEVEL, OPT_SHOW_ORIGIN, OPT_MODULE, OPT_METADATA, OPT_METRICS_PATH,
	OPT_MAX_PAYLOAD, OPT_MMDS_LIMIT, OPT_SECCOMP_FILTER, OPT_NO_SECCOMP, OPT_START_US,
	OPT_START_CPU_US, OPT_PARENT_CPU_US, OPT_ENABLE_PCI, OPT_VERSION, OPT_SNAPSHOT_VERSION,
	OPT_DESCRIBE_SNAPSHOT,
};

static const struct option fc_options[] = {
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "config-file", required_argument, NULL, OPT_CONFIG_FILE },
	{ "no-api", no_argument, NULL, OPT_NO_API },
	{ "id", required_argument, NULL, OPT_ID },
	{ "boot-timer", no_argument, NULL, OPT_BOOT_TIMER },
	{ "level", required_argument, NULL, OPT_LEVEL },
	{ "log-path", required_argument, NULL, OPT_LOG_PATH },
	{ "show-level", no_argument, NULL, OPT_SHOW_LEVEL },
	{ "show-log-origin", no_argument, NULL, OPT_SHOW_ORIGIN },
	{ "module", required_argument, NULL, OPT_MODULE },
	{ "metadata", required_argument, NULL, OPT_METADATA },
	{ "metrics-path", required_argument, NULL, OPT_METRICS_PATH },
	{ "http-api-max-payload-size", required_argument, NULL, OPT_MAX_PAYLOAD },
	{ "mmds-size-limit", required_argument, NULL, OPT_MMDS_LIMIT },
	{ "seccomp-filter", required_argument, NULL, OPT_SECCOMP_FILTER },
	{ "no-seccomp", no_argument, NULL, OPT_NO_SECCOMP },
	{ "start-time-us", required_argument, NULL, OPT_START_US },
	{ "start-time-cpu-us", required_argument, NULL, OPT_START_CPU_US },
	{ "parent-cpu-time-us", required_argument, NULL, OPT_PARENT_CPU_US },
	{ "enable-pci", no_argument, NULL, OPT_ENABLE_PCI },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "snapshot-version", no_argument, NULL, OPT_SNAPSHOT_VERSION },
	{ "describe-snapshot", required_argument, NULL, OPT_DESCRIBE_SNAPSHOT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct fc_args {
	const char *api_sock, *config_file, *id, *metrics_path;
	bool no_api;
	struct fc_logger_config log;
	bool log_given;
	size_t max_body;
	unsigned long long start_us;
};

/* The process: what the API thread asks the main thread, and the VM once it runs. */
struct fc_runtime {
	struct fc_api api;
	pthread_t main_thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int start_fd;			/* eventfd: the API thread asks for InstanceStart */
	struct vm_config *pending;	/* handed over with it */
	bool start_done, exiting;	/* exiting: no more starts (the API thread is joined next) */
	int start_ret;
	char start_fault[FC_FAULT_MAX];
	int exit_now;			/* >= 0: a signal came during the build, exit with it */
	struct vmm *vmm;		/* running, until the main thread stops it */
	struct vm_config *cfg;		/* the running VM's; outlives it */
};

static int fc_refuse(const char *opt, const char *why)
{
	log_error("firecracker: %s: %s (see bootvm firecracker --help)", opt, why);
	return CLI_USAGE;
}

static int fc_number(const char *opt, const char *arg, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-')
		return fc_refuse(opt, "not a non-negative number");
	return 0;
}

/* 0, CLI_USAGE (logged), or -1 for --help/--version (printed). */
static int fc_parse(int argc, char **argv, struct fc_args *a)
{
	unsigned long long n;
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":h", fc_options, NULL)) != -1) {
		switch (opt) {
		case OPT_API_SOCK: a->api_sock = optarg; break;
		case OPT_CONFIG_FILE: a->config_file = optarg; break;
		case OPT_NO_API: a->no_api = true; break;
		case OPT_ID: a->id = optarg; break;
		case OPT_LEVEL:
			a->log.level = fc_log_level_parse(optarg);
			if (a->log.level == FC_LOG_UNSET)
				return fc_refuse("--level", "expected Error, Warning, Info, Debug, "
						 "Trace or Off");
			a->log_given = true;
			break;
		case OPT_LOG_PATH: a->log.log_path = optarg; a->log_given = true; break;
		case OPT_SHOW_LEVEL: a->log.show_level = 1; a->log_given = true; break;
		case OPT_SHOW_ORIGIN: a->log.show_log_origin = 1; a->log_given = true; break;
		case OPT_MODULE: a->log.module = optarg; a->log_given = true; break;
		case OPT_METRICS_PATH: a->metrics_path = optarg; break;
		case OPT_MAX_PAYLOAD:
			if (fc_number("--http-api-max-payload-size", optarg, &n))
				return CLI_USAGE;
			if (n < 1024 || n > (16 << 20))
				return fc_refuse("--http-api-max-payload-size",
						 "bootvm takes 1024 to 16777216 bytes");
			a->max_body = (size_t)n;
			break;
		case OPT_START_US:
			if (fc_number("--start-time-us", optarg, &a->start_us))
				return CLI_USAGE;
			break;
		case OPT_START_CPU_US:
		case OPT_PARENT_CPU_US:
			if (fc_number(opt == OPT_START_CPU_US ? "--start-time-cpu-us" :
				      "--parent-cpu-time-us", optarg, &n))
				return CLI_USAGE;
			log_info("firecracker: %s: accepted; bootvm's metrics carry no CPU times",
				 opt == OPT_START_CPU_US ? "--start-time-cpu-us" : "--parent-cpu-time-us");
			break;
		case OPT_NO_SECCOMP:
			log_info("firecracker: --no-seccomp: bootvm installs no seccomp filter anyway");
			break;
		case OPT_ENABLE_PCI:
			log_info("firecracker: --enable-pci: bootvm's devices are always on PCI");
			break;
		case OPT_BOOT_TIMER:
			/* Diagnostics only (flintlock passes it): said, not silently dropped. */
			log_warn("firecracker: --boot-timer: accepted, but bootvm has no boot-timer "
				 "device (a guest's write to it is not timed)");
			break;
		case OPT_METADATA:
			return fc_refuse("--metadata", "bootvm has no MMDS (microVM metadata service)");
		case OPT_MMDS_LIMIT:
			return fc_refuse("--mmds-size-limit", "bootvm has no MMDS");
		case OPT_SECCOMP_FILTER:
			return fc_refuse("--seccomp-filter", "bootvm installs no seccomp filters");
		case OPT_SNAPSHOT_VERSION:
			return fc_refuse("--snapshot-version", "bootvm has no snapshots");
		case OPT_DESCRIBE_SNAPSHOT:
			return fc_refuse("--describe-snapshot", "bootvm has no snapshots");
		case OPT_VERSION:
			printf("Firecracker v%s (bootvm %s)\n", FC_VERSION, BOOTVM_VERSION);
			return -1;
		case 'h':
			fputs(fc_help, stdout);
			return -1;
		default:
			return cli_option_error("firecracker", opt, argv, fc_options);
		}
	}
	if (optind < argc)
		return log_usage_error(CLI_USAGE, "firecracker", "unexpected argument '%s'",
				       argv[optind]);
	if (a->no_api && !a->config_file)
		return fc_refuse("--no-api", "needs --config-file (nothing could start the VM)");
	return 0;
}

/* ---- the VM, on the main thread ---- */

/* Build and start; on failure the reason is in fault and the process stays pre-boot. */
static int fc_boot(struct fc_runtime *rt, struct vm_config *cfg, char *fault, size_t size)
{
	struct vmm *vmm;
	int status;

	log_capture_first_error(fault, size);
	vmm = vmm_build(cfg);
	if (vmm && vmm_start(vmm) == 0) {
		log_capture_first_error(NULL, 0);
		pthread_mutex_lock(&rt->lock);
		rt->vmm = vmm;
		rt->cfg = cfg;
		pthread_mutex_unlock(&rt->lock);
		return 0;
	}
	status = vmm ? vmm_stop(vmm) : VM_STOP_ERROR;
	log_capture_first_error(NULL, 0);
	vm_config_free(cfg);
	free(cfg);
	if (status >= VM_STOP_SIGNAL)
		rt->exit_now = status;
	if (!fault[0])
		snprintf(fault, size, "the VM did not start (%s)", vm_stop_reason_name(status));
	/* Firecracker's prefix for a failed InstanceStart. */
	char msg[FC_FAULT_MAX];
	snprintf(msg, sizeof(msg), "Start microvm error: %s", fault);
	snprintf(fault, size, "%s", msg);
	return -1;
}

static int op_start(void *opaque, struct vm_config *cfg, char *fault, size_t size)
{
	struct fc_runtime *rt = opaque;
	uint64_t one = 1;
	int ret;

	if (pthread_equal(pthread_self(), rt->main_thread))
		return fc_boot(rt, cfg, fault, size);
	/* The main thread builds it: it owns the signals and the VM's lifetime. */
	pthread_mutex_lock(&rt->lock);
	if (rt->exiting) {
		pthread_mutex_unlock(&rt->lock);
		vm_config_free(cfg);
		free(cfg);
		snprintf(fault, size, "Start microvm error: bootvm is exiting.");
		return -1;
	}
	rt->pending = cfg;
	rt->start_done = false;
	if (write(rt->start_fd, &one, sizeof(one)) < 0) {
		/* the counter is already non-zero */
	}
	while (!rt->start_done)
		pthread_cond_wait(&rt->cond, &rt->lock);
	ret = rt->start_ret;
	snprintf(fault, size, "%s", rt->start_fault);
	pthread_mutex_unlock(&rt->lock);
	return ret;
}

static int op_pause(void *opaque, char *fault, size_t size)
{
	struct fc_runtime *rt = opaque;
	int ret = -1;

	log_capture_first_error(fault, size);
	pthread_mutex_lock(&rt->lock);
	if (rt->vmm)
		ret = vmm_pause(rt->vmm);
	else
		snprintf(fault, size, "The microVM has stopped.");
	pthread_mutex_unlock(&rt->lock);
	log_capture_first_error(NULL, 0);
	return ret;
}

static int op_resume(void *opaque, char *fault, size_t size)
{
	struct fc_runtime *rt = opaque;
	int ret = -1;

	pthread_mutex_lock(&rt->lock);
	if (rt->vmm)
		ret = vmm_resume(rt->vmm);
	pthread_mutex_unlock(&rt->lock);
	if (ret < 0)
		snprintf(fault, size, "The microVM has stopped.");
	return ret;
}

/*
 * Firecracker's SendCtrlAltDel types Ctrl+Alt+Del on the i8042 for a guest
 * to reboot (with reboot=k: to exit); bootvm presses its ACPI power button,
 * which a guest with a button driver answers by powering off. As with
 * Firecracker, the answer does not wait for the guest.
 */
static int op_ctrl_alt_del(void *opaque, char *fault, size_t size)
{
	struct fc_runtime *rt = opaque;
	int ret = -1;

	pthread_mutex_lock(&rt->lock);
	if (rt->vmm)
		ret = vmm_press_power_button(rt->vmm);
	pthread_mutex_unlock(&rt->lock);
	if (ret < 0) {
		snprintf(fault, size, "The microVM has stopped.");
		return -1;
	}
	if (ret == 0)
		log_info("SendCtrlAltDel: the guest has not enabled its ACPI power button yet; "
			 "the press stays latched");
	return 0;
}

/*
 * The running VM's part of a metrics line (API thread, with the API's lock):
 * Firecracker's "net" counters from bootvm's, and what only bootvm counts
 * (the boot timeline is the request layer's: it is the process's).
 */
static void op_metrics(void *opaque, struct json_object *line)
{
	struct fc_runtime *rt = opaque;
	struct virtio_net_stats net;
	struct json_object *n, *b;

	pthread_mutex_lock(&rt->lock);
	if (!rt->vmm) {
		pthread_mutex_unlock(&rt->lock);
		return;
	}
	vmm_net_stats(rt->vmm, &net);
	pthread_mutex_unlock(&rt->lock);
	n = json_object_new_object();
	json_object_object_add(n, "rx_packets_count", json_object_new_int64((int64_t)net.rx_frames));
	json_object_object_add(n, "rx_bytes_count", json_object_new_int64((int64_t)net.rx_bytes));
	json_object_object_add(n, "tx_packets_count", json_object_new_int64((int64_t)net.tx_frames));
	json_object_object_add(n, "tx_bytes_count", json_object_new_int64((int64_t)net.tx_bytes));
	json_object_object_add(line, "net", n);
	b = json_object_new_object();
	json_object_object_add(b, "net_rx_dropped", json_object_new_int64((int64_t)net.rx_dropped));
	json_object_object_add(b, "net_tx_dropped", json_object_new_int64((int64_t)net.tx_dropped));
	json_object_object_add(line, "bootvm", b);
}

static const struct fc_ops fc_runtime_ops = {
	.start = op_start,
	.pause = op_pause,
	.resume = op_resume,
	.ctrl_alt_del = op_ctrl_alt_del,
	.metrics = op_metrics,
};

/* Before InstanceStart: serve the API thread's start requests; a signal ends the process. */
static int fc_wait_start(struct fc_runtime *rt, int sig_fd)
{
	struct pollfd fds[2] = {
		{ .fd = sig_fd, .events = POLLIN },
		{ .fd = rt->start_fd, .events = POLLIN },
	};

	for (;;) {
		struct signalfd_siginfo si;
		uint64_t v;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", strerror(errno));
			return VM_STOP_ERROR;
		}
		if ((fds[0].revents & POLLIN) && read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
			log_info("firecracker: %s before the VM started", strsignal((int)si.ssi_signo));
			return VM_STOP_SIGNAL + (int)si.ssi_signo;
		}
		if (!(fds[1].revents & POLLIN) || read(rt->start_fd, &v, sizeof(v)) != sizeof(v))
			continue;
		pthread_mutex_lock(&rt->lock);
		struct vm_config *cfg = rt->pending;
		rt->pending = NULL;
		pthread_mutex_unlock(&rt->lock);
		if (!cfg)
			continue;

		char fault[FC_FAULT_MAX] = "";
		int ret = fc_boot(rt, cfg, fault, sizeof(fault));

		pthread_mutex_lock(&rt->lock);
		rt->start_ret = ret;
		snprintf(rt->start_fault, sizeof(rt->start_fault), "%s", fault);
		rt->start_done = true;
		pthread_cond_broadcast(&rt->cond);
		pthread_mutex_unlock(&rt->lock);
		if (ret == 0)
			return -1;	/* running */
		if (rt->exit_now >= 0)
			return rt->exit_now;
	}
}

/*
 * Before the API thread is joined: an InstanceStart waiting for the main
 * thread is answered, later ones are refused (else the join waits for a
 * thread that waits for the main thread).
 */
static void fc_refuse_starts(struct fc_runtime *rt)
{
	pthread_mutex_lock(&rt->lock);
	rt->exiting = true;
	if (rt->pending) {
		vm_config_free(rt->pending);
		free(rt->pending);
		rt->pending = NULL;
		rt->start_ret = -1;
		snprintf(rt->start_fault, sizeof(rt->start_fault),
			 "Start microvm error: bootvm is exiting.");
		rt->start_done = true;
		pthread_cond_broadcast(&rt->cond);
	}
	pthread_mutex_unlock(&rt->lock);
}

static int fc_load_config_file(struct fc_api *api, const char *path)
{
	struct file_map fm;
	char fault[FC_FAULT_MAX];
	int ret;

	if (file_map(path, "--config-file", &fm) < 0)
		return -1;
	if (fm.size > FC_CONFIG_MAX) {
		file_unmap(&fm);
		log_error("--config-file %s: larger than %d bytes", path, FC_CONFIG_MAX);
		return -1;
	}
	ret = fc_api_load_config(api, (const char *)fm.data, fm.size, fault, sizeof(fault));
	file_unmap(&fm);
	if (ret < 0)
		log_error("--config-file %s: %s", path, fault);
	return ret;
}

int cli_firecracker(int argc, char **argv)
{
	struct fc_args a = {
		.api_sock = FC_DEFAULT_SOCK, .id = FC_DEFAULT_ID, .max_body = HTTP_DEFAULT_MAX_BODY,
		.log = { .level = FC_LOG_UNSET, .show_level = -1, .show_log_origin = -1 },
	};
	struct fc_runtime rt = { .exit_now = -1, .start_fd = -1 };
	struct api_server *server = NULL;
	char fault[FC_FAULT_MAX];
	sigset_t sigs, old;
	int sig_fd, status, ret;

	ret = fc_parse(argc, argv, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (fc_api_init(&rt.api, a.id, &fc_runtime_ops, &rt) < 0)
		return CLI_USAGE;
	if (a.start_us)
		rt.api.start_us = a.start_us;
	if (a.log_given && fc_log_configure(&a.log, a.id, fault, sizeof(fault)) < 0) {
		log_error("firecracker: %s", fault);
		fc_api_fini(&rt.api);
		return VM_STOP_ERROR;
	}
	if (a.metrics_path && fc_api_set_metrics(&rt.api, a.metrics_path, false, fault,
						 sizeof(fault)) < 0) {
		log_error("firecracker: --metrics-path: %s", fault);
		status = VM_STOP_ERROR;
		goto out_api;
	}
	rt.main_thread = pthread_self();
	pthread_mutex_init(&rt.lock, NULL);
	pthread_cond_init(&rt.cond, NULL);

	/* The terminating signals are the main thread's, from before any thread starts. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	signal(SIGPIPE, SIG_IGN);
	sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	rt.start_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sig_fd < 0 || rt.start_fd < 0) {
		log_error("firecracker: %s: %s", sig_fd < 0 ? "signalfd" : "eventfd", strerror(errno));
		status = VM_STOP_ERROR;
		goto out_fds;
	}
	if (a.config_file && fc_load_config_file(&rt.api, a.config_file) < 0) {
		status = VM_STOP_ERROR;
		goto out_fds;
	}
	if (!a.no_api) {
		server = api_server_start(a.api_sock, &rt.api, a.max_body);
		if (!server) {
			status = VM_STOP_ERROR;
			goto out_fds;
		}
		log_info("firecracker: listening on %s", a.api_sock);
	}
	if (a.config_file) {
		/* As Firecracker: a configuration file starts the VM at once. */
		if (fc_api_start(&rt.api, fault, sizeof(fault)) < 0) {
			log_error("firecracker: --config-file %s: %s", a.config_file, fault);
			status = rt.exit_now >= 0 ? rt.exit_now : VM_STOP_ERROR;
			goto out_server;
		}
	} else {
		status = fc_wait_start(&rt, sig_fd);
		if (status >= 0)
			goto out_server;
	}

	/* Running: the VMM's own signalfd takes the signals from here on. */
	close(sig_fd);
	sig_fd = -1;
	vmm_wait(rt.vmm);
	/* The last metrics line while the VM is still attached: its net counters are in it. */
	fc_api_vm_ended(&rt.api);
	pthread_mutex_lock(&rt.lock);
	struct vmm *vmm = rt.vmm;
	rt.vmm = NULL;
	pthread_mutex_unlock(&rt.lock);
	api_server_stop(server);
	server = NULL;
	status = vmm_stop(vmm);
	vm_config_free(rt.cfg);
	free(rt.cfg);

out_server:
	if (server)
		fc_refuse_starts(&rt);
	api_server_stop(server);
out_fds:
	if (sig_fd >= 0)
		close(sig_fd);
	if (rt.start_fd >= 0)
		close(rt.start_fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_cond_destroy(&rt.cond);
	pthread_mutex_destroy(&rt.lock);
out_api:
	fc_api_fini(&rt.api);
	fc_log_reset();
	return status;
}
