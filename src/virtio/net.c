/*
 * virtio-net: see net.h for what is offered and how bad frames end.
 *
 * Everything but creation, the config-space read and the io_loop_call()s
 * runs on the device's one I/O thread: the queues' kick fds, the backend's
 * fd and a self-wake eventfd (a batch ended with work left).
 *
 * RX: a frame read from the backend waits in rx_frame (one frame, at most)
 * until the guest's buffers take it. Chains popped for it are held (with
 * their buffers in pool) until they are enough: with MRG_RXBUF a frame
 * spans as many chains as it needs, all published together (the driver
 * reads num_buffers entries at once); without it, one chain must hold it.
 * A chain holds at most the queue size of buffers (virtq_pop() refuses
 * longer ones), so popping only while the pool has room for one more such
 * chain never truncates a chain.
 *
 * TX: each frame is copied once into tx_frame (its header into tx_hdr),
 * so a checksum can be completed without writing into the guest's
 * device-readable buffer and the driver cannot change what was checked.
 */
#include "virtio/net.h"

#include <endian.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_pci.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio/virtio.h"
#include "virtio/virtqueue.h"
#include "vmm/ioloop.h"
#include "vmm/timeline.h"

#define NET_RXQ		0
#define NET_TXQ		1
#define NET_HDR_MAX	sizeof(struct virtio_net_hdr_v1)	/* 12 */
#define NET_POOL	(2 * VIRTIO_NET_QUEUE_SIZE)
/* The config space we describe: mac, status, max_virtqueue_pairs. */
#define NET_CONFIG_SIZE	offsetof(struct virtio_net_config, mtu)

struct rx_held {
	uint16_t head;
	unsigned int first, nr;		/* its buffers: pool[first .. first + nr) */
	uint64_t cap;			/* their bytes */
};

enum rx_result { RX_PLACED, RX_NO_BUFFERS, RX_DROPPED, RX_FAILED };

struct virtio_net {
	struct virtio_dev vdev;
	struct net_backend *nb;
	struct io_loop *loop;
	char name[32];
	uint8_t mac[6];
	uint64_t features;		/* offered */
	atomic_ushort link;		/* config status: VIRTIO_NET_S_LINK_UP or 0 */
	int again_fd;

	/* The device's thread only (activate and reset run there too). */
	bool active, failed, dead;
	size_t hdr_len;			/* 10 or 12 */
	bool mrg;
	int kick_rx, kick_tx;		/* as watched, or -1 */
	uint32_t nb_events;		/* watched on nb->fd, 0: not watched */
	bool rx_wait_bufs;		/* a frame waits for the guest's buffers */
	bool tx_wait_out;		/* the backend is full: wait for EPOLLOUT */

	bool rx_have;			/* rx_frame holds a frame */
	size_t rx_len;			/* its bytes after the header */
	struct rx_held held[VIRTIO_NET_QUEUE_SIZE];
	unsigned int held_n, pool_n;
	uint64_t held_cap;
	struct virtq_buf pool[NET_POOL];

	bool tx_have;			/* a frame the backend refused with -EAGAIN */
	uint16_t tx_head;
	struct iovec tx_iov[2];
	unsigned int tx_iovcnt;
	size_t tx_len;
	struct virtq_buf tx_bufs[VIRTIO_NET_QUEUE_SIZE];

	struct virtio_net_stats st;	/* device counters; the backend keeps its own */

	uint8_t tx_hdr[NET_HDR_MAX];
	uint8_t rx_frame[NET_HDR_MAX + NET_FRAME_MAX];	/* header, then the frame */
	uint8_t tx_frame[NET_FRAME_MAX];
};

/* ---- checksums ---- */

/*
 * Finish a partial checksum as the guest asked (VIRTIO_NET_HDR_F_NEEDS_CSUM):
 * the ones' complement of the sum from start to the end, stored at
 * start + off (which holds the pseudo-header sum already). False when that
 * lies outside the frame.
 */
