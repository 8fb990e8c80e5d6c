/*
 * libFuzzer target: boot_load() on an arbitrary kernel file, with and
 * without host decompression. Every input must give 0 or -1 with one error
 * line, never a crash, leak or out-of-bounds access.
 *
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz && build-fuzz/fuzz/fuzz_loader -max_len=65536 CORPUS_DIR
 *
 * Seeds: tests/unit/test_loader.c builds small bzImages and ELFs; any real
 * bzImage or vmlinux works too.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "util/log.h"
#include "vmm/config.h"
#include "vmm/memory.h"

#define FUZZ_MEM_SIZE (64ULL << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int errors;

static void count_errors(enum log_level level, const char *msg, void *opaque)
{
	(void)msg;
	(void)opaque;
	if (level == LOG_ERROR)
		errors++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem mem;
	static char path[64];
	static int fd = -1;
	struct boot_plan plan;

	if (fd < 0) {
		if (guest_mem_init(&mem, FUZZ_MEM_SIZE, LAYOUT_MMIO_HOLE_START) < 0)
			abort();
		fd = memfd_create("fuzz-kernel", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		log_set_sink(count_errors, NULL);
	}
	if (ftruncate(fd, 0) < 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();

	for (int host = 0; host < 2; host++) {
		struct vm_config cfg = {
			.kernel_path = path,
			.cmdline = "console=ttyS0",
			.mem_size = FUZZ_MEM_SIZE,
			.nr_cpus = 1,
			.host_decompress = host,
		};
		errors = 0;
		int ret = boot_load(&mem, &cfg, LAYOUT_ACPI, &plan);
		/* The contract: failure is exactly one error line, success none. */
		if ((ret == 0 && errors != 0) || (ret == -1 && errors != 1) || (ret != 0 && ret != -1))
			abort();
		if (ret == 0 && (plan.entry_addr < LAYOUT_KERNEL || plan.kernel_end > FUZZ_MEM_SIZE ||
				 plan.kernel_start > plan.kernel_end))
			abort();
	}
	return 0;
}
