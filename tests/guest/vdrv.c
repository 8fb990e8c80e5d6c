/*
 * PCI + virtio driver shared by the virtio guests (see vdrv.h).
 */
#include "vdrv.h"

static uint64_t ecam;

/* ---- PCI configuration space ---- */

uint64_t pci_ecam_init(void)
{
	const struct acpi_header *mcfg = acpi_find("MCFG");

	ecam = 0;
	if (!mcfg) {
		print("pci: FAIL no MCFG table\n");
		return 0;
	}
	if (acpi_sum(mcfg, mcfg->length))
		print("pci: FAIL MCFG checksum\n");
	/* The header, 8 reserved bytes, then 16-byte entries: base, segment, start bus, end bus. */
	const uint8_t *p = (const uint8_t *)mcfg + 44, *end = (const uint8_t *)mcfg + mcfg->length;
	for (; p + 16 <= end; p += 16) {
		uint64_t base;
		uint16_t seg;
		memcpy(&base, p, 8);
		memcpy(&seg, p + 8, 2);
		printf("pci: mcfg ecam 0x%lx segment %u buses %u-%u\n", base, seg, p[10], p[11]);
		if (seg == 0 && p[10] == 0 && !ecam)
			ecam = base;
	}
	if (!ecam)
		print("pci: FAIL no MCFG entry for segment 0 bus 0\n");
	return ecam;
}

static uint64_t cfg_addr(const struct pci_fn *f, unsigned int off)
{
	return f->cfg + (off & 0xfff);
}

uint8_t pci_read8(const struct pci_fn *f, unsigned int off) { return mmio_read8(cfg_addr(f, off)); }
uint16_t pci_read16(const struct pci_fn *f, unsigned int off) { return mmio_read16(cfg_addr(f, off)); }
uint32_t pci_read32(const struct pci_fn *f, unsigned int off) { return mmio_read32(cfg_addr(f, off)); }
void pci_write16(const struct pci_fn *f, unsigned int off, uint16_t v) { mmio_write16(cfg_addr(f, off), v); }
void pci_write32(const struct pci_fn *f, unsigned int off, uint32_t v) { mmio_write32(cfg_addr(f, off), v); }

uint32_t pci_cf8_read32(unsigned int dev, unsigned int fn, unsigned int off)
{
	outl(0xcf8, 0x80000000u | dev << 11 | fn << 8 | (off & 0xfc));
	return inl(0xcfc);
}

unsigned int pci_scan(struct pci_fn *fns, unsigned int max, unsigned int *mismatches)
{
	unsigned int n = 0;

	*mismatches = 0;
	if (!ecam)
		return 0;
	for (unsigned int dev = 0; dev < 32; dev++) {
		for (unsigned int fn = 0; fn < 8; fn++) {
			struct pci_fn f = { .dev = (uint8_t)dev, .fn = (uint8_t)fn,
					    .cfg = ecam + ((uint64_t)dev << 15 | (uint64_t)fn << 12) };
			uint32_t id = pci_read32(&f, PCI_VENDOR_ID);
			uint32_t cf8 = pci_cf8_read32(dev, fn, PCI_VENDOR_ID);
			if (cf8 != id) {
				printf("pci: FAIL 00:%02x.%u ecam id 0x%08x, 0xcf8 id 0x%08x\n", dev, fn, id, cf8);
				(*mismatches)++;
			}
			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break;
				continue;
			}
			f.vendor = (uint16_t)id;
			f.device = (uint16_t)(id >> 16);
			f.class = pci_read32(&f, PCI_CLASS_REVISION) >> 8;
			uint8_t hdr = pci_read8(&f, PCI_HEADER_TYPE);
			printf("pci: 00:%02x.%u %04x:%04x class %06x header %02x\n", dev, fn, f.vendor,
			       f.device, f.class, hdr);
			if (n < max)
				fns[n++] = f;
			if (fn == 0 && !(hdr & 0x80))
				break;			/* single-function device */
		}
	}
	/* Mechanism #1 with an address port that does not enable (bit 31 clear) reads nothing. */
	outl(0xcf8, 0);
	return n;
}