static bool net_csum_complete(uint8_t *frame, size_t len, size_t start, size_t off)
{
	uint64_t sum = 0;
	size_t i;
	uint16_t c;

	if (start > len || off > len - start || len - start - off < 2)
		return false;
	for (i = start; i + 1 < len; i += 2)
		sum += (uint32_t)frame[i] << 8 | frame[i + 1];
	if (i < len)
		sum += (uint32_t)frame[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	c = (uint16_t)~sum;
	if (c == 0)
		c = 0xffff;	/* as Linux does (CSUM_MANGLED_0): 0 means "none" for UDP */
	frame[start + off] = (uint8_t)(c >> 8);
	frame[start + off + 1] = (uint8_t)c;
	return true;
}

/* ---- helpers ---- */

static void net_fail(struct virtio_net *n, const char *why)
{
	if (n->failed)
		return;
	n->failed = true;
	virtio_dev_fail(&n->vdev, why);
}

static void net_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to drain */
	}
}

static void net_wake_again(struct virtio_net *n)
{
	uint64_t one = 1;

	if (write(n->again_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: a wake-up is pending already */
	}
}

static void net_on_backend(void *opaque, uint32_t events);

/* Watch the backend's fd for what RX and TX wait for now. */
static void net_watch(struct virtio_net *n)
{
	uint32_t want = 0;

	if (n->active && !n->failed && !n->dead) {
		if (!n->rx_wait_bufs)
			want |= EPOLLIN;
		if (n->tx_wait_out)
			want |= EPOLLOUT;
	}
	if (want == n->nb_events)
		return;
	if (n->nb_events)
		io_loop_del(n->loop, n->nb->fd);
	n->nb_events = 0;
	if (want && io_loop_add(n->loop, n->nb->fd, want, net_on_backend, n) == 0)
		n->nb_events = want;
}

static void net_backend_dead(struct virtio_net *n, int err)
{
	if (n->dead)
		return;
	n->dead = true;
	if (err != -EPIPE)
		log_warn("%s: network backend %s: %s; the link is down", n->name, n->nb->name,
			 strerror(-err));
	else
		log_warn("%s: network backend %s is gone; the link is down", n->name, n->nb->name);
	atomic_store(&n->link, 0);
	virtio_notify_config(&n->vdev);
}

/* ---- RX ---- */

/* Drop the first k held chains (consumed) from the held list and the pool. */
static void rx_consume(struct virtio_net *n, unsigned int k)
{
	unsigned int bufs = 0;
	uint64_t cap = 0;

	for (unsigned int i = 0; i < k; i++) {
		bufs += n->held[i].nr;
		cap += n->held[i].cap;
	}
	memmove(n->held, n->held + k, (n->held_n - k) * sizeof(n->held[0]));
	n->held_n -= k;
	for (unsigned int i = 0; i < n->held_n; i++)
		n->held[i].first -= bufs;
	memmove(n->pool, n->pool + bufs, (n->pool_n - bufs) * sizeof(n->pool[0]));
	n->pool_n -= bufs;
	n->held_cap -= cap;
}

/* Take one more chain into held. 1: taken, 0: none available, -1: failed. */
static int rx_take(struct virtio_net *n, struct virtq *q)
{
	struct virtq_chain c = { .cap = q->size, .bufs = n->pool + n->pool_n };
	int ret = virtq_pop(q, &c);

	if (ret < 0) {
		net_fail(n, q->why ? q->why : "malformed virtqueue");
		return -1;
	}
	if (ret == 0)
		return 0;
	if (c.nr_out) {
		net_fail(n, "a virtio-net RX chain has device-readable buffers");
		return -1;
	}
	if (c.in_len < n->hdr_len) {
		net_fail(n, "a virtio-net RX chain is shorter than the header");
		return -1;
	}
	n->held[n->held_n++] = (struct rx_held){
		.head = c.head, .first = n->pool_n, .nr = c.nr_in, .cap = c.in_len,
	};
	n->pool_n += c.nr_in;
	n->held_cap += c.in_len;
	return 1;
}

/* Copy header + frame across held chains 0 .. k-1; publish them together. */
static void rx_copy(struct virtio_net *n, struct virtq *q, unsigned int k)
{
	const uint8_t *src = n->rx_frame + NET_HDR_MAX - n->hdr_len;
	size_t left = n->hdr_len + n->rx_len;

	/* The header and the frame are contiguous: the header is right-aligned before it. */
	if (n->hdr_len != NET_HDR_MAX)
		memmove(n->rx_frame + NET_HDR_MAX - n->hdr_len, n->rx_frame, n->hdr_len);
	for (unsigned int i = 0; i < k; i++) {
		const struct rx_held *h = &n->held[i];
		uint32_t written = 0;

		for (unsigned int b = 0; b < h->nr && left; b++) {
			const struct virtq_buf *vb = &n->pool[h->first + b];
			size_t take = vb->len < left ? vb->len : left;

			memcpy(vb->host, src, take);
			src += take;
			left -= take;
			written += (uint32_t)take;
		}
		virtq_fill(q, i, h->head, written);
	}
	virtq_flush(q, k);
}

/* Put the frame in rx_frame into the guest's buffers. */
static enum rx_result rx_place(struct virtio_net *n)
{
	struct virtq *q = &n->vdev.queues[NET_RXQ].vq;
	uint64_t need = n->hdr_len + n->rx_len;
	unsigned int k;
	uint64_t cap;

	while (n->held_cap < need && (n->mrg || n->held_n == 0)) {
		int ret;

		if (n->held_n == q->size || n->pool_n + q->size > NET_POOL)
			return RX_DROPPED;	/* more than the whole ring: it never fits */
		ret = rx_take(n, q);
		if (ret < 0)
			return RX_FAILED;
		if (ret == 0) {
			/* Ask for a kick, then look again (a buffer added meanwhile). */
			virtq_set_notify(q, true);
			if (!virtq_pending(q))
				return RX_NO_BUFFERS;
		}
	}
	if (n->held_cap < need)
		return RX_DROPPED;	/* no MRG_RXBUF and the chain is too small */
	for (k = 0, cap = 0; cap < need; k++)
		cap += n->held[k].cap;
	if (n->hdr_len == NET_HDR_MAX) {
		struct virtio_net_hdr_v1 *h = (struct virtio_net_hdr_v1 *)n->rx_frame;

		h->num_buffers = htole16((uint16_t)k);
	}
	rx_copy(n, q, k);
	rx_consume(n, k);
	return RX_PLACED;
}

/* A frame from an offloading backend: what the guest did not negotiate, we finish or drop. */
static bool rx_fixup(struct virtio_net *n)
{
	struct virtio_net_hdr_v1 *h = (struct virtio_net_hdr_v1 *)n->rx_frame;
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

	if (gso == VIRTIO_NET_HDR_GSO_TCPV4 && virtio_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_TSO4))
		return true;
	if (gso == VIRTIO_NET_HDR_GSO_TCPV6 && virtio_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_TSO6))
		return true;
	if (gso != VIRTIO_NET_HDR_GSO_NONE)
		return false;
	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    !virtio_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_CSUM)) {
		if (!net_csum_complete(n->rx_frame + NET_HDR_MAX, n->rx_len,
				       le16toh(h->csum_start), le16toh(h->csum_offset)))
			return false;
		h->flags &= ~VIRTIO_NET_HDR_F_NEEDS_CSUM;
	}
	return true;
}

