/* Read-only file images: kernels, initrds. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct file_map {
	const uint8_t *data;	/* NULL for an empty file */
	size_t size;
};

/*
 * Open path read-only if it is a regular file, and learn its size. A FIFO or
 * a device is refused without blocking in open() or becoming the controlling
 * terminal. On failure logs one line naming `what` (e.g. "initrd"), the path
 * and the reason, and returns -1; else returns the descriptor.
 */
int file_open(const char *path, const char *what, uint64_t *size);

/* file_open() without logging: the descriptor, or one of these (errno set but for the last). */
#define FILE_ERR_OPEN		(-1)
#define FILE_ERR_STAT		(-2)
#define FILE_ERR_NOT_REGULAR	(-3)
int file_open_quiet(const char *path, uint64_t *size);

/* Clear O_NONBLOCK on fd (opened so, not to wait in open()): 0, or -1 with errno. */
int file_clear_nonblock(int fd);

/*
 * Map path read-only. On failure logs one line naming `what` (e.g.
 * "kernel"), the path and the reason, and returns -1.
 */
int file_map(const char *path, const char *what, struct file_map *fm);
void file_unmap(struct file_map *fm);
