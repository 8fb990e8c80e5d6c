/*
 * virtio-net (virtio 1.x, device ID 1) on a network backend (backends/net.h).
 *
 * Queues: RX 0, TX 1 (no multiqueue, no control queue). Offered: MAC,
 * STATUS (link up; down once the backend is gone), MRG_RXBUF, CSUM (the
 * guest may leave checksums to us: a backend without offloads gets them
 * completed here), and only with an offloading backend (TAP with a vnet
 * header) GUEST_CSUM, GUEST_TSO4/6 and HOST_TSO4/6, passed through as they
 * are. The header is struct virtio_net_hdr_v1 (12 bytes) with VERSION_1 or
 * MRG_RXBUF, else the 10-byte legacy one.
 *
 * Hostile drivers:
 *  - dropped and counted (the device goes on): a TX header shorter than
 *    negotiated, a frame above NET_FRAME_MAX or shorter than an Ethernet
 *    header, a GSO frame without a backend that takes it, a NEEDS_CSUM
 *    whose checksum position lies outside the frame; an RX frame that does
 *    not fit the buffers the driver can ever give (no MRG_RXBUF: the chain
 *    offered; MRG_RXBUF: the whole ring);
 *  - malformed rings or chains (virtq_pop() refuses them), a TX chain with
 *    device-writable buffers, an RX chain with device-readable ones or one
 *    too small for the header: DEVICE_NEEDS_RESET.
 *
 * Bounded: one I/O thread ("io-<name>") serves both queues and the backend.
 * TX is served in batches of VIRTIO_NET_TX_BATCH frames per wake-up; when
 * the backend answers -EAGAIN, the frame waits (one, in the device) and TX
 * waits for EPOLLOUT. RX reads the backend only while the guest has
 * buffers; otherwise it stops watching the backend (the socket buffer, or
 * the TAP queue, bounds what waits) until the driver adds some.
 */
#pragma once

#include <stdint.h>

#include "backends/net.h"
#include "vmm/device.h"

struct guest_mem;
struct virtio_dev;
struct virtio_net;

#define VIRTIO_NET_QUEUE_SIZE	256	/* RX and TX, offered to the driver */
#define VIRTIO_NET_TX_BATCH	256	/* TX frames per wake-up */
#define VIRTIO_NET_RX_BATCH	256	/* RX frames per wake-up */

struct virtio_net_stats {
	uint64_t rx_frames, rx_bytes;	/* delivered to the guest */
	uint64_t tx_frames, tx_bytes;	/* handed to the backend */
	uint64_t rx_dropped;		/* device and backend (host side) */
	uint64_t tx_dropped;		/* device (malformed) and backend */
	uint64_t rx_no_buffers;		/* times RX waited for the guest's buffers */
	uint64_t tx_blocked;		/* times TX waited for the backend */
};

/*
 * Make the device on nb (owned from here, also on failure) with this MAC.
 * name ("virtio-net0") names it in messages and its thread "io-<name>". The
 * transport owns vdev->lock. NULL with one line logged.
 */
struct virtio_net *virtio_net_create(const struct guest_mem *mem, struct net_backend *nb,
				     const uint8_t mac[6], const char *name);
struct virtio_dev *virtio_net_vdev(struct virtio_net *n);
/* A consistent snapshot of the counters (taken on the device's thread); any thread. */
void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *out);

/* reset: virtio reset; stop: reset and end the thread; destroy: free (and the backend). */
extern const struct device_ops virtio_net_device_ops;
