#include "virtio/pci.h"

#include <errno.h>
#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pci/msix.h"
#include "pci/pci.h"
#include "util/log.h"
#include "virtio/virtio.h"
#include "vmm/irq.h"

#define VIRTIO_PCI_VENDOR_ID	0x1af4
#define VIRTIO_PCI_DEVICE_BASE	0x1040

/* The common configuration through queue_reset (virtio 1.2): later fields read 0. */
#define VIRTIO_PCI_COMMON_LEN	(VIRTIO_PCI_COMMON_Q_RESET + 2)

/* Status bits the driver may set; DEVICE_NEEDS_RESET is the device's. */
#define VIRTIO_STATUS_DRIVER_BITS (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | \
				   VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FEATURES_OK | \
				   VIRTIO_CONFIG_S_FAILED)

struct virtio_pci {
	struct virtio_dev *vdev;
	struct pci_dev *pci;
	struct msix msix;
	int vm_fd;

	/*
	 * Serialises device_status changes (reset, activate) and common
	 * configuration writes against them; taken before vdev->lock.
	 */
	pthread_mutex_t status_lock;

	/* Under vdev->lock: transport registers that struct virtio_dev does not hold. */
	uint32_t dfselect, gfselect;
	uint16_t queue_select;
	uint64_t driver_features;	/* as written, before FEATURES_OK */

	/* Under the host lock (BAR map callbacks). */
	bool bar_mapped;
	uint64_t bar_addr;
	bool ioeventfd[VIRTIO_MAX_QUEUES];
};

/* ---- interrupts ---- */

static void virtio_pci_notify(struct virtio_dev *vdev, int queue)
{
	struct virtio_pci *vp = vdev->transport;
	uint16_t vector;

	if (queue < -1 || queue >= (int)vdev->nr_queues)
		return;
	pthread_mutex_lock(&vdev->lock);
	vector = queue < 0 ? vdev->config_msix_vector : vdev->queues[queue].msix_vector;
	if (msix_enabled(&vp->msix)) {
		pthread_mutex_unlock(&vdev->lock);
		if (vector != VIRTIO_MSI_NO_VECTOR)
			msix_notify(&vp->msix, vector);
		return;
	}
	/* ISR and line together under the lock, so an ISR read cannot lose this. */
	vdev->isr |= queue < 0 ? VIRTIO_PCI_ISR_CONFIG : 1;
	pci_dev_set_intx(vp->pci, 1);
	pthread_mutex_unlock(&vdev->lock);
}

static uint8_t virtio_pci_isr_read(struct virtio_pci *vp)
{
	struct virtio_dev *vdev = vp->vdev;
	uint8_t isr;

	pthread_mutex_lock(&vdev->lock);
	isr = vdev->isr;
	vdev->isr = 0;
	pci_dev_set_intx(vp->pci, 0);
	pthread_mutex_unlock(&vdev->lock);
	return isr;
}

/* ---- notifications: ioeventfd while BAR 0 is mapped, else the MMIO fallback ---- */

static void virtio_pci_ioeventfds(struct virtio_pci *vp, bool assign)
{
	struct virtio_dev *vdev = vp->vdev;

	if (vp->vm_fd < 0)
		return;
	for (unsigned int q = 0; q < vdev->nr_queues; q++) {
		uint64_t addr = vp->bar_addr + VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT;

		if (vp->ioeventfd[q] == assign)
			continue;
		/* On failure the MMIO exit still reaches virtio_pci_kick(): slower, not wrong. */
		if (irq_ioeventfd(vp->vm_fd, addr, 0, false, vdev->queues[q].kick_fd, assign) == 0)
			vp->ioeventfd[q] = assign;
	}
}

static void virtio_pci_bar_map(void *opaque, unsigned int bar, bool mapped, uint64_t addr)
{
	struct virtio_pci *vp = opaque;

	(void)bar;
	if (!mapped) {
		virtio_pci_ioeventfds(vp, false);
		vp->bar_mapped = false;
		return;
	}
	vp->bar_mapped = true;
	vp->bar_addr = addr;
	virtio_pci_ioeventfds(vp, true);
}

