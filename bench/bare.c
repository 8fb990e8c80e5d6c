/*
 * Floors for startup time: the least a KVM program can do to run a guest.
 *
 *   bench-bare
 *	2 MiB of RAM, one vCPU in real mode running "print 'hello from bare
 *	KVM\n' to port 0x3f8, hlt"; no CPUID, no irqchip, no devices, no boot
 *	protocol. The floor for any KVM program.
 *   bench-bare GUEST.elf MEM_MIB CMDLINE
 *	The same hello.elf bootvm and QEMU boot, through the same PVH entry,
 *	to the point QEMU stops at (the guest's write to port 0x501, after its
 *	hello line): MEM_MIB of RAM, the CPUID KVM supports (long mode needs
 *	it), the ELF's segments, a hvm_start_info with the command line,
 *	32-bit protected mode at the entry; the UART's line status reads
 *	"ready" and its data bytes are printed. No irqchip, no ACPI, no
 *	threads, none of the checks a VMM makes of a kernel it did not build.
 *
 * bench/startup.sh compares bootvm against both.
 */
#include <elf.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FLOOR_MEM_SIZE	(2 << 20)
#define FLOOR_CODE_ADDR	0x1000
#define START_INFO_ADDR	0x6000
#define CMDLINE_ADDR	0x7000
#define PVH_MAGIC	0x336ec578
#define NOTE_PHYS32_ENTRY 18	/* XEN_ELFNOTE_PHYS32_ENTRY */

struct bare {
	int kvm, vm, cpu;
	uint8_t *mem;
	size_t mem_size;
	struct kvm_run *run;
	struct kvm_sregs sregs;
};

static int fail(const char *what)
{
	fprintf(stderr, "bench-bare: %s\n", what);
	return 1;
}

