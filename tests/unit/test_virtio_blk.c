/*
 * virtio/blk.c driven by an in-process synthetic driver: guest RAM, split
 * rings laid out by hand, eventfds as kick fds, the transport's part
 * (vdev->lock, negotiated features, queue enable, activate, reset, the
 * notify callback) done here; virtio_notify_queue() and virtio_dev_fail()
 * are the real ones (virtio.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/disk.h"
#include "util/log.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"
#include "virtio/virtqueue.h"
#include "vmm/memory.h"

#include "helpers.h"

#define MIB		(1ull << 20)
#define RAM_SIZE	(16 * MIB)
#define IMG_SIZE	(2 * MIB)
#define IMG_SECTORS	(IMG_SIZE / 512)
#define QSIZE		256
#define RING_GPA(q)	(0x10000ull + (q) * 0x4000ull)	/* desc, then avail, then used */
#define HDR_GPA		0x100000ull	/* request headers, statuses, small buffers */
#define DATA_GPA	(2 * MIB)	/* data buffers */
#define SERIAL		"bootvm-serial-0001"

/* ---- the synthetic driver ---- */

struct drv_queue {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx, used_seen, next_desc;
	int kick_fd;
};

struct fixture {
	char *dir, *img;
	struct guest_mem mem;
	struct virtio_blk *b;
	struct virtio_dev *vdev;
	unsigned int nr_queues;
	struct drv_queue q[4];
	struct helper_log log;

	pthread_mutex_t irq_lock;
	int irqs[4];
	int config_irqs;
};

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 13 + (i >> 9));
}

static void on_notify(struct virtio_dev *vdev, int queue)
{
	struct fixture *f = vdev->transport;

	pthread_mutex_lock(&f->irq_lock);
	if (queue < 0)
		f->config_irqs++;
	else
		f->irqs[queue]++;
	pthread_mutex_unlock(&f->irq_lock);
}

static void *gptr(struct fixture *f, uint64_t gpa, uint64_t len)
{
	void *p = guest_mem_ptr(&f->mem, gpa, len);

	assert_non_null(p);
	return p;
}

/* What the transport does at FEATURES_OK + queue enable + DRIVER_OK. */
static void drv_activate(struct fixture *f, uint64_t features, int expect)
{
	struct virtio_dev *v = f->vdev;

	v->features = features;
	for (unsigned int i = 0; i < f->nr_queues; i++) {
		struct drv_queue *d = &f->q[i];
		uint64_t desc = RING_GPA(i), avail = desc + 16 * QSIZE,
			 used = (avail + 6 + 2 * QSIZE + 3) & ~3ull;

		memset(gptr(f, desc, 0x4000), 0, 0x4000);
		d->desc = gptr(f, desc, 16 * QSIZE);
		d->avail = gptr(f, avail, 6 + 2 * QSIZE);
		d->used = gptr(f, used, 6 + 8 * QSIZE);
		d->avail_idx = d->used_seen = d->next_desc = 0;
		assert_int_equal(virtq_enable(&v->queues[i].vq, &f->mem, QSIZE, desc, avail, used,
					      features), 0);
		v->queues[i].size = QSIZE;
		v->queues[i].ready = true;
		v->queues[i].kick_fd = d->kick_fd;
	}
	assert_int_equal(v->ops->activate(v->dev), expect);
}

/* What the transport does when the driver writes status 0. */
static void drv_reset(struct fixture *f)
{
	struct virtio_dev *v = f->vdev;

	v->ops->reset(v->dev);
	for (unsigned int i = 0; i < f->nr_queues; i++)
		virtq_disable(&v->queues[i].vq);
	v->status = 0;
}

static uint64_t default_features(const struct fixture *f)
{
	return f->vdev->ops->features(f->vdev->dev) | (1ull << VIRTIO_F_VERSION_1) |
	       (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC);
}

