#include "util/aml.h"

#include <stdlib.h>
#include <string.h>

/* AML opcodes (ACPI 6.x section 20.3). */
#define AML_ZERO_OP		0x00
#define AML_ONE_OP		0x01
#define AML_NAME_OP		0x08
#define AML_BYTE_PREFIX		0x0a
#define AML_WORD_PREFIX		0x0b
#define AML_DWORD_PREFIX	0x0c
#define AML_STRING_PREFIX	0x0d
#define AML_QWORD_PREFIX	0x0e
#define AML_SCOPE_OP		0x10
#define AML_BUFFER_OP		0x11
#define AML_PACKAGE_OP		0x12
#define AML_METHOD_OP		0x14
#define AML_DUAL_NAME_PREFIX	0x2e
#define AML_MULTI_NAME_PREFIX	0x2f
#define AML_EXT_OP_PREFIX	0x5b
#define AML_EXT_DEVICE_OP	0x82
#define AML_ROOT_CHAR		0x5c
#define AML_PARENT_PREFIX	0x5e
#define AML_RETURN_OP		0xa4
#define AML_ARG0_OP		0x68

/* Small resource descriptor tags: type << 3 | length. */
#define AML_RES_IRQ_NOFLAGS	0x22	/* type 0x04, 2 bytes */
#define AML_RES_IO		0x47	/* type 0x08, 7 bytes */
#define AML_RES_END_TAG		0x79	/* type 0x0f, 1 byte */
/* Large resource descriptors: tag, then a 16-bit length of what follows. */
#define AML_RES_MEMORY32_FIXED	0x86
#define AML_RES_DWORD_ADDRESS	0x87
#define AML_RES_WORD_ADDRESS	0x88
#define AML_RES_QWORD_ADDRESS	0x8a
/* Address space descriptor fields. */
#define AML_RES_TYPE_MEMORY	0
#define AML_RES_TYPE_IO		1
#define AML_RES_TYPE_BUS	2
#define AML_RES_CONSUMER	0x01	/* general flags: bit 0 */
#define AML_RES_MIN_FIXED	0x04
#define AML_RES_MAX_FIXED	0x08
#define AML_RES_MEM_RW		0x01	/* memory type-specific flags */
#define AML_RES_MEM_CACHEABLE	0x02	/* _MEM = 1 */
#define AML_RES_IO_ENTIRE_RANGE	0x03	/* I/O type-specific flags: _RNG = 3 */

/* A PkgLength is reserved at its widest and shrunk when the object closes. */
#define PKG_RESERVE 4

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	a->buf = buf;
	a->cap = cap;
	a->len = 0;
	a->overflow = false;
	a->growable = false;
}

void aml_init_growable(struct aml *a)
{
	aml_init(a, NULL, 0);
	a->growable = true;
}

void aml_fini(struct aml *a)
{
	if (a->growable)
		free(a->buf);
	aml_init(a, NULL, 0);
}

