/*
 * virtio-blk: see blk.h for what is offered and how bad requests end.
 *
 * Everything below except creation, the config-space accessors and the
 * io_loop_call()s runs on the device's one I/O thread, so queue state needs
 * no lock. Per queue, a request slot per ring entry holds the disk request,
 * its data vector (slices of the chain's buffers) and where its status
 * goes, from the pop until the completion is pushed.
 */
#include "virtio/blk.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio/virtio.h"
#include "virtio/virtqueue.h"
#include "vmm/ioloop.h"

#define SECTOR_SHIFT	9
#define SECTOR_SIZE	(1u << SECTOR_SHIFT)
#define BLK_HDR_SIZE	sizeof(struct virtio_blk_outhdr)
/* The config space we describe: up to write_zeroes_may_unmap (no secure erase). */
#define BLK_CONFIG_SIZE	offsetof(struct virtio_blk_config, max_secure_erase_sectors)

struct blk_queue;

struct blk_req {
	struct disk_req dr;
	struct blk_queue *bq;
	uint16_t head;
	uint8_t *status;		/* the chain's last writable byte, in guest RAM */
	uint64_t expect;		/* the disk result that means success */
	uint32_t used_ok;		/* used length on success */
	struct blk_req *next_free;
	struct iovec iov[VIRTIO_BLK_SEG_MAX];
};

struct blk_queue {
	struct virtio_blk *blk;
	unsigned int idx;
	struct virtio_queue *vqs;	/* vdev->queues[idx] */
	struct disk_queue *dq;
	int kick_fd, done_fd;		/* as watched, for io_loop_del */
	struct blk_req *reqs, *free;
	struct virtq_buf *bufs;		/* scratch for virtq_pop, queue size entries */
	struct virtq_chain chain;
	unsigned int inflight;
	bool stalled;			/* every slot in flight: pop again on a completion */
	bool active;
	bool polling;			/* the loop polls us: notifications stay off */
	bool poller;			/* registered with io_loop_add_poll */
};

struct virtio_blk {
	struct virtio_dev vdev;
	struct disk *disk;
	struct io_loop *loop;
	char name[32];
	uint8_t serial[VIRTIO_BLK_SERIAL_LEN];
	struct virtio_blk_config cfg;
	uint64_t capacity;		/* sectors */
	uint64_t features;
	atomic_bool failed;		/* virtio_dev_fail() was called: serve nothing */
	bool host_error_logged;
	bool reap_after_submit;		/* the disk may complete during the submit */
	unsigned int nr_queues;
	struct blk_queue queues[VIRTIO_MAX_QUEUES];
};

/* ---- completing ---- */

static void blk_fail(struct virtio_blk *b, const char *why)
{
	if (atomic_exchange(&b->failed, true))
		return;
	virtio_dev_fail(&b->vdev, why);
}

static void req_release(struct blk_queue *bq, struct blk_req *r)
{
	r->next_free = bq->free;
	bq->free = r;
	bq->inflight--;
}

/* Status, used ring; the caller notifies the driver once per batch. */
static void req_finish(struct blk_queue *bq, struct blk_req *r, uint8_t status)
{
	__atomic_store_n(r->status, status, __ATOMIC_RELAXED);
	virtq_push(&bq->vqs->vq, r->head, status == VIRTIO_BLK_S_OK ? r->used_ok : 1);
	req_release(bq, r);
}

static void blk_host_error(struct virtio_blk *b, const struct blk_req *r, int64_t result)
{
	static const char *const ops[] = { "read", "write", "flush", "discard", "write-zeroes" };

	/* The guest sees every error as IOERR; the log gets the first. */
	if (b->host_error_logged)
		return;
	b->host_error_logged = true;
	if (result < 0)
		log_warn("%s: %s at byte %llu failed: %s (reported to the guest; further "
			 "errors not logged)", b->name, ops[r->dr.op],
			 (unsigned long long)r->dr.offset, strerror((int)-result));
	else
		log_warn("%s: short %s at byte %llu: %lld of %llu bytes (reported to the "
			 "guest; further errors not logged)", b->name, ops[r->dr.op],
			 (unsigned long long)r->dr.offset, (long long)result,
			 (unsigned long long)r->expect);
}

