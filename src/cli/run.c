/* `bootvm run`: parse the command line into a vm_config and run the VM. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/log.h"
#include "util/size.h"
#include "vmm/config.h"
#include "vmm/run.h"
#include "vmm/timeline.h"

static const char run_help[] =
"Usage: bootvm run --kernel FILE [OPTIONS]\n"
"       bootvm run --disk IMAGE [--boot-entry N|TITLE] [OPTIONS]\n"
"\n"
"Boot a Linux kernel in a KVM microVM with its console on the terminal.\n"
"Without --kernel, boot the kernel inside the first disk: the one its own boot\n"
"configuration names (Boot Loader Specification entries, a unified kernel\n"
"image in EFI/Linux, grub.cfg, or Debian's /vmlinuz and /boot/vmlinuz-*), read\n"
"on the host: no firmware or boot loader runs. Its command line gets root=\n"
"as /dev/vdaN and console=ttyS0 when it has no console= (bootvm disk-info\n"
"IMAGE shows what would boot).\n"
"\n"
"Options:\n"
"  -k, --kernel FILE        kernel: bzImage/vmlinuz (64-bit boot protocol 2.12+)\n"
"                           or ELF vmlinux (PVH entry, else its 64-bit entry)\n"
"  -i, --initrd FILE        initramfs or initrd image\n"
"  -a, --append TEXT        kernel command line; with a kernel from the disk,\n"
"                           added to the disk's own\n"
"      --boot-entry N|TITLE without --kernel: boot entry N (as disk-info numbers\n"
"                           them) or the one with this title or id, not the default\n"
"  -m, --memory SIZE        guest RAM: 512M (default), 2G, 1536MiB; a bare number\n"
"                           is MiB; at least 8M, a multiple of 4 KiB\n"
"  -c, --cpus N             vCPUs, 1 (default) to 255\n"
"  -d, --disk PATH[,OPT...] a virtio-blk disk (raw image or block device), repeatable:\n"
"                           the first is /dev/vda, then vdb, ...  OPT: ro=on,\n"
"                           id=SERIAL (up to 20 chars), cache=writeback|none,\n"
"                           discard=on, queues=N (default: one per vCPU, max 16).\n"
"                           A read-write image is locked against other users.\n"
"      --rng                a virtio-rng device (the guest's /dev/hwrng) fed by getrandom\n"
"  -n, --net user[,OPT...]  a virtio-net interface on user-mode networking (no root):\n"
"                           DHCP gives the guest 10.0.2.15, gateway 10.0.2.2, DNS\n"
"                           10.0.2.3. OPT: hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-\n"
"                           [GUESTADDR]:GUESTPORT (repeatable; HOSTADDR defaults to\n"
"                           127.0.0.1), restrict=on, mac=52:54:00:xx:xx:xx, id=ID\n"
"      --net tap=NAME[,mac=...,id=...]  an existing TAP device instead\n"
"      --net passt[,hostfwd=...,mac=...,id=...]  passt (Debian's passt, in $PATH)\n"
"                           instead of libslirp: the same addresses; DNS is the\n"
"                           host's resolver; hostfwd to the guest's address only\n"
"      --console TARGET     stdio (default), file:PATH (output only), or none\n"
"      --no-host-decompress boot a compressed bzImage through its own in-guest\n"
"                           decompressor instead of decompressing it here\n"
"      --stats              print timing and memory figures when the VM ends\n"
"      --boot-timeline[=FILE]  when the VM ends, print when each boot phase happened\n"
"                           (VM, memory, kernel, first KVM_RUN, console, Run /init,\n"
"                           PCI, virtio kicks, DHCP lease, hostfwd, guest markers\n"
"                           written to port 0x80, stop) on stderr, or as JSON to FILE\n"
"      --shutdown-grace SECONDS  SIGTERM or SIGINT presses the guest's ACPI power\n"
"                           button and waits this long for it to power off (exit\n"
"                           status 0), then stops it as without (128+N); a second\n"
"                           signal, or a guest that has not enabled the button,\n"
"                           stops it at once. Default 0: signals stop it at once\n"
"  -v, --verbose            say more (repeat for debug output)\n"
"  -h, --help               show this help\n"
"\n"
"Console: with a terminal on stdin, keys go to the guest in raw mode.\n"
"  Ctrl-A x quits, Ctrl-A p presses the guest's ACPI power button,\n"
"  Ctrl-A Ctrl-A sends Ctrl-A, Ctrl-A h lists the keys.\n"
"\n"
"Exit status:\n"
"  0    the guest powered off (ACPI S5)\n"
"  1    bootvm failed (bad file, host error)\n"
"  2    bad command line\n"
"  3    the guest reset the machine (i8042 or ACPI reset register)\n"
"  4    the guest triple-faulted\n"
"  5    the guest kernel panicked (pvpanic, or a panic message then a reset\n"
"       or a triple fault)\n"
"  6    KVM internal error (registers are printed)\n"
"  7    quit with Ctrl-A x\n"
"  128+N  bootvm got signal N (130 for SIGINT, 143 for SIGTERM); with\n"
"         --shutdown-grace, the guest did not power off in time\n";

enum {
	OPT_CONSOLE = 0x100,
	OPT_NO_HOST_DECOMPRESS,
	OPT_STATS,
	OPT_RNG,
	OPT_BOOT_ENTRY,
	OPT_BOOT_TIMELINE,
	OPT_SHUTDOWN_GRACE,
};

static const struct option run_options[] = {
	{ "kernel", required_argument, NULL, 'k' },
	{ "initrd", required_argument, NULL, 'i' },
	{ "append", required_argument, NULL, 'a' },
	{ "memory", required_argument, NULL, 'm' },
	{ "cpus", required_argument, NULL, 'c' },
	{ "disk", required_argument, NULL, 'd' },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "boot-entry", required_argument, NULL, OPT_BOOT_ENTRY },
	{ "net", required_argument, NULL, 'n' },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "no-host-decompress", no_argument, NULL, OPT_NO_HOST_DECOMPRESS },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "boot-timeline", optional_argument, NULL, OPT_BOOT_TIMELINE },
	{ "shutdown-grace", required_argument, NULL, OPT_SHUTDOWN_GRACE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int parse_memory(const char *arg, uint64_t *out)
{
	char sz[32];

	if (size_parse(arg, out) < 0) {
		log_error("--memory '%s': not a size (try 512M or 2G)", arg);
		return -1;
	}
	if (*out & 0xfff) {
		log_error("--memory '%s': not a multiple of 4 KiB", arg);
		return -1;
	}
	if (*out < VM_MIN_MEM_SIZE) {
		log_error("--memory '%s': at least %s is needed", arg,
			  size_format(VM_MIN_MEM_SIZE, sz, sizeof(sz)));
		return -1;
	}
	return 0;
}

static int parse_cpus(const char *arg, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < 1 || v > VM_MAX_CPUS) {
		log_error("--cpus '%s': not a number from 1 to %d", arg, VM_MAX_CPUS);
		return -1;
	}
	*out = (unsigned int)v;
	return 0;
}

/* Seconds, with up to three decimals: 60, 2.5, 0 (off). */
static int parse_grace(const char *arg, unsigned int *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= 0) || v * 1000 > VM_MAX_SHUTDOWN_GRACE_MS ||
	    (arg[0] < '0' || arg[0] > '9')) {
		log_error("--shutdown-grace '%s': not a number of seconds from 0 to %u", arg,
			  VM_MAX_SHUTDOWN_GRACE_MS / 1000);
		return -1;
	}
	*ms = (unsigned int)(v * 1000 + 0.5);
	return 0;
}