bool pci_bar(const struct pci_fn *f, unsigned int bar, uint64_t *addr, uint64_t *size, bool *is64)
{
	unsigned int off = PCI_BASE_ADDRESS_0 + 4 * bar;
	uint32_t lo = pci_read32(f, off);

	if (lo & PCI_BASE_ADDRESS_SPACE_IO)
		return false;
	*is64 = (lo & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64;
	uint32_t hi = *is64 ? pci_read32(f, off + 4) : 0;
	uint16_t cmd = pci_read16(f, PCI_COMMAND);

	pci_write16(f, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY);
	pci_write32(f, off, 0xffffffff);
	uint32_t mlo = pci_read32(f, off), mhi = 0xffffffff;
	if (*is64) {
		pci_write32(f, off + 4, 0xffffffff);
		mhi = pci_read32(f, off + 4);
		pci_write32(f, off + 4, hi);
	}
	pci_write32(f, off, lo);
	pci_write16(f, PCI_COMMAND, cmd);
	uint64_t mask = (uint64_t)mhi << 32 | (mlo & PCI_BASE_ADDRESS_MEM_MASK);
	*size = mask ? ~mask + 1 : 0;
	*addr = ((uint64_t)hi << 32 | lo) & ~0xfULL;
	return *size != 0;
}

void pci_bar_set(const struct pci_fn *f, unsigned int bar, uint64_t addr, bool is64)
{
	unsigned int off = PCI_BASE_ADDRESS_0 + 4 * bar;
	uint16_t cmd = pci_read16(f, PCI_COMMAND);

	pci_write16(f, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY);
	pci_write32(f, off, (uint32_t)addr);
	if (is64)
		pci_write32(f, off + 4, (uint32_t)(addr >> 32));
	pci_write16(f, PCI_COMMAND, cmd);
}

/* ---- interrupts ---- */

volatile uint32_t irq_count[2 * VDEV_MAX];

#define IRQ(n) \
	__attribute__((interrupt)) static void irq_##n(struct interrupt_frame *f) \
	{ (void)f; irq_count[n]++; x2apic_eoi(); }
IRQ(0) IRQ(1) IRQ(2) IRQ(3) IRQ(4) IRQ(5) IRQ(6) IRQ(7)

__attribute__((interrupt)) static void spurious_isr(struct interrupt_frame *f)
{
	(void)f;
}

bool irq_init(void)
{
	void (*const handlers[])(struct interrupt_frame *) = {
		irq_0, irq_1, irq_2, irq_3, irq_4, irq_5, irq_6, irq_7,
	};

	idt_init();
	for (unsigned int i = 0; i < 2 * VDEV_MAX; i++)
		idt_set_gate(IRQ_VECTOR_BASE + i, handlers[i]);
	idt_set_gate(0xff, spurious_isr);
	outb(0x21, 0xff);			/* 8259s masked */
	outb(0xa1, 0xff);
	if (!x2apic_enable())
		return false;
	wrmsr(X2APIC_TPR, 0);
	wrmsr(X2APIC_LVT_LINT0, 1u << 16);
	wrmsr(X2APIC_SVR, 0x1ff);
	return true;
}

/* ---- virtio PCI transport ---- */

static uint8_t vq_mem[VDEV_MAX][4096] __attribute__((aligned(4096)));
static uint8_t vbuf[VDEV_MAX][4096] __attribute__((aligned(4096)));

#define COMMON8(vd, off)	((vd)->common + (off))

static const char *kind_name(uint16_t id)
{
	switch (id) {
	case VIRTIO_ID_BLOCK: return "blk";
	case VIRTIO_ID_RNG: return "rng";
	case VIRTIO_ID_NET: return "net";
	case VIRTIO_ID_CONSOLE: return "console";
	}
	return "other";
}

bool vdev_probe(struct vdev *vd, const struct pci_fn *f, unsigned int index)
{
	memset(vd, 0, sizeof(*vd));
	vd->pci = *f;
	vd->index = index;
	vd->id = (uint16_t)(f->device - PCI_DEVICE_VIRTIO_BASE);
	vd->kind = kind_name(vd->id);
	vd->msix_bar = vd->pba_bar = -1;
	for (unsigned int i = 0; i <= VIRTIO_PCI_CAP_PCI_CFG; i++)
		vd->bar_of[i] = -1;
	if (!(pci_read16(f, PCI_STATUS) & PCI_STATUS_CAP_LIST)) {
		printf("virtio: FAIL %s 00:%02x.%u has no capability list\n", vd->kind, f->dev, f->fn);
		return false;
	}
	unsigned int caps = 0;
	for (uint8_t at = pci_read8(f, PCI_CAPABILITY_LIST) & 0xfc; at; at = pci_read8(f, at + 1) & 0xfc) {
		if (at < 0x40 || ++caps > 48) {
			printf("virtio: FAIL %s capability list broken at 0x%x\n", vd->kind, at);
			return false;
		}
		uint8_t id = pci_read8(f, at);
		if (id == PCI_CAP_ID_VNDR) {
			uint8_t type = pci_read8(f, at + VIRTIO_PCI_CAP_CFG_TYPE);
			uint8_t bar = pci_read8(f, at + VIRTIO_PCI_CAP_BAR);
			uint32_t off = pci_read32(f, at + VIRTIO_PCI_CAP_OFFSET);
			uint32_t len = pci_read32(f, at + VIRTIO_PCI_CAP_LENGTH);
			printf("virtio: %s cap 0x%02x type %u bar %u offset 0x%x length 0x%x\n", vd->kind, at,
			       type, bar, off, len);
			/* The first of each type is the one to use (the spec's preference order). */
			if (type >= 1 && type <= VIRTIO_PCI_CAP_PCI_CFG && !vd->cap_of[type]) {
				vd->cap_of[type] = at;
				vd->bar_of[type] = type == VIRTIO_PCI_CAP_PCI_CFG ? -1 : bar;
				vd->off_of[type] = off;
				vd->len_of[type] = len;
				if (type == VIRTIO_PCI_CAP_NOTIFY_CFG)
					vd->notify_mult = pci_read32(f, at + VIRTIO_PCI_NOTIFY_CAP_MULT);
			}
		} else if (id == PCI_CAP_ID_MSIX) {
			uint16_t ctl = pci_read16(f, at + PCI_MSIX_FLAGS);
			uint32_t table = pci_read32(f, at + PCI_MSIX_TABLE);
			uint32_t pba = pci_read32(f, at + PCI_MSIX_PBA);
			vd->msix_cap = at;
			vd->msix_size = (ctl & PCI_MSIX_FLAGS_QSIZE) + 1;
			vd->msix_bar = table & PCI_MSIX_TABLE_BIR;
			vd->msix_off = table & PCI_MSIX_TABLE_OFFSET;
			vd->pba_bar = pba & PCI_MSIX_PBA_BIR;
			vd->pba_off = pba & PCI_MSIX_PBA_OFFSET;
			printf("virtio: %s cap 0x%02x msi-x %u vectors table bar %u+0x%x pba bar %u+0x%x\n",
			       vd->kind, at, vd->msix_size, vd->msix_bar, vd->msix_off, vd->pba_bar, vd->pba_off);
		} else {
			printf("virtio: %s cap 0x%02x id 0x%02x\n", vd->kind, at, id);
		}
	}
	bool ok = true;
	for (unsigned int t = VIRTIO_PCI_CAP_COMMON_CFG; t <= VIRTIO_PCI_CAP_PCI_CFG; t++) {
		if (!vd->cap_of[t] && !(t == VIRTIO_PCI_CAP_DEVICE_CFG && vd->id == VIRTIO_ID_RNG)) {
			printf("virtio: FAIL %s has no capability of type %u\n", vd->kind, t);
			ok = false;
		}
	}
	if (!vd->msix_cap || vd->msix_size < 2) {
		printf("virtio: FAIL %s has no MSI-X capability with 2 vectors\n", vd->kind);
		ok = false;
	}
	return ok;
}

static uint64_t struct_addr(const struct vdev *vd, int type)
{
	int bar = vd->bar_of[type];

	return bar < 0 || bar > 5 || !vd->bar_addr[bar] ? 0 : vd->bar_addr[bar] + vd->off_of[type];
}

bool vdev_map(struct vdev *vd, int move_bar, uint64_t move_to)
{
	const struct pci_fn *f = &vd->pci;
	bool used[6] = { false };

	for (unsigned int t = 1; t < VIRTIO_PCI_CAP_PCI_CFG; t++)
		if (vd->bar_of[t] >= 0 && vd->bar_of[t] <= 5)
			used[vd->bar_of[t]] = true;
	if (vd->msix_bar >= 0 && vd->msix_bar <= 5)
		used[vd->msix_bar] = true;
	if (vd->pba_bar >= 0 && vd->pba_bar <= 5)
		used[vd->pba_bar] = true;
	for (unsigned int b = 0; b < 6; b++) {
		uint64_t addr, size;
		bool is64;
		if (!used[b])
			continue;
		if (!pci_bar(f, b, &addr, &size, &is64)) {
			printf("virtio: FAIL %s BAR%u is not a memory BAR\n", vd->kind, b);
			return false;
		}
		printf("virtio: %s BAR%u at 0x%lx size 0x%lx %s\n", vd->kind, b, addr, size,
		       is64 ? "64-bit" : "32-bit");
		if ((int)b == move_bar && move_to % size) {
			printf("virtio: FAIL %s BAR%u of 0x%lx bytes cannot go to 0x%lx\n", vd->kind, b, size, move_to);
			return false;
		}
		if ((int)b == move_bar) {
			pci_bar_set(f, b, move_to, is64);
			uint64_t now, nsize;
			pci_bar(f, b, &now, &nsize, &is64);
			printf("virtio: %s BAR%u moved 0x%lx -> 0x%lx%s\n", vd->kind, b, addr, now,
			       now == move_to ? "" : " FAIL (did not take)");
			if (now != move_to)
				return false;
			addr = now;
		}
		if (addr + size > 0x100000000ULL) {
			if (!map_mmio(addr, size)) {
				printf("virtio: FAIL %s BAR%u: cannot map 0x%lx\n", vd->kind, b, addr);
				return false;
			}
			printf("virtio: %s BAR%u mapped above 4 GiB at 0x%lx\n", vd->kind, b, addr);
		}
		vd->bar_addr[b] = addr;
		if (is64)
			b++;
	}
	uint16_t cmd = pci_read16(f, PCI_COMMAND);
	pci_write16(f, PCI_COMMAND, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);

	vd->common = struct_addr(vd, VIRTIO_PCI_CAP_COMMON_CFG);
	vd->isr = struct_addr(vd, VIRTIO_PCI_CAP_ISR_CFG);
	vd->devcfg = struct_addr(vd, VIRTIO_PCI_CAP_DEVICE_CFG);
	vd->notify_base = struct_addr(vd, VIRTIO_PCI_CAP_NOTIFY_CFG);
	vd->msix_table = vd->msix_bar >= 0 && vd->msix_bar <= 5 && vd->bar_addr[vd->msix_bar] ?
			 vd->bar_addr[vd->msix_bar] + vd->msix_off : 0;
	if (!vd->common || !vd->isr || !vd->notify_base || !vd->msix_table) {
		printf("virtio: FAIL %s: a structure's BAR is not mapped\n", vd->kind);
		return false;
	}

	/* MSI-X on with the function masked while the table is written. */
	unsigned int cap = vd->msix_cap;
	uint16_t ctl = pci_read16(f, cap + PCI_MSIX_FLAGS);
	pci_write16(f, cap + PCI_MSIX_FLAGS, ctl | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	uint32_t dest = x2apic_id();
	for (unsigned int e = 0; e < 2; e++) {
		uint64_t ent = vd->msix_table + 16 * e;
		mmio_write32(ent + PCI_MSIX_ENTRY_LOWER_ADDR, 0xfee00000u | (dest & 0xff) << 12);
		mmio_write32(ent + PCI_MSIX_ENTRY_UPPER_ADDR, 0);
		mmio_write32(ent + PCI_MSIX_ENTRY_DATA, IRQ_VECTOR_BASE + 2 * vd->index + e);
		mmio_write32(ent + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);	/* unmasked */
	}
	pci_write16(f, cap + PCI_MSIX_FLAGS, (ctl | PCI_MSIX_FLAGS_ENABLE) & ~PCI_MSIX_FLAGS_MASKALL);
	uint32_t data = mmio_read32(vd->msix_table + 16 + PCI_MSIX_ENTRY_DATA);
	if (data != IRQ_VECTOR_BASE + 2 * vd->index + 1u) {
		printf("virtio: FAIL %s MSI-X table entry 1 data reads 0x%x\n", vd->kind, data);
		return false;
	}
	vd->buf = vbuf[vd->index];
	return true;
}

uint8_t vdev_status(const struct vdev *vd)
{
	return mmio_read8(COMMON8(vd, VIRTIO_PCI_COMMON_STATUS));
}

static void set_status(struct vdev *vd, uint8_t bits)
{
	mmio_write8(COMMON8(vd, VIRTIO_PCI_COMMON_STATUS), vdev_status(vd) | bits);
}

bool vdev_reset(struct vdev *vd)
{
	mmio_write8(COMMON8(vd, VIRTIO_PCI_COMMON_STATUS), 0);
	for (int i = 0; i < 100000; i++)
		if (!vdev_status(vd))
			return true;
	printf("virtio: FAIL %s device_status does not read 0 after reset (0x%x)\n", vd->kind,
	       vdev_status(vd));
	return false;
}

static uint64_t read_features(struct vdev *vd)
{
	uint64_t f = 0;

	for (uint32_t sel = 0; sel < 2; sel++) {
		mmio_write32(COMMON8(vd, VIRTIO_PCI_COMMON_DFSELECT), sel);
		f |= (uint64_t)mmio_read32(COMMON8(vd, VIRTIO_PCI_COMMON_DF)) << (32 * sel);
	}
	return f;
}

static void write_features(struct vdev *vd, uint64_t f)
{
	for (uint32_t sel = 0; sel < 2; sel++) {
		mmio_write32(COMMON8(vd, VIRTIO_PCI_COMMON_GFSELECT), sel);
		mmio_write32(COMMON8(vd, VIRTIO_PCI_COMMON_GF), (uint32_t)(f >> (32 * sel)));
	}
}

bool vdev_negotiate(struct vdev *vd, uint64_t want)
{
	if (!vdev_reset(vd))
		return false;
	set_status(vd, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	set_status(vd, VIRTIO_CONFIG_S_DRIVER);
	uint64_t offered = read_features(vd);
	if (!(offered & (1ULL << VIRTIO_F_VERSION_1))) {
		printf("virtio: FAIL %s does not offer VERSION_1 (0x%lx)\n", vd->kind, offered);
		return false;
	}
	vd->offered = offered;
	vd->features = offered & (want | 1ULL << VIRTIO_F_VERSION_1);
	vd->event_idx = vd->features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
	vd->indirect = vd->features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	write_features(vd, vd->features);
	set_status(vd, VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(vdev_status(vd) & VIRTIO_CONFIG_S_FEATURES_OK)) {
		printf("virtio: FAIL %s refused features 0x%lx\n", vd->kind, vd->features);
		return false;
	}

	uint16_t cfg_vec = 0;
	mmio_write16(COMMON8(vd, VIRTIO_PCI_COMMON_MSIX), cfg_vec);
	if (mmio_read16(COMMON8(vd, VIRTIO_PCI_COMMON_MSIX)) != cfg_vec) {
		printf("virtio: FAIL %s msix_config not accepted\n", vd->kind);
		return false;
	}
	return true;
}

bool vdev_queue(struct vdev *vd, struct vq *q, uint16_t index, uint8_t *mem, uint16_t vector,
		uint64_t desc_addr)
{
	uint16_t nq = mmio_read16(COMMON8(vd, VIRTIO_PCI_COMMON_NUMQ));
	mmio_write16(COMMON8(vd, VIRTIO_PCI_COMMON_Q_SELECT), index);
	uint16_t max = mmio_read16(COMMON8(vd, VIRTIO_PCI_COMMON_Q_SIZE));
	if (nq <= index || !max) {
		printf("virtio: FAIL %s num_queues %u, queue %u size %u\n", vd->kind, nq, index, max);
		return false;
	}
	memset(mem, 0, 4096);
	q->index = index;
	q->size = VQ_SIZE;
	while (q->size > max)
		q->size >>= 1;
	q->desc = (struct vring_desc *)mem;
	q->avail = (struct vring_avail *)(mem + 512);
	q->used = (struct vring_used *)(mem + 1024);
	q->indirect = (struct vring_desc *)(mem + 2048);
	q->avail_idx = q->last_used = 0;
	mmio_write16(COMMON8(vd, VIRTIO_PCI_COMMON_Q_SIZE), q->size);
	mmio_write16(COMMON8(vd, VIRTIO_PCI_COMMON_Q_MSIX), vector);
	if (mmio_read16(COMMON8(vd, VIRTIO_PCI_COMMON_Q_MSIX)) != vector) {
		printf("virtio: FAIL %s queue %u: queue_msix_vector not accepted\n", vd->kind, index);
		return false;
	}
	uint64_t d = desc_addr ? desc_addr : (uint64_t)q->desc;
	uint64_t a = (uint64_t)q->avail, u = (uint64_t)q->used;
	mmio_write32(COMMON8(vd, VIRTIO_PCI_COMMON_Q_DESCLO), (uint32_t)d);
	mmio_write32(COMMON8(vd, VIRTIO_PCI_COMMON_Q_DESCHI), (uint32_t)(d >> 32));
	mmio_write32(COMMON8(vd, VIRTIO_PCI_COMMON_Q_AVAILLO), (uint32_t)a);
	mmio_write32(COMMON8(vd, VIRTIO_PCI_COMMON_Q_AVAILHI), (uint32_t)(a >> 32));
	mmio_write32(COMMON8(vd, VIRTIO_PCI_COMMON_Q_USEDLO), (uint32_t)u);
	mmio_write32(COMMON8(vd, VIRTIO_PCI_COMMON_Q_USEDHI), (uint32_t)(u >> 32));
	uint16_t noff = mmio_read16(COMMON8(vd, VIRTIO_PCI_COMMON_Q_NOFF));
	q->notify = vd->notify_base + (uint64_t)noff * vd->notify_mult;
	if (vd->len_of[VIRTIO_PCI_CAP_NOTIFY_CFG] < (uint64_t)noff * vd->notify_mult + 2) {
		printf("virtio: FAIL %s queue notify offset %u beyond the notify structure\n", vd->kind, noff);
		return false;
	}
	mmio_write16(COMMON8(vd, VIRTIO_PCI_COMMON_Q_ENABLE), 1);
	return true;
}

bool vdev_driver_ok(struct vdev *vd)
{
	set_status(vd, VIRTIO_CONFIG_S_DRIVER_OK);
	uint8_t st = vdev_status(vd);
	if (st & VIRTIO_CONFIG_S_NEEDS_RESET || !(st & VIRTIO_CONFIG_S_DRIVER_OK)) {
		printf("virtio: FAIL %s status 0x%x after DRIVER_OK\n", vd->kind, st);
		return false;
	}
	return true;
}

bool vdev_init(struct vdev *vd, uint64_t want)
{
	if (!vdev_negotiate(vd, want) ||
	    !vdev_queue(vd, &vd->q, 0, vq_mem[vd->index], 1, vd->desc_override))
		return false;
	if (vd->desc_override) {
		set_status(vd, VIRTIO_CONFIG_S_DRIVER_OK);
		return true;			/* the caller wants to see the device refuse */
	}
	return vdev_driver_ok(vd);
}

/* ---- the queue ---- */

void vq_publish_on(struct vdev *vd, struct vq *q, uint16_t head)
{
	q->avail->ring[q->avail_idx & (q->size - 1)] = head;
	if (vd->event_idx)
		q->avail->ring[q->size] = q->last_used;	/* used_event: interrupt for the next one */
	barrier();
	q->avail_idx++;
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
}

void vq_kick_on(struct vdev *vd, struct vq *q, bool force)
{
	mb();				/* avail->idx visible before reading the device's wishes */
	bool want = true;
	if (vd->event_idx) {
		/* avail_event: the u16 after the used ring's last element */
		uint16_t ev = *(volatile uint16_t *)((uint8_t *)q->used + 4 + 8 * q->size);
		want = vring_need_event(ev, q->avail_idx, (uint16_t)(q->avail_idx - 1));
	} else {
		want = !(*(volatile uint16_t *)&q->used->flags & VRING_USED_F_NO_NOTIFY);
	}
	if (want || force)
		mmio_write16(q->notify, q->index);
}

void vq_publish(struct vdev *vd, uint16_t head) { vq_publish_on(vd, &vd->q, head); }
void vq_kick(struct vdev *vd, bool force) { vq_kick_on(vd, &vd->q, force); }

uint32_t vq_completions, vq_no_irq;

bool vq_wait(struct vdev *vd, uint32_t *len)
{
	struct vq *q = &vd->q;
	volatile uint32_t *irqs = &irq_count[2 * vd->index + 1];
	uint32_t before = *irqs;
	bool got = false;

	/*
	 * Bounded: ~1-2 s in the emulator for the used entry, a tenth of that
	 * for the interrupt, which may follow it a little.
	 */
	__asm__ volatile("sti");
	for (int i = 0; i < 1000000 && !got; i++) {
		got = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) != q->last_used;
		cpu_relax();
	}
	for (int i = 0; got && i < 100000 && *irqs == before; i++)
		cpu_relax();
	__asm__ volatile("cli");
	if (!got)
		return false;
	struct vring_used_elem e = q->used->ring[q->last_used & (q->size - 1)];
	q->last_used++;
	vq_completions++;
	vq_no_irq += *irqs == before;
	if (len)
		*len = e.len;
	return true;
}

/* ---- devices ---- */

int blk_request(struct vdev *vd, uint32_t type, uint64_t sector, void *data, uint32_t len,
		bool use_indirect)
{
	struct vq *q = &vd->q;
	uint8_t *mem = (uint8_t *)q->desc;
	struct virtio_blk_outhdr *hdr = (void *)(mem + 3072);
	volatile uint8_t *status = mem + 3088;
	struct vring_desc *d = use_indirect && vd->indirect ? q->indirect : q->desc;
	uint16_t n = 0;

	hdr->type = type;
	hdr->ioprio = 0;
	hdr->sector = sector;
	*status = 0xee;
	d[n] = (struct vring_desc){ (uint64_t)hdr, sizeof(*hdr), VRING_DESC_F_NEXT, (uint16_t)(n + 1) };
	n++;
	if (len) {
		uint16_t wr = type == VIRTIO_BLK_T_OUT ? 0 : VRING_DESC_F_WRITE;
		d[n] = (struct vring_desc){ (uint64_t)data, len, wr | VRING_DESC_F_NEXT, (uint16_t)(n + 1) };
		n++;
	}
	d[n] = (struct vring_desc){ (uint64_t)status, 1, VRING_DESC_F_WRITE, 0 };
	n++;
	if (d == q->indirect)
		q->desc[0] = (struct vring_desc){ (uint64_t)q->indirect, n * 16u, VRING_DESC_F_INDIRECT, 0 };
	vq_publish(vd, 0);
	vq_kick(vd, false);
	uint32_t got;
	if (!vq_wait(vd, &got))
		return -1;
	return *status;
}

int rng_read(struct vdev *vd, void *data, uint32_t len)
{
	struct vq *q = &vd->q;

	q->desc[0] = (struct vring_desc){ (uint64_t)data, len, VRING_DESC_F_WRITE, 0 };
	vq_publish(vd, 0);
	vq_kick(vd, false);
	uint32_t got;
	if (!vq_wait(vd, &got))
		return -1;
	return (int)got;
}

const char *blk_status_name(int status)
{
	switch (status) {
	case VIRTIO_BLK_S_OK: return "OK";
	case VIRTIO_BLK_S_IOERR: return "IOERR";
	case VIRTIO_BLK_S_UNSUPP: return "UNSUPP";
	case -1: return "TIMEOUT";
	}
	return "BAD";
}

void print_hex(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
}
