/*
 * The host side of the guest console.
 *
 * Output: console_write() copies into a bounded ring (what does not fit is
 * dropped and counted) and a writer thread drains it. When nothing is queued
 * and the target cannot block (a terminal, pipe or character device opened
 * non-blocking, a socket), console_write() writes itself instead: one write
 * per byte from the vCPU thread costs less than waking the writer per byte,
 * as QEMU and Firecracker do too. The writer never
 * blocks for long: it waits for POLLOUT with a timeout and writes at most
 * PIPE_BUF bytes at a time, to a non-blocking file description of its own
 * when the target is a terminal or a pipe, so console_stop() keeps its
 * deadline even when nobody reads our stdout.
 *
 * Input (stdio only): an input thread polls stdin and an eventfd. Bytes the
 * receiver does not take wait in a small buffer, and stdin is not read again
 * until console_input_ready(): a paste into a slow guest loses nothing. On a
 * terminal, stdin is in raw mode while the console runs and Ctrl-A starts an
 * escape sequence; there, if the guest has taken nothing for
 * CONSOLE_STUCK_MS, stdin is read anyway so that Ctrl-A x still quits, and
 * keys that do not fit in the buffer are dropped (a hung guest, or one that
 * never reads its UART, must not trap the user).
 *
 * Locking: c->lock guards the ring, the counters and the callbacks. The
 * console never holds it while calling receive(), the room handler or the
 * quit handler, so those may call back into the console (lock order: device,
 * then console). The observer runs with the lock held and must not.
 */
#include "backends/console.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "util/file.h"
#include "util/log.h"
#include "util/time.h"
#include "vmm/thread.h"

#define CONSOLE_RING_SIZE	(64u << 10)
#define CONSOLE_IN_BUF		256
#define CONSOLE_POLL_MS		50	/* how often a waiting writer looks at its deadline */
#define CONSOLE_JOIN_GRACE_MS	1000	/* beyond the deadline, before giving up on the writer */
#define CONSOLE_ESCAPE		0x01	/* Ctrl-A */
#define CONSOLE_STUCK_MS	500	/* input refused this long: read stdin for escapes anyway */

struct console {
	enum console_kind kind;
	int in_fd;			/* -1: no input */
	int out_fd;			/* -1: output discarded */
	int out_wfd;			/* what the writer writes to: out_fd or a reopen of it */
	bool out_fd_owned;		/* file:PATH */
	bool out_wfd_owned;
	bool out_socket;		/* send(MSG_DONTWAIT) */
	bool out_direct;		/* writes never block: console_write() may write itself */
	bool in_tty;

	pthread_mutex_t lock;
	pthread_cond_t cond;		/* to the writer: data queued, or stop */
	uint8_t *ring;
	uint64_t head, tail;		/* bytes ever queued / written; head - tail are queued */
	uint64_t dropped;
	bool out_dead;			/* the target failed (EPIPE, EIO): discard from now on */
	bool room_wanted;		/* a writer found no room: call room_fn when there is */
	bool w_stop;			/* writer: drain, then exit */
	bool w_done;			/* writer: exited its loop */
	struct timespec w_deadline;	/* CLOCK_MONOTONIC: give up draining */
	pthread_cond_t done_cond;	/* CLOCK_MONOTONIC; to console_stop(): w_done */

	void (*quit_fn)(void *opaque);
	void *quit_opaque;
	void (*power_fn)(void *opaque);
	void *power_opaque;
	void (*observer)(void *opaque, const uint8_t *buf, size_t len);
	void *observer_opaque;
	size_t (*receive)(void *opaque, const uint8_t *buf, size_t len);
	void *receive_opaque;
	void (*room_fn)(void *opaque);
	void *room_opaque;

	/* Input thread state. */
	int wake_fd;			/* eventfd: input ready, or stop */
	bool in_stop;			/* atomic */
	bool esc;			/* Ctrl-A seen */
	uint8_t in_buf[CONSOLE_IN_BUF];
	size_t in_off, in_len;		/* bytes not yet taken by the receiver */
	long in_since_ms;		/* when the receiver last took input, or input began waiting */
	uint64_t in_dropped;		/* keys dropped while the guest was not reading */

	/* Owned by the thread calling start/stop/close. */
	bool writer_running, input_running;
	bool leaked;			/* the writer could not be joined: never free */
	pthread_t writer, input;
	bool raw;
	struct termios saved;
};

