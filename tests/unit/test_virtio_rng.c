/*
 * virtio/rng.c driven in-process as a transport and a driver would: rings
 * in a real guest_mem, an eventfd as the queue's kick, a notify callback
 * that records interrupts; the device's own I/O thread does the work.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "vmm/memory.h"

#include "helpers.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

#define DESC_GPA	0x1000ULL
#define AVAIL_GPA	0x2000ULL
#define USED_GPA	0x3000ULL
#define BUF_GPA		0x100000ULL	/* 1 MiB of buffers */
#define QSIZE		256

#define TIMEOUT_MS	10000

struct fixture {
	struct guest_mem mem;
	struct virtio_rng *rng;
	struct virtio_dev *vdev;
	int kick;
	struct helper_log log;

	pthread_mutex_t lock;	/* the notify record */
	pthread_cond_t cond;
	int queue_irqs, config_irqs;
	uint16_t next_avail;	/* the driver's avail index */
};

static void record_notify(struct virtio_dev *vdev, int queue)
{
	struct fixture *f = vdev->transport;

	pthread_mutex_lock(&f->lock);
	if (queue == 0)
		f->queue_irqs++;
	else if (queue == -1)
		f->config_irqs++;
	else
		fail_msg("notify for queue %d", queue);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static struct vring_avail *avail(struct fixture *f)
{
	return guest_mem_ptr(&f->mem, AVAIL_GPA, 6 + 2 * QSIZE);
}

static struct vring_used *used(struct fixture *f)
{
	return guest_mem_ptr(&f->mem, USED_GPA, 6 + 8 * QSIZE);
}

static uint16_t used_idx(struct fixture *f)
{
	return __atomic_load_n(&used(f)->idx, __ATOMIC_ACQUIRE);
}

/* What a transport does at DRIVER_OK: rings enabled, features set, activate. */
static void bring_up(struct fixture *f, uint64_t features)
{
	struct virtio_queue *q = &f->vdev->queues[0];

	memset(guest_mem_ptr(&f->mem, 0, 0x4000), 0, 0x4000);
	memset(guest_mem_ptr(&f->mem, BUF_GPA, MIB), 0, MIB);
	f->next_avail = 0;
	f->vdev->features = (1ULL << VIRTIO_F_VERSION_1) | features;
	q->size = QSIZE;
	q->desc = DESC_GPA;
	q->avail = AVAIL_GPA;
	q->used = USED_GPA;
	q->ready = true;
	q->kick_fd = f->kick;
	assert_int_equal(virtq_enable(&q->vq, &f->mem, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA,
				      f->vdev->features), 0);
	pthread_mutex_lock(&f->vdev->lock);
	f->vdev->status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			  VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;
	pthread_mutex_unlock(&f->vdev->lock);
	assert_int_equal(f->vdev->ops->activate(f->vdev->dev), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || guest_mem_init(&f->mem, 2 * MIB, 3 * GIB) < 0)
		return -1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	log_set_sink(helper_log_sink, &f->log);
	f->rng = virtio_rng_create(&f->mem, "virtio-rng0");
	if (!f->rng)
		return -1;
	f->vdev = virtio_rng_vdev(f->rng);
	pthread_mutex_init(&f->vdev->lock, NULL);	/* the transport's job; the test is the transport */
	f->vdev->notify = record_notify;
	f->vdev->transport = f;
	f->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->kick < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_rng_device_ops.stop(f->rng);
	pthread_mutex_destroy(&f->vdev->lock);
	virtio_rng_device_ops.destroy(f->rng);
	log_set_sink(NULL, NULL);
	close(f->kick);
	guest_mem_destroy(&f->mem);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return 0;
}

static void put_desc(struct fixture *f, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	struct vring_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	assert_int_equal(guest_mem_write(&f->mem, DESC_GPA + 16ULL * i, &d, sizeof(d)), 0);
}

/* Offer head without kicking. */
static void offer(struct fixture *f, uint16_t head)
{
	avail(f)->ring[f->next_avail % QSIZE] = head;
	f->next_avail++;
	__atomic_store_n(&avail(f)->idx, f->next_avail, __ATOMIC_RELEASE);
}

static void kick(struct fixture *f)
{
	uint64_t one = 1;

	assert_int_equal(write(f->kick, &one, sizeof(one)), sizeof(one));
}

static void wait_used(struct fixture *f, uint16_t idx)
{
	double end = helper_now_ms() + TIMEOUT_MS;

	while (used_idx(f) != idx) {
		if (helper_now_ms() > end)
			fail_msg("used->idx is %u, expected %u", used_idx(f), idx);
		usleep(1000);
	}
}

static void wait_irqs(struct fixture *f, int *counter, int n)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += TIMEOUT_MS / 1000;
	pthread_mutex_lock(&f->lock);
	while (*counter < n)
		if (pthread_cond_timedwait(&f->cond, &f->lock, &ts) != 0)
			break;
	int got = *counter;
	pthread_mutex_unlock(&f->lock);
	if (got < n)
		fail_msg("%d interrupts, expected %d", got, n);
}

