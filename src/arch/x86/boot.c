/*
 * boot_load(): pick the kernel's format, then place the initrd, check the
 * command line and write everything with the boot structures (zero page or
 * PVH start info). Nothing is written to guest memory until the kernel, the
 * command line and the initrd's size have all been checked.
 */
#include "arch/x86/boot.h"

#include <errno.h>
#include <linux/elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "arch/x86/pvh.h"
#include "util/file.h"
#include "util/log.h"
#include "util/prefault.h"
#include "util/size.h"
#include "vmm/config.h"
#include "vmm/memory.h"

#define PAGE_SIZE_4K		0x1000ULL
#define SETUP_HDR_MAGIC		0x53726448U	/* "HdrS" */
#define SETUP_HDR_OFFSET	0x1f1
#define BOOT_FLAG_MAGIC		0xaa55
#define MINIMAL_HDR_VERSION	0x020f		/* what an ELF kernel gets told */
#define LOADER_TYPE_UNDEFINED	0xff		/* boot.rst: a loader without an assigned ID */
#define RSDP_MIN_VERSION	0x020e		/* acpi_rsdp_addr exists since 2.14 */

static bool is_elf(const uint8_t *d, size_t n)
{
	return n >= SELFMAG && !memcmp(d, ELFMAG, SELFMAG);
}

static bool is_bzimage(const uint8_t *d, size_t n)
{
	return n >= 0x206 && d[0x202] == 'H' && d[0x203] == 'd' && d[0x204] == 'r' &&
	       d[0x205] == 'S';
}

/* Open the initrd and learn its size; the bytes are read later, into guest memory. */
static int initrd_open(const char *path, uint64_t *size)
{
	int fd = file_open(path, "initrd", size);

	if (fd < 0)
		return -1;
	/*
	 * An empty initrd is refused: Linux would silently boot without one and
	 * fail much later to find a root file system, far from the cause.
	 */
	if (*size == 0) {
		log_error("initrd '%s' is empty", path);
		close(fd);
		return -1;
	}
	return fd;
}

/* pread() straight into guest memory: no bounce buffer. */
static int initrd_read(int fd, const char *path, uint8_t *dst, uint64_t size)
{
	uint64_t done = 0;

	while (done < size) {
		size_t chunk = size - done > (1U << 30) ? (1U << 30) : (size_t)(size - done);
		ssize_t n = pread(fd, dst + done, chunk, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("cannot read initrd '%s': %s", path, strerror(errno));
			return -1;
		}
		if (n == 0) {
			log_error("initrd '%s' shrank while being read (%llu of %llu bytes)", path,
				  (unsigned long long)done, (unsigned long long)size);
			return -1;
		}
		done += (uint64_t)n;
	}
	return 0;
}

/*
 * The highest page-aligned address where the initrd ends at or below
 * min(k->initrd_end_max, low RAM end) and starts at or above the kernel's end.
 */
static int initrd_place(const struct loader *ld, const struct kernel_image *k,
			const char *path, uint64_t size, uint64_t *addr)
{
	uint64_t top = k->initrd_end_max < ld->low_end ? k->initrd_end_max : ld->low_end;
	uint64_t floor = (k->end + PAGE_SIZE_4K - 1) & ~(PAGE_SIZE_4K - 1);
	char isz[32], ksz[32];

	if (size <= top && ((top - size) & ~(PAGE_SIZE_4K - 1)) >= floor) {
		*addr = (top - size) & ~(PAGE_SIZE_4K - 1);
		return 0;
	}
	log_error("initrd '%s' (%s) does not fit in guest RAM with the kernel (%s): use a "
		  "larger --memory", path, size_format(size, isz, sizeof(isz)),
		  size_format(k->end, ksz, sizeof(ksz)));
	return -1;
}

/* The zero page: the kernel's setup header (or a minimal one) plus what a loader fills in. */
static int zeropage_write(const struct loader *ld, const struct kernel_image *k,
			  uint64_t rsdp, uint64_t initrd_addr, uint64_t initrd_size)
{
	struct boot_params *bp = guest_mem_ptr(ld->mem, LAYOUT_ZERO_PAGE, sizeof(*bp));
	struct e820_range map[E820_MAX_RANGES];
	struct setup_header *h;

	if (!bp)
		return -1;
	memset(bp, 0, sizeof(*bp));
	h = &bp->hdr;
	if (k->have_hdr) {
		/* The header as the file has it, not beyond its declared end. */
		memcpy((uint8_t *)bp + SETUP_HDR_OFFSET, &k->hdr, k->hdr_len);
	} else {
		h->boot_flag = BOOT_FLAG_MAGIC;
		h->header = SETUP_HDR_MAGIC;
		h->version = MINIMAL_HDR_VERSION;
		h->loadflags = LOADED_HIGH;
		h->cmdline_size = LOADER_ELF_CMDLINE_MAX;
		h->initrd_addr_max = (uint32_t)(ld->low_end - 1);
		h->xloadflags = XLF_KERNEL_64;
	}
	h->type_of_loader = LOADER_TYPE_UNDEFINED;
	h->code32_start = (uint32_t)k->start;
	h->cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp->ext_cmd_line_ptr = (uint32_t)(LAYOUT_CMDLINE >> 32);
	h->ramdisk_image = (uint32_t)initrd_addr;
	h->ramdisk_size = (uint32_t)initrd_size;
	bp->ext_ramdisk_image = (uint32_t)(initrd_addr >> 32);
	bp->ext_ramdisk_size = (uint32_t)(initrd_size >> 32);
	/* No setup_data list from us, whatever the file's header held. */
	h->setup_data = 0;
	if (h->version >= RSDP_MIN_VERSION)
		bp->acpi_rsdp_addr = rsdp;

	unsigned int n = e820_build(ld->mem, map);
	for (unsigned int i = 0; i < n; i++) {
		struct boot_e820_entry e = { .addr = map[i].addr, .size = map[i].size,
					     .type = map[i].type };
		memcpy(&bp->e820_table[i], &e, sizeof(e));
	}
	bp->e820_entries = (uint8_t)n;
	return 0;
}

