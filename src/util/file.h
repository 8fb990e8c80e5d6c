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

/*
 * Map path read-only. On failure logs one line naming `what` (e.g.
 * "kernel"), the path and the reason, and returns -1.
 */
int file_map(const char *path, const char *what, struct file_map *fm);
void file_unmap(struct file_map *fm);
