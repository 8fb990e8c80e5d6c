/*
 * bench-blk: the virtio-blk device model (src/virtio/blk.c) driven
 * in-process by a synthetic driver, against plain pread/pwrite and raw
 * io_uring on the same file, in the same run.
 *
 * The driver does what Linux's virtio_blk does: three descriptors per
 * request (header, data, status), EVENT_IDX for both directions (kicks only
 * when the device asks for them, used_event set after each harvest), and an
 * "interrupt" that is an eventfd the driver thread blocks on, as an irqfd
 * would wake a vCPU. Workloads: 4 KiB random and 1 MiB sequential, read and
 * write, at queue depth 1 and 32.
 *
 * Peers, each on the same file in the same run, interleaved per repetition:
 *  - pread: pread/pwrite on the calling thread, one request at a time;
 *  - io_uring: raw io_uring at the workload's depth, on the calling thread;
 *  - xthread: pread/pwrite served by a second thread that an eventfd wakes,
 *    with the completion signalled back through another eventfd: the two
 *    thread crossings every device model pays (guest -> I/O thread -> guest)
 *    and nothing else, so the reader sees how much of the gap is inherent;
 *  - device: the device model (its own I/O thread, io_uring or with
 *    --engine threads the thread pool), its I/O thread polling up to
 *    BOOTVM_IO_POLL_MAX_NS (default 32 us) before it sleeps;
 *  - nopoll: the same with polling off, for what polling buys.
 * --guest-poll-us makes the device's driver spin before it sleeps, as a
 * halt-polling guest does. Each line gives medians over the repetitions: MiB/s, the device's ratio to
 * each peer (the median of the per-repetition ratios, with their min-max),
 * and CPU time per request (user + system of the whole process, from
 * getrusage: the I/O thread and io_uring's workers included).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "backends/disk.h"
#include "util/log.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"
#include "virtio/virtqueue.h"
#include "vmm/memory.h"

#define QSIZE		256
#define MAX_QD		32
#define MIB		(1ull << 20)
#define RING_GPA	0x10000ull
#define HDR_GPA		0x100000ull
#define DATA_GPA	(4 * MIB)
#define RAM_SIZE	(DATA_GPA + MAX_QD * MIB)

struct workload {
	const char *name;
	uint32_t bs;
	bool random, write;
	unsigned int qd;
};

static const struct workload workloads[] = {
	{ "4k-rand-read  qd1 ", 4096, true, false, 1 },
	{ "4k-rand-read  qd32", 4096, true, false, 32 },
	{ "4k-rand-write qd1 ", 4096, true, true, 1 },
	{ "4k-rand-write qd32", 4096, true, true, 32 },
	{ "1m-seq-read   qd1 ", 1 << 20, false, false, 1 },
	{ "1m-seq-read   qd32", 1 << 20, false, false, 32 },
	{ "1m-seq-write  qd1 ", 1 << 20, false, true, 1 },
	{ "1m-seq-write  qd32", 1 << 20, false, true, 32 },
};

struct result {
	double mib_s;
	double cpu_us_per_req;
};

static double opt_seconds = 1.0;
static uint64_t opt_size = 256 * MIB;
static bool opt_direct, opt_threads;
static unsigned int opt_reps = 1;
static double opt_guest_poll_us;
static const char *opt_only;
static char *path;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Offsets: xorshift for random, wrapping for sequential. */
struct offsets {
	uint64_t state, next, blocks;
	uint32_t bs;
	bool random;
};

static void offsets_init(struct offsets *o, const struct workload *w)
{
	*o = (struct offsets){ 0x9e3779b97f4a7c15ull, 0, opt_size / w->bs, w->bs, w->random };
}

static uint64_t offsets_next(struct offsets *o)
{
	uint64_t b;

	if (o->random) {
		o->state ^= o->state << 13;
		o->state ^= o->state >> 7;
		o->state ^= o->state << 17;
		b = o->state % o->blocks;
	} else {
		b = o->next++ % o->blocks;
	}
	return b * o->bs;
}

static int open_file(bool write)
{
	int fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | (opt_direct ? O_DIRECT : 0));

	if (fd < 0) {
		perror(path);
		exit(1);
	}
	return fd;
}

