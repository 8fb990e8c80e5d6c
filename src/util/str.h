/* Small string helpers. */
#pragma once

/* printf into a new malloc'ed string; NULL when out of memory (nothing logged). */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
