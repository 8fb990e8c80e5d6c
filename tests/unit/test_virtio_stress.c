/*
 * virtio-blk and virtio-rng behind the real virtio-pci transport and MSI-X,
 * driven by several "vCPU" threads at once the way a hostile guest can:
 * one driver sets the device up, fills the ring with requests and resets
 * it while they are in flight, over and over; others meanwhile hammer the
 * common configuration, the MSI-X table, the function mask, the ISR and
 * the notify addresses. Nothing may crash, hang or race (run under TSan
 * and ASan too), and afterwards a clean set-up reads the image correctly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <linux/pci_regs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/disk.h"
#include "helpers.h"
#include "pci_env.h"
#include "util/log.h"
#include "virtio/blk.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "vmm/memory.h"

#define RAM		(4ULL << 20)
#define IMG_SIZE	(1ULL << 20)
#define QS		64	/* queue size */
#define NREQ		16	/* requests in flight at most, 3 descriptors each */
#define DESC_GPA	0x10000ULL
#define AVAIL_GPA	0x11000ULL
#define USED_GPA	0x12000ULL
#define HDR_GPA		0x20000ULL	/* request k: header at + 64 k, status at + 64 k + 32 */
#define DATA_GPA	0x100000ULL	/* request k: 4 KiB at + 4 KiB k */
#define V1		(1ULL << VIRTIO_F_VERSION_1)
#define ALL_OK (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK)

struct t {
	struct pci_env e;
	struct guest_mem mem;
	char *dir, *img;
	struct virtio_blk *blk;
	struct virtio_pci *vp;
	uint64_t bar;
	unsigned int slot;
	struct helper_log log;
	bool stop;
};

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 12));
}

static void *gp(struct t *t, uint64_t gpa, uint64_t len)
{
	void *p = guest_mem_ptr(&t->mem, gpa, len);

	assert_non_null(p);
	return p;
}

static uint32_t cr(struct t *t, unsigned int off, unsigned int size)
{
	return (uint32_t)env_mmio_read(&t->e, t->bar + off, size);
}

static void cw(struct t *t, unsigned int off, unsigned int size, uint32_t v)
{
	env_mmio_write(&t->e, t->bar + off, size, v);
}

