/*
 * Network backends: the stream protocol over a socketpair (framing, partial
 * writes, oversized frames, peer close) and TAP (open errors; a real TAP
 * device in a network namespace of our own when we may make one).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/net.h"
#include "util/log.h"

#include "helpers.h"

struct fixture {
	int sv[2];
	struct net_backend *nb;
	struct helper_log log;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->sv), 0);
	log_set_sink(helper_log_sink, &f->log);
	f->nb = net_stream_open(f->sv[0], "stream-test");
	assert_non_null(f->nb);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	net_backend_destroy(f->nb);
	if (f->sv[1] >= 0)
		close(f->sv[1]);
	log_set_sink(NULL, NULL);
	free(f);
	return 0;
}

static uint8_t pat(unsigned int frame, size_t i)
{
	return (uint8_t)(frame * 31 + i * 7 + (i >> 8));
}

static void fill(uint8_t *p, unsigned int frame, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pat(frame, i);
}

static void write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

/* Wait until recv gives a frame (it is non-blocking). */
static ssize_t recv_wait(struct net_backend *nb, void *buf, size_t len)
{
	double start = helper_now_ms();

	for (;;) {
		ssize_t n = nb->ops->recv(nb, buf, len);

		if (n != 0 || helper_now_ms() - start > 5000)
			return n;
		struct pollfd p = { .fd = nb->fd, .events = POLLIN };
		poll(&p, 1, 100);
	}
}

static void peer_frame(int fd, const void *data, uint32_t len)
{
	uint32_t be = htobe32(len);

	write_all(fd, &be, 4);
	write_all(fd, data, len);
}

static void test_stream_framing(void **state)
{
	struct fixture *f = *state;
	static uint8_t a[3000], b[NET_FRAME_MAX], got[NET_FRAME_MAX + 16];
	struct iovec iov[3];
	uint32_t be;

	assert_int_equal(f->nb->vnet_hdr_len, 0);
	assert_false(f->nb->offloads);
	/* Host to peer: a frame in three pieces gets one prefix. */
	fill(a, 1, sizeof(a));
	iov[0] = (struct iovec){ a, 14 };
	iov[1] = (struct iovec){ a + 14, 1000 };
	iov[2] = (struct iovec){ a + 1014, sizeof(a) - 1014 };
	assert_int_equal(f->nb->ops->send(f->nb, iov, 3), 0);
	fill(b, 2, sizeof(b));
	iov[0] = (struct iovec){ b, sizeof(b) };
	assert_int_equal(f->nb->ops->send(f->nb, iov, 1), 0);
	assert_int_equal(net_backend_flush(f->nb), 0);
	read_all(f->sv[1], &be, 4);
	assert_int_equal(be32toh(be), sizeof(a));
	read_all(f->sv[1], got, sizeof(a));
	assert_memory_equal(got, a, sizeof(a));
	read_all(f->sv[1], &be, 4);
	assert_int_equal(be32toh(be), NET_FRAME_MAX);
	read_all(f->sv[1], got, NET_FRAME_MAX);
	assert_memory_equal(got, b, NET_FRAME_MAX);
	/* Too large or empty: dropped for good (0) and counted, nothing written. */
	iov[0] = (struct iovec){ b, sizeof(b) };
	iov[1] = (struct iovec){ a, 1 };
	assert_int_equal(f->nb->ops->send(f->nb, iov, 2), 0);
	assert_int_equal(f->nb->ops->send(f->nb, iov, 0), 0);
	assert_int_equal(f->nb->tx_dropped, 2);

	/* Peer to host: nothing waiting is 0; a frame arriving a byte at a time. */
	assert_int_equal(f->nb->ops->recv(f->nb, got, sizeof(got)), 0);
	be = htobe32(100);
	uint8_t raw[104];
	memcpy(raw, &be, 4);
	fill(raw + 4, 3, 100);
	for (size_t i = 0; i < sizeof(raw); i++) {
		assert_int_equal(f->nb->ops->recv(f->nb, got, sizeof(got)), 0);
		write_all(f->sv[1], raw + i, 1);
	}
	assert_int_equal(recv_wait(f->nb, got, sizeof(got)), 100);
	assert_memory_equal(got, raw + 4, 100);
	/* Several frames in one write come out one per call, in order. */
	for (unsigned int k = 0; k < 5; k++) {
		fill(a, 10 + k, 200 + k);
		peer_frame(f->sv[1], a, 200 + k);
	}
	for (unsigned int k = 0; k < 5; k++) {
		fill(a, 10 + k, 200 + k);
		assert_int_equal(recv_wait(f->nb, got, sizeof(got)), 200 + k);
		assert_memory_equal(got, a, 200 + k);
	}
	assert_int_equal(f->nb->ops->recv(f->nb, got, sizeof(got)), 0);
	/* A frame larger than the caller's buffer is dropped and counted. */
	peer_frame(f->sv[1], a, 300);
	peer_frame(f->sv[1], a, 20);
	assert_int_equal(recv_wait(f->nb, got, 100), 20);
	assert_int_equal(f->nb->rx_dropped, 1);
	assert_int_equal(f->log.errors, 0);
}

