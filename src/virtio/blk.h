/*
 * virtio-blk (virtio 1.x, device ID 2) on a raw image (backends/disk.h).
 *
 * Offered: SEG_MAX, SIZE_MAX, BLK_SIZE (512), FLUSH, MQ, RO for a read-only
 * disk, WRITE_ZEROES on a writable disk, DISCARD with discard=on (then
 * write-zeroes may unmap too). The transport adds VERSION_1 and the ring
 * features.
 *
 * Requests are framed by byte offset, not by buffer: the header is the
 * first 16 device-readable bytes, the status the last device-writable byte,
 * data what lies between. How a bad request ends:
 *  - the ring or a chain is malformed (virtq_pop() refuses it), a chain has
 *    no device-writable byte (nowhere to put a status), or its header is
 *    shorter than 16 bytes: the driver is broken, not the request, so the
 *    device fails (virtio_dev_fail(): DEVICE_NEEDS_RESET) and serves
 *    nothing more until reset;
 *  - a request we can answer but not serve: VIRTIO_BLK_S_IOERR for a sector
 *    range outside the disk (overflow-safe), data not a multiple of 512
 *    bytes, more than seg_max data segments or one larger than size_max, a
 *    write (OUT) to a read-only disk, a discard/write-zeroes range larger
 *    than advertised or a malformed range descriptor;
 *    VIRTIO_BLK_S_UNSUPP for an unknown type, DISCARD / WRITE_ZEROES not
 *    negotiated, more than one range, flags the spec rules out (any flag on
 *    DISCARD, anything but UNMAP on WRITE_ZEROES);
 *  - a host error (EIO, ENOSPC, a short transfer): VIRTIO_BLK_S_IOERR,
 *    logged once per device, and the device goes on serving.
 * The used length is the data bytes written plus the status byte (IN and
 * GET_ID on success), else 1.
 *
 * Threads: one io_loop per device ("io-<name>") serves all its queues: each
 * queue's kick fd and its disk queue's completion fd. Requests go to the
 * disk asynchronously, up to the queue size in flight per queue; guest
 * notifications are suppressed while a queue is drained. activate and reset
 * are io_loop_call()s: they wait for the device's thread (so the transport
 * must not hold a lock that the thread takes in virtio_notify_queue() or
 * virtio_dev_fail() while calling them). Reset waits for requests in
 * flight (their completions are dropped) and forgets the queues.
 *
 * Fault injection for end-to-end tests: BOOTVM_DISK_FAULTS, when set, is
 * parsed with disk_inject_faults_parse() ("read:3:EIO,write:1:ENOSPC,
 * flush:1:short", counted from the disk's opening) for every virtio-blk
 * device created; a malformed value makes creation fail.
 */
#pragma once

#include "backends/disk.h"
#include "vmm/device.h"

struct guest_mem;
struct virtio_blk;
struct virtio_dev;

#define VIRTIO_BLK_QUEUE_SIZE	256		/* per queue, offered to the driver */
#define VIRTIO_BLK_SEG_MAX	126		/* data segments per request */
#define VIRTIO_BLK_SIZE_MAX	(1u << 20)	/* bytes per data segment */
#define VIRTIO_BLK_MAX_DISCARD_SECTORS	(1u << 21)	/* 1 GiB per DISCARD / WRITE_ZEROES */
#define VIRTIO_BLK_DISCARD_ALIGNMENT	8		/* sectors (4 KiB) */
#define VIRTIO_BLK_SERIAL_LEN	20		/* GET_ID: VIRTIO_BLK_ID_BYTES */

/*
 * Open the disk (opts; locked as disk_open() does) and make a device with
 * nr_queues request queues (1..VIRTIO_MAX_QUEUES; the board gives one per
 * vCPU) and a serial of at most 20 bytes (NULL: none). name ("virtio-blk0")
 * names the device in messages and its thread "io-<name>". The vdev is
 * filled for the transport (ID, ops, config size, queues' max_size,
 * kick_fd -1); the transport owns vdev->lock (initialises and destroys
 * it). Returns NULL with one line logged.
 */
struct virtio_blk *virtio_blk_create(const struct guest_mem *mem, const struct disk_opts *opts,
				     const char *serial, unsigned int nr_queues, const char *name);
struct virtio_dev *virtio_blk_vdev(struct virtio_blk *b);
struct disk *virtio_blk_disk(struct virtio_blk *b);

/* reset: virtio reset (as the driver's); stop: reset and end the thread; destroy: free. */
extern const struct device_ops virtio_blk_device_ops;
