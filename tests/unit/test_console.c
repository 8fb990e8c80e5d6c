/* backends/console.c: output ring and writer, file target, input, terminal handling. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "backends/console.h"
#include "util/log.h"
#include "vmm/config.h"

#include "helpers.h"

/* ---- Output ---- */

static void test_output_unread_pipe_never_blocks(void **state)
{
	int p[2];
	uint8_t chunk[4096];
	struct console *c;

	memset(chunk, 'o', sizeof(chunk));
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	c = console_open_fds(CONSOLE_STDIO, -1, p[1]);
	assert_non_null(c);
	assert_int_equal(console_start(c), 0);

	/* 4 MiB into a 64 KiB ring in front of a 64 KiB pipe nobody reads. */
	double t0 = helper_now_ms();
	size_t queued = 0;
	for (int i = 0; i < 1024; i++)
		queued += console_write(c, chunk, sizeof(chunk));
	assert_true(helper_now_ms() - t0 < 2000);
	assert_true(queued <= 64 * 1024 + 64 * 1024 + 4 * PIPE_BUF);
	assert_int_equal(console_dropped(c), 1024 * sizeof(chunk) - queued);
	/* Once the writer has filled the pipe, the ring fills up for good. */
	size_t total = 1024 * sizeof(chunk);
	t0 = helper_now_ms();
	while (console_write_room(c) > 0 || helper_now_ms() - t0 < 100) {
		assert_true(helper_now_ms() - t0 < 5000);
		total += sizeof(chunk);
		console_write(c, chunk, sizeof(chunk));
		usleep(1000);
	}
	assert_int_equal(console_write_room(c), 0);

	/* Stopping gives up on what is queued within about the timeout. */
	t0 = helper_now_ms();
	console_stop(c, 200);
	double took = helper_now_ms() - t0;
	assert_true(took >= 150);
	assert_true(took < 1000);	/* well short of the timeout plus the join grace */
	int in_pipe = 0;
	assert_int_equal(ioctl(p[0], FIONREAD, &in_pipe), 0);
	assert_true(in_pipe >= 60 * 1024);
	assert_int_equal(console_dropped(c), total - (size_t)in_pipe);
	/* A second stop is harmless and quick. */
	t0 = helper_now_ms();
	console_stop(c, 200);
	assert_true(helper_now_ms() - t0 < 150);	/* not another wait */
	console_close(c);
	close(p[0]);
	close(p[1]);
}

struct collector {
	int fd;
	uint8_t *buf;
	size_t cap, len;
};

static void *collect(void *opaque)
{
	struct collector *k = opaque;
	ssize_t n;

	while (k->len < k->cap && (n = read(k->fd, k->buf + k->len, k->cap - k->len)) > 0)
		k->len += (size_t)n;
	return NULL;
}

static void test_output_read_pipe_in_order(void **state)
{
	int p[2];
	const size_t total = 1 << 20;
	uint8_t *src = malloc(total);
	struct collector k = { .buf = malloc(total), .cap = total };
	struct console *c;
	pthread_t t;

	assert_non_null(src);
	assert_non_null(k.buf);
	for (size_t i = 0; i < total; i++)
		src[i] = (uint8_t)(i * 7 + (i >> 11));
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	k.fd = p[0];
	c = console_open_fds(CONSOLE_STDIO, -1, p[1]);
	assert_non_null(c);
	assert_int_equal(console_start(c), 0);
	assert_int_equal(pthread_create(&t, NULL, collect, &k), 0);

	/* Write only as fast as there is room, as a THRE-polling UART does. */
	size_t off = 0;
	double t0 = helper_now_ms();
	while (off < total) {
		size_t room = console_write_room(c);
		size_t n = total - off < 1000 ? total - off : 1000;
		if (room < n) {
			assert_true(helper_now_ms() - t0 < 10000);
			usleep(100);
			continue;
		}
		assert_int_equal(console_write(c, src + off, n), n);
		off += n;
	}
	console_stop(c, 5000);
	pthread_join(t, NULL);
	assert_int_equal(console_dropped(c), 0);
	assert_int_equal(k.len, total);
	assert_memory_equal(k.buf, src, total);
	console_close(c);
	close(p[0]);
	close(p[1]);
	free(src);
	free(k.buf);
}

struct room_count {
	pthread_mutex_t lock;
	int calls;
};

