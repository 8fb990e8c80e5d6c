/*
 * virtio/virtqueue.c: split rings built in a real struct guest_mem, one
 * table row per good chain and per rule a hostile driver can break, then
 * push / notification semantics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "virtio/virtqueue.h"
#include "vmm/memory.h"

#define KIB (1ULL << 10)
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

/* Ring areas, each on its own page so a test can make them inaccessible. */
#define DESC_GPA	0x1000ULL
#define AVAIL_GPA	0x2000ULL
#define USED_GPA	0x3000ULL
#define RING_PAGES	3
#define IND_GPA		0x8000ULL	/* indirect tables */
#define BUF(n)		(0x10000ULL + (n) * 0x1000ULL)

#define F_IND		(1ULL << VIRTIO_RING_F_INDIRECT_DESC)
#define F_EVT		(1ULL << VIRTIO_RING_F_EVENT_IDX)

#define N		VRING_DESC_F_NEXT
#define W		VRING_DESC_F_WRITE
#define I		VRING_DESC_F_INDIRECT

struct fixture {
	struct guest_mem one;	/* 2 MiB, one region */
	struct guest_mem two;	/* 2 MiB, hole at 1 MiB: [0, 1M) and [4G, 4G + 1M) */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || guest_mem_init(&f->one, 2 * MIB, 3 * GIB) < 0 ||
	    guest_mem_init(&f->two, 2 * MIB, 1 * MIB) < 0)
		return -1;
	if (f->two.nr_regions != 2 || f->two.regions[1].gpa != 4 * GIB)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	guest_mem_destroy(&f->one);
	guest_mem_destroy(&f->two);
	free(f);
	return 0;
}

static void put_desc(struct guest_mem *m, uint64_t table, unsigned int i, uint64_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	assert_int_equal(guest_mem_write(m, table + i * 16ULL, &d, sizeof(d)), 0);
}

static struct vring_avail *avail_of(struct guest_mem *m)
{
	return guest_mem_ptr(m, AVAIL_GPA, 6 + 2 * VIRTQ_MAX_SIZE);
}

static struct vring_used *used_of(struct guest_mem *m)
{
	return guest_mem_ptr(m, USED_GPA, 6 + 8 * 16);
}

/* Make avail ring entry n (counting from 0) say head, and publish n + 1 entries. */
static void offer(struct guest_mem *m, uint16_t size, uint16_t n, uint16_t head)
{
	struct vring_avail *a = avail_of(m);

	a->ring[n & (size - 1)] = head;
	a->idx = (uint16_t)(n + 1);
}

static void clear_rings(struct guest_mem *m)
{
	memset(guest_mem_ptr(m, 0, 0x10000), 0, 0x10000);
}

/* ---- pop: one row per chain ---- */

