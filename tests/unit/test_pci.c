/*
 * pci/pci.c: the host bridge's configuration space through mechanism #1
 * and ECAM, BAR placement, sizing and moves on the MMIO bus, the command
 * register, absent devices, the capability list, read-only fields, INTx,
 * reset, hostile configuration writes, and the AML (iasl and acpiexec must
 * take it without a complaint).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <linux/pci_regs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pci_env.h"
#include "helpers.h"
#include "util/aml.h"

/* ---- a test device: records what reaches its BARs ---- */

struct fake {
	struct pci_dev *pci;
	uint64_t last_off;
	unsigned int last_size;
	uint64_t last_value;
	int reads, writes;
	int maps, unmaps;
	uint64_t mapped_at[PCI_NUM_BARS];
	bool mapped[PCI_NUM_BARS];
	int resets;
};

static uint64_t fake_read(void *opaque, uint64_t off, unsigned int size)
{
	struct fake *f = opaque;

	f->reads++;
	f->last_off = off;
	f->last_size = size;
	return 0x1234;
}

static void fake_write(void *opaque, uint64_t off, unsigned int size, uint64_t v)
{
	struct fake *f = opaque;

	f->writes++;
	f->last_off = off;
	f->last_size = size;
	f->last_value = v;
}

static const struct bus_ops fake_ops = { .read = fake_read, .write = fake_write };

static void fake_map(void *opaque, unsigned int bar, bool mapped, uint64_t addr)
{
	struct fake *f = opaque;

	if (mapped) {
		assert_false(f->mapped[bar]);
		f->maps++;
	} else {
		assert_true(f->mapped[bar]);
		assert_int_equal(f->mapped_at[bar], addr);
		f->unmaps++;
	}
	f->mapped[bar] = mapped;
	f->mapped_at[bar] = addr;
}

static void fake_reset(void *opaque)
{
	((struct fake *)opaque)->resets++;
}

/* A device with a 64-bit 16 KiB BAR 0 and a 32-bit 4 KiB BAR 2, pin A. */
static void fake_add(struct pci_env *e, struct fake *f, const char *name)
{
	struct pci_dev_info info = {
		.name = name, .vendor_id = 0x1af4, .device_id = 0x10f0,
		.subsys_vendor_id = 0x1af4, .subsys_id = 0x77, .class_code = 0xff0000,
		.revision = 3, .int_pin = 1, .reset = fake_reset, .opaque = f,
	};

	memset(f, 0, sizeof(*f));
	f->pci = pci_dev_add(e->host, &info);
	assert_non_null(f->pci);
	assert_int_equal(pci_dev_add_bar(f->pci, 0, 0x4000, PCI_BAR_MEM64, &fake_ops, f, fake_map), 0);
	assert_int_equal(pci_dev_add_bar(f->pci, 2, 0x1000, 0, &fake_ops, f, fake_map), 0);
}

/* ---- config space through both mechanisms ---- */

