/*
 * A writer of cpio "newc" archives, the format the Linux kernel unpacks as
 * its initramfs (Documentation/driver-api/early-userspace/buffer-format.rst),
 * optionally compressed as the kernel's initramfs unpacker accepts it.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum cpio_compress {
	CPIO_COMPRESS_NONE,
	CPIO_COMPRESS_GZIP,	/* gzip (zlib, level 9) */
	CPIO_COMPRESS_ZSTD,	/* zstd frame (level 19, no checksum) */
	CPIO_COMPRESS_LZ4,	/* lz4 legacy frame, as `lz4 -l` writes it */
};

/* "none", "gzip", "zstd", "lz4" → *out and 0; -1 for anything else (no log). */
int cpio_compress_parse(const char *name, enum cpio_compress *out);
const char *cpio_compress_name(enum cpio_compress c);

/* The numeric fields of a newc header (c_magic "070701", c_check 0). */
struct cpio_header {
	uint32_t ino;
	uint32_t mode;		/* file type and permission bits, as st_mode */
	uint32_t uid, gid;
	uint32_t nlink;
	uint32_t mtime;
	uint64_t filesize;	/* must fit in 32 bits */
	uint32_t devmajor, devminor;
	uint32_t rdevmajor, rdevminor;
};

struct cpio_writer;

/*
 * Start an archive written to fd (not closed by the writer). path names the
 * output in error messages. Returns NULL after logging one line on failure.
 */
struct cpio_writer *cpio_writer_open(int fd, const char *path, enum cpio_compress c);

/*
 * Begin an entry: header, name, padding. Exactly h->filesize bytes of data
 * must follow through cpio_write_data() before the next entry.
 */
int cpio_write_header(struct cpio_writer *w, const struct cpio_header *h, const char *name);
int cpio_write_data(struct cpio_writer *w, const void *buf, size_t len);

/* Write the TRAILER!!! entry and flush the compressor. */
int cpio_writer_finish(struct cpio_writer *w);

/* Uncompressed and written (compressed) sizes so far. */
uint64_t cpio_writer_size(const struct cpio_writer *w);
uint64_t cpio_writer_written(const struct cpio_writer *w);

void cpio_writer_free(struct cpio_writer *w);
