/*
 * backends/net_user.c and the bootvm-net-user helper ($BOOTVM_NET_USER), with
 * the test acting as the guest on the stream: DHCP, a host port forward
 * carried to a TCP connection, the errors (port taken, helper missing), and
 * junk from the guest side, a host flooding a forwarded port.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backends/net.h"
#include "backends/net_user.h"
#include "util/log.h"

#include "helpers.h"

#define GUEST_IP	0x0a00020fu	/* 10.0.2.15 */
#define GATEWAY_IP	0x0a000202u
#define DNS_IP		0x0a000203u
#define GUEST_PORT	2222
#define WAIT_MS		5000

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static uint8_t gateway_mac[6];	/* where the DHCP offer came from */

struct fixture {
	struct helper_log log;
	char *saved_env;	/* BOOTVM_NET_USER as meson set it */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *env = getenv("BOOTVM_NET_USER");

	assert_non_null(f);
	assert_non_null(env);	/* tests/unit/meson.build points it at the helper */
	f->saved_env = strdup(env);
	log_set_sink(helper_log_sink, &f->log);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	log_set_sink(NULL, NULL);
	setenv("BOOTVM_NET_USER", f->saved_env, 1);
	free(f->saved_env);
	free(f);
	return 0;
}

/* ---- frames ---- */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Ethernet + IPv4 headers at f (34 bytes) for a payload of len bytes. */
static void put_eth_ip(uint8_t *f, const uint8_t dst_mac[6], uint8_t proto, uint32_t src,
		       uint32_t dst, size_t len)
{
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + len));
	ip[8] = 64;
	ip[9] = proto;
	put32(ip + 12, src);
	put32(ip + 16, dst);
	put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
}

/* A DHCPDISCOVER from guest_mac; its length. */
static size_t build_discover(uint8_t *f)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	const size_t bootp_len = 300;
	uint8_t *udp = f + 34, *b = udp + 8;

	memset(f, 0, 34 + 8 + bootp_len);
	put_eth_ip(f, bcast, 17, 0, 0xffffffffu, 8 + bootp_len);
	put16(udp, 68);
	put16(udp + 2, 67);
	put16(udp + 4, (uint16_t)(8 + bootp_len));	/* checksum 0: none */
	b[0] = 1;			/* BOOTREQUEST */
	b[1] = 1;			/* Ethernet */
	b[2] = 6;
	put32(b + 4, 0x12345678);	/* xid */
	memcpy(b + 28, guest_mac, 6);
	put32(b + 236, 0x63825363);	/* magic cookie */
	b[240] = 53;			/* DHCP message type */
	b[241] = 1;
	b[242] = 1;			/* DISCOVER */
	b[243] = 255;
	return 34 + 8 + bootp_len;
}

static void stream_send_frame(struct net_backend *nb, const void *frame, size_t len)
{
	struct iovec iov = { .iov_base = (void *)frame, .iov_len = len };

	assert_int_equal(nb->ops->send(nb, &iov, 1), 0);
}

/* The next frame from the helper, waiting up to ms; 0 on timeout. */
static ssize_t stream_recv_frame(struct net_backend *nb, uint8_t *buf, size_t size, int ms)
{
	double end = helper_now_ms() + ms;

	for (;;) {
		ssize_t n = nb->ops->recv(nb, buf, size);
		struct pollfd pfd = { .fd = nb->fd, .events = POLLIN };

		assert_true(n >= 0);
		if (n > 0)
			return n;
		double left = end - helper_now_ms();
		if (left <= 0)
			return 0;
		poll(&pfd, 1, (int)left + 1);
	}
}

/* Answer an ARP request for the guest's address; true if f was one. */
static bool answer_arp(struct net_backend *nb, const uint8_t *f, size_t len)
{
	uint8_t r[42];

	if (len < 42 || get16(f + 12) != 0x0806 || get16(f + 20) != 1 || get32(f + 38) != GUEST_IP)
		return false;
	memcpy(r, f + 6, 6);
	memcpy(r + 6, guest_mac, 6);
	put16(r + 12, 0x0806);
	memcpy(r + 14, f + 14, 6);	/* htype, ptype, hlen, plen */
	put16(r + 20, 2);		/* reply */
	memcpy(r + 22, guest_mac, 6);
	put32(r + 28, GUEST_IP);
	memcpy(r + 32, f + 22, 10);	/* the asker's MAC and IP */
	stream_send_frame(nb, r, sizeof(r));
	return true;
}

