/* backends/disk.c: opening, locking, both engines, limits and fault injection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/disk.h"
#include "util/log.h"

#include "helpers.h"

#define IMG_SIZE (1u << 20)

struct fixture {
	char *dir;
	char *img;
	struct helper_log log;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint8_t *data = malloc(IMG_SIZE);

	assert_non_null(f);
	assert_non_null(data);
	f->dir = helper_tmpdir("disk");
	f->img = helper_asprintf("%s/disk.img", f->dir);
	for (size_t i = 0; i < IMG_SIZE; i++)
		data[i] = (uint8_t)(i * 7 + (i >> 9));
	helper_write_file(f->img, data, IMG_SIZE, 0644);
	free(data);
	log_set_sink(helper_log_sink, &f->log);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	log_set_sink(NULL, NULL);
	free(f->img);
	assert_int_equal(helper_tmpdir_remove(f->dir), 0);
	free(f);
	return 0;
}

static struct disk *open_img(const char *path, bool ro, bool threads, bool discard)
{
	struct disk_opts o = {
		.path = path, .readonly = ro, .discard = discard, .force_threads = threads,
	};

	return disk_open(&o);
}

/* ---- completions ---- */

struct done_rec {
	unsigned int n;
	struct disk_req *reqs[64];
	int64_t results[64];
};

static void on_done(void *arg, struct disk_req *r, int64_t result)
{
	struct done_rec *d = arg;

	assert_true(d->n < 64);
	d->reqs[d->n] = r;
	d->results[d->n] = result;
	d->n++;
}

/* Wait (poll on the queue fd, as the device does) until n completions arrived. */
static void wait_done(struct disk_queue *q, struct done_rec *d, unsigned int n)
{
	double start = helper_now_ms();

	while (d->n < n) {
		struct pollfd p = { .fd = disk_queue_fd(q), .events = POLLIN };

		assert_true(helper_now_ms() - start < 10000);
		if (poll(&p, 1, 1000) == 1)
			disk_queue_complete(q, on_done, d);
	}
	assert_int_equal(d->n, n);
}

/* Submit one request, kick, wait; its result. */
static int64_t run1(struct disk_queue *q, struct disk_req *r)
{
	struct done_rec d = { 0 };

	assert_int_equal(disk_queue_submit(q, r), 0);
	disk_queue_kick(q);
	wait_done(q, &d, 1);
	assert_ptr_equal(d.reqs[0], r);
	return d.results[0];
}

static void pread_img(const char *path, void *buf, size_t len, off_t off)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 7 + (i >> 9));
}

