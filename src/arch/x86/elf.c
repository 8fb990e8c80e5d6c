/*
 * ELF vmlinux: PT_LOAD segments go to their physical addresses. A
 * XEN_ELFNOTE_PHYS32_ENTRY note makes it a PVH kernel; without one it is
 * entered at e_entry through the 64-bit boot protocol.
 *
 * The image may be a file or a decompressed bzImage payload: every offset
 * and size in it is checked against the buffer before use.
 */
#include <linux/elf.h>
#include <stdio.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "arch/x86/pvh.h"
#include "util/log.h"
#include "util/prefault.h"
#include "vmm/memory.h"

static uint64_t get_le(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static void elf_phdr(const struct elf_image *img, const Elf64_Ehdr *eh, unsigned int i,
		     Elf64_Phdr *ph)
{
	/* The buffer need not be aligned for Elf64_Phdr: copy. */
	memcpy(ph, img->data + eh->e_phoff + (uint64_t)i * sizeof(*ph), sizeof(*ph));
}

/* Look for the PVH entry note among the notes in a PT_NOTE segment. */
static int elf_parse_notes(const struct loader *ld, const char *what, unsigned int idx,
			   const uint8_t *seg, uint64_t len, uint64_t align,
			   struct elf_image *img)
{
	uint64_t off = 0;

	while (len - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		memcpy(&nh, seg + off, sizeof(nh));
		off += sizeof(nh);

		uint64_t name_len = ((uint64_t)nh.n_namesz + align - 1) & ~(align - 1);
		if (name_len > len - off || nh.n_descsz > len - off - name_len) {
			log_error("kernel '%s': %smalformed ELF note in segment %u (name %u "
				  "bytes, value %u bytes, %llu bytes left)", ld->path, what, idx,
				  nh.n_namesz, nh.n_descsz, (unsigned long long)(len - off));
			return -1;
		}
		const uint8_t *name = seg + off;
		const uint8_t *desc = seg + off + name_len;
		uint64_t desc_len = ((uint64_t)nh.n_descsz + align - 1) & ~(align - 1);
		off += name_len;
		/* The last note's value may go unpadded. */
		off += desc_len < len - off ? desc_len : len - off;

		if (nh.n_namesz != 4 || memcmp(name, "Xen", 4) ||
		    nh.n_type != XEN_ELFNOTE_PHYS32_ENTRY)
			continue;
		if (nh.n_descsz != 4 && nh.n_descsz != 8) {
			log_error("kernel '%s': %sits PVH entry note has a %u-byte value "
				  "(expected 4 or 8)", ld->path, what, nh.n_descsz);
			return -1;
		}
		if (!img->has_pvh) {
			img->has_pvh = true;
			img->pvh_entry = get_le(desc, nh.n_descsz);
		}
	}
	return 0;
}

/* Whether addr lies in a loaded segment, by physical or (then) virtual address. */
static bool elf_find_entry(const struct elf_image *img, const Elf64_Ehdr *eh, uint64_t addr,
			   bool virt, uint64_t *phys)
{
	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		elf_phdr(img, eh, i, &ph);
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		uint64_t base = virt ? ph.p_vaddr : ph.p_paddr;
		if (addr >= base && addr - base < ph.p_memsz) {
			*phys = ph.p_paddr + (addr - base);
			return true;
		}
	}
	return false;
}

int elf_parse(const struct loader *ld, const uint8_t *data, size_t size, const char *what,
	      struct elf_image *img)
{
	Elf64_Ehdr eh;
	unsigned int nr_load = 0;
	uint64_t note_bytes = 0;

	memset(img, 0, sizeof(*img));
	img->data = data;
	img->size = size;
	img->start = UINT64_MAX;

