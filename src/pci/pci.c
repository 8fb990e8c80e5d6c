#include "pci/pci.h"

#include <linux/pci_regs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/aml.h"
#include "util/log.h"
#include "vmm/irq.h"
#include "vmm/timeline.h"

#define PCI_ECAM_SIZE		0x100000ULL	/* bus 0: 32 devices x 8 functions x 4 KiB */
#define PCI_CAP_START		0x40		/* first byte after the type 0 header */
#define PCI_MAX_CAPS		16
#define PCI_CONF1_ENABLE	0x80000000U
#define PCI_CONF1_MASK		0x80fffffcU	/* enable, bus, device, function, register */
#define PCI_BAR_MIN_SIZE	0x1000ULL
#define PCI_CLASS_BRIDGE_HOST	0x0600		/* linux/pci_ids.h is not a uapi header */

/*
 * Command bits a guest may set: I/O would need I/O BARs (none yet); special
 * cycles, memory write and invalidate, VGA snoop and fast back-to-back are
 * hardwired to 0.
 */
#define PCI_COMMAND_WMASK	(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | \
				 PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)

struct pci_bar {
	uint64_t size;			/* 0: not implemented */
	unsigned int flags;		/* PCI_BAR_* */
	uint64_t assigned;		/* where bootvm placed it (reset value) */
	const struct bus_ops *ops;
	void *opaque;
	pci_bar_map_fn map;
	bool mapped;
	uint64_t mapped_at;
	bool overlap_logged;
	char name[48];			/* bus range name */
};

struct pci_cap {
	uint8_t off, len;
	const struct pci_cap_ops *ops;
	void *opaque;
};

struct pci_dev {
	struct pci_host *host;
	unsigned int slot;
	char name[32];
	struct pci_dev_info info;

	/* Under the host lock. */
	uint8_t cfg[PCI_CFG_SPACE_SIZE];
	uint8_t reset_cfg[PCI_CFG_SPACE_SIZE];	/* power-on image */
	uint8_t wmask[PCI_CFG_SPACE_SIZE];
	struct pci_bar bars[PCI_NUM_BARS];
	struct pci_cap caps[PCI_MAX_CAPS];
	unsigned int nr_caps;
	unsigned int cap_end;			/* next free byte for a capability */

	/* INTx, under intx_lock (taken last). */
	pthread_mutex_t intx_lock;
	int gsi;				/* -1: no pin */
	bool intx_level;			/* what the device drives */
	bool intx_disabled;			/* command register bit 10 */
	bool intx_line;				/* what the GSI is at */
};

struct pci_host {
	struct pci_host_config cfg;
	pthread_mutex_t lock;
	uint32_t conf1_addr;			/* port 0xcf8 */
	struct pci_dev *devs[PCI_MAX_DEVICES];
	uint64_t next32, next64;		/* BAR placement cursors */
	bool pio_registered, ecam_registered;
};

static uint16_t cfg_get16(const uint8_t *p, unsigned int off)
{
	return (uint16_t)(p[off] | p[off + 1] << 8);
}

static uint32_t cfg_get32(const uint8_t *p, unsigned int off)
{
	return (uint32_t)cfg_get16(p, off) | (uint32_t)cfg_get16(p, off + 2) << 16;
}

static void cfg_set16(uint8_t *p, unsigned int off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}

static void cfg_set32(uint8_t *p, unsigned int off, uint32_t v)
{
	cfg_set16(p, off, (uint16_t)v);
	cfg_set16(p, off + 2, (uint16_t)(v >> 16));
}

/* ---- INTx ---- */

static void pci_intx_update_locked(struct pci_dev *d)
{
	bool on = d->gsi >= 0 && d->intx_level && !d->intx_disabled;

	if (on == d->intx_line)
		return;
	d->intx_line = on;
	if (d->host->cfg.irq)
		irq_line_set(d->host->cfg.irq, (unsigned int)d->gsi, on);
}

void pci_dev_set_intx(struct pci_dev *d, int level)
{
	pthread_mutex_lock(&d->intx_lock);
	d->intx_level = level != 0;
	pci_intx_update_locked(d);
	pthread_mutex_unlock(&d->intx_lock);
}