struct desc_spec {
	uint16_t i;
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct want_buf {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

#define MAXD 20

struct pop_row {
	const char *name;
	bool split;			/* use the two-region guest_mem */
	uint16_t size;			/* 0: 8 */
	uint64_t features;
	unsigned int cap;		/* 0: 64 */
	uint16_t head;
	struct desc_spec desc[MAXD];	/* direct table (terminated by len == 0 && addr == 0 && !flags) */
	unsigned int nr_desc;
	struct desc_spec ind[MAXD];	/* table at IND_GPA */
	unsigned int nr_ind;
	int ret;
	const char *why;		/* for ret == -1 */
	struct want_buf want[MAXD];
	unsigned int nr_want;
};

#define D(...) { __VA_ARGS__ }

static const struct pop_row pop_rows[] = {
	/* Good chains. */
	{ .name = "one readable", .head = 3, .nr_desc = 1,
	  .desc = { D(3, BUF(0), 512, 0, 0) },
	  .ret = 1, .nr_want = 1, .want = { { BUF(0), 512, false } } },
	{ .name = "one writable", .nr_desc = 1,
	  .desc = { D(0, BUF(0), 1, W, 0) },
	  .ret = 1, .nr_want = 1, .want = { { BUF(0), 1, true } } },
	{ .name = "out, out, in (blk-like)", .head = 5, .nr_desc = 3,
	  .desc = { D(5, BUF(0), 16, N, 2), D(2, BUF(1), 4096, N, 7), D(7, BUF(2), 1, W, 0) },
	  .ret = 1, .nr_want = 3,
	  .want = { { BUF(0), 16, false }, { BUF(1), 4096, false }, { BUF(2), 1, true } } },
	{ .name = "max length direct (8 on 8)", .nr_desc = 8,
	  .desc = { D(0, BUF(0), 8, N, 1), D(1, BUF(1), 8, N, 2), D(2, BUF(2), 8, N, 3),
		    D(3, BUF(3), 8, N, 4), D(4, BUF(4), 8, W | N, 5), D(5, BUF(5), 8, W | N, 6),
		    D(6, BUF(6), 8, W | N, 7), D(7, BUF(7), 8, W, 0) },
	  .ret = 1, .nr_want = 8,
	  .want = { { BUF(0), 8, false }, { BUF(1), 8, false }, { BUF(2), 8, false },
		    { BUF(3), 8, false }, { BUF(4), 8, true }, { BUF(5), 8, true },
		    { BUF(6), 8, true }, { BUF(7), 8, true } } },
	{ .name = "indirect, out and in", .features = F_IND, .head = 1, .nr_desc = 1,
	  .desc = { D(1, IND_GPA, 3 * 16, I, 0) },
	  .nr_ind = 3,
	  .ind = { D(0, BUF(0), 16, N, 2), D(2, BUF(2), 100, W | N, 1), D(1, BUF(1), 200, W, 0) },
	  .ret = 1, .nr_want = 3,
	  .want = { { BUF(0), 16, false }, { BUF(2), 100, true }, { BUF(1), 200, true } } },
	{ .name = "indirect, WRITE on the indirect descriptor ignored", .features = F_IND,
	  .nr_desc = 1, .desc = { D(0, IND_GPA, 16, I | W, 0) },
	  .nr_ind = 1, .ind = { D(0, BUF(0), 10, 0, 0) },
	  .ret = 1, .nr_want = 1, .want = { { BUF(0), 10, false } } },
	{ .name = "indirect table larger than the chain it holds", .features = F_IND,
	  .nr_desc = 1, .desc = { D(0, IND_GPA, 64 * 16, I, 0) },
	  .nr_ind = 1, .ind = { D(0, BUF(0), 10, W, 0) },
	  .ret = 1, .nr_want = 1, .want = { { BUF(0), 10, true } } },
	{ .name = "max length indirect (8 on 8)", .features = F_IND, .nr_desc = 1,
	  .desc = { D(0, IND_GPA, 8 * 16, I, 0) },
	  .nr_ind = 8,
	  .ind = { D(0, BUF(0), 1, N, 1), D(1, BUF(1), 1, N, 2), D(2, BUF(2), 1, N, 3),
		   D(3, BUF(3), 1, N, 4), D(4, BUF(4), 1, N, 5), D(5, BUF(5), 1, N, 6),
		   D(6, BUF(6), 1, N, 7), D(7, BUF(7), 1, W, 0) },
	  .ret = 1, .nr_want = 8,
	  .want = { { BUF(0), 1, false }, { BUF(1), 1, false }, { BUF(2), 1, false },
		    { BUF(3), 1, false }, { BUF(4), 1, false }, { BUF(5), 1, false },
		    { BUF(6), 1, false }, { BUF(7), 1, true } } },
	{ .name = "buffer in the high region", .split = true, .nr_desc = 2,
	  .desc = { D(0, 4 * GIB + 0x100, 64, N, 1), D(1, 4 * GIB + MIB - 8, 8, W, 0) },
	  .ret = 1, .nr_want = 2,
	  .want = { { 4 * GIB + 0x100, 64, false }, { 4 * GIB + MIB - 8, 8, true } } },
	{ .name = "buffer ending exactly at the end of RAM", .nr_desc = 1,
	  .desc = { D(0, 2 * MIB - 4096, 4096, W, 0) },
	  .ret = 1, .nr_want = 1, .want = { { 2 * MIB - 4096, 4096, true } } },
	{ .name = "exactly cap buffers", .cap = 2, .nr_desc = 2,
	  .desc = { D(0, BUF(0), 1, N, 1), D(1, BUF(1), 1, W, 0) },
	  .ret = 1, .nr_want = 2, .want = { { BUF(0), 1, false }, { BUF(1), 1, true } } },

	/* One rule broken each. */
	{ .name = "head >= size", .head = 8, .ret = -1, .why = "head out of range" },
	{ .name = "head 0xffff", .head = 0xffff, .ret = -1, .why = "head out of range" },
	{ .name = "next >= size", .nr_desc = 1, .desc = { D(0, BUF(0), 1, N, 8) },
	  .ret = -1, .why = "next out of range" },
	{ .name = "loop 0 -> 1 -> 0", .nr_desc = 2,
	  .desc = { D(0, BUF(0), 1, N, 1), D(1, BUF(1), 1, N, 0) },
	  .ret = -1, .why = "longer than the queue" },
	{ .name = "self loop", .nr_desc = 1, .desc = { D(0, BUF(0), 1, N, 0) },
	  .ret = -1, .why = "longer than the queue" },
	{ .name = "chain longer than size (9 indirect on 8)", .features = F_IND, .nr_desc = 1,
	  .desc = { D(0, IND_GPA, 9 * 16, I, 0) },
	  .nr_ind = 9,
	  .ind = { D(0, BUF(0), 1, N, 1), D(1, BUF(1), 1, N, 2), D(2, BUF(2), 1, N, 3),
		   D(3, BUF(3), 1, N, 4), D(4, BUF(4), 1, N, 5), D(5, BUF(5), 1, N, 6),
		   D(6, BUF(6), 1, N, 7), D(7, BUF(7), 1, N, 8), D(8, BUF(8), 1, 0, 0) },
	  .ret = -1, .why = "longer than the queue" },
	{ .name = "loop inside an indirect table", .features = F_IND, .nr_desc = 1,
	  .desc = { D(0, IND_GPA, 2 * 16, I, 0) },
	  .nr_ind = 2, .ind = { D(0, BUF(0), 1, N, 1), D(1, BUF(1), 1, N, 0) },
	  .ret = -1, .why = "longer than the queue" },
	{ .name = "indirect not negotiated", .nr_desc = 1,
	  .desc = { D(0, IND_GPA, 16, I, 0) },
	  .nr_ind = 1, .ind = { D(0, BUF(0), 1, 0, 0) },
	  .ret = -1, .why = "without VIRTIO_RING_F_INDIRECT_DESC" },
	{ .name = "nested indirect", .features = F_IND, .nr_desc = 1,
	  .desc = { D(0, IND_GPA, 2 * 16, I, 0) },
	  .nr_ind = 2, .ind = { D(0, BUF(0), 1, N, 1), D(1, IND_GPA, 16, I, 0) },
	  .ret = -1, .why = "nested indirect" },
	{ .name = "indirect len % 16 != 0", .features = F_IND, .nr_desc = 1,
	  .desc = { D(0, IND_GPA, 24, I, 0) },
	  .nr_ind = 1, .ind = { D(0, BUF(0), 1, 0, 0) },
	  .ret = -1, .why = "multiple of 16" },
	{ .name = "indirect len 0", .features = F_IND, .nr_desc = 1,
	  .desc = { D(0, IND_GPA, 0, I, 0) },
	  .ret = -1, .why = "multiple of 16" },
	{ .name = "indirect table outside RAM", .features = F_IND, .nr_desc = 1,
	  .desc = { D(0, 2 * MIB, 16, I, 0) },
	  .ret = -1, .why = "indirect table outside guest RAM" },
	{ .name = "indirect table straddling the end of RAM", .features = F_IND, .nr_desc = 1,
	  .desc = { D(0, 2 * MIB - 16, 32, I, 0) },
	  .ret = -1, .why = "indirect table outside guest RAM" },
	{ .name = "indirect with NEXT", .features = F_IND, .nr_desc = 2,
	  .desc = { D(0, IND_GPA, 16, I | N, 1), D(1, BUF(1), 1, W, 0) },
	  .nr_ind = 1, .ind = { D(0, BUF(0), 1, 0, 0) },
	  .ret = -1, .why = "with VRING_DESC_F_NEXT" },
	{ .name = "indirect reached through NEXT", .features = F_IND, .nr_desc = 2,
	  .desc = { D(0, BUF(1), 1, N, 1), D(1, IND_GPA, 16, I, 0) },
	  .nr_ind = 1, .ind = { D(0, BUF(0), 1, W, 0) },
	  .ret = -1, .why = "indirect descriptor inside a chain" },
	{ .name = "indirect next >= entries", .features = F_IND, .nr_desc = 1,
	  .desc = { D(0, IND_GPA, 2 * 16, I, 0) },
	  .nr_ind = 2, .ind = { D(0, BUF(0), 1, N, 2), D(1, BUF(1), 1, 0, 0) },
	  .ret = -1, .why = "indirect descriptor next out of range" },
	{ .name = "buffer outside RAM", .nr_desc = 1, .desc = { D(0, 2 * MIB, 1, W, 0) },
	  .ret = -1, .why = "buffer outside guest RAM" },
	{ .name = "buffer straddling the end of RAM", .nr_desc = 1,
	  .desc = { D(0, 2 * MIB - 8, 16, W, 0) },
	  .ret = -1, .why = "buffer outside guest RAM" },
	{ .name = "buffer straddling the hole (low side)", .split = true, .nr_desc = 1,
	  .desc = { D(0, MIB - 8, 16, W, 0) },
	  .ret = -1, .why = "buffer outside guest RAM" },
	{ .name = "buffer straddling the hole (high side)", .split = true, .nr_desc = 1,
	  .desc = { D(0, 4 * GIB - 8, 16, 0, 0) },
	  .ret = -1, .why = "buffer outside guest RAM" },
	{ .name = "buffer in the hole", .split = true, .nr_desc = 1,
	  .desc = { D(0, 2 * GIB, 16, 0, 0) },
	  .ret = -1, .why = "buffer outside guest RAM" },
	{ .name = "buffer past the end of the high region", .split = true, .nr_desc = 1,
	  .desc = { D(0, 4 * GIB + MIB - 8, 16, W, 0) },
	  .ret = -1, .why = "buffer outside guest RAM" },
	{ .name = "gpa + len overflows", .nr_desc = 1,
	  .desc = { D(0, UINT64_MAX - 7, 16, W, 0) },
	  .ret = -1, .why = "buffer outside guest RAM" },
	{ .name = "gpa + len overflows to inside RAM", .nr_desc = 1,
	  .desc = { D(0, UINT64_MAX - 0xfff, 0x2000, W, 0) },
	  .ret = -1, .why = "buffer outside guest RAM" },
	{ .name = "readable after writable", .nr_desc = 2,
	  .desc = { D(0, BUF(0), 1, W | N, 1), D(1, BUF(1), 1, 0, 0) },
	  .ret = -1, .why = "readable buffer after a device-writable" },
	{ .name = "readable after writable (indirect)", .features = F_IND, .nr_desc = 1,
	  .desc = { D(0, IND_GPA, 2 * 16, I, 0) },
	  .nr_ind = 2, .ind = { D(0, BUF(0), 1, W | N, 1), D(1, BUF(1), 1, 0, 0) },
	  .ret = -1, .why = "readable buffer after a device-writable" },
	{ .name = "zero-length buffer", .nr_desc = 2,
	  .desc = { D(0, BUF(0), 1, N, 1), D(1, BUF(1), 0, W, 0) },
	  .ret = -1, .why = "zero-length" },
	{ .name = "more buffers than cap", .cap = 2, .nr_desc = 3,
	  .desc = { D(0, BUF(0), 1, N, 1), D(1, BUF(1), 1, N, 2), D(2, BUF(2), 1, W, 0) },
	  .ret = -1, .why = "more buffers than the device handles" },
};

static void run_pop_row(struct fixture *f, const struct pop_row *r)
{
	struct guest_mem *m = r->split ? &f->two : &f->one;
	uint16_t size = r->size ? r->size : 8;
	unsigned int cap = r->cap ? r->cap : 64;
	struct virtq_buf bufs[64];
	struct virtq_chain c = { .cap = cap, .bufs = bufs };
	struct virtq q;
	uint8_t used_before[6 + 8 * 16];

	print_message("# row: %s\n", r->name);
	clear_rings(m);
	for (unsigned int i = 0; i < r->nr_desc; i++) {
		const struct desc_spec *d = &r->desc[i];
		put_desc(m, DESC_GPA, d->i, d->addr, d->len, d->flags, d->next);
	}
	for (unsigned int i = 0; i < r->nr_ind; i++) {
		const struct desc_spec *d = &r->ind[i];
		put_desc(m, IND_GPA, d->i, d->addr, d->len, d->flags, d->next);
	}
	offer(m, size, 0, r->head);

	assert_int_equal(virtq_enable(&q, m, size, DESC_GPA, AVAIL_GPA, USED_GPA, r->features), 0);
	assert_true(virtq_pending(&q));
	memcpy(used_before, used_of(m), sizeof(used_before));

	int ret = virtq_pop(&q, &c);
	assert_int_equal(ret, r->ret);
	if (ret == 1) {
		unsigned int nr_out = 0, nr_in = 0;
		uint64_t out_len = 0, in_len = 0;

		assert_false(q.broken);
		assert_int_equal(c.head, r->head);
		assert_int_equal(c.nr_out + c.nr_in, r->nr_want);
		for (unsigned int i = 0; i < r->nr_want; i++) {
			const struct want_buf *w = &r->want[i];
			assert_ptr_equal(bufs[i].host, guest_mem_ptr(m, w->gpa, w->len));
			assert_int_equal(bufs[i].len, w->len);
			assert_int_equal(bufs[i].writable, w->writable);
			if (w->writable) {
				nr_in++;
				in_len += w->len;
			} else {
				nr_out++;
				out_len += w->len;
			}
		}
		assert_int_equal(c.nr_out, nr_out);
		assert_int_equal(c.nr_in, nr_in);
		assert_int_equal(c.out_len, out_len);
		assert_int_equal(c.in_len, in_len);
		assert_int_equal(q.last_avail, 1);
		assert_false(virtq_pending(&q));
		assert_int_equal(virtq_pop(&q, &c), 0);
	} else {
		assert_true(q.broken);
		assert_non_null(q.why);
		if (!strstr(q.why, r->why))
			fail_msg("row '%s': why is '%s', expected '%s'", r->name, q.why, r->why);
		assert_false(virtq_pending(&q));
		/* Broken: the rings are never touched again, not even read. */
		assert_int_equal(mprotect(guest_mem_ptr(m, DESC_GPA, 1), RING_PAGES * 4096,
					  PROT_NONE), 0);
		assert_int_equal(virtq_pop(&q, &c), -1);
		assert_int_equal(virtq_pop(&q, &c), -1);
		virtq_push(&q, 0, 1);
		virtq_set_notify(&q, true);
		virtq_set_notify(&q, false);
		assert_false(virtq_should_notify(&q));
		assert_false(virtq_pending(&q));
		assert_int_equal(mprotect(guest_mem_ptr(m, DESC_GPA, 1), RING_PAGES * 4096,
					  PROT_READ | PROT_WRITE), 0);
		assert_memory_equal(used_before, used_of(m), sizeof(used_before));
		/* Re-enabling (a reset) serves again. */
		clear_rings(m);
		assert_int_equal(virtq_enable(&q, m, size, DESC_GPA, AVAIL_GPA, USED_GPA,
					      r->features), 0);
		assert_false(q.broken);
		assert_int_equal(virtq_pop(&q, &c), 0);
	}
	virtq_disable(&q);
}

static void test_pop_table(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(pop_rows) / sizeof(pop_rows[0]); i++)
		run_pop_row(f, &pop_rows[i]);
}

/* ---- enable: ring areas ---- */

struct enable_row {
	const char *name;
	bool split;
	uint16_t size;
	uint64_t desc, avail, used;
	int ret;
	const char *why;
};

static const struct enable_row enable_rows[] = {
	{ "size 1", false, 1, DESC_GPA, AVAIL_GPA, USED_GPA, 0, NULL },
	{ "size 256", false, 256, DESC_GPA, 0x10000, 0x20000, 0, NULL },
	{ "size 32768", false, 32768, MIB, MIB + 512 * KIB, MIB + 640 * KIB, 0, NULL },
	{ "rings packed at the end of RAM", false, 8, 2 * MIB - 224, 2 * MIB - 96,
	  2 * MIB - 72, 0, NULL },
	{ "rings in the high region", true, 8, 4 * GIB, 4 * GIB + 0x1000, 4 * GIB + 0x2000, 0, NULL },
	{ "size 0", false, 0, DESC_GPA, AVAIL_GPA, USED_GPA, -1, "power of two" },
	{ "size 3", false, 3, DESC_GPA, AVAIL_GPA, USED_GPA, -1, "power of two" },
	{ "size 0xffff", false, 0xffff, DESC_GPA, AVAIL_GPA, USED_GPA, -1, "power of two" },
	{ "desc misaligned", false, 8, DESC_GPA + 8, AVAIL_GPA, USED_GPA, -1, "misaligned" },
	{ "avail misaligned", false, 8, DESC_GPA, AVAIL_GPA + 1, USED_GPA, -1, "misaligned" },
	{ "used misaligned", false, 8, DESC_GPA, AVAIL_GPA, USED_GPA + 2, -1, "misaligned" },
	{ "desc outside RAM", false, 8, 2 * MIB, AVAIL_GPA, USED_GPA, -1, "outside guest RAM" },
	{ "desc straddling the end of RAM", false, 8, 2 * MIB - 64, AVAIL_GPA, USED_GPA, -1,
	  "outside guest RAM" },
	{ "avail straddling the end of RAM (event field)", false, 8, DESC_GPA, 2 * MIB - 20,
	  USED_GPA, -1, "outside guest RAM" },
	{ "used straddling the end of RAM", false, 8, DESC_GPA, AVAIL_GPA, 2 * MIB - 68, -1,
	  "outside guest RAM" },
	{ "used straddling the hole", true, 8, DESC_GPA, AVAIL_GPA, MIB - 64, -1,
	  "outside guest RAM" },
	{ "avail in the hole", true, 8, DESC_GPA, 3 * GIB, USED_GPA, -1, "outside guest RAM" },
	{ "desc at the top of the address space", false, 8, UINT64_MAX - 15, AVAIL_GPA, USED_GPA,
	  -1, "outside guest RAM" },
	{ "used wrapping the address space", false, 8, DESC_GPA, AVAIL_GPA, UINT64_MAX - 3, -1,
	  "outside guest RAM" },
};

static void test_enable_table(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(enable_rows) / sizeof(enable_rows[0]); i++) {
		const struct enable_row *r = &enable_rows[i];
		struct guest_mem *m = r->split ? &f->two : &f->one;
		struct virtq q;

		print_message("# row: %s\n", r->name);
		int ret = virtq_enable(&q, m, r->size, r->desc, r->avail, r->used, F_EVT | F_IND);
		assert_int_equal(ret, r->ret);
		if (ret == 0) {
			assert_true(q.enabled);
			assert_int_equal(q.size, r->size);
			assert_ptr_equal(q.desc, guest_mem_ptr(m, r->desc, 1));
			assert_ptr_equal(q.avail, guest_mem_ptr(m, r->avail, 1));
			assert_ptr_equal(q.used, guest_mem_ptr(m, r->used, 1));
			assert_true(q.event_idx);
			assert_true(q.indirect);
		} else {
			assert_false(q.enabled);
			assert_non_null(q.why);
			if (!strstr(q.why, r->why))
				fail_msg("row '%s': why is '%s'", r->name, q.why);
			/* Not enabled: nothing to take, nothing touched. */
			struct virtq_chain c = { 0 };
			assert_int_equal(virtq_pop(&q, &c), 0);
			assert_false(virtq_pending(&q));
		}
	}
}