/*
 * Wait for an IPv4 frame with this protocol and destination port (UDP or
 * TCP), answering ARP on the way; its length, or 0 after WAIT_MS.
 */
static size_t wait_ip(struct net_backend *nb, uint8_t *buf, size_t size, uint8_t proto,
		      uint16_t dport)
{
	double end = helper_now_ms() + WAIT_MS;

	while (helper_now_ms() < end) {
		ssize_t n = stream_recv_frame(nb, buf, size, WAIT_MS);

		if (n == 0)
			break;
		if (answer_arp(nb, buf, (size_t)n))
			continue;
		if (n >= 38 && get16(buf + 12) == 0x0800 && buf[14 + 9] == proto &&
		    get16(buf + 14 + 20 + 2) == dport)
			return (size_t)n;
	}
	return 0;
}

/* The value of DHCP option code in the BOOTP packet b (len bytes), or NULL. */
static const uint8_t *dhcp_option(const uint8_t *b, size_t len, uint8_t code, uint8_t *olen)
{
	for (size_t i = 240; i + 1 < len && b[i] != 255;) {
		if (b[i] == 0) {
			i++;
			continue;
		}
		if (i + 2 + b[i + 1] > len)
			break;
		if (b[i] == code) {
			*olen = b[i + 1];
			return b + i + 2;
		}
		i += 2 + b[i + 1];
	}
	return NULL;
}

/*
 * Send DISCOVER, expect an OFFER of 10.0.2.15 with gateway 10.0.2.2 and DNS
 * 10.0.2.3; restricted, libslirp offers neither (there is nowhere to route to).
 */
static void check_dhcp_offer_dns(struct net_backend *nb, bool restricted, bool slirp_dns)
{
	static uint8_t buf[NET_FRAME_MAX];
	const uint8_t *o;
	uint8_t olen;
	size_t n;

	n = build_discover(buf);
	stream_send_frame(nb, buf, n);
	n = wait_ip(nb, buf, sizeof(buf), 17, 68);
	assert_true(n > 34 + 8 + 240);
	const uint8_t *b = buf + 34 + 8;
	size_t blen = n - 34 - 8;

	memcpy(gateway_mac, buf + 6, 6);
	assert_int_equal(b[0], 2);			/* BOOTREPLY */
	assert_int_equal(get32(b + 4), 0x12345678);	/* our xid */
	assert_int_equal(get32(b + 16), GUEST_IP);	/* yiaddr */
	assert_non_null(o = dhcp_option(b, blen, 53, &olen));
	assert_int_equal(o[0], 2);			/* OFFER */
	if (restricted) {
		assert_null(dhcp_option(b, blen, 3, &olen));
		assert_null(dhcp_option(b, blen, 6, &olen));
		return;
	}
	assert_non_null(o = dhcp_option(b, blen, 3, &olen));
	assert_true(olen >= 4);
	assert_int_equal(get32(o), GATEWAY_IP);
	if (!slirp_dns)
		return;
	assert_non_null(o = dhcp_option(b, blen, 6, &olen));
	assert_true(olen >= 4);
	assert_int_equal(get32(o), DNS_IP);
}

static void check_dhcp_offer(struct net_backend *nb, bool restricted)
{
	check_dhcp_offer_dns(nb, restricted, true);
}

static void check_dhcp(struct net_backend *nb)
{
	check_dhcp_offer(nb, false);
}

/* A host port nobody listens on now. */
static uint16_t free_port(bool udp)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int s = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);

	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
	close(s);
	return ntohs(sin.sin_port);
}

static void add_fwd(struct vm_net_config *cfg, bool udp, uint16_t host_port, uint16_t guest_port)
{
	cfg->fwd[cfg->nr_fwd++] = (struct vm_hostfwd){
		.udp = udp,
		.host_addr = htonl(INADDR_LOOPBACK),
		.host_port = host_port,
		.guest_addr = htonl(GUEST_IP),
		.guest_port = guest_port,
	};
}

/* ---- tests ---- */

