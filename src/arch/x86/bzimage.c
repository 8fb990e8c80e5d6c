/*
 * bzImage: Documentation/arch/x86/boot.rst, the 64-bit boot protocol.
 *
 * The file is the real-mode setup ((setup_sects + 1) sectors, the setup
 * header at 0x1f1) followed by the protected-mode kernel, whose 64-bit entry
 * is 0x200 bytes in. Since protocol 2.08 the header also locates the
 * compressed vmlinux (payload_offset/_length, relative to the protected-mode
 * part): unless told not to, bootvm decompresses it here and boots the ELF
 * inside directly, which saves the guest's decompressor (slow when guest
 * kernel code is emulated).
 */
#include <linux/elf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/decompress.h"
#include "vmm/timeline.h"
#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "util/log.h"
#include "util/size.h"
#include "vmm/config.h"
#include "vmm/memory.h"

#define SETUP_HDR_OFFSET	0x1f1
#define SETUP_SECT_SIZE		512
#define BZ_ENTRY64_OFFSET	0x200
#define BZ_MIN_VERSION		0x020c	/* 2.12: XLF_KERNEL_64 and a 64-bit entry */
/* Where the setup header must reach for the fields this loader reads (init_size). */
#define SETUP_HDR_MIN_END	(SETUP_HDR_OFFSET + offsetof(struct setup_header, init_size) + 4)
#define HOST_DECOMPRESS_MAX	(1ULL << 30)

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/*
 * Decompress the payload and describe the ELF inside. Returns 0 on success,
 * -1 after logging an error.
 */
static int bzimage_host_decompress(const struct loader *ld, struct kernel_image *k,
				   enum decompress_format fmt, const uint8_t *payload,
				   size_t payload_len)
{
	const char *name = decompress_name(fmt);
	uint64_t cap = ld->mem->ram_size < HOST_DECOMPRESS_MAX ? ld->mem->ram_size
							       : HOST_DECOMPRESS_MAX;
	/* Linux appends the uncompressed size (gzip: ISIZE); only a hint. */
	size_t hint = payload_len >= 4 ? get_le32(payload + payload_len - 4) : 0;
	struct timespec t0, t1;
	uint8_t *elf;
	size_t elf_size;
	const char *why;
	char what[32], sz[32];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	int ret = decompress_buffer(fmt, payload, payload_len, hint, (size_t)cap, &elf,
				    &elf_size, &why);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!ret)
		timeline_mark_oncef(TIMELINE_KERNEL_DECOMPRESSED, "%s, %zu bytes", name, elf_size);
	if (ret == DECOMPRESS_ERR_TOO_BIG) {
		log_error("kernel '%s': its %s payload decompresses to more than %s%s", ld->path,
			  name, size_format(cap, sz, sizeof(sz)),
			  cap < HOST_DECOMPRESS_MAX ? " (guest RAM): use a larger --memory" : "");
		return -1;
	}
	if (ret) {
		log_error("kernel '%s': cannot decompress its %s payload: %s", ld->path, name, why);
		return -1;
	}
	if (elf_size < SELFMAG || memcmp(elf, ELFMAG, SELFMAG)) {
		log_error("kernel '%s': its %s payload is not an ELF", ld->path, name);
		free(elf);
		return -1;
	}
	snprintf(what, sizeof(what), "%s payload: ", name);
	if (elf_parse(ld, elf, elf_size, what, &k->elf) < 0) {
		free(elf);
		return -1;
	}
	k->owned = elf;
	k->is_elf = true;
	k->start = k->elf.start;
	k->end = k->elf.end;

	if (k->elf.has_pvh) {
		k->entry = BOOT_ENTRY_PVH;
		k->entry_addr = k->elf.pvh_entry;
		/* start_info has no initrd limit; the kernel's own COMMAND_LINE_SIZE still holds. */
		k->have_hdr = false;
		k->initrd_end_max = UINT64_MAX;
	} else {
		if (!k->elf.entry_ok) {
			log_error("kernel '%s': %s payload: its entry point is not in a loaded segment",
				  ld->path, name);
			return -1;	/* k->owned is freed by the caller */
		}
		k->entry = BOOT_ENTRY_LINUX64;
		k->entry_addr = k->elf.entry;
	}
	double ms = ms_between(&t0, &t1);
	snprintf(k->desc, sizeof(k->desc),
		 "bzImage (protocol %u.%02u), %s payload decompressed on host (%s in %.*f ms), "
		 "%s entry at 0x%llx",
		 k->hdr.version >> 8, k->hdr.version & 0xff, name,
		 size_format(elf_size, sz, sizeof(sz)), ms < 10 ? 1 : 0, ms,
		 k->entry == BOOT_ENTRY_PVH ? "PVH" : "64-bit", (unsigned long long)k->entry_addr);
	return 0;
}

/*
 * Where the protected-mode part goes and the range the kernel needs, after
 * boot.rst's init_size algorithm: a relocatable kernel runs at
 * align_up(max(load address, pref_address), kernel_alignment), any other at
 * pref_address; it needs init_size bytes from there. So it is loaded there.
 */