/* ---- Terminal restore on every way out ---- */

/* The terminal in raw mode and how to put it back; read by signal handlers. */
static int tty_fd = -1;				/* atomic; -1: nothing to restore */
static struct termios tty_saved;
static pthread_once_t tty_once = PTHREAD_ONCE_INIT;
static const int tty_fatal_signals[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };
static struct sigaction tty_old_actions[sizeof(tty_fatal_signals) / sizeof(int)];

static void console_tty_restore_now(void)
{
	int fd = __atomic_load_n(&tty_fd, __ATOMIC_ACQUIRE);

	if (fd >= 0)
		tcsetattr(fd, TCSANOW, &tty_saved);	/* async-signal-safe */
}

/*
 * Put the terminal back, then let the signal do what it would have done
 * without us (the default action, or a sanitizer's handler): a fault
 * re-executes and faults again; a sent signal (abort(), kill) is raised
 * again and delivered once this handler returns.
 */
static void console_fatal_signal(int sig, siginfo_t *info, void *uctx)
{
	int saved_errno = errno;

	console_tty_restore_now();
	for (size_t i = 0; i < sizeof(tty_fatal_signals) / sizeof(int); i++)
		if (tty_fatal_signals[i] == sig)
			sigaction(sig, &tty_old_actions[i], NULL);
	if (info->si_code <= 0)
		raise(sig);
	errno = saved_errno;
}

static void console_tty_atexit(void)
{
	console_tty_restore_now();
}

static void console_tty_atexit_register(void)
{
	atexit(console_tty_atexit);
}

/* (Re)install the fault handlers unless they are in place; someone may have replaced them. */
static void console_tty_hooks_install(void)
{
	struct sigaction sa = { .sa_sigaction = console_fatal_signal, .sa_flags = SA_SIGINFO };

	pthread_once(&tty_once, console_tty_atexit_register);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(tty_fatal_signals) / sizeof(int); i++) {
		struct sigaction cur;

		if (sigaction(tty_fatal_signals[i], NULL, &cur) < 0)
			continue;
		if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == console_fatal_signal)
			continue;
		tty_old_actions[i] = cur;	/* not read until our handler is installed */
		sigaction(tty_fatal_signals[i], &sa, NULL);
	}
}

static void console_raw_on(struct console *c)
{
	struct termios raw;

	if (tcgetattr(c->in_fd, &c->saved) < 0) {
		log_warn("console: tcgetattr: %s; leaving the terminal as it is", strerror(errno));
		return;
	}
	console_tty_hooks_install();
	__atomic_store_n(&tty_fd, -1, __ATOMIC_RELEASE);
	tty_saved = c->saved;
	__atomic_store_n(&tty_fd, c->in_fd, __ATOMIC_RELEASE);

	raw = c->saved;
	cfmakeraw(&raw);	/* no echo, no signals, no output post-processing */
	if (tcsetattr(c->in_fd, TCSANOW, &raw) < 0) {
		log_warn("console: tcsetattr: %s; leaving the terminal as it is", strerror(errno));
		__atomic_store_n(&tty_fd, -1, __ATOMIC_RELEASE);
		return;
	}
	c->raw = true;
	log_set_crlf(1);
}

static void console_raw_off(struct console *c)
{
	if (!c->raw)
		return;
	tcsetattr(c->in_fd, TCSANOW, &c->saved);
	int expected = c->in_fd;
	__atomic_compare_exchange_n(&tty_fd, &expected, -1, false, __ATOMIC_ACQ_REL,
				    __ATOMIC_ACQUIRE);
	c->raw = false;
	log_set_crlf(0);
}

/* ---- Output ---- */

static long console_ms_until(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
}

static void console_deadline(struct timespec *t, clockid_t clock, int ms)
{
	clock_gettime(clock, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (long)(ms % 1000) * 1000000;
	if (t->tv_nsec >= 1000000000) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000;
	}
}