static void test_dhcp(void **state)
{
	struct fixture *f = *state;
	struct vm_net_config cfg = { .kind = VM_NET_USER };
	struct net_backend *nb;

	add_fwd(&cfg, false, free_port(false), GUEST_PORT);
	nb = net_user_start(&cfg);
	assert_non_null(nb);
	assert_int_equal(f->log.errors, 0);
	assert_string_equal(nb->name, "user");
	assert_int_equal(nb->vnet_hdr_len, 0);
	assert_false(nb->offloads);
	check_dhcp(nb);

	/* The helper leaves on EOF: destroy reaps it well before the kill deadline. */
	double t0 = helper_now_ms();
	net_backend_destroy(nb);
	assert_true(helper_now_ms() - t0 < 900);
}

/* TCP segment (flags, seq, ack, payload) from guest_port to the host's port, to slirp. */
static void send_tcp(struct net_backend *nb, const uint8_t *dst_mac, uint32_t dst_ip,
			    uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
			    uint32_t ack, bool pad)
{
	uint8_t fr[60];	/* 54, or padded to the Ethernet minimum */
	uint8_t *t = fr + 34, pseudo[12];
	uint32_t sum;

	memset(fr, 0, sizeof(fr));
	put_eth_ip(fr, dst_mac, 6, GUEST_IP, dst_ip, 20);
	put16(t, sport);
	put16(t + 2, dport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = flags;
	put16(t + 14, 65535);	/* window */
	put32(pseudo, GUEST_IP);
	put32(pseudo + 4, dst_ip);
	pseudo[8] = 0;
	pseudo[9] = 6;
	put16(pseudo + 10, 20);
	sum = csum_add(csum_add(0, pseudo, 12), t, 20);
	put16(t + 16, csum_fold(sum));
	stream_send_frame(nb, fr, pad ? sizeof(fr) : 34 + 20);
}

#define TCP_SYN 0x02
#define TCP_ACK 0x10

/*
 * A host client on a forwarded port reaches the guest (the test): the SYN,
 * our SYN-ACK (padded to 60 bytes if pad), then its bytes as the guest's data.
 */
static void hostfwd_tcp(enum vm_net_kind kind, bool pad)
{
	struct vm_net_config cfg = { .kind = kind };
	struct helper_log log = { 0 };
	static uint8_t buf[NET_FRAME_MAX];
	uint16_t port = free_port(false);
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		.sin_port = htons(port),
	};
	struct net_backend *nb;
	int c;

	add_fwd(&cfg, false, port, GUEST_PORT);
	log_set_sink(helper_log_sink, &log);
	nb = net_user_start(&cfg);
	assert_non_null(nb);
	assert_int_equal(log.errors, 0);
	if (kind == VM_NET_PASST)
		check_dhcp_offer_dns(nb, false, false);	/* passt then knows our MAC */

	/* The forward is bound once net_user_start() returns: connect at once. */
	c = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c >= 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);

	/* slirp opens the guest side: a SYN to 10.0.2.15:GUEST_PORT (after ARP). */
	size_t n = wait_ip(nb, buf, sizeof(buf), 6, GUEST_PORT);
	assert_true(n >= 34 + 20);
	const uint8_t *ip = buf + 14, *t = ip + 20;
	assert_int_equal(get32(ip + 16), GUEST_IP);
	assert_int_equal(t[13] & (TCP_SYN | TCP_ACK), TCP_SYN);
	uint32_t peer_ip = get32(ip + 12);
	uint16_t peer_port = get16(t);
	uint32_t peer_seq = get32(t + 4);
	uint8_t peer_mac[6];
	memcpy(peer_mac, buf + 6, 6);

	/* Accept it; then bytes the host client writes arrive as the guest's data. */
	send_tcp(nb, peer_mac, peer_ip, GUEST_PORT, peer_port, TCP_SYN | TCP_ACK, 1000,
			peer_seq + 1, pad);
	assert_int_equal(write(c, "ping", 4), 4);
	bool got = false;
	for (int i = 0; i < 20 && !got; i++) {
		n = wait_ip(nb, buf, sizeof(buf), 6, GUEST_PORT);
		assert_true(n >= 34 + 20);
		t = buf + 14 + 20;
		size_t doff = (size_t)(t[12] >> 4) * 4;
		size_t plen = get16(buf + 14 + 2) - 20 - doff;
		if (plen == 4 && !memcmp(t + doff, "ping", 4))
			got = true;
	}
	assert_true(got);

	close(c);
	net_backend_destroy(nb);
}

static void test_hostfwd_tcp(void **state)
{
	hostfwd_tcp(VM_NET_USER, false);
	hostfwd_tcp(VM_NET_USER, true);
}