int boot_load(struct guest_mem *mem, const struct vm_config *cfg, uint64_t rsdp,
	      struct boot_plan *plan)
{
	struct loader ld = {
		.mem = mem, .cfg = cfg, .path = cfg->kernel_path, .low_end = guest_mem_low_end(mem),
	};
	struct kernel_image *k;
	struct file_map fm;
	uint64_t initrd_size = 0, initrd_addr = 0;
	int initrd_fd = -1, ret = -1;

	memset(plan, 0, sizeof(*plan));
	k = calloc(1, sizeof(*k));
	if (!k) {
		log_error("out of memory loading kernel '%s'", cfg->kernel_path);
		return -1;
	}
	if (file_map(cfg->kernel_path, "kernel", &fm) < 0)
		goto out_free;

	if (is_elf(fm.data, fm.size)) {
		if (elf_prepare(&ld, fm.data, fm.size, k) < 0)
			goto out_unmap;
	} else if (is_bzimage(fm.data, fm.size)) {
		if (bzimage_prepare(&ld, fm.data, fm.size, k) < 0)
			goto out_unmap;
	} else {
		log_error("kernel '%s': not a bzImage or an ELF vmlinux", cfg->kernel_path);
		goto out_unmap;
	}

	size_t cmdline_len = strlen(cfg->cmdline);
	size_t cmdline_max = k->cmdline_max < LAYOUT_CMDLINE_MAX - 1 ? k->cmdline_max
								     : LAYOUT_CMDLINE_MAX - 1;
	if (cmdline_len > cmdline_max) {
		log_error("kernel '%s': command line is %zu bytes; this kernel takes at most %zu",
			  cfg->kernel_path, cmdline_len, cmdline_max);
		goto out_unmap;
	}

	if (cfg->initrd_path) {
		initrd_fd = initrd_open(cfg->initrd_path, &initrd_size);
		if (initrd_fd < 0)
			goto out_unmap;
		if (initrd_place(&ld, k, cfg->initrd_path, initrd_size, &initrd_addr) < 0)
			goto out_initrd;
	}

	/* Everything checked: write. */
	if (k->is_elf) {
		elf_copy(&ld, &k->elf);
	} else {
		uint8_t *dst = guest_mem_ptr(mem, k->blob_addr, k->blob_size);

		prefault_write(dst, k->blob_size);
		memcpy(dst, k->blob, k->blob_size);
	}
	if (initrd_fd >= 0) {
		uint8_t *dst = guest_mem_ptr(mem, initrd_addr, initrd_size);

		prefault_write(dst, initrd_size);
		if (initrd_read(initrd_fd, cfg->initrd_path, dst, initrd_size) < 0)
			goto out_initrd;
	}
	if (guest_mem_write(mem, LAYOUT_CMDLINE, cfg->cmdline, cmdline_len + 1) < 0)
		goto err_low_mem;

	if (k->entry == BOOT_ENTRY_PVH) {
		plan->boot_data = pvh_write_start_info(mem, LAYOUT_CMDLINE, rsdp, initrd_addr,
						       initrd_size);
		if (!plan->boot_data)
			goto err_low_mem;
	} else {
		if (zeropage_write(&ld, k, rsdp, initrd_addr, initrd_size) < 0)
			goto err_low_mem;
		plan->boot_data = LAYOUT_ZERO_PAGE;
	}
	plan->entry = k->entry;
	plan->entry_addr = k->entry_addr;
	plan->kernel_start = k->start;
	plan->kernel_end = k->end;
	plan->initrd_addr = initrd_addr;
	plan->initrd_size = initrd_size;
	memcpy(plan->desc, k->desc, sizeof(plan->desc));
	ret = 0;
	goto out_initrd;

err_low_mem:
	/* Unreachable with guest RAM >= 1 MiB, which the kernel checks above imply. */
	log_error("kernel '%s': guest memory cannot hold the boot structures", cfg->kernel_path);
out_initrd:
	if (initrd_fd >= 0)
		close(initrd_fd);
out_unmap:
	file_unmap(&fm);
out_free:
	free(k->owned);
	free(k);
	return ret;
}