static void make_device(struct fixture *f, bool ro, bool discard, bool threads,
			unsigned int nr_queues)
{
	struct disk_opts o = { .path = f->img, .readonly = ro, .discard = discard,
			       .force_threads = threads };

	f->nr_queues = nr_queues;
	f->b = virtio_blk_create(&f->mem, &o, SERIAL, nr_queues, "virtio-blk0");
	assert_non_null(f->b);
	f->vdev = virtio_blk_vdev(f->b);
	pthread_mutex_init(&f->vdev->lock, NULL);
	f->vdev->notify = on_notify;
	f->vdev->transport = f;
	drv_activate(f, default_features(f), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint8_t *data = malloc(IMG_SIZE);

	assert_non_null(f);
	assert_non_null(data);
	f->dir = helper_tmpdir("vblk");
	f->img = helper_asprintf("%s/disk.img", f->dir);
	for (uint64_t i = 0; i < IMG_SIZE; i++)
		data[i] = pattern(i);
	helper_write_file(f->img, data, IMG_SIZE, 0644);
	free(data);
	assert_int_equal(guest_mem_init(&f->mem, RAM_SIZE, 0xc0000000ull), 0);
	pthread_mutex_init(&f->irq_lock, NULL);
	for (int i = 0; i < 4; i++) {
		f->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(f->q[i].kick_fd >= 0);
	}
	log_set_sink(helper_log_sink, &f->log);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->b) {
		virtio_blk_device_ops.stop(f->b);
		pthread_mutex_destroy(&virtio_blk_vdev(f->b)->lock);
		virtio_blk_device_ops.destroy(f->b);
	}
	log_set_sink(NULL, NULL);
	for (int i = 0; i < 4; i++)
		close(f->q[i].kick_fd);
	guest_mem_destroy(&f->mem);
	free(f->img);
	assert_int_equal(helper_tmpdir_remove(f->dir), 0);
	free(f);
	return 0;
}

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Put a chain in the ring (not yet visible: drv_publish). Returns its head. */
static uint16_t drv_add(struct fixture *f, unsigned int qi, const struct seg *segs,
			unsigned int n)
{
	struct drv_queue *d = &f->q[qi];
	uint16_t head = d->next_desc;

	for (unsigned int i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % QSIZE);

		d->desc[idx].addr = htole64(segs[i].gpa);
		d->desc[idx].len = htole32(segs[i].len);
		d->desc[idx].flags = htole16((segs[i].write ? VRING_DESC_F_WRITE : 0) |
					     (i + 1 < n ? VRING_DESC_F_NEXT : 0));
		d->desc[idx].next = htole16((uint16_t)((idx + 1) % QSIZE));
	}
	d->next_desc = (uint16_t)((head + n) % QSIZE);
	d->avail->ring[d->avail_idx % QSIZE] = htole16(head);
	d->avail_idx++;
	return head;
}

static void drv_publish(struct fixture *f, unsigned int qi)
{
	struct drv_queue *d = &f->q[qi];
	uint64_t one = 1;

	__atomic_store_n(&d->avail->idx, htole16(d->avail_idx), __ATOMIC_RELEASE);
	assert_int_equal(write(d->kick_fd, &one, sizeof(one)), sizeof(one));
}

/* Wait for the next used element; false on timeout. */
static bool drv_wait_used(struct fixture *f, unsigned int qi, struct vring_used_elem *e,
			  int timeout_ms)
{
	struct drv_queue *d = &f->q[qi];
	double start = helper_now_ms();

	while (le16toh(__atomic_load_n(&d->used->idx, __ATOMIC_ACQUIRE)) == d->used_seen) {
		if (helper_now_ms() - start > timeout_ms)
			return false;
		usleep(200);
	}
	e->id = le32toh(d->used->ring[d->used_seen % QSIZE].id);
	e->len = le32toh(d->used->ring[d->used_seen % QSIZE].len);
	d->used_seen++;
	/* As Linux does with EVENT_IDX: interrupt me at the next one. */
	__atomic_store_n(&d->avail->ring[QSIZE], htole16(d->used_seen), __ATOMIC_RELEASE);
	return true;
}

struct result {
	uint8_t status;
	uint32_t used_len;
};

/* One request per slot k (so several can be in flight): header + data + status. */
static uint64_t hdr_gpa(unsigned int qi, unsigned int k)
{
	return HDR_GPA + (qi * QSIZE + k) * 64;
}

static uint16_t req_add(struct fixture *f, unsigned int qi, unsigned int k, uint32_t type,
			uint64_t sector, uint64_t data_gpa, uint32_t data_len)
{
	struct virtio_blk_outhdr *h = gptr(f, hdr_gpa(qi, k), sizeof(*h));
	uint8_t *status = gptr(f, hdr_gpa(qi, k) + 32, 1);
	bool write = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	struct seg segs[3];
	unsigned int n = 0;

	h->type = htole32(type);
	h->ioprio = 0;
	h->sector = htole64(sector);
	*status = 0xff;
	segs[n++] = (struct seg){ hdr_gpa(qi, k), sizeof(*h), false };
	if (data_len)
		segs[n++] = (struct seg){ data_gpa, data_len, write };
	segs[n++] = (struct seg){ hdr_gpa(qi, k) + 32, 1, true };
	return drv_add(f, qi, segs, n);
}