static void test_stream_oversized(void **state)
{
	struct fixture *f = *state;
	static uint8_t big[NET_FRAME_MAX + 5000], got[NET_FRAME_MAX];
	uint32_t be;

	/* A length above the maximum, its bytes, an empty frame, then a good one. */
	memset(big, 0xab, sizeof(big));
	be = htobe32(4);	/* bytes inside that look like a prefix must not resync us */
	memcpy(big + 100, &be, 4);
	peer_frame(f->sv[1], big, sizeof(big));
	be = 0;
	write_all(f->sv[1], &be, 4);
	fill(big, 7, 64);
	peer_frame(f->sv[1], big, 64);
	assert_int_equal(recv_wait(f->nb, got, sizeof(got)), 64);
	assert_memory_equal(got, big, 64);
	assert_int_equal(f->nb->rx_dropped, 2);
	/* A huge announced length skipped byte for byte across many reads. */
	be = htobe32(0x7fffffff);
	write_all(f->sv[1], &be, 4);
	write_all(f->sv[1], big, 1000);
	assert_int_equal(f->nb->ops->recv(f->nb, got, sizeof(got)), 0);
	assert_int_equal(f->nb->rx_dropped, 3);
}

static void test_stream_partial_writes(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[60000], got[NET_FRAME_MAX];
	int small = 4096;
	unsigned int accepted = 0, received = 0, eagain = 0;
	struct iovec iov = { frame, sizeof(frame) };
	uint8_t *stream = NULL;
	size_t slen = 0, scap = 0, pos = 0;

	setsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(f->sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	assert_int_equal(fcntl(f->sv[1], F_SETFL, O_NONBLOCK), 0);
	/* Fill the socket until it refuses; the refused frame is not taken. */
	while (accepted < 40) {
		fill(frame, accepted, sizeof(frame));
		int ret = f->nb->ops->send(f->nb, &iov, 1);

		if (ret == -EAGAIN) {
			eagain++;
			/* Drain the peer a little, as a slow reader would, then try the same frame. */
			for (;;) {
				if (slen + 65536 > scap) {
					scap = scap ? 2 * scap : 1 << 20;
					stream = realloc(stream, scap);
					assert_non_null(stream);
				}
				ssize_t n = read(f->sv[1], stream + slen, 65536);
				if (n <= 0)
					break;
				slen += (size_t)n;
			}
			continue;
		}
		assert_int_equal(ret, 0);
		accepted++;
	}
	assert_true(eagain > 0);
	/* What a send left in part goes out on flush once there is room. */
	for (int tries = 0; tries < 100000; tries++) {
		int ret = net_backend_flush(f->nb);
		ssize_t n;

		if (slen + 65536 > scap) {
			scap = scap ? 2 * scap : 1 << 20;
			stream = realloc(stream, scap);
			assert_non_null(stream);
		}
		n = read(f->sv[1], stream + slen, 65536);
		if (n > 0)
			slen += (size_t)n;
		if (ret == 0 && n <= 0)
			break;
		assert_true(ret == 0 || ret == -EAGAIN);
	}
	/* Every accepted frame arrived whole, in order, nothing more. */
	while (pos + 4 <= slen) {
		uint32_t be;

		memcpy(&be, stream + pos, 4);
		assert_int_equal(be32toh(be), sizeof(frame));
		assert_true(pos + 4 + sizeof(frame) <= slen);
		fill(got, received, sizeof(frame));
		assert_memory_equal(stream + pos + 4, got, sizeof(frame));
		pos += 4 + sizeof(frame);
		received++;
	}
	assert_int_equal(pos, slen);
	assert_int_equal(received, accepted);
	assert_int_equal(f->nb->tx_dropped, 0);
	free(stream);
}

static void test_stream_peer_close(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[256], got[NET_FRAME_MAX];
	struct iovec iov = { buf, 60 };

	/* Frames sent before the close still arrive; then -EPIPE, every time. */
	fill(buf, 1, 60);
	peer_frame(f->sv[1], buf, 60);
	close(f->sv[1]);
	f->sv[1] = -1;
	assert_int_equal(recv_wait(f->nb, got, sizeof(got)), 60);
	assert_int_equal(f->nb->ops->recv(f->nb, got, sizeof(got)), -EPIPE);
	assert_int_equal(f->nb->ops->recv(f->nb, got, sizeof(got)), -EPIPE);
	/* Sending to a closed peer: no SIGPIPE, the frame is dropped and counted. */
	assert_int_equal(f->nb->ops->send(f->nb, &iov, 1), 0);
	assert_int_equal(f->nb->tx_dropped, 1);
	assert_int_equal(f->log.errors, 0);
	assert_int_equal(f->log.warnings, 1);	/* once */
	assert_non_null(strstr(f->log.last_warning, "stream-test"));
}

static void test_stream_open_errors(void **state)
{
	struct fixture *f = *state;
	int dg[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg), 0);
	close(dg[1]);
	assert_null(net_stream_open(dg[0], "dgram"));	/* closes dg[0] */
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "not a stream socket"));
	assert_int_equal(fcntl(dg[0], F_GETFD), -1);
}

