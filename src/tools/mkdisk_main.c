/* bootvm-mkdisk: the program `bootvm mkdisk` execs (libarchive is linked here, not in bootvm). */
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/mkdisk.h"
#include "util/log.h"
#include "util/size.h"

#define MKDISK_USAGE 2

#define STR_(x) #x
#define STR(x) STR_(x)

static const char mkdisk_help[] =
"Usage: bootvm mkdisk -o IMAGE [OPTIONS] [SOURCE...]\n"
"\n"
"Write an ext4 filesystem image of the SOURCEs without mounting anything or\n"
"being root: each SOURCE is a tar archive (or cpio, zip, ... in any\n"
"compression libarchive reads: .tar, .tar.gz, .tar.xz, .tar.zst, ...) or a\n"
"directory, laid over the previous ones in order (a later entry replaces an\n"
"earlier one, as with tar). Owners, modes, setuid bits, devices, FIFOs,\n"
"symlinks, hard links, holes of sparse files, times and extended attributes\n"
"(security.capability, user.*) are stored exactly as the archive has them;\n"
"a directory SOURCE keeps its files' owners. Whole zero blocks become holes.\n"
"Paths are resolved inside the image without following symlinks: an entry\n"
"through a symlink, or with a '..' component, is an error; a leading '/' is\n"
"dropped.\n"
"\n"
"Options:\n"
"  -o, --output IMAGE       the image to write (required); made beside it under\n"
"                           a temporary name and renamed only once complete\n"
"      --size SIZE|auto     the image's size: 512M, 4G, ... (a bare number is\n"
"                           MiB), or auto (default): the content (data blocks,\n"
"                           directories, inode tables) plus " STR(MKDISK_AUTO_PERCENT) "% plus 64 MiB, and the\n"
"                           journal; inodes: the entries plus " STR(MKDISK_AUTO_PERCENT) "% plus 1024.\n"
"                           The image is a sparse file either way. auto reads\n"
"                           the sources twice: a pipe (/dev/stdin) needs --size\n"
"      --label LABEL        the filesystem label (at most 16 bytes)\n"
"      --add SRC:DEST       also put host file or directory SRC at DEST\n"
"                           (directories recursively; SRC followed if a\n"
"                           symlink), owned by root; DEST ending in '/' is the\n"
"                           directory to put SRC in. Repeatable; after the\n"
"                           SOURCEs, so it wins over them\n"
"      --ssh-key FILE[:USER]  append public key FILE to USER's (default root)\n"
"                           ~/.ssh/authorized_keys, with USER's uid, gid and\n"
"                           home from the image's /etc/passwd (root without\n"
"                           one: 0, 0, /root); ~/.ssh mode 0700, the file 0600.\n"
"                           Repeatable\n"
"      --hostname NAME      write NAME to /etc/hostname\n"
"      --progress, --no-progress  a progress bar on stderr (default: when it\n"
"                           is a terminal and the archives exceed 64 MiB)\n"
"  -v, --verbose            say more\n"
"  -h, --help               show this help\n"
"\n"
"Needs mke2fs (e2fsprogs) to make the empty filesystem; everything else is\n"
"written through libext2fs. Generated files (/etc/hostname, the keys, missing\n"
"parent directories) get mtime $SOURCE_DATE_EPOCH, else the current time.\n"
"\n"
"Exit status: 0 written, 1 failed (nothing written), 2 bad command line.\n";

enum {
	OPT_SIZE = 0x100,
	OPT_LABEL,
	OPT_ADD,
	OPT_SSH_KEY,
	OPT_HOSTNAME,
	OPT_PROGRESS,
	OPT_NO_PROGRESS,
};

static const struct option mkdisk_options_long[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "label", required_argument, NULL, OPT_LABEL },
	{ "add", required_argument, NULL, OPT_ADD },
	{ "ssh-key", required_argument, NULL, OPT_SSH_KEY },
	{ "hostname", required_argument, NULL, OPT_HOSTNAME },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* One line naming the problem; returns the usage status. */
