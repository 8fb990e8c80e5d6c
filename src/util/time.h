/* Monotonic time for timeouts; wall-clock time for timestamps. */
#pragma once

/* Milliseconds on CLOCK_MONOTONIC: differences are elapsed time. */
long time_now_ms(void);
/* Milliseconds since the Unix epoch (CLOCK_REALTIME): timestamps for logs and metrics. */
long long time_wall_ms(void);
