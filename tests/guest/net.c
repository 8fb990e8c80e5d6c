/*
 * net: a minimal IPv4 host on virtio-net (netstack.c). It takes a DHCP
 * lease, resolves its router by ARP, then echoes UDP datagrams to port
 * `udp=N` and TCP connections to port `tcp=N` (command-line words) until
 * `count=N` (default 1) TCP connections have closed -- or, without tcp=,
 * N datagrams were echoed -- and powers off. Nothing received for `idle=N`
 * seconds (default 15) ends it with a FAIL line. `no-mrg` leaves
 * VIRTIO_NET_F_MRG_RXBUF out. Lines:
 *   net: virtio-net 00:DD.F mac MAC link up offered 0x.. negotiated 0x.. rx N tx N
 *   net: dhcp offer IP from SERVER
 *   net: dhcp lease IP router IP dns IP
 *   net: dhcp mask MASK lease N s
 *   net: arp ROUTER is at MAC
 *   net: ready udp=N tcp=N count=N
 *   net: udp echoed N bytes to IP:PORT                        (per datagram)
 *   net: tcp connection from IP:PORT mss N
 *   net: tcp connection closed, echoed N bytes                (per connection)
 *   net: done rx=N tx=N bad=N arp-answered=N udp-echoed=N tcp-closed=N
 *   net: all ok                       (else "net: FAIL ..." lines and "net: N failures")
 */
#include "netstack.h"

void guest_main(void)
{
	unsigned int udp = cmdline_uint("udp", 0), tcp = cmdline_uint("tcp", 0);
	unsigned int count = cmdline_uint("count", 1), idle = cmdline_uint("idle", 15);
	int failures = 0;
	uint8_t mac[6];

	if (udp > 65535 || tcp > 65535) {
		print("net: FAIL udp= and tcp= take a port number\n");
		failures++;
		goto out;
	}
	if (!net_find() || !net_setup(!cmdline_has("no-mrg"), -1, true) || !net_dhcp()) {
		failures++;
		goto out;
	}
	if (!net_arp(net_router, mac, 3)) {
		print("net: FAIL no ARP reply from the router ");
		print_ip(net_router);
		print("\n");
		failures++;
	} else {
		print("net: arp ");
		print_ip(net_router);
		print(" is at ");
		print_mac(mac);
		print("\n");
	}
	printf("net: ready udp=%u tcp=%u count=%u\n", udp, tcp, count);
	if ((udp || tcp) && !net_serve((uint16_t)udp, (uint16_t)tcp, count, idle))
		failures++;
	printf("net: done rx=%u tx=%u bad=%u arp-answered=%u udp-echoed=%u tcp-closed=%u\n",
	       net_count.rx_frames, net_count.tx_frames, net_count.rx_bad, net_count.arp_answered,
	       net_count.udp_echoed, net_count.tcp_conns);
	if (net_count.rx_bad) {
		print("net: FAIL frames with bad checksums or lengths arrived\n");
		failures++;
	}
	vdev_reset(&net_dev);
out:
	if (failures)
		printf("net: %d failures\n", failures);
	else
		print("net: all ok\n");
}
