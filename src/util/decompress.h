/*
 * Host-side decompression of the formats Linux compresses its kernel and
 * initramfs with. Used by the bzImage loader (to skip the guest's own
 * decompressor) and by `bootvm initramfs`.
 *
 * Nothing here logs: on failure a function returns -1 and a short static
 * reason, so that the caller can log one line naming its file.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum decompress_format {
	DECOMPRESS_UNKNOWN,
	DECOMPRESS_GZIP,	/* 1f 8b */
	DECOMPRESS_XZ,		/* fd 37 7a 58 5a 00 */
	DECOMPRESS_LZMA,	/* 5d 00 00: lzma "alone", as `lzma -9` writes it */
	DECOMPRESS_LZ4,		/* 02 21 4c 18: the legacy frame of `lz4 -l` */
	DECOMPRESS_ZSTD,	/* 28 b5 2f fd */
	DECOMPRESS_BZIP2,	/* "BZh": recognised, not decompressed */
	DECOMPRESS_LZO,		/* lzop: recognised, not decompressed */
};

/* Identify data by its magic number; DECOMPRESS_UNKNOWN if none matches. */
enum decompress_format decompress_detect(const uint8_t *data, size_t size);

/* "gzip", "xz", ...; "unknown" for DECOMPRESS_UNKNOWN. */
const char *decompress_name(enum decompress_format fmt);

/* Whether decompress_buffer() can decompress fmt. */
bool decompress_supported(enum decompress_format fmt);

/*
 * Decompress the stream of format fmt at the start of in[0, in_size) into a
 * malloc'd buffer of at most max_out bytes. Bytes after the end of the stream
 * (e.g. Linux's 4-byte size_append trailer) are ignored.
 *
 * size_hint is the expected output size (0: unknown). It only sizes the
 * first allocation; it is never trusted for bounds.
 *
 * On success returns 0, *out (free() it) and *out_size; an empty output gives
 * a non-NULL *out. On failure returns one of the DECOMPRESS_ERR_* codes below
 * with *out NULL and *why a short static reason ("truncated data", ...).
 */
#define DECOMPRESS_ERR_DATA	(-1)	/* corrupt, truncated or unsupported data */
#define DECOMPRESS_ERR_TOO_BIG	(-2)	/* the output would exceed max_out */
#define DECOMPRESS_ERR_NOMEM	(-3)	/* the host is out of memory */

int decompress_buffer(enum decompress_format fmt, const uint8_t *in, size_t in_size,
		      size_t size_hint, size_t max_out, uint8_t **out, size_t *out_size,
		      const char **why);
