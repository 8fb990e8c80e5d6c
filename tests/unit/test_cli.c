/* The bootvm command line: usage errors, help, exit statuses. Runs $BOOTVM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* A usage error: status 2, exactly one "bootvm: " line that mentions `needle`. */
static void expect_usage_error(const char *needle, const char *const *args)
{
	struct helper_result r;

	helper_run_bootvm(&r, NULL, args, 0);
	helper_expect_error(&r, 2, needle);
	helper_result_free(&r);
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
	/* Seconds from 0 to a day: nothing else, no unit. */
	for (const char *const *v = (const char *[]){ "soon", "-1", "5s", "nan", "86401", " 5", NULL };
	     *v; v++) {
		char needle[64];

		snprintf(needle, sizeof(needle), "--shutdown-grace '%s'", *v);
		expect_usage_error(needle, (const char *[]){ "run", "-k", "x", "--shutdown-grace", *v,
							     NULL });
	}
	expect_usage_error("'--shutdown-grace' needs a value",
			   (const char *[]){ "run", "-k", "x", "--shutdown-grace", NULL });
	expect_usage_error("--console 'tty'", (const char *[]){ "run", "-k", "x", "--console", "tty", NULL });
	expect_usage_error("--console 'file:'", (const char *[]){ "run", "-k", "x", "--console", "file:", NULL });
	expect_usage_error("unexpected argument 'extra'",
			   (const char *[]){ "run", "-k", "x", "extra", NULL });
	expect_usage_error("unknown command 'boot'", (const char *[]){ "boot", NULL });

	/* Refused options are named as given, whichever way they are spelled. */
	expect_usage_error("unknown option '-x'", (const char *[]){ "run", "-xv", "-k", "x", NULL });
	expect_usage_error("unknown option '-x'", (const char *[]){ "run", "-k", "x", "-vx", NULL });
	expect_usage_error("option '-k' needs a value", (const char *[]){ "run", "-vk", NULL });
	expect_usage_error("option '--stats' takes no value",
			   (const char *[]){ "run", "-k", "x", "--stats=1", NULL });
	expect_usage_error("ambiguous option '--c'", (const char *[]){ "run", "-k", "x", "--c", "2", NULL });
	expect_usage_error("unknown option '--frob'", (const char *[]){ "run", "-k", "x", "--frob=1", NULL });
	expect_usage_error("initramfs: unknown option '-x'",
			   (const char *[]){ "initramfs", "-xv", "-o", "x", NULL });
	expect_usage_error("option '--keep-owner' takes no value",
			   (const char *[]){ "initramfs", "-o", "x", "--keep-owner=1", ".", NULL });
}

/* Help or version text that cannot be written is an error, not a silent status 0. */
static void test_stdout_write_error(void **state)
{
	const char *bootvm = getenv("BOOTVM");
	int status;

	(void)state;
	assert_non_null(bootvm);
	for (const char *const *args = (const char *[]){ "--version", "--help", "run --help",
							  "initramfs --help", NULL }; *args; args++) {
		char *err = helper_shell_out(&status, "'%s' %s 2>&1 >/dev/full", bootvm, *args);

		if (status != 1 || strcmp(err, "bootvm: cannot write to standard output: "
					  "No space left on device\n"))
			fail_msg("bootvm %s >/dev/full: status %d, stderr '%s'", *args, status, err);
		free(err);
	}
}

static void test_help(void **state)
{
	struct helper_result r;

	helper_run_bootvm(&r, NULL, (const char *[]){ "run", "--help", NULL }, 0);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Usage: bootvm run"));
	/* Every documented exit status is in the help. */
	for (const char *const *s = (const char *[]){ "  0 ", "  1 ", "  2 ", "  3 ", "  4 ",
						    "  5 ", "  6 ", "  7 ", "128+N", NULL }; *s; s++)
		if (!strstr(r.out, *s))
			fail_msg("run --help lacks exit status '%s'", *s);
	helper_result_free(&r);

	helper_run_bootvm(&r, NULL, (const char *[]){ "--help", NULL }, 0);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "run"));
	assert_non_null(strstr(r.out, "initramfs"));
	helper_result_free(&r);

	helper_run_bootvm(&r, NULL, (const char *[]){ "--version", NULL }, 0);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "bootvm "));
	helper_result_free(&r);

	helper_run_bootvm(&r, NULL, (const char *[]){ NULL }, 0);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "Usage:"));
	helper_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_stdout_write_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