/* ---- passt (skipped where it is not installed) ---- */

/* passt in $PATH, where bootvm looks for it. */
static bool have_passt(void)
{
	const char *path = getenv("PATH");
	char buf[4096];

	for (const char *d = path ? path : ""; *d;) {
		size_t len = strcspn(d, ":");

		snprintf(buf, sizeof(buf), "%.*s/passt", (int)len, d);
		if (len && access(buf, X_OK) == 0)
			return true;
		d += len + (d[len] == ':');
	}
	return false;
}

static void test_passt_dhcp(void **state)
{
	struct fixture *f = *state;
	struct vm_net_config cfg = { .kind = VM_NET_PASST };
	struct net_backend *nb;

	if (!have_passt())
		skip();
	add_fwd(&cfg, false, free_port(false), GUEST_PORT);
	add_fwd(&cfg, true, free_port(true), GUEST_PORT);
	nb = net_user_start(&cfg);
	assert_non_null(nb);
	assert_int_equal(f->log.errors, 0);
	assert_string_equal(nb->name, "passt");
	assert_int_equal(nb->vnet_hdr_len, 0);
	/* --net user's addresses: 10.0.2.15 from gateway 10.0.2.2 (DNS: the host's). */
	check_dhcp_offer_dns(nb, false, false);
	/* --one-off: passt leaves when the socket closes, well before the kill. */
	double t0 = helper_now_ms();
	net_backend_destroy(nb);
	assert_true(helper_now_ms() - t0 < 900);
}

/* With the padded SYN-ACK passt 2023-03 would ignore, were it not cut. */
static void test_passt_hostfwd_tcp(void **state)
{
	if (!have_passt())
		skip();
	hostfwd_tcp(VM_NET_PASST, false);
	hostfwd_tcp(VM_NET_PASST, true);
}

static void test_passt_errors(void **state)
{
	struct fixture *f = *state;
	struct vm_net_config cfg = { .kind = VM_NET_PASST };
	uint16_t port = free_port(false);
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		.sin_port = htons(port),
	};
	char want[80];
	int s;

	/* Not there: named, with where we looked. */
	setenv("BOOTVM_PASST", "/nonexistent", 1);
	assert_null(net_user_start(&cfg));
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "--net passt: helper /nonexistent (from BOOTVM_PASST)"));
	unsetenv("BOOTVM_PASST");
	char *path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	setenv("PATH", "/nonexistent", 1);
	assert_null(net_user_start(&cfg));
	assert_int_equal(f->log.errors, 2);
	assert_non_null(strstr(f->log.last_error, "no passt in PATH"));
	if (path)
		setenv("PATH", path, 1);
	free(path);
	/* Dies before it is ready: its status. */
	setenv("BOOTVM_PASST", "/bin/false", 1);
	assert_null(net_user_start(&cfg));
	assert_int_equal(f->log.errors, 3);
	assert_non_null(strstr(f->log.last_error, "exited with status 1 before it was ready"));
	unsetenv("BOOTVM_PASST");
	if (!have_passt())
		skip();

	/* A port taken: one line, passt's own reason in it, nothing about syslog. */
	s = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s, 1), 0);
	add_fwd(&cfg, false, port, 22);
	assert_null(net_user_start(&cfg));
	assert_int_equal(f->log.errors, 4);
	snprintf(want, sizeof(want), "'-t 127.0.0.1/%u:22'", port);
	if (!strstr(f->log.last_error, want) || strstr(f->log.last_error, "syslog") ||
	    !strstr(f->log.last_error, "--net passt: "))
		fail_msg("'%s' does not name %s", f->log.last_error, want);
	close(s);
	struct net_backend *nb = net_user_start(&cfg);	/* free again: it works */
	assert_non_null(nb);
	net_backend_destroy(nb);
}