/* ---- the avail index ---- */

static void fill_simple(struct guest_mem *m, uint16_t size)
{
	clear_rings(m);
	for (uint16_t i = 0; i < size; i++)
		put_desc(m, DESC_GPA, i, BUF(i), 4, W, 0);
}

static void test_avail_ahead(void **state)
{
	struct fixture *f = *state;
	struct guest_mem *m = &f->one;
	struct virtq_buf bufs[8];
	struct virtq_chain c = { .cap = 8, .bufs = bufs };
	struct vring_avail *a = avail_of(m);
	struct virtq q;

	/* Exactly size ahead: all of them are served. */
	fill_simple(m, 8);
	for (uint16_t i = 0; i < 8; i++)
		offer(m, 8, i, (uint16_t)(7 - i));
	assert_int_equal(virtq_enable(&q, m, 8, DESC_GPA, AVAIL_GPA, USED_GPA, 0), 0);
	for (uint16_t i = 0; i < 8; i++) {
		assert_int_equal(virtq_pop(&q, &c), 1);
		assert_int_equal(c.head, 7 - i);
		virtq_push(&q, c.head, 4);
	}
	assert_int_equal(virtq_pop(&q, &c), 0);

	/* size + 1 ahead: broken, nothing pushed. */
	fill_simple(m, 8);
	a->idx = 9;
	assert_int_equal(virtq_enable(&q, m, 8, DESC_GPA, AVAIL_GPA, USED_GPA, 0), 0);
	assert_int_equal(virtq_pop(&q, &c), -1);
	assert_true(q.broken);
	assert_non_null(strstr(q.why, "ahead"));
	assert_int_equal(used_of(m)->idx, 0);

	/* Running ahead later, across the 16-bit wrap. */
	fill_simple(m, 8);
	assert_int_equal(virtq_enable(&q, m, 8, DESC_GPA, AVAIL_GPA, USED_GPA, 0), 0);
	for (unsigned int n = 0; n < 70000; n++) {
		offer(m, 8, (uint16_t)n, (uint16_t)(n & 7));
		assert_int_equal(virtq_pop(&q, &c), 1);
		virtq_push(&q, c.head, 4);
	}
	assert_int_equal(q.last_avail, (uint16_t)70000);
	assert_int_equal(used_of(m)->idx, (uint16_t)70000);
	a->idx = (uint16_t)(70000 + 9);
	assert_int_equal(virtq_pop(&q, &c), -1);
	assert_true(q.broken);

	/* A driver moving idx backwards is "ahead" by almost 65536. */
	fill_simple(m, 8);
	a->idx = 0xffff;
	assert_int_equal(virtq_enable(&q, m, 8, DESC_GPA, AVAIL_GPA, USED_GPA, 0), 0);
	assert_int_equal(virtq_pop(&q, &c), -1);
}

