/*
 * The block backend: see disk.h.
 *
 * Both engines share one shape. A queue owns depth request slots and an
 * eventfd; a request that never reaches the kernel (an injected fault, a
 * request the backend refuses, a DISCARD the image does not want) completes
 * "locally": its slot goes on a list and the eventfd is bumped, so the
 * caller sees every completion the same way.
 *  - io_uring: one ring per queue with the eventfd registered; the kernel
 *    bumps it per CQE.
 *  - threads: a few workers per queue take kicked slots from a FIFO, run
 *    them with preadv/pwritev/fdatasync/fallocate and put them on a done
 *    list, bumping the eventfd.
 * Requests are range-checked against the image here too (the device checks
 * first), so a bug above cannot make us grow the file.
 */
#include "backends/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "vmm/thread.h"

#define DISK_SECTOR		512u
#define DISK_POOL_THREADS	4u	/* workers per queue in the thread-pool engine */

enum disk_engine_kind { ENGINE_URING, ENGINE_THREADS };

struct disk_fault {
	unsigned int countdown;		/* 0: none armed */
	int err;
};

struct disk {
	int fd;
	char *path;
	uint64_t size;
	bool readonly, discard, blockdev;
	enum disk_engine_kind engine;

	atomic_bool zero_range_unsupported;	/* learnt from EOPNOTSUPP */

	atomic_bool faults_armed;	/* fast path: skip the lock when none */
	pthread_mutex_t fault_lock;
	struct disk_fault faults[DISK_OP_COUNT];
};

struct disk_slot {
	struct disk_req *r;
	const struct iovec *iov;	/* r->iov, or a truncated copy (short fault) */
	unsigned int iovcnt;
	struct iovec *fault_iov;	/* owned copy, freed at completion */
	uint64_t len;			/* DISCARD / WRITE_ZEROES bytes actually done */
	uint64_t report_len;		/* ... and reported on success */
	int mode;			/* fallocate mode in use */
	int64_t result;
	struct disk_slot *next;
};

struct disk_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* to workers: work queued, or stop */
	struct disk_slot *pending, **pending_tail;
	struct disk_slot *done, **done_tail;
	bool done_ready;		/* done is not empty: read without the lock */
	bool stop;
	unsigned int nr_threads;
	pthread_t threads[DISK_POOL_THREADS];
};

struct disk_queue {
	struct disk *d;
	enum disk_engine_kind engine;
	unsigned int depth, inflight;
	int efd;
	struct disk_slot *slots, *free;
	struct disk_slot *local, **local_tail;	/* completed without the kernel */

	struct io_uring ring;
	unsigned int ring_unsubmitted;	/* SQEs prepared since the last kick */

	struct disk_slot *batch, **batch_tail;	/* threads: submitted, not kicked */
	struct disk_pool pool;
};

/* ---- opening ---- */

