#include "api/fc_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api/fc_api.h"
#include "util/log.h"

/*
 * The sink's state. The target fd keeps its number for the process's life:
 * a new log_path is dup2()ed over it, so a thread logging meanwhile never
 * writes to a closed or reused descriptor.
 */
static struct {
	int fd;				/* -1: stderr */
	enum fc_log_level level;
	bool show_level, show_origin;
	char id[FC_ID_MAX + 1];
	char module[128];
	bool active;
} fc_log = { .fd = -1, .level = FC_LOG_WARNING };

static const char *const fc_level_names[] = {
	[FC_LOG_OFF] = "Off", [FC_LOG_ERROR] = "Error", [FC_LOG_WARNING] = "Warning",
	[FC_LOG_INFO] = "Info", [FC_LOG_DEBUG] = "Debug", [FC_LOG_TRACE] = "Trace",
};

enum fc_log_level fc_log_level_parse(const char *s)
{
	for (int i = FC_LOG_OFF; i <= FC_LOG_TRACE; i++)
		if (!strcasecmp(s, fc_level_names[i]))
			return (enum fc_log_level)i;
	return FC_LOG_UNSET;
}

static enum fc_log_level fc_from_log(enum log_level l)
{
	switch (l) {
	case LOG_ERROR: return FC_LOG_ERROR;
	case LOG_WARN: return FC_LOG_WARNING;
	case LOG_INFO: return FC_LOG_INFO;
	default: return FC_LOG_DEBUG;
	}
}

static void fc_log_sink(enum log_level level, const char *msg, void *opaque)
{
	static const char *const upper[] = {
		[FC_LOG_ERROR] = "ERROR", [FC_LOG_WARNING] = "WARN", [FC_LOG_INFO] = "INFO",
		[FC_LOG_DEBUG] = "DEBUG",
	};
	enum fc_log_level l = fc_from_log(level);
	const char *file;
	char thread[16] = "?", stamp[40], line[1400];
	struct timespec ts;
	struct tm tm;
	int lineno, n;

	(void)opaque;
	if (l > fc_log.level)
		return;
	log_origin(&file, &lineno);
	if (fc_log.module[0] && (!file || strncmp(file, fc_log.module, strlen(fc_log.module))))
		return;
	pthread_getname_np(pthread_self(), thread, sizeof(thread));
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%09ld [%s:%s", stamp, ts.tv_nsec, fc_log.id, thread);
	if (fc_log.show_level)
		n += snprintf(line + n, sizeof(line) - (size_t)n, ":%s", upper[l]);
	if (fc_log.show_origin && file)
		n += snprintf(line + n, sizeof(line) - (size_t)n, ":%s:%d", file, lineno);
	n += snprintf(line + n, sizeof(line) - (size_t)n, "] %s\n", msg);
	if (n > (int)sizeof(line) - 1)
		n = sizeof(line) - 1;
	/* One write per line; a FIFO nobody reads drops lines rather than stalling us. */
	if (write(fc_log.fd >= 0 ? fc_log.fd : STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}

int fc_log_configure(const struct fc_logger_config *cfg, const char *id, char *fault, size_t size)
{
	if (cfg->log_path) {
		/* As Firecracker: the file or FIFO must exist; non-blocking so a FIFO cannot stall us. */
		int fd = open(cfg->log_path, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

		if (fd < 0) {
			snprintf(fault, size, "Logger error: cannot open log_path %s: %s",
				 cfg->log_path, strerror(errno));
			return -1;
		}
		if (fc_log.fd < 0) {
			fc_log.fd = fd;
		} else {
			dup3(fd, fc_log.fd, O_CLOEXEC);
			close(fd);
		}
	}
	if (cfg->level != FC_LOG_UNSET)
		fc_log.level = cfg->level;
	if (cfg->show_level >= 0)
		fc_log.show_level = cfg->show_level;
	if (cfg->show_log_origin >= 0)
		fc_log.show_origin = cfg->show_log_origin;
	if (cfg->module)
		snprintf(fc_log.module, sizeof(fc_log.module), "%s", cfg->module);
	snprintf(fc_log.id, sizeof(fc_log.id), "%s", id);
	/* bootvm's own filter must let through what the sink wants. */
	log_set_level(fc_log.level >= FC_LOG_DEBUG ? LOG_DEBUG :
		      fc_log.level == FC_LOG_INFO ? LOG_INFO : LOG_WARN);
	if (!fc_log.active) {
		log_set_sink(fc_log_sink, NULL);
		fc_log.active = true;
	}
	return 0;
}

void fc_log_reset(void)
{
	if (fc_log.active)
		log_set_sink(NULL, NULL);
	if (fc_log.fd >= 0)
		close(fc_log.fd);
	fc_log.fd = -1;
	fc_log.level = FC_LOG_WARNING;
	fc_log.show_level = fc_log.show_origin = false;
	fc_log.module[0] = 0;
	fc_log.active = false;
	log_set_level(LOG_WARN);
}
