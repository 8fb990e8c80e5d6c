/*
 * Frames over a stream socket, each preceded by its length as a 32-bit
 * big-endian number (passt's and QEMU's "-netdev stream" protocol).
 *
 * The socket is non-blocking; each direction has one buffer so partial
 * reads and writes resume where they stopped:
 *  - out: at most one frame (its prefix and tail) that the socket took only
 *    in part; while it is not flushed, send() answers -EAGAIN, so memory
 *    stays bounded by one frame whatever the guest sends;
 *  - in: bytes read but not yet handed over, at most one maximal frame plus
 *    its prefix. A length above NET_FRAME_MAX (or 0) is skipped exactly,
 *    byte for byte, and counted: the stream stays in step.
 */
#include "backends/net.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

#define STREAM_PREFIX	4u
#define STREAM_IN_SIZE	(STREAM_PREFIX + NET_FRAME_MAX)
#define STREAM_OUT_SIZE	(STREAM_PREFIX + NET_FRAME_MAX)

struct net_stream {
	struct net_backend nb;
	bool dead;			/* the peer closed or the socket failed */
	bool dead_logged;
	/* in: bytes [in_off, in_end) of in_buf are unparsed */
	size_t in_off, in_end;
	uint64_t skip;			/* bytes of an oversized frame still to skip */
	/* out: bytes [out_off, out_end) of out_buf are still to write */
	size_t out_off, out_end;
	uint8_t in_buf[STREAM_IN_SIZE];
	uint8_t out_buf[STREAM_OUT_SIZE];
};

static struct net_stream *to_stream(struct net_backend *nb)
{
	return (struct net_stream *)nb;
}

static void stream_die(struct net_stream *s, int err)
{
	s->dead = true;
	if (s->dead_logged)
		return;
	s->dead_logged = true;
	if (err == EPIPE || err == ECONNRESET || err == 0)
		log_warn("%s: the network peer closed the connection", s->nb.name);
	else
		log_warn("%s: network stream: %s", s->nb.name, strerror(err));
}

/* Write out_buf; 0 when empty, -EAGAIN when bytes remain, -EPIPE when dead. */
static int stream_flush(struct net_backend *nb)
{
	struct net_stream *s = to_stream(nb);

	while (s->out_off < s->out_end) {
		ssize_t n;

		if (s->dead) {
			s->out_off = s->out_end = 0;
			return -EPIPE;
		}
		n = send(nb->fd, s->out_buf + s->out_off, s->out_end - s->out_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -EAGAIN;
			stream_die(s, errno);
			continue;
		}
		s->out_off += (size_t)n;
	}
	s->out_off = s->out_end = 0;
	return 0;
}

/* Keep bytes [skip, total) of prefix + frame for later. */
static void stream_keep_tail(struct net_stream *s, const uint8_t prefix[STREAM_PREFIX],
			     const struct iovec *iov, unsigned int iovcnt, size_t skip)
{
	size_t pos = 0, end = 0;

	for (size_t k = 0; k < STREAM_PREFIX; k++, pos++)
		if (pos >= skip)
			s->out_buf[end++] = prefix[k];
	for (unsigned int i = 0; i < iovcnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len, from = 0;

		if (pos + len <= skip) {
			pos += len;
			continue;
		}
		if (pos < skip)
			from = skip - pos;
		memcpy(s->out_buf + end, p + from, len - from);
		end += len - from;
		pos += len;
	}
	s->out_off = 0;
	s->out_end = end;
}

