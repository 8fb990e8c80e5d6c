/*
 * An I/O thread: one epoll event loop that serves one device or backend.
 * vCPU threads only touch device registers and post work here (an eventfd,
 * an ioeventfd); the loop's thread does the rest.
 *
 * Lifecycle events (activate, reset, pause, stop) are io_loop_call()s: the
 * function runs on the loop's thread between two handlers, and the caller
 * waits for it, so when a reset returns the device's thread has let go of
 * its queues.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>	/* EPOLLIN & co. for io_loop_add() */

struct io_loop;

/* Called on the loop's thread with the epoll events (EPOLLIN, ...). */
typedef void (*io_handler_fn)(void *opaque, uint32_t events);

/* A loop whose thread will be named name (e.g. "io-blk0"). Not started. */
struct io_loop *io_loop_create(const char *name);
/* Stops it if running, then frees it. The handlers' fds are not closed. */
void io_loop_destroy(struct io_loop *l);

int io_loop_start(struct io_loop *l);
/* Ask the thread to leave and join it. Idempotent. */
void io_loop_stop(struct io_loop *l);

/*
 * Watch fd for events (EPOLLIN etc., level-triggered). Any thread, before or
 * after start. After io_loop_del() returns, fn is not running and will not
 * be called again (unless called on the loop's own thread, where that is
 * true trivially).
 */
int io_loop_add(struct io_loop *l, int fd, uint32_t events, io_handler_fn fn, void *opaque);
int io_loop_del(struct io_loop *l, int fd);

/*
 * Run fn(opaque) on the loop's thread and wait until it has returned. Runs
 * it directly when called from the loop's thread or when the loop is not
 * running. Returns 0, or -1 if it could not be posted.
 */
int io_loop_call(struct io_loop *l, void (*fn)(void *opaque), void *opaque);

/* True when the caller is this loop's thread. */
bool io_loop_is_current(const struct io_loop *l);

/*
 * Adaptive polling (QEMU's iothread poll-max-ns). After serving events the
 * loop may spin, calling each poll handler, before it sleeps in epoll_wait
 * again: for a window that grows (doubling, up to poll_max_ns) while work
 * keeps arriving within it and shrinks when it does not. It polls only right
 * after real work, so an idle device costs no CPU; a call or stop ends the
 * spin at once. The poll handler does the work it finds and returns true if
 * there was any. mode(opaque, true) is called when the loop starts polling
 * (the handler may turn its notifications off: the loop looks for it);
 * mode(opaque, false) when it stops (notifications back on) and returns true
 * if work slipped in meanwhile (the loop then calls poll once more). Both run
 * on the loop's thread. io_loop_del_poll(opaque) drops the handler without a
 * mode(false) call (its owner is going away). Add and del wait like
 * io_loop_call(); -1 on no memory / not found.
 */
typedef bool (*io_poll_fn)(void *opaque);
typedef bool (*io_poll_mode_fn)(void *opaque, bool polling);
int io_loop_add_poll(struct io_loop *l, io_poll_fn poll, io_poll_mode_fn mode, void *opaque);
int io_loop_del_poll(struct io_loop *l, void *opaque);
/* 0 turns polling off. Default 32 us; BOOTVM_IO_POLL_MAX_NS overrides it. At most 1 ms. */
void io_loop_set_poll_max_ns(struct io_loop *l, uint64_t ns);