/* ---- TAP ---- */

static void test_tap_missing(void **state)
{
	struct fixture *f = *state;

	assert_null(net_tap_open("bvnope-x7"));
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "bvnope-x7"));
	assert_non_null(strstr(f->log.last_error, "no such network device"));
	assert_null(net_tap_open("a-name-much-too-long-for-linux"));
	assert_int_equal(f->log.errors, 2);
	assert_non_null(strstr(f->log.last_error, "longer than"));
	/* "lo" exists but is no TAP device (only root gets that far; others: permission). */
	if (geteuid() == 0) {
		assert_null(net_tap_open("lo"));
		assert_int_equal(f->log.errors, 3);
		assert_non_null(strstr(f->log.last_error, "not a TAP device"));
	}
}

/* In the child (a fresh network namespace): 0 on success, else which check failed. */
static int tap_child(void)
{
	struct helper_log clog = { 0 };
	struct net_backend *nb, *nb2;
	uint8_t frame[12 + 64] = { 0 }, got[NET_FRAME_MAX + 12];
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	pid_t pid;
	int status;

	log_set_sink(helper_log_sink, &clog);
	/* As nobody: the device is root's, so no permission. */
	pid = fork();
	if (pid < 0)
		return 10;
	if (pid == 0) {
		struct helper_log glog = { 0 };

		log_set_sink(helper_log_sink, &glog);
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		_exit(!net_tap_open("bvtap0") && glog.errors == 1 &&
		      strstr(glog.last_error, "bvtap0") &&
		      strstr(glog.last_error, "permission denied") ? 0 : 1);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return 11;

	nb = net_tap_open("bvtap0");
	if (!nb)
		return 12;
	if (nb->vnet_hdr_len != sizeof(struct virtio_net_hdr_v1) || !nb->offloads)
		return 13;
	if (!(fcntl(nb->fd, F_GETFL) & O_NONBLOCK))
		return 14;
	/* One user at a time: a second open is refused, naming the device. */
	nb2 = net_tap_open("bvtap0");
	if (nb2 || clog.errors != 1 || !strstr(clog.last_error, "busy"))
		return 15;
	if (nb->ops->set_rx_offloads(nb, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4) < 0)
		return 16;

	/* ARP who-has 10.77.0.1 tell 10.77.0.2: the host kernel answers through the TAP. */
	uint8_t *e = frame + 12;
	memset(e, 0xff, 6);
	memcpy(e + 6, mac, 6);
	e[12] = 0x08, e[13] = 0x06;
	static const uint8_t arp[28] = { 0, 1, 8, 0, 6, 4, 0, 1,
					 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 77, 0, 2,
					 0, 0, 0, 0, 0, 0, 10, 77, 0, 1 };
	memcpy(e + 14, arp, sizeof(arp));
	struct iovec iov = { frame, 12 + 60 };
	if (nb->ops->send(nb, &iov, 1) != 0 || nb->tx_dropped)
		return 17;
	double start = helper_now_ms(), sent = start;
	for (;;) {
		ssize_t n = nb->ops->recv(nb, got, sizeof(got));

		if (n < 0)
			return 18;
		if (n >= 12 + 42 && got[12 + 12] == 0x08 && got[12 + 13] == 0x06 &&
		    got[12 + 21] == 2 && !memcmp(got + 12, mac, 6) &&
		    !memcmp(got + 12 + 28, (const uint8_t[]){ 10, 77, 0, 1 }, 4))
			break;	/* the ARP reply, to us, from 10.77.0.1 */
		if (helper_now_ms() - start > 5000)
			return 19;
		/* The first reply can be lost while the link settles: ask again. */
		if (helper_now_ms() - sent > 500) {
			if (nb->ops->send(nb, &iov, 1) != 0)
				return 17;
			sent = helper_now_ms();
		}
		if (n == 0) {
			struct pollfd p = { .fd = nb->fd, .events = POLLIN };
			poll(&p, 1, 100);
		}
	}
	net_backend_destroy(nb);
	return 0;
}

static void test_tap_netns(void **state)
{
	struct fixture *f = *state;
	pid_t pid;
	int status;

	(void)f;
	if (geteuid() != 0 || !helper_have_tool("ip"))
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Our own namespace: the TAP device vanishes with it. */
		if (unshare(CLONE_NEWNET) < 0)
			_exit(77);
		if (helper_shell("ip tuntap add dev bvtap0 mode tap && ip link set lo up && "
				 "ip addr add 10.77.0.1/24 dev bvtap0 && "
				 "ip link set bvtap0 up") != 0)
			_exit(77);
		_exit(tap_child());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		print_message("# SKIP: cannot make a network namespace with a TAP device here\n");
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stream_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_partial_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_peer_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tap_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tap_netns, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
