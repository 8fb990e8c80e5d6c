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