static struct result req_wait(struct fixture *f, unsigned int qi, uint16_t head,
			      unsigned int k)
{
	struct vring_used_elem e;

	assert_true(drv_wait_used(f, qi, &e, 10000));
	assert_int_equal(e.id, head);
	return (struct result){ *(uint8_t *)gptr(f, hdr_gpa(qi, k) + 32, 1), e.len };
}

static struct result req(struct fixture *f, unsigned int qi, uint32_t type, uint64_t sector,
			 uint64_t data_gpa, uint32_t data_len)
{
	uint16_t head = req_add(f, qi, 0, type, sector, data_gpa, data_len);

	drv_publish(f, qi);
	return req_wait(f, qi, head, 0);
}

static uint8_t req_range(struct fixture *f, uint32_t type, uint64_t sector, uint32_t num,
			 uint32_t flags)
{
	struct virtio_blk_discard_write_zeroes *r = gptr(f, DATA_GPA, sizeof(*r));

	r->sector = htole64(sector);
	r->num_sectors = htole32(num);
	r->flags = htole32(flags);
	/* The range is device-readable: reuse req with a readable data segment. */
	struct virtio_blk_outhdr *h = gptr(f, hdr_gpa(0, 0), sizeof(*h));
	uint8_t *status = gptr(f, hdr_gpa(0, 0) + 32, 1);
	struct seg segs[3] = {
		{ hdr_gpa(0, 0), sizeof(*h), false },
		{ DATA_GPA, sizeof(*r), false },
		{ hdr_gpa(0, 0) + 32, 1, true },
	};
	struct vring_used_elem e;
	uint16_t head;

	h->type = htole32(type);
	h->sector = 0;
	*status = 0xff;
	head = drv_add(f, 0, segs, 3);
	drv_publish(f, 0);
	assert_true(drv_wait_used(f, 0, &e, 10000));
	assert_int_equal(e.id, head);
	assert_int_equal(e.len, 1);
	return *status;
}