static int stream_send(struct net_backend *nb, const struct iovec *iov, unsigned int iovcnt)
{
	struct net_stream *s = to_stream(nb);
	struct iovec v[1 + 64];
	uint8_t prefix[STREAM_PREFIX];
	uint32_t be;
	size_t len = 0, total;
	struct msghdr msg = { .msg_iov = v };
	ssize_t n;
	int ret;

	for (unsigned int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len == 0 || len > NET_FRAME_MAX || iovcnt > 64) {
		nb->tx_dropped++;
		return 0;
	}
	ret = stream_flush(nb);
	if (ret == -EAGAIN)
		return -EAGAIN;
	if (s->dead) {
		nb->tx_dropped++;
		return 0;
	}
	be = htobe32((uint32_t)len);
	memcpy(prefix, &be, sizeof(prefix));
	v[0] = (struct iovec){ prefix, sizeof(prefix) };
	memcpy(v + 1, iov, iovcnt * sizeof(*iov));
	msg.msg_iovlen = 1 + iovcnt;
	total = len + sizeof(prefix);
	for (;;) {
		n = sendmsg(nb->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;	/* nothing of it went out: the caller keeps it */
		stream_die(s, errno);
		nb->tx_dropped++;
		return 0;
	}
	if ((size_t)n < total)
		stream_keep_tail(s, prefix, iov, iovcnt, (size_t)n);
	return 0;
}

/* Parse one frame out of in_buf: its length into buf, 0 if incomplete. */
static ssize_t stream_parse(struct net_stream *s, void *buf, size_t len)
{
	for (;;) {
		size_t avail = s->in_end - s->in_off;
		uint32_t flen;

		if (s->skip) {
			size_t k = avail < s->skip ? avail : (size_t)s->skip;

			s->in_off += k;
			s->skip -= k;
			if (s->skip)
				return 0;
			continue;
		}
		if (avail < STREAM_PREFIX)
			return 0;
		memcpy(&flen, s->in_buf + s->in_off, sizeof(flen));
		flen = be32toh(flen);
		if (flen == 0 || flen > NET_FRAME_MAX) {
			/* Not a frame we can take: skip its bytes, stay in step. */
			s->nb.rx_dropped++;
			s->in_off += STREAM_PREFIX;
			s->skip = flen;
			continue;
		}
		if (avail < STREAM_PREFIX + flen)
			return 0;
		s->in_off += STREAM_PREFIX;
		if (flen > len) {
			s->nb.rx_dropped++;
			s->in_off += flen;
			continue;
		}
		memcpy(buf, s->in_buf + s->in_off, flen);
		s->in_off += flen;
		return flen;
	}
}

static ssize_t stream_recv(struct net_backend *nb, void *buf, size_t len)
{
	struct net_stream *s = to_stream(nb);

	for (;;) {
		ssize_t got = stream_parse(s, buf, len);
		ssize_t n;

		if (got > 0)
			return got;
		if (s->dead)
			return -EPIPE;
		/* Room for a whole maximal frame after what is left. */
		if (s->in_off) {
			memmove(s->in_buf, s->in_buf + s->in_off, s->in_end - s->in_off);
			s->in_end -= s->in_off;
			s->in_off = 0;
		}
		n = recv(nb->fd, s->in_buf + s->in_end, sizeof(s->in_buf) - s->in_end, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			stream_die(s, errno);
			return -EPIPE;
		}
		if (n == 0) {
			stream_die(s, 0);
			return -EPIPE;
		}
		s->in_end += (size_t)n;
	}
}

static void stream_destroy(struct net_backend *nb)
{
	close(nb->fd);
	free(nb);
}

static const struct net_backend_ops stream_ops = {
	.send = stream_send,
	.recv = stream_recv,
	.destroy = stream_destroy,
	.flush = stream_flush,
};

struct net_backend *net_stream_open(int fd, const char *name)
{
	struct net_stream *s;
	int type = 0, flags;
	socklen_t tlen = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM) {
		log_error("%s: fd %d is not a stream socket", name, fd);
		goto err_close;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		log_error("%s: cannot make the socket non-blocking: %s", name, strerror(errno));
		goto err_close;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		log_error("%s: out of memory", name);
		goto err_close;
	}
	s->nb.ops = &stream_ops;
	s->nb.fd = fd;
	snprintf(s->nb.name, sizeof(s->nb.name), "%s", name);
	return &s->nb;

err_close:
	close(fd);
	return NULL;
}