static void virtio_pci_kick(struct virtio_pci *vp, uint64_t off)
{
	struct virtio_dev *vdev = vp->vdev;
	uint64_t q = off / VIRTIO_PCI_NOTIFY_MULT;
	uint64_t one = 1;

	if (q >= vdev->nr_queues)
		return;
	/* EAGAIN: the counter is saturated, the device has a kick pending anyway. */
	if (write(vdev->queues[q].kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("%s: kick of queue %u: %s", vdev->name, (unsigned int)q, strerror(errno));
}

/* ---- common configuration ---- */

static struct virtio_queue *virtio_pci_queue_locked(struct virtio_pci *vp)
{
	struct virtio_dev *vdev = vp->vdev;

	return vp->queue_select < vdev->nr_queues ? &vdev->queues[vp->queue_select] : NULL;
}

static uint32_t virtio_pci_common_read_locked(struct virtio_pci *vp, uint64_t off,
					      unsigned int size)
{
	struct virtio_dev *vdev = vp->vdev;
	struct virtio_queue *q = virtio_pci_queue_locked(vp);
	uint8_t c[VIRTIO_PCI_COMMON_LEN] = { 0 };
	uint32_t v = 0;

	uint32_t dfeat = vp->dfselect == 0 ? (uint32_t)vdev->device_features :
			 vp->dfselect == 1 ? (uint32_t)(vdev->device_features >> 32) : 0;
	uint32_t gfeat = vp->gfselect == 0 ? (uint32_t)vp->driver_features :
			 vp->gfselect == 1 ? (uint32_t)(vp->driver_features >> 32) : 0;
	uint16_t w;

	memcpy(c + VIRTIO_PCI_COMMON_DFSELECT, &vp->dfselect, 4);
	memcpy(c + VIRTIO_PCI_COMMON_DF, &dfeat, 4);
	memcpy(c + VIRTIO_PCI_COMMON_GFSELECT, &vp->gfselect, 4);
	memcpy(c + VIRTIO_PCI_COMMON_GF, &gfeat, 4);
	memcpy(c + VIRTIO_PCI_COMMON_MSIX, &vdev->config_msix_vector, 2);
	w = (uint16_t)vdev->nr_queues;
	memcpy(c + VIRTIO_PCI_COMMON_NUMQ, &w, 2);
	c[VIRTIO_PCI_COMMON_STATUS] = vdev->status;
	c[VIRTIO_PCI_COMMON_CFGGENERATION] = (uint8_t)vdev->config_generation;
	memcpy(c + VIRTIO_PCI_COMMON_Q_SELECT, &vp->queue_select, 2);
	if (q) {
		uint32_t lo;

		memcpy(c + VIRTIO_PCI_COMMON_Q_SIZE, &q->size, 2);
		memcpy(c + VIRTIO_PCI_COMMON_Q_MSIX, &q->msix_vector, 2);
		w = q->ready;
		memcpy(c + VIRTIO_PCI_COMMON_Q_ENABLE, &w, 2);
		memcpy(c + VIRTIO_PCI_COMMON_Q_NOFF, &vp->queue_select, 2);
		lo = (uint32_t)q->desc;
		memcpy(c + VIRTIO_PCI_COMMON_Q_DESCLO, &lo, 4);
		lo = (uint32_t)(q->desc >> 32);
		memcpy(c + VIRTIO_PCI_COMMON_Q_DESCHI, &lo, 4);
		lo = (uint32_t)q->avail;
		memcpy(c + VIRTIO_PCI_COMMON_Q_AVAILLO, &lo, 4);
		lo = (uint32_t)(q->avail >> 32);
		memcpy(c + VIRTIO_PCI_COMMON_Q_AVAILHI, &lo, 4);
		lo = (uint32_t)q->used;
		memcpy(c + VIRTIO_PCI_COMMON_Q_USEDLO, &lo, 4);
		lo = (uint32_t)(q->used >> 32);
		memcpy(c + VIRTIO_PCI_COMMON_Q_USEDHI, &lo, 4);
	}
	if (off < sizeof(c) && sizeof(c) - off >= size && size <= 4)
		memcpy(&v, c + off, size);
	return v;
}

/* A 64-bit ring address written in two 32-bit halves. */
static void virtio_pci_set_half(uint64_t *addr, bool high, uint32_t v)
{
	if (high)
		*addr = (*addr & 0xffffffffULL) | (uint64_t)v << 32;
	else
		*addr = (*addr & ~0xffffffffULL) | v;
}

/*
 * A write to the common configuration other than device_status. Only whole
 * fields count: a write of the wrong size or offset is ignored. Returns why
 * the device must be failed (after the lock is dropped), or NULL.
 */
static const char *virtio_pci_common_write_locked(struct virtio_pci *vp, uint64_t off,
						  unsigned int size, uint32_t v)
{
	struct virtio_dev *vdev = vp->vdev;
	struct virtio_queue *q = virtio_pci_queue_locked(vp);
	bool queue_ro = !q || q->ready || (vdev->status & VIRTIO_CONFIG_S_DRIVER_OK);
	unsigned int nr_vectors = vp->msix.nr;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		if (size == 4)
			vp->dfselect = v;
		break;
	case VIRTIO_PCI_COMMON_GFSELECT:
		if (size == 4)
			vp->gfselect = v;
		break;
	case VIRTIO_PCI_COMMON_GF:
		if (size != 4 || (vdev->status & VIRTIO_CONFIG_S_FEATURES_OK) || vp->gfselect > 1)
			break;
		virtio_pci_set_half(&vp->driver_features, vp->gfselect == 1, v);
		break;
	case VIRTIO_PCI_COMMON_MSIX:
		if (size == 2)
			vdev->config_msix_vector = v < nr_vectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		break;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		if (size == 2)
			vp->queue_select = (uint16_t)v;
		break;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		if (size != 2 || queue_ro || !v || (v & (v - 1)) || v > q->max_size)
			break;
		q->size = (uint16_t)v;
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		/* Allowed on an enabled queue too: Linux may remap vectors. */
		if (size == 2 && q)
			q->msix_vector = v < nr_vectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (size != 2 || v != 1 || queue_ro ||
		    !(vdev->status & VIRTIO_CONFIG_S_FEATURES_OK))
			break;
		if (virtq_enable(&q->vq, vdev->mem, q->size, q->desc, q->avail, q->used,
				 vdev->features) < 0)
			return q->vq.why;
		q->ready = true;
		break;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
	case VIRTIO_PCI_COMMON_Q_DESCHI:
		if (size == 4 && !queue_ro)
			virtio_pci_set_half(&q->desc, off == VIRTIO_PCI_COMMON_Q_DESCHI, v);
		break;
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
		if (size == 4 && !queue_ro)
			virtio_pci_set_half(&q->avail, off == VIRTIO_PCI_COMMON_Q_AVAILHI, v);
		break;
	case VIRTIO_PCI_COMMON_Q_USEDLO:
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		if (size == 4 && !queue_ro)
			virtio_pci_set_half(&q->used, off == VIRTIO_PCI_COMMON_Q_USEDHI, v);
		break;
	default:
		break;	/* read-only fields, holes */
	}
	return NULL;
}

static void virtio_pci_queue_defaults(struct virtio_queue *q)
{
	q->size = q->max_size;
	q->desc = q->avail = q->used = 0;
	q->ready = false;
	q->msix_vector = VIRTIO_MSI_NO_VECTOR;
}

void virtio_pci_reset(struct virtio_pci *vp)
{
	struct virtio_dev *vdev = vp->vdev;

	pthread_mutex_lock(&vp->status_lock);
	/* Without vdev->lock: the device's thread may be taking it to notify. */
	if (vdev->ops->reset)
		vdev->ops->reset(vdev->dev);
	pthread_mutex_lock(&vdev->lock);
	for (unsigned int i = 0; i < vdev->nr_queues; i++) {
		virtq_disable(&vdev->queues[i].vq);
		virtio_pci_queue_defaults(&vdev->queues[i]);
	}
	vdev->status = 0;
	vdev->features = 0;
	vdev->isr = 0;
	vdev->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
	vp->dfselect = vp->gfselect = 0;
	vp->queue_select = 0;
	vp->driver_features = 0;
	pci_dev_set_intx(vp->pci, 0);
	pthread_mutex_unlock(&vdev->lock);
	pthread_mutex_unlock(&vp->status_lock);
}

/* device_status: see virtio/pci.h for what is refused. */
static void virtio_pci_status_write(struct virtio_pci *vp, uint8_t v)
{
	struct virtio_dev *vdev = vp->vdev;
	const char *why = NULL;
	bool activate = false;
	uint8_t old, set;

	if (v == 0) {
		virtio_pci_reset(vp);
		return;
	}
	pthread_mutex_lock(&vp->status_lock);
	pthread_mutex_lock(&vdev->lock);
	old = vdev->status;
	set = (uint8_t)(v & VIRTIO_STATUS_DRIVER_BITS & ~old);
	if (set & VIRTIO_CONFIG_S_FEATURES_OK) {
		uint64_t f = vp->driver_features;

		if ((f & ~vdev->device_features) || !(f & (1ULL << VIRTIO_F_VERSION_1)) ||
		    (old & VIRTIO_CONFIG_S_DRIVER_OK))
			set &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
		else
			vdev->features = f;
	}
	if (set & VIRTIO_CONFIG_S_DRIVER_OK) {
		set &= (uint8_t)~VIRTIO_CONFIG_S_DRIVER_OK;
		activate = ((old | set) & VIRTIO_CONFIG_S_FEATURES_OK) &&
			   !(old & VIRTIO_CONFIG_S_NEEDS_RESET);
	}
	vdev->status = old | set;
	pthread_mutex_unlock(&vdev->lock);

	if (activate) {
		/* Without vdev->lock: activating may wait for the device's thread. */
		if (vdev->ops->activate && vdev->ops->activate(vdev->dev) < 0) {
			why = "the device could not start";
		} else {
			pthread_mutex_lock(&vdev->lock);
			vdev->status |= VIRTIO_CONFIG_S_DRIVER_OK;
			pthread_mutex_unlock(&vdev->lock);
		}
	}
	pthread_mutex_unlock(&vp->status_lock);
	if (why)
		virtio_dev_fail(vdev, why);
}

/* ---- BAR 0 ---- */

static uint64_t virtio_pci_bar_read(void *opaque, uint64_t off, unsigned int size)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *vdev = vp->vdev;
	uint64_t v = 0;

	if (off < VIRTIO_PCI_ISR_OFF) {
		pthread_mutex_lock(&vdev->lock);
		v = virtio_pci_common_read_locked(vp, off - VIRTIO_PCI_COMMON_OFF, size);
		pthread_mutex_unlock(&vdev->lock);
	} else if (off == VIRTIO_PCI_ISR_OFF) {
		v = virtio_pci_isr_read(vp);
	} else if (off >= VIRTIO_PCI_DEVICE_OFF && off < VIRTIO_PCI_NOTIFY_OFF) {
		uint64_t o = off - VIRTIO_PCI_DEVICE_OFF;

		if (o < vdev->config_size && vdev->config_size - o >= size && vdev->ops->config_read)
			vdev->ops->config_read(vdev->dev, (uint32_t)o, &v, size);
	} else if (off >= VIRTIO_PCI_MSIX_TABLE_OFF && off < VIRTIO_PCI_MSIX_PBA_OFF) {
		v = msix_table_read(&vp->msix, off - VIRTIO_PCI_MSIX_TABLE_OFF, size);
	} else if (off >= VIRTIO_PCI_MSIX_PBA_OFF) {
		v = msix_pba_read(&vp->msix, off - VIRTIO_PCI_MSIX_PBA_OFF, size);
	}
	return v;
}