static void pread_img(struct fixture *f, void *buf, size_t len, off_t off)
{
	int fd = open(f->img, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static int irqs(struct fixture *f, int q)
{
	int n;

	pthread_mutex_lock(&f->irq_lock);
	n = q < 0 ? f->config_irqs : f->irqs[q];
	pthread_mutex_unlock(&f->irq_lock);
	return n;
}

/* ---- tests ---- */

static void test_features_config(void **state)
{
	struct fixture *f = *state;
	struct virtio_blk_config cfg;
	uint64_t feat;

	make_device(f, false, true, false, 2);
	assert_int_equal(f->vdev->device_id, VIRTIO_ID_BLOCK);
	assert_true(f->vdev->config_size >= offsetof(struct virtio_blk_config, unused1));
	assert_true(f->vdev->config_size <= sizeof(cfg));
	assert_int_equal(f->vdev->queues[0].max_size, VIRTIO_BLK_QUEUE_SIZE);
	assert_int_equal(f->vdev->nr_queues, 2);
	feat = f->vdev->ops->features(f->vdev->dev);
	assert_true(feat & (1ull << VIRTIO_BLK_F_SEG_MAX));
	assert_true(feat & (1ull << VIRTIO_BLK_F_SIZE_MAX));
	assert_true(feat & (1ull << VIRTIO_BLK_F_BLK_SIZE));
	assert_true(feat & (1ull << VIRTIO_BLK_F_FLUSH));
	assert_true(feat & (1ull << VIRTIO_BLK_F_MQ));
	assert_true(feat & (1ull << VIRTIO_BLK_F_DISCARD));
	assert_true(feat & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	assert_false(feat & (1ull << VIRTIO_BLK_F_RO));

	memset(&cfg, 0xee, sizeof(cfg));
	f->vdev->ops->config_read(f->vdev->dev, 0, &cfg, f->vdev->config_size);
	assert_int_equal(le64toh(cfg.capacity), IMG_SECTORS);
	assert_int_equal(le32toh(cfg.seg_max), VIRTIO_BLK_SEG_MAX);
	assert_int_equal(le32toh(cfg.size_max), VIRTIO_BLK_SIZE_MAX);
	assert_int_equal(le32toh(cfg.blk_size), 512);
	assert_int_equal(le16toh(cfg.num_queues), 2);
	assert_int_equal(le32toh(cfg.max_discard_seg), 1);
	assert_true(le32toh(cfg.max_discard_sectors) > 0);
	assert_true(le32toh(cfg.max_write_zeroes_sectors) > 0);
	assert_int_equal(cfg.write_zeroes_may_unmap, 1);
	/* A read of part of a field, at an offset (a 32-bit access to the capacity's high half). */
	uint32_t hi = 0xffffffff;
	f->vdev->ops->config_read(f->vdev->dev, 4, &hi, 4);
	assert_int_equal(hi, 0);
	virtio_blk_device_ops.stop(f->b);
	pthread_mutex_destroy(&f->vdev->lock);
	virtio_blk_device_ops.destroy(f->b);

	/* Read-only: RO, no write-zeroes or discard. */
	f->b = NULL;
	make_device(f, true, true, false, 1);
	feat = f->vdev->ops->features(f->vdev->dev);
	assert_true(feat & (1ull << VIRTIO_BLK_F_RO));
	assert_false(feat & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	assert_false(feat & (1ull << VIRTIO_BLK_F_DISCARD));
	assert_int_equal(f->log.errors, 0);
}

static void test_create_errors(void **state)
{
	struct fixture *f = *state;
	struct disk_opts o = { .path = f->img };
	char *missing = helper_asprintf("%s/nope.img", f->dir);

	assert_null(virtio_blk_create(&f->mem, &o, "123456789012345678901", 1, "virtio-blk0"));
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "longer than 20"));
	assert_null(virtio_blk_create(&f->mem, &o, NULL, 0, "virtio-blk0"));
	assert_int_equal(f->log.errors, 2);
	o.path = missing;
	assert_null(virtio_blk_create(&f->mem, &o, NULL, 1, "virtio-blk0"));
	assert_int_equal(f->log.errors, 3);
	assert_non_null(strstr(f->log.last_error, missing));
	free(missing);
	/* The image lock is held by the device. */
	o.path = f->img;
	f->b = virtio_blk_create(&f->mem, &o, NULL, 1, "virtio-blk0");
	assert_non_null(f->b);
	pthread_mutex_init(&virtio_blk_vdev(f->b)->lock, NULL);
	assert_null(virtio_blk_create(&f->mem, &o, NULL, 1, "virtio-blk1"));
	assert_non_null(strstr(f->log.last_error, "locked"));
}

static void rw_engine(struct fixture *f, bool threads)
{
	uint8_t *data = gptr(f, DATA_GPA, 64 * 1024);
	static uint8_t chk[128 * 512 + 1];
	struct result r;

	make_device(f, false, true, threads, 1);

	/* IN: 4 KiB at sector 8. */
	memset(data, 0, 4096);
	r = req(f, 0, VIRTIO_BLK_T_IN, 8, DATA_GPA, 4096);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);
	assert_int_equal(r.used_len, 4096 + 1);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(data[i], pattern(8 * 512 + i));

	/* OUT: 8 KiB at sector 100, then the file has it. */
	for (int i = 0; i < 8192; i++)
		data[i] = (uint8_t)(0x40 + i % 7);
	r = req(f, 0, VIRTIO_BLK_T_OUT, 100, DATA_GPA, 8192);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);
	assert_int_equal(r.used_len, 1);
	pread_img(f, chk, 8192, 100 * 512);
	assert_memory_equal(chk, data, 8192);

	r = req(f, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);

	/* GET_ID: 20 bytes, NUL-padded. */
	memset(data, 0xaa, 32);
	r = req(f, 0, VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, 20);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);
	assert_int_equal(r.used_len, 21);
	assert_memory_equal(data, SERIAL, strlen(SERIAL));
	for (size_t i = strlen(SERIAL); i < 20; i++)
		assert_int_equal(data[i], 0);
	assert_int_equal(data[20], 0xaa);

	/* DISCARD and WRITE_ZEROES (with unmap, and without). */
	assert_int_equal(req_range(f, VIRTIO_BLK_T_DISCARD, 256, 128, 0), VIRTIO_BLK_S_OK);
	pread_img(f, chk, 128 * 512 + 1, 256 * 512);
	for (int i = 0; i < 128 * 512; i++)
		assert_int_equal(chk[i], 0);
	assert_int_equal(chk[128 * 512], pattern(384 * 512));
	assert_int_equal(req_range(f, VIRTIO_BLK_T_WRITE_ZEROES, 512, 8,
				   VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP), VIRTIO_BLK_S_OK);
	assert_int_equal(req_range(f, VIRTIO_BLK_T_WRITE_ZEROES, 520, 8, 0), VIRTIO_BLK_S_OK);
	pread_img(f, chk, 16 * 512 + 1, 512 * 512);
	for (int i = 0; i < 16 * 512; i++)
		assert_int_equal(chk[i], 0);
	assert_int_equal(chk[16 * 512], pattern(528 * 512));

	/* The last sector is in range; one more is not. */
	r = req(f, 0, VIRTIO_BLK_T_IN, IMG_SECTORS - 1, DATA_GPA, 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);
	assert_true(irqs(f, 0) >= 1);
	assert_int_equal(f->log.errors, 0);
	assert_int_equal(f->log.warnings, 0);
}