static void *aligned_bufs(void)
{
	void *p;

	if (posix_memalign(&p, 4096, MAX_QD * MIB)) {
		perror("posix_memalign");
		exit(1);
	}
	memset(p, 0x5a, MAX_QD * MIB);
	return p;
}

/* ---- peer 1: pread/pwrite, one request at a time (qd only picks the buffers) ---- */

static struct result run_sync(const struct workload *w, uint8_t *buf)
{
	int fd = open_file(w->write);
	struct offsets o;
	uint64_t n = 0;
	double t0 = now_s(), c0 = cpu_s(), t;

	offsets_init(&o, w);
	do {
		for (int i = 0; i < 16; i++, n++) {
			uint64_t off = offsets_next(&o);
			/* The qd buffers the others use too: the same cache footprint. */
			uint8_t *b = buf + (n % w->qd) * MIB;
			ssize_t k = w->write ? pwrite(fd, b, w->bs, (off_t)off)
					     : pread(fd, b, w->bs, (off_t)off);

			if (k != (ssize_t)w->bs) {
				perror("pread/pwrite");
				exit(1);
			}
		}
		t = now_s() - t0;
	} while (t < opt_seconds);
	close(fd);
	return (struct result){ (double)n * w->bs / MIB / t, (cpu_s() - c0) / (double)n * 1e6 };
}

/* ---- peer 2: raw io_uring at the workload's depth ---- */

static struct result run_uring(const struct workload *w, uint8_t *bufs)
{
	int fd = open_file(w->write);
	struct io_uring ring;
	struct iovec iov[MAX_QD];
	struct offsets o;
	uint64_t n = 0;
	unsigned int inflight = 0;
	double t0, c0, t = 0;
	bool stop = false;

	if (io_uring_queue_init(w->qd, &ring, 0) < 0) {
		fprintf(stderr, "bench-blk: io_uring_queue_init failed\n");
		exit(1);
	}
	offsets_init(&o, w);
	t0 = now_s();
	c0 = cpu_s();
	for (;;) {
		struct io_uring_cqe *cqe;

		while (!stop && inflight < w->qd) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			unsigned int slot = inflight;	/* any free buffer: contents do not matter */

			iov[slot] = (struct iovec){ bufs + (uint64_t)slot * MIB, w->bs };
			if (w->write)
				io_uring_prep_writev(sqe, fd, &iov[slot], 1, offsets_next(&o));
			else
				io_uring_prep_readv(sqe, fd, &iov[slot], 1, offsets_next(&o));
			inflight++;
		}
		if (!inflight)
			break;
		io_uring_submit_and_wait(&ring, 1);
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			if (cqe->res != (int)w->bs) {
				fprintf(stderr, "bench-blk: io_uring: %d\n", cqe->res);
				exit(1);
			}
			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			n++;
		}
		if (!stop && (t = now_s() - t0) >= opt_seconds)
			stop = true;
	}
	t = now_s() - t0;
	io_uring_queue_exit(&ring);
	close(fd);
	return (struct result){ (double)n * w->bs / MIB / t, (cpu_s() - c0) / (double)n * 1e6 };
}

/* ---- peer 3: pread/pwrite on a second thread, two eventfd crossings per batch ---- */

struct xthread {
	const struct workload *w;
	int fd, kick_fd, irq_fd;
	uint8_t *bufs;
	uint64_t offs[MAX_QD];
	unsigned int posted, done;	/* posted: the submitter's; done: the worker's (atomic) */
	bool stop;
};

static void *xthread_worker(void *arg)
{
	struct xthread *x = arg;
	uint64_t v, one = 1;

	for (;;) {
		unsigned int posted;

		if (read(x->kick_fd, &v, sizeof(v)) < 0) {
			perror("xthread kick");
			exit(1);
		}
		if (__atomic_load_n(&x->stop, __ATOMIC_ACQUIRE))
			return NULL;
		posted = __atomic_load_n(&x->posted, __ATOMIC_ACQUIRE);
		for (unsigned int i = x->done; i != posted; i++) {
			unsigned int k = i % MAX_QD;
			uint8_t *b = x->bufs + (uint64_t)(i % x->w->qd) * MIB;
			ssize_t n = x->w->write ? pwrite(x->fd, b, x->w->bs, (off_t)x->offs[k])
						: pread(x->fd, b, x->w->bs, (off_t)x->offs[k]);

			if (n != (ssize_t)x->w->bs) {
				perror("xthread pread/pwrite");
				exit(1);
			}
			__atomic_store_n(&x->done, i + 1, __ATOMIC_RELEASE);
		}
		if (write(x->irq_fd, &one, sizeof(one)) < 0) {
			perror("xthread irq");
			exit(1);
		}
	}
}

