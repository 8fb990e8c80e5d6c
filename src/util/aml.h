/*
 * A tiny AML (ACPI Machine Language) byte encoder: just what bootvm's DSDT
 * needs. Names, integers, strings, packages, scopes, devices, methods that
 * return a constant, buffers and small resource descriptors.
 *
 * Writes go into a caller-supplied buffer, or one that grows as needed
 * (aml_init_growable(), freed by aml_fini()). Running out of room sets
 * `overflow` and turns every later call into a no-op, so a caller checks
 * once at the end. Objects with a PkgLength (scope, device, method,
 * package) are opened with *_begin(), which returns a mark, and closed with
 * aml_end(mark); they nest.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool overflow;
	bool growable;		/* buf is ours: realloc'ed as needed */
};

/* _STA value: present, enabled, shown in the UI, functioning. */
#define AML_STA_ALL 0x0f

/* A growable buffer never exceeds this (a DSDT is kilobytes). */
#define AML_GROW_MAX (16U << 20)

/* Largest body a PkgLength can describe (28 bits, minus its own 4 bytes). */
#define AML_PKG_MAX ((1U << 28) - 1 - 4)

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
void aml_init_growable(struct aml *a);
void aml_fini(struct aml *a);
void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);

/*
 * The PkgLength encoding of a package whose contents (after the PkgLength)
 * are body_len bytes: the total counts the PkgLength bytes themselves.
 * Writes 1-4 bytes to out and returns how many, or 0 if body_len is too big.
 */
size_t aml_pkglength_encode(size_t body_len, uint8_t out[4]);

/*
 * A NameString: "\\" (root) or "^" (parent) prefixes, then dot-separated
 * segments of up to 4 characters (A-Z, 0-9, _; padded with '_'). "" is the
 * NullName. A malformed name sets overflow (it is a programming error).
 */
void aml_namestring(struct aml *a, const char *path);

/* Smallest encoding: Zero, One, BytePrefix, WordPrefix, DWordPrefix, QWordPrefix. */
void aml_integer(struct aml *a, uint64_t v);
/* String: printable ASCII, NUL-terminated in the AML. */
void aml_string(struct aml *a, const char *s);
/* A compressed EISA id ("PNP0501") as a DWord integer. */
void aml_eisaid(struct aml *a, const char *id);
uint32_t aml_eisaid_value(const char *id);
/* Buffer (size, bytes) holding exactly data[0..n). */
void aml_buffer(struct aml *a, const void *data, size_t n);

/* Name (name, <object>): the caller appends the object. */
void aml_name(struct aml *a, const char *name);
void aml_name_integer(struct aml *a, const char *name, uint64_t v);
void aml_name_string(struct aml *a, const char *name, const char *s);
void aml_name_eisaid(struct aml *a, const char *name, const char *id);

/* Return (<object>): the caller appends the object. */
void aml_return(struct aml *a);

/* Objects with a PkgLength. Close each with aml_end(a, mark). */
size_t aml_scope_begin(struct aml *a, const char *name);
size_t aml_device_begin(struct aml *a, const char *name);
size_t aml_method_begin(struct aml *a, const char *name, unsigned int nargs, bool serialized);
size_t aml_package_begin(struct aml *a, unsigned int nelems);
void aml_end(struct aml *a, size_t mark);

/* Method (name, 0) { Return (v) }, e.g. _STA. */
void aml_method_return_integer(struct aml *a, const char *name, uint64_t v);

/*
 * Resource template descriptors (ACPI 6.x section 6.4), written into a
 * struct aml of their own and then wrapped with aml_buffer(). End the list
 * with aml_res_end().
 */
void aml_res_io(struct aml *a, bool decode16, uint16_t min, uint16_t max,
		uint8_t align, uint8_t len);
void aml_res_irq_noflags(struct aml *a, uint16_t mask);
void aml_res_end(struct aml *a);

/* ArgN (0-6) as an operand. */
void aml_arg(struct aml *a, unsigned int n);

/*
 * Address space descriptors (ACPI 6.x 6.4.3.5) as iasl writes them for
 * WordBusNumber / WordIO / DWordMemory / QWordMemory: MinFixed, MaxFixed,
 * PosDecode, granularity 0, translation 0, length max - min + 1. Bus
 * numbers and I/O are always windows (ResourceProducer); memory is a
 * window when producer, else a range the device consumes.
 */
void aml_res_word_bus_number(struct aml *a, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max);
/* cacheable: Cacheable rather than NonCacheable (never Prefetchable); ReadWrite. */
void aml_res_dword_memory(struct aml *a, bool producer, bool cacheable, uint32_t min,
			  uint32_t max);
void aml_res_qword_memory(struct aml *a, bool producer, bool cacheable, uint64_t min,
			  uint64_t max);
/* Memory32Fixed (ReadWrite, base, len). */
void aml_res_memory32_fixed(struct aml *a, uint32_t base, uint32_t len);