static void on_room(void *opaque)
{
	struct room_count *r = opaque;

	helper_locked_inc(&r->lock, &r->calls);
}

static int room_calls(struct room_count *r)
{
	return helper_locked_get(&r->lock, &r->calls);
}

/* Nothing queued and a pipe: console_write() writes itself, before it returns. */
static void test_output_direct_then_queued_in_order(void **state)
{
	int p[2], in_pipe = 0;
	uint8_t src[6100], got[6100];
	size_t len = 0;
	struct console *c;

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i % 251);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
	c = console_open_fds(CONSOLE_STDIO, -1, p[1]);
	assert_non_null(c);
	assert_int_equal(console_start(c), 0);

	assert_int_equal(console_write(c, src, 3000), 3000);
	assert_int_equal(ioctl(p[0], FIONREAD, &in_pipe), 0);
	assert_int_equal(in_pipe, 3000);
	/* The pipe is nearly full: the rest waits in the ring, behind it. */
	assert_int_equal(console_write(c, src + 3000, 3000), 3000);
	assert_int_equal(console_write(c, src + 6000, 100), 100);

	double t0 = helper_now_ms();
	while (len < sizeof(got)) {
		ssize_t n = read(p[0], got + len, sizeof(got) - len);
		assert_true(n > 0);
		len += (size_t)n;
		assert_true(helper_now_ms() - t0 < 5000);
	}
	assert_memory_equal(got, src, sizeof(src));
	assert_int_equal(console_dropped(c), 0);
	console_stop(c, 1000);
	console_close(c);
	close(p[0]);
	close(p[1]);
}

static void test_room_handler(void **state)
{
	int p[2];
	uint8_t chunk[4096];
	struct room_count r = { .calls = 0 };
	struct console *c;

	pthread_mutex_init(&r.lock, NULL);
	memset(chunk, 'r', sizeof(chunk));
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
	c = console_open_fds(CONSOLE_STDIO, -1, p[1]);
	assert_non_null(c);
	console_set_room_handler(c, on_room, &r);
	assert_int_equal(console_start(c), 0);

	/* Room draining normally is no news: nobody found it short. */
	console_write(c, chunk, 100);
	usleep(20 * 1000);
	assert_int_equal(room_calls(&r), 0);
	while (console_write_room(c) > 0)
		console_write(c, chunk, sizeof(chunk));
	assert_int_equal(console_write_room(c), 0);
	usleep(20 * 1000);
	assert_int_equal(room_calls(&r), 0);

	/* The reader catches up: the handler runs. */
	double t0 = helper_now_ms();
	for (;;) {
		uint8_t buf[4096];
		if (read(p[0], buf, sizeof(buf)) < 0)
			break;
		if (room_calls(&r))
			break;
		assert_true(helper_now_ms() - t0 < 5000);
	}
	assert_true(console_write_room(c) > 0);
	console_stop(c, 0);
	console_close(c);
	close(p[0]);
	close(p[1]);
	pthread_mutex_destroy(&r.lock);
}