static void test_host_bridge(void **state)
{
	struct pci_env e;

	(void)state;
	env_init(&e);
	assert_int_equal(env_conf1_read(&e, 0, PCI_VENDOR_ID, 4),
			 PCI_HOST_DEVICE_ID << 16 | PCI_HOST_VENDOR_ID);
	assert_int_equal(env_ecam_read(&e, 0, PCI_VENDOR_ID, 4),
			 PCI_HOST_DEVICE_ID << 16 | PCI_HOST_VENDOR_ID);
	assert_int_equal(env_conf1_read(&e, 0, PCI_CLASS_REVISION, 4) >> 8, 0x060000);
	assert_int_equal(env_ecam_read(&e, 0, PCI_CLASS_DEVICE, 2), 0x0600);
	assert_int_equal(env_conf1_read(&e, 0, PCI_HEADER_TYPE, 1), PCI_HEADER_TYPE_NORMAL);
	/* Sub-dword reads at every offset of the data port. */
	assert_int_equal(env_conf1_read(&e, 0, 1, 1), PCI_HOST_VENDOR_ID >> 8);
	assert_int_equal(env_conf1_read(&e, 0, 2, 2), PCI_HOST_DEVICE_ID);
	assert_int_equal(env_conf1_read(&e, 0, 3, 1), PCI_HOST_DEVICE_ID >> 8);
	/* No BARs, no capabilities, no interrupt pin. */
	for (unsigned int r = PCI_BASE_ADDRESS_0; r <= PCI_BASE_ADDRESS_5; r += 4) {
		env_conf1_write(&e, 0, r, 4, 0xffffffff);
		assert_int_equal(env_conf1_read(&e, 0, r, 4), 0);
	}
	assert_int_equal(env_conf1_read(&e, 0, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
	assert_int_equal(env_conf1_read(&e, 0, PCI_INTERRUPT_PIN, 1), 0);
	env_fini(&e);
}

static void test_absent_and_malformed(void **state)
{
	struct pci_env e;
	uint8_t d[4];

	(void)state;
	env_init(&e);
	/* Empty slots, other functions and other buses read all ones. */
	for (unsigned int slot = 1; slot < 32; slot++) {
		assert_int_equal(env_conf1_read(&e, slot, 0, 4), 0xffffffff);
		assert_int_equal(env_ecam_read(&e, slot, 0, 4), 0xffffffff);
		assert_int_equal(env_ecam_read(&e, slot, 0x100, 4), 0xffffffff);
	}
	assert_int_equal(env_ecam_read(&e, 0, (1 << 12) | 0, 4), 0xffffffff);	/* fn 1 */
	assert_int_equal(env_conf1_read(&e, 0, 0, 2), 0x1b36);
	memset(d, 0, 4);
	uint32_t a = 0x80000000U | 1 << 8;	/* fn 1 */
	bus_access(&e.pio, 0xcf8, (uint8_t *)&a, 4, true);
	bus_access(&e.pio, 0xcfc, d, 4, false);
	assert_memory_equal(d, "\xff\xff\xff\xff", 4);
	a = 0x80000000U | 1 << 16;		/* bus 1 */
	bus_access(&e.pio, 0xcf8, (uint8_t *)&a, 4, true);
	bus_access(&e.pio, 0xcfc, d, 4, false);
	assert_memory_equal(d, "\xff\xff\xff\xff", 4);
	a = 0;					/* enable bit clear */
	bus_access(&e.pio, 0xcf8, (uint8_t *)&a, 4, true);
	bus_access(&e.pio, 0xcfc, d, 4, false);
	assert_memory_equal(d, "\xff\xff\xff\xff", 4);

	/* The address register keeps only its defined bits; byte writes do not reach it. */
	a = 0xffffffff;
	bus_access(&e.pio, 0xcf8, (uint8_t *)&a, 4, true);
	d[0] = 1;
	bus_access(&e.pio, 0xcfb, d, 1, true);
	bus_access(&e.pio, 0xcf8, (uint8_t *)&a, 4, false);
	assert_int_equal(a, 0x80fffffc);

	/* Misaligned or straddling accesses: all ones, writes dropped. */
	assert_int_equal(pci_host_config_read(e.host, 0, 1, 2), 0xffff);
	assert_int_equal(pci_host_config_read(e.host, 0, 2, 4), 0xffffffff);
	assert_int_equal(pci_host_config_read(e.host, 0, 0, 3), 0xffffffff);
	assert_int_equal(pci_host_config_read(e.host, 0, 4096, 4), 0xffffffff);
	assert_int_equal(pci_host_config_read(e.host, 99, 0, 4), 0xffffffff);
	env_conf1_write(&e, 0, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	a = 0x80000000U | PCI_COMMAND;
	bus_access(&e.pio, 0xcf8, (uint8_t *)&a, 4, true);
	uint32_t v = 0;
	bus_access(&e.pio, 0xcfd, (uint8_t *)&v, 4, true);	/* straddles the dword */
	assert_int_equal(env_conf1_read(&e, 0, PCI_COMMAND, 2), PCI_COMMAND_MEMORY);
	/* Extended configuration space of a present (conventional) function reads 0. */
	assert_int_equal(env_ecam_read(&e, 0, 0x100, 4), 0);
	assert_int_equal(env_ecam_read(&e, 0, 0xffc, 4), 0);
	assert_int_equal(env_mmio_read(&e, ENV_ECAM, 8), ~0ULL);	/* 8 bytes: not a config access */
	env_ecam_write(&e, 0, 0x100, 4, 0x12345678);
	assert_int_equal(env_ecam_read(&e, 0, 0x100, 4), 0);
	env_fini(&e);
}

static void test_read_only_fields(void **state)
{
	struct pci_env e;
	struct fake f;
	uint8_t before[256];

	(void)state;
	env_init(&e);
	fake_add(&e, &f, "fake0");
	unsigned int s = pci_dev_slot(f.pci);
	assert_int_equal(s, 1);
	assert_int_equal(env_ecam_read(&e, s, PCI_SUBSYSTEM_ID, 2), 0x77);
	assert_int_equal(env_ecam_read(&e, s, PCI_REVISION_ID, 1), 3);

	for (unsigned int r = 0; r < 256; r += 4)
		memcpy(before + r, &(uint32_t){ env_ecam_read(&e, s, r, 4) }, 4);
	/* IDs, class, header type, status, pin, capability pointer: all read-only. */
	static const unsigned int ro[] = {
		PCI_VENDOR_ID, PCI_DEVICE_ID, PCI_STATUS, PCI_REVISION_ID, PCI_CLASS_PROG,
		PCI_CLASS_DEVICE, PCI_HEADER_TYPE, PCI_BIST, PCI_SUBSYSTEM_VENDOR_ID,
		PCI_SUBSYSTEM_ID, PCI_ROM_ADDRESS, PCI_CAPABILITY_LIST, PCI_INTERRUPT_PIN,
		PCI_CARDBUS_CIS, PCI_MIN_GNT, PCI_MAX_LAT,
	};
	for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
		unsigned int r = ro[i];
		unsigned int size = r % 4 == 0 ? 4 : r % 2 == 0 ? 2 : 1;
		uint32_t old = env_ecam_read(&e, s, r, size);

		env_ecam_write(&e, s, r, size, ~old);
		env_conf1_write(&e, s, r, size, ~old);
		assert_int_equal(env_ecam_read(&e, s, r, size), old);
	}
	/* The command register takes only its defined bits. */
	env_conf1_write(&e, s, PCI_COMMAND, 2, 0xffff);
	assert_int_equal(env_conf1_read(&e, s, PCI_COMMAND, 2),
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |
				 PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
	env_conf1_write(&e, s, PCI_COMMAND, 2, 0);
	/* Cache line, latency timer and interrupt line are the guest's. */
	env_ecam_write(&e, s, PCI_CACHE_LINE_SIZE, 1, 0x10);
	env_ecam_write(&e, s, PCI_LATENCY_TIMER, 1, 0x40);
	env_ecam_write(&e, s, PCI_INTERRUPT_LINE, 1, 0x0b);
	assert_int_equal(env_ecam_read(&e, s, PCI_CACHE_LINE_SIZE, 2), 0x4010);
	assert_int_equal(env_ecam_read(&e, s, PCI_INTERRUPT_LINE, 1), 0x0b);
	/* Nothing else changed. */
	for (unsigned int r = 0; r < 256; r += 4) {
		uint32_t now = env_ecam_read(&e, s, r, 4);

		if (r == PCI_CACHE_LINE_SIZE || r == PCI_INTERRUPT_LINE)
			continue;
		assert_memory_equal(&now, before + r, 4);
	}
	env_fini(&e);
}

/* ---- BARs ---- */

static void test_bar_placement_and_sizing(void **state)
{
	struct pci_env e;
	struct fake f, g;

	(void)state;
	env_init(&e);
	fake_add(&e, &f, "fake0");
	fake_add(&e, &g, "fake1");
	unsigned int s = pci_dev_slot(f.pci);

	/* Placed inside the windows, aligned to their sizes, not overlapping. */
	uint64_t a0 = pci_dev_bar_addr(f.pci, 0), a2 = pci_dev_bar_addr(f.pci, 2);
	uint64_t b0 = pci_dev_bar_addr(g.pci, 0), b2 = pci_dev_bar_addr(g.pci, 2);
	assert_true(a0 >= ENV_MMIO64 && a0 + 0x4000 <= ENV_MMIO64 + ENV_MMIO64_SIZE);
	assert_true(b0 >= ENV_MMIO64 && b0 % 0x4000 == 0 && a0 % 0x4000 == 0);
	assert_true(a0 + 0x4000 <= b0 || b0 + 0x4000 <= a0);
	assert_true(a2 >= ENV_MMIO32 && a2 + 0x1000 <= ENV_MMIO32 + ENV_MMIO32_SIZE);
	assert_true(b2 >= ENV_MMIO32 && b2 != a2 && a2 % 0x1000 == 0);
	/* The registers say so, with their type bits. */
	assert_int_equal(env_ecam_read(&e, s, PCI_BASE_ADDRESS_0, 4),
			 (uint32_t)a0 | PCI_BASE_ADDRESS_MEM_TYPE_64);
	assert_int_equal(env_ecam_read(&e, s, PCI_BASE_ADDRESS_1, 4), (uint32_t)(a0 >> 32));
	assert_int_equal(env_ecam_read(&e, s, PCI_BASE_ADDRESS_2, 4), (uint32_t)a2);
	assert_int_equal(env_ecam_read(&e, s, PCI_BASE_ADDRESS_3, 4), 0);
	/* Not on the bus until memory decoding is on. */
	assert_false(f.mapped[0] || f.mapped[2]);
	assert_int_equal(env_mmio_read(&e, a0, 4), 0xffffffff);

	/* Sizing: all ones, read back the mask, restore. */
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_1, 4, 0xffffffff);
	assert_int_equal(env_conf1_read(&e, s, PCI_BASE_ADDRESS_0, 4),
			 0xffffc000 | PCI_BASE_ADDRESS_MEM_TYPE_64);
	assert_int_equal(env_conf1_read(&e, s, PCI_BASE_ADDRESS_1, 4), 0xffffffff);
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_2, 4, 0xffffffff);
	assert_int_equal(env_conf1_read(&e, s, PCI_BASE_ADDRESS_2, 4), 0xfffff000);
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_3, 4, 0xffffffff);	/* unimplemented */
	assert_int_equal(env_conf1_read(&e, s, PCI_BASE_ADDRESS_3, 4), 0);
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_0, 4, (uint32_t)a0);
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_1, 4, (uint32_t)(a0 >> 32));
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_2, 4, (uint32_t)a2);
	/* Low bits below the size are not writable; a byte write merges. */
	env_ecam_write(&e, s, PCI_BASE_ADDRESS_2, 4, (uint32_t)a2 | 0xfff);
	assert_int_equal(env_ecam_read(&e, s, PCI_BASE_ADDRESS_2, 4), (uint32_t)a2);
	env_ecam_write(&e, s, PCI_BASE_ADDRESS_2 + 3, 1, (uint8_t)(a2 >> 24));
	assert_int_equal(env_ecam_read(&e, s, PCI_BASE_ADDRESS_2, 4), (uint32_t)a2);
	assert_int_equal(f.maps, 0);

	/* Decode on: both BARs on the bus, accesses arrive BAR-relative. */
	env_conf1_write(&e, s, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(f.maps, 2);
	assert_true(f.mapped[0] && f.mapped_at[0] == a0);
	assert_int_equal(env_mmio_read(&e, a0 + 0x3ffc, 4), 0x1234);
	assert_int_equal(f.last_off, 0x3ffc);
	assert_int_equal(f.last_size, 4);
	env_mmio_write(&e, a2 + 8, 2, 0xbeef);
	assert_int_equal(f.last_off, 8);
	assert_int_equal(f.last_value, 0xbeef);

	/* Decode off: both gone. */
	env_conf1_write(&e, s, PCI_COMMAND, 2, 0);
	assert_int_equal(f.unmaps, 2);
	int reads = f.reads;
	assert_int_equal(env_mmio_read(&e, a0, 4), 0xffffffff);
	assert_int_equal(f.reads, reads);
	env_fini(&e);
}