static void blk_disk_done(void *arg, struct disk_req *dr, int64_t result)
{
	struct blk_req *r = (struct blk_req *)((char *)dr - offsetof(struct blk_req, dr));
	struct blk_queue *bq = arg;
	bool ok = result >= 0 && (uint64_t)result == r->expect;

	if (!ok)
		blk_host_error(bq->blk, r, result);
	req_finish(bq, r, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
}

/* ---- parsing a chain ---- */

/* Copy len bytes from offset off of the chain's readable (or writable) bytes. */
static bool chain_copy_out(const struct virtq_chain *c, uint64_t off, void *dst, size_t len)
{
	uint8_t *p = dst;

	for (unsigned int i = 0; i < c->nr_out && len; i++) {
		const struct virtq_buf *b = &c->bufs[i];
		size_t n;

		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		n = b->len - off < len ? b->len - off : len;
		memcpy(p, (uint8_t *)b->host + off, n);
		p += n;
		len -= n;
		off = 0;
	}
	return len == 0;
}

/*
 * Slice bytes [off, off + len) of the readable (writable == false) or
 * writable buffers into iov. -1 when more than max segments or one longer
 * than seg_limit would be needed.
 */
static int chain_slice(const struct virtq_chain *c, bool writable, uint64_t off, uint64_t len,
		       struct iovec *iov, unsigned int max, uint64_t seg_limit, unsigned int *n)
{
	unsigned int first = writable ? c->nr_out : 0;
	unsigned int end = writable ? c->nr_out + c->nr_in : c->nr_out;
	unsigned int k = 0;

	for (unsigned int i = first; i < end && len; i++) {
		const struct virtq_buf *b = &c->bufs[i];
		uint64_t take;

		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		take = b->len - off < len ? b->len - off : len;
		if (k == max || take > seg_limit)
			return -1;
		iov[k].iov_base = (uint8_t *)b->host + off;
		iov[k].iov_len = take;
		k++;
		len -= take;
		off = 0;
	}
	*n = k;
	return 0;
}

static bool range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
	uint64_t sectors = bytes >> SECTOR_SHIFT;

	return (bytes & (SECTOR_SIZE - 1)) == 0 && sector <= b->capacity &&
	       sectors <= b->capacity - sector;
}

/* The status byte: the last writable byte (buffers are never empty, virtq.c refuses them). */
static uint8_t *chain_status(const struct virtq_chain *c)
{
	const struct virtq_buf *last = &c->bufs[c->nr_out + c->nr_in - 1];

	return (uint8_t *)last->host + last->len - 1;
}

/* GET_ID: the serial, NUL-padded, into the writable data bytes. */
static uint8_t blk_get_id(struct virtio_blk *b, const struct virtq_chain *c, struct blk_req *r)
{
	uint64_t len = c->in_len - 1 < VIRTIO_BLK_SERIAL_LEN ? c->in_len - 1
							     : VIRTIO_BLK_SERIAL_LEN;
	unsigned int n, done = 0;

	if (chain_slice(c, true, 0, len, r->iov, VIRTIO_BLK_SEG_MAX, UINT64_MAX, &n) < 0)
		return VIRTIO_BLK_S_IOERR;
	for (unsigned int i = 0; i < n; i++) {
		memcpy(r->iov[i].iov_base, b->serial + done, r->iov[i].iov_len);
		done += (unsigned int)r->iov[i].iov_len;
	}
	r->used_ok = (uint32_t)len + 1;
	return VIRTIO_BLK_S_OK;
}

/* DISCARD / WRITE_ZEROES: one range descriptor after the header. */
static int blk_parse_range(struct virtio_blk *b, const struct virtq_chain *c, uint32_t type,
			   struct blk_req *r)
{
	struct virtio_blk_discard_write_zeroes range;
	uint64_t data = c->out_len - BLK_HDR_SIZE, sector;
	uint32_t num, flags;
	bool discard = type == VIRTIO_BLK_T_DISCARD;

