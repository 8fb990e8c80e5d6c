/* Subcommands of the bootvm program. Each returns the process exit status. */
#pragma once

int cli_run(int argc, char **argv);
int cli_initramfs(int argc, char **argv);

/* Exit status for a bad command line (see vmm/exit_status.h). */
#define CLI_USAGE 2
