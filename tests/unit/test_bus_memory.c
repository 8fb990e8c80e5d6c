/* vmm/: the bounds-checked guest memory helpers and the I/O bus. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "util/log.h"
#include "vmm/bus.h"
#include "vmm/memory.h"

#include "helpers.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

static void quiet(enum log_level l, const char *m, void *o) { (void)l; (void)m; (void)o; }

static void test_mem_layout_small(void **state)
{
	struct guest_mem m;

	assert_int_equal(guest_mem_init(&m, 64 * MIB, 3 * GIB), 0);
	assert_int_equal(m.nr_regions, 1);
	assert_int_equal(guest_mem_low_end(&m), 64 * MIB);
	guest_mem_destroy(&m);
}

static void test_mem_layout_split(void **state)
{
	struct guest_mem m;

	/* NORESERVE: 8 GiB of address space costs nothing until touched. */
	assert_int_equal(guest_mem_init(&m, 8 * GIB, 3 * GIB), 0);
	assert_int_equal(m.nr_regions, 2);
	assert_int_equal(m.regions[0].gpa, 0);
	assert_int_equal(m.regions[0].size, 3 * GIB);
	assert_int_equal(m.regions[1].gpa, 4 * GIB);
	assert_int_equal(m.regions[1].size, 5 * GIB);
	/* The hole is not RAM; both sides are. */
	assert_non_null(guest_mem_ptr(&m, 3 * GIB - 8, 8));
	assert_null(guest_mem_ptr(&m, 3 * GIB - 8, 9));
	assert_null(guest_mem_ptr(&m, 3 * GIB, 1));
	assert_null(guest_mem_ptr(&m, 4 * GIB - 1, 1));
	assert_non_null(guest_mem_ptr(&m, 4 * GIB, 1));
	assert_non_null(guest_mem_ptr(&m, 9 * GIB - 1, 1));
	assert_null(guest_mem_ptr(&m, 9 * GIB - 1, 2));
	/* Host addresses: the high region follows the low one in the mapping. */
	assert_ptr_equal(guest_mem_ptr(&m, 4 * GIB, 1), m.base + 3 * GIB);
	guest_mem_destroy(&m);
}

static void test_mem_bounds_overflow(void **state)
{
	struct guest_mem m;
	uint8_t buf[16] = { 1, 2, 3 };

	assert_int_equal(guest_mem_init(&m, 16 * MIB, 3 * GIB), 0);
	assert_non_null(guest_mem_ptr(&m, 0, 16 * MIB));
	assert_null(guest_mem_ptr(&m, 0, 16 * MIB + 1));
	assert_null(guest_mem_ptr(&m, 1, UINT64_MAX));
	assert_null(guest_mem_ptr(&m, UINT64_MAX, 2));
	assert_null(guest_mem_ptr(&m, UINT64_MAX - 4096, 8192));
	assert_null(guest_mem_ptr(&m, 16 * MIB + 4096, 0));
	assert_non_null(guest_mem_ptr(&m, 16 * MIB, 0));	/* empty range at the end */

	assert_int_equal(guest_mem_write(&m, 16 * MIB - 3, buf, 3), 0);
	assert_int_equal(guest_mem_write(&m, 16 * MIB - 3, buf, 4), -1);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(guest_mem_read(&m, 16 * MIB - 3, buf, 3), 0);
	assert_int_equal(buf[2], 3);
	assert_int_equal(guest_mem_read(&m, UINT64_MAX - 1, buf, 4), -1);
	guest_mem_destroy(&m);
}

static void test_mem_rejects_odd_sizes(void **state)
{
	struct guest_mem m;

	log_set_sink(quiet, NULL);
	assert_int_equal(guest_mem_init(&m, 0, 3 * GIB), -1);
	assert_int_equal(guest_mem_init(&m, 16 * MIB + 1, 3 * GIB), -1);
	log_set_sink(NULL, NULL);
}

static void test_mem_resident(void **state)
{
	struct guest_mem m;

	assert_int_equal(guest_mem_init(&m, 16 * MIB, 3 * GIB), 0);
	assert_int_equal(guest_mem_resident(&m), 0);
	memset(guest_mem_ptr(&m, MIB, 3 * 4096), 1, 3 * 4096);
	assert_int_equal(guest_mem_resident(&m), 3 * 4096);
	guest_mem_destroy(&m);
}

