/*
 * arch/x86/decompress: format detection and every decoder, on data the
 * libraries compress here; output bounds, hints that lie, truncated and
 * corrupted streams, trailers and concatenation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lz4.h>
#include <lzma.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "util/decompress.h"

#define MIB (1ULL << 20)

struct blob {
	uint8_t *p;
	size_t n;
};

/* Compressible but not trivial: text-like runs with some noise. */
static struct blob make_input(size_t n, unsigned int seed)
{
	struct blob b = { malloc(n ? n : 1), n };
	uint32_t x = seed * 2654435761U + 1;

	assert_non_null(b.p);
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245U + 12345U;
		b.p[i] = (i % 64 < 48) ? (uint8_t)("vmlinux bootvm "[(i / 3) % 15]) : (uint8_t)(x >> 24);
	}
	return b;
}

static struct blob c_gzip(const struct blob *in)
{
	z_stream s = { 0 };
	struct blob out;

	assert_int_equal(deflateInit2(&s, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	out.n = deflateBound(&s, in->n) + 64;
	out.p = malloc(out.n);
	assert_non_null(out.p);
	s.next_in = in->p;
	s.avail_in = (uInt)in->n;
	s.next_out = out.p;
	s.avail_out = (uInt)out.n;
	assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
	out.n = s.total_out;
	deflateEnd(&s);
	return out;
}

/* Small dictionaries keep each decoder's allocation small: these tests run thousands. */
static lzma_options_lzma lzma_opts(void)
{
	lzma_options_lzma opt;

	assert_false(lzma_lzma_preset(&opt, 1));
	opt.dict_size = 64 << 10;
	return opt;
}

/* As Linux's xz_wrap.sh: CRC32 and the x86 BCJ filter before LZMA2. */
static struct blob c_xz(const struct blob *in)
{
	lzma_options_lzma opt = lzma_opts();
	lzma_filter filters[] = {
		{ .id = LZMA_FILTER_X86, .options = NULL },
		{ .id = LZMA_FILTER_LZMA2, .options = &opt },
		{ .id = LZMA_VLI_UNKNOWN, .options = NULL },
	};
	size_t cap = in->n + in->n / 2 + 4096;
	struct blob out = { malloc(cap), 0 };

	assert_non_null(out.p);
	assert_int_equal(lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC32, NULL, in->p, in->n,
						   out.p, &out.n, cap), LZMA_OK);
	return out;
}

static struct blob c_lzma(const struct blob *in)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_options_lzma opt = lzma_opts();
	size_t cap = in->n + in->n / 2 + 4096;
	struct blob out = { malloc(cap), 0 };

	assert_non_null(out.p);
	assert_int_equal(lzma_alone_encoder(&s, &opt), LZMA_OK);
	s.next_in = in->p;
	s.avail_in = in->n;
	s.next_out = out.p;
	s.avail_out = cap;
	assert_int_equal(lzma_code(&s, LZMA_FINISH), LZMA_STREAM_END);
	out.n = cap - s.avail_out;
	lzma_end(&s);
	return out;
}

static struct blob c_zstd(const struct blob *in)
{
	size_t cap = ZSTD_compressBound(in->n);
	struct blob out = { malloc(cap), 0 };
	ZSTD_CCtx *cc = ZSTD_createCCtx();

	assert_non_null(out.p);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	out.n = ZSTD_compress2(cc, out.p, cap, in->p, in->n);
	assert_false(ZSTD_isError(out.n));
	ZSTD_freeCCtx(cc);
	return out;
}

/* The lz4 legacy frame, as `lz4 -l` writes it: 8 MiB blocks. */
static struct blob c_lz4(const struct blob *in)
{
	size_t blocks = in->n / (8 * MIB) + 1;
	size_t cap = 4 + blocks * (4 + (size_t)LZ4_compressBound(8 * MIB));
	struct blob out = { malloc(cap), 4 };

	assert_non_null(out.p);
	memcpy(out.p, "\x02\x21\x4c\x18", 4);
	for (size_t off = 0; off < in->n; off += 8 * MIB) {
		int len = (int)(in->n - off < 8 * MIB ? in->n - off : 8 * MIB);
		int c = LZ4_compress_default((const char *)in->p + off, (char *)out.p + out.n + 4,
					     len, (int)(cap - out.n - 4));
		assert_true(c > 0);
		uint32_t le = (uint32_t)c;
		memcpy(out.p + out.n, &le, 4);
		out.n += 4 + (size_t)c;
	}
	return out;
}

