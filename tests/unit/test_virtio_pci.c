/*
 * virtio/pci.c and virtio/virtio.c with a fake device (its ops record the
 * calls): IDs and capabilities, feature negotiation, status, queue set-up,
 * reset, INTx and MSI-X interrupts, notifications (ioeventfd registration
 * followed across BAR moves, and the MMIO fallback), the PCI_CFG window,
 * device configuration, and hostile register traffic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "pci/msix.h"
#include "pci_env.h"
#include "helpers.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"
#include "vmm/memory.h"

#define DEV_FEATURES	(1ULL << 0 | 1ULL << 5)
#define RAM		(1ULL << 20)
#define NQ		2

struct fdev {
	struct virtio_dev vdev;
	uint8_t config[24];
	int activates, resets, config_reads, config_writes;
	int activate_ret;
	uint32_t last_off, last_len;
	void (*activate_hook)(struct fdev *f);	/* runs inside activate, if set */
	void *hook_arg;
};

static uint64_t fdev_features(void *dev)
{
	(void)dev;
	return DEV_FEATURES;
}

static void fdev_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
	struct fdev *f = dev;

	assert_true(off + len <= sizeof(f->config));
	f->config_reads++;
	memcpy(buf, f->config + off, len);
}

static void fdev_config_write(void *dev, uint32_t off, const void *buf, uint32_t len)
{
	struct fdev *f = dev;

	assert_true(off + len <= sizeof(f->config));
	f->config_writes++;
	f->last_off = off;
	f->last_len = len;
	memcpy(f->config + off, buf, len);
}

static int fdev_activate(void *dev)
{
	struct fdev *f = dev;

	f->activates++;
	if (f->activate_hook)
		f->activate_hook(f);
	return f->activate_ret;
}

static void fdev_reset(void *dev)
{
	((struct fdev *)dev)->resets++;
}

static const struct virtio_dev_ops fdev_ops = {
	.features = fdev_features,
	.config_read = fdev_config_read,
	.config_write = fdev_config_write,
	.activate = fdev_activate,
	.reset = fdev_reset,
};

struct t {
	struct pci_env e;
	struct guest_mem mem;
	struct fdev f;
	struct virtio_pci *vp;
	unsigned int slot;
	uint64_t bar;
	struct helper_log log;
};