static void virtio_pci_bar_write(void *opaque, uint64_t off, unsigned int size, uint64_t value)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *vdev = vp->vdev;

	if (off < VIRTIO_PCI_ISR_OFF) {
		const char *why;

		if (off == VIRTIO_PCI_COMMON_STATUS) {
			if (size == 1)
				virtio_pci_status_write(vp, (uint8_t)value);
			return;
		}
		/*
		 * status_lock too: an activation or reset in progress (on another
		 * vCPU) reads or tears down the queues without vdev->lock, so queue
		 * fields must not change under it.
		 */
		pthread_mutex_lock(&vp->status_lock);
		pthread_mutex_lock(&vdev->lock);
		why = virtio_pci_common_write_locked(vp, off, size, (uint32_t)value);
		pthread_mutex_unlock(&vdev->lock);
		pthread_mutex_unlock(&vp->status_lock);
		if (why)
			virtio_dev_fail(vdev, why);
	} else if (off >= VIRTIO_PCI_DEVICE_OFF && off < VIRTIO_PCI_NOTIFY_OFF) {
		uint64_t o = off - VIRTIO_PCI_DEVICE_OFF;

		if (o < vdev->config_size && vdev->config_size - o >= size && vdev->ops->config_write)
			vdev->ops->config_write(vdev->dev, (uint32_t)o, &value, size);
	} else if (off >= VIRTIO_PCI_NOTIFY_OFF && off < VIRTIO_PCI_MSIX_TABLE_OFF) {
		virtio_pci_kick(vp, off - VIRTIO_PCI_NOTIFY_OFF);
	} else if (off >= VIRTIO_PCI_MSIX_TABLE_OFF && off < VIRTIO_PCI_MSIX_PBA_OFF) {
		msix_table_write(&vp->msix, off - VIRTIO_PCI_MSIX_TABLE_OFF, size, value);
	}
	/* ISR and PBA are read-only. */
}