struct fmt {
	enum decompress_format fmt;
	const char *name;
	struct blob (*compress)(const struct blob *);
	bool checked;	/* has an integrity check: corruption is always detected */
};

static const struct fmt fmts[] = {
	{ DECOMPRESS_GZIP, "gzip", c_gzip, true },
	{ DECOMPRESS_XZ, "xz", c_xz, true },
	{ DECOMPRESS_LZMA, "lzma", c_lzma, false },
	{ DECOMPRESS_LZ4, "lz4", c_lz4, false },
	{ DECOMPRESS_ZSTD, "zstd", c_zstd, true },
};
#define NR_FMTS (sizeof(fmts) / sizeof(fmts[0]))

static void append_le32(struct blob *b, uint32_t v)
{
	b->p = realloc(b->p, b->n + 4);
	assert_non_null(b->p);
	memcpy(b->p + b->n, &v, 4);
	b->n += 4;
}

static int run(enum decompress_format f, const struct blob *z, size_t hint, size_t max,
	       struct blob *out)
{
	const char *why = NULL;
	int ret = decompress_buffer(f, z->p, z->n, hint, max, &out->p, &out->n, &why);

	assert_non_null(why);
	if (ret)
		assert_null(out->p);
	else
		assert_non_null(out->p);
	return ret;
}

static void test_detect(void **state)
{
	static const struct {
		const char *magic;
		size_t len;
		enum decompress_format fmt;
	} cases[] = {
		{ "\x1f\x8b", 2, DECOMPRESS_GZIP },
		{ "\xfd" "7zXZ\0", 6, DECOMPRESS_XZ },
		{ "\x5d\0\0", 3, DECOMPRESS_LZMA },
		{ "\x02\x21\x4c\x18", 4, DECOMPRESS_LZ4 },
		{ "\x28\xb5\x2f\xfd", 4, DECOMPRESS_ZSTD },
		{ "BZh", 3, DECOMPRESS_BZIP2 },
		{ "\x89LZO\0\r\n\x1a\n", 9, DECOMPRESS_LZO },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[16] = { 0 };
		memcpy(buf, cases[i].magic, cases[i].len);
		assert_int_equal(decompress_detect(buf, cases[i].len), cases[i].fmt);
		assert_int_equal(decompress_detect(buf, sizeof(buf)), cases[i].fmt);
		/* A prefix of a magic is not the format. */
		assert_int_not_equal(decompress_detect(buf, cases[i].len - 1), cases[i].fmt);
		assert_string_not_equal(decompress_name(cases[i].fmt), "unknown");
	}
	assert_int_equal(decompress_detect((const uint8_t *)"\x7f" "ELF", 4), DECOMPRESS_UNKNOWN);
	assert_int_equal(decompress_detect(NULL, 0), DECOMPRESS_UNKNOWN);
	assert_string_equal(decompress_name(DECOMPRESS_UNKNOWN), "unknown");
	assert_true(decompress_supported(DECOMPRESS_GZIP));
	assert_true(decompress_supported(DECOMPRESS_ZSTD));
	assert_false(decompress_supported(DECOMPRESS_BZIP2));
	assert_false(decompress_supported(DECOMPRESS_LZO));
	assert_false(decompress_supported(DECOMPRESS_UNKNOWN));
}

static void test_roundtrip(void **state)
{
	for (size_t i = 0; i < NR_FMTS; i++) {
		/* lz4: more than one 8 MiB block. All: several growth steps without a hint. */
		size_t n = fmts[i].fmt == DECOMPRESS_LZ4 ? 9 * MIB + 12345 : 1 * MIB + 12345;
		struct blob in = make_input(n, 1);
		struct blob z = fmts[i].compress(&in), out;
		const size_t hints[] = { 0, in.n, 1, in.n / 3, in.n * 100, SIZE_MAX / 2 };

		assert_int_equal(decompress_detect(z.p, z.n), fmts[i].fmt);
		for (size_t h = 0; h < sizeof(hints) / sizeof(hints[0]); h++) {
			if (run(fmts[i].fmt, &z, hints[h], 16 * MIB, &out))
				fail_msg("%s with hint %zu failed", fmts[i].name, hints[h]);
			assert_int_equal(out.n, in.n);
			assert_memory_equal(out.p, in.p, in.n);
			free(out.p);
		}
		/* Linux's size_append trailer, or any junk after the stream, is ignored. */
		append_le32(&z, (uint32_t)in.n);
		assert_int_equal(run(fmts[i].fmt, &z, in.n, 16 * MIB, &out), 0);
		assert_int_equal(out.n, in.n);
		assert_memory_equal(out.p, in.p, in.n);
		free(out.p);
		free(z.p);
		free(in.p);
	}
}

