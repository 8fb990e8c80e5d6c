/* Human sizes: "512M", "1G", "1536MiB", "4096K", "2T"; a bare number means MiB. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* 0 on success, -1 if s is not a size (empty, junk, overflow). Logs nothing. */
int size_parse(const char *s, uint64_t *out);

/* "512 MiB", "1.5 GiB", "4 KiB", "100 bytes" into buf. Returns buf. */
const char *size_format(uint64_t bytes, char *buf, size_t len);
