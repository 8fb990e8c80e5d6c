/*
 * Decompressors for Linux's kernel and initramfs formats, on top of the
 * system libraries. Every decoder writes into one growing buffer whose size
 * is bounded by the caller's max_out, whatever the compressed data claims.
 */
#include "util/decompress.h"

#include <limits.h>
#include <lz4.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "util/prefault.h"

/* liblzma's memory limit: Linux uses 32 MiB (xz) and 64 MiB (lzma -9) dictionaries. */
#define LZMA_MEMLIMIT		(256ULL << 20)
/* lz4 -l: each legacy block decompresses to at most 8 MiB. */
#define LZ4_LEGACY_MAGIC	0x184c2102U
#define LZ4_LEGACY_BLOCK	(8U << 20)
#define ZSTD_MAGIC		0xfd2fb528U
#define FIRST_ALLOC_MIN		(64U << 10)
#define FIRST_ALLOC_RATIO	64	/* kernels compress about 3-10x */

struct outbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
	size_t limit;	/* the most we ever allocate: max_out plus a little slack */
};

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

enum decompress_format decompress_detect(const uint8_t *d, size_t n)
{
	static const uint8_t xz[] = { 0xfd, '7', 'z', 'X', 'Z', 0x00 };
	static const uint8_t lzo[] = { 0x89, 'L', 'Z', 'O', 0x00, 0x0d, 0x0a, 0x1a, 0x0a };

	if (n >= 2 && d[0] == 0x1f && d[1] == 0x8b)
		return DECOMPRESS_GZIP;
	if (n >= sizeof(xz) && !memcmp(d, xz, sizeof(xz)))
		return DECOMPRESS_XZ;
	if (n >= 3 && d[0] == 0x5d && d[1] == 0x00 && d[2] == 0x00)
		return DECOMPRESS_LZMA;
	if (n >= 4 && get_le32(d) == LZ4_LEGACY_MAGIC)
		return DECOMPRESS_LZ4;
	if (n >= 4 && get_le32(d) == ZSTD_MAGIC)
		return DECOMPRESS_ZSTD;
	if (n >= 3 && d[0] == 'B' && d[1] == 'Z' && d[2] == 'h')
		return DECOMPRESS_BZIP2;
	if (n >= sizeof(lzo) && !memcmp(d, lzo, sizeof(lzo)))
		return DECOMPRESS_LZO;
	return DECOMPRESS_UNKNOWN;
}

const char *decompress_name(enum decompress_format fmt)
{
	switch (fmt) {
	case DECOMPRESS_GZIP: return "gzip";
	case DECOMPRESS_XZ: return "xz";
	case DECOMPRESS_LZMA: return "lzma";
	case DECOMPRESS_LZ4: return "lz4";
	case DECOMPRESS_ZSTD: return "zstd";
	case DECOMPRESS_BZIP2: return "bzip2";
	case DECOMPRESS_LZO: return "lzo";
	case DECOMPRESS_UNKNOWN: break;
	}
	return "unknown";
}

bool decompress_supported(enum decompress_format fmt)
{
	switch (fmt) {
	case DECOMPRESS_GZIP:
	case DECOMPRESS_XZ:
	case DECOMPRESS_LZMA:
	case DECOMPRESS_LZ4:
	case DECOMPRESS_ZSTD:
		return true;
	default:
		return false;
	}
}

/* Make room for at least `want` more bytes (fewer if the limit is near). */
static int outbuf_reserve(struct outbuf *ob, size_t want)
{
	if (ob->cap - ob->len >= want)
		return 0;
	if (ob->cap == ob->limit)
		return ob->len < ob->limit ? 0 : DECOMPRESS_ERR_TOO_BIG;

	size_t need = ob->len + want;
	if (need < ob->len || need > ob->limit)
		need = ob->limit;
	size_t cap = ob->cap > ob->limit / 2 ? ob->limit : ob->cap * 2;
	if (cap < need)
		cap = need;
	uint8_t *p = realloc(ob->p, cap);
	if (!p)
		return DECOMPRESS_ERR_NOMEM;
	ob->p = p;
	ob->cap = cap;
	return 0;
}

static size_t outbuf_free(const struct outbuf *ob)
{
	return ob->cap - ob->len;
}

/*
 * What to do after a streaming decoder returned without finishing: grow the
 * output if it is full, else the input ran out. A decoder that made no
 * progress with room on both sides is treated as corrupt data.
 */
static int stream_continue(struct outbuf *ob, bool input_left, bool progress,
			   const char **why)
{
	if (!outbuf_free(ob)) {
		int ret = outbuf_reserve(ob, FIRST_ALLOC_MIN);
		if (ret == 0 && !outbuf_free(ob))
			ret = DECOMPRESS_ERR_TOO_BIG;
		if (ret == DECOMPRESS_ERR_TOO_BIG)
			*why = "decompressed data is larger than the limit";
		else if (ret)
			*why = "out of memory";
		return ret;
	}
	if (!input_left) {
		*why = "truncated data";
		return DECOMPRESS_ERR_DATA;
	}
	if (!progress) {
		*why = "corrupt data";
		return DECOMPRESS_ERR_DATA;
	}
	return 0;
}