/* One write to the target as it is: sockets never block nor raise SIGPIPE. */
static ssize_t console_out_raw(struct console *c, const uint8_t *buf, size_t len)
{
	if (c->out_socket)
		return send(c->out_wfd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	return write(c->out_wfd, buf, len);
}

/*
 * Write some of buf, waiting at most wait_ms for the target to be ready.
 * Returns bytes written, 0 if it was not ready, -1 (errno set) if it failed.
 */
static ssize_t console_out_chunk(struct console *c, const uint8_t *buf, size_t len, int wait_ms)
{
	struct pollfd p = { .fd = c->out_wfd, .events = POLLOUT };
	ssize_t n;
	int r;

	r = poll(&p, 1, wait_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -1;
	if (r == 0)
		return 0;
	/* After POLLOUT a pipe takes PIPE_BUF bytes without blocking. */
	if (len > PIPE_BUF)
		len = PIPE_BUF;
	n = console_out_raw(c, buf, len);
	if (n >= 0)
		return n;
	return errno == EAGAIN || errno == EINTR ? 0 : -1;
}

static void *console_writer_thread(void *arg)
{
	struct console *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		uint64_t used = c->head - c->tail;
		int wait_ms = CONSOLE_POLL_MS;

		if (!used) {
			if (c->w_stop)
				break;
			pthread_cond_wait(&c->cond, &c->lock);
			continue;
		}
		if (c->w_stop) {
			long left = console_ms_until(&c->w_deadline);
			if (left <= 0) {
				c->dropped += used;
				c->tail = c->head;
				break;
			}
			if (left < wait_ms)
				wait_ms = (int)left;
		}
		size_t start = (size_t)(c->tail % CONSOLE_RING_SIZE);
		size_t len = CONSOLE_RING_SIZE - start;
		if (len > used)
			len = (size_t)used;
		/* Producers only fill the free part, so [tail, head) is ours to read. */
		pthread_mutex_unlock(&c->lock);
		ssize_t n = console_out_chunk(c, c->ring + start, len, wait_ms);
		int err = errno;
		pthread_mutex_lock(&c->lock);

		if (n > 0) {
			c->tail += (uint64_t)n;
		} else if (n < 0) {
			c->out_dead = true;
			c->dropped += c->head - c->tail;
			c->tail = c->head;
			pthread_mutex_unlock(&c->lock);
			log_warn("console output: %s; discarding guest output from now on",
				 strerror(err));
			pthread_mutex_lock(&c->lock);
		}
		if (n != 0 && c->room_wanted) {
			void (*fn)(void *) = c->room_fn;
			void *opaque = c->room_opaque;

			c->room_wanted = false;
			if (fn) {
				pthread_mutex_unlock(&c->lock);
				fn(opaque);
				pthread_mutex_lock(&c->lock);
			}
		}
	}
	c->w_done = true;
	pthread_cond_signal(&c->done_cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

size_t console_write(struct console *c, const uint8_t *buf, size_t len)
{
	size_t n, total = 0;

	pthread_mutex_lock(&c->lock);
	if (c->observer)
		c->observer(c->observer_opaque, buf, len);
	if (c->out_fd < 0) {
		pthread_mutex_unlock(&c->lock);
		return len;	/* none: discarded by design, not dropped */
	}
	if (c->out_dead) {
		c->dropped += len;
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	uint64_t used = c->head - c->tail;
	if (!used && c->out_direct) {
		/* Nothing queued, so the writer is idle: order is kept. */
		ssize_t w = console_out_raw(c, buf, len);
		if (w > 0) {
			buf += w;
			len -= (size_t)w;
		}
		/* What is left, and any error, goes to the writer. */
		if (!len) {
			pthread_mutex_unlock(&c->lock);
			return (size_t)w;
		}
		total = (size_t)(w > 0 ? w : 0);
	}
	n = CONSOLE_RING_SIZE - (size_t)used;
	if (n > len)
		n = len;
	size_t start = (size_t)(c->head % CONSOLE_RING_SIZE);
	size_t first = CONSOLE_RING_SIZE - start;
	if (first > n)
		first = n;
	memcpy(c->ring + start, buf, first);
	memcpy(c->ring, buf + first, n - first);
	c->head += n;
	if (n < len) {
		c->dropped += len - n;
		c->room_wanted = true;
	}
	if (n && !used)
		pthread_cond_signal(&c->cond);	/* the writer sleeps only on an empty ring */
	pthread_mutex_unlock(&c->lock);
	return total + n;
}

size_t console_write_room(struct console *c)
{
	size_t room;

	pthread_mutex_lock(&c->lock);
	if (c->out_fd < 0 || c->out_dead) {
		room = CONSOLE_RING_SIZE;	/* takes anything (and discards it) */
	} else {
		room = CONSOLE_RING_SIZE - (size_t)(c->head - c->tail);
		if (!room)
			c->room_wanted = true;
	}
	pthread_mutex_unlock(&c->lock);
	return room;
}

uint64_t console_dropped(struct console *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->lock);
	n = c->dropped;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* ---- Input ---- */

static void console_help(void)
{
	static const char help[] =
		"\r\n"
		"C-a h    print this help\r\n"
		"C-a x    quit bootvm\r\n"
		"C-a p    press the guest's ACPI power button\r\n"
		"C-a C-a  send C-a to the guest\r\n";

	if (write(STDERR_FILENO, help, sizeof(help) - 1) < 0) {
		/* nowhere to show it */
	}
}

/* Call the quit or power handler, without the console's lock. */
static void console_escape_call(struct console *c, bool power)
{
	void (*fn)(void *);
	void *opaque;

	pthread_mutex_lock(&c->lock);
	fn = power ? c->power_fn : c->quit_fn;
	opaque = power ? c->power_opaque : c->quit_opaque;
	pthread_mutex_unlock(&c->lock);
	if (fn)
		fn(opaque);
}

/* Queue a byte for the guest behind what still waits; drop it if full. */
static void console_input_queue(struct console *c, uint8_t b)
{
	if (c->in_len < CONSOLE_IN_BUF) {
		c->in_buf[c->in_len++] = b;
		return;
	}
	if (!c->in_dropped++)
		log_warn("console input: the guest is not reading its console; dropping keys "
			 "(Ctrl-A x quits)");
}

/* Turn what was read into what the guest gets: escapes on a terminal only. */
static void console_input_filter(struct console *c, const uint8_t *buf, size_t n)
{
	/* What still waits moves to the front; new bytes go behind it. */
	if (c->in_off == c->in_len)
		c->in_since_ms = time_now_ms();
	memmove(c->in_buf, c->in_buf + c->in_off, c->in_len - c->in_off);
	c->in_len -= c->in_off;
	c->in_off = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t b = buf[i];

		if (!c->in_tty) {
			console_input_queue(c, b);
		} else if (c->esc) {
			c->esc = false;
			if (b == CONSOLE_ESCAPE)
				console_input_queue(c, b);
			else if (b == 'x')
				console_escape_call(c, false);
			else if (b == 'p')
				console_escape_call(c, true);
			else if (b == 'h')
				console_help();
			/* anything else: both bytes are dropped */
		} else if (b == CONSOLE_ESCAPE) {
			c->esc = true;
		} else {
			console_input_queue(c, b);
		}
	}
}

static void console_input_deliver(struct console *c)
{
	size_t (*fn)(void *, const uint8_t *, size_t);
	void *opaque;
	size_t left = c->in_len - c->in_off, n;

	pthread_mutex_lock(&c->lock);
	fn = c->receive;
	opaque = c->receive_opaque;
	pthread_mutex_unlock(&c->lock);

	n = fn ? fn(opaque, c->in_buf + c->in_off, left) : left;	/* nobody: discard */
	c->in_off += n < left ? n : left;
	if (n)
		c->in_since_ms = time_now_ms();
}

static void *console_input_thread(void *arg)
{
	struct console *c = arg;
	uint8_t raw[CONSOLE_IN_BUF];
	bool eof = false;

	while (!__atomic_load_n(&c->in_stop, __ATOMIC_ACQUIRE)) {
		if (c->in_off < c->in_len)
			console_input_deliver(c);
		bool pending = c->in_off < c->in_len, read_in = !pending;
		int timeout = -1;

		if (pending && c->in_tty) {
			long waited = time_now_ms() - c->in_since_ms;

			if (waited >= CONSOLE_STUCK_MS)
				read_in = true;		/* the guest is stuck: still see Ctrl-A x */
			else
				timeout = (int)(CONSOLE_STUCK_MS - waited);
		}
		/* poll() skips negative fds: stdin rests while input waits. */
		struct pollfd fds[2] = {
			{ .fd = c->wake_fd, .events = POLLIN },
			{ .fd = !read_in || eof ? -1 : c->in_fd, .events = POLLIN },
		};

		if (poll(fds, 2, timeout) < 0) {
			if (errno == EINTR)
				continue;
			log_warn("console input: poll: %s", strerror(errno));
			break;
		}
		if (fds[0].revents & POLLIN) {
			uint64_t v;
			if (read(c->wake_fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: someone else's wake-up was already counted */
			}
		}
		if (fds[1].revents & POLLNVAL) {
			eof = true;
		} else if (fds[1].revents) {
			ssize_t n = read(c->in_fd, raw, sizeof(raw));
			if (n > 0)
				console_input_filter(c, raw, (size_t)n);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				eof = true;	/* EOF, or EIO on a hung-up terminal: the guest runs on */
		}
	}
	return NULL;
}

void console_input_ready(struct console *c)
{
	uint64_t one = 1;

	if (c->wake_fd >= 0 && write(c->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero, the thread will wake */
	}
}

/* ---- Setup ---- */

void console_set_quit_handler(struct console *c, void (*fn)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&c->lock);
	c->quit_fn = fn;
	c->quit_opaque = opaque;
	pthread_mutex_unlock(&c->lock);
}

void console_set_power_handler(struct console *c, void (*fn)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&c->lock);
	c->power_fn = fn;
	c->power_opaque = opaque;
	pthread_mutex_unlock(&c->lock);
}

void console_set_observer(struct console *c,
			  void (*fn)(void *opaque, const uint8_t *buf, size_t len),
			  void *opaque)
{
	pthread_mutex_lock(&c->lock);
	c->observer = fn;
	c->observer_opaque = opaque;
	pthread_mutex_unlock(&c->lock);
}

void console_set_input(struct console *c,
		       size_t (*receive)(void *opaque, const uint8_t *buf, size_t len),
		       void *opaque)
{
	pthread_mutex_lock(&c->lock);
	c->receive = receive;
	c->receive_opaque = opaque;
	pthread_mutex_unlock(&c->lock);
}

void console_set_room_handler(struct console *c, void (*fn)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&c->lock);
	c->room_fn = fn;
	c->room_opaque = opaque;
	pthread_mutex_unlock(&c->lock);
}

/*
 * A terminal, a pipe or another character device gets a non-blocking file
 * description of its own, so a write can never hang (setting O_NONBLOCK on
 * the shared one would leak into the shell); sockets use MSG_DONTWAIT. Those
 * may be written from the vCPU thread. A regular file can still stall (a
 * slow or network file system, dirty-page throttling): only the writer
 * thread writes to it.
 */
static void console_out_setup(struct console *c)
{
	struct stat st;
	char path[64];
	int fd;

	c->out_wfd = c->out_fd;
	if (fstat(c->out_fd, &st) < 0)
		return;
	if (S_ISSOCK(st.st_mode)) {
		c->out_socket = true;
		c->out_direct = true;
		return;
	}
	if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", c->out_fd);
	fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return;	/* no /proc, or a pipe without reader: chunked writes still bound it */
	c->out_wfd = fd;
	c->out_wfd_owned = true;
	c->out_direct = true;
}

struct console *console_open_fds(enum console_kind kind, int in_fd, int out_fd)
{
	struct console *c = calloc(1, sizeof(*c));

	if (!c) {
		log_error("console: out of memory");
		return NULL;
	}
	if (kind != CONSOLE_STDIO)
		in_fd = -1;
	if (kind == CONSOLE_NONE)
		out_fd = -1;
	c->kind = kind;
	c->in_fd = in_fd;
	c->out_fd = out_fd;
	c->out_wfd = -1;
	c->wake_fd = -1;
	pthread_condattr_t attr;

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->done_cond, &attr);
	pthread_condattr_destroy(&attr);

	if (out_fd >= 0) {
		c->ring = malloc(CONSOLE_RING_SIZE);
		if (!c->ring) {
			log_error("console: out of memory");
			goto err_free;
		}
		console_out_setup(c);
	}
	if (in_fd >= 0) {
		c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (c->wake_fd < 0) {
			log_error("console: eventfd: %s", strerror(errno));
			goto err_out;
		}
		c->in_tty = isatty(in_fd);
	}
	return c;

err_out:
	if (c->out_wfd_owned)
		close(c->out_wfd);
	free(c->ring);
err_free:
	pthread_cond_destroy(&c->done_cond);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return NULL;
}

/*
 * Open --console file:PATH non-blocking: opening a FIFO that nobody reads
 * would otherwise wait for a reader for ever, with the terminating signals
 * already blocked (so only SIGKILL would end bootvm). Writes are ordinary
 * from there on; console_out_setup() reopens what must not block.
 */
static int console_file_open(const char *path)
{
	struct stat st;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
	if (fd < 0) {
		if (errno == ENXIO && stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
			log_error("console file %s: a FIFO that nobody reads (start its reader first)",
				  path);
		else
			log_error("console file %s: %s", path, strerror(errno));
		return -1;
	}
	if (file_clear_nonblock(fd) < 0) {
		log_error("console file %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

struct console *console_open(const struct vm_config *cfg)
{
	struct console *c;
	int fd;

	switch (cfg->console) {
	case CONSOLE_STDIO:
		return console_open_fds(CONSOLE_STDIO, STDIN_FILENO, STDOUT_FILENO);
	case CONSOLE_FILE:
		fd = console_file_open(cfg->console_path);
		if (fd < 0)
			return NULL;
		c = console_open_fds(CONSOLE_FILE, -1, fd);
		if (!c) {
			close(fd);
			return NULL;
		}
		c->out_fd_owned = true;
		return c;
	case CONSOLE_NONE:
	default:
		return console_open_fds(CONSOLE_NONE, -1, -1);
	}
}

/* Console threads take no asynchronous signals; faults still reach them. */
int console_start(struct console *c)
{
	if (c->writer_running || c->input_running)
		return 0;
	__atomic_store_n(&c->in_stop, false, __ATOMIC_RELEASE);
	pthread_mutex_lock(&c->lock);
	c->w_stop = false;
	c->w_done = false;
	pthread_mutex_unlock(&c->lock);

	if (c->in_fd >= 0 && c->in_tty)
		console_raw_on(c);

	if (c->out_fd >= 0) {
		if (thread_start(&c->writer, THREAD_CONSOLE, "console-out",
				 console_writer_thread, c) < 0)
			goto err_stop;
		c->writer_running = true;
	}
	if (c->in_fd >= 0) {
		if (thread_start(&c->input, THREAD_CONSOLE, "console-in",
				 console_input_thread, c) < 0)
			goto err_stop;
		c->input_running = true;
	}
	return 0;

err_stop:
	console_stop(c, 0);
	return -1;
}

static void console_stop_writer(struct console *c, int timeout_ms)
{
	struct timespec deadline, give_up;
	bool done;

	if (timeout_ms < 0)
		timeout_ms = 0;
	pthread_mutex_lock(&c->lock);
	console_deadline(&deadline, CLOCK_MONOTONIC, timeout_ms);
	if (!c->w_stop || console_ms_until(&c->w_deadline) > timeout_ms)
		c->w_deadline = deadline;
	c->w_stop = true;
	pthread_cond_signal(&c->cond);

	/* The writer waits at most CONSOLE_POLL_MS at a time; the grace covers a stuck write(). */
	console_deadline(&give_up, CLOCK_MONOTONIC, timeout_ms + CONSOLE_JOIN_GRACE_MS);
	while (!c->w_done)
		if (pthread_cond_timedwait(&c->done_cond, &c->lock, &give_up) == ETIMEDOUT)
			break;
	done = c->w_done;
	pthread_mutex_unlock(&c->lock);

	if (done) {
		pthread_join(c->writer, NULL);
	} else {
		log_warn("console: the output thread is stuck; leaving it behind");
		pthread_detach(c->writer);
		c->leaked = true;
	}
	c->writer_running = false;
}

void console_stop(struct console *c, int timeout_ms)
{
	if (!c)
		return;
	if (c->input_running) {
		__atomic_store_n(&c->in_stop, true, __ATOMIC_RELEASE);
		console_input_ready(c);
		pthread_join(c->input, NULL);
		c->input_running = false;
	}
	console_raw_off(c);
	if (c->writer_running)
		console_stop_writer(c, timeout_ms);
}

void console_close(struct console *c)
{
	if (!c)
		return;
	console_stop(c, 0);
	if (c->leaked)
		return;	/* its thread may still touch it */
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	if (c->out_wfd_owned)
		close(c->out_wfd);
	if (c->out_fd_owned)
		close(c->out_fd);
	free(c->ring);
	pthread_cond_destroy(&c->done_cond);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