static struct result run_xthread(const struct workload *w, uint8_t *bufs)
{
	struct xthread x = { .w = w, .fd = open_file(w->write), .bufs = bufs,
			     .kick_fd = eventfd(0, EFD_CLOEXEC), .irq_fd = eventfd(0, EFD_CLOEXEC) };
	struct offsets o;
	pthread_t t;
	uint64_t n = 0, one = 1, v;
	unsigned int seen = 0;
	double t0, c0, el;
	bool stop = false;

	if (x.kick_fd < 0 || x.irq_fd < 0 || pthread_create(&t, NULL, xthread_worker, &x)) {
		perror("xthread");
		exit(1);
	}
	offsets_init(&o, w);
	t0 = now_s();
	c0 = cpu_s();
	for (;;) {
		unsigned int done;

		if (!stop && x.posted - seen < w->qd) {
			while (x.posted - seen < w->qd)
				x.offs[x.posted++ % MAX_QD] = offsets_next(&o);
			__atomic_store_n(&x.posted, x.posted, __ATOMIC_RELEASE);
			if (write(x.kick_fd, &one, sizeof(one)) < 0) {
				perror("xthread kick");
				exit(1);
			}
		}
		if (x.posted == seen)
			break;
		if (read(x.irq_fd, &v, sizeof(v)) < 0) {
			perror("xthread irq");
			exit(1);
		}
		done = __atomic_load_n(&x.done, __ATOMIC_ACQUIRE);
		n += done - seen;
		seen = done;
		if (!stop && now_s() - t0 >= opt_seconds)
			stop = true;
	}
	el = now_s() - t0;
	c0 = cpu_s() - c0;
	__atomic_store_n(&x.stop, true, __ATOMIC_RELEASE);
	if (write(x.kick_fd, &one, sizeof(one)) < 0)
		exit(1);
	pthread_join(t, NULL);
	close(x.kick_fd);
	close(x.irq_fd);
	close(x.fd);
	return (struct result){ (double)n * w->bs / MIB / el, c0 / (double)n * 1e6 };
}

/* ---- the device, through a synthetic driver ---- */

struct drv {
	struct guest_mem mem;
	struct virtio_blk *b;
	struct virtio_dev *vdev;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx, used_seen, kicked_idx;
	int kick_fd, irq_fd;
	uint16_t free_slots[MAX_QD];
	unsigned int nr_free;
};