static void test_rw_uring(void **state)
{
	rw_engine(*state, false);
}

static void test_rw_threads(void **state)
{
	rw_engine(*state, true);
}

/* Framing by offset: a header split over two buffers, data and status sharing one. */
static void test_framing(void **state)
{
	struct fixture *f = *state;
	struct virtio_blk_outhdr *h = gptr(f, HDR_GPA, sizeof(*h));
	uint8_t *buf = gptr(f, DATA_GPA, 4096 + 1);
	struct seg segs[4] = {
		{ HDR_GPA, 4, false },
		{ HDR_GPA + 4, 12, false },
		{ DATA_GPA, 1024, true },
		{ DATA_GPA + 1024, 1024 + 1, true },	/* data, then the status byte */
	};
	struct vring_used_elem e;
	uint16_t head;

	make_device(f, false, false, false, 1);
	h->type = htole32(VIRTIO_BLK_T_IN);
	h->sector = htole64(3);
	buf[2048] = 0xff;
	head = drv_add(f, 0, segs, 4);
	drv_publish(f, 0);
	assert_true(drv_wait_used(f, 0, &e, 10000));
	assert_int_equal(e.id, head);
	assert_int_equal(e.len, 2049);
	assert_int_equal(buf[2048], VIRTIO_BLK_S_OK);
	for (int i = 0; i < 2048; i++)
		assert_int_equal(buf[i], pattern(3 * 512 + i));

	/* OUT with the header and the data in one readable buffer. */
	uint8_t *one = gptr(f, DATA_GPA + 8192, 16 + 512);
	uint8_t *st = gptr(f, HDR_GPA + 64, 1);
	struct virtio_blk_outhdr oh = { htole32(VIRTIO_BLK_T_OUT), 0, htole64(7) };
	struct seg s2[2] = { { DATA_GPA + 8192, 16 + 512, false }, { HDR_GPA + 64, 1, true } };
	uint8_t chk[512];

	memcpy(one, &oh, sizeof(oh));
	memset(one + 16, 0x77, 512);
	*st = 0xff;
	head = drv_add(f, 0, s2, 2);
	drv_publish(f, 0);
	assert_true(drv_wait_used(f, 0, &e, 10000));
	assert_int_equal(e.id, head);
	assert_int_equal(*st, VIRTIO_BLK_S_OK);
	pread_img(f, chk, 512, 7 * 512);
	for (int i = 0; i < 512; i++)
		assert_int_equal(chk[i], 0x77);
}

