/*
 * net_hostile: after a first DHCP lease, malformed frames and chains on
 * virtio-net's queues, one per set-up. After each the device must either
 * drop it (give the chain back used, and keep serving without a reset) or
 * set DEVICE_NEEDS_RESET (then the guest resets it and sets it up again);
 * either way an ARP exchange with the router must work afterwards. Then a
 * second DHCP lease and a UDP echo server on `udp=N` for one datagram (as
 * the net guest). Lines:
 *   net-hostile: CASE: dropped, arp ok
 *   net-hostile: CASE: needs-reset config-irq=N, arp ok
 *   net-hostile: all survived       (else "net-hostile: FAIL ..." and "net-hostile: N failures")
 */
#include "netstack.h"

#define OUTSIDE_RAM	0xfffffffff000ULL
#define BIG_BUFFER	0x200000ULL		/* 70000 bytes of RAM above the guest's image */

enum outcome { NOTHING, DROPPED, NEEDS_RESET };

static int failures;

#define fail(...) do { print("net-hostile: FAIL "); printf(__VA_ARGS__); failures++; } while (0)

static struct vring_desc desc(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	return (struct vring_desc){ addr, len, flags, next };
}

/* TX chains: take descriptors (all free after a set-up), fill, publish, notify. */
static void tx_chain(const struct vring_desc *d, unsigned int n)
{
	int ids[4];

	for (unsigned int i = 0; i < n; i++)
		ids[i] = net_tx_alloc();
	for (unsigned int i = 0; i < n; i++) {
		net_txq.desc[ids[i]] = d[i];
		if (d[i].flags & VRING_DESC_F_NEXT)
			net_txq.desc[ids[i]].next = (uint16_t)ids[d[i].next];
	}
	memset(net_txbuf[ids[0]], 0, NET_HDR_LEN);
	vq_publish_on(&net_dev, &net_txq, (uint16_t)ids[0]);
	vq_kick_on(&net_dev, &net_txq, true);
}

static void c_tx_short_header(void)
{
	struct vring_desc d = desc((uint64_t)net_txbuf[0], NET_HDR_LEN - 4, 0, 0);
	tx_chain(&d, 1);
}

static void c_tx_over_64k(void)
{
	struct vring_desc d[2] = {
		desc((uint64_t)net_txbuf[0], NET_HDR_LEN, VRING_DESC_F_NEXT, 1),
		desc(BIG_BUFFER, 70000, 0, 0),
	};
	tx_chain(d, 2);
}

static void c_tx_loop(void)
{
	struct vring_desc d[2] = {
		desc((uint64_t)net_txbuf[0], NET_HDR_LEN, VRING_DESC_F_NEXT, 1),
		desc((uint64_t)net_txbuf[1], 64, VRING_DESC_F_NEXT, 0),
	};
	tx_chain(d, 2);
}

static void c_tx_outside(void)
{
	struct vring_desc d[2] = {
		desc((uint64_t)net_txbuf[0], NET_HDR_LEN, VRING_DESC_F_NEXT, 1),
		desc(OUTSIDE_RAM, 64, 0, 0),
	};
	tx_chain(d, 2);
}

static void c_tx_writable(void)
{
	struct vring_desc d[2] = {
		desc((uint64_t)net_txbuf[0], NET_HDR_LEN, VRING_DESC_F_NEXT, 1),
		desc((uint64_t)net_txbuf[1], 64, VRING_DESC_F_WRITE, 0),
	};
	tx_chain(d, 2);
}

/* RX: the only buffer posted is the bad one; an ARP request makes a frame come. */
static void rx_only(struct vring_desc d)
{
	net_rxq.desc[0] = d;
	vq_publish_on(&net_dev, &net_rxq, 0);
	vq_kick_on(&net_dev, &net_rxq, true);
	net_arp_request(net_router);
}

static void c_rx_outside(void) { rx_only(desc(OUTSIDE_RAM, NET_BUF, VRING_DESC_F_WRITE, 0)); }
static void c_rx_short(void) { rx_only(desc((uint64_t)net_rxbuf[0], 4, VRING_DESC_F_WRITE, 0)); }
static void c_rx_readable(void) { rx_only(desc((uint64_t)net_rxbuf[0], NET_BUF, 0, 0)); }

