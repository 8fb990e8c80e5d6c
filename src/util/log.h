/* One-line diagnostics on stderr, prefixed "bootvm: ". */
#pragma once

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped (default LOG_WARN; -v raises it). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Tests capture messages instead of printing them; NULL restores stderr. */
typedef void (*log_sink_fn)(enum log_level level, const char *msg, void *opaque);
void log_set_sink(log_sink_fn sink, void *opaque);

/* While the terminal is in raw mode lines must end in "\r\n". */
void log_set_crlf(int on);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* log_msg() that also records where it was called from (see log_origin()). */
void log_msg_at(enum log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_error(...) log_msg_at(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...)  log_msg_at(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...)  log_msg_at(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_msg_at(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

/* For a sink: the source file and line of the message being delivered (NULL, 0: unknown). */
void log_origin(const char **file, int *line);

/*
 * The first error this thread logs from now on is also copied into buf
 * (size bytes, "" until then), e.g. to hand it to an API client as well;
 * NULL stops. Thread-local: other threads' errors are not taken.
 */
void log_capture_first_error(char *buf, size_t size);

/*
 * A bad command line of subcommand cmd: logs "CMD: MESSAGE (see bootvm CMD
 * --help)" as one error and returns status, so a parser can
 * `return log_usage_error(2, "mkdisk", "...", ...)`.
 */
int log_usage_error(int status, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

