/*
 * virtio_hostile: malformed rings fed to the first virtio-blk device. After
 * each, the device must set DEVICE_NEEDS_RESET (with a config interrupt);
 * the guest resets it (device_status 0, read back until 0) and sets it up
 * again. Then one good read on blk and 32 bytes from virtio-rng (the other
 * device kept working). Lines:
 *   hostile: NAME: needs-reset config-irq=N        (per case; else "hostile: FAIL NAME: ...")
 *   hostile: blk read ok hex=... sum=0x...
 *   hostile: rng 32 bytes HEX
 *   hostile: all survived                          (else "hostile: N failures")
 */
#include "vdrv.h"

#define HOSTILE_FEATURES (1ULL << VIRTIO_RING_F_INDIRECT_DESC | 1ULL << VIRTIO_BLK_F_FLUSH)
#define OUTSIDE_RAM	0xfffffffff000ULL

static int failures;
static struct vdev blk, rng;
static bool have_rng;
static uint64_t ram_end;			/* end of the RAM range holding 1 MiB */

#define fail(...) do { printf("hostile: FAIL " __VA_ARGS__); failures++; } while (0)

/* The request header and status byte live in the queue's page (as blk_request keeps them). */
static uint64_t hdr_addr(void) { return (uint64_t)blk.q.desc + 3072; }
static uint64_t status_addr(void) { return (uint64_t)blk.q.desc + 3088; }

static void set_hdr(uint32_t type)
{
	struct virtio_blk_outhdr *h = (void *)hdr_addr();

	h->type = type;
	h->ioprio = 0;
	h->sector = 0;
}

static struct vring_desc desc(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	return (struct vring_desc){ addr, len, flags, next };
}