static void test_output_epipe(void **state)
{
	struct helper_log cap = { 0 };
	uint8_t chunk[1000];
	int p[2];
	struct console *c;

	memset(chunk, 'e', sizeof(chunk));
	log_set_sink(helper_log_sink, &cap);
	/* Reader gone after the console opened its end. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	c = console_open_fds(CONSOLE_STDIO, -1, p[1]);
	assert_non_null(c);
	assert_int_equal(console_start(c), 0);
	close(p[0]);
	assert_int_equal(console_write(c, chunk, sizeof(chunk)), sizeof(chunk));
	double t0 = helper_now_ms();
	while (console_dropped(c) < sizeof(chunk)) {
		assert_true(helper_now_ms() - t0 < 5000);
		usleep(1000);
	}
	/* From now on output is counted and discarded, and never waits. */
	assert_true(console_write_room(c) > 0);
	assert_int_equal(console_write(c, chunk, sizeof(chunk)), 0);
	assert_int_equal(console_dropped(c), 2 * sizeof(chunk));
	assert_int_equal(cap.warnings, 1);
	assert_non_null(strstr(cap.last_warning, "Broken pipe"));
	console_stop(c, 200);
	console_close(c);
	close(p[1]);

	/* Reader gone before it opened. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	c = console_open_fds(CONSOLE_STDIO, -1, p[1]);
	assert_non_null(c);
	assert_int_equal(console_start(c), 0);
	console_write(c, chunk, sizeof(chunk));
	console_stop(c, 200);
	assert_int_equal(console_dropped(c), sizeof(chunk));
	console_close(c);
	close(p[1]);
	log_set_sink(NULL, NULL);
}

struct seen {
	size_t len;
	uint8_t buf[64];
};

static void observe(void *opaque, const uint8_t *buf, size_t len)
{
	struct seen *s = opaque;

	for (size_t i = 0; i < len && s->len < sizeof(s->buf); i++)
		s->buf[s->len++] = buf[i];
}

static void test_none(void **state)
{
	struct vm_config cfg = { .console = CONSOLE_NONE };
	struct seen seen = { 0 };
	struct console *c = console_open(&cfg);

	assert_non_null(c);
	console_set_observer(c, observe, &seen);
	assert_int_equal(console_start(c), 0);
	assert_int_equal(console_write(c, (const uint8_t *)"hello", 5), 5);
	assert_true(console_write_room(c) > 0);
	assert_int_equal(seen.len, 5);
	assert_memory_equal(seen.buf, "hello", 5);
	console_input_ready(c);		/* no input: a no-op */
	console_stop(c, 100);
	assert_int_equal(console_dropped(c), 0);
	console_close(c);
}

static void test_file_appends(void **state)
{
	char path[] = "/tmp/bootvm-test-console-XXXXXX";
	struct vm_config cfg = { .console = CONSOLE_FILE, .console_path = path };
	struct seen seen = { 0 };
	char buf[64] = { 0 };
	struct stat st;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "old\n", 4), 4);
	close(fd);

	for (int round = 0; round < 2; round++) {
		struct console *c = console_open(&cfg);
		assert_non_null(c);
		console_set_observer(c, observe, &seen);
		assert_int_equal(console_start(c), 0);
		assert_int_equal(console_write(c, (const uint8_t *)"new\n", 4), 4);
		console_stop(c, 2000);
		console_close(c);
	}
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 12);
	assert_string_equal(buf, "old\nnew\nnew\n");
	close(fd);
	assert_int_equal(seen.len, 8);
	assert_int_equal(stat(path, &st), 0);
	unlink(path);

	/* A fresh file is created 0644 (less the umask). */
	mode_t old = umask(022);
	struct console *c = console_open(&cfg);
	assert_non_null(c);
	console_close(c);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	umask(old);
	unlink(path);
}

static void test_file_bad_path(void **state)
{
	struct helper_log cap = { 0 };
	struct vm_config cfg = { .console = CONSOLE_FILE,
				 .console_path = "/nonexistent-dir/bootvm/console.log" };

	log_set_sink(helper_log_sink, &cap);
	assert_null(console_open(&cfg));
	log_set_sink(NULL, NULL);
	assert_int_equal(cap.errors, 1);
	assert_non_null(strstr(cap.last_error, "/nonexistent-dir/bootvm/console.log"));
	assert_non_null(strstr(cap.last_error, "No such file or directory"));
}

/* ---- Input ---- */

struct receiver {
	pthread_mutex_t lock;
	bool accept;
	size_t max;		/* most bytes taken per call */
	int calls;
	size_t len;
	uint8_t buf[4096];
	int quits;
	int powers;		/* C-a p */
};

static size_t receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct receiver *r = opaque;
	size_t n = 0;

	pthread_mutex_lock(&r->lock);
	r->calls++;
	if (r->accept) {
		n = len < r->max ? len : r->max;
		if (n > sizeof(r->buf) - r->len)
			n = sizeof(r->buf) - r->len;
		memcpy(r->buf + r->len, buf, n);
		r->len += n;
	}
	pthread_mutex_unlock(&r->lock);
	return n;
}

static void on_quit(void *opaque)
{
	struct receiver *r = opaque;

	helper_locked_inc(&r->lock, &r->quits);
}

static void on_power(void *opaque)
{
	struct receiver *r = opaque;

	helper_locked_inc(&r->lock, &r->powers);
}

/* Read a receiver field under its lock. */
#define RCV(r, field) ({ pthread_mutex_lock(&(r)->lock); __typeof__((r)->field) v_ = (r)->field; \
			 pthread_mutex_unlock(&(r)->lock); v_; })

