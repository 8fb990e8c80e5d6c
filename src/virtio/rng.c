/*
 * virtio-rng on the virtqueue core. Everything that touches the queue runs
 * on the device's io_loop thread: the kick handler, and activate/reset as
 * io_loop_call()s, so when reset returns no thread uses the queue.
 *
 * The transport must call ops->activate and ops->reset without holding
 * vdev->lock: the loop thread takes it in virtio_dev_fail().
 */
#include "virtio/rng.h"

#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio/virtio.h"
#include "vmm/ioloop.h"

struct virtio_rng {
	struct virtio_dev vdev;
	char name[32];
	struct io_loop *loop;
	int again_fd;		/* eventfd: a wake-up ended with work left */
	/* Loop thread only (activate and reset run there too). */
	bool active;		/* serving queue 0 */
	bool failed;		/* virtio_dev_fail() called: serve nothing until reset */
	int watched_kick;	/* the kick fd in the loop, or -1 */
	struct virtq_buf bufs[VIRTIO_RNG_QUEUE_SIZE];
};

static uint64_t rng_features(void *dev)
{
	(void)dev;
	return 0;
}

/* No configuration space: config_size 0, so the transport never calls these. */
static void rng_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
	(void)dev;
	(void)off;
	memset(buf, 0, len);
}

static void rng_config_write(void *dev, uint32_t off, const void *buf, uint32_t len)
{
	(void)dev;
	(void)off;
	(void)buf;
	(void)len;
}

static void rng_fail(struct virtio_rng *rng, const char *why)
{
	rng->failed = true;
	virtio_dev_fail(&rng->vdev, why);
}

/* Fill the chain's writable buffers, at most VIRTIO_RNG_MAX_CHAIN_BYTES; bytes written. */
static uint32_t rng_fill(struct virtio_rng *rng, const struct virtq_chain *c)
{
	uint32_t written = 0;

	for (unsigned int i = 0; i < c->nr_in; i++) {
		const struct virtq_buf *b = &c->bufs[c->nr_out + i];
		uint32_t want = b->len;

		if (want > VIRTIO_RNG_MAX_CHAIN_BYTES - written)
			want = VIRTIO_RNG_MAX_CHAIN_BYTES - written;
		for (uint32_t done = 0; done < want;) {
			ssize_t n = getrandom((uint8_t *)b->host + done, want - done, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* The guest gets what we have; it asks again. */
				log_warn("%s: getrandom: %s", rng->name, n < 0 ? strerror(errno) : "no bytes");
				return written + done;
			}
			done += (uint32_t)n;
		}
		written += want;
		if (written == VIRTIO_RNG_MAX_CHAIN_BYTES)
			break;
	}
	return written;
}

static void rng_serve(struct virtio_rng *rng)
{
	struct virtio_queue *vq = &rng->vdev.queues[0];
	struct virtq *q = &vq->vq;
	struct virtq_chain c = { .cap = VIRTIO_RNG_QUEUE_SIZE, .bufs = rng->bufs };
	unsigned int served = 0;

	if (!rng->active || rng->failed)
		return;
	for (;;) {
		virtq_set_notify(q, false);
		while (served < VIRTIO_RNG_MAX_CHAINS_PER_WAKE) {
			int ret = virtq_pop(q, &c);

			if (ret < 0) {
				rng_fail(rng, q->why);
				goto out;
			}
			if (ret == 0)
				break;
			if (c.nr_out) {
				rng_fail(rng, "device-readable buffer in a virtio-rng request");
				goto out;
			}
			virtq_push(q, c.head, rng_fill(rng, &c));
			served++;
		}
		if (served == VIRTIO_RNG_MAX_CHAINS_PER_WAKE) {
			/* Let lifecycle calls in; come back through the loop. */
			uint64_t one = 1;
			if (write(rng->again_fd, &one, sizeof(one)) < 0) {
				/* EAGAIN: a wake-up is pending already */
			}
			break;
		}
		virtq_set_notify(q, true);
		if (!virtq_pending(q))
			break;
	}
out:
	if (served)
		virtio_notify_queue(&rng->vdev, 0);
}

static void rng_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to drain */
	}
}

static void rng_kick(void *opaque, uint32_t events)
{
	struct virtio_rng *rng = opaque;

	(void)events;
	rng_drain(rng->watched_kick);
	virtio_note_kick(&rng->vdev, 0);
	rng_serve(rng);
}