/* A queue of the largest size: a chain through every descriptor, then a loop. */
static void test_max_size_queue(void **state)
{
	struct fixture *f = *state;
	struct guest_mem *m = &f->one;
	uint64_t desc = MIB, avail = MIB + 512 * KIB, used = MIB + 640 * KIB;
	static struct virtq_buf bufs[VIRTQ_MAX_SIZE];
	struct virtq_chain c = { .cap = VIRTQ_MAX_SIZE, .bufs = bufs };
	struct vring_avail *a = guest_mem_ptr(m, avail, 6 + 2 * VIRTQ_MAX_SIZE);
	struct virtq q;

	memset(guest_mem_ptr(m, MIB, MIB), 0, MIB);
	for (unsigned int i = 0; i < VIRTQ_MAX_SIZE; i++)
		put_desc(m, desc, i, BUF(0), 1, i >= VIRTQ_MAX_SIZE / 2 ? W | N : N,
			 (uint16_t)((i + 1) % VIRTQ_MAX_SIZE));
	/* The last one ends the chain. */
	put_desc(m, desc, VIRTQ_MAX_SIZE - 1, BUF(0), 1, W, 0);
	a->ring[0] = 0;
	a->idx = 1;
	assert_int_equal(virtq_enable(&q, m, VIRTQ_MAX_SIZE, desc, avail, used, 0), 0);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(c.nr_out, VIRTQ_MAX_SIZE / 2);
	assert_int_equal(c.nr_in, VIRTQ_MAX_SIZE / 2);

	/* Now make it a loop. */
	put_desc(m, desc, VIRTQ_MAX_SIZE - 1, BUF(0), 1, W | N, 0);
	a->ring[1] = 0;
	a->idx = 2;
	assert_int_equal(virtq_pop(&q, &c), -1);
	assert_non_null(strstr(q.why, "longer than the queue"));
}