static void test_bar_moves(void **state)
{
	struct pci_env e;
	struct fake f, g;
	struct helper_log log = { 0 };
	uint64_t v;

	(void)state;
	env_init(&e);
	fake_add(&e, &f, "fake0");
	fake_add(&e, &g, "fake1");
	unsigned int s = pci_dev_slot(f.pci), t = pci_dev_slot(g.pci);
	uint64_t a0 = pci_dev_bar_addr(f.pci, 0), b0 = pci_dev_bar_addr(g.pci, 0);
	uint64_t a2 = pci_dev_bar_addr(f.pci, 2), b2 = pci_dev_bar_addr(g.pci, 2);

	env_ecam_write(&e, s, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	env_ecam_write(&e, t, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	log_set_sink(helper_log_sink, &log);

	/* Move the 32-bit BAR: the range follows, the old address is nobody's. */
	uint64_t na2 = ENV_MMIO32 + 0x100000;
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_2, 4, (uint32_t)na2);
	assert_true(f.mapped[2]);
	assert_int_equal(f.mapped_at[2], na2);
	assert_true(env_mmio(&e, na2, 4, false, &v));
	assert_int_equal(f.last_off, 0);
	assert_int_equal(pci_dev_bar_addr(f.pci, 2), na2);

	/*
	 * Move the 64-bit BAR below 4 GiB, low half first: in between the BAR
	 * would be at high(old) | low(new), which here lands on fake1's BAR 0
	 * and must stay unmapped without disturbing fake1.
	 */
	uint64_t target = ENV_MMIO32 + 0x200000;
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_0, 4, (uint32_t)b0);	/* high still a0's */
	assert_int_equal(a0 >> 32, b0 >> 32);
	assert_false(f.mapped[0]);
	assert_true(g.mapped[0] && g.mapped_at[0] == b0);
	int greads = g.reads;
	assert_int_equal(env_mmio_read(&e, b0 + 4, 4), 0x1234);
	assert_int_equal(g.reads, greads + 1);
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_0, 4, (uint32_t)target);
	/* 0x1_c020_0000 is free: mapped there until the high half follows. */
	assert_true(f.mapped[0]);
	assert_int_equal(f.mapped_at[0], (a0 & ~0xffffffffULL) | (uint32_t)target);
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_1, 4, 0);
	assert_true(f.mapped[0]);
	assert_int_equal(f.mapped_at[0], target);
	assert_true(env_mmio(&e, target + 0x10, 4, false, &v));
	assert_int_equal(f.last_off, 0x10);

	/* Overlaps are refused, quietly: another BAR, the ECAM, a wrapping address. */
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_2, 4, (uint32_t)b2);
	assert_false(f.mapped[2]);
	assert_true(g.mapped[2] && g.mapped_at[2] == b2);
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_2, 4, (uint32_t)ENV_ECAM + 0x1000);
	assert_false(f.mapped[2]);
	assert_int_equal(env_ecam_read(&e, 0, 0, 2), 0x1b36);	/* the ECAM still works */
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_0, 4, 0xffffc000);
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_1, 4, 0xffffffff);
	assert_false(f.mapped[0]);
	assert_int_equal(log.errors, 0);
	assert_int_equal(log.warnings, 0);
	/* The 32-bit BAR maps again once it is somewhere free. */
	env_conf1_write(&e, s, PCI_BASE_ADDRESS_2, 4, (uint32_t)na2);
	assert_true(f.mapped[2] && f.mapped_at[2] == na2);
	log_set_sink(NULL, NULL);

	/* Reset: command 0 (all unmapped), BARs back where bootvm put them, hooks run. */
	pci_host_reset(e.host);
	assert_false(f.mapped[0] || f.mapped[2] || g.mapped[0] || g.mapped[2]);
	assert_int_equal(pci_dev_bar_addr(f.pci, 0), a0);
	assert_int_equal(pci_dev_bar_addr(f.pci, 2), a2);
	assert_int_equal(env_ecam_read(&e, s, PCI_COMMAND, 2), 0);
	assert_int_equal(f.resets, 1);
	assert_int_equal(g.resets, 1);
	assert_int_equal(e.mmio.nr, 1);		/* the ECAM alone */
	env_fini(&e);
}

