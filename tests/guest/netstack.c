/*
 * A minimal IPv4 stack over virtio-net (see netstack.h). Ring 0 is emulated
 * on the build machines: frames are handled where they lie, checksums cover
 * only what is sent or received, and every wait ends at a deadline.
 */
#include "netstack.h"

#define TIMER_VECTOR		0x60
#define X2APIC_LVT_TIMER	0x832
#define X2APIC_TMICT		0x838
#define X2APIC_TDCR		0x83e
#define APIC_TIMER_PERIODIC	(1u << 17)
#define APIC_TIMER_HZ		1000000000u	/* KVM's APIC bus: 1 ns a cycle */

#define ETH_HLEN	14
#define ETH_ZLEN	60
#define ETH_P_IP	0x0800
#define ETH_P_ARP	0x0806
#define IP_HLEN		20
#define IPPROTO_TCP	6
#define IPPROTO_UDP	17
#define L4_OFF		(ETH_HLEN + IP_HLEN)	/* where a sent frame's UDP/TCP header goes */

#define TCP_FIN		0x01
#define TCP_SYN		0x02
#define TCP_RST		0x04
#define TCP_PSH		0x08
#define TCP_ACK		0x10
#define TCP_MSS		1460
#define TCP_QLEN	8192			/* echoed bytes not yet acknowledged */
#define TCP_RTO		NET_HZ			/* 1 s */
#define TCP_RETRIES	8

#define DHCP_DISCOVER	1
#define DHCP_OFFER	2
#define DHCP_REQUEST	3
#define DHCP_ACK	5
#define DHCP_NAK	6
#define BOOTP_LEN	300			/* the minimum BOOTP message (RFC 951) */

struct vdev net_dev;
struct vq net_rxq, net_txq;
uint8_t net_rxbuf[NET_QSIZE][NET_BUF] __attribute__((aligned(4096)));
uint8_t net_txbuf[NET_QSIZE][NET_BUF] __attribute__((aligned(4096)));
static uint8_t rxq_mem[4096] __attribute__((aligned(4096)));
static uint8_t txq_mem[4096] __attribute__((aligned(4096)));
uint8_t net_mac[6];
uint32_t net_ip, net_router, net_dns, net_mask;
volatile uint32_t net_ticks;
struct net_counters net_count;

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static bool mrg_rxbuf;
static uint32_t last_rx;			/* tick of the last frame received */
static uint16_t tx_free[NET_QSIZE];
static bool tx_busy[NET_QSIZE];
static unsigned int tx_nfree;
static uint16_t ip_ident;

/* ---- bytes ---- */

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }
/* An address as it lies in memory (network order), no conversion. */
static inline uint32_t ld_ip(const uint8_t *p) { uint32_t v; __builtin_memcpy(&v, p, 4); return v; }
static inline void st_ip(uint8_t *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }
static inline uint16_t swab16(uint16_t v) { return (uint16_t)(v << 8 | v >> 8); }
static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }

/*
 * The Internet checksum over little-endian 16-bit loads: the ones'
 * complement sum does not care about byte order (RFC 1071) as long as the
 * result is stored the same way, with a native store.
 */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (; n > 1; p += 2, n -= 2) {
		uint16_t w;
		__builtin_memcpy(&w, p, 2);
		sum += w;
	}
	if (n)
		sum += *p;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The UDP/TCP checksum of len bytes at l4 under the IPv4 header ip (0 when it verifies). */
static uint16_t l4_csum(const uint8_t *ip, const uint8_t *l4, size_t len, uint8_t proto)
{
	uint32_t sum = csum_add(0, ip + 12, 8);

	sum += swab16(proto) + swab16((uint16_t)len);
	return csum_fold(csum_add(sum, l4, len));
}

void print_ip(uint32_t ip)
{
	printf("%u.%u.%u.%u", ip & 0xff, ip >> 8 & 0xff, ip >> 16 & 0xff, ip >> 24);
}