#define usage_error(...) log_usage_error(MKDISK_USAGE, "mkdisk", __VA_ARGS__)

static bool hostname_valid(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 64 || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

/* FILE[:USER]: the user after the last ':' unless the whole argument is an existing file. */
static void key_parse(char *arg, struct mkdisk_key *k)
{
	char *colon = strrchr(arg, ':');

	k->file = arg;
	k->user = NULL;
	if (colon && colon[1] && access(arg, F_OK) < 0) {
		*colon = 0;
		k->user = colon + 1;
	}
}

static int run(int argc, char **argv)
{
	struct mkdisk_options opt = { .progress = -1 };
	/* Each option adds at most one entry: argc bounds the lists. */
	struct mkdisk_add *adds = calloc((size_t)argc + 1, sizeof(*adds));
	struct mkdisk_key *keys = calloc((size_t)argc + 1, sizeof(*keys));
	int verbose = 0, c, ret = MKDISK_USAGE;

	if (!adds || !keys) {
		log_error("mkdisk: out of memory");
		ret = 1;
		goto out;
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:vh", mkdisk_options_long, NULL)) != -1) {
		switch (c) {
		case 'o': opt.output = optarg; break;
		case OPT_SIZE:
			if (!strcmp(optarg, "auto")) {
				opt.size = 0;
			} else if (size_parse(optarg, &opt.size) < 0 || opt.size < (1u << 20)) {
				ret = usage_error("--size '%s': expected a size of at least 1M (512M, 4G) "
						  "or auto", optarg);
				goto out;
			}
			opt.size = (opt.size + 4095) & ~4095ull;
			break;
		case OPT_LABEL:
			if (strlen(optarg) > 16) {
				ret = usage_error("--label '%s': at most 16 bytes", optarg);
				goto out;
			}
			opt.label = optarg;
			break;
		case OPT_ADD: {
			char *colon = strchr(optarg, ':');

			if (!colon || colon == optarg || !colon[1]) {
				ret = usage_error("--add '%s': expected SRC:DEST", optarg);
				goto out;
			}
			*colon = 0;
			adds[opt.n_adds].src = optarg;
			adds[opt.n_adds++].dest = colon + 1;
			break;
		}
		case OPT_SSH_KEY:
			key_parse(optarg, &keys[opt.n_keys++]);
			break;
		case OPT_HOSTNAME:
			if (!hostname_valid(optarg)) {
				ret = usage_error("--hostname '%s': expected 1 to 64 letters, digits, '-' "
						  "and '.'", optarg);
				goto out;
			}
			opt.hostname = optarg;
			break;
		case OPT_PROGRESS: opt.progress = 1; break;
		case OPT_NO_PROGRESS: opt.progress = 0; break;
		case 'v': verbose++; break;
		case 'h':
			fputs(mkdisk_help, stdout);
			ret = fflush(stdout) ? 1 : 0;
			goto out;
		case ':':
			ret = usage_error("option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			ret = usage_error("unknown option '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (!opt.output) {
		ret = usage_error("--output is required");
		goto out;
	}
	for (size_t i = 0; i < opt.n_keys; i++) {
		const char *u = keys[i].user;

		for (; u && *u; u++)
			if (*u == '/' || *u == '\n') {
				ret = usage_error("--ssh-key: bad user name '%s'", keys[i].user);
				goto out;
			}
	}
	if (verbose)
		log_set_level(verbose > 1 ? LOG_DEBUG : LOG_INFO);
	opt.sources = (const char *const *)argv + optind;
	opt.n_sources = (size_t)(argc - optind);
	opt.adds = adds;
	opt.keys = keys;
	ret = mkdisk_build(&opt) < 0 ? 1 : 0;
out:
	free(adds);
	free(keys);
	return ret;
}

int main(int argc, char **argv)
{
	/*
	 * Names are bytes in ext4, UTF-8 by convention: libarchive converts pax
	 * archives' UTF-8 names to the locale's charset, so make that UTF-8.
	 */
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		setlocale(LC_CTYPE, "");
	return run(argc, argv);
}
