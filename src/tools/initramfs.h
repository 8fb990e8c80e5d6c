/*
 * `bootvm initramfs`: build a cpio newc initramfs from a directory, a static
 * busybox with a generated /init, kernel modules with their dependencies,
 * and extra files.
 *
 * Every function that fails logs one line naming the file or option and the
 * reason, and returns -1.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "tools/cpio.h"

/* One --add SRC:DEST. */
struct initramfs_add {
	const char *src;	/* host file or directory (followed if a symlink) */
	const char *dest;	/* path in the archive; ending in '/': a directory to put SRC in */
};

struct initramfs_options {
	const char *output;		/* required */
	const char *dir;		/* tree to pack, or NULL */
	enum cpio_compress compress;
	bool keep_owner;		/* else every entry is owned by 0:0 */
	const char *busybox;		/* static busybox: /bin/busybox, applet links, /init */
	const char *init_run;		/* with busybox: command /init runs, then powers off */
	const char *modules_from;	/* a /lib/modules/VERSION directory */
	const char *const *modules;	/* module names to include (and load, with busybox) */
	size_t nr_modules;
	const struct initramfs_add *adds;
	size_t nr_adds;
};

/* Build the archive and atomically replace opt->output with it. */
int initramfs_build(const struct initramfs_options *opt);

/* Split "SRC:DEST" at its last ':', in place. -1 (not logged) if either side is empty. */
int initramfs_parse_add(char *arg, struct initramfs_add *out);

/* The modules to copy, dependencies first, as resolved from modules.dep. */
struct initramfs_modules {
	char *dir;		/* the real path of the modules directory */
	char *version;		/* its last component: the kernel release */
	size_t count;
	char **paths;		/* as in modules.dep: relative to dir (or absolute) */
	char **deps_lines;	/* each one's modules.dep line, for the archive's copy */
};

/*
 * Resolve module names ('-' and '_' are the same; a ".ko" suffix is ignored)
 * through moddir/modules.dep, with all their dependencies, each once,
 * dependencies before the modules that need them. Names of modules built
 * into the kernel (modules.builtin) are skipped with a warning.
 */
int initramfs_resolve_modules(const char *moddir, const char *const *names, size_t nr_names,
			      struct initramfs_modules *out);
void initramfs_modules_free(struct initramfs_modules *m);

/*
 * Read a module file, decompressing .ko.xz, .ko.zst and .ko.gz, into a
 * malloc'd buffer. The result must be an ELF file.
 */
int initramfs_read_module(const char *path, unsigned char **data, size_t *size);

/*
 * The text of the generated /init: mount proc, sysfs and devtmpfs, insmod
 * the given archive paths in order, then run init_run with sh -c, print
 * INITRAMFS_STATUS_PREFIX and its exit status, and power off; or, with
 * init_run NULL, start a shell on the console and power off when it exits.
 * Returns a malloc'd string, or NULL when out of memory (logged).
 */
#define INITRAMFS_STATUS_PREFIX "bootvm-init: exit status "
char *initramfs_init_script(const char *init_run, const char *const *insmod_paths, size_t n);

/* The fstab /init mounts from, at INITRAMFS_FSTAB_PATH in the archive. */
#define INITRAMFS_FSTAB_PATH "etc/bootvm.fstab"
extern const char initramfs_fstab[];
