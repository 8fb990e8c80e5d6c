/* What the libFuzzer targets share: the entry point, and a log that says nothing. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_log_drop(enum log_level level, const char *msg, void *opaque)
{
	(void)level;
	(void)msg;
	(void)opaque;
}

/* Hostile input makes the code under test log an error per run: drop them. */
static inline void fuzz_log_quiet(void)
{
	log_set_sink(fuzz_log_drop, NULL);
}
