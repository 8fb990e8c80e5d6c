/*
 * pci/msix.c against a real KVM VM: the capability, the table and PBA
 * through a BAR, per-vector and function masking (irqfd assign/deassign),
 * pending bits, route updates batched into one KVM_SET_GSI_ROUTING (the
 * ioctls are counted), bad accesses, reset and running out of GSIs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <linux/pci_regs.h>
#include <string.h>

#include "pci/msix.h"
#include "pci_env.h"
#include "helpers.h"

#define NR 8
#define TABLE 0x0000
#define PBA 0x2000

struct dev {
	struct pci_dev *pci;
	struct msix msix;
	uint64_t bar;
	unsigned int slot;
	int cap;
};

static uint64_t dev_read(void *opaque, uint64_t off, unsigned int size)
{
	struct dev *d = opaque;

	if (off >= PBA)
		return msix_pba_read(&d->msix, off - PBA, size);
	return msix_table_read(&d->msix, off - TABLE, size);
}

static void dev_write(void *opaque, uint64_t off, unsigned int size, uint64_t v)
{
	struct dev *d = opaque;

	if (off < PBA)
		msix_table_write(&d->msix, off - TABLE, size, v);
}

static const struct bus_ops dev_ops = { .read = dev_read, .write = dev_write };

static void dev_add(struct pci_env *e, struct dev *d, unsigned int nr)
{
	struct pci_dev_info info = { .name = "msix-dev", .vendor_id = 0x1af4, .device_id = 0x10f1 };

	memset(d, 0, sizeof(*d));
	d->pci = pci_dev_add(e->host, &info);
	assert_non_null(d->pci);
	d->slot = pci_dev_slot(d->pci);
	assert_int_equal(msix_init(&d->msix, d->pci, nr, 0, TABLE, 0, PBA), 0);
	d->cap = d->msix.cap;
	assert_int_equal(pci_dev_add_bar(d->pci, 0, 0x4000, PCI_BAR_MEM64, &dev_ops, d, NULL), 0);
	d->bar = pci_dev_bar_addr(d->pci, 0);
	env_ecam_write(e, d->slot, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
}

static void dev_remove(struct dev *d)
{
	pci_dev_remove(d->pci);
	msix_fini(&d->msix);
}

static uint32_t entry_read(struct pci_env *e, struct dev *d, unsigned int v, unsigned int field)
{
	return (uint32_t)env_mmio_read(e, d->bar + TABLE + v * 16 + field, 4);
}

static void entry_write(struct pci_env *e, struct dev *d, unsigned int v, unsigned int field,
			uint32_t val)
{
	env_mmio_write(e, d->bar + TABLE + v * 16 + field, 4, val);
}

/* Address and data for vector v, as Linux programs them (4-byte writes, masked). */
static void program(struct pci_env *e, struct dev *d, unsigned int v, uint32_t data)
{
	entry_write(e, d, v, PCI_MSIX_ENTRY_LOWER_ADDR, 0xfee00000);
	entry_write(e, d, v, PCI_MSIX_ENTRY_UPPER_ADDR, 0);
	entry_write(e, d, v, PCI_MSIX_ENTRY_DATA, data);
}

static void set_ctrl(struct pci_env *e, struct dev *d, uint16_t bits)
{
	env_ecam_write(e, d->slot, (unsigned int)d->cap + PCI_MSIX_FLAGS, 2, bits);
}

static uint64_t pba(struct pci_env *e, struct dev *d)
{
	return env_mmio_read(e, d->bar + PBA, 8);
}

static int fires(struct dev *d, unsigned int v)
{
	return env_counts.writes[d->msix.vec[v].msi.efd];
}

