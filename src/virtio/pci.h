/*
 * The virtio 1.x modern PCI transport (no legacy interface).
 *
 * Vendor 0x1af4, device 0x1040 + device ID, revision 1, subsystem
 * 0x1af4:(0x1040 + device ID). Everything lives in one 64-bit memory BAR 0
 * of VIRTIO_PCI_BAR_SIZE bytes, each structure in its own page:
 *
 *   0x0000 common configuration     (VIRTIO_PCI_CAP_COMMON_CFG)
 *   0x1000 ISR status, 1 byte       (VIRTIO_PCI_CAP_ISR_CFG)
 *   0x2000 device configuration     (VIRTIO_PCI_CAP_DEVICE_CFG, if config_size)
 *   0x3000 notifications: queue q at 0x3000 + 4 q (VIRTIO_PCI_CAP_NOTIFY_CFG,
 *          notify_off_multiplier 4), each an ioeventfd while BAR 0 is mapped
 *   0x4000 MSI-X table, nr_queues + 1 vectors
 *   0x5000 MSI-X PBA
 *
 * plus the VIRTIO_PCI_CAP_PCI_CFG window in configuration space. INTx
 * (pin A) with the ISR when MSI-X is off.
 *
 * Register semantics where the spec leaves a choice:
 *  - queue_select out of range: queue fields read 0 (queue_size 0 says
 *    "no such queue"), writes to them are ignored;
 *  - queue_size not a power of two, 0 or above the device's maximum:
 *    ignored (the size stays what it was);
 *  - queue fields are read-only once the queue is enabled or DRIVER_OK is
 *    set; queue_enable 0 is ignored; enabling a queue before FEATURES_OK is
 *    ignored; ring areas that virtq_enable() refuses (outside RAM,
 *    misaligned) set DEVICE_NEEDS_RESET;
 *  - msix_config / queue_msix_vector beyond the table read back
 *    VIRTIO_MSI_NO_VECTOR;
 *  - FEATURES_OK sticks only if the driver's features are a subset of the
 *    offered ones and include VIRTIO_F_VERSION_1; features are read-only
 *    from FEATURES_OK on;
 *  - device_status bits are never cleared except by writing 0 (reset);
 *    DRIVER_OK without FEATURES_OK, or after DEVICE_NEEDS_RESET, is ignored;
 *    DEVICE_NEEDS_RESET is the device's (the driver cannot set it).
 */
#pragma once

#include <stdint.h>

struct pci_dev;
struct pci_host;
struct virtio_dev;
struct virtio_pci;

#define VIRTIO_PCI_BAR_SIZE		0x8000
#define VIRTIO_PCI_COMMON_OFF		0x0000
#define VIRTIO_PCI_ISR_OFF		0x1000
#define VIRTIO_PCI_DEVICE_OFF		0x2000
#define VIRTIO_PCI_DEVICE_MAX		0x1000	/* config_size at most */
#define VIRTIO_PCI_NOTIFY_OFF		0x3000
#define VIRTIO_PCI_NOTIFY_MULT		4
#define VIRTIO_PCI_MSIX_TABLE_OFF	0x4000
#define VIRTIO_PCI_MSIX_PBA_OFF		0x5000

/*
 * Add vdev to the PCI bus with PCI class class_code (e.g. 0x018000 for a
 * block device): fills in vdev->device_features (the device's plus
 * VERSION_1, RING_EVENT_IDX, RING_INDIRECT_DESC), vdev->notify and
 * vdev->transport, creates each queue's kick_fd. vdev->name, device_id,
 * ops, dev, mem, config_size, nr_queues and queues[i].max_size must be set.
 * Logs and returns NULL.
 */
struct virtio_pci *virtio_pci_create(struct pci_host *h, struct virtio_dev *vdev,
				     uint32_t class_code);
/*
 * Device reset as the driver's write of 0 to device_status does it: ops->reset
 * (which waits for the device's thread), queues disabled, negotiation
 * cleared, interrupt deasserted. MSI-X is left alone (it is PCI state).
 */
void virtio_pci_reset(struct virtio_pci *vp);
/* Remove from the bus, unregister ioeventfds, close the kick fds. After the vCPUs stopped. */
void virtio_pci_destroy(struct virtio_pci *vp);

struct pci_dev *virtio_pci_dev(const struct virtio_pci *vp);
