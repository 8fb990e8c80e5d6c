#include "vmm/irq.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/log.h"

#define IRQ_TABLE_INITIAL 64

int irq_router_init(struct irq_router *r, int vm_fd, unsigned int first_msi_gsi)
{
	memset(r, 0, sizeof(*r));
	r->vm_fd = vm_fd;
	r->first_msi_gsi = first_msi_gsi;
	r->cap = IRQ_TABLE_INITIAL;
	r->table = calloc(1, sizeof(*r->table) + r->cap * sizeof(r->table->entries[0]));
	if (!r->table) {
		log_error("out of memory");
		return -1;
	}
	pthread_mutex_init(&r->lock, NULL);
	return 0;
}

void irq_router_destroy(struct irq_router *r)
{
	if (!r->table)
		return;
	free(r->table);
	r->table = NULL;
	pthread_mutex_destroy(&r->lock);
}

/* A new zeroed entry at the end of the table; the caller holds the lock. */
static struct kvm_irq_routing_entry *irq_append_locked(struct irq_router *r)
{
	if (r->table->nr == r->cap) {
		unsigned int cap = r->cap * 2;
		struct kvm_irq_routing *t = realloc(r->table, sizeof(*t) + cap * sizeof(t->entries[0]));

		if (!t) {
			log_error("out of memory");
			return NULL;
		}
		r->table = t;
		r->cap = cap;
	}
	struct kvm_irq_routing_entry *e = &r->table->entries[r->table->nr++];
	memset(e, 0, sizeof(*e));
	r->dirty = true;
	return e;
}

int irq_add_pin(struct irq_router *r, unsigned int gsi, unsigned int chip, unsigned int pin)
{
	struct kvm_irq_routing_entry *e;

	pthread_mutex_lock(&r->lock);
	e = irq_append_locked(r);
	if (e) {
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = chip;
		e->u.irqchip.pin = pin;
	}
	pthread_mutex_unlock(&r->lock);
	return e ? 0 : -1;
}

static int irq_commit_locked(struct irq_router *r)
{
	if (!r->dirty)
		return 0;
	if (ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, r->table) < 0) {
		log_error("KVM_SET_GSI_ROUTING (%u routes): %s", r->table->nr, strerror(errno));
		return -1;
	}
	r->dirty = false;
	return 0;
}

int irq_commit(struct irq_router *r)
{
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = irq_commit_locked(r);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_line_set(struct irq_router *r, unsigned int gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (ioctl(r->vm_fd, KVM_IRQ_LINE, &irq) < 0) {
		/* Devices raise lines on guest accesses: say it once, not per access. */
		static bool warned;

		if (!__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED))
			log_warn("KVM_IRQ_LINE %u: %s (further failures not reported)",
				 gsi, strerror(errno));
		return -1;
	}
	return 0;
}

static struct kvm_irq_routing_entry *irq_find_locked(struct irq_router *r, unsigned int gsi)
{
	for (unsigned int i = 0; i < r->table->nr; i++)
		if (r->table->entries[i].gsi == gsi)
			return &r->table->entries[i];
	return NULL;
}

int irq_msi_init(struct irq_router *r, struct irq_msi *v)
{
	struct kvm_irq_routing_entry *e;
	int gsi = -1;

	memset(v, 0, sizeof(*v));
	v->router = r;
	v->gsi = -1;
	v->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->efd < 0) {
		log_error("eventfd for an MSI vector: %s", strerror(errno));
		return -1;
	}
	pthread_mutex_lock(&r->lock);
	for (unsigned int g = r->first_msi_gsi; g < IRQ_MAX_GSI; g++) {
		if (!(r->used[g / 64] & (1ULL << (g % 64)))) {
			gsi = (int)g;
			break;
		}
	}
	e = gsi >= 0 ? irq_append_locked(r) : NULL;
	if (e) {
		r->used[gsi / 64] |= 1ULL << (gsi % 64);
		e->gsi = (uint32_t)gsi;
		e->type = KVM_IRQ_ROUTING_MSI;
		v->gsi = gsi;
	}
	pthread_mutex_unlock(&r->lock);
	if (gsi < 0)
		log_error("out of interrupt routes: all %u MSI GSIs are in use",
			  IRQ_MAX_GSI - r->first_msi_gsi);
	if (!e) {
		close(v->efd);
		v->efd = -1;
		return -1;
	}
	return 0;
}

void irq_msi_fini(struct irq_msi *v)
{
	struct irq_router *r = v->router;

	if (!r)
		return;
	if (v->assigned)
		irq_msi_assign(v, false);
	if (v->gsi >= 0) {
		pthread_mutex_lock(&r->lock);
		struct kvm_irq_routing_entry *e = irq_find_locked(r, (unsigned int)v->gsi);
		if (e) {
			*e = r->table->entries[--r->table->nr];
			r->dirty = true;
		}
		r->used[v->gsi / 64] &= ~(1ULL << (v->gsi % 64));
		pthread_mutex_unlock(&r->lock);
	}
	if (v->efd >= 0)
		close(v->efd);
	v->efd = -1;
	v->gsi = -1;
	v->router = NULL;
}

int irq_msi_set(struct irq_msi *v, uint64_t addr, uint32_t data)
{
	struct irq_router *r = v->router;
	struct kvm_irq_routing_entry *e;

	if (!r || v->gsi < 0)
		return -1;
	pthread_mutex_lock(&r->lock);
	e = irq_find_locked(r, (unsigned int)v->gsi);
	if (e && (e->u.msi.address_lo != (uint32_t)addr ||
		  e->u.msi.address_hi != (uint32_t)(addr >> 32) || e->u.msi.data != data)) {
		e->u.msi.address_lo = (uint32_t)addr;
		e->u.msi.address_hi = (uint32_t)(addr >> 32);
		e->u.msi.data = data;
		r->dirty = true;
	}
	pthread_mutex_unlock(&r->lock);
	v->addr = addr;
	v->data = data;
	return e ? 0 : -1;
}

int irq_msi_assign(struct irq_msi *v, bool on)
{
	struct kvm_irqfd irqfd = {
		.fd = (uint32_t)v->efd,
		.gsi = (uint32_t)v->gsi,
		.flags = on ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (!v->router || v->gsi < 0 || v->assigned == on)
		return v->assigned == on ? 0 : -1;
	if (on && irq_commit(v->router) < 0)
		return -1;
	if (ioctl(v->router->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		log_error("KVM_IRQFD %s GSI %d: %s", on ? "assign" : "deassign", v->gsi,
			  strerror(errno));
		return -1;
	}
	v->assigned = on;
	return 0;
}

void irq_msi_fire(struct irq_msi *v)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is already non-zero, an interrupt is on its way. */
	if (write(v->efd, &one, sizeof(one)) < 0) {
	}
}

int irq_ioeventfd(int vm_fd, uint64_t addr, unsigned int len, bool pio, int efd, bool assign)
{
	struct kvm_ioeventfd io = {
		.addr = addr,
		.len = len,
		.fd = efd,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (ioctl(vm_fd, KVM_IOEVENTFD, &io) < 0) {
		log_error("KVM_IOEVENTFD %s at %s 0x%llx: %s", assign ? "assign" : "deassign",
			  pio ? "port" : "address", (unsigned long long)addr, strerror(errno));
		return -1;
	}
	return 0;
}