static void t_init(struct t *t, bool threads)
{
	struct disk_opts o = { .force_threads = threads };
	uint8_t *data = malloc(IMG_SIZE);

	memset(t, 0, sizeof(*t));
	env_init(&t->e);
	assert_int_equal(guest_mem_init(&t->mem, RAM, 0xc0000000ULL), 0);
	t->dir = helper_tmpdir("vstress");
	t->img = helper_asprintf("%s/disk.img", t->dir);
	assert_non_null(data);
	for (uint64_t i = 0; i < IMG_SIZE; i++)
		data[i] = pattern(i);
	helper_write_file(t->img, data, IMG_SIZE, 0644);
	free(data);
	o.path = t->img;
	t->blk = virtio_blk_create(&t->mem, &o, "stress", 1, "virtio-blk0");
	assert_non_null(t->blk);
	t->vp = virtio_pci_create(t->e.host, virtio_blk_vdev(t->blk), 0x018000);
	assert_non_null(t->vp);
	t->slot = pci_dev_slot(virtio_pci_dev(t->vp));
	t->bar = pci_dev_bar_addr(virtio_pci_dev(t->vp), 0);
	env_ecam_write(&t->e, t->slot, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	log_set_sink(helper_log_sink, &t->log);
}

static void t_fini(struct t *t)
{
	virtio_blk_device_ops.stop(t->blk);
	virtio_pci_destroy(t->vp);
	virtio_blk_device_ops.destroy(t->blk);
	log_set_sink(NULL, NULL);
	guest_mem_destroy(&t->mem);
	env_fini(&t->e);
	free(t->img);
	assert_int_equal(helper_tmpdir_remove(t->dir), 0);
}

/* Negotiate, lay out queue 0 (zeroed rings), DRIVER_OK. */
static void drv_setup(struct t *t)
{
	cw(t, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	cw(t, VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	cw(t, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	cw(t, VIRTIO_PCI_COMMON_GF, 4, 0);
	cw(t, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	cw(t, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)(V1 >> 32));
	cw(t, VIRTIO_PCI_COMMON_STATUS, 1, ALL_OK);
	memset(gp(t, DESC_GPA, 0x3000), 0, 0x3000);
	cw(t, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	cw(t, VIRTIO_PCI_COMMON_Q_SIZE, 2, QS);
	cw(t, VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t)DESC_GPA);
	cw(t, VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t)AVAIL_GPA);
	cw(t, VIRTIO_PCI_COMMON_Q_USEDLO, 4, (uint32_t)USED_GPA);
	cw(t, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	cw(t, VIRTIO_PCI_COMMON_STATUS, 1, ALL_OK | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* n 4 KiB reads (sector 8 k + salt) published at once and kicked. */
static void drv_reads(struct t *t, unsigned int n, unsigned int salt)
{
	struct vring_desc *desc = gp(t, DESC_GPA, 16 * QS);
	struct vring_avail *avail = gp(t, AVAIL_GPA, 6 + 2 * QS);
	uint16_t idx = le16toh(avail->idx);

	for (unsigned int k = 0; k < n; k++) {
		struct virtio_blk_outhdr *h = gp(t, HDR_GPA + 64 * k, sizeof(*h));
		uint16_t d = (uint16_t)(3 * k);

		h->type = htole32(VIRTIO_BLK_T_IN);
		h->ioprio = 0;
		h->sector = htole64((8 * (k + salt)) % (IMG_SIZE / 512 - 8));
		*(uint8_t *)gp(t, HDR_GPA + 64 * k + 32, 1) = 0xff;
		desc[d] = (struct vring_desc){ htole64(HDR_GPA + 64 * k), htole32(16),
					       htole16(VRING_DESC_F_NEXT), htole16(d + 1) };
		desc[d + 1] = (struct vring_desc){ htole64(DATA_GPA + 4096 * k), htole32(4096),
						   htole16(VRING_DESC_F_NEXT | VRING_DESC_F_WRITE),
						   htole16(d + 2) };
		desc[d + 2] = (struct vring_desc){ htole64(HDR_GPA + 64 * k + 32), htole32(1),
						   htole16(VRING_DESC_F_WRITE), 0 };
		avail->ring[(idx + k) % QS] = htole16(d);
	}
	__atomic_store_n(&avail->idx, htole16((uint16_t)(idx + n)), __ATOMIC_RELEASE);
	cw(t, VIRTIO_PCI_NOTIFY_OFF, 2, 0);
}

/* Another vCPU: everything a driver may write, at random, until told to stop. */
static void *hammer(void *arg)
{
	struct t *t = arg;
	uint64_t seed = (uint64_t)(uintptr_t)arg ^ 0x9e3779b97f4a7c15ULL;

	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
		uint64_t r = env_rand(&seed), v = env_rand(&seed);

		switch (r % 10) {
		case 0:
			cw(t, VIRTIO_PCI_COMMON_Q_MSIX, 2, (uint32_t)(v % 4));
			break;
		case 1:
			cw(t, VIRTIO_PCI_COMMON_MSIX, 2, (uint32_t)(v % 4));
			break;
		case 2:	/* the MSI-X table, mask bits included */
			cw(t, VIRTIO_PCI_MSIX_TABLE_OFF + (unsigned int)((r >> 8) % 32) * 4, 4,
			   (uint32_t)v);
			break;
		case 3:	/* MSI-X enable / function mask */
			env_ecam_write(&t->e, t->slot, 0x40 + (unsigned int)((r >> 8) % 0x40), 2,
				       (uint32_t)v);
			break;
		case 4:
			(void)cr(t, VIRTIO_PCI_ISR_OFF, 1);
			break;
		case 5:	/* notify queue 0, or one that does not exist */
			cw(t, VIRTIO_PCI_NOTIFY_OFF + (unsigned int)((r >> 8) % 3) * 4, 2, 0);
			break;
		case 6:
			(void)cr(t, (unsigned int)((r >> 8) % 0x3c), 4);
			break;
		case 7:	/* the queue fields, which must be read-only while it runs */
			cw(t, VIRTIO_PCI_COMMON_Q_SIZE, 2, (uint32_t)v);
			cw(t, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
			break;
		case 8:
			(void)cr(t, VIRTIO_PCI_DEVICE_OFF + (unsigned int)((r >> 8) % 0x3c), 4);
			break;
		default:
			cw(t, VIRTIO_PCI_MSIX_TABLE_OFF + (unsigned int)((r >> 8) % 4) * 16 + 12, 4,
			   (uint32_t)(v & 1));
			break;
		}
	}
	return NULL;
}

static void run_stress(bool threads)
{
	struct t t;
	pthread_t h[2];

	t_init(&t, threads);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&h[i], NULL, hammer, &t), 0);
	for (unsigned int round = 0; round < 150; round++) {
		drv_setup(&t);
		drv_reads(&t, 1 + round % NREQ, round);
		if (round % 3)
			usleep(50);
		/* Reset with whatever is still in flight. */
		cw(&t, VIRTIO_PCI_COMMON_STATUS, 1, 0);
		assert_int_equal(cr(&t, VIRTIO_PCI_COMMON_STATUS, 1), 0);
	}
	__atomic_store_n(&t.stop, true, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(h[i], NULL), 0);

	/* A clean driver now gets correct data. */
	memset(gp(&t, DATA_GPA, 4096 * NREQ), 0, 4096 * NREQ);
	drv_setup(&t);
	drv_reads(&t, NREQ, 0);
	struct vring_used *used = gp(&t, USED_GPA, 6 + 8 * QS);
	double start = helper_now_ms();
	while (le16toh(__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE)) != NREQ &&
	       helper_now_ms() - start < 10000)
		usleep(500);
	assert_int_equal(le16toh(used->idx), NREQ);
	for (unsigned int k = 0; k < NREQ; k++) {
		const uint8_t *d = gp(&t, DATA_GPA + 4096 * k, 4096);
		uint64_t base = 512 * ((8 * k) % (IMG_SIZE / 512 - 8));

		assert_int_equal(*(uint8_t *)gp(&t, HDR_GPA + 64 * k + 32, 1), VIRTIO_BLK_S_OK);
		for (unsigned int i = 0; i < 4096; i += 511)
			assert_int_equal(d[i], pattern(base + i));
	}
	assert_int_equal(t.log.errors, 0);
	t_fini(&t);
}

static void test_stress_uring(void **state)
{
	(void)state;
	run_stress(false);
}

static void test_stress_threads(void **state)
{
	(void)state;
	run_stress(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress_uring),
		cmocka_unit_test(test_stress_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
