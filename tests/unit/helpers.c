/* What the unit tests share; see helpers.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

/* ---- log capture ---- */

void helper_log_sink(enum log_level level, const char *msg, void *opaque)
{
	struct helper_log *l = opaque;

	switch (level) {
	case LOG_ERROR:
		l->errors++;
		snprintf(l->last_error, sizeof(l->last_error), "%s", msg);
		break;
	case LOG_WARN:
		l->warnings++;
		snprintf(l->last_warning, sizeof(l->last_warning), "%s", msg);
		break;
	case LOG_INFO:
		l->infos++;
		snprintf(l->last_info, sizeof(l->last_info), "%s", msg);
		break;
	case LOG_DEBUG:
		break;
	}
}

/* ---- time and threads ---- */

double helper_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int helper_locked_get(pthread_mutex_t *lock, const int *v)
{
	pthread_mutex_lock(lock);
	int n = *v;
	pthread_mutex_unlock(lock);
	return n;
}

void helper_locked_inc(pthread_mutex_t *lock, int *v)
{
	pthread_mutex_lock(lock);
	(*v)++;
	pthread_mutex_unlock(lock);
}

/* ---- strings, files, directories ---- */

static char *helper_vasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *helper_vasprintf(const char *fmt, va_list ap)
{
	char *s;

	assert_true(vasprintf(&s, fmt, ap) >= 0);
	return s;
}

char *helper_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = helper_vasprintf(fmt, ap);
	va_end(ap);
	return s;
}

char *helper_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *dir = helper_asprintf("%s/bootvm-%s-XXXXXX", base && *base ? base : "/tmp", tag);

	if (!mkdtemp(dir))
		fail_msg("cannot create %s: %s", dir, strerror(errno));
	assert_int_equal(chmod(dir, 0755), 0);
	return dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int helper_tmpdir_remove(char *dir)
{
	int ret = 0;

	if (dir)
		ret = nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) ? -1 : 0;
	free(dir);
	return ret;
}

void helper_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		fail_msg("cannot write %s: %s", path, strerror(errno));
	if (len)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

void *helper_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rbe");
	unsigned char *buf = NULL;
	size_t n = 0, cap = 0, r;

	if (!f)
		return NULL;
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r);
	fclose(f);
	buf[n] = 0;
	*len = n;
	return buf;
}

/* ---- commands ---- */

static int wait_status(int ws)
{
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

int helper_shell(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	int st;

	va_start(ap, fmt);
	cmd = helper_vasprintf(fmt, ap);
	va_end(ap);
	st = system(cmd);
	free(cmd);
	assert_true(st != -1);
	return wait_status(st);
}

char *helper_shell_out(int *status, const char *fmt, ...)
{
	va_list ap;
	char *cmd, *buf = NULL;
	size_t len = 0;
	FILE *f, *mem = open_memstream(&buf, &len);
	int c, st;

	assert_non_null(mem);
	va_start(ap, fmt);
	cmd = helper_vasprintf(fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	assert_non_null(f);
	while ((c = fgetc(f)) != EOF)
		fputc(c, mem);
	st = pclose(f);
	fclose(mem);
	free(cmd);
	if (status)
		*status = wait_status(st);
	return buf;
}

bool helper_have_tool(const char *name)
{
	return helper_shell("command -v '%s' >/dev/null 2>&1", name) == 0;
}

static char *join_argv(const char *const *argv)
{
	char *s = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&s, &len);

	assert_non_null(mem);
	for (size_t i = 0; argv[i]; i++)
		fprintf(mem, "%s%s", i ? " " : "", argv[i]);
	fclose(mem);
	return s;
}

/* In the child: never returns. */
__attribute__((noreturn))
static void exec_child(const char *dir, const char *const *argv, unsigned int flags, int out, int err)
{
	int null = open("/dev/null", O_RDONLY);

	if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(126);
	if (dir && chdir(dir) < 0)
		_exit(126);
	if ((flags & HELPER_AS_NOBODY) &&
	    (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0))
		_exit(126);
	execvp(argv[0], (char *const *)argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/*
 * Read both pipes to EOF at once (err_fd may be -1), then close them: one
 * at a time, a child that fills the other pipe would never finish.
 */
static void read_pipes(int out_fd, int err_fd, char **out, char **err)
{
	struct pollfd p[2] = { { .fd = out_fd, .events = POLLIN }, { .fd = err_fd, .events = POLLIN } };
	size_t len[2];
	FILE *mem[2] = { open_memstream(out, &len[0]), open_memstream(err, &len[1]) };
	char buf[4096];

	assert_non_null(mem[0]);
	assert_non_null(mem[1]);
	while (p[0].fd >= 0 || p[1].fd >= 0) {
		if (poll(p, 2, -1) < 0) {
			assert_int_equal(errno, EINTR);
			continue;
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n > 0) {
				fwrite(buf, 1, (size_t)n, mem[i]);
			} else if (n == 0 || errno != EINTR) {
				close(p[i].fd);
				p[i].fd = -1;
			}
		}
	}
	fclose(mem[0]);
	fclose(mem[1]);
}

void helper_run(struct helper_result *res, const char *dir, const char *const *argv,
		unsigned int flags)
{
	int out[2], err[2] = { -1, -1 }, ws;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	res->cmd = join_argv(argv);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	if (!(flags & HELPER_MERGE_OUTPUT))
		assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		exec_child(dir, argv, flags, out[1], err[1] >= 0 ? err[1] : out[1]);
	close(out[1]);
	if (err[1] >= 0)
		close(err[1]);
	read_pipes(out[0], err[0], &res->out, &res->err);
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	res->status = wait_status(ws);
	res->term_signal = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
	for (const char *p = res->err; *p; p++)
		res->err_lines += *p == '\n';
}

void helper_run_bootvm(struct helper_result *res, const char *subcommand,
		       const char *const *args, unsigned int flags)
{
	const char *bootvm = getenv("BOOTVM");
	size_t n = 0, i = 0;

	if (!bootvm)
		fail_msg("BOOTVM is not set (run through meson test)");
	while (args[n])
		n++;
	const char **argv = calloc(n + 3, sizeof(*argv));
	assert_non_null(argv);
	argv[i++] = bootvm;
	if (subcommand)
		argv[i++] = subcommand;
	memcpy(argv + i, args, n * sizeof(*argv));
	helper_run(res, NULL, argv, flags);
	free(argv);
	if (res->term_signal)
		fail_msg("%s: killed by signal %d; stderr: %s", res->cmd, res->term_signal, res->err);
}

void helper_result_free(struct helper_result *res)
{
	free(res->cmd);
	free(res->out);
	free(res->err);
	memset(res, 0, sizeof(*res));
}

void helper_expect_error(const struct helper_result *res, int status, const char *needle)
{
	if (res->status != status || res->err_lines != 1 || strncmp(res->err, "bootvm: ", 8) ||
	    !strstr(res->err, needle))
		fail_msg("%s: status %d (want %d), stderr: %s(want one 'bootvm: ' line with '%s')",
			 res->cmd, res->status, status, res->err, needle);
	if (*res->out)
		fail_msg("%s: printed on stdout: %s", res->cmd, res->out);
}