static void test_bad_requests(void **state)
{
	struct fixture *f = *state;
	uint8_t after[512];
	struct result r;

	make_device(f, false, false, false, 1);
	/* Out of range, overflowing, misaligned length. */
	r = req(f, 0, VIRTIO_BLK_T_IN, IMG_SECTORS, DATA_GPA, 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(r.used_len, 1);
	r = req(f, 0, VIRTIO_BLK_T_IN, IMG_SECTORS - 1, DATA_GPA, 1024);
	assert_int_equal(r.status, VIRTIO_BLK_S_IOERR);
	r = req(f, 0, VIRTIO_BLK_T_OUT, UINT64_MAX, DATA_GPA, 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_IOERR);
	r = req(f, 0, VIRTIO_BLK_T_OUT, (UINT64_MAX >> 9) + 1, DATA_GPA, 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_IOERR);
	r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, 100);
	assert_int_equal(r.status, VIRTIO_BLK_S_IOERR);
	/* A segment above size_max. */
	r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, VIRTIO_BLK_SIZE_MAX + 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_IOERR);
	/* Unknown type; DISCARD not offered (discard=off). */
	r = req(f, 0, 99, 0, DATA_GPA, 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_UNSUPP);
	r = req(f, 0, VIRTIO_BLK_T_IN | 0x80000000u, 0, DATA_GPA, 512);	/* legacy barrier */
	assert_int_equal(r.status, VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(req_range(f, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_UNSUPP);
	/* WRITE_ZEROES: a bad flag, too far, too many sectors. */
	assert_int_equal(req_range(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 2), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(req_range(f, VIRTIO_BLK_T_WRITE_ZEROES, IMG_SECTORS - 4, 8, 0),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(req_range(f, VIRTIO_BLK_T_WRITE_ZEROES, UINT64_MAX - 2, 8, 0),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(req_range(f, VIRTIO_BLK_T_WRITE_ZEROES, 0,
				   VIRTIO_BLK_MAX_DISCARD_SECTORS + 1, 0), VIRTIO_BLK_S_IOERR);
	pread_img(f, after, 512, 0);
	for (int i = 0; i < 512; i++)
		assert_int_equal(after[i], pattern(i));

	/* seg_max data segments are served; one more is IOERR. */
	for (unsigned int nseg = VIRTIO_BLK_SEG_MAX; nseg <= VIRTIO_BLK_SEG_MAX + 1; nseg++) {
		struct seg segs[VIRTIO_BLK_SEG_MAX + 3];
		unsigned int n = 0;
		uint8_t *st = gptr(f, HDR_GPA + 32, 1);
		struct virtio_blk_outhdr *h = gptr(f, HDR_GPA, sizeof(*h));
		struct vring_used_elem e;
		uint16_t head;

		h->type = htole32(VIRTIO_BLK_T_IN);
		h->sector = 0;
		segs[n++] = (struct seg){ HDR_GPA, 16, false };
		for (unsigned int i = 0; i < nseg; i++)
			segs[n++] = (struct seg){ DATA_GPA + i * 512, 512, true };
		segs[n++] = (struct seg){ HDR_GPA + 32, 1, true };
		*st = 0xff;
		head = drv_add(f, 0, segs, n);
		drv_publish(f, 0);
		assert_true(drv_wait_used(f, 0, &e, 10000));
		assert_int_equal(e.id, head);
		assert_int_equal(*st, nseg <= VIRTIO_BLK_SEG_MAX ? VIRTIO_BLK_S_OK
								 : VIRTIO_BLK_S_IOERR);
	}
	/* The device is still fine. */
	r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);
	assert_int_equal(f->log.errors, 0);
	assert_int_equal(irqs(f, -1), 0);
}

static void test_readonly(void **state)
{
	struct fixture *f = *state;
	uint8_t *data = gptr(f, DATA_GPA, 512), chk[512];
	struct result r;

	make_device(f, true, false, false, 1);
	memset(data, 0x99, 512);
	r = req(f, 0, VIRTIO_BLK_T_OUT, 0, DATA_GPA, 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_IOERR);
	pread_img(f, chk, 512, 0);
	for (int i = 0; i < 512; i++)
		assert_int_equal(chk[i], pattern(i));
	assert_int_equal(req_range(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 1, 0), VIRTIO_BLK_S_UNSUPP);
	r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);
	assert_memory_equal(data, chk, 512);
	r = req(f, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);
}

static void faults_engine(struct fixture *f, bool threads)
{
	struct disk *d;
	struct result r;

	make_device(f, false, false, threads, 1);
	d = virtio_blk_disk(f->b);

	disk_inject_fault(d, DISK_OP_READ, 2, EIO);
	r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, 4096);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);
	r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, 4096);
	assert_int_equal(r.status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(r.used_len, 1);
	assert_int_equal(f->log.warnings, 1);
	assert_non_null(strstr(f->log.last_warning, "virtio-blk0"));
	assert_non_null(strstr(f->log.last_warning, "Input/output error"));
	r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, 4096);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);

	disk_inject_fault(d, DISK_OP_WRITE, 1, ENOSPC);
	r = req(f, 0, VIRTIO_BLK_T_OUT, 0, DATA_GPA, 4096);
	assert_int_equal(r.status, VIRTIO_BLK_S_IOERR);
	disk_inject_fault(d, DISK_OP_READ, 1, 0);	/* short */
	r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, 4096);
	assert_int_equal(r.status, VIRTIO_BLK_S_IOERR);
	disk_inject_fault(d, DISK_OP_FLUSH, 1, EIO);
	r = req(f, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	assert_int_equal(r.status, VIRTIO_BLK_S_IOERR);
	disk_inject_fault(d, DISK_OP_WRITE_ZEROES, 1, EIO);
	assert_int_equal(req_range(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_IOERR);

	/* Still serving; only the first host error was logged. */
	r = req(f, 0, VIRTIO_BLK_T_OUT, 0, DATA_GPA, 4096);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);
	assert_int_equal(f->log.warnings, 1);
	assert_int_equal(f->log.errors, 0);
	assert_int_equal(irqs(f, -1), 0);
	assert_int_equal(f->vdev->status & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
}

static void test_faults_uring(void **state)
{
	faults_engine(*state, false);
}

static void test_faults_threads(void **state)
{
	faults_engine(*state, true);
}

static void test_faults_env(void **state)
{
	struct fixture *f = *state;
	struct disk_opts o = { .path = f->img };
	struct result r;

	setenv("BOOTVM_DISK_FAULTS", "read:1:nope", 1);
	assert_null(virtio_blk_create(&f->mem, &o, NULL, 1, "virtio-blk0"));
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "read:1:nope"));

	setenv("BOOTVM_DISK_FAULTS", "read:2:EIO", 1);
	make_device(f, false, false, false, 1);
	unsetenv("BOOTVM_DISK_FAULTS");
	r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);
	r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_IOERR);
	r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);
}

