/*
 * bootvm-net-user: the user-mode network (libslirp) in a process of its own.
 *
 *   bootvm-net-user --fd N --status-fd M [--restrict]
 *                   [--hostfwd tcp|udp:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT]...
 *
 * bootvm is a static PIE and Debian ships libslirp (and the glib it needs)
 * only as shared libraries, so the network stack lives here, which also
 * keeps a big parser of hostile input out of the VMM. Frames go to and from
 * bootvm over fd N, a stream socket, each one preceded by its length as a
 * 32-bit big-endian number (passt's protocol, backends/net_stream.c).
 *
 * Status fd M gets exactly one line: "ready" once every host port forward
 * is bound, or "error: WHAT: WHY" (then exit 1). Nothing else is printed.
 * The helper exits when fd N reaches EOF (bootvm closed it or died).
 *
 * Guest network: 10.0.2.0/24, gateway and host 10.0.2.2, DHCP from
 * 10.0.2.15, DNS at 10.0.2.3, which libslirp forwards to the first
 * nameserver of the host's /etc/resolv.conf (re-read when it changes).
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <libslirp.h>

#include "backends/net.h"	/* NET_FRAME_MAX only: this program links nothing of bootvm */

#define MAX_HOSTFWD	64
#define RX_BUF_SIZE	(256u << 10)	/* several frames per read; > 4 + NET_FRAME_MAX */
#define RX_READS_MAX	16		/* reads per round, so host sockets and timers get their turn */

struct hostfwd {
	bool udp;
	struct in_addr host_addr, guest_addr;
	int host_port, guest_port;
	char desc[64];		/* "tcp:127.0.0.1:5555", for the error line */
};

struct timer {
	SlirpTimerCb cb;
	void *cb_opaque;
	int64_t expire_ms;	/* -1: not armed */
	uint64_t round;		/* last round it fired in: at most once per round */
	struct timer *next;
};

struct helper {
	Slirp *slirp;
	int fd;			/* to bootvm */
	struct timer *timers;
	uint64_t round;

	struct pollfd *pfd;	/* [0] is fd; slirp's sockets follow, rebuilt every round */
	unsigned int nr_pfd, max_pfd;

	/* From bootvm: a byte stream cut into frames here. */
	uint8_t *rx;
	size_t rx_len;
	uint32_t rx_skip;	/* bytes of an oversized frame still to throw away */

	/* To bootvm: the tail of the one frame a short write left over. */
	uint8_t tx[4 + NET_FRAME_MAX];
	size_t tx_off, tx_len;

	/* Counted, not printed: this program prints nothing but its status line. */
	uint64_t rx_oversized, tx_dropped;
};

static int64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- slirp's callbacks ---- */

/* Push out what a short write left; true when nothing is left. */
static bool tx_flush(struct helper *h)
{
	while (h->tx_off < h->tx_len) {
		ssize_t n = send(h->fd, h->tx + h->tx_off, h->tx_len - h->tx_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) /* bootvm is gone: the read side sees EOF and we exit */
				h->tx_off = h->tx_len;
			break;
		}
		h->tx_off += (size_t)n;
	}
	return h->tx_off == h->tx_len;
}

/*
 * A frame for the guest. Never blocks: when bootvm's socket is full the frame
 * is dropped (TCP retransmits) rather than queued without bound; only the rest
 * of a frame already half written is kept, so that the stream stays framed.
 */
static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct helper *h = opaque;
	uint32_t be = htobe32((uint32_t)len);
	struct iovec iov[2] = {
		{ .iov_base = &be, .iov_len = 4 },
		{ .iov_base = (void *)buf, .iov_len = len },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	if (len > NET_FRAME_MAX || !tx_flush(h)) {
		h->tx_dropped++;
		return (ssize_t)len;
	}
	do
		n = sendmsg(h->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		h->tx_dropped++;
		return (ssize_t)len;
	}
	if ((size_t)n < 4 + len) {
		size_t done = (size_t)n;

		h->tx_len = 4 + len - done;
		h->tx_off = 0;
		if (done < 4) {
			memcpy(h->tx, (uint8_t *)&be + done, 4 - done);
			memcpy(h->tx + 4 - done, buf, len);
		} else {
			memcpy(h->tx, (const uint8_t *)buf + (done - 4), h->tx_len);
		}
	}
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	/* The guest's own mistakes are not ours to print. */
}

static int64_t cb_clock_get_ns(void *opaque)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct helper *h = opaque;
	struct timer *t = calloc(1, sizeof(*t));

	if (!t)
		abort();	/* slirp cannot take a NULL timer; a few bytes: we are done anyway */
	t->cb = cb;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = h->timers;
	h->timers = t;
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct helper *h = opaque;

	for (struct timer **p = &h->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = ((struct timer *)timer)->next;
			free(timer);
			return;
		}
	}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	((struct timer *)timer)->expire_ms = expire_ms;
}

/* Sockets are polled through slirp_pollfds_fill() each round: nothing to keep. */
static void cb_register_poll_fd(int fd, void *opaque)
{
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
}