/* Make room for n more bytes; false (overflow set) when that is impossible. */
static bool aml_reserve(struct aml *a, size_t n)
{
	if (n <= a->cap - a->len)
		return true;
	if (a->growable && n <= AML_GROW_MAX - a->len) {
		size_t cap = a->cap ? a->cap : 256;
		uint8_t *p;

		while (cap - a->len < n)
			cap *= 2;
		p = realloc(a->buf, cap);
		if (p) {
			a->buf = p;
			a->cap = cap;
			return true;
		}
	}
	a->overflow = true;
	return false;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->overflow || !aml_reserve(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

size_t aml_pkglength_encode(size_t body_len, uint8_t out[4])
{
	size_t total = 0, n;

	if (body_len + 1 <= 0x3f) {
		out[0] = (uint8_t)(body_len + 1);
		return 1;
	}
	/* n following bytes carry 8 bits each above the lead byte's low nibble. */
	for (n = 1; n <= 3; n++) {
		total = body_len + 1 + n;
		if (total < (1ULL << (4 + 8 * n)))
			break;
	}
	if (n > 3)
		return 0;
	out[0] = (uint8_t)((n << 6) | (total & 0x0f));
	for (size_t i = 1; i <= n; i++)
		out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	return n + 1;
}

static size_t aml_pkg_reserve(struct aml *a)
{
	static const uint8_t zero[PKG_RESERVE];
	size_t mark = a->len;

	aml_bytes(a, zero, sizeof(zero));
	return mark;
}

void aml_end(struct aml *a, size_t mark)
{
	uint8_t enc[4];
	size_t body, n;

	if (a->overflow)
		return;
	if (mark > a->len || a->len - mark < PKG_RESERVE) {
		a->overflow = true;	/* not a mark from *_begin() */
		return;
	}
	body = a->len - mark - PKG_RESERVE;
	n = aml_pkglength_encode(body, enc);
	if (!n) {
		a->overflow = true;
		return;
	}
	memmove(a->buf + mark + n, a->buf + mark + PKG_RESERVE, body);
	memcpy(a->buf + mark, enc, n);
	a->len -= PKG_RESERVE - n;
}

static bool aml_lead_char(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool aml_name_char(char c)
{
	return aml_lead_char(c) || (c >= '0' && c <= '9');
}

void aml_namestring(struct aml *a, const char *path)
{
	const char *p = path;
	size_t nsegs = 0;

	if (*p == '\\') {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == '^') {
			aml_byte(a, AML_PARENT_PREFIX);
			p++;
		}
	}
	if (!*p) {
		aml_byte(a, 0x00);	/* NullName */
		return;
	}

	/* Validate and count the segments first: the prefix depends on the count. */
	for (const char *s = p;;) {
		size_t l = strcspn(s, ".");
		if (l == 0 || l > 4 || !aml_lead_char(s[0]))
			goto bad;
		for (size_t i = 1; i < l; i++)
			if (!aml_name_char(s[i]))
				goto bad;
		nsegs++;
		if (!s[l])
			break;
		s += l + 1;
	}
	if (nsegs > 255)
		goto bad;
	if (nsegs == 2) {
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	} else if (nsegs > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)nsegs);
	}
	for (const char *s = p;;) {
		size_t l = strcspn(s, ".");
		char seg[4] = { '_', '_', '_', '_' };

		memcpy(seg, s, l);
		aml_bytes(a, seg, 4);
		if (!s[l])
			break;
		s += l + 1;
	}
	return;
bad:
	a->overflow = true;
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t b[9];
	size_t n;

	if (v == 0) {
		aml_byte(a, AML_ZERO_OP);
		return;
	}
	if (v == 1) {
		aml_byte(a, AML_ONE_OP);
		return;
	}
	if (v <= UINT8_MAX) {
		b[0] = AML_BYTE_PREFIX;
		n = 1;
	} else if (v <= UINT16_MAX) {
		b[0] = AML_WORD_PREFIX;
		n = 2;
	} else if (v <= UINT32_MAX) {
		b[0] = AML_DWORD_PREFIX;
		n = 4;
	} else {
		b[0] = AML_QWORD_PREFIX;
		n = 8;
	}
	for (size_t i = 0; i < n; i++)
		b[1 + i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, 1 + n);
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c > 0x7f) {	/* AsciiCharList is 0x01-0x7f */
			a->overflow = true;
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static int aml_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

uint32_t aml_eisaid_value(const char *id)
{
	uint8_t b[4];
	int d[4];

	if (strlen(id) != 7)
		return 0;
	for (int i = 0; i < 3; i++)
		if (id[i] < 'A' || id[i] > 'Z')
			return 0;
	for (int i = 0; i < 4; i++)
		if ((d[i] = aml_hex_digit(id[3 + i])) < 0)
			return 0;
	/* Three 5-bit letters ('A' = 1), then four hex digits; stored big-endian. */
	b[0] = (uint8_t)(((id[0] & 0x1f) << 2) | ((id[1] & 0x1f) >> 3));
	b[1] = (uint8_t)(((id[1] & 0x1f) << 5) | (id[2] & 0x1f));
	b[2] = (uint8_t)((d[0] << 4) | d[1]);
	b[3] = (uint8_t)((d[2] << 4) | d[3]);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = aml_eisaid_value(id);
	uint8_t b[5] = { AML_DWORD_PREFIX, (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			 (uint8_t)(v >> 24) };

	if (!v) {
		a->overflow = true;
		return;
	}
	/* Always a DWord, as iasl's EISAID() emits, even if it would fit smaller. */
	aml_bytes(a, b, sizeof(b));
}

void aml_buffer(struct aml *a, const void *data, size_t n)
{
	size_t mark;

	aml_byte(a, AML_BUFFER_OP);
	mark = aml_pkg_reserve(a);
	aml_integer(a, n);
	aml_bytes(a, data, n);
	aml_end(a, mark);
}

void aml_name(struct aml *a, const char *name)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, name);
}

void aml_name_integer(struct aml *a, const char *name, uint64_t v)
{
	aml_name(a, name);
	aml_integer(a, v);
}

void aml_name_string(struct aml *a, const char *name, const char *s)
{
	aml_name(a, name);
	aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *name, const char *id)
{
	aml_name(a, name);
	aml_eisaid(a, id);
}

void aml_return(struct aml *a)
{
	aml_byte(a, AML_RETURN_OP);
}

size_t aml_scope_begin(struct aml *a, const char *name)
{
	size_t mark;

	aml_byte(a, AML_SCOPE_OP);
	mark = aml_pkg_reserve(a);
	aml_namestring(a, name);
	return mark;
}

size_t aml_device_begin(struct aml *a, const char *name)
{
	size_t mark;

	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_EXT_DEVICE_OP);
	mark = aml_pkg_reserve(a);
	aml_namestring(a, name);
	return mark;
}

size_t aml_method_begin(struct aml *a, const char *name, unsigned int nargs, bool serialized)
{
	size_t mark;

	if (nargs > 7)
		a->overflow = true;
	aml_byte(a, AML_METHOD_OP);
	mark = aml_pkg_reserve(a);
	aml_namestring(a, name);
	/* MethodFlags: ArgCount in bits 0-2, SerializeFlag in bit 3, SyncLevel 0. */
	aml_byte(a, (uint8_t)((nargs & 7) | (serialized ? 0x08 : 0)));
	return mark;
}