static void receiver_init(struct receiver *r, bool accept, size_t max)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->accept = accept;
	r->max = max;
}

/* Wait until the receiver holds n bytes. */
static void wait_received(struct receiver *r, size_t n)
{
	double t0 = helper_now_ms();

	while (RCV(r, len) < n) {
		assert_true(helper_now_ms() - t0 < 5000);
		usleep(1000);
	}
}

static void test_input_pipe_and_eof(void **state)
{
	struct receiver r;
	int in[2], out[2];
	struct console *c;

	receiver_init(&r, true, SIZE_MAX);
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	c = console_open_fds(CONSOLE_STDIO, in[0], out[1]);
	assert_non_null(c);
	console_set_input(c, receive, &r);
	console_set_quit_handler(c, on_quit, &r);
	assert_int_equal(console_start(c), 0);

	/* Not a terminal: Ctrl-A is just a byte, and no escapes happen. */
	assert_int_equal(write(in[1], "hi\x01x\x01\x01!", 7), 7);
	wait_received(&r, 7);
	assert_memory_equal(r.buf, "hi\x01x\x01\x01!", 7);
	assert_int_equal(RCV(&r, quits), 0);

	/* EOF: reading stops, nothing else happens, and output still works. */
	close(in[1]);
	usleep(20 * 1000);
	int calls = RCV(&r, calls);
	usleep(20 * 1000);
	assert_int_equal(RCV(&r, calls), calls);
	assert_int_equal(console_write(c, (const uint8_t *)"out", 3), 3);
	console_stop(c, 1000);
	char buf[8];
	assert_int_equal(read(out[0], buf, sizeof(buf)), 3);
	assert_int_equal(RCV(&r, quits), 0);
	console_close(c);
	close(in[0]);
	close(out[0]);
	close(out[1]);
	pthread_mutex_destroy(&r.lock);
}

static void test_input_backpressure(void **state)
{
	struct receiver r;
	uint8_t msg[300];
	int in[2];
	int avail = 0;
	struct console *c;

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	receiver_init(&r, false, 16);
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	c = console_open_fds(CONSOLE_STDIO, in[0], -1);
	assert_non_null(c);
	console_set_input(c, receive, &r);
	assert_int_equal(console_start(c), 0);

	assert_int_equal(write(in[1], msg, sizeof(msg)), sizeof(msg));
	double t0 = helper_now_ms();
	while (RCV(&r, calls) == 0) {
		assert_true(helper_now_ms() - t0 < 5000);
		usleep(1000);
	}
	/* Refused: no retrying on its own, and stdin is not read further. */
	usleep(50 * 1000);
	assert_int_equal(RCV(&r, calls), 1);
	assert_int_equal(RCV(&r, len), 0);
	assert_int_equal(ioctl(in[0], FIONREAD, &avail), 0);
	assert_true(avail >= (int)sizeof(msg) - 256);
	assert_true(avail < (int)sizeof(msg));

	/* Ready: it takes 16 per call; each refusal waits for the next ready. */
	pthread_mutex_lock(&r.lock);
	r.accept = true;
	pthread_mutex_unlock(&r.lock);
	console_input_ready(c);
	wait_received(&r, 16);
	usleep(20 * 1000);
	assert_int_equal(RCV(&r, len), 16);
	while (RCV(&r, len) < sizeof(msg)) {
		size_t before = RCV(&r, len);
		console_input_ready(c);
		wait_received(&r, before + 1);
	}
	assert_memory_equal(r.buf, msg, sizeof(msg));
	console_stop(c, 100);
	console_close(c);
	close(in[0]);
	close(in[1]);
	pthread_mutex_destroy(&r.lock);
}

/* Run fn with fd 2 going into a pipe; return what it wrote. */
static size_t with_stderr_captured(void (*fn)(void *), void *arg, char *out, size_t cap)
{
	int p[2], saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_true(saved >= 0);
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	fn(arg);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = read(p[0], out, cap - 1);
	out[n > 0 ? n : 0] = 0;
	close(p[0]);
	close(p[1]);
	return n > 0 ? (size_t)n : 0;
}

static void log_line(void *arg)
{
	log_error("%s", (const char *)arg);
}

struct pty_typing {
	int master;
	const char *keys;
	struct receiver *r;
	size_t expect;
};

