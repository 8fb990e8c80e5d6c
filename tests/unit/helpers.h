/*
 * What the unit tests share: log capture, scratch files and directories,
 * running commands (bootvm among them), timing. Include after <cmocka.h>.
 * A helper that cannot do its job fails the running test (cmocka asserts)
 * rather than returning an error, so tests need no error paths for them.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/log.h"

/* ---- log capture ---- */

/* What the code under test logged: log_set_sink(helper_log_sink, &log). */
struct helper_log {
	int errors, warnings, infos;
	char last_error[1024], last_warning[1024], last_info[1024];
};

void helper_log_sink(enum log_level level, const char *msg, void *opaque);

/* ---- time and threads ---- */

/* CLOCK_MONOTONIC in milliseconds, for timeouts and durations. */
double helper_now_ms(void);

/* An int that another thread changes, read or bumped under its lock. */
int helper_locked_get(pthread_mutex_t *lock, const int *v);
void helper_locked_inc(pthread_mutex_t *lock, int *v);

/* ---- strings, files, directories ---- */

/* A formatted string on the heap (free it). */
char *helper_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A fresh directory $TMPDIR/bootvm-TAG-XXXXXX, mode 0755 so that other users may enter. */
char *helper_tmpdir(const char *tag);

/* Remove dir and everything below it, and free the string; 0, or -1 if anything stayed. */
int helper_tmpdir_remove(char *dir);

/* Create or replace path with len bytes of data, then set mode (not masked by the umask). */
void helper_write_file(const char *path, const void *data, size_t len, mode_t mode);

/* The whole file, NUL-terminated (free it); NULL if it cannot be opened. */
void *helper_read_file(const char *path, size_t *len);

/* ---- commands ---- */

/* Run a shell command; its exit status, or 128 + the signal that killed it. */
int helper_shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A shell command's stdout (free it); *status (if not NULL) as helper_shell's. */
char *helper_shell_out(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether a program is in PATH. */
bool helper_have_tool(const char *name);

/* How a command ended and what it printed. */
struct helper_result {
	char *cmd;		/* the command line, for messages */
	int status;		/* exit status, or 128 + the signal */
	int term_signal;	/* the signal that killed it, or 0 */
	char *out, *err;	/* NUL-terminated; with HELPER_MERGE_OUTPUT err is "" */
	int err_lines;
};

enum {
	HELPER_AS_NOBODY = 1 << 0,	/* drop to uid/gid 65534 first (needs root) */
	HELPER_MERGE_OUTPUT = 1 << 1,	/* stderr into out, interleaved as printed */
};

/*
 * Run argv (NULL-terminated; argv[0] looked up in PATH) in dir (NULL: here)
 * with stdin from /dev/null. A program that cannot be started exits 127 after
 * printing "exec NAME: why" on stderr. Free res with helper_result_free().
 */
void helper_run(struct helper_result *res, const char *dir, const char *const *argv,
		unsigned int flags);

/* Run $BOOTVM [subcommand] args...; it must exit, not die of a signal. */
void helper_run_bootvm(struct helper_result *res, const char *subcommand,
		       const char *const *args, unsigned int flags);

void helper_result_free(struct helper_result *res);

/*
 * res failed as bootvm must: with status, exactly one "bootvm: " line on
 * stderr that contains needle, and nothing on stdout.
 */
void helper_expect_error(const struct helper_result *res, int status, const char *needle);