void print_mac(const uint8_t mac[6])
{
	printf("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

unsigned int cmdline_uint(const char *key, unsigned int def)
{
	size_t len;
	const char *v = cmdline_get(key, &len);
	unsigned int n = 0;

	if (!v || !len)
		return def;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9' || n > 100000000)
			return def;
		n = n * 10 + (unsigned int)(v[i] - '0');
	}
	return n;
}

/* ---- the timer ---- */

__attribute__((interrupt)) static void timer_isr(struct interrupt_frame *f)
{
	(void)f;
	net_ticks++;
	x2apic_eoi();
}

static bool timer_start(void)
{
	idt_set_gate(TIMER_VECTOR, timer_isr);
	wrmsr(X2APIC_TDCR, 0xb);		/* divide by 1 */
	wrmsr(X2APIC_LVT_TIMER, APIC_TIMER_PERIODIC | TIMER_VECTOR);
	wrmsr(X2APIC_TMICT, APIC_TIMER_HZ / NET_HZ);
	/* The first tick within ~1 s of emulated spinning, or no waits can end. */
	__asm__ volatile("sti");
	for (int i = 0; i < 1000000 && !net_ticks; i++)
		cpu_relax();
	__asm__ volatile("cli");
	if (!net_ticks) {
		print("net: FAIL the x2APIC timer does not tick\n");
		return false;
	}
	return true;
}

/* ---- the device ---- */

bool net_find(void)
{
	struct pci_fn fns[PCI_MAX_FNS];
	unsigned int mismatches, n;

	if (!irq_init()) {
		print("net: FAIL no x2APIC\n");
		return false;
	}
	if (!timer_start() || !pci_ecam_init())
		return false;
	n = pci_scan(fns, PCI_MAX_FNS, &mismatches);
	for (unsigned int i = 0; i < n; i++) {
		if (fns[i].vendor != PCI_VENDOR_VIRTIO || fns[i].device != PCI_DEVICE_VIRTIO_BASE + VIRTIO_ID_NET)
			continue;
		if (fns[i].class != 0x020000)
			printf("net: FAIL virtio-net class %06x, not 020000 (Ethernet)\n", fns[i].class);
		return vdev_probe(&net_dev, &fns[i], 0) && vdev_map(&net_dev, -1, 0);
	}
	print("net: FAIL no virtio-net device\n");
	return false;
}

void net_rx_post(uint16_t id)
{
	net_rxq.desc[id] = (struct vring_desc){ (uint64_t)net_rxbuf[id], NET_BUF, VRING_DESC_F_WRITE, 0 };
	vq_publish_on(&net_dev, &net_rxq, id);
}

bool net_setup(bool mrg, int rx_bufs, bool verbose)
{
	uint64_t want = 1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_STATUS |
			(mrg ? 1ULL << VIRTIO_NET_F_MRG_RXBUF : 0);

	if (!vdev_negotiate(&net_dev, want) ||
	    !vdev_queue(&net_dev, &net_rxq, 0, rxq_mem, 1, 0) ||
	    !vdev_queue(&net_dev, &net_txq, 1, txq_mem, 1, 0))
		return false;
	mrg_rxbuf = net_dev.features & (1ULL << VIRTIO_NET_F_MRG_RXBUF);
	unsigned int nrx = rx_bufs < 0 || rx_bufs > net_rxq.size ? net_rxq.size : (unsigned int)rx_bufs;
	for (uint16_t i = 0; i < nrx; i++)
		net_rx_post(i);
	tx_nfree = 0;
	for (uint16_t i = 0; i < net_txq.size; i++) {
		tx_free[tx_nfree++] = (uint16_t)(net_txq.size - 1 - i);
		tx_busy[i] = false;
	}
	if (!vdev_driver_ok(&net_dev))
		return false;
	vq_kick_on(&net_dev, &net_rxq, false);

	bool have_mac = net_dev.features & (1ULL << VIRTIO_NET_F_MAC);
	for (unsigned int i = 0; i < 6; i++)
		net_mac[i] = have_mac ? mmio_read8(vdev_cfg(&net_dev, i)) : (uint8_t)(i ? 0x10 * i : 0x52);
	bool have_status = net_dev.features & (1ULL << VIRTIO_NET_F_STATUS);
	uint16_t status = have_status ? mmio_read16(vdev_cfg(&net_dev, 6)) : VIRTIO_NET_S_LINK_UP;
	if (verbose) {
		printf("net: virtio-net 00:%02x.%u mac ", net_dev.pci.dev, net_dev.pci.fn);
		print_mac(net_mac);
		printf(" link %s offered 0x%lx negotiated 0x%lx rx %u tx %u\n",
		       status & VIRTIO_NET_S_LINK_UP ? "up" : "down", net_dev.offered,
		       net_dev.features, net_rxq.size, net_txq.size);
	}
	if (!have_mac)
		print("net: FAIL VIRTIO_NET_F_MAC not offered\n");
	if (!(status & VIRTIO_NET_S_LINK_UP))
		print("net: FAIL link down\n");
	return have_mac && status & VIRTIO_NET_S_LINK_UP;
}

/* Take back transmitted chains (each descriptor of a chain, once). */
static void tx_reclaim(void)
{
	struct vq *q = &net_txq;

	while (__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) != q->last_used) {
		uint32_t id = q->used->ring[q->last_used & (q->size - 1)].id;
		q->last_used++;
		for (unsigned int n = 0; id < q->size && tx_busy[id] && n < q->size; n++) {
			tx_busy[id] = false;
			tx_free[tx_nfree++] = (uint16_t)id;
			if (!(q->desc[id].flags & VRING_DESC_F_NEXT))
				break;
			id = q->desc[id].next;
		}
	}
}