/* Read one frame from the backend into rx_frame. 1: got one, 0: none, -1: backend gone. */
static int rx_read(struct virtio_net *n)
{
	struct net_backend *nb = n->nb;
	ssize_t r;

	if (nb->vnet_hdr_len) {
		/* The backend's header is ours (checked at creation); it drops shorter reads. */
		r = nb->ops->recv(nb, n->rx_frame, sizeof(n->rx_frame));
	} else {
		memset(n->rx_frame, 0, NET_HDR_MAX);
		r = nb->ops->recv(nb, n->rx_frame + NET_HDR_MAX, NET_FRAME_MAX);
	}
	if (r < 0) {
		net_backend_dead(n, (int)r);
		return -1;
	}
	if (r == 0)
		return 0;
	n->rx_len = (size_t)r - nb->vnet_hdr_len;
	return 1;
}

static void rx_process(struct virtio_net *n)
{
	struct virtq *q = &n->vdev.queues[NET_RXQ].vq;
	unsigned int delivered = 0;

	if (!n->active || n->failed || n->dead || !q->enabled)
		return;
	if (n->rx_wait_bufs) {
		/* The driver added buffers: no more kicks needed while they last. */
		n->rx_wait_bufs = false;
		virtq_set_notify(q, false);
	}
	while (delivered < VIRTIO_NET_RX_BATCH) {
		if (!n->rx_have) {
			int ret = rx_read(n);

			if (ret <= 0)
				break;
			n->rx_have = true;
			if (n->nb->vnet_hdr_len && !rx_fixup(n)) {
				n->rx_have = false;
				n->st.rx_dropped++;
				continue;
			}
		}
		switch (rx_place(n)) {
		case RX_PLACED:
			timeline_net_rx(n->rx_frame + NET_HDR_MAX, n->rx_len);
			n->rx_have = false;
			n->st.rx_frames++;
			n->st.rx_bytes += n->rx_len;
			delivered++;
			break;
		case RX_DROPPED:
			n->rx_have = false;
			n->st.rx_dropped++;
			break;
		case RX_NO_BUFFERS:
			n->rx_wait_bufs = true;
			n->st.rx_no_buffers++;
			goto out;
		case RX_FAILED:
			goto out;
		}
	}
	if (delivered == VIRTIO_NET_RX_BATCH)
		net_wake_again(n);	/* the backend may hold frames its fd does not announce */
out:
	if (delivered)
		virtio_notify_queue(&n->vdev, NET_RXQ);
	net_watch(n);
}