static int disk_lock(struct disk *d)
{
	struct flock fl = {
		.l_type = d->readonly ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0,	/* the whole file */
	};

	if (fcntl(d->fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES) {
		log_error("disk %s is in use by another process (locked)", d->path);
		return -1;
	}
	/* As QEMU: a file system without OFD locks still serves the image. */
	log_warn("disk %s: cannot lock the image (%s); continuing without a lock",
		 d->path, strerror(errno));
	return 0;
}

static bool disk_uring_usable(void)
{
	static const int ops[] = { IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC,
				   IORING_OP_FALLOCATE };
	struct io_uring ring;
	struct io_uring_probe *probe;
	bool ok = true;

	if (io_uring_queue_init(2, &ring, 0) < 0)
		return false;
	probe = io_uring_get_probe_ring(&ring);
	if (!probe) {
		ok = false;
	} else {
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (!io_uring_opcode_supported(probe, ops[i]))
				ok = false;
		io_uring_free_probe(probe);
	}
	io_uring_queue_exit(&ring);
	return ok;
}

struct disk *disk_open(const struct disk_opts *opts)
{
	struct disk *d;
	struct stat st;
	int flags;

	d = calloc(1, sizeof(*d));
	if (!d || !(d->path = strdup(opts->path))) {
		log_error("disk %s: out of memory", opts->path);
		goto err_free;
	}
	d->readonly = opts->readonly;
	d->discard = opts->discard && !opts->readonly;
	pthread_mutex_init(&d->fault_lock, NULL);

	/* O_NONBLOCK: a FIFO must not block open() before we can refuse it. */
	flags = (opts->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	if (opts->cache == DISK_CACHE_NONE)
		flags |= O_DIRECT;
	d->fd = open(opts->path, flags);
	if (d->fd < 0) {
		if (errno == EINVAL && opts->cache == DISK_CACHE_NONE)
			log_error("disk %s: cache=none needs O_DIRECT, which its file system "
				  "does not support", opts->path);
		else if (errno == EISDIR)
			log_error("disk %s is a directory, not an image", opts->path);
		else
			log_error("cannot open disk %s%s: %s", opts->path,
				  opts->readonly ? "" : " read-write", strerror(errno));
		goto err_free;
	}
	if (fstat(d->fd, &st) < 0) {
		log_error("cannot stat disk %s: %s", opts->path, strerror(errno));
		goto err_close;
	}
	if (S_ISREG(st.st_mode)) {
		d->size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		d->blockdev = true;
		if (ioctl(d->fd, BLKGETSIZE64, &d->size) < 0) {
			log_error("disk %s: cannot get the block device's size: %s",
				  opts->path, strerror(errno));
			goto err_close;
		}
	} else {
		log_error("disk %s is %s, not an image file or a block device", opts->path,
			  S_ISDIR(st.st_mode) ? "a directory" : "a special file");
		goto err_close;
	}
	if (d->size == 0) {
		/* Almost always a mistake (a failed mkfs, a forgotten truncate). */
		log_error("disk %s is empty: an image needs at least one %u-byte sector",
			  opts->path, DISK_SECTOR);
		goto err_close;
	}
	if (d->size % DISK_SECTOR) {
		log_error("disk %s: size %llu bytes is not a multiple of %u", opts->path,
			  (unsigned long long)d->size, DISK_SECTOR);
		goto err_close;
	}
	flags = fcntl(d->fd, F_GETFL);
	if (flags < 0 || fcntl(d->fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		log_error("disk %s: cannot clear O_NONBLOCK: %s", opts->path, strerror(errno));
		goto err_close;
	}
	if (disk_lock(d) < 0)
		goto err_close;

	d->engine = ENGINE_THREADS;
	if (!opts->force_threads) {
		if (disk_uring_usable())
			d->engine = ENGINE_URING;
		else
			log_info("disk %s: io_uring unavailable, using the thread pool",
				 opts->path);
	}
	return d;

err_close:
	close(d->fd);
err_free:
	if (d) {
		free(d->path);
		free(d);
	}
	return NULL;
}

void disk_close(struct disk *d)
{
	if (!d)
		return;
	close(d->fd);	/* drops the OFD lock with the last reference */
	pthread_mutex_destroy(&d->fault_lock);
	free(d->path);
	free(d);
}

uint64_t disk_size(const struct disk *d)
{
	return d->size;
}

bool disk_readonly(const struct disk *d)
{
	return d->readonly;
}

bool disk_discard(const struct disk *d)
{
	return d->discard;
}

const char *disk_engine(const struct disk *d)
{
	return d->engine == ENGINE_URING ? "io_uring" : "threads";
}

/* ---- fault injection ---- */

void disk_inject_fault(struct disk *d, enum disk_op op, unsigned int nth, int err)
{
	if (op >= DISK_OP_COUNT)
		return;
	pthread_mutex_lock(&d->fault_lock);
	d->faults[op].countdown = nth;
	d->faults[op].err = err;
	atomic_store(&d->faults_armed, true);
	pthread_mutex_unlock(&d->fault_lock);
}

static const char *const disk_op_names[DISK_OP_COUNT] = {
	[DISK_OP_READ] = "read",
	[DISK_OP_WRITE] = "write",
	[DISK_OP_FLUSH] = "flush",
	[DISK_OP_DISCARD] = "discard",
	[DISK_OP_WRITE_ZEROES] = "write-zeroes",
};

int disk_inject_faults_parse(struct disk *d, const char *spec)
{
	char *copy, *rest, *item;
	int ret = 0;

	if (!*spec)
		return 0;
	copy = strdup(spec);
	if (!copy) {
		log_error("disk faults: out of memory");
		return -1;
	}
	/* strsep, not strtok: an empty item (",,", a trailing comma) is an error. */
	for (rest = copy; (item = strsep(&rest, ",")); ) {
		char *c1 = strchr(item, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *end;
		unsigned long nth;
		int op = -1, err;

		if (!c1 || !c2)
			goto bad;
		*c1 = *c2 = '\0';
		for (int i = 0; i < DISK_OP_COUNT; i++)
			if (!strcmp(item, disk_op_names[i]))
				op = i;
		errno = 0;
		nth = strtoul(c1 + 1, &end, 10);
		if (op < 0 || c1[1] < '1' || c1[1] > '9' || *end || errno || nth > UINT_MAX)
			goto bad;
		if (!strcmp(c2 + 1, "EIO"))
			err = EIO;
		else if (!strcmp(c2 + 1, "ENOSPC"))
			err = ENOSPC;
		else if (!strcmp(c2 + 1, "short"))
			err = 0;
		else
			goto bad;
		disk_inject_fault(d, (enum disk_op)op, (unsigned int)nth, err);
		continue;
bad:
		log_error("disk faults: malformed \"%s\" (expected op:N:ERR[,...] with op "
			  "read|write|flush|discard|write-zeroes, N >= 1, ERR EIO|ENOSPC|short)",
			  spec);
		ret = -1;
		break;
	}
	free(copy);
	return ret;
}

/* Does this request hit an armed fault? Sets *err. */
static bool disk_fault_take(struct disk *d, enum disk_op op, int *err)
{
	bool hit = false;

	if (!atomic_load_explicit(&d->faults_armed, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&d->fault_lock);
	if (d->faults[op].countdown && --d->faults[op].countdown == 0) {
		hit = true;
		*err = d->faults[op].err;
	}
	pthread_mutex_unlock(&d->fault_lock);
	return hit;
}

/* ---- request helpers shared by the engines ---- */

static uint64_t iov_total(const struct iovec *iov, unsigned int n)
{
	uint64_t t = 0;

	for (unsigned int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* A copy of iov cut to its first len bytes (a short-transfer fault). */
static struct iovec *iov_truncate(const struct iovec *iov, unsigned int n, uint64_t len,
				  unsigned int *out_n)
{
	struct iovec *c = malloc((n ? n : 1) * sizeof(*c));
	unsigned int k = 0;

	if (!c)
		return NULL;
	for (unsigned int i = 0; i < n && len; i++, k++) {
		c[k] = iov[i];
		if (c[k].iov_len > len)
			c[k].iov_len = len;
		len -= c[k].iov_len;
	}
	*out_n = k;
	return c;
}

static int zeroes_mode(struct disk *d, const struct disk_req *r)
{
	if (d->blockdev)	/* the kernel zeroes, unmapping when it can */
		return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	if ((r->unmap && d->discard) || atomic_load(&d->zero_range_unsupported))
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;	/* holes read as zeroes */
	return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

/* What a finished request reports, from the raw result of its system call. */
static int64_t slot_result(struct disk_slot *s, int64_t res)
{
	switch (s->r->op) {
	case DISK_OP_DISCARD:
		/* A hint: a device or file system that cannot discard has done its part. */
		if (res == -EOPNOTSUPP)
			res = 0;
		return res < 0 ? res : (int64_t)s->report_len;
	case DISK_OP_WRITE_ZEROES:
		return res < 0 ? res : (int64_t)s->report_len;
	default:
		return res;
	}
}

/*
 * Common submission checks and fault injection. Returns 1 when the slot
 * completed locally (s->result set), 0 when it must go to the engine.
 */
static int slot_prepare(struct disk_queue *q, struct disk_slot *s, struct disk_req *r)
{
	struct disk *d = q->d;
	uint64_t len;
	int err;

	s->r = r;
	s->iov = r->iov;
	s->iovcnt = r->iovcnt;
	s->fault_iov = NULL;
	s->len = s->report_len = r->len;
	s->mode = 0;
	s->next = NULL;

	if ((unsigned int)r->op >= DISK_OP_COUNT) {
		s->result = -EINVAL;
		return 1;
	}
	if (d->readonly && r->op != DISK_OP_READ && r->op != DISK_OP_FLUSH) {
		s->result = -EROFS;
		return 1;
	}
	switch (r->op) {
	case DISK_OP_READ:
	case DISK_OP_WRITE:
		if (r->iovcnt > IOV_MAX) {
			s->result = -EINVAL;
			return 1;
		}
		len = iov_total(r->iov, r->iovcnt);
		break;
	case DISK_OP_DISCARD:
	case DISK_OP_WRITE_ZEROES:
		len = r->len;
		break;
	default:
		len = 0;
		break;
	}
	if (r->op != DISK_OP_FLUSH && (r->offset > d->size || len > d->size - r->offset)) {
		s->result = -EINVAL;
		return 1;
	}

	if (disk_fault_take(d, r->op, &err)) {
		if (err > 0) {
			s->result = -err;
			return 1;
		}
		/* A short transfer: do and report half. */
		switch (r->op) {
		case DISK_OP_READ:
		case DISK_OP_WRITE:
			s->fault_iov = iov_truncate(r->iov, r->iovcnt, len / 2, &s->iovcnt);
			if (!s->fault_iov) {
				s->result = -ENOMEM;
				return 1;
			}
			s->iov = s->fault_iov;
			break;
		case DISK_OP_DISCARD:
		case DISK_OP_WRITE_ZEROES:
			s->len = s->report_len = r->len / 2;
			break;
		default:
			s->result = -EIO;	/* a flush moves no bytes to cut short */
			return 1;
		}
	}

	if (r->op == DISK_OP_DISCARD) {
		if (!d->discard) {	/* discard=off: the image keeps its blocks */
			s->result = (int64_t)s->report_len;
			return 1;
		}
		s->mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	} else if (r->op == DISK_OP_WRITE_ZEROES) {
		s->mode = zeroes_mode(d, r);
	}
	if ((r->op == DISK_OP_DISCARD || r->op == DISK_OP_WRITE_ZEROES) && s->len == 0) {
		s->result = 0;
		return 1;
	}
	return 0;
}

static void queue_signal(struct disk_queue *q)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow: it is readable then anyway. */
	if (write(q->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("disk %s: eventfd write: %s", q->d->path, strerror(errno));
}

static void queue_complete_local(struct disk_queue *q, struct disk_slot *s)
{
	s->next = NULL;
	*q->local_tail = s;
	q->local_tail = &s->next;
	queue_signal(q);
}

static void slot_release(struct disk_queue *q, struct disk_slot *s)
{
	free(s->fault_iov);
	s->fault_iov = NULL;
	s->r = NULL;
	s->next = q->free;
	q->free = s;
	q->inflight--;
}

/* ---- thread-pool engine ---- */

/* preadv/pwritev until done, an error or end of file; bytes done or -errno. */
static int64_t sync_rw(int fd, bool write, const struct iovec *iov, unsigned int n,
		       uint64_t off)
{
	struct iovec stack[8], *cur = NULL;
	uint64_t done = 0, total = iov_total(iov, n);
	int64_t ret = 0;

	while (done < total) {
		const struct iovec *v = iov;
		unsigned int vn = n;
		ssize_t k;

		if (done) {
			/* Resume after a partial transfer: rebuild the rest of the vector. */
			uint64_t skip = done;
			unsigned int i = 0;

			while (i < n && skip >= iov[i].iov_len)
				skip -= iov[i++].iov_len;
			if (!cur)
				cur = n <= 8 ? stack : malloc(n * sizeof(*cur));
			if (!cur) {
				ret = -ENOMEM;
				break;
			}
			vn = n - i;
			memcpy(cur, iov + i, vn * sizeof(*cur));
			cur[0].iov_base = (char *)cur[0].iov_base + skip;
			cur[0].iov_len -= skip;
			v = cur;
		}
		k = write ? pwritev(fd, v, (int)vn, (off_t)(off + done))
			  : preadv(fd, v, (int)vn, (off_t)(off + done));
		if (k < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (k == 0)
			break;
		done += (uint64_t)k;
	}
	if (cur && cur != stack)
		free(cur);
	return done ? (int64_t)done : ret;
}

static int64_t sync_fallocate(struct disk *d, struct disk_slot *s)
{
	int mode = s->mode;

	for (;;) {
		if (fallocate(d->fd, mode, (off_t)s->r->offset, (off_t)s->len) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EOPNOTSUPP && s->r->op == DISK_OP_WRITE_ZEROES && !d->blockdev &&
		    (mode & FALLOC_FL_ZERO_RANGE)) {
			atomic_store(&d->zero_range_unsupported, true);
			mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
			continue;
		}
		return -errno;
	}
}

static int64_t sync_exec(struct disk *d, struct disk_slot *s)
{
	switch (s->r->op) {
	case DISK_OP_READ:
		return sync_rw(d->fd, false, s->iov, s->iovcnt, s->r->offset);
	case DISK_OP_WRITE:
		return sync_rw(d->fd, true, s->iov, s->iovcnt, s->r->offset);
	case DISK_OP_FLUSH:
		return fdatasync(d->fd) < 0 ? -errno : 0;
	default:
		return sync_fallocate(d, s);
	}
}

static void *pool_worker(void *arg)
{
	struct disk_queue *q = arg;
	struct disk_pool *p = &q->pool;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct disk_slot *s;

		while (!p->stop && !p->pending)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		s = p->pending;
		p->pending = s->next;
		if (!p->pending)
			p->pending_tail = &p->pending;
		pthread_mutex_unlock(&p->lock);

		s->result = slot_result(s, sync_exec(q->d, s));

		pthread_mutex_lock(&p->lock);
		s->next = NULL;
		*p->done_tail = s;
		p->done_tail = &s->next;
		__atomic_store_n(&p->done_ready, true, __ATOMIC_RELEASE);
		queue_signal(q);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int pool_start(struct disk_queue *q)
{
	struct disk_pool *p = &q->pool;
	unsigned int n = q->depth < DISK_POOL_THREADS ? q->depth : DISK_POOL_THREADS;

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->pending_tail = &p->pending;
	p->done_tail = &p->done;
	for (p->nr_threads = 0; p->nr_threads < n; p->nr_threads++) {
		char name[16];

		snprintf(name, sizeof(name), "disk-io%u", p->nr_threads);
		if (thread_start(&p->threads[p->nr_threads], THREAD_IO, name, pool_worker, q) < 0)
			break;
	}
	if (p->nr_threads == 0) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		return -1;
	}
	return 0;
}

/* Drop what no worker has started, wait for the rest, join. */
static void pool_stop(struct disk_queue *q)
{
	struct disk_pool *p = &q->pool;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned int i = 0; i < p->nr_threads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}

/* ---- io_uring engine ---- */

static struct io_uring_sqe *uring_sqe(struct disk_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {
		/* Full of unsubmitted entries: hand them over to make room. */
		io_uring_submit(&q->ring);
		q->ring_unsubmitted = 0;
		sqe = io_uring_get_sqe(&q->ring);
	}
	return sqe;
}

static int uring_prep(struct disk_queue *q, struct disk_slot *s)
{
	struct io_uring_sqe *sqe = uring_sqe(q);
	int fd = q->d->fd;

	if (!sqe)
		return -EAGAIN;
	switch (s->r->op) {
	case DISK_OP_READ:
		io_uring_prep_readv(sqe, fd, s->iov, s->iovcnt, s->r->offset);
		break;
	case DISK_OP_WRITE:
		io_uring_prep_writev(sqe, fd, s->iov, s->iovcnt, s->r->offset);
		break;
	case DISK_OP_FLUSH:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	default:
		io_uring_prep_fallocate(sqe, fd, s->mode, (off_t)s->r->offset, (off_t)s->len);
		break;
	}
	io_uring_sqe_set_data(sqe, s);
	q->ring_unsubmitted++;
	return 0;
}

static void uring_kick(struct disk_queue *q)
{
	/* Transient failures (no memory for the kernel's request): try again briefly. */
	for (int tries = 0; q->ring_unsubmitted && tries < 100; tries++) {
		int n = io_uring_submit(&q->ring);

		if (n > 0) {
			/* The kernel may take only part of the batch: submit the rest too. */
			q->ring_unsubmitted -= (unsigned int)n < q->ring_unsubmitted ?
					       (unsigned int)n : q->ring_unsubmitted;
			tries = 0;
			continue;
		}
		if (n == 0) {
			q->ring_unsubmitted = 0;
			return;
		}
		if (n != -EAGAIN && n != -EINTR && n != -EBUSY) {
			log_warn("disk %s: io_uring submit: %s", q->d->path, strerror(-n));
			return;
		}
		sched_yield();
	}
}

/* ---- queues ---- */

struct disk_queue *disk_queue_create(struct disk *d, unsigned int depth)
{
	struct disk_queue *q;

	if (depth == 0 || depth > 32768) {
		log_error("disk %s: queue depth %u out of range", d->path, depth);
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!q || !(q->slots = calloc(depth, sizeof(*q->slots)))) {
		log_error("disk %s: out of memory for a queue", d->path);
		goto err_free;
	}
	q->d = d;
	q->depth = depth;
	for (unsigned int i = depth; i-- > 0;) {
		q->slots[i].next = q->free;
		q->free = &q->slots[i];
	}
	q->local_tail = &q->local;
	q->batch_tail = &q->batch;
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		log_error("disk %s: eventfd: %s", d->path, strerror(errno));
		goto err_free;
	}

	q->engine = d->engine;
	if (q->engine == ENGINE_URING) {
		int e = io_uring_queue_init(depth, &q->ring, 0);

		if (e == 0 && (e = io_uring_register_eventfd(&q->ring, q->efd)) < 0)
			io_uring_queue_exit(&q->ring);
		if (e < 0) {
			log_warn("disk %s: io_uring queue: %s; using the thread pool",
				 d->path, strerror(-e));
			q->engine = ENGINE_THREADS;
		}
	}
	if (q->engine == ENGINE_THREADS && pool_start(q) < 0)
		goto err_close;
	return q;

err_close:
	close(q->efd);
err_free:
	if (q)
		free(q->slots);
	free(q);
	return NULL;
}

void disk_queue_destroy(struct disk_queue *q)
{
	if (!q)
		return;
	if (q->engine == ENGINE_URING) {
		struct io_uring_cqe *cqe;

		/* Whatever the kernel holds must finish before its buffers go away. */
		uring_kick(q);
		for (unsigned int left = q->inflight; left; ) {
			struct disk_slot *s;

			if (q->local) {	/* already done */
				s = q->local;
				q->local = s->next;
				left--;
				continue;
			}
			int e;

			while ((e = io_uring_wait_cqe(&q->ring, &cqe)) == -EINTR)
				;
			if (e < 0)
				break;
			s = io_uring_cqe_get_data(cqe);
			io_uring_cqe_seen(&q->ring, cqe);
			free(s->fault_iov);
			left--;
		}
		io_uring_queue_exit(&q->ring);
	} else {
		pool_stop(q);
	}
	for (unsigned int i = 0; i < q->depth; i++)
		free(q->slots[i].fault_iov);
	close(q->efd);
	free(q->slots);
	free(q);
}

int disk_queue_fd(const struct disk_queue *q)
{
	return q->efd;
}

int disk_queue_submit(struct disk_queue *q, struct disk_req *r)
{
	struct disk_slot *s = q->free;

	if (!s)
		return -EBUSY;
	q->free = s->next;
	q->inflight++;

	if (slot_prepare(q, s, r)) {
		queue_complete_local(q, s);
		return 0;
	}
	if (q->engine == ENGINE_URING) {
		int e = uring_prep(q, s);

		if (e < 0) {
			s->result = e;
			queue_complete_local(q, s);
		}
	} else {
		*q->batch_tail = s;
		q->batch_tail = &s->next;
	}
	return 0;
}

void disk_queue_kick(struct disk_queue *q)
{
	if (q->engine == ENGINE_URING) {
		uring_kick(q);
		return;
	}
	if (!q->batch)
		return;
	pthread_mutex_lock(&q->pool.lock);
	*q->pool.pending_tail = q->batch;
	q->pool.pending_tail = q->batch_tail;
	pthread_cond_broadcast(&q->pool.cond);
	pthread_mutex_unlock(&q->pool.lock);
	q->batch = NULL;
	q->batch_tail = &q->batch;
}

/* An io_uring result that wants another try in another way (WRITE_ZEROES). */
static bool uring_retry(struct disk_queue *q, struct disk_slot *s, int res)
{
	if (res != -EOPNOTSUPP || s->r->op != DISK_OP_WRITE_ZEROES || q->d->blockdev ||
	    !(s->mode & FALLOC_FL_ZERO_RANGE))
		return false;
	atomic_store(&q->d->zero_range_unsupported, true);
	s->mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	return uring_prep(q, s) == 0;
}

/* Everything finished to done(); the eventfd is left alone. */
static unsigned int queue_reap(struct disk_queue *q,
			       void (*done)(void *arg, struct disk_req *r, int64_t result),
			       void *arg)
{
	struct disk_slot *list, *s;
	unsigned int n = 0;
	bool resubmitted = false;

	if (q->engine == ENGINE_URING) {
		struct io_uring_cqe *cqe;

		/* Bounded: at most depth requests are in the kernel. */
		while (io_uring_peek_cqe(&q->ring, &cqe) == 0) {
			int res = cqe->res;

			s = io_uring_cqe_get_data(cqe);
			io_uring_cqe_seen(&q->ring, cqe);
			if (uring_retry(q, s, res)) {
				resubmitted = true;
				continue;
			}
			s->result = slot_result(s, res);
			s->next = NULL;
			*q->local_tail = s;
			q->local_tail = &s->next;
		}
		if (resubmitted)
			uring_kick(q);
	} else if (__atomic_load_n(&q->pool.done_ready, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&q->pool.lock);
		if (q->pool.done) {
			*q->local_tail = q->pool.done;
			q->local_tail = q->pool.done_tail;
			q->pool.done = NULL;
			q->pool.done_tail = &q->pool.done;
		}
		__atomic_store_n(&q->pool.done_ready, false, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&q->pool.lock);
	}

	/* Detach first: done() may submit (and complete locally) new requests. */
	list = q->local;
	q->local = NULL;
	q->local_tail = &q->local;
	while ((s = list)) {
		struct disk_req *r = s->r;
		int64_t result = s->result;

		list = s->next;
		slot_release(q, s);
		done(arg, r, result);
		n++;
	}
	return n;
}

unsigned int disk_queue_complete(struct disk_queue *q,
				 void (*done)(void *arg, struct disk_req *r, int64_t result),
				 void *arg)
{
	uint64_t cnt;

	/* Reset the counter first: a completion after this re-arms it. */
	if (read(q->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_warn("disk %s: eventfd read: %s", q->d->path, strerror(errno));
	return queue_reap(q, done, arg);
}

bool disk_queue_ready(struct disk_queue *q)
{
	if (q->local)
		return true;
	if (q->engine == ENGINE_URING)
		return io_uring_cq_ready(&q->ring) > 0;
	return __atomic_load_n(&q->pool.done_ready, __ATOMIC_ACQUIRE);
}

unsigned int disk_queue_poll(struct disk_queue *q,
			     void (*done)(void *arg, struct disk_req *r, int64_t result),
			     void *arg)
{
	return disk_queue_ready(q) ? queue_reap(q, done, arg) : 0;
}
