/*
 * virtio: PCI through ECAM (found in the MCFG table, cross-checked with
 * 0xcf8/0xcfc), then every virtio-blk and virtio-rng device with MSI-X
 * completions. The first blk device's BARs are moved into the 32-bit window;
 * the others stay where bootvm put them (mapped above 4 GiB if there).
 *
 * Command line: event_idx (negotiate VIRTIO_RING_F_EVENT_IDX),
 * sector=N (the sector the write test uses, default 7).
 *
 * Lines the host checks (see tests/e2e/guests.py, group virtio):
 *   pci: 00:DD.F VVVV:DDDD class CCCCCC header HH
 *   virtio: blk 00:DD.F id=SERIAL capacity=N ro=0|1 ok
 *   virtio: blk 00:DD.F sector S hex=32 hex digits sum=0xSUM
 *   virtio: blk 00:DD.F write+flush ok sector=N         (read-write disks)
 *   virtio: blk 00:DD.F write status=IOERR              (read-only disks)
 *   virtio: rng 32 bytes HEX
 *   virtio: msix interrupts=N completions=M without-irq=K
 *   virtio: all ok                                      (else "virtio: N failures")
 */
#include "vdrv.h"

#define MOVE_TO		0xc8000000ULL		/* inside the 32-bit window 0xc0000000-0xdfffffff */
#define READ_SECTORS	4

static int failures;
static struct vdev vdevs[VDEV_MAX];
static uint8_t data[READ_SECTORS * 512] __attribute__((aligned(4096)));
static uint8_t check[512] __attribute__((aligned(512)));

#define fail(...) do { printf("virtio: FAIL " __VA_ARGS__); failures++; } while (0)

static unsigned long cmdline_num(const char *key, unsigned long def)
{
	size_t len;
	const char *v = cmdline_get(key, &len);
	unsigned long n = 0;

	if (!v || !len)
		return def;
	for (size_t i = 0; i < len && v[i] >= '0' && v[i] <= '9'; i++)
		n = n * 10 + (unsigned long)(v[i] - '0');
	return n;
}

static uint8_t pattern(uint64_t sector, unsigned int i)
{
	return (uint8_t)(i * 31 + sector * 7 + 0x5a);
}

static uint32_t sum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += p[i];
	return s;
}

/* The same dword through the VIRTIO_PCI_CAP_PCI_CFG window and through the BAR. */
static void check_pci_cfg_window(struct vdev *vd)
{
	unsigned int cap = vd->cap_of[VIRTIO_PCI_CAP_PCI_CFG];
	uint32_t off = vd->off_of[VIRTIO_PCI_CAP_COMMON_CFG] + VIRTIO_PCI_COMMON_MSIX;

	mmio_write8(vd->pci.cfg + cap + VIRTIO_PCI_CAP_BAR, (uint8_t)vd->bar_of[VIRTIO_PCI_CAP_COMMON_CFG]);
	pci_write32(&vd->pci, cap + VIRTIO_PCI_CAP_OFFSET, off);
	pci_write32(&vd->pci, cap + VIRTIO_PCI_CAP_LENGTH, 4);
	uint32_t via_cfg = pci_read32(&vd->pci, cap + 16);
	uint32_t via_bar = mmio_read32(vd->common + VIRTIO_PCI_COMMON_MSIX);
	if (via_cfg != via_bar)
		fail("%s pci_cfg window reads 0x%x, the BAR 0x%x\n", vd->kind, via_cfg, via_bar);
	else
		printf("virtio: %s pci_cfg window ok (0x%x)\n", vd->kind, via_cfg);
}

static uint64_t blk_capacity(struct vdev *vd)
{
	uint64_t cap;
	uint8_t gen;
	int tries = 0;

	do {
		gen = mmio_read8(vd->common + VIRTIO_PCI_COMMON_CFGGENERATION);
		cap = mmio_read32(vdev_cfg(vd, 0)) | (uint64_t)mmio_read32(vdev_cfg(vd, 4)) << 32;
	} while (gen != mmio_read8(vd->common + VIRTIO_PCI_COMMON_CFGGENERATION) && ++tries < 10);
	return cap;
}