/* ---- TX ---- */

/* Copy len bytes at offset off of the chain's readable bytes into dst. */
static void chain_copy_out(const struct virtq_chain *c, uint64_t off, uint8_t *dst, size_t len)
{
	for (unsigned int i = 0; i < c->nr_out && len; i++) {
		const struct virtq_buf *b = &c->bufs[i];
		size_t k;

		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		k = b->len - off < len ? b->len - off : len;
		memcpy(dst, (uint8_t *)b->host + off, k);
		dst += k;
		len -= k;
		off = 0;
	}
}

/* Turn a chain into tx_iov. False: drop it (counted by the caller). */
static bool tx_build(struct virtio_net *n, const struct virtq_chain *c)
{
	struct virtio_net_hdr_v1 *h = (struct virtio_net_hdr_v1 *)n->tx_hdr;
	uint64_t flen;
	uint8_t gso;

	if (c->out_len < n->hdr_len)
		return false;
	flen = c->out_len - n->hdr_len;
	if (flen > NET_FRAME_MAX || flen < ETH_HLEN)
		return false;
	memset(n->tx_hdr, 0, sizeof(n->tx_hdr));
	chain_copy_out(c, 0, n->tx_hdr, n->hdr_len);
	chain_copy_out(c, n->hdr_len, n->tx_frame, (size_t)flen);
	h->num_buffers = 0;
	n->tx_len = (size_t)flen;
	gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	if (n->nb->offloads) {
		if (gso != VIRTIO_NET_HDR_GSO_NONE &&
		    !(gso == VIRTIO_NET_HDR_GSO_TCPV4 &&
		      virtio_has_feature(&n->vdev, VIRTIO_NET_F_HOST_TSO4)) &&
		    !(gso == VIRTIO_NET_HDR_GSO_TCPV6 &&
		      virtio_has_feature(&n->vdev, VIRTIO_NET_F_HOST_TSO6)))
			return false;
	} else {
		if (gso != VIRTIO_NET_HDR_GSO_NONE)
			return false;
		if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
		    !net_csum_complete(n->tx_frame, n->tx_len, le16toh(h->csum_start),
				       le16toh(h->csum_offset)))
			return false;
	}
	n->tx_iovcnt = 0;
	if (n->nb->vnet_hdr_len)
		n->tx_iov[n->tx_iovcnt++] = (struct iovec){ n->tx_hdr, n->nb->vnet_hdr_len };
	n->tx_iov[n->tx_iovcnt++] = (struct iovec){ n->tx_frame, n->tx_len };
	return true;
}