static void rng_again(void *opaque, uint32_t events)
{
	struct virtio_rng *rng = opaque;

	(void)events;
	rng_drain(rng->again_fd);
	rng_serve(rng);
}

struct rng_call {
	struct virtio_rng *rng;
	int ret;
};

static void rng_unwatch(struct virtio_rng *rng)
{
	if (rng->watched_kick >= 0) {
		io_loop_del(rng->loop, rng->watched_kick);
		rng->watched_kick = -1;
	}
}

static void rng_activate_here(void *p)
{
	struct rng_call *a = p;
	struct virtio_rng *rng = a->rng;
	struct virtio_queue *vq = &rng->vdev.queues[0];

	a->ret = 0;
	rng_unwatch(rng);
	rng->failed = false;
	rng->active = false;
	if (!vq->vq.enabled)
		return;		/* a driver that does not use the queue */
	if (vq->kick_fd < 0) {
		log_error("%s: queue 0 enabled without a notification eventfd", rng->name);
		a->ret = -1;
		return;
	}
	if (io_loop_add(rng->loop, vq->kick_fd, EPOLLIN, rng_kick, rng) < 0) {
		a->ret = -1;
		return;
	}
	rng->watched_kick = vq->kick_fd;
	rng->active = true;
	/* Buffers offered before DRIVER_OK get served now. */
	rng_serve(rng);
}

static int rng_activate(void *dev)
{
	struct rng_call a = { dev, -1 };

	if (io_loop_call(((struct virtio_rng *)dev)->loop, rng_activate_here, &a) < 0)
		return -1;
	return a.ret;
}

static void rng_reset_here(void *p)
{
	struct virtio_rng *rng = p;

	rng_unwatch(rng);
	rng_drain(rng->again_fd);
	rng->active = false;
	rng->failed = false;
	virtq_disable(&rng->vdev.queues[0].vq);
}

static void rng_reset(void *dev)
{
	struct virtio_rng *rng = dev;

	io_loop_call(rng->loop, rng_reset_here, rng);
}

static const struct virtio_dev_ops rng_ops = {
	.features = rng_features,
	.config_read = rng_config_read,
	.config_write = rng_config_write,
	.activate = rng_activate,
	.reset = rng_reset,
};

struct virtio_rng *virtio_rng_create(const struct guest_mem *mem, const char *name)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));
	char thread_name[32];

	if (!rng) {
		log_error("%s: out of memory", name);
		return NULL;
	}
	snprintf(rng->name, sizeof(rng->name), "%s", name);
	rng->watched_kick = -1;

	struct virtio_dev *vdev = &rng->vdev;
	vdev->name = rng->name;
	vdev->device_id = VIRTIO_ID_RNG;
	vdev->ops = &rng_ops;
	vdev->dev = rng;
	vdev->mem = mem;
	vdev->config_size = 0;
	vdev->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
	vdev->nr_queues = 1;
	vdev->queues[0].max_size = VIRTIO_RNG_QUEUE_SIZE;
	vdev->queues[0].msix_vector = VIRTIO_MSI_NO_VECTOR;
	vdev->queues[0].kick_fd = -1;
	/* vdev->lock belongs to the transport, which initialises and destroys it. */

	rng->again_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rng->again_fd < 0) {
		log_error("%s: eventfd: %s", name, strerror(errno));
		goto err_free;
	}
	snprintf(thread_name, sizeof(thread_name), "io-%s", name);
	rng->loop = io_loop_create(thread_name);
	if (!rng->loop)
		goto err_again;
	if (io_loop_add(rng->loop, rng->again_fd, EPOLLIN, rng_again, rng) < 0)
		goto err_loop;
	if (io_loop_start(rng->loop) < 0)
		goto err_loop;
	return rng;

err_loop:
	io_loop_destroy(rng->loop);
err_again:
	close(rng->again_fd);
err_free:
	free(rng);
	return NULL;
}

struct virtio_dev *virtio_rng_vdev(struct virtio_rng *rng)
{
	return &rng->vdev;
}

static void rng_dev_stop(void *dev)
{
	struct virtio_rng *rng = dev;

	rng_reset(rng);
	io_loop_stop(rng->loop);
}

static void rng_dev_destroy(void *dev)
{
	struct virtio_rng *rng = dev;

	io_loop_destroy(rng->loop);
	close(rng->again_fd);
	free(rng);
}

const struct device_ops virtio_rng_device_ops = {
	.kind = "virtio-rng",
	.reset = rng_reset,
	.stop = rng_dev_stop,
	.destroy = rng_dev_destroy,
};
