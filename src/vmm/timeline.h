/*
 * The boot timeline: when each phase of a boot happened, seen from the host
 * alone (docs/MACHINE.md "Boot timeline"). Times are CLOCK_MONOTONIC
 * microseconds since the process started (a constructor reads the clock
 * before main()).
 *
 * One timeline per process, unlike the rest of the VMM: it is measured from
 * the process's start, and bootvm is one process per VM. A second VM in the
 * same process (unit tests) adds nothing to the first occurrences.
 *
 * Marks are cheap after the first time: one atomic load, then return, so
 * hot paths (console output, queue kicks, received frames) may call them on
 * every pass. Any thread; the events are kept in the order they happened.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vmm/bus.h"

struct json_object;

enum timeline_event {
	TIMELINE_PROCESS_START,
	TIMELINE_VM_CREATED,		/* KVM_CREATE_VM returned */
	TIMELINE_MEMORY_READY,		/* guest RAM mapped and handed to KVM */
	TIMELINE_KERNEL_DECOMPRESSED,	/* a bzImage payload decompressed on the host */
	TIMELINE_KERNEL_LOADED,		/* kernel, initrd and command line in guest RAM */
	TIMELINE_FIRST_KVM_RUN,
	TIMELINE_FIRST_CONSOLE_BYTE,
	TIMELINE_RUN_INIT,		/* "Run /init as init process" on the console */
	TIMELINE_FIRST_PCI_CONFIG,	/* the guest's first PCI configuration access */
	TIMELINE_QUEUE_NOTIFY,		/* a virtio device's first queue notification (each) */
	TIMELINE_DHCP_LEASE,		/* a DHCPACK delivered to the guest */
	TIMELINE_FORWARDED_CONNECTION,	/* a TCP SYN delivered to the guest (hostfwd) */
	TIMELINE_GUEST_MARKER,		/* a write to the debug port (repeatable, bounded) */
	TIMELINE_VM_STOP,		/* the first stop request: how the VM ended */
	TIMELINE_NR_EVENTS
};

/* At most this many guest markers are recorded; later ones are only counted. */
#define TIMELINE_MAX_MARKERS 64
/* At most this many events in all (guest markers included). */
#define TIMELINE_MAX_EVENTS 160
/* Longest detail kept, NUL included. */
#define TIMELINE_DETAIL_MAX 112

/* A first-occurrence flag for an event that happens once per object (a device). */
struct timeline_once {
	atomic_bool done;
};

/* The first time ev happens: record it. Later calls cost an atomic load. */
void timeline_mark_once(enum timeline_event ev);
/* The same, with a detail ("virtio-blk0", "10.0.2.15"); fmt is formatted only the first time. */
void timeline_mark_oncef(enum timeline_event ev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Once per *once (one device's first notification): ev may appear once per token. */
void timeline_mark_token(struct timeline_once *once, enum timeline_event ev, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Whether ev has been recorded (for a token event: by any token). */
bool timeline_seen(enum timeline_event ev);

/* A guest wrote value (size bytes) to the debug port: one marker, or a drop when full. */
void timeline_guest_marker(uint64_t value, unsigned int size);
/*
 * The debug port (PORT_DEBUG, TIMELINE_PORT_LEN ports so that a 2- or 4-byte
 * write fits): each write to its first port is a guest marker, writes to the
 * others are ignored, reads see all ones.
 */
#define TIMELINE_PORT_LEN 4
extern const struct bus_ops timeline_port_ops;

/*
 * Guest console output: the first byte, and the kernel's "Run /init as init
 * process" line (any init path). The caller owns one scanner per console
 * and serializes calls on it (the console's observer runs under its lock).
 */
struct timeline_scan {
	size_t match;			/* bytes of "Run /" matched */
	size_t len;			/* bytes of the line collected after it */
	char line[96];
};
void timeline_console(struct timeline_scan *s, const uint8_t *buf, size_t len);

/*
 * A frame the guest received (Ethernet, no virtio header): a DHCPACK
 * (UDP 67 -> 68, message type 5) marks the lease, a TCP SYN without ACK an
 * inbound (forwarded) connection. Bounds-checked; anything else is ignored.
 */
void timeline_net_rx(const uint8_t *frame, size_t len);

/*
 * The timeline as a new json-c object, for reports and the API's metrics:
 * {"clock": "...", "events": [{"event", "t_us", "detail"[, "value"]}, ...],
 *  "guest_markers_dropped": N, "events_dropped": N}. NULL when out of memory.
 */
struct json_object *timeline_json(void);
/* The same as malloc'd text (the caller frees it), NULL when out of memory. */
char *timeline_json_string(void);
/* Write the JSON to fd; logs one line naming `name` and returns -1 on error. */
int timeline_write_json(int fd, const char *name);
/* A table, one event a line: ms since start, + ms since the previous, event, detail. */
void timeline_print_table(FILE *out);

/* The stable name of an event in the JSON ("first_kvm_run"). */
const char *timeline_event_name(enum timeline_event ev);

/* Forget everything and start again now (tests; a fresh process need not). */
void timeline_reset(void);