/* ---- opening ---- */

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	char *p;

	p = helper_asprintf("%s/missing.img", f->dir);
	assert_null(open_img(p, false, false, false));
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, p));
	assert_non_null(strstr(f->log.last_error, "No such file"));
	free(p);

	assert_null(open_img(f->dir, true, false, false));
	assert_int_equal(f->log.errors, 2);
	assert_non_null(strstr(f->log.last_error, "directory"));
	assert_null(open_img(f->dir, false, false, false));
	assert_int_equal(f->log.errors, 3);
	assert_non_null(strstr(f->log.last_error, "directory"));

	static const uint8_t zeroes[1000];

	p = helper_asprintf("%s/odd.img", f->dir);
	helper_write_file(p, zeroes, sizeof(zeroes), 0644);
	assert_null(open_img(p, false, false, false));
	assert_int_equal(f->log.errors, 4);
	assert_non_null(strstr(f->log.last_error, p));
	assert_non_null(strstr(f->log.last_error, "1000"));
	assert_non_null(strstr(f->log.last_error, "multiple of 512"));
	free(p);

	/* Decided: an empty image is refused (a 0-sector disk is a mistake). */
	p = helper_asprintf("%s/empty.img", f->dir);
	helper_write_file(p, "", 0, 0644);
	assert_null(open_img(p, true, false, false));
	assert_int_equal(f->log.errors, 5);
	assert_non_null(strstr(f->log.last_error, "empty"));
	free(p);

	p = helper_asprintf("%s/fifo", f->dir);
	assert_int_equal(mkfifo(p, 0644), 0);
	assert_null(open_img(p, true, false, false));	/* must not block either */
	assert_int_equal(f->log.errors, 6);
	assert_non_null(strstr(f->log.last_error, "special file"));
	free(p);

	p = helper_asprintf("%s/noperm.img", f->dir);
	helper_write_file(p, zeroes, 512, 0600);
	assert_int_equal(chown(p, 0, 0) == 0 || geteuid() != 0, 1);
	if (geteuid() == 0) {
		/* root ignores modes: try as nobody, in a child. */
		pid_t pid = fork();
		int status;

		assert_true(pid >= 0);
		if (pid == 0) {
			struct helper_log clog = { 0 };

			log_set_sink(helper_log_sink, &clog);
			if (setgid(65534) < 0 || setuid(65534) < 0)
				_exit(2);
			_exit(!open_img(p, true, false, false) && clog.errors == 1 &&
			      strstr(clog.last_error, "Permission denied") &&
			      strstr(clog.last_error, p) ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	} else {
		chmod(p, 0);
		assert_null(open_img(p, false, false, false));
		assert_int_equal(f->log.errors, 7);
		assert_non_null(strstr(f->log.last_error, "Permission denied"));
	}
	free(p);
}

static void test_open_ok(void **state)
{
	struct fixture *f = *state;
	struct disk *d = open_img(f->img, true, false, false);

	assert_non_null(d);
	assert_int_equal(disk_size(d), IMG_SIZE);
	assert_true(disk_readonly(d));
	assert_false(disk_discard(d));	/* never on a read-only disk */
	assert_string_equal(disk_engine(d), "io_uring");
	disk_close(d);

	d = open_img(f->img, false, true, true);
	assert_non_null(d);
	assert_false(disk_readonly(d));
	assert_true(disk_discard(d));
	assert_string_equal(disk_engine(d), "threads");
	disk_close(d);
	assert_int_equal(f->log.errors, 0);
}

static void test_block_device(void **state)
{
	struct fixture *f = *state;
	struct disk *d;
	char *out;
	int status;

	/* A loop device needs root and losetup; skip quietly where there is none. */
	if (geteuid() != 0 || !helper_have_tool("losetup"))
		skip();
	out = helper_shell_out(&status, "losetup --find --show %s 2>/dev/null", f->img);
	if (status != 0 || !out || out[0] != '/') {
		free(out);
		skip();
	}
	out[strcspn(out, "\n")] = '\0';
	d = open_img(out, false, false, true);
	assert_non_null(d);
	assert_int_equal(disk_size(d), IMG_SIZE);
	{
		struct disk_queue *q = disk_queue_create(d, 2);
		uint8_t buf[4096];
		struct iovec iov = { buf, sizeof(buf) };
		struct disk_req r = { .op = DISK_OP_READ, .offset = 4096, .iov = &iov, .iovcnt = 1 };

		assert_int_equal(run1(q, &r), 4096);
		assert_int_equal(buf[100], pattern(4096 + 100));
		r = (struct disk_req){ .op = DISK_OP_WRITE_ZEROES, .offset = 4096, .len = 4096 };
		assert_int_equal(run1(q, &r), 4096);
		r = (struct disk_req){ .op = DISK_OP_DISCARD, .offset = 8192, .len = 4096 };
		assert_int_equal(run1(q, &r), 4096);
		r = (struct disk_req){ .op = DISK_OP_FLUSH };
		assert_int_equal(run1(q, &r), 0);
		r = (struct disk_req){ .op = DISK_OP_READ, .offset = 4096, .iov = &iov, .iovcnt = 1 };
		assert_int_equal(run1(q, &r), 4096);
		for (size_t i = 0; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 0);
		disk_queue_destroy(q);
	}
	disk_close(d);
	helper_shell("losetup -d %s", out);
	free(out);
}

static void test_locking(void **state)
{
	struct fixture *f = *state;
	struct disk *rw, *ro1, *ro2;

	rw = open_img(f->img, false, false, false);
	assert_non_null(rw);
	assert_null(open_img(f->img, false, false, false));
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.last_error, "in use by another process (locked)"));
	assert_non_null(strstr(f->log.last_error, f->img));
	assert_null(open_img(f->img, true, false, false));
	assert_int_equal(f->log.errors, 2);
	assert_non_null(strstr(f->log.last_error, "locked"));
	disk_close(rw);

	ro1 = open_img(f->img, true, false, false);
	ro2 = open_img(f->img, true, true, false);
	assert_non_null(ro1);
	assert_non_null(ro2);
	assert_null(open_img(f->img, false, false, false));	/* readers exclude a writer */
	assert_int_equal(f->log.errors, 3);
	disk_close(ro1);
	assert_null(open_img(f->img, false, false, false));	/* one reader still there */
	disk_close(ro2);

	rw = open_img(f->img, false, false, false);	/* all gone: free again */
	assert_non_null(rw);
	disk_close(rw);
	assert_int_equal(f->log.errors, 4);
}

