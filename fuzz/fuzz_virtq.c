/*
 * libFuzzer target: the virtqueue core against a driver that writes
 * anything into its rings. The input chooses the guest memory layout, the
 * queue size, the ring addresses, the features and the device's buffer
 * room, a sequence of operations (pop, push, notify, driver writes in
 * between, re-enable), and the image of the first part of guest RAM (ring
 * areas, descriptor tables, indirect tables) as records: a descriptor in
 * the ring's table or in one of four indirect tables, an avail entry, raw
 * bytes anywhere in the low region.
 *
 * Whatever the input, the core must not crash or hang, every buffer it
 * returns must lie inside one guest RAM region, a chain must have at most
 * size buffers (and no more than the room given), readable before writable,
 * and a broken queue stays broken.
 *
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false \
 *     -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz && build-fuzz/fuzz/fuzz_virtq -max_len=8192 CORPUS_DIR
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtqueue.h"
#include "vmm/memory.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)
#define IMAGE_MAX (1 * MIB)
#define INFLIGHT 64
#define IND_GPA 0x80000ULL	/* four indirect tables of 4 KiB, in region 0 of both layouts */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t take8(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static uint32_t take32(struct input *in)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v |= (uint32_t)take8(in) << (8 * i);
	return v;
}

/* A gpa from the input: below 4 GiB as given, or (top bit) in the high region. */
static uint64_t take_gpa(struct input *in)
{
	uint32_t v = take32(in);

	return (v & 0x80000000u) ? 4 * GIB + (v & 0x7fffffffu) : v;
}

static void check_inside(const struct guest_mem *m, const void *host, uint32_t len)
{
	const uint8_t *h = host;

	for (unsigned int i = 0; i < m->nr_regions; i++) {
		const struct guest_region *r = &m->regions[i];
		if (h >= r->host && len <= r->size && (uint64_t)(h - r->host) <= r->size - len)
			return;
	}
	abort();
}

static struct virtq_buf bufs[VIRTQ_MAX_SIZE + 1];

/* One pop with every property the caller relies on checked; *head on 1. */
static int pop_checked(struct virtq *q, const struct guest_mem *m, unsigned int cap,
		       uint16_t *head)
{
	struct virtq_chain c = { .cap = cap, .bufs = bufs };
	bool was_broken = q->broken;
	int ret = virtq_pop(q, &c);

	if (ret == -1) {
		if (!q->broken || !q->why)
			abort();
		return -1;
	}
	if (was_broken || (ret != 0 && ret != 1))
		abort();
	if (ret == 0)
		return 0;

	unsigned int n = c.nr_out + c.nr_in;
	uint64_t out_len = 0, in_len = 0;
	if (c.head >= q->size || n == 0 || n > q->size || n > cap)
		abort();
	for (unsigned int i = 0; i < n; i++) {
		if (bufs[i].writable != (i >= c.nr_out) || bufs[i].len == 0)
			abort();
		check_inside(m, bufs[i].host, bufs[i].len);
		if (bufs[i].writable) {
			in_len += bufs[i].len;
			/* The device may write all of it (just the ends, to stay fast). */
			((uint8_t *)bufs[i].host)[0] = 0xa5;
			((uint8_t *)bufs[i].host)[bufs[i].len - 1] = 0x5a;
		} else {
			out_len += bufs[i].len;
		}
	}
	if (out_len != c.out_len || in_len != c.in_len)
		abort();
	*head = c.head;
	return 1;
}

/* Nobody writes avail->idx meanwhile: at most size chains, else -1. */
static int serve_all(struct virtq *q, const struct guest_mem *m, unsigned int cap)
{
	unsigned int served = 0;
	uint16_t head;

	while (pop_checked(q, m, cap, &head) == 1) {
		if (++served > q->size)
			return -1;
		virtq_push(q, head, 1);
	}
	return 0;
}

/*
 * A buffer address: mostly near the places where the rules bite (inside a
 * region, at its ends, across the hole), sometimes any 64-bit value.
 */
static uint64_t take_addr(struct input *in, const struct guest_mem *m)
{
	uint8_t cls = take8(in);
	uint64_t off = take8(in) | (uint64_t)take8(in) << 8;
	const struct guest_region *lo = &m->regions[0], *hi = &m->regions[m->nr_regions - 1];

	switch (cls % 8) {
	case 0:
		return lo->gpa + off * 16;
	case 1:
		return lo->gpa + lo->size - off;
	case 2:
		return hi->gpa + off * 16;
	case 3:
		return hi->gpa + hi->size - off;
	case 4:
		return IND_GPA + (off % (4 * 4096));
	case 5:
		return 4 * GIB - off;
	case 6:
		return UINT64_MAX - off;
	default:
		return (uint64_t)take32(in) | (uint64_t)take32(in) << 32;
	}
}

static uint32_t take_len(struct input *in)
{
	uint8_t b = take8(in);

	if (b & 0x80)
		return take32(in);
	return (b & 0x3f) * ((b & 0x40) ? 16u : 1u);
}