static void type_and_wait(void *arg)
{
	struct pty_typing *t = arg;

	assert_int_equal(write(t->master, t->keys, strlen(t->keys)), (ssize_t)strlen(t->keys));
	wait_received(t->r, t->expect);
	usleep(20 * 1000);	/* let the help text land */
}

/*
 * A console on a new pseudo-terminal's slave side (its settings before, in
 * *orig if asked), output into the pipe out[], input to r, quit counted in r.
 */
static struct console *pty_console_start(struct receiver *r, int *master, int *slave, int out[2],
					 struct termios *orig)
{
	struct console *c;

	assert_int_equal(openpty(master, slave, NULL, NULL, NULL), 0);
	if (orig)
		assert_int_equal(tcgetattr(*slave, orig), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	c = console_open_fds(CONSOLE_STDIO, *slave, out[1]);
	assert_non_null(c);
	console_set_input(c, receive, r);
	console_set_quit_handler(c, on_quit, r);
	console_set_power_handler(c, on_power, r);
	assert_int_equal(console_start(c), 0);
	return c;
}

static void pty_console_close(struct console *c, struct receiver *r, int master, int slave,
			      int out[2])
{
	console_close(c);
	close(master);
	close(slave);
	close(out[0]);
	close(out[1]);
	pthread_mutex_destroy(&r->lock);
}

static void test_pty_raw_mode_and_escapes(void **state)
{
	struct receiver r;
	struct termios orig, now;
	int master, slave, out[2];
	char err[512];
	struct console *c;

	receiver_init(&r, true, SIZE_MAX);
	c = pty_console_start(&r, &master, &slave, out, &orig);
	assert_true(orig.c_lflag & ICANON);
	assert_true(orig.c_lflag & ECHO);

	/* Raw while running: no line editing, echo, signals or output processing. */
	assert_int_equal(tcgetattr(slave, &now), 0);
	assert_false(now.c_lflag & (ICANON | ECHO | ISIG | IEXTEN));
	assert_false(now.c_iflag & (ICRNL | IXON));
	assert_false(now.c_oflag & OPOST);
	assert_int_equal(now.c_cc[VMIN], 1);
	/* Our own messages end in \r\n meanwhile. */
	with_stderr_captured(log_line, "raw", err, sizeof(err));
	assert_string_equal(err, "bootvm: raw\r\n");

	/* C-a C-a sends one C-a; C-a z drops both; C-a h prints the help. */
	struct pty_typing t = { master, "a\x01\x01" "b\x01zc\x03\r\x01h" "d", &r, 7 };
	with_stderr_captured(type_and_wait, &t, err, sizeof(err));
	assert_int_equal(RCV(&r, len), 7);
	assert_memory_equal(r.buf, "a\x01" "bc\x03\rd", 7);
	assert_non_null(strstr(err, "C-a x"));
	assert_non_null(strstr(err, "C-a p"));
	assert_non_null(strstr(err, "\r\n"));
	assert_null(strstr(err, "\n\n"));
	assert_int_equal(RCV(&r, quits), 0);
	assert_int_equal(RCV(&r, powers), 0);

	/* C-a p calls the power handler, once per sequence, and sends nothing to the guest. */
	assert_int_equal(write(master, "\x01p\x01p", 4), 4);
	double tp = helper_now_ms();
	while (RCV(&r, powers) < 2) {
		assert_true(helper_now_ms() - tp < 5000);
		usleep(1000);
	}
	assert_int_equal(RCV(&r, len), 7);
	assert_int_equal(RCV(&r, quits), 0);

	/* C-a x quits (and nothing reaches the guest); a C-a split across reads works. */
	assert_int_equal(write(master, "\x01", 1), 1);
	usleep(20 * 1000);
	assert_int_equal(write(master, "x", 1), 1);
	double t0 = helper_now_ms();
	while (RCV(&r, quits) == 0) {
		assert_true(helper_now_ms() - t0 < 5000);
		usleep(1000);
	}
	assert_int_equal(RCV(&r, len), 7);

	/* Stopping restores the terminal exactly. */
	console_stop(c, 100);
	assert_int_equal(tcgetattr(slave, &now), 0);
	assert_int_equal(now.c_lflag, orig.c_lflag);
	assert_int_equal(now.c_iflag, orig.c_iflag);
	assert_int_equal(now.c_oflag, orig.c_oflag);
	assert_int_equal(now.c_cflag, orig.c_cflag);
	assert_memory_equal(now.c_cc, orig.c_cc, sizeof(orig.c_cc));
	with_stderr_captured(log_line, "cooked", err, sizeof(err));
	assert_string_equal(err, "bootvm: cooked\n");
	pty_console_close(c, &r, master, slave, out);
}

/* A guest that never reads its console cannot trap the user: Ctrl-A x still quits. */
struct stuck_typing {
	int master;
	struct receiver *r;
	double quit_after_ms;
};

static void type_into_stuck_guest(void *arg)
{
	struct stuck_typing *t = arg;
	char keys[600];

	/* More than the input buffer holds, so some keys are dropped (and said so). */
	memset(keys, 'k', sizeof(keys));
	assert_int_equal(write(t->master, keys, sizeof(keys)), (ssize_t)sizeof(keys));
	double t0 = helper_now_ms();
	assert_int_equal(write(t->master, "\x01x", 2), 2);
	while (RCV(t->r, quits) == 0) {
		assert_true(helper_now_ms() - t0 < 5000);
		usleep(1000);
	}
	t->quit_after_ms = helper_now_ms() - t0;
	usleep(20 * 1000);	/* let the warning land */
}

static void test_pty_escape_with_stuck_guest(void **state)
{
	struct receiver r;
	int master, slave, out[2];
	char err[512];
	struct console *c;

	receiver_init(&r, false, SIZE_MAX);	/* takes nothing, ever */
	c = pty_console_start(&r, &master, &slave, out, NULL);

	struct stuck_typing t = { master, &r, 0 };
	with_stderr_captured(type_into_stuck_guest, &t, err, sizeof(err));
	assert_int_equal(RCV(&r, quits), 1);
	assert_true(t.quit_after_ms < 3000);
	assert_int_equal(RCV(&r, len), 0);
	assert_non_null(strstr(err, "not reading its console"));
	assert_non_null(strstr(err, "\r\n"));

	pty_console_close(c, &r, master, slave, out);
}

/* A crash while in raw mode still gives the terminal back. */
static void test_pty_restored_on_abort(void **state)
{
	struct termios orig, now;
	int master, slave, status;
	pid_t pid;

	assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
	assert_int_equal(tcgetattr(slave, &orig), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Out of cmocka's hands: faults take their default action. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGABRT, SIG_DFL);
		struct console *c = console_open_fds(CONSOLE_STDIO, slave, -1);
		struct termios t;
		if (!c || console_start(c) < 0 || tcgetattr(slave, &t) < 0 || (t.c_lflag & ICANON))
			_exit(1);
		abort();
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_int_equal(tcgetattr(slave, &now), 0);
	assert_int_equal(now.c_lflag, orig.c_lflag);
	assert_int_equal(now.c_oflag, orig.c_oflag);

	/* The same for a fault, and for a normal exit() without console_stop(). */
	for (int how = 0; how < 2; how++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			signal(SIGSEGV, SIG_DFL);
			struct console *c = console_open_fds(CONSOLE_STDIO, slave, -1);
			struct termios t;
			if (!c || console_start(c) < 0 || tcgetattr(slave, &t) < 0 || (t.c_lflag & ICANON))
				_exit(1);
			if (how == 0)
				raise(SIGSEGV);
			exit(0);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (how == 0)
			assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
		else
			assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		assert_int_equal(tcgetattr(slave, &now), 0);
		assert_int_equal(now.c_lflag, orig.c_lflag);
	}
	close(master);
	close(slave);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_output_unread_pipe_never_blocks),
		cmocka_unit_test(test_output_read_pipe_in_order),
		cmocka_unit_test(test_output_direct_then_queued_in_order),
		cmocka_unit_test(test_room_handler),
		cmocka_unit_test(test_output_epipe),
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_file_appends),
		cmocka_unit_test(test_file_bad_path),
		cmocka_unit_test(test_input_pipe_and_eof),
		cmocka_unit_test(test_input_backpressure),
		cmocka_unit_test(test_pty_raw_mode_and_escapes),
		cmocka_unit_test(test_pty_escape_with_stuck_guest),
		cmocka_unit_test(test_pty_restored_on_abort),
	};

	signal(SIGPIPE, SIG_IGN);	/* as bootvm run does */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
