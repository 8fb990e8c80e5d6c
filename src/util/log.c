#include "util/log.h"

#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum log_level max_level = LOG_WARN;
static log_sink_fn log_sink;
static void *log_sink_opaque;
/* Set by the console thread when the TTY goes raw, read by every thread. */
static atomic_int log_crlf;
/* Per thread: where the message being logged comes from, and the capture buffer. */
static _Thread_local const char *log_cur_file;
static _Thread_local int log_cur_line;
static _Thread_local char *log_capture_buf;
static _Thread_local size_t log_capture_size;

void log_origin(const char **file, int *line)
{
	*file = log_cur_file;
	*line = log_cur_line;
}

void log_capture_first_error(char *buf, size_t size)
{
	log_capture_buf = size ? buf : NULL;
	log_capture_size = size;
	if (log_capture_buf)
		buf[0] = 0;
}

void log_set_crlf(int on)
{
	log_crlf = on;
}

void log_set_level(enum log_level level)
{
	max_level = level;
}

enum log_level log_get_level(void)
{
	return max_level;
}

void log_set_sink(log_sink_fn sink, void *opaque)
{
	log_sink = sink;
	log_sink_opaque = opaque;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_msg_at(enum log_level level, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	log_cur_file = file;
	log_cur_line = line;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
	log_cur_file = NULL;
	log_cur_line = 0;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const prefix[] = {
		[LOG_ERROR] = "", [LOG_WARN] = "warning: ",
		[LOG_INFO] = "", [LOG_DEBUG] = "debug: ",
	};
	char msg[1024];

	if (level > max_level && !log_sink && !(level == LOG_ERROR && log_capture_buf))
		return;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (level == LOG_ERROR && log_capture_buf && !log_capture_buf[0])
		snprintf(log_capture_buf, log_capture_size, "%s", msg);
	if (level > max_level && !log_sink)
		return;

	if (log_sink) {
		log_sink(level, msg, log_sink_opaque);
		return;
	}

	/* One write per line so lines from several threads never interleave. */
	char line[1100];
	int n = snprintf(line, sizeof(line), "bootvm: %s%s%s", prefix[level], msg,
			 log_crlf ? "\r\n" : "\n");
	if (n > (int)sizeof(line) - 1)
		n = sizeof(line) - 1;
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}

int log_usage_error(int status, const char *cmd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s: %s (see bootvm %s --help)", cmd, msg, cmd);
	return status;
}
