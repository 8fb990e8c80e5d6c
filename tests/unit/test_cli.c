/* The bootvm command line: usage errors, help, exit statuses. Runs $BOOTVM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct result {
	int status;
	char out[16384];
	char err[4096];
	int err_lines;
};

static void read_all(int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < len && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
}

/* Run bootvm with args (NULL-terminated); stdin is /dev/null. */
static void run(struct result *res, const char *const *args)
{
	const char *bootvm = getenv("BOOTVM");
	int out[2], err[2];
	const char *argv[32] = { bootvm };
	int i;

	assert_non_null(bootvm);
	for (i = 0; args[i]; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	assert_int_equal(pipe(out), 0);
	assert_int_equal(pipe(err), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		execv(bootvm, (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	read_all(err[0], res->err, sizeof(res->err));
	read_all(out[0], res->out, sizeof(res->out));
	close(out[0]);
	close(err[0]);
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws));
	res->status = WEXITSTATUS(ws);
	res->err_lines = 0;
	for (char *p = res->err; *p; p++)
		res->err_lines += *p == '\n';
}

/* A usage error: status 2, exactly one "bootvm: " line that mentions `needle`. */
static void expect_usage_error(const char *needle, const char *const *args)
{
	struct result r;

	run(&r, args);
	if (r.status != 2 || r.err_lines != 1 || strncmp(r.err, "bootvm: ", 8) ||
	    !strstr(r.err, needle))
		fail_msg("args '%s ...': status %d, stderr: %s", args[0], r.status, r.err);
	assert_string_equal(r.out, "");
}

static void test_usage_errors(void **state)
{
	expect_usage_error("--kernel is required", (const char *[]){ "run", NULL });
	expect_usage_error("unknown option '--frobnicate'",
			   (const char *[]){ "run", "--frobnicate", "-k", "x", NULL });
	expect_usage_error("'--memory' needs a value", (const char *[]){ "run", "-k", "x", "--memory", NULL });
	expect_usage_error("--memory 'lots'", (const char *[]){ "run", "-k", "x", "-m", "lots", NULL });
	expect_usage_error("not a multiple of 4 KiB", (const char *[]){ "run", "-k", "x", "-m", "1001K", NULL });
	expect_usage_error("at least 8 MiB", (const char *[]){ "run", "-k", "x", "-m", "4M", NULL });
	expect_usage_error("--cpus '0'", (const char *[]){ "run", "-k", "x", "-c", "0", NULL });
	expect_usage_error("--cpus '256'", (const char *[]){ "run", "-k", "x", "-c", "256", NULL });
	expect_usage_error("--cpus '2x'", (const char *[]){ "run", "-k", "x", "--cpus=2x", NULL });
	expect_usage_error("--cpus '-1'", (const char *[]){ "run", "-k", "x", "--cpus", "-1", NULL });
	expect_usage_error("--console 'tty'", (const char *[]){ "run", "-k", "x", "--console", "tty", NULL });
	expect_usage_error("--console 'file:'", (const char *[]){ "run", "-k", "x", "--console", "file:", NULL });
	expect_usage_error("unexpected argument 'extra'",
			   (const char *[]){ "run", "-k", "x", "extra", NULL });
	expect_usage_error("unknown command 'boot'", (const char *[]){ "boot", NULL });
}

static void test_help(void **state)
{
	struct result r;

	run(&r, (const char *[]){ "run", "--help", NULL });
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Usage: bootvm run"));
	/* Every documented exit status is in the help. */
	for (const char *const *s = (const char *[]){ "  0 ", "  1 ", "  2 ", "  3 ", "  4 ",
						    "  5 ", "  6 ", "  7 ", "128+N", NULL }; *s; s++)
		if (!strstr(r.out, *s))
			fail_msg("run --help lacks exit status '%s'", *s);

	run(&r, (const char *[]){ "--help", NULL });
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "run"));
	assert_non_null(strstr(r.out, "initramfs"));

	run(&r, (const char *[]){ "--version", NULL });
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "bootvm "));

	run(&r, (const char *[]){ NULL });
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "Usage:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_help),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
