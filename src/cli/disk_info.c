/*
 * `bootvm disk-info IMAGE`: a disk image's partitions and boot entries and
 * what `bootvm run --disk IMAGE` would boot; and cli_disk_kernel(), which
 * does that for `run`.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tools/diskboot.h"
#include "tools/diskimg.h"
#include "util/log.h"
#include "util/size.h"
#include "vmm/config.h"

static const char disk_info_help[] =
"Usage: bootvm disk-info IMAGE [--boot-entry N|TITLE] [--append TEXT]\n"
"\n"
"Show a disk image's partition table (none, MBR or GPT), each partition's\n"
"file system (ext2/3/4, FAT) with its UUID and label, every boot entry found\n"
"on it, and the kernel, initrd and command line `bootvm run --disk IMAGE`\n"
"would boot. Entries are looked for in this order, on every partition:\n"
"  bls     /loader/entries/*.conf (also under /boot), default from\n"
"          /loader/loader.conf, else the newest as systemd-boot sorts them\n"
"  uki     EFI/Linux/*.efi unified kernel images (.linux, .initrd, .cmdline)\n"
"  grub    /boot/grub/grub.cfg or /grub/grub.cfg: its menu entries and default\n"
"  debian  /vmlinuz and /initrd.img, /boot/vmlinuz and /boot/initrd.img,\n"
"          /boot/vmlinuz-VERSION with initrd.img-VERSION, newest first\n"
"The first kind found gives the default; `*` marks it.\n"
"\n"
"Options:\n"
"      --boot-entry N|TITLE show what entry N, or the one with this title or id,\n"
"                           would boot instead of the default\n"
"  -a, --append TEXT        as run's --append: added to the command line\n"
"  -v, --verbose            say more\n"
"  -h, --help               show this help\n";

enum { OPT_BOOT_ENTRY = 0x100 };

static const struct option disk_info_options[] = {
	{ "boot-entry", required_argument, NULL, OPT_BOOT_ENTRY },
	{ "append", required_argument, NULL, 'a' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const char *table_name(enum diskimg_table t)
{
	return t == DISKIMG_GPT ? "GPT" : t == DISKIMG_MBR ? "MBR" : "none (a file system on the whole disk)";
}

static const char *file_where(const struct diskimg *d, const struct diskboot_file *f,
			      char *buf, size_t len)
{
	if (f->part < 0)
		snprintf(buf, len, "(%s)%s", f->dev ? f->dev : "?", f->path ? f->path : "?");
	else if (d->table == DISKIMG_NONE)
		snprintf(buf, len, "%s", f->path);
	else
		snprintf(buf, len, "%u:%s", d->parts[f->part].index, f->path);
	return buf;
}

static void print_entry(const struct diskimg *d, const struct diskboot *db, unsigned int i)
{
	const struct diskboot_entry *e = &db->entries[i];
	char buf[512];

	printf("  %2u%c %-6s %s\n", i, (int)i == db->def ? '*' : ' ',
	       diskboot_source_name(e->source), e->title ? e->title : "");
	printf("        from     %s\n", e->where ? e->where : "?");
	if (e->id && strcmp(e->id, e->title ? e->title : ""))
		printf("        id       %s\n", e->id);
	if (e->version)
		printf("        version  %s\n", e->version);
	if (e->kernel.path)
		printf("        %-8s %s\n", e->source == DISKBOOT_UKI ? "image" : "kernel",
		       file_where(d, &e->kernel, buf, sizeof(buf)));
	for (unsigned int k = 0; k < e->nr_initrds; k++)
		printf("        initrd   %s\n", file_where(d, &e->initrds[k], buf, sizeof(buf)));
	if (e->options && *e->options)
		printf("        options  %s\n", e->options);
	else if (e->root_from_fs)
		printf("        options  (none: root= is the partition with /etc/fstab)\n");
	if (e->error)
		printf("        error    %s\n", e->error);
}

static int disk_info(const char *path, const char *sel, const char *append)
{
	struct diskimg *d = diskimg_open(path);
	struct diskboot db;
	char sz[32];
	int ret = 1;

	if (!d)
		return 1;
	if (diskboot_scan(d, &db) < 0)
		goto out_close;
	printf("%s: %s, partition table: %s\n", path, size_format(d->size, sz, sizeof(sz)),
	       table_name(d->table));
	printf("  %-3s %-12s %-10s %-12s %-6s %-36s %-16s %s\n", "#", "offset", "size", "type",
	       "fs", "uuid", "label", "partuuid");
	for (unsigned int p = 0; p < d->nr_parts; p++) {
		const struct diskimg_part *pt = &d->parts[p];
		const struct diskboot_part *dp = &db.parts[p];
		char type[40];

		if (d->table == DISKIMG_GPT)
			snprintf(type, sizeof(type), "%s%s", pt->esp ? "ESP" : "data",
				 pt->bootable ? ",boot" : "");
		else if (d->table == DISKIMG_MBR)
			snprintf(type, sizeof(type), "0x%02x%s", pt->mbr_type, pt->bootable ? ",boot" : "");
		else
			snprintf(type, sizeof(type), "-");
		printf("  %-3u %-12llu %-10s %-12s %-6s %-36s %-16s %s\n", pt->index,
		       (unsigned long long)pt->offset, size_format(pt->size, sz, sizeof(sz)), type,
		       dp->has_fs ? dp->fstype : "-", dp->has_fs && *dp->uuid ? dp->uuid : "-",
		       dp->has_fs && *dp->label ? dp->label : "-", *pt->partuuid ? pt->partuuid : "-");
	}
	printf("\nBoot entries:%s\n", db.nr_entries ? "" : " none");
	for (unsigned int i = 0; i < db.nr_entries; i++)
		print_entry(d, &db, i);
	printf("\n");
	int idx = diskboot_select(&db, sel);
	if (idx < 0) {
		printf("Would boot: nothing\n");
		goto out_free;
	}
	char *cmdline = diskboot_cmdline(d, &db, &db.entries[idx], append);
	if (!cmdline)
		goto out_free;
	printf("Would boot: entry %d, %s\n  command line: %s\n", idx, db.entries[idx].title, cmdline);
	free(cmdline);
	ret = 0;
out_free:
	diskboot_free(&db);
out_close:
	diskimg_close(d);
	return ret;
}

int cli_disk_info(int argc, char **argv)
{
	const char *sel = NULL, *append = NULL;
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":a:vh", disk_info_options, NULL)) != -1) {
		switch (opt) {
		case OPT_BOOT_ENTRY: sel = optarg; break;
		case 'a': append = optarg; break;
		case 'v':
			log_set_level(log_get_level() == LOG_INFO ? LOG_DEBUG : LOG_INFO);
			break;
		case 'h':
			fputs(disk_info_help, stdout);
			return 0;
		default:
			return cli_option_error("disk-info", opt, argv, disk_info_options);
		}
	}
	if (optind != argc - 1) {
		log_error("disk-info: expected one IMAGE (see bootvm disk-info --help)");
		return CLI_USAGE;
	}
	return disk_info(argv[optind], sel, append);
}

/* A memfd holding data; its /proc/self/fd path into *field. */
static int memfd_from(struct vm_config *cfg, const char **field, const char *name,
		      const uint8_t *data, size_t len, int *fd)
{
	char path[64];

	*fd = memfd_create(name, MFD_CLOEXEC);
	if (*fd < 0) {
		log_error("memfd_create for the %s: %m", name);
		return -1;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(*fd, data + off, len - off);

		if (n <= 0) {
			log_error("writing the %s to a memfd: %m", name);
			return -1;
		}
		off += (size_t)n;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", *fd);
	return vm_config_set(cfg, field, path);
}

int cli_disk_kernel(struct vm_config *cfg, int fds[2])
{
	const char *path = cfg->disks[0].path;
	struct diskboot_image img;
	struct diskimg *d;
	struct diskboot db;
	char *cmdline = NULL;
	int idx, ret = -1;

	d = diskimg_open(path);
	if (!d)
		return -1;
	if (diskboot_scan(d, &db) < 0)
		goto out_close;
	idx = diskboot_select(&db, cfg->boot_entry);
	if (idx < 0)
		goto out_free;
	const struct diskboot_entry *e = &db.entries[idx];
	cmdline = diskboot_cmdline(d, &db, e, cfg->cmdline);
	if (!cmdline || diskboot_load(d, e, &img) < 0)
		goto out_free;
	log_info("%s: booting entry %d '%s' (%s, %s)", path, idx, e->title,
		 diskboot_source_name(e->source), e->where);
	log_info("command line: %s", cmdline);
	if (memfd_from(cfg, &cfg->kernel_path, "kernel", img.kernel, img.kernel_size, &fds[0]) < 0 ||
	    (img.initrd && memfd_from(cfg, &cfg->initrd_path, "initrd", img.initrd,
				      img.initrd_size, &fds[1]) < 0) ||
	    vm_config_set(cfg, &cfg->cmdline, cmdline) < 0)
		goto out_img;
	ret = 0;
out_img:
	diskboot_image_free(&img);
out_free:
	free(cmdline);
	diskboot_free(&db);
out_close:
	diskimg_close(d);
	return ret;
}
