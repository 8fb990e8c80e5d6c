/*
 * virtio/net.c driven by an in-process synthetic driver (as in
 * test_virtio_blk.c: rings laid out by hand, eventfds as kick fds, the
 * transport's part done here) on a stream backend over a socketpair whose
 * other end is the test's "network". An offloading backend is faked over a
 * SOCK_SEQPACKET pair (one frame with its vnet header per packet, as TAP).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backends/net.h"
#include "util/log.h"
#include "virtio/net.h"
#include "virtio/virtio.h"
#include "virtio/virtqueue.h"
#include "vmm/memory.h"

#include "helpers.h"

#define MIB		(1ull << 20)
#define RAM_SIZE	(16 * MIB)
#define QSIZE		256
#define RING_GPA(q)	(0x10000ull + (q) * 0x4000ull)
#define RX_GPA		(2 * MIB)	/* RX buffers, 4 KiB apart */
#define TX_GPA		(4 * MIB)	/* TX buffers, 16 KiB apart */
#define BIG_GPA		(8 * MIB)	/* one large TX buffer */
#define HDR		12
#define RXQ		0
#define TXQ		1

static const uint8_t test_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

struct drv_queue {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx, used_seen, next_desc;
	int kick_fd;
};

struct fixture {
	struct guest_mem mem;
	struct virtio_net *n;
	struct virtio_dev *vdev;
	struct drv_queue q[2];
	int peer;			/* the network's end */
	int sndbuf;			/* set on the device's end before it opens, if not 0 */
	bool seqpacket;			/* the fake offloading backend */
	unsigned int rx_offloads;	/* what it was told */
	struct helper_log log;
	pthread_mutex_t irq_lock;
	int irqs[2], config_irqs;
};

/* ---- a fake offloading backend: vnet header + frame per SOCK_SEQPACKET packet ---- */

static struct fixture *fake_owner;

static int fake_send(struct net_backend *nb, const struct iovec *iov, unsigned int iovcnt)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt };

	if (sendmsg(nb->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		if (errno == EAGAIN)
			return -EAGAIN;
		nb->tx_dropped++;
	}
	return 0;
}

static ssize_t fake_recv(struct net_backend *nb, void *buf, size_t len)
{
	ssize_t r = recv(nb->fd, buf, len, MSG_DONTWAIT);

	if (r < 0)
		return errno == EAGAIN ? 0 : -errno;
	return r == 0 ? -EPIPE : r;
}

static void fake_destroy(struct net_backend *nb)
{
	close(nb->fd);
	free(nb);
}

static int fake_set_rx_offloads(struct net_backend *nb, unsigned int off)
{
	fake_owner->rx_offloads = off;
	return 0;
}

static const struct net_backend_ops fake_ops = {
	.send = fake_send, .recv = fake_recv, .destroy = fake_destroy,
	.set_rx_offloads = fake_set_rx_offloads,
};

/* ---- the synthetic driver ---- */

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

static void drv_activate(struct fixture *f, uint64_t features)
{
	struct virtio_dev *v = f->vdev;

	v->features = features;
	for (unsigned int i = 0; i < 2; i++) {
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
	assert_int_equal(v->ops->activate(v->dev), 0);
}

static void drv_reset(struct fixture *f)
{
	struct virtio_dev *v = f->vdev;

	v->ops->reset(v->dev);
	for (unsigned int i = 0; i < 2; i++)
		virtq_disable(&v->queues[i].vq);
	v->status = 0;
}

static uint64_t features(struct fixture *f, bool mrg)
{
	uint64_t feat = f->vdev->ops->features(f->vdev->dev) | (1ull << VIRTIO_F_VERSION_1);

	if (!mrg)
		feat &= ~(1ull << VIRTIO_NET_F_MRG_RXBUF);
	return feat;
}

static void make_device(struct fixture *f, bool mrg)
{
	int sv[2];
	struct net_backend *nb;

	if (f->seqpacket) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
		nb = calloc(1, sizeof(*nb));
		assert_non_null(nb);
		*nb = (struct net_backend){ .ops = &fake_ops, .fd = sv[0], .vnet_hdr_len = HDR,
					    .offloads = true, .name = "fake" };
		fcntl(sv[0], F_SETFL, O_NONBLOCK);
		fake_owner = f;
	} else {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		if (f->sndbuf) {
			setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &f->sndbuf, sizeof(f->sndbuf));
			setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &f->sndbuf, sizeof(f->sndbuf));
		}
		nb = net_stream_open(sv[0], "stream");
		assert_non_null(nb);
	}
	f->peer = sv[1];
	f->n = virtio_net_create(&f->mem, nb, test_mac, "virtio-net0");
	assert_non_null(f->n);
	f->vdev = virtio_net_vdev(f->n);
	pthread_mutex_init(&f->vdev->lock, NULL);
	f->vdev->notify = on_notify;
	f->vdev->transport = f;
	drv_activate(f, features(f, mrg));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(guest_mem_init(&f->mem, RAM_SIZE, 0xc0000000ull), 0);
	pthread_mutex_init(&f->irq_lock, NULL);
	for (int i = 0; i < 2; i++) {
		f->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(f->q[i].kick_fd >= 0);
	}
	f->peer = -1;
	log_set_sink(helper_log_sink, &f->log);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->n) {
		virtio_net_device_ops.stop(f->n);
		pthread_mutex_destroy(&f->vdev->lock);
		virtio_net_device_ops.destroy(f->n);
	}
	if (f->peer >= 0)
		close(f->peer);
	log_set_sink(NULL, NULL);
	for (int i = 0; i < 2; i++)
		close(f->q[i].kick_fd);
	guest_mem_destroy(&f->mem);
	free(f);
	return 0;
}

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

