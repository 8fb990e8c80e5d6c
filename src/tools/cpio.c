#include "tools/cpio.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lz4.h>
#include <lz4hc.h>
#include <zlib.h>
#include <zstd.h>

#include "util/log.h"

#define CPIO_HEADER_SIZE 110

/* lz4 legacy frame: magic, then blocks of 8 MiB of input each (the last one
 * shorter), each a 32-bit little-endian compressed size and independent data. */
#define LZ4_LEGACY_MAGIC 0x184c2102u
#define LZ4_LEGACY_BLOCK (8u << 20)

#define STAGE_SIZE (128u << 10)

struct cpio_writer {
	int fd;
	char *path;
	enum cpio_compress compress;
	bool failed;

	uint64_t pos;		/* uncompressed bytes of archive so far */
	uint64_t written;	/* bytes written to fd */
	uint64_t data_left;	/* data still owed for the current entry */

	uint8_t *stage;		/* uncompressed bytes waiting for the compressor */
	size_t stage_len, stage_cap;
	uint8_t *out;		/* compressor output */
	size_t out_cap;

	z_stream z;
	bool z_init;
	ZSTD_CCtx *zc;
};

static const char *const compress_names[] = {
	[CPIO_COMPRESS_NONE] = "none",
	[CPIO_COMPRESS_GZIP] = "gzip",
	[CPIO_COMPRESS_ZSTD] = "zstd",
	[CPIO_COMPRESS_LZ4] = "lz4",
};

int cpio_compress_parse(const char *name, enum cpio_compress *out)
{
	for (size_t i = 0; i < sizeof(compress_names) / sizeof(compress_names[0]); i++) {
		if (!strcmp(name, compress_names[i])) {
			*out = (enum cpio_compress)i;
			return 0;
		}
	}
	return -1;
}

const char *cpio_compress_name(enum cpio_compress c)
{
	if ((size_t)c < sizeof(compress_names) / sizeof(compress_names[0]))
		return compress_names[c];
	return "unknown";
}

static int fd_write(struct cpio_writer *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(w->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("cannot write '%s': %s", w->path, strerror(errno));
			w->failed = true;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		w->written += (uint64_t)n;
	}
	return 0;
}

static int flush_gzip(struct cpio_writer *w, bool final)
{
	w->z.next_in = w->stage;
	w->z.avail_in = (uInt)w->stage_len;
	for (;;) {
		w->z.next_out = w->out;
		w->z.avail_out = (uInt)w->out_cap;
		int ret = deflate(&w->z, final ? Z_FINISH : Z_NO_FLUSH);
		if (ret == Z_STREAM_ERROR) {
			log_error("cannot write '%s': gzip compression failed", w->path);
			w->failed = true;
			return -1;
		}
		if (fd_write(w, w->out, w->out_cap - w->z.avail_out) < 0)
			return -1;
		if (final ? ret == Z_STREAM_END : w->z.avail_in == 0 && w->z.avail_out != 0)
			return 0;
	}
}

static int flush_zstd(struct cpio_writer *w, bool final)
{
	ZSTD_inBuffer in = { w->stage, w->stage_len, 0 };

	for (;;) {
		ZSTD_outBuffer out = { w->out, w->out_cap, 0 };
		size_t left = ZSTD_compressStream2(w->zc, &out, &in,
						   final ? ZSTD_e_end : ZSTD_e_continue);
		if (ZSTD_isError(left)) {
			log_error("cannot write '%s': zstd compression failed: %s", w->path,
				  ZSTD_getErrorName(left));
			w->failed = true;
			return -1;
		}
		if (fd_write(w, w->out, out.pos) < 0)
			return -1;
		if (final ? left == 0 : in.pos == in.size)
			return 0;
	}
}

static int flush_lz4(struct cpio_writer *w)
{
	if (!w->stage_len)
		return 0;
	int n = LZ4_compress_HC((const char *)w->stage, (char *)w->out + 4, (int)w->stage_len,
				(int)w->out_cap - 4, LZ4HC_CLEVEL_DEFAULT);
	if (n <= 0) {
		log_error("cannot write '%s': lz4 compression failed", w->path);
		w->failed = true;
		return -1;
	}
	w->out[0] = (uint8_t)n;
	w->out[1] = (uint8_t)(n >> 8);
	w->out[2] = (uint8_t)(n >> 16);
	w->out[3] = (uint8_t)(n >> 24);
	return fd_write(w, w->out, (size_t)n + 4);
}

/* Hand the staged bytes to the compressor (final: end the stream). */
static int stage_flush(struct cpio_writer *w, bool final)
{
	int ret = 0;

	switch (w->compress) {
	case CPIO_COMPRESS_NONE: ret = fd_write(w, w->stage, w->stage_len); break;
	case CPIO_COMPRESS_GZIP: ret = flush_gzip(w, final); break;
	case CPIO_COMPRESS_ZSTD: ret = flush_zstd(w, final); break;
	case CPIO_COMPRESS_LZ4: ret = flush_lz4(w); break;
	}
	w->stage_len = 0;
	return ret;
}

