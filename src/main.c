/* bootvm: boot a Linux kernel straight into a KVM microVM. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/log.h"

#ifndef BOOTVM_VERSION
#define BOOTVM_VERSION "unknown"
#endif

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "run", cli_run, "boot a kernel (bzImage or ELF vmlinux) in a microVM" },
	{ "initramfs", cli_initramfs, "build an initramfs (cpio) from a directory" },
	{ "mkdisk", cli_mkdisk, "build an ext4 disk image from tar archives or directories" },
	{ "disk-info", cli_disk_info, "show a disk image's partitions and the kernel it boots" },
	{ "qemu", cli_qemu, "run a QEMU command line (also as qemu-system-x86_64)" },
	{ "firecracker", cli_firecracker, "Firecracker's flags, config file and API socket" },
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: bootvm COMMAND [OPTIONS]\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-11s  %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\n"
		"`bootvm COMMAND --help` describes each command; bootvm(1) has the rest.\n"
		"Example: bootvm run --kernel vmlinux --initrd initrd.cpio.gz --append console=ttyS0\n");
}

/*
 * Started with stdin, stdout or stderr closed, the first file bootvm opens
 * would take its number: the signalfd would become stdin (read as guest
 * input, so the signals would never stop the VM), an output file stdout or
 * stderr. /dev/null takes their place.
 */
static int std_fds_open(void)
{
	for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int nfd = open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY);
		if (nfd != fd) {
			log_error("cannot open /dev/null for the closed fd %d: %s", fd,
				  nfd < 0 ? strerror(errno) : "got another fd");
			if (nfd >= 0)
				close(nfd);
			return -1;
		}
	}
	return 0;
}

/* What went to stdout through stdio (help, version) must have arrived. */
static int stdout_done(int status)
{
	int err = fflush(stdout) ? errno : ferror(stdout) ? EIO : 0;

	if (!err)
		return status;
	log_error("cannot write to standard output: %s", strerror(err));
	return status ? status : 1;
}

static int run_command(int argc, char **argv)
{
	/* Installed (or symlinked) as QEMU or Firecracker, bootvm takes their command lines. */
	const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;

	base = base ? base + 1 : argc > 0 ? argv[0] : "";
	if (!strcmp(base, "qemu-system-x86_64"))
		return cli_qemu(argc, argv);
	if (!strcmp(base, "firecracker"))
		return cli_firecracker(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("bootvm %s\n", BOOTVM_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);

	log_error("unknown command '%s' (try bootvm --help)", argv[1]);
	return CLI_USAGE;
}

int main(int argc, char **argv)
{
	/* Room for the longest --help, so a write error surfaces in stdout_done() with its errno. */
	static char stdout_buf[16384];

	if (std_fds_open() < 0)
		return 1;
	setvbuf(stdout, stdout_buf, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, sizeof(stdout_buf));
	return stdout_done(run_command(argc, argv));
}