/* A read request of sector 0 whose data buffer is (addr, len). */
static void read_chain(struct vring_desc *d, uint64_t addr, uint32_t len)
{
	set_hdr(VIRTIO_BLK_T_IN);
	d[0] = desc(hdr_addr(), 16, VRING_DESC_F_NEXT, 1);
	d[1] = desc(addr, len, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	d[2] = desc(status_addr(), 1, VRING_DESC_F_WRITE, 0);
}

static void c_loop(struct vq *q)
{
	read_chain(q->desc, (uint64_t)blk.buf, 512);
	q->desc[2].flags |= VRING_DESC_F_NEXT;		/* 0 -> 1 -> 2 -> 1 ...: writable ones only */
	q->desc[2].next = 1;
	vq_publish(&blk, 0);
}

static void c_head(struct vq *q)
{
	read_chain(q->desc, (uint64_t)blk.buf, 512);
	vq_publish(&blk, q->size);			/* head == size */
}

static void c_next(struct vq *q)
{
	read_chain(q->desc, (uint64_t)blk.buf, 512);
	q->desc[1].next = (uint16_t)(q->size + 3);
	vq_publish(&blk, 0);
}

static void c_indirect_len(struct vq *q)
{
	read_chain(q->indirect, (uint64_t)blk.buf, 512);
	q->desc[0] = desc((uint64_t)q->indirect, 3 * 16 + 8, VRING_DESC_F_INDIRECT, 0);
	vq_publish(&blk, 0);
}

static void c_indirect_nested(struct vq *q)
{
	read_chain(q->indirect, (uint64_t)blk.buf, 512);
	q->indirect[3] = desc((uint64_t)q->indirect, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	q->indirect[2].flags |= VRING_DESC_F_NEXT;
	q->indirect[2].next = 3;
	q->desc[0] = desc((uint64_t)q->indirect, 4 * 16, VRING_DESC_F_INDIRECT, 0);
	vq_publish(&blk, 0);
}

static void c_indirect_outside(struct vq *q)
{
	q->desc[0] = desc(OUTSIDE_RAM, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	vq_publish(&blk, 0);
}

static void c_outside(struct vq *q)
{
	read_chain(q->desc, OUTSIDE_RAM, 512);
	vq_publish(&blk, 0);
}

static void c_ram_end(struct vq *q)
{
	read_chain(q->desc, ram_end - 256, 4096);	/* starts in RAM, ends beyond it */
	vq_publish(&blk, 0);
}

static void c_wrap(struct vq *q)
{
	read_chain(q->desc, 0xffffffffffffff00ULL, 0x200);	/* addr + len wraps around 2^64 */
	vq_publish(&blk, 0);
}

static void c_avail_jump(struct vq *q)
{
	read_chain(q->desc, (uint64_t)blk.buf, 512);
	q->avail->ring[0] = 0;
	q->avail_idx = (uint16_t)(q->size + 1);		/* more available than the ring holds */
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
}

static void c_no_status(struct vq *q)
{
	set_hdr(VIRTIO_BLK_T_IN);
	q->desc[0] = desc(hdr_addr(), 16, 0, 0);	/* the header alone: nowhere to put a status */
	vq_publish(&blk, 0);
}

static void c_order(struct vq *q)
{
	set_hdr(VIRTIO_BLK_T_IN);
	q->desc[0] = desc(status_addr(), 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	q->desc[1] = desc(hdr_addr(), 16, VRING_DESC_F_NEXT, 2);	/* readable after writable */
	q->desc[2] = desc((uint64_t)blk.buf, 512, VRING_DESC_F_WRITE, 0);
	vq_publish(&blk, 0);
}

static void c_rings_outside(struct vq *q)
{
	(void)q;				/* set up in run_case: the queue's address itself */
}

struct hostile_case {
	const char *name;
	void (*craft)(struct vq *q);
};

static const struct hostile_case cases[] = {
	{ "descriptor-loop", c_loop },
	{ "head-out-of-range", c_head },
	{ "next-out-of-range", c_next },
	{ "indirect-len-not-16n", c_indirect_len },
	{ "indirect-nested", c_indirect_nested },
	{ "indirect-table-outside-ram", c_indirect_outside },
	{ "buffer-outside-ram", c_outside },
	{ "buffer-crossing-ram-end", c_ram_end },
	{ "buffer-address-wraps", c_wrap },
	{ "avail-idx-jump", c_avail_jump },
	{ "no-status-byte", c_no_status },
	{ "writable-before-readable", c_order },
	{ "rings-outside-ram", c_rings_outside },
};

/*
 * Waits (bounded, interrupts on) for DEVICE_NEEDS_RESET, then a little for
 * its config interrupt; the status last read.
 */
static uint8_t wait_needs_reset(volatile uint32_t *cfg_irqs, uint32_t before)
{
	uint8_t st = vdev_status(&blk);

	__asm__ volatile("sti");
	for (int i = 0; i < 2000 && !(st & VIRTIO_CONFIG_S_NEEDS_RESET); i++) {
		for (int j = 0; j < 200; j++)
			cpu_relax();
		st = vdev_status(&blk);
	}
	for (int i = 0; i < 200000 && st & VIRTIO_CONFIG_S_NEEDS_RESET && *cfg_irqs == before; i++)
		cpu_relax();
	__asm__ volatile("cli");
	return st;
}

static void run_case(const struct hostile_case *c)
{
	volatile uint32_t *cfg_irqs = &irq_count[2 * blk.index];
	uint32_t before = *cfg_irqs;

	blk.desc_override = c->craft == c_rings_outside ? OUTSIDE_RAM : 0;
	bool ok = vdev_init(&blk, HOSTILE_FEATURES);
	blk.desc_override = 0;
	if (!ok) {
		fail("%s: set-up failed\n", c->name);
		return;
	}
	if ((c->craft == c_indirect_len || c->craft == c_indirect_nested || c->craft == c_indirect_outside)
	    && !blk.indirect) {
		fail("%s: INDIRECT_DESC not offered\n", c->name);
		vdev_reset(&blk);
		return;
	}
	c->craft(&blk.q);
	vq_kick(&blk, true);
	uint8_t st = wait_needs_reset(cfg_irqs, before);
	if (!(st & VIRTIO_CONFIG_S_NEEDS_RESET))
		fail("%s: status 0x%x, no DEVICE_NEEDS_RESET (used idx %u)\n", c->name, st,
		     __atomic_load_n(&blk.q.used->idx, __ATOMIC_ACQUIRE));
	else
		printf("hostile: %s: needs-reset config-irq=%u\n", c->name, *cfg_irqs - before);
	if (!vdev_reset(&blk))
		failures++;
}

static bool find_devices(void)
{
	struct pci_fn fns[PCI_MAX_FNS];
	unsigned int mismatches, n, nr = 0;
	bool have_blk = false;

	if (!pci_ecam_init())
		return false;
	n = pci_scan(fns, PCI_MAX_FNS, &mismatches);
	for (unsigned int i = 0; i < n; i++) {
		struct vdev *vd = NULL;
		if (fns[i].vendor != PCI_VENDOR_VIRTIO)
			continue;
		if (fns[i].device == PCI_DEVICE_VIRTIO_BASE + VIRTIO_ID_BLOCK && !have_blk)
			vd = &blk;
		else if (fns[i].device == PCI_DEVICE_VIRTIO_BASE + VIRTIO_ID_RNG && !have_rng)
			vd = &rng;
		if (!vd || !vdev_probe(vd, &fns[i], nr) || !vdev_map(vd, -1, 0))
			continue;
		nr++;
		if (vd == &blk)
			have_blk = true;
		else
			have_rng = true;
	}
	if (!have_blk)
		print("hostile: FAIL no virtio-blk device\n");
	return have_blk;
}

void guest_main(void)
{
	for (unsigned int i = 0; i < boot.nr_mem; i++)
		if (boot.mem[i].type == 1 && boot.mem[i].addr <= 0x100000 &&
		    0x100000 < boot.mem[i].addr + boot.mem[i].size)
			ram_end = boot.mem[i].addr + boot.mem[i].size;
	if (!irq_init()) {
		fail("no x2APIC\n");
		return;
	}
	if (!find_devices()) {
		failures++;
		goto out;
	}
	if (!have_rng)
		fail("no virtio-rng device\n");
	/* rng first, so that it is live while blk is being attacked. */
	if (have_rng && !vdev_init(&rng, 0))
		failures++;
	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);

	/* The same device serves a good request after all that. */
	if (!vdev_init(&blk, HOSTILE_FEATURES)) {
		failures++;
	} else {
		uint8_t *b = blk.buf + 1024;
		memset(b, 0xcc, 512);
		int st = blk_request(&blk, VIRTIO_BLK_T_IN, 0, b, 512, false);
		if (st != VIRTIO_BLK_S_OK) {
			fail("blk read after the hostile rings: %s\n", blk_status_name(st));
		} else {
			uint32_t s = 0;
			for (unsigned int i = 0; i < 512; i++)
				s += b[i];
			print("hostile: blk read ok hex=");
			print_hex(b, 16);
			printf(" sum=0x%x\n", s);
		}
		vdev_reset(&blk);
	}
	if (have_rng && vdev_status(&rng) & VIRTIO_CONFIG_S_DRIVER_OK) {
		int got = rng_read(&rng, rng.buf, 32);
		bool zero = true;
		for (int i = 0; i < got; i++)
			zero &= !rng.buf[i];
		if (got <= 0 || zero) {
			fail("rng after the hostile rings: %d bytes%s\n", got, zero ? ", all zero" : "");
		} else {
			printf("hostile: rng %d bytes ", got);
			print_hex(rng.buf, (size_t)got);
			print("\n");
		}
		vdev_reset(&rng);
	}
out:
	if (failures)
		printf("hostile: %d failures\n", failures);
	else
		print("hostile: all survived\n");
}
