/*
 * The host side of a network device: Ethernet frames to and from the host.
 *
 * Backends:
 *  - tap: an existing TAP device (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), frames
 *    carry a struct virtio_net_hdr_v1 so checksum and TSO offloads pass through;
 *  - stream: frames over a connected stream socket, each preceded by its
 *    length as a 32-bit big-endian number (passt's and QEMU's "-netdev
 *    stream" protocol); the user-mode network runs behind one of these
 *    (bootvm-net-user, libslirp in its own process), and so can passt.
 *
 * A backend is used by one thread (the device's I/O thread). fd is watched
 * for EPOLLIN (frames waiting) and, after a send returned -EAGAIN, for
 * EPOLLOUT (room again).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define NET_FRAME_MAX 65550	/* 64 KiB of payload plus an Ethernet header and a VLAN tag */

struct net_backend;

struct net_backend_ops {
	/*
	 * Send one frame (with its virtio-net header first when vnet_hdr_len is
	 * set). 0 when sent or dropped for good (counted), -EAGAIN when the
	 * backend cannot take it now: retry once fd is writable.
	 */
	int (*send)(struct net_backend *nb, const struct iovec *iov, unsigned int iovcnt);
	/* One frame into buf: its length, 0 when none is waiting, -errno on a dead backend. */
	ssize_t (*recv)(struct net_backend *nb, void *buf, size_t len);
	void (*destroy)(struct net_backend *nb);
	/*
	 * Optional: write out what earlier sends left buffered (a stream's
	 * partly written frame). 0 when nothing is left, -EAGAIN when some is
	 * (watch EPOLLOUT and call again).
	 */
	int (*flush)(struct net_backend *nb);
	/*
	 * Optional (offloads only): what frames from the host may leave to the
	 * guest, NET_OFFLOAD_* bits (what the guest negotiated); the host
	 * finishes the rest before handing frames over. 0 or -1 (logged).
	 */
	int (*set_rx_offloads)(struct net_backend *nb, unsigned int offloads);
};

#define NET_OFFLOAD_CSUM	(1u << 0)	/* partial checksums (NEEDS_CSUM) */
#define NET_OFFLOAD_TSO4	(1u << 1)
#define NET_OFFLOAD_TSO6	(1u << 2)

struct net_backend {
	const struct net_backend_ops *ops;
	int fd;
	size_t vnet_hdr_len;	/* 0: plain frames; else each frame starts with this header */
	bool offloads;		/* checksum/TSO offloads can be handed to the backend as they are */
	char name[32];		/* "tap0", "user", ... for messages */
	uint64_t tx_dropped;	/* frames the backend refused for good */
	uint64_t rx_dropped;	/* frames too large or malformed from the host side */
};

/* Open TAP device ifname. Logs one line naming it and why (missing, no permission), NULL. */
struct net_backend *net_tap_open(const char *ifname);

/* Frames over fd, a connected stream socket (we own it from here). NULL (logged) on error. */
struct net_backend *net_stream_open(int fd, const char *name);

static inline int net_backend_flush(struct net_backend *nb)
{
	return nb->ops->flush ? nb->ops->flush(nb) : 0;
}

static inline void net_backend_destroy(struct net_backend *nb)
{
	if (nb)
		nb->ops->destroy(nb);
}