/* A hostile chain fails the device: NEEDS_RESET, config interrupt, nothing served after. */
static void hostile(struct fixture *f, const struct seg *segs, unsigned int n, const char *why)
{
	struct vring_used_elem e;
	struct result r;
	int cfg = irqs(f, -1), warnings = f->log.warnings;
	double start = helper_now_ms();

	f->vdev->failures = 0;	/* virtio.c logs a device's first failure only: each, here */
	drv_add(f, 0, segs, n);
	drv_publish(f, 0);
	while (irqs(f, -1) == cfg && helper_now_ms() - start < 10000)
		usleep(200);
	assert_int_equal(irqs(f, -1), cfg + 1);
	assert_true(f->vdev->status & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(f->log.warnings, warnings + 1);
	assert_non_null(strstr(f->log.last_warning, why));
	assert_non_null(strstr(f->log.last_warning, "needs a reset"));
	/* A good request now is not served. */
	req_add(f, 0, 1, VIRTIO_BLK_T_IN, 0, DATA_GPA, 512);
	drv_publish(f, 0);
	assert_false(drv_wait_used(f, 0, &e, 100));

	/* Reset and set up again: works. */
	drv_reset(f);
	drv_activate(f, default_features(f), 0);
	r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);
	assert_int_equal(irqs(f, -1), cfg + 1);
}

static void test_hostile(void **state)
{
	struct fixture *f = *state;
	struct virtio_blk_outhdr *h = gptr(f, HDR_GPA, sizeof(*h));

	make_device(f, false, false, false, 1);
	h->type = htole32(VIRTIO_BLK_T_IN);
	h->sector = 0;

	/* No writable byte at all: nowhere for a status. */
	hostile(f, (struct seg[]){ { HDR_GPA, 16, false }, { DATA_GPA, 512, false } }, 2,
		"status");
	/* A header of 8 bytes. */
	hostile(f, (struct seg[]){ { HDR_GPA, 8, false }, { HDR_GPA + 32, 1, true } }, 2,
		"header");
	/* Writable before readable: the ring core refuses it. */
	hostile(f, (struct seg[]){ { HDR_GPA + 32, 1, true }, { HDR_GPA, 16, false } }, 2, "");
	/* A buffer outside guest RAM. */
	hostile(f, (struct seg[]){ { HDR_GPA, 16, false }, { RAM_SIZE - 256, 512, true },
				   { HDR_GPA + 32, 1, true } }, 3, "");
	/* avail->idx far ahead of what was seen. */
	{
		struct drv_queue *d = &f->q[0];
		int cfg = irqs(f, -1);
		uint64_t one = 1;
		double start = helper_now_ms();

		__atomic_store_n(&d->avail->idx, htole16((uint16_t)(d->avail_idx + 1000)),
				 __ATOMIC_RELEASE);
		assert_int_equal(write(d->kick_fd, &one, sizeof(one)), sizeof(one));
		while (irqs(f, -1) == cfg && helper_now_ms() - start < 10000)
			usleep(200);
		assert_int_equal(irqs(f, -1), cfg + 1);
		drv_reset(f);
		drv_activate(f, default_features(f), 0);
		struct result r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, 512);
		assert_int_equal(r.status, VIRTIO_BLK_S_OK);
	}
}