static const struct bus_ops virtio_pci_bar_ops = {
	.read = virtio_pci_bar_read,
	.write = virtio_pci_bar_write,
};

/* ---- VIRTIO_PCI_CAP_PCI_CFG: a window onto BAR 0 through configuration space ---- */

/* The access the window's bar/offset/length select, if it is a valid one. */
static bool virtio_pci_cfg_window(const uint8_t *cap, uint32_t *off, uint32_t *len)
{
	const struct virtio_pci_cfg_cap *c = (const void *)cap;
	uint32_t o, l;

	memcpy(&o, &c->cap.offset, 4);
	memcpy(&l, &c->cap.length, 4);
	if (c->cap.bar != 0 || (l != 1 && l != 2 && l != 4) || o % l ||
	    o >= VIRTIO_PCI_BAR_SIZE || VIRTIO_PCI_BAR_SIZE - o < l)
		return false;
	*off = o;
	*len = l;
	return true;
}

#define VIRTIO_PCI_CFG_DATA offsetof(struct virtio_pci_cfg_cap, pci_cfg_data)

static void virtio_pci_cfg_cap_write(void *opaque, uint8_t *cap, unsigned int off,
				     unsigned int size, uint32_t value)
{
	uint32_t o, l;

	if (off != VIRTIO_PCI_CFG_DATA || !virtio_pci_cfg_window(cap, &o, &l))
		return;
	(void)size;
	virtio_pci_bar_write(opaque, o, l, l == 4 ? value : value & ((1U << (8 * l)) - 1));
}

