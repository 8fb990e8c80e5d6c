/*
 * A virtio device, independent of its transport. The transport
 * (virtio/pci.c: modern virtio-pci) owns the registers: feature
 * negotiation, status, queue set-up, notifications and interrupts. A device
 * (virtio/blk.c, virtio/rng.c, ...) supplies struct virtio_dev_ops and
 * serves its queues on its own I/O thread.
 *
 * Notifications: the transport gives each queue an eventfd (kick_fd) which
 * KVM signals through ioeventfd when the driver writes the queue's notify
 * address (or the transport writes it on an MMIO exit, the fallback). The
 * device watches the kick fds from its io_loop once activated.
 *
 * Reset: when the driver writes 0 to device_status (or the VM resets), the
 * transport calls ops->reset, which must return only once the device's
 * thread no longer touches any queue or guest buffer (io_loop_call()).
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtqueue.h"
#include "vmm/timeline.h"

struct guest_mem;
struct virtio_dev;

#define VIRTIO_MAX_QUEUES 64

struct virtio_dev_ops {
	/* Device features (the transport adds VERSION_1 and the ring features). */
	uint64_t (*features)(void *dev);
	/* Device-specific configuration space: off + len <= config_size, checked. */
	void (*config_read)(void *dev, uint32_t off, void *buf, uint32_t len);
	void (*config_write)(void *dev, uint32_t off, const void *buf, uint32_t len);
	/*
	 * DRIVER_OK was set with these queues enabled (vdev->queues[i].vq.enabled)
	 * and vdev->features negotiated: start serving. Return -1 to refuse (the
	 * transport then sets DEVICE_NEEDS_RESET).
	 */
	int (*activate)(void *dev);
	/* Stop serving and forget queue state; returns once no thread touches them. */
	void (*reset)(void *dev);
};

struct virtio_queue {
	struct virtq vq;
	uint16_t max_size;		/* what the device offers */
	uint16_t size;			/* what the driver chose */
	uint64_t desc, avail, used;	/* guest-physical ring addresses */
	bool ready;			/* queue_enable written 1 */
	uint16_t msix_vector;		/* VIRTIO_MSI_NO_VECTOR if none */
	int kick_fd;			/* eventfd the driver's notification signals */
};

struct virtio_dev {
	const char *name;		/* "virtio-blk0", for messages */
	uint16_t device_id;		/* VIRTIO_ID_* */
	const struct virtio_dev_ops *ops;
	void *dev;			/* the device's own state, ops' first argument */
	const struct guest_mem *mem;
	uint32_t config_size;

	pthread_mutex_t lock;		/* transport register state below (the transport inits it) */
	uint64_t device_features;	/* offered, transport bits included */
	uint64_t features;		/* negotiated (driver's subset), valid from FEATURES_OK */
	uint8_t status;
	uint8_t isr;			/* INTx: bit 0 queue, bit 1 config */
	uint32_t config_generation;
	uint16_t config_msix_vector;
	unsigned int failures;		/* virtio_dev_fail() calls; only the first is logged */
	unsigned int nr_queues;
	struct virtio_queue queues[VIRTIO_MAX_QUEUES];

	/* Set by the transport: raise the interrupt for a queue or the config. */
	void (*notify)(struct virtio_dev *vdev, int queue);	/* queue -1: config change */
	void *transport;
	struct timeline_once kicked;	/* its first queue notification is on the timeline */
};

/* The device's interrupt for queue q, if the driver wants one (virtq_should_notify). */
void virtio_notify_queue(struct virtio_dev *vdev, unsigned int q);
/* Tell the driver the config space changed (config_generation bumped). */
void virtio_notify_config(struct virtio_dev *vdev);
/*
 * The device found the driver's rings or requests malformed: set
 * DEVICE_NEEDS_RESET, send a config interrupt, log once (why) and serve
 * nothing more until the driver resets the device. Any thread.
 */
void virtio_dev_fail(struct virtio_dev *vdev, const char *why);
/* The driver notified queue q (a kick fd fired): the first one goes on the boot timeline. */
static inline void virtio_note_kick(struct virtio_dev *vdev, unsigned int q)
{
	timeline_mark_token(&vdev->kicked, TIMELINE_QUEUE_NOTIFY, "%s queue %u", vdev->name, q);
}
/* Whether a feature bit was negotiated. */
static inline bool virtio_has_feature(const struct virtio_dev *vdev, unsigned int bit)
{
	return (vdev->features >> bit) & 1;
}