/* ---- I/O through each engine ---- */

static void io_engine(struct fixture *f, bool threads)
{
	struct disk *d = open_img(f->img, false, threads, true);
	struct disk_queue *q;
	uint8_t *buf = malloc(IMG_SIZE), *chk = malloc(IMG_SIZE);
	struct iovec iov[3];
	struct disk_req r;
	struct stat st_before, st_after;

	assert_non_null(d);
	assert_string_equal(disk_engine(d), threads ? "threads" : "io_uring");
	q = disk_queue_create(d, 8);
	assert_non_null(q);

	/* A read scattered over three buffers. */
	iov[0] = (struct iovec){ buf, 512 };
	iov[1] = (struct iovec){ buf + 512, 1024 };
	iov[2] = (struct iovec){ buf + 1536, 2560 };
	r = (struct disk_req){ .op = DISK_OP_READ, .offset = 8192, .iov = iov, .iovcnt = 3 };
	assert_int_equal(run1(q, &r), 4096);
	for (size_t i = 0; i < 4096; i++)
		assert_int_equal(buf[i], pattern(8192 + i));

	/* A write, then pread sees it. */
	memset(buf, 0xa5, 4096);
	memset(buf + 4096, 0x5a, 4096);
	iov[0] = (struct iovec){ buf, 4096 };
	iov[1] = (struct iovec){ buf + 4096, 4096 };
	r = (struct disk_req){ .op = DISK_OP_WRITE, .offset = 65536, .iov = iov, .iovcnt = 2 };
	assert_int_equal(run1(q, &r), 8192);
	pread_img(f->img, chk, 8192, 65536);
	assert_memory_equal(chk, buf, 8192);

	r = (struct disk_req){ .op = DISK_OP_FLUSH };
	assert_int_equal(run1(q, &r), 0);

	/* DISCARD punches a hole: zeroes, fewer blocks, same size. */
	assert_int_equal(stat(f->img, &st_before), 0);
	r = (struct disk_req){ .op = DISK_OP_DISCARD, .offset = 131072, .len = 65536 };
	assert_int_equal(run1(q, &r), 65536);
	pread_img(f->img, chk, 65536, 131072);
	for (size_t i = 0; i < 65536; i++)
		assert_int_equal(chk[i], 0);
	assert_int_equal(stat(f->img, &st_after), 0);
	assert_int_equal(st_after.st_size, IMG_SIZE);
	assert_true(st_after.st_blocks < st_before.st_blocks);
	pread_img(f->img, chk, 1, 131072 - 1);	/* neighbours untouched */
	assert_int_equal(chk[0], pattern(131072 - 1));
	pread_img(f->img, chk, 1, 131072 + 65536);
	assert_int_equal(chk[0], pattern(131072 + 65536));

	/* WRITE_ZEROES, with and without unmap. */
	r = (struct disk_req){ .op = DISK_OP_WRITE_ZEROES, .offset = 262144, .len = 4096 };
	assert_int_equal(run1(q, &r), 4096);
	r = (struct disk_req){ .op = DISK_OP_WRITE_ZEROES, .offset = 266240, .len = 8192,
			       .unmap = true };
	assert_int_equal(run1(q, &r), 8192);
	pread_img(f->img, chk, 12288 + 1, 262144);
	for (size_t i = 0; i < 12288; i++)
		assert_int_equal(chk[i], 0);
	assert_int_equal(chk[12288], pattern(262144 + 12288));

	/* Out of range, and a write that would grow the file: refused, file unchanged. */
	iov[0] = (struct iovec){ buf, 1024 };
	r = (struct disk_req){ .op = DISK_OP_WRITE, .offset = IMG_SIZE - 512, .iov = iov,
			       .iovcnt = 1 };
	assert_int_equal(run1(q, &r), -EINVAL);
	r = (struct disk_req){ .op = DISK_OP_DISCARD, .offset = UINT64_MAX - 10, .len = 4096 };
	assert_int_equal(run1(q, &r), -EINVAL);
	assert_int_equal(stat(f->img, &st_after), 0);
	assert_int_equal(st_after.st_size, IMG_SIZE);

	disk_queue_destroy(q);
	disk_close(d);
	free(buf);
	free(chk);
	assert_int_equal(f->log.errors, 0);
}