/* ---- push and notifications ---- */

static void start(struct fixture *f, struct virtq *q, uint64_t features)
{
	fill_simple(&f->one, 8);
	assert_int_equal(virtq_enable(q, &f->one, 8, DESC_GPA, AVAIL_GPA, USED_GPA, features), 0);
}

static void take_and_push(struct fixture *f, struct virtq *q, uint16_t n, uint32_t written)
{
	struct virtq_buf bufs[8];
	struct virtq_chain c = { .cap = 8, .bufs = bufs };

	offer(&f->one, 8, n, (uint16_t)(n & 7));
	assert_int_equal(virtq_pop(q, &c), 1);
	virtq_push(q, c.head, written);
}

static void test_push(void **state)
{
	struct fixture *f = *state;
	struct vring_used *u = used_of(&f->one);
	struct virtq q;

	start(f, &q, 0);
	take_and_push(f, &q, 0, 3);
	take_and_push(f, &q, 1, 4);
	assert_int_equal(u->idx, 2);
	assert_int_equal(u->ring[0].id, 0);
	assert_int_equal(u->ring[0].len, 3);
	assert_int_equal(u->ring[1].id, 1);
	assert_int_equal(u->ring[1].len, 4);
	/* Out of order completion is the device's business: any head goes. */
	virtq_push(&q, 5, 7);
	assert_int_equal(u->idx, 3);
	assert_int_equal(u->ring[2].id, 5);
	/* Disabled: push writes nothing. */
	virtq_disable(&q);
	virtq_push(&q, 1, 1);
	assert_int_equal(u->idx, 3);
}