struct fake_dev {
	uint64_t last_off, last_val;
	unsigned int last_size;
	int reads, writes;
};

static uint64_t fake_read(void *dev, uint64_t off, unsigned int size)
{
	struct fake_dev *d = dev;

	d->reads++;
	d->last_off = off;
	d->last_size = size;
	return 0x1122334455667788ULL;
}

static void fake_write(void *dev, uint64_t off, unsigned int size, uint64_t val)
{
	struct fake_dev *d = dev;

	d->writes++;
	d->last_off = off;
	d->last_size = size;
	d->last_val = val;
}

static const struct bus_ops fake_ops = { .read = fake_read, .write = fake_write };

static void test_bus_dispatch(void **state)
{
	struct bus bus;
	struct fake_dev a = { 0 }, b = { 0 };
	uint8_t data[8];

	bus_init(&bus, "pio");
	assert_int_equal(bus_register(&bus, 0x3f8, 8, "a", &fake_ops, &a), 0);
	assert_int_equal(bus_register(&bus, 0x60, 1, "b", &fake_ops, &b), 0);

	memset(data, 0, sizeof(data));
	data[0] = 0x41;
	assert_true(bus_access(&bus, 0x3f8, data, 1, true));
	assert_int_equal(a.writes, 1);
	assert_int_equal(a.last_off, 0);
	assert_int_equal(a.last_val, 0x41);

	assert_true(bus_access(&bus, 0x3fd, data, 2, false));
	assert_int_equal(a.last_off, 5);
	assert_int_equal(data[0], 0x88);
	assert_int_equal(data[1], 0x77);

	assert_true(bus_access(&bus, 0x60, data, 1, false));
	assert_int_equal(b.reads, 1);
	struct bus_range r;
	assert_true(bus_find(&bus, 0x3ff, &r));
	assert_ptr_equal(r.dev, &a);
	assert_false(bus_find(&bus, 0x400, &r));
	assert_false(bus_find(&bus, 0x3f7, &r));
	bus_destroy(&bus);
}

/* A device that moves or removes ranges from inside its own access (a BAR write). */
struct mover {
	struct bus *bus;
	uint64_t base;
	int calls;
};

static void mover_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	struct mover *m = dev;

	m->calls++;
	if (value == 1) {
		assert_int_equal(bus_move(m->bus, m->base, m->base + 0x1000), 0);
		m->base += 0x1000;
	} else if (value == 2) {
		assert_int_equal(bus_unregister(m->bus, m->base), 0);
	}
}

static const struct bus_ops mover_ops = { .write = mover_write };

static void test_bus_move_unregister(void **state)
{
	struct bus bus;
	struct mover m = { .bus = &bus, .base = 0x10000 };
	struct fake_dev other = { 0 };
	struct bus_range r;
	uint8_t data[4] = { 1 };

	log_set_sink(quiet, NULL);
	bus_init(&bus, "mmio");
	assert_int_equal(bus_register(&bus, 0x10000, 0x100, "bar", &mover_ops, &m), 0);
	assert_int_equal(bus_register(&bus, 0x12000, 0x100, "other", &fake_ops, &other), 0);

	/* The access that moves its own range does not deadlock; the old place is free. */
	assert_true(bus_access(&bus, 0x10000, data, 4, true));
	assert_int_equal(m.calls, 1);
	assert_false(bus_find(&bus, 0x10000, &r));
	assert_true(bus_find(&bus, 0x11000, &r));
	assert_int_equal(r.base, 0x11000);
	assert_int_equal(r.len, 0x100);

	/* Moving onto another range fails and leaves it where it was. */
	assert_int_equal(bus_move(&bus, 0x11000, 0x12080), -1);
	assert_true(bus_find(&bus, 0x11000, &r));
	assert_int_equal(bus_move(&bus, 0x5000, 0x6000), -1);

	data[0] = 2;
	assert_true(bus_access(&bus, 0x11000, data, 4, true));
	assert_false(bus_find(&bus, 0x11000, &r));
	assert_false(bus_access(&bus, 0x11000, data, 4, true));
	assert_int_equal(m.calls, 2);
	assert_int_equal(bus_unregister(&bus, 0x11000), -1);
	assert_true(bus_find(&bus, 0x12000, &r));
	bus_destroy(&bus);
	log_set_sink(NULL, NULL);
}