static void test_capability(void **state)
{
	struct pci_env e;
	struct dev d;

	(void)state;
	env_init(&e);
	dev_add(&e, &d, NR);
	/* Found by walking the list. */
	unsigned int p = env_ecam_read(&e, d.slot, PCI_CAPABILITY_LIST, 1);
	while (p && env_ecam_read(&e, d.slot, p, 1) != PCI_CAP_ID_MSIX)
		p = env_ecam_read(&e, d.slot, p + 1, 1);
	assert_int_equal(p, (unsigned int)d.cap);
	assert_int_equal(env_ecam_read(&e, d.slot, p + PCI_MSIX_FLAGS, 2), NR - 1);
	assert_int_equal(env_ecam_read(&e, d.slot, p + PCI_MSIX_TABLE, 4), TABLE | 0);
	assert_int_equal(env_ecam_read(&e, d.slot, p + PCI_MSIX_PBA, 4), PBA | 0);
	/* Only enable and function mask are writable. */
	env_ecam_write(&e, d.slot, p + PCI_MSIX_FLAGS, 2, 0xffff);
	assert_int_equal(env_ecam_read(&e, d.slot, p + PCI_MSIX_FLAGS, 2),
			 PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL | (NR - 1));
	assert_true(msix_enabled(&d.msix));
	env_ecam_write(&e, d.slot, p + PCI_MSIX_TABLE, 4, 0x12345678);
	assert_int_equal(env_ecam_read(&e, d.slot, p + PCI_MSIX_TABLE, 4), TABLE);
	set_ctrl(&e, &d, 0);
	assert_false(msix_enabled(&d.msix));

	/* Power-on table: masked, zero; reserved control bits and address bits 1:0 read 0. */
	for (unsigned int v = 0; v < NR; v++) {
		assert_int_equal(entry_read(&e, &d, v, PCI_MSIX_ENTRY_VECTOR_CTRL), 1);
		assert_int_equal(entry_read(&e, &d, v, PCI_MSIX_ENTRY_DATA), 0);
	}
	entry_write(&e, &d, 3, PCI_MSIX_ENTRY_VECTOR_CTRL, 0xfffffffe | 1);
	assert_int_equal(entry_read(&e, &d, 3, PCI_MSIX_ENTRY_VECTOR_CTRL), 1);
	entry_write(&e, &d, 3, PCI_MSIX_ENTRY_LOWER_ADDR, 0xfee00003);
	assert_int_equal(entry_read(&e, &d, 3, PCI_MSIX_ENTRY_LOWER_ADDR), 0xfee00000);
	/* 8-byte accesses: address low + high, data + control. */
	env_mmio_write(&e, d.bar + TABLE + 2 * 16, 8, 0x00000001fee01000ULL);
	assert_int_equal(env_mmio_read(&e, d.bar + TABLE + 2 * 16, 8), 0x00000001fee01000ULL);
	env_mmio_write(&e, d.bar + TABLE + 2 * 16 + 8, 8, 0x0000000100000041ULL);
	assert_int_equal(entry_read(&e, &d, 2, PCI_MSIX_ENTRY_DATA), 0x41);
	assert_int_equal(entry_read(&e, &d, 2, PCI_MSIX_ENTRY_VECTOR_CTRL), 1);
	dev_remove(&d);
	env_fini(&e);
}

