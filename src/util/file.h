/* Read-only file images: kernels, initrds. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct file_map {
	const uint8_t *data;	/* NULL for an empty file */
	size_t size;
};

/*
 * Map path read-only. On failure logs one line naming `what` (e.g.
 * "kernel"), the path and the reason, and returns -1.
 */
int file_map(const char *path, const char *what, struct file_map *fm);
void file_unmap(struct file_map *fm);