static uint32_t virtio_pci_cfg_cap_read(void *opaque, uint8_t *cap, unsigned int off,
					unsigned int size, uint32_t value)
{
	uint32_t o, l;

	(void)size;
	if (off < VIRTIO_PCI_CFG_DATA || !virtio_pci_cfg_window(cap, &o, &l))
		return value;
	uint32_t v = (uint32_t)virtio_pci_bar_read(opaque, o, l);

	return v >> (8 * (off - VIRTIO_PCI_CFG_DATA));
}

static const struct pci_cap_ops virtio_pci_cfg_cap_ops = {
	.write = virtio_pci_cfg_cap_write,
	.read = virtio_pci_cfg_cap_read,
};

/* ---- creation ---- */

static int virtio_pci_add_cap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len)
{
	struct virtio_pci_notify_cap c = {
		.cap = {
			.cap_vndr = PCI_CAP_ID_VNDR,
			.cfg_type = type,
			.bar = 0,
			.offset = off,
			.length = len,
		},
		.notify_off_multiplier = VIRTIO_PCI_NOTIFY_MULT,
	};
	size_t n = type == VIRTIO_PCI_CAP_NOTIFY_CFG ? sizeof(c) : sizeof(c.cap);

	c.cap.cap_len = (uint8_t)n;
	return pci_dev_add_cap(vp->pci, &c, (unsigned int)n, NULL, NULL, NULL) < 0 ? -1 : 0;
}

