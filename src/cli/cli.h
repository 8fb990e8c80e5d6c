/* Subcommands of the bootvm program. Each returns the process exit status. */
#pragma once

int cli_run(int argc, char **argv);
/* `bootvm qemu` (also bootvm started as qemu-system-x86_64): QEMU's command line. */
int cli_qemu(int argc, char **argv);
int cli_initramfs(int argc, char **argv);
/* Execs bootvm-mkdisk (see tools/mkdisk.h) with argv. */
int cli_mkdisk(int argc, char **argv);
int cli_disk_info(int argc, char **argv);
/* Firecracker's flags, --config-file and API socket (also as argv[0] "firecracker"). */
int cli_firecracker(int argc, char **argv);

struct vm_config;
/* What a command line says beyond the VM's config. */
struct cli_run_opts {
	int verbose;		/* -v count */
	const char *timeline;	/* NULL: no --boot-timeline; "": the table; else the JSON file */
};
/*
 * A command line parser: argv into cfg (fresh from vm_config_init()) and opts
 * (zeroed); 0, CLI_USAGE (logged), or -1 when it printed --help.
 */
typedef int cli_parse_fn(int argc, char **argv, struct vm_config *cfg, struct cli_run_opts *opts);
/*
 * Parse argv with parse, then run the VM as `bootvm run` does (a kernel from
 * the first disk when cfg has none): the exit status (0 after --help).
 */
int cli_parse_and_run(cli_parse_fn *parse, int argc, char **argv);
/*
 * QEMU's argv (argv[0] the program) into cfg: 0, CLI_USAGE (logged), or -1
 * when --help or -version was printed. opts->verbose counts -v.
 */
int cli_qemu_parse(int argc, char **argv, struct vm_config *cfg, struct cli_run_opts *opts);
/*
 * For `run` without --kernel: find the kernel inside cfg's first disk, put it
 * and its initrd in memfds (fds[0], fds[1], -1 when none; the caller closes
 * them after the VM) named by cfg->kernel_path/initrd_path, and set
 * cfg->cmdline to the disk's command line plus cfg's. -1 logged.
 */
int cli_disk_kernel(struct vm_config *cfg, int fds[2]);

/* Exit status for a bad command line (see vmm/exit_status.h). */
#define CLI_USAGE 2

struct option;

/*
 * After getopt_long() returned '?' or ':' (optstring starting with ':'): log
 * one line naming the option it refused, "CMD: unknown option '-x' (see
 * bootvm CMD --help)", and return CLI_USAGE.
 */
int cli_option_error(const char *cmd, int c, char **argv, const struct option *longopts);