struct hostile_case {
	const char *name;
	void (*craft)(void);
	bool rx;				/* on the RX queue (set up with no buffers) */
};

static const struct hostile_case cases[] = {
	{ "tx-header-short", c_tx_short_header, false },
	{ "tx-frame-over-64k", c_tx_over_64k, false },
	{ "tx-descriptor-loop", c_tx_loop, false },
	{ "tx-buffer-outside-ram", c_tx_outside, false },
	{ "tx-writable-descriptor", c_tx_writable, false },
	{ "rx-buffer-outside-ram", c_rx_outside, true },
	{ "rx-buffer-shorter-than-header", c_rx_short, true },
	{ "rx-buffer-readable", c_rx_readable, true },
};

/* Up to 2 s for DEVICE_NEEDS_RESET or for q's used index to move past `from`. */
static enum outcome wait_outcome(struct vq *q, uint16_t from)
{
	uint32_t start = net_ticks;

	while (net_ticks - start < 2 * NET_HZ) {
		if (vdev_status(&net_dev) & VIRTIO_CONFIG_S_NEEDS_RESET)
			return NEEDS_RESET;
		if (__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) != from)
			return vdev_status(&net_dev) & VIRTIO_CONFIG_S_NEEDS_RESET ? NEEDS_RESET : DROPPED;
		net_wait();
	}
	return NOTHING;
}

static void run_case(const struct hostile_case *c)
{
	volatile uint32_t *cfg_irqs = &irq_count[0];

	if (!net_setup(true, c->rx ? 0 : -1, false)) {
		fail("%s: set-up failed\n", c->name);
		return;
	}
	uint32_t before = *cfg_irqs;
	struct vq *q = c->rx ? &net_rxq : &net_txq;
	uint16_t from = q->last_used;
	c->craft();
	enum outcome o = wait_outcome(q, from);
	if (o == NOTHING) {
		fail("%s: neither used nor DEVICE_NEEDS_RESET within 2 s (status 0x%x)\n", c->name,
		     vdev_status(&net_dev));
		return;
	}
	if (o == NEEDS_RESET) {
		/* its config interrupt may follow the status a little */
		uint32_t start = net_ticks;
		while (*cfg_irqs == before && net_ticks - start < NET_HZ / 2)
			net_wait();
		printf("net-hostile: %s: needs-reset config-irq=%u", c->name, *cfg_irqs - before);
		if (!vdev_reset(&net_dev) || !net_setup(true, -1, false)) {
			print("\n");
			fail("%s: set-up after the reset failed\n", c->name);
			return;
		}
	} else {
		printf("net-hostile: %s: dropped", c->name);
		if (c->rx)				/* the bad buffer came back: now real ones */
			for (uint16_t i = 1; i < net_rxq.size; i++)
				net_rx_post(i);
		net_poll();				/* takes the bad chain back (and reposts buffer 0) */
	}
	uint8_t mac[6];
	if (net_arp(net_router, mac, 3)) {
		print(", arp ok\n");
	} else {
		print("\n");
		fail("%s: no ARP reply afterwards (status 0x%x)\n", c->name, vdev_status(&net_dev));
	}
}

void guest_main(void)
{
	unsigned int udp = cmdline_uint("udp", 0), idle = cmdline_uint("idle", 15);
	uint8_t mac[6];

	if (!net_find() || !net_setup(true, -1, true) || !net_dhcp() || !net_arp(net_router, mac, 3)) {
		fail("no working network to start from\n");
		goto out;
	}
	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);

	/* The same device, reset once more, takes a new lease and serves the host. */
	if (!vdev_reset(&net_dev) || !net_setup(true, -1, false) || !net_dhcp()) {
		fail("no DHCP lease after the hostile chains\n");
		goto out;
	}
	printf("net: ready udp=%u tcp=0 count=1\n", udp);
	if (udp && !net_serve((uint16_t)udp, 0, 1, idle))
		failures++;
	printf("net: done rx=%u tx=%u bad=%u arp-answered=%u udp-echoed=%u tcp-closed=%u\n",
	       net_count.rx_frames, net_count.tx_frames, net_count.rx_bad, net_count.arp_answered,
	       net_count.udp_echoed, net_count.tcp_conns);
	vdev_reset(&net_dev);
out:
	if (failures)
		printf("net-hostile: %d failures\n", failures);
	else
		print("net-hostile: all survived\n");
}