/* A free TX descriptor (waiting up to 1 s for one); -1 if none came back. */
int net_tx_alloc(void)
{
	uint32_t start = net_ticks;

	tx_reclaim();
	while (!tx_nfree) {
		if (net_ticks - start > NET_HZ) {
			net_count.tx_full++;
			return -1;
		}
		net_wait();
		tx_reclaim();
	}
	int id = tx_free[--tx_nfree];
	tx_busy[id] = true;
	return id;
}

static uint8_t *tx_frame(int id) { return net_txbuf[id] + NET_HDR_LEN; }

/* Send the frame of len bytes built in tx_frame(id), padded to the Ethernet minimum. */
static void tx_send(int id, size_t len)
{
	memset(net_txbuf[id], 0, NET_HDR_LEN);	/* no checksum or GSO asked of the device */
	if (len < ETH_ZLEN) {
		memset(tx_frame(id) + len, 0, ETH_ZLEN - len);
		len = ETH_ZLEN;
	}
	net_txq.desc[id] = (struct vring_desc){ (uint64_t)net_txbuf[id], (uint32_t)(NET_HDR_LEN + len), 0, 0 };
	vq_publish_on(&net_dev, &net_txq, (uint16_t)id);
	vq_kick_on(&net_dev, &net_txq, false);
	net_count.tx_frames++;
}

static void eth_header(uint8_t *f, const uint8_t dst[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, net_mac, 6);
	put16(f + 12, type);
}

/* Ethernet and IPv4 headers in front of the l4len bytes at f + L4_OFF; the frame's length. */
static size_t ip_header(uint8_t *f, const uint8_t dmac[6], uint32_t src, uint32_t dst, uint8_t proto,
			size_t l4len)
{
	uint8_t *ip = f + ETH_HLEN;

	eth_header(f, dmac, ETH_P_IP);
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(IP_HLEN + l4len));
	put16(ip + 4, ip_ident++);
	put16(ip + 6, 0x4000);			/* DF */
	ip[8] = 64;
	ip[9] = proto;
	ip[10] = ip[11] = 0;
	st_ip(ip + 12, src);
	st_ip(ip + 16, dst);
	uint16_t c = csum_fold(csum_add(0, ip, IP_HLEN));
	__builtin_memcpy(ip + 10, &c, 2);
	return L4_OFF + l4len;
}

/* ---- ARP ---- */

static uint32_t arp_want;			/* the address net_arp waits for */
static bool arp_have;
static uint8_t arp_mac[6];

static void arp_send(uint16_t op, const uint8_t dmac[6], const uint8_t tha[6], uint32_t tpa)
{
	int id = net_tx_alloc();
	if (id < 0)
		return;
	uint8_t *f = tx_frame(id), *a = f + ETH_HLEN;
	eth_header(f, dmac, ETH_P_ARP);
	put16(a, 1);
	put16(a + 2, ETH_P_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, net_mac, 6);
	st_ip(a + 14, net_ip);
	memcpy(a + 18, tha, 6);
	st_ip(a + 24, tpa);
	tx_send(id, ETH_HLEN + 28);
}

void net_arp_request(uint32_t ip)
{
	static const uint8_t zero[6];

	arp_send(1, bcast_mac, zero, ip);
}

static void arp_input(const uint8_t *f, size_t len)
{
	const uint8_t *a = f + ETH_HLEN;

	if (len < ETH_HLEN + 28) {
		net_count.rx_bad++;
		return;
	}
	if (get16(a) != 1 || get16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4)
		return;
	uint16_t op = get16(a + 6);
	uint32_t spa = ld_ip(a + 14), tpa = ld_ip(a + 24);
	if (arp_want && spa == arp_want) {
		memcpy(arp_mac, a + 8, 6);
		arp_have = true;
	}
	if (op == 1 && net_ip && tpa == net_ip) {
		arp_send(2, a + 8, a + 8, spa);
		net_count.arp_answered++;
	}
}

