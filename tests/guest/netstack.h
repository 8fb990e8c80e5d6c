/*
 * A minimal IPv4 stack over virtio-net for the net and net_hostile guests:
 * the device (RX queue 0, TX queue 1, one 2 KiB buffer per descriptor), ARP
 * (answers for our address, resolves one), a DHCP client, UDP echo and just
 * enough TCP to accept and echo one connection at a time. Checksums are
 * computed (and checked) for what is sent and received only. Time comes from
 * the x2APIC timer (KVM's runs at 1 GHz) ticking at NET_HZ; every wait is
 * `sti; hlt` until a queue's or the timer's interrupt, with a deadline.
 */
#pragma once

#include <linux/virtio_net.h>

#include "vdrv.h"

#define NET_HZ		10			/* timer ticks per second */
#define NET_BUF		2048			/* bytes per RX/TX buffer (header + frame) */
#define NET_HDR_LEN	((unsigned int)sizeof(struct virtio_net_hdr_v1))	/* 12 */
#define NET_QSIZE	VQ_SIZE

/* An IPv4 address as its 4 bytes in memory (network order). */
#define IPV4(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

extern struct vdev net_dev;
extern struct vq net_rxq, net_txq;
extern uint8_t net_rxbuf[NET_QSIZE][NET_BUF];
extern uint8_t net_txbuf[NET_QSIZE][NET_BUF];
extern uint8_t net_mac[6];
extern uint32_t net_ip, net_router, net_dns, net_mask;	/* 0 until the DHCP lease */
extern volatile uint32_t net_ticks;

struct net_counters {
	uint32_t rx_frames, tx_frames, rx_bad;	/* bad: checksum, length or header */
	uint32_t arp_answered, udp_echoed, tcp_conns, tx_full;
};
extern struct net_counters net_count;

/* IDT, x2APIC, the timer; the first virtio-net function found, probed and mapped. */
bool net_find(void);
/*
 * Reset and negotiate VERSION_1 | MAC | STATUS (| MRG_RXBUF if mrg and
 * offered), queues with MSI-X entry 1, the first `rx_bufs` RX buffers posted
 * (all if negative), DRIVER_OK; reads the MAC and link status (printed
 * when verbose). False (printed) on failure.
 */
bool net_setup(bool mrg, int rx_bufs, bool verbose);
/* DISCOVER / OFFER / REQUEST / ACK; prints the lease line. */
bool net_dhcp(void);
/* Resolve ip by ARP into mac, within `secs` seconds. */
bool net_arp(uint32_t ip, uint8_t mac[6], unsigned int secs);
/* Send an ARP request for ip (without waiting). */
void net_arp_request(uint32_t ip);
/*
 * Echo UDP datagrams to udp_port and TCP connections to tcp_port (0: none)
 * until `count` TCP connections have closed (or, without tcp_port, `count`
 * datagrams were echoed). False if nothing arrived for idle_secs.
 */
bool net_serve(uint16_t udp_port, uint16_t tcp_port, unsigned int count, unsigned int idle_secs);

/* A free TX descriptor (waiting up to 1 s for one to come back); -1 if none. */
int net_tx_alloc(void);
/* Post RX buffer id (its whole 2 KiB, device-writable) without notifying. */
void net_rx_post(uint16_t id);

/* Take in what the device used on both queues (RX frames are handled). */
void net_poll(void);
/* Interrupts on, halt until the next interrupt (a queue's or the timer's), interrupts off. */
static inline void net_wait(void) { __asm__ volatile("sti; hlt; cli" ::: "memory"); }

void print_ip(uint32_t ip);
void print_mac(const uint8_t mac[6]);
/* "key=N" from the command line, else def. */
unsigned int cmdline_uint(const char *key, unsigned int def);
