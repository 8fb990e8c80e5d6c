#include "vmm/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

void device_list_init(struct device_list *l)
{
	memset(l, 0, sizeof(*l));
}

int device_list_add(struct device_list *l, const struct device_ops *ops, void *dev,
		    const char *name)
{
	if (l->nr == l->cap) {
		unsigned int cap = l->cap ? l->cap * 2 : 16;
		struct device_entry *e = realloc(l->entries, cap * sizeof(*e));

		if (!e) {
			log_error("%s: out of memory", name);
			return -1;
		}
		l->entries = e;
		l->cap = cap;
	}
	struct device_entry *e = &l->entries[l->nr++];
	e->ops = ops;
	e->dev = dev;
	e->stopped = false;
	snprintf(e->name, sizeof(e->name), "%s", name);
	return 0;
}

void device_list_reset(struct device_list *l)
{
	for (unsigned int i = 0; i < l->nr; i++)
		if (l->entries[i].ops->reset)
			l->entries[i].ops->reset(l->entries[i].dev);
}

void device_list_resume(struct device_list *l)
{
	for (unsigned int i = 0; i < l->nr; i++)
		if (l->entries[i].ops->resume)
			l->entries[i].ops->resume(l->entries[i].dev);
}

int device_list_pause(struct device_list *l)
{
	for (unsigned int i = 0; i < l->nr; i++) {
		const struct device_entry *e = &l->entries[i];

		if (!e->ops->pause || e->ops->pause(e->dev) < 0) {
			if (!e->ops->pause)
				log_error("%s: cannot be paused", e->name);
			while (i-- > 0)
				if (l->entries[i].ops->resume)
					l->entries[i].ops->resume(l->entries[i].dev);
			return -1;
		}
	}
	return 0;
}

void device_list_stop(struct device_list *l)
{
	for (unsigned int i = l->nr; i-- > 0;) {
		struct device_entry *e = &l->entries[i];

		if (!e->stopped && e->ops->stop)
			e->ops->stop(e->dev);
		e->stopped = true;
	}
}

void device_list_destroy(struct device_list *l)
{
	device_list_stop(l);
	for (unsigned int i = l->nr; i-- > 0;)
		if (l->entries[i].ops->destroy)
			l->entries[i].ops->destroy(l->entries[i].dev);
	free(l->entries);
	memset(l, 0, sizeof(*l));
}
