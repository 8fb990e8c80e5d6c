/* `bootvm initramfs`: parse the command line and build the archive. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tools/initramfs.h"
#include "util/log.h"

static const char initramfs_help[] =
"Usage: bootvm initramfs -o FILE [OPTIONS] [DIR]\n"
"\n"
"Write a cpio (newc) initramfs of DIR's contents, compressed with gzip unless\n"
"told otherwise. Entries are sorted, so the same input gives the same bytes;\n"
"generated entries get the mtime $SOURCE_DATE_EPOCH (default 0).\n"
"\n"
"Options:\n"
"  -o, --output FILE        the archive to write (required); replaced only\n"
"                           once complete\n"
"      --compress METHOD    gzip (default), zstd, lz4 (legacy frame, as\n"
"                           `lz4 -l`) or none. Where the guest kernel is\n"
"                           emulated, so is unpacking: none boots fastest\n"
"      --keep-owner         keep files' owners and groups (default: root:root)\n"
"      --add SRC:DEST       also pack host file or directory SRC at DEST in the\n"
"                           archive (directories recursively; SRC itself is\n"
"                           followed if a symlink). DEST ending in '/' is the\n"
"                           directory to put SRC in. Repeatable; applied last,\n"
"                           so it wins over everything else\n"
"      --busybox PATH       pack a static x86-64 busybox as /bin/busybox with\n"
"                           its applet links (from `PATH --list-full`; the\n"
"                           tree's own files win over links), /dev/console,\n"
"                           /proc, /sys, /dev, and a generated /init, which\n"
"                           replaces DIR's /init (without --busybox DIR's\n"
"                           /init is kept)\n"
"      --init-run CMD       with --busybox: /init runs CMD with sh -c, prints\n"
"                           '" INITRAMFS_STATUS_PREFIX "N' on the console and\n"
"                           powers off; without it /init starts a shell on the\n"
"                           console and powers off when the shell exits\n"
"      --modules-from DIR   a /lib/modules/VERSION directory with modules.dep\n"
"      --module NAME        pack module NAME (- and _ alike) and everything it\n"
"                           depends on, from --modules-from, as plain .ko files\n"
"                           (.ko.xz/.zst/.gz are decompressed here) under\n"
"                           /lib/modules/VERSION with a matching modules.dep;\n"
"                           with --busybox /init insmods them, dependencies\n"
"                           first. Repeatable\n"
"  -v, --verbose            say more\n"
"  -h, --help               show this help\n"
"\n"
"Generated /init: mounts proc, sysfs and devtmpfs, loads the modules, then\n"
"runs --init-run's command or a shell, and runs poweroff -f.\n"
"\n"
"Exit status: 0 written, 1 failed (nothing written), 2 bad command line.\n";

enum {
	OPT_COMPRESS = 0x100,
	OPT_KEEP_OWNER,
	OPT_ADD,
	OPT_BUSYBOX,
	OPT_INIT_RUN,
	OPT_MODULES_FROM,
	OPT_MODULE,
};

static const struct option initramfs_options_long[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "compress", required_argument, NULL, OPT_COMPRESS },
	{ "keep-owner", no_argument, NULL, OPT_KEEP_OWNER },
	{ "add", required_argument, NULL, OPT_ADD },
	{ "busybox", required_argument, NULL, OPT_BUSYBOX },
	{ "init-run", required_argument, NULL, OPT_INIT_RUN },
	{ "modules-from", required_argument, NULL, OPT_MODULES_FROM },
	{ "module", required_argument, NULL, OPT_MODULE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* One line naming the problem; returns the usage status. */
#define usage_error(...) log_usage_error(CLI_USAGE, "initramfs", __VA_ARGS__)

int cli_initramfs(int argc, char **argv)
{
	struct initramfs_options opt = { .compress = CPIO_COMPRESS_GZIP };
	/* Each option adds at most one entry: argc bounds both lists. */
	struct initramfs_add *adds = calloc((size_t)argc + 1, sizeof(*adds));
	const char **modules = calloc((size_t)argc + 1, sizeof(*modules));
	int verbose = 0, opt_c, ret = CLI_USAGE;

	if (!adds || !modules) {
		log_error("initramfs: out of memory");
		ret = 1;
		goto out;
	}
	opterr = 0;
	optind = 1;
	while ((opt_c = getopt_long(argc, argv, ":o:vh", initramfs_options_long, NULL)) != -1) {
		switch (opt_c) {
		case 'o': opt.output = optarg; break;
		case OPT_COMPRESS:
			if (cpio_compress_parse(optarg, &opt.compress) < 0) {
				ret = usage_error("--compress '%s': expected gzip, zstd, lz4 or none",
						  optarg);
				goto out;
			}
			break;
		case OPT_KEEP_OWNER: opt.keep_owner = true; break;
		case OPT_ADD: {
			char *arg = optarg;
			if (initramfs_parse_add(arg, &adds[opt.nr_adds]) < 0) {
				ret = usage_error("--add '%s': expected SRC:DEST", arg);
				goto out;
			}
			opt.nr_adds++;
			break;
		}
		case OPT_BUSYBOX: opt.busybox = optarg; break;
		case OPT_INIT_RUN: opt.init_run = optarg; break;
		case OPT_MODULES_FROM: opt.modules_from = optarg; break;
		case OPT_MODULE: modules[opt.nr_modules++] = optarg; break;
		case 'v': verbose++; break;
		case 'h':
			fputs(initramfs_help, stdout);
			ret = 0;
			goto out;
		default:	/* '?' or ':' */
			ret = cli_option_error("initramfs", opt_c, argv, initramfs_options_long);
			goto out;
		}
	}
	if (optind < argc)
		opt.dir = argv[optind++];
	if (optind < argc) {
		ret = usage_error("unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (!opt.output) {
		ret = usage_error("--output is required");
		goto out;
	}
	if (opt.init_run && !opt.busybox) {
		ret = usage_error("--init-run needs --busybox");
		goto out;
	}
	if (opt.nr_modules && !opt.modules_from) {
		ret = usage_error("--module needs --modules-from");
		goto out;
	}
	if (opt.modules_from && !opt.nr_modules) {
		ret = usage_error("--modules-from needs at least one --module");
		goto out;
	}
	if (!opt.dir && !opt.busybox && !opt.nr_adds && !opt.nr_modules) {
		ret = usage_error("nothing to pack: give DIR, --busybox, --add or --module");
		goto out;
	}
	if (verbose)
		log_set_level(verbose > 1 ? LOG_DEBUG : LOG_INFO);

	opt.adds = adds;
	opt.modules = modules;
	ret = initramfs_build(&opt) < 0 ? 1 : 0;
out:
	free(adds);
	free(modules);
	return ret;
}
