/*
 * `bootvm mkdisk`: exec bootvm-mkdisk, which links libarchive (bootvm, a
 * static PIE, does not). It is $BOOTVM_MKDISK if set, else bootvm-mkdisk in
 * the directory of our own executable.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/log.h"

#define MKDISK_HELPER "bootvm-mkdisk"

static int mkdisk_find(char *path, size_t size)
{
	const char *env = getenv("BOOTVM_MKDISK");
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env && *env) {
		if ((size_t)snprintf(path, size, "%s", env) >= size) {
			log_error("mkdisk: BOOTVM_MKDISK is too long");
			return -1;
		}
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0) {
		log_error("mkdisk: cannot find " MKDISK_HELPER ": BOOTVM_MKDISK is not set and "
			  "/proc/self/exe is unreadable: %s", strerror(errno));
		return -1;
	}
	self[n] = 0;
	slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	if ((size_t)snprintf(path, size, "%s/" MKDISK_HELPER, self) >= size) {
		log_error("mkdisk: the path of " MKDISK_HELPER " is too long");
		return -1;
	}
	return 0;
}

int cli_mkdisk(int argc, char **argv)
{
	char path[PATH_MAX];

	(void)argc;
	if (mkdisk_find(path, sizeof(path)) < 0)
		return 1;
	fflush(NULL);
	argv[0] = path;
	execv(path, argv);
	log_error("mkdisk: cannot run %s: %s (it comes with bootvm; BOOTVM_MKDISK names another)",
		  path, strerror(errno));
	return 1;
}