static void test_hostfwd_port_taken(void **state)
{
	struct fixture *f = *state;
	struct vm_net_config cfg = { .kind = VM_NET_USER };
	uint16_t port = free_port(false);
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		.sin_port = htons(port),
	};
	int s = socket(AF_INET, SOCK_STREAM, 0);
	char want[64];

	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s, 1), 0);
	add_fwd(&cfg, true, free_port(true), 53);	/* a good rule first: it is undone too */
	add_fwd(&cfg, false, port, 22);
	assert_null(net_user_start(&cfg));
	assert_int_equal(f->log.errors, 1);
	snprintf(want, sizeof(want), "--net user: hostfwd tcp:127.0.0.1:%u: ", port);
	assert_non_null(strstr(f->log.last_error, want));
	assert_non_null(strstr(f->log.last_error, "in use"));
	close(s);

	/* Free again: the same rules work (nothing of the failed helper stayed bound). */
	struct net_backend *nb = net_user_start(&cfg);
	assert_non_null(nb);
	net_backend_destroy(nb);
}

static void test_hostfwd_bad_address(void **state)
{
	struct fixture *f = *state;
	struct vm_net_config cfg = { .kind = VM_NET_USER };

	add_fwd(&cfg, false, free_port(false), 22);
	cfg.fwd[0].host_addr = htonl(0xc0000201);	/* 192.0.2.1: TEST-NET, not ours */
	assert_null(net_user_start(&cfg));
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "hostfwd tcp:192.0.2.1:"));
	assert_non_null(strstr(f->log.last_error, "assign"));	/* EADDRNOTAVAIL */
}

static void test_helper_missing(void **state)
{
	struct fixture *f = *state;
	struct vm_net_config cfg = { .kind = VM_NET_USER };

	setenv("BOOTVM_NET_USER", "/nonexistent", 1);
	assert_null(net_user_start(&cfg));
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "--net user: "));
	assert_non_null(strstr(f->log.last_error, "/nonexistent"));
	assert_non_null(strstr(f->log.last_error, "BOOTVM_NET_USER"));
	assert_non_null(strstr(f->log.last_error, "No such file"));

	/* Not set: it looks next to this executable (no helper there) and says both. */
	unsetenv("BOOTVM_NET_USER");
	assert_null(net_user_start(&cfg));
	assert_int_equal(f->log.errors, 2);
	assert_non_null(strstr(f->log.last_error, "/bootvm-net-user"));
	assert_non_null(strstr(f->log.last_error, "BOOTVM_NET_USER is not set"));
}

static void test_helper_dies(void **state)
{
	struct fixture *f = *state;
	struct vm_net_config cfg = { .kind = VM_NET_USER };

	setenv("BOOTVM_NET_USER", "/bin/false", 1);
	assert_null(net_user_start(&cfg));
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "exited with status 1 before it was ready"));
}

/* A fake helper: a shell script given as $BOOTVM_NET_USER. */
static void fake_helper_expect(const char *script, const char *needle, double min_ms, double max_ms)
{
	struct helper_log log = { 0 };
	struct vm_net_config cfg = { .kind = VM_NET_USER };
	char *dir = helper_tmpdir("netuser");
	char *path = helper_asprintf("%s/helper", dir);

	helper_write_file(path, script, strlen(script), 0755);
	setenv("BOOTVM_NET_USER", path, 1);
	log_set_sink(helper_log_sink, &log);
	double t0 = helper_now_ms();
	assert_null(net_user_start(&cfg));
	double ms = helper_now_ms() - t0;
	assert_int_equal(log.errors, 1);
	if (!strstr(log.last_error, needle))
		fail_msg("'%s' does not say '%s'", log.last_error, needle);
	assert_true(ms >= min_ms && ms < max_ms);
	free(path);
	assert_int_equal(helper_tmpdir_remove(dir), 0);
}

static void test_helper_misbehaves(void **state)
{
	/* Its error line is ours, under the option's name. */
	fake_helper_expect("#!/bin/sh\necho 'error: hostfwd tcp:1.2.3.4:5: boom' >&4\nexit 1\n",
			   "--net user: hostfwd tcp:1.2.3.4:5: boom", 0, 2000);
	fake_helper_expect("#!/bin/sh\necho hello >&4\n", "said 'hello' instead of ready", 0, 2000);
	fake_helper_expect("#!/bin/sh\nkill -9 $$\n", "killed by signal 9 before it was ready", 0, 2000);
	/* Hung: killed after 5 s (and reaped: the sleep must not hold us up). */
	fake_helper_expect("#!/bin/sh\nexec sleep 60\n", "did not report ready within 5 s", 4900, 6000);
}

/* Write all of buf on a non-blocking socket. */
static void write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };

		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
}