static void test_bad_bars(void **state)
{
	struct pci_env e;
	struct fake f;
	struct helper_log log = { 0 };
	struct pci_dev_info info = { .name = "bad", .vendor_id = 1 };

	(void)state;
	env_init(&e);
	fake_add(&e, &f, "fake0");
	struct pci_dev *d = pci_dev_add(e.host, &info);
	assert_non_null(d);
	log_set_sink(helper_log_sink, &log);
	assert_int_equal(pci_dev_add_bar(d, 0, 0x3000, 0, &fake_ops, &f, NULL), -1);	/* not 2^n */
	assert_int_equal(pci_dev_add_bar(d, 0, 0x800, 0, &fake_ops, &f, NULL), -1);	/* < 4 KiB */
	assert_int_equal(pci_dev_add_bar(d, 5, 0x1000, PCI_BAR_MEM64, &fake_ops, &f, NULL), -1);
	assert_int_equal(pci_dev_add_bar(d, 6, 0x1000, 0, &fake_ops, &f, NULL), -1);
	assert_int_equal(pci_dev_add_bar(d, 0, 0x40000000, 0, &fake_ops, &f, NULL), -1); /* > window */
	assert_int_equal(log.errors, 5);
	assert_int_equal(pci_dev_add_bar(d, 0, 0x1000, PCI_BAR_MEM64, &fake_ops, &f, NULL), 0);
	assert_int_equal(pci_dev_add_bar(d, 1, 0x1000, 0, &fake_ops, &f, NULL), -1);	/* upper half */
	assert_int_equal(log.errors, 6);
	log_set_sink(NULL, NULL);
	env_fini(&e);
}

