/*
 * An existing TAP device with IFF_VNET_HDR: each frame read or written
 * starts with a struct virtio_net_hdr_v1 (12 bytes), so the guest's
 * checksum and TSO offloads pass through to the host kernel.
 *
 * We never create a device: TUNSETIFF on a name that does not exist would
 * make a new, non-persistent one, so the name is looked up first (in our
 * network namespace, which /sys/class/net need not show).
 */
#include "backends/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/log.h"

static int tap_send(struct net_backend *nb, const struct iovec *iov, unsigned int iovcnt)
{
	for (;;) {
		ssize_t n = writev(nb->fd, iov, (int)iovcnt);

		if (n >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		/* EINVAL (a header the kernel refuses), EIO (link down), ...: this frame is lost. */
		nb->tx_dropped++;
		return 0;
	}
}

static ssize_t tap_recv(struct net_backend *nb, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(nb->fd, buf, len);

		if (n >= 0) {
			if ((size_t)n < nb->vnet_hdr_len) {
				nb->rx_dropped++;
				continue;
			}
			return n;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return -errno;
	}
}

static int tap_set_rx_offloads(struct net_backend *nb, unsigned int offloads)
{
	unsigned int flags = 0;

	if (offloads & NET_OFFLOAD_CSUM) {
		flags |= TUN_F_CSUM;
		if (offloads & NET_OFFLOAD_TSO4)
			flags |= TUN_F_TSO4;
		if (offloads & NET_OFFLOAD_TSO6)
			flags |= TUN_F_TSO6;
	}
	if (ioctl(nb->fd, TUNSETOFFLOAD, flags) < 0) {
		log_error("%s: TUNSETOFFLOAD: %s", nb->name, strerror(errno));
		return -1;
	}
	return 0;
}

static void tap_destroy(struct net_backend *nb)
{
	close(nb->fd);
	free(nb);
}

static const struct net_backend_ops tap_ops = {
	.send = tap_send,
	.recv = tap_recv,
	.destroy = tap_destroy,
	.set_rx_offloads = tap_set_rx_offloads,
};

struct net_backend *net_tap_open(const char *ifname)
{
	struct ifreq ifr = { 0 };
	struct net_backend *nb;
	int fd, hdr_len = sizeof(struct virtio_net_hdr_v1);

	if (strlen(ifname) >= IFNAMSIZ) {
		log_error("TAP device %s: the name is longer than %d bytes", ifname, IFNAMSIZ - 1);
		return NULL;
	}
	if (if_nametoindex(ifname) == 0) {
		log_error("TAP device %s: no such network device (create it first: "
			  "ip tuntap add dev %s mode tap)", ifname, ifname);
		return NULL;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == EACCES || errno == EPERM)
			log_error("TAP device %s: permission denied (cannot open /dev/net/tun)",
				  ifname);
		else
			log_error("TAP device %s: /dev/net/tun: %s", ifname, strerror(errno));
		return NULL;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int err = errno;

		if (err == EPERM || err == EACCES)
			log_error("TAP device %s: permission denied (it must belong to this user, "
				  "or bootvm needs CAP_NET_ADMIN)", ifname);
		else if (err == EINVAL)
			log_error("TAP device %s: not a TAP device (a TUN or another kind of "
				  "interface?)", ifname);
		else if (err == EBUSY)
			log_error("TAP device %s: busy (another process has it open)", ifname);
		else
			log_error("TAP device %s: TUNSETIFF: %s", ifname, strerror(err));
		goto err_close;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0) {
		log_error("TAP device %s: TUNSETVNETHDRSZ: %s", ifname, strerror(errno));
		goto err_close;
	}
	nb = calloc(1, sizeof(*nb));
	if (!nb) {
		log_error("TAP device %s: out of memory", ifname);
		goto err_close;
	}
	nb->ops = &tap_ops;
	nb->fd = fd;
	nb->vnet_hdr_len = (size_t)hdr_len;
	snprintf(nb->name, sizeof(nb->name), "%s", ifname);
	/* Can the kernel hand us partial checksums and TSO frames? Then the guest may have them. */
	nb->offloads = ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) == 0;
	/* Until a guest driver says what it takes, the kernel finishes every frame. */
	if (nb->offloads && ioctl(fd, TUNSETOFFLOAD, 0) < 0)
		nb->offloads = false;
	return nb;

err_close:
	close(fd);
	return NULL;
}
