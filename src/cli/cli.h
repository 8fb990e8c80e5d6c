/* Subcommands of the bootvm program. Each returns the process exit status. */
#pragma once

int cli_run(int argc, char **argv);
int cli_initramfs(int argc, char **argv);
/* Execs bootvm-mkdisk (see tools/mkdisk.h) with argv. */
int cli_mkdisk(int argc, char **argv);

/* Exit status for a bad command line (see vmm/exit_status.h). */
#define CLI_USAGE 2

struct option;

/*
 * After getopt_long() returned '?' or ':' (optstring starting with ':'): log
 * one line naming the option it refused, "CMD: unknown option '-x' (see
 * bootvm CMD --help)", and return CLI_USAGE.
 */
int cli_option_error(const char *cmd, int c, char **argv, const struct option *longopts);