static int virtio_pci_add_cfg_cap(struct virtio_pci *vp)
{
	struct virtio_pci_cfg_cap c = {
		.cap = {
			.cap_vndr = PCI_CAP_ID_VNDR,
			.cap_len = sizeof(c),
			.cfg_type = VIRTIO_PCI_CAP_PCI_CFG,
		},
	};
	struct virtio_pci_cfg_cap w;

	/* bar, offset, length and the data window are the driver's to write. */
	memset(&w, 0, sizeof(w));
	w.cap.bar = 0xff;
	memset(&w.cap.offset, 0xff, sizeof(w.cap.offset));
	memset(&w.cap.length, 0xff, sizeof(w.cap.length));
	memset(w.pci_cfg_data, 0xff, sizeof(w.pci_cfg_data));
	return pci_dev_add_cap(vp->pci, &c, sizeof(c), &w, &virtio_pci_cfg_cap_ops, vp) < 0 ? -1 :
											       0;
}

/* PCI reset (VM reset): the virtio device and MSI-X back to power-on. */
static void virtio_pci_pci_reset(void *opaque)
{
	struct virtio_pci *vp = opaque;

	virtio_pci_reset(vp);
	msix_reset(&vp->msix);
}

static bool virtio_pci_check(const struct virtio_dev *vdev)
{
	if (!vdev->nr_queues || vdev->nr_queues > VIRTIO_MAX_QUEUES ||
	    vdev->config_size > VIRTIO_PCI_DEVICE_MAX || !vdev->ops || !vdev->mem ||
	    (uint32_t)VIRTIO_PCI_DEVICE_BASE + vdev->device_id > 0x107f) {
		log_error("%s: bad virtio device (1-%u queues, config space up to %u bytes)",
			  vdev->name, VIRTIO_MAX_QUEUES, VIRTIO_PCI_DEVICE_MAX);
		return false;
	}
	for (unsigned int i = 0; i < vdev->nr_queues; i++) {
		uint16_t m = vdev->queues[i].max_size;

		if (!m || (m & (m - 1))) {
			log_error("%s: queue %u: maximum size %u is not a power of two", vdev->name,
				  i, m);
			return false;
		}
	}
	return true;
}

