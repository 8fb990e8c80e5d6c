/*
 * The floor for startup time: the least a KVM program can do to run a guest
 * that prints and exits. One VM, 2 MiB of RAM, one vCPU in real mode running
 * "print 'hello from bare KVM\n' to port 0x3f8, hlt"; no irqchip, no
 * devices, no boot protocol. bench/startup.sh compares bootvm against it.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE (2 << 20)
#define CODE_ADDR 0x1000

static int fail(const char *what)
{
	perror(what);
	return 1;
}

int main(void)
{
	static const char msg[] = "hello from bare KVM\n";
	/* mov si, msg; mov dx, 0x3f8; l: lodsb; test al,al; jz d; out dx,al; jmp l; d: hlt */
	uint8_t code[] = {
		0xbe, 0x00, 0x00,	/* mov si, CODE_ADDR + 0x20 (patched) */
		0xba, 0xf8, 0x03,	/* mov dx, 0x3f8 */
		0xac,			/* lodsb */
		0x84, 0xc0,		/* test al, al */
		0x74, 0x03,		/* jz +3 */
		0xee,			/* out dx, al */
		0xeb, 0xf8,		/* jmp lodsb */
		0xf4,			/* hlt */
	};
	uint16_t msg_addr = CODE_ADDR + 0x20;

	memcpy(&code[1], &msg_addr, 2);
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail("/dev/kvm");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");
	uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return fail("mmap");
	memcpy(mem + CODE_ADDR, code, sizeof(code));
	memcpy(mem + msg_addr, msg, sizeof(msg));
	struct kvm_userspace_memory_region region = {
		.memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return fail("KVM_SET_USER_MEMORY_REGION");
	int cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (cpu < 0)
		return fail("KVM_CREATE_VCPU");
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
	if (run == MAP_FAILED)
		return fail("mmap kvm_run");

	struct kvm_sregs sregs;
	if (ioctl(cpu, KVM_GET_SREGS, &sregs) < 0)
		return fail("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(cpu, KVM_SET_SREGS, &sregs) < 0)
		return fail("KVM_SET_SREGS");
	struct kvm_regs regs = { .rip = CODE_ADDR, .rflags = 2 };
	if (ioctl(cpu, KVM_SET_REGS, &regs) < 0)
		return fail("KVM_SET_REGS");

	char out[64];
	size_t n = 0;
	for (;;) {
		if (ioctl(cpu, KVM_RUN, 0) < 0)
			return fail("KVM_RUN");
		if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT &&
		    run->io.port == 0x3f8) {
			if (n < sizeof(out))
				out[n++] = *((char *)run + run->io.data_offset);
			continue;
		}
		if (run->exit_reason == KVM_EXIT_HLT)
			break;
		fprintf(stderr, "bare: unexpected exit %u\n", run->exit_reason);
		return 1;
	}
	fwrite(out, 1, n, stdout);
	return 0;
}