/* Many in flight at once, one kick; interrupts batched; the ring refilled past its size. */
static void test_many_in_flight(void **state)
{
	struct fixture *f = *state;
	uint16_t heads[QSIZE];

	make_device(f, false, false, false, 1);
	for (int round = 0; round < 3; round++) {
		int before = irqs(f, 0);
		bool seen[QSIZE] = { false };

		/* QSIZE / 3 chains of 3 descriptors fill the descriptor table. */
		for (unsigned int k = 0; k < QSIZE / 3; k++)
			heads[k] = req_add(f, 0, k, VIRTIO_BLK_T_IN, k * 8,
					   DATA_GPA + k * 4096, 4096);
		drv_publish(f, 0);
		for (unsigned int n = 0; n < QSIZE / 3; n++) {
			struct vring_used_elem e;
			unsigned int k;

			assert_true(drv_wait_used(f, 0, &e, 10000));
			for (k = 0; k < QSIZE / 3 && heads[k] != e.id; k++)
				;
			assert_true(k < QSIZE / 3);
			assert_false(seen[k]);
			seen[k] = true;
			assert_int_equal(*(uint8_t *)gptr(f, hdr_gpa(0, k) + 32, 1),
					 VIRTIO_BLK_S_OK);
			assert_int_equal(*(uint8_t *)gptr(f, DATA_GPA + k * 4096 + 17, 1),
					 pattern(k * 8 * 512 + 17));
		}
		/* At least one interrupt, and no more than one per request. */
		assert_true(irqs(f, 0) > before);
		assert_true(irqs(f, 0) - before <= QSIZE / 3);
		f->q[0].next_desc = 0;
	}
}

static void test_two_queues(void **state)
{
	struct fixture *f = *state;
	uint8_t *d0 = gptr(f, DATA_GPA, 512), *d1 = gptr(f, DATA_GPA + 4096, 512);
	uint16_t h0, h1;
	struct result r0, r1;

	make_device(f, false, false, false, 2);
	h0 = req_add(f, 0, 0, VIRTIO_BLK_T_IN, 1, DATA_GPA, 512);
	h1 = req_add(f, 1, 0, VIRTIO_BLK_T_IN, 2, DATA_GPA + 4096, 512);
	drv_publish(f, 1);
	drv_publish(f, 0);
	r1 = req_wait(f, 1, h1, 0);
	r0 = req_wait(f, 0, h0, 0);
	assert_int_equal(r0.status, VIRTIO_BLK_S_OK);
	assert_int_equal(r1.status, VIRTIO_BLK_S_OK);
	assert_int_equal(d0[5], pattern(512 + 5));
	assert_int_equal(d1[5], pattern(1024 + 5));
	assert_true(irqs(f, 0) >= 1);
	assert_true(irqs(f, 1) >= 1);

	/* Reset with requests in flight, then both queues serve again. */
	req_add(f, 0, 1, VIRTIO_BLK_T_IN, 0, DATA_GPA, 512);
	drv_publish(f, 0);
	drv_reset(f);
	drv_activate(f, default_features(f), 0);
	r1 = req(f, 1, VIRTIO_BLK_T_IN, 3, DATA_GPA + 4096, 512);
	assert_int_equal(r1.status, VIRTIO_BLK_S_OK);
	assert_int_equal(d1[5], pattern(3 * 512 + 5));
	r0 = req(f, 0, VIRTIO_BLK_T_IN, 4, DATA_GPA, 512);
	assert_int_equal(r0.status, VIRTIO_BLK_S_OK);
	assert_int_equal(d0[5], pattern(4 * 512 + 5));
}

/* Only enabled queues are served; a kick on a disabled one is ignored. */
static void test_queue_not_enabled(void **state)
{
	struct fixture *f = *state;
	struct result r;

	make_device(f, false, false, false, 2);
	drv_reset(f);
	f->nr_queues = 1;	/* the driver enables queue 0 only */
	drv_activate(f, default_features(f), 0);
	r = req(f, 0, VIRTIO_BLK_T_IN, 0, DATA_GPA, 512);
	assert_int_equal(r.status, VIRTIO_BLK_S_OK);
	f->nr_queues = 2;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_features_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rw_uring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rw_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faults_uring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faults_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faults_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_queues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_not_enabled, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