/* Send tx_iov. False when the backend is full (the frame stays in tx_have). */
static bool tx_send(struct virtio_net *n, uint16_t head)
{
	struct net_backend *nb = n->nb;

	if (nb->ops->send(nb, n->tx_iov, n->tx_iovcnt) == -EAGAIN) {
		n->tx_have = true;
		n->tx_head = head;
		n->tx_wait_out = true;
		n->st.tx_blocked++;
		return false;
	}
	n->st.tx_frames++;
	n->st.tx_bytes += n->tx_len;
	virtq_push(&n->vdev.queues[NET_TXQ].vq, head, 0);
	return true;
}

static void tx_process(struct virtio_net *n)
{
	struct virtq *q = &n->vdev.queues[NET_TXQ].vq;
	struct virtq_chain c = { .cap = VIRTIO_NET_QUEUE_SIZE, .bufs = n->tx_bufs };
	unsigned int served = 0;
	bool pushed = false;

	if (!n->active || n->failed || n->tx_wait_out || !q->enabled)
		return;
	if (n->tx_have) {
		n->tx_have = false;
		if (!tx_send(n, n->tx_head))
			goto out;
		pushed = true;
	}
	for (;;) {
		virtq_set_notify(q, false);
		while (served < VIRTIO_NET_TX_BATCH) {
			int ret = virtq_pop(q, &c);

			if (ret < 0) {
				net_fail(n, q->why ? q->why : "malformed virtqueue");
				goto out;
			}
			if (ret == 0)
				break;
			if (c.nr_in) {
				net_fail(n, "a virtio-net TX chain has device-writable buffers");
				goto out;
			}
			served++;
			if (!tx_build(n, &c)) {
				n->st.tx_dropped++;
				virtq_push(q, c.head, 0);
				pushed = true;
				continue;
			}
			if (!tx_send(n, c.head))
				goto out;
			pushed = true;
		}
		if (served == VIRTIO_NET_TX_BATCH) {
			net_wake_again(n);	/* let RX and the others in; come back */
			break;
		}
		virtq_set_notify(q, true);
		if (!virtq_pending(q))
			break;
	}
out:
	if (!n->tx_wait_out && net_backend_flush(n->nb) == -EAGAIN) {
		/* A frame went out in part: what is left must follow before anything else. */
		n->tx_wait_out = true;
		n->st.tx_blocked++;
	}
	if (pushed)
		virtio_notify_queue(&n->vdev, NET_TXQ);
	net_watch(n);
}

/* ---- handlers ---- */

static void net_on_backend(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;

	if (n->tx_wait_out && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		if (net_backend_flush(n->nb) != -EAGAIN) {
			n->tx_wait_out = false;
			tx_process(n);
		}
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		if (n->nb_events & EPOLLIN)
			rx_process(n);
		else if (events & (EPOLLERR | EPOLLHUP))
			net_backend_dead(n, -EPIPE);	/* nobody would read to find out */
	}
	net_watch(n);
}

static void net_on_rx_kick(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;

	net_drain(n->kick_rx);
	virtio_note_kick(&n->vdev, NET_RXQ);
	rx_process(n);
}

static void net_on_tx_kick(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;

	net_drain(n->kick_tx);
	virtio_note_kick(&n->vdev, NET_TXQ);
	tx_process(n);
}

static void net_on_again(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;

	net_drain(n->again_fd);
	rx_process(n);
	tx_process(n);
}

/* ---- activate / reset (on the device's thread) ---- */

static void net_reset_here(void *opaque)
{
	struct virtio_net *n = opaque;

	n->active = false;
	net_watch(n);
	if (n->kick_rx >= 0)
		io_loop_del(n->loop, n->kick_rx);
	if (n->kick_tx >= 0)
		io_loop_del(n->loop, n->kick_tx);
	n->kick_rx = n->kick_tx = -1;
	net_drain(n->again_fd);
	if (n->rx_have)
		n->st.rx_dropped++;
	if (n->tx_have)
		n->st.tx_dropped++;
	n->rx_have = n->tx_have = false;
	n->held_n = n->pool_n = 0;
	n->held_cap = 0;
	n->rx_wait_bufs = n->tx_wait_out = false;
	n->failed = false;
}