static void test_bus_unhandled_and_straddle(void **state)
{
	struct bus bus;
	struct fake_dev a = { 0 };
	uint8_t data[4] = { 0 };

	bus_init(&bus, "pio");
	assert_int_equal(bus_register(&bus, 0x600, 4, "pm", &fake_ops, &a), 0);

	assert_false(bus_access(&bus, 0x700, data, 2, false));
	assert_int_equal(data[0], 0xff);
	assert_int_equal(data[1], 0xff);
	assert_int_equal(bus.unhandled, 1);
	assert_false(bus_access(&bus, 0x700, data, 1, true));
	assert_int_equal(bus.unhandled, 2);

	/* A 4-byte access at 0x602 reaches past the range: the device never sees it. */
	assert_false(bus_access(&bus, 0x602, data, 4, false));
	assert_int_equal(a.reads, 0);
	assert_true(bus_access(&bus, 0x602, data, 2, false));
	assert_int_equal(a.reads, 1);
}

/* bus_is_free() agrees with bus_register() and logs nothing. */
static void test_bus_is_free(void **state)
{
	struct bus bus;
	struct fake_dev a;
	struct helper_log log = { 0 };

	(void)state;
	bus_init(&bus, "mmio");
	assert_int_equal(bus_register(&bus, 0x100, 0x10, "a", &fake_ops, &a), 0);
	log_set_sink(helper_log_sink, &log);
	assert_false(bus_is_free(&bus, 0x10f, 1));
	assert_false(bus_is_free(&bus, 0xf8, 0x10));
	assert_false(bus_is_free(&bus, 0x0, 0x1000));		/* covers it */
	assert_false(bus_is_free(&bus, 0x200, 0));		/* empty */
	assert_false(bus_is_free(&bus, UINT64_MAX, 2));		/* wraps */
	assert_false(bus_is_free(&bus, UINT64_MAX - 0xfff, 0x1000));	/* ends at 2^64 */
	assert_true(bus_is_free(&bus, 0x110, 1));
	assert_true(bus_is_free(&bus, 0xf0, 0x10));
	assert_true(bus_is_free(&bus, UINT64_MAX - 0xfff, 0xfff));
	log_set_sink(NULL, NULL);
	assert_int_equal(log.errors + log.warnings, 0);
	bus_destroy(&bus);
}

static void test_bus_register_errors(void **state)
{
	struct bus bus;
	struct fake_dev a;

	log_set_sink(quiet, NULL);
	bus_init(&bus, "pio");
	assert_int_equal(bus_register(&bus, 0x100, 0x10, "a", &fake_ops, &a), 0);
	assert_int_equal(bus_register(&bus, 0x10f, 1, "overlap-end", &fake_ops, &a), -1);
	assert_int_equal(bus_register(&bus, 0xf8, 0x10, "overlap-start", &fake_ops, &a), -1);
	assert_int_equal(bus_register(&bus, 0x200, 0, "empty", &fake_ops, &a), -1);
	assert_int_equal(bus_register(&bus, UINT64_MAX, 2, "wraps", &fake_ops, &a), -1);
	assert_int_equal(bus_register(&bus, 0x110, 1, "adjacent", &fake_ops, &a), 0);
	for (unsigned int i = bus.nr; i < BUS_MAX_RANGES; i++)
		assert_int_equal(bus_register(&bus, 0x1000 + i, 1, "fill", &fake_ops, &a), 0);
	assert_int_equal(bus_register(&bus, 0x9000, 1, "full", &fake_ops, &a), -1);
	/* Still sorted and searchable after all the inserts. */
	for (unsigned int i = 1; i < bus.nr; i++)
		assert_true(bus.ranges[i - 1].base < bus.ranges[i].base);
	struct bus_range r;
	assert_true(bus_find(&bus, 0x1000 + 40, &r));
	log_set_sink(NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mem_layout_small),
		cmocka_unit_test(test_mem_layout_split),
		cmocka_unit_test(test_mem_bounds_overflow),
		cmocka_unit_test(test_mem_rejects_odd_sizes),
		cmocka_unit_test(test_mem_resident),
		cmocka_unit_test(test_bus_dispatch),
		cmocka_unit_test(test_bus_unhandled_and_straddle),
		cmocka_unit_test(test_bus_register_errors),
		cmocka_unit_test(test_bus_is_free),
		cmocka_unit_test(test_bus_move_unregister),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