static int parse_console(const char *arg, struct vm_config *cfg)
{
	if (!strcmp(arg, "stdio")) {
		cfg->console = CONSOLE_STDIO;
	} else if (!strcmp(arg, "none")) {
		cfg->console = CONSOLE_NONE;
	} else if (!strncmp(arg, "file:", 5) && arg[5]) {
		cfg->console = CONSOLE_FILE;
		return vm_config_set(cfg, &cfg->console_path, arg + 5);
	} else {
		log_error("--console '%s': expected stdio, none or file:PATH", arg);
		return -1;
	}
	return 0;
}

/*
 * Parse argv into cfg: 0, or CLI_USAGE (logged), or -1 for --help (printed).
 */
static int run_parse(int argc, char **argv, struct vm_config *cfg, struct cli_run_opts *opts)
{
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":k:i:a:m:c:d:n:vh", run_options, NULL)) != -1) {
		switch (opt) {
		case 'k':
			if (vm_config_set(cfg, &cfg->kernel_path, optarg) < 0)
				return CLI_USAGE;
			break;
		case 'i':
			if (vm_config_set(cfg, &cfg->initrd_path, optarg) < 0)
				return CLI_USAGE;
			break;
		case 'a':
			if (vm_config_set(cfg, &cfg->cmdline, optarg) < 0)
				return CLI_USAGE;
			break;
		case 'm':
			if (parse_memory(optarg, &cfg->mem_size) < 0)
				return CLI_USAGE;
			break;
		case 'c':
			if (parse_cpus(optarg, &cfg->nr_cpus) < 0)
				return CLI_USAGE;
			break;
		case 'd':
			if (vm_config_add_disk(cfg, optarg) < 0)
				return CLI_USAGE;
			break;
		case 'n':
			if (vm_config_add_net(cfg, optarg) < 0)
				return CLI_USAGE;
			break;
		case OPT_RNG: cfg->rng = true; break;
		case OPT_BOOT_ENTRY:
			if (vm_config_set(cfg, &cfg->boot_entry, optarg) < 0)
				return CLI_USAGE;
			break;
		case OPT_CONSOLE:
			if (parse_console(optarg, cfg) < 0)
				return CLI_USAGE;
			break;
		case OPT_NO_HOST_DECOMPRESS: cfg->host_decompress = false; break;
		case OPT_STATS: cfg->stats = true; break;
		case OPT_BOOT_TIMELINE:
			if (optarg && !*optarg)
				return log_usage_error(CLI_USAGE, "run",
						       "--boot-timeline=: a file name is needed after '='");
			opts->timeline = optarg ? optarg : "";
			break;
		case OPT_SHUTDOWN_GRACE:
			if (parse_grace(optarg, &cfg->shutdown_grace_ms) < 0)
				return CLI_USAGE;
			break;
		case 'v': opts->verbose++; break;
		case 'h':
			fputs(run_help, stdout);
			return -1;
		default:	/* '?' or ':' */
			return cli_option_error("run", opt, argv, run_options);
		}
	}
	if (optind < argc) {
		log_error("run: unexpected argument '%s' (see bootvm run --help)", argv[optind]);
		return CLI_USAGE;
	}
	return vm_config_validate(cfg) < 0 ? CLI_USAGE : 0;
}

