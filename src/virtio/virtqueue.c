/*
 * Split virtqueues (virtio 1.x, little-endian rings) against a hostile
 * driver. The rules, and the choices the spec leaves open, are in
 * virtqueue.h. Zero-length buffers are refused because no driver needs one
 * and no device should have to handle "a buffer with no bytes"; indirect
 * descriptors only at the head because that is how every driver uses them.
 */
#include "virtio/virtqueue.h"

#include <endian.h>
#include <string.h>

#include "vmm/memory.h"

#define DESC_SIZE sizeof(struct vring_desc)

static uint64_t avail_bytes(uint16_t size)
{
	return 6 + 2 * (uint64_t)size;
}

static uint64_t used_bytes(uint16_t size)
{
	return 6 + 8 * (uint64_t)size;
}

static int virtq_break(struct virtq *q, const char *why)
{
	q->broken = true;
	q->why = why;
	return -1;
}

/* The driver may rewrite the ring at any time: load each index exactly once. */
static uint16_t load16(const uint16_t *p, int order)
{
	return le16toh(__atomic_load_n(p, order));
}

static void store16(uint16_t *p, uint16_t v, int order)
{
	__atomic_store_n(p, htole16(v), order);
}

/*
 * One copy of a descriptor: the barrier keeps the compiler from reading
 * fields from guest memory again later (a double fetch), since the guest
 * may change them between two loads.
 */
static void desc_copy(struct vring_desc *d, const void *src)
{
	memcpy(d, src, sizeof(*d));
	__asm__ __volatile__("" ::: "memory");
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
}

int virtq_enable(struct virtq *q, const struct guest_mem *mem, uint16_t size,
		 uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa, uint64_t features)
{
	memset(q, 0, sizeof(*q));
	q->mem = mem;

	/* (A power of two in a uint16_t is at most VIRTQ_MAX_SIZE; the test says what is meant.) */
	if (size == 0 || (size & (size - 1)) || size > VIRTQ_MAX_SIZE) {
		q->why = "queue size is not a power of two up to 32768";
		return -1;
	}
	if ((desc_gpa & 15) || (avail_gpa & 1) || (used_gpa & 3)) {
		q->why = "ring area misaligned";
		return -1;
	}
	/* Each area whole in one RAM region. */
	struct vring_desc *desc = guest_mem_ptr(mem, desc_gpa, DESC_SIZE * size);
	struct vring_avail *avail = guest_mem_ptr(mem, avail_gpa, avail_bytes(size));
	struct vring_used *used = guest_mem_ptr(mem, used_gpa, used_bytes(size));
	if (!desc || !avail || !used) {
		q->why = "ring area outside guest RAM";
		return -1;
	}
	/* Atomic index accesses need host alignment too (a region at an odd host offset). */
	if (((uintptr_t)desc & 15) || ((uintptr_t)avail & 1) || ((uintptr_t)used & 3)) {
		q->why = "ring area misaligned in the host mapping";
		return -1;
	}
	q->desc = desc;
	q->avail = avail;
	q->used = used;
	q->size = size;
	q->event_idx = (features >> VIRTIO_RING_F_EVENT_IDX) & 1;
	q->indirect = (features >> VIRTIO_RING_F_INDIRECT_DESC) & 1;
	q->enabled = true;
	return 0;
}

void virtq_disable(struct virtq *q)
{
	const struct guest_mem *mem = q->mem;

	memset(q, 0, sizeof(*q));
	q->mem = mem;
}

/* Add one buffer of a chain to c, checking it and the direction order. */
static int chain_add(struct virtq *q, struct virtq_chain *c, const struct vring_desc *d)
{
	bool writable = d->flags & VRING_DESC_F_WRITE;

	if (d->len == 0)
		return virtq_break(q, "zero-length buffer");
	if (!writable && c->nr_in)
		return virtq_break(q, "device-readable buffer after a device-writable one");
	if (c->nr_out + c->nr_in >= c->cap)
		return virtq_break(q, "chain has more buffers than the device handles");
	void *host = guest_mem_ptr(q->mem, d->addr, d->len);
	if (!host)
		return virtq_break(q, "buffer outside guest RAM");

	c->bufs[c->nr_out + c->nr_in] = (struct virtq_buf){
		.host = host, .len = d->len, .writable = writable };
	if (writable) {
		c->nr_in++;
		c->in_len += d->len;
	} else {
		c->nr_out++;
		c->out_len += d->len;
	}
	return 0;
}

