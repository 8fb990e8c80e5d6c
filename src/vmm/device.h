/*
 * The board's list of devices. Every device the board creates is added
 * with its ops; the VM resets, stops and destroys them through the list,
 * in reverse order of creation for stop and destroy. pause/resume (and,
 * later, save/restore for snapshots) are optional: NULL means "not
 * supported", and the list reports that instead of pretending.
 */
#pragma once

#include <stdbool.h>

#include "vmm/exit_status.h"

/*
 * How a device asks the VM to stop (power off, reset, panic): injected by
 * the board, so no device needs the VM itself. Safe from any thread.
 */
struct stop_hook {
	void (*request)(void *opaque, enum vm_stop_reason reason, const char *why);
	void *opaque;
};

static inline void stop_hook_request(const struct stop_hook *h, enum vm_stop_reason reason,
				     const char *why)
{
	if (h->request)
		h->request(h->opaque, reason, why);
}

struct device_ops {
	const char *kind;		/* "serial", "virtio-blk", ... */
	void (*reset)(void *dev);	/* back to power-on state */
	void (*stop)(void *dev);	/* quiesce: no more guest accesses, no more threads */
	void (*destroy)(void *dev);	/* free; only after stop */
	int (*pause)(void *dev);	/* optional */
	int (*resume)(void *dev);	/* optional */
};

struct device_entry {
	const struct device_ops *ops;
	void *dev;
	char name[32];			/* instance name, e.g. "virtio-blk0" */
	bool stopped;
};

struct device_list {
	struct device_entry *entries;
	unsigned int nr, cap;
};

void device_list_init(struct device_list *l);
/* Logs and returns -1 when out of memory (then the caller destroys dev itself). */
int device_list_add(struct device_list *l, const struct device_ops *ops, void *dev,
		    const char *name);
void device_list_reset(struct device_list *l);
/* Pause every device; on a failure resumes those paused and returns -1 (logged). */
int device_list_pause(struct device_list *l);
void device_list_resume(struct device_list *l);
/* Stop each device once, newest first. */
void device_list_stop(struct device_list *l);
/* Stop (if not yet) and destroy every device, newest first; empties the list. */
void device_list_destroy(struct device_list *l);
