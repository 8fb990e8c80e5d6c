#include "virtio/virtio.h"

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include "util/log.h"

void virtio_notify_queue(struct virtio_dev *vdev, unsigned int q)
{
	if (q < vdev->nr_queues && virtq_should_notify(&vdev->queues[q].vq))
		vdev->notify(vdev, (int)q);
}

void virtio_notify_config(struct virtio_dev *vdev)
{
	pthread_mutex_lock(&vdev->lock);
	vdev->config_generation++;
	vdev->isr |= VIRTIO_PCI_ISR_CONFIG;
	pthread_mutex_unlock(&vdev->lock);
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
		log_warn("%s: %s: the device needs a reset", vdev->name, why);
	else
		log_debug("%s: %s: the device needs a reset", vdev->name, why);
	vdev->notify(vdev, -1);
}
