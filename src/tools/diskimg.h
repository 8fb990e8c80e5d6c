/*
 * Reading a guest's disk image on the host, without mounting it: the
 * partition table (none, MBR, GPT) and the file systems on it (ext2/3/4
 * through libext2fs, FAT12/16/32 read here), for booting the kernel that
 * lives inside a disk. Everything in an image is hostile input: sizes,
 * offsets, cluster chains, extents and directory entries are checked, loops
 * are bounded, and a malformed image gives one line saying what and where,
 * never a crash or a hang.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum diskimg_table {
	DISKIMG_NONE,		/* a file system on the whole disk */
	DISKIMG_MBR,
	DISKIMG_GPT,
};

#define DISKIMG_MAX_PARTS 128

struct diskimg_part {
	unsigned int index;	/* N as in /dev/vdaN; 0 for the whole disk */
	uint64_t offset;	/* bytes from the start of the image */
	uint64_t size;		/* bytes */
	bool bootable;		/* MBR boot flag, or GPT legacy BIOS bootable */
	bool esp;		/* EFI system partition (GPT type or MBR type 0xef) */
	uint8_t mbr_type;	/* MBR partition type, 0 for GPT */
	char partuuid[37];	/* GPT: the partition GUID; MBR: "SSSSSSSS-NN" as Linux prints it */
	char name[109];		/* GPT partition name (36 UTF-16 units as UTF-8), "" otherwise */
};

struct diskimg {
	int fd;
	char *path;
	uint64_t size;
	enum diskimg_table table;
	unsigned int nr_parts;
	struct diskimg_part parts[DISKIMG_MAX_PARTS];	/* in table order; [0] is the whole disk when table == NONE */
};

/* Open read-only and read the partition table. NULL with one line logged. */
struct diskimg *diskimg_open(const char *path);
void diskimg_close(struct diskimg *d);

enum fs_type {
	FS_EXT,			/* ext2, ext3, ext4 */
	FS_FAT,			/* FAT12, FAT16, FAT32 (with long names) */
};

struct fs;

/* The file system on part, or NULL (one line logged: "no ext2/3/4 or FAT file system"). */
struct fs *fs_open(struct diskimg *d, const struct diskimg_part *part);
/* Like fs_open() but says nothing when the partition holds neither (for probing). */
struct fs *fs_probe(struct diskimg *d, const struct diskimg_part *part);
void fs_close(struct fs *fs);
enum fs_type fs_kind(const struct fs *fs);
/* "ext4", "vfat" */
const char *fs_type_name(const struct fs *fs);
/* The file system's UUID as Linux's blkid prints it (ext: 8-4-4-4-12; FAT: XXXX-XXXX), and label. */
const char *fs_uuid(const struct fs *fs);
const char *fs_label(const struct fs *fs);

/*
 * Read the whole regular file at path (absolute, '/'-separated; symlinks
 * inside the file system are followed, at most 40 in all, relative or
 * absolute within it) into a malloc'ed buffer of *len bytes, at most max
 * bytes (larger: -1, logged). FAT names are matched case-insensitively.
 * Returns 0, or -1 with one line logged; -2 (nothing logged) when the path
 * does not exist.
 */
int fs_read_file(struct fs *fs, const char *path, size_t max, void **buf, size_t *len);

/* Whether path exists and is a directory / a regular file (after symlinks). */
bool fs_is_dir(struct fs *fs, const char *path);
bool fs_is_file(struct fs *fs, const char *path);

/*
 * Call fn(arg, name, is_dir) for each entry of directory path (not "." or
 * ".."), at most 100000 entries. Returns 0, -1 (logged) or -2 (no such directory).
 * fn returns non-zero to stop early.
 */
int fs_list_dir(struct fs *fs, const char *path,
		int (*fn)(void *arg, const char *name, bool is_dir), void *arg);