static void test_batched_routes(void **state)
{
	struct pci_env e;
	struct dev d;

	(void)state;
	env_init(&e);
	dev_add(&e, &d, NR);
	env_counts_reset();

	/*
	 * Linux's order: enable with the function masked, program and unmask
	 * every vector, then clear the function mask. Nothing reaches KVM until
	 * the last step, which costs one KVM_SET_GSI_ROUTING for all vectors.
	 */
	set_ctrl(&e, &d, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	for (unsigned int v = 0; v < NR; v++) {
		program(&e, &d, v, 0x40 + v);
		entry_write(&e, &d, v, PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	}
	assert_int_equal(env_counts.set_gsi_routing, 0);
	assert_int_equal(env_counts.irqfd_assign, 0);
	set_ctrl(&e, &d, PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(env_counts.set_gsi_routing, 1);
	assert_int_equal(env_counts.irqfd_assign, NR);
	for (unsigned int v = 0; v < NR; v++) {
		assert_true(d.msix.vec[v].msi.assigned);
		assert_int_equal(d.msix.vec[v].msi.data, 0x40 + v);
		assert_int_equal(d.msix.vec[v].msi.addr, 0xfee00000);
	}

	/* Masking one vector unbinds it and costs no routing update. */
	env_counts_reset();
	entry_write(&e, &d, 5, PCI_MSIX_ENTRY_VECTOR_CTRL, 1);
	assert_int_equal(env_counts.irqfd_deassign, 1);
	assert_int_equal(env_counts.set_gsi_routing, 0);
	assert_false(d.msix.vec[5].msi.assigned);
	/* Reprogramming it masked: still nothing; unmasking: one update, one bind. */
	program(&e, &d, 5, 0x99);
	assert_int_equal(env_counts.set_gsi_routing, 0);
	entry_write(&e, &d, 5, PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	assert_int_equal(env_counts.set_gsi_routing, 1);
	assert_int_equal(env_counts.irqfd_assign, 1);
	assert_int_equal(d.msix.vec[5].msi.data, 0x99);
	/* Unmasking with an unchanged message: a bind, no routing update. */
	entry_write(&e, &d, 5, PCI_MSIX_ENTRY_VECTOR_CTRL, 1);
	entry_write(&e, &d, 5, PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	assert_int_equal(env_counts.set_gsi_routing, 1);
	assert_int_equal(env_counts.irqfd_assign, 2);
	/* A guest rewriting a live vector takes effect at once. */
	entry_write(&e, &d, 6, PCI_MSIX_ENTRY_DATA, 0x77);
	assert_int_equal(env_counts.set_gsi_routing, 2);
	assert_int_equal(d.msix.vec[6].msi.data, 0x77);

	/* The function mask unbinds every vector; disabling too. */
	env_counts_reset();
	set_ctrl(&e, &d, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	assert_int_equal(env_counts.irqfd_deassign, NR);
	set_ctrl(&e, &d, PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(env_counts.irqfd_assign, NR);
	assert_int_equal(env_counts.set_gsi_routing, 0);
	set_ctrl(&e, &d, 0);
	assert_int_equal(env_counts.irqfd_deassign, 2 * NR);
	dev_remove(&d);
	env_fini(&e);
}

static void test_notify_pending(void **state)
{
	struct pci_env e;
	struct dev d;

	(void)state;
	env_init(&e);
	dev_add(&e, &d, NR);

	/* Disabled: the caller must use INTx; nothing recorded. */
	assert_false(msix_notify(&d.msix, 1));
	assert_int_equal(pba(&e, &d), 0);

	set_ctrl(&e, &d, PCI_MSIX_FLAGS_ENABLE);
	program(&e, &d, 1, 0x41);
	program(&e, &d, 2, 0x42);
	env_counts_reset();
	/* Masked vector: pending, not fired. */
	assert_true(msix_notify(&d.msix, 1));
	assert_int_equal(pba(&e, &d), 1 << 1);
	assert_int_equal((uint32_t)env_mmio_read(&e, d.bar + PBA, 4), 1 << 1);
	assert_int_equal(fires(&d, 1), 0);
	/* Unmasking fires it and clears the bit. */
	entry_write(&e, &d, 1, PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	assert_int_equal(fires(&d, 1), 1);
	assert_int_equal(pba(&e, &d), 0);
	/* Live: fires straight away. */
	assert_true(msix_notify(&d.msix, 1));
	assert_int_equal(fires(&d, 1), 2);
	assert_int_equal(pba(&e, &d), 0);

	/* Function mask: pending again, fired when the mask goes. */
	entry_write(&e, &d, 2, PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	set_ctrl(&e, &d, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	assert_true(msix_notify(&d.msix, 1));
	assert_true(msix_notify(&d.msix, 2));
	assert_true(msix_notify(&d.msix, 2));
	assert_int_equal(pba(&e, &d), 1 << 1 | 1 << 2);
	assert_int_equal(fires(&d, 1), 2);
	assert_int_equal(fires(&d, 2), 0);
	set_ctrl(&e, &d, PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(fires(&d, 1), 3);
	assert_int_equal(fires(&d, 2), 1);	/* one pending bit, one interrupt */
	assert_int_equal(pba(&e, &d), 0);

	/* Out of range vectors are refused; the PBA is read-only. */
	assert_false(msix_notify(&d.msix, NR));
	assert_false(msix_notify(&d.msix, 0xffff));
	entry_write(&e, &d, 7, PCI_MSIX_ENTRY_VECTOR_CTRL, 1);
	assert_true(msix_notify(&d.msix, 7));
	env_mmio_write(&e, d.bar + PBA, 8, 0);
	assert_int_equal(pba(&e, &d), 1 << 7);

	/* Reset: all masked, nothing pending, nothing bound. */
	msix_reset(&d.msix);
	assert_int_equal(pba(&e, &d), 0);
	for (unsigned int v = 0; v < NR; v++) {
		assert_false(d.msix.vec[v].msi.assigned);
		assert_int_equal(entry_read(&e, &d, v, PCI_MSIX_ENTRY_VECTOR_CTRL), 1);
		assert_int_equal(entry_read(&e, &d, v, PCI_MSIX_ENTRY_DATA), 0);
	}
	assert_false(msix_enabled(&d.msix));
	dev_remove(&d);
	env_fini(&e);
}

static void test_bad_accesses(void **state)
{
	struct pci_env e;
	struct dev d;
	uint64_t seed = 42;

	(void)state;
	env_init(&e);
	dev_add(&e, &d, NR);
	program(&e, &d, 0, 0x30);
	/* 1- and 2-byte, misaligned and out-of-table accesses: ignored, all ones. */
	env_mmio_write(&e, d.bar + TABLE + 8, 1, 0x55);
	env_mmio_write(&e, d.bar + TABLE + 8, 2, 0x5555);
	env_mmio_write(&e, d.bar + TABLE + 4, 8, ~0ULL);	/* 8 bytes, 4-aligned */
	env_mmio_write(&e, d.bar + TABLE + 9, 4, ~0ULL);
	assert_int_equal(entry_read(&e, &d, 0, PCI_MSIX_ENTRY_DATA), 0x30);
	assert_int_equal(entry_read(&e, &d, 0, PCI_MSIX_ENTRY_UPPER_ADDR), 0);
	assert_int_equal(env_mmio_read(&e, d.bar + TABLE + 8, 2), 0xffff);
	assert_int_equal(env_mmio_read(&e, d.bar + TABLE + 4, 8), ~0ULL);
	assert_int_equal(msix_table_read(&d.msix, NR * 16, 4), 0xffffffff);
	msix_table_write(&d.msix, NR * 16, 4, 0);
	msix_table_write(&d.msix, ~0ULL - 3, 4, 0);
	assert_int_equal(msix_pba_read(&d.msix, 8, 8), ~0ULL);
	assert_int_equal(msix_pba_read(&d.msix, ~0ULL - 7, 8), ~0ULL);

	/* Random table traffic with MSI-X toggling: nothing breaks, state stays coherent. */
	for (int i = 0; i < 5000; i++) {
		uint64_t r = env_rand(&seed);
		unsigned int size = (r & 1) ? 4 : 8;
		uint64_t off = (r >> 8) % (NR * 16 + 32);

		if ((r >> 4) % 16 == 0)
			set_ctrl(&e, &d, (uint16_t)(r >> 32));
		else
			msix_table_write(&d.msix, off, size, r >> 16);
		if ((r >> 5) % 8 == 0)
			msix_notify(&d.msix, (unsigned int)(r >> 40) % (NR + 2));
	}
	for (unsigned int v = 0; v < NR; v++) {
		const struct msix_vector *x = &d.msix.vec[v];
		bool live = d.msix.enabled && !d.msix.fmask && !(x->ctrl & 1);

		assert_int_equal(x->msi.assigned, live);
		if (live)
			assert_false(x->stale);
		assert_int_equal(x->ctrl & ~1U, 0);
	}
	dev_remove(&d);
	env_fini(&e);
}

static void test_limits(void **state)
{
	struct pci_env e;
	struct dev d;
	struct msix m;
	struct helper_log log = { 0 };
	struct pci_dev_info info = { .name = "big", .vendor_id = 0x1af4, .device_id = 0x10f2 };

	(void)state;
	env_init(&e);
	struct pci_dev *p = pci_dev_add(e.host, &info);
	assert_non_null(p);
	log_set_sink(helper_log_sink, &log);
	assert_int_equal(msix_init(&m, p, 0, 0, 0, 0, 0x1000), -1);
	assert_int_equal(msix_init(&m, p, MSIX_MAX_VECTORS + 1, 0, 0, 0, 0x8000), -1);
	assert_int_equal(msix_init(&m, p, 4, 0, 4, 0, 0x1000), -1);	/* misaligned */
	assert_int_equal(msix_init(&m, p, 4, 6, 0, 0, 0x1000), -1);	/* no BAR 6 */
	assert_int_equal(log.errors, 4);
	/* 2048 vectors need more GSIs than a VM has: one error, everything given back. */
	assert_int_equal(msix_init(&m, p, MSIX_MAX_VECTORS, 0, 0, 0, 0x8000), -1);
	assert_int_equal(log.errors, 5);
	assert_non_null(strstr(log.last_error, "out of interrupt routes"));
	log_set_sink(NULL, NULL);
	msix_fini(&m);		/* harmless after a failure */
	/* 512 do fit; and afterwards the GSIs are free again for another device. */
	assert_int_equal(msix_init(&m, p, 512, 0, 0, 0, 0x2000), 0);
	assert_int_equal(m.vec[0].msi.gsi, 24);
	assert_int_equal(m.vec[511].msi.gsi, 24 + 511);
	assert_int_equal(env_ecam_read(&e, pci_dev_slot(p), (unsigned int)m.cap + PCI_MSIX_FLAGS,
				       2), 511);
	msix_fini(&m);
	dev_add(&e, &d, NR);
	assert_int_equal(d.msix.vec[0].msi.gsi, 24);
	dev_remove(&d);
	pci_dev_remove(p);
	env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capability),
		cmocka_unit_test(test_batched_routes),
		cmocka_unit_test(test_notify_pending),
		cmocka_unit_test(test_bad_accesses),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
