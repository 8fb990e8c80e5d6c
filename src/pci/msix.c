#include "pci/msix.h"

#include <linux/pci_regs.h>
#include <stdlib.h>
#include <string.h>

#include "pci/pci.h"
#include "util/log.h"

static bool msix_live_locked(const struct msix *m, const struct msix_vector *v)
{
	return m->enabled && !m->fmask && !(v->ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static bool msix_pending(const struct msix *m, unsigned int i)
{
	return (m->pba[i / 64] >> (i % 64)) & 1;
}

/*
 * Bring vectors [first, first + n) in line with the mask bits: update the
 * routes of the live ones whose address/data changed (one commit for all
 * of them, made by the first assign, or here when none needs assigning),
 * bind the irqfds of the live, unbind the others, then fire what was
 * pending on the ones that went live.
 */
static void msix_sync_locked(struct msix *m, unsigned int first, unsigned int n)
{
	struct irq_router *r = pci_host_irq(pci_dev_host(m->dev));
	bool routes_changed = false;

	for (unsigned int i = first; i < first + n; i++) {
		struct msix_vector *v = &m->vec[i];

		if (!msix_live_locked(m, v) || !v->stale)
			continue;
		irq_msi_set(&v->msi, (uint64_t)v->addr_hi << 32 | v->addr_lo, v->data);
		v->stale = false;
		routes_changed = true;
	}
	if (routes_changed)
		irq_commit(r);
	for (unsigned int i = first; i < first + n; i++) {
		struct msix_vector *v = &m->vec[i];
		bool live = msix_live_locked(m, v);

		if (live != v->msi.assigned)
			irq_msi_assign(&v->msi, live);
		if (live && msix_pending(m, i)) {
			m->pba[i / 64] &= ~(1ULL << (i % 64));
			irq_msi_fire(&v->msi);
		}
	}
}

/* Message Control was written: enable and function mask. */
static void msix_cap_write(void *opaque, uint8_t *cap, unsigned int off, unsigned int size,
			   uint32_t value)
{
	struct msix *m = opaque;
	uint16_t ctrl = (uint16_t)(cap[PCI_MSIX_FLAGS] | cap[PCI_MSIX_FLAGS + 1] << 8);

	(void)off;
	(void)size;
	(void)value;
	pthread_mutex_lock(&m->lock);
	if (m->enabled != !!(ctrl & PCI_MSIX_FLAGS_ENABLE) ||
	    m->fmask != !!(ctrl & PCI_MSIX_FLAGS_MASKALL)) {
		m->enabled = ctrl & PCI_MSIX_FLAGS_ENABLE;
		m->fmask = ctrl & PCI_MSIX_FLAGS_MASKALL;
		msix_sync_locked(m, 0, m->nr);
	}
	pthread_mutex_unlock(&m->lock);
}

static const struct pci_cap_ops msix_cap_ops = {
	.write = msix_cap_write,
};

int msix_init(struct msix *m, struct pci_dev *d, unsigned int nr, unsigned int table_bar,
	      uint32_t table_off, unsigned int pba_bar, uint32_t pba_off)
{
	struct irq_router *r = pci_host_irq(pci_dev_host(d));
	uint8_t cap[12] = { PCI_CAP_ID_MSIX }, wmask[12] = { 0 };

	memset(m, 0, sizeof(*m));
	if (!nr || nr > MSIX_MAX_VECTORS || table_bar >= PCI_NUM_BARS || pba_bar >= PCI_NUM_BARS ||
	    (table_off & 7) || (pba_off & 7) || !r) {
		log_error("MSI-X: bad layout (%u vectors, table BAR %u + 0x%x, PBA BAR %u + 0x%x)",
			  nr, table_bar, table_off, pba_bar, pba_off);
		return -1;
	}
	pthread_mutex_init(&m->lock, NULL);
	m->dev = d;
	m->vec = calloc(nr, sizeof(*m->vec));
	m->pba = calloc((nr + 63) / 64, sizeof(*m->pba));
	if (!m->vec || !m->pba) {
		log_error("MSI-X: out of memory for %u vectors", nr);
		goto err_free;
	}
	for (unsigned int i = 0; i < nr; i++) {
		m->vec[i].msi.gsi = -1;
		m->vec[i].msi.efd = -1;
	}
	m->nr = nr;
	for (unsigned int i = 0; i < nr; i++) {
		m->vec[i].ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT;
		m->vec[i].stale = true;		/* no route set yet */
		if (irq_msi_init(r, &m->vec[i].msi) < 0)
			goto err_free;
	}

	cap[PCI_MSIX_FLAGS] = (uint8_t)(nr - 1);
	cap[PCI_MSIX_FLAGS + 1] = (uint8_t)((nr - 1) >> 8);
	wmask[PCI_MSIX_FLAGS + 1] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
	for (int i = 0; i < 4; i++) {
		cap[PCI_MSIX_TABLE + i] = (uint8_t)((table_off | table_bar) >> (8 * i));
		cap[PCI_MSIX_PBA + i] = (uint8_t)((pba_off | pba_bar) >> (8 * i));
	}
	m->cap = pci_dev_add_cap(d, cap, sizeof(cap), wmask, &msix_cap_ops, m);
	if (m->cap < 0)
		goto err_free;
	return 0;

err_free:
	msix_fini(m);
	return -1;
}

void msix_fini(struct msix *m)
{
	if (!m->dev)
		return;		/* zeroed, or finished already */
	for (unsigned int i = 0; m->vec && i < m->nr; i++)
		irq_msi_fini(&m->vec[i].msi);
	pthread_mutex_destroy(&m->lock);
	free(m->vec);
	free(m->pba);
	m->vec = NULL;
	m->pba = NULL;
	m->nr = 0;
	m->dev = NULL;
}

void msix_reset(struct msix *m)
{
	pthread_mutex_lock(&m->lock);
	m->enabled = false;
	m->fmask = false;
	for (unsigned int i = 0; i < m->nr; i++) {
		struct msix_vector *v = &m->vec[i];

		v->addr_lo = v->addr_hi = v->data = 0;
		v->ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT;
		v->stale = true;
	}
	memset(m->pba, 0, MSIX_PBA_SIZE(m->nr));
	msix_sync_locked(m, 0, m->nr);	/* unbinds every irqfd */
	pthread_mutex_unlock(&m->lock);
}

static bool msix_access_ok(uint64_t off, unsigned int size, uint64_t len)
{
	return (size == 4 || size == 8) && off % size == 0 && off < len && len - off >= size;
}

static uint32_t msix_entry_dword(const struct msix_vector *v, unsigned int field)
{
	switch (field) {
	case PCI_MSIX_ENTRY_LOWER_ADDR:
		return v->addr_lo;
	case PCI_MSIX_ENTRY_UPPER_ADDR:
		return v->addr_hi;
	case PCI_MSIX_ENTRY_DATA:
		return v->data;
	default:
		return v->ctrl;
	}
}

uint64_t msix_table_read(struct msix *m, uint64_t off, unsigned int size)
{
	uint64_t v;

	if (!msix_access_ok(off, size, MSIX_TABLE_SIZE(m->nr)))
		return size == 4 ? 0xffffffffULL : ~0ULL;
	pthread_mutex_lock(&m->lock);
	const struct msix_vector *e = &m->vec[off / PCI_MSIX_ENTRY_SIZE];
	unsigned int field = (unsigned int)(off % PCI_MSIX_ENTRY_SIZE);

	v = msix_entry_dword(e, field);
	if (size == 8)
		v |= (uint64_t)msix_entry_dword(e, field + 4) << 32;
	pthread_mutex_unlock(&m->lock);
	return v;
}

void msix_table_write(struct msix *m, uint64_t off, unsigned int size, uint64_t value)
{
	unsigned int i = (unsigned int)(off / PCI_MSIX_ENTRY_SIZE), field;
	struct msix_vector *v;
	bool was_masked;

	if (!msix_access_ok(off, size, MSIX_TABLE_SIZE(m->nr)))
		return;
	pthread_mutex_lock(&m->lock);
	v = &m->vec[i];
	was_masked = v->ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT;
	field = (unsigned int)(off % PCI_MSIX_ENTRY_SIZE);
	for (unsigned int n = 0; n < size / 4; n++, field += 4) {
		uint32_t d = (uint32_t)(value >> (32 * n));

		switch (field) {
		case PCI_MSIX_ENTRY_LOWER_ADDR:
			v->stale |= v->addr_lo != (d & ~3U);
			v->addr_lo = d & ~3U;	/* dword aligned */
			break;
		case PCI_MSIX_ENTRY_UPPER_ADDR:
			v->stale |= v->addr_hi != d;
			v->addr_hi = d;
			break;
		case PCI_MSIX_ENTRY_DATA:
			v->stale |= v->data != d;
			v->data = d;
			break;
		default:
			v->ctrl = d & PCI_MSIX_ENTRY_CTRL_MASKBIT;	/* the rest is reserved */
			break;
		}
	}
	/*
	 * Unmasking, or a guest that rewrites a live vector (the spec leaves that
	 * undefined; we follow it at once), takes effect now; a masked vector waits.
	 */
	if (was_masked != !!(v->ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT) ||
	    (v->stale && msix_live_locked(m, v)))
		msix_sync_locked(m, i, 1);
	pthread_mutex_unlock(&m->lock);
}

uint64_t msix_pba_read(struct msix *m, uint64_t off, unsigned int size)
{
	uint64_t v;

	if (!msix_access_ok(off, size, MSIX_PBA_SIZE(m->nr)))
		return size == 4 ? 0xffffffffULL : ~0ULL;
	pthread_mutex_lock(&m->lock);
	v = m->pba[off / 8];
	pthread_mutex_unlock(&m->lock);
	if (size == 4)
		v = (uint32_t)(v >> (off % 8 * 8));
	return v;
}

bool msix_enabled(struct msix *m)
{
	bool on;

	pthread_mutex_lock(&m->lock);
	on = m->enabled;
	pthread_mutex_unlock(&m->lock);
	return on;
}

bool msix_notify(struct msix *m, unsigned int vector)
{
	bool ok;

	pthread_mutex_lock(&m->lock);
	ok = m->enabled && vector < m->nr;
	if (ok) {
		struct msix_vector *v = &m->vec[vector];

		if (msix_live_locked(m, v) && v->msi.assigned)
			irq_msi_fire(&v->msi);
		else
			m->pba[vector / 64] |= 1ULL << (vector % 64);
	}
	pthread_mutex_unlock(&m->lock);
	return ok;
}