	if (!virtio_has_feature(&b->vdev, discard ? VIRTIO_BLK_F_DISCARD
						    : VIRTIO_BLK_F_WRITE_ZEROES))
		return VIRTIO_BLK_S_UNSUPP;
	if (data < sizeof(range) || data % sizeof(range))
		return VIRTIO_BLK_S_IOERR;
	if (data > sizeof(range))	/* max_discard_seg = max_write_zeroes_seg = 1 */
		return VIRTIO_BLK_S_UNSUPP;
	chain_copy_out(c, BLK_HDR_SIZE, &range, sizeof(range));
	sector = le64toh(range.sector);
	num = le32toh(range.num_sectors);
	flags = le32toh(range.flags);
	if (discard ? flags != 0 : (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) != 0)
		return VIRTIO_BLK_S_UNSUPP;
	if (num > VIRTIO_BLK_MAX_DISCARD_SECTORS ||
	    !range_ok(b, sector, (uint64_t)num << SECTOR_SHIFT))
		return VIRTIO_BLK_S_IOERR;
	r->dr = (struct disk_req){
		.op = discard ? DISK_OP_DISCARD : DISK_OP_WRITE_ZEROES,
		.offset = sector << SECTOR_SHIFT,
		.len = (uint64_t)num << SECTOR_SHIFT,
		.unmap = !discard && (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) &&
			 disk_discard(b->disk),
	};
	r->expect = r->dr.len;
	return -1;
}

/*
 * Turn a chain into a disk request in r, or a status. Returns -1 when r
 * must go to the disk, else the status to complete with now.
 */
