/*
 * The host side of a block device: a raw image file or block device, and
 * asynchronous requests on it through io_uring (liburing), or a small
 * thread pool where io_uring is unavailable (old kernel, seccomp, ENOSYS).
 *
 * disk_open() validates the image (size a multiple of 512, block devices
 * sized with BLKGETSIZE64; an empty image is refused too: a 0-sector disk
 * is a mistake, a forgotten truncate) and locks it as QEMU does with OFD
 * locks: a read-write open excludes any other open, read-only opens share.
 * A file system without OFD locks gets a warning, not a refusal (as QEMU).
 * cache=none opens with O_DIRECT: the caller's buffers must then be
 * 512-byte aligned (Linux's block layer aligns them), else EINVAL.
 *
 * Each device queue gets its own struct disk_queue, used by one thread (the
 * device's I/O thread): submit requests, then, when disk_queue_fd() is
 * readable, reap completions with disk_queue_complete().
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

enum disk_cache {
	DISK_CACHE_WRITEBACK,	/* page cache; FLUSH is fdatasync */
	DISK_CACHE_NONE,	/* O_DIRECT; FLUSH is still fdatasync */
};

struct disk_opts {
	const char *path;
	bool readonly;
	enum disk_cache cache;
	bool discard;		/* DISCARD punches holes; WRITE_ZEROES may too */
	bool force_threads;	/* tests: use the thread pool even if io_uring works */
};

enum disk_op {
	DISK_OP_READ,
	DISK_OP_WRITE,
	DISK_OP_FLUSH,
	DISK_OP_DISCARD,	/* fallocate(PUNCH_HOLE | KEEP_SIZE) */
	DISK_OP_WRITE_ZEROES,	/* fallocate(ZERO_RANGE), or PUNCH_HOLE when unmap is allowed */
	DISK_OP_COUNT,
};

struct disk_req {
	enum disk_op op;
	uint64_t offset;	/* bytes */
	uint64_t len;		/* DISCARD / WRITE_ZEROES: bytes */
	bool unmap;		/* WRITE_ZEROES: a hole is fine */
	const struct iovec *iov;	/* READ / WRITE */
	unsigned int iovcnt;
	void *opaque;		/* the caller's, handed back at completion */
};

struct disk;
struct disk_queue;

/* Open, check and lock the image. Logs one line naming the path and why, returns NULL. */
struct disk *disk_open(const struct disk_opts *opts);
void disk_close(struct disk *d);
uint64_t disk_size(const struct disk *d);	/* bytes, a multiple of 512 */
bool disk_readonly(const struct disk *d);
bool disk_discard(const struct disk *d);
/* "io_uring" or "threads": what serves the requests. */
const char *disk_engine(const struct disk *d);

/* A submission/completion queue of up to depth requests in flight. */
struct disk_queue *disk_queue_create(struct disk *d, unsigned int depth);
/* Waits for requests in flight, then frees. */
void disk_queue_destroy(struct disk_queue *q);
/* Readable (EPOLLIN) when completions are waiting. */
int disk_queue_fd(const struct disk_queue *q);
/*
 * Queue r (which must stay valid until its completion). Requests may be
 * batched until disk_queue_kick(). Returns 0, or -EBUSY when depth requests
 * are already in flight.
 */
int disk_queue_submit(struct disk_queue *q, struct disk_req *r);
void disk_queue_kick(struct disk_queue *q);
/*
 * Hand every finished request to done(arg, req, result) with result the
 * bytes transferred or -errno: READ/WRITE the bytes moved (a short transfer
 * is reported as it is), FLUSH 0, DISCARD/WRITE_ZEROES len. A request out
 * of the image's range is -EINVAL and a write of any kind to a read-only
 * disk -EROFS, without touching the file. DISCARD is a hint: with
 * discard=off, or where the file system cannot punch holes (EOPNOTSUPP),
 * it succeeds doing nothing. WRITE_ZEROES falls back from ZERO_RANGE to
 * PUNCH_HOLE where ZERO_RANGE is unsupported. done() may submit again.
 * Returns how many completed.
 */
unsigned int disk_queue_complete(struct disk_queue *q,
				 void (*done)(void *arg, struct disk_req *r, int64_t result),
				 void *arg);

/*
 * For a thread that polls instead of sleeping on disk_queue_fd():
 * disk_queue_ready() says whether completions wait (no system call), and
 * disk_queue_poll() hands them to done() like disk_queue_complete() but
 * leaves the eventfd alone (it stays readable; the next
 * disk_queue_complete() resets it). Returns how many completed.
 */
bool disk_queue_ready(struct disk_queue *q);
unsigned int disk_queue_poll(struct disk_queue *q,
			     void (*done)(void *arg, struct disk_req *r, int64_t result),
			     void *arg);

/*
 * Fault injection for tests: the nth (1-based) request of op from now on
 * fails with -err (err > 0), or, when err == 0, transfers only half its
 * bytes (a short read/write; DISCARD/WRITE_ZEROES do and report half the
 * range; a FLUSH fails with -EIO). One fault per op at a time; the file is
 * not touched by a failed request. Any thread.
 */
void disk_inject_fault(struct disk *d, enum disk_op op, unsigned int nth, int err);
/*
 * Parse "op:N:ERR[,op:N:ERR...]" (op read|write|flush|discard|write-zeroes,
 * ERR EIO|ENOSPC|short) and inject each. "" injects nothing. -1 (logged,
 * naming the spec) on a malformed spec; items before the bad one stay armed.
 */
int disk_inject_faults_parse(struct disk *d, const char *spec);