static void test_bus_full(void **state)
{
	struct pci_env e;
	struct helper_log log = { 0 };
	struct pci_dev_info info = { .name = "filler", .vendor_id = 1 };

	(void)state;
	env_init(&e);
	for (unsigned int i = 1; i < 32; i++) {
		struct pci_dev *d = pci_dev_add(e.host, &info);

		assert_non_null(d);
		assert_int_equal(pci_dev_slot(d), i);
	}
	log_set_sink(helper_log_sink, &log);
	assert_null(pci_dev_add(e.host, &info));
	log_set_sink(NULL, NULL);
	assert_int_equal(log.errors, 1);
	assert_non_null(strstr(log.last_error, "no free slot"));
	env_fini(&e);
}

/* ---- capabilities ---- */

struct cap_log {
	int writes, reads;
	unsigned int off, size;
	uint32_t value;
};

static void cap_write(void *opaque, uint8_t *cap, unsigned int off, unsigned int size,
		      uint32_t value)
{
	struct cap_log *l = opaque;

	(void)cap;
	l->writes++;
	l->off = off;
	l->size = size;
	l->value = value;
}

static uint32_t cap_read(void *opaque, uint8_t *cap, unsigned int off, unsigned int size,
			 uint32_t value)
{
	struct cap_log *l = opaque;

	(void)cap;
	(void)size;
	l->reads++;
	return off == 4 ? 0xcafe : value;
}

static const struct pci_cap_ops cap_ops = { .write = cap_write, .read = cap_read };

