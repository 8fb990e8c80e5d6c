/*
 * Finding the kernel that lives inside a disk image, as the guest's own boot
 * loader would, without running any of it: Boot Loader Specification entries,
 * Unified Kernel Images, GRUB's grub.cfg and the Debian/Ubuntu /vmlinuz
 * conventions. The result is the kernel and initrd bytes and a command line
 * whose root= names /dev/vdaN. Everything read from the image is hostile
 * input: sizes are capped, loops bounded, and what cannot be understood
 * becomes an entry's error (shown by disk-info, fatal only if it would boot).
 *
 * The parsers (bls_parse, grub_parse, uki_parse, diskboot_vercmp,
 * diskboot_cmdline) work on strings and buffers so that they can be tested
 * without images; diskboot_scan() and diskboot_load() read the image.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/diskimg.h"

enum diskboot_source {
	DISKBOOT_BLS,		/* /loader/entries/NAME.conf */
	DISKBOOT_UKI,		/* EFI/Linux/NAME.efi */
	DISKBOOT_GRUB,		/* grub.cfg */
	DISKBOOT_DEBIAN,	/* /vmlinuz, /boot/vmlinuz-VERSION */
};

#define DISKBOOT_MAX_INITRDS 16
#define DISKBOOT_MAX_ENTRIES 512
#define DISKBOOT_GRUB_CFG_MAX (1u << 20)
#define DISKBOOT_KERNEL_MAX (256u << 20)
#define DISKBOOT_INITRD_MAX (1u << 30)		/* all initrds together */

/* A file named by an entry: on partition part (an index into diskimg.parts[]). */
struct diskboot_file {
	int part;		/* -1: not resolved (dev says where) */
	char *dev;		/* GRUB device ("hd0,msdos1"), NULL when part is set */
	char *path;		/* absolute, normalised within the file system */
};

struct diskboot_entry {
	enum diskboot_source source;
	char *title;
	char *id;		/* BLS/UKI: the file name; GRUB: --id or title path */
	char *version;
	char *sort_key;
	char *machine_id;
	char *where;		/* the configuration file, for messages ("part 1:/loader/entries/a.conf") */
	struct diskboot_file kernel;	/* UKI: the .efi file */
	struct diskboot_file initrds[DISKBOOT_MAX_INITRDS];
	unsigned int nr_initrds;
	char *options;		/* the entry's own command line ("" when none) */
	bool root_from_fs;	/* no configuration: root= is the partition with /etc/fstab */
	char *error;		/* why this entry cannot boot, or NULL */
};

struct diskboot_part {
	bool has_fs;
	char fstype[8];
	char uuid[40];
	char label[64];
	bool has_fstab;		/* /etc/fstab exists: a root file system */
};

struct diskboot {
	struct diskboot_entry *entries;
	unsigned int nr_entries;
	int def;		/* index of the entry that boots by default, -1 when none */
	struct diskboot_part parts[DISKIMG_MAX_PARTS];	/* parallel to diskimg.parts[] */
};

const char *diskboot_source_name(enum diskboot_source s);

/* Every entry on every partition, and the default. -1 only when out of memory (logged). */
int diskboot_scan(struct diskimg *d, struct diskboot *db);
void diskboot_free(struct diskboot *db);

/*
 * The entry selected by sel: NULL for the default, a number (as disk-info
 * lists them, from 0), or a title or id. -1 with one line logged.
 */
int diskboot_select(const struct diskboot *db, const char *sel);

/*
 * The command line entry e boots with: its options, root= rewritten to
 * /dev/vdaN (UUID=, LABEL=, PARTUUID=, /dev/sdaN), console=ttyS0 unless a
 * console= is given, then append. NULL with one line logged.
 */
char *diskboot_cmdline(const struct diskimg *d, const struct diskboot *db,
		       const struct diskboot_entry *e, const char *append);

/* The kernel and initrd (the initrds concatenated, each padded to 4 bytes) entry e names. */
struct diskboot_image {
	uint8_t *kernel;
	size_t kernel_size;
	uint8_t *initrd;	/* NULL when none */
	size_t initrd_size;
};

int diskboot_load(struct diskimg *d, const struct diskboot_entry *e, struct diskboot_image *img);
void diskboot_image_free(struct diskboot_image *img);

/* ---- the parsers, on strings and buffers ---- */

/* systemd's strverscmp_improved(): <0, 0, >0. */
int diskboot_vercmp(const char *a, const char *b);

/* Normalise path within a file system ("." and ".." resolved, clamped at "/"). NULL if out of memory. */
char *diskboot_path_norm(const char *path);

/*
 * One BLS entry file (id: its file name) into e (part: where its paths live).
 * 0, or -1 out of memory (logged). A malformed entry is e->error.
 */
int bls_parse(const char *text, size_t len, const char *id, int part, struct diskboot_entry *e);
/* Sort BLS (or UKI) entries as systemd-boot does and return the default's index (pattern: loader.conf). */
int bls_sort(struct diskboot_entry *e, unsigned int n, const char *pattern);

/* The .linux, .initrd, .cmdline and .osrel sections of a UKI: pointers into buf. */
struct uki_sections {
	const uint8_t *linux_data;
	size_t linux_size;
	const uint8_t *initrd_data;	/* NULL when none */
	size_t initrd_size;
	const char *cmdline;		/* not NUL-terminated */
	size_t cmdline_size;
	const char *osrel;
	size_t osrel_size;
};
/* -1 with *why a static reason when buf is not a valid UKI. Logs nothing. */
int uki_parse(const uint8_t *buf, size_t len, struct uki_sections *s, const char **why);

/* What grub_parse() needs from the disk. */
struct grub_host {
	/* search --fs-uuid/--label/--file KEY: the GRUB device name of the first match into dev. */
	int (*search)(void *arg, const char *kind, const char *key, char *dev, size_t devlen);
	/* configfile/source: the file's text (malloc'ed), or -1 (then *why). */
	int (*read)(void *arg, const char *dev, const char *path, char **text, size_t *len);
	void *arg;
	const char *root;	/* the device grub.cfg was found on ("hd0,msdos1") */
	const char *prefix;	/* "/boot/grub" on it */
	const char *where;	/* for messages */
};

/*
 * grub.cfg's menu entries appended to *entries (*nr of them; files carry dev,
 * not part), *def the default among them (index from the first appended).
 * 0, or -1 when out of memory (logged). A grub.cfg that cannot be read
 * becomes one entry with an error.
 */
int grub_parse(const char *text, size_t len, const struct grub_host *host,
	       struct diskboot_entry **entries, unsigned int *nr, int *def);

/* "hd0,msdos1", "(hd0,gpt2)", "hd0,1", "hd0": the partition number (0: whole disk), -1 if not the first disk or malformed. */
int grub_dev_partnum(const char *dev);

void diskboot_entry_clear(struct diskboot_entry *e);