size_t aml_package_begin(struct aml *a, unsigned int nelems)
{
	size_t mark;

	if (nelems > 255)
		a->overflow = true;	/* VarPackage would be needed */
	aml_byte(a, AML_PACKAGE_OP);
	mark = aml_pkg_reserve(a);
	aml_byte(a, (uint8_t)nelems);
	return mark;
}

void aml_method_return_integer(struct aml *a, const char *name, uint64_t v)
{
	size_t m = aml_method_begin(a, name, 0, false);

	aml_return(a);
	aml_integer(a, v);
	aml_end(a, m);
}

void aml_res_io(struct aml *a, bool decode16, uint16_t min, uint16_t max,
		uint8_t align, uint8_t len)
{
	uint8_t d[8] = {
		AML_RES_IO, decode16 ? 0x01 : 0x00,
		(uint8_t)min, (uint8_t)(min >> 8), (uint8_t)max, (uint8_t)(max >> 8),
		align, len,
	};

	aml_bytes(a, d, sizeof(d));
}

void aml_res_irq_noflags(struct aml *a, uint16_t mask)
{
	uint8_t d[3] = { AML_RES_IRQ_NOFLAGS, (uint8_t)mask, (uint8_t)(mask >> 8) };

	aml_bytes(a, d, sizeof(d));
}

void aml_res_end(struct aml *a)
{
	/* A zero checksum means "treat the template as valid", as iasl writes it. */
	uint8_t d[2] = { AML_RES_END_TAG, 0x00 };

	aml_bytes(a, d, sizeof(d));
}

void aml_arg(struct aml *a, unsigned int n)
{
	if (n > 6) {
		a->overflow = true;
		return;
	}
	aml_byte(a, (uint8_t)(AML_ARG0_OP + n));
}

/* Little-endian fields of width bytes each, after the descriptor's header. */
static void aml_res_le(uint8_t *p, uint64_t v, unsigned int width)
{
	for (unsigned int i = 0; i < width; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * One address space descriptor: header (tag, length, type, general flags,
 * type-specific flags), then granularity, min, max, translation, length of
 * width bytes each.
 */
static void aml_res_address(struct aml *a, uint8_t tag, unsigned int width, uint8_t type,
			    bool producer, uint8_t tflags, uint64_t min, uint64_t max)
{
	uint8_t d[3 + 3 + 5 * 8];
	size_t body = 3 + 5 * (size_t)width;

	d[0] = tag;
	d[1] = (uint8_t)body;
	d[2] = 0;
	d[3] = type;
	d[4] = (uint8_t)(AML_RES_MIN_FIXED | AML_RES_MAX_FIXED |
			 (producer ? 0 : AML_RES_CONSUMER));
	d[5] = tflags;
	aml_res_le(d + 6 + 0 * width, 0, width);		/* granularity */
	aml_res_le(d + 6 + 1 * width, min, width);
	aml_res_le(d + 6 + 2 * width, max, width);
	aml_res_le(d + 6 + 3 * width, 0, width);		/* translation */
	aml_res_le(d + 6 + 4 * width, max - min + 1, width);
	if (max < min)
		a->overflow = true;	/* a programming error */
	aml_bytes(a, d, 3 + body);
}

void aml_res_word_bus_number(struct aml *a, uint16_t min, uint16_t max)
{
	aml_res_address(a, AML_RES_WORD_ADDRESS, 2, AML_RES_TYPE_BUS, true, 0, min, max);
}

void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max)
{
	aml_res_address(a, AML_RES_WORD_ADDRESS, 2, AML_RES_TYPE_IO, true,
			AML_RES_IO_ENTIRE_RANGE, min, max);
}

void aml_res_dword_memory(struct aml *a, bool producer, bool cacheable, uint32_t min,
			  uint32_t max)
{
	aml_res_address(a, AML_RES_DWORD_ADDRESS, 4, AML_RES_TYPE_MEMORY, producer,
			AML_RES_MEM_RW | (cacheable ? AML_RES_MEM_CACHEABLE : 0), min, max);
}

void aml_res_qword_memory(struct aml *a, bool producer, bool cacheable, uint64_t min,
			  uint64_t max)
{
	aml_res_address(a, AML_RES_QWORD_ADDRESS, 8, AML_RES_TYPE_MEMORY, producer,
			AML_RES_MEM_RW | (cacheable ? AML_RES_MEM_CACHEABLE : 0), min, max);
}

void aml_res_memory32_fixed(struct aml *a, uint32_t base, uint32_t len)
{
	uint8_t d[12] = { AML_RES_MEMORY32_FIXED, 9, 0, AML_RES_MEM_RW };

	aml_res_le(d + 4, base, 4);
	aml_res_le(d + 8, len, 4);
	aml_bytes(a, d, sizeof(d));
}