static int decompress_gzip(const uint8_t *in, size_t in_size, struct outbuf *ob,
			   const char **why)
{
	z_stream s;
	size_t in_done = 0;
	int ret = 0;

	memset(&s, 0, sizeof(s));
	if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK) {	/* gzip wrapper only */
		*why = "out of memory";
		return DECOMPRESS_ERR_NOMEM;
	}
	for (;;) {
		/* zlib counts in uInt: feed and drain in chunks. */
		if (!s.avail_in && in_done < in_size) {
			size_t n = in_size - in_done < UINT_MAX ? in_size - in_done : UINT_MAX;
			s.next_in = (Bytef *)(uintptr_t)(in + in_done);
			s.avail_in = (uInt)n;
			in_done += n;
		}
		size_t room = outbuf_free(ob) < UINT_MAX ? outbuf_free(ob) : UINT_MAX;
		s.next_out = ob->p + ob->len;
		s.avail_out = (uInt)room;
		uInt in_before = s.avail_in;

		int zret = inflate(&s, Z_NO_FLUSH);
		ob->len += room - s.avail_out;
		if (zret == Z_STREAM_END)
			break;
		if (zret != Z_OK && zret != Z_BUF_ERROR) {
			*why = zret == Z_MEM_ERROR ? "out of memory" : s.msg ? s.msg : "corrupt data";
			ret = zret == Z_MEM_ERROR ? DECOMPRESS_ERR_NOMEM : DECOMPRESS_ERR_DATA;
			break;
		}
		ret = stream_continue(ob, s.avail_in || in_done < in_size,
				      s.avail_in != in_before || s.avail_out != room, why);
		if (ret)
			break;
	}
	inflateEnd(&s);
	return ret;
}

static int decompress_lzma_common(lzma_stream *s, const uint8_t *in, size_t in_size,
				  struct outbuf *ob, const char **why)
{
	s->next_in = in;
	s->avail_in = in_size;
	for (;;) {
		size_t room = outbuf_free(ob);
		size_t in_before = s->avail_in;

		s->next_out = ob->p + ob->len;
		s->avail_out = room;
		/* All the input is there from the start. */
		lzma_ret lret = lzma_code(s, LZMA_FINISH);
		ob->len += room - s->avail_out;
		switch (lret) {
		case LZMA_STREAM_END:
			return 0;
		case LZMA_OK:
		case LZMA_BUF_ERROR:
			break;
		case LZMA_MEM_ERROR:
			*why = "out of memory";
			return DECOMPRESS_ERR_NOMEM;
		case LZMA_MEMLIMIT_ERROR:
			*why = "the decoder needs more than 256 MiB of memory";
			return DECOMPRESS_ERR_DATA;
		case LZMA_FORMAT_ERROR:
			*why = "bad header";
			return DECOMPRESS_ERR_DATA;
		case LZMA_OPTIONS_ERROR:
			*why = "unsupported options";
			return DECOMPRESS_ERR_DATA;
		default:
			*why = "corrupt data";
			return DECOMPRESS_ERR_DATA;
		}
		int ret = stream_continue(ob, s->avail_in != 0,
					  s->avail_in != in_before || s->avail_out != room, why);
		if (ret)
			return ret;
	}
}

static int decompress_lzma(enum decompress_format fmt, const uint8_t *in, size_t in_size,
			   struct outbuf *ob, const char **why)
{
	lzma_stream s = LZMA_STREAM_INIT;
	/* No LZMA_CONCATENATED: the stream ends where the first one does. */
	lzma_ret lret = fmt == DECOMPRESS_XZ ? lzma_stream_decoder(&s, LZMA_MEMLIMIT, 0)
					     : lzma_alone_decoder(&s, LZMA_MEMLIMIT);
	if (lret != LZMA_OK) {
		*why = "out of memory";
		return DECOMPRESS_ERR_NOMEM;
	}
	int ret = decompress_lzma_common(&s, in, in_size, ob, why);
	lzma_end(&s);
	return ret;
}

/*
 * The lz4 legacy frame: a magic number, then blocks of [LE32 compressed
 * size][data], each at most 8 MiB decompressed. It ends with the input, or
 * at a block size that cannot be one (past the end of the input: Linux's
 * size_append trailer). A further magic number starts another legacy stream
 * whose output follows, as in Linux's unlz4 and `lz4 -d`.
 */