static void test_notify_no_interrupt(void **state)
{
	struct fixture *f = *state;
	struct vring_avail *a = avail_of(&f->one);
	struct virtq q;

	start(f, &q, 0);
	take_and_push(f, &q, 0, 1);
	assert_true(virtq_should_notify(&q));
	a->flags = VRING_AVAIL_F_NO_INTERRUPT;
	take_and_push(f, &q, 1, 1);
	assert_false(virtq_should_notify(&q));
	a->flags = 0;
	assert_true(virtq_should_notify(&q));
	/* used_event means nothing without EVENT_IDX. */
	a->ring[8] = 100;
	take_and_push(f, &q, 2, 1);
	assert_true(virtq_should_notify(&q));
}

static void test_notify_event_idx(void **state)
{
	struct fixture *f = *state;
	struct vring_avail *a = avail_of(&f->one);
	struct virtq q;

	start(f, &q, F_EVT);
	/* The first time there is no "last signalled" yet: notify. */
	a->ring[8] = 100;	/* used_event */
	take_and_push(f, &q, 0, 1);
	assert_true(virtq_should_notify(&q));
	/* Nothing pushed since: never. */
	assert_false(virtq_should_notify(&q));

	/* Driver wants an interrupt once used->idx passes 1 (entry 1 used). */
	a->ring[8] = 1;
	take_and_push(f, &q, 1, 1);		/* used_idx 2 */
	assert_true(virtq_should_notify(&q));
	take_and_push(f, &q, 2, 1);		/* used_idx 3: event 1 already passed */
	assert_false(virtq_should_notify(&q));

	/* The flag is ignored with EVENT_IDX. */
	a->flags = VRING_AVAIL_F_NO_INTERRUPT;
	a->ring[8] = 3;
	take_and_push(f, &q, 3, 1);		/* used_idx 4 */
	assert_true(virtq_should_notify(&q));
	a->flags = 0;

	/* Several pushes crossing used_event in one batch: one notification. */
	a->ring[8] = 5;
	take_and_push(f, &q, 4, 1);		/* 5 */
	take_and_push(f, &q, 5, 1);		/* 6 */
	take_and_push(f, &q, 6, 1);		/* 7 */
	assert_true(virtq_should_notify(&q));
	/* Batch not reaching used_event. */
	a->ring[8] = 20;
	take_and_push(f, &q, 7, 1);		/* 8 */
	take_and_push(f, &q, 8, 1);		/* 9 */
	assert_false(virtq_should_notify(&q));

	/* Re-enable forgets the last signalled index. */
	start(f, &q, F_EVT);
	a->ring[8] = 100;
	take_and_push(f, &q, 0, 1);
	assert_true(virtq_should_notify(&q));
}