static int bzimage_place(const struct loader *ld, struct kernel_image *k, uint64_t pm_size)
{
	const struct setup_header *h = &k->hdr;
	uint64_t pref = h->pref_address, load;
	char sz[32];

	/* Loading where it will run saves the kernel a copy of itself. */
	if (h->relocatable_kernel) {
		uint64_t align = h->kernel_alignment;
		if (!align || (align & (align - 1))) {
			log_error("kernel '%s': kernel_alignment 0x%llx is not a power of two",
				  ld->path, (unsigned long long)align);
			return -1;
		}
		load = pref > LAYOUT_KERNEL ? pref : LAYOUT_KERNEL;
		if (loader_add(load, align - 1, &load))
			load &= ~(align - 1);
		else
			load = UINT64_MAX;	/* fails the range check below */
	} else {
		load = pref ? pref : LAYOUT_KERNEL;
	}

	uint64_t need = h->init_size > pm_size ? h->init_size : pm_size;
	if (!loader_range_ok(ld, load, need)) {
		log_error("kernel '%s' needs %s of RAM at 0x%llx (init_size) but the guest RAM "
			  "a kernel may use is [0x%llx, 0x%llx): use a larger --memory",
			  ld->path, size_format(need, sz, sizeof(sz)), (unsigned long long)load,
			  (unsigned long long)LAYOUT_KERNEL, (unsigned long long)ld->low_end);
		return -1;
	}
	k->start = load;
	k->end = load + need;
	k->entry = BOOT_ENTRY_LINUX64;
	k->entry_addr = load + BZ_ENTRY64_OFFSET;
	return 0;
}

int bzimage_prepare(const struct loader *ld, const uint8_t *data, size_t size,
		    struct kernel_image *k)
{
	struct setup_header *h = &k->hdr;

	/* The header is 0x202 + the byte at 0x201 (the jump's offset) long, at most ours. */
	size_t hdr_end = 0x202 + (size > 0x201 ? data[0x201] : 0);
	if (hdr_end > SETUP_HDR_OFFSET + sizeof(*h))
		hdr_end = SETUP_HDR_OFFSET + sizeof(*h);
	if (hdr_end > size)
		hdr_end = size;
	if (hdr_end <= SETUP_HDR_OFFSET) {
		log_error("kernel '%s': not a bzImage or an ELF vmlinux", ld->path);
		return -1;
	}
	memset(h, 0, sizeof(*h));
	k->hdr_len = hdr_end - SETUP_HDR_OFFSET;
	memcpy(h, data + SETUP_HDR_OFFSET, k->hdr_len);
	k->have_hdr = true;

	if (h->version < BZ_MIN_VERSION) {
		log_error("kernel '%s': boot protocol %u.%02u is too old: bootvm needs 2.12 or "
			  "later with a 64-bit entry point", ld->path, h->version >> 8,
			  h->version & 0xff);
		return -1;
	}
	if (hdr_end < SETUP_HDR_MIN_END) {
		log_error("kernel '%s': its setup header ends at 0x%zx, before the protocol "
			  "2.12 fields (0x%zx)", ld->path, hdr_end, (size_t)SETUP_HDR_MIN_END);
		return -1;
	}
	if (!(h->xloadflags & XLF_KERNEL_64)) {
		log_error("kernel '%s' has no 64-bit entry point (32-bit only kernel)", ld->path);
		return -1;
	}

	unsigned int setup_sects = h->setup_sects ? h->setup_sects : 4;
	size_t pm_off = (size_t)(setup_sects + 1) * SETUP_SECT_SIZE;
	if (pm_off > size || size - pm_off <= BZ_ENTRY64_OFFSET) {
		log_error("kernel '%s' is truncated: %zu bytes, but its %u setup sectors and "
			  "64-bit entry need more than %zu", ld->path, size, setup_sects,
			  pm_off + BZ_ENTRY64_OFFSET);
		return -1;
	}
	size_t pm_size = size - pm_off;
	const uint8_t *pm = data + pm_off;

	k->cmdline_max = h->cmdline_size;
	k->initrd_end_max = (uint64_t)h->initrd_addr_max + 1;

	if (ld->cfg->host_decompress && h->payload_length) {
		if (h->payload_offset > pm_size || h->payload_length > pm_size - h->payload_offset) {
			log_error("kernel '%s': its payload (offset 0x%x, %u bytes) lies outside "
				  "the protected-mode part (%zu bytes)", ld->path, h->payload_offset,
				  h->payload_length, pm_size);
			return -1;
		}
		const uint8_t *payload = pm + h->payload_offset;
		enum decompress_format fmt = decompress_detect(payload, h->payload_length);
		if (decompress_supported(fmt))
			return bzimage_host_decompress(ld, k, fmt, payload, h->payload_length);
		log_info("kernel '%s': %s payload not decompressed on host; the kernel "
			 "decompresses itself", ld->path, decompress_name(fmt));
	}

	if (bzimage_place(ld, k, pm_size) < 0)
		return -1;
	k->blob = pm;
	k->blob_size = pm_size;
	k->blob_addr = k->start;
	snprintf(k->desc, sizeof(k->desc), "bzImage (protocol %u.%02u), 64-bit entry at 0x%llx",
		 h->version >> 8, h->version & 0xff, (unsigned long long)k->entry_addr);
	return 0;
}
