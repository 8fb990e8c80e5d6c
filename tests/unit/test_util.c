/* util/: size parsing and formatting, file mapping, log capture. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/file.h"
#include "util/log.h"
#include "util/prefault.h"
#include "util/size.h"

#include "helpers.h"

static void test_size_parse_units(void **state)
{
	static const struct {
		const char *text;
		uint64_t value;
	} cases[] = {
		{ "512M", 512ULL << 20 }, { "2G", 2ULL << 30 }, { "1536MiB", 1536ULL << 20 },
		{ "4096k", 4096ULL << 10 }, { "1T", 1ULL << 40 }, { "8GB", 8ULL << 30 },
		{ "4096B", 4096 },
		{ "256", 256ULL << 20 },	/* a bare number is MiB, as in QEMU */
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 0;
		if (size_parse(cases[i].text, &v) != 0 || v != cases[i].value)
			fail_msg("size_parse(\"%s\"): %llu, want %llu", cases[i].text,
				 (unsigned long long)v, (unsigned long long)cases[i].value);
	}
}

static void test_size_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"", "M", "-1G", " 1G", "1G ", "1.5G", "1X", "1Gi", "1MiBs", "0x10M",
		"99999999999999999999", "17179869184T", NULL,
	};
	uint64_t v;

	for (int i = 0; bad[i]; i++)
		assert_int_equal(size_parse(bad[i], &v), -1);
	assert_int_equal(size_parse(NULL, &v), -1);
}

static void test_size_format(void **state)
{
	char buf[32];

	assert_string_equal(size_format(512ULL << 20, buf, sizeof(buf)), "512 MiB");
	assert_string_equal(size_format(1536ULL << 20, buf, sizeof(buf)), "1.5 GiB");
	assert_string_equal(size_format(100, buf, sizeof(buf)), "100 bytes");
	assert_string_equal(size_format(4096, buf, sizeof(buf)), "4 KiB");
}

static void test_file_map_errors(void **state)
{
	struct helper_log cap = { 0 };
	struct file_map fm;

	log_set_sink(helper_log_sink, &cap);
	assert_int_equal(file_map("/nonexistent/kernel", "kernel", &fm), -1);
	assert_int_equal(cap.errors, 1);
	assert_non_null(strstr(cap.last_error, "kernel '/nonexistent/kernel'"));
	assert_non_null(strstr(cap.last_error, "No such file"));

	assert_int_equal(file_map("/tmp", "initrd", &fm), -1);
	assert_int_equal(cap.errors, 2);
	assert_non_null(strstr(cap.last_error, "not a regular file"));
	log_set_sink(NULL, NULL);
}

static void test_file_map_contents(void **state)
{
	char path[] = "/tmp/bootvm-test-XXXXXX";
	int fd = mkstemp(path);
	struct file_map fm;

	assert_true(fd >= 0);
	assert_int_equal(file_map(path, "kernel", &fm), 0);	/* empty is fine */
	assert_null(fm.data);
	assert_int_equal(fm.size, 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	assert_int_equal(file_map(path, "kernel", &fm), 0);
	assert_int_equal(fm.size, 3);
	assert_memory_equal(fm.data, "abc", 3);
	file_unmap(&fm);
	assert_null(fm.data);
	close(fd);
	unlink(path);
}

/* The pages a write is about to cover are resident after it, and only those. */
static void test_prefault_write(void **state)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char vec[16];
	uint8_t *p = mmap(NULL, 16 * page, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	assert_true(p != MAP_FAILED);
	assert_int_equal(mincore(p, 16 * page, vec), 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(vec[i] & 1, 0);
	/* From the middle of page 2 to the middle of page 6. */
	prefault_write(p + 2 * page + 100, 4 * page);
	assert_int_equal(mincore(p, 16 * page, vec), 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(vec[i] & 1, i >= 2 && i <= 6);
	prefault_write(p + 10 * page, 0);	/* nothing */
	assert_int_equal(mincore(p, 16 * page, vec), 0);
	assert_int_equal(vec[10] & 1, 0);
	munmap(p, 16 * page);
}

struct origin_seen {
	char file[64];
	int line;
	struct helper_log log;
};

static void origin_sink(enum log_level level, const char *msg, void *opaque)
{
	struct origin_seen *o = opaque;
	const char *file;

	log_origin(&file, &o->line);
	snprintf(o->file, sizeof(o->file), "%s", file ? file : "");
	helper_log_sink(level, msg, &o->log);
}

static void *log_other_thread(void *arg)
{
	log_error("an error on another thread");
	return arg;
}

/* log_capture_first_error() keeps this thread's first error; log_origin() says where from. */
static void test_log_capture_and_origin(void **state)
{
	struct origin_seen o = { 0 };
	char buf[32] = "stale";
	pthread_t t;
	int line;

	log_set_sink(origin_sink, &o);
	log_capture_first_error(buf, sizeof(buf));
	assert_string_equal(buf, "");
	log_warn("a warning is not an error");
	pthread_create(&t, NULL, log_other_thread, NULL);
	pthread_join(t, NULL);
	assert_string_equal(buf, "");
	line = __LINE__ + 1;
	log_error("first error, long enough to be cut short here");
	log_error("second error");
	log_capture_first_error(NULL, 0);
	log_error("after the capture");
	log_set_sink(NULL, NULL);
	assert_string_equal(buf, "first error, long enough to be ");	/* cut to the buffer */
	assert_int_equal(o.log.errors, 4);			/* still all logged */
	assert_string_equal(o.log.last_error, "after the capture");
	assert_non_null(strstr(o.file, "test_util.c"));
	assert_int_equal(o.line, line + 3);
	/* log_msg() itself records no origin. */
	log_set_sink(origin_sink, &o);
	log_msg(LOG_ERROR, "no origin");
	log_set_sink(NULL, NULL);
	assert_string_equal(o.file, "");
	assert_int_equal(o.line, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_parse_units),
		cmocka_unit_test(test_size_parse_rejects),
		cmocka_unit_test(test_size_format),
		cmocka_unit_test(test_file_map_errors),
		cmocka_unit_test(test_file_map_contents),
		cmocka_unit_test(test_prefault_write),
		cmocka_unit_test(test_log_capture_and_origin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