struct net_activate_args {
	struct virtio_net *n;
	int ret;
};

static void net_activate_here(void *opaque)
{
	struct net_activate_args *a = opaque;
	struct virtio_net *n = a->n;
	struct virtio_queue *rxq = &n->vdev.queues[NET_RXQ], *txq = &n->vdev.queues[NET_TXQ];

	net_reset_here(n);	/* an activate without a reset in between starts over */
	a->ret = -1;
	n->mrg = virtio_has_feature(&n->vdev, VIRTIO_NET_F_MRG_RXBUF);
	n->hdr_len = n->mrg || virtio_has_feature(&n->vdev, VIRTIO_F_VERSION_1)
		     ? sizeof(struct virtio_net_hdr_v1) : sizeof(struct virtio_net_hdr);
	if ((rxq->vq.enabled && rxq->kick_fd < 0) || (txq->vq.enabled && txq->kick_fd < 0)) {
		log_error("%s: a queue is enabled without a notification fd", n->name);
		return;
	}
	if (n->nb->offloads && n->nb->ops->set_rx_offloads) {
		unsigned int off = 0;

		if (virtio_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_CSUM))
			off |= NET_OFFLOAD_CSUM;
		if (virtio_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_TSO4))
			off |= NET_OFFLOAD_TSO4;
		if (virtio_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_TSO6))
			off |= NET_OFFLOAD_TSO6;
		if (n->nb->ops->set_rx_offloads(n->nb, off) < 0)
			return;
	}
	if (rxq->vq.enabled) {
		if (io_loop_add(n->loop, rxq->kick_fd, EPOLLIN, net_on_rx_kick, n) < 0)
			goto err;
		n->kick_rx = rxq->kick_fd;
	}
	if (txq->vq.enabled) {
		if (io_loop_add(n->loop, txq->kick_fd, EPOLLIN, net_on_tx_kick, n) < 0)
			goto err;
		n->kick_tx = txq->kick_fd;
	}
	n->active = true;
	/* Without an RX queue nothing reads the backend: frames wait there. */
	n->rx_wait_bufs = !rxq->vq.enabled;
	a->ret = 0;
	rx_process(n);
	tx_process(n);
	net_watch(n);
	return;

err:
	net_reset_here(n);
}

static int net_activate(void *dev)
{
	struct net_activate_args a = { dev, -1 };

	if (io_loop_call(((struct virtio_net *)dev)->loop, net_activate_here, &a) < 0)
		return -1;
	return a.ret;
}

static void net_reset(void *dev)
{
	struct virtio_net *n = dev;

	io_loop_call(n->loop, net_reset_here, n);
}

/* ---- config space and features ---- */

static uint64_t net_features(void *dev)
{
	return ((struct virtio_net *)dev)->features;
}

static void net_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
	struct virtio_net *n = dev;
	struct virtio_net_config cfg = { 0 };

	memcpy(cfg.mac, n->mac, sizeof(cfg.mac));
	cfg.status = htole16(atomic_load(&n->link));
	cfg.max_virtqueue_pairs = htole16(1);
	/* The transport checked off + len <= config_size. */
	memcpy(buf, (const uint8_t *)&cfg + off, len);
}

static void net_config_write(void *dev, uint32_t off, const void *buf, uint32_t len)
{
	/* The MAC is read-only in virtio 1.x (no CTRL_MAC_ADDR): ignore. */
}

static const struct virtio_dev_ops net_virtio_ops = {
	.features = net_features,
	.config_read = net_config_read,
	.config_write = net_config_write,
	.activate = net_activate,
	.reset = net_reset,
};

/* ---- creation, stats and the device list ---- */