static void pci_intx_set_disabled(struct pci_dev *d, bool disabled)
{
	pthread_mutex_lock(&d->intx_lock);
	d->intx_disabled = disabled;
	pci_intx_update_locked(d);
	pthread_mutex_unlock(&d->intx_lock);
}

static bool pci_intx_level(struct pci_dev *d)
{
	bool level;

	pthread_mutex_lock(&d->intx_lock);
	level = d->intx_level;
	pthread_mutex_unlock(&d->intx_lock);
	return level;
}

/* ---- BARs ---- */

/* The BAR whose registers include dword index i (0-5), and whether i is its high half. */
static struct pci_bar *pci_bar_of_reg(struct pci_dev *d, unsigned int i, bool *high)
{
	*high = false;
	if (d->bars[i].size)
		return &d->bars[i];
	if (i > 0 && d->bars[i - 1].size && (d->bars[i - 1].flags & PCI_BAR_MEM64)) {
		*high = true;
		return &d->bars[i - 1];
	}
	return NULL;
}

static uint64_t pci_bar_addr_locked(const struct pci_dev *d, unsigned int bar)
{
	const struct pci_bar *b = &d->bars[bar];
	uint64_t addr = cfg_get32(d->cfg, PCI_BASE_ADDRESS_0 + 4 * bar) &
			(uint32_t)PCI_BASE_ADDRESS_MEM_MASK;

	if (b->flags & PCI_BAR_MEM64)
		addr |= (uint64_t)cfg_get32(d->cfg, PCI_BASE_ADDRESS_0 + 4 * (bar + 1)) << 32;
	return addr;
}