static int blk_parse(struct virtio_blk *b, const struct virtq_chain *c, struct blk_req *r)
{
	struct virtio_blk_outhdr hdr;
	uint64_t sector, len;
	uint32_t type;
	bool in;

	chain_copy_out(c, 0, &hdr, sizeof(hdr));
	type = le32toh(hdr.type);
	sector = le64toh(hdr.sector);
	r->used_ok = 1;
	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		in = type == VIRTIO_BLK_T_IN;
		if (!in && disk_readonly(b->disk))
			return VIRTIO_BLK_S_IOERR;
		len = in ? c->in_len - 1 : c->out_len - BLK_HDR_SIZE;
		if (!range_ok(b, sector, len))
			return VIRTIO_BLK_S_IOERR;
		r->dr = (struct disk_req){
			.op = in ? DISK_OP_READ : DISK_OP_WRITE,
			.offset = sector << SECTOR_SHIFT,
			.iov = r->iov,
		};
		if (chain_slice(c, in, in ? 0 : BLK_HDR_SIZE, len, r->iov, VIRTIO_BLK_SEG_MAX,
				VIRTIO_BLK_SIZE_MAX, &r->dr.iovcnt) < 0)
			return VIRTIO_BLK_S_IOERR;
		r->expect = len;
		if (in)
			r->used_ok = (uint32_t)len + 1;	/* <= seg_max * size_max */
		return -1;
	case VIRTIO_BLK_T_FLUSH:
		r->dr = (struct disk_req){ .op = DISK_OP_FLUSH };
		r->expect = 0;
		return -1;
	case VIRTIO_BLK_T_GET_ID:
		return blk_get_id(b, c, r);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return blk_parse_range(b, c, type, r);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* ---- serving a queue ---- */

/* One chain: false when the device had to fail. *pushed / *submitted say what happened. */
static bool blk_handle(struct blk_queue *bq, bool *pushed, bool *submitted)
{
	struct virtio_blk *b = bq->blk;
	struct virtq_chain *c = &bq->chain;
	struct blk_req *r = bq->free;
	int status;

	if (c->nr_in == 0) {
		blk_fail(b, "a virtio-blk request has no device-writable status byte");
		return false;
	}
	if (c->out_len < BLK_HDR_SIZE) {
		blk_fail(b, "a virtio-blk request header is shorter than 16 bytes");
		return false;
	}
	bq->free = r->next_free;
	bq->inflight++;
	r->head = c->head;
	r->status = chain_status(c);
	status = blk_parse(b, c, r);
	if (status >= 0) {
		req_finish(bq, r, (uint8_t)status);
		*pushed = true;
		return true;
	}
	if (disk_queue_submit(bq->dq, &r->dr) < 0) {	/* cannot happen: depth == slots */
		req_finish(bq, r, VIRTIO_BLK_S_IOERR);
		*pushed = true;
		return true;
	}
	*submitted = true;
	return true;
}

/* Pop and serve what the driver has made available; true when a chain was taken. */
static bool blk_queue_process(struct blk_queue *bq)
{
	struct virtq *vq;
	unsigned int budget;
	bool pushed = false, submitted = false;

	if (!bq->active || atomic_load(&bq->blk->failed))
		return false;
	vq = &bq->vqs->vq;
	budget = vq->size;	/* then let the loop serve others */
	for (;;) {
		virtq_set_notify(vq, false);
		while (bq->free && budget) {
			int ret = virtq_pop(vq, &bq->chain);

			if (ret == 0)
				break;
			if (ret < 0) {
				blk_fail(bq->blk, vq->why ? vq->why : "malformed virtqueue");
				goto out;
			}
			budget--;
			if (!blk_handle(bq, &pushed, &submitted))
				goto out;
		}
		if (!bq->free) {
			/* Completions will free slots and come back; kicks meanwhile are moot. */
			bq->stalled = true;
			break;
		}
		if (!budget) {
			/* More may wait: come back through the kick fd after other events. */
			uint64_t one = 1;

			if (write(bq->kick_fd, &one, sizeof(one)) < 0) {
				/* EAGAIN: already readable, which is all we need */
			}
			break;
		}
		if (bq->polling)
			break;	/* the loop looks again soon; kicks stay off meanwhile */
		virtq_set_notify(vq, true);
		if (!virtq_pending(vq))
			break;	/* closed the race with a buffer added before notify was on */
	}
out:
	if (submitted) {
		disk_queue_kick(bq->dq);
		/*
		 * io_uring completes page-cache hits inside the submit: reap them now
		 * rather than after another trip through epoll (a quarter of a 4 KiB
		 * read's cost here). Polling, the eventfd is left for later: one read
		 * per poll instead of one per request.
		 */
		if (bq->blk->reap_after_submit &&
		    (bq->polling ? disk_queue_poll(bq->dq, blk_disk_done, bq)
				 : disk_queue_complete(bq->dq, blk_disk_done, bq)))
			pushed = true;
	}
	if (pushed)
		virtio_notify_queue(&bq->blk->vdev, bq->idx);
	if (bq->stalled && bq->free) {
		/* That reap freed slots: come back for the rest through the kick fd. */
		uint64_t one = 1;

		bq->stalled = false;
		if (write(bq->kick_fd, &one, sizeof(one)) < 0) {
			/* EAGAIN: already readable */
		}
	}
	return submitted || pushed;
}

static void blk_on_kick(void *opaque, uint32_t events)
{
	struct blk_queue *bq = opaque;
	uint64_t v;

	if (read(bq->kick_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: consumed already; look at the ring anyway */
	}
	virtio_note_kick(&bq->blk->vdev, bq->idx);
	blk_queue_process(bq);
}

static void blk_on_done(void *opaque, uint32_t events)
{
	struct blk_queue *bq = opaque;

	if (!disk_queue_complete(bq->dq, blk_disk_done, bq))
		return;
	virtio_notify_queue(&bq->blk->vdev, bq->idx);
	if (bq->stalled) {
		bq->stalled = false;
		blk_queue_process(bq);
	}
}

/* ---- polling (io_loop_add_poll): no system call when there is nothing ---- */

static bool blk_poll(void *opaque)
{
	struct blk_queue *bq = opaque;
	bool work = false;

	if (!bq->active || atomic_load(&bq->blk->failed))
		return false;
	if (disk_queue_poll(bq->dq, blk_disk_done, bq)) {
		virtio_notify_queue(&bq->blk->vdev, bq->idx);
		work = true;
		bq->stalled = false;	/* slots were freed: look at the ring below */
	}
	/* Stalled: nothing can be taken until a completion frees a slot. */
	if (!bq->stalled && virtq_pending(&bq->vqs->vq) && blk_queue_process(bq))
		work = true;
	return work;
}

static bool blk_poll_mode(void *opaque, bool polling)
{
	struct blk_queue *bq = opaque;
	struct virtq *vq = &bq->vqs->vq;

	bq->polling = polling;
	if (!bq->active)
		return false;
	/* Polling: the driver need not kick (completions still bump the eventfd). */
	virtq_set_notify(vq, !polling);
	return !polling && (virtq_pending(vq) || disk_queue_ready(bq->dq));
}

/* ---- activate / reset (on the device's thread) ---- */

static void blk_queue_teardown(struct blk_queue *bq)
{
	struct virtio_blk *b = bq->blk;

	if (bq->poller)
		io_loop_del_poll(b->loop, bq);
	if (bq->kick_fd >= 0)
		io_loop_del(b->loop, bq->kick_fd);
	if (bq->done_fd >= 0)
		io_loop_del(b->loop, bq->done_fd);
	/* Waits for what the disk holds; those completions are dropped. */
	disk_queue_destroy(bq->dq);
	free(bq->reqs);
	free(bq->bufs);
	memset(bq, 0, sizeof(*bq));
	bq->kick_fd = bq->done_fd = -1;
}

static int blk_queue_setup(struct virtio_blk *b, unsigned int i)
{
	struct blk_queue *bq = &b->queues[i];
	struct virtio_queue *vqs = &b->vdev.queues[i];
	unsigned int size = vqs->vq.size;

	bq->blk = b;
	bq->idx = i;
	bq->vqs = vqs;
	bq->reqs = calloc(size, sizeof(*bq->reqs));
	bq->bufs = calloc(size, sizeof(*bq->bufs));
	if (!bq->reqs || !bq->bufs) {
		log_error("%s: out of memory for queue %u", b->name, i);
		goto err;
	}
	for (unsigned int k = size; k-- > 0;) {
		bq->reqs[k].bq = bq;
		bq->reqs[k].next_free = bq->free;
		bq->free = &bq->reqs[k];
	}
	bq->inflight = 0;
	bq->chain = (struct virtq_chain){ .cap = size, .bufs = bq->bufs };
	bq->dq = disk_queue_create(b->disk, size);
	if (!bq->dq)
		goto err;
	if (io_loop_add(b->loop, vqs->kick_fd, EPOLLIN, blk_on_kick, bq) < 0)
		goto err;
	bq->kick_fd = vqs->kick_fd;
	if (io_loop_add(b->loop, disk_queue_fd(bq->dq), EPOLLIN, blk_on_done, bq) < 0)
		goto err;
	bq->done_fd = disk_queue_fd(bq->dq);
	if (io_loop_add_poll(b->loop, blk_poll, blk_poll_mode, bq) < 0)
		goto err;
	bq->poller = true;
	bq->active = true;
	return 0;

err:
	blk_queue_teardown(bq);
	return -1;
}

static void blk_reset_here(void *opaque)
{
	struct virtio_blk *b = opaque;

	for (unsigned int i = 0; i < b->nr_queues; i++)
		blk_queue_teardown(&b->queues[i]);
	b->host_error_logged = false;
	atomic_store(&b->failed, false);
}

struct blk_activate_args {
	struct virtio_blk *b;
	int ret;
};

static void blk_activate_here(void *opaque)
{
	struct blk_activate_args *a = opaque;
	struct virtio_blk *b = a->b;

	blk_reset_here(b);	/* an activate without a reset in between starts over */
	for (unsigned int i = 0; i < b->nr_queues; i++) {
		struct virtio_queue *vqs = &b->vdev.queues[i];

		if (!vqs->vq.enabled)
			continue;
		if (vqs->kick_fd < 0) {
			log_error("%s: queue %u has no notification fd", b->name, i);
			goto err;
		}
		if (blk_queue_setup(b, i) < 0)
			goto err;
	}
	/* Requests queued before DRIVER_OK, or kicks we were not yet watching. */
	for (unsigned int i = 0; i < b->nr_queues; i++)
		blk_queue_process(&b->queues[i]);
	a->ret = 0;
	return;

err:
	blk_reset_here(b);
	a->ret = -1;
}

static int blk_activate(void *dev)
{
	struct blk_activate_args a = { dev, -1 };

	if (io_loop_call(((struct virtio_blk *)dev)->loop, blk_activate_here, &a) < 0)
		return -1;
	return a.ret;
}

static void blk_reset(void *dev)
{
	struct virtio_blk *b = dev;

	io_loop_call(b->loop, blk_reset_here, b);
}

/* ---- config space and features ---- */

static uint64_t blk_features(void *dev)
{
	return ((struct virtio_blk *)dev)->features;
}

static void blk_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
	struct virtio_blk *b = dev;

	/* The transport checked off + len <= config_size; constant after creation. */
	memcpy(buf, (const uint8_t *)&b->cfg + off, len);
}

static void blk_config_write(void *dev, uint32_t off, const void *buf, uint32_t len)
{
	/* Nothing is writable without VIRTIO_BLK_F_CONFIG_WCE, which we do not offer. */
}

static const struct virtio_dev_ops blk_virtio_ops = {
	.features = blk_features,
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.activate = blk_activate,
	.reset = blk_reset,
};

/* ---- creation and the device list ---- */

static void blk_init_config(struct virtio_blk *b)
{
	struct virtio_blk_config *c = &b->cfg;
	bool ro = disk_readonly(b->disk), discard = disk_discard(b->disk);

	b->capacity = disk_size(b->disk) >> SECTOR_SHIFT;
	b->features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_SIZE_MAX) |
		      (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |
		      (1ull << VIRTIO_BLK_F_MQ);
	if (ro)
		b->features |= 1ull << VIRTIO_BLK_F_RO;
	else
		b->features |= 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	if (discard)
		b->features |= 1ull << VIRTIO_BLK_F_DISCARD;

	c->capacity = htole64(b->capacity);
	c->size_max = htole32(VIRTIO_BLK_SIZE_MAX);
	c->seg_max = htole32(VIRTIO_BLK_SEG_MAX);
	c->blk_size = htole32(SECTOR_SIZE);
	c->num_queues = htole16((uint16_t)b->nr_queues);
	if (discard) {
		c->max_discard_sectors = htole32(VIRTIO_BLK_MAX_DISCARD_SECTORS);
		c->max_discard_seg = htole32(1);
		c->discard_sector_alignment = htole32(VIRTIO_BLK_DISCARD_ALIGNMENT);
	}
	if (!ro) {
		c->max_write_zeroes_sectors = htole32(VIRTIO_BLK_MAX_DISCARD_SECTORS);
		c->max_write_zeroes_seg = htole32(1);
		c->write_zeroes_may_unmap = discard;
	}
}

struct virtio_blk *virtio_blk_create(const struct guest_mem *mem, const struct disk_opts *opts,
				     const char *serial, unsigned int nr_queues, const char *name)
{
	struct virtio_blk *b;
	const char *faults = getenv("BOOTVM_DISK_FAULTS");
	char tname[40];

	if (nr_queues == 0 || nr_queues > VIRTIO_MAX_QUEUES) {
		log_error("%s: %u queues (1 to %u)", name, nr_queues, VIRTIO_MAX_QUEUES);
		return NULL;
	}
	if (serial && strlen(serial) > VIRTIO_BLK_SERIAL_LEN) {
		log_error("%s: serial \"%s\" is longer than %u bytes", name, serial,
			  VIRTIO_BLK_SERIAL_LEN);
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		log_error("%s: out of memory", name);
		return NULL;
	}
	snprintf(b->name, sizeof(b->name), "%s", name);
	if (serial)
		memcpy(b->serial, serial, strlen(serial));
	b->nr_queues = nr_queues;
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		b->queues[i].kick_fd = b->queues[i].done_fd = -1;

	b->disk = disk_open(opts);
	if (!b->disk)
		goto err_free;
	if (faults && disk_inject_faults_parse(b->disk, faults) < 0)
		goto err_disk;
	blk_init_config(b);
	b->reap_after_submit = !strcmp(disk_engine(b->disk), "io_uring");

	snprintf(tname, sizeof(tname), "io-%s", name);
	b->loop = io_loop_create(tname);
	if (!b->loop)
		goto err_disk;
	if (io_loop_start(b->loop) < 0)
		goto err_loop;

	b->vdev.name = b->name;
	b->vdev.device_id = VIRTIO_ID_BLOCK;
	b->vdev.ops = &blk_virtio_ops;
	b->vdev.dev = b;
	b->vdev.mem = mem;
	b->vdev.config_size = BLK_CONFIG_SIZE;
	b->vdev.nr_queues = nr_queues;
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		b->vdev.queues[i].max_size = i < nr_queues ? VIRTIO_BLK_QUEUE_SIZE : 0;
		b->vdev.queues[i].kick_fd = -1;
	}
	return b;

err_loop:
	io_loop_destroy(b->loop);
err_disk:
	disk_close(b->disk);
err_free:
	free(b);
	return NULL;
}

struct virtio_dev *virtio_blk_vdev(struct virtio_blk *b)
{
	return &b->vdev;
}

struct disk *virtio_blk_disk(struct virtio_blk *b)
{
	return b->disk;
}

static void blk_dev_reset(void *dev)
{
	blk_reset(dev);
}

static void blk_dev_stop(void *dev)
{
	struct virtio_blk *b = dev;

	io_loop_call(b->loop, blk_reset_here, b);
	io_loop_stop(b->loop);
}

static void blk_dev_destroy(void *dev)
{
	struct virtio_blk *b = dev;

	blk_dev_stop(b);	/* idempotent: the list stops first */
	io_loop_destroy(b->loop);
	disk_close(b->disk);
	free(b);
}

const struct device_ops virtio_blk_device_ops = {
	.kind = "virtio-blk",
	.reset = blk_dev_reset,
	.stop = blk_dev_stop,
	.destroy = blk_dev_destroy,
};