struct virtio_net *virtio_net_create(const struct guest_mem *mem, struct net_backend *nb,
				     const uint8_t mac[6], const char *name)
{
	struct virtio_net *n;
	char tname[40];

	if (nb->vnet_hdr_len != 0 && nb->vnet_hdr_len != NET_HDR_MAX) {
		log_error("%s: backend %s has a %zu-byte header (%zu expected)", name, nb->name,
			  nb->vnet_hdr_len, NET_HDR_MAX);
		goto err_backend;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		log_error("%s: out of memory", name);
		goto err_backend;
	}
	snprintf(n->name, sizeof(n->name), "%s", name);
	memcpy(n->mac, mac, sizeof(n->mac));
	n->nb = nb;
	n->kick_rx = n->kick_tx = -1;
	atomic_init(&n->link, VIRTIO_NET_S_LINK_UP);
	n->features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS) |
		      (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_CSUM);
	if (nb->offloads && nb->vnet_hdr_len)
		n->features |= (1ull << VIRTIO_NET_F_GUEST_CSUM) |
			       (1ull << VIRTIO_NET_F_GUEST_TSO4) |
			       (1ull << VIRTIO_NET_F_GUEST_TSO6) |
			       (1ull << VIRTIO_NET_F_HOST_TSO4) |
			       (1ull << VIRTIO_NET_F_HOST_TSO6);
	else
		nb->offloads = false;	/* only through a header */

	n->again_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->again_fd < 0) {
		log_error("%s: eventfd: %s", name, strerror(errno));
		goto err_free;
	}
	snprintf(tname, sizeof(tname), "io-%s", name);
	n->loop = io_loop_create(tname);
	if (!n->loop)
		goto err_again;
	if (io_loop_add(n->loop, n->again_fd, EPOLLIN, net_on_again, n) < 0)
		goto err_loop;
	if (io_loop_start(n->loop) < 0)
		goto err_loop;

	struct virtio_dev *vdev = &n->vdev;
	vdev->name = n->name;
	vdev->device_id = VIRTIO_ID_NET;
	vdev->ops = &net_virtio_ops;
	vdev->dev = n;
	vdev->mem = mem;
	vdev->config_size = NET_CONFIG_SIZE;
	vdev->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
	vdev->nr_queues = 2;
	for (unsigned int i = 0; i < 2; i++) {
		vdev->queues[i].max_size = VIRTIO_NET_QUEUE_SIZE;
		vdev->queues[i].msix_vector = VIRTIO_MSI_NO_VECTOR;
		vdev->queues[i].kick_fd = -1;
	}
	/* vdev->lock belongs to the transport. */
	return n;

err_loop:
	io_loop_destroy(n->loop);
err_again:
	close(n->again_fd);
err_free:
	free(n);
err_backend:
	net_backend_destroy(nb);
	return NULL;
}

struct virtio_dev *virtio_net_vdev(struct virtio_net *n)
{
	return &n->vdev;
}

struct net_stats_args {
	struct virtio_net *n;
	struct virtio_net_stats *out;
};

static void net_stats_here(void *opaque)
{
	struct net_stats_args *a = opaque;

	*a->out = a->n->st;
	a->out->rx_dropped += a->n->nb->rx_dropped;
	a->out->tx_dropped += a->n->nb->tx_dropped;
}

void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *out)
{
	struct net_stats_args a = { n, out };

	if (io_loop_call(n->loop, net_stats_here, &a) < 0)
		memset(out, 0, sizeof(*out));
}

static void net_dev_stop(void *dev)
{
	struct virtio_net *n = dev;

	io_loop_call(n->loop, net_reset_here, n);
	io_loop_stop(n->loop);
}

static void net_dev_destroy(void *dev)
{
	struct virtio_net *n = dev;

	net_dev_stop(n);	/* idempotent: the list stops first */
	io_loop_destroy(n->loop);
	close(n->again_fd);
	net_backend_destroy(n->nb);
	free(n);
}

const struct device_ops virtio_net_device_ops = {
	.kind = "virtio-net",
	.reset = net_reset,
	.stop = net_dev_stop,
	.destroy = net_dev_destroy,
};
