/* What `bootvm run` was asked to do, after the command line is parsed. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum console_kind {
	CONSOLE_STDIO,	/* guest serial <-> our stdin/stdout */
	CONSOLE_FILE,	/* guest output appended to a file, no input */
	CONSOLE_NONE,	/* guest output discarded, no input */
};

struct vm_config {
	const char *kernel_path;
	const char *initrd_path;	/* NULL: none */
	const char *cmdline;		/* never NULL ("" when not given) */
	uint64_t mem_size;		/* bytes */
	unsigned int nr_cpus;
	enum console_kind console;
	const char *console_path;	/* CONSOLE_FILE only */
	bool host_decompress;		/* decompress bzImage payloads on the host */
	bool stats;			/* print timing and memory figures at exit */
};

#define VM_DEFAULT_MEM_SIZE (512ULL << 20)
#define VM_MIN_MEM_SIZE (8ULL << 20)
#define VM_MAX_CPUS 255		/* xAPIC IDs in MADT type-0 entries; x2APIC beyond is future work */