static void test_blk(struct vdev *vd, bool event_idx)
{
	uint64_t want = 1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_BLK_F_RO |
			1ULL << VIRTIO_RING_F_INDIRECT_DESC | (event_idx ? 1ULL << VIRTIO_RING_F_EVENT_IDX : 0);
	const struct pci_fn *f = &vd->pci;

	if (!vdev_init(vd, want)) {
		failures++;
		return;
	}
	bool ro = vd->features & (1ULL << VIRTIO_BLK_F_RO);
	printf("virtio: blk 00:%02x.%u features=0x%lx event_idx=%u indirect=%u flush=%u\n", f->dev, f->fn,
	       vd->features, vd->event_idx, vd->indirect, !!(vd->features & (1ULL << VIRTIO_BLK_F_FLUSH)));
	if (event_idx && !vd->event_idx)
		fail("blk does not offer EVENT_IDX\n");
	uint64_t capacity = blk_capacity(vd);

	char id[VIRTIO_BLK_ID_BYTES + 1];
	memset(vd->buf, 0, VIRTIO_BLK_ID_BYTES);
	int st = blk_request(vd, VIRTIO_BLK_T_GET_ID, 0, vd->buf, VIRTIO_BLK_ID_BYTES, false);
	memcpy(id, vd->buf, VIRTIO_BLK_ID_BYTES);
	id[VIRTIO_BLK_ID_BYTES] = 0;
	if (st != VIRTIO_BLK_S_OK)
		fail("blk 00:%02x.%u GET_ID status %s\n", f->dev, f->fn, blk_status_name(st));
	else
		printf("virtio: blk 00:%02x.%u id=%s capacity=%lu ro=%u ok\n", f->dev, f->fn, id, capacity, ro);

	/* Sectors 0..3 in one request, through an indirect table when negotiated. */
	memset(data, 0xcc, sizeof(data));
	st = blk_request(vd, VIRTIO_BLK_T_IN, 0, data, sizeof(data), true);
	if (st != VIRTIO_BLK_S_OK)
		fail("blk 00:%02x.%u read status %s\n", f->dev, f->fn, blk_status_name(st));
	for (unsigned int s = 0; st == VIRTIO_BLK_S_OK && s < READ_SECTORS; s++) {
		printf("virtio: blk 00:%02x.%u sector %u hex=", f->dev, f->fn, s);
		print_hex(data + 512 * s, 16);
		printf(" sum=0x%x\n", sum(data + 512 * s, 512));
	}

	/* Past the end: the device must refuse, not read beyond the image. */
	st = blk_request(vd, VIRTIO_BLK_T_IN, capacity, data, 512, false);
	printf("virtio: blk 00:%02x.%u read past the end status=%s\n", f->dev, f->fn, blk_status_name(st));
	if (st != VIRTIO_BLK_S_IOERR)
		fail("blk read past the end: %s\n", blk_status_name(st));

	uint64_t sector = cmdline_num("sector", 7);
	for (unsigned int i = 0; i < 512; i++)
		data[i] = pattern(sector, i);
	st = blk_request(vd, VIRTIO_BLK_T_OUT, sector, data, 512, false);
	if (ro) {
		printf("virtio: blk 00:%02x.%u write status=%s\n", f->dev, f->fn, blk_status_name(st));
		if (st != VIRTIO_BLK_S_IOERR)
			fail("blk write to a read-only disk: %s\n", blk_status_name(st));
		return;
	}
	if (st != VIRTIO_BLK_S_OK) {
		fail("blk 00:%02x.%u write status %s\n", f->dev, f->fn, blk_status_name(st));
		return;
	}
	st = blk_request(vd, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
	if (st != VIRTIO_BLK_S_OK) {
		fail("blk 00:%02x.%u flush status %s\n", f->dev, f->fn, blk_status_name(st));
		return;
	}
	memset(check, 0, sizeof(check));
	st = blk_request(vd, VIRTIO_BLK_T_IN, sector, check, 512, false);
	if (st != VIRTIO_BLK_S_OK || memcmp(check, data, 512))
		fail("blk 00:%02x.%u read back of sector %lu: status %s, %s\n", f->dev, f->fn, sector,
		     blk_status_name(st), memcmp(check, data, 512) ? "differs" : "same");
	else
		printf("virtio: blk 00:%02x.%u write+flush ok sector=%lu\n", f->dev, f->fn, sector);
}

static void test_rng(struct vdev *vd, bool event_idx)
{
	uint8_t *b = vd->buf;
	uint32_t have = 0;

	if (!vdev_init(vd, event_idx ? 1ULL << VIRTIO_RING_F_EVENT_IDX : 0)) {
		failures++;
		return;
	}
	memset(b, 0, 32);
	for (int tries = 0; have < 32 && tries < 8; tries++) {
		int got = rng_read(vd, b + have, 32 - have);
		if (got < 0 || (uint32_t)got > 32 - have) {
			fail("rng request %s (%d)\n", got < 0 ? "timed out" : "overran", got);
			return;
		}
		have += (uint32_t)got;
	}
	bool zero = true;
	for (unsigned int i = 0; i < 32; i++)
		zero &= !b[i];
	printf("virtio: rng %u bytes ", have);
	print_hex(b, have);
	print("\n");
	if (have != 32 || zero)
		fail("rng gave %u bytes%s\n", have, zero ? ", all zero" : "");
}

void guest_main(void)
{
	struct pci_fn fns[PCI_MAX_FNS];
	unsigned int mismatches, nr_vdev = 0;
	bool event_idx = cmdline_has("event_idx");
	bool moved = false;

	if (!irq_init()) {
		fail("no x2APIC\n");
		return;
	}
	if (!pci_ecam_init()) {
		failures++;
		goto out;
	}
	unsigned int n = pci_scan(fns, PCI_MAX_FNS, &mismatches);
	printf("pci: %u functions, 0xcf8 %s\n", n, mismatches ? "disagrees" : "agrees");
	failures += mismatches;
	if (!n || fns[0].dev != 0 || fns[0].class >> 8 != 0x0600)
		fail("no host bridge (class 0600) at 00:00.0\n");

	for (unsigned int i = 0; i < n && nr_vdev < VDEV_MAX; i++) {
		if (fns[i].vendor != PCI_VENDOR_VIRTIO || fns[i].device < PCI_DEVICE_VIRTIO_BASE)
			continue;
		struct vdev *vd = &vdevs[nr_vdev];
		if (!vdev_probe(vd, &fns[i], nr_vdev)) {
			failures++;
			continue;
		}
		int move = -1;
		if (vd->id == VIRTIO_ID_BLOCK && !moved) {
			move = vd->bar_of[VIRTIO_PCI_CAP_COMMON_CFG];
			moved = true;
		}
		if (!vdev_map(vd, move, MOVE_TO)) {
			failures++;
			continue;
		}
		nr_vdev++;
	}
	if (nr_vdev)
		check_pci_cfg_window(&vdevs[0]);
	for (unsigned int i = 0; i < nr_vdev; i++) {
		if (vdevs[i].id == VIRTIO_ID_BLOCK)
			test_blk(&vdevs[i], event_idx);
		else if (vdevs[i].id == VIRTIO_ID_RNG)
			test_rng(&vdevs[i], event_idx);
	}
	uint32_t irqs = 0;
	for (unsigned int i = 0; i < 2 * VDEV_MAX; i++)
		irqs += irq_count[i];
	printf("virtio: msix interrupts=%u completions=%u without-irq=%u\n", irqs, vq_completions, vq_no_irq);
	if (vq_no_irq)
		fail("%u completions came without their MSI-X interrupt\n", vq_no_irq);
	for (unsigned int i = 0; i < nr_vdev; i++)
		vdev_reset(&vdevs[i]);
out:
	if (failures)
		printf("virtio: %d failures\n", failures);
	else
		print("virtio: all ok\n");
}