/* Only called from slirp inside our own loop, which refills its poll set next round. */
static void cb_notify(void *opaque)
{
}

static const SlirpCb slirp_callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
};

static int cb_add_poll(int fd, int events, void *opaque)
{
	struct helper *h = opaque;

	if (h->nr_pfd == h->max_pfd) {
		unsigned int max = h->max_pfd * 2;
		struct pollfd *p = realloc(h->pfd, max * sizeof(*p));

		if (!p)
			abort();
		h->pfd = p;
		h->max_pfd = max;
	}
	h->pfd[h->nr_pfd] = (struct pollfd){
		.fd = fd,
		.events = (short)(((events & SLIRP_POLL_IN) ? POLLIN : 0) |
				  ((events & SLIRP_POLL_OUT) ? POLLOUT : 0) |
				  ((events & SLIRP_POLL_PRI) ? POLLPRI : 0)),
	};
	return (int)h->nr_pfd++;
}

static int cb_get_revents(int idx, void *opaque)
{
	struct helper *h = opaque;
	short r;

	if (idx < 1 || (unsigned int)idx >= h->nr_pfd)
		return 0;
	r = h->pfd[idx].revents;
	return ((r & POLLIN) ? SLIRP_POLL_IN : 0) | ((r & POLLOUT) ? SLIRP_POLL_OUT : 0) |
	       ((r & POLLPRI) ? SLIRP_POLL_PRI : 0) | ((r & POLLERR) ? SLIRP_POLL_ERR : 0) |
	       ((r & POLLHUP) ? SLIRP_POLL_HUP : 0);
}

/* ---- the loop ---- */

/* Milliseconds until the next timer (or cap, whichever is sooner). */
static uint32_t timers_timeout(const struct helper *h, uint32_t cap)
{
	int64_t now = clock_ms();

	for (const struct timer *t = h->timers; t; t = t->next) {
		if (t->expire_ms < 0)
			continue;
		if (t->expire_ms <= now)
			return 0;
		if (t->expire_ms - now < (int64_t)cap)
			cap = (uint32_t)(t->expire_ms - now);
	}
	return cap;
}

/*
 * Fire the expired timers, each at most once per round (a callback that
 * re-arms in the past must not keep us here). A callback may free or create
 * timers, so the list is scanned again from the start after each one.
 */
static void timers_run(struct helper *h)
{
	int64_t now = clock_ms();
	struct timer *t;

	h->round++;
again:
	for (t = h->timers; t; t = t->next) {
		if (t->expire_ms >= 0 && t->expire_ms <= now && t->round != h->round) {
			t->expire_ms = -1;
			t->round = h->round;
			t->cb(t->cb_opaque);
			goto again;
		}
	}
}

/* Hand every complete frame in rx to slirp; keep a partial one for later. */
static void rx_frames(struct helper *h)
{
	size_t off = 0;

	for (;;) {
		if (h->rx_skip) {
			size_t n = h->rx_len - off < h->rx_skip ? h->rx_len - off : h->rx_skip;

			off += n;
			h->rx_skip -= (uint32_t)n;
			if (h->rx_skip)
				break;
		}
		if (h->rx_len - off < 4)
			break;
		uint32_t len;

		memcpy(&len, h->rx + off, 4);
		len = be32toh(len);
		if (len > NET_FRAME_MAX) {
			h->rx_oversized++;
			h->rx_skip = len;
			off += 4;
			continue;
		}
		if (h->rx_len - off - 4 < len)
			break;
		slirp_input(h->slirp, h->rx + off + 4, (int)len);
		off += 4 + len;
	}
	memmove(h->rx, h->rx + off, h->rx_len - off);
	h->rx_len -= off;
}

/* Read what bootvm sent; false at EOF or on an error (bootvm is gone). */
static bool rx_read(struct helper *h)
{
	for (int i = 0; i < RX_READS_MAX; i++) {
		ssize_t n = recv(h->fd, h->rx + h->rx_len, RX_BUF_SIZE - h->rx_len, MSG_DONTWAIT);

		if (n == 0)
			return false;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		h->rx_len += (size_t)n;
		rx_frames(h);
	}
	return true;
}