	if (size < sizeof(eh)) {
		log_error("kernel '%s': %sELF header truncated (%zu bytes)", ld->path, what, size);
		return -1;
	}
	memcpy(&eh, data, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB) {
		log_error("kernel '%s': %snot a 64-bit little-endian ELF", ld->path, what);
		return -1;
	}
	if (eh.e_machine != EM_X86_64) {
		log_error("kernel '%s': %san ELF for machine %u, not x86-64", ld->path, what,
			  eh.e_machine);
		return -1;
	}
	if (eh.e_phentsize != sizeof(Elf64_Phdr)) {
		log_error("kernel '%s': %sprogram header entries are %u bytes, not %zu", ld->path,
			  what, eh.e_phentsize, sizeof(Elf64_Phdr));
		return -1;
	}
	if (!eh.e_phnum || eh.e_phoff > size ||
	    (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > size - eh.e_phoff) {
		log_error("kernel '%s': %s%u program headers at offset 0x%llx do not fit in its "
			  "%zu bytes", ld->path, what, eh.e_phnum,
			  (unsigned long long)eh.e_phoff, size);
		return -1;
	}

	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		uint64_t end;

		elf_phdr(img, &eh, i, &ph);
		if (ph.p_type != PT_LOAD && ph.p_type != PT_NOTE)
			continue;
		if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset) {
			log_error("kernel '%s': %ssegment %u (0x%llx bytes at offset 0x%llx) lies "
				  "outside its %zu bytes", ld->path, what, i,
				  (unsigned long long)ph.p_filesz, (unsigned long long)ph.p_offset,
				  size);
			return -1;
		}
		if (ph.p_type == PT_NOTE) {
			/*
			 * No more note bytes than the file has: 65535 note segments over
			 * the same megabytes of tiny notes would take hours to scan.
			 */
			note_bytes += ph.p_filesz;
			if (note_bytes > size) {
				log_error("kernel '%s': %sits note segments overlap: %llu bytes of "
					  "notes up to segment %u, in a file of %zu bytes", ld->path, what,
					  (unsigned long long)note_bytes, i, size);
				return -1;
			}
			if (elf_parse_notes(ld, what, i, data + ph.p_offset, ph.p_filesz,
					    ph.p_align == 8 ? 8 : 4, img) < 0)
				return -1;
			continue;
		}
		if (ph.p_filesz > ph.p_memsz) {
			log_error("kernel '%s': %ssegment %u has more bytes in the file (0x%llx) "
				  "than in memory (0x%llx)", ld->path, what, i,
				  (unsigned long long)ph.p_filesz, (unsigned long long)ph.p_memsz);
			return -1;
		}
		if (!ph.p_memsz)
			continue;
		if (!loader_range_ok(ld, ph.p_paddr, ph.p_memsz)) {
			bool wraps = !loader_add(ph.p_paddr, ph.p_memsz, &end);
			log_error("kernel '%s': %ssegment %u at 0x%llx (0x%llx bytes) is outside the "
				  "guest RAM a kernel may use, [0x%llx, 0x%llx)%s", ld->path, what, i,
				  (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_memsz,
				  (unsigned long long)LAYOUT_KERNEL, (unsigned long long)ld->low_end,
				  !wraps && ph.p_paddr >= LAYOUT_KERNEL && end <= LAYOUT_MMIO_HOLE_START
				  ? ": use a larger --memory" : "");
			return -1;
		}
		end = ph.p_paddr + ph.p_memsz;
		if (ph.p_paddr < img->start)
			img->start = ph.p_paddr;
		if (end > img->end)
			img->end = end;
		nr_load++;
	}
	if (!nr_load) {
		log_error("kernel '%s': %sno loadable segments", ld->path, what);
		return -1;
	}

	if (img->has_pvh) {
		uint64_t phys;
		if (!elf_find_entry(img, &eh, img->pvh_entry, false, &phys)) {
			log_error("kernel '%s': %sits PVH entry 0x%llx is not in a loaded segment",
				  ld->path, what, (unsigned long long)img->pvh_entry);
			return -1;
		}
	}
	/* Linux's e_entry is physical (phys_startup_64); others may give a virtual one. */
	img->entry_ok = elf_find_entry(img, &eh, eh.e_entry, false, &img->entry) ||
			elf_find_entry(img, &eh, eh.e_entry, true, &img->entry);
	return 0;
}

void elf_copy(const struct loader *ld, const struct elf_image *img)
{
	Elf64_Ehdr eh;

	memcpy(&eh, img->data, sizeof(eh));
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		elf_phdr(img, &eh, i, &ph);
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		/* elf_parse() checked the ranges. */
		uint8_t *dst = guest_mem_ptr(ld->mem, ph.p_paddr, ph.p_memsz);
		prefault_write(dst, ph.p_filesz);
		memcpy(dst, img->data + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
}

int elf_prepare(const struct loader *ld, const uint8_t *data, size_t size,
		struct kernel_image *k)
{
	if (elf_parse(ld, data, size, "", &k->elf) < 0)
		return -1;
	k->is_elf = true;
	k->start = k->elf.start;
	k->end = k->elf.end;
	k->cmdline_max = LOADER_ELF_CMDLINE_MAX;
	k->initrd_end_max = UINT64_MAX;
	k->have_hdr = false;
	if (k->elf.has_pvh) {
		k->entry = BOOT_ENTRY_PVH;
		k->entry_addr = k->elf.pvh_entry;
	} else {
		if (!k->elf.entry_ok) {
			log_error("kernel '%s': its entry point is not in a loaded segment", ld->path);
			return -1;
		}
		k->entry = BOOT_ENTRY_LINUX64;
		k->entry_addr = k->elf.entry;
	}
	snprintf(k->desc, sizeof(k->desc), "ELF vmlinux, %s entry at 0x%llx",
		 k->entry == BOOT_ENTRY_PVH ? "PVH" : "64-bit", (unsigned long long)k->entry_addr);
	return 0;
}