static int decompress_lz4(const uint8_t *in, size_t in_size, struct outbuf *ob,
			  const char **why)
{
	size_t pos = 4;

	while (in_size - pos >= 4) {
		uint32_t csize = get_le32(in + pos);

		if (csize == LZ4_LEGACY_MAGIC) {
			pos += 4;
			continue;
		}
		if (csize == 0 || csize > in_size - pos - 4 ||
		    csize > (uint32_t)LZ4_compressBound(LZ4_LEGACY_BLOCK))
			break;
		pos += 4;
		/* LZ4 expands at most 255 times: small blocks need no 8 MiB of room. */
		size_t want = csize >= LZ4_LEGACY_BLOCK / 255 ? LZ4_LEGACY_BLOCK
							      : (size_t)csize * 255 + 64;
		int ret = outbuf_reserve(ob, want);
		if (ret) {
			*why = ret == DECOMPRESS_ERR_NOMEM ? "out of memory"
							   : "decompressed data is larger than the limit";
			return ret;
		}
		size_t room = outbuf_free(ob);
		if (room > want)
			room = want;
		int n = LZ4_decompress_safe((const char *)in + pos, (char *)ob->p + ob->len,
					    (int)csize, (int)room);
		if (n < 0) {
			/* A short buffer only happens at the limit: report that, not corruption. */
			if (room < want) {
				*why = "decompressed data is larger than the limit";
				return DECOMPRESS_ERR_TOO_BIG;
			}
			*why = "corrupt data";
			return DECOMPRESS_ERR_DATA;
		}
		ob->len += (size_t)n;
		pos += csize;
	}
	return 0;
}

/* One or more zstd frames; stops at the first bytes that are not a frame. */
static int decompress_zstd(const uint8_t *in, size_t in_size, struct outbuf *ob,
			   const char **why)
{
	ZSTD_DStream *ds = ZSTD_createDStream();
	ZSTD_inBuffer ib = { .src = in, .size = in_size, .pos = 0 };
	int ret = 0;

	if (!ds) {
		*why = "out of memory";
		return DECOMPRESS_ERR_NOMEM;
	}
	ZSTD_initDStream(ds);
	for (;;) {
		size_t room = outbuf_free(ob);
		size_t in_before = ib.pos;
		ZSTD_outBuffer obuf = { .dst = ob->p + ob->len, .size = room, .pos = 0 };

		size_t zret = ZSTD_decompressStream(ds, &obuf, &ib);
		ob->len += obuf.pos;
		if (ZSTD_isError(zret)) {
			*why = ZSTD_getErrorName(zret);
			ret = DECOMPRESS_ERR_DATA;
			break;
		}
		if (zret == 0) {
			/* A frame ended and everything is flushed. */
			if (in_size - ib.pos < 4 || get_le32(in + ib.pos) != ZSTD_MAGIC)
				break;
			continue;
		}
		ret = stream_continue(ob, ib.pos < ib.size, ib.pos != in_before || obuf.pos, why);
		if (ret)
			break;
	}
	ZSTD_freeDStream(ds);
	return ret;
}

int decompress_buffer(enum decompress_format fmt, const uint8_t *in, size_t in_size,
		      size_t size_hint, size_t max_out, uint8_t **out, size_t *out_size,
		      const char **why)
{
	/* Slack past max_out: lets a decoder show it has more, and lz4 decode whole blocks. */
	size_t slack = fmt == DECOMPRESS_LZ4 ? LZ4_LEGACY_BLOCK : 1;
	struct outbuf ob = { .limit = max_out > SIZE_MAX - slack ? SIZE_MAX : max_out + slack };
	int ret;

	*out = NULL;
	*out_size = 0;
	*why = "ok";
	if (!decompress_supported(fmt) || decompress_detect(in, in_size) != fmt) {
		*why = "unsupported format";
		return DECOMPRESS_ERR_DATA;
	}

	/*
	 * The hint only sizes the first allocation (+1: room to see the end),
	 * within a ratio no kernel reaches; growth covers a wrong one.
	 */
	size_t plausible = in_size > (SIZE_MAX - FIRST_ALLOC_MIN) / FIRST_ALLOC_RATIO
				   ? SIZE_MAX : in_size * FIRST_ALLOC_RATIO + FIRST_ALLOC_MIN;
	size_t first = size_hint && size_hint < plausible ? size_hint + 1 : plausible / 16;
	if (first > plausible)
		first = plausible;
	if (first < FIRST_ALLOC_MIN)
		first = FIRST_ALLOC_MIN;
	if (first > ob.limit)
		first = ob.limit;
	ob.p = malloc(first);
	if (!ob.p) {
		*why = "out of memory";
		return DECOMPRESS_ERR_NOMEM;
	}
	ob.cap = first;
	if (size_hint && first > size_hint)
		prefault_write(ob.p, size_hint);	/* the hint was right so far: it will be filled */

	switch (fmt) {
	case DECOMPRESS_GZIP:
		ret = decompress_gzip(in, in_size, &ob, why);
		break;
	case DECOMPRESS_XZ:
	case DECOMPRESS_LZMA:
		ret = decompress_lzma(fmt, in, in_size, &ob, why);
		break;
	case DECOMPRESS_LZ4:
		ret = decompress_lz4(in, in_size, &ob, why);
		break;
	case DECOMPRESS_ZSTD:
		ret = decompress_zstd(in, in_size, &ob, why);
		break;
	default:
		ret = DECOMPRESS_ERR_DATA;
		break;
	}
	if (ret == 0 && ob.len > max_out) {
		*why = "decompressed data is larger than the limit";
		ret = DECOMPRESS_ERR_TOO_BIG;
	}
	if (ret) {
		free(ob.p);
		return ret;
	}
	*out = ob.p;
	*out_size = ob.len;
	return 0;
}