static int put(struct cpio_writer *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (w->failed)
		return -1;
	w->pos += len;
	while (len) {
		size_t n = w->stage_cap - w->stage_len;
		if (n > len)
			n = len;
		memcpy(w->stage + w->stage_len, p, n);
		w->stage_len += n;
		p += n;
		len -= n;
		if (w->stage_len == w->stage_cap && stage_flush(w, false) < 0)
			return -1;
	}
	return 0;
}

static int pad4(struct cpio_writer *w)
{
	static const uint8_t zeros[4];

	return put(w, zeros, (size_t)(-w->pos & 3));
}

struct cpio_writer *cpio_writer_open(int fd, const char *path, enum cpio_compress c)
{
	struct cpio_writer *w = calloc(1, sizeof(*w));

	if (!w)
		goto err_nomem;
	w->fd = fd;
	w->compress = c;
	w->path = strdup(path);
	w->stage_cap = c == CPIO_COMPRESS_LZ4 ? LZ4_LEGACY_BLOCK : STAGE_SIZE;
	w->stage = malloc(w->stage_cap);
	switch (c) {
	case CPIO_COMPRESS_NONE:
		break;
	case CPIO_COMPRESS_GZIP:
		w->out_cap = STAGE_SIZE;
		/* 15 + 16: a gzip header (mtime 0, so the output is reproducible). */
		if (deflateInit2(&w->z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			goto err_nomem;
		w->z_init = true;
		break;
	case CPIO_COMPRESS_ZSTD:
		w->out_cap = ZSTD_CStreamOutSize();
		w->zc = ZSTD_createCCtx();
		if (!w->zc)
			goto err_nomem;
		/* Level 19 keeps the window at 8 MiB, which the kernel's unzstd
		 * allocates in the guest; no checksum: less work in the guest. */
		ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, 19);
		ZSTD_CCtx_setParameter(w->zc, ZSTD_c_checksumFlag, 0);
		break;
	case CPIO_COMPRESS_LZ4:
		w->out_cap = (size_t)LZ4_compressBound((int)LZ4_LEGACY_BLOCK) + 4;
		break;
	}
	if (!w->path || !w->stage || (w->out_cap && !(w->out = malloc(w->out_cap))))
		goto err_nomem;
	if (c == CPIO_COMPRESS_LZ4) {
		static const uint8_t magic[4] = {
			LZ4_LEGACY_MAGIC & 0xff, (LZ4_LEGACY_MAGIC >> 8) & 0xff,
			(LZ4_LEGACY_MAGIC >> 16) & 0xff, LZ4_LEGACY_MAGIC >> 24,
		};
		if (fd_write(w, magic, sizeof(magic)) < 0)
			goto err_free;
	}
	return w;

err_nomem:
	log_error("cannot write '%s': out of memory", path);
err_free:
	cpio_writer_free(w);
	return NULL;
}

static int check_entry_done(struct cpio_writer *w, const char *what)
{
	if (w->data_left) {
		/* A caller bug, not bad input; still refuse to write a broken archive. */
		log_error("cannot write '%s': %llu bytes of data missing before %s", w->path,
			  (unsigned long long)w->data_left, what);
		w->failed = true;
		return -1;
	}
	return 0;
}

int cpio_write_header(struct cpio_writer *w, const struct cpio_header *h, const char *name)
{
	char hdr[CPIO_HEADER_SIZE + 1];
	size_t namesize = strlen(name) + 1;

	if (w->failed || check_entry_done(w, name) < 0)
		return -1;
	if (h->filesize > UINT32_MAX) {
		log_error("'%s' is too large for a cpio archive (4 GiB at most)", name);
		w->failed = true;
		return -1;
	}
	if (pad4(w) < 0)
		return -1;
	snprintf(hdr, sizeof(hdr),
		 "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 h->ino, h->mode, h->uid, h->gid, h->nlink, h->mtime, (uint32_t)h->filesize,
		 h->devmajor, h->devminor, h->rdevmajor, h->rdevminor, (uint32_t)namesize, 0u);
	if (put(w, hdr, CPIO_HEADER_SIZE) < 0 || put(w, name, namesize) < 0 || pad4(w) < 0)
		return -1;
	w->data_left = h->filesize;
	return 0;
}

int cpio_write_data(struct cpio_writer *w, const void *buf, size_t len)
{
	if (w->failed)
		return -1;
	if (len > w->data_left) {
		log_error("cannot write '%s': more data than the entry's size", w->path);
		w->failed = true;
		return -1;
	}
	w->data_left -= len;
	return put(w, buf, len);
}

int cpio_writer_finish(struct cpio_writer *w)
{
	const struct cpio_header trailer = { .nlink = 1 };

	if (cpio_write_header(w, &trailer, "TRAILER!!!") < 0)
		return -1;
	return stage_flush(w, true);
}

uint64_t cpio_writer_size(const struct cpio_writer *w)
{
	return w->pos;
}

uint64_t cpio_writer_written(const struct cpio_writer *w)
{
	return w->written;
}

void cpio_writer_free(struct cpio_writer *w)
{
	if (!w)
		return;
	if (w->z_init)
		deflateEnd(&w->z);
	ZSTD_freeCCtx(w->zc);
	free(w->stage);
	free(w->out);
	free(w->path);
	free(w);
}