/* A VM with mem_size bytes of RAM and one vCPU, its sregs read. */
static int bare_create(struct bare *b, size_t mem_size)
{
	b->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (b->kvm < 0)
		return fail("/dev/kvm");
	b->vm = ioctl(b->kvm, KVM_CREATE_VM, 0);
	if (b->vm < 0)
		return fail("KVM_CREATE_VM");
	b->mem_size = mem_size;
	b->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (b->mem == MAP_FAILED)
		return fail("mmap guest RAM");
	struct kvm_userspace_memory_region region = {
		.memory_size = mem_size, .userspace_addr = (uintptr_t)b->mem,
	};
	if (ioctl(b->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return fail("KVM_SET_USER_MEMORY_REGION");
	b->cpu = ioctl(b->vm, KVM_CREATE_VCPU, 0);
	if (b->cpu < 0)
		return fail("KVM_CREATE_VCPU");
	int run_size = ioctl(b->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	b->run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, b->cpu, 0);
	if (b->run == MAP_FAILED)
		return fail("mmap kvm_run");
	if (ioctl(b->cpu, KVM_GET_SREGS, &b->sregs) < 0)
		return fail("KVM_GET_SREGS");
	return 0;
}

static int bare_start(struct bare *b, uint64_t rip, uint64_t rbx)
{
	struct kvm_regs regs = { .rip = rip, .rbx = rbx, .rflags = 2 };

	if (ioctl(b->cpu, KVM_SET_SREGS, &b->sregs) < 0)
		return fail("KVM_SET_SREGS");
	if (ioctl(b->cpu, KVM_SET_REGS, &regs) < 0)
		return fail("KVM_SET_REGS");
	return 0;
}

/*
 * Run to HLT or a write to port 0x501, collecting what goes to the UART's
 * data register, and print it.
 */
static int bare_run(struct bare *b)
{
	char out[256];
	size_t n = 0;
	int dlab = 0;

	for (;;) {
		if (ioctl(b->cpu, KVM_RUN, 0) < 0)
			return fail("KVM_RUN");
		if (b->run->exit_reason == KVM_EXIT_HLT)
			break;
		if (b->run->exit_reason != KVM_EXIT_IO)
			return fail("unexpected exit");
		uint8_t *data = (uint8_t *)b->run + b->run->io.data_offset;
		if (b->run->io.direction == KVM_EXIT_IO_IN) {
			*data = b->run->io.port == 0x3fd ? 0x60 : 0;	/* LSR: transmitter empty */
			continue;
		}
		if (b->run->io.port == 0x501)
			break;
		if (b->run->io.port == 0x3fb)
			dlab = *data & 0x80;
		else if (b->run->io.port == 0x3f8 && !dlab && n < sizeof(out))
			out[n++] = (char)*data;
	}
	fwrite(out, 1, n, stdout);
	return 0;
}

static int floor_main(void)
{
	static const char msg[] = "hello from bare KVM\n";
	/* mov si, msg; mov dx, 0x3f8; l: lodsb; test al,al; jz d; out dx,al; jmp l; d: hlt */
	uint8_t code[] = {
		0xbe, 0x00, 0x00,	/* mov si, FLOOR_CODE_ADDR + 0x20 (patched) */
		0xba, 0xf8, 0x03,	/* mov dx, 0x3f8 */
		0xac,			/* lodsb */
		0x84, 0xc0,		/* test al, al */
		0x74, 0x03,		/* jz +3 */
		0xee,			/* out dx, al */
		0xeb, 0xf8,		/* jmp lodsb */
		0xf4,			/* hlt */
	};
	uint16_t msg_addr = FLOOR_CODE_ADDR + 0x20;
	struct bare b;

	memcpy(&code[1], &msg_addr, 2);
	if (bare_create(&b, FLOOR_MEM_SIZE))
		return 1;
	memcpy(b.mem + FLOOR_CODE_ADDR, code, sizeof(code));
	memcpy(b.mem + msg_addr, msg, sizeof(msg));
	b.sregs.cs.base = 0;
	b.sregs.cs.selector = 0;
	if (bare_start(&b, FLOOR_CODE_ADDR, 0))
		return 1;
	return bare_run(&b);
}

/* Copy the PT_LOAD segments into RAM; return the PVH entry, or 0. */
static uint32_t load_elf(const uint8_t *f, size_t fsz, uint8_t *mem, size_t msz)
{
	const Elf64_Ehdr *eh = (const void *)f;
	uint32_t entry = 0;

	if (fsz < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    eh->e_phoff > fsz || (fsz - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
		return 0;
	const Elf64_Phdr *ph = (const void *)(f + eh->e_phoff);
	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];

		if (p->p_offset > fsz || p->p_filesz > fsz - p->p_offset)
			return 0;
		if (p->p_type == PT_LOAD) {
			if (p->p_paddr > msz || p->p_memsz > msz - p->p_paddr || p->p_filesz > p->p_memsz)
				return 0;
			memcpy(mem + p->p_paddr, f + p->p_offset, p->p_filesz);
		} else if (p->p_type == PT_NOTE) {
			const uint8_t *n = f + p->p_offset, *end = n + p->p_filesz;

			while ((size_t)(end - n) >= sizeof(Elf64_Nhdr)) {
				const Elf64_Nhdr *nh = (const void *)n;
				size_t name = (nh->n_namesz + 3) & ~3u, desc = (nh->n_descsz + 3) & ~3u;

				if ((size_t)(end - n) - sizeof(*nh) < name + desc)
					break;
				if (nh->n_type == NOTE_PHYS32_ENTRY && nh->n_descsz >= 4)
					memcpy(&entry, n + sizeof(*nh) + name, 4);
				n += sizeof(*nh) + name + desc;
			}
		}
	}
	return entry;
}

static void set_flat(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	*s = (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
				   .present = 1, .s = 1, .db = 1, .g = 1 };
}

static int pvh_main(const char *path, const char *mem_mib, const char *cmdline)
{
	size_t mem_size = (size_t)strtoul(mem_mib, NULL, 0) << 20;
	size_t cmd_len = strlen(cmdline);
	struct stat st;
	struct bare b;

	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return fail("cannot open the guest");
	const uint8_t *file = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (file == MAP_FAILED)
		return fail("cannot map the guest");
	if (mem_size < (2 << 20) || cmd_len >= 0x1000)
		return fail("less than 2 MiB of RAM, or a command line over 4 KiB");
	if (bare_create(&b, mem_size))
		return 1;

	uint32_t entry = load_elf(file, (size_t)st.st_size, b.mem, mem_size);
	if (!entry)
		return fail("not an ELF with a PVH entry that fits in RAM");
	memcpy(b.mem + CMDLINE_ADDR, cmdline, cmd_len + 1);
	uint32_t si[14] = { PVH_MAGIC, 1 };	/* magic, version; no flags, no modules */
	uint64_t cmd_addr = CMDLINE_ADDR;
	memcpy(&si[6], &cmd_addr, sizeof(cmd_addr));	/* cmdline_paddr */
	memcpy(b.mem + START_INFO_ADDR, si, sizeof(si));

	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(struct kvm_cpuid_entry2));
	if (!cpuid)
		return fail("out of memory");
	cpuid->nent = 256;
	if (ioctl(b.kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0 || ioctl(b.cpu, KVM_SET_CPUID2, cpuid) < 0)
		return fail("CPUID");

	set_flat(&b.sregs.cs, 0x8, 0xb);
	set_flat(&b.sregs.ds, 0x10, 0x3);
	b.sregs.es = b.sregs.fs = b.sregs.gs = b.sregs.ss = b.sregs.ds;
	b.sregs.cr0 = 0x11;	/* PE, ET */
	b.sregs.cr4 = 0;
	b.sregs.efer = 0;
	if (bare_start(&b, entry, START_INFO_ADDR))
		return 1;
	return bare_run(&b);
}

int main(int argc, char **argv)
{
	if (argc == 1)
		return floor_main();
	if (argc == 4)
		return pvh_main(argv[1], argv[2], argv[3]);
	return fail("usage: bench-bare [GUEST.elf MEM_MIB CMDLINE]");
}
