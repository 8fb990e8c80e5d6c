#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pci_env.h"

struct env_counts env_counts;

void env_counts_reset(void)
{
	memset(&env_counts, 0, sizeof(env_counts));
	for (unsigned int i = 0; i < 64; i++)
		env_counts.line[i] = -1;
}

/* Count what the code under test asks of KVM, then do it (from any thread). */
int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (req == KVM_SET_GSI_ROUTING) {
		__atomic_add_fetch(&env_counts.set_gsi_routing, 1, __ATOMIC_RELAXED);
	} else if (req == KVM_IRQFD) {
		const struct kvm_irqfd *f = arg;

		if (f->flags & KVM_IRQFD_FLAG_DEASSIGN)
			__atomic_add_fetch(&env_counts.irqfd_deassign, 1, __ATOMIC_RELAXED);
		else
			__atomic_add_fetch(&env_counts.irqfd_assign, 1, __ATOMIC_RELAXED);
	} else if (req == KVM_IOEVENTFD) {
		const struct kvm_ioeventfd *io = arg;

		if (io->flags & KVM_IOEVENTFD_FLAG_DEASSIGN) {
			__atomic_add_fetch(&env_counts.ioeventfd_deassign, 1, __ATOMIC_RELAXED);
		} else {
			__atomic_add_fetch(&env_counts.ioeventfd_assign, 1, __ATOMIC_RELAXED);
			__atomic_store_n(&env_counts.last_ioeventfd_addr, io->addr, __ATOMIC_RELAXED);
		}
	} else if (req == KVM_IRQ_LINE) {
		const struct kvm_irq_level *l = arg;

		__atomic_add_fetch(&env_counts.irq_line_calls, 1, __ATOMIC_RELAXED);
		if (l->irq < 64)
			__atomic_store_n(&env_counts.line[l->irq], (int)l->level, __ATOMIC_RELAXED);
	}
	return (int)syscall(SYS_ioctl, fd, req, arg);
}

/* Count writes per fd: that is how irq_msi_fire() and kicks signal eventfds. */
ssize_t write(int fd, const void *buf, size_t n)
{
	if (fd >= 0 && fd < 1024)
		__atomic_add_fetch(&env_counts.writes[fd], 1, __ATOMIC_RELAXED);
	return syscall(SYS_write, fd, buf, n);
}

void env_init(struct pci_env *e)
{
	struct pci_host_config cfg = {
		.pio = &e->pio,
		.mmio = &e->mmio,
		.irq = &e->irq,
		.ecam_base = ENV_ECAM,
		.mmio32_base = ENV_MMIO32,
		.mmio32_size = ENV_MMIO32_SIZE,
		.mmio64_base = ENV_MMIO64,
		.mmio64_size = ENV_MMIO64_SIZE,
		.io_base = 0x1000,
		.io_end = 0xffff,
		.intx_gsi_base = ENV_GSI_BASE,
		.intx_gsi_count = ENV_GSI_COUNT,
	};

	memset(e, 0, sizeof(*e));
	e->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (e->kvm_fd < 0) {
		print_message("skipped: no /dev/kvm\n");
		skip();
	}
	e->vm_fd = ioctl(e->kvm_fd, KVM_CREATE_VM, 0);
	assert_true(e->vm_fd >= 0);
	assert_int_equal(ioctl(e->vm_fd, KVM_CREATE_IRQCHIP, 0), 0);
	assert_int_equal(irq_router_init(&e->irq, e->vm_fd, 24), 0);
	for (unsigned int pin = 0; pin < 24; pin++)
		assert_int_equal(irq_add_pin(&e->irq, pin, KVM_IRQCHIP_IOAPIC, pin), 0);
	assert_int_equal(irq_commit(&e->irq), 0);
	bus_init(&e->pio, "pio");
	bus_init(&e->mmio, "mmio");
	cfg.vm_fd = e->vm_fd;
	e->host = pci_host_create(&cfg);
	assert_non_null(e->host);
	env_counts_reset();
}

void env_fini(struct pci_env *e)
{
	pci_host_destroy(e->host);
	assert_int_equal(e->pio.nr, 0);
	assert_int_equal(e->mmio.nr, 0);
	bus_destroy(&e->pio);
	bus_destroy(&e->mmio);
	irq_router_destroy(&e->irq);
	close(e->vm_fd);
	close(e->kvm_fd);
}

static uint32_t env_pio(struct pci_env *e, uint16_t port, unsigned int size, bool write,
			uint32_t v)
{
	uint8_t d[4];

	memcpy(d, &v, 4);
	bus_access(&e->pio, port, d, size, write);
	memcpy(&v, d, 4);
	return size == 4 ? v : v & ((1U << (8 * size)) - 1);
}

uint32_t env_conf1_read(struct pci_env *e, unsigned int slot, unsigned int reg, unsigned int size)
{
	env_pio(e, 0xcf8, 4, true, 0x80000000U | slot << 11 | (reg & 0xfc));
	return env_pio(e, (uint16_t)(0xcfc + (reg & 3)), size, false, 0);
}

void env_conf1_write(struct pci_env *e, unsigned int slot, unsigned int reg, unsigned int size,
		     uint32_t v)
{
	env_pio(e, 0xcf8, 4, true, 0x80000000U | slot << 11 | (reg & 0xfc));
	env_pio(e, (uint16_t)(0xcfc + (reg & 3)), size, true, v);
}

bool env_mmio(struct pci_env *e, uint64_t addr, unsigned int size, bool write, uint64_t *v)
{
	uint8_t d[8];
	bool claimed;

	memcpy(d, v, 8);
	claimed = bus_access(&e->mmio, addr, d, size, write);
	if (!write) {
		*v = 0;
		memcpy(v, d, size);
	}
	return claimed;
}

uint64_t env_mmio_read(struct pci_env *e, uint64_t addr, unsigned int size)
{
	uint64_t v = 0;

	env_mmio(e, addr, size, false, &v);
	return v;
}

void env_mmio_write(struct pci_env *e, uint64_t addr, unsigned int size, uint64_t v)
{
	env_mmio(e, addr, size, true, &v);
}

uint32_t env_ecam_read(struct pci_env *e, unsigned int slot, unsigned int reg, unsigned int size)
{
	return (uint32_t)env_mmio_read(e, ENV_ECAM + (slot << 15) + reg, size);
}

void env_ecam_write(struct pci_env *e, unsigned int slot, unsigned int reg, unsigned int size,
		    uint32_t v)
{
	env_mmio_write(e, ENV_ECAM + (slot << 15) + reg, size, v);
}

uint64_t env_rand(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}