static void test_set_notify(void **state)
{
	struct fixture *f = *state;
	struct vring_used *u = used_of(&f->one);
	struct vring_avail *a = avail_of(&f->one);
	uint16_t *avail_event = (uint16_t *)&u->ring[8];
	struct virtq q;

	/* Without EVENT_IDX: VRING_USED_F_NO_NOTIFY. */
	start(f, &q, 0);
	virtq_set_notify(&q, false);
	assert_int_equal(u->flags, VRING_USED_F_NO_NOTIFY);
	assert_int_equal(*avail_event, 0);
	virtq_set_notify(&q, true);
	assert_int_equal(u->flags, 0);
	assert_int_equal(*avail_event, 0);

	/*
	 * With EVENT_IDX: on, avail_event is where we are; off, one behind, so a
	 * driver adding at 3 (old 3, new 4) does not kick. The flag stays clear.
	 */
	start(f, &q, F_EVT);
	take_and_push(f, &q, 0, 1);
	take_and_push(f, &q, 1, 1);
	take_and_push(f, &q, 2, 1);
	*avail_event = 0xabcd;
	virtq_set_notify(&q, false);
	assert_int_equal(u->flags, 0);
	assert_int_equal(*avail_event, 2);
	assert_false(vring_need_event(*avail_event, 4, 3));
	assert_false(vring_need_event(*avail_event, 3 + 8, 3));
	virtq_set_notify(&q, true);
	assert_int_equal(*avail_event, 3);
	assert_true(vring_need_event(*avail_event, 4, 3));
	assert_int_equal(u->flags, 0);

	/* pending(): what set_notify(true) is followed by. */
	assert_false(virtq_pending(&q));
	a->ring[3] = 3;
	a->idx = 4;
	assert_true(virtq_pending(&q));
	take_and_push(f, &q, 3, 1);
	assert_false(virtq_pending(&q));
	virtq_disable(&q);
	a->idx = 9;
	assert_false(virtq_pending(&q));
	virtq_set_notify(&q, true);
	assert_int_equal(*avail_event, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pop_table),
		cmocka_unit_test(test_enable_table),
		cmocka_unit_test(test_avail_ahead),
		cmocka_unit_test(test_max_size_queue),
		cmocka_unit_test(test_push),
		cmocka_unit_test(test_notify_no_interrupt),
		cmocka_unit_test(test_notify_event_idx),
		cmocka_unit_test(test_set_notify),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
