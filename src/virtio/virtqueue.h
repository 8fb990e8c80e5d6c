/*
 * The one virtqueue core every virtio device uses (split rings, virtio 1.x).
 *
 * The driver is untrusted: everything read from a ring is hostile input.
 *  - virtq_enable() checks the three ring areas (alignment, inside guest
 *    RAM, each in one region, no overflow) and maps each whole; afterwards
 *    ring accesses are plain loads/stores through those host pointers.
 *  - virtq_pop() copies each descriptor once before using it; head and next
 *    must be < size; a chain longer than the queue (a loop) is refused;
 *    indirect tables must be len % 16 == 0, inside RAM and not nested (and
 *    only with VIRTIO_RING_F_INDIRECT_DESC); every buffer must lie in one RAM
 *    region (overflow-safe); device-readable buffers must all come before
 *    device-writable ones; avail->idx may not run ahead of the last seen
 *    index by more than the queue size.
 *  - Any violation makes virtq_pop() return -1 and the queue broken: the
 *    device then marks itself DEVICE_NEEDS_RESET (virtio_dev_fail()); the
 *    core never aborts and never spins.
 *  - Index loads are acquire, index stores release; buffers are filled
 *    before used->idx is published.
 *  - Choices the spec leaves open: ring areas are the spec's full sizes
 *    (avail 6 + 2*size, used 6 + 8*size, event fields included) whatever
 *    the features; zero-length buffers are refused (as QEMU does); an
 *    indirect descriptor must be the chain's only ring descriptor (with
 *    NEXT it is forbidden by the spec; reached through NEXT it is refused);
 *    "no longer than the queue" counts a chain's buffers, indirect or not,
 *    so devices advertise limits (seg_max) below the queue size.
 *  - Once broken, virtq_pop() returns -1 every time and nothing touches the
 *    rings (push and set_notify do nothing, should_notify and pending say
 *    false) until virtq_disable()/virtq_enable().
 * A queue is used by one thread at a time (its device's I/O thread).
 */
#pragma once

#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;

#define VIRTQ_MAX_SIZE 32768	/* the spec's maximum queue size */

struct virtq {
	const struct guest_mem *mem;
	uint16_t size;			/* power of two, 1..VIRTQ_MAX_SIZE */
	bool enabled;
	bool broken;			/* a violation was seen: serve nothing more */
	bool event_idx;			/* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;			/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	struct vring_desc *desc;	/* host pointers, valid while enabled */
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail;		/* next avail ring index to take */
	uint16_t used_idx;		/* our copy of used->idx */
	uint16_t signalled_used;	/* used_idx at the last interrupt (EVENT_IDX) */
	bool signalled_used_valid;
	const char *why;		/* what made it broken, for the log */
};

/* One device-readable or device-writable buffer of a chain. */
struct virtq_buf {
	void *host;			/* inside guest RAM, len bytes */
	uint32_t len;
	bool writable;			/* VRING_DESC_F_WRITE */
};

/* A chain taken from the avail ring; bufs[0 .. nr_out) readable, then nr_in writable. */
struct virtq_chain {
	uint16_t head;
	unsigned int nr_out, nr_in;
	uint64_t out_len, in_len;	/* total bytes of each kind */
	unsigned int cap;		/* room in bufs */
	struct virtq_buf *bufs;		/* caller-provided, cap entries */
};

/*
 * Check and map the rings (desc 16-byte, avail 2-byte, used 4-byte aligned)
 * with the negotiated features (VIRTIO_RING_F_*). Returns 0, or -1 with
 * q->why set, nothing logged (the transport names the device).
 */
int virtq_enable(struct virtq *q, const struct guest_mem *mem, uint16_t size,
		 uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa, uint64_t features);
/* Forget the rings (reset). */
void virtq_disable(struct virtq *q);

/*
 * Take the next available chain into c. Returns 1 with a chain, 0 if none is
 * available, -1 if the ring or the chain is malformed (q is broken from then
 * on; q->why says what). A chain with more buffers than c->cap is refused
 * the same way only when it is also longer than the queue; otherwise -1 as
 * well, since the device cannot serve it (c->cap >= q->size avoids this).
 */
int virtq_pop(struct virtq *q, struct virtq_chain *c);

/* Return a chain to the driver with written bytes in its writable buffers. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t written);
/*
 * The same for several chains the driver must see together (virtio-net's
 * merged receive buffers): fill used entries 0 .. n-1 past the last pushed
 * (not yet visible), then publish n of them at once.
 */
void virtq_fill(struct virtq *q, unsigned int i, uint16_t head, uint32_t written);
void virtq_flush(struct virtq *q, unsigned int n);

/*
 * After one or more pushes: does the driver want an interrupt?
 * (VRING_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX.)
 */
bool virtq_should_notify(struct virtq *q);

/*
 * Suppress (false) or ask for (true) driver notifications: VRING_USED_F_NO_NOTIFY,
 * or avail_event with EVENT_IDX. After enabling, call virtq_pending() again
 * to close the race with a buffer added meanwhile.
 */
void virtq_set_notify(struct virtq *q, bool on);
/* Chains available and not yet taken (0 when broken or not enabled). */
bool virtq_pending(struct virtq *q);
