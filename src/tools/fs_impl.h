/*
 * Inside tools/: what diskimg.c, fs_ext.c and fs_fat.c share. Each file
 * system fills a struct fs with its ops; fs_read_file() & co. dispatch.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/diskimg.h"

/* At most this many symlinks followed while resolving one path (as Linux). */
#define FS_MAX_SYMLINKS 40
#define FS_MAX_DIR_ENTRIES 100000

enum fs_node { FS_NODE_FILE, FS_NODE_DIR, FS_NODE_OTHER };

struct fs_ops {
	void (*close)(struct fs *fs);
	/* 0 and the kind of the node at path, -2 (quiet) if there is none, -1 logged. */
	int (*stat)(struct fs *fs, const char *path, enum fs_node *node);
	int (*read_file)(struct fs *fs, const char *path, size_t max, void **buf, size_t *len);
	int (*list_dir)(struct fs *fs, const char *path,
			int (*fn)(void *arg, const char *name, bool is_dir), void *arg);
};

struct fs {
	const struct fs_ops *ops;
	enum fs_type kind;
	const char *type_name;
	char uuid[37];
	char label[64];
	struct diskimg *d;
	const struct diskimg_part *part;
	void *priv;
};

/*
 * Each returns the file system, NULL when the partition does not hold one of
 * its kind (quiet: nothing logged; else one line), or NULL with one line
 * logged and *corrupt set when it does but cannot be used.
 */
struct fs *fs_ext_open(struct diskimg *d, const struct diskimg_part *part, bool quiet, bool *corrupt);
struct fs *fs_fat_open(struct diskimg *d, const struct diskimg_part *part, bool quiet, bool *corrupt);

/* Whether the bytes at the start of a partition look like an ext superblock / a FAT boot sector. */
bool fs_ext_magic(struct diskimg *d, uint64_t offset, uint64_t size);
bool fs_fat_magic(struct diskimg *d, uint64_t offset, uint64_t size);

/* Read len bytes at off of the image: 0, or -1 (logged, naming what) if out of range or failed. */
int diskimg_pread(struct diskimg *d, uint64_t off, void *buf, size_t len, const char *what);
/* The same without logging. */
int diskimg_pread_quiet(struct diskimg *d, uint64_t off, void *buf, size_t len);

/* UTF-16LE code units (stopping at a NUL) to UTF-8 in out (NUL-terminated, truncated at a
 * whole character); unpaired surrogates become U+FFFD. */
void diskimg_utf16le_to_utf8(const uint8_t *in, size_t units, char *out, size_t out_size);
/* Encode one code point as UTF-8 into out if it fits in room; the bytes written (0 if not). */
size_t diskimg_utf8_put(uint32_t cp, char *out, size_t room);
