/*
 * virtio-rng: one queue whose device-writable buffers are filled from
 * getrandom(), on the device's own I/O thread. No configuration space, no
 * device features. Any transport drives it through virtio_rng_vdev().
 */
#pragma once

#include "vmm/device.h"

struct guest_mem;
struct virtio_dev;
struct virtio_rng;

/* Entropy given per chain, and chains served per wake-up before others get the thread. */
#define VIRTIO_RNG_MAX_CHAIN_BYTES (64 * 1024)
#define VIRTIO_RNG_MAX_CHAINS_PER_WAKE 64
#define VIRTIO_RNG_QUEUE_SIZE 256	/* the queue size offered */

/* Create the device and start its I/O thread (idle until activated). Logs and NULL on error. */
struct virtio_rng *virtio_rng_create(const struct guest_mem *mem, const char *name);
struct virtio_dev *virtio_rng_vdev(struct virtio_rng *rng);

/* For the board's device list; dev is the struct virtio_rng *. */
extern const struct device_ops virtio_rng_device_ops;