struct virtio_pci *virtio_pci_create(struct pci_host *h, struct virtio_dev *vdev,
				     uint32_t class_code)
{
	uint16_t pci_id = (uint16_t)(VIRTIO_PCI_DEVICE_BASE + vdev->device_id);
	struct pci_dev_info info = {
		.name = vdev->name,
		.vendor_id = VIRTIO_PCI_VENDOR_ID,
		.device_id = pci_id,
		.subsys_vendor_id = VIRTIO_PCI_VENDOR_ID,
		.subsys_id = pci_id,
		.class_code = class_code,
		.revision = 1,
		.int_pin = 1,
		.reset = virtio_pci_pci_reset,
	};
	struct virtio_pci *vp;
	unsigned int nr_vectors = vdev->nr_queues + 1;

	if (!virtio_pci_check(vdev))
		return NULL;
	vp = calloc(1, sizeof(*vp));
	if (!vp) {
		log_error("%s: out of memory", vdev->name);
		return NULL;
	}
	vp->vdev = vdev;
	vp->vm_fd = pci_host_vm_fd(h);
	pthread_mutex_init(&vp->status_lock, NULL);
	info.opaque = vp;

	pthread_mutex_init(&vdev->lock, NULL);
	vdev->device_features = (vdev->ops->features ? vdev->ops->features(vdev->dev) : 0) |
				1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_RING_F_EVENT_IDX |
				1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	vdev->features = 0;
	vdev->status = 0;
	vdev->isr = 0;
	vdev->config_generation = 0;
	vdev->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
	vdev->notify = virtio_pci_notify;
	vdev->transport = vp;
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vdev->queues[i].kick_fd = -1;
	for (unsigned int i = 0; i < vdev->nr_queues; i++) {
		struct virtio_queue *q = &vdev->queues[i];

		memset(&q->vq, 0, sizeof(q->vq));
		q->vq.mem = vdev->mem;
		virtio_pci_queue_defaults(q);
		q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->kick_fd < 0) {
			log_error("%s: eventfd for queue %u: %s", vdev->name, i, strerror(errno));
			goto err_fds;
		}
	}

	vp->pci = pci_dev_add(h, &info);
	if (!vp->pci)
		goto err_fds;
	if (virtio_pci_add_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
			       VIRTIO_PCI_COMMON_LEN) < 0 ||
	    virtio_pci_add_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
			       vdev->nr_queues * VIRTIO_PCI_NOTIFY_MULT) < 0 ||
	    virtio_pci_add_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1) < 0 ||
	    (vdev->config_size &&
	     virtio_pci_add_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF,
				vdev->config_size) < 0) ||
	    virtio_pci_add_cfg_cap(vp) < 0)
		goto err_pci;
	if (msix_init(&vp->msix, vp->pci, nr_vectors, 0, VIRTIO_PCI_MSIX_TABLE_OFF, 0,
		      VIRTIO_PCI_MSIX_PBA_OFF) < 0)
		goto err_pci;
	if (pci_dev_add_bar(vp->pci, 0, VIRTIO_PCI_BAR_SIZE, PCI_BAR_MEM64, &virtio_pci_bar_ops,
			    vp, virtio_pci_bar_map) < 0)
		goto err_msix;
	return vp;

err_msix:
	msix_fini(&vp->msix);
err_pci:
	pci_dev_remove(vp->pci);
err_fds:
	for (unsigned int i = 0; i < vdev->nr_queues; i++)
		if (vdev->queues[i].kick_fd >= 0)
			close(vdev->queues[i].kick_fd);
	pthread_mutex_destroy(&vdev->lock);
	pthread_mutex_destroy(&vp->status_lock);
	free(vp);
	return NULL;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	struct virtio_dev *vdev;

	if (!vp)
		return;
	vdev = vp->vdev;
	pci_dev_remove(vp->pci);	/* unmaps BAR 0: the ioeventfds go with it */
	msix_fini(&vp->msix);
	for (unsigned int i = 0; i < vdev->nr_queues; i++) {
		virtq_disable(&vdev->queues[i].vq);
		if (vdev->queues[i].kick_fd >= 0)
			close(vdev->queues[i].kick_fd);
		vdev->queues[i].kick_fd = -1;
	}
	vdev->transport = NULL;
	pthread_mutex_destroy(&vdev->lock);
	pthread_mutex_destroy(&vp->status_lock);
	free(vp);
}

struct pci_dev *virtio_pci_dev(const struct virtio_pci *vp)
{
	return vp->pci;
}
