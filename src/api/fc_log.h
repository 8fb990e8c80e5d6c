/*
 * Firecracker's logger for `bootvm firecracker` (--log-path, --level,
 * --show-level, --show-log-origin, PUT /logger): bootvm's log lines go to
 * the file or FIFO in Firecracker's shape,
 *   2026-12-03T08:46:44.123456789 [ID:THREAD:LEVEL:FILE:LINE] message
 * (level and origin when asked for), filtered by the level.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum fc_log_level { FC_LOG_UNSET = -1, FC_LOG_OFF, FC_LOG_ERROR, FC_LOG_WARNING, FC_LOG_INFO,
		    FC_LOG_DEBUG, FC_LOG_TRACE };

struct fc_logger_config {
	const char *log_path;		/* NULL: keep the current target (stderr at first) */
	enum fc_log_level level;
	int show_level;			/* -1: unchanged, 0, 1 */
	int show_log_origin;
	const char *module;		/* only messages from source files under this path */
};

/* Error, Warning, Info, Debug, Trace, Off, in any case; FC_LOG_UNSET when none of them. */
enum fc_log_level fc_log_level_parse(const char *s);
/* Apply (the id names the instance in each line). 0, or -1 with the reason in fault. */
int fc_log_configure(const struct fc_logger_config *cfg, const char *id, char *fault, size_t size);
/* Back to bootvm's own lines on stderr. */
void fc_log_reset(void);
