#include "vmm/bus.h"

#include <string.h>

#include "util/log.h"

/*
 * Unclaimed accesses logged per bus (at debug level): a guest polling an
 * absent port or address in a loop must not flood stderr. The rest are only
 * counted (--stats).
 */
#define BUS_UNHANDLED_LOG_MAX 32

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const char *name,
		 const struct bus_ops *ops, void *dev)
{
	unsigned int i;

	if (!len || base + len < base) {
		log_error("%s: bad %s range for %s", bus->name, len ? "wrapping" : "empty", name);
		return -1;
	}
	if (bus->nr == BUS_MAX_RANGES) {
		log_error("%s: no room for %s", bus->name, name);
		return -1;
	}
	for (i = 0; i < bus->nr; i++) {
		const struct bus_range *r = &bus->ranges[i];
		if (base < r->base + r->len && r->base < base + len) {
			log_error("%s: %s at 0x%llx overlaps %s", bus->name, name,
				  (unsigned long long)base, r->name);
			return -1;
		}
		if (r->base > base)
			break;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->nr - i) * sizeof(bus->ranges[0]));
	bus->ranges[i] = (struct bus_range){ base, len, name, ops, dev };
	bus->nr++;
	return 0;
}

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr)
{
	unsigned int lo = 0, hi = bus->nr;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, unsigned int size,
		bool is_write)
{
	const struct bus_range *r = bus_find(bus, addr);
	uint64_t v = 0;

	if (size > 8)
		size = 8;
	/* Devices may trust offset + size <= len: a straddling access is nobody's. */
	if (r && addr - r->base + size > r->len)
		r = NULL;
	if (!r) {
		uint64_t n = __atomic_add_fetch(&bus->unhandled, 1, __ATOMIC_RELAXED);

		if (!is_write)
			memset(data, 0xff, size);
		if (n <= BUS_UNHANDLED_LOG_MAX)
			log_debug("%s: unhandled %s of %u bytes at 0x%llx%s", bus->name,
				  is_write ? "write" : "read", size, (unsigned long long)addr,
				  n == BUS_UNHANDLED_LOG_MAX ? " (further ones are only counted)" : "");
		return false;
	}
	if (is_write) {
		memcpy(&v, data, size);		/* x86 host: little endian */
		if (r->ops->write)
			r->ops->write(r->dev, addr - r->base, size, v);
	} else {
		v = r->ops->read ? r->ops->read(r->dev, addr - r->base, size) : ~0ULL;
		memcpy(data, &v, size);
	}
	return true;
}