static void test_capabilities(void **state)
{
	struct pci_env e;
	struct fake f;
	struct cap_log l = { 0 };
	const uint8_t a[8] = { PCI_CAP_ID_VNDR, 0x55, 8, 1, 2, 3, 4, 5 };
	const uint8_t b[6] = { PCI_CAP_ID_VNDR, 0, 6, 0xaa, 0xbb, 0xcc };
	const uint8_t bmask[6] = { 0xff, 0xff, 0, 0x0f, 0xff, 0 };
	struct helper_log log = { 0 };

	(void)state;
	env_init(&e);
	fake_add(&e, &f, "fake0");
	unsigned int s = pci_dev_slot(f.pci);
	int oa = pci_dev_add_cap(f.pci, a, sizeof(a), NULL, NULL, NULL);
	int ob = pci_dev_add_cap(f.pci, b, sizeof(b), bmask, &cap_ops, &l);
	assert_int_equal(oa, 0x40);
	assert_int_equal(ob, 0x48);

	/* Walk the list from 0x34 as a guest does. */
	assert_true(env_ecam_read(&e, s, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	unsigned int p = env_conf1_read(&e, s, PCI_CAPABILITY_LIST, 1), n = 0;
	unsigned int seen[4];
	while (p && n < 4) {
		assert_int_equal(env_conf1_read(&e, s, p, 1), PCI_CAP_ID_VNDR);
		seen[n++] = p;
		p = env_conf1_read(&e, s, p + 1, 1);
	}
	assert_int_equal(n, 2);
	assert_int_equal(seen[0], 0x40);
	assert_int_equal(seen[1], 0x48);
	assert_int_equal(env_ecam_read(&e, s, 0x42, 2), 0x0108);

	/* Only the masked bits are writable; ID and next never; the hook sees the write. */
	env_ecam_write(&e, s, 0x48, 4, 0xffffffff);
	assert_int_equal(env_ecam_read(&e, s, 0x48, 1), PCI_CAP_ID_VNDR);
	assert_int_equal(env_ecam_read(&e, s, 0x49, 1), 0);
	assert_int_equal(env_ecam_read(&e, s, 0x4a, 2), 0xaf06);	/* (0xaa & ~0x0f) | 0x0f */
	assert_int_equal(l.writes, 1);
	assert_int_equal(l.off, 0);
	assert_int_equal(l.size, 4);
	env_ecam_write(&e, s, 0x4c, 2, 0x1111);
	assert_int_equal(l.off, 4);
	assert_int_equal(l.size, 2);
	/* The read hook may supply values. */
	assert_int_equal(env_ecam_read(&e, s, 0x4c, 2), 0xcafe);
	assert_int_equal(env_ecam_read(&e, s, 0x40, 4), 0x01084809);
	/* Writes to the read-only capability do nothing. */
	env_ecam_write(&e, s, 0x44, 4, 0);
	assert_int_equal(env_ecam_read(&e, s, 0x44, 4), 0x05040302);

	/* Config space runs out. */
	uint8_t big[64] = { PCI_CAP_ID_VNDR };
	log_set_sink(helper_log_sink, &log);
	int r = 0;
	for (int i = 0; i < 5 && r >= 0; i++)
		r = pci_dev_add_cap(f.pci, big, sizeof(big), NULL, NULL, NULL);
	log_set_sink(NULL, NULL);
	assert_int_equal(r, -1);
	assert_int_equal(log.errors, 1);
	env_fini(&e);
}

/* ---- INTx ---- */

static void test_intx(void **state)
{
	struct pci_env e;
	struct fake f, g;

	(void)state;
	env_init(&e);
	fake_add(&e, &f, "fake0");
	fake_add(&e, &g, "fake1");
	unsigned int s = pci_dev_slot(f.pci);
	/* Slot 1 pin A: 16 + (1 + 0) % 4; slot 2: 18. */
	assert_int_equal(pci_dev_gsi(f.pci), ENV_GSI_BASE + 1);
	assert_int_equal(pci_dev_gsi(g.pci), ENV_GSI_BASE + 2);
	assert_int_equal(env_ecam_read(&e, s, PCI_INTERRUPT_PIN, 1), 1);
	assert_int_equal(env_ecam_read(&e, s, PCI_INTERRUPT_LINE, 1), 17);

	pci_dev_set_intx(f.pci, 1);
	assert_int_equal(env_counts.line[17], 1);
	assert_true(env_ecam_read(&e, s, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	pci_dev_set_intx(f.pci, 1);		/* no second KVM_IRQ_LINE */
	assert_int_equal(env_counts.irq_line_calls, 1);

	/* INTx disable drops the line, the status bit stays. */
	env_ecam_write(&e, s, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
	assert_int_equal(env_counts.line[17], 0);
	assert_true(env_ecam_read(&e, s, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	pci_dev_set_intx(f.pci, 0);
	pci_dev_set_intx(f.pci, 1);
	assert_int_equal(env_counts.line[17], 0);
	env_ecam_write(&e, s, PCI_COMMAND, 2, 0);
	assert_int_equal(env_counts.line[17], 1);
	pci_dev_set_intx(f.pci, 0);
	assert_int_equal(env_counts.line[17], 0);
	assert_false(env_ecam_read(&e, s, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);

	/* Reset deasserts. */
	pci_dev_set_intx(g.pci, 1);
	assert_int_equal(env_counts.line[18], 1);
	pci_host_reset(e.host);
	assert_int_equal(env_counts.line[18], 0);
	assert_false(env_ecam_read(&e, pci_dev_slot(g.pci), PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	env_fini(&e);
}

/* The board lists the host: a reset through the list reaches every device. */
static void test_device_list(void **state)
{
	struct pci_env e;
	struct fake f;
	struct device_list l;

	(void)state;
	env_init(&e);
	fake_add(&e, &f, "fake0");
	device_list_init(&l);
	assert_int_equal(device_list_add(&l, &pci_host_device_ops, e.host, "pci0"), 0);
	env_ecam_write(&e, pci_dev_slot(f.pci), PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_true(f.mapped[0]);
	device_list_reset(&l);
	assert_int_equal(f.resets, 1);
	assert_false(f.mapped[0]);
	device_list_destroy(&l);	/* destroys the host and the device on it */
	e.host = NULL;
	env_fini(&e);
}

/* ---- hostile configuration writes ---- */

static void test_hostile_config(void **state)
{
	struct pci_env e;
	struct fake f, g;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	struct helper_log log = { 0 };
	static const unsigned int sizes[] = { 1, 2, 4, 3, 8 };

	(void)state;
	env_init(&e);
	fake_add(&e, &f, "fake0");
	fake_add(&e, &g, "fake1");
	uint8_t cap[12] = { PCI_CAP_ID_VNDR, 0, 12 }, mask[12];
	memset(mask, 0xff, sizeof(mask));
	assert_true(pci_dev_add_cap(f.pci, cap, sizeof(cap), mask, NULL, NULL) > 0);
	/* A range the guest must never be able to disturb. */
	assert_int_equal(bus_register(&e.mmio, ENV_MMIO32 + 0x10000000, 0x1000, "sentinel",
				      &fake_ops, &f), 0);

	log_set_sink(helper_log_sink, &log);
	for (int i = 0; i < 20000; i++) {
		uint64_t r = env_rand(&seed);
		unsigned int slot = (unsigned int)(r % 4), reg = (unsigned int)(r >> 8) % 4200;
		unsigned int size = sizes[(r >> 24) % 5];
		uint32_t v = (uint32_t)(r >> 32);

		/* Bias towards BARs and the command register. */
		if ((r >> 40) % 3 == 0)
			reg = PCI_BASE_ADDRESS_0 + (unsigned int)((r >> 44) % 6) * 4;
		else if ((r >> 40) % 3 == 1)
			reg = PCI_COMMAND;
		if (r & 1)
			env_ecam_write(&e, slot, reg, size > 4 ? 4 : size, v);
		else
			pci_host_config_write(e.host, slot, reg, size, v);
		(void)pci_host_config_read(e.host, slot, reg, size);
	}
	log_set_sink(NULL, NULL);
	assert_int_equal(log.errors, 0);
	assert_int_equal(log.warnings, 0);

	/* The sentinel and the ECAM are where they were; the host bridge still answers. */
	struct bus_range br;
	assert_true(bus_find(&e.mmio, ENV_MMIO32 + 0x10000000, &br));
	assert_string_equal(br.name, "sentinel");
	assert_true(bus_find(&e.mmio, ENV_ECAM, &br));
	assert_string_equal(br.name, "pci-ecam");
	assert_int_equal(env_ecam_read(&e, 0, 0, 4), PCI_HOST_DEVICE_ID << 16 | PCI_HOST_VENDOR_ID);
	assert_int_equal(env_ecam_read(&e, 1, 0, 2), 0x1af4);
	/* Every mapped BAR is where its registers say, and ranges do not overlap (the bus checks). */
	for (int d = 0; d < 2; d++) {
		struct fake *x = d ? &g : &f;

		for (unsigned int b = 0; b < PCI_NUM_BARS; b++)
			if (x->mapped[b])
				assert_int_equal(x->mapped_at[b], pci_dev_bar_addr(x->pci, b));
	}
	assert_int_equal(bus_unregister(&e.mmio, ENV_MMIO32 + 0x10000000), 0);
	pci_host_reset(e.host);
	env_fini(&e);
}

/* ---- AML ---- */

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* A DSDT holding Scope (\_SB) { <the host's AML> }. */
static uint8_t *build_dsdt(struct pci_env *e, size_t *len)
{
	static uint8_t aml_buf[16384];
	struct aml a;
	uint8_t *t;

	aml_init(&a, aml_buf, sizeof(aml_buf));
	size_t sb = aml_scope_begin(&a, "\\_SB");
	pci_host_aml(e->host, &a);
	aml_end(&a, sb);
	assert_false(a.overflow);

	*len = 36 + a.len;
	t = calloc(1, *len);
	assert_non_null(t);
	memcpy(t, "DSDT", 4);
	for (int i = 0; i < 4; i++)
		t[4 + i] = (uint8_t)(*len >> (8 * i));
	t[8] = 2;
	memcpy(t + 10, "BOOTVM", 6);
	memcpy(t + 16, "BOOTVMDS", 8);
	t[24] = 1;
	memcpy(t + 28, "BTVM", 4);
	t[32] = 1;
	memcpy(t + 36, a.buf, a.len);
	t[9] = (uint8_t)-sum8(t, *len);
	return t;
}

static int run_in(const char *dir, const char *const argv[], char **out)
{
	struct helper_result r;

	helper_run(&r, dir, argv, HELPER_MERGE_OUTPUT);
	if (r.status == 127 && strstr(r.out, "exec "))
		fail_msg("%s is not installed (Debian package acpica-tools): %s", argv[0], r.out);
	*out = r.out;
	r.out = NULL;
	int status = r.status;
	helper_result_free(&r);
	return status;
}

#define IASL_CLEAN "Compilation successful. 0 Errors, 0 Warnings, 0 Remarks"

static void assert_clean(const char *tool, const char *out)
{
	static const char *const bad[] = {
		"Error", "Warning", "warning", "Invalid", "invalid", "mismatch", "Exception",
		"Unknown", "Firmware", NULL,
	};

	for (const char *line = out, *nl; *line; line = nl) {
		nl = strchr(line, '\n');
		nl = nl ? nl + 1 : line + strlen(line);
		if (!strncmp(line, IASL_CLEAN, strlen(IASL_CLEAN)))
			continue;
		for (int i = 0; bad[i]; i++) {
			const char *hit = strstr(line, bad[i]);
			if (hit && hit < nl)
				fail_msg("%s printed \"%s\":\n%s", tool, bad[i], out);
		}
	}
}

static int tmpdir_setup(void **state)
{
	*state = helper_tmpdir("pci-aml");
	return 0;
}

static int tmpdir_teardown(void **state)
{
	return helper_tmpdir_remove(*state);
}

static void test_aml(void **state)
{
	struct pci_env e;
	const char *dir = *state;
	char *out, *path, *dsl;
	size_t len, n;

	env_init(&e);
	uint8_t *t = build_dsdt(&e, &len);
	path = helper_asprintf("%s/dsdt.dat", dir);
	helper_write_file(path, t, len, 0644);
	free(path);

	/* iasl disassembles it cleanly and recompiles it into the same AML. */
	const char *dis[] = { "iasl", "-d", "dsdt.dat", NULL };
	int rc = run_in(dir, dis, &out);
	if (rc)
		fail_msg("iasl -d exited %d:\n%s", rc, out);
	assert_clean("iasl -d", out);
	free(out);
	path = helper_asprintf("%s/dsdt.dsl", dir);
	dsl = helper_read_file(path, &n);
	free(path);
	assert_non_null(dsl);
	static const char *const want[] = {
		"Device (PCI0)", "Name (_HID, EisaId (\"PNP0A08\")", "Name (_CID, EisaId (\"PNP0A03\")",
		"Name (_SEG, Zero)", "Name (_BBN, Zero)",
		"WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,",
		"IO (Decode16,\n                    0x0CF8,",
		"WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,",
		"DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,",
		"QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite,",
		"0xC0000000,         // Range Minimum", "0xDFFFFFFF,         // Range Maximum",
		"0x0000000100000000, // Range Minimum", "0x00000010FFFFFFFF, // Range Maximum",
		"0x1000,             // Range Minimum", "0xFFFF,             // Range Maximum",
		"Method (_OSC, 4, NotSerialized)", "Return (Arg3)",
		"Device (RES0)", "EisaId (\"PNP0C02\")",
		"Memory32Fixed (ReadWrite,\n                    0xE0000000,         // Address Base\n"
		"                    0x00100000,         // Address Length",
		/* slot 31 pin D: 16 + (31 + 3) % 4 */
		"0x001FFFFF, \n                    0x03, \n                    Zero, \n                    0x12",
		NULL,
	};
	for (int i = 0; want[i]; i++)
		if (!strstr(dsl, want[i]))
			fail_msg("the disassembly lacks \"%s\":\n%s", want[i], dsl);
	free(dsl);
	const char *comp[] = { "iasl", "-oa", "dsdt.dsl", NULL };
	rc = run_in(dir, comp, &out);
	if (rc)
		fail_msg("iasl exited %d:\n%s", rc, out);
	assert_clean("iasl", out);
	free(out);
	path = helper_asprintf("%s/dsdt.aml", dir);
	uint8_t *back = helper_read_file(path, &n);
	free(path);
	assert_non_null(back);
	assert_int_equal(n, len);
	assert_memory_equal(back + 36, t + 36, len - 36);
	free(back);

	/* ACPICA's interpreter evaluates the objects Linux's pci_root driver uses. */
	const char *ex[] = { "acpiexec", "-b",
		"evaluate \\_SB.PCI0._STA; evaluate \\_SB.PCI0._CRS; evaluate \\_SB.PCI0._PRT; "
		/* What Linux passes: the PCI host bridge UUID, revision 1, 3 DWORDs. */
		"evaluate \\_SB.PCI0._OSC "
		"(5b 4d db 33 f7 1f 1c 40 96 57 74 41 c0 3d d7 66) 1 3 "
		"(01 00 00 00 1f 01 00 00 1d 00 00 00); "
		"evaluate \\_SB.RES0._CRS",
		"dsdt.dat", NULL };
	rc = run_in(dir, ex, &out);
	if (rc)
		fail_msg("acpiexec exited %d:\n%s", rc, out);
	static const char *const ex_want[] = {
		"[Integer] = 000000000000000F",
		"[Package] Contains 128 Elements:",
		"86 09 00 01 00 00 00 E0 00 00 10 00 79 00",	/* RES0._CRS */
		"01 00 00 00 1F 01 00 00 1D 00 00 00",		/* _OSC: all granted */
		NULL,
	};
	for (int i = 0; ex_want[i]; i++)
		if (!strstr(out, ex_want[i]))
			fail_msg("acpiexec did not print \"%s\":\n%s", ex_want[i], out);
	assert_clean("acpiexec", out);
	if (strstr(out, "nsrepair") || (strstr(out, "AE_") && !strstr(out, "AE_OK")))
		fail_msg("acpiexec repaired or refused something:\n%s", out);
	free(out);
	free(t);
	env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_bridge),
		cmocka_unit_test(test_absent_and_malformed),
		cmocka_unit_test(test_read_only_fields),
		cmocka_unit_test(test_bar_placement_and_sizing),
		cmocka_unit_test(test_bar_moves),
		cmocka_unit_test(test_bad_bars),
		cmocka_unit_test(test_bus_full),
		cmocka_unit_test(test_capabilities),
		cmocka_unit_test(test_intx),
		cmocka_unit_test(test_device_list),
		cmocka_unit_test(test_hostile_config),
		cmocka_unit_test_setup_teardown(test_aml, tmpdir_setup, tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