/* ---- DHCP ---- */

static struct {
	bool active;
	uint32_t xid;
	int got;				/* the last message type taken in */
	uint32_t yiaddr, server, router, dns, mask, lease;
} dhcp;

static void dhcp_send(uint8_t type)
{
	int id = net_tx_alloc();
	if (id < 0)
		return;
	uint8_t *f = tx_frame(id), *u = f + L4_OFF, *b = u + 8;
	memset(b, 0, BOOTP_LEN);
	b[0] = 1;				/* BOOTREQUEST */
	b[1] = 1;				/* Ethernet */
	b[2] = 6;
	put32(b + 4, dhcp.xid);
	put16(b + 10, 0x8000);			/* replies broadcast: we have no address yet */
	memcpy(b + 28, net_mac, 6);
	put32(b + 236, 0x63825363);		/* the magic cookie */
	uint8_t *o = b + 240;
	*o++ = 53; *o++ = 1; *o++ = type;
	if (type == DHCP_REQUEST) {
		*o++ = 50; *o++ = 4; st_ip(o, dhcp.yiaddr); o += 4;
		*o++ = 54; *o++ = 4; st_ip(o, dhcp.server); o += 4;
	}
	*o++ = 55; *o++ = 3; *o++ = 1; *o++ = 3; *o++ = 6;	/* mask, router, DNS */
	*o = 255;
	put16(u, 68);
	put16(u + 2, 67);
	put16(u + 4, 8 + BOOTP_LEN);
	put16(u + 6, 0);
	size_t len = ip_header(f, bcast_mac, 0, 0xffffffffu, IPPROTO_UDP, 8 + BOOTP_LEN);
	uint16_t c = l4_csum(f + ETH_HLEN, u, 8 + BOOTP_LEN, IPPROTO_UDP);
	c = c ? c : 0xffff;
	__builtin_memcpy(u + 6, &c, 2);
	tx_send(id, len);
}

static void dhcp_input(const uint8_t *b, size_t n)
{
	if (n < 240 || b[0] != 2 || get32(b + 4) != dhcp.xid || memcmp(b + 28, net_mac, 6) ||
	    get32(b + 236) != 0x63825363)
		return;
	int type = 0;
	uint32_t server = 0, router = 0, dns = 0, mask = 0, lease = 0;
	for (size_t i = 240; i < n && b[i] != 255;) {
		if (b[i] == 0) {
			i++;
			continue;
		}
		if (i + 2 > n || i + 2 + b[i + 1] > n)
			break;
		const uint8_t *v = b + i + 2;
		uint8_t len = b[i + 1];
		if (b[i] == 53 && len >= 1)
			type = v[0];
		else if (b[i] == 54 && len >= 4)
			server = ld_ip(v);
		else if (b[i] == 3 && len >= 4)
			router = ld_ip(v);
		else if (b[i] == 6 && len >= 4)
			dns = ld_ip(v);
		else if (b[i] == 1 && len >= 4)
			mask = ld_ip(v);
		else if (b[i] == 51 && len >= 4)
			lease = get32(v);
		i += 2u + len;
	}
	if (type == DHCP_OFFER && dhcp.got == 0) {
		dhcp.yiaddr = ld_ip(b + 16);
		dhcp.server = server;
		dhcp.got = DHCP_OFFER;
	} else if ((type == DHCP_ACK || type == DHCP_NAK) && dhcp.got == DHCP_REQUEST) {
		dhcp.got = type;
		dhcp.yiaddr = ld_ip(b + 16);
		dhcp.router = router;
		dhcp.dns = dns;
		dhcp.mask = mask;
		dhcp.lease = lease;
	}
}

/* Send `type` every second until dhcp.got leaves `from`, at most 4 times. */
static bool dhcp_exchange(uint8_t type, int from)
{
	for (int tries = 0; tries < 4; tries++) {
		uint32_t start = net_ticks;
		dhcp_send(type);
		while (net_ticks - start < NET_HZ) {
			net_poll();
			if (dhcp.got != from)
				return true;
			net_wait();
		}
	}
	return false;
}