static void test_oversized_frames(void **state)
{
	struct vm_net_config cfg = { .kind = VM_NET_USER };
	struct net_backend *nb = net_user_start(&cfg);
	static const uint32_t sizes[] = { NET_FRAME_MAX + 1, 300000, 0 };
	size_t big = 300000;
	uint8_t *junk = malloc(big);

	assert_non_null(nb);
	assert_non_null(junk);
	memset(junk, 0xa5, big);
	/* Straight onto the socket: our own stream backend would refuse to send these. */
	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t be = htobe32(sizes[i]);

		write_all(nb->fd, &be, 4);
		write_all(nb->fd, junk, sizes[i]);
	}
	free(junk);
	/* Still in step and serving. */
	check_dhcp(nb);
	net_backend_destroy(nb);
}

/*
 * The guest reaches the host's 127.0.0.1 through 10.0.2.2; with restrict=on
 * it reaches nothing (forwards into the guest still work: the other tests).
 */
static void guest_to_host_udp(bool restricted)
{
	struct vm_net_config cfg = { .kind = VM_NET_USER, .restrict_net = restricted };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	struct net_backend *nb = net_user_start(&cfg);
	uint8_t fr[34 + 8 + 2], got[16];
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	assert_non_null(nb);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
	check_dhcp_offer(nb, restricted);

	put_eth_ip(fr, gateway_mac, 17, GUEST_IP, GATEWAY_IP, 8 + 2);
	put16(fr + 34, 5000);
	put16(fr + 36, ntohs(sin.sin_port));
	put16(fr + 38, 8 + 2);
	put16(fr + 40, 0);	/* no checksum */
	memcpy(fr + 42, "hi", 2);
	stream_send_frame(nb, fr, sizeof(fr));

	struct pollfd pfd = { .fd = s, .events = POLLIN };
	if (restricted) {
		assert_int_equal(poll(&pfd, 1, 500), 0);
	} else {
		assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
		assert_int_equal(recv(s, got, sizeof(got), 0), 2);
		assert_memory_equal(got, "hi", 2);
	}
	close(s);
	net_backend_destroy(nb);
}

static void test_guest_to_host(void **state)
{
	guest_to_host_udp(false);
	guest_to_host_udp(true);
}

/*
 * A host flooding a forwarded UDP port while bootvm reads nothing: the
 * helper drops what does not fit (bounded), and what arrives is whole frames.
 */
static void test_hostfwd_udp_flood(void **state)
{
	struct vm_net_config cfg = { .kind = VM_NET_USER };
	static uint8_t buf[NET_FRAME_MAX], payload[1400];
	uint16_t port = free_port(true);
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		.sin_port = htons(port),
	};
	unsigned int total = 3000, got = 0;
	struct net_backend *nb;
	int c;

	add_fwd(&cfg, true, port, GUEST_PORT);
	nb = net_user_start(&cfg);
	assert_non_null(nb);
	check_dhcp(nb);		/* slirp now knows the guest's MAC: no ARP in the way */

	c = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(c >= 0);
	for (unsigned int i = 0; i < total; i++) {
		memset(payload, (int)i, sizeof(payload));
		while (sendto(c, payload, sizeof(payload), 0, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
			assert_int_equal(errno, ENOBUFS);
			usleep(1000);
		}
		if (i % 100 == 99)
			usleep(2000);	/* let the helper take them off its socket */
	}
	usleep(200000);
	for (;;) {
		ssize_t n = stream_recv_frame(nb, buf, sizeof(buf), 300);

		if (n == 0)
			break;
		assert_int_equal(n, 14 + 20 + 8 + (ssize_t)sizeof(payload));
		assert_int_equal(get16(buf + 12), 0x0800);
		assert_int_equal(get16(buf + 14 + 20 + 2), GUEST_PORT);
		const uint8_t *p = buf + 14 + 20 + 8;
		for (size_t j = 1; j < sizeof(payload); j++)
			assert_int_equal(p[j], p[0]);
		if (++got == total)
			break;
	}
	/* Some came, and (with ~200 KiB of socket buffer for 4 MiB) not all. */
	print_message("# %u of %u datagrams reached the guest\n", got, total);
	assert_true(got > 0);
	assert_true(got < total);
	close(c);
	net_backend_destroy(nb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dhcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostfwd_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostfwd_port_taken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostfwd_bad_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_helper_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_helper_dies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_helper_misbehaves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostfwd_udp_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_to_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_passt_dhcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_passt_hostfwd_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_passt_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
