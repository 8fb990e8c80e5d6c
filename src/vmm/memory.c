#include "vmm/memory.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>

#include "util/log.h"
#include "util/size.h"

#define GIB (1ULL << 30)
#define FOUR_GIB (4ULL << 30)

int guest_mem_init(struct guest_mem *m, uint64_t ram_size, uint64_t hole_start)
{
	char sz[32];

	memset(m, 0, sizeof(*m));
	if (!ram_size || (ram_size & 0xfff)) {
		log_error("guest memory size %llu is not a non-zero multiple of 4 KiB",
			  (unsigned long long)ram_size);
		return -1;
	}

	/* NORESERVE: the guest only costs what it touches. */
	void *p = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		log_error("cannot allocate %s of guest memory: %s",
			  size_format(ram_size, sz, sizeof(sz)), strerror(errno));
		return -1;
	}
	/* Guest RAM never belongs in a core dump of bootvm or in a fork. */
	madvise(p, ram_size, MADV_DONTDUMP);
	madvise(p, ram_size, MADV_DONTFORK);

	m->base = p;
	m->ram_size = ram_size;
	m->regions[0] = (struct guest_region){ .gpa = 0, .host = p,
		.size = ram_size < hole_start ? ram_size : hole_start };
	m->nr_regions = 1;
	if (ram_size > hole_start) {
		m->regions[1] = (struct guest_region){
			.gpa = FOUR_GIB,
			.size = ram_size - hole_start,
			.host = m->base + hole_start,
		};
		m->nr_regions = 2;
	}
	return 0;
}

void guest_mem_destroy(struct guest_mem *m)
{
	if (m->base)
		munmap(m->base, m->ram_size);
	memset(m, 0, sizeof(*m));
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < m->nr_regions; i++) {
		const struct guest_region *r = &m->regions[i];

		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		if (off > r->size || len > r->size - off)
			continue;
		return r->host + off;
	}
	return NULL;
}

int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len)
{
	const void *src = guest_mem_ptr(m, gpa, len);

	if (!src)
		return -1;
	memcpy(dst, src, len);
	return 0;
}

int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = guest_mem_ptr(m, gpa, len);

	if (!dst)
		return -1;
	memcpy(dst, src, len);
	return 0;
}

uint64_t guest_mem_low_end(const struct guest_mem *m)
{
	return m->nr_regions ? m->regions[0].size : 0;
}

uint64_t guest_mem_resident(const struct guest_mem *m)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t pages = (m->ram_size + (uint64_t)page - 1) / (uint64_t)page;
	uint64_t resident = 0;
	unsigned char vec[4096];

	/* In chunks so a large guest does not need a large vector. */
	for (uint64_t first = 0; first < pages; first += sizeof(vec)) {
		uint64_t n = pages - first < sizeof(vec) ? pages - first : sizeof(vec);
		if (mincore(m->base + first * (uint64_t)page, n * (uint64_t)page, vec) < 0)
			return 0;
		for (uint64_t i = 0; i < n; i++)
			resident += vec[i] & 1;
	}
	return resident * (uint64_t)page;
}