/* --boot-timeline at exit: the table on stderr, or the JSON into tl_fd. */
static int run_timeline_report(const char *path, int tl_fd, int status)
{
	if (tl_fd < 0) {
		timeline_print_table(stderr);
		return status;
	}
	if (timeline_write_json(tl_fd, path) < 0)
		status = status ? status : 1;
	if (close(tl_fd) < 0 && !status) {
		log_error("%s: cannot write the boot timeline: %s", path, strerror(errno));
		status = 1;
	}
	return status;
}

/* A parsed and validated cfg run as `bootvm run` runs it: the exit status. */
static int run_config(struct vm_config *cfg, const struct cli_run_opts *opts)
{
	int ret, fds[2] = { -1, -1 }, tl_fd = -1;

	if (opts->verbose)
		log_set_level(opts->verbose > 1 ? LOG_DEBUG : LOG_INFO);
	/* Opened first: a file that cannot be written fails before the guest runs. */
	if (opts->timeline && *opts->timeline) {
		tl_fd = open(opts->timeline, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (tl_fd < 0) {
			log_error("--boot-timeline '%s': %s", opts->timeline, strerror(errno));
			return 1;
		}
	}
	if (!cfg->kernel_path && cli_disk_kernel(cfg, fds) < 0)
		ret = 1;
	else
		ret = vmm_run(cfg);
	if (opts->timeline)
		ret = run_timeline_report(opts->timeline, tl_fd, ret);
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ret;
}

int cli_parse_and_run(cli_parse_fn *parse, int argc, char **argv)
{
	struct vm_config cfg;
	struct cli_run_opts opts = { 0 };
	int ret;

	vm_config_init(&cfg);
	ret = parse(argc, argv, &cfg, &opts);
	if (!ret)
		ret = run_config(&cfg, &opts);
	else if (ret < 0)
		ret = 0;
	vm_config_free(&cfg);
	return ret;
}

int cli_run(int argc, char **argv)
{
	return cli_parse_and_run(run_parse, argc, argv);
}