static void test_output_limit(void **state)
{
	struct blob in = make_input(300000, 2);

	for (size_t i = 0; i < NR_FMTS; i++) {
		struct blob z = fmts[i].compress(&in), out;

		/* Exactly enough. */
		assert_int_equal(run(fmts[i].fmt, &z, 0, in.n, &out), 0);
		assert_int_equal(out.n, in.n);
		free(out.p);
		/* One byte short, whatever the hint says. */
		if (run(fmts[i].fmt, &z, 0, in.n - 1, &out) != DECOMPRESS_ERR_TOO_BIG)
			fail_msg("%s: no TOO_BIG at the limit", fmts[i].name);
		assert_int_equal(run(fmts[i].fmt, &z, 100, in.n - 1, &out), DECOMPRESS_ERR_TOO_BIG);
		assert_int_equal(run(fmts[i].fmt, &z, SIZE_MAX, 1000, &out), DECOMPRESS_ERR_TOO_BIG);
		free(z.p);
	}
	free(in.p);
}

static void test_empty(void **state)
{
	struct blob in = { (uint8_t *)"", 0 };

	for (size_t i = 0; i < NR_FMTS; i++) {
		struct blob z = fmts[i].compress(&in), out;

		assert_int_equal(run(fmts[i].fmt, &z, 0, 1000, &out), 0);
		assert_int_equal(out.n, 0);
		free(out.p);
		free(z.p);
	}
}

/* Every truncation: an error, or (formats without an end marker) a prefix. */
static void test_truncated(void **state)
{
	struct blob in = make_input(8000, 3);

	for (size_t i = 0; i < NR_FMTS; i++) {
		struct blob z = fmts[i].compress(&in), out;

		for (size_t len = 0; len < z.n; len++) {
			struct blob t = { z.p, len };
			int ret = run(fmts[i].fmt, &t, in.n, MIB, &out);
			if (ret == 0) {
				if (fmts[i].fmt != DECOMPRESS_LZ4 || out.n >= in.n ||
				    memcmp(out.p, in.p, out.n))
					fail_msg("%s truncated to %zu bytes decoded", fmts[i].name, len);
				free(out.p);
			} else {
				assert_int_equal(ret, DECOMPRESS_ERR_DATA);
			}
		}
		free(z.p);
	}
	free(in.p);
}

/* Corruption anywhere: never a crash or an overrun; checked formats always notice. */
static void test_corrupt(void **state)
{
	struct blob in = make_input(8000, 4);

	for (size_t i = 0; i < NR_FMTS; i++) {
		struct blob z = fmts[i].compress(&in), out;
		uint8_t *orig = malloc(z.n);
		size_t first = fmts[i].fmt == DECOMPRESS_LZ4 ? 4 : 0;

		assert_non_null(orig);
		memcpy(orig, z.p, z.n);
		for (size_t pos = first; pos < z.n; pos++) {
			for (unsigned int flip = 0; flip < 2; flip++) {
				memcpy(z.p, orig, z.n);
				z.p[pos] ^= flip ? 0xff : (uint8_t)(1U << (pos % 8));
				/* Keep the magic, so the decoder really runs. */
				if (decompress_detect(z.p, z.n) != fmts[i].fmt)
					continue;
				int ret = run(fmts[i].fmt, &z, in.n, 2 * in.n, &out);
				if (ret == 0) {
					assert_true(out.n <= 2 * in.n);
					if (fmts[i].checked && out.n == in.n && memcmp(out.p, in.p, in.n))
						fail_msg("%s: corruption at %zu went unnoticed",
							 fmts[i].name, pos);
					free(out.p);
				}
			}
		}
		free(orig);
		free(z.p);
	}
	free(in.p);
}

