#include "api/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/fc_api.h"
#include "api/http.h"
#include "util/log.h"
#include "util/time.h"
#include "vmm/thread.h"

#define API_READ_CHUNK 16384
#define API_OUT_MAX (256 * 1024)	/* a client that reads nothing loses its connection */

struct api_conn {
	int fd;
	struct http_conn http;
	char *in;			/* received, not yet parsed */
	size_t in_len, in_cap;
	char *out;			/* to send */
	size_t out_len, out_off;
	bool eof, closing;		/* peer half-closed; close once out is sent */
	uint64_t busy_since, idle_since;	/* ms: request started / last activity */
	uint64_t out_since;		/* ms: answers waiting, last sent byte (or queued first) */
};

struct api_server {
	int listen_fd, kill_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct fc_api *api;
	size_t max_body;
	struct api_conn conns[API_MAX_CONNS];
	pthread_t thread;
	bool started;
};

static void conn_close(struct api_conn *c)
{
	if (c->fd < 0)
		return;
	close(c->fd);
	http_conn_fini(&c->http);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Queue bytes; false when the client has let too much pile up (then it is closed). */
static bool conn_queue(struct api_conn *c, const char *data, size_t len)
{
	if (c->out_len - c->out_off + len > API_OUT_MAX)
		return false;
	if (c->out_len == c->out_off)
		c->out_since = (uint64_t)time_now_ms();
	if (c->out_off) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	char *n = realloc(c->out, c->out_len + len);
	if (!n)
		return false;
	memcpy(n + c->out_len, data, len);
	c->out = n;
	c->out_len += len;
	return true;
}

static void conn_respond(struct api_conn *c, int status, const char *body, bool keep_alive)
{
	size_t len;
	char *r = http_format_response(status, body, keep_alive, &len);

	if (!r || !conn_queue(c, r, len))
		c->closing = true, c->out_len = c->out_off = 0;
	free(r);
	if (!keep_alive)
		c->closing = true;
}

static void conn_fault(struct api_conn *c, int status, const char *msg)
{
	char body[400];

	/* The message is ours (no quotes or backslashes), so it needs no escaping. */
	snprintf(body, sizeof(body), "{\"fault_message\":\"%s\"}", msg);
	conn_respond(c, status, body, false);
}

/* Parse what has arrived and answer every complete request. */
static void conn_process(struct api_server *s, struct api_conn *c)
{
	size_t off = 0;

	while (!c->closing) {
		size_t used;
		enum http_feed r = http_conn_feed(&c->http, c->in + off, c->in_len - off, &used);

		off += used;
		if (http_conn_wants_continue(&c->http)) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

			if (!conn_queue(c, cont, sizeof(cont) - 1))
				c->closing = true;
		}
		if (r == HTTP_FEED_ERROR) {
			log_info("api: closing a connection: %d %s", c->http.err_status, c->http.err_msg);
			conn_fault(c, c->http.err_status, c->http.err_msg);
			break;
		}
		if (r == HTTP_FEED_MORE) {
			if (c->eof && http_conn_eof(&c->http) == HTTP_FEED_ERROR) {
				conn_fault(c, c->http.err_status, c->http.err_msg);
			} else if (c->eof) {
				c->closing = true;
			}
			break;
		}
		struct fc_response resp;
		struct http_request *req = &c->http.req;

		fc_api_handle(s->api, req->method, req->path, req->body, req->body_len, &resp);
		log_info("api: %s %s -> %d", req->method, req->path, resp.status);
		conn_respond(c, resp.status, resp.body, req->keep_alive && !c->eof);
		fc_response_free(&resp);
		http_conn_next(&c->http);
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	if (http_conn_busy(&c->http) || c->in_len) {
		if (!c->busy_since)
			c->busy_since = (uint64_t)time_now_ms();
	} else {
		c->busy_since = 0;
	}
}

static void conn_read(struct api_server *s, struct api_conn *c)
{
	if (c->in_cap - c->in_len < API_READ_CHUNK) {
		char *n = realloc(c->in, c->in_len + API_READ_CHUNK);

		if (!n) {
			conn_close(c);
			return;
		}
		c->in = n;
		c->in_cap = c->in_len + API_READ_CHUNK;
	}
	ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		c->eof = true;		/* half-closed (or reset): answer what is complete */
		if (n < 0)
			c->closing = true;
	} else {
		c->in_len += (size_t)n;
	}
	c->idle_since = (uint64_t)time_now_ms();
	conn_process(s, c);
}

static void conn_write(struct api_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
		c->out_since = (uint64_t)time_now_ms();
	}
	c->out_off = c->out_len = 0;
	if (c->closing)
		conn_close(c);
}

