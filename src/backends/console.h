/*
 * The host side of the guest console: where guest output goes (stdout, a
 * file, nowhere) and where input comes from (stdin), with raw-mode handling
 * of a terminal and the escape sequence (Ctrl-A x quits, Ctrl-A p presses the
 * power button, Ctrl-A Ctrl-A sends Ctrl-A, Ctrl-A h prints help).
 *
 * Output never blocks the caller: it is queued in a bounded buffer and
 * written by a thread; what does not fit is dropped and counted.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vmm/config.h"

struct console;

/* Open the target named by cfg->console / cfg->console_path. Logs, NULL on error. */
struct console *console_open(const struct vm_config *cfg);

/*
 * The same with explicit descriptors (console_open() passes stdin/stdout;
 * tests pass pipes and pseudo-terminals). -1: none. kind CONSOLE_NONE
 * ignores both, CONSOLE_FILE ignores in_fd. The fds stay the caller's.
 */
struct console *console_open_fds(enum console_kind kind, int in_fd, int out_fd);

/* Called (from the console's input thread) when the user types the quit sequence. */
void console_set_quit_handler(struct console *c, void (*fn)(void *opaque), void *opaque);
/* Called (from the console's input thread) when the user types Ctrl-A p. */
void console_set_power_handler(struct console *c, void (*fn)(void *opaque), void *opaque);

/*
 * Called with every chunk of guest output before it is queued (or dropped),
 * with the console's lock held: it must not call into the console.
 */
void console_set_observer(struct console *c,
			  void (*fn)(void *opaque, const uint8_t *buf, size_t len),
			  void *opaque);

/*
 * Where guest input goes: receive() takes what it can and returns how many
 * bytes it took; the rest waits until console_input_ready() is called.
 * receive(), the room handler and the quit handler run on console threads
 * without the console's lock, so they may call back into the console, and
 * a device may call console_write(), console_write_room() and
 * console_input_ready() while holding its own lock (order: device, console).
 */
void console_set_input(struct console *c,
		       size_t (*receive)(void *opaque, const uint8_t *buf, size_t len),
		       void *opaque);
void console_input_ready(struct console *c);

/* Queue guest output; never blocks. Returns bytes queued (the rest was dropped). */
size_t console_write(struct console *c, const uint8_t *buf, size_t len);

/* Bytes console_write() can take right now without dropping. */
size_t console_write_room(struct console *c);

/*
 * Called (from the writer thread) when room appears after having been
 * short, so a UART can raise its transmitter-empty interrupt.
 */
void console_set_room_handler(struct console *c, void (*fn)(void *opaque), void *opaque);

/* Put a terminal into raw mode and start the input and output threads. */
int console_start(struct console *c);

/*
 * Stop input, restore the terminal, write out what is queued for at most
 * timeout_ms, stop the threads. Safe to call more than once.
 */
void console_stop(struct console *c, int timeout_ms);

/* Bytes of guest output dropped because the host side could not keep up. */
uint64_t console_dropped(struct console *c);

void console_close(struct console *c);