static void test_lz4_legacy_framing(void **state)
{
	struct blob a = make_input(5000, 5), b = make_input(7000, 6), out;
	struct blob za = c_lz4(&a), zb = c_lz4(&b);
	struct blob cat = { malloc(za.n + zb.n + 8), 0 };

	assert_non_null(cat.p);
	/* Two legacy streams back to back: both outputs, as Linux's unlz4 gives. */
	memcpy(cat.p, za.p, za.n);
	memcpy(cat.p + za.n, zb.p, zb.n);
	cat.n = za.n + zb.n;
	assert_int_equal(run(DECOMPRESS_LZ4, &cat, 0, MIB, &out), 0);
	assert_int_equal(out.n, a.n + b.n);
	assert_memory_equal(out.p, a.p, a.n);
	assert_memory_equal(out.p + a.n, b.p, b.n);
	free(out.p);

	/* A block size past the end (the size trailer) ends the stream. */
	memcpy(cat.p, za.p, za.n);
	cat.n = za.n;
	append_le32(&cat, 0x7fffffff);
	assert_int_equal(run(DECOMPRESS_LZ4, &cat, 0, MIB, &out), 0);
	assert_int_equal(out.n, a.n);
	free(out.p);

	/* So does a zero block size. */
	memcpy(cat.p, za.p, za.n);
	cat.n = za.n;
	append_le32(&cat, 0);
	append_le32(&cat, 1);
	assert_int_equal(run(DECOMPRESS_LZ4, &cat, 0, MIB, &out), 0);
	assert_int_equal(out.n, a.n);
	free(out.p);

	/* The most compressible blocks (LZ4 expands up to ~255 times) still fit. */
	for (size_t n = 1; n <= 8 * MIB; n = n * 4 + 1) {
		struct blob zeros = { calloc(1, n), n };
		assert_non_null(zeros.p);
		struct blob z = c_lz4(&zeros);
		assert_int_equal(run(DECOMPRESS_LZ4, &z, 0, 16 * MIB, &out), 0);
		assert_int_equal(out.n, n);
		assert_memory_equal(out.p, zeros.p, n);
		free(out.p);
		free(z.p);
		free(zeros.p);
	}

	/* A block that decodes to more than 8 MiB is corrupt. */
	{
		struct blob big = { calloc(1, 8 * MIB + 1), 8 * MIB + 1 };
		assert_non_null(big.p);
		int cap = LZ4_compressBound((int)big.n);
		struct blob z = { malloc((size_t)cap + 8), 4 };
		assert_non_null(z.p);
		memcpy(z.p, "\x02\x21\x4c\x18", 4);
		int c = LZ4_compress_default((const char *)big.p, (char *)z.p + 8, (int)big.n, cap);
		assert_true(c > 0);
		uint32_t le = (uint32_t)c;
		memcpy(z.p + 4, &le, 4);
		z.n = 8 + (size_t)c;
		assert_int_equal(run(DECOMPRESS_LZ4, &z, 0, 64 * MIB, &out), DECOMPRESS_ERR_DATA);
		free(z.p);
		free(big.p);
	}
	free(cat.p);
	free(za.p);
	free(zb.p);
	free(a.p);
	free(b.p);
}

static void test_zstd_frames(void **state)
{
	struct blob a = make_input(5000, 7), b = make_input(3000, 8), out;
	struct blob za = c_zstd(&a), zb = c_zstd(&b);
	struct blob cat = { malloc(za.n + zb.n), za.n + zb.n };

	assert_non_null(cat.p);
	memcpy(cat.p, za.p, za.n);
	memcpy(cat.p + za.n, zb.p, zb.n);
	append_le32(&cat, (uint32_t)(a.n + b.n));
	assert_int_equal(run(DECOMPRESS_ZSTD, &cat, 0, MIB, &out), 0);
	assert_int_equal(out.n, a.n + b.n);
	assert_memory_equal(out.p, a.p, a.n);
	assert_memory_equal(out.p + a.n, b.p, b.n);
	free(out.p);
	free(cat.p);
	free(za.p);
	free(zb.p);
	free(a.p);
	free(b.p);
}

static void test_wrong_format(void **state)
{
	struct blob in = make_input(1000, 9), out;
	struct blob z = c_gzip(&in);
	static const uint8_t bz2[] = "BZh91AY&SY";
	struct blob bz = { (uint8_t *)bz2, sizeof(bz2) };

	/* Data that is not what the caller says. */
	assert_int_equal(run(DECOMPRESS_ZSTD, &z, 0, MIB, &out), DECOMPRESS_ERR_DATA);
	assert_int_equal(run(DECOMPRESS_BZIP2, &bz, 0, MIB, &out), DECOMPRESS_ERR_DATA);
	assert_int_equal(run(DECOMPRESS_UNKNOWN, &z, 0, MIB, &out), DECOMPRESS_ERR_DATA);
	free(z.p);
	free(in.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_output_limit),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_lz4_legacy_framing),
		cmocka_unit_test(test_zstd_frames),
		cmocka_unit_test(test_wrong_format),
	};

	return cmocka_run_group_tests_name("decompress", tests, NULL, NULL);
}