/* Walk the indirect table that d (the chain's only ring descriptor) points to. */
static int chain_indirect(struct virtq *q, struct virtq_chain *c, const struct vring_desc *d)
{
	if (!q->indirect)
		return virtq_break(q, "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC");
	if (d->flags & VRING_DESC_F_NEXT)
		return virtq_break(q, "indirect descriptor with VRING_DESC_F_NEXT");
	if (d->len == 0 || d->len % DESC_SIZE)
		return virtq_break(q, "indirect table length not a non-zero multiple of 16");
	const uint8_t *table = guest_mem_ptr(q->mem, d->addr, d->len);
	if (!table)
		return virtq_break(q, "indirect table outside guest RAM");

	uint32_t entries = d->len / DESC_SIZE;
	uint32_t i = 0;
	for (unsigned int n = 0;; n++) {
		struct vring_desc e;

		if (n >= q->size)
			return virtq_break(q, "descriptor chain longer than the queue");
		desc_copy(&e, table + (size_t)i * DESC_SIZE);
		if (e.flags & VRING_DESC_F_INDIRECT)
			return virtq_break(q, "nested indirect descriptor");
		if (chain_add(q, c, &e) < 0)
			return -1;
		if (!(e.flags & VRING_DESC_F_NEXT))
			return 0;
		if (e.next >= entries)
			return virtq_break(q, "indirect descriptor next out of range");
		i = e.next;
	}
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	if (q->broken)
		return -1;
	if (!q->enabled)
		return 0;

	/* Acquire: the ring entry and descriptors are read after the index. */
	uint16_t avail_idx = load16(&q->avail->idx, __ATOMIC_ACQUIRE);
	uint16_t ahead = (uint16_t)(avail_idx - q->last_avail);
	if (ahead == 0)
		return 0;
	if (ahead > q->size)
		return virtq_break(q, "avail index ahead by more than the queue size");

	uint16_t head = load16(&q->avail->ring[q->last_avail & (q->size - 1)], __ATOMIC_RELAXED);
	if (head >= q->size)
		return virtq_break(q, "avail ring head out of range");

	c->head = head;
	c->nr_out = c->nr_in = 0;
	c->out_len = c->in_len = 0;

	uint16_t i = head;
	for (unsigned int n = 0;; n++) {
		struct vring_desc d;

		if (n >= q->size)
			return virtq_break(q, "descriptor chain longer than the queue");
		desc_copy(&d, &q->desc[i]);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (n != 0)
				return virtq_break(q, "indirect descriptor inside a chain");
			if (chain_indirect(q, c, &d) < 0)
				return -1;
			break;
		}
		if (chain_add(q, c, &d) < 0)
			return -1;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= q->size)
			return virtq_break(q, "descriptor next out of range");
		i = d.next;
	}
	q->last_avail++;
	return 1;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	if (!q->enabled || q->broken)
		return;

	struct vring_used_elem *e = &q->used->ring[q->used_idx & (q->size - 1)];
	__atomic_store_n(&e->id, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, htole32(written), __ATOMIC_RELAXED);
	q->used_idx++;
	/* Release: the buffers and the used entry are visible before the index. */
	store16(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
	/* 65536 pushes without an interrupt: signalled_used no longer means anything. */
	if (q->used_idx == q->signalled_used)
		q->signalled_used_valid = false;
}

void virtq_fill(struct virtq *q, unsigned int i, uint16_t head, uint32_t written)
{
	if (!q->enabled || q->broken)
		return;

	struct vring_used_elem *e = &q->used->ring[(uint16_t)(q->used_idx + i) & (q->size - 1)];
	__atomic_store_n(&e->id, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, htole32(written), __ATOMIC_RELAXED);
}

void virtq_flush(struct virtq *q, unsigned int n)
{
	if (!q->enabled || q->broken || n == 0)
		return;

	uint16_t old = q->used_idx;
	q->used_idx = (uint16_t)(old + n);
	store16(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
	/* Passed signalled_used without an interrupt: it no longer means anything. */
	if ((uint16_t)(q->signalled_used - old - 1) < n)
		q->signalled_used_valid = false;
}

bool virtq_should_notify(struct virtq *q)
{
	if (!q->enabled || q->broken)
		return false;

	/* The used->idx store before the flags / used_event load (store-load order). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	if (!q->event_idx)
		return !(load16(&q->avail->flags, __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT);

	uint16_t old = q->signalled_used;
	bool valid = q->signalled_used_valid;
	q->signalled_used = q->used_idx;
	q->signalled_used_valid = true;
	if (!valid)
		return true;
	uint16_t event = load16(&q->avail->ring[q->size], __ATOMIC_RELAXED);
	return vring_need_event(event, q->used_idx, old);
}

void virtq_set_notify(struct virtq *q, bool on)
{
	if (!q->enabled || q->broken)
		return;

	if (q->event_idx) {
		/*
		 * The driver kicks when its avail->idx passes avail_event. On: the next
		 * buffer kicks. Off: one behind what we have taken, which the driver has
		 * passed already, so no kick until we turn it on again.
		 */
		store16((uint16_t *)&q->used->ring[q->size],
			(uint16_t)(on ? q->last_avail : q->last_avail - 1), __ATOMIC_RELAXED);
	} else {
		store16(&q->used->flags, on ? 0 : VRING_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
	}
	/* The store before the caller's next look at avail->idx (virtq_pending()). */
	if (on)
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool virtq_pending(struct virtq *q)
{
	if (!q->enabled || q->broken)
		return false;
	return load16(&q->avail->idx, __ATOMIC_ACQUIRE) != q->last_avail;
}