static uint32_t pci_bar_low_flags(const struct pci_bar *b)
{
	return ((b->flags & PCI_BAR_MEM64) ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
	       ((b->flags & PCI_BAR_PREFETCH) ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
}

/* Program the BAR registers with addr (masked to the BAR's size). */
static void pci_bar_set_locked(struct pci_dev *d, unsigned int bar, uint64_t addr)
{
	struct pci_bar *b = &d->bars[bar];

	addr &= ~(b->size - 1);
	cfg_set32(d->cfg, PCI_BASE_ADDRESS_0 + 4 * bar, (uint32_t)addr | pci_bar_low_flags(b));
	if (b->flags & PCI_BAR_MEM64)
		cfg_set32(d->cfg, PCI_BASE_ADDRESS_0 + 4 * (bar + 1), (uint32_t)(addr >> 32));
}

/*
 * Put the BAR on the bus, or take it off, as the command register and its
 * address now say. The guest may program any address: one that overlaps
 * another range (another BAR, the ECAM, a device) or wraps stays unmapped,
 * logged once at debug level.
 */
static void pci_bar_update_locked(struct pci_dev *d, unsigned int bar)
{
	struct pci_bar *b = &d->bars[bar];
	struct bus *mmio = d->host->cfg.mmio;
	bool want = b->size && (cfg_get16(d->cfg, PCI_COMMAND) & PCI_COMMAND_MEMORY);
	uint64_t addr = b->size ? pci_bar_addr_locked(d, bar) : 0;

	if (b->mapped && (!want || addr != b->mapped_at)) {
		bus_unregister(mmio, b->mapped_at);
		b->mapped = false;
		if (b->map)
			b->map(b->opaque, bar, false, b->mapped_at);
	}
	if (!want || b->mapped)
		return;
	if (!bus_is_free(mmio, addr, b->size)) {
		if (!b->overlap_logged)
			log_debug("%s: BAR %u at 0x%llx (0x%llx bytes) overlaps another range or "
				  "wraps: left unmapped", d->name, bar, (unsigned long long)addr,
				  (unsigned long long)b->size);
		b->overlap_logged = true;
		return;
	}
	if (bus_register(mmio, addr, b->size, b->name, b->ops, b->opaque) < 0)
		return;		/* the bus is full: logged */
	b->mapped = true;
	b->mapped_at = addr;
	if (b->map)
		b->map(b->opaque, bar, true, addr);
}

static void pci_bars_update_locked(struct pci_dev *d)
{
	for (unsigned int i = 0; i < PCI_NUM_BARS; i++)
		if (d->bars[i].size)
			pci_bar_update_locked(d, i);
}

/*
 * A write to BAR register dword i: the address bits below the size read as
 * 0 (that is how the guest sizes a BAR: it writes all ones and reads back
 * the mask), the type bits are fixed.
 */
static void pci_bar_write_locked(struct pci_dev *d, unsigned int reg, unsigned int size,
				 uint32_t value)
{
	unsigned int i = (reg - PCI_BASE_ADDRESS_0) / 4, shift = (reg & 3) * 8;
	uint32_t old = cfg_get32(d->cfg, PCI_BASE_ADDRESS_0 + 4 * i), v, mask;
	struct pci_bar *b;
	bool high;

	b = pci_bar_of_reg(d, i, &high);
	if (!b)
		return;		/* not implemented: reads 0 */
	mask = size == 4 ? 0xffffffffU : ((1U << (8 * size)) - 1) << shift;
	v = (old & ~mask) | ((value << shift) & mask);
	if (high)
		v &= (uint32_t)(~(b->size - 1) >> 32);
	else
		v = (v & (uint32_t)~(b->size - 1) & (uint32_t)PCI_BASE_ADDRESS_MEM_MASK) |
		    pci_bar_low_flags(b);
	cfg_set32(d->cfg, PCI_BASE_ADDRESS_0 + 4 * i, v);
	pci_bar_update_locked(d, (unsigned int)(b - d->bars));
}

/* ---- configuration space ---- */

static struct pci_cap *pci_cap_at(struct pci_dev *d, unsigned int reg)
{
	for (unsigned int i = 0; i < d->nr_caps; i++)
		if (reg >= d->caps[i].off && reg < (unsigned int)d->caps[i].off + d->caps[i].len)
			return &d->caps[i];
	return NULL;
}

static uint32_t pci_dev_read_locked(struct pci_dev *d, unsigned int reg, unsigned int size)
{
	struct pci_cap *c;
	uint32_t v = 0;

	if (reg >= PCI_CFG_SPACE_SIZE)
		return 0;	/* no extended capabilities */
	if (pci_intx_level(d))
		d->cfg[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
	else
		d->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
	memcpy(&v, d->cfg + reg, size);
	c = pci_cap_at(d, reg);
	if (c && c->ops && c->ops->read)
		v = c->ops->read(c->opaque, d->cfg + c->off, reg - c->off, size, v);
	if (size < 4)
		v &= (1U << (8 * size)) - 1;
	return v;
}

static void pci_dev_write_locked(struct pci_dev *d, unsigned int reg, unsigned int size,
				 uint32_t value)
{
	uint16_t old_cmd = cfg_get16(d->cfg, PCI_COMMAND), cmd;
	struct pci_cap *c;

	if (reg >= PCI_CFG_SPACE_SIZE)
		return;
	if (reg >= PCI_BASE_ADDRESS_0 && reg <= PCI_BASE_ADDRESS_5 + 3) {
		pci_bar_write_locked(d, reg, size, value);
		return;
	}
	for (unsigned int i = 0; i < size; i++) {
		uint8_t m = d->wmask[reg + i], b = (uint8_t)(value >> (8 * i));

		d->cfg[reg + i] = (uint8_t)((d->cfg[reg + i] & ~m) | (b & m));
	}
	cmd = cfg_get16(d->cfg, PCI_COMMAND);
	if ((cmd ^ old_cmd) & PCI_COMMAND_MEMORY)
		pci_bars_update_locked(d);
	if ((cmd ^ old_cmd) & PCI_COMMAND_INTX_DISABLE)
		pci_intx_set_disabled(d, cmd & PCI_COMMAND_INTX_DISABLE);
	c = pci_cap_at(d, reg);
	if (c && c->ops && c->ops->write)
		c->ops->write(c->opaque, d->cfg + c->off, reg - c->off, size, value);
}

static bool pci_access_ok(unsigned int reg, unsigned int size)
{
	return (size == 1 || size == 2 || size == 4) && reg % size == 0 &&
	       reg < PCI_CFG_SPACE_EXP_SIZE;
}

uint32_t pci_host_config_read(struct pci_host *h, unsigned int slot, unsigned int reg,
			      unsigned int size)
{
	uint32_t v = size == 1 ? 0xff : size == 2 ? 0xffff : 0xffffffffU;

	timeline_mark_once(TIMELINE_FIRST_PCI_CONFIG);
	if (!pci_access_ok(reg, size))
		return v;
	pthread_mutex_lock(&h->lock);
	if (slot < PCI_MAX_DEVICES && h->devs[slot])
		v = pci_dev_read_locked(h->devs[slot], reg, size);
	pthread_mutex_unlock(&h->lock);
	return v;
}

void pci_host_config_write(struct pci_host *h, unsigned int slot, unsigned int reg,
			   unsigned int size, uint32_t value)
{
	timeline_mark_once(TIMELINE_FIRST_PCI_CONFIG);
	if (!pci_access_ok(reg, size))
		return;
	pthread_mutex_lock(&h->lock);
	if (slot < PCI_MAX_DEVICES && h->devs[slot])
		pci_dev_write_locked(h->devs[slot], reg, size, value);
	pthread_mutex_unlock(&h->lock);
}

/* ---- mechanism #1: 0xcf8 address, 0xcfc-0xcff data ---- */

/* Slot and register the address register selects, or false (disabled, other bus, fn != 0). */
static bool pci_conf1_target(uint32_t addr, unsigned int port_off, unsigned int *slot,
			     unsigned int *reg)
{
	if (!(addr & PCI_CONF1_ENABLE) || ((addr >> 16) & 0xff) != 0 || ((addr >> 8) & 7) != 0)
		return false;
	*slot = (addr >> 11) & 0x1f;
	*reg = (addr & 0xfc) | (port_off & 3);
	return true;
}

static uint64_t pci_conf1_read(void *opaque, uint64_t offset, unsigned int size)
{
	struct pci_host *h = opaque;
	unsigned int slot, reg;
	uint32_t addr;

	pthread_mutex_lock(&h->lock);
	addr = h->conf1_addr;
	pthread_mutex_unlock(&h->lock);
	if (offset == 0 && size == 4)
		return addr;
	if (offset < 4 || (offset & 3) + size > 4 || !pci_conf1_target(addr, (unsigned int)offset,
								      &slot, &reg))
		return ~0ULL;
	return pci_host_config_read(h, slot, reg, size);
}

static void pci_conf1_write(void *opaque, uint64_t offset, unsigned int size, uint64_t value)
{
	struct pci_host *h = opaque;
	unsigned int slot, reg;
	uint32_t addr;

	if (offset == 0 && size == 4) {
		pthread_mutex_lock(&h->lock);
		h->conf1_addr = (uint32_t)value & PCI_CONF1_MASK;
		pthread_mutex_unlock(&h->lock);
		return;
	}
	/* Byte writes to 0xcf8-0xcfb (mechanism #2 probes) are not the address register. */
	if (offset < 4 || (offset & 3) + size > 4)
		return;
	pthread_mutex_lock(&h->lock);
	addr = h->conf1_addr;
	pthread_mutex_unlock(&h->lock);
	if (pci_conf1_target(addr, (unsigned int)offset, &slot, &reg))
		pci_host_config_write(h, slot, reg, size, (uint32_t)value);
}

static const struct bus_ops pci_conf1_ops = {
	.read = pci_conf1_read,
	.write = pci_conf1_write,
};

/* ---- ECAM: offset = device << 15 | function << 12 | register ---- */

static uint64_t pci_ecam_read(void *opaque, uint64_t offset, unsigned int size)
{
	if (((offset >> 12) & 7) || size > 4)
		return ~0ULL;
	return pci_host_config_read(opaque, (unsigned int)(offset >> 15) & 0x1f,
				    (unsigned int)offset & 0xfff, size);
}

static void pci_ecam_write(void *opaque, uint64_t offset, unsigned int size, uint64_t value)
{
	if ((offset >> 12) & 7)
		return;
	pci_host_config_write(opaque, (unsigned int)(offset >> 15) & 0x1f,
			      (unsigned int)offset & 0xfff, size, (uint32_t)value);
}

static const struct bus_ops pci_ecam_ops = {
	.read = pci_ecam_read,
	.write = pci_ecam_write,
};

/* ---- devices ---- */

static struct pci_dev *pci_dev_add_at(struct pci_host *h, unsigned int slot,
				      const struct pci_dev_info *info)
{
	struct pci_dev *d = calloc(1, sizeof(*d));

	if (!d) {
		log_error("PCI: out of memory adding %s", info->name);
		return NULL;
	}
	if (info->int_pin > 4) {
		log_error("PCI: %s: interrupt pin %u is not INTA-INTD", info->name, info->int_pin);
		free(d);
		return NULL;
	}
	d->host = h;
	d->slot = slot;
	d->info = *info;
	snprintf(d->name, sizeof(d->name), "%s", info->name);
	d->info.name = d->name;
	pthread_mutex_init(&d->intx_lock, NULL);
	d->gsi = -1;
	if (info->int_pin && h->cfg.intx_gsi_count)
		d->gsi = (int)(h->cfg.intx_gsi_base +
			       (slot + info->int_pin - 1) % h->cfg.intx_gsi_count);
	d->cap_end = PCI_CAP_START;

	cfg_set16(d->cfg, PCI_VENDOR_ID, info->vendor_id);
	cfg_set16(d->cfg, PCI_DEVICE_ID, info->device_id);
	cfg_set32(d->cfg, PCI_CLASS_REVISION, info->class_code << 8 | info->revision);
	d->cfg[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
	cfg_set16(d->cfg, PCI_SUBSYSTEM_VENDOR_ID, info->subsys_vendor_id);
	cfg_set16(d->cfg, PCI_SUBSYSTEM_ID, info->subsys_id);
	d->cfg[PCI_INTERRUPT_PIN] = info->int_pin;
	/* What firmware would have written: the GSI (Linux takes it from _PRT anyway). */
	d->cfg[PCI_INTERRUPT_LINE] = d->gsi >= 0 && d->gsi < 0xff ? (uint8_t)d->gsi : 0xff;

	cfg_set16(d->wmask, PCI_COMMAND, PCI_COMMAND_WMASK);
	d->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	d->wmask[PCI_LATENCY_TIMER] = 0xff;
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;

	memcpy(d->reset_cfg, d->cfg, sizeof(d->cfg));
	pthread_mutex_lock(&h->lock);
	h->devs[slot] = d;
	pthread_mutex_unlock(&h->lock);
	return d;
}

struct pci_dev *pci_dev_add(struct pci_host *h, const struct pci_dev_info *info)
{
	for (unsigned int slot = 1; slot < PCI_MAX_DEVICES; slot++)
		if (!h->devs[slot])
			return pci_dev_add_at(h, slot, info);
	log_error("PCI: no free slot for %s (%u devices at most)", info->name,
		  PCI_MAX_DEVICES - 1);
	return NULL;
}

static void pci_dev_free(struct pci_dev *d)
{
	struct pci_host *h = d->host;

	pthread_mutex_lock(&h->lock);
	for (unsigned int i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bars[i];

		if (b->mapped) {
			bus_unregister(h->cfg.mmio, b->mapped_at);
			b->mapped = false;
			if (b->map)
				b->map(b->opaque, i, false, b->mapped_at);
		}
	}
	h->devs[d->slot] = NULL;
	pthread_mutex_unlock(&h->lock);
	pci_dev_set_intx(d, 0);
	pthread_mutex_destroy(&d->intx_lock);
	free(d);
}

void pci_dev_remove(struct pci_dev *d)
{
	if (d)
		pci_dev_free(d);
}

unsigned int pci_dev_slot(const struct pci_dev *d)
{
	return d->slot;
}

struct pci_host *pci_dev_host(const struct pci_dev *d)
{
	return d->host;
}

int pci_dev_gsi(const struct pci_dev *d)
{
	return d->gsi;
}

static bool pci_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* The next size-aligned room for size bytes in [base, base + len) from *cursor. */
static int pci_window_alloc(uint64_t *cursor, uint64_t base, uint64_t len, uint64_t size,
			    uint64_t *out)
{
	uint64_t a = (*cursor + size - 1) & ~(size - 1);

	if (a < *cursor || a < base || a - base > len || len - (a - base) < size)
		return -1;
	*cursor = a + size;
	*out = a;
	return 0;
}

int pci_dev_add_bar(struct pci_dev *d, unsigned int bar, uint64_t size, unsigned int flags,
		    const struct bus_ops *ops, void *opaque, pci_bar_map_fn map)
{
	struct pci_host *h = d->host;
	bool is64 = flags & PCI_BAR_MEM64;
	struct pci_bar *b;
	uint64_t addr;
	int ret;

	if (bar >= PCI_NUM_BARS || (is64 && bar + 1 >= PCI_NUM_BARS) || d->bars[bar].size ||
	    (bar > 0 && (d->bars[bar - 1].flags & PCI_BAR_MEM64)) ||
	    (is64 && d->bars[bar + 1].size)) {
		log_error("PCI: %s: BAR %u is taken or out of range", d->name, bar);
		return -1;
	}
	if (!pci_pow2(size) || size < PCI_BAR_MIN_SIZE || (!is64 && size > 0x80000000ULL) ||
	    flags & ~(PCI_BAR_MEM64 | PCI_BAR_PREFETCH)) {
		log_error("PCI: %s: BAR %u of 0x%llx bytes is not a power of two from 4 KiB%s",
			  d->name, bar, (unsigned long long)size, is64 ? "" : " to 2 GiB");
		return -1;
	}
	pthread_mutex_lock(&h->lock);
	if (is64 && h->cfg.mmio64_size)
		ret = pci_window_alloc(&h->next64, h->cfg.mmio64_base, h->cfg.mmio64_size, size,
				       &addr);
	else
		ret = -1;
	/* Without a 64-bit window (or room in it) a 64-bit BAR may live below 4 GiB. */
	if (ret < 0)
		ret = pci_window_alloc(&h->next32, h->cfg.mmio32_base, h->cfg.mmio32_size, size,
				       &addr);
	if (ret < 0) {
		pthread_mutex_unlock(&h->lock);
		log_error("PCI: %s: no room for BAR %u (0x%llx bytes) in the MMIO windows", d->name,
			  bar, (unsigned long long)size);
		return -1;
	}
	b = &d->bars[bar];
	b->size = size;
	b->flags = flags;
	b->assigned = addr;
	b->ops = ops;
	b->opaque = opaque;
	b->map = map;
	snprintf(b->name, sizeof(b->name), "%s BAR%u", d->name, bar);
	pci_bar_set_locked(d, bar, addr);
	memcpy(d->reset_cfg + PCI_BASE_ADDRESS_0, d->cfg + PCI_BASE_ADDRESS_0, 6 * 4);
	pci_bar_update_locked(d, bar);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

uint64_t pci_dev_bar_addr(struct pci_dev *d, unsigned int bar)
{
	uint64_t addr = 0;

	if (bar >= PCI_NUM_BARS)
		return 0;
	pthread_mutex_lock(&d->host->lock);
	if (d->bars[bar].size)
		addr = pci_bar_addr_locked(d, bar);
	pthread_mutex_unlock(&d->host->lock);
	return addr;
}

int pci_dev_add_cap(struct pci_dev *d, const void *cap, unsigned int len, const void *wmask,
		    const struct pci_cap_ops *ops, void *opaque)
{
	unsigned int off = d->cap_end, room = (len + 3) & ~3U;
	struct pci_host *h = d->host;
	struct pci_cap *c;

	if (len < 3 || len > 64 || d->nr_caps == PCI_MAX_CAPS || off + room > PCI_CFG_SPACE_SIZE) {
		log_error("PCI: %s: no room for a %u-byte capability", d->name, len);
		return -1;
	}
	pthread_mutex_lock(&h->lock);
	memcpy(d->cfg + off, cap, len);
	d->cfg[off + PCI_CAP_LIST_NEXT] = 0;
	if (wmask)
		memcpy(d->wmask + off, wmask, len);
	d->wmask[off + PCI_CAP_LIST_ID] = 0;
	d->wmask[off + PCI_CAP_LIST_NEXT] = 0;
	/* Link it at the end of the list. */
	if (!d->nr_caps) {
		d->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
		d->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	} else {
		d->cfg[d->caps[d->nr_caps - 1].off + PCI_CAP_LIST_NEXT] = (uint8_t)off;
	}
	c = &d->caps[d->nr_caps++];
	c->off = (uint8_t)off;
	c->len = (uint8_t)room;
	c->ops = ops;
	c->opaque = opaque;
	d->cap_end = off + room;
	memcpy(d->reset_cfg, d->cfg, sizeof(d->cfg));
	pthread_mutex_unlock(&h->lock);
	return (int)off;
}

/* ---- the host ---- */

struct irq_router *pci_host_irq(const struct pci_host *h)
{
	return h->cfg.irq;
}

int pci_host_vm_fd(const struct pci_host *h)
{
	return h->cfg.vm_fd;
}

struct pci_host *pci_host_create(const struct pci_host_config *cfg)
{
	struct pci_dev_info bridge = {
		.name = "pci-host",
		.vendor_id = PCI_HOST_VENDOR_ID,
		.device_id = PCI_HOST_DEVICE_ID,
		.class_code = PCI_CLASS_BRIDGE_HOST << 8,
	};
	struct pci_host *h;

	if (cfg->ecam_base & (PCI_ECAM_SIZE - 1) || !cfg->mmio32_size ||
	    cfg->mmio32_base + cfg->mmio32_size > 0x100000000ULL ||
	    cfg->mmio64_base + cfg->mmio64_size < cfg->mmio64_base ||
	    cfg->io_end < cfg->io_base || (cfg->intx_gsi_count && !cfg->irq)) {
		log_error("PCI: bad host configuration (ECAM 1 MiB aligned, a 32-bit window below "
			  "4 GiB, windows that do not wrap)");
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		log_error("PCI: out of memory");
		return NULL;
	}
	h->cfg = *cfg;
	pthread_mutex_init(&h->lock, NULL);
	h->next32 = cfg->mmio32_base;
	h->next64 = cfg->mmio64_base;

	if (bus_register(cfg->pio, 0xcf8, 8, "pci-conf1", &pci_conf1_ops, h) < 0)
		goto err_free;
	h->pio_registered = true;
	if (bus_register(cfg->mmio, cfg->ecam_base, PCI_ECAM_SIZE, "pci-ecam", &pci_ecam_ops,
			 h) < 0)
		goto err_free;
	h->ecam_registered = true;
	if (!pci_dev_add_at(h, 0, &bridge))
		goto err_free;
	return h;

err_free:
	pci_host_destroy(h);
	return NULL;
}

void pci_host_destroy(struct pci_host *h)
{
	if (!h)
		return;
	for (unsigned int i = 0; i < PCI_MAX_DEVICES; i++)
		if (h->devs[i])
			pci_dev_free(h->devs[i]);
	if (h->ecam_registered)
		bus_unregister(h->cfg.mmio, h->cfg.ecam_base);
	if (h->pio_registered)
		bus_unregister(h->cfg.pio, 0xcf8);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void pci_host_reset(struct pci_host *h)
{
	struct pci_dev_info hooks[PCI_MAX_DEVICES];

	pthread_mutex_lock(&h->lock);
	h->conf1_addr = 0;
	for (unsigned int i = 0; i < PCI_MAX_DEVICES; i++) {
		struct pci_dev *d = h->devs[i];

		memset(&hooks[i], 0, sizeof(hooks[i]));
		if (!d)
			continue;
		memcpy(d->cfg, d->reset_cfg, sizeof(d->cfg));
		pci_bars_update_locked(d);	/* command 0: all off the bus */
		for (unsigned int b = 0; b < PCI_NUM_BARS; b++)
			d->bars[b].overlap_logged = false;
		pci_intx_set_disabled(d, false);
		pci_dev_set_intx(d, 0);
		hooks[i] = d->info;
	}
	pthread_mutex_unlock(&h->lock);
	for (unsigned int i = 0; i < PCI_MAX_DEVICES; i++)
		if (hooks[i].reset)
			hooks[i].reset(hooks[i].opaque);
}

static void pci_host_reset_op(void *dev)
{
	pci_host_reset(dev);
}

static void pci_host_destroy_op(void *dev)
{
	pci_host_destroy(dev);
}

const struct device_ops pci_host_device_ops = {
	.kind = "pci-host",
	.reset = pci_host_reset_op,
	.destroy = pci_host_destroy_op,
};

/* ---- AML ---- */

/* Package { 0xSSSSFFFF, pin, Zero, GSI } for every slot and pin: no link devices. */
static void pci_host_aml_prt(const struct pci_host *h, struct aml *a)
{
	size_t pkg;

	aml_name(a, "_PRT");
	pkg = aml_package_begin(a, PCI_MAX_DEVICES * 4);
	for (unsigned int slot = 0; slot < PCI_MAX_DEVICES; slot++) {
		for (unsigned int pin = 0; pin < 4; pin++) {
			size_t e = aml_package_begin(a, 4);

			aml_integer(a, (uint64_t)slot << 16 | 0xffff);
			aml_integer(a, pin);
			aml_integer(a, 0);
			aml_integer(a, h->cfg.intx_gsi_base +
					       (h->cfg.intx_gsi_count ?
							(slot + pin) % h->cfg.intx_gsi_count : 0));
			aml_end(a, e);
		}
	}
	aml_end(a, pkg);
}

void pci_host_aml(const struct pci_host *h, struct aml *a)
{
	uint8_t buf[128];
	struct aml res;
	size_t dev, m;

	dev = aml_device_begin(a, "PCI0");
	aml_name_eisaid(a, "_HID", "PNP0A08");
	aml_name_eisaid(a, "_CID", "PNP0A03");
	aml_name_integer(a, "_SEG", 0);
	aml_name_integer(a, "_BBN", 0);
	aml_name_integer(a, "_UID", 0);
	aml_method_return_integer(a, "_STA", 0x0f);

	aml_init(&res, buf, sizeof(buf));
	aml_res_word_bus_number(&res, 0, 0);
	aml_res_io(&res, true, 0xcf8, 0xcf8, 1, 8);
	aml_res_word_io(&res, h->cfg.io_base, h->cfg.io_end);
	aml_res_dword_memory(&res, true, false, (uint32_t)h->cfg.mmio32_base,
			     (uint32_t)(h->cfg.mmio32_base + h->cfg.mmio32_size - 1));
	if (h->cfg.mmio64_size)
		aml_res_qword_memory(&res, true, true, h->cfg.mmio64_base,
				     h->cfg.mmio64_base + h->cfg.mmio64_size - 1);
	aml_res_end(&res);
	if (res.overflow)
		a->overflow = true;
	aml_name(a, "_CRS");
	aml_buffer(a, res.buf, res.len);

	pci_host_aml_prt(h, a);

	/* _OSC: grant whatever the OS asks for (we have no firmware-owned features). */
	m = aml_method_begin(a, "_OSC", 4, false);
	aml_return(a);
	aml_arg(a, 3);
	aml_end(a, m);
	aml_end(a, dev);

	/* The ECAM, reserved as a motherboard resource (Linux checks that MCFG areas are). */
	dev = aml_device_begin(a, "RES0");
	aml_name_eisaid(a, "_HID", "PNP0C02");
	aml_name_integer(a, "_UID", 0);
	aml_init(&res, buf, sizeof(buf));
	if (h->cfg.ecam_base + PCI_ECAM_SIZE <= 0x100000000ULL)
		aml_res_memory32_fixed(&res, (uint32_t)h->cfg.ecam_base, (uint32_t)PCI_ECAM_SIZE);
	else
		aml_res_qword_memory(&res, false, false, h->cfg.ecam_base,
				     h->cfg.ecam_base + PCI_ECAM_SIZE - 1);
	aml_res_end(&res);
	if (res.overflow)
		a->overflow = true;
	aml_name(a, "_CRS");
	aml_buffer(a, res.buf, res.len);
	aml_end(a, dev);
}