static void put_desc(const struct guest_mem *m, uint64_t gpa, struct input *in)
{
	struct vring_desc d;

	d.addr = take_addr(in, m);
	d.len = take_len(in);
	uint8_t f = take8(in);
	d.flags = (f & 0x80) ? (uint16_t)(take8(in) | take8(in) << 8) : (f & 7);
	uint8_t n = take8(in);
	d.next = (n & 0x80) ? (uint16_t)(take8(in) | take8(in) << 8) : (n & 0x7f);
	(void)guest_mem_write(m, gpa, &d, sizeof(d));	/* a ring outside RAM takes nothing */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem one, two;	/* 1 MiB; 2 MiB with the hole at 1 MiB */
	static bool ready;
	struct input in = { data, size };
	struct virtq q;

	if (!ready) {
		if (guest_mem_init(&one, 1 * MIB, 3 * GIB) < 0 ||
		    guest_mem_init(&two, 2 * MIB, 1 * MIB) < 0)
			abort();
		ready = true;
	}

	uint8_t mode = take8(&in);
	const struct guest_mem *m = (mode & 1) ? &two : &one;
	uint16_t qsize = (uint16_t)(1u << (take8(&in) % 16));
	if (mode & 2)		/* now and then a size that is not a power of two */
		qsize = (uint16_t)take32(&in);
	uint8_t fbits = take8(&in);
	uint64_t features = ((uint64_t)(fbits & 1) << VIRTIO_RING_F_INDIRECT_DESC) |
			    ((uint64_t)((fbits >> 1) & 1) << VIRTIO_RING_F_EVENT_IDX);
	/* Room for buffers: mostly enough, sometimes too little. */
	unsigned int cap = (fbits & 4) ? take8(&in) : VIRTQ_MAX_SIZE;
	uint16_t idx_extra = (fbits & 8) ? take8(&in) | take8(&in) << 8 : 0;

	uint64_t desc = 0, avail = 16ULL * qsize, used = (avail + 6 + 2ULL * qsize + 3) & ~3ULL;
	if (mode & 4) {
		desc = take_gpa(&in);
		avail = take_gpa(&in);
		used = take_gpa(&in);
	}

	uint32_t nr_ops = take8(&in) | (uint32_t)take8(&in) << 8;
	nr_ops %= 1024;
	const uint8_t *ops = in.p;
	size_t ops_len = nr_ops < in.left ? nr_ops : in.left;
	in.p += ops_len;
	in.left -= ops_len;

	/* The rest writes the driver's side: descriptors, tables, avail entries, bytes. */
	uint8_t *ram = m->regions[0].host;
	memset(m->base, 0, m->ram_size);
	uint16_t nr_avail = 0;
	while (in.left) {
		uint8_t kind = take8(&in);
		switch (kind % 4) {
		case 0:
			put_desc(m, desc + 16ULL * ((take8(&in) | take8(&in) << 8) % (qsize ? qsize : 1)),
				 &in);
			break;
		case 1:
			put_desc(m, IND_GPA + 4096ULL * (take8(&in) % 4) + 16ULL * take8(&in), &in);
			break;
		case 2: {
			uint16_t head = (kind & 0x80) ? (uint16_t)take32(&in) : take8(&in);
			uint16_t slot = qsize ? (uint16_t)(nr_avail % qsize) : 0;
			(void)guest_mem_write(m, avail + 4 + 2ULL * slot, &head, 2);
			nr_avail++;
			break;
		}
		default: {
			uint32_t off = take32(&in) % m->regions[0].size;
			uint8_t len = take8(&in);
			for (uint8_t i = 0; i < len && off + i < m->regions[0].size; i++)
				ram[off + i] = take8(&in);
			break;
		}
		}
	}
	uint16_t avail_idx = (uint16_t)(nr_avail + idx_extra);
	(void)guest_mem_write(m, avail + 2, &avail_idx, 2);

	if (virtq_enable(&q, m, qsize, desc, avail, used, features) < 0) {
		if (q.enabled || !q.why)
			abort();
		return 0;
	}
	if (!q.enabled || q.size != qsize)
		abort();

	uint16_t inflight[INFLIGHT];
	unsigned int nr_inflight = 0;
	uint16_t head;
	struct input op = { ops, ops_len };
	while (op.left) {
		uint8_t o = take8(&op);

		switch (o & 7) {
		case 0:		/* take one, keep it in flight */
			if (pop_checked(&q, m, cap, &head) == 1) {
				if (nr_inflight == INFLIGHT)
					virtq_push(&q, inflight[--nr_inflight], 0);
				inflight[nr_inflight++] = head;
			}
			break;
		case 1:		/* complete the newest */
			if (nr_inflight)
				virtq_push(&q, inflight[--nr_inflight], (uint32_t)(o >> 3) * 512);
			break;
		case 2:
			(void)virtq_should_notify(&q);
			break;
		case 3:
			virtq_set_notify(&q, o & 8);
			break;
		case 4:
			if (virtq_pending(&q) && q.broken)
				abort();
			break;
		case 5: {	/* the driver writes meanwhile: one byte of the first 64 KiB */
			uint32_t off = take8(&op) | (uint32_t)take8(&op) << 8;
			ram[off] = take8(&op);
			break;
		}
		case 6:		/* a reset and the same set-up again */
			virtq_disable(&q);
			nr_inflight = 0;
			if (q.enabled || virtq_pending(&q))
				abort();
			if (virtq_enable(&q, m, qsize, desc, avail, used, features) < 0)
				abort();
			break;
		case 7:		/* serve everything available, as a device does */
			if (serve_all(&q, m, cap) < 0)
				abort();
			break;
		}
	}
	/* And the end of a device's wake-up: serve the rest. */
	if (serve_all(&q, m, cap) < 0)
		abort();
	(void)virtq_should_notify(&q);
	virtq_disable(&q);
	return 0;
}