bool net_dhcp(void)
{
	memset(&dhcp, 0, sizeof(dhcp));
	dhcp.xid = 0x6e657400u ^ net_ticks ^ (uint32_t)net_mac[5] << 8;
	dhcp.active = true;
	net_ip = 0;
	bool ok = false;
	if (!dhcp_exchange(DHCP_DISCOVER, 0)) {
		print("net: FAIL dhcp: no offer\n");
		goto out;
	}
	print("net: dhcp offer ");
	print_ip(dhcp.yiaddr);
	print(" from ");
	print_ip(dhcp.server);
	print("\n");
	dhcp.got = DHCP_REQUEST;
	if (!dhcp_exchange(DHCP_REQUEST, DHCP_REQUEST) || dhcp.got != DHCP_ACK) {
		print(dhcp.got == DHCP_NAK ? "net: FAIL dhcp: NAK\n" : "net: FAIL dhcp: no ack\n");
		goto out;
	}
	net_ip = dhcp.yiaddr;
	net_router = dhcp.router;
	net_dns = dhcp.dns;
	net_mask = dhcp.mask;
	print("net: dhcp lease ");
	print_ip(net_ip);
	print(" router ");
	print_ip(net_router);
	print(" dns ");
	print_ip(net_dns);
	print("\n");
	print("net: dhcp mask ");
	print_ip(net_mask);
	printf(" lease %u s\n", dhcp.lease);
	ok = true;
out:
	dhcp.active = false;
	return ok;
}

bool net_arp(uint32_t ip, uint8_t mac[6], unsigned int secs)
{
	uint32_t start = net_ticks, asked = start - NET_HZ;

	arp_want = ip;
	arp_have = false;
	while (!arp_have && net_ticks - start < secs * NET_HZ) {
		if (net_ticks - asked >= NET_HZ / 2) {
			net_arp_request(ip);
			asked = net_ticks;
		}
		net_poll();
		if (!arp_have)
			net_wait();
	}
	arp_want = 0;
	if (arp_have)
		memcpy(mac, arp_mac, 6);
	return arp_have;
}

/* ---- UDP ---- */

static uint16_t serve_udp, serve_tcp;

static void udp_echo(const uint8_t *f, const uint8_t *ip, const uint8_t *u, size_t ulen)
{
	int id = net_tx_alloc();
	if (id < 0)
		return;
	uint32_t src = ld_ip(ip + 12);
	uint16_t sport = get16(u);
	uint8_t *o = tx_frame(id), *ou = o + L4_OFF;
	put16(ou, serve_udp);
	put16(ou + 2, sport);
	put16(ou + 4, (uint16_t)ulen);
	put16(ou + 6, 0);
	memcpy(ou + 8, u + 8, ulen - 8);
	size_t len = ip_header(o, f + 6, net_ip, src, IPPROTO_UDP, ulen);
	uint16_t c = l4_csum(o + ETH_HLEN, ou, ulen, IPPROTO_UDP);
	c = c ? c : 0xffff;
	__builtin_memcpy(ou + 6, &c, 2);
	tx_send(id, len);
	net_count.udp_echoed++;
	printf("net: udp echoed %u bytes to ", (unsigned int)(ulen - 8));
	print_ip(src);
	printf(":%u\n", sport);
}

static void udp_input(const uint8_t *f, const uint8_t *ip, const uint8_t *u, size_t len)
{
	uint16_t ulen = len >= 8 ? get16(u + 4) : 0;

	if (ulen < 8 || ulen > len || ((u[6] | u[7]) && l4_csum(ip, u, ulen, IPPROTO_UDP))) {
		net_count.rx_bad++;
		return;
	}
	uint16_t dport = get16(u + 2);
	if (dhcp.active && dport == 68 && get16(u) == 67)
		dhcp_input(u + 8, ulen - 8u);
	else if (serve_udp && dport == serve_udp && net_ip && ld_ip(ip + 16) == net_ip)
		udp_echo(f, ip, u, ulen);
}

/* ---- TCP: one connection at a time, echoing ---- */

enum { TCP_LISTEN, TCP_SYN_RCVD, TCP_ESTABLISHED, TCP_LAST_ACK };

static struct {
	int state;
	uint32_t peer_ip;
	uint16_t peer_port;
	uint8_t peer_mac[6];
	uint32_t iss, snd_una, snd_nxt, rcv_nxt;
	uint16_t mss;
	bool fin_sent;
	uint32_t echoed, last_tx, retries;
	uint32_t q_seq, qlen;			/* unacknowledged echo bytes from q_seq on */
	uint32_t wnd;				/* the window we advertised last */
	uint8_t q[TCP_QLEN];
} tcb;