static void t_init(struct t *t)
{
	memset(t, 0, sizeof(*t));
	env_init(&t->e);
	assert_int_equal(guest_mem_init(&t->mem, RAM, 0xc0000000ULL), 0);
	for (unsigned int i = 0; i < sizeof(t->f.config); i++)
		t->f.config[i] = (uint8_t)(0xa0 + i);
	t->f.vdev.name = "virtio-fake0";
	t->f.vdev.device_id = VIRTIO_ID_RNG;
	t->f.vdev.ops = &fdev_ops;
	t->f.vdev.dev = &t->f;
	t->f.vdev.mem = &t->mem;
	t->f.vdev.config_size = sizeof(t->f.config);
	t->f.vdev.nr_queues = NQ;
	t->f.vdev.queues[0].max_size = 256;
	t->f.vdev.queues[1].max_size = 64;
	t->vp = virtio_pci_create(t->e.host, &t->f.vdev, 0x00ff00);
	assert_non_null(t->vp);
	t->slot = pci_dev_slot(virtio_pci_dev(t->vp));
	t->bar = pci_dev_bar_addr(virtio_pci_dev(t->vp), 0);
	env_ecam_write(&t->e, t->slot, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	log_set_sink(helper_log_sink, &t->log);
}

static void t_fini(struct t *t)
{
	log_set_sink(NULL, NULL);
	virtio_pci_destroy(t->vp);
	guest_mem_destroy(&t->mem);
	env_fini(&t->e);
}

static uint32_t cr(struct t *t, unsigned int off, unsigned int size)
{
	return (uint32_t)env_mmio_read(&t->e, t->bar + VIRTIO_PCI_COMMON_OFF + off, size);
}

static void cw(struct t *t, unsigned int off, unsigned int size, uint32_t v)
{
	env_mmio_write(&t->e, t->bar + VIRTIO_PCI_COMMON_OFF + off, size, v);
}

static uint8_t status(struct t *t)
{
	return (uint8_t)cr(t, VIRTIO_PCI_COMMON_STATUS, 1);
}

static void set_status(struct t *t, uint8_t s)
{
	cw(t, VIRTIO_PCI_COMMON_STATUS, 1, s);
}

static void write_features(struct t *t, uint64_t f)
{
	cw(t, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	cw(t, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)f);
	cw(t, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	cw(t, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)(f >> 32));
}

static void negotiate(struct t *t, uint64_t f)
{
	set_status(t, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	set_status(t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	write_features(t, f);
	set_status(t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			      VIRTIO_CONFIG_S_FEATURES_OK);
}

#define ALL_OK (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK)
#define V1 (1ULL << VIRTIO_F_VERSION_1)

static void set_queue(struct t *t, unsigned int q, uint16_t size, uint64_t desc, uint64_t avail,
		      uint64_t used)
{
	cw(t, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
	cw(t, VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
	cw(t, VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t)desc);
	cw(t, VIRTIO_PCI_COMMON_Q_DESCHI, 4, (uint32_t)(desc >> 32));
	cw(t, VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t)avail);
	cw(t, VIRTIO_PCI_COMMON_Q_AVAILHI, 4, (uint32_t)(avail >> 32));
	cw(t, VIRTIO_PCI_COMMON_Q_USEDLO, 4, (uint32_t)used);
	cw(t, VIRTIO_PCI_COMMON_Q_USEDHI, 4, (uint32_t)(used >> 32));
}

/* Offset in configuration space of the vendor capability of cfg_type, or 0. */
static unsigned int find_vcap(struct t *t, uint8_t type)
{
	unsigned int p = env_ecam_read(&t->e, t->slot, PCI_CAPABILITY_LIST, 1), n = 0;

	for (; p && n < 48; n++, p = env_ecam_read(&t->e, t->slot, p + 1, 1))
		if (env_ecam_read(&t->e, t->slot, p, 1) == PCI_CAP_ID_VNDR &&
		    env_ecam_read(&t->e, t->slot, p + VIRTIO_PCI_CAP_CFG_TYPE, 1) == type)
			return p;
	return 0;
}

/* ---- identity and layout ---- */

static void test_ids_and_caps(void **state)
{
	static const struct {
		uint8_t type;
		uint32_t off, len;
	} caps[] = {
		{ VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF, 0x3c },
		{ VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF, NQ * 4 },
		{ VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1 },
		{ VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF, 24 },
		{ VIRTIO_PCI_CAP_PCI_CFG, 0, 0 },
	};
	struct t t;
	struct pci_env *e = &t.e;

	(void)state;
	t_init(&t);
	assert_int_equal(env_ecam_read(e, t.slot, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(env_ecam_read(e, t.slot, PCI_DEVICE_ID, 2), 0x1040 + VIRTIO_ID_RNG);
	assert_int_equal(env_ecam_read(e, t.slot, PCI_REVISION_ID, 1), 1);
	assert_int_equal(env_ecam_read(e, t.slot, PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(env_ecam_read(e, t.slot, PCI_SUBSYSTEM_ID, 2), 0x1040 + VIRTIO_ID_RNG);
	assert_int_equal(env_ecam_read(e, t.slot, PCI_CLASS_REVISION, 4) >> 8, 0x00ff00);
	assert_int_equal(env_ecam_read(e, t.slot, PCI_INTERRUPT_PIN, 1), 1);
	/* BAR 0: 64-bit, 32 KiB, in the 64-bit window; no other BAR. */
	assert_true(t.bar >= ENV_MMIO64 && t.bar % VIRTIO_PCI_BAR_SIZE == 0);
	assert_int_equal(env_ecam_read(e, t.slot, PCI_BASE_ADDRESS_0, 4) & 0xf,
			 PCI_BASE_ADDRESS_MEM_TYPE_64);
	for (unsigned int r = PCI_BASE_ADDRESS_2; r <= PCI_BASE_ADDRESS_5; r += 4)
		assert_int_equal(env_ecam_read(e, t.slot, r, 4), 0);

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		unsigned int p = find_vcap(&t, caps[i].type);

		assert_int_not_equal(p, 0);
		assert_int_equal(env_ecam_read(e, t.slot, p + VIRTIO_PCI_CAP_BAR, 1), 0);
		if (caps[i].type == VIRTIO_PCI_CAP_PCI_CFG) {
			assert_int_equal(env_ecam_read(e, t.slot, p + VIRTIO_PCI_CAP_LEN, 1), 20);
			continue;
		}
		assert_int_equal(env_ecam_read(e, t.slot, p + VIRTIO_PCI_CAP_OFFSET, 4), caps[i].off);
		assert_int_equal(env_ecam_read(e, t.slot, p + VIRTIO_PCI_CAP_LENGTH, 4), caps[i].len);
		if (caps[i].type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
			assert_int_equal(env_ecam_read(e, t.slot, p + VIRTIO_PCI_CAP_LEN, 1), 20);
			assert_int_equal(env_ecam_read(e, t.slot, p + 16, 4), 4);	/* multiplier */
		} else {
			assert_int_equal(env_ecam_read(e, t.slot, p + VIRTIO_PCI_CAP_LEN, 1), 16);
		}
		/* Read-only. */
		env_ecam_write(e, t.slot, p + VIRTIO_PCI_CAP_OFFSET, 4, 0x1234);
		assert_int_equal(env_ecam_read(e, t.slot, p + VIRTIO_PCI_CAP_OFFSET, 4), caps[i].off);
	}
	/* MSI-X: nr_queues + 1 vectors, table and PBA in BAR 0. */
	unsigned int p = env_ecam_read(e, t.slot, PCI_CAPABILITY_LIST, 1);
	while (p && env_ecam_read(e, t.slot, p, 1) != PCI_CAP_ID_MSIX)
		p = env_ecam_read(e, t.slot, p + 1, 1);
	assert_int_not_equal(p, 0);
	assert_int_equal(env_ecam_read(e, t.slot, p + PCI_MSIX_FLAGS, 2), NQ);
	assert_int_equal(env_ecam_read(e, t.slot, p + PCI_MSIX_TABLE, 4), VIRTIO_PCI_MSIX_TABLE_OFF);
	assert_int_equal(env_ecam_read(e, t.slot, p + PCI_MSIX_PBA, 4), VIRTIO_PCI_MSIX_PBA_OFF);
	/* Power-on register values. */
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_NUMQ, 2), NQ);
	assert_int_equal(status(&t), 0);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	assert_int_equal(t.log.errors + t.log.warnings, 0);
	t_fini(&t);
}

static void test_create_refused(void **state)
{
	struct pci_env e;
	struct guest_mem mem;
	struct fdev f;
	struct helper_log log = { 0 };

	(void)state;
	env_init(&e);
	assert_int_equal(guest_mem_init(&mem, RAM, 0xc0000000ULL), 0);
	memset(&f, 0, sizeof(f));
	f.vdev.name = "bad";
	f.vdev.ops = &fdev_ops;
	f.vdev.dev = &f;
	f.vdev.mem = &mem;
	log_set_sink(helper_log_sink, &log);
	f.vdev.nr_queues = 0;
	assert_null(virtio_pci_create(e.host, &f.vdev, 0));
	f.vdev.nr_queues = VIRTIO_MAX_QUEUES + 1;
	assert_null(virtio_pci_create(e.host, &f.vdev, 0));
	f.vdev.nr_queues = 1;
	f.vdev.queues[0].max_size = 100;
	assert_null(virtio_pci_create(e.host, &f.vdev, 0));
	f.vdev.queues[0].max_size = 128;
	f.vdev.config_size = VIRTIO_PCI_DEVICE_MAX + 1;
	assert_null(virtio_pci_create(e.host, &f.vdev, 0));
	log_set_sink(NULL, NULL);
	assert_int_equal(log.errors, 4);
	assert_int_equal(e.mmio.nr, 1);		/* nothing left behind: the ECAM only */
	assert_int_equal(pci_host_config_read(e.host, 1, 0, 4), 0xffffffff);
	guest_mem_destroy(&mem);
	env_fini(&e);
}

/* ---- negotiation and status ---- */

static void test_negotiation(void **state)
{
	struct t t;

	(void)state;
	t_init(&t);
	cw(&t, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	uint64_t lo = cr(&t, VIRTIO_PCI_COMMON_DF, 4);
	cw(&t, VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	uint64_t hi = cr(&t, VIRTIO_PCI_COMMON_DF, 4);
	uint64_t offered = hi << 32 | lo;
	assert_int_equal(offered, DEV_FEATURES | V1 | 1ULL << VIRTIO_RING_F_EVENT_IDX |
					  1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	cw(&t, VIRTIO_PCI_COMMON_DFSELECT, 4, 2);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_DF, 4), 0);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_DFSELECT, 4), 2);
	/* device_feature is read-only. */
	cw(&t, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	cw(&t, VIRTIO_PCI_COMMON_DF, 4, 0);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_DF, 4), (uint32_t)offered);

	/* A feature that was not offered: FEATURES_OK does not stick. */
	negotiate(&t, V1 | 1ULL << 40);
	assert_int_equal(status(&t), VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	/* Nor without VERSION_1 (a legacy driver). */
	set_status(&t, 0);
	negotiate(&t, DEV_FEATURES);
	assert_int_equal(status(&t) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
	/* DRIVER_OK without FEATURES_OK: ignored, nothing activated. */
	set_status(&t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			       VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(status(&t) & VIRTIO_CONFIG_S_DRIVER_OK, 0);
	assert_int_equal(t.f.activates, 0);

	/* A subset with VERSION_1: accepted, and then read-only. */
	set_status(&t, 0);
	negotiate(&t, V1 | 1ULL << 5 | 1ULL << VIRTIO_RING_F_EVENT_IDX);
	assert_int_equal(status(&t), ALL_OK);
	assert_int_equal(t.f.vdev.features, V1 | 1ULL << 5 | 1ULL << VIRTIO_RING_F_EVENT_IDX);
	assert_true(virtio_has_feature(&t.f.vdev, VIRTIO_RING_F_EVENT_IDX));
	write_features(&t, V1);
	cw(&t, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_GF, 4), 1U << 5 | 1U << VIRTIO_RING_F_EVENT_IDX);
	assert_int_equal(t.f.vdev.features, V1 | 1ULL << 5 | 1ULL << VIRTIO_RING_F_EVENT_IDX);
	/* Bits are never cleared but by a reset; the driver cannot set NEEDS_RESET. */
	set_status(&t, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(status(&t), ALL_OK);
	/* Wrong-size status writes are ignored. */
	cw(&t, VIRTIO_PCI_COMMON_STATUS, 2, 0);
	assert_int_equal(status(&t), ALL_OK);

	set_status(&t, ALL_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(t.f.activates, 1);
	assert_int_equal(status(&t), ALL_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	set_status(&t, ALL_OK | VIRTIO_CONFIG_S_DRIVER_OK);	/* again: no second activate */
	assert_int_equal(t.f.activates, 1);
	assert_int_equal(t.log.errors + t.log.warnings, 0);
	t_fini(&t);
}

/* ---- queues ---- */

static void test_queue_setup(void **state)
{
	struct t t;

	(void)state;
	t_init(&t);
	/* Before FEATURES_OK a queue cannot be enabled. */
	set_queue(&t, 0, 64, 0x10000, 0x11000, 0x12000);
	cw(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	negotiate(&t, V1 | 1ULL << VIRTIO_RING_F_INDIRECT_DESC);

	/* Sizes: powers of two up to the maximum only. */
	cw(&t, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	static const uint16_t bad[] = { 0, 100, 512, 0xffff, 3 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cw(&t, VIRTIO_PCI_COMMON_Q_SIZE, 2, bad[i]);
		assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);
	}
	cw(&t, VIRTIO_PCI_COMMON_Q_SIZE, 2, 256);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
	cw(&t, VIRTIO_PCI_COMMON_Q_SIZE, 2, 128);
	/* Vectors: beyond the table reads NO_VECTOR. */
	cw(&t, VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_MSIX, 2), 1);
	cw(&t, VIRTIO_PCI_COMMON_Q_MSIX, 2, NQ + 1);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	cw(&t, VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	cw(&t, VIRTIO_PCI_COMMON_MSIX, 2, 0);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_MSIX, 2), 0);
	cw(&t, VIRTIO_PCI_COMMON_MSIX, 2, 0x1234);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	/* Addresses read back; notify offsets are the queue indexes. */
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0x10000);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_USEDLO, 4), 0x12000);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_NOFF, 2), 0);
	cw(&t, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_NOFF, 2), 1);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);
	/* Enable queue 0. */
	cw(&t, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	cw(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	struct virtio_queue *q = &t.f.vdev.queues[0];
	assert_true(q->vq.enabled);
	assert_int_equal(q->vq.size, 128);
	assert_true(q->vq.indirect);
	assert_false(q->vq.event_idx);
	assert_ptr_equal(q->vq.desc, guest_mem_ptr(&t.mem, 0x10000, 16));
	/* Enabled: size and addresses are read-only now; enable 0 is ignored. */
	cw(&t, VIRTIO_PCI_COMMON_Q_SIZE, 2, 32);
	cw(&t, VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x20000);
	cw(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 0);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_SIZE, 2), 128);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0x10000);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	assert_int_equal(q->vq.size, 128);

	/* queue_select out of range: fields read 0, writes go nowhere. */
	cw(&t, VIRTIO_PCI_COMMON_Q_SELECT, 2, NQ);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_SELECT, 2), NQ);
	for (unsigned int off = VIRTIO_PCI_COMMON_Q_SIZE; off < VIRTIO_PCI_COMMON_Q_NDATA;
	     off += 2)
		assert_int_equal(cr(&t, off, 2), 0);
	cw(&t, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0xffff);
	set_queue(&t, 0xffff, 16, 0x30000, 0x31000, 0x32000);
	cw(&t, VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);
	cw(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	cw(&t, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0);
	assert_false(t.f.vdev.queues[1].ready);

	/* DRIVER_OK: activated once; queue fields then read-only. */
	set_status(&t, ALL_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(t.f.activates, 1);
	cw(&t, VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);

	/* Reset: the device's reset runs, everything back to power-on. */
	set_status(&t, 0);
	assert_int_equal(t.f.resets, 1);
	assert_int_equal(status(&t), 0);
	assert_false(q->vq.enabled);
	assert_false(q->ready);
	assert_int_equal(t.f.vdev.features, 0);
	cw(&t, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	cw(&t, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_GF, 4), 0);
	assert_int_equal(t.log.errors + t.log.warnings, 0);
	t_fini(&t);
}

static void test_bad_rings(void **state)
{
	static const struct {
		uint64_t desc, avail, used;
	} bad[] = {
		{ RAM - 16, 0x11000, 0x12000 },		/* desc runs past RAM */
		{ 0x10000, 0x11000, 0xc0000000ULL },	/* used in the MMIO hole */
		{ 0x10008, 0x11000, 0x12000 },		/* desc misaligned */
		{ 0x10000, 0xffffffffffffff00ULL, 0x12000 },	/* wraps */
	};
	struct t t;

	(void)state;
	t_init(&t);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		negotiate(&t, V1);
		set_queue(&t, 0, 64, bad[i].desc, bad[i].avail, bad[i].used);
		cw(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
		assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
		assert_int_equal(status(&t), ALL_OK | VIRTIO_CONFIG_S_NEEDS_RESET);
		/* A config interrupt told the driver (INTx: MSI-X is off). */
		uint8_t isr = (uint8_t)env_mmio_read(&t.e, t.bar + VIRTIO_PCI_ISR_OFF, 1);
		assert_int_equal(isr, VIRTIO_PCI_ISR_CONFIG);
		/* DRIVER_OK is refused now. */
		set_status(&t, ALL_OK | VIRTIO_CONFIG_S_DRIVER_OK);
		assert_int_equal(status(&t) & VIRTIO_CONFIG_S_DRIVER_OK, 0);
		assert_int_equal(t.f.activates, 0);
		set_status(&t, 0);
		assert_int_equal(status(&t), 0);
	}
	/* Logged once, naming the device and why; the repeats at debug level only. */
	assert_int_equal(t.log.warnings, 1);
	assert_non_null(strstr(t.log.last_warning, "virtio-fake0"));
	assert_non_null(strstr(t.log.last_warning, "outside guest RAM"));
	assert_int_equal(t.log.errors, 0);
	assert_int_equal(t.f.vdev.failures, 4);

	/* A device that cannot start: NEEDS_RESET, no DRIVER_OK. */
	t.f.activate_ret = -1;
	negotiate(&t, V1);
	set_queue(&t, 0, 64, 0x10000, 0x11000, 0x12000);
	cw(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	set_status(&t, ALL_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(t.f.activates, 1);
	assert_int_equal(status(&t), ALL_OK | VIRTIO_CONFIG_S_NEEDS_RESET);
	/* After a reset all is well again. */
	t.f.activate_ret = 0;
	set_status(&t, 0);
	negotiate(&t, V1);
	set_queue(&t, 0, 64, 0x10000, 0x11000, 0x12000);
	cw(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	set_status(&t, ALL_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(status(&t), ALL_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	t_fini(&t);
}

/* ---- interrupts ---- */

static void test_intx(void **state)
{
	struct t t;

	(void)state;
	t_init(&t);
	int gsi = pci_dev_gsi(virtio_pci_dev(t.vp));
	assert_true(gsi >= ENV_GSI_BASE && gsi < ENV_GSI_BASE + ENV_GSI_COUNT);
	t.f.vdev.notify(&t.f.vdev, 0);
	assert_int_equal(env_counts.line[gsi], 1);
	assert_true(env_ecam_read(&t.e, t.slot, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	/* Reading the ISR returns and clears it, and drops the line. */
	assert_int_equal(env_mmio_read(&t.e, t.bar + VIRTIO_PCI_ISR_OFF, 1), 1);
	assert_int_equal(env_counts.line[gsi], 0);
	assert_false(env_ecam_read(&t.e, t.slot, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	assert_int_equal(env_mmio_read(&t.e, t.bar + VIRTIO_PCI_ISR_OFF, 1), 0);
	/* The ISR is read-only. */
	t.f.vdev.notify(&t.f.vdev, 1);
	env_mmio_write(&t.e, t.bar + VIRTIO_PCI_ISR_OFF, 1, 0);
	assert_int_equal(env_mmio_read(&t.e, t.bar + VIRTIO_PCI_ISR_OFF, 1), 1);

	/* Config change: generation bumped, ISR bit 1. */
	uint32_t gen = cr(&t, VIRTIO_PCI_COMMON_CFGGENERATION, 1);
	virtio_notify_config(&t.f.vdev);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_CFGGENERATION, 1), (gen + 1) & 0xff);
	assert_int_equal(env_counts.line[gsi], 1);
	assert_int_equal(env_mmio_read(&t.e, t.bar + VIRTIO_PCI_ISR_OFF, 1), VIRTIO_PCI_ISR_CONFIG);
	/* A queue that does not exist: nothing. */
	t.f.vdev.notify(&t.f.vdev, NQ);
	t.f.vdev.notify(&t.f.vdev, -2);
	assert_int_equal(env_counts.line[gsi], 0);
	assert_int_equal(env_mmio_read(&t.e, t.bar + VIRTIO_PCI_ISR_OFF, 1), 0);
	/* A reset deasserts. */
	t.f.vdev.notify(&t.f.vdev, 0);
	set_status(&t, 0);
	assert_int_equal(env_counts.line[gsi], 0);
	t_fini(&t);
}

static void test_msix(void **state)
{
	struct t t;

	(void)state;
	t_init(&t);
	unsigned int p = env_ecam_read(&t.e, t.slot, PCI_CAPABILITY_LIST, 1);
	while (env_ecam_read(&t.e, t.slot, p, 1) != PCI_CAP_ID_MSIX)
		p = env_ecam_read(&t.e, t.slot, p + 1, 1);
	env_ecam_write(&t.e, t.slot, p + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	for (unsigned int v = 0; v <= NQ; v++) {
		uint64_t ent = t.bar + VIRTIO_PCI_MSIX_TABLE_OFF + v * 16;

		env_mmio_write(&t.e, ent, 4, 0xfee00000);
		env_mmio_write(&t.e, ent + 4, 4, 0);
		env_mmio_write(&t.e, ent + 8, 4, 0x40 + v);
		env_mmio_write(&t.e, ent + 12, 4, v == 2);	/* vector 2 stays masked */
	}
	cw(&t, VIRTIO_PCI_COMMON_MSIX, 2, 0);
	cw(&t, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	cw(&t, VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	cw(&t, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	cw(&t, VIRTIO_PCI_COMMON_Q_MSIX, 2, 2);
	env_counts_reset();

	int gsi = pci_dev_gsi(virtio_pci_dev(t.vp));
	int writes = 0;
	for (int fd = 0; fd < 1024; fd++)
		writes += env_counts.writes[fd];
	assert_int_equal(writes, 0);
	/* Queue 0 -> vector 1 fires; no ISR, no INTx. */
	t.f.vdev.notify(&t.f.vdev, 0);
	t.f.vdev.notify(&t.f.vdev, -1);
	for (int fd = 0; fd < 1024; fd++)
		writes += env_counts.writes[fd];
	assert_int_equal(writes, 2);
	assert_int_equal(env_counts.line[gsi], -1);
	assert_int_equal(env_mmio_read(&t.e, t.bar + VIRTIO_PCI_ISR_OFF, 1), 0);
	/* Queue 1 -> vector 2, masked: pending in the PBA. */
	t.f.vdev.notify(&t.f.vdev, 1);
	assert_int_equal(env_mmio_read(&t.e, t.bar + VIRTIO_PCI_MSIX_PBA_OFF, 8), 1 << 2);
	/* A queue without a vector: nothing at all. */
	cw(&t, VIRTIO_PCI_COMMON_Q_MSIX, 2, VIRTIO_MSI_NO_VECTOR);
	t.f.vdev.notify(&t.f.vdev, 1);
	writes = 0;
	for (int fd = 0; fd < 1024; fd++)
		writes += env_counts.writes[fd];
	assert_int_equal(writes, 2);
	assert_int_equal(env_counts.line[gsi], -1);
	/* Unmasking vector 2 delivers what was pending. */
	env_mmio_write(&t.e, t.bar + VIRTIO_PCI_MSIX_TABLE_OFF + 2 * 16 + 12, 4, 0);
	assert_int_equal(env_mmio_read(&t.e, t.bar + VIRTIO_PCI_MSIX_PBA_OFF, 8), 0);
	writes = 0;
	for (int fd = 0; fd < 1024; fd++)
		writes += env_counts.writes[fd];
	assert_int_equal(writes, 3);

	/* A device reset leaves MSI-X alone; a PCI reset does not. */
	set_status(&t, 0);
	assert_int_equal(env_ecam_read(&t.e, t.slot, p + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_ENABLE,
			 PCI_MSIX_FLAGS_ENABLE);
	pci_host_reset(t.e.host);
	assert_int_equal(env_ecam_read(&t.e, t.slot, p + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_ENABLE,
			 0);
	assert_int_equal(t.f.resets, 2);
	env_ecam_write(&t.e, t.slot, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(env_mmio_read(&t.e, t.bar + VIRTIO_PCI_MSIX_TABLE_OFF + 12, 4), 1);
	t_fini(&t);
}

/* ---- notifications ---- */

static uint64_t kicks(int fd)
{
	uint64_t n = 0;

	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static void test_notify(void **state)
{
	struct t t;

	(void)state;
	t_init(&t);
	struct virtio_dev *v = &t.f.vdev;
	/* Decode on in t_init registered one ioeventfd per queue. */
	env_counts_reset();
	env_ecam_write(&t.e, t.slot, PCI_COMMAND, 2, 0);
	assert_int_equal(env_counts.ioeventfd_deassign, NQ);
	env_ecam_write(&t.e, t.slot, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(env_counts.ioeventfd_assign, NQ);
	assert_int_equal(env_counts.last_ioeventfd_addr, t.bar + VIRTIO_PCI_NOTIFY_OFF + 4 * (NQ - 1));

	/* The MMIO fallback signals the queue's kick_fd itself, whatever the value. */
	env_mmio_write(&t.e, t.bar + VIRTIO_PCI_NOTIFY_OFF + 4, 2, 1);
	assert_int_equal(kicks(v->queues[1].kick_fd), 1);
	assert_int_equal(kicks(v->queues[0].kick_fd), 0);
	env_mmio_write(&t.e, t.bar + VIRTIO_PCI_NOTIFY_OFF, 4, 0x12345);
	env_mmio_write(&t.e, t.bar + VIRTIO_PCI_NOTIFY_OFF + 2, 1, 0);
	assert_int_equal(kicks(v->queues[0].kick_fd), 2);
	env_mmio_write(&t.e, t.bar + VIRTIO_PCI_NOTIFY_OFF + 4 * NQ, 2, 0);	/* no such queue */
	env_mmio_write(&t.e, t.bar + VIRTIO_PCI_NOTIFY_OFF + 0xffc, 2, 0);
	assert_int_equal(kicks(v->queues[0].kick_fd), 0);
	assert_int_equal(kicks(v->queues[1].kick_fd), 0);
	assert_int_equal(env_mmio_read(&t.e, t.bar + VIRTIO_PCI_NOTIFY_OFF, 2), 0);

	/* A BAR move takes the ioeventfds along. */
	uint64_t nbar = ENV_MMIO64 + 0x40000000;
	env_counts_reset();
	env_ecam_write(&t.e, t.slot, PCI_BASE_ADDRESS_0, 4, (uint32_t)nbar);
	env_ecam_write(&t.e, t.slot, PCI_BASE_ADDRESS_1, 4, (uint32_t)(nbar >> 32));
	assert_int_equal(env_counts.ioeventfd_deassign, NQ);
	assert_int_equal(env_counts.ioeventfd_assign, NQ);
	assert_int_equal(env_counts.last_ioeventfd_addr, nbar + VIRTIO_PCI_NOTIFY_OFF + 4);
	assert_int_equal(pci_dev_bar_addr(virtio_pci_dev(t.vp), 0), nbar);
	env_mmio_write(&t.e, nbar + VIRTIO_PCI_NOTIFY_OFF + 4, 2, 1);
	assert_int_equal(kicks(v->queues[1].kick_fd), 1);
	t.bar = nbar;
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_NUMQ, 2), NQ);

	/* Destroying it removes them. */
	env_counts_reset();
	log_set_sink(NULL, NULL);
	virtio_pci_destroy(t.vp);
	assert_int_equal(env_counts.ioeventfd_deassign, NQ);
	t.vp = NULL;
	guest_mem_destroy(&t.mem);
	env_fini(&t.e);
}

/* ---- the PCI_CFG window and device configuration ---- */

static void window(struct t *t, unsigned int p, uint8_t bar, uint32_t off, uint32_t len)
{
	env_ecam_write(&t->e, t->slot, p + VIRTIO_PCI_CAP_BAR, 1, bar);
	env_ecam_write(&t->e, t->slot, p + VIRTIO_PCI_CAP_OFFSET, 4, off);
	env_ecam_write(&t->e, t->slot, p + VIRTIO_PCI_CAP_LENGTH, 4, len);
}

static void test_pci_cfg_window(void **state)
{
	struct t t;

	(void)state;
	t_init(&t);
	unsigned int p = find_vcap(&t, VIRTIO_PCI_CAP_PCI_CFG), data = p + 16;
	assert_int_not_equal(p, 0);
	/* Reads: device_feature low word through configuration space alone. */
	env_ecam_write(&t.e, t.slot, PCI_COMMAND, 2, 0);	/* works without decode too */
	window(&t, p, 0, VIRTIO_PCI_COMMON_DF, 4);
	assert_int_equal(env_ecam_read(&t.e, t.slot, data, 4), (uint32_t)DEV_FEATURES |
			 1U << VIRTIO_RING_F_EVENT_IDX | 1U << VIRTIO_RING_F_INDIRECT_DESC);
	window(&t, p, 0, VIRTIO_PCI_COMMON_NUMQ, 2);
	assert_int_equal(env_conf1_read(&t.e, t.slot, data, 2), NQ);
	/* Writes: device_status. */
	window(&t, p, 0, VIRTIO_PCI_COMMON_STATUS, 1);
	env_conf1_write(&t.e, t.slot, data, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	assert_int_equal(t.f.vdev.status, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	assert_int_equal(env_conf1_read(&t.e, t.slot, data, 1), VIRTIO_CONFIG_S_ACKNOWLEDGE);
	/* Device config through the window. */
	window(&t, p, 0, VIRTIO_PCI_DEVICE_OFF + 4, 4);
	assert_int_equal(env_ecam_read(&t.e, t.slot, data, 4), 0xa7a6a5a4);
	/* Invalid windows touch nothing. */
	int reads = t.f.config_reads;
	window(&t, p, 1, VIRTIO_PCI_DEVICE_OFF, 4);		/* BAR 1 */
	env_ecam_read(&t.e, t.slot, data, 4);
	window(&t, p, 0, VIRTIO_PCI_DEVICE_OFF, 3);		/* length 3 */
	env_ecam_read(&t.e, t.slot, data, 4);
	window(&t, p, 0, VIRTIO_PCI_DEVICE_OFF + 2, 4);		/* misaligned */
	env_ecam_read(&t.e, t.slot, data, 4);
	window(&t, p, 0, 0xfffffffc, 4);			/* outside the BAR */
	env_ecam_read(&t.e, t.slot, data, 4);
	env_ecam_write(&t.e, t.slot, data, 4, 0);
	assert_int_equal(t.f.config_reads, reads);
	assert_int_equal(t.f.config_writes, 0);
	window(&t, p, 0, VIRTIO_PCI_COMMON_STATUS, 1);
	assert_int_equal(env_conf1_read(&t.e, t.slot, data, 1), VIRTIO_CONFIG_S_ACKNOWLEDGE);
	t_fini(&t);
}

static void test_device_config(void **state)
{
	struct t t;
	uint64_t dc;

	(void)state;
	t_init(&t);
	dc = t.bar + VIRTIO_PCI_DEVICE_OFF;
	assert_int_equal(env_mmio_read(&t.e, dc, 1), 0xa0);
	assert_int_equal(env_mmio_read(&t.e, dc + 2, 2), 0xa3a2);
	assert_int_equal(env_mmio_read(&t.e, dc + 16, 8), 0xb7b6b5b4b3b2b1b0ULL);
	assert_int_equal(t.f.config_reads, 3);
	/* Beyond config_size: 0, the device not asked. */
	assert_int_equal(env_mmio_read(&t.e, dc + 22, 4), 0);
	assert_int_equal(env_mmio_read(&t.e, dc + 0x800, 4), 0);
	assert_int_equal(t.f.config_reads, 3);
	env_mmio_write(&t.e, dc + 8, 4, 0x11223344);
	assert_int_equal(t.f.config_writes, 1);
	assert_int_equal(t.f.last_off, 8);
	assert_int_equal(t.f.last_len, 4);
	assert_int_equal(env_mmio_read(&t.e, dc + 8, 4), 0x11223344);
	env_mmio_write(&t.e, dc + 23, 2, 0);
	assert_int_equal(t.f.config_writes, 1);
	t_fini(&t);
}

/* ---- hostile traffic ---- */

/*
 * A second vCPU writes the common configuration while the first is inside
 * activate (DRIVER_OK written, the device's thread reading the queues):
 * that write must wait for the activation, not change the queues under the
 * device, and then find the queue fields read-only.
 */
struct race {
	struct t *t;
	pthread_t thread;
	bool done;			/* the second vCPU's write returned */
	bool enabled_at_activate;	/* what the device saw for queue 1 */
};

static void *race_enable_q1(void *arg)
{
	struct race *r = arg;

	cw(r->t, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void race_hook(struct fdev *f)
{
	struct race *r = f->hook_arg;

	r->enabled_at_activate = f->vdev.queues[1].vq.enabled;
	assert_int_equal(pthread_create(&r->thread, NULL, race_enable_q1, r), 0);
	/* Give the second vCPU every chance to get its write in (200 ms). */
	for (int i = 0; i < 200 && !__atomic_load_n(&r->done, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
}

static void test_common_write_during_activate(void **state)
{
	struct t t;
	struct race r = { .t = &t };

	(void)state;
	t_init(&t);
	negotiate(&t, V1);
	set_queue(&t, 0, 64, 0x10000, 0x11000, 0x12000);
	cw(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	/* Queue 1 laid out but not enabled; queue_select stays on it. */
	set_queue(&t, 1, 64, 0x20000, 0x21000, 0x22000);
	t.f.activate_hook = race_hook;
	t.f.hook_arg = &r;
	set_status(&t, ALL_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(pthread_join(r.thread, NULL), 0);
	assert_int_equal(t.f.activates, 1);
	assert_false(r.enabled_at_activate);
	/* The device was started without queue 1: it must not read as enabled now. */
	cw(&t, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	assert_false(t.f.vdev.queues[1].vq.enabled);
	assert_int_equal(status(&t), ALL_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	t_fini(&t);
}

static void test_hostile(void **state)
{
	struct t t;
	uint64_t seed = 0x1234567;

	(void)state;
	t_init(&t);
	for (int i = 0; i < 30000; i++) {
		uint64_t r = env_rand(&seed);
		unsigned int size = 1U << ((r >> 4) % 4);
		uint64_t off;
		uint64_t v = env_rand(&seed);

		switch (r % 8) {
		case 0:	/* anywhere in the BAR */
			off = (r >> 8) % VIRTIO_PCI_BAR_SIZE;
			break;
		case 1:
		case 2:
		case 3:	/* the common configuration, whole fields mostly */
			off = (r >> 8) % 0x40;
			break;
		case 4:	/* status, with a bias towards useful values */
			off = VIRTIO_PCI_COMMON_STATUS;
			size = 1;
			v = (r >> 12) % 3 == 0 ? 0 : v;
			break;
		case 5:	/* the MSI-X table */
			off = VIRTIO_PCI_MSIX_TABLE_OFF + (r >> 8) % 64;
			break;
		default: /* configuration space, the PCI_CFG window included */
			pci_host_config_write(t.e.host, t.slot, (unsigned int)(r >> 8) % 256,
					      size > 4 ? 4 : size, (uint32_t)v);
			(void)pci_host_config_read(t.e.host, t.slot, (unsigned int)(r >> 20) % 256,
						   size > 4 ? 4 : size);
			t.f.vdev.notify(&t.f.vdev, (int)((r >> 30) % 4) - 1);
			continue;
		}
		uint64_t bar = pci_dev_bar_addr(virtio_pci_dev(t.vp), 0);
		if ((r >> 40) & 1)
			env_mmio_write(&t.e, bar + off, size, v);
		else
			(void)env_mmio_read(&t.e, bar + off, size);
	}
	assert_int_equal(t.log.errors, 0);
	assert_true(t.log.warnings <= 1);

	/* Afterwards a PCI reset and a proper set-up work. */
	pci_host_reset(t.e.host);
	env_ecam_write(&t.e, t.slot, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	set_status(&t, 0);
	int activates = t.f.activates;
	negotiate(&t, V1);
	set_queue(&t, 1, 64, 0x10000, 0x11000, 0x12000);
	cw(&t, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	set_status(&t, ALL_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(status(&t), ALL_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(t.f.activates, activates + 1);
	assert_true(t.f.vdev.queues[1].vq.enabled);
	t_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_and_caps),
		cmocka_unit_test(test_create_refused),
		cmocka_unit_test(test_negotiation),
		cmocka_unit_test(test_queue_setup),
		cmocka_unit_test(test_bad_rings),
		cmocka_unit_test(test_intx),
		cmocka_unit_test(test_msix),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_pci_cfg_window),
		cmocka_unit_test(test_device_config),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_common_write_during_activate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
