/* Monotonic time for timeouts. */
#pragma once

/* Milliseconds on CLOCK_MONOTONIC: differences are elapsed time. */
long time_now_ms(void);