static int irqs(struct fixture *f, int *counter)
{
	return helper_locked_get(&f->lock, counter);
}

static uint8_t status(struct fixture *f)
{
	pthread_mutex_lock(&f->vdev->lock);
	uint8_t s = f->vdev->status;
	pthread_mutex_unlock(&f->vdev->lock);
	return s;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static uint8_t *gbuf(struct fixture *f, uint64_t off, uint64_t len)
{
	return guest_mem_ptr(&f->mem, BUF_GPA + off, len);
}

/* What a driver does on DEVICE_NEEDS_RESET: writes 0 to the status. */
static void driver_reset(struct fixture *f)
{
	f->vdev->ops->reset(f->vdev->dev);
	pthread_mutex_lock(&f->vdev->lock);
	f->vdev->status = 0;
	pthread_mutex_unlock(&f->vdev->lock);
	assert_false(f->vdev->queues[0].vq.enabled);
}

static void test_identity(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(f->vdev->device_id, VIRTIO_ID_RNG);
	assert_int_equal(f->vdev->nr_queues, 1);
	assert_int_equal(f->vdev->config_size, 0);
	assert_int_equal(f->vdev->queues[0].max_size, QSIZE);
	assert_int_equal(f->vdev->ops->features(f->vdev->dev), 0);
	assert_string_equal(f->vdev->name, "virtio-rng0");
	assert_string_equal(virtio_rng_device_ops.kind, "virtio-rng");
	assert_non_null(virtio_rng_device_ops.reset);
}

static void test_fills_buffers(void **state)
{
	struct fixture *f = *state;

	bring_up(f, 0);
	put_desc(f, 0, BUF_GPA, 100, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	kick(f);
	wait_used(f, 1);
	wait_irqs(f, &f->queue_irqs, 1);
	assert_int_equal(used(f)->ring[0].id, 0);
	assert_int_equal(used(f)->ring[0].len, 100);
	assert_false(all_zero(gbuf(f, 0, 100), 100));
	assert_true(all_zero(gbuf(f, 100, 4096), 4096));

	/* Two buffers, 48 KiB each: 64 KiB at most per chain. */
	put_desc(f, 5, BUF_GPA + 0x10000, 48 * 1024, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 9);
	put_desc(f, 9, BUF_GPA + 0x20000, 48 * 1024, VRING_DESC_F_WRITE, 0);
	offer(f, 5);
	kick(f);
	wait_used(f, 2);
	assert_int_equal(used(f)->ring[1].id, 5);
	assert_int_equal(used(f)->ring[1].len, VIRTIO_RNG_MAX_CHAIN_BYTES);
	assert_false(all_zero(gbuf(f, 0x10000 + 48 * 1024 - 256, 256), 256));
	assert_false(all_zero(gbuf(f, 0x20000, 256), 256));
	assert_false(all_zero(gbuf(f, 0x20000 + 16 * 1024 - 256, 256), 256));
	assert_true(all_zero(gbuf(f, 0x20000 + 16 * 1024, 32 * 1024), 32 * 1024));
	assert_int_equal(status(f) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	assert_int_equal(f->log.warnings, 0);
}

/* More chains than one wake-up serves: all of them done after one kick. */
static void test_many_chains_one_kick(void **state)
{
	struct fixture *f = *state;
	const uint16_t n = 200;

	bring_up(f, 1ULL << VIRTIO_RING_F_EVENT_IDX);
	for (uint16_t i = 0; i < n; i++) {
		put_desc(f, i, BUF_GPA + 64ULL * i, 64, VRING_DESC_F_WRITE, 0);
		offer(f, i);
	}
	kick(f);
	wait_used(f, n);
	for (uint16_t i = 0; i < n; i++) {
		assert_int_equal(used(f)->ring[i].id, i);
		assert_int_equal(used(f)->ring[i].len, 64);
	}
	assert_false(all_zero(gbuf(f, 64ULL * (n - 1), 64), 64));
	/* Buffers offered before activation are served at activation. */
	driver_reset(f);
	memset(gbuf(f, 0, 64), 0, 64);
	memset(guest_mem_ptr(&f->mem, 0, 0x4000), 0, 0x4000);
	put_desc(f, 0, BUF_GPA, 64, VRING_DESC_F_WRITE, 0);
	f->next_avail = 0;
	offer(f, 0);
	struct virtio_queue *q = &f->vdev->queues[0];
	assert_int_equal(virtq_enable(&q->vq, &f->mem, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, 0), 0);
	assert_int_equal(f->vdev->ops->activate(f->vdev->dev), 0);
	wait_used(f, 1);
	assert_false(all_zero(gbuf(f, 0, 64), 64));
}

/* The driver asked for no interrupts: buffers served, no notify. */
static void test_no_interrupt(void **state)
{
	struct fixture *f = *state;

	bring_up(f, 0);
	avail(f)->flags = VRING_AVAIL_F_NO_INTERRUPT;
	put_desc(f, 0, BUF_GPA, 16, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	kick(f);
	wait_used(f, 1);
	/* reset returns once the thread has let go: the notify decision is made. */
	driver_reset(f);
	assert_int_equal(irqs(f, &f->queue_irqs), 0);
}

static void test_hostile_readable_buffer(void **state)
{
	struct fixture *f = *state;

	bring_up(f, 0);
	put_desc(f, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF_GPA + 16, 16, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	kick(f);
	wait_irqs(f, &f->config_irqs, 1);
	assert_true(status(f) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(f->log.warnings, 1);
	assert_non_null(strstr(f->log.last_warning, "virtio-rng0"));
	assert_non_null(strstr(f->log.last_warning, "device-readable"));
	assert_int_equal(used_idx(f), 0);

	/* Served nothing more, logged nothing more, until the reset. */
	put_desc(f, 2, BUF_GPA + 32, 16, VRING_DESC_F_WRITE, 0);
	offer(f, 2);
	kick(f);
	driver_reset(f);
	assert_int_equal(used_idx(f), 0);
	assert_int_equal(f->log.warnings, 1);
	assert_int_equal(irqs(f, &f->config_irqs), 1);

	/* After the reset it works again. */
	bring_up(f, 0);
	put_desc(f, 0, BUF_GPA, 32, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	kick(f);
	wait_used(f, 1);
	assert_false(all_zero(gbuf(f, 0, 32), 32));
	assert_int_equal(status(f) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
}

static void test_hostile_ring(void **state)
{
	struct fixture *f = *state;

	bring_up(f, 0);
	/* A loop, then a head out of range: the first breaks the queue. */
	put_desc(f, 0, BUF_GPA, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF_GPA, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	offer(f, 0);
	offer(f, 1000);
	kick(f);
	wait_irqs(f, &f->config_irqs, 1);
	assert_true(status(f) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_non_null(strstr(f->log.last_warning, "longer than the queue"));
	assert_int_equal(used_idx(f), 0);
	driver_reset(f);

	/* avail->idx far ahead. */
	bring_up(f, 0);
	__atomic_store_n(&avail(f)->idx, QSIZE + 1, __ATOMIC_RELEASE);
	kick(f);
	wait_irqs(f, &f->config_irqs, 2);
	assert_true(status(f) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(used_idx(f), 0);
	driver_reset(f);
	/* Only a device's first failure is a warning: a looping guest cannot flood stderr. */
	assert_int_equal(f->log.warnings, 1);
}

/* The device list's reset and stop leave a device that no longer serves. */
static void test_device_ops(void **state)
{
	struct fixture *f = *state;

	bring_up(f, 0);
	virtio_rng_device_ops.reset(f->rng);
	assert_false(f->vdev->queues[0].vq.enabled);
	put_desc(f, 0, BUF_GPA, 16, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	kick(f);
	usleep(50 * 1000);
	assert_int_equal(used_idx(f), 0);
	/* Stop twice is harmless; teardown stops again and destroys. */
	virtio_rng_device_ops.stop(f->rng);
	virtio_rng_device_ops.stop(f->rng);
	assert_int_equal(used_idx(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fills_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_chains_one_kick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_readable_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_ops, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