static void test_io_uring(void **state)
{
	io_engine(*state, false);
}

static void test_io_threads(void **state)
{
	io_engine(*state, true);
}

/* Several in flight at once; the depth limit; the opaque pointer comes back. */
static void depth_engine(struct fixture *f, bool threads)
{
	struct disk *d = open_img(f->img, true, threads, false);
	struct disk_queue *q = disk_queue_create(d, 4);
	uint8_t bufs[5][512];
	struct iovec iov[5];
	struct disk_req r[5];
	struct done_rec done = { 0 };
	bool seen[4] = { false };

	assert_non_null(q);
	for (int i = 0; i < 5; i++) {
		iov[i] = (struct iovec){ bufs[i], 512 };
		r[i] = (struct disk_req){ .op = DISK_OP_READ, .offset = (uint64_t)i * 4096,
					  .iov = &iov[i], .iovcnt = 1, .opaque = &seen[i % 4] };
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(disk_queue_submit(q, &r[i]), 0);
	assert_int_equal(disk_queue_submit(q, &r[4]), -EBUSY);
	disk_queue_kick(q);
	wait_done(q, &done, 4);
	for (unsigned int i = 0; i < 4; i++) {
		struct disk_req *x = done.reqs[i];

		assert_int_equal(done.results[i], 512);
		*(bool *)x->opaque = true;
		assert_int_equal(((uint8_t *)x->iov[0].iov_base)[0], pattern(x->offset));
	}
	for (int i = 0; i < 4; i++)
		assert_true(seen[i]);
	/* Room again. */
	assert_int_equal(run1(q, &r[4]), 512);
	assert_int_equal(bufs[4][0], pattern(4 * 4096));

	/* Destroy with requests in flight and never reaped: waits, no leak. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(disk_queue_submit(q, &r[i]), 0);
	disk_queue_kick(q);
	disk_queue_destroy(q);
	disk_close(d);
}

static void test_depth_uring(void **state)
{
	depth_engine(*state, false);
}

static void test_depth_threads(void **state)
{
	depth_engine(*state, true);
}

/* Polling: ready() and poll() reap without the eventfd, which stays readable for later. */
static void poll_engine(struct fixture *f, bool threads)
{
	struct disk *d = open_img(f->img, true, threads, false);
	struct disk_queue *q = disk_queue_create(d, 4);
	uint8_t buf[3][512];
	struct iovec iov[3];
	struct disk_req r[3];
	struct done_rec done = { 0 };
	struct pollfd p;
	double start;

	assert_non_null(q);
	assert_false(disk_queue_ready(q));
	assert_int_equal(disk_queue_poll(q, on_done, &done), 0);
	for (int i = 0; i < 3; i++) {
		iov[i] = (struct iovec){ buf[i], 512 };
		r[i] = (struct disk_req){ .op = DISK_OP_READ, .offset = (uint64_t)i * 8192,
					  .iov = &iov[i], .iovcnt = 1 };
	}
	/* r[2] is out of range: it completes locally, and polling finds it too. */
	r[2].offset = IMG_SIZE;
	for (int i = 0; i < 3; i++)
		assert_int_equal(disk_queue_submit(q, &r[i]), 0);
	disk_queue_kick(q);
	start = helper_now_ms();
	while (done.n < 3) {
		assert_true(helper_now_ms() - start < 10000);
		if (disk_queue_ready(q))
			disk_queue_poll(q, on_done, &done);
		else
			usleep(100);
	}
	assert_false(disk_queue_ready(q));
	for (unsigned int i = 0; i < 3; i++) {
		struct disk_req *x = done.reqs[i];

		if (x == &r[2]) {
			assert_int_equal(done.results[i], -EINVAL);
		} else {
			assert_int_equal(done.results[i], 512);
			assert_int_equal(((uint8_t *)x->iov[0].iov_base)[0], pattern(x->offset));
		}
	}
	/* The eventfd was left alone; complete() resets it and finds nothing more. */
	p = (struct pollfd){ .fd = disk_queue_fd(q), .events = POLLIN };
	assert_int_equal(poll(&p, 1, 1000), 1);	/* the kernel signals just after the CQE */
	assert_int_equal(disk_queue_complete(q, on_done, &done), 0);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(done.n, 3);
	disk_queue_destroy(q);
	disk_close(d);
}

static void test_poll_uring(void **state)
{
	poll_engine(*state, false);
}

static void test_poll_threads(void **state)
{
	poll_engine(*state, true);
}

/* A read-only disk refuses writes even if the caller forgets to check. */
static void test_readonly_refuses_writes(void **state)
{
	struct fixture *f = *state;
	struct disk *d = open_img(f->img, true, false, false);
	struct disk_queue *q = disk_queue_create(d, 2);
	uint8_t buf[512] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct disk_req r = { .op = DISK_OP_WRITE, .offset = 0, .iov = &iov, .iovcnt = 1 };

	assert_int_equal(run1(q, &r), -EROFS);
	r = (struct disk_req){ .op = DISK_OP_WRITE_ZEROES, .offset = 0, .len = 512 };
	assert_int_equal(run1(q, &r), -EROFS);
	r = (struct disk_req){ .op = DISK_OP_FLUSH };
	assert_int_equal(run1(q, &r), 0);
	pread_img(f->img, buf, 1, 1);
	assert_int_equal(buf[0], pattern(1));
	disk_queue_destroy(q);
	disk_close(d);
}

/* discard=off: DISCARD succeeds and leaves the data (and the blocks) alone. */
static void test_discard_off(void **state)
{
	struct fixture *f = *state;
	struct disk *d = open_img(f->img, false, false, false);
	struct disk_queue *q = disk_queue_create(d, 2);
	struct disk_req r = { .op = DISK_OP_DISCARD, .offset = 0, .len = 65536 };
	uint8_t b;

	assert_int_equal(run1(q, &r), 65536);
	pread_img(f->img, &b, 1, 100);
	assert_int_equal(b, pattern(100));
	disk_queue_destroy(q);
	disk_close(d);
}

/* ---- fault injection ---- */

static void faults_engine(struct fixture *f, bool threads)
{
	struct disk *d = open_img(f->img, false, threads, true);
	struct disk_queue *q = disk_queue_create(d, 4);
	uint8_t buf[4096];
	struct iovec iov = { buf, sizeof(buf) };
	struct disk_req rd = { .op = DISK_OP_READ, .offset = 4096, .iov = &iov, .iovcnt = 1 };
	struct disk_req wr = { .op = DISK_OP_WRITE, .offset = 4096, .iov = &iov, .iovcnt = 1 };
	struct disk_req fl = { .op = DISK_OP_FLUSH };

	assert_non_null(q);
	/* The 3rd read from now fails with EIO, once. */
	disk_inject_fault(d, DISK_OP_READ, 3, EIO);
	assert_int_equal(run1(q, &rd), 4096);
	assert_int_equal(run1(q, &rd), 4096);
	assert_int_equal(run1(q, &rd), -EIO);
	assert_int_equal(run1(q, &rd), 4096);

	/* The next write: ENOSPC, and the file is not written. */
	memset(buf, 0xee, sizeof(buf));
	disk_inject_fault(d, DISK_OP_WRITE, 1, ENOSPC);
	assert_int_equal(run1(q, &wr), -ENOSPC);
	pread_img(f->img, buf, 1, 4096);
	assert_int_equal(buf[0], pattern(4096));

	/* A short read: half the bytes, and only those. */
	memset(buf, 0xcc, sizeof(buf));
	disk_inject_fault(d, DISK_OP_READ, 1, 0);
	assert_int_equal(run1(q, &rd), 2048);
	assert_int_equal(buf[2047], pattern(4096 + 2047));
	assert_int_equal(buf[2048], 0xcc);

	/* Through the spec parser: a short write, a failing flush. */
	memset(buf, 0x11, sizeof(buf));
	assert_int_equal(disk_inject_faults_parse(d, "write:1:short,flush:2:EIO"), 0);
	assert_int_equal(run1(q, &wr), 2048);
	pread_img(f->img, buf, 4096, 4096);
	assert_int_equal(buf[2047], 0x11);
	assert_int_equal(buf[2048], pattern(4096 + 2048));
	assert_int_equal(run1(q, &fl), 0);
	assert_int_equal(run1(q, &fl), -EIO);
	assert_int_equal(run1(q, &fl), 0);

	assert_int_equal(disk_inject_faults_parse(d, "discard:1:ENOSPC,write-zeroes:1:EIO"), 0);
	struct disk_req dc = { .op = DISK_OP_DISCARD, .offset = 0, .len = 4096 };
	struct disk_req wz = { .op = DISK_OP_WRITE_ZEROES, .offset = 0, .len = 4096 };
	assert_int_equal(run1(q, &dc), -ENOSPC);
	assert_int_equal(run1(q, &wz), -EIO);
	pread_img(f->img, buf, 1, 0);
	assert_int_equal(buf[0], pattern(0));
	assert_int_equal(f->log.errors, 0);

	disk_queue_destroy(q);
	disk_close(d);
}

static void test_faults_uring(void **state)
{
	faults_engine(*state, false);
}

static void test_faults_threads(void **state)
{
	faults_engine(*state, true);
}

static void test_faults_parse_errors(void **state)
{
	struct fixture *f = *state;
	struct disk *d = open_img(f->img, true, false, false);
	static const char *const bad[] = {
		"read", "read:1", "read:0:EIO", "read:x:EIO", "read:1:EPERM", "bogus:1:EIO",
		"read:1:EIO,", ",read:1:EIO", "read:-1:EIO", "read:1:EIO:x",
		"read:99999999999:EIO", "read:1:",
	};
	int errors = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(disk_inject_faults_parse(d, bad[i]), -1);
		assert_int_equal(f->log.errors, ++errors);
		assert_non_null(strstr(f->log.last_error, "disk faults"));
		assert_non_null(strstr(f->log.last_error, bad[i]));
	}
	/* An empty spec (BOOTVM_DISK_FAULTS= set but empty) injects nothing. */
	assert_int_equal(disk_inject_faults_parse(d, ""), 0);
	assert_int_equal(f->log.errors, errors);
	disk_close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_uring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_depth_uring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_uring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_depth_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_refuses_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faults_uring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faults_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faults_parse_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
