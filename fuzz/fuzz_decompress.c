/*
 * libFuzzer target: decompress_buffer() on arbitrary data. The first byte
 * picks the format the data is claimed to be; the rest is the stream, with
 * a size hint taken from its last 4 bytes as the bzImage loader does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/decompress.h"

#define FUZZ_MAX_OUT (16U << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum decompress_format fmts[] = {
		DECOMPRESS_GZIP, DECOMPRESS_XZ, DECOMPRESS_LZMA, DECOMPRESS_LZ4, DECOMPRESS_ZSTD,
	};
	uint8_t *out;
	size_t out_size, hint = 0;
	const char *why;

	if (size < 1)
		return 0;
	enum decompress_format fmt = fmts[data[0] % (sizeof(fmts) / sizeof(fmts[0]))];
	data++;
	size--;
	if (size >= 4) {
		uint32_t le;
		memcpy(&le, data + size - 4, 4);
		hint = le;
	}
	/* Let detection fail too, but mostly reach the decoder. */
	int ret = decompress_buffer(fmt, data, size, hint, FUZZ_MAX_OUT, &out, &out_size, &why);
	if (ret == 0) {
		if (!out || out_size > FUZZ_MAX_OUT)
			abort();
		free(out);
	} else if (out || !why) {
		abort();
	}
	return 0;
}
