/*
 * What every virtio device calls, whatever its transport: queue and config
 * interrupts, and marking the device broken. The transport supplies
 * vdev->notify (MSI-X vector or INTx with the ISR bits).
 */
#include "virtio/virtio.h"

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include "util/log.h"

void virtio_notify_queue(struct virtio_dev *vdev, unsigned int q)
{
	if (q < vdev->nr_queues && vdev->notify && virtq_should_notify(&vdev->queues[q].vq))
		vdev->notify(vdev, (int)q);
}

void virtio_notify_config(struct virtio_dev *vdev)
{
	pthread_mutex_lock(&vdev->lock);
	vdev->config_generation++;
	vdev->isr |= VIRTIO_PCI_ISR_CONFIG;
	pthread_mutex_unlock(&vdev->lock);
	if (vdev->notify)
		vdev->notify(vdev, -1);
}

void virtio_dev_fail(struct virtio_dev *vdev, const char *why)
{
	bool first_time, already;

	pthread_mutex_lock(&vdev->lock);
	already = vdev->status & VIRTIO_CONFIG_S_NEEDS_RESET;
	vdev->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	first_time = !already && vdev->failures++ == 0;
	if (!already)
		vdev->isr |= VIRTIO_PCI_ISR_CONFIG;
	pthread_mutex_unlock(&vdev->lock);
	if (already)
		return;
	/* A guest that breaks the device in a loop must not flood the log. */
	if (first_time)
		log_warn("%s: %s: the device needs a reset", vdev->name, why ? why : "device error");
	else
		log_debug("%s: %s: the device needs a reset", vdev->name, why ? why : "device error");
	if (vdev->notify)
		vdev->notify(vdev, -1);
}
