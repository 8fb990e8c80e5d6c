/* Small string helpers. */
#pragma once

#include <stdint.h>

/* printf into a new malloc'ed string; NULL when out of memory (nothing logged). */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "52:54:00:12:34:56" (exactly six pairs of hex digits, colons between) into mac: 0, or -1. */
int str_parse_mac(const char *s, uint8_t mac[6]);