struct tcp_addr {
	const uint8_t *mac;
	uint32_t ip;
	uint16_t port, local_port;
};

static void tcp_send(const struct tcp_addr *to, uint32_t seq, uint32_t ack, uint8_t flags,
		     const uint8_t *data, size_t len)
{
	int id = net_tx_alloc();
	if (id < 0)
		return;
	uint8_t *f = tx_frame(id), *t = f + L4_OFF;
	size_t hl = flags & TCP_SYN ? 24 : 20;
	uint32_t room = TCP_QLEN - tcb.qlen;

	put16(t, to->local_port);
	put16(t + 2, to->port);
	put32(t + 4, seq);
	put32(t + 8, flags & TCP_ACK ? ack : 0);
	t[12] = (uint8_t)(hl / 4 << 4);
	t[13] = flags;
	put16(t + 14, (uint16_t)(room > 65535 ? 65535 : room));
	put32(t + 16, 0);			/* checksum, urgent pointer */
	if (flags & TCP_SYN) {
		t[20] = 2;			/* MSS */
		t[21] = 4;
		put16(t + 22, TCP_MSS);
	}
	memcpy(t + hl, data, len);
	size_t flen = ip_header(f, to->mac, net_ip, to->ip, IPPROTO_TCP, hl + len);
	uint16_t c = l4_csum(f + ETH_HLEN, t, hl + len, IPPROTO_TCP);
	__builtin_memcpy(t + 16, &c, 2);
	tx_send(id, flen);
}

static void tcb_send(uint32_t seq, uint8_t flags, const uint8_t *data, size_t len)
{
	struct tcp_addr to = { tcb.peer_mac, tcb.peer_ip, tcb.peer_port, serve_tcp };

	tcp_send(&to, seq, tcb.rcv_nxt, flags, data, len);
	tcb.wnd = TCP_QLEN - tcb.qlen;
}

/* Echo the last n bytes of the queue, in segments of at most the peer's MSS. */
static void tcb_echo(uint32_t n)
{
	const uint8_t *p = tcb.q + tcb.qlen - n;

	while (n) {
		uint32_t len = n < tcb.mss ? n : tcb.mss;
		tcb_send(tcb.snd_nxt, TCP_ACK | TCP_PSH, p, len);
		tcb.snd_nxt += len;
		p += len;
		n -= len;
	}
	tcb.last_tx = net_ticks;
}

static void tcb_fin(void)
{
	tcb_send(tcb.snd_nxt - tcb.fin_sent, TCP_FIN | TCP_ACK, NULL, 0);
	if (!tcb.fin_sent)
		tcb.snd_nxt++;
	tcb.fin_sent = true;
	tcb.last_tx = net_ticks;
}

static void tcp_refuse(const uint8_t *f, const uint8_t *ip, const uint8_t *t, uint32_t seglen)
{
	struct tcp_addr to = { f + 6, ld_ip(ip + 12), get16(t), get16(t + 2) };

	if (t[13] & TCP_ACK)
		tcp_send(&to, get32(t + 8), 0, TCP_RST, NULL, 0);
	else
		tcp_send(&to, 0, get32(t + 4) + seglen, TCP_RST | TCP_ACK, NULL, 0);
}

