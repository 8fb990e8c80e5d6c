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
	pthread_rwlock_init(&bus->lock, NULL);
}

void bus_destroy(struct bus *bus)
{
	pthread_rwlock_destroy(&bus->lock);
}

/* Insert r in order; the caller holds the lock for writing. */
static int bus_insert_locked(struct bus *bus, const struct bus_range *nr)
{
	unsigned int i;

	if (!nr->len || nr->base + nr->len < nr->base) {
		log_error("%s: bad %s range for %s", bus->name, nr->len ? "wrapping" : "empty",
			  nr->name);
		return -1;
	}
	if (bus->nr == BUS_MAX_RANGES) {
		log_error("%s: no room for %s", bus->name, nr->name);
		return -1;
	}
	for (i = 0; i < bus->nr; i++) {
		const struct bus_range *r = &bus->ranges[i];
		if (nr->base < r->base + r->len && r->base < nr->base + nr->len) {
			log_error("%s: %s at 0x%llx overlaps %s", bus->name, nr->name,
				  (unsigned long long)nr->base, r->name);
			return -1;
		}
		if (r->base > nr->base)
			break;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->nr - i) * sizeof(bus->ranges[0]));
	bus->ranges[i] = *nr;
	bus->nr++;
	return 0;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const char *name,
		 const struct bus_ops *ops, void *dev)
{
	struct bus_range r = { base, len, name, ops, dev };
	int ret;

	pthread_rwlock_wrlock(&bus->lock);
	ret = bus_insert_locked(bus, &r);
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

/* Index of the range starting exactly at base, or -1; the caller holds the lock. */
static int bus_index_locked(const struct bus *bus, uint64_t base)
{
	for (unsigned int i = 0; i < bus->nr; i++)
		if (bus->ranges[i].base == base)
			return (int)i;
	return -1;
}

static void bus_remove_locked(struct bus *bus, unsigned int i)
{
	memmove(&bus->ranges[i], &bus->ranges[i + 1], (bus->nr - i - 1) * sizeof(bus->ranges[0]));
	bus->nr--;
}

int bus_unregister(struct bus *bus, uint64_t base)
{
	int i;

	pthread_rwlock_wrlock(&bus->lock);
	i = bus_index_locked(bus, base);
	if (i >= 0)
		bus_remove_locked(bus, (unsigned int)i);
	pthread_rwlock_unlock(&bus->lock);
	if (i < 0)
		log_error("%s: nothing registered at 0x%llx", bus->name, (unsigned long long)base);
	return i < 0 ? -1 : 0;
}

int bus_move(struct bus *bus, uint64_t old_base, uint64_t new_base)
{
	struct bus_range r;
	int i, ret = -1;

	pthread_rwlock_wrlock(&bus->lock);
	i = bus_index_locked(bus, old_base);
	if (i < 0) {
		log_error("%s: nothing registered at 0x%llx", bus->name, (unsigned long long)old_base);
		goto out;
	}
	r = bus->ranges[i];
	bus_remove_locked(bus, (unsigned int)i);
	r.base = new_base;
	ret = bus_insert_locked(bus, &r);
	if (ret < 0) {
		r.base = old_base;	/* it fitted there a moment ago */
		bus_insert_locked(bus, &r);
	}
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

static const struct bus_range *bus_find_locked(const struct bus *bus, uint64_t addr)
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

bool bus_is_free(struct bus *bus, uint64_t base, uint64_t len)
{
	bool free = len && base + len > base;	/* as bus_register() requires */

	pthread_rwlock_rdlock(&bus->lock);
	for (unsigned int i = 0; free && i < bus->nr; i++) {
		const struct bus_range *r = &bus->ranges[i];

		if (base < r->base + r->len && r->base < base + len)
			free = false;
	}
	pthread_rwlock_unlock(&bus->lock);
	return free;
}

bool bus_find(struct bus *bus, uint64_t addr, struct bus_range *out)
{
	const struct bus_range *r;

	pthread_rwlock_rdlock(&bus->lock);
	r = bus_find_locked(bus, addr);
	if (r)
		*out = *r;
	pthread_rwlock_unlock(&bus->lock);
	return r != NULL;
}

bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, unsigned int size,
		bool is_write)
{
	struct bus_range range;
	const struct bus_range *r = bus_find(bus, addr, &range) ? &range : NULL;
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