static void drv_irq(struct virtio_dev *vdev, int queue)
{
	struct drv *d = vdev->transport;
	uint64_t one = 1;

	if (queue < 0) {	/* only virtio_dev_fail() signals the config */
		fprintf(stderr, "bench-blk: the device failed\n");
		exit(1);
	}

	if (write(d->irq_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: already pending */
	}
}

static void *gp(struct drv *d, uint64_t gpa, uint64_t len)
{
	void *p = guest_mem_ptr(&d->mem, gpa, len);

	if (!p) {
		fprintf(stderr, "bench-blk: bad guest address\n");
		exit(1);
	}
	return p;
}

static void drv_open(struct drv *d, const struct workload *w, bool threads)
{
	struct disk_opts o = { .path = path, .readonly = !w->write, .force_threads = threads,
			       .cache = opt_direct ? DISK_CACHE_NONE : DISK_CACHE_WRITEBACK };
	uint64_t desc = RING_GPA, avail = desc + 16 * QSIZE, used = avail + 0x1000;
	uint64_t features;

	memset(d, 0, sizeof(*d));
	if (guest_mem_init(&d->mem, RAM_SIZE, 0xc0000000ull) < 0)
		exit(1);
	memset(gp(d, DATA_GPA, MAX_QD * MIB), 0x5a, MAX_QD * MIB);	/* fault the pages in */
	d->b = virtio_blk_create(&d->mem, &o, NULL, 1, "virtio-blk0");
	if (!d->b)
		exit(1);
	d->vdev = virtio_blk_vdev(d->b);
	pthread_mutex_init(&d->vdev->lock, NULL);	/* the transport's job */
	d->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->irq_fd = eventfd(0, EFD_CLOEXEC);
	d->vdev->notify = drv_irq;
	d->vdev->transport = d;
	features = d->vdev->ops->features(d->vdev->dev) | (1ull << VIRTIO_F_VERSION_1) |
		   (1ull << VIRTIO_RING_F_EVENT_IDX);
	d->vdev->features = features;
	if (virtq_enable(&d->vdev->queues[0].vq, &d->mem, QSIZE, desc, avail, used, features) < 0)
		exit(1);
	d->vdev->queues[0].size = QSIZE;
	d->vdev->queues[0].kick_fd = d->kick_fd;
	d->desc = gp(d, desc, 16 * QSIZE);
	d->avail = gp(d, avail, 6 + 2 * QSIZE);
	d->used = gp(d, used, 6 + 8 * QSIZE);
	if (d->vdev->ops->activate(d->vdev->dev) < 0)
		exit(1);
	for (unsigned int k = 0; k < MAX_QD; k++)
		d->free_slots[d->nr_free++] = (uint16_t)k;
}

static void drv_close(struct drv *d)
{
	virtio_blk_device_ops.stop(d->b);
	virtio_blk_device_ops.destroy(d->b);
	close(d->kick_fd);
	close(d->irq_fd);
	guest_mem_destroy(&d->mem);
}

/* Slot k: descriptors 3k..3k+2, header and status at HDR_GPA + 32k, data at DATA_GPA + k MiB. */
static void drv_add(struct drv *d, uint16_t k, const struct workload *w, uint64_t off)
{
	uint64_t hdr = HDR_GPA + 32ull * k;
	struct virtio_blk_outhdr *h = gp(d, hdr, sizeof(*h));
	struct vring_desc *x = &d->desc[3 * k];

	h->type = htole32(w->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN);
	h->ioprio = 0;
	h->sector = htole64(off >> 9);
	x[0] = (struct vring_desc){ htole64(hdr), htole32(16), htole16(VRING_DESC_F_NEXT),
				    htole16(3 * k + 1) };
	x[1] = (struct vring_desc){ htole64(DATA_GPA + (uint64_t)k * MIB), htole32(w->bs),
				    htole16(VRING_DESC_F_NEXT |
					    (w->write ? 0 : VRING_DESC_F_WRITE)),
				    htole16(3 * k + 2) };
	x[2] = (struct vring_desc){ htole64(hdr + 16), htole32(1), htole16(VRING_DESC_F_WRITE),
				    0 };
	d->avail->ring[d->avail_idx % QSIZE] = htole16((uint16_t)(3 * k));
	d->avail_idx++;
}

static void drv_publish(struct drv *d)
{
	uint16_t old = d->kicked_idx, new = d->avail_idx, avail_event;
	uint64_t one = 1;

	__atomic_store_n(&d->avail->idx, htole16(new), __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* idx before reading avail_event */
	avail_event = le16toh(__atomic_load_n((uint16_t *)&d->used->ring[QSIZE],
					      __ATOMIC_ACQUIRE));
	d->kicked_idx = new;
	if (vring_need_event(avail_event, new, old) &&
	    write(d->kick_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: a kick is pending anyway */
	}
}

static struct result run_device(const struct workload *w, bool threads)
{
	struct drv d;
	struct offsets o;
	uint64_t n = 0;
	unsigned int inflight = 0;
	double t0, c0, t;
	bool stop = false;

	drv_open(&d, w, threads);
	offsets_init(&o, w);
	t0 = now_s();
	c0 = cpu_s();
	for (;;) {
		uint64_t v;
		bool added = false;

		while (!stop && inflight < w->qd) {
			drv_add(&d, d.free_slots[--d.nr_free], w, offsets_next(&o));
			inflight++;
			added = true;
		}
		if (added)
			drv_publish(&d);
		if (!inflight)
			break;
		/* Interrupts on: tell the device where the next one is wanted, then sleep. */
		__atomic_store_n(&d.avail->ring[QSIZE], htole16(d.used_seen), __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (opt_guest_poll_us > 0) {
			/* A halt-polling guest (cpuidle-haltpoll, KVM halt_poll_ns): spin first. */
			double until = now_s() + opt_guest_poll_us / 1e6;

			while (le16toh(__atomic_load_n(&d.used->idx, __ATOMIC_ACQUIRE)) ==
				       d.used_seen && now_s() < until)
				sched_yield();
		}
		if (le16toh(__atomic_load_n(&d.used->idx, __ATOMIC_ACQUIRE)) == d.used_seen &&
		    read(d.irq_fd, &v, sizeof(v)) < 0) {
			perror("irq eventfd");
			exit(1);
		}
		for (uint16_t ui = le16toh(__atomic_load_n(&d.used->idx, __ATOMIC_ACQUIRE));
		     d.used_seen != ui; d.used_seen++) {
			struct vring_used_elem *e = &d.used->ring[d.used_seen % QSIZE];
			uint16_t k = (uint16_t)(le32toh(e->id) / 3);
			uint8_t st = *(uint8_t *)gp(&d, HDR_GPA + 32ull * k + 16, 1);

			if (st != VIRTIO_BLK_S_OK) {
				fprintf(stderr, "bench-blk: request failed, status %u\n", st);
				exit(1);
			}
			d.free_slots[d.nr_free++] = k;
			inflight--;
			n++;
		}
		if (!stop && now_s() - t0 >= opt_seconds)
			stop = true;
	}
	t = now_s() - t0;
	c0 = cpu_s() - c0;
	drv_close(&d);
	return (struct result){ (double)n * w->bs / MIB / t, c0 / (double)n * 1e6 };
}

/* ---- main ---- */

static void make_file(void)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	uint8_t *buf = malloc(MIB);
	int fd;

	if (!path) {
		if (asprintf(&path, "%s/bench-blk-XXXXXX", dir) < 0)
			exit(1);
		fd = mkstemp(path);
	} else {
		char *p;

		if (asprintf(&p, "%s/bench-blk-XXXXXX", path) < 0)
			exit(1);
		path = p;
		fd = mkstemp(path);
	}
	if (fd < 0 || !buf) {
		perror("bench file");
		exit(1);
	}
	for (uint64_t off = 0; off < opt_size; off += MIB) {
		for (size_t i = 0; i < MIB; i++)
			buf[i] = (uint8_t)(off / MIB + i);
		if (pwrite(fd, buf, MIB, (off_t)off) != (ssize_t)MIB) {
			perror("bench file");
			exit(1);
		}
	}
	fsync(fd);
	close(fd);
	free(buf);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of n values (sorted in place); the mean of the middle two when n is even. */
static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

enum { P_PREAD, P_URING, P_XTHREAD, P_DEVICE, P_NOPOLL, NR_PEERS };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench-blk [--seconds S] [--size MIB] [--reps N] [--only NAME] [--direct]\n"
		"                 [--engine io_uring|threads] [--guest-poll-us US] [--dir DIR]\n"
		"  --seconds S  per run (default 1)        --size MIB  file size (default 256)\n"
		"  --reps N     repetitions, peers interleaved; medians and min-max reported\n"
		"  --only NAME  workloads whose name contains NAME (e.g. 4k-rand-read, qd1)\n"
		"  --direct     O_DIRECT everywhere (the device with cache=none)\n"
		"  --engine     the device's backend (default io_uring)\n"
		"  --dir DIR    where the file goes (default $TMPDIR or /tmp)\n"
		"  --guest-poll-us US  the device's driver spins up to US before it sleeps on\n"
		"               the interrupt, as a halt-polling guest (default 0: it sleeps)\n"
		"The device's I/O thread polls for up to BOOTVM_IO_POLL_MAX_NS (default 32000);\n"
		"the nopoll column runs it with 0.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "size", required_argument, NULL, 'm' },
		{ "reps", required_argument, NULL, 'r' },
		{ "only", required_argument, NULL, 'o' },
		{ "direct", no_argument, NULL, 'd' },
		{ "engine", required_argument, NULL, 'e' },
		{ "dir", required_argument, NULL, 'D' },
		{ "guest-poll-us", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *poll_max = getenv("BOOTVM_IO_POLL_MAX_NS") ? getenv("BOOTVM_IO_POLL_MAX_NS")
							       : "32000";
	uint8_t *bufs;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			opt_seconds = atof(optarg);
			break;
		case 'm':
			opt_size = strtoull(optarg, NULL, 10) * MIB;
			break;
		case 'r':
			opt_reps = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'o':
			opt_only = optarg;
			break;
		case 'd':
			opt_direct = true;
			break;
		case 'e':
			if (strcmp(optarg, "io_uring") && strcmp(optarg, "threads")) {
				usage(stderr);
				return 2;
			}
			opt_threads = !strcmp(optarg, "threads");
			break;
		case 'D':
			path = optarg;
			break;
		case 'g':
			opt_guest_poll_us = atof(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (opt_seconds <= 0 || opt_size < 64 * MIB || opt_reps < 1 || opt_reps > 100) {
		fprintf(stderr, "bench-blk: --seconds > 0, --size >= 64 and --reps 1..100 needed\n");
		return 2;
	}
	log_set_level(LOG_WARN);
	make_file();
	bufs = aligned_bufs();

	printf("bench-blk: %llu MiB file in %s%s, device engine %s, I/O thread poll up to %s ns "
	       "(nopoll: 0), guest poll %.0f us, %.1f s per run, %u repetitions (medians; ratios "
	       "with min-max)\n",
	       (unsigned long long)(opt_size / MIB), path, opt_direct ? " (O_DIRECT)" : "",
	       opt_threads ? "threads" : "io_uring", poll_max, opt_guest_poll_us, opt_seconds,
	       opt_reps);
	printf("| workload           | pread MiB/s | io_uring MiB/s | xthread MiB/s | device MiB/s "
	       "| nopoll MiB/s | dev/pread        | dev/io_uring     | dev/xthread      "
	       "| CPU us/req pread / io_uring / xthread / device / nopoll |\n");
	printf("|--------------------|------------:|---------------:|--------------:|-------------:"
	       "|-------------:|------------------|------------------|------------------"
	       "|---------------------------------------------------------|\n");
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
		const struct workload *w = &workloads[i];
		double mib[NR_PEERS][100], cpu[NR_PEERS][100], ratio[3][100];
		double rlo[3], rhi[3], rmed[3], mmed[NR_PEERS], cmed[NR_PEERS];

		if (opt_only && !strstr(w->name, opt_only))
			continue;
		for (unsigned int r = 0; r < opt_reps; r++) {
			struct result res[NR_PEERS];

			res[P_PREAD] = run_sync(w, bufs);
			res[P_URING] = run_uring(w, bufs);
			res[P_XTHREAD] = run_xthread(w, bufs);
			setenv("BOOTVM_IO_POLL_MAX_NS", poll_max, 1);
			res[P_DEVICE] = run_device(w, opt_threads);
			setenv("BOOTVM_IO_POLL_MAX_NS", "0", 1);
			res[P_NOPOLL] = run_device(w, opt_threads);
			for (int p = 0; p < NR_PEERS; p++) {
				mib[p][r] = res[p].mib_s;
				cpu[p][r] = res[p].cpu_us_per_req;
			}
			for (int p = 0; p < 3; p++)
				ratio[p][r] = res[P_DEVICE].mib_s / res[p].mib_s;
		}
		for (int p = 0; p < 3; p++) {
			rmed[p] = median(ratio[p], opt_reps);	/* sorted: min first, max last */
			rlo[p] = ratio[p][0];
			rhi[p] = ratio[p][opt_reps - 1];
		}
		for (int p = 0; p < NR_PEERS; p++) {
			mmed[p] = median(mib[p], opt_reps);
			cmed[p] = median(cpu[p], opt_reps);
		}
		printf("| %s | %11.0f | %14.0f | %13.0f | %12.0f | %12.0f ", w->name, mmed[P_PREAD],
		       mmed[P_URING], mmed[P_XTHREAD], mmed[P_DEVICE], mmed[P_NOPOLL]);
		for (int p = 0; p < 3; p++)
			printf("| %4.2f (%4.2f-%4.2f) ", rmed[p], rlo[p], rhi[p]);
		printf("| %6.1f / %6.1f / %6.1f / %6.1f / %6.1f |\n", cmed[P_PREAD], cmed[P_URING],
		       cmed[P_XTHREAD], cmed[P_DEVICE], cmed[P_NOPOLL]);
		fflush(stdout);
	}
	unlink(path);
	free(bufs);
	return 0;
}