static void helper_loop(struct helper *h)
{
	for (;;) {
		uint32_t timeout = UINT32_MAX;
		int n;

		h->pfd[0] = (struct pollfd){
			.fd = h->fd,
			.events = (short)(POLLIN | (h->tx_off < h->tx_len ? POLLOUT : 0)),
		};
		h->nr_pfd = 1;
		slirp_pollfds_fill(h->slirp, &timeout, cb_add_poll, h);
		timeout = timers_timeout(h, timeout);
		n = poll(h->pfd, h->nr_pfd, timeout == UINT32_MAX ? -1 : (int)timeout);
		if (n < 0 && errno != EINTR)
			return;
		slirp_pollfds_poll(h->slirp, n < 0, cb_get_revents, h);
		timers_run(h);
		if (n > 0 && (h->pfd[0].revents & POLLOUT))
			tx_flush(h);
		if (n > 0 && (h->pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && !rx_read(h))
			return;
	}
}

/* ---- set-up ---- */

static void status(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void status(int fd, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(fd, line, (size_t)n) < 0) {
		/* Nobody to tell: bootvm sees our exit status instead. */
	}
}

/* "tcp:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT", everything given (bootvm fills defaults). */
static int parse_hostfwd(const char *s, struct hostfwd *f)
{
	char proto[4], ha[16], ga[16];
	unsigned int hp, gp;
	int end = 0;

	if (sscanf(s, "%3[a-z]:%15[0-9.]:%u-%15[0-9.]:%u%n", proto, ha, &hp, ga, &gp, &end) != 5 ||
	    s[end] || (strcmp(proto, "tcp") && strcmp(proto, "udp")) ||
	    inet_pton(AF_INET, ha, &f->host_addr) != 1 || inet_pton(AF_INET, ga, &f->guest_addr) != 1 ||
	    hp < 1 || hp > 65535 || gp < 1 || gp > 65535)
		return -1;
	f->udp = !strcmp(proto, "udp");
	f->host_port = (int)hp;
	f->guest_port = (int)gp;
	snprintf(f->desc, sizeof(f->desc), "%s:%s:%u", proto, ha, hp);
	return 0;
}

/*
 * slirp_add_hostfwd() says -1 and nothing else (errno is not kept), so first
 * bind the same address and port as it will (SO_REUSEADDR, like slirp) and
 * report why that fails: in use, not an address of this host, a privileged port.
 */
static int hostfwd_probe(const struct hostfwd *f)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr = f->host_addr,
		.sin_port = htons((uint16_t)f->host_port),
	};
	int one = 1, err = 0;
	int s = socket(AF_INET, (f->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);

	if (s < 0)
		return errno;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		err = errno;
	close(s);
	return err;
}

static void usage_exit(void)
{
	fprintf(stderr, "usage: bootvm-net-user --fd N --status-fd M [--restrict] "
		"[--hostfwd tcp|udp:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT]...\n");
	exit(2);
}

static int parse_fd(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == 0 || *end || v < 0 || v > 65535)
		usage_exit();
	return (int)v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "fd", required_argument, NULL, 'f' },
		{ "status-fd", required_argument, NULL, 's' },
		{ "restrict", no_argument, NULL, 'r' },
		{ "hostfwd", required_argument, NULL, 'h' },
		{ 0 }
	};
	static struct hostfwd fwd[MAX_HOSTFWD];
	static struct helper h;
	unsigned int nr_fwd = 0;
	int status_fd = -1, c;
	bool restricted = false;

	h.fd = -1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			h.fd = parse_fd(optarg);
			break;
		case 's':
			status_fd = parse_fd(optarg);
			break;
		case 'r':
			restricted = true;
			break;
		case 'h':
			if (nr_fwd == MAX_HOSTFWD || parse_hostfwd(optarg, &fwd[nr_fwd]) < 0)
				usage_exit();
			nr_fwd++;
			break;
		default:
			usage_exit();
		}
	}
	if (h.fd < 0 || status_fd < 0 || optind != argc)
		usage_exit();

	/* Belt and braces with the EOF on fd: gone with bootvm even if fd leaked elsewhere. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* A host peer that resets a forwarded connection must not kill us through SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);

	h.rx = malloc(RX_BUF_SIZE);
	h.max_pfd = 64;
	h.pfd = malloc(h.max_pfd * sizeof(*h.pfd));
	if (!h.rx || !h.pfd) {
		status(status_fd, "error: out of memory");
		return 1;
	}

	SlirpConfig cfg = {
		.version = 1,
		.restricted = restricted,
		.in_enabled = true,
		.vnetwork.s_addr = htonl(0x0a000200),		/* 10.0.2.0 */
		.vnetmask.s_addr = htonl(0xffffff00),		/* /24 */
		.vhost.s_addr = htonl(0x0a000202),		/* 10.0.2.2 */
		.vdhcp_start.s_addr = htonl(0x0a00020f),	/* 10.0.2.15 */
		.vnameserver.s_addr = htonl(0x0a000203),	/* 10.0.2.3 */
		.disable_host_loopback = false,			/* 10.0.2.2 reaches the host's 127.0.0.1 */
	};
	h.slirp = slirp_new(&cfg, &slirp_callbacks, &h);
	if (!h.slirp) {
		status(status_fd, "error: libslirp failed to start");
		return 1;
	}

	for (unsigned int i = 0; i < nr_fwd; i++) {
		const struct hostfwd *f = &fwd[i];
		int err = hostfwd_probe(f);

		if (err) {
			status(status_fd, "error: hostfwd %s: %s", f->desc, strerror(err));
			return 1;
		}
		if (slirp_add_hostfwd(h.slirp, f->udp, f->host_addr, f->host_port,
				      f->guest_addr, f->guest_port) < 0) {
			status(status_fd, "error: hostfwd %s: libslirp refused it", f->desc);
			return 1;
		}
	}
	status(status_fd, "ready");
	close(status_fd);

	helper_loop(&h);
	slirp_cleanup(h.slirp);
	return 0;
}