static uint16_t drv_add(struct fixture *f, unsigned int qi, const struct seg *segs, unsigned int n)
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

static uint16_t used_idx(struct fixture *f, unsigned int qi)
{
	return le16toh(__atomic_load_n(&f->q[qi].used->idx, __ATOMIC_ACQUIRE));
}

static bool drv_wait_used(struct fixture *f, unsigned int qi, struct vring_used_elem *e,
			  int timeout_ms)
{
	struct drv_queue *d = &f->q[qi];
	double start = helper_now_ms();

	while (used_idx(f, qi) == d->used_seen) {
		if (helper_now_ms() - start > timeout_ms)
			return false;
		usleep(200);
	}
	e->id = le32toh(d->used->ring[d->used_seen % QSIZE].id);
	e->len = le32toh(d->used->ring[d->used_seen % QSIZE].len);
	d->used_seen++;
	return true;
}

static uint8_t pat(unsigned int k, size_t i)
{
	return (uint8_t)(k * 29 + i * 3 + (i >> 7));
}

static void fill(uint8_t *p, unsigned int k, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pat(k, i);
}

/* ---- the network's side ---- */

static void peer_send(struct fixture *f, const void *data, uint32_t len)
{
	uint32_t be = htobe32(len);
	struct iovec iov[2] = { { &be, 4 }, { (void *)data, len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	size_t total = 4 + len, done = 0;

	if (f->seqpacket) {
		assert_int_equal(send(f->peer, data, len, 0), (ssize_t)len);
		return;
	}
	while (done < total) {
		ssize_t n = sendmsg(f->peer, &m, MSG_NOSIGNAL);

		assert_true(n > 0);
		done += (size_t)n;
		while (n > 0) {
			size_t k = (size_t)n < m.msg_iov[0].iov_len ? (size_t)n : m.msg_iov[0].iov_len;

			m.msg_iov[0].iov_base = (uint8_t *)m.msg_iov[0].iov_base + k;
			m.msg_iov[0].iov_len -= k;
			n -= (ssize_t)k;
			if (m.msg_iov[0].iov_len == 0 && m.msg_iovlen > 1) {
				m.msg_iov++;
				m.msg_iovlen--;
			}
		}
	}
}

static bool peer_read(struct fixture *f, void *buf, size_t len, int timeout_ms)
{
	uint8_t *p = buf;

	while (len) {
		struct pollfd pfd = { .fd = f->peer, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return false;
		n = recv(f->peer, p, len, MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* The next frame on the wire; its length, or -1 on timeout. */
static ssize_t peer_recv(struct fixture *f, void *buf, size_t cap, int timeout_ms)
{
	uint32_t be;

	if (f->seqpacket) {
		struct pollfd pfd = { .fd = f->peer, .events = POLLIN };

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		return recv(f->peer, buf, cap, 0);
	}
	if (!peer_read(f, &be, 4, timeout_ms))
		return -1;
	be = be32toh(be);
	assert_true(be <= cap);
	if (!peer_read(f, buf, be, timeout_ms))
		return -1;
	return be;
}

static bool peer_quiet(struct fixture *f, int ms)
{
	struct pollfd pfd = { .fd = f->peer, .events = POLLIN };

	return poll(&pfd, 1, ms) == 0;
}

/* ---- guest-side frames ---- */

/* A TX frame: header then len frame bytes, at slot k, as one buffer. */
static uint16_t tx_add(struct fixture *f, unsigned int k, const struct virtio_net_hdr_v1 *h,
		       const uint8_t *frame, uint32_t len)
{
	uint64_t gpa = TX_GPA + k * 0x4000ull;
	uint8_t *p = gptr(f, gpa, HDR + len);
	struct seg s = { gpa, HDR + len, false };

	if (h)
		memcpy(p, h, HDR);
	else
		memset(p, 0, HDR);
	memcpy(p + HDR, frame, len);
	return drv_add(f, TXQ, &s, 1);
}

static void rx_post(struct fixture *f, unsigned int k, uint32_t len)
{
	struct seg s = { RX_GPA + (k % 256) * 0x1000ull, len, true };

	drv_add(f, RXQ, &s, 1);
}

static struct virtio_net_stats stats(struct fixture *f)
{
	struct virtio_net_stats s;

	virtio_net_get_stats(f->n, &s);
	return s;
}

static bool needs_reset(struct fixture *f)
{
	bool r;

	pthread_mutex_lock(&f->vdev->lock);
	r = f->vdev->status & VIRTIO_CONFIG_S_NEEDS_RESET;
	pthread_mutex_unlock(&f->vdev->lock);
	return r;
}

static int config_irqs(struct fixture *f)
{
	return helper_locked_get(&f->irq_lock, &f->config_irqs);
}

/* ---- tests ---- */

static void test_config(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_config cfg;
	uint64_t feat;

	make_device(f, true);
	assert_int_equal(f->vdev->device_id, VIRTIO_ID_NET);
	assert_int_equal(f->vdev->nr_queues, 2);
	assert_int_equal(f->vdev->queues[0].max_size, VIRTIO_NET_QUEUE_SIZE);
	feat = f->vdev->ops->features(f->vdev->dev);
	assert_true(feat & (1ull << VIRTIO_NET_F_MAC));
	assert_true(feat & (1ull << VIRTIO_NET_F_STATUS));
	assert_true(feat & (1ull << VIRTIO_NET_F_MRG_RXBUF));
	assert_true(feat & (1ull << VIRTIO_NET_F_CSUM));
	/* No offloads behind a stream: nothing the guest would need us to segment. */
	assert_false(feat & (1ull << VIRTIO_NET_F_GUEST_CSUM));
	assert_false(feat & (1ull << VIRTIO_NET_F_HOST_TSO4));
	assert_false(feat & (1ull << VIRTIO_NET_F_GUEST_TSO4));
	assert_false(feat & (1ull << VIRTIO_NET_F_CTRL_VQ));
	assert_true(f->vdev->config_size >= 8 && f->vdev->config_size <= sizeof(cfg));
	memset(&cfg, 0xee, sizeof(cfg));
	f->vdev->ops->config_read(f->vdev->dev, 0, &cfg, f->vdev->config_size);
	assert_memory_equal(cfg.mac, test_mac, 6);
	assert_int_equal(le16toh(cfg.status), VIRTIO_NET_S_LINK_UP);
	uint8_t b = 0;
	f->vdev->ops->config_read(f->vdev->dev, 5, &b, 1);
	assert_int_equal(b, test_mac[5]);
	assert_int_equal(f->log.errors, 0);
}

static void test_tx(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[100], got[NET_FRAME_MAX];
	struct vring_used_elem e;
	uint8_t *p = gptr(f, TX_GPA, 0x1000);
	uint16_t head;

	make_device(f, false);
	/* The header split over two buffers. */
	fill(frame, 1, sizeof(frame));
	memset(p, 0, HDR);
	memcpy(p + 0x100, frame, 40);
	memcpy(p + 0x200, frame + 40, 60);
	struct seg segs[3] = { { TX_GPA, 5, false }, { TX_GPA + 5, 7, false },
			       { TX_GPA + 0x100, 40, false } };
	head = drv_add(f, TXQ, segs, 3);
	drv_publish(f, TXQ);
	assert_true(drv_wait_used(f, TXQ, &e, 5000));
	assert_int_equal(e.id, head);
	assert_int_equal(peer_recv(f, got, sizeof(got), 5000), 40);
	assert_memory_equal(got, frame, 40);

	head = tx_add(f, 1, NULL, frame, sizeof(frame));
	drv_publish(f, TXQ);
	assert_true(drv_wait_used(f, TXQ, &e, 5000));
	assert_int_equal(e.id, head);
	assert_int_equal(peer_recv(f, got, sizeof(got), 5000), sizeof(frame));
	assert_memory_equal(got, frame, sizeof(frame));
	struct virtio_net_stats s = stats(f);
	assert_int_equal(s.tx_frames, 2);
	assert_int_equal(s.tx_bytes, 140);
	assert_int_equal(s.tx_dropped, 0);
	assert_true(helper_locked_get(&f->irq_lock, &f->irqs[TXQ]) >= 1);
}

/* The ones' complement sum of a UDP datagram with its pseudo-header. */
static uint16_t udp_verify(const uint8_t *ip, const uint8_t *udp, size_t len)
{
	uint32_t sum = 0;

	for (int i = 12; i < 20; i += 2)
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	sum += 17 + (uint32_t)len;
	for (size_t i = 0; i < len; i += 2)
		sum += (uint32_t)udp[i] << 8 | (i + 1 < len ? udp[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static void test_tx_csum(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[14 + 20 + 8 + 51] = { 0 }, got[NET_FRAME_MAX];
	struct virtio_net_hdr_v1 h = { 0 };
	struct vring_used_elem e;
	uint8_t *ip = frame + 14, *udp = ip + 20;
	size_t ulen = 8 + 51;
	uint32_t ps;

	make_device(f, true);
	frame[12] = 0x08;
	ip[0] = 0x45;
	ip[9] = 17;
	memcpy(ip + 12, (const uint8_t[]){ 10, 0, 2, 15, 10, 0, 2, 2 }, 8);
	udp[0] = 0x30, udp[1] = 0x39, udp[2] = 0x00, udp[3] = 0x07;
	udp[4] = 0, udp[5] = (uint8_t)ulen;
	fill(udp + 8, 5, 51);
	/* As Linux leaves it: the pseudo-header sum, not complemented, in the field. */
	ps = 0;
	for (int i = 12; i < 20; i += 2)
		ps += (uint32_t)ip[i] << 8 | ip[i + 1];
	ps += 17 + (uint32_t)ulen;
	while (ps >> 16)
		ps = (ps & 0xffff) + (ps >> 16);
	udp[6] = (uint8_t)(ps >> 8), udp[7] = (uint8_t)ps;
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.csum_start = htole16(34);
	h.csum_offset = htole16(6);
	tx_add(f, 0, &h, frame, sizeof(frame));
	drv_publish(f, TXQ);
	assert_true(drv_wait_used(f, TXQ, &e, 5000));
	assert_int_equal(peer_recv(f, got, sizeof(got), 5000), sizeof(frame));
	assert_memory_equal(got, frame, 34 + 6);	/* all but the checksum and the data ... */
	assert_memory_equal(got + 42, frame + 42, 51);	/* ... which are as sent */
	assert_int_equal(udp_verify(got + 14, got + 34, ulen), 0xffff);
	assert_false(got[40] == udp[6] && got[41] == udp[7]);

	/* The checksum's place outside the frame: dropped, counted; the next one goes. */
	h.csum_start = htole16(sizeof(frame) - 1);
	h.csum_offset = htole16(0);
	tx_add(f, 1, &h, frame, sizeof(frame));
	h.csum_start = htole16(34);
	h.csum_offset = htole16(0xffff);
	tx_add(f, 2, &h, frame, sizeof(frame));
	h.flags = 0;
	tx_add(f, 3, &h, frame, sizeof(frame));
	drv_publish(f, TXQ);
	for (int i = 0; i < 3; i++)
		assert_true(drv_wait_used(f, TXQ, &e, 5000));
	assert_int_equal(peer_recv(f, got, sizeof(got), 5000), sizeof(frame));
	assert_memory_equal(got, frame, sizeof(frame));	/* untouched without NEEDS_CSUM */
	assert_int_equal(stats(f).tx_dropped, 2);
	assert_false(needs_reset(f));
}

/* The frame in RX buffer k: header and data. */
static void check_rx(struct fixture *f, unsigned int k, uint32_t used_len, uint16_t num_buffers,
		     const uint8_t *frame, size_t len)
{
	const uint8_t *p = gptr(f, RX_GPA + k * 0x1000ull, used_len);
	const struct virtio_net_hdr_v1 *h = (const void *)p;

	assert_int_equal(used_len, HDR + len);
	assert_int_equal(h->flags, 0);
	assert_int_equal(h->gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(le16toh(h->num_buffers), num_buffers);
	assert_memory_equal(p + HDR, frame, len);
}

static void test_rx_single(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[3000];
	struct vring_used_elem e;

	make_device(f, false);
	for (unsigned int k = 0; k < 4; k++)
		rx_post(f, k, 2048);
	drv_publish(f, RXQ);
	fill(frame, 1, 1000);
	peer_send(f, frame, 1000);
	assert_true(drv_wait_used(f, RXQ, &e, 5000));
	assert_int_equal(e.id, 0);
	check_rx(f, 0, e.len, 1, frame, 1000);
	/* Too large for one chain (no MRG_RXBUF): dropped; the chain takes the next frame. */
	fill(frame, 2, sizeof(frame));
	peer_send(f, frame, sizeof(frame));
	fill(frame, 3, 500);
	peer_send(f, frame, 500);
	assert_true(drv_wait_used(f, RXQ, &e, 5000));
	assert_int_equal(e.id, 1);
	check_rx(f, 1, e.len, 1, frame, 500);
	struct virtio_net_stats s = stats(f);
	assert_int_equal(s.rx_frames, 2);
	assert_int_equal(s.rx_bytes, 1500);
	assert_int_equal(s.rx_dropped, 1);
	assert_true(helper_locked_get(&f->irq_lock, &f->irqs[RXQ]) >= 2);
}

static void test_rx_mrg(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[NET_FRAME_MAX], got[NET_FRAME_MAX + HDR];
	struct vring_used_elem e[64];
	size_t off = 0;

	make_device(f, true);
	/* Two 512-byte buffers are not enough for 2000 bytes: the frame waits ... */
	rx_post(f, 0, 512);
	rx_post(f, 1, 512);
	drv_publish(f, RXQ);
	fill(frame, 4, 2000);
	peer_send(f, frame, 2000);
	usleep(100 * 1000);
	assert_int_equal(used_idx(f, RXQ), 0);
	assert_true(stats(f).rx_no_buffers >= 1);
	/* ... until more come; then it spans four, published together. */
	for (unsigned int k = 2; k < 8; k++)
		rx_post(f, k, 512);
	drv_publish(f, RXQ);
	for (int i = 0; i < 4; i++)
		assert_true(drv_wait_used(f, RXQ, &e[i], 5000));
	assert_int_equal(used_idx(f, RXQ), 4);
	for (unsigned int i = 0; i < 4; i++) {
		assert_int_equal(e[i].id, i);
		assert_int_equal(e[i].len, i < 3 ? 512 : 2012 - 3 * 512);
		memcpy(got + off, gptr(f, RX_GPA + i * 0x1000ull, e[i].len), e[i].len);
		off += e[i].len;
	}
	assert_int_equal(le16toh(((struct virtio_net_hdr_v1 *)got)->num_buffers), 4);
	assert_memory_equal(got + HDR, frame, 2000);
	/* A small one fits the next buffer alone. */
	fill(frame, 5, 60);
	peer_send(f, frame, 60);
	assert_true(drv_wait_used(f, RXQ, &e[0], 5000));
	assert_int_equal(e[0].id, 4);
	check_rx(f, 4, e[0].len, 1, frame, 60);

	/* A maximal frame over 4 KiB buffers: 17 of them. */
	for (unsigned int k = 8; k < 40; k++)
		rx_post(f, k, 4096);
	drv_publish(f, RXQ);
	fill(frame, 6, NET_FRAME_MAX);
	peer_send(f, frame, NET_FRAME_MAX);
	off = 0;
	/* Three 512-byte buffers are left first (5, 6, 7). */
	unsigned int nb = 0;
	while (off < HDR + NET_FRAME_MAX) {
		assert_true(drv_wait_used(f, RXQ, &e[nb], 5000));
		unsigned int k = e[nb].id;
		memcpy(got + off, gptr(f, RX_GPA + k * 0x1000ull, e[nb].len), e[nb].len);
		off += e[nb].len;
		nb++;
	}
	assert_int_equal(off, HDR + NET_FRAME_MAX);
	assert_int_equal(le16toh(((struct virtio_net_hdr_v1 *)got)->num_buffers), nb);
	assert_int_equal(nb, 3 + (HDR + NET_FRAME_MAX - 3 * 512 + 4095) / 4096);
	assert_memory_equal(got + HDR, frame, NET_FRAME_MAX);
	assert_int_equal(stats(f).rx_dropped, 0);
}

static void test_rx_no_buffers(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[1400];
	struct vring_used_elem e;
	int outq = 0;

	make_device(f, false);
	/* Room for all of them on our side (unix sockets count skb overhead too). */
	int big = 4 << 20;
	if (setsockopt(f->peer, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)) < 0)
		setsockopt(f->peer, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	/* No buffers: the device stops reading, the frames wait in the socket. */
	for (unsigned int k = 0; k < 100; k++) {
		fill(frame, k, sizeof(frame));
		peer_send(f, frame, sizeof(frame));
	}
	usleep(200 * 1000);
	assert_int_equal(used_idx(f, RXQ), 0);
	assert_int_equal(ioctl(f->peer, SIOCOUTQ, &outq), 0);
	assert_true(outq > 50 * (int)sizeof(frame));	/* the device read at most ~64 KiB */
	assert_true(stats(f).rx_no_buffers >= 1);
	/* Buffers come: every frame arrives, in order. */
	for (unsigned int k = 0; k < 128; k++)
		rx_post(f, k, 2048);
	drv_publish(f, RXQ);
	for (unsigned int k = 0; k < 100; k++) {
		assert_true(drv_wait_used(f, RXQ, &e, 5000));
		assert_int_equal(e.id, k);
		fill(frame, k, sizeof(frame));
		check_rx(f, k, e.len, 1, frame, sizeof(frame));
	}
	assert_int_equal(stats(f).rx_frames, 100);
	assert_int_equal(stats(f).rx_dropped, 0);
}

static void test_hostile_tx(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[100], got[NET_FRAME_MAX];
	struct virtio_net_hdr_v1 h = { 0 };
	struct vring_used_elem e;
	int cfg0;

	make_device(f, true);
	fill(frame, 9, sizeof(frame));
	/* A header shorter than negotiated (8 of 12 bytes). */
	struct seg s8 = { TX_GPA, 8, false };
	drv_add(f, TXQ, &s8, 1);
	/* A frame above NET_FRAME_MAX. */
	struct seg big = { BIG_GPA, HDR + NET_FRAME_MAX + 1, false };
	memset(gptr(f, BIG_GPA, big.len), 0, big.len);
	drv_add(f, TXQ, &big, 1);
	/* Shorter than an Ethernet header. */
	tx_add(f, 1, NULL, frame, 13);
	/* GSO with nothing that could segment it. */
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	h.gso_size = htole16(1400);
	tx_add(f, 2, &h, frame, sizeof(frame));
	/* ... and a good one after them. */
	tx_add(f, 3, NULL, frame, sizeof(frame));
	drv_publish(f, TXQ);
	for (int i = 0; i < 5; i++)
		assert_true(drv_wait_used(f, TXQ, &e, 5000));
	assert_int_equal(peer_recv(f, got, sizeof(got), 5000), sizeof(frame));
	assert_memory_equal(got, frame, sizeof(frame));
	assert_true(peer_quiet(f, 50));
	assert_int_equal(stats(f).tx_dropped, 4);
	assert_int_equal(stats(f).tx_frames, 1);
	assert_false(needs_reset(f));

	/* A device-writable buffer in a TX chain: the driver is broken. */
	cfg0 = config_irqs(f);
	struct seg w[2] = { { TX_GPA, HDR + 60, false }, { TX_GPA + 0x1000, 64, true } };
	drv_add(f, TXQ, w, 2);
	drv_publish(f, TXQ);
	double start = helper_now_ms();
	while (!needs_reset(f) && helper_now_ms() - start < 5000)
		usleep(1000);
	assert_true(needs_reset(f));
	assert_true(config_irqs(f) > cfg0);
	assert_true(peer_quiet(f, 50));
	/* Nothing more is served ... */
	tx_add(f, 4, NULL, frame, sizeof(frame));
	drv_publish(f, TXQ);
	assert_true(peer_quiet(f, 100));
	/* ... until a reset. */
	drv_reset(f);
	drv_activate(f, features(f, true));
	tx_add(f, 5, NULL, frame, sizeof(frame));
	drv_publish(f, TXQ);
	assert_int_equal(peer_recv(f, got, sizeof(got), 5000), sizeof(frame));
	assert_int_equal(f->log.errors, 0);
}

static void wait_reset(struct fixture *f)
{
	double start = helper_now_ms();

	while (!needs_reset(f) && helper_now_ms() - start < 5000)
		usleep(1000);
	assert_true(needs_reset(f));
}

static void test_hostile_rx(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[NET_FRAME_MAX + 100];
	struct vring_used_elem e;

	make_device(f, true);
	/* From the network: above 64 KiB, skipped and counted; the next one arrives. */
	rx_post(f, 0, 4096);
	drv_publish(f, RXQ);
	fill(frame, 1, sizeof(frame));
	peer_send(f, frame, sizeof(frame));
	peer_send(f, frame, 100);
	assert_true(drv_wait_used(f, RXQ, &e, 5000));
	check_rx(f, 0, e.len, 1, frame, 100);
	assert_int_equal(stats(f).rx_dropped, 1);

	/* An RX chain with a device-readable buffer. */
	struct seg r = { RX_GPA + 0x1000, 2048, false };
	drv_add(f, RXQ, &r, 1);
	drv_publish(f, RXQ);
	peer_send(f, frame, 100);
	wait_reset(f);

	/* An RX chain shorter than the header. */
	drv_reset(f);
	drv_activate(f, features(f, true));
	rx_post(f, 2, 8);
	drv_publish(f, RXQ);
	peer_send(f, frame, 100);
	wait_reset(f);

	/* A ring whose avail index runs ahead of the queue size. */
	drv_reset(f);
	drv_activate(f, features(f, true));
	f->q[RXQ].avail_idx = QSIZE + 5;
	drv_publish(f, RXQ);
	peer_send(f, frame, 100);
	wait_reset(f);

	/* Reset: serving again. The frames sent meanwhile wait or went to broken rings. */
	drv_reset(f);
	drv_activate(f, features(f, true));
	for (unsigned int k = 0; k < 8; k++)
		rx_post(f, k, 4096);
	drv_publish(f, RXQ);
	fill(frame, 7, 300);
	peer_send(f, frame, 300);
	for (;;) {
		assert_true(drv_wait_used(f, RXQ, &e, 5000));
		const uint8_t *p = gptr(f, RX_GPA + e.id * 0x1000ull, e.len);
		if (e.len == HDR + 300 && !memcmp(p + HDR, frame, 300))
			break;
	}
	assert_int_equal(f->log.errors, 0);
}

static void test_tx_flood(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[9000], got[NET_FRAME_MAX];
	struct vring_used_elem e;
	const unsigned int nr = 200;

	f->sndbuf = 16384;
	make_device(f, true);
	fcntl(f->peer, F_SETFL, O_NONBLOCK);
	for (unsigned int k = 0; k < nr; k++) {
		fill(frame, k, sizeof(frame));
		tx_add(f, k, NULL, frame, sizeof(frame));
	}
	drv_publish(f, TXQ);
	/* Nobody reads: the device stops with a frame or two in hand, no spinning. */
	usleep(200 * 1000);
	uint16_t done = used_idx(f, TXQ);
	assert_true(done < nr);
	struct virtio_net_stats s = stats(f);
	assert_true(s.tx_blocked >= 1);
	usleep(100 * 1000);
	assert_int_equal(stats(f).tx_blocked, s.tx_blocked);	/* waits for EPOLLOUT, not polling */
	/* The network reads: everything arrives whole and in order. */
	for (unsigned int k = 0; k < nr; k++) {
		assert_int_equal(peer_recv(f, got, sizeof(got), 5000), sizeof(frame));
		fill(frame, k, sizeof(frame));
		assert_memory_equal(got, frame, sizeof(frame));
	}
	for (unsigned int k = 0; k < nr; k++)
		assert_true(drv_wait_used(f, TXQ, &e, 5000));
	assert_int_equal(stats(f).tx_frames, nr);
	assert_int_equal(stats(f).tx_dropped, 0);
}

static void test_reset_and_peer_close(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[500], got[NET_FRAME_MAX];
	struct virtio_net_config cfg;
	struct vring_used_elem e;
	int cfg0;

	make_device(f, false);
	/* A frame waiting for buffers when the driver resets. */
	fill(frame, 1, sizeof(frame));
	peer_send(f, frame, sizeof(frame));
	usleep(50 * 1000);
	drv_reset(f);
	drv_activate(f, features(f, false));
	rx_post(f, 0, 2048);
	drv_publish(f, RXQ);
	fill(frame, 2, sizeof(frame));
	peer_send(f, frame, sizeof(frame));
	assert_true(drv_wait_used(f, RXQ, &e, 5000));
	check_rx(f, 0, e.len, 1, frame, sizeof(frame));
	tx_add(f, 0, NULL, frame, sizeof(frame));
	drv_publish(f, TXQ);
	assert_int_equal(peer_recv(f, got, sizeof(got), 5000), sizeof(frame));

	/* The network goes away: link down, a config interrupt, TX chains still come back. */
	cfg0 = config_irqs(f);
	close(f->peer);
	f->peer = -1;
	double start = helper_now_ms();
	while (config_irqs(f) == cfg0 && helper_now_ms() - start < 5000)
		usleep(1000);
	assert_true(config_irqs(f) > cfg0);
	f->vdev->ops->config_read(f->vdev->dev, 0, &cfg, f->vdev->config_size);
	assert_int_equal(le16toh(cfg.status), 0);
	assert_true(drv_wait_used(f, TXQ, &e, 5000));	/* the earlier one */
	tx_add(f, 1, NULL, frame, sizeof(frame));
	drv_publish(f, TXQ);
	assert_true(drv_wait_used(f, TXQ, &e, 5000));
	assert_int_equal(stats(f).tx_dropped, 1);
	assert_false(needs_reset(f));
	assert_int_equal(f->log.errors, 0);
}

static void test_offload_backend(void **state)
{
	struct fixture *f = *state;
	static uint8_t pkt[HDR + 3000], got[HDR + NET_FRAME_MAX];
	struct virtio_net_hdr_v1 h = { 0 };
	struct vring_used_elem e;
	uint64_t feat;

	f->seqpacket = true;
	make_device(f, true);
	feat = f->vdev->ops->features(f->vdev->dev);
	assert_true(feat & (1ull << VIRTIO_NET_F_GUEST_CSUM));
	assert_true(feat & (1ull << VIRTIO_NET_F_HOST_TSO4));
	assert_true(feat & (1ull << VIRTIO_NET_F_GUEST_TSO6));
	/* The guest took everything: the backend may hand over all of it. */
	assert_int_equal(f->rx_offloads, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6);
	/* TX: a TSO frame goes to the backend with its header as the guest wrote it. */
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	h.hdr_len = htole16(54);
	h.gso_size = htole16(1448);
	h.csum_start = htole16(34);
	h.csum_offset = htole16(16);
	fill(pkt, 1, 3000);
	tx_add(f, 0, &h, pkt, 3000);
	drv_publish(f, TXQ);
	assert_int_equal(peer_recv(f, got, sizeof(got), 5000), HDR + 3000);
	assert_memory_equal(got, &h, 10);
	assert_memory_equal(got + HDR, pkt, 3000);
	assert_true(drv_wait_used(f, TXQ, &e, 5000));

	/* RX: the host's header reaches the guest; num_buffers is ours. */
	for (unsigned int k = 0; k < 4; k++)
		rx_post(f, k, 4096);
	drv_publish(f, RXQ);
	memcpy(pkt, &h, HDR);
	fill(pkt + HDR, 2, 3000);
	assert_int_equal(send(f->peer, pkt, HDR + 3000, 0), HDR + 3000);
	assert_true(drv_wait_used(f, RXQ, &e, 5000));
	const uint8_t *p = gptr(f, RX_GPA, e.len);
	assert_int_equal(e.len, HDR + 3000);
	assert_memory_equal(p, &h, 10);
	assert_int_equal(le16toh(((const struct virtio_net_hdr_v1 *)p)->num_buffers), 1);
	assert_memory_equal(p + HDR, pkt + HDR, 3000);

	/* A guest without GUEST_TSO/GUEST_CSUM: GSO frames dropped, checksums finished here. */
	drv_reset(f);
	drv_activate(f, features(f, true) & ~((1ull << VIRTIO_NET_F_GUEST_CSUM) |
					      (1ull << VIRTIO_NET_F_GUEST_TSO4) |
					      (1ull << VIRTIO_NET_F_GUEST_TSO6)));
	assert_int_equal(f->rx_offloads, 0);
	for (unsigned int k = 0; k < 4; k++)
		rx_post(f, k, 4096);
	drv_publish(f, RXQ);
	assert_int_equal(send(f->peer, pkt, HDR + 3000, 0), HDR + 3000);	/* GSO */
	h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
	h.csum_start = htole16(100);
	h.csum_offset = htole16(6);
	memcpy(pkt, &h, HDR);
	memset(pkt + HDR + 100, 0, 2900);
	pkt[HDR + 106] = 0x12, pkt[HDR + 107] = 0x34;	/* the partial sum */
	assert_int_equal(send(f->peer, pkt, HDR + 3000, 0), HDR + 3000);
	assert_true(drv_wait_used(f, RXQ, &e, 5000));
	p = gptr(f, RX_GPA + e.id * 0x1000ull, e.len);
	assert_int_equal(((const struct virtio_net_hdr_v1 *)p)->flags, 0);
	assert_int_equal(p[HDR + 106], (uint8_t)~0x12);
	assert_int_equal(p[HDR + 107], (uint8_t)~0x34);
	assert_int_equal(stats(f).rx_dropped, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_csum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_single, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_mrg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_no_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_tx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_rx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_and_peer_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offload_backend, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