static void server_accept(struct api_server *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct api_conn *slot = NULL, *idle = NULL;

	if (fd < 0)
		return;
	for (int i = 0; i < API_MAX_CONNS; i++) {
		struct api_conn *c = &s->conns[i];

		if (c->fd < 0) {
			slot = c;
			break;
		}
		if (!c->busy_since && !c->out_len && (!idle || c->idle_since < idle->idle_since))
			idle = c;
	}
	if (!slot && idle) {
		log_info("api: %d connections: closing the longest idle one", API_MAX_CONNS);
		conn_close(idle);
		slot = idle;
	}
	if (!slot) {
		static const char busy[] =
			"HTTP/1.1 429 Too Many Requests\r\nServer: Firecracker API\r\n"
			"Connection: close\r\nContent-Type: application/json\r\nContent-Length: 72\r\n\r\n"
			"{\"fault_message\":\"Too many API connections at once; try again later.\"}";

		log_warn("api: %d connections busy: refusing one more", API_MAX_CONNS);
		if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* it goes away all the same */
		}
		close(fd);
		return;
	}
	slot->fd = fd;
	http_conn_init(&slot->http, s->max_body);
	slot->idle_since = (uint64_t)time_now_ms();
}

static void server_timeouts(struct api_server *s)
{
	uint64_t now = (uint64_t)time_now_ms();

	for (int i = 0; i < API_MAX_CONNS; i++) {
		struct api_conn *c = &s->conns[i];

		if (c->fd >= 0 && c->busy_since && !c->closing &&
		    now - c->busy_since >= API_REQUEST_TIMEOUT_MS) {
			log_info("api: a request did not arrive whole within %d ms",
				 API_REQUEST_TIMEOUT_MS);
			conn_fault(c, 408, "The request did not arrive in time.");
			conn_write(c);
		} else if (c->fd >= 0 && c->out_len && now - c->out_since >= API_REQUEST_TIMEOUT_MS) {
			/* Else clients that send requests and read no answers keep every slot. */
			log_info("api: a client read none of its answers for %d ms: closing it",
				 API_REQUEST_TIMEOUT_MS);
			conn_close(c);
		}
	}
}

static void *server_thread(void *arg)
{
	struct api_server *s = arg;
	struct pollfd fds[API_MAX_CONNS + 2];
	int idx[API_MAX_CONNS + 2];

	for (;;) {
		nfds_t n = 0;

		fds[n++] = (struct pollfd){ .fd = s->kill_fd, .events = POLLIN };
		fds[n++] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
		for (int i = 0; i < API_MAX_CONNS; i++) {
			struct api_conn *c = &s->conns[i];

			if (c->fd < 0)
				continue;
			/* Backpressure: no new requests are read while answers wait. */
			short ev = c->out_len ? POLLOUT : (c->eof || c->closing) ? 0 : POLLIN;
			idx[n] = i;
			fds[n++] = (struct pollfd){ .fd = c->fd, .events = ev };
		}
		if (poll(fds, n, 1000) < 0 && errno != EINTR) {
			log_error("api: poll: %s", strerror(errno));
			break;
		}
		if (fds[0].revents)
			break;
		if (fds[1].revents & POLLIN)
			server_accept(s);
		for (nfds_t j = 2; j < n; j++) {
			struct api_conn *c = &s->conns[idx[j]];

			if (c->fd != fds[j].fd)
				continue;	/* replaced by server_accept() */
			if (fds[j].revents & POLLOUT)
				conn_write(c);
			else if (fds[j].revents & (POLLIN | POLLHUP | POLLERR))
				conn_read(s, c);
			if (c->fd >= 0 && c->out_len)
				conn_write(c);
			else if (c->fd >= 0 && c->closing && !c->out_len)
				conn_close(c);
			/* Pipelined requests that waited for the answers before them. */
			if (c->fd >= 0 && !c->out_len && c->in_len && !c->closing)
				conn_process(s, c);
		}
		server_timeouts(s);
		fc_api_tick(s->api);
	}
	return NULL;
}

struct api_server *api_server_start(const char *path, struct fc_api *api, size_t max_body)
{
	struct api_server *s = calloc(1, sizeof(*s));
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (!s) {
		log_error("out of memory");
		return NULL;
	}
	for (int i = 0; i < API_MAX_CONNS; i++)
		s->conns[i].fd = -1;
	s->api = api;
	s->max_body = max_body;
	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_error("--api-sock %s: longer than %zu bytes", path, sizeof(addr.sun_path) - 1);
		goto err_free;
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0) {
		log_error("API socket: %s", strerror(errno));
		goto err_free;
	}
	if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		log_error("--api-sock %s: %s%s", path, strerror(errno),
			  errno == EADDRINUSE ? " (remove it first, as with Firecracker)" : "");
		goto err_close;
	}
	if (listen(s->listen_fd, API_MAX_CONNS) < 0) {
		log_error("--api-sock %s: listen: %s", path, strerror(errno));
		goto err_unlink;
	}
	s->kill_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->kill_fd < 0) {
		log_error("eventfd: %s", strerror(errno));
		goto err_unlink;
	}
	if (thread_start(&s->thread, THREAD_API, "api", server_thread, s) < 0)
		goto err_kill;
	s->started = true;
	return s;

err_kill:
	close(s->kill_fd);
err_unlink:
	unlink(path);
err_close:
	close(s->listen_fd);
err_free:
	free(s);
	return NULL;
}

void api_server_stop(struct api_server *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	if (s->started) {
		if (write(s->kill_fd, &one, sizeof(one)) < 0) {
			/* the counter is already non-zero */
		}
		pthread_join(s->thread, NULL);
	}
	for (int i = 0; i < API_MAX_CONNS; i++)
		conn_close(&s->conns[i]);
	close(s->kill_fd);
	close(s->listen_fd);
	unlink(s->path);
	free(s);
}