static void tcp_accept(const uint8_t *f, const uint8_t *ip, const uint8_t *t, size_t hl)
{
	memset(&tcb, 0, sizeof(tcb) - sizeof(tcb.q));
	memcpy(tcb.peer_mac, f + 6, 6);
	tcb.peer_ip = ld_ip(ip + 12);
	tcb.peer_port = get16(t);
	tcb.rcv_nxt = get32(t + 4) + 1;
	tcb.iss = 0x10000000u * (net_count.tcp_conns + 1) + net_ticks;
	tcb.snd_una = tcb.iss;
	tcb.snd_nxt = tcb.iss + 1;
	tcb.q_seq = tcb.iss + 1;
	tcb.mss = 536;				/* RFC 9293's default without the option */
	for (size_t i = 20; i < hl;) {
		if (t[i] == 0)
			break;
		if (t[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= hl || t[i + 1] < 2 || i + t[i + 1] > hl)
			break;
		if (t[i] == 2 && t[i + 1] == 4)
			tcb.mss = get16(t + i + 2);
		i += t[i + 1];
	}
	if (tcb.mss > TCP_MSS || tcb.mss < 64)
		tcb.mss = TCP_MSS;
	tcb.state = TCP_SYN_RCVD;
	tcb_send(tcb.iss, TCP_SYN | TCP_ACK, NULL, 0);
	tcb.last_tx = net_ticks;
	print("net: tcp connection from ");
	print_ip(tcb.peer_ip);
	printf(":%u mss %u\n", tcb.peer_port, tcb.mss);
}

static void tcp_input(const uint8_t *f, const uint8_t *ip, const uint8_t *t, size_t len)
{
	size_t hl = len >= 20 ? (size_t)(t[12] >> 4) * 4 : 0;

	if (hl < 20 || hl > len || l4_csum(ip, t, len, IPPROTO_TCP)) {
		net_count.rx_bad++;
		return;
	}
	uint8_t flags = t[13];
	uint32_t seq = get32(t + 4), ack = get32(t + 8);
	const uint8_t *data = t + hl;
	uint32_t dlen = (uint32_t)(len - hl);
	bool ours = tcb.state != TCP_LISTEN && ld_ip(ip + 12) == tcb.peer_ip && get16(t) == tcb.peer_port;

	if (!serve_tcp || get16(t + 2) != serve_tcp || !ours) {
		if (flags & TCP_RST)
			return;
		if (serve_tcp && get16(t + 2) == serve_tcp && tcb.state == TCP_LISTEN &&
		    (flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
			tcp_accept(f, ip, t, hl);
		else
			tcp_refuse(f, ip, t, dlen + !!(flags & TCP_SYN) + !!(flags & TCP_FIN));
		return;
	}
	if (flags & TCP_RST) {
		printf("net: FAIL tcp connection reset by the peer after %u bytes\n", tcb.echoed);
		tcb.state = TCP_LISTEN;
		return;
	}
	if (flags & TCP_SYN) {
		if (tcb.state == TCP_SYN_RCVD && seq + 1 == tcb.rcv_nxt)
			tcb_send(tcb.iss, TCP_SYN | TCP_ACK, NULL, 0);	/* our SYN-ACK was lost */
		return;
	}
	if (!(flags & TCP_ACK))
		return;
	if (seq_lt(tcb.snd_una, ack) && seq_le(ack, tcb.snd_nxt)) {
		if (seq_lt(tcb.q_seq, ack)) {
			uint32_t n = ack - tcb.q_seq;
			n = n < tcb.qlen ? n : tcb.qlen;
			memcpy(tcb.q, tcb.q + n, tcb.qlen - n);	/* forward copy: rep movsb */
			tcb.qlen -= n;
			tcb.q_seq += n;
		}
		tcb.snd_una = ack;
		tcb.retries = 0;
		tcb.last_tx = net_ticks;
		if (tcb.state == TCP_SYN_RCVD)
			tcb.state = TCP_ESTABLISHED;
		if (tcb.state == TCP_LAST_ACK && ack == tcb.snd_nxt) {
			net_count.tcp_conns++;
			printf("net: tcp connection closed, echoed %u bytes\n", tcb.echoed);
			tcb.state = TCP_LISTEN;
			return;
		}
	}
	if (tcb.state == TCP_SYN_RCVD)
		return;
	bool fin = flags & TCP_FIN;
	/*
	 * A window update once the peer's ACKs have opened ours by an MSS: a
	 * peer that saw it shut (passt) waits for one instead of probing.
	 */
	if (!dlen && !fin && tcb.wnd < tcb.mss && TCP_QLEN - tcb.qlen >= tcb.mss)
		tcb_send(tcb.snd_nxt, TCP_ACK, NULL, 0);
	if (!dlen && !fin)
		return;
	if (seq_lt(tcb.rcv_nxt, seq)) {
		tcb_send(tcb.snd_nxt, TCP_ACK, NULL, 0);	/* a gap: say what we expect */
		return;
	}
	uint32_t skip = tcb.rcv_nxt - seq;
	if (skip > dlen) {				/* all seen, FIN included */
		if (tcb.fin_sent)
			tcb_fin();
		else
			tcb_send(tcb.snd_nxt, TCP_ACK, NULL, 0);
		return;
	}
	data += skip;
	dlen -= skip;
	if (tcb.state != TCP_ESTABLISHED)
		dlen = 0;
	if (dlen > TCP_QLEN - tcb.qlen) {		/* beyond our window: take what fits */
		dlen = TCP_QLEN - tcb.qlen;
		fin = false;
	}
	memcpy(tcb.q + tcb.qlen, data, dlen);
	tcb.qlen += dlen;
	tcb.rcv_nxt += dlen;
	tcb.echoed += dlen;
	if (dlen)
		tcb_echo(dlen);				/* acknowledges it too */
	if (fin && tcb.state == TCP_ESTABLISHED) {
		tcb.rcv_nxt++;
		tcb.state = TCP_LAST_ACK;
		tcb_fin();
	} else if (!dlen) {
		tcb_send(tcb.snd_nxt, TCP_ACK, NULL, 0);
	}
}

/* Retransmit what the peer has not acknowledged after TCP_RTO. */
static void tcp_timer(void)
{
	if (tcb.state == TCP_LISTEN || tcb.snd_una == tcb.snd_nxt || net_ticks - tcb.last_tx < TCP_RTO)
		return;
	if (++tcb.retries > TCP_RETRIES) {
		printf("net: FAIL tcp: no acknowledgement after %u retransmissions\n", TCP_RETRIES);
		tcb.state = TCP_LISTEN;
		return;
	}
	tcb.last_tx = net_ticks;
	if (tcb.state == TCP_SYN_RCVD)
		tcb_send(tcb.iss, TCP_SYN | TCP_ACK, NULL, 0);
	else if (tcb.qlen)
		tcb_send(tcb.q_seq, TCP_ACK | TCP_PSH, tcb.q, tcb.qlen < tcb.mss ? tcb.qlen : tcb.mss);
	else if (tcb.fin_sent)
		tcb_fin();
}

/* ---- receiving ---- */

static void ip_input(const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + ETH_HLEN;
	size_t ihl = len >= ETH_HLEN + IP_HLEN ? (size_t)(ip[0] & 15) * 4 : 0;
	size_t tot = ihl ? get16(ip + 2) : 0;

	if (ihl < IP_HLEN || ip[0] >> 4 != 4 || tot < ihl || ETH_HLEN + tot > len ||
	    csum_fold(csum_add(0, ip, ihl))) {
		net_count.rx_bad++;
		return;
	}
	if (get16(ip + 6) & 0x3fff)
		return;					/* a fragment: not for this stack */
	if (ip[9] == IPPROTO_UDP)
		udp_input(f, ip, ip + ihl, tot - ihl);
	else if (ip[9] == IPPROTO_TCP && net_ip && ld_ip(ip + 16) == net_ip)
		tcp_input(f, ip, ip + ihl, tot - ihl);
}

static void rx_frame(const uint8_t *f, size_t len)
{
	net_count.rx_frames++;
	last_rx = net_ticks;
	if (len < ETH_HLEN) {
		net_count.rx_bad++;
		return;
	}
	if (memcmp(f, net_mac, 6) && memcmp(f, bcast_mac, 6))
		return;
	uint16_t type = get16(f + 12);
	if (type == ETH_P_ARP)
		arp_input(f, len);
	else if (type == ETH_P_IP)
		ip_input(f, len);
}

void net_poll(void)
{
	struct vq *q = &net_rxq;
	bool posted = false;

	while (__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) != q->last_used) {
		struct vring_used_elem e = q->used->ring[q->last_used & (q->size - 1)];
		q->last_used++;
		if (e.id >= q->size) {
			printf("net: FAIL rx used id %u of a %u-entry queue\n", e.id, q->size);
			net_count.rx_bad++;
			continue;
		}
		const struct virtio_net_hdr_v1 *h = (const void *)net_rxbuf[e.id];
		if (e.len < NET_HDR_LEN || e.len > NET_BUF || (mrg_rxbuf && h->num_buffers != 1))
			net_count.rx_bad++;		/* frames here fit one buffer */
		else
			rx_frame(net_rxbuf[e.id] + NET_HDR_LEN, e.len - NET_HDR_LEN);
		net_rx_post((uint16_t)e.id);
		posted = true;
	}
	if (posted)
		vq_kick_on(&net_dev, q, false);
	tx_reclaim();
}

bool net_serve(uint16_t udp_port, uint16_t tcp_port, unsigned int count, unsigned int idle_secs)
{
	serve_udp = udp_port;
	serve_tcp = tcp_port;
	tcb.state = TCP_LISTEN;
	last_rx = net_ticks;
	for (;;) {
		net_poll();
		if (tcp_port ? net_count.tcp_conns >= count : net_count.udp_echoed >= count)
			return true;
		if (net_ticks - last_rx >= idle_secs * NET_HZ) {
			printf("net: FAIL nothing received for %u s\n", idle_secs);
			return false;
		}
		tcp_timer();
		net_wait();
	}
}
